#!/usr/bin/env bash
# nbd_bench.sh: the same fio jobs, through fio's nbd ioengine, against every
# NBD server we compare, on one backing filesystem.
#
#   bench/nbd_bench.sh --build DIR [--quick] [--out FILE.jsonl] [--dir WORKDIR]
#                      [--runtime S] [--servers "file cowsnap-0 ..."]
#                      [--qemu-cache writeback|none] [--rounds N] [--keep]
#                      [--nbdkit-threads N]
#
# Servers (each started fresh, measured, stopped):
#   file        nbdkit's file plugin on base.raw: the baseline
#   cowsnap-N   nbdkit + nbdkit-cowsnap-plugin.so root=DIR serving vg/lv, a
#               1G LV (its content copied from base.raw) with N snapshots
#               (lvcreate -s, 4K chunks, 1.1G COW each), N = 0, 1, 4: the
#               default sync mode (a write that copies waits for its
#               copy-out to be durable)
#   cowsnap-wb-N the same served with writeback=on (copy-outs commit in the
#               background; durable at the client's FLUSH)
#   cow-filter  nbdkit --filter=cow file base.raw (overlay in WORKDIR, 64K blocks)
#   qcow2       qemu-nbd over ov.qcow2 (64K clusters) backed by base.raw,
#               --cache=writeback by default (page cache + honoured flushes,
#               as the file plugin and cowsnap use); --qemu-cache none gives O_DIRECT
# Every nbdkit runs with nbdkit's default thread pool (16 threads per
# connection, so at most 16 of fio's 32 requests are in a plugin at once)
# unless --nbdkit-threads N is given, which applies to all of them alike.
#
# Jobs, in this order, each over its own region of the export so that the
# first-write jobs really hit chunks nothing copied yet:
#   seqwrite-1m-first   1M sequential writes, QD 8, region A once (first
#                       writes; ends early when A is done)
#   randwrite-4k-first  4k random writes, QD 32, region B, each block once
#                       (fio's random map): first writes of 4K chunks
#   fill                64k sequential writes, QD 32, all of region C: copies
#                       every chunk of C (set-up, reported as measured=false)
#   seqwrite-1m         1M sequential writes, QD 8, region C, time-based:
#                       every chunk already copied
#   randwrite-4k        4k random writes, QD 32, region C, time-based:
#                       every chunk already copied
#   randread-4k         4k random reads, QD 32, region C, time-based
# Full: 1G export, A = 512M, B = 256M, C = 64M, runtime 5 s per job, and
# 3 rounds: every server is benchmarked once per round, in turn, so that a
# burst of load from elsewhere on a shared machine hits one round of every
# server rather than every round of one (report medians across rounds).
# --quick: 64M export, A = B = 16M, C = 2M, runtime 1 s, one round.
#
# Output: one JSON line per (server, job) on stdout and in --out, made by
# lib/fio_summary.py: fio's bandwidth, IOPS, latency percentiles and the
# server's write amplification from /proc/PID/io (wchar and write_bytes
# deltas over bytes fio wrote, read after the server's files are synced).
#
# Missing tools: a server whose program is missing is skipped with a
# warning and a {"skipped": ...} line, unless CI=true, where it is an error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=""
quick=0
out=""
work=""
runtime=""
servers="file cowsnap-0 cowsnap-1 cowsnap-4 cowsnap-wb-0 cowsnap-wb-1 cowsnap-wb-4 cow-filter qcow2"
qemu_cache=writeback
keep=0
rounds=""
round=1
nbdkit_threads=""

usage() { sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --out) out=$2; shift 2 ;;
    --dir) work=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --qemu-cache) qemu_cache=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --nbdkit-threads) nbdkit_threads=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "nbd_bench.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

log() { echo "nbd_bench: [${SECONDS}s] $*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "$quick" = 1 ]; then
  lv_size=64M; snap_size=72M; pv_size=1G
  seq_off=0; seq_size=16M
  first_off=16M; first_size=16M
  copied_off=32M; copied_size=2M
  : "${runtime:=1}" "${rounds:=1}"
else
  lv_size=1G; snap_size=1.1G; pv_size=6G
  seq_off=0; seq_size=512M
  first_off=512M; first_size=256M
  copied_off=768M; copied_size=64M
  : "${runtime:=5}" "${rounds:=3}"
fi

# ---- tools ---------------------------------------------------------------
missing_fatal() {
  # $1: what is missing, $2: what it costs
  if [ "${CI:-}" = true ]; then die "$1 is missing (CI=true: not skipping $2)"; fi
  log "WARNING: $1 is missing: skipping $2"
}
for tool in fio sync; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
# The system python: a pyenv shim in PATH can cost a second per call.
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=$(command -v python3) || die "python3 is required"
"$PY" -c 'import nbd' 2>/dev/null || die "$PY has no nbd module (python3-libnbd)"
have() { command -v "$1" >/dev/null; }

cowsnap_cli=""; plugin=""
if [ -n "$build" ]; then
  cowsnap_cli="$build/cli/cowsnap"
  plugin="$build/nbdkit-plugin/nbdkit-cowsnap-plugin.so"
fi

# ---- work area -----------------------------------------------------------
if [ -z "$work" ]; then
  work=$(mktemp -d /var/tmp/nbd_bench.XXXXXX)
else
  mkdir -p "$work"
fi
work=$(cd "$work" && pwd)
[ -n "$out" ] || out="$work/nbd_bench.jsonl"
: > "$out"

server_pid=""
sync_files=()  # the running server's backing files (those that have a name)
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$keep" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

emit() { echo "$1" | tee -a "$out"; }  # a JSON line


# The base image every peer starts from: non-zero data, durable.
make_base() {
  log "writing base.raw ($lv_size)"
  rm -f "$work/base.raw"
  fio --name=base --filename="$work/base.raw" --rw=write --bs=1M --size="$lv_size" \
      --ioengine=psync --end_fsync=1 --output=/dev/null
}

# Waits for a server to accept NBD connections on $1.
wait_socket() {
  local sock=$1 uri=$2 i
  for i in $(seq 1 200); do
    if [ -S "$sock" ] && { ! have nbdinfo || nbdinfo --size "$uri" >/dev/null 2>&1; }; then return 0; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then die "server exited before listening (see $work/server.log)"; fi
    sleep 0.05
  done
  die "server did not listen on $sock within 10 s"
}

stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}

# start_nbdkit SOCK ARGS... : nbdkit in the foreground of a background job,
# so $! is nbdkit itself and /proc/$!/io is the server's.
start_nbdkit() {
  local sock=$1; shift
  rm -f "$sock"
  local threads=()
  [ -z "$nbdkit_threads" ] || threads=(--threads "$nbdkit_threads")
  TMPDIR="$work" nbdkit -f --exit-with-parent "${threads[@]}" -U "$sock" "$@" >>"$work/server.log" 2>&1 &
  server_pid=$!
}

# run_job SERVER URI JOB RW BS QD OFFSET SIZE TIME_BASED MEASURED
run_job() {
  local server=$1 uri=$2 job=$3 rw=$4 bs=$5 qd=$6 offset=$7 size=$8 timed=$9 measured=${10}
  local f="$work/fio-$server-$job.json" t0=$SECONDS
  local args=(--name="$job" --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" --iodepth="$qd"
              --offset="$offset" --size="$size" --output-format=json --output="$f")
  if [ "$timed" = 1 ]; then args+=(--time_based --runtime="$runtime"); fi
  if [ "$measured" = 1 ] && [ "$timed" = 0 ]; then args+=(--runtime="$runtime"); fi
  # Flush the server's own files (not the whole machine: `sync` would wait
  # for every other process's writeback on a shared box), so that a job
  # does not pay for writing back the previous job's dirty pages.
  sync "${sync_files[@]}"
  cat "/proc/$server_pid/io" > "$work/io.before"
  cat "/proc/$server_pid/stat" > "$work/stat.before"
  fio "${args[@]}" >/dev/null || die "fio $job against $server failed (see $f)"
  # An NBD FLUSH (untimed) makes the server write what it still holds in
  # memory (cowsnap's write-back copy-outs), so that WA counts every byte.
  "$PY" -c 'import nbd, sys; h = nbd.NBD(); h.connect_uri(sys.argv[1]); h.flush(); h.shutdown()' "$uri" ||
    die "NBD flush of $server after $job failed"
  sync "${sync_files[@]}"
  cat "/proc/$server_pid/io" > "$work/io.after"
  cat "/proc/$server_pid/stat" > "$work/stat.after"
  "$PY" "$here/lib/fio_summary.py" --server "$server" --job "$job" --fio "$f" \
      --io-before "$work/io.before" --io-after "$work/io.after" \
      --stat-before "$work/stat.before" --stat-after "$work/stat.after" --measured "$measured" \
      --extra "{\"quick\": $([ "$quick" = 1 ] && echo true || echo false), \"round\": $round, \"export\": \"$lv_size\"}" \
      | tee -a "$out"
  [ $((SECONDS - t0)) -lt $((runtime + 5)) ] || log "($job took $((SECONDS - t0)) s)"
}

run_jobs() {
  local server=$1 uri=$2 hwm
  log "$server: jobs start"
  run_job "$server" "$uri" seqwrite-1m-first  write     1M  8  "$seq_off"    "$seq_size"    0 1
  run_job "$server" "$uri" randwrite-4k-first randwrite 4k  32 "$first_off"  "$first_size"  0 1
  run_job "$server" "$uri" fill               write     64k 32 "$copied_off" "$copied_size" 0 0
  run_job "$server" "$uri" seqwrite-1m        write     1M  8  "$copied_off" "$copied_size" 1 1
  run_job "$server" "$uri" randwrite-4k       randwrite 4k  32 "$copied_off" "$copied_size" 1 1
  run_job "$server" "$uri" randread-4k        randread  4k  32 "$copied_off" "$copied_size" 1 1
  # The server's peak RSS over all jobs (write-back mode holds copy-outs in memory).
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")
  emit "{\"bench\":\"nbd_bench\",\"server\":\"$server\",\"round\":$round,\"peak_rss_kib\":${hwm:-0}}"
}

# ---- servers -------------------------------------------------------------
bench_file() {
  have nbdkit || { missing_fatal nbdkit "server file"; emit '{"bench":"nbd_bench","server":"file","skipped":"nbdkit missing"}'; return; }
  local sock="$work/file.sock"
  sync_files=("$work/base.raw")
  start_nbdkit "$sock" file "$work/base.raw"
  local uri="nbd+unix:///?socket=$sock"
  wait_socket "$sock" "$uri"
  run_jobs file "$uri"
  stop_server
}

bench_cow_filter() {
  have nbdkit || { missing_fatal nbdkit "server cow-filter"; emit '{"bench":"nbd_bench","server":"cow-filter","skipped":"nbdkit missing"}'; return; }
  local sock="$work/cowf.sock"
  sync_files=("$work/base.raw")  # the overlay is an unlinked temporary file
  start_nbdkit "$sock" --filter=cow file "$work/base.raw"
  local uri="nbd+unix:///?socket=$sock"
  wait_socket "$sock" "$uri"
  run_jobs cow-filter "$uri"
  stop_server
}

bench_qcow2() {
  if ! have qemu-nbd || ! have qemu-img; then
    missing_fatal "qemu-nbd/qemu-img" "server qcow2"
    emit '{"bench":"nbd_bench","server":"qcow2","skipped":"qemu-nbd or qemu-img missing"}'
    return
  fi
  local sock="$work/qcow2.sock"
  rm -f "$work/ov.qcow2" "$sock"
  qemu-img create -q -f qcow2 -b "$work/base.raw" -F raw "$work/ov.qcow2"
  sync_files=("$work/base.raw" "$work/ov.qcow2")
  qemu-nbd -k "$sock" -f qcow2 -t --cache="$qemu_cache" "$work/ov.qcow2" >>"$work/server.log" 2>&1 &
  server_pid=$!
  local uri="nbd+unix:///?socket=$sock"
  wait_socket "$sock" "$uri"
  run_jobs qcow2 "$uri"
  stop_server
  rm -f "$work/ov.qcow2"
}

# bench_cowsnap N [wb]: N snapshots, in write-back mode with "wb".
bench_cowsnap() {
  local n=$1 name="cowsnap-$1" mode=()
  if [ "${2:-}" = wb ]; then name="cowsnap-wb-$n" mode=(writeback=on); fi
  if ! have nbdkit; then
    missing_fatal nbdkit "server $name"
    emit "{\"bench\":\"nbd_bench\",\"server\":\"$name\",\"skipped\":\"nbdkit missing\"}"
    return
  fi
  if [ ! -x "$cowsnap_cli" ] || [ ! -f "$plugin" ]; then
    # Not a peer tool: without our own binaries there is nothing to measure.
    die "cowsnap CLI or plugin not found (--build DIR: $cowsnap_cli, $plugin)"
  fi
  local root="$work/root-$n" sock="$work/cowsnap.sock" i
  rm -rf "$root"; mkdir -p "$root"
  local cs=("$cowsnap_cli" --root "$root")
  sync_files=("$root/pv0.img")
  "${cs[@]}" pvcreate --size "$pv_size" "$root/pv0.img" >/dev/null
  "${cs[@]}" vgcreate -s 4M vg "$root/pv0.img" >/dev/null
  "${cs[@]}" lvcreate -L "$lv_size" -n lv vg >/dev/null
  local uri="nbd+unix:///vg/lv?socket=$sock"
  log "$name: LV created; copying base.raw into it"
  # The LV's content: base.raw, copied in before any snapshot exists.
  start_nbdkit "$sock" "$plugin" root="$root"
  wait_socket "$sock" "$uri"
  nbdcopy "$work/base.raw" "$uri" || die "nbdcopy base.raw -> $name failed"
  stop_server
  for ((i = 1; i <= n; i++)); do
    "${cs[@]}" lvcreate -L "$snap_size" -s -c 4k -n "s$i" vg/lv >/dev/null
  done
  log "$name: $n snapshot(s) created; serving"
  start_nbdkit "$sock" "$plugin" root="$root" "${mode[@]}"
  wait_socket "$sock" "$uri"
  run_jobs "$name" "$uri"
  stop_server
  # Every snapshot must still be valid: an overflow would void the figures.
  if [ "$n" -gt 0 ]; then
    local attrs; attrs=$("${cs[@]}" lvs --noheadings -o lv_name,lv_attr vg 2>&1 || true)
    if echo "$attrs" | grep -Eq '^ *s[0-9]+ +[sS]..-I'; then die "$name: a snapshot became invalid: $attrs"; fi
  fi
  rm -rf "$root"
}

make_base
for ((round = 1; round <= rounds; round++)); do
  [ "$rounds" = 1 ] || log "round $round of $rounds"
  for s in $servers; do
    case "$s" in
      file) bench_file ;;
      cow-filter) bench_cow_filter ;;
      qcow2) bench_qcow2 ;;
      cowsnap-[0-9]*) bench_cowsnap "${s#cowsnap-}" ;;
      cowsnap-wb-[0-9]*) bench_cowsnap "${s#cowsnap-wb-}" wb ;;
      *) die "unknown server $s" ;;
    esac
  done
done
log "results: $out"
