#!/bin/bash
# Exports and the control socket, without mounts (no root needed):
# nbdinfo --list descriptions, block sizes, unknown export names, the `o`
# attribute, lvremove refused while connected, socket mode, dmsetup.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdinfo nbdcopy
e2e_init

csq pvcreate --size 1G "$WORK/pv0.img" >/dev/null
csq vgcreate -s 4M vgx "$WORK/pv0.img" >/dev/null
csq lvcreate -L 64M -n orig vgx >/dev/null
csq lvcreate -L 8M -n plain vgx >/dev/null
e2e_server_start

# Online snapshots with two chunk sizes.
csq lvcreate -L 16M -s -n snap4k vgx/orig >/dev/null
csq lvcreate -L 16M -s -c 64K -n snap64k vgx/orig >/dev/null

list=$(nbdinfo --list "nbd+unix://?socket=$SOCK")
for e in vgx/orig vgx/plain vgx/snap4k vgx/snap64k; do
  grep -q "^export=\"$e\":" <<<"$list" || e2e_fail "nbdinfo --list lacks $e"
done
grep -A1 '^export="vgx/orig"' <<<"$list" | grep -q "origin of 2 snapshots" || e2e_fail "origin description"
grep -A1 '^export="vgx/plain"' <<<"$list" | grep -q "8.00 MiB, linear" || e2e_fail "plain description"
grep -A1 '^export="vgx/snap64k"' <<<"$list" | grep -q "snapshot of vgx/orig, Data% 0.00" || e2e_fail "snapshot description"
echo "nbdinfo --list: 4 exports with descriptions"

info=$(nbdinfo "$(uri vgx/snap64k)")
grep -q "block_size_minimum: 1$" <<<"$info" || e2e_fail "minimum block size"
grep -q "block_size_preferred: 65536" <<<"$info" || e2e_fail "preferred block size of a 64 KiB-chunk snapshot"
grep -q "block_size_maximum: 33554432" <<<"$info" || e2e_fail "maximum block size"
grep -q "can_multi_conn: true" <<<"$info" || e2e_fail "multi-conn"
grep -q "can_fast_zero: false" <<<"$info" || e2e_fail "fast zero"
nbdinfo "$(uri vgx/orig)" | grep -q "block_size_preferred: 65536" || e2e_fail "origin preferred = its largest chunk"
nbdinfo "$(uri vgx/plain)" | grep -q "block_size_preferred: 4096" || e2e_fail "plain LV preferred size"
echo "block sizes: 1 / chunk / 32 MiB"

if nbdinfo "$(uri vgx/nope)" >/dev/null 2>&1; then e2e_fail "unknown export accepted"; fi
grep -q 'no export "vgx/nope"' "$WORK/nbdkit.log" || e2e_fail "unknown export not named in the error"
echo "unknown export refused, named in the log"

mode=$(stat -c %a "$ROOT/control.sock")
e2e_expect_eq "$mode" "600" "control socket mode"

# A connected client: `o` attribute and lvremove refused without --force.
# nbdcopy connects, then waits for its (slow) stdin.
(sleep 4; head -c 4096 /dev/zero) | nbdcopy - "$(uri vgx/plain)" &
E2E_BG_PIDS+=($!)
sleep 1
e2e_expect_eq "$(e2e_lv_field vgx/plain lv_attr)" "-wi-ao----" "plain LV attributes while connected"
if csq lvremove vgx/plain 2>"$WORK/rm.err"; then e2e_fail "lvremove of a connected LV succeeded"; fi
grep -q "in use" "$WORK/rm.err" || e2e_fail "lvremove error: $(cat "$WORK/rm.err")"
echo "lvremove refused while connected: $(head -n 1 "$WORK/rm.err")"
wait "${E2E_BG_PIDS[-1]}"
e2e_wait_unused vgx
csq lvremove vgx/plain >/dev/null
nbdinfo --list "nbd+unix://?socket=$SOCK" | grep -q 'vgx/plain' && e2e_fail "removed LV still listed"
echo "lvremove after disconnect: export gone"

csq dmsetup table | grep -q "vgx-snap64k: 0 131072 snapshot .* P 128" || e2e_fail "dmsetup table: $(csq dmsetup table)"
csq dmsetup status | grep -q "vgx-snap4k: 0 131072 snapshot" || e2e_fail "dmsetup status"
echo "dmsetup table/status through the server"

# Writes through one connection, snapshot content through another.
head -c 4M /dev/urandom >"$WORK/a"
nbdcopy "$WORK/a" "$(uri vgx/orig)"
csq lvcreate -L 16M -s -n after vgx/orig >/dev/null
head -c 4M /dev/urandom >"$WORK/b"
nbdcopy "$WORK/b" "$(uri vgx/orig)"
nbdcopy "$(uri vgx/after)" "$WORK/after.img"
nbdcopy "$(uri vgx/orig)" "$WORK/orig.img"
cmp -s -n 4194304 "$WORK/after.img" "$WORK/a" || e2e_fail "snapshot does not show the old data"
cmp -s -n 4194304 "$WORK/orig.img" "$WORK/b" || e2e_fail "origin does not show the new data"
echo "snapshot shows the data as of its creation"

# Unaligned byte ranges (what fuse2fs over nbdfuse sends): on the origin, a
# chunk not yet copied is copied out whole first; on the snapshot, the rest
# of its chunk keeps the origin's old bytes.
/usr/bin/python3 - "$SOCK" <<'PY' || e2e_fail "unaligned writes"
import nbd, sys
def connect(name):
    h = nbd.NBD()
    h.connect_uri(f"nbd+unix:///{name}?socket={sys.argv[1]}")
    return h
orig, snap = connect("vgx/orig"), connect("vgx/after")
base = 5 * 1024 * 1024
before = orig.pread(8192, base)
orig.pwrite(b"abc", base + 1001)
snap.pwrite(b"hello", base + 4096 + 7)
orig.flush(); snap.flush()
want_orig = bytearray(before); want_orig[1001:1004] = b"abc"
want_snap = bytearray(before); want_snap[4096 + 7:4096 + 12] = b"hello"
assert orig.pread(8192, base) == want_orig, "origin after a 3-byte write"
assert snap.pread(8192, base) == want_snap, "snapshot after its own 5-byte write and the origin's"
print("unaligned writes: 3 bytes into the origin, 5 into the snapshot, chunks intact")
PY

# lvchange -an through the server: the origin goes with its snapshots, and
# comes back (with the same content) on -ay.
e2e_wait_unused vgx
csq lvchange -an vgx/orig || e2e_fail "lvchange -an vgx/orig"
list=$(nbdinfo --list "nbd+unix://?socket=$SOCK")
grep -q 'vgx/orig"' <<<"$list" && e2e_fail "deactivated origin still exported"
grep -q 'vgx/after"' <<<"$list" && e2e_fail "snapshot of a deactivated origin still exported"
csq lvs --noheadings -o lv_name,lv_attr vgx | grep -q "orig *owi---s---" || e2e_fail "lvs after -an: $(csq lvs vgx)"
csq lvchange -ay vgx/orig || e2e_fail "lvchange -ay vgx/orig"
nbdcopy "$(uri vgx/after)" "$WORK/after2.img"
cmp -s -n 4194304 "$WORK/after2.img" "$WORK/a" || e2e_fail "snapshot content after re-activation"
csq lvs --noheadings -o lv_name,lv_attr vgx | grep -q "orig *owi-a-s---" || e2e_fail "lvs after -ay: $(csq lvs vgx)"
echo "lvchange -an/-ay through the server"

# lvrename through the server: a snapshot is renamed while its origin has a
# client writing; an LV with a client of its own is refused.
(sleep 3; head -c 4M "$WORK/b") | nbdcopy - "$(uri vgx/orig)" &
E2E_BG_PIDS+=($!)
sleep 1
if csq lvrename vgx/orig base 2>"$WORK/mv.err"; then e2e_fail "lvrename of a connected LV succeeded"; fi
grep -q "NBD clients are connected to vgx/orig" "$WORK/mv.err" || e2e_fail "lvrename error: $(cat "$WORK/mv.err")"
csq lvrename vgx/after kept | grep -q 'Renamed "after" to "kept" in volume group "vgx"' || e2e_fail "lvrename vgx/after kept"
wait "${E2E_BG_PIDS[-1]}"
list=$(nbdinfo --list "nbd+unix://?socket=$SOCK")
grep -q 'vgx/after"' <<<"$list" && e2e_fail "the old export name is still listed"
grep -A1 '^export="vgx/kept"' <<<"$list" | grep -q "snapshot of vgx/orig" || e2e_fail "renamed snapshot not exported: $list"
nbdcopy "$(uri vgx/kept)" "$WORK/kept.img"
cmp -s -n 4194304 "$WORK/kept.img" "$WORK/a" || e2e_fail "renamed snapshot content"
e2e_wait_unused vgx
csq lvrename vgx/orig base >/dev/null || e2e_fail "lvrename of an idle origin"
e2e_expect_eq "$(e2e_lv_field vgx/kept origin)" "base" "origin of the renamed snapshot"
nbdcopy "$(uri vgx/kept)" "$WORK/kept2.img"
cmp -s -n 4194304 "$WORK/kept2.img" "$WORK/a" || e2e_fail "snapshot content after its origin was renamed"
echo "lvrename through the server: refused while connected, snapshot and origin renamed live"
echo PASS
