"""`grade`: a whole class's claimed answers, checked against a problem file (SPEC §2).

    indexcalc grade problems/index_gymnastics.toml answers.csv -o report.html

ANSWERS.csv has the header `student,problem,variable,answer`, one claim a row. Each problem is
derived once (with every variable the class answers about), and its reference values at the
random points are computed once (check.references); every claim is then compared with that
reference (check.compare). A claim is right, wrong (with the counterexample and the right
answer) or unreadable (with the reason: a parse error, a name the problem does not have, a
shape that does not fit, ...). One student's unreadable answer never stops the run.

A file that is not a class's answers (not UTF-8, no header, other columns, a problem id the
problem file does not have, a variable the problem does not have) is bad input: exit 2 with
the file and the line. A row with the wrong number of fields is that row's claim, unreadable.

Stages, data flowing one way: read_answers (CSV -> Rows) -> grade (Rows -> Report) -> one of
the renderers in FORMATS (Report -> text, CSV, JSON or a self-contained HTML page).
"""
from __future__ import annotations

import csv
import html
import io
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import IndexCalcError, ParseError, VerificationError
from .files import read_text

HEADER = ("student", "problem", "variable", "answer")
MAX_ANSWER = 2000                      # characters; longer is not an answer to grade


@dataclass
class Row:
    """One line of the answers file."""
    line: int
    student: str
    problem: str
    variable: str
    answer: str
    error: str = ""                    # the row itself is malformed (its claim is unreadable)


@dataclass
class Claim:
    student: str
    problem: str
    variable: str
    answer: str
    verdict: str                       # right | wrong | unreadable
    reason: str
    expected: str | None
    line: int = 0
    counterexample: dict | None = None
    again: int = 0                     # the line where the student answered this again (the last counts)

    def json(self) -> dict:
        return {"student": self.student, "problem": self.problem, "variable": self.variable,
                "answer": self.answer, "verdict": self.verdict, "reason": self.reason,
                "expected": self.expected}


@dataclass
class Report:
    problem_file: str
    answers_file: str
    claims: list = field(default_factory=list)
    titles: dict = field(default_factory=dict)       # problem id -> title

    def counted(self) -> list:
        """The claims the totals count: a student's last answer to each question."""
        return [c for c in self.claims if not c.again]

    def students(self) -> dict:
        """{student: {"right": k, "of": n}} in the order students first appear; a question
        answered twice counts once, with the last answer."""
        out: dict = {}
        for c in self.claims:
            out.setdefault(c.student, {"right": 0, "of": 0})
        for c in self.counted():
            t = out[c.student]
            t["of"] += 1
            t["right"] += c.verdict == "right"
        return out

    def problems(self) -> dict:
        """{(problem, variable): {"right", "wrong", "unreadable"}} counts, in order of appearance."""
        out: dict = {}
        for c in self.claims:
            out.setdefault((c.problem, c.variable), {"right": 0, "wrong": 0, "unreadable": 0})
        for c in self.counted():
            out[(c.problem, c.variable)][c.verdict] += 1
        return out

    def totals(self) -> dict:
        t = {"right": 0, "wrong": 0, "unreadable": 0}
        for c in self.counted():
            t[c.verdict] += 1
        return t

    def json(self) -> dict:
        return {"claims": [c.json() for c in self.claims], "students": self.students()}


# ---- reading the answers ----------------------------------------------------------------------
def read_answers(path) -> list:
    """The rows of an answers file. Exit 2 (IndexCalcError) with the file and the line for a
    file that is not a class's answers; a malformed row becomes a Row with `error` set."""
    name = str(path)
    text = read_text(path, "answers file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, columns, header_line, header = [], None, 0, None
    try:
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue                                   # blank lines
            if columns is None:
                columns, header_line = _header(name, line, fields), line
                header = [f.strip().lower() for f in fields]
                continue
            if [f.strip().lower() for f in fields] == header:
                continue                                   # the header again: two files joined
            rows.append(_row(name, line, fields, columns))
    except csv.Error as e:
        raise IndexCalcError(f"{name}, line {reader.line_num}: not valid CSV ({e})") from None
    if columns is None:
        raise IndexCalcError(f"{name} is empty: it needs the header {','.join(HEADER)} and one claim a row")
    if not rows:
        raise IndexCalcError(f"{name} has a header (line {header_line}) but no answers")
    return rows


def _header(name, line, fields) -> dict:
    """{column name: position}; the header must name exactly the four columns (any order)."""
    names = [f.strip().lower() for f in fields]
    if set(names) == set(HEADER) and len(names) == len(HEADER):
        return {n: names.index(n) for n in HEADER}
    found = ",".join(f.strip() for f in fields)
    if not set(names) & set(HEADER):
        other = next((d for d in ";\t|" if len(fields) == 1 and
                      {h.strip().lower() for h in fields[0].split(d)} == set(HEADER)), None)
        hint = (f": the columns are separated by {other!r}; save the file with commas (CSV)"
                if other else "")        # a spreadsheet set to a European locale writes ';'
        raise IndexCalcError(f"{name}, line {line}: no header; the first line must be "
                             f"{','.join(HEADER)} (found {found!r}){hint}")
    missing = [h for h in HEADER if h not in names]
    extra = sorted({n for n in names if n not in HEADER or names.count(n) > 1})
    what = "; ".join(filter(None, [f"missing {', '.join(missing)}" if missing else "",
                                   f"unexpected {', '.join(extra)}" if extra else ""]))
    raise IndexCalcError(f"{name}, line {line}: the header must be {','.join(HEADER)} ({what}; "
                         f"found {found!r})")


def _row(name, line, fields, columns) -> Row:
    def get(col):
        k = columns[col]
        return fields[k].strip() if k < len(fields) else ""
    # one student however the name's accents were stored (Zoë typed on one machine, exported
    # decomposed, ë as e + ¨, by another): the names as NFC, so that they are one student
    student, problem, variable = (unicodedata.normalize("NFC", get(c)) for c in ("student", "problem", "variable"))
    row = Row(line, student, problem, variable, get("answer"))
    if len(fields) != len(HEADER):
        row.error = (f"line {line} has {len(fields)} fields where the header has {len(HEADER)} "
                     "(an answer with a comma must be in double quotes)")
        if len(fields) > len(HEADER):        # what the answer column holds is not known: show the row
            row.answer = ",".join(fields[columns["answer"]:]) if columns["answer"] == 3 else ",".join(fields)
    if not row.student:
        raise IndexCalcError(f"{name}, line {line}: no student name")
    return row


# ---- grading ------------------------------------------------------------------------------------
def _problem_variables(p) -> set:
    """The names a problem's derivative may be taken by (its expression's variables)."""
    from . import nodes as N
    from .from_index_notation import is_index_notation, read
    from .parse import parse
    from .shapes import infer, parse_decls
    if is_index_notation(p.source):               # SPEC §1.3: its own reader
        return set(read(p.source, parse_decls(p.where)).variables.table)
    tree = parse(p.source)
    if isinstance(tree, N.Equation):
        tree = tree.rhs
    return {name for name, _ in infer(tree, parse_decls(p.where))[1].items()}


def _validate(rows, problems, answers_file) -> dict:
    """{problem id: [variables, in order]} that the class answers; exit 2 for a row that names a
    problem or a variable the problem file does not have."""
    by_id = {p.id: p for p in problems.problems}
    wanted: dict = {}
    known_vars: dict = {}
    for row in rows:
        if row.error:
            continue
        if row.problem not in by_id:
            raise IndexCalcError(f"{answers_file}, line {row.line}: unknown problem {row.problem!r}; "
                                 f"{problems.path} has {', '.join(by_id)}")
        p = by_id[row.problem]
        if p.id not in known_vars:
            try:
                known_vars[p.id] = _problem_variables(p)
            except IndexCalcError as e:
                raise IndexCalcError(f"{problems.path}: problem {p.id!r}: {e}") from None
        row.variable = _variable_named(row.variable, known_vars[p.id])
        if row.variable not in known_vars[p.id]:
            names = sorted(known_vars[p.id])
            raise IndexCalcError(f"{answers_file}, line {row.line}: problem {p.id!r} has no variable "
                                 f"{row.variable!r} (it has {', '.join(names)}; it asks about "
                                 f"{', '.join(p.wrt)})")
        vs = wanted.setdefault(p.id, [])
        if row.variable not in vs:
            vs.append(row.variable)
    return wanted


_DERIVATIVE_OF = re.compile(r"^(?:\\frac\s*\{\s*(?:\\partial|∂|d)\s*L\s*\}\s*\{\s*(?:\\partial|∂|d)\s*(.+)\}"
                           r"|(?:∂|d|\\partial\s*)L\s*/\s*(?:∂|d|\\partial\s*)(.+)|∇_?(.+)|d(.+)|grad_(.+))$")


def _variable_named(text: str, variables) -> str:
    """The variable column as a student or a form writes it: W, dW, ∂L/∂W, dL/dW, $\\mathbf{W}$,
    \\frac{\\partial L}{\\partial \\mathbf{W}} all name W (dW was a file error that stopped the
    class). Only where the spelling is no variable itself and what it names is one."""
    if text in variables:
        return text
    plain = re.sub(r"\\(?:mathbf|boldsymbol|bm|mathrm)\s*\{\s*([^{}]*?)\s*\}", r"\1", text.strip().strip("$")).strip()
    if plain in variables:
        return plain
    m = _DERIVATIVE_OF.match(plain)
    name = next((g.strip().strip("{}").strip() for g in m.groups() if g), None) if m else None
    return name if name in variables else text


def _references(problems, wanted) -> dict:
    """{(problem id, variable): Reference}: one derivation per problem."""
    from .check import references
    by_id = {p.id: p for p in problems.problems}
    out = {}
    for pid, variables in wanted.items():
        p = by_id[pid]
        try:
            refs = references(p.source, variables, p.where, order=p.order, mode=p.mode, assume=p.assume)
        except VerificationError:
            raise
        except IndexCalcError as e:
            raise IndexCalcError(f"{problems.path}: problem {pid!r} cannot be graded: {e}") from None
        for v, ref in refs.items():
            out[(pid, v)] = ref
    return out


def grade(problem_file, answers_file, reuse: bool = True) -> Report:
    """The report of a class. `reuse`: the same answer (up to spacing) to the same question is
    checked once (bench/run.py measures both ways)."""
    from .problems import load
    problems = load(problem_file)
    rows = read_answers(answers_file)
    refs = _references(problems, _validate(rows, problems, answers_file))
    report = Report(str(problem_file), str(answers_file),
                    titles={p.id: p.title for p in problems.problems})
    seen: dict = {}                      # the same answer to the same question: one verdict
    for row in rows:
        ref = refs.get((row.problem, row.variable))
        expected = ref.expected if ref is not None else None
        if row.error:
            c = Claim(row.student, row.problem, row.variable, row.answer, "unreadable", row.error, expected)
        else:
            key = (row.problem, row.variable, " ".join(row.answer.split()))
            if key not in seen or not reuse:
                seen[key] = _verdict(ref, row.answer)
            verdict, reason, ce = seen[key]
            c = Claim(row.student, row.problem, row.variable, row.answer, verdict, reason, expected,
                      counterexample=ce)
        c.line = row.line
        report.claims.append(c)
    _mark_answered_again(report.claims)
    return report


def _mark_answered_again(claims) -> None:
    """A student who answers a question twice (a form submitted again, files joined) is graded
    on the last answer; each earlier one says so and is not counted."""
    last: dict = {}
    for c in claims:
        key = (c.student, c.problem, c.variable)
        if key in last:
            earlier = last[key]
            earlier.again = c.line
            earlier.reason += f" (answered again on line {c.line}: the last answer counts)"
        last[key] = c


def _verdict(ref, answer) -> tuple:
    """(verdict, reason, counterexample) of one claim; never raises for a bad answer."""
    from .check import compare
    if not answer.strip():
        return "unreadable", "the answer is empty", None
    if len(answer) > MAX_ANSWER:
        return "unreadable", f"the answer is longer than {MAX_ANSWER} characters", None
    try:
        with np.errstate(all="ignore"):
            v = compare(ref, answer)
    except ParseError as e:
        where = f" at column {e.column}" if e.column is not None else ""
        return "unreadable", f"cannot be read{where}: {e.reason}", None
    except VerificationError:
        raise                                               # our own bug: never a student's fault
    except IndexCalcError as e:
        return "unreadable", str(e), None
    except RecursionError:
        return "unreadable", "the answer is nested too deeply", None
    except Exception as e:  # noqa: BLE001 - one student's answer never stops the class
        return "unreadable", f"cannot be evaluated ({type(e).__name__}: {e})", None
    return ("right" if v.correct else "wrong"), v.reason, _finite(v.counterexample)


def _finite(value):
    """JSON is strict: a claim's NaN or infinity is written as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---- reports ------------------------------------------------------------------------------------
def render_json(report: Report) -> str:
    return json.dumps(_finite(report.json()), ensure_ascii=False, indent=2, allow_nan=False) + "\n"


CSV_COLUMNS = ("student", "problem", "variable", "answer", "verdict", "reason", "expected",
               "student_right", "student_of")


def _cell(value) -> str:
    """A spreadsheet must not run a student's text as a formula: a cell that starts with
    = + - @ (or a tab or return) gets a leading apostrophe, which spreadsheets hide."""
    s = "" if value is None else str(value)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def render_csv(report: Report) -> str:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    totals = report.students()
    for c in report.claims:
        t = totals[c.student]
        w.writerow([_cell(x) for x in (c.student, c.problem, c.variable, c.answer, c.verdict, c.reason,
                                       c.expected)] + [t["right"], t["of"]])
    return buf.getvalue()


def _summary(report: Report) -> str:
    t = report.totals()
    n = len(report.counted())
    again = len(report.claims) - n
    return (f"{len(report.students())} students, {n} claims: {t['right']} right, {t['wrong']} wrong, "
            f"{t['unreadable']} unreadable" + (f" ({again} earlier answer{'s' if again > 1 else ''} to a question "
                                               "answered again not counted)" if again else ""))


def render_text(report: Report) -> str:
    out = [f"Grades for {report.answers_file} against {report.problem_file}", _summary(report), ""]
    out.append("By question:")
    width = max(len(f"{p} (d/d{v})") for p, v in report.problems())
    for (p, v), t in report.problems().items():
        label = f"{p} (d/d{v})"
        out.append(f"  {label:<{width}}  {t['right']} right, {t['wrong']} wrong, {t['unreadable']} unreadable")
    out.append("")
    totals = report.students()
    by_student: dict = {}
    for c in report.claims:
        by_student.setdefault(c.student, []).append(c)
    for student, claims in by_student.items():
        t = totals[student]
        out.append(f"{student}: {t['right']} of {t['of']} right")
        for c in claims:
            out.append(f"  {c.problem}, d/d{c.variable} = {c.answer or '(empty)'}")
            out.append(f"    {c.verdict.upper()}: {c.reason}".replace("\n", "\n      "))
            if c.verdict != "right" and c.expected and c.expected not in c.reason:
                out.append(f"      the derivative is {c.expected}")
        out.append("")
    from .errors import visible                  # names and answers from a file reach a terminal
    return visible("\n".join(out))


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 70em;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1em; width: 100%; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; word-break: break-word; }
.right { color: #11632a; font-weight: 600; } .wrong { color: #a4161a; font-weight: 600; }
.unreadable { color: #8a5a00; font-weight: 600; }
.reason { font-size: 0.92em; } .muted { color: #666; }
@media print { body { margin: 0; max-width: none; } h2 { page-break-after: avoid; } }
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def render_html(report: Report) -> str:
    students = report.students()
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>Grades: {_e(Path(report.answers_file).name)}</title>",
             f"<style>{_CSS}</style>", "</head>", "<body>",
             f"<h1>Grades for {_e(Path(report.answers_file).name)}</h1>",
             f"<p>Problems: {_e(Path(report.problem_file).name)}. {_e(_summary(report))}. Every claim was compared "
             "with the derivative at random points; a wrong claim shows where it differs and the "
             "right answer.</p>",
             "<h2>By question</h2>",
             "<table><tr><th>problem</th><th>derivative by</th><th>right</th><th>wrong</th>"
             "<th>unreadable</th></tr>"]
    for (p, v), t in report.problems().items():
        title = report.titles.get(p, "")
        parts.append(f"<tr><td>{_e(p)} <span class=\"muted\">{_e(title)}</span></td><td><code>{_e(v)}</code></td>"
                     f"<td class=\"num\">{t['right']}</td><td class=\"num\">{t['wrong']}</td>"
                     f"<td class=\"num\">{t['unreadable']}</td></tr>")
    parts += ["</table>", "<h2>Students</h2>",
              "<table><tr><th>student</th><th>right</th><th>of</th><th>score</th></tr>"]
    for k, (s, t) in enumerate(students.items()):
        score = f"{100 * t['right'] / t['of']:.0f}%" if t["of"] else ""
        parts.append(f"<tr><td><a href=\"#s{k}\">{_e(s)}</a></td><td class=\"num\">{t['right']}</td>"
                     f"<td class=\"num\">{t['of']}</td><td class=\"num\">{score}</td></tr>")
    parts.append("</table>")
    by_student: dict = {}
    for c in report.claims:
        by_student.setdefault(c.student, []).append(c)
    for k, (s, claims) in enumerate(by_student.items()):
        t = students[s]
        parts += [f"<h2 id=\"s{k}\">{_e(s)}: {t['right']} of {t['of']} right</h2>",
                  "<table><tr><th>problem</th><th>by</th><th>answer</th><th>verdict</th>"
                  "<th>why</th><th>the derivative</th></tr>"]
        for c in claims:
            parts.append(f"<tr><td>{_e(c.problem)}</td><td><code>{_e(c.variable)}</code></td>"
                         f"<td><code>{_e(c.answer)}</code></td><td class=\"{_e(c.verdict)}\">{_e(c.verdict)}"
                         f"{' <span class=muted>(not counted)</span>' if c.again else ''}</td>"
                         f"<td class=\"reason\">{_e(c.reason)}</td><td><code>{_e(c.expected)}</code></td></tr>")
        parts.append("</table>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


FORMATS = {"text": render_text, "csv": render_csv, "json": render_json, "html": render_html}
SUFFIXES = {".txt": "text", ".csv": "csv", ".json": "json", ".html": "html", ".htm": "html"}


def format_for(fmt: str | None, out: str | None) -> str:
    """--format, or the report file's suffix (report.html is HTML), or text. A suffix that is no
    report's (-o grades.pdf, a .toml) or that --format contradicts (--format json -o r.html) is
    exit 2: the report was written into it as text, or as JSON."""
    suffix = Path(out).suffix.lower() if out else ""
    if suffix in (".pdf", ".tex", ".toml", ".py", ".xlsx", ".xls"):
        raise IndexCalcError(f"-o {out}: grade writes a text, CSV, JSON or HTML report (.txt, .csv, .json, "
                             f".html), not a {suffix} file")
    said = SUFFIXES.get(suffix)
    if fmt and said and said != fmt:
        raise IndexCalcError(f"--format {fmt} but -o {out} names a {suffix} file; drop --format (the suffix "
                             f"says {said}) or rename the file")
    return fmt or said or "text"
