"""Index notation as input (SPEC §1.3): text -> index tree -> ranges -> SymPy index form.

The reader has its own grammar (index_grammar.lark); the tree it builds is small (one class
per construct, below) and has three consumers: the range inference here, the lowering to the
engine's SymPy index form (`lower`, the same Indexed / KroneckerDelta / Sum the matrix
language's `IndexContext.entry` builds, so diff.py and deltas.py do the rest), and the
numerical guard's reference (index_eval.py), which evaluates this tree directly and never
our lowering of it.

Ranges: each index runs over the size of the place it fills (`X: S×M` makes i in X[i,p] run
over S); a place that holds index arithmetic (`h[n+j-1]`) does not fix a range, and an output
index that occurs only in such places runs over the valid range (d - k + 1) unless the left
side's declaration says otherwise. Indices run from 1; entries out of range are 0.
"""
from __future__ import annotations

import operator
import os
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache

import sympy as sp
from lark import Lark, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from . import functions as F
from . import nodes as N
from .errors import IndexCalcError, ParseError, ShapeError, UnsupportedError
from .index_form import preorder
from .index_syntax import ENTRY_OF_GROUP, einsum_text, index_text, is_index_notation, unsubscript
from .latex_input import from_latex, spelled_as
from .layout import shape_of_rank, show_dims
from .shapes import GREEK, Variable, Variables, _Sizes, _unknown

GRAMMAR = os.path.join(os.path.dirname(__file__), "index_grammar.lark")

# sizes nothing declares: upper case, so that they never take a letter an index may want
AUTO_SIZES_UPPER = ["N", "M", "P", "Q", "R", "D", "K", "L", "S", "U", "V", "C", "E", "F", "G", "H"]
ALIASES = {"σ": "sigmoid", "sigma": "sigmoid", "Sigmoid": "sigmoid", "ReLU": "relu", "Tanh": "tanh", "ln": "log"}
DELTAS = {"δ", "delta"}
TYPESET = {":=": "=", "≔": "=", "**": "^", "^⊤": "^T", "−": "-", "²": "^2", "³": "^3", "ᵀ": "^T", "⁻¹": "^-1", "·": "*", "⋅": "*"}   # entries: · is a product


_ABS = re.compile(r"\|([^|‖]+)\|")


# ---- the tree -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Num:
    value: object                  # Fraction or float


@dataclass(frozen=True)
class Scalar:
    name: str                      # a scalar variable or a size name


@dataclass(frozen=True)
class Ref:
    name: str
    indices: tuple                 # SymPy expressions in index symbols (and size symbols)
    split: str = field(default="", compare=False)   # X_{1j} read as X[1,j] from "1j" (or a stride 1j)
    written: str = field(default="", compare=False)  # w_0 as written (a name, where --where declares it)

    @property
    def text(self) -> str:
        return f"{self.name}[{','.join(index_text(i) for i in self.indices)}]"


@dataclass(frozen=True)
class Delta:
    a: object
    b: object


@dataclass(frozen=True)
class Sum:
    indices: tuple                 # index names
    body: object
    bounds: tuple = ()             # ((index, size), ...) written as Σ_{j=1}^{k}
    others: tuple = ()             # Σ_{i≠j}: j, summed too where nothing else binds it (read() decides)


@dataclass(frozen=True)
class Op:
    op: str                        # + - * / ^ neg
    args: tuple


@dataclass(frozen=True)
class Call:
    name: str
    arg: object


@dataclass(frozen=True)
class _Over:
    """softmax_j(e_ij) (log_softmax_j) as read, before parse_index writes it out as
    exp(e_ij) / Σ_k exp(e_ik) with a fresh k (the tree's consumers see only that)."""
    index: str
    arg: object
    log: bool


@dataclass(frozen=True)
class _Bound:
    """Where a Σ's bound fixes its index's range, for the reader's messages."""
    index: str
    size: object
    name = None

    @property
    def text(self) -> str:
        return f"Σ_{{{self.index}=1}}^{{{self.size}}}"


def index_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, integer=True)


def walk(node):
    yield node
    if isinstance(node, Sum):
        yield from walk(node.body)
    elif isinstance(node, Op):
        for a in node.args:
            yield from walk(a)
    elif isinstance(node, Call):
        yield from walk(node.arg)


def free_indices(node) -> list:
    """The index names free in node, in order of first appearance."""
    if isinstance(node, Ref):
        return list(dict.fromkeys(s.name for i in node.indices for s in _ordered_symbols(i)))
    if isinstance(node, Delta):
        return list(dict.fromkeys(s.name for i in (node.a, node.b) for s in _ordered_symbols(i)))
    if isinstance(node, Sum):
        return [i for i in free_indices(node.body) if i not in node.indices]
    if isinstance(node, Op):
        return list(dict.fromkeys(i for a in node.args for i in free_indices(a)))
    if isinstance(node, Call):
        return free_indices(node.arg)
    return []


def map_places(node, f):
    """The tree with every index place e (of an entry or a δ) replaced by f(e)."""
    if isinstance(node, Ref):
        return replace(node, indices=tuple(f(i) for i in node.indices))
    if isinstance(node, Delta):
        return Delta(f(node.a), f(node.b))
    if isinstance(node, Sum):
        return replace(node, body=map_places(node.body, f))
    if isinstance(node, Op):
        return Op(node.op, tuple(map_places(a, f) for a in node.args))
    if isinstance(node, Call):
        return Call(node.name, map_places(node.arg, f))
    return node


def map_nodes(node, f):
    """The tree rebuilt bottom up, each node (its children already rebuilt) replaced by f(node)."""
    if isinstance(node, Sum):
        node = replace(node, body=map_nodes(node.body, f))
    elif isinstance(node, Op):
        node = Op(node.op, tuple(map_nodes(a, f) for a in node.args))
    elif isinstance(node, Call):
        node = Call(node.name, map_nodes(node.arg, f))
    return f(node)


def _indexed_power(node, e_is_exp=True):
    """A power whose exponent carries an index: e^{x_i} (an undeclared e) is exp(x_i), as the
    seeds write the softmax (S(x)_i = e^{x_i} / Σ_j e^{x_j}) and as the LaTeX reader reads e^{…};
    any other base (a declared e too) is a^{x_i} = exp(x_i log(a)) (2^{x_i}, x_i^{y_i}; a positive base)."""
    if not (isinstance(node, Op) and node.op == "^" and free_indices(node.args[1])):
        return node
    base, power = node.args
    if base == Scalar("e") and e_is_exp:
        return Call("exp", power)
    return Call("exp", Op("*", (power, Call("log", base))))


def _children(node) -> tuple:
    if isinstance(node, Sum):
        return (node.body,)
    if isinstance(node, Op):
        return node.args
    if isinstance(node, Call):
        return (node.arg,)
    return ()


def _written(node, c) -> int:
    """How many index places of entries and δs under node hold the index c."""
    if isinstance(node, (Ref, Delta)):
        places = node.indices if isinstance(node, Ref) else (node.a, node.b)
        return sum(1 for e in places if index_symbol(c) in sp.sympify(e).free_symbols)
    return sum(_written(k, c) for k in _children(node))


def _product_holding(node, c):
    """The smallest product (or entry, A_ii) that holds every place of c, written twice or
    more; None if c is written once, or its places meet first at a sum or a power."""
    total = _written(node, c)
    if total < 2:
        return None
    for k in _children(node):
        if _written(k, c) == total:
            return _product_holding(k, c)
    return node if isinstance(node, (Ref, Delta)) or isinstance(node, Op) and node.op in ("*", "/") else None


def _summation_convention(rhs, out_names):
    """Einstein's convention, as papers mix it with written Σs (L = Σ_ijk T_ijk A_ia B_ja C_ka):
    an index that no Σ binds and the left side does not have, written twice or more, is summed
    over the smallest product that holds it (x_i A_ij x_j is Σ_i,j; y_i = tanh(W_ij x_j) sums
    inside tanh; A_ii is the trace), and in a sum over each term that writes it twice
    (A_ij x_j + A_ji x_j). An index written once, or once in each of two terms (x_i + y_i), stays
    free, which the reader refuses with what to write."""
    bound = {i for n in walk(rhs) if isinstance(n, Sum) for i in n.indices}
    for c in free_indices(rhs):
        if c in out_names or c in bound:
            continue
        rhs = _einstein(rhs, c)
    return rhs


def _einstein(node, c):
    """node with c summed over the smallest product that holds its places; where they meet first
    at a sum, in each of its terms that writes c twice or more, as Einstein sums per term
    (A_ij x_j + A_ji x_j; a term that writes it once keeps it free: A_ij x_j + b_j is refused)."""
    target = _product_holding(node, c)
    if target is not None:
        return map_nodes(node, lambda n: Sum((c,), n) if n == target else n)
    if _written(node, c) < 2:
        return node
    if isinstance(node, Op) and node.op in ("+", "-"):
        return Op(node.op, tuple(_einstein(a, c) for a in node.args))
    inner = [k for k in _children(node) if _written(k, c) == _written(node, c)]
    if inner and isinstance(node, (Op, Call, Sum)):                 # tanh(A_ij x_j + A_ji x_j)
        new = _einstein(inner[0], c)
        if isinstance(node, Call):
            return Call(node.name, new)
        if isinstance(node, Sum):
            return replace(node, body=new)
        return Op(node.op, tuple(new if k is inner[0] else k for k in node.args))
    return node


def size_symbol(name: str) -> sp.Symbol:
    """A size name in an index place (w[k-j+1] with w: k): a number, not an index."""
    return sp.Symbol(name, integer=True, positive=True)


def _ordered_symbols(e):
    return [s for s in preorder(e) if isinstance(s, sp.Symbol) and s.is_integer
            and not s.is_positive]


# ---- reading --------------------------------------------------------------------------------
def is_equation(text: str) -> bool:
    """Whether the input, in either notation, is an equation (Y = ..., Y[i,j] = ...)."""
    if is_index_notation(text):
        return isinstance(parse_index(text), tuple)
    from . import nodes as N
    from .parse import parse
    return isinstance(parse(text), N.Equation)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    with open(GRAMMAR, encoding="utf-8") as f:
        grammar = f.read()
    from .parse import cached_lark  # its tables kept between runs, as JSON
    return cached_lark(grammar, parser="lalr", propagate_positions=False, maybe_placeholders=False)


def _index_list(text: str, tok) -> list:
    """The indices of Σ_pq / Σ_p,q / Σ_{p,q} / X_ip: one letter each unless written with commas."""
    if text.startswith("{") and "," not in text:
        names = list(text[1:-1].replace(" ", ""))   # Σ_{ik}: one letter each, as Σ_ik and X_{ik}
    elif text.startswith("{"):
        names = [t.strip() for t in text[1:-1].split(",")]
    elif "," in text:
        names = text.split(",")
    else:
        names = list(text)
    if not names:
        raise ParseError(f"{tok} names no index", "", None)
    for n in names:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", n):
            raise ParseError(f"{n!r} is not an index name", "", None)
    return names


@dataclass(frozen=True)
class _Stride:
    """2i in an index place: a stride, not supported; as the whole of X_{1j}, the seeds'
    one character per index (X[1,j]) where X has two indices."""
    num: str
    name: str

    def refuse(self, hint=""):
        raise UnsupportedError(f"the strided index {self.num}{self.name} is not supported: an index place "
                               "holds a sum or difference of indices and integers (x[n+j-1])" + hint)


def _no_stride(*items):
    for i in items:
        if isinstance(i, _Stride):
            i.refuse()


def _strided(i):
    """2i in a place written with brackets or with + or - (x[2i+j-1], x_{2i+j}): the index times
    its stride, unambiguous there (a lone x_{2i} may be the seeds' X[2,i]: _ToTree.bref)."""
    if isinstance(i, _Stride):
        if not re.fullmatch(r"\d+", i.num) or len(i.name) != 1 and not i.name.isidentifier():
            i.refuse()
        return sp.Integer(int(i.num)) * index_symbol(i.name)
    return i


def _name_checks(name):
    if name in ("max", "min", "argmax", "argmin"):
        raise UnsupportedError(f"{name} over an index ({name}_j X_ij, max-pooling) is not supported: "
                               "index notation here sums (Σ_j); max(X_ij, 0) is relu(X_ij)")
    if _is_function_name(name):
        # softmax_j(e_ij), exp_i(z), log_softmax(z)_j were a vector named softmax, exp or log
        # times the bracket, silently
        raise UnsupportedError(f"{name} is a function, not a variable to index: a subscript on a function "
                               f"({name}_j(...)) is not read; write the entry as a formula of entries "
                               f"(exp(z_i), and softmax_j(e_ij) as exp(e_ij) / Σ_k exp(e_ik))")


def _is_function_name(name) -> bool:
    """A name of more than one letter that is a function of either language (exp, Softmax,
    log_softmax, tr), not a Greek letter (σ_i, sigma_i, φ_i are entries)."""
    from .shapes import CALLS
    return len(name) > 1 and name.lower() not in GREEK and (
        _function_name(name) in F.TABLE or _function_name(name) in CALLS or name.lower() in CALLS)


@v_args(inline=True)
class _ToTree(Transformer):
    """One method per grammar rule."""

    def number(self, tok):
        text = str(tok)
        return Num(Fraction(text)) if re.fullmatch(r"\d+", text) else Num(float(text))

    def scalar(self, tok):
        name = _name(tok)
        if len(name) > 1 and _function_name(name) in F.TABLE and name.lower() not in GREEK:
            # `log Y_ij` would be a variable named log times Y_ij: a misreading, refused
            raise IndexCalcError(f"{name} is a function, written here without brackets: write {name}(...) "
                                 f"around its argument ({name}(Y_ij), not {name} Y_ij)")
        return Scalar(name)

    def ref(self, tok, indices):
        return _ref(_name(tok), [_strided(i) for i in indices])

    def bref(self, tok, indices):
        """X_{i,p}; X_{pq} (letters only, no comma) is one letter per index, as δ_{pq} in LaTeX;
        X_{1j} is X[1,j] as X_1j is, where X has two indices (the reader checks: for a vector
        x_{2i} would be a stride)."""
        if len(indices) == 1 and isinstance(indices[0], _Stride):
            st = indices[0]
            if not re.fullmatch(r"\d+", st.num):
                st.refuse()
            places = [sp.Integer(int(c)) for c in st.num] + [index_symbol(c) for c in st.name]
            _name_checks(_name(tok))
            return Ref(_name(tok), tuple(places), split=st.num + st.name)
        _no_stride(*indices)
        if len(indices) == 1 and indices[0].is_Integer and indices[0] >= 10:    # a_{12}: the reader decides
            return Ref(_name(tok), tuple(indices), split=str(indices[0]))
        if len(indices) == 1 and indices[0].is_Symbol and len(indices[0].name) > 1 and indices[0].name.isalpha():
            indices = [index_symbol(c) for c in indices[0].name]
        return _ref(_name(tok), indices)

    def subref(self, tok):
        name, sub = str(tok).split("_", 1)
        r = _ref(_name(name), [sp.Integer(int(c)) if c.isdigit() else index_symbol(c) for c in sub])
        return replace(r, written=str(tok)) if isinstance(r, Ref) else r

    def indices(self, *items):
        return list(items)

    def iname(self, tok):
        return index_symbol(str(tok))

    def inum(self, tok):
        if not re.fullmatch(r"\d+", str(tok)):
            raise ParseError(f"the index {tok} is not an integer", "", None)
        return sp.Integer(int(str(tok)))

    def istride(self, num, name):
        return _Stride(str(num), str(name))

    def istride_r(self, name, num):
        _Stride(str(num), str(name)).refuse()

    def iadd(self, a, b):
        return _strided(a) + _strided(b)

    def isub(self, a, b):
        return _strided(a) - _strided(b)

    def ineg(self, a):
        _no_stride(a)
        return -a

    def add(self, a, b):
        return Op("+", (a, b))

    def sub(self, a, b):
        return Op("-", (a, b))

    def neg(self, a):
        if isinstance(a, Num):
            return Num(-a.value)
        return Op("neg", (a,))

    def chain(self, first, *links):
        out = first
        for op, b in links:
            if op == "/" and isinstance(b, Num) and b.value == 0:
                raise IndexCalcError("division by zero")
            out = Op(op, (out, b))
        return out

    def times(self, b):
        return ("*", b)

    def over(self, b):
        return ("/", b)

    def sigma(self, tok, body):
        sub, _, top = str(tok).split("_", 1)[1].partition("^")
        sub, bounds = sub.strip(), ()
        m = re.fullmatch(r"\{?\s*([^{}∈]+?)\s*∈\s*\[\s*([^\[\]]+?)\s*\]\s*\}?", sub)
        if m and not top:                        # Σ_{i ∈ [n]}: [n] is 1, ..., n, as Σ_{i=1}^{n}
            sub, top = "{" + m.group(1) + "=1}", m.group(2)
        if re.search(r"[<>≤≥∈]", sub):          # Σ_{i<j}, Σ_{k ∈ N(i)}: what only j≠i says here
            raise UnsupportedError(f"{tok}: a Σ under a condition is not supported, but for leaving out the "
                                   "diagonal (Σ_{j≠i}, Σ_{i,j: i≠j}); over all pairs i<j of a symmetric "
                                   "summand that is half of Σ_{i,j: i≠j}")
        excluded = _EXCLUDED.fullmatch(sub)
        if excluded:                             # Σ_{j≠i}, Σ_{i,j: i≠j}: the terms where j = i left out
            if top:
                raise UnsupportedError(f"{tok}: a Σ with a condition takes no upper bound")
            listed, a, b = excluded.groups()
            names = _index_list("{" + listed + "}", tok) if listed else [a]
            if a not in names:
                raise IndexCalcError(f"{tok}: the condition {a}≠{b} is not about the index the Σ sums over")
            one_minus = Op("-", (Num(Fraction(1)), Delta(index_symbol(a), index_symbol(b))))
            return Sum(tuple(names), Op("*", (one_minus, body)), (), () if b in names else (b,))
        if "=" in sub:                           # Σ_{j=1}^{k}: from 1 to a size; Σ_{i,j=1}^{n}: each index
            head, _, low = sub.strip("{}").partition("=")
            heads = _index_list(head.strip(), tok) if "," in head else [head.strip()]
            bounds = tuple(_bound(f"{h}={low}", top.strip(), str(tok)) for h in heads)
            sub = "{" + ",".join(b[0] for b in bounds) + "}"
        elif top:
            raise IndexCalcError(f"{tok} has an upper bound but no lower one: write Σ_{{j=1}}^{{k}}, or Σ_j "
                                 "(the range of j is then the size of the place it fills)")
        names = _index_list(sub, tok)
        if len(set(names)) != len(names):
            raise IndexCalcError(f"{tok} names an index twice")
        return Sum(tuple(names), body, bounds)

    def sigma_neg(self, tok, body):
        """Σ_i -x_i log(x_i): the minus is the summand's."""
        return self.sigma(tok, Op("neg", (body,)))

    def power(self, a, e):
        return Op("^", (a, e))

    def exponent(self, e):
        """x_i^(1/2), x_i^{2}: a bracketed exponent."""
        return e

    def exp_num(self, tok):
        return self.number(tok)

    def exp_neg(self, tok):
        return Num(-self.number(tok).value)

    def exp_name(self, tok):
        if str(tok) in ("T", "⊤"):
            raise UnsupportedError("^T transposes a matrix; in index notation swap the indices instead (X[j,i])")
        return Scalar(str(tok))

    def call(self, tok, *args):
        name = _function_name(str(tok).strip())
        if name == "max" and len(args) == 2 and Num(0) in args:       # max(X_ij, 0), \max(0, X_ij)
            return Call("relu", args[1] if args[0] == Num(0) else args[0])
        if name == "max":
            raise UnsupportedError("max of entries is read as relu only as max(X_ij, 0); max over an "
                                   "index (max-pooling) is not supported")
        if name in ("softmax", "log_softmax"):
            raise UnsupportedError(f"{name}(...) in index notation needs the index it normalises along: "
                                   f"{name}_j(e_ij) (along j), or write it out, exp(e_ij) / Σ_k exp(e_ik)")
        if name not in F.TABLE and not (len(name) == 1 and name.islower()):
            raise IndexCalcError(f"unknown function {name!r} in index notation (known: "
                                 f"{', '.join(sorted(F.TABLE))}, or a one-letter f, g, h)")
        if len(args) != 1:
            raise IndexCalcError(f"{name} takes one argument (an entry), not {len(args)}")
        return Call(name, args[0])

    def softmax_over(self, tok, arg):
        head, _, index = str(tok).rpartition("_")
        self.softmaxes = True
        return _Over(index.strip("{}"), arg, head.lower().startswith("log"))

    def equation(self, lhs, rhs):
        return ("equation", lhs, rhs)


def _write_out_softmax(tree, text: str):
    """softmax_j(A) as exp(A) / Σ_k exp(A with j as k), log_softmax_j(A) as A - log(Σ_k exp(…)):
    the normalising sum runs along j with the other indices of A fixed (α_ij = softmax_j(e_ij),
    the attention weights of a paper); k is a letter the input does not write."""
    letters = set(re.findall(r"[A-Za-z]", text))
    pool = iter([c for c in "kmnlpqruvwyzbcdghjo" if c not in letters] + [f"k{n}" for n in range(1, 100)])

    def out(node):
        if isinstance(node, tuple):
            return tuple(out(n) if not isinstance(n, str) else n for n in node)
        return _expand(node)

    def _expand(node):
        if isinstance(node, _Over):
            arg = _expand(node.arg)
            name = f"{'log_' if node.log else ''}softmax_{node.index}"
            if node.index not in free_indices(arg):
                raise IndexCalcError(f"{name}(...) normalises along {node.index}, which its argument does not "
                                     f"have as a free index")
            k = next(pool)
            moved = map_places(arg, lambda e: e.xreplace({index_symbol(node.index): index_symbol(k)}))
            moved = map_nodes(moved, lambda n: replace(n, written="") if isinstance(n, Ref) else n)
            total = Sum((k,), Call("exp", moved))
            return Op("-", (arg, Call("log", total))) if node.log else Op("/", (Call("exp", arg), total))
        if isinstance(node, Sum):
            return replace(node, body=_expand(node.body))
        if isinstance(node, Op):
            return Op(node.op, tuple(_expand(a) for a in node.args))
        if isinstance(node, Call):
            return Call(node.name, _expand(node.arg))
        return node
    return out(tree)


def _function_name(raw: str) -> str:
    """A function as written: σ, ReLU, Tanh, GELU, SiLU, swish, maximum (the matrix language's
    spellings, SPEC §1.1: lower case first, then the aliases)."""
    from .shapes import ALIASES as MATRIX_ALIASES
    if raw in ALIASES:
        return ALIASES[raw]
    if len(raw) > 1 and raw.lower() in F.TABLE:
        return raw.lower()
    alias = MATRIX_ALIASES.get(raw.lower() if len(raw) > 1 else raw)
    return alias if alias else raw


# Σ_{j≠i}, Σ_{j != i}, Σ_{i,j: i≠j} (or with , ; |): a sum that leaves out the diagonal
_EXCLUDED = re.compile(r"\{\s*(?:([A-Za-z][A-Za-z0-9]*(?:\s*,\s*[A-Za-z][A-Za-z0-9]*)*)\s*[:;,|]\s*)?"
                       r"([A-Za-z][A-Za-z0-9]*)\s*(?:≠|!=)\s*([A-Za-z][A-Za-z0-9]*)\s*\}")


def _sum_the_others(node, bound: set):
    """Σ_{i≠j} x_i x_j sums over i and j (the pairs off the diagonal) where nothing outside binds
    j; Σ_{j≠i} A_ij x_j in y_i = ... or inside Σ_i sums over j alone."""
    if isinstance(node, Sum):
        more = tuple(o for o in node.others if o not in bound and o not in node.indices)
        indices = node.indices + more
        return Sum(indices, _sum_the_others(node.body, bound | set(indices)), node.bounds)
    if isinstance(node, Op):
        return Op(node.op, tuple(_sum_the_others(a, bound) for a in node.args))
    if isinstance(node, Call):
        return Call(node.name, _sum_the_others(node.arg, bound))
    return node


def _bound(sub: str, top: str, tok: str):
    """(index, size) of Σ_{j=1}^{k}: indices run from 1; the upper bound is a size (a name, a
    number, or a sum of them such as d-k+1)."""
    from .shapes import _size_sum
    name, _, low = sub.strip("{}").partition("=")
    name, low, top = name.strip(), low.strip(), top.strip().strip("{}").strip()
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
        raise ParseError(f"{name!r} is not an index name", "", None)
    if low != "1":
        raise UnsupportedError(f"{tok}: indices run from 1, as in the seeds (write Σ_{{{name}=1}}^{{...}})")
    if not top:
        raise IndexCalcError(f"{tok} has a lower bound but no upper one: write Σ_{{{name}=1}}^{{k}}")
    if re.fullmatch(r"\d+", top):
        size = int(top)
        if size < 1:
            raise IndexCalcError(f"{tok}: the upper bound must be at least 1")
    elif re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", top):
        size = top
    else:
        size = _size_sum(f"Σ_{name}", top)
    return name, size


def _name(tok) -> str:
    """A name as written, LaTeX's backslash dropped (\\alpha is alpha, \\delta the delta)."""
    return str(tok).lstrip("\\")


def _ref(name, indices):
    _name_checks(name)
    if name in DELTAS:
        if len(indices) != 2:
            raise IndexCalcError(f"the Kronecker delta {name} takes two indices, not {len(indices)}")
        return Delta(indices[0], indices[1])
    return Ref(name, tuple(indices))


def parse_index(text: str):
    """Text -> ("equation", lhs, rhs) or an expression tree; ParseError with a caret."""
    if not text or not text.strip():
        raise ParseError("empty expression", text, 1)
    from .parse import no_fraction_exponent, one_line
    text = unsubscript(from_latex(one_line(einsum_text(text))))
    no_fraction_exponent(text)                   # x_i^1/2: the power 1/2, or x_i / 2?
    for k, v in TYPESET.items():               # as pasted from papers: x_i², −, Xᵀ
        text = text.replace(k, v)
    m = ENTRY_OF_GROUP.search(text)
    if m and "=" in text[m.end():]:
        raise UnsupportedError("the left side is an entry of a bracketed expression ((x * w)_n = …): name "
                               "the entry instead (a_n = Σ_j x_{n+j-1} w_j)")
    if m:
        raise UnsupportedError("an entry of a bracketed expression ([W x]_i, (A B)_ij) is not read: write "
                               "the entry as its sum (Σ_j W_ij x_j, Σ_k A_ik B_kj)")
    text = _ABS.sub(r"abs(\1)", text)           # |x_i| of an entry is its absolute value
    try:
        tree = _parser().parse(text)
        reader = _ToTree()
        out = reader.transform(tree)
        return _write_out_softmax(out, text) if getattr(reader, "softmaxes", False) else out
    except UnexpectedCharacters as e:
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        raise ParseError(f"unexpected character {ch!r} in index notation", text, e.column) from None
    except UnexpectedEOF:
        raise ParseError("the input ends too early", text, len(text) + 1) from None
    except UnexpectedToken as e:
        if e.token.type == "$END":
            raise ParseError("the input ends too early", text, len(text) + 1) from None
        raise ParseError(f"unexpected {str(e.token)!r} in index notation", text, e.column) from None
    except UnexpectedInput as e:  # pragma: no cover - other lark input errors
        raise ParseError("cannot parse this", text, getattr(e, "column", 1)) from None
    except VisitError as e:
        if isinstance(e.orig_exc, ParseError) and e.orig_exc.column is None:
            raise ParseError(e.orig_exc.reason, text, 1) from None
        if isinstance(e.orig_exc, IndexCalcError):
            raise e.orig_exc from None
        raise ParseError(f"cannot read this: {e.orig_exc}", text, 1) from None


# ---- the problem: tree, variables, ranges -----------------------------------------------------
@dataclass
class IndexProblem:
    text: str
    rhs: object                    # the tree of the right side (or of the whole expression)
    output: str | None             # the left side's name (None for a scalar expression)
    out_indices: tuple             # the left side's index names, in order
    variables: Variables
    ranges: dict                   # index name -> size (name, int or N.LinSize)
    sizes: set                     # the size names that may appear as scalars

    @property
    def out_shape(self) -> tuple:
        """The output's shape in the engine's convention (a vector is (n, 1), a scalar (1, 1))."""
        return shape_of_rank([self.ranges[i] for i in self.out_indices])

    def symbol(self, name):
        return index_symbol(name)

    # what a derivation asks of its problem (index_pipeline; tensor_pipeline's TensorProblem
    # answers the same for the matrix language on tensors)
    def register(self, ctx):
        register(self, ctx)

    def index_form(self, ctx):
        return lower(self, ctx)

    def value(self, env: dict, sizes: dict):
        """The input's value, from its parsed tree (never the lowering)."""
        from .index_eval import Evaluator
        return Evaluator(self, env, sizes).output()

    def domains(self) -> dict:
        from .index_eval import domains
        return domains(self)

    def rule_steps(self, R, body) -> list:
        """The rules the derivative uses, stated before it (index notation states none)."""
        return []


def read(text: str, decls: dict | None = None, extra: dict | None = None, free_ok: bool = False,
         out_shape: tuple | None = None) -> IndexProblem:
    """Parse index notation and infer every variable's shape and every index's range.
    `decls` are --where's shapes; `extra` adds variables that may appear (dY in backprop).
    With `free_ok` (a claimed derivative), an expression may keep one free index: its value is
    then indexed by it; `out_shape` (the derivative's engine shape) is then the shape of the
    claim's left side, whatever its name."""
    decls = dict(decls or {})
    parsed = parse_index(text)
    if isinstance(parsed, tuple):
        _, lhs, rhs = parsed
        if isinstance(lhs, Ref):
            out, out_idx = lhs.name, lhs.indices
            for k, i in enumerate(out_idx):
                if not (i.is_Symbol):
                    raise IndexCalcError(f"the left side {lhs.text} must be indexed by plain indices, "
                                         f"not {index_text(i)}")
            names = [i.name for i in out_idx]
            if len(set(names)) != len(names):
                raise IndexCalcError(f"the left side {lhs.text} repeats an index")
        elif isinstance(lhs, Scalar):
            out, names = lhs.name, []
        else:
            raise IndexCalcError("the left side of an entry equation is one indexed entry, e.g. Y[i,j] or Y_ij")
    else:
        rhs, out, names = parsed, None, []
    rhs = _sum_the_others(rhs, set(names))
    if free_ok and out is None:
        free = free_indices(rhs)
        if len(free) > 1:
            raise IndexCalcError(f"the claim has the free indices {', '.join(free)}: write it as an entry "
                                 f"equation (G[{','.join(free)}] = ...) so that the order of its indices is clear")
        if free:
            out, names = "the claim", free
    if out_shape is not None and out is not None and len([d for d in out_shape if d != 1]) == len(names):
        decls[out] = tuple(out_shape)
    rhs = _one_spelling(rhs, decls)
    written = {n.name for n in walk(rhs) if isinstance(n, (Ref, Scalar))} | ({out} - {None})
    decls = {spelled_as(k, written): v for k, v in decls.items()}        # mu: n declares the μ of μ_i
    return _Reader(text, rhs, out, names, decls, extra or {}).run()


def _one_spelling(rhs, decls):
    """Each Greek letter spelled one way, as the matrix language does (shapes._one_spelling): as
    --where declares it, else as the expression first writes it. λ Σ_i x_i^2 + \\lambda Σ_i x_i
    had two variables λ and lambda (by λ, the second term left out)."""
    from .shapes import greek_key
    written = list(dict.fromkeys(n.name for n in walk(rhs) if isinstance(n, (Ref, Scalar))))
    spelled: dict = {}
    for n in [*decls, *written]:
        if n in written or greek_key(n) in {greek_key(m) for m in written}:
            spelled.setdefault(greek_key(n), n)
    rename = {n: spelled[greek_key(n)] for n in written if spelled.get(greek_key(n), n) != n}
    if not rename:
        return rhs
    return map_nodes(rhs, lambda n: replace(n, name=rename[n.name]) if isinstance(n, (Ref, Scalar))
                     and n.name in rename else n)


class _Reader:
    def __init__(self, text, rhs, out, out_names, decls, extra):
        self.text, self.rhs, self.out, self.out_names = text, rhs, out, list(out_names)
        self.decls = {**decls, **extra}
        self.size_names = {d for shape in self.decls.values() for d in shape if isinstance(d, str)}
        self.size_names |= {n for shape in self.decls.values() for d in shape if isinstance(d, N.LinSize)
                            for n, _ in d.terms}
        bounds = [b for n in walk(rhs) if isinstance(n, Sum) for _, b in n.bounds]
        self.size_names |= {b for b in bounds if isinstance(b, str)}
        self.size_names |= {n for b in bounds if isinstance(b, N.LinSize) for n, _ in b.terms}
        self.u = _Sizes()
        self.rank: dict = {}                # variable -> number of indices
        self.place: dict = {}               # (variable, k) -> size
        self.index: dict = {}               # index name -> size
        self.seen: dict = {}                # index name -> (ref text, variable) where its range came from
        self.order: list = []               # variables, in order of first appearance

    # -- checks of the tree
    def run(self) -> IndexProblem:
        # w_0 with w_0 declared in --where is that name, not the entry 0 of w (the bias of
        # y_i - w_0 - Σ_j X_ij w_j was read as w's entry 0, out of range: 0, and silently lost)
        self.rhs = map_nodes(self.rhs, lambda n: Scalar(n.written) if isinstance(n, Ref) and n.written in self.decls
                             else n)
        self._check_splits()
        self._rename_clashes()
        e_is_exp = "e" not in self.decls                               # Σ_j e^{x_j}, 2^{x_i}
        self.rhs = map_nodes(self.rhs, lambda n: _indexed_power(n, e_is_exp))
        sizes = {index_symbol(n): size_symbol(n) for n in self.size_names}    # w[k-j+1], w: k
        self.rhs = map_places(self.rhs, lambda e: e.xreplace(sizes))
        written = {i for n in walk(self.rhs) if isinstance(n, Sum) for i in n.indices}
        self.rhs = _summation_convention(self.rhs, self.out_names)
        refs = [n for n in walk(self.rhs) if isinstance(n, Ref)]
        if self.out is not None and any(r.name == self.out for r in refs) or \
                self.out is not None and any(isinstance(n, Scalar) and n.name == self.out for n in walk(self.rhs)):
            shifted = [r for r in refs if r.name == self.out and not all(i.is_Symbol for i in r.indices)]
            raise IndexCalcError(f"the output {self.out} also appears on the right side" + (
                f" ({self._lhs_text()} = f({shifted[0].text}) is a recurrence, one vector per step: write one "
                "step with a name for each vector, e.g. h = tanh(W_hh h_prev + W_xh x + b))" if shifted else ""))
        free = free_indices(self.rhs)
        self._check_sums(self.rhs, set(), (set(free) | set(self.out_names)) & written)
        if self.out is None and free and free != self.out_names:
            raise IndexCalcError(f"the index {free[0]} is free, but an expression without a left side is a "
                                 f"scalar: sum over it (Σ_{free[0]} ...) or write an entry equation "
                                 f"(Y[{','.join(free)}] = ...)")
        extra = [i for i in free if i not in self.out_names]
        if extra:
            raise IndexCalcError(f"the index {extra[0]} is free on the right side but not on the left side "
                                 f"{self._lhs_text()}: sum over it (Σ_{extra[0]}) or add it to the left side")
        missing = [i for i in self.out_names if i not in free]
        if missing:
            raise IndexCalcError(f"the index {missing[0]} of the left side {self._lhs_text()} does not "
                                 "appear on the right side")
        names = {s.name for r in refs for i in r.indices for s in _ordered_symbols(i)}
        names |= {s.name for n in walk(self.rhs) if isinstance(n, Delta) for s in _ordered_symbols(n.a) + _ordered_symbols(n.b)}
        names |= set(self.out_names) | {i for n in walk(self.rhs) if isinstance(n, Sum) for i in n.indices}
        variables = {r.name for r in refs} | {n.name for n in walk(self.rhs) if isinstance(n, Scalar)
                                              and n.name not in self.size_names}
        for i in sorted(names):
            if i in variables or i in self.size_names:
                raise IndexCalcError(f"the index {i} has the name of a {'size' if i in self.size_names else 'variable'}; "
                                     "rename one of them")
        self.index_names = names
        # -- ranges
        for r in refs:
            self._ref(r, lhs=False)
        for n in walk(self.rhs):
            if isinstance(n, Scalar):
                self._scalar(n.name)
        self._capital_scalars()
        if self.out is not None:
            self._ref(Ref(self.out, tuple(index_symbol(i) for i in self.out_names)), lhs=True)
        for n in walk(self.rhs):
            if isinstance(n, Delta):
                self._delta(n)
            if isinstance(n, Sum):
                for i, size in n.bounds:
                    self._bind(i, size, _Bound(i, size), 0)
        self._name_sizes()
        self._entries_exist(refs)
        self._past_the_bound(refs)
        self._arithmetic(refs)
        return self._problem()

    def _check_splits(self):
        """X_{1j} is X[1,j] only where X has that many indices: declared so, seen so elsewhere,
        or an undeclared upper-case name (a matrix); for a vector, x_{2i} is a stride."""
        refs = [n for n in walk(self.rhs) if isinstance(n, Ref)]
        digits = {}
        for r in refs:
            if not r.split:
                continue
            d = self.decls.get(r.name)
            ranks = {len(o.indices) for o in refs if o.name == r.name and not o.split}
            if d is not None:
                ranks.add(len([x for x in d if x != 1]) if len(d) != 2 else 2)
            elif r.name[:1].isupper() and not ranks:
                ranks.add(2)
            if r.split.isdigit():             # a_{12}: a_12 (one digit per index) where a has that many
                if ranks == {len(r.split)}:
                    digits[r] = Ref(r.name, tuple(sp.Integer(int(c)) for c in r.split))
                continue
            if ranks != {len(r.indices)}:
                num = "".join(c for c in r.split if c.isdigit())
                _Stride(num, r.split[len(num):]).refuse(
                    f"; for the entry ({', '.join(r.split)}) of a {len(r.indices)}-index {r.name} write "
                    f"{r.name}_{{{','.join(r.split)}}} or declare {r.name} with --where")
        if digits:
            self.rhs = map_nodes(self.rhs, lambda n: next((v for k, v in digits.items() if k is n), n))

    def _rename_clashes(self):
        """A Σ or the left side that binds a name that is also a size (Σ_k X_ik W_kj with
        W: k×n, y_k = ... with W: k×m): within that binding the name is the index, as a
        reader takes it, so the index gets a fresh name there; elsewhere the name stays the
        size, a number in an index place (w[k-j+1])."""
        bound = {i for n in walk(self.rhs) if isinstance(n, Sum) for i in n.indices} | set(self.out_names)
        clash = bound & self.size_names
        if not clash:
            return
        used = set(self.size_names) | set(self.decls) | set(self.out_names) | bound | {self.out}
        for n in walk(self.rhs):
            if isinstance(n, (Ref, Scalar)):
                used.add(n.name)
            if isinstance(n, (Ref, Delta)):
                places = n.indices if isinstance(n, Ref) else (n.a, n.b)
                used |= {str(x) for e in places for x in sp.sympify(e).free_symbols}
        pool = [c for c in "pqrstuvwabcdefghjlmnoxyz" if c not in used]
        pool += [f"i{k}" for k in range(1, 100) if f"i{k}" not in used]
        fresh = iter(pool)

        def renamed(node, ren):
            sub = {index_symbol(a): index_symbol(b) for a, b in ren.items()}
            return map_places(node, lambda e: e.xreplace(sub))

        def binding(node):                       # inner Σs first: map_nodes is bottom up
            ren = {i: next(fresh) for i in node.indices if i in clash} if isinstance(node, Sum) else {}
            if not ren:
                return node
            return replace(node, indices=tuple(ren.get(i, i) for i in node.indices), body=renamed(node.body, ren),
                           bounds=tuple((ren.get(i, i), size) for i, size in node.bounds),
                           others=tuple(ren.get(i, i) for i in node.others))
        self.rhs = map_nodes(self.rhs, binding)
        out = {i: next(fresh) for i in self.out_names if i in clash}
        if out:
            self.rhs = renamed(self.rhs, out)
            self.out_names = [out.get(i, i) for i in self.out_names]

    def _lhs_text(self):
        return f"{self.out}[{','.join(self.out_names)}]" if self.out_names else str(self.out)

    def _check_sums(self, node, bound, free):
        """`free`: the indices free in the whole right side or on the left side that a written Σ
        binds (Einstein's convention sums no such index). A Σ over one of them (a_ij = exp(e_ij)
        / Σ_j exp(e_ij)) shadows it: refused as Σ_i inside Σ_i is (the engine took both j for one
        index: its own check failed, exit 3)."""
        if isinstance(node, Sum):
            for i in node.indices:
                if i in bound:
                    raise IndexCalcError(f"Σ_{i} inside another Σ_{i}: name the inner index differently")
                if i in free:
                    raise IndexCalcError(f"Σ_{i} sums over {i}, which is also a free index "
                                         f"{'of the left side ' + self._lhs_text() if i in self.out_names else 'outside it'}"
                                         f": name the summed index differently (exp(e_ij) / Σ_k exp(e_ik))")
                if i not in free_indices(node.body):
                    raise IndexCalcError(f"Σ_{i} sums over {i}, which does not appear in its scope "
                                         "(a Σ reaches to the next + or - at its level; bracket what it sums)")
            self._check_sums(node.body, bound | set(node.indices), free)
        elif isinstance(node, Op):
            for a in node.args:
                self._check_sums(a, bound, free)
        elif isinstance(node, Call):
            self._check_sums(node.arg, bound, free)

    # -- variables
    def _variable(self, name, rank, where):
        if name in self.rank:
            if self.rank[name] != rank:
                raise ShapeError(f"{name} has {self.rank[name]} indices in one place and {rank} in {where}")
            return
        self.rank[name] = rank
        self.order.append(name)
        d = self.decls.get(name)
        if d is not None:
            dims = [x for x in d if x != 1] if rank < len([x for x in d if x is not None]) or len(d) == 2 else list(d)
            if len(d) == 2 and rank == 2:
                dims = list(d)
            if len(dims) != rank:
                raise ShapeError(f"{name} is declared {show_dims(d)} but {where} gives it {rank} "
                                 f"{'index' if rank == 1 else 'indices'}")
            for k, x in enumerate(dims):
                self.place[name, k] = self.u.fresh() if x is None else x
        else:
            for k in range(rank):
                self.place[name, k] = self.u.fresh()

    def _capital_scalars(self):
        """W in Σ_i (y_i - W x_i)^2: a name without indices is a scalar in index notation, but an
        upper-case name is a matrix by default (SPEC §1), and a reader of W x_i sees one: refused
        unless declared, a size, or only a divisor (Σ_n t_n / N, / sqrt(D): a count, a scale)."""
        outside = []

        def visit(node, divisor):
            if isinstance(node, Scalar) and not divisor:
                outside.append(node.name)
            elif isinstance(node, Sum):
                visit(node.body, divisor)
            elif isinstance(node, Op):
                for k, a in enumerate(node.args):
                    visit(a, divisor or (node.op == "/" and k == 1))
            elif isinstance(node, Call):
                visit(node.arg, divisor)
        visit(self.rhs, False)
        for name in dict.fromkeys(outside):
            if re.match(r"[A-Z]", name) and name not in self.decls and name not in self.size_names:
                raise IndexCalcError(
                    f"{name} has no indices, so index notation would read it as a scalar, but an upper-case "
                    f"name is a matrix by default: index it ({name}[i,j], or {name}_ij) or declare it "
                    f"--where \"{name}: scalar\"")

    def _scalar(self, name):
        if name in self.size_names and name not in self.decls:
            return
        if name in self.decls and tuple(self.decls[name]) != N.SCALAR:
            raise ShapeError(f"{name} is declared {show_dims(self.decls[name])}: index it "
                             f"({name}[{','.join('ijkl'[:max(1, len([x for x in self.decls[name] if x != 1]))])}])")
        if name in self.rank and self.rank[name] != 0:
            raise ShapeError(f"{name} is indexed in one place and a scalar in another")
        self._variable(name, 0, name)

    def _ref(self, r: Ref, lhs: bool):
        self._variable(r.name, len(r.indices), r.text)
        for k, e in enumerate(r.indices):
            dim = self.place[r.name, k]
            self._affine_check(e, r)
            if e.is_Symbol and not e.is_positive:
                self._bind(e.name, dim, r, k)

    def _past_the_bound(self, refs):
        """Σ_{i=1}^{n-1} (x_{i+1} - x_i)^2 with x undeclared: x's size came from the bound (n - 1)
        through x_i, so x_{i+1} read past it, as 0, and the last difference was silently lost.
        Refused: the size is the user's to declare."""
        bounded = {i for n in walk(self.rhs) if isinstance(n, Sum) for i, _ in n.bounds}
        for r in refs:
            if r.name in self.decls:
                continue
            for k, e in enumerate(r.indices):
                syms = [x for x in e.free_symbols if x.name in self.index]
                if e.is_Symbol or len(syms) != 1 or syms[0].name not in bounded or e.coeff(syms[0]) != 1:
                    continue
                shift = e - syms[0]
                if shift.is_Integer and shift > 0 and \
                        self.u.find(self.place[r.name, k]) == self.u.find(self.index[syms[0].name]):
                    raise UnsupportedError(
                        f"{r.written or r.text} reads past the size of {r.name}, which its Σ's bound gave it "
                        f"(through {r.name}'s other entries): a Σ that stops before a variable's last "
                        "entry is not supported yet (the entry past it would be read as 0)")

    def _entries_exist(self, refs):
        """x_0, x[0], or x_5 of a declared x: 3 is no entry (indices run from 1, SPEC §1.3): refused,
        not read as an entry out of range (0), which the guard cannot see."""
        for r in refs:
            for k, e in enumerate(r.indices):
                if not e.is_Integer:
                    continue
                size = self.u.find(self.place[r.name, k])
                if e < 1 or isinstance(size, int) and e > size:
                    name = r.written or r.text
                    raise IndexCalcError(
                        f"{name} is no entry of {r.name}: indices run from 1" +
                        (f" to {size}" if isinstance(size, int) else "") + ", as in the seeds" +
                        (f" (the first entry is {r.name}_1)" if e < 1 else "") +
                        (f"; to use {name} as a name of its own, declare it in --where ({name}: scalar)"
                         if r.written else ""))

    def _affine_check(self, e, r):
        poly = sp.Poly(e, *[s for s in e.free_symbols]) if e.free_symbols else None
        if poly is not None and poly.total_degree() > 1:
            raise UnsupportedError(f"the index {index_text(e)} in {r.text} is not a sum of indices and integers")
        for s in e.free_symbols:
            c = e.coeff(s)
            if not (c.is_Integer and c != 0):
                raise UnsupportedError(f"the strided index {index_text(e)} in {r.text} is not supported: an "
                                       "index place holds a sum or difference of indices and integers (x[n+j-1])")

    def _bind(self, i, dim, r, k):
        if i not in self.index:
            self.index[i] = dim
            self.seen[i] = (r, k)
            return
        r0, k0 = self.seen[i]

        def why():
            a, b = self.u.find(self.index[i]), self.u.find(dim)
            bound = isinstance(r, _Bound) or isinstance(r0, _Bound)
            return (f"the index {i} runs over {a} in {r0.text}{self._decl_note(r0.name)} but over {b} in "
                    f"{r.text}{self._decl_note(r.name)}" +
                    ("; a Σ over part of a variable's entries is not supported yet (sum over all of them, "
                     "or write the first or last term apart)" if bound else ""))
        self.u.unify(self.index[i], dim, why)

    def _decl_note(self, name):
        d = self.decls.get(name)
        return f" ({name}: {show_dims(d)})" if d is not None else ""

    def _delta(self, n: Delta):
        a, b = n.a, n.b
        if a.is_Symbol and b.is_Symbol and a.name in self.index and b.name in self.index:
            self.u.unify(self.index[a.name], self.index[b.name],
                         lambda: f"δ_{a}{b} pairs indices of different ranges "
                                 f"({self.u.find(self.index[a.name])} and {self.u.find(self.index[b.name])})")

    def _name_sizes(self):
        """Readable names for the sizes of the right side's variables that nothing declares."""
        taken = set(self.size_names) | set(self.rank) | set(self.index_names) | {"I", "T"}
        if self.out:
            taken.add(self.out)
        pool = [n for n in AUTO_SIZES_UPPER if n not in taken] + [f"N{k}" for k in range(1, 50)]
        k = 0
        for name in self.order:
            if name == self.out:
                continue
            for p in range(self.rank[name]):
                r = self.u.find(self.place[name, p])
                if _unknown(r):
                    self.u.parent[r] = pool[k]
                    k += 1

    def _arithmetic(self, refs):
        """Ranges of indices that only index arithmetic sets: the valid range."""
        todo = [i for i in self.index_names if i not in self.index or _unknown(self.u.find(self.index[i]))]
        progress = True
        while todo and progress:
            progress = False
            for i in list(todo):
                value = self._valid_range(i, refs)
                if value is None:
                    continue
                if i in self.index:
                    self.u.unify(self.index[i], value, lambda: f"the range of {i} does not fit")
                else:
                    self.index[i] = value
                todo.remove(i)
                progress = True
        if todo:
            i = sorted(todo)[0]
            where = [r.text for r in refs if any(s.name == i for e in r.indices for s in e.free_symbols)]
            summed = any(isinstance(n, Sum) and i in n.indices for n in walk(self.rhs))
            raise ShapeError(f"cannot infer the range of the index {i}: it appears only in "
                             + (f"index arithmetic ({', '.join(where)})" if where else
                                "Kronecker deltas, which do not fix a range (index an entry with it)")
                             + (f"; give its Σ a bound (Σ_{{{i}=1}}^{{n}})" if summed else
                                f"; declare the size of {self.out} (--where \"{self.out}: ...\")" if self.out else ""))

    def _known(self, i):
        return i in self.index and not _unknown(self.u.find(self.index[i]))

    def _valid_range(self, i, refs):
        """From a place α = ±i + rest of size D, the i for which 1 ≤ α ≤ D at every value of
        rest: α = i + rest gives 1 ≤ i ≤ D - max(rest) when min(rest) ≥ 0 (x[n+j-1]); α = rest - i
        (a flip, w[k-j+1]) gives 1 ≤ i ≤ min(rest) - 1 when max(rest) - 1 ≤ D."""
        s = index_symbol(i)
        found = None
        for r in refs:
            for k, e in enumerate(r.indices):
                if s not in e.free_symbols or e.is_Symbol:
                    continue
                sign = e.coeff(s)
                if not sign.is_Integer or sign == 0 or sign < -1:
                    continue
                rest = sp.expand(e - sign * s)
                others = list(rest.free_symbols)
                if any(not x.is_positive and not self._known(x.name) for x in others):
                    continue
                lo, hi = [], []                     # min(rest) and max(rest), as sizes
                const = int(rest.subs({x: 0 for x in others}))
                for x in others:
                    c = int(rest.coeff(x))
                    if x.is_positive:               # a size name: a number
                        lo.append((x.name, c))
                        hi.append((x.name, c))
                        continue
                    R = self.u.find(self.index[x.name])
                    lo.append((R, c) if c < 0 else (1, c))
                    hi.append((R, c) if c > 0 else (1, c))
                low, high = N.lin(*lo, const=const), N.lin(*hi, const=const)
                D = self.u.find(self.place[r.name, k])
                if _unknown(D):
                    continue
                if sign > 1:                        # a stride: 1 ≤ s i + rest ≤ D, sizes as numbers
                    top = N.lin((D, 1), (high, -1))
                    if not (isinstance(low, int) and low >= 1 - sign and isinstance(top, int)):
                        continue
                    value = top // int(sign)
                elif sign == 1:
                    if not (isinstance(low, int) and low >= 0):
                        continue
                    value = N.lin((D, 1), (high, -1))
                else:
                    over = N.lin((high, 1), (D, -1), const=-1)
                    if not (isinstance(over, int) and over <= 0):
                        continue
                    value = N.lin((low, 1), const=-1)
                if isinstance(value, int) and value < 1:
                    raise ShapeError(f"the index {i} in {r.text} has no valid range")
                if found is not None and found != value:
                    raise ShapeError(f"the index {i} has the valid range {found} in one place and {value} in {r.text}; "
                                     f"declare the size of {self.out}")
                found = value
        return found

    def _problem(self) -> IndexProblem:
        def res(d):
            r = self.u.find(d)
            return r
        table = {}
        for name in self.order:
            if name == self.out:
                continue
            dims = [res(self.place[name, k]) for k in range(self.rank[name])]
            d = self.decls.get(name)
            if d is not None and len(d) == 2 and d[0] == 1 and len(dims) == 1:
                shape = (1, dims[0])                     # a declared row vector, b[j]
            else:
                shape = shape_of_rank(dims)
            from .layout import kind_of
            table[name] = Variable(name, kind_of(shape), shape)
        order = self.out_names + sorted(set(self.index_names) - set(self.out_names))   # the output's first
        ranges = {i: res(self.index[i]) for i in order}
        sizes = sorted({x for v in table.values() for x in v.shape if isinstance(x, str)})
        return IndexProblem(self.text, self.rhs, self.out, tuple(self.out_names), Variables(table, sizes),
                            ranges, set(self.size_names))


# ---- lowering to the engine's index form -------------------------------------------------------
def lower(problem: IndexProblem, ctx, node=None) -> sp.Expr:
    """The SymPy index form of the tree, in ctx (whose ranges learn the indices)."""
    node = problem.rhs if node is None else node
    return LOWER[type(node)](problem, ctx, node)


def register(problem: IndexProblem, ctx):
    """The problem's index names are the user's: ranges known to ctx, never a fresh name."""
    for name, dim in problem.ranges.items():
        ctx.ranges[index_symbol(name)] = dim
        ctx._free_used.add(name)


def _num(P, ctx, n: Num):
    v = n.value
    return sp.Float(v) if isinstance(v, float) else sp.Rational(v.numerator, v.denominator)


def _scalar_lower(P, ctx, n: Scalar):
    if n.name in P.sizes and n.name not in P.variables:
        return ctx.size(n.name)
    return sp.Symbol(n.name)


def _ref_lower(P, ctx, n: Ref):
    return sp.IndexedBase(n.name)[tuple(_sizes_in(P, ctx, i) for i in n.indices)]


def _sizes_in(P, ctx, e):
    """An index expression with its size names as the engine's size symbols."""
    sub = {s: ctx.size(s.name) for s in e.free_symbols if s.name in P.sizes}
    return e.xreplace(sub) if sub else e


def _sum_lower(P, ctx, n: Sum):
    return ctx.sum(lower(P, ctx, n.body), *[index_symbol(i) for i in n.indices])


# what each Op means, for SymPy entries (lower) and NumPy arrays (index_eval) alike
OPS = {"+": operator.add, "-": operator.sub, "neg": operator.neg, "*": operator.mul,
       "/": operator.truediv, "^": operator.pow}


def _op_lower(P, ctx, n: Op):
    return OPS[n.op](*[lower(P, ctx, a) for a in n.args])


LOWER = {
    Num: _num, Scalar: _scalar_lower, Ref: _ref_lower,
    Delta: lambda P, ctx, n: sp.KroneckerDelta(_sizes_in(P, ctx, n.a), _sizes_in(P, ctx, n.b)),
    Sum: _sum_lower, Op: _op_lower,
    Call: lambda P, ctx, n: F.apply(n.name, lower(P, ctx, n.arg)),
}
