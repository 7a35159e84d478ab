"""Deep-learning losses and layers as a course or a paper writes them: each derivative's NumPy
code against central differences of the loss written here by hand (independent of indexcalc)."""
import numpy as np
import pytest

from indexcalc import derive

from .conftest import finite_jacobian

LOSSES = [
    # expression, wrt, where, shapes, the loss by hand
    # the log-cosh loss (cosh and sinh were unknown functions)
    ("sum(log(cosh(X w - y)))", "w", "X: S×M, w: M, y: S", {"X": (5, 3), "w": (3,), "y": (5,)},
     lambda e: np.sum(np.log(np.cosh(e["X"] @ e["w"] - e["y"])))),
    (r"\frac{1}{S} \sum(\log\cosh(X w - y))", "w", "X: S×M, w: M, y: S", {"X": (5, 3), "w": (3,), "y": (5,)},
     lambda e: np.sum(np.log(np.cosh(e["X"] @ e["w"] - e["y"]))) / 5),
    ("sum(sinh(X W) ∘ G)", "W", "X: S×M, W: M×N, G: S×N", {"X": (4, 3), "W": (3, 2), "G": (4, 2)},
     lambda e: np.sum(np.sinh(e["X"] @ e["W"]) * e["G"])),
]


@pytest.mark.parametrize("expr,wrt,where,shapes,loss", LOSSES, ids=[c[0] for c in LOSSES])
def test_loss_gradient_against_central_differences(expr, wrt, where, shapes, loss, rng):
    d = derive(expr, wrt, where)
    env = {n: rng.normal(size=s) for n, s in shapes.items()}
    got = np.asarray(eval(d.results[0].numpy, {"np": np, **env}), dtype=float)  # noqa: S307
    want = finite_jacobian(loss, env, wrt)
    assert got.shape == want.shape and np.allclose(got, want, rtol=1e-6, atol=1e-8), d.results[0].closed_form


def test_sigma_called_is_the_sum_unless_declared(rng):
    """Σ(...) and \\sum(...) (TeX drops the space of \\sum (...)) are the sum of the entries, as
    σ(z) is the sigmoid: they were read as an undeclared scalar Σ times the bracket, silently.
    A Σ declared in --where stays the variable (a covariance times a vector)."""
    x = rng.normal(size=4)
    for text in ["Σ(x ∘ x)", r"\sum(x .^ 2)", r"\sum \left( x \odot x \right)", r"\sum (x .^ 2)"]:
        d = derive(text, "x")
        assert d.read_as == "sum(x ∘ x)" or d.read_as == "sum(x .^ 2)", d.read_as
        assert np.allclose(eval(d.results[0].numpy, {"np": np, "x": x}), 2 * x)  # noqa: S307
    S = rng.normal(size=(4, 4))
    d = derive("Σ(x)", "x", "Σ: n×n, x: n")
    assert np.allclose(eval(d.results[0].numpy, {"np": np, "x": x, "Σ": S}), S)  # noqa: S307
