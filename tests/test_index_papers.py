"""Index notation as papers and the seeds write it (held-out family "tensors in index notation"
and "notation as papers write it"): each case here was refused or misread before its fix. Every
answer is the generated NumPy code evaluated on random arrays and compared with a reference
written here by hand (np.einsum, explicit loops, finite differences of NumPy)."""
import numpy as np
import pytest

from indexcalc import backprop, derive

from .references import run_code, softmax

RNG = np.random.default_rng(5)


def rand(*shape):
    return RNG.normal(size=shape)


def shift_conv(x, f):
    """y_i = Σ_k x_{i+k} f_k with indices from 1: i = 1..d-K."""
    d, k = len(x), len(f)
    return np.array([sum(x[i + j + 1] * f[j] for j in range(k)) for i in range(d - k)])


# ---- an index named like a size: Σ_k X_ik W_kj with W: k×n (the Σ's binding wins) ---------------
def test_sum_index_named_like_a_declared_size():
    X, W = rand(3, 5), rand(5, 4)
    d = derive("Y_ij = σ(Σ_k X_ik W_kj)", "W", "X: m×k, W: k×n")
    s = 1 / (1 + np.exp(-X @ W))
    want = np.einsum("ij,ik,jl->ijkl", s * (1 - s), X, np.eye(4))
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": X, "W": W}), want, atol=1e-12)


def test_cp_rank_index_named_like_its_size():
    T, A, B, C = rand(3, 4, 2), rand(3, 5), rand(4, 5), rand(2, 5)
    d = derive("Σ_{i,j,k} (T_ijk - Σ_r A_ir B_jr C_kr)^2", "A", "T: a×b×c, A: a×r, B: b×r, C: c×r")
    R = T - np.einsum("ir,jr,kr->ijk", A, B, C)
    want = -2 * np.einsum("ijk,jr,kr->ir", R, B, C)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"T": T, "A": A, "B": B, "C": C}), want)


def test_shift_convolution_with_the_kernel_size_named_k():
    x, f = rand(7), rand(3)
    d = derive("y_i = Σ_k x_{i+k} f_k", "x", "x: d, f: k")
    want = np.zeros((4, 7))
    for i in range(4):
        for j in range(3):
            want[i, i + j + 1] = f[j]
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "f": f}), want)
    dy = rand(4)
    b = backprop("y_i = Σ_k x_{i+k} f_k", "f", "x: d, f: k")
    got = run_code(b.results[0].numpy, {"x": x, "f": f, "dy": dy})
    np.testing.assert_allclose(got, [sum(dy[i] * x[i + j + 1] for i in range(4)) for j in range(3)])
    assert shift_conv(x, f) @ dy == pytest.approx(got @ f)


def test_output_index_named_like_a_size():
    x, W, z = rand(4), rand(3, 4, 2), rand(2)
    b = backprop("y_k = Σ_ij x_i W_kij z_j", "W", "W: k×m×n")
    dy = rand(3)
    got = run_code(b.results[0].numpy, {"x": x, "W": W, "z": z, "dy": dy})
    np.testing.assert_allclose(got, np.einsum("k,i,j->kij", dy, x, z))


def test_a_size_outside_the_binding_stays_a_size():
    """w_{k-j+1} flips w: k while a Σ_k elsewhere binds its own k."""
    w, x = rand(3), rand(3)
    d = derive("Σ_j w_{k-j+1} x_j + Σ_k w_k", "w", "w: k, x: k")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"w": w, "x": x}), x[::-1] + 1)


# ---- Σ_{ik}: one letter per index inside braces too, as the seeds write it ------------------------
@pytest.mark.parametrize("text", [r"-\frac{1}{S} \sum_{ik} T_{ik} \log(X_{ik})",
                                  "-1/S Σ_{ik} T_ik log(X_ik)", "-1/S sum_{i k} T_ik log(X_ik)"])
def test_sum_over_letters_in_braces(text):
    X, T = np.abs(rand(3, 4)) + 0.5, rand(3, 4)
    d = derive(text, "X", "X: S×C, T: S×C")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": X, "T": T, "S": 3}), -T / X / 3)


# ---- e^{x_i} is the exponential; \log \sum_j ... takes the Σ with its scope -----------------------
@pytest.mark.parametrize("text", ["S_i = e^{x_i} / Σ_j e^{x_j}", r"S_i = \frac{e^{x_i}}{\sum_j e^{x_j}}",
                                  "S_i = e^(x_i) / Σ_j e^(x_j)"])
def test_softmax_with_e_to_the_power(text):
    x = rand(4)
    s = softmax(x)
    d = derive(text, "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), np.diag(s) - np.outer(s, s), atol=1e-12)


@pytest.mark.parametrize("text", [r"\log \sum_j e^{x_j}", r"\log \sum_{j=1}^{n} \exp(x_j) - x_1",
                                  r"\sum_i \log \sum_j \exp(X_{ij})"])
def test_log_of_a_sum_without_brackets(text):
    X = rand(3, 4)
    if "X" in text:
        d = derive(text, "X")
        np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": X}), softmax(X))
        return
    x = X[0]
    d = derive(text, "x", "x: n")
    want = softmax(x) - (np.eye(4)[0] if "x_1" in text else 0)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), want)


# ---- one character per index in braces: W_{1j}, a_{12}; a stride 2i is refused ---------------------
def test_digit_and_letter_in_braces_is_two_indices():
    W, x = rand(3, 4), rand(4)
    d = derive(r"\exp\left(\sum_j W_{1j} x_j\right)", "W")
    want = np.zeros((3, 4))
    want[0] = np.exp(W[0] @ x) * x
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"W": W, "x": x}), want)
    d = derive("Σ_j W_{12} x_j", "W")              # W[1,2] of a matrix, as W_12
    want = np.zeros((3, 4))
    want[0, 1] = x.sum()
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"W": W, "x": x}), want)
    d = derive("x_{12} + Σ_i x_i", "x", "x: n")     # the 12th entry of a vector
    x = rand(12)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), np.ones(12) + np.eye(12)[11])


@pytest.mark.parametrize("text, words", [
    ("Σ_i x_{2i}", "strided index 2i"),             # x_{2i} alone may be the seeds' X[2,i]
    ("Σ_i x_{2i+1}", "give its Σ a bound"),         # a stride is read; its range needs a size
    ("Σ_i x[2i]", "give its Σ a bound"),
    ("y[n] = Σ_j x[2n+j] w[j]", "declare the size of y"),
])
def test_a_stride_without_sizes_is_refused(text, words, capsys):
    from indexcalc.cli import main
    assert main(["derive", text, "--wrt", "x"]) == 2
    assert words in capsys.readouterr().err


def test_a_strided_window():
    """x[2i+j-2] (stride 2, a window of k), as a strided convolution or pooling writes it (refused
    before): its range is the valid one, ⌊(d - k)/2⌋ + 1, where the sizes are numbers, or the
    left side's declared size; by hand against loops."""
    x, w = rand(7), rand(3)
    d = derive("y[i] = Σ_j x[2i+j-2] w[j]", "x,w", "x: 7, w: 3")
    dx, dw = np.zeros((3, 7)), np.zeros((3, 3))
    for i in range(3):
        dx[i, 2 * i:2 * i + 3], dw[i] = w, x[2 * i:2 * i + 3]
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "w": w}), dx)
    np.testing.assert_allclose(run_code(d.results[1].numpy, {"x": x, "w": w}), dw)
    X, K = rand(5, 5), rand(3, 3)                        # 2-D, stride 2: Y is 2×2
    b = backprop("Y[i,j] = Σ_{p,q} X[2i+p-2, 2j+q-2] K[p,q]", "X", "X: 5×5, K: 3×3")
    dY = rand(2, 2)
    want = np.zeros((5, 5))
    for i in range(2):
        for j in range(2):
            want[2 * i:2 * i + 3, 2 * j:2 * j + 3] += dY[i, j] * K
    np.testing.assert_allclose(run_code(b.results[0].numpy, {"X": X, "K": K, "dY": dY}), want)


# ---- functions as papers spell them; |x_i|; unicode subscripts; \mathcal; \sum_jW ------------------
@pytest.mark.parametrize("text, ref, dref", [
    ("Y_ij = max(X_ij, 0)", lambda X: np.maximum(X, 0), lambda X: (X > 0) * 1.0),
    (r"Y_{ij} = \max(0, X_{ij})", lambda X: np.maximum(X, 0), lambda X: (X > 0) * 1.0),
    ("Y_ij = Softplus(X_ij)", lambda X: np.log1p(np.exp(X)), lambda X: 1 / (1 + np.exp(-X))),
    ("Y_ij = swish(X_ij)", None, lambda X: 1 / (1 + np.exp(-X)) * (1 + X * (1 - 1 / (1 + np.exp(-X))))),
    ("Y_ij = |X_ij|", None, np.sign),
])
def test_entry_functions_as_papers_spell_them(text, ref, dref):
    X, dY = rand(3, 4), rand(3, 4)
    b = backprop(text, "X", "X: m×n")
    np.testing.assert_allclose(run_code(b.results[0].numpy, {"X": X, "dY": dY}), dY * dref(X))


def test_max_over_an_index_is_refused(capsys):
    from indexcalc.cli import main
    assert main(["derive", r"y_i = \max_j X_{ij}", "--wrt", "X"]) == 2
    assert "max-pooling" in capsys.readouterr().err
    assert main(["derive", "Y_ij = max(X_ij, 1)", "--wrt", "X"]) == 2


@pytest.mark.parametrize("text", ["Σᵢⱼ xᵢ Aᵢⱼ xⱼ", r"\mathcal{L} = \sum_{i,j} x_i A_{ij} x_j",
                                  r"\sum_i\sum_jx_iA_{ij}x_j"])
def test_unicode_subscripts_mathcal_and_tex_one_token_subscripts(text):
    x, A = rand(4), rand(4, 4)
    d = derive(text, "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "A": A}), (A + A.T) @ x)


def test_tex_one_token_subscript_of_a_sum():
    W, x, b = rand(3, 4), rand(4), rand(3)
    d = derive(r"y_i=\tanh(\sum_jW_{ij}x_j+b_i)", "b")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"W": W, "x": x, "b": b}),
                               np.diag(1 - np.tanh(W @ x + b) ** 2))


@pytest.mark.parametrize("text", [r"[\mathbf{W}\mathbf{x}]_i", "y_i = (W x)_i"])
def test_entry_of_a_bracketed_expression_says_what_to_write(text, capsys):
    from indexcalc.cli import main
    assert main(["derive", text, "--wrt", "x"]) == 2
    assert "Σ_j W_ij x_j" in capsys.readouterr().err


@pytest.mark.parametrize("text", [r"\mathbf{y}^\top \log \mathrm{softmax}(\mathbf{W}\mathbf{x})",
                                  r"\mathbf{y}^\top \log \operatorname{softmax}\left(\mathbf{W}\mathbf{x}\right)"])
def test_log_of_a_function_in_a_font_command(text):
    W, x, y = rand(3, 4), rand(4), rand(3)
    d = derive(text, "W", "W: m×n")
    p = softmax(W @ x)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"W": W, "x": x, "y": y}),
                               np.outer(y - p * y.sum(), x))


# ---- layer labels: W^{(2)} is a variable W2, never the power W^2 ----------------------------------
def sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("text", [r"\mathbf{v}^\top \sigma(\mathbf{W}^{(2)} \sigma(\mathbf{W}^{(1)} \mathbf{x}))",
                                  "v^T sigmoid(W^{(2)} sigmoid(W^{(1)} x))"])
def test_layer_superscripts_are_labels(text):
    """They were read as the matrix powers W^2 and W^1 of one W: a wrong derivative."""
    v, W2, W1, x = rand(3), rand(3, 4), rand(4, 2), rand(2)
    d = derive(text, "W^{(1)}", "W^{(1)}: m×d, W^{(2)}: n×m")
    h = sigmoid(W1 @ x)
    o = sigmoid(W2 @ h)
    want = np.outer((W2.T @ (v * o * (1 - o))) * h * (1 - h), x)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"v": v, "W2": W2, "W1": W1, "x": x}), want)


@pytest.mark.parametrize("text", [r"y_i = \sum_{j,k} W_{ij}^{(2)} W_{jk}^{(1)} x_k",
                                  r"y_i = \sum_{j,k} W^{(2)}_{ij} W^{(1)}_{jk} x_k", "y_i = Σ_{j,k} W_ij^{(2)} W_jk^{(1)} x_k"])
def test_layer_superscripts_in_index_notation(text):
    W2, W1, x = rand(3, 4), rand(4, 2), rand(2)
    d = derive(text, "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"W2": W2, "W1": W1, "x": x}), W2 @ W1)


def test_a_label_that_is_not_a_name_is_refused(capsys):
    from indexcalc.cli import main
    assert main(["derive", r"\mathbf{W}^{(l-1)} \mathbf{x}", "--wrt", "x"]) == 2
    assert "label" in capsys.readouterr().err
    X = rand(3, 3) + 3 * np.eye(3)
    d = derive(r"\operatorname{tr}(\mathbf{X}^{(-1)})", "X")      # a number in brackets with a sign: a power
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": X}), -np.linalg.inv(X @ X).T)
    x = rand(3)
    d = derive(r"\sum_i e^{(x_i)}", "x")                    # e^{(…)} stays the exponential
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), np.exp(x))


@pytest.mark.parametrize("text", [r"\sum_{i,j=1}^{n} x_i A_{ij} x_j", "Σ_{i,j=1}^n x_i A_ij x_j"])
def test_one_bound_for_several_indices(text):
    x, A = rand(4), rand(4, 4)
    d = derive(text, "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "A": A}), (A + A.T) @ x)


def test_accented_names_in_index_notation():
    """ŷ is a name in the matrix language; index notation read it as an unexpected character."""
    y, yh = rand(4), rand(4)
    b = backprop("L = Σ_i (y_i - ŷ_i)^2", "ŷ")
    np.testing.assert_allclose(run_code(b.results[0].numpy, {"y": y, "ŷ": yh}), 2 * (yh - y))


@pytest.mark.parametrize("text, ref", [(r"\sum_i \log{x_i}", lambda x: 1 / x),
                                       (r"\sum_i \exp{(x_i)}", np.exp),
                                       (r"\exp{x_1} + \sum_i x_i", lambda x: 1 + np.exp(x[0]) * np.eye(len(x))[0])])
def test_function_argument_in_braces(text, ref):
    """TeX's \\log{x_i}: the group is the argument (it was 'unexpected {')."""
    x = np.abs(rand(4)) + 0.5
    d = derive(text, "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), ref(x))


# ---- a function defined by its expression, as papers write it: f(w) = ... --------------------------
@pytest.mark.parametrize("text", ["f(w) = 1/2 ‖X w - y‖^2",
                                  r"f(\mathbf{w}) = \frac{1}{2}\left\|\mathbf{X}\mathbf{w} - \mathbf{y}\right\|^2",
                                  r"\mathcal{L}(\mathbf{w}) = \frac{1}{2}\sum_i \left(\sum_j X_{ij} w_j - y_i\right)^2"])
def test_function_definition_is_its_expression(text):
    X, w, y = rand(5, 3), rand(3), rand(5)
    d = derive(text, "w", "X: m×n")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": X, "w": w, "y": y}), X.T @ (X @ w - y))


def test_function_definition_in_backprop_and_check():
    from indexcalc.check import check
    X, W, Y = rand(4, 3), rand(3, 2), rand(4, 2)
    b = backprop("L(W) = sum((X W - Y) .^ 2)", "W")
    np.testing.assert_allclose(run_code(b.results[0].numpy, {"X": X, "W": W, "Y": Y}), 2 * X.T @ (X @ W - Y))
    assert check(r"f(\mathbf{x}) = \mathbf{x}^\top \mathbf{A} \mathbf{x}", "x", "(A + A^T) x").correct
    assert not check("f(x) = x^T A x", "x", "2 A x").correct


# ---- \mathbf{I}_n and \mathbf{1}_n as papers write them -------------------------------------------
def test_identity_with_its_size_is_the_identity():
    """I_n was a variable named I_n (a general matrix the numpy code asked for)."""
    X = rand(4, 4) + 4 * np.eye(4)
    d = derive(r"\operatorname{tr}\left((\mathbf{X} + \lambda \mathbf{I}_n)^{-1}\right)", "X", "X: n×n")
    Y = np.linalg.inv(X + 0.5 * np.eye(4))
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": X, "lambda": 0.5}), -(Y @ Y).T)
    x = rand(3)
    for text in [r"\mathbf{x}^\top \mathbf{I}_d \mathbf{x}", "x^T I_3 x"]:
        d = derive(text, "x")
        np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), 2 * x, err_msg=text)
    d = derive("x^T I_1 x", "x", "I_1: n×n")                 # declared: a variable
    A = rand(3, 3)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "I_1": A}), (A + A.T) @ x)


def test_ones_with_its_size_is_the_ones_vector():
    r"""\mathbf{1}_n, and 1_n, 1_{m} in plain text (a parse error before), are the ones vector of
    that size: its size holds (1_m^T x with x: n is a shape error), and names no other size
    (I_n X w and 1_n^T exp(X w) made X n×n: the fresh size was named n too)."""
    from indexcalc.errors import ShapeError
    x = rand(4)
    d = derive(r"\mathbf{1}_n^\top \exp(\mathbf{x})", "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), np.exp(x))
    X, w = rand(3, 2), rand(2)
    for text in ["1_n^T exp(X w)", "1_{n}^T exp(X w)", r"\mathbf{1}_n^\top \exp(X w)"]:
        d = derive(text, "w")
        assert [d.variables["X"].shape, d.variables["w"].shape] == [("n", "m"), ("m", 1)], text
        np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": X, "w": w}), X.T @ np.exp(X @ w))
    assert derive("I_n X w", "w").variables["X"].shape == ("n", "m")
    assert derive("1_n^T(x + y)", "x").results[0].closed_form == "1"      # not a function ones_n
    with pytest.raises(ShapeError):
        derive("1_m^T x", "x", "x: n")


# ---- --where as papers declare: X ∈ ℝ^{S×M}, \mathbf{x}, \mathbf{y} \in \mathbb{R}^n, X: (S, M) -------
@pytest.mark.parametrize("where", [r"\mathbf{X} \in \mathbb{R}^{S \times M}, \mathbf{W} \in \mathbb{R}^{M \times N}",
                                   "X ∈ ℝ^{S×M}, W ∈ ℝ^{M×N}", "X: (S, M), W: [M, N]", "X: ℝ^{S×M}, W: M×N",
                                   "X ∈ R^{S×M}, W ∈ ℝᴹˣᴺ"])       # R typed for ℝ, superscript sizes
def test_declarations_as_papers_write_them(where):
    from indexcalc.shapes import parse_decls
    assert dict(parse_decls(where)) == {"X": ("S", "M"), "W": ("M", "N")}
    X, W = rand(3, 4), rand(4, 2)
    d = derive("sum(tanh(X W))", "W", where)
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"X": X, "W": W}), X.T @ (1 - np.tanh(X @ W) ** 2))


def test_declarations_shared_by_several_names():
    from indexcalc.shapes import parse_decls
    got = dict(parse_decls(r"\mathbf{x}, \mathbf{y} \in \mathbb{R}^n, \lambda \in \mathbb{R}, Q ∈ ℝ^{B×S×D}"))
    assert got == {"x": ("n", 1), "y": ("n", 1), "lambda": (1, 1), "Q": ("B", "S", "D")}


def test_definition_named_in_a_font_command():
    """\\mathrm{Attention}(Q,K,V) = … as the paper writes it (it was a parse error at '=')."""
    Q, K, V, dA = rand(3, 4), rand(3, 4), rand(3, 2), rand(3, 2)
    b = backprop(r"\mathrm{Attention}(Q,K,V) = \mathrm{softmax}\left(\frac{Q K^\top}{\sqrt{d_k}}\right)V", "V",
                 "Q ∈ ℝ^{S×d_k}, K ∈ ℝ^{S×d_k}, V ∈ ℝ^{S×d_v}")
    P = softmax(Q @ K.T / 2)
    got = run_code(b.results[0].numpy, {"Q": Q, "K": K, "V": V, "dAttention": dA})
    np.testing.assert_allclose(got, P.T @ dA)


# ---- capitals run together in bold are a product, as the seeds write \mathbf{XW}^T, \mathbf{VXW} -----
def test_bold_capitals_are_a_product():
    X, W, V = rand(3, 4), rand(2, 4), rand(2, 3)
    b = backprop(r"Y = \mathbf{XW}^T + \mathbf{B}", "W", "X: S×M, W: N×M, B: S×N")
    dY = rand(3, 2)
    np.testing.assert_allclose(run_code(b.results[0].numpy, {"X": X, "W": W, "dY": dY}), dY.T @ X)
    Wt = rand(4, 2)
    d = derive(r"\operatorname{tr}(\mathbf{VXW})", "X")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"V": V, "X": X, "W": Wt}), V.T @ Wt.T)
    from indexcalc.latex_input import from_latex
    assert from_latex(r"\mathbf{Diag}(\mathbf{x})") == "Diag(x)"      # lower case in it: a name


def test_bold_capitals_with_a_subscript_are_refused(capsys):
    from indexcalc.cli import main
    assert main(["derive", r"Y_{ij} = \mathbf{XW}_{ij}", "--wrt", "X"]) == 2
    assert "entry of the product X W" in capsys.readouterr().err


@pytest.mark.parametrize("text", [r"S(\mathbf{x})_i = e^{x_i} / \sum_j e^{x_j}", r"S(x)_i := \frac{e^{x_i}}{\sum_j e^{x_j}}"])
def test_definition_of_an_entry_as_seed_003_writes_the_softmax(text):
    x = rand(4)
    s = softmax(x)
    d = derive(text, "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), np.diag(s) - np.outer(s, s), atol=1e-12)


def test_definition_with_colon_equals():
    S = rand(3, 3)
    d = derive(r"tr(S) := \sum_{i} S_{ii}", "S")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"S": S}), np.eye(3))


def test_left_side_that_is_an_entry_of_a_bracket_says_to_name_it(capsys):
    from indexcalc.cli import main
    assert main(["derive", r"(\mathbf{x} * \mathbf{w})_n = \sum_{j=1}^k x_{n+j-1} w_j", "--wrt", "x"]) == 2
    assert "name the entry" in capsys.readouterr().err


# ---- Einstein's convention, as papers mix it with written Σs ---------------------------------------
def test_cp_contraction_as_the_brief_writes_it():
    """L = Σ_ijk T_ijk A_ia B_ja C_ka: a, written three times and bound by no Σ, is summed (it
    was refused: 'the index a is free on the right side but not on the left side')."""
    T, A, B, C = rand(3, 4, 2), rand(3, 5), rand(4, 5), rand(2, 5)
    b = backprop("L = Σ_ijk T_ijk A_ia B_ja C_ka", "A", "T: I×J×K, A: I×R, B: J×R, C: K×R")
    np.testing.assert_allclose(run_code(b.results[0].numpy, {"T": T, "A": A, "B": B, "C": C}),
                               np.einsum("ijk,ja,ka->ia", T, B, C))


@pytest.mark.parametrize("text, wrt, ref", [
    ("y_i = tanh(W_ij x_j)", "x", lambda W, x: (1 - np.tanh(W @ x) ** 2)[:, None] * W),    # inside tanh
    ("y_i = W_ij x_j + b_i", "x", lambda W, x: W),
    ("y_i = exp(x_j) W_ij", "x", lambda W, x: W * np.exp(x)),
    ("y_i = A_ij (x_j + 1)", "x", lambda W, x: W),
])
def test_repeated_index_is_summed_over_its_product(text, wrt, ref):
    W, x, b = rand(3, 4), rand(4), rand(3)
    d = derive(text, wrt)
    got = run_code(d.results[0].numpy, {"W": W, "A": W, "x": x, "b": b})
    np.testing.assert_allclose(got, ref(W, x))


@pytest.mark.parametrize("text", ["y_i = W_ij + x_j", "L = Σ_i x_i + y_j"])
def test_an_index_written_once_or_in_two_terms_stays_free(text, capsys):
    from indexcalc.cli import main
    assert main(["backprop", text, "--wrt", "x"]) == 2
    assert "free" in capsys.readouterr().err


# ---- a Greek name is one name however it is spelled: \mu, mu, μ ------------------------------------
@pytest.mark.parametrize("text, wrt, where", [
    ("Σ_i (x_i - μ_i)^2", "mu", "x: n, mu: n"),           # was: 'mu' does not appear
    (r"\sum_i (x_i - \mu_i)^2", "μ", "x: n, μ: n"),
])
def test_a_greek_name_declared_in_another_spelling(text, wrt, where):
    x, mu = rand(4), rand(4)
    d = derive(text, wrt, where)
    got = run_code(d.results[0].numpy, {"x": x, "mu": mu, "μ": mu})
    np.testing.assert_allclose(got, -2 * (x - mu))


def test_a_greek_name_declared_a_vector_and_written_bare_is_refused(capsys):
    from indexcalc.cli import main
    assert main(["derive", "Σ_i (x_i - μ)^2", "--wrt", "x", "--where", "x: n, mu: n"]) == 2
    assert "index it" in capsys.readouterr().err


# ---- w_0 declared is a name; an entry that does not exist is refused --------------------------------
def test_a_declared_subscripted_name_is_that_name_not_an_entry():
    """y_i - w_0 - Σ_j X_ij w_j with w_0: scalar: the bias w_0 (it was read as w's entry 0, out of
    range, so 0: the bias silently dropped from the loss and its gradient)."""
    X, w, y, w0 = rand(5, 3), rand(3), rand(5), 0.7
    r = y - w0 - X @ w
    text, where = "Σ_i (y_i - w_0 - Σ_j X_ij w_j)^2", "X: m×n, w: n, y: m, w_0: scalar"
    env = {"X": X, "w": w, "y": y, "w_0": w0}
    np.testing.assert_allclose(run_code(derive(text, "w", where).results[0].numpy, env), -2 * X.T @ r)
    np.testing.assert_allclose(run_code(derive(text, "w_0", where).results[0].numpy, env), -2 * r.sum())


@pytest.mark.parametrize("text, where, words", [
    ("Σ_i (y_i - w_0 - Σ_j X_ij w_j)^2", None, ["w_0", "from 1", "w_0: scalar"]),
    ("Σ_i x_i + x[0]", "x: 3", ["x[0]", "from 1"]),
    ("Σ_i x_i + x_5", "x: 3", ["x_5", "1 to 3"]),
])
def test_an_entry_that_does_not_exist_is_refused(text, where, words, capsys):
    from indexcalc.cli import main
    assert main(["derive", text, "--wrt", "x" if "x_i" in text else "w"] + (["--where", where] if where else [])) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err


def test_square_brackets_group_as_papers_write_them():
    """-Σ_i [y_i log(σ(z_i)) + (1 - y_i) log(1 - σ(z_i))]: a bracket (it was a parse error)."""
    y, z = RNG.uniform(size=4), rand(4)
    d = derive("-Σ_i [y_i log(σ(z_i)) + (1 - y_i) log(1 - σ(z_i))]", "z")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"y": y, "z": z}), 1 / (1 + np.exp(-z)) - y)


def test_the_guard_finds_a_point_inside_log_of_one_minus():
    """log(1 - p_i) is finite only for p_i < 1: the guard scales its point down, as the matrix
    language's does (it refused: 'the input is not finite at random points')."""
    y, p = RNG.uniform(size=4), RNG.uniform(0.2, 0.8, size=4)
    d = derive("-Σ_i [y_i log(p_i) + (1 - y_i) log(1 - p_i)]", "p")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"y": y, "p": p}), (1 - y) / (1 - p) - y / p)


# ---- a unit axis that the entry names: a batch of one ------------------------------------------------
def _conv2d(X, W):
    n, c, h, w = X.shape
    o, _, k, m = W.shape
    return np.array([[[[np.sum(X[a, :, i:i + k, j:j + m] * W[b]) for j in range(w - m + 1)]
                       for i in range(h - k + 1)] for b in range(o)] for a in range(n)])


@pytest.mark.parametrize("var", ["X", "W"])
def test_conv2d_of_a_batch_of_one(var):
    """X: 1×C×H×W indexed X[n,c,i+p-1,j+q-1]: ∂X[n,..]/∂X[a,..] paired n with the channel place
    (the unit place has no index of the variable's own), and the NumPy code dropped the unit
    axis of an entry that names it: refused (IndexError) by W, exit 3 by X."""
    X, W = rand(1, 2, 4, 4), rand(2, 2, 2, 2)
    d = derive("Y[n,o,i,j] = Σ_{c,p,q} X[n,c,i+p-1,j+q-1] W[o,c,p,q]", var, "X: 1×2×4×4, W: 2×2×2×2")
    got = run_code(d.results[0].numpy, {"X": X, "W": W})
    base, eps = {"X": X, "W": W}, 1e-6
    want = np.zeros(got.shape)
    for idx in np.ndindex(*base[var].shape):
        hi, lo = base[var].copy(), base[var].copy()
        hi[idx] += eps
        lo[idx] -= eps
        want[(Ellipsis, *idx)] = (_conv2d(**{**base, var: hi}) - _conv2d(**{**base, var: lo})) / (2 * eps)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_a_decorated_name_is_one_name():
    """-Σ_i t_i log ŷ_i as papers write it: \\hat{y} is the name yhat (it was refused)."""
    t, yhat = rand(4), RNG.uniform(0.5, 1.5, size=4)
    d = derive(r"-\sum_i t_i \log \hat{y}_i", "yhat")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"t": t, "yhat": yhat}), -t / yhat)


def test_a_label_that_a_sum_binds_is_the_sample_index():
    """\\sum_i y^{(i)} \\log h^{(i)}: ML papers' sample i is the entry y_i (the label made the names
    yi and hi, and the Σ was refused: 'i does not appear in its scope'); W^{(1)} stays a label."""
    y, h, X, mu = rand(4), RNG.uniform(0.5, 1.5, size=4), rand(4, 3), rand(3)
    d = derive(r"\sum_{i} y^{(i)} \log h^{(i)}", "h")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"y": y, "h": h}), y / h)
    d = derive(r"\sum_{i=1}^{m}\sum_{j} (x^{(i)}_j - \mu_j)^2", "mu", "x: m×n, mu: n")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": X, "mu": mu}), -2 * (X - mu).sum(0))


def test_tex_grouping_braces_after_a_sum():
    x, y = rand(4), rand(4)
    d = derive(r"\sum_i{(x_i - y_i)^2} + \sum_{i}{x_i}", "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "y": y}), 2 * (x - y) + 1)


def test_a_sum_over_i_in_brackets_n():
    """\\sum_{i,j \\in [n]}: [n] is 1, ..., n, as Σ_{i,j=1}^{n} (\\in was refused)."""
    x, A = rand(4), rand(4, 4)
    for text in (r"\sum_{i,j \in [n]} x_i A_{ij} x_j", "Σ_{i,j∈[n]} x_i A_ij x_j"):
        d = derive(text, "x")
        np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "A": A}), (A + A.T) @ x)


def test_einstein_sums_each_term_that_repeats_the_index():
    """y_i = tanh(A_ij x_j + A_ji x_j): j written twice in each term is summed in each (it was
    refused as free, its places meeting first at the +); A_ij x_j + b_j stays refused."""
    A, x = rand(4, 4), rand(4)
    d = derive("y_i = tanh(A_ij x_j + A_ji x_j)", "x")
    s = 1 - np.tanh((A + A.T) @ x) ** 2
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"A": A, "x": x}), s[:, None] * (A + A.T))
    from indexcalc.errors import IndexCalcError
    with pytest.raises(IndexCalcError, match="free"):
        derive("y_i = A_ij x_j + b_j", "x")


@pytest.mark.parametrize("claim, right", [
    ("∂L/∂W = dY^T X", True),
    (r"\frac{\partial \mathcal{L}}{\partial \mathbf{W}} = \mathbf{dY}^\top \mathbf{X}", True),
    (r"\frac{\partial L}{\partial W_{jp}} = \sum_i dY_{ij} X_{ip}", True),
    ("dL/dW[j,p] = Σ_i dY[i,j] X[i,p]", True),
    (r"\nabla_W L = X^T dY", False),
])
def test_a_claim_with_its_derivative_on_the_left(claim, right):
    """Students write the derivative they state on the left (they were parse errors)."""
    from indexcalc import check
    v = check("Y_ij = Σ_p X_ip W_jp", "W", claim)
    assert v.correct is right and v.answer == claim        # JSON's "answer" is the claim as written


def test_a_claim_by_another_variable_is_refused():
    from indexcalc import check
    from indexcalc.errors import IndexCalcError
    with pytest.raises(IndexCalcError, match="--wrt asks for W"):
        check("Y_ij = Σ_p X_ip W_jp", "W", "∂L/∂X = dY W")


def test_numpy_einsum_as_an_input():
    """einsum('bij,bjk->bik', A, B), as code writes a contraction, is index notation (it was an
    unknown function); NumPy's implicit output is the letters written once."""
    A, B, x, M = rand(2, 3, 4), rand(2, 4, 5), rand(3), rand(3, 3)
    dY = rand(2, 3, 5)
    b = backprop("Y = np.einsum('bij,bjk->bik', A, B)", "A")
    np.testing.assert_allclose(run_code(b.results[0].numpy, {"A": A, "B": B, "dY": dY}), dY @ B.transpose(0, 2, 1))
    d = derive("einsum('i,ij,j', x, M, x)", "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "M": M}), (M + M.T) @ x)
    from indexcalc.from_index_notation import parse_index
    from indexcalc.index_syntax import is_index_notation
    assert is_index_notation("Y = einsum('ij,jk->ik', A, B)")          # codegen and problem files ask this
    assert isinstance(parse_index("Y = einsum('ij,jk->ik', A, B)"), tuple)


def test_python_power_in_index_notation():
    x, y = rand(4), rand(4)
    d = derive("Σ_i x_i**2 * y_i", "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "y": y}), 2 * x * y)


def test_the_guard_draws_each_variable_its_own_way():
    """√(x_i - y_i) is finite where x_i > y_i: the guard draws x and y each its own way, as the
    matrix language's does (both positive alike, it found no point: refused)."""
    y = RNG.uniform(-1, 1, size=4)
    x = y + RNG.uniform(0.5, 1.5, size=4)
    d = derive("Σ_i sqrt(x_i - y_i)", "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "y": y}), 0.5 / np.sqrt(x - y))


def test_a_greek_letter_written_two_ways_in_one_expression():
    """λ and \\lambda are one variable in index notation too (two before: by λ the second term was
    left out, and by x the guard rejected the closed form, which the matrix language re-read as one)."""
    x, lam = rand(4), 0.7
    d = derive(r"λ Σ_i x_i^2 + \lambda Σ_i x_i", "λ")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "λ": lam}), x @ x + x.sum())
    d = derive(r"λ Σ_i x_i^2 + \lambda Σ_i x_i", "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "λ": lam}), lam * (2 * x + 1))


def test_a_sum_that_stops_before_the_last_entry_is_refused(capsys):
    """Σ_{i=1}^{n-1} (x_{i+1} - x_i)^2, x undeclared: x's size came from the bound through x_i, and
    x_{i+1} past it read as 0 (the last difference silently lost): refused now."""
    from indexcalc.cli import main
    assert main(["derive", "Σ_{i=1}^{n-1} (x_{i+1} - x_i)^2", "--wrt", "x"]) == 2
    assert "reads past the size of x" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["y_i = exp_i(e_i)", "y_i = tanh_i(e_i)", "y_i = logsumexp_i(e)",
                                  r"\alpha_{ij} = \mathrm{log}_j(e_{ij})"])
def test_a_function_with_a_subscript_is_not_a_variable(text):
    """exp_i(e), tanh_i(e_i): a vector named exp or tanh times the bracket, silently (the
    guard checks what was read); refused. σ_i, sigma_i, φ_i stay entries of a vector."""
    from indexcalc.errors import UnsupportedError
    with pytest.raises(UnsupportedError, match="is a function, not a variable"):
        backprop(text, "e")
    s, e, dy = rand(3), rand(3), rand(3)
    b = backprop("y_i = σ_i(e_i + 1)", "e")
    np.testing.assert_allclose(run_code(b.results[0].numpy, {"σ": s, "e": e, "dy": dy}), dy * s)


def test_a_sum_over_a_free_index_is_refused():
    """a_ij = exp(e_ij) / Σ_j exp(e_ij): the Σ's j shadows the free j; the engine took both for
    one index and its own check failed (exit 3, 'indexcalc bug'). Refused with what to write."""
    from indexcalc.errors import IndexCalcError
    for text in ["a_ij = exp(e_ij) / Σ_j exp(e_ij)", "y_j = e_j + Σ_j e_j"]:
        with pytest.raises(IndexCalcError, match="also a free index of the left side"):
            backprop(text, "e")
    # a sum no one wrote (Einstein's, of W_hh) is not blamed; an RNN step h_t = f(h_{t-1}) is told
    # to name each step's vector
    with pytest.raises(IndexCalcError, match="the index x is free on the right side"):
        backprop("y_t = tanh(U_hh s_t + U_xh x_t)", "U")
    with pytest.raises(IndexCalcError, match=r"h\[t\] = f\(h\[t-1\]\) is a recurrence"):
        backprop(r"h_t = \tanh(W_{hh} h_{t-1} + W_{xh} x_t)", "W")


@pytest.mark.parametrize("text", ["a_ij = softmax_j(e_ij)", r"a_{ij} = \mathrm{softmax}_j(e_{ij})",
                                  "a_ij = Softmax_{j}(e_ij)"])
def test_softmax_along_an_index_as_attention_papers_write_it(text):
    """α_ij = softmax_j(e_ij) (GAT, attention): the softmax along j, read as exp(e_ij) / Σ_k exp(e_ik)
    (it was a vector named softmax times e_ij, silently)."""
    e, da = rand(3, 4), rand(3, 4)
    s = softmax(e)
    r = backprop(text, "e").results[0]
    np.testing.assert_allclose(run_code(r.numpy, {"e": e, "da": da}), s * (da - np.sum(da * s, 1, keepdims=True)))
    with pytest.raises(Exception, match="normalises along j"):
        backprop("a_i = softmax_j(e_i)", "e")
    with pytest.raises(Exception, match="needs the index it normalises along: softmax_j"):
        backprop("y[i] = Σ_e softmax(G x)[e] Σ_j E[e,i,j] x[j]", "G")     # MoE gating as code writes it


def test_softmax_of_a_vector_written_out_is_the_stable_softmax():
    """y_i = softmax_i(z_i) (and exp(z_i) / Σ_j exp(z_j)): the gradient kept a raw exp(z) in
    (dy^T exp(z)) softmax(z) / (1^T exp(z)), inf / inf for logits of 1000; now
    softmax(z) ∘ (dy - (dy^T softmax(z)) 1), finite. log_softmax_i along with it."""
    z, dy, t = 1000 * rand(5), rand(5), rand(5)
    s = softmax(z)
    for text in ["y_i = softmax_i(z_i)", "y_i = exp(z_i) / Σ_j exp(z_j)"]:
        r = backprop(text, "z").results[0]
        assert "exp(z)" not in r.closed_form, r.closed_form
        np.testing.assert_allclose(run_code(r.numpy, {"z": z, "dy": dy}), s * (dy - dy @ s))
    r = backprop("L = -Σ_i t_i log_softmax_i(z_i)", "z").results[0]
    np.testing.assert_allclose(run_code(r.numpy, {"z": z, "t": t}), t.sum() * s - t)


def test_a_sum_that_leaves_out_the_diagonal():
    """Σ_{j≠i} as papers write it (a parse error before): the terms with j = i left out; the
    other index is summed too where nothing else binds it (Σ_{i≠j} x_i x_j: the pairs)."""
    A, x = rand(4, 4), rand(4)
    off = A - np.diag(np.diag(A))
    d = derive("y_i = Σ_{j≠i} A_ij x_j", "x,A")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"A": A, "x": x}), off)
    want = np.einsum("ij,k->ijk", np.eye(4), x) * (1 - np.eye(4))[:, None, :]    # ∂y_i/∂A_jk
    np.testing.assert_allclose(run_code(d.results[1].numpy, {"A": A, "x": x}), want)
    for text in [r"\sum_{i \neq j} x_i x_j", "Σ_{i,j: i≠j} x_i x_j", "Σ_i Σ_{j != i} x_i x_j"]:
        d = derive(text, "x")
        np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x}), 2 * (x.sum() - x), err_msg=text)


def test_an_upper_case_name_without_indices_is_not_silently_a_scalar():
    """Σ_i (y_i - W x_i)^2: W had no indices and was read as a scalar (W: scalar, a scalar gradient)
    where a reader sees the matrix W (SPEC §1: an upper-case name is a matrix); refused unless
    declared, a size, or only a divisor (1/N Σ_n ...)."""
    from indexcalc.errors import IndexCalcError
    with pytest.raises(IndexCalcError, match="W has no indices"):
        derive("L = Σ_i (y_i - W x_i)^2", "W")
    y, x = rand(3), rand(3)
    d = derive("L = Σ_i (y_i - W x_i)^2", "W", "W: scalar")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"y": y, "x": x, "W": 0.5}), -2 * (y - 0.5 * x) @ x)
    d = derive("1/N Σ_n x_n^2", "x")
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "N": 4.0}), x / 2)


def test_a_scalar_factor_of_sums_in_einsum_code():
    """(1 - tanh(Σ x_i T_ijk z_k)^2) x_a z_c: a scalar factor that is a sum of functions of sums
    had no NumPy form (the einsum printer found the factor again inside it: RecursionError)."""
    x, z, T = rand(4), rand(2), rand(4, 3, 2)
    d = derive("Σ_{i,j,k} x[i] T[i,j,k] - tanh(Σ_{i,j,k} x[i] z[k] T[i,j,k])", "T", "T: n×m×p")
    s = np.einsum("i,ijk,k->", x, T, z)
    want = x[:, None, None] * np.ones((4, 3, 2)) - (1 - np.tanh(s) ** 2) * np.einsum("a,c->ac", x, z)[:, None, :]
    np.testing.assert_allclose(run_code(d.results[0].numpy, {"x": x, "z": z, "T": T}), want)
