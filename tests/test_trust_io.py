"""Outputs and numbers (issue 13, parts 5-6): every output is written whole or not at all and
never over an input; `--at` values are checked before anything is printed and evaluated
without needless overflow; JSON is strict; messages never carry terminal escape sequences."""
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexcalc import files
from indexcalc.errors import IndexCalcError

from .test_trust_files import assert_refused, run_cli

ROOT = Path(__file__).resolve().parent.parent
AFFINE = ROOT / "problems" / "affine.toml"
MLP = ROOT / "problems" / "mlp.toml"
PDFLATEX = shutil.which("pdflatex")


def strict_loads(text):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


# ---- -o --------------------------------------------------------------------------------------------
@pytest.fixture
def problem(tmp_path):
    p = tmp_path / "hw.toml"
    shutil.copyfile(AFFINE, p)
    return p


def _commands(src, out):
    return [["solve", str(src), "-o", str(out)], ["solve", str(src), "--format", "latex", "-o", str(out)],
            ["codegen", str(MLP if src is None else src), "-o", str(out)]]


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "relative"])
def test_o_never_overwrites_the_input(tmp_path, problem, how, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = problem.read_bytes()
    out = {"same": problem, "relative": Path("hw.toml"), "symlink": tmp_path / "link.toml",
           "hardlink": tmp_path / "hard.toml"}[how]
    if how == "symlink":
        out.symlink_to(problem)
    if how == "hardlink":
        os.link(problem, out)
    for command in (["solve", str(problem), "-o", str(out)],
                    ["solve", str(problem), "--format", "latex", "-o", str(out)],
                    ["codegen", str(problem), "-o", str(out)]):
        assert_refused(run_cli(command))
        assert problem.read_bytes() == before


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
def test_solve_pdf_never_overwrites_an_input_named_like_its_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "hw.pdf"                 # a problem file named .pdf: the default output name
    shutil.copyfile(AFFINE, src)
    before = src.read_bytes()
    p = run_cli(["solve", "hw.pdf", "--format", "pdf"])
    assert_refused(p)
    assert src.read_bytes() == before
    assert_refused(run_cli(["solve", "hw.pdf", "--format", "pdf", "-o", str(src)]))
    assert src.read_bytes() == before


def test_grade_never_overwrites_its_inputs(tmp_path, problem):
    answers = tmp_path / "answers.csv"
    answers.write_text("student,problem,variable,answer\nann,affine,b,dY\n", encoding="utf-8")
    before = answers.read_bytes()
    for out in (answers, problem):
        assert_refused(run_cli(["grade", str(problem), str(answers), "-o", str(out)]))
    assert answers.read_bytes() == before


@pytest.mark.parametrize("target", ["dir", "dir/", "missing/out.txt", "/dev/full"])
def test_bad_output_paths_are_exit_2(tmp_path, problem, target):
    out = target if target.startswith("/") else str(tmp_path / target) + ("/" if target.endswith("/") else "")
    (tmp_path / "dir").mkdir()
    if target == "/dev/full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    for command in (["solve", str(problem), "-o", out], ["codegen", str(MLP), "-o", out],
                    ["solve", str(problem), "--format", "latex", "-o", out]):
        p = run_cli(command)
        assert_refused(p)
        assert "cannot write" in p.stderr


def test_an_output_under_a_file_or_a_missing_folder_says_which(tmp_path):
    """-o notes.txt/out.py said "the directory notes.txt does not exist" of a file that does."""
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(IndexCalcError, match="notes.txt is a file, not a directory"):
        files.check_output(tmp_path / "notes.txt" / "out.py")
    with pytest.raises(IndexCalcError, match="the directory .*missing does not exist"):
        files.check_output(tmp_path / "missing" / "out.py")
    with pytest.raises(IndexCalcError, match="is a directory, not an answers file"):
        files.read_text(tmp_path, "answers file")


def test_standard_output_on_a_full_disk_is_exit_2():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "indexcalc", "derive", "x^T x", "--wrt", "x"], stdout=full,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "cannot write" in p.stderr, p.stderr


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    out = tmp_path / "solutions.txt"
    out.write_text("the good old file\n")
    os.chmod(out, 0o640)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(IndexCalcError, match="No space left"):
        files.write_output(out, "x" * 100000)
    assert out.read_text() == "the good old file\n"
    assert sorted(os.listdir(tmp_path)) == ["solutions.txt"]
    monkeypatch.undo()
    files.write_output(out, "new\n")
    assert out.read_text() == "new\n" and (out.stat().st_mode & 0o777) == 0o640   # the mode is kept


def test_a_refused_problem_file_leaves_the_old_output(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('title = 5\n[[problem]]\n')
    out = tmp_path / "out.txt"
    out.write_text("keep me\n")
    assert_refused(run_cli(["solve", str(bad), "-o", str(out)]))
    assert out.read_text() == "keep me\n"


def test_a_symlinked_output_writes_its_target(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    files.write_output(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


# ---- --at ------------------------------------------------------------------------------------------
BAD_AT = [
    ("x^T x", "x", None, "x=['a','b']", "x"),
    ("x^T x", "x", None, "x=[[1,2],[3]]", "x"),
    ("x^T x", "x", None, "x=[1j,2]", "x"),
    ("x^T x", "x", None, "x=[1e400,2]", "x"),
    ("x^T x", "x", None, "x=[" + "9" * 400 + ", 1]", "x"),
    ("x^T x", "x", None, "x=[[1,2]]", "x"),
    ("x^T x", "x", None, "x=[True, 2]", "x"),
    ("x^T x", "x", None, "x=[]", "x"),
    ("x^T x", "x", None, "x=[1,2], y=[3]", "y"),
    ("x^T x", "x", None, "x=[1,2], x=[3,4]", "x"),
    ("c x^T x", "x", "c: scalar", "x=[1,2], c=[1,2]", "c"),
    ("x^T A x", "x", None, "x=[1,2], A=[[1,2,3],[4,5,6]]", "A"),
    ("x^T A x", "x", None, "x=[1,2], A=[1,2]", "A"),
    ("x^T A x", "x", None, "x=[1,2]", "A"),
    ("logdet(X)", "X", None, "X=[[1,1],[1,1]]", "singular"),
    ("sum(inv(X))", "X", None, "X=[[1,1],[1,1]]", "singular"),
    ("x^T x", "x", None, "x=__import__('os')", "x"),
]


@pytest.mark.parametrize("expr,wrt,where,at,named", BAD_AT)
def test_bad_at_values_are_exit_2_before_anything_is_printed(expr, wrt, where, at, named):
    for fmt in ("text", "json"):
        args = ["derive", expr, "--wrt", wrt, "--at", at, "--format", fmt] + (["--where", where] if where else [])
        p = run_cli(args)
        assert_refused(p)
        assert p.stdout == ""
        assert named in p.stderr


def test_at_is_evaluated_without_needless_overflow():
    p = run_cli(["derive", "log(sum(exp(x)))", "--wrt", "x", "--at", "x=[1000,1000]", "--format", "json"])
    assert p.returncode == 0, p.stderr
    at = strict_loads(p.stdout)["at"]
    assert at["value"] == pytest.approx(1000 + np.log(2), rel=1e-12)
    assert at["derivatives"]["x"] == pytest.approx([0.5, 0.5], rel=1e-12)
    p = run_cli(["derive", "sum(softmax(x) ∘ y)", "--wrt", "x", "--at", "x=[1000, 998, -5], y=[1, 2, 3]",
                 "--format", "json"])
    assert p.returncode == 0, p.stderr
    x, y = np.array([1000.0, 998, -5]), np.array([1.0, 2, 3])
    s = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    at = strict_loads(p.stdout)["at"]
    assert at["value"] == pytest.approx(s @ y, rel=1e-9)
    assert at["derivatives"]["x"] == pytest.approx(s * (y - s @ y), rel=1e-9, abs=1e-300)


def test_at_in_text_prints_numbers_as_written_and_matrices_a_row_a_line():
    p = run_cli(["derive", "sum((X W) .^ 2)", "--wrt", "X", "--at", "X=[[0,1],[2,3]], W=[[1,1],[1,1]]"])
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    k = lines.index("at X=[[0,1],[2,3]], W=[[1,1],[1,1]]:")
    assert lines[k + 1].split() == ["value:", "52"]
    first, second = lines[k + 2], lines[k + 3]
    assert first.split(None, 1) == ["d/dX:", "[[ 4,  4],"]
    assert second.strip() == "[20, 20]]" and second.index("[") == first.index("[[") + 1
    p = run_cli(["derive", "x^T x / 3", "--wrt", "x", "--at", "x=[1,2]"])
    assert "value:  1.66667" in p.stdout and "[0.666667, 1.33333]" in p.stdout


# ---- strict JSON -----------------------------------------------------------------------------------
def test_json_is_strict_and_says_what_was_not_finite():
    p = run_cli(["derive", "log(x^T x)", "--wrt", "x", "--at", "x=[0,0]", "--format", "json"])
    assert p.returncode == 0, p.stderr
    out = strict_loads(p.stdout)
    assert out["at"]["value"] is None and out["at"]["derivatives"]["x"] == [None, None]
    assert any("at.value" in n and "-inf" in n for n in out["notes"])
    for args in (["check", "x^T x", "--wrt", "x", "--answer", "2 x", "--format", "json"],
                 ["check", "x^T x", "--wrt", "x", "--answer", "x / 0.0000000001", "--format", "json"]):
        p = run_cli(args)
        assert p.returncode in (0, 1), p.stderr
        strict_loads(p.stdout)


# ---- no escape sequences in messages -----------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["derive", "x\x1b[31m", "--wrt", "x"], ["derive", "x", "--wrt", "x", "--where", "x: n\x1b]0;pwned\x07"],
    ["derive", "x^T x", "--wrt", "x\x1b[2J"], ["derive", "x^T x", "--wrt", "x", "--at", "x=['\x1b[31m']"],
    ["solve", "/nonexistent/\x1b[31m.toml"], ["check", "x", "--wrt", "x", "--answer", "\x9b31m"],
])
def test_messages_carry_no_control_characters(args):
    p = run_cli(args)
    assert p.returncode == 2, p.stderr
    assert not any(ord(c) < 32 and c not in "\n\t" or 0x7f <= ord(c) < 0xa0 for c in p.stderr), repr(p.stderr)


def test_a_grade_report_shows_no_escape_sequence_from_the_answers_file(tmp_path, problem):
    answers = tmp_path / "answers.csv"
    answers.write_text("student,problem,variable,answer\nann\x1b]0;pwned\x07,affine,b,dY\x1b[2J\n", encoding="utf-8")
    p = run_cli(["grade", str(problem), str(answers)])
    assert p.returncode == 0, p.stderr
    assert "ann" in p.stdout and "\x1b" not in p.stdout and "\x07" not in p.stdout
