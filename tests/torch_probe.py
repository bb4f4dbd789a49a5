#!/usr/bin/python3
"""PyTorch's run of the README's MNIST recipes, to check the figures it quotes.

usage: torch_probe.py [--data DIR] [--seeds 1,2,3] [--epochs 10] RECIPE...

Trains the mlp (784-50-20-10, leaky ReLU 0.1 on the hidden layers, identity
output) on full MNIST as sectorlab does: Glorot-uniform weights, zero
biases, Adam 1e-3, batch 128 (the last batch of an epoch short), pixels
scaled to x/255 - 0.5, the first 5,000 of the 60,000 training images held
out and the other 55,000 shuffled each epoch, then tests on all 10,000 test
images.  RECIPE is one or more of

    vanilla          plain cross-entropy, no caps
    spnorm-authors   the authors' caps (1.8, 1.8, 0.9204), cross-entropy
    lmt-certified    the caps `sectorlab allocate --nu -2 --delta 0.4`
                     prints, with the Lipschitz-margin loss (lmt) at
                     sectorlab's defaults, tau 50 and target radius 0.6

A capped layer computes with W / max(sigma / rho, 1): during training sigma
is u^T W v after one power-iteration step on persistent unit vectors u, v
(random at the start), with the gradient flowing through sigma and u, v held
constant; for the test the exact norm (torch.linalg.matrix_norm) replaces it,
so every cap holds for the network that is tested.  lmt is cross-entropy on
tau * (z - m e_y), m = sqrt(2) * R * L, L the product of the capped layers'
norms in use (min(sigma, rho) each, the gradient flowing through the ones
under their cap), as src/loss.c computes it (DESIGN.md section 6).

Prints one line per recipe and seed: the test accuracy and, for capped
recipes, the share of test images certified at L2 radius 0.5 (classified
correctly with z_y - max_{j != y} z_j > sqrt(2) * gamma * 0.5, gamma the
product of the tested layers' exact norms, with no allowance for rounding);
then the range over the seeds for each recipe.  DIR (default
$SECTORLAB_DATA, else ../shared/data) holds MNIST's four IDX files, gzipped
or not, itself or in its mnist/ folder.

PyTorch is a test peer only; sectorlab never needs it.
"""
import argparse
import gzip
import math
import os
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 128
LR = 1e-3
HELD_OUT = 5000
SLOPE = 0.1
SIZES = (784, 50, 20, 10)
CERT_RADIUS = 0.5
TAU = 50.0
TARGET_RADIUS = 0.6
# `sectorlab allocate --nu -2 --delta 0.4` (its --json rho values); product 0.1379.
CERTIFIED_CAPS = (0.2719810602, 0.8230756778, 0.61609737)
AUTHORS_CAPS = (1.8, 1.8, 0.9204)
RECIPES = {
    "vanilla": (None, "ce"),
    "spnorm-authors": (AUTHORS_CAPS, "ce"),
    "lmt-certified": (CERTIFIED_CAPS, "lmt"),
}
FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def read_idx(path):
    """An IDX file (gzipped or not) as a uint8 tensor: (count, rows * cols) or (count,)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    magic, count = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        body, shape = data[16:], (count, rows * cols)
    elif magic == 0x801:
        body, shape = data[8:], (count,)
    else:
        raise ValueError(f"{path}: not an IDX image or label file (magic {magic:#x})")
    if len(body) != math.prod(shape):
        raise ValueError(f"{path}: {len(body)} bytes of data for shape {shape}")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


def find_file(root, name):
    for folder in (os.path.join(root, "mnist"), root):
        for candidate in (name, name + ".gz"):
            path = os.path.join(folder, candidate)
            if os.path.exists(path):
                return path
    raise FileNotFoundError(f"{name}(.gz) in neither {root}/mnist nor {root}")


def load_mnist(root):
    d = {key: read_idx(find_file(root, name)) for key, name in FILES.items()}
    return ((d["train_x"][HELD_OUT:], d["train_y"][HELD_OUT:].long()),
            (d["test_x"], d["test_y"].long()))


def pixels(x):
    return x.float() / 255 - 0.5


class CappedDense(nn.Module):
    """A dense layer whose weight in use is W / max(sigma / rho, 1) (rho None: W)."""

    def __init__(self, n_in, n_out, rho):
        super().__init__()
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_out, n_in)))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.rho = rho
        self.register_buffer("u", F.normalize(torch.randn(n_out), dim=0))
        self.register_buffer("v", F.normalize(torch.randn(n_in), dim=0))

    def sigma(self, exact):
        if exact:
            return torch.linalg.matrix_norm(self.weight.detach(), 2)
        with torch.no_grad():
            self.v.copy_(F.normalize(self.weight.t() @ self.u, dim=0))
            self.u.copy_(F.normalize(self.weight @ self.v, dim=0))
        return self.u @ self.weight @ self.v

    def forward(self, x, exact=False):
        """Returns the output and the norm of the weight in use (None without a cap)."""
        if self.rho is None:
            return F.linear(x, self.weight, self.bias), None
        sigma = self.sigma(exact)
        weight = self.weight / torch.clamp(sigma / self.rho, min=1.0)
        return F.linear(x, weight, self.bias), torch.minimum(sigma, sigma.new_tensor(self.rho))


class Mlp(nn.Module):
    def __init__(self, caps):
        super().__init__()
        caps = caps or (None,) * (len(SIZES) - 1)
        self.layers = nn.ModuleList(CappedDense(a, b, rho)
                                    for a, b, rho in zip(SIZES, SIZES[1:], caps))

    def forward(self, x, exact=False):
        """Returns the logits and the product of the capped layers' norms (None if uncapped)."""
        bound = None
        for i, layer in enumerate(self.layers):
            x, norm = layer(x, exact)
            if i + 1 < len(self.layers):
                x = F.leaky_relu(x, SLOPE)
            if norm is not None:
                bound = norm if bound is None else bound * norm
        return x, bound


def lmt_loss(z, y, bound):
    """Cross-entropy on tau * (z - m e_y), m = sqrt(2) * R * bound (src/loss.c)."""
    margin = math.sqrt(2) * TARGET_RADIUS * bound
    return F.cross_entropy(TAU * (z - F.one_hot(y, z.shape[1]) * margin), y)


def train(model, loss_kind, data, epochs):
    x, y = data
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for start in range(0, len(y), BATCH):
            idx = order[start:start + BATCH]
            z, bound = model(pixels(x[idx]))
            if loss_kind == "lmt":
                loss = lmt_loss(z, y[idx], bound)
            else:
                loss = F.cross_entropy(z, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


@torch.no_grad()
def evaluate(model, data):
    """Test accuracy, share certified at CERT_RADIUS (None if uncapped) and gamma."""
    x, y = data
    z, gamma = model(pixels(x), exact=True)
    correct = z.argmax(1) == y
    accuracy = correct.float().mean().item()
    if gamma is None:
        return accuracy, None, None
    gamma = gamma.item()
    zy = z.gather(1, y[:, None])[:, 0]
    others = z.scatter(1, y[:, None], float("-inf")).max(1).values
    certified = correct & (zy - others > math.sqrt(2) * gamma * CERT_RADIUS)
    return accuracy, certified.float().mean().item(), gamma


def run(recipe, seed, train_data, test_data, epochs):
    caps, loss_kind = RECIPES[recipe]
    torch.manual_seed(seed)
    model = Mlp(caps)
    t0 = time.perf_counter()
    train(model, loss_kind, train_data, epochs)
    accuracy, certified, gamma = evaluate(model, test_data)
    line = f"{recipe} seed {seed}: test accuracy {100 * accuracy:.2f}%"
    if certified is not None:
        line += f", certified at L2 {CERT_RADIUS:g} {100 * certified:.2f}% (gamma {gamma:.4f})"
    print(f"{line} ({time.perf_counter() - t0:.1f} s)", flush=True)
    return accuracy, certified


def span(values):
    return f"{100 * min(values):.1f}-{100 * max(values):.1f}%"


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SECTORLAB_DATA", "../shared/data"))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("recipes", metavar="RECIPE", nargs="+", choices=sorted(RECIPES))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    train_data, test_data = load_mnist(args.data)
    t0 = time.perf_counter()
    results = {r: [run(r, s, train_data, test_data, args.epochs) for s in seeds]
               for r in args.recipes}
    for recipe, rows in results.items():
        line = f"summary {recipe}, seeds {args.seeds}: test accuracy {span([a for a, _ in rows])}"
        if rows[0][1] is not None:
            line += f", certified at L2 {CERT_RADIUS:g} {span([c for _, c in rows])}"
        print(line)
    print(f"wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
