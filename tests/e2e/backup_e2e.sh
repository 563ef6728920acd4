#!/bin/bash
# cowsnap backup, restore and changed end to end: the seed as a backup
# story. A full backup of a mounted ext4 LV while it is written; more
# writes; an incremental that copies exactly the changed chunks; every
# point restored byte for byte as its snapshot served it, e2fsck-clean and
# holding the right files. Then what must fail: a snapshot that overflows
# during the copy, a flipped byte (found by --verify, refused by restore),
# a second backup into the same directory, and SIGKILL of a backup at
# random points (nothing left that looks complete).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdcopy nbdinfo nbdfuse mkfs.ext4 e2fsck debugfs fsfreeze jq
/usr/bin/python3 -c 'import nbd' 2>/dev/null || e2e_skip "python3-libnbd is not installed"
e2e_require_mount_env
e2e_init

backup() { csq backup "$@" --socket "$SOCK"; }
restore() { csq restore "$@" --socket "$SOCK"; }
complete_backups() { find "$1" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | wc -l; }

csq pvcreate --size 512M "$WORK/pv0.img" >/dev/null
csq vgcreate -s 4M vg0 "$WORK/pv0.img" >/dev/null
csq lvcreate -L 64M -n b64m vg0 >/dev/null
e2e_server_start

# ---- block status: holes of the PV file, through every export
map=$(nbdinfo --map "$(uri vg0/b64m)")
e2e_expect_eq "$(echo "$map" | awk '{print $1, $2, $3}')" "0 67108864 3" "nbdinfo --map of a new LV"
echo "ok a new LV maps as one hole"

# ---- 1. a full backup of the mounted filesystem while it is written
e2e_attach vg0/b64m
mkfs.ext4 -q -F "$WORK/fuse/b64m/b64m"
e2e_mount b64m
mnt=$WORK/mnt/b64m
for i in 1 2 3 4 5 6; do head -c $((i * 512 * 1024)) /dev/urandom >"$mnt/f$i"; done
sync -f "$mnt"
( while :; do dd if=/dev/urandom of="$mnt/live.bin" bs=64K count=8 conv=fsync status=none; done ) &
writer=$!
E2E_BG_PIDS+=("$writer")
backup vg0/b64m --to "$WORK/bk" --incremental --freeze "$mnt" --json -q >"$WORK/full.json" ||
  e2e_fail "full backup: $(cat "$WORK/full.json")"
kill "$writer"; wait "$writer" 2>/dev/null || true
full=$(jq -r .backup "$WORK/full.json")
tracker1=$(jq -r .tracker "$WORK/full.json")
e2e_expect_eq "$(jq -r .kind "$WORK/full.json")" "full" "first backup's kind"
e2e_expect_eq "$(e2e_lv_field "vg0/$tracker1" lv_attr)" "sri-a-s---" "the tracker snapshot (read-only)"
(($(jq .zero_bytes "$WORK/full.json") > 0)) || e2e_fail "the full backup skipped no zeroes"
# What the snapshot served is what the backup holds.
nbdcopy "$(uri "vg0/$tracker1")" "$WORK/point1.img"
restore "$WORK/bk" "$WORK/restored1.img" >/dev/null
cmp "$WORK/point1.img" "$WORK/restored1.img" || e2e_fail "the full backup's restore differs from its snapshot"
e2fsck -fn "$WORK/restored1.img" >"$WORK/fsck1.log" 2>&1 || e2e_fail "e2fsck of the full restore: $(cat "$WORK/fsck1.log")"
debugfs -R "dump /f4 $WORK/f4.out" "$WORK/restored1.img" 2>/dev/null
cmp "$WORK/f4.out" "$mnt/f4" || e2e_fail "f4 of the full restore differs"
echo "ok full backup while writing: restore equals the snapshot, e2fsck clean, files there"

# ---- 2. more writes, then an incremental
head -c 6M /dev/urandom >"$mnt/new.bin"
rm "$mnt/f1"
sync -f "$mnt"
backup vg0/b64m --to "$WORK/bk" --incremental --freeze "$mnt" --json -q >"$WORK/incr.json" ||
  e2e_fail "incremental backup: $(cat "$WORK/incr.json")"
incr=$(jq -r .backup "$WORK/incr.json")
tracker2=$(jq -r .tracker "$WORK/incr.json")
e2e_expect_eq "$(jq -r .kind "$WORK/incr.json")" "incremental" "second backup's kind"
e2e_expect_eq "$(jq -r .parent "$WORK/incr.json")" "$full" "the incremental's parent"
changed=$(jq .changed_chunks "$WORK/incr.json")
chunk=$(jq .chunk_bytes "$WORK/incr.json")
(( $(jq '.copied_bytes + .zero_bytes' "$WORK/incr.json") == changed * chunk )) ||
  e2e_fail "the incremental read $(jq '.copied_bytes + .zero_bytes' "$WORK/incr.json") bytes for $changed chunks"
e2e_expect_eq "$(stat -c %s "$WORK/bk/$incr/delta.raw")" "$((changed * chunk))" "delta.raw's size"
(( changed * chunk < 16 * 1024 * 1024 )) || e2e_fail "the incremental copied $changed chunks: more than what changed"
csq lvs "vg0/$tracker1" >/dev/null 2>&1 && e2e_fail "the old tracker $tracker1 was not dropped"
e2e_umount b64m
e2e_detach vg0/b64m
nbdcopy "$(uri "vg0/$tracker2")" "$WORK/point2.img"
restore "$WORK/bk" "$WORK/restored2.img" >/dev/null
cmp "$WORK/point2.img" "$WORK/restored2.img" || e2e_fail "the incremental's restore differs from its snapshot"
e2fsck -fn "$WORK/restored2.img" >"$WORK/fsck2.log" 2>&1 || e2e_fail "e2fsck of the incremental restore: $(cat "$WORK/fsck2.log")"
debugfs -R "dump /new.bin $WORK/new.out" "$WORK/restored2.img" 2>/dev/null
[[ -s "$WORK/new.out" ]] || e2e_fail "new.bin is missing from the incremental restore"
debugfs -R "stat /f1" "$WORK/restored2.img" 2>&1 | grep -q "not found" || e2e_fail "f1 is still in the incremental restore"
restore "$WORK/bk" --at "$full" "$WORK/again1.img" >/dev/null
cmp "$WORK/point1.img" "$WORK/again1.img" || e2e_fail "restore --at $full differs from its snapshot"
csq backup --list "$WORK/bk" | grep -q "$incr *incremental *$full" || e2e_fail "backup --list: $(csq backup --list "$WORK/bk")"
echo "ok incremental: $changed chunks of $chunk bytes copied, each point restored exactly"

# ---- 3. block level: an incremental copies exactly the chunks written
csq lvcreate -L 16M -n blk vg0 >/dev/null
# A new LV holds whatever its extents held before; a discard makes holes
# of them, which the copy then skips.
/usr/bin/python3 -c 'import nbd, sys; h = nbd.NBD(); h.connect_uri(sys.argv[1]); h.trim(16 << 20, 0); h.flush()' \
  "$(uri vg0/blk)"
backup vg0/blk --to "$WORK/bk2" --incremental --json -q >"$WORK/blk0.json"
e2e_expect_eq "$(jq .copied_bytes "$WORK/blk0.json")" "0" "bytes copied from an empty LV"
/usr/bin/python3 - "$(uri vg0/blk)" <<'PY' || e2e_fail "writing 37 chunks"
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1])
for i in range(37):
    h.pwrite(bytes([i + 1]) * 4096, (i * 97 % 4096) * 4096)
h.flush(); h.shutdown()
PY
backup vg0/blk --to "$WORK/bk2" --incremental --json -q >"$WORK/blk1.json"
e2e_expect_eq "$(jq .changed_chunks "$WORK/blk1.json")" "37" "changed chunks after 37 chunk writes"
e2e_expect_eq "$(jq .copied_bytes "$WORK/blk1.json")" "$((37 * 4096))" "bytes copied by the incremental"
e2e_expect_eq "$(csq changed --json "vg0/$(jq -r .tracker "$WORK/blk1.json")" | jq .changed_chunks)" "0" \
  "changed chunks of the new tracker"
csq lvcreate -L 16M -n blkcopy vg0 >/dev/null
restore "$WORK/bk2" vg0/blkcopy >/dev/null
nbdcopy "$(uri vg0/blk)" "$WORK/blk.img"
nbdcopy "$(uri vg0/blkcopy)" "$WORK/blkcopy.img"
cmp "$WORK/blk.img" "$WORK/blkcopy.img" || e2e_fail "restore into an LV differs"
echo "ok block level: 37 chunks written, 37 copied; restore into an LV exact"

# ---- 4. a snapshot that overflows during the copy fails the backup
csq lvcreate -L 32M -n busy vg0 >/dev/null
head -c 32M /dev/urandom >"$WORK/busy1.img"
head -c 16M /dev/urandom >"$WORK/busy2.img"
nbdcopy --flush "$WORK/busy1.img" "$(uri vg0/busy)"
if backup vg0/busy --to "$WORK/bk3" --snapshot-size 4M -q \
  --post "nbdcopy --flush $WORK/busy2.img '$(uri vg0/busy)'" 2>"$WORK/overflow.err"; then
  e2e_fail "a backup whose snapshot overflowed succeeded"
fi
grep -q "overflowed during the copy" "$WORK/overflow.err" || e2e_fail "overflow message: $(cat "$WORK/overflow.err")"
e2e_expect_eq "$(complete_backups "$WORK/bk3")" "0" "complete backups after the overflow"
csq lvs --noheadings -o lv_name vg0 | grep -q busy-backup && e2e_fail "the overflowed snapshot was left behind"
echo "ok an overflow during the copy fails the backup and leaves nothing"

# ---- 5. a flipped byte is found by --verify and refused by restore
csq backup --verify "$WORK/bk" >/dev/null || e2e_fail "verify of intact backups"
offset=$(debugfs -R "bmap /f4 0" "$WORK/restored1.img" 2>/dev/null)
offset=$((offset * 4096 + 100))
printf '\xff' | dd of="$WORK/bk/$full/image.raw" bs=1 seek="$offset" conv=notrunc status=none
if csq backup --verify "$WORK/bk" >"$WORK/verify.out" 2>&1; then e2e_fail "verify missed a flipped byte"; fi
grep -q "image.raw: chunk $((offset / 4096)) " "$WORK/verify.out" || e2e_fail "verify's report: $(cat "$WORK/verify.out")"
if restore "$WORK/bk" "$WORK/bad.img" 2>"$WORK/restore.err"; then e2e_fail "restore of a damaged chain succeeded"; fi
grep -q "is damaged" "$WORK/restore.err" || e2e_fail "restore's refusal: $(cat "$WORK/restore.err")"
echo "ok a flipped byte: found by --verify (chunk $((offset / 4096))), restore refused"

# ---- 6. one backup at a time per directory
backup vg0/blk --to "$WORK/bk2" --incremental -q --pre "sleep 2" >"$WORK/slow.out" 2>&1 &
slow=$!
sleep 0.5
if backup vg0/blk --to "$WORK/bk2" --incremental -q 2>"$WORK/second.err"; then
  e2e_fail "a second backup into the same directory ran"
fi
grep -q "another backup into .* is running" "$WORK/second.err" || e2e_fail "second backup: $(cat "$WORK/second.err")"
wait "$slow" || e2e_fail "the first backup failed: $(cat "$WORK/slow.out")"
echo "ok a second backup into the same directory is refused"

# ---- 6b. a tracker that overflowed makes the next backup a full one
tracker=$(jq -r .tracker "$WORK/bk2/$(csq backup --list "$WORK/bk2" --json | jq -r '.backups[-1].backup')/manifest.json")
head -c 12M /dev/urandom >"$WORK/blk_new.img"
nbdcopy --flush "$WORK/blk_new.img" "$(uri vg0/blk)"
e2e_expect_eq "$(e2e_lv_field "vg0/$tracker" lv_attr)" "sri-I-s---" "the tracker after 12 MiB of writes"
backup vg0/blk --to "$WORK/bk2" --incremental --json -q >"$WORK/blk2.json"
e2e_expect_eq "$(jq -r .kind "$WORK/blk2.json")" "full" "the backup after the tracker overflowed"
jq -r '.notices[]' "$WORK/blk2.json" | grep -q "change tracker vg0/$tracker .* overflowed (Invalid): this backup is a full one" ||
  e2e_fail "no notice of the overflowed tracker: $(jq -c .notices "$WORK/blk2.json")"
csq lvs "vg0/$tracker" >/dev/null 2>&1 && e2e_fail "the overflowed tracker was not dropped"
echo "ok an overflowed tracker: the next backup is a full one and says why"

# ---- 7. SIGKILL at random points leaves nothing that looks complete
for round in 1 2 3 4 5 6; do
  backup vg0/b64m --to "$WORK/bk4" -q --connections 1 >/dev/null 2>&1 &
  pid=$!
  sleep "0.$((RANDOM % 40))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [[ -d "$WORK/bk4" ]] && (($(complete_backups "$WORK/bk4") > 0)); then
    csq backup --verify "$WORK/bk4" >/dev/null || e2e_fail "round $round: a complete-looking backup does not verify"
  fi
done
# Leftovers are cleared by the next backup, which then completes.
backup vg0/b64m --to "$WORK/bk4" -q 2>"$WORK/after.err" >/dev/null || e2e_fail "backup after the kills: $(cat "$WORK/after.err")"
[[ -z "$(find "$WORK/bk4" -maxdepth 1 -name '.partial-*')" ]] || e2e_fail "partial backups left after a complete one"
csq backup --verify "$WORK/bk4" >/dev/null || e2e_fail "verify after the kills"
# ...and so are the snapshots of killed backups: of b64m's backup
# snapshots only the first chain's tracker is left.
e2e_expect_eq "$(csq lvs --noheadings -o lv_name vg0 | tr -d ' ' | grep '^b64m-backup' | tr '\n' ' ')" "$tracker2 " \
  "b64m's backup snapshots after the kills"
echo "ok SIGKILL at random points: every complete-looking backup verifies"
echo PASS
