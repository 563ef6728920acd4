# Sourced by the store tests' guest scripts (store_read_guest.sh,
# store_write_guest.sh) after guest_lib.sh.

# store_record VG DIR: what the kernel shows of VG's active LVs, into DIR:
#   table, status  dmsetup's own output, every device
#   devs           name:major:minor of every dm device
#   vda            /dev/vda's major:minor (the PV)
#   sums           "VG/LV SHA256" of every LV read through the kernel, or
#                  "VG/LV EIO" when the read fails with EIO (an invalid
#                  snapshot)
#   lvs            lvm2's lvs -a of VG
store_record() {
  local vg=$1 dir=$2 lv sum
  mkdir -p "$dir"
  dmsetup table >"$dir/table"
  dmsetup status >"$dir/status"
  dmsetup info -c --noheadings -o name,major,minor --separator : >"$dir/devs"
  cat /sys/block/vda/dev >"$dir/vda"
  : >"$dir/sums"
  for lv in $(lvs --noheadings -o lv_name "$vg" | tr -d ' ' | LC_ALL=C sort); do
    if sum=$(sha256sum "/dev/$vg/$lv" 2>"$dir/sha256sum.err"); then
      echo "$vg/$lv ${sum%% *}" >>"$dir/sums"
    elif grep -q 'Input/output error' "$dir/sha256sum.err"; then
      echo "$vg/$lv EIO" >>"$dir/sums"
    else
      guest_fail "sha256sum /dev/$vg/$lv: $(cat "$dir/sha256sum.err")"
    fi
  done
  rm -f "$dir/sha256sum.err"
  lvs -a -o lv_name,lv_attr,lv_size,origin,snap_percent,chunk_size "$vg" >"$dir/lvs"
}
