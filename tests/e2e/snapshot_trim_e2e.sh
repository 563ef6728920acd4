#!/bin/bash
# Requests on a snapshot that is invalid (overflowed) or was removed under
# its client all fail, trim included (trim touches no data on a snapshot,
# and used to succeed there); online lvextend of an invalid snapshot is
# refused. On a valid snapshot trim still succeeds.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdcopy
/usr/bin/python3 -c 'import nbd' 2>/dev/null || e2e_skip "python3-libnbd is not installed"
e2e_init

csq pvcreate --size 128M "$WORK/pv0.img" >/dev/null
csq vgcreate -s 4M vgt "$WORK/pv0.img" >/dev/null
csq lvcreate -L 16M -n data vgt >/dev/null
e2e_server_start
csq lvcreate -L 4M -s -n small vgt/data >/dev/null
csq lvcreate -L 20M -s -n gone vgt/data >/dev/null
# 16 MiB of new origin data overflows the 4 MiB store of "small".
head -c 16M /dev/urandom >"$WORK/new.img"
nbdcopy "$WORK/new.img" "$(uri vgt/data)"
e2e_expect_eq "$(e2e_lv_field vgt/small lv_attr)" "swi-I-s---" "small after the overflow"

/usr/bin/python3 - "$SOCK" "$COWSNAP" "$ROOT" "$here" <<'PY' || e2e_fail "trim on invalid/removed snapshots"
import errno, subprocess, sys
sys.path.insert(0, sys.argv[4])
import nbd
from nbd_expect import Checks
sock, cowsnap, root = sys.argv[1:4]
c = Checks()
def h(name):
    conn = nbd.NBD(); conn.connect_uri(f"nbd+unix:///vgt/{name}?socket={sock}"); return conn
small = h("small")
c.error("read of an invalid snapshot", lambda: small.pread(4096, 0), errno.EIO)
c.error("trim of an invalid snapshot", lambda: small.trim(4096, 0), errno.EIO)
small.shutdown()
gone = h("gone")
gone.trim(4096, 0)  # valid: accepted (and discards nothing)
print("ok trim of a valid snapshot")
r = subprocess.run([cowsnap, "--root", root, "lvremove", "-f", "vgt/gone"], capture_output=True, text=True)
if r.returncode != 0:
    c.fail(f"lvremove -f of a connected snapshot: {r.stderr}")
# ENODEV has no NBD error code: nbdkit sends it as EINVAL.
c.error("read of a removed snapshot", lambda: gone.pread(4096, 0), errno.EINVAL)
c.error("trim of a removed snapshot", lambda: gone.trim(4096, 0), errno.EINVAL)
sys.exit(c.exit_code())
PY

if csq lvextend -L +4M vgt/small 2>"$WORK/ext.err"; then e2e_fail "online lvextend of an invalid snapshot succeeded"; fi
grep -q 'Snapshot vgt/small is invalid' "$WORK/ext.err" || e2e_fail "lvextend of an invalid snapshot: $(cat "$WORK/ext.err")"
e2e_expect_eq "$(e2e_lv_field vgt/small lv_size)" "4.00m" "small's size after the refused lvextend"
echo "ok online lvextend of an invalid snapshot is refused"
echo PASS
