"""Problem files are data (issue 13, parts 3-4): a hostile file is refused with exit 2 or gives
output that runs nothing and reads nothing; every field's type is checked; pdflatex cannot read
files outside its directory; the grammar cache cannot be planted."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from indexcalc import solve as S
from indexcalc.cli import main
from indexcalc.errors import IndexCalcError
from indexcalc.problems import Problem, ProblemSet

ROOT = Path(__file__).resolve().parent.parent
PDFLATEX = shutil.which("pdflatex")
PDFTOTEXT = shutil.which("pdftotext")


class Run:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_cli(args):
    """The command line, in this process (a fresh one costs a second of imports)."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(args)
        except SystemExit as e:
            status = e.code
    return Run(status, out.getvalue(), err.getvalue())


def assert_refused(p):
    """Exit 2, one message (a parse error adds the input and a caret), no traceback."""
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr and "internal" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert p.stderr.startswith("indexcalc: error: ") and len(lines) == (3 if "column" in lines[0] else 1), p.stderr


def toml_string(s):
    return json.dumps(s, ensure_ascii=False)      # a TOML basic string is a JSON string


# ---- codegen: nothing from the file runs --------------------------------------------------------
LINEAR = {"id": "linear", "title": "Linear", "statement": "s", "equation": "Y = X W^T + b",
          "where": "X: S×M, W: N×M, b: 1×N", "wrt": ["W", "b", "X"]}
LINEAR_MODULE = {"class": "LinearModule", "input": "X", "params": {"weight": "W", "bias": "b"},
                 "sizes": {"M": "in_features", "N": "out_features"}, "init": {"weight": "normal", "bias": "zeros"}}


def module_file(path: Path, problem: dict, module: dict):
    lines = ['title = "t"', "[[problem]]"]
    for k, v in problem.items():
        lines.append(f"{k} = {json.dumps(v, ensure_ascii=False)}")
    lines.append("[problem.module]")
    for k, v in module.items():
        if isinstance(v, dict):
            v = "{ " + ", ".join(f"{toml_string(a)} = {toml_string(b)}" for a, b in v.items()) + " }"
        else:
            v = toml_string(v)
        lines.append(f"{k} = {v}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def payload(marker):
    """A shell command that creates the marker file (named relative to the working directory)."""
    return f"__import__('os').system('touch {Path(marker).name}')"


def hostile_modules(marker):
    """(name, problem changes, module changes): each smuggles a shell command into the source."""
    p = payload(marker)
    return [
        ("class", {}, {"class": f"X(object):\n    {p}\nclass Y"}),
        ("class-expression", {}, {"class": f"X({p})"}),
        ("id-docstring", {"id": f'q""" + {p} + """'}, {}),
        ("id-backslash", {"id": 'q\\'}, {}),
        ("params-key", {}, {"params": {f'w"] = 0; {p}; x["': "W", "bias": "b"}}),
        ("params-value", {}, {"params": {"weight": p, "bias": "b"}}),
        ("sizes-value", {}, {"sizes": {"M": f"in_features=[{p}]", "N": "out_features"}}),
        ("sizes-key", {}, {"sizes": {f"M); {p}; (": "in_features", "N": "out_features"}}),
        ("init", {}, {"init": {"weight": p, "bias": "zeros"}}),
        ("input", {}, {"input": p}),
        ("target", {}, {"target": p}),
        ("where", {"where": f"X: S×M, W: N×M, b: 1×N, {p}: n"}, {}),
        ("equation", {"equation": f"Y = X W^T + b + {p}"}, {}),
    ]


def exercise_module(path: Path, marker: Path):
    """Import the generated file, instantiate every class and run forward and backward."""
    script = textwrap.dedent(f"""
        import importlib.util, inspect, numpy as np
        spec = importlib.util.spec_from_file_location("gen", {str(path)!r})
        m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        for name, cls in vars(m).items():
            if inspect.isclass(cls) and not name.startswith("_"):
                n = len(inspect.signature(cls).parameters) - 1
                layer = cls(*([3] * n))
                x = np.ones((2, 3))
                y = layer.forward(x)
                layer.backward(np.ones_like(y))
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       cwd=marker.parent)
    assert p.returncode == 0, p.stderr
    assert not marker.exists()


@pytest.mark.parametrize("case", [c[0] for c in hostile_modules("M")])
def test_hostile_codegen_files_run_nothing(tmp_path, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "MARK"
    _, pchange, mchange = next(c for c in hostile_modules(marker) if c[0] == case)
    src = module_file(tmp_path / "hostile.toml", {**LINEAR, **pchange}, {**LINEAR_MODULE, **mchange})
    out = tmp_path / "gen.py"
    p = run_cli(["codegen", str(src), "-o", str(out)])
    assert not marker.exists()
    if p.returncode == 0:
        exercise_module(out, marker)
    else:
        assert_refused(p)
        assert not out.exists()


def test_two_modules_of_one_name_are_refused(tmp_path):
    text = module_file(tmp_path / "one.toml", LINEAR, LINEAR_MODULE).read_text(encoding="utf-8")
    second = text.split("\n", 1)[1].replace('id = "linear"', 'id = "linear2"')
    (tmp_path / "two.toml").write_text(text + second, encoding="utf-8")
    p = run_cli(["codegen", str(tmp_path / "two.toml")])
    assert_refused(p)
    assert "LinearModule" in p.stderr


def test_a_file_name_cannot_end_the_module_docstring(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "MARK"
    src = module_file(tmp_path / f'a"""; {payload(marker)}; """\\.toml', LINEAR, LINEAR_MODULE)
    out = tmp_path / "gen.py"
    p = run_cli(["codegen", str(src), "-o", str(out)])
    assert p.returncode == 0, p.stderr
    exercise_module(out, marker)
    import ast
    for target in ("torch", "jax"):                   # rendered only: the frameworks may be absent
        p = run_cli(["codegen", str(src), "--target", target])
        assert p.returncode == 0, p.stderr
        calls = [n for n in ast.walk(ast.parse(p.stdout)) if isinstance(n, ast.Call)]
        assert not any(isinstance(c.func, ast.Name) and c.func.id == "__import__" for c in calls)


@pytest.mark.parametrize("problem,module", [
    # a parameter named np (the generated code's NumPy) and keywords
    ({"equation": "Y = X np^T + lambda", "where": "X: S×M, np: N×M, lambda: 1×N", "wrt": ["np", "lambda", "X"]},
     {"params": {"weight": "np", "bias": "lambda"}}),
    # a scalar parameter: no sizes at all
    ({"equation": "Y = a X", "where": "X: S×M, a: scalar", "wrt": ["a", "X"]},
     {"params": {"scale": "a"}, "sizes": {}, "init": {}}),
    # the input named y (the forward's argument for a loss module's labels) and x
    ({"equation": "Y = x W^T", "where": "x: S×M, W: N×M", "wrt": ["W", "x"]},
     {"input": "x", "params": {"weight": "W"}}),
])
def test_generated_modules_run_and_agree_with_finite_differences(tmp_path, problem, module):
    import importlib.util

    import numpy as np

    from .conftest import finite_jacobian
    spec_module = {**LINEAR_MODULE, **module}
    spec_module["init"] = {k: v for k, v in spec_module["init"].items() if k in spec_module["params"]}
    src = module_file(tmp_path / "m.toml", {**LINEAR, **problem}, spec_module)
    out = tmp_path / "gen.py"
    assert main(["codegen", str(src), "-o", str(out)]) == 0
    spec = importlib.util.spec_from_file_location("gen_ok", out)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    import inspect
    n_args = len(inspect.signature(m.LinearModule).parameters) - 1
    layer = m.LinearModule(*([3] * n_args))
    rng = np.random.default_rng(0)
    for key in layer.params:
        layer.params[key] = rng.normal(size=np.shape(layer.params[key]))
    x = rng.normal(size=(2, 3))
    y = layer.forward(x)
    dout = rng.normal(size=y.shape)
    dx = layer.backward(dout)
    want = finite_jacobian(lambda e: np.sum(dout * layer.forward(e["x"])), {"x": x}, "x")
    assert np.allclose(dx, want, atol=1e-6)
    for key in layer.params:
        base = layer.params[key]

        def f(e, key=key):
            layer.params[key] = e["p"]
            return np.sum(dout * layer.forward(x))
        want = finite_jacobian(f, {"p": base}, "p")
        layer.params[key] = base
        assert np.allclose(layer.grads[key], want, atol=1e-6), key


# ---- every field's type ----------------------------------------------------------------------------
GOOD = {"id": '"p"', "title": '"T"', "statement": '"S"', "expression": '"x^T x"', "where": '"x: n"',
        "wrt": '["x"]'}
BAD_FIELDS = [
    ("assume", "5"), ("at", "5"), ("where", '["x: n"]'), ("jacobian", '"yes"'), ("order", "true"),
    ("order", "3"), ("order", '"2"'), ("wrt", "5"), ("wrt", "[1]"), ("wrt", "[]"), ("claim", '"2 x"'),
    ("claim", "{ x = 2 }"), ("claim", '{ y = "x" }'), ("id", "5"), ("id", '""'), ("title", "[1]"),
    ("statement", "{ a = 1 }"), ("note", "1.5"), ("expression", "true"), ("id", '"a\\u001b[31mred"'),
    ("title", '"\\u0007bell"'), ("statement", '"\\\\input{/etc/hostname}"'),
    ("statement", '"\\\\begin{pdfobj} stream file {/etc/hostname}\\\\end{pdfobj}"'),
    ("statement", '"^^5cinput{/etc/hostname}"'), ("title", '"\\\\csname pdfobj\\\\endcsname"'),
    ("note", '"\\\\def\\\\x{pdfobj}\\\\begin\\\\x"'),
    ("note", '"\\\\href{run:/bin/sh}{click}"'), ("statement", '"\\\\pdfcatalog{/OpenAction 1 0 R}"'),
    ("title", '"\\\\lccode`m=`p \\\\lowercase{\\\\begin{matrix}}"'), ("module", "5"), ("module", '{ class = "A" }'),
    ("unknown", "1"),
]


@pytest.mark.parametrize("key,value", BAD_FIELDS)
def test_a_field_of_the_wrong_type_is_named_with_file_problem_and_field(tmp_path, key, value):
    fields = {**GOOD, key: value}
    path = tmp_path / "bad.toml"
    path.write_text('title = "t"\n[[problem]]\n' + "".join(f"{k} = {v}\n" for k, v in fields.items()),
                    encoding="utf-8")
    p = run_cli(["solve", str(path)])
    assert_refused(p)
    assert str(path) in p.stderr and key in p.stderr
    assert "\x1b" not in p.stderr and "\x07" not in p.stderr


@pytest.mark.parametrize("content", [
    b'title = "t\xff"\n', b"\xef\xbb\xbftitle = 5\n", b'title = "t"\n[[problem]]\nid = ', b"[[problem]]\n" * 2,
    b'title = 5\n[[problem]]\n', b'author = ["a"]\n[[problem]]\nid = "a"\n', b"problem = 5\n",
    b"problem = [5]\n", b'x = "' + b"[" * 5000 + b'"\n',
])
def test_unreadable_problem_files_are_exit_2(tmp_path, content):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    for command in (["solve", str(path)], ["codegen", str(path)]):
        assert_refused(run_cli(command))


def test_shipped_problem_files_pass_the_checks():
    from indexcalc.problems import load
    for f in sorted((ROOT / "problems").glob("*.toml")):
        assert load(f).problems


# ---- LaTeX: no file is read into the PDF -------------------------------------------------------------
def _secret(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRETMARKER42\n")
    return secret


def _pdf_text(pdf: Path) -> str:
    """The PDF's text, and every stream decompressed (a file embedded by \\pdfobj is not text)."""
    import re
    import zlib
    data = pdf.read_bytes()
    out = [data.decode("latin-1")]
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            out.append(zlib.decompress(m.group(1)).decode("latin-1"))
        except zlib.error:
            pass
    if PDFTOTEXT:
        out.append(subprocess.run([PDFTOTEXT, str(pdf), "-"], capture_output=True, text=True).stdout)
    return "\n".join(out)


def _problem(statement="Find it.", pid="p", title="A problem"):
    return Problem(pid, title, statement, "x^T x", False, ["x"], "x: n")


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
def test_a_problem_id_reaches_latex_only_as_a_checked_label(tmp_path):
    secret = _secret(tmp_path)
    pid = "q}\\input{" + str(secret) + "}\\label{z"
    path = tmp_path / "p.toml"
    path.write_text('title = "t"\n[[problem]]\n' + "".join(
        f"{k} = {v}\n" for k, v in {**GOOD, "id": toml_string(pid)}.items()), encoding="utf-8")
    pdf = tmp_path / "out.pdf"
    p = run_cli(["solve", str(path), "--format", "pdf", "-o", str(pdf)])
    assert p.returncode == 0, p.stderr
    assert "SECRETMARKER" not in _pdf_text(pdf)
    tex = run_cli(["solve", str(path), "--format", "latex"]).stdout
    assert "\\input" not in tex.split("\\begin{document}")[1]


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("statement", [
    "\\input{SECRET}",
    "\\newread\\r \\openin\\r=SECRET \\read\\r to\\l \\closein\\r [\\detokenize\\expandafter{\\l}]",
    "\\immediate\\pdfobj stream file {SECRET}\\pdfcatalog{/Leak \\the\\pdflastobj\\space 0 R}",
    "\\csname tex_pdfobj:D\\endcsname stream file {SECRET}\\pdfcatalog{/Leak \\the\\pdflastobj\\space 0 R}",
    "\\pdfprimitive\\pdfobj stream file {SECRET}\\pdfcatalog{/Leak \\the\\pdflastobj\\space 0 R}",
])
def test_even_past_the_file_checks_pdflatex_reads_no_file(tmp_path, statement):
    """The document is rendered from a problem that skipped problems.load's checks: TeX's own
    restrictions (openin_any=p) and the template's stop the read; solve reports a clear error
    or renders without the content."""
    secret = _secret(tmp_path)
    ps = ProblemSet(str(tmp_path / "p.toml"), "t", "", "", [], {})
    solution = S.run_problem(_problem(statement.replace("SECRET", str(secret))))
    tex = S.render_latex(ps, [solution])
    try:
        pdf = S.compile_pdf(tex)
    except IndexCalcError as e:
        assert "SECRETMARKER" not in str(e)
        return
    out = tmp_path / "out.pdf"
    out.write_bytes(pdf)
    assert "SECRETMARKER" not in _pdf_text(out)


def test_pdflatex_runs_paranoid_without_shell_escape(tmp_path):
    env = S.tex_environment(tmp_path)
    assert env["openin_any"] == "p" and env["openout_any"] == "p" and env["shell_escape"] == "f"
    assert env["TEXMFOUTPUT"] == str(tmp_path)


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
def test_statement_with_input_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('title = "t"\n[[problem]]\n' + "".join(
        f"{k} = {v}\n" for k, v in {**GOOD, "statement": toml_string("\\input{/etc/hostname}")}.items()),
        encoding="utf-8")
    p = run_cli(["solve", str(path), "--format", "pdf", "-o", str(tmp_path / "o.pdf")])
    assert_refused(p)
    assert "\\input" in p.stderr and not (tmp_path / "o.pdf").exists()


# ---- the grammar cache -----------------------------------------------------------------------------
def test_the_grammar_cache_is_private_json_and_a_planted_one_runs_nothing(tmp_path):
    import hashlib
    import pickle
    import tempfile
    marker = tmp_path / "MARK"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    cache_home = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    script = "from indexcalc.parse import parse; parse('x^T B x')"
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env)
    assert first.returncode == 0, first.stderr
    directory = cache_home / "indexcalc"
    cached = sorted(directory.glob("grammar-*.json"))
    assert cached and (directory.stat().st_mode & 0o777) == 0o700
    for path in cached:
        assert (path.stat().st_mode & 0o077) == 0
        json.loads(path.read_text())                              # JSON, not a pickle
    # plant pickles: where the old lark cache was (the shared temp directory), and in place of ours
    grammar = (ROOT / "indexcalc" / "grammar.lark").read_text(encoding="utf-8")
    old = Path(tempfile.gettempdir()) / f"indexcalc-grammar-{hashlib.sha1(grammar.encode()).hexdigest()[:12]}.lark.cache"
    planted = [old, *cached]
    for f in planted:
        try:
            f.write_bytes(pickle.dumps(Evil()))
        except OSError:
            pass
    again = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env)
    assert again.returncode == 0, again.stderr
    assert not marker.exists()
    for path in cached:
        json.loads(path.read_text())                              # rebuilt
    # a cache file others can write, or a cache directory others can enter, is not read
    from indexcalc import files
    path = cached[0]
    os.chmod(path, 0o666)
    assert files.read_private(path) is None
    os.chmod(path, 0o600)
    assert files.read_private(path) is not None
    os.chmod(directory, 0o777)
    none = subprocess.run([sys.executable, "-c", "from indexcalc.files import user_cache_dir; print(user_cache_dir())"],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    assert none.stdout.strip() == "None"
    old.unlink(missing_ok=True)
