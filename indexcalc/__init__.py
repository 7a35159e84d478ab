"""indexcalc: matrix and tensor derivatives in index notation, step by step, checked numerically."""
import sys
import types

from .errors import IndexCalcError, ParseError, ShapeError, UnsupportedError, VerificationError
from .parse import parse

__version__ = "0.1.0"          # as pyproject.toml


def derive(expr, wrt, where=None, order=1):
    """The derivative of `expr` (a string in the language of SPEC §1) by each variable in `wrt`
    ("x", "W,b" or a list), with the shapes of `where` ("X: S×M, b: 1×N, c: scalar, x: n").
    `order=2` gives the Hessian.

    Returns a Derivation: print it for the closed forms; `.closed_form` and `.numpy` of the
    first variable; `.results[k]` per variable with `.steps` (the index derivation), `.latex`,
    `.index_form`; `.read_as`, the input as read. Every result has passed a numerical check.
    Bad input raises IndexCalcError (ParseError, ShapeError, UnsupportedError).

    >>> print(derive("1/2 x^T A x", "x").closed_form)
    (A + A^T) x / 2
    """
    from .pipeline import derive as _derive
    return _derive(expr, wrt, where, order)


def backprop(equation, wrt, where=None):
    """For a module `Y = f(X, W, ...)` inside a network with scalar loss L: ∂L/∂V for each V in
    `wrt`, in terms of the upstream gradient dY = ∂L/∂Y. An equation whose left side is a
    scalar (the loss itself) needs no upstream. Returns a Derivation, as derive().

    >>> print(backprop("Y = X W", "W").closed_form)
    X^T dY
    """
    from .pipeline import backprop as _backprop
    return _backprop(equation, wrt, where)


def check(expr, wrt, answer, where=None):
    """Is `answer` the derivative of `expr` by `wrt`? For an equation `Y = f(...)` the answer is
    ∂L/∂V written with dY (and may use Y). Returns a Verdict: `.correct`, `.reason`,
    `.expected` (the right closed form), `.counterexample` (sizes, the entry, both values) when
    wrong; it shows itself in Jupyter.

    >>> check("x^T x", "x", "2 x").correct
    True
    """
    from .check import check as _check
    return _check(expr, wrt, answer, where)


class _Package(types.ModuleType):
    """The package keeps its function check() when its submodule indexcalc.check is imported
    (the import system would set the attribute `check` to the submodule, and
    `indexcalc.check(...)` would fail after the first use). The submodule stays
    sys.modules["indexcalc.check"]."""

    def __setattr__(self, name, value):
        if name == "check" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = ["derive", "backprop", "check", "parse", "IndexCalcError", "ParseError", "ShapeError",
           "UnsupportedError", "VerificationError"]
