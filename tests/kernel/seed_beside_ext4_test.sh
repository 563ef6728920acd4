#!/usr/bin/env bash
# kernel_seed_beside_ext4: kernel_seed_beside's comparison with the seed's
# filesystem steps instead of raw block writes. In one guest run (Debian's
# 6.1 kernel, the host's lvm2, mkfs.ext4 and nbd-client), twice: b64m
# (64 MiB) gets ext4 (1 KiB blocks, 16384 inodes, 4 MiB journal, no lazy
# init, no discard) and the
# seed's files (fixed bytes, seed_files.py); the snapshots sb64m (32 MiB)
# and sb64m2 (64 MiB, 4 KiB chunks) are taken of the mounted filesystem;
# 40 MiB go into it (dd conv=fsync); it is unmounted. Once on lvm2 in the
# guest (a sparse PV as /dev/vda; lvcreate -s suspends the origin, which
# freezes the filesystem), once on cowsnap through the kernel's nbd driver
# (the server on the host, TCP; the guest freezes the filesystem with
# fsfreeze and the host takes the snapshots through the running server).
#
# A filesystem's writes are not the same from run to run (the journal's
# commits, the order of writeback), so: attributes and sb64m's `Invalid`
# must be equal, sb64m2's Data% may differ by at most 1.00 (percentage
# points), and sb64m2 must hold every original file on both.
source "$(dirname "$0")/../e2e/e2e_lib.sh"
source "$(dirname "$0")/kernel_lib.sh"
kernel_require_guest
e2e_require_tools nbdkit nbdinfo python3
e2e_init
SCRATCH=$WORK/scratch
mkdir -p "$SCRATCH"
TOLERANCE=1.00

kernel_seed_vg_on_tcp
kernel_seed_files
truncate -s 512M "$WORK/kpv.img"

cat >"$WORK/guest.sh" <<'GUEST'
#!/bin/bash
source "$1/guest_lib.sh"
port=$2
S=$GUEST_SCRATCH
M=/run/mnt
say() { echo "guest [$(cut -d" " -f1 /proc/uptime)s]: $*"; }
mkdir -p $M/k $M/ks $M/c $M/cs
cat >>"$LVM_SYSTEM_DIR/lvm.conf" <<'CONF'
devices {
  global_filter = [ "a|^/dev/vda$|", "r|.*|" ]
}
CONF
# fill DEV DIR: the seed's filesystem and files. The inode tables and the
# journal are written by mkfs, not later by the kernel's lazy init thread
# (whose writes would land before or after the snapshots as timing has it),
# and nothing is discarded: the same writes on both sides.
fill() {
  mkfs.ext4 -q -F -b 1024 -N 16384 -J size=4 -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$1"
  mount "$1" "$2"
  cp -r "$S/files/." "$2/"
  sync
  guest_seed_files_match "$2"
}
write40() { dd if=/dev/zero of="$1/40M.img" bs=1M count=40 conv=fsync status=none || guest_fail "40 MiB into $1"; }

pvcreate -q /dev/vda
vgcreate -q -s 32M vgsrv /dev/vda
lvcreate -q -y -L 64M -n b64m vgsrv
fill /dev/mapper/vgsrv-b64m $M/k
lvcreate -q -y -L 32M -s -c 4k -n sb64m vgsrv/b64m
lvcreate -q -y -L 64M -s -c 4k -n sb64m2 vgsrv/b64m
write40 $M/k
umount $M/k
lvs --noheadings -o lv_name,lv_attr,origin,data_percent vgsrv >"$S/kernel.lvs"
dmsetup status >"$S/kernel.status"
mount -o ro /dev/mapper/vgsrv-sb64m2 $M/ks
guest_seed_files_match $M/ks
umount $M/ks
say "lvm2: ext4, files, two snapshots of the mounted origin, 40 MiB, unmounted; sb64m2 holds every file"

nbd-client 10.0.2.2 "$port" /dev/nbd0 -N vgsrv/b64m >"$S/nbd0.log" 2>&1 || guest_fail "nbd-client b64m: $(cat "$S/nbd0.log")"
fill /dev/nbd0 $M/c
fsfreeze -f $M/c
touch "$S/frozen"
for ((i = 0; i < 1200; i++)); do
  [[ -e "$S/snapshots-taken" || -e "$S/host-failed" ]] && break
  sleep 0.1
done
fsfreeze -u $M/c
[[ -e "$S/snapshots-taken" ]] || guest_fail "the host did not take the snapshots"
write40 $M/c
umount $M/c
nbd-client 10.0.2.2 "$port" /dev/nbd2 -N vgsrv/sb64m2 >"$S/nbd2.log" 2>&1 || guest_fail "nbd-client sb64m2: $(cat "$S/nbd2.log")"
mount -o ro /dev/nbd2 $M/cs
guest_seed_files_match $M/cs
umount $M/cs
nbd-client -d /dev/nbd2 >/dev/null 2>&1 || guest_fail "nbd-client -d /dev/nbd2"
nbd-client -d /dev/nbd0 >/dev/null 2>&1 || guest_fail "nbd-client -d /dev/nbd0"
say "cowsnap through /dev/nbd0: the same steps (fsfreeze while the host took the snapshots); sb64m2 holds every file"
GUEST
chmod +x "$WORK/guest.sh"

t0=$(e2e_now)
in_guest --disk "$WORK/kpv.img" --scratch "$SCRATCH" --timeout 400 "$WORK/guest.sh" "$KERNEL_TESTS_DIR" "$port" >"$WORK/guest.log" 2>&1 &
guest_pid=$!
kernel_snapshot_when_frozen "$guest_pid" -c 4k
rc=0
wait "$guest_pid" || rc=$?
cat "$WORK/guest.log"
echo "host: the guest run took $(e2e_elapsed "$t0")s"
[[ -e "$SCRATCH/snapshots-taken" ]] || e2e_fail "the host did not take cowsnap's snapshots"
[[ $rc -eq 0 ]] || e2e_fail "the guest script failed (exit $rc)"
e2e_wait_unused vgsrv
csq lvs --noheadings -o lv_name,lv_attr,origin,data_percent vgsrv >"$WORK/cowsnap.lvs"
csq dmsetup status >"$WORK/cowsnap.status"

FAILS=0
# row LABEL KERNEL COWSNAP RULE: RULE is "equal" or "within T".
row() {
  local verdict=same
  case $4 in
    equal) [[ "$2" == "$3" ]] || verdict=DIFFERS ;;
    within*) awk -v a="${2##* }" -v b="${3##* }" -v t="${4#within }" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(d <= t)}' ||
      verdict="DIFFERS by more than ${4#within }" ;;
  esac
  [[ $verdict == same ]] || FAILS=$((FAILS + 1))
  [[ $verdict != same || "$2" == "$3" ]] || verdict="within ${4#within }"
  printf '  %-22s %-36s %-36s %s\n' "$1" "$2" "$3" "$verdict"
}
field() { awk -v n="$2" '$1 == n {print $2, $3, $4}' "$1"; }
status() { sed -n "s/^$2: *//p" "$1" | sed 's/ *$//'; }
printf '\nthe ext4 steps (Data%% of sb64m2 within %s; the rest equal):\n' "$TOLERANCE"
printf '  %-22s %-36s %-36s\n' "" "kernel 6.1, lvm2 2.03.16" "cowsnap"
row "lvs b64m" "$(field "$SCRATCH/kernel.lvs" b64m)" "$(field "$WORK/cowsnap.lvs" b64m)" equal
row "lvs sb64m" "$(field "$SCRATCH/kernel.lvs" sb64m)" "$(field "$WORK/cowsnap.lvs" sb64m)" equal
k=$(field "$SCRATCH/kernel.lvs" sb64m2)
c=$(field "$WORK/cowsnap.lvs" sb64m2)
row "lvs sb64m2 attr" "${k%% *}" "${c%% *}" equal
row "lvs sb64m2 Data%" "${k##* }" "${c##* }" "within $TOLERANCE"
row "vgsrv-sb64m" "$(status "$SCRATCH/kernel.status" vgsrv-sb64m)" "$(status "$WORK/cowsnap.status" vgsrv-sb64m)" equal
printf '  %-22s %-36s %-36s %s\n' "vgsrv-sb64m2" "$(status "$SCRATCH/kernel.status" vgsrv-sb64m2)" \
  "$(status "$WORK/cowsnap.status" vgsrv-sb64m2)" "(shown)"
[[ $FAILS -eq 0 ]] || e2e_fail "$FAILS values differ between the kernel's LVM and cowsnap beyond the stated rule (table above)"
echo "PASS: the seed's ext4 steps give the same states on the kernel's LVM and on cowsnap (sb64m2 Data% within $TOLERANCE)"
