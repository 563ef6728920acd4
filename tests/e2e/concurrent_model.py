#!/usr/bin/python3
"""Concurrent randomized writes over several NBD connections while snapshots
are taken online through the control socket, checked against a model.

Each writer thread owns its own connection and its own blocks (b % 4), and
writes random ones of them, one request at a time, whose content encodes
(block, version). For each snapshot, a block must hold the version last
acknowledged before the snapshot request was sent, or one of the versions
whose write was in flight while the snapshot was being taken (those may
land on either side of the barrier) -- never a version written after the
snapshot returned, never torn or foreign data.

With --crash PID the server is killed with SIGKILL while the writers'
requests are in flight, after every snapshot was read in full; the model
goes to --state FILE. After a restart, --check FILE checks that every
acknowledged write survived (a SIGKILL loses no page cache: an acknowledged
write needs no flush to outlive the process), that a block holds either its
last acknowledged version or the one in flight at the kill, and that each
snapshot reads exactly as it did before the kill.

With --writeback (a server in write-back mode) each writer flushes every
few writes, and --check allows a block any version from its last flushed
one on: acknowledged writes since the last flush may be lost in a crash,
flushed ones never, and the snapshots must still read exactly as before.

With --crash PID --op JSON [--kill-after S] [--kill-on-log LOG] the control
request JSON is sent instead of the snapshots, and the server is killed S
seconds later (and not before LOG shows the server paused at its
COWSNAP_TEST_PAUSE_AT point)
(the fault matrix: "during" that operation); when the op creates a
snapshot, --check also checks it, if it survived, against the versions
that were acknowledged before the request or written while it ran.

usage: concurrent_model.py NBD_SOCKET CONTROL_SOCKET VG LV SNAP_SIZE_BYTES
                           [--crash PID [--op JSON [--kill-after S]] --state FILE
                            | --check FILE]
"""
import argparse, hashlib, json, os, random, signal, socket, sys, threading, time
import nbd

ap = argparse.ArgumentParser()
ap.add_argument("sock"); ap.add_argument("control"); ap.add_argument("vg"); ap.add_argument("lv")
ap.add_argument("snap_size", type=int)
ap.add_argument("--crash", type=int, metavar="PID", help="SIGKILL this server under load")
ap.add_argument("--state", help="where --crash leaves the model")
ap.add_argument("--check", metavar="STATE", help="check a restarted server against a --crash model")
ap.add_argument("--op", help="with --crash: this control request instead of the snapshots")
ap.add_argument("--kill-after", type=float, default=0.0, help="with --op: seconds from the request to the kill")
ap.add_argument("--write-blocks", type=int, metavar="N",
                help="the writers write only the first N blocks (so a store of N chunks never fills)")
ap.add_argument("--writeback", action="store_true",
                help="the server is in write-back mode: flush every few writes, check flushed ones survive")
ap.add_argument("--kill-on-log", metavar="LOG",
                help="with --op: kill once the server's LOG shows one more COWSNAP_TEST_PAUSE_AT pause")
args = ap.parse_args()
BLOCK, WRITERS, SNAPSHOTS = 4096, 4, 3
uri = lambda name: f"nbd+unix:///{args.vg}/{name}?socket={args.sock}"
digest = lambda data: hashlib.sha256(data).hexdigest()

def content(block, version):
    seed = hashlib.sha256(f"{block}:{version}".encode()).digest()
    return (seed * (BLOCK // len(seed) + 1))[:BLOCK]

def connect(name):
    h = nbd.NBD(); h.connect_uri(uri(name))
    return h

def read_digests(name):
    h = connect(name)
    out = [digest(h.pread(BLOCK, b * BLOCK)) for b in range(h.get_size() // BLOCK)]
    h.shutdown()
    return out

def control_call(req):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(args.control)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            buf += s.recv(65536)
    return json.loads(buf)

def version_digest(initial, b, v):
    return digest(content(b, v)) if v else initial[b]

def report(bad, where, msg):
    if bad < 5: print(f"{where}: {msg}")
    return bad + 1

if args.check:
    with open(args.check) as f: st = json.load(f)
    initial, bad = st["initial"], 0
    now = read_digests(args.lv)
    for b, d in enumerate(now):
        allowed = {st["acked"][b]} | ({st["in_flight"][str(b)]} if str(b) in st["in_flight"] else set())
        if st.get("flushed") is not None:
            # Write-back: anything from the last flushed version on.
            allowed |= set(range(st["flushed"][b], max(allowed) + 1))
        if d not in {version_digest(initial, b, v) for v in allowed}:
            what = f"flushed v{st['flushed'][b]} or later" if st.get("flushed") else f"acknowledged v{st['acked'][b]}"
            bad = report(bad, "origin", f"block {b} holds neither its {what} nor the write in flight")
    landed = sum(1 for b, v in st["in_flight"].items() if now[int(b)] == version_digest(initial, int(b), v))
    print(f"origin: each of {len(now)} blocks holds its last acknowledged version or the write in flight; "
          f"{landed} of {len(st['in_flight'])} writes in flight at the kill landed")
    new = st.get("new_snapshot")
    if new:
        try:
            got = read_digests(new["name"])
        except nbd.Error:
            got = None
            print(f"{new['name']}: not there after the restart (the kill came before its commit)")
        if got is not None:
            wrong = sum(1 for b, d in enumerate(got)
                        if d not in {version_digest(initial, b, v) for v in new["allowed"][b]})
            if wrong: bad = report(bad, new["name"], f"{wrong} blocks hold versions from outside the request")
            else: print(f"{new['name']}: every block holds a version from before or during the request")
    for name, before in st["snapshots"].items():
        after = read_digests(name)
        diff = sum(1 for x, y in zip(before, after) if x != y)
        if diff: bad = report(bad, name, f"{diff} blocks differ from what it read before the kill")
        else: print(f"{name}: identical to what it read before the kill")
    sys.exit(1 if bad else 0)

h0 = connect(args.lv)
blocks = h0.get_size() // BLOCK
initial = [digest(h0.pread(BLOCK, b * BLOCK)) for b in range(blocks)]   # version 0
h0.shutdown()
written_blocks = min(blocks, args.write_blocks or blocks)
flushed = [0] * blocks   # block -> newest version a completed flush covers (--writeback)
clock = threading.Lock()
log = []            # (block, version, start, end) of acknowledged writes
version = [0] * blocks
in_flight = {}      # writer -> (block, version) sent and not acknowledged
stop, killed = threading.Event(), threading.Event()

def writer(seed):
    rnd = random.Random(seed)
    h = connect(args.lv)
    mine = {}   # block -> version acknowledged since this writer's last flush
    try:
        while not stop.is_set():
            # Each block has one writer: NBD orders nothing between
            # connections, so two writers of one block would race by design.
            b = rnd.randrange(seed, written_blocks, WRITERS)
            with clock:
                version[b] += 1
                v = version[b]
                in_flight[seed] = (b, v)
            t0 = time.monotonic()
            h.pwrite(content(b, v), b * BLOCK)
            entry = (b, v, t0, time.monotonic())
            with clock:
                log.append(entry)
                del in_flight[seed]
            mine[b] = v
            if args.writeback and len(mine) >= 8:
                h.flush()
                with clock:
                    for fb, fv in mine.items(): flushed[fb] = max(flushed[fb], fv)
                mine.clear()
        h.flush(); h.shutdown()
    except nbd.Error:
        if not killed.is_set(): raise

threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
for t in threads: t.start()
snaps = []
for i in range(0 if args.op else SNAPSHOTS):
    time.sleep(1.0)
    name = f"model{i}"
    t0 = time.monotonic()
    r = control_call({"op": "lvcreate_snapshot", "vg": args.vg, "origin": args.lv, "lv": name, "size_bytes": args.snap_size})
    t1 = time.monotonic()
    if not r["ok"]:
        sys.exit(f"lvcreate_snapshot {name}: {r['message']}")
    snaps.append((name, t0, t1))

snapshot_digests = {}
new_snapshot = None
if args.crash and args.op:
    # The operation, with writes running; no reply may ever come.
    time.sleep(0.5)
    op = json.loads(args.op)
    def send_op():
        try: control_call(op)
        except OSError: pass
    PAUSED = b"COWSNAP_TEST_PAUSE_AT: pausing"
    def pauses():
        with open(args.kill_on_log, "rb") as f: return f.read().count(PAUSED)
    seen = pauses() if args.kill_on_log else 0
    t_op = time.monotonic()
    threading.Thread(target=send_op, daemon=True).start()
    time.sleep(args.kill_after)
    # Paused: the request has reached the hook (the handler may take long
    # under load, so a fixed delay could kill it mid-way instead).
    while args.kill_on_log and pauses() == seen:
        if time.monotonic() - t_op > 60: sys.exit("the server never reached its pause point")
        time.sleep(0.02)
    with clock:
        killed.set()
        os.kill(args.crash, signal.SIGKILL)
        caught = dict(in_flight)
        t_kill = time.monotonic()
    for t in threads: t.join()
    if op.get("op") == "lvcreate_snapshot":
        allowed = [{0} for _ in range(blocks)]
        last_before = [0] * blocks
        for b, v, s, e in log:
            if e < t_op and v > last_before[b]: last_before[b] = v
            if s < t_kill and e > t_op: allowed[b].add(v)
        for b, v in caught.values(): allowed[b].add(v)
        new_snapshot = {"name": op["lv"], "allowed": [sorted(a | {last_before[b]}) for b, a in enumerate(allowed)]}
    print(f"killed {args.kill_after:.3f}s after {op['op']}, {len(caught)} writes in flight")
elif args.crash:
    # Read every snapshot in full under load, then kill with writes in flight.
    snapshot_digests = {name: read_digests(name) for name, _, _ in snaps}
    time.sleep(0.3)
    with clock:
        killed.set()
        os.kill(args.crash, signal.SIGKILL)
        caught = dict(in_flight)
    for t in threads: t.join()
    # (Write-back writers may all be in a flush at the kill.)
    if not caught and not args.writeback: sys.exit("no write was in flight at the kill")
else:
    time.sleep(0.5)
    stop.set()
    for t in threads: t.join()

bad = 0
for name, t0, t1 in snaps:
    ok_versions = [{0} for _ in range(blocks)]
    last_before = [0] * blocks
    for b, v, s, e in log:
        if e < t0 and v > last_before[b]: last_before[b] = v
        if s < t1 and e > t0: ok_versions[b].add(v)   # in flight across the barrier
    data = snapshot_digests.get(name) or read_digests(name)
    for b in range(blocks):
        if data[b] not in {version_digest(initial, b, v) for v in ok_versions[b] | {last_before[b]}}:
            bad = report(bad, name, f"block {b} holds unexpected data (last acked before: v{last_before[b]})")
    print(f"{name}: {blocks} blocks checked, {sum(1 for x in log if x[3] < t0)} writes before it")

if args.crash:
    acked = [0] * blocks
    for b, v, _, _ in log: acked[b] = max(acked[b], v)
    with open(args.state, "w") as f:
        json.dump({"initial": initial, "acked": acked, "snapshots": snapshot_digests,
                   "flushed": flushed if args.writeback else None,
                   "in_flight": {str(b): v for b, v in caught.values()}, "new_snapshot": new_snapshot}, f)
    print(f"{len(log)} acknowledged writes, server killed with {len(caught)} in flight, {bad} bad blocks")
    sys.exit(1 if bad else 0)

now = read_digests(args.lv)
for b in range(blocks):
    if version[b] and now[b] != digest(content(b, version[b])):
        bad = report(bad, "origin", f"block {b} is not its last version {version[b]}")
print(f"{len(log)} writes by {WRITERS} connections, {len(snaps)} snapshots, {bad} bad blocks")
sys.exit(1 if bad else 0)
