"""Closed forms -> LaTeX: bold matrices and vectors, ^\\top, \\circ, \\oslash, \\operatorname{tr}."""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from fractions import Fraction

from .. import functions as F
from .. import nodes as N
from .text import ADD, ATOM, JUXT, POSTFIX, TERM, UNARY

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
         "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega"}


# while set, the leaves (matrices, vectors, 1, I) print as their spaces: the shape check
_AS_SPACES = contextvars.ContextVar("as_spaces", default=False)


# the upstream gradients of the derivation being printed (`da` of `a = conv(h, w)`); `dY` with
# an upper-case name is one anyway (SPEC §1)
_UPSTREAM = contextvars.ContextVar("upstream", default=frozenset())


@contextmanager
def upstream_names(names):
    token = _UPSTREAM.set(frozenset(n for n in names if n))
    try:
        yield
    finally:
        _UPSTREAM.reset(token)


# while set, {subtree: LaTeX}: subtrees a long closed form repeats, printed as their names
# (printing/names.py closed_names; the answer's rows define them)
_NAMED = contextvars.ContextVar("named", default=None)


@contextmanager
def named_subtrees(names: dict):
    token = _NAMED.set(dict(names) or None)
    try:
        yield
    finally:
        _NAMED.reset(token)


def to_latex(node: N.Node) -> str:
    return _p(node)[0]


def space_latex(shape) -> str:
    """ℝ^{S×N}; a column vector is ℝ^{n}, a scalar ℝ."""
    dims = [str(d) for d in shape]
    if tuple(shape) == N.SCALAR:
        return r"\mathbb{R}"
    if len(shape) > 2:                                   # a tensor: every axis (B×S×D)
        return r"\mathbb{R}^{" + r" \times ".join(dims) + "}"
    if shape[1] == 1:
        return fr"\mathbb{{R}}^{{{dims[0]}}}"
    return fr"\mathbb{{R}}^{{{dims[0]} \times {dims[1]}}}"


def shape_check_latex(node: N.Node) -> str:
    """The seeds' shape check: (ℝ^{S×N})^⊤ ℝ^{S×M} ⟹ ℝ^{N×M}."""
    token = _AS_SPACES.set(True)
    try:
        spaces = to_latex(node)
    finally:
        _AS_SPACES.reset(token)
    return fr"{spaces} \implies {space_latex(node.shape)}"


def _sym(node):
    s = symbol(node.name, node.shape == N.SCALAR)
    return s, (POSTFIX if s.startswith(r"\frac") or "^{" in s else ATOM)     # (∂L/∂Y)^⊤, (W^{1})^⊤


def _wrap(node, level):
    s, lv = _p(node)
    return s if lv >= level else fr"\left({s}\right)"


def symbol(name: str, scalar: bool) -> str:
    """X -> \\mathbf{X}; a layer number is a superscript as in the seeds (h1 -> \\mathbf{h}^{1}),
    a subscript on scalars (alpha1 -> \\alpha_{1}); dY -> ∂L/∂Y."""
    if len(name) > 1 and name[0] == "d" and (name[1].isupper() or name in _UPSTREAM.get()):
        return fr"\frac{{\partial L}}{{\partial {symbol(name[1:], scalar)}}}"
    base, num = name, ""
    if len(name) > 1 and name[-1].isdigit() and not name.isdigit():
        base = name.rstrip("0123456789")
        num = name[len(base):]
    if base in GREEK:
        base = "\\" + base
    elif len(base) > 1:
        base = fr"\mathrm{{{base}}}"
    if not scalar:
        base = fr"\mathbf{{{base}}}"
    if not num:
        return base
    return base + (f"_{{{num}}}" if scalar else f"^{{{num}}}")


def _num(v):
    if isinstance(v, float) and v == N.PI:
        return r"\pi", ATOM
    if isinstance(v, float):
        return (repr(v), UNARY if v < 0 else ATOM)
    v = Fraction(v)
    if v.denominator == 1:
        return (str(v.numerator), UNARY if v < 0 else ATOM)
    s = fr"\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"
    return ("-" + s, UNARY) if v < 0 else (s, ATOM)


def _juxt(n):
    """A product as the text printer reads it (its _chain): the signs of its factors gathered in
    front, then the scalars, then the matrix factors: -σ(-y (wᵀx)) y x, not σ(y (-wᵀx)) (y x)."""
    from .text import _MINUS, _chain
    if isinstance(n, N.MatMul) and n.shape == N.SCALAR:          # x^T y, itself a scalar
        parts, sign = N.matmul_factors(n), False
    else:
        scalars, factors = _chain(n)
        sign = sum(sc is _MINUS for sc in scalars) % 2 == 1
        parts = [sc for sc in scalars if sc is not _MINUS] + factors
    if not parts:
        return "-1" if sign else "1", UNARY if sign else ATOM
    out = [_wrap(parts[0], UNARY)] + [_wrap(p, POSTFIX) for p in parts[1:]]
    text = (r" \cdot " if _AS_SPACES.get() else " ").join(out)
    return ("-" + (text if not text.startswith("-") else fr"\left({text}\right)"), UNARY) if sign else (text, JUXT)


def _sum(n):
    """a + b - c + ...: down the left operands without recursion (10,000 terms)."""
    spine = N.left_spine(n, (N.Add, N.Sub))
    out = [_wrap(spine[-1].a, ADD)]
    for x in reversed(spine):
        out.append(("+ " if isinstance(x, N.Add) else "- ") + _wrap(x.b, TERM))
    return " ".join(out), ADD


def _call(name):
    return lambda n: (fr"\operatorname{{{name}}}\left({to_latex(n.a)}\right)", ATOM)


def _func(n: N.Func):
    from ..functions import latex_head
    arg = to_latex(n.a)
    if n.name == "sqrt":
        return fr"\sqrt{{{arg}}}", ATOM
    if n.name == "abs":
        return fr"\left|{arg}\right|", ATOM
    return fr"{latex_head(n.name)}\left({arg}\right)", ATOM


def _exp(p):
    if isinstance(p, N.Num):
        return _num(p.value)[0]
    return to_latex(p)


def _hadamard(op, n):
    """As the text printer: a Hadamard product beside a matrix product is always bracketed."""
    left = _p(n.a)[0] if isinstance(n.a, (N.Hadamard, N.HadDiv)) else _wrap(n.a, UNARY)
    return fr"{left} {op} {_wrap(n.b, UNARY)}", TERM


def _transpose(n):
    if isinstance(n.a, N.Inverse):
        return _wrap(n.a.a, ATOM) + r"^{-\top}", POSTFIX
    return _wrap(n.a, ATOM) + r"^{\top}", POSTFIX


CONV_OP = {"valid": "*", "full": r"\mathbin{\tilde{*}}"}

PRINTERS = {
    N.Sym: _sym,
    N.Size: lambda n: (n.name, ATOM),
    N.Num: lambda n: _num(n.value),
    N.Ones: lambda n: (r"\mathbf{1}", ATOM),
    N.Identity: lambda n: (r"\mathbf{I}", ATOM),
    N.MatMul: _juxt, N.ScalarMul: _juxt,
    N.Div: lambda n: (fr"\frac{{{to_latex(n.a)}}}{{{to_latex(n.s)}}}", ATOM),
    N.Add: lambda n: _sum(n),
    N.Sub: lambda n: _sum(n),
    N.Neg: lambda n: ("-" + _wrap(n.a, JUXT), UNARY),
    N.Transpose: _transpose,
    N.Inverse: lambda n: (_wrap(n.a, ATOM) + "^{-1}", POSTFIX),
    N.MatPow: lambda n: (_wrap(n.a, ATOM) + f"^{{{n.k}}}", POSTFIX),
    N.Power: lambda n: (_wrap(n.a, ATOM) + f"^{{{_exp(n.p)}}}", POSTFIX),
    N.HadPow: lambda n: (_wrap(n.a, ATOM) + fr"^{{\circ {_exp(n.p)}}}", POSTFIX),
    N.Hadamard: lambda n: _hadamard(r"\circ", n),
    N.HadDiv: lambda n: _hadamard(r"\oslash", n),
    N.Trace: _call("tr"), N.Det: _call("det"), N.LogDet: _call("logdet"),
    N.Norm: lambda n: (fr"\left\lVert {to_latex(n.a)} \right\rVert", ATOM),
    N.Norm2: lambda n: (fr"\left\lVert {to_latex(n.a)} \right\rVert^{{2}}", POSTFIX),
    N.SumAll: _call("sum"),
    N.SumAxis: lambda n: (fr"\operatorname{{sum}}\left({to_latex(n.a)}, {n.axis}\right)", ATOM),
    N.Mean: _call("mean"),
    N.MeanAxis: lambda n: (fr"\operatorname{{mean}}\left({to_latex(n.a)}, {n.axis}\right)", ATOM),
    N.Func: _func, N.Softmax: _call("softmax"), N.DiagMat: _call("diag"), N.DiagVec: _call("diag"),
    # seed 003: * valid, \tilde{*} full, both without kernel flip
    N.Conv: lambda n: (f"{_wrap(n.a, JUXT)} {CONV_OP[n.mode]} {_wrap(n.b, JUXT)}", TERM),
    N.Flip: _call("flip"),
}


# in the shape check these keep their structure; every other non-scalar node (a variable, 1, I,
# a function's value) is printed as its space ℝ^{m×n}
STRUCTURAL = {N.MatMul, N.ScalarMul, N.Div, N.Add, N.Sub, N.Neg, N.Transpose, N.Hadamard, N.HadDiv,
              N.Inverse, N.Conv, N.Flip}


def _p(node):
    if _AS_SPACES.get() and type(node) not in STRUCTURAL and node.shape != N.SCALAR:
        return space_latex(node.shape), POSTFIX        # ℝ^{..} takes parentheses under ^⊤
    named = _NAMED.get()
    if named is not None and node in named:
        return named[node], ATOM
    return PRINTERS[type(node)](node)
