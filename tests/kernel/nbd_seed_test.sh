#!/usr/bin/env bash
# kernel_nbd_seed: the seed experiment through the kernel's nbd driver. The
# cowsnap server (nbdkit + the plugin) runs on the host on TCP
# 127.0.0.1:PORT, over the seed's VG (vgsrv, 32 MiB extents, origin b64m of
# 64 MiB); in one guest run (Debian's 6.1 kernel, the host's nbd-client):
# the exports are listed, b64m is attached at /dev/nbd0, gets ext4 and the
# seed's files (fixed bytes, seed_files.py); the guest freezes it and the
# host takes both snapshots online (sb64m 32 MiB, sb64m2 64 MiB, 4 KiB
# chunks) through the running server; thawed, the snapshots are attached at
# /dev/nbd1 and /dev/nbd2 and mounted read-only, 40 MiB go into the origin's
# filesystem, and then sb64m's reads fail with EIO in the guest while
# sb64m2 holds every original file; e2fsck is clean on b64m and sb64m2 and
# each device is disconnected cleanly. On the host afterwards: sb64m is
# invalid, sb64m2 valid.
#
# Guest and host meet through files in the shared scratch folder: the guest
# writes `frozen`, the host answers `snapshots-taken` (or `host-failed`).
source "$(dirname "$0")/../e2e/e2e_lib.sh"
source "$(dirname "$0")/kernel_lib.sh"
kernel_require_guest
e2e_require_tools nbdkit nbdinfo python3
e2e_init
SCRATCH=$WORK/scratch
mkdir -p "$SCRATCH"

kernel_seed_vg_on_tcp
echo "host: cowsnap server on 127.0.0.1:$port serving vgsrv/b64m (64 MiB)"

kernel_seed_files
echo "host: $(wc -l <"$SCRATCH/orig.sha256") seed files, $(du -sk "$SCRATCH/files" | cut -f1) KiB"

cat >"$WORK/guest.sh" <<'GUEST'
#!/bin/bash
source "$1/guest_lib.sh"
port=$2
S=$GUEST_SCRATCH
M=/run/mnt
say() { echo "guest [$(cut -d" " -f1 /proc/uptime)s]: $*"; }
say "script started"
attach() {
  nbd-client 10.0.2.2 "$port" "/dev/$1" -N "$2" >"$S/attach-$1.log" 2>&1 ||
    guest_fail "nbd-client $2 on /dev/$1: $(cat "$S/attach-$1.log")"
  local size
  size=$(cat "/sys/block/$1/size")
  [[ $size -eq 131072 ]] || guest_fail "/dev/$1 ($2) has $size sectors, not 131072 (64 MiB)"
  say "$2 attached at /dev/$1 (64 MiB)"
}
mkdir -p $M/b64m $M/sb64m $M/sb64m2

nbd-client -l 10.0.2.2 "$port" >"$S/list.txt" 2>&1 || guest_fail "nbd-client -l: $(cat "$S/list.txt")"
say "nbd-client -l 10.0.2.2 $port:"
sed 's/^/  /' "$S/list.txt"
grep -Eq '^vgsrv/b64m([: ]|$)' "$S/list.txt" || guest_fail "vgsrv/b64m is not in the export list"

attach nbd0 vgsrv/b64m
mkfs.ext4 -q -F -b 1024 -N 16384 -J size=4 /dev/nbd0
mount /dev/nbd0 $M/b64m
cp -r "$S/files/." $M/b64m/
sync
guest_seed_files_match $M/b64m
say "ext4 on /dev/nbd0, $(wc -l <"$S/orig.sha256") files copied in; $(df -k --output=used $M/b64m | tail -1) KiB used"

fsfreeze -f $M/b64m
touch "$S/frozen"
say "filesystem frozen; waiting for the host's snapshots"
for ((i = 0; i < 1200; i++)); do
  [[ -e "$S/snapshots-taken" || -e "$S/host-failed" ]] && break
  sleep 0.1
done
fsfreeze -u $M/b64m
[[ -e "$S/snapshots-taken" ]] || guest_fail "the host did not take the snapshots"
say "thawed: the host took sb64m and sb64m2"

attach nbd1 vgsrv/sb64m
attach nbd2 vgsrv/sb64m2
for d in nbd1 nbd2; do
  features=$(dumpe2fs -h /dev/$d 2>/dev/null | grep '^Filesystem features:')
  [[ $features != *needs_recovery* ]] || guest_fail "the snapshot on /dev/$d needs journal recovery: $features"
done
mount -o ro /dev/nbd1 $M/sb64m
mount -o ro /dev/nbd2 $M/sb64m2
guest_seed_files_match $M/sb64m
guest_seed_files_match $M/sb64m2
say "both snapshots clean (no journal recovery needed), mounted -o ro, every file identical; root reads: $(cat $M/sb64m/root) $(cat $M/sb64m2/root)"

t0=$(date +%s.%N)
dd if=/dev/zero of=$M/b64m/40M.img bs=1M count=40 conv=fsync status=none || guest_fail "writing 40 MiB into the origin"
say "40 MiB written into the origin's filesystem (conv=fsync) in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s"
sync
echo 3 >/proc/sys/vm/drop_caches

if dd if=/dev/nbd1 of=/dev/null bs=4k count=16 iflag=direct status=none 2>"$S/dd1.err"; then
  guest_fail "reading the invalid snapshot sb64m (/dev/nbd1) succeeded"
fi
grep -q 'Input/output error' "$S/dd1.err" || guest_fail "reading /dev/nbd1 did not fail with EIO: $(cat "$S/dd1.err")"
say "dd iflag=direct from /dev/nbd1 (sb64m): $(grep -m1 -o 'Input/output error' "$S/dd1.err")"
if (cat $M/sb64m/root && sha256sum $M/sb64m/bin/* $M/sb64m/log/*) >/dev/null 2>"$S/cat1.err"; then
  guest_fail "files of the invalid snapshot sb64m are still readable"
fi
grep -q 'Input/output error' "$S/cat1.err" || guest_fail "reading sb64m's files did not fail with EIO: $(cat "$S/cat1.err")"
say "reading sb64m's files: $(grep -m1 'Input/output error' "$S/cat1.err")"
guest_seed_files_match $M/sb64m2
say "sb64m2: every original file byte-identical (read after drop_caches)"
guest_seed_files_match $M/b64m
[[ $(stat -c %s $M/b64m/40M.img) -eq 41943040 ]] || guest_fail "40M.img on the origin has the wrong size"

umount $M/sb64m $M/sb64m2 $M/b64m
for d in nbd0 nbd2; do
  e2fsck -fn /dev/$d >"$S/fsck-$d.log" 2>&1 || { cat "$S/fsck-$d.log"; guest_fail "e2fsck -fn /dev/$d"; }
  say "e2fsck -fn /dev/$d: $(tail -n 1 "$S/fsck-$d.log")"
done
for d in nbd0 nbd1 nbd2; do
  nbd-client -d /dev/$d >"$S/detach-$d.log" 2>&1 || guest_fail "nbd-client -d /dev/$d: $(cat "$S/detach-$d.log")"
done
for ((i = 0; i < 50; i++)); do
  busy=$(for d in nbd0 nbd1 nbd2; do [[ -e /sys/block/$d/pid || $(cat /sys/block/$d/size) -ne 0 ]] && echo $d; done || true)
  [[ -z $busy ]] && break
  sleep 0.1
done
[[ -z $busy ]] || guest_fail "still connected after nbd-client -d: $busy"
say "nbd-client -d: nbd0, nbd1, nbd2 disconnected"
GUEST
chmod +x "$WORK/guest.sh"

t0=$(e2e_now)
in_guest --scratch "$SCRATCH" --timeout 420 "$WORK/guest.sh" "$KERNEL_TESTS_DIR" "$port" >"$WORK/guest.log" 2>&1 &
guest_pid=$!
# The host's half: wait for the frozen filesystem, snapshot it.
kernel_snapshot_when_frozen "$guest_pid"
[[ -e "$SCRATCH/snapshots-taken" ]] && csq lvs vgsrv
rc=0
wait "$guest_pid" || rc=$?
cat "$WORK/guest.log"
echo "host: the guest run took $(e2e_elapsed "$t0")s"
[[ $rc -ne 125 ]] || e2e_fail "the guest did not run the script to its end"
[[ -e "$SCRATCH/snapshots-taken" ]] || e2e_fail "the snapshots were not taken (see above)"
[[ $rc -eq 0 ]] || e2e_fail "the guest script failed (exit $rc)"

e2e_wait_unused vgsrv
csq lvs vgsrv
e2e_expect_eq "$(e2e_lv_field vgsrv/sb64m lv_attr)" "swi-I-s---" "sb64m attributes on the host"
e2e_expect_eq "$(e2e_lv_field vgsrv/sb64m data_percent)" "100.00" "sb64m Data% on the host"
e2e_expect_eq "$(e2e_lv_field vgsrv/sb64m2 lv_attr)" "swi-a-s---" "sb64m2 attributes on the host"
echo "host: sb64m invalid (swi-I-s---), sb64m2 valid at $(e2e_lv_field vgsrv/sb64m2 data_percent)%"
echo "PASS: the seed through the kernel's nbd driver"
