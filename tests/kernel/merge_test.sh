#!/usr/bin/env bash
# kernel_merge: the kernel finishes a merge cowsnap began, and cowsnap
# finishes one the kernel began (lvconvert --merge, the snapshot-merge
# target), on the same PV.
#
# A. cowsnap: an origin with data, a snapshot sa (written into as well),
#    another snapshot, thousands of scattered 4 KiB writes to the origin
#    (so the merge takes one step per chunk); lvconvert --merge (deferred,
#    nothing running), then a server that stops after a few dozen steps
#    (COWSNAP_TEST_MERGE_STEP_LIMIT). In the guest lvm2 activates the VG:
#    the kernel's snapshot-merge target continues from the shrunk table.
#    Once its status says done, the origin must read what sa held and the
#    other snapshot what it held. Back on the host cowsnap finishes the
#    merge (removes sa) with the same content.
# B. A new snapshot sb and more scattered writes; in the guest lvm2 starts
#    the merge (lvconvert --merge -b) and deactivates the VG a moment
#    later, stopping the kernel's merge part way. cowsnap's server then
#    continues it: the origin reads what sb held.
source "$(dirname "$0")/../e2e/e2e_lib.sh"
source "$(dirname "$0")/kernel_lib.sh"
source "$(dirname "$0")/store_lib.sh"
kernel_require_guest
store_require_tools
e2e_init

MiB=$((1 << 20))
VG=vgm
PV=$WORK/pv0.img

# merge_in_guest MODE DIR: merge_guest.sh MODE in the guest, its records
# in $WORK/scratch/DIR.
merge_in_guest() {
  local rc=0
  mkdir -p "$WORK/scratch"
  in_guest --scratch "$WORK/scratch" --disk "$PV" --timeout 900 \
    "$KERNEL_TESTS_DIR/merge_guest.sh" "$1" "$VG" "$WORK/scratch/$2" || rc=$?
  [[ $rc -eq 0 ]] || e2e_fail "the guest script failed (exit $rc)"
}
sum_of() { /usr/bin/python3 "$STORE_TOOL" sums "$SOCK" "$VG/$1" | cut -d' ' -f2; }
merging() { csq lvs -a --noheadings -o lv_name,lv_merging "$VG" | tr -s ' ' | grep -q "\[$1\] merging"; }

store_make_vg "$VG"
csq lvcreate -s -c 4K -L 20M -n sa "$VG/origin" >/dev/null
csq lvcreate -s -c 8K -L 20M -n other "$VG/origin" >/dev/null
store_write "$VG/sa:$((3 * MiB + 512)):8192:7"
e2e_scatter "nbd+unix:///$VG/origin?socket=$SOCK" 3000 1
sa_sum=$(sum_of sa)
other_sum=$(sum_of other)
full_pct=$(e2e_lv_field "$VG/sa" data_percent)
store_serve_stop

echo "== A. cowsnap begins the merge, the kernel continues it"
csq lvconvert --merge "$VG/sa"
COWSNAP_TEST_MERGE_STEP_LIMIT=40 store_serve_start
for ((i = 0; i < 200; i++)); do
  awk -v a="$(e2e_lv_field "$VG/sa" data_percent)" -v b="$full_pct" 'BEGIN {exit !(a < b)}' && break
  sleep 0.1
done
sleep 0.5  # the rest of the 40 steps
store_serve_stop
merging sa || e2e_fail "sa is not merging after 40 steps: $(csq lvs -a "$VG")"
part_pct=$(e2e_lv_field "$VG/sa" data_percent)
awk -v a="$part_pct" -v b="$full_pct" 'BEGIN {exit !(a < b)}' ||
  e2e_fail "40 steps merged nothing: Data% $part_pct, before $full_pct"
echo "  cowsnap merged 40 runs: sa's Data% $full_pct -> $part_pct"

merge_in_guest continue a
e2e_expect_eq "$(grep "^$VG/origin " "$WORK/scratch/a/sums" | cut -d' ' -f2)" "$sa_sum" \
  "the origin after the kernel's merge (sa's content)"
e2e_expect_eq "$(grep "^$VG/other " "$WORK/scratch/a/sums" | cut -d' ' -f2)" "$other_sum" \
  "the other snapshot, read by the kernel"
echo "  the kernel finished cowsnap's merge: the origin reads sa's content, other is unchanged"
store_serve_start
e2e_wait_merged "$VG/sa"
e2e_expect_eq "$(sum_of origin)" "$sa_sum" "the origin served by cowsnap after the merge"
e2e_expect_eq "$(sum_of other)" "$other_sum" "the other snapshot served by cowsnap"

echo "== B. the kernel begins a merge, cowsnap continues it"
csq lvcreate -s -c 4K -L 20M -n sb "$VG/origin" >/dev/null
e2e_scatter "nbd+unix:///$VG/origin?socket=$SOCK" 3000 2
sb_sum=$(sum_of sb)
other_sum=$(sum_of other)
store_serve_stop
merge_in_guest begin b
if merging sb; then
  echo "  the kernel stopped part way: sb's Data% $(e2e_lv_field "$VG/sb" data_percent)"
else
  echo "  the kernel (and lvm2's poll) finished the merge before the VG was deactivated"
fi
store_serve_start
merging sb 2>/dev/null && e2e_wait_merged "$VG/sb"
e2e_expect_eq "$(sum_of origin)" "$sb_sum" "the origin after cowsnap finished the kernel's merge (sb's content)"
e2e_expect_eq "$(sum_of other)" "$other_sum" "the other snapshot after the merge"
store_serve_stop
echo "PASS: merges cross between the kernel and cowsnap in both directions with the same content"
