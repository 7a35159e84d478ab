"""The layout of a value of any rank, asked by every stage instead of each knowing it.

Two conventions meet here. The engine's shape: a scalar is (1, 1), a column vector (n, 1),
a declared row vector (1, n), a matrix (m, n), a tensor of rank r ≥ 3 its r sizes. NumPy's
array shape (SPEC §3): a scalar (), a column vector (n,), a row vector (1, n), a matrix
(m, n), a tensor its sizes. The kind names the case: scalar, vector, rowvector, matrix, tensor.
"""
from __future__ import annotations

import numpy as np

from .nodes import kind_of  # noqa: F401  (one kind_of for every rank; layout re-exports it)

SCALAR = (1, 1)


def array_shape(shape) -> tuple:
    """NumPy's shape of a value of this engine shape (sizes symbolic or numbers)."""
    kind = kind_of(shape)
    if kind == "scalar":
        return ()
    if kind == "vector":
        return (shape[0],)
    return tuple(shape)


def shape_of_rank(dims) -> tuple:
    """The engine's shape of a value indexed by len(dims) indices of these sizes."""
    dims = tuple(dims)
    if len(dims) == 0:
        return SCALAR
    if len(dims) == 1:
        return (dims[0], 1)
    return dims


def rank(shape) -> int:
    return len(array_shape(shape))


def show_dims(shape) -> str:
    """A declaration's shape as the user writes it: S×M, n, scalar."""
    shape = tuple("?" if d is None else d for d in shape)
    if shape == SCALAR:
        return "scalar"
    if len(shape) == 2 and shape[1] == 1:
        return str(shape[0])
    return "×".join(str(d) for d in shape)


def to_array(value, shape) -> np.ndarray:
    """A value in NumPy layout for this engine shape."""
    a = np.asarray(value, dtype=float)
    return a.reshape(tuple(int(d) for d in np.shape(a))) if kind_of(shape) == "tensor" else a
