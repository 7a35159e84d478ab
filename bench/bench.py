"""Speed of indexcalc: seed exercises in-process (with steps and the numerical guard), a cold
CLI process beside `python -c "import sympy"` in the same run, and two scaling families.

    python bench/bench.py
"""
import statistics
import subprocess
import sys
import time

from indexcalc.pipeline import derive

SEEDS = [
    ("x^T a", "x", None), ("b^T X c", "X", None), ("Q^T Q", "Q", None), ("x^T B x", "x", None),
    ("tr(V X W)", "X", "V: n×m, X: m×p, W: p×n"), ("||w||", "w", None), ("tr(S)", "S", None),
    ("-sum(T ∘ log(X)) / S", "X", "X: S×C, T: S×C"), ("-sum(T ∘ log(softmax(X))) / S", "X", "X: S×C, T: S×C"),
    ("sum((X W) .^ 2)", "X", None), ("softmax(z)", "z", None),
]


def best(f, n=3):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def cold(argv, n=7):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    derive("x^T B x", "x")   # warm the caches once
    print("seed exercises, in-process, with steps and verification")
    for expr, wrt, where in SEEDS:
        print(f"  {expr:<36} {best(lambda: derive(expr, wrt, where)) * 1000:8.1f} ms")
    sympy = cold([sys.executable, "-c", "import sympy"])
    # SymPy imports sympy.tensor.tensor (and combinatorics) lazily on the first Add of two
    # terms; any use of SymPy pays it, "import sympy" alone does not.
    sympy_add = cold([sys.executable, "-c", "import sympy; x, y = sympy.symbols('x y'); x + y"])
    cli = cold([sys.executable, "-m", "indexcalc", "derive", "x^T B x", "--wrt", "x"])
    print(f"\ncold process: import sympy {sympy:.3f} s, import sympy + first x+y {sympy_add:.3f} s, "
          f"indexcalc derive {cli:.3f} s")
    print(f"  ratio to import sympy {cli / sympy:.2f}x (target <= 1.5x), "
          f"to import sympy + first x+y {cli / sympy_add:.2f}x")
    print("\ntr(A1 A2 ... An X) by X (target n=128 <= 0.5 s)")
    for n in (8, 32, 128):
        expr = "tr(" + " ".join(f"A{k}" for k in range(1, n + 1)) + " X)"
        print(f"  n = {n:<4} {best(lambda: derive(expr, 'X'), 1):8.3f} s")
    print("\ntr(X^k) by X (target k=32 <= 1 s)")
    for k in (4, 16, 32):
        print(f"  k = {k:<4} {best(lambda: derive(f'tr(X^{k})', 'X'), 1):8.3f} s")


if __name__ == "__main__":
    main()
