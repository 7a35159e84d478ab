"""Normal form of index expressions and Kronecker-delta sifting.

An index expression becomes a list of `Term`s: coefficient × product of factors, summed
over dummy indices. Sums are pulled out of products (Σ_i a_i Σ_j b_j = Σ_ij a_i b_j),
products are distributed over sums; the arguments of functions and of non-integer
powers are normalised inside.

Sifting: Σ_p a_p δ_pk = a_k. A delta between two free indices stays (δ_in Q_mj); a dummy
that no factor mentions any more contributes its range (Σ_p 1 = n). No Piecewise guards:
indices always run over the whole range of the axis they index.
"""
from __future__ import annotations

import heapq
import re
from dataclasses import dataclass

import sympy as sp

from .index_form import (DUMMY_POOL, IndexContext, name_for_range, names_by_range, preorder, rename_at_once,
                         rename_bound, replace, runs_over)


@dataclass(frozen=True)
class Term:
    coeff: sp.Expr           # free of indices
    factors: tuple           # SymPy factors that carry indices
    dummies: tuple           # summed indices

    def expr(self, ctx: IndexContext) -> sp.Expr:
        body = sp.Mul(*self.factors)      # the coefficient outside the sum: 2 Σ_p x_p, as read back
        return self.coeff * (ctx.sum(body, *self.dummies) if self.dummies else body)


class Normalizer:
    def __init__(self, ctx: IndexContext):
        self.ctx = ctx
        self._indices: dict = {}
        self._distribute = False
        self._reserved_at: tuple = (None, frozenset(), frozenset())
        self._symbol_memo: dict = {}        # id(factors) -> (factors, their free indices)
        self._joined: dict = {}             # id(factors) -> (factors, the two tuples joined)

    def indices(self, e) -> frozenset:
        """The index symbols free in e (memoised: factors recur across terms)."""
        hit = self._indices.get(e)
        if hit is None:
            # by structure, each subexpression once: SymPy's free_symbols of a nested Sum walks
            # the whole tree again at every level (tr(X^64): 90 of its 95 s)
            if e.is_Symbol:
                hit = frozenset((e,)) if e in self.ctx.ranges else frozenset()
            elif isinstance(e, sp.Sum):
                hit = self.indices(e.function).difference(lim[0] for lim in e.limits)
            elif not e.args:
                hit = frozenset()
            else:
                hit = frozenset().union(*(self.indices(a) for a in e.args))
            self._indices[e] = hit
        return hit

    # ---- expression -> terms
    def terms(self, e) -> list[Term]:
        if e.is_Add and not self.indices(e):
            return [Term(self.atom(e), (), ())] if e != 0 else []   # a coefficient stays a product:
        if e.is_Add:                                               # (1 - t²)(1 - u²), not 4 terms
            return [t for a in e.args for t in self.terms(a)]
        if e.is_Mul:
            out = [Term(sp.S.One, (), ())]
            for f in e.args:
                out = [self._merge(t, u) for t in out for u in self._factor_terms(f)]
            return out
        if isinstance(e, sp.Sum):
            dummies = tuple(lim[0] for lim in e.limits)
            return [Term(t.coeff, t.factors, t.dummies + dummies) for t in self.terms(e.function)]
        if e.is_Pow and e.exp.is_Integer and e.exp > 0 and (e.base.is_Add or isinstance(e.base, sp.Sum)) \
                and self.indices(e.base) and e.exp <= 4 and (self._distribute or _marked(e.base)):
            return self.terms(sp.Mul(*[e.base] * int(e.exp), evaluate=False))
        atom = self.atom(e)
        if atom == 0:
            return []
        if self.indices(atom):
            return [Term(sp.S.One, (atom,), ())]
        return [Term(atom, (), ())]

    def _factor_terms(self, f) -> list[Term]:
        """A factor of a product as terms. A sum that carries no Kronecker delta (nor a
        derivative's mark) stays one factor, normalised inside: only a delta needs the
        product distributed over it to be sifted, and distributing (x_q - m)(Σ_r (x_r - m) y_r)
        or expanding (x_q - m)^2 trades the form the user wrote for one that cancels large
        terms (a centred variance would become E[x²] - E[x]²)."""
        if f.is_Add and self.indices(f) and not _marked(f) and not self._distribute:
            inside = self.normal(f)
            if inside.is_Add:
                c, rest = inside.primitive()         # 2 x_q - 2 m -> 2 (x_q - m)
                if rest.is_Add:
                    return [Term(c, (rest,), ())]
            return self.terms(inside)
        return self.terms(f)

    def atom(self, e):
        """A factor that is not a product or a sum: normalise what is inside it."""
        if e.is_Pow:
            return self.normal(e.base) ** self.normal(e.exp)
        if isinstance(e, sp.Function) and e.args and not isinstance(e, sp.KroneckerDelta):
            return e.func(*[self.normal(a) for a in e.args])
        return e

    def _merge(self, t: Term, u: Term) -> Term:
        # (the indices of t, which grows along a product, only when u has dummies to clash)
        clash = set(u.dummies) & (self._symbols(t) | set(t.dummies)) if u.dummies else ()
        if clash:
            u = self.rename(u, {d: self.ctx.fresh(self.ctx.ranges[d]) for d in clash})
        clash = set(t.dummies) & self._symbols(u)
        if clash:
            t = self.rename(t, {d: self.ctx.fresh(self.ctx.ranges[d]) for d in clash})
        factors = t.factors + u.factors
        if factors is not t.factors and factors is not u.factors:      # (a + () is a itself)
            self._joined[id(factors)] = (factors, t.factors, u.factors)
        return Term(t.coeff * u.coeff, factors, t.dummies + u.dummies)

    def _symbols(self, t: Term) -> frozenset:
        return self._factor_symbols(t.factors)

    def _factor_symbols(self, factors: tuple) -> frozenset:
        """The indices free in a term's factors, memoised by the tuple: a Σ nested k deep is
        merged level by level, and each level asked again for the indices of all the factors
        below it (k^2 / 2 lookups at 512 factors). A tuple _merge joined is read from its two
        parts."""
        hit = self._symbol_memo.get(id(factors))
        if hit is not None and hit[0] is factors:
            return hit[1]
        parts = self._joined.get(id(factors))
        if parts is not None and parts[0] is factors:
            out = self._factor_symbols(parts[1]) | self._factor_symbols(parts[2])
        else:
            out = frozenset().union(*[self.indices(f) for f in factors])
        self._symbol_memo[id(factors)] = (factors, out)
        return out

    def rename(self, t: Term, sub: dict) -> Term:
        return Term(t.coeff, tuple(replace(f, sub, self.ctx.ranges) for f in t.factors), tuple(sub.get(d, d) for d in t.dummies))

    # ---- sifting
    def sift(self, t: Term) -> Term | None:
        if t.coeff == 0:
            return None
        factors, dummies, coeff = list(t.factors), list(t.dummies), t.coeff
        changed = True
        at = _deltas_at(factors)
        while changed:
            changed = False
            for d in list(dummies):
                found = self._siftable(d, factors, at)
                if found is None:
                    continue
                k, value = found
                del factors[k]
                factors = [replace(f, {d: value}, self.ctx.ranges) if d in self.indices(f) else f
                           for f in factors]
                at = _deltas_at(factors)
                dummies.remove(d)
                changed = True
        if len(dummies) < len(t.dummies):   # an index was sifted into exp(Σ_q ...): rename inside
            factors = [self.atom(f) if isinstance(f, (sp.Pow, sp.Function)) and f.has(sp.Sum) else f
                       for f in factors]
        product = sp.Mul(*factors)          # like factors meet again: S_ij / S_ij = 1
        if product == 0:
            return None
        factors = list(sp.Mul.make_args(product))
        # what no factor mentions any more sums to its range
        used = set().union(*[self.indices(f) for f in factors])
        for d in [d for d in dummies if d not in used]:
            coeff *= self.ctx.size(self.ctx.ranges[d])
            dummies.remove(d)
        rest, one = [], sp.S.One
        for f in factors:
            if f == 1:
                continue
            if self.indices(f):
                rest.append(f)
            else:
                one *= f
        coeff *= one
        if coeff == 0:
            return None
        return Term(coeff, tuple(rest), tuple(dummies))

    def _siftable(self, d, factors, deltas):
        """(position, value) of a delta that fixes the dummy d, if Σ_d may be sifted there.

        Σ_d f(d) δ_{d,e} = f(e) needs e inside d's range. Plain deltas (δ_pi) pair indices of
        the same axis. With index arithmetic (δ_{n,i+j-1}) the value may fall outside; then
        the sum is sifted only if a factor indexed by d alone remains: out of range it is 0
        (x_i = 0 for i < 1 or i > d, seed 003's convention), and so is f(e).
        """
        for k in deltas:                          # (the positions of the deltas among factors)
            f = factors[k]
            if d not in f.free_symbols:
                continue
            value = _solve(f, d)
            if value is None:
                continue
            if value.is_Symbol or self._bounded(d, factors, k) or self._reversed(value, d):
                return k, value
        return None

    def _reversed(self, value, d) -> bool:
        """value = R + 1 - v for an index v with d's range R (a flip): always inside it."""
        ranges = self.ctx.ranges
        syms = [s for s in value.free_symbols if s in ranges]
        if len(syms) != 1 or ranges[syms[0]] != ranges[d]:
            return False
        return runs_over(value, syms[0], self.ctx.size(ranges[d]))

    def _bounded(self, d, factors, skip) -> bool:
        return any(isinstance(f, sp.Indexed) and d in f.indices
                   for k, f in enumerate(factors) if k != skip)

    # ---- canonical names and like terms
    def canonical(self, t: Term, free: set) -> Term:
        """Rename the dummies p, q, r, ... in the order `_dummy_order` finds them."""
        names, symbols = self._reserved()
        taken = free | symbols
        taken_names = names | {str(f) for f in free}
        pool = [n for n in DUMMY_POOL if n not in taken_names]
        order = _dummy_order(t.factors, t.dummies)
        sub: dict = {}
        given: set = set()
        take = names_by_range(pool, self.ctx.ranges, given)
        for d in order:
            dim = self.ctx.ranges[d]
            sub[d] = take(dim) or self.ctx.fresh(dim)
            given.add(sub[d])
        # then the indices of sums inside a factor (exp(Σ_r a_r A_qr), 1/Σ_q ...), by the same
        # rule: the first name for their range that nothing around them uses
        outer = taken | set(sub.values())
        inner = lambda old, used: self._dummy_name(pool, self.ctx.ranges[old], used)      # noqa: E731
        factors = tuple(rename_bound(rename_at_once(f, sub, self.ctx.ranges, self.indices(f)), inner,
                                     outer, self.ctx.ranges) for f in t.factors)
        # the coefficient's sums too (σ(Σ_s w_s x_s) of one term is σ(Σ_p w_p x_p) of another):
        # terms that differ only there then add up, and their coefficients cancel
        coeff = rename_bound(t.coeff, inner, outer, self.ctx.ranges) if t.coeff.has(sp.Sum) else t.coeff
        return Term(coeff, factors, tuple(sub[d] for d in order))

    def _reserved(self) -> tuple:
        """The context's reserved names (the variables' names and the sizes) as strings, and
        those of them that are symbols, read once (not once per term: 2,048 variables)."""
        reserved = self.ctx.reserved
        if self._reserved_at[0] != len(reserved):
            self._reserved_at = (len(reserved), frozenset(str(r) for r in reserved),
                                 frozenset(r for r in reserved if not isinstance(r, str)))
        return self._reserved_at[1:]

    def _dummy_name(self, pool, dim, used) -> sp.Symbol:
        """Chosen by range, not by position, so canonical names are a fixed point: sifting a
        sifted form renames nothing."""
        return name_for_range(pool, dim, self.ctx.ranges, used) or self.ctx.fresh(dim)

    def same_terms(self, a: list[Term], b: list[Term]) -> bool:
        """The same sum of terms, whatever the names of each term's summation indices and
        however the sum is cut into terms: first term by term; failing that, both sides in a
        canonical form (each term expanded into monomials, like monomials collected), so a sum
        kept whole as one term ((A_ji + B_ji) + A_ji) equals the same sum spread (2 A_ji + B_ji)."""
        return self._matched(a, b) or self._matched(self._canonical_sum(a), self._canonical_sum(b))

    def _matched(self, a: list[Term], b: list[Term]) -> bool:
        if len(a) != len(b):
            return False
        left = list(b)
        for t in a:
            hit = next((k for k, u in enumerate(left) if self._same_term(t, u)), None)
            if hit is None:
                return False
            del left[hit]
        return True

    def _canonical_sum(self, terms: list[Term]) -> list[Term]:
        """The terms expanded into monomials (coefficient × product of indexed factors, summed
        over the dummies it mentions), like monomials (up to dummy names) collected, zeros
        dropped."""
        self._distribute = True          # split again from the expression: a sum of sums with
        try:                             # no free index reads as one coefficient otherwise
            pieces = [u for t in terms for a in sp.Add.make_args(sp.expand(t.expr(self.ctx)))
                      for u in self.terms(a)]
        finally:
            self._distribute = False
        groups: list[Term] = []
        for t in pieces:
            for m in self._monomials(t):
                k = next((k for k, g in enumerate(groups) if self._same_body(m, g)), None)
                if k is None:
                    groups.append(m)
                else:
                    groups[k] = Term(groups[k].coeff + m.coeff, groups[k].factors, groups[k].dummies)
        return [g for g in groups if not is_zero(g.coeff)]

    def _monomials(self, t: Term) -> list[Term]:
        out = []
        for m in sp.Add.make_args(sp.expand(sp.Mul(*t.factors))):
            coeff, factors = t.coeff, []
            for f in sp.Mul.make_args(m):
                if self.indices(f):
                    factors.append(f)
                else:
                    coeff *= f
            used = set().union(*[self.indices(f) for f in factors])
            for d in t.dummies:
                if d not in used:            # Σ_p c = n c
                    coeff *= self.ctx.size(self.ctx.ranges[d])
            out.append(Term(coeff, tuple(factors), tuple(d for d in t.dummies if d in used)))
        return out

    def _same_term(self, t: Term, u: Term) -> bool:
        return sp.simplify(t.coeff - u.coeff) == 0 and self._same_body(t, u)

    def _same_body(self, t: Term, u: Term) -> bool:
        """The same product of factors, summed over the same dummies up to their names."""
        if len(t.dummies) != len(u.dummies) or len(t.factors) != len(u.factors):
            return False
        if t.factors == u.factors and t.dummies == u.dummies:
            return True
        if _blind(t) != _blind(u):          # differ beyond the names of their dummies
            return False
        theirs = sorted(u.factors, key=lambda f: sum(d in f.free_symbols for d in u.dummies))
        return _factors_map(list(t.factors), theirs, set(u.dummies), set(t.dummies), self.ctx.ranges) is not None

    def collect(self, terms: list[Term]) -> list[Term]:
        acc: dict = {}
        for t in terms:
            key = (_multiset(t.factors), frozenset(t.dummies))
            if key in acc:
                acc[key] = Term(acc[key].coeff + t.coeff, acc[key].factors, acc[key].dummies)
            else:
                acc[key] = t
        return [t for t in acc.values() if not is_zero(t.coeff)] if len(acc) < len(terms) \
            else list(acc.values())

    def simplify_terms(self, terms: list[Term], free: set) -> list[Term]:
        out = []
        for t in terms:
            s = self.sift(t)
            if s is not None:
                out.append(self.canonical(s, free))
        out = self.collect(out)
        if any(f.is_Add or (f.is_Pow and f.base.is_Add) for t in out for f in t.factors):
            return self._cancelled(out, free) or out
        return out

    def _cancelled(self, terms: list[Term], free: set) -> list[Term] | None:
        """The terms with their sums kept whole (see _factor_terms) distributed, when that
        only cancels: products that meet their own negative vanish, and no two different
        products merge into one ((1 - t) σ - (1 - σ) t = σ - t). A partial merge is how
        precision is lost (Σ (x - m)² -> Σ x² - (Σ x)²/n), so then the form stays as it is.
        None when distributing gains nothing."""
        self._distribute = True
        try:
            spread = []
            for t in terms:
                for u in self.terms(t.expr(self.ctx)):
                    s = self.sift(u)
                    if s is not None:
                        spread.append(self.canonical(s, free))
        finally:
            self._distribute = False
        acc: dict = {}
        for t in spread:
            acc.setdefault((sp.Mul(*t.factors), frozenset(t.dummies)), []).append(t)
        out = []
        for group in acc.values():
            coeff = sp.Add(*[t.coeff for t in group])
            if len(group) > 1 and coeff != 0 and sp.simplify(coeff) != 0:
                return None                 # two products merged: not only a cancellation
            if len(group) == 1:
                out.append(group[0])
        if len(out) >= len(spread) or len(out) > len(terms):
            return None
        if sum(sp.count_ops(t.expr(self.ctx)) for t in out) >= sum(sp.count_ops(t.expr(self.ctx)) for t in terms):
            return None
        return out

    def normal(self, e) -> sp.Expr:
        """The expression, sifted and with canonical dummies, as one SymPy expression."""
        if not e.free_symbols or not (e.atoms(sp.Sum) or e.atoms(sp.KroneckerDelta)):
            return e if not (e.is_Pow or isinstance(e, sp.Function)) else self._inside(e)
        free = self.indices(e)
        terms = self.simplify_terms(self.terms(e), free)
        return sp.Add(*[t.expr(self.ctx) for t in terms])

    def _inside(self, e):
        if e.is_Pow:
            return self.normal(e.base) ** self.normal(e.exp)
        return e.func(*[self.normal(a) for a in e.args]) if e.args else e


def _deltas_at(factors) -> list:
    """Where the Kronecker deltas are among a product's factors (each dummy looks only there)."""
    return [k for k, f in enumerate(factors) if isinstance(f, sp.KroneckerDelta)]


def _multiset(factors) -> frozenset:
    """A term's factors as a key: equal exactly when their products are (they are the
    arguments of a product, so no two would combine), without building the product (SymPy
    sorts its k factors by comparing whole entries)."""
    count: dict = {}
    for f in factors:
        count[f] = count.get(f, 0) + 1
    return frozenset(count.items())


def _marked(e) -> bool:
    """Whether e carries a Kronecker delta or a derivative's mark (∂X_pq/∂X_ij, diff.Partial)."""
    return e.has(sp.KroneckerDelta) or any(type(f).__name__ == "Partial" for f in e.atoms(sp.Function))


def is_zero(c) -> bool:
    """Whether a coefficient is zero, by cheap rules (expansion, then cancelling fractions):
    sp.simplify tries trigonometric and exponential rewrites of every subterm, seconds for a
    coefficient that is a product of a few (1 - tanh(...)^2). A zero it misses stays a term
    with a zero coefficient: not simpler, but not wrong."""
    if c == 0:
        return True
    e = sp.expand(c)
    if e == 0:
        return True
    if any(p.exp.is_negative for p in e.atoms(sp.Pow)):
        return sp.cancel(sp.together(e)) == 0
    return False


def _solve(delta, d):
    """The value of d that makes the delta 1, when d enters with coefficient ±1."""
    a, b = delta.args
    e = sp.expand(a - b)
    c = e.coeff(d)
    rest = sp.expand(e - c * d)
    if c not in (1, -1) or d in rest.free_symbols:
        return None
    return sp.expand(-rest / c)


def _index_order(f):
    """Index symbols of a factor in reading order."""
    return list(dict.fromkeys(s for s in preorder(f) if isinstance(s, sp.Symbol)))


def _factors_map(mine: list, theirs: list, their_dummies: set, my_dummies: set, ranges,
                 m: dict | None = None, budget: list | None = None) -> dict | None:
    """A one-to-one renaming of their dummies (to mine, over the same ranges) that turns the
    factors `theirs` into `mine`, in some order, or None: a search factor by factor, each
    binding names for the next (A_pq A_qr ... is a chain), within a budget of steps."""
    m = {} if m is None else m
    budget = [20000] if budget is None else budget
    if not theirs:
        return m
    for k, g in enumerate(mine):
        budget[0] -= 1
        if budget[0] < 0:
            return None
        m2 = _unify(theirs[0], g, their_dummies, my_dummies, ranges, m, budget)
        if m2 is not None:
            m3 = _factors_map(mine[:k] + mine[k + 1:], theirs[1:], their_dummies, my_dummies, ranges, m2, budget)
            if m3 is not None:
                return m3
    return None


_UNORDERED = (sp.Add, sp.Mul, sp.KroneckerDelta)     # their arguments match in any order


def _unify(f, g, their_dummies: set, my_dummies: set, ranges, m: dict, budget: list):
    """The renaming m extended so that f becomes g, or None."""
    if f in their_dummies:
        if f in m:
            return m if m[f] == g else None
        if g not in my_dummies or g in m.values() or ranges.get(f) != ranges.get(g):
            return None
        return {**m, f: g}
    if not f.args or not g.args:
        return m if f == g else None
    if f.func != g.func or len(f.args) != len(g.args):
        return None
    if isinstance(f, _UNORDERED):
        return _factors_map(list(g.args), list(f.args), their_dummies, my_dummies, ranges, m, budget)
    for a, b in zip(f.args, g.args):
        m = _unify(a, b, their_dummies, my_dummies, ranges, m, budget)
        if m is None:
            return None
    return m


def _blind(t: Term) -> list:
    """The term's factors as text with every summation index written `_`, sorted."""
    blank = {d: sp.Symbol("_") for d in t.dummies}
    return sorted(str(f.xreplace(blank)) for f in t.factors)


def _template(f, holes, slot):
    """(the factor as text with its dummies as numbered holes, its dummies in reading order);
    an entry X[p, q] directly, anything else through SymPy's printer."""
    if isinstance(f, sp.Indexed) and all(isinstance(i, sp.Symbol) for i in f.indices):
        text = f"{f.base.label}[" + ",".join(str(holes.get(i, i)) for i in f.indices) + "]"
        return text, [i for i in dict.fromkeys(f.indices) if i in slot]
    return str(f.xreplace(holes)), [s for s in _index_order(f) if s in slot]


def _dummy_order(factors, dummies) -> list:
    """The dummies in an order that does not depend on their current names, so that equal
    terms get equal names and renaming a renamed term changes nothing.

    Factors are taken one at a time, each time the least by a key in which a named dummy is
    its number and an unnamed one is `~` (after every name): first the factors with free
    indices (X_jp, where a chain starts: with `_`, which sorts before names, the first pick
    was any of the equal X_pq in the middle of a chain, so the 64 terms of ∂tr(X^64) got 61
    different namings and did not add up), then along the contractions (a factor that
    touches a named dummy comes before one that does not). A factor's new dummies are
    numbered in reading order."""
    dummies = list(dict.fromkeys(dummies))
    slot = {d: k for k, d in enumerate(dummies)}
    holes = {d: sp.Symbol(f"\x00{k}\x00") for d, k in slot.items()}
    templates = [_template(f, holes, slot) for f in factors]
    hole = re.compile("\x00(\\d+)\x00")
    named: dict = {}
    number: dict = {}           # a named dummy's slot -> its number (kept with `named`)

    def key(item):
        text, mine = item
        touches = any(s in named for s in mine)
        shown = hole.sub(lambda m: f"#{number[int(m.group(1))]:03d}" if int(m.group(1)) in number else "~", text)
        return (0 if touches else 1, shown)

    # the least key first (ties: the earlier factor), from a heap whose stale entries are
    # skipped; a key changes only when one of its dummies is named, so only the factors that
    # hold a newly named dummy are keyed again (a chain of 512 factors: not 512 × 512)
    keys = {k: key(item) for k, item in enumerate(templates)}
    heap = [(v, k) for k, v in keys.items()]
    heapq.heapify(heap)
    holding: dict = {}
    for k, (_, mine) in enumerate(templates):
        for s in dict.fromkeys(mine):
            holding.setdefault(s, []).append(k)
    while heap:
        v, best = heapq.heappop(heap)
        if keys.get(best) != v:
            continue
        del keys[best]
        new = [s for s in templates[best][1] if s not in named]
        for s in new:
            if s not in named:
                named[s] = len(named)
                number[slot[s]] = named[s]
        for k in dict.fromkeys(k for s in new for k in holding[s] if k in keys):
            keys[k] = key(templates[k])
            heapq.heappush(heap, (keys[k], k))
    return sorted(named, key=named.get) + [d for d in dummies if d not in named]
