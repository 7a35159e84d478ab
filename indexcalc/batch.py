"""Closed forms of batched results (SPEC §1.2: a product of tensors is the batched matrix
product over the leading axes, `^T` transposes the last two axes).

The batch step of DESIGN-NOTES §4: when the leading free indices (b, ...) sit in the same
leading places of the result and of every entry in every term (Σ_p K_bpn dS_bmp), strip them,
run the 2-D matcher unchanged on what is left (Σ_p dS_mp K_pn -> dS K), and lift the result:
the same closed form, read with NumPy's batched meaning (dS @ K over b). The NumPy code is
printed here with batch-safe spellings only (`@`, `np.swapaxes(·, -1, -2)`, element-wise
operations), so a node this printer does not know leaves the result to einsum.
"""
from __future__ import annotations

import sympy as sp

from . import functions as F
from . import nodes as N
from .closed import T
from .deltas import Normalizer, Term
from .index_form import IndexContext
from .match import Matcher
from .printing.numpy_code import NumpyPrinter, py_name
from .shapes import Variable, Variables

SAFE = (N.Softmax, N.Sym, N.MatMul, N.Transpose, N.Add, N.Sub, N.Neg, N.ScalarMul, N.Div, N.Hadamard, N.HadDiv,
        N.Func, N.Num, N.Size, N.Power, N.HadPow, N.Ones, N.DiagMat)


class Batched:
    """A closed form over batch indices: `node` (shapes lifted to the full rank), the batch
    indices it was stripped of, and its NumPy code."""

    def __init__(self, node, batch, code):
        self.node, self.batch, self.code = node, batch, code


def batch_match(R, terms, free) -> Batched | None:
    """The batched closed form of Σ terms with free indices `free`, or None."""
    shared = _shared(R, terms, free)
    k = min(_batch_depth(R, terms, free, shared), len(free) - 2)
    if k < 1:
        return None
    batch = free[:k]
    names = {f.base.label.name for t in terms for f in t.factors for f in _entries(f)}
    atoms = {name: R.ctx.atoms[name] for name in names if name in R.ctx.atoms}
    inside = {n.name for a in atoms.values() for n in a.walk() if isinstance(n, N.Sym) and not n.is_scalar}
    if any(name not in R.variables for name in (names - set(atoms)) | inside):
        return None
    table, dims = {name: R.variables[name] for name in shared - inside}, None
    for name in (names - set(atoms) - shared) | inside:
        v = R.variables[name]
        if len(v.shape) - k != 2:
            return None
        lead = tuple(v.shape[:k])
        if dims is None:
            dims = lead
        elif lead != dims:                   # broadcast batch axes: not here
            return None
        table[name] = Variable(name, "matrix", tuple(v.shape[k:]))
    stripped_atoms = {}
    for name, node in atoms.items():         # softmax(Q K^T / sqrt(D)) over b: the same, per batch
        flat = _strip_node(node, k, dims)
        if flat is None:
            return None
        stripped_atoms[name] = flat
    stripped = Variables(table, sorted({d for v in table.values() for d in v.shape if isinstance(d, str)}))
    ctx = IndexContext(stripped)
    for name, node in stripped_atoms.items():
        ctx.atoms[name], ctx._atom_names[node] = node, name
    ctx.ranges = dict(R.ctx.ranges)
    ctx._free_used = set(R.ctx._free_used) | {str(b) for b in batch}
    ctx._next = R.ctx._next
    M = Matcher(ctx, Normalizer(ctx))
    flat = [Term(t.coeff, tuple(_strip(f, k, shared) for f in t.factors), t.dummies) for t in terms]
    node = M.match(flat, tuple(free[k:]))
    if node is None:
        return None
    target = tuple(ctx.ranges[i] for i in free[k:])
    if node.shape != target:
        if T(node).shape != target:
            return None
        node = T(node)
    if not all(isinstance(n, SAFE) for n in node.walk()):
        return None
    lifted = _lift(node, dims, shared)
    try:
        code = _code(lifted, NumpyPrinter(R.variables))
    except ValueError:                           # a spelling with no batched form here: einsum
        return None
    return Batched(lifted, batch, code)


def _entries(f):
    return [a for a in sp.preorder_traversal(f) if isinstance(a, sp.Indexed)]


def _shared(R, terms, free) -> set:
    """The matrices every batch shares (np.matmul broadcasts them): variables of rank 2 whose
    entries carry none of the candidate batch indices (W in Σ_p dY_bip W_pj)."""
    lead = set(free[:max(len(free) - 2, 0)])
    found, refused = set(), set()
    for t in terms:
        for f in t.factors:
            for e in _entries(f):
                name = e.base.label.name
                v = R.variables[name] if name in R.variables else None
                if v is None or v.kind != "matrix" or len(v.shape) != 2:
                    continue
                if any(b in x.free_symbols for x in e.indices for b in lead):
                    refused.add(name)
                else:
                    found.add(name)
    return found - refused


def _batch_depth(R, terms, free, shared=frozenset()) -> int:
    """How many leading free indices every entry of every term starts with (and uses nowhere
    else); the entries of shared matrices are not asked."""
    best = len(free)
    if not terms:
        return 0
    for t in terms:
        own = [e for f in t.factors for e in _entries(f) if e.base.label.name not in shared]
        if not own:                          # a term of shared matrices only: not batched
            return 0
        for f in t.factors:
            if isinstance(f, sp.KroneckerDelta):
                return 0
            entries = _entries(f)
            if not entries:
                return 0
            outside = f.xreplace({e: sp.Integer(1) for e in entries})
            entries = [e for e in entries if e.base.label.name not in shared]
            if not entries:
                if any(b in outside.free_symbols for b in free[:best]):
                    return 0
                continue
            for e in entries:
                n = 0
                while n < min(best, len(e.indices)) and e.indices[n] == free[n]:
                    n += 1
                best = min(best, n)
            if any(b in outside.free_symbols for b in free[:best]):
                return 0
            for e in entries:
                if any(b in x.free_symbols for x in e.indices[best:] for b in free[:best]):
                    best = min(best, min(k for k, b in enumerate(free[:best])
                                         if any(b in x.free_symbols for x in e.indices[best:])))
    return best


def _strip(f, k, shared=frozenset()):
    return f.xreplace({e: e.base[tuple(e.indices[k:])] for e in _entries(f) if e.base.label.name not in shared})


def _strip_node(node, k, dims):
    """An atom's tree per batch: every non-scalar shape without its k leading batch sizes
    (which must be `dims`, and leave a matrix), or None."""
    changes = {}
    for name, v in node.items():
        if isinstance(v, N.Node):
            inner = _strip_node(v, k, dims)
            if inner is None:
                return None
            changes[name] = inner
        elif name == "shape" and v is not None and tuple(v) != N.SCALAR:
            if len(v) != k + 2 or (dims is not None and tuple(v[:k]) != tuple(dims)):
                return None
            changes[name] = tuple(v[k:])
    return node.replace(**changes)


def _lift(node, dims, shared=frozenset()):
    """The closed form with the batch sizes in front of every non-scalar shape, except in a
    subtree of shared matrices only (W^T: one matrix for every batch, as np.matmul broadcasts it)."""
    syms = [n.name for n in node.walk() if isinstance(n, N.Sym) and not n.is_scalar]
    if syms and all(s in shared for s in syms):
        return node
    changes = {}
    for name, v in node.items():
        if isinstance(v, N.Node):
            changes[name] = _lift(v, dims, shared)
        elif name == "shape" and v is not None and tuple(v) != N.SCALAR:
            changes[name] = tuple(dims) + tuple(v)
    return node.replace(**changes)


def tensor_code(node, P: NumpyPrinter) -> str:
    """NumPy code of a tensor-valued node (an atom of the index form), batch-safe spellings."""
    return _code(node, P)


def _code(node, P: NumpyPrinter) -> str:
    code, kind, _ = _p(node, P)
    if kind != "mat":
        raise ValueError("the result is not a batch of matrices")
    return code


def _wrap(node, P):
    c, kind, atomic = _p(node, P)
    return (c if atomic else f"({c})"), kind


def _p(node, P):
    """(code, kind, atomic?) with batch-safe spellings: kind "mat" is a batch of matrices
    (..., m, n), "vec" a batch of column vectors held as (..., m), "num" a number (printed by
    the 2-D printer)."""
    if node.shape == N.SCALAR:
        c, _ = P.p(node)
        return c, "num", False
    if isinstance(node, N.Sym):
        return py_name(node.name), "mat", True
    if isinstance(node, N.MatMul):
        return _matmul(node, P)
    if isinstance(node, N.Transpose):
        c, kind, _ = _p(node.a, P)
        if kind != "mat":
            raise ValueError("a transposed vector")
        return f"np.swapaxes({c}, -1, -2)", "mat", True
    if isinstance(node, (N.Add, N.Sub, N.Hadamard, N.HadDiv)):
        op = {N.Add: "+", N.Sub: "-", N.Hadamard: "*", N.HadDiv: "/"}[type(node)]
        (a, ka), (b, kb) = _wrap(node.a, P), _wrap(node.b, P)
        if {ka, kb} == {"mat", "vec"}:
            raise ValueError("a vector and a matrix element-wise")
        return f"{a} {op} {b}", ka if ka != "num" else kb, False
    if isinstance(node, N.Neg):
        a, ka = _wrap(node.a, P)
        return f"-{a}", ka, False
    if isinstance(node, N.ScalarMul):
        (s_, _), (a, ka) = _wrap(node.s, P), _wrap(node.a, P)
        return f"{s_} * {a}", ka, False
    if isinstance(node, N.Div):
        (a, ka), (s_, _) = _wrap(node.a, P), _wrap(node.s, P)
        return f"{a} / {s_}", ka, False
    if isinstance(node, N.Softmax):
        c, ka, _ = _p(node.a, P)
        if ka != "mat":
            raise ValueError("a softmax of a vector")
        return softmax_code(c, P), "mat", True
    if isinstance(node, N.Func):
        a, ka = _wrap(node.a, P)
        return F.numpy_code(node.name, a), ka, True
    if isinstance(node, (N.Power, N.HadPow)):
        (a, ka), (p_, _) = _wrap(node.a, P), _wrap(node.p, P)
        return f"{a} ** {p_}", ka, False
    raise ValueError(type(node).__name__)


def softmax_code(c: str, P) -> str:
    """The stable softmax along the last axis, of any batch rank."""
    if "softmax" in P.helpers:
        return f"{P.helpers['softmax']}({c})"
    z = "np.exp(z - np.max(z, axis=-1, keepdims=True))"
    return f"(lambda z: {z} / np.sum({z}, axis=-1, keepdims=True))({c})"


def _ones_row(node):
    return isinstance(node, N.Transpose) and isinstance(node.a, N.Ones)


def _matmul(node, P):
    a, b = node.a, node.b
    if isinstance(b, N.Ones):                                   # A 1: row sums
        c, kind = _wrap(a, P)
        if kind == "mat":
            return f"{c}.sum(axis=-1)", "vec", False
    if _ones_row(a):                                            # 1^T A: column sums, as a row
        c, kind = _wrap(b, P)
        if kind == "mat":
            return f"{c}.sum(axis=-2, keepdims=True)", "mat", False
    if isinstance(a, N.DiagMat):                                # diag(v) A: v down the rows
        (v, kv), (m, km) = _wrap(a.a, P), _wrap(b, P)
        if kv == "vec" and km == "mat":
            return f"{v}[..., :, None] * {m}", "mat", False
    if isinstance(b, N.DiagMat):                                # A diag(v): v along the columns
        (m, km), (v, kv) = _wrap(a, P), _wrap(b.a, P)
        if kv == "vec" and km == "mat":
            return f"{m} * {v}[..., None, :]", "mat", False
    if _ones_row(b):                                            # v 1^T: v repeated along the columns
        c, kind = _wrap(a, P)
        if kind == "vec":
            return f"{c}[..., :, None] * np.ones({P.size(b.shape[-1])})", "mat", False
    (x, kx), (y, ky) = _wrap(a, P), _wrap(b, P)
    if kx == "mat" and ky == "mat":
        return f"{x} @ {y}", "mat", False
    if kx == "mat" and ky == "vec":
        return f"({x} @ {y}[..., None])[..., 0]", "vec", True
    raise ValueError("a product with a vector")
