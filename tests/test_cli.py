"""The command line: formats, exit statuses, and errors without tracebacks."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from indexcalc.cli import main


def run(*argv):
    return subprocess.run([sys.executable, "-m", "indexcalc", *argv], capture_output=True, text=True, timeout=60)


def test_derive_json_fields_and_numpy(capsys):
    assert main(["derive", "x^T B x", "--wrt", "x", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["command"] == "derive" and out["input"] == "x^T B x"
    assert out["variables"] == {"x": {"kind": "vector", "shape": ["n"]}, "B": {"kind": "matrix", "shape": ["n", "n"]}}
    r = out["results"][0]
    assert r["closed_form"] == "(B + B^T) x" and r["shape"] == ["n"]
    x, B = np.arange(3.0), np.arange(9.0).reshape(3, 3)
    assert np.allclose(eval(r["numpy"], {"np": np, "x": x, "B": B}), (B + B.T) @ x)
    assert {"rule", "latex", "text"} <= set(r["steps"][0])


@pytest.mark.parametrize("fmt", ["text", "latex", "numpy"])
def test_other_formats(fmt, capsys):
    assert main(["derive", "tr(V X W)", "--wrt", "X", "--where", "V: n×m, X: m×p, W: p×n", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert {"text": "V^T W^T", "latex": r"\mathbf{V}^{\top} \mathbf{W}^{\top}", "numpy": "V.T @ W.T"}[fmt] in out


def test_check_right_and_wrong(capsys):
    assert main(["check", "x^T B x", "--wrt", "x", "--answer", "(B + B^T) x", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["correct"] is True
    assert main(["check", "x^T B x", "--wrt", "x", "--answer", "2 B x", "--format", "json"]) == 1
    v = json.loads(capsys.readouterr().out)
    assert v["correct"] is False and v["counterexample"]["entry"] != []
    assert abs(v["counterexample"]["claimed"] - v["counterexample"]["actual"]) > 1e-6


def test_check_wrong_bias_names_the_shapes(capsys):
    assert main(["check", "Y = X W^T + b", "--wrt", "b", "--answer", "dY", "--where", "X: S×M, W: N×M, b: 1×N"]) == 1
    assert "S×N" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["derive", "x^T B x +", "--wrt", "x"], "^"),
    (["derive", "(x", "--wrt", "x"], "column"),
    (["derive", "x $ y", "--wrt", "x"], "unexpected character"),
    (["derive", "X W", "--wrt", "X", "--where", "X: S×M, W: N×M"], "N×M"),
    (["derive", "x^T B x", "--wrt", "y"], "does not appear"),
    (["derive", "tr(X, Y)", "--wrt", "X"], "tr takes"),
    (["derive", "conv(h)", "--wrt", "h"], "conv takes"),
    (["derive", "conv(h, W)", "--wrt", "h"], "takes vectors"),
    (["derive", "x + y^T", "--wrt", "x"], "row and a column"),
    (["derive", "X / Y", "--wrt", "X"], "element-wise division"),
    (["derive", "x^T B x", "--wrt", "x", "--where", "x: ???"], "shape"),
    (["derive", "", "--wrt", "x"], "empty"),
    (["derive", "A^0.5", "--wrt", "A"], "matrix power"),
])
def test_bad_input_exits_2_with_a_message(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_python_dash_m_and_no_traceback():
    p = run("derive", "x^T B x )", "--wrt", "x")
    assert p.returncode == 2 and "Traceback" not in p.stderr and "^" in p.stderr
    p = run("derive", "x^T B x", "--wrt", "x", "--format", "numpy")
    assert p.returncode == 0
    # --format numpy prints the complete function (SPEC §3 `function`): run it and compare values
    import numpy as np
    space = {"np": np}
    exec(p.stdout, space)
    rng = np.random.default_rng(0)
    x, B = rng.normal(size=3), rng.normal(size=(3, 3))
    assert np.allclose(space["d_x"](x=x, B=B), (B + B.T) @ x)


# as a user's shell has it: output to a pipe is buffered, so what is not flushed is lost
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


@pytest.mark.parametrize("argv", [
    ["derive", "x^T B x", "--wrt", "x", "--order", "2", "--format", "json"],
    ["check", "x^T B x", "--wrt", "x", "--answer", "2 B x"],
    ["derive", "x^T B x", "--wrt", "y"],
])
def test_the_process_exits_early_with_mains_status_and_all_its_output(argv, capsys):
    """`python -m indexcalc` and the console script leave with os._exit after main():
    the status and every byte of output must be main()'s."""
    status = main(argv)
    captured = capsys.readouterr()
    p = subprocess.run([sys.executable, "-m", "indexcalc", *argv], capture_output=True, text=True, timeout=60,
                       env=BUFFERED)
    assert p.returncode == status and p.stdout == captured.out and p.stderr == captured.err


def test_a_reader_that_left_early_is_no_internal_error():
    p = subprocess.Popen([sys.executable, "-m", "indexcalc", "derive", "x^T B x", "--wrt", "x"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=BUFFERED)
    p.stdout.close()                    # the reader is gone before a byte is written
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 1 and "Traceback" not in err and "internal" not in err


def test_the_command_asks_blas_for_one_thread_unless_told():
    from indexcalc.cli import one_blas_thread
    env = {}
    one_blas_thread(env)
    assert env == {"OPENBLAS_NUM_THREADS": "1"}
    for given in ({"OMP_NUM_THREADS": "4"}, {"OPENBLAS_NUM_THREADS": "8"}, {"MKL_NUM_THREADS": "2"}):
        env = dict(given)
        one_blas_thread(env)
        assert env == given


def test_api_closed_form():
    from indexcalc import derive
    assert derive("x^T B x", wrt="x").closed_form == "(B + B^T) x"


@pytest.mark.parametrize("expr,wrt,shapes,ref", [
    ("X^-T", "X", {"X": (3, 3)}, lambda e: np.linalg.inv(e["X"]).T),
    ("T^T T", "T", {"T": (4, 3)}, lambda e: e["T"].T @ e["T"]),
    ("x^{T} y", "x", {"x": (3,), "y": (3,)}, lambda e: e["x"] @ e["y"]),
    ("a^T x", "x", {"a": (3,), "x": (3,)}, lambda e: e["a"] @ e["x"]),
])
def test_t_is_transpose_in_an_exponent_and_a_name_elsewhere(expr, wrt, shapes, ref):
    from indexcalc import derive
    from .conftest import finite_jacobian
    rng = np.random.default_rng(3)
    env = {n: rng.normal(size=s) * 0.3 + (2 * np.eye(s[0]) if n == "X" else 0) for n, s in shapes.items()}
    got = np.asarray(eval(derive(expr, wrt).numpy, {"np": np, **env}), dtype=float)
    assert np.allclose(got, finite_jacobian(ref, env, wrt), atol=1e-6)
