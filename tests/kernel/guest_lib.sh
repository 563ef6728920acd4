# Sourced by scripts that run inside the guest (see run-in-guest): lvm2
# without udev, a devices file or archives, configured under
# $GUEST_SCRATCH/lvm, since the host's /etc is read-only there.
set -euo pipefail

: "${GUEST_SCRATCH:?guest_lib.sh runs inside the guest (run-in-guest)}"
export DM_DISABLE_UDEV=1
export LVM_SYSTEM_DIR=$GUEST_SCRATCH/lvm
mkdir -p "$LVM_SYSTEM_DIR"
cat >"$LVM_SYSTEM_DIR/lvm.conf" <<'CONF'
devices {
  use_devicesfile = 0
  obtain_device_list_from_udev = 0
  scan = [ "/dev" ]
}
activation {
  udev_sync = 0
  udev_rules = 0
  monitoring = 0
}
backup {
  backup = 0
  archive = 0
}
global {
  locking_dir = "/run/lock/lvm"
}
CONF

guest_fail() {
  echo "FAIL (guest): $*" >&2
  exit 1
}

# guest_seed_files_match DIR: DIR holds the seed's files exactly as the host
# wrote them (kernel_seed_files' manifest), or the guest fails.
guest_seed_files_match() {
  (cd "$1" && sha256sum --quiet -c "$GUEST_SCRATCH/orig.sha256") || guest_fail "files in $1 differ from the originals"
}
