"""Expression tree -> the input language (SPEC §1). What it prints parses back.

Binding strength follows grammar.lark: + - (1) < * / ∘ ⊘ (2) < juxtaposition (3)
< unary minus (4) < postfix ^T ^-1 ^k .^ (5) < atoms (6).
"""
from __future__ import annotations

from fractions import Fraction

from .. import nodes as N

ADD, TERM, JUXT, UNARY, POSTFIX, ATOM = 1, 2, 3, 4, 5, 6


def to_text(node: N.Node) -> str:
    if isinstance(node, N.Ones):
        return "1"       # alone, the answer's expected shape makes it the ones vector
    return _p(node)[0]


def _factor(node, level):
    """A factor of a product: the ones vector stays a bare `1` only here (`X 1`, `1 b`) and
    under a transpose (`1^T x`); anywhere else (`1 / 2`, `2 1`) it would read as a number."""
    return "1" if isinstance(node, N.Ones) else _wrap(node, level)


def _wrap(node, level):
    s, lv = _p(node)
    return s if lv >= level else f"({s})"


def _num(v):
    if isinstance(v, float):
        s = repr(v)
        return (s, UNARY) if v < 0 else (s, ATOM)
    v = Fraction(v)
    if v.denominator == 1:
        return (str(v.numerator), UNARY if v < 0 else ATOM)
    s = f"{abs(v.numerator)}/{v.denominator}"
    return ("-" + s, UNARY) if v < 0 else (s, TERM)


def _exponent(p: N.Node) -> str:
    if isinstance(p, N.Num) and not isinstance(p.value, float) and Fraction(p.value).denominator == 1:
        return str(p.value)
    return "(" + to_text(p) + ")"


def _flatten_matmul(node):
    if isinstance(node, N.MatMul):
        return _flatten_matmul(node.a) + _flatten_matmul(node.b)
    return [node]


def _juxt(node):
    """A product chain; a scalar factor leads, in parentheses unless it is a single atom."""
    if isinstance(node, N.ScalarMul):
        s, lv = _p(node.s)
        lead = s if lv >= UNARY else f"({s})"     # -2 x, -(a + b) x: the minus binds first
        factors = _flatten_matmul(node.a)
        if isinstance(factors[0], N.Ones):
            # `2 1` would read as the number 2: the ones vector must not follow a scalar bare
            rest = [_wrap(node.a, ATOM) if len(factors) == 1 else f"({to_text(node.a)})"]
        else:
            rest = [_wrap(p, POSTFIX) for p in factors]
        return " ".join([lead] + rest), JUXT
    parts = _flatten_matmul(node)
    if isinstance(parts[0], N.ScalarMul):      # (s A) B prints as s A B, which reads back as (s A) B
        head = parts[0]
        rest = head.a
        for p in parts[1:]:
            rest = N.MatMul(rest, p, node.shape)
        return _juxt(N.ScalarMul(head.s, rest, node.shape))
    out = [_factor(parts[0], UNARY)] + [_factor(p, POSTFIX) for p in parts[1:]]
    return " ".join(out), JUXT


def _div(n):
    if isinstance(n.a, N.Num) and isinstance(n.s, N.Num) and n.s.value != 0 and n.a.shape == N.SCALAR:
        return _num(Fraction(n.a.value) / Fraction(n.s.value) if not isinstance(n.a.value, float)
                    and not isinstance(n.s.value, float) else n.a.value / n.s.value)   # 1/3, as read back
    return f"{_wrap(n.a, TERM)} / {_wrap(n.s, POSTFIX)}", TERM


def _neg(n):
    """-x, -A B; but -(1 1^T): `-1 1^T` would read as the number -1 times a row of ones."""
    product = isinstance(n.a, (N.MatMul, N.ScalarMul))
    if product and _flatten_matmul(n.a)[0].__class__ is N.Ones:
        return f"-({to_text(n.a)})", UNARY
    return "-" + _wrap(n.a, JUXT if product else UNARY), UNARY


def _postfix(suffix):
    """A power's base is an atom, or parenthesised ((X^T)^3 rather than X^T^3)."""
    return lambda n: (_wrap(n.a, ATOM) + suffix(n), POSTFIX)


def _call(name):
    return lambda n: (f"{name}({to_text(n.a)})", ATOM)


def _binary(op, level):
    return lambda n: (f"{_wrap(n.a, level)} {op} {_wrap(n.b if hasattr(n, 'b') else n.s, level + 1)}", level)


def _transpose(n):
    if isinstance(n.a, N.Inverse):
        return _wrap(n.a.a, POSTFIX) + "^-T", POSTFIX
    return _factor(n.a, POSTFIX) + "^T", POSTFIX


PRINTERS = {
    N.Sym: lambda n: (n.name, ATOM),
    N.Size: lambda n: (n.name, ATOM),
    N.Num: lambda n: _num(n.value),
    N.Ones: lambda n: ("(1^T)^T", ATOM),
    N.Identity: lambda n: ("I", ATOM),
    N.MatMul: _juxt,
    N.ScalarMul: _juxt,
    N.Div: lambda n: _div(n),
    N.Add: _binary("+", ADD),
    N.Sub: _binary("-", ADD),
    N.Neg: lambda n: _neg(n),
    N.Transpose: _transpose,
    N.Inverse: _postfix(lambda n: "^-1"),
    N.MatPow: _postfix(lambda n: f"^{n.k}"),
    N.Power: _postfix(lambda n: "^" + _exponent(n.p)),
    N.HadPow: _postfix(lambda n: " .^ " + _exponent(n.p)),
    N.Hadamard: _binary("∘", TERM),
    N.HadDiv: _binary("⊘", TERM),
    N.Trace: _call("tr"),
    N.Det: _call("det"),
    N.LogDet: _call("logdet"),
    N.Norm: lambda n: (f"‖{to_text(n.a)}‖", ATOM),
    N.Norm2: _call("norm2"),
    N.SumAll: _call("sum"),
    N.SumAxis: lambda n: (f"sum({to_text(n.a)}, {n.axis})", ATOM),
    N.Func: lambda n: (f"{n.name}({to_text(n.a)})", ATOM),
    N.Softmax: _call("softmax"),
    N.DiagMat: _call("diag"),
    N.DiagVec: _call("diag"),
    N.Conv: lambda n: (f"{'conv' if n.mode == 'valid' else 'conv_full'}({to_text(n.a)}, {to_text(n.b)})", ATOM),
    N.Flip: _call("flip"),
    N.Call: lambda n: (f"{n.name}({', '.join(to_text(a) for a in n.args)})", ATOM),
    N.Equation: lambda n: (f"{n.lhs} = {to_text(n.rhs)}", ADD),
}


def _p(node):
    return PRINTERS[type(node)](node)
