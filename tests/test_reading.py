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
from indexcalc.shapes import infer, parse_decls

from .conftest import finite_jacobian

S, N, M = 4, 3, 2          # sizes the variables below are drawn with


def sig(z):
    return 1 / (1 + np.exp(-z))


def softmax_rows(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


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
    typed, variables = infer(parse(text), parse_decls(where))
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
