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
