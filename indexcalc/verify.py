"""The numerical guard: every result is compared with finite differences of the original
expression before it is shown.

What is checked: the NumPy code (as a user would run it), the closed form (evaluated
independently), and the closed form's text parsed back into a tree.

How (autograd's check_vjp idea): at a random point, the candidate derivative J applied to a
few random directions u is compared, entry by entry, with the directional difference
(f(x + h u) - f(x - h u)) / 2h. The cost is a few evaluations of f whatever the sizes (a
variable of at most three entries is probed along each of its axes, the full Jacobian).
The step h comes from the function's own scale along u (|f| / |J u|: sin(100000 x) gets a
step 100000 times smaller than sin(x)); where the plain difference disagrees, Ridders'
extrapolation over a table of shrinking steps decides before anything is called a bug. The
comparison is relative to the terms (|J| |u|, and a rounding floor from the magnitude of f's
terms, see magnitude.py), never an absolute tolerance: 1e-6 x^T x is checked as strictly
as x^T x.

Points: values of both signs first; a variable that a function needs positive (log, sqrt, a
fractional power, a denominator) or invertible is made so only when the signed values are
outside the domain; a point where the expression overflows is scaled down.
"""
from __future__ import annotations

import contextlib
import contextvars

import numpy as np

from . import functions as F
from . import nodes as N
from .errors import IndexCalcError, VerificationError
from .evaluate import evaluate, from_2d, kind_of
from .magnitude import magnitude

SIZES = [3, 4, 2, 5, 6, 7]
EPS = np.finfo(float).eps
TOL = 1e-6              # relative to the terms |J| |u|: a wrong rule misses by far more
BIG = 1e100             # a value beyond this is scaled down: its differences would overflow
FULL = 3                # a variable with at most this many entries is probed along every axis
DIRECTIONS = 3          # random directions otherwise


class Point:
    """Values for every variable, in NumPy layout and in 2-D layout, and the sizes."""

    def __init__(self, variables, tree, rng, attempt: int = 0):
        """The fixed recipe (modulegen's generated check draws this way): the guard's sizes,
        values by `attempt` (see `_draw`)."""
        sizes = draw_sizes(variables, tree)
        needs = _domains(tree)
        env2d = {name: _draw(tuple(N.size_value(d, sizes) for d in v.shape), needs.get(name, set()), attempt, rng)
                 for name, v in variables.items()}
        self._set(variables, sizes, env2d)

    @classmethod
    def of(cls, variables, sizes: dict, env2d: dict) -> "Point":
        point = cls.__new__(cls)
        point._set(variables, sizes, env2d)
        return point

    def _set(self, variables, sizes, env2d):
        self.variables, self.sizes, self.env2d = variables, sizes, env2d
        self.env = {name: from_2d(a, variables[name].kind) for name, a in env2d.items()}

    def at(self, env2d: dict) -> "Point":
        """The same sizes, other values."""
        return Point.of(self.variables, self.sizes, env2d)

    def namespace(self):
        from .printing.numpy_code import py_name
        ns = {"np": np, **self.sizes, **{py_name(k): v for k, v in self.env.items()}}
        return ns


# ---- sizes -------------------------------------------------------------------------------------
def _size_names(variables, tree):
    names = list(variables.sizes)
    # a size no variable has (the ones vector of `1 b`, free to be anything) needs a number too
    names += sorted({d for n in tree.walk() for d in (n.shape or ()) if isinstance(d, str)} - set(names))
    derived = {d for n in tree.walk() for d in (n.shape or ()) if isinstance(d, N.LinSize)}
    derived |= {d for _, v in variables.items() for d in v.shape if isinstance(d, N.LinSize)}
    return names, derived


def _rank_needs(tree) -> list:
    """(inner, outer) size pairs with inner ≥ outer for the function to be defined anywhere:
    a product A B (n×n) under det, logdet or an inverse has rank at most its inner size m,
    so det(X Xᵀ) of X: n×m is zero (log det(X Xᵀ) is -∞) at every point unless m ≥ n."""
    out = []
    for node in tree.walk():
        if not isinstance(node, (N.Det, N.LogDet, N.Inverse)) or len(node.a.shape) != 2:
            continue
        arg = node.a
        while isinstance(arg, (N.Transpose, N.Neg, N.ScalarMul, N.Div)):
            arg = arg.a
        if isinstance(arg, N.MatMul):
            factors = N.matmul_factors(arg)
            out += [(f.shape[1], node.a.shape[0], node.a) for f in factors[:-1]]
    return out


def _full_rank(ranks, sizes) -> bool:
    return all(N.size_value(i, sizes) >= N.size_value(o, sizes) for i, o, _ in ranks)


def draw_sizes(variables, tree, rng=None, avoid=()) -> dict:
    """Numbers for the size names, distinct, such that every computed size (d - k + 1 of a
    valid convolution) is at least 2 and every product under det, logdet or an inverse can be
    invertible (its inner sizes at least its outer one). Without rng: the fixed small sizes
    3, 4, 2, ... (the guard's, repeatable) where they fit; with rng: a random draw from 2..7
    (at least 2..k+1 for k names), other than the draws in `avoid` where possible (check's
    several points)."""
    names, derived = _size_names(variables, tree)
    ranks = _rank_needs(tree)
    for inner, outer, product in ranks:
        if isinstance(inner, int) and (not isinstance(outer, int) or inner < outer):
            from .printing.text import to_text
            raise IndexCalcError(
                f"cannot differentiate: {to_text(product)} ({outer}×{outer}) has rank at most {inner}, "
                "so it is singular at every point and the det, logdet or inverse over it is not "
                "defined (or constant zero)")
    if rng is None:
        sizes = {d: SIZES[k % len(SIZES)] for k, d in enumerate(names)}
        if all(d.value(sizes) >= 2 for d in derived) and _full_rank(ranks, sizes):
            return sizes
        rng = np.random.default_rng(len(names))
    top = max(7, len(names) + 1)
    fallback = None
    for _ in range(500):
        trial = dict(zip(names, (int(x) for x in rng.permutation(np.arange(2, top + 1))[:len(names)])))
        if all(d.value(trial) >= 2 for d in derived) and _full_rank(ranks, trial):
            if trial not in avoid or not names:
                return trial
            fallback = fallback or trial
        if _ > 100 and fallback:
            return fallback
        top += _ % 50 == 49           # computed sizes may need larger ones
    if fallback:
        return fallback
    if ranks:
        raise IndexCalcError("cannot choose sizes for the numerical check: a product under det, "
                             "logdet or an inverse is singular at every size drawn (its inner size "
                             "must be at least its outer one)")
    raise IndexCalcError("cannot choose sizes for the numerical check: some computed size "
                         f"({', '.join(map(str, derived))}) is never at least 2")


# ---- values ------------------------------------------------------------------------------------
def _domains(tree) -> dict:
    """Variables that may need to be positive (under log, sqrt, a division, a fractional power)
    or invertible (under inv, det): used only where signed values fall outside the domain."""
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


def _draw(shape, needs, attempt, rng):
    """The fixed recipe by attempt (0: both signs, except where `needs` says positive or
    invertible; 1: positive; 2: well-conditioned or positive), for Point() and the index
    pipeline's guard."""
    square = len(shape) == 2 and shape[0] == shape[1] and shape[0] > 1
    if square and "invertible" in needs:
        return rng.normal(size=shape) * 0.3 + 2.0 * np.eye(shape[0])
    if "positive" in needs or attempt == 1:
        return rng.uniform(0.5, 1.5, size=shape)
    if attempt == 2:
        a = rng.normal(size=shape) * 0.3
        return a + 2.0 * np.eye(shape[0]) if square else np.abs(a) + 0.5
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.0, size=shape)


def _draw_value(shape, need, rng, spread=1.0):
    """need: None (both signs), "positive", "invertible" or "both" (a positive, well-conditioned
    matrix); spread: how far the magnitudes range (check draws from 0.2·spread to spread)."""
    square = len(shape) == 2 and shape[0] == shape[1] and shape[0] > 1
    if square and need in ("invertible", "both"):
        return rng.normal(size=shape) * 0.3 + 2.0 * np.eye(shape[0])
    if need in ("positive", "both"):
        return rng.uniform(0.5, 1.5, size=shape) * spread
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.0, size=shape) * spread


def _strategies(names, needs):
    """Which variables to draw inside a restricted domain, in order: none (three draws), each
    marked variable alone, all marked ones, finally every variable positive and well-conditioned."""
    marked = [n for n in names if n in needs]
    yield {}
    yield {}
    yield {}
    if len(marked) > 1:
        for n in marked:
            yield {n: _need(needs[n])}
    if marked:
        yield {n: _need(needs[n]) for n in marked}
    yield {n: "both" for n in names}


def _need(marks):
    return "both" if len(marks) > 1 else next(iter(marks))


def value_fn(tree, point: Point):
    kind = kind_of(tree.shape)
    return lambda env2d: np.asarray(from_2d(evaluate(tree, env2d, point.sizes), kind), dtype=float)


def sample(tree, variables, rng, check=None, sizes=None, spread=1.0) -> Point:
    """A point where the expression is finite (and `check(point)` holds): see the module's
    docstring for the order in which values are tried."""
    sizes = sizes if sizes is not None else draw_sizes(variables, tree)
    needs = _domains(tree)
    names = [n for n, _ in variables.items()]
    huge = None
    for how in _strategies(names, needs):
        env2d = {}
        for name, v in variables.items():
            shape = tuple(N.size_value(d, sizes) for d in v.shape)
            env2d[name] = _draw_value(shape, how.get(name), rng, spread)
        point = Point.of(variables, sizes, env2d)
        for k in range(12):                  # overflow: the point scaled down, 4 times a step
            v = _value_or_nan(tree, point)
            if np.all(np.isfinite(v)) and np.abs(v).max(initial=0) <= BIG:
                if check is None or check(point):
                    return point
                break
            if np.all(np.isfinite(v)) and huge is None and (check is None or check(point)):
                huge = point
            overflow = np.any(np.isinf(v)) or np.any(np.abs(v) > BIG)
            if not overflow and k >= 2:      # NaN without overflow: outside the domain, not too large
                break
            point = point.at({n: a / 4 for n, a in point.env2d.items()})
    if huge is not None:
        return huge
    raise IndexCalcError("cannot check the result numerically: the expression is not finite at "
                         "random points (is its domain very small?)")


def _value_or_nan(tree, point):
    with np.errstate(all="ignore"):
        try:
            return value_fn(tree, point)(point.env2d)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, OverflowError):
            return np.array(np.nan)


# ---- full finite-difference Jacobians (tests and small checks) ---------------------------------
_REFINED = contextvars.ContextVar("refined differences", default=False)


def layout(shape):
    """The NumPy layout of a tree's value, with symbolic sizes."""
    kind = kind_of(shape)
    return {"scalar": (), "vector": (shape[0],), "rowvector": tuple(shape), "matrix": tuple(shape),
            "tensor": tuple(shape)}[kind]


def jacobian(f, point: Point, var: str, eps=1e-6):
    """d f / d var by central differences, output axes first (every entry: for small sizes
    only). Inside `refined()`: Richardson's extrapolation of two wider steps."""
    if _REFINED.get():
        h = 1e-3
        wide, narrow = _central(f, point, var, h), _central(f, point, var, h / 2)
        return (4 * narrow - wide) / 3
    return _central(f, point, var, eps)


@contextlib.contextmanager
def refined():
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


def eval_code(code: str, point: Point):
    ns = point.namespace()
    for name in _generic_names(code):
        ns[name] = F.generic_value(name.replace("_prime", "'").rstrip("_"))
    return np.asarray(eval(code, ns), dtype=float)  # noqa: S307 - our own generated code


def _generic_names(code):
    import re
    return {m for m in re.findall(r"(?<![\w.])([^\W\dA-Z]\w*)\(", code) if not m.startswith("np")} - {"lambda", "__import__"}


# ---- the guard ---------------------------------------------------------------------------------
class Degenerate(VerificationError):
    """The result is not finite where the expression is (‖x‖ at x = 0, a ReLU whose inputs
    all came out negative): the point says nothing; another one is drawn."""


class Unsettled(Degenerate):
    """The finite differences do not settle at this point (a kink inside the step, a function
    too steep to resolve): another point is drawn."""


class Target:
    """What the guard differentiates: f, a function of the 2-D arrays at a point, by `var`.
    `terms(point)` gives the magnitude of f's terms (the rounding floor); without it, the
    floor is measured by moving every variable by a relative 1e-6."""

    def __init__(self, of_point, var: str, terms=None):
        self.of_point, self.var, self.terms = of_point, var, terms

    @classmethod
    def of_tree(cls, tree, var: str) -> "Target":
        kind = kind_of(tree.shape)

        def terms(point):
            return np.asarray(from_2d(magnitude(tree, point.env2d, point.sizes), kind), dtype=float)
        return cls(lambda p: value_fn(tree, p), var, terms)


class _Counter:
    """Evaluations of f by the guard (tests assert that they do not grow with the sizes)."""
    calls = 0


def guard_somewhere(result_fns: dict, target: Target, draw, what: str, tries: int = 4) -> Point:
    """`guard` at a point from `draw()`; at a degenerate point, at another one."""
    unsettled = False
    for k in range(tries):
        point = draw()
        try:
            guard(result_fns, target, point, what, seed=k)
            return point
        except Unsettled:
            unsettled = True
        except Degenerate:
            continue
    if unsettled:
        raise IndexCalcError(f"cannot check {what} numerically: finite differences do not settle at "
                             f"{tries} random points (is the function too steep, or not smooth?); "
                             "no answer is shown")
    raise VerificationError(f"indexcalc bug: the result for {what} is not finite at {tries} random "
                            "points where the expression is; no answer is shown")


def guard(result_fns: dict, target: Target, point: Point, what: str, seed: int = 0):
    """Compare every candidate (name -> function of the point giving the full derivative,
    output axes first) with directional differences of the target at the point."""
    var = target.var
    fn = target.of_point(point)

    def f(env2d):
        _Counter.calls += 1
        return np.asarray(fn(env2d), dtype=float)
    kind = point.variables[var].kind
    x = point.env2d[var]
    with np.errstate(all="ignore"):
        base = f(point.env2d)
        if not np.all(np.isfinite(base)):
            raise IndexCalcError("cannot check the result numerically: the expression is not finite here")
        want_shape = base.shape + np.shape(from_2d(x, kind))
        candidates = {name: _candidate(name, c, point, what, want_shape) for name, c in result_fns.items()}
        probe = _Probe(f, point, var, base, target)
        for u in _directions(x, np.random.default_rng(seed)):
            u_np = np.asarray(from_2d(u, kind), dtype=float)
            applied = {name: _apply(J, u_np) for name, J in candidates.items()}
            probe.compare(u, applied, what)


def _candidate(name, fn, point, what, want_shape):
    try:
        got = np.asarray(fn(point), dtype=float)
    except Exception as e:  # noqa: BLE001 - any failure of our own output is a guard failure
        raise VerificationError(
            f"indexcalc bug: the {name} of {what} could not be evaluated ({type(e).__name__}: {e}); "
            "no answer is shown") from None
    if got.shape != want_shape:
        raise VerificationError(f"indexcalc bug: the {name} of {what} has shape {got.shape} instead of "
                                f"{want_shape}; no answer is shown")
    if not np.all(np.isfinite(got)):
        raise Degenerate(f"the {name} of {what} is not finite at this point")
    return got


def _apply(J, u_np):
    """(J u, |J| |u|): the candidate along u, and the size of the terms of that product."""
    axes = u_np.ndim
    if axes == 0:
        return J * u_np, np.abs(J) * abs(u_np)
    return np.tensordot(J, u_np, axes=axes), np.tensordot(np.abs(J), np.abs(u_np), axes=axes)


def _directions(x, rng):
    """Unit directions (largest entry 1) in the variable's 2-D layout."""
    if x.size <= FULL:
        for idx in np.ndindex(*x.shape):
            u = np.zeros_like(x)
            u[idx] = 1.0
            yield u
        return
    for _ in range(DIRECTIONS):
        u = rng.normal(size=x.shape)
        yield u / np.abs(u).max()


class _Probe:
    """Directional differences of f at one point along directions u."""

    def __init__(self, f, point, var, base, target):
        self.f, self.point, self.var, self.base, self.target = f, point, var, base, target
        x = point.env2d[var]
        self.xs = float(np.abs(x).max()) or 1.0
        self._terms = None

    def terms(self):
        """The magnitude of f's terms at the point (computed once, when first needed)."""
        if self._terms is None:
            if self.target.terms is not None:
                t = self.target.terms(self.point)
            else:
                t = terms_by_moving(self.f, self.point.env2d, self.base)
            self._terms = np.maximum(np.abs(np.asarray(t, dtype=float)), np.abs(self.base))
        return self._terms

    def at(self, u, h):
        env = self.point.env2d
        return self.f({**env, self.var: env[self.var] + h * u})

    def along(self, u, h):
        return (self.at(u, h) - self.at(u, -h)) / (2 * h)

    def noise(self, h):
        """The rounding floor of a difference with step h: f's terms × eps / h, with room for
        sums over hundreds of terms."""
        return 64 * EPS * self.terms() / h

    def compare(self, u, applied: dict, what: str):
        """Each candidate's J u against the directional difference. The step: from the scale
        on which f changes along u (|f| / |J u|), then, where that disagrees, from f's own
        curvature (the second difference); then Ridders' table. A disagreement is called a bug
        only where two tables from different steps settle on the same value."""
        steep = max(float(t.max(initial=0)) for _, t in applied.values())
        size = float(np.abs(self.base).max(initial=0))
        scale = min(self.xs, size / steep) if steep > 0 and size > 0 else self.xs
        scale = max(scale, 1e-8 * self.xs)
        h = 1e-5 * scale
        plus, minus = self.at(u, h), self.at(u, -h)
        fd = (plus - minus) / (2 * h)
        if _all_agree(applied, fd, 0.0, 0.0) or _all_agree(applied, fd, 0.0, self.noise(h)):
            return
        curvature = float(np.max(np.abs(plus - 2 * self.base + minus), initial=0)) / (h * h)
        slope = max(float(np.max(np.abs(fd), initial=0)), steep)
        if curvature > 0 and slope > 0 and slope / curvature < scale:
            scale = max(slope / curvature, 1e-12 * self.xs)       # f bends on a shorter scale
            h = 1e-5 * scale
            fd = self.along(u, h)
            if _all_agree(applied, fd, 0.0, self.noise(h)):
                return
        fd, err, h_best = self.ridders(u, 0.1 * scale)
        noise = self.noise(h_best)
        if _all_agree(applied, fd, err, noise):
            return
        for name, (got, terms) in applied.items():
            bad = self._disagree(got, terms, fd, err, noise)
            if not np.any(bad):
                continue
            fd2, err2, h2 = self.ridders(u, 0.037 * scale)               # a second table, other steps
            noise2 = self.noise(h2)
            bad &= self._disagree(got, terms, fd2, err2, noise2)
            bad &= np.abs(fd2 - fd) <= 1e-5 * (np.abs(fd) + terms) + noise + noise2 + 4 * (err + err2)
            if np.any(bad):
                raise VerificationError(
                    f"indexcalc bug: the {name} of {what} disagrees with finite differences "
                    f"({_worst(got, fd, bad)}, along a random direction); no answer is shown")
        raise Unsettled(f"finite differences of {what} do not settle at this point")

    @staticmethod
    def _disagree(got, terms, fd, err, noise):
        """Entries where the difference has settled (its error estimate is small against its
        own value) and the candidate is off it."""
        settled = err <= 1e-6 * np.abs(fd) + noise
        return settled & ~(np.abs(got - fd) <= TOL * (terms + np.abs(fd)) + noise + 4 * err)

    def ridders(self, u, h0, rows=20):
        """Ridders' extrapolation of central differences with steps h0, h0/2, ...: the
        estimate, its error estimate (entry by entry) and the step it came from. The error is
        judged against the estimate itself and the rounding floor, never against the
        candidate (a wrong candidate must not make a poor estimate look good)."""
        con2 = 4.0
        table = [[self.along(u, h0)]]
        best, best_err, best_h, best_q = table[0][0], np.full(np.shape(table[0][0]), np.inf), h0, np.inf
        h = h0
        for i in range(1, rows):
            h /= 2
            row = [self.along(u, h)]
            floor = self.noise(h)
            fac = con2
            for j in range(1, i + 1):
                row.append((row[j - 1] * fac - table[i - 1][j - 1]) / (fac - 1))
                fac *= con2
                err = np.maximum(np.abs(row[j] - row[j - 1]), np.abs(row[j] - table[i - 1][j - 1]))
                q = float(np.max(err / (np.abs(row[j]) + floor + 1e-300), initial=0))
                if np.all(np.isfinite(row[j])) and q <= best_q:
                    best, best_err, best_h, best_q = row[j], err, h, q
            table.append(row)
            if best_q <= 1e-10 and i >= 3:
                break
            drift = np.max(np.abs(row[i] - table[i - 1][i - 1]) / (np.abs(row[i]) + floor + 1e-300), initial=0)
            if best_q < 1e-7 and drift > 16 * best_q and i >= 3:
                break                   # smaller steps only add rounding
        return best, best_err, best_h


def _all_agree(applied, fd, err, noise) -> bool:
    return all(_agrees(got, terms, fd, err, noise) for got, terms in applied.values())


def _agrees(got, terms, fd, err, noise) -> bool:
    scale = terms + np.abs(fd)
    ok = np.abs(got - fd) <= TOL * scale + noise + 4 * err
    return bool(np.all(ok) and np.all(err <= 1e-6 * np.abs(fd) + noise))


def terms_by_moving(f, env2d, base, delta=1e-6):
    """The size of f's terms where no tree is at hand (the Hessian's guard differentiates the
    gradient's code; check compares with generated einsum code): every variable moved by a relative ±delta, twice, the larger change."""
    rng = np.random.default_rng(0)
    out = np.abs(base)
    for _ in range(2):
        moved = {n: a * (1 + delta * rng.choice([-1.0, 1.0], size=np.shape(a))) for n, a in env2d.items()}
        out = np.maximum(out, np.abs(f(moved) - base) / delta)
    return out


def _worst(got, want, where=None):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return f"shape {got.shape} instead of {want.shape}"
    diff = np.abs(got - want)
    if where is not None:
        diff = np.where(where, diff, -1)
    k = np.unravel_index(np.argmax(diff), want.shape) if want.shape else ()
    return f"{got[k]:.6g} instead of {want[k]:.6g} at entry {tuple(int(i) for i in k)}"
