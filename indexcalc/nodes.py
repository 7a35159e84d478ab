"""The expression tree: what the parser builds and what the matcher rebuilds.

Every node is immutable (see Node). A node built by the parser has no shape;
`shapes.infer` returns a copy of the tree in which every node carries its shape,
a pair (rows, cols) whose entries are size names (str) or the integer 1.
A column vector is (n, 1), a row vector (1, n), a scalar (1, 1).

The same node types describe closed forms, so a closed form prints back into the
input language and parses again.
"""
from __future__ import annotations

import math

from dataclasses import dataclass
from fractions import Fraction

Shape = tuple  # (rows, cols): each a size name, an int, or a LinSize

SCALAR: Shape = (1, 1)


@dataclass(frozen=True)
class LinSize:
    """A size computed from others, Σ coeff·name + const: a valid convolution of sizes d and
    k has d - k + 1 entries, a full one d + k - 1."""
    terms: tuple          # ((name, coeff), ...), sorted by name, no zero coefficients
    const: int = 0

    def __str__(self):
        out = ""                   # a plus sign first, as a person reads it: N - M + 1, not -M + N + 1
        for name, c in sorted(self.terms, key=lambda t: t[1] < 0):
            sign = "-" if c < 0 else "+"
            mag = "" if abs(c) == 1 else f"{abs(c)}"
            out += f" {sign} {mag}{name}" if out else f"{'-' if c < 0 else ''}{mag}{name}"
        if self.const:
            out += f" {'-' if self.const < 0 else '+'} {abs(self.const)}"
        return out

    def value(self, sizes: dict) -> int:
        return sum(c * sizes[name] for name, c in self.terms) + self.const

    def map(self, f):
        """The same combination with every name passed through f (a name, an int or a LinSize)."""
        return lin(*[(f(name), c) for name, c in self.terms], const=self.const)


def lin(*parts, const: int = 0):
    """Σ coeff·dim + const as a size: an int when no name is left, else a LinSize."""
    acc: dict = {}
    for dim, c in parts:
        if isinstance(dim, int):
            const += c * dim
        elif isinstance(dim, LinSize):
            const += c * dim.const
            for name, k in dim.terms:
                acc[name] = acc.get(name, 0) + c * k
        else:
            acc[dim] = acc.get(dim, 0) + c
    terms = tuple(sorted((n, c) for n, c in acc.items() if c != 0))
    if not terms:
        return const
    if terms == ((terms[0][0], 1),) and const == 0:
        return terms[0][0]
    return LinSize(terms, const)


def size_value(dim, sizes: dict) -> int:
    """The number a size stands for, given the numbers of the size names."""
    if isinstance(dim, int):
        return dim
    if isinstance(dim, LinSize):
        return dim.value(sizes)
    return sizes[dim]


class Node:
    """An immutable tree node. A subclass declares its fields as class annotations, in order,
    with defaults where it has them, as a dataclass would; equality and hashing go by type and
    field values (except those in `_uncompared`).

    Not @dataclass: its generated methods cost an exec each at import, about 25 ms for the
    node types, which the cold start of every CLI call pays (issue 2, bench/run.py)."""
    _fields: tuple = ()             # field names, in order
    _defaults: dict = {}            # field name -> default
    _compared: tuple = ()           # the fields == and hash look at
    _uncompared: tuple = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        names = tuple(cls.__dict__.get("__annotations__", {}))
        cls._fields = names
        cls._defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
        for n in cls._defaults:             # a field's value lives on the instance, never the class
            delattr(cls, n)
        cls._compared = tuple(n for n in names if n not in cls._uncompared)
        cls.__match_args__ = names

    def __init__(self, *args, **kw):
        names = self._fields
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} fields, {len(args)} given")
        values = dict(zip(names, args))
        if kw or len(args) < len(names):
            for k, v in kw.items():
                if k not in names or k in values:
                    raise TypeError(f"{type(self).__name__}: unexpected or repeated field {k!r}")
                values[k] = v
            for n in names:
                if n not in values:
                    if n not in self._defaults:
                        raise TypeError(f"{type(self).__name__}: missing field {n!r}")
                    values[n] = self._defaults[n]
            values = {n: values[n] for n in names}
        self.__dict__.update(values)
        # the hash, once: a child's is already known, so a chain of 10,000 sums or factors is
        # hashed without recursing down it
        object.__setattr__(self, "_hash", hash(tuple(values[n] for n in self._compared)))

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable; use replace()")

    __delattr__ = __setattr__

    def _key(self) -> tuple:
        v = self.__dict__
        return tuple(v[n] for n in self._compared)

    def __eq__(self, other):
        if other is self:
            return True
        if other.__class__ is not self.__class__:
            return NotImplemented
        if self._hash != other._hash:
            return False
        return self._key() == other._key()

    def __hash__(self):
        return self._hash

    def __repr__(self):
        shown = ((n, v) for n, v in self.items()                 # an uncompared field at its default: not said
                 if n not in self._uncompared or n not in self._defaults or v != self._defaults[n])
        return f"{type(self).__name__}({', '.join(f'{n}={v!r}' for n, v in shown)})"

    def replace(self, **changes) -> "Node":
        """A copy with the given fields changed (dataclasses.replace)."""
        return type(self)(**{**dict(self.items()), **changes})

    def items(self):
        """(field name, value) pairs, in order."""
        v = self.__dict__
        return ((n, v[n]) for n in self._fields)

    def children(self) -> tuple["Node", ...]:
        vals = [v for _, v in self.items()]
        return tuple(v for v in vals if isinstance(v, Node)) + tuple(
            c for v in vals if isinstance(v, tuple) for c in v if isinstance(c, Node))

    def map_children(self, f) -> "Node":
        """A copy with f applied to every child node (the node itself when nothing changes)."""
        changes = {}
        for k, v in self.items():
            if isinstance(v, Node):
                w = f(v)
                if w is not v:
                    changes[k] = w
            elif isinstance(v, tuple) and any(isinstance(c, Node) for c in v):   # a call's arguments
                w = tuple(f(c) if isinstance(c, Node) else c for c in v)
                if any(a is not b for a, b in zip(w, v)):
                    changes[k] = w
        return self.replace(**changes) if changes else self

    def with_shape(self, shape: Shape) -> "Node":
        return self.replace(shape=shape)

    @property
    def is_scalar(self) -> bool:
        return self.shape == SCALAR

    def walk(self):
        """Every node of the tree, in preorder (without recursion: chains may be 10,000 deep)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children()))


# ---- leaves -------------------------------------------------------------------
class Sym(Node):
    """A variable (matrix, vector or scalar), or `dY` the upstream gradient. `bracketed`: the
    name stood alone in brackets, `(WV)^T`, so that a name read as a product (shapes.py's
    _fused_products) keeps the power or transpose on the whole product."""
    _uncompared = ("bracketed",)
    name: str
    shape: Shape = None
    bracketed: bool = False


class Num(Node):
    value: Fraction | float
    shape: Shape = SCALAR


class Size(Node):
    """A size name used as a scalar, as in `sum(T ∘ log(X)) / S`."""
    name: str
    shape: Shape = SCALAR


class Ones(Node):
    """The all-ones column vector; its size is its shape's first entry."""
    shape: Shape = None


class Identity(Node):
    shape: Shape = None


# ---- operations ---------------------------------------------------------------
class MatMul(Node):
    """Matrix product of two non-scalars (the parser may give a scalar side; shapes.infer fixes it)."""
    a: Node
    b: Node
    shape: Shape = None


class ScalarMul(Node):
    s: Node
    a: Node
    shape: Shape = None


class Div(Node):
    """Division by a scalar."""
    a: Node
    s: Node
    shape: Shape = None


class Add(Node):
    a: Node
    b: Node
    shape: Shape = None


class Sub(Node):
    a: Node
    b: Node
    shape: Shape = None


class Neg(Node):
    a: Node
    shape: Shape = None


class Transpose(Node):
    a: Node
    shape: Shape = None


class Inverse(Node):
    a: Node
    shape: Shape = None


class MatPow(Node):
    """Integer power >= 1 of a square matrix."""
    a: Node
    k: int
    shape: Shape = None


class Power(Node):
    """Power of a scalar: `s^2`, `s^(1/2)`; the exponent is a scalar node."""
    a: Node
    p: Node
    shape: Shape = None


class Hadamard(Node):
    a: Node
    b: Node
    shape: Shape = None


class HadDiv(Node):
    a: Node
    b: Node
    shape: Shape = None


class HadPow(Node):
    """Element-wise power `A .^ p`, p a scalar node."""
    a: Node
    p: Node
    shape: Shape = None


ABS_BARS = "|·|"     # the call that single bars |s| make: no name a user can type
NUMPY_STAR = "*·*"   # A * B in an input that writes NumPy (@, np., .T): no name a user can type


class Call(Node):
    """A named operation with arguments, before shapes.infer resolves it
    (trace, det, softmax, element-wise functions, ...)."""
    name: str
    args: tuple
    col: int = -1
    _uncompared = ("col",)     # where the call stood in the input, for error messages
    shape: Shape = None


class Trace(Node):
    a: Node
    shape: Shape = SCALAR


class Det(Node):
    a: Node
    shape: Shape = SCALAR


class LogDet(Node):
    a: Node
    shape: Shape = SCALAR


class Norm(Node):
    """Euclidean norm of a vector, Frobenius norm of a matrix."""
    a: Node
    shape: Shape = SCALAR


class Norm2(Node):
    """Squared norm."""
    a: Node
    shape: Shape = SCALAR


class SumAll(Node):
    a: Node
    shape: Shape = SCALAR


class SumAxis(Node):
    """`sum(X, 1)`: row sums (a column); `sum(X, 0)`: column sums (a row)."""
    a: Node
    axis: int
    shape: Shape = None


class Mean(Node):
    """`mean(X)`: the mean of all entries."""
    a: Node
    shape: Shape = SCALAR


class MeanAxis(Node):
    """`mean(X, 1)`: row means (a column); `mean(X, 0)`: column means (a row), as SumAxis."""
    a: Node
    axis: int
    shape: Shape = None


class Func(Node):
    """Element-wise function; `name` may carry primes for derivatives (h', h'')."""
    name: str
    a: Node
    shape: Shape = None


class Softmax(Node):
    """Softmax of a vector, or of each row of a matrix."""
    a: Node
    shape: Shape = None


class RowMax(Node):
    """The largest entry of each row of a matrix (a column): the shift of a stable softmax,
    softmax(Z) = exp(Z - m 1ᵀ) ⊘ (s 1ᵀ) as a generated forward pass computes it."""
    a: Node
    shape: Shape = None


class DiagMat(Node):
    """diag(x): vector -> diagonal matrix."""
    a: Node
    shape: Shape = None


class DiagVec(Node):
    """diag(X): square matrix -> vector of its diagonal."""
    a: Node
    shape: Shape = None


class Conv(Node):
    """1-D convolution without kernel flip (seed 003, question 6), of two column vectors:
    valid (x * w)_n = Σ_j x_{n+j-1} w_j;  full (x ~* w)_n = Σ_j x_{n+j-k} w_j, out of range 0."""
    a: Node
    b: Node
    mode: str               # "valid" | "full"
    shape: Shape = None


class Flip(Node):
    """flip(w)_j = w_{k-j+1}."""
    a: Node
    shape: Shape = None


class Equation(Node):
    lhs: str
    rhs: Node
    shape: Shape = None


def left_spine(node: Node, types, same_shape=True) -> list:
    """The nodes down the left operands (`.a`) of a chain of `types` that keep the node's shape,
    outermost first: ((a + b) - c) + d gives [(..) + d, (a + b) - c, a + b]. Printers walk
    a long sum or product through it, not by recursion."""
    out = []
    while isinstance(node, types) and (not out or not same_shape or node.shape == out[-1].shape):
        out.append(node)
        node = node.a
    return out


def matmul_factors(node: Node) -> list:
    """The factors of a matrix product in reading order, whatever its grouping (a walk with a
    stack, not recursion: a chain of 1,000 factors)."""
    out, stack = [], [node]
    while stack:
        x = stack.pop()
        if isinstance(x, MatMul):
            stack += [x.b, x.a]
        else:
            out.append(x)
    return out


def is_all_ones(node: Node) -> bool:
    """The number 1, a ones vector, 1ᵀ or 1 1ᵀ (a matrix of ones)."""
    while isinstance(node, Transpose):
        node = node.a
    if isinstance(node, MatMul):
        return all(is_all_ones(f) for f in matmul_factors(node))
    return is_num(node, 1) or isinstance(node, Ones)


def kind_of(shape) -> str:
    """scalar | vector (a column) | rowvector | matrix | tensor (rank 3 or more)."""
    shape = tuple(shape)
    if len(shape) > 2:
        return "tensor"
    if shape == SCALAR:
        return "scalar"
    if shape[1] == 1:
        return "vector"
    if shape[0] == 1:
        return "rowvector"
    return "matrix"


PI = math.pi          # the number π (a Num of this value prints as π, \pi, np.pi)


def num(value) -> Num:
    if isinstance(value, float) and not value.is_integer():
        return Num(value)
    return Num(Fraction(value))


def is_num(node: Node, value=None) -> bool:
    return isinstance(node, Num) and (value is None or node.value == value)


def variables(node: Node) -> list[str]:
    """Names of the variables in order of first appearance."""
    seen = []
    for n in node.walk():
        if isinstance(n, Sym) and n.name not in seen:
            seen.append(n.name)
    return seen


def contains(node: Node, name: str) -> bool:
    return any(isinstance(n, Sym) and n.name == name for n in node.walk())
