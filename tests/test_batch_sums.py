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

SIZES = {"B": 2, "H": 3, "S": 4, "D": 3, "E": 5}


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
