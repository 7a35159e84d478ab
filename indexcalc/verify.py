"""The numerical guard: every result is compared with central finite differences of the
original expression, on random arrays of small, distinct sizes, before it is shown.

What is checked: the NumPy code (as a user would run it), the closed form (evaluated
independently), and the closed form's text parsed back into a tree.
"""
from __future__ import annotations

import contextlib
import contextvars

import numpy as np

from . import functions as F
from . import nodes as N
from .errors import IndexCalcError, VerificationError
from .evaluate import evaluate, from_2d, kind_of

SIZES = [3, 4, 2, 5, 6, 7]


class Point:
    """Random values for every variable, in NumPy layout and in 2-D layout, and the sizes."""

    def __init__(self, variables, tree, rng, attempt: int):
        self.variables = variables
        self.sizes = _sizes(variables, tree)
        needs = _domains(tree)
        self.env2d = {}
        for name, v in variables.items():
            shape = tuple(N.size_value(d, self.sizes) for d in v.shape)
            self.env2d[name] = _draw(shape, needs.get(name, set()), attempt, rng)
        self.env = {name: from_2d(a, variables[name].kind) for name, a in self.env2d.items()}

    def namespace(self):
        from .printing.numpy_code import py_name
        ns = {"np": np, **self.sizes, **{py_name(k): v for k, v in self.env.items()}}
        return ns


def _sizes(variables, tree) -> dict:
    """Small, distinct numbers for the size names, such that every computed size (d - k + 1
    of a valid convolution) is at least 2."""
    derived = {d for n in tree.walk() for d in (n.shape or ()) if isinstance(d, N.LinSize)}
    derived |= {d for _, v in variables.items() for d in v.shape if isinstance(d, N.LinSize)}
    names = list(variables.sizes)
    # a size no variable has (the ones vector of `1 b`, free to be anything) needs a number too
    names += sorted({d for n in tree.walk() for d in (n.shape or ()) if isinstance(d, str)} - set(names))
    sizes = {d: SIZES[k % len(SIZES)] for k, d in enumerate(names)}
    if all(d.value(sizes) >= 2 for d in derived):
        return sizes
    pick = np.random.default_rng(len(names))
    for _ in range(500):
        trial = dict(zip(names, (int(x) for x in pick.permutation(np.arange(2, 2 + 3 * len(names)))[:len(names)])))
        if all(d.value(trial) >= 2 for d in derived):
            return trial
    raise IndexCalcError("cannot choose sizes for the numerical check: some computed size "
                         f"({', '.join(map(str, derived))}) is never at least 2")


def _draw(shape, needs, attempt, rng):
    square = shape[0] == shape[1] and shape[0] > 1
    if square and "invertible" in needs:
        return rng.normal(size=shape) * 0.3 + 2.0 * np.eye(shape[0])
    if "positive" in needs or attempt == 1:
        return rng.uniform(0.5, 1.5, size=shape)
    if attempt == 2:
        a = rng.normal(size=shape) * 0.3
        return a + 2.0 * np.eye(shape[0]) if square else np.abs(a) + 0.5
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.0, size=shape)


def _domains(tree) -> dict:
    """Variables that must be positive (under log, sqrt, a division) or invertible (under inv, det)."""
    out: dict = {}

    def mark(node, need):
        for n in node.walk():
            if isinstance(n, N.Sym):
                out.setdefault(n.name, set()).add(need)

    for n in tree.walk():
        if isinstance(n, N.Func) and n.name in ("log", "sqrt"):
            mark(n.a, "positive")
        elif isinstance(n, (N.Inverse, N.Det, N.LogDet)):
            mark(n.a, "invertible")
        elif isinstance(n, N.HadDiv):
            mark(n.b, "positive")
        elif isinstance(n, N.Div):
            mark(n.s, "positive")
        elif isinstance(n, (N.Power, N.HadPow)) and not (isinstance(n.p, N.Num) and
                                                          float(n.p.value) == int(float(n.p.value)) and
                                                          float(n.p.value) > 0):
            mark(n.a, "positive")
    return out


def layout(shape):
    """The NumPy layout of a tree's value, with symbolic sizes."""
    kind = kind_of(shape)
    return {"scalar": (), "vector": (shape[0],), "rowvector": tuple(shape), "matrix": tuple(shape)}[kind]


def value_fn(tree, point: Point):
    kind = kind_of(tree.shape)
    return lambda env2d: np.asarray(from_2d(evaluate(tree, env2d, point.sizes), kind), dtype=float)


_REFINED = contextvars.ContextVar("refined differences", default=False)


def jacobian(f, point: Point, var: str, eps=1e-6):
    """d f / d var by central differences, output axes first. Inside `refined()`: Richardson's
    extrapolation of two wider steps, accurate to O(h⁴) where a high power (‖x‖^22) makes
    the plain O(h²) difference miss by more than the tolerance."""
    if _REFINED.get():
        h = 1e-3
        wide, narrow = _central(f, point, var, h), _central(f, point, var, h / 2)
        return (4 * narrow - wide) / 3
    return _central(f, point, var, eps)


@contextlib.contextmanager
def refined():
    """Inside: `jacobian` extrapolates (see there). Used before calling a result wrong."""
    token = _REFINED.set(True)
    try:
        yield
    finally:
        _REFINED.reset(token)


def _central(f, point: Point, var: str, eps):
    x = point.env2d[var]
    base = f(point.env2d)
    kind = point.variables[var].kind
    vshape = np.shape(from_2d(x, kind))
    jac = np.zeros(base.shape + vshape)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fp = f({**point.env2d, var: xp})
        fm = f({**point.env2d, var: xm})
        out_idx = idx if kind in ("matrix", "rowvector") else ((idx[0],) if kind == "vector" else ())
        jac[(Ellipsis,) + out_idx] = (fp - fm) / (2 * eps)
    return jac


def close(got, want, tol=1e-5) -> bool:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return False
    scale = 1.0 + (np.abs(want).max() if want.size else 0.0)
    return bool(np.allclose(got, want, rtol=tol, atol=tol * scale))


def sample(tree, variables, rng, check=None):
    """A point where the expression is finite (tries a few kinds of values)."""
    for attempt in range(3):
        point = Point(variables, tree, rng, attempt)
        with np.errstate(all="ignore"):
            try:
                v = value_fn(tree, point)(point.env2d)
            except np.linalg.LinAlgError:
                continue
        if np.all(np.isfinite(v)) and (check is None or check(point)):
            return point
    raise IndexCalcError("cannot check the result numerically: the expression is not finite at "
                         "random points (is its domain very small?)")


def eval_code(code: str, point: Point):
    ns = point.namespace()
    for name in _generic_names(code):
        ns[name] = F.generic_value(name.replace("_prime", "'").rstrip("_"))
    return np.asarray(eval(code, ns), dtype=float)  # noqa: S307 - our own generated code


def _generic_names(code):
    import re
    return {m for m in re.findall(r"(?<![\w.])([^\W\dA-Z]\w*)\(", code) if not m.startswith("np")} - {"lambda"}


class Degenerate(VerificationError):
    """The result is not finite where the finite differences are (‖x‖ at x = 0, a ReLU whose
    inputs all came out negative): the point says nothing; another one is drawn."""


def guard_somewhere(result_fns: dict, want_fn, draw, what: str, tries: int = 4) -> Point:
    """`guard` at a point from `draw()`; at a degenerate point, at another one."""
    for _ in range(tries):
        point = draw()
        try:
            guard(result_fns, want_fn, point, what)
            return point
        except Degenerate:
            continue
    raise VerificationError(f"indexcalc bug: the result for {what} is not finite at {tries} random "
                            "points where the expression is; no answer is shown")


def guard(result_fns: dict, want_fn, point: Point, what: str):
    """Compare every candidate (name -> function of the point) with the finite differences."""
    with np.errstate(all="ignore"):
        want = want_fn(point)
        if not np.all(np.isfinite(want)):
            raise IndexCalcError("cannot check the result numerically: finite differences are not finite here")
        for name, fn in result_fns.items():
            try:
                got = fn(point)
            except Exception as e:  # noqa: BLE001 - any failure of our own output is a guard failure
                raise VerificationError(
                    f"indexcalc bug: the {name} of {what} could not be evaluated ({type(e).__name__}: {e}); "
                    "no answer is shown") from None
            if np.shape(got) == np.shape(want) and not np.all(np.isfinite(got)):
                raise Degenerate(f"the {name} of {what} is not finite at this point")
            if not close(got, want):
                with refined():                     # before calling it a bug: better differences
                    want = want_fn(point)
            if not close(got, want):
                detail = _worst(got, want)
                raise VerificationError(
                    f"indexcalc bug: the {name} of {what} disagrees with finite differences ({detail}); "
                    "no answer is shown")


def _worst(got, want):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return f"shape {got.shape} instead of {want.shape}"
    k = np.unravel_index(np.argmax(np.abs(got - want)), want.shape) if want.shape else ()
    return f"{got[k]:.6g} instead of {want[k]:.6g} at entry {tuple(int(i) for i in k)}"
