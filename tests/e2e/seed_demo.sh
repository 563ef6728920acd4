#!/bin/bash
# The seed experiment as a walk-through: every command, every lvs table and
# every result, step by step (the README's main job).
# Usage: tests/e2e/seed_demo.sh BUILD/cli/cowsnap BUILD/nbdkit-plugin/nbdkit-cowsnap-plugin.so
# Needs root, /dev/fuse and loop devices. KEEP_WORK=1 keeps the temp dir.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
E2E_VERBOSE=1
source "$here/e2e_lib.sh"
source "$here/seed_steps.sh"
e2e_require_tools nbdkit nbdfuse nbdinfo nbdcopy mkfs.ext4 e2fsck dumpe2fs fusermount3 losetup fsfreeze
e2e_require_mount_env
seed_main
