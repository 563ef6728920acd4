#!/bin/bash
# SIGKILL the server while writes over four connections are in flight, just
# after three online snapshots, then restart it: every acknowledged write is
# there, a block holds its last acknowledged version or the one in flight,
# and each snapshot reads exactly as before the kill (concurrent_model.py
# --crash / --check). Then the restarted server takes writes and a new
# snapshot again, and a clean stop keeps all of it.
# COWSNAP_WRITEBACK=1: the server in write-back mode; the writers flush
# every few writes, and only flushed writes must survive the kill (a block
# holds its last flushed version or a later one), the snapshots exactly.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdcopy
/usr/bin/python3 -c 'import nbd' 2>/dev/null || e2e_skip "python3-libnbd is not installed"
e2e_init

csq pvcreate --size 512M "$(e2e_pv pv0)" >/dev/null
csq vgcreate -s 4M vgc "$(e2e_pv pv0)" >/dev/null
csq lvcreate -L 16M -n data vgc >/dev/null
e2e_server_start
wb=()
[[ "$COWSNAP_WRITEBACK" == 1 ]] && wb=(--writeback)
model() { /usr/bin/python3 "$here/concurrent_model.py" "$SOCK" "$ROOT/control.sock" vgc data $((20 * 1024 * 1024)) "${wb[@]}" "$@"; }
model --crash "$SERVER_PID" --state "$WORK/model.json"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
echo "server killed under load"

# On RBD the killed server still owns its PV's exclusive lock: the new one
# takes it over once the old client's watch lapses.
[[ "${E2E_PV_BACKEND:-file}" == rbd ]] && E2E_SERVER_PARAMS=(takeover=on)
e2e_server_start
for s in model0 model1 model2; do
  e2e_expect_eq "$(e2e_lv_field vgc/$s lv_attr)" "swi-a-s---" "$s attributes after the crash"
done
model --check "$WORK/model.json"

# The recovered stores keep working: new writes copy out, a new snapshot.
head -c 16M /dev/urandom >"$WORK/b"
nbdcopy "$(uri vgc/model2)" "$WORK/model2.img"
nbdcopy "$WORK/b" "$(uri vgc/data)"
csq lvcreate -L 20M -s -n after vgc/data >/dev/null
e2e_server_stop
e2e_server_start
nbdcopy "$(uri vgc/model2)" "$WORK/model2-again.img"
nbdcopy "$(uri vgc/after)" "$WORK/after.img"
cmp -s "$WORK/model2.img" "$WORK/model2-again.img" || e2e_fail "model2 changed when the origin was rewritten after the crash"
cmp -s "$WORK/after.img" "$WORK/b" || e2e_fail "a snapshot taken after the crash does not hold the data"
csq lvs vgc
echo PASS
