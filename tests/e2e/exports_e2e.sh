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
grep -q "block_size_minimum: 512" <<<"$info" || e2e_fail "minimum block size"
grep -q "block_size_preferred: 65536" <<<"$info" || e2e_fail "preferred block size of a 64 KiB-chunk snapshot"
grep -q "block_size_maximum: 33554432" <<<"$info" || e2e_fail "maximum block size"
grep -q "can_multi_conn: true" <<<"$info" || e2e_fail "multi-conn"
grep -q "can_fast_zero: false" <<<"$info" || e2e_fail "fast zero"
nbdinfo "$(uri vgx/orig)" | grep -q "block_size_preferred: 65536" || e2e_fail "origin preferred = its largest chunk"
nbdinfo "$(uri vgx/plain)" | grep -q "block_size_preferred: 4096" || e2e_fail "plain LV preferred size"
echo "block sizes: 512 / chunk / 32 MiB"

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

# lvchange -an through the server: the origin goes with its snapshots, and
# comes back (with the same content) on -ay.
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
echo PASS
