#!/bin/bash
# The guest's half of kernel_merge (merge_test.sh), on VG $2 from the PV on
# /dev/vda; what it saw goes to $3 (sums, status).
#   continue  activate: the kernel's snapshot-merge target continues the
#             merge cowsnap began; wait until its status says done; record
#             the origin's and the other snapshot's checksums; deactivate.
#   begin     activate, start the merge of sb (lvconvert --merge -b) and
#             deactivate a moment later, stopping it part way.
source "$(dirname "$0")/guest_lib.sh"
mode=${1:?usage: merge_guest.sh continue|begin VG OUTDIR}
vg=${2:?usage: merge_guest.sh continue|begin VG OUTDIR}
out=${3:?usage: merge_guest.sh continue|begin VG OUTDIR}
mkdir -p "$out"

vgchange -ay "$vg"
case $mode in
  continue)
    dmsetup table "$vg-origin" | grep -q ' snapshot-merge ' ||
      guest_fail "the origin is not a snapshot-merge target: $(dmsetup table "$vg-origin")"
    # "used/total metadata": done when used == metadata.
    for ((i = 0; i < 3000; i++)); do
      status=$(dmsetup status "$vg-origin")
      read -r _ _ _ usage meta <<<"$status"
      [[ "${usage%/*}" == "$meta" ]] && break
      sleep 0.1
    done
    [[ "${usage%/*}" == "$meta" ]] || guest_fail "the kernel's merge did not finish: $(dmsetup status "$vg-origin")"
    echo "guest: the kernel's merge is done: $(dmsetup status "$vg-origin")"
    {
      echo "$vg/origin $(sha256sum "/dev/$vg/origin" | cut -d' ' -f1)"
      echo "$vg/other $(sha256sum "/dev/$vg/other" | cut -d' ' -f1)"
    } >"$out/sums"
    ;;
  begin)
    lvconvert --merge -b "$vg/sb" || guest_fail "lvconvert --merge failed"
    sleep 0.3
    dmsetup status "$vg-origin" | tee "$out/status"
    ;;
  *) guest_fail "unknown mode $mode" ;;
esac
vgchange -an "$vg"
echo "guest: $vg deactivated"
