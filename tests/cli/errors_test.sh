#!/bin/bash
# The error catalogue: every refused command prints a clear message on
# stderr, exits non-zero, and leaves every file under the test directory
# (PVs, devices file) byte for byte as it was.
. "$(dirname "$0")/lib.sh"

# A small VG keeps the checksums cheap: 40 MiB PV, 4 MiB extents (9).
cs pvcreate --size 40M "$PVDIR/pv0.img" >/dev/null &&
cs vgcreate -s 4M vgsrv "$PVDIR/pv0.img" >/dev/null &&
cs lvcreate -L 8M -n b64m vgsrv >/dev/null &&
cs lvcreate -L 4M -s -n sb64m vgsrv/b64m >/dev/null &&
cs pvcreate --size 8M "$PVDIR/orphan.img" >/dev/null || { fail "setup"; finish; }
truncate -s 8M "$WORK/plain.img"
cs lvmdevices --adddev "$PVDIR/plain.img" || fail "lvmdevices --adddev"

# Lock files (root/locks) may appear; they hold no state. A fast hash:
# this only detects changes.
SUM=$(command -v xxhsum || command -v md5sum)
sums() { (cd "$WORK" && find . -type f -not -path './root/locks/*' -print0 | sort -z | xargs -0 "$SUM"); }

# refuse NAME EXPECTED_STDERR_SUBSTRING COMMAND...: must fail, say so,
# change nothing. WANT_RC=N refuse ...: and exit N (lvm2's code: 3 for a
# refused command line, 5 for a failed command).
refuse() {
  local name=$1 expected=$2
  shift 2
  local before after err rc
  before=$(sums)
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  after=$(sums)
  [ "$rc" -ne 0 ] || fail "$name: exit code 0"
  [ -z "${WANT_RC:-}" ] || [ "$rc" -eq "$WANT_RC" ] || fail "$name: exit code $rc, lvm2 exits $WANT_RC"
  case "$err" in
    *"$expected"*) ;;
    *) fail "$name: stderr lacks \"$expected\": $err" ;;
  esac
  [ "$before" = "$after" ] || fail "$name: files changed on disk"
  echo "ok $name (rc=$rc): $(echo "$err" | head -1)"
}

refuse "insufficient extents" 'Volume group "vgsrv" has insufficient free space (6 extents): 256 required.' \
  cs lvcreate -L 1G -n big vgsrv
refuse "insufficient extents on lvextend" 'Insufficient free space: 40 extents needed, but only 6 available' \
  cs lvextend -l +40 vgsrv/b64m
refuse "not a PV" "not an LVM2 PV" cs vgextend vgsrv "$PVDIR/plain.img"
refuse "unknown -o field" "Unrecognised field: bogus" cs lvs -o lv_name,bogus
refuse "unknown -O field" "Unrecognised field: nosuch" cs lvs -O -lv_size,nosuch
refuse "PV already in a VG (vgcreate)" "vgsrv" cs vgcreate vg2 "$PVDIR/pv0.img"
refuse "PV already in a VG (pvcreate)" "Can't initialize physical volume" cs pvcreate "$PVDIR/pv0.img"
refuse "PV already in a VG (pvremove)" "vgsrv" cs pvremove "$PVDIR/pv0.img"
refuse "invalid LV name" "invalid" cs lvcreate -L 4M -n 'bad name!' vgsrv
refuse "invalid VG name" "invalid" cs vgcreate 'bad/vg' "$PVDIR/orphan.img"
refuse "reserved LV name" "snapshot" cs lvcreate -L 4M -n snapshot7 vgsrv
refuse "duplicate LV name" 'Logical volume "b64m" already exists in volume group "vgsrv"' \
  cs lvcreate -L 4M -n b64m vgsrv
refuse "duplicate VG name" 'vgsrv' cs vgcreate vgsrv "$PVDIR/orphan.img"
refuse "unknown VG (lvs)" 'Volume group "vgx" not found' cs lvs vgx
refuse "unknown VG (lvcreate)" 'Volume group "vgx" not found' cs lvcreate -L 4M -n x vgx
refuse "unknown VG (vgremove)" 'Volume group "vgx" not found' cs vgremove vgx
refuse "unknown LV (lvs)" 'Failed to find logical volume "vgsrv/nolv"' cs lvs vgsrv/nolv
refuse "unknown LV (lvremove)" 'Failed to find logical volume "vgsrv/nolv"' cs lvremove -f vgsrv/nolv
refuse "unknown origin" 'Failed to find logical volume "vgsrv/nolv"' cs lvcreate -s -L 4M -n s2 vgsrv/nolv
refuse "snapshot of a snapshot" "snapshot" cs lvcreate -s -L 4M -n s2 vgsrv/sb64m
refuse "chunk size not a power of two" "power of 2" cs lvcreate -s -c 12k -L 8M -n s2 vgsrv/b64m
refuse "chunk size above 512K" "" cs lvcreate -s -c 1M -L 8M -n s2 vgsrv/b64m
refuse "chunk size below 4K" "" cs lvcreate -s -c 2k -L 8M -n s2 vgsrv/b64m
refuse "origin with snapshots, no -f" "b64m" cs lvremove vgsrv/b64m
refuse "VG with LVs, no -f" 'Volume group "vgsrv" not removed' cs vgremove vgsrv
refuse "bad size" "Invalid argument for --size" cs lvcreate -L 12q -n x vgsrv
refuse "lvchange offline" "no cowsnap server is running" cs lvchange -a y vgsrv/b64m
# Permissions, with lvm2 2.03.16's words and exit codes.
WANT_RC=3 refuse "lvcreate -p x" "Invalid argument for --permission: x" cs lvcreate -p x -L 4M -n x vgsrv
WANT_RC=3 refuse "lvchange -p x" "Invalid argument for --permission: x" cs lvchange -p x vgsrv/b64m
WANT_RC=5 refuse "lvchange -p rw of a writable LV" "Logical volume vgsrv/b64m is already writable." \
  cs lvchange -p rw vgsrv/b64m
WANT_RC=3 refuse "lvchange with nothing to change" "Need one or more command options" cs lvchange vgsrv/b64m
refuse "lvextend not larger" "not larger than existing size" cs lvextend -L 4M vgsrv/b64m

# Bad names and sizes, refused as lvm2 2.03.16 refuses them (message, exit
# code), before anything is read or written.
bad=$'\xff'
WANT_RC=3 refuse "-n VG/LV of another VG" 'Inconsistent volume group names given: "a" and "vgsrv"' \
  cs lvcreate -L 4M -n a/b vgsrv
WANT_RC=3 refuse "-n VG/LV of an existing other VG" 'Inconsistent volume group names given: "vgx" and "vgsrv"' \
  cs lvcreate -L 4M -n vgx/x vgsrv
WANT_RC=3 refuse "-n VG/LV of another VG (snapshot)" 'Please use a single volume group name ("vgsrv" or "a").' \
  cs lvcreate -s -L 4M -n a/s vgsrv/b64m
WANT_RC=3 refuse "-n /LV" 'Inconsistent volume group names given: "" and "vgsrv"' cs lvcreate -L 4M -n /x vgsrv
WANT_RC=3 refuse "empty -n" 'Logical volume name "" is invalid.' cs lvcreate -L 4M -n "" vgsrv
WANT_RC=3 refuse "-n VG/ (empty LV)" 'Logical volume name "" is invalid.' cs lvcreate -L 4M -n vgsrv/ vgsrv
WANT_RC=3 refuse "-n with a non-UTF-8 byte" "Logical volume name \"$bad\" is invalid." cs lvcreate -L 4M -n "$bad" vgsrv
WANT_RC=3 refuse "-n with a bad character (lvm2's words)" 'Logical volume name "bad name!" is invalid.' \
  cs lvcreate -L 4M -n 'bad name!' vgsrv
WANT_RC=3 refuse "-n reserved prefix" 'Names starting "snapshot" are reserved.' cs lvcreate -L 4M -n snapshot7 vgsrv
WANT_RC=3 refuse "lvrename to a non-UTF-8 name" "New logical volume name \"$bad\" is invalid" \
  cs lvrename vgsrv b64m "$bad"
WANT_RC=3 refuse "lvextend of a non-UTF-8 name" "Logical volume name \"$bad\" is invalid." \
  cs lvextend -L +4M "vgsrv/$bad"
WANT_RC=3 refuse "-L -1 (lvcreate)" 'Size may not be negative.' cs lvcreate -L -1 -n x vgsrv
WANT_RC=3 refuse "-L -1 says which argument" 'Invalid argument for --size: -1' cs lvcreate -L -1 -n x vgsrv
WANT_RC=3 refuse "-L -1 (lvextend)" 'Size may not be negative.' cs lvextend -L -1 vgsrv/b64m
WANT_RC=3 refuse "-L ''" 'Size requires number argument.' cs lvcreate -L "" -n x vgsrv
WANT_RC=3 refuse "-L '' (lvextend)" 'Invalid argument for --size: ' cs lvextend -L "" vgsrv/b64m
WANT_RC=3 refuse "-L 0" '--size may not be zero.' cs lvcreate -L 0 -n x vgsrv
WANT_RC=3 refuse "-l -1" 'Extents may not be negative.' cs lvcreate -l -1 -n x vgsrv
WANT_RC=3 refuse "-l ''" 'Invalid argument for --extents: ' cs lvcreate -l "" -n x vgsrv
WANT_RC=3 refuse "bad size unit (lvm2's words)" "Can't parse size argument." cs lvcreate -L 12q -n x vgsrv
# pvcreate --size too small: refused, and the file it would create is not
# left behind (the checksums would list it).
refuse "pvcreate --size too small" "too small" cs pvcreate --size 1k "$PVDIR/tiny.img"
[ ! -e "$WORK/tiny.img" ] || fail "pvcreate --size 1k left $WORK/tiny.img behind"
WANT_RC=3 refuse "pvcreate --size ''" "Invalid argument for --size: " cs pvcreate --size "" "$PVDIR/tiny.img"
[ ! -e "$WORK/tiny.img" ] || fail "pvcreate --size '' left $WORK/tiny.img behind"

# An invalid snapshot (its COW header's valid flag cleared, as the engine
# does on overflow): lvextend refuses to grow a store that cannot be valid
# again.
cp --sparse=always "$WORK/pv0.img" "$WORK/pv0.good"
cow_at=$(grep -boa 'SnAp' "$WORK/pv0.img" | head -1 | cut -d: -f1)
if [ -z "$cow_at" ]; then
  fail "no COW header (SnAp) found in the PV"
else
  printf '\0\0\0\0' | dd of="$WORK/pv0.img" bs=1 seek=$((cow_at + 4)) conv=notrunc status=none
  attr=$(cs lvs --noheadings -o lv_attr vgsrv/sb64m | tr -d ' ')
  expect_eq "the damaged snapshot shows as invalid" "swi-I-s---" "$attr"
  WANT_RC=5 refuse "lvextend of an invalid snapshot" 'Snapshot vgsrv/sb64m is invalid' cs lvextend -L +4M vgsrv/sb64m
fi
cp --sparse=always "$WORK/pv0.good" "$WORK/pv0.img"

# Damaged PVs: each on a copy of the VG, so the damage is the only change.
damage() {  # damage NAME FILE OFFSET: flips every bit of one byte, so it always changes
  local byte
  byte=$(dd if="$2" bs=1 skip="$3" count=1 status=none | od -An -tu1 | tr -d ' ')
  printf "\\$(printf '%03o' $((byte ^ 0xff)))" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none
}
cp --sparse=always "$WORK/pv0.img" "$WORK/pv0.good"

# The label sector (sector 1): a byte of the PV header.
damage label "$WORK/pv0.img" $((512 + 40))
refuse "label checksum mismatch" "checksum" cs lvs vgsrv
refuse "label checksum mismatch (lvcreate)" "label checksum mismatch" cs lvcreate -L 4M -n x vgsrv
cp --sparse=always "$WORK/pv0.good" "$WORK/pv0.img"

# The current metadata text: the newest "seqno = N" in the area.
text_at=$(grep -boa 'seqno = ' "$WORK/pv0.img" | tail -1 | cut -d: -f1)
damage text "$WORK/pv0.img" $((text_at + 9))
refuse "metadata checksum mismatch" "WARNING: bad metadata text on $PVDIR/pv0.img in mda1" cs vgs vgsrv
cp --sparse=always "$WORK/pv0.good" "$WORK/pv0.img"

# A torn commit: the mda_header sector (4096) half written.
dd if=/dev/urandom of="$WORK/pv0.img" bs=1 seek=$((4096 + 256)) count=256 conv=notrunc status=none
refuse "torn metadata header" "WARNING: bad metadata header on $PVDIR/pv0.img at 4096." cs lvs vgsrv
cp --sparse=always "$WORK/pv0.good" "$WORK/pv0.img"

# A torn text write (new text written, header not yet): the previous
# metadata stays in force and commands work.
dd if=/dev/urandom of="$WORK/pv0.img" bs=1 seek=$((text_at + 4096)) count=1024 conv=notrunc status=none
# (stdout only: plain.img, listed but no PV, gets lvm2's "has no PVID" line.)
out=$(cs lvs --noheadings -o lv_name vgsrv 2>/dev/null) || fail "torn text write: lvs failed"
expect_eq "torn text write keeps the old metadata" "  b64m 
  sb64m" "$out"
cp --sparse=always "$WORK/pv0.good" "$WORK/pv0.img"

# Truncated PV.
truncate -s 20M "$WORK/pv0.img"
refuse "truncated PV" "truncated" cs lvs vgsrv
cp --sparse=always "$WORK/pv0.good" "$WORK/pv0.img"

out=$(cs lvs --noheadings -o lv_name,lv_attr vgsrv 2>&1) || fail "VG unusable after the error tests: $out"
finish
