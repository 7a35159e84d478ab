"""Closed forms of batched results (SPEC §1.2: a product of tensors is the batched matrix
product over the leading axes, `^T` transposes the last two axes).

The batch step of DESIGN-NOTES §4: when the leading free indices (b, ...) sit in the same
leading places of the result and of every entry in every term (Σ_p K_bpn dS_bmp), strip them,
run the 2-D matcher unchanged on what is left (Σ_p dS_mp K_pn -> dS K), and lift the result:
the same closed form, read with NumPy's batched meaning (dS @ K over b). A leading place held
by a summed index instead (a parameter every batch entry shares: Σ_p,q dY_pqm X_pql) is
stripped the same way and the lifted form summed along that axis: sum(X^T dY, 0). Matrices,
vectors and rows whose entries carry no batch index are shared (np.matmul and broadcasting give
each batch entry the same one); a summed form, or one with a shared vector, is kept only if its
text reads back with the same shape. The NumPy code is printed here with batch-safe spellings
only (`@`, `np.swapaxes(·, -1, -2)`, element-wise operations, sums over the batch axes, one
product of reshaped batches for Σ_b A_b^T B_b), so a node this printer does not know leaves
the result to einsum.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from . import functions as F
from . import nodes as N
from .closed import T
from .deltas import Normalizer, Term
from .index_form import IndexContext, preorder
from .match import Matcher
from .printing.numpy_code import NumpyPrinter, py_name, softmax_code
from .shapes import Variable, Variables
from .simplify import simplify

SAFE = (N.Softmax, N.Sym, N.MatMul, N.Transpose, N.Add, N.Sub, N.Neg, N.ScalarMul, N.Div, N.Hadamard, N.HadDiv,
        N.Func, N.Num, N.Size, N.Power, N.HadPow, N.Ones, N.DiagMat)


class Batched:
    """A closed form over batch indices: `node` (shapes lifted to the full rank, wrapped in
    `sum(·, k)` for each leading axis summed over), the batch indices it keeps (free), the
    leading axes it sums over, the closed form of one batch (`per_batch`) and its NumPy code."""

    def __init__(self, node, batch, code, axes=(), per_batch=None):
        self.node, self.batch, self.code = node, batch, code
        self.axes, self.per_batch = tuple(axes), per_batch
        self.reads_back = True           # its text reads back as the same shape (the guard checks the value)
        self.code_kind = "mat"           # the code's value: a batch of matrices, or "vec" (a column held 1-D)

    def words(self):
        """The closed-form step's text, LaTeX and note: np.matmul's meaning over the kept batch
        indices (dS K over b), one batch's form summed over the leading axes it sums (X^T dY for
        each batch entry, summed over axis 0: sum(X^T dY, 0))."""
        from .printing.latex import to_latex
        from .printing.text import to_text
        closed, parts, notes = self.node, [], []
        if self.batch:
            over = ",".join(map(str, self.batch))
            parts.append(f"batched over {over} (leading axes)")
            notes.append(fr"\text{{batched over }} {over}")
        if self.axes:
            axes = f"axis {self.axes[0]}" if len(self.axes) == 1 else "axes " + ", ".join(map(str, self.axes))
            parts.append(f"{to_text(self.per_batch)} for each batch entry, summed over {axes}")
            notes.append(fr"{to_latex(self.per_batch)} \text{{ for each batch entry, summed over {axes}}}")
        return f"{'; '.join(parts)}: {to_text(closed)}", lambda: to_latex(closed), r"\text{; }".join(notes)

    def checks(self, variables, layout) -> dict:
        """The guard's candidates besides the code: the tree with NumPy's batched meaning, and
        its text read back with the same declarations and evaluated as the user's input is."""
        from .parse import parse
        from .printing.text import to_text
        from .shapes import infer
        from .tensor_eval import closed_value, value

        def as_layout(v, point):          # (E, 1) as the engine holds a column; (E,) in the layout
            want = tuple(N.size_value(d, point.sizes) for d in layout)
            v = np.asarray(v, dtype=float)
            return v.reshape(want) if v.size == int(np.prod(want)) else v

        def parsed_back(point):
            tree, _ = infer(parse(to_text(self.node)), variables.decls())
            return as_layout(value(tree, point.env, point.sizes), point)
        out = {"closed form": lambda p: as_layout(closed_value(self.node, p.env, p.sizes), p)}
        if self.reads_back:
            out["closed form, parsed back,"] = parsed_back
        return out


def batch_match(R, terms, free, target=None) -> Batched | None:
    """The batched closed form of Σ terms with free indices `free`, or None. `target` is the
    result's shape in the matrix language when it has rank ≤ 2 (a parameter's gradient summed
    over the batch: (D, E) for W, (1, E) for a row b, (E, 1) for a column b)."""
    shared = _shared(R, terms, free)
    plain = [t for t in terms if not _own(t, shared)]
    if plain and len(plain) < len(terms):        # a batch sum plus terms of shared matrices (2 λ W)
        return _plus(R, batch_match(R, [t for t in terms if t not in plain], free, target), plain, free)
    found = _places(R, terms, free, shared)
    if found is None:
        return None
    places, summed = found
    k = len(places)
    kept = tuple(p for p in places if p is not None)
    axes = tuple(j for j, p in enumerate(places) if p is None)
    if len(free) - len(kept) > 2:
        return None
    names = {f.base.label.name for t in terms for f in t.factors for f in _entries(f)}
    atoms = {name: R.ctx.atoms[name] for name in names if name in R.ctx.atoms}
    inside = {n.name for a in atoms.values() for n in a.walk() if isinstance(n, N.Sym) and not n.is_scalar}
    if any(name not in R.variables for name in (names - set(atoms)) | inside):
        return None
    # a matrix inside an atom that no entry batches (Wq in softmax(X Wq (X Wk)^T)): shared too
    shared = shared | {name for name in inside - names if _matrix(R.variables[name])}
    table, dims = {name: R.variables[name] for name in shared}, None
    for name in (names - set(atoms) - shared) | (inside - shared):
        v = R.variables[name]
        if len(v.shape) - k != 2:
            return None
        lead = tuple(v.shape[:k])
        if dims is None:
            dims = lead
        elif lead != dims:                   # broadcast batch axes: not here
            return None
        table[name] = Variable(name, "matrix", tuple(v.shape[k:]))
    if dims is None:
        return None
    stripped_atoms = {}
    for name, node in atoms.items():         # softmax(Q K^T / sqrt(D)) over b: the same, per batch
        flat = _strip_node(node, k, dims, shared)
        if flat is None:
            return None
        stripped_atoms[name] = flat
    sizes = {d for v in table.values() for d in v.shape if isinstance(d, str)} | set(R.variables.sizes)
    stripped = Variables(table, sorted(sizes, key=str), R.variables.functions)      # B of sum(...) / B too
    ctx = IndexContext(stripped)
    for name, node in stripped_atoms.items():
        ctx.atoms[name], ctx._atom_names[node] = node, name
    ctx.ranges = dict(R.ctx.ranges)
    ctx._free_used = set(R.ctx._free_used) | {str(b) for b in kept}
    ctx._next = R.ctx._next
    M = Matcher(ctx, Normalizer(ctx))
    flat = [Term(t.coeff, tuple(_strip(f, k, shared) for f in t.factors),
                 tuple(d for d in t.dummies if d not in gone))
            for t, gone in zip(terms, summed)]
    rest = tuple(free[len(kept):])
    node = M.match(flat, rest)
    if node is None:
        return None
    node = simplify(node)                    # as the 2-D closed forms are (1 1^T - ... is 1 - ...)
    if axes and not kept:                    # one batch's shape is the parameter's own
        if target is None or len(target) != 2:
            return None
    else:
        target = tuple(ctx.ranges[i] for i in rest)
    if node.shape != target:
        if T(node).shape != target:
            return None
        node = T(node)
    if not all(isinstance(n, SAFE) for n in node.walk()):
        return None
    if not axes:
        lifted = _lift(node, dims, shared)
        try:
            code = _code(lifted, NumpyPrinter(R.variables))
        except ValueError:                       # a spelling with no batched form here: einsum
            return None
        out = Batched(lifted, kept, code)
        out.reads_back = _reads_back(R, lifted)
        if not out.reads_back and any(isinstance(n, N.Sym) and R.variables[n.name].kind != "matrix"
                                      for n in lifted.walk() if isinstance(n, N.Sym) and n.name in shared):
            return None                  # a shared vector (g: D) must read back: its broadcasting is NumPy's
        return out
    return _summed(R, node, dims, shared, axes, kept)


def _own(t, shared) -> bool:
    """Whether a term has an entry of a variable or atom the batches do not share."""
    return any(e.base.label.name not in shared for f in t.factors for e in _entries(f))


def _plus(R, summed, plain, free) -> Batched | None:
    """A batch sum plus the terms made of shared matrices only, matched as 2-D closed forms
    are: sum(X^T (1 - tanh(X W) .^ 2), 0) + 2 λ W for a loss with weight decay."""
    if summed is None or summed.batch or not summed.axes:
        return None
    rest = R.matcher.match(plain, free)
    if rest is None:
        return None
    rest = simplify(rest)
    target = summed.node.shape
    if rest.shape != target:
        if T(rest).shape != target:
            return None
        rest = T(rest)
    if not all(isinstance(n, SAFE) for n in rest.walk()):
        return None
    try:
        code, kind, _ = _p(rest, NumpyPrinter(R.variables))
    except ValueError:
        return None
    if kind != ("vec" if summed.code_kind == "vec" else "mat"):
        return None
    node = N.Add(summed.node, rest, target)
    if not _reads_back(R, node):
        return None
    out = Batched(node, (), f"{summed.code} + {code}", axes=summed.axes, per_batch=summed.per_batch)
    out.code_kind = summed.code_kind
    return out


def _places(R, terms, free, shared):
    """The leading batch places that every entry of every term starts with (the entries of
    shared matrices are not asked): per place, the free index kept there or None for a place
    summed over (a dummy of each term, used nowhere else in it); with, per term, the dummies
    summed. The kept ones must be the leading free indices, in order. None if there is no such
    place."""
    k, places, summed = None, None, []
    if not terms:
        return None
    for t in terms:
        own = []
        for f in t.factors:
            if isinstance(f, sp.KroneckerDelta):
                return None
            entries = _entries(f)
            if not entries:
                return None
            own += [e for e in entries if e.base.label.name not in shared]
        if not own:                          # a term of shared matrices only: not batched
            return None
        lead = None
        for e in own:
            if k is None:
                k = len(e.indices) - 2
            if k < 1 or len(e.indices) != k + 2:
                return None
            if lead is None:
                lead = tuple(e.indices[:k])
            elif tuple(e.indices[:k]) != lead:
                return None
        if not all(isinstance(i, sp.Symbol) for i in lead) or len(set(lead)) != k:
            return None
        here = [i if i in free else None for i in lead]
        if any(p is None and i not in t.dummies for p, i in zip(here, lead)):
            return None
        if places is None:
            places = here
        elif here != places:
            return None
        for f in t.factors:                  # the batch indices occur nowhere else in the term
            mine = [e for e in _entries(f) if e.base.label.name not in shared]
            outside = f.xreplace({e: sp.Integer(1) for e in mine})
            if any(i in outside.free_symbols for i in lead):
                return None
            if any(i in x.free_symbols for e in mine for x in e.indices[k:] for i in lead):
                return None
        summed.append(tuple(i for p, i in zip(here, lead) if p is None))
    kept = tuple(p for p in places if p is not None)
    if kept != tuple(free[:len(kept)]):
        return None
    return places, summed


def _summed(R, node, dims, shared, axes, kept) -> Batched | None:
    """Σ over the leading axes `axes` of one batch's closed form `node`: `sum(X^T dY, 0)` for
    Σ_p,q dY_pqm X_pql. A column per batch is summed as a row and transposed back
    (`sum(1^T dY, 0)^T`), so that the text reads back as the same shape."""
    column = node.shape[1] == 1 and node.shape[0] != 1
    per_batch = node
    if column:
        node = T(node)
    P = NumpyPrinter(R.variables)
    outside = []                                      # constant factors, out of the sum: 2 sum(X^T X, 0)
    while _constant_factor(node):
        outside.append(node)
        node = node.a
    lifted = _lift(node, dims, shared)
    if lifted.shape[:len(dims)] != tuple(dims):       # nothing of the batch in it: not a batch sum
        return None
    closed = lifted
    for j in reversed(axes):
        shape = closed.shape[:j] + closed.shape[j + 1:]
        closed = N.SumAxis(closed, j, shape)
    try:
        code = _sum_code(lifted, axes, len(dims), P, column)
    except ValueError:
        return None
    for f in reversed(outside):
        closed = f.replace(a=closed, shape=closed.shape)
        code = _scaled_code(f, code, P)
    if column:
        closed = N.Transpose(closed, _swap(closed.shape))
    if not _reads_back(R, closed):
        return None
    out = Batched(closed, kept, code, axes=axes, per_batch=per_batch)
    out.code_kind = "vec" if column else "mat"
    return out


def _constant_factor(node) -> bool:
    """-A, s A, A / s with s a number, a size or a scalar variable: the same for every batch."""
    if isinstance(node, N.Neg):
        return True
    if isinstance(node, (N.ScalarMul, N.Div)):
        return all(isinstance(n, (N.Num, N.Size)) or (isinstance(n, N.Sym) and n.is_scalar)
                   or n.shape == N.SCALAR for n in node.s.walk()) and \
            not any(isinstance(n, N.Sym) and not n.is_scalar for n in node.s.walk())
    return False


def _scaled_code(f, code, P) -> str:
    if isinstance(f, N.Neg):
        return f"-({code})"
    s_, _ = P.p(f.s)
    return f"({s_}) * ({code})" if isinstance(f, N.ScalarMul) else f"({code}) / ({s_})"


def _swap(shape):
    return tuple(shape[:-2]) + (shape[-1], shape[-2])


def _reads_back(R, closed) -> bool:
    """Whether the closed form's text, read with the same declarations, has the same shape
    (the guard then checks its value)."""
    from .parse import parse
    from .printing.text import to_text
    from .shapes import infer
    try:
        tree, _ = infer(parse(to_text(closed)), R.variables.decls())
    except Exception:  # noqa: BLE001 - any failure to read our own text back: no closed form
        return False
    return tuple(tree.shape) == tuple(closed.shape)


def _sum_code(lifted, axes, k, P, column) -> str:
    """NumPy code of Σ over the leading `axes` of a batched closed form, as fast as it has a
    form: Σ_b A_b^T B_b over all k batch axes is one matrix product of the reshaped batches
    (A.reshape(-1, m).T @ B.reshape(-1, n)); Σ_b 1^T B_b is B summed over the batch axes and
    its rows; else the batched form summed over the axes. `column`: the result is a column
    vector, held 1-D as NumPy holds it (`lifted` is then a batch of rows)."""
    full = lambda n: len(n.shape) == k + 2                     # noqa: E731 - carries every batch axis
    every = axes == tuple(range(k))
    lifted = _transpose_first(lifted, full)
    if every and isinstance(lifted, N.MatMul) and isinstance(lifted.a, N.Transpose) and full(lifted.b):
        if _ones_row(lifted.a) and full(lifted.b):                   # Σ_b 1^T B_b: B's sums
            c, kind = _wrap(lifted.b, P)
            if kind == "mat":
                code = f"{c}.sum(axis={tuple(range(k + 1))})"
                return code if column else f"{code}[None, :]"
        if full(lifted.a.a):
            (a, ka), (b, kb) = _wrap(lifted.a.a, P), _wrap(lifted.b, P)
            if ka == kb == "mat":
                code = (f"{a}.reshape(-1, {P.size(lifted.a.a.shape[-1])}).T @ "
                        f"{b}.reshape(-1, {P.size(lifted.b.shape[-1])})")
                return f"({code})[0]" if column else code
    if isinstance(lifted, N.MatMul) and not column and full(lifted.a) != full(lifted.b):
        try:                                       # Σ_b X_b^T M = (Σ_b X_b^T) M: the sum first
            if full(lifted.a):
                (m, km) = _wrap(lifted.b, P)
                if km == "mat":
                    return f"({_sum_code(lifted.a, axes, k, P, False)}) @ {m}"
            else:
                (m, km) = _wrap(lifted.a, P)
                if km == "mat":
                    return f"{m} @ ({_sum_code(lifted.b, axes, k, P, False)})"
        except ValueError:
            pass
    c, kind = _wrap(lifted, P)
    if kind != "mat":
        raise ValueError("a batch of vectors")
    code = f"{c}.sum(axis={axes[0] if len(axes) == 1 else axes})"
    return f"{code}[0]" if column else code


def _transpose_first(node, full):
    """A product A^T B C ... of batches regrouped as A^T (B C ...), so that its sum over the
    batch is one matrix product of the reshaped batches; else node as it is."""
    factors = _factors(node)
    if len(factors) < 3 or not isinstance(factors[0], N.Transpose) or not full(factors[0].a):
        return node
    if not any(full(f) for f in factors[1:]):         # X^T A C with A, C shared: not one product
        return node
    rest = factors[1]
    for f in factors[2:]:
        rest = N.MatMul(rest, f, tuple(node.shape[:-2]) + (rest.shape[-2], f.shape[-1]))
    return N.MatMul(factors[0], rest, node.shape)


def _factors(node) -> list:
    if isinstance(node, N.MatMul):
        return _factors(node.a) + _factors(node.b)
    return [node]


def _entries(f):
    return [a for a in preorder(f) if isinstance(a, sp.Indexed)]


def _shared(R, terms, free) -> set:
    """The matrices every batch shares (np.matmul broadcasts them): variables of rank 2 whose
    entries carry none of the candidate batch indices (W in Σ_p dY_bip W_pj), kept or summed."""
    lead = set(free[:max(len(free) - 2, 0)])
    for t in terms:                                  # a summed batch index leads a tensor's entry
        for f in t.factors:
            for e in _entries(f):
                if len(e.indices) > 2:
                    lead |= {i for i in e.indices[:-2] if i in t.dummies}
    found, refused = set(), set()
    for t in terms:
        for f in t.factors:
            for e in _entries(f):
                name = e.base.label.name
                v = R.variables[name] if name in R.variables else None
                if v is None or not _matrix(v):
                    continue
                if any(b in x.free_symbols for x in e.indices for b in lead):
                    refused.add(name)
                else:
                    found.add(name)
    return found - refused


def _strip(f, k, shared=frozenset()):
    return f.xreplace({e: e.base[tuple(e.indices[k:])] for e in _entries(f) if e.base.label.name not in shared})


def _strip_node(node, k, dims, shared=frozenset()):
    """An atom's tree per batch: every non-scalar shape without its k leading batch sizes
    (which must be `dims`, and leave a matrix), except in a subtree of shared matrices only
    (as _lift leaves it), or None."""
    if _only(node, shared):
        return node
    changes = {}
    for name, v in node.items():
        if isinstance(v, N.Node):
            inner = _strip_node(v, k, dims, shared)
            if inner is None:
                return None
            changes[name] = inner
        elif name == "shape" and v is not None and tuple(v) != N.SCALAR:
            if len(v) != k + 2 or (dims is not None and tuple(v[:k]) != tuple(dims)):
                return None
            changes[name] = tuple(v[k:])
    return node.replace(**changes)


def _only(node, shared) -> bool:
    """Whether node is made of shared matrices only (and numbers)."""
    syms = [n.name for n in node.walk() if isinstance(n, N.Sym) and not n.is_scalar]
    return bool(syms) and all(s in shared for s in syms)


def _matrix(v) -> bool:
    """A variable of rank ≤ 2 that batches can share: a matrix, a vector (the bias b: E of
    X W + b, broadcast along the last axis), a row (b: 1×E)."""
    return v.kind in ("matrix", "vector", "rowvector") and len(v.shape) == 2


def _lift(node, dims, shared=frozenset()):
    """The closed form with the batch sizes in front of every non-scalar shape, except in a
    subtree of shared matrices only (W^T: one matrix for every batch, as np.matmul broadcasts it)."""
    if _only(node, shared):
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
        v = P.variables[node.name] if node.name in P.variables else None
        return py_name(node.name), "vec" if v is not None and v.kind == "vector" else "mat", True
    if isinstance(node, N.Ones) or (isinstance(node, N.MatMul) and isinstance(node.a, N.Ones) and _ones_row(node.b)):
        return "1", "num", True             # 1, 1 1^T beside an element-wise operand: the text's 1 (1 - tanh(X W) .^ 2)
    if isinstance(node, N.MatMul):
        return _matmul(node, P)
    if isinstance(node, N.Transpose):
        c, kind, atomic = _p(node.a, P)
        if kind == "num":                   # 1^T beside an element-wise operand: still 1
            return c, kind, atomic
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


def _ones_row(node):
    return isinstance(node, N.Transpose) and isinstance(node.a, N.Ones)


def _matmul(node, P):
    a, b = node.a, node.b
    if isinstance(a, N.Ones) and len(node.shape) == 2 and b.shape[0] == 1:   # 1 b, 1 b^T: b down the rows
        c, kind = _wrap(b.a if isinstance(b, N.Transpose) and not isinstance(b.a, N.Ones) else b, P)
        if kind == "vec" or (kind == "mat" and not isinstance(b, N.Transpose)):
            return f"np.broadcast_to({c}, ({P.size(node.shape[0])}, {P.size(node.shape[1])}))", "mat", True
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
