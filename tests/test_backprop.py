"""backprop of network modules: every gradient against finite differences of Σ dY ∘ f, with
NumPy references written here (independent of indexcalc)."""
import numpy as np
import pytest

from indexcalc import backprop

from .conftest import finite_jacobian
from .references import softmax as softmax_rows


def relu(x):
    return np.maximum(x, 0)


def away(shape, rng):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 1.3, size=shape)


def onehot(shape, rng):
    t = np.zeros(shape)
    t[np.arange(shape[0]), rng.integers(0, shape[1], size=shape[0])] = 1.0
    return t


LIN = "X: S×M, W: N×M, b: 1×N"
MODULES = [
    # equation, wrt, where, shapes (output last as d<name>), reference of the right side
    ("Y = X W^T + b", "W,b,X", LIN, {"X": (4, 3), "W": (2, 3), "b": (1, 2), "dY": (4, 2)},
     lambda e: e["X"] @ e["W"].T + e["b"]),
    ("Y = X W + b", "W,b,X", "X: S×M, W: M×N, b: 1×N", {"X": (4, 3), "W": (3, 2), "b": (1, 2), "dY": (4, 2)},
     lambda e: e["X"] @ e["W"] + e["b"]),
    ("Y = relu(X)", "X", None, {"X": (3, 4), "dY": (3, 4)}, lambda e: relu(e["X"])),
    ("Y = sigmoid(X)", "X", None, {"X": (3, 4), "dY": (3, 4)}, lambda e: 1 / (1 + np.exp(-e["X"]))),
    ("Y = tanh(X)", "X", None, {"X": (3, 4), "dY": (3, 4)}, lambda e: np.tanh(e["X"])),
    ("Y = softmax(X)", "X", None, {"X": (3, 4), "dY": (3, 4)}, lambda e: softmax_rows(e["X"])),
    ("Y = X + relu(X W1^T + b1) W2^T + b2", "X,W1,b1,W2,b2", "X: S×M, W1: H×M, b1: 1×H, W2: M×H, b2: 1×M",
     {"X": (4, 3), "W1": (5, 3), "b1": (1, 5), "W2": (3, 5), "b2": (1, 3), "dY": (4, 3)},
     lambda e: e["X"] + relu(e["X"] @ e["W1"].T + e["b1"]) @ e["W2"].T + e["b2"]),
    # LayerNorm and BatchNorm as users write them, with NumPy's var and std (ddof 0): "unknown function"
    ("Y = (X - mean(X, 1)) ⊘ sqrt(var(X, 1) + 1e-5) ∘ g + b", "X,g,b", "X: S×N, g: 1×N, b: 1×N",
     {"X": (4, 5), "g": (1, 5), "b": (1, 5), "dY": (4, 5)},
     lambda e: (e["X"] - e["X"].mean(1, keepdims=True)) / np.sqrt(e["X"].var(1, keepdims=True) + 1e-5) * e["g"] + e["b"]),
    ("Y = (X - mean(X, 0)) ⊘ std(X, 0)", "X", "X: S×N", {"X": (4, 3), "dY": (4, 3)},
     lambda e: (e["X"] - e["X"].mean(0)) / e["X"].std(0)),
    ("y = (x - mean(x)) / sqrt(var(x) + 1e-5)", "x", "x: n", {"x": (5,), "dy": (5,)},
     lambda e: (e["x"] - e["x"].mean()) / np.sqrt(e["x"].var() + 1e-5)),
    ("a = conv(h, w)", "h,w", "h: d, w: k", {"h": (7,), "w": (3,), "da": (5,)},
     lambda e: np.correlate(e["h"], e["w"], "valid")),
    ("a = conv_full(h, w)", "h,w", "h: d, w: k", {"h": (6,), "w": (3,), "da": (8,)},
     lambda e: np.correlate(e["h"], e["w"], "full")),
    ("a = conv(relu(h), flip(w))", "h,w", "h: d, w: k", {"h": (7,), "w": (3,), "da": (5,)},
     lambda e: np.correlate(relu(e["h"]), e["w"][::-1], "valid")),
]


@pytest.mark.parametrize("eq,wrt,where,shapes,ref", MODULES, ids=[m[0] for m in MODULES])
def test_module_gradients_match_finite_differences(eq, wrt, where, shapes, ref, rng):
    d = backprop(eq, wrt, where)
    up = "d" + eq.split("=")[0].strip()
    env = {n: away(s, rng) for n, s in shapes.items()}
    loss = lambda e: float(np.sum(e[up] * ref(e)))
    for r in d.results:
        got = np.asarray(eval(r.numpy, {"np": np, **env}), dtype=float)
        want = finite_jacobian(loss, env, r.wrt)
        assert got.shape == want.shape, (eq, r.wrt, r.numpy)
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), (eq, r.wrt, r.numpy)


def test_cross_entropy_loss_needs_no_upstream(rng):
    d = backprop("L = -sum(T ∘ log(X)) / S", "X", "X: S×C, T: S×C")
    X, T = rng.uniform(0.2, 1.0, size=(4, 3)), onehot((4, 3), rng)
    got = eval(d.numpy, {"np": np, "X": X, "T": T})
    want = finite_jacobian(lambda e: -np.sum(e["T"] * np.log(e["X"])) / 4, {"X": X, "T": T}, "X")
    assert np.allclose(got, want, atol=1e-6)


def test_seed_003_convolution_closed_forms():
    """Seed 003, question 6: ∇h = ∇a ~* flip(w) for a valid convolution, ∇a * flip(w) for a full one."""
    assert backprop("a = conv(h, w)", "h", "h: d, w: k").closed_form == "conv_full(da, flip(w))"
    assert backprop("a = conv_full(h, w)", "h", "h: d, w: k").closed_form == "conv(da, flip(w))"
    assert backprop("a = conv(h, w)", "w", "h: d, w: k").closed_form == "conv(h, da)"


def test_seed_003_sift_over_a_shifted_index():
    r = backprop("a = conv(h, w)", "h", "h: d, w: k").results[0]
    kron = next(s for s in r.steps if s.rule == "kronecker")
    assert "δ_{i,p+q-1}" in kron.text          # δ_{n,i+j-1} in the seed's letters


def test_softmax_backward_written_with_the_output(capsys, rng):
    """The folded form reads as the issue writes it, and its numbers are the gradient's."""
    from indexcalc.cli import main
    from indexcalc.evaluate import evaluate
    from indexcalc.fold import folded_forms
    assert main(["backprop", "Y = softmax(X)", "--wrt", "X"]) == 0
    assert "written with Y: Y ∘ (dY - (dY ∘ Y) 1 1^T)" in capsys.readouterr().out
    d = backprop("Y = softmax(X)", "X")
    X, dY = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    sizes = {"n": 4, "m": 3}
    got = evaluate(folded_forms(d)["X"], {"X": X, "dY": dY, "Y": softmax_rows(X)}, sizes)
    want = finite_jacobian(lambda e: np.sum(e["dY"] * softmax_rows(e["X"])), {"X": X, "dY": dY}, "X")
    assert np.allclose(got, want, atol=1e-7)


def test_softmax_cross_entropy_under_rows_summing_to_one(capsys, rng):
    """(softmax(X) - T)/S holds when T 1 = 1; the general form holds for any T."""
    from indexcalc.cli import main
    argv = ["backprop", "L = -sum(T ∘ log(softmax(X))) / S", "--wrt", "X", "--where", "X: S×C, T: S×C"]
    assert main(argv + ["--assume", "T 1 = 1"]) == 0
    assert "if T 1 = 1: (softmax(X) - T) / S" in capsys.readouterr().out
    X, T = rng.normal(size=(4, 3)), onehot((4, 3), rng)
    want = finite_jacobian(lambda e: -np.sum(e["T"] * np.log(softmax_rows(e["X"]))) / 4, {"X": X, "T": T}, "X")
    assert np.allclose((softmax_rows(X) - T) / 4, want, atol=1e-7)
    assert main(argv + ["--assume", "T = 1"]) == 2
