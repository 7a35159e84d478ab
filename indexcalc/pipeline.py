"""The one place the stages are chained: parse -> shapes -> index form -> derivative ->
sifting -> matching -> printing, with the numerical guard before anything is returned.
`derive()` returns a record of every intermediate; the steps are read off it."""
from __future__ import annotations

import ast
import re
import sys
import threading
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import chain as C
from . import tensor_pipeline
from . import nodes as N
from .closed import T, factored, is_negative
from .deltas import Normalizer
from .simplify import simplify, with_means
from .diff import Deriver, unmark
from .errors import IndexCalcError, ShapeError, UnsupportedError
from .evaluate import kind_of
from .index_syntax import defined_text, is_index_notation
from .index_form import IndexContext
from .match import Matcher
from .parse import parse
from .printing.index import STEP_TERMS, entry_name, index_latex, index_text, range_latex, whole_numbers
from .printing.latex import to_latex
from .printing.numpy_code import EinsumPrinter, NumpyPrinter
from .printing.text import to_text
from .shapes import Decls, check_sizes_fixed, infer, parse_decls, show_shape
from . import verify as V


def _resolved(value):
    """A LaTeX field is printed only when first asked for: it is the slow half of the steps
    (SymPy's LaTeX printer over long index sums) and text output never needs it."""
    return value() if callable(value) else value


@dataclass
class Step:
    rule: str
    text: str
    latex_of: object          # the LaTeX string, or a function that prints it
    lhs: str = ""             # LaTeX left side when the step starts a new equation ("" continues &=)
    note: str = ""            # LaTeX: the rule used, shown beside the row

    @property
    def latex(self) -> str:
        self.latex_of = _resolved(self.latex_of)
        return self.latex_of


@dataclass
class Result:
    wrt: str
    order: int
    shape: list
    index_form: str
    index_latex_of: object    # the LaTeX string, or a function that prints it
    closed: N.Node | None
    numpy: str
    steps: list = field(default_factory=list)
    checked_sizes: dict = field(default_factory=dict)
    resimplify: object = field(default=None, repr=False, compare=False)  # () -> (text, same?)
    program: list | None = None          # a composition's named intermediates: [(name, node)], then ("", result)
    function: str = ""                   # SPEC §3: def d_<var>(<variables>): each common subexpression once

    @property
    def is_simplified(self) -> bool:
        """Sifting is idempotent: the sifted form, sifted again, is the same sum of terms, up
        to the names of its summation indices."""
        return self.resimplify is None or self.resimplify()[1]

    @property
    def index_latex(self) -> str:
        self.index_latex_of = _resolved(self.index_latex_of)
        return self.index_latex_of

    @property
    def closed_form(self) -> str | None:
        return to_text(self.closed) if self.closed is not None else None

    @property
    def latex(self) -> str:
        return to_latex(self.closed) if self.closed is not None else self.index_latex


@dataclass
class Derivation:
    input: str
    tree: N.Node
    variables: object
    results: list
    rhs: N.Node | None = None          # backprop: the typed right side of `Y = f(...)`
    output: str | None = None          # backprop: Y
    name: str = "f"                    # what the steps call the differentiated object (L, p, f)
    upstream: str | None = None        # backprop: dY
    read_as: str = ""                  # the input as read, grouping explicit (SPEC §1.1)

    def latex_context(self):
        """Print LaTeX inside this: the upstream gradient (any name) as ∂L/∂Y."""
        from .printing.latex import upstream_names
        return upstream_names([self.upstream])

    @property
    def closed_form(self):
        return self.results[0].closed_form

    @property
    def numpy(self):
        return self.results[0].numpy

    def __str__(self):
        """The input as read and, for each variable, the closed form (or the index form)."""
        lines = [f"{self.input}   (read as {self.read_as or self.input})"]
        for r in self.results:
            what = f"∂{self.name}/∂{r.wrt}" if r.order == 1 else f"∂²{self.name}/∂{r.wrt}²"
            lines.append(f"  {what} = {r.closed_form or r.index_form}")
        lines.append("  checked numerically against finite differences; the steps: .results[k].steps")
        return "\n".join(lines)

    def __repr__(self):
        forms = "; ".join(f"d/d{r.wrt} = {r.closed_form or r.index_form}" for r in self.results)
        return f"<Derivation of {self.input!r}: {forms}>"

    def _repr_latex_(self):
        """Jupyter shows the derivation: the steps and the boxed closed form, in MathJax."""
        from .output import derivation_aligned
        return "$$" + derivation_aligned(self) + "$$"


_DEEP = threading.local()


def _deep(fn):
    """Run a derivation on a thread with a large stack and a high recursion limit. The input's
    tree is as deep as its longest chain (the parser, shape inference, the index form and the
    evaluator walk it by recursion; a sum of 256 quadratic forms or a product of 512 factors is
    that deep, and the SymPy expressions below it deeper still); the printers walk chains
    without recursion (they run again outside). Nested calls stay on the thread."""
    import functools

    @functools.wraps(fn)
    def run(*args, **kw):
        if getattr(_DEEP, "on", False):
            return fn(*args, **kw)
        box: dict = {}

        def body():
            _DEEP.on = True
            try:
                box["value"] = fn(*args, **kw)
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread as it is
                box["error"] = e
        old_size, old_limit = threading.stack_size(), sys.getrecursionlimit()
        threading.stack_size(_STACK_BYTES)
        sys.setrecursionlimit(max(old_limit, _RECURSION_LIMIT))
        try:
            t = threading.Thread(target=body, name="indexcalc-derive")
            t.start()
            t.join()
        finally:
            threading.stack_size(old_size)
            sys.setrecursionlimit(old_limit)
        if "error" in box:
            raise box["error"]
        return box["value"]
    return run


_STACK_BYTES = 512 * 2 ** 20        # reserved, not used: pages are touched only as deep as needed
_RECURSION_LIMIT = 60_000


@_deep
def derive(expr: str, wrt, where: str | None = None, order: int = 1, seed: int = 0,
           jacobian: bool = False) -> Derivation:
    """Derivative of `expr` with respect to each variable in `wrt` (a name, a list, or "x,y").
    With `jacobian=True`, `expr` may be an equation `p = softmax(x)`: the derivative of its
    right side, named by its left side in the steps and, where it helps, in the closed form."""
    expr = defined_text(expr)                        # f(w) = ...: the expression f stands for
    if is_index_notation(expr):                      # SPEC §1.3: its own reader, the same engine
        from . import index_pipeline
        return index_pipeline.derive(expr, wrt, where, order, seed)
    names = _names(wrt)
    if order not in (1, 2):
        raise UnsupportedError(f"--order {order}: only first and second derivatives are supported")
    tree = parse(expr)
    output = None
    if isinstance(tree, N.Equation):
        if not jacobian:
            raise UnsupportedError("an equation `Y = ...` is for `indexcalc backprop` and `check`; "
                                   "`derive` takes an expression")
        output, tree = tree.lhs, tree.rhs
    decls = parse_decls(where)
    typed, variables = infer(tree, decls, wrt=names)
    if output is not None and output in variables:
        raise IndexCalcError(f"the output {output} also appears on the right side")
    if tensor_pipeline.has_tensor(typed, variables):          # SPEC §1.2: NumPy's meaning
        absent = _declared_absent(variables, names, decls)
        d = tensor_pipeline.derive(expr, typed, variables, names, seed, output,
                                   read=_read_as_step(output, typed, output or "f"), order=order)
        _note_absent(d, absent)
        return d
    absent = _declared_absent(variables, names, decls)
    d = _derive_typed(expr, typed, variables, names, order, seed, name=output or "f", shown=(output, typed))
    _note_absent(d, absent)
    _note_scalars(d, variables)
    if output is not None:
        d.rhs, d.output = typed, output
    return d


@_deep
def backprop(equation: str, wrt, where: str | None = None, seed: int = 0) -> Derivation:
    """For `Y = f(X, W, ...)` inside a network with scalar loss L: ∂L/∂V for each V in terms of
    the upstream gradient dY = ∂L/∂Y, i.e. the derivative of Σ_ij dY_ij f_ij. A left side that
    is a scalar (the loss itself, `L = ...`) needs no upstream."""
    equation = defined_text(equation, keep_name=True)    # L(W, b) = ...: the loss L
    if is_index_notation(equation):
        from . import index_pipeline
        return index_pipeline.backprop(equation, wrt, where, seed)
    names = _names(wrt)
    tree = parse(equation)
    if not isinstance(tree, N.Equation):
        raise IndexCalcError("backprop takes an equation such as `Y = X W^T + b` (the left side names the output)")
    decls = parse_decls(where)
    rhs, variables = infer(tree.rhs, decls, wrt=names)
    if tree.lhs in variables:
        raise IndexCalcError(f"the output {tree.lhs} also appears on the right side")
    if tensor_pipeline.has_tensor(rhs, variables):            # SPEC §1.2: NumPy's meaning
        absent = _declared_absent(variables, names, decls)
        d = tensor_pipeline.backprop(equation, tree.lhs, rhs, variables, names, seed,
                                     read=_read_as_step(tree.lhs, rhs, tree.lhs))
        _note_absent(d, absent)
        return d
    if rhs.is_scalar:
        absent = _declared_absent(variables, names, decls)
        d = _derive_typed(equation, rhs, variables, names, 1, seed, name=tree.lhs, shown=(tree.lhs, rhs))
        d.rhs, d.output = rhs, tree.lhs
        _note_absent(d, absent)
        _note_scalars(d, variables)
        return d
    up = "d" + tree.lhs
    if up in variables:
        raise IndexCalcError(f"{up} is the upstream gradient ∂L/∂{tree.lhs}; it cannot appear in the equation")
    loss = N.Call("sum", (N.Hadamard(N.Sym(up), tree.rhs),))
    first = variables
    # the sizes the first pass inferred (conv's d - k + 1 among them) hold in the second
    known = variables.decls()
    merged = Decls({**known, **decls}, functions=known.functions | getattr(decls, "functions", set()),
                   columns=known.columns | getattr(decls, "columns", set()))
    typed, variables = infer(loss, merged, extra={up: rhs.shape})
    absent = _declared_absent(variables, names, decls)
    d = _derive_typed(equation, typed, variables, names, 1, seed, name="L", upstream=(up, tree.lhs),
                      shown=(tree.lhs, typed.a.b))
    _note_absent(d, absent)
    _note_scalars(d, first)
    d.rhs, d.output, d.upstream = typed.a.b, tree.lhs, up          # typed = sum(dY ∘ rhs)
    return d


def _declared_absent(variables, names, decls) -> list:
    """The --wrt names declared in --where that the expression does not use: they join the
    variables (their derivative is zero, of their shape, SPEC §1.1); an undeclared absent
    name stays an error, and so does a declared one the text names only with subscripts
    (x_i A_ij x_j without a Σ) or fused into a longer name (Wx): that is a misreading."""
    from .shapes import Variable
    absent = []
    for name in names:
        if name in variables or name not in decls:
            continue
        misread = _summation_convention_hint(name, variables) + _fused_hint(name, variables, decls)
        if misread:      # --where "A: n×n, x: n" with x_i A_ij x_j: not a zero derivative
            raise IndexCalcError(f"{name} is declared but does not occur in the expression as read, so its "
                                 f"derivative would be zero{misread}")
        shape = tuple(d if d is not None else f"{name}_size{k}" for k, d in enumerate(decls[name]))
        variables.table[name] = Variable(name, N.kind_of(shape), shape)
        variables.sizes = sorted(set(variables.sizes) | {d for d in shape if isinstance(d, str)})
        absent.append(name)
    return absent


def _note_scalars(d, variables):
    """Step 2 says which lower-case names were read as scalars by their place (SPEC §1.1's
    `w^T x + b`, `-y w^T x`): the reading the guard cannot check is shown, with how to change it."""
    names = getattr(variables, "scalars_by_context", ())
    texts = list(getattr(variables, "notes", ()))
    if names:
        said, one = ", ".join(names), len(names) == 1
        texts.insert(0, f"{said} read as {'a scalar' if one else 'scalars'} by {'its' if one else 'their'} place "
                        f"(a bias, a label, a divisor, an exponent); declare {'it' if one else 'them'} in --where to read "
                        f"{'it' if one else 'them'} otherwise")
    for r in d.results:
        for text in reversed(texts):
            plain = re.sub(r"[^A-Za-z0-9 ,.()+-]", "", text.split(";")[0])      # \text{} takes no ^ or _
            r.steps.insert(1, Step("note", text, fr"\text{{{plain}}}", ""))


def _note_absent(d, absent):
    for r in d.results:
        if r.wrt in absent:
            r.steps.insert(1, Step("note", f"{r.wrt} does not occur in the expression: its derivative is zero",
                                   fr"\text{{{r.wrt} does not occur: the derivative is zero}}", ""))


def _names(wrt) -> list:
    """`wrt` as a list of names: "x", "W,b,X" or a list."""
    from .latex_input import variable_name
    from .parse import ident
    names = [ident(variable_name(w.strip())) for w in (wrt.split(",") if isinstance(wrt, str) else wrt) if w.strip()]
    if not names:
        raise IndexCalcError("--wrt names no variable")
    return names


# The numerical check computes with arrays of the declared sizes (a size given as a name gets
# a small number): an array or a derivative beyond this many entries is refused up front,
# not met as a MemoryError half way through.
MAX_ENTRIES = 10**7


def _entries(shape) -> int:
    out = 1
    for d in shape:
        out *= d if isinstance(d, int) else 1
    return out


def _check_sizes(typed, variables, names, order) -> None:
    arrays = [(f"{n} ({show_shape(v.shape)})", _entries(v.shape)) for n, v in variables.items()]
    arrays.append((f"the expression's value ({show_shape(typed.shape)})", _entries(typed.shape)))
    arrays += [(f"the derivative by {n}", _entries(typed.shape) * _entries(variables[n].shape) ** order)
               for n in names if n in variables]
    for what, n in arrays:
        if n > MAX_ENTRIES:
            raise IndexCalcError(f"{what} has {n:.3g} entries, too many for the numerical check "
                                 f"(at most {MAX_ENTRIES:.0e}); name the sizes (X: m×n) instead of numbers")


def _summation_convention_hint(var, variables) -> str:
    """x_i A_ij x_j read in the matrix language is three variables named x_i, A_ij and x_j; when
    the variable asked for is the letter before such subscripts, say how index notation sums."""
    subscripted = [n for n, _ in variables.items() if re.fullmatch(rf"{re.escape(var)}_[A-Za-z]{{1,4}}", n)]
    if not subscripted:
        return ""
    return (f". {subscripted[0]} reads as a name here; index notation starts with a Σ or an indexed left "
            f"side (Σ_{{i,j}} x_i A_ij x_j, or y_i = A_ij x_j, where a repeated index is summed)")


def _fused_hint(var, variables, decls=()) -> str:
    """Ax read as one name when x is asked for: say how to write the product. Not of a name
    declared in --where or a Greek letter's (alpha, beta): those are whole names, and the
    declared-absent a of 1 / sigmoid(alpha) is the zero derivative (it said 'write alph a')."""
    from .shapes import GREEK
    fused = [n for n, _ in variables.items() if len(n) > len(var) and n.isalpha() and var in n
             and (n.startswith(var) or n.endswith(var)) and n not in decls and n.lower() not in GREEK]
    if not fused:
        return ""
    n = fused[0]
    spaced = f"{n[:-len(var)]} {var}" if n.endswith(var) else f"{var} {n[len(var):]}"
    return f". {n} reads as one name; for the product write {spaced} (with a space)"


def _derive_typed(expr, typed, variables, names, order, seed, name="f", upstream=None,
                  guard=True, shown=None) -> Derivation:
    """`shown` = (left side or None, typed tree): what the "read as" step shows."""
    lhs, body = shown if shown is not None else (None, typed)
    read = _read_as_step(lhs, body, name)
    results = []
    _check_sizes(typed, variables, names, order)
    for var in names:
        if var not in variables:
            raise IndexCalcError(f"{var!r} does not appear in {expr!r}, so there is nothing to "
                                 f"differentiate by (the variables are "
                                 f"{', '.join(n for n, _ in variables.items() if not upstream or n != upstream[0])})"
                                 + _summation_convention_hint(var, variables) + _fused_hint(var, variables))
        rng = np.random.default_rng(seed)
        cuts = C.split(typed, var) if order == 1 and typed.is_scalar else None
        try:
            if cuts is not None and len(cuts) >= C.MIN_CUTS:
                results.append(_derive_through(expr, typed, variables, var, cuts, rng, name))
            else:
                results.append(_derive_one(expr, typed, variables, var, order, rng, name, upstream, guard))
        except UnsupportedError:
            check_sizes_fixed(typed, variables)      # the reason, where it is a size nobody gave
            raise
    for r in results:
        r.steps.insert(0, read)
    return Derivation(expr, typed, variables, results, name=name, read_as=read.text)


def _read_as_step(lhs, body, name) -> Step:
    """Step 1 of every derivation: the input as read, grouping explicit where it matters and
    aliases resolved (SPEC §1.1), so a reader sees which question is answered."""
    from .printing.latex import symbol
    from .printing.text import read_as, scalars_first
    text = read_as(body)
    if lhs:
        text = f"{lhs} = {text}"
    head = symbol(lhs, body.shape == N.SCALAR) if lhs else name
    return Step("read as", text, lambda: to_latex(scalars_first(body)), head)


def _module(text, tree, decls, wrt, upstream):
    """One module of a composition (chain.through): `L = tree`, or `H = tree` given dH, derived
    by the flat engine without its own guard (the composed result is guarded end to end)."""
    from .printing.text import to_text as _t
    body = parse(_t(tree))
    if upstream is None:
        typed, variables = infer(body, decls)
        return _derive_typed(text, typed, variables, [wrt], 1, 0, name="L", guard=False)
    up, out = upstream
    typed, variables = infer(N.Call("sum", (N.Hadamard(N.Sym(up), body),)), decls, extra={up: tree.shape})
    d = _derive_typed(text, typed, variables, [wrt], 1, 0, name="L", upstream=upstream, guard=False)
    d.rhs, d.output, d.upstream = typed.a.b, out, up
    return d


def _derive_through(expr, typed, variables, var, cuts, rng, name) -> Result:
    """The gradient of a deep composition module by module (chain.py): named intermediates,
    each module's backward pass from the flat engine, the result guarded end to end."""
    ch = C.through(expr, typed, variables, var, cuts, _module)
    R = _Run(typed, variables, var)
    layout = V.layout(typed.shape) + V.layout(variables[var].shape)
    closed = ch.closed
    target = _target_shape(typed.shape, variables[var].shape)
    if closed.shape != target and T(closed).shape == target:
        closed = T(closed)
    values = ", ".join(f"{n} = {to_text(v)}" for n, v in reversed(list(ch.values.items())))
    steps = [Step("index", f"{name} = {expr}; split at its intermediates {values}, and "
                  f"differentiated module by module, each gradient once (the seeds' backpropagation)",
                  fr"\text{{intermediates: }} {', '.join(f'{to_latex(N.Sym(n, v.shape))} = {to_latex(v)}' for n, v in reversed(list(ch.values.items())))}")]
    for m in ch.modules:
        up = m.derivation.results[0]
        what = f"∂L/∂{m.wrt}" if m.output == "L" else f"∂L/∂{m.wrt}, through {m.output} = {to_text(m.rhs)}"
        steps.append(Step("module", f"{what}: {to_text(m.gradient)}   (index form: {up.index_form})",
                          (lambda g: lambda: to_latex(g))(m.gradient), _lhs_latex("L", m.wrt, [], [])))
    program = "; ".join((f"{n} = " if n else f"∂{name}/∂{var} = ") + to_text(e) for n, e in ch.program)
    steps.append(Step("closed form", program, lambda: to_latex(closed)))
    last = ch.modules[-1].derivation.results[0]
    code = _code(R, closed, [], (), layout)
    result = Result(var, 1, list(layout), last.index_form, last.index_latex_of, closed, code, steps,
                    program=ch.program, function=_function(R, closed, code, layout))
    _guard_first(R, result, layout, rng)
    return result


class _Run:
    """One derivative: the context and the pieces that the steps and the guard share."""

    def __init__(self, typed, variables, var):
        self.typed, self.variables, self.var = typed, variables, var
        self.ctx = IndexContext(variables)
        self.nz = Normalizer(self.ctx)
        self.matcher = Matcher(self.ctx, self.nz)
        self.numpy = NumpyPrinter(variables)
        self.out_idx = self.ctx.free(typed.shape)
        self.var_idx = self.ctx.free(variables[var].shape)

    def text(self, e, wrt=None):
        return index_text(e, self.ctx, wrt, self.var)

    def latex(self, e, wrt=None):
        return lambda: index_latex(e, self.ctx, wrt, self.var)

    def step_text(self, e, wrt=None):
        """A step's working: a long sum shown by its first and last terms (the result whole)."""
        return index_text(e, self.ctx, wrt, self.var, longest=STEP_TERMS)

    def step_latex(self, e, wrt=None):
        return lambda: index_latex(e, self.ctx, wrt, self.var, longest=STEP_TERMS)


def _derive_one(expr, typed, variables, var, order, rng, name="f", upstream=None, guard=True) -> Result:
    R = _Run(typed, variables, var)
    steps: list[Step] = []
    out_free = [i for i in R.out_idx if i is not None]
    var_free = [i for i in R.var_idx if i is not None]
    free = tuple(out_free + var_free)
    if upstream:
        R.ctx.upstream.add(upstream[0])
        entry, index_steps = _steps_chain(R, typed, var_free, upstream)
    else:
        entry = R.ctx.entry(typed, R.out_idx)
        index_steps = _steps_index(R, expr, out_free, var_free, entry, name)
    steps += index_steps
    lhs = _lhs_latex(name, var, out_free, var_free)

    marked = Deriver(R.ctx, var, R.var_idx, marks=True).d(entry)
    more, terms, sifted = differentiate_steps(R, marked, var, var_free, free, lhs)
    steps += more
    sifted_text = R.text(sifted)

    closed = _closed(R, terms, free, typed.shape, variables[var].shape)
    if closed is not None:
        steps += _steps_match(R, terms, free, closed)
    layout = V.layout(typed.shape) + V.layout(variables[var].shape)
    code = _code(R, closed, terms, free, layout)
    result = Result(var, 1, list(layout), sifted_text, R.latex(sifted), closed, code, steps,
                    resimplify=_resimplify(R, terms, free), function=_function(R, closed, code, layout))
    if guard:
        _guard_first(R, result, layout, rng)
    if order == 2:
        result = _second(R, result, terms, free, layout, rng, name)
    return result


def differentiate_steps(R, marked, var, var_free, free, lhs, whole=False):
    """The steps from a derivative with its marks (∂x_p/∂x_i unevaluated) to the sifted terms:
    differentiate, then the Kronecker rule (∂λ/∂λ = 1 for a scalar), then sift. A long
    working sum is shown by its first and last terms unless `whole`. Returns (steps, the
    sifted terms, their sum)."""
    text, latex = (R.text, R.latex) if whole else (R.step_text, R.step_latex)
    steps = []
    shown = _terms_expr(R, R.nz.terms(marked))          # flat Σ's: readable, and no deep nesting
    steps.append(Step("differentiate", text(shown, var_free), latex(shown, var_free), lhs))
    with_deltas = unmark(marked, R.var_idx)
    if marked != with_deltas and not var_free:          # a scalar: ∂λ/∂λ = 1, no delta
        shown = unmark(shown, R.var_idx)
        ev = entry_name(var)
        steps.append(Step("differentiate", f"∂{var}/∂{var} = 1: " + text(shown, var_free),
                          latex(shown, var_free), note=fr"\partial {ev} / \partial {ev} = 1"))
    elif marked != with_deltas:
        shown = unmark(shown, R.var_idx)
        dummies = _rule_dummies(R, len(var_free))
        rule = " ".join(f"δ_{a}{b}" for a, b in zip(dummies, var_free))
        steps.append(Step("kronecker", f"∂{var}_{dummies}/∂{var}_{_sub(var_free)} = {rule}: "
                          + text(shown, var_free), latex(shown, var_free),
                          note=_delta_rule_latex(var, var_free, dummies)))
    terms = R.nz.simplify_terms(R.nz.terms(with_deltas), set(free))
    sifted = _terms_expr(R, terms)
    steps.append(Step("sift", R.text(sifted), R.latex(sifted)))
    return steps, terms, sifted


def _resimplify(R, terms, free):
    """The sifted form, split into terms and sifted again: (its text, whether it is the same
    sum of terms up to the names of summation indices), for `Result.is_simplified`."""
    def again():
        after = R.nz.simplify_terms(R.nz.terms(_terms_expr(R, terms)), set(free))
        return R.text(_terms_expr(R, after)), R.nz.same_terms(terms, after)
    return again


def _terms_expr(R, terms):
    return sp.Add(*[t.expr(R.ctx) for t in terms]) if terms else sp.S.Zero


def _closed(R, terms, free, out_shape, var_shape):
    closed = R.matcher.match(terms, free)
    if closed is None:
        return None
    closed = simplify(closed, getattr(R, "typed", None))
    target = _target_shape(out_shape, var_shape)
    if closed.shape != target and T(closed).shape == target:
        closed = T(closed)
    return closed if _self_contained(R, closed) else None


def _self_contained(R, closed) -> bool:
    """Whether the closed form's text says every size it needs: a ones vector whose tie to a
    variable simplified away (‖exp(α 1)‖ of ‖exp(a - a + α)‖) has no size in the text, so
    the text is no answer (the guard rejected it, exit 3); the index form then is."""
    try:
        tree, _ = infer(parse(to_text(closed)), R.variables.decls(), expect=closed.shape)
        check_sizes_fixed(tree, R.variables)
    except ShapeError:
        return False
    except Exception:  # noqa: BLE001 - anything else is the guard's to report
        return True
    return True


def _target_shape(out_shape, var_shape):
    dims = [d for d in out_shape if d != 1] + [d for d in var_shape if d != 1]
    if out_shape == N.SCALAR:
        return var_shape
    if var_shape == N.SCALAR:
        return out_shape
    return tuple(dims) if len(dims) == 2 else (dims[0], 1) if dims else N.SCALAR


def _kind_of_layout(layout):
    if len(layout) == 0:
        return "scalar"
    if len(layout) == 1:
        return "vector"
    if len(layout) == 2:
        return "rowvector" if layout[0] == 1 else "matrix"
    return None


def _code(R, closed, terms, free, layout):
    kind = _kind_of_layout(layout)
    if closed is not None and kind is not None:
        return R.numpy.code(closed, kind)
    try:            # index arithmetic (∂conv(h, w)_n/∂h_m = w_{m-n+1}) through shift tensors
        code = EinsumPrinter(R.numpy, R.matcher, R.ctx).code(terms, free)
    except Exception as e:  # noqa: BLE001 - an operand with no NumPy spelling
        raise UnsupportedError(f"no NumPy form for this derivative yet ({e.__class__.__name__}); its "
                               "index form is " + R.text(_terms_expr(R, terms))) from None
    non_unit = [d for d in layout if d != 1]
    if len(non_unit) != len(layout):
        dims = ", ".join(R.numpy.size(d) for d in layout)
        code = f"np.reshape({code}, ({dims},))" if len(layout) == 1 else f"np.reshape({code}, ({dims}))"
    return code


def _function(R, closed, code, layout) -> str:
    """The `function` field: a complete `def d_<var>(<variables>):` that computes each common
    subexpression of the closed form once (NumpyPrinter.function); the one expression where
    there is no closed form."""
    from .printing.numpy_code import py_name
    params = [n for n, _ in R.variables.items()]
    name = "d_" + py_name(R.var)
    kind = _kind_of_layout(layout)
    if closed is not None and kind is not None:
        return R.numpy.function(closed, name, params, kind)
    return f"def {name}({', '.join(py_name(p) for p in params)}):\n    return {code}\n"


def _function_value(R, src):
    """The value the `function` field's code returns at a point (for the guard)."""
    from .printing.numpy_code import py_name

    def fn(point):
        ns = point.namespace()
        for g in V._generic_names(src):     # a called name is the generic function, as in
            ns[g] = V.F.generic_value(g.replace("_prime", "'").rstrip("_"))   # eval_code
        exec(src, ns)  # noqa: S102 - our own generated code
        args = [ns[py_name(n)] for n, _ in R.variables.items()]
        return np.asarray(ns["d_" + py_name(R.var)](*args), dtype=float)
    return fn


def _closed_value(R, closed, layout):
    def fn(point):
        from .evaluate import evaluate
        v = evaluate(closed, point.env2d, point.sizes)
        return np.reshape(v, tuple(N.size_value(d, point.sizes) for d in layout))
    return fn


def _roundtrip(R, closed, layout):
    """The closed form's text, parsed back with the same declarations, evaluated."""
    def fn(point):
        from .evaluate import evaluate
        decls = R.variables.decls()
        tree, _ = infer(parse(to_text(closed)), decls, expect=closed.shape)
        v = evaluate(tree, point.env2d, point.sizes)
        return np.reshape(v, tuple(N.size_value(d, point.sizes) for d in layout))
    return fn


def _guard_first(R, result: Result, layout, rng):
    def draw():
        return V.sample(R.typed, R.variables, rng)
    checks = {"NumPy code": lambda p: V.eval_code(result.numpy, p)}
    if result.function:
        checks["NumPy function"] = _function_value(R, result.function)
    if result.closed is not None:
        checks["closed form"] = _closed_value(R, result.closed, layout)
        checks["closed form, parsed back,"] = _roundtrip(R, result.closed, layout)
    what = f"d/d{R.var}"
    target = V.Target.of_tree(R.typed, R.var)
    point = V.guard_somewhere(checks, target, draw, what)
    V.guard_somewhere({"NumPy code": checks["NumPy code"]}, target, draw, what)   # and at a second point
    result.checked_sizes = dict(point.sizes)


def _second(R, first: Result, terms, free1, layout1, rng, name="f", draw=None) -> Result:
    """The derivative of the (verified) first derivative: the Hessian for a scalar. `draw`
    gives the guard's points (by default the matrix language's, from the typed tree)."""
    var = R.var
    var_idx2 = R.ctx.free(R.variables[var].shape)
    var_free2 = [i for i in var_idx2 if i is not None]
    free = tuple(list(free1) + var_free2)
    # the gradient differentiated once more, by an entry with its own index, with the same
    # steps as the first time: ∂/∂x_j, the δ rule, sifting
    D = Deriver(R.ctx, var, var_idx2, marks=True)
    marked = sp.Add(*[D.d(t.expr(R.ctx)) for t in terms])
    d2 = unmark(marked, var_free2)
    terms2 = R.nz.simplify_terms(R.nz.terms(d2), set(free))
    sifted = _terms_expr(R, terms2)
    vi = "".join(map(str, [i for i in R.var_idx if i is not None]))
    vj = "".join(map(str, var_free2))
    ev = entry_name(var)
    lhs = fr"\frac{{\partial^2 {name}}}{{\partial {ev}_{{{vi}}} \partial {ev}_{{{vj}}}}}" if vi else \
        fr"\frac{{\partial^2 {name}}}{{\partial {ev}^2}}"
    shown = _terms_expr(R, R.nz.terms(marked))
    steps = list(first.steps)
    if steps and steps[-1].rule == "closed form":
        steps[-1] = Step("gradient", steps[-1].text, steps[-1].latex_of)
    steps.append(Step("second derivative", (f"∂/∂{var}_{vj}: " if vj else "") + R.step_text(shown, var_free2),
                      R.step_latex(shown, var_free2), lhs))
    if marked != d2 and var_free2:
        dummies = _rule_dummies(R, len(var_free2))
        rule = " ".join(f"δ_{a}{b}" for a, b in zip(dummies, var_free2))
        steps.append(Step("kronecker", f"∂{var}_{dummies}/∂{var}_{_sub(var_free2)} = {rule}: "
                          + R.step_text(unmark(shown, var_free2), var_free2),
                          R.step_latex(unmark(shown, var_free2), var_free2), note=_delta_rule_latex(var, var_free2, dummies)))
    steps.append(Step("sift", R.text(sifted), R.latex(sifted)))
    layout = tuple(layout1) + V.layout(R.variables[var].shape)
    batched = None
    if any(len(v.shape) > 2 for _, v in R.variables.items()):     # tensors: summed over the batch
        from .batch import batch_match
        from .layout import shape_of_rank
        batched = batch_match(R, terms2, free, shape_of_rank(layout)) if len(layout) <= 2 else None
        closed = batched.node if batched is not None else None
    else:
        closed = simplify(R.matcher.match(terms2, free), getattr(R, "typed", None)) if len(free) <= 2 else None
    code = batched.code if batched is not None else _code(R, closed, terms2, free, layout)
    function = _function(R, None if batched is not None else closed, code, layout)
    result = Result(var, 2, list(layout), R.text(sifted), R.latex(sifted), closed, code, steps,
                    resimplify=_resimplify(R, terms2, free), function=function)
    if batched is not None:
        text, latex, note = batched.words()
        result.steps.append(Step("closed form", text, latex, note=note))
    elif closed is not None:
        result.steps.append(Step("closed form", to_text(closed), lambda: to_latex(closed)))

    def gradient(p):            # the (verified) first derivative's code, as a function of the values
        return lambda env2d: V.eval_code(first.numpy, p.at(env2d))
    checks = {"NumPy code": lambda p: V.eval_code(code, p),
              "NumPy function": _function_value(R, result.function)}
    if batched is not None:                 # its tree and its text, with NumPy's batched meaning
        checks.update(batched.checks(R.variables, layout))
    elif closed is not None:
        checks["closed form"] = _closed_value(R, closed, layout)
    # the rounding floor of the gradient's code: the magnitude of its closed form's terms (a
    # gradient that is zero by cancellation, as of sum(softmax(a)), has terms of size 1)
    # (a batched closed form on tensors has no 2-D magnitude: the floor is then measured)
    floor = V.Target.of_tree(first.closed, var).terms \
        if first.closed is not None and not tensor_pipeline.has_tensor(first.closed, R.variables) else None
    draw = draw or (lambda: V.sample(R.typed, R.variables, rng))
    point = V.guard_somewhere(checks, V.Target(gradient, var, floor), draw, f"d²/d{var}²")
    result.checked_sizes = dict(point.sizes)
    return result


# ---- steps -------------------------------------------------------------------------------------
def _rule_dummies(R, n) -> str:
    """The letters of ∂X_pq/∂X_ij = δ_pi δ_qj: p, q, ... unless a size or a free index has them."""
    taken = {str(x) for x in R.variables.sizes} | {str(i) for i in R.ctx.ranges if len(str(i)) == 1
                                                   and str(i) in "ijklmn"}
    return "".join([c for c in "pqrsuvwabcdefgh" if c not in taken][:n])


def _delta_rule_latex(var, wrt_free, dummies=None):
    """∂X_pq/∂X_ij = δ_pi δ_qj with the derivation's own index names."""
    var = entry_name(var)
    dummies = dummies or "pq"[:len(wrt_free)]
    wrt = "".join(map(str, wrt_free))
    deltas = " ".join(fr"\delta_{{{a}{b}}}" for a, b in zip(dummies, wrt))
    return fr"\partial {var}_{{{dummies}}} / \partial {var}_{{{wrt}}} = {deltas}"


def _sub(indices) -> str:
    return "".join(map(str, indices)) if all(len(str(i)) == 1 for i in indices) else ",".join(map(str, indices))


def _lhs_latex(name, var, out_free, var_free):
    """∂f_i/∂x_j, ∂L/∂W_ij: the left side of the index rows."""
    name, var = entry_name(name), entry_name(var)
    top = f"{name}_{{{_sub(out_free)}}}" if out_free else name
    bottom = f"{var}_{{{_sub(var_free)}}}" if var_free else var
    return fr"\frac{{\partial {top}}}{{\partial {bottom}}}"


def _lhs_text(name, var, out_free, var_free):
    top = f"{name}_{_sub(out_free)}" if out_free else name
    return f"∂{top}/∂{var}_{_sub(var_free)}" if var_free else f"∂{top}/∂{var}"


def _named(name, expr) -> str:
    """`f = x^T B x`; an equation (`L = -sum(...)`, `p = softmax(x)`) names itself. LaTeX is
    shown as read (\\mathbf{x}^\\top is x^⊤)."""
    from .latex_input import from_latex
    expr = from_latex(expr)
    return expr if re.match(rf"\s*{re.escape(name)}\s*=(?!=)", expr) else f"{name} = {expr}"


def _steps_index(R, expr, out_free, var_free, entry, name):
    oi = _sub(out_free)
    expanded_terms = R.nz.terms(entry)
    expanded = _terms_expr(R, expanded_terms) if len(expanded_terms) < 50 else entry
    return [
        Step("index", f"{_named(name, expr)}; index the derivative: {_lhs_text(name, R.var, out_free, var_free)}",
             _lhs_latex(name, R.var, out_free, var_free)),
        Step("expand", f"{name}{'_' + oi if oi else ''} = " + R.step_text(expanded), R.step_latex(expanded),
             f"{name}_{{{oi}}}" if oi else name),
    ] + _steps_rules(R, entry)


def _steps_rules(R, entry) -> list:
    """Each rule the derivative uses (norm, det, inverse, softmax, the chain rule through an
    element-wise function), stated before it is used."""
    from .printing.rules import rules_used
    return [Step("rule", text, rhs, lhs) for text, lhs, rhs in rules_used(entry, R.ctx, R.var)]


def _steps_chain(R, typed, var_free, upstream):
    """Backprop, as the seeds write it: the chain rule through the output Y, then Y indexed.
    The entry is Σ_pq dY_pq Y_pq, built here (as ctx.entry of sum(dY ∘ rhs) would) so that
    the rows share the output's indices p, q."""
    up, out = upstream
    rhs = typed.a.b
    ps = tuple(R.ctx.fresh(d) if d != 1 else None for d in rhs.shape)
    summed = [p for p in ps if p is not None]
    body = R.ctx.entry(rhs, ps)
    entry = R.ctx.sum(R.ctx.entry(typed.a.a, ps) * body, *summed)
    var, oi, vi = entry_name(R.var), _sub(summed), _sub(var_free)
    out_l = entry_name(out)
    dy_l = fr"\frac{{\partial L}}{{\partial {out_l}_{{{oi}}}}}" if oi else fr"\frac{{\partial L}}{{\partial {out_l}}}"
    dyv_l = (fr"\frac{{\partial {out_l}_{{{oi}}}}}{{\partial {var}_{{{vi}}}}}" if oi
             else fr"\frac{{\partial {out_l}}}{{\partial {var}_{{{vi}}}}}")
    sigma_l = "".join(fr"\sum_{{{p}=1}}^{{{range_latex(R.ctx, p)}}} " for p in summed)
    sigma_t = f"Σ_{','.join(map(str, summed))} " if summed else ""
    lhs_t = _lhs_text("L", R.var, [], var_free)
    chain_t = f"{lhs_t} = {sigma_t}{up}_{oi} ∂{out}_{oi}/∂{R.var}_{vi}"
    return entry, [
        Step("index", f"{out} = {to_text(rhs)}; index the derivative: {lhs_t}", _lhs_latex("L", R.var, [], var_free)),
        Step("chain rule", chain_t, f"{sigma_l}{dy_l} {dyv_l}", _lhs_latex("L", R.var, [], var_free)),
        Step("index output", f"{out}_{oi} = " + R.text(body), R.latex(body), f"{out_l}_{{{oi}}}" if oi else out_l),
    ] + _steps_rules(R, body)


def _steps_match(R, terms, free, closed):
    """The matrix form term by term, then the closed form. LaTeX is printed lazily, inside the
    derivation's LaTeX context (which knows its upstream gradient's name)."""
    idx = "".join(map(str, free))
    parts = []
    for t in terms:
        try:
            parts.append(R.matcher.term(t, free))
        except Exception:  # noqa: BLE001 - the whole result matched; a part may still be shown as is
            return [Step("closed form", to_text(closed), lambda: to_latex(closed))]
    parts = _collected([(c, with_means(n) if n is not None else n) for c, n in parts])   # as the closed form

    def text_of(c, node):
        if node is None and not idx:                      # a scalar: the coefficient itself
            return _coeff_text(c, R).strip() or "1"
        body = to_text(node) if node is not None else "1"
        return _coeff_text(c, R) + (f"[{body}]_{idx}" if idx else body)

    def latex_of(c, node):
        if node is None and not idx:
            return _coeff_latex(c, R).strip() or "1"
        body = to_latex(node) if node is not None else "1"
        return _coeff_latex(c, R) + (f"\\left[{body}\\right]_{{{idx}}}" if idx else body)
    return [Step("matrix form", _signed_join([text_of(c, n) for c, n in parts]),
                 lambda: _signed_join([latex_of(c, n) for c, n in parts])),
            Step("closed form", to_text(closed), lambda: to_latex(closed))]


def _collected(parts) -> list:
    """Matrix-form terms that are the same matrix expression, added up: 8 [X^T ... X^T]_ij
    once, not five times with coefficients that add to 8."""
    merged: dict = {}
    for c, node in parts:
        c = whole_numbers(c)
        key = to_text(node) if node is not None else ""
        if key in merged:
            merged[key][0].append(c)
        else:
            merged[key] = [[c], node]
    # only coefficients that were added up are expanded (to cancel): a lone one is a product
    # as the derivative has it, and expanding a product of d sums makes 2^d terms
    out = [(sp.expand(sum(cs)) if len(cs) > 1 else cs[0], node) for cs, node in merged.values()]
    return [(c, node) for c, node in out if c != 0]


def _coeff(c, show, parens) -> str:
    """A scalar coefficient in front of a matrix-form term: "" for 1, "-" for -1, else printed
    by `show` (the index printers: a coefficient may hold atoms such as ‖w‖) and wrapped by
    `parens` where it is a sum or a fraction."""
    if c == 1:
        return ""
    if c == -1:
        return "-"
    c = factored(c)                            # σ (1 - σ), as the closed form has it
    if is_negative(c):
        return "-" + _coeff(-c, show, parens)
    s = show(c)
    return parens(s) + " " if c.is_Add or "/" in s else s + " "


def _coeff_text(c, R) -> str:
    return _coeff(c, R.text, lambda s: f"({s})")


def _coeff_latex(c, R) -> str:
    return _coeff(c, lambda e: index_latex(e, R.ctx), lambda s: fr"\left({s}\right)" if "/" not in s else s)


def _signed_join(parts) -> str:
    if not parts:
        return "0"
    out = parts[0]
    for p in parts[1:]:
        out += f" - {p[1:].lstrip()}" if p.startswith("-") else f" + {p}"
    return out


def parse_values(text: str) -> dict:
    """`X=[[0,1],[2,3]], W=[[1,1],[1,1]]` -> {name: float array}. Every value is checked here,
    before any work: a finite real number or a rectangular array of them (exit status 2 with
    the variable named otherwise: strings, ragged rows, complex numbers, 1e400)."""
    out = {}
    parts = re.split(r",\s*(?=[A-Za-zα-ωΑ-Ω][\w]*\s*=)", text.strip())
    for part in parts:
        if "=" not in part:
            raise IndexCalcError(f"cannot read the value {part.strip()!r}: write NAME=[[...]]")
        name, value = (s.strip() for s in part.split("=", 1))
        if name in out:
            raise IndexCalcError(f"--at gives {name} twice")
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise IndexCalcError(f"cannot read the value of {name}: {value!r} (write numbers, "
                                 "[1, 2] or [[1, 2], [3, 4]])") from None
        out[name] = _numbers(name, literal)
    return out


def _numbers(name: str, value) -> np.ndarray:
    """A literal as a float array: numbers, or lists of equal length all the way down."""
    def shape_of(x, depth=0):
        if isinstance(x, (list, tuple)):
            if not x:
                raise IndexCalcError(f"--at: {name} has an empty list")
            shapes = {shape_of(e, depth + 1) for e in x}
            if len(shapes) != 1:
                raise IndexCalcError(f"--at: the rows of {name} differ in length or depth (a ragged array)")
            return (len(x),) + shapes.pop()
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            what = "a complex number" if isinstance(x, complex) else f"{type(x).__name__} {x!r}"
            raise IndexCalcError(f"--at: {name} must be real numbers, not {what}")
        try:
            finite = np.isfinite(float(x))
        except OverflowError:
            finite = False
        if not finite:
            raise IndexCalcError(f"--at: {name} has {x!r}, which is not a finite number")
        return ()
    shape_of(value)
    return np.array(value, dtype=float)


def fit_sizes(name: str, want, shape, sizes: dict) -> None:
    """--at: an array's axes against its declared sizes; a size name takes the first number
    it meets, and every later array must agree with it (sizes is filled in place)."""
    for dim, n in zip(want, shape):
        if isinstance(dim, str):
            if sizes.setdefault(dim, n) != n:
                raise IndexCalcError(f"--at: {name} has {n} where the size {dim} is {sizes[dim]}")
        elif isinstance(dim, int) and dim != n:
            raise IndexCalcError(f"--at: {name} must have size {dim} there, not {n}")


def evaluate_at(d: Derivation, values: dict) -> dict:
    """The value and each derivative at the given numbers (`--at`), from values checked by
    parse_values: each variable's array must have its kind's axes and fit the sizes. NumPy
    first; where that overflows (log(sum(exp(x))) at x = 1000), once more in extended
    precision (np.longdouble, exponents to ±4932), so a finite truth is shown as such."""
    values = {n: np.asarray(v, dtype=float) for n, v in values.items()}
    unknown = [n for n in values if n not in d.variables.table]
    if unknown:
        raise IndexCalcError(f"--at gives a value for {', '.join(unknown)}, which is not a variable of "
                             f"{d.input!r} (the variables are {', '.join(n for n, _ in d.variables.items())})")
    if getattr(d, "problem", None) is not None:            # index notation: its own evaluator
        from . import index_pipeline
        return index_pipeline.evaluate_at(d, values)
    from .evaluate import to_2d
    missing = [n for n, _ in d.variables.items() if n not in values]
    if missing:
        raise IndexCalcError(f"--at gives no value for {', '.join(missing)}")
    point = V.Point.__new__(V.Point)
    point.variables, point.sizes, point.env2d = d.variables, {}, {}
    for name, v in d.variables.items():
        a, want = values[name], tuple(v.array_shape)
        if v.kind == "rowvector" and a.ndim == 1:
            a = a[None, :]
        if a.ndim != len(want):
            need = "a number" if not want else f"{len(want)} ax{'is' if len(want) == 1 else 'es'}"
            got = "a number" if a.ndim == 0 else f"an array of shape {a.shape}"
            raise IndexCalcError(f"--at: {name} ({show_shape(v.shape)}) needs {need}, not {got}")
        fit_sizes(name, want, a.shape, point.sizes)
        point.env2d[name] = to_2d(a, v)
    for name, v in d.variables.items():                # computed sizes (d - k + 1) must fit too
        for dim, n in zip(v.array_shape, values[name].shape):
            if isinstance(dim, N.LinSize) and dim.value(point.sizes) != n:
                raise IndexCalcError(f"--at: {name} must have size {dim} = {dim.value(point.sizes)} there, not {n}")
    for node in d.tree.walk():                          # and sizes computed inside (conv's d - k + 1)
        for dim in node.shape or ():
            if isinstance(dim, N.LinSize) and dim.value(point.sizes) < 1:
                raise IndexCalcError(f"--at: at these sizes {dim} = {dim.value(point.sizes)}, so "
                                     f"{to_text(node)} would have no entries (a kernel longer than its input?)")
    out = _values_at(d, point, float)
    if not all(np.all(np.isfinite(x)) for x in [out["value"], *out["derivatives"].values()]):
        try:
            out = _values_at(d, point, np.longdouble)
        except (TypeError, IndexCalcError):          # np.linalg has no long double: keep the first
            pass
    tolist = lambda x: np.asarray(x, dtype=float).tolist()
    return {"value": tolist(out["value"]), "derivatives": {w: tolist(x) for w, x in out["derivatives"].items()}}


def _values_at(d: Derivation, point, dtype) -> dict:
    from .evaluate import evaluate, from_2d
    at = V.Point.__new__(V.Point)
    at.variables, at.sizes = point.variables, point.sizes
    at.env2d = {n: a.astype(dtype) for n, a in point.env2d.items()}
    at.env = {n: (a.reshape(()) if d.variables[n].kind == "scalar" else from_2d(a, d.variables[n].kind))
              for n, a in at.env2d.items()}
    with np.errstate(all="ignore"):
        try:
            value = evaluate(d.tree, at.env2d, at.sizes)
            value = value.reshape(()) if kind_of(d.tree.shape) == "scalar" else from_2d(value, kind_of(d.tree.shape))
            derivatives = {r.wrt: V.eval_code(r.numpy, at) for r in d.results}
        except np.linalg.LinAlgError:
            raise IndexCalcError("a matrix is singular at the given values (an inverse, det or logdet "
                                 "is undefined there)") from None
    return {"value": value, "derivatives": derivatives}

