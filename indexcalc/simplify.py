"""The closed form a TA would write (SPEC §6): rules that hold for every value, applied to a
closed-form tree bottom-up until nothing changes.

Each rule is one function in RULES: node -> a simpler equal node, or None. Every rule keeps
the value (tests/test_simplify.py checks each one numerically and the property that
`simplify` never changes a value and never makes a form longer); `simplify` keeps the result
only when it is no longer than its input.

  transposes and inverses   (Aᵀ)ᵀ = A, (A⁻¹)⁻¹ = A, Sᵀ = S for S = AᵀA, AAᵀ (and sums, inverses,
                            powers and multiples of such)
  powers of one matrix      Xᵀ (X⁵)⁻ᵀ (Xᵀ)³ = (Xᵀ)⁻¹: exponents of a base added along a product
  inverse of a product      (A B)⁻¹ A = B⁻¹, B (A B)⁻¹ = A⁻¹ for square A, B
  like terms                A + A = 2 A, c A - A = (c - 1) A, a number out of a product
  exp folded                exp(u) ⊘ (1 + exp(u)) = σ(u) (and 1 ⊘ (1 + exp(u)) = σ(-u), in chains
                            of ∘ ⊘ and in scalar quotients); exp(u) / (1ᵀ exp(u)) = softmax(u), each
                            exp(u) factor of a product over (1ᵀ exp(u))^k likewise; the rows:
                            diag((exp(Z) 1) .^ -1) exp(Z) = softmax(Z)
  means                     (1ᵀ v) / n = mean(v) for v of n entries
  Hadamard order            variables, then functions, products, sums: dY ∘ Y ∘ (1 - Y)
"""
from __future__ import annotations

from fractions import Fraction

from . import nodes as N


# ---- transposes, inverses, symmetry ------------------------------------------------------------
def _double_transpose(n):
    if isinstance(n, N.Transpose) and isinstance(n.a, N.Transpose):
        return n.a.a
    return None


def _double_negation(n):
    """-(-A) = A (a number or a product's sign brought out in front can meet another)."""
    if isinstance(n, N.Neg) and isinstance(n.a, N.Neg) and n.a.a.shape == n.shape:
        return n.a.a
    return None


def _minus_a_number_of_ones(n):
    """-((1/c) 1) = (-1/c) 1 and -(c 1) = (-c) 1: the sign joins the number of a ones vector,
    as its text reads back (-((1/2) 1) was read back as (-1/2) 1)."""
    if not isinstance(n, N.Neg):
        return None
    a = n.a
    if isinstance(a, N.Div) and isinstance(a.a, N.Ones) and isinstance(a.s, N.Num) \
            and not isinstance(a.s.value, float) and a.s.value != 0:
        return N.ScalarMul(N.num(-1 / Fraction(a.s.value)), a.a, n.shape)
    if isinstance(a, N.ScalarMul) and isinstance(a.a, N.Ones) and isinstance(a.s, N.Num) \
            and not isinstance(a.s.value, float):
        return N.ScalarMul(N.num(-Fraction(a.s.value)), a.a, n.shape)
    return None


def _double_inverse(n):
    if isinstance(n, N.Inverse) and isinstance(n.a, N.Inverse):
        return n.a.a
    return None


def _inverse_of_transpose(n):
    """(Aᵀ)⁻¹ = (A⁻¹)ᵀ, written A^-T: the transpose outside, so it meets other transposes."""
    if isinstance(n, N.Inverse) and isinstance(n.a, N.Transpose):
        return N.Transpose(N.Inverse(n.a.a, n.a.a.shape), n.shape)
    return None


def symmetric(n) -> bool:
    """Whether n equals its transpose for every value of its variables."""
    if isinstance(n, (N.Identity, N.DiagMat)) or n.shape == N.SCALAR:
        return True
    if isinstance(n, N.MatMul):
        return _transposed(n.a, n.b)
    if isinstance(n, (N.Inverse, N.Neg)):
        return symmetric(n.a)
    if isinstance(n, N.MatPow):
        return symmetric(n.a)
    if isinstance(n, (N.ScalarMul,)):
        return symmetric(n.a)
    if isinstance(n, N.Div):
        return symmetric(n.a)
    if isinstance(n, (N.Add, N.Sub, N.Hadamard)):
        return symmetric(n.a) and symmetric(n.b)
    return False


def _transposed(a, b) -> bool:
    """b is aᵀ (so a b and, with a = Bᵀ, Bᵀ B are symmetric)."""
    return (isinstance(a, N.Transpose) and a.a == b) or (isinstance(b, N.Transpose) and b.a == a)


def _symmetric_transpose(n):
    if isinstance(n, N.Transpose) and n.a.shape[0] == n.a.shape[1] and symmetric(n.a):
        return n.a
    return None


# ---- powers of one matrix along a product ----------------------------------------------------------
def _power_of(n):
    """(base, k) with n = base^k for an integer k, base a plain variable or its transpose."""
    if isinstance(n, N.Sym) and n.shape[0] == n.shape[1] and n.shape != N.SCALAR:
        return n, 1
    if isinstance(n, N.MatPow):
        inner = _power_of(n.a)
        return (inner[0], inner[1] * n.k) if inner else None
    if isinstance(n, N.Inverse):
        inner = _power_of(n.a)
        return (inner[0], -inner[1]) if inner else None
    if isinstance(n, N.Transpose):
        inner = _power_of(n.a)
        if inner is None:
            return None
        base, k = inner
        return (base.a if isinstance(base, N.Transpose) else N.Transpose(base, base.shape)), k
    return None


def _power(base, k):
    if k == 0:
        return N.Identity(base.shape)
    if k == 1:
        return base
    if k == -1:
        return N.Transpose(N.Inverse(base.a, base.shape), base.shape) if isinstance(base, N.Transpose) \
            else N.Inverse(base, base.shape)
    if k > 1:
        return N.MatPow(base, k, base.shape)
    return N.MatPow(_power(base, -1), -k, base.shape)      # (X^-1)^2, (X^-T)^2: the inverse's power


_chain = N.matmul_factors


def _merge_powers(n):
    """Adjacent factors of a product that are powers of the same matrix: one power."""
    if not isinstance(n, N.MatMul):
        return None
    parts = _chain(n)
    out, changed = [], False
    for p in parts:
        if out:
            a, b = _power_of(out[-1]), _power_of(p)
            if a and b and a[0] == b[0]:
                out[-1] = _power(a[0], a[1] + b[1])
                changed = True
                continue
        out.append(p)
    if not changed:
        return None
    out = [p for p in out if not isinstance(p, N.Identity)] or [N.Identity(n.shape)]
    node = out[0]
    for p in out[1:]:
        node = N.MatMul(node, p, (node.shape[0], p.shape[1]))
    return node


def _square(n) -> bool:
    return n.shape != N.SCALAR and n.shape[0] == n.shape[1]


def _of_chain(parts):
    node = parts[0]
    for p in parts[1:]:
        node = N.MatMul(node, p, (node.shape[0], p.shape[1]))
    return node


def _inverted_chain(n):
    """The factors of P when n is P⁻¹ (or P⁻ᵀ, the inverse of Pᵀ) for a product P."""
    if isinstance(n, N.Inverse) and isinstance(n.a, N.MatMul):
        return _chain(n.a)
    if isinstance(n, N.Transpose) and isinstance(n.a, N.Inverse) and isinstance(n.a.a, N.MatMul):
        return [f.a if isinstance(f, N.Transpose) else N.Transpose(f, (f.shape[1], f.shape[0]))
                for f in reversed(_chain(n.a.a))]
    return None


def _inverse_cancels(n):
    """(A B)⁻¹ A = B⁻¹ and B (A B)⁻¹ = A⁻¹ for square factors ((A B)⁻¹ = B⁻¹ A⁻¹ only then):
    2 (X Xᵀ)⁻¹ X = 2 X⁻ᵀ for a square X."""
    if not isinstance(n, N.MatMul):
        return None
    parts = _chain(n)
    for k in range(len(parts) - 1):
        for inv, other, end in ((parts[k], parts[k + 1], 0), (parts[k + 1], parts[k], -1)):
            inner = _inverted_chain(inv)
            if inner is None or inner[end] != other or not all(_square(f) for f in inner):
                continue
            rest = inner[1:] if end == 0 else inner[:-1]
            left = _of_chain(rest)
            return _of_chain(parts[:k] + [N.Inverse(left, left.shape)] + parts[k + 2:])
    return None


def _signed_product(n):
    """(sign, scalar coefficient or None, matrix factors) of ±s (A B ...)."""
    sign, coef = 1, None
    while True:
        if isinstance(n, N.Neg) and n.shape != N.SCALAR:
            sign, n = -sign, n.a
        elif isinstance(n, N.ScalarMul) and n.s.shape == N.SCALAR and n.a.shape == n.shape:
            coef = n.s if coef is None else N.ScalarMul(coef, n.s, N.SCALAR)
            n = n.a
        else:
            return sign, coef, _chain(n)


def _product_side(sign, coef, parts):
    node = _of_chain(parts)
    if coef is not None:
        node = N.ScalarMul(coef, node, node.shape)
    return N.Neg(node, node.shape) if sign < 0 else node


def _common_product_factor(n):
    """A C ± s B C = (A ± s B) C and C A ± C B = C (A ± B): a matrix factor that ends (or
    begins) both products out, where that is shorter."""
    if not isinstance(n, (N.Add, N.Sub)) or n.shape == N.SCALAR or n.a.shape != n.shape or \
            n.b.shape != n.shape:
        return None
    (sa, ca, fa), (sb, cb, fb) = _signed_product(n.a), _signed_product(n.b)
    if len(fa) < 2 or len(fb) < 2:
        return None
    for end in (-1, 0):
        shared = fa[end]
        if shared != fb[end] or shared.shape == N.SCALAR:
            continue
        ra, rb = (fa[:-1], fb[:-1]) if end == -1 else (fa[1:], fb[1:])
        sign_b = sb if isinstance(n, N.Add) else -sb          # a + (-b) is a - b
        op = N.Add if sign_b > 0 else N.Sub
        common = ca if ca is not None and ca == cb else None  # s A C + s B C = s (A + B) C
        inner = op(_product_side(sa, None if common else ca, ra), _product_side(1, None if common else cb, rb),
                   (ra[0].shape[0], ra[-1].shape[1]))
        out = _of_chain([inner, shared] if end == -1 else [shared, inner])
        if common is not None:
            out = N.ScalarMul(common, out, out.shape)
        if length(out) < length(n):
            return out
    return None


def _identity_factor(n):
    if isinstance(n, N.MatMul):
        if isinstance(n.a, N.Identity):
            return n.b
        if isinstance(n.b, N.Identity):
            return n.a
    return None


# ---- like terms and numbers --------------------------------------------------------------------
def _terms(n, sign=1):
    """A sum as [(coefficient, node)]."""
    if isinstance(n, N.Add) and n.a.shape == n.shape and n.b.shape == n.shape:
        return _terms(n.a, sign) + _terms(n.b, sign)
    if isinstance(n, N.Sub) and n.a.shape == n.shape and n.b.shape == n.shape:
        return _terms(n.a, sign) + _terms(n.b, -sign)
    if isinstance(n, N.Neg):
        return _terms(n.a, -sign)
    if isinstance(n, N.ScalarMul) and isinstance(n.s, N.Num) and not isinstance(n.s.value, float):
        return [(sign * Fraction(n.s.value) * c, t) for c, t in _terms(n.a)]
    return [(Fraction(sign), n)]


def scaled(c: Fraction, node):
    if c == 1:
        return node
    if c == -1:
        return N.Neg(node, node.shape)
    return N.ScalarMul(N.num(c), node, node.shape)


def _like_terms(n):
    if not isinstance(n, (N.Add, N.Sub)):
        return None
    terms = _terms(n)
    acc: dict = {}                        # the term's key -> [its coefficient, the term as first written]
    for c, t in terms:
        acc.setdefault(_like_key(t), [0, t])[0] += c
    if len(acc) == len(terms):
        return None
    kept = [(c, t) for c, t in acc.values() if c != 0]
    if not kept:                          # A^T X^-T - A^T X^-T, once X^-T X^T = I cancelled
        return zero(n.shape)
    node = scaled(*kept[0])
    for c, t in kept[1:]:
        node = N.Sub(node, scaled(-c, t), n.shape) if c < 0 else N.Add(node, scaled(c, t), n.shape)
    return node


def _unit_factor(n):
    """1 s = s and (-1) s = -s in a product with a scalar: -α / (β s^2) printed -1 α / (β s^2),
    from α (-1)."""
    if isinstance(n, N.ScalarMul):
        for one, other in ((n.s, n.a), (n.a, n.s)):
            if other.shape != n.shape:
                continue
            if N.is_num(one, 1):
                return other
            if (isinstance(one, N.Neg) and N.is_num(one.a, 1)) or N.is_num(one, -1):
                return N.Neg(other, n.shape)
    return None


def _divisor_out_of_product(n):
    """s (A / k) = s A / k for a number k: det(X)^(1/3) X^-T / 3, not det(X)^(1/3) (X^-T / 3)."""
    if isinstance(n, N.ScalarMul) and isinstance(n.a, N.Div) and N.is_num(n.a.s) and n.a.a.shape == n.shape:
        return N.Div(N.ScalarMul(n.s, n.a.a, n.shape), n.a.s, n.shape)
    return None


def _quotient_of_quotient(n):
    """A / p / q = A / (p q) where p or q is a number, the number first; a sign comes out of the
    quotient: -(X^-T / 2) / det(X) is -X^-T / (2 det(X)), ‖u‖^2 / α^2 / 2 is ‖u‖^2 / (2 α^2)."""
    if isinstance(n, N.Div) and isinstance(n.a, N.Neg) and isinstance(n.a.a, N.Div):
        return N.Neg(N.Div(n.a.a, n.s, n.shape), n.shape)
    if isinstance(n, N.Div) and isinstance(n.a, N.Div) and n.a.shape == n.shape and \
            (N.is_num(n.s) or N.is_num(n.a.s)) and not (N.is_num(n.s) and N.is_num(n.a.s)):
        k, other = (n.s, n.a.s) if N.is_num(n.s) else (n.a.s, n.s)
        return N.Div(n.a.a, N.ScalarMul(k, other, N.SCALAR), n.shape)
    return None


def _scalar_out_of_product(n):
    """(s A) B = s (A B) and A (s B) = s (A B) for a scalar s: -2 tr(X^-1) X^-T X^-T is the chain
    X^-T X^-T, so its powers join ((X^-T)^2)."""
    if isinstance(n, N.MatMul) and n.shape != N.SCALAR:
        for side in ("a", "b"):
            f = getattr(n, side)
            if isinstance(f, N.ScalarMul) and f.s.shape == N.SCALAR and not isinstance(f.s, N.Num) and \
                    f.a.shape == f.shape and f.shape != N.SCALAR:
                return N.ScalarMul(f.s, n.replace(**{side: f.a}), n.shape)
    return None


def _like_key(t):
    """What a term is counted as among like terms: 1 ⊘ u and u .^ -1 are one term (the
    derivative of sum(exp(X) ⊘ (exp(X) 1 1^T)) was diag((exp(X) 1) .^ -1 - 1 ⊘ (exp(X) 1)) exp(X),
    which is 0)."""
    if isinstance(t, N.HadDiv) and t.a.shape == t.shape and N.is_all_ones(t.a):
        return N.HadPow(t.b, N.num(-1), t.shape)
    return t


def _number_out_of_product(n):
    """A (c B) = c (A B), (c A) B = c (A B): numbers in front."""
    if isinstance(n, N.MatMul):
        for side in ("a", "b"):
            f = getattr(n, side)
            if isinstance(f, N.ScalarMul) and isinstance(f.s, N.Num):
                inner = n.replace(**{side: f.a})
                return N.ScalarMul(f.s, inner, n.shape)
            if isinstance(f, N.Neg):
                return N.Neg(n.replace(**{side: f.a}), n.shape)
    if isinstance(n, N.ScalarMul) and isinstance(n.a, N.Neg) and n.shape != N.SCALAR and \
            not isinstance(n.s, N.Num):                       # s (-A) = -(s A) for a matrix A
        return N.Neg(n.replace(a=n.a.a), n.shape)
    if isinstance(n, N.ScalarMul) and isinstance(n.a, N.ScalarMul) and isinstance(n.s, N.Num) \
            and isinstance(n.a.s, N.Num) and not isinstance(n.s.value, float) and not isinstance(n.a.s.value, float):
        return scaled(Fraction(n.s.value) * Fraction(n.a.s.value), n.a.a)
    if isinstance(n, N.ScalarMul) and not isinstance(n.s, N.Num) and isinstance(n.a, N.ScalarMul) \
            and isinstance(n.a.s, N.Num) and not isinstance(n.a.s.value, float):
        # s (c A) = c (s A): the number joins the ones in front (4 α^3 (2 u) is 8 α^3 u, not 4 2 α^3 u)
        return N.ScalarMul(n.a.s, N.ScalarMul(n.s, n.a.a, n.shape), n.shape)
    return None


def _common_number(n):
    """0.5 A + 0.5 A^T = 0.5 (A + A^T): a number both terms of a sum carry goes in front, as
    1/2 does ((A + A^T) / 2, SPEC §6); a decimal stays as written. It was (0.5 A + 0.5 A^T) x."""
    if isinstance(n, (N.Add, N.Sub)) and n.a.shape == n.shape == n.b.shape:
        a, b = n.a, n.b
        if isinstance(a, N.ScalarMul) and isinstance(b, N.ScalarMul) and isinstance(a.s, N.Num) and \
                isinstance(b.s, N.Num) and a.s.value == b.s.value and a.s.value not in (0, 1):
            return N.ScalarMul(a.s, type(n)(a.a, b.a, n.shape), n.shape)
    return None


# ---- exp folded into sigmoid and softmax ---------------------------------------------------------
def _is_exp(n):
    return isinstance(n, N.Func) and n.name == "exp"


def _sigmoid(n):
    """exp(v) / (1 + exp(v)) = σ(v), 1 / ((1 + exp(v)) exp(-v)) = σ(v) and 1 / (1 + exp(v)) =
    σ(-v): identities that hold for every v, read in a quotient of entry-wise factors
    (y ∘ exp(-u) ⊘ (1 + exp(-u)) is y ∘ σ(-u)) or of scalar factors (a / ((1 + exp(v)) exp(-v))
    is σ(v) a): the logistic loss's derivative in the form a textbook writes, and stable."""
    if isinstance(n, (N.Hadamard, N.HadDiv)) and n.a.shape == n.shape and n.b.shape == n.shape:
        num, den = _quotient_factors(n)
        return _fold_sigmoid(num, den, lambda parts: _hadamard_of(parts, n.shape), n.shape)
    if isinstance(n, N.Div) and n.s.shape == N.SCALAR:
        if isinstance(n.a, N.Neg):                   # -(y exp(v) x) / (...): the sign stays in front
            inner = _sigmoid(N.Div(n.a.a, n.s, n.shape))
            return None if inner is None else N.Neg(inner, n.shape)
        num, den = _coefficient_chain(n.a), _scalar_factors_of(n.s)
        minus = [f for f in num if isinstance(f, N.Neg) and N.is_num(f.a) and f.a.value == 1]
        num = [f for f in num if not any(f is m for m in minus)]       # -1 y exp(v): the sign in front

        def build(parts):
            node = parts[-1]
            for p in reversed(parts[:-1]):
                node = N.ScalarMul(p, node, node.shape)
            return node
        out = _fold_sigmoid(num, den, build, n.shape, scalar_den=True)
        return N.Neg(out, n.shape) if out is not None and len(minus) % 2 else out
    return None


def _quotient_factors(n):
    """(numerator factors, denominator factors) of a chain of ∘ and ⊘ of one shape."""
    if isinstance(n, N.Hadamard) and n.a.shape == n.shape and n.b.shape == n.shape:
        (na, da), (nb, db) = _quotient_factors(n.a), _quotient_factors(n.b)
        return na + nb, da + db
    if isinstance(n, N.HadDiv) and n.a.shape == n.shape and n.b.shape == n.shape:
        (na, da), (nb, db) = _quotient_factors(n.a), _quotient_factors(n.b)
        return na + db, da + nb
    return [n], []


def _coefficient_chain(a):
    """s1 (s2 (... A)) as [s1, s2, ..., A]: the scalar factors in front, the rest last."""
    out = []
    while isinstance(a, N.ScalarMul) and a.s.shape == N.SCALAR and a.a.shape == a.shape:
        out += _scalar_factors_of(a.s)
        a = a.a
    return out + [a]


def _scalar_factors_of(s):
    if isinstance(s, N.ScalarMul) and s.shape == N.SCALAR and s.a.shape == N.SCALAR:
        return _scalar_factors_of(s.s) + _scalar_factors_of(s.a)
    return [s]


def _one_plus_exp(n):
    """v when n is 1 + exp(v) (either order), else None."""
    if isinstance(n, N.Add):
        for one, e in ((n.a, n.b), (n.b, n.a)):
            if N.is_all_ones(one) and _is_exp(e) and e.shape == n.shape:
                return e.a
    return None


def _sign_split(n):
    """(±1, n without its signs): -(y (-a)) is (+1, y a); a negative number's sign comes out."""
    if isinstance(n, N.Neg):
        sg, core = _sign_split(n.a)
        return -sg, core
    if isinstance(n, N.Num) and n.value < 0:
        return -1, N.Num(-n.value, n.shape)
    if isinstance(n, (N.ScalarMul, N.Hadamard, N.MatMul, N.Div)):
        fields = ("s", "a") if isinstance(n, N.ScalarMul) else ("a", "s") if isinstance(n, N.Div) else ("a", "b")
        sign, parts = 1, {}
        for name in fields:
            sg, core = _sign_split(getattr(n, name))
            sign, parts[name] = sign * sg, core
            if isinstance(n, N.Div):
                break                                  # the divisor's sign is left alone
        return sign, n.replace(**parts)
    return 1, n


def _negated(a, b) -> bool:
    (sa, ca), (sb, cb) = _sign_split(a), _sign_split(b)
    return ca == cb and sa == -sb


def _cancel(n):
    """a f / (b f) = a / b for scalar factors over a scalar divisor: a factor that stands both
    above and below is 1 wherever the quotient is defined: y (σ(u) - 1) σ(u) / σ(u) is
    y (σ(u) - 1). (Entry-wise factors of a ∘/⊘ chain: _like_entry_factors.)"""
    if isinstance(n, N.Div) and n.s.shape == N.SCALAR:
        num, den = _coefficient_chain(n.a), _scalar_factors_of(n.s)
        scalar_rest = num[-1].shape == N.SCALAR            # else the vector or matrix scaled
        num2, den2 = _cancelled(num if scalar_rest else num[:-1], den)
        if den2 == den:
            return None
        if not scalar_rest:
            num2.append(num[-1])
        node = num2[-1] if num2 else N.Num(Fraction(1))
        for p in reversed(num2[:-1]):
            node = N.ScalarMul(p, node, node.shape)
        for d in den2:
            node = N.Div(node, d, n.shape)
        return node
    return None


def _cancelled(num, den):
    """The factors of a quotient without those that stand both above and below (exp(v) y over
    (1 + exp(v)) exp(v)): f / f is 1 wherever the quotient is defined; so is u sign(u) / |u|
    (log|det X|'s derivative det(X) sign(det(X)) X^-T / |det(X)| is X^-T)."""
    num, den = list(num), list(den)
    for f in list(num):
        if f in den:
            num.remove(f)
            den.remove(f)
    below = [_whole_power(d) for d in den]    # f^j above, f^k below: the lesser power goes
    for i, f in enumerate(num):               # ((1^T x) 1 / (1^T x)^2 is 1 / (1^T x))
        base, j = _whole_power(f)
        k = next((k for k, (b, e) in enumerate(below) if j >= 1 and e >= 1 and b == base), None)
        if k is not None:
            m = min(j, below[k][1])
            num[i], den[k] = _raised(base, j - m), _raised(base, below[k][1] - m)
            below[k] = (base, below[k][1] - m)
    num, den = [f for f in num if f is not None], [d for d in den if d is not None]
    for d in list(den):
        if isinstance(d, N.Func) and d.name == "abs":
            sign = N.Func("sign", d.a, d.shape)
            if d.a in num and sign in num:
                num.remove(d.a)
                num.remove(sign)
                den.remove(d)
            elif sign in num:                   # sign(u) / |u| is 1 / u: log|u|'s derivative
                num.remove(sign)
                den[den.index(d)] = d.a
    return num, den


def _raised(base, k):
    """base^k (entry-wise for a non-scalar base); None for k = 0, the factor gone."""
    if k == 0:
        return None
    return base if k == 1 else (N.Power if base.shape == N.SCALAR else N.HadPow)(base, N.num(k), base.shape)


def _same_signed(a, b) -> bool:
    """a and b are one value with their signs gathered in front: -(y u) and (-y) u."""
    return _sign_split(a) == _sign_split(b)


def _negative(v):
    sign, core = _sign_split(v)
    return core if sign < 0 else N.Neg(v, v.shape)


def _whole_power(f):
    """(base, k) of base .^ k or base^k with a whole-number k other than 0, else (f, 1)."""
    if isinstance(f, (N.HadPow, N.Power)) and N.is_num(f.p) and not isinstance(f.p.value, float) and \
            Fraction(f.p.value).denominator == 1 and f.p.value != 0:
        return f.a, int(f.p.value)
    return f, 1


def _exp_multiple(f, v, most):
    """j when f is exp(j v) or exp(v) .^ j with 1 ≤ j ≤ most, else None."""
    base, k = _whole_power(f)
    if not _is_exp(base) or k < 1:
        return None
    for j in range(1, most // k + 1):
        w = v if j == 1 else N.ScalarMul(N.num(j), v, v.shape)
        if _same_signed(base.a, w):
            return j * k
    return None


def _sigmoid_powers(v, j, k, shape, scalar):
    """exp(j v) / (1 + exp(v))^k = σ(v)^j (1 - σ(v))^(k - j): the logistic Hessian's
    exp(2 z) / (1 + exp(z))^2 is σ(z)^2, its exp(z) / (1 + exp(z))^2 is σ(z) (1 - σ(z))."""
    sig = N.Func("sigmoid", v, v.shape)
    one = N.num(1) if scalar else _hadamard_of([], shape)
    parts = [(sig, j), (N.Sub(one, sig, v.shape), k - j)]

    def power(b, e):
        return b if e == 1 else (N.Power if scalar else N.HadPow)(b, N.num(e), b.shape)
    return [power(b, e) for b, e in parts if e > 0]


def _fold_sigmoid(num, den, build, shape, scalar_den=False):
    num, den = _cancelled(num, den)
    # (1 + exp(v)) .^ -k above is (1 + exp(v)) .^ k below; then (1 + exp(v))^k with k ≥ 2
    moved = [f for f in num if _whole_power(f)[1] < 0 and _one_plus_exp(_whole_power(f)[0]) is not None]
    num = [f for f in num if not any(f is m for m in moved)]
    den = den + [(N.Power if scalar_den else N.HadPow)(_whole_power(f)[0], N.num(-_whole_power(f)[1]),
                                                        f.shape) for f in moved]
    for k, d in enumerate(den):
        base, power = _whole_power(d)
        v = _one_plus_exp(base)
        if v is None or power < 2:
            continue
        rest_den = den[:k] + den[k + 1:]
        for j, f in enumerate(num):
            times = _exp_multiple(f, v, power)
            if times is not None:
                parts = _sigmoid_powers(v, times, power, shape, scalar_den)
                node = build(parts + num[:j] + num[j + 1:])
                break
        else:
            node = build([(N.Power if scalar_den else N.HadPow)(N.Func("sigmoid", _negative(v), v.shape),
                                                                N.num(power), v.shape)] + num)
        for r in rest_den:
            node = N.HadDiv(node, r, shape) if not scalar_den else N.Div(node, r, shape)
        return node
    for k, d in enumerate(den):
        v = _one_plus_exp(d)
        if v is None:
            continue
        rest_den = den[:k] + den[k + 1:]
        sig = None
        for j, f in enumerate(num):
            if _is_exp(f) and _same_signed(f.a, v) and f.shape == d.shape:               # exp(v) / (1 + exp(v))
                sig, num = N.Func("sigmoid", v, v.shape), num[:j] + num[j + 1:]
                break
        if sig is None:
            for j, f in enumerate(rest_den):
                if _is_exp(f) and _negated(f.a, v):                 # 1 / ((1 + exp(v)) exp(-v))
                    sig, rest_den = N.Func("sigmoid", v, v.shape), rest_den[:j] + rest_den[j + 1:]
                    break
        if sig is None:                                             # 1 / (1 + exp(v))
            sig = N.Func("sigmoid", _negative(v), v.shape)
        node = build([sig] + num)
        for r in rest_den:
            node = N.HadDiv(node, r, shape) if not scalar_den else N.Div(node, r, shape)
        return node
    return None


def _sigmoid_across_a_dot(n):
    """(x ∘ σ(-v))ᵀ exp(v) = xᵀ σ(v): σ(-v) ∘ exp(v) = σ(v) entry by entry, with the two factors
    on either side of a dot product, where the ∘ chain's sigmoid fold does not see them. The
    derivative by a scalar inside a softplus sum (∂/∂t Σ_p log(1 + exp(t x_p))) came out so, and
    its code overflowed where σ(-v) is 0 (exp(1600) · 0)."""
    if not (isinstance(n, N.MatMul) and n.shape == N.SCALAR and isinstance(n.a, N.Transpose)
            and n.a.a.shape == n.b.shape and n.b.shape[1] == 1):
        return None
    sides = [_hadamard_factors(n.a.a), _hadamard_factors(n.b)]
    for e_side in (0, 1):
        for j, e in enumerate(sides[e_side]):
            if not _is_exp(e):
                continue
            for k, f in enumerate(sides[1 - e_side]):
                if isinstance(f, N.Func) and f.name == "sigmoid" and _negated(f.a, e.a):
                    new = [list(sides[0]), list(sides[1])]
                    del new[e_side][j]
                    del new[1 - e_side][k]
                    new[e_side].append(N.Func("sigmoid", e.a, e.shape))
                    u, v = (_hadamard_of(parts, n.b.shape) for parts in new)
                    return N.MatMul(N.Transpose(u, n.a.shape), v, n.shape)
    return None


def _exp_total(s):
    """(u, k) when s = (1ᵀ exp(u))^k for a vector u (the normaliser of softmax)."""
    if isinstance(s, N.Power) and N.is_num(s.p) and not isinstance(s.p.value, float) and \
            Fraction(s.p.value).denominator == 1 and s.p.value > 0:
        inner = _exp_total(s.a)
        return (inner[0], inner[1] * int(s.p.value)) if inner else None
    if isinstance(s, N.MatMul) and isinstance(s.a, N.Transpose) and isinstance(s.a.a, N.Ones) and \
            _is_exp(s.b) and s.b.shape[1] == 1:
        return s.b.a, 1
    return None


def _softmax(n):
    """c(exp(u), ..., exp(u)) / (1ᵀ exp(u))^k = c(softmax(u), ...): each of k exp(u) factors
    of a product (matrix product, Hadamard product, diag, transpose) over the normaliser."""
    if not isinstance(n, N.Div):
        return None
    found, rest = _exp_total(n.s), []
    if found is None:                  # the normaliser among other scalar factors: t^2 (1ᵀ exp(x / t))
        factors = _scalar_factors(n.s)
        for j, f in enumerate(factors):
            if (found := _exp_total(f)) is not None:
                rest = factors[:j] + factors[j + 1:]
                break
        if found is None:
            return None
    u, k = found
    node, left = _replace_factors(n.a, N.Func("exp", u, u.shape), N.Softmax(u, u.shape), k)
    if left == k:
        return None
    if left:
        rest.append(_total_power(u, left))
    for r in rest:
        node = N.Div(node, r, n.shape)
    return node


def _row_total_of(t, z) -> bool:
    """Whether t is exp(z) 1, the rows' totals of exp(z)."""
    return isinstance(t, N.MatMul) and _is_exp(t.a) and _same_product(t.a.a, z) and isinstance(t.b, N.Ones)


def _same_product(a, b) -> bool:
    """a == b up to how their matrix products are bracketed: exp(O (E E^T)) is exp((O E) E^T)
    (the index form's matching brackets one term's product one way, another's the other)."""
    return a == b or _left(a) == _left(b)


def _left(n):
    """n with every chain of matrix products bracketed from the left."""
    if isinstance(n, N.MatMul):
        return _of_chain([_left(p) for p in _chain(n)])
    kids = {f: _left(v) for f, v in n.items() if isinstance(v, N.Node)}
    return n.replace(**kids) if kids else n


def _entry_factors(v):
    """(numerator, denominator) entry-wise factors of a vector: chains of ∘ and ⊘, and
    diag(r) b read as r ∘ b."""
    if isinstance(v, N.MatMul):
        parts = _chain(v)
        if len(parts) > 1 and isinstance(parts[0], N.DiagMat):
            (na, da), (nb, db) = _entry_factors(parts[0].a), _entry_factors(_of_chain(parts[1:]))
            return na + nb, da + db
    if isinstance(v, (N.Hadamard, N.HadDiv)):
        num, den = _quotient_factors(v)
        if len(num) + len(den) > 1:
            out_n, out_d = [], []
            for f in num:
                a, b = _entry_factors(f)
                out_n, out_d = out_n + a, out_d + b
            for f in den:
                a, b = _entry_factors(f)
                out_n, out_d = out_n + b, out_d + a
            return out_n, out_d
    return [v], []


def _powers(num, den):
    """Entry-wise factors as [base, exponent]: f .^ k is (f, k), a divisor's exponent negated."""
    out = []
    for sign, fs in ((1, num), (-1, den)):
        for f in fs:
            if isinstance(f, N.HadPow) and N.is_num(f.p) and not isinstance(f.p.value, float) \
                    and Fraction(f.p.value).denominator == 1:
                out.append([f.a, sign * int(f.p.value)])
            else:
                out.append([f, sign])
    return out


def _of_powers(powers, shape):
    """The ∘ and ⊘ chain of [base, exponent] pairs (exponent 0 left out; no numerator: 1 ⊘ ...)."""
    def power(b, k):
        return b if k == 1 else N.HadPow(b, N.num(k), b.shape)
    node = _hadamard_of([power(b, k) for b, k in powers if k > 0], shape)
    for b, k in powers:
        if k < 0:
            node = N.HadDiv(node, power(b, -k), shape)
    return node


def _with_softmax(h, z):
    """h with its factor exp(z) as softmax(z) when h is exp(z), exp(z) B (a row scaling of exp(z)
    is one of the product) or a ∘ chain holding one of them; else None."""
    def scaled(f):
        if _is_exp(f) and _same_product(f.a, z):
            return N.Softmax(z, f.shape)
        chain = _chain(f) if isinstance(f, N.MatMul) else []
        if chain and _is_exp(chain[0]) and _same_product(chain[0].a, z):   # dY ∘ (exp(Z) V)
            return _of_chain([N.Softmax(z, chain[0].shape)] + chain[1:])
        return None
    if scaled(h) is not None:
        return scaled(h)
    parts = _hadamard_factors(h) if isinstance(h, N.Hadamard) else []
    for j, f in enumerate(parts):
        if scaled(f) is not None:
            return _hadamard_of(parts[:j] + [scaled(f)] + parts[j + 1:], h.shape)
    return None


def _row_softmax(n):
    """diag((exp(Z) 1) .^ -1) exp(Z) = softmax(Z), each row of exp(Z) over its total, read along
    a matrix product; the exp(Z) may be a factor of a Hadamard product (diag(r .^ -1) (G ∘ exp(Z))
    = G ∘ softmax(Z)), other entry-wise factors b on the diagonal stay there (diag(b) softmax(Z),
    diagonal matrices commuting: so do the factors of several diagonals in a row, diag(r .^ -1)
    diag(T 1) exp(Z) = diag(T 1) softmax(Z)), and a further power of the rows' totals goes into a
    row sum on the diagonal that holds exp(Z) ((exp(Z) 1) .^ -1 ∘ ((G ∘ exp(Z)) 1) = (G ∘
    softmax(Z)) 1); the transposed product reads the same (exp(Z)^T diag((exp(Z) 1) .^ -1) =
    softmax(Z)^T): the gradients of softmax, log-softmax and log-sum-exp as the textbook writes them."""
    if not isinstance(n, N.MatMul):
        return None
    parts = _chain(n)
    found = _row_softmax_in(parts)
    if found is not None:
        return _of_chain(found)
    mirrored = _row_softmax_in([_mirrored(p) for p in reversed(parts)])     # (A B)^T = B^T A^T
    if mirrored is not None:
        return _of_chain([_mirrored(p) for p in reversed(mirrored)])
    return _row_weights_softmax(parts)


def _row_weights_softmax(parts):
    """Eᵀ v = (diag(v) E)ᵀ 1 and vᵀ E = 1ᵀ diag(v) E: the rows' totals as a vector beside the
    exp(Z) they divide, Σ_i E_ij / r_i (the gradient of a row-wise log-sum-exp by a temperature,
    (X ∘ exp(X/t))ᵀ (exp(X/t) 1) .^ -1 = (X ∘ softmax(X/t))ᵀ 1, whose exp overflows)."""
    for k in range(len(parts) - 1):
        e, v = parts[k], parts[k + 1]
        if isinstance(e, N.Transpose) and v.shape[1] == 1 and v.shape[0] != 1:
            found = _row_softmax_in([N.DiagMat(v, (v.shape[0], v.shape[0])), e.a])
            if found is not None:
                soft = _of_chain(found)
                ones = N.Ones((soft.shape[0], 1))
                if k == 1 and len(parts) == 3 and N.is_all_ones(parts[0]):     # 1ᵀ Sᵀ 1 = 1ᵀ S 1
                    return _of_chain([N.Transpose(ones, (1, soft.shape[0])), soft, N.Ones((soft.shape[1], 1))])
                return _of_chain(parts[:k] + [N.Transpose(soft, (soft.shape[1], soft.shape[0])), ones] + parts[k + 2:])
        row, e = parts[k], parts[k + 1]
        if isinstance(row, N.Transpose) and row.shape[0] == 1 and row.shape[1] != 1 and not isinstance(row.a, N.Ones):
            found = _row_softmax_in([N.DiagMat(row.a, (row.shape[1], row.shape[1])), e])
            if found is not None:
                soft = _of_chain(found)
                ones = N.Ones((soft.shape[0], 1))
                return _of_chain(parts[:k] + [N.Transpose(ones, (1, soft.shape[0])), soft] + parts[k + 2:])
    return None


def _row_totals_quotient(n):
    """(E 1) ⊘ (exp(Z) 1) = (E' 1), E' the E with its exp(Z) as softmax(Z): a row sum over the
    rows' totals of the exp it holds ((X ∘ exp(X/t)) 1 ⊘ (exp(X/t) 1), whose exp overflows)."""
    if not isinstance(n, N.HadDiv) or n.shape[1] != 1 or not isinstance(n.a, N.MatMul):
        return None
    if not isinstance(n.a.b, N.Ones) or n.b.shape != n.shape or n.a == n.b:     # r ⊘ r is 1
        return None
    found = _row_softmax_in([N.DiagMat(N.HadPow(n.b, N.num(-1), n.b.shape), (n.shape[0], n.shape[0])), n.a.a])
    return None if found is None else N.MatMul(_of_chain(found), n.a.b, n.shape)


def _row_scaled_softmax(n):
    """(diag(r .^ -1) A) ∘ (exp(Z) B) = A ∘ (softmax(Z) B): a row scaling is the same on either
    side of ∘, and moved beside the exp(Z) it divides it is the softmax (the gradient of
    log-softmax through a hidden layer, X^T (step(H) ∘ (softmax(Z) W2^T)))."""
    if isinstance(n, N.MatMul):                # diag(d) (A ∘ (exp(Z) B)) C: the diagonal into the ∘
        chain = _chain(n)
        k = 0
        while k < len(chain) - 1 and isinstance(chain[k], N.DiagMat):
            k += 1
        if k == 0 or not isinstance(chain[k], N.Hadamard):
            return None
        h = chain[k]
        for g in _hadamard_factors(h):
            soft = _row_softmax(_of_chain(chain[:k] + (_chain(g) if isinstance(g, N.MatMul) else [g])))
            if soft is None:
                continue
            done = _hadamard_of([soft if p is g else p for p in _hadamard_factors(h)], h.shape)
            return _of_chain([done] + chain[k + 1:])
        return None
    parts = _hadamard_factors(n) if isinstance(n, N.Hadamard) else []
    for i, f in enumerate(parts):
        chain = _chain(f) if isinstance(f, N.MatMul) else []
        k = 0
        while k < len(chain) - 1 and isinstance(chain[k], N.DiagMat):
            k += 1
        if k == 0:
            continue
        for j, g in enumerate(parts):
            if j == i or not g.shape[0] == f.shape[0]:
                continue
            soft = _row_softmax(_of_chain(chain[:k] + (_chain(g) if isinstance(g, N.MatMul) else [g])))
            if soft is None:
                continue
            rest = [_of_chain(chain[k:]) if p is f else soft if p is g else p for p in parts]
            return _hadamard_of(rest, n.shape)
    return None


def _mirrored(p):
    """p^T, a diagonal matrix itself and a transpose's operand; an entry-wise operation's
    transpose taken inside (da^T ∘ exp(K Q^T) is (da ∘ exp(Q K^T))^T: the softmax of Q K^T, as
    attention written in index notation differentiates by K, is then found)."""
    if isinstance(p, N.DiagMat):
        return p
    if isinstance(p, N.Transpose):
        return p.a
    if isinstance(p, (N.Hadamard, N.HadDiv, N.Func)):
        return _transposed_inside(p)
    return N.Transpose(p, (p.shape[1], p.shape[0]))


def _transposed_inside(n):
    """n^T with the transpose taken through entry-wise operations, products (reversed), scalar
    factors and signs down to the variables: (A ∘ exp(K Q^T / c))^T = A^T ∘ exp(Q K^T / c)."""
    shape = (n.shape[1], n.shape[0])
    if isinstance(n, N.Transpose):
        return n.a
    if isinstance(n, N.DiagMat) or n.shape == N.SCALAR:
        return n
    if isinstance(n, (N.Hadamard, N.HadDiv, N.Add, N.Sub)):
        return type(n)(_transposed_inside(n.a), _transposed_inside(n.b), shape)
    if isinstance(n, N.Func):
        return N.Func(n.name, _transposed_inside(n.a), shape)
    if isinstance(n, (N.Neg,)):
        return N.Neg(_transposed_inside(n.a), shape)
    if isinstance(n, N.Div):
        return N.Div(_transposed_inside(n.a), n.s, shape)
    if isinstance(n, N.ScalarMul):
        return N.ScalarMul(n.s, _transposed_inside(n.a), shape)
    if isinstance(n, N.MatMul):
        return _of_chain([_transposed_inside(f) for f in reversed(_chain(n))])
    return N.Transpose(n, shape)


def _row_softmax_in(parts):
    """_row_softmax on the factors of a product: the new factors, or None."""
    for k in range(len(parts) - 1):
        j = k
        while j < len(parts) and isinstance(parts[j], N.DiagMat):
            j += 1
        if j == k or j == len(parts):
            continue
        d, e = parts[k:j], parts[j]
        num, den = [], []
        for diag in d:
            a, b = _entry_factors(diag.a)
            num, den = num + a, den + b
        powers = _powers(num, den)
        factors = _hadamard_factors(e) if isinstance(e, N.Hadamard) else [e]
        for z in [f.a for f in factors if _is_exp(f)]:
            total = next((p for p in powers if _row_total_of(p[0], z) and p[1] < 0), None)
            soft = _with_softmax(e, z) if total is not None else None
            if soft is None:
                continue
            total[1] += 1
            for p in powers:                       # the rows' totals left over: into a row sum
                if total[1] < 0 and isinstance(p[0], N.MatMul) and isinstance(p[0].b, N.Ones) and p[1] == 1:
                    inner = _with_softmax(p[0].a, z)
                    if inner is not None:
                        p[0] = N.MatMul(inner, p[0].b, p[0].shape)
                        total[1] += 1
            rest = [p for p in powers if p[1] != 0]
            new = [soft] if not rest else [N.DiagMat(_of_powers(rest, d[0].a.shape), d[0].shape), soft]
            return parts[:k] + new + parts[j + 1:]
    return None


def _like_entry_factors(n):
    """A ∘ B ⊘ A = B, A .^ 2 ⊘ A = A, A ∘ A .^ -2 = 1 ⊘ A: the exponents of one base added along a
    chain of ∘ and ⊘ (the index form's softmax left (exp(X) 1) ⊘ (exp(X) 1))."""
    if not isinstance(n, (N.Hadamard, N.HadDiv)) or n.a.shape != n.shape or n.b.shape != n.shape:
        return None
    powers = _powers(*_quotient_factors(n))
    merged: list = []
    for b, k in powers:
        same = next((m for m in merged if m[0] == b), None)
        if same is None:
            merged.append([b, k])
        else:
            same[1] += k
    if len(merged) == len(powers):
        return None
    return _of_powers([m for m in merged if m[1] != 0], n.shape)


def _diag_of_ones(n):
    """diag(1) = I."""
    if isinstance(n, N.DiagMat) and isinstance(n.a, N.Ones):
        return N.Identity(n.shape)
    return None


def _total_power(u, k):
    total = N.MatMul(N.Transpose(N.Ones(u.shape), (1, u.shape[0])), N.Func("exp", u, u.shape), N.SCALAR)
    return total if k == 1 else N.Power(total, N.num(k), N.SCALAR)


def _replace_factors(n, old, new, k):
    """n with up to k multiplicative occurrences of old replaced by new; (node, how many left)."""
    if k == 0:
        return n, 0
    if n == old:
        return new, k - 1
    if isinstance(n, (N.MatMul, N.Hadamard)):
        a, k = _replace_factors(n.a, old, new, k)
        b, k = _replace_factors(n.b, old, new, k)
        return n.replace(a=a, b=b), k
    if isinstance(n, (N.Transpose, N.DiagMat, N.Neg)):
        a, k = _replace_factors(n.a, old, new, k)
        return n.replace(a=a), k
    if isinstance(n, N.ScalarMul):             # (dy^T exp(z)) exp(z) / (1^T exp(z))^2: the scalar too
        a, k = _replace_factors(n.a, old, new, k)
        s, k = _replace_factors(n.s, old, new, k)
        return n.replace(a=a, s=s), k
    return n, k


# ---- means ------------------------------------------------------------------------------------
def _total_of(s):
    """v when s = 1ᵀ v for a column vector v."""
    if isinstance(s, N.MatMul) and isinstance(s.a, N.Transpose) and isinstance(s.a.a, N.Ones) and \
            s.b.shape[1] == 1 and s.shape == N.SCALAR:
        return s.b
    return None


def _without_size(d, name):
    """d / n for a scalar d with a factor n (the size called name), else None."""
    if isinstance(d, N.Size):
        return N.num(1) if d.name == name else None
    if isinstance(d, N.Power) and isinstance(d.a, N.Size) and d.a.name == name and N.is_num(d.p) and \
            not isinstance(d.p.value, float) and Fraction(d.p.value).denominator == 1 and d.p.value >= 2:
        return d.a if d.p.value == 2 else N.Power(d.a, N.num(Fraction(d.p.value) - 1), N.SCALAR)
    if isinstance(d, (N.ScalarMul, N.MatMul)) and d.shape == N.SCALAR:
        left, right = (d.s, d.a) if isinstance(d, N.ScalarMul) else (d.a, d.b)
        for mine, other in ((left, right), (right, left)):
            rest = _without_size(mine, name)
            if rest is not None:
                return other if N.is_num(rest, 1) else d.replace(**{
                    ("s" if isinstance(d, N.ScalarMul) else "a"): rest,
                    ("a" if isinstance(d, N.ScalarMul) else "b"): other})
    return None


def _mean(n):
    """(1ᵀ v) / n = mean(v) and ((1ᵀ v) A) / (n d) = mean(v) A / d, for v a vector of n
    entries (a size n in the denominator, alone, as a power or a factor)."""
    if not isinstance(n, N.Div):
        return None
    v, rest = _total_of(n.a), n.a
    if v is None and isinstance(n.a, N.ScalarMul):
        v, rest = _total_of(n.a.s), n.a.a
    if v is None or not isinstance(v.shape[0], str):
        return None
    d = _without_size(n.s, v.shape[0])
    if d is None:
        return None
    body = N.Mean(v) if rest is n.a else N.ScalarMul(N.Mean(v), rest, n.shape)
    return body if N.is_num(d, 1) else N.Div(body, d, n.shape)


def _centred_mean(n):
    """mean(v - mean(v) 1) = 0."""
    if isinstance(n, N.Mean) and isinstance(n.a, N.Sub):
        v, spread = n.a.a, n.a.b
        if isinstance(spread, N.ScalarMul) and spread.s == N.Mean(v) and isinstance(spread.a, N.Ones):
            return N.num(0)
    return None


def _common_divisor(n):
    """a / s ± b / s = (a ± b) / s."""
    if isinstance(n, (N.Add, N.Sub)) and isinstance(n.a, N.Div) and isinstance(n.b, N.Div) and \
            n.a.s == n.b.s and n.a.a.shape == n.b.a.shape == n.shape:
        return N.Div(type(n)(n.a.a, n.b.a, n.shape), n.a.s, n.shape)
    return None


def _transposes_of_a_sum(n):
    """aᵀ ± bᵀ = (a ± b)ᵀ."""
    if isinstance(n, (N.Add, N.Sub)) and isinstance(n.a, N.Transpose) and isinstance(n.b, N.Transpose) \
            and n.a.a.shape == n.b.a.shape:
        inner = type(n)(n.a.a, n.b.a, n.a.a.shape)
        out = N.Transpose(inner, n.shape)
        return out if length(out) < length(n) else None
    return None


def _scalar_factors(n) -> list:
    """The factors of a product of scalars (ScalarMul or 1×1 products of 1×1 factors)."""
    out, stack = [], [n]
    while stack:
        x = stack.pop()
        if isinstance(x, N.ScalarMul) and x.shape == N.SCALAR and x.a.shape == N.SCALAR:
            stack += [x.a, x.s]
        elif isinstance(x, N.MatMul) and x.shape == x.a.shape == x.b.shape == N.SCALAR:
            stack += [x.b, x.a]
        else:
            out.append(x)
    return out


def _base_power(t):
    if isinstance(t, N.Power) and N.is_num(t.p) and not isinstance(t.p.value, float) and \
            Fraction(t.p.value).denominator == 1:
        return t.a, Fraction(t.p.value)
    return t, Fraction(1)


def _scalar_powers(n):
    """b^p ... b^q = b^(p+q) in a product of scalars, for whole p, q (n s^2 s = n s^3)."""
    if n.shape != N.SCALAR or not isinstance(n, (N.ScalarMul, N.MatMul)):
        return None
    parts = _scalar_factors(n)
    merged: list = []
    for f in parts:
        b, p = _base_power(f)
        for k, (b2, p2) in enumerate(merged):
            if b2 == b and not isinstance(b, N.Num):
                merged[k] = (b, p + p2)
                break
        else:
            merged.append((b, p))
    if len(merged) == len(parts):
        return None
    nodes = [b if p == 1 else N.Power(b, N.num(p), N.SCALAR) for b, p in merged if p != 0] or [N.num(1)]
    out = nodes[0]
    for f in nodes[1:]:
        out = N.ScalarMul(out, f, N.SCALAR)
    return out


def _axis_means(n):
    """A 1 / k = mean(A, 1) and A 1 1ᵀ / k = mean(A, 1) 1ᵀ for A with k columns (1ᵀ A / k =
    mean(A, 0) and 1 1ᵀ A / k = 1 mean(A, 0) for k rows): LayerNorm's and BatchNorm's means as
    the user wrote them."""
    if not (isinstance(n, N.Div) and isinstance(n.s, N.Size) and isinstance(n.a, N.MatMul)):
        return None
    parts, k = _chain(n.a), n.s.name
    ones_t = [isinstance(p, N.Transpose) and isinstance(p.a, N.Ones) for p in parts]
    ones = [isinstance(p, N.Ones) for p in parts]
    if len(parts) >= 3 and ones[-2] and ones_t[-1]:
        a = _of_chain(parts[:-2])
        if str(a.shape[1]) == k and not ones[-3]:
            return N.MatMul(_mean_axis(a, 1, (a.shape[0], 1)), parts[-1], n.shape)
    if len(parts) >= 2 and ones[-1]:
        a = _of_chain(parts[:-1])
        if str(a.shape[1]) == k and a.shape[1] != 1 and not ones_t[-2]:
            return _mean_axis(a, 1, n.shape)
    if len(parts) >= 3 and ones[0] and ones_t[1]:
        a = _of_chain(parts[2:])
        if str(a.shape[0]) == k and not ones_t[2]:
            return N.MatMul(parts[0], _mean_axis(a, 0, (1, a.shape[1])), n.shape)
    if len(parts) >= 2 and ones_t[0]:
        a = _of_chain(parts[1:])
        if str(a.shape[0]) == k and a.shape[0] != 1 and not ones[1]:
            return _mean_axis(a, 0, n.shape)
    return None


def _mean_axis(a, axis, shape):
    """mean(a, axis); of a transpose, the transpose of the other axis's mean (mean(X^T, 1) = mean(X, 0)^T)."""
    if isinstance(a, N.Transpose):
        return N.Transpose(N.MeanAxis(a.a, 1 - axis, shape[::-1]), shape)
    return N.MeanAxis(a, axis, shape)


def _centred_rows(n):
    """(A - A 1 1ᵀ / k) 1 = 0 for A with k columns: rows less their means sum to zero (also
    written (A - mean(A, 1) 1ᵀ) 1)."""
    if not (isinstance(n, N.MatMul) and isinstance(n.b, N.Ones) and isinstance(n.a, N.Sub)):
        return None
    a, means = n.a.a, n.a.b
    if isinstance(means, N.MatMul) and isinstance(means.a, N.MeanAxis) and means.a.axis == 1 \
            and means.a.a == a and isinstance(means.b, N.Transpose) and isinstance(means.b.a, N.Ones):
        return zero(n.shape)
    if not (isinstance(means, N.Div) and means.s == N.Size(str(a.shape[1]))):
        return None
    parts = _chain(means.a)
    if len(parts) == 3 and parts[0] == a and isinstance(parts[1], N.Ones) and \
            isinstance(parts[2], N.Transpose) and isinstance(parts[2].a, N.Ones):
        return zero(n.shape)
    return None


def _leading_minus(n):
    """-a + b = b - a."""
    if isinstance(n, N.Add) and isinstance(n.a, N.Neg) and n.a.shape == n.b.shape == n.shape:
        return N.Sub(n.b, n.a.a, n.shape)
    return None


# ---- zeros -----------------------------------------------------------------------------------
def is_zero(n) -> bool:
    return N.is_num(n, 0) or (isinstance(n, N.ScalarMul) and N.is_num(n.s, 0))


def zero(shape):
    if shape == N.SCALAR:
        return N.num(0)
    ones = N.Ones((shape[0], 1))
    if shape[1] != 1:
        ones = N.MatMul(ones, N.Transpose(N.Ones((shape[1], 1)), (1, shape[1])), shape)
    return N.ScalarMul(N.num(0), ones, shape)


_LINEAR = (N.Div, N.HadDiv, N.Neg, N.Transpose, N.DiagMat, N.DiagVec, N.Trace, N.SumAll, N.SumAxis, N.Mean,
           N.MeanAxis)


def _zero_out(n):
    """0 a = a 0 = 0 / s = -0 = 0 ∘ a = 0, and a linear map of 0 (diag, tr, a sum, a mean) is
    0; a + 0 = a, a - 0 = a, 0 - b = -b."""
    if is_zero(n):
        return None
    if isinstance(n, (N.ScalarMul, N.MatMul, N.Hadamard)) and any(is_zero(c) for c in n.children()):
        return zero(n.shape)
    if isinstance(n, _LINEAR) and is_zero(n.a):
        return zero(n.shape)
    if isinstance(n, (N.Add, N.Sub)) and n.a.shape == n.shape and n.b.shape == n.shape:
        if is_zero(n.b):
            return n.a
        if is_zero(n.a):
            return n.b if isinstance(n, N.Add) else N.Neg(n.b, n.shape)
    return None


# ---- the order of a Hadamard product ------------------------------------------------------------
def _hadamard_factors(n):
    """The factors of a chain of ∘ whose operands all have its shape (no broadcasting)."""
    if isinstance(n, N.Hadamard) and n.a.shape == n.shape and n.b.shape == n.shape:
        return _hadamard_factors(n.a) + _hadamard_factors(n.b)
    return [n]


def _reading_rank(n) -> int:
    """Variables first, then values of functions, then products, sums last: dY ∘ Y ∘ (1 - Y)."""
    if isinstance(n, N.Transpose):
        return _reading_rank(n.a)
    if isinstance(n, (N.Sym, N.Ones, N.Identity)):
        return 0
    if isinstance(n, (N.Func, N.Softmax, N.HadPow)):
        return 1
    if isinstance(n, (N.Add, N.Sub, N.Neg)):
        return 3
    return 2


def _coefficient_and_factors(n):
    """(scalar coefficient or None, Hadamard factors) of s (A ∘ B ∘ ...) or A ∘ B ∘ ..."""
    if isinstance(n, N.ScalarMul) and n.s.shape == N.SCALAR and n.a.shape == n.shape:
        c, parts = _coefficient_and_factors(n.a)
        return (n.s if c is None else N.ScalarMul(n.s, c, N.SCALAR)), parts
    return None, _hadamard_factors(n)


def _hadamard_of(parts, shape):
    """The ∘ of the parts; of none, the ones of the shape (1 or 1 1ᵀ)."""
    if not parts:
        r, c = shape
        ones = N.Ones((r, 1))
        return ones if c == 1 else N.MatMul(ones, N.Transpose(N.Ones((c, 1)), (1, c)), shape)
    node = parts[0]
    for p in parts[1:]:
        node = N.Hadamard(node, p, shape)
    return node


def _spread_powers(parts):
    """A .^ k (a whole k from 2 to 4) as k factors A, so that a factor common to A .^ 2 and A
    is seen (_like_entry_factors joins what is left again)."""
    out = []
    for p in parts:
        base, k = _whole_power(p)
        out += [base] * k if isinstance(p, N.HadPow) and 2 <= k <= 4 else [p]
    return out


def _diag_of_a_sum(n):
    """diag(a) ± diag(b) = diag(a ± b): the logistic Hessian's diag(σ) - diag(σ .^ 2)."""
    if isinstance(n, (N.Add, N.Sub)) and isinstance(n.a, N.DiagMat) and isinstance(n.b, N.DiagMat) and \
            n.a.a.shape == n.b.a.shape:
        return N.DiagMat(type(n)(n.a.a, n.b.a, n.a.a.shape), n.shape)
    return None


def common_hadamard_factor(n):
    """A ∘ B ± s (C ∘ B) = B ∘ (A ± s C): every factor common to both sides out, a side left
    without factors the ones (σ + x ∘ σ ∘ (1 - σ) = σ ∘ (1 + x ∘ (1 - σ))); only where that
    is shorter."""
    if not isinstance(n, (N.Add, N.Sub)) or n.a.shape != n.shape or n.b.shape != n.shape or \
            len(n.shape) != 2:
        return None
    (ca, fa), (cb, fb) = _coefficient_and_factors(n.a), _coefficient_and_factors(n.b)
    fa, fb = _spread_powers(fa), _spread_powers(fb)            # s - s .^ 2 = s ∘ (1 - s)
    rest_b, common = list(fb), []
    for f in fa:
        if f in rest_b:
            common.append(f)
            rest_b.remove(f)
    rest_a = list(fa)
    for f in common:
        rest_a.remove(f)
    if not common or not (rest_a or rest_b):
        return None
    sides = []
    for c, rest in ((ca, rest_a), (cb, rest_b)):
        side = _hadamard_of(rest, n.shape)
        sides.append(side if c is None else N.ScalarMul(c, side, n.shape))
    out = N.Hadamard(_hadamard_of(common, n.shape), type(n)(sides[0], sides[1], n.shape), n.shape)
    # A - A ∘ B as A ∘ (1 - B) even a few letters longer: σ - σ .^ 2 is σ ∘ (1 - σ), as σ' is written
    slack = len("(1 - )") if isinstance(n, N.Sub) and not rest_a and ca is None and cb is None else 0
    return out if length(out) < length(n) + slack else None


def _hadamard_order(n):
    """A ∘ B = B ∘ A: the factors of a Hadamard product in the textbook's order (stable)."""
    if not isinstance(n, N.Hadamard):
        return None
    parts = _hadamard_factors(n)
    ordered = sorted(parts, key=_reading_rank)
    if ordered == parts:
        return None
    node = ordered[0]
    for p in ordered[1:]:
        node = N.Hadamard(node, p, n.shape)
    return node


RULES = [_double_transpose, _double_negation, _minus_a_number_of_ones, _double_inverse, _inverse_of_transpose, _symmetric_transpose, _merge_powers, _inverse_cancels,
         _identity_factor, _unit_factor, _divisor_out_of_product, _quotient_of_quotient, _scalar_out_of_product, _cancel, _sigmoid, _mean, _centred_mean, _centred_rows, _zero_out, _leading_minus,
         _common_divisor, _transposes_of_a_sum, _scalar_powers,
         _softmax, _sigmoid_across_a_dot, _common_number, _row_softmax, _row_scaled_softmax, _like_entry_factors, _row_totals_quotient, _diag_of_ones, _diag_of_a_sum, _number_out_of_product, _like_terms, _hadamard_order, common_hadamard_factor,
         _common_product_factor]


def rewrite(node: N.Node) -> N.Node:
    """Every rule, bottom-up, until none applies."""
    for _ in range(50):
        out = _once(node)
        if out == node:
            return out
        node = out
    return node


def _once(node, parent=None, rules=None):
    """One bottom-up pass. A rule that reads a whole chain (like terms along a chain of sums,
    powers along a chain of products) is applied at the chain's top only, where it sees every
    link: applied at each of the k nodes of a chain, it read the chain below each, k^2 / 2
    visits (a sum of 256 quadratic forms, a product of 512 factors: 0.5 s each)."""
    node = node.map_children(lambda c: _once(c, node, rules))
    for rule in RULES if rules is None else rules:
        links = CHAINS.get(rule)
        if links is not None and parent is not None and links(parent) and links(node):
            continue
        out = rule(node)
        if out is not None and out != node:
            return out
    return node


def _sum_link(n) -> bool:
    """A sum or difference whose terms _terms reads through."""
    return isinstance(n, (N.Add, N.Sub)) and n.a.shape == n.shape and n.b.shape == n.shape


CHAINS = {_like_terms: _sum_link, _merge_powers: lambda n: isinstance(n, N.MatMul),
          _inverse_cancels: lambda n: isinstance(n, N.MatMul),
          _row_softmax: lambda n: isinstance(n, N.MatMul),
          _row_scaled_softmax: lambda n: isinstance(n, N.MatMul),
          _like_entry_factors: lambda n: isinstance(n, (N.Hadamard, N.HadDiv)),
          _sigmoid: lambda n: isinstance(n, (N.Hadamard, N.HadDiv))}


def length(node: N.Node) -> int:
    from .printing.text import to_text
    return len(to_text(node))


def simplify(node: N.Node, written: N.Node | None = None) -> N.Node:
    """The rewritten form when it is no longer than the input, else the input; with `written`
    (the typed input), its sums in the order the user wrote their terms."""
    if node is None:
        return None
    node = _until_fixed(node, _sigmoid)
    out = rewrite(node)
    out = with_means(out if length(out) <= length(node) else node)
    out = _once_rule(out, _double_transpose)
    return as_written(out, written) if written is not None else out


def _until_fixed(node, rule):
    """One rule, bottom-up, until it no longer applies. exp over powers of 1 + exp is folded
    into σ whatever the lengths: σ(z) (1 - σ(z)) x x^T is a few letters longer than exp(z) x x^T
    / (1 + exp(z))^2, but that overflowed to inf / inf = nan for z > 709, where the Hessian of
    the logistic loss is 0 (SPEC §6: stable forms)."""
    for _ in range(20):
        out = _once(node, rules=(rule,))
        if out == node:
            return out
        node = out
    return node


def _once_rule(node, rule):
    """One rule, bottom-up, once."""
    node = node.map_children(lambda c: _once_rule(c, rule))
    return rule(node) or node


def with_means(node: N.Node) -> N.Node:
    """A 1 / k as mean(A, 1) and the like (_axis_means), bottom-up, after the rules: a few
    letters longer than the products, so not weighed against the other rewrites' lengths, but
    what the user wrote for a LayerNorm's or a BatchNorm's statistics."""
    node = node.map_children(with_means)
    out = _axis_means(node)
    if out is None:
        return node
    if isinstance(out, N.MatMul) and isinstance(out.b, N.Transpose) and isinstance(out.b.a, N.MeanAxis):
        m = out.b.a                                   # 1 mean(X, 1)^T = (mean(X, 1) 1^T)^T
        return N.Transpose(N.MatMul(m, N.Transpose(out.a, (1, out.a.shape[0])), out.shape[::-1]), out.shape)
    return out


# ---- sums as the user wrote them -------------------------------------------------------------
class _SumKeys:
    """Each sum's key: its shape and its terms with their coefficients, in any order (a + b - c
    and -c + b + a alike); None for a sum of another number of terms than `counts`. Read once
    per chain: the terms of a sum's left operands (a + b, a + b + c, ...) are prefixes of the
    whole sum's terms, so a chain of k terms is read and printed once, not once per prefix
    (k^2/2 terms printed: 256 quadratic forms). A key is compared through an order-free hash of
    its terms first, and written out in full only where the hashes agree."""

    def __init__(self, counts):
        self.counts = counts
        self.at: dict = {}          # id(sum) -> (the sum, the chain's terms, how many are its own, spine length)
        self.hashes: dict = {}      # id(chain's terms) -> prefix hashes

    def _read(self, n):
        """Fill `at` for n and every sum down its left spine that _terms splits."""
        from .printing.text import to_text
        spine = N.left_spine(n, (N.Add, N.Sub))
        splits = []                                  # (sum, its spine length) while _terms splits it
        for k, s in enumerate(spine):
            if not (s.a.shape == s.shape and s.b.shape == s.shape):
                break
            splits.append((s, len(spine) - k))
        terms = _terms(splits[-1][0].a if splits else n)
        for s, length in reversed(splits):           # each sum's own terms: a prefix of n's
            terms += _terms(s.b, 1 if isinstance(s, N.Add) else -1)
            self.at[id(s)] = (s, terms, len(terms), length)
        if not splits:
            self.at[id(n)] = (n, terms, len(terms), len(spine))
        texts = [(str(c), to_text(t)) for c, t in terms]
        acc, prefix = 0, [0]
        for item in texts:
            acc = (acc + hash(item)) & 0xFFFFFFFFFFFFFFFF
            prefix.append(acc)
        self.hashes[id(terms)] = (terms, texts, prefix)

    def hashed(self, n):
        """(shape, number of terms, order-free hash of the terms) of sum n, or None."""
        if id(n) not in self.at or self.at[id(n)][0] is not n:
            self._read(n)
        _, terms, k, spine = self.at[id(n)]
        if spine + 1 not in self.counts or (k + 1 not in self.counts and k not in self.counts):
            return None
        return n.shape, k, self.hashes[id(terms)][2][k]

    def key(self, n):
        _, terms, k, _ = self.at[id(n)]
        return n.shape, tuple(sorted(self.hashes[id(terms)][1][:k]))


def as_written(node: N.Node, written: N.Node) -> N.Node:
    """Every sum of node whose terms are those of a sum the user wrote, in the user's order
    (tanh(W x + b), not tanh(b + W x)): the same terms with the same coefficients, so the
    same value; only the order of the terms changes."""
    sums = [w for w in written.walk() if isinstance(w, (N.Add, N.Sub))]
    if not sums:
        return node
    spines: dict = {}
    for w in sums:                                   # preorder: a chain's top comes first
        if id(w) not in spines:
            spine = N.left_spine(w, (N.Add, N.Sub))
            spines.update((id(s), len(spine) - k) for k, s in enumerate(spine))
    counts = {spines[id(w)] + 1 for w in sums}
    mine, theirs = _SumKeys(counts), _SumKeys(counts)
    table: dict = {}                                 # hash -> the written sums with it, in order
    for w in sums:
        h = theirs.hashed(w)
        if h is not None:
            table.setdefault(h, []).append(w)

    def visit(n):
        if isinstance(n, (N.Add, N.Sub)):
            h = mine.hashed(n)
            if h in table:
                key = mine.key(n)
                hit = next((w for w in table[h] if theirs.key(w) == key), None)
                if hit is not None:
                    return hit
        return n.map_children(visit)
    return visit(node)
