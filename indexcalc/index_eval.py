"""Numbers of an index-notation input, computed from its parsed tree alone: the numerical
guard's reference for index notation (SPEC §1.3, DESIGN-NOTES §4). Nothing here uses the
SymPy lowering, so a lowering bug cannot check itself.

Every subexpression is an array with one axis per index in scope (NumPy broadcasting, a
size-1 axis where it does not depend on that index); Σ_p adds p's axis and sums it away.
Indices run from 1; an entry whose index falls outside its variable's range is 0.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from . import functions as F
from . import nodes as N
from .from_index_notation import OPS, Call, Delta, IndexProblem, Num, Op, Ref, Scalar, Sum


class Evaluator:
    def __init__(self, problem: IndexProblem, env: dict, sizes: dict):
        """env: variable -> array in NumPy layout; sizes: size name -> int."""
        self.P, self.env, self.sizes = problem, env, sizes
        self.range = {i: N.size_value(d, sizes) for i, d in problem.ranges.items()}

    def value(self, node=None, axes=()):
        """The node's value over the indices `axes` (an array of ndim len(axes))."""
        node = self.P.rhs if node is None else node
        return EVAL[type(node)](self, node, tuple(axes))

    def output(self) -> np.ndarray:
        """The whole input's value in NumPy layout: the left side's array (a float for a scalar)."""
        axes = self.P.out_indices
        v = self.value(self.P.rhs, axes)
        full = np.broadcast_to(v, tuple(self.range[i] for i in axes)).astype(float)
        return full

    def index_array(self, e, axes):
        """An index expression's values (1-based) over the axes, broadcast."""
        shape = [1] * len(axes)
        out = np.zeros(shape, dtype=np.int64)
        e = sp.expand(e)
        for term in sp.Add.make_args(e):
            c, rest = term.as_coeff_Mul()
            if rest == 1:
                out = out + int(c)
                continue
            name = rest.name
            if name in self.sizes and name not in self.range:
                out = out + int(c) * self.sizes[name]
                continue
            k = axes.index(name)
            s = [1] * len(axes)
            s[k] = self.range[name]
            out = out + int(c) * np.arange(1, self.range[name] + 1).reshape(s)
        return out


def _num(E, n: Num, axes):
    return np.full((1,) * len(axes), float(n.value))


def _scalar(E, n: Scalar, axes):
    if n.name in E.env:
        v = float(np.asarray(E.env[n.name]).reshape(-1)[0])
    else:
        v = float(E.sizes[n.name])
    return np.full((1,) * len(axes), v)


def _ref(E, n: Ref, axes):
    a = np.asarray(E.env[n.name], dtype=float)
    if a.ndim != len(n.indices):               # a row vector (1, n) indexed by one index
        a = a.reshape(-1)
    idx = [E.index_array(e, axes) for e in n.indices]
    idx = np.broadcast_arrays(*idx)
    inside = np.ones(idx[0].shape, dtype=bool)
    for k, ix in enumerate(idx):
        inside &= (ix >= 1) & (ix <= a.shape[k])
    clipped = tuple(np.clip(ix, 1, a.shape[k]) - 1 for k, ix in enumerate(idx))
    return np.where(inside, a[clipped], 0.0)


def _delta(E, n: Delta, axes):
    a, b = np.broadcast_arrays(E.index_array(n.a, axes), E.index_array(n.b, axes))
    return (a == b).astype(float)


def _sum(E, n: Sum, axes):
    inner = axes + tuple(n.indices)
    v = E.value(n.body, inner)
    full = np.broadcast_to(v, v.shape[:len(axes)] + tuple(E.range[i] for i in n.indices))
    return full.sum(axis=tuple(range(len(axes), len(inner))))


def _op(E, n: Op, axes):
    return OPS[n.op](*[E.value(a, axes) for a in n.args])


def _call(E, n: Call, axes):
    return F.numpy_value(n.name)(E.value(n.arg, axes))


EVAL = {Num: _num, Scalar: _scalar, Ref: _ref, Delta: _delta, Sum: _sum, Op: _op, Call: _call}


def domains(problem: IndexProblem) -> dict:
    """Variables that must be positive for the input to be finite: under log or sqrt, in a
    denominator, in the base of a power that is not a positive integer."""
    from .from_index_notation import walk
    out: dict = {}

    def mark(node):
        for m in walk(node):
            if isinstance(m, (Ref, Scalar)):
                out.setdefault(m.name, set()).add("positive")

    for n in walk(problem.rhs):
        if isinstance(n, Call) and n.name in ("log", "sqrt"):
            mark(n.arg)
        elif isinstance(n, Op) and n.op == "/":
            mark(n.args[1])
        elif isinstance(n, Op) and n.op == "^":
            e = n.args[1]
            if not (isinstance(e, Num) and float(e.value) == int(float(e.value)) and float(e.value) > 0):
                mark(n.args[0])
    return out
