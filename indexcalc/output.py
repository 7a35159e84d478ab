"""Derivations -> the output formats of SPEC §2-3: text, latex, json, numpy."""
from __future__ import annotations

import functools
import json
import math
import re

from . import nodes as N

from .printing.latex import symbol, to_latex
from .shapes import show_shape


def _shape_words(shape) -> str:
    return show_shape(tuple(shape))


def _dim(d):
    """A size in JSON: an int, a size name, or a computed size as text ("d - k + 1")."""
    return d if isinstance(d, int) else str(d)


def variables_json(variables) -> dict:
    return {name: {"kind": v.kind, "shape": [_dim(d) for d in v.array_shape]} for name, v in variables.items()}


def _in_latex_context(fn):
    """Print inside the derivation's LaTeX context (its upstream gradient is ∂L/∂Y)."""
    @functools.wraps(fn)
    def wrapped(d, *args, **kwargs):
        with d.latex_context():
            return fn(d, *args, **kwargs)
    return wrapped


@_in_latex_context
def derive_json(d, command="derive", extra=None) -> str:
    out = {"command": command, "input": d.input, "read_as": getattr(d, "read_as", "") or d.input,
           "variables": variables_json(d.variables), "results": []}
    with_output = _with_output(d) if command == "backprop" else {}
    for r in d.results:
        out["results"].append({
            "wrt": r.wrt, "order": r.order, "shape": [_dim(d) for d in r.shape],
            "index_form": r.index_form, "closed_form": r.closed_form, "latex": r.latex,
            "numpy": r.numpy, "function": r.function,
            "steps": [{"rule": s.rule, "latex": s.latex, "text": s.text} for s in r.steps],
            "checked": {"method": "finite differences along random directions", "sizes": r.checked_sizes},
            **({"with_output": with_output[r.wrt]} if r.wrt in with_output else {}),
        })
    if extra:
        out.update(extra)
    return strict_json(out)


def _with_output(d) -> dict:
    """backprop: {wrt: {"closed_form", "numpy"}} of the gradient written with the module's
    output Y (SPEC §6), where that differs; its NumPy code also takes Y (the forward value)."""
    from . import nodes as N
    from .fold import folded_forms
    from .printing.numpy_code import NumpyPrinter
    from .printing.text import to_text
    from .shapes import Variable, Variables
    if d.rhs is None or d.output is None:
        return {}
    folded = folded_forms(d)
    table = {**d.variables.table, d.output: Variable(d.output, N.kind_of(d.rhs.shape), d.rhs.shape)}
    printer = NumpyPrinter(Variables(table, d.variables.sizes))
    return {w: {"closed_form": to_text(f), "numpy": printer.code(f, d.variables[w].kind)}
            for w, f in folded.items()}


def strict_json(value, **options) -> str:
    """JSON as SPEC §3-4 has it: strict (no NaN or Infinity, which JSON does not have). A
    number that is not finite is written as null, and a top-level "notes" list says which
    and what it was."""
    notes = []

    def finite(v, path):
        if isinstance(v, dict):
            return {k: finite(x, f"{path}.{k}" if path else str(k)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [finite(x, f"{path}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, float) and not math.isfinite(v):
            notes.append(f"{path} is {v} (not a finite number): written as null")
            return None
        return v
    clean = finite(value, "")
    if notes and isinstance(clean, dict):
        clean["notes"] = clean.get("notes", []) + notes
    return json.dumps(clean, ensure_ascii=False, allow_nan=False, **{"indent": 2, **options})


def number_text(x) -> str:
    """A number as a person writes it: 52, not 52.; 0.333333; 1e+20; nan and inf as such."""
    x = float(x)
    if math.isfinite(x) and x == round(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.6g}"


def array_text(value, indent: int = 0) -> str:
    """A number, a vector `[1, 2, 3]`, or a matrix with one row a line, columns aligned and
    continuation lines indented by `indent` (the column the first line starts at)."""
    import numpy as np
    a = np.asarray(value, dtype=float)
    if a.ndim == 0:
        return number_text(a)
    cells = np.vectorize(number_text, otypes=[object])(a)
    width = max(len(c) for c in cells.ravel()) if cells.size else 0
    if a.ndim == 1:
        return "[" + ", ".join(cells) + "]"

    def block(c, depth):
        if c.ndim == 1:
            return "[" + ", ".join(s.rjust(width) for s in c) + "]"
        pad = " " * (indent + depth + 1)
        return "[" + (",\n" + pad).join(block(row, depth + 1) for row in c) + "]"
    return block(cells, 0)


def declarations(d) -> str:
    """The variables and their shapes, in words: "x: vector of size n, B: n×n"."""
    return ", ".join(f"{n}: {_shape_words(v.shape)}" for n, v in d.variables.items())


def derive_text(d, assume=None) -> str:
    from .fold import folded_forms
    from .printing.text import to_text
    folded = folded_forms(d, assume or ())
    lines = []
    decl = declarations(d)
    for r in d.results:
        what = "second derivative" if r.order == 2 else "derivative"
        lines.append(f"{what} of {d.input} with respect to {r.wrt}   ({decl})")
        lines.append("")
        for k, s in enumerate(r.steps, 1):
            lines.append(f"  {k}. {s.rule:<15} {s.text}")
        lines.append("")
        if r.closed is not None:
            lines.append(f"closed form:  {r.closed_form}")
            if r.wrt in folded:
                f = folded[r.wrt]
                given = ", ".join(f"{to_text(a)} = {to_text(b)}" for a, b in (assume or ()))
                if N.contains(f, d.output):
                    where = f"{d.output} = {to_text(d.rhs)}" + (f", {given}" if given else "")
                    lines.append(f"written with {d.output}: {to_text(f)}   (where {where})")
                elif given:
                    lines.append(f"if {given}: {to_text(f)}")
                else:                               # another spelling, under no assumption
                    lines.append(f"equivalently: {to_text(f)}")
            lines.append(f"shape:        {_shape_words(r.closed.shape)}"
                         + (f", the shape of {r.wrt}" if r.order == 1 and d.tree.is_scalar else ""))
        else:
            rank = len([x for x in r.shape if x != 1])
            what = f"none found for this rank-{rank} result" if rank > 2 else "none found in the matrix language"
            lines.append(f"closed form:  {what}; the index form is the answer:")
            lines.append(f"              {r.index_form}")
        lines.append(f"numpy:        {r.numpy}")
        sizes = ", ".join(f"{k}={v}" for k, v in r.checked_sizes.items())
        lines.append("checked:      agrees with finite differences along random directions at a random point"
                     + (f" ({sizes})" if sizes else ""))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ---- LaTeX ---------------------------------------------------------------------------------
# The rows of a derivation: index steps chain as "&= ..." under the derivative they compute; a
# step with its own left side (the chain rule, the indexed output) starts a new equation. The
# last closed form is not a row: it is boxed below the derivation.
_NOT_A_ROW = {"index", "note"}
MATRIX_ROWS = {"matrix form", "closed form", "gradient"}
LINE_WIDTH = 64          # about what fits beside the left side on an A4 page at 11pt


def matrix_lhs(name, var, order=1) -> str:
    return (fr"\frac{{\partial {name}}}{{\partial {var}}}" if order == 1
            else fr"\frac{{\partial^2 {name}}}{{\partial {var}^2}}")


def derivation_rows(d, r, with_rule=False, names=()) -> list:
    """[(lhs, rhs, note)] of one result's derivation, in LaTeX; lhs "" continues the equation.
    With `with_rule`, [(rule, lhs, rhs, note)]: the step each row comes from (the web page).
    `names`: rows [(name, what it stands for)] that define the names a long closed form is
    written with, placed before the first row in matrix form."""
    var = symbol(r.wrt, d.variables[r.wrt].kind == "scalar")
    steps = [s for s in r.steps if s.rule not in _NOT_A_ROW]
    if steps and steps[-1].rule == "closed form":
        steps = steps[:-1]
    rows, order, last = [], 1, ""
    for s in steps:
        lhs = s.lhs
        if names and s.rule in MATRIX_ROWS:
            rows += _name_rows(names, with_rule)
            names = ()
            lhs = lhs or last                 # the equation the names interrupted, written again
        if s.rule == "second derivative":
            order = 2
        lhs = matrix_lhs(d.name, var, order) if s.rule == "closed form" else lhs
        last = lhs or last
        rows.append((s.rule, lhs, s.latex, s.note) if with_rule else (lhs, s.latex, s.note))
    return rows + _name_rows(names, with_rule)


def _name_rows(names, with_rule) -> list:
    """A := ... rows (seed 004: "rename the product such that R := QᵀQ")."""
    return [("name", n + r" \mathrel{:}", v, "") if with_rule else (n + r" \mathrel{:}", v, "") for n, v in names]


def answer_latex(d, r) -> tuple:
    """(left side, right side) of the boxed answer: the closed form, or the index form."""
    var = symbol(r.wrt, d.variables[r.wrt].kind == "scalar")
    if r.closed is not None:
        return matrix_lhs(d.name, var, r.order), to_latex(r.closed)
    return _index_lhs(r), r.index_latex


def _index_lhs(r):
    rule = "second derivative" if r.order == 2 else "differentiate"       # ∂²f/∂x_l∂x_m, not ∂f/∂x_l
    first = next((s for s in r.steps if s.rule == rule), None)
    return first.lhs if first is not None else ""


def boxed(lhs: str, rhs: str) -> str:
    """The boxed answer; a long one broken at its top-level + and - signs inside the box
    (never scaled: a formula scaled to the line is too small to read)."""
    pieces = break_sum(rhs)
    if len(pieces) == 1:
        return fr"\boxed{{{lhs} = {rhs}}}"
    body = " \\\\\n".join([f"{lhs} &= {pieces[0]}"] + [fr"&\quad {p}" for p in pieces[1:]])
    return "\\boxed{\\begin{aligned}\n" + body + "\n\\end{aligned}}"


def align_rows(rows, env="align*", fit: str = "") -> str:
    """An align environment; a long right side is broken at its top-level + and - signs. `fit`:
    a LaTeX command of one argument that each piece is passed through (solve's document: \\fitrow,
    which shrinks only a piece that would run off the page, where no + or - breaks it)."""
    lines = []
    for lhs, rhs, note in rows:
        pieces = [f"{fit}{{{p}}}" if fit else p for p in break_sum(rhs)]
        first = f"  {lhs} &= {pieces[0]}"
        if note and env == "align*":
            first += fr" \tag*{{$\text{{by }} {note}$}}"
        elif note:                           # `aligned` (MathJax in Jupyter) has no tags
            first += fr" \quad \text{{by }} {note}"
        lines.append(first)
        lines += [fr"  &\quad {p}" for p in pieces[1:]]
    return f"\\begin{{{env}}}\n" + " \\\\\n".join(lines) + f"\n\\end{{{env}}}"


def _top_level_terms(s: str) -> list:
    """Split a LaTeX sum at + and - outside braces and \\left ... \\right."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(s):
        if s.startswith(r"\left", i):
            depth, i = depth + 1, i + 5
            continue
        if s.startswith(r"\right", i):
            depth, i = depth - 1, i + 6
            continue
        c = s[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0 and c in "+-" and s[i - 1:i] == " " and s[i + 1:i + 2] == " " and i > start:
            out.append(s[start:i].strip())
            start = i
        i += 1
    out.append(s[start:].strip())
    return [t for t in out if t]


def visible_width(s: str) -> float:
    """A rough width of typeset LaTeX, in characters: fractions count their wider part,
    sub- and superscripts a little over half."""
    s = re.sub(r"\\(left|right|mathbf|mathrm|operatorname|mathbb)\b", "", s)
    s = s.replace(r"\,", "").replace(r"\quad", "xx")
    for _ in range(4):
        s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", lambda m: "x" * max(len(m[1]), len(m[2])), s)
        s = re.sub(r"[_^]\{([^{}]*)\}", lambda m: "x" * (len(m[1]) * 6 // 10 + 1), s)
    s = re.sub(r"\\[a-zA-Z]+", "x", s)
    return len(s.replace("{", "").replace("}", "").replace(" ", "")) * 1.0 + s.count(" ") * 0.3


def break_sum(s: str, width: float = LINE_WIDTH) -> list:
    """A long sum as lines of at most `width`, each starting with its sign."""
    terms = _top_level_terms(s)
    if len(terms) < 2 or visible_width(s) <= width:
        return [s]
    lines, cur = [], ""
    for t in terms:
        if cur and visible_width(cur + " " + t) > width:
            lines.append(cur)
            cur = t
        else:
            cur = f"{cur} {t}".strip()
    lines.append(cur)
    return lines


@_in_latex_context
def derivation_aligned(d) -> str:
    """Every result's rows and its answer in one `aligned` block (for Jupyter's MathJax)."""
    blocks = []
    for r in d.results:
        lhs, rhs = answer_latex(d, r)
        rows = derivation_rows(d, r) + [(lhs, fr"\boxed{{{rhs}}}", "")]
        blocks.append(align_rows(rows, env="aligned"))
    if len(blocks) == 1:
        return blocks[0]
    # one below the other: a line break belongs inside an environment (at the top level of
    # $$...$$ MathJax sets the blocks side by side)
    return "\\begin{gathered}\n" + " \\\\[1ex]\n".join(blocks) + "\n\\end{gathered}"


@_in_latex_context
def derive_latex(d) -> str:
    out = []
    for r in d.results:
        out.append(align_rows(derivation_rows(d, r)))
        lhs, rhs = answer_latex(d, r)
        out.append(fr"\[ \boxed{{{lhs} = {rhs}}} \]")
    return "\n".join(out) + "\n"


def derive_numpy(d) -> str:
    return "\n".join((f"# d/d{r.wrt}\n" if len(d.results) > 1 else "") + (r.function or r.numpy + "\n")
                     for r in d.results)


FORMATS = {"text": derive_text, "json": derive_json, "latex": derive_latex, "numpy": derive_numpy}
