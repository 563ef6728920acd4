# The seed experiment (docs: seed-experiment.md), step by step. Sourced by
# seed_e2e.sh (the test) and seed_demo.sh (the walk-through): the same
# steps and checks; the demo also prints each command.

step() {
  STEP=$((${STEP:-0} + 1))
  printf '\n== step %d == %s\n' "$STEP" "$*"
}

lvs_table() { cs lvs vgsrv; }

# Checks that only hold after the 40 MiB write, run twice: live, and after
# a server restart.
seed_check_after_overflow() {
  local attr pct
  # sb64m overflowed: invalid, 100.00, unreadable.
  # Open ('o', 6th) while it is still attached; the seed's lvm2 showed '-'
  # for an invalid snapshot even while mounted (Swi-I-).
  attr=$(e2e_lv_field vgsrv/sb64m lv_attr)
  [[ "$attr" == swi-I?s--- ]] || e2e_fail "sb64m attributes: expected swi-I-s---, got $attr"
  e2e_expect_eq "$(e2e_lv_field vgsrv/sb64m data_percent)" "100.00" "sb64m Data%"
  if nbdcopy "$(uri vgsrv/sb64m)" - 2>"$WORK/sb64m.err" >/dev/null; then
    e2e_fail "reading the invalid snapshot sb64m succeeded"
  fi
  grep -q "Input/output error" "$WORK/sb64m.err" || e2e_fail "sb64m read did not fail with EIO: $(cat "$WORK/sb64m.err")"
  echo "  nbdcopy of sb64m fails: $(grep -m1 -o 'Input/output error' "$WORK/sb64m.err")"
  # sb64m2 is valid and holds ~40 MiB of copies: well over half full.
  attr=$(e2e_lv_field vgsrv/sb64m2 lv_attr)
  pct=$(e2e_lv_field vgsrv/sb64m2 data_percent)
  [[ "$attr" == swi-a?s--- ]] || e2e_fail "sb64m2 attributes: $attr"
  awk -v p="$pct" 'BEGIN {exit !(p > 55 && p < 100)}' || e2e_fail "sb64m2 Data% $pct is not 'well over half'"
  echo "  sb64m2 valid, Data% $pct"
  SB64M2_PCT=$pct
}

seed_main() {
  local t0 f
  e2e_init

  step "a PV (6625M sparse file or RBD image), VG vgsrv with 32 MiB extents, LV b64m"
  cs pvcreate --size 6625M "$(e2e_pv pv0)"
  cs vgcreate -s 32M vgsrv "$(e2e_pv pv0)"
  cs vgs vgsrv
  cs lvcreate -L 64M -n b64m vgsrv

  step "start the server: every LV as an NBD export VG/LV"
  e2e_server_start
  run nbdinfo --list "nbd+unix://?socket=$SOCK" | grep -E '^export=|description' || true

  step "mkfs.ext4 on b64m (1 KiB blocks, 16384 inodes, 4 MiB journal), mount, copy files"
  e2e_attach vgsrv/b64m
  run mkfs.ext4 -q -F -b 1024 -N 16384 -J size=4 "$WORK/fuse/b64m/b64m"
  run dumpe2fs -h "$WORK/fuse/b64m/b64m" 2>/dev/null | grep -E '^(Block count|Inode count|Block size):'
  e2e_mount b64m
  e2e_fill_files "$WORK/mnt/b64m"
  e2e_checksums "$WORK/mnt/b64m" >"$WORK/orig.sha256"
  echo "  $(wc -l <"$WORK/orig.sha256") files, $(du -sk "$WORK/mnt/b64m" | cut -f1) KiB used; root reads: $(cat "$WORK/mnt/b64m/root")"

  step "two snapshots of the mounted origin, through the running server"
  # lvm2 suspends the origin's dm device, which freezes the filesystem so the
  # snapshot is clean; e2e_quiesce does the same here (fsfreeze, or fsync
  # through fuse2fs).
  e2e_quiesce "$WORK/mnt/b64m"
  t0=$(e2e_now)
  cs lvcreate -L 32M -s -n sb64m vgsrv/b64m || { e2e_resume "$WORK/mnt/b64m"; e2e_fail "lvcreate -s sb64m"; }
  SNAP_SECONDS=$(e2e_elapsed "$t0")
  cs lvcreate -L 64M -s -n sb64m2 vgsrv/b64m || { e2e_resume "$WORK/mnt/b64m"; e2e_fail "lvcreate -s sb64m2"; }
  e2e_resume "$WORK/mnt/b64m"
  lvs_table
  e2e_expect_eq "$(e2e_lv_field vgsrv/b64m lv_attr)" "owi-aos---" "origin attributes"
  for f in sb64m sb64m2; do
    e2e_expect_eq "$(e2e_lv_field vgsrv/$f lv_attr)" "swi-a-s---" "$f attributes"
    e2e_expect_eq "$(e2e_lv_field vgsrv/$f origin)" "b64m" "$f origin"
  done
  run nbdinfo --list "nbd+unix://?socket=$SOCK" | grep -E '^export=|description'

  step "mount both snapshots: the same files; root reads base1 in each"
  e2e_attach vgsrv/sb64m
  e2e_attach vgsrv/sb64m2
  e2e_mount sb64m ro
  e2e_mount sb64m2 rw
  for f in sb64m sb64m2; do
    e2e_verify_checksums "$WORK/mnt/$f" "$WORK/orig.sha256"
    echo "  $f: all $(wc -l <"$WORK/orig.sha256") files identical; root reads: $(cat "$WORK/mnt/$f/root")"
  done
  lvs_table

  step "keep working on the origin: 40 MiB into b64m"
  t0=$(e2e_now)
  run dd if=/dev/zero of="$WORK/mnt/b64m/40M.img" bs=1M count=40 conv=fsync status=none
  sync
  DD_SECONDS=$(e2e_elapsed "$t0")
  echo "  40 MiB written and synced in ${DD_SECONDS}s"
  lvs_table

  step "result: sb64m overflowed and is invalid; sb64m2 still holds the originals"
  seed_check_after_overflow
  e2e_drop_caches
  if { cat "$WORK/mnt/sb64m/root" && ls "$WORK/mnt/sb64m/bin" && sha256sum "$WORK/mnt/sb64m/bin/"*; } \
    >/dev/null 2>"$WORK/cat.err"; then
    e2e_fail "files of the invalid snapshot sb64m are still readable"
  fi
  echo "  reading files of sb64m fails: $(grep -m 1 . "$WORK/cat.err" || echo 'I/O error')"
  e2e_verify_checksums "$WORK/mnt/sb64m2" "$WORK/orig.sha256"
  echo "  sb64m2: every original file byte-identical"
  echo "written in the snapshot" >"$WORK/mnt/sb64m2/only-in-snapshot"
  sync
  [[ -f "$WORK/mnt/sb64m2/only-in-snapshot" && ! -e "$WORK/mnt/b64m/only-in-snapshot" ]] ||
    e2e_fail "a file created in sb64m2 leaked into the origin"
  echo "  a file created in sb64m2 is there and not in b64m"
  e2e_expect_eq "$(stat -c %s "$WORK/mnt/b64m/40M.img")" "41943040" "size of 40M.img on the origin"
  cmp -s -n 41943040 "$WORK/mnt/b64m/40M.img" /dev/zero || e2e_fail "40M.img on the origin is not 40 MiB of zeroes"
  echo "  b64m holds the new 40 MiB file"

  step "hot backup of sb64m2 with nbdcopy while the origin keeps being written"
  e2e_umount sb64m2   # a quiescent snapshot filesystem; the origin stays mounted and busy
  # The writer stops after its current dd once told to, so that no write
  # is still running when the origin's checksums are taken below.
  (
    while [[ ! -e "$WORK/stop-writer" ]]; do
      dd if=/dev/urandom of="$WORK/mnt/b64m/40M.img" bs=1M count=8 conv=notrunc,fsync status=none || exit 1
    done
  ) &
  E2E_BG_PIDS+=($!)
  t0=$(e2e_now)
  run nbdcopy "$(uri vgsrv/sb64m2)" "$WORK/backup.img"
  BACKUP_SECONDS=$(e2e_elapsed "$t0")
  touch "$WORK/stop-writer"
  wait "${E2E_BG_PIDS[-1]}" || e2e_fail "writing the origin during the backup failed"
  echo "  64 MiB copied in ${BACKUP_SECONDS}s while the origin was being rewritten"
  run e2fsck -fn "$WORK/backup.img" >"$WORK/e2fsck.log" 2>&1 || { cat "$WORK/e2fsck.log"; e2e_fail "e2fsck on the backup"; }
  tail -n 1 "$WORK/e2fsck.log"
  e2e_mount_image "$WORK/backup.img" "$WORK/mnt/backup" ro
  e2e_verify_checksums "$WORK/mnt/backup" "$WORK/orig.sha256"
  [[ -f "$WORK/mnt/backup/only-in-snapshot" && ! -e "$WORK/mnt/backup/40M.img" ]] ||
    e2e_fail "the backup is not sb64m2's filesystem"
  echo "  the backup is clean and holds the original files"
  e2e_unmount_dir "$WORK/mnt/backup"
  lvs_table

  step "unmount everything, stop the server, start it again: all of it still holds"
  e2e_checksums "$WORK/mnt/b64m" >"$WORK/origin-now.sha256"
  e2e_umount sb64m
  e2e_umount b64m
  e2e_detach vgsrv/sb64m
  e2e_detach vgsrv/sb64m2
  e2e_detach vgsrv/b64m
  local pct_before
  pct_before=$(e2e_lv_field vgsrv/sb64m2 data_percent)   # after the backup's churn, with nothing attached
  e2e_server_stop
  cs lvs vgsrv   # offline: read from the PVs and COW stores
  e2e_server_start
  lvs_table
  seed_check_after_overflow
  e2e_expect_eq "$(e2e_lv_field vgsrv/sb64m lv_attr)" "swi-I-s---" "sb64m attributes after the restart"
  e2e_expect_eq "$SB64M2_PCT" "$pct_before" "sb64m2 Data% across the restart"
  e2e_attach vgsrv/sb64m2
  e2e_attach vgsrv/b64m
  e2e_mount sb64m2 ro
  e2e_mount b64m ro
  e2e_verify_checksums "$WORK/mnt/sb64m2" "$WORK/orig.sha256"
  e2e_verify_checksums "$WORK/mnt/b64m" "$WORK/origin-now.sha256"
  [[ -f "$WORK/mnt/sb64m2/only-in-snapshot" ]] || e2e_fail "sb64m2 lost its own file across the restart"
  echo "  after the restart: sb64m invalid, sb64m2 identical to the originals, b64m as last written"

  step "roll back: merge sb64m2 into b64m (lvconvert --merge)"
  # Both are mounted: lvm2 defers the merge to the origin's next activation.
  cs lvconvert --merge vgsrv/sb64m2 >"$WORK/merge.out"
  cat "$WORK/merge.out"
  grep -q "Delaying merge since origin is open." "$WORK/merge.out" || e2e_fail "the merge was not deferred"
  grep -q "Merging of snapshot vgsrv/sb64m2 will occur on next activation of vgsrv/b64m." "$WORK/merge.out" ||
    e2e_fail "no 'will occur on next activation'"
  e2e_expect_eq "$(e2e_lv_field vgsrv/b64m lv_attr)" "Owi-aos---" "origin attributes, merge pending"
  e2e_expect_eq "$(e2e_lv_field vgsrv/b64m lv_merging)" "merging" "origin lv_merging"
  cs lvs -a -o +lv_merging vgsrv
  e2e_umount sb64m2
  e2e_umount b64m
  e2e_detach vgsrv/sb64m2
  e2e_detach vgsrv/b64m
  e2e_wait_unused vgsrv
  cs lvchange -an vgsrv/b64m
  cs lvchange -ay vgsrv/b64m   # the next activation: the merge starts
  e2e_wait_merged vgsrv/sb64m2
  lvs_table
  csq lvs -a --noheadings -o lv_name vgsrv | grep -qw sb64m2 && e2e_fail "sb64m2 is still there after its merge"
  grep -q "Merge of snapshot into logical volume vgsrv/b64m has finished." "$WORK/nbdkit.log" ||
    e2e_fail "no 'has finished' in the server's log"
  e2e_attach vgsrv/b64m
  run e2fsck -fn "$WORK/fuse/b64m/b64m" >"$WORK/e2fsck-merged.log" 2>&1 ||
    { cat "$WORK/e2fsck-merged.log"; e2e_fail "e2fsck on the rolled-back b64m"; }
  tail -n 1 "$WORK/e2fsck-merged.log"
  e2e_mount b64m ro
  e2e_verify_checksums "$WORK/mnt/b64m" "$WORK/orig.sha256"
  [[ ! -e "$WORK/mnt/b64m/40M.img" ]] || e2e_fail "40M.img is still on the rolled-back origin"
  [[ -f "$WORK/mnt/b64m/only-in-snapshot" ]] || e2e_fail "the file written in sb64m2 did not come back with it"
  echo "  b64m is sb64m2 again: every original file, no 40M.img, the snapshot's own file; e2fsck clean"

  printf '\n== summary ==\n'
  echo "  snapshot creation (online, origin mounted): ${SNAP_SECONDS}s"
  echo "  40 MiB dd into the origin with two snapshots: ${DD_SECONDS}s"
  echo "  hot backup of sb64m2 (64 MiB, nbdcopy):     ${BACKUP_SECONDS}s"
  echo "  sb64m2 Data%: $SB64M2_PCT"
  echo "PASS"
}
