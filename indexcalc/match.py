"""Index form -> closed matrix form.

Each sifted term is a product of operands with indices (X_pq, x_p, δ_ij, f(...)_ij)
summed over its dummies: an einsum. The reductions below turn it into matrix
operations, one table row each, applied until nothing changes:

  A_aa, a summed alone     -> tr(A)              A_aa otherwise      -> diag(A)_a
  A_ab B_ab (or B_ba)      -> (A ∘ B)_ab         x_a y_a, a not a contraction -> (x ∘ y)_a
  Σ_a A_ia B_aj            -> (A B)_ij           Σ_a x_a B_aj        -> (Bᵀ x)_j   Σ_a x_a y_a -> xᵀ y
  Σ_a A_ia (a nowhere else)-> (A 1)_i            Σ_a x_a             -> 1ᵀ x
  Σ_a c_a A_ia B_aj        -> (A diag(c) B)_ij
  x_i y_j -> x yᵀ,   x_i A_ij -> diag(x) A,   A_ij y_j -> A diag(y),   x_i -> x 1ᵀ

A term that does not reduce (three or more free indices, or a pattern with no matrix
form) makes the whole result fall back to the index form and einsum code.
"""
from __future__ import annotations

from collections import Counter

import sympy as sp

from . import functions as F
from . import nodes as N
from .closed import T, _transposes, combine, had, mm, sign_into_sum
from .deltas import Normalizer, Term
from .index_form import IndexContext, full_index, preorder, runs_over


class NoMatch(Exception):
    pass


class Matcher:
    def __init__(self, ctx: IndexContext, normalizer: Normalizer):
        self.ctx, self.nz = ctx, normalizer
        self._terms: dict = {}          # (term, free) -> (coeff, node) or the NoMatch it raised


    # ---- entry points
    def match(self, terms: list[Term], free: tuple):
        """The closed form of Σ terms with free indices `free` (at most two), or None."""
        try:
            return self._match(terms, free)
        except NoMatch:
            return None

    def _match(self, terms, free):
        if len(free) > 2:
            raise NoMatch
        parts = [self.term(t, free) for t in terms]
        return combine(parts, self.shape(free), self.scalar)

    def match_expr(self, expr, free: tuple):
        terms = self.nz.simplify_terms(self.nz.terms(expr), set(free))
        return self._match(terms, free)

    def shape(self, free):
        dims = [self.ctx.ranges[i] for i in free]
        return {0: N.SCALAR, 1: (dims[0], 1) if dims else N.SCALAR}.get(len(free), tuple(dims))

    def ones(self, index):
        return N.Ones((self.ctx.ranges[index], 1))

    # ---- operands
    def node_of(self, base: sp.IndexedBase) -> N.Node:
        """The node an IndexedBase stands for: an atom (inverse, softmax, ...) or a variable."""
        name = base.label.name
        node = self.ctx.atoms.get(name)
        return node if node is not None else N.Sym(name, self.ctx.variables[name].shape)

    def operand(self, f, order):
        if isinstance(f, sp.Indexed):
            node = self.node_of(f.base)
            if len(node.shape) > 2:         # a tensor: no matrix form here (the einsum printer's)
                raise NoMatch
            return _oriented(node, full_index(node.shape, f.indices))
        if isinstance(f, sp.KroneckerDelta):
            a, b = f.args
            if a not in self.ctx.ranges or b not in self.ctx.ranges:    # δ_{i,1}, δ_{i,n+1}: no I
                raise NoMatch
            n = self.ctx.ranges[a]
            return N.Identity((n, n)), (a, b)
        if isinstance(f, sp.Function) and F.is_elementwise(f):
            inner, idx = self.inner(f.args[0], order)
            return N.Func(F.name_of(f.func), inner, inner.shape), idx
        if f.is_Pow and not self.nz.indices(f.exp):
            inner, idx = self.inner(f.base, order)
            return N.HadPow(inner, self.scalar(f.exp), inner.shape), idx
        if f.is_Add:                       # a sum kept whole (deltas.Normalizer._factor_terms)
            return self.inner(f, order)
        raise NoMatch

    def inner(self, expr, order):
        idx = tuple(sorted(self.nz.indices(expr), key=order.index))
        if len(idx) > 2:
            raise NoMatch
        return self.match_expr(expr, idx), idx

    # ---- index-free coefficients
    def scalar(self, e) -> N.Node:
        return SCALAR_RULES[_kind(e)](self, e)

    # ---- one term
    def term(self, t: Term, free: tuple):
        """(coefficient, matrix-form node) of one term; matched once per derivation (the closed
        form and the matrix-form step read the same match)."""
        key = (t, tuple(free))
        hit = self._terms.get(key)
        if hit is None:
            try:
                hit = self._term(t, free)
            except NoMatch as e:
                hit = e
            self._terms[key] = hit
        if isinstance(hit, NoMatch):
            raise hit
        return hit

    def _term(self, t: Term, free: tuple):
        if any(has_index_arithmetic(f) for f in t.factors):
            return t.coeff, convolution(self, t, free)
        order = list(free) + list(t.dummies)
        ops = Operands(self.operand(f, order) for f in t.factors)
        scalars: list[N.Node] = []
        reduce_ops(self, ops, scalars, set(t.dummies))
        node = assemble(self, ops, free)
        for s in scalars:
            node = s if node is None else N.ScalarMul(s, node, node.shape)
        return t.coeff, node


def has_index_arithmetic(f) -> bool:
    """Whether a factor is indexed by an expression (x_{n+j-1}) rather than by index symbols."""
    return any(isinstance(a, sp.Indexed) and any(not i.is_Symbol for i in a.indices)
               for a in preorder(f))


# ---- index arithmetic: 1-D convolutions ------------------------------------------------------
def convolution(M: Matcher, t: Term, free: tuple) -> N.Node:
    """Σ_j A_α B_β (α, β affine in the free index m and the dummy j) as conv / conv_full of
    A, B or their flips, times element-wise factors in m alone.

    Each candidate Σ_t X'_{m+t-c} W'_t (c = 1 valid, c = |W| full; X' = X or flip(X), and so
    for W) is written in A's and B's indices; it matches when a change of the dummy
    j = ±t + const turns the term's indices into the candidate's and the sizes agree.
    Out-of-range entries are 0 on both sides (seed 003's convention), so the sums agree.
    """
    if len(free) != 1 or len(t.dummies) != 1:
        raise NoMatch
    (m,), (j,) = free, t.dummies
    pair, rest = [], []
    for f in t.factors:
        (pair if j in M.nz.indices(f) else rest).append(f)
    operands = [_vector_factor(M, f) for f in pair]
    if len(operands) == 1:                       # Σ_j w_{i-j+1}: against the ones vector of j's range
        operands.append((M.ones(j), j))
    if len(operands) != 2:
        raise NoMatch
    (A, a), (B, b) = operands
    size = M.ctx.size
    Rj = size(M.ctx.ranges[j])

    def covers(node, idx):        # as j runs over its range, idx runs over all of node's entries
        n = size(node.shape[0])
        return sp.expand(n - Rj) == 0 and runs_over(idx, j, n)

    if not (covers(A, a) or covers(B, b)):     # else Σ_j would miss entries of both factors
        raise NoMatch
    R = size(M.ctx.ranges[m])
    t_ = sp.Dummy("t")
    for flips in ((False, False), (False, True), (True, False), (True, True)):
        for mode in ("valid", "full"):
            for (X, xi), (W, wi) in (((A, a), (B, b)), ((B, b), (A, a))):
                nX, nW = size(X.shape[0]), size(W.shape[0])
                c = 1 if mode == "valid" else nW
                want_x = m + t_ - c
                want_x = nX - want_x + 1 if flips[0] else want_x
                want_w = nW - t_ + 1 if flips[1] else t_
                jt = sp.solve(sp.Eq(wi, want_w), j)
                if len(jt) != 1 or sp.expand(xi.subs(j, jt[0]) - want_x) != 0:
                    continue
                out = nX - nW + 1 if mode == "valid" else nX + nW - 1
                if sp.expand(out - R) != 0:
                    continue
                Xn = N.Flip(X, X.shape) if flips[0] and not isinstance(X, N.Ones) else X
                Wn = N.Flip(W, W.shape) if flips[1] and not isinstance(W, N.Ones) else W
                node = N.Conv(Xn, Wn, mode, (M.ctx.ranges[m], 1))
                for f in rest:
                    other, idx = _vector_factor(M, f)
                    if idx != m:
                        raise NoMatch
                    node = had(node, other)
                return node
    raise NoMatch


def _vector_factor(M: Matcher, f):
    """(column-vector node, its index expression) of a factor with one index."""
    if isinstance(f, sp.Indexed) and len(f.indices) == 1:
        node, _ = M.operand(f, [])                 # a row vector comes transposed
        return node, f.indices[0]
    if has_index_arithmetic(f):
        # an element-wise expression of vectors at one shifted index, relu(h_{i+p-1}):
        # matched at a plain index, then shifted back
        inner = [a for a in preorder(f) if isinstance(a, sp.Indexed)]
        shifts = {a.indices for a in inner}
        if len(shifts) != 1 or len(next(iter(shifts))) != 1:
            raise NoMatch
        (alpha,) = next(iter(shifts))
        node = M.node_of(inner[0].base)
        s = M.ctx.fresh(node.shape[0] if node.shape[1] == 1 else node.shape[1])
        plain = f.xreplace({a: a.base[s] for a in inner})
        node, _ = M.operand(plain, [s])
        if node.shape[1] != 1:
            raise NoMatch
        return node, alpha
    idx = tuple(M.nz.indices(f))
    if len(idx) != 1:
        raise NoMatch
    node, _ = M.operand(f, list(idx))
    if node.shape[1] != 1:
        raise NoMatch
    return node, idx[0]


def _oriented(node, idx):
    """An operand: a matrix with two indices, or a column vector with one."""
    if idx[0] is not None and idx[1] is not None:
        return node, idx
    if idx[1] is None and idx[0] is not None:
        return node, (idx[0],)
    if idx[0] is None and idx[1] is not None:
        return T(node), (idx[1],)
    return node, ()


class Operands:
    """The operands of one term, (node, index tuple) each, in order, under ids that keep that
    order (a replaced operand keeps its place; a new one goes last). What the reductions ask
    of them is kept current as they change, not read again on every pass (a chain of 512
    factors is reduced in 512 passes): how often each index is carried and by which
    operands, which operands carry one index twice (A_pp), and which share all their
    indices (A_pq with B_pq or B_qp; x_p with y_p)."""

    def __init__(self, ops=()):
        self._ops: dict = {}
        self._next = 0
        self.counts: Counter = Counter()        # index -> how many times the operands carry it
        self._holders: dict = {}                # index -> ids of the operands that carry it
        self.diagonals: set = set()             # ids of the operands on one index twice
        self.groups: dict = {}                  # frozenset (two places) or 1-tuple -> ids
        self.held: Counter = Counter()          # index tuple -> how many operands carry it
        for node, idx in ops:
            self.append(node, idx)

    def __iter__(self):
        return iter(self._ops.values())

    def __len__(self):
        return len(self._ops)

    def items(self):
        return self._ops.items()

    def __getitem__(self, k):
        return self._ops[k]

    def __setitem__(self, k, op):
        if k in self._ops:
            self._forget(k)
        self._ops[k] = (op[0], tuple(op[1]))
        self._note(k)

    def __delitem__(self, k):
        self._forget(k)
        del self._ops[k]

    def append(self, node, idx):
        self._next += 1
        self[self._next] = (node, idx)

    def count(self, i) -> int:
        return self.counts[i]

    def holding(self, i) -> list:
        """The ids of the operands that carry index i, in order."""
        return sorted(self._holders.get(i, ()))

    def _key(self, idx):
        return frozenset(idx) if len(idx) == 2 else idx if len(idx) == 1 else None

    def _note(self, k):
        idx = self._ops[k][1]
        for i in idx:
            self.counts[i] += 1
            self._holders.setdefault(i, set()).add(k)
        if len(idx) == 2 and idx[0] == idx[1]:
            self.diagonals.add(k)
        key = self._key(idx)
        if key is not None:
            self.groups.setdefault(key, set()).add(k)
        self.held[idx] += 1

    def _forget(self, k):
        idx = self._ops[k][1]
        for i in idx:
            self.counts[i] -= 1
            if not self.counts[i]:
                del self.counts[i]
        for i in dict.fromkeys(idx):            # A_pp: p once
            at = self._holders[i]
            at.discard(k)
            if not at:
                del self._holders[i]
        self.diagonals.discard(k)
        key = self._key(idx)
        if key is not None:
            g = self.groups[key]
            g.discard(k)
            if not g:
                del self.groups[key]
        self.held[idx] -= 1
        if not self.held[idx]:
            del self.held[idx]


def reduce_ops(M: Matcher, ops: Operands, scalars, dummies):
    """The table of the module's docstring, one reduction a pass, until none applies: a
    diagonal first, then a ∘ of two operands on the same indices, then a contraction of the
    first dummy (by name) that contracts."""
    while True:
        if ops.diagonals:
            _diag_or_trace(ops, scalars, dummies, min(ops.diagonals))
            continue
        if _hadamard(ops, dummies):
            continue
        if any(_contract(M, ops, scalars, dummies, a) for a in sorted(dummies, key=_name)):
            continue
        break
    if dummies:
        raise NoMatch


def _name(symbol):
    return symbol.name


def _diag_or_trace(ops, scalars, dummies, k):
    """Operand k is A_pp: tr(A) where p is summed and on A alone, else the vector diag(A)_p."""
    node, idx = ops[k]
    a = idx[0]
    if a in dummies and ops.count(a) == 2:
        scalars.append(_trace(node))
        del ops[k]
        dummies.discard(a)
    else:
        ops[k] = (N.DiagVec(node, (node.shape[0], 1)), (a,))


def _inner(a, b):
    """aᵀ b of two vectors, or bᵀ a where that has fewer transposes (x^T A x, not x^T A^T x)."""
    ab, ba = mm(T(a), b), mm(T(b), a)
    return ba if _transposes(ba) < _transposes(ab) else ab


def _trace(node):
    """tr(M), or tr(Mᵀ) where that has fewer transposes: tr(A^T X^T) is tr(X A)."""
    t = T(node)
    return N.Trace(t) if _transposes(t) < _transposes(node) else N.Trace(node)


def _crossed(idx, dummies, count, held: Counter) -> bool:
    """Σ_pq A_pq B_qp over these two alone is tr(A B), not the ∘ of A and Bᵀ summed
    (1^T (A ∘ X^T) 1); Σ_pq A_pq B_pq is tr(Aᵀ B). Such a pair is left to the contractions.
    `held` counts the operands' index tuples."""
    a, b = idx
    if a == b or not (held[(b, a)] > 0 or held[tuple(idx)] > 1):      # no other operand on the pair
        return False
    return all(i in dummies and count(i) == 2 for i in idx)   # else a diagonal (A ∘ Bᵀ) 1 stays


def _hadamard(ops: Operands, dummies) -> bool:
    """Merge the first pair (in operand order) that share all their indices into one ∘."""
    pairs = []
    for key, members in ops.groups.items():
        if len(members) < 2:
            continue
        members = sorted(members)
        if isinstance(key, frozenset):
            members = [k for k in members if not _crossed(ops[k][1], dummies, ops.count, ops.held)]
        elif key[0] in dummies and ops.count(key[0]) < 3:
            continue
        if len(members) >= 2:
            pairs.append(members[:2])
    if not pairs:
        return False
    k, l = min(pairs)
    (a, ia), (b, ib) = ops[k], ops[l]
    ops[k] = (had(a, b if ia == ib or len(ia) == 1 else T(b)), ia)
    del ops[l]
    return True


def _squared(node):
    """The base of `A .^ 2` (an entry squared, x_p^2), else None."""
    if isinstance(node, N.HadPow) and isinstance(node.p, N.Num) and node.p.value == 2:
        return node.a
    return None


def _sum_of_squares(ops, scalars, dummies, k) -> bool:
    """Σ_p x_p^2 is x^T x and Σ_p,q X_pq^2 is ‖X‖^2 (‖X‖_F^2), as a TA writes them, where the
    squared operand is all its sums hold (it was 1^T x .^ 2, 1^T X .^ 2 1)."""
    node, idx = ops[k]
    base = _squared(node)
    if base is None or len(set(idx)) != len(idx) or not all(i in dummies and ops.count(i) == 1 for i in idx):
        return False
    scalars.append(mm(T(base), base) if len(idx) == 1 else N.Power(N.Norm(base), N.Num(2), N.SCALAR))
    del ops[k]
    dummies.difference_update(idx)
    return True


def _contract(M: Matcher, ops: Operands, scalars, dummies, a) -> bool:
    c, holders = ops.count(a), ops.holding(a)
    if c == 1:
        k = holders[0]
        if _sum_of_squares(ops, scalars, dummies, k):
            return True
        node, idx = ops[k]
        one = M.ones(a)
        if len(idx) == 1:
            scalars.append(mm(T(one), node))
            del ops[k]
        elif idx[0] != idx[1] and all(i in dummies and ops.count(i) == 1 for i in idx):
            # the whole sum of a matrix, 1ᵀ M 1 = 1ᵀ Mᵀ 1: the way round with fewer transposes
            flip = T(node)
            if _transposes(flip) <= _transposes(node):
                node, idx = flip, idx[::-1]
            scalars.append(mm(mm(T(M.ones(idx[0])), node), M.ones(idx[1])))
            del ops[k]
            dummies.difference_update(idx)
            return True
        else:
            m = node if idx[1] == a else T(node)
            other = idx[0] if idx[1] == a else idx[1]
            ops[k] = (mm(m, one), (other,))
        dummies.discard(a)
        return True
    if c == 2 and len(holders) == 2:
        k, l = holders
        (A, ia), (B, ib) = ops[k], ops[l]
        if len(ia) == 1 and len(ib) == 1:
            scalars.append(_inner(A, B))
            new = None
        elif len(ia) == 1 or len(ib) == 1:
            (x, _), (Mx, im) = (ops[k], ops[l]) if len(ia) == 1 else (ops[l], ops[k])
            m = Mx if im[1] == a else T(Mx)
            new = (mm(m, x), (im[0] if im[1] == a else im[1],))
        else:
            Ao = A if ia[1] == a else T(A)
            Bo = B if ib[0] == a else T(B)
            i = ia[0] if ia[1] == a else ia[1]
            j = ib[1] if ib[0] == a else ib[0]
            new = (mm(Ao, Bo), (i, j))
        for m in holders:
            del ops[m]
        if new is not None:
            ops.append(*new)
        dummies.discard(a)
        return True
    if c >= 3:
        vecs = [k for k in holders if ops[k][1] == (a,)]
        mats = [k for k in holders if len(ops[k][1]) == 2 and a in ops[k][1]]
        if len(vecs) == 1 and len(mats) >= 2:
            a2 = M.ctx.fresh(M.ctx.ranges[a])
            v = ops[vecs[0]][0]
            ops[vecs[0]] = (N.DiagMat(v, (v.shape[0], v.shape[0])), (a, a2))
            m = mats[0]
            node, idx = ops[m]
            ops[m] = (node, tuple(a2 if x == a else x for x in idx))
            dummies.add(a2)
            return True
    return False


def assemble(M: Matcher, ops, free):
    """The remaining operands carry free indices only: build the result oriented as `free`."""
    for _, idx in ops:
        if any(i not in free for i in idx):
            raise NoMatch
    if not free:
        return None
    if len(free) == 1:
        (i,) = free
        vecs = [n for n, idx in ops]
        if len(vecs) > 1:
            raise NoMatch
        return vecs[0] if vecs else M.ones(i)
    i, j = free
    mats = [n if idx == (i, j) else T(n) for n, idx in ops if len(idx) == 2]
    vi = [n for n, idx in ops if idx == (i,)]
    vj = [n for n, idx in ops if idx == (j,)]
    if len(mats) > 1 or len(vi) > 1 or len(vj) > 1:
        raise NoMatch
    if mats:
        out = mats[0]
        if vi:
            out = mm(N.DiagMat(vi[0], (vi[0].shape[0],) * 2), out)
        if vj:
            out = mm(out, N.DiagMat(vj[0], (vj[0].shape[0],) * 2))
        return out
    left = vi[0] if vi else M.ones(i)
    right = vj[0] if vj else M.ones(j)
    return mm(left, T(right))


# ---- index-free SymPy -> scalar node ---------------------------------------------------------
def _kind(e):
    if e.is_Number or e is sp.pi:
        return "number"
    if isinstance(e, sp.Symbol):
        return "symbol"
    if e.is_Add:
        return "add"
    if e.is_Mul:
        return "mul"
    if e.is_Pow:
        return "pow"
    if isinstance(e, sp.Sum):
        return "sum"
    if isinstance(e, sp.Function) and F.is_elementwise(e):
        return "function"
    return "other"


def _number(M, e):
    if e.is_Rational:
        from fractions import Fraction
        return N.Num(Fraction(int(e.p), int(e.q)))
    return N.num(N.PI if e is sp.pi else float(e))


def _symbol(M, e):
    node = M.ctx.atoms.get(e.name)
    if node is not None:
        return node
    if e.name in M.ctx.variables.sizes:
        return N.Size(e.name)
    if e.name in M.ctx.variables:
        return N.Sym(e.name, N.SCALAR)
    raise NoMatch


def _add(M, e):
    parts = []
    for a in e.args:          # signs stay coefficients, so a - b prints as a - b, not a + -b
        c, rest = a.as_coeff_Mul()
        parts.append((c, M.scalar(rest)) if rest != 1 else (a, N.Num(1)))   # σ - 1, not -1 + σ
    return combine(parts, N.SCALAR, M.scalar)


def _mul(M, e):
    num, den = [], []
    c, rest = e.as_coeff_Mul()
    c, factors = sign_into_sum(c, list(sp.Mul.make_args(rest)))
    for f in factors:
        if f.is_Pow and f.exp.is_Number and f.exp < 0:
            den.append(f.base ** -f.exp)
        else:
            num.append(f)
    out = None
    for f in num:
        s = M.scalar(f)
        out = s if out is None else N.ScalarMul(out, s, N.SCALAR)
    if out is None:
        out = N.Num(1)
    if den:
        d = None
        for f in den:
            s = M.scalar(f)
            d = s if d is None else N.ScalarMul(d, s, N.SCALAR)
        out = N.Div(out, d, N.SCALAR)
    return combine([(c, out)], N.SCALAR, M.scalar)


def _pow(M, e):
    b, x = e.args
    if x == -1:
        return N.Div(N.Num(1), M.scalar(b), N.SCALAR)
    return N.Power(M.scalar(b), M.scalar(x), N.SCALAR)


def _sum(M, e):
    node = M._match(M.nz.simplify_terms(M.nz.terms(e), set()), ())
    if node is None:
        raise NoMatch
    return node


def _function(M, e):
    return N.Func(F.name_of(e.func), M.scalar(e.args[0]), N.SCALAR)


def _other(M, e):
    raise NoMatch


SCALAR_RULES = {"number": _number, "symbol": _symbol, "add": _add, "mul": _mul, "pow": _pow,
                "sum": _sum, "function": _function, "other": _other}
