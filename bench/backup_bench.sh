#!/usr/bin/env bash
# backup_bench.sh: `cowsnap backup` against nbdcopy of the same snapshot,
# and incremental backups against full ones, in one server run.
#
#   bench/backup_bench.sh --build DIR --dir WORKDIR --out FILE.json
#                         [--quick] [--rounds N] [--keep]
#
# Set-up (once): a cowsnap root in WORKDIR (pvcreate, vgcreate -s 4M vg0,
# lvcreate -n data, 256M; 64M with --quick) served by nbdkit with
# nbdkit-cowsnap-plugin.so; random data written through NBD into 75 % of
# the LV's 1 MiB blocks (chosen with a fixed seed); the other blocks stay
# holes, so that both copiers' zero skipping (block status) matters.
#
# Each round (3 by default, 1 with --quick) measures, in this order:
#   1. Full backup vs nbdcopy. `cowsnap backup vg0/data --keep-snapshot`
#      (wall time of the whole command: snapshot, copy, fsync, read-back
#      check, manifest) and `nbdcopy --connections=4 --flush` of a kept
#      backup snapshot into a file (wall time). Odd rounds run the backup
#      first and nbdcopy copies the snapshot that backup kept; even rounds
#      run nbdcopy first, on the previous round's kept snapshot (the origin
#      has not changed since: its content is the same, and each round
#      checks that nbdcopy's output equals the backup's image.raw).
#      Throughput = LV size / wall seconds; the figure is the ratio
#      backup / nbdcopy throughput (= nbdcopy seconds / backup seconds).
#      copy_ratio does the same with the backup's own "seconds" (its copy
#      and fsync only).
#   2. Incremental vs full, for 1 %, 10 % and 50 % of the LV's 4 KiB
#      chunks: in a fresh backup directory, a full `backup --incremental`
#      (it keeps its snapshot as change tracker), then that share of
#      chunks rewritten with random data through NBD (distinct chunks
#      among the data blocks, chosen with a seed fixed per level and
#      round, so every level's full backup copies the same amount), then
#      a timed `backup --incremental`. Figures: size ratio = delta.raw's
#      allocated bytes (du -B1) / image.raw's, time ratio = wall seconds
#      of the incremental / of the full. Snapshots of this part get
#      -l 60%ORIGIN, room for 50 % of the chunks.
#
# Output: FILE.json, one object: config, per-round raw numbers, and per
# figure {median, min, max} over the rounds. Every figure that matters is a
# ratio between measurements of the same run.
set -euo pipefail

build=""
work=""
out=""
quick=0
rounds=""
keep=0

usage() { sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --dir) work=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "backup_bench.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

log() { echo "backup_bench: [${SECONDS}s] $*" >&2; }
die() { log "error: $*"; exit 1; }

[ -n "$build" ] || die "--build DIR is required"
[ -n "$work" ] || die "--dir WORKDIR is required"
[ -n "$out" ] || die "--out FILE.json is required"
if [ "$quick" = 1 ]; then
  lv_mib=64; pv_size=1G
  : "${rounds:=1}"
else
  lv_mib=256; pv_size=2G
  : "${rounds:=3}"
fi
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds takes a positive number"
lv_bytes=$((lv_mib << 20))
chunk_bytes=4096
levels=(1 10 50)
data_share=0.75
fill_seed=20240601
tracker_extents=60%ORIGIN

cowsnap_cli="$build/cli/cowsnap"
plugin="$build/nbdkit-plugin/nbdkit-cowsnap-plugin.so"
{ [ -x "$cowsnap_cli" ] && [ -f "$plugin" ]; } || die "cowsnap CLI or plugin not found (--build DIR: $cowsnap_cli, $plugin)"
# A missing peer fails the benchmark (with or without CI=true): without
# nbdkit there is nothing to measure, and nbdcopy is the reference.
for tool in nbdkit nbdcopy cmp du; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
# The system python: a pyenv shim in PATH can cost a second per call.
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=$(command -v python3) || die "python3 is required"
"$PY" -c 'import nbd' 2>/dev/null || die "$PY has no nbd module (python3-libnbd)"

# ---- work area -----------------------------------------------------------
mkdir -p "$work"
work=$(cd "$work" && pwd)
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
root="$work/root"
sock="$work/nbd.sock"
records="$work/records.jsonl"
server_pid=""

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$keep" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

rm -rf "$root" "$work/bk" "$work/records.jsonl"
mkdir -p "$root" "$work/bk"
: > "$records"
cs=("$cowsnap_cli" --root "$root")
uri_of() { echo "nbd+unix:///vg0/$1?socket=$sock"; }

# ---- helpers (python, untimed) --------------------------------------------
cat > "$work/fill.py" <<'EOF'
# fill.py URI SIZE SHARE SEED LAYOUT: random data into SHARE of the 1 MiB
# blocks (the others stay holes); LAYOUT gets the written blocks.
import json, nbd, os, random, sys
uri, size, share, seed, layout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
block = 1 << 20
rng = random.Random(seed)
blocks = [b for b in range(size // block) if rng.random() < share]
h = nbd.NBD()
h.connect_uri(uri)
for b in blocks:
    h.pwrite(os.urandom(block), b * block)
h.flush()
h.shutdown()
with open(layout, "w") as f:
    json.dump({"block_bytes": block, "data_blocks": blocks}, f)
print(len(blocks) * block)
EOF
cat > "$work/change.py" <<'EOF'
# change.py URI LAYOUT CHUNK COUNT SEED: random data into COUNT distinct
# chunks picked (seeded) among the data blocks' chunks, up to 64 writes in
# flight, then a flush.
import json, nbd, os, random, sys
uri, layout, chunk, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
with open(layout) as f:
    lay = json.load(f)
per_block = lay["block_bytes"] // chunk
candidates = [b * per_block + i for b in lay["data_blocks"] for i in range(per_block)]
if count > len(candidates):
    sys.exit(f"change.py: {count} chunks asked, {len(candidates)} data chunks")
picked = sorted(random.Random(seed).sample(candidates, count))
h = nbd.NBD()
h.connect_uri(uri)
for c in picked:
    while h.aio_in_flight() >= 64:
        h.poll(-1)
    h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(os.urandom(chunk))), c * chunk)
while h.aio_in_flight() > 0:
    h.poll(-1)
h.flush()
h.shutdown()
EOF
# jget FILE KEY: one field of a JSON object.
jget() { "$PY" -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print("" if v is None else v)' "$1" "$2"; }
allocated() { du -B1 "$1" | cut -f1; }
# EPOCHREALTIME has the locale's decimal point.
now() { local t=$EPOCHREALTIME; echo "${t/,/.}"; }
elapsed() { "$PY" -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.6f}")' "$1" "$2"; }
drop() { "${cs[@]}" lvremove -f "vg0/$1" >/dev/null || die "lvremove vg0/$1 failed"; }

# backup_timed DIR JSON ARGS...: one `cowsnap backup`, its summary in JSON
# (its notices in WORKDIR/backup.log); prints the wall seconds.
backup_timed() {
  local dir=$1 json=$2 t0 t1; shift 2
  t0=$(now)
  if ! "${cs[@]}" backup vg0/data --to "$dir" --socket "$sock" --json -q "$@" > "$json" 2>>"$work/backup.log"; then
    tail -n 5 "$work/backup.log" >&2
    die "cowsnap backup $* failed (see also $work/server.log)"
  fi
  t1=$(now)
  elapsed "$t0" "$t1"
}

# nbdcopy_timed SNAP FILE: nbdcopy of vg0/SNAP into FILE; prints the wall seconds.
nbdcopy_timed() {
  local t0 t1
  t0=$(now)
  nbdcopy --connections=4 --flush "$(uri_of "$1")" "$2" || die "nbdcopy of vg0/$1 failed"
  t1=$(now)
  elapsed "$t0" "$t1"
}

# ---- the server ------------------------------------------------------------
log "set-up: ${lv_mib}M LV in $root"
"${cs[@]}" pvcreate --size "$pv_size" "$root/pv0.img" >/dev/null
"${cs[@]}" vgcreate -s 4M vg0 "$root/pv0.img" >/dev/null
"${cs[@]}" lvcreate -L "${lv_mib}M" -n data vg0 >/dev/null
TMPDIR="$work" nbdkit -f --exit-with-parent -U "$sock" "$plugin" root="$root" >>"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do
  [ -S "$sock" ] && [ -S "$root/control.sock" ] && break
  kill -0 "$server_pid" 2>/dev/null || die "server exited before listening (see $work/server.log)"
  sleep 0.05
done
{ [ -S "$sock" ] && [ -S "$root/control.sock" ]; } || die "server did not listen on $sock within 10 s"
data_bytes=$("$PY" "$work/fill.py" "$(uri_of data)" "$lv_bytes" "$data_share" "$fill_seed" "$work/layout.json") ||
  die "filling the LV failed"
log "wrote $((data_bytes >> 20)) MiB of random data into the ${lv_mib}M LV"
total_chunks=$((lv_bytes / chunk_bytes))

# ---- 1. full backup vs nbdcopy ------------------------------------------------
prev_snap=""
for ((round = 1; round <= rounds; round++)); do
  if ((round % 2 == 1)); then first=backup; else first=nbdcopy; fi
  [ -n "$prev_snap" ] || first=backup
  log "round $round/$rounds: backup vs nbdcopy ($first first)"
  dir="$work/bk/full-$round" raw="$work/bk/nbdcopy-$round.raw"
  rm -rf "$dir" "$raw"
  if [ "$first" = nbdcopy ]; then
    nbdcopy_snap=$prev_snap
    nbdcopy_s=$(nbdcopy_timed "$nbdcopy_snap" "$raw")
    backup_s=$(backup_timed "$dir" "$work/full.json" --keep-snapshot)
    snap=$(jget "$work/full.json" snapshot)
  else
    backup_s=$(backup_timed "$dir" "$work/full.json" --keep-snapshot)
    snap=$(jget "$work/full.json" snapshot)
    nbdcopy_snap=$snap
    nbdcopy_s=$(nbdcopy_timed "$nbdcopy_snap" "$raw")
  fi
  name=$(jget "$work/full.json" backup)
  [ "$(jget "$work/full.json" chunk_bytes)" = "$chunk_bytes" ] || die "the backup's chunks are not $chunk_bytes bytes"
  cmp "$raw" "$dir/$name/image.raw" || die "round $round: nbdcopy's copy of $nbdcopy_snap differs from backup $name"
  "$PY" - "$work/full.json" "$round" "$first" "$backup_s" "$nbdcopy_s" "$lv_bytes" \
    "$(allocated "$dir/$name/image.raw")" "$(allocated "$raw")" "$snap" "$nbdcopy_snap" >> "$records" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
rnd, first, b_s, n_s, lv = int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
print(json.dumps({"part": "full_vs_nbdcopy", "round": rnd, "first": first,
                  "backup_s": b_s, "backup_copy_s": s["seconds"], "nbdcopy_s": n_s,
                  "backup_mib_s": lv / b_s / 2**20, "nbdcopy_mib_s": lv / n_s / 2**20,
                  "ratio": n_s / b_s, "copy_ratio": n_s / s["seconds"],
                  "copied_bytes": s["copied_bytes"], "zero_bytes": s["zero_bytes"],
                  "image_allocated_bytes": int(sys.argv[7]), "nbdcopy_allocated_bytes": int(sys.argv[8]),
                  "snapshot": sys.argv[9], "nbdcopy_snapshot": sys.argv[10]}))
EOF
  tail -n 1 "$records" >&2
  rm -rf "$dir" "$raw"
  # Keep this round's snapshot when the next round copies it first.
  if [ -n "$prev_snap" ] && [ "$prev_snap" != "$snap" ]; then drop "$prev_snap"; fi
  if [ "$first" = backup ]; then prev_snap=$snap; else drop "$snap"; prev_snap=""; fi
done
[ -z "$prev_snap" ] || drop "$prev_snap"

# ---- 2. incremental vs full ---------------------------------------------------
for ((round = 1; round <= rounds; round++)); do
  for pct in "${levels[@]}"; do
    count=$((total_chunks * pct / 100))
    dir="$work/bk/incr-$pct-$round"
    rm -rf "$dir"
    full_s=$(backup_timed "$dir" "$work/base.json" --incremental --extents "$tracker_extents")
    [ "$(jget "$work/base.json" kind)" = full ] || die "the first backup into $dir is not a full one"
    "$PY" "$work/change.py" "$(uri_of data)" "$work/layout.json" "$chunk_bytes" "$count" $((pct * 1000 + round)) ||
      die "changing $count chunks failed"
    incr_s=$(backup_timed "$dir" "$work/incr.json" --incremental --extents "$tracker_extents")
    [ "$(jget "$work/incr.json" kind)" = incremental ] ||
      die "the backup after changing $pct % is not an incremental: $(jget "$work/incr.json" notices)"
    base_name=$(jget "$work/base.json" backup) incr_name=$(jget "$work/incr.json" backup)
    "$PY" - "$work/base.json" "$work/incr.json" "$round" "$pct" "$count" "$full_s" "$incr_s" \
      "$(allocated "$dir/$base_name/image.raw")" "$(allocated "$dir/$incr_name/delta.raw")" >> "$records" <<'EOF'
import json, sys
full, incr = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
rnd, pct, count, f_s, i_s = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
f_du, i_du = int(sys.argv[8]), int(sys.argv[9])
print(json.dumps({"part": "incremental_vs_full", "round": rnd, "percent": pct, "changed_chunks_written": count,
                  "changed_chunks": incr["changed_chunks"],
                  "full_s": f_s, "full_copy_s": full["seconds"], "full_copied_bytes": full["copied_bytes"],
                  "full_allocated_bytes": f_du,
                  "incremental_s": i_s, "incremental_copy_s": incr["seconds"],
                  "incremental_copied_bytes": incr["copied_bytes"], "delta_allocated_bytes": i_du,
                  "size_ratio": i_du / f_du, "copied_ratio": incr["copied_bytes"] / full["copied_bytes"],
                  "time_ratio": i_s / f_s}))
EOF
    tail -n 1 "$records" >&2
    # The incremental dropped the full's tracker and kept its own.
    drop "$(jget "$work/incr.json" tracker)"
    rm -rf "$dir"
  done
done

# ---- output -------------------------------------------------------------------
"$PY" - "$records" "$out" "$quick" "$rounds" "$lv_bytes" "$data_bytes" "$chunk_bytes" "$tracker_extents" \
  "$(nbdcopy --version | head -n 1)" <<'EOF'
import json, statistics, sys
records, out = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(records) if l.strip()]

def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}

full = [d for d in lines if d["part"] == "full_vs_nbdcopy"]
doc = {
    "bench": "backup_bench",
    "config": {"quick": sys.argv[3] == "1", "rounds": int(sys.argv[4]), "lv_bytes": int(sys.argv[5]),
               "data_bytes": int(sys.argv[6]), "chunk_bytes": int(sys.argv[7]), "connections": 4,
               "incremental_snapshot_extents": sys.argv[8], "nbdcopy": sys.argv[9],
               "nbdcopy_command": "nbdcopy --connections=4 --flush nbd+unix:///vg0/SNAP?socket=SOCK OUT.raw",
               "backup_command": "cowsnap backup vg0/data --to DIR --socket SOCK --keep-snapshot --json -q"},
    "full_vs_nbdcopy": {
        "rounds": full,
        "summary": {k: stats([d[k] for d in full])
                    for k in ("ratio", "copy_ratio", "backup_s", "nbdcopy_s", "backup_mib_s", "nbdcopy_mib_s")},
    },
    "incremental_vs_full": [],
}
for pct in sorted({d["percent"] for d in lines if d["part"] == "incremental_vs_full"}):
    rs = [d for d in lines if d["part"] == "incremental_vs_full" and d["percent"] == pct]
    doc["incremental_vs_full"].append({
        "percent": pct, "changed_chunks": rs[0]["changed_chunks_written"], "rounds": rs,
        "summary": {k: stats([d[k] for d in rs])
                    for k in ("size_ratio", "copied_ratio", "time_ratio", "full_s", "incremental_s",
                              "incremental_copied_bytes", "delta_allocated_bytes", "full_allocated_bytes")},
    })
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
s = doc["full_vs_nbdcopy"]["summary"]["ratio"]
print(f"backup/nbdcopy throughput: {s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})", file=sys.stderr)
for lv in doc["incremental_vs_full"]:
    a, b = lv["summary"]["size_ratio"], lv["summary"]["time_ratio"]
    print(f"{lv['percent']:>3} %: size {a['median']:.4f} ({a['min']:.4f}-{a['max']:.4f}), "
          f"time {b['median']:.3f} ({b['min']:.3f}-{b['max']:.3f})", file=sys.stderr)
EOF
log "results: $out"
