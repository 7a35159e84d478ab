"""Train a small CNN built from the generated modules on scikit-learn's 8×8 digits.

    indexcalc codegen problems/cnn_attention.toml -o modules_cnn_generated.py   # optional
    python examples/train_cnn.py

conv 3×3 (1 → 16 channels) → ReLU → conv 3×3 (16 → 16) → ReLU → linear (16·4·4 → 10) → softmax,
cross-entropy, mini-batch SGD with momentum. The convolution is the Conv2dModule that indexcalc
generates from the index-notation problem `conv2d` of problems/cnn_attention.toml (its forward and
backward passes are einsum over window views, derived and checked against finite differences);
the ReLU, linear, softmax and cross-entropy modules are modules_generated.py's
(problems/mlp.toml), as in examples/train_mlp.py. Prints the loss and the test accuracy of every
epoch and, last, the test accuracy. The digits ship inside scikit-learn: no download.
"""
import argparse
import importlib.util
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_modules():
    """(the MLP's modules, the convolution's): each from its generated file in the current
    directory or the repository root, generated from its problem file when there is none."""
    from indexcalc.codegen import generate
    out = []
    for fname, problems in (("modules_generated.py", "mlp.toml"), ("modules_cnn_generated.py", "cnn_attention.toml")):
        for where in (os.getcwd(), ROOT):
            path = os.path.join(where, fname)
            if os.path.exists(path):
                out.append(_load(path, fname[:-3]))
                break
        else:
            print(f"generating the modules of problems/{problems} (indexcalc codegen) ...", file=sys.stderr)
            import tempfile
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, fname)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(generate(os.path.join(ROOT, "problems", problems)))
                out.append(_load(path, fname[:-3]))
    return out


def load_digits(seed, subset=None):
    """Images (n, 1, 8, 8) scaled to [0, 1] and centred by the training set's mean; 20% held out."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        sys.exit("this example needs scikit-learn: pip install -e \".[examples]\"")
    data = sk_digits()
    x, y = data.images / 16.0, data.target
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order][:, None, :, :], y[order]
    n_test = len(y) // 5
    x_train, y_train, x_test, y_test = x[n_test:], y[n_test:], x[:n_test], y[:n_test]
    if subset:
        x_train, y_train = x_train[:subset], y_train[:subset]
    mean = x_train.mean()
    return (x_train - mean, y_train), (x_test - mean, y_test)


class Flatten:
    """(n, c, h, w) -> (n, c·h·w) for the linear layer, and back."""

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.shape)


class CNN:
    def __init__(self, mlp, cnn, channels=16, n_classes=10):
        self.layers = [cnn.Conv2dModule(1, channels, 3, 3, input_layer=True), mlp.ReLUModule(),
                       cnn.Conv2dModule(channels, channels, 3, 3), mlp.ReLUModule(), Flatten(),
                       mlp.LinearModule(channels * 4 * 4, n_classes), mlp.SoftMaxModule()]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self):
        for layer in self.layers:
            for key in getattr(layer, "params", {}):
                yield layer, key


def accuracy(net, x, y, batch=256):
    hits = 0
    for start in range(0, len(y), batch):
        hits += int(np.sum(np.argmax(net.forward(x[start:start + batch]), axis=1) == y[start:start + batch]))
    return hits / len(y)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--subset", type=int, default=None, help="train on the first N training images only")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    np.random.seed(args.seed)
    t0 = time.perf_counter()
    mlp, cnn = load_modules()
    (x_train, y_train), (x_test, y_test) = load_digits(args.seed, args.subset)
    net, loss_fn = CNN(mlp, cnn, args.channels), mlp.CrossEntropyModule()
    velocity = {(id(layer), key): np.zeros_like(layer.params[key]) for layer, key in net.parameters()}
    rng = np.random.default_rng(args.seed)
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(y_train))
        total = 0.0
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            x, y = x_train[batch], y_train[batch]
            probs = net.forward(x)
            total += loss_fn.forward(probs, y) * len(batch)
            net.backward(loss_fn.backward(probs, y))
            for layer, key in net.parameters():
                v = velocity[(id(layer), key)]
                v *= args.momentum
                v -= args.lr * layer.grads[key]
                layer.params[key] += v
        acc = accuracy(net, x_test, y_test)
        print(f"epoch {epoch:2d}  loss {total / len(y_train):.4f}  test accuracy {acc:.3f}  "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    print(f"test accuracy: {acc:.3f}")
    return acc


if __name__ == "__main__":
    main()
