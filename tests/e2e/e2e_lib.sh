# Shared by the cowsnap end-to-end scripts (sourced, not run).
#
# Needs COWSNAP (the cowsnap binary) and PLUGIN (nbdkit-cowsnap-plugin.so,
# or "cowsnap", the short name of an installed one) in the environment.
# Everything lives under $WORK (a fresh temp dir); the EXIT trap unmounts,
# detaches and kills whatever the script started, in reverse order, even
# when a check fails half way.

set -euo pipefail

: "${COWSNAP:?set COWSNAP to the cowsnap binary}"
: "${PLUGIN:?set PLUGIN to nbdkit-cowsnap-plugin.so}"

E2E_VERBOSE=${E2E_VERBOSE:-0}   # 1: print every command (the demo)
# How an attached LV's filesystem is mounted: "loop" (mount -o loop, needs
# root) or "fuse2fs" (a FUSE filesystem driver: works without root).
E2E_FS_DRIVER=${E2E_FS_DRIVER:-loop}
# COWSNAP_WRITEBACK=1: the server runs in write-back mode (writeback=on).
COWSNAP_WRITEBACK=${COWSNAP_WRITEBACK:-0}
WORK=""
ROOT=""
SOCK=""
SERVER_PID=""
declare -a E2E_MOUNTS=()        # filesystem mount points, in mount order
declare -A E2E_FS_PIDS=()       # mount point -> its fuse2fs process
declare -a E2E_FUSE_DIRS=()     # nbdfuse mount points
declare -a E2E_FUSE_PIDS=()
declare -a E2E_BG_PIDS=()       # other background helpers
declare -a E2E_SERVER_PARAMS=() # more plugin parameters for e2e_server_start

e2e_skip() {
  # ctest treats 77 as "skipped"; in CI a missing prerequisite is a failure.
  if [[ "${CI:-}" == "true" ]]; then
    echo "FAIL (CI=true): $*" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit 77
}

e2e_fail() {
  echo "FAIL: $*" >&2
  exit 1
}

e2e_require_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || e2e_skip "$t is not installed"
  done
}

# Root, /dev/fuse and a free loop device: what a loop mount over nbdfuse needs.
e2e_require_mount_env() {
  [[ $(id -u) -eq 0 ]] || e2e_skip "needs root (loop mounts)"
  [[ -c /dev/fuse ]] || e2e_skip "needs /dev/fuse (nbdfuse)"
  losetup -f >/dev/null 2>&1 || e2e_skip "needs a free loop device (losetup -f failed)"
}

e2e_init() {
  [[ -x "$COWSNAP" ]] || e2e_fail "cowsnap binary not found: $COWSNAP"
  if [[ "$PLUGIN" == */* ]]; then
    [[ -f "$PLUGIN" ]] || e2e_fail "plugin not found: $PLUGIN"
  else
    nbdkit --dump-plugin "$PLUGIN" >/dev/null 2>&1 || e2e_fail "nbdkit finds no plugin named $PLUGIN"
  fi
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/cowsnap-e2e.XXXXXX")
  ROOT=$WORK/root
  SOCK=$WORK/nbd.sock
  mkdir -p "$WORK/fuse" "$WORK/mnt"
  trap e2e_cleanup EXIT
  if [[ "${E2E_PV_BACKEND:-file}" == rbd ]]; then
    [[ -r "${CEPH_CONF:-}" ]] || e2e_fail "E2E_PV_BACKEND=rbd needs CEPH_CONF naming a running cluster's config"
  fi
}

e2e_cleanup() {
  local rc=$? i m
  set +e
  for pid in "${E2E_BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  for ((i = ${#E2E_MOUNTS[@]} - 1; i >= 0; i--)); do
    m=${E2E_MOUNTS[i]}
    mountpoint -q "$m" && { umount "$m" 2>/dev/null || fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
    [[ -n "${E2E_FS_PIDS[$m]:-}" ]] && wait "${E2E_FS_PIDS[$m]}" 2>/dev/null
  done
  for ((i = ${#E2E_FUSE_DIRS[@]} - 1; i >= 0; i--)); do
    m=${E2E_FUSE_DIRS[i]}
    mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"; }
  done
  for pid in "${E2E_FUSE_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  # Loop devices still pointing into $WORK (umount -l leaves them behind).
  if [[ -n "$WORK" ]]; then
    losetup -nO NAME,BACK-FILE 2>/dev/null | awk -v w="$WORK" 'index($2, w) == 1 {print $1}' |
      while read -r dev; do losetup -d "$dev"; done
  fi
  e2e_server_stop
  if [[ $rc -ne 0 && -n "$WORK" && -f "$WORK/nbdkit.log" ]]; then
    echo "---- nbdkit log (last 40 lines) ----" >&2
    tail -n 40 "$WORK/nbdkit.log" >&2
  fi
  if [[ -n "$WORK" && "${KEEP_WORK:-0}" != 1 ]]; then rm -rf "$WORK"; fi
  exit $rc
}

# Prints the command (demo mode) and runs it.
run() {
  if [[ "$E2E_VERBOSE" == 1 ]]; then printf '# %s\n' "$*"; fi
  "$@"
}

# run_logged LOG CMD...: like run, with the command's own output into LOG.
run_logged() {
  local log=$1
  shift
  if [[ "$E2E_VERBOSE" == 1 ]]; then printf '# %s\n' "$*"; fi
  "$@" >>"$log" 2>&1
}

cs() { run "$COWSNAP" --root "$ROOT" "$@"; }
# Quiet variant for the checks.
csq() { "$COWSNAP" --root "$ROOT" "$@"; }

uri() { echo "nbd+unix:///$1?socket=$SOCK"; }

# A PV's name: a sparse file in WORK, or with E2E_PV_BACKEND=rbd an image
# in the pool "rbd" of the cluster $CEPH_CONF names (tests/ceph), unique to
# this run.
e2e_pv() {
  if [[ "${E2E_PV_BACKEND:-file}" == rbd ]]; then
    echo "rbd:rbd/${WORK##*/}-$1"
  else
    echo "$WORK/$1.img"
  fi
}

# ---- the server ----

e2e_server_start() {
  local mode=()
  [[ "$COWSNAP_WRITEBACK" == 1 ]] && mode=(writeback=on)
  rm -f "$SOCK"
  nbdkit -f -U "$SOCK" "$PLUGIN" root="$ROOT" "${mode[@]}" "${E2E_SERVER_PARAMS[@]}" 2>>"$WORK/nbdkit.log" &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S "$SOCK" && -S "$ROOT/control.sock" ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || e2e_fail "nbdkit exited at start-up (see $WORK/nbdkit.log)"
    sleep 0.1
  done
  e2e_fail "nbdkit did not create $SOCK"
}

e2e_server_stop() {
  [[ -n "$SERVER_PID" ]] || return 0
  kill "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# SIGKILL: a crash, no cleanup, no final flush.
e2e_server_kill() {
  [[ -n "$SERVER_PID" ]] || return 0
  kill -9 "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# ---- attaching and mounting LVs ----

# e2e_attach VG/LV: the export as the file $WORK/fuse/LV/LV (nbdfuse).
e2e_attach() {
  local name=${1#*/} dir
  dir=$WORK/fuse/$name
  mkdir -p "$dir"
  run_logged "$WORK/nbdfuse.log" nbdfuse "$dir/$name" "$(uri "$1")" &
  E2E_FUSE_PIDS+=($!)
  E2E_FUSE_DIRS+=("$dir")
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -f "$dir/$name" ]] && return 0
    sleep 0.1
  done
  e2e_fail "nbdfuse did not expose $1"
}

e2e_detach() {
  local dir=$WORK/fuse/${1#*/} i
  # A loop device lets go of the file asynchronously after its umount, so
  # nbdfuse may be busy for a moment.
  for ((i = 0; i < 50; i++)); do
    mountpoint -q "$dir" || return 0
    fusermount3 -u "$dir" 2>/dev/null && return 0
    sleep 0.1
  done
  fusermount3 -u "$dir"
}

# e2e_mount_image FILE DIR [ro|rw]: mounts the ext4 image FILE on DIR with
# the chosen driver.
e2e_mount_image() {
  local file=$1 dir=$2 opts=${3:-rw} i
  mkdir -p "$dir"
  case $E2E_FS_DRIVER in
    loop)
      run mount -o "loop,$opts" "$file" "$dir"
      ;;
    fuse2fs)
      # Foreground, so the cleanup can wait for its last writes.
      run_logged "$WORK/fuse2fs.log" fuse2fs "$file" "$dir" -o "$opts" -f &
      E2E_FS_PIDS[$dir]=$!
      for ((i = 0; i < 100; i++)); do
        mountpoint -q "$dir" && break
        kill -0 "${E2E_FS_PIDS[$dir]}" 2>/dev/null || e2e_fail "fuse2fs could not mount $file: $(tail -n 2 "$WORK/fuse2fs.log")"
        sleep 0.1
      done
      mountpoint -q "$dir" || e2e_fail "fuse2fs did not mount $file on $dir"
      ;;
    *) e2e_fail "unknown E2E_FS_DRIVER '$E2E_FS_DRIVER' (loop or fuse2fs)" ;;
  esac
  E2E_MOUNTS+=("$dir")
}

# e2e_unmount_dir DIR: unmounts; a fuse2fs process has written back all it
# held once it has exited, so wait for that before the LV goes away.
e2e_unmount_dir() {
  local dir=$1
  if mountpoint -q "$dir"; then
    case $E2E_FS_DRIVER in
      loop) run umount "$dir" ;;
      fuse2fs) run fusermount3 -u "$dir" ;;
    esac
  fi
  if [[ -n "${E2E_FS_PIDS[$dir]:-}" ]]; then
    wait "${E2E_FS_PIDS[$dir]}" || e2e_fail "fuse2fs on $dir exited with an error: $(tail -n 2 "$WORK/fuse2fs.log")"
    unset "E2E_FS_PIDS[$dir]"
  fi
}

# e2e_mount LV [ro|rw]: mounts the attached LV on $WORK/mnt/LV.
e2e_mount() { e2e_mount_image "$WORK/fuse/$1/$1" "$WORK/mnt/$1" "${2:-rw}"; }
e2e_umount() { e2e_unmount_dir "$WORK/mnt/$1"; }

# e2e_quiesce DIR / e2e_resume DIR bracket a snapshot of a mounted
# filesystem. With a loop mount, fsfreeze flushes the filesystem and holds
# new writes, as lvm2's suspend of the origin does. FUSE has no freeze:
# fuse2fs writes everything it holds back on any fsync, so fsync each file;
# new writes are not held, so the caller keeps the filesystem idle.
e2e_quiesce() {
  case $E2E_FS_DRIVER in
    loop) run fsfreeze -f "$1" ;;
    fuse2fs) run find "$1" -type f ! -path '*/lost+found/*' -exec sync {} + ;;
  esac
}

e2e_resume() {
  if [[ $E2E_FS_DRIVER == loop ]]; then run fsfreeze -u "$1"; fi
}

# Runs the calling script again inside a new user and mount namespace, as an
# unprivileged user or a rootless container would run it: FUSE mounts work
# there, loop mounts, fsfreeze and other privileged calls do not. Inside,
# checks that a loop mount really is refused. Usage: e2e_unprivileged SCRIPT ARGS...
e2e_unprivileged() {
  if [[ "${E2E_IN_USERNS:-}" == 1 ]]; then
    local probe
    probe=$(mktemp -d "${TMPDIR:-/tmp}/cowsnap-probe.XXXXXX")
    truncate -s 4M "$probe/img"
    mkfs.ext4 -q -F "$probe/img"
    mkdir "$probe/mnt"
    if mount -o loop,ro "$probe/img" "$probe/mnt" 2>/dev/null; then
      umount "$probe/mnt"
      rm -rf "$probe"
      e2e_fail "a loop mount works in the user namespace: this run would not show the unprivileged path"
    fi
    rm -rf "$probe"
    echo "running unprivileged (user namespace): loop mounts are refused, FUSE mounts work"
    return 0
  fi
  [[ -c /dev/fuse && -r /dev/fuse && -w /dev/fuse ]] || e2e_skip "needs read-write /dev/fuse (nbdfuse, fuse2fs)"
  unshare --user --map-root-user --mount true 2>/dev/null ||
    e2e_skip "cannot create a user namespace (unshare -Urm failed)"
  E2E_IN_USERNS=1 exec unshare --user --map-root-user --mount -- bash "$@"
}

# Forget cached pages, so reads really reach the server.
e2e_drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

# ---- reports ----

# e2e_lv_field VG/LV FIELD: one lvs field, trimmed.
e2e_lv_field() {
  csq lvs --noheadings -o "$2" "$1" | tr -d ' '
}

# e2e_wait_unused VG: waits (up to 10 s) until no LV of VG has an NBD
# client. A client that has disconnected is still counted until nbdkit has
# closed its connection, which happens after the client process is gone.
e2e_wait_unused() {
  local i
  for ((i = 0; i < 100; i++)); do
    csq lvs --noheadings -o lv_attr "$1" | tr -d " " | cut -c 6 | grep -q o || return 0
    sleep 0.1
  done
  e2e_fail "LVs of $1 still open after their clients exited: $(csq lvs "$1")"
}

# e2e_scatter URI COUNT SEED: COUNT writes of 4 KiB random bytes at random
# distinct blocks of the export, in random order (the same for one SEED),
# then a flush. A snapshot then holds COUNT runs of one chunk: its merge
# takes a step per chunk.
e2e_scatter() {
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import nbd, random, sys
uri, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
h = nbd.NBD()
h.connect_uri(uri)
for block in rng.sample(range(h.get_size() // 4096), count):
    h.pwrite(rng.randbytes(4096), block * 4096)
h.flush()
h.shutdown()
PY
}

# e2e_wait_merged VG/SNAP: waits (up to 120 s) until the merge of SNAP is
# over: the snapshot LV is gone (lvs -a lists a merging one as "[SNAP]").
e2e_wait_merged() {
  local i vg=${1%/*} snap=${1#*/}
  for ((i = 0; i < 1200; i++)); do
    csq lvs -a --noheadings -o lv_name "$vg" | tr -d ' []' | grep -qx "$snap" || return 0
    sleep 0.1
  done
  e2e_fail "the merge of $1 did not finish: $(csq lvs -a "$vg")"
}

# e2e_wait_until TENTHS CMD...: runs CMD every 0.1 s until it succeeds, at
# most TENTHS times; fails when it never did. The caller's own check after
# it says what was expected.
e2e_wait_until() {
  local tries=$1 i
  shift
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

e2e_expect_eq() {
  [[ "$1" == "$2" ]] || e2e_fail "$3: expected '$2', got '$1'"
}

# ---- the seed's data ----

# e2e_fill_files DIR: about a dozen files, ~5 MiB: `root` holding base1,
# text logs, binaries from /usr/bin, a PNG when one is around.
e2e_fill_files() {
  local dir=$1 total=0 f size n=0
  echo base1 >"$dir/root"
  mkdir -p "$dir/log" "$dir/bin"
  for n in 1 2 3; do
    for ((i = 0; i < 4000; i++)); do
      echo "$(printf '%06d' "$i") cowsnap seed log $n: origin b64m line $i of 4000"
    done >"$dir/log/messages.$n"
  done
  n=0
  for f in /usr/bin/*; do
    [[ -f "$f" && ! -L "$f" ]] || continue
    size=$(stat -c %s "$f")
    ((size > 100000 && size < 1200000)) || continue
    cp "$f" "$dir/bin/"
    total=$((total + size))
    n=$((n + 1))
    ((total < 4500000 && n < 8)) || break
  done
  f=$(find /usr/share -name '*.png' -size +10k -size -300k 2>/dev/null | head -n 1 || true)
  if [[ -n "$f" ]]; then cp "$f" "$dir/picture.png"; fi
  sync
}

# e2e_checksums DIR > FILE: sha256 of every file, relative paths.
e2e_checksums() {
  (cd "$1" && find . -type f ! -path './lost+found/*' -print0 | sort -z | xargs -0 sha256sum)
}

e2e_verify_checksums() {
  local dir=$1 sums=$2
  (cd "$dir" && sha256sum --quiet -c "$sums") || e2e_fail "files in $dir differ from the originals"
}

e2e_now() { date +%s.%N; }
e2e_elapsed() { awk -v a="$1" -v b="$(e2e_now)" 'BEGIN {printf "%.2f", b - a}'; }
