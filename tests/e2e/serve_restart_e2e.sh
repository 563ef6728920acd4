#!/bin/bash
# `cowsnap serve` restarts after any stop: the NBD socket (ROOT/nbd.sock or
# --socket) and ROOT/control.sock that a stopped or killed server leaves
# behind are replaced when nothing listens on them; a socket something
# still listens on is refused, and that listener keeps working.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdinfo
e2e_init

csq pvcreate --size 64M "$WORK/pv0.img" >/dev/null
csq vgcreate -s 4M vgr "$WORK/pv0.img" >/dev/null
csq lvcreate -L 8M -n data vgr >/dev/null
NBD=$ROOT/nbd.sock

# serve_up [ARGS...]: cowsnap serve in the background, until it serves.
serve_up() {
  "$COWSNAP" --root "$ROOT" serve "$@" 2>>"$WORK/serve.log" &
  SERVER_PID=$!
  local sock=${SERVE_SOCK:-$NBD} i
  for ((i = 0; i < 100; i++)); do
    if [[ -S "$ROOT/control.sock" ]] && nbdinfo --list "nbd+unix://?socket=$sock" >/dev/null 2>&1; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || e2e_fail "cowsnap serve $* exited at start-up: $(tail -n 3 "$WORK/serve.log")"
    sleep 0.1
  done
  e2e_fail "cowsnap serve $* did not start serving"
}

serve_up
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""
serve_up
nbdinfo "nbd+unix:///vgr/data?socket=$NBD" | grep -q 'export-size: 8388608' || e2e_fail "vgr/data after a restart"
echo "ok restart after SIGTERM"

for round in 1 2; do
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  [[ -S "$NBD" ]] || echo "(nbdkit removed $NBD itself)"
  serve_up
done
csq lvs vgr >/dev/null || e2e_fail "cowsnap lvs after restarts"
echo "ok restart after SIGKILL, twice"

# --socket: the same for a socket outside the root.
e2e_server_stop
SERVE_SOCK=$WORK/other.sock serve_up --socket "$WORK/other.sock"
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
SERVE_SOCK=$WORK/other.sock serve_up --socket "$WORK/other.sock"
e2e_server_stop
echo "ok restart on a --socket after SIGKILL"

# A live listener on the NBD socket (another NBD server) is not replaced.
rm -f "$NBD"  # nbdkit -U, too, needs the path free
nbdkit -f -U "$NBD" memory 1M 2>>"$WORK/other-nbdkit.log" &
OTHER=$!
E2E_BG_PIDS+=("$OTHER")
for ((i = 0; i < 100; i++)); do nbdinfo "nbd+unix://?socket=$NBD" >/dev/null 2>&1 && break; sleep 0.1; done
nbdinfo "nbd+unix://?socket=$NBD" >/dev/null || e2e_fail "nbdkit memory did not start: $(cat "$WORK/other-nbdkit.log")"
if timeout 20 "$COWSNAP" --root "$ROOT" serve 2>"$WORK/busy.err"; then e2e_fail "serve replaced a live NBD socket"; fi
grep -q "$NBD: Address already in use" "$WORK/busy.err" || e2e_fail "live socket: $(cat "$WORK/busy.err")"
nbdinfo "nbd+unix://?socket=$NBD" | grep -q 'export-size: 1048576' || e2e_fail "the other server no longer answers"
[[ ! -S "$ROOT/control.sock" ]] || e2e_fail "a refused serve left a control socket"
echo "ok a live NBD socket is refused, its server untouched"

# A path that is not a socket is not removed either.
kill "$OTHER"
wait "$OTHER" 2>/dev/null || true
rm -f "$NBD"
echo keep >"$NBD"
if timeout 20 "$COWSNAP" --root "$ROOT" serve 2>"$WORK/file.err"; then e2e_fail "serve started on a regular file"; fi
grep -q keep "$NBD" || e2e_fail "serve removed a regular file at the socket path"
grep -q "$NBD: exists and is not a socket" "$WORK/file.err" || e2e_fail "regular file: $(cat "$WORK/file.err")"
echo "ok a regular file at the socket path is kept and refused"
echo PASS
