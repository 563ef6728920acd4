#!/bin/bash
# nbdkit as the README starts it: without -f, so it forks into the
# background before it serves. Threads do not survive a fork, so the
# service (write-back committers, the snapshot monitor) has to start in
# the process that serves: a write-back origin under a snapshot takes
# writes and a FLUSH, the snapshot keeps the old content, and the monitor
# warns as the snapshot fills (-v --log=stderr keeps the background
# server's stderr, so its log lands in a file).
# Usage: daemon_e2e.sh COWSNAP PLUGIN   (or: ctest -L e2e)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdcopy cmp
e2e_init

cs pvcreate --size 256M "$WORK/pv0.img" >/dev/null
cs vgcreate -s 4M vgd "$WORK/pv0.img" >/dev/null
cs lvcreate -L 64M -n data vgd >/dev/null
cs lvcreate -L 16M -s -n snap vgd/data >/dev/null
head -c $((14 << 20)) /dev/urandom >"$WORK/new.img"

daemon_pid=""
stop_daemon() {
  [[ -n "$daemon_pid" ]] && kill "$daemon_pid" 2>/dev/null
  daemon_pid=""
}
trap 'stop_daemon; e2e_cleanup' EXIT

nbdkit -v --log=stderr -P "$WORK/nbdkit.pid" -U "$SOCK" "$PLUGIN" root="$ROOT" writeback=on \
  2>>"$WORK/nbdkit.log" || e2e_fail "nbdkit did not start (see $WORK/nbdkit.log)"
daemon_pid=$(cat "$WORK/nbdkit.pid")
[[ -S "$SOCK" && -S "$ROOT/control.sock" ]] || e2e_fail "the background server has no sockets: $(tail -5 "$WORK/nbdkit.log")"
echo "  nbdkit forked into the background (pid $daemon_pid)"

# 14 MiB of first writes over the 16 MiB snapshot: past 80 % of its COW.
# nbdcopy ends with a FLUSH, which waits for the copy-outs.
timeout 60 nbdcopy "$WORK/new.img" "$(uri vgd/data)" ||
  e2e_fail "write-back writes and FLUSH to the background server did not finish (rc $?)"
nbdcopy "$(uri vgd/data)" "$WORK/back.img"
cmp -n $((14 << 20)) "$WORK/new.img" "$WORK/back.img" >/dev/null || e2e_fail "the origin does not read back what was written"
nbdcopy "$(uri vgd/snap)" "$WORK/snap.img"
cmp -n $((14 << 20)) /dev/zero "$WORK/snap.img" >/dev/null || e2e_fail "the snapshot does not read the origin's old content"
echo "  write-back: 14 MiB written and flushed, read back; the snapshot still reads zeroes"

attr=$(e2e_lv_field vgd/snap lv_attr)
[[ "$attr" == swi-a-s--- ]] || e2e_fail "snapshot attributes: expected swi-a-s---, got $attr"
e2e_wait_until 50 grep -q "WARNING: Snapshot vgd-snap is now 8[0-9]\.[0-9][0-9]% full\." "$WORK/nbdkit.log"
grep -q "WARNING: Snapshot vgd-snap is now 8[0-9]\.[0-9][0-9]% full\." "$WORK/nbdkit.log" ||
  e2e_fail "no dmeventd warning in the background server's log: $(tail -5 "$WORK/nbdkit.log")"
echo "  the monitor says: $(grep -o "WARNING: Snapshot vgd-snap is now .*" "$WORK/nbdkit.log" | head -1)"
stop_daemon
echo "ok daemon"
