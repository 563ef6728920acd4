#!/usr/bin/env python3
"""Turns the benchmark outputs into results.md, results.json and gnuplot data.

    report.py --cow cow_bench.json [--cow-wb cow_bench_writeback.json]
              [--cow-memory cow_bench_memory.json]
              [--etb exception_table_bench.json] --nbd nbd_bench.jsonl
              [--backup backup_bench.json]
              --out DIR [--command "bench/run ..."] [--check]

--check (bench/run --quick) fails, listing every problem, unless each number
the harness promises came out: present, finite, positive. It says nothing
about speed.

Every ratio is between two measurements of the same run: cow_bench cases
against the 0-snapshot case of the same workload and concurrency; NBD
servers against the nbdkit file plugin (the baseline) for the same fio job,
as the ratio of the medians over the run's rounds; `cowsnap backup` against
nbdcopy of the same snapshot, and incremental backups against the full
backup of the same level, as medians of the per-round ratios with their
range (min–max).
"""
import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys

KIB = 1024
MIB = 1024 * 1024
SERVERS = ["file", "cowsnap-0", "cowsnap-1", "cowsnap-4", "cowsnap-wb-0", "cowsnap-wb-1", "cowsnap-wb-4",
           "cow-filter", "qcow2"]
# The write-back mode's default bound on pending copy-outs (writeback-memory).
WRITEBACK_BOUND_MIB = 64
JOBS = ["seqwrite-1m-first", "randwrite-4k-first", "seqwrite-1m", "randwrite-4k", "randread-4k"]
WRITE_JOBS = ["seqwrite-1m-first", "randwrite-4k-first", "fill", "seqwrite-1m", "randwrite-4k"]
# backup_bench: the shares of chunks changed before an incremental, and the
# issue's target for backup throughput against nbdcopy of the same snapshot.
BACKUP_LEVELS = [1, 10, 50]
BACKUP_TARGET = 0.90


# ---------------------------------------------------------------- helpers
def fmt(v, digits=2):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}f}"


def human_bytes(n):
    for unit, size in (("G", 1 << 30), ("M", MIB), ("K", KIB)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def table(headers, rows, align=None):
    align = align or ["l"] + ["r"] * (len(headers) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def machine_info(bench_dir):
    info = {"nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory"] = f"{int(line.split()[1]) / (1024 * 1024):.1f} GiB"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        df = subprocess.run(["df", "-hT", bench_dir], capture_output=True, text=True, check=True).stdout.splitlines()
        dev, fstype, size = df[1].split()[:3]
        info["disk"] = f"{dev} ({fstype}, {size}) holding {bench_dir}"
        rot = f"/sys/block/{os.path.basename(dev)}/queue/rotational"
        if os.path.exists(rot):
            with open(rot) as f:
                info["disk"] += ", rotational" if f.read().strip() == "1" else ", non-rotational"
    except (OSError, subprocess.CalledProcessError, IndexError, ValueError):
        pass
    return info


# ---------------------------------------------------------------- inputs
def load_cow(path):
    with open(path) as f:
        doc = json.load(f)
    cases = {}
    for c in doc["cases"]:
        cases[(c["snapshots"], c["chunk_bytes"], c["workload"], c["concurrency"])] = c
    return doc, cases


def load_nbd(path):
    """(fio job lines, skipped-server lines, {server: [peak RSS KiB per round]})."""
    lines, skipped, rss = [], [], {}
    with open(path) as f:
        for raw in f:
            raw = raw.strip()
            if not raw:
                continue
            d = json.loads(raw)
            if "peak_rss_kib" in d:
                rss.setdefault(d["server"], []).append(d["peak_rss_kib"])
            else:
                (skipped if "skipped" in d else lines).append(d)
    return lines, skipped, rss


def cow_ratio(cases, key):
    """Throughput / the 0-snapshot throughput of the same workload and T:
    the adjacent reference run when the case has one (rand4k-copied), else
    the 0-snapshot case of the matrix."""
    n, chunk, w, t = key
    c = cases.get(key)
    if c is None:
        return None
    if c.get("ref0_throughput_mib_s"):
        return ratio(c["throughput_mib_s"], c["ref0_throughput_mib_s"])
    base = cases.get((0, 0, w, t))
    if base is None:
        return None
    return ratio(c["throughput_mib_s"], base["throughput_mib_s"])


# ---------------------------------------------------------------- checks
def check_all(cow_cases, nbd_lines, nbd_skipped, etb, expected_servers):
    problems = []

    def positive(what, v):
        if v is None or not isinstance(v, (int, float)) or math.isnan(v) or math.isinf(v) or v <= 0:
            problems.append(f"{what}: {v!r} is not a positive number")

    if not cow_cases:
        problems.append("cow_bench: no cases")
    for key, c in sorted(cow_cases.items(), key=lambda kv: str(kv[0])):
        name = "cow_bench {} snaps={} chunk={} T={}".format(c["workload"], key[0], human_bytes(key[1]), key[3])
        for field in ("ops", "client_bytes", "elapsed_s", "throughput_mib_s", "iops", "write_amplification",
                      "backing_bytes", "origin_bytes"):
            positive(f"{name} {field}", c.get(field))
        for p in ("p50", "p99", "p99_9"):
            positive(f"{name} lat_us.{p}", c.get("lat_us", {}).get(p))
        if c.get("write_amplification", 0) < 0.999:
            problems.append(f"{name}: write amplification {c.get('write_amplification')} < 1")
        if key[0] > 0 and c["workload"] != "rand4k-copied":
            for field in ("cow_data_bytes", "cow_metadata_bytes", "exceptions"):
                positive(f"{name} {field}", c.get(field))
            # Copies made durable: by flushes (sync mode) or durable writes (write-back).
            positive(f"{name} cow_flushes + cow_durable_writes",
                     c.get("cow_flushes", 0) + c.get("cow_durable_writes", 0))
            if c.get("write_amplification", 0) <= 1.5:
                problems.append(f"{name}: first writes with a snapshot must copy (WA {c.get('write_amplification')})")
        if key[0] > 0:
            positive(f"{name} table_bytes_per_exception", c.get("table_bytes_per_exception"))

    seen = {(d["server"], d["job"]) for d in nbd_lines}
    skipped = {d["server"] for d in nbd_skipped}
    for s in skipped:
        problems.append(f"nbd_bench: server {s} was skipped ({[d['skipped'] for d in nbd_skipped if d['server'] == s][0]})")
    for s in expected_servers:
        if s in skipped:
            continue
        for j in JOBS:
            if (s, j) not in seen:
                problems.append(f"nbd_bench: no result for {s} {j}")
    for d in nbd_lines:
        name = f"nbd_bench {d['server']} {d['job']} round {d.get('round', 1)}"
        for field in ("bw_mib_s", "iops", "io_bytes"):
            positive(f"{name} {field}", d.get(field))
        positive(f"{name} lat_us.p99", d.get("lat_us", {}).get("p99"))
        if d["job"] in WRITE_JOBS:
            positive(f"{name} wa_wchar", d.get("wa_wchar"))
            if d.get("wa_wchar") is not None and d["wa_wchar"] < 0.99:
                problems.append(f"{name}: wa_wchar {d['wa_wchar']} < 1 (server did not write what fio wrote?)")
    if etb is not None and not etb:
        problems.append("exception_table_bench: empty output")
    return problems


def check_backup(doc):
    """The numbers backup_bench promises: every round of both parts, every
    change level, each present, finite, positive."""
    problems = []

    def positive(what, v):
        if v is None or not isinstance(v, (int, float)) or math.isnan(v) or math.isinf(v) or v <= 0:
            problems.append(f"{what}: {v!r} is not a positive number")

    if doc is None:
        return ["backup_bench: no output"]
    rounds = doc.get("config", {}).get("rounds")
    positive("backup_bench config.rounds", rounds)
    full = doc.get("full_vs_nbdcopy", {})
    if len(full.get("rounds", [])) != rounds:
        problems.append(f"backup_bench full_vs_nbdcopy: {len(full.get('rounds', []))} round(s), not {rounds}")
    for d in full.get("rounds", []):
        name = f"backup_bench full_vs_nbdcopy round {d.get('round')}"
        for field in ("backup_s", "backup_copy_s", "nbdcopy_s", "ratio", "copy_ratio", "copied_bytes",
                      "zero_bytes", "image_allocated_bytes", "nbdcopy_allocated_bytes"):
            positive(f"{name} {field}", d.get(field))
    for field in ("ratio", "copy_ratio"):
        for k in ("median", "min", "max"):
            positive(f"backup_bench full_vs_nbdcopy {field}.{k}", full.get("summary", {}).get(field, {}).get(k))
    levels = {lv.get("percent"): lv for lv in doc.get("incremental_vs_full", [])}
    for pct in BACKUP_LEVELS:
        lv = levels.get(pct)
        if lv is None:
            problems.append(f"backup_bench incremental_vs_full: no result for {pct} %")
            continue
        if len(lv.get("rounds", [])) != rounds:
            problems.append(f"backup_bench incremental_vs_full {pct} %: {len(lv.get('rounds', []))} round(s), "
                            f"not {rounds}")
        for d in lv.get("rounds", []):
            name = f"backup_bench incremental_vs_full {pct} % round {d.get('round')}"
            for field in ("full_s", "incremental_s", "full_copied_bytes", "incremental_copied_bytes",
                          "full_allocated_bytes", "delta_allocated_bytes", "size_ratio", "time_ratio"):
                positive(f"{name} {field}", d.get(field))
            if d.get("changed_chunks") != d.get("changed_chunks_written"):
                problems.append(f"{name}: {d.get('changed_chunks')} changed chunks found, "
                                f"{d.get('changed_chunks_written')} written")
        for field in ("size_ratio", "time_ratio"):
            for k in ("median", "min", "max"):
                positive(f"backup_bench incremental_vs_full {pct} % {field}.{k}",
                         lv.get("summary", {}).get(field, {}).get(k))
    return problems


# ---------------------------------------------------------------- report
def nbd_medians(lines):
    """{(server, job): {"bw": median MiB/s, ...}} over rounds."""
    groups = {}
    for d in lines:
        groups.setdefault((d["server"], d["job"]), []).append(d)
    out = {}
    for key, ds in groups.items():
        out[key] = {
            "rounds": len(ds),
            "bw": median([d["bw_mib_s"] for d in ds]),
            "bw_min": min(d["bw_mib_s"] for d in ds),
            "bw_max": max(d["bw_mib_s"] for d in ds),
            "iops": median([d["iops"] for d in ds]),
            "p50": median([d["lat_us"]["p50"] for d in ds]),
            "p99": median([d["lat_us"]["p99"] for d in ds]),
            "p99_9": median([d["lat_us"]["p99_9"] for d in ds]),
            "wa_wchar": median([d.get("wa_wchar") for d in ds]),
            "wa_write_bytes": median([d.get("wa_write_bytes") for d in ds]),
            "cpu_s": median([d.get("server_cpu_s") for d in ds]),
            "ratios": [ratio(d["bw_mib_s"], b["bw_mib_s"]) for d in ds for b in lines
                       if b["server"] == "file" and b["job"] == d["job"] and b.get("round") == d.get("round")],
        }
    return out


def targets(cow_cases, wb_cases, nbd, rss, backup=None):
    """Rows: (target, measured, limit, verdict)."""
    rows = []

    def nbd_ratio(server, job):
        a, b = nbd.get((server, job)), nbd.get(("file", job))
        return ratio(a["bw"] if a else None, b["bw"] if b else None)

    def verdict(v, limit, at_least):
        if v is None:
            return "not measured"
        ok = v >= limit if at_least else v <= limit
        if ok:
            return "met"
        miss = (limit - v) / limit * 100 if at_least else (v - limit) / limit * 100
        return f"MISSED by {miss:.0f}%"

    def at_least(label, v, limit):
        rows.append((label, fmt(v) + "×", f"≥ {limit:.2f}×", verdict(v, limit, True)))

    def at_most(label, v, limit):
        rows.append((label, fmt(v, 3) + "×", f"≤ {limit:.3g}×", verdict(v, limit, False)))

    modes = (("sync", "cowsnap-", cow_cases), ("write-back", "cowsnap-wb-", wb_cases))
    for mode, prefix, _ in modes:
        for job, what in (("randwrite-4k", "4K random QD32"), ("seqwrite-1m", "1M sequential QD8")):
            at_least(f"{mode}: 0 snapshots, {what} (NBD, vs file plugin)", nbd_ratio(prefix + "0", job), 0.95)
            at_least(f"{mode}: 1 snapshot, chunks already copied, {what} (NBD)", nbd_ratio(prefix + "1", job), 0.95)
    first = {"sync": (0.20, 0.35), "write-back": (0.45, 0.65)}
    for mode, prefix, cases in modes:
        rand, seq = first[mode]
        at_least(f"{mode}: 1 snapshot, first writes, 4K random QD32 (NBD)",
                 nbd_ratio(prefix + "1", "randwrite-4k-first"), rand)
        at_least(f"{mode}: 1 snapshot, first writes, 1M sequential QD8 (NBD)",
                 nbd_ratio(prefix + "1", "seqwrite-1m-first"), seq)
        for t in (8, 32):
            v = cow_ratio(cases, (1, 4 * KIB, "rand4k-first", t)) if cases else None
            at_least(f"{mode}: 1 snapshot, first writes, 4K random T={t} (cow_bench, vs 0 snapshots)", v, rand)
    for mode, prefix, cases in modes:
        for t in (8, 32):
            c = cases.get((1, 4 * KIB, "rand4k-first", t)) if cases else None
            at_most(f"{mode}: WA, 1 snapshot, 4K chunks, 4K random first writes, T={t} (cow_bench)",
                    c["write_amplification"] if c else None, 2.05)
        d = nbd.get((prefix + "1", "randwrite-4k-first"))
        at_most(f"{mode}: WA, 1 snapshot, 4K random first writes, QD32 (NBD, wchar)", d["wa_wchar"] if d else None,
                2.05)
        for n in (2, 4, 8):
            # Sync mode commits small batches (one metadata sector per batch
            # per store); write-back's large batches come near the floor.
            limit = n + 1.1 if mode == "sync" else n + 1 + n / 128
            for t in (8, 32):
                c = cases.get((n, 4 * KIB, "rand4k-first", t)) if cases else None
                if c is not None:
                    at_most(f"{mode}: WA, {n} snapshots, 4K random first writes, T={t} (cow_bench)",
                            c["write_amplification"], limit)
        d = nbd.get((prefix + "4", "randwrite-4k-first"))
        if d:
            at_most(f"{mode}: WA, 4 snapshots, 4K random first writes, QD32 (NBD, wchar)", d["wa_wchar"],
                    5.1 if mode == "sync" else 5 + 4 / 128)
    sync_rss, wb_rss = median(rss.get("cowsnap-1", [])), median(rss.get("cowsnap-wb-1", []))
    extra = (wb_rss - sync_rss) / 1024 if sync_rss is not None and wb_rss is not None else None
    rows.append(("write-back: peak RSS above sync mode's, 1 snapshot (NBD server, all jobs)",
                 fmt(extra, 1) + " MiB", f"≤ {WRITEBACK_BOUND_MIB} MiB",
                 verdict(extra, WRITEBACK_BOUND_MIB, False)))
    r = backup_summary(backup, "ratio") if backup else None
    at_least("backup: full backup throughput vs nbdcopy of the same snapshot (backup_bench, median)",
             r["median"] if r else None, BACKUP_TARGET)
    return rows


def cow_full_table(doc, cases):
    rows = []
    for key in sorted(cases, key=lambda k: (k[0], k[1], ["seq1m", "rand4k-first", "rand4k-copied"].index(k[2]), k[3])):
        c = cases[key]
        cb = c["client_bytes"] or 1
        r = cow_ratio(cases, key)
        rows.append((key[0], human_bytes(key[1]) if key[1] else "–", c["workload"], key[3], c["ops"],
                     fmt(c["throughput_mib_s"], 1), fmt(r), fmt(c["write_amplification"], 3),
                     fmt(c["origin_bytes"] / cb, 3), fmt(c["cow_data_bytes"] / cb, 3),
                     fmt(c["cow_metadata_bytes"] / cb, 3), fmt(c["flushes"] / max(c["ops"], 1), 2),
                     fmt(c["lat_us"]["p50"], 1), fmt(c["lat_us"]["p99"], 1), fmt(c["lat_us"]["p99_9"], 1)))
    return table(["snaps", "chunk", "workload", "T", "ops", "MiB/s", "× 0 snaps", "WA", "origin/B", "COW data/B",
                  "COW meta/B", "flushes/op", "p50 µs", "p99 µs", "p99.9 µs"], rows,
                 ["r", "r", "l"] + ["r"] * 12)


def backup_summary(doc, field, level=None):
    """{median, min, max} of a backup_bench figure: of the full-vs-nbdcopy
    part, or of change level `level` (percent)."""
    if doc is None:
        return None
    if level is None:
        return doc.get("full_vs_nbdcopy", {}).get("summary", {}).get(field)
    for lv in doc.get("incremental_vs_full", []):
        if lv.get("percent") == level:
            return lv.get("summary", {}).get(field)
    return None


def spread(s, digits=2):
    """"min–max" of a summary."""
    return f"{fmt(s['min'], digits)}–{fmt(s['max'], digits)}" if s else "–"


def backup_section(doc):
    cfg = doc.get("config", {})
    lv_bytes = cfg.get("lv_bytes") or 1
    md = ["## Backup (backup_bench)\n"]
    md.append(f"One server run: a {human_bytes(lv_bytes)} LV holding {fmt(cfg.get('data_bytes', 0) / lv_bytes * 100, 0)} % "
              f"random data (the rest holes), {cfg.get('chunk_bytes', 0) // KIB} KiB chunks, {cfg.get('rounds')} "
              "round(s); medians of the per-round ratios, range (min–max) of the rounds.\n")
    md.append("### backup vs nbdcopy (same snapshot)\n")
    md.append("`cowsnap backup --keep-snapshot` (the whole command: snapshot, copy, fsync, read-back check, "
              "manifest) against `nbdcopy --connections=4 --flush` of the snapshot a backup kept, the order "
              "alternating between rounds. Throughput = LV size / wall time; ratio = backup / nbdcopy "
              f"(target ≥ {BACKUP_TARGET:.2f}×). The copy-phase row uses the backup's own `seconds` "
              "(copy and fsync only).\n")
    rows = []
    for label, field, digits, unit in (("throughput ratio, whole command", "ratio", 3, "×"),
                                       ("throughput ratio, copy phase", "copy_ratio", 3, "×"),
                                       ("cowsnap backup MiB/s", "backup_mib_s", 1, ""),
                                       ("nbdcopy MiB/s", "nbdcopy_mib_s", 1, ""),
                                       ("cowsnap backup s", "backup_s", 3, ""),
                                       ("nbdcopy s", "nbdcopy_s", 3, "")):
        st = backup_summary(doc, field)
        rows.append((label, (fmt(st["median"], digits) + unit) if st else "–", spread(st, digits),
                     st["n"] if st else "–"))
    md.append(table(["figure", "median", "range (min–max)", "rounds"], rows) + "\n")
    md.append("### incremental vs full\n")
    md.append("Per level, in a fresh directory: a full `backup --incremental` (its snapshot tracks changes), "
              "then that share of the LV's chunks rewritten with random data, then an incremental. Size ratio = "
              "allocated bytes of delta.raw / of the full's image.raw; time ratio = wall time of the "
              "incremental / of the full of the same level and round.\n")
    rows = []
    for pct in BACKUP_LEVELS:
        lv = next((x for x in doc.get("incremental_vs_full", []) if x.get("percent") == pct), None)
        size, tm = backup_summary(doc, "size_ratio", pct), backup_summary(doc, "time_ratio", pct)
        inc_s, full_s = backup_summary(doc, "incremental_s", pct), backup_summary(doc, "full_s", pct)
        delta = backup_summary(doc, "delta_allocated_bytes", pct)
        rows.append((f"{pct} %", lv["changed_chunks"] if lv else "–",
                     fmt(delta["median"] / MIB, 1) if delta else "–",
                     fmt(size["median"], 4) if size else "–", spread(size, 4),
                     fmt(tm["median"], 3) if tm else "–", spread(tm, 3),
                     fmt(inc_s["median"], 3) if inc_s else "–", fmt(full_s["median"], 3) if full_s else "–"))
    md.append(table(["changed", "chunks", "delta MiB", "size ratio", "range", "time ratio", "range",
                     "incremental s", "full s"], rows) + "\n")
    return md


def rbd_section(doc):
    md = ["## RBD-backed PVs (rbd_bench)\n"]
    md.append(f"The engine over RBD images of a scratch single-node Ceph cluster (one memstore OSD on this "
              f"machine) against the same engine over files, {len(doc['rounds'])} round(s); per case the ratio "
              "of RBD to file throughput within a round, median and range (min–max) over the rounds. "
              "64 KiB chunks, 8 writers. A memstore OSD on loopback is a floor for a real cluster's cost.\n")
    rows = []
    for k, v in doc["figures"].items():
        r = v["rbd_over_file"]
        rows.append((k, fmt(v["file_mib_s"]["median"], 1), fmt(v["rbd_mib_s"]["median"], 1),
                     fmt(r["median"], 3) + "×", f"{fmt(r['min'], 3)}–{fmt(r['max'], 3)}",
                     fmt(v["rbd_wa"]["median"], 3)))
    md.append(table(["case", "file MiB/s", "RBD MiB/s", "RBD / file", "range", "WA (RBD)"], rows) + "\n")
    frows = [(b, fmt(v["median"], 3), f"{fmt(v['min'], 3)}–{fmt(v['max'], 3)}") for b, v in doc["flush_ms"].items()]
    md.append("Flush latency: a 4 KiB write, then a timed flush, 64 times per round on the origin device; "
              "medians of the rounds' medians (ms). librbd with its cache off sends each write to the OSD "
              "before it returns, so its flush has nothing left to do: the round trip is paid per write.\n")
    md.append(table(["backing", "flush ms (median)", "range"], frows) + "\n")
    return md


def check_rbd(doc):
    problems = []
    for k, v in doc.get("figures", {}).items():
        if not v["rbd_mib_s"]["min"] > 0:
            problems.append(f"rbd_bench {k}: no RBD throughput")
    if not doc.get("figures"):
        problems.append("rbd_bench: no cases")
    return problems


def write_dat(path, header, rows):
    with open(path, "w") as f:
        f.write("\t".join(header) + "\n")  # gnuplot: set key autotitle columnhead
        for r in rows:
            f.write("\t".join("NaN" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in r)
                    + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cow", required=True)
    ap.add_argument("--cow-wb")
    ap.add_argument("--cow-memory")
    ap.add_argument("--etb")
    ap.add_argument("--nbd", required=True)
    ap.add_argument("--backup")
    ap.add_argument("--rbd")
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", default="bench/run")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--servers", default=" ".join(SERVERS))
    a = ap.parse_args()

    cow_doc, cow_cases = load_cow(a.cow)
    mem_doc, mem_cases = load_cow(a.cow_memory) if a.cow_memory else (None, {})
    wb_doc, wb_cases = load_cow(a.cow_wb) if a.cow_wb else (None, {})
    etb = None
    if a.etb:
        with open(a.etb) as f:
            text = f.read().strip()
        etb = json.loads(text) if text else {}
    nbd_lines, nbd_skipped, nbd_rss = load_nbd(a.nbd)
    backup = None
    if a.backup and os.path.exists(a.backup):
        with open(a.backup) as f:
            backup = json.load(f)
    rbd = None
    if a.rbd and os.path.exists(a.rbd):
        with open(a.rbd) as f:
            rbd = json.load(f)

    if a.check:
        problems = check_all(cow_cases, nbd_lines, nbd_skipped, etb, a.servers.split())
        if a.cow_wb:
            problems += [f"write-back {p}" for p in check_all(wb_cases, [], [], None, [])]
        if a.backup:
            problems += check_backup(backup)
        if a.rbd:
            problems += check_rbd(rbd or {})
        if problems:
            print("report.py --check: %d problem(s):" % len(problems), file=sys.stderr)
            for p in problems:
                print("  " + p, file=sys.stderr)
            sys.exit(1)

    measured = [d for d in nbd_lines if d.get("measured", True)]
    nbd = nbd_medians(measured)
    rounds = max([d.get("round", 1) for d in nbd_lines] or [0])
    os.makedirs(os.path.join(a.out, "data"), exist_ok=True)
    bench_dir = cow_doc["config"].get("dir") or "/var/tmp"
    machine = machine_info(os.path.dirname(bench_dir.rstrip("/")) or "/var/tmp")

    cfg = cow_doc["config"]
    md = []
    md.append("# cowsnap benchmark results\n")
    md.append(f"Generated by `{a.command}` on {datetime.date.today().isoformat()}. "
              "Every ratio compares two measurements **of this same run** (the machine is shared and "
              "noisy; absolute figures are not comparable between runs, ratios roughly are).\n")
    md.append(table(["machine", ""], [(k, v) for k, v in machine.items()]) + "\n")
    md.append(f"cow_bench: {cfg['device']} devices, origin {human_bytes(cfg['origin_bytes'])}, rand4k-copied span "
              f"{human_bytes(cfg['copied_span_bytes'])}, {cfg['seconds_per_case']} s per case (a case also ends "
              f"when its first writes run out), snapshots {cfg['snapshots']}, chunks "
              f"{[human_bytes(c) for c in cfg['chunks']]}, concurrency {cfg['concurrency']}. "
              f"nbd_bench: {rounds} round(s), medians across rounds.\n")

    # Targets.
    trows = targets(cow_cases, wb_cases, nbd, nbd_rss, backup)
    md.append("## Targets\n")
    md.append(table(["target", "measured", "limit", "verdict"], trows, ["l", "r", "r", "l"]) + "\n")

    # Write amplification headline.
    md.append("## Write amplification: 4 KiB random first writes, 4 KiB chunks (cow_bench)\n")
    md.append("All bytes written to every backing device (origin, COW data, COW metadata including zeroed "
              "metadata areas) / bytes the client wrote. Floor for N snapshots: N + 1 + N/256.\n")
    conc = cfg["concurrency"]
    wa_rows, wa_dat = [], []
    for n in cfg["snapshots"]:
        chunk = 0 if n == 0 else 4 * KIB
        vals = [cow_cases.get((n, chunk, "rand4k-first", t)) for t in conc]
        wa = [v["write_amplification"] if v else None for v in vals]
        meta = [v["cow_metadata_bytes"] / max(v["exceptions"], 1) if v and n else None for v in vals]
        wb_vals = [wb_cases.get((n, chunk, "rand4k-first", t)) for t in conc]
        wb_wa = [v["write_amplification"] if v else None for v in wb_vals]
        wa_rows.append([n] + [fmt(w, 3) for w in wa] + [fmt(m, 0) for m in meta] + [fmt(w, 3) for w in wb_wa] +
                       [f"{n + 1 + n / 256:.3f}", f"{n + 1.1:.1f}" if n else "–",
                        f"{n + 1 + n / 128:.3f}" if n else "–"])
        wa_dat.append([n] + wa + wb_wa + [n + 1 + n / 256, n + 1.1, n + 1 + n / 128])
    md.append("Write-back mode (WA wb) commits large batches, so its metadata share comes near the floor.\n")
    md.append(table(["snapshots"] + [f"WA T={t}" for t in conc] + [f"meta B/exception T={t}" for t in conc] +
                    [f"WA wb T={t}" for t in conc] + ["floor", "target (sync)", "target (wb)"], wa_rows) + "\n")
    write_dat(os.path.join(a.out, "data", "wa_snapshots.dat"),
              ["snapshots"] + [f"T={t}" for t in conc] + [f"wb_T={t}" for t in conc] +
              ["floor", "target", "target_wb"], wa_dat)

    # WA by chunk size.
    md.append("## Write amplification by chunk size, 1 snapshot (cow_bench)\n")
    ch_rows, ch_dat = [], []
    t_mid = 8 if 8 in conc else conc[-1]
    for chunk in cfg["chunks"]:
        f1 = cow_cases.get((1, chunk, "rand4k-first", t_mid))
        s1 = cow_cases.get((1, chunk, "seq1m", t_mid))
        c1 = cow_cases.get((1, chunk, "rand4k-copied", t_mid))
        get = lambda c: c["write_amplification"] if c else None
        ch_rows.append((human_bytes(chunk), fmt(get(f1), 3), fmt(get(s1), 3), fmt(get(c1), 3),
                        fmt(f1["cow_metadata_bytes"] / max(f1["exceptions"], 1), 0) if f1 else "–"))
        ch_dat.append([chunk // KIB, get(f1), get(s1), get(c1)])
    md.append(table(["chunk", f"rand4k-first T={t_mid}", f"seq1m T={t_mid}", f"rand4k-copied T={t_mid}",
                     "meta B/exception (first)"], ch_rows) + "\n")
    write_dat(os.path.join(a.out, "data", "wa_chunk.dat"), ["chunk_KiB", "rand4k-first", "seq1m", "rand4k-copied"],
              ch_dat)

    # cow_bench throughput ratios.
    md.append("## Throughput vs 0 snapshots, 4 KiB chunks (cow_bench, same workload and concurrency)\n")
    md.append("rand4k-copied cases are compared with a 0-snapshot reference run just before each of them "
              "(same span, same T); the others with the 0-snapshot case of the matrix.\n")
    snaps = [n for n in cfg["snapshots"] if n > 0]
    r_rows, r_dat = [], []
    for w in cfg["workloads"]:
        for t in conc:
            base = cow_cases.get((0, 0, w, t))
            vals = [cow_ratio(cow_cases, (n, 4 * KIB, w, t)) for n in snaps]
            r_rows.append([w, t, fmt(base["throughput_mib_s"], 1) if base else "–"] + [fmt(v, 3) for v in vals])
            r_dat.append([f"{w}/T{t}"] + vals)
    md.append(table(["workload", "T", "0 snaps MiB/s"] + [f"{n} snaps" for n in snaps], r_rows,
                    ["l", "r", "r"] + ["r"] * len(snaps)) + "\n")
    write_dat(os.path.join(a.out, "data", "cow_ratio.dat"), ["case"] + [f"{n}_snaps" for n in snaps], r_dat)

    # Latency.
    lat_dat = []
    for n in cfg["snapshots"]:
        c = cow_cases.get((n, 0 if n == 0 else 4 * KIB, "rand4k-first", t_mid))
        lat_dat.append([n] + ([c["lat_us"]["p50"], c["lat_us"]["p99"], c["lat_us"]["p99_9"]] if c else [None] * 3))
    write_dat(os.path.join(a.out, "data", "cow_latency.dat"), ["snapshots", "p50", "p99", "p99.9"], lat_dat)

    # NBD.
    md.append("## NBD servers under the same fio jobs (nbd_bench)\n")
    md.append("Throughput as a ratio to nbdkit's file plugin in the same run (median over rounds; min–max of the "
              "per-round ratios in brackets). WA = server's wchar / bytes fio wrote; WA(wb) = server's "
              "write_bytes / bytes fio wrote (page-cache pages dirtied: see the README, Benchmarks).\n")
    servers = [s for s in a.servers.split() if any(k[0] == s for k in nbd)]
    for job in JOBS:
        rows = []
        for s in servers:
            d = nbd.get((s, job))
            if not d:
                continue
            b = nbd.get(("file", job))
            rr = [r for r in d["ratios"] if r is not None]
            spread = f" [{min(rr):.2f}–{max(rr):.2f}]" if len(rr) > 1 else ""
            rows.append((s, fmt(d["bw"], 1), fmt(d["iops"], 0), fmt(ratio(d["bw"], b["bw"] if b else None)) + spread,
                         fmt(d["p50"], 0), fmt(d["p99"], 0), fmt(d["p99_9"], 0),
                         fmt(d["wa_wchar"], 3) if job in WRITE_JOBS else "–",
                         fmt(d["wa_write_bytes"], 3) if job in WRITE_JOBS else "–", fmt(d["cpu_s"], 2)))
        md.append(f"### {job}\n")
        md.append(table(["server", "MiB/s", "IOPS", "× file", "p50 µs", "p99 µs", "p99.9 µs", "WA", "WA(wb)",
                         "server CPU s"], rows) + "\n")
    nbd_ratio_dat, nbd_wa_dat = [], []
    for s in servers:
        nbd_ratio_dat.append([s] + [ratio(nbd[(s, j)]["bw"], nbd[("file", j)]["bw"])
                                    if (s, j) in nbd and ("file", j) in nbd else None for j in JOBS])
        nbd_wa_dat.append([s] + [nbd[(s, j)]["wa_wchar"] if (s, j) in nbd else None
                                 for j in ("seqwrite-1m-first", "randwrite-4k-first", "randwrite-4k")])
    write_dat(os.path.join(a.out, "data", "nbd_ratio.dat"), ["server"] + JOBS, nbd_ratio_dat)
    write_dat(os.path.join(a.out, "data", "nbd_wa.dat"), ["server", "seqwrite-1m-first", "randwrite-4k-first",
                                                         "randwrite-4k"], nbd_wa_dat)
    if nbd_skipped:
        md.append("Skipped servers: " + ", ".join(f"{d['server']} ({d['skipped']})" for d in nbd_skipped) + "\n")

    # Peak RSS of the NBD servers.
    if nbd_rss:
        md.append("## Peak RSS of the NBD servers (VmHWM after all jobs, median over rounds)\n")
        md.append(f"Write-back mode holds pending copy-outs in memory, at most {WRITEBACK_BOUND_MIB} MiB by default "
                  "(writeback-memory).\n")
        md.append(table(["server", "peak RSS MiB", "rounds"],
                        [(sv, fmt(median(v) / 1024, 1), len(v)) for sv, v in nbd_rss.items()]) + "\n")

    # Backup.
    if backup is not None:
        md += backup_section(backup)
    if rbd is not None:
        md += rbd_section(rbd)

    # Memory.
    md.append("## Memory per exception\n")
    mrows = []
    for key, c in sorted(cow_cases.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3])):
        if key[0] == 1 and key[3] == conc[-1] and c.get("table_exceptions"):
            mrows.append((f"cow_bench {key[2]}, chunk {human_bytes(key[1])}, after the case", c["table_exceptions"],
                          fmt(c["table_bytes_per_exception"], 2)))
    if etb:
        for t in etb.get("tables", []):
            mrows.append((f"exception_table_bench {t.get('workload')}", t.get("count", t.get("exceptions", "")),
                          fmt(t.get("bytes_per_exception"), 2)))
    md.append(table(["table", "exceptions", "bytes/exception"], mrows) + "\n")
    if etb and "open" in etb:
        md.append("Persistent store open (exception_table_bench): `" + json.dumps(etb["open"]) + "`\n")

    # Full tables.
    md.append("## All cow_bench cases (file devices, fdatasync real)\n")
    md.append("Per client byte: origin/B, COW data/B, COW meta/B (metadata areas + header + zeroed areas). "
              "`× 0 snaps` = throughput / the 0-snapshot case of the same workload and T.\n")
    md.append(cow_full_table(cow_doc, cow_cases) + "\n")
    if wb_cases:
        md.append("## All cow_bench cases in write-back mode (--writeback, file devices)\n")
        md.append("The same matrix with copy-outs committed in the background; each case ends with a flush, "
                  "which its time includes.\n")
        md.append(cow_full_table(wb_doc, wb_cases) + "\n")
    if mem_cases:
        md.append("## All cow_bench cases (--memory: MemoryDevice, flushes free)\n")
        md.append(cow_full_table(mem_doc, mem_cases) + "\n")

    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(md))
    summary = {
        "command": a.command,
        "machine": machine,
        "targets": [dict(zip(["target", "measured", "limit", "verdict"], r)) for r in trows],
        "nbd": {f"{k[0]}/{k[1]}": v for k, v in nbd.items()},
        "backup": {"full_vs_nbdcopy": backup["full_vs_nbdcopy"]["summary"],
                   "incremental_vs_full": {str(lv["percent"]): lv["summary"]
                                           for lv in backup["incremental_vs_full"]}} if backup else None,
        "cow_bench_config": cfg,
    }
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"report.py: wrote {os.path.join(a.out, 'results.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
