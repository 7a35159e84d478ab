"""What the readers and printers ask of index notation before reading it: whether a text is
index notation at all, and how an index place reads (n+j-1). A module of its own, with
nothing but SymPy and the LaTeX reader, so that a derivation in the matrix language never loads
the index-notation reader (its grammar and tree: a tenth of a cold start's own work)."""
from __future__ import annotations

import re

import sympy as sp

from .errors import ParseError
from .latex_input import from_latex, unsubscript


def index_text(e, rank=None) -> str:
    """An index expression in reading order, as the seeds write it: n+j-1, n-i+1, k-j+1.
    Terms are ordered by `rank` (a symbol -> sort key; by default its name), numbers last, and
    a leading minus is avoided: the first term with a plus sign is written first (n-i+1, not
    -i+n+1)."""
    e = sp.expand(e)
    if e.is_Symbol or e.is_Integer:
        return str(e)
    rank = rank or (lambda s: (0, s.name))

    def key(t):
        syms = sorted(t.free_symbols, key=lambda s: s.name)
        return (1, ()) if not syms else (0, rank(syms[0]))
    parts = sorted(sp.Add.make_args(e), key=key)
    first = next((t for t in parts if not t.could_extract_minus_sign()), None)
    if first is not None and parts[0].could_extract_minus_sign():
        parts.remove(first)
        parts.insert(0, first)
    out = ""
    for t in parts:
        neg = t.could_extract_minus_sign()
        body = str(-t if neg else t).replace("*", "").replace(" ", "")
        out += ("-" if neg else ("+" if out else "")) + body
    return out


# ---- reading --------------------------------------------------------------------------------
_SIGMA = re.compile(r"(Σ|∑)\s*_|\bsum_|\\sum_")      # Σ_p; a bare Σ is a name (a covariance, Σ^-1)
_BRACKET = re.compile(r"([A-Za-zα-ωΑ-Ω][A-Za-z0-9α-ωΑ-Ω]*)\s*\[")
_DELTA = re.compile(r"(δ|\bdelta|\\delta)_")
ENTRY_OF_GROUP = re.compile(r"[\])]\s*_\s*[{A-Za-z]")     # [W x]_i, (W x)_i: an entry of an expression
_SUB_LHS = re.compile(r"^\s*[A-Za-zα-ωΑ-Ω][A-Za-z0-9α-ωΑ-Ω]*_(\{[^}]*\}|[A-Za-z]+)\s*=(?!=)")


_DEFINITION = re.compile(r"^\s*(\\(?:mathcal|mathrm|operatorname|text|mathit)\s*\{\s*[A-Za-z][A-Za-z0-9]*\s*\}"
                         r"|\\?[A-Za-zα-ωΑ-Ω][A-Za-z0-9]*)\s*(?:\\left\s*)?\("
                         r"([^()=]*)(?:\\right\s*)?\)\s*(?:_\s*(\{[^{}]*\}|[A-Za-z0-9]+))?\s*(?::=|≔|=)(?!=)")


def definition(text: str):
    """f(\\mathbf{w}) = ½‖X w - y‖², L(W, b) = ..., tr(S) := Σ_i S_ii: a function defined by its
    expression, as papers write it -> (its name, the expression); S(\\mathbf{x})_i = e^{x_i} / ...
    (seed 003's softmax) -> (S_i, the expression), an entry equation. None for any other text.
    The arguments name what the function depends on; what to differentiate by is --wrt's."""
    if not isinstance(text, str):
        return None
    m = _DEFINITION.match(text)
    if not m or not m.group(2).strip():
        return None
    name = re.sub(r"\\[a-z]+\s*\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}", r"\1", m.group(1)).lstrip("\\")
    return name + (f"_{m.group(3)}" if m.group(3) else ""), text[m.end():]


_EINSUM = re.compile(r"^\s*(?:([A-Za-zα-ωΑ-Ω][A-Za-z0-9_α-ωΑ-Ω]*)\s*=(?!=)\s*)?(?:np\.|numpy\.|torch\.|jnp\.)?einsum\s*"
                     r"\(\s*(['\"])([^'\"]*)\2\s*,([^()]*)\)\s*$")


def einsum_text(text: str) -> str:
    """NumPy's einsum as an input (Y = einsum('bij,bjk->bik', A, B), as code and papers write a
    contraction) in index notation: Y[b,i,k] = Σ_j A[b,i,j] B[b,j,k]. The output's indices are
    those after ->, or (NumPy's implicit mode) the letters written once, in order; an output with
    indices and no left side is named Y. Anything else is returned unchanged."""
    m = _EINSUM.match(text) if isinstance(text, str) else None
    if not m:
        return text
    lhs, spec = m.group(1), m.group(3).replace(" ", "")
    names = [a.strip() for a in m.group(4).split(",")]
    ins, arrow, out = spec.partition("->")
    ins = ins.split(",")
    if "." in spec or not all(re.fullmatch(r"[A-Za-z]*", t) for t in ins + [out]) or \
            not all(re.fullmatch(r"[A-Za-zα-ωΑ-Ω][A-Za-z0-9_α-ωΑ-Ω]*", a) for a in names):
        raise ParseError("einsum is read with letters for indices (no ellipsis) and variable names as "
                         "operands: einsum('ij,jk->ik', A, B)", text, 1)
    if len(ins) != len(names):
        raise ParseError(f"einsum's subscripts name {len(ins)} operands, but {len(names)} are given", text, 1)
    letters = "".join(ins)
    if not arrow:
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    summed = list(dict.fromkeys(c for c in letters if c not in out))
    body = " ".join(f"{a}[{','.join(t)}]" if t else a for a, t in zip(names, ins))
    rhs = (f"Σ_{{{','.join(summed)}}} " if summed else "") + body
    if not out:
        return f"{lhs} = {rhs}" if lhs else rhs
    name = lhs or next(n for n in ("Y", "Z", "T_out") if n not in names)
    return f"{name}[{','.join(out)}] = {rhs}"


def defined_text(text: str, keep_name: bool = False) -> str:
    """The text a definition stands for: its expression (f(w) = … is …), or, for an entry
    (S(x)_i = …) or with keep_name (a loss in backprop), the equation name = expression; NumPy's
    einsum in index notation (einsum_text)."""
    text = einsum_text(text)
    d = definition(text)
    if d is None:
        return text
    name, body = d
    return f"{name} = {body}" if keep_name or "_" in name else body


def _is_function(name: str) -> bool:
    """tr[X], log[1 + e^x]: a function of the matrix language applied to a square bracket, not an
    indexed entry."""
    from .shapes import CALLS, ALIASES
    return name in CALLS or name.lower() in ALIASES or name.lower() in CALLS


def is_index_notation(text: str) -> bool:
    """Whether the input is written in index notation: an indexed entry (X[i,j]), a Σ, a δ_ij,
    or an indexed left side in the subscript style (Y_ij = ... with its letters as
    subscripts on the right side too)."""
    if not isinstance(text, str):
        return False
    try:
        if einsum_text(text) != text:
            return True
        text = unsubscript(from_latex(text))
    except ParseError:
        return False                           # the reader says what is wrong with it
    if _SIGMA.search(text) or any(not _is_function(m.group(1)) for m in _BRACKET.finditer(text)) or \
            _DELTA.search(text) or ENTRY_OF_GROUP.search(text):
        return True
    m = _SUB_LHS.match(text)
    if m:
        sub = m.group(1).strip("{}").replace(",", "")
        rhs = text[m.end():]
        used = "".join(re.findall(r"_\{?([A-Za-z,+\-0-9 ]+)", rhs))
        return bool(sub) and all(ch in used for ch in sub if ch.isalpha())
    return False
