"""Text -> expression tree (nodes without shapes), with the grammar in grammar.lark."""
from __future__ import annotations

import os
import re
import sys
from fractions import Fraction
from functools import lru_cache


def _import_lark():
    """lark, without the third-party `regex` module, which lark imports where it is installed
    only to offer it as an option (Lark(regex=True): Unicode categories in a grammar's
    terminals), an option our grammars never use; it is a tenth of our start-up over SymPy's.
    Where lark or regex is already loaded, nothing changes."""
    if "lark" in sys.modules or "regex" in sys.modules:
        return
    sys.modules["regex"] = None          # `import regex` raises ImportError: lark uses re
    try:
        import lark  # noqa: F401
    finally:
        del sys.modules["regex"]


_import_lark()

from lark import Lark, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from . import nodes as N
from .errors import IndexCalcError, ParseError
from .latex_input import SUBSCRIPT_RUN, from_latex, spell_subscript

GRAMMAR = os.path.join(os.path.dirname(__file__), "grammar.lark")

# how a grammar terminal is named in an error message
_READABLE = {
    "NAME": "a name", "NUMBER": "a number", "FUNC": "a function", "LPAR": "'('", "RPAR": "')'",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "HAD": "'∘'", "HDIV": "'⊘'",
    "TICK": "a transpose (')", "TEE": "'T'", "CIRCUMFLEX": "'^'", "COMMA": "','", "RBRACE": "'}'",
    "LBRACE": "'{'", "EQUAL": "'='", "DOTP": "'·'", "$END": "the end of the input",
    "LSQB": "'['", "RSQB": "']'", "CMP": "a comparison", "OUTER": "'⊗'", "NORMSUB": "a norm's subscript",
}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    with open(GRAMMAR, encoding="utf-8") as f:
        grammar = f.read()
    return cached_lark(grammar, parser="lalr", lexer="basic", propagate_positions=True,
                       maybe_placeholders=False)


def cached_lark(grammar: str, **options) -> Lark:
    """Lark(grammar, **options) with its LALR tables kept between runs (`_cache_file`)."""
    path = _cache_file(grammar, options)
    tables = _read_tables(path) if path else None
    if tables is not None:
        try:
            return Lark._load_from_dict(tables["data"], tables["memo"])
        except Exception:  # noqa: BLE001 - a stale or damaged cache is rebuilt
            pass
    parser = Lark(grammar, **options)
    if path:
        _write_tables(path, parser)
    return parser


def _cache_file(grammar: str, options=None):
    """Where the built LALR tables are kept (building them is ~65 ms of a cold start, loading
    them ~3 ms): a JSON file named by the grammar's, the options' and lark's versions, in the
    per-user cache directory (mode 0700, owned by the user: files.user_cache_dir). JSON, not
    lark's own pickle cache: a planted file can at worst fail to load, never run code. None:
    no cache."""
    import hashlib

    import lark

    from .files import user_cache_dir
    directory = user_cache_dir()
    if directory is None:
        return None
    key = f"{lark.__version__}\0{sorted((options or {}).items())}\0{grammar}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return os.path.join(directory, f"grammar-{digest}.json")


def _read_tables(path):
    import json

    from .files import read_private
    raw = read_private(path)
    if raw is None:
        return None
    try:
        return json.loads(raw, object_hook=_untag)
    except (ValueError, TypeError, RecursionError):
        return None


def _write_tables(path, parser) -> None:
    import json

    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    from .files import write_private
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    try:
        text = json.dumps({"data": _tag(data), "memo": _tag(memo)}, separators=(",", ":"))
    except (TypeError, ValueError):
        return
    write_private(path, text.encode())


def _tag(x):
    """JSON keeps neither tuples nor non-string keys; lark's tables have both."""
    if isinstance(x, dict):
        if all(isinstance(k, str) for k in x) and "__items__" not in x and "__tuple__" not in x:
            return {k: _tag(v) for k, v in x.items()}
        return {"__items__": [[_tag(k), _tag(v)] for k, v in x.items()]}
    if isinstance(x, tuple):
        return {"__tuple__": [_tag(v) for v in x]}
    if isinstance(x, list):
        return [_tag(v) for v in x]
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    raise TypeError(f"cannot cache {type(x).__name__}")


def _untag(d):
    if "__tuple__" in d and len(d) == 1:
        return tuple(d["__tuple__"])
    if "__items__" in d and len(d) == 1:
        return {(tuple(k) if isinstance(k, list) else k): v for k, v in d["__items__"]}
    return d


@v_args(inline=True)
class _ToTree(Transformer):
    """One method per grammar rule; `column` maps a column of the parsed text to the input's."""

    def __init__(self, column=lambda c: c, numpy=False):
        super().__init__()
        self.column = column
        self.numpy = numpy           # the input writes NumPy (@, np., .T): its `*` may be NumPy's
        self.powers = set()          # ids of the nodes built by a power (not a transpose) not yet bracketed

    def number(self, tok):
        return _number(str(tok))

    def name(self, tok):
        return N.Sym(ident(tok))

    def equation(self, name, rhs):
        return N.Equation(ident(name), rhs)

    def add(self, a, b):
        return N.Add(a, b)

    def sub(self, a, b):
        return N.Sub(a, b)

    def neg(self, a):
        return N.Neg(a)

    def matmul(self, a, op, b):
        if self.numpy and str(op) == "*":        # element-wise to NumPy, the matrix product here
            return N.Call(N.NUMPY_STAR, (a, b))   # shapes.py decides which the shapes allow
        return N.MatMul(a, b)

    def juxt(self, a, b):
        return N.MatMul(a, b)

    def div(self, a, b):
        if isinstance(b, N.Num) and b.value == 0:
            raise IndexCalcError("division by zero")
        return N.Div(a, b)

    def hadamard(self, a, _op, b):
        return N.Hadamard(a, b)

    def haddiv(self, a, _op, b):
        return N.HadDiv(a, b)

    def dot(self, a, _op, b):
        return N.Call("dot", (a, b))

    def outer(self, a, _op, b):
        return N.Call("outer", (a, b))

    def transpose(self, a, _tick):
        return N.Transpose(a)

    @v_args(meta=True, inline=True)
    def power(self, meta, a, exponent):
        return self._raised(meta, a, exponent, False)

    @v_args(meta=True, inline=True)
    def hadpow(self, meta, a, exponent):
        return self._raised(meta, a, exponent, True)

    def _raised(self, meta, a, exponent, elementwise):
        """`s^2^3` is (s^2)^3 to MATLAB and s^(2^3) = s^8 to a mathematician: a power of an
        unbracketed power is refused with both spellings. A transpose on either side is not
        a power (X^T^2, X^-1^T, X^-T^2 read one way only)."""
        transposes = getattr(exponent, "transposes", False)
        if not transposes and id(a) in self.powers:
            raise _StackedPower(meta.column, meta.end_column)
        out = exponent(a, elementwise=elementwise)
        if not transposes:
            self.powers.add(id(out))
        return out

    def compare(self, a, op, b):
        """(A > B) as NumPy computes it, 1 where it holds and 0 elsewhere: step(A - B), the step
        being 0 at 0; (A < B) is step(B - A); (A >= B), not (B > A), is 1 - step(B - A), exactly:
        (Y >= 0) of Y = relu(X) is 1 everywhere, not step(Y)."""
        op = str(op)
        if op in ("<", "<=", "≤"):
            a, b = b, a                     # A < B is B > A; A <= B is B >= A
        if op in (">", "<"):
            return N.Call("H", (a if N.is_num(b, 0) else N.Sub(a, b),))
        return N.Sub(N.Num(Fraction(1)), N.Call("H", (N.Neg(a) if N.is_num(b, 0) else N.Sub(b, a),)))

    def bracketed(self, e):
        self.powers.discard(id(e))
        if isinstance(e, N.Sym) and len(e.name) > 1:      # (WV)^T: the whole of a fused product
            return e.replace(bracketed=True)
        return e

    # exponents return a function of the base
    def exp_t(self, _t):
        return _transposing(lambda a, elementwise=False: N.Transpose(a))

    def exp_mt(self, _t):
        return _transposing(lambda a, elementwise=False: N.Transpose(N.Inverse(a)))

    def exp_hname(self, tok):
        return _power_of(N.Sym(str(tok)))

    def exp_hmname(self, tok):
        return _power_of(N.Neg(N.Sym(str(tok))))

    def exp_name(self, tok):
        # One lexer for the whole grammar (fast to build): `T` lexes as a name, and an
        # exponent that is the name T means the transpose.
        return self.exp_t(None) if tok == "T" else _power_of(N.Sym(str(tok)))

    def exp_mname(self, tok):
        return self.exp_mt(None) if tok == "T" else _power_of(N.Neg(N.Sym(str(tok))))

    def exp_neg(self, tok):
        n = _number(str(tok))
        return _power_of(N.num(-n.value) if isinstance(n.value, float) else N.Num(-n.value))

    def exp_num(self, tok):
        return _power_of(_number(str(tok)))

    def exp_group(self, e):
        if isinstance(e, N.Sym) and e.name in ("T", "⊤"):
            return self.exp_t(None)
        if isinstance(e, N.Neg) and isinstance(e.a, N.Sym) and e.a.name in ("T", "⊤"):
            return self.exp_mt(None)
        if isinstance(e, N.Neg) and isinstance(e.a, N.Num):
            e = N.Num(-e.a.value)
        return _power_of(e)

    def call(self, fname, args):
        name = ident("".join(str(fname).split()))
        return N.Call(name, tuple(args.children), col=self.column(fname.column))

    def norm(self, e):
        return N.Call("norm", (e,))

    def bars(self, e):
        """|s|: the absolute value of a scalar (shapes.py refuses |x| of a vector or matrix)."""
        return N.Call(N.ABS_BARS, (e,))

    def norm_sub(self, e, sub):
        """‖X‖_F is the Frobenius norm; ‖x‖_2 the Euclidean norm of a vector (of a matrix, the
        spectral norm: shapes.py refuses it)."""
        return N.Call("norm_F" if "F" in sub or "fro" in sub else "norm_1" if "1" in sub else "norm_2", (e,))

    def method(self, a, fname, args=None):
        """X.sum(1), X.mean(), (X @ W).max(0): NumPy's method is its function of the array first
        (A.dot(B) is NumPy's dot, the product A @ B)."""
        name = ident("".join(str(fname).split()))
        name = {"dot": "matmul"}.get(name, name)
        return N.Call(name, (a, *(args.children if args is not None else ())), col=self.column(fname.column))

    def transpose_mt(self, a):
        return N.Transpose(a)

    def transpose_dot(self, a):
        """X.T: X^T of a matrix or vector; of a tensor NumPy's .T reverses every axis, which
        ^T (the last two) is not: read as transpose(X), which says so (shapes._transpose_call)."""
        return N.Call("transpose", (a,))


def _transposing(build):
    build.transposes = True
    return build


class _StackedPower(Exception):
    """A power of an unbracketed power, at these columns of the parsed text (parse() says it)."""

    def __init__(self, start, end):
        super().__init__(start, end)
        self.start, self.end = start, end


# characters of typeset or pasted mathematics, as the language writes them
TYPESET = {":=": "=", "≔": "=", "−": "-", "ᵀ": "'", "⁻¹": "^-1", "²": "^2", "³": "^3", "½": "(1/2)"}
_NAME_CHARS = "0-9_A-Za-zÀ-ÖØ-öø-ɏα-ωΑ-Ωϑϕϵϱϖ"
SIZED_ONES_PREFIX = "ones_"          # 1_n as the lexer sees it (shapes._sym reads it back)
_TYPESET_RULES = [
    (re.compile("|".join(map(re.escape, TYPESET))), lambda m: TYPESET[m.group(0)]),
    # W₁, x₁₂: subscripts as the names W_1, x_12 (as --where reads them)
    (SUBSCRIPT_RUN, spell_subscript),
    # X^{∘2}, X^{⊙ 2}, X^∘2 (LaTeX's X^{\circ 2}): the element-wise power, as papers write it
    (re.compile(r"\^\s*(?:\{\s*[∘⊙]\s*([^{}]+?)\s*\}|[∘⊙]\s*(\d+(?:\.\d+)?))"),
     lambda m: f" .^ ({m.group(1) or m.group(2)})"),
    # √d, √(d_k), √2: the square root of the operand right after it
    (re.compile(r"√\s*(?=\()"), lambda m: "sqrt"),
    (re.compile(rf"√\s*([{_NAME_CHARS}.]+)"), lambda m: f"sqrt({m.group(1)})"),
    # ‖W‖²_F, ‖w‖^2_2: the norm's subscript after its power, read as ‖W‖_F^2
    (re.compile(rf"(‖|\|\|)(\s*(?:\^\s*(?:\d+|\{{\s*\d+\s*\}})|²|³))(\s*_(?:\{{(?:F|1|2|fro)\}}|F|1|2|fro))(?![{_NAME_CHARS}])"),
     lambda m: m.group(1) + m.group(3) + m.group(2).replace("²", "^2").replace("³", "^3")),
    # `^T` right against a bracket or a one-letter name (with digits: x1, x_2) is the transpose
    # followed by a product, as TeX reads x^Tx, X^TX, W^T(x + b): written ⊤, since `T(` would
    # lex as a call and `Tx` as one name
    # (y^TX(X^TX)^{-1}X^Ty: X then a bracket is X times the bracket, as x(a^T x) is)
    (re.compile(rf"\^(\s*)T(?=\(|[A-Za-zα-ωΑ-Ω](?:_?\d+)?(?![{_NAME_CHARS}]))"), lambda m: "^" + m.group(1) + "⊤"),
    # 1_n, 1_{n}, 1_3: the ones vector of that size (as I_n is the identity): a name shapes.py reads
    (re.compile(rf"(?<![{_NAME_CHARS}.])1_(?:\{{\s*([1-9][0-9]*|[A-Za-z][A-Za-z0-9]*)\s*\}}|([1-9][0-9]*|[A-Za-z][A-Za-z0-9]*))"),
     lambda m: f"{SIZED_ONES_PREFIX}{m.group(1) or m.group(2)}"),
    # W_{1}, W_{q} (LaTeX's braces around a name's subscript) are the names W_1, W_q
    (re.compile(r"(?<=[0-9A-Za-zα-ωΑ-Ω])_\{\s*([0-9A-Za-z]+)\s*\}"), lambda m: "_" + m.group(1)),
    # np.sum(X), numpy.linalg.inv(A), jnp.tanh(x): NumPy's functions are the language's own;
    # np.dot(A, B) is NumPy's dot, the product A @ B (the language's dot takes vectors)
    (re.compile(r"(?<![\w.])(?:np|numpy|jnp)\s*\.\s*(?:linalg\s*\.\s*)?(dot(?=\s*\()|(?=[A-Za-z_]\w*\s*\())"),
     lambda m: "matmul" if m.group(1) else ""),
    # sum(X, keepdims=True): the language's sums along an axis keep it (sum(X, 0) is 1×n) already
    (re.compile(r",\s*keepdims\s*=\s*(?:True|False)\s*(?=\))"), lambda m: ""),
    # sum(X, axis=-1), mean(X, dim=1): NumPy's and torch's keyword for the axis argument
    (re.compile(r"([(,]\s*)(?:axis|dim)\s*=(?!=)\s*"), lambda m: m.group(1)),     # X.sum(axis=0) too
    # norm(X, 'fro'), norm(X, "fro") (NumPy's ord as a string): the name fro, read by shapes.py,
    # which refuses the orders the language has not ('inf', 'nuc') by name
    (re.compile(r"(,\s*)(['\"])(fro|F|inf|nuc)\2"), lambda m: m.group(1) + m.group(3)),
    # ⟨a, b⟩ (LaTeX's \langle a, b \rangle): the inner product, of vectors or of matrices
    # and <a, b> as plain text writes it (the language has no comparisons); ⟨X, Y⟩_F the same
    # (each side's brackets balanced, so that (Y < 0) ∘ X, 1) + (Y > 0) is never one)
    (re.compile(r"⟨([^⟨⟩,]+),([^⟨⟩,]+)⟩(?:_\{?F\}?)?|<((?:[^<>,()]|\([^<>()]*\))+),((?:[^<>,()]|\([^<>()]*\))+)>"
                r"(?:_\{?F\}?)?"),
     lambda m: f"sum(({(m.group(1) or m.group(3)).strip()}) ∘ ({(m.group(2) or m.group(4)).strip()}))"),
]


def _typeset(text: str) -> tuple[str, list]:
    """The text with typeset characters in the language's spelling, and for each of its
    characters (and its end) the position in `text` it comes from, so that an error's column
    points into what the user typed."""
    out, origin, k = [], [], 0
    while True:
        found = [(m.start(), n, m, f) for n, (r, f) in enumerate(_TYPESET_RULES) if (m := r.search(text, k))]
        if not found:
            break
        _, _, m, f = min(found, key=lambda x: x[:2])      # the first in the text, then in the table
        out.append(text[k:m.start()])
        origin += range(k, m.start())
        piece = f(m)
        out.append(piece)
        origin += [m.start()] * len(piece)
        k = m.end()                                  # every rule takes at least one character
    out.append(text[k:])
    origin += range(k, len(text) + 1)
    return "".join(out), origin


def ident(name) -> str:
    """A name as Python spells it (NFKC: ϵ is ε), so that generated code finds its variables."""
    import unicodedata
    return unicodedata.normalize("NFKC", str(name))


def _number(text: str) -> N.Num:
    """An integer is exact; a decimal or scientific number (1.702, 1e-3, 2.5E2) is a float and
    prints as a decimal (SPEC §1.1), an integral one (2.5E2) as the integer."""
    value = _representable(text)
    if not any(c in text for c in ".eE") or (value.denominator == 1 and abs(value) < 10 ** 15):
        return N.Num(value)
    return N.Num(float(value))


def _representable(tok) -> Fraction:
    """A number the numerical check can compute with: a double (up to about 1.8e308, and
    not so small that it would become 0). 400 digits are refused, not overflowed."""
    text = str(tok)
    value = Fraction(text)
    if value and not (1e-300 < abs(value) < 1e300):
        shown = text if len(text) <= 24 else f"{text[:10]}…{text[-6:]} ({len(text)} characters)"
        raise ParseError(f"the number {shown} is too {'large' if abs(value) > 1 else 'small'} "
                         "to compute with (between 1e-300 and 1e300, please)", "", None)
    return value


def _power_of(p: N.Node):
    def build(a, elementwise=False):
        if elementwise:
            return N.HadPow(a, p)
        if isinstance(p, N.Num) and p.value == -1:
            return N.Inverse(a)
        return N.Power(a, p)   # shapes.infer decides: scalar power or matrix power
    return build


def one_line(text: str) -> str:
    """Line breaks and tabs are white space; as spaces (one character each) the input is one
    line, so an error's column counts from its start and the caret stands under it (lark
    counts columns from the start of each line: a caret under '\\n^' pointed at column 1)."""
    return text.translate(_ONE_LINE)


_ONE_LINE = {ord(c): " " for c in "\n\r\t\v\f"}

# what to write instead of a character the language does not read
_CHARACTER_HINTS = {
    "|": ": single bars are ambiguous (|X| the determinant, |x| the absolute value); write det(X) or "
         "abs(x), and ‖x‖ or ||x|| for the norm",
    ".": ": NumPy's np.f(...) is written f(...) here (trace(X @ A), sum(exp(x))), and x.T as x^T",
    "×": ": × multiplies sizes in a declaration (--where \"X: m×n\"); in an expression a product is written "
         "A B, A * B or 2 x, and a cross product is not supported",
}


def parse(text: str) -> N.Node:
    """Parse one expression or equation; raises ParseError with a caret at the column."""
    if not text or not text.strip():
        raise ParseError("empty expression", text, 1)
    text = from_latex(one_line(text))
    if "\x00" in text:
        raise ParseError("the input contains a NUL character", text, text.index("\x00") + 1)
    typed, origin = _typeset(text)
    column = lambda c: origin[min(c - 1, len(origin) - 1)] + 1   # noqa: E731 - in what the user typed
    _no_glued_divisor(typed, text, column)
    no_fraction_exponent(typed, text, column)
    try:
        tree = _parser().parse(_mark_norm_bars(typed))
        return _ToTree(column, bool(_NUMPY_STYLE.search(text))).transform(tree)
    except UnexpectedCharacters as e:
        pos = column(e.pos_in_stream + 1) - 1
        ch = text[pos] if pos < len(text) else ""
        if ch == "_" and text[:pos].rstrip().endswith(("‖", "||")):        # ‖x‖_∞, ‖X‖_*, ‖X‖_max
            raise ParseError("unexpected character '_': of the norms' subscripts, ‖x‖_1, ‖x‖_2 and ‖X‖_F (‖X‖_fro) are "
                             "supported; a max norm ‖x‖_∞ or a nuclear norm ‖X‖_* is not", text, pos + 1) from None
        raise ParseError(f"unexpected character {ch!r}" + _CHARACTER_HINTS.get(ch, ""), text, pos + 1) from None
    except UnexpectedEOF as e:
        raise ParseError(f"the input ends too early; expected {_expected(e)}", text, len(text) + 1) from None
    except UnexpectedToken as e:
        if str(e.token) in "*@" and e.column >= 2 and typed[e.column - 2] == "*":     # x**2: Python's power
            raise ParseError("** is Python's power; write ^ here (s^2, X^-1), or .^ for each entry's power (x .^ 2)",
                             text, column(e.column - 1)) from None
        if e.token.type == "$END":
            raise ParseError(f"the input ends too early; expected {_expected(e)}", text, len(text) + 1) from None
        raise ParseError(f"unexpected {_as_typed(e.token, typed, e.column)!r}; expected {_expected(e)}",
                         text, column(e.column)) from None
    except UnexpectedInput as e:  # pragma: no cover - other lark input errors
        raise ParseError("cannot parse this", text, getattr(e, "column", 1)) from None
    except VisitError as e:
        if isinstance(e.orig_exc, _StackedPower):
            raise _stacked_power(e.orig_exc, typed, text, column) from None
        if isinstance(e.orig_exc, IndexCalcError):
            raise e.orig_exc from None
        raise ParseError(f"cannot read this: {e.orig_exc}", text, 1) from None


def _stacked_power(e: _StackedPower, typed: str, text: str, column) -> ParseError:
    written = typed[e.start - 1:e.end - 1]
    inner, _, outer = written.rpartition("^")
    inner, dot = (inner[:-1], ".") if inner.endswith(".") else (inner, "")
    base, _, first = inner.rpartition("^")
    base, dot1 = (base[:-1], ".") if base.endswith(".") else (base, "")
    return ParseError(f"{written.strip()} could mean ({base.strip()}{dot1}^{first.strip()}){dot}^{outer.strip()} or "
                      f"{base.strip()}{dot1}^({first.strip()}{dot}^{outer.strip()}): bracket the power you mean",
                      text, column(e.start))


_GLUED_DIVISOR = re.compile(rf"/\s*(((?>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?))([{_NAME_CHARS[4:]}][{_NAME_CHARS}]*(?:\^\w+)?))")


def _no_glued_divisor(typed: str, text: str, column) -> None:
    """`1/2n`, `x^T x / 2σ^2`: a number written against a name right after `/` is one divisor
    to a textbook reader (1/(2n)), but left to right it is (1/2) n (SPEC §1.1). Neither
    reading is safe to pick silently, so the input is refused with both spellings."""
    m = _GLUED_DIVISOR.search(typed)
    if m:
        glued, number, rest = m.groups()
        raise ParseError(f"'/ {glued}' could mean dividing by {number} {rest} or by {number} alone: write "
                         f"/({number} {rest}) to divide by the product, or /{number} {rest} with a space "
                         f"to multiply by {rest}", text, column(m.start(1) + 1))


# what only NumPy writes: @, np.f / numpy.f, X.T, X.sum(...): an input with one of these may
# mean NumPy's `*`, the element-wise product
_NUMPY_STYLE = re.compile(r"@|(?<![\w.])(?:np|numpy|jnp|torch)\s*\.|[\w)\]]\.m?T(?![\w(])|"
                          r"\.\s*(?:sum|mean|dot|transpose|max|min|var|std)\s*\(")

_FRACTION_EXPONENT = re.compile(r"(\.?\^)\s*(-?)(\d+)/(\d+)(?![\d.])")


def _ambiguous_fractions(typed: str):
    """The places `^p/q` (or `.^p/q`) of whole numbers in lowest terms with q ≥ 2 (1/2, -3/2,
    2/3): the power p/q to a textbook reader, (…^p)/q left to right. x^2/2 and x^3/6, which no
    one writes for x^1 or x^(1/2), are not among them."""
    from math import gcd
    for m in _FRACTION_EXPONENT.finditer(typed):
        p, q = int(m.group(3)), int(m.group(4))
        if p and q >= 2 and gcd(p, q) == 1:
            yield m


def no_fraction_exponent(typed: str, text: str | None = None, column=lambda c: c) -> None:
    """`D^-1/2 A D^-1/2`, `(x^T x)^1/2`, `Σ^-1/2`: a whole-number exponent written against `/`
    and another whole number is the power -1/2 to a textbook reader (the normalised adjacency,
    the norm, whitening), but left to right it is (D^-1)/2 (SPEC §1.1), and read so it gave a
    confident derivative of the other function. Neither reading is safe to pick, so the input
    is refused with both spellings; with a space before `/` (s^-1 / 2) the division is what
    was written, and a typeset exponent (s⁻¹/2) ends where it is raised."""
    text = typed if text is None else text
    for m in _ambiguous_fractions(typed):
        if text[column(m.start() + 1) - 1] not in ".^":
            continue
        caret, power, q = m.group(1), m.group(2) + m.group(3), m.group(4)
        base = _base_before(typed, m.start())
        raise ParseError(f"{base}{caret}{power}/{q} could mean {base}{caret}({power}/{q}), the power {power}/{q}, "
                         f"or ({base}{caret}{power})/{q}: bracket the one you mean", text, column(m.start() + 1))


def spaced_fractions(shown: str) -> str:
    """Printed text with a space either side of the `/` of each ambiguous `^p/q` (x_i^3/2 is
    x_i^3 / 2), so that what indexcalc prints never reads as the power p/q, and reads back."""
    for m in reversed(list(_ambiguous_fractions(shown))):
        k = m.end(3)
        shown = shown[:k] + " / " + shown[k + 1:]
    return shown


def _base_before(typed: str, end: int) -> str:
    """The operand written right before position `end` (a name, a call or a bracket), for a
    message; '…' where it is not one of these."""
    k = end
    while k > 0 and typed[k - 1] == " ":
        k -= 1
    stop = k
    closing = {")": "(", "]": "[", "}": "{"}
    if k and typed[k - 1] in "‖|":                   # ‖x‖^-1/2, ||x||^-1/2: back to the opening bars
        bar = "‖" if typed[k - 1] == "‖" else "||"
        opening = typed.rfind(bar, 0, k - len(bar))
        return typed[opening:stop] if opening >= 0 else "…"
    if k and typed[k - 1] in closing:
        depth = 0
        while k > 0:
            k -= 1
            depth += typed[k] in closing
            depth -= typed[k] in closing.values()
            if depth == 0:
                break
    while k > 0 and re.match(rf"[{_NAME_CHARS}]", typed[k - 1]):
        k -= 1
    return typed[k:stop] or "…"


def _mark_norm_bars(text: str) -> str:
    """Norm bars open and close alike, so pair them before lexing: a bar right after an
    operand closes the innermost open norm; any other bar opens one (`‖a / ‖a‖‖`, `‖x‖ ‖y‖`,
    `‖‖x‖ y‖`). Opening bars become ⟦, closing ones ⟧; `||` keeps its width, so columns
    stay right."""
    out, open_bars = [], []
    for piece in re.split(r"(\|\||‖|\|)", text):
        if piece not in ("||", "‖", "|"):
            out.append(piece)
            continue
        kind = "|" if piece == "|" else "‖"
        before = "".join(out).rstrip()
        closes = bool(open_bars) and open_bars[-1] == kind and bool(before) and _ends_operand(before[-1])
        if closes:
            open_bars.pop()
        else:
            open_bars.append(kind)
        if kind == "|":                  # |det(X)|, |α|: single bars, ⦃ ⦄ inside
            out.append("⦄" if closes else "⦃")
            continue
        mark = "⟧" if closes else "⟦"
        out.append(mark if piece == "‖" else (" " + mark if closes else mark + " "))
    return "".join(out)


def _as_typed(token, text: str, column: int) -> str:
    """The token as the user typed it (norm bars are marked ⟦ ⟧ inside)."""
    value = str(token)
    if value.strip() in ("⟦", "⟧"):
        return "||" if text[column - 1:column + 1] == "||" else "‖"
    if value in ("⦃", "⦄"):
        return "|"
    return value


def _ends_operand(ch: str) -> bool:
    return ch.isalnum() or ch in ")]}'⊤⟧⦄_"


def _expected(e) -> str:
    names = sorted({n for t in (getattr(e, "expected", None) or [])
                    if (n := _READABLE.get(t) or _anon(t))})
    if not names:
        return "more input"
    if len(names) > 6:
        return "an operand or an operator"
    return ", ".join(names)


def _anon(terminal: str) -> str | None:
    if terminal.startswith("__ANON"):
        return None
    return terminal.lower()
