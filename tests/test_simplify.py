"""The closed form a TA would write (SPEC §6, indexcalc/simplify.py): each rule with a numeric
test (the rewritten tree has the same value at random points), derivatives whose closed forms
the rules shorten, and the properties: simplify never changes a value and never makes a form
longer, over random expressions of the whole language."""
import numpy as np
import pytest
from hypothesis import given

from indexcalc import derive, parse
from indexcalc import nodes as N
from indexcalc import simplify as S
from indexcalc.errors import IndexCalcError
from indexcalc.evaluate import evaluate
from indexcalc.printing.text import to_text
from indexcalc.shapes import infer, parse_decls

from .strategies import SIZES, cases

n = ("n", "n")
X = N.Sym("X", n)
A = N.Sym("A", ("n", "m"))
u = N.Sym("u", ("n", 1))
XT = N.Transpose(X, n)


def inv(a):
    return N.Inverse(a, a.shape)


def T(a):
    return N.Transpose(a, (a.shape[1], a.shape[0]))


def mm(*parts):
    node = parts[0]
    for p in parts[1:]:
        node = N.MatMul(node, p, (node.shape[0], p.shape[1]))
    return node


def exp(a):
    return N.Func("exp", a, a.shape)


ONES_T = N.Transpose(N.Ones(("n", 1)), (1, "n"))
_ONES_MN = N.MatMul(N.Ones(("n", 1)), N.Transpose(N.Ones(("m", 1)), (1, "m")), ("n", "m"))   # 1 1ᵀ, n×m
TOTAL = N.MatMul(ONES_T, exp(u), N.SCALAR)


def values(rng):
    return {"X": rng.normal(size=(3, 3)) * 0.3 + 2 * np.eye(3), "A": rng.normal(size=(3, 2)),
            "u": rng.normal(size=(3, 1)), "a": rng.normal(size=(1, 1)), "c": rng.normal(size=(1, 1)), "Y": rng.normal(size=(3, 3)) * 0.3 + 2 * np.eye(3)}


SIZES_N = {"n": 3, "m": 2}

# (rule, tree before, text after)
RULES = [
    ("double transpose", T(T(A)), "A"),
    ("double inverse", inv(inv(X)), "X"),
    ("a minus joins the number of a ones vector", N.Neg(N.Div(N.Ones(("n", 1)), N.num(2), ("n", 1)), ("n", 1)), "(-1/2) 1"),
    ("double negation, after a sign out of a product", N.Neg(mm(N.Neg(N.Add(X, XT, n), n), exp(A)), A.shape),
     "(X + X^T) exp(A)"),
    ("inverse transposed twice", T(inv(T(inv(X)))), "X"),
    ("symmetric AᵀA", T(inv(mm(T(A), A))), "(A^T A)^-1"),
    ("symmetric AAᵀ", T(mm(A, T(A))), "A A^T"),
    ("powers of X along a product", mm(XT, T(inv(N.MatPow(X, 5, n))), N.MatPow(XT, 3, n)), "X^-T"),
    ("a power cancels to nothing", mm(T(inv(X)), T(inv(inv(X))), T(inv(X))), "X^-T"),
    ("like terms", N.Add(mm(A, T(A)), mm(A, T(A)), n), "2 A A^T"),
    ("like terms cancel partly", N.Sub(N.ScalarMul(N.num(3), X, n), X, n), "2 X"),
    # d tr(X^-1 A X) / dX once X^-T X^T = I: it printed (A^T - A^T) X^-T
    ("like terms cancel wholly", N.Sub(mm(T(A), T(inv(X))), mm(T(A), T(inv(X)), XT, T(inv(X))), ("m", "n")), "0 1 1^T"),
    ("a number out of a product", mm(A, N.ScalarMul(N.num(2), T(A), ("m", "n"))), "2 A A^T"),
    ("exp over 1 + exp is sigmoid", N.HadDiv(exp(u), N.Add(N.Ones(("n", 1)), exp(u), ("n", 1)), ("n", 1)),
     "sigmoid(u)"),
    ("exp over its total is softmax", N.Div(exp(u), TOTAL, ("n", 1)), "softmax(u)"),
    ("each exp of a product over the total squared", N.Div(mm(exp(u), T(exp(u))), N.Power(TOTAL, N.num(2), N.SCALAR), n),
     "softmax(u) softmax(u)^T"),
    ("diag of exp over the total", N.Div(N.DiagMat(exp(u), n), TOTAL, n), "diag(softmax(u))"),
    ("the inverse of a product cancels its first factor", mm(inv(mm(X, XT)), X), "X^-T"),
    ("the inverse of a product cancels its last factor", mm(X, inv(mm(XT, X))), "X^-T"),
    ("an inverse transposed cancels too", mm(X, T(inv(mm(XT, mm(X, N.Sym("Y", n)))))), "(Y^T X^T)^-1"),
    ("a total over the size is a mean", N.Div(N.MatMul(ONES_T, u, N.SCALAR), N.Size("n"), N.SCALAR), "mean(u)"),
    ("a total times a matrix over the size and more", N.Div(N.ScalarMul(N.MatMul(ONES_T, u, N.SCALAR), X, n),
     N.ScalarMul(N.Size("n"), N.Func("exp", N.Sym("a", N.SCALAR), N.SCALAR), N.SCALAR), n), "mean(u) X / exp(a)"),
    ("Hadamard factors: variables, functions, sums", N.Hadamard(N.Hadamard(N.Sub(N.Ones(("n", 1)), exp(u), ("n", 1)), exp(u), ("n", 1)), u, ("n", 1)),
     "u ∘ exp(u) ∘ (1 - exp(u))"),
    ("a factor common to Hadamard products comes out", N.Add(exp(u), N.Hadamard(N.Hadamard(u, exp(u), ("n", 1)),
     N.Sub(N.Ones(("n", 1)), exp(u), ("n", 1)), ("n", 1)), ("n", 1)), "exp(u) ∘ (1 + u ∘ (1 - exp(u)))"),
    ("common factors with a coefficient", N.Sub(N.Hadamard(X, exp(X), n), N.ScalarMul(N.num(2), N.Hadamard(exp(X), XT, n), n), n),
     "exp(X) ∘ (X - 2 X^T)"),
    ("a factor ending both products", N.Sub(mm(X, exp(A)), N.ScalarMul(N.num(2), mm(XT, exp(A)), A.shape), A.shape),
     "(X - 2 X^T) exp(A)"),
    ("a factor beginning both products", N.Add(mm(exp(T(A)), X), N.Neg(mm(exp(T(A)), XT), ("m", "n")), ("m", "n")),
     "exp(A^T) (X - X^T)"),
    ("a centred mean is zero, and a term times zero goes", N.Sub(X, N.ScalarMul(N.Mean(N.Sub(u, N.ScalarMul(N.Mean(u), N.Ones(("n", 1)), ("n", 1)), ("n", 1))), XT, n), n), "X"),
    ("rows less their means sum to zero", N.Add(N.MatMul(N.Sub(A, N.Div(mm(A, N.Ones(("m", 1)), T(N.Ones(("m", 1)))), N.Size("m"), A.shape), A.shape),
     N.Ones(("m", 1)), ("n", 1)), u, ("n", 1)), "u"),
    ("a leading minus", N.Add(N.Neg(exp(X), n), X, n), "X - exp(X)"),
    ("a common divisor", N.Sub(N.Div(X, exp(N.Sym("a", N.SCALAR)), n), N.Div(XT, exp(N.Sym("a", N.SCALAR)), n), n),
     "(X - X^T) / exp(a)"),
    ("transposes of a sum", N.Sub(T(exp(A)), T(N.ScalarMul(N.num(2), A, A.shape)), ("m", "n")), "(exp(A) - 2 A)^T"),
    ("powers of a scalar in a product", N.ScalarMul(N.ScalarMul(N.Size("n"), N.Power(exp(N.Sym("a", N.SCALAR)), N.num(2), N.SCALAR), N.SCALAR),
     exp(N.Sym("a", N.SCALAR)), N.SCALAR), "n exp(a)^3"),
    ("Hadamard of matrices in reading order", N.Hadamard(N.Add(X, XT, n), X, n), "X ∘ (X + X^T)"),
    # σ(v) = exp(v) / (1 + exp(v)) = 1 / ((1 + exp(-v)) exp(v))... read in a chain of ∘ and ⊘
    ("exp(v) in a Hadamard chain over 1 + exp(v)",
     N.Hadamard(N.HadDiv(A, N.Add(_ONES_MN, exp(N.Neg(A, A.shape)), A.shape), A.shape),
                exp(N.Neg(A, A.shape)), A.shape), "A ∘ sigmoid(-A)"),
    ("1 over 1 + exp(v) is sigmoid(-v)", N.HadDiv(u, N.Add(N.Ones(("n", 1)), exp(u), ("n", 1)), ("n", 1)),
     "u ∘ sigmoid(-u)"),
    ("a scalar over (1 + exp(v)) exp(-v)", N.Div(u, N.ScalarMul(N.Add(N.num(1), exp(N.Sym("a", N.SCALAR)), N.SCALAR),
     exp(N.Neg(N.Sym("a", N.SCALAR), N.SCALAR)), N.SCALAR), ("n", 1)), "sigmoid(a) u"),
    ("rows of exp over their totals are softmax",
     mm(N.DiagMat(N.HadPow(mm(exp(A), N.Ones(("m", 1))), N.num(-1), ("n", 1)), n), exp(A)), "softmax(A)"),
    ("a vector over the rows' totals on the diagonal",
     mm(N.DiagMat(N.HadDiv(u, mm(exp(A), N.Ones(("m", 1))), ("n", 1)), n), exp(A)), "diag(u) softmax(A)"),
    ("like factors of a Hadamard chain", N.HadDiv(N.Hadamard(X, N.HadPow(exp(X), N.num(2), n), n), exp(X), n),
     "X ∘ exp(X)"),
    ("a factor over itself is the ones", N.Hadamard(N.HadDiv(u, u, ("n", 1)), u, ("n", 1)), "u"),
    ("rows of G ∘ exp over their totals", mm(N.DiagMat(N.HadPow(mm(exp(A), N.Ones(("m", 1))), N.num(-1), ("n", 1)), n),
     N.Hadamard(A, exp(A), A.shape)), "A ∘ softmax(A)"),
    ("exp(a) u over 1 + exp(a)", N.Div(N.ScalarMul(exp(N.Sym("a", N.SCALAR)), u, ("n", 1)),
     N.Add(N.num(1), exp(N.Sym("a", N.SCALAR)), N.SCALAR), ("n", 1)), "sigmoid(a) u"),
    ("a scalar factor above and below", N.Div(N.ScalarMul(N.Sym("c", N.SCALAR), N.ScalarMul(
        N.Func("sigmoid", N.Sym("a", N.SCALAR), N.SCALAR), u, ("n", 1)), ("n", 1)),
        N.Func("sigmoid", N.Sym("a", N.SCALAR), N.SCALAR), ("n", 1)), "c u"),
    ("a scalar over itself", N.Div(N.Func("exp", N.Sym("a", N.SCALAR), N.SCALAR),
                                   N.Func("exp", N.Sym("a", N.SCALAR), N.SCALAR), N.SCALAR), "1"),
    ("-(c exp(a) u) over (1 + exp(a)) exp(a): the sign in front, exp(a) cancelled",
     N.Div(N.Neg(N.ScalarMul(N.ScalarMul(N.Sym("c", N.SCALAR), exp(N.Sym("a", N.SCALAR)), N.SCALAR), u, ("n", 1)), ("n", 1)),
           N.ScalarMul(N.Add(N.num(1), exp(N.Sym("a", N.SCALAR)), N.SCALAR), exp(N.Sym("a", N.SCALAR)), N.SCALAR), ("n", 1)),
     "-sigmoid(-a) c u"),
]


@pytest.mark.parametrize("name, before, after", RULES, ids=[r[0] for r in RULES])
def test_each_rule_keeps_the_value(name, before, after):
    out = S.rewrite(before)
    assert to_text(out) == after
    assert S.length(out) <= S.length(before)
    for seed in range(3):
        env = values(np.random.default_rng(seed))
        want, got = evaluate(before, env, SIZES_N), evaluate(out, env, SIZES_N)
        assert got.shape == want.shape and np.allclose(got, want, rtol=1e-10, atol=1e-12), name


def test_a_rule_that_would_change_a_value_is_not_applied():
    """Xᵀ is not X, (X + Y)ᵀ of unrelated matrices is not symmetric; exp(u) / (1ᵀ exp(v)) is
    not softmax; nothing rewrites these."""
    Y = N.Sym("Y", n)
    v = N.Sym("v", ("n", 1))
    total_by_m = N.Div(N.MatMul(ONES_T, u, N.SCALAR), N.Size("m"), N.SCALAR)     # u has n entries, not m
    for tree in (total_by_m, XT, T(N.Add(X, Y, n)), N.Div(exp(u), N.MatMul(ONES_T, exp(v), N.SCALAR), ("n", 1)),
                 mm(XT, X), mm(inv(mm(A, T(A))), A)):          # (A Aᵀ)⁻¹ A of a non-square A stays
        assert S.rewrite(tree) == tree
    longer = N.Add(u, N.Hadamard(u, exp(u), ("n", 1)), ("n", 1))      # u ∘ (1 + exp(u)) is longer
    assert S.rewrite(longer) == longer


# derivatives whose closed forms the rules make the textbook's (the list)
NAMED = [
    ("det(X^5)", "X", None, "5 det(X^5) X^-T"),
    ("det(X^-1)", "X", None, "-det(X^-1) X^-T"),
    ("log(abs(det(X)))", "X", None, "X^-T"),                      # the Cookbook's (57)
    ("log(det(X^T X))", "X", "X: n×m", "2 X (X^T X)^-1"),
    ("log(det(X X^T))", "X", "X: n×m", "2 (X X^T)^-1 X"),             # sizes drawn with m ≥ n
    ("log(det(X X^T))", "X", "X: n×n", "2 X^-T"),
    ("x^T A x / 2", "x", None, "(A + A^T) x / 2"),
    ("-(t^T log(sigmoid(X w)) + (1 - t)^T log(1 - sigmoid(X w)))", "w", "X: S×M, w: M, t: S",
     "X^T (sigmoid(X w) - t)"),
    ("sum(log(1 + exp(x)))", "x", None, "sigmoid(x)"),
    # log-softmax and log-sum-exp of rows: softmax, not exp over the rows' totals
    ("-sum(T ∘ log_softmax(X W)) / S", "W", "X: S×M, W: M×C, T: S×C", "X^T (diag(T 1) softmax(X W) - T) / S"),
    ("sum(logsumexp(X W))", "W", "X: S×M, W: M×C", "X^T softmax(X W)"),
    # the logistic loss with labels ±1, by w: its σ, not exp over 1 + exp
    ("log(1 + exp(-y w^T x))", "w", "y: scalar", "-sigmoid(-y (w^T x)) y x"),
    ("sum(log(1 + exp(-y ∘ (X w))))", "w", None, "-X^T (y ∘ sigmoid(-(y ∘ (X w))))"),
    ("log(1 + exp(w^T x))", "w", None, "sigmoid(w^T x) x"),
    # with a bias, and with the label read as a scalar (SPEC §1.1): the same forms
    ("log(1 + exp(-y (w^T x + b)))", "w", None, "-sigmoid(-y (w^T x + b)) y x"),
    ("log(1 + exp(-y (w^T x + b)))", "b", None, "-sigmoid(-y (w^T x + b)) y"),
    # binary cross-entropy of one example: the terms' σ(Σ_p w_p x_p) are one, so σ - y
    ("-y log(sigmoid(w^T x)) - (1 - y) log(1 - sigmoid(w^T x))", "w", None, "(sigmoid(w^T x) - y) x"),
    ("log(sum(exp(x)))", "x", None, "softmax(x)"),
    # a Gaussian's exp(-u) stays in front, not 1 / exp(u) underneath
    ("exp(-x^T x / 2)", "x", None, "-exp(-(x^T x / 2)) x"),
    ("sum(-(a / 2))", "a", "a: m", "(-1/2) 1"),
    # a unit factor and a number divisor come out of a product of scalars
    ("alpha / beta / s", "s", "alpha: scalar, beta: scalar, s: scalar", "-alpha / (beta s^2)"),     # was -1 alpha
    ("det(X)^(1/3)", "X", None, "det(X)^(1/3) X^-T / 3"),                                          # was (X^-T / 3)        # -((1/2) 1) read back as (-1/2) 1
    # found by the long random run: it printed -(-(s^T 1^T + C^T) B^T)
    ("tr(((A + 1 r) (-B)) (-(C + 1 s)))", "A", "A: m×n, r: 1×n, B: n×m, C: m×m, s: 1×m", "(s^T 1^T + C^T) B^T"),
]


@pytest.mark.parametrize("expr, wrt, where, want", NAMED, ids=[c[0] for c in NAMED])
def test_named_derivatives_have_the_textbook_closed_form(expr, wrt, where, want):
    assert derive(expr, wrt, where).results[0].closed_form == want


def _sig_sig_minus(z):
    """σ(z) (1 - σ(z)) = σ(z) σ(-z), written here with logaddexp: finite for every z."""
    return np.exp(-np.logaddexp(0, -z) - np.logaddexp(0, z))


@pytest.mark.parametrize("expr, want, hessian", [
    ("sum(log(1 + exp(X w)))", "X^T diag(sigmoid(X w) ∘ (1 - sigmoid(X w))) X",
     lambda e: e["X"].T @ np.diag(_sig_sig_minus(e["X"] @ e["w"])) @ e["X"]),
    ("log(1 + exp(w^T x))", "sigmoid(w^T x) (1 - sigmoid(w^T x)) x x^T",
     lambda e: _sig_sig_minus(e["w"] @ e["x"]) * np.outer(e["x"], e["x"])),
])
def test_the_logistic_hessian_is_written_with_sigmoid_and_stays_finite(expr, want, hessian):
    """The Hessian of the logistic loss is X^T diag(σ ∘ (1 - σ)) X, as Newton's method is taught:
    it was X^T (diag(σ) - diag((1 + exp(X w)) .^ -2 ∘ exp(2 X w))) X, and the scalar one
    exp(z) x x^T / (1 + exp(z))^2, which is inf / inf = nan at scores past 709."""
    r = derive(expr, "w", order=2).results[0]
    assert r.closed_form == want
    rng = np.random.default_rng(3)
    for scale in (1.0, 800.0):                       # an ordinary point, then scores beyond exp's range
        env = {"X": rng.uniform(0.5, 1.5, size=(4, 3)), "x": rng.uniform(0.5, 1.5, size=3), "w": scale * rng.uniform(0.5, 1.5, size=3)}
        with np.errstate(all="ignore"):
            got = np.asarray(eval(r.numpy, {"np": np, **env}), dtype=float)     # noqa: S307
        assert np.all(np.isfinite(got)) and np.allclose(got, hessian(env), rtol=1e-9, atol=1e-12), (scale, got)


@pytest.mark.parametrize("equation, want", [
    ("Y_ij = exp(X_ij) / Σ_k exp(X_ik)", "dY ∘ softmax(X) - diag((dY ∘ softmax(X)) 1) softmax(X)"),
    ("Y = softmax(X)", "dY ∘ softmax(X) - diag((dY ∘ softmax(X)) 1) softmax(X)"),
    ("L = -Σ_{i,j} T_ij log(exp(X_ij) / Σ_k exp(X_ik)) / S", "(diag(T 1) softmax(X) - T) / S"),
    ("Y = log_softmax(X)", "dY - diag(dY 1) softmax(X)"),
])
def test_softmax_in_either_notation_has_one_closed_form(equation, want):
    """The index form's exp over the rows' totals is softmax, as the matrix language's is."""
    from indexcalc import backprop
    assert backprop(equation, "X", "X: S×C, T: S×C").results[0].closed_form == want


def test_log_sum_exp_hessian_is_in_softmax():
    r = derive("log(sum(exp(x)))", "x", order=2).results[0]
    assert r.closed_form == "diag(softmax(x)) - softmax(x) softmax(x)^T"


def test_kl_divergence_by_p_is_short():
    r = derive("p^T log(p ⊘ q)", "p", "p: n, q: n").results[0]
    assert len(r.closed_form) <= len("log(p ⊘ q) + (1^T)^T")


@given(cases())
def test_simplify_never_changes_a_value_nor_lengthens(case):
    try:
        tree, _ = infer(parse(case.text), parse_decls(case.where))
    except IndexCalcError:
        return
    out = S.simplify(tree)
    assert S.length(out) <= S.length(tree)
    env = case.draw(np.random.default_rng(0))
    from indexcalc.evaluate import to_2d
    _, variables = infer(parse(case.text), parse_decls(case.where))
    env2d = {k: to_2d(v, variables[k]) for k, v in env.items() if k in variables}
    with np.errstate(all="ignore"):
        try:
            want = evaluate(tree, env2d, SIZES)
        except (np.linalg.LinAlgError, ValueError):
            return
        got = evaluate(S.rewrite(tree), env2d, SIZES)
    if np.all(np.isfinite(want)):
        assert np.allclose(got, want, rtol=1e-8, atol=1e-10), f"{to_text(tree)} -> {to_text(S.rewrite(tree))}"


def test_a_factor_common_to_hadamard_products_comes_out():
    """fold's tidying: dY ∘ σ + X ∘ dY ∘ σ ∘ (1 - σ) = dY ∘ σ ∘ (1 + X ∘ (1 - σ)), every common
    factor out (the side left with none is the ones), the value kept."""
    from indexcalc import fold
    s = N.Func("sigmoid", X, n)
    dY = N.Sym("dY", n)
    ones = N.MatMul(N.Ones(("n", 1)), N.Transpose(N.Ones(("n", 1)), (1, "n")), n)
    before = N.Add(N.Hadamard(dY, s, n), N.Hadamard(N.Hadamard(N.Hadamard(X, dY, n), s, n), N.Sub(ones, s, n), n), n)
    out = fold.tidy(before)
    assert to_text(out) == "dY ∘ sigmoid(X) ∘ (1 + X ∘ (1 - sigmoid(X)))"
    for seed in range(3):
        env = values(np.random.default_rng(seed))
        env["dY"] = np.random.default_rng(seed + 7).normal(size=(3, 3))
        assert np.allclose(evaluate(out, env, SIZES_N), evaluate(before, env, SIZES_N), rtol=1e-12)


@pytest.mark.parametrize("expr,wrt,shape,closed", [
    ("sum(exp(X) ⊘ (exp(X) 1 1^T))", "X", (4, 3), "0 1 1^T"),      # each row sums to 1: the sum is S
    ("1^T (1 ⊘ x) - sum(x .^ -1)", "x", (4,), "0 1"),
])
def test_one_over_u_and_u_to_the_minus_one_are_like_terms(expr, wrt, shape, closed):
    """1 ⊘ u and u .^ -1 cancel as like terms, and a linear map of 0 (diag) is 0: the zero of
    the variable's shape, printed as NumPy zeros."""
    from .references import run_code
    r = derive(expr, wrt).results[0]
    assert r.closed_form == closed
    value = run_code(r.numpy, {wrt: np.random.default_rng(0).uniform(0.5, 2, size=shape)})
    assert value.shape == shape and not value.any()


@pytest.mark.parametrize("expr,closed", [
    ("sum(x ⊘ (1^T x))", "0 1"),                                   # the entries of x / sum(x) sum to 1
    ("a^T x / (1^T x)", "a / (1^T x) - (a^T x) 1 / (1^T x)^2"),
])
def test_a_power_above_and_below_cancels_to_the_lesser(expr, closed):
    """f^j over f^k keeps f^(j - k) above or below ((1^T x) 1 / (1^T x)^2 is 1 / (1^T x)), so
    like terms meet; values against NumPy."""
    from .references import run_code
    rng = np.random.default_rng(2)
    x, a = rng.uniform(0.5, 2, size=4), rng.normal(size=4)
    r = derive(expr, "x").results[0]
    assert r.closed_form == closed
    s = x.sum()
    want = np.zeros(4) if "⊘" in expr else a / s - (a @ x) / s ** 2
    assert np.allclose(run_code(r.numpy, {"x": x, "a": a}), want)


def test_a_product_of_inverses_is_the_inverse_s_power():
    """X^-T X^-T is (X^-T)^2, not ((X^T)^2)^-1 (longer, so the product stayed unmerged);
    the value against NumPy."""
    from .references import run_code
    r = derive("tr(X^-1)^2", "X").results[0]
    assert r.closed_form == "-2 tr(X^-1) (X^-T)^2"
    X = np.eye(3) * 2 + np.random.default_rng(4).normal(size=(3, 3)) * 0.3
    Xi = np.linalg.inv(X)
    assert np.allclose(run_code(r.numpy, {"X": X}), -2 * np.trace(Xi) * (Xi.T @ Xi.T))


def test_a_squared_denominator_stays_a_square():
    """∂/∂x xᵀx / (1 + xᵀx): SymPy's simplify, allowed a longer result, expanded (1 + xᵀx)^2 into
    1 + (x^T x)^2 + 2 (x^T x); a coefficient is simplified only where it gets no longer."""
    r = derive("x^T x / (1 + x^T x)", "x", "x: n").results[0]
    assert "(1 + x^T x)^2" in r.closed_form and "(x^T x)^2" not in r.closed_form, r.closed_form
    x = np.array([0.3, -1.2, 0.7])
    assert np.allclose(eval(r.numpy, {"np": np, "x": x}), 2 * x / (1 + x @ x) ** 2)  # noqa: S307


def test_a_decimal_both_terms_carry_goes_in_front():
    """0.5 x^T A x - b^T x gave (0.5 A + 0.5 A^T) x - b: SPEC §6 asks (A + A^T) x / 2, not
    (A / 2 + A^T / 2) x, and a decimal likewise, kept as written."""
    r = derive("0.5 x^T A x - b^T x", "x", "x: n, A: n×n, b: n").results[0]
    assert r.closed_form == "0.5 (A + A^T) x - b"
    A, x, b = np.arange(9.0).reshape(3, 3), np.array([1.0, -2.0, 0.5]), np.ones(3)
    assert np.allclose(eval(r.numpy, {"np": np, "A": A, "x": x, "b": b}), 0.5 * (A + A.T) @ x - b)  # noqa: S307
