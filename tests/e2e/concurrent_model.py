#!/usr/bin/python3
"""Concurrent randomized writes over several NBD connections while snapshots
are taken online through the control socket, checked against a model.

Each writer thread owns its own connection and its own blocks (b % 4), and
writes random ones of them
whose content encodes (block, version). For each snapshot, a block must hold
the version last acknowledged before the snapshot request was sent, or one
of the versions whose write was in flight while the snapshot was being taken
(those may land on either side of the barrier) -- never a version written
after the snapshot returned, never torn or foreign data.

usage: concurrent_model.py NBD_SOCKET CONTROL_SOCKET VG LV SNAP_SIZE_BYTES
"""
import hashlib, json, random, socket, sys, threading, time
import nbd

sock, control, vg, lv, snap_size = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
BLOCK, WRITERS, SNAPSHOTS = 4096, 4, 3
uri = lambda name: f"nbd+unix:///{vg}/{name}?socket={sock}"

def content(block, version):
    seed = hashlib.sha256(f"{block}:{version}".encode()).digest()
    return (seed * (BLOCK // len(seed) + 1))[:BLOCK]

def control_call(req):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(control)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            buf += s.recv(65536)
    return json.loads(buf)

h0 = nbd.NBD(); h0.connect_uri(uri(lv))
blocks = h0.get_size() // BLOCK
initial = [h0.pread(BLOCK, b * BLOCK) for b in range(blocks)]   # version 0
h0.shutdown()
clock = threading.Lock()
log = []            # (block, version, start, end) of acknowledged writes
version = [0] * blocks
stop = threading.Event()

def writer(seed):
    rnd = random.Random(seed)
    h = nbd.NBD(); h.connect_uri(uri(lv))
    while not stop.is_set():
        # Each block has one writer: NBD orders nothing between
        # connections, so two writers of one block would race by design.
        b = rnd.randrange(seed, blocks, WRITERS)
        with clock:
            version[b] += 1
            v = version[b]
        t0 = time.monotonic()
        h.pwrite(content(b, v), b * BLOCK)
        log_entry = (b, v, t0, time.monotonic())
        with clock:
            log.append(log_entry)
    h.flush(); h.shutdown()

threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
for t in threads: t.start()
snaps = []
for i in range(SNAPSHOTS):
    time.sleep(1.0)
    name = f"model{i}"
    t0 = time.monotonic()
    r = control_call({"op": "lvcreate_snapshot", "vg": vg, "origin": lv, "lv": name, "size_bytes": snap_size})
    t1 = time.monotonic()
    if not r["ok"]:
        sys.exit(f"lvcreate_snapshot {name}: {r['message']}")
    snaps.append((name, t0, t1))
time.sleep(0.5)
stop.set()
for t in threads: t.join()

bad = 0
for name, t0, t1 in snaps:
    ok_versions = [set([0]) for _ in range(blocks)]
    last_before = [0] * blocks
    for b, v, s, e in log:
        if e < t0 and v > last_before[b]: last_before[b] = v
        if s < t1 and e > t0: ok_versions[b].add(v)   # in flight across the barrier
    h = nbd.NBD(); h.connect_uri(uri(name))
    for b in range(blocks):
        data = h.pread(BLOCK, b * BLOCK)
        allowed = ok_versions[b] | {last_before[b]}
        if all(data != (content(b, v) if v else initial[b]) for v in allowed):
            bad += 1
            if bad < 5: print(f"{name}: block {b} holds unexpected data (last acked before: v{last_before[b]})")
    h.shutdown()
    print(f"{name}: {blocks} blocks checked, {sum(1 for x in log if x[3] < t0)} writes before it")
h = nbd.NBD(); h.connect_uri(uri(lv))
for b in range(blocks):
    if version[b] and h.pread(BLOCK, b * BLOCK) != content(b, version[b]):
        bad += 1
        if bad < 10: print(f"origin: block {b} is not its last version {version[b]}")
h.shutdown()
print(f"{len(log)} writes by {WRITERS} connections, {len(snaps)} snapshots, {bad} bad blocks")
sys.exit(1 if bad else 0)
