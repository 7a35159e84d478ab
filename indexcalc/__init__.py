"""indexcalc: matrix and tensor derivatives in index notation, step by step, checked numerically."""
from .errors import IndexCalcError, ParseError, ShapeError, UnsupportedError, VerificationError
from .parse import parse


def derive(expr, wrt, where=None, order=1):
    from .pipeline import derive as _derive
    return _derive(expr, wrt, where, order)


def backprop(equation, wrt, where=None):
    from .pipeline import backprop as _backprop
    return _backprop(equation, wrt, where)


def check(expr, wrt, answer, where=None):
    from .check import check as _check
    return _check(expr, wrt, answer, where)


__all__ = ["derive", "backprop", "check", "parse", "IndexCalcError", "ParseError", "ShapeError",
           "UnsupportedError", "VerificationError"]
