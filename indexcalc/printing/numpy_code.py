"""Closed forms and index forms -> one NumPy expression (SPEC §3).

Arrays follow SPEC's conventions: a column vector is 1-D, a declared row vector is
(1, n), a scalar is a float. Each printed piece knows its number of dimensions, so a
product of a column by a row becomes `np.outer`, a column added to a matrix gets
`[:, None]`, and a 1×1 result becomes a float. Sizes print as `X.shape[k]`, so the code
needs nothing but the variables.
"""
from __future__ import annotations

import keyword
import re
from fractions import Fraction


from .. import functions as F
from .. import nodes as N
from ..errors import ShapeError
from ..index_form import preorder


def py_name(name: str) -> str:
    """A variable's name in NumPy code: Python keywords (`lambda`) and the module's own name
    (`np`) get a trailing underscore."""
    return name + "_" if keyword.iskeyword(name) or name == "np" else name


class NumpyPrinter:
    target = "numpy"          # the array library the code is for (a module's printer may say torch, jax)

    def __init__(self, variables, helpers=None):
        """helpers: names of functions the surrounding code defines ({"softmax": "_softmax"}),
        used instead of a self-contained expression (generated modules have them)."""
        self.variables = variables
        self.helpers = dict(helpers or {})
        self.size_code = {}
        for name, v in variables.items():
            shape = v.array_shape
            for axis, d in enumerate(shape):
                if isinstance(d, str):          # a tensor's axes count from the end (any batch rank)
                    at = axis - len(shape) if len(shape) > 2 else axis
                    self.size_code.setdefault(d, f"{py_name(name)}.shape[{at}]")

    def size(self, d) -> str:
        if isinstance(d, int):
            return str(d)
        if isinstance(d, N.LinSize):
            return "(" + str(d.map(self.size)) + ")"          # names become X.shape[k]
        code = self.size_code.get(d)
        if code is None and d in self.variables:
            raise ShapeError(f"the size {d} is also the name of the variable {d}, and no other variable has that "
                             f"size, so the NumPy code cannot say it: name the size differently "
                             f"({d}2, say) or declare the variable that has it")
        return code if code is not None else d

    # ---- closed forms
    def code(self, node: N.Node, target=None) -> str:
        """The expression; `target` ('scalar' | 'vector' | 'rowvector' | 'matrix') fixes the layout."""
        c, nd = self.p(node)
        if target == "rowvector" and nd == 1:
            return f"({c})[None, :]"
        if target == "vector" and nd == 2:
            return f"np.ravel({c})"
        return c

    named: dict = {}          # subtree -> (local name, ndim), while printing a function

    def p(self, node: N.Node):
        hit = self.named.get(node)
        if hit is not None:
            return hit
        return self.finish(node, PRINT[type(node)](self, node))

    def finish(self, node: N.Node, printed):
        """A printed node in its layout: a 1×1 result as a number, a column as 1-D."""
        c, nd = printed
        if len(node.shape) > 2:                   # a tensor: its own axes, as printed
            return c, nd
        r, k = node.shape
        if (r, k) == (1, 1) and nd > 0:
            return f"np.sum({c})", 0
        if k == 1 and r != 1 and nd == 2:
            return f"({c})[:, 0]", 1
        return c, nd

    # ---- a complete function, each common subexpression once (SPEC §3 `function`)
    def function(self, node: N.Node, name: str, params, target=None) -> str:
        """`def name(params):` computing every subtree that the result uses more than once
        (by structure, as the cached node hashes find it) once, in a local of its own, then
        returning what `code(node, target)` computes."""
        lines = [f"def {name}({', '.join(py_name(p) for p in params)}):"]
        self.named = {}
        own = {key: local for key, (local, _) in LOCAL_HELPERS.items() if key not in self.helpers}
        self.helpers.update(own)
        try:
            taken = {py_name(p) for p in params}
            k = 0
            for sub in common_subtrees(node):
                c, nd = self.p(sub)
                k += 1
                while f"t{k}" in taken:
                    k += 1
                lines.append(f"    t{k} = {c}")
                self.named[sub] = (f"t{k}", nd)
            in_place = _diagonal_update(self, node) if target == "matrix" else None
            if in_place is not None:
                k += 1
                while f"t{k}" in taken:
                    k += 1
                rest, op, v = in_place
                lines += [f"    t{k} = {rest}", f"    np.einsum('ii->i', t{k})[...] {op}= {v}",
                          f"    return t{k}"]
            else:
                lines.append(f"    return {self.code(node, target)}")
        finally:
            self.named = {}
            for key in own:
                del self.helpers[key]
        # the helpers the lines call, defined first (a softmax read once, not a lambda in a lambda)
        used = [LOCAL_HELPERS[key][1] for key, local in own.items()
                if any(re.search(rf"(?<![\w.]){local}\(", line) for line in lines[1:])]
        lines[1:1] = [f"    {line}" for body in used for line in body.splitlines()]
        # a local that no later line reads (its subtree printed by a special spelling, v[:, None]
        # for v 1ᵀ) is not computed at all
        for k in range(len(lines) - 2, 0, -1):
            local = re.match(r"\s+(t\d+) = ", lines[k])
            if local and not any(re.search(rf"\b{local.group(1)}\b", later) for later in lines[k + 1:]):
                del lines[k]
        return "\n".join(lines) + "\n"

    def wrap(self, node):
        c, nd = self.p(node)
        return (c if _atomic(c) else f"({c})"), nd

    def column(self, node, into_shape):
        """An operand of an element-wise operation with a result of shape into_shape."""
        spread = _spread(node)
        if spread is not None and into_shape[0] != 1 and into_shape[1] != 1:
            v, axis = spread                   # v 1ᵀ ∘ A broadcasts v; no outer product is built
            c, nd = self.wrap(v)
            if nd == 1:
                return (f"{c}[:, None]" if axis == 0 else f"{c}[None, :]"), 2
            if nd == 2 and v.shape[0] == 1:      # a 1×N array broadcasts down the rows as it is
                return c, 2
        c, nd = self.wrap(node)
        r, k = node.shape
        R, K = into_shape
        if nd == 1 and k == 1 and r != 1 and K != 1:
            return f"{c}[:, None]", 2
        return c, nd


def _conv(P, n: N.Conv):
    (a, na), (b, nb) = P.p(n.a), P.p(n.b)
    a = a if na == 1 else f"np.ravel({a})"
    b = b if nb == 1 else f"np.ravel({b})"
    return f'np.correlate({a}, {b}, "{n.mode}")', 1


def _flip(P, n: N.Flip):
    c, nd = P.wrap(n.a)
    return (f"{c}[::-1]", 1) if nd == 1 else (f"np.ravel({c})[::-1]", 1)


def _atomic(c: str) -> bool:
    depth = 0
    for ch in c:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in " +-*/@<>=":
            return False
    return True


def _sym(P: NumpyPrinter, n: N.Sym):
    v = P.variables[n.name] if n.name in P.variables else None
    kind = v.kind if v else ("scalar" if n.shape == N.SCALAR else "matrix")
    return py_name(n.name), {"scalar": 0, "vector": 1, "rowvector": 2, "matrix": 2}.get(kind, len(n.shape))


def _num(P, n: N.Num):
    v = n.value
    if isinstance(v, float) and v == N.PI:
        return "np.pi", 0
    if isinstance(v, float):
        return repr(v), 0
    v = Fraction(v)
    return (str(v.numerator) if v.denominator == 1 else f"({v.numerator} / {v.denominator})"), 0


def _spread(node):
    """(v, axis) when node is v 1ᵀ (axis 0: v down the rows) or 1 vᵀ (axis 1), else None.
    1 b of a row b (a bias, 1×N) is (b, 1) too: b itself, down the rows."""
    if isinstance(node, N.MatMul):
        if isinstance(node.b, N.Transpose) and isinstance(node.b.a, N.Ones) and node.a.shape[1] == 1:
            return node.a, 0
        if isinstance(node.a, N.Ones) and isinstance(node.b, N.Transpose) and node.b.shape[0] == 1:
            return node.b.a, 1
        if isinstance(node.a, N.Ones) and node.a.shape[1] == 1 and node.b.shape[0] == 1:
            return node.b, 1
    return None


def _is_ones_row(node):
    return isinstance(node, N.Transpose) and isinstance(node.a, N.Ones)


def _whole_sum(n: N.MatMul):
    """A of 1ᵀ A 1, either way it is grouped, or None."""
    if n.shape != N.SCALAR:
        return None
    if isinstance(n.b, N.Ones) and isinstance(n.a, N.MatMul) and _is_ones_row(n.a.a):
        return n.a.b
    if _is_ones_row(n.a) and isinstance(n.b, N.MatMul) and isinstance(n.b.b, N.Ones):
        return n.b.a
    return None


def _ones_outer_scalars(n: N.MatMul):
    """The scalars of s 1 1ᵀ (a scalar anywhere in it, [] for 1 1ᵀ), or None for any other
    outer product."""
    scalars = []

    def ones(x):
        while isinstance(x, (N.ScalarMul, N.Transpose)):
            if isinstance(x, N.ScalarMul):
                scalars.append(x.s)
            x = x.a
        return isinstance(x, N.Ones)
    return scalars if ones(n.a) and ones(n.b) and len(n.shape) == 2 else None


def _filled(P, n: N.MatMul):
    """s 1 1ᵀ as np.full((m, n), s), np.ones((m, n)) for s = 1: no outer product of two ones
    vectors is built; None for any other outer product."""
    scalars = _ones_outer_scalars(n)
    if scalars is None:
        return None
    dims = f"({P.size(n.shape[0])}, {P.size(n.shape[1])})"
    if not scalars:
        return f"np.ones({dims})"
    return f"np.full({dims}, {' * '.join(P.wrap(s)[0] for s in scalars)})"


def _left_operand(c: str, nd, inner: str | None = None):
    """A printed left operand of a left-associative `@`, `*`, `+`: bare unless a sum or a
    comparison stands at its top level (a @ b @ c, not ((a @ b) @ c): Python refuses code
    nested 200 parentheses deep, and a chain of 512 factors would be). `inner`: a left
    operand already made so, which c contains; it is read as one token (not again: the
    chain's left parts would be read over and over, a cost of k^2 / 2 tokens)."""
    depth, tokens = 0, []
    scanned = c.replace(inner, "L", 1) if inner and inner in c else c
    for tok in scanned.split(" "):
        if depth == 0:
            tokens.append(tok)
        depth += tok.count("(") + tok.count("[") - tok.count(")") - tok.count("]")
    return (f"({c})" if any(t in ("+", "-", "<", ">", "==", "<=", ">=") for t in tokens[1:]) else c), nd


def _matmul(P: NumpyPrinter, n: N.MatMul):
    """A product chain: down its left operands without recursion, each level printed on the
    printed left part (a @ b @ c)."""
    spine = N.left_spine(n, N.MatMul, same_shape=False)
    left = None
    for x in reversed(spine[1:]):
        left = _left_operand(*P.finish(x, _matmul_one(P, x, left)), left[0] if left else None)
    return _matmul_one(P, n, left)


def _matmul_one(P: NumpyPrinter, n: N.MatMul, left):
    # without building what the product only broadcasts or sums: diag(v) A = v[:, None] * A,
    # A 1 = row sums, 1ᵀ A = column sums. `left`: n.a already printed, or None
    wrap_a = (lambda: left) if left is not None else (lambda: P.wrap(n.a))
    whole = _whole_sum(n)
    if whole is not None:
        c, nd = P.p(whole)
        if nd == 2:
            return f"np.sum({c})", 0
    if isinstance(n.a, N.DiagMat) and n.b.shape[1] != 1:
        (v, nv), (b, nb) = P.wrap(n.a.a), P.wrap(n.b)
        if nv == 1 and nb == 2:
            return f"{v}[:, None] * {b}", 2
    if isinstance(n.b, N.DiagMat) and n.a.shape[0] != 1:
        (a, na), (v, nv) = wrap_a(), P.wrap(n.b.a)
        if nv == 1 and na == 2:
            return f"{a} * {v}[None, :]", 2
    if isinstance(n.b, N.Ones):
        a, na = wrap_a()
        if na == 2:                                # the method: no np.sum dispatch overhead; a
            a = a if _atomic(a) else f"({a})"      # left part printed bare (v * A) is bracketed
            return f"{a}.sum(axis=1)", 1
    if _is_ones_row(n.a):
        b, nb = P.wrap(n.b)
        if nb == 2:
            return f"{b}.sum(axis=0, keepdims=True)", 2
        if nb == 1 and n.shape == N.SCALAR:          # 1ᵀ v
            return f"np.sum({b})", 0
    inner = n.a.shape[1]
    if inner == 1 and n.shape != N.SCALAR and left is None:
        filled = _filled(P, n)
        if filled is not None:
            return filled, 2
    (a, na), (b, nb) = wrap_a(), P.wrap(n.b)
    if inner == 1 and n.shape != N.SCALAR:
        if na == 0 or nb == 0:
            return f"{a} * {b}", max(na, nb)
        return _outer(P, a, na, b, nb), 2
    out_nd = 2 if (na == 2 and nb == 2) else (0 if na == 1 and nb == 1 else 1)
    return f"{a} @ {b}", out_nd


def _elementwise(op):
    def rule(P: NumpyPrinter, n):
        (a, na), (b, nb) = P.column(n.a, n.shape), P.column(n.b, n.shape)
        return f"{a} {op} {b}", max(na, nb)
    return rule


def _sum(P: NumpyPrinter, n):
    """a + b - c + ...: down the left operands without recursion (10,000 terms), the left part
    bare (a + b + c, not ((a + b) + c): Python refuses 200 nested parentheses)."""
    spine = N.left_spine(n, (N.Add, N.Sub))
    terms = [t for t in [spine[-1].a] + [x.b for x in spine] if not N.is_all_ones(t)]
    printed = {id(t): P.column(t, n.shape) for t in terms}
    # beside a term of the sum's whole shape, ones are the number 1 and s 1 is s (1 - Y, a - s,
    # not np.ones(S)[:, None] - Y: an array built to be broadcast)
    scaled = {id(t): t.s for t in terms if isinstance(t, N.ScalarMul) and N.is_all_ones(t.a)}
    whole = 1 if n.shape[0] == 1 or n.shape[1] == 1 else 2
    one = ("1", 0) if any(id(t) not in scaled and t.shape == n.shape and _spread(t) is None
                          and printed[id(t)][1] == whole for t in terms) else None

    def term(x):
        if one and id(x) in scaled:
            return P.wrap(scaled[id(x)])
        return printed[id(x)] if id(x) in printed else one or P.column(x, n.shape)
    code, nd = term(spine[-1].a)
    if len(spine) >= _LONG:              # a + b + ... as one expression is as deep as it is long:
        parts = [code]                   # Python's compiler gives up near 3,000; a call is flat
        for x in reversed(spine):
            b, nb = term(x.b)
            parts.append(b if isinstance(x, N.Add) else f"-{b}")
            nd = max(nd, nb)
        return f"np.sum(np.broadcast_arrays({', '.join(parts)}), axis=0)", nd
    for x in reversed(spine):
        b, nb = term(x.b)
        code, nd = f"{code} {'+' if isinstance(x, N.Add) else '-'} {b}", max(nd, nb)
    return code, nd


_LONG = 256


def _hadamard(P, n):
    """A ∘ B; a step H(X) as a factor is the comparison itself, `(X > 0) * B` (the mask
    of ReLU's backward pass, without turning it into floats first)."""
    a, b = (n.b, n.a) if _is_step(n.b) and not _is_step(n.a) else (n.a, n.b)
    if not _is_step(a):
        return _elementwise("*")(P, n)
    (x, nx), (y, ny) = P.column(a.a, n.shape), P.column(b, n.shape)
    return f"({x} > 0) * {y}", max(nx, ny)


def _is_step(node) -> bool:
    return isinstance(node, N.Func) and node.name == "H"


def _transpose(P, n):
    c, nd = P.wrap(n.a)
    if nd == 2:
        if n.a.shape[0] == 1:            # a declared row (1, n) becomes a 1-D column
            return f"{c}[0]", 1
        return f"{c}.T", 2
    return c, nd


def _scalarmul(P, n):
    if N.is_num(n.s, 0) and N.is_all_ones(n.a) and n.shape[0] != 1:      # the zero vector or matrix
        if n.shape[1] == 1:
            return f"np.zeros({P.size(n.shape[0])})", 1
        return f"np.zeros(({P.size(n.shape[0])}, {P.size(n.shape[1])}))", 2
    into = _scaled_vector(P, n.a, lambda v: f"{P.wrap(n.s)[0]} * {v}")
    if into is not None:
        return into
    (s, _), (a, na) = P.wrap(n.s), P.wrap(n.a)
    return f"{s} * {a}", na


def _div(P, n):
    into = _scaled_vector(P, n.a, lambda v: f"{v} / {P.wrap(n.s)[0]}")
    if into is not None:
        return into
    (a, na), (s, _) = P.wrap(n.a), P.wrap(n.s)
    return f"{a} / {s}", na


def _diag_vector(node):
    """v of diag(v), s diag(v) or diag(v) / s as the vector node it scales, else None."""
    if isinstance(node, N.DiagMat) and node.a.shape[1] == 1:
        return node.a
    if isinstance(node, N.ScalarMul) and isinstance(node.a, N.DiagMat):
        return N.ScalarMul(node.s, node.a.a, node.a.a.shape)
    if isinstance(node, N.Div) and isinstance(node.a, N.DiagMat):
        return N.Div(node.a.a, node.s, node.a.a.shape)
    return None


def _negated(node):
    """-node with the sign on the cheapest operand: the left vector of an outer product u vᵀ
    (n numbers, not n²), through scalar factors and divisions."""
    if isinstance(node, N.Div):
        return N.Div(_negated(node.a), node.s, node.shape)
    if isinstance(node, N.ScalarMul):
        return N.ScalarMul(node.s, _negated(node.a), node.shape)
    if isinstance(node, N.MatMul) and node.a.shape[1] == 1 and node.a.shape[0] != 1:
        return N.MatMul(N.Neg(node.a, node.a.shape), node.b, node.shape)
    return N.Neg(node, node.shape)


def _diagonal_update(P, node):
    """diag(v) ± M (or M ± diag(v)) for a full square M, as M computed once and its diagonal
    updated in place: (M's code, '+' or '-', v's code); None otherwise. diag(p) - p pᵀ (a
    softmax's Jacobian, log-sum-exp's Hessian) then costs the outer product's one pass, not
    three (diag, outer, difference)."""
    if not isinstance(node, (N.Add, N.Sub)) or node.shape[0] != node.shape[1] or 1 in node.shape:
        return None
    left, right = _diag_vector(node.a), _diag_vector(node.b)
    if (left is None) == (right is None):
        return None
    v, other = (left, node.b) if left is not None else (right, node.a)
    if other.shape != node.shape:
        return None
    if isinstance(node, N.Sub) and left is not None:         # diag(v) - M = -M, v added
        other, op = _negated(other), "+"
    else:
        op = "-" if isinstance(node, N.Sub) else "+"
    if other in P.named or not isinstance(other, _FRESH):
        return None               # M a variable, a view of one or a local: updated in place, it would change
    code, nd = P.p(other)
    vc, nv = P.p(v)
    if nd != 2 or nv != 1:
        return None
    return code, op, vc


# nodes whose NumPy code makes a new array (never a view of an input): safe to update in place
_FRESH = (N.MatMul, N.Div, N.ScalarMul, N.Neg, N.Add, N.Sub, N.Hadamard, N.HadDiv, N.HadPow, N.Func)


def _scaled_vector(P, a, scale):
    """A scalar times diag(v) or u vᵀ, scaling the vector (n numbers) rather than the matrix
    (n² of them): np.diag(v / s), np.outer(u, v / s). None for anything else."""
    if a.shape == N.SCALAR or a in P.named:
        return None
    if isinstance(a, N.DiagMat):
        v, nv = P.p(a.a)
        if nv == 1:
            return f"np.diag({scale(v if _atomic(v) else f'({v})')})", 2
    if isinstance(a, N.MatMul) and a.a.shape[1] == 1 and a.a.shape[0] != 1 and a.b.shape[1] != 1:
        if _ones_outer_scalars(a) is not None:      # s 1 1ᵀ: s * np.ones((m, n)), no outer product
            return None
        (u, nu), (v, nv) = P.wrap(a.a), P.wrap(T_of(a.b))
        if nu == 1 and nv == 1:
            return _outer(P, u, nu, scale(v), nv), 2
    return None


def _outer(P, a, na, b, nb) -> str:
    """The outer product u vᵀ: in NumPy, np.einsum('i,j->ij') of two 1-D arrays (its loop writes
    the n×m result faster than np.outer's broadcast multiply: 328 µs against 533 µs at n = 1024
    with BLAS on one thread, about as fast at n ≤ 256 and 2048), np.outer (which flattens what
    it gets) where an operand is printed 2-D (a row declared 1×n); a module's torch or JAX
    printer maps np.outer to its own outer."""
    if na == 1 and nb == 1 and P.target == "numpy":
        return f"np.einsum('i,j->ij', {a}, {b})"
    return f"np.outer({a}, {b})"


def T_of(node):
    """The column vector whose transpose the row node is (vᵀ -> v), or the node."""
    return node.a if isinstance(node, N.Transpose) and node.a.shape[1] == 1 else N.Transpose(node, (node.shape[1], node.shape[0]))


def _call(fmt, nd=None):
    def rule(P, n):
        c, na = P.p(n.a)
        return fmt.format(c), (na if nd is None else nd)
    return rule


def _square(fmt, nd, of_number):
    """A rule for a square-matrix operation; a 1×1 matrix is held as a number (ndim 0), where
    np.linalg would refuse it: inv(x) = 1/x, det(x) = tr(x) = x, x^k."""
    def rule(P, n):
        c, na = P.p(n.a)
        if na == 0:
            return of_number(c, n), 0
        return fmt.format(c, k=getattr(n, "k", None)), nd
    return rule


# ---- log of what would underflow or overflow, in its stable form ---------------------------------
def _log_sigmoid(a):
    return a.a if isinstance(a, N.Func) and a.name == "sigmoid" else None


def _log_one_minus_sigmoid(a):
    if isinstance(a, N.Sub) and N.is_all_ones(a.a) and isinstance(a.b, N.Func) and a.b.name == "sigmoid":
        return a.b.a
    return None


def _log_one_plus_exp(a):
    if isinstance(a, N.Add):
        for one, e in ((a.a, a.b), (a.b, a.a)):
            if N.is_all_ones(one) and isinstance(e, N.Func) and e.name == "exp" and e.shape == a.shape:
                return e.a
    return None


def _log_softmax(a):
    return a.a if isinstance(a, N.Softmax) else None


def _log_sum_exp(a):
    """log(1ᵀ exp(u)), log(sum(exp(u))): the whole vector; log(exp(U) 1): each row."""
    if isinstance(a, N.SumAll) and isinstance(a.a, N.Func) and a.a.name == "exp" and a.a.shape[1] == 1:
        return a.a.a
    if isinstance(a, N.MatMul) and isinstance(a.a, N.Transpose) and isinstance(a.a.a, N.Ones) and \
            isinstance(a.b, N.Func) and a.b.name == "exp" and a.b.shape[1] == 1:
        return a.b.a
    return None


def _log_row_sum_exp(a):
    if isinstance(a, N.MatMul) and isinstance(a.b, N.Ones) and isinstance(a.a, N.Func) and \
            a.a.name == "exp" and a.a.shape[1] != 1:
        return a.a.a
    return None


_MAX = "np.max(z, axis=-1, keepdims=True)"
# (what log(...) is of, its stable NumPy code with {} the inner argument, ndim: None = the argument's)
STABLE_LOG = [
    (_log_sigmoid, "-np.logaddexp(0, -{})", None),
    (_log_one_minus_sigmoid, "-np.logaddexp(0, {})", None),
    (_log_one_plus_exp, "np.logaddexp(0, {})", None),
    (_log_softmax, f"(lambda z: z - {_MAX} - np.log(np.sum(np.exp(z - {_MAX}), axis=-1, keepdims=True)))({{}})", None),
    (_log_sum_exp, "(lambda z: np.max(z) + np.log(np.sum(np.exp(z - np.max(z)))))({})", 0),
    (_log_row_sum_exp, f"(lambda z: ({_MAX} + np.log(np.sum(np.exp(z - {_MAX}), axis=-1, keepdims=True)))[:, 0])({{}})", 1),
]


def stable_log(P, n: N.Func, table=None):
    """log(σ(u)), log(1 - σ(u)), log(1 + exp(u)), log(softmax(U)), log-sum-exp: (code, ndim)
    of the form that neither overflows nor underflows, or None."""
    if n.name != "log":
        return None
    for k, (match, fmt, nd) in enumerate(STABLE_LOG):
        inner = match(n.a)
        if inner is not None:
            c, na = P.wrap(inner)
            code = (table or {}).get(k, fmt)
            return code.format(c), (na if nd is None else nd)
    return None


def _func(P, n: N.Func):
    stable = stable_log(P, n)
    if stable is not None:
        return stable
    # the argument is parenthesised unless it stands alone in a call (sigmoid's code has
    # `0.5 * {}`, where `a + b` must not go bare)
    code = F.TABLE[n.name].code if n.name in F.TABLE else None
    if code is not None and isinstance(n.a, N.Neg) and code.count("{}") == 1 and "-{}" in code:
        code, arg = code.replace("-{}", "{}"), n.a.a       # sigmoid(-u): logaddexp(0, u), not -(-u)
    else:
        arg = n.a
    alone = code is None or re.search(r"[(,]\s*\{\}\s*[),]", code)
    c, na = P.p(arg) if alone else P.wrap(arg)
    return (code.format(c) if code is not None else F.numpy_code(n.name, c)), na


def _sum_axis(P, n: N.SumAxis):
    c, na = P.p(n.a)
    if na < 2:
        return (f"np.sum({c})", 0) if n.shape == N.SCALAR else (c, na)
    return f"np.sum({c}, axis={n.axis})", 1


def _mean_axis(P, n: N.MeanAxis):
    c, na = P.p(n.a)
    if na < 2:
        return (f"np.mean({c})", 0) if n.shape == N.SCALAR else (c, na)
    return f"np.mean({c}, axis={n.axis})", 1


def _softmax(P, n):
    c, na = P.p(n.a)
    return softmax_code(c, P), na


# functions that a `function` field defines for itself where a self-contained expression needs
# a lambda: key (as in NumpyPrinter.helpers) -> (local name, its definition)
LOCAL_HELPERS = {
    "softmax": ("softmax", "def softmax(z):\n"
                           "    e = np.exp(z - np.max(z, axis=-1, keepdims=True))\n"
                           "    return e / np.sum(e, axis=-1, keepdims=True)"),
}


def softmax_code(c: str, P) -> str:
    """The stable softmax of c along its last axis (any batch rank): the file's helper where it
    has one, else a lambda called in place that computes exp once."""
    if "softmax" in P.helpers:
        return f"{P.helpers['softmax']}({c})"
    e = "(lambda e: e / np.sum(e, axis=-1, keepdims=True))"
    return f"(lambda z: {e}(np.exp(z - np.max(z, axis=-1, keepdims=True))))({c})"


def _ones(P, n):
    return f"np.ones({P.size(n.shape[0])})", 1


def _identity(P, n):
    return f"np.eye({P.size(n.shape[0])})", 2


def _power(P, n):
    (a, na), (p, _) = P.wrap(n.a), P.wrap(n.p)
    return f"{a} ** {p}", na


PRINT = {
    N.Sym: _sym, N.Num: _num, N.Size: lambda P, n: (P.size(n.name), 0),
    N.Ones: _ones, N.Identity: _identity,
    N.MatMul: _matmul, N.ScalarMul: _scalarmul, N.Div: _div,
    N.Add: _sum, N.Sub: _sum,
    N.Neg: lambda P, n: (lambda c: (f"-{c[0]}", c[1]))(P.wrap(n.a)),
    N.Transpose: _transpose,
    N.Inverse: _square("np.linalg.inv({})", 2, lambda c, n: f"(1 / ({c}))"),
    N.MatPow: _square("np.linalg.matrix_power({}, {k})", 2, lambda c, n: f"({c}) ** {n.k}"),
    N.Power: _power, N.HadPow: _power,
    N.Hadamard: _hadamard, N.HadDiv: _elementwise("/"),
    N.Trace: _square("np.trace({})", 0, lambda c, n: c), N.Det: _square("np.linalg.det({})", 0, lambda c, n: c),
    N.LogDet: _square("np.log(np.linalg.det({}))", 0, lambda c, n: f"np.log({c})"), N.Norm: _call("np.linalg.norm({})", 0),
    N.Norm2: _call("np.sum({} ** 2)", 0), N.SumAll: _call("np.sum({})", 0),
    N.SumAxis: _sum_axis, N.Mean: _call("np.mean({})", 0), N.MeanAxis: _mean_axis, N.Func: _func, N.Softmax: _softmax,
    N.DiagMat: _call("np.diag({})", 2), N.DiagVec: _call("np.diag({})", 1),
    N.Conv: _conv, N.Flip: _flip,
}


# ---- common subexpressions --------------------------------------------------------------------
_CHEAP = (N.Sym, N.Num, N.Size, N.Ones, N.Identity)


def _worth_naming(node) -> bool:
    """Whether computing a subtree once pays: not a variable, a number, a ones vector or a
    transpose of one (a view)."""
    if isinstance(node, _CHEAP):
        return False
    if isinstance(node, (N.Transpose, N.Neg)) and isinstance(node.a, _CHEAP):
        return False
    return _spread(node) is None


def common_subtrees(*roots: N.Node, worth=None) -> list:
    """The subtrees the trees use more than once, each listed after those inside it. Counted
    over the trees as one graph of distinct subtrees: a subtree inside a repeated one counts
    once unless it is also used elsewhere. `worth`: which of them pay for a name of their own
    (by default _worth_naming: not a variable, a number, a ones vector or a view). The
    `function` field's printer and a module's backward pass (modulegen.plan) name the same
    subtrees by this one count."""
    worth = worth or _worth_naming
    uses: dict = {}
    order: list = []                         # distinct subtrees, children before parents
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        x, done = stack.pop()
        if done:
            order.append(x)
            continue
        uses[x] = uses.get(x, 0) + 1
        if uses[x] > 1:
            continue
        stack.append((x, True))
        stack.extend((c, False) for c in reversed(x.children()))
    return [x for x in order if uses[x] > 1 and worth(x)]


# ---- index forms: np.einsum ------------------------------------------------------------------
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class EinsumPrinter:
    """A sum of sifted terms -> a sum of np.einsum calls, for results with no closed form, at
    any rank. A place that holds index arithmetic (X_{n,c,i+p-1,j+q-1}) is read through a 0/1
    shift tensor E_{h,i,p} = [h = i + p - 1] over a new summed letter h, so that entries out of
    range are 0 (never a Python loop over entries); a Kronecker delta of index expressions is
    such a tensor too. A factor with no matrix form (exp(Q_bik), 1/Σ_k exp(X_bik)) is printed
    as an array over its own indices, recursively."""

    def __init__(self, printer: NumpyPrinter, matcher, ctx):
        self.P, self.M, self.ctx = printer, matcher, ctx

    def code(self, terms, free: tuple) -> str:
        if not terms:
            dims = ", ".join(self.P.size(self.ctx.ranges[i]) for i in free)
            return f"np.zeros(({dims},))" if len(free) == 1 else f"np.zeros(({dims}))"
        return " + ".join(self.term(t, free) for t in terms)

    def term(self, t, free, staged=True):
        import sympy as sp
        t = self._reindexed(t, free)
        if staged:
            two = self._staged(t, free)
            if two is not None:
                return two
        letters: dict = {}

        def letter(s):
            if s not in letters:
                if len(letters) >= len(LETTERS):
                    raise ValueError("too many indices for np.einsum")
                letters[s] = LETTERS[len(letters)]
            return letters[s]
        for s in list(free) + list(t.dummies):
            letter(s)
        order = list(free) + list(t.dummies)
        subs, args = [], []
        coeff_value, factors = t.coeff, list(t.factors)
        entries = [c for c in sp.Mul.make_args(t.coeff) if c.has(sp.Indexed)]
        if entries:                 # an entry at a fixed place (x_1 of x[1] x[2]): an operand
            coeff_value = sp.Mul(*[c for c in sp.Mul.make_args(t.coeff) if not c.has(sp.Indexed)])
            factors += entries
        for f in factors:
            for code, idx in self.operands(f, order):
                subs.append("".join(letter(i) for i in idx))
                args.append(code)
        for i in free:                       # a free index no factor carries: broadcast
            if not any(letters[i] in s for s in subs):
                subs.append(letters[i])
                args.append(f"np.ones({self.P.size(self.ctx.ranges[i])})")
        out = "".join(letters[i] for i in free)
        coeff = self.P.wrap(self.M.scalar(coeff_value))[0] if coeff_value != 1 else None     # (a - b) * einsum
        # three or more operands: let NumPy choose the contraction order (one loop over every
        # index at once is exponential in their number)
        opt = ", optimize=True" if len(args) > 2 else ""
        if len(args) == 1 and subs[0] == out:        # nothing to contract: the operand itself
            e = args[0] if not coeff or _atomic(args[0]) else f"({args[0]})"     # n^2 (1 - tanh(y)^2)
        else:
            e = f"np.einsum('{','.join(subs)}->{out}', {', '.join(args)}{opt})" if args else "1.0"
        del sp
        return f"{coeff} * {e}" if coeff else e

    # ---- index arithmetic on the cheaper entry
    def _estimate(self, d) -> int:
        """A size's rough magnitude for choosing among equal forms: a size subtracted in some
        range (the kernel k of d - k + 1) counts 3, any other 32."""
        small = {n for r in self.ctx.ranges.values() if isinstance(r, N.LinSize) for n, c in r.terms if c < 0}
        if isinstance(d, int):
            return d
        if isinstance(d, N.LinSize):
            return max(1, d.value({n: (3 if n in small else 32) for n, _ in d.terms}))
        return 3 if d in small else 32

    def _cost(self, t, free) -> int:
        import math
        idx = set(free) | set(t.dummies)
        return math.prod(self._estimate(self.ctx.ranges[i]) for i in idx if i in self.ctx.ranges)

    def _reindexed(self, t, free):
        """The term with a summed index q renamed where that makes the einsum cheaper: q sits in
        one entry's place e = ±q + (other indices) and plainly in other entries whose axes are
        q's range; with q' = e (ranging over that place's axis) the place is plain and the
        arithmetic moves to the other entries (dX of a convolution: the window runs along
        the kernel, not along the image). Entries out of range are 0 on both sides, so the
        sum is the same."""
        best, cost = t, self._cost(t, free)
        for _ in range(len(t.dummies)):
            found = None
            for cand in self._renamings(best):
                c = self._cost(cand, free)
                if c < cost and (found is None or c < found[1]):
                    found = (cand, c)
            if found is None:
                return best
            best, cost = found
        return best

    def _renamings(self, t):
        import sympy as sp
        from .. import layout
        for q in t.dummies:
            places, plain_ok, plain = [], True, 0
            for f in t.factors:
                entries = [a for a in preorder(f) if isinstance(a, sp.Indexed)]
                if q in f.free_symbols and not (isinstance(f, sp.Indexed) and f.base.label.name in self.ctx.variables
                                                and f.base.label.name not in self.ctx.atoms):
                    plain_ok = False
                    break
                for e_ in entries:
                    if e_.base.label.name not in self.ctx.variables:     # an atom (softmax of a tensor)
                        plain_ok = plain_ok and q not in e_.free_symbols
                        continue
                    shape = self.ctx.variables[e_.base.label.name].shape
                    dims = list(shape) if layout.kind_of(shape) == "tensor" else [d for d in shape if d != 1]
                    for k, ix in enumerate(e_.indices):
                        if q not in ix.free_symbols:
                            continue
                        if ix == q:
                            plain += 1
                            if k >= len(dims) or dims[k] != self.ctx.ranges.get(q):
                                plain_ok = False
                        else:
                            places.append((e_, k, ix, dims[k] if k < len(dims) else None))
            if not plain_ok or not plain or len(places) != 1:      # q's range is kept by a plain place
                continue
            e_, k, ix, dim = places[0]
            c = sp.expand(ix).coeff(q)
            if c not in (1, -1) or dim is None:
                continue
            new = sp.Dummy(str(q), integer=True)
            self.ctx.ranges[new] = dim
            sol = sp.expand((new - (sp.expand(ix) - c * q)) / c)
            factors = tuple(f.xreplace({q: sol}) if f is not e_ else
                            f.func(f.base, *[new if j == k else i.xreplace({q: sol}) for j, i in enumerate(f.indices)])
                            for f in t.factors)
            factors = tuple(sp.Indexed(f.base, *[sp.expand(i) for i in f.indices]) if isinstance(f, sp.Indexed) else f
                            for f in factors)
            yield type(t)(t.coeff, factors, tuple(new if d == q else d for d in t.dummies))

    def operands(self, f, order) -> list:
        """[(code, indices)] whose einsum product is the factor f."""
        import sympy as sp
        from ..match import NoMatch
        if isinstance(f, sp.Indexed) and f.base.label.name not in self.ctx.atoms:
            return self._entry(f)
        if isinstance(f, sp.Indexed) and len(self.ctx.atoms[f.base.label.name].shape) > 2:
            return [self._tensor_atom(f)]
        if isinstance(f, sp.KroneckerDelta) and not all(a.is_Symbol for a in f.args):
            return [self._equal(f.args[0], f.args[1])]
        try:
            return [self.operand(f, order)]
        except (NoMatch, ValueError, TypeError, KeyError, IndexError):
            return [self.array(f, order)]

    def operand(self, f, order):
        from ..match import NoMatch, has_index_arithmetic
        if has_index_arithmetic(f):
            raise NoMatch
        node, idx = self.M.operand(f, order)
        if len(node.shape) > 2 or len(idx) > 2:
            raise NoMatch
        code, nd = self.P.p(node)
        if len(idx) == 2 and nd != 2:
            raise NoMatch
        return code, idx

    def array(self, f, order):
        """(code, indices) of any factor: an element-wise function or power of an index
        expression, printed through the expression's own einsum."""
        import sympy as sp
        from .. import functions as F
        idx = tuple(sorted(self.M.nz.indices(f), key=lambda s: order.index(s) if s in order else len(order)))
        if isinstance(f, sp.Function) and F.is_elementwise(f):
            inner = self.inside(f.args[0], idx)         # a sum of einsums: one operand (-(a + b))
            return F.numpy_code(F.name_of(f.func), inner if _atomic(inner) else f"({inner})"), idx
        if f.is_Pow and not self.M.nz.indices(f.exp):
            base = self.inside(f.base, idx)
            p = self.P.wrap(self.M.scalar(f.exp))[0]
            return f"({base}) ** {p}", idx
        if not idx and isinstance(f, (sp.Add, sp.Mul)):   # a scalar of sums, tanh(Σ_p x_p T_pqr z_r)^2 - 1:
            op = " + " if f.is_Add else " * "           # part by part (as a whole, inside() finds f again)
            return "(" + op.join(f"({self.inside(a, ())})" for a in f.args) + ")", idx
        if isinstance(f, (sp.Add, sp.Sum, sp.Mul, sp.Indexed)):
            return f"({self.inside(f, idx)})", idx
        from ..match import NoMatch
        raise NoMatch

    def inside(self, expr, idx) -> str:
        """An index expression as an array over idx (in that order)."""
        nz = self.M.nz
        terms = nz.simplify_terms(nz.terms(expr), set(idx))
        return self.code(terms, tuple(idx)) if terms else "0.0"

    def _tensor_atom(self, f):
        """(code, indices) of an atom of rank ≥ 3 (softmax along a tensor's last axis): the
        user's subtree printed with NumPy's meaning; all its places must be indexed."""
        node = self.ctx.atoms[f.base.label.name]
        if len(f.indices) != len(node.shape) or not all(e.is_Symbol for e in f.indices):
            raise ValueError("an atom with a unit axis or index arithmetic")
        return tensor_input_code(node, self.P), tuple(f.indices)

    def _entry(self, f):
        """A variable's entry: the array itself. A place that holds index arithmetic of one
        or two indices with signs ±1 (`i+p-1`, `m-q+1`) is read through a window view
        (`_windows`); any other, through a 0/1 shift tensor over a new summed index."""
        code, dims = self._array_of(f)
        return self._places(code, f.indices, dims)

    def _array_of(self, f):
        """(code, axis sizes) of an entry's variable in NumPy layout."""
        from .. import layout
        name = f.base.label.name
        code = py_name(name)
        shape = self.ctx.variables[name].shape if name in self.ctx.variables else None
        if shape is not None and layout.kind_of(shape) == "rowvector":
            code = f"{code}[0]"
        if shape is not None and layout.kind_of(shape) == "tensor" and 1 in shape and \
                len(f.indices) < len(shape):    # N: 1×S×S, its unit axis not indexed (X[n,c,i,j] of X: 1×C×H×W is)
            code = f"{code}[{', '.join('0' if d == 1 else ':' for d in shape)}]"
            shape = tuple(d for d in shape if d != 1)
        dims = [d for d in shape if d != 1] if shape is not None and layout.kind_of(shape) != "tensor" \
            else list(shape or [])
        return code, dims

    def _places(self, code, indices, dims):
        """[(code, indices)] whose einsum product is the array `code` (axes `dims`) at `indices`."""
        import sympy as sp
        idx, extra, windows = [], [], {}
        for k, e in enumerate(indices):
            if e.is_Symbol and e in self.ctx.ranges:
                idx.append(e)
                continue
            place = self._window_place(e, dims[k]) if k < len(dims) else None
            if place is not None:
                windows[k] = place
                idx.append(place[0][0][0])
                continue
            h = sp.Dummy("h")
            self.ctx.ranges[h] = dims[k]
            idx.append(h)
            extra.append(self._equal(h, e))
        if windows:
            code = self._windows(code, len(indices), windows)
            idx += [i for k in sorted(windows) for i, _ in windows[k][0][1:]]
        return [(code, tuple(idx))] + extra

    def _staged(self, t, free):
        """A term whose one entry E holds index arithmetic, in two einsums when that is
        cheaper (conv2d's dX): first the product with E's arithmetic places as new indices h
        (a plain product, BLAS), then that array read at the arithmetic through window views,
        its repeated indices taken along the diagonal (col2im as one einsum). None when one
        einsum is as cheap."""
        import math

        import sympy as sp
        entries = [f for f in t.factors if isinstance(f, sp.Indexed) and f.base.label.name in self.ctx.variables
                   and f.base.label.name not in self.ctx.atoms]
        windowed = [f for f in entries if any(not (e.is_Symbol and e in self.ctx.ranges) for e in f.indices)]
        if len(windowed) != 1 or len(t.factors) < 2 or t.coeff.free_symbols & set(self.ctx.ranges):
            return None
        E = windowed[0]
        code, dims = self._array_of(E)
        plain = lambda e: e.is_Symbol and e in self.ctx.ranges   # noqa: E731
        places = {k: e for k, e in enumerate(E.indices) if not plain(e)}
        if len(dims) != len(E.indices) or any(self._window_place(e, dims[k]) is None for k, e in places.items()):
            return None
        hs = {}
        for k in places:
            hs[k] = sp.Dummy("h")
            self.ctx.ranges[hs[k]] = dims[k]
        E1 = sp.Indexed(E.base, *[hs.get(k, e) for k, e in enumerate(E.indices)])
        others = [f for f in t.factors if f is not E]
        stage1 = set().union(*(self.M.nz.indices(f) for f in [E1, *others]))
        arith = set().union(*(e.free_symbols for e in places.values())) & set(self.ctx.ranges)
        keep = [i for i in [*free, *t.dummies, *hs.values()] if i in stage1 and (i in free or i in arith or i in hs.values())]
        keep = list(dict.fromkeys(keep))
        if any(i not in stage1 and i not in arith for i in free):
            return None
        size = lambda ix: math.prod(self._estimate(self.ctx.ranges[i]) for i in ix)   # noqa: E731
        direct = size(set(free) | set(t.dummies))
        final = set(free) | arith
        if size(stage1) + size(final) > direct:
            return None
        Term = type(t)
        first = self.term(Term(sp.Integer(1), (E1, *others), tuple(i for i in stage1 if i not in keep)), tuple(keep),
                          staged=False)
        axes = [places[k] if i in hs.values() else i for i in keep for k in [next((k for k, h in hs.items() if h == i), None)]]
        kdims = [self.ctx.ranges[i] for i in keep]
        ops = self._places(f"({first})", axes, kdims)
        if len(ops) != 1:
            return None
        letters = {}
        sub = "".join(letters.setdefault(i, LETTERS[len(letters)]) for i in ops[0][1])
        if any(i not in letters for i in free):
            return None
        out = "".join(letters[i] for i in free)
        e = f"np.einsum('{sub}->{out}', {ops[0][0]})"
        return f"{self.P.wrap(self.M.scalar(t.coeff))[0]} * {e}" if t.coeff != 1 else e

    def _window_place(self, e, dim):
        """A place `±a ± b + c` (or `±a + c`) over indices a, b of known ranges, as
        ([(index, sign), ...], pad before, pad after, start): its entries are those of the
        axis padded with zeros, from `start` on, the first index along the axis and the
        second along a window of its range; None for any other place."""
        import sympy as sp
        e = sp.expand(e)
        const, parts = 0, []
        for term in sp.Add.make_args(e):
            c, rest = term.as_coeff_Mul()
            if rest == 1 and c.is_Integer:
                const += int(c)
            elif rest in self.ctx.ranges and c in (1, -1) and all(rest != i for i, _ in parts):
                parts.append((rest, int(c)))
            else:
                return None
        if not 1 <= len(parts) <= 2 or dim is None:
            return None
        parts.sort(key=lambda p: (-p[1], str(p[0])))        # a +1 index along the axis, if any
        # 0-based: each index a as a' = a - 1 (sign +1) or A - a (sign -1, read reversed);
        # the entry's 0-based place is then Σ a' + off, running over span = Σ A - (n - 1) places
        ranges = [self.ctx.ranges[i] for i, _ in parts]
        off = N.lin(*[(r, -1) for r, (_, s) in zip(ranges, parts) if s < 0],
                    const=const - 1 + sum(1 for _, s in parts if s > 0))
        span = N.lin(*[(r, 1) for r in ranges], const=1 - len(parts))
        known = [r for r in self.ctx.ranges.values() if isinstance(r, N.LinSize)]
        before = _nonnegative(N.lin((off, -1)), known)
        after = _nonnegative(N.lin((off, 1), (span, 1), (dim, -1)), known)
        if before is None or after is None:
            return None
        return parts, before, after, N.lin((off, 1), (before, 1)), dim

    def _windows(self, code, ndim, windows):
        """The array with its windowed places (axis -> _window_place) read as window views:
        zero padding, a slice, np.lib.stride_tricks.sliding_window_view (the windows' axes
        appended at the end, in the order of the places) and reversed axes for signs -1."""
        pads, slices, wins, axes, flips = [], [], [], [], []
        size = self.P.size
        for k in range(ndim):
            if k not in windows:
                pads.append("(0, 0)")
                slices.append(":")
                continue
            parts, before, after, start, dim = windows[k]
            pads.append(f"({size(before)}, {size(after)})")
            span = N.lin(*[(self.ctx.ranges[i], 1) for i, _ in parts], const=1 - len(parts))
            stop = N.lin((start, 1), (span, 1))
            whole = start == 0 and stop == N.lin((dim, 1), (before, 1), (after, 1))
            slices.append(":" if whole else f"{size(start) if start != 0 else ''}:{size(stop)}")
        if any(windows[k][1] != 0 or windows[k][2] != 0 for k in windows):
            code = f"np.pad({code}, ({', '.join(pads)}{',' if ndim == 1 else ''}))"
        if any(s != ":" for s in slices):
            code = f"{code}[{', '.join(slices)}]"
        for k in sorted(windows):
            for i, _ in windows[k][0][1:]:
                wins.append(size(self.ctx.ranges[i]))
                axes.append(str(k))
        if wins:
            one = len(wins) == 1
            code = (f"np.lib.stride_tricks.sliding_window_view({code}, "
                    f"{wins[0] if one else '(' + ', '.join(wins) + ')'}, "
                    f"axis={axes[0] if one else '(' + ', '.join(axes) + ')'})")
        total = ndim + len(wins)
        flip = [":"] * total
        w = ndim
        for k in sorted(windows):
            parts = windows[k][0]
            if parts[0][1] < 0:
                flip[k] = "::-1"
            for _, s in parts[1:]:
                if s < 0:
                    flip[w] = "::-1"
                w += 1
        if "::-1" in flip:
            code = f"{code}[{', '.join(flip)}]"
        return code

    def _equal(self, a, b):
        """(code, indices) of the 0/1 tensor [a = b] over the indices of a and b."""
        import sympy as sp
        e = sp.expand(a - b)
        idx = sorted((s for s in e.free_symbols if s in self.ctx.ranges), key=str)
        if isinstance(a, sp.Symbol) and a in idx:
            idx.remove(a)
            idx.insert(0, a)
        n = len(idx)

        def axis(s):
            k = idx.index(s)
            where = ", ".join(":" if j == k else "None" for j in range(n))
            size = self.P.size(self.ctx.ranges[s])
            return f"np.arange(1, {size} + 1)[{where}]" if n > 1 else f"np.arange(1, {size} + 1)"

        def side(x):
            parts = []
            for term in sp.Add.make_args(sp.expand(x)):
                c, rest = term.as_coeff_Mul()
                if rest == 1:
                    parts.append(str(int(c)))
                    continue
                body = axis(rest) if rest in self.ctx.ranges else self.P.size(str(rest))
                parts.append(body if c == 1 else f"-{body}" if c == -1 else f"{int(c)} * {body}")
            return " + ".join(parts).replace("+ -", "- ") or "0"
        return f"(({side(a)}) == ({side(b)})) * 1.0", tuple(idx)


def _nonnegative(d, known=()):
    """max(0, d) for a size expression when its sign is known from every size being at least
    1 (an int, or Σ c·name + const with all c ≥ 0 and const ≥ -Σ c; 0 when -d is such), or
    from a computed size L in `known` being at least 1 (d - (L - 1) or -d - (L - 1) is such);
    None when it is not."""
    if not isinstance(d, int):
        for L in known:
            for sign in (1, -1):
                rest = N.lin((d, sign), (L, -1), const=1)
                if _nonnegative(rest) == rest and rest is not None:
                    return d if sign == 1 else 0
    if isinstance(d, int):
        return max(0, d)
    terms = d.terms if isinstance(d, N.LinSize) else ((d, 1),)
    const = d.const if isinstance(d, N.LinSize) else 0
    if all(c > 0 for _, c in terms) and const >= -sum(c for _, c in terms):
        return d
    if all(c < 0 for _, c in terms) and const <= -sum(c for _, c in terms):
        return 0
    return None


# ---- the matrix language on tensors, with NumPy's meaning (SPEC §1.2) ----------------------------
def tensor_input_code(node: N.Node, P: NumpyPrinter) -> str:
    """NumPy code of a typed subtree of tensor input (an atom's argument), with the meaning
    tensor_eval.py evaluates: np.matmul, np.swapaxes on the last two axes, NumPy's
    broadcasting (a column vector 1-D), softmax and sums along axes."""
    if not any(n.shape is not None and len(n.shape) > 2 for n in node.walk()):
        return P.wrap(node)[0] if node.shape == N.SCALAR else f"({P.code(node, layout_kind(node.shape))})"
    rule = TENSOR_PRINT.get(type(node))
    if rule is None:
        raise ValueError(f"no NumPy spelling of {type(node).__name__} on tensors here")
    return rule(node, lambda n: tensor_input_code(n, P), P)


def layout_kind(shape) -> str:
    from ..layout import kind_of
    return kind_of(shape)


def _t_transpose(n, c, P):
    inner = c(n.a)
    if len(n.a.shape) == 2 and n.a.shape[1] == 1 and n.a.shape[0] != 1:
        return f"{inner}[None, :]"
    if len(n.shape) == 2 and n.shape[1] == 1:
        return f"np.ravel({inner})"
    return f"np.swapaxes({inner}, -1, -2)"


def _t_softmax(n, c, P):
    return softmax_code(c(n.a), P)


def _t_func(n, c, P):
    if n.name == "log" and isinstance(n.a, N.Softmax):      # log_softmax, stable
        z = "(z - np.max(z, axis=-1, keepdims=True))"
        return f"(lambda z: {z} - np.log(np.sum(np.exp({z}), axis=-1, keepdims=True)))({c(n.a.a)})"
    return F.numpy_code(n.name, c(n.a))


TENSOR_PRINT = {
    N.Sym: lambda n, c, P: py_name(n.name),
    N.MatMul: lambda n, c, P: f"np.matmul({c(n.a)}, {c(n.b)})",
    N.Transpose: _t_transpose,
    N.Add: lambda n, c, P: f"({c(n.a)} + {c(n.b)})",
    N.Sub: lambda n, c, P: f"({c(n.a)} - {c(n.b)})",
    N.Neg: lambda n, c, P: f"(-{c(n.a)})",
    N.Hadamard: lambda n, c, P: f"({c(n.a)} * {c(n.b)})",
    N.HadDiv: lambda n, c, P: f"({c(n.a)} / {c(n.b)})",
    N.ScalarMul: lambda n, c, P: f"({c(n.s)} * {c(n.a)})",
    N.Div: lambda n, c, P: f"({c(n.a)} / {c(n.s)})",
    N.HadPow: lambda n, c, P: f"({c(n.a)} ** {c(n.p)})",
    N.Power: lambda n, c, P: f"({c(n.a)} ** {c(n.p)})",
    N.SumAll: lambda n, c, P: f"np.sum({c(n.a)})",
    N.Mean: lambda n, c, P: f"np.mean({c(n.a)})",
    N.SumAxis: lambda n, c, P: f"np.sum({c(n.a)}, axis={n.axis})",
    N.MeanAxis: lambda n, c, P: f"np.mean({c(n.a)}, axis={n.axis})",
    N.Norm: lambda n, c, P: f"np.sqrt(np.sum({c(n.a)} ** 2))",
    N.Norm2: lambda n, c, P: f"np.sum({c(n.a)} ** 2)",
    N.Func: _t_func,
    N.Softmax: _t_softmax,
}
