#!/usr/bin/env python3
"""seed_files.py DIR: the kernel seed tests' files, the same bytes on every
run (a fixed seed): `root` holding base1, three text logs, seven binary
blobs and a "picture", about 5.5 MiB in all, like the seed's copy."""
import os
import random
import sys

out = sys.argv[1]
rng = random.Random(20260112)
os.makedirs(os.path.join(out, "log"), exist_ok=True)
os.makedirs(os.path.join(out, "bin"), exist_ok=True)
with open(os.path.join(out, "root"), "w") as f:
    f.write("base1\n")
for n in (1, 2, 3):
    with open(os.path.join(out, "log", f"messages.{n}"), "w") as f:
        for i in range(4000):
            f.write(f"{i:06d} cowsnap seed log {n}: origin b64m line {i} of 4000\n")
for n, size in enumerate((180_000, 350_000, 520_000, 610_000, 777_777, 901_234, 1_100_000), 1):
    with open(os.path.join(out, "bin", f"blob{n}"), "wb") as f:
        f.write(rng.randbytes(size))
with open(os.path.join(out, "picture.png"), "wb") as f:
    f.write(rng.randbytes(123_457))
