"""Element-wise functions: one row each (SymPy function, derivative, NumPy code, NumPy value).

Adding a function is adding a row to TABLE (and its name to the grammar's FUNC list, which a
test checks). A one-letter name (or one declared `--where "act: function"`) is a generic
function h with derivative h', h'', ...; other spellings of known functions are in
shapes.ALIASES.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy as sp


def _fn(name: str) -> type:
    """A SymPy function class that stays unevaluated and prints as `name`."""
    return type(name, (sp.Function,), {"nargs": 1})


SQRT, ABS, SIGN, SIGMOID, RELU, SOFTPLUS, HEAVISIDE, GELU, SILU, ELU, LOG1P, EXPM1, NORMCDF, NORMPDF = (
    _fn(n) for n in ("sqrt", "abs", "sign", "sigmoid", "relu", "softplus", "H", "gelu", "silu", "elu",
                     "log1p", "expm1", "normcdf", "normpdf"))

_TWO_OVER_SQRT_PI = sp.Float(2 / math.sqrt(math.pi), 17)


def _sigmoid(x):
    """exp(-log(1 + exp(-x))): right to the last digit in both tails (σ(-40) = 4.2e-18, where
    0.5 (1 + tanh(x/2)) gives 0), and no overflow."""
    return np.exp(-np.logaddexp(0.0, -x))


def _np_erf(x):
    """erf without SciPy: math.erf entry by entry (exact to double precision)."""
    return np.vectorize(math.erf, otypes=[float])(x)


def _normcdf(x):
    return 0.5 * (1.0 + _np_erf(np.asarray(x, dtype=float) / math.sqrt(2.0)))


def _normpdf(x):
    return np.exp(-0.5 * np.asarray(x, dtype=float) ** 2) / math.sqrt(2 * math.pi)


def _elu(x):
    x = np.asarray(x, dtype=float)
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


# NumPy has no erf: generated code defines it from math.erf (ERF_CODE), as it defines nothing else
ERF_CODE = "np.vectorize(__import__('math').erf, otypes=[float])({})"


@dataclass(frozen=True)
class Elementwise:
    name: str
    sympy: Callable                       # builds the SymPy expression of one entry
    derivative: Callable                  # u -> f'(u) as a SymPy expression
    code: str                             # NumPy code, {} (or {0}, when used twice) is the argument
    value: Callable                       # NumPy implementation
    latex: str = ""                       # LaTeX head (\exp); "" prints \operatorname{name}


TABLE = {e.name: e for e in [
    Elementwise("exp", sp.exp, lambda u: sp.exp(u), "np.exp({})", np.exp, r"\exp"),
    Elementwise("log", sp.log, lambda u: 1 / u, "np.log({})", np.log, r"\log"),
    Elementwise("sqrt", SQRT, lambda u: 1 / (2 * SQRT(u)), "np.sqrt({})", np.sqrt),
    Elementwise("abs", ABS, lambda u: SIGN(u), "np.abs({})", np.abs),
    Elementwise("sign", SIGN, lambda u: sp.S.Zero, "np.sign({})", np.sign),
    Elementwise("sin", sp.sin, lambda u: sp.cos(u), "np.sin({})", np.sin, r"\sin"),
    Elementwise("cos", sp.cos, lambda u: -sp.sin(u), "np.cos({})", np.cos, r"\cos"),
    Elementwise("tan", sp.tan, lambda u: 1 + sp.tan(u) ** 2, "np.tan({})", np.tan, r"\tan"),
    Elementwise("tanh", sp.tanh, lambda u: 1 - sp.tanh(u) ** 2, "np.tanh({})", np.tanh, r"\tanh"),
    # cosh of the log-cosh loss, sinh its derivative
    Elementwise("cosh", sp.cosh, lambda u: sp.sinh(u), "np.cosh({})", np.cosh, r"\cosh"),
    Elementwise("sinh", sp.sinh, lambda u: sp.cosh(u), "np.sinh({})", np.sinh, r"\sinh"),
    Elementwise("log1p", LOG1P, lambda u: 1 / (1 + u), "np.log1p({})", np.log1p),
    Elementwise("expm1", EXPM1, lambda u: sp.exp(u), "np.expm1({})", np.expm1),
    Elementwise("erf", sp.erf, lambda u: _TWO_OVER_SQRT_PI * sp.exp(-u ** 2), ERF_CODE, _np_erf,
                r"\operatorname{erf}"),
    # gelu is the exact x Φ(x) (SPEC §1); Φ and φ are the standard normal's cdf and density
    Elementwise("normcdf", NORMCDF, lambda u: NORMPDF(u),
                "(0.5 * (1 + " + ERF_CODE.replace("{}", "({}) / 2 ** 0.5") + "))", _normcdf, r"\Phi"),
    Elementwise("normpdf", NORMPDF, lambda u: -u * NORMPDF(u),
                "(np.exp(-0.5 * ({}) ** 2) / (2 * np.pi) ** 0.5)", _normpdf, r"\varphi"),
    Elementwise("gelu", GELU, lambda u: NORMCDF(u) + u * NORMPDF(u),
                "(lambda z: z * (0.5 * (1 + " + ERF_CODE.replace("{}", "z / 2 ** 0.5") + ")))({})",
                lambda x: np.asarray(x, dtype=float) * _normcdf(x), r"\operatorname{GELU}"),
    Elementwise("silu", SILU, lambda u: SIGMOID(u) * (1 + u * (1 - SIGMOID(u))),
                "(lambda z: z * 0.5 * (1 + np.tanh(0.5 * z)))({})",
                lambda x: np.asarray(x, dtype=float) * _sigmoid(x), r"\operatorname{SiLU}"),
    # elu with α = 1; its derivative 1 + (1 - H(u)) elu(u) is exp(u) for u ≤ 0 and 1 above, and
    # never computes exp of a large u (0 · inf)
    Elementwise("elu", ELU, lambda u: 1 + (1 - HEAVISIDE(u)) * ELU(u),
                "(lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))))({})", _elu, r"\operatorname{ELU}"),
    Elementwise("sigmoid", SIGMOID, lambda u: SIGMOID(u) * (1 - SIGMOID(u)),
                "np.exp(-np.logaddexp(0, -{}))", _sigmoid),
    Elementwise("relu", RELU, lambda u: HEAVISIDE(u), "np.maximum({}, 0)", lambda x: np.maximum(x, 0.0)),
    Elementwise("softplus", SOFTPLUS, lambda u: SIGMOID(u), "np.logaddexp(0, {})", lambda x: np.logaddexp(0, x)),
    # H(0) = 0, as relu'(0) = 0 in PyTorch; a comparison is 3x faster than np.heaviside
    Elementwise("H", HEAVISIDE, lambda u: sp.S.Zero, "({} > 0) * 1.0", lambda x: (np.asarray(x) > 0) * 1.0),
]}

# the functions with a kink or a jump: a value at one random point tells only one piece
# (fold.smooth_stand_ins evaluates each as a smooth generic function of its own)
PIECEWISE = frozenset({"relu", "H", "abs", "sign", "elu"})


def stand_in(name: str) -> str:
    """The generic function that stands in for a piecewise one where values are compared."""
    return f"{name.lower()}_stand_in"


# how a function is printed where its own name could be misread: H (Heaviside) beside a size H
SHOWN = {"H": "step"}


def shown_name(name: str) -> str:
    return SHOWN.get(name, name)


def latex_head(name: str) -> str:
    """The LaTeX of a function's name: the row's own (\\exp), h' for a generic one, else
    \\operatorname{name}."""
    name = shown_name(name)
    row = TABLE.get(name)
    if row is not None and row.latex:
        return row.latex
    if len(name.rstrip("'")) == 1:
        return name
    return r"\operatorname{" + name.replace("_", r"\_") + "}"


def name_of(f) -> str:
    """Our name of a SymPy function application's head."""
    return getattr(f, "__name__", None) or str(f)


def is_elementwise(expr) -> bool:
    return isinstance(expr, sp.Function) and (name_of(expr.func) in TABLE or is_generic(name_of(expr.func)))


def is_generic(name: str) -> bool:
    base = name.rstrip("'")
    return bool(base) and base not in TABLE and base[0].islower() and base.isidentifier()


def apply(name: str, arg):
    """The SymPy expression `name(arg)` for an entry `arg`."""
    if name in TABLE:
        return TABLE[name].sympy(arg)
    return sp.Function(name)(arg)


def derivative(name: str, arg):
    """f'(arg) as a SymPy expression."""
    if name in TABLE:
        return TABLE[name].derivative(arg)
    return sp.Function(name + "'")(arg)


# ---- generic functions, made concrete for the numerical checks --------------------------
def _generic_params(base: str):
    h = zlib.crc32(base.encode())
    return 0.6 + (h % 7) / 10, (h // 7 % 11) / 10, 0.3 + (h // 77 % 5) / 10


def generic_value(name: str) -> Callable:
    """A fixed smooth test function for a generic h (and its derivatives h', h''):
    h(t) = sin(a t + b) + c t, so that results with h' can be checked numerically."""
    base, k = name.rstrip("'"), len(name) - len(name.rstrip("'"))
    a, b, c = _generic_params(base)
    lin = c if k == 1 else (0.0 if k > 1 else None)

    def value(x):
        out = a ** k * np.sin(a * x + b + k * math.pi / 2)
        return out + (c * x if lin is None else lin)
    return value


def numpy_value(name: str) -> Callable:
    if name in TABLE:
        return TABLE[name].value
    if is_generic(name):
        return generic_value(name)
    raise KeyError(name)


def numpy_code(name: str, arg: str) -> str:
    if name in TABLE:
        return TABLE[name].code.format(arg)
    return f"{_python_name(name)}({arg})"


def _python_name(name: str) -> str:
    """h' -> h_prime, h'' -> h_prime_prime (verify reads each _prime back as one ')."""
    return name.rstrip("'") + "_prime" * (len(name) - len(name.rstrip("'")))
