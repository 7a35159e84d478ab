"""Numerically sound answers (SPEC §6): the NumPy code of a derivative never loses precision
the user's form did not lose. LayerNorm/BatchNorm backward at large row/column offsets, binary
cross-entropy at logits far beyond ±40, the log-sum-exp Hessian at x = [800, 0, 1], and the
stable forms of log∘sigmoid, log∘softmax, log-sum-exp, softplus — each against a careful
float64 reference written here."""
import numpy as np
import pytest

from indexcalc import backprop, derive

LAYERNORM = "Y = (X - X 1 1^T / N) ⊘ sqrt((X - X 1 1^T / N).^2 1 1^T / N + e 1 1^T)"
BATCHNORM = "Y = (X - 1 1^T X / S) ⊘ sqrt(1 1^T (X - 1 1^T X / S).^2 / S + e 1 1^T)"
BCE = "-(t^T log(sigmoid(X w)) + (1 - t)^T log(1 - sigmoid(X w)))"


def run(code, **env):
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        return eval(code, {"np": np, **env})   # noqa: S307 - indexcalc's own generated code


def rel(got, want):
    return np.max(np.abs(got - want)) / np.max(np.abs(want))


def layernorm_reference(z, dY, e):
    """Row-wise, from the centred data z (X = z + offset exactly)."""
    zc = z - z.mean(axis=1, keepdims=True)
    s = np.sqrt((zc ** 2).mean(axis=1, keepdims=True) + e)
    xh = zc / s
    return (dY - dY.mean(axis=1, keepdims=True) - xh * (dY * xh).mean(axis=1, keepdims=True)) / s


@pytest.fixture(scope="module")
def layernorm_code():
    return backprop(LAYERNORM, "X", "X: S×N, e: scalar").results[0].numpy


@pytest.fixture(scope="module")
def batchnorm_code():
    return backprop(BATCHNORM, "X", "X: S×N, e: scalar").results[0].numpy


@pytest.mark.parametrize("offset", [0.0, 1e4, 1e6])
def test_layernorm_backward_at_large_row_offsets(layernorm_code, offset):
    rng = np.random.default_rng(0)
    z = np.round(rng.normal(size=(4, 6)) * 2 ** 20) / 2 ** 20      # z + offset is exact
    dY, e = rng.normal(size=(4, 6)), 1e-5
    got = run(layernorm_code, X=z + offset, dY=dY, e=e)
    assert rel(got, layernorm_reference(z, dY, e)) <= 1e-8


@pytest.mark.parametrize("offset", [1e4, 1e6])
def test_batchnorm_backward_at_large_column_offsets(batchnorm_code, offset):
    rng = np.random.default_rng(1)
    z = np.round(rng.normal(size=(6, 4)) * 2 ** 20) / 2 ** 20
    dY, e = rng.normal(size=(6, 4)), 1e-5
    got = run(batchnorm_code, X=z + offset, dY=dY, e=e)
    assert rel(got, layernorm_reference(z.T, dY.T, e).T) <= 1e-8


def test_the_variance_stays_centred(layernorm_code):
    """The mechanism: the code squares X minus its mean; it never forms Σ x² - (Σ x)² / N."""
    assert "(X ** 2)" not in layernorm_code


def careful_sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


@pytest.mark.parametrize("logit", [40.0, 125.0, 800.0])
def test_binary_cross_entropy_gradient_far_beyond_40(logit):
    r = derive(BCE, "w", "X: S×M, w: M, t: S").results[0]
    rng = np.random.default_rng(2)
    X = rng.normal(size=(6, 3))
    t = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    for sign in (1, -1):
        w = rng.normal(size=3)
        w *= sign * logit / np.max(np.abs(X @ w))
        want = X.T @ (careful_sigmoid(X @ w) - t)
        assert rel(run(r.numpy, X=X, w=w, t=t), want) <= 1e-8


def test_sigmoid_is_right_in_both_tails():
    r = derive("sum(log(1 + exp(x)))", "x").results[0]          # the gradient is σ(x)
    x = np.array([-40.0, -125.0, 0.0, 40.0, 700.0])
    got = run(r.numpy, x=x)
    assert np.allclose(got, careful_sigmoid(x), rtol=1e-14, atol=0)


def test_log_sum_exp_hessian_at_800_0_1():
    r = derive("log(sum(exp(x)))", "x", order=2).results[0]
    x = np.array([800.0, 0.0, 1.0])
    p = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    got = run(r.numpy, x=x)
    assert np.all(np.isfinite(got)) and np.allclose(got, np.diag(p) - np.outer(p, p), atol=1e-15)


@pytest.mark.parametrize("expr, sign", [("logsumexp(x / t)", -1), ("-log(sum(exp(x / t)))", 1)])
def test_a_temperature_keeps_the_log_sum_exp_gradient_stable(expr, sign):
    """∂/∂t logsumexp(x / t) = -(x^T softmax(x / t)) / t^2: the normaliser stood beside t^2 in the
    divisor (and the numerator behind a minus sign), out of the softmax fold's reach, so the code
    summed exp(x / t) raw and overflowed at x / t = 1600."""
    r = derive(expr, "t", "x: n, t: scalar").results[0]
    x, t = np.array([800.0, 0.0, 1.0]), 0.5
    p = np.exp((x - x.max()) / t) / np.exp((x - x.max()) / t).sum()
    got = run(r.numpy, x=x, t=t)
    assert np.isfinite(got) and np.isclose(got, sign * (x @ p) / t ** 2, rtol=1e-14)


def _row_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("expr, reference", [
    ("sum(logsumexp(X / t))", lambda X, T, t: -np.sum(X * _row_softmax(X / t)) / t ** 2),
    ("sum(log_softmax(X / t) ∘ T)",
     lambda X, T, t: np.sum(T * (-X + np.sum(X * _row_softmax(X / t), axis=1, keepdims=True))) / t ** 2),
])
def test_a_temperature_keeps_the_row_wise_gradient_stable(expr, reference):
    """By a temperature, row by row: the rows' totals of exp(X / t) stood apart from the exp they
    divide (as a vector beside (X ∘ exp(X / t))^T, or as a divisor of its row sums) and the code
    summed exp(X / t) raw: inf / inf at X / t = 1600."""
    r = derive(expr, "t", "X: S×C, T: S×C, t: scalar").results[0]
    X = np.array([[800.0, 0.0, 1.0], [-3.0, 700.0, 2.0]])
    T, t = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]), 0.5
    got = run(r.numpy, X=X, T=T, t=t)
    assert np.isfinite(got) and np.isclose(got, reference(X, T, t), rtol=1e-12), r.closed_form


@pytest.mark.parametrize("expr, reference", [
    ("sum(log(1 + exp(t x)))", lambda x, t: x @ careful_sigmoid(t * x)),
    ("sum(log(1 + exp(x / t)))", lambda x, t: -(x @ careful_sigmoid(x / t)) / t ** 2),
])
def test_a_scale_inside_softplus_keeps_its_gradient_stable(expr, reference):
    """∂/∂t Σ_p log(1 + exp(t x_p)) = x^T σ(t x): it came out (x ∘ σ(-t x))^T exp(t x), the
    sigmoid's two factors on either side of the dot product, and exp(t x) overflowed (inf · 0)."""
    r = derive(expr, "t", "x: n, t: scalar").results[0]
    x, t = np.array([1600.0, -1500.0, 0.5]), 2.0
    assert np.isclose(run(r.numpy, x=x, t=t), reference(x, t), rtol=1e-14)


@pytest.mark.parametrize("expr, reference", [
    ("sum(log(sigmoid(x)))", lambda x: np.sum(-np.logaddexp(0, -x))),
    ("sum(log(1 - sigmoid(x)))", lambda x: np.sum(-np.logaddexp(0, x))),
    ("sum(log(1 + exp(x)))", lambda x: np.sum(np.logaddexp(0, x))),
    ("log(sum(exp(x)))", lambda x: x.max() + np.log(np.sum(np.exp(x - x.max())))),
    ("sum(log(softmax(x)))", lambda x: np.sum(x - x.max() - np.log(np.sum(np.exp(x - x.max()))))),
])
def test_the_value_code_of_logs_is_stable(expr, reference):
    """The code printer's stable forms (what the generated modules' forward passes use)."""
    from indexcalc.parse import parse
    from indexcalc.printing.numpy_code import NumpyPrinter
    from indexcalc.shapes import infer
    tree, variables = infer(parse(expr), {"x": ("n", 1)})
    code = NumpyPrinter(variables).code(tree, "scalar")
    x = np.array([800.0, -800.0, 0.5, 60.0])
    assert np.isclose(run(code, x=x), reference(x), rtol=1e-14)


def test_attention_in_index_notation_at_large_logits():
    """Y_id = Σ_j softmax_j(Σ_e Q_ie K_je / sqrt(D)) V_jd (as exp(...) / Σ_k exp(...) too): the gradient
    by K kept exp(K Q^T / sqrt(D)) (the transposed logits) and (dY ∘ (exp(Q K^T / sqrt(D)) V)) 1 over
    its rows' totals, overflow at logits of a few hundred; now the softmax's textbook form."""
    rng = np.random.default_rng(4)
    Q, K, V, dY = 30 * rng.normal(size=(3, 4)), 30 * rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    Z = Q @ K.T / 2
    S = np.exp(Z - Z.max(axis=1, keepdims=True))
    S /= S.sum(axis=1, keepdims=True)
    G = dY @ V.T
    dZ = S * (G - np.sum(G * S, axis=1, keepdims=True)) / 2
    res = backprop("Y_id = Σ_j softmax_j(Σ_e Q_ie K_je / sqrt(D)) V_jd", "K", "D: scalar").results[0]
    assert "exp(" not in res.closed_form, res.closed_form
    np.testing.assert_allclose(run(res.numpy, Q=Q, K=K, V=V, dY=dY, D=4.0), dZ.T @ Q, rtol=1e-9, atol=1e-12)
