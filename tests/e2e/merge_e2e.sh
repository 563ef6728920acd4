#!/bin/bash
# lvconvert --merge end to end: real nbdkit, libnbd clients, lvm2.
#  1. With a client on the origin the merge is deferred, in lvm2's words;
#     lvm2 reads the merging VG; a second --merge is refused.
#  2. The server restarts (the next activation): the merge starts, the
#     server is SIGKILLed half way, starts again and finishes it: the origin
#     reads exactly what the snapshot held, the other snapshot is unchanged.
#  3. With nobody connected the merge starts at once: lvconvert waits with
#     lvm2's progress lines while a client writes to the origin; the
#     result is the snapshot's content with every one of those writes.
# Usage: merge_e2e.sh COWSNAP PLUGIN   (or: ctest -L e2e)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdcopy cmp
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import nbd' 2>/dev/null ||
  e2e_skip "needs libnbd's Python binding (python3-libnbd) for /usr/bin/python3"
e2e_init

# setup: b64m with random content (before.img), snapshots snap and other
# of it, then scattered writes and a 24 MiB overwrite of the origin.
setup() {
  e2e_server_stop
  rm -rf "$ROOT" "$WORK/pv0.img"
  cs pvcreate --size 256M "$WORK/pv0.img" >/dev/null
  cs vgcreate -s 4M vgsrv "$WORK/pv0.img" >/dev/null
  cs lvcreate -L 64M -n b64m vgsrv >/dev/null
  head -c $((64 << 20)) /dev/urandom >"$WORK/before.img"
  e2e_server_start
  nbdcopy "$WORK/before.img" "$(uri vgsrv/b64m)" || e2e_fail "filling b64m"
  cs lvcreate -L 64M -s -n snap vgsrv/b64m >/dev/null
  cs lvcreate -L 64M -s -n other vgsrv/b64m >/dev/null
  e2e_scatter "$(uri vgsrv/b64m)" 4000 1 || e2e_fail "scattered writes to b64m"
  head -c $((24 << 20)) /dev/urandom | nbdcopy - "$(uri vgsrv/b64m)" || e2e_fail "overwriting b64m"
}

echo "== 1. a client on the origin defers the merge"
setup
/usr/bin/python3 -c '
import nbd, sys, time
h = nbd.NBD(); h.connect_uri(sys.argv[1]); print("connected", flush=True); time.sleep(600)' "$(uri vgsrv/b64m)" \
  >"$WORK/holder.out" &
holder=$!
E2E_BG_PIDS+=("$holder")
for ((i = 0; i < 50; i++)); do grep -q connected "$WORK/holder.out" && break; sleep 0.1; done
cs lvconvert --merge vgsrv/snap >"$WORK/merge1.out"
cat "$WORK/merge1.out"
e2e_expect_eq "$(cat "$WORK/merge1.out")" "  Delaying merge since origin is open.
  Merging of snapshot vgsrv/snap will occur on next activation of vgsrv/b64m." "deferred merge"
e2e_expect_eq "$(e2e_lv_field vgsrv/b64m lv_attr)" "Owi-aos---" "origin attributes, merge pending"
e2e_expect_eq "$(e2e_lv_field vgsrv/snap lv_name)" "[snap]" "a merging snapshot, as lvs names it"
e2e_expect_eq "$(e2e_lv_field vgsrv/snap lv_attr)" "Swi-a-s---" "merging snapshot attributes"
e2e_expect_eq "$(e2e_lv_field vgsrv/snap lv_merging)" "merging" "snap lv_merging"
csq lvs --noheadings -o lv_name vgsrv | grep -qw snap && e2e_fail "plain lvs lists the merging snapshot"
cs lvs -a -o +lv_merging,lv_merge_failed vgsrv
if csq lvconvert --merge vgsrv/snap 2>"$WORK/again.err"; then e2e_fail "a second --merge was accepted"; fi
grep -q "Command on LV vgsrv/snap is invalid on LV with properties: lv_is_merging_cow ." "$WORK/again.err" ||
  e2e_fail "second --merge: $(cat "$WORK/again.err")"
if csq lvconvert --merge vgsrv/other 2>"$WORK/other.err"; then e2e_fail "a merge of a second snapshot was accepted"; fi
grep -q "Cannot merge snapshot vgsrv/other into the origin vgsrv/b64m with merging snapshot vgsrv/other." \
  "$WORK/other.err" || e2e_fail "merge of other: $(cat "$WORK/other.err")"
if [[ "$(id -u)" -eq 0 ]] && command -v lvs >/dev/null && command -v losetup >/dev/null; then
  loop=$(losetup -f --show -r "$WORK/pv0.img") || e2e_fail "no loop device for the lvm2 check"
  mkdir -p "$WORK/lvm"
  printf 'devices { use_devicesfile = 0 filter = [ "a|^%s$|", "r|.*|" ] }\nglobal { activation = 0 }\n' "$loop" \
    >"$WORK/lvm/lvm.conf"
  theirs=$(LVM_SYSTEM_DIR="$WORK/lvm" LVM_SUPPRESS_FD_WARNINGS=1 lvs -a --noheadings -o lv_name,lv_attr,lv_merging \
    vgsrv 2>/dev/null | tr -s ' ')
  losetup -d "$loop"
  echo "$theirs" | grep -q "\[snap\] Swi-XXs--- merging" || e2e_fail "lvm2 does not see snap merging: $theirs"
  echo "  lvm2 reads the merging VG:$(echo "$theirs" | tr '\n' ';')"
elif [[ "${CI:-}" == true ]]; then
  e2e_fail "the lvm2 check needs root, losetup and lvm2"
fi
nbdcopy "$(uri vgsrv/other)" "$WORK/other-view.img" || e2e_fail "reading other"
kill "$holder"

echo "== 2. the next activation merges; SIGKILL half way; the restart finishes it"
e2e_server_stop
e2e_server_start
sleep 0.5
e2e_server_kill
left=$(csq lvs -a --noheadings -o lv_name vgsrv | tr -d ' ')
echo "  killed mid-merge; LVs left: $(echo $left)"
e2e_server_start
e2e_wait_merged vgsrv/snap
nbdcopy "$(uri vgsrv/b64m)" "$WORK/merged.img" || e2e_fail "reading b64m"
cmp -s "$WORK/merged.img" "$WORK/before.img" || e2e_fail "b64m after the merge is not the snapshot's content"
nbdcopy "$(uri vgsrv/other)" "$WORK/other-after.img" || e2e_fail "reading other"
cmp -s "$WORK/other-after.img" "$WORK/other-view.img" || e2e_fail "the other snapshot changed in the merge"
e2e_expect_eq "$(e2e_lv_field vgsrv/b64m lv_attr)" "owi-a-s---" "origin attributes after the merge"
grep -q 'Logical volume "snap" successfully removed.' "$WORK/nbdkit.log" || e2e_fail "no removal line in the log"
echo "  b64m reads exactly the snapshot's content; other is unchanged"

echo "== 3. an immediate merge with progress lines, a client writing meanwhile"
setup
cs lvremove vgsrv/other >/dev/null
e2e_wait_unused vgsrv
cs lvconvert --merge -i 1 vgsrv/snap >"$WORK/merge3.out" &
merger=$!
# The writer connects once the merge has started (a client connected
# before would defer it).
for ((i = 0; i < 100; i++)); do grep -q "started" "$WORK/merge3.out" && break; sleep 0.05; done
# The writer records what it wrote; the model is the snapshot plus that.
/usr/bin/python3 - "$(uri vgsrv/b64m)" "$WORK/before.img" "$WORK/model.img" <<'PY' || e2e_fail "the writer failed"
import nbd, random, shutil, sys, time
uri, before, model = sys.argv[1:4]
shutil.copyfile(before, model)
h = nbd.NBD()
for _ in range(100):
    try:
        h.connect_uri(uri)
        break
    except nbd.Error:
        time.sleep(0.05)
rng = random.Random(7)
with open(model, "r+b") as m:
    for i in range(300):
        at = rng.randrange(0, (64 << 20) - 65536) // 512 * 512
        data = rng.randbytes(rng.randrange(1, 129) * 512)
        h.pwrite(data, at)
        m.seek(at)
        m.write(data)
        if h.pread(len(data), at) != data:
            sys.exit(f"read back at {at} differs")
h.flush()
h.shutdown()
PY
wait "$merger" || e2e_fail "lvconvert --merge failed: $(cat "$WORK/merge3.out")"
cat "$WORK/merge3.out"
head -n 1 "$WORK/merge3.out" | grep -qx "  Merging of volume vgsrv/snap started." || e2e_fail "no 'started' line"
grep -qE '^  vgsrv/b64m: Merged: [0-9]+\.[0-9]{2}%$' "$WORK/merge3.out" || e2e_fail "no progress line"
tail -n 3 "$WORK/merge3.out" | head -n 1 | grep -qx "  vgsrv/b64m: Merged: 100.00%" || e2e_fail "no 100.00% line"
tail -n 2 "$WORK/merge3.out" | head -n 1 | grep -qx "  Merge of snapshot into logical volume vgsrv/b64m has finished." ||
  e2e_fail "no 'has finished' line"
tail -n 1 "$WORK/merge3.out" | grep -qx '  Logical volume "snap" successfully removed.' || e2e_fail "no removal line"
nbdcopy "$(uri vgsrv/b64m)" "$WORK/merged3.img" || e2e_fail "reading b64m"
cmp -s "$WORK/merged3.img" "$WORK/model.img" || e2e_fail "b64m is not the snapshot plus the writes made during the merge"
echo "  b64m is the snapshot's content with all 300 writes made during the merge"
e2e_server_stop
echo "ok merge"
