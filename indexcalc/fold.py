"""Closed forms of a module's gradients, as a module uses them: in terms of its output.

A module caches what its forward pass computed, so a backward pass reads `Y` rather than
recomputing `softmax(X)`. `fold` rewrites a verified closed form:

  1. the output:   every subtree equal to the right side of `Y = f(...)` becomes `Y`;
  2. assumptions:  `T 1 = 1` (rows of T sum to one) replaces `T 1` by `1`;
  3. tidying:      diag(1) = I, I A = A, diag(v) A = (v 1ᵀ) ∘ A, and a factor common to the
                   Hadamard products of a sum is pulled out: A ∘ B - C ∘ B = (A - C) ∘ B.

Each rule is one function in RULES. The result is checked numerically against the unfolded
closed form (with `Y` bound to the forward value) before it is used.
"""
from __future__ import annotations

import numpy as np

from . import functions as F
from . import nodes as N
from .closed import T, had, mm
from .errors import IndexCalcError, VerificationError
from .evaluate import evaluate
from .simplify import common_hadamard_factor


def replace_subtree(node: N.Node, old: N.Node, new: N.Node) -> N.Node:
    if node == old:
        return new
    return node.map_children(lambda c: replace_subtree(c, old, new))


def smooth_stand_ins(node: N.Node) -> N.Node:
    """node with each piecewise function (relu, step, abs, sign, elu) replaced by a smooth
    generic function of its own (functions.generic_value). Two pieces equal at a random point
    are the same function only if they are analytic: at a point where X W + 5 > 0 everywhere,
    abs(X W + 5) has the value of X W + 5 and sign(X W + 5) that of 1, and a value match took
    one for the other (`sign(Y)` for `Y = abs(X W + 5)`). With the stand-ins, equal values at a
    random point mean the same expression of the same functions."""
    if isinstance(node, N.Func) and node.name in F.PIECEWISE:
        return N.Func(F.stand_in(node.name), smooth_stand_ins(node.a), node.shape)
    return node.map_children(smooth_stand_ins)


class Values:
    """Values of subtrees at one point, for telling which pieces are the same function:
    piecewise functions are evaluated as smooth stand-ins (smooth_stand_ins)."""

    def __init__(self, point):
        self.point, self.cache = point, {}

    def of(self, node):
        if node not in self.cache:
            try:
                with np.errstate(all="ignore"):
                    v = evaluate(smooth_stand_ins(node), self.point.env2d, self.point.sizes)
                self.cache[node] = v if np.all(np.isfinite(v)) else None
            except Exception:  # noqa: BLE001 - a piece we cannot evaluate is matched by nothing
                self.cache[node] = None
        return self.cache[node]

    def same(self, a, b):
        """'equal', 'transposed' or None."""
        va, vb = self.of(a), self.of(b)
        if va is None or vb is None:
            return None
        if a.shape == b.shape and va.shape == vb.shape and np.allclose(va, vb, rtol=1e-11, atol=1e-13):
            return "equal"
        if a.shape == b.shape[::-1] and a.shape[0] != a.shape[1] and va.shape == vb.T.shape and \
                np.allclose(va, vb.T, rtol=1e-11, atol=1e-13):
            return "transposed"
        return None


def replace_by_value(node, old, new, values: Values):
    """node with every subtree that has old's value (at the point) replaced by new."""
    if not isinstance(node, (N.Sym, N.Num, N.Size, N.Ones, N.Identity)) and node.shape == old.shape \
            and values.same(node, old) == "equal":
        return new
    return node.map_children(lambda c: replace_by_value(c, old, new, values))


# ---- assumptions --------------------------------------------------------------------------
def assumptions(texts, decls) -> list:
    """`T 1 = 1` -> [(typed T 1, typed 1)]. Only "rows sum to one" is supported: the check
    must be able to draw values that satisfy an assumption (see satisfy)."""
    from .parse import parse
    from .shapes import infer
    out = []
    for text in texts or ():
        if text.count("=") != 1:
            raise IndexCalcError(f"an assumption is an equation such as `T 1 = 1`, not {text!r}")
        lhs_text, rhs_text = text.split("=", 1)
        try:
            lhs, _ = infer(parse(lhs_text), decls)
            value, _ = infer(parse(rhs_text), decls, expect=lhs.shape)
        except IndexCalcError as e:
            raise IndexCalcError(f"the assumption {text.strip()!r}: {e}") from None
        if not _rows_sum_to_one(lhs, value):
            raise IndexCalcError(f"the assumption {text.strip()!r} is not supported: only `T 1 = 1` "
                                 "(the rows of a matrix sum to one) is")
        out.append((lhs, value))
    return out


def _rows_sum_to_one(lhs, value) -> bool:
    return (isinstance(lhs, N.MatMul) and isinstance(lhs.a, N.Sym) and isinstance(lhs.b, N.Ones)
            and isinstance(value, N.Ones))


# ---- tidying rules, applied bottom-up -------------------------------------------------------
def _diag_of_ones(node):
    if isinstance(node, N.DiagMat) and isinstance(node.a, N.Ones):
        return N.Identity(node.shape)
    return None


def _product(node):
    if isinstance(node, N.MatMul):
        if isinstance(node.a, N.DiagMat) and node.b.shape[1] != 1:
            v = node.a.a
            return had(mm(v, T(N.Ones((node.b.shape[1], 1)))), node.b)
        out = mm(node.a, node.b)
        return out if out != node else None
    return None


RULES = [_diag_of_ones, _product, common_hadamard_factor]


def tidy(node: N.Node) -> N.Node:
    node = node.map_children(tidy)
    for rule in RULES:
        out = rule(node)
        if out is not None:
            return tidy(out) if out != node else out
    return node


# ---- the fold ---------------------------------------------------------------------------------
def fold(closed: N.Node, rhs: N.Node, output: str, assumptions=(), point=None) -> N.Node:
    """The closed form with the module's output named; assumptions as (typed lhs, typed rhs).
    With a point, a subtree that has the output's value there is the output too (the derived
    form may write `1 b + X W` where the user wrote `X W + b`); check_fold confirms the whole."""
    out = closed
    if rhs is not None:                  # an expression (check's --assume) has no output to name
        out = replace_subtree(closed, rhs, N.Sym(output, rhs.shape))
        if point is not None:
            out = replace_by_value(out, rhs, N.Sym(output, rhs.shape), Values(point))
    for lhs, value in assumptions:
        out = replace_subtree(out, lhs, value)
    return tidy(out)


def check_fold(folded: N.Node, closed: N.Node, rhs: N.Node, output: str, point, assumptions=()):
    """The folded form equals the closed form at the point (Y bound to its forward value)."""
    env = dict(point.env2d)
    for lhs, value in assumptions:
        satisfy(env, lhs)
    if rhs is not None:
        env[output] = evaluate(rhs, env, point.sizes)
    try:
        want = evaluate(closed, env, point.sizes)
        got = evaluate(folded, env, point.sizes)
    except (KeyError, ValueError, np.linalg.LinAlgError) as e:
        raise IndexCalcError(f"cannot evaluate the folded form: {e}") from None
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-8, atol=1e-10):
        raise VerificationError("indexcalc bug: the gradient written with the module's output "
                                "differs from the verified closed form; no answer is shown")


def satisfy(env, lhs):
    """Make the sampled variables satisfy `T 1 = 1`: rows of T scaled to sum to one."""
    t = np.abs(env[lhs.a.name]) + 0.1
    env[lhs.a.name] = t / t.sum(axis=1, keepdims=True)


def folded_forms(d, assumed=()) -> dict:
    """For a backprop derivation: {wrt: the closed form in terms of the output (and under the
    assumptions)}, where that changes it; each one checked numerically."""
    from . import verify as V
    if (d.rhs is None or d.output is None) and not assumed:
        return {}
    rhs = d.rhs if d.output is not None else None
    point = V.sample(d.tree, d.variables, np.random.default_rng(11))
    near = V.sample(d.tree, d.variables, np.random.default_rng(12))    # matched here, checked at point
    out = {}
    for r in d.results:
        if r.closed is None:
            continue
        folded = fold(r.closed, rhs, d.output, assumed, near)
        if folded != r.closed:
            check_fold(folded, r.closed, rhs, d.output, point, assumed)
            out[r.wrt] = folded
    return out
