#!/usr/bin/python3
"""PyTorch's side of `make bench`: the same models, batch, optimizer and threads.

usage: bench_torch.py MODEL THREADS

Builds the model sectorlab knows as MODEL (mlp, alexnet-lite, alexnet; the
layer tables of src/model.c, written in the checkpoint "layers" format that
torch_roundtrip.py reads), trains it on random data at batch 128 with the
paper's optimizer (Adam 1e-3 for mlp, SGD 0.01 with momentum 0.9 for the
AlexNets) and prints one line:

    result train=IMAGES_PER_S infer=IMAGES_PER_S rss_mb=PEAK

tests/bench_train.c runs it beside its own figures.  PyTorch is a benchmark
peer only; sectorlab never needs it.
"""
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_roundtrip import build_model, parse_layers  # noqa: E402

BATCH = 128


def alexnet(c1, c2, f1, f2):
    return (f"conv1:conv:in=3,out={c1},k=5,stride=1,pad=2,act=leaky,slope=0.1;"
            f"pool1:maxpool:k=3,stride=2,pad=0;"
            f"conv2:conv:in={c1},out={c2},k=5,stride=1,pad=2,act=leaky,slope=0.1;"
            f"pool2:maxpool:k=3,stride=2,pad=0;flatten1:flatten:;"
            f"fc1:dense:in={c2 * 49},out={f1},act=leaky,slope=0.1;"
            f"fc2:dense:in={f1},out={f2},act=leaky,slope=0.1;"
            f"fc3:dense:in={f2},out=10,act=identity")


MODELS = {
    "mlp": ("fc1:dense:in=784,out=50,act=leaky,slope=0.1;"
            "fc2:dense:in=50,out=20,act=leaky,slope=0.1;"
            "fc3:dense:in=20,out=10,act=identity", (784,)),
    "alexnet": (alexnet(96, 256, 384, 192), (3, 32, 32)),
    "alexnet-lite": (alexnet(32, 64, 128, 64), (3, 32, 32)),
}


def timed(fn, reps, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - t0) / reps)
    return statistics.median(times)


def main():
    name, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    layers, shape = MODELS[name]
    model = build_model(parse_layers(layers))
    if name == "mlp":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(BATCH, *shape) - 0.5
    y = torch.randint(0, 10, (BATCH,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    big = name != "mlp"
    steps, runs = (3 if name == "alexnet" else 10, 3) if big else (100, 7)
    for _ in range(2 if big else 20):
        step()
    train = timed(step, steps, runs)
    model.eval()
    with torch.no_grad():
        model(x)
        infer = timed(lambda: model(x), 3 if big else 200, runs)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"result train={BATCH / train:.1f} infer={BATCH / infer:.1f} rss_mb={rss}")


if __name__ == "__main__":
    main()
