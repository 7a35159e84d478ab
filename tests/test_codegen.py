"""codegen: modules_generated.py is what problems/mlp.toml generates, is deterministic, passes
ruff, and every module's backward agrees with finite differences of its forward."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from indexcalc.codegen import generate

from .conftest import finite_jacobian
from .references import load_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBLEMS = os.path.join(ROOT, "problems", "mlp.toml")


@pytest.fixture(scope="module")
def code():
    return generate(PROBLEMS)


@pytest.fixture(scope="module")
def m(code, tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "modules_generated.py"
    path.write_text(code, encoding="utf-8")
    module = load_module(path, "modules_generated_test")
    return module


def test_generating_twice_gives_the_same_bytes_and_the_committed_file(code):
    assert generate(PROBLEMS) == code
    with open(os.path.join(ROOT, "modules_generated.py"), encoding="utf-8") as f:
        assert f.read() == code, "modules_generated.py is stale: run indexcalc codegen problems/mlp.toml -o modules_generated.py"


def test_generated_file_passes_ruff(tmp_path, code):
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    path = tmp_path / "modules_generated.py"
    path.write_text(code, encoding="utf-8")
    p = subprocess.run([ruff, "check", "--isolated", str(path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def check_module(layer, x, rng, params=()):
    """Backward of Σ dout ∘ forward against central differences, for the input and the params."""
    y = layer.forward(x)
    dout = rng.normal(size=y.shape)
    dx = layer.backward(dout)
    want = finite_jacobian(lambda e: np.sum(dout * layer.forward(e["x"])), {"x": x}, "x")
    assert np.allclose(dx, want, rtol=1e-5, atol=1e-7)
    for key in params:
        original = layer.params[key].copy()

        def f(e):
            layer.params[key] = e["p"]
            return np.sum(dout * layer.forward(x))
        want = finite_jacobian(f, {"p": original}, "p")
        layer.params[key] = original
        assert np.allclose(layer.grads[key], want, rtol=1e-5, atol=1e-7), key


@pytest.mark.parametrize("S,M,N", [(1, 3, 2), (5, 4, 3), (7, 2, 6)])
def test_linear_module(m, S, M, N, rng):
    layer = m.LinearModule(M, N)
    layer.params["bias"] = rng.normal(size=(1, N))
    check_module(layer, rng.normal(size=(S, M)), rng, params=("weight", "bias"))
    assert layer.params["weight"].shape == (N, M) and layer.grads["bias"].shape == (1, N)


@pytest.mark.parametrize("name", ["ReLUModule", "SigmoidModule", "TanhModule", "SoftMaxModule"])
@pytest.mark.parametrize("shape", [(1, 4), (6, 3)])
def test_activation_modules(m, name, shape, rng):
    x = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 2.0, size=shape)
    check_module(getattr(m, name)(), x, rng)


def test_softmax_forward_is_stable(m):
    y = m.SoftMaxModule().forward(np.array([[1000.0, 1000.0, -1000.0]]))
    assert np.all(np.isfinite(y)) and np.allclose(y, [[0.5, 0.5, 0.0]])


def test_cross_entropy_labels_or_one_hot(m, rng):
    x = rng.uniform(0.1, 1.0, size=(5, 4))
    labels = rng.integers(0, 4, size=5)
    onehot = np.eye(4)[labels]
    ce = m.CrossEntropyModule()
    assert np.isclose(ce.forward(x, labels), ce.forward(x, onehot))
    want = finite_jacobian(lambda e: ce.forward(e["x"], labels), {"x": x}, "x")
    assert np.allclose(ce.backward(x, labels), want, atol=1e-7)
    assert np.allclose(ce.backward(x, onehot), want, atol=1e-7)


def test_codegen_cli_writes_the_file(tmp_path):
    out = tmp_path / "modules_generated.py"
    p = subprocess.run([sys.executable, "-m", "indexcalc", "codegen", PROBLEMS, "-o", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert out.read_text(encoding="utf-8") == generate(PROBLEMS)


def test_train_mlp_reaches_95_percent(tmp_path, monkeypatch):
    pytest.importorskip("sklearn", reason="the demo needs scikit-learn (CI installs it)")
    monkeypatch.chdir(tmp_path)
    demo = load_module(os.path.join(ROOT, "examples", "train_mlp.py"), "train_mlp")
    assert demo.main(["--plot", str(tmp_path / "loss.png")]) >= 0.95


def test_numpy_code_broadcasts_a_bias_and_reads_as_written():
    """1 b of a 1×N bias is b, broadcast (no S×N outer product is built); sigmoid(-u) is
    exp(-logaddexp(0, u)); a step is (z > 0); a ones matrix beside a full term is 1. Values
    checked against hand NumPy."""
    from indexcalc import backprop, derive

    from .references import run_code
    rng = np.random.default_rng(1)
    X, W, b, dY = rng.normal(size=(5, 3)), rng.normal(size=(3, 4)), rng.normal(size=(1, 4)), rng.normal(size=(5, 4))
    d = backprop("Y = relu(X W + 1 b)", "W,b", "X: S×M, W: M×N, b: 1×N")
    z = X @ W + b
    for r, want in zip(d.results, (X.T @ ((z > 0) * dY), ((z > 0) * dY).sum(axis=0, keepdims=True))):
        assert "outer" not in r.numpy and "np.ones" not in r.numpy, r.numpy
        assert np.allclose(run_code(r.numpy, {"X": X, "W": W, "b": b, "dY": dY}), want)
    y, w = rng.choice([-1.0, 1.0], size=5), rng.normal(size=3)
    r = derive("sum(log(1 + exp(-y ∘ (X w))))", "w", "X: S×M, w: M, y: S").results[0]
    assert "-(-" not in r.numpy, r.numpy
    want = -X.T @ (y / (1 + np.exp(y * (X @ w))))
    assert np.allclose(run_code(r.numpy, {"X": X, "w": w, "y": y}), want)
    r = backprop("Y = tanh(X)", "X").results[0]
    assert "np.ones" not in r.numpy, r.numpy
    assert np.allclose(run_code(r.numpy, {"X": X, "dY": X[::-1]}), X[::-1] * (1 - np.tanh(X) ** 2))
