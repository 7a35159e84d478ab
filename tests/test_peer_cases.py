"""The peers' derivative tests (SymPy's test_derivatives.py, DiffMatic.jl's test suite) and The
Matrix Cookbook's identities (tests/peer_cases.py), in-process: indexcalc's `numpy` answer
against central finite differences of a NumPy reference written by hand. A case indexcalc does
not answer right today is xfail(strict=True) with its reason, so that it flips when fixed.

Every case runs by default except the slowest (SLOW: 13 s of the ~45 s); INDEXCALC_PEERS=all
runs them all. The whole file through the command line:
    python3 /work/shared/tools/answercheck.py --cases tests/peer_cases.py
"""
import keyword
import os

import numpy as np
import pytest

from indexcalc import derive
from indexcalc.check import check   # the function (the package attribute can be the submodule)

from .conftest import finite_jacobian
from .peer_cases import CASES

EVERY = os.environ.get("INDEXCALC_PEERS") == "all"
SLOW = {"diffmatic-74-x-h",     # the Hessian of sin(cos(x^T A B^T x)): 9 s
        "sympy-64-X"}           # SymPy's complicated matrix expression: 4 s


def make_array(shape, how, rng):
    if shape == ():
        return float(rng.uniform(0.5, 1.5))
    if how == "positive":
        return rng.uniform(0.2, 1.2, size=shape)
    if how == "spd":
        a = rng.normal(size=shape)
        return a @ a.T + shape[0] * np.eye(shape[0])
    if how == "wellcond":
        return rng.normal(size=shape) * 0.3 + 2.0 * np.eye(shape[0])
    if how == "awayfromzero":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 1.3, size=shape)
    return rng.normal(size=shape)


def expected(case, env):
    if case.get("order", 1) == 2:
        grad = lambda e: finite_jacobian(case["ref"], e, case["wrt"], eps=1e-5)
        return finite_jacobian(grad, env, case["wrt"], eps=1e-4)
    return finite_jacobian(case["ref"], env, case["wrt"])


def size_bindings(d, env):
    sizes = {}
    for name, info in d.variables.items():
        if name in env:
            for dim, n in zip(info.array_shape, np.shape(env[name])):
                if isinstance(dim, str):
                    sizes[dim] = n
    return sizes


def _param(case):
    marks = [pytest.mark.xfail(reason=case["xfail"], strict=True)] if case.get("xfail") else []
    if case["id"] in SLOW and not EVERY:
        marks.append(pytest.mark.skip(reason="slow: INDEXCALC_PEERS=all runs it"))
    return pytest.param(case, id=case["id"], marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_peer_case(case):
    rng = np.random.default_rng(7)
    if case["cmd"] == "check":
        return check_claim(case, rng)
    d = derive(case["input"], case["wrt"], case.get("where"), case.get("order", 1))
    result = next(r for r in d.results if r.wrt == case["wrt"])
    for _ in range(2):
        env = {n: make_array(tuple(s), case.get("gen", {}).get(n), rng) for n, s in case["shapes"].items()}
        names = {k + "_" if keyword.iskeyword(k) else k: v for k, v in env.items()}
        got = np.asarray(eval(result.numpy, {"np": np, **size_bindings(d, env), **names}), dtype=float)
        want = expected(case, env)
        assert got.shape == want.shape, (result.numpy, got.shape, want.shape)
        tol = 1e-4 if case.get("order", 1) == 2 else 1e-5
        assert np.allclose(got, want, rtol=tol, atol=tol * (1 + np.abs(want).max())), (result.numpy, got, want)


def check_claim(case, rng):
    """The claim's hand NumPy agrees with finite differences exactly when the case says it is
    right (so the case itself is right), and indexcalc's check says the same."""
    agree = []
    for _ in range(2):
        env = {n: make_array(tuple(s), case.get("gen", {}).get(n), rng) for n, s in case["shapes"].items()}
        want = expected(case, env)
        got = np.asarray(case["claim"](env), dtype=float)
        agree.append(got.shape == want.shape and np.allclose(got, want, rtol=1e-5, atol=1e-5 * (1 + np.abs(want).max())))
    assert all(agree) == case["correct"], ("the case's own claim", case["answer"], agree)
    verdict = check(case["input"], case["wrt"], case["answer"], case.get("where"))
    assert verdict.correct is case["correct"], (case["answer"], verdict.reason)
    if not case["correct"]:
        assert verdict.counterexample, "a wrong answer with no counterexample"


def classify(case):
    """('right' | 'WRONG' | 'refused' | 'crashed', detail) for one case, as the CLI would end."""
    from indexcalc.errors import IndexCalcError, VerificationError
    try:
        test_peer_case(case)
    except VerificationError as e:
        return "crashed", f"exit 3: {e}"
    except IndexCalcError as e:
        return "refused", f"exit 2: {str(e).splitlines()[0]}"
    except AssertionError as e:
        return "WRONG", str(e)[:300]
    except Exception as e:  # noqa: BLE001 - a traceback from the CLI
        return "crashed", f"{type(e).__name__}: {e}"[:300]
    return "right", ""


if __name__ == "__main__":   # python -m tests.test_peer_cases [filter]: the figures per suite
    import shlex
    import sys
    from collections import Counter
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    tally = {}
    for case in CASES:
        if only not in case["id"]:
            continue
        verdict, detail = classify(case)
        tally.setdefault(case["id"].split("-")[0], Counter())[verdict] += 1
        if verdict != "right":
            argv = ["indexcalc", case["cmd"], case["input"], "--wrt", case["wrt"]]
            argv += ["--answer", case["answer"]] if case["cmd"] == "check" else []
            argv += ["--where", case["where"]] if case.get("where") else []
            argv += ["--order", "2"] if case.get("order", 1) == 2 else []
            print(f"{verdict:8} {case['id']:<20} $ {shlex.join(argv)}\n         {detail}")
    for suite, c in tally.items():
        n = sum(c.values())
        print(f"{suite}: {n} cases: right {c['right']}, WRONG {c['WRONG']}, refused {c['refused']}, crashed {c['crashed']}")
