"""`indexcalc grade`: a whole class's answers against a problem file (SPEC §2).

The class is synthetic with known verdicts: right answers in several equivalent spellings,
wrong ones off by a factor, a sign, a transpose or a missing term, unreadable ones (a parse
error, a name the problem does not have, shapes that do not fit, an empty answer)."""
import csv
import html
import io
import json
import re
import time

import numpy as np
import pytest

from indexcalc import grade as G
from indexcalc.cli import main

PROBLEMS = '''title = "Quiz"
[[problem]]
id = "quad"
title = "A quadratic form"
statement = 'Find $\\partial x^T B x / \\partial x$.'
expression = "x^T B x"
where = "x: n, B: n×n"
wrt = ["x"]

[[problem]]
id = "trace"
title = "A trace"
statement = 'Find $\\partial tr(V X W) / \\partial X$.'
expression = "tr(V X W)"
where = "V: n×m, X: m×p, W: p×n"
wrt = ["X"]

[[problem]]
id = "linear"
title = "The linear module"
statement = 'Backprop through $Y = X W^T + b$.'
equation = "Y = X W^T + b"
where = "X: S×M, W: N×M, b: 1×N"
wrt = ["W", "b", "X"]

[[problem]]
id = "norm"
title = "A norm"
statement = 'Find $\\partial \\|w\\| / \\partial w$.'
expression = "‖w‖"
where = "w: n"
wrt = ["w"]
'''

# (problem, variable) -> [(answer, verdict)]
POOL = {
    ("quad", "x"): [("(B + B^T) x", "right"), ("B x + B^T x", "right"), ("B^T x + B x", "right"),
                    ("(B^T + B) * x", "right"), ("B @ x + (x^T B)^T", "right"),
                    ("[B x]_i + [x^T B]_i", "right"), ("[(B + B^T) x]_{i}", "right"),    # as the seeds end
                    ("np.dot(B, x) + np.dot(B.T, x)", "right"), ("(B + B.transpose()) @ x", "right"),
                    ("2 [B x]_i", "wrong"), ("[B x]_i [x]_i", "unreadable"), ("= (B + B^T) x.", "right"),
                    ("2 B x", "wrong"), ("B x", "wrong"), ("-(B + B^T) x", "wrong"), ("(B + B^T) x / 2", "wrong"),
                    ("(B + B^T) x +", "unreadable"), ("(B + C) x", "unreadable"), ("", "unreadable"),
                    ("B x x", "unreadable")],
    ("trace", "X"): [("V^T W^T", "right"), ("(W V)^T", "right"), ("V' W'", "right"), ("V^⊤ @ W^⊤", "right"),
                     ("(WV)^T", "right"), (r"$\mathbf{V}^\top \mathbf{W}^\top$.", "right"), (r"\left[\mathbf{V}^\top \mathbf{W}^\top\right]_{ij}", "right"),
                     ("[V^T]_ij [W^T]_ij", "unreadable"),
                     ("W V", "wrong"), ("-V^T W^T", "wrong"), ("2 V^T W^T", "wrong"),
                     ("V^T W", "unreadable"), ("V^T W^T)", "unreadable")],
    ("linear", "W"): [("dY^T X", "right"), ("(X^T dY)^T", "right"), ("(∂L/∂Y)^T X", "right"),
                      (r"\left(\frac{\partial L}{\partial \mathbf{Y}}\right)^\top \mathbf{X}", "right"),
                      ("X^T dY", "wrong"), ("dY^T X + W", "wrong"), ("-dY^T X", "wrong"),
                      ("dY X", "unreadable"), ("dZ^T X", "unreadable")],
    ("linear", "b"): [("1^T dY", "right"), ("sum(dY, 0)", "right"), ("(dY^T 1)^T", "right"),
                      ("1^T ∂L/∂Y", "right"), (r"\sum_i \frac{\partial L}{\partial Y_{ij}}", "right"),
                      ("Σ_i dY_ij", "right"), ("∂L/∂Y", "wrong"),      # seed 001's claim, as it writes it
                      ("dY", "wrong"), ("2 1^T dY", "wrong"), ("-1^T dY", "wrong"),
                      ("1^T dY^", "unreadable")],
    ("linear", "X"): [("dY W", "right"), ("(W^T dY^T)^T", "right"), ("dY W + 0 X", "right"),
                      ("dY W^T W^T", "unreadable"), ("-dY W", "wrong"), ("dY W + X", "wrong"),
                      ("dY W W", "unreadable")],
    ("norm", "w"): [("w / ‖w‖", "right"), ("w / sqrt(w^T w)", "right"), ("w / norm(w)", "right"),
                    ("(w^T w)^(-1/2) w", "right"),
                    ("w", "wrong"), ("2 w", "wrong"), ("w / (w^T w)", "wrong"), ("-w / ‖w‖", "wrong"),
                    ("w / ‖v‖", "unreadable")],
}
QUESTIONS = list(POOL)


def make_class(n_students, claims_each, seed=0):
    """Rows of a synthetic class and the verdict each claim must get."""
    rng = np.random.default_rng(seed)
    rows, known = [], []
    for s in range(n_students):
        student = f"student{s:03d}"
        qs = rng.choice(len(QUESTIONS), size=claims_each, replace=claims_each > len(QUESTIONS))
        for q in qs:
            problem, var = QUESTIONS[q]
            pool = POOL[(problem, var)]
            answer, verdict = pool[rng.integers(len(pool))]
            if rng.random() < 0.3:                       # same answer, other spacing
                answer = answer.replace(" ", "  ")
            rows.append((student, problem, var, answer))
            known.append(verdict)
    return rows, known


def write_class(tmp_path, rows, header=("student", "problem", "variable", "answer")):
    problems = tmp_path / "quiz.toml"
    problems.write_text(PROBLEMS, encoding="utf-8")
    answers = tmp_path / "answers.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    answers.write_text(buf.getvalue(), encoding="utf-8")
    return problems, answers


def test_every_spelling_in_the_pool_gets_its_verdict(tmp_path):
    rows = [("s", p, v, a) for (p, v), pool in POOL.items() for a, _ in pool]
    known = [verdict for pool in POOL.values() for _, verdict in pool]
    problems, answers = write_class(tmp_path, rows)
    report = G.grade(problems, answers)
    got = [c.verdict for c in report.claims]
    wrong = [(r[3], k, g) for r, k, g in zip(rows, known, got) if k != g]
    assert not wrong, wrong
    for c in report.claims:
        assert c.reason
        if c.verdict != "right":
            assert c.expected                     # the right answer comes with every wrong one


def test_a_class_of_200_in_time_and_every_verdict_as_known(tmp_path, capsys):
    rows, known = make_class(200, 5)
    problems, answers = write_class(tmp_path, rows)
    t = time.perf_counter()
    assert main(["grade", str(problems), str(answers), "--format", "json"]) == 0
    elapsed = time.perf_counter() - t
    out = json.loads(capsys.readouterr().out)
    assert elapsed < 60, elapsed
    assert [c["verdict"] for c in out["claims"]] == known
    assert len(out["students"]) == 200
    for s in out["students"].values():
        assert s["of"] == 5
    # totals agree with the verdicts
    right = {}
    for row, c in zip(rows, out["claims"]):
        assert (c["student"], c["problem"], c["variable"], c["answer"]) == tuple(x.strip() for x in row)
        assert set(c) == {"student", "problem", "variable", "answer", "verdict", "reason", "expected"}
        right[row[0]] = right.get(row[0], 0) + (c["verdict"] == "right")
    assert {k: v["right"] for k, v in out["students"].items()} == right


def test_the_counterexample_is_true_of_the_claim(tmp_path):
    """Numbers, not strings: at the counterexample's values, the claim's entry is what the
    report says, and the derivative's entry (by hand in NumPy) is the other number."""
    rows = [("ann", "quad", "x", "2 B x"), ("ann", "trace", "X", "2 V^T W^T"), ("ann", "norm", "w", "2 w")]
    problems, answers = write_class(tmp_path, rows)
    report = G.grade(problems, answers)
    hand = {"quad": (lambda e: 2 * e["B"] @ e["x"], lambda e: (e["B"] + e["B"].T) @ e["x"]),
            "trace": (lambda e: 2 * e["V"].T @ e["W"].T, lambda e: e["V"].T @ e["W"].T),
            "norm": (lambda e: 2 * e["w"], lambda e: e["w"] / np.linalg.norm(e["w"]))}
    for c in report.claims:
        assert c.verdict == "wrong"
        ce = c.counterexample
        env = {k: np.array(v) for k, v in ce["values"].items()}
        claim, truth = hand[c.problem]
        entry = tuple(ce["entry"])
        assert claim(env)[entry] == pytest.approx(ce["claimed"], rel=1e-2, abs=1e-2)
        assert truth(env)[entry] == pytest.approx(ce["actual"], rel=1e-2, abs=1e-2)
        assert abs(ce["claimed"] - ce["actual"]) > 1e-3
        assert f"{ce['claimed']:.6g}" in c.reason and c.expected in c.reason


def test_each_problem_is_derived_once(tmp_path, monkeypatch):
    import importlib
    check = importlib.import_module("indexcalc.check")      # the module (indexcalc.check is the function)
    calls = []
    real = check.references
    monkeypatch.setattr(check, "references", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    rows, _ = make_class(30, 5, seed=3)
    problems, answers = write_class(tmp_path, rows)
    G.grade(problems, answers)
    assert sorted(calls) == sorted(set(calls))       # one derivation per problem, all variables at once


@pytest.mark.parametrize("fmt", ["text", "csv", "json", "html"])
def test_formats(tmp_path, fmt):
    rows = [("<b>eve</b> & co", "quad", "x", "B x + B^T x"), ("<b>eve</b> & co", "trace", "X", "<script>alert(1)</script>"),
            ("zoë", "trace", "X", "=HYPERLINK(\"http://x\")"), ("zoë", "linear", "b", "dY")]
    problems, answers = write_class(tmp_path, rows)
    out = tmp_path / f"report.{fmt}"
    assert main(["grade", str(problems), str(answers), "-o", str(out), "--format", fmt]) == 0
    text = out.read_text(encoding="utf-8")
    if fmt == "json":
        data = json.loads(text)
        assert data["students"] == {"<b>eve</b> & co": {"right": 1, "of": 2}, "zoë": {"right": 0, "of": 2}}
        assert [c["verdict"] for c in data["claims"]] == ["right", "unreadable", "unreadable", "wrong"]
        assert data["claims"][3]["expected"] == "1^T dY"
    elif fmt == "csv":
        got = list(csv.DictReader(io.StringIO(text)))
        assert [r["verdict"] for r in got] == ["right", "unreadable", "unreadable", "wrong"]
        assert got[2]["answer"].startswith("'=")        # never a formula in a spreadsheet
        assert got[0]["student_right"] == "1" and got[0]["student_of"] == "2"
    elif fmt == "html":
        assert "<script>" not in text and "<b>eve" not in text
        assert html.escape("<script>alert(1)</script>") in text
        assert not re.search(r"(src|href)=\"(https?:)?//", text) and "http://x" not in text.replace(
            html.escape('=HYPERLINK("http://x")'), "")
        assert "<style>" in text and "1 of 2 right" in text
    else:
        assert "<b>eve</b> & co: 1 of 2 right" in text and "zoë: 0 of 2 right" in text
        assert "UNREADABLE" in text and "WRONG" in text and "1^T dY" in text


def test_format_from_the_report_suffix(tmp_path):
    problems, answers = write_class(tmp_path, [("a", "quad", "x", "2 B x")])
    out = tmp_path / "r.html"
    assert main(["grade", str(problems), str(answers), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


BAD = [
    (b"name,question,answer\nann,quad,2 B x\n", "line 1"),
    (b"ann,quad,x,2 B x\n", "line 1: no header"),
    (b"student;problem;variable;answer\nann;quad;x;2 B x\n", "separated by ';'; save the file with commas"),
    (b"student,problem,variable,answer,comment\nann,quad,x,2 B x,\n", "unexpected comment"),
    (b"student,problem,variable,answer\nann,quad,x,2 B x\nbob,q9,x,B x\n", "line 3: unknown problem 'q9'"),
    (b"student,problem,variable,answer\nann,quad,y,2 B x\n", "line 2: problem 'quad' has no variable 'y'"),
    (b"student,problem,variable,answer\nann,quad,x,2 B x\nbob,quad,x,B \xe9 x\n", "line 3: not UTF-8"),
    (b"", "is empty"),
    (b"student,problem,variable,answer\n", "no answers"),
    (b"student,problem,variable,answer\n,quad,x,2 B x\n", "line 2: no student name"),
]


@pytest.mark.parametrize("content,message", BAD)
def test_a_bad_answers_file_is_exit_2_with_file_and_line(tmp_path, capsys, content, message):
    problems, _ = write_class(tmp_path, [("a", "quad", "x", "x")])
    answers = tmp_path / "bad.csv"
    answers.write_bytes(content)
    assert main(["grade", str(problems), str(answers)]) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.csv" in err and "Traceback" not in err


def test_a_row_with_extra_fields_is_that_claim_unreadable(tmp_path):
    problems, answers = write_class(tmp_path, [("a", "quad", "x", "2 B x")])
    answers.write_text("student,problem,variable,answer\nann,quad,x,dot(x, B)\nann,trace,X,V^T W^T\n",
                       encoding="utf-8")
    report = G.grade(problems, answers)
    assert [c.verdict for c in report.claims] == ["unreadable", "right"]
    assert "double quotes" in report.claims[0].reason and report.claims[0].answer == "dot(x, B)"


def test_a_utf8_bom_and_crlf_are_read(tmp_path):
    problems, answers = write_class(tmp_path, [("a", "quad", "x", "x")])
    answers.write_bytes("\ufeffStudent,Problem,Variable,Answer\r\nann,quad,x,(B + B^T) x\r\n".encode("utf-8"))
    assert [c.verdict for c in G.grade(problems, answers).claims] == ["right"]


def test_o_never_overwrites_an_input(tmp_path, capsys):
    problems, answers = write_class(tmp_path, [("a", "quad", "x", "x")])
    before = answers.read_bytes()
    assert main(["grade", str(problems), str(answers), "-o", str(answers)]) == 2
    assert answers.read_bytes() == before


def test_a_problem_s_assumption_holds_where_claims_are_compared(tmp_path):
    """A problem that says `assume = ["T 1 = 1"]` (one-hot targets) asks for the gradient where
    the rows of T sum to one: (softmax(X) - T) / S is right there (the statement's own answer),
    softmax(X) - T is still wrong, and every point compared at satisfies the assumption."""
    problems = tmp_path / "ce.toml"
    problems.write_text('''[[problem]]
id = "ce"
title = "Softmax and cross-entropy"
statement = 's'
equation = "L = -sum(T ∘ log(softmax(X))) / S"
where = "X: S×C, T: S×C"
wrt = ["X"]
assume = ["T 1 = 1"]
''', encoding="utf-8")
    answers = tmp_path / "answers.csv"
    answers.write_text("student,problem,variable,answer\n"
                       "ann,ce,X,(softmax(X) - T) / S\n"
                       "bob,ce,X,softmax(X) - T\n"
                       "cat,ce,X,(diag(T 1) softmax(X) - T) / S\n", encoding="utf-8")
    report = G.grade(problems, answers)
    assert [c.verdict for c in report.claims] == ["right", "wrong", "right"]
    assert "T 1 = 1" in report.claims[0].reason
    from indexcalc.check import references
    ref = references("L = -sum(T ∘ log(softmax(X))) / S", ["X"], "X: S×C, T: S×C", assume=["T 1 = 1"])["X"]
    for p in ref.points:
        assert np.allclose(p.env2d["T"].sum(axis=1), 1)
    ce = report.claims[1].counterexample
    assert ce and ce["claimed"] != ce["actual"]


def test_the_html_report_a_ta_sends_names_no_local_directory(tmp_path):
    """The page goes to students: it names the files, not where they sit on the TA's disk."""
    rows, _ = make_class(3, 2)
    problems, answers = write_class(tmp_path, rows)
    page = G.render_html(G.grade(problems, answers))
    assert str(tmp_path) not in page
    assert "answers.csv" in page and "quiz.toml" in page


def test_a_question_answered_twice_counts_once_with_the_last_answer(tmp_path):
    """A form submitted again (or two files joined) gives a student two answers to one question:
    the last counts, the earlier says so (both were counted: 1 of 2 for one question)."""
    rows = [("ann", "quad", "x", "(B + B^T) x"), ("bob", "quad", "x", "2 B x"), ("ann", "quad", "x", "2 B x"),
            ("ann", "trace", "X", "V^T W^T")]
    report = G.grade(*write_class(tmp_path, rows))
    assert [c.verdict for c in report.claims] == ["right", "wrong", "wrong", "right"]
    assert report.students() == {"ann": {"right": 1, "of": 2}, "bob": {"right": 0, "of": 1}}
    assert report.problems()[("quad", "x")] == {"right": 0, "wrong": 2, "unreadable": 0}
    assert "answered again on line 4" in report.claims[0].reason and not report.claims[2].again
    assert "1 earlier answer" in G.render_text(report)


def test_the_variable_column_as_a_student_writes_it():
    """dW, ∂L/∂W, dL/dW, $\\mathbf{W}$ name W (each stopped the whole class as a file error)."""
    names = {"X", "W", "b"}
    for text in ["W", "dW", "∂L/∂W", "dL/dW", r"$\mathbf{W}$", r"\frac{\partial L}{\partial \mathbf{W}}", "grad_W"]:
        assert G._variable_named(text, names) == "W", text
    assert G._variable_named("dZ", names) == "dZ" and G._variable_named("d", names | {"d"}) == "d"


def test_answers_files_joined_keep_their_second_header_out_of_the_class(tmp_path):
    """Two exports joined end to end repeat the header: that line is no claim (it stopped the
    class: unknown problem 'problem')."""
    rows = [("ann", "quad", "x", "2 B x"), ("student", "problem", "variable", "answer"), ("bob", "quad", "x", "B x + B^T x")]
    report = G.grade(*write_class(tmp_path, rows))
    assert [(c.student, c.verdict) for c in report.claims] == [("ann", "wrong"), ("bob", "right")]


def test_a_name_stored_composed_or_decomposed_is_one_student(tmp_path):
    rows = [("Zo\u00eb", "quad", "x", "2 B x"), ("Zoe\u0308", "trace", "X", "V^T W^T")]
    assert G.grade(*write_class(tmp_path, rows)).students() == {"Zo\u00eb": {"right": 1, "of": 2}}


def test_a_report_file_whose_suffix_is_no_report_is_refused(tmp_path):
    """-o grades.pdf (or .xlsx) got the text report; --format json -o r.html got JSON in a .html."""
    problems, answers = write_class(tmp_path, [("ann", "quad", "x", "2 B x")])
    for args in (["-o", str(tmp_path / "g.pdf")], ["-o", str(tmp_path / "g.xlsx")],
                 ["--format", "json", "-o", str(tmp_path / "g.html")]):
        assert main(["grade", str(problems), str(answers), *args]) == 2
    assert not any(tmp_path.glob("g.*"))
