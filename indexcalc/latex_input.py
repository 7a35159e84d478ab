"""LaTeX as the seeds and papers write it, in the language's own spelling (SPEC §1.1: read the
text the way a textbook reader would, and show how it was read).

`\\mathbf{x}^\\top \\mathbf{B} \\mathbf{x}` is `x^⊤ B x`, `\\frac{1}{2} \\|\\mathbf{A}\\mathbf{x} -
\\mathbf{b}\\|_2^2` is `(1/2) ‖A x - b‖_2^2`, `\\sigma(\\mathbf{w}^{\\top}\\mathbf{x})` is
`sigma(w^⊤ x)`, and `Y_{ij} = \\sum_{p} X_{ip} W_{jp} + b_{j}` is index notation with its Σ.
Both readers (the matrix language and index notation) see the translated text; a LaTeX command
the language has no meaning for is an error that names it, with the caret under it, never a
guess. Text without a backslash is returned unchanged, so translating twice changes nothing.

The tables below are the whole of it: a command is kept for its content (fonts), dropped (sizing,
spacing), spelled as a symbol or a name, or structural (\\frac, \\sqrt), and `^{\\top}` is the
transpose."""
from __future__ import annotations

import re

from .errors import ParseError

# \mathbf{W} is W: fonts and decorations that do not change what a name means
KEEP_CONTENT = {"mathbf", "boldsymbol", "bm", "pmb", "mathrm", "mathit", "mathsf", "mathnormal",
                "mathbb", "textbf", "textrm", "textit", "textsf", "text", "operatorname", "vec",
                "mathcal", "mathscr", "mathfrak"}
# bold: a matrix or a vector; capitals run together in bold are a product (\mathbf{XW})
BOLD = {"mathbf", "boldsymbol", "bm", "pmb"}
# sizing and style: the delimiter or operand after them is what counts
DROP = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl",
        "biggr", "Biggl", "Biggr", "middle", "displaystyle", "textstyle", "limits", "nolimits"}
SPACE = {",", ";", ":", " ", "quad", "qquad", "enspace", "thinspace"}
NO_SPACE = {"!"}          # \! (a negative thin space) joins what is around it
SYMBOLS = {
    "top": "⊤", "intercal": "⊤", "transpose": "⊤",
    "odot": "∘", "circ": "∘", "oslash": "⊘", "cdot": "·", "times": "*", "ast": "*", "div": "/",
    "|": "‖", "Vert": "‖", "lVert": "‖", "rVert": "‖", "lvert": "|", "rvert": "|", "vert": "|",
    "neq": "≠", "ne": "≠", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "lt": "<", "gt": ">",
    "lbrace": "(", "rbrace": ")",
    "{": "(", "}": ")", "coloneqq": "=", "triangleq": "=", "sum": "Σ", "delta": "δ", "langle": "⟨", "rangle": "⟩",
    "otimes": "⊗",
}
# \log is log, \ln the same function; \Tr and \tr the trace
FUNCTIONS = {"log": "log", "ln": "log", "exp": "exp", "det": "det", "tr": "tr", "Tr": "tr",
             "trace": "tr", "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh", "cosh": "cosh", "sinh": "sinh",
             "max": "max", "min": "min", "diag": "diag", "softmax": "softmax"}
# Greek letters by their names, as the language spells them (`alpha`, `sigma(·)` the sigmoid)
GREEK = {g: g for g in (
    "alpha beta gamma epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau upsilon "
    "phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega").split()}
GREEK |= {"varepsilon": "epsilon", "vartheta": "theta", "varphi": "phi", "varrho": "rho",
          "varsigma": "sigma", "varpi": "pi"}
def spelled_as(name: str, names) -> str:
    """`name` as `names` spell it, where it is a Greek name they spell another way (mu in
    --where, μ in the expression); otherwise `name`."""
    if name in names:
        return name
    from .shapes import greek_key       # the matrix language's reading of a Greek letter (shapes imports this module)
    key = greek_key(name)
    return next((n for n in names if greek_key(n) == key), name)


# \hat{y} is the name yhat: a decoration is part of a name, spelled as a suffix
DECORATED = {"hat": "hat", "widehat": "hat", "tilde": "tilde", "widetilde": "tilde", "bar": "bar", "overline": "bar"}

# what a command the language cannot read means, said instead of a guess
WHY_NOT = {
    "partial": "write the expression itself and name the variable with --wrt",
    "nabla": "write the expression itself and name the variable with --wrt",
    "oplus": "the direct sum is not supported",
    "prod": "products over an index are not supported; write the factors",
    "int": "integrals are not supported",
    "in": "write the sizes with --where (\"x: n, A: m×n\", or as the paper does: \"A \\in \\mathbb{R}^{m \\times n}\")",
    "mathbb": "write the sizes with --where (\"A: m×n\" or \"A ∈ ℝ^{m×n}\")",
    "dots": "write the whole expression (no ellipsis)",
    "cdots": "write the whole expression (no ellipsis)",
    "ldots": "write the whole expression (no ellipsis)",
    "begin": "one expression, not an environment (matrix, aligned)",
    "end": "one expression, not an environment (matrix, aligned)",
    "\\": "one expression on one line",
}


# one atom: a letter or a font-wrapped name, with a subscript and/or a superscript, standing alone
_ATOM = re.compile(r"((?:\\(?:mathbf|boldsymbol|bm|mathrm|mathit|hat|widehat|tilde|widetilde|bar|overline)"
                   r"\{(?:\\(?:mathbf|boldsymbol|bm)\{[A-Za-z]+\}|[A-Za-z]+|\\[A-Za-z]+)\}"
                   r"|\\(?:" + "|".join(sorted(GREEK, key=len, reverse=True)) + r")(?![A-Za-z])|[A-Za-z])"
                   r"(?:_(?:\{[^{}]*\}|[A-Za-z0-9]))?(?:\^(?:\{[^{}]*\}|[A-Za-z0-9]))?)"
                   r"(?=\s*(?:$|[-+)=,]|\\right))")


_SUM_OVER = re.compile(r"(\\sum\s*(?:\\limits\s*)?_\s*\{[^{}]*?)\\in(?![A-Za-z])")


def has_latex(text: str) -> bool:
    return "\\" in text or text.strip().startswith("$")


def from_latex(text: str) -> str:
    """`text` with its LaTeX in the language's spelling; unchanged if it has none."""
    if not isinstance(text, str):
        return text
    if not has_latex(text):
        return _plain_labels(text)
    text = _SUM_OVER.sub(lambda m: m.group(1) + "∈", _strip_math_delimiters(text))   # \sum_{i \in [n]}
    return _Reader(text).read()


_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉ₐₑₒₓₕₖₗₘₙₚₛₜᵢᵣᵤᵥⱼ", "0123456789aeoxhklmnpstiruvj"))
SUBSCRIPT_RUN = re.compile(f"[{''.join(_SUBSCRIPTS)}]+")


def unsubscript(text: str) -> str:
    """Unicode subscripts as typed or pasted (Σᵢⱼ xᵢ Aᵢⱼ xⱼ, W₁ x) in the seeds' spelling:
    Σ_ij x_i A_ij x_j, W_1 x. Both readers and the names in --where and --wrt go through it, so
    that W₁ declared is the W₁ of the expression (NFKC alone would make it W1)."""
    return SUBSCRIPT_RUN.sub(spell_subscript, text)


def spell_subscript(m: re.Match) -> str:
    """One run of Unicode subscripts (a match of SUBSCRIPT_RUN) as _1, _ij; a letter right after
    it is a new name, as it shows (W₁x is W₁ times x)."""
    after = m.string[m.end():m.end() + 1]
    return "_" + "".join(_SUBSCRIPTS[c] for c in m.group(0)) + (" " if after.isalpha() else "")


def variable_name(name: str) -> str:
    """A name in --where or --wrt as the expression spells it: W^{(1)} and \\mathbf{W}^{(1)} are W1,
    W₁ is W_1."""
    name = unsubscript(name)
    if "^" not in name and "\\" not in name:
        return name
    try:
        return from_latex(name).strip()
    except ParseError:
        return name


_LABEL = re.compile(r"\^\s*\{\s*(?:\(([^(){}]*)\)|\[([^\[\]{}]*)\])\s*\}")     # W^{(1)}, W^{[1]}


def _plain_labels(text: str) -> str:
    """W^{(2)} h, W_ij^{(1)} in text without other LaTeX: the same labels as the reader's."""
    while True:
        m = _LABEL.search(text)
        if not m:
            return text
        before = _attach_label(text[:m.start()], (m.group(1) or m.group(2)).strip(), text, m.start())
        if before is None:
            return text
        text = before + text[m.end():]


_SUMMED = re.compile(r"(?:\\sum|Σ|∑|\bsum)\s*(?:\\limits\s*)?_\s*(?:\{([^{}]*)\}|([A-Za-z]))")


def _summed(text: str) -> set:
    """The indices a Σ in the text binds (\\sum_{i=1}^{m}, Σ_{i,j}, sum_k)."""
    out = set()
    for m in _SUMMED.finditer(text):
        for part in (m.group(1) or m.group(2)).split(","):
            out.add(part.split("=")[0].strip())
    return out


def _attach_label(before: str, tag: str, text: str, at: int, summed=None) -> str | None:
    """W^{(1)}, h^{(l)}_j, W_{ij}^{(2)}, W^{[1]} (a course's layer): a superscript in brackets on a
    name is a label (a layer, as papers write it), never a power; a label that a Σ sums over
    (\\sum_i y^{(i)}, sample i as ML papers write it) is that index, y_{i}: it joins the name (W1, hl), so that W^{(2)} W^{(1)} are
    two variables. `before` is the text up to the superscript; None if no name ends it. A label
    that is not one number or one name (W^{(l-1)}) is refused."""
    m = _LABELLED.search(before)
    if not m or m.group(1) == "e" and not m.group(2):         # e^{(x)}: the exponential
        return None
    if not re.search(r"[A-Za-z]", tag) and not re.fullmatch(r"\d+", tag):
        return None                                           # X^{(-1)}, x^{(1/2)}: a power
    if tag in (_summed(text) if summed is None else summed):  # Σ_i y^{(i)}: sample i, the entry y_i
        sub = m.group(2).lstrip("_").strip("{}")
        return before[:m.start()] + m.group(1) + "_{" + ",".join(filter(None, (tag, sub))) + "}" + m.group(3)
    if not re.fullmatch(r"[A-Za-z0-9]+", tag):
        raise ParseError(f"the superscript ({tag}) in brackets is read as a label (W^{{(1)}} is the variable "
                         "W1), and a label is one number or one name: name the variable itself (W_prev)",
                         text, at + 1)
    return before[:m.start()] + m.group(1) + tag + m.group(2) + m.group(3)


def _strip_math_delimiters(text: str) -> str:
    """$…$, $$…$$, \\(…\\) and \\[…\\] around the whole input are the math mode, not content."""
    s = text.strip()
    for a, b in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        inner = s[len(a):-len(b)]
        if len(s) >= len(a) + len(b) and s.startswith(a) and s.endswith(b) and "$" not in inner:
            return inner
    return text


# \log\det(X), \log\sigma(z), \log \mathrm{softmax}(W x): a function command applied to a bracket
_APPLIED = re.compile(r"\\(?:(?:mathrm|operatorname|text|textrm|mathit)\s*\{\s*([A-Za-z_]+)\s*\}|([A-Za-z]+))"
                      r"\s*(?:\\left\s*)?\(")
APPLIED_NAMES = {"sigma", "sigmoid", "relu", "ReLU", "softplus", "softmax", "log_softmax", "logsumexp"}


class _Reader:
    def __init__(self, text, summed=None):
        self.text, self.out, self.sep = text, [], False
        self.summed = _summed(text) if summed is None else summed     # the Σs' indices (labels y^{(i)})
        self.wrapped = False                 # the last piece came from a font (\mathbf{e}: a name)

    # ---- output -------------------------------------------------------------------------------
    def emit(self, piece: str, word=False):
        """Append; a word (a name, a function) is kept apart from letters and digits around it,
        so \\mathbf{X}\\mathbf{W} is `X W`, not the one name `XW`, and 2\\mathbf{x} is `2 x`."""
        if not piece:
            return
        last = next((p[-1] for p in reversed(self.out) if p), "")
        if (word or self.sep) and piece[0].isalnum() and last.isalnum():
            self.out.append(" ")
        self.out.append(piece)
        self.sep = word
        self.wrapped = False

    def fail(self, reason, pos):
        raise ParseError(reason, self.text, pos + 1)

    # ---- reading ------------------------------------------------------------------------------
    def read(self) -> str:
        self.sequence(0, top=True)
        return "".join(self.out)

    def sequence(self, i, top=False):
        """Read until the end (top) or the `}` that closes the group; returns the index after it."""
        t = self.text
        while i < len(t):
            c = t[i]
            if c == "}":
                if top:
                    self.fail("a '}' that closes no '{'", i)
                return i + 1
            if c == "{":
                # a subscript's braces are kept (X_{ij}); any other group is TeX's grouping, a
                # bracket (\sum_i{(x_i - y_i)^2}, {x}^2), and an empty one nothing (x{}^T)
                bare = "".join(self.out).rstrip()[-1:] not in ("_", "^")
                start = len(self.out)
                self.emit("(" if bare else "{")
                i = self.sequence(i + 1)
                if bare and not "".join(self.out[start + 1:]).strip():
                    del self.out[start:]
                else:
                    self.emit(")" if bare else "}")
            elif c == "\\":
                i = self.command(i)
            elif c == "^":
                i = self.superscript(i)
            elif c == "_" and re.compile(r"_[a-z][A-Z]").match(t, i):
                self.emit(t[i:i + 2] + " ")            # x_iA_{ij}: TeX's one-token subscript, then A
                i += 2
            elif c == "~":
                self.emit(" ")
                i += 1
            elif c in "&":
                self.fail("one expression, not an aligned environment ('&')", i)
            else:
                self.emit(c)
                i += 1
        if not top:
            self.fail("a '{' that is never closed", len(t) - 1)
        return i

    def command(self, i):
        """The command at text[i] == '\\'; returns the index after what it consumed."""
        t = self.text
        j = i + 1
        if j < len(t) and t[j].isalpha():
            while j < len(t) and t[j].isalpha():
                j += 1
        else:
            j = min(j + 1, len(t))
        name = t[i + 1:j]
        if name in SPACE:
            self.emit(" ")
            return j
        if name in NO_SPACE:
            return j
        if name in DROP:
            if name in ("left", "right", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "big", "Big"):
                k = self.skip(j)
                if k < len(t) and t[k] in ".":
                    return k + 1                       # \left. is no delimiter
                if k < len(t) and t[k] in "[]":
                    self.emit("(" if t[k] == "[" else ")")
                    return k + 1
            return j
        if name in SYMBOLS:
            k = self.skip(j)
            if name == "sum" and (t.startswith("(", k) or t.startswith("\\left(", k)):
                self.emit("sum", word=True)     # \sum(x), \sum (x): the sum of the entries; a Σ
                return k                        # there would be a matrix Σ times x (\Sigma's reading)
            if name == "sum" and not t.startswith("_", k) and not t.startswith("\\limits", k) \
                    and not t.startswith("\\nolimits", k):
                end = self.sum_scope_end(i)     # \sum \mathrm{softmax}(Q K^T) V: the sum of the entries
                if end is None:                 # of what it reaches, never the matrix Σ (it was Σ times)
                    self.fail("\\sum sums nothing here: write \\sum_{i} x_i or \\sum(X)", i)
                self.emit("sum", word=True)
                self.emit("(" + _Reader(t[k:end], self.summed).read() + ")")
                return end
            self.emit(SYMBOLS[name])
            if name == "sum":
                return self.one_token_subscript(j)
            return j
        if name in FUNCTIONS:
            self.emit(FUNCTIONS[name], word=True)
            return self.operand_of_function(name, j)
        if name in GREEK:
            self.emit(GREEK[name], word=True)
            return j
        if name in KEEP_CONTENT and not (name == "mathbb" and not self.is_one_or_identity(j)):
            return self.keep_content(j, bold=name in BOLD)
        if name in ("frac", "dfrac", "tfrac"):
            return self.fraction(i, j)
        if name == "sqrt":
            k = self.skip(j)
            if k < len(t) and t[k] == "[":
                self.fail("an n-th root is not supported; write x^(1/n) of a scalar", i)
            self.emit("sqrt", word=True)
            self.sep = False
            self.emit("(")
            k = self.argument(k, i)
            self.emit(")")
            return k
        if name in DECORATED:
            return self.decorated(name, i, j)
        why = WHY_NOT.get(name)
        if why is None and len(name) == 1 and i > 0 and (t[i - 1].isalnum() or t[i - 1] in ")'"):
            why = f"if it is MATLAB's left division (A\\{name}), write the inverse: A^-1 {name}"
        self.fail(f"the LaTeX command \\{name} is not part of the language"
                  + (f": {why}" if why else ""), i)

    def operand_of_function(self, name, j):
        """\\log Y_{ij}, \\exp x: TeX's function of the one atom after it, bracketed (log(Y_{ij}))
        when that atom stands alone (then the end, an operator or a closing bracket); anything
        else (\\log x_i y_i, \\log \\det X) is left without brackets, which the readers refuse."""
        if name in ("max", "min"):
            return j
        if self.text[self.skip(j):self.skip(j) + 1] == "{":      # \log{x_i}, \exp{(x_i)}: the group
            self.sep = False
            self.emit("(")
            k = self.argument(j, j)
            self.emit(")")
            return k
        m = _ATOM.match(self.text, self.skip(j))
        end = None if m else self.applied_function_end(self.skip(j))
        end = end if m or end is not None else self.sum_scope_end(self.skip(j))
        if m is None and end is None:
            return j
        piece, end = (m.group(1), m.end(1)) if m else (self.text[self.skip(j):end], end)
        self.sep = False
        self.emit("(" + _Reader(piece, self.summed).read() + ")")
        return end

    def one_token_subscript(self, j):
        """\\sum_jW_{ij}: TeX's subscript without braces is one token (Σ_j, then W_{ij}); a run of
        letters followed by a space (\\sum_ij x_i) is the run, as the seeds' plain Σ_ij."""
        m = re.compile(r"_([A-Za-z])([A-Za-z]+)(?=[_^{(\\])").match(self.text, j)
        if not m:
            return j
        self.emit("_" + m.group(1) + " ")
        return m.end(1)

    def sum_scope_end(self, k):
        """Where \\log \\sum_j e^{x_j} ends, or None: a function before a Σ takes the Σ with its
        scope (to the next + or - at its level, or the bracket that closes it), as the seeds write
        log-sum-exp; that is the Σ's own reach (SPEC §1.3), so the reading agrees with it."""
        m = re.compile(r"\\sum\s*(?:_\s*(?:\{[^{}]*\}|\w))?\s*(?:\^\s*(?:\{[^{}]*\}|\w))?\s*-?").match(self.text, k)
        if not m:
            return None
        t, depth, i = self.text, 0, m.end()
        while i < len(t):
            c = t[i]
            if c in "({[":
                depth += 1
            elif c in ")}]":
                if depth == 0:
                    break
                depth -= 1
            elif c in "+-=,&" and depth == 0:
                break
            i += 1
        return i if t[m.end():i].strip() else None

    def applied_function_end(self, k):
        """Where a function command applied to a bracket ends (\\det(X), \\det\\left(X\\right)),
        or None: \\log\\det(X) is log(det(X)), as TeX reads it."""
        m = _APPLIED.match(self.text, k)
        name = m and (m.group(1) or m.group(2))
        if not m or (name not in FUNCTIONS and name not in APPLIED_NAMES):     # σ(·): the sigmoid
            return None
        depth, i = 0, m.end() - 1
        while i < len(self.text):
            depth += {"(": 1, ")": -1}.get(self.text[i], 0)
            if depth == 0:
                return i + 1
            i += 1
        return None

    def is_one_or_identity(self, j):
        k = self.skip(j)
        return self.text[k:k + 3] in ("{1}", "{I}")

    def skip(self, k):
        while k < len(self.text) and self.text[k] == " ":
            k += 1
        return k

    def argument(self, k, at):
        """One argument: a {group} or a single character (\\frac12); returns the index after it."""
        t = self.text
        k = self.skip(k)
        if k >= len(t):
            self.fail("this command needs an argument in braces", at)
        if t[k] == "{":
            return self.sequence(k + 1)
        if t[k] == "\\":
            return self.command(k)
        if not t[k].isalnum():
            self.fail("this command needs an argument in braces", at)
        self.emit(t[k])
        return k + 1

    def decorated(self, name, i, j):
        """\\hat{y} is the name yhat, \\tilde{x} xtilde, \\bar{x} xbar: one name, as the language
        spells it (the reader refused them and said to write that)."""
        start = len(self.out)
        k = self.argument(j, i)
        piece = "".join(self.out[start:]).strip()
        del self.out[start:]
        if not re.fullmatch(r"[A-Za-zα-ωΑ-Ω][A-Za-z0-9α-ωΑ-Ω]*", piece):
            self.fail(f"\\{name} decorates one name here (\\{name}{{y}} is y{DECORATED[name]}), not {piece!r}", i)
        self.emit(piece + DECORATED[name], word=True)
        self.wrapped = True
        return k

    def keep_content(self, j, bold=False):
        """\\mathbf{W} is W, kept apart from letters on either side; \\mathbf{XW} and \\mathbf{VXW}
        (capitals only, in bold) are the products X W and V X W, as the seeds write them."""
        start = len(self.out)
        k = self.argument(j, j - 1)
        piece = "".join(self.out[start:]).strip()
        del self.out[start:]
        if bold and re.fullmatch(r"[A-Z]{2,}", piece):
            if self.text[self.skip(k):self.skip(k) + 1] == "_":
                self.fail(f"\\mathbf{{{piece}}} with a subscript is an entry of the product {' '.join(piece)}: "
                          f"write the entry as its sum (Σ_k {piece[0]}_ik {piece[1]}_kj)", j)
            piece = " ".join(piece)
        if piece in FUNCTIONS:                        # \operatorname{Tr}, \mathrm{tr}: the function
            self.emit(FUNCTIONS[piece], word=True)
            return self.operand_of_function(piece, k)
        self.emit(piece, word=True)
        self.wrapped = True
        sub = re.compile(r"\s*_\s*(?:\{[^{}]*\}|[A-Za-z0-9])").match(self.text, k)
        if piece == "1" and sub:                      # \mathbf{1}_n: the ones vector of size n, as 1_n
            self.out.append("_" + self.text[sub.start():sub.end()].strip().lstrip("_").strip())
            return sub.end()
        return k

    def fraction(self, i, j):
        """\\frac{a}{b} is ((a)/(b)); (a/b) when both are a single name or number."""
        start = len(self.out)
        k = self.argument(j, i)
        num = "".join(self.out[start:]).strip()
        del self.out[start:]
        k = self.argument(k, i)
        den = "".join(self.out[start:]).strip()
        del self.out[start:]
        self.emit(f"({num}/{den})" if _simple(num) and _simple(den) else f"(({num})/({den}))")
        return k

    def _standalone_e(self) -> bool:
        """Whether the output ends in the letter e on its own (not the end of a name)."""
        text = "".join(self.out)
        return not self.wrapped and text.endswith("e") and (len(text) == 1 or not (text[-2].isalnum() or text[-2] in "_\\"))

    def label(self, inner, at) -> bool:
        """A superscript in brackets on the name just read: a label (_attach_label)."""
        text = _attach_label("".join(self.out), inner[1:-1].strip(), self.text, at, self.summed)
        if text is None:
            return False
        self.out = [text]
        return True

    def superscript(self, i):
        """^{\\top}, ^\\top, ^{T}, ^{\\mathsf{T}}: the transpose, written ⊤; any other ^{…} as is."""
        t = self.text
        k = self.skip(i + 1)
        if k < len(t) and t[k] == "{":
            base_is_e = self._standalone_e()          # before the exponent's own pieces
            start = len(self.out)
            end = self.sequence(k + 1)
            inner = "".join(self.out[start:]).strip()
            del self.out[start:]
            if base_is_e:                             # e^{-y w^T x}: TeX's exponential
                self.out[-1] = self.out[-1][:-1]
                self.emit("exp(" + inner + ")", word=True)
                return end
            if re.fullmatch(r"\(.*\)|\[.*\]", inner) and self.label(inner, i):      # W^{(1)}, W^{[1]}
                sub = re.compile(r"\s*_\s*(?:\{([^{}]*)\}|([A-Za-z0-9]))").match(t, end)
                done = "".join(self.out).rstrip()
                if inner[1:-1].strip() in self.summed and sub and done.endswith("}"):   # x^{(i)}_j: x_{i,j}
                    self.out = [done[:-1] + "," + (sub.group(1) or sub.group(2)).strip() + "}"]
                    return sub.end()
                return end
            self.emit("^⊤" if inner in ("⊤", "T") else "^{" + inner + "}")
            return end
        self.emit("^")
        return i + 1


_LABELLED = re.compile(r"([A-Za-zα-ωΑ-Ω][A-Za-z0-9α-ωΑ-Ω]*)((?:_(?:\{[^{}]*\}|[A-Za-z0-9]+))?)(\s*)$")


def _simple(s: str) -> bool:
    """A single name or number, which needs no brackets in a quotient (2n is neither: the
    product 2 n, which \\frac{1}{2n} divides by whole)."""
    return re.fullmatch(r"\d+(\.\d*)?|\.\d+|[^\W\d]\w*", s) is not None
