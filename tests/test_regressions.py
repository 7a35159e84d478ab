"""One case per class of failure the fuzzers found (tests/test_properties.py,
tests/test_fuzz_inputs.py), kept as plain tests so CI runs them every time: each derivative
against finite differences of an independent NumPy reference, each closed form read back."""
import numpy as np
import pytest

from indexcalc import derive, parse
from indexcalc.check import check
from indexcalc.cli import main
from indexcalc.errors import IndexCalcError
from indexcalc.printing.text import to_text
from indexcalc.shapes import infer

from .conftest import finite_jacobian


def sig(x):
    return 1 / (1 + np.exp(-x))


R = np.random.default_rng(5)
W = R.normal(size=(3, 3)) * 0.2 + 2 * np.eye(3)
CASES = [  # expression, wrt, where, values, NumPy reference
    # sifting substituted into a sum inside exp(...) and captured its index
    ("log(sum(exp(A^T a)))", "A", "A: m×m, a: m", {"A": R.normal(size=(3, 3)), "a": R.normal(size=3)},
     lambda e: np.log(np.sum(np.exp(e["A"].T @ e["a"])))),
    # sigmoid's NumPy code took `0.5 * a + b` for 0.5 * (a + b)
    ("1^T sigmoid(a + b)", "a", None, {"a": R.normal(size=3), "b": R.normal(size=3)},
     lambda e: np.sum(sig(e["a"] + e["b"]))),
    # a zero derivative had no matrix-form row (IndexError)
    ("a - a", "a", None, {"a": R.normal(size=3)}, lambda e: e["a"] - e["a"]),
    # the ones vector of `1 b` has a size no variable has (KeyError in the guard)
    ("1 b", "b", "b: 1×n", {"b": R.normal(size=(1, 3))}, lambda e: np.ones((3, 1)) @ e["b"]),
    # a 1×1 matrix under ^-T: np.linalg.inv of a number
    # (b a scalar by declaration: a default vector is never made size 1 by inference, SPEC §1.1)
    ("aT X^-T b", "X", "b: scalar", {"aT": R.normal(size=3), "X": np.array([[1.7]]), "b": 0.8},
     lambda e: e["aT"] * e["b"] / e["X"][0, 0]),
    # 1 - tanh² came back from sp.simplify as 1/cosh², a function no printer knows
    ("tanh(1^T A (A ∘ A) a)", "A", "A: m×m, a: m", {"A": R.normal(size=(3, 3)) * 0.5, "a": R.normal(size=3)},
     lambda e: np.tanh(np.sum(e["A"] @ (e["A"] * e["A"]) @ e["a"]))),
    # -a b^T printed inside a product, read back as (-a) b^T
    ("cos((A^T a)^T (B^T b))", "A", "A: m×m, a: m, B: m×m, b: m",
     {"A": R.normal(size=(3, 3)), "a": R.normal(size=3), "B": R.normal(size=(3, 3)), "b": R.normal(size=3)},
     lambda e: np.cos((e["A"].T @ e["a"]) @ (e["B"].T @ e["b"]))),
    # det of A^T A + I: (s A) B printed as s A B, read back as another tree
    ("det(A^T A + I)", "A", "A: m×m", {"A": R.normal(size=(3, 3))},
     lambda e: np.linalg.det(e["A"].T @ e["A"] + np.eye(3))),
    # the guard drew a point where relu(B) was all zero (‖0‖): it now draws another
    ("norm((A^T) relu(B))", "A", "A: n×m, B: n×p", {"A": R.normal(size=(4, 3)), "B": np.abs(R.normal(size=(4, 2)))},
     lambda e: np.linalg.norm(e["A"].T @ np.maximum(e["B"], 0))),
    # nested norm bars
    ("‖a / ‖a‖‖", "a", None, {"a": R.normal(size=3)}, lambda e: 1.0 + 0 * e["a"].sum()),
    ("‖x‖ ‖y‖", "x", None, {"x": R.normal(size=3), "y": R.normal(size=4)},
     lambda e: np.linalg.norm(e["x"]) * np.linalg.norm(e["y"])),
    # x(...) is a product when x is a variable elsewhere in the input
    ("x(A + I) x", "x", "x: scalar", {"x": 0.7, "A": R.normal(size=(2, 2))},
     lambda e: e["x"] * (e["A"] + np.eye(2)) * e["x"]),
    # A 1 + B 1 was factored as (A + B) 1 although the two ones vectors differ in size
    ("log(sum(exp((A 1) + (B 1))))", "A", "A: m×m, B: m×n", {"A": R.normal(size=(3, 3)), "B": R.normal(size=(3, 4))},
     lambda e: np.log(np.sum(np.exp(e["A"].sum(axis=1) + e["B"].sum(axis=1))))),
    # diag of a size-1 vector indexed its 1×1 result by nothing (TypeError inside KroneckerDelta);
    # a size-1 vector now comes only from a matrix inferred n×1 (a default vector never is)
    ("xT diag(A 1) X", "xT", "X: 1×n", {"xT": R.normal(size=3), "A": R.normal(size=(1, 2)), "X": R.normal(size=(1, 2))},
     lambda e: np.outer(e["xT"] * e["A"].sum(), e["X"][0])),
    # an exp(Σ ...) inside a term: its index is named canonically, like the term's own
    ("2 log(sum(exp(A^-1 a)))", "a", "A: p×p, a: p", {"A": W, "a": R.normal(size=3)},
     lambda e: 2 * np.log(np.sum(np.exp(np.linalg.solve(e["A"], e["a"]))))),
    # a sum kept whole as one term beside its own parts ((A + B) + A + I): the same sum as
    # 2 A^T + B^T + I, but sifting again was called a change (the long profile)
    ("tr((A + B)(A + I))", "A", "A: n×n, B: n×n", {"A": R.normal(size=(4, 4)), "B": R.normal(size=(4, 4))},
     lambda e: np.trace((e["A"] + e["B"]) @ (e["A"] + np.eye(4)))),
    ("tr((A + 1 r) (B + 1 s))", "A", "A: n×n, B: n×n, r: 1×n, s: 1×n",
     {"A": R.normal(size=(4, 4)), "B": R.normal(size=(4, 4)), "r": R.normal(size=(1, 4)), "s": R.normal(size=(1, 4))},
     lambda e: np.trace((e["A"] + np.ones((4, 1)) @ e["r"]) @ (e["B"] + np.ones((4, 1)) @ e["s"]))),
    # a derivative whose terms mention no free index (Σ_p,q A_pq + m Σ_p r_p, over a norm): sifted
    # again, the sum read as one coefficient and was called a change (the long profile)
    ("‖(A + 1 r) 1‖", "r", "A: m×m, r: 1×m", {"A": R.normal(size=(3, 3)), "r": R.normal(size=(1, 3))},
     lambda e: np.linalg.norm((e["A"] + np.ones((3, 1)) @ e["r"]) @ np.ones(3))),
    # a scalar times (1/2) 1 printed as exp(...) ((1/2) 1), which reads back (1/2) exp(...) 1
    ("exp(sum(a))^(1/2)", "a", "a: m", {"a": R.normal(size=3)}, lambda e: np.sqrt(np.exp(np.sum(e["a"])))),
    # a generic function with a Greek name
    ("sum(exp(x) ∘ (W x))", "x", None, {"x": R.normal(size=3), "W": W}, lambda e: np.sum(np.exp(e["x"]) * (e["W"] @ e["x"]))),
    # a ones vector whose tie to a's size simplified away printed ‖exp(α 1)‖: a text without the
    # size, which the guard rejected (exit 3); the index form is the answer there
    ("sqrt(1 + ‖exp(a - a + alpha)‖^2)", "alpha", "a: m, alpha: scalar", {"a": R.normal(size=3), "alpha": 0.3},
     lambda e: np.sqrt(1 + 3 * np.exp(2 * e["alpha"]))),
    # textbook probes: X^-2 is (X^-1)^2 (it was refused as "not a scalar")
    ("a^T X^-2 b", "X", "X: m×m, a: m, b: m", {"X": W, "a": R.normal(size=3), "b": R.normal(size=3)},
     lambda e: e["a"] @ np.linalg.inv(e["X"] @ e["X"]) @ e["b"]),
    ("tr(A X^-3)", "X", "X: m×m, A: m×m", {"X": W, "A": R.normal(size=(3, 3))},
     lambda e: np.trace(e["A"] @ np.linalg.matrix_power(np.linalg.inv(e["X"]), 3))),
    # the number 1 added to a row vector is the ones row (it was a column: "would broadcast into a matrix")
    ("sum(log(1 + a^T .^ 2))", "a", "a: m", {"a": R.normal(size=3)}, lambda e: np.sum(np.log(1 + e["a"] ** 2))),
    ("(1 - a^T) A a", "a", "a: m, A: m×m", {"a": R.normal(size=3), "A": R.normal(size=(3, 3))},
     lambda e: (1 - e["a"]) @ e["A"] @ e["a"]),
    # NumPy's norm(x, ord): ord 2, 1 or 'fro' (it was refused: "norm takes one vector or matrix")
    ("norm(X, 'fro')^2 + norm(a, 1) + norm(a, 2)", "a", "X: m×n, a: m",
     {"X": R.normal(size=(3, 4)), "a": R.normal(size=3)},
     lambda e: np.linalg.norm(e["X"], "fro") ** 2 + np.linalg.norm(e["a"], 1) + np.linalg.norm(e["a"], 2)),
    ('norm(A X - B, "fro")', "X", "A: m×m, X: m×n, B: m×n",
     {"A": R.normal(size=(3, 3)), "X": R.normal(size=(3, 4)), "B": R.normal(size=(3, 4))},
     lambda e: np.linalg.norm(e["A"] @ e["X"] - e["B"], "fro")),
]


@pytest.mark.parametrize("expr,wrt,where,values,ref", CASES, ids=[c[0] for c in CASES])
def test_found_case_agrees_with_finite_differences(expr, wrt, where, values, ref):
    d = derive(expr, wrt, where)
    r = d.results[0]
    sizes = {k: v for k, v in zip("mnp", (3, 4, 2))}
    got = np.asarray(eval(r.numpy, {"np": np, **sizes, **values}), dtype=float)     # noqa: S307
    want = finite_jacobian(ref, values, wrt)
    if got.size == want.size:            # a 1×1 matrix is held as a number
        got = got.reshape(want.shape)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-6 * (1 + np.abs(want).max())), (r.numpy, got, want)
    assert r.is_simplified
    if r.closed_form is not None:
        back, _ = infer(parse(r.closed_form), {n: v.shape for n, v in d.variables.items()}, expect=r.closed.shape)
        assert to_text(back) == r.closed_form


@pytest.mark.parametrize("expr,wrt,closed", [
    ("sigmoid(alpha)", "alpha", "(1 - sigmoid(alpha)) sigmoid(alpha)"),  # not -(-1 + σ) σ, nor σ - σ²
    ("sigmoid(w^T x)", "w", "(1 - sigmoid(w^T x)) sigmoid(w^T x) x"),    # not -(sigmoid(w^T x) - 1) ...
    ("tanh(w^T x)", "w", "(1 - tanh(w^T x)^2) x"),                        # not -(tanh(w^T x)^2 - 1) x
    ("log(sigmoid(alpha)) / 2", "alpha", "(1 - sigmoid(alpha)) / 2"),
    ("tanh(alpha)", "alpha", "1 - tanh(alpha)^2"),
    ("2 x^T B x / 3", "x", "2 (B + B^T) x / 3"),                           # not (2 B / 3 + 2 B^T / 3) x
    ("alpha / 3", "alpha", "1/3"),                                          # a number, as read back
    ("-(alpha / 3)", "alpha", "-1/3"),
    ("cos((2 alpha) / 3)", "alpha", "(-2/3) sin(2 alpha / 3)"),            # -2/3 sin(...) is -2 / (3 sin(...))
    ("tanh(alpha^(1/2))", "alpha", "(1 - tanh(alpha^(1/2))^2) / (2 alpha^(1/2))"),
    ("tanh(alpha^(1/2)) alpha^(-1/2)", "alpha", None),                     # -1/2 folds to a number
    ("sum(a / 2)", "a", "(1/2) 1"),                                         # `1 / 2` would be a number
    ("mean(a)", "a", "(1 / n) 1"),                                          # not (1^T)^T / n
    ("sum(-a)", "a", "-1 1"),                                               # not -(1^T)^T
    ("u^T tanh(W x + b)", "W", "(u ∘ (1 - tanh(W x + b) .^ 2)) x^T"),          # the sum as written, not b + W x
    ("u^T sigmoid(W x + b)", "b", "u ∘ sigmoid(W x + b) ∘ (1 - sigmoid(W x + b))"),
    ("sum(1 - sigmoid(X))", "X", "-(sigmoid(X) ∘ (1 - sigmoid(X)))"),          # not (1 1^T - σ) ∘ σ
    ("(alpha - beta) sum(x)", "x", "(alpha - beta) 1"),                     # not alpha + -beta; `s 1` is s times the ones
    ("((A^T)^T softmax(a))^T ((b / 2) (c ∘ c)^T) ((B^T B + I)^-1 (-u))", "c",
     "-(b^T A softmax(a)) (c ∘ ((B^T B + I)^-1 u))"),                        # the minus joins the scalars
    ("sum(A - B)", "B", "-(1 1^T)"),                                        # not -1 1^T
    ("exp(x^T x)", "x", "2 exp(x^T x) x"),                                  # not exp(1^T x .^ 2)
    ("log(x^T x)", "x", "2 x / (x^T x)"),
    ("tr(X^T X)^2", "X", "4 ‖X‖^2 X"),                                      # not (1^T X .^ 2 1)
    ("tr(X) tr(A X)", "X", "tr(X A) I + tr(X) A^T"),                        # not (1^T (A^T ∘ X) 1) I
    ("tr(X^2)^2", "X", "4 tr(X^2) X^T"),
    ("tr(X^T A) tr(X)", "X", "tr(A^T X) I + tr(X) A"),                      # not 1^T (A ∘ X)^T 1
    ("(beta^3 - alpha^4)^2", "alpha", "8 alpha^3 (alpha^4 - beta^3)"),      # not 4 2 alpha^3 (...)
    ("a^T (X^2)^-1 b", "X", "-(X^-T a b^T (X^2)^-T + (X^2)^-T a b^T X^-T)"),  # not X^2^-T
    ("(x^T A x)^2", "x", "2 (x^T A x) (A + A^T) x"),        # not 2 ((x^T A^T x) A x + (x^T A^T x) A^T x)
    ("(x - m)^T S^-1 (x - m)", "S", "-S^-T (x - m) (x - m)^T S^-T"),        # not (x^T - m^T)
    ("log(abs(alpha))", "alpha", "1 / alpha"),                              # not sign(alpha) / abs(alpha)
    ("log(abs(x^T y))", "x", "y / (x^T y)"),
])
def test_found_closed_forms_read_back(expr, wrt, closed):
    """The text, and its value: the form read back agrees with finite differences of the input."""
    from indexcalc import verify as V
    from indexcalc.evaluate import evaluate
    d = derive(expr, wrt)
    if closed is None:                   # the text is not the point: it must read back, with its value
        closed = d.closed_form
    else:
        assert d.closed_form == closed
    back, _ = infer(parse(closed), {n: v.shape for n, v in d.variables.items()}, expect=d.results[0].closed.shape)
    assert to_text(back) == closed
    point = V.sample(d.tree, d.variables, np.random.default_rng(9))
    want = V.jacobian(V.value_fn(d.tree, point), point, wrt)
    assert V.close(np.reshape(evaluate(back, point.env2d, point.sizes), want.shape), want)


def test_the_index_form_keeps_inner_sums_apart():
    r = derive("log(sum(exp(A^T a)))", "A", "A: m×m, a: m").results[0]
    assert "exp(Σ_i" not in r.index_form and r.index_form.startswith("a_i exp(Σ_p a_p A_pj)")


@pytest.mark.parametrize("answer,needle", [("x^T A^T A x", "A, which does not appear"),
                                           ("tr(I )", "nothing in")])
def test_check_refuses_answers_it_cannot_evaluate(answer, needle):
    with pytest.raises(IndexCalcError, match=needle):
        check("x^T B x", "x", answer)


@pytest.mark.parametrize("argv", [["derive", "-sum(x)", "--wrt", "x"], ["derive", "-A", "--wrt", "A"],
                                  ["check", "x^T x", "--wrt", "x", "--answer", "-x"]])
def test_a_leading_minus_is_an_expression_not_an_option(argv, capsys):
    assert main(argv) in (0, 1)
    assert "error" not in capsys.readouterr().err


def test_division_by_zero_is_bad_input(capsys):
    assert main(["derive", "sum(x) / 0", "--wrt", "x"]) == 2
    assert "division by zero" in capsys.readouterr().err


def test_a_hessian_with_a_sum_as_coefficient_of_einsum():
    """(2 t³ - 2 t) * einsum(...) lost its parentheses: 2 t³ - (2 t * einsum(...))."""
    d = derive("tanh(a^T A b)", "A", order=2)
    rng = np.random.default_rng(2)
    env = {"a": rng.normal(size=3), "A": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    ref = lambda e: np.tanh(e["a"] @ e["A"] @ e["b"])       # noqa: E731
    want = finite_jacobian(lambda e: finite_jacobian(ref, e, "A", 1e-5), env, "A", 1e-4)
    got = eval(d.numpy, {"np": np, **env})                  # noqa: S307
    assert np.allclose(got, want, atol=1e-4)


def test_high_powers_are_no_false_alarm():
    """‖x‖^22: plain central differences miss by more than the tolerance; the guard and check
    retry with Richardson's extrapolation before calling anything wrong."""
    assert derive("‖A ⊘ (A x) - y 1^T‖^2 + lambda ‖x‖^22", "A").numpy     # y on each column, said
    assert check("‖x‖^22", "x", "22 ‖x‖^20 x").correct
    assert not check("‖x‖^22", "x", "21 ‖x‖^20 x").correct


def test_a_variable_named_np_does_not_hide_numpy():
    from indexcalc import verify as V
    d = derive("np^T A np", "np")
    assert "np_" in d.numpy
    point = V.sample(d.tree, d.variables, np.random.default_rng(4))
    want = V.jacobian(V.value_fn(d.tree, point), point, "np")
    assert V.close(V.eval_code(d.numpy, point), want)


def _step(d, rule):
    return next(s for s in d.results[0].steps if s.rule == rule)


def test_a_sum_raised_to_a_power_is_bracketed_in_the_steps():
    """Σ_p x_p^2^2 reads as Σ_p x_p^4; (x^T x)^2 is (Σ_p x_p^2)^2."""
    d = derive("(x^T x)^2", "x")
    assert _step(d, "expand").text.endswith("(Σ_p x_p^2)^2")
    assert r"\left(\sum_{p=1}^{n} x_{p}^{2}\right)^{2}" in _step(d, "expand").latex


def test_the_chain_rule_names_its_summation_index_apart_from_the_functions():
    """tanh(Σ_s W_sr X_qs): the derivative's Σ gets a name of its own, not a second s."""
    import re
    d = derive("sum(tanh(X W))", "W")
    text = _step(d, "differentiate").text
    assert "tanh(Σ_" in text
    for term in re.split(r" [+-] (?=Σ)", text):               # each term names its own sums
        inner = set(re.findall(r"tanh\(Σ_(\w)", term))
        outer = set("".join(re.findall(r"Σ_([\w,]+) ", term.replace("tanh(Σ_", "tanh("))).replace(",", ""))
        assert not inner & outer, text


@pytest.mark.parametrize("expr,wrt,closed", [
    ("sum(tanh(X W))", "W", "X^T (1 - tanh(X W) .^ 2)"),          # not (tanh(W^T X^T) .^ 2)^T
    ("sum(exp(X W))", "W", "X^T exp(X W)"),
])
def test_transposes_go_into_elementwise_functions_when_that_saves_one(expr, wrt, closed):
    from indexcalc import verify as V
    from indexcalc.evaluate import evaluate
    d = derive(expr, wrt)
    assert d.closed_form == closed
    back, _ = infer(parse(closed), {n: v.shape for n, v in d.variables.items()}, expect=d.results[0].closed.shape)
    point = V.sample(d.tree, d.variables, np.random.default_rng(3))
    want = V.jacobian(V.value_fn(d.tree, point), point, wrt)
    assert V.close(np.reshape(evaluate(back, point.env2d, point.sizes), want.shape), want)


@pytest.mark.parametrize("expr,wrt,where", [
    ("2 log(sum(exp(A^-1 a)))", "a", "A: p×p, a: p"),
    ("exp(a^T x) cos(b^T x)", "x", None),
    ("sum(tanh(X W))", "W", None),
])
def test_sums_inside_functions_are_named_canonically(expr, wrt, where):
    """Sifting a sifted form changes no name at all, not even of a Σ inside exp(...)."""
    r = derive(expr, wrt, where).results[0]
    assert r.resimplify()[0] == r.index_form


def test_a_generic_function_named_like_a_size_is_the_function_in_the_guard():
    """`m(...)` (a generic function) beside the size m: the guard bound the size, not the test
    function, to `m` when it ran the `function` field's code (exit 3, from the long fuzz run)."""
    d = derive("sum(m(X W))", "W", "X: m×n, W: n×k")
    r = d.results[0]
    assert "m'" in r.closed_form or "m_prime" in r.numpy
    assert main(["derive", "su*m((X W) .^ 2)", "--wrt", "su"]) == 0


@pytest.mark.parametrize("expr", ["sum(softmax(a))", "‖a / ‖a‖‖"])
def test_a_hessian_that_is_zero_by_cancellation_is_not_called_a_bug(expr):
    """The gradient is 0 by cancellation of terms of size 1; its code's rounding (1e-17) was
    measured against a floor of the gradient's own (zero) size: exit 3, or 'do not settle'
    (long random run). The floor is now the magnitude of the gradient's terms."""
    import numpy as np
    from indexcalc import verify as V
    d = derive(expr, "a", "a: n", order=2)
    r = d.results[0]
    point = V.sample(d.tree, d.variables, np.random.default_rng(5))
    assert np.abs(V.eval_code(r.numpy, point)).max() < 1e-12       # the Hessian is zero


def test_another_commands_option_is_an_expression_here():
    """`--params` is codegen's option; in derive it is the expression -(-params), as the API
    reads it (argparse said 'the following arguments are required', found by the long fuzz run)."""
    assert main(["derive", "--params", "--wrt", "params"]) == 0


def test_the_rounding_floor_of_gelu_counts_its_terms():
    """gelu(u) = u Φ(u) with Φ = (1 + erf(u/√2)) / 2: far left 1 + erf cancels to exactly 0, and
    the derivative's code gives 1e-101 there; the guard's floor (magnitude) must be of the size
    of the terms, |u|, not of the value 0 (gelu(A^-1 a) by A was an exit 3 in the long profile)."""
    from indexcalc.magnitude import magnitude
    from indexcalc.shapes import parse_decls
    typed, _ = infer(parse("gelu(x)"), parse_decls("x: n"))
    mag = magnitude(typed, {"x": np.array([[-30.0], [1.0]])}, {"n": 2})
    assert mag[0, 0] >= 30 and mag[1, 0] >= 0.8
