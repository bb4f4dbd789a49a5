#!/usr/bin/python3
"""A straightforward PyTorch implementation of sectorlab's attacks, to check
sectorlab's numbers against and to time it against.

    torch_reference.py check DATA_DIR OUT.safetensors [--n N]
        Train the paper's MLP briefly on the MNIST files in DATA_DIR, save it as
        safetensors with PyTorch's names (written by hand: 8-byte little-endian
        header length, JSON header, raw float32 data), attack the first N test
        images with each recipe below, and print one JSON object with the
        robust accuracies (correct before and after the attack).

    torch_reference.py bench --model mlp|alexnet [--n N] [--batch B]
                             [--steps S] [--threads T] [--repeat R]
        Time PGD (L-inf, eps 0.1, S steps of 2.5 eps / S, true labels,
        clipped) on random images and a randomly initialised network, the
        best of R passes; print one JSON object with images per second.

Pixels are x / 255 - 0.5 as in sectorlab, so the box is [-0.5, 0.5].
Run with Debian's python3-torch (PyTorch 1.13).
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Recipes checked by `check`, mirrored in tests/test_torch.c.
RECIPES = [
    {"name": "fgsm", "norm": "inf", "eps": 0.1, "steps": 1, "alpha": 0.1,
     "labels": "true", "clip": True},
    {"name": "pgd_inf", "norm": "inf", "eps": 0.1, "steps": 20, "alpha": 0.01,
     "labels": "true", "clip": True},
    {"name": "fgm", "norm": "2", "eps": 1.5, "steps": 1, "alpha": 1.5,
     "labels": "true", "clip": True},
    # the authors' code: L2, 100 steps of 2 eps / 100, predicted labels, no clipping
    {"name": "paper_code", "norm": "2", "eps": 1.0, "steps": 100, "alpha": 0.02,
     "labels": "pred", "clip": False},
]


class MLP(nn.Module):
    """784-50-20-10, leaky ReLU 0.1: the paper's MNIST network."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 50)
        self.fc2 = nn.Linear(50, 20)
        self.fc3 = nn.Linear(20, 10)

    def forward(self, x):
        x = x.flatten(1)
        x = F.leaky_relu(self.fc1(x), 0.1)
        x = F.leaky_relu(self.fc2(x), 0.1)
        return self.fc3(x)


class AlexNet(nn.Module):
    """The paper's CIFAR-10 network as sectorlab builds it (no LRN)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 5, padding=2)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2)
        self.fc1 = nn.Linear(256 * 7 * 7, 384)
        self.fc2 = nn.Linear(384, 192)
        self.fc3 = nn.Linear(192, 10)

    def forward(self, x):
        x = F.max_pool2d(F.leaky_relu(self.conv1(x), 0.1), 3, 2)
        x = F.max_pool2d(F.leaky_relu(self.conv2(x), 0.1), 3, 2)
        x = x.flatten(1)
        x = F.leaky_relu(self.fc1(x), 0.1)
        x = F.leaky_relu(self.fc2(x), 0.1)
        return self.fc3(x)


def read_idx(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(data_dir, name):
    for sub in ("mnist", ""):
        for ext in (".gz", ""):
            p = os.path.join(data_dir, sub, name + ext)
            if os.path.exists(p):
                return p
    sys.exit("torch_reference.py: %s not found under %s" % (name, data_dir))


def load_mnist(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(find(data_dir, prefix + "-images-idx3-ubyte"))
    y = read_idx(find(data_dir, prefix + "-labels-idx1-ubyte"))
    x = torch.from_numpy(x.astype(np.float32) / np.float32(255) - np.float32(0.5))
    return x.reshape(-1, 1, 28, 28), torch.from_numpy(y.astype(np.int64))


def save_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, t in tensors.items():
        raw = t.detach().cpu().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(path + ".tmp", path)


def attack(model, x, y_true, r):
    """Projected gradient steps from x; FGSM and FGM are one step of eps."""
    eps, alpha = r["eps"], r["alpha"]
    with torch.no_grad():
        pred = model(x).argmax(1)
    y = pred if r["labels"] == "pred" else y_true
    xa = x.clone()
    for _ in range(r["steps"]):
        xa.requires_grad_(True)
        loss = F.cross_entropy(model(xa), y, reduction="sum")
        g, = torch.autograd.grad(loss, xa)
        with torch.no_grad():
            if r["norm"] == "inf":
                xa = xa + alpha * g.sign()
                xa = torch.max(torch.min(xa, x + eps), x - eps)
            else:
                shape = (-1,) + (1,) * (x.dim() - 1)
                gn = g.flatten(1).norm(dim=1).clamp_min(1e-30).view(shape)
                xa = xa + alpha * g / gn
                d = xa - x
                dn = d.flatten(1).norm(dim=1).clamp_min(1e-30).view(shape)
                xa = x + d * torch.clamp(eps / dn, max=1.0)
            if r["clip"]:
                xa = xa.clamp(-0.5, 0.5)
    with torch.no_grad():
        adv = model(xa).argmax(1)
    return pred, adv


def check(args):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    xtr, ytr = load_mnist(args.data_dir, "train")
    xte, yte = load_mnist(args.data_dir, "test")
    model = MLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    model.eval()
    model.requires_grad_(False)
    save_safetensors(args.out, {k: v for k, v in model.state_dict().items()},
                     {"format": "sectorlab-1", "model": "mlp", "mode": "vanilla",
                      "dataset": "mnist", "trained_by": "pytorch %s" % torch.__version__})
    x, y = xte[:args.n], yte[:args.n]
    out = {"n": len(x), "torch": torch.__version__, "results": {}}
    for r in RECIPES:
        pred, adv = attack(model, x, y, r)
        out["results"][r["name"]] = {
            "clean_accuracy": (pred == y).float().mean().item(),
            "robust_accuracy": ((pred == y) & (adv == y)).float().mean().item(),
        }
    print(json.dumps(out))


def bench(args):
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = MLP() if args.model == "mlp" else AlexNet()
    model.eval()
    model.requires_grad_(False)
    shape = (1, 28, 28) if args.model == "mlp" else (3, 32, 32)
    x = torch.rand((args.n,) + shape) - 0.5
    y = torch.randint(0, 10, (args.n,))
    eps = 0.1
    r = {"norm": "inf", "eps": eps, "steps": args.steps, "alpha": 2.5 * eps / args.steps,
         "labels": "true", "clip": True}
    attack(model, x[:args.batch], y[:args.batch], dict(r, steps=1))  # warm up
    secs = float("inf")
    for _ in range(args.repeat):  # the best of a few passes
        t0 = time.perf_counter()
        for i in range(0, args.n, args.batch):
            attack(model, x[i:i + args.batch], y[i:i + args.batch], r)
        secs = min(secs, time.perf_counter() - t0)
    print(json.dumps({"model": args.model, "n": args.n, "batch": args.batch,
                      "steps": args.steps, "threads": torch.get_num_threads(),
                      "seconds": secs, "images_per_second": args.n / secs,
                      "torch": torch.__version__}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("data_dir")
    c.add_argument("out")
    c.add_argument("--n", type=int, default=2000)
    c.add_argument("--epochs", type=int, default=2)
    b = sub.add_parser("bench")
    b.add_argument("--model", choices=["mlp", "alexnet"], default="mlp")
    b.add_argument("--n", type=int, default=4000)
    b.add_argument("--batch", type=int, default=500)
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--threads", type=int, default=os.cpu_count())
    b.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    check(args) if args.cmd == "check" else bench(args)


if __name__ == "__main__":
    main()
