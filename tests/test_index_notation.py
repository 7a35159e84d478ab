"""Index notation as input (SPEC §1.3) and declarations of any rank (§1.2).

Every case is checked against a NumPy reference written here by hand (np.einsum, explicit
loops for the convolutions), at sizes chosen here: the generated `numpy` expression is
evaluated on random arrays and compared with the reference.
"""
import numpy as np
import pytest

from indexcalc import backprop, derive
from indexcalc.cli import main
from indexcalc.errors import IndexCalcError
from indexcalc.from_index_notation import is_index_notation, read
from indexcalc.printing.numpy_code import py_name
from indexcalc.shapes import parse_decls

from .references import softmax

RNG = np.random.default_rng(7)


def run_code(code, arrays, sizes=None):
    ns = {"np": np, **(sizes or {}), **{py_name(k): v for k, v in arrays.items()}}
    return np.asarray(eval(code, ns), dtype=float)  # noqa: S307 - our own generated code


def rand(*shape, positive=False):
    a = RNG.normal(size=shape)
    return np.abs(a) + 0.5 if positive else a


# ---- backprop: (equation, where, {var: reference gradient}, arrays) ------------------------------
def _linear():
    X, W, b, dY = rand(4, 3), rand(5, 3), rand(5), rand(4, 5)
    return {"X": X, "W": W, "b": b, "dY": dY}, {
        "W": np.einsum("ij,ip->jp", dY, X), "b": dY.sum(axis=0), "X": dY @ W}


def _attention_scores():
    Q, K, dS = rand(2, 3, 4), rand(2, 5, 4), rand(2, 3, 5)
    return {"Q": Q, "K": K, "dS": dS}, {
        "Q": np.einsum("bij,bjk->bik", dS, K), "K": np.einsum("bij,bik->bjk", dS, Q)}


def _attention_values():
    A, V, dO = rand(2, 3, 5), rand(2, 5, 4), rand(2, 3, 4)
    return {"A": A, "V": V, "dO": dO}, {
        "V": np.swapaxes(A, -1, -2) @ dO, "A": dO @ np.swapaxes(V, -1, -2)}


def _conv1d():
    h, w, da = rand(7), rand(3), rand(5)
    dh = np.zeros(7)
    dw = np.zeros(3)
    for n in range(5):
        for j in range(3):
            dh[n + j] += da[n] * w[j]
            dw[j] += da[n] * h[n + j]
    return {"h": h, "w": w, "da": da}, {"h": dh, "w": dw}


def _conv2d():
    X, W = rand(2, 3, 6, 5), rand(4, 3, 3, 2)
    dY = rand(2, 4, 4, 4)
    dX, dW = np.zeros_like(X), np.zeros_like(W)
    for n in range(2):
        for o in range(4):
            for i in range(4):
                for j in range(4):
                    dX[n, :, i:i + 3, j:j + 2] += dY[n, o, i, j] * W[o]
                    dW[o] += dY[n, o, i, j] * X[n, :, i:i + 3, j:j + 2]
    return {"X": X, "W": W, "dY": dY}, {"X": dX, "W": dW}


def _softmax_rows():
    X, dY = rand(3, 4), rand(3, 4)
    Y = softmax(X)
    return {"X": X, "dY": dY}, {"X": Y * (dY - np.sum(dY * Y, axis=-1, keepdims=True))}


def _softmax_batched():
    X, dY = rand(2, 3, 4), rand(2, 3, 4)
    Y = softmax(X)
    return {"X": X, "dY": dY}, {"X": Y * (dY - np.sum(dY * Y, axis=-1, keepdims=True))}


def _layer_norm():
    X, dY, eps = rand(3, 5), rand(3, 5), 0.1
    D = X.shape[1]
    mu = X.mean(axis=1, keepdims=True)
    var = ((X - mu) ** 2).mean(axis=1, keepdims=True)
    xh = (X - mu) / np.sqrt(var + eps)
    dX = (dY - dY.mean(axis=1, keepdims=True) - xh * (dY * xh).mean(axis=1, keepdims=True)) / np.sqrt(var + eps)
    del D
    return {"X": X, "dY": dY, "epsilon": eps}, {"X": dX}


BACKPROP = [
    ("linear layer", "Y[i,j] = Σ_p X[i,p] W[j,p] + b[j]", None, _linear),
    ("linear layer, subscripts", "Y_ij = Σ_p X_ip W_jp + b_j", None, _linear),
    ("linear layer, sum_p", "Y[i,j] = sum_p X[i,p] * W[j,p] + b[j]", "X: S×M, W: N×M, b: N", _linear),
    ("batched scores", "S[b,i,j] = Σ_k Q[b,i,k] K[b,j,k]", "Q: B×S×D, K: B×T×D", _attention_scores),
    ("batched values", "O[b,i,d] = Σ_j A[b,i,j] V[b,j,d]", None, _attention_values),
    ("conv1d valid", "a[n] = Σ_j h[n+j-1] w[j]", None, _conv1d),
    ("conv2d valid", "Y[n,o,i,j] = Σ_{c,p,q} X[n,c,i+p-1,j+q-1] W[o,c,p,q]", "X: N×C×H×L, W: O×C×K×M", _conv2d),
    ("softmax rows", "Y[i,j] = exp(X[i,j]) / Σ_k exp(X[i,k])", None, _softmax_rows),
    ("softmax last axis", "Y[b,i,j] = exp(X[b,i,j]) / Σ_k exp(X[b,i,k])", "X: B×S×T", _softmax_batched),
    ("layer norm with ε", "Y[b,i] = (X[b,i] - Σ_k X[b,k] / D) / sqrt(Σ_k (X[b,k] - Σ_l X[b,l] / D)^2 / D + epsilon)",
     "X: B×D", _layer_norm),
]


@pytest.mark.parametrize("label, eq, where, make", BACKPROP, ids=[c[0] for c in BACKPROP])
def test_backprop_against_hand_numpy(label, eq, where, make):
    arrays, grads = make()
    d = backprop(eq, ",".join(grads), where)
    sizes = {}
    if "D" in eq:
        sizes["D"] = arrays["X"].shape[-1]
    for r in d.results:
        got = run_code(r.numpy, arrays, sizes)
        assert got.shape == grads[r.wrt].shape, (label, r.wrt, r.numpy)
        np.testing.assert_allclose(got, grads[r.wrt], rtol=1e-7, atol=1e-9, err_msg=f"{label}: d/d{r.wrt}")
    assert "for" not in " ".join(r.numpy for r in d.results)        # never a Python loop


# ---- derive: scalars (gradients) and entry equations (full derivatives) --------------------------
def test_quadratic_form_gradient_has_closed_form():
    d = derive("Σ_{i,j} x_i A_ij x_j", "x,A")
    x, A = rand(4), rand(4, 4)
    rx, rA = d.results
    assert rx.closed_form is not None
    np.testing.assert_allclose(run_code(rx.numpy, {"x": x, "A": A}), (A + A.T) @ x)
    np.testing.assert_allclose(run_code(rA.numpy, {"x": x, "A": A}), np.outer(x, x))


def test_trilinear_form():
    d = derive("Σ_{i,j,k} T_ijk x_i y_j z_k", "T,x,y,z")
    T, x, y, z = rand(3, 4, 5), rand(3), rand(4), rand(5)
    env = {"T": T, "x": x, "y": y, "z": z}
    want = {"T": np.einsum("i,j,k->ijk", x, y, z), "x": np.einsum("ijk,j,k->i", T, y, z),
            "y": np.einsum("ijk,i,k->j", T, x, z), "z": np.einsum("ijk,i,j->k", T, x, y)}
    for r in d.results:
        np.testing.assert_allclose(run_code(r.numpy, env), want[r.wrt], err_msg=r.wrt)
    assert d.variables["T"].kind == "tensor"


def test_seed003_q62_jacobian_of_valid_convolution():
    """∂a_n/∂h_m = w_{m-n+1}, zero outside 1 ≤ m-n+1 ≤ k (seed 003 question 6.2)."""
    d = derive("a[n] = Σ_j h[n+j-1] w[j]", "h,w", "h: d, w: k")
    h, w = rand(7), rand(3)
    J = np.zeros((5, 7))
    for n in range(5):
        for m in range(7):
            if 0 <= m - n < 3:
                J[n, m] = w[m - n]
    Jw = np.array([[h[n + j] for j in range(3)] for n in range(5)])
    rh, rw = d.results
    np.testing.assert_allclose(run_code(rh.numpy, {"h": h, "w": w}), J)
    np.testing.assert_allclose(run_code(rw.numpy, {"h": h, "w": w}), Jw)
    assert rh.index_form.replace(" ", "") in ("w_{i-n+1}", "w_{-n+i+1}")
    assert rh.shape[0] == read("a[n] = Σ_j h[n+j-1] w[j]", parse_decls("h: d, w: k")).ranges["n"]


def test_padded_convolution_by_declared_output_size():
    """y[n] = Σ_j x[n+j-2] w[j] with y declared of x's size: 'same' padding, zeros outside."""
    d = backprop("y[n] = Σ_j x[n+j-2] w[j]", "x,w", "x: d, w: k, y: d")
    x, w, dy = rand(6), rand(3), rand(6)
    xp = np.concatenate([[0.0], x, [0.0]])
    dxp, dw = np.zeros(8), np.zeros(3)
    for n in range(6):
        for j in range(3):
            dxp[n + j] += dy[n] * w[j]
            dw[j] += dy[n] * xp[n + j]
    got = {r.wrt: run_code(r.numpy, {"x": x, "w": w, "dy": dy}) for r in d.results}
    np.testing.assert_allclose(got["x"], dxp[1:-1])
    np.testing.assert_allclose(got["w"], dw)


def test_full_jacobian_of_rank3_entry_equation():
    d = derive("S[b,i,j] = Σ_k Q[b,i,k] K[b,j,k]", "Q", "Q: B×S×D, K: B×T×D")
    Q, K = rand(2, 3, 4), rand(2, 5, 4)
    J = np.zeros((2, 3, 5, 2, 3, 4))
    for b in range(2):
        for i in range(3):
            for j in range(5):
                J[b, i, j, b, i, :] = K[b, j, :]
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"Q": Q, "K": K}), J)
    assert d.results[0].shape == ["B", "S", "T", "B", "S", "D"]


def test_log_sum_exp_and_delta():
    d = derive("Σ_i log(Σ_k exp(X[i,k]))", "X")
    X = rand(3, 4)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": X}), softmax(X))
    d = derive("Σ_{p,q} X_pq δ_pq", "X")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": rand(3, 3)}), np.eye(3))
    d = derive("Σ_{p,q} X[p,q] delta[p,q] + Σ_p,q X_pq^2", "X")
    X = rand(3, 3)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": X}), np.eye(3) + 2 * X)


def test_sigma_scope_rule():
    """Σ_p reaches to the next + at its level: Σ_p x_p y_p + z_q... is (Σ_p x_p y_p) + ..."""
    a = read("Σ_p x_p y_p + Σ_q z_q", {})
    assert a.ranges == {"p": "N", "q": "M"}
    d = derive("2 Σ_p x_p y_p - Σ_q x_q", "x")
    x, y = rand(4), rand(4)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "y": y}), 2 * y - 1)
    d = derive("Σ_i (x_i + y_i) z_i", "z")                # a bracketed group inside the scope
    x, y, z = rand(3), rand(3), rand(3)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "y": y, "z": z}), x + y)


def test_rank2_answers_keep_closed_forms():
    d = backprop("Y[i,j] = Σ_p X[i,p] W[j,p] + b[j]", "W,X", "X: S×M, W: N×M, b: N")
    assert [r.closed_form for r in d.results] == ["dY^T X", "dY W"]


def test_json_reports_tensor_kind(capsys):
    assert main(["derive", "Σ_{i,j,k} T_ijk x_i y_j z_k", "--wrt", "x", "--where", "T: a×b×c",
                 "--format", "json"]) == 0
    import json
    out = json.loads(capsys.readouterr().out)
    assert out["variables"]["T"] == {"kind": "tensor", "shape": ["a", "b", "c"]}
    assert out["results"][0]["shape"] == ["a"]


def test_reading_detects_index_notation():
    assert is_index_notation("Y[i,j] = X[i,j]")
    assert is_index_notation("Y_ij = Σ_p X_ip W_jp")
    assert is_index_notation("Y_ij = X_ij + b_j")
    assert not is_index_notation("Y = X W^T + b")
    assert not is_index_notation("W_out = X W")
    assert not is_index_notation("‖X‖_F")


# ---- bad input: exit 2, one sentence ------------------------------------------------------------
BAD = [
    ("two ranges", ["derive", "Σ_{i,p} X[i,p] W[i,p]", "--wrt", "X", "--where", "X: S×M, W: N×M"], "runs over S"),
    ("free index missing on the left", ["derive", "Y[i] = Σ_p X[i,p] W[j,p]", "--wrt", "X"], "free on the right"),
    ("free index missing on the right", ["derive", "Y[i,j] = x[i]", "--wrt", "x"], "does not appear"),
    ("strided, no sizes", ["derive", "y[n] = Σ_j x[2n+j] w[j]", "--wrt", "x"], "declare the size of y"),
    ("strided, times, no sizes", ["derive", "Σ_i x[2*i]", "--wrt", "x"], "give its Σ a bound"),
    ("a Σ under a condition", ["derive", r"\sum_{i < j} x_i x_j", "--wrt", "x"], "under a condition"),
    ("a Σ over part of the entries", ["derive", "Σ_{i=1}^{n-1} x_i x_{i+1}", "--wrt", "x", "--where", "x: n"],
     "over part of a variable's entries"),
    ("free index without a left side", ["derive", "Σ_i X[i,j]", "--wrt", "X"], "free"),
    ("sum over nothing", ["derive", "Σ_p x_i", "--wrt", "x"], "does not appear in its scope"),
    ("ranks differ", ["derive", "Σ_{i,j} X[i,j] X[i]", "--wrt", "X"], "indices"),
    ("unknown function", ["derive", "Σ_i foo(x[i])", "--wrt", "x"], "unknown function"),
    ("parse error", ["derive", "Y[i,j = X[i,j]", "--wrt", "X"], "column"),
    ("trace of a tensor in the matrix language", ["derive", "tr(Q)", "--wrt", "Q", "--where", "Q: B×S×D"],
     "index notation"),
    ("output on the right", ["derive", "y[i] = y[i] x[i]", "--wrt", "x"], "also appears"),
    ("range of an index only in arithmetic", ["derive", "y[n] = Σ_j x[n+j]", "--wrt", "x"], "range"),
]


@pytest.mark.parametrize("label, argv, words", BAD, ids=[b[0] for b in BAD])
def test_bad_index_input_is_exit_2_with_one_sentence(label, argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and words in err, err
    assert err.startswith("indexcalc: error:")


def test_declarations_of_any_rank():
    assert parse_decls("Q: B×S×D, X: N×C×H×W") == {"Q": ("B", "S", "D"), "X": ("N", "C", "H", "W")}
    with pytest.raises(IndexCalcError):
        parse_decls("X: a×")


# ---- every command takes it ----------------------------------------------------------------------
def test_conv_of_the_matrix_language_has_its_jacobian():
    """derive "conv(h, w)" --wrt h: the Jacobian w_{m-n+1}, through index arithmetic (was refused)."""
    d = derive("conv(h, w)", "h,w")
    h, w = rand(6), rand(3)
    Jh = np.zeros((4, 6))
    for n in range(4):
        for j in range(3):
            Jh[n, n + j] = w[j]
    Jw = np.array([[h[n + j] for j in range(3)] for n in range(4)])
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"h": h, "w": w}), Jh)
    np.testing.assert_allclose(run_code(d.results[1].numpy, {"h": h, "w": w}), Jw)


CHECKS = [
    ("Y[i,j] = Σ_p X[i,p] W[j,p] + b[j]", "W", "dY^T X", True),
    ("Y[i,j] = Σ_p X[i,p] W[j,p] + b[j]", "W", "G[j,p] = Σ_i dY[i,j] X[i,p]", True),
    ("Y[i,j] = Σ_p X[i,p] W[j,p] + b[j]", "W", "G[j,p] = Σ_i dY[i,j] X[i,p] + 0.001 W[j,p]", False),
    ("Y[i,j] = Σ_p X[i,p] W[j,p] + b[j]", "b", "dY", False),              # seed 001's wrong claim
    ("Y_ij = Σ_p X_ip W_jp + b_j", "b", "Σ_i dY_ij", True),
    ("x^T A x", "x", "Σ_j (A[i,j] + A[j,i]) x[j]", True),
    ("x^T A x", "x", "Σ_j 2 A[i,j] x[j]", False),
    ("a[n] = Σ_j h[n+j-1] w[j]", "w", "conv(h, da)", True),
    ("a[n] = Σ_j h[n+j-1] w[j]", "h", "G[m] = Σ_n da[n] w[m-n+1]", True),
    ("a[n] = Σ_j h[n+j-1] w[j]", "h", "G[m] = Σ_n da[n] w[m-n]", False),
]


@pytest.mark.parametrize("expr, wrt, answer, right", CHECKS)
def test_check_claims_in_either_notation(expr, wrt, answer, right):
    from indexcalc.check import check
    where = "Q: B×S×D, K: B×T×D" if "Q[" in expr else None
    v = check(expr, wrt, answer, where)
    assert v.correct is right, v.reason


def test_check_batched_claim():
    from indexcalc.check import check
    v = check("S[b,i,j] = Σ_k Q[b,i,k] K[b,j,k]", "K", "G[b,j,k] = Σ_i dS[b,i,j] Q[b,i,k]", "Q: B×S×D, K: B×T×D")
    assert v.correct
    v = check("S[b,i,j] = Σ_k Q[b,i,k] K[b,j,k]", "K", "G[b,j,k] = Σ_i dS[b,j,i] Q[b,i,k]", "Q: B×S×D, K: B×S×D")
    assert not v.correct


def test_at_values(capsys):
    assert main(["derive", "a[n] = Σ_j h[n+j-1] w[j]", "--wrt", "w", "--at", "h=[1,2,3,4], w=[1,-1]",
                 "--format", "json"]) == 0
    import json
    out = json.loads(capsys.readouterr().out)
    assert out["at"]["value"] == [-1.0, -1.0, -1.0]
    assert out["at"]["derivatives"]["w"] == [[1.0, 2.0], [2.0, 3.0], [3.0, 4.0]]


def test_problem_file_in_index_notation(tmp_path):
    from indexcalc import solve as S
    f = tmp_path / "p.toml"
    f.write_text('''title = "Index notation"
[[problem]]
id = "conv"
title = "A valid convolution"
statement = 'Let $a_n = \\\\sum_j h_{n+j-1} w_j$.'
equation = "a[n] = Σ_j h[n+j-1] w[j]"
where = "h: d, w: k"
wrt = ["h", "w"]
claim = { w = "conv(h, da)" }

[[problem]]
id = "scores"
title = "Batched scores"
statement = 'Scores.'
equation = "S[b,i,j] = Σ_k Q[b,i,k] K[b,j,k]"
where = "Q: B×S×D, K: B×T×D"
wrt = ["K"]
''', encoding="utf-8")
    ps, solutions = S.solve(str(f))
    text = S.render_text(ps, solutions)
    assert "conv_full(da, flip(w))" in text and "RIGHT" in text
    assert "Σ_p dS_lpm Q_lpn" in text                    # the upstream gradient first, as in the chain rule
    assert r"\sum" in S.render_latex(ps, solutions)


def test_nested_convolutions_of_the_matrix_language():
    """sum(conv(conv(x, w), v)) by x: two shifts in one place, once refused."""
    d = derive("sum(conv(conv(x, w), v))", "x")
    x, w, v = rand(9), rand(3), rand(2)
    g = np.zeros(9)
    for n in range(9 - 3 + 1 - 2 + 1):
        for r in range(2):
            for j in range(3):
                g[n + r + j] += v[r] * w[j]
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "w": w, "v": v}), g)


# ---- random contractions of rank ≤ 4 ---------------------------------------------------------------
from hypothesis import given, note  # noqa: E402

from .strategies import index_contractions  # noqa: E402


@given(index_contractions())
def test_random_index_contractions_against_einsum(case):
    note(f"indexcalc {case.mode} {case.text!r} --wrt {case.wrt} --where {case.where!r}")
    run = backprop if case.mode == "backprop" else derive
    d = run(case.text, case.wrt, case.where)
    got = run_code(d.results[0].numpy, case.arrays)
    assert got.shape == case.gradient.shape
    np.testing.assert_allclose(got, case.gradient, rtol=1e-8, atol=1e-10)


# ---- closed forms of batched results ---------------------------------------------------------------
BATCHED = [
    ("S[b,i,j] = Σ_k Q[b,i,k] K[b,j,k]", "Q: B×S×D, K: B×T×D",
     {"Q": "dS K", "K": "dS^T Q"}),
    ("O[b,i,d] = Σ_j A[b,i,j] V[b,j,d]", "A: B×S×T, V: B×T×D",
     {"V": "A^T dO", "A": "dO V^T"}),
    ("S[b,h,i,j] = Σ_k Q[b,h,i,k] K[b,h,j,k] / sqrt(D)", "Q: B×H×S×D, K: B×H×T×D",
     {"Q": "dS K / sqrt(D)", "K": "dS^T Q / sqrt(D)"}),
]


@pytest.mark.parametrize("eq, where, closed", BATCHED, ids=[b[0][:12] for b in BATCHED])
def test_batched_products_have_closed_forms(eq, where, closed):
    d = backprop(eq, ",".join(closed), where)
    got = {r.wrt: r.closed_form.replace("√", "sqrt") for r in d.results}
    assert set(got) == set(closed)
    for r in d.results:
        assert "einsum" not in r.numpy and ("@" in r.numpy)
        assert got[r.wrt].replace(" ", "") == closed[r.wrt].replace(" ", ""), got


def test_batched_code_is_right_for_the_batch_rank():
    """The same closed form, printed with negative axes, computes attention's dV = A^T dO."""
    d = backprop("O[b,i,d] = Σ_j A[b,i,j] V[b,j,d]", "V", "A: B×S×T, V: B×T×D")
    A, dO = rand(2, 3, 4), rand(2, 3, 5)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"A": A, "dO": dO}),
                               np.einsum("bij,bid->bjd", A, dO))
    d = backprop("Y[b,i,j] = exp(X[b,i,j]) / Σ_k exp(X[b,i,k])", "X", "X: B×S×T")
    assert d.results[0].closed is not None
    X, dY = rand(2, 3, 4), rand(2, 3, 4)
    Y = softmax(X)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": X, "dY": dY}),
                               Y * (dY - np.sum(dY * Y, axis=-1, keepdims=True)))


def test_cnn_attention_problem_file_solves_and_compiles(tmp_path):
    """problems/cnn_attention.toml: conv2d, batched attention, layer norm with ε, batch norm over
    N×C×H×W; every gradient guarded, the worked solutions compile."""
    from pathlib import Path

    from indexcalc import solve as S

    from .test_solve import _compile
    path = Path(__file__).resolve().parent.parent / "problems" / "cnn_attention.toml"
    ps, solutions = S.solve(str(path))
    assert all(s.derivation is not None and not s.unsupported for s in solutions)
    closed = {s.problem.id: {r.wrt: r.closed_form for r in s.derivation.results} for s in solutions}
    assert closed["attention"]["V"] is not None and closed["attention"]["Q"] is not None
    _compile(S.render_latex(ps, solutions), tmp_path)


def test_readme_index_examples_run(capsys):
    """Every command of README's index-notation block runs (exit 0) and says what its comment says."""
    import re
    import shlex
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("<!-- index-examples:start"):readme.index("<!-- index-examples:end")]
    lines = [ln for ln in re.search(r"```\n(.*?)```", block, re.S).group(1).splitlines() if ln.strip()]
    assert len(lines) >= 6
    for line in lines:
        command, _, comment = line.partition("  #")
        argv = shlex.split(command)[1:]
        if argv[0] == "solve":
            continue                                  # solved (and compiled) above
        assert main(argv) == 0, line
        out = capsys.readouterr().out
        for claim in re.findall(r"[A-Za-z]\^T [A-Za-z]+", comment):
            assert claim in out, (line, claim)


def test_latex_spellings():
    """\\sum_{i,j}, \\delta_{pq} (one letter per index in braces without commas), \\alpha."""
    d = derive(r"\sum_{i,j} x_i A_{i,j} x_j + \sum_{p,q} \alpha A_{p,q} \delta_{pq}", "A")
    x, A, alpha = rand(3), rand(3, 3), 0.7
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "A": A, "alpha": alpha}),
                               np.outer(x, x) + alpha * np.eye(3))


def test_a_number_times_an_entrywise_sum_is_bracketed_in_the_einsum_code():
    """Σ_{i,k,l} tanh(y_k) is n² Σ_k tanh(y_k): its derivative n² (1 - tanh(y)²) printed without
    brackets, (n ** 2) * np.ones(n) - np.tanh(y) ** 2, was caught by the guard (exit 3)."""
    from .conftest import finite_jacobian
    d = derive("Σ_{i,k,l} ((A_li + y_l x_k)^2 y_i + tanh(y_k))", "y", "A: n×n, x: n, y: n")
    rng = np.random.default_rng(4)
    env = {"A": rng.normal(size=(3, 3)), "x": rng.normal(size=3), "y": rng.normal(size=3)}

    def f(e):
        A, x, y = e["A"], e["x"], e["y"]
        return sum((A[l, i] + y[l] * x[k]) ** 2 * y[i] + np.tanh(y[k])
                   for i in range(3) for k in range(3) for l in range(3))
    got = eval(d.results[0].numpy, {"np": np, **env})  # noqa: S307 - indexcalc's own output
    assert np.allclose(got, finite_jacobian(f, env, "y"), rtol=1e-6, atol=1e-6)


def test_a_scalar_variable_in_index_notation_has_no_kronecker_step():
    """By a scalar λ the step says ∂λ/∂λ = 1, as the matrix language does (it printed the
    empty Kronecker rule ∂λ_/∂λ_ = :); the value is checked against NumPy."""
    d = derive("Σ_i (y_i - λ x_i)^2", "λ")
    r = d.results[0]
    texts = [s.text for s in r.steps]
    assert any(t.startswith("∂λ/∂λ = 1: ") for t in texts) and not any("∂λ_" in t for t in texts), texts
    rng = np.random.default_rng(3)
    x, y, lam = rng.normal(size=4), rng.normal(size=4), 0.7
    from .references import run_code
    assert np.isclose(float(run_code(r.numpy, {"x": x, "y": y, "λ": lam})), -2 * (y - lam * x) @ x)
