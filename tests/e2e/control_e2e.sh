#!/bin/bash
# The control socket never dies from input: control_abuse.py sends invalid
# UTF-8, garbage, wrong shapes, deep nesting, an over-long line, idle and
# half-sent and vanishing clients, and 200 clients at once to a real server;
# each request line gets an error reply. Afterwards the same server still
# serves NBD (reads back what was written before), answers `cowsnap lvs` and
# takes an online lvcreate. The CLI's online path refuses a name with an
# invalid byte itself, with lvm2's message, instead of leaking an exception.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdinfo nbdcopy
/usr/bin/python3 -c 'import socket' || e2e_skip "needs /usr/bin/python3"
e2e_init

csq pvcreate --size 128M "$WORK/pv0.img" >/dev/null
csq vgcreate -s 4M vgc "$WORK/pv0.img" >/dev/null
csq lvcreate -L 8M -n data vgc >/dev/null
e2e_server_start
head -c 8M /dev/urandom >"$WORK/data.img"
nbdcopy "$WORK/data.img" "$(uri vgc/data)"

/usr/bin/python3 "$here/control_abuse.py" "$ROOT/control.sock" vgc || e2e_fail "control socket abuse"
kill -0 "$SERVER_PID" 2>/dev/null || e2e_fail "the server died"
grep -q 'terminate called\|Aborted' "$WORK/nbdkit.log" && e2e_fail "the server log shows an abort"

# The CLI, online: a name byte that is not UTF-8 (and not a valid name).
bad=$'\xff'
for args in "lvcreate -L 4M -n $bad vgc" "lvrename vgc data $bad" "lvcreate -s -L 4M -n $bad vgc/data"; do
  # shellcheck disable=SC2086 # split on purpose: the words of one command
  if csq $args >"$WORK/bad.out" 2>"$WORK/bad.err"; then e2e_fail "cowsnap $args succeeded"; fi
  grep -q "ogical volume name \"$bad\" is invalid" "$WORK/bad.err" || e2e_fail "cowsnap $args: $(cat "$WORK/bad.err")"
  grep -qi 'json\|exception' "$WORK/bad.err" && e2e_fail "cowsnap $args leaks internals: $(cat "$WORK/bad.err")"
done
echo "ok the CLI refuses a non-UTF-8 LV name online, as lvm2 does"

kill -0 "$SERVER_PID" 2>/dev/null || e2e_fail "the server died"
nbdinfo --list "nbd+unix://?socket=$SOCK" | grep -q '^export="vgc/data":' || e2e_fail "vgc/data no longer exported"
nbdcopy "$(uri vgc/data)" "$WORK/back.img"
cmp -s "$WORK/data.img" "$WORK/back.img" || e2e_fail "vgc/data does not read back what was written"
csq lvs vgc >/dev/null || e2e_fail "cowsnap lvs after the abuse"
csq lvcreate -L 4M -n after vgc | grep -q 'Logical volume "after" created' || e2e_fail "online lvcreate after the abuse"
[[ "$(e2e_lv_field vgc/after lv_attr)" == -wi-a-* ]] || e2e_fail "vgc/after not active: $(csq lvs vgc)"
csq lvs vgc
echo PASS
