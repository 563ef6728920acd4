#!/bin/bash
# Autoextend end to end: the seed's too-small snapshot (32 MiB of COW over
# a 64 MiB origin) with ROOT/lvm.conf's snapshot_autoextend_threshold = 70
# and _percent = 20. A 40 MiB overwrite of the origin through NBD (the
# seed's dd) would overflow it; here it grows in lvm2's steps, stays valid
# with the origin's old content, and lvm2 reads the grown VG. With the VG
# full, the same overwrite overflows it as in the seed.
# Usage: autoextend_e2e.sh COWSNAP PLUGIN   (or: ctest -L e2e)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdcopy cmp
e2e_init

write_policy() {
  cat >"$ROOT/lvm.conf" <<'CONF'
activation {
	snapshot_autoextend_threshold = 70
	snapshot_autoextend_percent = 20
}
CONF
}

# setup PV_MIB: the seed's VG, the origin holding random data, a 32 MiB
# snapshot of it.
setup() {
  rm -rf "$ROOT" "$WORK/pv0.img"
  : >"$WORK/nbdkit.log"
  cs pvcreate --size "$1M" "$WORK/pv0.img" >/dev/null
  cs vgcreate -s 4M vgsrv "$WORK/pv0.img" >/dev/null
  cs lvcreate -L 64M -n b64m vgsrv >/dev/null
  head -c $((64 << 20)) /dev/urandom >"$WORK/before.img"
  head -c $((40 << 20)) /dev/urandom >"$WORK/dd.img"
  e2e_server_start
  nbdcopy "$WORK/before.img" "$(uri vgsrv/b64m)" || e2e_fail "filling b64m"
  e2e_server_stop
  cs lvcreate -L 32M -s -n sb64m vgsrv/b64m >/dev/null
  write_policy
}

echo "== a 40 MiB overwrite under autoextend"
setup 256
e2e_server_start
nbdcopy --flush "$WORK/dd.img" "$(uri vgsrv/b64m)" || e2e_fail "overwriting b64m"
attr=$(e2e_lv_field vgsrv/sb64m lv_attr)
[[ "$attr" == swi-a?s--- ]] || e2e_fail "sb64m attributes: expected swi-a-s---, got $attr"
size=$(csq lvs --noheadings --units m --nosuffix -o lv_size vgsrv/sb64m | tr -d ' ')
awk -v s="$size" 'BEGIN {exit !(s > 40)}' || e2e_fail "sb64m did not grow past 40 MiB: $size MiB"
grep -q "Size of logical volume vgsrv/sb64m changed from 32.00 MiB (8 extents) to 40.00 MiB (10 extents)." \
  "$WORK/nbdkit.log" || e2e_fail "no lvm2 resize message in the server's log: $(tail -5 "$WORK/nbdkit.log")"
grep -q "Logical volume vgsrv/sb64m successfully resized." "$WORK/nbdkit.log" ||
  e2e_fail "no 'successfully resized' in the server's log"
echo "  sb64m valid ($attr), grown to $size MiB; Data% $(e2e_lv_field vgsrv/sb64m data_percent)"
grep -o "Size of logical volume vgsrv/sb64m changed from .*" "$WORK/nbdkit.log" | sed 's/^/  log: /'
nbdcopy "$(uri vgsrv/sb64m)" "$WORK/snap.img" || e2e_fail "reading sb64m"
cmp -s "$WORK/snap.img" "$WORK/before.img" || e2e_fail "sb64m does not hold the origin's old content"
echo "  sb64m reads exactly the origin as it was before the overwrite"
e2e_server_stop

if [[ "$(id -u)" -eq 0 ]] && command -v lvs >/dev/null && command -v losetup >/dev/null; then
  loop=$(losetup -f --show "$WORK/pv0.img") || e2e_fail "no loop device for the lvm2 check"
  mkdir -p "$WORK/lvm"
  printf 'devices { use_devicesfile = 0 filter = [ "a|^%s$|", "r|.*|" ] }\nglobal { activation = 0 }\n' "$loop" \
    >"$WORK/lvm/lvm.conf"
  theirs=$(LVM_SYSTEM_DIR="$WORK/lvm" LVM_SUPPRESS_FD_WARNINGS=1 lvs --noheadings --units m --nosuffix \
    -o lv_size vgsrv/sb64m 2>/dev/null | tr -d ' ')
  losetup -d "$loop"
  e2e_expect_eq "$theirs" "$size" "lvm2's size of the grown sb64m"
  echo "  lvm2 reads the grown VG: sb64m is $theirs MiB"
elif [[ "${CI:-}" == true ]]; then
  e2e_fail "the lvm2 check needs root, losetup and lvm2"
fi

echo "== the same with the VG full"
setup 256
free=$(csq vgs --noheadings -o vg_free_count vgsrv | tr -d ' ')
cs lvcreate -l "$free" -n filler vgsrv >/dev/null
e2e_server_start
nbdcopy --flush "$WORK/dd.img" "$(uri vgsrv/b64m)" || e2e_fail "overwriting b64m"
attr=$(e2e_lv_field vgsrv/sb64m lv_attr)
[[ "$attr" == swi-I?s--- ]] || e2e_fail "sb64m attributes with the VG full: expected swi-I-s---, got $attr"
grep -q "Failed to extend snapshot vgsrv/sb64m: Insufficient free space: 2 extents needed, but only 0 available" \
  "$WORK/nbdkit.log" || e2e_fail "no 'Insufficient free space' in the server's log: $(tail -5 "$WORK/nbdkit.log")"
echo "  sb64m overflowed ($attr), as in the seed; the log says: Insufficient free space"
e2e_server_stop
echo "ok autoextend"
