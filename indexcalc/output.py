"""Derivations -> the output formats of SPEC §2-3: text, latex, json, numpy."""
from __future__ import annotations

import json

from .printing.latex import symbol, to_latex
from .shapes import show_shape


def _shape_words(shape) -> str:
    return show_shape(tuple(shape))


def variables_json(variables) -> dict:
    return {name: {"kind": v.kind, "shape": [d for d in v.array_shape]} for name, v in variables.items()}


def derive_json(d, command="derive", extra=None) -> str:
    out = {"command": command, "input": d.input, "variables": variables_json(d.variables), "results": []}
    for r in d.results:
        out["results"].append({
            "wrt": r.wrt, "order": r.order, "shape": list(r.shape),
            "index_form": r.index_form, "closed_form": r.closed_form, "latex": r.latex,
            "numpy": r.numpy,
            "steps": [{"rule": s.rule, "latex": s.latex, "text": s.text} for s in r.steps],
            "checked": {"method": "central finite differences", "sizes": r.checked_sizes},
        })
    if extra:
        out.update(extra)
    return json.dumps(out, ensure_ascii=False, indent=2)


def derive_text(d) -> str:
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


def derive_latex(d) -> str:
    out = []
    for r in d.results:
        var = symbol(r.wrt, d.variables[r.wrt].kind == "scalar")
        out.append(r"\begin{align*}")
        rows = [s.latex for s in r.steps if s.latex]
        out.append(" \\\\\n".join(f"  &{row}" if k else f"  {row}" for k, row in enumerate(rows)))
        out.append(r"\end{align*}")
        lhs = fr"\frac{{\partial f}}{{\partial {var}}}"
        body = to_latex(r.closed) if r.closed is not None else r.index_latex
        out.append(fr"\[ \boxed{{{lhs} = {body}}} \]")
    return "\n".join(out) + "\n"


def derive_numpy(d) -> str:
    return "\n".join((f"# d/d{r.wrt}\n" if len(d.results) > 1 else "") + r.numpy for r in d.results) + "\n"


FORMATS = {"text": derive_text, "json": derive_json, "latex": derive_latex, "numpy": derive_numpy}
