"""The value of a typed tree of the matrix language on tensors (SPEC §1.2), with NumPy's own
operations: np.matmul for products, np.swapaxes for ^T, NumPy's broadcasting, the stable
softmax along the last axis, np.sum along an axis.

This is the numerical guard's reference for tensor input: it evaluates the user's tree as
read, never our index lowering of it (index_form.py), so a lowering bug cannot check itself.

Values are held as NumPy arrays in NumPy's layout (a scalar 0-d, a column vector 1-D, a row
vector (1, n)), except that a subtree of rank ≤ 2 is evaluated by the matrix language's own
evaluator (evaluate.py, 2-D layout) when it holds no tensor.
"""
from __future__ import annotations

import contextvars
from fractions import Fraction

import numpy as np

from . import functions as F
from . import nodes as N
from .errors import UnsupportedError
from .layout import array_shape


def _has_tensor(node) -> bool:
    return any(n.shape is not None and len(n.shape) > 2 for n in node.walk())


# A batched closed form (batch.py) holds a batch of columns as (..., m, 1) and a shared
# column vector as (m, 1), as the 2-D engine does; the user's input holds a column vector 1-D
# (NumPy's meaning, SPEC §1.2). `columns` says which reading applies.
_COLUMNS = contextvars.ContextVar("columns", default=False)


def closed_value(node: N.Node, env: dict, sizes: dict) -> np.ndarray:
    """The value of a batched closed form (its columns 2-D, as the engine holds them)."""
    token = _COLUMNS.set(True)
    try:
        return value(node, env, sizes)
    finally:
        _COLUMNS.reset(token)


def _layout(shape) -> tuple:
    if _COLUMNS.get() and len(shape) == 2:
        return () if tuple(shape) == N.SCALAR else tuple(shape)
    return array_shape(shape)


def value(node: N.Node, env: dict, sizes: dict) -> np.ndarray:
    """The value of node in NumPy layout; env holds each variable in NumPy layout."""
    if not _has_tensor(node):
        from .evaluate import evaluate
        env2d = {k: _to_2d(v, node_shape) for k, v, node_shape in _env2d_items(node, env)}
        out = evaluate(node, env2d, sizes)
        return np.asarray(out).reshape(()) if node.shape == N.SCALAR else \
            out if _COLUMNS.get() else _from_2d(out, node.shape)
    rule = RULES.get(type(node))
    if rule is None:
        raise UnsupportedError(f"{type(node).__name__} of a tensor has no NumPy evaluation here")
    out = np.asarray(rule(node, env, sizes), dtype=float)
    want = tuple(N.size_value(d, sizes) for d in _layout(node.shape))
    if out.shape != want:                      # a bug of the shape inference, never reshaped away
        raise UnsupportedError(f"internal: {type(node).__name__} evaluates to shape {out.shape}, not {want}")
    return out


def _env2d_items(node, env):
    for n in node.walk():
        if isinstance(n, N.Sym) and n.name in env:
            yield n.name, env[n.name], n.shape


def _to_2d(v, shape):
    a = np.asarray(v, dtype=float)
    if tuple(shape) == N.SCALAR:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(-1, 1)
    return a


def _from_2d(a, shape):
    a = np.asarray(a, dtype=float)
    if tuple(shape) == N.SCALAR:
        return a.reshape(())
    if len(shape) == 2 and shape[1] == 1 and shape[0] != 1:
        return a.reshape(-1)
    return a


def _v(n, env, sizes):
    return value(n, env, sizes)


def _matmul(n, env, sizes):
    a, b = _v(n.a, env, sizes), _v(n.b, env, sizes)
    return np.matmul(a, b)


def _scalar_of(n, env, sizes):
    return float(np.asarray(_v(n, env, sizes)).reshape(()))


def _transpose(n, env, sizes):
    a = _v(n.a, env, sizes)
    if _COLUMNS.get():
        return np.swapaxes(a, -1, -2)
    if a.ndim == 1:                            # a column vector's transpose: a row (1, n)
        return a[None, :]
    if len(n.shape) == 2 and n.shape[1] == 1:  # a row's transpose: a column, 1-D
        return a.reshape(-1)
    return np.swapaxes(a, -1, -2)


def _softmax(n, env, sizes):
    a = _v(n.a, env, sizes)
    z = np.exp(a - a.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _log_softmax(a):
    m = a.max(axis=-1, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis=-1, keepdims=True))


def _func(n, env, sizes):
    if n.name == "log" and isinstance(n.a, N.Softmax):          # log_softmax, in its stable form
        return _log_softmax(_v(n.a.a, env, sizes))
    return F.numpy_value(n.name)(_v(n.a, env, sizes))


def _num(n, env, sizes):
    return np.array(float(Fraction(n.value)) if not isinstance(n.value, float) else n.value)


def _sizes_of(shape, sizes):
    return tuple(N.size_value(d, sizes) for d in _layout(shape))


def _diagmat(n, env, sizes):
    """diag(v) of a batch of columns (..., m, 1): the batch of diagonal matrices (..., m, m)."""
    v = _v(n.a, env, sizes)
    m = _sizes_of(n.shape, sizes)[-1]
    return v * np.eye(m)


def _along(fn, n, env, sizes):
    """sum / mean along an axis: NumPy's, the axis dropped, for a tensor; for a matrix (a
    tensor's sum(dY, 0) summed again) the matrix language's row or column (SPEC §1.1's
    sum(X, 0), a 1×n row), as shapes.py types it."""
    a = _v(n.a, env, sizes)
    if len(n.a.shape) == 2 and a.ndim == 2:
        return np.reshape(fn(a, axis=n.axis, keepdims=True), _sizes_of(n.shape, sizes))
    return fn(a, axis=n.axis)


RULES = {
    N.Ones: lambda n, env, s: np.ones(_sizes_of(n.shape, s)),
    N.Identity: lambda n, env, s: np.broadcast_to(np.eye(_sizes_of(n.shape, s)[-1]), _sizes_of(n.shape, s)),
    N.DiagMat: _diagmat,
    N.MatMul: _matmul,
    N.Transpose: _transpose,
    N.ScalarMul: lambda n, env, s: _scalar_of(n.s, env, s) * _v(n.a, env, s),
    N.Div: lambda n, env, s: _v(n.a, env, s) / _scalar_of(n.s, env, s),
    N.Add: lambda n, env, s: _v(n.a, env, s) + _v(n.b, env, s),
    N.Sub: lambda n, env, s: _v(n.a, env, s) - _v(n.b, env, s),
    N.Neg: lambda n, env, s: -_v(n.a, env, s),
    N.Hadamard: lambda n, env, s: _v(n.a, env, s) * _v(n.b, env, s),
    N.HadDiv: lambda n, env, s: _v(n.a, env, s) / _v(n.b, env, s),
    N.HadPow: lambda n, env, s: np.power(_v(n.a, env, s), _scalar_of(n.p, env, s)),
    N.Power: lambda n, env, s: np.power(_v(n.a, env, s), _scalar_of(n.p, env, s)),
    N.SumAll: lambda n, env, s: np.sum(_v(n.a, env, s)),
    N.Mean: lambda n, env, s: np.mean(_v(n.a, env, s)),
    N.SumAxis: lambda n, env, s: _along(np.sum, n, env, s),
    N.MeanAxis: lambda n, env, s: _along(np.mean, n, env, s),
    N.Norm: lambda n, env, s: np.sqrt(np.sum(_v(n.a, env, s) ** 2)),
    N.Norm2: lambda n, env, s: np.sum(_v(n.a, env, s) ** 2),
    N.Func: _func,
    N.Softmax: _softmax,
    N.Sym: lambda n, env, s: _to_2d(env[n.name], n.shape) if _COLUMNS.get() and len(n.shape) == 2 else env[n.name],
    N.Num: _num,
}
