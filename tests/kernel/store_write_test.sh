#!/usr/bin/env bash
# kernel_store_write: cowsnap reads the COW stores and metadata the kernel
# and lvm2 wrote.
#
# On the host, cowsnap makes a VG on one small PV file: a plain LV, an
# origin with data, snapshots with 4, 64 and 512 KiB chunks, and one with
# 1 MiB of COW (sbad). In the guest (store_write_guest.sh) lvm2 activates
# it and the kernel writes, O_DIRECT and fsynced: 2 MiB into the origin
# (sbad overflows: the kernel marks its store invalid), a snapshot made by
# lvm2 there (sguest: a store the kernel initialised), 1 KiB writes at odd
# sectors, writes into three snapshots, an lvextend of the active s512k
# and 4 MiB more into the origin; `dmsetup status` and sha256 of every LV
# are taken while the VG is active, then lvm2 deactivates it.
#
# Back on the host: `cowsnap dmsetup status` (offline, and through a
# server) equals the kernel's byte for byte, its table equals the kernel's
# with device names written as the guest's major:minor, every LV served
# over NBD has the kernel's checksum, and sbad is invalid (lvs state I,
# EIO on read).
source "$(dirname "$0")/../e2e/e2e_lib.sh"
source "$(dirname "$0")/kernel_lib.sh"
source "$(dirname "$0")/store_lib.sh"
kernel_require_guest
store_require_tools
e2e_init

MiB=$((1 << 20))
VG=vgw
PV=$WORK/pv0.img
store_make_vg "$VG"
store_serve_stop
# Offline: the stores are made by the CLI, each with its header only.
csq lvcreate -s -c 4K -L 20M -n s4k "$VG/origin" >/dev/null
csq lvcreate -s -c 64K -L 20M -n s64k "$VG/origin" >/dev/null
csq lvcreate -s -c 512K -L 8M -n s512k "$VG/origin" >/dev/null
csq lvcreate -s -c 8K -L 1M -n sbad "$VG/origin" >/dev/null

# What the guest writes, by name: r* whole regions, k* 1 KiB pieces.
P=$WORK/scratch/patterns
mkdir -p "$P"
for spec in r2:$((2 * MiB)):2 r4:$((256 * 1024)):4 r5:$((4 * MiB)):5 \
  k1:1024:11 k2:1024:12 k3:1024:13 k4:1024:14 k5:1024:15 k6:1024:16; do
  IFS=: read -r name length seed <<<"$spec"
  /usr/bin/python3 "$STORE_TOOL" pattern "$P/$name" "$length" "$seed"
done

set +e
in_guest --scratch "$WORK/scratch" --disk "$PV" --timeout 900 \
  "$KERNEL_TESTS_DIR/store_write_guest.sh" "$VG" "$WORK/scratch/kernel" "$P"
rc=$?
set -e
[[ $rc -eq 0 ]] || e2e_fail "the guest script failed (exit $rc)"
K=$WORK/scratch/kernel
store_check_sums "$K/sums"
grep -q "^$VG/sbad EIO$" "$K/sums" || e2e_fail "the kernel read sbad after its overflow"
grep -q "^$VG/sguest [0-9a-f]" "$K/sums" || e2e_fail "the guest's snapshot sguest was not read"

# Offline: lvm2's metadata and the kernel's stores as the CLI reads them.
csq lvs -a -o lv_name,lv_attr,lv_size,origin,snap_percent,chunk_size,seg_pe_ranges "$VG"
e2e_expect_eq "$(e2e_lv_field "$VG/sbad" lv_attr | cut -c5)" "I" "sbad's state, offline"
csq dmsetup status >"$WORK/offline.status"
csq dmsetup table >"$WORK/offline.table"
store_compare "dmsetup status (offline CLI)" "$WORK/offline.status" "$K/status"
store_map_table "$WORK/offline.table" "$K" >"$WORK/offline.table.mapped"
store_compare "dmsetup table (offline CLI, devices as major:minor)" "$WORK/offline.table.mapped" "$K/table"

# Through a server: the same status, and every LV reads what the kernel read.
store_serve_start
store_cowsnap_sums "$VG" >"$WORK/cowsnap.sums"
csq dmsetup status >"$WORK/cowsnap.status"
e2e_expect_eq "$(e2e_lv_field "$VG/sbad" lv_attr | cut -c5)" "I" "sbad's state, served"
store_serve_stop
store_compare "dmsetup status (the server)" "$WORK/cowsnap.status" "$K/status"
store_compare "LV checksums" "$WORK/cowsnap.sums" "$K/sums"
echo "PASS: cowsnap reads the kernel's stores: same status lines and contents ($(wc -l <"$K/sums") LVs), sbad invalid"
