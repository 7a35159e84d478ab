"""NumPy references written by hand, independent of indexcalc, shared by the test files:
softmax along the last axis, convolutions as explicit loops, loading a generated module, and
evaluating a generated NumPy expression."""
import importlib.util

import numpy as np


def run_code(code, arrays):
    """The value of indexcalc's NumPy expression `code` with the arrays named as it names them."""
    from indexcalc.printing.numpy_code import py_name
    ns = {"np": np, **{py_name(k): v for k, v in arrays.items()}}
    return np.asarray(eval(code, ns), dtype=float)  # noqa: S307 - indexcalc's own generated code


def softmax(a):
    """Softmax along the last axis (a vector's only axis), shifted by the maximum."""
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def conv1d_valid(h, w):
    """a[n] = Σ_j h[n+j] w[j] over the valid range (0-based), as loops."""
    k = len(w)
    return np.array([sum(h[n + j] * w[j] for j in range(k)) for n in range(len(h) - k + 1)])


def conv2d_valid(X, F, b=None):
    """Y[n,o,i,j] = Σ_{c,p,q} X[n,c,i+p,j+q] F[o,c,p,q] (+ b[o]) over the valid range, as loops."""
    N, C, H, W = X.shape
    O, _, R, S = F.shape
    Y = np.zeros((N, O, H - R + 1, W - S + 1))
    for n in range(N):
        for o in range(O):
            for i in range(H - R + 1):
                for j in range(W - S + 1):
                    Y[n, o, i, j] = np.sum(X[n, :, i:i + R, j:j + S] * F[o])
    return Y if b is None else Y + b[None, :, None, None]


def conv2d_backward_loops(X, F, dY):
    """dX, dF and db of conv2d_valid with upstream dY, as loops."""
    N, C, H, W = X.shape
    O, _, R, S = F.shape
    dX, dF = np.zeros_like(X), np.zeros_like(F)
    for n in range(N):
        for o in range(O):
            for i in range(H - R + 1):
                for j in range(W - S + 1):
                    dX[n, :, i:i + R, j:j + S] += dY[n, o, i, j] * F[o]
                    dF[o] += dY[n, o, i, j] * X[n, :, i:i + R, j:j + S]
    return dX, dF, dY.sum(axis=(0, 2, 3))


def load_module(path, name):
    """Import the Python file at `path` (a generated module, an example) as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hand_backward(name, a, dY):
    """The backward passes of bench/run.py's modules rows as one writes them by hand: the forward
    values are computed here, once (cached, as a module does); the returned function is the
    backward pass alone. name: linear+bias, softmax cross-entropy, LayerNorm, attention."""
    if name == "linear+bias":
        X, W = a["X"], a["W"]
        return lambda: (dY @ W.T, X.T @ dY, dY.sum(axis=0, keepdims=True))
    if name == "softmax cross-entropy":
        Z, T = a["Z"], a["T"]
        e = np.exp(Z - Z.max(axis=1, keepdims=True))
        P = e / e.sum(axis=1, keepdims=True)
        return lambda: (P * T.sum(axis=1, keepdims=True) - T) / Z.shape[0]
    if name == "LayerNorm":
        X, e = a["X"], a["e"]
        xc = X - X.mean(axis=1, keepdims=True)
        s = np.sqrt((xc ** 2).mean(axis=1, keepdims=True) + e)
        xh = xc / s

        def back():
            return (dY - dY.mean(axis=1, keepdims=True) - xh * (dY * xh).mean(axis=1, keepdims=True)) / s
        return back
    Q, K, V = a["Q"], a["K"], a["V"]
    z = Q @ K.T / np.sqrt(Q.shape[1])
    e = np.exp(z - z.max(axis=1, keepdims=True))
    A = e / e.sum(axis=1, keepdims=True)

    def back():
        dA = dY @ V.T
        dS = A * (dA - (A * dA).sum(axis=1, keepdims=True)) / np.sqrt(Q.shape[1])
        return dS @ K, dS.T @ Q, A.T @ dY
    return back


def assert_ruff_clean(paths):
    """`ruff check --isolated` passes on the files (generated modules); skipped without ruff."""
    import shutil
    import subprocess

    import pytest
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    p = subprocess.run([ruff, "check", "--isolated", *map(str, paths)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
