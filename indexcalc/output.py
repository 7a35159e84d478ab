"""Derivations -> the output formats of SPEC §2-3: text, latex, json, numpy."""
from __future__ import annotations

import json

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


def derive_json(d, command="derive", extra=None) -> str:
    out = {"command": command, "input": d.input, "variables": variables_json(d.variables), "results": []}
    for r in d.results:
        out["results"].append({
            "wrt": r.wrt, "order": r.order, "shape": [_dim(d) for d in r.shape],
            "index_form": r.index_form, "closed_form": r.closed_form, "latex": r.latex,
            "numpy": r.numpy,
            "steps": [{"rule": s.rule, "latex": s.latex, "text": s.text} for s in r.steps],
            "checked": {"method": "central finite differences", "sizes": r.checked_sizes},
        })
    if extra:
        out.update(extra)
    return json.dumps(out, ensure_ascii=False, indent=2)


def derive_text(d, assume=None) -> str:
    from .fold import folded_forms
    from .printing.text import to_text
    folded = folded_forms(d, assume or ())
    lines = []
    decl = ", ".join(f"{n}: {_shape_words(v.shape)}" for n, v in d.variables.items())
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
                else:
                    lines.append(f"if {given}: {to_text(f)}")
            lines.append(f"shape:        {_shape_words(r.closed.shape)}"
                         + (f", the shape of {r.wrt}" if r.order == 1 and d.tree.is_scalar else ""))
        else:
            lines.append("closed form:  none as a matrix expression (rank "
                         f"{len([x for x in r.shape if x != 1])}); the index form is the answer:")
            lines.append(f"              {r.index_form}")
        lines.append(f"numpy:        {r.numpy}")
        sizes = ", ".join(f"{k}={v}" for k, v in r.checked_sizes.items())
        lines.append("checked:      agrees with central finite differences on random arrays"
                     + (f" ({sizes})" if sizes else ""))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def latex_document_body(d, inline=False) -> str:
    r = d.results[0]
    return r.latex if inline else derive_latex(d)


# the rows of the LaTeX derivation: index steps chain as "&= ..." under the derivative they
# compute; the closed form is a new equation in matrix notation
_NOT_A_ROW = {"index"}


def _matrix_lhs(var, order):
    return (fr"\frac{{\partial f}}{{\partial {var}}}" if order == 1
            else fr"\frac{{\partial^2 f}}{{\partial {var}^2}}")


def derive_latex(d) -> str:
    out = []
    for r in d.results:
        var = symbol(r.wrt, d.variables[r.wrt].kind == "scalar")
        rows = []
        order = 1
        for s in r.steps:
            if s.rule in _NOT_A_ROW or not s.latex:
                continue
            if s.rule == "second derivative":
                order = 2
            lhs = _matrix_lhs(var, order) if s.rule == "closed form" else s.lhs
            note = fr" && \text{{by }} {s.note}" if s.note else ""
            rows.append(f"  {lhs} &= {s.latex}{note}")
        out.append(r"\begin{align*}")
        out.append(" \\\\\n".join(rows))
        out.append(r"\end{align*}")
        body = to_latex(r.closed) if r.closed is not None else r.index_latex
        out.append(fr"\[ \boxed{{{_matrix_lhs(var, r.order)} = {body}}} \]")
    return "\n".join(out) + "\n"


def derive_numpy(d) -> str:
    return "\n".join((f"# d/d{r.wrt}\n" if len(d.results) > 1 else "") + r.numpy for r in d.results) + "\n"


FORMATS = {"text": derive_text, "json": derive_json, "latex": derive_latex, "numpy": derive_numpy}
