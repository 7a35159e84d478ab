"""Index forms (SymPy expressions) -> text and LaTeX, as the seeds write them:
Σ_{p,q} x_p B_pq x_q, δ_pi, ∂X_pq/∂X_ij, (X⁻¹)_pq. SymPy's printers, extended."""
from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .. import functions as F
from .. import nodes as N
from ..diff import Partial
from .latex import to_latex
from .text import to_text


def _summed(e):
    """A sum's indices in the order the seeds write them (p, q, r), not SymPy's nesting order."""
    from ..index_form import DUMMY_POOL
    rank = {n: k for k, n in enumerate(DUMMY_POOL)}
    return sorted((lim[0] for lim in e.limits), key=lambda i: (rank.get(i.name, len(rank)), i.name))


def _joined(indices, sep="", braces=True):
    """Subscripts: `pq` for one-letter indices, `p,q1` otherwise; with index arithmetic
    `{i,p+q-1}` (seed 003 writes δ_{n,i+j-1})."""
    names = [i.name if isinstance(i, sp.Symbol) else str(i).replace(" ", "") for i in indices]
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


class IndexText(_SumsBracketed, StrPrinter):
    printmethod = "_indexcalc_text"      # not Indexed._sympystr: ours print X_pq

    def __init__(self, ctx, wrt_entry=None):
        super().__init__({"order": "none"})
        self.ctx, self.wrt = ctx, wrt_entry

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
        return f"{base}_{_joined(e.indices)}"

    def _print_Symbol(self, e):
        return self._atom_name(e.name)

    def _print_KroneckerDelta(self, e):
        return f"δ_{_joined(e.args)}"

    def _print_Sum(self, e):
        idx = _joined(_summed(e), ",")
        return f"Σ_{idx} {self.parenthesize(e.function, 40)}"

    def _print_Partial(self, e):
        wrt = _joined(self.wrt or [])
        leaf = e.args[0]
        var = leaf.base.label.name if isinstance(leaf, sp.Indexed) else str(leaf)
        return f"∂{self._print(leaf)}/∂{var}_{wrt}" if wrt else f"∂{self._print(leaf)}/∂{var}"

    def _print_Function(self, e):
        return f"{F.name_of(e.func)}({', '.join(self._print(a) for a in e.args)})"


def entry_name(name: str) -> str:
    """An entry's name: h1 -> h^{1} (seed 003 writes h^1_{i+j-1}), W -> W."""
    base = name.rstrip("0123456789")
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


class IndexLatex(_SumsBracketed, LatexPrinter):
    printmethod = "_indexcalc_latex"
    BRACKETS = (r"\left(", r"\right)")

    def __init__(self, ctx, wrt_entry=None):
        super().__init__({"mul_symbol": None, "order": "none"})
        self.ctx, self.wrt = ctx, wrt_entry

    def _atom(self, name):
        node = self.ctx.atoms.get(name)
        return None if node is None else to_latex(node)

    def _print_Indexed(self, e):
        name = e.base.label.name
        sub = _joined(e.indices, braces=False)
        if is_upstream(name, self.ctx):            # dY_pq is ∂L/∂Y_pq
            return fr"\frac{{\partial L}}{{\partial {entry_name(name[1:])}_{{{sub}}}}}"
        atom = self._atom(name)
        if atom is not None:
            return fr"\left[{atom}\right]_{{{sub}}}"
        return f"{entry_name(name)}_{{{sub}}}"

    def _print_Symbol(self, e, style="plain"):
        atom = self._atom(e.name)
        return atom if atom is not None else super()._print_Symbol(e)

    def _print_KroneckerDelta(self, e, exp=None):
        s = fr"\delta_{{{_joined(e.args, braces=False)}}}"
        return f"{s}^{{{exp}}}" if exp else s

    def _print_Sum(self, e):
        if _negative_sum(e):                                # Σ_p (-a_p) is written -Σ_p a_p
            return "-" + self._print_Sum(_negated_sum(e))
        bounds = {lim[0]: (lim[1], lim[2]) for lim in e.limits}
        sums = []
        for i in _summed(e):                                # Σ_{p=1}^{S} Σ_{q=1}^{N}, with ranges
            lo, hi = bounds[i]
            sums.append(fr"\sum_{{{entry_name(i.name)}={self._print(lo)}}}^{{{range_latex(self.ctx, i, hi)}}}")
        return " ".join(sums) + " " + self.parenthesize(e.function, 40)

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
        tail = [f for f in expr.args if isinstance(f, (sp.KroneckerDelta, Partial))]
        if not tail or len(tail) == len(expr.args):
            return super()._print_Mul(expr)
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
        return fr"\frac{{\partial {self._print(leaf)}}}{{\partial {entry_name(var)}_{{{wrt}}}}}"

    def _print_Function(self, e, exp=None):
        name = F.name_of(e.func)
        arg = self._print(e.args[0])
        head = {"exp": r"\exp", "log": r"\log", "sin": r"\sin", "cos": r"\cos", "tanh": r"\tanh",
                "sqrt": r"\sqrt"}.get(name)
        if name == "sqrt":
            s = fr"\sqrt{{{arg}}}"
        elif name == "abs":
            s = fr"\left|{arg}\right|"
        else:
            s = fr"{head or (name if not name[0].isalpha() or len(name.rstrip(chr(39))) == 1 else chr(92) + 'operatorname{' + name + '}')}\left({arg}\right)"
        return f"{s}^{{{exp}}}" if exp else s


def _negated_sum(e):
    from ..index_form import make_sum
    return make_sum(-e.function, e.limits)


def _negative_sum(term) -> bool:
    return isinstance(term, sp.Sum) and term.function.could_extract_minus_sign()


def index_text(expr, ctx, wrt_entry=None) -> str:
    return IndexText(ctx, wrt_entry).doprint(expr).replace("**", "^").replace("*", " ")


def index_latex(expr, ctx, wrt_entry=None) -> str:
    return IndexLatex(ctx, wrt_entry).doprint(expr)
