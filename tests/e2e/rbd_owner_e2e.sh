#!/bin/bash
# One owner per RBD PV, across roots (as across hosts): a second server
# whose root lists the same image is refused while the first lives; once
# the first stops answering (SIGSTOP: its watch lapses as a dead host's
# would), `serve --take-over` breaks its lock and serves the VG with its
# snapshot intact; the old server, woken, fails its late writes (the
# cluster blocklisted it), and the data stays the new owner's. A live owner
# is not taken over without --force, and is with it. One VG mixes an RBD
# PV and a file PV.
# Then bad input: an unknown pool, an unknown image, an image smaller than
# a PV, and a cluster that cannot be reached (an error within a bound).
# Needs CEPH_CONF (ctest starts a cluster: tests/ceph).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdcopy nbdinfo rbd
/usr/bin/python3 -c 'import nbd' 2>/dev/null || e2e_skip "python3-libnbd is not installed"
E2E_PV_BACKEND=rbd
e2e_init
PV=$(e2e_pv pv0)
IMAGE=${PV#rbd:}
serves() { nbdinfo --list "nbd+unix://?socket=$1" 2>/dev/null | grep -q "^export=\"$2\""; }  # serves SOCKET VG/LV

cs pvcreate --size 256M "$PV"
rbd info "$IMAGE" | grep -q 'exclusive-lock' || e2e_fail "pvcreate's image has no exclusive-lock feature"
cs vgcreate -s 4M vgo "$PV"
cs lvcreate -L 32M -n data vgo
head -c 32M /dev/urandom >"$WORK/v1"
head -c 32M /dev/urandom >"$WORK/v2"
head -c 4M /dev/urandom >"$WORK/late"
e2e_server_start
nbdcopy --flush "$WORK/v1" "$(uri vgo/data)"
cs lvcreate -L 40M -s -n snap vgo/data
nbdcopy --flush "$WORK/v2" "$(uri vgo/data)"
FIRST_PID=$SERVER_PID FIRST_SOCK=$SOCK

# A second root listing the same image: another host's view.
ROOT2=$WORK/root2 SOCK2=$WORK/nbd2.sock
mkdir -p "$ROOT2"
"$COWSNAP" --root "$ROOT2" lvmdevices --adddev "$PV" >/dev/null
nbdkit -f -U "$SOCK2" "$PLUGIN" root="$ROOT2" 2>"$WORK/second.log" &
second=$!
E2E_BG_PIDS+=("$second")
e2e_wait_until 50 test -S "$SOCK2" || true
sleep 1
nbdinfo --list "nbd+unix://?socket=$SOCK2" 2>/dev/null | grep -q '^export=' &&
  e2e_fail "a second server serves the VG while the first owns its PV"
grep -q "in use by another server: client\.[0-9]* owns its exclusive lock and is alive" "$WORK/second.log" ||
  e2e_fail "the second server did not say who owns the PV: $(cat "$WORK/second.log")"
echo "  second server refused: $(grep -o 'rbd:[^ ]*: in use by another server: client\.[0-9]*' "$WORK/second.log" | head -1)"
kill "$second"; wait "$second" 2>/dev/null
rm -f "$SOCK2"

# --take-over does not break a live owner: it waits out the watch
# timeout, then refuses, naming the owner.
"$COWSNAP" --root "$ROOT2" serve -U "$SOCK2" --take-over 2>"$WORK/live.log" &
live=$!
E2E_BG_PIDS+=("$live")
e2e_wait_until 300 grep -q "not taken over" "$WORK/live.log" || true
grep -q "not taken over: its owner client\.[0-9]* is alive" "$WORK/live.log" ||
  e2e_fail "serve --take-over did not refuse a live owner: $(cat "$WORK/live.log")"
nbdinfo --list "nbd+unix://?socket=$SOCK2" 2>/dev/null | grep -q '^export=' &&
  e2e_fail "serve --take-over serves the VG of a live owner"
echo "  --take-over with a live owner: $(grep -o 'not taken over: its owner client\.[0-9]* is alive' "$WORK/live.log")"
kill "$live"; wait "$live" 2>/dev/null
rm -f "$SOCK2"

# The first server hangs (a dead host, as the cluster sees it).
kill -STOP "$FIRST_PID"
t0=$(date +%s)
"$COWSNAP" --root "$ROOT2" serve -U "$SOCK2" --take-over 2>"$WORK/takeover.log" &
taker=$!
E2E_BG_PIDS+=("$taker")
taker_serves() {
  kill -0 "$taker" 2>/dev/null || e2e_fail "serve --take-over exited: $(cat "$WORK/takeover.log")"
  serves "$SOCK2" vgo/data
}
e2e_wait_until 300 taker_serves || true
serves "$SOCK2" vgo/snap ||
  e2e_fail "serve --take-over does not serve the VG: $(cat "$WORK/takeover.log")"
echo "  taken over in $(($(date +%s) - t0)) s"
nbdcopy "nbd+unix:///vgo/snap?socket=$SOCK2" "$WORK/snap.read"
cmp -s "$WORK/snap.read" "$WORK/v1" || e2e_fail "the snapshot read through the new owner is not the data it was taken of"
nbdcopy "nbd+unix:///vgo/data?socket=$SOCK2" "$WORK/data.read"
cmp -s "$WORK/data.read" "$WORK/v2" || e2e_fail "the origin read through the new owner is not its last flushed data"
[[ "$("$COWSNAP" --root "$ROOT2" lvs --noheadings -o lv_attr vgo/snap | tr -d ' ')" == swi-a-s--- ]] ||
  e2e_fail "the snapshot is not active and valid after the take-over"

# The old owner wakes: its writes fail, and nothing of them lands.
kill -CONT "$FIRST_PID"
if nbdcopy --flush "$WORK/late" "nbd+unix:///vgo/data?socket=$FIRST_SOCK" 2>"$WORK/late.err"; then
  e2e_fail "the old server's write after the take-over succeeded"
fi
grep -q "blocklisted" "$WORK/nbdkit.log" || e2e_fail "the old server did not say it was blocklisted: $(tail -3 "$WORK/nbdkit.log")"
echo "  old server's late write: $(grep -m1 -o 'Cannot send after transport endpoint shutdown' "$WORK/late.err" || cat "$WORK/late.err")"
nbdcopy "nbd+unix:///vgo/data?socket=$SOCK2" "$WORK/data.read"
cmp -s "$WORK/data.read" "$WORK/v2" || e2e_fail "the old server's late write reached the image"
e2e_server_kill

# --force takes a live owner's PV: a third root's server takes it from the
# running taker at once, and the taker's writes fail from then on.
ROOT3=$WORK/root3 SOCK3=$WORK/nbd3.sock
mkdir -p "$ROOT3"
"$COWSNAP" --root "$ROOT3" lvmdevices --adddev "$PV" >/dev/null
"$COWSNAP" --root "$ROOT3" serve -U "$SOCK3" --take-over --force 2>"$WORK/force.log" &
forcer=$!
E2E_BG_PIDS+=("$forcer")
e2e_wait_until 100 serves "$SOCK3" vgo/data || true
serves "$SOCK3" vgo/snap ||
  e2e_fail "serve --take-over --force did not take a live owner's VG: $(cat "$WORK/force.log")"
if nbdcopy --flush "$WORK/late" "nbd+unix:///vgo/data?socket=$SOCK2" 2>/dev/null; then
  e2e_fail "the live owner's write succeeded after a forced take-over"
fi
nbdcopy "nbd+unix:///vgo/snap?socket=$SOCK3" "$WORK/snap.read"
cmp -s "$WORK/snap.read" "$WORK/v1" || e2e_fail "the snapshot changed in a forced take-over"
echo "  --force: taken from a live owner, whose writes now fail"
kill "$forcer" "$taker"; wait "$forcer" "$taker" 2>/dev/null

# One VG over an RBD PV and a file PV, an LV spanning both, a snapshot.
cs pvcreate --size 64M "$(e2e_pv mix0)"
cs pvcreate --size 64M "$WORK/mix1.img"
cs vgcreate -s 4M vgmix "$(e2e_pv mix0)" "$WORK/mix1.img"
cs lvcreate -L 96M -n span vgmix
cs pvs -o pv_name,vg_name,pv_size,pv_free
e2e_server_start
head -c 96M /dev/urandom >"$WORK/m1"
cp "$WORK/m1" "$WORK/m2"
# 8 MiB on each PV change after the snapshot.
for mib in 0 80; do
  dd if=/dev/urandom of="$WORK/m2" bs=1M seek=$mib count=8 conv=notrunc status=none
done
nbdcopy --flush "$WORK/m1" "$(uri vgmix/span)"
cs lvcreate -L 20M -s -n spansnap vgmix/span
/usr/bin/python3 -c "
import nbd
h = nbd.NBD()
h.connect_uri('$(uri vgmix/span)')
d = open('$WORK/m2', 'rb').read()
for off in (0, 80 << 20):
    h.pwrite(d[off:off + (8 << 20)], off)
h.flush()"
nbdcopy "$(uri vgmix/spansnap)" "$WORK/m.snap"
nbdcopy "$(uri vgmix/span)" "$WORK/m.origin"
cmp -s "$WORK/m.snap" "$WORK/m1" || e2e_fail "a snapshot of an LV over an RBD and a file PV does not read its origin as it was"
cmp -s "$WORK/m.origin" "$WORK/m2" || e2e_fail "an LV over an RBD and a file PV does not read what was written"
e2e_server_stop

# ---- bad input ----
expect_error() {  # expect_error PATTERN CMD...: fails, saying PATTERN
  local pattern=$1
  shift
  if "$@" >"$WORK/bad.out" 2>&1; then e2e_fail "succeeded: $*"; fi
  grep -q -- "$pattern" "$WORK/bad.out" || e2e_fail "'$*' did not say '$pattern': $(cat "$WORK/bad.out")"
  echo "  $(head -1 "$WORK/bad.out")"
}
expect_error "pool nopool does not exist" csq pvcreate --size 64M rbd:nopool/x
expect_error "does not exist and no size was given to create it" csq pvcreate "rbd:rbd/${WORK##*/}-none"
expect_error "not an RBD image name" csq pvcreate --size 64M rbd:rbd
rbd create --size 1M "rbd/${WORK##*/}-tiny"
expect_error "too small" csq pvcreate "rbd:rbd/${WORK##*/}-tiny"
# Nobody listens at the monitor address: an error, not a hang.
sed -E 's/^([[:space:]]*mon[_ ]host[[:space:]]*=).*/\1 [v2:127.0.0.1:9]/' "$CEPH_CONF" >"$WORK/nowhere.conf"
t0=$(date +%s)
CEPH_ARGS="--client_mount_timeout=5" expect_error "cannot connect to the Ceph cluster of $WORK/nowhere.conf" \
  csq --ceph-conf "$WORK/nowhere.conf" pvcreate --size 64M rbd:rbd/x
(($(date +%s) - t0 < 30)) || e2e_fail "an unreachable cluster took $(($(date +%s) - t0)) s to report"
echo PASS
