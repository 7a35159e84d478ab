"""Parameter gradients summed over a batch (SPEC §1.2/§1.3, issue 14): a shared parameter's
gradient is one batch's closed form summed over the leading axes, `sum(X^T dY, 0)`, a closed
form that reads back in the matrix language; its NumPy code is one matrix product of the
reshaped batches where it can be.

Every gradient is checked against NumPy written here by hand (np.einsum, loops over the batch),
never against indexcalc's own evaluator.
"""
from __future__ import annotations

import numpy as np
import pytest

from indexcalc.cli import main
from indexcalc.pipeline import backprop, derive

from .references import softmax as _softmax

SIZES = {"B": 2, "H": 3, "S": 4, "D": 3, "E": 5, "K": 6}


def _tanh_by_hand(v):
    X, W, dY = v["X"], v["W"], v["dY"]
    g = np.zeros_like(W)
    for b in range(X.shape[0]):                       # a loop over the batch, as by hand
        g += X[b].T @ (dY[b] * (1 - np.tanh(X[b] @ W) ** 2))
    return g


def _attention_forward(v):
    q, k, val = v["X"] @ v["Wq"], v["X"] @ v["Wk"], v["X"] @ v["Wv"]
    return _softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])) @ val


def _attention_dwv(v):
    """Y_bsj = Σ_t A_bst Σ_d X_btd Wv_dj, so ∂L/∂Wv_dj = Σ_b,s,t A_bst X_btd dY_bsj."""
    q, k = v["X"] @ v["Wq"], v["X"] @ v["Wk"]
    A = _softmax(np.einsum("bse,bte->bst", q, k) / np.sqrt(q.shape[-1]))
    return np.einsum("bst,btd,bsj->dj", A, v["X"], v["dY"])


# label, equation, where, wrt, the closed form expected, the gradient by hand
CASES = [
    ("linear, by W", "Y = X W", "X: B×S×D, W: D×E", "W", "sum(X^T dY, 0)",
     lambda v: np.einsum("bsd,bse->de", v["X"], v["dY"])),
    ("bias as a vector", "Y = X W + b", "X: B×S×D, W: D×E, b: E", "b", "sum(1^T dY, 0)^T",
     lambda v: v["dY"].sum(axis=(0, 1))),
    ("bias as a row", "Y = X W + b", "X: B×S×D, W: D×E, b: 1×E", "b", "sum(1^T dY, 0)",
     lambda v: v["dY"].sum(axis=(0, 1))[None, :]),
    ("W beside a bias", "Y = X W + b", "X: B×S×D, W: D×E, b: E", "W", "sum(X^T dY, 0)",
     lambda v: np.einsum("bsd,bse->de", v["X"], v["dY"])),
    ("tanh layer", "Y = tanh(X W)", "X: B×S×D, W: D×E", "W", "sum(X^T (dY ∘ (1 - tanh(X W) .^ 2)), 0)",
     _tanh_by_hand),
    ("rank 4, W transposed", "Y = X W^T", "X: B×H×S×D, W: E×D", "W", "sum(sum(dY^T X, 1), 0)",
     lambda v: np.einsum("bhse,bhsd->ed", v["dY"], v["X"])),
    ("rank 4 bias", "Y = X W + b", "X: B×H×S×D, W: D×E, b: 1×E", "b", "sum(sum(1^T dY, 1), 0)",
     lambda v: v["dY"].sum(axis=(0, 1, 2))[None, :]),
    ("a query projection", "Q = X Wq", "X: B×S×D, Wq: D×E", "Wq", "sum(X^T dQ, 0)",
     lambda v: np.einsum("bsd,bse->de", v["X"], v["dQ"])),
    ("attention's value projection", "Y = softmax((X Wq)(X Wk)^T / sqrt(E)) (X Wv)",
     "X: B×S×D, Wq: D×E, Wk: D×E, Wv: D×E", "Wv", "sum(X^T softmax(X Wq (X Wk)^T / sqrt(E))^T dY, 0)",
     _attention_dwv),
    ("index notation", "Y[b,s,e] = Σ_d X[b,s,d] W[d,e]", "X: B×S×D, W: D×E", "W", "sum(X^T dY, 0)",
     lambda v: np.einsum("bsd,bse->de", v["X"], v["dY"])),
]


def _values(d, rng):
    values = {}
    for name, v in d.variables.items():
        shape = tuple(SIZES[x] if isinstance(x, str) else x for x in v.array_shape)
        values[name] = rng.normal(size=shape)
    return values


def _run(code, values):
    return np.asarray(eval(code, {"np": np, **SIZES, **values}), dtype=float)  # noqa: S307 - our output


@pytest.mark.parametrize("label, eq, where, wrt, closed, by_hand", CASES, ids=[c[0] for c in CASES])
def test_a_parameter_gradient_summed_over_the_batch(label, eq, where, wrt, closed, by_hand):
    d = backprop(eq, wrt, where)
    r = d.results[0]
    assert r.closed_form == closed, (label, r.closed_form)
    values = _values(d, np.random.default_rng(11))
    want = by_hand(values)
    got = _run(r.numpy, values)
    assert got.shape == want.shape, (label, got.shape, want.shape)
    assert np.allclose(got, want), (label, np.abs(got - want).max())
    assert "np.einsum" not in r.numpy, r.numpy                 # batched @, sums, one reshaped product
    assert any(s.rule == "closed form" and "summed over ax" in s.text for s in r.steps), r.steps


def test_the_closed_form_text_is_a_right_answer_to_check(capsys):
    """Each closed form, typed back as a student's answer, is RIGHT (it reads back in the language)."""
    for label, eq, where, wrt, closed, _ in CASES:
        assert main(["check", eq, "--wrt", wrt, "--answer", closed, "--where", where]) == 0, label
    assert "WRONG" not in capsys.readouterr().out


@pytest.mark.parametrize("answer, right, words", [
    ("sum(X^T dY, 0)", True, "RIGHT"),
    ("sum(X^T dY, -3)", True, "RIGHT"),
    ("X^T dY", False, "shape B×D×E"),
    ("sum(X^T dY, 1)", False, "shape B×E"),
    ("sum(dY^T X, 0)", False, "shape E×D"),
    ("sum(X^T dY, 0) / 2", False, "entry"),
])
def test_check_of_a_batch_sum_claim(answer, right, words, capsys):
    code = main(["check", "Y = X W", "--wrt", "W", "--answer", answer, "--where", "X: B×S×D, W: D×E"])
    out = capsys.readouterr().out
    assert code == (0 if right else 1), out
    assert words in out, out


def test_derive_of_a_scalar_sums_over_the_batch():
    d = derive("sum(tanh(X W))", "W", "X: B×S×D, W: D×E")
    r = d.results[0]
    assert r.closed_form == "sum(X^T (1 - tanh(X W) .^ 2), 0)"
    v = _values(d, np.random.default_rng(2))
    want = np.einsum("bsd,bse->de", v["X"], 1 - np.tanh(v["X"] @ v["W"]) ** 2)
    assert np.allclose(_run(r.numpy, v), want)


def test_the_sum_over_every_batch_axis_is_one_matrix_product():
    r = backprop("Y = X W", "W", "X: B×S×D, W: D×E").results[0]
    assert r.numpy.startswith("X.reshape(-1, ") and ".T @ dY.reshape(-1, " in r.numpy, r.numpy


def test_where_no_closed_form_is_found_the_text_says_so(capsys):
    """Attention's query projection has none here (its row scaling diag(v) A has no spelling on
    tensors); the index form and einsum code are the answer, checked against differences of
    the forward pass by hand."""
    eq, where = "Y = softmax((X Wq)(X Wk)^T / sqrt(E)) (X Wv)", "X: B×S×D, Wq: D×E, Wk: D×E, Wv: D×E"
    assert main(["backprop", eq, "--wrt", "Wq", "--where", where]) == 0
    out = capsys.readouterr().out
    assert "closed form:  none found in the matrix language; the index form is the answer:" in out
    d = backprop(eq, "Wq", where)
    v = _values(d, np.random.default_rng(4))
    got, h = _run(d.results[0].numpy, v), 1e-6
    want = np.zeros_like(v["Wq"])
    for k in np.ndindex(v["Wq"].shape):
        plus, minus = dict(v), dict(v)
        plus["Wq"], minus["Wq"] = v["Wq"].copy(), v["Wq"].copy()
        plus["Wq"][k] += h
        minus["Wq"][k] -= h
        want[k] = np.sum(v["dY"] * (_attention_forward(plus) - _attention_forward(minus))) / (2 * h)
    assert np.allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("eq, where, wrt, closed", [
    ("Y = X W", "X: S×D, W: D×E", "W", "X^T dY"),
    ("Y = X W + b", "X: S×D, W: D×E, b: 1×E", "b", "1^T dY"),
    ("Y = tanh(X W)", "X: S×D, W: D×E", "W", "X^T (dY ∘ (1 - tanh(X W) .^ 2))"),
    ("Y = softmax(Q K^T / sqrt(D)) V", "Q: B×S×D, K: B×S×D, V: B×S×D", "V", "softmax(Q K^T / sqrt(D))^T dY"),
    ("Y = X A", "X: B×S×D, A: D×E", "X", "dY A^T"),
])
def test_rank_2_and_kept_batch_closed_forms_are_unchanged(eq, where, wrt, closed):
    assert backprop(eq, wrt, where).results[0].closed_form == closed


def _tanh_bias_w(v):
    X, W, b, dY = v["X"], v["W"], v["b"], v["dY"]
    g = np.zeros_like(W)
    for n in range(X.shape[0]):
        g += X[n].T @ (dY[n] * (1 - np.tanh(X[n] @ W + b) ** 2))
    return g


@pytest.mark.parametrize("where, wrt, closed, by_hand", [
    ("X: B×S×D, W: D×E, b: E", "W", "sum(X^T (dY ∘ (1 - tanh(1 b^T + X W) .^ 2)), 0)", _tanh_bias_w),
    ("X: B×S×D, W: D×E, b: E", "b", "sum(1^T (dY ∘ (1 - tanh(1 b^T + X W) .^ 2)), 0)^T",
     lambda v: (v["dY"] * (1 - np.tanh(v["X"] @ v["W"] + v["b"]) ** 2)).sum(axis=(0, 1))),
    ("X: B×S×D, W: D×E, b: 1×E", "b", "sum(1^T (dY ∘ (1 - tanh(1 b + X W) .^ 2)), 0)",
     lambda v: (v["dY"] * (1 - np.tanh(v["X"] @ v["W"] + v["b"]) ** 2)).sum(axis=(0, 1))[None, :]),
])
def test_a_bias_inside_a_function_is_shared_by_the_batch(where, wrt, closed, by_hand, capsys):
    """b: E broadcasts along the last axis (NumPy's X @ W + b): one matrix for every batch, as W."""
    d = backprop("Y = tanh(X W + b)", wrt, where)
    r = d.results[0]
    assert r.closed_form == closed
    v = _values(d, np.random.default_rng(5))
    want = by_hand(v)
    got = _run(r.numpy, v)
    assert got.shape == want.shape and np.allclose(got, want)
    assert main(["check", "Y = tanh(X W + b)", "--wrt", wrt, "--answer", closed, "--where", where]) == 0


def test_a_constant_factor_stands_outside_the_sum():
    d = backprop("Y = 3 X W / D", "W", "X: B×S×D, W: D×E")
    r = d.results[0]
    assert r.closed_form == "3 sum(X^T dY, 0) / D"
    v = _values(d, np.random.default_rng(6))
    assert np.allclose(_run(r.numpy, v), 3 * np.einsum("bsd,bse->de", v["X"], v["dY"]) / SIZES["D"])


# ---- --order 2 on tensors: index_pipeline's second derivative, one mechanism ------------------
def _hessian_by_differences(grad, x, h=1e-5):
    """∂grad/∂x by central differences of a gradient written by hand: H[..., k] = ∂g/∂x_k."""
    out = np.zeros(np.shape(grad(x)) + np.shape(x))
    for k in np.ndindex(np.shape(x)):
        xp, xm = x.copy(), x.copy()
        xp[k] += h
        xm[k] -= h
        out[(Ellipsis,) + k] = (grad(xp) - grad(xm)) / (2 * h)
    return out


def test_the_hessian_of_a_batch_sum_has_a_closed_form():
    d = derive("sum((X w) .^ 2)", "w", "X: B×S×D, w: D", order=2)
    r = d.results[0]
    assert r.order == 2 and r.closed_form == "2 sum(X^T X, 0)"
    v = _values(d, np.random.default_rng(8))
    want = np.zeros((SIZES["D"], SIZES["D"]))
    for b in range(SIZES["B"]):                            # Σ_b 2 X_b^T X_b, by hand
        want += 2 * v["X"][b].T @ v["X"][b]
    assert np.allclose(_run(r.numpy, v), want)


@pytest.mark.parametrize("expr, where, grad", [
    ("sum(tanh(X W))", "X: B×S×D, W: D×E",
     lambda v, W: np.einsum("bsd,bse->de", v["X"], 1 - np.tanh(v["X"] @ W) ** 2)),
    ("sum(log_softmax(X W) ∘ C)", "X: B×S×D, W: D×E, C: B×S×E",
     lambda v, W: np.einsum("bsd,bse->de", v["X"],
                            v["C"] - _softmax(v["X"] @ W) * v["C"].sum(axis=-1, keepdims=True))),
])
def test_order_2_on_tensors_agrees_with_differences_of_the_gradient_by_hand(expr, where, grad, capsys):
    """The Hessian by a matrix W (rank 4) of a scalar of batched tensors: its index form and
    einsum code, against central differences of the gradient written here by hand."""
    assert main(["derive", expr, "--wrt", "W", "--where", where, "--order", "2"]) == 0
    out = capsys.readouterr().out
    assert "second derivative" in out and "none found for this rank-4 result" in out
    d = derive(expr, "W", where, order=2)
    r = d.results[0]
    assert r.order == 2 and r.shape == ["D", "E", "D", "E"] and "Σ_p,q" in r.index_form
    v = _values(d, np.random.default_rng(9))
    want = _hessian_by_differences(lambda W: grad(v, W), v["W"])
    got = _run(r.numpy, v)
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-6), np.abs(got - want).max()


@pytest.mark.parametrize("expr, where, words", [
    ("sum(softmax(X) ∘ C)", "X: B×S×N, C: B×S×N", "(B×S×N) would be an array of rank 6"),
    ("tanh(X W)", "X: B×S×D, W: D×E", "the expression (B×S×E) by W would be an array of rank 7"),
])
def test_order_2_beyond_rank_4_is_refused_with_one_sentence(expr, where, words, capsys):
    wrt = "X" if "softmax" in expr else "W"
    assert main(["derive", expr, "--wrt", wrt, "--where", where, "--order", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("indexcalc: error:") and words in err and "Traceback" not in err, err


@pytest.mark.parametrize("expr, closed, by_hand", [
    ("sum(tanh(X W)) + sum(W ∘ W)", "sum(X^T (1 - tanh(X W) .^ 2), 0) + 2 W",
     lambda v: np.einsum("bsd,bse->de", v["X"], 1 - np.tanh(v["X"] @ v["W"]) ** 2) + 2 * v["W"]),
    ("sum((X W - T) .^ 2) / B + λ sum(W ∘ W)", "2 sum(X^T (X W - T), 0) / B + 2 λ W",
     lambda v: 2 * np.einsum("bsd,bse->de", v["X"], v["X"] @ v["W"] - v["T"]) / SIZES["B"] + 2 * v["λ"] * v["W"]),
])
def test_a_batch_sum_plus_weight_decay(expr, closed, by_hand):
    """Terms of shared matrices only (the decay 2 λ W) are matched as 2-D closed forms and added
    to the batch sum; a size of the batch (B) stays a size in one batch's form."""
    d = derive(expr, "W", "X: B×S×D, W: D×E, T: B×S×E, λ: scalar")
    r = d.results[0]
    assert r.closed_form == closed
    v = _values(d, np.random.default_rng(12))
    v["λ"] = 0.3
    assert np.allclose(_run(r.numpy, v), by_hand(v))


@pytest.mark.parametrize("expr, where, closed, by_hand", [
    ("sum((X W) ∘ (A C))", "X: B×S×D, W: D×E, A: S×K, C: K×E", "sum(X^T A C, 0)",
     lambda v: np.einsum("bsd,se->de", v["X"], v["A"] @ v["C"])),
    ("sum((X W) ∘ M)", "X: B×H×S×D, W: D×E, M: S×E", "sum(sum(X^T M, 1), 0)",
     lambda v: np.einsum("bhsd,se->de", v["X"], v["M"])),
])
def test_a_batch_times_shared_matrices_is_summed_first(expr, where, closed, by_hand):
    """Σ_b X_b^T A C with A, C shared is (Σ_b X_b)^T A C: the batch is summed before the product
    (X^T A C was printed as one product of reshaped batches, which A C is not: exit 3)."""
    d = derive(expr, "W", where)
    r = d.results[0]
    assert r.closed_form == closed
    v = _values(d, np.random.default_rng(13))
    assert np.allclose(_run(r.numpy, v), by_hand(v))


def test_a_sum_along_an_axis_of_a_summed_tensor_is_the_matrix_languages(capsys):
    """sum(dY, 0) of dY: B×S×E is a matrix S×E, and sum(·, 0) of a matrix is the 1×E row (SPEC
    §1.1); the guard's reference evaluated it as NumPy's 1-D (E,), exit 2 'internal' before."""
    where = "X: B×S×D, W: D×E, b: E"
    assert main(["check", "Y = X W + b", "--wrt", "b", "--answer", "sum(sum(dY, 0), 0)^T", "--where", where]) == 0
    assert main(["check", "Y = X W + b", "--wrt", "b", "--answer", "sum(dY, 0)", "--where", where]) == 1
    d = derive("sum(mean(sum(X, 0), 1) .^ 2)", "X", "X: B×S×D")
    X = np.random.default_rng(14).normal(size=(2, 4, 3))
    m = X.sum(axis=0).mean(axis=1)                        # S row means of the batch sum
    want = np.broadcast_to((2 * m / 3)[None, :, None], X.shape)
    assert np.allclose(_run(d.results[0].numpy, {"X": X}), want)
