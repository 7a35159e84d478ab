"""How large the terms behind a value are: the scale its rounding errors are measured against.

`magnitude(tree, env2d, sizes)` is, entry by entry, a first-order bound of the rounding error
of evaluating the tree in floating point, in units of machine epsilon (Σ|a_ik||b_kj| for a
product, |A⁻¹| |δA| |A⁻¹| for an inverse, |f'(u)| |δu| for a function, ...). It is at least
the value's own size, and it stays large where terms cancel: (B + B^T) x at an entry that
is nearly 0 still has terms of size |B| |x|. `check` compares values relative to it, and the
guard takes its rounding floor from it, so neither needs an absolute tolerance.

One rule per node type (a registry); a node type without a rule gets a generic one (each
child perturbed by its own magnitude, the change measured), so new constructs still work.
"""
from __future__ import annotations

import numpy as np

from . import functions as F
from . import nodes as N
from .evaluate import evaluate


def magnitude(tree: N.Node, env2d: dict, sizes: dict) -> np.ndarray:
    """The magnitude of the terms of `tree`'s value (2-D, like evaluate's value)."""
    with np.errstate(all="ignore"):
        return _walk(tree, env2d, sizes)[1]


def _walk(node, env, sizes):
    children = node.children()
    pairs = [_walk(c, env, sizes) for c in children]
    value = _one_level(node, children, [v for v, _ in pairs], env, sizes)
    rule = RULES.get(type(node), _generic)
    mag = rule(node, value, [v for v, _ in pairs], [m for _, m in pairs], env, sizes)
    mag = np.broadcast_to(np.maximum(np.abs(np.nan_to_num(mag, nan=np.inf)), np.abs(value)),
                          np.shape(value))
    return value, np.array(mag, dtype=float)


def _one_level(node, children, values, env, sizes):
    """The node's value from its children's values (each child a placeholder variable)."""
    if not children:
        return np.asarray(evaluate(node, env, sizes), dtype=float)
    names = {id(c): f"\x00{k}" for k, c in enumerate(children)}
    local = dict(env)
    for c, v in zip(children, values):
        local[names[id(c)]] = v
    shallow = node.map_children(lambda c: N.Sym(names[id(c)], c.shape))
    if shallow is node:          # children inside a tuple field: evaluate the node as it is
        return np.asarray(evaluate(node, env, sizes), dtype=float)
    return np.asarray(evaluate(shallow, local, sizes), dtype=float)


def _generic(node, value, vals, mags, env, sizes):
    """Each child moved by ±1e-6 of its magnitude: how much the value moves, per unit."""
    children = node.children()
    if not children:
        return np.abs(value)
    out = np.abs(value).astype(float)
    rng = np.random.default_rng(0)
    delta = 1e-6
    for k in range(len(children)):
        worst = np.zeros_like(out)
        for _ in range(2):
            moved = list(vals)
            moved[k] = vals[k] + delta * mags[k] * rng.choice([-1.0, 1.0], size=np.shape(vals[k]))
            try:
                w = _one_level(node, children, moved, env, sizes)
            except Exception:  # noqa: BLE001 - a node that cannot move: count its value only
                continue
            worst = np.maximum(worst, np.abs(w - value) / delta)
        out = out + worst
    return out


def _abs(a):
    return np.abs(a)


def _inv_abs(a):
    try:
        return np.abs(np.linalg.inv(a))
    except np.linalg.LinAlgError:
        return np.full(np.shape(a), np.inf)


# functions whose NumPy value is a difference of larger terms: Φ(u) = (1 + erf(u/√2)) / 2 is
# exact to ε absolutely, not relatively (Φ(-20) evaluates to 0, its true value is 1e-89), and
# gelu(u) = u Φ(u) to ε |u|. Their terms are that size, however small the value.
CANCELLING = {"normcdf": lambda u: np.ones_like(u), "gelu": lambda u: np.abs(u)}


def _func(node, value, vals, mags, env, sizes):
    """|f(u)| + |f'(u)| |δu|, f' by a central difference of f itself; at least the size of the
    terms f's value is computed from (CANCELLING)."""
    f = F.numpy_value(node.name)
    u = vals[0]
    s = 1e-7 * (np.abs(u) + 1e-7)
    d = np.abs(f(u + s) - f(u - s)) / (2 * s)
    d = np.where(np.isfinite(d), d, 0.0)
    own = CANCELLING.get(node.name)
    return np.abs(value) + d * mags[0] + (own(np.asarray(u, dtype=float)) if own else 0.0)


def _power(node, value, vals, mags, env, sizes):
    a, p = vals
    dp = np.abs(p * np.power(a, p - 1))
    out = np.abs(value) + np.where(np.isfinite(dp), dp, 0.0) * mags[0]
    if not isinstance(node.p, N.Num):
        dl = np.abs(value * np.log(np.abs(a)))
        out = out + np.where(np.isfinite(dl), dl, 0.0) * mags[1]
    return out


def _divide(node, value, vals, mags, env, sizes):
    a, s = vals
    return mags[0] / np.abs(s) + np.abs(a) * mags[1] / (s * s)


def _matpow(node, value, vals, mags, env, sizes):
    a, m = vals[0], mags[0]
    power, out = np.eye(a.shape[0]), m
    for _ in range(node.k - 1):
        power = power @ a
        out = out @ np.abs(a) + np.abs(power) @ m
    return out


def _det(node, value, vals, mags, env, sizes):
    return np.abs(value) * np.sum(_inv_abs(vals[0]).T * mags[0]) + np.abs(value)


def _logdet(node, value, vals, mags, env, sizes):
    return np.abs(value) + np.sum(_inv_abs(vals[0]).T * mags[0])


def _norm(node, value, vals, mags, env, sizes):
    n = float(np.abs(value).reshape(-1)[0])
    if n == 0:
        return np.sum(mags[0]).reshape(1, 1)
    return n + np.sum(np.abs(vals[0]) * mags[0]).reshape(1, 1) / n


def _softmax(node, value, vals, mags, env, sizes):
    axis = 1 if vals[0].shape[1] != 1 else 0
    sm = value * mags[0]
    return value + sm + value * np.sum(sm, axis=axis, keepdims=True)


def _conv(node, value, vals, mags, env, sizes):
    (x, w), (mx, mw) = vals, mags
    c = lambda p, q: np.correlate(p[:, 0], q[:, 0], node.mode).reshape(-1, 1)  # noqa: E731
    return c(mx, np.abs(w)) + c(np.abs(x), mw)


def _same_op(node, value, vals, mags, env, sizes):
    """Linear rearrangements (transpose, diag, flip, negation, sums): the same op on magnitudes."""
    return _one_level(node, node.children(), mags, env, sizes)


RULES = {
    N.Sym: lambda n, v, *_: np.abs(v),
    N.Num: lambda n, v, *_: np.abs(v),
    N.Size: lambda n, v, *_: np.abs(v),
    N.Ones: lambda n, v, *_: np.abs(v),
    N.Identity: lambda n, v, *_: np.abs(v),
    N.MatMul: lambda n, v, vals, mags, *_: mags[0] @ _abs(vals[1]) + _abs(vals[0]) @ mags[1],
    N.ScalarMul: lambda n, v, vals, mags, *_: mags[0] * _abs(vals[1]) + _abs(vals[0]) * mags[1],
    N.Hadamard: lambda n, v, vals, mags, *_: mags[0] * _abs(vals[1]) + _abs(vals[0]) * mags[1],
    N.Div: _divide,
    N.HadDiv: _divide,
    N.Add: lambda n, v, vals, mags, *_: mags[0] + mags[1],
    N.Sub: lambda n, v, vals, mags, *_: mags[0] + mags[1],
    N.Neg: _same_op,
    N.Transpose: _same_op,
    N.DiagMat: _same_op,
    N.DiagVec: _same_op,
    N.Flip: _same_op,
    N.SumAll: _same_op,
    N.SumAxis: _same_op,
    N.Mean: _same_op,
    N.MeanAxis: _same_op,
    N.Trace: _same_op,
    N.Inverse: lambda n, v, vals, mags, *_: np.abs(v) + np.abs(v) @ mags[0] @ np.abs(v),
    N.MatPow: _matpow,
    N.Power: _power,
    N.HadPow: _power,
    N.Det: _det,
    N.LogDet: _logdet,
    N.Norm: _norm,
    N.Norm2: lambda n, v, vals, mags, *_: np.abs(v) + 2 * np.sum(_abs(vals[0]) * mags[0]).reshape(1, 1),
    N.Func: _func,
    N.Softmax: _softmax,
    N.Conv: _conv,
}
