"""The rules a derivation uses, stated where it uses them (SPEC §6, as the seeds state them):
the norm (√ of a sum of squares, and its chain rule), the determinant, the inverse, softmax,
and the chain rule through each element-wise function. One row per kind of object in RULES;
`rules_used(entry, ctx)` gives the (text, LaTeX left side, LaTeX right side) of each rule
that the indexed expression needs, in the order they first appear."""
from __future__ import annotations

import sympy as sp

from .. import functions as F
from .. import nodes as N
from ..index_form import preorder
from .latex import to_latex
from .text import to_text


def _entry_text(node, idx: str) -> str:
    return f"{node.name}_{idx}" if isinstance(node, N.Sym) else f"[{to_text(node)}]_{idx}"


def _entry_latex(node, idx: str) -> str:
    from .index import entry_name
    if isinstance(node, N.Sym):
        return f"{entry_name(node.name)}_{{{idx}}}"
    return fr"\left[{to_latex(node)}\right]_{{{idx}}}"


def _places(node) -> str:
    """The index letters of one entry of the node: p, pq."""
    return "pq"[:len([d for d in node.shape if d != 1])] or "p"


def _norm(node):
    a = node.a
    i = _places(a)
    u, ul = _entry_text(a, i), _entry_latex(a, i)
    sig = ",".join(i)
    norm_t, norm_l = to_text(node), to_latex(node)
    text = (f"norm: {norm_t} = √(Σ_{sig} {u}^2), so by the chain rule through √ "
            f"∂{norm_t}/∂{u} = {u}/{norm_t}")
    lhs = fr"\frac{{\partial {norm_l}}}{{\partial {ul}}}"
    rhs = (fr"\frac{{{ul}}}{{{norm_l}}} \quad \text{{since }} {norm_l} = "
           fr"\sqrt{{\textstyle\sum_{{{sig}}} {ul}^{{2}}}}")
    return text, lhs, rhs


def _det(node):
    a = node.a
    inv = N.Inverse(a) if isinstance(a, N.Sym) else None
    det_t, det_l = to_text(node), to_latex(node)
    if inv is not None:
        inv_t, inv_l = f"({a.name}⁻¹)_qp", fr"\left({to_latex(inv)}\right)_{{qp}}"
    else:
        inv_t, inv_l = f"[({to_text(a)})^-1]_qp", fr"\left[\left({to_latex(a)}\right)^{{-1}}\right]_{{qp}}"
    text = f"determinant: ∂{det_t}/∂{_entry_text(a, 'pq')} = {det_t} {inv_t}"
    return text, fr"\frac{{\partial {det_l}}}{{\partial {_entry_latex(a, 'pq')}}}", fr"{det_l}\, {inv_l}"


def _inverse(node):
    a = node.a
    m_t = f"{a.name}⁻¹" if isinstance(a, N.Sym) else f"({to_text(a)})⁻¹"
    m_l = to_latex(node)
    e = lambda ij: f"({m_t})_{ij}"                                  # noqa: E731
    el = lambda ij: fr"\left({m_l}\right)_{{{ij}}}"                 # noqa: E731
    text = f"inverse: ∂{e('pq')}/∂{_entry_text(a, 'rs')} = -{e('pr')} {e('sq')}"
    return (text, fr"\frac{{\partial {el('pq')}}}{{\partial {_entry_latex(a, 'rs')}}}",
            fr"-{el('pr')}\, {el('sq')}")


def _softmax(node):
    a = node.a
    s_t, s_l = to_text(node), to_latex(node)
    if len(a.shape) > 2:                # a tensor (SPEC §1.2): along the last axis, per batch entry
        b = "bcdefgh"[:len(a.shape) - 2]
        text = (f"softmax (along the last axis, for each {','.join(b)}): ∂[{s_t}]_{b}pq/∂{_entry_text(a, b + 'rs')} = "
                f"δ_pr [{s_t}]_{b}pq (δ_qs - [{s_t}]_{b}ps)")
        return (text, fr"\frac{{\partial \left[{s_l}\right]_{{{b}pq}}}}{{\partial {_entry_latex(a, b + 'rs')}}}",
                fr"\delta_{{pr}} \left[{s_l}\right]_{{{b}pq}} \left(\delta_{{qs}} - \left[{s_l}\right]_{{{b}ps}}\right)")
    if len([d for d in a.shape if d != 1]) <= 1:
        text = (f"softmax: ∂[{s_t}]_p/∂{_entry_text(a, 'q')} = [{s_t}]_p (δ_pq - [{s_t}]_q)")
        return (text, fr"\frac{{\partial \left[{s_l}\right]_{{p}}}}{{\partial {_entry_latex(a, 'q')}}}",
                fr"\left[{s_l}\right]_{{p}} \left(\delta_{{pq}} - \left[{s_l}\right]_{{q}}\right)")
    text = (f"softmax (of each row): ∂[{s_t}]_pq/∂{_entry_text(a, 'rs')} = "
            f"δ_pr [{s_t}]_pq (δ_qs - [{s_t}]_ps)")
    return (text, fr"\frac{{\partial \left[{s_l}\right]_{{pq}}}}{{\partial {_entry_latex(a, 'rs')}}}",
            fr"\delta_{{pr}} \left[{s_l}\right]_{{pq}} \left(\delta_{{qs}} - \left[{s_l}\right]_{{ps}}\right)")


RULES = {N.Norm: _norm, N.Det: _det, N.Inverse: _inverse, N.Softmax: _softmax}


def _elementwise(name: str):
    """The chain rule through f, with f' written out: ∂f(u)/∂X_ij = f'(u) ∂u/∂X_ij."""
    from .index import IndexLatex, IndexText
    u = sp.Symbol("u")
    if F.is_generic(name) and name not in F.TABLE:      # h: its derivative is h', nothing to add
        text = f"chain rule through {name}: ∂{name}(u)/∂x = {name}'(u) ∂u/∂x"
        return text, fr"\frac{{\partial\, {name}(u)}}{{\partial x}}", fr"{name}'(u) \frac{{\partial u}}{{\partial x}}"
    else:
        d = F.derivative(name, u)

        class _Ctx:                    # the index printers need a context; u has no indices
            atoms, ranges, upstream = {}, {}, set()
            variables = type("V", (), {"items": lambda self: []})()
        d_t = IndexText(_Ctx()).doprint(d).replace("**", "^").replace("*", " ")
        d_l = IndexLatex(_Ctx()).doprint(d)
    name = F.shown_name(name)
    text = f"chain rule through {name}: ∂{name}(u)/∂x = {name}'(u) ∂u/∂x, with {name}'(u) = {d_t}"
    lhs = fr"\frac{{\partial\, \operatorname{{{name}}}(u)}}{{\partial x}}"
    rhs = fr"\operatorname{{{name}}}'(u) \frac{{\partial u}}{{\partial x}}, \quad \operatorname{{{name}}}'(u) = {d_l}"
    if name == "relu":              # the step function, defined where it first appears
        text += ", where step(u) = 1 if u > 0, else 0"
        rhs += r", \quad \operatorname{step}(u) = 1 \text{ if } u > 0 \text{, else } 0"
    return text, lhs, rhs


def _depends(expr, var, ctx) -> bool:
    """Whether expr changes with the variable: it holds an entry of it, or an atom (softmax(X),
    ‖w‖) built from it."""
    for a in preorder(expr):
        name = a.base.label.name if isinstance(a, sp.Indexed) else a.name if isinstance(a, sp.Symbol) else None
        if name == var or (name in ctx.atoms and N.contains(ctx.atoms[name], var)):
            return True
    return False


def rules_used(entry, ctx, var=None) -> list:
    """[(text, lhs LaTeX, rhs LaTeX)] of the rules the derivative of `entry` by `var` uses: a
    function or an atom that does not change with `var` is not differentiated (∂L/∂b² of a
    residual block goes through no ReLU)."""
    out, seen = [], set()
    for a in preorder(entry):
        if var is not None and isinstance(a, (sp.Indexed, sp.Symbol, sp.Function)) and not _depends(a, var, ctx):
            continue
        name = None
        if isinstance(a, sp.Indexed):
            name = a.base.label.name
        elif isinstance(a, sp.Symbol):
            name = a.name
        if name is not None and name in ctx.atoms:
            node = ctx.atoms[name]
            key = (type(node), node)
            if key not in seen and type(node) in RULES:
                seen.add(key)
                out.append(RULES[type(node)](node))
                if isinstance(node, N.Det):            # log(det X): the chain rule through log too
                    pass
        elif isinstance(a, sp.Function) and F.is_elementwise(a):
            fname = F.name_of(a.func)
            if ("f", fname) not in seen:
                seen.add(("f", fname))
                out.append(_elementwise(fname))
    return out
