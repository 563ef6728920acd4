#!/bin/bash
# lvm2 interop at CLI level: real lvm2 (2.03, without device-mapper) reads
# the seed VG cowsnap wrote, through a loop device, and reports the same
# names, sizes, origins and chunk sizes as `cowsnap lvs`.
# Needs root, losetup and lvm2: skipped (exit 77) without them, unless
# CI=true, where that is a failure.
. "$(dirname "$0")/lib.sh"

missing() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL: lvm2 interop test cannot run: $*" >&2
    exit 1
  fi
  echo "SKIP: lvm2 interop test: $*"
  exit 77
}
[ "$(id -u)" -eq 0 ] || missing "not root"
command -v losetup >/dev/null || missing "no losetup"
command -v lvs >/dev/null || missing "no lvm2 tools"

seed_vg || { fail "creating the seed VG"; finish; }
LOOP=$(losetup -f --show "$WORK/pv0.img" 2>/dev/null) || missing "no loop device available"
cleanup_loop() { losetup -d "$LOOP"; rm -rf "$WORK" "$PVDIR"; }
trap cleanup_loop EXIT

# lvm2 sees only our loop device, and never touches device-mapper.
mkdir -p "$WORK/lvm"
cat >"$WORK/lvm/lvm.conf" <<CONF
devices { use_devicesfile = 0 filter = [ "a|^$LOOP\$|", "r|.*|" ] }
global { activation = 0 }
CONF
lvm2() { LVM_SYSTEM_DIR="$WORK/lvm" LVM_SUPPRESS_FD_WARNINGS=1 "$@" 2>/dev/null; }

echo "lvm2:"
lvm2 lvs -a -o +devices,chunk_size
echo "cowsnap:"
cs lvs -a -o +devices,chunk_size

fields=lv_name,vg_name,lv_size,origin,chunk_size,seg_pe_ranges
theirs=$(lvm2 lvs -a --noheadings --separator '|' -o $fields | sed "s#$LOOP#PV#g")
ours=$(cs lvs -a --noheadings --separator '|' -o $fields | sed "s#$PVDIR/pv0.img#PV#g")
expect_eq "lvs -a: names, sizes, origins, chunk sizes, extents" "$theirs" "$ours"
[ -n "$theirs" ] || fail "lvm2 reported nothing"

vgfields=vg_name,pv_count,lv_count,snap_count,vg_attr,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count
expect_eq "vgs" "$(lvm2 vgs --noheadings -o $vgfields)" "$(cs vgs --noheadings -o $vgfields)"
expect_eq "vgs json" "$(lvm2 vgs --reportformat json)" "$(cs vgs --reportformat json)"
# Attr differs only in state: lvm2 without device-mapper shows XX.
theirs=$(lvm2 lvs --noheadings -o lv_attr | sed 's/XX/--/')
expect_eq "lv_attr" "$theirs" "$(cs lvs --noheadings -o lv_attr)"
lvm2 vgck vgsrv || fail "lvm2 vgck vgsrv"
finish
