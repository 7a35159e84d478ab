"""`check` is exact: claims with known truth (sizes, scales, signs, right answers written
differently or sensitive to rounding), the cases of issue 13, and one derivation checked
against many claims (`references`/`Reference.check`, as grade does)."""
import numpy as np
import pytest

from indexcalc.check import check, reference, references
from indexcalc.magnitude import magnitude
from indexcalc.parse import parse
from indexcalc.shapes import infer

LIN = "X: S×M, W: N×M, b: 1×N"

CLAIMS = [   # expression, wrt, claimed answer, --where, right?
    # issue 13: right only for some sizes, scales or signs
    ("tr(X)", "X", "(n - 2) I", "X: n×n", False),
    ("tr(X^T X)", "X", "2 X + (m - 3) X", None, False),
    ("x^T B x", "x", "1.00001 (B + B^T) x", None, False),
    ("0.000001 x^T x", "x", "-0.000002 x", None, False),
    ("0.00001 norm2(W)", "W", "0.00001 W", None, False),
    ("sum(sqrt(x .^ 2))", "x", "1", None, False),
    # sizes
    ("x^T x", "x", "(2 n / 3) x", None, False),
    ("tr(X)", "X", "I", "X: n×n", True),
    ("tr(X^T X)", "X", "2 X", None, True),
    ("tr(X^T X)", "X", "X + X", None, True),
    # scales
    ("x^T B x", "x", "1.0000001 (B + B^T) x", None, False),
    ("0.000001 x^T x", "x", "0.000002 x", None, True),
    ("0.00001 norm2(W)", "W", "0.00002 W", None, True),
    ("sum(exp(1000 x))", "x", "1000 exp(1000 x)", None, True),
    ("sum(sin(100000 x))", "x", "100000 cos(100000 x)", None, True),
    ("sum(sin(100000 x))", "x", "100001 cos(100000 x)", None, False),
    # signs
    ("sum(relu(x))", "x", "1", None, False),
    ("sum(relu(x))", "x", "H(x)", None, True),
    ("sum(abs(x))", "x", "1", None, False),
    ("sum(abs(x))", "x", "sign(x)", None, True),
    ("sum(sqrt(x .^ 2))", "x", "x ⊘ abs(x)", None, True),
    ("0.000001 x^T x", "x", "0.000002 abs(x)", None, False),
    # transposes and layouts
    ("tr(X^T X)", "X", "2 X^T", "X: n×n", False),
    ("log(det(X))", "X", "inv(X)", None, False),
    ("log(det(X))", "X", "inv(X)^T", None, True),
    ("log(det(X))", "X", "X^-T", None, True),
    ("tr(inv(X) A)", "X", "-inv(X) A inv(X)", None, False),
    ("tr(inv(X) A)", "X", "-(inv(X) A inv(X))^T", None, True),
    ("tr(inv(X) A)", "X", "-inv(X)^T A^T inv(X)^T", None, True),
    # right answers written differently, some sensitive to rounding
    ("x^T B x", "x", "B x + B^T x", None, True),
    ("x^T B x", "x", "(B^T + B) x", None, True),
    ("x^T B x", "x", "2 B x", None, False),
    ("sum(tanh(x))", "x", "1 - tanh(x) .^ 2", None, True),
    ("sum(sigmoid(x))", "x", "exp(-x) ⊘ (1 + exp(-x)) .^ 2", None, True),
    ("sum(sigmoid(x))", "x", "sigmoid(x) ∘ (1 - sigmoid(x))", None, True),
    ("log(sum(exp(x)))", "x", "softmax(x)", None, True),
    ("log(sum(exp(x)))", "x", "exp(x) / sum(exp(x))", None, True),
    ("softmax(z)", "z", "diag(softmax(z)) - softmax(z) softmax(z)^T", None, True),
    ("softmax(z)", "z", "diag(softmax(z))", None, False),
    # backprop claims (seed 001: ∂L/∂b = ∂L/∂Y is wrong)
    ("Y = X W^T + b", "b", "1^T dY", LIN, True),
    ("Y = X W^T + b", "b", "sum(dY, 0)", LIN, True),
    ("Y = X W^T + b", "W", "dY^T X", LIN, True),
    ("Y = X W^T + b", "W", "X^T dY", LIN, False),
    ("Y = X W^T + b", "X", "dY W", LIN, True),
]


@pytest.mark.parametrize("expr,wrt,answer,where,right", CLAIMS,
                         ids=[f"{c[0]} by {c[1]}: {c[2]}" for c in CLAIMS])
def test_a_claim_with_known_truth(expr, wrt, answer, where, right):
    v = check(expr, wrt, answer, where)
    assert v.correct is right, v.reason
    if not right and v.counterexample.get("entry"):
        ce = v.counterexample
        assert ce["claimed"] != ce["actual"] and ce["sizes"] is not None


def test_a_wrong_claim_gets_the_point_where_it_is_wrong():
    """The counterexample's numbers are the claim and the derivative there, recomputed by hand."""
    v = check("sum(sqrt(x .^ 2))", "x", "1")
    ce = v.counterexample
    x = np.array(ce["values"]["x"])
    k = ce["entry"][0]
    assert ce["claimed"] == 1.0 and ce["actual"] == pytest.approx(np.sign(x[k])) and x[k] < 0


def test_sizes_differ_between_points_and_between_dimensions():
    ref = reference("tr(A X B)", "X", "A: n×m, X: m×p, B: p×n")
    seen = [tuple(p.sizes[s] for s in ("m", "n", "p")) for p in ref.points]
    assert len(set(seen)) == len(seen) >= 3
    assert all(len(set(s)) == 3 for s in seen)          # distinct within a point
    assert any(3 not in s for s in seen)


def test_values_of_both_signs_where_the_function_allows_them():
    ref = reference("sum(sqrt(x .^ 2)) + log(sum(exp(x)))", "x")
    assert any((p.env["x"] < 0).any() for p in ref.points)


def test_only_the_variable_that_needs_it_is_made_positive():
    """log(y) needs y > 0; x, beside it, keeps both signs."""
    ref = reference("sum(log(y)) + sum(sin(x))", "x", "x: n, y: n")
    for p in ref.points:
        assert (p.env["y"] > 0).all()
    assert any((p.env["x"] < 0).any() for p in ref.points)


def test_one_derivation_many_claims():
    """grade derives each problem once: a Reference holds the derivation and its points."""
    ref = references("x^T B x", "x")["x"]
    points = list(ref.points)
    verdicts = [ref.check(a) for a in ["(B + B^T) x", "2 B x", "B^T x + B x", "-(B + B^T) x"]]
    assert [v.correct for v in verdicts] == [True, False, True, False]
    assert ref.points == points                          # not drawn again
    assert all(v.expected == "(B + B^T) x" for v in verdicts)


def test_where_no_closed_form_the_generated_code_is_compared():
    """X ∘ X by X has no closed form: the points hold the generated einsum code's values."""
    ref = reference("X ∘ X", "X")
    assert ref.derivation.results[0].closed is None
    for k, p in enumerate(ref.points):
        X = p.env["X"]
        m, n = X.shape
        want = np.einsum("ik,jl->ijkl", np.eye(m), np.eye(n)) * (2 * X)[:, :, None, None]
        assert np.allclose(ref.want(k), want, rtol=1e-12, atol=0)
    assert not ref.check("2 X").correct               # a claim of another shape: wrong, said so


@pytest.mark.parametrize("text", ["(B + B^T) x", "B x - B^T x + 2 B^T x", "softmax(B x)", "inv(B) x",
                                  "x ⊘ sqrt(x .^ 2)", "B^3 x", "log(sum(exp(B x))) x"])
def test_the_magnitude_of_terms_bounds_the_rounding(text):
    """The magnitude is finite and at least the value, entry by entry, for every kind of node."""
    from indexcalc.evaluate import evaluate
    tree, _ = infer(parse(text), {"x": ("n", 1), "B": ("n", "n")})
    rng = np.random.default_rng(5)
    env = {"x": rng.normal(size=(5, 1)), "B": rng.normal(size=(5, 5)) + 3 * np.eye(5)}
    v = evaluate(tree, env, {"n": 5})
    m = magnitude(tree, env, {"n": 5})
    assert m.shape == v.shape and np.all(m >= np.abs(v)) and np.all(np.isfinite(m))


def test_cancellation_keeps_the_terms_scale():
    """(B + B^T) x at an entry that cancels to nearly 0: its terms are still of size |B| |x|."""
    tree, _ = infer(parse("(B + B^T) x"), {"x": ("n", 1), "B": ("n", "n")})
    B = np.array([[1.0, 2.0], [-2.0, 3.0]])
    x = np.array([[1.0], [1e-12]])
    m = magnitude(tree, {"B": B, "x": x}, {"n": 2})
    assert m[1, 0] >= 4.0 - 1e-9          # |B21 + B12| x1 is 0, but |B21| x1 + |B12| x1 = 4


def test_a_row_for_a_column_gradient_is_right_and_says_so():
    """x^T (B + B^T) is the gradient (B + B^T) x in the other layout: right, and the reason says
    that it is the transpose of the gradient, shaped like x as a column."""
    from indexcalc.check import check
    v = check("x^T B x", "x", "x^T (B + B^T)")
    assert v.correct and "transpose of the gradient" in v.reason
    v = check("x^T B x", "x", "(B + B^T) x")
    assert v.correct and "transpose" not in v.reason
