"""Issue 15: cost that grows with the expression. Long sums and chains print and derive without
recursion limits; nested compositions keep their structure. Counts, not times."""
from __future__ import annotations

import ast

import numpy as np
import pytest

from indexcalc import nodes as N
from indexcalc.pipeline import derive
from indexcalc.printing.latex import to_latex
from indexcalc.printing.numpy_code import NumpyPrinter
from indexcalc.printing.text import to_text
from indexcalc.shapes import Variable, Variables

TERMS = 10_000
SHAPE = ("n", 1)


def _long_sum(k):
    """x1 + x2 - x3 + x4 - ... as the parser builds it: left-deep, k terms."""
    node = N.Sym("x1", SHAPE)
    for j in range(2, k + 1):
        op = N.Sub if j % 3 == 0 else N.Add
        node = op(node, N.Sym(f"x{j}", SHAPE), SHAPE)
    return node


def _variables(k):
    return Variables({f"x{j}": Variable(f"x{j}", "vector", SHAPE) for j in range(1, k + 1)}, {"n"})


def _signs(k):
    return [-1.0 if j % 3 == 0 else 1.0 for j in range(1, k + 1)]


def test_printers_take_a_sum_of_ten_thousand_terms():
    node = _long_sum(TERMS)
    text = to_text(node)
    assert text.startswith("x1 + x2 - x3 + x4") and text.endswith(f"x{TERMS}")
    assert text.count(" + ") + text.count(" - ") == TERMS - 1 and "(" not in text
    latex = to_latex(node)
    assert latex.count("+") + latex.count("-") == TERMS - 1
    code = NumpyPrinter(_variables(TERMS)).code(node, "vector")
    rng = np.random.default_rng(0)
    env = {f"x{j}": rng.normal(size=3) for j in range(1, TERMS + 1)}
    want = sum(s * env[f"x{j}"] for j, s in zip(range(1, TERMS + 1), _signs(TERMS)))
    assert np.allclose(eval(compile(ast.parse(code, mode="eval"), "<code>", "eval"), {"np": np, **env}), want)


def test_printers_take_a_product_of_a_thousand_factors():
    k, shape = 1000, ("n", "n")
    node = N.Sym("A1", shape)
    for j in range(2, k + 1):
        node = N.MatMul(node, N.Sym(f"A{j}", shape), shape)
    assert to_text(node) == " ".join(f"A{j}" for j in range(1, k + 1))
    assert to_latex(node).count(r"\mathbf{A}") == k
    variables = Variables({f"A{j}": Variable(f"A{j}", "matrix", shape) for j in range(1, k + 1)}, {"n"})
    code = NumpyPrinter(variables).code(node, "matrix")
    assert code == " @ ".join(f"A{j}" for j in range(1, k + 1))
    rng = np.random.default_rng(1)
    env = {f"A{j}": np.eye(2) + 0.01 * rng.normal(size=(2, 2)) for j in range(1, k + 1)}
    want = np.eye(2)
    for j in range(1, k + 1):
        want = want @ env[f"A{j}"]
    assert np.allclose(eval(code, {"np": np, **env}), want)


def test_a_sum_of_256_quadratic_forms():
    k = 256
    d = derive(" + ".join(f"x^T A{j} x" for j in range(1, k + 1)), "x")
    closed = d.closed_form
    assert all(f"A{j} + A{j}^T" in closed for j in range(1, k + 1))
    rng = np.random.default_rng(2)
    n = 3
    env = {"x": rng.normal(size=n), **{f"A{j}": rng.normal(size=(n, n)) for j in range(1, k + 1)}}
    want = sum((env[f"A{j}"] + env[f"A{j}"].T) @ env["x"] for j in range(1, k + 1))
    assert np.allclose(eval(d.numpy, {"np": np, **env}), want)


def _quadratic_forms(k):
    return " + ".join(f"x^T A{j} x" for j in range(1, k + 1))


def _python_calls(fn) -> int:
    """How many Python functions fn calls (on the derivation's own thread too): work, not time."""
    import sys
    import threading
    calls = [0]

    def count(frame, event, arg):
        if event == "call":
            calls[0] += 1
    threading.setprofile(count)
    sys.setprofile(count)
    try:
        fn()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return calls[0]


def test_the_work_of_a_long_sum_grows_linearly_with_its_terms():
    """Counts, not times: four times the quadratic forms, at most about four times the calls
    (reading, shapes, steps, matching, the closed form's tidying and the guard). A stage whose
    work grows with the square of the sum (each sum's prefix read again, a chain of sizes
    walked again at every term, every term printed in every step) shows here: 4.3x before."""
    derive(_quadratic_forms(2), "x")
    small, large = (_python_calls(lambda k=k: derive(_quadratic_forms(k), "x")) for k in (32, 128))
    assert large / small < 3.6, (small, large)


def test_steps_show_a_long_sum_by_its_first_and_last_terms():
    """The steps' working shows a sum of many terms by its first terms, how many it leaves out
    and its last ones; the sifted form (the result's index form) is whole, and a short sum
    is shown whole as before."""
    from indexcalc.printing.index import ELIDED_TAIL, STEP_TERMS
    k = 40
    r = derive(_quadratic_forms(k), "x").results[0]
    steps = {s.rule: s for s in r.steps}
    for rule in ("expand", "differentiate", "kronecker"):
        text = steps[rule].text
        assert text.count("Σ_p") == STEP_TERMS and f"… ({k - STEP_TERMS} more terms)" in text, text
        assert rf"\dots \text{{({k - STEP_TERMS} more terms)}}" in steps[rule].latex
    assert "…" not in r.index_form and r.index_form.count("Σ_p") == 2 * k
    assert steps["sift"].text == r.index_form
    assert ELIDED_TAIL < STEP_TERMS
    short = derive(_quadratic_forms(3), "x").results[0]
    assert all("…" not in s.text for s in short.steps)
    assert {s.text for s in short.steps if s.rule == "expand"} == {
        "f = Σ_p x_p Σ_q x_q A1_qp + Σ_p x_p Σ_q x_q A2_qp + Σ_p x_p Σ_q x_q A3_qp"}


def test_a_trace_of_a_chain_of_512_factors():
    k = 512
    d = derive("tr(" + " ".join(f"A{j}" for j in range(1, k + 1)) + " X)", "X")
    assert d.closed_form == " ".join(f"A{j}^T" for j in range(k, 0, -1))


@pytest.mark.parametrize("depth", [3, 8, 14])
def test_nested_tanh_keeps_one_factor_per_level(depth):
    """The derivative of tanh(...tanh(w^T x)...) is x times one factor (1 - tanh(..)^2) per
    level: a product that grows linearly with the depth, not its 2^depth expanded terms."""
    expr = "tanh(" * depth + "w^T x" + ")" * depth
    d = derive(expr, "w")
    closed = d.closed_form
    assert closed.count("(1 - tanh(") == depth and closed.count("+") == 0
    shown = {s.rule: s.text for s in d.results[0].steps}["matrix form"]     # the steps keep it too
    assert shown.count("(1 - tanh(") == depth and shown.count("+") == 0
    rng = np.random.default_rng(3)
    w, x = rng.normal(size=4) * 0.5, rng.normal(size=4) * 0.5
    u, slope = w @ x, 1.0
    for _ in range(depth):
        u = np.tanh(u)
        slope *= 1 - u ** 2
    assert np.allclose(eval(d.numpy, {"np": np, "w": w, "x": x}), slope * x)


# ---- compositions: module by module --------------------------------------------------------
def _net(depth):
    """sum(tanh(...tanh(X W1)...) W_depth): depth - 1 tanh layers."""
    e = "X W1"
    for k in range(2, depth + 1):
        e = f"tanh({e}) W{k}"
    return f"sum({e})"


def _hand_net_gradient(env, depth):
    """Backpropagation written by hand: ∂/∂W1 of sum(tanh(...tanh(X W1)...) W_depth)."""
    hs, h = [], env["X"]
    for k in range(1, depth):
        h = np.tanh(h @ env[f"W{k}"])
        hs.append(h)
    g = np.ones((h.shape[0], env[f"W{depth}"].shape[1])) @ env[f"W{depth}"].T
    for k in range(depth - 1, 0, -1):
        g = g * (1 - hs[k - 1] ** 2)
        g = g @ env[f"W{k}"].T if k > 1 else env["X"].T @ g
    return g


def _program_size(result):
    from indexcalc.chain import size
    terms = factors = 0
    for _, node in result.program:
        t, f = size(node)
        terms, factors = terms + t, factors + f
    return terms, factors


def test_a_deep_network_is_differentiated_module_by_module():
    d = derive(_net(6), "W1")
    r = d.results[0]
    assert r.program is not None
    names = [n for n, _ in r.program]
    assert names[:5] == ["H1", "H2", "H3", "H4", "H5"] and names[-1] == ""
    assert any(s.rule == "module" for s in r.steps)
    rng = np.random.default_rng(4)
    env = {"X": rng.normal(size=(3, 4)) * 0.5}
    sizes = [4, 3, 5, 2, 3, 4, 2]
    for k in range(1, 7):
        env[f"W{k}"] = rng.normal(size=(sizes[k - 1], sizes[k])) * 0.7
    want = _hand_net_gradient(env, 6)
    assert np.allclose(eval(r.numpy, {"np": np, **env}), want)
    ns = {"np": np}
    exec(r.function, ns)
    assert np.allclose(ns["d_W1"](*[env[n] for n, _ in d.variables.items()]), want)


def test_the_derivative_of_a_network_grows_linearly_with_depth():
    """Counts, not times: the named program of ∂/∂W1 gains the same number of terms and of
    factors with every layer (the flat derivation doubles its terms with every layer)."""
    sizes = [_program_size(derive(_net(depth), "W1").results[0]) for depth in (6, 7, 8, 9)]
    steps = {(b[0] - a[0], b[1] - a[1]) for a, b in zip(sizes, sizes[1:])}
    assert len(steps) == 1, sizes
    (dt, df), = steps
    assert 0 < dt <= 4 and 0 < df <= 20, sizes


def test_small_compositions_keep_the_flat_derivation():
    r = derive(_net(3), "W1").results[0]
    assert r.program is None and any(s.rule == "sift" for s in r.steps)


def test_function_computes_each_common_subexpression_once():
    r = derive("log(sum(exp(x)))", "x", order=2).results[0]
    # the Hessian is diag(softmax(x)) - softmax(x) softmax(x)^T: softmax computed once, by a
    # softmax the function defines for itself (the one-expression field has a lambda each time)
    assert r.function.startswith("def d_x(x):\n    def softmax(z):") and "lambda" not in r.function
    assert r.function.count("np.exp(") == 1 and r.numpy.count("(lambda z:") > 1
    ns = {"np": np}
    exec(r.function, ns)
    x = np.random.default_rng(5).normal(size=6)
    p = np.exp(x) / np.exp(x).sum()
    assert np.allclose(ns["d_x"](x), np.diag(p) - np.outer(p, p))
    r = derive("sum((tanh(X W1) W2 - Y) .^ 2)", "W1").results[0]
    assert r.function.count("np.tanh(") == 1 and r.numpy.count("np.tanh(") == 2


def test_function_updates_a_diagonal_in_place_without_touching_its_inputs():
    """diag(p) - p pᵀ: the outer product once, its diagonal updated in place (one n×n pass)."""
    r = derive("softmax(z)", "z").results[0]
    assert "np.einsum('ii->i', " in r.function and "np.diag(" not in r.function
    ns = {"np": np}
    exec(r.function, ns)
    z = np.random.default_rng(6).normal(size=5)
    before = z.copy()
    p = np.exp(z) / np.exp(z).sum()
    assert np.allclose(ns["d_z"](z), np.diag(p) - np.outer(p, p)) and np.array_equal(z, before)


def test_a_product_chain_printed_bare_is_bracketed_before_a_method():
    """diag(a) S 1 prints (a[:, None] * S).sum(axis=1), not a[:, None] * S.sum(axis=1) (an
    outer product where a vector belongs; found by the long property run)."""
    d = derive("sum(softmax(a b^T))", "b", where="a: m, b: n")
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=4), rng.normal(size=3)
    assert np.allclose(eval(d.numpy, {"np": np, "a": a, "b": b}), np.zeros(3), atol=1e-12)


# ---- the reading stages on the derivation's thread ------------------------------------------
def _read_type_evaluate(text, env, sizes):
    """parse -> infer -> evaluate, the stages that walk the tree by recursion, on the thread a
    derivation runs on (pipeline._deep: a large stack and recursion limit)."""
    from indexcalc.evaluate import evaluate, to_2d
    from indexcalc.parse import parse
    from indexcalc.pipeline import _deep
    from indexcalc.shapes import infer, parse_decls

    def run():
        typed, variables = infer(parse(text), parse_decls(None))
        env2d = {name: to_2d(env[name], v) for name, v in variables.items()}
        return evaluate(typed, env2d, sizes)
    return _deep(run)()


def test_the_reading_stages_take_a_sum_of_ten_thousand_terms():
    rng = np.random.default_rng(8)
    env = {"x": rng.normal(size=3), **{f"a{j}": rng.normal(size=3) for j in range(1, TERMS + 1)}}
    text = " + ".join(f"a{j}^T x" for j in range(1, TERMS + 1))
    got = _read_type_evaluate(text, env, {"n": 3})
    assert np.isclose(got.item(), sum(env[f"a{j}"] @ env["x"] for j in range(1, TERMS + 1)))


def test_the_reading_stages_take_a_chain_of_a_thousand_factors():
    k = 1000
    rng = np.random.default_rng(9)
    env = {"x": rng.normal(size=2), **{f"A{j}": np.eye(2) + 0.01 * rng.normal(size=(2, 2)) for j in range(1, k + 1)}}
    want = env["x"]
    for j in range(k, 0, -1):
        want = env[f"A{j}"] @ want
    got = _read_type_evaluate(" ".join(f"A{j}" for j in range(1, k + 1)) + " x", env, {"n": 2})
    assert np.allclose(got.reshape(-1), want)


# ---- counts: equal terms meet, chains are read once --------------------------------------------
@pytest.mark.parametrize("k", [6, 16, 32])
def test_the_terms_of_a_matrix_power_add_up_to_one(k):
    """∂tr(X^k)/∂X_ij: k terms, each a cycle with one link cut, equal up to the names of their
    summation indices: canonical names make them one term (k X^T...), whatever k."""
    d = derive(f"tr(X^{k})", "X")
    r = d.results[0]
    assert r.index_form.count("Σ") == 1 and r.index_form.startswith(f"{k} Σ")
    assert d.closed_form == f"{k} (X^T)^{k - 1}"
    rng = np.random.default_rng(10)
    X = np.eye(3) + 0.1 * rng.normal(size=(3, 3))
    assert np.allclose(eval(d.numpy, {"np": np, "X": X}), k * np.linalg.matrix_power(X.T, k - 1))


def test_like_terms_are_read_once_per_chain(monkeypatch):
    """The closed form's rewrite gathers like terms at the top of a chain of sums only, and
    merges powers at the top of a chain of products: calls of the chain readers grow linearly
    with the chain, not with its square."""
    from indexcalc import simplify as S
    calls = {"terms": 0, "chain": 0}
    terms, chain = S._terms, S._chain

    def counted_terms(*a):
        calls["terms"] += 1
        return terms(*a)

    def counted_chain(*a):
        calls["chain"] += 1
        return chain(*a)
    monkeypatch.setattr(S, "_terms", counted_terms)
    monkeypatch.setattr(S, "_chain", counted_chain)
    counts = []
    for k in (64, 128):
        calls.update(terms=0, chain=0)
        sum_of = S.rewrite(_long_sum(k))
        product = N.Sym("A1", ("n", "n"))
        for j in range(2, k + 1):
            product = N.MatMul(product, N.Sym(f"A{j}", ("n", "n")), ("n", "n"))
        S.rewrite(product)
        counts.append(dict(calls))
        assert sum_of == _long_sum(k)
    assert counts[1]["terms"] <= 2.2 * counts[0]["terms"] and counts[1]["chain"] <= 2.2 * counts[0]["chain"], counts


def test_the_index_printers_take_a_sum_of_ten_thousand_entries():
    """The index form's printers (SymPy's, extended) on a flat sum of 10,000 entries, each
    term also a product with a Σ every 100 terms."""
    import sympy as sp

    from indexcalc.index_form import IndexContext
    from indexcalc.printing.index import index_latex, index_text
    ctx = IndexContext(_variables(TERMS))
    i, = [s for s in ctx.free(SHAPE) if s is not None]
    p = ctx.fresh("n")
    terms = [sp.IndexedBase(f"x{j}", real=True)[i] for j in range(1, TERMS + 1)]
    terms += [ctx.sum(sp.IndexedBase(f"x{j}", real=True)[p] * sp.IndexedBase(f"x{j + 1}", real=True)[i], p)
              for j in range(1, TERMS, 100)]
    expr = sp.Add(*terms)
    text = index_text(expr, ctx)
    assert text.count(" + ") == len(terms) - 1 and text.count("Σ_") == TERMS // 100
    assert index_latex(expr, ctx).count(r"\sum_") == TERMS // 100


def test_a_cold_derivation_loads_only_what_it_uses():
    """Cold start (issue 15: ≤ 1.3x `import sympy`): `indexcalc derive "x^T B x"` in a fresh
    process loads neither the index-notation reader (its grammar and tree) nor the third-party
    `regex` module lark would import only to offer an option we never use."""
    import os
    import subprocess
    import sys
    code = ("import sys; from indexcalc.cli import run; run(['derive', 'x^T B x', '--wrt', 'x']); "
            "print(sorted(m for m in sys.modules if m == 'regex' or m.startswith('indexcalc.')))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    loaded = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own child's list of names
    assert "indexcalc.pipeline" in loaded and "indexcalc.index_syntax" in loaded
    assert "indexcalc.from_index_notation" not in loaded and "regex" not in loaded, loaded


def test_common_subtrees_are_counted_over_several_trees():
    """Issue 15 part 5: one count of common subexpressions for the `function` field's printer
    and a module's backward pass (modulegen.plan calls it over all the gradients at once). A
    subtree shared by two trees is named; one used only inside a repeated subtree is not."""
    from indexcalc.printing.numpy_code import NumpyPrinter, common_subtrees
    s = ("n", "n")
    A, B, C = (N.Sym(k, s) for k in "ABC")
    AB = N.MatMul(A, B, s)
    t = N.Func("tanh", AB, s)
    g1, g2 = N.Add(t, N.MatMul(t, C, s), s), N.Hadamard(AB, C, s)
    assert common_subtrees(g1) == [t]                    # A B only inside tanh(A B), used twice
    assert common_subtrees(g1, g2) == [AB, t]            # A B also in the second tree: inner first
    assert common_subtrees(g1, g2, worth=lambda n: not isinstance(n, N.Func)) == [AB, C]
    variables = Variables({k: Variable(k, "matrix", s) for k in "ABC"}, {"n"})
    code = NumpyPrinter(variables).function(g1, "d_A", ["A", "B", "C"], "matrix")
    assert code.count("np.tanh(") == 1 and code.count("A @ B") == 1
    rng = np.random.default_rng(5)
    env = {k: rng.normal(size=(3, 3)) for k in "ABC"}
    ns = {"np": np}
    exec(code, ns)  # noqa: S102 - our own printer's function
    h = np.tanh(env["A"] @ env["B"])
    assert np.allclose(ns["d_A"](env["A"], env["B"], env["C"]), h + h @ env["C"])
