"""Reading rules (SPEC §1.1): a table of inputs and the value of the expression as read, checked
against NumPy written by hand at random points; a table of refusals (exit 2, the message names
the input).

Each reading is checked twice: the value of the tree indexcalc read (its plain NumPy
evaluator, node by node) against the hand-written NumPy, and the derivative indexcalc returns
against finite differences of the same hand-written NumPy, so a misreading shows in both."""
from __future__ import annotations

import keyword

import numpy as np
import pytest

from indexcalc import derive, parse
from indexcalc.evaluate import evaluate, to_2d
from indexcalc.errors import ShapeError
from indexcalc.shapes import infer, parse_decls

from .conftest import finite_jacobian
from .references import softmax as softmax_rows

S, N, M = 4, 3, 2          # sizes the variables below are drawn with


def sig(z):
    return 1 / (1 + np.exp(-z))


# (input, --where, wrt, {name: (shape, how)}, hand-written NumPy of the input as a reader reads it)
READINGS = [
    # ---- 1. products and quotients: one precedence, left to right
    ("1/2 x^T A x", None, "x", {"x": ((N,), ""), "A": ((N, N), "")},
     lambda e: 0.5 * e["x"] @ e["A"] @ e["x"]),
    ("λ/2 ‖w‖^2", None, "w", {"λ": ((), ""), "w": ((N,), "")},
     lambda e: e["λ"] / 2 * np.sum(e["w"] ** 2)),
    ("lambda/2 ‖w‖^2", None, "w", {"lambda": ((), ""), "w": ((N,), "")},
     lambda e: e["lambda"] / 2 * np.sum(e["w"] ** 2)),
    ("-1/S sum(T ∘ log(Y))", "T: S×N, Y: S×N", "Y", {"T": ((S, N), ""), "Y": ((S, N), "positive")},
     lambda e: -np.sum(e["T"] * np.log(e["Y"])) / S),
    ("1/2 ‖X w - y‖^2 + λ/2 ‖w‖^2", None, "w",
     {"X": ((S, N), ""), "w": ((N,), ""), "y": ((S,), ""), "λ": ((), "")},
     lambda e: 0.5 * np.sum((e["X"] @ e["w"] - e["y"]) ** 2) + e["λ"] / 2 * np.sum(e["w"] ** 2)),
    ("a / b c", "a: scalar, b: scalar, c: n", "c", {"a": ((), ""), "b": ((), "positive"), "c": ((N,), "")},
     lambda e: e["a"] / e["b"] * e["c"]),
    ("x^T A x / 2", None, "A", {"x": ((N,), ""), "A": ((N, N), "")},
     lambda e: e["x"] @ e["A"] @ e["x"] / 2),
    ("A x / alpha / beta", None, "x", {"A": ((M, N), ""), "x": ((N,), ""), "alpha": ((), "positive"),
                                        "beta": ((), "positive")},
     lambda e: e["A"] @ e["x"] / e["alpha"] / e["beta"]),
    ("2 * x / 3 y", "x: scalar, y: n", "y", {"x": ((), ""), "y": ((N,), "")},
     lambda e: 2 * e["x"] / 3 * e["y"]),
    ("-x^T A x / 2", None, "x", {"x": ((N,), ""), "A": ((N, N), "")},
     lambda e: -(e["x"] @ e["A"] @ e["x"]) / 2),
    # Hadamard products bind like products, left to right
    ("sum((A ∘ B) C)", None, "A", {"A": ((M, N), ""), "B": ((M, N), ""), "C": ((N, S), "")},
     lambda e: np.sum((e["A"] * e["B"]) @ e["C"])),
    ("sum(A ∘ B C)", "A: m×p, B: m×n, C: n×p", "B", {"A": ((M, S), ""), "B": ((M, N), ""), "C": ((N, S), "")},
     None),                                             # (A ∘ B) C: A and B differ in shape (refused below)
    ("sum(A B ∘ C)", None, "A", {"A": ((M, N), ""), "B": ((N, S), ""), "C": ((M, S), "")},
     lambda e: np.sum((e["A"] @ e["B"]) * e["C"])),
    ("sum(X ⊘ Y ∘ Z)", None, "X", {"X": ((M, N), ""), "Y": ((M, N), "positive"), "Z": ((M, N), "")},
     lambda e: np.sum(e["X"] / e["Y"] * e["Z"])),
    ("x · y z^T a", "z: n, a: n", "x", {"x": ((N,), ""), "y": ((N,), ""), "z": ((N,), ""), "a": ((N,), "")},
     lambda e: (e["x"] @ e["y"]) * (e["z"] @ e["a"])),
    ("sum(A * B ./ C)", None, "A", {"A": ((M, N), ""), "B": ((N, S), ""), "C": ((M, S), "positive")},
     lambda e: np.sum((e["A"] @ e["B"]) / e["C"])),
]


def gelu(z):
    from math import erf
    return z * 0.5 * (1 + np.vectorize(erf)(z / np.sqrt(2)))


def elu(z):
    return np.where(z > 0, z, np.exp(z) - 1)


def erf(z):
    from math import erf as e
    return np.vectorize(e)(z)


def log_softmax_rows(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


X_W = {"X": ((S, N), ""), "W": ((N, M), "")}
READINGS += [
    # ---- 3. names: the usual spellings of known functions, aliases resolved
    ("sum(ReLU(X W))", None, "W", X_W, lambda e: np.sum(np.maximum(e["X"] @ e["W"], 0))),
    ("sum(Sigmoid(X W))", None, "W", X_W, lambda e: np.sum(sig(e["X"] @ e["W"]))),
    ("σ(w^T x)", None, "w", {"w": ((N,), ""), "x": ((N,), "")}, lambda e: sig(e["w"] @ e["x"])),
    ("σ w^T x", None, "w", {"σ": ((), ""), "w": ((N,), ""), "x": ((N,), "")},     # a bare σ is a scalar
     lambda e: e["σ"] * (e["w"] @ e["x"])),
    ("sum(Tanh(X) ∘ X)", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(np.tanh(e["X"]) * e["X"])),
    ("sum(T ∘ Softmax(X W))", None, "W", {**X_W, "T": ((S, M), "")},
     lambda e: np.sum(e["T"] * softmax_rows(e["X"] @ e["W"]))),
    ("sum(GELU(X))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(gelu(e["X"]))),
    ("sum(SiLU(X))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(e["X"] * sig(e["X"]))),
    ("sum(swish(X))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(e["X"] * sig(e["X"]))),
    ("sum(T ∘ LogSoftmax(X))", None, "X", {"X": ((S, N), ""), "T": ((S, N), "")},
     lambda e: np.sum(e["T"] * log_softmax_rows(e["X"]))),
    ("sum(max(X W, 0))", None, "W", X_W, lambda e: np.sum(np.maximum(e["X"] @ e["W"], 0))),
    ("sum(maximum(0, X W))", None, "W", X_W, lambda e: np.sum(np.maximum(e["X"] @ e["W"], 0))),
    ("sum(X.T A)", None, "X", {"X": ((S, N), ""), "A": ((S, M), "")}, lambda e: np.sum(e["X"].T @ e["A"])),
    ("‖X‖_F^2", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(e["X"] ** 2)),
    ("||X||_F", None, "X", {"X": ((S, N), "")}, lambda e: np.linalg.norm(e["X"])),
    ("‖x‖_2", None, "x", {"x": ((N,), "")}, lambda e: np.linalg.norm(e["x"])),
    ("λ ‖w‖_1 + ‖w‖_2^2", None, "w", {"λ": ((), ""), "w": ((N,), "")},
     lambda e: e["λ"] * np.sum(np.abs(e["w"])) + np.sum(e["w"] ** 2)),
    ("sum(act(X))", "act: function", "X", {"X": ((S, N), "")}, None),     # generic: no NumPy to compare
    ("sum(W(x + b))", None, "x", {"W": ((M, N), ""), "x": ((N,), ""), "b": ((N,), "")},
     lambda e: np.sum(e["W"] @ (e["x"] + e["b"]))),                      # a matrix times a bracket
    ("sum(W2(W1 x))", None, "x", {"W2": ((M, N), ""), "W1": ((N, N), ""), "x": ((N,), "")},
     lambda e: np.sum(e["W2"] @ e["W1"] @ e["x"])),
    # ---- 4. new functions, each checked against NumPy
    ("mean(X W)", None, "W", X_W, lambda e: np.mean(e["X"] @ e["W"])),
    ("sum(mean(X, 1))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(np.mean(e["X"], axis=1))),
    ("sum(mean(X, 0) ∘ mean(X, 0))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(np.mean(e["X"], axis=0) ** 2)),
    ("mean(x)", None, "x", {"x": ((N,), "")}, lambda e: np.mean(e["x"])),
    ("logsumexp(x)", None, "x", {"x": ((N,), "")}, lambda e: np.log(np.sum(np.exp(e["x"])))),
    ("sum(logsumexp(X W))", None, "W", X_W, lambda e: np.sum(np.log(np.sum(np.exp(e["X"] @ e["W"]), axis=1)))),
    ("a^T log_softmax(x)", None, "x", {"a": ((N,), ""), "x": ((N,), "")},
     lambda e: e["a"] @ log_softmax_rows(e["x"])),
    ("sum(T ∘ log_softmax(X W))", None, "W", {**X_W, "T": ((S, M), "")},
     lambda e: np.sum(e["T"] * log_softmax_rows(e["X"] @ e["W"]))),
    ("sum(gelu(X W))", None, "W", X_W, lambda e: np.sum(gelu(e["X"] @ e["W"]))),
    ("sum(silu(X))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(e["X"] * sig(e["X"]))),
    ("sum(elu(X))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(elu(e["X"]))),
    ("sum(leaky_relu(X, 0.1))", None, "X", {"X": ((S, N), "")},
     lambda e: np.sum(np.where(e["X"] > 0, e["X"], 0.1 * e["X"]))),
    ("sum(leaky_relu(X, alpha))", None, "X", {"X": ((S, N), ""), "alpha": ((), "")},
     lambda e: np.sum(np.where(e["X"] > 0, e["X"], e["alpha"] * e["X"]))),
    ("sum(log1p(X ∘ X))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(np.log1p(e["X"] ** 2))),
    ("sum(expm1(X))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(np.expm1(e["X"]))),
    ("sum(erf(X))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(erf(e["X"]))),
    ("sum(tan(X / 2))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(np.tan(e["X"] / 2))),
    # ---- 5. numbers as written: scientific notation is a number
    ("sum(exp(1e-3 x))", None, "x", {"x": ((N,), "")}, lambda e: np.sum(np.exp(1e-3 * e["x"]))),
    ("1e3 x^T x", None, "x", {"x": ((N,), "")}, lambda e: 1e3 * e["x"] @ e["x"]),
    ("2.5E2 x^T x + 1E-8 x^T x", None, "x", {"x": ((N,), "")}, lambda e: (250 + 1e-8) * e["x"] @ e["x"]),
    ("sum(sigmoid(1.702 X))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(sig(1.702 * e["X"]))),
    ("sum(x .^ 2.5e0)", None, "x", {"x": ((N,), "positive")}, lambda e: np.sum(e["x"] ** 2.5)),
    # ---- 6. broadcasting: a scalar added to or multiplying every entry; 1 next to a vector
    ("‖X w + β - y‖^2", None, "w", {"X": ((S, N), ""), "w": ((N,), ""), "β": ((), ""), "y": ((S,), "")},
     lambda e: np.sum((e["X"] @ e["w"] + e["β"] - e["y"]) ** 2)),
    ("‖X w + β - y‖^2", None, "β", {"X": ((S, N), ""), "w": ((N,), ""), "β": ((), ""), "y": ((S,), "")},
     lambda e: np.sum((e["X"] @ e["w"] + e["β"] - e["y"]) ** 2)),
    ("sum(log(v + ε))", "ε: scalar", "v", {"v": ((N,), "positive"), "ε": ((), "")},
     lambda e: np.sum(np.log(e["v"] + e["ε"]))),
    ("sum(X ⊘ sqrt(V + 1e-5))", None, "V", {"X": ((S, N), ""), "V": ((S, N), "positive")},
     lambda e: np.sum(e["X"] / np.sqrt(e["V"] + 1e-5))),
    ("‖x - m 1‖^2", "m: scalar", "m", {"x": ((N,), ""), "m": ((), "")}, lambda e: np.sum((e["x"] - e["m"]) ** 2)),
    ("a^T (1 ∘ x)", None, "x", {"a": ((N,), ""), "x": ((N,), "")}, lambda e: e["a"] @ e["x"]),
    ("sum(2 - exp(X))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(2 - np.exp(e["X"]))),
    ("sum(alpha ∘ X ∘ X)", None, "X", {"alpha": ((), ""), "X": ((S, N), "")}, lambda e: np.sum(e["alpha"] * e["X"] ** 2)),
    ("sum(1 ⊘ (1 + exp(-X)))", None, "X", {"X": ((S, N), "")}, lambda e: np.sum(sig(e["X"]))),
    ("a^T (2 1)", None, "a", {"a": ((N,), "")}, lambda e: 2 * np.sum(e["a"])),
    # notation of papers: a covariance Σ, ⊙, hats, ϵ, a typeset minus
    ("1/2 (x - μ)^T Σ^-1 (x - μ)", "μ: n, Σ: n×n", "x", {"x": ((N,), ""), "μ": ((N,), ""), "Σ": ((N, N), "wellcond")},
     lambda e: 0.5 * (e["x"] - e["μ"]) @ np.linalg.inv(e["Σ"]) @ (e["x"] - e["μ"])),
    ("sum(A ⊙ B C)", None, "A", {"A": ((M, N), ""), "B": ((M, N), ""), "C": ((N, S), "")},
     lambda e: np.sum((e["A"] * e["B"]) @ e["C"])),
    ("1/m sum(Y ∘ log(Ŷ))", "Y: m×k", "Ŷ", {"Y": ((S, N), ""), "Ŷ": ((S, N), "positive")},
     lambda e: np.sum(e["Y"] * np.log(e["Ŷ"])) / S),
    ("λ · ‖w‖² + xᵀ A⁻¹ w", None, "w", {"λ": ((), ""), "w": ((N,), ""), "x": ((N,), ""), "A": ((N, N), "wellcond")},
     lambda e: e["λ"] * np.sum(e["w"] ** 2) + e["x"] @ np.linalg.inv(e["A"]) @ e["w"]),
    # ^T against a bracket or a one-letter name, as TeX reads it: the transpose, then a product
    ("x^T(A + B)x", None, "x", {"x": ((N,), ""), "A": ((N, N), ""), "B": ((N, N), "")},
     lambda e: e["x"] @ (e["A"] + e["B"]) @ e["x"]),
    ("sum(W^T(x + b))", None, "W", {"W": ((S, N), ""), "x": ((S,), ""), "b": ((S,), "")},
     lambda e: np.sum(e["W"].T @ (e["x"] + e["b"]))),
    ("x^Tx + tr(X^TX)", None, "X", {"x": ((N,), ""), "X": ((S, N), "")},
     lambda e: e["x"] @ e["x"] + np.trace(e["X"].T @ e["X"])),
    # typeset characters of papers: ½, √, subscript ₂
    ("½ x^T A x + ‖x‖₂", None, "x", {"x": ((N,), ""), "A": ((N, N), "")},
     lambda e: 0.5 * e["x"] @ e["A"] @ e["x"] + np.linalg.norm(e["x"])),
    ("sum(softmax(Q Kᵀ / √d) V)", "Q: n×d, K: m×d, V: m×v", "Q", {"Q": ((S, N), ""), "K": ((M, N), ""), "V": ((M, S), "")},
     lambda e: np.sum(softmax_rows(e["Q"] @ e["K"].T / np.sqrt(N)) @ e["V"])),
    ("√2 x^T A x / √(1 + alpha)", None, "x", {"x": ((N,), ""), "A": ((N, N), ""), "alpha": ((), "")},
     lambda e: np.sqrt(2) * e["x"] @ e["A"] @ e["x"] / np.sqrt(1 + e["alpha"])),
    ("‖W‖²_F + λ ||W||^{2}_F", None, "W", {"W": ((S, N), ""), "λ": ((), "")},
     lambda e: (1 + e["λ"]) * np.sum(e["W"] ** 2)),
    ("a^Tx1", None, "x1", {"a": ((N,), ""), "x1": ((N,), "")}, lambda e: e["a"] @ e["x1"]),
    ("ϵ ‖x‖^2 − 2 x^T y", None, "x", {"ε": ((), ""), "x": ((N,), ""), "y": ((N,), "")},
     lambda e: e["ε"] * np.sum(e["x"] ** 2) - 2 * e["x"] @ e["y"]),
]

# an element-wise power with a scalar variable as its exponent (SymPy's x .^ i)
# log |Σ| of a square matrix among scalars is the log-determinant, as the Gaussian density writes
# it (plain text and \lvert·\rvert were refused); next to a matrix it stays refused (REFUSALS)
READINGS += [
    ("1/2 log|Σ| + 1/2 x^T Σ^-1 x", "x: n", "Σ", {"x": ((N,), ""), "Σ": ((N, N), "wellcond")},
     lambda e: 0.5 * np.log(np.linalg.det(e["Σ"])) + 0.5 * e["x"] @ np.linalg.solve(e["Σ"], e["x"])),
    (r"\log \lvert X^\top X \rvert", None, "X", {"X": ((S, N), "")},
     lambda e: np.log(np.linalg.det(e["X"].T @ e["X"]))),
]
READINGS += [
    ("sum(x .^ p)", "p: scalar", "p", {"x": ((N,), "positive"), "p": ((), "")}, lambda e: np.sum(e["x"] ** e["p"])),
    ("sum(x .^ -p)", "p: scalar", "x", {"x": ((N,), "positive"), "p": ((), "")}, lambda e: np.sum(e["x"] ** -e["p"])),
]

# LaTeX as the seeds and papers write it (indexcalc/latex_input.py): fonts, \top, \frac, \sqrt,
# \|·\|, \left/\right, Greek letters, \odot, \langle·,·\rangle, math-mode dollars
READINGS += [
    (r"\mathbf{x}^\top \mathbf{B} \mathbf{x}", None, "x", {"x": ((N,), ""), "B": ((N, N), "")},
     lambda e: e["x"] @ e["B"] @ e["x"]),
    (r"$\mathbf{x}^{\top}\mathbf{B}\mathbf{x}$", None, "B", {"x": ((N,), ""), "B": ((N, N), "")},
     lambda e: e["x"] @ e["B"] @ e["x"]),
    (r"\frac{1}{2} \|\mathbf{A}\mathbf{x} - \mathbf{b}\|_2^2", None, "x",
     {"A": ((S, N), ""), "x": ((N,), ""), "b": ((S,), "")}, lambda e: 0.5 * np.sum((e["A"] @ e["x"] - e["b"]) ** 2)),
    (r"\operatorname{tr}(\mathbf{V}\mathbf{X}\mathbf{W})", None, "X",
     {"V": ((M, S), ""), "X": ((S, N), ""), "W": ((N, M), "")}, lambda e: np.trace(e["V"] @ e["X"] @ e["W"])),
    (r"\mathrm{tr}(X^{\mathsf{T}} X) + \lambda \left\| X \right\|_F^2", None, "X",
     {"X": ((S, N), ""), "lambda": ((), "")}, lambda e: (1 + e["lambda"]) * np.sum(e["X"] ** 2)),
    (r"\sigma(\mathbf{w}^\top\mathbf{x})", None, "w", {"w": ((N,), ""), "x": ((N,), "")},
     lambda e: sig(e["w"] @ e["x"])),
    (r"\frac{\mathbf{x}^\top A \mathbf{x}}{\mathbf{x}^\top\mathbf{x}}", None, "x",
     {"x": ((N,), ""), "A": ((N, N), "")}, lambda e: (e["x"] @ e["A"] @ e["x"]) / (e["x"] @ e["x"])),
    (r"\sqrt{\mathbf{w}^\top \mathbf{w}} + \frac12 \mathbf{1}^\top \exp(X \mathbf{w})", None, "w",
     {"w": ((N,), ""), "X": ((S, N), "")}, lambda e: np.sqrt(e["w"] @ e["w"]) + 0.5 * np.sum(np.exp(e["X"] @ e["w"]))),
    (r"\exp\left(-\frac{1}{2} (\mathbf{x} - \boldsymbol{\mu})^\top \Sigma^{-1} (\mathbf{x} - \boldsymbol{\mu})\right)",
     "mu: n, Sigma: n×n", "x", {"x": ((N,), ""), "mu": ((N,), ""), "Sigma": ((N, N), "wellcond")},
     lambda e: np.exp(-0.5 * (e["x"] - e["mu"]) @ np.linalg.inv(e["Sigma"]) @ (e["x"] - e["mu"]))),
    (r"\mathbf{x}^\top (\mathbf{A} \odot \mathbf{B}) \mathbf{y}", None, "A",
     {"x": ((N,), ""), "A": ((N, N), ""), "B": ((N, N), ""), "y": ((N,), "")}, lambda e: e["x"] @ (e["A"] * e["B"]) @ e["y"]),
    (r"\langle \mathbf{A}, \mathbf{X} \rangle + ⟨a, X b⟩", None, "X",
     {"A": ((S, N), ""), "X": ((S, N), ""), "a": ((S,), ""), "b": ((N,), "")},
     lambda e: np.sum(e["A"] * e["X"]) + e["a"] @ e["X"] @ e["b"]),
    (r"\log\left(1 + e^{-y\,\mathbf{w}^\top\mathbf{x}}\right) + \log\sigma(\mathbf{w}^\top\mathbf{x})", "y: scalar", "w",
     {"w": ((N,), ""), "x": ((N,), ""), "y": ((), "")},
     lambda e: np.log(1 + np.exp(-e["y"] * e["w"] @ e["x"])) + np.log(sig(e["w"] @ e["x"]))),
    (r"\log\det(\mathbf{X}) + \operatorname{Tr}\!\left[\mathbf{X}\mathbf{X}^\top\right]", None, "X",
     {"X": ((N, N), "wellcond")}, lambda e: np.log(np.linalg.det(e["X"])) + np.trace(e["X"] @ e["X"].T)),
    # a function's name against a bracketed call is that function of the call, as the Cookbook
    # writes log det X and the LaTeX reader reads \log\det(X) (it was refused)
    ("tr(X) - log det(X) + 2 log |det(X)| - log σ(tr(X))", None, "X", {"X": ((N, N), "wellcond")},
     lambda e: np.trace(e["X"]) + np.log(np.linalg.det(e["X"])) - np.log(sig(np.trace(e["X"])))),
    # single bars: the absolute value of a scalar (they were an unexpected character)
    ("log(|det(X)|) + |a^T X b| + ‖|α| a‖", "α: scalar", "X",
     {"X": ((N, N), "wellcond"), "a": ((N,), ""), "b": ((N,), ""), "α": ((), "")},
     lambda e: np.log(abs(np.linalg.det(e["X"]))) + abs(e["a"] @ e["X"] @ e["b"]) + abs(e["α"]) * np.linalg.norm(e["a"])),
    # an upper-case Greek name is a matrix, as textbooks write a covariance (Σ was a scalar: the
    # Gaussian's quadratic form read Σ^-1 ((x - μ 1)^T (x - μ 1)))
    ("(x - μ)^T Σ^-1 (x - μ) + logdet(Σ)", None, "Σ", {"x": ((N,), ""), "μ": ((), ""), "Σ": ((N, N), "wellcond")},
     lambda e: (e["x"] - e["μ"]) @ np.linalg.inv(e["Σ"]) @ (e["x"] - e["μ"]) + np.linalg.slogdet(e["Σ"])[1]),
    # \frac{1}{2s}: the denominator 2s whole (it was read (1/2s), which is (1/2) s)
    (r"\frac{1}{2s} \|\mathbf{A}\mathbf{x} - \mathbf{b}\|^2", "s: scalar", "x",
     {"A": ((S, N), ""), "x": ((N,), ""), "b": ((S,), ""), "s": ((), "")},
     lambda e: np.sum((e["A"] @ e["x"] - e["b"]) ** 2) / (2 * e["s"])),
    (r"\mathbf{W}_{2}^\top \tanh(\mathbf{W}_1 \mathbf{x}) \cdot 3", "W_1: n×n, W_2: n×m", "W_1",
     {"W_2": ((N, M), ""), "W_1": ((N, N), ""), "x": ((N,), "")}, lambda e: 3 * e["W_2"].T @ np.tanh(e["W_1"] @ e["x"])),
    # a lower-case name used once, added to or multiplying a scalar computed from vectors, is a
    # scalar (a bias, a label), as a textbook reader reads it; not a vector the scalar spreads over
    ("w^T x + b", None, "w", {"w": ((N,), ""), "x": ((N,), ""), "b": ((), "")}, lambda e: e["w"] @ e["x"] + e["b"]),
    ("sigmoid(w^T x + b)", None, "b", {"w": ((N,), ""), "x": ((N,), ""), "b": ((), "")},
     lambda e: sig(e["w"] @ e["x"] + e["b"])),
    ("log(1 + exp(-y w^T x))", None, "w", {"y": ((), ""), "w": ((N,), ""), "x": ((N,), "")},
     lambda e: np.log(1 + np.exp(-e["y"] * (e["w"] @ e["x"])))),
    ("max(0, 1 - y w^T x)", None, "w", {"y": ((), ""), "w": ((N,), ""), "x": ((N,), "")},
     lambda e: np.maximum(0, 1 - e["y"] * (e["w"] @ e["x"]))),
    ("-y log(sigmoid(w^T x)) - (1 - y) log(1 - sigmoid(w^T x))", None, "w",
     {"y": ((), ""), "w": ((N,), ""), "x": ((N,), "")},
     lambda e: -e["y"] * np.log(sig(e["w"] @ e["x"])) - (1 - e["y"]) * np.log(1 - sig(e["w"] @ e["x"]))),
    ("-y log(sigmoid(w^T x + b)) - (1 - y) log(1 - sigmoid(w^T x + b))", None, "b",
     {"y": ((), ""), "w": ((N,), ""), "x": ((N,), ""), "b": ((), "")},
     lambda e: -e["y"] * np.log(sig(e["w"] @ e["x"] + e["b"])) - (1 - e["y"]) * np.log(1 - sig(e["w"] @ e["x"] + e["b"]))),
    ("b^T b + w^T x + b", None, "b", {"b": ((M,), ""), "w": ((N,), ""), "x": ((N,), "")},    # b^T: a vector
     lambda e: e["b"] @ e["b"] + e["w"] @ e["x"] + e["b"]),
    ("(w^T x - y)^2 + c", None, "w", {"w": ((N,), ""), "x": ((N,), ""), "y": ((), ""), "c": ((), "")},
     lambda e: (e["w"] @ e["x"] - e["y"]) ** 2 + e["c"]),
    ("x^T A x + b^T x + c", None, "x", {"x": ((N,), ""), "A": ((N, N), ""), "b": ((N,), ""), "c": ((), "")},
     lambda e: e["x"] @ e["A"] @ e["x"] + e["b"] @ e["x"] + e["c"]),
    # names written together, as papers write Wx and XᵀAX, are the product (step 1 shows it
    # spaced): the parts declared, standing alone elsewhere, or asked for; a postfix ^T, ^-1 or ^2
    # belongs to the last letter. It was a new variable AX, whose derivative was silently another
    ("tr(XᵀAX)", None, "X", {"X": ((N, N), ""), "A": ((N, N), "")}, lambda e: np.trace(e["X"].T @ e["A"] @ e["X"])),
    ("x'Bx", None, "x", {"x": ((N,), ""), "B": ((N, N), "")}, lambda e: e["x"] @ e["B"] @ e["x"]),
    ("‖Ax - b‖^2", None, "x", {"A": ((M, N), ""), "x": ((N,), ""), "b": ((M,), "")},
     lambda e: np.sum((e["A"] @ e["x"] - e["b"]) ** 2)),
    ("sum(σ(Wx + b))", "W: n×m, x: m, b: n", "W", {"W": ((N, M), ""), "x": ((M,), ""), "b": ((N,), "")},
     lambda e: np.sum(sig(e["W"] @ e["x"] + e["b"]))),
    ("sum(XW^T)", "X: S×M, W: N×M", "W", {"X": ((S, M), ""), "W": ((N, M), "")}, lambda e: np.sum(e["X"] @ e["W"].T)),
    ("tr(AX^-1)", "A: n×n", "X", {"A": ((N, N), ""), "X": ((N, N), "wellcond")}, lambda e: np.trace(e["A"] @ np.linalg.inv(e["X"]))),
    ("tr(AX^2)", "A: n×n", "X", {"A": ((N, N), ""), "X": ((N, N), "")}, lambda e: np.trace(e["A"] @ e["X"] @ e["X"])),
    # ... and stays a vector where nothing says otherwise: a constant spread over it, a name used
    # twice, an outer product
    ("x + 2", None, "x", {"x": ((N,), "")}, lambda e: e["x"] + 2),
    ("x - mean(x)", None, "x", {"x": ((N,), "")}, lambda e: e["x"] - e["x"].mean()),
    ("log(x + ε)", None, "x", {"x": ((N,), "positive"), "ε": ((), "positive")}, lambda e: np.log(e["x"] + e["ε"])),
    ("u v^T", None, "u", {"u": ((N,), ""), "v": ((M,), "")}, lambda e: np.outer(e["u"], e["v"])),
    # a divisor made only of undeclared names is a scalar: / divides by one (attention's √d)
    ("sum(softmax(Q K^T / sqrt(d)) V)", None, "Q", {"Q": ((S, N), ""), "K": ((M, N), ""), "V": ((M, N), ""),
                                                    "d": ((), "positive")},
     lambda e: np.sum(softmax_rows(e["Q"] @ e["K"].T / np.sqrt(e["d"])) @ e["V"])),
    ("x / y", None, "x", {"x": ((N,), ""), "y": ((), "positive")}, lambda e: e["x"] / e["y"]),
    ("a (b^T x)", None, "x", {"a": ((M,), ""), "b": ((N,), ""), "x": ((N,), "")}, lambda e: e["a"] * (e["b"] @ e["x"])),
    ("a b^T x", None, "x", {"a": ((M,), ""), "b": ((N,), ""), "x": ((N,), "")}, lambda e: e["a"] * (e["b"] @ e["x"])),
    ("(a^T x) b", None, "x", {"a": ((N,), ""), "x": ((N,), ""), "b": ((M,), "")}, lambda e: (e["a"] @ e["x"]) * e["b"]),
    ("(a^T x) b", "b: m", "x", {"a": ((N,), ""), "x": ((N,), ""), "b": ((M,), "")}, lambda e: (e["a"] @ e["x"]) * e["b"]),
    # a power of a bracketed power reads as bracketed; a transpose beside a power reads one way
    ("(s^2)^3", "s: scalar", "s", {"s": ((), "")}, lambda e: e["s"] ** 6),
    ("s^(2^3)", "s: scalar", "s", {"s": ((), "")}, lambda e: e["s"] ** 8),
    ("tr(X^2^T A)", "A: n×n", "X", {"X": ((N, N), ""), "A": ((N, N), "")}, lambda e: np.trace((e["X"] @ e["X"]).T @ e["A"])),
    ("tr(X^-1^T A)", "A: n×n", "X", {"X": ((N, N), "wellcond"), "A": ((N, N), "")},
     lambda e: np.trace(np.linalg.inv(e["X"]).T @ e["A"])),
    ("tr(X^T^2 A)", "A: n×n", "X", {"X": ((N, N), ""), "A": ((N, N), "")}, lambda e: np.trace(e["X"].T @ e["X"].T @ e["A"])),
    # a Greek letter against a name used elsewhere is a product, as λw^T w in ridge regression (λw
    # was one scalar variable: the loss read as a vector, and tr(ΣX) by X was zero)
    ("‖X w - y‖^2 + λw^T w", None, "w", {"X": ((S, N), ""), "w": ((N,), ""), "y": ((S,), ""), "λ": ((), "")},
     lambda e: np.sum((e["X"] @ e["w"] - e["y"]) ** 2) + e["λ"] * e["w"] @ e["w"]),
    ("tr(ΣX)", None, "X", {"Σ": ((N, N), ""), "X": ((N, N), "")}, lambda e: np.trace(e["Σ"] @ e["X"])),
    ("σx^T x", None, "x", {"σ": ((), ""), "x": ((N,), "")}, lambda e: e["σ"] * e["x"] @ e["x"]),
    # (π is the number: the normal density's 2πσ^2)
    ("exp(-x^T x/(2σ^2))/(2πσ^2)", None, "σ", {"σ": ((), "positive"), "x": ((N,), "")},
     lambda e: np.exp(-e["x"] @ e["x"] / (2 * e["σ"] ** 2)) / (2 * np.pi * e["σ"] ** 2)),
    # a power or transpose after a variable against a bracket is the bracket's: the hat matrix
    # X(X^T X)^{-1} X^T (it read (X X^T X)^-1 X^T, a confident wrong derivative)
    ("y^T X(X^T X)^-1 X^T y", "X: S×N, y: S", "y", {"X": ((S, N), ""), "y": ((S,), "")},
     lambda e: e["y"] @ e["X"] @ np.linalg.inv(e["X"].T @ e["X"]) @ e["X"].T @ e["y"]),
    ("y^TX(X^TX)^{-1}X^Ty", "X: S×N, y: S", "X", {"X": ((S, N), ""), "y": ((S,), "")},
     lambda e: e["y"] @ e["X"] @ np.linalg.inv(e["X"].T @ e["X"]) @ e["X"].T @ e["y"]),
    ("x^T A(B)^T x", "A: n×n, B: n×n", "B", {"A": ((N, N), ""), "B": ((N, N), ""), "x": ((N,), "")},
     lambda e: e["x"] @ e["A"] @ e["B"].T @ e["x"]),
    # a numbered name against a letter, as an MLP's W1x (it was a variable W1x: by W1, zero)
    ("sum(W2 relu(W1x))", "W1: n×m", "W1", {"W1": ((N, M), ""), "x": ((M,), ""), "W2": ((S, N), "")},
     lambda e: np.sum(e["W2"] @ np.maximum(e["W1"] @ e["x"], 0))),
    ("‖W1x_1 - b‖^2", None, "W1", {"W1": ((N, M), ""), "x_1": ((M,), ""), "b": ((N,), "")},
     lambda e: np.sum((e["W1"] @ e["x_1"] - e["b"]) ** 2)),
    # ---- 11. notation as typed or pasted from a paper
    # Unicode subscripts: W₁ in --where is the W₁ of the expression, and the subscript ends where
    # it shows (W₁x was the undeclared name W_1x and the derivative by x silently zero)
    ("v^T tanh(W₁x + b₁)", "W₁: m×n, x: n, b₁: m, v: m", "x",
     {"v": ((M,), ""), "W_1": ((M, N), ""), "x": ((N,), ""), "b_1": ((M,), "")},
     lambda e: e["v"] @ np.tanh(e["W_1"] @ e["x"] + e["b_1"])),
    # W_1x is W_1 x, as TeX sets it (it was a new matrix W_1x: zero by x)
    ("v^T tanh(W_1x)", "x: n", "x", {"v": ((M,), ""), "W_1": ((M, N), ""), "x": ((N,), "")},
     lambda e: e["v"] @ np.tanh(e["W_1"] @ e["x"])),
    ("x⊤Ax", None, "x", {"x": ((N,), ""), "A": ((N, N), "")}, lambda e: e["x"] @ e["A"] @ e["x"]),
    # ⊗ of two vectors is the outer product; <a, b> is the inner product as plain text writes it
    ("x^T (a ⊗ b) y", None, "a", {"x": ((N,), ""), "a": ((N,), ""), "b": ((M,), ""), "y": ((M,), "")},
     lambda e: e["x"] @ np.outer(e["a"], e["b"]) @ e["y"]),
    ("a ⊗ b", None, "b", {"a": ((N,), ""), "b": ((M,), "")}, lambda e: np.outer(e["a"], e["b"])),
    ("<A x, x> - <b, x>", None, "x", {"A": ((N, N), ""), "x": ((N,), ""), "b": ((N,), "")},
     lambda e: e["x"] @ e["A"] @ e["x"] - e["b"] @ e["x"]),
    ("<X, Y>_F", None, "X", {"X": ((S, N), ""), "Y": ((S, N), "")}, lambda e: np.sum(e["X"] * e["Y"])),
    # square brackets as papers write them: a function's (tr[·], log[·]; tr[ was read as an
    # indexed entry and refused) and a group's
    ("tr[X^T A X]", None, "X", {"X": ((S, N), ""), "A": ((S, S), "")}, lambda e: np.trace(e["X"].T @ e["A"] @ e["X"])),
    ("-[a^T x + 1] log[1 + exp(b^T x)]", None, "x", {"a": ((N,), ""), "b": ((N,), ""), "x": ((N,), "")},
     lambda e: -(e["a"] @ e["x"] + 1) * np.log1p(np.exp(e["b"] @ e["x"]))),
    # \hat{y} is the name yhat, \bar{x} xbar, \tilde{x} xtilde (they were refused, with that advice)
    (r"\hat{y}^\top X \mathbf{1} - \bar{x}^\top X \tilde{x} + \mathbf{1}^\top \log \hat{y}", None, "yhat",
     {"yhat": ((S,), "positive"), "X": ((S, N), ""), "xbar": ((S,), ""), "xtilde": ((N,), "")},
     lambda e: e["yhat"] @ e["X"] @ np.ones(N) - e["xbar"] @ e["X"] @ e["xtilde"] + np.sum(np.log(e["yhat"]))),
    # a course's layer label in square brackets, W^{[1]}, is the name W1 as W^{(1)} is (it was a
    # parse error at the next '=')
    ("v^T tanh(W^{[1]} x + b^{[1]})", None, "x", {"v": ((M,), ""), "W1": ((M, N), ""), "x": ((N,), ""), "b1": ((M,), "")},
     lambda e: e["v"] @ np.tanh(e["W1"] @ e["x"] + e["b1"])),
    (r"\mathbf{v}^\top \tanh(\mathbf{W}^{[1]} \mathbf{x})", None, "x", {"v": ((M,), ""), "W1": ((M, N), ""), "x": ((N,), "")},
     lambda e: e["v"] @ np.tanh(e["W1"] @ e["x"])),
    # TeX's grouping braces are a bracket, \{ \} too (both were parse errors); an empty group is nothing
    (r"\operatorname{tr}\{X^\top A X\} + \frac{1}{2}{\|X\|}^2 + {x}^\top X{}^\top x", None, "X",
     {"X": ((S, S), ""), "A": ((S, S), ""), "x": ((S,), "")},
     lambda e: np.trace(e["X"].T @ e["A"] @ e["X"]) + 0.5 * np.sum(e["X"] ** 2) + e["x"] @ e["X"].T @ e["x"]),
    # \ln\det\Sigma: TeX's function of one atom, a Greek command too (it was refused: log
    # without brackets); W^{-\top} is W^-T (a parse error)
    (r"\ln\det\Sigma + \mathbf{x}^\top \mathbf{W}^{-\top} \mathbf{x}", None, "Sigma",
     {"Sigma": ((S, S), "wellcond"), "x": ((S,), ""), "W": ((S, S), "wellcond")},
     lambda e: np.log(np.linalg.det(e["Sigma"])) + e["x"] @ np.linalg.inv(e["W"]).T @ e["x"]),
    (r"\ln\det\Sigma + \mathbf{x}^\top \mathbf{W}^{-\top} \mathbf{x}", None, "W",
     {"Sigma": ((S, S), "wellcond"), "x": ((S,), ""), "W": ((S, S), "wellcond")},
     lambda e: np.log(np.linalg.det(e["Sigma"])) + e["x"] @ np.linalg.inv(e["W"]).T @ e["x"]),
    # \sum without an index sums the entries of what it reaches (it was the matrix Σ times it)
    (r"\sum X \odot Y - \sum \mathbf{X}", None, "X", {"X": ((S, N), ""), "Y": ((S, N), "")},
     lambda e: np.sum(e["X"] * e["Y"]) - np.sum(e["X"])),
    # <a, b> is an inner product only with each side's brackets balanced: two comparisons and a
    # comma between them are not one (they were read as sum((0) ∘ ...))
    ("sum(sum((Y < 0) ∘ X, 1) .^ 2) + sum((Y > 0) ∘ X)", None, "X", {"Y": ((S, N), ""), "X": ((S, N), "")},
     lambda e: np.sum(np.sum((e["Y"] < 0) * e["X"], 1) ** 2) + np.sum((e["Y"] > 0) * e["X"])),
    # NumPy's methods, as code is pasted: X.sum(1) is sum(X, 1) (a parse error at '.')
    ("(X @ W).sum() + X.T.sum(0).sum() + tanh(X).mean()", None, "X", {"X": ((S, N), ""), "W": ((N, M), "")},
     lambda e: np.sum(e["X"] @ e["W"]) + np.sum(e["X"]) + np.mean(np.tanh(e["X"]))),
    # a fused name in brackets keeps its transpose on the whole product: (WV)^T is (W V)^T (it was
    # read W V^T, a confident wrong derivative, and a right claim (WV)^T called wrong)
    ("tr((WV)^T X) + tr((AX)^{-1})", "W: n×n, V: n×n, A: n×n", "X", {"W": ((N, N), ""), "V": ((N, N), ""),
     "X": ((N, N), "wellcond"), "A": ((N, N), "wellcond")},
     lambda e: np.trace((e["W"] @ e["V"]).T @ e["X"]) + np.trace(np.linalg.inv(e["A"] @ e["X"]))),
    # NumPy as a student pastes it: np.f is f, np.dot and A.dot are the product (1-D arrays as
    # NumPy has them: x.dot(A) is x^T A), np.transpose(A) and A.transpose() are A^T, axis= and
    # keepdims= are NumPy's (each was refused or read as a variable np)
    ("np.sum(np.tanh(np.dot(W, x))) + x.dot(x) + np.matmul(x, A).dot(x) + np.sum(A.transpose().dot(x), axis=0, "
     "keepdims=True) + np.transpose(W).sum(axis=1).dot(x)", "A: n×n, W: m×n", "x",
     {"A": ((N, N), ""), "W": ((M, N), ""), "x": ((N,), "")},
     lambda e: np.sum(np.tanh(e["W"] @ e["x"])) + e["x"] @ e["x"] + e["x"] @ e["A"] @ e["x"] + np.sum(e["A"].T @ e["x"])
     + e["W"].T.sum(axis=1) @ e["x"]),
    # a Greek name is one name however it is spelled: \mu in the expression is the μ of --where
    # (it was a new scalar mu: ‖x - mu 1‖², and by μ the derivative silently zero)
    (r"\|x - \mu\|^2", "x: n, μ: n", "μ", {"x": ((N,), ""), "μ": ((N,), "")}, lambda e: np.sum((e["x"] - e["μ"]) ** 2)),
    ("‖x - μ‖^2 + sigma ‖x‖^2", "x: n, mu: n, σ: scalar", "mu",
     {"x": ((N,), ""), "mu": ((N,), ""), "σ": ((), "")}, lambda e: np.sum((e["x"] - e["mu"]) ** 2) + e["σ"] * np.sum(e["x"] ** 2)),
]

CHECKED = [r for r in READINGS if r[4] is not None]


def _draw(spec, rng):
    env = {}
    for name, (shape, how) in spec.items():
        if shape == ():
            env[name] = float(rng.uniform(0.5, 1.5))
        elif how == "positive":
            env[name] = rng.uniform(0.5, 1.5, size=shape)
        elif how == "wellcond":
            env[name] = rng.normal(size=shape) * 0.3 + 2.0 * np.eye(shape[0])
        else:
            env[name] = rng.normal(size=shape)
    return env


def _sizes(variables, env):
    out = {}
    for name, v in variables.items():
        for dim, n in zip(v.array_shape, np.shape(env[name])):
            if isinstance(dim, str):
                out[dim] = n
    return out


@pytest.mark.parametrize("text,where,wrt,spec,ref", CHECKED, ids=[r[0] for r in CHECKED])
def test_value_as_read(text, where, wrt, spec, ref):
    """The tree indexcalc read has the value of the hand-written NumPy."""
    rng = np.random.default_rng(7)
    typed, variables = infer(parse(text), parse_decls(where), wrt=[wrt])
    for _ in range(3):
        env = _draw(spec, rng)
        env2d = {n: to_2d(env[n], variables[n]) for n in variables.table}
        got = evaluate(typed, env2d, _sizes(variables, env))
        want = np.asarray(ref(env), dtype=float)
        assert np.allclose(got.reshape(want.shape) if got.size == want.size else got, want), (text, got, want)


@pytest.mark.parametrize("text,where,wrt,spec,ref", CHECKED, ids=[r[0] for r in CHECKED])
def test_derivative_as_read(text, where, wrt, spec, ref):
    """The derivative indexcalc gives is that of the hand-written NumPy (finite differences)."""
    rng = np.random.default_rng(11)
    d = derive(text, wrt, where)
    env = _draw(spec, rng)
    names = {k + "_" if keyword.iskeyword(k) else k: v for k, v in env.items()}
    got = np.asarray(eval(d.numpy, {"np": np, **_sizes(d.variables, env), **names}), dtype=float)  # noqa: S307
    want = finite_jacobian(ref, env, wrt)
    assert got.shape == want.shape, (d.numpy, got.shape, want.shape)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-5 * (1 + np.abs(want).max())), (d.numpy, got, want)


# ---- 2. "read as": step 1 of every derivation shows the input as read
@pytest.mark.parametrize("text,where,wrt,shown", [
    ("1/2 x^T A x", None, "x", "(1/2) (x^T A x)"),
    ("x^T A x / 2", None, "x", "(x^T A x) / 2"),
    ("λ/2 ‖w‖^2", None, "w", "(λ / 2) ‖w‖^2"),
    ("-1/S sum(T ∘ log(Y))", "T: S×N, Y: S×N", "Y", "(-1 / S) sum(T ∘ log(Y))"),
    ("alpha / beta c", None, "c", "(alpha / beta) c"),
    ("sum(X ⊘ Y ∘ Z)", None, "X", "sum((X ⊘ Y) ∘ Z)"),
])
def test_read_as_is_step_one(text, where, wrt, shown):
    import json

    from indexcalc.output import derive_json
    d = derive(text, wrt, where)
    step = d.results[0].steps[0]
    assert (step.rule, step.text) == ("read as", shown)
    assert json.loads(derive_json(d))["read_as"] == shown
    assert step.latex                   # the LaTeX row exists too


def test_read_as_of_an_equation_names_its_output():
    from indexcalc import backprop
    d = backprop("Y = 1/2 X W", "W")
    assert d.results[0].steps[0].text == "Y = (1/2) (X W)"


# ---- refusals: exit 2, one message that names the input
REFUSALS = [
    ("sum(mean2(X))", None, ["mean2", "did you mean mean"]),
    ("sum(rleu(X))", None, ["rleu", "relu"]),
    ("sum(A * B)", "A: m×n, B: m×n", ["matrix product here", "A ∘ B or A .* B"]),    # NumPy's element-wise *
    ("sum(activation(X))", None, ["activation", "function"]),
    ("‖X‖_2", None, ["spectral"]),
    ("norm(X, 2)", None, ["spectral"]),                        # NumPy's ord: 2 of a matrix
    ("norm(X, 3)", None, ["order", "1, 2 or 'fro'"]),
    ("tr(X^(1/2))", None, ["square root", "X^-2"]),
    ("sum(log(|X|))", None, ["abs(X)", "det(X)"]),
    ("sum(log |X| ∘ A)", None, ["abs(X)", "det(X)"]),                # log |X| beside a matrix              # |X|: entry-wise, or the Cookbook's det?              # X^-2 is read: the message says so
    # a number glued to a name after `/`: 1/(2n) to a textbook reader, (1/2) n left to right
    ("tr(X) / 2n", None, ["/(2 n)", "/2 n"]),
    ("exp(-tr(X) / 2σ^2)", None, ["/(2 σ^2)"]),
    # a ones vector or identity no variable gives a size to, hidden from the result's shape:
    # its value is not determined (it was "no NumPy form for this derivative yet (NoMatch)")
    ("sum((a^T + 1 b^T) X)", None, ["ones vector", "not fixed"]),
    ("sum(max(X))", None, ["max(X, 0)"]),
    ("sum(leaky_relu(X, 1, 2))", None, ["leaky_relu"]),
    ("sum(mean(X, 2))", None, ["axis"]),
    ("sum(logsumexp(X, Y))", None, ["logsumexp"]),
    ("sum(LayerNorm(X))", None, ["LayerNorm"]),                  # not the matrix LayerNorm times X
    ("sum(Dropout(X))", None, ["Dropout"]),
    ("sum(σ'(X))", None, ["σ'", "sigmoid"]),
    ("sum(leaky_relu(X, x))", None, ["slope", "x"]),            # the slope is a scalar
    ("sum(X ⊘ 0)", None, ["division by zero"]),
    # 7. a default-kind vector never silently becomes a scalar
    ("tr(x)", None, ["x", "scalar"]),
    ("x^T^T a", None, ["a", "scalar"]),
    # 9. contradictory declarations: one sentence, exit 2 (was exit 3)
    ("sum(X) / N", "X: S×N, N: scalar", ["N", "size"]),
    ("x^T x", "x: n, x: m", ["x", "twice"]),
    ("sum(X)", "X: n×m, n: 3", ["n", "size"]),
    ("x^T x", "y: n", ["does not appear"]),             # --wrt X: undeclared, absent
    ("x^TAx + tr(X)", None, ["^TAx", "^T A x"]),           # ^T then two letters: which names?
    # a function's name without brackets is not a variable named log or det (it was: log det(X)
    # read as det(X) log, -log σ(z) as σ(z) (-log), each with a confident derivative); before a
    # bracketed call it is that function of the call (log det(X), READINGS)
    ("det X", None, ["det", "det(...)"]),
    ("tr(X) - log det X", None, ["log", "log(...)"]),
    ("tr X", None, ["tr", "tr(...)"]),
    ("mean((X w - y)^2)", None, [".^ 2", "‖X w - y‖^2"]),      # a vector's square, as papers write it
    # a vector variable beside a matrix: NumPy pairs a 1-D b with each row, column algebra with
    # each column (X W + b was read b_i on row i, the size of b taken from X's rows)
    ("sum(tanh(X W + b))", None, ["1 b^T", "b 1^T", "row"]),
    ("sum(relu(X W + b))", "X: S×M, W: M×N, b: N", ["1 b^T", "b 1^T"]),
    ("sum(X ⊘ sqrt(v + 1e-5))", None, ["1 (sqrt(v", "1^T"]),
    ("tr(X) + sum(log(1 + e^(-x)))", None, ["exp(-x)"]),       # e^... of a vector named e
    # LaTeX the language has no meaning for: named, with what to write instead
    (r"\hat{x + y}^\top X \mathbf{1}", None, ["\\hat", "one name"]),
    (r"\frac{\partial}{\partial X} \operatorname{tr}(X)", None, ["\\partial", "--wrt"]),
    (r"\sqrt[3]{\det X}", None, ["n-th root"]),
    (r"\frac{1}{2 \operatorname{tr}(X)", None, ["never closed"]),
    (r"\begin{pmatrix} X \end{pmatrix}", None, ["environment"]),
    (r"X \otimes X", None, ["Kronecker"]),
    ("sum(X ⊗ X)", None, ["Kronecker", "outer product"]),
    (r"\foo(X)", None, ["\\foo", "not part of the language"]),
]


@pytest.mark.parametrize("text,hint", [("x / x", "x: scalar"),
                                       ("sum(X) / N", "N: scalar"), ("Q K^T / sqrt(D)", "D: scalar")])
def test_a_divisor_used_elsewhere_is_not_read_as_a_scalar(text, hint):
    """The divisor rule reads only lower-case names written nowhere else (x / x by x was read as
    a scalar x, the vector's own element-wise division silently a scalar's); what it does not
    read says how to declare the divisor a scalar, upper case too (SPEC §2's attention example
    without --where said nothing of D, and 'a lower-case name' of upper-case names)."""
    with pytest.raises(ShapeError, match="divides by a scalar") as e:
        infer(parse(text), parse_decls(None))
    assert f'--where "{hint}"' in str(e.value) and "upper-case one a matrix" in str(e.value)


@pytest.mark.parametrize("text,where,words", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals(text, where, words, capsys):
    """In process (cli.main, as `python -m indexcalc` runs it): a subprocess each was ~2 s."""
    from indexcalc.cli import main
    argv = ["derive", text, "--wrt", "X"] + (["--where", where] if where else [])
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


def test_a_parse_error_names_what_was_expected_as_it_is_typed():
    """'x^T B x +' said "expected ..., lsqb" (lark's name of '['): every terminal has a name."""
    from indexcalc.errors import ParseError
    from indexcalc.parse import _READABLE, _parser
    unnamed = [t.name for t in _parser().terminals
               if t.name not in _READABLE and not t.name.startswith("__ANON") and t.name not in ("WS", "DOT")]
    assert unnamed == []
    with pytest.raises(ParseError) as e:
        parse("x^T B x +")
    assert "'['" in str(e.value) and "lsqb" not in str(e.value)


@pytest.mark.parametrize("text,column", [("x² + ½ x³ $", 11), ("x^Tx $", 6), ("√d_k ⁻¹ ]", 9), ("a − b ᵀᵀ ]", 10)])
def test_a_parse_error_points_into_what_was_typed(text, column):
    """Typeset characters are respelled before parsing (² as ^2, ½ as (1/2)); the column of an
    error is still the one in the input, under the character that is wrong."""
    from indexcalc.errors import ParseError
    with pytest.raises(ParseError) as e:
        parse(text)
    assert e.value.column == column and text[column - 1] in "$]", (e.value.column, str(e.value))


@pytest.mark.parametrize("text,column,words", [
    ("s^2^3", 1, ["(s^2)^3", "s^(2^3)"]), ("1 + x .^ 2 .^ 3", 5, ["(x.^2).^3", "x.^(2.^3)"]),
    ("tr(A^2^-1)", 4, ["(A^2)^-1", "A^(2^-1)"]), ("s²^3", 1, ["(s^2)^3"])])
def test_a_power_of_a_power_is_refused_with_both_readings(text, column, words):
    """s^2^3 is (s^2)^3 = s^6 to MATLAB, s^(2^3) = s^8 to a mathematician: it was read as s^6
    without a word (the grammar's left recursion)."""
    from indexcalc.errors import ParseError
    with pytest.raises(ParseError) as e:
        parse(text)
    assert e.value.column == column, str(e.value)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_every_function_row_is_known_to_the_grammar_and_derives():
    """A row of the function table is the whole of adding a function: the grammar's list of
    names allows a space before '(' for each, and each derives through the guard (which checks
    the row's derivative against finite differences of its NumPy value)."""
    import re

    from indexcalc import functions as F
    from indexcalc.parse import GRAMMAR
    from indexcalc.shapes import CALLS
    listed = set(re.search(r"FUNC\.2: /\(\?:([^)]*)\)", open(GRAMMAR, encoding="utf-8").read()).group(1).split("|"))
    from indexcalc.nodes import ABS_BARS, NUMPY_STAR
    missing = (set(F.TABLE) | set(CALLS)) - listed - {"norm_F", "norm_2", "norm_1", ABS_BARS, NUMPY_STAR}   # not names
    assert not missing
    for name in F.TABLE:
        if name in ("H", "sign"):
            continue                            # derivative 0 almost everywhere
        positive = name in ("log", "sqrt")
        d = derive(f"sum({name}(X ∘ X + 1))" if positive else f"sum({name}(X))", "X")
        assert d.numpy


# ---- 7. a declared variable that does not occur: the zero derivative of its shape, with a note
def test_declared_absent_variable_has_a_zero_derivative():
    d = derive("x^T x", "x,y,W", "y: n, x: n, W: n×m")
    by = {r.wrt: r for r in d.results}
    env = {"x": np.arange(3.0), "y": np.ones(3), "W": np.ones((3, 2))}
    assert np.allclose(eval(by["x"].numpy, {"np": np, **env}), 2 * env["x"])  # noqa: S307
    assert np.array_equal(eval(by["y"].numpy, {"np": np, **env}), np.zeros(3))  # noqa: S307
    assert np.array_equal(eval(by["W"].numpy, {"np": np, **env}), np.zeros((3, 2)))  # noqa: S307
    assert by["y"].steps[1].rule == "note" and "does not occur" in by["y"].steps[1].text


def test_a_declared_absent_variable_beside_a_greek_or_declared_name_is_zero():
    """a declared, absent, beside alpha (a Greek letter's name) or a declared Wa: a whole name
    each, so the zero derivative, not 'alpha reads as one name; for the product write alph a'."""
    for expr, where in [("1 / sigmoid(alpha)", "a: p, alpha: scalar"), ("sum(Wa)", "a: p, Wa: n")]:
        r = derive(expr, "a", where).results[0]
        assert np.array_equal(eval(r.numpy, {"np": np, "a": np.ones(4)}), np.zeros(4)), expr  # noqa: S307


@pytest.mark.parametrize("expr", ["x_i A_ij x_j", "A_ij x_j"])
def test_a_declared_variable_written_only_with_subscripts_is_refused(expr, capsys):
    """x_i A_ij x_j without a Σ reads as names x_i, A_ij, x_j (SPEC §1.3); with x declared the
    derivative by x was a confident zero: the misreading is refused, with how to write the sum."""
    from indexcalc.cli import main
    assert main(["derive", expr, "--wrt", "x", "--where", "A: n×n, x: n"]) == 2
    err = capsys.readouterr().err
    assert "reads as a name here" in err and "Σ_{i,j}" in err and "Traceback" not in err


def test_a_declared_absent_tensor_has_a_zero_derivative():
    """A tensor declared and not used (it was an internal error: KeyError 'tensor')."""
    d = derive("x^T x", "Q", "Q: 2×3×4, x: n")
    assert np.array_equal(eval(d.results[0].numpy, {"np": np, "x": np.ones(3), "Q": np.ones((2, 3, 4))}),  # noqa: S307
                          np.zeros((2, 3, 4)))


def test_backprop_by_a_declared_absent_variable():
    from indexcalc import backprop
    d = backprop("Y = X W", "b", "b: 1×k, W: m×k")
    env = {"X": np.ones((2, 3)), "W": np.ones((3, 4)), "b": np.ones((1, 4)), "dY": np.ones((2, 4))}
    assert np.array_equal(np.asarray(eval(d.numpy, {"np": np, **env})) * np.ones((1, 4)), np.zeros((1, 4)))  # noqa: S307


# ---- 8. check accepts a claim written with the module's output
@pytest.mark.parametrize("equation,wrt,claim,right", [
    ("Y = sigmoid(X)", "X", "Y ∘ (1 - Y) ∘ dY", True),
    ("Y = sigmoid(X)", "X", "dY ∘ Y", False),
    ("Y = tanh(X W)", "W", "X^T (dY ∘ (1 - Y .^ 2))", True),
    ("Y = exp(X)", "X", "dY ∘ Y", True),
])
def test_check_with_the_output_name(equation, wrt, claim, right):
    from indexcalc.check import check
    assert check(equation, wrt, claim).correct is right


# ---- 10. what a user meets first
def test_version_and_help_say_what_every_argument_is_with_two_examples():
    import subprocess
    import sys

    from indexcalc.cli import COMMANDS, EXAMPLES, build_parser
    p = subprocess.run([sys.executable, "-m", "indexcalc", "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("indexcalc ")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, _, _ in COMMANDS:
        assert len(EXAMPLES[name]) >= 2, name
        cmd = sub.choices[name]
        for action in cmd._actions:
            assert action.help, (name, action.dest)
        for example in EXAMPLES[name]:                  # each example is a valid command line
            import shlex
            parser.parse_args(shlex.split(example)[1:])
        assert "examples:" in cmd.format_help()


def test_print_and_repr_show_the_closed_form_not_the_tree():
    import indexcalc
    d = indexcalc.derive("1/2 x^T A x", "x")
    assert "(A + A^T) x / 2" in str(d) and "read as (1/2) (x^T A x)" in str(d)
    assert "(A + A^T) x / 2" in repr(d) and "MatMul" not in repr(d) + str(d)
    v = indexcalc.check("x^T x", "x", "2 x")
    assert v.correct and "right" in v._repr_html_()
    assert indexcalc.check("x^T x", "x", "x").correct is False      # indexcalc.check stays the function
    for f in (indexcalc.derive, indexcalc.backprop, indexcalc.check):
        assert f.__doc__ and len(f.__doc__) > 100


def test_second_derivative_of_a_generic_function_is_checked_with_h_second():
    """h'' in NumPy code is h_prime_prime, which the guard reads back as h'' (it read h'prime,
    another test function, and called the right answer wrong: exit 3)."""
    d = derive("sum(h'(X))", "X")
    assert d.closed_form == "h''(X)"


# ---- LaTeX: the same reading as the language's own spelling --------------------------------
def test_latex_is_respelled_and_plain_text_is_left_as_it_is():
    """from_latex changes only LaTeX: every plain input above is returned unchanged, and a
    translated text translates to itself (reading twice changes nothing)."""
    from indexcalc.latex_input import from_latex
    import re
    for text, *_ in READINGS + REFUSALS:
        if "\\" not in text and not re.search(r"\^\{\s*[(\[]", text):   # a label W^{[1]} is respelled too
            assert from_latex(text) == text
        else:
            try:
                once = from_latex(text)
            except Exception:
                continue
            assert from_latex(once) == once
    assert from_latex(r"\mathbf{X}\mathbf{W}^{\top} + 2\mathbf{b}") == "X W^⊤ + 2 b"
    assert from_latex(r"\mathbf{e}^{2}") == "e^{2}"            # a bold e is a name, not the exponential
    assert from_latex(r"e^{\mathbf{a}^\top \mathbf{x}}") == "exp(a^⊤ x)"


def test_index_notation_in_latex_reads_as_its_plain_spelling():
    """The seeds' solutions are LaTeX: Y_{ij} = \\sum_{p} X_{ip} W_{jp} + b_{j}, pasted, is the
    equation Y_ij = Σ_p X_ip W_jp + b_j, with the same derivative (checked against NumPy)."""
    where = "X: S×M, W: N×M, b: N"
    latex = backprop_of(r"\mathbf{Y}_{ij} = \sum_{p} X_{ip} W_{jp} + b_{j}", where)
    plain = backprop_of("Y_ij = Σ_p X_ip W_jp + b_j", where)
    rng = np.random.default_rng(2)
    env = {"X": rng.normal(size=(S, M)), "W": rng.normal(size=(N, M)), "b": rng.normal(size=N),
           "dY": rng.normal(size=(S, N))}
    for a, b, want in zip(latex.results, plain.results, (env["dY"].T @ env["X"], env["dY"].sum(axis=0))):
        assert a.wrt == b.wrt and a.index_form == b.index_form
        assert np.allclose(eval(a.numpy, {"np": np, **env}), want)  # noqa: S307 - our own output


def backprop_of(equation, where):
    from indexcalc import backprop
    return backprop(equation, "W,b", where)


def test_repeated_indices_without_a_sum_say_how_index_notation_sums(capsys):
    """x_i A_ij x_j (the summation convention) is three names in the matrix language; asked for
    x, the error says how index notation starts (a Σ, or an indexed left side whose repeated
    indices are summed), with examples."""
    from indexcalc.cli import main
    assert main(["derive", "x_i A_ij x_j", "--wrt", "x"]) == 2
    err = capsys.readouterr().err
    assert "Σ_{i,j} x_i A_ij x_j" in err and "y_i = A_ij x_j" in err and "Traceback" not in err


def test_a_function_without_brackets_in_index_notation_is_refused_not_a_variable(capsys):
    """-Σ_{i,j} T_ij log Y_ij read `log` as a scalar variable (the derivative -log T, a
    misreading the guard cannot see); it is refused as the matrix language refuses log det X.
    A Greek name stays a scalar (Σ_i sigma x_i)."""
    from indexcalc.cli import main
    assert main(["derive", "L = -Σ_{i,j} T_ij log Y_ij", "--wrt", "Y"]) == 2
    assert "log(Y_ij)" in capsys.readouterr().err
    for spelling in ("GELU", "Swish", "Tanh"):          # the matrix language's spellings too
        assert main(["derive", f"Σ_i {spelling} x_i", "--wrt", "x"]) == 2
        assert f"{spelling}(" in capsys.readouterr().err
    assert derive("Σ_i sigma x_i", "x").results[0].closed_form == "sigma 1"


def test_latex_function_of_one_atom_is_bracketed_as_tex_reads_it():
    """\\log Y_{ij} (TeX: the log of the atom after it) is log(Y_ij); \\sigma(…) the sigmoid in
    index notation too. Checked against NumPy."""
    rng = np.random.default_rng(5)
    T, Y = rng.uniform(0.5, 1.5, size=(S, N)), rng.uniform(0.5, 1.5, size=(S, N))
    d = derive(r"L = -\sum_{i,j} T_{ij} \log Y_{ij}", "Y", "T: S×N, Y: S×N")
    assert np.allclose(eval(d.results[0].numpy, {"np": np, "T": T, "Y": Y}), -T / Y)  # noqa: S307
    X, W = rng.normal(size=(S, N)), rng.normal(size=(N, M))
    from indexcalc import backprop
    dY = rng.normal(size=(S, M))
    b = backprop(r"Y_{ij} = \sigma(\sum_{p} X_{ip} W_{pj})", "W", "X: S×N, W: N×M")
    s = sig(X @ W)
    assert np.allclose(eval(b.results[0].numpy, {"np": np, "X": X, "W": W, "dY": dY}), X.T @ (dY * s * (1 - s)))  # noqa: S307
    from indexcalc.latex_input import from_latex
    assert from_latex(r"\log x_i y_i") == "log x_i y_i"          # not one atom: left to the refusal


@pytest.mark.parametrize("equation", [r"\mathbf{R} \coloneqq \mathbf{Q}^{\top} \mathbf{Q}", "R := Q^T Q", "R ≔ Q^T Q"])
def test_a_definition_sign_is_an_equation(equation):
    """The seeds define with \\coloneqq (R ≔ QᵀQ); := and ≔ are the equation's = (checked: Q (dR + dRᵀ))."""
    from indexcalc import backprop
    rng = np.random.default_rng(4)
    Q, dR = rng.normal(size=(S, N)), rng.normal(size=(N, N))
    r = backprop(equation, "Q").results[0]
    assert np.allclose(eval(r.numpy, {"np": np, "Q": Q, "dR": dR}), Q @ (dR + dR.T))  # noqa: S307


def test_a_declared_function_reads_in_every_command(capsys):
    """--where "act: function" (README, derive --help): derive's closed form parses back with the
    declaration (it was exit 3: act' unknown), backprop reads it (it was exit 2), check accepts
    the right claim, and codegen says why it cannot write act's code (exit 2, no file)."""
    from indexcalc.cli import main
    assert derive("sum(act(X W))", "W", "act: function").results[0].closed_form == "X^T act'(X W)"
    from indexcalc import backprop
    assert backprop("Y = act(X W)", "W", "act: function").results[0].closed_form == "X^T (dY ∘ act'(X W))"
    assert main(["check", "sum(act(X W))", "--wrt", "W", "--where", "act: function", "--answer", "X^T act'(X W)"]) == 0
    assert main(["check", "sum(act(X W))", "--wrt", "W", "--where", "act: function", "--answer", "X^T act(X W)"]) == 1
    capsys.readouterr()
    assert main(["codegen", "Y = act(X W)", "--wrt", "W", "--where", "act: function"]) == 2
    assert "generic function" in capsys.readouterr().err


@pytest.mark.parametrize("text, whole", [
    ("sum(softmax(X Wq (X Wk)^T) X Wv)", ["Wq", "Wk", "Wv"]),    # no part stands alone
    ("W1^T x + lambda", ["W1", "lambda"]),                       # a digit; a Greek name
    ("sum(dY ∘ (X W))", ["dY"]),                                 # the upstream gradient
    ("x^T eps x", ["eps"]),                                      # two parts nobody knows
    ("δx^T x + x^T x", ["δx", "x"]),                             # an increment is a variable
    ("x1^T A x_2 + b1", ["x1", "x_2", "b1"]),                    # a letter and its number
])
def test_names_that_stay_whole(text, whole):
    """A name written together splits only where its letters are known names: the projections
    Wq, Wk, Wv of attention, W1, lambda, dY and eps stay one variable each."""
    _, variables = infer(parse(text), parse_decls(None))
    assert all(name in variables for name in whole), list(variables.table)


@pytest.mark.parametrize("text, words", [("x**2", "write ^ here"), ("sum(abs(x)**2)", ".^ for each entry"),
                                         ("A\\b", "A^-1 b"), ("x @ y", "x^T y or x · y"),
                                         ("‖x‖_∞", "‖x‖_1, ‖x‖_2 and ‖X‖_F"), ("2 × x", "A * B or 2 x"),
                                         ("A ⊗ B", "Kronecker")])
def test_python_and_matlab_spellings_are_refused_with_ours(text, words):
    """x**2 (Python's power), A\\b (MATLAB's left division, read as a LaTeX command) and x @ y of
    two 1-D vectors (NumPy's dot product): each message says how the language writes it."""
    from indexcalc.errors import IndexCalcError
    with pytest.raises(IndexCalcError) as e:
        infer(parse(text), parse_decls(None))
    assert words in str(e.value), str(e.value)


@pytest.mark.parametrize("text, words", [("λAx^T x", "(λ A x)"), ("αβx^T x", "(α β x)"),
                                         ("x^TΣx", "^T Σ x for ^TΣx")])
def test_a_greek_letter_glued_to_what_it_cannot_split_is_refused(text, words):
    """λAx: λ times Ax or A x? αβx: α β or one name αβ? Refused with the factors spaced; ^TΣx
    is the transpose glued to a product, said as for ^TAx."""
    with pytest.raises(ShapeError) as e:
        infer(parse(text), parse_decls(None))
    assert words in str(e.value), str(e.value)


@pytest.mark.parametrize("text, wrt, noted", [
    ("sum((X W - Y)^2)", "W", "read as a matrix power"),     # a residual made square: said in step 2
    ("tr(X^2)", "X", None),                                  # the Cookbook's X^2: nothing to say
    ("log(1 + exp(-y w^T x))", "w", "y read as a scalar"),
])
def test_step_two_says_what_the_reading_decided(text, wrt, noted):
    steps = derive(text, wrt).results[0].steps
    notes = [s.text for s in steps if s.rule == "note"]
    assert (noted is None and not notes) or (noted is not None and any(noted in n for n in notes)), notes
    if notes:
        assert steps[1].rule == "note"


def test_a_bias_declared_as_a_column_goes_along_the_columns():
    """b: n×1 is NumPy's (n, 1) array: in Z = W A + b it is added to every column (the column
    bias of deeplearning.ai's notes), as NumPy broadcasts it; b: n (1-D) stays refused, since
    NumPy would pair it with the rows. Values against hand NumPy."""
    from indexcalc import backprop

    from .references import run_code
    rng = np.random.default_rng(5)
    W, A, b, dZ = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=3), rng.normal(size=(3, 5))
    d = backprop("Z = relu(W A + b)", "W,b", "W: n×m, A: m×k, b: n×1")
    mask = (W @ A + b[:, None]) > 0
    env = {"W": W, "A": A, "b": b, "dZ": dZ}
    assert np.allclose(run_code(d.results[0].numpy, env), (mask * dZ) @ A.T)
    assert np.allclose(run_code(d.results[1].numpy, env), (mask * dZ).sum(axis=1))
    with pytest.raises(ShapeError, match="b: n×1, a column"):
        backprop("Z = W A + b", "b", "W: n×m, A: m×k, b: n")


@pytest.mark.parametrize("text", ["norm(x, 'inf')", 'norm(X, "nuc")'])
def test_a_norm_order_the_language_has_not_is_named(text):
    """NumPy's ord as a string other than 'fro' says which orders there are (it was a bare
    parse error at the quote)."""
    from indexcalc.errors import UnsupportedError
    with pytest.raises(UnsupportedError, match="order of a norm may be 1, 2 or 'fro'"):
        derive(text, "x" if "x" in text else "X")


def test_backprop_by_a_name_not_in_the_equation_lists_its_variables_not_the_upstream():
    from indexcalc import backprop
    from indexcalc.errors import IndexCalcError
    with pytest.raises(IndexCalcError, match=r"the variables are X, W\)"):
        backprop("Y = X W", "Q")


# ---- a whole-number exponent against `/`: D^-1/2 is the power -1/2 to a textbook reader
@pytest.mark.parametrize("text,both", [
    ("tr(D^-1/2 A D^-1/2)", ["D^(-1/2)", "(D^-1)/2"]),          # GCN's normalised adjacency
    ("(x^T x)^1/2", ["(x^T x)^(1/2)", "((x^T x)^1)/2"]),         # the norm, as plain text writes it
    ("‖x‖^-3/2 + s^2/3", ["‖x‖^(-3/2)", "(‖x‖^-3)/2"]),
    ("sum(x .^ 1/2)", ["x.^(1/2)", "(x.^1)/2"]),
    ("Σ_i x_i^1/2", ["x_i^(1/2)", "(x_i^1)/2"]),                 # index notation reads it alike
])
def test_a_fraction_glued_to_an_exponent_is_refused_with_both_readings(text, both):
    """D^-1/2 A D^-1/2 was read ((D^-1)/2) A D^-1 / 2 and (x^T x)^1/2 as (x^T x)/2, each derived
    with confidence: the input is refused, the message spelling both readings, a caret at ^."""
    from indexcalc.errors import ParseError
    from indexcalc.from_index_notation import is_index_notation, parse_index
    with pytest.raises(ParseError) as e:
        (parse_index if is_index_notation(text) else parse)(text)
    assert all(b in str(e.value) for b in both), str(e.value)


@pytest.mark.parametrize("text,ref", [
    ("s^2/2 + s^3/6", lambda s: s ** 2 / 2 + s ** 3 / 6),           # no one writes s^(2/2) or s^(1/2) so
    ("s^-1 / 2", lambda s: 1 / s / 2),                              # spaced: the division as written
    ("s⁻¹/2", lambda s: 1 / s / 2),                                 # typeset: the exponent ends where raised
    ("s^(-1)/2 + s^(1/2)", lambda s: 1 / s / 2 + np.sqrt(s)),
])
def test_what_a_fraction_after_an_exponent_reads_as(text, ref):
    typed, variables = infer(parse(text), parse_decls("s: scalar"))
    assert np.isclose(float(np.squeeze(evaluate(typed, {"s": np.array([[1.7]])}, {}))), ref(1.7))


def test_the_index_form_never_prints_a_power_against_a_fraction():
    """x_i^3/2 (SymPy's spelling of x_i^3 / 2) in a step or the index form reads as the power 3/2."""
    d = derive("sum(x .^ 4) / 8", "x", "x: n")
    assert d.results[0].index_form == "x_i^3 / 2"
    assert "x_i^3 / 2" in [s.text for s in d.results[0].steps]


@pytest.mark.parametrize("where,hint", [("X: symmetric", True), ("X: n×n symmetric", True),
                                        ("X: square", False), ("X: diagonal", False)])
def test_a_structure_word_in_a_declaration_is_refused_not_read_as_a_size(where, hint):
    """`X: symmetric` declared a vector of the size named "symmetric" (x^T X x: "the inner sizes
    n and symmetric differ"; sum(W) with `W: square`, a vector's gradient, with confidence)."""
    from indexcalc.errors import UnsupportedError
    with pytest.raises(UnsupportedError, match="not structure") as e:
        parse_decls(where)
    assert "X: n×n" in str(e.value) and ("(G + G^T)/2" in str(e.value)) == hint


@pytest.mark.parametrize("text,ref", [("sum(1./x)", lambda x: np.sum(1 / x)),
                                      ("sum(2.*x + 2./(1.5 + x.^2))", lambda x: np.sum(2 * x + 2 / (1.5 + x ** 2)))])
def test_matlab_element_wise_operators_after_a_number(text, ref):
    """1./x is MATLAB's 1 ./ x: the number took the dot (1. / x), a division by a vector, refused
    with 'use ./', which the user had written."""
    typed, variables = infer(parse(text), parse_decls("x: n"))
    x = np.array([0.7, 1.3, 2.1])
    assert np.isclose(float(np.squeeze(evaluate(typed, {"x": x.reshape(3, 1)}, {"n": 3}))), ref(x))


def test_numpys_norm_of_a_matrix_with_ord_1_is_not_the_entry_wise_sum():
    """norm(X, 1) (np.linalg.norm(X, 1)) of a matrix is the largest column sum of |X|: it was read
    sum(abs(X)) and derived with confidence (sign(X)); refused as norm(X, 2) is. A vector's
    norm(x, 1) stays Σ|x_i|, and ‖X‖_1 the entry-wise sum, as the read-as line says."""
    from indexcalc.errors import UnsupportedError
    with pytest.raises(UnsupportedError, match="largest column sum") as e:
        infer(parse("norm(X, 1)"), parse_decls("X: m×n"))
    assert "sum(abs(X))" in str(e.value)
    x = np.array([0.5, -1.5, 2.0])
    for text in ("norm(x, 1)", "‖x‖_1"):
        typed, _ = infer(parse(text), parse_decls("x: n"))
        assert np.isclose(float(np.squeeze(evaluate(typed, {"x": x.reshape(3, 1)}, {"n": 3}))), 4.0)


@pytest.mark.parametrize("text,where,ref", [
    ("np.sum((X @ W) * G)", "X: S×M, W: M×N, G: S×N", lambda e: np.sum((e["X"] @ e["W"]) * e["G"])),
    ("x.T @ (A @ x * x)", "A: n×n, x: n", lambda e: e["x"] @ ((e["A"] @ e["x"]) * e["x"])),
    ("tr(A @ X * B)", "A: m×n, X: n×p, B: p×m", lambda e: np.trace(e["A"] @ e["X"] @ e["B"])),   # only a product fits
    ("sum(X * W)", "X: n×n, W: n×n", lambda e: np.sum(e["X"] @ e["W"])),                        # no NumPy: SPEC's product
])
def test_numpys_star_is_read_as_the_shapes_allow(text, where, ref):
    """In an input that writes NumPy (@, np., .T), * between arrays of one shape is NumPy's
    element-wise product: np.sum((X @ W) * G) was read sum(X W G) and refused for its sizes
    (or, square, derived with confidence)."""
    rng = np.random.default_rng(3)
    typed, variables = infer(parse(text), parse_decls(where))
    sizes = {"S": 4, "M": 3, "N": 2, "n": 3, "m": 2, "p": 4}
    env = {v.name: rng.normal(size=tuple(sizes[d] for d in v.shape if d != 1)) for v in variables.table.values()}
    got = evaluate(typed, {k: to_2d(a, variables[k]) for k, a in env.items()}, sizes)
    assert np.isclose(float(np.squeeze(got)), ref(env))


def test_numpys_star_between_square_matrices_is_refused_with_both_spellings():
    from indexcalc.errors import UnsupportedError
    with pytest.raises(UnsupportedError) as e:
        infer(parse("np.sum((X @ W) * G)"), parse_decls("X: n×n, W: n×n, G: n×n"))
    assert "(X W) ∘ G" in str(e.value) and "(X W) @ G" in str(e.value)


@pytest.mark.parametrize("text", [r"sum(\mathbf{X}^{\circ 2} \odot A)", "sum(X^{⊙2} ∘ A)", "sum(X^∘2 ∘ A)"])
def test_a_hadamard_power_as_papers_write_it(text):
    """X^{∘2} (LaTeX X^{\\circ 2}, X^{\\odot 2}) is X .^ 2: it was a parse error at the ∘."""
    typed, _ = infer(parse(text), parse_decls("X: m×n, A: m×n"))
    X, A = np.arange(6.0).reshape(2, 3) - 2, np.ones((2, 3)) * 0.5
    assert np.isclose(float(np.squeeze(evaluate(typed, {"X": X, "A": A}, {"m": 2, "n": 3}))), np.sum(X ** 2 * A))


def test_an_undeclared_exponent_is_a_scalar_by_its_place():
    """(x^T y + c)^d, the polynomial kernel: an exponent only a scalar can be was a default
    vector ('an exponent must be a scalar, but d (vector of size ?) is not'); read as a scalar,
    as a divisor's undeclared lower-case names are, and said in step 2. A name also written
    elsewhere (x^T d + (x^T y)^d) keeps its kind: reading it as a scalar there changed x^T d."""
    from indexcalc.errors import IndexCalcError
    d = derive("(x^T y + c)^d", "x", "x: n, y: n")
    assert "c, d read as scalars" in d.results[0].steps[1].text
    x, y, c, k = np.array([0.3, -0.2, 0.5]), np.array([1.0, 0.4, -0.7]), 1.5, 3.0
    got = eval(d.numpy, {"np": np, "x": x, "y": y, "c": c, "d": k})  # noqa: S307
    assert np.allclose(got, k * (x @ y + c) ** (k - 1) * y)
    with pytest.raises(IndexCalcError, match="exponent must be a scalar"):
        derive("x^T d + (x^T y)^d", "x", "x: n, y: n")
