"""Index forms (SymPy expressions) -> text and LaTeX, as the seeds write them:
Σ_{p,q} x_p B_pq x_q, δ_pi, ∂X_pq/∂X_ij, (X⁻¹)_pq. SymPy's printers, extended."""
from __future__ import annotations

import itertools

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .. import functions as F
from .. import nodes as N
from ..diff import Partial
from ..index_form import preorder
from ..parse import spaced_fractions
from ..index_syntax import index_text as place_text
from .latex import to_latex
from .text import to_text


def _summed(e):
    """A sum's indices in the order the seeds write them (p, q, r), not SymPy's nesting order."""
    from ..index_form import DUMMY_POOL
    rank = {n: k for k, n in enumerate(DUMMY_POOL)}
    return sorted((lim[0] for lim in e.limits), key=lambda i: (rank.get(i.name, len(rank)), i.name))


def _joined(indices, sep="", braces=True, show=None):
    """Subscripts: `pq` for one-letter indices, `p,q1` otherwise; with index arithmetic
    `{i,p+q-1}` (seed 003 writes δ_{n,i+j-1}), each place shown by `show` (reading order)."""
    show = show or place_text
    names = [i.name if isinstance(i, sp.Symbol) else show(i) for i in indices]
    if not all(isinstance(i, sp.Symbol) for i in indices):
        return "{" + ",".join(names) + "}" if braces else ",".join(names)
    return sep.join(names) if all(len(n) == 1 for n in names) else ",".join(names)


class _SumsBracketed:
    """Σ_p body is written without brackets and reaches to the end, so a Σ that is the base of
    a power needs them: (Σ_p x_p^2)^2, not Σ_p x_p^2^2, which reads as Σ_p x_p^4."""
    BRACKETS = ("(", ")")

    def parenthesize(self, item, level, *args, **kw):
        out = super().parenthesize(item, level, *args, **kw)
        if isinstance(item, sp.Sum) and level >= PRECEDENCE["Pow"] and not out.startswith(self.BRACKETS[0]):
            return f"{self.BRACKETS[0]}{out}{self.BRACKETS[1]}"
        return out


class _Reading:
    """The seeds' reading order, on the printing side only (the index form itself is unchanged):
    - the factors of a product in the order of the matrix product they came from: a factor
      whose last index is the next one's first comes before it (`x_p B_pq x_q`,
      `V_tp X_pq W_qt`); ∂X_pq/∂X_ij and its Kronecker deltas stand where X stood; factors that
      no index links keep the order in which their variables first appear in the input;
    - the indices a Σ binds renamed in reading order, p, q, r, ... (t for the index that closes
      a trace's cycle, `Σ_t,p,q V_tp X_pq W_qt`), never a name an enclosing Σ binds or the
      body uses otherwise; a Kronecker delta written with its summed index first (δ_pi)."""
    POOL = list("pqrsuvwabcdefgh") + [f"{c}{k}" for k in range(1, 40) for c in "pqrsuvw"]

    var = None                            # the variable differentiated by (its deltas' place)
    longest = None                        # a sum of more terms is shown elided (steps), or never

    def doprint(self, expr):
        """The free indices of the whole expression are never a Σ's new name (Y_pq = ...
        Σ_r ... Σ_s, not Σ_q inside an entry whose q is free). A float that is a whole
        number is printed as one (1.0 x is x, 2.0 x is 2 x)."""
        expr = whole_numbers(expr)
        self._outer_free = {s.name for s in self.free(expr) if isinstance(s, sp.Symbol)} \
            if isinstance(expr, sp.Basic) else set()
        self._outer_free |= {str(n) for n in getattr(self.ctx.variables, "sizes", ())}   # Q: p×q
        return super().doprint(expr)

    def _as_ordered_terms(self, expr, order=None):
        """A sum's terms with those that carry a minus sign last (X_bk - A_b, 1 - tanh(X_pq)^2,
        not -A_b + X_bk), each group in the input's order: by the first variable of the input
        each holds (Y_pq = X_pq + Σ_r relu(...) W_qr + b_q for Y = X + relu(...) W^T + b)."""
        terms = super()._as_ordered_terms(expr, order)
        names, last = self._names, len(self._names)

        def first(t):      # free(t) holds every entry and symbol of t (a Σ's own index aside)
            held = [names.get(a.base.label.name, last) if isinstance(a, sp.Indexed) else names[a.name]
                    for a in self.free(t) if isinstance(a, sp.Indexed) or getattr(a, "name", None) in names]
            return min(held, default=last)
        terms = sorted(terms, key=lambda t: (t.could_extract_minus_sign(), first(t)))
        if self.longest is not None and len(terms) > self.longest:
            # a step's long sum: its first terms, how many are left out, and its last ones
            head, tail = self.longest - ELIDED_TAIL, ELIDED_TAIL
            terms = terms[:head] + [sp.Symbol(f"{ELIDED}{len(terms) - head - tail}")] + terms[-tail:]
        return terms

    def _elided(self, e) -> str | None:
        """The number of terms a long sum leaves out, for the mark that stands for them."""
        return e.name[len(ELIDED):] if e.name.startswith(ELIDED) else None

    def _print_Float(self, e):
        """A decimal as a person writes it: 0.5, 1.702, 1e-08 (not 0.500000000000000)."""
        return _decimal(e)

    def _print_Pi(self, e):
        return "π"                # sqrt(2/π), never sqrt(2/pi) beside δ_pi

    def _reading_init(self):
        self._outer_free: set = set()
        self._scope: list = []            # names bound by the enclosing sums, innermost last
        self._ranges: dict = {}           # renamed index -> its range
        self._names = {n: k for k, (n, _) in enumerate(self.ctx.variables.items())}
        self._ordered: dict = {}          # (id of a product, scope) -> its factors in reading order
        self._free: dict = {}             # expression -> its free symbols (see `free`)

    def free(self, e) -> frozenset:
        """SymPy's free_symbols, memoised by structure: a Σ's own walks the whole body again
        (and rebuilds it) at every level, each time it is asked; ours sees each
        subexpression once per printing (a sum of 10,000 products, a product of 512)."""
        hit = self._free.get(e)
        if hit is None:
            if isinstance(e, sp.Sum):
                hit = self.free(e.function).difference(lim[0] for lim in e.limits).union(
                    *[self.free(b) for lim in e.limits for b in lim[1:]])
            elif isinstance(e, (sp.Add, sp.Mul, sp.Pow, sp.Function)):
                hit = frozenset().union(*[self.free(a) for a in e.args])
            else:
                hit = frozenset(e.free_symbols)
            self._free[e] = hit
        return hit

    # ---- factors
    def _var_rank(self, f) -> tuple:
        names = self._names
        if isinstance(f, sp.Indexed):
            return (self._name_rank(f.base.label.name),)
        for a in preorder(f):
            if isinstance(a, sp.Indexed):
                return (self._name_rank(a.base.label.name),)
            if isinstance(a, sp.Symbol) and a.name in names:
                return (names[a.name],)
        return (len(names) + 1,)

    def _name_rank(self, name) -> int:
        """A variable's place in the input; an atom's (softmax(Q Kᵀ/√D)) is its first variable's,
        so that [softmax(Q Kᵀ/√D)]_bij V_bjd keeps the product's order."""
        names = self._names
        if name not in names and name in self.ctx.atoms:
            return min((names.get(v, len(names)) for v in N.variables(self.ctx.atoms[name])), default=len(names))
        held = getattr(self.ctx, "named_variables", {}).get(name)     # a named intermediate (A_bij)
        if name not in names and held:
            return min(names.get(v, len(names)) for v in held)
        return names.get(name, len(names))

    @staticmethod
    def _made(seq) -> int:
        """Where a factor's first index comes in the order indices are made (a product's
        first factor has the first one): which of equal factors (X X X) starts a cycle."""
        from ..index_form import DUMMY_POOL
        if not seq:
            return len(DUMMY_POOL)
        name = seq[0].name
        return DUMMY_POOL.index(name) if name in DUMMY_POOL else len(DUMMY_POOL)

    def _is_index(self, s) -> bool:
        return s in self.ctx.ranges or s in self._ranges or any(s in sc for sc in self._scope)

    def _is_upstream(self, f) -> bool:
        return isinstance(f, sp.Indexed) and is_upstream(f.base.label.name, self.ctx)

    def _seq(self, f) -> tuple:
        """The indices a factor links by: an entry's and a ∂X_pq's in order."""
        if isinstance(f, Partial):
            f = f.args[0]
        if isinstance(f, sp.Indexed):
            return tuple(i for i in f.indices if isinstance(i, sp.Symbol))
        return ()

    def ordered_factors(self, expr) -> list:
        """The factors of a product: coefficients first, then the chains in reading order."""
        key = (id(expr), tuple(frozenset(sc) for sc in self._scope))
        hit = self._ordered.get(key)
        if hit is None or hit[0] is not expr:
            hit = self._ordered[key] = (expr, self._ordered_factors(expr))
        return hit[1]

    def _ordered_factors(self, expr) -> list:
        factors = list(sp.Mul.make_args(expr))
        is_coeff = [not any(self._is_index(s) for s in (f.indices if isinstance(f, sp.Indexed) else self.free(f)))
                    for f in factors]
        coeff = [f for f, c in zip(factors, is_coeff) if c]
        rest = [f for f, c in zip(factors, is_coeff) if not c]
        wrt = list(self.wrt or [])
        deltas = [f for f in rest if isinstance(f, sp.KroneckerDelta)]
        group = None
        if deltas and wrt and all(len(set(d.args) & set(wrt)) == 1 for d in deltas):
            def by_wrt(d):
                w = next(a for a in d.args if a in wrt)
                return wrt.index(w)
            deltas.sort(key=by_wrt)
            group = tuple(deltas)
        units = []                                   # (rank, seq, [factors])
        for k, f in enumerate(rest):
            if group is not None and isinstance(f, sp.KroneckerDelta):
                if f is group[0]:
                    seq = tuple(next(a for a in d.args if a not in wrt) for d in group)
                    rank = self._var_rank(sp.Symbol(self.var)) if self.var else (len(rest),)
                    units.append([rank + (k,), seq, list(group), []])
                continue
            if self._is_upstream(f):                 # dY_pq first: the chain rule's factor
                units.append([(-1, k), (), [f]])
                continue
            pow_neg = isinstance(f, sp.Pow) and f.exp.is_negative
            seq = () if pow_neg else self._seq(f)
            units.append([self._var_rank(f) + (self._made(seq), k), seq, [f]])
        bound = set(self._scope[-1]) if self._scope else set()
        scoped = set().union(*self._scope) if self._scope else set()
        for u in units:                  # the free indices a unit shows, in order
            if len(u) == 3:
                u.append([i for f in u[2] for i in self._free_in(f, scoped)])
        return coeff + [f for u in self._chains(units, bound) for f in u[2]]

    def _free_in(self, f, scoped) -> list:
        if isinstance(f, sp.Indexed):
            cands = [i for i in f.indices if isinstance(i, sp.Symbol)]
        else:
            cands = sorted((a for a in self.free(f) if isinstance(a, sp.Symbol)), key=lambda a: a.name)
        return [a for a in cands if a not in scoped and (a in self.ctx.ranges or a in self._ranges)]

    @staticmethod
    def _chains(units, bound) -> list:
        """Units ordered so that a unit whose last index (a summed one) is the next one's first
        comes just before it, unless that would show the free indices out of their order
        (V_pi W_jp, not W_jp V_pi, in an ij entry); then by the first free index they show
        and by the place of their variable in the input."""
        from ..index_form import FREE_POOL
        rank = {n: k for k, n in enumerate(FREE_POOL)}
        free_key = lambda frees: [rank.get(i.name, len(rank)) for i in frees]  # noqa: E731
        order = sorted(range(len(units)), key=lambda k: units[k][0])
        succ, pred = {}, {}
        for a in order:
            sa = units[a][1]
            if not sa or sa[-1] not in bound:
                continue
            for b in order:
                sb = units[b][1]
                if b != a and b not in pred and sb and sb[0] == sa[-1]:
                    succ[a], pred[b] = b, a
                    break
        chains, seen = [], set()
        starts = [k for k in order if k not in pred] + order       # chains first, then cycles
        for k in starts:
            if k in seen:
                continue
            chain = []
            while k is not None and k not in seen:
                seen.add(k)
                chain.append(units[k])
                k = succ.get(k)
            frees = free_key([i for u in chain for i in u[3]])
            if frees == sorted(frees):
                chains.append(chain)
            elif frees[::-1] == sorted(frees):      # read backwards: [X^T X^T]_ij = X_pi X_jp
                chains.append(chain[::-1])
            else:
                chains += [[u] for u in chain]

        def key(chain):                       # the upstream gradient dY first, as in the chain rule
            frees = free_key([i for u in chain for i in u[3]])
            return (chain[0][0][0] >= 0, frees[0] if frees else len(rank) + 1, chain[0][0])
        return [u for chain in sorted(chains, key=key) for u in chain]

    def _reading_indices(self, expr, bound, out):
        """The bound indices in the order the printed body shows them."""
        if isinstance(expr, sp.Symbol):
            if expr in bound and expr not in out:
                out[expr] = None
            return
        if isinstance(expr, sp.Mul):
            args = self.ordered_factors(expr)
        elif isinstance(expr, sp.KroneckerDelta):
            args = sorted(expr.args, key=lambda a: a not in bound)
        elif isinstance(expr, sp.Indexed):
            args = expr.indices
        else:
            args = expr.args
        for a in args:
            self._reading_indices(a, bound, out)

    # ---- sums
    def renamed_sum(self, e):
        """(body, indices in reading order) of Σ e with its indices renamed (see the class)."""
        from ..index_form import atoms_of, make_sum, substitute
        e = self._inner_placeholders(e)
        olds = [lim[0] for lim in e.limits]
        bound = set(olds)
        self._scope.append(bound)
        try:
            seen: dict = {}                  # an ordered set
            self._reading_indices(e.function, bound, seen)
        finally:
            self._scope.pop()
        order = list(seen) + [i for i in olds if i not in seen]
        used = {s.name for s in atoms_of(e.function, sp.Symbol)} - {i.name for i in olds}
        used |= {s.name for sc in self._scope for s in sc} | self._outer_free
        used |= {s.name for s in (self.wrt or [])}
        trace = self._trace_index(e.function, bound)
        new = {}
        pool = iter(n for n in itertools.chain(self.POOL, (f"p{k}" for k in itertools.count(40)))
                    if n not in used)          # a chain of 512 factors binds 512 indices
        for old in order:
            name = "t" if old == trace and "t" not in used else next(pool)
            used.add(name)
            new[old] = sp.Symbol(name, integer=True)
        # an index's range: a placeholder's from this printer, an engine index's from the
        # context (all read before any is set: a new name may be an old one of this Σ)
        ranges = {old: (self._ranges.get(old) if isinstance(old, sp.Dummy) else self.ctx.ranges.get(old))
                  for old in new}
        for old, n in new.items():
            self._ranges[n] = ranges[old]
        his = {lim[0]: lim[2] for lim in e.limits}
        limits = [(new[o], 1, his[o]) for o in order]
        outer = tuple(frozenset(sc) for sc in self._scope)
        hit = self._ordered.get((id(e.function), outer + (frozenset(bound),))) \
            if isinstance(e.function, sp.Mul) else None
        if all(n == o for o, n in new.items()):
            body = e.function                   # the names it has: nothing to rebuild
        elif hit is not None and hit[0] is e.function:
            # a product, renamed factor by factor and kept in the reading order worked out
            # above (not worked out twice); SymPy's xreplace would sort its factors again by
            # the new names, a cost of k log k comparisons of whole entries for k factors
            ordered = [substitute(f, new) for f in hit[1]]
            body = sp.Mul._from_args(ordered)
            self._ordered[(id(body), outer + (frozenset(new[o] for o in order),))] = (body, ordered)
        else:
            body = substitute(e.function, new)
        return make_sum(body, limits), [new[o] for o in order]

    def _inner_placeholders(self, e):
        """The indices inner sums bind, renamed to placeholders first (they get their own
        names when printed), so that they do not take the names this Σ's indices read best in."""
        from ..index_form import atoms_of, make_sum, substitute
        body = e.function
        inner = {lim[0] for s_ in atoms_of(body, sp.Sum) for lim in s_.limits}
        inner -= self.free(body)
        if not inner:
            return e
        sub = {}
        for k, old in enumerate(sorted(inner, key=lambda x: x.name)):
            new = sp.Dummy(f"i{k}", integer=True)
            sub[old] = new
            self._ranges[new] = self._ranges.get(old, self.ctx.ranges.get(old))
        return make_sum(substitute(body, sub), list(e.limits))

    def _trace_index(self, body, bound):
        """The index that closes a cycle of the product (a trace): the first factor's first."""
        if not isinstance(body, sp.Mul):
            return None
        self._scope.append(bound)
        try:
            ordered = self.ordered_factors(body)
        finally:
            self._scope.pop()
        seqs, wrt = [], list(self.wrt or [])
        for k, f in enumerate(ordered):               # the deltas of ∂X_pq stand for X_pq
            if isinstance(f, sp.KroneckerDelta) and wrt and len(set(f.args) & set(wrt)) == 1:
                dummy = next(a for a in f.args if a not in wrt)
                if k and isinstance(ordered[k - 1], sp.KroneckerDelta) and seqs:
                    seqs[-1] = seqs[-1] + (dummy,)
                else:
                    seqs.append((dummy,))
            elif self._seq(f):
                seqs.append(self._seq(f))
        if len(seqs) >= 2 and all(len(q) == 2 for q in seqs) and \
                all(a[-1] == b[0] for a, b in zip(seqs, seqs[1:] + seqs[:1])) and seqs[0][0] in bound:
            return seqs[0][0]
        return None

    def in_sum(self, e, show):
        """Print Σ e by `show(indices, body)` with the indices renamed and in scope."""
        renamed, order = self.renamed_sum(e)
        self._scope.append(set(order))
        try:
            return show(order, renamed.function, renamed)
        finally:
            self._scope.pop()

    def arithmetic(self, e) -> str:
        """An index place holding index arithmetic, in reading order: the entry's free indices
        in the order the derivation made them (the output's, then the variable's), then
        summed indices, then sizes, then numbers: w_{n-i+1}, h_{n+j-1}, w_{k-j+1}."""
        bound = set().union(*self._scope) if self._scope else set()
        sizes = {str(n) for n in getattr(self.ctx.variables, "sizes", ())}
        made = {s: k for k, s in enumerate(self.ctx.ranges)}

        def rank(s):
            if s.is_positive or s.name in sizes:
                return (3, 0, s.name)
            if s in bound or s not in made:
                return (2, 0, s.name)
            return (0, made[s], s.name)
        return place_text(e, rank)

    def delta_args(self, e):
        """δ_pi: a summed index first."""
        bound = set().union(*self._scope) if self._scope else set()
        return sorted(e.args, key=lambda a: a not in bound)

    def reading_mul(self, expr):
        """The product with its factors in reading order (an unevaluated Mul keeps it)."""
        ordered = self.ordered_factors(expr)
        if len(ordered) == len(expr.args) and all(a is b for a, b in zip(ordered, expr.args)):
            return expr
        return sp.Mul(*ordered, evaluate=False)


class IndexText(_Reading, _SumsBracketed, StrPrinter):
    printmethod = "_indexcalc_text"      # not Indexed._sympystr: ours print X_pq

    def __init__(self, ctx, wrt_entry=None):
        super().__init__({"order": "none"})
        self.ctx, self.wrt = ctx, wrt_entry
        self._reading_init()

    def _atom_name(self, name):
        node = self.ctx.atoms.get(name)
        if node is None:
            return name
        if isinstance(node, N.Inverse):
            return f"({to_text(node.a)})⁻¹" if not isinstance(node.a, N.Sym) else f"{node.a.name}⁻¹"
        return to_text(node)

    def _print_Indexed(self, e):
        base = self._atom_name(e.base.label.name)
        if not base.isidentifier() and not base.endswith("⁻¹"):
            base = f"[{base}]"
        return f"{base}_{_joined(e.indices, show=self.arithmetic)}"

    def _print_Symbol(self, e):
        left_out = self._elided(e)
        if left_out is not None:
            return f"… ({left_out} more terms)"
        return self._atom_name(e.name)

    def _print_KroneckerDelta(self, e):
        return f"δ_{_joined(self.delta_args(e), show=self.arithmetic)}"

    def _print_Sum(self, e):
        return self.in_sum(e, lambda order, body, _: f"Σ_{_joined(order, ',')} {self.parenthesize(body, 40)}")

    def parenthesize(self, item, level, strict=False):
        """StrPrinter's, without its test of a product for a minus sign (it builds -item: a
        product of k factors sorted again) where no negative number leads the product."""
        if isinstance(item, sp.Mul) and not (item.args[0].is_Number and item.args[0].is_extended_negative):
            p = PRECEDENCE["Mul"]
            out = self._print(item)
            return f"({out})" if p < level or (not strict and p <= level) else out
        return super().parenthesize(item, level, strict)

    def _print_Mul(self, expr):
        if _coeff_negative(expr):
            neg = -expr
            body = self._print(neg)
            return "-" + (f"({body})" if isinstance(neg, sp.Add) else body)
        sums = [f for f in expr.args if isinstance(f, sp.Sum)]
        if len(sums) == 1 and len(expr.args) > 1:
            # a factor in front of a Σ is written first, as the seeds do: (1/‖w‖) Σ_p ..., (1/S) Σ
            coeff = sp.Mul(*[f for f in expr.args if f is not sums[0]])
            c = self._print(coeff)
            if "/" in c or isinstance(coeff, sp.Add):
                c = f"({c})"
            return f"{c} {self._print(sums[0])}"
        tail = [f for f in expr.args if isinstance(f, (sp.KroneckerDelta, Partial))]
        fractional = any(isinstance(f, sp.Pow) and f.exp.is_negative for f in expr.args) or \
            any(isinstance(f, sp.Rational) and f.q != 1 for f in expr.args)
        if tail and fractional and len(tail) < len(expr.args):
            # w_p/‖w‖ ∂w_p/∂w_i, not w_p ∂w_p/∂w_i/‖w‖ (which reads as a fraction of fractions)
            rest = sp.Mul(*[f for f in expr.args if not isinstance(f, (sp.KroneckerDelta, Partial))])
            head = self._print(rest)
            if isinstance(rest, sp.Add):
                head = f"({head})"
            ordered = [f for f in self.ordered_factors(expr) if isinstance(f, (sp.KroneckerDelta, Partial))]
            return head + " " + " ".join(self._print(f) for f in ordered)
        return super()._print_Mul(self.reading_mul(expr))

    def _print_Partial(self, e):
        wrt = _joined(self.wrt or [])
        leaf = e.args[0]
        var = leaf.base.label.name if isinstance(leaf, sp.Indexed) else str(leaf)
        return f"∂{self._print(leaf)}/∂{var}_{wrt}" if wrt else f"∂{self._print(leaf)}/∂{var}"

    def _print_Function(self, e):
        return f"{F.shown_name(F.name_of(e.func))}({', '.join(self._print(a) for a in e.args)})"


def entry_name(name: str) -> str:
    """An entry's name: h1 -> h^{1} (seed 003 writes h^1_{i+j-1}), W -> W."""
    base = name.rstrip("0123456789")
    from ..shapes import GREEK
    if base in GREEK or (len(base) == 1 and not base.isascii()):    # λ, lambda -> \lambda
        greek = sp.latex(sp.Symbol("lambda" if base == "lam" else base))
        return f"{greek}^{{{name[len(base):]}}}" if base != name else greek
    if base and base != name:
        return f"{base}^{{{name[len(base):]}}}"
    return name


def range_latex(ctx, index, hi=None) -> str:
    """The upper bound of an index: its size as declared (d - k + 1 for a valid convolution)."""
    dim = ctx.ranges.get(index)
    return str(dim) if dim is not None else sp.latex(hi)


def is_upstream(name: str, ctx) -> bool:
    """The upstream gradient ∂L/∂Y of a backprop derivation, or `dY` (d + an upper-case name)."""
    return name in ctx.upstream or (len(name) > 1 and name[0] == "d" and name[1].isupper()
                                    and name in ctx.variables)


# a Σ over more indices than this is written as one Σ_{p,q,r,s} (their ranges are the objects')
MAX_RANGED = 4


class IndexLatex(_Reading, _SumsBracketed, LatexPrinter):
    printmethod = "_indexcalc_latex"
    BRACKETS = (r"\left(", r"\right)")

    def __init__(self, ctx, wrt_entry=None):
        super().__init__({"mul_symbol": None, "order": "none"})
        self.ctx, self.wrt = ctx, wrt_entry
        self._reading_init()

    def _atom(self, name):
        node = self.ctx.atoms.get(name)
        return None if node is None else to_latex(node)

    def _print_Indexed(self, e):
        name = e.base.label.name
        sub = _joined(e.indices, braces=False, show=self.arithmetic)
        if is_upstream(name, self.ctx):            # dY_pq is ∂L/∂Y_pq
            return fr"\frac{{\partial L}}{{\partial {entry_name(name[1:])}_{{{sub}}}}}"
        atom = self._atom(name)
        if atom is not None:
            return fr"\left[{atom}\right]_{{{sub}}}"
        return f"{entry_name(name)}_{{{sub}}}"

    def _print_Symbol(self, e, style="plain"):
        left_out = self._elided(e)
        if left_out is not None:
            return fr"\dots \text{{({left_out} more terms)}}"
        atom = self._atom(e.name)
        return atom if atom is not None else super()._print_Symbol(e)

    def _print_KroneckerDelta(self, e, exp=None):
        s = fr"\delta_{{{_joined(self.delta_args(e), braces=False, show=self.arithmetic)}}}"
        return f"{s}^{{{exp}}}" if exp else s

    def _print_Sum(self, e):
        if _negative_sum(e):                                # Σ_p (-a_p) is written -Σ_p a_p
            return "-" + self._print_Sum(_negated_sum(e))
        def show(order, body, renamed):
            bounds = {lim[0]: (lim[1], lim[2]) for lim in renamed.limits}
            if len(order) > MAX_RANGED:                     # Σ_{p,q,r,s,u}, as seed 000 writes Σ_{t,p,q}
                return fr"\sum_{{{','.join(entry_name(i.name) for i in order)}}} " + self.parenthesize(body, 40)
            sums = []
            for i in order:                                 # Σ_{p=1}^{S} Σ_{q=1}^{N}, with ranges
                lo, hi = bounds[i]
                dim = self._ranges.get(i)
                top = str(dim) if dim is not None else self._print(hi)
                sums.append(fr"\sum_{{{entry_name(i.name)}={self._print(lo)}}}^{{{top}}}")
            return " ".join(sums) + " " + self.parenthesize(body, 40)
        return self.in_sum(e, show)

    def _print_Add(self, expr, order=None):
        """a + Σ_p (-b_p) is written a - Σ_p b_p."""
        if not any(_negative_sum(t) for t in expr.args):
            return super()._print_Add(expr, order)
        tex = ""
        for i, term in enumerate(expr.args):
            if _negative_sum(term):
                neg, body = True, _negated_sum(term)
            else:
                neg = term.could_extract_minus_sign()
                body = -term if neg else term
            tex += ("-" if neg else "") if i == 0 else (" - " if neg else " + ")
            t = self._print(body)
            tex += fr"\left({t}\right)" if self._needs_add_brackets(body) else t
        return tex

    def _print_Mul(self, expr):
        """Kronecker deltas and ∂X_pq/∂X_ij after the other factors, as the seeds write them
        (not inside a fraction's numerator)."""
        if _coeff_negative(expr):
            neg = -expr
            body = self._print(neg)
            return "- " + (fr"\left({body}\right)" if isinstance(neg, sp.Add) else body)
        fractional = any(isinstance(f, sp.Pow) and f.exp.is_negative for f in expr.args) or \
            any(isinstance(f, sp.Rational) and f.q != 1 for f in expr.args)
        sums = [f for f in expr.args if isinstance(f, sp.Sum)]
        if fractional and len(sums) == 1 and len(expr.args) > 1:
            # a factor in front of a Σ is written first, as the seeds do: \frac{1}{\sqrt{D}} Σ_p ...,
            # not a fraction over the whole sum (its Σ and its fractions at a smaller size)
            coeff = sp.Mul(*[f for f in expr.args if f is not sums[0]])
            c = self._print(coeff)
            return (fr"\left({c}\right)" if isinstance(coeff, sp.Add) else c) + " " + self._print(sums[0])
        upstream = [f for f in expr.args if self._is_upstream(f)]
        if fractional and upstream and len(upstream) < len(expr.args):
            # ∂L/∂Y_pq before the fraction of the rest, not in its numerator
            rest = sp.Mul(*[f for f in expr.args if f not in upstream])
            head = " ".join(self._print(f) for f in upstream)
            return f"{head} " + (fr"\left({self._print(rest)}\right)" if isinstance(rest, sp.Add)
                                 else self._print(rest))
        tail = [f for f in expr.args if isinstance(f, (sp.KroneckerDelta, Partial))]
        if not tail or len(tail) == len(expr.args) or not fractional:
            if _coeff_negative(expr):
                neg = -expr
                body = self._print(neg)
                return "- " + (fr"\left({body}\right)" if isinstance(neg, sp.Add) else body)
            return super()._print_Mul(self.reading_mul(expr))
        tail = [f for f in self.ordered_factors(expr) if isinstance(f, (sp.KroneckerDelta, Partial))]
        rest = sp.Mul(*[f for f in expr.args if not isinstance(f, (sp.KroneckerDelta, Partial))])
        tail_tex = " ".join(self._print(t) for t in tail)
        if rest == 1:
            return tail_tex
        if rest == -1:
            return "- " + tail_tex
        head = self._print(rest)
        if isinstance(rest, sp.Add):
            head = fr"\left({head}\right)"
        return f"{head} {tail_tex}"

    def _print_Partial(self, e):
        leaf = e.args[0]
        var = leaf.base.label.name if isinstance(leaf, sp.Indexed) else str(leaf)
        wrt = _joined(self.wrt or [])
        below = f"{entry_name(var)}_{{{wrt}}}" if wrt else entry_name(var)
        return fr"\frac{{\partial {self._print(leaf)}}}{{\partial {below}}}"

    def _print_Function(self, e, exp=None):
        name = F.shown_name(F.name_of(e.func))
        arg = self._print(e.args[0])
        if name == "sqrt":
            s = fr"\sqrt{{{arg}}}"
        elif name == "abs":
            s = fr"\left|{arg}\right|"
        else:
            s = fr"{name if not name[0].isalpha() else F.latex_head(name)}\left({arg}\right)"
        return f"{s}^{{{exp}}}" if exp else s


def whole_numbers(expr):
    """SymPy floats that are whole numbers (2 × 0.5 = 1.0) as integers, so that 1.0 x reads x."""
    if not isinstance(expr, sp.Basic):
        return expr
    from ..index_form import atoms_of
    floats = {f: sp.Integer(int(f)) for f in atoms_of(expr, sp.Float) if float(f).is_integer()}
    return expr.xreplace(floats) if floats else expr


def _decimal(e) -> str:
    x = float(e)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _coeff_negative(expr) -> bool:
    c, _ = expr.as_coeff_Mul()
    return c.is_number and c < 0


def _negated_sum(e):
    from ..index_form import make_sum
    return make_sum(-e.function, e.limits)


def _negative_sum(term) -> bool:
    return isinstance(term, sp.Sum) and term.function.could_extract_minus_sign()


# a step shows a sum of more terms than this by its first and last terms and how many it leaves
# out (a sum of 256 quadratic forms, differentiated: 768 Σ's that no one reads and that cost
# most of the derivation to print); the result's own index form is always printed whole
STEP_TERMS = 12
ELIDED_TAIL = 2
ELIDED = "\u22ef"                    # ⋯: a name no input can have (names are identifiers)


def index_text(expr, ctx, wrt_entry=None, var=None, longest=None) -> str:
    """`var`: the variable differentiated by; its Kronecker deltas stand where it stood.
    `longest`: a sum of more terms is shown by its first and last ones (a step's text)."""
    p = IndexText(ctx, wrt_entry)
    p.var, p.longest = var, longest
    return spaced_fractions(p.doprint(expr).replace("**", "^").replace("*", " "))   # x_i^3 / 2, not x_i^3/2


def index_latex(expr, ctx, wrt_entry=None, var=None, longest=None) -> str:
    p = IndexLatex(ctx, wrt_entry)
    p.var, p.longest = var, longest
    return p.doprint(expr)
