"""codegen EQUATION for index notation (SPEC §1.3) and the matrix language on tensors (§1.2)
with --target numpy, torch and jax: one implementation (modulegen._build_index) whose NumPy
code (einsum, window views, pads, reversed slices, batched @) each target writes in its own
terms. Per target: the generated forward and backward against NumPy written by hand (loops for
the convolutions, einsum and batched @ otherwise) and central differences of that hand-written
forward; `python FILE` runs the file's own gradient check and exits 0 (exit 1 when a gradient
is wrong). torch and JAX cases are skipped where those are not installed (CI installs both)."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from indexcalc import modulegen
from indexcalc.cli import main
from indexcalc.shapes import Variables

from .references import assert_ruff_clean, conv1d_valid, conv2d_backward_loops, conv2d_valid, load_module, softmax


def installed(name):
    return importlib.util.find_spec(name) is not None


TARGETS = [pytest.param("numpy"),
           pytest.param("torch", marks=pytest.mark.skipif(not installed("torch"), reason="torch is not installed")),
           pytest.param("jax", marks=pytest.mark.skipif(not installed("jax"), reason="jax is not installed"))]


# ---- hand-written references: (forward(values) -> Y, backward(values, dY) -> {name: gradient}) ----
def linear_fwd(v):
    return v["X"] @ v["W"].T + v["b"]


def linear_bwd(v, dY):
    return {"X": dY @ v["W"], "W": dY.T @ v["X"], "b": dY.sum(axis=0)}


def conv1d_fwd(v):
    return conv1d_valid(v["h"], v["w"])


def conv1d_bwd(v, da):
    h, w = v["h"], v["w"]
    k = len(w)
    dh, dw = np.zeros_like(h), np.zeros_like(w)
    for n in range(len(da)):
        dh[n:n + k] += da[n] * w
        dw += da[n] * h[n:n + k]
    return {"h": dh, "w": dw}


def conv2d_fwd(v):
    return conv2d_valid(v["X"], v["F"], v["b"])


def conv2d_bwd(v, dY):
    return dict(zip("XFb", conv2d_backward_loops(v["X"], v["F"], dY)))


def attention_fwd(v):
    Q, K, V = v["Q"], v["K"], v["V"]
    return softmax(Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])) @ V


def attention_bwd(v, dY):
    Q, K, V = v["Q"], v["K"], v["V"]
    r = np.sqrt(Q.shape[-1])
    A = softmax(Q @ np.swapaxes(K, -1, -2) / r)
    dA = dY @ np.swapaxes(V, -1, -2)
    dS = A * (dA - np.sum(dA * A, axis=-1, keepdims=True)) / r
    return {"Q": dS @ K, "K": np.swapaxes(dS, -1, -2) @ Q, "V": np.swapaxes(A, -1, -2) @ dY}


# name: (equation, wrt, where, the values' shapes, forward, backward)
INDEX_CASES = {
    "linear": ("Y[n,j] = Σ_p X[n,p] W[j,p] + b[j]", "X,W,b", "X: N×P, W: J×P, b: J",
               {"X": (4, 3), "W": (5, 3), "b": (5,)}, linear_fwd, linear_bwd),
    "conv1d": ("a[n] = Σ_j h[n+j-1] w[j]", "h,w", "h: d, w: k", {"h": (7,), "w": (3,)}, conv1d_fwd, conv1d_bwd),
    "conv2d": ("Y[n,o,i,j] = Σ_{c,p,q} X[n,c,i+p-1,j+q-1] F[o,c,p,q] + b[o]", "X,F,b",
               "X: N×C×H×W, F: O×C×R×S, b: O", {"X": (2, 3, 5, 6), "F": (4, 3, 2, 3), "b": (4,)},
               conv2d_fwd, conv2d_bwd),
    "attention": ("O[b,i,d] = (Σ_j exp(Σ_k Q[b,i,k] K[b,j,k] / sqrt(D)) V[b,j,d]) / "
                  "Σ_j exp(Σ_k Q[b,i,k] K[b,j,k] / sqrt(D))", "Q,K,V", "Q: B×S×D, K: B×T×D, V: B×T×E",
                  {"Q": (2, 3, 4), "K": (2, 5, 4), "V": (2, 5, 3)}, attention_fwd, attention_bwd),
}


def batched_linear_fwd(v):
    return v["X"] @ v["W"] + v["b"]


def batched_linear_bwd(v, dY):
    X = v["X"]
    return {"X": dY @ v["W"].T, "W": np.einsum("bsd,bse->de", X, dY), "b": dY.sum(axis=(0, 1))}


def batched_tanh_fwd(v):
    return np.tanh(v["X"] @ v["W"] + v["b"])


def batched_tanh_bwd(v, dY):
    Y = batched_tanh_fwd(v)
    return batched_linear_bwd(v, dY * (1 - Y ** 2))


def _phi(z):
    from math import erf
    return 0.5 * (1 + np.vectorize(erf)(z / np.sqrt(2)))


def activation_bwd(slope):
    """∂L/∂X and ∂L/∂W of f(X W) given f'(Z) as slope(Z)."""
    def bwd(v, dY):
        dZ = dY * slope(v["X"] @ v["W"])
        return {"X": dZ @ v["W"].T, "W": np.einsum("bsd,bse->de", v["X"], dZ)}
    return bwd


# the matrix language on tensors (SPEC §1.2): batched @ over the leading axes, broadcasting
TENSOR_CASES = {
    "batched_linear": ("Y = X W + b", "X,W,b", "X: B×S×D, W: D×E, b: E",
                       {"X": (2, 3, 4), "W": (4, 5), "b": (5,)}, batched_linear_fwd, batched_linear_bwd),
    "batched_tanh": ("Y = tanh(X W + b)", "X,W,b", "X: B×S×D, W: D×E, b: 1×E",
                     {"X": (3, 2, 4), "W": (4, 3), "b": (1, 3)}, batched_tanh_fwd,
                     lambda v, dY: {**batched_tanh_bwd(v, dY),
                                    "b": (dY * (1 - batched_tanh_fwd(v) ** 2)).sum(axis=(0, 1))[None, :]}),
    "attention": ("Y = softmax(Q K^T / sqrt(D)) V", "Q,K,V", "Q: B×S×D, K: B×T×D, V: B×T×E",
                  {"Q": (2, 3, 4), "K": (2, 5, 4), "V": (2, 5, 3)}, attention_fwd, attention_bwd),
    # element-wise functions whose NumPy code takes numbers (np.maximum(Z, 0)) or math.erf
    "relu": ("Y = relu(X W)", "X,W", "X: B×S×D, W: D×E", {"X": (2, 3, 4), "W": (4, 3)},
             lambda v: np.maximum(v["X"] @ v["W"], 0), activation_bwd(lambda z: (z > 0) * 1.0)),
    "gelu": ("Y = gelu(X W)", "X,W", "X: B×S×D, W: D×E", {"X": (2, 3, 4), "W": (4, 3)},
             lambda v: (v["X"] @ v["W"]) * _phi(v["X"] @ v["W"]),
             activation_bwd(lambda z: _phi(z) + z * np.exp(-z ** 2 / 2) / np.sqrt(2 * np.pi))),
}


def _erf(z):
    from math import erf
    return np.vectorize(erf)(z)


def matrix_activation(f, slope):
    """Y = f(X W) of matrices: the forward and ∂L/∂X, ∂L/∂W given f and f' by hand."""
    def bwd(v, dY):
        dZ = dY * slope(v["X"] @ v["W"])
        return {"X": dZ @ v["W"].T, "W": v["X"].T @ dZ}
    return (lambda v: f(v["X"] @ v["W"])), bwd


# the matrix language's element-wise functions whose NumPy code has no row in a target's names
# (math.erf vectorised in gelu, Φ and erf: exit 2 for torch, a crash in the JAX file; elu's
# np.minimum(z, 0) of a number: a crash in the torch file; tan: exit 2 for torch)
MATRIX_CASES = {
    name: (f"Y = {name}(X W)", "X,W", "X: S×D, W: D×E", {"X": (3, 4), "W": (4, 2)}, *matrix_activation(f, slope))
    for name, f, slope in [
        ("gelu", lambda z: z * _phi(z), lambda z: _phi(z) + z * np.exp(-z ** 2 / 2) / np.sqrt(2 * np.pi)),
        ("erf", _erf, lambda z: 2 / np.sqrt(np.pi) * np.exp(-z ** 2)),
        ("elu", lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))), lambda z: np.where(z > 0, 1.0, np.exp(z))),
        ("tan", np.tan, lambda z: 1 / np.cos(z) ** 2)]}


# ---- running a generated module, per target ------------------------------------------------------
def load(tmp_path, code, name):
    path = tmp_path / f"{name}.py"
    path.write_text(code, encoding="utf-8")
    return load_module(path, name)


def run_numpy(mod, m, values, dY):
    layer = getattr(mod, m.cls)(*[m.sizes[s] for s in m.size_args])
    for p in m.params:
        layer.params[p.name] = values[p.name]
    Y = layer.forward(**{i.name: values[i.name] for i in m.data})
    got = layer.backward(dY)
    data = [i.name for i in m.data if i.wrt]
    grads = dict(zip(data, got if len(data) > 1 else [got]))
    return Y, {**grads, **layer.grads}


def run_torch(mod, m, values, dY):
    import torch
    args = [torch.tensor(values[i.name], requires_grad=True) for i in m.inputs]
    Y = getattr(mod, f"{m.cls}Function").apply(*args)
    (Y * torch.tensor(dY)).sum().backward()
    return Y.detach().numpy(), {i.name: a.grad.numpy() for i, a in zip(m.inputs, args) if a.grad is not None}


def run_jax(mod, m, values, dY):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    args = [jnp.asarray(values[i.name]) for i in m.inputs]
    Y, vjp = jax.vjp(getattr(mod, m.func), *args)
    return np.asarray(Y), {i.name: np.asarray(g) for i, g in zip(m.inputs, vjp(jnp.asarray(dY)))}


RUN = {"numpy": run_numpy, "torch": run_torch, "jax": run_jax}


def central_difference(forward, values, name, dY, h=1e-6):
    """∂(Σ dY ∘ Y)/∂values[name] of the hand-written forward, entry by entry."""
    x = values[name]
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        keep = x[idx]
        x[idx] = keep + h
        up = np.sum(dY * forward(values))
        x[idx] = keep - h
        down = np.sum(dY * forward(values))
        x[idx] = keep
        g[idx] = (up - down) / (2 * h)
    return g


def check_case(tmp_path, target, case, name):
    eq, wrt, where, shapes, fwd, bwd = case
    m = modulegen.build(eq, wrt, where, target)
    mod = load(tmp_path, modulegen.render([m], target, "test"), f"{name}_{target}")
    rng = np.random.default_rng(3)
    values = {n: rng.normal(size=s) for n, s in shapes.items()}
    want_y = fwd(values)
    dY = rng.normal(size=want_y.shape)
    Y, grads = RUN[target](mod, m, values, dY)
    np.testing.assert_allclose(Y, want_y, rtol=1e-10, atol=1e-12)
    want = bwd(values, dY)
    assert set(grads) == set(want)
    for n, g in grads.items():
        np.testing.assert_allclose(g, want[n], rtol=1e-9, atol=1e-11, err_msg=f"∂L/∂{n}")
        np.testing.assert_allclose(g, central_difference(fwd, values, n, dY), rtol=1e-6, atol=1e-7,
                                   err_msg=f"∂L/∂{n} against central differences")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(INDEX_CASES))
def test_index_module_against_hand_written_numpy(tmp_path, target, name):
    """Each target's module of an index-notation equation (conv1d and conv2d through window
    views: torch's unfold, a gather in JAX) computes what the loops and einsums compute."""
    check_case(tmp_path, target, INDEX_CASES[name], name)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(TENSOR_CASES))
def test_tensor_module_against_hand_written_numpy(tmp_path, target, name):
    """codegen of the matrix language on tensors (it was exit 2 for every target): batched
    attention and a rank-3 linear layer against NumPy's batched @ by hand."""
    check_case(tmp_path, target, TENSOR_CASES[name], name)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(MATRIX_CASES))
def test_matrix_activation_module_against_hand_written_numpy(tmp_path, target, name):
    """Each target's module of f(X W) for matrices, f an element-wise function whose NumPy code
    the target writes in its own terms (torch.erf, jax.lax.erf, torch's elu and tan)."""
    check_case(tmp_path, target, MATRIX_CASES[name], name)


def layer_norm_fwd(v):
    Z = v["X"] - v["X"].mean(axis=1, keepdims=True)
    return Z / np.sqrt((Z ** 2).mean(axis=1, keepdims=True) + v["ε"]) * v["γ"] + v["β"]


def layer_norm_bwd(v, dY):
    """LayerNorm's backward pass as courses write it: x̂ = (x - μ)/σ, ∂L/∂x̂ = dY γ."""
    Z = v["X"] - v["X"].mean(axis=1, keepdims=True)
    s = np.sqrt((Z ** 2).mean(axis=1, keepdims=True) + v["ε"])
    xh, g = Z / s, dY * v["γ"]
    dX = (g - g.mean(axis=1, keepdims=True) - xh * (g * xh).mean(axis=1, keepdims=True)) / s
    return {"X": dX, "γ": (dY * xh).sum(axis=0, keepdims=True), "β": dY.sum(axis=0, keepdims=True)}


LAYER_NORM = ("Y = ((X - mean(X, 1) 1^T) ⊘ sqrt(mean((X - mean(X, 1) 1^T) .^ 2, 1) 1^T + ε)) ∘ γ + β",
              "X,γ,β", "X: S×N, γ: 1×N, β: 1×N, ε: scalar")


@pytest.mark.parametrize("target", TARGETS)
def test_layer_norm_with_greek_names(tmp_path, target):
    """LayerNorm written with its usual γ, β, ε: the module takes them by those names (they
    are Python identifiers; codegen refused them as not plain ASCII), its file checks itself
    and passes ruff, and its backward pass is the one written by hand."""
    out = tmp_path / f"layer_norm_{target}.py"
    assert main(["codegen", *LAYER_NORM[:1], "--wrt", LAYER_NORM[1], "--where", LAYER_NORM[2],
                 "--target", target, "-o", str(out)]) == 0
    p = run_file(out)
    assert p.returncode == 0 and "gradient check: passed" in p.stdout, p.stdout + p.stderr
    assert_ruff_clean([out])
    rng = np.random.default_rng(5)
    values = {"X": rng.normal(size=(3, 4)), "γ": rng.normal(size=(1, 4)), "β": rng.normal(size=(1, 4)), "ε": 0.25}
    m = modulegen.build(*LAYER_NORM, target)
    mod = load(tmp_path, modulegen.render([m], target, "test"), f"ln_{target}")
    dY = rng.normal(size=(3, 4))
    if target == "numpy":
        layer = getattr(mod, m.cls)(*[m.sizes[s] for s in m.size_args])
        for q in m.params:
            layer.params[q.name] = values[q.name]
        Y = layer.forward(**{i.name: values[i.name] for i in m.data})
        grads = {"X": layer.backward(dY), **layer.grads}
    else:
        Y, grads = RUN[target](mod, m, values, dY)
    np.testing.assert_allclose(Y, layer_norm_fwd(values), rtol=1e-10, atol=1e-12)
    want = layer_norm_bwd(values, dY)
    for n in want:
        np.testing.assert_allclose(grads[n], want[n], rtol=1e-8, atol=1e-10, err_msg=f"∂L/∂{n}")


@pytest.mark.parametrize("target", TARGETS)
def test_tensor_module_files_check_themselves(tmp_path, target):
    """`indexcalc codegen "Y = softmax(Q K^T / sqrt(D)) V" ... --target T -o FILE` and the
    batched linear layer, then `python FILE`: the file's own gradient check passes."""
    for name in ("attention", "batched_linear"):
        eq, wrt, where, *_ = TENSOR_CASES[name]
        out = tmp_path / f"{name}_{target}.py"
        assert main(["codegen", eq, "--wrt", wrt, "--where", where, "--target", target, "-o", str(out)]) == 0
        p = run_file(out)
        assert p.returncode == 0 and "gradient check: passed" in p.stdout, p.stdout + p.stderr


def test_tensor_module_parameters_and_names():
    """The data shares the output's first (batch) axis: X and attention's Q, K, V; W and b are
    parameters, W: D×E starting normal with fan-in D. Attention is named as in the matrix language."""
    eq, wrt, where, *_ = TENSOR_CASES["batched_linear"]
    m = modulegen.build(eq, wrt, where, "torch")
    assert [(p.name, p.fan_in) for p in m.params] == [("W", ("D",)), ("b", ())]
    assert m.size_args == ["D", "E"]
    eq, wrt, where, *_ = TENSOR_CASES["attention"]
    m = modulegen.build(eq, wrt, where, "jax")
    assert m.params == [] and m.cls == "AttentionLayer" and m.func == "attention_layer"


def run_file(path):
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("target", TARGETS)
def test_index_module_files_check_themselves(tmp_path, target):
    """`indexcalc codegen EQUATION --target T -o FILE` for the convolution (it was exit 2 for
    torch and JAX), then `python FILE`: its own gradient check passes (torch gradcheck, JAX
    check_grads, central differences for NumPy)."""
    eq, wrt, where, *_ = INDEX_CASES["conv2d"]
    out = tmp_path / f"conv_{target}.py"
    assert main(["codegen", eq, "--wrt", wrt, "--where", where, "--target", target, "-o", str(out)]) == 0
    p = run_file(out)
    assert p.returncode == 0 and "gradient check: passed" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_index_modules_in_one_file_check_themselves(tmp_path, target):
    """The other cases in one file pass their check; with a gradient's sign flipped it exits 1."""
    modules = [modulegen.build(eq, wrt, where, target, name=name.title())
               for name, (eq, wrt, where, *_) in INDEX_CASES.items() if name != "conv2d"]
    text = modulegen.render(modules, target, "test")
    path = tmp_path / f"index_{target}.py"
    path.write_text(text, encoding="utf-8")
    p = run_file(path)
    assert p.returncode == 0 and "gradient check: passed" in p.stdout, p.stdout + p.stderr
    assert text.count("d_W = ") == 1
    path.write_text(text.replace("d_W = ", "d_W = -"), encoding="utf-8")
    p = run_file(path)
    assert p.returncode == 1 and "FAILED" in p.stdout, p.stdout + p.stderr


# ---- parameters and their initialisation ---------------------------------------------------------
def test_index_parameters_default_to_the_variables_off_the_batch_axis():
    """--wrt variables whose first axis is not the output's are parameters (W, b, a kernel F);
    the data shares the output's first axis (X; attention's Q, K, V)."""
    eq, wrt, where, *_ = INDEX_CASES["conv2d"]
    assert [p.name for p in modulegen.build(eq, wrt, where).params] == ["F", "b"]
    eq, wrt, where, *_ = INDEX_CASES["attention"]
    assert modulegen.build(eq, wrt, where).params == []
    eq, wrt, where, *_ = INDEX_CASES["conv1d"]         # h[n+j-1] holds a's index n: data
    assert [p.name for p in modulegen.build(eq, wrt, where).params] == ["w"]
    eq, wrt, where, *_ = INDEX_CASES["linear"]
    assert [p.name for p in modulegen.build(eq, wrt, where).params] == ["W", "b"]
    assert [p.name for p in modulegen.build(eq, wrt, where, params="W").params] == ["W"]
    assert modulegen.build(eq, wrt, where, params="").params == []


def test_index_module_files_pass_ruff(tmp_path):
    paths = []
    for target in ("numpy", "torch", "jax"):
        for name in ("conv1d", "conv2d"):
            eq, wrt, where, *_ = INDEX_CASES[name]
            for params in (None, wrt):                  # with data, and without (nothing returned)
                path = tmp_path / f"{name}_{target}_{len(paths)}.py"
                path.write_text(modulegen.generate(eq, wrt, where, target, params=params), encoding="utf-8")
                paths.append(str(path))
        for name in ("attention", "batched_linear", "gelu"):
            path = tmp_path / f"{name}_{target}.py"
            path.write_text(modulegen.generate(*TENSOR_CASES[name][:3], target), encoding="utf-8")
            paths.append(str(path))
    assert_ruff_clean(paths)


@pytest.mark.parametrize("eq, wrt, where, param, sizes, fan_in", [
    # a kernel sums over its channels and window: C·R·S (it started at zeros)
    (INDEX_CASES["conv2d"][0], "X,F,b", INDEX_CASES["conv2d"][2], "F", {"O": 32, "C": 8, "R": 3, "S": 5}, 120),
    # W[j,p] of Σ_p X[n,p] W[j,p]: P, its second axis (it was scaled by its first, J)
    (INDEX_CASES["linear"][0], "X,W,b", INDEX_CASES["linear"][2], "W", {"J": 400, "P": 9}, 9),
    # the matrix language: W: N×M of X W^T is summed over M
    ("Y = X W^T + b", "X,W,b", "X: S×M, W: N×M, b: 1×N", "W", {"N": 400, "M": 16}, 16),
    ("Y = tanh(X W + b)", "X,W,b", "X: S×M, W: M×N, b: 1×N", "W", {"M": 16, "N": 400}, 16),
])
def test_weights_start_normal_with_their_fan_in(tmp_path, eq, wrt, where, param, sizes, fan_in):
    m = modulegen.build(eq, wrt, where, "numpy")
    mod = load(tmp_path, modulegen.render([m], "numpy", "test"), "init")
    layer = getattr(mod, m.cls)(*[sizes[s] for s in m.size_args], rng=np.random.default_rng(0))
    w = layer.params[param]
    assert w.shape == tuple(sizes[d] for d in m.params[0].dims)
    assert abs(w.std() / (1 / np.sqrt(fan_in)) - 1) < 0.1 and abs(w.mean()) < 0.1 / np.sqrt(fan_in)
    for p in m.params[1:]:                      # biases start at zero
        assert not np.any(layer.params[p.name])


LAYERNORM = ("Y[b,i] = (X[b,i] - Σ_k X[b,k] / D) / sqrt(Σ_k (X[b,k] - Σ_l X[b,l] / D)^2 / D + eps) * g[i] + be[i]",
             "X,g,be", "X: B×D, eps: scalar")


@pytest.mark.parametrize("eq, wrt, where, starts", [
    # a gain starts at ones (at zeros the output is constant and no gradient reaches X), a shift at zeros
    (*LAYERNORM, {"g": ("ones", ()), "be": ("zeros", ())}),
    ("Y = X diag(g)", "X,g", "X: S×N, g: N", {"g": ("ones", ())}),        # g[j] after sifting δ
    # a weight vector is summed over: normal with its fan-in (a 1-D kernel, X w)
    ("a[n] = Σ_j h[n+j-1] w[j]", "h,w", "h: d, w: k", {"w": ("normal", ("k",))}),
    ("y = X w", "X,w", "X: S×M, w: M", {"w": ("normal", ("M",))}),
    # sums inside a function count, sums outside it do not (V's k is not W's fan-in)
    ("Y = tanh(X W) V", "X,W,V", "X: S×M, W: M×N, V: N×E", {"W": ("normal", ("M",)), "V": ("normal", ("N",))}),
    ("Y = softmax(X W) V", "X,W,V", "X: B×S×M, W: M×N, V: N×E", {"W": ("normal", ("M",)), "V": ("normal", ("N",))}),
])
def test_parameters_start_as_their_place_says(eq, wrt, where, starts):
    m = modulegen.build(eq, wrt, where, "numpy")
    assert {p.name: (p.start, p.fan_in) for p in m.params} == starts


def test_layer_norm_gain_starts_at_one(tmp_path):
    """The generated LayerNorm (index notation) starts as the identity normalisation: g = 1, be = 0."""
    m = modulegen.build(*LAYERNORM, "numpy")
    mod = load(tmp_path, modulegen.render([m], "numpy", "test"), "layernorm")
    layer = mod.Layer(5)
    assert np.all(layer.params["g"] == 1) and not np.any(layer.params["be"])
    X = np.random.default_rng(0).normal(size=(3, 5))
    Y = layer.forward(X, 1e-5)
    want = (X - X.mean(1, keepdims=True)) / np.sqrt(X.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(Y, want, rtol=1e-10)


@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
def test_torch_kernel_starts_normal_with_its_fan_in(tmp_path):
    import torch
    eq, wrt, where, *_ = INDEX_CASES["conv2d"]
    m = modulegen.build(eq, wrt, where, "torch")
    mod = load(tmp_path, modulegen.render([m], "torch", "test"), "init_torch")
    torch.manual_seed(0)
    layer = mod.Layer(32, 8, 3, 5)
    assert abs(layer.F.detach().std().item() * np.sqrt(120) - 1) < 0.1
    assert not layer.b.detach().any()


# ---- what a target cannot write: exit 2, one sentence ---------------------------------------------
@pytest.mark.parametrize("target, code, message", [
    ("torch", "np.lib.stride_tricks.sliding_window_view(x, 3)", "window view"),
    ("jax", "np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(0, 1), writeable=True)", "window view"),
    ("torch", "x[1:, ::-1]", "slice"),
    ("torch", "np.pad(x, ((1, 1),), mode='edge')", "padding"),
    ("torch", "np.polyval(x, 2)", "np.polyval"),
])
def test_code_a_target_cannot_write_is_refused(target, code, message):
    from indexcalc.errors import IndexCalcError, UnsupportedError
    printer = modulegen.TARGETS[target](Variables({}, {}))
    with pytest.raises(IndexCalcError, match=message) as e:
        printer.array_code(code, "x")
    assert e.value.exit_status == 2 and isinstance(e.value, (UnsupportedError, IndexCalcError))


SOFTMAX_LAMBDA = ("(lambda z: (lambda e: e / np.sum(e, axis=-1, keepdims=True))(np.exp(z - np.max(z, axis=-1, "
                  "keepdims=True))))({})")


@pytest.mark.parametrize("target, code, want", [
    ("torch", "x[:, ::-1, :]", "torch.flip(x, (1,))"),
    ("torch", "x[..., ::-1, ::-1]", "torch.flip(x, (-2, -1))"),
    ("torch", "np.sqrt(Q.shape[-1])", "math.sqrt(Q.shape[-1])"),
    ("torch", "np.ones(X.shape[0])", "torch.ones(X.shape[0], dtype=x.dtype, device=x.device)"),
    ("jax", "x[..., ::-1]", "x[..., ::-1]"),
    ("jax", "_einsum('ab->a', x)", "jnp.einsum('ab->a', x)"),
    ("torch", "np.maximum(x, 0)", "torch.maximum(x, torch.tensor(0, dtype=x.dtype, device=x.device))"),
    ("torch", "np.logaddexp(0, -x)", "torch.logaddexp(torch.tensor(0, dtype=x.dtype, device=x.device), -x)"),
    ("torch", "np.vectorize(__import__('math').erf, otypes=[float])(x / 2)", "torch.erf(x / 2)"),
    ("jax", "np.vectorize(__import__('math').erf, otypes=[float])(x / 2)", "jax.lax.erf(x / 2)"),
    ("torch", "np.exp(-x ** 2 / 2) / np.sqrt(2 * np.pi)", "torch.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)"),
    ("jax", "np.sum(np.broadcast_arrays(x, 1.0), axis=0)", "jnp.sum(jnp.stack(jnp.broadcast_arrays(x, 1.0)), axis=0)"),
    # the softmax lambda of the NumPy printers: the target's softmax, exp computed once
    ("numpy", SOFTMAX_LAMBDA.format("S / 2"), "_softmax(S / 2)"),
    ("torch", SOFTMAX_LAMBDA.format("S / 2"), "torch.softmax(S / 2, dim=-1)"),
    ("jax", SOFTMAX_LAMBDA.format("S / 2"), "jax.nn.softmax(S / 2, axis=-1)"),
    # a lambda called with a name is its body (ruff PLC3002); with an expression it stays
    ("jax", "(lambda z: z * np.tanh(z))(_f1)", "_f1 * jnp.tanh(_f1)"),
    ("numpy", "(lambda z: z * np.tanh(z))(x + 1)", "(lambda z: z * np.tanh(z))(x + 1)"),
])
def test_numpy_code_in_a_targets_terms(target, code, want):
    assert modulegen.TARGETS[target](Variables({}, {})).array_code(code, "x") == want


def test_torch_functions_of_a_scalar_the_module_takes_as_a_float(tmp_path):
    """y_i = sigmoid(τ) Σ_j W_ij x_j ... with τ: scalar not differentiated: the module takes τ as a
    Python float, and the index path wrote torch.sqrt(τ), torch.sign(τ), torch.erf(τ) (gelu's
    too): TypeError, in the generated check as in use (a_ij = softmax_j(Σ_d Q_id K_jd / sqrt(D)))."""
    import torch
    from math import erf
    P = modulegen.TARGETS["torch"](Variables({}, {}))
    P.floats = {"τ"}
    assert P.array_code("np.sqrt(τ) * np.tanh(2 * τ) * x", "x") == "math.sqrt(τ) * math.tanh(2 * τ) * x"
    assert P.array_code("np.sign(τ) * x", "x") == "torch.sign(torch.tensor(τ, dtype=x.dtype, device=x.device)) * x"
    eq = "y_i = sigmoid(τ) Σ_j W_ij x_j / sqrt(τ) + sign(τ) gelu(τ) x_i"
    m = modulegen.build(eq, "W,x", "τ: scalar", "torch")
    mod = load(tmp_path, modulegen.render([m], "torch", "test"), "floats_torch")
    rng = np.random.default_rng(2)
    W, x, dy, t = rng.normal(size=(3, 3)), rng.normal(size=3), rng.normal(size=3), 0.7
    a, b = 1 / (1 + np.exp(-t)) / np.sqrt(t), t * 0.5 * (1 + erf(t / np.sqrt(2)))
    Wt, xt = torch.tensor(W, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = getattr(mod, f"{m.cls}Function").apply(*[{"W": Wt, "x": xt, "τ": t}[i.name] for i in m.inputs])
    (y * torch.tensor(dy)).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), a * W @ x + b * x)
    np.testing.assert_allclose(Wt.grad.numpy(), a * np.outer(dy, x))
    np.testing.assert_allclose(xt.grad.numpy(), a * W.T @ dy + b * dy)


@pytest.mark.parametrize("argv, message", [
    (["codegen", "Y[i,j] = Σ_p X[i,p] W[j,p]", "--wrt", "X,W", "--target", "torch", "--params", "Z"],
     "not in the equation"),
    (["codegen", "Y[i,j] = Σ_p X[i,p] W[j,p]", "--wrt", "X", "--target", "jax", "--params", "W"],
     "add it to --wrt"),
    (["codegen", "L = Σ_i x[i] y[i]", "--wrt", "x", "--target", "torch"], "needs an output with indices"),
])
def test_bad_index_codegen_input_is_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
