"""`solve`: a problem file -> worked solutions (text, LaTeX, PDF).

Each problem runs through the same pipeline as `derive`/`backprop`, so every answer written
here has passed the numerical guard. A student's claimed answers are checked with `check`
(finite differences of the problem itself) and, where wrong, shown with the counterexample
and the right answer. The LaTeX document is rendered by one jinja2 template,
`templates/solutions.tex.j2`; this module only prepares what the template prints.
"""
from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import nodes as N
from . import output
from .check import Verdict, check
from .errors import IndexCalcError, UnsupportedError
from .fold import assumptions, folded_forms
from .printing.latex import named_subtrees, shape_check_latex, space_latex, symbol, to_latex
from .printing.names import closed_names
from .problems import Problem, ProblemSet, load
from .shapes import parse_decls

TEMPLATE = "solutions.tex.j2"
TEX_PACKAGES = "texlive-latex-base texlive-latex-recommended texlive-fonts-recommended"


@dataclass
class Claim:
    wrt: str
    answer: str
    verdict: Verdict | None
    typed: object = None             # the claim as a typed tree, for printing
    error: str = ""                  # the claim could not be read


@dataclass
class Solution:
    problem: Problem
    derivation: object = None
    folded: dict = field(default_factory=dict)
    assumed: list = field(default_factory=list)
    claims: list = field(default_factory=list)
    at: dict | None = None
    unsupported: str = ""


def run_problem(p: Problem) -> Solution:
    from .pipeline import backprop, derive, evaluate_at, parse_values
    try:
        if p.mode == "backprop":
            d = backprop(p.source, p.wrt, p.where)
        else:
            d = derive(p.source, p.wrt, p.where, order=p.order, jacobian=p.mode == "jacobian")
    except UnsupportedError as e:
        return Solution(p, unsupported=str(e))
    except IndexCalcError as e:
        raise IndexCalcError(f"problem {p.id!r}: {e}") from None
    s = Solution(p, d)
    try:
        s.assumed = assumptions(p.assume, parse_decls(p.where))
        s.folded = folded_forms(d, s.assumed)
        s.at = evaluate_at(d, parse_values(p.at)) if p.at else None
    except IndexCalcError as e:
        raise IndexCalcError(f"problem {p.id!r}: {e}") from None
    s.claims = [_claim(p, wrt, answer) for wrt, answer in p.claim.items()]
    return s


def _claim(p, wrt, answer) -> Claim:
    try:
        v = check(p.source, wrt, answer, p.where, assume=p.assume, mode=p.mode)
    except IndexCalcError as e:
        return Claim(wrt, answer, None, error=str(e))
    return Claim(wrt, answer, v, v.claimed)


def solve(path) -> tuple:
    problems = load(path)
    try:
        return problems, [run_problem(p) for p in problems.problems]
    except IndexCalcError as e:                  # the file named, as load() and grade name it
        raise IndexCalcError(f"{problems.path}: {e}") from None


# ---- text --------------------------------------------------------------------------------
_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "eta": "η",
          "theta": "θ", "lambda": "λ", "mu": "μ", "nu": "ν", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ",
          "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Sigma": "Σ", "Delta": "Δ",
          "zeta": "ζ", "iota": "ι", "kappa": "κ", "xi": "ξ", "upsilon": "υ", "vartheta": "ϑ", "varrho": "ϱ",
          "Gamma": "Γ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω"}
# symbols a statement writes as commands, as a terminal shows them
_SYMBOLS = {"nabla": "∇", "ell": "ℓ", "infty": "∞", "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥", "neq": "≠",
            "ne": "≠", "approx": "≈", "to": "→", "rightarrow": "→", "mapsto": "↦", "Rightarrow": "⇒",
            "implies": "⇒", "odot": "⊙", "otimes": "⊗", "oplus": "⊕", "langle": "⟨", "rangle": "⟩",
            "forall": "∀", "exists": "∃", "mid": "|", "sim": "~", "pm": "±", "prod": "Π", "int": "∫",
            "propto": "∝", "subset": "⊂", "subseteq": "⊆", "cup": "∪", "cap": "∩", "star": "⋆", "ast": "*",
            "dagger": "†", "coloneqq": ":=", "eqqcolon": "=:", "triangleq": "≜", "equiv": "≡", "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉", "vert": "|", "Vert": "‖"}
def _matrix_text(m) -> str:
    rows = [r for r in re.split(r"\\\\", m[2]) if r.strip()]
    return "[" + ", ".join("[" + ", ".join(c.strip() for c in r.split("&")) + "]" for r in rows) + "]"


_PLAIN = [(r"\\mathbf\{([^{}]*)\}", r"\1"), (r"\\mathbin\b", ""),
          (r"\\begin\{([pbBvV]?matrix)\}(.*?)\\end\{\1\}", _matrix_text),      # [[0, 1], [2, 3]]
          (r"\\(begin|end)\{[A-Za-z]+\*?\}(\{[^{}]*\})?", " "), (r"\\item\b\s*", " • "),
          (r"\\\\", " "), (r"\\\|", "‖"), (r"(?<!\\)&", ""), (r"\\([%&#_])", r"\1"), (r"\\q?quad\b", " "),
          (r"\\(mathcal|mathscr|mathsf|mathtt|mathit|boldsymbol|bm|textbf|textit|emph|texttt)\{([^{}]*)\}", r"\2"),
          (r"\\(hat|widehat)\{([^{}])\}", "\\2\u0302"), (r"\\(bar|overline)\{([^{}])\}", "\\2\u0304"),
          (r"\\(" + "|".join(sorted(_SYMBOLS, key=len, reverse=True)) + r")(?![A-Za-z])", lambda m: _SYMBOLS[m[1]]),
          (r"\\sqrt\{([^{}]*)\}", r"√(\1)"), (r"\\(mathrm|mathit|operatorname\*?)\{([^{}]*)\}", r"\2"),
          (r"\\(" + "|".join(sorted(_GREEK, key=len, reverse=True)) + r")(?![A-Za-z])", lambda m: _GREEK[m[1]]),
          (r"\\mathbb\{R\}", "ℝ"), (r"\\mathbb\{([^{}]*)\}", r"\1"), (r"\\partial\s*", "∂"),
          (r"\\times", "×"), (r"\^\\top", "^T"), (r"\\top", "T"), (r"\\circ", "∘"), (r"\\oslash", "⊘"),
          (r"\\sum", "Σ"), (r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"\1/\2"), (r"\\operatorname\{([^{}]*)\}", r"\1"),
          (r"\\(left|right)\b", ""), (r"\\[,;!]", " "), (r"\\sigma", "σ"), (r"\\delta", "δ"), (r"\\in\b", "∈"),
          (r"\\text\{([^{}]*)\}", r"\1"), (r"\\log", "log"), (r"\\tilde\{\*\}", "*~"), (r"\\cdot", "·"),
          (r"\\ldots|\\dots", "..."), (r"\\([A-Za-z]+)", r"\1"),
          (r"([_^])\{([A-Za-z0-9]+)\}", r"\1\2"), (r"([_^])\{([^{}]{2,})\}", r"\1(\2)"), (r"[{}$]", "")]


def _group(s: str, k: int):
    """The balanced {...} group at s[k:] (after spaces): (its inside, the index after it), or None."""
    while k < len(s) and s[k] == " ":
        k += 1
    if k >= len(s) or s[k] != "{":
        return None
    depth = 0
    for j in range(k, len(s)):
        depth += {"{": 1, "}": -1}.get(s[j], 0) if s[j - 1:j] != "\\" else 0
        if depth == 0:
            return s[k + 1:j], j + 1
    return None


def _fractions(s: str) -> str:
    """\\frac{a}{b} and \\sqrt{a} with braces inside them (\\frac{e^{x_i}}{\\sum_j e^{x_j}}) as
    a/b and √(a), bracketed where a part is more than one atom; the rules below read the rest."""
    out, k = [], 0
    for m in re.finditer(r"\\[dt]?frac(?![A-Za-z])|\\sqrt(?![A-Za-z])", s):
        if m.start() < k:
            continue
        a = _group(s, m.end())
        b = _group(s, a[1]) if a and "frac" in m.group() else None
        if a is None or ("frac" in m.group() and b is None):
            continue
        wrap = lambda t: t if re.fullmatch(r"[^\s+\-/*]+", plain(t)) else f"({t})"    # noqa: E731  ∂L, x_i: atoms
        top = re.fullmatch(r"\s*(\\partial|∂)\s*(\^\s*\{?\s*\d\s*\}?)?\s*(.*?)\s*", a[0], re.S)
        if b and top and top[3]:                                      # ∂(x^T B x)/∂x, ∂^2f/(∂x_i ∂x_j)
            rest = _fractions(top[3])
            top_text = "∂" + (top[2] or "").replace(" ", "") + (rest if re.fullmatch(r"[^\s+\-/*]+", plain(rest))
                                                                else f"({rest})")
        else:
            top_text = wrap(_fractions(a[0]))
        text = f"{top_text}/{wrap(_fractions(b[0]))}" if b else f"√({_fractions(a[0])})"
        out += [s[k:m.start()], text]
        k = b[1] if b else a[1]
    return "".join(out) + s[k:]


def plain(latex: str) -> str:
    """A LaTeX statement, readable in a terminal."""
    s = _fractions(latex)
    for pattern, repl in _PLAIN:
        s = re.sub(pattern, repl, s)
    return re.sub(r"\s+", " ", s).strip()


def render_text(ps: ProblemSet, solutions) -> str:
    out = [ps.title, "=" * len(ps.title), ""]
    for k, s in enumerate(solutions, 1):
        p = s.problem
        head = f"{k}. {plain(p.title)}  [{p.id}]"
        out += [head, "-" * len(head), plain(p.statement), ""]
        if s.unsupported:
            out += [f"not supported: {s.unsupported}", ""]
            continue
        out.append(output.derive_text(s.derivation, s.assumed).rstrip())
        if s.at:
            out.append(f"at {p.at}:")
            if s.at["value"] is not None:
                out.append(f"  value:  {output.array_text(s.at['value'], indent=10)}")
            for wrt, v in s.at["derivatives"].items():
                label = f"  d/d{wrt}:  "
                out.append(label + output.array_text(v, indent=len(label)))
        for c in s.claims:
            if c.error:
                out.append(f"claimed d/d{c.wrt} = {c.answer}: cannot be read: {c.error}")
            else:
                out.append(f"claimed d/d{c.wrt} = {c.answer}: {'RIGHT' if c.verdict.correct else 'WRONG'}: "
                           + c.verdict.reason)
        if p.note:
            out.append(f"note: {plain(p.note)}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# ---- LaTeX ---------------------------------------------------------------------------------
def _matrix_latex(v) -> str:
    a = np.asarray(v, dtype=float)
    def fmt(x):                                   # inf and nan as mathematics, not italic letters
        return f"{x:.6g}" if np.isfinite(x) else r"\mathrm{NaN}" if np.isnan(x) else ("-" if x < 0 else "") + r"\infty"
    if a.ndim == 0:
        return fmt(float(a))
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        return r"\text{(an array of shape " + "\\times".join(map(str, a.shape)) + ")}"
    rows = [" & ".join(fmt(x) for x in row) for row in a]
    return r"\begin{pmatrix} " + r" \\ ".join(rows) + r" \end{pmatrix}"


def _shapes_latex(d) -> str:
    parts = []
    for name, v in d.variables.items():
        if name == d.upstream:             # dY is named in the derivation, not an object of the problem
            continue
        parts.append(f"{symbol(name, v.kind == 'scalar')} \\in {space_latex(v.shape)}")
    return ",\\ ".join(parts)


def _closed_names(d, r) -> list:
    """[(LaTeX name, subtree)] of a long closed form's repeated subtrees (printing/names.py),
    with names no variable, size or index row of the derivation uses."""
    taken = [*d.variables.table, *map(str, d.variables.sizes), d.name, d.output or "", d.upstream or "",
             *(st.text.split("_")[0].split(" ")[0] for st in r.steps if st.rule == "name")]
    return [(symbol(name, node.is_scalar), node) for name, node in closed_names(r.closed, taken)]


def _result_view(s: Solution, r) -> dict:
    names = _closed_names(s.derivation, r)
    for st in r.steps:              # the rows before the names are defined print without them
        if st.rule not in output.MATRIX_ROWS:
            st.latex
    # the shape check spells every operand as its space, ℝ^{h}: never as a name (it showed ∘ g)
    shapes = shape_check_latex(r.closed) if r.closed is not None else None
    with named_subtrees({node: name for name, node in names}):
        view = _result_view_named(s, r, names)
    view["shape_check"] = shapes
    return view


def _result_view_named(s: Solution, r, names) -> dict:
    d = s.derivation
    var = symbol(r.wrt, d.variables[r.wrt].kind == "scalar")
    lhs, rhs = output.answer_latex(d, r)
    defined = []
    for k, (name, node) in enumerate(names):        # each written with the names before it
        with named_subtrees({n: m for m, n in names[:k]}):
            defined.append((name, to_latex(node)))
    view = {
        "heading": (fr"\partial^2 {d.name} / \partial {var}^2" if r.order == 2
                    else fr"\partial {d.name} / \partial {var}"),
        "intro": _intro(s, r),
        "derivation": _fitted_rows(output.derivation_rows(d, r, names=defined)),
        "answer": f"{lhs} = {rhs}", "answer_box": output.boxed(lhs, rhs),
        "closed": r.closed is not None,
        "folded": None, "shape_check": None,
        "sizes": ", ".join(f"{k} = {v}" for k, v in r.checked_sizes.items()),
    }
    if r.closed is not None:
        f = s.folded.get(r.wrt)
        if f is not None:
            given = ", ".join(f"{to_latex(a)} = {to_latex(b)}" for a, b in s.assumed)
            if N.contains(f, d.output):
                view["folded"] = (f"{lhs} = {to_latex(f)}",
                                  f"where ${symbol(d.output, d.rhs.is_scalar)} = {to_latex(d.rhs)}$"
                                  + (f" and ${given}$" if given else ""))
            else:
                view["folded"] = (f"{lhs} = {to_latex(f)}", f"when ${given}$" if given else "equivalently")
    return view


def _fitted_rows(rows) -> str:
    """The derivation's align*, each side passed through the template's \\fitleft and \\fitright,
    so that only a row that would run off the page is shrunk: a left side to at most 0.4 of the
    line (a rule's ∂[softmax(...)]_p/∂[...]_q), a right side to the line less the widest left side
    (the column every row starts after; TeX measures it, align* sets its rows twice)."""
    rows = [(fr"\fitleft{{{lhs}}}" if lhs else lhs, rhs, note) for lhs, rhs, note in rows]
    return "\\global\\fitleftmax=0pt\n" + output.align_rows(rows, fit=r"\fitright")


def _intro(s: Solution, r) -> str:
    d, mode = s.derivation, s.problem.mode
    var = symbol(r.wrt, d.variables[r.wrt].kind == "scalar")
    if mode == "backprop" and d.output and d.upstream:           # through dY (any input language)
        return (fr"Apply the chain rule through ${symbol(d.output, False)}$ and index one entry of ${var}$; "
                fr"then index the output, differentiate, and sift the Kronecker deltas.")
    if r.order == 2:
        return "Differentiate the gradient once more, entry by entry."
    return "Index the derivative, expand the sums, differentiate, and sift the Kronecker deltas."


def _claim_view(c: Claim, s: Solution) -> dict:
    d = s.derivation
    var = symbol(c.wrt, d.variables[c.wrt].kind == "scalar")
    lhs = fr"\frac{{\partial {d.name}}}{{\partial {var}}}"
    if c.error:
        return {"claim": lhs + r" = \text{?}", "verdict": "unreadable", "reason": _tex_escape(c.error),
                "answer": _tex_escape(c.answer), "counterexample": None, "expected": None}
    v = c.verdict
    r = next(r for r in d.results if r.wrt == c.wrt)
    expected = output.answer_latex(d, r)[1]
    ce = None
    if not v.correct and v.counterexample and v.counterexample.get("entry"):
        x = v.counterexample
        entry = ",".join(str(i + 1) for i in x["entry"])
        ce = {"sizes": ", ".join(f"{k} = {n}" for k, n in x["sizes"].items()), "entry": entry,
              "claimed": f"{x['claimed']:.6g}", "actual": f"{x['actual']:.6g}"}
    if v.correct:
        given = ", ".join(f"{to_latex(a)} = {to_latex(b)}" for a, b in s.assumed)
        reason = ("It agrees with the derivative above" + (f" where ${given}$" if given else "")
                  + ", checked numerically at random points.")
    elif v.counterexample and v.counterexample.get("claimed_shape") is not None:
        given = (f"is in ${space_latex(c.typed.shape)}$" if c.typed is not None else       # index notation:
                 "has shape " + r"$\times$".join(map(str, v.counterexample["claimed_shape"])) + " there")  # no tree
        reason = (fr"The claim {given}, but ${lhs}$ has the shape of "
                  fr"${var}$, ${space_latex(d.variables[c.wrt].shape)}$.")
    else:
        reason = "It differs from the derivative, checked numerically."
    # a claim in index notation is compared from its own parse (check._compare_index), which
    # leaves no matrix tree to typeset: it is shown as written (it was a KeyError, exit 3)
    shown = to_latex(c.typed) if c.typed is not None else r"\text{\texttt{" + _tex_escape(c.answer) + "}}"
    return {"claim": f"{lhs} = {shown}", "verdict": "right" if v.correct else "wrong",
            "reason": reason, "answer": c.answer, "counterexample": ce, "expected": f"{lhs} = {expected}"}


def tex_label(text: str) -> str:
    """A problem's id as a `\\label{}`: ASCII letters, digits, - and : as they are, any other
    character as .<hex>. (one to one, so distinct ids keep distinct labels)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-:") else f".{ord(c):x}." for c in text)


def _tex_escape(text: str) -> str:
    text = text.replace("\\", r"\textbackslash{}")
    for ch in "&%$#_{}":
        text = text.replace(ch, "\\" + ch)
    return text.replace("×", r"$\times$").replace("^", r"\^{}").replace("~", r"\~{}")


# A file's LaTeX (a title, a statement, a note) as a TA types it: a bare & outside an alignment,
# a bare % ("50% of the points": TeX would drop the rest of the line without a word), a # that is
# no macro parameter, and _ ^ < > | in running text are meant as those characters, and pdflatex
# would stop at _ ^ & # (and print < > | as ¡ ¿ —). They are typeset as characters; math, alignments, a \url's or a
# \label's argument and everything already escaped stay as written.
_ALIGNMENTS = {"pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "matrix", "smallmatrix", "array",
               "cases", "aligned", "alignedat", "split", "align", "align*", "alignat", "alignat*",
               "flalign", "flalign*", "tabular", "eqnarray", "eqnarray*"}
_MATH_ENVS = {"equation", "equation*", "align", "align*", "alignat", "alignat*", "gather", "gather*",
              "multline", "multline*", "flalign", "flalign*", "eqnarray", "eqnarray*", "displaymath", "math"}
_SPEC_ARG = {"tabular", "array", "alignat", "alignat*", "alignedat", "minipage"}     # \begin{array}{c|c}
_VERBATIM_ARGS = {"url", "href", "label", "ref", "eqref", "pageref", "autoref", "nameref", "cite"}
_TEX_TOKEN = re.compile(r"\\(?:[A-Za-z]+\*?|.)|\$\$|[$&%#_^{}<>|]|[^\\$&%#_^{}<>|]+", re.S)
_TEXT_CHARS = {"_": r"\_", "^": r"\^{}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
_DEFINES = re.compile(r"\\(?:(?:re)?newcommand|providecommand|def|(?:re)?newenvironment)(?![A-Za-z])")


def tex_text(latex: str) -> str:
    """A file's LaTeX with the characters a TA means literally escaped (see above); \\verb|...|
    stays as written."""
    pieces = re.split(r"(\\verb\*?([^A-Za-z\s*]).*?\2)", latex)
    if len(pieces) > 1:          # split keeps each \verb and its delimiter: every third piece is text
        return "".join(tex_text(p) if k % 3 == 0 else p for k, p in enumerate(pieces) if k % 3 != 2)
    out, envs, math, verbatim_depth, depth = [], [], None, None, 0
    defines = _DEFINES.search(latex) is not None         # #1 is a macro's parameter only there
    tokens = _TEX_TOKEN.findall(latex)
    k = 0
    while k < len(tokens):
        t = tokens[k]
        k += 1
        if verbatim_depth is not None:               # inside \url{...}: as written
            depth += t == "{"
            depth -= t == "}"
            out.append(t)
            if depth == verbatim_depth:
                verbatim_depth = None
            continue
        if t == "{" or t == "}":
            depth += 1 if t == "{" else -1
        elif t.lstrip("\\").rstrip("*") in _VERBATIM_ARGS and t.startswith("\\"):
            if k < len(tokens) and tokens[k] == "{":
                verbatim_depth = depth
                depth += 1
                out += [t, "{"]
                k += 1
                continue
        elif t in ("\\begin", "\\end"):
            m = re.match(r"\{([A-Za-z]+\*?)\}", "".join(tokens[k:k + 3]))
            if m:
                env = m.group(1)
                out += [t, *tokens[k:k + 3]]
                k += 3
                if t == "\\end":
                    if env in envs:
                        del envs[len(envs) - 1 - envs[::-1].index(env)]
                    continue
                envs.append(env)
                if env in _SPEC_ARG and k < len(tokens) and tokens[k] == "{":    # {c|c}: as written
                    verbatim_depth = depth
                    depth += 1
                    out.append("{")
                    k += 1
                continue
        elif t in ("$", "$$"):
            math = None if math == t else (t if math is None else math)
        elif t in ("\\(", "\\["):
            math = math or t
        elif t in ("\\)", "\\]"):
            math = None if math in ("\\(", "\\[") else math
        in_math = math is not None or any(e in _MATH_ENVS for e in envs)
        if t == "%" or (t == "&" and not any(e in _ALIGNMENTS for e in envs)):
            t = "\\" + t
        elif t == "#" and not (defines and k < len(tokens) and tokens[k][:1].isdigit()):
            t = "\\#"
        elif t in _TEXT_CHARS and not in_math:
            t = _TEXT_CHARS[t]
        out.append(t)
    return "".join(out)


def problem_view(s: Solution) -> dict:
    with s.derivation.latex_context() if s.derivation is not None else contextlib.nullcontext():
        return _problem_view(s)


def _problem_view(s: Solution) -> dict:
    p = s.problem
    view = {"id": p.id, "label": tex_label(p.id), "title": tex_text(p.title), "statement": tex_text(p.statement),
            "note": tex_text(p.note),
            "unsupported": _tex_escape(s.unsupported), "results": [], "claims": [], "at": None,
            "shapes": "", "source": _tex_escape(p.source)}
    if s.derivation is None:
        return view
    d = s.derivation
    view["shapes"] = _shapes_latex(d)
    view["results"] = [_result_view(s, r) for r in d.results]
    view["claims"] = [_claim_view(c, s) for c in s.claims]
    if s.at:
        rows = []
        if not (p.mode == "backprop" and d.upstream):      # Σ dY ∘ Y is not a value to show
            rows.append((symbol(d.name, True), _matrix_latex(s.at["value"])))
        for wrt, v in s.at["derivatives"].items():
            var = symbol(wrt, d.variables[wrt].kind == "scalar")
            rows.append((fr"\frac{{\partial {d.name}}}{{\partial {var}}}", _matrix_latex(v)))
        view["at"] = {"values": _tex_escape(p.at), "rows": rows}
    return view


def tex_unbalanced(latex: str) -> str | None:
    """What does not close in a file's LaTeX (an unclosed { or $, a \\begin without its \\end), or
    None. pdflatex would stop at the end of the document with no word of which problem."""
    depth, math, envs = 0, None, []
    for t in _TEX_TOKEN.findall(latex):
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
            if depth < 0:
                return "a } that closes nothing"
        elif t in ("$", "$$"):
            math = None if math == t else (t if math is None else math)
    for m in re.finditer(r"\\(begin|end)\s*\{([^{}]*)\}", latex):
        if m[1] == "begin":
            envs.append(m[2])
        elif not envs or envs.pop() != m[2]:
            return f"\\end{{{m[2]}}} without its \\begin"
    if depth > 0:
        return "an unclosed {"
    if math:
        return f"an unclosed {math}"
    if envs:
        return f"\\begin{{{envs[-1]}}} without its \\end"
    return None


def _check_tex(ps: ProblemSet) -> None:
    for p in ps.problems:
        for key in ("title", "statement", "note"):
            what = tex_unbalanced(getattr(p, key) or "")
            if what:
                raise IndexCalcError(f"{ps.path}: problem {p.id!r}: the {key}'s LaTeX has {what}; "
                                     "LaTeX could not typeset it (--format text does not need it)")


def render_latex(ps: ProblemSet, solutions) -> str:
    _check_tex(ps)
    import jinja2
    from .codegen import template_dir
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir(TEMPLATE))),
        block_start_string="<%", block_end_string="%>", variable_start_string="<<",
        variable_end_string=">>", comment_start_string="<#", comment_end_string="#>",
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.get_template(TEMPLATE).render(
        title=_tex_escape(ps.title), author=_tex_escape(ps.author), course=_tex_escape(ps.course),
        source=_tex_escape(Path(ps.path).name), problems=[problem_view(s) for s in solutions])


# ---- PDF -------------------------------------------------------------------------------------
def latex_compiler() -> str | None:
    return shutil.which("pdflatex")


def require_latex() -> str:
    """pdflatex's path; exit status 2 with how to install it when there is none."""
    exe = latex_compiler()
    if exe is None:
        raise IndexCalcError("--format pdf needs pdflatex, and none is installed. Install TeX Live "
                             f"(Debian/Ubuntu: apt-get install {TEX_PACKAGES}) or write LaTeX "
                             "with --format latex")
    return exe


# TeX may read and write only inside its working directory (a fresh temporary one) and the
# TeX tree, and may run nothing: a statement is LaTeX from anyone, and TeX Live's default
# openin_any=a would let \\input{/etc/passwd} or \\openin read any file into the PDF.
TEX_ENV = {"openin_any": "p", "openout_any": "p", "shell_escape": "f"}


def tex_environment(tmp) -> dict:
    import os
    env = {k: v for k, v in os.environ.items() if k not in ("TEXMFOUTPUT", "shell_escape_commands")}
    return {**env, **TEX_ENV, "TEXMFOUTPUT": str(tmp)}


def compile_pdf(tex: str) -> bytes:
    """Run pdflatex on the document and return the PDF; exit status 2 with the LaTeX errors
    when it fails."""
    exe = require_latex()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "solutions.tex"
        src.write_text(tex, encoding="utf-8")
        for _ in range(3):                 # again while LaTeX says references changed (hyperref)
            try:
                run = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                                      src.name], cwd=tmp, capture_output=True, text=True,
                                     env=tex_environment(tmp), stdin=subprocess.DEVNULL, encoding="utf-8",
                                     errors="replace", timeout=120)
            except subprocess.TimeoutExpired:
                raise IndexCalcError("pdflatex took more than two minutes; stopped") from None
            if run.returncode != 0 or "Rerun to get" not in run.stdout:
                break
        pdf = Path(tmp) / "solutions.pdf"
        if run.returncode != 0 or not pdf.exists():
            raise IndexCalcError("pdflatex could not compile the solutions (a statement's LaTeX?):\n"
                                 + latex_errors(run.stdout))
        return pdf.read_bytes()


def latex_errors(log: str) -> str:
    """The error lines of a pdflatex log, with the line of the source they point at."""
    lines = log.splitlines()
    out = []
    for k, line in enumerate(lines):
        if line.startswith("!"):
            out += lines[k:k + 3]
    return "\n".join(out[:12]) or log[-1500:]
