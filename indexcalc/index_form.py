"""Typed expression tree -> SymPy indexed sums, one entry at a time.

`IndexContext.entry(node, (i, j))` is the SymPy expression of the entry [node]_ij, with
explicit `Sum`s over fresh dummy indices (the seeds keep their Σ signs). An index
tuple always has two places, rows and columns; a place whose size is 1 holds None.

Matrix functions with no polynomial entries (inverse, softmax, det, norm) are atoms:
`IndexedBase`s (or `Symbol`s, for scalars) registered in the context, whose derivative
rules live in diff.py.
"""
from __future__ import annotations

import functools
from fractions import Fraction

import sympy as sp
from sympy.core.cache import CACHE
from sympy.core.sorting import default_sort_key

from . import functions as F
from . import nodes as N
from .errors import UnsupportedError

DUMMY_POOL = list("pqrstuvwabcdefgh") + [f"{c}{k}" for k in range(1, 40) for c in "pqrstuvw"]
FREE_POOL = list("ijklmnabcd") + [f"i{k}" for k in range(1, 10)]


class IndexContext:
    """Fresh indices, their ranges, and the atoms of one derivation."""

    def __init__(self, variables, reserved=()):
        self.variables = variables
        self.reserved = set(reserved) | set(variables.sizes) | {name for name, _ in variables.items()}
        self.ranges: dict[sp.Symbol, object] = {}     # index -> size (str name or int)
        self.atoms: dict[str, N.Node] = {}             # SymPy name -> node
        self._atom_names: dict[N.Node, str] = {}
        self._next = 0
        self._free_used: set = set()
        self.upstream: set = set()                     # backprop: dY, printed ∂L/∂Y

    # ---- indices
    def size(self, dim):
        if isinstance(dim, int):
            return sp.Integer(dim)
        if isinstance(dim, N.LinSize):
            return sum((c * self.size(name) for name, c in dim.terms), sp.Integer(dim.const))
        return sp.Symbol(dim, integer=True, positive=True)

    def fresh(self, dim) -> sp.Symbol:
        while True:
            name = DUMMY_POOL[self._next] if self._next < len(DUMMY_POOL) else f"p{self._next}"
            self._next += 1
            if name not in self.reserved and name not in self._free_used and \
                    sp.Symbol(name, integer=True) not in self.ranges:     # canonical names took it
                break
        s = sp.Symbol(name, integer=True)
        self.ranges[s] = dim
        return s

    def free(self, shape) -> tuple:
        """Free indices for the non-unit places of a shape, named i, j, k, ... in order."""
        out = []
        for dim in shape:
            if dim == 1:
                out.append(None)
                continue
            name = next(n for n in FREE_POOL if n not in self.reserved and n not in self._free_used)
            self._free_used.add(name)
            s = sp.Symbol(name, integer=True)
            self.ranges[s] = dim
            out.append(s)
        return tuple(out)

    def limit(self, index):
        return (index, 1, self.size(self.ranges[index]))

    def sum(self, body, *indices):
        return make_sum(body, [self.limit(i) for i in indices])

    # ---- atoms
    def atom(self, node: N.Node) -> str:
        name = self._atom_names.get(node)
        if name is None:
            name = f"@{len(self.atoms)}"
            self.atoms[name] = node
            self._atom_names[node] = name
        return name

    def atom_entry(self, node: N.Node, idx):
        name = self.atom(node)
        if node.is_scalar:
            return sp.Symbol(name, real=True)
        return sp.IndexedBase(name, real=True)[tuple(i for i in idx if i is not None)]

    # ---- entries
    def entry(self, node: N.Node, idx) -> sp.Expr:
        return ENTRY[type(node)](self, node, tuple(idx))


def make_sum(body, limits) -> sp.Expr:
    """sp.Sum(body, *limits) without SymPy's checks of the whole body.

    Sum.__new__ walks the body for Piecewise and free symbols; over the nested sums of a
    long product chain that walk is quadratic. Our limits are always (index, 1, size) with
    a fresh index, which is what those checks would accept.
    """
    if body == 0:
        return sp.S.Zero
    limits = [sp.Tuple(*lim) for lim in limits]
    if isinstance(body, sp.Sum):                 # Σ_p Σ_q f = Σ_{q,p} f, as sp.Sum does
        body, limits = body.function, [*body.limits, *limits]
    obj = sp.Expr.__new__(sp.Sum)
    obj._args = (body, *limits)
    obj.is_commutative = body.is_commutative
    return obj


def _memoised(fn):
    """fn remembered like SymPy's own constructors: bounded, and emptied by SymPy's
    clear_cache (its registry), so that no derivation gets a free ride from an earlier one
    where a caller clears it (the bench does)."""
    cached = functools.lru_cache(maxsize=1 << 16, typed=True)(fn)
    CACHE.append(cached)
    return cached


@_memoised
def entry(base, indices: tuple) -> sp.Expr:
    """base[indices], made once: Indexed() works out its assumptions from scratch each call,
    and renaming a term of k factors makes k of them."""
    return sp.Indexed(base, *indices)


@_memoised
def delta(a, b) -> sp.Expr:
    """KroneckerDelta(a, b). Two different index symbols with the same assumptions are
    neither equal nor unequal to SymPy, so its evaluation (assumption queries on a - b,
    milliseconds) only orders them: that order is taken here directly."""
    if isinstance(a, sp.Symbol) and isinstance(b, sp.Symbol) and a != b and \
            a.assumptions0 == b.assumptions0 and not a.assumptions0.get("below_fermi") and \
            not a.assumptions0.get("above_fermi"):
        if default_sort_key(b) < default_sort_key(a):
            a, b = b, a
        return sp.KroneckerDelta(a, b, evaluate=False)
    return sp.KroneckerDelta(a, b)


def rebuilt(e, args) -> sp.Expr:
    """e with new arguments, as e.func(*args) makes it, the common kinds made faster: a Σ
    without Sum's checks (make_sum), an entry and a Kronecker delta remembered."""
    if isinstance(e, sp.Sum):
        return make_sum(args[0], args[1:])
    if isinstance(e, sp.Indexed):
        return entry(args[0], args[1:])
    if isinstance(e, sp.KroneckerDelta) and len(args) == 2:
        return delta(*args)
    return e.func(*args)


def replace(expr, sub: dict, ranges: dict | None = None, avoid_capture: bool = True) -> sp.Expr:
    """expr.xreplace(sub), rebuilding sums with make_sum (xreplace re-runs Sum's checks at
    every level of a nest, which is quadratic in its depth).

    When the keys are indices (symbols), the substitution avoids capture: an index bound by
    an inner Σ is not replaced there, and an inner Σ whose index a value would fall under is
    renamed first (Σ_q a_q A_qp with p -> q becomes Σ_r a_r A_rq); `ranges` (the context's
    index -> size) then learns the new name."""
    if not sub:
        return expr
    memo: dict = {}
    indices = avoid_capture and all(isinstance(k, sp.Symbol) for k in sub)
    values = set().union(*[v.free_symbols for v in sub.values() if isinstance(v, sp.Basic)]) \
        if indices else set()

    def walk(e):
        hit = sub.get(e)
        if hit is not None:
            return hit
        if not e.args:
            return e
        done = memo.get(e)
        if done is None:
            if indices and isinstance(e, sp.Sum) and _binds(e, sub, values):
                done = _replace_in_sum(e, sub, values, ranges)
            else:
                args = tuple(walk(a) for a in e.args)
                done = e if args == e.args else rebuilt(e, args)
            memo[e] = done
        return done

    return walk(expr)


def substitute(expr, sub: dict) -> sp.Expr:
    """expr.xreplace(sub) (every occurrence, a Σ's own index too), with sums rebuilt by
    make_sum and each subexpression visited once: `replace` without its capture avoidance."""
    return replace(expr, sub, avoid_capture=False)


def preorder(expr):
    """sp.preorder_traversal(expr), in its order, by a stack: SymPy's recursive generators
    pass each subexpression up through every level above it, which is quadratic in the depth
    of a nest (Σ over 512 indices is 512 Sums deep)."""
    todo = [expr]
    while todo:
        e = todo.pop()
        yield e
        args = e.args if isinstance(e, sp.Basic) else e if isinstance(e, (tuple, list)) else ()
        todo.extend(reversed(args))


def atoms_of(expr, *types) -> set:
    """expr.atoms(*types), each distinct subexpression visited once: SymPy's walk visits every
    occurrence, and the entries and deltas of k terms of k factors recur k times over."""
    out, seen, todo = set(), set(), [expr]
    while todo:
        e = todo.pop()
        if isinstance(e, types):
            out.add(e)
        for a in e.args:
            if a not in seen:
                seen.add(a)
                todo.append(a)
    return out


def rename_at_once(expr, sub: dict, ranges: dict | None = None, present=None) -> sp.Expr:
    """expr with the indices of `sub` renamed all at once: a new name that is also an old
    one (p -> q, q -> p) does not collide, as `replace` substitutes simultaneously (each
    occurrence is looked up in `sub` once, and a value is not substituted again).
    `present`: the indices free in expr, if the caller knows them (only those are renamed)."""
    if not sub:
        return expr
    present = expr.free_symbols if present is None else present
    sub = {k: v for k, v in sub.items() if k in present and k != v}
    return replace(expr, sub, ranges) if sub else expr


def rename_bound(expr, name_for, around=frozenset(), ranges: dict | None = None) -> sp.Expr:
    """expr with the index of every Σ in it renamed to name_for(old, names in use there),
    outermost Σ first; the names in use are `around`, those free in the Σ's body, and those
    already given to the indices of the Σ's around it."""
    def walk(e, around):
        if not e.args or not e.has(sp.Sum):
            return e
        if not isinstance(e, sp.Sum):
            args = tuple(walk(a, around) for a in e.args)
            return e if args == e.args else e.func(*args)
        bound = [lim[0] for lim in e.limits]
        around = around | (e.function.free_symbols - set(bound))
        sub = {}
        for d in bound:
            sub[d] = name_for(d, around)
            around = around | {sub[d]}
        body = walk(rename_at_once(e.function, sub, ranges), around)
        return make_sum(body, [(sub[lim[0]], *lim[1:]) for lim in e.limits])

    return walk(expr, frozenset(around))


def _binds(s: sp.Sum, sub: dict, values: set) -> bool:
    return any(lim[0] in sub or lim[0] in values for lim in s.limits)


def _replace_in_sum(s: sp.Sum, sub: dict, values: set, ranges):
    bound = [lim[0] for lim in s.limits]
    inner = {k: v for k, v in sub.items() if k not in bound}
    if not inner:
        return s
    body, limits = s.function, list(s.limits)
    taken = {str(x) for x in body.free_symbols | values | set(inner)}
    for k, lim in enumerate(limits):
        if lim[0] in values:                              # would capture: rename it first
            new = _fresh_like(lim[0], taken, ranges)
            body = replace(body, {lim[0]: new}, ranges)
            limits[k] = (new, *lim[1:])
    return make_sum(replace(body, inner, ranges), [tuple(replace(x, inner, ranges) for x in lim) for lim in limits])


def _fresh_like(old, taken: set, ranges):
    """A name for a renamed bound index: unused here, and new or running over the same size."""
    if ranges is None:
        return sp.Symbol(next(n for n in DUMMY_POOL if n not in taken), integer=True)
    new = name_for_range(DUMMY_POOL + [f"p{j}" for j in range(100, 999)], ranges.get(old), ranges,
                         {sp.Symbol(n, integer=True) for n in taken})
    if new is None:
        raise RuntimeError("no index name left")
    taken.add(str(new))
    return new


def name_for_range(pool, dim, ranges: dict, used) -> sp.Symbol | None:
    """The first name of the pool not in `used` that is new or already runs over `dim` (a
    name has one range per derivation; a new one is registered in `ranges`)."""
    for name in pool:
        s = index_symbol(name)
        if s not in used and ranges.setdefault(s, dim) == dim:
            return s
    return None


def names_by_range(pool, ranges: dict, used: set):
    """take(dim): name_for_range(pool, dim, ranges, used), for a run of requests in which every
    name given is then added to `used`. The pool is read once in the whole run, as far as the
    requests need, each name filed under the range it runs over (or as new): the dummies of
    one term of a chain of 512 factors run over 512 ranges, and each request read again the
    names the others had taken."""
    owned: dict = {}                    # range -> positions read so far of the names running over it
    new: list = []                      # positions read so far of the names no range had
    at = {"read": 0, "new": 0}
    at_owned: dict = {}

    def take(dim):
        own, c = owned.get(dim, ()), at_owned.get(dim, 0)
        while c < len(own) and index_symbol(pool[own[c]]) in used:
            c += 1
        at_owned[dim] = c
        j = at["new"]
        while j < len(new) and index_symbol(pool[new[j]]) in used:     # given to another range
            j += 1
        at["new"] = j
        found = min(own[c] if c < len(own) else len(pool), new[j] if j < len(new) else len(pool))
        while found == len(pool) and at["read"] < len(pool):      # read on: the names read are all
            k = at["read"]                                           # before any not yet read
            at["read"] += 1
            s = index_symbol(pool[k])
            if s in ranges:
                owned.setdefault(ranges[s], []).append(k)
                if ranges[s] == dim and s not in used:
                    found = k
            else:
                new.append(k)
                if s not in used:
                    found = k
        if found == len(pool):
            return None
        s = index_symbol(pool[found])
        ranges.setdefault(s, dim)
        return s
    return take


_INDEX_SYMBOLS: dict = {}


def index_symbol(name: str) -> sp.Symbol:
    """The index symbol of a name (made once: SymPy's Symbol() is slow to call in a loop)."""
    s = _INDEX_SYMBOLS.get(name)
    if s is None:
        s = _INDEX_SYMBOLS[name] = sp.Symbol(name, integer=True)
    return s


def place(shape, idx):
    """The indices of an operand of shape `shape` inside a result indexed by idx (broadcasting)."""
    return tuple(i if d != 1 else None for d, i in zip(shape, idx))


def full_index(shape, indices) -> tuple:
    """Indexed's indices (non-unit places only) -> a two-place tuple with None for size 1."""
    it = iter(indices)
    return tuple(None if d == 1 else next(it) for d in shape)


def _number(value):
    if value == N.PI and isinstance(value, float):
        return sp.pi
    if isinstance(value, float):
        return sp.Float(value)
    v = Fraction(value)
    return sp.Rational(v.numerator, v.denominator)


def _sym(ctx: IndexContext, node: N.Sym, idx):
    if node.shape == N.SCALAR:
        return sp.Symbol(node.name, real=True)
    return sp.IndexedBase(node.name, real=True)[tuple(i for i in idx if i is not None)]


def array_index(shape, idx) -> tuple:
    """An entry's index tuple (one place per place of the engine's shape) in NumPy's layout:
    a scalar has none, a column vector one."""
    if len(shape) > 2:
        return tuple(idx)
    if tuple(shape) == N.SCALAR:
        return ()
    if shape[1] == 1 and shape[0] != 1:
        return (idx[0],)
    return tuple(idx)


def engine_index(shape, aidx) -> tuple:
    """The inverse of array_index."""
    if len(shape) > 2:
        return tuple(aidx)
    if tuple(shape) == N.SCALAR:
        return (None, None)
    if shape[1] == 1 and shape[0] != 1:
        return (aidx[0], None)
    return tuple(aidx)


def _aligned(dims, idx) -> tuple:
    """The indices of axes `dims` aligned right against a result's indices `idx` (NumPy's
    broadcasting): a size-1 axis holds None."""
    tail = tuple(idx)[len(idx) - len(dims):] if dims else ()
    return tuple(None if d == 1 else i for d, i in zip(dims, tail))


def broadcast_index(shape, out_shape, idx) -> tuple:
    """The entry of an operand of `shape` inside a broadcast result of `out_shape` indexed by idx."""
    from .layout import array_shape
    return engine_index(shape, _aligned(array_shape(shape), array_index(out_shape, idx)))


def _batched_matmul(ctx, node: N.MatMul, idx):
    """np.matmul's entry: [A B]_{..., i, j} = Σ_p A_{..., i, p} B_{..., p, j}, batch axes broadcast."""
    from .layout import array_shape
    A, B = array_shape(node.a.shape), array_shape(node.b.shape)
    out = array_index(node.shape, idx)
    if len(B) == 1:
        batch, i, j = out[:-1], out[-1], None
    else:
        batch, i, j = out[:-2], out[-2], out[-1]
    k = A[-1]
    p = ctx.fresh(k) if k != 1 else None
    ai = _aligned(A[:-2], batch) + (None if A[-2] == 1 else i, p)
    bi = (p,) if len(B) == 1 else _aligned(B[:-2], batch) + (p, None if B[-1] == 1 else j)
    body = ctx.entry(node.a, engine_index(node.a.shape, ai)) * ctx.entry(node.b, engine_index(node.b.shape, bi))
    return ctx.sum(body, p) if p is not None else body


def _matmul(ctx, node: N.MatMul, idx):
    if len(node.shape) > 2 or len(node.a.shape) > 2 or len(node.b.shape) > 2:
        return _batched_matmul(ctx, node, idx)
    k = node.a.shape[1]
    if k == 1:
        return ctx.entry(node.a, (idx[0], None)) * ctx.entry(node.b, (None, idx[1]))
    p = ctx.fresh(k)
    return ctx.sum(ctx.entry(node.a, (idx[0], p)) * ctx.entry(node.b, (p, idx[1])), p)


def operand_index(operand, node, idx) -> tuple:
    """The entry of an element-wise operation's operand inside its result's entry idx."""
    if len(node.shape) > 2:               # NumPy's broadcasting, trailing axes aligned
        return broadcast_index(operand.shape, node.shape, idx)
    return place(operand.shape, idx)


def _broadcast(op):
    def rule(ctx, node, idx):
        return op(ctx.entry(node.a, operand_index(node.a, node, idx)),
                  ctx.entry(node.b, operand_index(node.b, node, idx)))
    return rule


def _sum_chain(ctx, node, idx):
    """a + b - c + ...: the entries of a chain of sums and differences added at once, each
    operand's in turn (left to right, the order its indices are made in). Added two at a
    time, each addition sorts the growing sum again: quadratic in the number of terms."""
    terms, todo = [], [(node, idx, 1)]
    while todo:
        n, ix, sign = todo.pop()
        if isinstance(n, (N.Add, N.Sub)):
            todo.append((n.b, operand_index(n.b, n, ix), -sign if isinstance(n, N.Sub) else sign))
            todo.append((n.a, operand_index(n.a, n, ix), sign))
        else:
            e = ctx.entry(n, ix)
            terms.append(-e if sign < 0 else e)
    return sp.Add(*terms)


def _trace(ctx, node, idx):
    if node.a.shape == N.SCALAR:
        return ctx.entry(node.a, idx)
    p = ctx.fresh(node.a.shape[0])
    return ctx.sum(ctx.entry(node.a, (p, p)), p)


def _sum_all(ctx, node, idx):
    ps = tuple(ctx.fresh(d) if d != 1 else None for d in node.a.shape)
    return ctx.sum(ctx.entry(node.a, ps), *[p for p in ps if p is not None])


def _sum_tensor_axis(ctx, node, idx):
    """sum(X, k) of a tensor: the axis k summed, the result's indices in the other places."""
    ax = node.axis
    d = node.a.shape[ax]
    out = array_index(node.shape, idx)
    p = ctx.fresh(d) if d != 1 else None
    inner = ctx.entry(node.a, tuple(out[:ax]) + (p,) + tuple(out[ax:]))
    return ctx.sum(inner, p) if p is not None else inner


def _sum_axis(ctx, node: N.SumAxis, idx):
    if len(node.a.shape) > 2:
        return _sum_tensor_axis(ctx, node, idx)
    ax = node.axis
    d = node.a.shape[ax]
    if d == 1:
        return ctx.entry(node.a, idx)
    p = ctx.fresh(d)
    inner = (idx[0], p) if ax == 1 else (p, idx[1])
    return ctx.sum(ctx.entry(node.a, inner), p)


def _mean_all(ctx, node, idx):
    count = sp.Mul(*[ctx.size(d) for d in node.a.shape])
    return _sum_all(ctx, node, idx) / count


def _mean_axis(ctx, node: N.MeanAxis, idx):
    return _sum_axis(ctx, node, idx) / ctx.size(node.a.shape[node.axis])


def _norm2(ctx, node, idx):
    ps = tuple(ctx.fresh(d) if d != 1 else None for d in node.a.shape)
    return ctx.sum(ctx.entry(node.a, ps) ** 2, *[p for p in ps if p is not None])


def _matpow(ctx, node: N.MatPow, idx):
    chain = node.a
    for _ in range(node.k - 1):
        chain = N.MatMul(chain, node.a, node.a.shape)
    return ctx.entry(chain, idx)


def _conv(ctx, node: N.Conv, idx):
    """valid: Σ_j x_{n+j-1} w_j;  full: Σ_j x_{n+j-k} w_j, where x out of its range is 0."""
    n, k = idx[0], node.b.shape[0]
    j = ctx.fresh(k)
    shift = 1 if node.mode == "valid" else ctx.size(k)
    if node.mode == "full" and not _zero_padded(node.a):
        raise UnsupportedError(
            "conv_full(x, w) is supported when x is a variable (or flip of one): its entries "
            "outside 1..d are then 0, as the full convolution needs; name the expression first")
    return ctx.sum(ctx.entry(node.a, (n + j - shift, None)) * ctx.entry(node.b, (j, None)), j)


def _zero_padded(node) -> bool:
    """Whether the index form of node's entries is 0 outside its range (x_{d+1} = 0)."""
    if isinstance(node, (N.Transpose, N.Flip)):
        return _zero_padded(node.a)
    return isinstance(node, N.Sym)


def runs_over(expr, index, size) -> bool:
    """Whether expr runs over exactly 1..size as `index` runs over its range, 1..size: it is
    the index itself, or the index flipped (size + 1 - index)."""
    return expr == index or sp.expand(expr - (size + 1 - index)) == 0


def _flip(ctx, node: N.Flip, idx):
    k = ctx.size(node.shape[0])
    return ctx.entry(node.a, (k - idx[0] + 1, None))


ENTRY = {
    N.Sym: _sym,
    N.Num: lambda ctx, n, idx: _number(n.value),
    N.Size: lambda ctx, n, idx: ctx.size(n.name),
    N.Ones: lambda ctx, n, idx: sp.S.One,
    N.Identity: lambda ctx, n, idx: delta(*idx) if None not in idx else sp.S.One,   # I of size 1
    N.MatMul: _matmul,
    N.ScalarMul: lambda ctx, n, idx: ctx.entry(n.s, (None, None)) * ctx.entry(n.a, idx),
    N.Div: lambda ctx, n, idx: ctx.entry(n.a, idx) / ctx.entry(n.s, (None, None)),
    N.Add: _sum_chain,
    N.Sub: _sum_chain,
    N.Neg: lambda ctx, n, idx: -ctx.entry(n.a, idx),
    N.Transpose: lambda ctx, n, idx: ctx.entry(n.a, (idx[1], idx[0]) if len(idx) == 2 else
                                               tuple(idx[:-2]) + (idx[-1], idx[-2])),
    N.Inverse: lambda ctx, n, idx: ctx.atom_entry(n, idx),
    N.MatPow: _matpow,
    N.Power: lambda ctx, n, idx: ctx.entry(n.a, idx) ** ctx.entry(n.p, (None, None)),
    N.Hadamard: _broadcast(lambda a, b: a * b),
    N.HadDiv: _broadcast(lambda a, b: a / b),
    N.HadPow: lambda ctx, n, idx: ctx.entry(n.a, idx) ** ctx.entry(n.p, (None, None)),
    N.Trace: _trace,
    N.Det: lambda ctx, n, idx: ctx.atom_entry(n, idx),
    N.LogDet: lambda ctx, n, idx: sp.log(ctx.atom_entry(N.Det(n.a), idx)),
    N.Norm: lambda ctx, n, idx: ctx.atom_entry(n, idx),
    N.Norm2: _norm2,
    N.SumAll: _sum_all,
    N.SumAxis: _sum_axis,
    N.Mean: _mean_all,
    N.MeanAxis: _mean_axis,
    N.Func: lambda ctx, n, idx: F.apply(n.name, ctx.entry(n.a, idx)),
    N.Softmax: lambda ctx, n, idx: ctx.atom_entry(n, idx),
    N.DiagMat: lambda ctx, n, idx: ctx.entry(n.a, (idx[0], None)) * (
        delta(idx[0], idx[1]) if idx[0] is not None else 1),        # diag of a 1-vector: 1×1
    N.DiagVec: lambda ctx, n, idx: ctx.entry(n.a, (idx[0], idx[0])),
    N.Conv: _conv,
    N.Flip: _flip,
}
