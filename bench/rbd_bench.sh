#!/usr/bin/env bash
# rbd_bench.sh: the copy-on-write engine over RBD images against the same
# engine over files, and what one flush costs on each.
#
#   bench/rbd_bench.sh --build DIR --dir WORKDIR --out FILE.json [--quick] [--rounds N]
#
# Starts a scratch single-node Ceph cluster in WORKDIR/ceph
# (tests/ceph/ceph_cluster.sh: one monitor, one memstore OSD, all on this
# machine), then runs each round (3 by default, 1 with --quick) of:
#   cow_bench --dir WORKDIR/files ...   (every device a file)
#   cow_bench --rbd rbd ...             (every device a new RBD image)
# with one matrix: seq1m, rand4k-first and rand4k-copied; 0 and 1
# snapshot; 64 KiB chunks; 8 writers; 256 MiB origin (16 MiB with --quick).
# Each cow_bench also times 64 flushes after a 4 KiB write on its origin
# device (its flush_latency). Figures: per case, the ratio of RBD to file
# throughput within each round, as median and range over the rounds; the
# flush latencies' medians per backing.
#
# The cluster is local and in memory (memstore): these ratios are the cost
# of librbd and one network hop on loopback, a floor for a real cluster,
# whose OSDs add their disks and the network's latency.
set -euo pipefail

build="" work="" out="" quick=0 rounds=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --dir) work=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "rbd_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$build" ] && [ -n "$work" ] && [ -n "$out" ] || { echo "rbd_bench.sh: --build, --dir and --out are needed" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
cluster=$here/../tests/ceph/ceph_cluster.sh
cow_bench=$build/bench/cow_bench
[ -x "$cow_bench" ] || { echo "rbd_bench.sh: $cow_bench is not built" >&2; exit 1; }
[ -z "$rounds" ] && { [ "$quick" = 1 ] && rounds=1 || rounds=3; }

matrix=(--snapshots 0,1 --chunks 64K --concurrency 8 --workloads seq1m,rand4k-first,rand4k-copied --quiet)
if [ "$quick" = 1 ]; then
  matrix+=(--size 16M --copied-span 8M --seconds 0.2)
else
  matrix+=(--size 256M --copied-span 32M --seconds 1)
fi

mkdir -p "$work"
rm -rf "$work/ceph"
trap 'bash "$cluster" stop "$work/ceph" >/dev/null 2>&1 || true' EXIT
CEPH_CONF=$(bash "$cluster" start "$work/ceph")
export CEPH_CONF

docs=()
for ((r = 1; r <= rounds; r++)); do
  echo "rbd_bench.sh: round $r/$rounds: files" >&2
  "$cow_bench" "${matrix[@]}" --dir "$work/files" --json "$work/file-$r.json" >/dev/null
  rm -rf "$work/files"
  echo "rbd_bench.sh: round $r/$rounds: RBD" >&2
  "$cow_bench" "${matrix[@]}" --rbd rbd --json "$work/rbd-$r.json" >/dev/null
  docs+=("$work/file-$r.json" "$work/rbd-$r.json")
done

/usr/bin/python3 - "$out" "${docs[@]}" <<'PY'
import json, statistics, sys
out, paths = sys.argv[1], sys.argv[2:]
rounds = []
for f, r in zip(paths[0::2], paths[1::2]):
    fd, rd = json.load(open(f)), json.load(open(r))
    key = lambda c: f'{c["workload"]} snaps={c["snapshots"]}'
    fc = {key(c): c for c in fd["cases"]}
    rounds.append({
        "cases": {key(c): {"file_mib_s": fc[key(c)]["throughput_mib_s"], "rbd_mib_s": c["throughput_mib_s"],
                           "rbd_wa": c["write_amplification"], "file_wa": fc[key(c)]["write_amplification"]}
                  for c in rd["cases"]},
        "flush_ms": {"file": fd["flush_latency"]["median_ms"], "rbd": rd["flush_latency"]["median_ms"]},
    })
def stat(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
figures = {}
for k in rounds[0]["cases"]:
    figures[k] = {
        "rbd_over_file": stat([r["cases"][k]["rbd_mib_s"] / r["cases"][k]["file_mib_s"] for r in rounds]),
        "rbd_mib_s": stat([r["cases"][k]["rbd_mib_s"] for r in rounds]),
        "file_mib_s": stat([r["cases"][k]["file_mib_s"] for r in rounds]),
        "rbd_wa": stat([r["cases"][k]["rbd_wa"] for r in rounds]),
    }
doc = {"bench": "rbd_bench", "rounds": rounds, "figures": figures,
       "flush_ms": {b: stat([r["flush_ms"][b] for r in rounds]) for b in ("file", "rbd")}}
json.dump(doc, open(out, "w"), indent=1)
for k, v in figures.items():
    m = v["rbd_over_file"]
    print(f"{k:24s} rbd/file {m['median']:.3f} ({m['min']:.3f}-{m['max']:.3f})", file=sys.stderr)
for b, v in doc["flush_ms"].items():
    print(f"flush {b}: median {v['median']:.3f} ms ({v['min']:.3f}-{v['max']:.3f})", file=sys.stderr)
PY
