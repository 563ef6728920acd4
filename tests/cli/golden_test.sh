#!/bin/bash
# Golden outputs of every report and display for the seed VG (plus an
# orphan PV), text and JSON. UPDATE_GOLDEN=1 rewrites golden/*.out.
. "$(dirname "$0")/lib.sh"
: "${GOLDEN_DIR:?directory of golden outputs}"

seed_vg || { fail "creating the seed VG"; finish; }
cs pvcreate --size 100M "$PVDIR/pv1.img" >/dev/null || fail "pvcreate pv1"

# name | arguments
cases=(
  "lvs|lvs"
  "lvs_all_devices|lvs -a -o +devices,chunk_size,seg_pe_ranges"
  "lvs_json|lvs --reportformat json"
  "lvs_json_all|lvs -a -o lv_name,origin,lv_size,chunk_size,snap_percent,lv_attr --reportformat json"
  "lvs_noheadings_sep|lvs --noheadings --separator : -o lv_name,lv_attr,lv_size,origin,data_percent"
  "lvs_units_k_nosuffix|lvs --units k --nosuffix -o lv_name,lv_size"
  "lvs_one|lvs vgsrv/sb64m2"
  "lvs_sort|lvs -O -lv_size,lv_name -o lv_name,lv_size,origin"
  "pvs_sort|pvs -O pv_free,-pv_name -o pv_name,pv_free"
  "vgs|vgs"
  "vgs_json|vgs --reportformat json"
  "vgs_extents|vgs -o +vg_extent_size,vg_extent_count,vg_free_count"
  "vgs_units_b|vgs --units b"
  "vgs_units_s|vgs --units s"
  "vgs_units_g_nosuffix|vgs --units g --nosuffix"
  "vgs_units_H|vgs --units H"
  "pvs|pvs"
  "pvs_json|pvs --reportformat json"
  "pvs_more|pvs -o +pe_start,dev_size,pv_uuid"
  "pvdisplay|pvdisplay"
  "vgdisplay|vgdisplay"
  "lvdisplay|lvdisplay"
  "dmsetup_table|dmsetup table"
  "dmsetup_status|dmsetup status"
  "lvmdevices|lvmdevices"
)

for c in "${cases[@]}"; do
  name=${c%%|*}
  args=${c#*|}
  # shellcheck disable=SC2086
  actual=$(cs $args 2>&1 | normalise; echo "rc=${PIPESTATUS[0]}")
  golden="$GOLDEN_DIR/$name.out"
  if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
    printf '%s\n' "$actual" >"$golden"
    continue
  fi
  if [ ! -f "$golden" ]; then
    fail "$name: no golden file $golden"
    continue
  fi
  expect_eq "$name ($args)" "$(cat "$golden")" "$actual"
done
finish
