"""The matrix language on tensors (SPEC §1.2, issue 14 part 1): batched products over leading
axes (np.matmul), ^T on the last two axes, NumPy broadcasting, softmax / log_softmax /
logsumexp along the last axis, sum / mean along an axis.

Every case is checked against NumPy written by hand here (the forward pass with np.einsum /
np.matmul / loops, and the gradient by central differences of that forward pass, or written
out by hand), never against indexcalc's own evaluator.
"""
from __future__ import annotations

import numpy as np
import pytest

from indexcalc.cli import main
from indexcalc.pipeline import backprop, derive

from .references import load_module
from .references import softmax as _softmax

SIZES = {"B": 2, "S": 3, "D": 4, "E": 5, "H": 2}


def _attention(v):
    Q, K, V = v["Q"], v["K"], v["V"]
    out = np.zeros_like(V)
    for b in range(Q.shape[0]):                       # a loop over the batch, as by hand
        scores = np.einsum("id,jd->ij", Q[b], K[b]) / np.sqrt(Q.shape[-1])
        out[b] = _softmax(scores) @ V[b]
    return out


def _layer_norm(v):
    X, eps = v["X"], v["eps"]
    mu = X.mean(axis=-1, keepdims=True)
    var = ((X - mu) ** 2).mean(axis=-1, keepdims=True)
    return (X - mu) / np.sqrt(var + eps)


# label, equation Y = ..., where, forward pass by hand, the closed forms expected (or None)
CASES = [
    ("batched matmul", "Y = X A", "X: B×S×D, A: B×D×E",
     lambda v: np.einsum("bsd,bde->bse", v["X"], v["A"]), {"X": "dY A^T", "A": "X^T dY"}),
    ("batched matmul, a shared matrix", "Y = X W^T + b", "X: B×S×D, W: E×D, b: 1×E",
     lambda v: np.einsum("bsd,ed->bse", v["X"], v["W"]) + v["b"][0], {"X": "dY W"}),
    ("transpose of the last two axes", "Y = X^T A^T", "X: B×S×D, A: B×E×S",
     lambda v: np.einsum("bsd,bes->bde", v["X"], v["A"]), {"X": "A^T dY^T", "A": "dY^T X^T"}),
    ("rank 4 batch", "Y = X A", "X: H×B×S×D, A: H×B×D×E",
     lambda v: np.einsum("hbsd,hbde->hbse", v["X"], v["A"]), {"X": "dY A^T"}),
    ("broadcast batch axes", "Y = X A", "X: B×S×D, A: D×E",
     lambda v: np.einsum("bsd,de->bse", v["X"], v["A"]), {"X": "dY A^T"}),
    ("broadcast add of a bias vector", "Y = tanh(X + g)", "X: B×S×D, g: D",
     lambda v: np.tanh(v["X"] + v["g"][None, None, :]), None),
    ("element-wise with a vector", "Y = X ∘ g + 2 X", "X: B×S×D, g: D",
     lambda v: v["X"] * v["g"][None, None, :] + 2 * v["X"], None),
    ("matmul by a vector", "Y = sigmoid(X w)", "X: B×S×D, w: D",
     lambda v: 1 / (1 + np.exp(-np.einsum("bsd,d->bs", v["X"], v["w"]))), None),
    ("softmax along the last axis", "Y = softmax(X)", "X: B×S×D",
     lambda v: _softmax(v["X"]), {"X": "dY ∘ softmax(X) - diag((dY ∘ softmax(X)) 1) softmax(X)"}),
    ("log_softmax along the last axis", "Y = log_softmax(X)", "X: B×S×D",
     lambda v: v["X"] - np.log(np.exp(v["X"]).sum(axis=-1, keepdims=True)), {"X": "dY - diag(dY 1) softmax(X)"}),
    ("logsumexp along the last axis", "Y = logsumexp(X)", "X: B×S×D",
     lambda v: np.log(np.exp(v["X"]).sum(axis=-1)), None),
    ("sum along axis -1", "Y = sum(X ∘ X, -1)", "X: B×S×D",
     lambda v: (v["X"] ** 2).sum(axis=2), None),
    ("mean along axis 0", "Y = mean(X, 0)", "X: B×S×D",
     lambda v: v["X"].mean(axis=0), None),
    ("axis as NumPy's and torch's keyword", "Y = mean(X, axis=-1) + sum(X ∘ X, dim=-1)", "X: B×S×D",
     lambda v: v["X"].mean(axis=-1) + (v["X"] ** 2).sum(axis=-1), None),
    ("attention", "Y = softmax(Q K^T / sqrt(D)) V", "Q: B×S×D, K: B×S×D, V: B×S×D", _attention,
     {"V": "softmax(Q K^T / sqrt(D))^T dY"}),
    ("a batch axis of size 1 broadcast", "Y = tanh(N X)", "N: 1×S×S, X: B×S×D",
     lambda v: np.tanh(np.einsum("st,btd->bsd", v["N"][0], v["X"])), None),
    ("a row vector times a tensor, inside softmax", "Y = log_softmax(X + u^T X)", "X: B×S×D, u: S",
     lambda v: np.log(_softmax(v["X"] + np.einsum("s,bsd->bd", v["u"], v["X"])[:, None, :])), None),
    ("sum over a leading axis of rank 4", "Y = sum(P + X, 0) w", "P: H×B×S×D, X: B×S×D, w: D",
     lambda v: np.einsum("hbsd,d->bs", v["P"] + v["X"][None], v["w"]), None),
    ("layer norm over the last axis, with eps",
     "Y = (X - X (1 1^T) / D) ⊘ sqrt(((X - X (1 1^T) / D) .^ 2) (1 1^T) / D + eps)", "X: B×S×D, eps: scalar",
     _layer_norm, None),
]


def _draw(variables, rng):
    values = {}
    for name, v in variables.items():
        shape = tuple(SIZES[d] if isinstance(d, str) else d for d in v.array_shape)
        values[name] = rng.uniform(0.5, 1.5) if shape == () else rng.normal(size=shape)
    return values


def _numeric_gradient(forward, values, var, up):
    """∂ Σ dY ∘ Y / ∂ var by central differences of the hand-written forward pass."""
    x = np.asarray(values[var], dtype=float)
    g = np.zeros_like(x)
    h = 1e-6
    for k in np.ndindex(x.shape):
        plus, minus = dict(values), dict(values)
        xp, xm = x.copy(), x.copy()
        xp[k] += h
        xm[k] -= h
        plus[var], minus[var] = xp, xm
        g[k] = (np.sum(up * forward(plus)) - np.sum(up * forward(minus))) / (2 * h)
    return g


def _run_code(code, values):
    return np.asarray(eval(code, {"np": np, **SIZES, **values}), dtype=float)  # noqa: S307 - our output


@pytest.mark.parametrize("label, eq, where, forward, closed", CASES, ids=[c[0] for c in CASES])
def test_backprop_of_tensor_expressions_agrees_with_numpy_by_hand(label, eq, where, forward, closed):
    names = [n.split(":")[0].strip() for n in where.split(",")]
    wrt = [n for n in names if n not in ("eps",)]
    d = backprop(eq, wrt, where)
    rng = np.random.default_rng(7)
    values = _draw({n: v for n, v in d.variables.items() if n != "dY"}, rng)
    y = forward(values)
    values["dY"] = rng.normal(size=np.shape(y))
    for r in d.results:
        want = _numeric_gradient(forward, values, r.wrt, values["dY"])
        got = _run_code(r.numpy, values)
        assert got.shape == want.shape, (label, r.wrt, r.numpy)
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), (label, r.wrt, np.abs(got - want).max())
        if closed and r.wrt in closed:
            assert r.closed_form == closed[r.wrt], (label, r.wrt, r.closed_form)


def test_attention_gradients_by_hand():
    """dV = A^T dY, dQ = (A ∘ (dA - rowsum(dA ∘ A))) K / √D, dK likewise, written out by hand."""
    where = "Q: B×S×D, K: B×S×D, V: B×S×D"
    d = backprop("Y = softmax(Q K^T / sqrt(D)) V", "Q,K,V", where)
    rng = np.random.default_rng(3)
    v = {n: rng.normal(size=(2, 3, 4)) for n in ("Q", "K", "V", "dY")}
    A = _softmax(np.einsum("bid,bjd->bij", v["Q"], v["K"]) / 2.0)
    dA = np.einsum("bid,bjd->bij", v["dY"], v["V"])
    dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True)) / 2.0
    want = {"V": np.einsum("bij,bid->bjd", A, v["dY"]), "Q": np.einsum("bij,bjd->bid", dS, v["K"]),
            "K": np.einsum("bij,bid->bjd", dS, v["Q"])}
    for r in d.results:
        assert np.allclose(_run_code(r.numpy, {**v, "D": 4}), want[r.wrt]), r.wrt
    assert d.results[2].closed_form == "softmax(Q K^T / sqrt(D))^T dY"
    assert "np.swapaxes" in d.results[2].numpy and "@" in d.results[2].numpy


def test_the_issue_example_derives():
    """SPEC §1.2's example: the gradient of sum(softmax(Q K^T / sqrt(D)) V) by V is the column
    sums of the attention matrix, broadcast along D."""
    d = derive("sum(softmax(Q K^T / sqrt(D)) V)", "V", "Q: B×S×D, K: B×S×D, V: B×S×D")
    rng = np.random.default_rng(5)
    v = {n: rng.normal(size=(2, 3, 4)) for n in ("Q", "K", "V")}
    A = _softmax(np.einsum("bid,bjd->bij", v["Q"], v["K"]) / 2.0)
    want = np.repeat(A.sum(axis=1)[:, :, None], 4, axis=2)
    assert np.allclose(_run_code(d.results[0].numpy, v), want)


def test_rank_2_answers_keep_their_closed_forms():
    d = backprop("Y = softmax(Q K^T / sqrt(D)) V", "V", "Q: S×D, K: S×D, V: S×D")
    assert d.results[0].closed_form == "softmax(Q K^T / sqrt(D))^T dY"
    assert ".T" in d.results[0].numpy


REFUSED = [
    ("trace", "tr(X)", "X: B×S×D", "index notation"),
    ("inverse", "sum(inv(X))", "X: B×S×S", "index notation"),
    ("matrix power", "sum(X^2)", "X: B×S×S", "element-wise power"),
    ("trailing axes differ", "sum(X + A)", "X: B×S×D, A: S×E", "trailing axes"),
    ("inner sizes differ", "sum(X A)", "X: B×S×D, A: B×E×D", "inner sizes"),
    ("batch axes differ", "sum(X A)", "X: B×S×D, A: E×D×D", "batch"),
    ("axis out of range", "sum(sum(X, 3))", "X: B×S×D", "axis"),
    ("a column vector times a tensor", "sum(w X)", "X: B×S×D, w: S", "column vector"),
    ("spectral norm", "‖X‖_2", "X: B×S×D", "Frobenius"),
    # (x^T X) w is B×1 in NumPy, which the engine would hold as a vector (an "internal:" message)
    ("a batch of rows times a vector", "sum(x^T X w)", "X: B×S×D, x: S, w: D", "B×1 in NumPy"),
    # NumPy's .T of a tensor reverses every axis (it was read as ^T, the last two)
    ("NumPy's .T of a tensor", "sum(X @ X.T)", "X: B×S×D", "reverse all its axes"),
]


def test_mT_is_the_batched_transpose():
    """X.mT (NumPy's and torch's batched transpose) is X^T; X.T is X^T of a matrix only."""
    where = "Q: B×S×D, K: B×S×D, V: B×S×D"
    d = derive("sum(softmax(Q @ K.mT / sqrt(D)) @ V)", "Q", where)
    assert d.read_as == derive("sum(softmax(Q K^T / sqrt(D)) V)", "Q", where).read_as
    assert derive("sum(X.T @ W)", "X", "X: m×n").read_as == "sum(X^T W)"


@pytest.mark.parametrize("label, expr, where, words", REFUSED, ids=[c[0] for c in REFUSED])
def test_what_is_not_supported_on_tensors_is_exit_2_with_one_sentence(label, expr, where, words, capsys):
    wrt = where.split(":")[0]
    assert main(["derive", expr, "--wrt", wrt, "--where", where]) == 2
    err = capsys.readouterr().err
    assert err.startswith("indexcalc: error:") and "Traceback" not in err and words in err, err


def test_check_of_a_claim_on_tensors(capsys):
    """check compares a claim in the matrix language on tensors at random points: the batched
    A^T dY is right, A dY (no transpose) is wrong, exit 1."""
    where = "Q: B×S×D, K: B×S×D, V: B×S×D"
    eq = "Y = softmax(Q K^T / sqrt(D)) V"
    assert main(["check", eq, "--wrt", "V", "--answer", "softmax(Q K^T / sqrt(D))^T dY", "--where", where]) == 0
    assert main(["check", eq, "--wrt", "V", "--answer", "softmax(Q K^T / sqrt(D)) dY", "--where", where]) == 1
    assert main(["check", eq, "--wrt", "Q", "--answer", "dY V^T K", "--where", where]) == 1
    assert "WRONG" in capsys.readouterr().out


def test_derive_at_values_of_a_tensor():
    from indexcalc.pipeline import evaluate_at, parse_values
    d = derive("sum(X ∘ X)", "X", "X: 2×2×2")
    out = evaluate_at(d, parse_values("X=[[[1,2],[3,4]],[[5,6],[7,8]]]"))
    assert out["value"] == 204.0
    assert np.allclose(out["derivatives"]["X"], 2 * np.arange(1, 9).reshape(2, 2, 2))


def test_a_row_times_a_batch_keeps_its_unit_axis():
    """x^T X of X: B×S×D is B×1×D (np.matmul of the 1×S row); its full derivative by x is
    B×1×D×S, the batched closed form X^T reshaped (the guard rejected it, exit 3, before)."""
    d = derive("x^T X", "x", "X: B×S×D, x: S")
    X = np.random.default_rng(2).normal(size=(2, 3, 4))
    got = _run_code(d.results[0].numpy, {"X": X, "x": np.zeros(3)})
    assert got.shape == (2, 1, 4, 3)
    assert np.allclose(got[:, 0], np.einsum("bsd->bds", X))


def test_codegen_of_a_scalar_of_tensors_is_exit_2(capsys):
    """codegen of a tensor equation writes its module (tests/test_codegen_targets.py); a scalar
    left side has no module there yet: one sentence, exit 2."""
    assert main(["codegen", "L = sum(X ∘ X)", "--wrt", "X", "--where", "X: B×S×D"]) == 2
    err = capsys.readouterr().err
    assert "needs an output with indices" in err and "Traceback" not in err


@pytest.mark.parametrize("eq, where", [
    ("Z = sigmoid(A^T + b)", "A: B×D×S, b: 1×D"),
    ("Z[n,i,j] = sigmoid(A[n,j,i] + b[i])", "A: B×D×S, b: S"),
])
def test_an_element_wise_function_of_a_sum_in_einsum_code(eq, where):
    """sigmoid's code negates its argument: an argument that is a sum of einsums is bracketed
    (-(a + b), not -a + b); found by a random run, exit 3 before (index notation too)."""
    d = backprop(eq, "A", where)
    rng = np.random.default_rng(1)
    A, dZ = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4, 3))
    b = rng.normal(size=(1, 3)) if "1×D" in where else rng.normal(size=4)
    z = np.swapaxes(A, -1, -2) + (b if b.ndim == 2 else b[None, :, None])
    s = 1 / (1 + np.exp(-z))
    want = np.swapaxes(dZ * s * (1 - s), -1, -2)
    assert np.allclose(_run_code(d.results[0].numpy, {"A": A, "b": b, "dZ": dZ}), want)


def test_steps_state_the_softmax_rule_along_the_last_axis():
    d = backprop("Y = softmax(Q K^T / sqrt(D)) V", "Q", "Q: B×S×D, K: B×S×D, V: B×S×D")
    rules = [s.text for s in d.results[0].steps if s.rule == "rule"]
    assert any(t.startswith("softmax (along the last axis, for each b)") for t in rules), rules
    assert d.results[0].steps[0].rule == "read as"


def test_codegen_of_a_tensor_module_from_a_problem_file(tmp_path):
    """A [problem.module] in the matrix language on tensors is generated as index notation's
    modules are (forward code checked against the input, gradients guarded): self-attention's
    module agrees with NumPy by hand and finite differences."""
    toml = tmp_path / "attention.toml"
    toml.write_text('''title = "Tensor modules"
[[problem]]
id = "att"
title = "Self-attention"
statement = "Self-attention."
equation = "Y = softmax(X Wq (X Wk)^T / sqrt(E)) X Wv"
where = "X: B×S×D, Wq: D×E, Wk: D×E, Wv: D×E"
wrt = ["Wq", "Wk", "Wv", "X"]
[problem.module]
class = "SelfAttention"
input = "X"
params = { Wq = "Wq", Wk = "Wk", Wv = "Wv" }
sizes = { D = "d_model", E = "d_head" }
''', encoding="utf-8")
    out = tmp_path / "mod.py"
    assert main(["codegen", str(toml), "-o", str(out)]) == 0
    m = load_module(out, "mod")
    mod = m.SelfAttention(3, 2)
    rng = np.random.default_rng(0)
    for k in mod.params:
        mod.params[k] = rng.normal(size=mod.params[k].shape)
    X, up = rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 3, 2))

    def forward(v):
        q, k = v["X"] @ v["Wq"], v["X"] @ v["Wk"]
        return _softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(2)) @ (v["X"] @ v["Wv"])
    values = {"X": X, **mod.params}
    assert np.allclose(mod.forward(X), forward(values))
    dX = mod.backward(up)
    assert np.allclose(dX, _numeric_gradient(forward, values, "X", up), atol=1e-6)
    for name in ("Wq", "Wk", "Wv"):
        assert np.allclose(mod.grads[name], _numeric_gradient(forward, values, name, up), atol=1e-6), name


def test_a_declared_variable_that_does_not_occur_has_the_zero_derivative():
    d = derive("sum(X ∘ X)", "X,W", "X: B×S×D, W: D×E")
    r = d.results[1]
    assert r.wrt == "W" and any(s.rule == "note" for s in r.steps)
    got = _run_code(r.numpy, {"X": np.ones((2, 3, 4)), "W": np.ones((4, 5))})
    assert got.shape == (4, 5) and not got.any()
