"""Named intermediates in the printed steps of a long index form (SPEC §6; seed 004 writes
"rename the product such that R := QᵀQ", and the statement of an attention problem writes
A_bij = Σ_k Q_bik K_bjk / √D, P_bij = exp(A_bij) / Σ_j exp(A_bij)).

A sum nested inside something that is not a sum or a product — a function's argument
(exp(Σ_k Q_bik K_bjk / √D)), a denominator or a root (1 / Σ_j exp(…), √(Σ_k (X_bk - μ_b)² / D + ε)),
a bracket that is multiplied (X_bi - Σ_k X_bk / D) — is given a name with its free indices,
A_bij, and the name is written wherever the same sum appears in the derivation, whatever its
summed and free indices are called there. The names come from the forward expression (what
a TA would name); each is defined once, in the rows after the indexed output.

Printing only: the derivation, the engine and the guard never see a name. Two pieces get
one name only when they are the same expression up to a consistent renaming of their free
indices and of their summed ones (`canonical`), so a name always stands for what it replaces.
"""
from __future__ import annotations

import sympy as sp

from ..index_form import preorder

# capital letters a reader does not take for something else (not H: Heaviside; not I, O, L, T)
POOL = list("ACEGMNPRSUZBFJKQVWXY") + [f"A{k}" for k in range(1, 100)]


def _unsigned(e):
    """(e without a leading minus sign, the sign)."""
    if isinstance(e, sp.Mul) and e.could_extract_minus_sign():
        return -e, -1
    return e, 1


class Names:
    def __init__(self, body, taken=(), sizes=(), reading=None):
        """`reading(expr, free)`: the free indices in the order the printed expression shows
        them (A_bij, not A_bji): the order a name's indices are written in."""
        self.sizes = {str(s) for s in sizes}
        self._reading = reading
        self._taken = {str(t) for t in taken}
        self._by_key: dict = {}
        self.entries: list = []    # (name, what it stands for, its free indices, the order they are shown in)
        self._keys: dict = {}               # expression -> (key, free indices): a cache
        self._top(body)

    def __bool__(self):
        return bool(self.entries)

    # ---- which pieces are named
    def is_index(self, s) -> bool:
        return isinstance(s, sp.Symbol) and s.is_integer is True and s.is_positive is not True \
            and s.name not in self.sizes

    def _has_index(self, e) -> bool:
        return any(self.is_index(s) for s in e.free_symbols)

    def _candidate(self, e) -> bool:
        """A Σ, or a Σ times factors without indices (Σ_k X_bk / D)."""
        if isinstance(e, sp.Sum):
            return True
        if isinstance(e, sp.Mul):
            sums = [f for f in e.args if isinstance(f, sp.Sum)]
            return len(sums) == 1 and not any(self._has_index(f) for f in e.args if f is not sums[0])
        return False

    def _top(self, e):
        """The sums a step is written with (Σ over a product, a sum of such) stay; what they
        hold deeper is named."""
        if isinstance(e, sp.Add):
            for a in e.args:
                self._top(a)
        elif isinstance(e, sp.Mul):
            for a in e.args:
                self._top(a) if isinstance(a, sp.Sum) else self._deep(a)
        elif isinstance(e, sp.Sum):
            self._top(e.function)
        elif not isinstance(e, (sp.Indexed, sp.Symbol, sp.Number)):
            self._deep(e)

    def _deep(self, e):
        core, _ = _unsigned(e)
        if self._candidate(core):
            self._add(core)
            return
        if isinstance(e, sp.Indexed):
            return
        for a in e.args:
            self._deep(a)

    def _add(self, e):
        key, free = self.canonical(e)
        if key in self._by_key:
            return
        inner = e if isinstance(e, sp.Sum) else next(f for f in e.args if isinstance(f, sp.Sum))
        self._top(inner.function)                   # the names it is written with, first
        if key in self._by_key:
            return
        name = next(n for n in POOL if n not in self._taken)
        self._taken.add(name)
        shown = tuple(self._reading(e, free)) if self._reading else free
        perm = tuple(free.index(i) for i in shown) if sorted(shown, key=str) == sorted(free, key=str) \
            else tuple(range(len(free)))
        self._by_key[key] = (name, perm)
        self.entries.append((name, e, free, perm))

    # ---- the same piece, whatever its indices are called
    def canonical(self, e):
        """(a key, the free indices in the key's order): equal keys mean equal expressions up
        to renaming the free indices (in that order) and the summed ones."""
        hit = self._keys.get(e)
        if hit is not None:
            return hit
        free: list = []
        count = [0]

        def walk(x, bound):
            if isinstance(x, sp.Sum):
                inner = dict(bound)
                limits = []
                for lim in x.limits:
                    b = sp.Symbol(f"_b{count[0]}", integer=True)
                    count[0] += 1
                    limits.append((b, walk(lim[1], bound), walk(lim[2], bound)))
                    inner[lim[0]] = b
                # a factor without indices stands outside: Σ_k Q_bik K_bjk / √D is
                # (1/√D) Σ_k Q_bik K_bjk, as the engine writes it after differentiating
                factors = sp.Mul.make_args(x.function)
                const = [f for f in factors if not self._has_index(f) and not (f.free_symbols & set(x.variables))]
                rest = sp.Mul(*[f for f in factors if f not in const])
                return sp.Mul(*[walk(f, bound) for f in const]) * sp.Sum(walk(rest, inner), *limits)
            if isinstance(x, sp.Symbol):
                if x in bound:
                    return bound[x]
                if self.is_index(x):
                    if x not in free:
                        free.append(x)
                    return sp.Symbol(f"_f{free.index(x)}", integer=True)
                return x
            if not x.args:
                return x
            return x.func(*[walk(a, bound) for a in x.args])
        key = sp.srepr(walk(e, {}))
        self._keys[e] = (key, tuple(free))
        return key, tuple(free)

    # ---- printing with the names
    @staticmethod
    def entry(name, free, perm=()):
        free = tuple(free[k] for k in perm) if perm else tuple(free)
        return sp.IndexedBase(name)[free] if free else sp.Symbol(name)

    def apply(self, expr, skip=None):
        """expr with every named piece written as its name's entry (`skip`: a key not to use,
        the one a definition defines)."""
        if not self.entries or not isinstance(expr, sp.Basic):
            return expr

        def walk(e):
            core, sign = _unsigned(e)
            if self._candidate(core):
                key, free = self.canonical(core)
                hit = self._by_key.get(key)
                if hit is not None and key != skip:
                    return sign * self.entry(hit[0], free, hit[1])
            if not e.args or isinstance(e, sp.Indexed):
                return e
            args = [walk(a) for a in e.args]
            if all(a is b for a, b in zip(args, e.args)):
                return e
            if isinstance(e, sp.Sum):
                from ..index_form import make_sum
                return make_sum(args[0], [tuple(lim) for lim in args[1:]])
            return e.func(*args)
        return walk(expr)

    def variables(self) -> dict:
        """{name: the names of the variables it is built from}, through the names inside it."""
        out = {}
        for name, e, _, _ in self.entries:
            held = [a.base.label.name for a in preorder(e) if isinstance(a, sp.Indexed)]
            out[name] = [v for h in held for v in out.get(h, [h])]
        return out

    def definitions(self):
        """[(name's entry, what it stands for, written with the names before it)]."""
        out = []
        for name, e, free, perm in self.entries:
            key, _ = self.canonical(e)
            out.append((self.entry(name, free, perm), self.apply(e, skip=key)))
        return out


# ---- closed forms: the subtrees a long matrix expression repeats ------------------------------
LOWER_POOL = list("uvzgkmnrsabcdefhpqwy") + [f"u{k}" for k in range(1, 100)]


def closed_names(node, taken=(), wide=64.0, least=6.0) -> list:
    """[(name, subtree)] for a matrix expression wider than `wide` (in visible characters):
    each subtree it uses more than once, at least `least` wide when printed, gets a name (a
    capital for a matrix or tensor, a small letter for a vector); then, while it is still too
    wide for a line, the widest sum inside it that is not the whole of it. Listed after the
    names each is written with. Nothing when it fits."""
    from .. import nodes as N
    from ..output import visible_width
    from ..printing.numpy_code import common_subtrees
    from .latex import named_subtrees, symbol, to_latex
    if node is None or visible_width(to_latex(node)) <= wide:
        return []
    taken = {str(t) for t in taken}
    out = []

    def name_for(s):
        pool = POOL if len([d for d in s.shape if d != 1]) >= 2 else LOWER_POOL
        name = next(n for n in pool if n not in taken)
        taken.add(name)
        out.append((name, s))

    def width(s):
        with named_subtrees({x: symbol(n, x.is_scalar) for n, x in out}):
            return visible_width(to_latex(s))
    for s in common_subtrees(node):
        if not s.is_scalar and visible_width(to_latex(s)) >= least:
            name_for(s)
    named = {x for _, x in out}
    for _ in range(3):
        if width(node) <= wide:
            break
        sums = [s for s in node.walk() if isinstance(s, (N.Add, N.Sub)) and s is not node and s not in named
                and not s.is_scalar]
        if not sums:
            break
        widest = max(sums, key=width)
        name_for(widest)
        named.add(widest)
    return out


def unnamed(names: Names, expr):
    """expr with every name written out again (its definition, indices substituted): the
    inverse of `apply`, for checking that a name stands for what it replaced."""
    from ..index_form import replace
    table = {}
    for name, e, free, perm in names.entries:
        table[name] = (tuple(free[k] for k in perm), e)

    def walk(x):
        if isinstance(x, sp.Indexed) and x.base.label.name in table:
            free, e = table[x.base.label.name]
            return walk(replace(e, dict(zip(free, x.indices))))
        if isinstance(x, sp.Symbol) and x.name in table and not table[x.name][0]:
            return walk(table[x.name][1])
        if not x.args or isinstance(x, sp.Indexed):
            return x
        return x.func(*[walk(a) for a in x.args])
    return walk(expr)
