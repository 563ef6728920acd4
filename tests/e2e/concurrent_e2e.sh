#!/bin/bash
# Concurrent randomized writes over several NBD connections while snapshots
# are taken online, checked against a model (concurrent_model.py, libnbd's
# Python bindings).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit
/usr/bin/python3 -c 'import nbd' 2>/dev/null || e2e_skip "python3-libnbd is not installed"
e2e_init
csq pvcreate --size 1G "$(e2e_pv pv0)" >/dev/null
csq vgcreate -s 4M vgm "$(e2e_pv pv0)" >/dev/null
csq lvcreate -L 16M -n data vgm >/dev/null
e2e_server_start
/usr/bin/python3 "$here/concurrent_model.py" "$SOCK" "$ROOT/control.sock" vgm data $((20 * 1024 * 1024))
csq lvs vgm
echo PASS
