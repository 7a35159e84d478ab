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

Shape = tuple  # (rows, cols): each a size name or 1

SCALAR: Shape = (1, 1)


@dataclass(frozen=True)
class Node:
    def children(self) -> tuple["Node", ...]:
        return tuple(getattr(self, f.name) for f in fields(self)
                     if isinstance(getattr(self, f.name), Node)) + tuple(
            c for f in fields(self) if isinstance(getattr(self, f.name), tuple)
            for c in getattr(self, f.name) if isinstance(c, Node))

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
