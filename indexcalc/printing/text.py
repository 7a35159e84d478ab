"""Expression tree -> the input language (SPEC §1). What it prints parses back.

Binding strength follows grammar.lark: + - (1) < products and quotients, juxtaposition,
* / ∘ ⊘ alike, left to right (2, 3) < unary minus (4) < postfix ^T ^-1 ^k .^ (5) < atoms (6).
The grammar has one level for all products; the printer tells a matrix product (JUXT) from a
quotient or a Hadamard product (TERM) only to bracket more than the grammar needs, so that no
printed text depends on the rule (SPEC §1.1): a quotient or a Hadamard product is bracketed
as a factor of a matrix product, a matrix product or a quotient as an operand of a Hadamard
product, and every right operand that is itself a product.
"""
from __future__ import annotations

import contextvars
from fractions import Fraction

from .. import functions as F
from .. import nodes as N

ADD, TERM, JUXT, UNARY, POSTFIX, ATOM = 1, 2, 3, 4, 5, 6

# while set, grouping that a reader might take either way is bracketed: the "read as" line
_EXPLICIT = contextvars.ContextVar("explicit", default=False)


def to_text(node: N.Node) -> str:
    if isinstance(node, N.Ones):
        return "1"       # alone, the answer's expected shape makes it the ones vector
    return _p(node)[0]


def read_as(node: N.Node) -> str:
    """The input as read (SPEC §1.1), in the input language with its grouping explicit where it
    matters: `1/2 x^T A x` -> `(1/2) (x^T A x)`, `a / b c` -> `(a / b) c`, `A ∘ B C` ->
    `(A ∘ B) C`; aliases are resolved already in the typed tree (σ(z) -> sigmoid(z))."""
    token = _EXPLICIT.set(True)
    try:
        return to_text(scalars_first(node))
    finally:
        _EXPLICIT.reset(token)


def scalars_first(node: N.Node) -> N.Node:
    """The same value with the scalar factors of every product in front of its matrix factors
    (scalars commute): MatMul(MatMul(1/2 x^T, A), x) -> ScalarMul(1/2, x^T A x).

    A product is read whole at its top: its factors (through every level of MatMul and
    ScalarMul) are put in order once, so a chain of k factors costs k, not k^2. Where the
    product has scalar and matrix factors both, it becomes scalars then matrices; else it
    keeps its grouping (A (B C) stays), with each factor's inside done the same way."""
    if not isinstance(node, _PRODUCTS):
        return node.map_children(scalars_first)
    leaves = _product_leaves(node)
    done = {id(leaf): scalars_first(leaf) for leaf in leaves}
    scalars = [done[id(leaf)] for leaf in leaves if leaf.shape == N.SCALAR]
    factors = [done[id(leaf)] for leaf in leaves if leaf.shape != N.SCALAR]
    if not scalars or not factors:
        return _with_leaves(node, done)
    out = factors[0]
    for f in factors[1:]:
        out = N.MatMul(out, f, (out.shape[0], f.shape[1]))
    for s in reversed(scalars):
        out = N.ScalarMul(s, out, out.shape)
    return out


_PRODUCTS = (N.MatMul, N.ScalarMul)


def _product_leaves(node) -> list:
    """The factors of a product, left to right, through every level of MatMul and ScalarMul
    (without recursion: a chain may be thousands deep)."""
    out, todo = [], [node]
    while todo:
        n = todo.pop()
        if isinstance(n, N.ScalarMul):
            todo += [n.a, n.s]
        elif isinstance(n, N.MatMul):
            todo += [n.b, n.a]
        else:
            out.append(n)
    return out


def _with_leaves(node, done: dict):
    """The product with its grouping, each factor replaced by done[id(factor)]."""
    if isinstance(node, _PRODUCTS):
        return node.map_children(lambda c: _with_leaves(c, done))
    return done[id(node)]


def _factor(node, level):
    """A factor of a product: the ones vector stays a bare `1` only here (`X 1`, `1 b`) and
    under a transpose (`1^T x`); anywhere else (`1 / 2`, `2 1`) it would read as a number."""
    return "1" if isinstance(node, N.Ones) else _wrap(node, level)


def _wrap(node, level):
    s, lv = _p(node)
    return s if lv >= level else f"({s})"


def _num(v):
    if isinstance(v, float) and v == N.PI:
        return "π", ATOM
    if isinstance(v, float):
        s = repr(v)
        return (s, UNARY) if v < 0 else (s, ATOM)
    v = Fraction(v)
    if v.denominator == 1:
        return (str(v.numerator), UNARY if v < 0 else ATOM)
    s = f"{abs(v.numerator)}/{v.denominator}"
    return ("-" + s if v < 0 else s), TERM        # -2/3 x would read as -2 / (3 x)


def _exponent(p: N.Node) -> str:
    if isinstance(p, N.Num) and not isinstance(p.value, float) and Fraction(p.value).denominator == 1:
        return str(p.value)
    return "(" + to_text(p) + ")"


_flatten_matmul = N.matmul_factors


def _juxt(node):
    """A product as scalars then matrix factors, whatever its grouping: s (t A) B, (s A) B and
    s t A B all print `s t A B` (scalars commute), so what is printed reads back to a tree
    that prints the same. A scalar leads bare if it is an atom or a signed atom, else in
    parentheses; later scalars only bare if atoms."""
    if isinstance(node, N.MatMul) and node.shape == N.SCALAR:      # x^T y, itself a scalar
        parts = _flatten_matmul(node)
        return " ".join([_factor(parts[0], UNARY)] + [_factor(p, POSTFIX) for p in parts[1:]]), JUXT
    scalars, factors = _chain(node)
    sign = "-" if sum(sc is _MINUS for sc in scalars) % 2 else ""
    scalars = [sc for sc in scalars if sc is not _MINUS]
    scalars.sort(key=lambda sc: not _is_number(sc))          # 2 alpha x, not alpha 2 x
    if sign and scalars and _is_number(scalars[0]):          # the sign joins a leading number
        scalars[0], sign = N.Num(-_number_value(scalars[0])), ""
    out = []
    for k, sc in enumerate(scalars):
        text, lv = _p(sc)
        out.append(text if lv >= (UNARY if k == 0 else POSTFIX) else f"({text})")
    if factors and scalars and isinstance(factors[0], N.Ones) and not _EXPLICIT.get():
        # `2 1` is 2 times the ones vector (SPEC §1.1): the 1 follows a scalar bare
        out += ["1"] + [_factor(p, POSTFIX) for p in factors[1:]]
    elif factors and scalars and len(factors) > 1 and _EXPLICIT.get():
        out.append("(" + " ".join([_factor(factors[0], UNARY)] + [_factor(p, POSTFIX) for p in factors[1:]]) + ")")
    elif factors:
        out += [_factor(factors[0], UNARY if not scalars else POSTFIX)] + [_factor(p, POSTFIX) for p in factors[1:]]
    if sign:
        out[0] = "-" + (out[0] if not out[0].startswith("-") else f"({out[0]})")
    return " ".join(out), JUXT


_MINUS = N.Num(Fraction(-1))


def _number_value(node):
    if isinstance(node, N.Num):
        return node.value
    if isinstance(node, N.Neg):
        return -_number_value(node.a)
    a, b = _number_value(node.a), _number_value(node.s)
    return a / b if isinstance(a, float) or isinstance(b, float) else Fraction(a) / Fraction(b)


def _is_number(node) -> bool:
    """A number as written, or a quotient of them (printed as one number); π stays π (2 / π)."""
    if isinstance(node, N.Num):
        return node.value != N.PI or not isinstance(node.value, float)
    if isinstance(node, N.Div):
        return _is_number(node.a) and _is_number(node.s)
    return isinstance(node, N.Neg) and _is_number(node.a)


def _chain(node):
    """(scalar factors, matrix factors) of a product, both in reading order. A walk with a
    stack of (node, whether inside a scalar factor), not recursion: a chain of 1,000 factors."""
    scalars, factors = [], []
    stack = [(node, False)]
    while stack:
        x, in_scalar = stack.pop()
        if isinstance(x, N.ScalarMul):
            stack += [(x.a, in_scalar), (x.s, True)]   # x.s is a scalar: its matrix factors
        elif isinstance(x, N.MatMul) and x.shape != N.SCALAR:         # multiply to one
            stack += [(x.b, in_scalar), (x.a, in_scalar)]
        elif isinstance(x, N.Div) and isinstance(x.a, N.Ones) and not in_scalar:
            scalars.append(N.Div(N.num(1), x.s, N.SCALAR))   # s (1 / n) 1 is (1 / n) s 1, as it reads back
            factors.append(x.a)
        elif isinstance(x, N.Neg) and (x.shape == N.SCALAR or isinstance(x.a, (N.MatMul, N.ScalarMul, N.Ones))):
            scalars.append(_MINUS)           # s (-a b^T) is -s a b^T: `-a b^T` reads as (-a) b^T
            stack.append((x.a, in_scalar))
        elif x.shape == N.SCALAR or in_scalar:
            scalars.append(x)
        else:
            factors.append(x)
    return scalars, factors


def _div(n):
    if _is_number(n) and n.a.shape == N.SCALAR and _number_value(n.s) != 0:
        return _num(_number_value(n))        # 1/3, the number it reads back as
    if isinstance(n.a, N.Ones):              # `1 / n` would be the number: (1 / n) 1
        return _juxt(N.ScalarMul(N.Div(N.num(1), n.s, N.SCALAR), n.a, n.shape))
    return f"{_wrap(n.a, UNARY if _EXPLICIT.get() else TERM)} / {_wrap(n.s, POSTFIX)}", TERM


def _neg(n):
    """-x, -A B; but -(1 1^T): `-1 1^T` would read as the number -1 times a row of ones."""
    if _is_number(n.a):
        return _num(-_number_value(n.a))     # -1/3, the number it reads back as
    if isinstance(n.a, N.Ones):              # `-1` would be the number: -1 times the ones, `-1 1`
        return _juxt(N.ScalarMul(N.num(-1), n.a, n.shape))
    product = isinstance(n.a, (N.MatMul, N.ScalarMul))
    if product and _flatten_matmul(n.a)[0].__class__ is N.Ones:
        return f"-({to_text(n.a)})", UNARY
    if product and n.shape != N.SCALAR:
        return _juxt(n)                      # the sign joins the product's scalars
    return "-" + _wrap(n.a, JUXT if product else UNARY), UNARY


def _postfix(suffix):
    """A power's base is an atom, or parenthesised ((X^T)^3 rather than X^T^3)."""
    return lambda n: (_wrap(n.a, ATOM) + suffix(n), POSTFIX)


def _call(name):
    return lambda n: (f"{name}({to_text(n.a)})", ATOM)


def _sum(n):
    """a + b - c + ...: down the left operands without recursion (10,000 terms); each right
    operand in parentheses if it is itself a sum. a - (-b) prints a + b."""
    spine = N.left_spine(n, (N.Add, N.Sub))
    out = [_beside(spine[-1].a, spine[-1].b, ADD)]
    for x in reversed(spine):
        b, op = x.b, "+" if isinstance(x, N.Add) else "-"
        if op == "-" and isinstance(b, N.Neg):
            b, op = b.a, "+"
        out.append(f"{op} {_beside(b, x.a, ADD + 1)}")
    return " ".join(out), ADD


def _binary(op, level):
    return lambda n: (f"{_wrap(n.a, level)} {op} {_wrap(n.b if hasattr(n, 'b') else n.s, level + 1)}", level)


def _beside(node, other, level):
    """An operand of + - ∘ ⊘: the ones vector is a bare `1` beside a vector or matrix, which
    reads it back as the ones (SPEC §1.1: `1 - y`, `1 ⊘ x`); beside a scalar it would be the number.
    The matrix of ones `1 1^T` beside a matrix of its shape is a bare `1` too (`1 - Y`): read
    back, the ones vector broadcasts along the rows, as NumPy's `1 - Y` does."""
    if isinstance(node, N.Ones) and other.shape != N.SCALAR and not isinstance(other, N.Ones):
        return "1"
    if _ones_matrix(node) and other.shape == node.shape and not _ones_matrix(other) \
            and 1 not in node.shape and not _EXPLICIT.get():
        return "1"
    return _wrap(node, level)


def _ones_matrix(node) -> bool:
    """1 1^T: the matrix of ones."""
    return isinstance(node, N.MatMul) and N.is_all_ones(node)


def _hadamard(op, n):
    """`A ∘ B ∘ C` chains bare; any other product or quotient beside ∘ or ⊘ is bracketed:
    `(A B) ∘ C`, `A ∘ (B C)`, `(A / 2) ∘ B`."""
    chain = isinstance(n.a, (N.Hadamard, N.HadDiv)) and not (_EXPLICIT.get() and type(n.a) is not type(n))
    left = _p(n.a)[0] if chain else _beside(n.a, n.b, UNARY)
    return f"{left} {op} {_beside(n.b, n.a, UNARY)}", TERM


def _transpose(n):
    if isinstance(n.a, N.Inverse):             # (X^2)^-T, not X^2^-T
        return _wrap(n.a.a, ATOM) + "^-T", POSTFIX
    if isinstance(n.a, (N.HadPow, N.Power, N.MatPow)):       # (A .^ 2)^T, not A .^ 2^T
        return f"({to_text(n.a)})^T", POSTFIX
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
    N.Add: _sum,
    N.Sub: _sum,
    N.Neg: lambda n: _neg(n),
    N.Transpose: _transpose,
    N.Inverse: _postfix(lambda n: "^-1"),
    N.MatPow: _postfix(lambda n: f"^{n.k}"),
    N.Power: _postfix(lambda n: "^" + _exponent(n.p)),
    N.HadPow: _postfix(lambda n: " .^ " + _exponent(n.p)),
    N.Hadamard: lambda n: _hadamard("∘", n),
    N.HadDiv: lambda n: _hadamard("⊘", n),
    N.Trace: _call("tr"),
    N.Det: _call("det"),
    N.LogDet: _call("logdet"),
    N.Norm: lambda n: (f"‖{to_text(n.a)}‖", ATOM),
    N.Norm2: _call("norm2"),
    N.SumAll: _call("sum"),
    N.SumAxis: lambda n: (f"sum({to_text(n.a)}, {n.axis})", ATOM),
    N.Mean: _call("mean"),
    N.MeanAxis: lambda n: (f"mean({to_text(n.a)}, {n.axis})", ATOM),
    N.Func: lambda n: (f"{F.shown_name(n.name)}({to_text(n.a)})", ATOM),
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
