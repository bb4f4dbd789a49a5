#!/usr/bin/python3
"""PyTorch's side of `make bench`: the same models, batch, optimizer and threads.

usage: bench_torch.py MODEL THREADS

Builds the model sectorlab knows as MODEL (mlp, alexnet-lite, alexnet; the
layer tables of src/model.c, written in the checkpoint "layers" format that
torch_roundtrip.py reads), trains it on random images at batch 128 with the
paper's optimizer (Adam 1e-3 for mlp, SGD 0.01 with momentum 0.9 for the
AlexNets) and prints one line:

    result train=IMAGES_PER_S core=IMAGES_PER_S infer=IMAGES_PER_S rss_mb=PEAK

(train assembles each batch from a shuffled uint8 training set, as sectorlab's
trainer does; core repeats one fixed batch.)

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
    "alexnet-lite": (alexnet(64, 128, 256, 128), (3, 32, 32)),
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
    # A training set of random bytes the size of MNIST's or CIFAR-10's, batched
    # in a shuffled order and scaled to x/255 - 0.5 at each step, as sectorlab
    # does (so both sides pay for assembling their batches).
    n = 55000 if name == "mlp" else 50000
    pixels = torch.randint(0, 256, (n, *shape), dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,))
    order = torch.randperm(n)
    pos = [0]
    loss_fn = nn.CrossEntropyLoss()

    def step():
        if pos[0] + BATCH > n:
            pos[0] = 0
        idx = order[pos[0]:pos[0] + BATCH]
        pos[0] += BATCH
        xb = pixels[idx].float() / 255 - 0.5
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xb), labels[idx]).backward()
        opt.step()

    big = name != "mlp"
    steps, runs = (3 if name == "alexnet" else 10, 3) if big else (430, 9)
    for _ in range(2 if big else 30):
        step()
    train = timed(step, steps, runs)
    xb, yb = pixels[:BATCH].float() / 255 - 0.5, labels[:BATCH]

    def core_step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xb), yb).backward()
        opt.step()

    core = timed(core_step, steps if big else 200, runs)
    model.eval()
    x = pixels[:BATCH].float() / 255 - 0.5
    with torch.no_grad():
        model(x)
        infer = timed(lambda: model(x), 3 if big else 200, runs)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"result train={BATCH / train:.1f} core={BATCH / core:.1f} infer={BATCH / infer:.1f} "
          f"rss_mb={rss}")


if __name__ == "__main__":
    main()
