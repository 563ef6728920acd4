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

# The seed's files (fixed bytes, seed_files.py) in $SCRATCH/files, and their
# sha256 manifest in $SCRATCH/orig.sha256 for guest_seed_files_match.
kernel_seed_files() {
  python3 "$KERNEL_TESTS_DIR/seed_files.py" "$SCRATCH/files"
  (cd "$SCRATCH/files" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$SCRATCH/orig.sha256"
}

# kernel_snapshot_when_frozen GUEST_PID [LVCREATE_OPTION...]: the host's
# half of the seed's online snapshots. Waits until the guest (GUEST_PID,
# in_guest in the background) has frozen b64m's filesystem and says so in
# $SCRATCH/frozen, takes sb64m (32 MiB) and sb64m2 (64 MiB) through the
# running server, and answers in $SCRATCH: snapshots-taken or host-failed.
# Returns at once if the guest ends without freezing.
kernel_snapshot_when_frozen() {
  local guest_pid=$1
  shift
  while [[ ! -e "$SCRATCH/frozen" ]]; do
    kill -0 "$guest_pid" 2>/dev/null || return 0
    sleep 0.2
  done
  echo "host: the guest froze b64m's filesystem; snapshots through the running server"
  if csq lvcreate -L 32M -s "$@" -n sb64m vgsrv/b64m && csq lvcreate -L 64M -s "$@" -n sb64m2 vgsrv/b64m; then
    touch "$SCRATCH/snapshots-taken"
  else
    touch "$SCRATCH/host-failed"
  fi
}
