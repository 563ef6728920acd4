#!/bin/bash
# One owner per PV: two roots whose devices files list the same PV file.
#
# Before PV locks, a second root's server served the VG too: writes through
# both servers left a snapshot reading 8 MiB of wrong data while it still
# said it was valid. Now the first server holds a lock on the PV itself, so
# the second root's server does not serve the VG and its CLI cannot edit
# it, both with a message naming the PV and the holder (pid, root); reports
# from the second root still work (read-only). Once the first server stops,
# the second root takes over.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdinfo nbdcopy
e2e_init

PV=$WORK/pv0.img
ROOT2=$WORK/root2
SOCK2=$WORK/nbd2.sock
SERVER2_PID=""
cs2() { "$COWSNAP" --root "$ROOT2" "$@"; }
uri2() { echo "nbd+unix:///$1?socket=$SOCK2"; }
stop_server2() {
  [[ -n "$SERVER2_PID" ]] || return 0
  kill "$SERVER2_PID" 2>/dev/null
  wait "$SERVER2_PID" 2>/dev/null || true
  SERVER2_PID=""
}
trap 'rc=$?; stop_server2; (exit $rc); e2e_cleanup' EXIT
start_server2() {
  rm -f "$SOCK2"
  nbdkit -f -U "$SOCK2" "$PLUGIN" root="$ROOT2" 2>>"$WORK/nbdkit2.log" &
  SERVER2_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S "$SOCK2" && -S "$ROOT2/control.sock" ]] && return 0
    kill -0 "$SERVER2_PID" 2>/dev/null || e2e_fail "second nbdkit exited at start-up: $(cat "$WORK/nbdkit2.log")"
    sleep 0.1
  done
  e2e_fail "second nbdkit did not create $SOCK2"
}
pattern() { head -c 8M /dev/zero | tr '\0' "$1" >"$WORK/$2"; }
pattern A a.img
pattern B b.img
pattern C c.img

csq pvcreate --size 64M "$PV" >/dev/null
csq vgcreate -s 4M vgo "$PV" >/dev/null
csq lvcreate -L 8M -n lv vgo >/dev/null
cs2 lvmdevices --adddev "$PV" >/dev/null

e2e_server_start
nbdcopy "$WORK/a.img" "$(uri vgo/lv)"
csq lvcreate -L 12M -s -n snap vgo/lv >/dev/null
echo "root 1 serves vgo/lv with snapshot vgo/snap of data A"

# The scenario that corrupted the snapshot: a second server on the same PV,
# writes through both.
start_server2
server1_pid=$SERVER_PID
if nbdcopy "$WORK/b.img" "$(uri2 vgo/lv)" 2>"$WORK/write2.err"; then
  echo "the second server accepted writes to vgo/lv" >&2
fi
nbdcopy "$WORK/c.img" "$(uri vgo/lv)"
nbdcopy "$(uri vgo/snap)" "$WORK/snap.img"
cmp -s "$WORK/snap.img" "$WORK/a.img" ||
  e2e_fail "snapshot vgo/snap reads $(cmp -l "$WORK/snap.img" "$WORK/a.img" | wc -l) wrong bytes (valid: $(e2e_lv_field vgo/snap lv_attr))"
nbdinfo --list "nbd+unix://?socket=$SOCK2" 2>/dev/null | grep -q 'export="vgo/' &&
  e2e_fail "the second server exports LVs of vgo"
grep -q "volume group vgo not served: PV $PV is owned by another cowsnap root (pid $server1_pid nbdkit, root $ROOT)" \
  "$WORK/nbdkit2.log" || e2e_fail "second server did not refuse the VG naming the owner: $(cat "$WORK/nbdkit2.log")"
echo "a second root's server does not serve the VG, naming the owner; the snapshot stays intact"

# The second root's CLI: while its server runs (online) and without it
# (offline), edits are refused naming the owner; reports work.
owned="PV $PV is owned by another cowsnap root (pid $server1_pid nbdkit, root $ROOT)"
expect_refused() {
  if cs2 "$@" >"$WORK/out" 2>"$WORK/err"; then e2e_fail "root 2: $* succeeded"; fi
  grep -qF "$owned" "$WORK/err" || e2e_fail "root 2: $*: $(cat "$WORK/err")"
}
for mode in online offline; do
  expect_refused lvcreate -L 4M -n new vgo
  expect_refused lvremove -f vgo/snap
  expect_refused lvextend -L +4M vgo/snap
  expect_refused lvrename vgo snap snap2
  cs2 lvs --noheadings -o lv_name vgo | grep -q snap || e2e_fail "root 2 ($mode): lvs vgo failed"
  [[ $mode == online ]] && stop_server2
done
expect_refused vgremove -f vgo
e2e_expect_eq "$(csq lvs --noheadings -o lv_name vgo | tr -d ' ' | sort | tr '\n' ' ')" "lv snap " "lvs on root 1"
echo "the second root's lvcreate/lvremove/lvextend/lvrename/vgremove are refused naming the owner; lvs works"

# Take-over: the first server stops, the second root serves the VG.
e2e_server_stop
start_server2
nbdcopy "$(uri2 vgo/snap)" "$WORK/snap.img"
cmp -s "$WORK/snap.img" "$WORK/a.img" || e2e_fail "after the take-over vgo/snap does not read data A"
nbdcopy "$(uri2 vgo/lv)" "$WORK/lv.img"
cmp -s "$WORK/lv.img" "$WORK/c.img" || e2e_fail "after the take-over vgo/lv does not read data C"
cs2 lvcreate -L 4M -n new vgo >/dev/null || e2e_fail "root 2 cannot edit vgo after the take-over"
stop_server2
echo "after root 1's server stops, root 2 serves and edits the VG"
echo PASS
