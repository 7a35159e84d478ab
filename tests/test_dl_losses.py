"""Deep-learning losses and layers as a course or a paper writes them: each derivative's NumPy
code against central differences of the loss written here by hand (independent of indexcalc)."""
import numpy as np
import pytest

from indexcalc import derive

from .conftest import finite_jacobian

LOSSES = [
    # expression, wrt, where, shapes, the loss by hand
    # the log-cosh loss (cosh and sinh were unknown functions)
    ("sum(log(cosh(X w - y)))", "w", "X: S×M, w: M, y: S", {"X": (5, 3), "w": (3,), "y": (5,)},
     lambda e: np.sum(np.log(np.cosh(e["X"] @ e["w"] - e["y"])))),
    (r"\frac{1}{S} \sum(\log\cosh(X w - y))", "w", "X: S×M, w: M, y: S", {"X": (5, 3), "w": (3,), "y": (5,)},
     lambda e: np.sum(np.log(np.cosh(e["X"] @ e["w"] - e["y"]))) / 5),
    ("sum(sinh(X W) ∘ G)", "W", "X: S×M, W: M×N, G: S×N", {"X": (4, 3), "W": (3, 2), "G": (4, 2)},
     lambda e: np.sum(np.sinh(e["X"] @ e["W"]) * e["G"])),
]


@pytest.mark.parametrize("expr,wrt,where,shapes,loss", LOSSES, ids=[c[0] for c in LOSSES])
def test_loss_gradient_against_central_differences(expr, wrt, where, shapes, loss, rng):
    d = derive(expr, wrt, where)
    env = {n: rng.normal(size=s) for n, s in shapes.items()}
    got = np.asarray(eval(d.results[0].numpy, {"np": np, **env}), dtype=float)  # noqa: S307
    want = finite_jacobian(loss, env, wrt)
    assert got.shape == want.shape and np.allclose(got, want, rtol=1e-6, atol=1e-8), d.results[0].closed_form


def test_latex_sum_called_is_the_sum(rng):
    """\\sum(...) (also \\sum (...): TeX drops the space) is the sum of the entries: it became Σ(...),
    an undeclared Σ times the bracket, silently. \\Sigma(x) stays the matrix Σ times x."""
    x = rng.normal(size=4)
    for text in [r"\sum(x .^ 2)", r"\sum \left( x \odot x \right)", r"\sum (x .^ 2)"]:
        d = derive(text, "x")
        assert d.read_as in ("sum(x ∘ x)", "sum(x .^ 2)"), d.read_as
        assert np.allclose(eval(d.results[0].numpy, {"np": np, "x": x}), 2 * x)  # noqa: S307
    S = rng.normal(size=(4, 4))
    d = derive(r"\Sigma(x)", "x", "Sigma: n×n, x: n")
    assert np.allclose(eval(d.results[0].numpy, {"np": np, "x": x, "Sigma": S}), S)  # noqa: S307


def test_capital_greek_called_is_the_capital_letter(rng):
    """\\Sigma(x) and Sigma(x) were read as σ(x), the sigmoid (Sigma lower-cased is sigma):
    the capital is a matrix times the bracket; \\Phi(x) is Φ(x), the normal cdf of GELU's
    x Φ(x) (it was 'unknown function Phi')."""
    from math import erf
    x, S = rng.normal(size=4), rng.normal(size=(4, 4))
    for text in [r"\Sigma(x)", "Sigma(x)"]:
        d = derive(f"sum({text})", "x", "Sigma: n×n, x: n")
        assert np.allclose(eval(d.results[0].numpy, {"np": np, "x": x, "Sigma": S}), S.T @ np.ones(4))  # noqa: S307
    phi = np.exp(-x ** 2 / 2) / np.sqrt(2 * np.pi)
    cdf = 0.5 * (1 + np.vectorize(erf)(x / np.sqrt(2)))
    for text in [r"x^\top \Phi(x)", "x^T Phi(x)"]:
        d = derive(text, "x")
        assert np.allclose(eval(d.results[0].numpy, {"np": np, "x": x}), cdf + x * phi)  # noqa: S307


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


MLP = "X: S×M, W1: M×N, b1: 1×N, W2: N×C, b2: 1×C, T: S×C"
MLP_SHAPES = {"X": (5, 3), "W1": (3, 4), "b1": (1, 4), "W2": (4, 6), "b2": (1, 6), "T": (5, 6)}
SOFTMAX_CE = [
    # the softmax of the log-softmax's gradient was left as exp(Z) over its rows' totals: beside a
    # second diagonal (diag(r .^ -1) diag(T 1) exp(Z)), transposed (exp(Z)^T diag(r .^ -1)), with the
    # row scaling on the other side of a ∘ (through a hidden layer), or bracketed another way
    ("-sum(T ∘ log_softmax(X W + b)) / S", "b", "X: S×M, W: M×C, T: S×C, b: 1×C",
     {"X": (5, 3), "W": (3, 6), "T": (5, 6), "b": (1, 6)},
     lambda e: -np.sum(e["T"] * _log_softmax(e["X"] @ e["W"] + e["b"])) / 5),
    ("-sum(T ∘ log_softmax(O E W))", "E", "O: S×V, E: V×D, W: D×C, T: S×C",
     {"O": (5, 4), "E": (4, 3), "W": (3, 6), "T": (5, 6)},
     lambda e: -np.sum(e["T"] * _log_softmax(e["O"] @ e["E"] @ e["W"]))),
    ("-sum(T ∘ log_softmax(O E E^T))", "E", "O: S×V, E: V×D, T: S×V", {"O": (5, 4), "E": (4, 3), "T": (5, 4)},
     lambda e: -np.sum(e["T"] * _log_softmax(e["O"] @ e["E"] @ e["E"].T))),
    ("-sum(T ∘ log_softmax(relu(X W1 + b1) W2 + b2)) / S", "W1", MLP, MLP_SHAPES,
     lambda e: -np.sum(e["T"] * _log_softmax(np.maximum(e["X"] @ e["W1"] + e["b1"], 0) @ e["W2"] + e["b2"])) / 5),
    ("-sum(T ∘ log_softmax(tanh(X W1 + b1) W2 + b2)) / S", "b1", MLP, MLP_SHAPES,
     lambda e: -np.sum(e["T"] * _log_softmax(np.tanh(e["X"] @ e["W1"] + e["b1"]) @ e["W2"] + e["b2"])) / 5),
]


@pytest.mark.parametrize("expr,wrt,where,shapes,loss", SOFTMAX_CE, ids=[c[0] + " by " + c[1] for c in SOFTMAX_CE])
def test_softmax_cross_entropy_gradient_shows_the_softmax(expr, wrt, where, shapes, loss, rng):
    d = derive(expr, wrt, where)
    r = d.results[0]
    assert "softmax(" in r.closed_form and "exp(" not in r.closed_form, r.closed_form
    env = {n: rng.normal(size=s) for n, s in shapes.items()}
    got = np.asarray(eval(r.numpy, {"np": np, **env}), dtype=float)  # noqa: S307
    want = finite_jacobian(loss, env, wrt)
    assert got.shape == want.shape and np.allclose(got, want, rtol=1e-6, atol=1e-8), r.closed_form


def test_check_of_the_one_hot_cross_entropy_gradient(capsys):
    """(softmax(Z) - T) / S, the textbook gradient, assumes rows of T summing to one; the
    expression does not say so, so the claim is wrong (with T of any sign the derivative is
    (diag(T 1) softmax(Z) - T) / S), and the verdict says under which assumption it is right;
    `check --assume "T 1 = 1"` (it was not an option of check) compares where it holds, the
    expected form written under it."""
    from indexcalc.check import check
    from indexcalc.cli import main
    expr, where = "-sum(T ∘ log(softmax(X W))) / S", "X: S×M, W: M×C, T: S×C"
    v = check(expr, "W", "X^T (softmax(X W) - T) / S", where)
    assert not v.correct and '--assume "T 1 = 1"' in v.reason
    v = check(expr, "W", "X^T (T - softmax(X W)) / S", where)
    assert not v.correct and "--assume" not in v.reason
    assert main(["check", expr, "--wrt", "W", "--answer", "X^T (softmax(X W) - T) / S", "--where", where,
                 "--assume", "T 1 = 1"]) == 0
    assert "RIGHT" in capsys.readouterr().out
    assert main(["check", expr, "--wrt", "W", "--answer", "X^T (T - softmax(X W)) / S", "--where", where,
                 "--assume", "T 1 = 1"]) == 1
    assert "the derivative is X^T (softmax(X W) - T) / S (when T 1 = 1)" in capsys.readouterr().out


NORMS = [
    # LayerNorm and RMSNorm: their row statistics were printed as products with ones over a size
    # (X - X 1 1^T / N, X .^ 2 1 / N); now as the user wrote them, mean(X, 1) and mean(X .^ 2, 1)
    ("Y = (X - mean(X, 1)) ⊘ sqrt(var(X, 1) + 1e-5) ∘ g + b", "X", "X: S×N, g: 1×N, b: 1×N",
     {"X": (4, 5), "g": (1, 5), "b": (1, 5)},
     lambda e: (e["X"] - e["X"].mean(1, keepdims=True)) / np.sqrt(e["X"].var(1, keepdims=True) + 1e-5) * e["g"] + e["b"],
     ["mean(X, 1) 1^T"]),
    ("Y = (X - mean(X, 1)) ⊘ sqrt(var(X, 1) + 1e-5) ∘ g + b", "g", "X: S×N, g: 1×N, b: 1×N",
     {"X": (4, 5), "g": (1, 5), "b": (1, 5)},
     lambda e: (e["X"] - e["X"].mean(1, keepdims=True)) / np.sqrt(e["X"].var(1, keepdims=True) + 1e-5) * e["g"] + e["b"],
     ["X - mean(X, 1) 1^T"]),
    ("Y = X ⊘ sqrt(mean(X .^ 2, 1) + 1e-5) ∘ g", "X", "X: S×N, g: 1×N", {"X": (4, 5), "g": (1, 5)},
     lambda e: e["X"] / np.sqrt((e["X"] ** 2).mean(1, keepdims=True) + 1e-5) * e["g"], ["mean(X .^ 2, 1)"]),
]


@pytest.mark.parametrize("eq,wrt,where,shapes,fwd,shown", NORMS, ids=[c[0] + " by " + c[1] for c in NORMS])
def test_norm_layers_show_their_means(eq, wrt, where, shapes, fwd, shown, rng):
    from indexcalc import backprop
    r = next(r for r in backprop(eq, wrt, where).results if r.wrt == wrt)
    assert all(s in r.closed_form for s in shown) and "1^T / N" not in r.closed_form, r.closed_form
    env = {n: rng.normal(size=s) for n, s in shapes.items()}
    out = fwd(env)
    env["dY"] = rng.normal(size=out.shape)
    got = np.asarray(eval(r.numpy, {"np": np, **env}), dtype=float)  # noqa: S307
    want = finite_jacobian(lambda e: float(np.sum(e["dY"] * fwd(e))), env, wrt)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-7), r.closed_form


def test_layer_norm_of_a_tensor_refused_with_the_way_to_write_it(capsys):
    """X - mean(X, -1) of a B×S×N tensor is NumPy's broadcast of a B×S mean against the last
    axis: refused (exit 2), saying that the axis is dropped and how to write the layer instead;
    the index notation it suggests derives."""
    from indexcalc import backprop
    from indexcalc.cli import main
    assert main(["backprop", "Y = (X - mean(X, -1)) ⊘ sqrt(mean((X - mean(X, -1)) .^ 2, -1) + ε)",
                 "--wrt", "X", "--where", "X: B×S×N, ε: scalar"]) == 2
    err = capsys.readouterr().err
    assert "drop it" in err and "Y[b,i,j] = X[b,i,j] - Σ_k X[b,i,k] / N" in err
    d = backprop("Y[b,i,j] = X[b,i,j] - Σ_k X[b,i,k] / N", "X", "X: B×S×N")
    rng = np.random.default_rng(2)
    env = {"X": rng.normal(size=(2, 3, 4)), "dY": rng.normal(size=(2, 3, 4))}
    got = np.asarray(eval(d.results[0].numpy, {"np": np, **env}), dtype=float)  # noqa: S307
    assert np.allclose(got, env["dY"] - env["dY"].mean(-1, keepdims=True))


def test_squared_error_written_with_a_matrix_power_says_how_to_write_it(capsys):
    """sum((X W - Y)^2) with X W - Y not square: refused (a matrix power), and the message gives
    the entries' square and the Frobenius norm, as it did for a vector only."""
    from indexcalc.cli import main
    assert main(["derive", "sum((X W - Y)^2)", "--wrt", "W", "--where", "X: S×M, W: M×N, Y: S×N"]) == 2
    err = capsys.readouterr().err
    assert "(X W - Y) .^ 2" in err and "‖X W - Y‖_F^2" in err


def test_claim_with_a_generic_function_the_expression_lacks_is_unreadable():
    """φ(X) in a GELU claim (meant as the normal density) is a generic function (SPEC §1): it was
    compared as a test function and the right claim called WRONG with a counterexample. A claim
    can only use the expression's own generic functions (h' of h); the message names normpdf."""
    from indexcalc.check import check
    from indexcalc.errors import IndexCalcError
    with pytest.raises(IndexCalcError, match="normpdf"):
        check("Y = gelu(X)", "X", "dY ∘ (Φ(X) + X ∘ φ(X))", "X: S×C")
    assert check("Y = gelu(X)", "X", "dY ∘ (Φ(X) + X ∘ normpdf(X))", "X: S×C").correct
    assert check("Y = h(X W)", "W", "X^T (dY ∘ h'(X W))", "X: S×M, W: M×N").correct
    assert not check("Y = h(X W)", "W", "X^T (dY ∘ h(X W))", "X: S×M, W: M×N").correct
    with pytest.raises(IndexCalcError, match="g"):
        check("Y = h(X W)", "W", "X^T (dY ∘ g'(X W))", "X: S×M, W: M×N")


ENTRYWISE = [
    # max/min/clip beyond max(X, 0), elu's α, selu: refused as unknown or "max(X, 0) only"; each is
    # read as relu (max(A, B) = B + relu(A - B)), so the guard checks what step 1 shows
    ("sum(min(X, 0) ∘ G)", "X", lambda e: np.minimum(e["X"], 0) * e["G"]),
    ("sum(max(X, 0.01 X) ∘ G)", "X", lambda e: np.maximum(e["X"], 0.01 * e["X"]) * e["G"]),
    ("sum(max(X, G))", "G", lambda e: np.maximum(e["X"], e["G"])),
    ("sum(minimum(X, G) .^ 2 ∘ G)", "X", lambda e: np.minimum(e["X"], e["G"]) ** 2 * e["G"]),
    ("sum(clip(X, -1, 1) ∘ G)", "X", lambda e: np.clip(e["X"], -1, 1) * e["G"]),
    ("sum(clamp(X, a, b) ∘ G)", "X", lambda e: np.clip(e["X"], e["a"], e["b"]) * e["G"]),
    ("sum(elu(X, 0.5) ∘ G)", "X", lambda e: np.where(e["X"] > 0, e["X"], 0.5 * np.expm1(e["X"])) * e["G"]),
    ("sum(elu(X, a) ∘ G)", "a", lambda e: np.where(e["X"] > 0, e["X"], e["a"] * np.expm1(e["X"])) * e["G"]),
    ("sum(selu(X) ∘ G)", "X",
     lambda e: 1.0507009873554805 * np.where(e["X"] > 0, e["X"], 1.6732632423543772 * np.expm1(e["X"])) * e["G"]),
    # PyTorch's activations read as their definitions (they were unknown functions)
    ("sum(Mish(X) ∘ G)", "X", lambda e: e["X"] * np.tanh(np.logaddexp(0, e["X"])) * e["G"]),
    ("sum(ReLU6(X) ∘ G)", "X", lambda e: np.clip(e["X"], 0, 6) * e["G"]),
    ("sum(hardswish(X) ∘ G)", "X", lambda e: e["X"] * np.clip(e["X"] + 3, 0, 6) / 6 * e["G"]),
    ("sum(LogSigmoid(X) ∘ G)", "X", lambda e: -np.logaddexp(0, -e["X"]) * e["G"]),
    ("sum(softsign(X) ∘ G)", "X", lambda e: e["X"] / (1 + np.abs(e["X"])) * e["G"]),
    ("sum(Hardtanh(X) ∘ G)", "X", lambda e: np.clip(e["X"], -1, 1) * e["G"]),
    # L1 weight decay as MatrixCalculus.org spells it (norm1 was unknown; norm2 was known)
    ("a norm1(X) + sum(X ∘ G)", "X", lambda e: e["a"] * np.abs(e["X"]) + e["X"] * e["G"]),
    # the Huber loss as a paper writes it with min, and PPO's clipped objective
    ("sum(0.5 min(abs(X - G), 1) .^ 2 + relu(abs(X - G) - 1))", "X",
     lambda e: np.where(np.abs(e["X"] - e["G"]) < 1, 0.5 * (e["X"] - e["G"]) ** 2, np.abs(e["X"] - e["G"]) - 0.5)),
    ("-sum(min(X ∘ G, clip(X, 1 - a, 1 + a) ∘ G))", "X",
     lambda e: -np.minimum(e["X"] * e["G"], np.clip(e["X"], 1 - e["a"], 1 + e["a"]) * e["G"])),
]


@pytest.mark.parametrize("expr,wrt,loss", ENTRYWISE, ids=[c[0] + " by " + c[1] for c in ENTRYWISE])
def test_entrywise_max_min_clip_and_elu_alpha(expr, wrt, loss, rng):
    where = "X: S×M, G: S×M, a: scalar, b: scalar"
    env = {"X": rng.normal(size=(4, 3)) * 2, "G": rng.normal(size=(4, 3)), "a": 0.3, "b": 1.2}
    d = derive(expr, wrt, where)
    got = np.asarray(eval(d.results[0].numpy, {"np": np, **env}), dtype=float)  # noqa: S307
    want = finite_jacobian(lambda e: float(np.sum(loss(e))), env, wrt)
    assert np.allclose(got, want, rtol=1e-6, atol=1e-8), (d.read_as, d.results[0].closed_form)


def test_max_over_entries_stays_refused():
    from indexcalc.errors import IndexCalcError
    with pytest.raises(IndexCalcError, match="over entries"):
        derive("max(x)", "x")


def test_pi_is_the_number(rng):
    """π (pi, \\pi) undeclared is the number, as GELU's tanh form and the normal density write it:
    it was a scalar variable, so the numpy field needed a value for π and a caller's random π gave
    another function. Step 2 says so; declared, π is a variable again."""
    import math
    x = rng.normal(size=5)
    gelu_tanh = "sum(0.5 x ∘ (1 + tanh(sqrt(2 / π) (x + 0.044715 x .^ 3))))"
    for text in [gelu_tanh, gelu_tanh.replace("π", r"\pi"), gelu_tanh.replace("π", "pi")]:
        d = derive(text, "x")
        assert "π" in d.read_as and set(d.variables.table) == {"x"}, (d.read_as, d.variables.table)
        assert any("read as the number π" in s.text for s in d.results[0].steps)
        got = eval(d.results[0].numpy, {"np": np, "x": x})  # noqa: S307
        want = finite_jacobian(lambda e: np.sum(0.5 * e["x"] * (1 + np.tanh(math.sqrt(2 / math.pi) * (e["x"] + 0.044715 * e["x"] ** 3)))),
                               {"x": x}, "x")
        assert np.allclose(got, want, rtol=1e-6, atol=1e-8) and "sqrt(2 / π)" in d.results[0].closed_form
    d = derive("π x^T x", "π", "π: scalar")
    assert np.allclose(eval(d.results[0].numpy, {"np": np, "x": x, "π": 2.0}), x @ x)  # noqa: S307


@pytest.mark.parametrize("eq,answer,right", [
    ("Y = relu(X)", "dY ∘ (X > 0)", True),          # cs231n's dx = dout * (x > 0): a parse error before
    ("Y = relu(X)", "dY .* (Y >= 0)", False),       # Y >= 0 everywhere: wrong where X < 0
    ("Y = relu(X)", "dY .* (X >= 0)", True),        # differs from X > 0 only where X is 0
    ("Y = relu(X)", "dY ∘ (1 - (X <= 0))", True),
    ("Y = relu(X)", "dY ∘ (0 < Y)", True),
    ("Y = relu(X)", "dY ∘ (X < 0)", False),
    ("Y = leaky_relu(X, 0.01)", "dY ∘ ((X > 0) + 0.01 (X <= 0))", True),
    ("Y = clip(X, -1, 1)", "dY ∘ (X > -1) ∘ (X < 1)", True),
    ("Y = max(X, G)", "dY ∘ (G > X)", False),
])
def test_claims_with_comparisons_as_numpy_computes_them(eq, answer, right):
    """(A > B) is NumPy's 0/1 array, read as step(A - B); (A < B) as step(B - A)."""
    from indexcalc.check import check
    v = check(eq, "X", answer, "X: S×C, G: S×C")
    assert v.correct is right, v.reason


def test_a_comparison_in_an_expression_is_a_step(rng):
    x = rng.normal(size=6)
    d = derive("sum((x > 0) ∘ x .^ 2)", "x")
    assert d.read_as.startswith("sum(step(x)")
    assert np.allclose(eval(d.results[0].numpy, {"np": np, "x": x}), 2 * x * (x > 0))  # noqa: S307


def test_a_greek_letter_is_one_variable_however_spelled(rng):
    """λ, lambda and \\lambda (read lambda) are one letter: --where "λ: n" was not applied to
    \\lambda in the expression (it stayed a scalar, the Jacobian a vector), and λ and \\lambda in
    one weight decay were two variables (the derivative by λ left out one of them)."""
    w, x, lam = rng.normal(size=4), rng.normal(size=4), rng.normal(size=3)
    d = derive(r"\lambda ‖w‖^2 + λ sum(w)", "λ")
    got = eval(d.results[0].numpy, {"np": np, "w": w, "λ": 0.3})  # noqa: S307
    assert np.isclose(got, w @ w + w.sum()), d.results[0].closed_form
    d = derive(r"\lambda w^T x", "w", "λ: n")
    got = eval(d.results[0].numpy, {"np": np, "w": w, "x": x, "λ": lam})  # noqa: S307
    assert np.allclose(got, np.outer(lam, x))
    d = derive("λ ‖w‖^2", "lambda")
    assert d.results[0].wrt == "lambda" and np.isclose(eval(d.results[0].numpy, {"np": np, "w": w}), w @ w)  # noqa: S307


def test_check_crosses_the_kink_of_a_relu_far_from_zero():
    """At points of spread ≤ 2.5, X W + 20 > 0 everywhere: the claim X^T dY for relu(X W + 20)
    (the step left out) agreed at every point and was called RIGHT. One wide point crosses it."""
    from indexcalc.check import check
    where = "X: S×M, W: M×N"
    assert not check("Y = relu(X W + 20)", "W", "X^T dY", where).correct
    assert not check("Y = abs(X W - 20)", "W", "-X^T dY", where).correct
    assert check("Y = relu(X W + 20)", "W", "X^T (dY ∘ (X W + 20 > 0))", where).correct
