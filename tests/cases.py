"""One row per language construct: expression, variable, declarations, array shapes, NumPy
reference, and how to draw inputs (positive, wellcond, awayfromzero). The references are
plain NumPy written here, independent of indexcalc."""
import numpy as np

from .references import softmax as softmax_rows


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


S34 = {"X": (3, 4)}
SQ = {"X": (3, 3)}

CASES = [
    # products, transposes, scalars
    ("x^T a", "x", None, {"x": (4,), "a": (4,)}, lambda e: e["x"] @ e["a"], {}),
    ("x · a", "x", None, {"x": (4,), "a": (4,)}, lambda e: e["x"] @ e["a"], {}),
    ("dot(x, a)", "a", None, {"x": (4,), "a": (4,)}, lambda e: e["x"] @ e["a"], {}),
    ("b^T X c", "X", None, {"b": (3,), "X": (3, 5), "c": (5,)}, lambda e: e["b"] @ e["X"] @ e["c"], {}),
    ("x^T B x", "x", None, {"x": (4,), "B": (4, 4)}, lambda e: e["x"] @ e["B"] @ e["x"], {}),
    ("x' B x", "B", None, {"x": (4,), "B": (4, 4)}, lambda e: e["x"] @ e["B"] @ e["x"], {}),
    ("tr(V X W)", "X", "V: n×m, X: m×p, W: p×n", {"V": (4, 3), "X": (3, 5), "W": (5, 4)},
     lambda e: np.trace(e["V"] @ e["X"] @ e["W"]), {}),
    ("tr(A @ X * B)", "X", None, {"A": (3, 4), "X": (4, 2), "B": (2, 3)},
     lambda e: np.trace(e["A"] @ e["X"] @ e["B"]), {}),
    ("Q^T Q", "Q", None, {"Q": (3, 4)}, lambda e: e["Q"].T @ e["Q"], {}),
    ("A x", "x", None, {"A": (3, 4), "x": (4,)}, lambda e: e["A"] @ e["x"], {}),
    ("A x", "A", None, {"A": (3, 4), "x": (4,)}, lambda e: e["A"] @ e["x"], {}),
    ("2 x^T B x / 3", "x", None, {"x": (4,), "B": (4, 4)}, lambda e: 2 * e["x"] @ e["B"] @ e["x"] / 3, {}),
    ("alpha x^T x", "alpha", None, {"alpha": (), "x": (3,)}, lambda e: e["alpha"] * e["x"] @ e["x"], {}),
    ("-x^T A^T A x", "x", None, {"x": (3,), "A": (4, 3)}, lambda e: -e["x"] @ e["A"].T @ e["A"] @ e["x"], {}),
    ("x x^T", "x", None, {"x": (3,)}, lambda e: np.outer(e["x"], e["x"]), {}),
    ("X^T X W", "W", None, {"X": (4, 3), "W": (3, 2)}, lambda e: e["X"].T @ e["X"] @ e["W"], {}),
    # sums and broadcasting
    ("sum(X W^T + b)", "b", "X: S×M, W: N×M, b: 1×N", {"X": (5, 3), "W": (4, 3), "b": (1, 4)},
     lambda e: np.sum(e["X"] @ e["W"].T + e["b"]), {}),
    ("sum(X - Y)", "X", None, {"X": (3, 4), "Y": (3, 4)}, lambda e: np.sum(e["X"] - e["Y"]), {}),
    ("sum(X)", "X", None, S34, lambda e: np.sum(e["X"]), {}),
    ("sum(X, 1)", "X", None, S34, lambda e: np.sum(e["X"], axis=1), {}),
    ("sum(X, 0)", "X", None, S34, lambda e: np.sum(e["X"], axis=0, keepdims=True), {}),
    ("1^T X 1", "X", None, S34, lambda e: np.sum(e["X"]), {}),
    ("x^T 1", "x", None, {"x": (4,)}, lambda e: np.sum(e["x"]), {}),
    # element-wise operations
    ("sum((X W) .^ 2)", "X", None, {"X": (2, 3), "W": (3, 2)}, lambda e: np.sum((e["X"] @ e["W"]) ** 2), {}),
    ("sum(A ∘ X)", "X", None, {"A": (3, 4), "X": (3, 4)}, lambda e: np.sum(e["A"] * e["X"]), {}),
    ("sum(A .* X .* X)", "X", None, {"A": (3, 4), "X": (3, 4)}, lambda e: np.sum(e["A"] * e["X"] ** 2), {}),
    ("sum(A ⊘ X)", "X", None, {"A": (3, 4), "X": (3, 4)}, lambda e: np.sum(e["A"] / e["X"]), {"X": "positive"}),
    ("sum(X ./ A)", "X", None, {"A": (3, 4), "X": (3, 4)}, lambda e: np.sum(e["X"] / e["A"]), {"A": "positive"}),
    ("-sum(T ∘ log(X)) / S", "X", "X: S×C, T: S×C", {"X": (5, 4), "T": (5, 4)},
     lambda e: -np.sum(e["T"] * np.log(e["X"])) / 5, {"X": "positive"}),
    ("exp(X)", "X", None, {"X": (2, 3)}, lambda e: np.exp(e["X"]), {}),
    ("sum(exp(X))", "X", None, S34, lambda e: np.sum(np.exp(e["X"])), {}),
    ("sum(log(X))", "X", None, S34, lambda e: np.sum(np.log(e["X"])), {"X": "positive"}),
    ("sum(sqrt(X))", "X", None, S34, lambda e: np.sum(np.sqrt(e["X"])), {"X": "positive"}),
    ("sum(abs(X))", "X", None, S34, lambda e: np.sum(np.abs(e["X"])), {"X": "awayfromzero"}),
    ("sum(sin(X) + cos(X))", "X", None, S34, lambda e: np.sum(np.sin(e["X"]) + np.cos(e["X"])), {}),
    ("sum(tanh(X W))", "W", None, {"X": (3, 2), "W": (2, 4)}, lambda e: np.sum(np.tanh(e["X"] @ e["W"])), {}),
    ("sum(sigmoid(X))", "X", None, S34, lambda e: np.sum(sigmoid(e["X"])), {}),
    ("sum(relu(X))", "X", None, S34, lambda e: np.sum(np.maximum(e["X"], 0)), {"X": "awayfromzero"}),
    ("sum(softplus(X))", "X", None, S34, lambda e: np.sum(np.logaddexp(0, e["X"])), {}),
    ("sum(X ∘ H(X))", "X", None, S34, lambda e: np.sum(e["X"] * (e["X"] > 0)), {"X": "awayfromzero"}),
    ("relu(x)", "x", None, {"x": (4,)}, lambda e: np.maximum(e["x"], 0), {"x": "awayfromzero"}),
    ("sum(sign(X) ∘ X)", "X", None, S34, lambda e: np.sum(np.sign(e["X"]) * e["X"]), {"X": "awayfromzero"}),
    # norms, traces, determinants, inverses, powers
    ("‖w‖", "w", None, {"w": (4,)}, lambda e: np.linalg.norm(e["w"]), {}),
    ("||w||", "w", None, {"w": (4,)}, lambda e: np.linalg.norm(e["w"]), {}),
    ("norm(X)", "X", None, S34, lambda e: np.linalg.norm(e["X"]), {}),
    ("norm2(A x - y)", "x", None, {"A": (4, 3), "x": (3,), "y": (4,)},
     lambda e: np.sum((e["A"] @ e["x"] - e["y"]) ** 2), {}),
    ("‖A x - y‖^2 + lambda ‖x‖^2", "x", None, {"A": (4, 3), "x": (3,), "y": (4,), "lambda": ()},
     lambda e: np.sum((e["A"] @ e["x"] - e["y"]) ** 2) + e["lambda"] * np.sum(e["x"] ** 2), {}),
    ("tr(S)", "S", None, {"S": (4, 4)}, lambda e: np.trace(e["S"]), {}),
    ("tr(X^T X) + 3", "X", None, S34, lambda e: np.trace(e["X"].T @ e["X"]) + 3, {}),
    ("tr(X^4)", "X", None, SQ, lambda e: np.trace(np.linalg.matrix_power(e["X"], 4)), {}),
    ("tr(A X B X^T C)", "X", None, {"A": (3, 3), "X": (3, 2), "B": (2, 2), "C": (3, 3)},
     lambda e: np.trace(e["A"] @ e["X"] @ e["B"] @ e["X"].T @ e["C"]), {}),
    ("det(X)", "X", None, SQ, lambda e: np.linalg.det(e["X"]), {"X": "wellcond"}),
    ("logdet(X)", "X", None, SQ, lambda e: np.log(np.linalg.det(e["X"])), {"X": "wellcond"}),
    ("log(det(X))", "X", None, SQ, lambda e: np.log(np.linalg.det(e["X"])), {"X": "wellcond"}),
    ("tr(X^-1 A)", "X", None, {"X": (3, 3), "A": (3, 3)}, lambda e: np.trace(np.linalg.inv(e["X"]) @ e["A"]),
     {"X": "wellcond"}),
    ("tr(inv(X) A)", "X", None, {"X": (3, 3), "A": (3, 3)}, lambda e: np.trace(np.linalg.inv(e["X"]) @ e["A"]),
     {"X": "wellcond"}),
    ("a^T X^-T b", "X", None, {"a": (3,), "X": (3, 3), "b": (3,)},
     lambda e: e["a"] @ np.linalg.inv(e["X"]).T @ e["b"], {"X": "wellcond"}),
    ("X^{-1}", "X", None, SQ, lambda e: np.linalg.inv(e["X"]), {"X": "wellcond"}),
    ("(x^T x)^(1/2)", "x", None, {"x": (3,)}, lambda e: np.sqrt(e["x"] @ e["x"]), {}),
    ("exp(x^T a)", "x", None, {"x": (3,), "a": (3,)}, lambda e: np.exp(e["x"] @ e["a"]), {}),
    ("log(sum(exp(x)))", "x", None, {"x": (4,)}, lambda e: np.log(np.sum(np.exp(e["x"]))), {}),
    # whole sums of a matrix (1ᵀ M 1, printed np.sum(M)) in a quotient and a square, and s 1 1ᵀ
    ("log(sum(exp(X W)))", "W", None, {"X": (3, 2), "W": (2, 4)}, lambda e: np.log(np.sum(np.exp(e["X"] @ e["W"]))), {}),
    ("sum(exp(X^T W))^2 / 10", "W", None, {"X": (2, 3), "W": (2, 4)}, lambda e: np.sum(np.exp(e["X"].T @ e["W"])) ** 2 / 10, {}),
    ("sum(softmax(x) ∘ a) + x^T x + sum(x)", "x", None, {"x": (4,), "a": (4,)},
     lambda e: np.sum(softmax_rows(e["x"][None, :])[0] * e["a"]) + e["x"] @ e["x"] + np.sum(e["x"]), {}),
    ("sum(X)^2 + sum(x)^2", "X", None, {"X": (3, 4), "x": (2,)}, lambda e: np.sum(e["X"]) ** 2 + np.sum(e["x"]) ** 2, {}),
    # softmax, ones, identity, diag, generic functions
    ("softmax(z)", "z", None, {"z": (4,)}, lambda e: softmax_rows(e["z"]), {}),
    ("softmax(X)", "X", None, {"X": (3, 4)}, lambda e: softmax_rows(e["X"]), {}),
    ("-sum(T ∘ log(softmax(X))) / S", "X", "X: S×C, T: S×C", {"X": (5, 4), "T": (5, 4)},
     lambda e: -np.sum(e["T"] * np.log(softmax_rows(e["X"]))) / 5, {}),
    ("tr(I X)", "X", None, SQ, lambda e: np.trace(e["X"]), {}),
    ("x^T (A + I) x", "x", None, {"x": (3,), "A": (3, 3)}, lambda e: e["x"] @ (e["A"] + np.eye(3)) @ e["x"], {}),
    ("x^T diag(a) x", "x", None, {"x": (3,), "a": (3,)}, lambda e: e["x"] @ np.diag(e["a"]) @ e["x"], {}),
    ("diag(X)^T a", "X", None, {"X": (3, 3), "a": (3,)}, lambda e: np.diag(e["X"]) @ e["a"], {}),
    ("sum(A ∘ ((X 1) 1^T))", "X", None, {"A": (3, 4), "X": (3, 2)},
     lambda e: np.sum(e["A"] * np.outer(e["X"].sum(axis=1), np.ones(4))), {}),
    # 1-D convolutions (seed 003): index arithmetic, sifting over shifted indices
    ("v^T conv(h, w)", "h", "h: d, w: k", {"v": (5,), "h": (7,), "w": (3,)},
     lambda e: e["v"] @ np.correlate(e["h"], e["w"], "valid"), {}),
    ("v^T conv(h, w)", "w", "h: d, w: k", {"v": (5,), "h": (7,), "w": (3,)},
     lambda e: e["v"] @ np.correlate(e["h"], e["w"], "valid"), {}),
    ("v^T conv_full(h, w)", "h", "h: d, w: k", {"v": (9,), "h": (7,), "w": (3,)},
     lambda e: e["v"] @ np.correlate(e["h"], e["w"], "full"), {}),
    ("v^T conv_full(h, w)", "w", "h: d, w: k", {"v": (9,), "h": (7,), "w": (3,)},
     lambda e: e["v"] @ np.correlate(e["h"], e["w"], "full"), {}),
    ("v^T conv(h, flip(w))", "w", "h: d, w: k", {"v": (5,), "h": (7,), "w": (3,)},
     lambda e: e["v"] @ np.correlate(e["h"], e["w"][::-1], "valid"), {}),
    ("sum(conv(tanh(h), w))", "h", "h: d, w: k", {"h": (7,), "w": (3,)},
     lambda e: np.sum(np.correlate(np.tanh(e["h"]), e["w"], "valid")), {}),
]
