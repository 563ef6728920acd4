#!/bin/bash
# Bad metadata and the ways back, at CLI level: warnings naming the PV and
# the metadata area, exit codes, pvcreate --pvmetadatacopies 2, vgck
# [--updatemetadata], vgcfgbackup, vgcfgrestore [--list] (golden output),
# and a PV whose label was wiped. UPDATE_GOLDEN=1 rewrites the golden files.
. "$(dirname "$0")/lib.sh"
: "${GOLDEN_DIR:?directory of golden outputs}"

# Flips a byte of the current text of the metadata area whose header is at
# byte offset $2 of file $1.
corrupt_text() {
  local off
  off=$(od -An -t u8 -j $(($2 + 40)) -N 8 "$1" | tr -d ' ')
  printf '\x7e' | dd of="$1" bs=1 seek=$(($2 + off + 20)) conv=notrunc status=none
}
text_at() { echo $(($2 + $(od -An -t u8 -j $(($2 + 40)) -N 8 "$1" | tr -d ' '))); }
normalise_backups() {
  normalise | sed -e 's/^\(  Backup Time:\t\).*/\1TIME/' -e 's/\(_[0-9]\{5\}\)-[0-9]*\.vg/\1-RANDOM.vg/'
}
golden() {  # NAME ACTUAL
  if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
    printf '%s\n' "$2" >"$GOLDEN_DIR/$1.out"
    return
  fi
  expect_eq "$1" "$(cat "$GOLDEN_DIR/$1.out")" "$2"
}

# ---- two metadata areas: one bad copy is a warning, the other is used
P2="$PVDIR/two.img"
out=$(cs pvcreate --size 100M --pvmetadatacopies 2 "$P2" 2>&1) || fail "pvcreate --pvmetadatacopies 2: $out"
cs vgcreate vg2 "$P2" >/dev/null && cs lvcreate -L 8M -n lv vg2 >/dev/null || fail "vg2"
expect_eq "pe_count with a second area at the end" "24" "$(cs vgs --noheadings -o vg_extent_count vg2 | tr -d ' ')"
at=$(text_at "$P2" 4096)
corrupt_text "$P2" 4096
err=$(cs lvs vg2 2>&1 >/dev/null); rc=$?
expect_eq "lvs with a bad mda1: exit 0" 0 "$rc"
expect_eq "lvs with a bad mda1: lvm2's warnings" "  WARNING: Checksum error on $P2 at offset $at.
  WARNING: invalid metadata text from $P2 at $at.
  WARNING: metadata on $P2 at $at has invalid summary for VG.
  WARNING: bad metadata text on $P2 in mda1
  WARNING: scanning $P2 mda1 failed to read metadata summary.
  WARNING: repair VG metadata on $P2 with vgck --updatemetadata." "$err"
expect_eq "lvs with a bad mda1: the LV is there" "lv" "$(cs lvs --noheadings -o lv_name vg2 2>/dev/null | tr -d ' ')"
err=$(cs vgck vg2 2>&1); rc=$?
expect_eq "vgck with a bad mda1: exit 0" 0 "$rc"
case "$err" in *"bad metadata text on $P2 in mda1"*) ;; *) fail "vgck does not name the bad area: $err" ;; esac
err=$(cs vgck --updatemetadata vg2 2>&1) || fail "vgck --updatemetadata: $err"
case "$err" in
  *"WARNING: repairing bad metadata (0x8) in mda1 at 4096 on $P2."*) ;;
  *) fail "vgck --updatemetadata does not say what it repairs: $err" ;;
esac
expect_eq "after the repair: no warning" "" "$(cs vgs vg2 2>&1 >/dev/null)"

# ---- one metadata area: the VG is unreadable, loudly; the archive brings it back
P1="$PVDIR/one.img"
cs pvcreate --size 64M "$P1" >/dev/null && cs vgcreate vg1 "$P1" >/dev/null &&
  cs lvcreate -L 8M -n a vg1 >/dev/null && cs lvcreate -L 8M -n b vg1 >/dev/null || fail "vg1"
golden vgcfgrestore_list "$(cs vgcfgrestore --list vg1 2>&1 | normalise_backups; echo "rc=${PIPESTATUS[0]}")"
corrupt_text "$P1" 4096
err=$(cs vgs vg1 2>&1 >/dev/null); rc=$?
expect_eq "vgs VG with its only text bad: exit 5" 5 "$rc"
case "$err" in
  *"WARNING: bad metadata text on $P1 in mda1"*"WARNING: PV $P1 is marked in use but no VG was found using it."*'Volume group "vg1" not found'*) ;;
  *) fail "vgs VG with its only text bad: $err" ;;
esac
err=$(cs vgs 2>&1 >/dev/null)
case "$err" in *"bad metadata text on $P1 in mda1"*) ;; *) fail "vgs (all) is silent about $P1: $err" ;; esac
out=$(cs vgcfgrestore vg1 2>&1); rc=$?
expect_eq "vgcfgrestore from ROOT/backup" "0|  Restored volume group vg1." "$rc|$out"
expect_eq "restored: both LVs, seqno above the lost one" "a b 4" \
  "$(echo $(cs lvs --noheadings -o lv_name vg1) $(cs vgs --noheadings -o vg_seqno vg1))"

# ---- vgcfgbackup -f and restoring an older archive
out=$(cs vgcfgbackup -f "$WORK/vg1.vg" vg1 2>&1)
expect_eq "vgcfgbackup -f" '  Volume group "vg1" successfully backed up.' "$out"
first=$(ls "$ROOT"/archive/vg1_00000-*.vg)
out=$(cs vgcfgrestore -f "$first" vg1 2>&1) || fail "vgcfgrestore -f archive: $out"
expect_eq "the first archive has no LVs" "" "$(cs lvs --noheadings -o lv_name vg1 2>&1)"
out=$(cs vgcfgrestore -f "$WORK/vg1.vg" vg2 2>&1); rc=$?
expect_eq "vgcfgrestore of another VG's file" "5|  '$WORK/vg1.vg' does not contain volume group 'vg2'.
  Restore failed." "$rc|$out"
out=$(cs vgcfgrestore 2>&1); rc=$?
expect_eq "vgcfgrestore without a VG" "3|  Please specify a *single* volume group to restore." "$rc|$out"
out=$(cs vgcfgbackup nosuch 2>&1); rc=$?
expect_eq "vgcfgbackup of a missing VG" '5|  Volume group "nosuch" not found
  Cannot process volume group nosuch' "$rc|$out"

# ---- a PV whose label was wiped
uuid=$(cs pvs --noheadings -o pv_uuid "$P2" | tr -d ' -')
dd if=/dev/zero of="$P2" bs=512 seek=1 count=1 conv=notrunc status=none
err=$(cs pvs 2>&1 >/dev/null)
expect_eq "pvs names the PV that lost its label" "  Device $P2 has no PVID (devices file $uuid)" "$err"
finish
