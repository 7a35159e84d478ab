"""Numerical values of expression trees: the reference the numerical guard differentiates.

Independent of the index machinery: every node is evaluated with plain NumPy on 2-D
arrays (a column vector is (n, 1), a scalar (1, 1)).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from . import functions as F
from . import nodes as N
from .nodes import kind_of  # noqa: F401 - re-exported for verify and pipeline


def to_2d(value, variable) -> np.ndarray:
    a = np.asarray(value, dtype=float)
    if variable.kind == "scalar":
        return a.reshape(1, 1)
    if variable.kind == "vector":
        return a.reshape(-1, 1)
    return a.reshape(a.shape[0], -1) if a.ndim == 2 else a.reshape(1, -1)


def from_2d(a: np.ndarray, kind: str):
    if kind == "scalar":
        return float(a.reshape(-1)[0])
    if kind == "vector":
        return a.reshape(-1)
    return a


def evaluate(node: N.Node, env2d: dict, sizes: dict) -> np.ndarray:
    """The value of node (2-D) with variables bound in env2d (2-D arrays) and sizes bound."""
    return EVAL[type(node)](node, env2d, sizes)


def _ev(n, env, sizes):
    return evaluate(n, env, sizes)


def _num(n, env, sizes):
    v = float(Fraction(n.value)) if not isinstance(n.value, float) else n.value
    return np.array([[v]])


def _size(d, sizes):
    return N.size_value(d, sizes)


def _conv(n, env, sizes):
    x, w = _ev(n.a, env, sizes)[:, 0], _ev(n.b, env, sizes)[:, 0]
    return np.correlate(x, w, n.mode).reshape(-1, 1)


def _softmax(n, env, sizes):
    a = _ev(n.a, env, sizes)
    axis = 1 if a.shape[1] != 1 else 0
    z = np.exp(a - a.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def _scalar(x):
    return np.array([[x]])


def _power(n, env, sizes):
    return np.power(_ev(n.a, env, sizes), _ev(n.p, env, sizes)[0, 0])


def _matmul(n, env, sizes):
    a, b = _ev(n.a, env, sizes), _ev(n.b, env, sizes)
    return a @ b


def _scalarmul(n, env, sizes):
    return _ev(n.s, env, sizes)[0, 0] * _ev(n.a, env, sizes)


EVAL = {
    N.Sym: lambda n, env, s: env[n.name],
    N.Num: _num,
    N.Size: lambda n, env, s: _scalar(float(s[n.name])),
    N.Ones: lambda n, env, s: np.ones((_size(n.shape[0], s), 1)),
    N.Identity: lambda n, env, s: np.eye(_size(n.shape[0], s)),
    N.MatMul: _matmul,
    N.ScalarMul: _scalarmul,
    N.Div: lambda n, env, s: _ev(n.a, env, s) / _ev(n.s, env, s)[0, 0],
    N.Add: lambda n, env, s: _ev(n.a, env, s) + _ev(n.b, env, s),
    N.Sub: lambda n, env, s: _ev(n.a, env, s) - _ev(n.b, env, s),
    N.Neg: lambda n, env, s: -_ev(n.a, env, s),
    N.Transpose: lambda n, env, s: _ev(n.a, env, s).T,
    N.Inverse: lambda n, env, s: np.linalg.inv(_ev(n.a, env, s)),
    N.MatPow: lambda n, env, s: np.linalg.matrix_power(_ev(n.a, env, s), n.k),
    N.Power: _power,
    N.Hadamard: lambda n, env, s: _ev(n.a, env, s) * _ev(n.b, env, s),
    N.HadDiv: lambda n, env, s: _ev(n.a, env, s) / _ev(n.b, env, s),
    N.HadPow: _power,
    N.Trace: lambda n, env, s: _scalar(np.trace(_ev(n.a, env, s))),
    N.Det: lambda n, env, s: _scalar(np.linalg.det(_ev(n.a, env, s))),
    N.LogDet: lambda n, env, s: _scalar(np.log(np.linalg.det(_ev(n.a, env, s)))),
    N.Norm: lambda n, env, s: _scalar(np.linalg.norm(_ev(n.a, env, s))),
    N.Norm2: lambda n, env, s: _scalar(np.sum(_ev(n.a, env, s) ** 2)),
    N.SumAll: lambda n, env, s: _scalar(np.sum(_ev(n.a, env, s))),
    N.SumAxis: lambda n, env, s: np.sum(_ev(n.a, env, s), axis=n.axis, keepdims=True),
    N.Mean: lambda n, env, s: _scalar(np.mean(_ev(n.a, env, s))),
    N.MeanAxis: lambda n, env, s: np.mean(_ev(n.a, env, s), axis=n.axis, keepdims=True),
    N.Func: lambda n, env, s: F.numpy_value(n.name)(_ev(n.a, env, s)),
    N.Softmax: _softmax,
    N.RowMax: lambda n, env, s: np.max(_ev(n.a, env, s), axis=1, keepdims=True),
    N.DiagMat: lambda n, env, s: np.diag(_ev(n.a, env, s)[:, 0]),
    N.DiagVec: lambda n, env, s: np.diag(_ev(n.a, env, s)).reshape(-1, 1),
    N.Conv: _conv,
    N.Flip: lambda n, env, s: _ev(n.a, env, s)[::-1].copy(),
}
