#!/bin/bash
# One owner per RBD PV, across roots (as across hosts): a second server
# whose root lists the same image is refused while the first lives; once
# the first stops answering (SIGSTOP: its watch lapses as a dead host's
# would), `serve --take-over` breaks its lock and serves the VG with its
# snapshot intact; the old server, woken, fails its late writes (the
# cluster blocklisted it), and the data stays the new owner's.
# Then bad input: an unknown pool, an unknown image, an image smaller than
# a PV, and a cluster that cannot be reached (an error within a bound).
# Needs CEPH_CONF (ctest starts a cluster: tests/ceph).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COWSNAP=${COWSNAP:-${1:-}}
PLUGIN=${PLUGIN:-${2:-}}
source "$here/e2e_lib.sh"
e2e_require_tools nbdkit nbdcopy nbdinfo rbd
E2E_PV_BACKEND=rbd
e2e_init
PV=$(e2e_pv pv0)
IMAGE=${PV#rbd:}

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
for ((i = 0; i < 50; i++)); do [[ -S "$SOCK2" ]] && break; sleep 0.1; done
sleep 1
nbdinfo --list "nbd+unix://?socket=$SOCK2" 2>/dev/null | grep -q '^export=' &&
  e2e_fail "a second server serves the VG while the first owns its PV"
grep -q "in use by another server: client\.[0-9]* owns its exclusive lock and is alive" "$WORK/second.log" ||
  e2e_fail "the second server did not say who owns the PV: $(cat "$WORK/second.log")"
echo "  second server refused: $(grep -o 'rbd:[^ ]*: in use by another server: client\.[0-9]*' "$WORK/second.log" | head -1)"
kill "$second"; wait "$second" 2>/dev/null
rm -f "$SOCK2"

# The first server hangs (a dead host, as the cluster sees it).
kill -STOP "$FIRST_PID"
t0=$(date +%s)
"$COWSNAP" --root "$ROOT2" serve -U "$SOCK2" --take-over 2>"$WORK/takeover.log" &
taker=$!
E2E_BG_PIDS+=("$taker")
for ((i = 0; i < 300; i++)); do
  nbdinfo --list "nbd+unix://?socket=$SOCK2" 2>/dev/null | grep -q '^export="vgo/data"' && break
  kill -0 "$taker" 2>/dev/null || e2e_fail "serve --take-over exited: $(cat "$WORK/takeover.log")"
  sleep 0.1
done
nbdinfo --list "nbd+unix://?socket=$SOCK2" 2>/dev/null | grep -q '^export="vgo/snap"' ||
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
kill "$taker"; wait "$taker" 2>/dev/null

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
