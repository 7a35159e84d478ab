"""`check`: is a claimed derivative right? Compared with finite differences of the
expression itself (not only with our own derivation); a wrong claim gets a counterexample."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from . import nodes as N
from . import verify as V
from .pipeline import backprop, derive
from .errors import IndexCalcError, ShapeError
from .evaluate import evaluate
from .from_index_notation import is_index_notation, parse_index
from .from_index_notation import read as read_index
from .parse import parse
from .shapes import infer, show_shape


@dataclass
class Verdict:
    input: str
    wrt: str
    answer: str
    correct: bool
    reason: str
    expected: str | None
    counterexample: dict | None
    claimed: N.Node | None = None      # the claim as read (typed), for printing

    def json(self) -> dict:
        return {"command": "check", "input": self.input, "wrt": self.wrt, "answer": self.answer,
                "correct": self.correct, "reason": self.reason, "expected": self.expected,
                "counterexample": self.counterexample}


@dataclass
class Reference:
    """What a claim about one derivative is compared against, derived once: the derivation,
    the expected closed form, and the random points with the derivative's values there
    (computed when first needed, then kept). `grade` checks a whole class against one."""
    input: str
    wrt: str
    derivation: object
    expected: str
    decls: dict
    layout: tuple
    points: list                       # V.Point, drawn once
    _want: dict = field(default_factory=dict, repr=False)

    def want(self, k: int, refined: bool = False):
        key = (k, refined)
        if key not in self._want:
            point = self.points[k]
            with V.refined() if refined else contextlib.nullcontext():
                self._want[key] = V.jacobian(V.value_fn(self.derivation.tree, point), point, self.wrt)
        return self._want[key]


def references(expr: str, wrts, where: str | None = None, seed: int = 1, order: int = 1,
               mode: str | None = None) -> dict:
    """{variable: Reference} for each of `wrts`, from one derivation of `expr`. `mode` is a
    problem's (derive, jacobian or backprop); by default an equation is a backprop."""
    names = [w.strip() for w in (wrts.split(",") if isinstance(wrts, str) else wrts)]
    if is_index_notation(expr):
        return _index_references(expr, names, where, seed, mode)
    mode = mode or ("backprop" if isinstance(parse(expr), N.Equation) else "derive")
    if mode == "backprop":
        d = backprop(expr, names, where)
    else:
        d = derive(expr, names, where, order=order, jacobian=mode == "jacobian")
    decls = {name: v.shape for name, v in d.variables.items()}
    out = {}
    for r in d.results:
        rng = np.random.default_rng(seed)
        points = [V.sample(d.tree, d.variables, rng) for _ in range(3)]
        ref = Reference(expr, r.wrt, d, r.closed_form or r.index_form, decls, tuple(r.shape), points)
        if r.order == 2:                # the Hessian: the guarded result's own code is the reference
            ref._want = {(k, f): V.eval_code(r.numpy, p) for k, p in enumerate(points) for f in (False, True)}
        out[r.wrt] = ref
    return out


def _index_references(expr, names, where, seed, mode) -> dict:
    """References for index-notation input: the points of its own guard, and the guarded
    result's values there (the guard compared them with the input evaluated directly)."""
    from . import index_pipeline as IP
    from .index_eval import domains
    equation = isinstance(parse_index(expr), tuple)
    d = IP.backprop(expr, names, where) if equation and mode != "jacobian" and mode != "derive" \
        else IP.derive(expr, names, where)
    problem = d.problem
    decls = {name: v.shape for name, v in d.variables.items()}
    out = {}
    for r in d.results:
        rng = np.random.default_rng(seed)
        sizes = IP.choose_sizes(problem, d.variables)
        points = [IP.make_point(problem, d.variables, sizes, rng, 0, domains(problem)) for _ in range(3)]
        ref = Reference(expr, r.wrt, d, r.closed_form or r.index_form, decls, tuple(r.shape), points)
        ref._want = {(k, f): V.eval_code(r.numpy, p) for k, p in enumerate(points) for f in (False, True)}
        out[r.wrt] = ref
    return out


def reference(expr: str, wrt: str, where: str | None = None, seed: int = 1) -> Reference:
    names = [w.strip() for w in wrt.split(",") if w.strip()] if isinstance(wrt, str) else list(wrt)
    if len(names) != 1:
        raise IndexCalcError(f"check takes one variable in --wrt (a claim is one derivative), not {wrt!r}")
    return references(expr, names, where, seed)[names[0]]


def check(expr: str, wrt: str, answer: str, where: str | None = None, seed: int = 1) -> Verdict:
    return compare(reference(expr, wrt, where, seed), answer)


def compare(ref: Reference, answer: str) -> Verdict:
    """One claim against a reference. A claim that cannot be read raises IndexCalcError."""
    expr, wrt, expected, decls, layout = ref.input, ref.wrt, ref.expected, ref.decls, ref.layout
    d = ref.derivation
    if is_index_notation(answer):
        return _compare_index(ref, answer)
    claimed = _typed_claim(parse(answer), decls, _as2(layout))
    unknown = sorted({n.name for n in claimed.walk() if isinstance(n, N.Sym)} - set(decls))
    if unknown:
        raise IndexCalcError(f"the claimed answer uses {', '.join(unknown)}, which "
                             f"{'does' if len(unknown) == 1 else 'do'} not appear in {expr!r}")
    loose = sorted({x for n in claimed.walk() for x in (n.shape or ()) if isinstance(x, str)}
                   - set(d.variables.sizes))
    if loose:
        raise IndexCalcError(f"the claimed answer has a size ({', '.join(loose)}) that nothing in "
                             f"{expr!r} fixes (an identity or ones vector of any size?)")
    for k, point in enumerate(ref.points):
        sizes = {k_: int(v) for k_, v in point.sizes.items()}
        want = ref.want(k)
        got = evaluate(claimed, point.env2d, point.sizes)
        want_shape = tuple(N.size_value(d_, point.sizes) for d_ in layout)
        if got.size != want.size or not _same_layout(claimed.shape, layout):
            reason = (f"the claim has shape {show_shape(claimed.shape)}, but the derivative by {wrt} "
                      f"{_shape_words(layout)}; the derivative is {expected}")
            return Verdict(expr, wrt, answer, False, reason, expected,
                           {"sizes": sizes, "entry": [], "claimed_shape": list(np.shape(got)),
                            "expected_shape": list(want_shape), "claimed": None, "actual": None}, claimed)
        got = np.reshape(got, want.shape)
        if not V.close(got, want, tol=1e-5):        # before calling it wrong: better differences
            want = ref.want(k, refined=True)
        if not V.close(got, want, tol=1e-5):
            k = np.unravel_index(np.argmax(np.abs(got - want)), want.shape) if want.shape else ()
            entry = [int(i) for i in k]
            values = {n: np.round(np.asarray(v), 4).tolist() for n, v in point.env.items()}
            reason = (f"at sizes {', '.join(f'{a}={b}' for a, b in sizes.items())}, entry "
                      f"{entry} of the claim is {float(got[k]):.6g} but the derivative is "
                      f"{float(want[k]):.6g}; the derivative is {expected}")
            return Verdict(expr, wrt, answer, False, reason, expected,
                           {"sizes": sizes, "entry": entry, "claimed": float(got[k]),
                            "actual": float(want[k]), "values": values}, claimed)
    return Verdict(expr, wrt, answer, True,
                   f"agrees with the derivative {expected} (checked numerically at random points)",
                   expected, None, claimed)


def _compare_index(ref: Reference, answer: str) -> Verdict:
    """A claim written in index notation (SPEC §1.3), evaluated directly from its parsed tree:
    `G[i,j] = Σ_p dY[p,i] X[p,j]` (its left side orders its indices) or, with one free index or
    none, the expression alone."""
    from .index_eval import Evaluator
    from .layout import shape_of_rank
    claim = read_index(answer, ref.decls, free_ok=True, out_shape=shape_of_rank(ref.layout))
    unknown = sorted(set(claim.variables.table) - set(ref.decls))
    if unknown:
        raise IndexCalcError(f"the claimed answer uses {', '.join(unknown)}, which "
                             f"{'does' if len(unknown) == 1 else 'do'} not appear in {ref.input!r}")
    for k, point in enumerate(ref.points):
        sizes = {k_: int(v) for k_, v in point.sizes.items()}
        want = np.asarray(ref.want(k), dtype=float)
        with np.errstate(all="ignore"):
            got = Evaluator(claim, point.env, point.sizes).output()
        if got.shape != want.shape:
            want_dims = "×".join(map(str, want.shape)) or "scalar"
            got_dims = "×".join(map(str, got.shape)) or "scalar"
            reason = (f"the claim has {len(got.shape)} free indices ({got_dims} here), but the derivative by "
                      f"{ref.wrt} is {want_dims} here; the derivative is {ref.expected}")
            return Verdict(ref.input, ref.wrt, answer, False, reason, ref.expected,
                           {"sizes": sizes, "entry": [], "claimed_shape": list(got.shape),
                            "expected_shape": list(want.shape), "claimed": None, "actual": None})
        if not V.close(got, want, tol=1e-5):
            at = np.unravel_index(np.argmax(np.abs(got - want)), want.shape) if want.shape else ()
            entry = [int(i) for i in at]
            values = {n: np.round(np.asarray(v), 4).tolist() for n, v in point.env.items()}
            reason = (f"at sizes {', '.join(f'{a}={b}' for a, b in sizes.items())}, entry "
                      f"{entry} of the claim is {float(got[at]):.6g} but the derivative is "
                      f"{float(want[at]):.6g}; the derivative is {ref.expected}")
            return Verdict(ref.input, ref.wrt, answer, False, reason, ref.expected,
                           {"sizes": sizes, "entry": entry, "claimed": float(got[at]),
                            "actual": float(want[at]), "values": values})
    return Verdict(ref.input, ref.wrt, answer, True,
                   f"agrees with the derivative {ref.expected} (checked numerically at random points)",
                   ref.expected, None)


def _typed_claim(tree, decls, shape):
    """The claim typed with the derivative's shape where it fits (a lone `1` is then the ones
    vector); a claim of another shape is typed as it stands, and called wrong for its shape."""
    try:
        return infer(tree, decls, expect=shape)[0]
    except ShapeError:
        pass
    try:
        return infer(tree, decls)[0]
    except ShapeError as e:
        raise IndexCalcError(f"the claimed answer does not fit the shapes: {e}") from None


def _shape_words(layout) -> str:
    if len(layout) > 2:
        return f"is a rank-{len(layout)} tensor ({'×'.join(map(str, layout))})"
    return f"has the shape {show_shape(_as2(layout))}"


def _as2(layout):
    if len(layout) == 0:
        return N.SCALAR
    if len(layout) == 1:
        return (layout[0], 1)
    return tuple(layout[:2])


def _same_layout(shape, layout) -> bool:
    non_unit = [d for d in shape if d != 1]
    return non_unit == [d for d in layout if d != 1]
