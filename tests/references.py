"""NumPy references written by hand, independent of indexcalc, shared by the test files:
softmax along the last axis, convolutions as explicit loops, and loading a generated module."""
import importlib.util

import numpy as np


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
