# Helpers for the CLI test scripts. Each script sources this file.
set -u
: "${COWSNAP:?path of the cowsnap binary}"
# tmpfs when there is one: the engine flushes every copied-out chunk, which
# costs minutes on a disk and nothing in memory. PV files are sparse.
if [ -z "${TEST_TMPDIR:-}" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then TEST_TMPDIR=/dev/shm; else TEST_TMPDIR=/tmp; fi
fi
WORK=$(mktemp -d "$TEST_TMPDIR/cowsnap-cli-test.XXXXXX")
ROOT="$WORK/root"
# PV files are reached through a symlink of fixed length, so that report
# column widths, which depend on path lengths, do not vary with TMPDIR.
PVDIR=$(mktemp -u /tmp/cs-pvdir.XXXXXX)
ln -s "$WORK" "$PVDIR"
FAILURES=0
cleanup() { rm -rf "$WORK" "$PVDIR"; }
trap cleanup EXIT

cs() { "$COWSNAP" --root "$ROOT" "$@"; }

fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}

# expect_output NAME EXPECTED ACTUAL
expect_eq() {
  if [ "$2" != "$3" ]; then
    fail "$1"
    diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") >&2 || true
  fi
}

# Paths and UUIDs vary from run to run.
normalise() {
  sed -e "s#$PVDIR#/tmp/cs-pvdir.XXXXXX#g" -e "s#$WORK#WORK#g" \
      -e 's/[A-Za-z0-9]\{6\}-[A-Za-z0-9]\{4\}-[A-Za-z0-9]\{4\}-[A-Za-z0-9]\{4\}-[A-Za-z0-9]\{4\}-[A-Za-z0-9]\{4\}-[A-Za-z0-9]\{6\}/UUID/g' \
      -e 's/[A-Za-z0-9]\{32\}/UUID32/g' \
      -e 's/^\(  LV Creation host, time\) .*/\1 HOST, TIME/'
}

# seed_vg: the seed experiment's VG (steps 1, 2 and 4).
seed_vg() {
  cs pvcreate --size 6625M "$PVDIR/pv0.img" >/dev/null &&
  cs vgcreate -s 32M vgsrv "$PVDIR/pv0.img" >/dev/null &&
  cs lvcreate -L 64M -n b64m vgsrv >/dev/null &&
  cs lvcreate -L 32M -s -n sb64m vgsrv/b64m >/dev/null &&
  cs lvcreate -L 64M -s -n sb64m2 vgsrv/b64m >/dev/null
}

finish() {
  if [ "$FAILURES" -ne 0 ]; then
    echo "$FAILURES check(s) failed" >&2
    exit 1
  fi
  echo "all checks passed"
  exit 0
}
