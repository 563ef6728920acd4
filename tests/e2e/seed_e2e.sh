#!/bin/bash
# The seed experiment end to end: real nbdkit, nbdfuse and ext4.
# Usage: seed_e2e.sh COWSNAP PLUGIN [loop|fuse2fs]   (or: ctest -L e2e)
#   loop     mount -o loop over nbdfuse, fsfreeze for the snapshots (root)
#   fuse2fs  fuse2fs over nbdfuse, run in a user namespace where loop
#            mounts are refused: the path for users without root
# Exit 77 (skipped) when what the chosen path needs is missing, unless
# CI=true, where that is a failure.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
E2E_FS_DRIVER=${3:-loop}
source "$here/e2e_lib.sh"
source "$here/seed_steps.sh"
e2e_require_tools nbdkit nbdfuse nbdinfo nbdcopy mkfs.ext4 e2fsck dumpe2fs fusermount3
case $E2E_FS_DRIVER in
  loop)
    e2e_require_tools losetup fsfreeze
    e2e_require_mount_env
    ;;
  fuse2fs)
    e2e_require_tools fuse2fs unshare
    e2e_unprivileged "$here/seed_e2e.sh" "$COWSNAP" "$PLUGIN" fuse2fs
    ;;
  *) e2e_fail "unknown mount path '$E2E_FS_DRIVER' (loop or fuse2fs)" ;;
esac
seed_main
