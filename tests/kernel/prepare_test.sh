#!/usr/bin/env bash
# kernel_prepare_guest GUEST_DIR: prepares the guest every kernel test boots
# (the fixture they require). Skipped without qemu or busybox-static,
# except under CI=true.
set -euo pipefail
guest=${1:?usage: prepare_test.sh GUEST_DIR}
skip() {
  if [[ "${CI:-}" == "true" ]]; then echo "FAIL (CI=true): $*" >&2; exit 1; fi
  echo "SKIP: $*" >&2
  exit 77
}
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (qemu-system-x86)"
command -v busybox >/dev/null || skip "busybox is not installed (busybox-static)"
command -v nbd-client >/dev/null || skip "nbd-client is not installed"
exec "$(dirname "$0")/prepare-guest" "$guest"
