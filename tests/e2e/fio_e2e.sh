#!/bin/bash
# fio's nbd engine against an origin with a snapshot: random writes with
# crc32c verification, then the snapshot still reads as before.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdcopy fio
fio --enghelp 2>/dev/null | grep -qw nbd || e2e_skip "fio has no nbd ioengine"
e2e_init

csq pvcreate --size 512M "$WORK/pv0.img" >/dev/null
csq vgcreate -s 4M vgf "$WORK/pv0.img" >/dev/null
csq lvcreate -L 32M -n data vgf >/dev/null
e2e_server_start
head -c 32M /dev/urandom >"$WORK/a"
nbdcopy "$WORK/a" "$(uri vgf/data)"
csq lvcreate -L 40M -s -n snap vgf/data >/dev/null
run fio --name=verify --ioengine=nbd --uri="$(uri vgf/data)" --rw=randwrite --bs=4k --size=32M \
  --iodepth=8 --verify=crc32c --do_verify=1 --runtime=20 --time_based=0 --output="$WORK/fio.log" ||
  { cat "$WORK/fio.log"; e2e_fail "fio verify failed"; }
grep -E "WRITE:|READ:" "$WORK/fio.log" || true
nbdcopy "$(uri vgf/snap)" "$WORK/snap.img"
cmp -s "$WORK/snap.img" "$WORK/a" || e2e_fail "the snapshot changed under fio's writes"
echo "fio verify passed; snapshot unchanged"
echo PASS
