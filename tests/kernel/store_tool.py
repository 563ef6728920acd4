#!/usr/bin/python3
"""Deterministic data and table mapping for the kernel store tests
(store_read_test.sh, store_write_test.sh).

  store_io.py write SOCKET OP...     OP is EXPORT:OFFSET:LENGTH:SEED; each
                                     writes LENGTH pattern bytes at byte
                                     OFFSET (any alignment) of the export,
                                     then flushes it
  store_io.py sums SOCKET EXPORT...  prints "EXPORT SHA256" per export, or
                                     "EXPORT EIO" when a read fails
  store_io.py pattern FILE LENGTH SEED
                                     the same bytes into FILE (for dd in the
                                     guest)
  store_tool.py map-table DEVS PV=MAJ:MIN <TABLE
                                     cowsnap's `dmsetup table` with every
                                     device named in a target's parameters
                                     (a dm name, or the PV path PV) replaced
                                     by the kernel's major:minor: DEVS holds
                                     the guest's `dmsetup info -c -o
                                     name,major,minor --separator :` lines.
                                     Nothing else is changed; a parameter
                                     that names a device the guest does not
                                     have fails

The bytes of (LENGTH, SEED) are random.Random(SEED).randbytes(LENGTH):
the same on every run and every machine.
"""
import hashlib
import random
import sys

CHUNK = 1 << 20


def pattern(length, seed):
    return random.Random(seed).randbytes(length)


def connect(sock, export):
    import nbd

    h = nbd.NBD()
    h.set_export_name(export)
    h.connect_unix(sock)
    return h


def write(sock, ops):
    handles = {}
    for op in ops:
        export, offset, length, seed = op.rsplit(":", 3)
        h = handles.get(export)
        if h is None:
            h = handles[export] = connect(sock, export)
        h.pwrite(pattern(int(length), int(seed)), int(offset))
    for h in handles.values():
        h.flush()
        h.shutdown()


def sums(sock, exports):
    import nbd

    for export in exports:
        h = connect(sock, export)
        size = h.get_size()
        digest = hashlib.sha256()
        try:
            for at in range(0, size, CHUNK):
                digest.update(h.pread(min(CHUNK, size - at), at))
            print(export, digest.hexdigest())
        except nbd.Error as e:
            if e.errnum != 5:  # EIO
                raise
            print(export, "EIO")
        h.shutdown()


def map_table(devs_file, pv_arg):
    names = {}
    with open(devs_file) as f:
        for line in f:
            name, major, minor = line.strip().rsplit(":", 2)
            names[name] = f"{major}:{minor}"
    pv, pv_dev = pv_arg.rsplit("=", 1)
    names[pv] = pv_dev
    # Which parameters name a device, per target type (dm-linear,
    # dm-snapshot): linear DEV OFFSET; snapshot-origin DEV;
    # snapshot ORIGIN COW P|N CHUNK.
    device_params = {"linear": [0], "snapshot-origin": [0], "snapshot": [0, 1]}
    for line in sys.stdin.read().splitlines():
        words = line.split(" ")
        if len(words) > 4:
            for i in device_params.get(words[3], []):
                dev = words[4 + i]
                if dev not in names:
                    sys.exit(f"map-table: {dev!r} in {line!r} is no device of the guest")
                words[4 + i] = names[dev]
        print(" ".join(words))


def main(argv):
    if len(argv) >= 3 and argv[1] == "write":
        write(argv[2], argv[3:])
    elif len(argv) >= 3 and argv[1] == "sums":
        sums(argv[2], argv[3:])
    elif len(argv) == 5 and argv[1] == "pattern":
        with open(argv[2], "wb") as f:
            f.write(pattern(int(argv[3]), int(argv[4])))
    elif len(argv) == 4 and argv[1] == "map-table":
        map_table(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
