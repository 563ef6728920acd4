#!/bin/bash
# Read-only LVs over NBD (lvcreate -p r, lvchange -p r|rw), as the kernel
# serves a read-only dm device: the export says it is read-only, and every
# write, zero and trim fails with EPERM (NBD's code for EROFS); a client
# connected when its LV becomes read-only gets EPERM from then on, and can
# write again after lvchange -p rw. Reads are untouched, and the origin of a
# read-only snapshot still copies out to it.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdcopy nbdinfo
/usr/bin/python3 -c 'import nbd' 2>/dev/null || e2e_skip "python3-libnbd is not installed"
e2e_init

csq pvcreate --size 96M "$WORK/pv0.img" >/dev/null
csq vgcreate -s 4M vgp "$WORK/pv0.img" >/dev/null
csq lvcreate -L 8M -n data vgp >/dev/null
e2e_server_start
head -c 8M /dev/urandom >"$WORK/data0.img"
nbdcopy "$WORK/data0.img" "$(uri vgp/data)"
# Online, through the server: a read-only snapshot, then a read-only LV.
e2e_expect_eq "$(csq lvcreate -s -p r -L 12M -n ro vgp/data 2>&1)" '  Logical volume "ro" created.' "lvcreate -s -p r"
csq lvcreate -p r -L 4M -n plainro vgp >/dev/null 2>&1 || e2e_fail "lvcreate -p r of a plain LV"
e2e_expect_eq "$(e2e_lv_field vgp/ro lv_attr)" "sri-a-s---" "the read-only snapshot's attr"
e2e_expect_eq "$(e2e_lv_field vgp/plainro lv_attr)" "-ri-a-----" "the read-only LV's attr"
e2e_expect_eq "$(nbdinfo --json "$(uri vgp/ro)" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0]["is_read_only"])')" \
  "True" "the read-only snapshot's export is read-only"

/usr/bin/python3 - "$SOCK" "$COWSNAP" "$ROOT" "$WORK/data0.img" "$here" <<'PY' || e2e_fail "writes to read-only LVs"
import errno, subprocess, sys
sys.path.insert(0, sys.argv[5])
import nbd
from nbd_expect import Checks
sock, cowsnap, root, data0 = sys.argv[1:5]
original = open(data0, "rb").read()
c = Checks()
def h(name):
    conn = nbd.NBD(); conn.connect_uri(f"nbd+unix:///vgp/{name}?socket={sock}"); return conn
def expect_eperm(what, request):
    c.error(what, request, errno.EPERM)
def lvchange(*args):
    r = subprocess.run([cowsnap, "--root", root, "lvchange", *args], capture_output=True, text=True)
    if r.returncode != 0:
        c.fail(f"lvchange {' '.join(args)}: {r.stderr}")
    return r.stdout.strip()

ro = h("ro")
if not ro.is_read_only():
    c.fail("the read-only snapshot's export is writable")
if ro.pread(4096, 0) != original[:4096]:
    c.fail("the read-only snapshot does not read its origin's content")
# nbdkit refuses these itself for a read-only export (it never asks the plugin).
expect_eperm("write to a read-only snapshot", lambda: ro.pwrite(b"x" * 4096, 0))

# The origin changes; the read-only snapshot still gets its copy-outs.
data = h("data")
data.pwrite(b"n" * 65536, 0)
data.flush()
if ro.pread(65536, 0) != original[:65536]:
    c.fail("the read-only snapshot shows the origin's new data")

# A client connected while its LV becomes read-only: the plugin refuses.
out = lvchange("-p", "r", "vgp/data")
if out != "Logical volume vgp/data changed.":
    c.fail(f"lvchange -p r said {out!r}")
expect_eperm("write after lvchange -p r", lambda: data.pwrite(b"r" * 4096, 8192))
expect_eperm("zero after lvchange -p r", lambda: data.zero(4096, 8192))
expect_eperm("trim after lvchange -p r", lambda: data.trim(4096, 8192))
if data.pread(4096, 8192) != b"n" * 4096:
    c.fail("a refused write changed the LV")
lvchange("-p", "rw", "vgp/data")
data.pwrite(b"w" * 4096, 8192)
if data.pread(4096, 8192) != b"w" * 4096:
    c.fail("the write after lvchange -p rw did not land")
print("ok writable again after lvchange -p rw")
data.shutdown(); ro.shutdown()
sys.exit(c.exit_code())
PY

# The permission outlives the server (it is in the metadata).
e2e_server_stop
e2e_expect_eq "$(csq lvs --noheadings -o lv_name,lv_permissions vgp | awk '{print $1, $2}' | sort | tr '\n' ' ')" \
  "data writeable plainro read-only ro read-only " "permissions after a restart"
e2e_server_start
nbdcopy "$(uri vgp/ro)" "$WORK/ro.img"
cmp -s "$WORK/ro.img" "$WORK/data0.img" || e2e_fail "the read-only snapshot does not read its pre-snapshot content after a restart"
if nbdcopy "$WORK/data0.img" "$(uri vgp/plainro)" 2>/dev/null; then e2e_fail "nbdcopy into a read-only LV succeeded"; fi
e2e_server_stop
echo PASS
