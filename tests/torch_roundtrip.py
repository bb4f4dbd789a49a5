#!/usr/bin/python3
"""Load a sectorlab checkpoint into an equivalent torch.nn model and compare logits.

usage: torch_roundtrip.py CHECKPOINT IMAGES LOGITS N

CHECKPOINT is a safetensors file written by sectorlab; IMAGES holds N inputs
as raw little-endian float32 in NCHW order (already scaled to x/255 - 0.5);
LOGITS holds sectorlab's N x classes logits for them.  The torch model is
built from the checkpoint's own description of its layers (the "input" and
"layers" metadata), loaded with load_state_dict(strict=True) from every
*.weight and *.bias tensor (the weights in use), and run in float32.  The
remaining tensors must be the spectral-norm extras of capped layers
(weight_orig, weight_u, weight_v).  Prints one line and exits 0 when the
largest absolute logit difference is at most 1e-4, 1 otherwise.

PyTorch is a test peer only; sectorlab never needs it.
"""
import collections
import json
import struct
import sys

import torch
import torch.nn as nn

TOLERANCE = 1e-4


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        buf = bytearray(data[base + begin:base + end])
        tensors[name] = torch.frombuffer(buf, dtype=torch.float32).reshape(info["shape"])
    return meta, tensors


def parse_layers(text):
    """'conv1:conv:in=3,out=32,...;pool1:maxpool:k=3,...' -> [(name, kind, {key: value})]"""
    layers = []
    for entry in text.split(";"):
        name, kind, args = entry.split(":")
        fields = dict(kv.split("=") for kv in args.split(",") if kv)
        layers.append((name, kind, fields))
    return layers


def build_model(layers):
    modules = collections.OrderedDict()
    for name, kind, a in layers:
        if kind == "conv":
            modules[name] = nn.Conv2d(int(a["in"]), int(a["out"]), int(a["k"]),
                                      stride=int(a["stride"]), padding=int(a["pad"]))
        elif kind == "dense":
            modules[name] = nn.Linear(int(a["in"]), int(a["out"]))
        elif kind == "maxpool":
            modules[name] = nn.MaxPool2d(int(a["k"]), stride=int(a["stride"]),
                                         padding=int(a["pad"]))
        elif kind == "flatten":
            modules[name] = nn.Flatten()
        else:
            raise ValueError(f"unknown layer kind {kind}")
        if kind in ("conv", "dense") and a["act"] == "leaky":
            modules[name + "_act"] = nn.LeakyReLU(float(a["slope"]))
        elif kind in ("conv", "dense") and a["act"] == "tanh":
            modules[name + "_act"] = nn.Tanh()
    return nn.Sequential(modules)


def main():
    if len(sys.argv) != 5:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, images, logits_path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    torch.set_num_threads(1)
    meta, tensors = read_safetensors(path)
    layers = parse_layers(meta["layers"])
    model = build_model(layers)
    # A dense network that starts with a dense layer reads images flat, as
    # sectorlab does; PyTorch needs the flatten spelled out.
    if layers[0][1] == "dense":
        model = nn.Sequential(collections.OrderedDict([("flatten0", nn.Flatten()),
                                                       *model.named_children()]))
    state = {k: v for k, v in tensors.items() if k.endswith(".weight") or k.endswith(".bias")}
    model.load_state_dict(state, strict=True)
    extras = sorted(set(tensors) - set(state))
    for k in extras:
        layer, _, suffix = k.rpartition(".")
        if suffix not in ("weight_orig", "weight_u", "weight_v") or layer + ".weight" not in state:
            raise ValueError(f"unexpected tensor {k}")
    model.eval()

    c, h, w = (int(v) for v in meta["input"].split(","))
    with open(images, "rb") as f:
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(n, c, h, w)
    with open(logits_path, "rb") as f:
        expect = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(n, -1)
    with torch.no_grad():
        got = model(x)
    diff = (got - expect).abs().max().item()
    agree = (got.argmax(1) == expect.argmax(1)).float().mean().item()
    print(f"torch_roundtrip: {meta.get('model', '?')} ({len(state)} tensors loaded strictly, "
          f"{len(extras)} spectral-norm extras), {n} images: max |logit difference| "
          f"{diff:.3g} (tolerance {TOLERANCE:g}), predictions agree on {100 * agree:.1f}%")
    return 0 if diff <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
