#!/usr/bin/python3
"""Networks built and saved by PyTorch as users save them, for test_torch_interop.

usage: torch_interop.py DATA_DIR OUT_DIR N

Writes into OUT_DIR, for each naming style PyTorch produces, a state_dict
saved with safetensors' save_file (no sectorlab metadata) and the logits
PyTorch computes in eval mode for the first N test images of DATA_DIR
(float32, N x 10), then a manifest, one line per file:

    good STYLE FILE LOGITS ARCH     (ARCH "-": the file fits a built-in model)
    bad  STYLE FILE ARCH MESSAGE    (sectorlab must refuse it, naming MESSAGE)

The networks are trained for a few hundred steps so that certify and attack
see real decision boundaries.  Weights are stored in F32, F16, BF16 or F64;
the logits are PyTorch's with those stored values.  PyTorch is a test peer
only; sectorlab never needs it.
"""
import os
import sys

import torch
import torch.nn as nn
from torch.nn.utils import spectral_norm as old_spectral_norm
from torch.nn.utils.parametrizations import spectral_norm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from from_pytorch import load_mnist, save_file  # noqa: E402


class Named(nn.Module):
    """Modules named fc1, fc2, fc3: the paper's MNIST network's shapes."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 50), nn.Linear(50, 20), nn.Linear(20, 10)

    def forward(self, x):
        x = nn.functional.leaky_relu(self.fc1(x.flatten(1)), 0.1)
        return self.fc3(nn.functional.leaky_relu(self.fc2(x), 0.1))


class Nested(nn.Module):
    """net.0, net.2, ..., net.10: indices past 9 sort as numbers."""

    def __init__(self):
        super().__init__()
        layers = [nn.Linear(784, 40), nn.Tanh()]
        for _ in range(4):
            layers += [nn.Linear(40, 40), nn.Tanh()]
        self.net = nn.Sequential(*layers, nn.Linear(40, 10))

    def forward(self, x):
        return self.net(x.flatten(1))


class Features(nn.Module):
    """torchvision's features / classifier, with spectral norm on a conv."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 5, padding=2), nn.LeakyReLU(0.1), nn.MaxPool2d(2, 2),
            spectral_norm(nn.Conv2d(8, 12, 3, padding=1)), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(nn.Linear(12 * 6 * 6, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def sequential():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 32),
                         nn.ReLU(), nn.Linear(32, 10))


def spectral():
    """Both of PyTorch's spectral norms, and a layer without bias."""
    return nn.Sequential(nn.Flatten(), spectral_norm(nn.Linear(784, 60)), nn.LeakyReLU(0.1),
                         old_spectral_norm(nn.Linear(60, 30)), nn.LeakyReLU(0.1),
                         nn.Linear(30, 10, bias=False))


STYLES = [
    # style, model, dtype, --arch
    ("named", Named, torch.float32, "-"),
    ("sequential", sequential, torch.float16,
     "input 784, dense 64, relu, dense 32, relu, dense 10"),
    ("nested", Nested, torch.bfloat16, "784-40-40-40-40-40-10 with tanh"),
    ("features", Features, torch.float64,
     "conv 8 5x5 pad same, leaky:0.1, maxpool 2x2/2, conv 12 3x3 pad 1, relu, maxpool 3x3/2, "
     "flatten, dense 32, relu, dense 10"),
    ("spectral", spectral, torch.float32, "784-60-30-10"),
]


def nested_arch():
    return "input 784, " + ", ".join(["dense 40, tanh"] * 5) + ", dense 10"


def train(model, x, y, steps=300):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        b = torch.randint(0, len(x), (64,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[b]), y[b]).backward()
        opt.step()


def main():
    data_dir, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.manual_seed(0)
    torch.set_num_threads(1)
    xtr, ytr = load_mnist(data_dir, "train")
    xte, _ = load_mnist(data_dir, "t10k")
    xte = xte[:n]
    lines = []
    for style, make, dtype, arch in STYLES:
        model = make()
        train(model, xtr, ytr)
        model.eval()
        state = {k: v.detach().to(dtype) for k, v in model.state_dict().items()}
        path = os.path.join(out, style + ".safetensors")
        save_file(state, path)
        # PyTorch's logits with the values as stored
        model.load_state_dict({k: v.float() for k, v in state.items()})
        model.eval()
        with torch.no_grad():
            logits = model(xte).float()
        logits_path = os.path.join(out, style + ".logits")
        with open(logits_path, "wb") as f:
            f.write(logits.numpy().astype("<f4").tobytes())
        arch = nested_arch() if style == "nested" else arch
        lines.append(f"good\t{style}\t{path}\t{logits_path}\t{arch}")
        if style == "sequential":
            seq_state = state

    def bad(name, tensors, arch, says):
        path = os.path.join(out, name + ".safetensors")
        save_file(tensors, path)
        lines.append(f"bad\t{name}\t{path}\t{arch}\t{says}")

    s = {k: v.float() for k, v in seq_state.items()}
    bad("no_arch", s, "-", "--arch '784-64-32-10'")
    bad("wrong_width", s, "784-64-30-10", "tensor '3.weight'")
    bad("extra_tensor", dict(s, **{"4.running_mean": torch.zeros(32)}), "-",
        "tensor '4.running_mean'")
    bad("bias_shape", dict(s, **{"3.bias": torch.zeros(31)}), "-", "tensor '3.bias'")
    bad("too_many_layers", s, "784-64-32-20-10", "tensor '5.weight'")
    bad("too_few_layers", s, "784-64-32", "tensor '5.weight' belongs to no layer")
    sn = spectral().state_dict()
    del sn["1.parametrizations.weight.0._u"]
    bad("spectral_no_u", sn, "784-60-30-10", "spectral norm needs")
    bad("int_weight", dict(s, **{"1.weight": s["1.weight"].to(torch.int32)}), "-",
        "tensor '1.weight' is I32")
    with open(os.path.join(out, "manifest"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"torch_interop: {len(STYLES)} networks and {len(lines) - len(STYLES)} bad files "
          f"in {out}")


if __name__ == "__main__":
    main()
