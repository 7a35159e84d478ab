"""codegen EQUATION --target numpy|torch|jax: each generated file runs its own gradient check
(python FILE) and passes; torch and JAX files only where those are installed (CI installs both).
Also: the planned passes (forward pieces kept for backward, common subexpressions) compute the
verified gradients, and bad input is one clear message (exit 2)."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from indexcalc import modulegen
from indexcalc.cli import main

from .references import assert_ruff_clean, hand_backward, load_module, softmax

ATTENTION = ("Y = softmax(Q K^T / sqrt(D)) V", "Q,K,V", "Q: n×D, K: m×D, V: m×p")
TANH = ("Y = tanh(X W + b)", "X,W,b", "X: S×M, W: M×N, b: 1×N")
CROSS_ENTROPY = ("L = -sum(T ∘ log(softmax(Z))) / S", "Z", "Z: S×C, T: S×C")
LAYERNORM = ("Y = (X - X 1 1^T / N) ⊘ sqrt((X - X 1 1^T / N).^2 1 1^T / N + e 1 1^T)", "X",
             "X: S×N, e: scalar")
SIGMOID_LOSS = ("L = sum(log(1 + exp(-(X w))))", "w", "X: S×M, w: M")
# a square parameter names its size twice: the constructor takes it once (was a SyntaxError)
SQUARE = ("Y = tanh(X W)", "X,W", "X: S×N, W: N×N")

# a bias spread down the rows inside a softmax: NumPy's outer of a (1, C) row (torch.outer refused it)
CE_LAYER = ("L = -sum(T ∘ log(softmax(X W + 1 b))) / S", "W,b", "X: S×M, W: M×C, b: 1×C, T: S×C")

EQUATIONS = {"attention": ATTENTION, "ce_layer": CE_LAYER, "tanh": TANH, "cross_entropy": CROSS_ENTROPY,
             "layernorm": LAYERNORM, "sigmoid_loss": SIGMOID_LOSS, "square": SQUARE}


def installed(name):
    return importlib.util.find_spec(name) is not None


TARGETS = [pytest.param("numpy"),
           pytest.param("torch", marks=pytest.mark.skipif(not installed("torch"), reason="torch is not installed")),
           pytest.param("jax", marks=pytest.mark.skipif(not installed("jax"), reason="jax is not installed"))]


def run_file(tmp_path, code, name):
    path = tmp_path / f"{name}.py"
    path.write_text(code, encoding="utf-8")
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("target", TARGETS)
def test_generated_file_runs_its_own_gradient_check(tmp_path, target):
    """One file per target with every equation above (one module each, one interpreter start)."""
    modules = [modulegen.build(eq, wrt, where, target, name=name.title().replace("_", ""))
               for name, (eq, wrt, where) in EQUATIONS.items()]
    p = run_file(tmp_path, modulegen.render(modules, target, "test"), "layers")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "gradient check: passed" in p.stdout


def test_codegen_command_writes_a_file_that_checks_itself(tmp_path):
    out = tmp_path / "attention.py"
    eq, wrt, where = ATTENTION
    assert main(["codegen", eq, "--wrt", wrt, "--where", where, "--target", "numpy", "-o", str(out)]) == 0
    p = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "passed" in p.stdout, p.stdout + p.stderr


def test_a_wrong_backward_fails_the_check(tmp_path):
    """The check can fail: a backward pass with a sign flipped exits 1."""
    eq, wrt, where = TANH
    code = modulegen.generate(eq, wrt, where, "numpy")
    broken = code.replace("d_X = ", "d_X = -", 1)
    assert broken != code
    p = run_file(tmp_path, broken, "broken")
    assert p.returncode == 1 and "FAILED" in p.stdout


@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
def test_a_wrong_torch_backward_fails_the_check(tmp_path):
    eq, wrt, where = TANH
    code = modulegen.generate(eq, wrt, where, "torch")
    broken = code.replace("d_W = ", "d_W = 1.001 * ", 1)
    assert broken != code
    assert run_file(tmp_path, broken, "broken").returncode == 1


def test_numpy_module_agrees_with_hand_written_numpy(tmp_path):
    eq, wrt, where = TANH
    path = tmp_path / "tanh_layer.py"
    path.write_text(modulegen.generate(eq, wrt, where, "numpy"), encoding="utf-8")
    m = load_module(path, "tanh_layer_test")
    rng = np.random.default_rng(3)
    layer = m.TanhLayer(3, 4)
    X, W, b = rng.normal(size=(5, 3)), rng.normal(size=(3, 4)), rng.normal(size=(1, 4))
    layer.params.update(W=W, b=b)
    Y = layer.forward(X)
    dY = rng.normal(size=Y.shape)
    dX = layer.backward(dY)
    G = dY * (1 - np.tanh(X @ W + b) ** 2)
    assert np.allclose(Y, np.tanh(X @ W + b))
    assert np.allclose(dX, G @ W.T) and np.allclose(layer.grads["W"], X.T @ G)
    assert np.allclose(layer.grads["b"], G.sum(axis=0, keepdims=True))


def test_backward_reuses_the_forward_pass_and_shares_subexpressions():
    eq, wrt, where = ATTENTION
    m = modulegen.build(eq, wrt, where, "numpy")
    fwd = " ".join(code for _, code in m.forward)
    bwd = " ".join(code for _, code in m.backward) + " ".join(code for _, _, code in m.grads)
    assert "_softmax(" in fwd and "_softmax(" not in bwd      # softmax computed once, in forward
    assert any(name.startswith("_f") for name in m.saved)      # and saved for backward
    for _, code in m.backward:                                 # each shared piece computed once
        assert bwd.count(code) == 1


def test_attention_backward_computes_the_score_gradient_once_as_hand_code_does(tmp_path):
    """∂L/∂K's piece is the transpose of ∂L/∂Q's (value numbering): one elementwise pass over
    the n×m scores for both, and the values agree with hand-written NumPy."""
    eq, wrt, where = ATTENTION
    m = modulegen.build(eq, wrt, where, "numpy")
    grads = {w: code for w, _, code in m.grads}
    shared = [name for name, _ in m.backward if name in grads["Q"] and f"{name}.T" in grads["K"]]
    assert shared, (m.backward, grads)
    path = tmp_path / "attention_layer.py"
    path.write_text(modulegen.generate(eq, wrt, where, "numpy"), encoding="utf-8")
    mod = load_module(path, "attention_layer_test")
    rng = np.random.default_rng(4)
    Q, K, V = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    layer = getattr(mod, m.cls)()
    Y = layer.forward(Q, K, V)
    dY = rng.normal(size=Y.shape)
    dQ, dK, dV = layer.backward(dY)
    z = Q @ K.T / np.sqrt(3)
    A = np.exp(z - z.max(axis=1, keepdims=True))
    A /= A.sum(axis=1, keepdims=True)
    dA = dY @ V.T
    dS = A * (dA - (A * dA).sum(axis=1, keepdims=True)) / np.sqrt(3)
    assert np.allclose(dQ, dS @ K) and np.allclose(dK, dS.T @ Q) and np.allclose(dV, A.T @ dY)


def test_a_scalar_outputs_upstream_joins_the_scalar_coefficient():
    """dL ((P - T) / S) is written (dL / S) * (P - T): one pass over the array, not two."""
    eq, wrt, where = CROSS_ENTROPY
    m = modulegen.build(eq, wrt, where, "numpy")
    (_, _, code), = m.grads
    assert code.startswith("(dL / T.shape[0]) * ") and code.count("dL") == 1


def test_parameters_default_and_explicit():
    eq, wrt, where = TANH
    assert [p.name for p in modulegen.build(eq, wrt, where, "numpy").params] == ["W", "b"]
    assert [p.name for p in modulegen.build(*ATTENTION, "numpy").params] == []
    assert [p.name for p in modulegen.build(eq, wrt, where, "numpy", params="").params] == []


@pytest.mark.parametrize("argv, message", [
    (["codegen", "Y = tanh(X W + b)", "--where", "X: S×M, W: M×N, b: 1×N"], "needs --wrt"),
    (["codegen", "Y = tanh(X W + b)", "--wrt", "W", "--where", "X: S×M, W: M×N, b: 1×N",
      "--params", "Z"], "not in the equation"),
    (["codegen", "Y = tanh(X W + b)", "--wrt", "W", "--where", "X: S×M, W: M×N, b: 1×N",
      "--params", "b"], "add it to --wrt"),
    (["codegen", "Y = tanh(X W + b)", "--wrt", "W", "--where", "X: S×M, W: M×N, b: 1×N",
      "--name", "not a name"], "cannot be a name"),
    (["codegen", "Y = tanh(ctx W)", "--wrt", "W", "--where", "ctx: S×M, W: M×N"], "cannot be a name"),
    (["codegen", "no_such_file"], "neither"),
    (["codegen", "problems/mlp.toml", "--wrt", "W"], "is for an equation"),
])
def test_bad_input_is_one_message_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("target", TARGETS[1:])
def test_problem_file_modules_for_torch_and_jax(tmp_path, target):
    from indexcalc.codegen import generate
    p = run_file(tmp_path, generate("problems/mlp.toml", target), "mlp")
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("eq, wrt, where, want", [
    ("Y = sigmoid(X)", "X", "X: S×N", "dY ∘ Y ∘ (1 - Y)"),
    ("Y = tanh(X W + b)", "W", "X: S×M, W: M×N, b: 1×N", "X^T (dY ∘ (1 - Y .^ 2))"),
])
def test_backprop_json_also_gives_the_gradient_with_the_output(eq, wrt, where, want):
    """SPEC §6: the gradient in terms of Y too (found by value where the derived form writes
    the output differently, 1 b + X W for X W + b); its NumPy code, given Y, is the gradient."""
    import json

    from indexcalc import backprop
    from indexcalc import evaluate as E
    from indexcalc.output import derive_json
    d = backprop(eq, wrt, where)
    r = json.loads(derive_json(d, "backprop"))["results"][0]
    assert r["with_output"]["closed_form"] == want
    rng = np.random.default_rng(4)
    sizes = {"S": 4, "M": 3, "N": 5}
    env = {n: rng.normal(size=tuple(sizes.get(x, x) for x in v.array_shape)) for n, v in d.variables.items()}
    env2d = {n: E.to_2d(a, d.variables[n]) for n, a in env.items()}
    env["Y"] = E.evaluate(d.rhs, env2d, sizes)
    got = eval(r["with_output"]["numpy"], {"np": np, **env})
    assert np.allclose(got, eval(r["numpy"], {"np": np, **env}))


def test_generated_files_pass_ruff(tmp_path):
    paths = []
    for target in ("numpy", "torch", "jax"):
        for name in ("attention", "tanh", "cross_entropy"):
            path = tmp_path / f"{name}_{target}.py"
            path.write_text(modulegen.generate(*EQUATIONS[name], target), encoding="utf-8")
            paths.append(str(path))
    assert_ruff_clean(paths)


@pytest.mark.parametrize("target", TARGETS)
def test_log_of_a_named_softmax_stays_stable_in_the_forward_pass(tmp_path, target):
    """softmax(Z) is cached for the backward pass, but the loss's log(softmax(Z)) is still
    written as log-softmax: at logits ±1000 the loss is 2000, not log(0) (NaN)."""
    eq, wrt, where = CROSS_ENTROPY
    m = modulegen.build(eq, wrt, where, target)
    path = tmp_path / f"ce_{target}.py"
    path.write_text(modulegen.render([m], target, "test"), encoding="utf-8")
    mod = load_module(path, f"ce_{target}_stable")
    Z, T = np.array([[1000.0, 0.0, -1000.0]]), np.array([[0.0, 0.0, 1.0]])
    if target == "numpy":
        loss = getattr(mod, m.cls)().forward(T=T, Z=Z)
    elif target == "torch":
        import torch
        loss = getattr(mod, f"{m.cls}Function").apply(torch.tensor(T), torch.tensor(Z)).item()
    else:
        import jax
        jax.config.update("jax_enable_x64", True)
        loss = float(getattr(mod, m.func)(T, Z))
    assert np.isclose(loss, 2000.0)


@pytest.mark.parametrize("offset", [0.0, 1e4, 1e6])
def test_layernorm_module_backward_agrees_with_hand_numpy_at_large_offsets(tmp_path, offset):
    """The generated backward (no double division, no centred sum left in) against the
    textbook (dY - mean(dY) - x̂ mean(dY ∘ x̂)) / σ, rows shifted by a large offset."""
    eq, wrt, where = LAYERNORM
    m = modulegen.build(eq, wrt, where, "numpy")
    (_, _, code), = m.grads
    assert "np.outer" not in code and "X.shape[1] ** 2" not in code + " ".join(c for _, c in m.backward)
    path = tmp_path / "layernorm.py"
    path.write_text(modulegen.render([m], "numpy", "test"), encoding="utf-8")
    mod = load_module(path, "layernorm_offsets")
    rng = np.random.default_rng(8)
    X, e = rng.normal(size=(6, 5)) + offset, 1e-5
    layer = getattr(mod, m.cls)()
    layer.forward(X=X, e=e)
    dY = rng.normal(size=X.shape)
    got = layer.backward(dY)
    xc = X - X.mean(axis=1, keepdims=True)
    s = np.sqrt((xc ** 2).mean(axis=1, keepdims=True) + e)
    xh = xc / s
    want = (dY - dY.mean(axis=1, keepdims=True) - xh * (dY * xh).mean(axis=1, keepdims=True)) / s
    assert np.max(np.abs(got - want)) <= 1e-8 * np.max(np.abs(want))


def test_a_generated_file_that_would_not_compile_is_never_written(tmp_path, monkeypatch, capsys):
    """A template bug that yields invalid Python is exit 3 (our bug), and no file is written."""
    from indexcalc import codegen
    monkeypatch.setattr(codegen, "compile", lambda *a: (_ for _ in ()).throw(SyntaxError("x", ("f", 3, 1, ""))),
                        raising=False)
    out = tmp_path / "m.py"
    eq, wrt, where = TANH
    assert main(["codegen", eq, "--wrt", wrt, "--where", where, "-o", str(out)]) == 3
    assert not out.exists()
    assert "does not compile" in capsys.readouterr().err


# ---- the order of operations: passes over the big arrays -----------------------------------------
class Counted(np.ndarray):
    """An array that logs every NumPy operation reading or writing `big` numbers or more: the
    passes a backward pass makes over its S×N (or n×m) data."""
    log: list = []
    big = 0

    @staticmethod
    def _plain(x):
        if isinstance(x, Counted):
            return x.view(np.ndarray)
        if isinstance(x, (list, tuple)):
            return type(x)(Counted._plain(y) for y in x)
        return x

    @staticmethod
    def _note(name, arrays, out):
        if max([np.size(x) for x in arrays if isinstance(x, np.ndarray)] + [np.size(out)]) >= Counted.big:
            Counted.log.append(name)
        return out.view(Counted) if isinstance(out, np.ndarray) else out

    def __array_ufunc__(self, ufunc, method, *inputs, **kw):
        plain = self._plain(inputs)
        if "out" in kw:
            kw["out"] = self._plain(kw["out"])
        return self._note(f"{ufunc.__name__}.{method}", plain, getattr(ufunc, method)(*plain, **kw))

    def __array_function__(self, func, types, args, kw):
        plain = self._plain(args)
        return self._note(func.__name__, plain, func(*plain, **self._plain(kw)))


# the test's names for bench/run.py's modules rows, whose hand-written backward passes it counts
_BENCH_NAME = {"cross_entropy": "softmax cross-entropy", "layernorm": "LayerNorm", "attention": "attention"}


@pytest.mark.parametrize("name, sizes, big", [
    ("cross_entropy", {"S": 12, "C": 7}, ("S", "C")),
    ("layernorm", {"S": 12, "N": 7}, ("S", "N")),
    ("attention", {"n": 12, "m": 11, "D": 3, "p": 2}, ("n", "m")),
])
def test_generated_numpy_backward_makes_no_more_passes_than_hand_numpy(tmp_path, name, sizes, big):
    """Operations over the S×N data (or attention's n×m scores), counted: the generated
    backward makes no more than hand-written NumPy (bench/run.py's modules rows). LayerNorm's
    /N once divided the whole S×N product; it scales the row vector now."""
    eq, wrt, where = EQUATIONS[name]
    m = modulegen.build(eq, wrt, where, "numpy", params="")
    path = tmp_path / f"{name}_passes.py"
    path.write_text(modulegen.render([m], "numpy", "test"), encoding="utf-8")
    mod = load_module(path, f"{name}_passes")
    rng = np.random.default_rng(0)
    values = {i.name: (1e-5 if i.kind == "scalar" else
                       rng.normal(size=tuple(sizes[d] if isinstance(d, str) else d for d in i.dims)))
              for i in m.inputs}
    layer = getattr(mod, m.cls)()
    out = layer.forward(**values)
    dY = rng.normal(size=np.shape(out)).view(Counted) if np.shape(out) else 1.0
    counted = {k: (x.view(Counted) if isinstance(x, np.ndarray) else x) for k, x in values.items()}
    Counted.big = sizes[big[0]] * sizes[big[1]]
    hand = hand_backward(_BENCH_NAME[name], counted, dY)
    layer._cache = {k: (x.view(Counted) if isinstance(x, np.ndarray) else x) for k, x in layer._cache.items()}
    Counted.log = []
    want = hand()
    theirs = list(Counted.log)
    Counted.log = []
    got = layer.backward(dY)
    ours = list(Counted.log)
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert np.allclose(np.asarray(g), np.asarray(w))
    assert theirs and len(ours) <= len(theirs), (ours, theirs)


def test_broadcast_last_keeps_values_and_spreads_vectors_late():
    """Every rewrite of broadcast_last is an identity (the equations' right sides and verified
    gradients keep their values) and moves work from matrices to vectors: LayerNorm's
    sqrt(v 1ᵀ / N + e 1ᵀ) becomes sqrt(v / N + e 1) 1ᵀ."""
    from indexcalc import nodes as N
    from indexcalc import verify as V
    from indexcalc.evaluate import evaluate
    from indexcalc.pipeline import backprop

    def matrix_ops(t):           # operations whose result is a full matrix, spreads not counted
        return sum(1 for n in t.walk() if len(n.shape) == 2 and 1 not in n.shape
                   and not isinstance(n, (N.Sym, N.Ones)) and modulegen._spread(n) is None)

    for name, (eq, wrt, where) in EQUATIONS.items():
        d = backprop(eq, wrt, where)
        point = V.sample(d.tree, d.variables, np.random.default_rng(2))
        for t in [d.rhs] + [r.closed for r in d.results]:
            new = modulegen.broadcast_last(t)
            assert np.allclose(evaluate(new, point.env2d, point.sizes), evaluate(t, point.env2d, point.sizes),
                               rtol=1e-12, atol=1e-14), name
            assert matrix_ops(new) <= matrix_ops(t), name
    d = backprop(*LAYERNORM)
    sqrt_of = [n for n in modulegen.broadcast_last(d.rhs).walk() if isinstance(n, N.Func) and n.name == "sqrt"]
    assert sqrt_of and all(n.shape[1] == 1 for n in sqrt_of)
    sqrt_before = [n for n in d.rhs.walk() if isinstance(n, N.Func) and n.name == "sqrt"]
    assert all(n.shape[1] != 1 for n in sqrt_before)


@pytest.mark.parametrize("target", TARGETS)
def test_softmax_cross_entropy_keeps_exponentials_and_row_sums(tmp_path, target):
    """The forward pass keeps E = exp(Z - m 1ᵀ) and its row sums s (one exp, no quotient
    built); the backward multiplies E by (T 1 ⊘ s) 1ᵀ, as jax.grad's own graph does. At
    logits ±1000 the loss and the gradient agree with the stable textbook (P - T) / S."""
    eq, wrt, where = CROSS_ENTROPY
    m = modulegen.build(eq, wrt, where, target)
    fwd = " ".join(c for _, c in m.forward)
    bwd = " ".join(c for _, c in m.backward) + " ".join(c for _, _, c in m.grads)
    assert fwd.count("exp(") == 1 and fwd.count("max(") == 1 and "softmax" not in fwd and "exp(" not in bwd
    assert sorted(m.kind_of(n) for n in m.saved if n != "T") == ["matrix", "vector"]
    attention = modulegen.build(*ATTENTION, target)      # where softmax(Q Kᵀ) itself is needed: whole
    assert "softmax" in " ".join(c for _, c in attention.forward)
    path = tmp_path / f"ce_parts_{target}.py"
    path.write_text(modulegen.render([m], target, "test"), encoding="utf-8")
    mod = load_module(path, f"ce_parts_{target}")
    Z = np.array([[1000.0, 0.0, -1000.0], [3.0, -2.0, 0.5]])
    T = np.array([[0.0, 0.0, 1.0], [0.2, 0.3, 0.5]])
    if target == "numpy":
        layer = getattr(mod, m.cls)()
        loss = layer.forward(T=T, Z=Z)
        grad = layer.backward(1.0)
    elif target == "torch":
        import torch
        z = torch.tensor(Z, requires_grad=True)
        out = getattr(mod, f"{m.cls}Function").apply(torch.tensor(T), z)
        loss, = (out.item(),)
        grad = torch.autograd.grad(out, z)[0].numpy()
    else:
        import jax
        jax.config.update("jax_enable_x64", True)
        loss, g = jax.value_and_grad(lambda z: getattr(mod, m.func)(T, z))(Z)
        loss, grad = float(loss), np.asarray(g)
    P = softmax(Z)
    log_p = Z - Z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    assert np.isclose(loss, -np.sum(T * log_p) / 2, rtol=1e-12)
    assert np.allclose(grad, (P * T.sum(axis=1, keepdims=True) - T) / 2, rtol=1e-12, atol=1e-15)


def test_softmax_parts_and_broadcast_last_are_identities():
    """softmax(Z) = E ⊘ (s 1ᵀ), log(softmax(Z)) = (Z - m 1ᵀ) - log(s) 1ᵀ and
    (u 1ᵀ) ∘ (E ⊘ (s 1ᵀ)) = E ∘ ((u ⊘ s) 1ᵀ), at ordinary and at extreme logits."""
    from indexcalc import nodes as N
    from indexcalc.evaluate import evaluate
    Z, u = N.Sym("Z", ("S", "C")), N.Sym("u", ("S", 1))
    P = N.Softmax(Z, Z.shape)
    trees = [P, N.Func("log", P, Z.shape), N.Hadamard(modulegen._spread_like(u, Z.shape), P, Z.shape)]
    rng = np.random.default_rng(1)
    for scale in (1.0, 1000.0):
        env = {"Z": rng.normal(size=(4, 3)) * scale, "u": rng.normal(size=(4, 1))}
        for t in trees:
            parted = modulegen.broadcast_last(modulegen.softmax_parts(t))
            assert not any(isinstance(n, N.Softmax) for n in parted.walk())
            if isinstance(t, N.Func):            # log-softmax, stable (log(P) is -inf at ±1000)
                want = env["Z"] - env["Z"].max(axis=1, keepdims=True)
                want -= np.log(np.exp(want).sum(axis=1, keepdims=True))
            else:
                want = evaluate(t, env, {"S": 4, "C": 3})
            assert np.allclose(evaluate(parted, env, {"S": 4, "C": 3}), want, rtol=1e-12, atol=1e-300)
    spread_product = modulegen.broadcast_last(modulegen.softmax_parts(trees[2]))
    assert not any(isinstance(n, N.HadDiv) and n.shape == Z.shape for n in spread_product.walk())


def test_forward_computes_a_piece_once_and_a_diagonal_stays_a_vector(tmp_path):
    """X W, inside log-softmax's shifted Z - m(X W) 1ᵀ twice, is computed once; the backward's
    (diag(T 1) - diag(v)) softmax(Z) is (T 1 - v) 1ᵀ ∘ softmax(Z), not an S×S diagonal matrix
    times the S×C softmax. Both files pass their own gradient check."""
    layer = modulegen.build("L = -sum(T ∘ log(softmax(X W))) / S", "W", "X: S×M, W: M×C, T: S×C", "numpy")
    assert " ".join(c for _, c in layer.forward).count("X @ W") == 1
    mixed = modulegen.build("L = -sum(T ∘ log(softmax(Z))) + sum(softmax(Z) ∘ Z)", "Z", "Z: S×C, T: S×C",
                            "numpy")
    assert "np.diag" not in " ".join(c for _, c in mixed.backward) + " ".join(c for _, _, c in mixed.grads)
    mixed.cls, mixed.func = "Mixed", "mixed"
    p = run_file(tmp_path, modulegen.render([layer, mixed], "numpy", "test"), "pieces_once")
    assert p.returncode == 0 and "gradient check: passed" in p.stdout, p.stdout + p.stderr


PIECEWISE_LAYERS = [
    # a value match at a point where X W + 5 > 0 everywhere took sign(X W + 5) for sign(Y) with
    # Y = abs(X W + 5) (backprop printed it "written with Y"), and dY ∘ step(Y) for 0.1 dY +
    # 0.9 (dY ∘ step(Y)) in leaky_relu's backward: the code was wrong wherever X W + 5 < 0
    ("Y = abs(X W + 5)", lambda z: np.sign(z + 5)),
    ("Y = leaky_relu(X W + 4, 0.1)", lambda z: np.where(z + 4 > 0, 1.0, 0.1)),
    ("Y = elu(X W + 3)", lambda z: np.where(z + 3 > 0, 1.0, np.exp(z + 3))),
    ("Y = relu(X W) + relu(X W - 2)", lambda z: (z > 0) * 1.0 + (z > 2)),
    ("Y = sign(X W + 5) ∘ (X W)", lambda z: np.sign(z + 5)),
    # index notation's modules share values on the generated code (codeshare): np.sign(Y) too
    ("Y[i,j] = abs(Σ_k X[i,k] W[k,j] + 5)", lambda z: np.sign(z + 5)),
]


@pytest.mark.parametrize("eq,slope", PIECEWISE_LAYERS, ids=[c[0] for c in PIECEWISE_LAYERS])
def test_piecewise_layer_backward_right_on_both_sides_of_the_kink(tmp_path, eq, slope):
    from indexcalc import backprop
    where = "X: S×M, W: M×N"
    path = tmp_path / "piecewise.py"
    path.write_text(modulegen.generate(eq, "W", where, "numpy"), encoding="utf-8")
    m = load_module(path, "piecewise_test")
    cls = next(v for k, v in vars(m).items() if isinstance(v, type) and hasattr(v, "backward"))
    layer = cls(3, 5)
    rng = np.random.default_rng(4)
    X, W = rng.normal(size=(6, 3)) * 3, rng.normal(size=(3, 5)) * 3      # X W from about -30 to 30
    layer.params["W"] = W
    dY = rng.normal(size=(6, 5))
    layer.forward(X)
    layer.backward(dY)
    want = X.T @ (dY * slope(X @ W))
    assert np.allclose(layer.grads["W"], want)
    d = backprop(eq, "W", where)
    from indexcalc.fold import folded_forms
    for form in folded_forms(d).values():
        from indexcalc.evaluate import evaluate
        Y = evaluate(d.rhs, {"X": X, "W": W}, {"S": 6, "M": 3, "N": 5})
        got = evaluate(form, {"X": X, "W": W, "dY": dY, "Y": Y}, {"S": 6, "M": 3, "N": 5})
        assert np.allclose(got, want)
