"""Element-wise functions: one row each (SymPy function, derivative, NumPy code, NumPy value).

Adding a function is adding a row to TABLE (and its name to the grammar's FUNC list).
Any other lower-case name is a generic function h with derivative h', h'', ...
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


SQRT, ABS, SIGN, SIGMOID, RELU, SOFTPLUS, HEAVISIDE = (
    _fn(n) for n in ("sqrt", "abs", "sign", "sigmoid", "relu", "softplus", "H"))


def _sigmoid(x):
    """exp(-log(1 + exp(-x))): right to the last digit in both tails (σ(-40) = 4.2e-18, where
    0.5 (1 + tanh(x/2)) gives 0), and no overflow."""
    return np.exp(-np.logaddexp(0.0, -x))


@dataclass(frozen=True)
class Elementwise:
    name: str
    sympy: Callable                       # builds the SymPy expression of one entry
    derivative: Callable                  # u -> f'(u) as a SymPy expression
    code: str                             # NumPy code, {} is the argument
    value: Callable                       # NumPy implementation


TABLE = {e.name: e for e in [
    Elementwise("exp", sp.exp, lambda u: sp.exp(u), "np.exp({})", np.exp),
    Elementwise("log", sp.log, lambda u: 1 / u, "np.log({})", np.log),
    Elementwise("sqrt", SQRT, lambda u: 1 / (2 * SQRT(u)), "np.sqrt({})", np.sqrt),
    Elementwise("abs", ABS, lambda u: SIGN(u), "np.abs({})", np.abs),
    Elementwise("sign", SIGN, lambda u: sp.S.Zero, "np.sign({})", np.sign),
    Elementwise("sin", sp.sin, lambda u: sp.cos(u), "np.sin({})", np.sin),
    Elementwise("cos", sp.cos, lambda u: -sp.sin(u), "np.cos({})", np.cos),
    Elementwise("tanh", sp.tanh, lambda u: 1 - sp.tanh(u) ** 2, "np.tanh({})", np.tanh),
    Elementwise("sigmoid", SIGMOID, lambda u: SIGMOID(u) * (1 - SIGMOID(u)),
                "np.exp(-np.logaddexp(0, -{}))", _sigmoid),
    Elementwise("relu", RELU, lambda u: HEAVISIDE(u), "np.maximum({}, 0)", lambda x: np.maximum(x, 0.0)),
    Elementwise("softplus", SOFTPLUS, lambda u: SIGMOID(u), "np.logaddexp(0, {})", lambda x: np.logaddexp(0, x)),
    # H(0) = 0, as relu'(0) = 0 in PyTorch; a comparison is 3x faster than np.heaviside
    Elementwise("H", HEAVISIDE, lambda u: sp.S.Zero, "(({}) > 0) * 1.0", lambda x: (np.asarray(x) > 0) * 1.0),
]}

# how a function is printed where its own name could be misread: H (Heaviside) beside a size H
SHOWN = {"H": "step"}


def shown_name(name: str) -> str:
    return SHOWN.get(name, name)


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
    return name.rstrip("'") + "_" + "prime" * (len(name) - len(name.rstrip("'"))) if name.endswith("'") else name
