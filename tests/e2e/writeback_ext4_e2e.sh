#!/bin/bash
# Write-back mode under a real filesystem: ext4 on an origin that has a
# snapshot (so first writes copy out in the background), files written and
# some fsynced through nbdfuse and a loop mount, the server SIGKILLed in
# the middle of the writes, then restarted. The origin's ext4, once its
# journal is replayed (a mount, as after any crash), passes e2fsck -fn and
# holds every file fsynced before the kill; the snapshot reads exactly as
# before the kill and is clean too.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
COWSNAP_WRITEBACK=1
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdfuse nbdcopy mkfs.ext4 e2fsck fusermount3 losetup fsfreeze sha256sum
e2e_require_mount_env
e2e_init

csq pvcreate --size 256M "$WORK/pv0.img" >/dev/null
csq vgcreate -s 4M vgw "$WORK/pv0.img" >/dev/null
csq lvcreate -L 64M -n data vgw >/dev/null
e2e_server_start
e2e_attach vgw/data
run mkfs.ext4 -q -F "$WORK/fuse/data/data"
e2e_mount data
e2e_fill_files "$WORK/mnt/data"
e2e_quiesce "$WORK/mnt/data"
csq lvcreate -L 64M -s -n snap vgw/data >/dev/null
e2e_resume "$WORK/mnt/data"
nbdcopy "$(uri vgw/snap)" "$WORK/snap-before.img"

# Writers: new 128 KiB files (at most 36 MiB, which the filesystem holds),
# every third one fsynced (and listed once it is).
: >"$WORK/synced"
(
  for ((i = 0; i < 300; i++)); do
    if ((i % 3 == 0)); then
      dd if=/dev/urandom of="$WORK/mnt/data/f$i" bs=64K count=2 conv=fsync status=none || exit 0
      (cd "$WORK/mnt/data" && sha256sum "f$i") >>"$WORK/synced" || exit 0
    else
      dd if=/dev/urandom of="$WORK/mnt/data/f$i" bs=64K count=2 status=none || exit 0
    fi
  done
  echo done >"$WORK/writer-done"
) &
writer=$!
E2E_BG_PIDS+=("$writer")
for ((n = 0; n < 300; n++)); do
  (($(wc -l <"$WORK/synced") >= 20)) && break
  sleep 0.1
done
[[ -e "$WORK/writer-done" ]] && e2e_fail "the writers finished before the kill (the kill must come mid-write)"
e2e_server_kill
echo "server killed with the writers running ($(wc -l <"$WORK/synced") files fsynced)"
kill "$writer" 2>/dev/null || true
wait "$writer" 2>/dev/null || true
umount -l "$WORK/mnt/data" 2>/dev/null || true
fusermount3 -uz "$WORK/fuse/data" 2>/dev/null || true

e2e_server_start
nbdcopy "$(uri vgw/data)" "$WORK/after.img"
nbdcopy "$(uri vgw/snap)" "$WORK/snap-after.img"
cmp -s "$WORK/snap-before.img" "$WORK/snap-after.img" || e2e_fail "the snapshot changed across the kill"
run e2fsck -fn "$WORK/snap-after.img" >/dev/null || e2e_fail "the snapshot's filesystem is not clean"
# Journal replay, as a mount after a crash does it.
mkdir -p "$WORK/mnt/after"
run mount -o loop "$WORK/after.img" "$WORK/mnt/after"
E2E_MOUNTS+=("$WORK/mnt/after")
(cd "$WORK/mnt/after" && sha256sum --quiet -c "$WORK/synced") || e2e_fail "a file fsynced before the kill is lost or damaged"
run umount "$WORK/mnt/after"
run e2fsck -fn "$WORK/after.img" || e2e_fail "the origin's filesystem is not clean after journal replay"
echo "origin ext4 clean after the kill, $(wc -l <"$WORK/synced") fsynced files intact, snapshot unchanged"
e2e_server_stop
echo PASS
