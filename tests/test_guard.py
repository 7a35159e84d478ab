"""The numerical guard must catch a wrong rule: break one on purpose and see it refuse."""
import pytest

from indexcalc import derive, functions
from indexcalc import diff
from indexcalc.errors import VerificationError


def test_guard_catches_a_wrong_elementwise_rule(monkeypatch):
    wrong = functions.Elementwise("sin", functions.sp.sin, lambda u: functions.sp.sin(u), "np.sin({})",
                                  functions.np.sin)          # d sin = sin: wrong
    monkeypatch.setitem(functions.TABLE, "sin", wrong)
    with pytest.raises(VerificationError):
        derive("sum(sin(X))", "X")


def test_guard_catches_a_wrong_inverse_rule(monkeypatch):
    original = diff.ATOM_RULES[diff.N.Inverse]
    monkeypatch.setitem(diff.ATOM_RULES, diff.N.Inverse, lambda D, node, idx: -original(D, node, idx))
    with pytest.raises(VerificationError):
        derive("tr(X^-1 A)", "X")


def test_guard_catches_a_wrong_leaf_rule(monkeypatch):
    monkeypatch.setattr(diff, "deltas", lambda indices, wrt: 2 * diff.sp.Mul(
        *[diff.sp.KroneckerDelta(a, b) for a, b in zip(indices, wrt)]))
    with pytest.raises(VerificationError):
        derive("x^T a", "x")


# ---- issue 13 part 2, issue 15 part 4: steep functions, scale, cost, overflow -----------------
import numpy as np  # noqa: E402

from indexcalc import backprop, verify  # noqa: E402

MNIST = "X: 64×784, W: 128×784, b: 1×128"


def test_a_steep_function_is_resolved():
    """sin(100000 x): the step comes from the function's own scale, not a fixed 1e-6."""
    d = derive("sum(sin(100000 x))", "x")
    x = np.random.default_rng(0).normal(size=5)
    assert np.allclose(eval(d.numpy, {"np": np, "x": x}), 100000 * np.cos(100000 * x), rtol=1e-12)


@pytest.mark.parametrize("expr", ["1000 + sum(sin(100000 x))", "sum(sin(100000 x)) + 1000 sum(x)"])
def test_a_steep_function_beside_a_large_smooth_part_is_resolved(expr):
    """|f| / |J u| suggests too long a step here: f's own curvature shortens it (a table of
    Ridders' extrapolation once settled on a value that was noise, and a bug was claimed)."""
    d = derive(expr, "x")
    x = np.random.default_rng(1).normal(size=4)
    extra = 1000 if "1000 sum" in expr else 0
    assert np.allclose(eval(d.numpy, {"np": np, "x": x}), 100000 * np.cos(100000 * x) + extra, rtol=1e-12)


def test_a_wrong_rule_is_caught_on_a_steep_function(monkeypatch):
    wrong = functions.Elementwise("sin", functions.sp.sin, lambda u: 1.001 * functions.sp.cos(u), "np.sin({})",
                                  functions.np.sin)          # 0.1 % off
    monkeypatch.setitem(functions.TABLE, "sin", wrong)
    with pytest.raises(VerificationError):
        derive("sum(sin(100000 x))", "x")


def test_no_absolute_tolerance_a_wrong_rule_at_small_scale_is_caught(monkeypatch):
    """The old guard's atol (1e-5 · (1 + max)) let anything of size 1e-6 through."""
    wrong = functions.Elementwise("sin", functions.sp.sin, lambda u: -functions.sp.cos(u), "np.sin({})",
                                  functions.np.sin)          # d sin = -cos: wrong sign
    monkeypatch.setitem(functions.TABLE, "sin", wrong)
    with pytest.raises(VerificationError):
        derive("0.000001 sum(sin(x))", "x")


def test_a_zero_derivative_is_no_false_alarm():
    """tr(A X) - tr(X A): its finite differences are rounding noise around 0."""
    d = derive("tr(A X) - tr(X A)", "X")
    assert d.numpy


def test_the_guard_catches_a_broken_rule_at_the_users_sizes(monkeypatch):
    """The MNIST layer at 64×784: the projections catch a broken leaf rule."""
    monkeypatch.setattr(diff, "deltas", lambda indices, wrt: 2 * diff.sp.Mul(
        *[diff.sp.KroneckerDelta(a, b) for a, b in zip(indices, wrt)]))
    with pytest.raises(VerificationError):
        backprop("Y = X W^T + b", "W", MNIST)


def test_the_guard_catches_a_broken_function_rule_at_the_users_sizes(monkeypatch):
    wrong = functions.Elementwise("tanh", functions.sp.tanh, lambda u: 1 - functions.sp.tanh(u) ** 3,
                                  "np.tanh({})", functions.np.tanh)
    monkeypatch.setitem(functions.TABLE, "tanh", wrong)
    with pytest.raises(VerificationError):
        backprop("Y = tanh(X W^T + b)", "W", MNIST)


def _evaluations(monkeypatch, run) -> int:
    """How many times the guard (and its point drawing) evaluates an expression."""
    count = {"n": 0}
    real = verify.evaluate

    def counted(*args, **kw):
        count["n"] += 1
        return real(*args, **kw)
    monkeypatch.setattr(verify, "evaluate", counted)
    run()
    return count["n"]


def test_the_guards_cost_does_not_grow_with_the_sizes(monkeypatch):
    small = _evaluations(monkeypatch, lambda: backprop("Y = tanh(X W^T + b)", "W,b,X", "X: 4×5, W: 6×5, b: 1×6"))
    large = _evaluations(monkeypatch, lambda: backprop("Y = tanh(X W^T + b)", "W,b,X", "X: 40×50, W: 60×50, b: 1×60"))
    mnist = _evaluations(monkeypatch, lambda: backprop("Y = tanh(X W^T + b)", "W,b,X", MNIST))
    assert small == large == mnist and small < 100


def test_a_point_that_overflows_is_scaled_down():
    d = derive("exp(exp(exp(exp(x^T a))))", "x")
    rng = np.random.default_rng(3)
    x, a = 0.1 * rng.normal(size=4), 0.1 * rng.normal(size=4)
    s = x @ a
    want = np.exp(np.exp(np.exp(np.exp(s)))) * np.exp(np.exp(np.exp(s))) * np.exp(np.exp(s)) * np.exp(s) * a
    assert np.allclose(eval(d.numpy, {"np": np, "x": x, "a": a}), want, rtol=1e-12)


def test_points_have_both_signs_unless_the_domain_needs_otherwise():
    from indexcalc.parse import parse
    from indexcalc.shapes import infer
    tree, variables = infer(parse("sum(sqrt(x .^ 2)) + sum(log(y))"), {"y": ("n", 1), "x": ("n", 1)})
    p = verify.sample(tree, variables, np.random.default_rng(0))
    assert (p.env["x"] < 0).any() and (p.env["y"] > 0).all()


def test_sizes_are_drawn_where_a_product_under_det_can_be_invertible():
    """log det(X Xᵀ) of X: n×m is -∞ everywhere unless m ≥ n: the guard draws such sizes
    (it used to draw n = 4, m = 3 and report that differences 'do not settle'); the answer
    2 (X Xᵀ)⁻¹ X agrees with hand-written NumPy there."""
    import numpy as np
    from indexcalc import verify as V
    from indexcalc.evaluate import evaluate
    d = derive("log(det(X X^T))", "X", "X: n×m")
    r = d.results[0]
    assert r.closed_form == "2 (X X^T)^-1 X"
    assert r.checked_sizes["m"] >= r.checked_sizes["n"]
    for seed in range(3):
        sizes = V.draw_sizes(d.variables, d.tree, np.random.default_rng(seed))
        assert sizes["m"] >= sizes["n"]
    X = np.random.default_rng(0).normal(size=(3, 5))
    got = evaluate(r.closed, {"X": X}, {"n": 3, "m": 5})
    assert np.allclose(got, 2 * np.linalg.inv(X @ X.T) @ X)


def test_a_product_singular_everywhere_under_det_is_refused_with_its_reason():
    from indexcalc.errors import IndexCalcError
    with pytest.raises(IndexCalcError, match="x x\\^T .* rank at most 1"):
        derive("log(det(x x^T))", "x")
