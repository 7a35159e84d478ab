"""Problem files (SPEC §5): TOML, one assignment each. Read and checked here, once, for both
`solve` and `codegen`; a mistake in a file is named with the file and the problem's id.

    title = "Index gymnastics"                 # the document's title
    [[problem]]
    id = "quadratic-form"                       # required: unique, used in references
    title = "A quadratic form"                  # required
    statement = 'Evaluate $\\partial ... $'     # required: LaTeX, shown as the question
    expression = "x^T B x"                      # or: equation = "Y = X W^T + b"
    where = "x: n, B: n×n"                      # optional: shapes, as --where
    wrt = ["x"]                                 # required: a name or a list
    order = 2                                   # optional: the Hessian (expressions only)
    jacobian = true                             # optional: `p = softmax(x)` as a Jacobian, not backprop
    at = "X=[[0,1],[2,3]], W=[[1,1],[1,1]]"     # optional: evaluate at these numbers
    assume = ["T 1 = 1"]                        # optional: backprop under an assumption
    claim = { x = "2 B x" }                     # optional: a student's answers, checked
    [problem.module]                            # optional: for codegen (see codegen.py)
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field

from .errors import IndexCalcError

PROBLEM_KEYS = {"id", "title", "statement", "expression", "equation", "where", "wrt", "order",
                "jacobian", "at", "assume", "claim", "module", "note"}
FILE_KEYS = {"title", "author", "course", "problem"}


@dataclass
class Problem:
    id: str
    title: str
    statement: str
    source: str                    # the expression or the equation, as written
    is_equation: bool
    wrt: list
    where: str | None = None
    order: int = 1
    jacobian: bool = False
    at: str | None = None
    assume: list = field(default_factory=list)
    claim: dict = field(default_factory=dict)
    module: dict | None = None
    note: str = ""

    @property
    def mode(self) -> str:
        """derive (an expression), jacobian (an equation read as p = f(x)) or backprop."""
        if not self.is_equation:
            return "derive"
        return "jacobian" if self.jacobian else "backprop"


@dataclass
class ProblemSet:
    path: str
    title: str
    author: str
    course: str
    problems: list
    raw: dict


def load_toml(path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise IndexCalcError(f"no problem file {path}") from None
    except IsADirectoryError:
        raise IndexCalcError(f"{path} is a directory, not a problem file") from None
    except tomllib.TOMLDecodeError as e:
        raise IndexCalcError(f"{path} is not valid TOML: {e}") from None


def load(path) -> ProblemSet:
    data = load_toml(path)
    unknown = set(data) - FILE_KEYS
    if unknown:
        raise IndexCalcError(f"{path}: unknown key {', '.join(sorted(unknown))} (known: {', '.join(sorted(FILE_KEYS))})")
    raw = data.get("problem", [])
    if not isinstance(raw, list) or not raw:
        raise IndexCalcError(f"{path} has no [[problem]] table")
    problems, seen = [], set()
    for k, p in enumerate(raw, 1):
        problem = _problem(path, k, p)
        if problem.id in seen:
            raise IndexCalcError(f"{path}: two problems have the id {problem.id!r}")
        seen.add(problem.id)
        problems.append(problem)
    return ProblemSet(str(path), str(data.get("title", "Worked solutions")), str(data.get("author", "")),
                      str(data.get("course", "")), problems, data)


def _problem(path, k, p) -> Problem:
    where = f"{path}: problem {p.get('id', k)!r}" if isinstance(p, dict) else f"{path}: problem {k}"
    if not isinstance(p, dict):
        raise IndexCalcError(f"{where} is not a table")
    unknown = set(p) - PROBLEM_KEYS
    if unknown:
        raise IndexCalcError(f"{where}: unknown key {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(PROBLEM_KEYS))})")
    for key in ("id", "title", "statement", "wrt"):
        if key not in p:
            raise IndexCalcError(f"{where} has no `{key}`")
    if ("expression" in p) == ("equation" in p):
        raise IndexCalcError(f"{where} needs exactly one of `expression` and `equation`")
    wrt = p["wrt"]
    wrt = [w.strip() for w in wrt.split(",")] if isinstance(wrt, str) else wrt
    if not isinstance(wrt, list) or not wrt or not all(isinstance(w, str) and w for w in wrt):
        raise IndexCalcError(f"{where}: `wrt` is a name or a list of names")
    claim = p.get("claim", {})
    if not isinstance(claim, dict) or not all(isinstance(v, str) for v in claim.values()):
        raise IndexCalcError(f"{where}: `claim` is a table such as {{ b = \"dY\" }}")
    stray = [c for c in claim if c not in wrt]
    if stray:
        raise IndexCalcError(f"{where}: a claim about {', '.join(stray)}, which is not in `wrt`")
    order = p.get("order", 1)
    if order not in (1, 2):
        raise IndexCalcError(f"{where}: `order` is 1 or 2")
    assume = p.get("assume", [])
    assume = [assume] if isinstance(assume, str) else assume
    is_equation = "equation" in p
    if p.get("jacobian") and not is_equation:
        raise IndexCalcError(f"{where}: `jacobian = true` needs an `equation` such as \"p = softmax(x)\"")
    if order == 2 and is_equation:
        raise IndexCalcError(f"{where}: `order = 2` is for expressions")
    return Problem(str(p["id"]), str(p["title"]), str(p["statement"]),
                   str(p["equation"] if is_equation else p["expression"]), is_equation, list(wrt),
                   p.get("where"), order, bool(p.get("jacobian", False)), p.get("at"), list(assume),
                   dict(claim), p.get("module"), str(p.get("note", "")))
