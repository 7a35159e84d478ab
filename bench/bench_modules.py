"""Generated backward passes (modules_generated.py) beside hand-written NumPy, one run.

    python bench/bench_modules.py

For the linear (M=256 -> N=128), softmax (C=10) and cross-entropy (C=10) modules at
S = 128, 1024, 4096: the best of several interleaved timings of each backward, and the ratio
generated / hand-written (target <= 1.05).
"""
import importlib.util
import os
import timeit

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_generated():
    spec = importlib.util.spec_from_file_location("modules_generated", os.path.join(ROOT, "modules_generated.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


# ---- hand-written modules, as a course solution writes them (same interface) ----------------
class HandLinear:
    def __init__(self, weight):
        self.params = {"weight": weight, "bias": np.zeros((1, weight.shape[0]))}
        self.grads = {}

    def forward(self, x):
        self.x = x
        return x @ self.params["weight"].T + self.params["bias"]

    def backward(self, dout):
        self.grads["weight"] = dout.T @ self.x
        self.grads["bias"] = dout.sum(axis=0, keepdims=True)
        return dout @ self.params["weight"]


class HandSoftMax:
    def forward(self, x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.y = e / e.sum(axis=1, keepdims=True)
        return self.y

    def backward(self, dout):
        y = self.y
        return y * (dout - (dout * y).sum(axis=1, keepdims=True))


class HandCrossEntropy:
    def backward(self, x, labels):
        t = np.zeros_like(x)
        t[np.arange(x.shape[0]), labels] = 1.0
        return -t / x / x.shape[0]


def best(f, number, repeat=9):
    f()                                   # warm up
    return min(timeit.repeat(f, number=number, repeat=repeat)) / number


def main():
    m = load_generated()
    rng = np.random.default_rng(0)
    rows = []
    for S in (128, 1024, 4096):
        number = max(3, 20000 // S)
        x = rng.normal(size=(S, 256))
        lin = m.LinearModule(256, 128)
        dout = rng.normal(size=(S, 128))
        lin.forward(x)
        hand = HandLinear(lin.params["weight"])
        hand.forward(x)
        rows.append(("linear", S, best(lambda: lin.backward(dout), number),
                     best(lambda: hand.backward(dout), number)))

        z = rng.normal(size=(S, 10))
        sm = m.SoftMaxModule()
        y = sm.forward(z)
        hs = HandSoftMax()
        hs.forward(z)
        d = rng.normal(size=(S, 10))
        rows.append(("softmax", S, best(lambda: sm.backward(d), number), best(lambda: hs.backward(d), number)))

        probs = y
        labels = rng.integers(0, 10, size=S)
        ce = m.CrossEntropyModule()
        hc = HandCrossEntropy()
        rows.append(("cross-entropy", S, best(lambda: ce.backward(probs, labels), number),
                     best(lambda: hc.backward(probs, labels), number)))
    print(f"{'module':<14} {'S':>5} {'generated':>12} {'hand-written':>13} {'ratio':>7}")
    for name, S, g, h in rows:
        print(f"{name:<14} {S:>5} {g * 1e6:>10.1f}us {h * 1e6:>11.1f}us {g / h:>7.2f}")


if __name__ == "__main__":
    main()
