#!/usr/bin/python3
"""Train a small MNIST network in PyTorch and save it as sectorlab reads it.

usage: from_pytorch.py DATA_DIR OUT.safetensors [--epochs N]

DATA_DIR holds MNIST's IDX files (plain or .gz; sectorlab's data/ has a
10,000-image sample).  Pixels are scaled as sectorlab scales them, x/255 - 0.5.
The state_dict is saved as PyTorch users save it, with
safetensors.torch.save_file; where the safetensors package is missing (Debian
packages none), save_file below writes the same bytes.  Then:

    sectorlab certify --model OUT.safetensors --arch 784-128-64-10
    sectorlab attack  --model OUT.safetensors --arch 784-128-64-10 --eps 0.1

(--arch says what a state_dict does not hold: 784-128-64-10 is dense layers
with leaky ReLU 0.1 between them, as below.)
"""
import argparse
import gzip
import json
import os
import struct

import torch
import torch.nn as nn

try:
    from safetensors.torch import save_file
except ImportError:
    _DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
               torch.float64: "F64", torch.int32: "I32", torch.int64: "I64"}

    def save_file(tensors, filename, metadata=None):
        """safetensors' layout: an 8-byte little-endian header length, the
        JSON header (names, dtypes, shapes, byte ranges) padded with spaces to
        8 bytes, then the raw little-endian tensors."""
        header = {"__metadata__": metadata} if metadata else {}
        blobs, offset = [], 0
        for name in sorted(tensors):
            t = tensors[name].detach().contiguous().cpu()
            raw = (t.view(torch.int16) if t.element_size() == 2 else t).numpy().tobytes()
            header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                            "data_offsets": [offset, offset + len(raw)]}
            blobs.append(raw)
            offset += len(raw)
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        with open(filename, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_mnist(data_dir, prefix):
    """(images scaled to x/255 - 0.5, labels) from DATA_DIR's IDX files."""
    def idx(name):
        path = os.path.join(data_dir, name)
        path = path + ".gz" if os.path.exists(path + ".gz") else path
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            data = f.read()
        ndim = data[3]
        dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
        return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)
    x = idx(prefix + "-images-idx3-ubyte").float() / 255 - 0.5
    return x.reshape(-1, 1, 28, 28), idx(prefix + "-labels-idx1-ubyte").long()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir")
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    torch.manual_seed(0)
    x, y = load_mnist(args.data_dir, "train")
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.LeakyReLU(0.1),
                          nn.Linear(128, 64), nn.LeakyReLU(0.1), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            b = order[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[b]), y[b])
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}")
    save_file(model.state_dict(), args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
