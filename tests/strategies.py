"""Hypothesis strategies: random well-shaped expressions over the whole language, each drawn
together with an independent NumPy reference (written here, not by indexcalc), the
declarations that fix its shapes, and how to draw each variable's values.

An expression is built top-down from the shape it must have: a scalar, a column vector of a
size, or a matrix of two sizes. Sizes are the names m, n, p bound to distinct numbers, so a
transposition mistake shows up as a shape or value difference. Every operand is chosen so
the expression is defined at the point drawn (log and sqrt of positive things, inverses of
well-conditioned matrices), and kinks (abs, relu) are recorded so a point too close to one
is rejected rather than checked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from .references import softmax

SIZES = {"m": 2, "n": 3, "p": 4}
DIMS = tuple(SIZES)
MATRIX_NAMES = "ABCDEFGKMNPQRUVWXYZ"
VECTOR_NAMES = "abcuvwxyz"
ROW_NAMES = ["r", "s", "t"]           # declared 1×n
SCALAR_NAMES = ["alpha", "beta", "gamma"]

def _erf(a):
    from math import erf
    return np.vectorize(erf, otypes=[float])(a)


SMOOTH = {
    "exp": np.exp, "tanh": np.tanh, "sin": np.sin, "cos": np.cos,
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)), "softplus": lambda a: np.logaddexp(0, a),
    "gelu": lambda a: a * 0.5 * (1 + _erf(a / np.sqrt(2))), "silu": lambda a: a / (1 + np.exp(-a)),
    "erf": _erf, "expm1": np.expm1,
}
ON_POSITIVE = {"log": np.log, "sqrt": np.sqrt, "log1p": np.log1p}
WITH_KINK = {"abs": np.abs, "relu": lambda a: np.maximum(a, 0), "elu": lambda a: np.where(a > 0, a, np.expm1(a))}
# the spellings of course notes and papers (SPEC §1.1), read as the names above
SPELLINGS = {"relu": "ReLU", "sigmoid": "σ", "tanh": "Tanh", "gelu": "GELU", "silu": "SiLU"}


@dataclass
class Expr:
    text: str
    fn: object                 # env -> value (NumPy layout: vectors 1-D, rows (1, n))
    leaf: bool = False         # a name or a call: needs no parentheses as an operand

    def op(self) -> str:
        return self.text if self.leaf else f"({self.text})"


@dataclass
class Case:
    expr: Expr
    variables: dict            # name -> (shape as size names, how to draw: normal|positive|wellcond)
    wrt: str
    kinks: list = field(default_factory=list)     # env -> the arguments of abs/relu

    @property
    def text(self):
        return self.expr.text

    @property
    def where(self) -> str:
        def spec(shape):
            return "scalar" if shape == () else "×".join(map(str, shape))
        return ", ".join(f"{n}: {spec(s)}" for n, (s, _) in self.variables.items())

    def shapes(self):
        return {n: tuple(d if d == 1 else SIZES[d] for d in s) for n, (s, _) in self.variables.items()}

    def draw(self, rng):
        env = {}
        for name, (shape, how) in self.variables.items():
            size = tuple(d if d == 1 else SIZES[d] for d in shape)
            if shape == ():
                env[name] = float(rng.uniform(0.5, 1.5))
            elif how == "positive":
                env[name] = rng.uniform(0.5, 1.5, size=size)
            elif how == "wellcond":
                env[name] = rng.normal(size=size) * 0.2 + 2.0 * np.eye(size[0])
            else:
                env[name] = rng.normal(size=size) * 0.7
        return env

    def far_from_kinks(self, env, margin=1e-3) -> bool:
        return all(np.min(np.abs(np.asarray(k(env)))) > margin for k in self.kinks)


class Builder:
    """Draws one expression; remembers the variables it made (name, shape, how to draw)."""

    def __init__(self, draw):
        self.draw = draw
        self.variables: dict = {}
        self.kinks: list = []

    # ---- leaves ----------------------------------------------------------------------
    def var(self, shape, how="normal") -> Expr:
        same = [n for n, (s, h) in self.variables.items() if s == shape and h == how]
        if same and self.draw(st.booleans()):
            name = self.draw(st.sampled_from(same))
        else:
            name = self._fresh(shape)
            self.variables[name] = (shape, how)
        return Expr(name, lambda env, name=name: env[name], leaf=True)

    def _fresh(self, shape):
        used = set(self.variables)
        if shape == ():
            pool = SCALAR_NAMES
        elif len(shape) == 1:
            pool = list(VECTOR_NAMES)
        elif shape[0] == 1:
            pool = ROW_NAMES
        else:
            pool = list(MATRIX_NAMES)
        free = [n for n in pool if n not in used]
        if not free:      # pool used up: a numbered name of the same kind
            free = [f"{pool[0]}{k}" for k in range(1, 99) if f"{pool[0]}{k}" not in used]
        return free[0]

    def dim(self):
        return self.draw(st.sampled_from(DIMS))

    # ---- by the shape wanted -----------------------------------------------------------
    def scalar(self, depth) -> Expr:
        if depth <= 0:
            return self.var(())
        rule = self.draw(st.sampled_from(SCALAR_RULES))
        return rule(self, depth - 1)

    def vector(self, n, depth) -> Expr:
        if depth <= 0:
            return self.var((n,))
        rule = self.draw(st.sampled_from(VECTOR_RULES))
        return rule(self, n, depth - 1)

    def matrix(self, r, c, depth) -> Expr:
        if depth <= 0:
            return self.var((r, c))
        rules = MATRIX_RULES + (SQUARE_RULES if r == c else [])
        rule = self.draw(st.sampled_from(rules))
        return rule(self, r, c, depth - 1)

    def of(self, shape, depth) -> Expr:
        if shape == ():
            return self.scalar(depth)
        if len(shape) == 1:
            return self.vector(shape[0], depth)
        return self.matrix(shape[0], shape[1], depth)

    def positive(self, shape, depth) -> Expr:
        """Something positive of this shape: a positive variable, exp/sigmoid/softplus of
        anything, or a Hadamard product or sum of positive things."""
        if depth <= 0:
            return self.var(shape, "positive")
        kind = self.draw(st.sampled_from(["var", "exp", "sigmoid", "softplus", "had", "add"]))
        if kind == "var":
            return self.var(shape, "positive")
        if kind in ("had", "add"):
            a, b = self.positive(shape, depth - 1), self.positive(shape, depth - 1)
            if kind == "had" and shape != ():
                return Expr(f"{a.op()} ∘ {b.op()}", lambda e: a.fn(e) * b.fn(e))
            return Expr(f"{a.op()} + {b.op()}", lambda e: a.fn(e) + b.fn(e))
        a = self.of(shape, depth - 1)
        f = SMOOTH[kind]
        return Expr(f"{kind}({a.text})", lambda e: f(a.fn(e)), leaf=True)

    def invertible(self, n, depth) -> Expr:
        """A well-conditioned square matrix: a leaf near 2I, or A^T A + I."""
        if depth <= 0 or self.draw(st.booleans()):
            return self.var((n, n), "wellcond")
        k = self.dim()
        a = self.var((k, n))
        return Expr(f"{a.op()}^T {a.op()} + I", lambda e: a.fn(e).T @ a.fn(e) + np.eye(SIZES[n]))


def _kink(b: Builder, a: Expr):
    b.kinks.append(a.fn)


# ---- scalar rules ----------------------------------------------------------------------
def s_inner(b, d):
    n = b.dim()
    u, v = b.vector(n, d), b.vector(n, d)
    form = b.draw(st.sampled_from(["{u}^T {v}", "{u} · {v}", "dot({U}, {V})"]))
    text = form.format(u=u.op(), v=v.op(), U=u.text, V=v.text)
    return Expr(text, lambda e: u.fn(e) @ v.fn(e), leaf=form.startswith("dot"))


def s_bilinear(b, d):
    r, c = b.dim(), b.dim()
    u, a, v = b.vector(r, d), b.matrix(r, c, d), b.vector(c, d)
    return Expr(f"{u.op()}^T {a.op()} {v.op()}", lambda e: u.fn(e) @ a.fn(e) @ v.fn(e))


def s_trace(b, d):
    n = b.dim()
    a = b.matrix(n, n, d)
    return Expr(f"tr({a.text})", lambda e: np.trace(a.fn(e)), leaf=True)


def s_trace_product(b, d):
    r, c = b.dim(), b.dim()
    x, y = b.matrix(r, c, d), b.matrix(c, r, d)
    return Expr(f"tr({x.op()} {y.op()})", lambda e: np.trace(x.fn(e) @ y.fn(e)), leaf=True)


def s_sum(b, d):
    shape = b.draw(st.sampled_from([(b.dim(),), (b.dim(), b.dim())]))
    a = b.of(shape, d)
    return Expr(f"sum({a.text})", lambda e: np.sum(a.fn(e)), leaf=True)


def s_ones(b, d):
    r, c = b.dim(), b.dim()
    if b.draw(st.booleans()):
        v = b.vector(r, d)
        return Expr(f"1^T {v.op()}", lambda e: np.sum(v.fn(e)))
    a = b.matrix(r, c, d)
    return Expr(f"1^T {a.op()} 1", lambda e: np.sum(a.fn(e)))


def s_norm(b, d):
    n = b.dim()
    form = b.draw(st.sampled_from(["‖v‖", "||v||", "norm(v)", "norm2(v)", "norm(M)", "‖v‖^2"]))
    if "M" in form:
        a = b.matrix(n, b.dim(), d)
        return Expr(f"norm({a.text})", lambda e: np.linalg.norm(a.fn(e)), leaf=True)
    v = b.vector(n, d)
    if form == "norm2(v)":
        return Expr(f"norm2({v.text})", lambda e: np.sum(v.fn(e) ** 2), leaf=True)
    text = {"‖v‖": f"‖{v.text}‖", "||v||": f"||{v.text}||", "norm(v)": f"norm({v.text})",
            "‖v‖^2": f"‖{v.text}‖^2"}[form]
    if form == "‖v‖^2":
        return Expr(text, lambda e: np.sum(v.fn(e) ** 2))
    return Expr(text, lambda e: np.linalg.norm(v.fn(e)), leaf=True)


def s_det(b, d):
    n = b.dim()
    w = b.invertible(n, d)
    form = b.draw(st.sampled_from(["det", "logdet", "log(det"]))
    if form == "det":
        return Expr(f"det({w.text})", lambda e: np.linalg.det(w.fn(e)), leaf=True)
    text = f"logdet({w.text})" if form == "logdet" else f"log(det({w.text}))"
    return Expr(text, lambda e: np.log(np.linalg.det(w.fn(e))), leaf=True)


def s_arith(b, d):
    x, y = b.scalar(d), b.scalar(d)
    op = b.draw(st.sampled_from(["+", "-", "*", " "]))
    f = {"+": np.add, "-": np.subtract, "*": np.multiply, " ": np.multiply}[op]
    text = f"{x.op()} {y.op()}" if op == " " else f"{x.op()} {op} {y.op()}"
    return Expr(text, lambda e: f(x.fn(e), y.fn(e)))


def s_scaled(b, d):
    x = b.scalar(d)
    k = b.draw(st.sampled_from(["2 {x}", "{x} / 3", "-{x}", "{x}^2", "{x} / alpha", "1/2 {x}", "-1/3 {x}",
                                "alpha/2 {x}"]))
    if k in ("{x} / alpha", "alpha/2 {x}"):
        s = b.var((), "positive")
        if k == "alpha/2 {x}":       # a leading fraction: (alpha/2) x, SPEC §1.1
            return Expr(f"{s.text}/2 {x.op()}", lambda e: s.fn(e) / 2 * x.fn(e))
        return Expr(f"{x.op()} / {s.text}", lambda e: x.fn(e) / s.fn(e))
    fn = {"2 {x}": lambda v: 2 * v, "{x} / 3": lambda v: v / 3, "-{x}": lambda v: -v,
          "{x}^2": lambda v: v ** 2, "1/2 {x}": lambda v: v / 2, "-1/3 {x}": lambda v: -v / 3}[k]
    return Expr(k.format(x=x.op()), lambda e: fn(x.fn(e)))


def s_function(b, d):
    name = b.draw(st.sampled_from(sorted(SMOOTH) + sorted(ON_POSITIVE)))
    a = b.positive((), d) if name in ON_POSITIVE else b.scalar(d)
    f = {**SMOOTH, **ON_POSITIVE}[name]
    return Expr(f"{name}({a.text})", lambda e: f(a.fn(e)), leaf=True)


def s_logsumexp(b, d):
    v = b.vector(b.dim(), d)
    return Expr(f"log(sum(exp({v.text})))", lambda e: np.log(np.sum(np.exp(v.fn(e)))), leaf=True)


def s_sqrt_power(b, d):
    a = b.positive((), d)
    return Expr(f"{a.op()}^(1/2)", lambda e: np.sqrt(a.fn(e)))


SCALAR_RULES = [s_inner, s_bilinear, s_trace, s_trace_product, s_sum, s_ones, s_norm, s_det, s_arith,
                s_scaled, s_function, s_logsumexp, s_sqrt_power]


# ---- vector rules ----------------------------------------------------------------------
def v_matvec(b, n, d):
    k = b.dim()
    if b.draw(st.booleans()):
        a, v = b.matrix(n, k, d), b.vector(k, d)
        return Expr(f"{a.op()} {v.op()}", lambda e: a.fn(e) @ v.fn(e))
    a, v = b.matrix(k, n, d), b.vector(k, d)
    return Expr(f"{a.op()}^T {v.op()}", lambda e: a.fn(e).T @ v.fn(e))


def v_add(b, n, d):
    x, y = b.vector(n, d), b.vector(n, d)
    op = b.draw(st.sampled_from(["+", "-"]))
    return Expr(f"{x.op()} {op} {y.op()}", lambda e: x.fn(e) + y.fn(e) if op == "+" else x.fn(e) - y.fn(e))


def v_hadamard(b, n, d):
    return _hadamard(b, (n,), d)


def v_function(b, n, d):
    return _elementwise(b, (n,), d)


def v_softmax(b, n, d):
    a = b.vector(n, d)
    return Expr(f"softmax({a.text})", lambda e: softmax(a.fn(e)), leaf=True)


def v_scaled(b, n, d):
    return _scaled(b, (n,), d)


def v_diag(b, n, d):
    a = b.matrix(n, n, d)
    return Expr(f"diag({a.text})", lambda e: np.diag(a.fn(e)).copy(), leaf=True)


def v_rowsum(b, n, d):
    a = b.matrix(n, b.dim(), d)
    if b.draw(st.booleans()):
        return Expr(f"sum({a.text}, 1)", lambda e: np.sum(a.fn(e), axis=1), leaf=True)
    return Expr(f"{a.op()} 1", lambda e: np.sum(a.fn(e), axis=1))


def v_inverse(b, n, d):
    w, v = b.invertible(n, d), b.vector(n, d)
    form = b.draw(st.sampled_from(["{w}^-1 {v}", "inv({W}) {v}", "{w}^-T {v}"]))
    text = form.format(w=w.op(), W=w.text, v=v.op())
    if "-T" in form:
        return Expr(text, lambda e: np.linalg.inv(w.fn(e)).T @ v.fn(e))
    return Expr(text, lambda e: np.linalg.inv(w.fn(e)) @ v.fn(e))


def v_normalized(b, n, d):
    v = b.vector(n, d)
    return Expr(f"{v.op()} / ‖{v.text}‖", lambda e: v.fn(e) / np.linalg.norm(v.fn(e)))


VECTOR_RULES = [v_matvec, v_add, v_hadamard, v_function, v_softmax, v_scaled, v_diag, v_rowsum, v_inverse,
                v_normalized]


# ---- matrix rules ----------------------------------------------------------------------
def m_product(b, r, c, d):
    k = b.dim()
    x, y = b.matrix(r, k, d), b.matrix(k, c, d)
    op = b.draw(st.sampled_from([" ", " @ ", " * "]))
    return Expr(f"{x.op()}{op}{y.op()}", lambda e: x.fn(e) @ y.fn(e))


def m_transpose(b, r, c, d):
    a = b.matrix(c, r, d)
    t = b.draw(st.sampled_from(["^T", "'", "^⊤"]))
    return Expr(f"{a.op()}{t}", lambda e: a.fn(e).T)


def m_add(b, r, c, d):
    x, y = b.matrix(r, c, d), b.matrix(r, c, d)
    op = b.draw(st.sampled_from(["+", "-"]))
    return Expr(f"{x.op()} {op} {y.op()}", lambda e: x.fn(e) + y.fn(e) if op == "+" else x.fn(e) - y.fn(e))


def m_bias(b, r, c, d):
    """A 1×c row added to every row (broadcasting), written `X + b` or `X + 1 b`."""
    x, row = b.matrix(r, c, d), b.var((1, c))
    text = f"{x.op()} + {row.text}" if b.draw(st.booleans()) else f"{x.op()} + 1 {row.text}"
    return Expr(text, lambda e: x.fn(e) + row.fn(e))


def m_hadamard(b, r, c, d):
    return _hadamard(b, (r, c), d)


def m_function(b, r, c, d):
    return _elementwise(b, (r, c), d)


def m_softmax(b, r, c, d):
    a = b.matrix(r, c, d)
    return Expr(f"softmax({a.text})", lambda e: softmax(a.fn(e)), leaf=True)


def m_scaled(b, r, c, d):
    return _scaled(b, (r, c), d)


def m_outer(b, r, c, d):
    u, v = b.vector(r, d), b.vector(c, d)
    return Expr(f"{u.op()} {v.op()}^T", lambda e: np.outer(u.fn(e), v.fn(e)))


def m_inverse(b, r, c, d):
    w = b.invertible(r, d)
    form = b.draw(st.sampled_from(["{w}^-1", "{w}^{{-1}}", "inv({W})", "{w}^-T"]))
    text = form.format(w=w.op(), W=w.text)
    if "-T" in form:
        return Expr(text, lambda e: np.linalg.inv(w.fn(e)).T)
    return Expr(text, lambda e: np.linalg.inv(w.fn(e)), leaf=form.startswith("inv"))


def m_power(b, r, c, d):
    a = b.matrix(r, r, d)
    k = b.draw(st.integers(2, 3))
    return Expr(f"{a.op()}^{k}", lambda e: np.linalg.matrix_power(a.fn(e), k))


def m_diag(b, r, c, d):
    v = b.vector(r, d)
    return Expr(f"diag({v.text})", lambda e: np.diag(v.fn(e)), leaf=True)


def m_identity(b, r, c, d):
    a = b.matrix(r, r, d)
    return Expr(f"{a.op()} + I", lambda e: a.fn(e) + np.eye(SIZES[r]))


MATRIX_RULES = [m_product, m_transpose, m_add, m_bias, m_hadamard, m_function, m_softmax, m_scaled, m_outer]
SQUARE_RULES = [m_inverse, m_power, m_diag, m_identity]


# ---- shared by vectors and matrices ----------------------------------------------------
def _hadamard(b, shape, d):
    kind = b.draw(st.sampled_from(["∘", ".*", "⊘", "./", ".^"]))
    x = b.of(shape, d)
    if kind in ("∘", ".*"):
        y = b.of(shape, d)
        return Expr(f"{x.op()} {kind} {y.op()}", lambda e: x.fn(e) * y.fn(e))
    if kind in ("⊘", "./"):
        y = b.positive(shape, d)
        return Expr(f"{x.op()} {kind} {y.op()}", lambda e: x.fn(e) / y.fn(e))
    k = b.draw(st.integers(2, 3))
    return Expr(f"{x.op()} .^ {k}", lambda e: x.fn(e) ** k)


def _elementwise(b, shape, d):
    name = b.draw(st.sampled_from(sorted(SMOOTH) + sorted(ON_POSITIVE) + sorted(WITH_KINK)))
    a = b.positive(shape, d) if name in ON_POSITIVE else b.of(shape, d)
    if name in WITH_KINK:
        _kink(b, a)
    f = {**SMOOTH, **ON_POSITIVE, **WITH_KINK}[name]
    spelled = SPELLINGS[name] if name in SPELLINGS and b.draw(st.booleans()) else name
    return Expr(f"{spelled}({a.text})", lambda e: f(a.fn(e)), leaf=True)


def _scaled(b, shape, d):
    a = b.of(shape, d)
    k = b.draw(st.sampled_from(["number", "scalar", "divide", "negate", "fraction", "scientific", "broadcast"]))
    if k == "number":
        return Expr(f"3 {a.op()}", lambda e: 3 * a.fn(e))
    if k == "fraction":             # a leading fraction reads (1/2) A, SPEC §1.1
        return Expr(f"1/2 {a.op()}", lambda e: a.fn(e) / 2)
    if k == "scientific":           # a number in scientific notation (SPEC §1.1)
        return Expr(f"2.5e-1 {a.op()}", lambda e: 0.25 * a.fn(e))
    if k == "broadcast":            # a scalar added to every entry (SPEC §1)
        s = b.scalar(max(d - 1, 0))
        return Expr(f"{a.op()} + {s.op()}", lambda e: a.fn(e) + s.fn(e))
    if k == "divide":
        return Expr(f"{a.op()} / 2", lambda e: a.fn(e) / 2)
    if k == "negate":
        return Expr(f"-{a.op()}", lambda e: -a.fn(e))
    s = b.scalar(max(d - 1, 0))
    return Expr(f"{s.op()} {a.op()}", lambda e: s.fn(e) * a.fn(e))


# ---- the strategy ----------------------------------------------------------------------
@st.composite
def cases(draw, max_depth=3, scalar_only=False):
    """A random well-shaped expression, the variable to differentiate by, and its reference."""
    b = Builder(draw)
    depth = draw(st.integers(1, max_depth))
    if scalar_only:
        shape = ()
    else:
        shape = draw(st.sampled_from([(), (), (), (b.dim(),), (b.dim(), b.dim())]))
    e = b.of(shape, depth)
    wrt = draw(st.sampled_from(sorted(b.variables)))
    return Case(e, dict(b.variables), wrt, list(b.kinks))


# ---- index notation: random contractions of rank ≤ 4 (SPEC §1.3) ---------------------------------
INDEX_SIZES = {"i": 2, "j": 3, "k": 4, "l": 2, "p": 3, "q": 5}
INDEX_SIZE_NAMES = {c: f"N{c}" for c in INDEX_SIZES}


@dataclass
class Contraction:
    """A random contraction in index notation, with its gradient computed here by np.einsum."""
    text: str
    where: str
    wrt: str
    arrays: dict
    gradient: np.ndarray
    mode: str                       # derive (a scalar) or backprop (an entry equation)


@st.composite
def index_contractions(draw):
    letters = list(INDEX_SIZES)
    n_ops = draw(st.integers(1, 3))
    ops = []
    for k in range(n_ops):
        rank = draw(st.integers(1, 4))
        idx = draw(st.permutations(letters))[:rank]
        name = "ABC"[k] if rank > 1 else "abc"[k]
        ops.append((name, "".join(idx)))
    used = list(dict.fromkeys(c for _, idx in ops for c in idx))
    n_out = draw(st.integers(0, min(4, len(used))))
    out = "".join(draw(st.permutations(used))[:n_out])
    summed = [c for c in used if c not in out]
    subscript = draw(st.booleans())

    def ref(name, idx):
        return f"{name}_{idx}" if subscript else f"{name}[{','.join(idx)}]"
    body = " ".join(ref(n, i) for n, i in ops)
    sigma = ("Σ_{" + ",".join(summed) + "} ") if summed else ""
    rhs = sigma + body
    wrt_k = draw(st.integers(0, n_ops - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    arrays = {n: rng.normal(size=tuple(INDEX_SIZES[c] for c in idx)) for n, idx in ops}
    where = ", ".join(f"{n}: {'×'.join(INDEX_SIZE_NAMES[c] for c in idx)}" for n, idx in ops)
    wname, widx = ops[wrt_k]
    operands, subs = [], []
    for k, (n, idx) in enumerate(ops):
        if k != wrt_k:
            operands.append(arrays[n])
            subs.append(idx)
    if out:
        arrays["dY"] = rng.normal(size=tuple(INDEX_SIZES[c] for c in out))
        operands.append(arrays["dY"])
        subs.append(out)
    for c in widx:                              # an index only the variable carries: constant along it
        if not any(c in s for s in subs):
            operands.append(np.ones(INDEX_SIZES[c]))
            subs.append(c)
    grad = np.einsum(",".join(subs) + "->" + widx, *operands) if operands else np.ones(arrays[wname].shape)
    if out:
        text = f"{ref('Y', out)} = {rhs}"
        return Contraction(text, where, wname, arrays, grad, "backprop")
    return Contraction(rhs, where, wname, arrays, grad, "derive")


@dataclass
class IndexForm:
    """A random polynomial form in index notation, Σ T_{...} x_. y_. ..., with its Hessian by
    x computed here by np.einsum (for `derive --order 2`)."""
    text: str
    arrays: dict
    hessian: np.ndarray


@st.composite
def index_forms(draw):
    """Σ_{i,j,...} T_ij.. u_i v_j ... with a tensor T of rank 2 to 4 and each u, v, ... either
    x (the variable, at least twice) or another vector y, z."""
    rank = draw(st.integers(2, 4))
    letters = "ijkl"[:rank]
    slots = draw(st.lists(st.sampled_from(["x", "x", "y", "z"]), min_size=rank, max_size=rank)
                 .filter(lambda s: s.count("x") >= 2))
    n = 3
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    T = rng.normal(size=(n,) * rank)
    arrays = {"T": T, **{v: rng.normal(size=n) for v in set(slots)}}
    subscript = draw(st.booleans())

    def ref(name, idx):
        return f"{name}_{idx}" if subscript else f"{name}[{','.join(idx)}]"
    factors = [ref("T", letters)] + [ref(v, c) for v, c in zip(slots, letters)]
    order = draw(st.permutations(factors))
    text = "Σ_{" + ",".join(letters) + "} " + " ".join(order)
    H = np.zeros((n, n))
    xs = [k for k, v in enumerate(slots) if v == "x"]
    for s in xs:                 # ∂²/∂x_a∂x_b: one x slot becomes a, another b, the rest stay
        for t in xs:
            if s == t:
                continue
            subs, ops = [letters], [T]
            for k, v in enumerate(slots):
                if k not in (s, t):
                    subs.append(letters[k])
                    ops.append(arrays[v])
            H += np.einsum(",".join(subs) + "->" + letters[s] + letters[t], *ops)
    return IndexForm(text, arrays, H)
