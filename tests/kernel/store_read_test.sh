#!/usr/bin/env bash
# kernel_store_read: the kernel reads the PV and COW stores cowsnap wrote.
#
# On the host, with the offline CLI and then a cowsnap server (`cowsnap
# serve` on a Unix socket, data written over NBD by store_tool.py): a VG
# on one small PV file with a plain LV and an origin, snapshots with chunk
# sizes from 4 KiB to 512 KiB taken at different times, one grown by
# lvextend after it was half full (its COW store then has two segments),
# one too small for what is written (Invalid), writes into snapshots, and
# 1 KiB writes at odd sector offsets and at unaligned byte offsets. Before
# the server stops: sha256 of every LV as cowsnap serves it, and `cowsnap
# dmsetup table` and `status`; after it stops, the same from the offline
# CLI.
#
# In the guest, the PV file is /dev/vda and lvm2 activates the VG
# (store_read_guest.sh). Then, on the host: the kernel's `dmsetup status`
# equals cowsnap's byte for byte, its `dmsetup table` equals cowsnap's once
# the device names in target parameters (the PV path, dm names) are written
# as the guest's major:minor, and every LV reads the same, an invalid
# snapshot failing with EIO in both.
source "$(dirname "$0")/../e2e/e2e_lib.sh"
source "$(dirname "$0")/kernel_lib.sh"
source "$(dirname "$0")/store_lib.sh"
kernel_require_guest
store_require_tools
e2e_init

MiB=$((1 << 20))
VG=vgk
PV=$WORK/pv0.img
store_make_vg "$VG"

# Three snapshots of the first content; s8k has room for what comes next
# but not for all of it, until it grows.
csq lvcreate -s -c 4K -L 20M -n s4k "$VG/origin" >/dev/null
csq lvcreate -s -c 8K -L 4M -n s8k "$VG/origin" >/dev/null
csq lvcreate -s -c 16K -L 20M -n s16k "$VG/origin" >/dev/null
store_write "$VG/origin:$((1 * MiB)):$((3 * MiB)):2" \
  "$VG/origin:777:1000:20" \
  "$VG/origin:$((5 * MiB + 3 * 512)):1024:21"

# Three more of the second content, and one far too small (1 MiB).
csq lvcreate -s -c 64K -L 20M -n s64k "$VG/origin" >/dev/null
csq lvcreate -s -c 128K -L 20M -n s128k "$VG/origin" >/dev/null
csq lvcreate -s -c 512K -L 20M -n s512k "$VG/origin" >/dev/null
csq lvcreate -s -c 4K -L 1M -n sbad "$VG/origin" >/dev/null

# Writes into snapshots: whole chunks and pieces of chunks.
store_write "$VG/s4k:$((2 * MiB + 7 * 512)):1024:30" \
  "$VG/s4k:$((9 * MiB + 3 * 512)):1024:31" \
  "$VG/s16k:$((4 * MiB)):$((256 * 1024)):32" \
  "$VG/s512k:700001:1024:33" \
  "$VG/s64k:$((12 * MiB + 5 * 512)):1024:34" \
  "$VG/s128k:$((3 * MiB + 131072 - 512)):1024:35"

# s8k is 3 MiB full: it grows to 20 MiB before the next writes.
csq lvextend -L +16M "$VG/s8k" >/dev/null

# 2 MiB into the origin overflows sbad; then more, some of it in pieces.
store_write "$VG/origin:$((6 * MiB)):$((2 * MiB)):3" \
  "$VG/origin:$((8 * MiB + 3 * 512)):1024:40" \
  "$VG/origin:$((9 * MiB + 9 * 512)):1024:41" \
  "$VG/origin:$((15 * MiB + 512)):1024:42" \
  "$VG/origin:$((14 * MiB + 4095)):1000:43" \
  "$VG/origin:$((10 * MiB)):$((4 * MiB)):5" \
  "$VG/plain:$((1 * MiB + 512)):1024:44"

e2e_expect_eq "$(e2e_lv_field "$VG/sbad" lv_attr | cut -c5)" "I" "sbad's state after 2 MiB into its origin"
for lv in s4k s8k s16k s64k s128k s512k; do
  [[ "$(e2e_lv_field "$VG/$lv" lv_attr | cut -c5)" == a ]] || e2e_fail "$lv is not a valid active snapshot: $(csq lvs "$VG/$lv")"
done
csq lvs -a -o lv_name,lv_attr,lv_size,origin,snap_percent,chunk_size,seg_pe_ranges "$VG"

store_cowsnap_sums "$VG" >"$WORK/cowsnap.sums"
store_check_sums "$WORK/cowsnap.sums"
csq dmsetup table >"$WORK/cowsnap.table"
csq dmsetup status >"$WORK/cowsnap.status"
store_serve_stop
csq dmsetup table >"$WORK/offline.table"
csq dmsetup status >"$WORK/offline.status"
store_compare "dmsetup table (the server, offline CLI)" "$WORK/cowsnap.table" "$WORK/offline.table"
store_compare "dmsetup status (the server, offline CLI)" "$WORK/cowsnap.status" "$WORK/offline.status"
grep -q "^$VG-s8k-cow: 8192 " "$WORK/cowsnap.table" ||
  e2e_fail "the grown s8k's COW device is not in two segments: $(grep "^$VG-s8k-cow" "$WORK/cowsnap.table")"
echo "cowsnap: $(wc -l <"$WORK/cowsnap.sums") LVs read, server stopped"

set +e
in_guest --scratch "$WORK/scratch" --disk "$PV" --timeout 900 \
  "$KERNEL_TESTS_DIR/store_read_guest.sh" "$VG" "$WORK/scratch/kernel"
rc=$?
set -e
[[ $rc -eq 0 ]] || e2e_fail "the guest script failed (exit $rc)"
K=$WORK/scratch/kernel

store_map_table "$WORK/cowsnap.table" "$K" >"$WORK/cowsnap.table.mapped"
store_compare "dmsetup table (devices as major:minor)" "$WORK/cowsnap.table.mapped" "$K/table"
store_compare "dmsetup status" "$WORK/cowsnap.status" "$K/status"
store_compare "LV checksums" "$WORK/cowsnap.sums" "$K/sums"
store_expect_status "$K" "$VG-sbad" "0 32768 snapshot Invalid"
store_expect_status "$K" "$VG-origin-real" "0 32768 linear "
grep -q "^$VG/sbad EIO$" "$K/sums" || e2e_fail "the kernel read the invalid sbad"
echo "PASS: the kernel reads cowsnap's stores: same tables, status lines and contents ($(wc -l <"$K/sums") LVs)"
