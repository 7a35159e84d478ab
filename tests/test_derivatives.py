"""Every construct of the language, checked numerically against finite differences of an
independent NumPy reference; closed forms parsed back; second derivatives."""
import keyword

import numpy as np
import pytest

from indexcalc import derive, parse
from indexcalc.evaluate import evaluate, to_2d
from indexcalc.shapes import infer

from .cases import CASES
from .conftest import finite_jacobian

def make(shape, how, rng):
    if shape == ():
        return float(rng.uniform(0.5, 1.5))
    if how == "positive":
        return rng.uniform(0.2, 1.2, size=shape)
    if how == "wellcond":
        return rng.normal(size=shape) * 0.3 + 2.0 * np.eye(shape[0])
    if how == "awayfromzero":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 1.3, size=shape)
    return rng.normal(size=shape)


def bind_sizes(d, env):
    sizes = {}
    for name, info in d.variables.items():
        for dim, n in zip(info.array_shape, np.shape(env[name])):
            if isinstance(dim, str):
                sizes[dim] = n
    return sizes


@pytest.mark.parametrize("expr,wrt,where,shapes,ref,gen", CASES, ids=[f"{c[0]} by {c[1]}" for c in CASES])
def test_derivative_matches_finite_differences(expr, wrt, where, shapes, ref, gen, rng):
    d = derive(expr, wrt, where)
    r = d.results[0]
    for _ in range(2):
        env = {n: make(s, gen.get(n), rng) for n, s in shapes.items()}
        names = {k + "_" if keyword.iskeyword(k) else k: v for k, v in env.items()}
        got = np.asarray(eval(r.numpy, {"np": np, **bind_sizes(d, env), **names}), dtype=float)
        want = finite_jacobian(ref, env, wrt)
        assert got.shape == want.shape, (r.numpy, got.shape, want.shape)
        assert np.allclose(got, want, rtol=1e-5, atol=1e-5 * (1 + np.abs(want).max())), (r.numpy, got, want)


@pytest.mark.parametrize("expr,wrt,where,shapes,ref,gen", CASES, ids=[f"{c[0]} by {c[1]}" for c in CASES])
def test_closed_form_parses_back_to_the_same_values(expr, wrt, where, shapes, ref, gen, rng):
    d = derive(expr, wrt, where)
    r = d.results[0]
    if r.closed_form is None:
        pytest.skip("no closed form (rank > 2): the index form is the answer")
    decls = {n: v.shape for n, v in d.variables.items()}
    back, _ = infer(parse(r.closed_form), decls, expect=r.closed.shape)
    env = {n: make(s, gen.get(n), rng) for n, s in shapes.items()}
    env2d = {n: to_2d(env[n], d.variables[n]) for n in env}
    sizes = bind_sizes(d, env)
    want = finite_jacobian(ref, env, wrt)
    got = evaluate(back, env2d, sizes)
    assert np.allclose(np.reshape(got, want.shape), want, rtol=1e-5, atol=1e-5 * (1 + np.abs(want).max()))


LEAKS = ["@", "Dummy", "Piecewise", "KroneckerDelta", "Lambda", "**", "None", "Partial("]


@pytest.mark.parametrize("expr,wrt,where,shapes,ref,gen", CASES, ids=[f"{c[0]} by {c[1]}" for c in CASES])
def test_no_internal_names_in_the_steps(expr, wrt, where, shapes, ref, gen):
    """Atoms (‖w‖ is @0 inside), SymPy's classes and Python's ** never reach a reader."""
    from indexcalc.output import derive_latex
    d = derive(expr, wrt, where)
    text = [s.text for r in d.results for s in r.steps if s.rule != "index"] + [r.index_form for r in d.results]
    for leak in LEAKS:
        assert not [t for t in text if leak in t], leak
        assert leak not in derive_latex(d), leak


@pytest.mark.parametrize("expr,wrt,shapes,ref", [
    ("x^T B x", "x", {"x": (4,), "B": (4, 4)}, lambda e: e["x"] @ e["B"] @ e["x"]),
    ("log(sum(exp(x)))", "x", {"x": (4,)}, lambda e: np.log(np.sum(np.exp(e["x"])))),
    ("‖w‖", "w", {"w": (3,)}, lambda e: np.linalg.norm(e["w"])),
    ("sum(exp(X))", "X", {"X": (2, 3)}, lambda e: np.sum(np.exp(e["X"]))),
])
def test_hessian(expr, wrt, shapes, ref, rng):
    d = derive(expr, wrt, order=2)
    r = d.results[0]
    env = {n: make(s, None, rng) for n, s in shapes.items()}
    got = np.asarray(eval(r.numpy, {"np": np, **env}), dtype=float)
    grad = lambda e: finite_jacobian(ref, e, wrt, eps=1e-5)
    want = finite_jacobian(grad, env, wrt, eps=1e-4)
    assert np.allclose(got, want, rtol=1e-4, atol=1e-4 * (1 + np.abs(want).max()))


def test_seed_closed_forms_read_as_in_the_seeds():
    assert derive("x^T B x", "x").closed_form == "(B + B^T) x"
    assert derive("tr(V X W)", "X", "V: n×m, X: m×p, W: p×n").closed_form == "V^T W^T"
    assert derive("b^T X c", "X").closed_form == "b c^T"
    assert derive("‖w‖", "w").closed_form == "w / ‖w‖"
    assert derive("tr(S)", "S").closed_form == "I"
    assert derive("x^T B x", "x", order=2).closed_form == "B + B^T"


def test_fourth_rank_keeps_the_index_form():
    r = derive("Q^T Q", "Q").results[0]
    assert r.closed_form is None
    assert "δ" in r.index_form and r.shape == ["m", "m", "n", "m"]


def test_generic_function_derivative_prints_with_a_prime():
    r = derive("sum(h(X))", "X").results[0]
    assert r.closed_form == "h'(X)"


def test_at_gives_seed_002_numbers():
    from indexcalc.pipeline import evaluate_at
    d = derive("sum((X W) .^ 2)", "X")
    out = evaluate_at(d, {"X": [[0, 1], [2, 3]], "W": [[1, 1], [1, 1]]})
    assert out["value"] == 52.0
    assert np.allclose(out["derivatives"]["X"], [[4, 4], [20, 20]])


def test_a_whole_sum_is_written_the_way_round_the_matrix_stands():
    """1ᵀ M 1 = 1ᵀ Mᵀ 1: the form with fewer transposes, and np.sum(M) in the code (the sum of
    exp(X W) is not written 1ᵀ exp(Wᵀ Xᵀ) 1, whose code computes exp a second time on Wᵀ Xᵀ)."""
    r = derive("log(sum(exp(X W)))", "W").results[0]
    assert r.closed_form == "X^T exp(X W) / (1^T exp(X W) 1)"
    assert "W.T" not in r.numpy and "np.sum(np.exp(X @ W))" in r.numpy
    r = derive("sum(X)^2", "X").results[0]
    assert "einsum" not in r.numpy and "np.ones((" in r.numpy
