#!/usr/bin/env python3
"""One JSON line for one fio job run against one NBD server.

    fio_summary.py --server NAME --job NAME --fio FIO.json \
        --io-before F --io-after F --stat-before F --stat-after F [--measured 0|1]

FIO.json is fio's --output-format=json; the --io-* files are copies of the
server's /proc/PID/io taken before the job and after it plus a `sync`; the
--stat-* files are copies of /proc/PID/stat (CPU time of the server).

Write amplification is computed the same way for every server:
  wa_wchar       = wchar delta (bytes the server passed to write calls:
                   pwrite to its files; its socket replies go through
                   send/sendmsg, which wchar does not count) / bytes fio wrote
  wa_write_bytes = write_bytes delta (bytes the server caused to be sent to
                   the storage layer, page-granular, accounted when pages
                   are dirtied) / bytes fio wrote
"""
import argparse
import json
import os
import sys


def read_io(path):
    out = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            if value.strip():
                out[key.strip()] = int(value)
    return out


def read_cpu_seconds(path):
    with open(path) as f:
        text = f.read()
    # Fields after the parenthesised command name; utime and stime are
    # fields 14 and 15 (1-based) of the whole line.
    rest = text[text.rindex(")") + 2:].split()
    ticks = int(rest[11]) + int(rest[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def direction(job, key):
    d = job[key]
    pct = d.get("clat_ns", {}).get("percentile", {})

    def p(name):
        return pct.get(name, 0) / 1000.0

    return {
        "io_bytes": d["io_bytes"],
        "iops": d["iops"],
        "bw_mib_s": d["bw_bytes"] / (1024 * 1024),
        "runtime_s": d["runtime"] / 1000.0,
        "lat_us": {"p50": p("50.000000"), "p99": p("99.000000"), "p99_9": p("99.900000"),
                   "mean": d.get("clat_ns", {}).get("mean", 0) / 1000.0},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--fio", required=True)
    ap.add_argument("--io-before", required=True)
    ap.add_argument("--io-after", required=True)
    ap.add_argument("--stat-before", required=True)
    ap.add_argument("--stat-after", required=True)
    ap.add_argument("--measured", default="1")
    ap.add_argument("--extra", default="{}", help="JSON object merged into the line")
    a = ap.parse_args()

    with open(a.fio) as f:
        fio = json.load(f)
    job = fio["jobs"][0]
    if job.get("error", 0) != 0:
        sys.exit(f"fio_summary: fio job {a.job} on {a.server} failed with error {job['error']}")
    rw = job["job options"].get("rw", "")
    key = "read" if "read" in rw else "write"
    d = direction(job, key)

    before, after = read_io(a.io_before), read_io(a.io_after)
    wchar = after["wchar"] - before["wchar"]
    write_bytes = after["write_bytes"] - before["write_bytes"]
    cpu = read_cpu_seconds(a.stat_after) - read_cpu_seconds(a.stat_before)
    written = job["write"]["io_bytes"]

    line = {
        "bench": "nbd_bench",
        "server": a.server,
        "job": a.job,
        "measured": a.measured == "1",
        "rw": rw,
        "bs": job["job options"].get("bs"),
        "iodepth": int(job["job options"].get("iodepth", 1)),
        **d,
        "client_write_bytes": written,
        "server_wchar_bytes": wchar,
        "server_write_bytes": write_bytes,
        "server_cpu_s": cpu,
        "wa_wchar": wchar / written if written else None,
        "wa_write_bytes": write_bytes / written if written else None,
    }
    line.update(json.loads(a.extra))
    print(json.dumps(line))
    wa = "-" if line["wa_wchar"] is None else "%.3f" % line["wa_wchar"]
    print("nbd_bench: %-11s %-19s %9.1f MiB/s %8.0f IOPS  p99 %9.0f us  WA(wchar) %s" %
          (a.server, a.job, line["bw_mib_s"], line["iops"], line["lat_us"]["p99"], wa), file=sys.stderr)


if __name__ == "__main__":
    main()
