#!/bin/bash
# The seed experiment as a walk-through: every command, every lvs table and
# every result, step by step (the README's main job).
# Usage: tests/e2e/seed_demo.sh BUILD/cli/cowsnap BUILD/nbdkit-plugin/nbdkit-cowsnap-plugin.so [loop|fuse2fs]
# loop (the default) needs root, /dev/fuse and loop devices; fuse2fs needs
# /dev/fuse and user namespaces. KEEP_WORK=1 keeps the temp dir.
E2E_VERBOSE=1 exec bash "$(dirname "${BASH_SOURCE[0]}")/seed_e2e.sh" "$@"
