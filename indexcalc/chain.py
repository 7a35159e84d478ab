"""A composition differentiated through its intermediates, module by module, as the seeds
backpropagate (DESIGN-NOTES §5; seed 000's MLP, seed 003's δ(h_r) = Φ'(a_r) Σ w δ(h)).

The flat derivation expands the derivative of an L-layer network into 2^(L-1) products and
renames, sifts and matches each. Here the expression is split at its intermediates (the
element-wise functions and softmaxes on the way from the loss down to the variable): the
values H1 = tanh(X W1), H2 = tanh(H1 W2), ... are named, each module's backward pass is derived
by the existing engine in terms of its own upstream gradient (`backprop` of `H2 = tanh(H1 W2)`
by H1, given dH2), and the gradients are chained in reverse order, each computed once. Work and
answer grow linearly with depth.

`split` finds the intermediates; `through` returns the modules' gradients, the program they
form (named intermediates, then the result) and the result with the names written out, which
the caller's guard checks end to end against finite differences of the whole expression.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import nodes as N

CUTS = (N.Func, N.Softmax)        # where a composition is split: its nonlinear modules
MIN_CUTS = 4                      # fewer: the flat derivation is fast and is what the steps show


def split(tree: N.Node, var: str) -> list | None:
    """The intermediates between the loss and the variable, outermost first: the non-scalar
    element-wise functions and softmaxes on the one path from the root down to the variable's
    one occurrence. None where the variable occurs more than once (the flat derivation then)."""
    if sum(1 for n in tree.walk() if isinstance(n, N.Sym) and n.name == var) != 1:
        return None
    cuts, node = [], tree
    while not (isinstance(node, N.Sym) and node.name == var):
        kids = [c for c in node.children() if N.contains(c, var)]
        if len(kids) != 1:
            return None
        node = kids[0]
        if isinstance(node, CUTS) and node.shape != N.SCALAR:
            cuts.append(node)
    return cuts


def substitute(node: N.Node, names: dict) -> N.Node:
    """node with every variable named in `names` replaced by names[name] (not walked again)."""
    if isinstance(node, N.Sym) and node.name in names:
        return names[node.name]
    return node.map_children(lambda c: substitute(c, names))


def replace_once(node: N.Node, old: N.Node, new: N.Node) -> N.Node:
    """node with the subtree `old` replaced by `new` (the subtree is not walked into)."""
    if node == old:
        return new
    return node.map_children(lambda c: replace_once(c, old, new))


@dataclass
class Module:
    output: str             # H3: the intermediate this module computes (or the loss, "L")
    rhs: N.Node             # its right side in terms of the next intermediate down
    wrt: str                # the next intermediate down (or the variable)
    gradient: N.Node        # ∂L/∂wrt in terms of d<output>, <output> and the module's inputs
    derivation: object      # the module's own Derivation (steps, index form)


@dataclass
class Chain:
    names: list             # the intermediates' names, outermost first
    values: dict            # name -> its value in terms of the input's variables
    modules: list           # outermost first; the last one's gradient is by the variable
    program: list           # [(name, node)]: H1, H2, ..., dH_m, ..., then ("", the result)
    closed: N.Node          # the result with every name written out


def fresh_names(count: int, taken) -> list:
    """H1 ... Hcount (H1 innermost, as layers are numbered from the input), avoiding `taken`."""
    for base in ("H", "Z", "A_"):
        names = [f"{base}{k}" for k in range(1, count + 1)]
        if not any(n in taken or "d" + n in taken for n in names):
            return names
    k, names = 0, []
    while len(names) < count:
        k += 1
        if f"H{k}" not in taken and f"dH{k}" not in taken:
            names.append(f"H{k}")
    return names


def through(expr: str, typed: N.Node, variables, var: str, cuts: list, derive_module) -> Chain:
    """The gradient of the scalar `typed` by `var` through the intermediates `cuts`.
    `derive_module(text, tree, decls, wrt, upstream)` derives one module (the pipeline's
    engine, without its own guard) and returns its Derivation."""
    from .fold import tidy

    taken = {name for name, _ in variables.items()}
    names = list(reversed(fresh_names(len(cuts), taken)))          # outermost first
    sym = {n: N.Sym(n, c.shape) for n, c in zip(names, cuts)}
    decls = variables.decls()
    decls.update({n: c.shape for n, c in zip(names, cuts)})
    below = cuts[1:] + [None]
    modules = []
    # the loss in terms of the outermost intermediate
    top = replace_once(typed, cuts[0], sym[names[0]])
    d = derive_module(f"L = {_text(top)}", top, decls, names[0], None)
    modules.append(Module("L", top, names[0], d.results[0].closed, d))
    for name, cut, nxt in zip(names, cuts, below):
        wrt = var if nxt is None else names[names.index(name) + 1]
        rhs = cut if nxt is None else replace_once(cut, nxt, sym[wrt])
        d = derive_module(f"{name} = {_text(rhs)}", rhs, decls, wrt, (f"d{name}", name))
        grad = d.results[0].closed
        from .fold import fold
        grad = fold(grad, d.rhs, name)
        modules.append(Module(name, rhs, wrt, grad, d))
    # the program: forward values innermost first, then the gradients outermost first
    values, program = {}, []
    for name, cut, nxt in reversed(list(zip(names, cuts, below))):
        rhs = cut if nxt is None else replace_once(cut, nxt, sym[names[names.index(name) + 1]])
        values[name] = rhs
        program.append((name, rhs))
    for m in modules[:-1]:
        program.append(("d" + m.wrt, m.gradient))
    program.append(("", modules[-1].gradient))
    # every name written out: the closed form the guard checks and the input language reads
    written: dict = {}
    for name in reversed(names):               # innermost first: each value in the variables
        written[name] = substitute(values[name], written)
    for name, node in program[len(names):]:
        out = tidy(substitute(node, written))
        if name:
            written[name] = out
    return Chain(names, values, modules, program, out)


def _text(node) -> str:
    from .printing.text import to_text
    return to_text(node)


def size(node: N.Node) -> tuple:
    """(terms, factors) of an expression: the number of summands of its top-level sum and the
    number of leaves (variables, numbers, ones, identities) in it."""
    terms = len(N.left_spine(node, (N.Add, N.Sub))) + 1 if isinstance(node, (N.Add, N.Sub)) else 1
    leaves = sum(1 for n in node.walk() if not n.children())
    return terms, leaves
