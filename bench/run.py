"""indexcalc's benchmarks as one table, every comparison measured side by side in one run.

    python bench/run.py            # about two minutes
    python bench/run.py --quick    # fewer repeats, for a look
    python bench/run.py --only cold   # one group (derive, scaling, cold, backward, hessian, grade, guard, cnn)

Rows:
- derive:   each seed exercise in-process (parse, steps, matching and the numerical guard)
            next to SymPy's own `MatrixSymbol.diff` of the same expression, where SymPy has
            one; SymPy's answer is checked against finite differences too (right / WRONG /
            fails), since a fast wrong answer is not a win. SymPy's cache is cleared before
            every call of either tool (indexcalc runs on SymPy too), so neither gets a free ride.
- scaling:  tr(A1 ... An X) for n = 8, 32, 128 and tr(X^k) for k = 4, 16, 32, both tools.
- cold:     `python -m indexcalc derive "x^T B x" --wrt x` as a fresh process, next to
            `python -c "import sympy"`: byte-compiled (as installed), without a bytecode
            cache, and next to a reference that skips finalisation as our CLI does.
- backward: the generated modules (modules_generated.py) next to hand-written NumPy and, if
            installed, torch.autograd on the CPU (S = 1024).
- hessian:  the generated Hessian code of x^T B x and log(sum(exp(x))) (n = 256) next to
            hand-written NumPy and, if installed, jax.hessian (jit-compiled, compile excluded).
- modules:  `codegen EQUATION` for linear+bias, softmax cross-entropy, LayerNorm and attention:
            the generated NumPy backward next to hand-written NumPy; the generated torch
            autograd.Function's backward next to torch.autograd of the same forward (CPU, one
            thread); the generated JAX custom_vjp next to jax.grad of the same forward (both
            jit-compiled, compile excluded). Min of the runs; the median in the note.
- grade:    `indexcalc grade` of a synthetic class, 200 students × 5 claims, verdicts known.
- cnn:      issue 14's speed rows: deriving conv2d's backward (by X, by F) and batched
            attention's (Q, K, V) in-process with steps and the guard (min, median, CPU time);
            the NumPy modules of `codegen problems/cnn_attention.toml` next to hand-written
            NumPy (conv2d im2col at N=32, C=8, H=W=16, O=16, K=3; attention at B=8, S=128,
            D=64), in a child process with BLAS on one thread; min, medians in the note.
- guard:    the MNIST layer's backprop at numeric sizes (X 64×784, W 128×784): the guard's
            projections cost the same at any size; min of the runs, median in the note.

ratio = indexcalc (or its generated code) / the peer: below 1 is faster than the peer.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import inspect
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

# BLAS pinned to one thread (before NumPy loads it): side-by-side rows compare code, not cores.
# The cold rows run the command in the environment the bench was started in, as a user would.
# jax is pinned too (XLA's CPU client runs element-wise work on a pool of its own), here for the
# in-process hessian group and in ONE_THREAD for the code rows' child.
USER_ENV = dict(os.environ)
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("XLA_FLAGS", XLA_ONE_THREAD)

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.references import hand_backward  # noqa: E402 - the hand-written peers, shared with the tests

QUICK = False


# ---- timing ------------------------------------------------------------------------------------
def side_by_side(fa, fb, repeat=5, setup=None):
    """Best time of each, calls interleaved (a, b, a, b, ...) so drift hits both alike."""
    ta, tb = [], []
    for _ in range(repeat):
        for f, out in ((fa, ta), (fb, tb)):
            if f is None:
                continue
            if setup:
                setup()
            gc.collect()
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
    return (min(ta) if ta else None), (min(tb) if tb else None)


def _timed(fa, fb, repeat, batch=0.005, budget=1.5):
    """(min, median) seconds per call of each, in short batches (about `batch` seconds)
    interleaved a, b, a, b, ...: at least `repeat` and up to 10 × `repeat` rounds within
    `budget` seconds. On a shared machine many short side-by-side batches find each one's
    quiet moments alike; a few long batches of each do not."""
    sizes = []
    for f in (fa, fb):
        f()
        n = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            if time.perf_counter() - t0 >= batch:
                break
            n *= 2
        sizes.append(n)
    ta, tb = [], []
    start = time.perf_counter()
    while len(ta) < repeat or (len(ta) < 10 * repeat and time.perf_counter() - start < budget):
        for f, n, out in ((fa, sizes[0], ta), (fb, sizes[1], tb)):
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            out.append((time.perf_counter() - t0) / n)
    return (min(ta), statistics.median(ta)), (min(tb), statistics.median(tb))


def clear_caches():
    from sympy.core.cache import clear_cache
    clear_cache()


# ---- the table ---------------------------------------------------------------------------------
ROWS: list = []
GENERATED: dict = {}       # expression -> the Hessian code indexcalc wrote, printed under the table


def row(group, case, ours, peer_name, peer, note=""):
    ROWS.append((group, case, ours, peer_name, peer, note))


def show_time(t):
    if t is None:
        return "—"
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.1f} ms"
    return f"{t * 1e6:.1f} µs"


HEAD = ("group", "case", "indexcalc", "peer", "peer time", "ratio", "note")


def cells() -> list:
    """This run's rows as the table's cells."""
    out = []
    for g, c, o, pn, p, note in ROWS:
        ratio = f"{o / p:.2f}" if (o is not None and p) else "—"
        out.append((g, c, show_time(o), pn, show_time(p), ratio, note))
    return out


def table(rows=None) -> str:
    lines = [HEAD] + (cells() if rows is None else rows)
    widths = [max(len(str(r[k])) for r in lines) for k in range(len(HEAD))]
    out = ["| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths)) + " |" for r in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    import numpy
    import sympy
    peers = [f"Python {platform.python_version()}", f"NumPy {numpy.__version__}", f"SymPy {sympy.__version__}"]
    for mod in ("torch", "jax"):
        try:
            peers.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            peers.append(f"{mod} not installed")
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; " + ", ".join(peers)


# ---- SymPy's side ------------------------------------------------------------------------------
def sympy_cases():
    """(name, indexcalc expression, wrt, where, build(sizes) -> (expr, var, concrete symbols),
    order). `build` makes SymPy's expression with symbolic sizes for timing and with numbers
    for the check."""
    import sympy as sp
    from sympy import HadamardPower, HadamardProduct, MatrixSymbol, OneMatrix, Trace

    def M(name, r, c):
        return MatrixSymbol(name, r, c)

    def xta(n):
        x, a = M("x", n, 1), M("a", n, 1)
        return x.T * a, x, {"x": x, "a": a}

    def btxc(n, m):
        b, X, c = M("b", n, 1), M("X", n, m), M("c", m, 1)
        return b.T * X * c, X, {"b": b, "X": X, "c": c}

    def qtq(n, m):
        Q = M("Q", m, n)
        return Q.T * Q, Q, {"Q": Q}

    def xtbx(n):
        x, B = M("x", n, 1), M("B", n, n)
        return x.T * B * x, x, {"x": x, "B": B}

    def tvxw(n, m):
        p = m + 1 if isinstance(m, int) else sp.Symbol("p", integer=True, positive=True)
        V, X, W = M("V", n, m), M("X", m, p), M("W", p, n)
        return Trace(V * X * W), X, {"V": V, "X": X, "W": W}

    def norm(n):
        w = M("w", n, 1)
        return sp.sqrt((w.T * w)[0, 0]), w, {"w": w}

    def trs(n):
        S = M("S", n, n)
        return Trace(S), S, {"S": S}

    def ce(s, c):
        X, T = M("X", s, c), M("T", s, c)
        return -Trace(OneMatrix(1, s) * HadamardProduct(T, X.applyfunc(sp.log)) * OneMatrix(c, 1)) / s, X, \
            {"X": X, "T": T}

    def sq(n, m):
        X, W = M("X", n, m), M("W", m, n)
        return Trace(OneMatrix(1, n) * HadamardPower(X * W, 2) * OneMatrix(n, 1)), X, {"X": X, "W": W}

    def linear(s, n, m):        # the linear layer's ∂L/∂W through the upstream gradient G
        X, W, G = M("X", s, m), M("W", n, m), M("G", s, n)
        return Trace(G.T * (X * W.T)), W, {"X": X, "W": W, "dY": G}

    return [     # name, expression, wrt, where, SymPy's build, order, NumPy reference (2-D arrays)
        ("x^T a by x", "x^T a", "x", None, xta, 1, lambda e: e["x"].T @ e["a"]),
        ("b^T X c by X", "b^T X c", "X", None, btxc, 1, lambda e: e["b"].T @ e["X"] @ e["c"]),
        ("Q^T Q by Q (4th rank)", "Q^T Q", "Q", None, qtq, 1, lambda e: e["Q"].T @ e["Q"]),
        ("x^T B x by x", "x^T B x", "x", None, xtbx, 1, lambda e: e["x"].T @ e["B"] @ e["x"]),
        ("x^T B x, Hessian", "x^T B x", "x", None, xtbx, 2, lambda e: e["x"].T @ e["B"] @ e["x"]),
        ("tr(V X W) by X", "tr(V X W)", "X", "V: n×m, X: m×p, W: p×n", tvxw, 1,
         lambda e: np.trace(e["V"] @ e["X"] @ e["W"])),
        ("‖w‖ by w", "‖w‖", "w", None, norm, 1, lambda e: np.linalg.norm(e["w"])),
        ("tr(S) by S", "tr(S)", "S", None, trs, 1, lambda e: np.trace(e["S"])),
        ("-sum(T∘log(X))/S by X", "-sum(T ∘ log(X)) / S", "X", "X: S×C, T: S×C", ce, 1,
         lambda e: -np.sum(e["T"] * np.log(e["X"])) / e["X"].shape[0]),
        ("-sum(T∘log(softmax(X)))/S", "-sum(T ∘ log(softmax(X))) / S", "X", "X: S×C, T: S×C", None, 1, None),
        ("sum((X W).^2) by X", "sum((X W) .^ 2)", "X", None, sq, 1, lambda e: np.sum((e["X"] @ e["W"]) ** 2)),
        ("softmax(z) by z (Jacobian)", "softmax(z)", "z", None, None, 1, None),
        ("linear layer ∂L/∂W", "Y = X W^T + b", "W", "X: S×M, W: N×M, b: 1×N", linear, 1,
         lambda e: np.sum(e["dY"] * (e["X"] @ e["W"].T))),
    ]


def _arity(build) -> int:
    import inspect
    return len(inspect.signature(build).parameters)


def _symbols(build):
    import sympy as sp
    return [sp.Symbol(s, integer=True, positive=True) for s in "nmk"[:_arity(build)]]


def sympy_diff(build, order):
    expr, var, _ = build(*_symbols(build))
    out = expr.diff(var)
    return out.diff(var) if order == 2 else out


def sympy_verdict(build, order, ref, rng) -> str:
    """Evaluate SymPy's derivative at numbers; compare with central differences of a NumPy
    reference of the same function."""
    import sympy as sp
    sizes = [3, 2, 4][:_arity(build)]
    try:
        expr, var, syms = build(*sizes)
        got = expr.diff(var)
        if order == 2:
            got = got.diff(var)
    except Exception as e:  # noqa: BLE001 - SymPy's own failure is the finding
        return f"SymPy fails ({type(e).__name__})"
    values = {name: rng.uniform(0.5, 1.5, size=s.shape) for name, s in syms.items()}
    wrt = [n for n, s in syms.items() if s == var][0]

    def f(v):
        return np.ravel(np.asarray(ref({**values, wrt: v}), dtype=float))

    def jac(fn, x, eps=1e-6):
        cols = []
        for idx in np.ndindex(*x.shape):
            xp, xm = x.copy(), x.copy()
            xp[idx] += eps
            xm[idx] -= eps
            cols.append((fn(xp) - fn(xm)) / (2 * eps))
        return np.array(cols).T          # output entries × variable entries

    x0 = values[wrt]
    want = jac(f, x0) if order == 1 else jac(lambda v: jac(f, v).reshape(-1), x0, 1e-4)
    try:
        val = got.subs({s: sp.ImmutableMatrix(values[n]) for n, s in syms.items()}).doit()
        if hasattr(val, "as_explicit"):
            val = val.as_explicit()
        arr = np.array(val.tolist() if hasattr(val, "tolist") else sp.Array(val).tolist(), dtype=float)
    except Exception as e:  # noqa: BLE001
        return f"SymPy's result does not evaluate ({type(e).__name__})"
    nv = x0.size
    if arr.size != want.size:
        return f"SymPy WRONG: {arr.size} entries, the derivative has {want.size}"
    # SymPy may lay the axes out variable-first or output-first: accept either
    for cand in (arr.reshape(-1, nv), arr.reshape(nv, -1).T):
        if np.allclose(cand, want, rtol=1e-4, atol=1e-4 * (1 + np.abs(want).max())):
            return "SymPy right"
    return "SymPy WRONG: disagrees with finite differences"


# ---- groups ------------------------------------------------------------------------------------
def bench_derive():
    from indexcalc.pipeline import backprop, derive
    rng = np.random.default_rng(0)
    repeat = 3 if QUICK else 7
    for name, expr, wrt, where, build, order, ref in sympy_cases():
        if "=" in expr:
            ours = lambda: backprop(expr, wrt, where)       # noqa: E731
        else:
            ours = lambda: derive(expr, wrt, where, order=order)       # noqa: E731
        ours()
        theirs = (lambda: sympy_diff(build, order)) if build else None
        if theirs is not None:
            try:
                theirs()
            except Exception:  # noqa: BLE001 - SymPy cannot: no time, the verdict says why
                theirs = None
        t_ours, t_sympy = side_by_side(ours, theirs, repeat, setup=clear_caches)
        note = sympy_verdict(build, order, ref, rng) if build else "SymPy has no row-wise softmax"
        row("derive", name, t_ours, "SymPy .diff", t_sympy, note)


def bench_scaling():
    import sympy as sp
    from sympy import MatrixSymbol, Trace

    from indexcalc.pipeline import derive
    n_ = sp.Symbol("n", integer=True, positive=True)
    repeat = 1 if QUICK else 3
    for n in (8, 32, 128):
        expr = "tr(" + " ".join(f"A{k}" for k in range(1, n + 1)) + " X)"
        X = MatrixSymbol("X", n_, n_)
        chain = [MatrixSymbol(f"A{k}", n_, n_) for k in range(1, n + 1)]
        t_ours, t_sympy = side_by_side(lambda: derive(expr, "X"), lambda: Trace(sp.MatMul(*chain, X)).diff(X),
                                       repeat, setup=clear_caches)
        row("scaling", f"tr(A1 … A{n} X) by X", t_ours, "SymPy .diff", t_sympy,
            "target n=128 ≤ 0.5 s" if n == 128 else "")
    for k in (4, 16, 32):
        X = MatrixSymbol("X", n_, n_)
        t_ours, t_sympy = side_by_side(lambda: derive(f"tr(X^{k})", "X"), lambda: Trace(X ** k).diff(X),
                                       repeat, setup=clear_caches)
        row("scaling", f"tr(X^{k}) by X", t_ours, "SymPy .diff", t_sympy, "target k=32 ≤ 1 s" if k == 32 else "")


def bench_cold():
    """A fresh process each time, ours and the reference interleaved; medians of the runs.

    Rows: (1) the package byte-compiled, as `pip install .` leaves it (and an editable install
    after its first run); (2) no bytecode cache at all, as an editable install under
    PYTHONDONTWRITEBYTECODE has it, so every run compiles our modules; (3) against a
    reference that also skips interpreter finalisation (`import sympy` then os._exit): our CLI
    leaves with os._exit once its output is flushed (cli.entry), `python -c "import sympy"`
    finalises SymPy's modules, so this row shows what our own work costs over the imports."""
    n = 5 if QUICK else 15
    py = sys.executable
    ours = [py, "-m", "indexcalc", "derive", "x^T B x", "--wrt", "x"]
    refs = {"import sympy": [py, "-c", "import sympy"],
            "import sympy; os._exit": [py, "-c", "import sympy, os; os._exit(0)"]}
    caches = [os.path.join(d, "__pycache__") for d, _, _ in os.walk(os.path.join(ROOT, "indexcalc"))]

    def timed(argv, env=USER_ENV):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, cwd=ROOT, env=env)
        return time.perf_counter() - t0

    no_bytecode = {**USER_ENV, "PYTHONDONTWRITEBYTECODE": "1"}
    cold, t_ref = [], []
    for _ in range(n):
        for c in caches:
            shutil.rmtree(c, ignore_errors=True)
        cold.append(timed(ours, no_bytecode))
        t_ref.append(timed(refs["import sympy"]))
    subprocess.run([py, "-m", "compileall", "-q", os.path.join(ROOT, "indexcalc")], check=True)
    warm = {name: ([], []) for name in refs}
    for _ in range(n):
        for name, argv in refs.items():
            warm[name][0].append(timed(ours))
            warm[name][1].append(timed(argv))
    med = statistics.median
    row("cold", 'process: derive "x^T B x" --wrt x', med(warm["import sympy"][0]), "import sympy",
        med(warm["import sympy"][1]), f"median of {n}; bytecode compiled; target ≤ 1.3×")
    row("cold", "  the same, no bytecode cache", med(cold), "import sympy", med(t_ref),
        "every run compiles our modules")
    row("cold", "  the same", med(warm["import sympy; os._exit"][0]), "import sympy; os._exit",
        med(warm["import sympy; os._exit"][1]), "neither finalises: our work over the imports")


def load_generated():
    spec = importlib.util.spec_from_file_location("modules_generated", os.path.join(ROOT, "modules_generated.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def hand_modules():
    """Backward passes as a course solution writes them, by hand."""
    def linear(x, W, dout):
        return dout.T @ x, dout.sum(axis=0, keepdims=True), dout @ W

    def softmax(y, dout):
        return y * (dout - (dout * y).sum(axis=1, keepdims=True))

    def cross_entropy(x, labels):
        t = np.zeros_like(x)
        t[np.arange(x.shape[0]), labels] = 1.0
        return -t / x / x.shape[0]

    return {"linear": linear, "relu": lambda x, d: d * (x > 0), "sigmoid": lambda y, d: d * y * (1 - y),
            "tanh": lambda y, d: d * (1 - y * y), "softmax": softmax, "cross-entropy": cross_entropy}


def bench_backward():
    m, hand = load_generated(), hand_modules()
    try:
        import torch
        torch.set_num_threads(1)        # as NumPy's BLAS here: the rows compare code, not cores
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    S, M, N, C = 1024, 256, 128, 10
    x, dout = rng.normal(size=(S, M)), rng.normal(size=(S, N))
    lin = m.LinearModule(M, N)
    lin.forward(x)
    W = lin.params["weight"]
    cases = [("linear (256→128)", lambda: lin.backward(dout), lambda: hand["linear"](x, W, dout))]
    z, dz = rng.normal(size=(S, C)), rng.normal(size=(S, C))
    mods = {}
    for key, cls in (("relu", m.ReLUModule), ("sigmoid", m.SigmoidModule), ("tanh", m.TanhModule),
                     ("softmax", m.SoftMaxModule)):
        mod = cls()
        y = mod.forward(z)
        mods[key] = (mod, y)
    cases += [
        ("relu", lambda: mods["relu"][0].backward(dz), lambda: hand["relu"](z, dz)),
        ("sigmoid", lambda: mods["sigmoid"][0].backward(dz), lambda: hand["sigmoid"](mods["sigmoid"][1], dz)),
        ("tanh", lambda: mods["tanh"][0].backward(dz), lambda: hand["tanh"](mods["tanh"][1], dz)),
        ("softmax (C=10)", lambda: mods["softmax"][0].backward(dz), lambda: hand["softmax"](mods["softmax"][1], dz)),
    ]
    probs, labels = mods["softmax"][1], rng.integers(0, C, size=S)
    ce = m.CrossEntropyModule()
    ce.forward(probs, labels)
    cases.append(("cross-entropy (C=10)", lambda: ce.backward(probs, labels),
                  lambda: hand["cross-entropy"](probs, labels)))
    torch_fns = _torch_backward(torch, x, W, dout, z, dz, probs, labels) if torch else {}
    for name, ours, handf in cases:
        (t_ours, m_ours), (t_hand, m_hand) = _timed(ours, handf, 3 if QUICK else 7)
        row("backward", f"{name}, S={S}", t_ours, "hand NumPy", t_hand,
            f"generated code; medians {show_time(m_ours)} / {show_time(m_hand)}")
        key = name.split(" ")[0]
        if key in torch_fns:
            (t_ours2, m_ours2), (t_torch, m_torch) = _timed(ours, torch_fns[key], 3 if QUICK else 7)
            row("backward", f"{name}, S={S}", t_ours2, "torch.autograd", t_torch,
                f"backward only, CPU, one thread; medians {show_time(m_ours2)} / {show_time(m_torch)}")


def _torch_backward(torch, x, W, dout, z, dz, probs, labels):
    """torch.autograd.grad of the same forward graph (built once), timed per backward."""
    t = lambda a, grad=False: torch.tensor(a, dtype=torch.float64, requires_grad=grad)  # noqa: E731
    X, Wt, b = t(x, True), t(W, True), t(np.zeros((1, W.shape[0])), True)
    Y = X @ Wt.T + b
    D = t(dout)
    Z, DZ = t(z, True), t(dz)
    outs = {"relu": torch.relu(Z), "sigmoid": torch.sigmoid(Z), "tanh": torch.tanh(Z),
            "softmax": torch.softmax(Z, dim=1)}
    P = t(probs, True)
    T = torch.zeros_like(P)
    T[torch.arange(P.shape[0]), torch.tensor(labels)] = 1.0
    L = -(T * torch.log(P)).sum() / P.shape[0]
    fns = {"linear": lambda: torch.autograd.grad(Y, (X, Wt, b), D, retain_graph=True),
           "cross-entropy": lambda: torch.autograd.grad(L, (P,), retain_graph=True)}
    for key, out in outs.items():
        fns[key] = (lambda o: lambda: torch.autograd.grad(o, (Z,), DZ, retain_graph=True))(out)
    return fns


MODULES = {   # name: (equation, wrt, where, sizes)
    "linear+bias": ("Y = X W + b", "X,W,b", "X: S×M, W: M×N, b: 1×N", {"S": 512, "M": 256, "N": 128}),
    "softmax cross-entropy": ("L = -sum(T ∘ log(softmax(Z))) / S", "Z", "Z: S×C, T: S×C", {"S": 1024, "C": 10}),
    "LayerNorm": ("Y = (X - X 1 1^T / N) ⊘ sqrt((X - X 1 1^T / N).^2 1 1^T / N + e 1 1^T)", "X",
                  "X: S×N, e: scalar", {"S": 512, "N": 256}),
    "attention": ("Y = softmax(Q K^T / sqrt(D)) V", "Q,K,V", "Q: n×D, K: m×D, V: m×p",
                  {"n": 256, "m": 256, "D": 64, "p": 64}),
}


def _load(code, name):
    import tempfile
    path = os.path.join(tempfile.mkdtemp(), f"{name}.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(code)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _values(m, sizes, rng):
    out = {}
    for i in m.inputs:
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in i.dims)
        out[i.name] = 1e-5 if i.kind == "scalar" else (np.abs(rng.normal(size=shape)) if i.name == "T"
                                                       else rng.normal(size=shape))
    return out


def _module_row(target, name, ours, peer_name, peer, repeat):
    (a, am), (b, bm) = _timed(ours, peer, repeat)
    row("modules", f"{name} backward ({target})", a, peer_name, b,
        f"median {show_time(am)} vs {show_time(bm)}")


def bench_modules():
    from indexcalc import modulegen
    repeat = 3 if QUICK else 7
    rng = np.random.default_rng(0)
    for name, (eq, wrt, where, sizes) in MODULES.items():
        built = {t: modulegen.build(eq, wrt, where, t, params="") for t in ("numpy", "torch", "jax")}
        m = built["numpy"]
        a = _values(m, sizes, rng)
        out_shape = np.shape(_load(modulegen.render([m], "numpy", "bench"), "g_np").__dict__[m.cls]().forward(**a))
        dY = rng.normal(size=out_shape) if out_shape else 1.0
        gen = _load(modulegen.render([m], "numpy", "bench"), f"g_np_{m.func}").__dict__[m.cls]()
        gen.forward(**a)
        _module_row("NumPy", name, lambda: gen.backward(dY), "hand NumPy", hand_backward(name, a, dY), repeat)
        _bench_torch(built["torch"], name, a, dY, repeat)
        _bench_jax(built["jax"], name, a, dY, repeat)


def _bench_torch(m, name, a, dY, repeat):
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
    mod = _load(modulegen_render(m, "torch"), f"g_t_{m.func}")
    fn = getattr(mod, f"{m.cls}Function")
    args = [torch.tensor(a[i.name], dtype=torch.float64, requires_grad=i.wrt) if i.kind != "scalar" else a[i.name]
            for i in m.inputs]
    wrt = [x for x, i in zip(args, m.inputs) if i.wrt]
    D = torch.tensor(dY, dtype=torch.float64)
    ours = fn.apply(*args)
    plain = _torch_forward(torch, name, dict(zip([i.name for i in m.inputs], args)))
    _module_row("torch", name, lambda: torch.autograd.grad(ours, wrt, D, retain_graph=True),
                "torch.autograd", lambda: torch.autograd.grad(plain, wrt, D, retain_graph=True), repeat)


def _torch_forward(torch, name, v):
    if name == "linear+bias":
        return v["X"] @ v["W"] + v["b"]
    if name == "softmax cross-entropy":
        return -(v["T"] * torch.log_softmax(v["Z"], dim=-1)).sum() / v["Z"].shape[0]
    if name == "LayerNorm":
        xc = v["X"] - v["X"].mean(dim=1, keepdim=True)
        return xc / torch.sqrt((xc ** 2).mean(dim=1, keepdim=True) + v["e"])
    return torch.softmax(v["Q"] @ v["K"].T / v["Q"].shape[1] ** 0.5, dim=-1) @ v["V"]


def _bench_jax(m, name, a, dY, repeat):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return
    jax.config.update("jax_enable_x64", True)
    mod = _load(modulegen_render(m, "jax"), f"g_j_{m.func}")
    fn = getattr(mod, m.func)
    names = [i.name for i in m.inputs]
    argnums = tuple(k for k, i in enumerate(m.inputs) if i.wrt)
    args = [jnp.asarray(a[n]) for n in names]
    D = jnp.asarray(dY)

    def plain(*xs):
        v = dict(zip(names, xs))
        if name == "linear+bias":
            return v["X"] @ v["W"] + v["b"]
        if name == "softmax cross-entropy":
            return -(v["T"] * jax.nn.log_softmax(v["Z"], axis=-1)).sum() / v["Z"].shape[0]
        if name == "LayerNorm":
            xc = v["X"] - v["X"].mean(axis=1, keepdims=True)
            return xc / jnp.sqrt((xc ** 2).mean(axis=1, keepdims=True) + v["e"])
        return jax.nn.softmax(v["Q"] @ v["K"].T / jnp.sqrt(v["Q"].shape[1]), axis=-1) @ v["V"]

    g_ours = jax.jit(jax.grad(lambda *xs: jnp.sum(D * fn(*xs)), argnums=argnums))
    g_plain = jax.jit(jax.grad(lambda *xs: jnp.sum(D * plain(*xs)), argnums=argnums))
    jax.block_until_ready(g_ours(*args))
    jax.block_until_ready(g_plain(*args))
    _module_row("JAX", name, lambda: jax.block_until_ready(g_ours(*args)), "jax.grad (jit)",
                lambda: jax.block_until_ready(g_plain(*args)), repeat)


def modulegen_render(m, target):
    from indexcalc import modulegen
    return modulegen.render([m], target, "bench")


def bench_hessian():
    from indexcalc.pipeline import derive
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        jax = None
    n = 256
    rng = np.random.default_rng(0)
    x, B = rng.normal(size=n), rng.normal(size=(n, n))
    xp = jnp if jax else np           # the function jax differentiates (used only with jax)
    cases = [
        ("x^T B x", lambda x, B: (B + B.T), lambda x, B: x @ B @ x),
        ("log(sum(exp(x)))", lambda x, B: _hand_lse_hessian(x), lambda x, B: xp.log(xp.sum(xp.exp(x)))),
    ]
    for expr, hand, f in cases:
        code = derive(expr, "x", order=2).results[0].function       # what --format numpy prints
        fn = generated_function(code)
        wants = inspect.signature(fn).parameters
        ours_fn = (lambda fn, wants: lambda x, B: fn(**{k: v for k, v in (("x", x), ("B", B)) if k in wants}))(fn, wants)
        assert np.allclose(ours_fn(x, B), hand(x, B)), expr
        (t_ours, _), (t_hand, _) = _timed(lambda: ours_fn(x, B), lambda: hand(x, B), 3 if QUICK else 7)
        GENERATED[expr] = code
        row("hessian", f"{expr}, n={n}", t_ours, "hand NumPy", t_hand, f"generated code [{len(GENERATED)}]")
        if jax is not None:
            jh = jax.jit(jax.hessian(f))
            xj, Bj = jnp.asarray(x), jnp.asarray(B)
            jh(xj, Bj).block_until_ready()            # compile outside the timing
            assert np.allclose(np.asarray(jh(xj, Bj)), ours_fn(x, B), atol=1e-8), expr
            (t_ours2, _), (t_jax, _) = _timed(lambda: ours_fn(x, B), lambda: jh(xj, Bj).block_until_ready(),
                                              3 if QUICK else 7)
            row("hessian", f"{expr}, n={n}", t_ours2, "jax.hessian (jit)", t_jax, "compile excluded")


def generated_function(code: str):
    """The d_… function of indexcalc's `function` field (what --format numpy prints)."""
    ns = {"np": np}
    exec(code, ns)  # noqa: S102 - indexcalc's own output
    return next(v for k, v in ns.items() if k.startswith("d_"))


def _hand_lse_hessian(x):
    e = np.exp(x - x.max())
    p = e / e.sum()
    return np.diag(p) - np.outer(p, p)


def bench_grade():
    """`indexcalc grade` of a class of 200 students × 5 claims (tests/test_grade.py's class):
    one derivation per problem, then every claim compared; target ≤ 60 s on 2 cores."""
    import tempfile
    from pathlib import Path
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from test_grade import make_class, write_class
    from indexcalc.grade import grade
    rows, known = make_class(200, 5)
    with tempfile.TemporaryDirectory() as tmp:
        problems, answers = write_class(Path(tmp), rows)
        for reuse, note in ((True, "repeated answers checked once"), (False, "every claim checked")):
            t0 = time.perf_counter()
            report = grade(problems, answers, reuse=reuse)
            t = time.perf_counter() - t0
            assert [c.verdict for c in report.claims] == known
            row("grade", "200 students × 5 claims", t, "", None, f"{note}; verdicts as known; target ≤ 60 s")


def bench_guard():
    """The MNIST layer's backprop at its numeric sizes (issue 15 part 4): the guard checks
    random projections at the user's sizes, a fixed number of evaluations. In-process, with
    steps; the table shows the min, the note the median; target ≤ 1 s."""
    from indexcalc.pipeline import backprop
    where = "X: 64×784, W: 128×784, b: 1×128"
    times = []
    for _ in range(3 if QUICK else 7):
        clear_caches()
        gc.collect()
        t0 = time.perf_counter()
        backprop("Y = X W^T + b", "W,b,X", where)
        times.append(time.perf_counter() - t0)
    row("guard", "MNIST layer backprop, X 64×784, W 128×784", min(times), "", None,
        f"min; median {show_time(statistics.median(times))}; target ≤ 1 s")


# ---- issue 15: linear cost -------------------------------------------------------------------
def _net(depth):
    """sum(tanh(...tanh(X W1)...) W_depth): an L-layer tanh network's loss."""
    e = "X W1"
    for k in range(2, depth + 1):
        e = f"tanh({e}) W{k}"
    return f"sum({e})"


def min_median(f, repeat):
    """(min, median) seconds of f over `repeat` calls, SymPy's cache cleared before each."""
    ts = []
    for _ in range(repeat):
        clear_caches()
        gc.collect()
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts), statistics.median(ts)


def bench_linear():
    """Derivation time of deep and long expressions (issue 15's targets), min and median."""
    from indexcalc.pipeline import derive
    repeat = 2 if QUICK else 5
    t8 = min_median(lambda: derive(_net(8), "W1"), repeat)
    t16 = min_median(lambda: derive(_net(16), "W1"), repeat)
    row("linear", "L-layer tanh net by W1, L = 8", t8[0], "", None, f"median {show_time(t8[1])}; target ≤ 1 s")
    row("linear", "L-layer tanh net by W1, L = 16", t16[0], "", None, f"median {show_time(t16[1])}; target ≤ 2 s")
    row("linear", "  time(L=16) / time(L=8)", None, "", None,
        f"{t16[0] / t8[0]:.2f} (min), {t16[1] / t8[1]:.2f} (median); target ≤ 2.5")
    cases = [
        ("tanh nested 8 deep by w", "tanh(" * 8 + "w^T x" + ")" * 8, "w", "≤ 1 s"),
        ("x^T A1 x + … + x^T A256 x by x", " + ".join(f"x^T A{k} x" for k in range(1, 257)), "x", "≤ 2 s"),
        ("tr(A1 … A512 X) by X", "tr(" + " ".join(f"A{k}" for k in range(1, 513)) + " X)", "X", "≤ 2 s"),
        ("tr(X^64) by X", "tr(X^64)", "X", "≤ 2 s"),
    ]
    for name, expr, wrt, target in cases:
        t = min_median(lambda: derive(expr, wrt), max(1, repeat - 2))
        row("linear", name, t[0], "", None, f"median {show_time(t[1])}; target {target}")


CODE_CHILD = "--code-rows-child"
ONE_THREAD = {**{v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                  "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")},
              "XLA_FLAGS": XLA_ONE_THREAD}


def bench_code():
    """Generated code (the `function` field: each common subexpression once) next to hand
    NumPy and jax.hessian, in a child process whose BLAS and XLA are pinned to one thread (the
    variables are set before NumPy and jax are imported there)."""
    import json
    out = subprocess.run([sys.executable, os.path.abspath(__file__), CODE_CHILD] + (["--quick"] if QUICK else []),
                         capture_output=True, text=True, env={**os.environ, **ONE_THREAD}, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    for r in json.loads(out.stdout.strip().splitlines()[-1]):
        row(*r)


def _code_rows_child(quick):
    """Runs in the child: times as (min, median) over batches, printed as JSON rows."""
    import json

    from indexcalc.pipeline import derive

    def timed(fa, fb):
        return _timed(fa, fb, 3 if quick else 9)

    def function_of(d):
        return generated_function(d.results[0].function)

    rows = []
    rng = np.random.default_rng(0)
    n = 1024
    x = rng.normal(size=n)
    lse = function_of(derive("log(sum(exp(x)))", "x", order=2))
    assert np.allclose(lse(x), _hand_lse_hessian(x))
    ours, hand = timed(lambda: lse(x), lambda: _hand_lse_hessian(x))
    rows.append(("code", f"log-sum-exp Hessian, n={n}", ours[0], "hand NumPy", hand[0],
                 f"medians {show_time(ours[1])} / {show_time(hand[1])}; BLAS 1 thread; target ≤ 1.15×"))
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        jh = jax.jit(jax.hessian(lambda v: jnp.log(jnp.sum(jnp.exp(v)))))
        xj = jnp.asarray(x)
        jh(xj).block_until_ready()
        ours, peer = timed(lambda: lse(x), lambda: jh(xj).block_until_ready())
        rows.append(("code", f"log-sum-exp Hessian, n={n}", ours[0], "jax.hessian (jit)", peer[0],
                     f"medians {show_time(ours[1])} / {show_time(peer[1])}; compile excluded; both on one thread; target < 1"))
    except ImportError:
        rows.append(("code", f"log-sum-exp Hessian, n={n}", ours[0], "jax.hessian", None, "jax not installed"))
    S, M, H, C = 1024, 256, 128, 10
    X, Y = rng.normal(size=(S, M)), rng.normal(size=(S, C))
    W1, W2 = rng.normal(size=(M, H)) * 0.1, rng.normal(size=(H, C)) * 0.1
    grad = function_of(derive("sum((tanh(X W1) W2 - Y) .^ 2)", "W1"))

    def hand(X, W1, W2, Y):
        h = np.tanh(X @ W1)
        return X.T @ (2 * ((h @ W2 - Y) @ W2.T) * (1 - h * h))
    assert np.allclose(grad(X, W1, W2, Y), hand(X, W1, W2, Y))
    ours, peer = timed(lambda: grad(X, W1, W2, Y), lambda: hand(X, W1, W2, Y))
    rows.append(("code", f"2-layer squared loss ∂/∂W1, S={S}", ours[0], "hand NumPy", peer[0],
                 f"medians {show_time(ours[1])} / {show_time(peer[1])}; BLAS 1 thread; target ≤ 1.15×"))
    print(json.dumps(rows))


# ---- issue 14: index notation at rank 3 and 4 ------------------------------------------------------
CNN_CHILD = "--cnn-rows-child"
CONV = ("Y[n,o,i,j] = Σ_{c,p,q} X[n,c,i+p-1,j+q-1] F[o,c,p,q] + b[o]", "X: N×C×H×W, F: O×C×R×S, b: O")
ATTENTION = ("O[b,i,d] = (Σ_j exp(Σ_k Q[b,i,k] K[b,j,k] / sqrt(D)) V[b,j,d]) / Σ_j exp(Σ_k Q[b,i,k] K[b,j,k] / sqrt(D))",
             "Q: B×S×D, K: B×T×D, V: B×T×E")


def bench_cnn():
    """Deriving conv2d's and batched attention's backward in-process (reading, steps, matching,
    the guard), min and median; then, in a child process whose BLAS is pinned to one thread,
    the modules `codegen problems/cnn_attention.toml` writes next to hand-written NumPy."""
    import json
    from indexcalc.pipeline import backprop
    repeat = 2 if QUICK else 5
    for name, (eq, where), wrt in (("conv2d backward by X", CONV, "X"), ("conv2d backward by F", CONV, "F"),
                                   ("batched attention backward by Q, K, V", ATTENTION, "Q,K,V")):
        walls, cpus = [], []
        for _ in range(repeat):
            clear_caches()
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            backprop(eq, wrt, where)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        row("cnn", f"derive {name}", min(walls), "", None,
            f"median {show_time(statistics.median(walls))}, CPU {show_time(min(cpus))}; with steps and guard; "
            "target ≤ 2 s")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), CNN_CHILD] + (["--quick"] if QUICK else []),
                         capture_output=True, text=True, env={**os.environ, **ONE_THREAD}, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    for r in json.loads(out.stdout.strip().splitlines()[-1]):
        row(*r)


def _hand_conv_backward(X, F, dY):
    """conv2d's backward as one writes it by hand: im2col as a window view, the two products
    by tensordot, col2im as a sum over the kernel's R·S offsets."""
    R, S = F.shape[2:]
    Ho, Wo = dY.shape[2:]
    cols = np.lib.stride_tricks.sliding_window_view(X, (R, S), axis=(2, 3))      # N, C, Ho, Wo, R, S
    dF = np.tensordot(dY, cols, axes=([0, 2, 3], [0, 2, 3]))                      # O, C, R, S
    db = dY.sum(axis=(0, 2, 3))
    dcols = np.tensordot(dY, F, axes=([1], [0]))                                   # N, Ho, Wo, C, R, S
    dX = np.zeros_like(X)
    for r in range(R):
        for s_ in range(S):
            dX[:, :, r:r + Ho, s_:s_ + Wo] += dcols[..., r, s_].transpose(0, 3, 1, 2)
    return dX, dF, db


def _hand_attention_backward(Q, K, V, dO):
    """Batched attention's forward values cached (A = softmax(Q Kᵀ/√D)), the backward by hand."""
    c = 1 / np.sqrt(Q.shape[-1])
    z = Q @ np.swapaxes(K, -1, -2) * c
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    A = e / e.sum(axis=-1, keepdims=True)

    def back():
        dA = dO @ np.swapaxes(V, -1, -2)
        dS = A * (dA - (A * dA).sum(axis=-1, keepdims=True)) * c
        return dS @ K, np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(A, -1, -2) @ dO
    return back


def _cnn_rows_child(quick):
    """In the child (BLAS on one thread): generated conv2d and attention backward passes next
    to hand NumPy, (min, median) over batches of calls, calls interleaved; printed as JSON."""
    import json

    from indexcalc.codegen import generate
    gen = _load(generate(os.path.join(ROOT, "problems", "cnn_attention.toml")), "cnn_modules_bench")
    rng = np.random.default_rng(0)
    repeat = 3 if quick else 9
    rows = []
    N, C, H, O, K = 32, 8, 16, 16, 3
    conv = gen.Conv2dModule(C, O, K, K)
    X = rng.normal(size=(N, C, H, H))
    Y = conv.forward(X)
    dY = rng.normal(size=Y.shape)
    F = conv.params["weight"]
    ours = conv.backward(dY)
    hand = _hand_conv_backward(X, F, dY)
    assert np.allclose(ours, hand[0]) and np.allclose(conv.grads["weight"], hand[1])
    assert np.allclose(conv.grads["bias"], hand[2])
    (a, am), (b, bm) = _timed(lambda: conv.backward(dY), lambda: _hand_conv_backward(X, F, dY), repeat)
    rows.append(("cnn", f"conv2d backward (dX, dF, db), N={N} C={C} H=W={H} O={O} K={K}", a,
                 "hand NumPy im2col", b, f"medians {show_time(am)} / {show_time(bm)} ({am / bm:.2f}); "
                 "generated code; BLAS 1 thread; target ≤ 1.5×"))
    B, S, D = 8, 128, 64
    att = gen.AttentionModule()
    Q, Kt, V = (rng.normal(size=(B, S, D)) for _ in range(3))
    out = att.forward(Q, Kt, V)
    dO = rng.normal(size=out.shape)
    hand = _hand_attention_backward(Q, Kt, V, dO)
    assert all(np.allclose(x, y) for x, y in zip(att.backward(dO), hand()))
    (a, am), (b, bm) = _timed(lambda: att.backward(dO), hand, repeat)
    rows.append(("cnn", f"batched attention backward (dQ, dK, dV), B={B} S={S} D={D}", a, "hand NumPy", b,
                 f"medians {show_time(am)} / {show_time(bm)} ({am / bm:.2f}); generated code; BLAS 1 thread; "
                 "target ≤ 1.2×"))
    print(json.dumps(rows))


def main(argv=None):
    global QUICK
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    groups = {"derive": bench_derive, "scaling": bench_scaling, "cold": bench_cold,
              "backward": bench_backward, "modules": bench_modules, "hessian": bench_hessian, "grade": bench_grade,
              "guard": bench_guard, "linear": bench_linear, "code": bench_code, "cnn": bench_cnn}
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--only", choices=groups, help="run one group of rows")
    ap.add_argument("--readme", action="store_true",
                    help="also write the table into README.md, between its bench:start and bench:end marks")
    args = ap.parse_args(argv)
    if args.readme and (args.quick or args.only == "hessian"):
        ap.error("--readme writes measured figures: run it without --quick (and --only hessian, whose "
                 "footnotes are numbered with the whole table)")
    QUICK = args.quick
    from indexcalc.pipeline import derive
    derive("x^T B x", "x")              # import and first-call costs are the cold row's business
    for name, group in groups.items():
        if args.only in (None, name):
            group()
    flags = (" --quick" if QUICK else "") + (f" --only {args.only}" if args.only else "")
    print(f"machine: {machine()}")
    print(f"run: {time.strftime('%Y-%m-%d')}, `python bench/run.py{flags}`\n")
    print(report())
    if args.readme:
        write_readme(report() if not args.only else None, args.only)


def report() -> str:
    """The table and its footnotes, each once."""
    notes = [f"[{k}] `indexcalc derive \"{expr}\" --wrt x --order 2 --format numpy`:\n\n"
             + "\n".join("    " + line for line in code.rstrip().splitlines())
             for k, (expr, code) in enumerate(GENERATED.items(), 1)]
    return "\n\n".join([table()] + notes)


README_START, README_END = "<!-- bench:start", "<!-- bench:end -->"


def write_readme(text, only=None) -> None:
    """Replace what lies between README.md's bench marks with `text` (whole file or nothing);
    with `only` (one group's run), replace that group's rows of the table there and keep the
    other rows and the footnotes as they are."""
    path = os.path.join(ROOT, "README.md")
    with open(path, encoding="utf-8") as f:
        readme = f.read()
    start = readme.index("\n", readme.index(README_START)) + 1
    end = readme.index(README_END)
    if only:
        text = merged(readme[start:end], only)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(readme[:start] + "\n" + text + "\n" + readme[end:])
    os.replace(tmp, path)


def merged(block: str, group: str) -> str:
    """README's bench block with `group`'s rows replaced by this run's, where that group's rows
    stood (at the end if it had none); every other row and the footnotes unchanged."""
    lines = block.strip("\n").splitlines()
    rows_at = [k for k, line in enumerate(lines) if line.startswith("|")]
    old = [tuple(c[1:].rstrip() for c in lines[k].strip()[1:-1].split("|")) for k in rows_at[2:]]
    new = [r for r in cells() if r[0] == group]
    first = next((k for k, r in enumerate(old) if r[0] == group), len(old))
    rows = [r for r in old[:first] if r[0] != group] + new + [r for r in old[first:] if r[0] != group]
    rest = lines[rows_at[-1] + 1:] if rows_at else lines
    return "\n".join([table(rows)] + rest).rstrip("\n")


if __name__ == "__main__":
    if CODE_CHILD in sys.argv:
        _code_rows_child("--quick" in sys.argv)
    elif CNN_CHILD in sys.argv:
        _cnn_rows_child("--quick" in sys.argv)
    else:
        main()
