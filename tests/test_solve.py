"""`indexcalc solve`: every problem file solves; its LaTeX compiles with a real pdflatex; the
numbers of seed 002's exercise; claimed answers checked; problem-file errors; Jupyter."""
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from indexcalc import derive
from indexcalc import solve as S
from indexcalc.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROBLEM_FILES = sorted((ROOT / "problems").glob("*.toml"))
# CI installs TeX Live and sets this: there a missing pdflatex is a failure, not a skip
REQUIRE_LATEX = os.environ.get("INDEXCALC_REQUIRE_LATEX") == "1"
LEAKS = ["Dummy", "_d", "Lambda", "Piecewise", "KroneckerDelta", "@", "**", "None", "Partial("]


@pytest.fixture(scope="module")
def solved():
    return {f.stem: S.solve(f) for f in PROBLEM_FILES}


def test_there_is_a_problem_file_per_seed_assignment():
    assert {"index_gymnastics", "mlp", "affine", "softmax_conv", "student_solutions_001"} <= {f.stem for f in PROBLEM_FILES}


@pytest.mark.parametrize("path", PROBLEM_FILES, ids=lambda p: p.stem)
def test_every_problem_solves_in_text(path, solved):
    # the module's solutions, rendered as `solve` renders them (it solved every file a second
    # time through main(): 10 s for cnn_attention; the command line is tested on its own below)
    out = S.render_text(*solved[path.stem])
    assert "not supported" not in out
    prose = "\n".join(line for line in out.splitlines() if not line.startswith("numpy:"))   # NumPy's @
    for leak in LEAKS:
        if leak == "_d":            # a SymPy Dummy prints _d; Σ_d,e,f and X_dqef are index names
            assert not re.search(r"(?<![Σ,\w])_d", prose), leak
            continue
        assert leak not in prose, leak
    assert out.count("checked:") >= len(S.load(path).problems)


def _compile(tex: str, tmp_path: Path) -> str:
    exe = S.latex_compiler()
    if exe is None:
        if REQUIRE_LATEX:
            pytest.fail("pdflatex is not installed, and INDEXCALC_REQUIRE_LATEX=1")
        pytest.skip("pdflatex is not installed (CI installs TeX Live)")
    (tmp_path / "doc.tex").write_text(tex, encoding="utf-8")
    for _ in range(2):                 # twice: references resolve on the second run
        run = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                             capture_output=True, text=True, errors="replace", timeout=180)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert run.returncode == 0, S.latex_errors(run.stdout)
    assert "Undefined control sequence" not in log
    assert not re.search(r"^! ", log, re.M), S.latex_errors(log)
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
    return log


@pytest.mark.parametrize("path", PROBLEM_FILES, ids=lambda p: p.stem)
def test_latex_compiles_with_pdflatex(path, solved, tmp_path):
    ps, solutions = solved[path.stem]
    tex = S.render_latex(ps, solutions)
    # no formula is scaled to fit (a scaled one is too small to read): long ones are broken
    # over lines and written with named intermediates instead
    assert not re.search(r"\\(resizebox|scalebox|tiny|scriptsize)\b", tex[tex.index(r"\begin{document}"):])
    log = _compile(tex, tmp_path)
    # readable line breaks: nothing sticks out into the margin, no box is too tall
    wide = re.findall(r"Overfull \\[hv]box \(([\d.]+)pt too (?:wide|high)\)[^\n]*", log)
    assert not wide, f"overfull boxes: {wide}"
    # every reference resolved
    assert not re.search(r"Reference `[^']*' on page \d+ undefined|There were undefined references|"
                         r"Rerun to get", log), "unresolved references"


@pytest.mark.parametrize("path", PROBLEM_FILES, ids=lambda p: p.stem)
def test_no_internal_names_leak_into_the_document(path, solved):
    ps, solutions = solved[path.stem]
    tex = S.render_latex(ps, solutions)
    body = tex[tex.index(r"\begin{document}"):]
    for leak in LEAKS:
        assert leak not in body, leak


def test_every_answer_in_the_documents_matches_finite_differences(solved):
    """Each first derivative a document shows (its NumPy form, and the form written with the
    module's output) against central differences of the problem, at a point the guard did not
    use. Second derivatives are checked by the guard only."""
    from indexcalc import verify as V
    from indexcalc.evaluate import evaluate
    rng = np.random.default_rng(2024)
    checked = 0
    for ps, solutions in solved.values():
        for s in solutions:
            d = s.derivation
            for r in d.results:
                if r.order != 1:
                    continue
                if getattr(d, "problem", None) is not None:      # index notation: its parsed input
                    checked += _check_index_answer(d, r, rng)
                    continue
                point = V.sample(d.tree, d.variables, rng)
                want = V.jacobian(V.value_fn(d.tree, point), point, r.wrt)
                assert V.close(V.eval_code(r.numpy, point), want), (s.problem.id, r.wrt)
                folded = s.folded.get(r.wrt)
                if folded is not None and not s.assumed:
                    env = dict(point.env2d)
                    env[d.output] = evaluate(d.rhs, env, point.sizes)
                    got = np.reshape(evaluate(folded, env, point.sizes), want.shape)
                    assert V.close(got, want), (s.problem.id, r.wrt, "written with the output")
                checked += 1
    assert checked >= 30


def _check_index_answer(d, r, rng) -> int:
    """An index-notation answer along a random direction against central differences of the
    input evaluated from its parsed tree (not our lowering)."""
    from indexcalc import index_pipeline as IP
    from indexcalc import verify as V
    from indexcalc.index_eval import domains
    sizes = IP.choose_sizes(d.problem, d.variables)
    point = IP.make_point(d.problem, d.variables, sizes, rng, 0, domains(d.problem))
    u = rng.normal(size=np.shape(point.env[r.wrt]))
    want = IP._directional(d.problem, point, r.wrt, u, d.upstream, 1e-6)
    got = IP._projected(V.eval_code(r.numpy, point), u, u.ndim)
    assert V.close(got, want), (d.input, r.wrt)
    return 1


def test_seed_002_numbers(solved):
    _, solutions = solved["affine"]
    by_id = {s.problem.id: s for s in solutions}
    at = by_id["numbers-loss"].at
    assert at["value"] == pytest.approx(52.0)
    assert np.allclose(at["derivatives"]["X"], [[4, 4], [20, 20]])
    assert np.allclose(at["derivatives"]["W"], [[20, 20], [32, 32]])
    assert np.allclose(by_id["numbers-dldf"].at["derivatives"]["F"], [[1, 1], [1, 1]])
    assert np.allclose(by_id["numbers-dldy"].at["derivatives"]["Y"], [[2, 2], [10, 10]])


def test_softmax_jacobian_written_with_p(solved):
    from indexcalc.evaluate import evaluate
    from indexcalc.printing.text import to_text
    _, solutions = solved["softmax_conv"]
    s = next(s for s in solutions if s.problem.id.startswith("q2.4"))
    folded = s.folded["x"]
    assert to_text(folded) == "diag(p) - p p^T"
    # the tool's folded form, evaluated, against central differences of softmax at a point
    x = np.array([0.3, -1.2, 2.0])
    softmax = lambda z: np.exp(z) / np.exp(z).sum()
    jac = np.array([(softmax(x + e) - softmax(x - e)) / 2e-6 for e in np.eye(3) * 1e-6]).T
    got = evaluate(folded, {"x": x[:, None], "p": softmax(x)[:, None]}, {"K": 3})
    assert np.allclose(got, jac, atol=1e-6)


def test_seed_001_claims(solved):
    _, solutions = solved["student_solutions_001"]
    verdicts = {(s.problem.id, c.wrt): c.verdict.correct for s in solutions for c in s.claims}
    assert verdicts == {("linear-W", "W"): True, ("linear-b", "b"): False, ("linear-X", "X"): True,
                        ("activation", "X"): True}


def _write(tmp_path, text):
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    return path


WRONG_CLAIM = '''title = "A student's answers"
[[problem]]
id = "quad"
title = "A quadratic form"
statement = 'Find $\\partial \\mathbf{x}^\\top \\mathbf{B} \\mathbf{x} / \\partial \\mathbf{x}$.'
expression = "x^T B x"
wrt = "x"
claim = { x = "2 B x" }
'''


def test_a_wrong_claim_gets_a_counterexample_and_the_right_answer(tmp_path, capsys):
    path = _write(tmp_path, WRONG_CLAIM)
    ps, solutions = S.solve(path)
    c = solutions[0].claims[0]
    ce = c.verdict.counterexample
    assert not c.verdict.correct and abs(ce["claimed"] - ce["actual"]) > 1e-6
    tex = S.render_latex(ps, solutions)
    assert "Wrong." in tex and "counterexample" in tex
    assert r"\boxed{\frac{\partial f}{\partial \mathbf{x}} = \left(\mathbf{B} + \mathbf{B}^{\top}\right) \mathbf{x}}" in tex
    assert main(["solve", str(path)]) == 0
    assert "WRONG" in capsys.readouterr().out


def test_solve_writes_latex_to_a_file(tmp_path, capsys):
    out = tmp_path / "s.tex"
    assert main(["solve", str(ROOT / "problems" / "index_gymnastics.toml"), "--format", "latex", "-o", str(out)]) == 0
    assert out.read_text().startswith(r"\documentclass")
    # without --format the suffix says which (-o solutions.pdf wrote the text into a .pdf); a
    # format the suffix contradicts, or a problem file's suffix, is refused before any work
    from indexcalc.cli import _solve_format
    assert [_solve_format(None, o) for o in ("s.pdf", "s.TEX", "s.txt", "s.out", None)] == \
        ["pdf", "latex", "text", "text", "text"]
    for fmt, o in [("pdf", "t.tex"), ("latex", "t.pdf"), (None, "other.toml"), ("pdf", "answers.csv")]:
        assert main(["solve", str(ROOT / "problems" / "affine.toml"), *(["--format", fmt] if fmt else []),
                     "-o", str(tmp_path / o)]) == 2
        assert not (tmp_path / o).exists()
    assert "drop --format" in capsys.readouterr().err


def test_pdf(tmp_path):
    if S.latex_compiler() is None and not REQUIRE_LATEX:
        pytest.skip("pdflatex is not installed")
    out = tmp_path / "s.pdf"
    assert main(["solve", str(ROOT / "problems" / "index_gymnastics.toml"), "--format", "pdf", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF")


def test_pdf_without_latex_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(S, "latex_compiler", lambda: None)
    assert main(["solve", str(ROOT / "problems" / "index_gymnastics.toml"), "--format", "pdf",
                 "-o", str(tmp_path / "s.pdf")]) == 2
    err = capsys.readouterr().err
    assert "pdflatex" in err and "--format latex" in err and "Traceback" not in err


@pytest.mark.parametrize("text,needle", [
    ('[[problem]]\nid = "a"\ntitle = "t"\nstatement = "s"\nexpression = "x^T x"\nwrt = "x"\nanswr = "2 x"\n', "unknown key answr"),
    ('[[problem]]\nid = "a"\ntitle = "t"\nstatement = "s"\nexpression = "x^T x"\n', "has no `wrt`"),
    ('[[problem]]\nid = "a"\ntitle = "t"\nstatement = "s"\nwrt = "x"\n', "exactly one of `expression` and `equation`"),
    ('[[problem]]\nid = "a"\ntitle = "t"\nstatement = "s"\nexpression = "x^T x"\nwrt = "x"\nclaim = { y = "x" }\n', "not in `wrt`"),
    ('title = "no problems"\n', "no [[problem]]"),
    ('[[problem]\n', "not valid TOML"),
    ('[[problem]]\nid = "a"\ntitle = "t"\nstatement = "s"\nexpression = "x^T B x +"\nwrt = "x"\n', ".toml: problem 'a': column 10"),
])
def test_problem_file_errors_exit_2(tmp_path, capsys, text, needle):
    assert main(["solve", str(_write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_a_problem_file_and_an_answers_file_are_read_alike(tmp_path, capsys):
    """One reader for both inputs (files.read_text): a byte that is not UTF-8 is named with its
    line in a problem file as in an answers file, and a NUL is refused in both."""
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'title = "ok"\n[[problem]]\nid = "a\xe9"\n')
    assert main(["solve", str(bad)]) == 2
    assert "line 3: not UTF-8 text (byte 0xe9); save the problem file as UTF-8" in capsys.readouterr().err
    nul = tmp_path / "nul.toml"
    nul.write_bytes(b'title = "ok"\x00\n')
    assert main(["solve", str(nul)]) == 2
    assert "line 1: a NUL character" in capsys.readouterr().err


def test_missing_problem_file_exits_2(capsys):
    assert main(["solve", "no/such/file.toml"]) == 2
    assert "no problem file" in capsys.readouterr().err


def test_repr_latex_shows_the_derivation(tmp_path):
    d = derive("tr(V X W)", wrt="X")
    s = d._repr_latex_()
    assert s.startswith("$$") and s.endswith("$$")
    assert r"\begin{aligned}" in s and r"\boxed" in s and r"\delta" in s and r"\sum" in s
    doc = "\\documentclass{article}\\usepackage{amsmath,amssymb}\\begin{document}\n" + s + "\n\\end{document}\n"
    _compile(doc, tmp_path)


def test_long_sums_are_broken_over_lines():
    from indexcalc.output import break_sum, visible_width
    long = " + ".join([r"\sum_{p,q} A_{pq} B_{qp} \frac{\partial X_{pq}}{\partial X_{ij}}"] * 6)
    pieces = break_sum(long)
    assert len(pieces) > 1 and all(visible_width(p) <= 64 for p in pieces)
    assert " ".join(pieces).replace("  ", " ") == long


def test_the_readme_example_is_a_problem_file_that_solves(tmp_path):
    block = re.search(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S).group(1)
    _, solutions = S.solve(_write(tmp_path, block))
    verdicts = {c.wrt: c.verdict.correct for s in solutions for c in s.claims}
    assert verdicts == {"x": False, "b": False}
    assert [r.closed_form for s in solutions for r in s.derivation.results] == ["(B + B^T) x", "dY^T X", "1^T dY"]


UNSUPPORTED = '''title = "Σ, α and a refusal"
[[problem]]
id = "nested"
title = "A max-pooling convolution & its x_2, α ≤ β"
statement = 'Find $∂L/∂\\mathbf{x}$ for $\\mathbf{x} ∈ ℝ^{d}$, with Σ and · typed directly (50% of the points & a #1 prize).'
expression = "Σ_n y[n] max_j x[n+j]"
wrt = "x"

[[problem]]
id = "index-claim"
title = "A claim in index notation"
statement = 'Find $\\partial L / \\partial \\mathbf{W}$.'
equation = "Y = X W^T"
where = "X: S×M, W: N×M"
wrt = "W"
claim = { W = "G_jp = Σ_i dY_ij X_ip" }

[[problem]]
id = "wide"
title = "Rows wider than the page"
statement = 'Find $\\partial L / \\partial \\mathbf{Q}$.'
equation = "Y = softmax(Q K^T / sqrt(d)) V"
wrt = "Q"
'''


def test_an_unsupported_problem_is_said_so_in_a_document_that_compiles(tmp_path):
    ps, solutions = S.solve(_write(tmp_path, UNSUPPORTED))
    assert solutions[0].unsupported and solutions[0].derivation is None
    tex = S.render_latex(ps, solutions)           # a claim in index notation: as written (it was exit 3)
    assert "Not supported yet" in tex and r"\texttt{G\_jp = Σ\_i dY\_ij X\_ip}" in tex
    assert solutions[1].claims[0].verdict.correct
    assert r"(50\% of the points \& a \#1 prize)" in tex and r"convolution \& its x\_2" in tex   # as typed
    checks = re.findall(r"Checking the shapes:\n(.*)", tex)
    assert checks and not any(r"\mathbf" in c for c in checks), checks     # spaces, never a name (C)
    log = _compile(tex, tmp_path)
    # attention's rows (a rule's ∂[softmax(...)]/∂[...] beside them) ran 17pt off the page: a row
    # is shrunk only where it would not fit
    assert not re.search(r"Overfull \\hbox \((\d{2,}|[3-9])\.", log), re.findall(r"Overfull.*", log)


def test_a_tas_characters_are_typeset_as_typed_and_latex_stays_latex():
    """A title or statement's bare & % # and running-text _ ^ < > | are characters (pdflatex stopped
    at `Ridge regression & its gradient`; `50% of the points` lost the rest of its line); math,
    alignments, a \\url and what is already escaped stay as written."""
    t = S.tex_text
    assert t("Ridge & lasso: 50% off, #3, log_softmax, a < b") == r"Ridge \& lasso: 50\% off, \#3, log\_softmax, a \textless{} b"
    kept = [r"$x_i^2 < |y|$ and \[ a_1 \]", r"\verb|x_1 & y|", r"\begin{pmatrix} a & b \\ c & d \end{pmatrix}",
            r"\begin{align*} f &= x_1 \end{align*}", r"\begin{tabular}{c|c} 1 & 2 \end{tabular}",
            r"\url{http://a.b/c_d%20#e}", r"already \& \% \_ \#", r"\newcommand{\x}[1]{#1}"]
    for s in kept:
        assert t(s) == s, s
    assert t(r"\begin{pmatrix} a & b \end{pmatrix} & c_1") == r"\begin{pmatrix} a & b \end{pmatrix} \& c\_1"
    assert S.plain(r"\begin{enumerate} \item Find $\nabla_{\mathbf{w}} \mathcal{L}$ \& $\|\boldsymbol{\mu}\|$, 50\%."
                   r" \end{enumerate}") == "• Find ∇_w L & ‖μ‖, 50%."
    assert [S.tex_unbalanced(x) for x in [r"\frac{a}{b", "$x", r"\begin{align} a", r"a \{ b $x$ \begin{cases} 1 \end{cases}"]] \
        == ["an unclosed {", "an unclosed $", r"\begin{align} without its \end", None]   # which problem, not EOF
    assert S.plain(r"S(x) &= \frac{e^{x_i}}{\sum_j e^{x_j}}, \frac{\partial \mathbf{x}^\top \mathbf{B} \mathbf{x}}{\partial \mathbf{x}}"
                   r", \frac{\partial L}{\partial \mathbf{Y}}, R \coloneqq Q^T Q") \
        == "S(x) = e^(x_i)/(Σ_j e^(x_j)), ∂(x^T B x)/∂x, ∂L/∂Y, R := Q^T Q"    # was frace^(x_i)Σ_j ...
    assert S._matrix_latex([1.5, np.inf, -np.inf, np.nan]) == \
        r"\begin{pmatrix} 1.5 \\ \infty \\ -\infty \\ \mathrm{NaN} \end{pmatrix}"      # `at` overflowing: not 'inf'
    assert S.plain(r"$\mathbf{X} = \begin{pmatrix} 0 & 1 \\ 2 & 3 \end{pmatrix}$, $\sqrt{\mathbf{w}^\top \mathbf{w}}$") \
        == "X = [[0, 1], [2, 3]], √(w^T w)"
