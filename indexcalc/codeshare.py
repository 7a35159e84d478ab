"""A module's forward and backward passes from their NumPy expressions, each common value
computed once (SPEC §2 `codegen`: "the backward body computes every common subexpression once
and reuses the forward pass's values").

Used for modules of index-notation problems, whose code is printed per result (einsum, window
views, batched `@`) with no shared tree to plan over. Value numbering on the code itself:
every non-trivial subexpression of the forward expression and of the gradients is evaluated
at two random points of different sizes; subexpressions with the same values at both, or the
same up to a transpose of the last two axes (`exp(K Qᵀ)` is `exp(Q Kᵀ)ᵀ`), are one value.
Largest first, a value that occurs twice, or in the forward pass and a gradient, gets a name:
in the forward pass (saved for the backward pass) when the forward pass computes it, else in
the backward pass. Last, every `np.einsum` calls the generated file's `_einsum`, which finds
a contraction path once per shapes and reuses it. The whole is checked against the
expressions as given, at a third point, before anything is written.
"""
from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field

import numpy as np

from .errors import VerificationError

# calls that make a view or a number: never worth a name of their own
VIEWS = {"np.swapaxes", "np.lib.stride_tricks.sliding_window_view", "np.transpose", "np.ravel", "np.reshape"}


@dataclass
class Shared:
    forward: list = field(default_factory=list)     # [(name, code)] before the output
    output: str = ""                                # the output's code
    backward: list = field(default_factory=list)    # [(name, code)] temporaries of the backward pass
    grads: dict = field(default_factory=dict)       # wrt -> code
    saved: list = field(default_factory=list)       # forward temporaries the backward pass reads


def dotted_name(node) -> str:
    """np.linalg.inv for the ast of np.linalg.inv; '' for anything but names and attributes."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted_name(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _size(node) -> int:
    return sum(1 for _ in ast.walk(node))


def _smooth(t, a, b):
    """A smooth function of its own for each piecewise one (fold.smooth_stand_ins's idea)."""
    return np.sin(a * t + b) + 0.5 * t


# np.abs(u), np.sign(u), np.maximum(a, b), np.minimum(a, b), a > b, np.where(c, a, b) as smooth
# stand-ins, where values are compared: at a point where u > 0 everywhere np.abs(u) has the
# value of u, and a value match took one for the other (a module's backward read sign(Y) for
# Y = abs(X W + 5))
STAND_INS = {
    "np.abs": lambda u: _smooth(u, 0.7, 0.3),
    "np.sign": lambda u: _smooth(u, 1.1, 0.9),
    "np.maximum": lambda a, b: b + _smooth(a - b, 0.8, 0.2),
    "np.minimum": lambda a, b: a - _smooth(a - b, 0.8, 0.2),
    "np.where": lambda c, a, b: c * a + (1 - c) * b,
    ">": lambda a, b: _smooth(a - b, 1.3, 0.5),
}
_COMPARE = {ast.Gt: (">", False), ast.GtE: (">", False), ast.Lt: (">", True), ast.LtE: (">", True)}


class _StandIns(ast.NodeTransformer):
    def visit_Call(self, node):
        self.generic_visit(node)
        name = dotted_name(node.func)
        if name in STAND_INS and not node.keywords:
            return ast.Call(func=ast.Name("_stand_in_" + name.replace(".", "_"), ast.Load()),
                            args=node.args, keywords=[])
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        if len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            a, b = node.left, node.comparators[0]
            _, swap = _COMPARE[type(node.ops[0])]
            return ast.Call(func=ast.Name("_stand_in_gt", ast.Load()), args=[b, a] if swap else [a, b], keywords=[])
        return node


_STAND_IN_NAMES = {"_stand_in_" + k.replace(".", "_") if k != ">" else "_stand_in_gt": f
                   for k, f in STAND_INS.items()}


def smooth_stand_ins(node):
    """A copy of the code's tree with each piecewise call and comparison a smooth stand-in."""
    return _StandIns().visit(copy.deepcopy(node))


class _Values:
    """Each subexpression's value at the points (memoised by its text), piecewise functions
    evaluated as smooth stand-ins (smooth_stand_ins)."""

    def __init__(self, points):
        self.points = [{**p, **_STAND_IN_NAMES} for p in points]      # [namespace dict]
        self.cache: dict = {}

    def of(self, node):
        key = ast.dump(node)
        if key not in self.cache:
            out = []
            code = compile(ast.fix_missing_locations(ast.Expression(body=smooth_stand_ins(node))), "<share>", "eval")
            for ns in self.points:
                try:
                    with np.errstate(all="ignore"):
                        out.append(eval(code, dict(ns)))  # noqa: S307 - our own generated code
                except Exception:  # noqa: BLE001 - a piece that does not evaluate alone is not shared
                    out = None
                    break
            self.cache[key] = out
        return self.cache[key]

    def define(self, name, node):
        vals = self.of(node)
        for ns, v in zip(self.points, vals):
            ns[name] = v


def _arrayish(vals) -> bool:
    return vals is not None and all(isinstance(v, np.ndarray) and v.size > 1 and np.all(np.isfinite(v))
                                    for v in vals)


def _cheap(node, arrays) -> bool:
    """A name, a number, a size, or a view of one: nothing to compute."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if isinstance(node, ast.Attribute):
        return True
    if isinstance(node, ast.Subscript):
        return _cheap(node.value, arrays)
    if isinstance(node, ast.Call) and dotted_name(node.func) in VIEWS:
        return all(_cheap(a, arrays) for a in node.args)
    return not any(isinstance(n, ast.Name) and n.id in arrays and not _in_shape(node, n) for n in ast.walk(node))


def _in_shape(root, name) -> bool:
    """The name occurs only as `name.shape` inside root."""
    for n in ast.walk(root):
        if isinstance(n, ast.Attribute) and n.attr == "shape" and n.value is name:
            return True
    return False


def _same(a, b) -> str | None:
    """'equal', 'transposed' (b is a with its last two axes swapped) or None, at every point."""
    for kind in ("equal", "transposed"):
        ok = True
        for x, y in zip(a, b):
            if kind == "transposed":
                if y.ndim < 2:
                    ok = False
                    break
                y = np.swapaxes(y, -1, -2)
            if x.shape != y.shape or not np.allclose(x, y, rtol=1e-9, atol=1e-12 * (1 + np.abs(x).max())):
                ok = False
                break
        if ok:
            return kind
    return None


class _Replace(ast.NodeTransformer):
    def __init__(self, members: dict):
        self.members = members          # id(node) -> replacement

    def visit(self, node):
        hit = self.members.get(id(node))
        if hit is not None:
            return hit
        return super().visit(node)


def _swap(name):
    return ast.Call(func=ast.Attribute(value=ast.Name("np", ast.Load()), attr="swapaxes", ctx=ast.Load()),
                    args=[ast.Name(name, ast.Load()), ast.Constant(-1), ast.Constant(-2)], keywords=[])


class _Einsum(ast.NodeTransformer):
    """np.einsum(..., optimize=...) -> _einsum(...): the path found once per shapes."""

    def visit_Call(self, node):
        self.generic_visit(node)
        if dotted_name(node.func) == "np.einsum":
            return ast.Call(func=ast.Name("_einsum", ast.Load()), args=node.args,
                            keywords=[k for k in node.keywords if k.arg != "optimize"])
        return node


def share(output: str, forward: str, grads: dict, points: list, arrays: set) -> Shared:
    """output: the output's name; forward: its code; grads: {wrt: code} (they may use the
    upstream gradient); points: namespaces (np and every variable, the upstream included) of
    which the last is kept for the final check; arrays: the names of array variables."""
    values = _Values([dict(p) for p in points[:-1]])
    trees = {"": ast.parse(forward, mode="eval").body}
    trees.update({w: _softmax_of_forward_exp(ast.parse(c, mode="eval").body, trees[""], values)
                  for w, c in grads.items()})
    fdefs: dict = {}                # name -> tree, forward temporaries
    bdefs: dict = {}
    counter = iter(range(1, 100_000))
    while True:
        where = []                  # (node, in forward?)
        for key, tree in list(trees.items()) + [(n, t) for n, t in fdefs.items()] + \
                [(n, t) for n, t in bdefs.items()]:
            fwd = key == "" or key in fdefs
            for n in ast.walk(tree):
                if isinstance(n, ast.expr) and not _cheap(n, arrays):
                    where.append((n, fwd))
        cands = [(n, f, values.of(n)) for n, f in where]
        cands = [c for c in cands if _arrayish(c[2])]
        cands.sort(key=lambda c: -_size(c[0]))
        by_shape: dict = {}
        for c in cands:
            by_shape.setdefault(tuple(v.shape for v in c[2]), []).append(c)
        chosen = None
        for node, fwd, vals in cands:
            shapes = tuple(v.shape for v in vals)
            swapped = tuple(s[:-2] + (s[-1], s[-2]) for s in shapes) if len(shapes[0]) >= 2 else None
            members = [(node, fwd, "equal")]
            for other, ofwd, ovals in by_shape.get(shapes, []) + \
                    (by_shape.get(swapped, []) if swapped and swapped != shapes else []):
                if other is not node and _same(vals, ovals):
                    members.append((other, ofwd, None))
            inner = {id(x) for m in members for x in ast.walk(m[0]) if x is not m[0]}
            members = [m for m in members if id(m[0]) not in inner]     # the outermost of nested ones
            if len(members) >= 2:
                chosen = members
                break
        if chosen is None:
            break
        # the representative: the root of the forward pass (the output) if it is one, else a
        # forward member, else the first (largest); orientation relative to it
        rep = next((m for m in chosen if m[0] is trees[""]), None) or \
            next((m for m in chosen if m[1]), None) or chosen[0]
        rvals = values.of(rep[0])
        if rep[0] is trees[""]:
            name = output
        else:
            name = f"_f{next(counter)}" if rep[1] else f"_b{next(counter)}"
        repl = {}
        for node, _, _ in chosen:
            if node is trees[""] and name == output:
                continue
            kind = _same(rvals, values.of(node))
            repl[id(node)] = ast.Name(name, ast.Load()) if kind == "equal" else _swap(name)
        if name != output:
            (fdefs if rep[1] else bdefs)[name] = rep[0]
            values.define(name, rep[0])
        else:
            values.define(name, rep[0])
        T = _Replace(repl)
        trees = {k: T.visit(t) for k, t in trees.items()}
        for defs in (fdefs, bdefs):
            for n in list(defs):
                if n == name:
                    # the definition itself keeps its body, with inner members replaced
                    defs[n] = _Replace({k: v for k, v in repl.items() if k != id(defs[n])}).visit(defs[n])
                else:
                    defs[n] = T.visit(defs[n])
    out = Shared()
    E = _Einsum()
    text = lambda t: ast.unparse(E.visit(t))  # noqa: E731
    out.forward = [(n, text(fdefs[n])) for n in _ordered(fdefs)]
    out.output = text(trees[""])
    out.backward = [(n, text(bdefs[n])) for n in _ordered(bdefs)]
    out.grads = {w: text(trees[w]) for w in grads}
    used = " ".join([c for _, c in out.backward] + list(out.grads.values()))
    out.saved = [n for n, _ in out.forward if _mentions(used, n)]
    check(out, output, forward, grads, points[-1])
    return _shifted(out, output, forward, grads, points)


def _softmax_lambda_dump() -> str:
    """The stable softmax as the NumPy printers write it, a lambda called in place (its ast)."""
    from types import SimpleNamespace

    from .printing.numpy_code import softmax_code
    return ast.dump(ast.parse(softmax_code("z", SimpleNamespace(helpers={})), mode="eval").body.func)


def _softmax_of_forward_exp(tree, forward, values):
    """A gradient's softmax(A) as exp(A) / (its sum along the last axis) where the forward pass
    computes exp(A) (attention: exp(Q Kᵀ / √D) over its rows' totals, never a softmax of its
    own): the value numbering then reads that exp from the forward pass, which _shifted makes
    exp(A - max(A)), instead of computing exp a second time in the backward pass."""
    lam = _softmax_lambda_dump()
    exps = [n for n in ast.walk(forward) if isinstance(n, ast.Call) and dotted_name(n.func) == "np.exp"]

    class Expand(ast.NodeTransformer):
        def visit_Call(self, node):
            self.generic_visit(node)
            if not (len(node.args) == 1 and not node.keywords and ast.dump(node.func) == lam):
                return node
            e = ast.parse(f"np.exp({ast.unparse(node.args[0])})", mode="eval").body
            mine = values.of(e)
            if not _arrayish(mine) or not any(values.of(f) is not None and _same(mine, values.of(f)) == "equal"
                                             for f in exps):
                return node
            return ast.parse(f"{ast.unparse(e)} / np.sum({ast.unparse(e)}, axis=-1, keepdims=True)",
                             mode="eval").body
    return Expand().visit(tree) if exps else tree


def _shifted(out: Shared, output, forward, grads, points) -> Shared:
    """Each named `exp(Z)` of the forward pass as `exp(Z - max(Z))` along an axis, where every
    output and gradient is the same (a ratio of exponentials, as softmax and attention are:
    the shift cancels): it then never overflows. Each shift is kept only if the whole agrees
    with the expressions as given at every point."""
    for k, (name, code) in enumerate(list(out.forward)):
        node = ast.parse(code, mode="eval").body
        if not (isinstance(node, ast.Call) and dotted_name(node.func) == "np.exp" and len(node.args) == 1):
            continue
        env = dict(points[0])
        for n, c in out.forward[:k]:
            env[n] = eval(c, env)  # noqa: S307 - our own generated code
        with np.errstate(all="ignore"):
            z = eval(ast.unparse(node.args[0]), env)  # noqa: S307
        if not isinstance(z, np.ndarray) or z.ndim == 0:
            continue
        for axis in range(-1, -z.ndim - 1, -1):
            trial = Shared(list(out.forward), out.output, out.backward, out.grads, out.saved)
            trial.forward[k:k + 1] = [(f"{name}_z", ast.unparse(node.args[0])),
                                      (name, f"np.exp({name}_z - np.max({name}_z, axis={axis}, keepdims=True))")]
            try:
                for p in points:
                    check(trial, output, forward, grads, p)
            except VerificationError:
                continue
            out = trial
            break
    return out


def _mentions(code, name) -> bool:
    import re
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", code) is not None


def _ordered(defs: dict) -> list:
    """Names in an order where each definition's names come before it."""
    done, out = set(), []
    todo = list(defs)
    while todo:
        for n in todo:
            needs = {x.id for x in ast.walk(defs[n]) if isinstance(x, ast.Name)} & set(defs)
            if needs <= done:
                out.append(n)
                done.add(n)
                todo.remove(n)
                break
        else:
            raise VerificationError("indexcalc bug: a cycle among the generated code's temporaries")
    return out


def run(shared: Shared, output: str, ns: dict) -> tuple:
    """(output, {wrt: gradient}) of the shared passes in the namespace ns (np, _einsum, variables)."""
    env = dict(ns)
    with np.errstate(all="ignore"):
        for n, c in shared.forward:
            env[n] = eval(c, env)  # noqa: S307 - our own generated code
        env[output] = eval(shared.output, env)  # noqa: S307
        for n, c in shared.backward:
            env[n] = eval(c, env)  # noqa: S307
        return env[output], {w: eval(c, env) for w, c in shared.grads.items()}  # noqa: S307


# the generated file's `_einsum`, written into it as it is here
EINSUM_SOURCE = '''_PATHS = {}


def _einsum(subscripts, *operands):
    """np.einsum with its contraction path found once per subscripts and shapes."""
    key = (subscripts,) + tuple(np.shape(o) for o in operands)
    path = _PATHS.get(key)
    if path is None:
        how = "optimal" if len(operands) <= 5 else "greedy"
        path = _PATHS[key] = np.einsum_path(subscripts, *operands, optimize=how)[0] if len(operands) > 1 else False
    return np.einsum(subscripts, *operands, optimize=path)
'''


def einsum_cached():
    """A fresh `_einsum` of EINSUM_SOURCE, for the checks here."""
    ns = {"np": np}
    exec(EINSUM_SOURCE, ns)  # noqa: S102 - our own source
    return ns["_einsum"]


def check(shared: Shared, output, forward, grads, ns):
    """The shared passes compute what the expressions as given compute."""
    with np.errstate(all="ignore"):
        env = dict(ns)
        want_y = eval(forward, dict(env))  # noqa: S307
        env[output] = want_y
        want = {w: eval(c, dict(env)) for w, c in grads.items()}  # noqa: S307
    got_y, got = run(shared, output, {**ns, "_einsum": einsum_cached()})
    ok = np.shape(got_y) == np.shape(want_y) and np.allclose(got_y, want_y, rtol=1e-9, atol=1e-12)
    for w in grads:
        ok = ok and np.shape(got[w]) == np.shape(want[w]) and np.allclose(got[w], want[w], rtol=1e-8, atol=1e-10)
    if not ok:
        raise VerificationError("indexcalc bug: the generated forward or backward pass differs from the "
                                "verified code it was made from; no code is written")
