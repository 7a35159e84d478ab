"""`check`: is a claimed derivative right? Compared with finite differences of the
expression itself (not only with our own derivation); a wrong claim gets a counterexample."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import nodes as N
from . import verify as V
from .pipeline import backprop, derive
from .errors import IndexCalcError, ShapeError
from .evaluate import evaluate
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


def check(expr: str, wrt: str, answer: str, where: str | None = None, seed: int = 1) -> Verdict:
    d = backprop(expr, wrt, where) if isinstance(parse(expr), N.Equation) else derive(expr, wrt, where)
    r = d.results[0]
    expected = r.closed_form or r.index_form
    decls = {name: v.shape for name, v in d.variables.items()}
    layout = tuple(r.shape)
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
    rng = np.random.default_rng(seed)
    for _ in range(3):
        point = V.sample(d.tree, d.variables, rng)
        sizes = {k: int(v) for k, v in point.sizes.items()}
        want = V.jacobian(V.value_fn(d.tree, point), point, wrt)
        got = evaluate(claimed, point.env2d, point.sizes)
        want_shape = tuple(N.size_value(d_, point.sizes) for d_ in layout)
        if got.size != want.size or not _same_layout(claimed.shape, layout):
            reason = (f"the claim has shape {show_shape(claimed.shape)}, but the derivative by {wrt} has "
                      f"the shape {show_shape(_as2(layout))}; the derivative is {expected}")
            return Verdict(expr, wrt, answer, False, reason, expected,
                           {"sizes": sizes, "entry": [], "claimed_shape": list(np.shape(got)),
                            "expected_shape": list(want_shape), "claimed": None, "actual": None}, claimed)
        got = np.reshape(got, want.shape)
        if not V.close(got, want, tol=1e-5):        # before calling it wrong: better differences
            with V.refined():
                want = V.jacobian(V.value_fn(d.tree, point), point, wrt)
        if not V.close(got, want, tol=1e-5):
            k = np.unravel_index(np.argmax(np.abs(got - want)), want.shape) if want.shape else ()
            entry = [int(i) for i in k]
            values = {n: np.round(np.asarray(v), 4).tolist() for n, v in point.env.items()}
            reason = (f"wrong: at sizes {', '.join(f'{a}={b}' for a, b in sizes.items())}, entry "
                      f"{entry} of the claim is {float(got[k]):.6g} but the derivative is "
                      f"{float(want[k]):.6g}; the derivative is {expected}")
            return Verdict(expr, wrt, answer, False, reason, expected,
                           {"sizes": sizes, "entry": entry, "claimed": float(got[k]),
                            "actual": float(want[k]), "values": values}, claimed)
    return Verdict(expr, wrt, answer, True,
                   f"right: agrees with the derivative {expected} (checked numerically at random points)",
                   expected, None, claimed)


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


def _as2(layout):
    if len(layout) == 0:
        return N.SCALAR
    if len(layout) == 1:
        return (layout[0], 1)
    return tuple(layout[:2])


def _same_layout(shape, layout) -> bool:
    non_unit = [d for d in shape if d != 1]
    return non_unit == [d for d in layout if d != 1]
