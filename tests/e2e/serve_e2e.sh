#!/bin/bash
# `cowsnap serve`: finds the plugin next to the cowsnap binary, execs
# nbdkit in the foreground (its PID is the server's), serves every LV on a
# Unix socket or a TCP port, refuses a second server on the same root and a
# missing root, and stops on SIGTERM; the CLI goes online while it runs.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdinfo nbdcopy python3
e2e_init

csq pvcreate --size 256M "$WORK/pv0.img" >/dev/null
csq vgcreate -s 4M vgs "$WORK/pv0.img" >/dev/null
csq lvcreate -L 8M -n data vgs >/dev/null

# serve_start ARGS...: cowsnap serve in the background; waits for the
# control socket.
serve_start() {
  "$COWSNAP" --root "$ROOT" serve "$@" 2>>"$WORK/serve.log" &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S "$ROOT/control.sock" ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || e2e_fail "cowsnap serve exited at start-up: $(tail -n 3 "$WORK/serve.log")"
    sleep 0.1
  done
  e2e_fail "cowsnap serve did not create $ROOT/control.sock"
}

serve_start --socket "$SOCK"
grep -q "cowsnap serve: exec nbdkit -f -t 64 -U $SOCK .*nbdkit-cowsnap-plugin.so root=$ROOT" "$WORK/serve.log" ||
  e2e_fail "serve did not say what it runs: $(cat "$WORK/serve.log")"
[[ "$(readlink "/proc/$SERVER_PID/exe")" == *nbdkit* ]] || e2e_fail "serve did not exec nbdkit in place"
nbdinfo --list "nbd+unix://?socket=$SOCK" | grep -q '^export="vgs/data":' || e2e_fail "vgs/data not exported"
echo "serve on a Unix socket: nbdkit runs in place, vgs/data exported"

csq lvcreate -L 8M -s -n snap vgs/data | grep -q 'Logical volume "snap" created' || e2e_fail "online lvcreate -s"
nbdinfo --list "nbd+unix://?socket=$SOCK" | grep -q '^export="vgs/snap":' || e2e_fail "new snapshot not exported"
if csq serve --socket "$WORK/other.sock" 2>"$WORK/twice.err"; then e2e_fail "a second server on the same root started"; fi
grep -q "a cowsnap server already serves" "$WORK/twice.err" || e2e_fail "second server error: $(cat "$WORK/twice.err")"
echo "the CLI goes through it; a second server on the root is refused"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || e2e_fail "serve did not exit cleanly on SIGTERM"
SERVER_PID=""
[[ ! -S "$ROOT/control.sock" ]] || e2e_fail "control socket left behind after SIGTERM"
echo "SIGTERM stops it cleanly"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
serve_start --port "$port"
for ((i = 0; i < 50; i++)); do nbdinfo "nbd://localhost:$port/vgs/snap" >/dev/null 2>&1 && break; sleep 0.1; done
nbdinfo "nbd://localhost:$port/vgs/snap" | grep -q "export-size: 8388608" || e2e_fail "vgs/snap over TCP"
echo "serve on TCP port $port: vgs/snap reachable"
e2e_server_stop

serve_start --socket "$SOCK" --writeback --writeback-memory 16M
grep -q "root=$ROOT writeback=on writeback-memory=16M" "$WORK/serve.log" ||
  e2e_fail "serve --writeback did not pass the mode to the plugin: $(tail -n 2 "$WORK/serve.log")"
nbdcopy "$(uri vgs/snap)" "$WORK/snap-before.img"
# Half the origin: the 8 MiB snapshot holds that (all of it would overflow).
nbdcopy "$(uri vgs/data)" "$WORK/new.img"
head -c 4M /dev/urandom >"$WORK/half.img"
dd if="$WORK/half.img" of="$WORK/new.img" conv=notrunc status=none
nbdcopy "$WORK/half.img" "$(uri vgs/data)"
nbdcopy "$(uri vgs/data)" "$WORK/data-wb.img"
nbdcopy "$(uri vgs/snap)" "$WORK/snap-wb.img"
cmp -s "$WORK/new.img" "$WORK/data-wb.img" || e2e_fail "write-back: the origin does not read what was written"
cmp -s "$WORK/snap-before.img" "$WORK/snap-wb.img" || e2e_fail "write-back: the snapshot changed"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || e2e_fail "serve --writeback did not exit cleanly on SIGTERM"
SERVER_PID=""
serve_start --socket "$SOCK"
nbdcopy "$(uri vgs/data)" "$WORK/data-after.img"
nbdcopy "$(uri vgs/snap)" "$WORK/snap-after.img"
cmp -s "$WORK/new.img" "$WORK/data-after.img" || e2e_fail "write-back: the origin lost writes across a clean stop"
cmp -s "$WORK/snap-before.img" "$WORK/snap-after.img" || e2e_fail "write-back: the snapshot changed across a clean stop"
e2e_server_stop
echo "serve --writeback: origin and snapshot read right, and hold across a clean stop"

if "$COWSNAP" --root "$WORK/nowhere" serve 2>"$WORK/noroot.err"; then e2e_fail "serve of a missing root started"; fi
grep -q "root directory $WORK/nowhere does not exist" "$WORK/noroot.err" || e2e_fail "missing root: $(cat "$WORK/noroot.err")"
echo "a missing root is refused, named"
echo PASS
