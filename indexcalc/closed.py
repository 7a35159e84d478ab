"""Building and tidying closed forms: transposes pushed through products, identities
dropped, repeated factors as powers, like terms collected, common factors pulled out
(`B x + Bᵀ x` -> `(B + Bᵀ) x`).
"""
from __future__ import annotations

from fractions import Fraction

import sympy as sp

from . import nodes as N
from .printing.text import to_text


# ---- smart constructors ----------------------------------------------------------------------
def T(node: N.Node) -> N.Node:
    if node.shape == N.SCALAR:
        return node
    if isinstance(node, N.Transpose):
        return node.a
    if isinstance(node, (N.Identity, N.DiagMat)):
        return node
    if isinstance(node, N.MatMul):
        return mm(T(node.b), T(node.a))
    if isinstance(node, N.ScalarMul):
        return N.ScalarMul(node.s, T(node.a), _swap(node.shape))
    if isinstance(node, (N.Add, N.Sub)) and node.a.shape == node.shape and node.b.shape == node.shape:
        spread = type(node)(T(node.a), T(node.b), _swap(node.shape))
        if _transposes(spread) <= _transposes(node) + 1:     # (x - m)^T, not x^T - m^T
            return spread
        return N.Transpose(node, _swap(node.shape))
    if isinstance(node, N.Neg):
        return N.Neg(T(node.a), _swap(node.shape))
    if isinstance(node, ELEMENTWISE):       # f(A)^T = f(A^T): tanh(X W), not tanh(W^T X^T)^T
        inside = node.map_children(T).with_shape(_swap(node.shape))
        if _transposes(inside) <= _transposes(node):
            return inside
    return N.Transpose(node, _swap(node.shape))


ELEMENTWISE = (N.Func, N.Hadamard, N.HadDiv, N.HadPow)


def _transposes(node) -> int:
    return sum(isinstance(n, N.Transpose) for n in node.walk())


def _swap(shape):
    return (shape[1], shape[0])


def mm(a: N.Node, b: N.Node) -> N.Node:
    if a.shape == N.SCALAR:
        return b if N.is_num(a, 1) else N.ScalarMul(a, b, b.shape)
    if b.shape == N.SCALAR:
        return a if N.is_num(b, 1) else N.ScalarMul(b, a, a.shape)
    if isinstance(a, N.Identity):
        return b
    if isinstance(b, N.Identity):
        return a
    return N.MatMul(a, b, (a.shape[0], b.shape[1]))


def had(a: N.Node, b: N.Node) -> N.Node:
    if isinstance(b, N.HadPow) and N.is_num(b.p, -1):
        return N.HadDiv(a, b.a, a.shape)
    if isinstance(a, N.HadPow) and N.is_num(a.p, -1):
        return N.HadDiv(b, a.a, a.shape)
    return N.Hadamard(a, b, a.shape)


# ---- chains --------------------------------------------------------------------------------
chain = N.matmul_factors


def from_chain(parts: list) -> N.Node:
    parts = _powers(parts)
    out = parts[0]
    for p in parts[1:]:
        out = mm(out, p)
    return out


def _powers(parts):
    """X X X -> X^3 (square factors only)."""
    out = []
    for p in parts:
        if out and p.shape[0] == p.shape[1] and p.shape != N.SCALAR:
            last = out[-1]
            base, k = (last.a, last.k) if isinstance(last, N.MatPow) else (last, 1)
            if base == p:
                out[-1] = N.MatPow(p, k + 1, p.shape)
                continue
        out.append(p)
    return out


# ---- sums of terms ---------------------------------------------------------------------------
def combine(parts: list, shape, scalar) -> N.Node:
    """Σ coeff·node as one tidy node. A coeff is an index-free SymPy expression; `scalar`
    turns one into a node (numbers, sizes, scalar variables, det, norm, ...)."""
    acc: dict = {}
    for c, node in parts:
        node = from_chain(chain(node)) if node is not None else N.Num(Fraction(1))
        key = to_text(node)
        if key in acc:
            acc[key] = (acc[key][0] + c, node)
        else:
            acc[key] = (c, node)
    terms = list(acc.values())         # a decimal stays a decimal (1.702, not 851/500)
    terms = [(c, n) for c, n in terms if sp.simplify(c) != 0] if len(terms) < len(parts) else terms
    if not terms:
        return _zero(shape)
    common = _common_factor([c for c, _ in terms])
    terms = [(_simplified(_divide(c, common)) if common != 1 else c, n) for c, n in terms]
    terms = _factor_out(terms, scalar)
    body = _sum_node(terms, scalar)
    return scale(common, body, scalar)


def _simplified(c):
    """sp.simplify, unless it brings in a function the language has not (1 - tanh² becomes
    1/cosh², which no printer knows): then only the rational part is simplified. Only a result
    no longer than c is taken (ratio 1): allowed 1.7 times c, simplify expanded 1/(1 + s)^2,
    s a Σ, into 1/(1 + s^2 + 2 s), and ∂/∂x xᵀx / (1 + xᵀx) printed that denominator."""
    from sympy.core.function import AppliedUndef

    from . import functions as F
    s = sp.simplify(c, ratio=1)
    ours = set(F.TABLE) | {"KroneckerDelta"}
    foreign = [f for f in s.atoms(sp.Function) - c.atoms(sp.Function)
               if F.name_of(f.func) not in ours and not isinstance(f, AppliedUndef)]
    return sp.cancel(c) if foreign else s


def _divide(c, common):
    """c / common, with common's factors taken out of c's where they occur as they are: SymPy's
    own division asks for assumptions (is c/common real? zero?) that take seconds on a product
    of nested functions, (1 - tanh(tanh(...))^2) ..."""
    mine = list(sp.Mul.make_args(c))
    rest = []
    for f in sp.Mul.make_args(common):
        if f in mine:
            mine.remove(f)
        else:
            rest.append(f)
    out = sp.Mul(*mine)
    return out / sp.Mul(*rest) if rest else out


def _zero(shape):
    z = N.Num(Fraction(0))
    if shape == N.SCALAR:
        return z
    return N.ScalarMul(z, N.MatMul(N.Ones((shape[0], 1)), N.Transpose(N.Ones((shape[1], 1)), (1, shape[1])),
                                   shape) if shape[1] != 1 else N.Ones((shape[0], 1)), shape)


def _common_factor(coeffs):
    """The symbolic factor all coefficients share (e.g. 1/S), with the sign if all are negative."""
    if len(coeffs) == 1 and any(f.is_Add for f in sp.Mul.make_args(coeffs[0])):
        return coeffs[0]        # a product with a sum in it goes in front whole, as a sum does
    sets = []
    for c in coeffs:
        _, rest = c.as_coeff_Mul()
        sets.append(set(sp.Mul.make_args(rest)) - {sp.S.One})
    common = set.intersection(*sets) if sets else set()
    out = sp.Mul(*common)
    numbers = {abs(c.as_coeff_Mul()[0]) for c in coeffs}
    if len(coeffs) > 1 and len(numbers) == 1 and numbers != {1}:       # 2/3 (B x + Bᵀ x)
        out *= numbers.pop()
    if len(coeffs) > 1 and all(is_negative(c) for c in coeffs):
        out = -out
    return out


# ---- signs -----------------------------------------------------------------------------------
def is_negative(c) -> bool:
    """Whether a coefficient reads better as -(-c): a number or product with a negative number
    in front; a sum whose negation has fewer minus signs (1 - tanh² stays, -a - b is -(a + b)).
    SymPy's could_extract_minus_sign picks a sum's sign by its sort order instead."""
    if c.is_Add:
        return minus_signs(c) > minus_signs(-c)
    return c.could_extract_minus_sign()


def factored(c):
    """A sum coefficient with its common factors pulled out: σ - σ² as σ (1 - σ), a x + a y as
    a (x + y); a short sum whose expansion is shorter, expanded ((1 - y) σ - y (1 - σ) is σ - y);
    anything else as it is."""
    if not c.is_Add:
        return c
    if sp.count_ops(c) <= 16:                 # small: expanding cannot blow up
        e = sp.expand(c)
        if sp.count_ops(e) < sp.count_ops(c):
            c = e
    return sp.factor_terms(c) if c.is_Add else c


def minus_signs(c) -> int:
    return sum(a.could_extract_minus_sign() for a in sp.Add.make_args(c))


def sign_into_sum(c, factors: list):
    """-(σ - 1) σ -> (1 - σ) σ: a product's negative number c goes into its one sum factor
    when that adds no minus sign there. Returns the new number and factors."""
    sums = [k for k, f in enumerate(factors) if f.is_Add]
    if c < 0 and len(sums) == 1:
        k = sums[0]
        if minus_signs(-factors[k]) <= minus_signs(factors[k]):
            return -c, factors[:k] + [-factors[k]] + factors[k + 1:]
    return c, factors


def _factor_out(terms, scalar):
    """Collect terms that share their last (or first) matrix factor: B x + Bᵀ x -> (B + Bᵀ) x."""
    for side in (-1, 0):
        groups: dict = {}
        for k, (c, n) in enumerate(terms):
            ch = chain(n)
            if len(ch) >= 2 and ch[side].shape != N.SCALAR:
                # by text and shape: A 1 + B 1 shares no factor when the two 1's differ in size
                groups.setdefault((to_text(ch[side]), ch[side].shape), []).append(k)
        best = max(groups.values(), key=len, default=[])
        if len(best) >= 2:
            picked = [terms[k] for k in best]
            ch0 = chain(picked[0][1])
            shared = ch0[side]
            rests = [(c, from_chain(chain(n)[:-1] if side == -1 else chain(n)[1:])) for c, n in picked]
            inner = _sum_node(_factor_out(rests, scalar), scalar)
            new = mm(inner, shared) if side == -1 else mm(shared, inner)
            rest = [t for k, t in enumerate(terms) if k not in best]
            return _factor_out([(sp.S.One, new)] + rest, scalar)
    return terms


def _sum_node(terms, scalar) -> N.Node:
    terms = sorted(terms, key=lambda t: is_negative(t[0]))
    out = None
    for c, n in terms:
        if out is None:
            out = scale(c, n, scalar)
        elif is_negative(c):
            out = N.Sub(out, scale(-c, n, scalar), out.shape)
        else:
            out = N.Add(out, scale(c, n, scalar), out.shape)
    return out


def scale(c, node: N.Node, scalar) -> N.Node:
    """c · node for a SymPy coefficient c."""
    if c == 1:
        return node
    c = factored(c)
    if N.is_num(node, 1) and not c.is_Number:
        return scalar(c)                 # σ (1 - σ), not -(σ² - σ)
    if is_negative(c):
        return N.Neg(scale(-c, node, scalar), node.shape)
    num, den = sp.fraction(sp.together(c))
    if c.is_Add and den != 1 and all(isinstance(f, sp.exp) for f in sp.Mul.make_args(den)):
        num, den = c, sp.S.One           # y (exp(a) - exp(-a)), not y (exp(2 a) - 1) / exp(a)
    elif den != 1 and any(isinstance(f, sp.exp) for f in sp.Mul.make_args(den)):
        ups = [f for f in sp.Mul.make_args(den) if isinstance(f, sp.exp)]     # exp(-u) x, not x / exp(u)
        num = sp.Mul(num, *[sp.exp(-f.args[0]) for f in ups], evaluate=False)
        den = sp.Mul(*[f for f in sp.Mul.make_args(den) if not isinstance(f, sp.exp)])
    if num != 1:
        node = scalar(num) if N.is_num(node, 1) else mm(scalar(num), node)
    if den != 1:
        node = N.Div(node, scalar(den), node.shape)
    return node



