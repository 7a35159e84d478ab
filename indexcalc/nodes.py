"""The expression tree: what the parser builds and what the matcher rebuilds.

Every node is an immutable dataclass. A node built by the parser has no shape;
`shapes.infer` returns a copy of the tree in which every node carries its shape,
a pair (rows, cols) whose entries are size names (str) or the integer 1.
A column vector is (n, 1), a row vector (1, n), a scalar (1, 1).

The same node types describe closed forms, so a closed form prints back into the
input language and parses again.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
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
        out = ""
        for name, c in self.terms:
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


@dataclass(frozen=True)
class Node:
    def children(self) -> tuple["Node", ...]:
        return tuple(getattr(self, f.name) for f in fields(self)
                     if isinstance(getattr(self, f.name), Node)) + tuple(
            c for f in fields(self) if isinstance(getattr(self, f.name), tuple)
            for c in getattr(self, f.name) if isinstance(c, Node))

    def map_children(self, f) -> "Node":
        """A copy with f applied to every child node (the node itself when nothing changes)."""
        changes = {fl.name: f(getattr(self, fl.name)) for fl in fields(self)
                   if isinstance(getattr(self, fl.name), Node)}
        changes = {k: v for k, v in changes.items() if v is not getattr(self, k)}
        return replace(self, **changes) if changes else self

    def with_shape(self, shape: Shape) -> "Node":
        return replace(self, shape=shape)

    @property
    def is_scalar(self) -> bool:
        return self.shape == SCALAR

    def walk(self):
        yield self
        for c in self.children():
            yield from c.walk()


# ---- leaves -------------------------------------------------------------------
@dataclass(frozen=True)
class Sym(Node):
    """A variable (matrix, vector or scalar), or `dY` the upstream gradient."""
    name: str
    shape: Shape = field(default=None, compare=True)


@dataclass(frozen=True)
class Num(Node):
    value: Fraction | float
    shape: Shape = SCALAR


@dataclass(frozen=True)
class Size(Node):
    """A size name used as a scalar, as in `sum(T ∘ log(X)) / S`."""
    name: str
    shape: Shape = SCALAR


@dataclass(frozen=True)
class Ones(Node):
    """The all-ones column vector; its size is its shape's first entry."""
    shape: Shape = None


@dataclass(frozen=True)
class Identity(Node):
    shape: Shape = None


# ---- operations ---------------------------------------------------------------
@dataclass(frozen=True)
class MatMul(Node):
    """Matrix product of two non-scalars (the parser may give a scalar side; shapes.infer fixes it)."""
    a: Node
    b: Node
    shape: Shape = None


@dataclass(frozen=True)
class ScalarMul(Node):
    s: Node
    a: Node
    shape: Shape = None


@dataclass(frozen=True)
class Div(Node):
    """Division by a scalar."""
    a: Node
    s: Node
    shape: Shape = None


@dataclass(frozen=True)
class Add(Node):
    a: Node
    b: Node
    shape: Shape = None


@dataclass(frozen=True)
class Sub(Node):
    a: Node
    b: Node
    shape: Shape = None


@dataclass(frozen=True)
class Neg(Node):
    a: Node
    shape: Shape = None


@dataclass(frozen=True)
class Transpose(Node):
    a: Node
    shape: Shape = None


@dataclass(frozen=True)
class Inverse(Node):
    a: Node
    shape: Shape = None


@dataclass(frozen=True)
class MatPow(Node):
    """Integer power >= 1 of a square matrix."""
    a: Node
    k: int
    shape: Shape = None


@dataclass(frozen=True)
class Power(Node):
    """Power of a scalar: `s^2`, `s^(1/2)`; the exponent is a scalar node."""
    a: Node
    p: Node
    shape: Shape = None


@dataclass(frozen=True)
class Hadamard(Node):
    a: Node
    b: Node
    shape: Shape = None


@dataclass(frozen=True)
class HadDiv(Node):
    a: Node
    b: Node
    shape: Shape = None


@dataclass(frozen=True)
class HadPow(Node):
    """Element-wise power `A .^ p`, p a scalar node."""
    a: Node
    p: Node
    shape: Shape = None


@dataclass(frozen=True)
class Call(Node):
    """A named operation with arguments, before shapes.infer resolves it
    (trace, det, softmax, element-wise functions, ...)."""
    name: str
    args: tuple
    col: int = field(default=-1, compare=False)
    shape: Shape = None


@dataclass(frozen=True)
class Trace(Node):
    a: Node
    shape: Shape = SCALAR


@dataclass(frozen=True)
class Det(Node):
    a: Node
    shape: Shape = SCALAR


@dataclass(frozen=True)
class LogDet(Node):
    a: Node
    shape: Shape = SCALAR


@dataclass(frozen=True)
class Norm(Node):
    """Euclidean norm of a vector, Frobenius norm of a matrix."""
    a: Node
    shape: Shape = SCALAR


@dataclass(frozen=True)
class Norm2(Node):
    """Squared norm."""
    a: Node
    shape: Shape = SCALAR


@dataclass(frozen=True)
class SumAll(Node):
    a: Node
    shape: Shape = SCALAR


@dataclass(frozen=True)
class SumAxis(Node):
    """`sum(X, 1)`: row sums (a column); `sum(X, 0)`: column sums (a row)."""
    a: Node
    axis: int
    shape: Shape = None


@dataclass(frozen=True)
class Func(Node):
    """Element-wise function; `name` may carry primes for derivatives (h', h'')."""
    name: str
    a: Node
    shape: Shape = None


@dataclass(frozen=True)
class Softmax(Node):
    """Softmax of a vector, or of each row of a matrix."""
    a: Node
    shape: Shape = None


@dataclass(frozen=True)
class DiagMat(Node):
    """diag(x): vector -> diagonal matrix."""
    a: Node
    shape: Shape = None


@dataclass(frozen=True)
class DiagVec(Node):
    """diag(X): square matrix -> vector of its diagonal."""
    a: Node
    shape: Shape = None


@dataclass(frozen=True)
class Conv(Node):
    """1-D convolution without kernel flip (seed 003, question 6), of two column vectors:
    valid (x * w)_n = Σ_j x_{n+j-1} w_j;  full (x ~* w)_n = Σ_j x_{n+j-k} w_j, out of range 0."""
    a: Node
    b: Node
    mode: str               # "valid" | "full"
    shape: Shape = None


@dataclass(frozen=True)
class Flip(Node):
    """flip(w)_j = w_{k-j+1}."""
    a: Node
    shape: Shape = None


@dataclass(frozen=True)
class Equation(Node):
    lhs: str
    rhs: Node
    shape: Shape = None


def kind_of(shape) -> str:
    """scalar | vector (a column) | rowvector | matrix."""
    if shape == SCALAR:
        return "scalar"
    if shape[1] == 1:
        return "vector"
    if shape[0] == 1:
        return "rowvector"
    return "matrix"


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
