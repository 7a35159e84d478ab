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

A file is data from anyone (a student, a colleague): every field's type is checked here, with
the file, the problem and the field named (exit status 2); text with control characters is
refused (nothing a file says reaches a terminal as an escape sequence); and every name that
codegen writes into Python source (class, parameter keys, constructor arguments, variables)
must be a plain identifier (`python_name`).
"""
from __future__ import annotations

import builtins
import keyword
import re
import tomllib
from dataclasses import dataclass, field

from .errors import IndexCalcError



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


# ---- what a value may be ------------------------------------------------------------------------
_TOML_TYPES = [(bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
               (list, "an array"), (dict, "a table")]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")       # all but tab and newline
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# names the generated module itself uses at module level or in __init__
CODEGEN_RESERVED = {"np", "self", "std", "input_layer", "x", "y", "dout"}


def toml_type(value) -> str:
    return next((name for t, name in _TOML_TYPES if isinstance(value, t)), type(value).__name__)


class _Bad(Exception):
    """A field's value is not what it must be: the message says what it must be."""


def text(value, multiline=True) -> str:
    if not isinstance(value, str):
        raise _Bad(f"must be a string, not {toml_type(value)}")
    bad = _CONTROL.search(value) or (None if multiline else re.search(r"[\t\n]", value))
    if bad:
        raise _Bad(f"contains the control character U+{ord(bad.group()):04X}")
    return value


# LaTeX from a file (statements, titles, notes) is typeset by `solve --format pdf`. pdflatex runs
# with openin_any=p (solve.TEX_ENV), but pdfTeX's `\pdfobj ... file {/path}` reads any file
# regardless, and TeX can reach a primitive by a name it builds (\csname, \begin{<name>},
# re-read text, ^^ notation, changed catcodes). So these are refused in a file's LaTeX, and
# an environment must be one of the usual ones, named literally.
TEX_FORBIDDEN = {
    "pdfobj", "pdfximage", "pdfrefximage", "pdfprimitive", "primitive", "pdffiledump", "pdfmdfivesum",
    "pdffilesize", "pdffilemoddate", "csname", "UseName", "ExpandArgs", "NewCommandCopy",
    "RenewCommandCopy", "DeclareCommandCopy", "ProvideCommandCopy", "scantokens", "scantextokens",
    "catcode", "makeatletter", "ExplSyntaxOn", "input", "include", "includeonly", "InputIfFileExists",
    "IfFileExists", "openin", "read", "readline", "openout", "write", "immediate", "special",
    "usepackage", "RequirePackage", "documentclass", "endinput", "directlua", "everyeof",
    "lccode", "uccode", "pdfmapfile", "pdfmapline",
    # raw PDF objects and actions: a PDF that runs JavaScript or a program when opened or clicked
    "pdfcatalog", "pdfannot", "pdfstartlink", "pdfnames", "pdftrailer", "pdfinfo", "pdfpageattr",
    "pdfpagesattr", "pdfpageresources",
}
_TEX_ACTION = re.compile(r"(run|javascript|launch|file)\s*:", re.I)     # \href{run:...} launches
TEX_ENVIRONMENTS = {
    "pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "matrix", "smallmatrix", "array", "cases",
    "aligned", "alignedat", "gathered", "split", "align", "align*", "alignat", "alignat*", "equation",
    "equation*", "gather", "gather*", "multline", "multline*", "flalign", "flalign*", "itemize",
    "enumerate", "description", "center", "flushleft", "flushright", "quote", "quotation", "tabular",
    "minipage",
}


def latex(value) -> str:
    """LaTeX from the file: text, without the constructs that read files (TEX_FORBIDDEN)."""
    value = text(value)
    if "^^" in value:
        raise _Bad("contains ^^ (TeX's character-code notation), which is not allowed here")
    for m in re.finditer(r"\\([A-Za-z]+)", value):
        if m.group(1) in TEX_FORBIDDEN:
            raise _Bad(f"uses \\{m.group(1)}, which is not allowed in a problem file's LaTeX "
                       "(it can read files, build commands by name or put actions into the PDF)")
        target = re.match(r"\s*(?:\[[^\]]*\])?\s*\{([^{}]*)\}", value[m.end():])
        if m.group(1) in ("href", "url", "hyperref", "hyperlink") and (target is None or _TEX_ACTION.search(target.group(1))):
            raise _Bad(f"uses \\{m.group(1)} with a run:, javascript: or file: link, which is not allowed here")
        if m.group(1) in ("begin", "end"):
            env = re.match(r"\s*\{([A-Za-z]+\*?)\}", value[m.end():])
            if env is None or env.group(1) not in TEX_ENVIRONMENTS:
                raise _Bad(f"uses \\{m.group(1)} with an environment that is not allowed here "
                           f"(allowed: {', '.join(sorted(TEX_ENVIRONMENTS))})")
    return value


def line(value) -> str:
    return text(value, multiline=False)


def names(value) -> list:
    """A name, "a, b", or an array of names."""
    items = [w.strip() for w in value.split(",")] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(w, str) and w.strip() for w in items):
        raise _Bad(f"must be a name or an array of names such as [\"W\", \"b\"], not {toml_type(value)}")
    return [line(w).strip() for w in items]


def strings(value) -> list:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise _Bad(f"must be a string or an array of strings, not {toml_type(value)}")
    return [line(s) for s in items]


def number(value) -> float:
    """A finite number (a module's constant, such as ε)."""
    import math
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Bad(f"must be a finite number, not {toml_type(value) if not isinstance(value, float) else value}")
    return value


def line_or_lines(value):
    """One string, or an array of them (a module's several inputs)."""
    if isinstance(value, list):
        if not value or not all(isinstance(v, str) for v in value):
            raise _Bad("must be a name or a non-empty array of names")
        return [line(v) for v in value]
    return line(value)


def boolean(value) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"must be true or false, not {toml_type(value)}")
    return value


def order(value) -> int:
    if isinstance(value, bool) or value not in (1, 2):
        raise _Bad(f"must be 1 or 2, not {value!r}" if isinstance(value, int) and not isinstance(value, bool)
                   else f"must be 1 or 2, not {toml_type(value)}")
    return value


def checked(table: dict, fields: dict) -> dict:
    """A TOML table with every entry checked by its field's function (`fields`: key -> check).
    _Bad names the key: one that is not known (with those that are), or whose value is not
    what it must be."""
    unknown = set(table) - set(fields)
    if unknown:
        raise _Bad(f"has the unknown key {', '.join(sorted(unknown))} (known: {', '.join(sorted(fields))})")
    out = {}
    for k, v in table.items():
        try:
            out[k] = fields[k](v)
        except _Bad as e:
            raise _Bad(f"`{k}` {e}") from None
    return out


def table_of(check_key, check_value):
    def table(value) -> dict:
        if not isinstance(value, dict):
            raise _Bad(f"must be a table such as {{ key = \"value\" }}, not {toml_type(value)}")
        out = {}
        for k, v in value.items():
            try:
                out[check_key(k)] = check_value(v)
            except _Bad as e:
                raise _Bad(f"entry {k!r} {e}") from None
        return out
    return table


def python_name(value) -> str:
    """A name that generated Python source may contain: an ASCII identifier, not a keyword,
    not a builtin, not private (`_...`), and not a name the generated module itself uses."""
    value = line(value)
    if (not _IDENTIFIER.match(value) or keyword.iskeyword(value) or keyword.issoftkeyword(value)
            or value.startswith("_") or hasattr(builtins, value) or value in CODEGEN_RESERVED):
        raise _Bad(f"must be a plain Python name (ASCII letters, digits and _, not a keyword or "
                   f"builtin, not {', '.join(sorted(CODEGEN_RESERVED))}), not {value!r}")
    return value


def key(value) -> str:
    """A key of the generated `params`/`grads` dictionaries: an ASCII identifier."""
    value = line(value)
    if not _IDENTIFIER.match(value):
        raise _Bad(f"must be a plain name (ASCII letters, digits and _), not {value!r}")
    return value


def _module(value) -> dict:
    if not isinstance(value, dict):
        raise _Bad(f"must be a table ([problem.module]), not {toml_type(value)}")
    out = checked(value, MODULE_FIELDS)
    for key in ("class", "input"):
        if key not in value:
            raise _Bad(f"has no `{key}`")
    args = list(out.get("sizes", {}).values())
    if len(set(args)) != len(args):
        raise _Bad("`sizes` names one constructor argument for two sizes")
    return out


MODULE_FIELDS = {
    "class": python_name,                           # the class name
    "input": line_or_lines,                         # the forward input(s) (variables: checked by codegen)
    "target": line,                                 # a loss module's targets (a variable)
    "params": table_of(key, line),                  # key in params/grads -> variable
    "sizes": table_of(line, python_name),           # size name -> constructor argument
    "init": table_of(key, line),                    # key in params -> how it starts (codegen.INIT)
    "constants": table_of(python_name, number),     # scalar variable -> its default (ε), a constructor argument
}

# every key of a [[problem]] table: how its value is checked
PROBLEM_FIELDS = {
    "id": line, "title": latex, "statement": latex, "expression": line, "equation": line,
    "where": line, "wrt": names, "order": order, "jacobian": boolean, "at": line,
    "assume": strings, "claim": table_of(line, line), "module": _module, "note": latex,
}
FILE_FIELDS = {"title": text, "author": text, "course": text}


def load_toml(path) -> dict:
    from .files import read_text
    content = read_text(path, "problem file")
    try:
        return tomllib.loads(content)
    except tomllib.TOMLDecodeError as e:
        raise IndexCalcError(f"{path} is not valid TOML: {e}") from None
    except RecursionError:
        raise IndexCalcError(f"{path} is nested too deeply") from None


def load(path) -> ProblemSet:
    data = load_toml(path)
    try:
        head = checked(data, {**FILE_FIELDS, "problem": lambda v: v})    # the problems: below
    except _Bad as e:
        raise IndexCalcError(f"{path} {e}") from None
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
    return ProblemSet(str(path), head.get("title", "Worked solutions"), head.get("author", ""),
                      head.get("course", ""), problems, data)


def _problem(path, k, p) -> Problem:
    if not isinstance(p, dict):
        raise IndexCalcError(f"{path}: problem {k} is not a table")
    pid = p.get("id")
    where = (f"{path}: problem {pid!r}" if isinstance(pid, str) and not _CONTROL.search(pid)
             else f"{path}: problem {k}")
    try:
        v = checked(p, PROBLEM_FIELDS)
    except _Bad as e:
        raise IndexCalcError(f"{where} {e}") from None
    for key in ("id", "title", "statement", "wrt"):
        if key not in p:
            raise IndexCalcError(f"{where} has no `{key}`")
    if ("expression" in p) == ("equation" in p):
        raise IndexCalcError(f"{where} needs exactly one of `expression` and `equation`")
    if not v["id"].strip():
        raise IndexCalcError(f"{where}: `id` is empty")
    claim, wrt = v.get("claim", {}), v["wrt"]
    stray = [c for c in claim if c not in wrt]
    if stray:
        raise IndexCalcError(f"{where}: a claim about {', '.join(stray)}, which is not in `wrt`")
    is_equation = "equation" in v
    if v.get("jacobian") and not is_equation:
        raise IndexCalcError(f"{where}: `jacobian = true` needs an `equation` such as \"p = softmax(x)\"")
    if v.get("order", 1) == 2 and is_equation:
        raise IndexCalcError(f"{where}: `order = 2` is for expressions")
    if "module" in v and not is_equation:
        raise IndexCalcError(f"{where}: `[problem.module]` needs an `equation` such as \"Y = X W^T + b\"")
    return Problem(v["id"], v["title"], v["statement"], v["equation"] if is_equation else v["expression"],
                   is_equation, wrt, v.get("where"), v.get("order", 1), v.get("jacobian", False),
                   v.get("at"), v.get("assume", []), claim, v.get("module"), v.get("note", ""))
