"""Declarations, default kinds, and size inference by unification.

`infer(tree, decls)` returns (typed tree, Variables). In the typed tree every node
carries its shape (rows, cols); calls are resolved into their own node types
(`tr` -> Trace, `sum(X, 1)` -> SumAxis, `h(X)` -> Func, ...), a literal `1` next to a
non-scalar becomes the ones vector, and juxtaposition with a scalar becomes ScalarMul.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

from . import functions as F
from . import nodes as N
from .errors import ShapeError, UnsupportedError
from .latex_input import variable_name

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "lam", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega"}

# names a fresh size may get, in order (declared sizes and variable names are skipped); the
# summation indices of the steps are p, q, r, s, t (seed 000: Σ_{t,p,q} V_tp X_pq W_qt), so a
# size takes them last: never Σ_{q=1}^{p} beside an index p
AUTO_SIZES = ["n", "m", "d", "k", "l", "c", "e", "f", "g", "h", "u", "v", "w", "p", "q", "r", "s", "t"]

ELEMENTWISE = tuple(name for name in F.TABLE)

# Other spellings of the functions in CALLS (SPEC §1.1). A multi-letter name is first tried in
# lower case (ReLU, Sigmoid, Tanh, GELU, Softmax), then here; a one-letter name only as written
# (H is Heaviside, h a generic function).
ALIASES = {
    "σ": "sigmoid", "sigma": "sigmoid", "logistic": "sigmoid", "swish": "silu",
    "logsoftmax": "log_softmax", "leakyrelu": "leaky_relu", "heaviside": "H", "trace": "tr",
    "inverse": "inv", "ln": "log", "maximum": "max", "minimum": "min", "clamp": "clip",
    "lse": "logsumexp", "Φ": "normcdf", "φ": None,
    "norm1": "norm_1",          # MatrixCalculus.org's spelling of ‖w‖_1 (its norm2 is ours too)
}


@dataclass
class Variable:
    name: str
    kind: str            # scalar | vector | rowvector | matrix
    shape: tuple         # (rows, cols) with size names or 1

    @property
    def array_shape(self) -> tuple:
        """The NumPy shape: a column vector is 1-D, a row vector (1, n), a scalar ()."""
        if self.kind == "scalar":
            return ()
        if self.kind == "vector":
            return (self.shape[0],)
        return tuple(self.shape)


@dataclass
class Variables:
    """The variables of one problem, in order of first appearance, and the size names."""
    table: dict
    sizes: list
    functions: frozenset = frozenset()     # the generic functions declared `name: function`
    scalars_by_context: tuple = ()         # lower-case names read as scalars (a bias, a label)
    notes: tuple = ()                      # other readings worth saying (a matrix power made square)
    columns: frozenset = frozenset()       # vectors declared n×1: they broadcast along columns

    def __getitem__(self, name) -> Variable:
        return self.table[name]

    def decls(self) -> "Decls":
        """The declarations that read these variables again (a closed form parsed back, a claim):
        each variable's shape, and the declared generic functions (act'(X) reads only if act is)."""
        return Decls({name: v.shape for name, v in self.table.items()}, functions=self.functions,
                     columns=self.columns)

    def __contains__(self, name):
        return name in self.table

    def items(self):
        return self.table.items()


# ---- declarations ----------------------------------------------------------------
_DECL = re.compile(r"^\s*([^\s:]+)\s*:\s*(.+?)\s*$")


class Decls(dict):
    """--where's declarations, {name: shape}; `functions` are the names declared
    `name: function` (generic element-wise functions, SPEC §1); `columns` those declared with
    an explicit ×1 (`b: n×1`, a 2-D column as NumPy's (n, 1) array, which broadcasts along a
    matrix's columns: Z = W A + b)."""

    def __init__(self, *args, functions=(), columns=(), **kw):
        super().__init__(*args, **kw)
        self.functions = set(functions)
        self.columns = set(columns)


# declarations as papers write them: \mathbf{X} \in \mathbb{R}^{S \times M}, x, y ∈ ℝ^n, λ ∈ ℝ
_PAPER_DECL_TEXT = [(re.compile(r"\\(?:mathbf|boldsymbol|bm|mathrm|mathit|mathsf|vec)\s*\{([^{}]*)\}"), r"\1"),
                    (re.compile(r"\\mathbb\s*\{?\s*R\s*\}?|\\R(?:e|eals)?(?![A-Za-z])"), "ℝ"),
                    (re.compile(r"\\in(?![A-Za-z])"), "∈"), (re.compile(r"\\times(?![A-Za-z])"), "×"),
                    (re.compile(r"\\[,;!:]|\$"), " ")]
_PAPER_DECL = re.compile(r"^\s*(.+?)\s*(?:∈|:)\s*ℝ\s*(?:\^\s*(?:\{(.*)\}|(\S+)))?\s*$")
_TUPLE_DECL = re.compile(r"^\s*([^\s:]+)\s*:\s*[(\[]\s*([^()\[\]]*?)\s*,?\s*[)\]]\s*$")


def _split_top(text: str) -> list:
    """Split at the commas outside brackets and braces ((S, M) and ℝ^{S,M} stay whole)."""
    parts, depth, cur = [], 0, ""
    for c in text:
        depth += (c in "([{") - (c in ")]}")
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    return parts + [cur]


_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹ⁿᵐᵈᵏˡᵖʳᵗᴺᴰᴹᴷᵀˣˢᴮᴱᴵᴶᴸᴼᴾᴿᵁᵂᴬᴳᴴ", "0123456789nmdklprtNDMKT×sBEIJLOPRUWAGH"))


def _paper_parts(text: str) -> list:
    """--where's parts in the `name: sizes` spelling: `X ∈ ℝ^{S×M}` and its LaTeX
    (\\mathbf{X} \\in \\mathbb{R}^{S \\times M}), `x, y ∈ ℝ^n` (one shape for the names before
    it), `λ ∈ ℝ` (a scalar), NumPy's `X: (S, M)`; any other part as written."""
    if "\\" in text:
        for pattern, repl in _PAPER_DECL_TEXT:
            text = pattern.sub(repl, text)
        from .latex_input import GREEK
        text = re.sub(r"\\([A-Za-z]+)", lambda m: GREEK.get(m.group(1), m.group(0)), text)
    text = re.sub(r"(∈\s*)R(?=\s*(?:\^|$|,))", r"\1ℝ", text)                 # X ∈ R^{N×D}: ℝ typed as R
    text = re.sub(f"ℝ([{''.join(_SUPERSCRIPTS)}]+)",                         # x ∈ ℝⁿ, ℝᵈˣᵏ
                  lambda m: "ℝ^{" + "".join(_SUPERSCRIPTS[c] for c in m.group(1)) + "}", text)
    out, pending = [], []
    for part in _split_top(text):
        m = _PAPER_DECL.match(part)
        t = _TUPLE_DECL.match(part)
        if m:
            dims = (m.group(2) if m.group(2) is not None else m.group(3) or "").replace(",", "×")
            names = [n.strip() for n in m.group(1).split(",")]
            out += [f"{n}: {dims.strip() or 'scalar'}" for n in pending + names]
            pending = []
        elif t:
            dims = "×".join(d.strip() for d in t.group(2).split(",") if d.strip())
            out.append(f"{t.group(1)}: {dims or 'scalar'}")
        elif re.fullmatch(r"\s*[^\s:]+\s*", part) and part.strip():
            pending.append(part.strip())          # x in `x, y ∈ ℝ^n`
        else:
            out.append(part)
    return out + pending


def parse_decls(text: str | None) -> dict:
    """`"X: S×M, b: 1×N, c: scalar, x: n, act: function"` -> {name: (rows, cols)}, with the
    declared functions in `.functions`; papers' `X ∈ ℝ^{S×M}` too (_paper_parts)."""
    decls = Decls()
    if not text:
        return decls
    for part in _paper_parts(text):
        if not part.strip():
            continue
        m = _DECL.match(part)
        if not m:
            raise ShapeError(f"cannot read the declaration {part.strip()!r}: write it as `name: m×n`, "
                             "`name: n`, `name: 1×n` or `name: scalar`")
        name, spec = unicodedata.normalize("NFKC", variable_name(m.group(1))), m.group(2)
        if not re.fullmatch(r"[A-Za-zÀ-ÖØ-öø-ɏα-ωΑ-Ωϑϕϵϱϖ][0-9_A-Za-zÀ-ÖØ-öø-ɏα-ωΑ-Ωϑϕϵϱϖ]*", name):
            raise ShapeError(f"{name!r} in --where is not a variable name")
        if name in decls or name in decls.functions:
            raise ShapeError(f"{name} is declared twice in --where ({part.strip()!r} and an earlier one)")
        if spec.strip().lower() in ("function", "func", "elementwise function"):
            decls.functions.add(name)
            continue
        decls[name] = _decl_shape(name, spec)
        if len(re.split(r"\s*[×x*]\s*", spec.strip())) == 2 and decls[name][1] == 1 and decls[name][0] != 1:
            decls.columns.add(name)
    for size, owner in ((d, n) for n, shape in decls.items() for d in shape if isinstance(d, str)):
        if size in decls or size in decls.functions:
            raise ShapeError(f"{size} is declared as a variable ({size}: {_spec_text(decls.get(size))}) and is also "
                             f"a size ({owner}: {_spec_text(decls[owner])}); a size name in the expression is that "
                             f"size as a number, so drop the declaration of {size} or rename the size")
    return decls


def _spec_text(shape) -> str:
    if shape is None:
        return "function"
    if tuple(shape) == N.SCALAR:
        return "scalar"
    return "×".join("?" if d is None else str(d) for d in shape)


# words that say what kind of matrix a variable is, not a size: `X: symmetric` was a vector of
# the size named "symmetric" (x^T X x: "the inner sizes n and symmetric differ"; sum(W) with
# `W: square` a vector's gradient, with confidence)
STRUCTURE_WORDS = {"symmetric", "sym", "spd", "psd", "pd", "positive", "definite", "semidefinite", "diagonal",
                   "diag", "orthogonal", "orthonormal", "unitary", "triangular", "upper", "lower", "square",
                   "invertible", "nonsingular", "singular", "toeplitz", "circulant", "hermitian", "skew",
                   "antisymmetric", "sparse", "banded", "identity", "tridiagonal", "stochastic"}


def _structure_words(spec: str) -> list:
    return [w for w in re.findall(r"[A-Za-z]+", spec.replace("-", " ")) if w.lower() in STRUCTURE_WORDS]


def _decl_shape(name: str, spec: str) -> tuple:
    spec = spec.strip()
    if spec.lower() in ("scalar", "1", "1×1", "1x1", "()"):
        return N.SCALAR
    if words := _structure_words(spec):
        symmetric = any(w.lower() in ("symmetric", "sym", "spd", "psd", "pd", "definite") for w in words)
        raise UnsupportedError(
            f"{name}: {spec}: a declaration gives sizes, not structure ({' '.join(words)} is not read); declare "
            f"{name}: n×n, and the derivative is for a general {name}" + (
                f" (for a symmetric {name}, (G + G^T)/2 of that gradient G is the gradient among symmetric "
                "matrices)" if symmetric else ""))
    dim = r"[A-Za-z0-9_α-ωΑ-Ω]+(\s*[+-]\s*[A-Za-z0-9_α-ωΑ-Ω]+)*"        # d, or d+k-1 (a full convolution)
    dims = [d.strip() for d in re.split(r"\s*[×x*]\s*", spec) if d.strip() != ""] \
        if re.fullmatch(rf"{dim}(\s*[×x*]\s*{dim})*", spec) else None
    if spec.lower() in ("vector",):
        return None, 1
    if spec.lower() in ("matrix",):
        return None, None
    if not dims:
        raise ShapeError(f"cannot read the shape {spec!r} of {name}: write `m×n`, `n`, `1×n`, `scalar` "
                         "or, for a tensor, its sizes (`B×S×D`)")
    out = []
    for d in dims:
        if d.isdigit():
            if int(d) < 1:
                raise ShapeError(f"the size {d} of {name} must be at least 1")
            out.append(int(d))
        elif re.fullmatch(r"[A-Za-zÀ-ÖØ-öø-ɏα-ωΑ-Ωϑϕϵϱϖ][0-9_A-Za-zÀ-ÖØ-öø-ɏα-ωΑ-Ωϑϕϵϱϖ]*", d):
            out.append(d)
        elif re.search(r"[+-]", d):
            out.append(_size_sum(name, d))
        else:
            raise ShapeError(f"cannot read the size {d!r} of {name}")
    return (out[0], 1) if len(out) == 1 else tuple(out)


def _size_sum(name: str, text: str):
    """`d+k-1`: a size computed from named sizes and integers (N.LinSize)."""
    parts = re.findall(r"([+-]?)\s*([A-Za-z0-9_α-ωΑ-Ω]+)", text)
    terms, const = [], 0
    for sign, term in parts:
        c = -1 if sign == "-" else 1
        if term.isdigit():
            const += c * int(term)
        elif re.fullmatch(r"[A-Za-zα-ωΑ-Ω][0-9_A-Za-zα-ωΑ-Ω]*", term):
            terms.append((term, c))
        else:
            raise ShapeError(f"cannot read the size {text!r} of {name}")
    size = N.lin(*terms, const=const)
    if isinstance(size, int) or any(c < 0 for _, c in getattr(size, "terms", ())) and \
            all(c < 0 for _, c in size.terms):
        raise ShapeError(f"the size {text!r} of {name} must grow with a named size (d+k-1, n-1)")
    return size


def default_kind(name: str) -> str:
    if re.match(r"[Α-Ω]", name) or (name.lower() in GREEK and name[0].isupper()):
        return "matrix"        # Σ, Λ, Φ, Sigma: upper case, as textbooks write a covariance
    if name.lower() in GREEK or re.match(r"[α-ωϑϕϵϱϖ]", name):
        return "scalar"
    if len(name) > 1 and name[0] == "d" and name[1].isupper():   # dY: shaped like Y
        return "matrix"
    return "matrix" if name[0].isupper() else "vector"


# ---- unification -----------------------------------------------------------------
class _Sizes:
    """Union-find over sizes: declared names and integers are fixed, '?k' are unknowns."""

    def __init__(self):
        self.parent = {}
        self.count = 0
        self.nonunit: dict = {}     # unknown size -> the default-kind vector it is the length of

    def fresh(self) -> str:
        self.count += 1
        return f"?{self.count}"

    def _link(self, unknown, other, why):
        """unknown := other. The length of a default-kind vector never becomes 1 by inference
        (SPEC §1.1: tr(x), x^T^T a would make x a scalar): that is a shape error."""
        owner = self.nonunit.get(unknown)
        if owner is not None:
            if other == 1:
                raise ShapeError(f"{why()}: {owner} is a vector (a lower-case name), and this would make it "
                                 f"a scalar; declare it --where \"{owner}: scalar\" if it is one")
            if _unknown(other):
                self.nonunit.setdefault(other, owner)
        self.parent[unknown] = other

    def find(self, d):
        if isinstance(d, N.LinSize):
            return d.map(self.find)
        path = []
        while d in self.parent:
            path.append(d)
            d = self.parent[d]
        if len(path) > 1 and not isinstance(d, N.LinSize):
            # the path shortened to its end (a sum of k terms links k sizes in a row: k^2 steps)
            for p in path[:-1]:
                self.parent[p] = d
        return d

    def unify(self, a, b, why) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if _unknown(ra):
            self._link(ra, rb, why)
            return True
        if _unknown(rb):
            self._link(rb, ra, why)
            return True
        if isinstance(ra, N.LinSize) or isinstance(rb, N.LinSize):
            return self._solve(N.lin((ra, 1), (rb, -1)), why)
        raise ShapeError(why())

    def _solve(self, diff, why) -> bool:
        """diff = 0 for computed sizes: fine if diff is 0, or fixes its one unknown size."""
        if diff == 0:
            return True
        if not isinstance(diff, N.LinSize):
            raise ShapeError(why())
        unknown = [(n, c) for n, c in diff.terms if _unknown(n)]
        if len(unknown) != 1 or abs(unknown[0][1]) != 1:
            raise ShapeError(why())
        name, c = unknown[0]
        rest = N.lin(*[(n, k) for n, k in diff.terms if n != name], const=diff.const)
        value = N.lin((rest, -c))
        if isinstance(value, int) and value < 1:
            raise ShapeError(why())
        self.parent[name] = value
        return True


def _unknown(d) -> bool:
    return isinstance(d, str) and d.startswith("?")


def fused(name: str, declared) -> list | None:
    """The declared names that, written together, spell `name` (`Wx` with W and x declared:
    [W, x]), or None. An undeclared name that is such a product, as papers write `Wx + b`
    and `XW^T`, would otherwise be a new variable, and the derivative by W silently zero."""
    def split(rest):
        if not rest:
            return []
        for k in range(len(rest), 0, -1):
            if rest[:k] in declared and rest[:k] != name:
                tail = split(rest[k:])
                if tail is not None:
                    return [rest[:k], *tail]
        return None
    parts = split(name) if len(name) > 1 else None
    return parts if parts and len(parts) > 1 else None


_LETTER_NUMBERED = re.compile(r"[A-Za-z](?:_?\d+)?")            # x, W1, x_2
_LETTERS_NUMBERED = re.compile(r"(?:[A-Za-z](?:_?\d+)?)+")       # Ax, W1x, Ax_1


def _fused_products(tree: N.Node, decls: dict, wrt=()) -> N.Node:
    """The tree with each undeclared name that a textbook reader reads as a product written
    without spaces as that product (step 1 shows it spaced): AX in tr(XᵀAX) and Bx in x'Bx are
    A X and B x, because X and x stand alone elsewhere in the input; Wx in σ(Wx + b) with W and
    x declared is W x; Ax in ‖Ax - b‖² by x is A x. A name splits into declared names, or into
    one-letter names (a letter with its number: W1, x_2) of which at least one is declared,
    stands alone in the input or is asked for, and at most one is none of these (W1x in
    relu(W1x) by W1 is W1 x: it was a variable W1x, and the derivative by W1 zero). A name
    with one letter and its number (b1, x_2), a Greek name and an upstream gradient (dY) stay
    whole; a Greek letter against a name is _greek_glued's."""
    alone = {n.name for n in tree.walk() if isinstance(n, N.Sym)}
    # ^TAx, ^TΣx: the transpose glued to a product, which _power explains; not a product T A x
    transposes = {n.p.name for n in tree.walk() if isinstance(n, N.Power) and isinstance(n.p, N.Sym)
                  and n.p.name[:1] == "T"}
    plan = {}
    for name in alone - transposes:
        if name not in decls and (parts := _greek_glued(name, decls, alone, wrt)):
            plan[name] = parts
            continue
        if name in decls or len(name) < 2 or not _LETTERS_NUMBERED.fullmatch(name) or \
                name.lower() in GREEK or default_kind(name) != ("matrix" if name[0].isupper() else "vector"):
            continue
        parts = fused(name, decls)
        if parts:
            plan[name] = parts
            continue
        parts = _LETTER_NUMBERED.findall(name)
        if len(parts) < 2:
            continue
        known = [p for p in parts if p in decls or p in alone or p in wrt]
        if known and len(parts) - len(known) <= 1:
            plan[name] = parts
    if not plan:
        return tree

    def chain(parts, last=None):
        out = N.Sym(parts[0])
        for p in parts[1:-1]:
            out = N.MatMul(out, N.Sym(p))
        return N.MatMul(out, last if last is not None else N.Sym(parts[-1]))

    postfix = (N.Transpose, N.Inverse, N.Power, N.HadPow)

    def split(n):
        if isinstance(n, N.Sym) and n.name in plan:
            return chain(plan[n.name])
        if isinstance(n, postfix) and isinstance(n.a, N.Sym) and n.a.name in plan:   # XW^T is X W^T
            parts = plan[n.a.name]
            if n.a.bracketed:                                                     # (XW)^T is (X W)^T
                return n.replace(a=chain(parts))
            return chain(parts, split(n.replace(a=N.Sym(parts[-1]))))
        if isinstance(n, postfix) and isinstance(n.a, postfix):                   # XW^-T, AB^2^T
            inner = split(n.a)
            if isinstance(inner, N.MatMul):
                return N.MatMul(inner.a, n.replace(a=inner.b))
            return n.replace(a=inner)
        return n.map_children(split)
    return split(tree)


def _greek_glued(name: str, decls: dict, alone: set, wrt) -> list | None:
    """A Greek letter written against a name or another Greek letter, as λw^T w, ΣX, σx, 2πσ^2:
    the parts [λ, w], [π, σ] when a part is declared, stands alone in the input or is asked for,
    and at most one part is none of these (λw was one scalar variable, so ‖X w - y‖^2 + λw^T w
    read as a vector; tr(ΣX) by X and log(2πσ^2) by σ said the variable does not occur, and
    exp(-x^T x/(2σ^2))/(2πσ^2) by σ left out the σ of πσ). Δx and δx (an increment, a variable of
    its own) and dΣ (an upstream gradient) stay whole; a name that glues a known part to more
    than one unknown one (λAx, αβx) is refused, not read as one variable."""
    runs = re.findall(r"[A-Za-z]+|[^A-Za-z]+", name)
    if len(name) < 2 or not name.isalpha() or name.isascii() or name[0] in "Δδ" or \
            (runs[0] == "d" and len(runs) == 2):
        return None
    known = lambda p: p in decls or p in alone or p in wrt         # noqa: E731
    parts = []
    for run in runs:
        if not run.isascii():
            parts += list(run)                   # Greek letters are one-letter names
        elif known(run) or len(run) == 1:
            parts.append(run)
        else:
            parts += fused(run, decls) or _LETTER_NUMBERED.findall(run)
    if not any(known(p) for p in parts):
        return None
    if len(parts) - sum(known(p) for p in parts) > 1:
        raise ShapeError(f"{name} glues a Greek letter to a name used elsewhere: write the factors with a space "
                         f"({' '.join(parts)}), or declare {name} in --where if it is a variable of its own")
    return parts


class _Infer:
    def __init__(self, decls: dict, sizes_declared: set, names: set = frozenset()):
        self.decls = decls
        self.sizes_declared = sizes_declared
        self.columns: set = set()         # vectors declared n×1 (Decls.columns)
        self.u = _Sizes()
        self.env: dict[str, tuple] = {}
        self.order: list[str] = []
        self.names = names                # every name used as a variable anywhere in the input
        self.functions: set = set()       # names declared `name: function`
        self.nonlinear: set = set()       # names inside an element-wise function, or beside one
        self.vetoed: set = set()          # names a scalar reading of did not fit the input
        self.transposed: set = set()      # names written transposed somewhere (b^T: a vector)
        self.undivided: set = set()       # names written outside every divisor of `/`
        self.unraised: set = set()        # names written outside every exponent
        self.notes: list = []             # readings that shaped the input, shown as step 2
        self.log_bars: set = set()        # ids of what |·| holds where written as log's argument (log |Σ|)
        self.no_log_det: set = set()      # ... and as sum's or mean's (sum(log |X|)): not a determinant
        self.det_bars: dict = {}          # id of the Det that log |Σ| became -> the |·| written

    # -- helpers
    def res(self, shape):
        return tuple(self.u.find(d) for d in shape)

    def scalar(self, node) -> bool:
        return self.res(node.shape) == (1, 1)

    def show(self, node) -> str:
        from .printing.text import to_text
        return f"{to_text(node)} ({show_shape(self.res(node.shape))})"

    def need_scalar(self, node, role):
        if not self.scalar(node):
            raise ShapeError(f"{role} must be a scalar, but {self.show(node)} is not")

    def square(self, node, what):
        no_tensor(node, what, self)
        r, c = node.shape
        self.u.unify(r, c, lambda: f"{what} needs a square matrix, but {self.show(node)} is not square")

    # -- the walk
    def run(self, node: N.Node) -> N.Node:
        if isinstance(node, _POSTFIX):
            node = _postfix_on_bracket(self, node) or node
        rule = RULES.get(type(node))
        if rule is None:
            raise UnsupportedError(f"cannot handle {type(node).__name__} here")
        return rule(self, node)

    def variable(self, name: str) -> tuple:
        if name not in self.env:
            if name in self.decls:
                d = self.decls[name]
                shape = tuple(self.u.fresh() if x is None else x for x in d)
            else:
                parts = fused(name, self.decls)
                if parts:
                    raise ShapeError(
                        f"{name} is not declared, but it reads as the product {' '.join(parts)} of declared "
                        f"names: write a space between the factors ({' '.join(parts)}), or declare {name} "
                        "in --where if it is a variable of its own")
                kind = default_kind(name)
                shape = {"scalar": (1, 1), "vector": (self.u.fresh(), 1),
                         "matrix": (self.u.fresh(), self.u.fresh())}[kind]
                if kind == "vector":
                    self.u.nonunit[shape[0]] = name
            self.env[name] = shape
            self.order.append(name)
        return self.env[name]

    def ones(self, transposed=False) -> N.Node:
        o = N.Ones((self.u.fresh(), 1))
        return N.Transpose(o, (1, o.shape[0])) if transposed else o

    def broadcast(self, a, b, opname) -> tuple:
        """The shape of an element-wise operation of a and b (NumPy broadcasting of 1-sized sides)."""
        if tensor(a) or tensor(b):
            return self.broadcast_tensor(a, b, opname)
        ra, rb = self.res(a.shape), self.res(b.shape)
        if ra == (1, 1) or rb == (1, 1):
            if ra == rb:
                return (1, 1)
            raise ShapeError(f"cannot {opname} the scalar and the non-scalar in {self.show(a)} and "
                             f"{self.show(b)}: make the constant a matrix, e.g. c 1 1^T")
        for v, m, rv, rm in ((a, b, ra, rb), (b, a, rb, ra)):
            # the shapes first: the walk down v is as long as v (a sum of k terms is k deep)
            if not (len(rv) == len(rm) == 2 and rv[1] == 1 and rv[0] != 1 and rm[0] != 1 and rm[1] != 1):
                continue
            name = _vector_variable(v)
            if name and name not in self.columns:      # b: n×1 declared goes along the columns
                from .printing.text import to_text
                t = to_text(v)
                t = t if isinstance(v, N.Sym) else f"({t})"
                raise ShapeError(
                    f"cannot {opname} {self.show(m)} and {t}, a vector: NumPy would pair a 1-D {name} with "
                    f"each row, column algebra with each column; say which: 1 {t}^T for each row (NumPy's "
                    f"X @ W + {name}), {t} 1^T for each column, or declare {name}: 1×n, a row, or {name}: n×1, "
                    f"a column (NumPy's (n, 1) array)")
        out = []
        for k, (x, y) in enumerate(zip(ra, rb)):
            if x == 1 and y != 1:
                out.append(y)
            elif y == 1 and x != 1:
                out.append(x)
            else:
                self.u.unify(x, y, lambda: f"cannot {opname} {self.show(a)} and {self.show(b)}: "
                                           f"their {'rows' if k == 0 else 'columns'} differ")
                out.append(x)
        row_col = lambda x, y: x[0] == 1 and x[1] != 1 and y[1] == 1 and y[0] != 1
        if row_col(ra, rb) or row_col(rb, ra):
            raise ShapeError(f"cannot {opname} {self.show(a)} and {self.show(b)}: a row and a column "
                             "would broadcast into a matrix; write the outer product explicitly")
        return tuple(out)


    def broadcast_axes(self, sa, sb, why) -> tuple:
        """NumPy's broadcast of two array shapes: trailing axes aligned, a size 1 repeated."""
        n = max(len(sa), len(sb))
        sa, sb = (1,) * (n - len(sa)) + tuple(sa), (1,) * (n - len(sb)) + tuple(sb)
        out = []
        for x, y in zip(sa, sb):
            rx, ry = self.u.find(x), self.u.find(y)
            if rx == 1:
                out.append(y)
            elif ry == 1:
                out.append(x)
            else:
                self.u.unify(x, y, why)
                out.append(x)
        return tuple(out)

    def broadcast_tensor(self, a, b, opname) -> tuple:
        """SPEC §1.2: an element-wise operation with a tensor broadcasts as NumPy does, on the
        NumPy shapes (a column vector is 1-D, so it runs along the last axis)."""
        sa, sb = array_shape_of(a.shape), array_shape_of(b.shape)
        def why():
            reduced = any(isinstance(n, (N.SumAxis, N.MeanAxis)) for x in (a, b) for n in x.walk())
            return (f"cannot {opname} {self.show(a)} and {self.show(b)}: their trailing axes differ (NumPy's "
                    "broadcasting aligns the last axes; a size must agree or be 1)" + (
                        ". NumPy's sum and mean along an axis drop it (there is no keepdims here): write a "
                        "normalisation over the last axis in index notation, Y[b,i,j] = X[b,i,j] - "
                        "Σ_k X[b,i,k] / N (SPEC §1.3)" if reduced else ""))
        return shape_of_rank(self.broadcast_axes(sa, sb, why))


def tensor(node) -> bool:
    """Whether a typed node is a tensor (rank 3 or more: the engine's shape has its sizes)."""
    return node.shape is not None and len(node.shape) > 2


def array_shape_of(shape) -> tuple:
    """NumPy's shape of an engine shape (a column vector 1-D, a scalar ())."""
    from .layout import array_shape
    return array_shape(shape)


def shape_of_rank(dims) -> tuple:
    from .layout import shape_of_rank as of_rank
    return of_rank(dims)


def no_tensor(node, what, I=None):
    """What the matrix language defines on matrices only (inverse, trace, det, a matrix power,
    diag, convolutions) is refused for a tensor, with one sentence."""
    if tensor(node):
        shown = I.show(node) if I is not None else "a tensor"
        raise UnsupportedError(f"{what} of the tensor {shown} is not supported: the matrix language on "
                               "tensors has batched products, ^T, element-wise operations, softmax, "
                               "sum and mean (SPEC §1.2); write this in index notation (SPEC §1.3)")


_ENTRYWISE = (N.Add, N.Sub, N.Neg, N.Hadamard, N.HadDiv, N.HadPow, N.ScalarMul, N.Div, N.Func, N.Power)


def _vector_variable(node) -> str | None:
    """The vector variable an operand is made of entry by entry (b, sqrt(v + ε), 2 b), or None:
    a vector the user wrote as a name, whose broadcast against a matrix NumPy and column algebra
    read differently. Computed columns (X w, A 1, mean(X, 1)) are columns by the language's rules."""
    if isinstance(node, N.Sym):
        return node.name
    if isinstance(node, _ENTRYWISE):
        for child in (getattr(node, f) for f in ("a", "b") if hasattr(node, f)):
            found = _vector_variable(child)
            if found:
                return found
    return None


def show_shape(shape) -> str:
    shape = tuple("?" if _unknown(d) else d for d in shape)
    if len(shape) > 2:
        return "×".join(f"({d})" if isinstance(d, N.LinSize) else str(d) for d in shape)
    if shape == (1, 1):
        return "scalar"
    if shape[1] == 1:
        return f"vector of size {shape[0]}"
    return f"{shape[0]}×{shape[1]}"


def _one_literal(node) -> bool:
    return isinstance(node, N.Num) and node.value == 1


# ---- rules, one per node type ---------------------------------------------------------
def _sym(I: _Infer, node: N.Sym):
    if node.name in I.sizes_declared and node.name not in I.decls:
        return N.Size(node.name)
    _not_a_bare_function(I, node.name)
    if node.name == "I" and "I" not in I.decls:
        v = I.u.fresh()
        return N.Identity((v, v))
    sized = _SIZED_IDENTITY.fullmatch(node.name)
    if sized and node.name not in I.decls:          # I_n, \mathbf{I}_d: the identity of that size
        n = int(sized.group(1)) if sized.group(1).isdigit() else sized.group(1)
        return N.Identity((n, n))
    ones = _SIZED_ONES.fullmatch(node.name)
    if ones and node.name not in I.decls:           # 1_n (parse.py spells it ones_n): the ones vector
        n = int(ones.group(1)) if ones.group(1).isdigit() else ones.group(1)
        return N.Ones((n, 1))
    if node.name in PI_NAMES and node.name not in I.decls:
        I.notes.append(f"{node.name} read as the number π = 3.14159…; declare it in --where "
                       f"(\"{node.name}: scalar\") to read it as a variable")
        return N.Num(N.PI)
    return N.Sym(node.name, I.variable(node.name))


# π as GELU's tanh form and the normal density write it: the number, unless declared
PI_NAMES = frozenset({"π", "pi"})

_SIZED_IDENTITY = re.compile(r"I_\{?([1-9][0-9]*|[A-Za-z][A-Za-z0-9]*)\}?")
_SIZED_ONES = re.compile(r"ones_([1-9][0-9]*|[A-Za-z][A-Za-z0-9]*)")


def _bare_function(I: _Infer, name: str) -> bool:
    """Whether the name is a known function's, not a variable's: more than one letter, not
    declared, not a spelled Greek letter (sigma), as SPEC §1 reads them."""
    return len(name) > 1 and name not in I.decls and name.lower() not in GREEK and canonical(name) is not None


def _not_a_bare_function(I: _Infer, name: str) -> None:
    """A known function's name without brackets (`log det X`, `tr X`) would be read as a
    variable named log or tr times what follows: refused, unless declared (a function's name
    against a bracketed call, `log det(X)`, is read by _function_of_call)."""
    if _bare_function(I, name):
        raise ShapeError(f"{name} is a function, written here without brackets: write {name}(...) around "
                         f"its argument ({name}(X), not {name} X), or declare {name} in --where if it is a variable")


def _num(I, node):
    return node


def _function_of_call(I: _Infer, node: N.MatMul):
    """`log det(X)`, `-log σ(z)`, `2 log |det(X)|`: a function's name written against a call
    is that function of the call, as the Cookbook writes log det X and as the LaTeX reader
    reads \\log\\det(X). The name is the last factor of the left side (products group left
    to right); a bare function name anywhere else stays refused."""
    if not isinstance(node.b, N.Call):
        return None

    def apply(left):
        if isinstance(left, N.Sym) and _bare_function(I, left.name):
            return N.Call(left.name, (node.b,))
        if isinstance(left, N.MatMul):
            inner = apply(left.b)
            return None if inner is None else N.MatMul(left.a, inner)
        if isinstance(left, N.Neg):
            inner = apply(left.a)
            return None if inner is None else N.Neg(inner)
        return None
    return apply(node.a)


def _matmul(I: _Infer, node: N.MatMul):
    applied = _function_of_call(I, node)
    if applied is not None:
        return I.run(applied)
    return _product(I, node, I.run(node.a), I.run(node.b))


def _product(I: _Infer, node: N.MatMul, a, b):
    """The product of node's sides, typed as a and b."""
    if _one_literal(node.a) and not I.scalar(b):
        a = I.ones()
    if _one_literal(node.b) and not I.scalar(a):
        b = I.ones()
    elif _one_literal(node.b) and not _one_literal(node.a):
        b = I.ones()                       # m 1, 2 1: a scalar times the ones vector (x - m 1)
    if I.scalar(a) != I.scalar(b):
        lone = _bias_of_a_scalar(I, _unsigned(node.a), a, _unsigned(node.b), b)
        if lone is not None and lone in I.nonlinear:     # exp(-y (w^T x)): a label times a score
            raise _ReadAsScalar(lone)
    if I.scalar(a):
        return N.ScalarMul(a, b, b.shape)
    if I.scalar(b):
        return N.ScalarMul(b, a, a.shape)
    if tensor(a) or tensor(b):
        return _batched(I, a, b)
    inner = lambda d: "?" if _unknown(d) else str(d)      # noqa: E731
    vectors = lambda: (I.res(a.shape)[1] == 1 and I.res(b.shape)[1] == 1 and not I.scalar(b)    # noqa: E731
                       and I.res(a.shape)[0] != 1)
    I.u.unify(a.shape[1], b.shape[0], lambda: (
        f"cannot multiply {I.show(a)} by {I.show(b)}: the inner sizes "
        f"{inner(I.res(a.shape)[1])} and {inner(I.res(b.shape)[0])} differ"
        + (f" (two column vectors: NumPy's 1-D x @ y is the dot product, written {_operand(a)}^T {_operand(b)} or "
           f"{_operand(a)} · {_operand(b)} here; the outer product is {_operand(a)} {_operand(b)}^T)" if vectors() else
           " (a product, juxtaposition or *, is the matrix product here, as in the seeds; NumPy's element-wise "
           f"a * b is written {_operand(a)} ∘ {_operand(b)} or {_operand(a)} .* {_operand(b)})"
           if I.res(a.shape) == I.res(b.shape) and not vectors() else "")))
    return N.MatMul(a, b, (a.shape[0], b.shape[1]))


def _operand(node) -> str:
    from .printing.text import to_text
    t = to_text(node)
    return t if isinstance(node, (N.Sym, N.Func, N.Call)) else f"({t})"


def _batched(I: _Infer, a, b):
    """SPEC §1.2: a product with a tensor is np.matmul's: the last two axes multiply, the
    leading (batch) axes broadcast; a column vector on the right is a 1-D operand (its axis
    drops from the result, as in NumPy)."""
    sa, sb = array_shape_of(a.shape), array_shape_of(b.shape)
    if len(sa) < 2:
        raise ShapeError(f"cannot multiply the column vector {I.show(a)} by the tensor {I.show(b)}: "
                         "a product with a tensor is NumPy's batched matmul; write its transpose for a row")
    inner = lambda: (f"cannot multiply {I.show(a)} by {I.show(b)}: the inner sizes differ (a product "  # noqa: E731
                     "with a tensor multiplies the last two axes, as np.matmul)")
    if len(sb) == 1:
        I.u.unify(sa[-1], sb[0], inner)
        if len(sa) == 3 and I.u.find(sa[1]) == 1:      # (x^T W) y, W: K×n×m: np.matmul gives K×1
            raise UnsupportedError(f"{I.show(a)} times the vector {I.show(b)} is {I.u.find(sa[0])}×1 in NumPy "
                                   "(np.matmul keeps the row's axis), which the matrix language cannot tell "
                                   "from a vector: write it in index notation (y_k = Σ_{i,j} x_i W_kij z_j)")
        return N.MatMul(a, b, shape_of_rank(sa[:-1]))
    I.u.unify(sa[-1], sb[-2], inner)
    batch = I.broadcast_axes(sa[:-2], sb[:-2], lambda: f"cannot multiply {I.show(a)} by {I.show(b)}: their "
                                                       "batch (leading) axes do not broadcast")
    return N.MatMul(a, b, shape_of_rank(batch + (sa[-2], sb[-1])))


def _spread(I: _Infer, s, like):
    """The scalar s at every entry of `like`'s shape, as NumPy broadcasts it (SPEC §1: `X w + β`,
    `v + ε`): s 1, s 1^T or s 1 1^T (the ones alone for the number 1)."""
    if len(like.shape) != 2:
        return None
    (r, c), (rr, cc) = like.shape, I.res(like.shape)
    if cc == 1:
        ones = N.Ones((r, 1))
    elif rr == 1:
        ones = N.Transpose(N.Ones((c, 1)), (1, c))
    else:
        ones = N.MatMul(N.Ones((r, 1)), N.Transpose(N.Ones((c, 1)), (1, c)), (r, c))
    return ones if _one_literal(s) else N.ScalarMul(s, ones, ones.shape)


def _row(I: _Infer, node) -> bool:
    """A row vector (1×n): the number 1 beside it in a sum is the ones row, 1 + a^T."""
    return len(node.shape) == 2 and I.res(node.shape)[0] == 1


def _addlike(cls, opname):
    def rule(I: _Infer, node):
        a, b = I.run(node.a), I.run(node.b)
        if _one_literal(node.a) and not I.scalar(b):
            a = I.ones(transposed=_row(I, b))
        if _one_literal(node.b) and not I.scalar(a):
            b = I.ones(transposed=_row(I, a))
        if I.scalar(a) != I.scalar(b):            # a scalar added to every entry
            lone = _bias_of_a_scalar(I, node.a, a, node.b, b)
            if lone is not None:
                raise _ReadAsScalar(lone)
            a, b = (_spread(I, a, b) or a, b) if I.scalar(a) else (a, _spread(I, b, a) or b)
        return cls(a, b, I.broadcast(a, b, opname))
    return rule


class _ReadAsScalar(Exception):
    """Raised during inference: the name is to be read as a scalar (infer() starts again)."""
    def __init__(self, name):
        super().__init__(name)
        self.name = name


def _labels(tree: N.Node, decls: dict, names: set, transposed: set, nonlinear: set) -> list:
    """The names of a vector-valued input that a textbook reader takes for scalars, as in the
    logistic loss log(1 + exp(-y w^T x)), the hinge max(0, 1 - y w^T x) or the binary
    cross-entropy -y log(σ(w^T x)) - (1 - y) log(1 - σ(w^T x)): undeclared lower-case names
    outside every inner product (never transposed, never the column after a transposed
    vector), in an input that has an inner product, and inside a loss's function or beside one
    (`nonlinear`). infer() reads them as scalars only if that makes the whole input a scalar."""
    inner = set()
    for n in tree.walk():
        if isinstance(n, N.MatMul):
            left = n.a
            while isinstance(left, N.MatMul):
                left = left.b
            if isinstance(left, N.Transpose) and isinstance(_unsigned(n.b), N.Sym):
                inner.add(_unsigned(n.b).name)
    if not transposed:
        return []
    return sorted(name for name in names if name not in decls and name not in transposed
                  and name not in inner and name in nonlinear and default_kind(name) == "vector")


_ELEMENTWISE_CALLS = {"max", "maximum", "min", "minimum", "clip", "clamp", "leaky_relu", "selu", "mish", "relu6",
                      "hardtanh", "hardsigmoid", "hardswish", "softsign", "logsigmoid", "tanhshrink"}


def _outside_divisors(tree: N.Node) -> set:
    """The names written somewhere other than a `/`'s divisor: X of `X / X` is a matrix the
    divisor rule must not turn into a scalar (it would change what the numerator means)."""
    out = set()

    def visit(n):
        if isinstance(n, N.Sym):
            out.add(n.name)
        for c in ((n.a,) if isinstance(n, N.Div) else n.children()):
            visit(c)
    visit(tree)
    return out


def _outside_exponents(tree: N.Node) -> set:
    """The names written somewhere other than an exponent (of ^ or .^): d of x^T d + (x^T y)^d
    is a vector the exponent rule must not turn into a scalar (x^T d would become d x^T)."""
    out = set()

    def visit(n):
        if isinstance(n, N.Sym):
            out.add(n.name)
        for c in ((n.a,) if isinstance(n, (N.Power, N.HadPow)) else n.children()):
            visit(c)
    visit(tree)
    return out


def _in_a_nonlinearity(tree: N.Node) -> set:
    """The names that stand inside an element-wise function's argument (exp(-y w^T x),
    max(0, 1 - y w^T x)) or in a product with one (-y log(σ(w^T x)), (1 - y) log(…)): where a
    loss puts its labels. A lone vector beside a bare inner product (a (b^T x), a b^T x) stays a
    vector: its derivative is the Jacobian a bᵀ of the Cookbook."""
    def elementwise(n):
        return isinstance(n, N.Call) and (canonical(n.name) in F.TABLE or n.name in _ELEMENTWISE_CALLS)

    def names(n):
        return {m.name for m in n.walk() if isinstance(m, N.Sym)}
    nodes = list(tree.walk())
    has_fn: dict = {}                 # id(node) -> whether an element-wise call is in it, children first
    for n in reversed(nodes):
        has_fn[id(n)] = elementwise(n) or any(has_fn.get(id(c), False) for c in n.children())
    out = set()
    for n in nodes:
        if elementwise(n):
            for a in n.args:
                out |= names(a)
        elif isinstance(n, N.MatMul):
            for side, other in ((n.a, n.b), (n.b, n.a)):
                if has_fn[id(other)]:
                    out |= names(side)
    return out


def _unsigned(node):
    return node.a if isinstance(node, N.Neg) else node


def _bias_of_a_scalar(I: _Infer, raw_a, a, raw_b, b) -> str | None:
    """The name b of `w^T x + b` or y of `exp(-y (w^T x))` (SPEC §1.1): an undeclared lower-case
    name added to a scalar computed from vectors or matrices (if its other uses fit a scalar:
    infer() tries, and reads it as a vector again where they do not), or
    multiplying one inside a nonlinearity (the caller checks I.nonlinear), is a scalar as a
    textbook reader reads it (a bias, a label), not a vector the scalar is spread over or scales
    (which would make the result a vector, and its derivative a Jacobian). A scalar that is a
    number or a scalar variable (`x + 2`, `2 x`, `log(p + ε)`) still acts on each entry."""
    scalar_side, other = (a, raw_b) if I.scalar(a) else (b, raw_a)
    if not isinstance(other, N.Sym) or other.name in I.decls or other.name in I.vetoed or \
            other.name in I.transposed or default_kind(other.name) != "vector":
        return None
    inside = [n for n in scalar_side.walk() if isinstance(n, N.Sym)]
    if any(n.name == other.name for n in inside):          # x - mean(x): x is spread over, a vector
        return None
    computed = any(n.name in I.env and not I.scalar(n) for n in inside)
    return other.name if computed else None


def _neg(I, node):
    a = I.run(node.a)
    if isinstance(a, N.Num) and I.scalar(a):
        return N.Num(-a.value)                # -1/2: the number, as printed
    return N.Neg(a, a.shape)


def _div(I: _Infer, node: N.Div):
    a, s = I.run(node.a), I.run(node.s)
    if not I.scalar(s):
        undeclared = [n.name for n in node.s.walk() if isinstance(n, N.Sym) and n.name not in I.decls]
        names = {n.name for n in node.s.walk() if isinstance(n, N.Sym)}
        # / sqrt(d): a divisor of undeclared lower-case names written nowhere else is a scalar
        # (a size, a temperature); an upper-case one stays a matrix, since X / Y is NumPy's
        # element-wise division (the hint below says how to declare a size D)
        if undeclared and set(undeclared) == names and not names & (I.undivided | I.vetoed) and \
                all(default_kind(n) == "vector" for n in names) and not tensor(s):
            raise _ReadAsScalar(undeclared[0])
        hint = (f"; if {undeclared[0]} is a scalar (a size, a temperature), declare it --where "
                f"\"{undeclared[0]}: scalar\" (undeclared, a lower-case name is a vector and an upper-case "
                "one a matrix)") if undeclared else ""
        raise ShapeError(f"cannot divide by {I.show(s)}: `/` divides by a scalar; "
                         "use ⊘ (or ./) for element-wise division" + hint)
    if isinstance(a, N.Num) and isinstance(s, N.Num) and I.scalar(a) and N.PI not in (a.value, s.value):
        if isinstance(a.value, Fraction) and isinstance(s.value, Fraction):
            return N.Num(a.value / s.value)                 # 1/2: the number, as printed
        return N.num(float(a.value) / float(s.value))
    return N.Div(a, s, a.shape)


def _transpose(I, node):
    if _one_literal(node.a):
        return I.ones(transposed=True)
    a = I.run(node.a)
    if isinstance(a, N.Transpose):           # (A^T)^T is A: one tree for one value
        return a.a
    if tensor(a):                            # the last two axes (NumPy's .mT)
        return N.Transpose(a, a.shape[:-2] + (a.shape[-1], a.shape[-2]))
    return N.Transpose(a, (a.shape[1], a.shape[0]))


def _inverse(I, node):
    a = I.run(node.a)
    if I.scalar(a):
        return N.Power(a, N.Num(Fraction(-1)), N.SCALAR)
    no_tensor(a, "the inverse", I)
    I.square(a, "the inverse")
    return N.Inverse(a, a.shape)


def _power(I: _Infer, node: N.Power):
    a, p = I.run(node.a), I.run(node.p)
    if isinstance(node.a, N.Sym) and node.a.name == "e" and "e" not in I.decls and not I.scalar(a):
        from .printing.text import to_text
        raise ShapeError(f"e^(...): e is a vector here (a lower-case name); for the exponential write "
                         f"exp({to_text(node.p)})")
    if isinstance(p, N.Sym) and p.name[:1] == "T" and len(p.name) > 1 and not I.scalar(p):
        rest = p.name[1:]
        raise ShapeError(f"^{p.name}: an exponent must be a scalar, but {p.name} is not; for a transpose "
                         f"followed by a product, write a space after T (^T {' '.join(rest)} for ^T{rest}, "
                         "if each letter is a name)")
    if not I.scalar(p) and not tensor(p):
        # (x^T y + c)^d, s^k: an exponent of undeclared lower-case names, which only a scalar can
        # be, is one (a degree, a power), as a divisor's are; step 2 says so
        names = {n.name for n in node.p.walk() if isinstance(n, N.Sym)}
        if names and not names & (set(I.decls) | I.vetoed | I.unraised) and \
                all(default_kind(n) == "vector" for n in names):
            raise _ReadAsScalar(sorted(names)[0])
    I.need_scalar(p, "an exponent")
    if I.scalar(a):
        return N.Power(a, p, N.SCALAR)
    if isinstance(p, N.Num) and Fraction(p.value).denominator == 1 and p.value >= 1:
        no_tensor(a, f"the matrix power ^{p.value} (for an element-wise power write .^)", I)
        rows, cols = I.res(a.shape)
        if rows != cols and not isinstance(node.a, N.Sym) and p.value > 1:
            from .printing.text import to_text             # (X W - Y)^2 makes X W - Y square: say so
            t = to_text(node.a)
            I.notes.append(f"({t})^{p.value} read as a matrix power, which makes {t} square; write "
                           f"({t}) .^ {p.value} for each entry's power")
        try:
            I.square(a, f"the matrix power ^{p.value}")
        except ShapeError as e:
            if cols == 1 or rows == 1:       # (y - ŷ)^2 of a vector, as papers write the entries' square
                from .printing.text import to_text
                t = to_text(node.a)
                raise ShapeError(f"{e}. ^{p.value} of a vector is not defined: write ({t}) .^ {p.value} for "
                                 f"each entry's power" + (f", or ‖{t}‖^2 for the squared norm" if p.value == 2 else "")) from None
            from .printing.text import to_text       # sum((X W - Y)^2): the entries' square, as a loss means
            t = to_text(node.a)
            raise ShapeError(f"{e}: write ({t}) .^ {p.value} for each entry's power"
                             + (f", or ‖{t}‖_F^2 for the sum of the squares" if p.value == 2 else "")) from None
        k = int(p.value)
        if k > 256:
            raise UnsupportedError(f"the matrix power ^{k} is too large (at most 256)")
        return a if k == 1 else N.MatPow(a, k, a.shape)
    if isinstance(p, N.Num) and Fraction(p.value).denominator == 1 and p.value <= -1:
        k = -int(p.value)                    # X^-2 is (X^-1)^2, as the Cookbook writes it
        no_tensor(a, f"the matrix power ^{p.value}", I)
        I.square(a, f"the matrix power ^{p.value}")
        if k > 256:
            raise UnsupportedError(f"the matrix power ^{p.value} is too large (at most -256)")
        inverse = N.Inverse(a, a.shape)
        return inverse if k == 1 else N.MatPow(inverse, k, a.shape)
    raise ShapeError(f"{I.show(a)} is not a scalar: a matrix power needs a whole-number exponent other "
                     "than 0 (X^2, X^-1, X^-2; a matrix square root is not supported), or write .^ for "
                     "an element-wise power")


def _hadamard(cls, opname):
    def rule(I: _Infer, node):
        a, b = I.run(node.a), I.run(node.b)
        if I.scalar(a) != I.scalar(b) and len(a.shape) == len(b.shape) == 2:
            # a scalar times (or divides) every entry: α ∘ X is α X, X ⊘ α is X / α, 1 ∘ x is x
            if cls is N.Hadamard:
                s, m = (a, b) if I.scalar(a) else (b, a)
                return m if _one_literal(s) else N.ScalarMul(s, m, m.shape)
            if I.scalar(b):
                if isinstance(b, N.Num) and b.value == 0:
                    raise ShapeError("division by zero")
                return N.Div(a, b, a.shape)
            a = _spread(I, a, b)
        return cls(a, b, I.broadcast(a, b, opname))
    return rule


def _hadpow(I, node):
    a, p = I.run(node.a), I.run(node.p)
    I.need_scalar(p, "the exponent of .^")
    return N.HadPow(a, p, a.shape)


def canonical(name: str) -> str | None:
    """The language's name of a function as a user may spell it (ReLU -> relu, σ -> sigmoid),
    or None."""
    if name in CALLS:
        return name
    if len(name) > 1 and name.lower() in CALLS:
        return name.lower()
    if _capital_greek(name):    # Sigma, Phi (\Sigma, \Phi): the capital letter's reading (Φ(x) the
        import unicodedata      # normal cdf, Σ(x) a matrix times x), never σ's or φ's
        try:
            return ALIASES.get(unicodedata.lookup(f"GREEK CAPITAL LETTER {name.upper()}"))
        except KeyError:
            return None
    return ALIASES.get(name.lower() if len(name) > 1 else name)


def _capital_greek(name: str) -> bool:
    return len(name) > 1 and name[0].isupper() and name.lower() in GREEK


def _generic_name(base: str) -> bool:
    """A generic element-wise function: one lower-case letter (f, g, h, φ) or a spelled Greek
    letter (phi, psi), primes stripped."""
    return (len(base) == 1 and base.isalpha() and base.islower()) or base in GREEK


def suggest(name: str) -> str | None:
    """The known function name nearest to `name` (difflib), or None."""
    import difflib
    pool = sorted(set(CALLS) | {k for k, v in ALIASES.items() if v} - {"norm_F", "norm_2", "norm_1", N.ABS_BARS})
    near = difflib.get_close_matches(name.lower() if len(name) > 1 else name, pool, n=1, cutoff=0.6)
    return near[0] if near else None


_POSTFIX = (N.Transpose, N.Inverse, N.Power, N.HadPow)


def _reads_as_product(I: _Infer, node: N.Call) -> bool:
    """A name right against a bracket that is a variable times the bracket, not a function: a
    variable declared or used alone (x(A + I) x; log in `log det(X)` is the function,
    _function_of_call), or a capital that is no function (W(x + b), W1(h), Sigma(x))."""
    name, base = node.name, node.name.rstrip("'")
    if len(node.args) != 1:
        return False
    if name in I.decls or name in I.env or (name in I.names and not _bare_function(I, name)):
        return True
    if _SIZED_ONES.fullmatch(name):                 # 1_n(x + y): the ones vector times the bracket
        return True
    if base in I.functions or canonical(name) is not None or (base != name and canonical(base) is not None) \
            or _generic_name(base):
        return False
    return bool(re.fullmatch(r"[A-ZΑ-Ω][0-9_]*", name) or _capital_greek(name))


def _postfix_on_bracket(I: _Infer, node):
    """X(X^T X)^-1: a power, inverse or transpose after a variable times a bracket is the
    bracket's, X ((X^T X)^-1), as the bracket is what it stands against; it was the product's,
    (X X^T X)^-1 (the hat matrix X(X^T X)^{-1} X^T read wrong)."""
    chain, inner = [], node
    while isinstance(inner, _POSTFIX):
        chain.append(inner)
        inner = inner.a
    if not (isinstance(inner, N.Call) and _reads_as_product(I, inner)):
        return None
    out = inner.args[0]
    for p in reversed(chain):
        out = p.replace(a=out)
    return N.MatMul(N.Sym(inner.name), out)


def _call(I: _Infer, node: N.Call):
    name = node.name
    base = name.rstrip("'")
    if _reads_as_product(I, node):        # x(A + I) x, W(x + b): a variable next to "(" is a product
        return I.run(N.MatMul(N.Sym(name), node.args[0]))
    if base in I.functions:               # --where "act: function"
        return _elementwise(I, node)
    known = canonical(name)
    if known == "log" and len(node.args) == 1 and _abs_bars(node.args[0]):
        I.log_bars.add(id(node.args[0].args[0]))  # log |Σ|: the determinant (_bars)
    if known in ("sum", "mean") and node.args:       # sum(log |X|): each entry's, or a determinant?
        bars = _log_of_bars(node.args[0])
        if bars is not None:
            I.no_log_det.add(id(bars.args[0]))
    if known is not None:
        return CALLS[known](I, node.replace(name=known))
    if base != name and canonical(base) is not None:       # σ'(z): not a generic σ'
        raise UnsupportedError(f"{name}(...): the derivative of the known function {canonical(base)} is not "
                               f"written with a prime here; write it out (e.g. sigmoid(z) ∘ (1 - sigmoid(z)), "
                               f"H(z) for relu')")
    if _generic_name(base):
        return _elementwise(I, node)
    near = suggest(base)
    raise UnsupportedError(f"unknown function {name!r}" + (f"; did you mean {near}?" if near else "")
                           + f" (a generic function has a one-letter name, f(x), or is declared "
                             f"--where \"{base}: function\")")


def _args(I, node, n, usage):
    if len(node.args) not in ((n,) if isinstance(n, int) else n):
        raise ShapeError(f"{node.name} takes {usage}, not {len(node.args)} argument(s)")
    return [I.run(a) for a in node.args]


def _trace(I, node):
    (a,) = _args(I, node, 1, "one square matrix: tr(S)")
    no_tensor(a, "the trace", I)
    if I.scalar(a):
        return a
    I.square(a, "the trace")
    return N.Trace(a)


def _square_scalar(cls, what):
    def rule(I, node):
        (a,) = _args(I, node, 1, f"one square matrix: {node.name}(X)")
        no_tensor(a, what, I)
        if I.scalar(a):
            return a if cls is N.Det else N.Func("log", a, (1, 1))
        I.square(a, what)
        return cls(a)
    return rule


def _inv_call(I, node):
    (a,) = [N.Inverse(x) for x in node.args] if len(node.args) == 1 else _args(I, node, 1, "one matrix")
    return _inverse(I, a)


def _norm(cls):
    def rule(I, node):
        if cls is N.Norm and len(node.args) == 2:
            return _norm_ord(I, node)
        (a,) = _args(I, node, 1, f"one vector or matrix: {node.name}(w)")
        return cls(a)
    return rule


def _norm_ord(I, node):
    """norm(w, 2), norm(w, 1), norm(X, 'fro'): NumPy's `ord`, read as ‖w‖_2, ‖w‖_1, ‖X‖_F."""
    a, order = node.args
    which = (order.value if isinstance(order, N.Num) and order.value in (1, 2) else
             "F" if isinstance(order, N.Sym) and order.name in ("fro", "F") else None)
    if which is None:
        raise UnsupportedError(f"norm(w, {node_text(order)}): the order of a norm may be 1, 2 or 'fro' "
                               "(‖w‖_1, ‖w‖_2, ‖X‖_F)")
    name = {1: "norm_1", 2: "norm_2", "F": "norm_F"}[which]
    out = CALLS[name](I, N.Call(name, (a,), col=node.col))
    if which == 1 and (tensor(out.a.a) or 1 not in I.res(out.a.a.shape)):
        # NumPy's norm(X, 1) of a matrix is max_j Σ_i |X_ij| (as norm(X, 2) is the spectral norm)
        what = ("of a tensor is not defined by NumPy" if tensor(out.a.a) else "of a matrix is NumPy's induced "
                "1-norm, the largest column sum of the absolute values, which is not supported")
        raise UnsupportedError(f"norm({node_text(a)}, 1) {what}; the sum of all the absolute values is "
                               f"sum(abs({node_text(a)})), or ‖{node_text(a)}‖_1")
    return out


def _sum(I, node):
    f = node.name                      # sum, or mean (which reuses this rule)
    args = _args(I, node, (1, 2), f"a matrix and optionally an axis: {f}(X) or {f}(X, 1)")
    if len(args) == 1:
        return N.SumAll(args[0])
    a, axis = args
    if tensor(a):
        return _sum_tensor(I, f, a, axis)
    if not (isinstance(axis, N.Num) and axis.value in (0, 1)):
        raise ShapeError(f"the axis of {f}(X, axis) must be 0 (down the rows) or 1 (along the columns)")
    k = int(axis.value)
    return N.SumAxis(a, k, (a.shape[0], 1) if k == 1 else (1, a.shape[1]))


def _sum_tensor(I, f, a, axis):
    """sum(X, k) of a tensor: NumPy's sum along axis k (negative k counts from the end); the
    axis drops from the result's shape."""
    r = len(a.shape)
    value = axis.value if isinstance(axis, N.Num) else None
    if value is None or Fraction(value).denominator != 1 or not -r <= int(value) < r:
        raise ShapeError(f"the axis of {f}(X, axis) of the tensor {I.show(a)} must be an integer "
                         f"from {-r} to {r - 1} (negative counts from the end, as NumPy's axis)")
    k = int(value) % r
    return N.SumAxis(a, k, shape_of_rank(a.shape[:k] + a.shape[k + 1:]))


def _mean(I, node):
    """mean(X), mean(X, k): as sum, divided by the number of entries summed."""
    out = _sum(I, node)
    if isinstance(out, N.SumAll):
        return N.Mean(out.a)
    return N.MeanAxis(out.a, out.axis, out.shape)


def _var(I, node):
    """var(X), var(X, k): NumPy's np.var, the mean squared deviation from the mean (ddof 0, as
    LayerNorm and BatchNorm use it), written out as mean((X - mean(X, k)) .^ 2, k) so that step 1
    shows it; std(X, k) is its square root. mean(X, 1) is a column and mean(X, 0) a row, so the
    deviation is from each row's or each column's own mean."""
    f = node.name
    if len(node.args) not in (1, 2):
        raise ShapeError(f"{f} takes a vector or matrix and optionally an axis: {f}(X) or {f}(X, 1), "
                         f"not {len(node.args)} argument(s)")
    x = node.args[0]
    if len(node.args) == 2 and tensor(I.run(x)):
        raise UnsupportedError(f"{f}(X, k) of a tensor: NumPy's mean along an axis drops it, so X - mean(X, k) "
                               "does not broadcast; write the variance in index notation (SPEC §1.3)")
    deviation = N.Sub(x, N.Call("mean", node.args, node.col))
    out = N.Call("mean", (N.HadPow(deviation, N.num(2)),) + tuple(node.args[1:]), node.col)
    return I.run(N.Call("sqrt", (out,), node.col) if f == "std" else out)


def _relu_of(a, col):
    return N.Call("relu", (a,), col)


def _number(node):
    """The value of a number as written (2, -1, 0.5), else None."""
    if isinstance(node, N.Neg) and isinstance(node.a, N.Num):
        return -node.a.value
    return node.value if isinstance(node, N.Num) else None


def _minus(a, b) -> N.Node:
    """a - b, with a - (-c) written a + c."""
    value = _number(b)
    if value is not None and value < 0:
        return N.Add(a, N.num(-value) if isinstance(value, float) else N.Num(-value))
    return N.Sub(a, b)


def _max_node(a, b, col) -> N.Node:
    """The element-wise maximum of a and b as relu: max(X, 0) is relu(X), max(X, c) is
    c + relu(X - c), max(A, B) is B + relu(A - B) (NumPy's np.maximum, entry by entry; where
    the two are equal the derivative goes to B, as relu'(0) = 0)."""
    for x, other in ((a, b), (b, a)):
        if _number(other) == 0:
            return _relu_of(x, col)
    if _number(a) is not None:
        a, b = b, a
    return N.Add(b, _relu_of(_minus(a, b), col))


def _min_node(a, b, col) -> N.Node:
    """min(A, B) = A - relu(A - B): min(X, 0) is X - relu(X), np.minimum entry by entry."""
    if _number(a) is not None:
        a, b = b, a
    if _number(b) == 0:
        return N.Sub(a, _relu_of(a, col))
    return N.Sub(a, _relu_of(_minus(a, b), col))


def _two_args(node, what):
    if len(node.args) != 2:
        f = node.name
        raise UnsupportedError(f"{f} is supported entry by entry, {f}(X, c) or {f}(A, B) ({what}); "
                               f"a {'maximum' if f.startswith('max') else 'minimum'} over entries has no "
                               "derivative here")
    return node.args


def _max(I, node):
    """max(X, 0) and maximum(X, 0), either order: relu(X); max(A, B): B + relu(A - B)."""
    a, b = _two_args(node, "NumPy's np.maximum; max(X, 0) is relu(X)")
    return I.run(_max_node(a, b, node.col))


def _min(I, node):
    """min(A, B), minimum(A, B): A - relu(A - B), np.minimum entry by entry."""
    a, b = _two_args(node, "NumPy's np.minimum")
    return I.run(_min_node(a, b, node.col))


def _clip(I, node):
    """clip(X, lo, hi) (clamp): np.clip, min(max(X, lo), hi); with numbers lo ≤ hi it is
    lo + relu(X - lo) - relu(X - hi)."""
    if len(node.args) != 3:
        raise ShapeError(f"{node.name} takes an array and two bounds: {node.name}(X, lo, hi), "
                         f"not {len(node.args)} argument(s)")
    x, lo, hi = node.args
    for bound, which in ((lo, "lower"), (hi, "upper")):
        I.need_scalar(I.run(bound), f"the {which} bound of {node.name}(X, lo, hi)")
    low, high = _number(lo), _number(hi)
    if low is not None and high is not None and low <= high:
        up = _relu_of(_minus(x, lo), node.col) if low != 0 else _relu_of(x, node.col)
        body = up if low == 0 else N.Add(lo, up)
        return I.run(N.Sub(body, _relu_of(_minus(x, hi), node.col)))
    return I.run(_min_node(_max_node(x, lo, node.col), hi, node.col))


# PyTorch's activations that the language writes with its own functions: each is read as its
# definition (step 1 shows it), x standing for the argument
DEFINED = {
    "mish": "x ∘ tanh(softplus(x))",
    "relu6": "clip(x, 0, 6)",
    "hardtanh": "clip(x, -1, 1)",
    "hardsigmoid": "clip(x / 6 + 1/2, 0, 1)",
    "hardswish": "x ∘ clip(x / 6 + 1/2, 0, 1)",
    "softsign": "x ⊘ (1 + abs(x))",
    "logsigmoid": "-softplus(-x)",
    "tanhshrink": "x - tanh(x)",
}


def _defined(I, node):
    """An activation of DEFINED: its definition with the argument in place of x."""
    if len(node.args) != 1:
        raise ShapeError(f"{node.name} takes one argument: {node.name}(X), not {len(node.args)} argument(s)")
    from .parse import parse
    arg = node.args[0]

    def put(n):
        return arg if isinstance(n, N.Sym) and n.name == "x" else n.map_children(put)
    return I.run(put(parse(DEFINED[node.name])))


# SELU's constants (Klambauer et al. 2017), as torch.nn.SELU
SELU_SCALE, SELU_ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717


def _elu_alpha(x, alpha, col) -> N.Node:
    """elu(X, a) = relu(X) + a (elu(X) - relu(X)): a (exp(x) - 1) below 0, x above."""
    return N.Add(_relu_of(x, col), N.MatMul(alpha, N.Sub(N.Call("elu", (x,), col), _relu_of(x, col))))


def _elu(I, node):
    """elu(X) (α = 1), elu(X, a) with a scalar α as torch's ELU(alpha)."""
    if len(node.args) == 1:
        return _elementwise(I, node)
    if len(node.args) != 2:
        raise ShapeError(f"elu takes an array and optionally α: elu(X) or elu(X, a), not {len(node.args)} argument(s)")
    x, a = node.args
    I.need_scalar(I.run(a), "the α of elu(X, a)")
    return I.run(_elu_alpha(x, a, node.col))


def _selu(I, node):
    """selu(X) = λ elu(X, α) with SELU's fixed λ and α (torch.nn.SELU)."""
    if len(node.args) != 1:
        raise ShapeError(f"selu takes one argument: selu(X), not {len(node.args)} argument(s)")
    return I.run(N.MatMul(N.num(SELU_SCALE), _elu_alpha(node.args[0], N.num(SELU_ALPHA), node.col)))


def _leaky_relu(I, node):
    """leaky_relu(X, a) = a X + (1 - a) relu(X), the slope a a scalar (0.01 if left out, as PyTorch)."""
    if len(node.args) not in (1, 2):
        raise ShapeError(f"leaky_relu takes an array and a slope: leaky_relu(X, a), not {len(node.args)} argument(s)")
    x, a = node.args[0], (node.args[1] if len(node.args) == 2 else N.num(0.01))
    I.need_scalar(I.run(a), "the slope of leaky_relu(X, a)")
    if isinstance(a, N.Num):
        rest = N.num(1 - a.value) if isinstance(a.value, float) else N.Num(1 - a.value)
    else:
        rest = N.Sub(N.Num(Fraction(1)), a)
    return I.run(N.Add(N.MatMul(a, x), N.MatMul(rest, N.Call("relu", (x,), node.col))))


def _lse_typed(I, a):
    """log Σ exp of a vector, or of each row of a matrix (a column), or along a tensor's last axis."""
    e = N.Func("exp", a, a.shape)
    if tensor(a):
        s = N.SumAxis(e, len(a.shape) - 1, shape_of_rank(a.shape[:-1]))
        return N.Func("log", s, s.shape)
    r, c = I.res(a.shape)
    s = N.SumAll(e) if (r == 1 or c == 1) else N.SumAxis(e, 1, (a.shape[0], 1))
    return N.Func("log", s, s.shape)


def _logsumexp(I, node):
    (a,) = _args(I, node, 1, "one vector or matrix: logsumexp(X) (of each row of a matrix)")
    if I.scalar(a):
        return a
    return _lse_typed(I, a)


def _log_softmax(I, node):
    """log_softmax(X) = X - logsumexp(X) 1^T, row by row, as softmax."""
    (a,) = _args(I, node, 1, "one vector or matrix: log_softmax(X)")
    if tensor(a):                       # along the last axis; its code is the stable softmax's log
        return N.Func("log", N.Softmax(a, a.shape), a.shape)
    r, c = I.res(a.shape)
    lse = _lse_typed(I, a)
    if c == 1 or r == 1:
        spread = N.ScalarMul(lse, I.ones(transposed=r == 1 and c != 1), a.shape)
        if r == 1 and c != 1:
            I.u.unify(spread.a.shape[1], a.shape[1], lambda: "log_softmax")
        else:
            I.u.unify(spread.a.shape[0], a.shape[0], lambda: "log_softmax")
    else:
        ones = I.ones(transposed=True)
        I.u.unify(ones.shape[1], a.shape[1], lambda: "log_softmax")
        spread = N.MatMul(lse, ones, a.shape)
    return N.Sub(a, spread, a.shape)


def _norm_sub(which):
    def rule(I, node):
        (a,) = _args(I, node, 1, "one vector or matrix")
        if tensor(a):
            if which == "2":
                raise UnsupportedError(f"‖X‖_2 of the tensor {I.show(a)} is not defined; ‖X‖_F is the Frobenius norm")
            return N.Norm(a)
        r, c = I.res(a.shape)
        if which == "2" and r != 1 and c != 1:
            raise UnsupportedError(f"‖{node_text(node.args[0])}‖_2 of a matrix is its spectral norm, which is "
                                   "not supported; ‖X‖_F is the Frobenius norm")
        return N.Norm(a)
    return rule


def _norm_1(I, node):
    """‖w‖_1: the sum of absolute values of the entries (of a matrix, entry-wise, as ‖vec X‖_1)."""
    (a,) = _args(I, node, 1, "one vector or matrix")
    return N.SumAll(N.Func("abs", a, a.shape))


def node_text(node) -> str:
    from .printing.text import to_text
    try:
        return to_text(node)
    except Exception:  # noqa: BLE001 - an untyped tree the printer cannot show
        return "X"


def _dot(I, node):
    a, b = _args(I, node, 2, "two vectors: dot(x, a)")
    for v in (a, b):
        no_tensor(v, "the dot product", I)
    if I.scalar(a) or I.scalar(b):          # λ · ‖w‖^2: a product with a scalar, as papers write it
        s, m = (a, b) if I.scalar(a) else (b, a)
        return N.ScalarMul(s, m, m.shape)
    for v in (a, b):
        r, c = I.res(v.shape)
        if r != 1 and c != 1:
            raise ShapeError(f"the dot product takes vectors, but {I.show(v)} is a matrix")
    at = N.Transpose(a, (a.shape[1], a.shape[0])) if I.res(a.shape)[1] == 1 else a
    bt = b if I.res(b.shape)[1] == 1 else N.Transpose(b, (b.shape[1], b.shape[0]))
    return _matmul_typed(I, at, bt)


def _np_matmul(I, node):
    """matmul(A, B), np.dot(A, B), A.dot(B): NumPy's product A @ B, with NumPy's 1-D arrays: a
    vector first is a row (x @ A is x^T A), two vectors give their inner product, a scalar
    multiplies (np.dot(2, A)). Batched over the leading axes of tensors, as `@`."""
    a, b = _args(I, node, 2, "two arrays: matmul(A, B), as NumPy's A @ B")
    if I.scalar(a) or I.scalar(b):
        s, m = (a, b) if I.scalar(a) else (b, a)
        return N.ScalarMul(s, m, m.shape)
    if tensor(a) or tensor(b):
        return _batched(I, a, b)
    if I.res(a.shape)[1] == 1 and I.res(a.shape)[0] != 1:        # a 1-D array first: a row
        a = N.Transpose(a, (a.shape[1], a.shape[0]))
        if I.res(b.shape)[0] == 1 and I.res(b.shape)[1] != 1:   # then a row second is the 1-D b
            b = N.Transpose(b, (b.shape[1], b.shape[0]))
    elif I.res(b.shape)[0] == 1 and I.res(b.shape)[1] != 1 and I.res(a.shape)[1] != 1:
        b = N.Transpose(b, (b.shape[1], b.shape[0]))            # A @ x with x a row: NumPy's 1-D x
    return _matmul_typed(I, a, b)


def _transpose_call(I, node):
    """transpose(X), np.transpose(X), X.transpose(): X^T of a matrix or vector. Of a tensor NumPy
    reverses every axis, which `^T` (the last two, NumPy's .mT) is not: refused."""
    if len(node.args) != 1:
        raise ShapeError(f"transpose takes one matrix: transpose(X), not {len(node.args)} argument(s)")
    t = _transpose(I, N.Transpose(node.args[0]))
    if tensor(t):
        raise UnsupportedError("transpose(X) and X.T of a tensor reverse all its axes (NumPy's); write X^T "
                               "for the last two (NumPy's X.mT), or the entries in index notation")
    return t


def _outer(I, node):
    """a ⊗ b, outer(a, b) of two vectors: the matrix a b^T (NumPy's np.outer). Of matrices ⊗ is
    the Kronecker product, which the language cannot say: refused, never read as something else."""
    a, b = _args(I, node, 2, "two vectors: outer(a, b), or a ⊗ b")
    for v, t in zip((a, b), map(node_text, node.args)):
        no_tensor(v, "the outer product", I)
        if I.scalar(v):
            raise ShapeError(f"the outer product ⊗ takes two vectors, but {t} is a scalar: "
                             "write the product without ⊗")
        if 1 not in I.res(v.shape):
            raise UnsupportedError(f"⊗ of matrices is the Kronecker product, which is not supported "
                                   f"({t} is a matrix; write its entries in index notation, Y[i,k,j,l] = "
                                   f"A[i,j] B[k,l]); ⊗ of two vectors is their outer product a b^T")
    at = a if I.res(a.shape)[1] == 1 else N.Transpose(a, (a.shape[1], a.shape[0]))
    bt = N.Transpose(b, (b.shape[1], b.shape[0])) if I.res(b.shape)[1] == 1 else b
    return _matmul_typed(I, at, bt)


def _numpy_star(I, node):
    """A * B in an input that writes NumPy (X @ W, np.sum, X.T): `*` is NumPy's element-wise
    product to its writer and the matrix product to SPEC §1 (and the seeds). A number or a
    scalar on either side multiplies either way; where the shapes admit only one reading, it
    is that one (tr(A @ X * B) with A: 3×4, X: 4×2, B: 2×3 is a product; a NumPy claim with
    (S×N) * (S×N) is element-wise). Two matrices of one known square shape admit both: refused
    with both spellings (np.sum((X @ W) * G) was read sum(X W G), with confidence)."""
    a, b = node.args
    ta, tb = I.run(a), I.run(b)
    if I.scalar(ta) or I.scalar(tb) or tensor(ta) or tensor(tb) or isinstance(a, N.Num) or isinstance(b, N.Num):
        return _product(I, N.MatMul(a, b), ta, tb)
    ra, rb = I.res(ta.shape), I.res(tb.shape)
    known = not any(_unknown(d) for d in (*ra, *rb))
    same = known and ra == rb
    inner = known and ra[1] == rb[0]
    if same and inner:
        raise UnsupportedError(
            f"{_operand(ta)} * {_operand(tb)}: this input writes NumPy (@, np., .T), where * is the element-wise "
            f"product, but here * is the matrix product, and the shapes ({show_shape(ra)}) allow both: write "
            f"{_operand(ta)} ∘ {_operand(tb)} for the element-wise product or {_operand(ta)} @ {_operand(tb)} "
            "for the matrix product")
    if same:
        return N.Hadamard(ta, tb, ta.shape)
    return _product(I, N.MatMul(a, b), ta, tb)


def _matmul_typed(I, a, b):
    I.u.unify(a.shape[1], b.shape[0], lambda: f"cannot multiply {I.show(a)} by {I.show(b)}")
    return N.MatMul(a, b, (a.shape[0], b.shape[1]))


def _elementwise(I, node):
    (a,) = _args(I, node, 1, f"one argument: {node.name}(X)")
    return N.Func(node.name, a, a.shape)


def _softmax(I, node):
    (a,) = _args(I, node, 1, "one vector or matrix: softmax(X)")
    if a.is_scalar:
        from .printing.text import to_text
        raise ShapeError(f"softmax takes a vector or a matrix, but its argument {to_text(a)} is a scalar "
                         "(the softmax of one number is always 1); a vector is declared as --where \"x: n\"")
    return N.Softmax(a, a.shape)


def _diag(I, node):
    (a,) = _args(I, node, 1, "one vector or square matrix: diag(x) or diag(X)")
    no_tensor(a, "diag", I)
    r, c = I.res(a.shape)
    if (r, c) == (1, 1):
        return a
    if c == 1:
        return N.DiagMat(a, (a.shape[0], a.shape[0]))
    if r == 1:
        return N.DiagMat(N.Transpose(a, (a.shape[1], a.shape[0])), (a.shape[1], a.shape[1]))
    I.square(a, "diag(X)")
    return N.DiagVec(a, (a.shape[0], 1))


def _vector_arg(I, a, what):
    """A convolution's argument: a column vector (a row vector is turned into one)."""
    no_tensor(a, what, I)
    r, c = I.res(a.shape)
    if c == 1 and r != 1:
        return a
    if r == 1 and c != 1:
        return N.Transpose(a, (a.shape[1], a.shape[0]))
    raise ShapeError(f"{what} takes vectors, but {I.show(a)} is not a vector")


def _conv(mode):
    def rule(I, node):
        x, w = _args(I, node, 2, f"a vector and a kernel: {node.name}(x, w)")
        x, w = [I.ones() if _one_literal(raw) else a for raw, a in zip(node.args, (x, w))]
        x, w = _vector_arg(I, x, node.name), _vector_arg(I, w, node.name)
        d, k = x.shape[0], w.shape[0]
        size = N.lin((d, 1), (k, -1), const=1) if mode == "valid" else N.lin((d, 1), (k, 1), const=-1)
        if isinstance(size, int) and size < 1:
            raise ShapeError(f"{node.name}(x, w): the kernel has {k} entries, more than the input's {d}, "
                             f"so the valid convolution has no entries (d - k + 1 = {size})")
        return N.Conv(x, w, mode, (size, 1))
    return rule


def _flip(I, node):
    (a,) = _args(I, node, 1, "one vector: flip(w)")
    if _one_literal(node.args[0]):
        return I.ones()
    a = _vector_arg(I, a, "flip")
    return N.Flip(a, a.shape)


def _abs_bars(node) -> bool:
    return isinstance(node, N.Call) and node.name == N.ABS_BARS and len(node.args) == 1


def _log_det_among_scalars(I, typed) -> None:
    """log |Σ| is the log-determinant only among scalars (-1/2 log |Σ| - ..., 2 log |X|): next
    to a matrix (log |X| ∘ A, log |X| + A) it may as well be each entry's, so it is refused."""
    if not I.det_bars:
        return
    for n in typed.walk():
        for c in n.children():
            if isinstance(c, N.Func) and id(c.a) in I.det_bars and not I.scalar(n):
                I.no_log_det.add(id(I.det_bars[id(c.a)].args[0]))
                _bars(I, I.det_bars[id(c.a)])           # the ambiguity, said as for |X| anywhere
    

def _log_of_bars(node):
    """The |·| of log(|X|) or log |X| (the name against the bars), else None."""
    if isinstance(node, N.Call) and canonical(node.name) == "log" and len(node.args) == 1:
        inner = node.args[0]
    elif isinstance(node, N.MatMul) and isinstance(node.a, N.Sym) and canonical(node.a.name) == "log":
        inner = node.b
    else:
        return None
    return inner if _abs_bars(inner) else None


def _may_be_square(I, a) -> bool:
    """A matrix (rank 2, no axis of size 1) whose two sizes are equal or not yet known."""
    if tensor(a) or I.scalar(a) or len(a.shape) != 2:
        return False
    rows, cols = I.res(a.shape)
    if 1 in (rows, cols) or I.u.nonunit.get(rows) or I.u.nonunit.get(cols):
        return False
    return rows == cols or _unknown(rows) or _unknown(cols)


def _bars(I, node):
    """|s| of a scalar is abs(s) (log|det X|); of a vector or matrix |·| means too many things
    (entry-wise abs, a norm, the Cookbook's determinant |X|) to pick one."""
    (a,) = _args(I, node, 1, "one scalar: |s|")
    if id(node.args[0]) in I.log_bars and id(node.args[0]) not in I.no_log_det and _may_be_square(I, a):
        t = node_text(node.args[0])
        I.square(a, "the determinant |·|")
        I.notes.append(f"log |{t}| read as log det({t}), the determinant, as the Gaussian density writes it; "
                       f"for each entry's absolute value write log(abs({t}))")
        det = N.Det(a)
        I.det_bars[id(det)] = node
        return det
    if not I.scalar(a):
        t, vector = node_text(node.args[0]), 1 in I.res(a.shape)
        raise ShapeError(f"|{t}| of a {'vector' if vector else 'matrix'} could mean several things: write "
                         f"abs({t}) for each entry's absolute value" + (f" or ‖{t}‖ for the norm" if vector else
                         f", ‖{t}‖ for the Frobenius norm or det({t}) for the determinant"))
    return _elementwise(I, N.Call("abs", node.args, node.col))


def _equation(I, node):
    raise UnsupportedError("an equation `Y = ...` is for `indexcalc backprop` and `check`")


CALLS = {
    "tr": _trace, "det": _square_scalar(N.Det, "the determinant"),
    "logdet": _square_scalar(N.LogDet, "logdet"), "inv": _inv_call,
    "norm": _norm(N.Norm), "norm2": _norm(N.Norm2), "sum": _sum, "dot": _dot, "outer": _outer,
    "matmul": _np_matmul, "transpose": _transpose_call,
    "softmax": _softmax, "diag": _diag, "mean": _mean, "var": _var, "std": _var, "max": _max, "min": _min, "clip": _clip,
    "leaky_relu": _leaky_relu, "elu": _elu, "selu": _selu, **{name: _defined for name in DEFINED},
    "logsumexp": _logsumexp, "log_softmax": _log_softmax, "norm_F": _norm_sub("F"), "norm_2": _norm_sub("2"),
    "norm_1": _norm_1,
    "conv": _conv("valid"), "conv_full": _conv("full"), "flip": _flip,
    **{name: _elementwise for name in ELEMENTWISE if name != "elu"},
    N.ABS_BARS: _bars, N.NUMPY_STAR: _numpy_star,
    # the step function (Heaviside): printed step(X), so that it is never read as a size H
    "step": lambda I, node: _elementwise(I, N.Call("H", node.args, node.col)),
}

RULES = {
    N.Sym: _sym, N.Num: _num, N.MatMul: _matmul,
    N.Add: _addlike(N.Add, "add"), N.Sub: _addlike(N.Sub, "subtract"), N.Neg: _neg,
    N.Div: _div, N.Transpose: _transpose, N.Inverse: _inverse, N.Power: _power,
    N.Hadamard: _hadamard(N.Hadamard, "multiply element-wise"),
    N.HadDiv: _hadamard(N.HadDiv, "divide element-wise"), N.HadPow: _hadpow,
    N.Call: _call, N.Equation: _equation,
}


# ---- the entry point ------------------------------------------------------------------
def greek_key(name: str) -> str:
    """The letter a name spells, with what follows it: λ, lambda (and \\lambda, which the LaTeX
    reader spells lambda) and lam are λ; Sigma is Σ; lambda1 is λ1. Any other name as it is."""
    m = re.fullmatch(r"([A-Za-z]+)(.*)", name, re.S)
    if not m or m.group(1).lower() not in GREEK:
        return name
    base = m.group(1)
    word = "lamda" if base.lower() in ("lambda", "lam") else base.lower()      # Unicode spells it lamda
    case = "CAPITAL" if base[0].isupper() else "SMALL"
    try:
        return unicodedata.lookup(f"GREEK {case} LETTER {word.upper()}") + m.group(2)
    except KeyError:
        return name


def _one_spelling(tree: N.Node, decls: dict, wrt=()) -> tuple:
    """Each Greek letter of the input spelled one way: as --wrt asks for it, else as --where
    declares it, else as the expression first writes it. `--where "λ: n"` with \\lambda (read
    lambda) in the expression was silently not applied (lambda stayed a scalar), and λ and
    \\lambda in one expression were two variables."""
    names = list(dict.fromkeys(n.name for n in tree.walk() if isinstance(n, N.Sym)))
    spelled: dict = {}
    for n in [*wrt, *decls, *names]:
        if n in names or greek_key(n) in {greek_key(m) for m in names}:
            spelled.setdefault(greek_key(n), n)
    rename = {n: spelled[greek_key(n)] for n in names if greek_key(n) in spelled and spelled[greek_key(n)] != n}
    for d in list(decls):
        own = spelled.get(greek_key(d))
        if own is not None and own != d and own not in decls:
            decls[own] = decls.pop(d)
    if not rename:
        return tree, decls

    def respell(n):
        if isinstance(n, N.Sym) and n.name in rename:
            return N.Sym(rename[n.name], n.shape)
        return n.map_children(respell)
    return respell(tree), decls


def infer(tree: N.Node, decls: dict | None = None, extra: dict | None = None,
          expect: tuple | None = None, wrt=()) -> tuple[N.Node, Variables]:
    """Typed tree and its variables. `extra` adds shapes (e.g. of `dY`) before inference;
    `expect` is the shape the whole expression must have (sizes of lone ones vectors follow);
    `wrt`: the names asked for, which a name written without spaces may be a product of (Ax)."""
    functions = set(getattr(decls, "functions", ()))
    columns = set(getattr(decls, "columns", ()))
    decls = dict(decls or {})
    decls.update(extra or {})
    tree, decls = _one_spelling(tree, decls, wrt)
    sizes_declared = {d for shape in decls.values() for d in shape if isinstance(d, str)}
    tree = _fused_products(tree, decls, wrt)
    used = {n.name for n in tree.walk() if isinstance(n, N.Sym)}
    nonlinear = _in_a_nonlinearity(tree)
    transposed = {_unsigned(n.a).name for n in tree.walk()
                  if isinstance(n, N.Transpose) and isinstance(_unsigned(n.a), N.Sym)}
    undivided, unraised = _outside_divisors(tree), _outside_exponents(tree)
    given = set(decls)
    tentative, vetoed = [], set()      # names read as scalars by their place; those that could not be

    def reader(declared) -> _Infer:
        I = _Infer(declared, sizes_declared, used)
        I.functions, I.nonlinear, I.transposed, I.vetoed = functions, nonlinear, transposed, vetoed
        I.undivided, I.unraised = undivided, unraised
        I.columns = columns
        return I
    while True:
        I = reader(decls)
        try:
            typed = I.run(tree)
            break
        except _ReadAsScalar as e:               # read again, with the name a scalar
            decls[e.name] = N.SCALAR
            tentative.append(e.name)
        except ShapeError:
            if not tentative:
                raise
            name = tentative.pop()               # b of w^T x + b used elsewhere as a vector: it is one
            del decls[name]
            vetoed.add(name)
    labels = _labels(tree, decls, used, transposed, nonlinear) if expect is None and not I.scalar(typed) else []
    if labels:                                   # -y w^T x: a label y, not the outer product y w^T
        trial = dict(decls, **{n: N.SCALAR for n in labels})
        J = reader(trial)
        try:
            typed2 = J.run(tree)
        except (ShapeError, _ReadAsScalar):
            typed2 = None
        if typed2 is not None and J.scalar(typed2):
            I, typed, decls = J, typed2, trial
    _log_det_among_scalars(I, typed)
    if expect is not None:
        if _one_literal(tree) and expect != N.SCALAR:
            typed = N.Ones((I.u.fresh(), 1))
        for k, (x, y) in enumerate(zip(typed.shape, expect)):
            I.u.unify(x, y, lambda: f"the expression has shape {show_shape(I.res(typed.shape))}, "
                                    f"expected {show_shape(expect)}")
    names = _name_sizes(I, sizes_declared, typed)
    def resolve(d):
        if d is None:
            return d
        r = I.u.find(d)
        return r.map(lambda x: names.get(x, x)) if isinstance(r, N.LinSize) else names.get(r, r)
    typed = map_shapes(typed, lambda s: tuple(resolve(d) for d in s))
    table = {}
    for name in I.order:
        shape = tuple(resolve(d) for d in I.env[name])
        table[name] = Variable(name, N.kind_of(shape), shape)
    sizes = sorted({d for v in table.values() for d in v.shape if isinstance(d, str)})
    by_context = tuple(n for n in I.order if n in decls and n not in given)
    return typed, Variables(table, sizes, frozenset(functions), by_context, tuple(dict.fromkeys(I.notes)),
                            frozenset(c for c in columns if c in table and table[c].kind == "vector"))


def check_sizes_fixed(typed: N.Node, variables: Variables) -> None:
    """A ones vector or an identity whose size neither a variable nor the result's own shape
    shows (`sum(1 b^T)`) makes a value that depends on a size nobody can see: the reason a
    derivation found no NumPy form (it said only "NoMatch"). Where the result's shape shows it
    (`1 b`, m×n), m is the result's."""
    fixed = set(variables.sizes) | {d for d in typed.shape if isinstance(d, str)}
    for node in typed.walk():
        if isinstance(node, (N.Ones, N.Identity)):
            loose = [d for d in node.shape if isinstance(d, str) and d not in fixed]
            if loose:
                what = "the ones vector 1" if isinstance(node, N.Ones) else "the identity I"
                raise ShapeError(f"the size of {what} in {node_text(typed)} is not fixed by any variable, "
                                 "so the value is not determined; write it where a variable gives its size "
                                 "(1^T x, X 1, A + I)")


def _name_sizes(I: _Infer, declared: set, typed: N.Node) -> dict:
    """Give each unknown size a readable name, in order of first appearance, never one the
    text already names (I_n X w: X is n×m, not n×n by a second, unrelated n)."""
    taken = set(declared) | set(I.env) | {"I", "T"}
    taken |= {d for n in typed.walk() if n.shape is not None for d in n.shape if isinstance(d, str)}
    taken |= {d for d in I.u.parent.values() if isinstance(d, str)}
    pool = [n for n in AUTO_SIZES if n not in taken]
    names, k = {}, 0
    for name in I.order:
        for d in I.env[name]:
            r = I.u.find(d)
            if _unknown(r) and r not in names:
                names[r] = pool[k] if k < len(pool) else f"n{k}"
                k += 1
    for v in range(1, I.u.count + 1):       # sizes of ones and identities not tied to a variable
        r = I.u.find(f"?{v}")
        if _unknown(r) and r not in names:
            names[r] = pool[k] if k < len(pool) else f"n{k}"
            k += 1
    return names


def map_shapes(node: N.Node, f) -> N.Node:
    """A copy of the tree with every shape passed through f."""
    changes = {}
    for name, v in node.items():
        if isinstance(v, N.Node):
            changes[name] = map_shapes(v, f)
        elif isinstance(v, tuple) and name == "args":
            changes[name] = tuple(map_shapes(x, f) if isinstance(x, N.Node) else x for x in v)
        elif name == "shape" and v is not None:
            changes[name] = f(v)
    return node.replace(**changes)
