"""One equation -> one module file for NumPy, PyTorch or JAX (SPEC §2 `codegen EQUATION`).

    indexcalc codegen "Y = tanh(X W + b)" --wrt X,W,b --where "X: S×M, W: M×N, b: 1×N" --target torch

The stages, data flowing one way:
  1. `backprop` derives every gradient (each one checked by the guard against finite
     differences), `fold` writes it in terms of the output Y where that applies.
  2. `plan`: the forward pass keeps the subexpressions of the right side that a gradient
     uses (they are saved for the backward pass, not recomputed); the gradients share every
     common subexpression, computed once (`cse`). Both are checked numerically against the
     derived closed forms before anything is printed.
  3. A printer per target (TARGETS) prints each assignment; a jinja2 template per target
     (templates/module_<target>.py.j2) writes the file, whose `python FILE` runs a float64
     gradient check on random inputs (NumPy: central differences; torch: gradcheck; JAX:
     check_grads) and exits non-zero on failure.
"""
from __future__ import annotations

import ast
import keyword
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from . import layout as LY
from . import nodes as N
from . import verify as V
from .errors import IndexCalcError, UnsupportedError, VerificationError
from .evaluate import evaluate
from .fold import Values, fold, replace_subtree
from .functions import ERF_CODE
from .printing.numpy_code import (
    PRINT,
    STABLE_LOG,
    NumpyPrinter,
    common_subtrees,
    py_name,
    stable_log,
)
from .shapes import Variable, Variables

# names the generated files define or import: a variable may not take one of them
RESERVED = {"np", "torch", "jax", "jnp", "math", "sys", "ctx", "self", "res", "rng", "main",
            "functools", "check_grads", "gradcheck"}
IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_identifier(name: str, what: str, ascii_only: bool = True) -> str:
    """A name that goes into generated code as it is: an identifier, not a keyword, not a name
    the file itself uses. The class's name is plain ASCII; a variable or a size may be any
    identifier that Python does not normalise into another one (ε, γ, β of a LayerNorm, as
    codegen.py's problem-file modules take them)."""
    plain = IDENT.match(name) if ascii_only else \
        name.isidentifier() and not name.startswith("_") and unicodedata.normalize("NFKC", name) == name
    if not plain or keyword.iskeyword(name) or name in RESERVED or name.startswith("d_"):
        raise IndexCalcError(f"{what} {name!r} cannot be a name in the generated code: use letters, "
                             f"digits and _ (starting with a letter), not a Python keyword, nor one of "
                             f"{', '.join(sorted(RESERVED))}")
    return name


# ---- stage 2: what the forward pass keeps, what the backward pass shares ---------------------
def _cheap(node: N.Node) -> bool:
    """Not worth a name of its own: a leaf, a transpose, a sign, a diagonal or ones matrix
    (the printer broadcasts those instead of building them), a spread v 1ᵀ."""
    if isinstance(node, (N.Sym, N.Num, N.Size, N.Ones, N.Identity, N.Transpose, N.Neg, N.DiagMat)):
        return True
    if isinstance(node, N.MatMul) and (_is_ones(node.a) or _is_ones(node.b)) and \
            not (node.shape[0] == 1 or node.shape[1] == 1):
        return True                             # v 1ᵀ: a broadcast, never built
    return False


def _is_ones(node) -> bool:
    return isinstance(node, N.Ones) or (isinstance(node, N.Transpose) and isinstance(node.a, N.Ones))


def _size(node: N.Node) -> int:
    return sum(1 for _ in node.walk())


def _subtrees(node: N.Node):
    for n in node.walk():
        if not _cheap(n):
            yield n


def _uses(trees, sub) -> bool:
    return any(sub == n for t in trees for n in t.walk())


@dataclass
class Plan:
    """The assignments of the forward and the backward pass, as trees over named values."""
    forward: list = field(default_factory=list)     # [(name, tree)] the last one is the output
    saved: list = field(default_factory=list)       # names the backward pass reads from forward
    backward: list = field(default_factory=list)    # [(name, tree)] temporaries
    grads: dict = field(default_factory=dict)       # wrt -> tree over inputs, saved and temps
    temps: dict = field(default_factory=dict)       # name -> shape of every named value


def times_scalar(c: N.Node, g: N.Node) -> N.Node:
    """c g with every scalar factor and divisor of g gathered with c into one coefficient in
    front: dL ((A - T) / S) -> (dL / S) (A - T), one pass over the array where
    `dL * ((A - T) / S)` makes two."""
    nums, dens, sign = [c], [], 1
    while g.shape != N.SCALAR:
        if isinstance(g, N.ScalarMul) and g.s.shape == N.SCALAR:
            nums.append(g.s)
            g = g.a
        elif isinstance(g, N.Div):
            dens.append(g.s)
            g = g.a
        elif isinstance(g, N.Neg):
            sign, g = -sign, g.a
        else:
            break
    coef = nums[0]
    for x in nums[1:]:
        coef = N.ScalarMul(coef, x, N.SCALAR)
    if dens:
        den = dens[0]
        for x in dens[1:]:
            den = N.ScalarMul(den, x, N.SCALAR)
        coef = N.Div(coef, den, N.SCALAR)
    if sign < 0:
        coef = N.Neg(coef, N.SCALAR)
    return N.ScalarMul(coef, g, g.shape)


# ---- the order of operations: a matrix that repeats a vector is built last ----------------------
def _spread(node):
    """(v, rebuild) when node is v 1ᵀ (a column repeated across) or 1 wᵀ (a row repeated down),
    rebuild(u) the same spread of another vector u; else None."""
    if isinstance(node, N.MatMul) and node.shape[0] != 1 and node.shape[1] != 1:
        if _is_ones(node.b) and node.a.shape[1] == 1:
            return node.a, lambda u: N.MatMul(u, node.b, node.shape)
        if _is_ones(node.a) and node.b.shape[0] == 1:
            return node.b, lambda u: N.MatMul(node.a, u, node.shape)
    return None


def _scaled(node, scale):
    """node with a scalar operation (`scale`: vector node -> vector node) applied to the
    vector of a spread it holds as a factor, a spread's n numbers rather than the matrix's
    n·m; None when it holds none. A sum absorbs it only when every term does (else scaling
    the sum once is no dearer)."""
    sp = _spread(node)
    if sp is not None:
        return sp[1](scale(sp[0]))
    if isinstance(node, N.Hadamard):
        for k in ("a", "b"):
            got = _scaled(getattr(node, k), scale)
            if got is not None:
                return node.replace(**{k: got})
        return None
    if isinstance(node, N.HadDiv):
        got = _scaled(node.a, scale)
        return None if got is None else node.replace(a=got)
    if isinstance(node, (N.Add, N.Sub)):
        a, b = _scaled(node.a, scale), _scaled(node.b, scale)
        return None if a is None or b is None else node.replace(a=a, b=b)
    return None


_VECTOR_OPS = {     # an operation on spreads of one kind is the spread of the operation on their vectors
    N.Func: lambda n, v: n.replace(a=v[0], shape=v[0].shape),
    N.HadPow: lambda n, v: n.replace(a=v[0], shape=v[0].shape),
    N.Neg: lambda n, v: n.replace(a=v[0], shape=v[0].shape),
    N.Div: lambda n, v: n.replace(a=v[0], shape=v[0].shape),
    N.ScalarMul: lambda n, v: n.replace(a=v[0], shape=v[0].shape),
    N.Add: lambda n, v: n.replace(a=v[0], b=v[1], shape=v[0].shape),
    N.Sub: lambda n, v: n.replace(a=v[0], b=v[1], shape=v[0].shape),
    N.Hadamard: lambda n, v: n.replace(a=v[0], b=v[1], shape=v[0].shape),
    N.HadDiv: lambda n, v: n.replace(a=v[0], b=v[1], shape=v[0].shape),
}
_DIAGONAL_OPS = (N.Add, N.Sub, N.Neg, N.Div, N.ScalarMul, N.Hadamard)    # zeros off the diagonal stay zeros
_SCALAR_OPS = {     # a scalar operation on a matrix, as the same operation on one vector
    N.Div: lambda n: (n.a, lambda v: N.Div(v, n.s, v.shape)),
    N.ScalarMul: lambda n: (n.a, lambda v: N.ScalarMul(n.s, v, v.shape)),
    N.Neg: lambda n: (n.a, lambda v: N.Neg(v, v.shape)),
}


def softmax_parts(node: N.Node, only=None) -> N.Node:
    """node with each row-wise softmax of a matrix written as its parts, as jax.grad keeps
    them: softmax(Z) = E ⊘ (s 1ᵀ) with E = exp(Z - m 1ᵀ) (m the row maxima) and s = E 1, and
    log(softmax(Z)) = (Z - m 1ᵀ) - log(s) 1ᵀ. The forward pass keeps E and s; a backward
    product (u 1ᵀ) ∘ softmax(Z) becomes E ∘ ((u ⊘ s) 1ᵀ) (broadcast_last), the division
    done on the n row sums rather than the n·m entries. Stable: Z - m 1ᵀ ≤ 0, so E ≤ 1
    and s ≥ 1 (its log is exact); s is a SumAxis, which no stable-log rule rewrites."""
    if isinstance(node, N.Func) and node.name == "log" and _row_softmax(node.a, only):
        shifted, _, s = _softmax_pieces(node.a.a)
        return N.Sub(shifted, _spread_like(N.Func("log", s, s.shape), node.shape), node.shape)
    if _row_softmax(node, only):
        return _softmax_quotient(node.a)
    return node.map_children(lambda c: softmax_parts(c, only))


def _row_softmax(node, only=None) -> bool:
    return isinstance(node, N.Softmax) and len(node.shape) == 2 and 1 not in node.shape and \
        (only is None or node.a in only)


def _softmax_quotient(z):
    _, e, s = _softmax_pieces(z)
    return N.HadDiv(e, _spread_like(s, z.shape), z.shape)


def _spread_like(v, shape):
    """v 1ᵀ of the given matrix shape."""
    return N.MatMul(v, N.Transpose(N.Ones((shape[1], 1)), (1, shape[1])), shape)


def _softmax_pieces(z):
    shifted = N.Sub(z, _spread_like(N.RowMax(z, (z.shape[0], 1)), z.shape), z.shape)
    e = N.Func("exp", shifted, z.shape)
    return shifted, e, N.SumAxis(e, 1, (z.shape[0], 1))


def _times_quotient(node):
    """(u 1ᵀ) ∘ (X ⊘ (s 1ᵀ)) = X ∘ ((u ⊘ s) 1ᵀ), spreads alike; else None."""
    for f, q in ((node.a, node.b), (node.b, node.a)):
        sf = _spread(f)
        if sf is not None and isinstance(q, N.HadDiv):
            sq = _spread(q.b)
            if sq is not None and _ones_of(f) == _ones_of(q.b) and sf[0].shape == sq[0].shape:
                return N.Hadamard(q.a, sf[1](N.HadDiv(sf[0], sq[0], sf[0].shape)), node.shape)
    return None


def broadcast_last(node: N.Node) -> N.Node:
    """node with element-wise work done on vectors before they are spread into matrices:
    sqrt(v 1ᵀ / n + e 1ᵀ) = sqrt(v / n + e 1) 1ᵀ (n square roots, not n·m), and a scalar
    factor or divisor of a product with a spread scales the spread's vector:
    ((v 1ᵀ) ∘ X) / n = ((v / n) 1ᵀ) ∘ X (one pass over X, not two). Exact identities; the
    plan is checked numerically against the derived forms (check_plan)."""
    node = node.map_children(broadcast_last)
    op = _VECTOR_OPS.get(type(node))
    if op is not None and node.shape[0] != 1 and node.shape[1] != 1:
        kids = [c for c in (getattr(node, "a", None), getattr(node, "b", None)) if c is not None]
        spreads = [_spread(c) for c in kids]
        if all(s is not None for s in spreads) and \
                all(c.shape == kids[0].shape and _ones_of(c) == _ones_of(kids[0]) for c in kids):
            return spreads[0][1](op(node, [s[0] for s in spreads]))
    if type(node) in _DIAGONAL_OPS:       # diag(a) - diag(b) = diag(a - b): a diagonal stays a vector
        kids = [c for c in (getattr(node, "a", None), getattr(node, "b", None)) if c is not None]
        if all(isinstance(c, N.DiagMat) for c in kids):
            return N.DiagMat(_VECTOR_OPS[type(node)](node, [c.a for c in kids]), node.shape)
    if isinstance(node, N.Hadamard) and node.shape[0] != 1 and node.shape[1] != 1:
        node = _times_quotient(node) or node
    if type(node) in _SCALAR_OPS and node.shape[0] != 1 and node.shape[1] != 1:
        inner, scale = _SCALAR_OPS[type(node)](node)
        got = _scaled(inner, scale)
        if got is not None:
            return got
    return node


def module_trees(rhs, grads: dict):
    """The trees a module computes: broadcasts last, and a softmax as its parts where that
    saves work: where each of its uses is under a log or times a spread, so that its
    quotient E ⊘ (s 1ᵀ) is never built. Where the softmax itself is needed (attention's
    softmax(Q Kᵀ) V) it stays whole: one call of the target's own softmax."""
    trees = [broadcast_last(t) for t in [rhs] + list(grads.values())]
    args = {n.a for t in trees for n in t.walk() if _row_softmax(n)}
    parted = [broadcast_last(softmax_parts(t, args)) for t in trees]
    built = {n for t in parted for n in t.walk() if isinstance(n, N.HadDiv)}
    args = {z for z in args if _softmax_quotient(z) not in built}
    out = [broadcast_last(softmax_parts(t, args)) for t in trees]
    return out[0], dict(zip(grads, out[1:]))


def _ones_of(spread_node):
    """Which way a spread repeats its vector (the ones factor), to combine only alike spreads."""
    return spread_node.b if _is_ones(spread_node.b) else spread_node.a


def _share_by_value(grads: dict, rhs, output: str, point) -> dict:
    """Gradients whose pieces have the same value at the point (or its transpose) written with
    one piece, outermost first: attention's ∂L/∂K holds (A ∘ dA)ᵀ - Aᵀ diag((A ∘ dA) 1), the
    transpose of ∂L/∂Q's A ∘ (dA - (A ∘ dA) 1 1ᵀ); written as that piece transposed, the
    backward pass computes it once. check_plan confirms the whole at another point."""
    env = dict(point.env2d)
    with np.errstate(all="ignore"):
        env[output] = evaluate(rhs, env, point.sizes)
    values = Values(SimpleNamespace(env2d=env, sizes=point.sizes))      # Y's value too
    seen: list = []

    def informative(node):         # a value that is zero (a centred sum) is the value of anything zero
        v = values.of(node)
        return v is not None and not np.allclose(v, 0, rtol=0, atol=1e-9)

    def visit(node):
        if not _cheap(node) and node.shape != N.SCALAR and informative(node):
            for prev in seen:
                if prev == node:
                    break
                same = values.same(node, prev)
                if same == "equal":
                    return prev
                if same == "transposed":
                    return N.Transpose(prev, node.shape)
            else:
                seen.append(node)
        return node.map_children(visit)

    return {w: visit(g) for w, g in grads.items()}


def _name_piece(node: N.Node, piece: N.Node, name: N.Sym) -> N.Node:
    """node with the piece named, except inside a log that has a stable form: log(softmax(Z))
    stays whole, so the printer writes log-softmax (a name would hide the softmax, and
    log(_f1) is -inf where softmax underflows), while softmax(Z) is named for the backward."""
    if node == piece:
        return name
    if isinstance(node, N.Func) and node.name == "log" and any(m(node.a) is not None for m, _, _ in STABLE_LOG):
        return node
    return node.map_children(lambda c: _name_piece(c, piece, name))


def plan(rhs: N.Node, output: str, grads: dict, point) -> Plan:
    """grads: {wrt: closed form}. The forward pass names the pieces of rhs that a gradient
    uses; the backward pass names every subexpression two gradient pieces share.

    A gradient's piece is the forward's piece when both have the same value at a random
    point (value numbering: `1 b + X W` in a derived form is the `X W + b` the user wrote),
    or the transpose of its value; check_plan confirms the whole at another point."""
    P = Plan()
    counter = iter(range(1, 10_000))
    values = Values(point)
    pieces = [n for n in dict.fromkeys(_subtrees(rhs))]           # in walk order, rhs first
    names: dict = {rhs: output}
    used: list = []

    def name_of(sub):
        if sub not in names:
            names[sub] = f"_f{next(counter)}"
        if sub != rhs and sub not in used:
            used.append(sub)
        return N.Sym(names[sub], sub.shape)

    def reuse(node):
        if not _cheap(node) and not N.contains(node, "d" + output):
            for sub in pieces:
                same = values.same(node, sub)
                if same == "equal":
                    return name_of(sub)
                if same == "transposed":
                    return N.Transpose(name_of(sub), node.shape)
        return node.map_children(reuse)

    trees = {w: reuse(g) for w, g in _share_by_value(grads, rhs, output, point).items()}
    # a piece the forward pass would compute twice, in the output or in another piece's
    # definition (the shifted Z of log-softmax's parts, X W in Z - m(X W) 1ᵀ): computed once,
    # the largest first
    def named(e, own=None):
        for prev in sorted(used, key=_size, reverse=True):
            if prev != own:
                e = replace_subtree(e, prev, N.Sym(names[prev], prev.shape))
        return e
    while True:
        texts = [named(rhs)] + [named(u, u) for u in used]
        counts = Counter(n for e in texts for n in _subtrees(e) if not isinstance(n, N.Sym))
        shared = [n for n, c in counts.items() if c > 1]
        if not shared:
            break
        name_of(max(shared, key=_size))
    # the forward pass: each used piece once, smallest first, from the pieces inside it
    defs = []
    for sub in sorted(used, key=_size):
        expr = sub
        for prev in sorted((d for d in used if d != sub), key=_size, reverse=True):
            expr = _name_piece(expr, prev, N.Sym(names[prev], prev.shape))
        defs.append((names[sub], expr))
        P.temps[names[sub]] = sub.shape
    body = rhs
    for prev in sorted(used, key=_size, reverse=True):
        body = _name_piece(body, prev, N.Sym(names[prev], prev.shape))
    P.forward = defs + [(output, body)]
    P.temps[output] = rhs.shape
    # backward: the subtrees the gradients share, by the count the `function` field's printer
    # uses (common_subtrees), each named, outermost first so that an inner one is named inside it
    backward = []
    for sub in reversed(common_subtrees(*trees.values(), worth=lambda n: not _cheap(n))):
        name = f"_b{next(counter)}"
        backward = [(n_, replace_subtree(e, sub, N.Sym(name, sub.shape))) for n_, e in backward]
        trees = {w: replace_subtree(t, sub, N.Sym(name, sub.shape)) for w, t in trees.items()}
        backward.append((name, sub))
        P.temps[name] = sub.shape
    P.backward = _ordered(backward)
    P.grads = trees
    return P


def _ordered(defs):
    """Definitions in an order where each one's names are defined before it."""
    out, done, todo = [], set(), list(defs)
    names = {n for n, _ in defs}
    while todo:
        for k, (name, expr) in enumerate(todo):
            needs = {s.name for s in expr.walk() if isinstance(s, N.Sym)} & names
            if needs <= done:
                out.append((name, expr))
                done.add(name)
                del todo[k]
                break
        else:                                   # cannot happen: a name never uses a later one
            raise IndexCalcError("indexcalc bug: a cycle among the backward pass's temporaries")
    return out


def check_plan(P: Plan, rhs, output, grads, point):
    """The planned passes compute the derived gradients (numerically, at the guard's point)."""
    env = dict(point.env2d)
    with np.errstate(all="ignore"):
        want_y = evaluate(rhs, env, point.sizes)
        for name, expr in P.forward:
            env[name] = evaluate(expr, env, point.sizes)
        ok = np.allclose(env[output], want_y, rtol=1e-9, atol=1e-12)
        for name, expr in P.backward:
            env[name] = evaluate(expr, env, point.sizes)
        for w, g in grads.items():
            want = evaluate(g, {**point.env2d, output: want_y}, point.sizes)
            got = evaluate(P.grads[w], env, point.sizes)
            ok = ok and got.shape == want.shape and np.allclose(got, want, rtol=1e-8, atol=1e-10)
    if not ok:
        raise VerificationError("indexcalc bug: the generated forward or backward pass differs from "
                                "the verified closed forms; no code is written")


# ---- stage 3: printers per target ----------------------------------------------------------------
class TargetPrinter(NumpyPrinter):
    """The NumPy printer with some node types printed differently and NumPy's names mapped
    to the target's (`names`); a NumPy name the target has no row for is unsupported."""
    target = "numpy"
    rules: dict = {}
    names: dict = {}

    def p(self, node: N.Node):
        rule = self.rules.get(type(node)) or PLAN_PRINT.get(type(node)) or PRINT[type(node)]
        return self.finish(node, rule(self, node))

    def line(self, node: N.Node, kind=None) -> str:
        return self.translate(self.code(node, kind))

    calls: dict = {}          # index_pipeline's NumPy calls the target writes otherwise (_ArrayCode)
    subscript = None

    def array_code(self, code: str, like: str) -> str:
        """A NumPy expression of index_pipeline's code (codeshare's passes: `_einsum`, window
        views, pads, reversed slices, batched @) in the target's terms; `like` names an array
        of the pass whose dtype new arrays (np.ones) take."""
        tree = _ArrayCode(self, like).visit(ast.parse(code, mode="eval"))
        return self.translate(ast.unparse(ast.fix_missing_locations(tree)))

    def translate(self, code: str) -> str:
        if self.target == "numpy":
            return code
        code = target_erf(code, self.target)

        def one(m):
            name = m.group(1)
            if name not in self.names:
                raise IndexCalcError(f"`codegen --target {self.target}` does not support NumPy's "
                                     f"np.{name} yet (use --target numpy)")
            return self.names[name]
        return re.sub(r"(?<![\w.])np\.([A-Za-z_][\w.]*)", one, code)


# nodes only a plan holds (softmax_parts), in NumPy's names, which translate() maps to the target's
PLAN_PRINT = {N.RowMax: lambda P, n: (lambda c: (f"np.max({c[0]}, axis=-1)", 1))(P.p(n.a))}


# ---- index_pipeline's NumPy code (einsum, window views, pads, flips) in a target's terms ----------
from .codeshare import dotted_name as _dotted  # noqa: E402 - a call's dotted name, one reader for both


def _call(func: str, args, keywords=()) -> ast.Call:
    return ast.Call(func=ast.parse(func, mode="eval").body, args=list(args), keywords=list(keywords))


def _tuple(node) -> ast.expr:
    return node if isinstance(node, ast.Tuple) else ast.Tuple(elts=[node], ctx=ast.Load())


def _of_sizes(node, floats=()) -> bool:
    """An expression of sizes, constants and the plain numbers `floats` (the scalar inputs not
    differentiated, which the module takes as Python floats) only (Q.shape[-1], 2 * np.pi,
    np.sqrt(D) with D: scalar): a number, not an array."""
    numbers = {id(n.value) for n in ast.walk(node) if isinstance(n, ast.Attribute) and
               (n.attr == "shape" or _dotted(n) in ("np.pi", "np.e"))}
    return all(id(n) in numbers or n.id in floats for n in ast.walk(node) if isinstance(n, ast.Name))


def _math_of_sizes(P, node, like):
    """np.sqrt(Q.shape[-1]), np.sqrt(D) of a scalar D: a function of a number is math's
    (torch.sqrt takes no int and no float: the generated check failed with a TypeError)."""
    name = _dotted(node.func).split(".")[-1]
    if len(node.args) == 1 and not node.keywords and _of_sizes(node.args[0], getattr(P, "floats", ())):
        return _call(f"math.{name}", node.args)
    return node


def _einsum_call(P, node, like):
    """The NumPy file's `_einsum` (a path cache) is the target's own einsum."""
    return _call("np.einsum", node.args, [k for k in node.keywords if k.arg != "optimize"])


def _like(P, node, like):
    """np.ones(n): made with the dtype (and device) of the pass's arrays."""
    extra = [ast.keyword(arg="dtype", value=ast.parse(f"{like}.dtype", mode="eval").body)]
    if P.target == "torch":
        extra.append(ast.keyword(arg="device", value=ast.parse(f"{like}.device", mode="eval").body))
    return ast.Call(func=node.func, args=node.args, keywords=[*node.keywords, *extra])


def _windows_call(P, node, like):
    """sliding_window_view(x, shape, axis=...) -> the generated file's `_windows(x, shape, axis)`
    (torch: Tensor.unfold, a view; JAX: a gather of the windows)."""
    axis = next((k.value for k in node.keywords if k.arg == "axis"), None)
    if len(node.args) != 2 or axis is None or len(node.keywords) != 1:
        raise UnsupportedError(f"`codegen --target {P.target}` does not support this window view "
                               f"({ast.unparse(node)}) yet (use --target numpy)")
    return _call("_windows", [node.args[0], _tuple(node.args[1]), _tuple(axis)])


def _pad_call(P, node, like):
    if node.keywords or len(node.args) != 2:
        raise UnsupportedError(f"`codegen --target {P.target}` does not support this padding "
                               f"({ast.unparse(node)}) yet (use --target numpy)")
    return _call("_pad", node.args)


def _correlate_call(P, node, like):
    return _call("_correlate", node.args, node.keywords)


def _number(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) or \
        isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and _number(node.operand)


def _tensor_args(P, node, like):
    """np.maximum(X, 0), np.logaddexp(0, -X): torch's functions of two arrays take no plain
    number, so a number is a tensor of the pass's dtype."""
    return ast.Call(func=node.func, args=[_as_tensor(a, like) if _number(a) else a for a in node.args],
                    keywords=node.keywords)


def _as_tensor(a, like) -> ast.Call:
    """torch.tensor(a) with the dtype and device of the pass's array `like`."""
    keywords = [ast.keyword(arg=k, value=ast.parse(f"{like}.{k}", mode="eval").body) for k in ("dtype", "device")]
    return _call("torch.tensor", [a], keywords if like else [])


def _floats_as_tensors(P, node, like):
    """torch.sign(τ), torch.erf(τ), torch.logaddexp(0, -τ) of a scalar τ that the module takes as a
    Python float (not differentiated): torch's functions take tensors only (the generated check
    failed with a TypeError), so the float is a tensor of the pass's dtype."""
    floats = getattr(P, "floats", ())
    if P.target != "torch" or not floats or not isinstance(node, ast.Call) or \
            not (_dotted(node.func).startswith(("np.", "torch.")) or isinstance(node.func, ast.Call)):
        return node

    def a_float(a) -> bool:
        return _of_sizes(a, floats) and any(isinstance(n, ast.Name) and n.id in floats for n in ast.walk(a))
    if not any(a_float(a) for a in node.args):
        return node
    return ast.Call(func=node.func, keywords=node.keywords,
                    args=[_as_tensor(a, like) if a_float(a) else a for a in node.args])


_ERF = {"torch": "torch.erf", "jax": "jax.lax.erf"}
_NUMPY_ERF = ERF_CODE[:ERF_CODE.index("({})")]          # np.vectorize(math.erf, ...), called on its operand


def target_erf(code: str, target: str) -> str:
    """The printers' NumPy erf (functions.ERF_CODE, in gelu, Φ and erf itself) as the target's erf:
    np.vectorize has no torch row, and JAX's vectorize takes no otypes."""
    return code.replace(_NUMPY_ERF, _ERF[target])


def _erf_call(P, node, like):
    """NumPy's erf, math.erf vectorised (functions.ERF_CODE), is the target's own erf."""
    inner = node.func
    if isinstance(inner, ast.Call) and inner.args and _dotted(inner.func) == "np.vectorize" and \
            ast.unparse(inner.args[0]) == "__import__('math').erf":
        return _call(_ERF[P.target], node.args)
    return node


_SOFTMAX = {"numpy": "_softmax({})", "torch": "torch.softmax({}, dim=-1)", "jax": "jax.nn.softmax({}, axis=-1)"}


def _softmax_lambda() -> str:
    """The stable softmax as the NumPy printers write it without a helper: a lambda called in place."""
    from types import SimpleNamespace
    from .printing.numpy_code import softmax_code
    return ast.dump(ast.parse(softmax_code("z", SimpleNamespace(helpers={})), mode="eval").body.func)


class _Substitute(ast.NodeTransformer):
    def __init__(self, name, value):
        self.name, self.value = name, value

    def visit_Name(self, node):
        return self.value if node.id == self.name else node


def _call_of_call(P, node, like):
    """A call of a call or of a lambda: the softmax lambda is the target's softmax (NumPy: the
    file's _softmax, exp computed once), NumPy's erf (np.vectorize(math.erf)) the target's erf,
    and a lambda called with a name is its body with the name in place."""
    f = node.func
    if isinstance(f, ast.Lambda) and len(node.args) == 1 and not node.keywords:
        if ast.dump(f) == _softmax_lambda():
            return ast.parse(_SOFTMAX[P.target].format(ast.unparse(node.args[0])), mode="eval").body
        if isinstance(node.args[0], (ast.Name, ast.Constant)) and len(f.args.args) == 1 and \
                not (f.args.vararg or f.args.kwarg or f.args.kwonlyargs or f.args.posonlyargs):
            inner = ast.parse(ast.unparse(f.body), mode="eval").body      # (visited already, as a child)
            return _Substitute(f.args.args[0].arg, node.args[0]).visit(inner)
    return _erf_call(P, node, like) if P.target in _ERF else node


def _stacked(P, node, like):
    """np.broadcast_arrays(a, b, ...) (summed along axis 0): the target's arrays stacked."""
    return _call(f"{'torch' if P.target == 'torch' else 'jnp'}.stack",
                 [_call("torch.broadcast_tensors" if P.target == "torch" else "jnp.broadcast_arrays", node.args)])


def _reversed_slice(e) -> bool:
    step = e.step if isinstance(e, ast.Slice) else None
    return step is not None and isinstance(step, (ast.Constant, ast.UnaryOp)) and \
        ast.literal_eval(step) == -1


def _torch_flip(P, node, like):
    """x[:, ::-1] -> torch.flip(x, (1,)): torch has no negative steps."""
    elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    if not any(_reversed_slice(e) for e in elts):
        return node
    ell = [k for k, e in enumerate(elts) if isinstance(e, ast.Constant) and e.value is Ellipsis]
    plain = all(isinstance(e, ast.Slice) and e.lower is None and e.upper is None
                for k, e in enumerate(elts) if k not in ell)
    if len(ell) > 1 or not plain:
        raise UnsupportedError(f"`codegen --target torch` does not support the slice {ast.unparse(node)} "
                               "yet (use --target numpy)")
    after = ell[0] if ell else len(elts)
    dims = [k if k < after else k - len(elts) for k, e in enumerate(elts) if _reversed_slice(e)]
    return _call("torch.flip", [node.value, ast.Tuple(elts=[ast.Constant(d) for d in dims], ctx=ast.Load())])


class _ArrayCode(ast.NodeTransformer):
    """One NumPy expression rewritten by the printer's `calls` (dotted name -> rule) and
    `subscript` rule, inside out."""

    def __init__(self, printer, like):
        self.P, self.like = printer, like

    def visit_Call(self, node):
        self.generic_visit(node)
        rule = self.P.calls.get(_dotted(node.func))
        out = rule(self.P, node, self.like) if rule else node
        if isinstance(node.func, ast.Lambda) and isinstance(out, ast.AST) and out is not node \
                and not isinstance(out.func if isinstance(out, ast.Call) else None, ast.Lambda):
            out = self.visit(out)        # a lambda's body with its argument in place: gelu(τ)'s erf(τ / √2)
        return _floats_as_tensors(self.P, out, self.like)

    def visit_Subscript(self, node):
        self.generic_visit(node)
        rule = self.P.subscript
        return rule(self.P, node, self.like) if rule else node


def _func_rule(table, scalar_table, stable=None):
    """Element-wise functions: the target's own function, `math.f` for a plain number; a log
    of what would underflow in its stable form (numpy_code.STABLE_LOG, rows replaced by
    `stable`)."""
    def rule(P, n):
        out = stable_log(P, n, stable)
        if out is not None:
            return out
        c, na = P.p(n.a)
        if na == 0 and n.name in scalar_table:
            return scalar_table[n.name].format(c), 0
        if n.name in table:
            return table[n.name].format(c), na
        return PRINT[N.Func](P, n)
    return rule


def _dtype_of(P):
    return f"dtype={P.dtype_from}.dtype" if getattr(P, "dtype_from", None) else "dtype=torch.float64"


def _unsupported(what):
    def rule(P, n):
        raise IndexCalcError(f"`codegen --target {P.target}` does not support {what} yet (use --target numpy)")
    return rule


_MATH = {f: f"math.{f}({{}})" for f in ("exp", "log", "sqrt", "sin", "cos", "tanh")}
_MATH.update({"abs": "abs({})", "sigmoid": "(0.5 * (1 + math.tanh(0.5 * {})))"})


class TorchPrinter(TargetPrinter):
    target = "torch"
    rules = {
        N.Func: _func_rule({"exp": "torch.exp({})", "log": "torch.log({})", "sqrt": "torch.sqrt({})",
                            "abs": "torch.abs({})", "sign": "torch.sign({})", "sin": "torch.sin({})",
                            "cos": "torch.cos({})", "tanh": "torch.tanh({})",
                            "sigmoid": "torch.sigmoid({})", "relu": "torch.relu({})",
                            "softplus": "-torch.nn.functional.logsigmoid(-({}))",
                            "elu": "torch.nn.functional.elu({})",
                            "H": "(({}) > 0).to(torch.get_default_dtype())"}, _MATH,
                           {0: "torch.nn.functional.logsigmoid({})", 1: "torch.nn.functional.logsigmoid(-{})",
                            2: "-torch.nn.functional.logsigmoid(-{})", 3: "torch.log_softmax({}, dim=-1)",
                            4: "torch.logsumexp({}, dim=0)", 5: "torch.logsumexp({}, dim=-1)"}),
        N.Softmax: lambda P, n: (lambda c: (f"torch.softmax({c[0]}, dim=-1)", c[1]))(P.p(n.a)),
        N.Ones: lambda P, n: (f"torch.ones({P.size(n.shape[0])}, {_dtype_of(P)})", 1),
        N.Identity: lambda P, n: (f"torch.eye({P.size(n.shape[0])}, {_dtype_of(P)})", 2),
        N.Conv: _unsupported("convolutions"), N.Flip: _unsupported("flips"),
    }
    names = {"sum": "torch.sum", "outer": "_outer", "ravel": "torch.ravel", "diag": "torch.diag",
             "trace": "torch.trace", "linalg.inv": "torch.linalg.inv", "linalg.det": "torch.linalg.det",
             "linalg.norm": "torch.linalg.norm", "linalg.matrix_power": "torch.linalg.matrix_power",
             "log": "torch.log", "exp": "torch.exp", "sqrt": "torch.sqrt", "max": "torch.amax",
             "maximum": "torch.maximum", "tanh": "torch.tanh",
             "einsum": "torch.einsum", "swapaxes": "torch.swapaxes", "matmul": "torch.matmul",
             "reshape": "torch.reshape", "mean": "torch.mean", "abs": "torch.abs", "sign": "torch.sign",
             "sin": "torch.sin", "cos": "torch.cos", "tan": "torch.tan", "cosh": "torch.cosh", "sinh": "torch.sinh", "log1p": "torch.log1p", "expm1": "torch.expm1",
             "logaddexp": "torch.logaddexp", "minimum": "torch.minimum", "where": "torch.where",
             "tensordot": "torch.tensordot", "arange": "torch.arange", "ones": "torch.ones",
             "zeros": "torch.zeros", "eye": "torch.eye", "pi": "math.pi"}


_SIZE_MATH = {f"np.{f}": _math_of_sizes for f in ("sqrt", "log", "exp", "sin", "cos", "tan", "tanh", "sinh",
                                                    "cosh", "log1p", "expm1")}
_NEW_ARRAYS = {f"np.{f}": _like for f in ("ones", "zeros", "eye")}
TorchPrinter.calls = {**_SIZE_MATH, **_NEW_ARRAYS, "_einsum": _einsum_call,
                      "np.lib.stride_tricks.sliding_window_view": _windows_call,
                      "np.pad": _pad_call, "np.correlate": _correlate_call,
                      "": _call_of_call,      # np.vectorize(math.erf)(X), (lambda z: ...)(X)
                      "np.broadcast_arrays": _stacked,
                      **{f"np.{f}": _tensor_args for f in ("maximum", "minimum", "logaddexp", "where")}}
TorchPrinter.subscript = staticmethod(_torch_flip)


class JaxPrinter(TargetPrinter):
    target = "jax"
    calls = {**_NEW_ARRAYS, "_einsum": _einsum_call, "": _call_of_call, "np.broadcast_arrays": _stacked,
             "np.lib.stride_tricks.sliding_window_view": _windows_call}
    rules = {
        N.Func: _func_rule({"sigmoid": "jax.nn.sigmoid({})", "relu": "jax.nn.relu({})",
                            "softplus": "jax.nn.softplus({})", "H": "(({}) > 0) * 1.0"}, {},
                           {0: "jax.nn.log_sigmoid({})", 1: "-jax.nn.softplus({})", 2: "jax.nn.softplus({})",
                            3: "jax.nn.log_softmax({}, axis=-1)", 4: "jax.nn.logsumexp({})",
                            5: "jax.nn.logsumexp({}, axis=-1)"}),
        N.Softmax: lambda P, n: (lambda c: (f"jax.nn.softmax({c[0]}, axis=-1)", c[1]))(P.p(n.a)),
        N.Flip: _unsupported("flips"),
    }

    def translate(self, code: str) -> str:
        code = target_erf(re.sub(r", optimize=True\)", ")", code), self.target)
        return re.sub(r"(?<![\w.])np\.", "jnp.", code)


class NumpyTargetPrinter(TargetPrinter):
    target = "numpy"
    calls = {"": _call_of_call}
    rules = {N.Func: _func_rule({}, {}, {3: "_log_softmax({})", 4: "_logsumexp({})", 5: "_logsumexp_rows({})"})}


TARGETS = {"numpy": NumpyTargetPrinter, "torch": TorchPrinter, "jax": JaxPrinter}


# ---- the module ---------------------------------------------------------------------------------
@dataclass
class Input:
    name: str
    kind: str
    shape: tuple          # numbers of the check's random draw
    dims: tuple           # the declared sizes (names or 1)
    wrt: bool
    param: bool
    draw: str             # signed | positive | invertible
    fan_in: tuple = ()    # a parameter's sizes summed over in the forward pass (its normal start's scale)
    start: str = ""       # a parameter's start (param_starts): normal (a weight), ones (a gain), zeros (a bias)


@dataclass
class Module:
    cls: str
    func: str             # the function's name (JAX) / the autograd.Function's (torch)
    equation: str
    command: str
    output: str
    output_kind: str
    inputs: list          # [Input], in the order of the equation
    forward: list         # [(name, code)]
    saved: list           # names the backward pass reads from the forward pass
    backward: list        # [(name, code)]
    grads: list           # [(wrt, comment, code)]
    sizes: dict           # the check's numbers for the size names
    size_args: list       # the constructor's size arguments (the parameters' sizes)
    dtype_from: str = ""

    @property
    def args(self):
        return [i.name for i in self.inputs]

    @property
    def data(self):
        return [i for i in self.inputs if not i.param]

    @property
    def params(self):
        return [i for i in self.inputs if i.param]

    kinds: dict = field(default_factory=dict)

    def kind_of(self, name):
        return self.kinds.get(name, "matrix")

    @property
    def scalar_names(self):
        return [n for n in self.saved if self.kind_of(n) == "scalar"]

    @property
    def tensor_names(self):
        return [n for n in self.saved if self.kind_of(n) != "scalar"]

    def grad_of(self, name):
        for w, _, code in self.grads:
            if w == name:
                return code
        return None


def default_params(rhs, variables, output_shape, wrt) -> list:
    """The equation's parameters, when --params does not say: the differentiated matrices and
    vectors that run along no row dimension of the data — a variable is data when its rows
    are the output's rows, or when another variable has the same rows (the keys and values
    of attention); everything else with a --wrt (W, b, gamma) is a parameter."""
    rows = {}
    for name, v in variables.items():
        if v.kind != "scalar":
            rows.setdefault(v.shape[0], []).append(name)
    params = []
    for name in wrt:
        v = variables[name]
        if v.kind == "scalar":
            continue
        r = v.shape[0]
        if r == output_shape[0] and r != 1:
            continue
        if r != 1 and len(rows.get(r, [])) > 1:
            continue
        params.append(name)
    return params


def _draws(tree, variables) -> dict:
    """How the check draws each variable: the guard's own recipe (verify.Point)."""
    needs = V._domains(tree)
    out = {}
    for name, v in variables.items():
        n = needs.get(name, set())
        out[name] = "invertible" if "invertible" in n else ("positive" if "positive" in n else "signed")
    point = V.Point(variables, tree, np.random.default_rng(0), 0)
    with np.errstate(all="ignore"):
        try:
            finite = np.all(np.isfinite(V.value_fn(tree, point)(point.env2d)))
        except np.linalg.LinAlgError:
            finite = False
    if not finite:
        out = {k: ("invertible" if d == "invertible" else "positive") for k, d in out.items()}
    return out



def constructor_sizes(inputs) -> list:
    """The constructor's size arguments: each size name of the parameters once, in order of
    appearance (a square W: n×n or a kernel O×C×K×K names a size twice; a repeated argument
    is a SyntaxError in the generated file)."""
    return list(dict.fromkeys(x for i in inputs if i.param for x in i.dims if isinstance(x, str)))

def _no_generic_functions(rhs) -> None:
    """A module's code computes its functions: a generic one (f(X), act declared `act: function`)
    has no code, so the module cannot be written (exit 2, not a file that fails when run)."""
    from . import functions as F
    for n in rhs.walk():
        if isinstance(n, N.Func) and n.name.rstrip("'") not in F.TABLE:
            raise UnsupportedError(f"codegen writes the code of every function, but {n.name.rstrip(chr(39))} is a "
                                   "generic function with no definition; derive or backprop give its gradient "
                                   "in terms of its derivative")


def build(equation: str, wrt, where=None, target="numpy", params=None, name=None, command="") -> Module:
    from .pipeline import _names, backprop
    if target not in TARGETS:
        raise IndexCalcError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    wrt = _names(wrt)
    from .from_index_notation import is_index_notation
    if is_index_notation(equation):
        from . import index_pipeline as IP
        return _build_index(IP.backprop(equation, wrt, where), equation, wrt, target, params, name, command)
    d = backprop(equation, wrt, where)
    if d.rhs is not None:
        _no_generic_functions(d.rhs)
    from .tensor_pipeline import is_tensor_derivation
    if is_tensor_derivation(d):          # the matrix language on tensors: index_pipeline's code
        return _build_index(d, equation, wrt, target, params, name, command)
    out, rhs = d.output, d.rhs
    from .codegen import doc
    check_identifier(out, "the output", ascii_only=False)
    names = [n for n in N.variables(rhs)]
    for n in names:
        check_identifier(n, "the variable", ascii_only=False)
    variables = Variables({n: d.variables[n] for n in names}, d.variables.sizes, d.variables.functions)
    if params is None:
        params = default_params(rhs, variables, rhs.shape, wrt)
    else:
        params = _given_params(params, variables, wrt)
    cls = check_identifier(name, "--name") if name else _default_name(rhs)
    grads = {}
    near = V.sample(d.tree, d.variables, np.random.default_rng(17))
    for r in d.results:
        if r.closed is None:
            raise IndexCalcError(f"∂L/∂{r.wrt} has no closed form to generate code from")
        grads[r.wrt] = fold(r.closed, rhs, out, (), near)
    computed, computed_grads = module_trees(rhs, grads)
    P = plan(computed, out, computed_grads, near)
    point = V.sample(d.tree, d.variables, np.random.default_rng(5))
    check_plan(P, rhs, out, grads, point)

    table = dict(variables.table)
    table[out] = Variable(out, N.kind_of(rhs.shape), rhs.shape)
    up = "d" + out
    table[up] = Variable(up, N.kind_of(rhs.shape), rhs.shape)
    for tname, shape in P.temps.items():
        table.setdefault(tname, Variable(tname, N.kind_of(shape), shape))
    printer = TARGETS[target](Variables(table, variables.sizes),
                              helpers={"softmax": "_softmax"} if target == "numpy" else None)
    tensors = [n for n in names if variables[n].kind != "scalar"]
    printer.dtype_from = tensors[0] if tensors else ""
    fwd = [(n, printer.line(e, N.kind_of(e.shape))) for n, e in P.forward]
    bwd = [(n, printer.line(e, N.kind_of(e.shape))) for n, e in P.backward]
    gcode = []
    for w in wrt:
        g = P.grads[w] if not rhs.is_scalar else broadcast_last(times_scalar(N.Sym(up, N.SCALAR), P.grads[w]))
        gcode.append((w, _comment(grads[w]), printer.line(g, variables[w].kind)))
    backward_text = " ".join(c for _, c in bwd) + " " + " ".join(c for _, _, c in gcode)
    saved = [n for n in names + [f for f, _ in P.forward] if _mentions(backward_text, py_name(n))]
    draws = _draws(d.tree, d.variables)
    sizes = point.sizes
    from .tensor_pipeline import TensorProblem
    entry = TensorProblem(equation, rhs, variables, out)        # the entries, for the fan-ins
    fans = {p: fan_in(entry, p) for p in params}
    starts = param_starts(lambda e: evaluate(rhs, e, sizes), point.env2d, fans, np.random.default_rng(3))
    inputs = []
    for n in names:
        v = variables[n]
        shape = tuple(N.size_value(x, sizes) for x in v.array_shape)
        inputs.append(Input(py_name(n), v.kind, shape, v.array_shape, n in wrt, n in params, draws[n],
                            fans.get(n, ()), starts.get(n, "")))
    size_args = constructor_sizes(inputs)
    for s in size_args:
        check_identifier(s, "the size", ascii_only=False)
    return Module(cls, _snake(cls), doc(equation), command, out, N.kind_of(rhs.shape), inputs, fwd,
                  [py_name(s) for s in saved], bwd, gcode, {k: int(v) for k, v in sizes.items()},
                  size_args, printer.dtype_from,
                  {py_name(n): v.kind for n, v in printer.variables.items()})


def _build_index(d, equation, wrt, target, params, name, command) -> Module:
    """The module of an entry equation in index notation (SPEC §1.3), or of an equation in the
    matrix language on tensors (§1.2), from its backprop derivation: the forward pass is the
    right side's verified code (index_pipeline.forward_code), each gradient the verified code
    of `backprop` (einsum, window views, batched @), the two passes sharing every common value
    (codegen.index_passes, as the problem files' index modules do); the target's printer writes
    that NumPy code in its own terms (TargetPrinter.array_code)."""
    from .codegen import comment, doc, index_passes
    from . import index_pipeline as IP
    prob, out = d.problem, d.output
    if not prob.out_indices:
        raise IndexCalcError("codegen of an equation in index notation or on tensors needs an output with "
                             "indices (Y[i,j] = ..., or a tensor), not a scalar")
    check_identifier(out, "the output", ascii_only=False)
    names = list(prob.variables.table)
    for n in names:
        check_identifier(n, "the variable", ascii_only=False)
    params = _index_params(prob, wrt) if params is None else _given_params(params, prob.variables, wrt)
    shared = index_passes(d)
    printer = TARGETS[target](d.variables)
    printer.floats = {py_name(n) for n in names if prob.variables[n].kind == "scalar" and n not in wrt}
    tensors = [py_name(n) for n in names if prob.variables[n].kind != "scalar"]
    like = tensors[0] if tensors else ""
    fwd = [(n, printer.array_code(c, like)) for n, c in shared.forward]
    fwd.append((py_name(out), printer.array_code(shared.output, like)))
    up = py_name("d" + out)
    bwd = [(n, printer.array_code(c, up)) for n, c in shared.backward]
    grads = [(py_name(r.wrt), comment(r.closed_form or r.index_form),
              printer.array_code(shared.grads[py_name(r.wrt)], up)) for r in d.results]
    text = " ".join([c for _, c in bwd] + [c for _, _, c in grads])
    saved = [py_name(n) for n in names if _mentions(text, py_name(n))] + shared.saved
    if _mentions(text, py_name(out)):
        saved.append(py_name(out))
    sizes = IP.choose_sizes(prob, d.variables)
    needs = prob.domains()
    point = IP.make_point(prob, prob.variables, sizes, np.random.default_rng(5), 0, needs)
    fans = {p: fan_in(prob, p) for p in params}
    starts = param_starts(lambda e: prob.value(e, sizes), point.env, fans, np.random.default_rng(3))
    inputs = []
    for n in names:
        v = prob.variables[n]
        dims = tuple(LY.array_shape(v.shape))
        inputs.append(Input(py_name(n), v.kind, tuple(N.size_value(x, sizes) for x in dims), dims, n in wrt,
                            n in params, "positive" if "positive" in needs.get(n, set()) else "signed",
                            fans.get(n, ()), starts.get(n, "")))
    size_args = constructor_sizes(inputs)
    for s_ in size_args:
        check_identifier(s_, "the size", ascii_only=False)
    kinds = {i.name: i.kind for i in inputs}
    kinds[py_name(out)] = LY.kind_of(prob.out_shape)
    typed = getattr(prob, "typed", None)          # a tensor equation's tree names it as the matrix language's do
    cls = check_identifier(name, "--name") if name else _default_name(typed) if typed is not None else "Layer"
    return Module(cls, _snake(cls), doc(equation), command, py_name(out),
                  LY.kind_of(prob.out_shape), inputs, fwd, saved, bwd, grads,
                  {k: int(v) for k, v in sizes.items()}, size_args, like, kinds)


def _index_params(problem, wrt) -> list:
    """The parameters of an index-notation or tensor module, when --params does not say: the
    --wrt arrays whose first place does not hold the output's first index (the batch axis, or
    the position of a sequence, that the data shares: X[n,p] of Y[n,j], h[n+j-1] of a[n],
    Q[b,i,k] of O[b,i,d]); W[j,p], b[j] and a kernel F[o,c,p,q] are parameters, scalars never."""
    entries, free = _entries(problem)
    out = []
    for n in wrt:
        places = entries.get(n, ((),))[0]
        if places and free[0] not in places[0].free_symbols:
            out.append(n)
    return out


def _entries(problem) -> tuple:
    """({variable: (its places in the right side's entry, the indices summed over around it
    within its linear context)}, first occurrence; the output's index symbols). The entry is
    index_form's with the deltas sifted (X diag(g) holds g[j], not a summed g[q] δ_qj); a
    function or a power starts a context of its own (tanh(X W) V sums W's p inside the tanh,
    V's k outside), and so does a function of a whole row (softmax(X W), an atom there),
    opened at its places."""
    import sympy as sp
    from .from_index_notation import index_symbol
    from .index_pipeline import _Run
    from .pipeline import _terms_expr
    R = _Run(problem, problem.variables, next(iter(problem.variables.table)))
    free = [index_symbol(i) for i in problem.out_indices]
    out: dict = {}
    todo, opened = [(problem.index_form(R.ctx), set(free))], set()

    def walk(e, summed):
        if isinstance(e, sp.Indexed):
            name = str(e.base.label)
            node = R.ctx.atoms.get(name)
            inner = getattr(node, "a", None)
            if isinstance(inner, N.Node) and inner.shape == node.shape and name not in opened:
                opened.add(name)
                places = iter(e.indices)
                idx = tuple(None if d == 1 else next(places) for d in node.shape)
                todo.append((R.ctx.entry(inner, idx), set().union(*(i.free_symbols for i in e.indices))))
            elif name in problem.variables and len(e.indices) == len(LY.array_shape(problem.variables[name].shape)):
                out.setdefault(name, (e.indices, summed))
        elif isinstance(e, sp.Sum):
            walk(e.function, summed | {lim[0] for lim in e.limits})
        else:
            inner = set() if isinstance(e, (sp.Function, sp.Pow)) else summed
            for a in e.args:
                walk(a, inner)

    while todo:
        body, bound = todo.pop(0)
        walk(_terms_expr(R, R.nz.simplify_terms(R.nz.terms(body), bound)), set())
    return out, free


def _given_params(params: str, variables, wrt) -> list:
    """--params as given: names of the equation with a gradient (`--params ""`: none)."""
    names = [p.strip() for p in params.split(",") if p.strip()]
    for p in names:
        if p not in variables:
            raise IndexCalcError(f"--params names {p}, which is not in the equation")
        if p not in wrt:
            raise IndexCalcError(f"the parameter {p} needs a gradient: add it to --wrt")
    return names


def param_starts(value, env: dict, fan_ins: dict, rng) -> dict:
    """How each parameter starts: normal, scaled by its fan-in, where the forward pass sums over
    some of its axes (a weight, a kernel: fan_ins[p] not empty); else at ones where it scales
    the output (with it at zero the output no longer depends on the other inputs: a LayerNorm's
    gain g[i], whose zero start would stop every gradient), else at zeros (a bias). value(env)
    is the output's value; env holds a point's values; the other arrays are redrawn by
    rescaling (signs and domains kept)."""
    def redrawn(e):
        return {n: (a * rng.uniform(0.5, 1.5, size=np.shape(a)) if n not in fan_ins and np.ndim(a) else a)
                for n, a in e.items()}

    def moves(e):
        with np.errstate(all="ignore"):
            a, b = np.asarray(value(e), dtype=float), np.asarray(value(redrawn(e)), dtype=float)
        return not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.allclose(a, b, rtol=1e-12, atol=1e-12))
    out = {}
    for p, fan in fan_ins.items():
        if fan:
            out[p] = "normal"
        else:
            out[p] = "ones" if moves(env) and not moves({**env, p: np.zeros_like(env[p])}) else "zeros"
    return out


def fan_in(problem, name) -> tuple:
    """A parameter's fan-in: the sizes of its axes that the forward pass sums over (no output
    index in their place), read from the right side's entry: W[j,p] of Σ_p X[n,p] W[j,p] has P,
    the W: M×N of X W has M, of X W^T N, a kernel F[o,c,p,q] C×R×S. Empty where the parameter
    is not summed over (a bias)."""
    entries, _ = _entries(problem)
    dims = LY.array_shape(problem.variables[name].shape)
    places, summed = entries.get(name, ((), set()))
    return tuple(d for d, i in zip(dims, places) if i in summed)


def _mentions(code, name):
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", code) is not None


def _comment(tree):
    from .printing.text import to_text
    return to_text(tree)


def _default_name(rhs) -> str:
    top = rhs
    if isinstance(top, N.Func) and top.name.isidentifier():
        return top.name.capitalize() + "Layer"
    if isinstance(top, N.Softmax):
        return "SoftmaxLayer"
    if any(isinstance(n, N.Softmax) for n in rhs.walk()) and isinstance(rhs, N.MatMul):
        return "AttentionLayer"
    return "Layer"


def _snake(cls: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls).lower()


def render(modules: list, target: str, source: str) -> str:
    import jinja2
    from .codegen import doc, template_dir
    tname = f"module_{target}.py.j2"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir(tname))),
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    # the command goes into the module's docstring: a file name may hold quotes or backslashes
    texts = [c for m in modules for c in [c for _, c in m.forward] + [c for _, c in m.backward]
             + [c for _, _, c in m.grads]]
    uses_math = any("math." in t for t in texts) or \
        any(p.start == "normal" for m in modules for p in m.params)
    uses = {h: any(re.search(rf"(?<![\w.]){h}\(", t) for t in texts)      # the module's helper functions
            for h in ("_softmax", "_log_softmax", "_logsumexp", "_logsumexp_rows", "_windows", "_pad",
                      "_correlate", "_outer")}
    from .codeshare import EINSUM_SOURCE
    einsum_source = EINSUM_SOURCE.rstrip("\n") if any("_einsum(" in t for t in texts) else ""
    code = env.get_template(tname).render(modules=modules, source=doc(source), uses_math=uses_math,
                                          uses_softmax=uses["_softmax"], uses=uses, einsum_source=einsum_source)
    from .codegen import compiled
    return compiled(code.rstrip("\n") + "\n")


def generate(equation: str, wrt, where=None, target="numpy", params=None, name=None) -> str:
    command = _command(equation, wrt, where, target, params, name)
    m = build(equation, wrt, where, target, params, name, command)
    return render([m], target, command)


def _command(equation, wrt, where, target, params, name) -> str:
    import shlex
    parts = ["indexcalc", "codegen", equation, "--wrt", wrt if isinstance(wrt, str) else ",".join(wrt)]
    if where:
        parts += ["--where", where]
    if params is not None:
        parts += ["--params", params]
    if name:
        parts += ["--name", name]
    parts += ["--target", target]
    return " ".join(shlex.quote(p) for p in parts)
