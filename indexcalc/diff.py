"""Differentiation of index forms: d entry / d X[k, l], by a registry of rules.

Rules for SymPy node classes (sum, product, power, function, Sum) and for our atoms
(inverse, softmax, det, norm). The derivative of a variable's entry by an entry of the
same variable is a product of Kronecker deltas: dX_pq / dX_ij = δ_pi δ_qj.

With `marks=True` the leaf derivatives stay as `Partial(X[p,q])` (printed
∂X_pq/∂X_ij) so that the steps can show them before they become deltas.
"""
from __future__ import annotations

import sympy as sp

from . import functions as F
from . import nodes as N
from .errors import UnsupportedError
from .index_form import IndexContext, atoms_of, delta, full_index, make_sum, rename_bound, replace


class Partial(sp.Function):
    """An unevaluated ∂(leaf)/∂(wrt entry), shown in the steps."""
    nargs = 1


class Deriver:
    def __init__(self, ctx: IndexContext, var: str, wrt_idx: tuple, marks: bool = False):
        self.ctx, self.var, self.marks = ctx, var, marks
        self.wrt_idx = wrt_idx                               # two places, None for size 1
        self.wrt_entry = [i for i in wrt_idx if i is not None]
        self._dep: dict = {}

    # ---- which symbols depend on the variable
    def base_depends(self, name: str) -> bool:
        if name == self.var:
            return True
        node = self.ctx.atoms.get(name)
        return node is not None and N.contains(node, self.var)

    def depends(self, expr) -> bool:
        """Whether expr contains the variable or an atom built on it (memoised, linear)."""
        hit = self._dep.get(expr)
        if hit is None:
            if isinstance(expr, sp.Symbol):
                hit = self.base_depends(expr.name)
            elif isinstance(expr, sp.IndexedBase):
                hit = self.base_depends(expr.label.name)
            else:
                hit = any(self.depends(a) for a in expr.args)
            self._dep[expr] = hit
        return hit

    # ---- the walk
    def d(self, expr) -> sp.Expr:
        if not self.depends(expr):
            return sp.S.Zero
        for cls in type(expr).__mro__:
            rule = RULES.get(cls)
            if rule is not None:
                return rule(self, expr)
        raise UnsupportedError(f"cannot differentiate {expr}")

    def leaf(self, expr, indices) -> sp.Expr:
        """d(var entry with these indices) / d(var entry at wrt_idx)."""
        if self.marks:
            return Partial(expr)
        return deltas(indices, self.wrt_idx)

    def inner(self, node: N.Node, idx) -> sp.Expr:
        """The derivative of the entry [node]_idx (an atom's argument)."""
        return self.d(self.ctx.entry(node, idx))


def deltas(indices, wrt) -> sp.Expr:
    """∂X[indices]/∂X[wrt]: wrt has None at a unit place. An entry that names its unit places
    too (x[n, i+k-1] of x: 1×d in index notation) pairs place by place, the unit place with 1;
    one without them (the matrix language's row vector) pairs with wrt's other places (the
    unit place's index was paired with the next place's, the derivative wrong)."""
    wrt = tuple(wrt)
    entry = [b for b in wrt if b is not None]
    pairs = zip(indices, wrt) if len(indices) == len(wrt) != len(entry) else zip(indices, entry)
    out = sp.S.One
    for a, b in pairs:
        out *= delta(a, sp.Integer(1) if b is None else b)
    return out


def _add(D: Deriver, e):
    return sp.Add(*[D.d(a) for a in e.args])


def _mul(D: Deriver, e):
    args = e.args
    terms = []
    for k, f in enumerate(args):
        if D.depends(f):
            terms.append(sp.Mul(*args[:k], D.d(f), *args[k + 1:]))
    return sp.Add(*terms)


def _pow(D: Deriver, e):
    b, x = e.args
    if not D.depends(x):
        return x * b ** (x - 1) * _apart(D, D.d(b), b)
    if not D.depends(b):
        return e * sp.log(b) * D.d(x)
    return e * (D.d(x) * sp.log(b) + x * D.d(b) / b)


def _sum(D: Deriver, e: sp.Sum):
    return make_sum(D.d(e.function), e.limits)


def _function(D: Deriver, e):
    if len(e.args) != 1:
        raise UnsupportedError(f"cannot differentiate {e.func}")
    u = e.args[0]
    return F.derivative(F.name_of(e.func), u) * _apart(D, D.d(u), u)


def _apart(D: Deriver, du, u):
    """The chain rule's du with its Σ indices renamed away from those u binds: f'(u) du, with
    u = Σ_s W_sr X_qs, would show Σ_s tanh(Σ_s W_sr X_qs)^2 X_qs ∂W_sr, one s for two sums
    (right, as the inner Σ binds its own s, but not readable)."""
    bound = {lim[0] for s in u.atoms(sp.Sum) for lim in s.limits}
    if not bound:
        return du
    return rename_bound(du, lambda old, _: D.ctx.fresh(D.ctx.ranges[old]) if old in bound else old)


def _symbol(D: Deriver, e: sp.Symbol):
    if e.name == D.var:
        return D.leaf(e, ())
    node = D.ctx.atoms.get(e.name)
    if node is None:
        return sp.S.Zero
    return ATOM_RULES[type(node)](D, node, (None, None))


def _indexed(D: Deriver, e: sp.Indexed):
    name = e.base.label.name
    if name == D.var:
        return D.leaf(e, e.indices)
    node = D.ctx.atoms.get(name)
    if node is None:
        return sp.S.Zero
    return ATOM_RULES[type(node)](D, node, full_index(node.shape, e.indices))


def _zero(D, e):
    return sp.S.Zero


RULES = {
    sp.Add: _add, sp.Mul: _mul, sp.Pow: _pow, sp.Sum: _sum,
    sp.Indexed: _indexed, sp.Symbol: _symbol, sp.KroneckerDelta: _zero,
    sp.Function: _function, sp.Number: _zero, Partial: _zero,
}


# ---- atoms: d [f(A)]_idx in terms of d A --------------------------------------------------
def _inverse(D: Deriver, node: N.Inverse, idx):
    """d(A⁻¹)_pq = -Σ_rs (A⁻¹)_pr dA_rs (A⁻¹)_sq."""
    ctx, n = D.ctx, node.shape[0]
    r, s = ctx.fresh(n), ctx.fresh(n)
    inv = lambda a, b: ctx.atom_entry(node, (a, b))
    return -ctx.sum(inv(idx[0], r) * D.inner(node.a, (r, s)) * inv(s, idx[1]), r, s)


def _det(D: Deriver, node: N.Det, idx):
    """d det(A) = det(A) Σ_rs (A⁻¹)_sr dA_rs."""
    ctx, n = D.ctx, node.a.shape[0]
    r, s = ctx.fresh(n), ctx.fresh(n)
    inv = ctx.atom_entry(N.Inverse(node.a, node.a.shape), (s, r))
    return ctx.atom_entry(node, ()) * ctx.sum(inv * D.inner(node.a, (r, s)), r, s)


def _norm(D: Deriver, node: N.Norm, idx):
    """d‖A‖ = Σ A_rs dA_rs / ‖A‖."""
    ctx = D.ctx
    ps = tuple(ctx.fresh(d) if d != 1 else None for d in node.a.shape)
    body = ctx.entry(node.a, ps) * D.inner(node.a, ps)
    return ctx.sum(body, *[p for p in ps if p is not None]) / ctx.atom_entry(node, ())


def _softmax(D: Deriver, node: N.Softmax, idx):
    """Along the last non-unit axis (a tensor's last): dS_pq = Σ_r S_pq (δ_qr - S_pr) dA_pr."""
    ctx = D.ctx
    axis = max(k for k, d in enumerate(node.shape) if d != 1)
    r = ctx.fresh(node.shape[axis])
    idx_r = tuple(r if k == axis else i for k, i in enumerate(idx))
    s = lambda ix: ctx.atom_entry(node, ix)
    body = s(idx) * (delta(idx[axis], r) - s(idx_r)) * D.inner(node.a, idx_r)
    return ctx.sum(body, r)


ATOM_RULES = {N.Inverse: _inverse, N.Det: _det, N.Norm: _norm, N.Softmax: _softmax}


def unmark(expr, wrt_idx) -> sp.Expr:
    """Replace every Partial(X[p,q]) by δ_pi δ_qj (wrt_idx: None at a unit place)."""
    marks = atoms_of(expr, Partial)
    if not marks:
        return expr
    sub = {}
    for m in marks:
        leaf = m.args[0]
        sub[m] = deltas(leaf.indices if isinstance(leaf, sp.Indexed) else (), wrt_idx)
    return replace(expr, sub)
