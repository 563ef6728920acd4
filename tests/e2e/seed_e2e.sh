#!/bin/bash
# The seed experiment end to end: real nbdkit, nbdfuse, ext4 and loop
# mounts. Usage: COWSNAP=... PLUGIN=... seed_e2e.sh (or: ctest -L e2e).
# Exit 77 (skipped) without root, /dev/fuse or loop devices, unless CI=true.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
source "$here/seed_steps.sh"
e2e_require_tools nbdkit nbdfuse nbdinfo nbdcopy mkfs.ext4 e2fsck dumpe2fs fusermount3 losetup fsfreeze
e2e_require_mount_env
seed_main
