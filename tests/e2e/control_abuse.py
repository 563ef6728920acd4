#!/usr/bin/python3
"""Sends bad input to a running server's control socket, over real sockets,
and checks that every request line gets an error reply (JSON, "ok": false,
an errno) and that the server keeps answering between them.

Cases: invalid UTF-8 (a bare "\\xff" string, a byte inside an object),
binary garbage, NUL bytes, JSON of the wrong shape or types, deep nesting,
a line longer than the limit, a client that connects and sends nothing
(held open throughout), clients that disconnect mid-line or mid-reply,
and many clients at once.

usage: control_abuse.py CONTROL_SOCKET VG
Exit 0 when every case behaved; the caller checks the NBD side afterwards.
"""
import json, os, random, socket, sys, threading

ctl, vg = sys.argv[1], sys.argv[2]
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def connect():
    s = socket.socket(socket.AF_UNIX)
    # A blocking connect, as the CLI's: it waits while the listen queue is
    # full (a non-blocking one would fail with EAGAIN), then a timeout.
    s.connect(ctl)
    s.settimeout(30)
    return s


def read_lines(s, n):
    """Reads n reply lines (fewer when the server closes)."""
    buf, out = b"", []
    while len(out) < n:
        nl = buf.find(b"\n")
        if nl >= 0:
            out.append(buf[:nl])
            buf = buf[nl + 1:]
            continue
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return out


def expect_error(name, payload, lines=1):
    """Sends payload; expects `lines` replies, each an error with an errno."""
    with connect() as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once the line is too long
        replies = read_lines(s, lines)
    if len(replies) != lines:
        return fail(f"{name}: {len(replies)} of {lines} replies")
    for r in replies:
        try:
            j = json.loads(r)
        except ValueError:
            return fail(f"{name}: reply is not JSON: {r[:200]!r}")
        if j.get("ok") is not False or not isinstance(j.get("errno"), int) or j["errno"] <= 0 \
                or not j.get("message"):
            return fail(f"{name}: not an error reply: {r[:200]!r}")
    print(f"ok {name}: {json.loads(replies[0])['message'][:100]}")


def expect_lvs(name):
    with connect() as s:
        s.sendall(b'{"op": "lvs"}\n')
        r = read_lines(s, 1)
    if len(r) != 1 or json.loads(r[0]).get("ok") is not True:
        fail(f"{name}: lvs after it failed: {r!r}")


idle = connect()  # connects and sends nothing, for the whole run
half = connect()
half.sendall(b'{"op": "lvs"')  # an unfinished line, held open

cases = [
    ("invalid UTF-8 string", b'"\xff"\n'),
    ("invalid UTF-8 in an object", b'{"op": "lvs", "x": "\xff\xfe"}\n'),
    ("invalid UTF-8 in the op", b'{"op": "lv\xc3"}\n'),
    ("invalid UTF-8 in an LV name",
     b'{"op": "lvcreate", "vg": "' + vg.encode() + b'", "lv": "\xff", "size_bytes": 4194304}\n'),
    ("bad surrogate escape", b'{"op": "\\ud800"}\n'),
    ("NUL bytes", b'{"op": "lvs\x00"}\x00\n'),
    ("not an object", b'[1, 2, 3]\n'),
    ("a bare string", b'"lvs"\n'),
    ("op not a string", b'{"op": 5}\n'),
    ("no op", b'{}\n'),
    ("unknown op", b'{"op": "format_everything"}\n'),
    ("arguments of the wrong type",
     b'{"op": "lvcreate", "vg": 1, "lv": [], "size_bytes": -1}\n'),
    ("a size too large",
     b'{"op": "lvcreate", "vg": "' + vg.encode() + b'", "lv": "big", "size_bytes": 1e300}\n'),
    ("a size past 2^64",
     b'{"op": "lvcreate", "vg": "' + vg.encode() + b'", "lv": "big", "size_bytes": 99999999999999999999999}\n'),
    ("extents of the wrong type",
     b'{"op": "lvextend", "vg": "' + vg.encode() + b'", "lv": "data", "extents": "many"}\n'),
    ("an invalid LV name (valid UTF-8)",
     ('{"op": "lvcreate", "vg": "%s", "lv": "\u00ff", "size_bytes": 4194304}\n' % vg).encode()),
    ("an unknown VG", b'{"op": "lvremove", "vg": "novg", "lv": "x"}\n'),
    ("deep nesting", b'{"op": "lvs", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}\n"),
    ("deep nesting, unbalanced", b"[" * 100000 + b"\n"),
    ("truncated JSON", b'{"op": "lvs"\n'),
    ("three bad lines in one send", b'\xff\n{\n"\x01"\n', 3),
]
rnd = random.Random(7)
for i in range(5):
    garbage = bytes(rnd.randrange(256) for _ in range(4096)).replace(b"\n", b"") + b"\n"
    cases.append((f"binary garbage {i}", garbage))

for case in cases:
    expect_error(case[0], case[1], case[2] if len(case) > 2 else 1)
    expect_lvs(case[0])

# A line past the limit (16 MiB): one error reply, then the server hangs up.
expect_error("a line past the length limit", b"{" + b" " * (17 * 1024 * 1024))
expect_lvs("a line past the length limit")
# A line past the limit with no newline ever, sent slowly in pieces is the
# same path; a valid request after many bad ones on one connection:
with connect() as s:
    s.sendall(b"\xff\n" * 50 + b'{"op": "lvs"}\n')
    r = read_lines(s, 51)
    if len(r) != 51 or json.loads(r[-1]).get("ok") is not True:
        fail(f"50 bad lines then lvs on one connection: {len(r)} replies")
    else:
        print("ok 50 bad lines then a good one, one connection")

# Disconnects: mid-line, and right after a request (before the reply).
for payload in (b'{"op": "lvcre', b'{"op": "lvs"}\n', b'"\xff"\n'):
    s = connect()
    s.sendall(payload)
    s.close()
expect_lvs("disconnects")
# RST instead of FIN: SO_LINGER 0.
s = connect()
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
s.sendall(b'{"op": "lvs"}\n')
s.close()
expect_lvs("reset connection")
print("ok disconnects mid-line and before the reply")

# Many clients at once, each with a good and a bad request.
results = []


def client(i):
    try:
        with connect() as s:
            s.sendall(b'{"op": "lvs"}\n"\xff"\n')
            r = read_lines(s, 2)
            results.append(len(r) == 2 and json.loads(r[0])["ok"] and not json.loads(r[1])["ok"])
    except Exception as e:  # noqa: BLE001 -- recorded as a failure
        results.append(False)
        print(f"client {i}: {e}")


threads = [threading.Thread(target=client, args=(i,)) for i in range(200)]
for t in threads: t.start()
for t in threads: t.join()
if results.count(True) != 200:
    fail(f"many clients: {results.count(True)} of 200 served")
else:
    print("ok 200 clients at once")

# The idle client and the half line did not block anyone; the half line,
# once finished, is still answered.
half.sendall(b"}\n")
r = read_lines(half, 1)
if len(r) != 1 or json.loads(r[0]).get("ok") is not True:
    fail(f"the half-sent line, once finished: {r!r}")
else:
    print("ok an idle client and a half-sent line held open block nobody")
half.close()
idle.close()

sys.exit(1 if failures else 0)
