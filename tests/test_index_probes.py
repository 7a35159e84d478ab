"""Index notation, held-out-like probes (issue 14 parts 2-5): each case here was refused or
wrong before its fix. Every answer is the generated NumPy code evaluated on random arrays
and compared with a reference written here by hand (np.einsum, explicit loops)."""
import numpy as np
import pytest

from indexcalc import derive
from indexcalc.cli import main

from .references import run_code

RNG = np.random.default_rng(11)


def rand(*shape):
    return RNG.normal(size=shape)


def softmax(a):
    e = np.exp(a - a.max())
    return e / e.sum()


# ---- --order 2: (label, expression, wrt, where, make -> (arrays, reference)) --------------------
def _quadratic():
    x, A = rand(4), rand(4, 4)
    return {"x": x, "A": A}, A + A.T


def _cubic():
    x, T = rand(4), rand(4, 4, 4)
    perms = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    S = sum(np.transpose(T, p) for p in perms)
    return {"x": x, "T": T}, np.einsum("ijk,k->ij", S, x)


def _lse():
    x = rand(5)
    s = softmax(x)
    return {"x": x}, np.diag(s) - np.outer(s, s)


def _norm():
    x = rand(4)
    n = np.linalg.norm(x)
    return {"x": x}, np.eye(4) / n - np.outer(x, x) / n ** 3


def _squares_of_matrix():
    X = rand(3, 4)
    return {"X": X}, 2 * np.einsum("ik,jl->ijkl", np.eye(3), np.eye(4))


def _bilinear_by_matrix():
    X, A = rand(3, 4), rand(3, 3)
    # f = Σ_{i,j,p} X_ip A_ij X_jp: ∂²f/∂X_kl ∂X_mn = (A_km + A_mk) δ_ln
    return {"X": X, "A": A}, np.einsum("km,ln->klmn", A + A.T, np.eye(4))


def _softmax_entries():
    x = rand(4)
    s = softmax(x)
    eye = np.eye(4)
    # ∂²s_i/∂x_j∂x_l = s_i (δ_ij - s_j)(δ_il - s_l) - s_i s_j (δ_jl - s_l)
    H = (np.einsum("i,ij,il->ijl", s, eye - s[None, :], eye - s[None, :])
         - np.einsum("i,j,jl->ijl", s, s, eye - s[None, :]))
    return {"x": x}, H


def _trilinear_by_y():
    T, x, z = rand(3, 4, 2), rand(3), rand(2)
    return {"T": T, "x": x, "y": rand(4), "z": z}, np.zeros((4, 4))


SECOND = [
    ("quadratic form", "Σ_{i,j} x_i A_ij x_j", "x", None, _quadratic),
    ("cubic form T_ijk x_i x_j x_k", "Σ_{i,j,k} T_ijk x_i x_j x_k", "x", None, _cubic),
    ("log-sum-exp", "log(Σ_k exp(x_k))", "x", None, _lse),
    ("norm", "sqrt(Σ_i x_i^2)", "x", None, _norm),
    ("squares of a matrix (rank 4)", "Σ_p,q X_pq^2", "X", None, _squares_of_matrix),
    ("quadratic in a matrix (rank 4)", "Σ_{i,j,p} X_ip A_ij X_jp", "X", None, _bilinear_by_matrix),
    ("softmax entries (rank 3)", "y[i] = exp(x[i]) / Σ_k exp(x[k])", "x", None, _softmax_entries),
    ("trilinear, linear in y", "Σ_{i,j,k} T_ijk x_i y_j z_k", "y", None, _trilinear_by_y),
]


@pytest.mark.parametrize("label, expr, wrt, where, make", SECOND, ids=[c[0] for c in SECOND])
def test_second_derivatives_of_index_notation(label, expr, wrt, where, make):
    arrays, want = make()
    d = derive(expr, wrt, where, order=2)
    r = d.results[0]
    assert r.order == 2
    got = run_code(r.numpy, arrays)
    assert got.shape == want.shape, (label, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10, err_msg=label)


def test_second_derivative_beyond_rank_4_is_refused(capsys):
    assert main(["derive", "Y[i,j] = Σ_p X[i,p] W[j,p]", "--wrt", "X", "--order", "2"]) == 2
    err = capsys.readouterr().err
    assert "rank 6" in err and "Traceback" not in err and err.count("\n") == 1


# ---- seed 003 question 6: index arithmetic, printed in reading order ----------------------------
def _conv_jacobians(h, w, full):
    d, k = len(h), len(w)
    n_out = d + k - 1 if full else d - k + 1
    J = np.zeros((n_out, d))
    for i in range(n_out):                       # a_i = Σ_j h_{i+j-k} w_j (full), h_{i+j-1} w_j (valid)
        for j in range(k):
            m = i + j - (k - 1 if full else 0)
            if 0 <= m < d:
                J[i, m] += w[j]
    return J


def test_seed003_q65_full_convolution_with_declared_output_size():
    """∂a_i/∂h_n = w_{n-i+k} (seed 003 question 6.5): the output's size d+k-1 is declared."""
    h, w = rand(6), rand(3)
    d = derive("a[i] = Σ_j h[i+j-k] w[j]", "h", "h: d, w: k, a: d+k-1")
    r = d.results[0]
    np.testing.assert_allclose(run_code(r.numpy, {"h": h, "w": w}), _conv_jacobians(h, w, full=True))
    assert r.index_form.replace(" ", "") == "w_{l-i+k}"


def test_seed003_q66_backprop_of_full_convolution():
    from indexcalc import backprop
    h, w, da = rand(6), rand(3), rand(8)
    d = backprop("a[i] = Σ_j h[i+j-k] w[j]", "h", "h: d, w: k, a: d+k-1")
    got = run_code(d.results[0].numpy, {"h": h, "w": w, "da": da})
    np.testing.assert_allclose(got, da @ _conv_jacobians(h, w, full=True))


def test_flip_with_a_size_in_the_index():
    """w[K-j+1] with w: K: K is the size (a number), not an index; j's range is inferred."""
    w = rand(4)
    d = derive("y[j] = w[K-j+1]", "w", "w: K")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"w": w}), np.fliplr(np.eye(4)))
    d = derive("y_j = w_{k-j+1}", "w", "w: k")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"w": w}), np.fliplr(np.eye(4)))


def test_index_arithmetic_reads_in_order():
    """The seeds write w_{n-i+1} and h_{n+j-1}: a term with a plus sign first, the output's
    index before the variable's, numbers last (not SymPy's -i+n+1)."""
    d = derive("a[n] = Σ_j h[n+j-1] w[j]", "h,w", "h: d, w: k")
    assert [r.index_form.replace(" ", "") for r in d.results] == ["w_{i-n+1}", "h_{n+i-1}"]
    d = derive("a_i = Σ_j h_{i+j-1} w_j", "h")
    assert d.results[0].index_form.replace(" ", "") == "w_{k-i+1}"
    from indexcalc import backprop
    tex = backprop("a[i] = Σ_j h[i+j-1] w[j]", "h", "h: n, w: a").results[0].steps[1].latex
    assert "n - a + 1" in tex and "-a + n" not in tex


def test_size_sums_in_declarations():
    from indexcalc.errors import ShapeError
    from indexcalc.shapes import parse_decls
    assert str(parse_decls("a: d+k-1")["a"][0]) == "d + k - 1"
    with pytest.raises(ShapeError):
        parse_decls("a: 3-1")


# ---- bad input: exit 2 with one sentence ----------------------------------------------------------
BAD = [
    ("divides by zero", ["derive", "Σ_i x[i] / (Σ_j x[j] - Σ_j x[j])", "--wrt", "x"], "divides by zero"),
    ("an index only in deltas", ["derive", "Σ_{i,j} δ_ij", "--wrt", "x"], "Kronecker deltas"),
    ("a full convolution's output undeclared", ["derive", "a[i] = Σ_j h[i+j-k] w[j]", "--wrt", "h",
                                                "--where", "h: d, w: k"], "declare the size of a"),
    ("a size that is no sum of sizes", ["derive", "a[i] = h[i]", "--wrt", "h", "--where", "a: 3-1"], "3-1"),
]


@pytest.mark.parametrize("label, argv, words", BAD, ids=[b[0] for b in BAD])
def test_bad_index_input_is_exit_2(label, argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and words in err and err.startswith("indexcalc: error:"), err


# ---- problem files take index notation: Hessians and Jacobians --------------------------------------
def test_problem_file_with_index_notation(tmp_path, capsys):
    f = tmp_path / "p.toml"
    f.write_text('''title = "Index notation"

[[problem]]
id = "hessian"
title = "A Hessian"
statement = 'The Hessian of $\\\\sum_{i,j} x_i A_{ij} x_j$.'
expression = "Σ_{i,j} x_i A_ij x_j"
wrt = ["x"]
order = 2

[[problem]]
id = "full-conv"
title = "Seed 003 q6.5"
statement = 'The Jacobian of a full convolution.'
equation = "a_i = Σ_j h_{i+j-k} w_j"
where = "h: d, w: k, a: d+k-1"
wrt = ["h"]
jacobian = true
''', encoding="utf-8")
    assert main(["solve", str(f)]) == 0
    out = capsys.readouterr().out
    assert "A + A^T" in out and "w_{l-i+k}" in out


def test_boxed_second_derivative_names_both_indices():
    """The boxed answer of a Hessian with no closed form is ∂²f/∂x_l∂x_m (it was ∂f/∂x_l)."""
    from indexcalc.output import answer_latex
    d = derive("Σ_{i,j,k} T_ijk x_i x_j x_k", "x", order=2)
    lhs, _ = answer_latex(d, d.results[0])
    assert lhs.startswith(r"\frac{\partial^2 f}") and "x_{l} \\partial x_{m}" in lhs, lhs


# ---- random polynomial forms: their Hessians against np.einsum -----------------------------------
from hypothesis import given, note, settings  # noqa: E402

from .strategies import index_forms  # noqa: E402


@settings(max_examples=12)
@given(index_forms())
def test_random_index_forms_hessian_against_einsum(case):
    note(f"indexcalc derive {case.text!r} --wrt x --order 2")
    d = derive(case.text, "x", order=2)
    got = run_code(d.results[0].numpy, case.arrays)
    assert got.shape == case.hessian.shape
    np.testing.assert_allclose(got, case.hessian, rtol=1e-8, atol=1e-10)


# ---- check: claims about index-notation equations ---------------------------------------------------
CLAIMS = [
    # a claim may use the module's output, in either notation (SPEC §6)
    ("y_i = exp(x_i) / Σ_k exp(x_k)", "x", None, "y ∘ (dy - (dy^T y))", True),
    ("y_i = exp(x_i) / Σ_k exp(x_k)", "x", None, "g_j = y_j dy_j - y_j Σ_i dy_i y_i", True),
    ("y_i = exp(x_i) / Σ_k exp(x_k)", "x", None, "y ∘ dy", False),
    ("Y[i,j] = sigmoid(X[i,j])", "X", None, "G[i,j] = Y[i,j] (1 - Y[i,j]) dY[i,j]", True),
    # a size written as the number it happens to have: the points differ in their sizes
    ("Y[i,j] = Σ_p X[i,p] W[j,p] / M", "X", "X: N×M, W: P×M", "dY W / 3", False),
    ("Y[i,j] = Σ_p X[i,p] W[j,p] / M", "X", "X: N×M, W: P×M", "dY W / M", True),
]


@pytest.mark.parametrize("eq, wrt, where, claim, right", CLAIMS, ids=[f"{c[0][:14]} {c[3]}" for c in CLAIMS])
def test_check_claims_about_index_equations(eq, wrt, where, claim, right):
    from indexcalc import check
    assert check(eq, wrt, claim, where).correct is right


# ---- the seeds' Σ with bounds, and typeset characters ---------------------------------------------
def test_sum_with_the_seeds_bounds():
    """\\sum_{j=1}^{k} h_{i+j-1} w_j, as seed 003 writes it: the bound is j's range."""
    h, w = rand(7), rand(3)
    J = _conv_jacobians(h, w, full=False)
    for text in ["a_i = Σ_{j=1}^{k} h_{i+j-1} w_j", "a_i = \\sum_{j=1}^k h_{i+j-1} w_j"]:
        d = derive(text, "h", "h: d")
        assert d.variables["w"].shape[0] == "k"
        np.testing.assert_allclose(run_code(d.results[0].numpy, {"h": h, "w": w}), J)
    x = rand(3)
    d = derive("Σ_{i=1}^{3} x_i²", "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), 2 * x)


BOUNDS_BAD = [
    ("from 0", "Σ_{j=0}^{k} x_j", "run from 1"),
    ("no lower bound", "Σ_j^{k} x_j", "no lower one"),
    ("bound against the place", "Σ_{k=1}^{n} x_k", "runs over m"),
]


@pytest.mark.parametrize("label, expr, words", BOUNDS_BAD, ids=[b[0] for b in BOUNDS_BAD])
def test_bad_bounds_are_exit_2(label, expr, words, capsys):
    assert main(["derive", expr, "--wrt", "x", "--where", "x: m"]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err


def test_typeset_characters_in_index_notation():
    x, y = rand(4), rand(4)
    d = derive("Σ_i x_i · y_i − Σ_i x_i²", "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "y": y}), y - 2 * x)


# ---- grade: a class's answers to problems in index notation -----------------------------------------
def test_grade_index_problems(tmp_path):
    """The problem's variables come from the index reader (they were read as the matrix
    language: X_ip, Σ_p); an `order = 2` problem is graded against its Hessian."""
    import importlib
    G = importlib.import_module("indexcalc.grade")
    problems = tmp_path / "p.toml"
    problems.write_text('''title = "Index notation"

[[problem]]
id = "hess"
title = "A Hessian"
statement = 'The Hessian.'
expression = "Σ_{i,j} x_i A_ij x_j"
wrt = ["x"]
order = 2

[[problem]]
id = "linear"
title = "Linear layer"
statement = 'Backprop.'
equation = "Y_ij = Σ_p X_ip W_jp + b_j"
wrt = ["W", "b"]
''', encoding="utf-8")
    answers = tmp_path / "a.csv"
    answers.write_text("student,problem,variable,answer\n"
                       "ann,hess,x,A + A^T\n"
                       "bob,hess,x,2 A\n"
                       "ann,linear,W,dY^T X\n"
                       "bob,linear,b,dY\n"
                       'cid,linear,W,"G[j,p] = Σ_i dY[i,j] X[i,p]"\n', encoding="utf-8")
    report = G.grade(str(problems), str(answers))
    assert [c.verdict for c in report.claims] == ["right", "wrong", "right", "wrong", "right"]


# ---- serve: the page's check takes index notation --------------------------------------------------
@pytest.mark.parametrize("expr, wrt, answer, command", [
    ("Σ_{i,j} x_i A_ij x_j", "x", "(A + A^T) x", "derive"),
    ("Y[i,j] = Σ_p X[i,p] W[j,p]", "X", "dY W", "backprop"),
])
def test_serve_check_of_index_notation(expr, wrt, answer, command):
    """The page's check decided derive or backprop by the matrix parser, which cannot read
    index notation (the page showed a parse error at '[')."""
    from indexcalc import serve
    r = serve.compute(serve.validate({"command": "check", "expr": expr, "wrt": wrt, "answer": answer}))
    assert r["ok"], r
    assert r["verdict"]["correct"] is True and r["derivation"]["command"] == command


# ---- entries at fixed places (x[1], x_1, A_12) and a Σ of a negated summand ---------------------------
def test_entries_at_fixed_places():
    """x[2] x[1] was an internal error (exit 3: the matcher took δ_{1,i} for an identity)."""
    x, A = rand(4), rand(3, 4)
    e0, e1 = np.eye(4)[0], np.eye(4)[1]
    cases = [
        ("x[1] + Σ_i x_i", "x", {"x": x}, np.ones(4) + e0, 1),
        ("x_1 + Σ_i x_i", "x", {"x": x}, np.ones(4) + e0, 1),
        ("x[2] x[1]", "x", {"x": x}, x[0] * e1 + x[1] * e0, 1),
        ("x[2] x[1]", "x", {"x": x}, np.outer(e0, e1) + np.outer(e1, e0), 2),
        ("Σ_i x_i / x[1]", "x", {"x": x}, 1 / x[0] - e0 * x.sum() / x[0] ** 2, 1),
        ("A_12 + Σ_{i,j} A_ij", "A", {"A": A}, np.ones((3, 4)) + np.outer(np.eye(3)[0], e1), 1),
        ("y_i = x_i - x_1", "x", {"x": x}, np.eye(4) - np.outer(np.ones(4), e0), 1),
    ]
    for text, wrt, arrays, want, order in cases:
        d = derive(text, wrt, order=order)
        np.testing.assert_allclose(run_code(d.results[0].numpy, arrays), want, err_msg=text)


def test_sum_of_a_negated_summand():
    x = np.abs(rand(4)) + 0.5
    d = derive("Σ_i -x_i log(x_i)", "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), -np.log(x) - 1)


def test_bracketed_exponents():
    """x_i^{2} and x_i^(1/2) were internal errors (exit 3: the grammar's bracketed exponent
    reached the tree untransformed)."""
    x = np.abs(rand(4)) + 0.5
    for text, want in [("Σ_i x_i^{2}", 2 * x), ("Σ_i x_i^(1/2)", 0.5 / np.sqrt(x)),
                       ("Σ_i x_i^{1+2}", 3 * x ** 2)]:
        d = derive(text, "x")
        np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), want, err_msg=text)


def test_an_indexed_exponent():
    """e^{x_i} is the exponential (tests/test_index_papers.py); any other base, a declared e
    among them, is a^{x_i} = exp(x_i log a) (it was refused: 'an exponent must not carry an index')."""
    x, y = np.abs(rand(4)) + 0.5, rand(4)
    for text, where, arrays, wrt, want in [
            ("Σ_i e^{x_i}", "e: scalar", {"x": x, "e": 1.7}, "x", np.log(1.7) * 1.7 ** x),
            ("Σ_i 2^{x_i}", None, {"x": x}, "x", np.log(2) * 2 ** x),
            ("Σ_i x_i^{y_i}", None, {"x": x, "y": y}, "x", y * x ** (y - 1)),
            ("Σ_i x_i^{y_i}", None, {"x": x, "y": y}, "y", np.log(x) * x ** y)]:
        d = derive(text, wrt, where)
        np.testing.assert_allclose(run_code(d.results[0].numpy, arrays), want, err_msg=text)


# ---- check of tensor equations: index claims, batched claims ------------------------------------------
TENSOR_CLAIMS = [
    # the matrix language on tensors (its reference was drawn from the tree `L`: internal error)
    ("S = Q K^T", "K", "G[b,j,k] = Σ_i dS[b,i,j] Q[b,i,k]", True),
    ("S = Q K^T", "K", "dS^T Q", True),
    ("S = Q K^T", "Q", "dS K", True),
    # index notation, a batched claim (^T of a tensor was NumPy's .T, all axes: 'cannot be evaluated')
    ("S[b,i,j] = Σ_k Q[b,i,k] K[b,j,k]", "K", "dS^T Q", True),
    ("S[b,i,j] = Σ_k Q[b,i,k] K[b,j,k]", "K", "2 dS^T Q", False),
    ("S[b,i,j] = Σ_k Q[b,i,k] K[b,j,k]", "Q", "dS K", True),
]


@pytest.mark.parametrize("eq, wrt, claim, right", TENSOR_CLAIMS, ids=[f"{c[0][:9]} {c[2]}" for c in TENSOR_CLAIMS])
def test_check_claims_about_tensor_equations(eq, wrt, claim, right):
    from indexcalc import check
    v = check(eq, wrt, claim, "Q: B×S×D, K: B×T×D")
    assert v.correct is right, v.reason
