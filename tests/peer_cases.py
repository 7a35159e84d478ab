"""Peers' derivative tests and textbook identities, as cases for answercheck.py.

    python3 /work/shared/tools/answercheck.py --cases tests/peer_cases.py [-k sympy-] [-v]

Three suites, told apart by the id's prefix:
- ``sympy-``: sympy/matrices/expressions/tests/test_derivatives.py (SymPy, commit
  ccfd02850d10aa4a1944598b93f4d4058267dbf6). SymPy's symbols are all k×k matrices and
  k-vectors; here k = 3. Its scalar symbols (i, mu) are declared scalars.
- ``diffmatic-``: asterycs/DiffMatic.jl's test/StdStrTest.jl, StdTest.jl, JuliaTest.jl,
  DiffTest.jl and ForwardTest.jl (gradient / jacobian / hessian / derivative / diff calls).
  Julia's `x'` is `x^T`, `.*` is `∘`, `f.(x)` is `f(x)`, `diagm(v)` is `diag(v)`, `norm(v, 2)`
  is `norm(v)`.
- ``check-``: `check` of the answers SymPy and DiffMatic assert and the Cookbook prints
  (right ones, and wrong variants: a transposed answer, a symmetric-only form).
- ``cookbook-``: The Matrix Cookbook (Petersen & Pedersen, 2012 edition), the equation
  number given in each comment.

Every reference below is written by hand from the test's expression in NumPy (never from
indexcalc's output); answercheck compares indexcalc's `numpy` answer with central
finite differences of the reference. The format is answercheck's (see seed_cases.py);
`src` says where a case comes from and `xfail` (if present) why indexcalc does not get it
right today (tests/test_peer_cases.py marks those xfail(strict=True)).
"""
import re

import numpy as np

K = 3          # SymPy's k
N = 3          # DiffMatic's sizes (its JuliaTest uses 3×3 matrices and 3-vectors)


def shapes_of(names, scalars=(), n=K):
    """Upper-case names n×n, lower-case n-vectors, `scalars` scalars."""
    out = {}
    for name in names.split():
        out[name] = () if name in scalars else ((n, n) if name[0].isupper() else (n,))
    return out


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


inv = np.linalg.inv
det = np.linalg.det
tr = np.trace
mp = np.linalg.matrix_power


def D(cmd_input, wrt, names, ref, src, *, where=None, scalars=(), gen=None, order=1, n=K,
      shapes=None, **extra):
    """One `derive` case."""
    case = dict(cmd="derive", input=cmd_input, wrt=wrt, ref=ref, src=src,
                shapes=shapes or shapes_of(names, scalars, n))
    if where:
        case["where"] = where
    if gen:
        case["gen"] = gen
    if order != 1:
        case["order"] = order
    case.update(extra)
    return case


def ids(prefix, cases):
    """Number the cases of one suite: prefix-NN-<wrt>."""
    out = []
    for i, c in enumerate(cases, 1):
        c = dict(c)
        c["id"] = f"{prefix}-{i:02d}-{c['wrt']}" + ("-h" if c.get("order", 1) == 2 else "")
        out.append(c)
    return out


POS = "positive"
WELL = "wellcond"
SPD = "spd"
AWAY = "awayfromzero"

# ---------------------------------------------------------------------------------------------
# SymPy: sympy/matrices/expressions/tests/test_derivatives.py
# ---------------------------------------------------------------------------------------------
S = "sympy test_derivatives.py"
SI = "i: scalar"          # SymPy's symbol i (a scalar, differentiated by)
SYMPY = [
    # test_matrix_derivative_by_scalar
    D("A", "i", "A i", lambda e: e["A"], S + " test_matrix_derivative_by_scalar: A.diff(i) == 0",
      where="i: scalar, A: k×k", scalars="i"),
    D("A (X + B) c", "i", "A X B c i", lambda e: e["A"] @ (e["X"] + e["B"]) @ e["c"],
      S + " test_matrix_derivative_by_scalar: (A*(X + B)*c).diff(i) == 0",
      where="i: scalar, A: k×k, X: k×k, B: k×k, c: k", scalars="i"),
    D("x^T y", "i", "x y i", lambda e: e["x"] @ e["y"],
      S + " test_matrix_derivative_by_scalar: (x.T*y).diff(i) == 0", where="i: scalar, x: k, y: k", scalars="i"),
    D("x x^T", "i", "x i", lambda e: np.outer(e["x"], e["x"]),
      S + " test_matrix_derivative_by_scalar: (x*x.T).diff(i) == 0", where="i: scalar, x: k", scalars="i"),
    D("x .^ i", "i", "x i", lambda e: e["x"] ** e["i"],
      S + " test_matrix_derivative_by_scalar: hadamard_power(x, i).diff(i) == log(x) ∘ x^i",
      where=SI, scalars="i", gen={"x": POS}),
    D("(i 1) ∘ x ∘ y", "i", "x y i", lambda e: e["i"] * e["x"] * e["y"],
      S + " test_matrix_derivative_by_scalar: hadamard_product(i*OneMatrix(k, 1), x, y).diff(i) == x ∘ y",
      where=SI, scalars="i"),
    D("i x", "i", "x i", lambda e: e["i"] * e["x"],
      S + " test_matrix_derivative_by_scalar: (i*x).diff(i) == x", where=SI, scalars="i"),
    D("sin(i) A B x", "i", "A B x i", lambda e: np.sin(e["i"]) * e["A"] @ e["B"] @ e["x"],
      S + " test_matrix_derivative_by_scalar: (sin(i)*A*B*x).diff(i) == cos(i)*A*B*x", where=SI, scalars="i"),
    D("sin(x)", "i", "x i", lambda e: np.sin(e["x"]),
      S + " test_matrix_derivative_by_scalar: x.applyfunc(sin).diff(i) == 0", where="i: scalar, x: k", scalars="i"),
    D("tr(i^2 X)", "i", "X i", lambda e: np.trace(e["i"] ** 2 * e["X"]),
      S + " test_matrix_derivative_by_scalar: Trace(i**2*X).diff(i) == 2*i*Trace(X)", where=SI, scalars="i"),
    D("2 mu x", "x", "x mu", lambda e: 2 * e["mu"] * e["x"],
      S + " test_matrix_derivative_by_scalar: (2*mu*x).diff(x) == 2*mu*I", where="mu: scalar", scalars="mu"),
    # test_one_matrix
    D("x^T 1", "x", "x", lambda e: np.sum(e["x"]), S + " test_one_matrix: (x.T*OneMatrix(k, 1)).diff(x)"),
    # test_matrix_derivative_non_matrix_result (4-dimensional results)
    D("A", "A", "A", lambda e: e["A"], S + " test_matrix_derivative_non_matrix_result: A.diff(A)"),
    D("A^T", "A", "A", lambda e: e["A"].T, S + " test_matrix_derivative_non_matrix_result: A.T.diff(A)"),
    D("2 A", "A", "A", lambda e: 2 * e["A"], S + " test_matrix_derivative_non_matrix_result: (2*A).diff(A)"),
    D("A + A", "A", "A", lambda e: e["A"] + e["A"], S + " test_matrix_derivative_non_matrix_result: MatAdd(A, A).diff(A)"),
    D("A + B", "A", "A B", lambda e: e["A"] + e["B"], S + " test_matrix_derivative_non_matrix_result: (A + B).diff(A)"),
    # test_matrix_derivative_trivial_cases (cookbook 33)
    D("X", "A", "X A", lambda e: e["X"], S + " test_matrix_derivative_trivial_cases: X.diff(A) (zero)",
      where="X: k×k, A: k×k"),
    # test_matrix_derivative_with_inverse
    D("a^T X^-1 b", "X", "a X b", lambda e: e["a"] @ inv(e["X"]) @ e["b"],
      S + " test_matrix_derivative_with_inverse: cookbook 61", gen={"X": WELL}),
    D("det(X^-1)", "X", "X", lambda e: det(inv(e["X"])),
      S + " test_matrix_derivative_with_inverse: cookbook 62 (not implemented in SymPy)", gen={"X": WELL}),
    D("tr(A X^-1 B)", "X", "A X B", lambda e: tr(e["A"] @ inv(e["X"]) @ e["B"]),
      S + " test_matrix_derivative_with_inverse: cookbook 63", gen={"X": WELL}),
    D("tr(inv(X + A))", "X", "X A", lambda e: tr(inv(e["X"] + e["A"])),
      S + " test_matrix_derivative_with_inverse: cookbook 64", gen={"X": WELL, "A": WELL}),
    # test_matrix_derivative_vectors_and_scalars
    D("x", "x", "x", lambda e: e["x"], S + " test_matrix_derivative_vectors_and_scalars: x.diff(x) == I"),
    D("x^T a", "x", "x a", lambda e: e["x"] @ e["a"], S + " vectors_and_scalars: cookbook 69, x.T*a"),
    D("a^T x", "x", "x a", lambda e: e["a"] @ e["x"], S + " vectors_and_scalars: cookbook 69, a.T*x"),
    D("a^T X b", "X", "a X b", lambda e: e["a"] @ e["X"] @ e["b"], S + " vectors_and_scalars: cookbook 70"),
    D("a^T X^T b", "X", "a X b", lambda e: e["a"] @ e["X"].T @ e["b"], S + " vectors_and_scalars: cookbook 71"),
    D("a^T X a", "X", "a X", lambda e: e["a"] @ e["X"] @ e["a"], S + " vectors_and_scalars: cookbook 72, a.T*X*a"),
    D("a^T X^T a", "X", "a X", lambda e: e["a"] @ e["X"].T @ e["a"], S + " vectors_and_scalars: cookbook 72, a.T*X.T*a"),
    D("b^T X^T X c", "X", "b X c", lambda e: e["b"] @ e["X"].T @ e["X"] @ e["c"], S + " vectors_and_scalars: cookbook 77"),
    D("(B x + b)^T C (D x + d)", "x", "B x b C D d",
      lambda e: (e["B"] @ e["x"] + e["b"]) @ e["C"] @ (e["D"] @ e["x"] + e["d"]), S + " vectors_and_scalars: cookbook 78"),
    D("x^T B x", "x", "x B", lambda e: e["x"] @ e["B"] @ e["x"], S + " vectors_and_scalars: cookbook 81"),
    D("b^T X^T D X c", "X", "b X D c", lambda e: e["b"] @ e["X"].T @ e["D"] @ e["X"] @ e["c"],
      S + " vectors_and_scalars: cookbook 82"),
    D("(X b + c)^T D (X b + c)", "X", "X b c D",
      lambda e: (e["X"] @ e["b"] + e["c"]) @ e["D"] @ (e["X"] @ e["b"] + e["c"]), S + " vectors_and_scalars: cookbook 83"),
    D("x x^T x", "x", "x", lambda e: e["x"] * (e["x"] @ e["x"]), S + " vectors_and_scalars: x*x.T*x (issue 16504)"),
    # test_matrix_derivatives_of_traces
    D("tr(A) A", "A", "A", lambda e: tr(e["A"]) * e["A"], S + " test_matrix_derivatives_of_traces: Trace(A)*A"),
    D("tr(X)", "X", "X", lambda e: tr(e["X"]), S + " traces: cookbook 99"),
    D("tr(X A)", "X", "X A", lambda e: tr(e["X"] @ e["A"]), S + " traces: cookbook 100"),
    D("tr(A X B)", "X", "A X B", lambda e: tr(e["A"] @ e["X"] @ e["B"]), S + " traces: cookbook 101"),
    D("tr(A X^T B)", "X", "A X B", lambda e: tr(e["A"] @ e["X"].T @ e["B"]), S + " traces: cookbook 102"),
    D("tr(X^T A)", "X", "X A", lambda e: tr(e["X"].T @ e["A"]), S + " traces: cookbook 103"),
    D("tr(A X^T)", "X", "X A", lambda e: tr(e["A"] @ e["X"].T), S + " traces: cookbook 104"),
    D("tr(X^2)", "X", "X", lambda e: tr(e["X"] @ e["X"]), S + " traces: cookbook 106"),
    D("tr(X^2 B)", "X", "X B", lambda e: tr(e["X"] @ e["X"] @ e["B"]), S + " traces: cookbook 107, Trace(X**2*B)"),
    D("tr(X X B)", "X", "X B", lambda e: tr(e["X"] @ e["X"] @ e["B"]), S + " traces: cookbook 107, Trace(MatMul(X, X, B))"),
    D("tr(X^T B X)", "X", "X B", lambda e: tr(e["X"].T @ e["B"] @ e["X"]), S + " traces: cookbook 108"),
    D("tr(B X X^T)", "X", "X B", lambda e: tr(e["B"] @ e["X"] @ e["X"].T), S + " traces: cookbook 109"),
    D("tr(X X^T B)", "X", "X B", lambda e: tr(e["X"] @ e["X"].T @ e["B"]), S + " traces: cookbook 110"),
    D("tr(X B X^T)", "X", "X B", lambda e: tr(e["X"] @ e["B"] @ e["X"].T), S + " traces: cookbook 111"),
    D("tr(B X^T X)", "X", "X B", lambda e: tr(e["B"] @ e["X"].T @ e["X"]), S + " traces: cookbook 112"),
    D("tr(X^T X B)", "X", "X B", lambda e: tr(e["X"].T @ e["X"] @ e["B"]), S + " traces: cookbook 113"),
    D("tr(A X B X)", "X", "A X B", lambda e: tr(e["A"] @ e["X"] @ e["B"] @ e["X"]), S + " traces: cookbook 114"),
    D("tr(X^T X)", "X", "X", lambda e: tr(e["X"].T @ e["X"]), S + " traces: cookbook 115, Trace(X.T*X)"),
    D("tr(X X^T)", "X", "X", lambda e: tr(e["X"] @ e["X"].T), S + " traces: cookbook 115, Trace(X*X.T)"),
    D("tr(B^T X^T C X B)", "X", "B X C", lambda e: tr(e["B"].T @ e["X"].T @ e["C"] @ e["X"] @ e["B"]),
      S + " traces: cookbook 116"),
    D("tr(X^T B X C)", "X", "X B C", lambda e: tr(e["X"].T @ e["B"] @ e["X"] @ e["C"]), S + " traces: cookbook 117"),
    D("tr(A X B X^T C)", "X", "A X B C", lambda e: tr(e["A"] @ e["X"] @ e["B"] @ e["X"].T @ e["C"]),
      S + " traces: cookbook 118"),
    D("tr((A X B + C) (A X B + C)^T)", "X", "A X B C",
      lambda e: tr((e["A"] @ e["X"] @ e["B"] + e["C"]) @ (e["A"] @ e["X"] @ e["B"] + e["C"]).T), S + " traces: cookbook 119"),
    D("tr(B^T X^T C X X^T C X B)", "X", "B X C",
      lambda e: tr(e["B"].T @ e["X"].T @ e["C"] @ e["X"] @ e["X"].T @ e["C"] @ e["X"] @ e["B"]), S + " traces: cookbook 123"),
    D("tr(A X^-1 B)", "X", "A X B", lambda e: tr(e["A"] @ inv(e["X"]) @ e["B"]), S + " traces: cookbook 124",
      gen={"X": WELL}),
    D("tr((X^T C X)^-1 A)", "X", "X C A", lambda e: tr(inv(e["X"].T @ e["C"] @ e["X"]) @ e["A"]),
      S + " traces: cookbook 125", gen={"X": WELL, "C": SPD}),
    D("tr((X^T C X)^-1 (X^T B X))", "X", "X C B",
      lambda e: tr(inv(e["X"].T @ e["C"] @ e["X"]) @ (e["X"].T @ e["B"] @ e["X"])), S + " traces: cookbook 126",
      gen={"X": WELL, "C": SPD}),
    D("tr((A + X^T C X)^-1 (X^T B X))", "X", "A X C B",
      lambda e: tr(inv(e["A"] + e["X"].T @ e["C"] @ e["X"]) @ (e["X"].T @ e["B"] @ e["X"])), S + " traces: cookbook 127",
      gen={"X": WELL, "C": SPD, "A": SPD}),
    # test_derivatives_of_complicated_matrix_expr
    D("a^T (A X (X^T B + X A) + B^T X^T (a b^T (X D X^T + X (X^T B + A X) D B - X^T C^T A) B"
      " + B (X D^T + B A X A^T - 3 X D)) B + 42 X B X^T A^T (X + X^T)) b", "X", "a A X B b C D",
      lambda e: (lambda a, A, X, B, b, C, D_: a @ (A @ X @ (X.T @ B + X @ A) + B.T @ X.T @ (
          np.outer(a, b) @ (X @ D_ @ X.T + X @ (X.T @ B + A @ X) @ D_ @ B - X.T @ C.T @ A) @ B
          + B @ (X @ D_.T + B @ A @ X @ A.T - 3 * X @ D_)) @ B + 42 * X @ B @ X.T @ A.T @ (X + X.T)) @ b)(
          e["a"], e["A"], e["X"], e["B"], e["b"], e["C"], e["D"]),
      S + " test_derivatives_of_complicated_matrix_expr"),
    # test_mixed_deriv_mixed_expressions
    D("3 tr(A)", "A", "A", lambda e: 3 * tr(e["A"]), S + " test_mixed_deriv_mixed_expressions: 3*Trace(A)"),
    D("tr(A)^2", "A", "A", lambda e: tr(e["A"]) ** 2, S + " mixed: Trace(A)**2"),
    D("tr(tr(A) A)", "A", "A", lambda e: tr(tr(e["A"]) * e["A"]), S + " mixed: Trace(Trace(A)*A)"),
    D("tr(tr(tr(A) A) A)", "A", "A", lambda e: tr(tr(tr(e["A"]) * e["A"]) * e["A"]),
      S + " mixed: Trace(Trace(Trace(A)*A)*A)"),
    # test_derivatives_matrix_norms
    D("x^T y", "x", "x y", lambda e: e["x"] @ e["y"], S + " test_derivatives_matrix_norms: x.T*y"),
    D("(x^T y)^(1/2)", "x", "x y", lambda e: np.sqrt(e["x"] @ e["y"]), S + " norms: (x.T*y)**(1/2)",
      gen={"x": POS, "y": POS}),
    D("(x^T x)^(1/2)", "x", "x", lambda e: np.sqrt(e["x"] @ e["x"]), S + " norms: (x.T*x)**(1/2)"),
    D("(c^T a x^T b)^(1/2)", "x", "c a x b", lambda e: np.sqrt((e["c"] @ e["a"]) * (e["x"] @ e["b"])),
      S + " norms: (c.T*a*x.T*b)**(1/2)", gen={"a": POS, "b": POS, "c": POS, "x": POS}),
    D("(c^T a x^T b)^(1/3)", "x", "c a x b", lambda e: np.cbrt((e["c"] @ e["a"]) * (e["x"] @ e["b"])),
      S + " norms: (c.T*a*x.T*b)**(1/3)", gen={"a": POS, "b": POS, "c": POS, "x": POS}),
    D("(a^T X b)^(1/2)", "X", "a X b", lambda e: np.sqrt(e["a"] @ e["X"] @ e["b"]), S + " norms: (a.T*X*b)**(1/2)",
      gen={"a": POS, "b": POS, "X": POS}),
    D("d^T x (a^T X b)^(1/2) y^T c", "X", "d x a X b y c",
      lambda e: (e["d"] @ e["x"]) * np.sqrt(e["a"] @ e["X"] @ e["b"]) * (e["y"] @ e["c"]),
      S + " norms: d.T*x*(a.T*X*b)**(1/2)*y.T*c", gen={"a": POS, "b": POS, "X": POS}),
    # test_derivatives_elementwise_applyfunc
    D("tan(x)", "x", "x", lambda e: np.tan(e["x"]), S + " test_derivatives_elementwise_applyfunc: x.applyfunc(tan)"),
    D("sin(i^2 x)", "i", "x i", lambda e: np.sin(e["i"] ** 2 * e["x"]), S + " elementwise: (i**2*x).applyfunc(sin)",
      where=SI, scalars="i"),
    D("sin(log(i) A B)", "i", "A B i", lambda e: np.sin(np.log(e["i"]) * e["A"] @ e["B"]),
      S + " elementwise: (log(i)*A*B).applyfunc(sin)", where=SI, scalars="i"),
    D("A exp(x)", "x", "A x", lambda e: e["A"] @ np.exp(e["x"]), S + " elementwise: A*x.applyfunc(exp)"),
    D("x^T A x + k sin(y)^T x", "x", "x A y", lambda e: e["x"] @ e["A"] @ e["x"] + K * np.sin(e["y"]) @ e["x"],
      S + " elementwise: x.T*A*x + k*y.applyfunc(sin).T*x (k the size)", where="x: k"),
    D("sin(x)^T y", "x", "x y", lambda e: np.sin(e["x"]) @ e["y"], S + " elementwise: x.applyfunc(sin).T*y"),
    D("sin(a^T X b)", "X", "a X b", lambda e: np.sin(e["a"] @ e["X"] @ e["b"]), S + " elementwise: (a.T*X*b).applyfunc(sin)"),
    D("a^T sin(X) b", "X", "a X b", lambda e: e["a"] @ np.sin(e["X"]) @ e["b"], S + " elementwise: a.T*X.applyfunc(sin)*b"),
    D("a^T sin(A X B) b", "X", "a A X B b", lambda e: e["a"] @ np.sin(e["A"] @ e["X"] @ e["B"]) @ e["b"],
      S + " elementwise: a.T*(A*X*B).applyfunc(sin)*b"),
    D("a^T sin(A X b) b^T", "X", "a A X b", lambda e: (e["a"] @ np.sin(e["A"] @ e["X"] @ e["b"])) * e["b"][None, :],
      S + " elementwise: a.T*(A*X*b).applyfunc(sin)*b.T (TODO in SymPy)"),
    D("a^T A sin(X) B b", "X", "a A X B b", lambda e: e["a"] @ e["A"] @ np.sin(e["X"]) @ e["B"] @ e["b"],
      S + " elementwise: a.T*A*X.applyfunc(sin)*B*b"),
    D("a^T log(A sin(X) B) b", "X", "a A X B b", lambda e: e["a"] @ np.log(e["A"] @ np.sin(e["X"]) @ e["B"]) @ e["b"],
      S + " elementwise: a.T*(A*X.applyfunc(sin)*B).applyfunc(log)*b (wrong in SymPy)",
      gen={"A": POS, "B": POS, "X": POS}),
    D("a^T log(sin(X)) b", "X", "a X b", lambda e: e["a"] @ np.log(np.sin(e["X"])) @ e["b"],
      S + " elementwise: a.T*(X.applyfunc(sin)).applyfunc(log)*b (wrong in SymPy)", gen={"X": POS}),
    # test_derivatives_of_hadamard_expressions
    D("a ∘ x ∘ b", "x", "a x b", lambda e: e["a"] * e["x"] * e["b"], S + " test_derivatives_of_hadamard_expressions: a∘x∘b"),
    D("a^T (A ∘ X ∘ B) b", "X", "a A X B b", lambda e: e["a"] @ (e["A"] * e["X"] * e["B"]) @ e["b"],
      S + " hadamard: a.T*hadamard_product(A, X, B)*b"),
    D("x .^ 2", "x", "x", lambda e: e["x"] ** 2, S + " hadamard: hadamard_power(x, 2)"),
    D("(x^T) .^ 2", "x", "x", lambda e: (e["x"] ** 2)[None, :], S + " hadamard: hadamard_power(x.T, 2)"),
    D("x .^ (1/2)", "x", "x", lambda e: np.sqrt(e["x"]), S + " hadamard: hadamard_power(x, 1/2)", gen={"x": POS}),
    D("(a^T X b) .^ 2", "X", "a X b", lambda e: (e["a"] @ e["X"] @ e["b"]) ** 2, S + " hadamard: hadamard_power(a.T*X*b, 2)"),
    D("(a^T X b) .^ (1/2)", "X", "a X b", lambda e: np.sqrt(e["a"] @ e["X"] @ e["b"]),
      S + " hadamard: hadamard_power(a.T*X*b, 1/2)", gen={"a": POS, "b": POS, "X": POS}),
]

# ---------------------------------------------------------------------------------------------
# DiffMatic.jl: test/StdStrTest.jl, StdTest.jl, JuliaTest.jl, DiffTest.jl, ForwardTest.jl
# ---------------------------------------------------------------------------------------------
G = "DiffMatic StdStrTest.jl 'test gradient in standard notation': gradient("
J = "DiffMatic StdStrTest.jl 'test Jacobian in standard notation': jacobian("
H = "DiffMatic StdStrTest.jl 'test Hessian in standard notation': hessian("
R = "DiffMatic StdStrTest.jl 'test graph rewriting of products': hessian("
SA = "a: scalar"


def dm(inp, wrt, names, ref, src, **kw):
    return D(inp, wrt, names, ref, src, n=N, **kw)


DIFFMATIC = [
    # gradients
    dm("x^T x", "x", "x", lambda e: e["x"] @ e["x"], G + "x' * x, x)"),
    dm("tr(x x^T)", "x", "x", lambda e: tr(np.outer(e["x"], e["x"])), G + "tr(x * x'), x)"),
    dm("(y ∘ c)^T x", "x", "x y c", lambda e: (e["y"] * e["c"]) @ e["x"], G + "(y .* c)' * x, x)"),
    dm("(x ∘ c)^T x", "x", "x c", lambda e: (e["x"] * e["c"]) @ e["x"], G + "(x .* c)' * x, x)"),
    dm("(x + y)^T x", "x", "x y", lambda e: (e["x"] + e["y"]) @ e["x"], G + "(x + y)' * x, x)"),
    dm("(x - y)^T x", "x", "x y", lambda e: (e["x"] - e["y"]) @ e["x"], G + "(x - y)' * x, x)"),
    dm("sin(tr(x x^T))", "x", "x", lambda e: np.sin(e["x"] @ e["x"]), G + "sin(tr(x * x')), x)"),
    dm("cos(tr(x x^T))", "x", "x", lambda e: np.cos(e["x"] @ e["x"]), G + "cos(tr(x * x')), x); JuliaTest.jl"),
    dm("tr(A)", "x", "A x", lambda e: tr(e["A"]), G + "tr(A), x) == vec(0)", where="x: n, A: n×n"),
    dm("abs(x^T x)", "x", "x", lambda e: np.abs(e["x"] @ e["x"]), G + "abs(x' * x), x)"),
    dm("x^T B^T A A x", "x", "x A B", lambda e: e["x"] @ e["B"].T @ e["A"] @ e["A"] @ e["x"], G + "x' * B' * A * A * x, x)"),
    dm("(A^T B x)^T A x", "x", "x A B", lambda e: (e["A"].T @ e["B"] @ e["x"]) @ e["A"] @ e["x"],
       G + "(A' * B * x)' * A * x, x)"),
    dm("a sin(y)^T x", "x", "x y a", lambda e: e["a"] * np.sin(e["y"]) @ e["x"], G + "a * sin.(y)' * x, x)",
       where=SA, scalars="a"),
    dm("a sin(x)^T y", "x", "x y a", lambda e: e["a"] * np.sin(e["x"]) @ e["y"], G + "a * sin.(x)' * y, x)",
       where=SA, scalars="a"),
    dm("sin(y)^T x a", "x", "x y a", lambda e: np.sin(e["y"]) @ e["x"] * e["a"], G + "sin.(y)' * x * a, x)",
       where=SA, scalars="a"),
    dm("sin(x)^T y a", "x", "x y a", lambda e: np.sin(e["x"]) @ e["y"] * e["a"], G + "sin.(x)' * y * a, x)",
       where=SA, scalars="a"),
    dm("x^T sin(y) a", "x", "x y a", lambda e: e["x"] @ np.sin(e["y"]) * e["a"], G + "x' * sin.(y) * a, x)",
       where=SA, scalars="a"),
    dm("y^T sin(x) a", "x", "x y a", lambda e: e["y"] @ np.sin(e["x"]) * e["a"], G + "y' * sin.(x) * a, x)",
       where=SA, scalars="a"),
    dm("sin(x ∘ y)^T x", "x", "x y", lambda e: np.sin(e["x"] * e["y"]) @ e["x"], G + "sin.(x .* y)' * x, x)"),
    dm("sum(x)", "x", "x", lambda e: np.sum(e["x"]), G + "sum(x), x)"),
    dm("2 sum(x)", "x", "x", lambda e: 2 * np.sum(e["x"]), G + "2 * sum(x), x)"),
    dm("sum(2 x)", "x", "x", lambda e: np.sum(2 * e["x"]), G + "sum(2 * x), x)"),
    dm("2 sum(sin(x))", "x", "x", lambda e: 2 * np.sum(np.sin(e["x"])), G + "2 * sum(sin.(x)), x)"),
    dm("sum(2 sin(x))", "x", "x", lambda e: np.sum(2 * np.sin(e["x"])), G + "sum(2 * sin.(x)), x)"),
    dm("diag(A)^T x", "x", "x A", lambda e: np.diag(e["A"]) @ e["x"], G + "diag(A)'*x, x)"),
    dm("2 sum(cos(A x + y))", "x", "x A y", lambda e: 2 * np.sum(np.cos(e["A"] @ e["x"] + e["y"])),
       G + "2 * sum(cos.(A * x + y)), x)"),
    dm("sum(2 cos(A x + y))", "x", "x A y", lambda e: np.sum(2 * np.cos(e["A"] @ e["x"] + e["y"])),
       G + "sum(2 * cos.(A * x + y)), x)"),
    dm("sum(x .^ 2)", "x", "x", lambda e: np.sum(e["x"] ** 2), G + "sum(x .^ 2), x)"),
    dm("sum(x .^ 3)", "x", "x", lambda e: np.sum(e["x"] ** 3), G + "sum(x .^ 3), x)"),
    dm("sum(x)^2", "x", "x", lambda e: np.sum(e["x"]) ** 2, G + "sum(x)^2, x)"),
    dm("sum(x .^ 2)^2", "x", "x", lambda e: np.sum(e["x"] ** 2) ** 2, G + "sum(x .^ 2)^2, x); JuliaTest.jl"),
    dm("sum((x + y) .^ 2)", "x", "x y", lambda e: np.sum((e["x"] + e["y"]) ** 2), G + "sum((x + y) .^ 2), x)"),
    dm("sum((x ∘ y) .^ 2)", "x", "x y", lambda e: np.sum((e["x"] * e["y"]) ** 2), G + "sum((x .* y) .^ 2), x)"),
    dm("sum((A x - y) .^ 2)", "x", "x A y", lambda e: np.sum((e["A"] @ e["x"] - e["y"]) ** 2),
       G + "sum((A * x - y) .^ 2), x)"),
    dm("log(x)^T x", "x", "x", lambda e: np.log(e["x"]) @ e["x"], G + "log.(x)'*x, x)", gen={"x": POS}),
    dm("log(x)^T log(x)", "x", "x", lambda e: np.log(e["x"]) @ np.log(e["x"]), G + "log.(x)'*log.(x), x)",
       gen={"x": POS}),
    dm("(x^T A x)^(-2)", "x", "x A", lambda e: (e["x"] @ e["A"] @ e["x"]) ** -2.0, G + "(x' * A * x) ^ (-2), x)",
       gen={"A": SPD, "x": AWAY}),
    dm("(x^T A x)^2", "x", "x A", lambda e: (e["x"] @ e["A"] @ e["x"]) ** 2, G + "(x' * A * x) ^ 2, x)"),
    dm("((A ∘ B) C x)^T x", "x", "x A B C", lambda e: ((e["A"] * e["B"]) @ e["C"] @ e["x"]) @ e["x"],
       G + "((A .* B) * C * x)' * x, x)"),
    dm("((A ∘ (B ∘ C)) C x)^T x", "x", "x A B C", lambda e: ((e["A"] * (e["B"] * e["C"])) @ e["C"] @ e["x"]) @ e["x"],
       G + "((A .* (B .* C)) * C * x)' * x, x)"),
    dm("sum((A ∘ B) C x)", "x", "x A B C", lambda e: np.sum((e["A"] * e["B"]) @ e["C"] @ e["x"]),
       G + "sum((A .* B) * C * x), x); 'test derivative in standard notation'"),
    dm("(x .^ 2 ∘ y)^T c", "x", "x y c", lambda e: (e["x"] ** 2 * e["y"]) @ e["c"], G + "(x .^ 2 .* y)' * c, x)"),
    dm("norm(A x)", "x", "x A", lambda e: np.linalg.norm(e["A"] @ e["x"]), G + "norm(A * x, 2), x)"),
    dm("log(A x)^T x", "x", "x A", lambda e: np.log(e["A"] @ e["x"]) @ e["x"], G + "log.(A*x)' * x, x)",
       gen={"A": POS, "x": POS}),
    dm("x^T sin(A x)", "x", "x A", lambda e: e["x"] @ np.sin(e["A"] @ e["x"]), G + "x' * sin.(A * x), x)"),
    dm("tr(diag(x) A diag(y) B)", "x", "x A y B", lambda e: tr(np.diag(e["x"]) @ e["A"] @ np.diag(e["y"]) @ e["B"]),
       G + "tr(diagm(x) * A * diagm(y) * B), x) (test_broken in DiffMatic)"),
    # Jacobians
    dm("A x", "x", "A x", lambda e: e["A"] @ e["x"], J + "A * x, x); StdTest.jl derivative(A * x, x)"),
    dm("A^T x", "x", "A x", lambda e: e["A"].T @ e["x"], J + "A' * x, x)"),
    dm("(A ∘ B) log(A x)", "x", "A B x", lambda e: (e["A"] * e["B"]) @ np.log(e["A"] @ e["x"]),
       J + "(A .* B) * log.(A * x), x)", gen={"A": POS, "x": POS}),
    dm("abs(x)", "x", "x", lambda e: np.abs(e["x"]), J + "abs.(x), x)", gen={"x": AWAY}),
    dm("log(x)", "x", "x", lambda e: np.log(e["x"]), J + "log.(x), x)", gen={"x": POS}),
    dm("diag(A x) x", "x", "A x", lambda e: np.diag(e["A"] @ e["x"]) @ e["x"], J + "diagm(A*x)*x, x)"),
    dm("sin(A x + y)", "x", "A x y", lambda e: np.sin(e["A"] @ e["x"] + e["y"]), J + "sin.(A * x + y), x); JuliaTest.jl"),
    dm("diag(diag((x^T B^T A A)^T))", "x", "x A B", lambda e: e["A"].T @ e["A"].T @ e["B"] @ e["x"],
       J + "diag(diagm(x' * B' * A * A)), x)"),
    dm("((A ∘ B) C x)^T x x", "x", "x A B C", lambda e: (((e["A"] * e["B"]) @ e["C"] @ e["x"]) @ e["x"]) * e["x"],
       J + "((A .* B) * C * x)' * x * x, x); JuliaTest.jl"),
    dm("diag(diag(A x))", "x", "A x", lambda e: e["A"] @ e["x"],
       "DiffMatic StdStrTest.jl 'test diagonal expressions': jacobian(diag(diagm(A * x)), x)"),
    dm("diag(A diag(x))", "x", "A x", lambda e: np.diag(e["A"] @ np.diag(e["x"])),
       "DiffMatic StdStrTest.jl 'test diagonal expressions': jacobian(diag(A * diagm(x)), x) (test_broken)"),
    # exp
    dm("sum(exp(A x))", "x", "A x", lambda e: np.sum(np.exp(e["A"] @ e["x"])),
       "DiffMatic StdStrTest.jl 'test exp': gradient(sum(exp.(A * x)), x)"),
    dm("exp(x^T x)", "x", "x", lambda e: np.exp(e["x"] @ e["x"]), "DiffMatic StdStrTest.jl 'test exp': gradient(exp(x' * x), x)"),
    dm("y^T exp(A x)", "x", "A x y", lambda e: e["y"] @ np.exp(e["A"] @ e["x"]),
       "DiffMatic StdStrTest.jl 'test exp': gradient(y' * exp.(A * x), x)"),
    dm("exp(A x)", "x", "A x", lambda e: np.exp(e["A"] @ e["x"]), "DiffMatic StdStrTest.jl 'test exp': jacobian(exp.(A * x), x)"),
    dm("sum(exp(A x))", "x", "A x", lambda e: np.sum(np.exp(e["A"] @ e["x"])),
       "DiffMatic StdStrTest.jl 'test exp': hessian(sum(exp.(A * x)), x)", order=2),
    # element-wise multiplication
    dm("(A ∘ A^T) x", "x", "A x", lambda e: (e["A"] * e["A"].T) @ e["x"],
       "DiffMatic StdStrTest.jl 'test elementwise multiplication': jacobian((A .* A') * x, x)"),
    dm("(A ∘ B^T) x", "x", "A B x", lambda e: (e["A"] * e["B"].T) @ e["x"],
       "DiffMatic StdStrTest.jl 'test elementwise multiplication': jacobian((A .* B') * x, x)"),
    dm("x^T (A ∘ A^T) x", "x", "A x", lambda e: e["x"] @ (e["A"] * e["A"].T) @ e["x"],
       "DiffMatic StdStrTest.jl 'test elementwise multiplication': gradient(x' * (A .* A') * x, x)"),
    dm("x^T (A ∘ B^T) x", "x", "A B x", lambda e: e["x"] @ (e["A"] * e["B"].T) @ e["x"],
       "DiffMatic StdStrTest.jl 'test elementwise multiplication': gradient(x' * (A .* B') * x, x)"),
    dm("sum((A ∘ A^T) x)", "x", "A x", lambda e: np.sum((e["A"] * e["A"].T) @ e["x"]),
       "DiffMatic StdStrTest.jl 'test elementwise multiplication': gradient(sum((A .* A') * x), x)"),
    # derivative
    dm("diag(A)^T x", "A", "A x", lambda e: np.diag(e["A"]) @ e["x"],
       "DiffMatic StdStrTest.jl 'test derivative': derivative(diag(A)'*x, A)"),
    dm("sum(-y ∘ (X z))", "X", "X y z", lambda e: np.sum(-e["y"] * (e["X"] @ e["z"])),
       "DiffMatic StdStrTest.jl 'test derivative': derivative(sum(-y .* (X*z)), X)"),
    dm("x^T A x", "A", "A x", lambda e: e["x"] @ e["A"] @ e["x"], "DiffMatic StdTest.jl derivative(x' * A * x, A) (test_broken)"),
    # Hessians
    dm("x^T A x", "x", "A x", lambda e: e["x"] @ e["A"] @ e["x"], H + "x' * A * x, x)", order=2),
    dm("2 x^T A x", "x", "A x", lambda e: 2 * e["x"] @ e["A"] @ e["x"], H + "2 * x' * A * x, x)", order=2),
    dm("2 x^T x", "x", "x", lambda e: 2 * e["x"] @ e["x"], H + "2 * x' * x, x)", order=2),
    dm("sin(cos(x^T A B^T x))", "x", "A B x", lambda e: np.sin(np.cos(e["x"] @ e["A"] @ e["B"].T @ e["x"])),
       H + "sin(cos(x' * A * B' * x)), x)", order=2),
    dm("x^T sin(A x)", "x", "A x", lambda e: e["x"] @ np.sin(e["A"] @ e["x"]), H + "x' * sin.(A * x), x)", order=2),
    dm("tr(A)", "x", "A x", lambda e: tr(e["A"]), H + "tr(A), x) == mat(0) (test_broken)", order=2,
       where="x: n, A: n×n"),
    dm("(A x)^T sin(B x)", "x", "A B x", lambda e: (e["A"] @ e["x"]) @ np.sin(e["B"] @ e["x"]),
       H + "(A * x)' * sin.(B * x), x)", order=2),
    dm("(A x)^T sin(A x)", "x", "A x", lambda e: (e["A"] @ e["x"]) @ np.sin(e["A"] @ e["x"]),
       H + "(A * x)' * sin.(A * x), x)", order=2),
    dm("y^T sin(A x)", "x", "A x y", lambda e: e["y"] @ np.sin(e["A"] @ e["x"]), R + "y' * sin.(A * x), x)", order=2),
    dm("sin(A x)^T cos(B x)", "x", "A B x", lambda e: np.sin(e["A"] @ e["x"]) @ np.cos(e["B"] @ e["x"]),
       R + "sin.(A * x)' * cos.(B * x), x)", order=2),
    dm("sum(sin(A x) ∘ cos(B x))", "x", "A B x", lambda e: np.sum(np.sin(e["A"] @ e["x"]) * np.cos(e["B"] @ e["x"])),
       R + "sum(sin.(A * x) .* cos.(B * x)), x)", order=2),
    dm("(x ∘ y)^T sin(A x)", "x", "A x y", lambda e: (e["x"] * e["y"]) @ np.sin(e["A"] @ e["x"]),
       R + "(x .* y)' * sin.(A * x), x)", order=2),
    dm("sin(A x)^T B cos(C x)", "x", "A B C x", lambda e: np.sin(e["A"] @ e["x"]) @ e["B"] @ np.cos(e["C"] @ e["x"]),
       R + "sin.(A * x)' * B * cos.(C * x), x)", order=2),
    # DiffTest.jl / ForwardTest.jl: dc.diff
    dm("x", "x", "x", lambda e: e["x"], "DiffMatic DiffTest.jl 'diff Variable': diff(x, x)"),
    dm("y", "x", "x y", lambda e: e["y"], "DiffMatic DiffTest.jl 'diff Variable': diff(y, x) == 0", where="x: n, y: m"),
    dm("a", "x", "x a", lambda e: e["a"], "DiffMatic DiffTest.jl 'diff Variable': diff(a, x) == 0", where="x: n, a: scalar",
       scalars="a"),
    dm("A", "x", "x A", lambda e: e["A"], "DiffMatic DiffTest.jl 'diff Variable': diff(A, x) == 0", where="x: n, A: m×p",
       shapes={"x": (3,), "A": (2, 4)}),
    dm("A", "A", "A", lambda e: e["A"], "DiffMatic DiffTest.jl 'diff Variable': diff(A, A)", shapes={"A": (2, 3)}),
    dm("tr(A)", "A", "A", lambda e: tr(e["A"]), "DiffMatic DiffTest.jl 'diff trace'"),
    dm("abs(x)", "x", "x", lambda e: np.abs(e["x"]), "DiffMatic DiffTest.jl 'diff abs'", gen={"x": AWAY}),
    dm("sin(x)", "x", "x", lambda e: np.sin(e["x"]), "DiffMatic DiffTest.jl 'diff sin'"),
    dm("cos(x)", "x", "x", lambda e: np.cos(e["x"]), "DiffMatic DiffTest.jl 'diff cos'"),
    dm("-x", "x", "x", lambda e: -e["x"], "DiffMatic DiffTest.jl 'diff negated vector'"),
    dm("x^T A", "x", "A x", lambda e: e["x"][None, :] @ e["A"], "DiffMatic DiffTest.jl 'Differentiate xᵀA' (a 1×m row)",
       shapes={"x": (3,), "A": (3, 4)}),
    dm("x x^T x", "x", "x", lambda e: e["x"] * (e["x"] @ e["x"]), "DiffMatic DiffTest.jl 'Differentiate xx'x'"),
    dm("A (x + 2 x)", "x", "A x", lambda e: e["A"] @ (3 * e["x"]), "DiffMatic DiffTest.jl 'Differentiate A(x + 2x)'"),
    dm("A (2 x + x)", "x", "A x", lambda e: e["A"] @ (3 * e["x"]), "DiffMatic DiffTest.jl 'Differentiate A(2x + x)'"),
]

# ForwardTest.jl 'evaluated derivative is equal to derivative of evaluated expression': each
# expression by each of A, x, y, c that occurs in it (DiffMatic checks two routes agree; we
# check the numbers).
_FT = "DiffMatic ForwardTest.jl 'evaluated derivative is equal to derivative of evaluated expression': "
_FORWARD = [
    ("A x", lambda e: e["A"] @ e["x"], {}),
    ("x^T A", lambda e: e["x"][None, :] @ e["A"], {}),     # a 1×n row: its derivative is 1×n×...
    ("x^T A x", lambda e: e["x"] @ e["A"] @ e["x"], {}),
    ("x^T x", lambda e: e["x"] @ e["x"], {}),
    ("tr(x x^T)", lambda e: tr(np.outer(e["x"], e["x"])), {}),
    ("(y ∘ c)^T x", lambda e: (e["y"] * e["c"]) @ e["x"], {}),
    ("(x ∘ c)^T x", lambda e: (e["x"] * e["c"]) @ e["x"], {}),
    ("(x + y)^T x", lambda e: (e["x"] + e["y"]) @ e["x"], {}),
    ("(x - y)^T x", lambda e: (e["x"] - e["y"]) @ e["x"], {}),
    ("x^T (y ∘ c)", lambda e: e["x"] @ (e["y"] * e["c"]), {}),
    ("x^T (x ∘ c)", lambda e: e["x"] @ (e["x"] * e["c"]), {}),
    ("x^T (x + y)", lambda e: e["x"] @ (e["x"] + e["y"]), {}),
    ("x^T (x - y)", lambda e: e["x"] @ (e["x"] - e["y"]), {}),
    ("sin(tr(x x^T))", lambda e: np.sin(e["x"] @ e["x"]), {}),
    ("cos(tr(x x^T))", lambda e: np.cos(e["x"] @ e["x"]), {}),
    ("tr(sin(x x^T))", lambda e: tr(np.sin(np.outer(e["x"], e["x"]))), {}),
    ("tr(A)", lambda e: tr(e["A"]), {}),
    ("sum((x + y) .^ 2)", lambda e: np.sum((e["x"] + e["y"]) ** 2), {}),
]
for _expr, _ref, _gen in _FORWARD:
    _names = " ".join(v for v in ("A", "x", "y", "c") if re.search(rf"\b{v}\b", _expr))
    for _var in _names.split():
        if True:
            DIFFMATIC.append(dm(_expr, _var, _names, _ref, _FT + _expr.replace("^T", "'") + f" by {_var}", gen=_gen))

# ---------------------------------------------------------------------------------------------
# The Matrix Cookbook (2012): derivatives of traces, determinants, inverses, quadratic forms, norms
# ---------------------------------------------------------------------------------------------
CB = "Matrix Cookbook eq. "
COOKBOOK = [
    # determinants, §2.1.1
    D("det(X)", "X", "X", lambda e: det(e["X"]), CB + "49: ∂det(X)/∂X = det(X) X^-T", gen={"X": WELL}),
    D("det(A X B)", "X", "A X B", lambda e: det(e["A"] @ e["X"] @ e["B"]), CB + "51: ∂det(AXB)/∂X = det(AXB) X^-T",
      gen={"X": WELL, "A": WELL, "B": WELL}),
    D("logdet(X)", "X", "X", lambda e: np.log(det(e["X"])), CB + "57: ∂ln|det X|/∂X = X^-T", gen={"X": WELL}),
    D("log(det(X))", "X", "X", lambda e: np.log(det(e["X"])), CB + "57 written log(det(X))", gen={"X": WELL}),
    D("det(X^T A X)", "X", "X A", lambda e: det(e["X"].T @ e["A"] @ e["X"]), CB + "55 (X square)",
      gen={"X": WELL, "A": SPD}),
    D("logdet(X^T X)", "X", "X", lambda e: np.log(det(e["X"].T @ e["X"])), CB + "56: ∂ln det(XᵀX)/∂X = 2 (X^+)^T",
      shapes={"X": (4, 3)}),
    D("det(X^T A X)", "X", "X A", lambda e: det(e["X"].T @ e["A"] @ e["X"]), CB + "52 (X tall, A symmetric)",
      shapes={"X": (4, 3), "A": (4, 4)}, gen={"A": SPD}),
    D("det(X^2)", "X", "X", lambda e: det(e["X"] @ e["X"]), CB + "53: ∂det(X^k)/∂X = k det(X^k) X^-T, k = 2", gen={"X": WELL}),
    D("det(X^3)", "X", "X", lambda e: det(mp(e["X"], 3)), CB + "53 with k = 3", gen={"X": WELL}),
    D("det(inv(X))", "X", "X", lambda e: det(inv(e["X"])), CB + "(62 in SymPy's numbering): det(X^-1)", gen={"X": WELL}),
    # inverses, §2.2
    D("a^T X^-1 b", "X", "a X b", lambda e: e["a"] @ inv(e["X"]) @ e["b"], CB + "61: -X^-T a b^T X^-T", gen={"X": WELL}),
    D("tr(A X^-1 B)", "X", "A X B", lambda e: tr(e["A"] @ inv(e["X"]) @ e["B"]), CB + "63", gen={"X": WELL}),
    D("tr((X + A)^-1)", "X", "X A", lambda e: tr(inv(e["X"] + e["A"])), CB + "64", gen={"X": WELL, "A": WELL}),
    D("X^-1", "X", "X", lambda e: inv(e["X"]), CB + "59: ∂X^-1 = -X^-1 (∂X) X^-1 (the full Jacobian)",
      gen={"X": WELL}),
    D("tr(X^-1)", "X", "X", lambda e: tr(inv(e["X"])), CB + "64 with A = 0", gen={"X": WELL}),
    D("x^T X^-1 x", "X", "x X", lambda e: e["x"] @ inv(e["X"]) @ e["x"], CB + "61 with a = b", gen={"X": WELL}),
    # first-order traces, §2.4.1
    D("tr(X)", "X", "X", lambda e: tr(e["X"]), CB + "99"),
    D("tr(X A)", "X", "X A", lambda e: tr(e["X"] @ e["A"]), CB + "100", shapes={"X": (3, 4), "A": (4, 3)}),
    D("tr(A X B)", "X", "A X B", lambda e: tr(e["A"] @ e["X"] @ e["B"]), CB + "101",
      shapes={"A": (2, 3), "X": (3, 4), "B": (4, 2)}),
    D("tr(A X^T B)", "X", "A X B", lambda e: tr(e["A"] @ e["X"].T @ e["B"]), CB + "102",
      shapes={"A": (2, 4), "X": (3, 4), "B": (3, 2)}),
    D("tr(X)^2", "X", "X", lambda e: tr(e["X"]) ** 2, CB + "120 (tr(X ⊗ X) = tr(X)^2)"),
    # second- and higher-order traces, §2.4.2-2.4.3
    D("tr(X^3)", "X", "X", lambda e: tr(mp(e["X"], 3)), CB + "121: ∂tr(X^k)/∂X = k (X^(k-1))^T, k = 3"),
    D("tr(A X^3)", "X", "X A", lambda e: tr(e["A"] @ mp(e["X"], 3)), CB + "122, k = 3"),
    D("tr(X^T B X)", "X", "X B", lambda e: tr(e["X"].T @ e["B"] @ e["X"]), CB + "108 (X rectangular)",
      shapes={"X": (4, 3), "B": (4, 4)}),
    D("tr(X B X^T)", "X", "X B", lambda e: tr(e["X"] @ e["B"] @ e["X"].T), CB + "111 (X rectangular)",
      shapes={"X": (4, 3), "B": (3, 3)}),
    D("tr(A X B X)", "X", "A X B", lambda e: tr(e["A"] @ e["X"] @ e["B"] @ e["X"]), CB + "114 (rectangular)",
      shapes={"A": (4, 3), "X": (3, 4), "B": (4, 3)}),
    D("tr(X^T X)", "X", "X", lambda e: tr(e["X"].T @ e["X"]), CB + "115 (X rectangular)", shapes={"X": (4, 3)}),
    D("tr(A X B X^T C)", "X", "A X B C", lambda e: tr(e["A"] @ e["X"] @ e["B"] @ e["X"].T @ e["C"]), CB + "118 (rectangular)",
      shapes={"A": (2, 4), "X": (4, 3), "B": (3, 3), "C": (4, 2)}),
    D("tr((A X B + C) (A X B + C)^T)", "X", "A X B C",
      lambda e: tr((e["A"] @ e["X"] @ e["B"] + e["C"]) @ (e["A"] @ e["X"] @ e["B"] + e["C"]).T), CB + "119 (rectangular)",
      shapes={"A": (2, 4), "X": (4, 3), "B": (3, 5), "C": (2, 5)}),
    D("tr((X^T C X)^-1 A)", "X", "X C A", lambda e: tr(inv(e["X"].T @ e["C"] @ e["X"]) @ e["A"]), CB + "125 (X tall)",
      shapes={"X": (4, 3), "C": (4, 4), "A": (3, 3)}, gen={"C": SPD}),
    # quadratic forms, §2.4 / §2.3
    D("x^T A x", "x", "x A", lambda e: e["x"] @ e["A"] @ e["x"], CB + "81: (A + A^T) x"),
    D("x^T A x", "x", "x A", lambda e: e["x"] @ e["A"] @ e["x"], CB + "81 second derivative: A + A^T", order=2),
    D("b^T X^T X c", "X", "b X c", lambda e: e["b"] @ e["X"].T @ e["X"] @ e["c"], CB + "77 (X rectangular)",
      shapes={"b": (3,), "X": (4, 3), "c": (3,)}),
    D("(B x + b)^T C (D x + d)", "x", "B x b C D d",
      lambda e: (e["B"] @ e["x"] + e["b"]) @ e["C"] @ (e["D"] @ e["x"] + e["d"]), CB + "78 (rectangular)",
      shapes={"B": (4, 3), "x": (3,), "b": (4,), "C": (4, 2), "D": (2, 3), "d": (2,)}),
    D("(B x + b)^T C (D x + d)", "x", "B x b C D d",
      lambda e: (e["B"] @ e["x"] + e["b"]) @ e["C"] @ (e["D"] @ e["x"] + e["d"]), CB + "78, second derivative",
      order=2),
    D("(X b + c)^T D (X b + c)", "X", "X b c D",
      lambda e: (e["X"] @ e["b"] + e["c"]) @ e["D"] @ (e["X"] @ e["b"] + e["c"]), CB + "83 (rectangular)",
      shapes={"X": (4, 3), "b": (3,), "c": (4,), "D": (4, 4)}),
    D("(x - s)^T W (x - s)", "x", "x s W", lambda e: (e["x"] - e["s"]) @ e["W"] @ (e["x"] - e["s"]), CB + "84: 2 W (x - s), W symmetric",
      gen={"W": SPD}),
    D("(x - s)^T W (x - s)", "s", "x s W", lambda e: (e["x"] - e["s"]) @ e["W"] @ (e["x"] - e["s"]), CB + "85: -2 W (x - s)",
      gen={"W": SPD}),
    D("(x - A s)^T W (x - A s)", "s", "x A s W",
      lambda e: (e["x"] - e["A"] @ e["s"]) @ e["W"] @ (e["x"] - e["A"] @ e["s"]), CB + "86: -2 A^T W (x - A s)",
      shapes={"x": (4,), "A": (4, 3), "s": (3,), "W": (4, 4)}, gen={"W": SPD}),
    D("(x - A s)^T W (x - A s)", "A", "x A s W",
      lambda e: (e["x"] - e["A"] @ e["s"]) @ e["W"] @ (e["x"] - e["A"] @ e["s"]), CB + "88: -2 W (x - A s) s^T",
      shapes={"x": (4,), "A": (4, 3), "s": (3,), "W": (4, 4)}, gen={"W": SPD}),
    D("a^T X^T X b", "X", "a X b", lambda e: e["a"] @ e["X"].T @ e["X"] @ e["b"], CB + "76: X (a b^T + b a^T)"),
    D("(x^T A x) / (x^T x)", "x", "x A", lambda e: (e["x"] @ e["A"] @ e["x"]) / (e["x"] @ e["x"]),
      "Rayleigh quotient (Matrix Cookbook §2.4 quadratic forms, chain rule)", gen={"A": SPD}),
    # norms, §2.6
    D("norm(x - a)", "x", "x a", lambda e: np.linalg.norm(e["x"] - e["a"]), CB + "129: (x - a) / ‖x - a‖"),
    D("(x - a) / norm(x - a)", "x", "x a", lambda e: (e["x"] - e["a"]) / np.linalg.norm(e["x"] - e["a"]),
      CB + "130: I/‖x-a‖ - (x-a)(x-a)^T/‖x-a‖^3"),
    D("norm2(x)", "x", "x", lambda e: e["x"] @ e["x"], CB + "131: ∂‖x‖₂²/∂x = 2x"),
    D("‖x‖^2", "x", "x", lambda e: e["x"] @ e["x"], CB + "131 written ‖x‖^2"),
    D("norm(X)^2", "X", "X", lambda e: np.sum(e["X"] ** 2), CB + "132: ∂‖X‖_F²/∂X = 2X", shapes={"X": (3, 4)}),
    D("‖X‖_F", "X", "X", lambda e: np.linalg.norm(e["X"]), CB + "132 (Frobenius norm, ‖X‖_F)", shapes={"X": (3, 4)}),
    D("‖A x - b‖^2", "x", "A x b", lambda e: np.sum((e["A"] @ e["x"] - e["b"]) ** 2), "least squares (Cookbook §2.6 / eq. 86)",
      shapes={"A": (4, 3), "x": (3,), "b": (4,)}),
]


# ---------------------------------------------------------------------------------------------
# `check` of the answers the peers assert (SymPy's `expr.diff(X) == result`, DiffMatic's
# to_std strings) and the Cookbook prints. `claim` is the claim in NumPy, written by hand; the
# in-process test also checks that `claim` agrees with finite differences exactly when
# `correct` says so, so a wrong `correct` here cannot go unnoticed.
# ---------------------------------------------------------------------------------------------


def C(inp, wrt, names, ref, answer, claim, correct, src, **kw):
    case = D(inp, wrt, names, ref, src, **kw)
    case.update(cmd="check", answer=answer, claim=claim, correct=correct)
    return case


Xi = lambda e: inv(e["X"])
CHECKS = [
    C("a^T X^-1 b", "X", "a X b", lambda e: e["a"] @ inv(e["X"]) @ e["b"], "-X^-T a b^T X^-T",
      lambda e: -Xi(e).T @ np.outer(e["a"], e["b"]) @ Xi(e).T, True, S + " cookbook 61", gen={"X": WELL}),
    C("tr(A X^-1 B)", "X", "A X B", lambda e: tr(e["A"] @ inv(e["X"]) @ e["B"]), "-(X^-1 B A X^-1)^T",
      lambda e: -(Xi(e) @ e["B"] @ e["A"] @ Xi(e)).T, True, S + " cookbook 63", gen={"X": WELL}),
    C("tr(inv(X + A))", "X", "X A", lambda e: tr(inv(e["X"] + e["A"])), "-((X + A)^-T)^2",
      lambda e: -mp(inv(e["X"] + e["A"]).T, 2), True, S + " cookbook 64", gen={"X": WELL, "A": WELL}),
    C("a^T X b", "X", "a X b", lambda e: e["a"] @ e["X"] @ e["b"], "a b^T", lambda e: np.outer(e["a"], e["b"]),
      True, S + " cookbook 70"),
    C("a^T X^T b", "X", "a X b", lambda e: e["a"] @ e["X"].T @ e["b"], "b a^T", lambda e: np.outer(e["b"], e["a"]),
      True, S + " cookbook 71"),
    C("a^T X^T b", "X", "a X b", lambda e: e["a"] @ e["X"].T @ e["b"], "a b^T", lambda e: np.outer(e["a"], e["b"]),
      False, S + " cookbook 71, the transposed claim (wrong)"),
    C("b^T X^T X c", "X", "b X c", lambda e: e["b"] @ e["X"].T @ e["X"] @ e["c"], "X b c^T + X c b^T",
      lambda e: e["X"] @ np.outer(e["b"], e["c"]) + e["X"] @ np.outer(e["c"], e["b"]), True, S + " cookbook 77"),
    C("(B x + b)^T C (D x + d)", "x", "B x b C D d",
      lambda e: (e["B"] @ e["x"] + e["b"]) @ e["C"] @ (e["D"] @ e["x"] + e["d"]),
      "B^T C (D x + d) + D^T C^T (B x + b)",
      lambda e: e["B"].T @ e["C"] @ (e["D"] @ e["x"] + e["d"]) + e["D"].T @ e["C"].T @ (e["B"] @ e["x"] + e["b"]),
      True, S + " cookbook 78"),
    C("b^T X^T D X c", "X", "b X D c", lambda e: e["b"] @ e["X"].T @ e["D"] @ e["X"] @ e["c"],
      "D^T X b c^T + D X c b^T",
      lambda e: e["D"].T @ e["X"] @ np.outer(e["b"], e["c"]) + e["D"] @ e["X"] @ np.outer(e["c"], e["b"]),
      True, S + " cookbook 82"),
    C("(X b + c)^T D (X b + c)", "X", "X b c D",
      lambda e: (e["X"] @ e["b"] + e["c"]) @ e["D"] @ (e["X"] @ e["b"] + e["c"]),
      "D (X b + c) b^T + D^T (X b + c) b^T",
      lambda e: np.outer((e["D"] + e["D"].T) @ (e["X"] @ e["b"] + e["c"]), e["b"]), True, S + " cookbook 83"),
    C("(X b + c)^T D (X b + c)", "X", "X b c D",
      lambda e: (e["X"] @ e["b"] + e["c"]) @ e["D"] @ (e["X"] @ e["b"] + e["c"]),
      "2 D (X b + c) b^T",
      lambda e: 2 * np.outer(e["D"] @ (e["X"] @ e["b"] + e["c"]), e["b"]), False,
      CB + "83 as printed (D symmetric), with a general D (wrong)"),
    C("tr(X A)", "X", "X A", lambda e: tr(e["X"] @ e["A"]), "A^T", lambda e: e["A"].T, True, S + " cookbook 100"),
    C("tr(A X B)", "X", "A X B", lambda e: tr(e["A"] @ e["X"] @ e["B"]), "A^T B^T", lambda e: e["A"].T @ e["B"].T,
      True, S + " cookbook 101"),
    C("tr(A X^T B)", "X", "A X B", lambda e: tr(e["A"] @ e["X"].T @ e["B"]), "B A", lambda e: e["B"] @ e["A"],
      True, S + " cookbook 102"),
    C("tr(X^2)", "X", "X", lambda e: tr(e["X"] @ e["X"]), "2 X^T", lambda e: 2 * e["X"].T, True, S + " cookbook 106"),
    C("tr(X^2 B)", "X", "X B", lambda e: tr(e["X"] @ e["X"] @ e["B"]), "(X B + B X)^T",
      lambda e: (e["X"] @ e["B"] + e["B"] @ e["X"]).T, True, S + " cookbook 107"),
    C("tr(X^T B X)", "X", "X B", lambda e: tr(e["X"].T @ e["B"] @ e["X"]), "B X + B^T X",
      lambda e: e["B"] @ e["X"] + e["B"].T @ e["X"], True, S + " cookbook 108"),
    C("tr(X^T B X)", "X", "X B", lambda e: tr(e["X"].T @ e["B"] @ e["X"]), "2 B X",
      lambda e: 2 * e["B"] @ e["X"], False, S + " cookbook 108 with B taken symmetric (wrong)"),
    C("tr(X B X^T)", "X", "X B", lambda e: tr(e["X"] @ e["B"] @ e["X"].T), "X B^T + X B",
      lambda e: e["X"] @ e["B"].T + e["X"] @ e["B"], True, S + " cookbook 111"),
    C("tr(A X B X)", "X", "A X B", lambda e: tr(e["A"] @ e["X"] @ e["B"] @ e["X"]), "A^T X^T B^T + B^T X^T A^T",
      lambda e: e["A"].T @ e["X"].T @ e["B"].T + e["B"].T @ e["X"].T @ e["A"].T, True, S + " cookbook 114"),
    C("tr(B^T X^T C X B)", "X", "B X C", lambda e: tr(e["B"].T @ e["X"].T @ e["C"] @ e["X"] @ e["B"]),
      "C^T X B B^T + C X B B^T", lambda e: (e["C"].T + e["C"]) @ e["X"] @ e["B"] @ e["B"].T, True, S + " cookbook 116"),
    C("tr(X^T B X C)", "X", "X B C", lambda e: tr(e["X"].T @ e["B"] @ e["X"] @ e["C"]), "B X C + B^T X C^T",
      lambda e: e["B"] @ e["X"] @ e["C"] + e["B"].T @ e["X"] @ e["C"].T, True, S + " cookbook 117"),
    C("tr(A X B X^T C)", "X", "A X B C", lambda e: tr(e["A"] @ e["X"] @ e["B"] @ e["X"].T @ e["C"]),
      "A^T C^T X B^T + C A X B",
      lambda e: e["A"].T @ e["C"].T @ e["X"] @ e["B"].T + e["C"] @ e["A"] @ e["X"] @ e["B"], True, S + " cookbook 118"),
    C("tr((A X B + C) (A X B + C)^T)", "X", "A X B C",
      lambda e: tr((e["A"] @ e["X"] @ e["B"] + e["C"]) @ (e["A"] @ e["X"] @ e["B"] + e["C"]).T),
      "2 A^T (A X B + C) B^T", lambda e: 2 * e["A"].T @ (e["A"] @ e["X"] @ e["B"] + e["C"]) @ e["B"].T,
      True, S + " cookbook 119"),
    C("tr(A X^-1 B)", "X", "A X B", lambda e: tr(e["A"] @ inv(e["X"]) @ e["B"]), "-X^-T A^T B^T X^-T",
      lambda e: -Xi(e).T @ e["A"].T @ e["B"].T @ Xi(e).T, True, S + " cookbook 124", gen={"X": WELL}),
    C("tr((X^T C X)^-1 A)", "X", "X C A", lambda e: tr(inv(e["X"].T @ e["C"] @ e["X"]) @ e["A"]),
      "-X^-T A^T X^-1 C^-T X^-T - X^-T A X^-1 C^-1 X^-T",
      lambda e: -Xi(e).T @ e["A"].T @ Xi(e) @ inv(e["C"]).T @ Xi(e).T - Xi(e).T @ e["A"] @ Xi(e) @ inv(e["C"]) @ Xi(e).T,
      True, S + " cookbook 125", gen={"X": WELL, "C": WELL}, where="X: k×k, C: k×k, A: k×k"),
    C("tr((X^T C X)^-1 A)", "X", "X C A", lambda e: tr(inv(e["X"].T @ e["C"] @ e["X"]) @ e["A"]),
      "-C X (X^T C X)^-1 (A + A^T) (X^T C X)^-1",
      lambda e: (lambda M: -e["C"] @ e["X"] @ M @ (e["A"] + e["A"].T) @ M)(inv(e["X"].T @ e["C"] @ e["X"])),
      False, CB + "125 as printed (C symmetric) with a general C (SymPy's warning: wrong)", gen={"X": WELL, "C": WELL},
      where="X: k×k, C: k×k, A: k×k"),
    C("3 tr(A)", "A", "A", lambda e: 3 * tr(e["A"]), "3 I", lambda e: 3 * np.eye(K), True, S + " mixed: 3*Trace(A)"),
    C("tr(A)^2", "A", "A", lambda e: tr(e["A"]) ** 2, "2 tr(A) I", lambda e: 2 * tr(e["A"]) * np.eye(K), True,
      S + " mixed: Trace(A)**2"),
    C("tr(tr(tr(A) A) A)", "A", "A", lambda e: tr(tr(tr(e["A"]) * e["A"]) * e["A"]), "3 tr(A)^2 I",
      lambda e: 3 * tr(e["A"]) ** 2 * np.eye(K), True, S + " mixed: Trace(Trace(Trace(A)*A)*A)"),
    C("(x^T x)^(1/2)", "x", "x", lambda e: np.sqrt(e["x"] @ e["x"]), "x (x^T x)^(-1/2)",
      lambda e: e["x"] / np.sqrt(e["x"] @ e["x"]), True, S + " norms: (x.T*x)**(1/2)"),
    C("(a^T X b)^(1/2)", "X", "a X b", lambda e: np.sqrt(e["a"] @ e["X"] @ e["b"]), "a b^T / (2 sqrt(a^T X b))",
      lambda e: np.outer(e["a"], e["b"]) / (2 * np.sqrt(e["a"] @ e["X"] @ e["b"])), True, S + " norms: (a.T*X*b)**(1/2)",
      gen={"a": POS, "b": POS, "X": POS}),
    C("x^T A x + k sin(y)^T x", "x", "x A y", lambda e: e["x"] @ e["A"] @ e["x"] + K * np.sin(e["y"]) @ e["x"],
      "A^T x + A x + k sin(y)", lambda e: e["A"].T @ e["x"] + e["A"] @ e["x"] + K * np.sin(e["y"]), True,
      S + " elementwise: x.T*A*x + k*y.applyfunc(sin).T*x", where="x: k"),
    C("a^T sin(X) b", "X", "a X b", lambda e: e["a"] @ np.sin(e["X"]) @ e["b"], "diag(a) cos(X) diag(b)",
      lambda e: np.diag(e["a"]) @ np.cos(e["X"]) @ np.diag(e["b"]), True, S + " elementwise: a.T*X.applyfunc(sin)*b"),
    C("a^T A sin(X) B b", "X", "a A X B b", lambda e: e["a"] @ e["A"] @ np.sin(e["X"]) @ e["B"] @ e["b"],
      "(A^T a b^T B^T) ∘ cos(X)", lambda e: (e["A"].T @ np.outer(e["a"], e["b"]) @ e["B"].T) * np.cos(e["X"]), True,
      S + " elementwise: a.T*A*X.applyfunc(sin)*B*b"),
    C("a^T (A ∘ X ∘ B) b", "X", "a A X B b", lambda e: e["a"] @ (e["A"] * e["X"] * e["B"]) @ e["b"],
      "a b^T ∘ A ∘ B", lambda e: np.outer(e["a"], e["b"]) * e["A"] * e["B"], True, S + " hadamard"),
    C("(a^T X b) .^ 2", "X", "a X b", lambda e: (e["a"] @ e["X"] @ e["b"]) ** 2, "2 a a^T X b b^T",
      lambda e: 2 * np.outer(e["a"], e["a"]) @ e["X"] @ np.outer(e["b"], e["b"]), True, S + " hadamard_power(a.T*X*b, 2)"),
    # DiffMatic's printed answers
    C("x^T B^T A A x", "x", "x A B", lambda e: e["x"] @ e["B"].T @ e["A"] @ e["A"] @ e["x"], "A^T A^T B x + B^T A A x",
      lambda e: e["A"].T @ e["A"].T @ e["B"] @ e["x"] + e["B"].T @ e["A"] @ e["A"] @ e["x"], True,
      G + "x' * B' * A * A * x, x) == AᵀAᵀBx + BᵀAAx", n=N),
    C("sum((A x - y) .^ 2)", "x", "x A y", lambda e: np.sum((e["A"] @ e["x"] - e["y"]) ** 2), "2 (A^T A x - A^T y)",
      lambda e: 2 * (e["A"].T @ e["A"] @ e["x"] - e["A"].T @ e["y"]), True, G + "sum((A * x - y) .^ 2), x)", n=N),
    C("log(A x)^T x", "x", "x A", lambda e: np.log(e["A"] @ e["x"]) @ e["x"], "A^T (x ⊘ (A x)) + log(A x)",
      lambda e: e["A"].T @ (e["x"] / (e["A"] @ e["x"])) + np.log(e["A"] @ e["x"]), True, G + "log.(A*x)' * x, x)",
      gen={"A": POS, "x": POS}, n=N),
    C("x^T sin(A x)", "x", "x A", lambda e: e["x"] @ np.sin(e["A"] @ e["x"]), "A^T (cos(A x) ∘ x) + sin(A x)",
      lambda e: e["A"].T @ (np.cos(e["A"] @ e["x"]) * e["x"]) + np.sin(e["A"] @ e["x"]), True,
      G + "x' * sin.(A * x), x)", n=N),
    C("(x^T A x)^2", "x", "x A", lambda e: (e["x"] @ e["A"] @ e["x"]) ** 2, "2 (x^T A^T x) A^T x + 2 (x^T A^T x) A x",
      lambda e: 2 * (e["x"] @ e["A"] @ e["x"]) * (e["A"].T + e["A"]) @ e["x"], True, G + "(x' * A * x) ^ 2, x)", n=N),
    C("(x^T A x)^2", "x", "x A", lambda e: (e["x"] @ e["A"] @ e["x"]) ** 2, "4 (x^T A x) A x",
      lambda e: 4 * (e["x"] @ e["A"] @ e["x"]) * e["A"] @ e["x"], False,
      G + "(x' * A * x) ^ 2, x), with A taken symmetric (wrong)", n=N),
    # the Cookbook's printed answers
    C("det(X)", "X", "X", lambda e: det(e["X"]), "det(X) X^-T", lambda e: det(e["X"]) * Xi(e).T, True, CB + "49",
      gen={"X": WELL}),
    C("det(X)", "X", "X", lambda e: det(e["X"]), "det(X) X^-1", lambda e: det(e["X"]) * Xi(e), False,
      CB + "49 without the transpose (wrong)", gen={"X": WELL}),
    C("logdet(X)", "X", "X", lambda e: np.log(det(e["X"])), "X^-T", lambda e: Xi(e).T, True, CB + "57", gen={"X": WELL}),
    C("det(A X B)", "X", "A X B", lambda e: det(e["A"] @ e["X"] @ e["B"]), "det(A X B) X^-T",
      lambda e: det(e["A"] @ e["X"] @ e["B"]) * Xi(e).T, True, CB + "51", gen={"X": WELL},
      where="A: k×k, X: k×k, B: k×k"),
    C("tr(X^3)", "X", "X", lambda e: tr(mp(e["X"], 3)), "3 (X^2)^T", lambda e: 3 * mp(e["X"], 2).T, True, CB + "121"),
    C("norm(x - a)", "x", "x a", lambda e: np.linalg.norm(e["x"] - e["a"]), "(x - a) / norm(x - a)",
      lambda e: (e["x"] - e["a"]) / np.linalg.norm(e["x"] - e["a"]), True, CB + "129"),
    C("norm(X)^2", "X", "X", lambda e: np.sum(e["X"] ** 2), "2 X", lambda e: 2 * e["X"], True, CB + "132",
      shapes={"X": (3, 4)}),
]
CHECKS = ids("check", CHECKS)

SYMPY = ids("sympy", SYMPY)
DIFFMATIC = ids("diffmatic", DIFFMATIC)
COOKBOOK = ids("cookbook", COOKBOOK)

# Cases indexcalc does not answer right today, with the reason (filled from a run of
# answercheck; tests/test_peer_cases.py marks them xfail(strict=True)). When a fix makes one
# pass, its XPASS fails the suite: delete its line here.
XFAIL = {
}

CASES = []
for _c in SYMPY + DIFFMATIC + COOKBOOK + CHECKS:
    if _c["id"] in XFAIL:
        _c["xfail"] = XFAIL[_c["id"]]
    CASES.append(_c)
