"""Train an MLP built only from the generated modules on scikit-learn's 8×8 digits.

    indexcalc codegen problems/mlp.toml -o modules_generated.py
    python examples/train_mlp.py

One hidden layer of 128 ReLU units, softmax and cross-entropy, mini-batch SGD with learning
rate 0.1 for 10 epochs (the seed's defaults). The digits ship inside scikit-learn: no download.
Prints the loss of every epoch and, last, the test accuracy; saves the loss curve as
loss_curve.png (--plot PATH, or --plot '' for none) when matplotlib is installed, and says so.
"""
import argparse
import importlib.util
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_modules():
    """modules_generated.py from the current directory or the repository root; generated
    from problems/mlp.toml when neither has it."""
    for where in (os.getcwd(), ROOT):
        path = os.path.join(where, "modules_generated.py")
        if os.path.exists(path):
            break
    else:
        from indexcalc.codegen import generate
        path = os.path.join(ROOT, "modules_generated.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(generate(os.path.join(ROOT, "problems", "mlp.toml")))
    spec = importlib.util.spec_from_file_location("modules_generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_digits(seed):
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        sys.exit("this example needs scikit-learn: pip install -e \".[examples]\"")
    data = sk_digits()
    x, y = data.data / 16.0, data.target
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    n_test = len(y) // 5
    x_train, x_test = x[n_test:], x[:n_test]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8     # standardise by the training set
    return ((x_train - mean) / std, y[n_test:]), ((x_test - mean) / std, y[:n_test])


class MLP:
    def __init__(self, m, n_inputs, n_hidden, n_classes):
        self.layers = [m.LinearModule(n_inputs, n_hidden, input_layer=True), m.ReLUModule(),
                       m.LinearModule(n_hidden, n_classes), m.SoftMaxModule()]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def step(self, lr):
        for layer in self.layers:
            for key, value in getattr(layer, "params", {}).items():
                value -= lr * layer.grads[key]


def save_plot(losses, path):
    """The loss curve as an image; says where it went (or why there is none) on stderr."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no loss curve: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
        return
    fig = plt.figure()
    plt.plot(range(1, len(losses) + 1), losses, marker="o")
    plt.xlabel("epoch")
    plt.ylabel("training loss")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote the loss curve to {os.path.abspath(path)}", file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--plot", default="loss_curve.png",
                    help="where to save the loss curve (needs matplotlib); '' for none")
    args = ap.parse_args(argv)

    np.random.seed(args.seed)
    m = load_modules()
    (x_train, y_train), (x_test, y_test) = load_digits(args.seed)
    net, loss_fn = MLP(m, x_train.shape[1], args.hidden, 10), m.CrossEntropyModule()
    rng = np.random.default_rng(args.seed)
    losses = []
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(y_train))
        total = 0.0
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            x, y = x_train[batch], y_train[batch]
            probs = net.forward(x)
            total += loss_fn.forward(probs, y) * len(batch)
            net.backward(loss_fn.backward(probs, y))
            net.step(args.lr)
        losses.append(total / len(y_train))
        print(f"epoch {epoch:2d}  loss {losses[-1]:.4f}")
    accuracy = float(np.mean(np.argmax(net.forward(x_test), axis=1) == y_test))
    if args.plot:
        save_plot(losses, args.plot)
    print(f"test accuracy: {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
