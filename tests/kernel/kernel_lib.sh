# Shared by the kernel tests' host-side scripts (sourced after
# ../e2e/e2e_lib.sh). The guest comes from prepare-guest, in
# $COWSNAP_GUEST_DIR; in_guest runs one script in it (run-in-guest).

KERNEL_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The guest must be prepared (the kernel_prepare_guest test does it) and
# qemu installed: skipped otherwise, a failure under CI=true.
kernel_require_guest() {
  e2e_require_tools qemu-system-x86_64
  [[ -n "${COWSNAP_GUEST_DIR:-}" && -f "$COWSNAP_GUEST_DIR/ready" ]] ||
    e2e_skip "no prepared kernel guest in '${COWSNAP_GUEST_DIR:-}' (kernel_prepare_guest did not run or failed)"
}

# in_guest [run-in-guest options] SCRIPT [ARG...]: its exit code is the
# script's; 125 means the guest itself failed (see run-in-guest).
in_guest() {
  "$KERNEL_TESTS_DIR/run-in-guest" --guest "$COWSNAP_GUEST_DIR" "$@"
}

# The seed's VG in $ROOT (vgsrv on a sparse 6625 MiB PV, 32 MiB extents,
# b64m of 64 MiB), served by nbdkit with the plugin on TCP 127.0.0.1, on a
# free port left in $port: the guest reaches it at 10.0.2.2:$port.
kernel_seed_vg_on_tcp() {
  csq pvcreate --size 6625M "$WORK/pv0.img" >/dev/null
  csq vgcreate -s 32M vgsrv "$WORK/pv0.img" >/dev/null
  csq lvcreate -L 64M -n b64m vgsrv >/dev/null
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  nbdkit -f -i 127.0.0.1 -p "$port" "$PLUGIN" root="$ROOT" 2>>"$WORK/nbdkit.log" &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    nbdinfo "nbd://127.0.0.1:$port/vgsrv/b64m" >/dev/null 2>&1 && [[ -S "$ROOT/control.sock" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || e2e_fail "nbdkit exited at start-up: $(tail -n 3 "$WORK/nbdkit.log")"
    sleep 0.1
  done
  nbdinfo "nbd://127.0.0.1:$port/vgsrv/b64m" >/dev/null || e2e_fail "the server does not answer on 127.0.0.1:$port"
}
