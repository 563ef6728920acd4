#!/bin/bash
# The guest's half of kernel_store_write (store_write_test.sh): the kernel
# writes to VG $1 (from the PV on /dev/vda that cowsnap made), with the
# pattern files of $3; what it shows while the VG is active goes to $2
# (store_record); then the VG is deactivated. Every write is O_DIRECT and
# fsynced, so it is on the disk before the VG goes down.
source "$(dirname "$0")/guest_lib.sh"
source "$(dirname "$0")/store_guest_lib.sh"
vg=${1:?usage: store_write_guest.sh VG OUTDIR PATTERNS}
out=${2:?usage: store_write_guest.sh VG OUTDIR PATTERNS}
pat=${3:?usage: store_write_guest.sh VG OUTDIR PATTERNS}

# put FILE LV SECTOR: FILE's bytes at 512-byte sector SECTOR of the LV, in
# writes of up to 64 KiB.
put() {
  dd if="$1" of="/dev/$vg/$2" bs=64K seek=$(($3 * 512)) oflag=direct,seek_bytes conv=fsync status=none
}

vgchange -ay "$vg"
# 2 MiB into the origin: sbad (1 MiB of COW) overflows.
put "$pat/r2" origin $((2 * 2048))
dmsetup status "$vg-sbad" | grep -qx '0 32768 snapshot Invalid' ||
  guest_fail "sbad is not invalid after 2 MiB into its origin: $(dmsetup status "$vg-sbad")"
# A snapshot lvm2 and the kernel make, of the origin as it is now.
lvcreate -s -c 16K -L 20M -n sguest "$vg/origin"
# 1 KiB writes at odd sectors: pieces of chunks, copied out whole.
put "$pat/k1" origin 7
put "$pat/k2" origin $((5 * 2048 + 3))
put "$pat/k3" origin $((15 * 2048 + 1023))
# Into snapshots: a whole 256 KiB and pieces.
put "$pat/r4" s64k $((4 * 2048))
put "$pat/k4" s4k $((9 * 2048 + 3))
put "$pat/k5" sguest $((3 * 2048 + 31))
put "$pat/k6" s512k $((1 * 2048 + 1))
# s512k (8 MiB: 14 data chunks) holds 8; grown while active, then 4 MiB
# (8 chunks) more.
lvextend -L +16M "$vg/s512k"
put "$pat/r5" origin $((8 * 2048))
sync
store_record "$vg" "$out"
cat "$out/lvs"
cat "$out/status"
vgchange -an "$vg"
[[ -z "$(dmsetup ls | grep -v '^No devices found')" ]] || guest_fail "dm devices left after vgchange -an: $(dmsetup ls)"
echo "guest: $vg written, recorded, deactivated"
