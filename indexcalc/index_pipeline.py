"""Derivations of index-notation input (SPEC §1.3): the same stages as pipeline.py after the
reading — the engine's differentiation (diff.py), sifting (deltas.py), matching and printing —
with the steps in the seeds' style, and a numerical guard whose reference is the user's own
input evaluated directly (index_eval.py), never our lowering of it.

`derive` of an expression (a scalar) gives the gradient; of an entry equation
`a[n] = Σ_j h[n+j-1] w[j]`, the full derivative of its left side (∂a_n/∂h_m). `backprop`
of an entry equation gives ∂L/∂V in terms of the upstream gradient dY[...].
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from . import layout as LY
from . import nodes as N
from . import verify as V
from .batch import batch_match
from .deltas import Normalizer
from .diff import Deriver
from .errors import IndexCalcError, UnsupportedError, VerificationError
from .from_index_notation import IndexProblem, index_symbol, read
from .index_form import IndexContext
from .latex_input import from_latex
from .match import Matcher
from .pipeline import (
    Derivation,
    Result,
    Step,
    _closed,
    _lhs_latex,
    _lhs_text,
    _resimplify,
    _roundtrip,
    _second,
    _steps_match,
    _steps_rules,
    _sub,
    _target_shape,
    _terms_expr,
    differentiate_steps,
)
from .printing.index import (
    STEP_TERMS,
    IndexText,
    entry_name,
    index_latex,
    index_text,
    range_latex,
)
from .printing.names import Names
from .printing.numpy_code import EinsumPrinter, NumpyPrinter
from .shapes import Variable, Variables, parse_decls


class _Run:
    """One derivative of index-notation input: what pipeline's step helpers ask of a run."""

    def __init__(self, problem: IndexProblem, variables, var):
        self.problem, self.variables, self.var = problem, variables, var
        self.ctx = IndexContext(variables)
        problem.register(self.ctx)
        self.nz = Normalizer(self.ctx)
        self.matcher = Matcher(self.ctx, self.nz)
        self.numpy = NumpyPrinter(variables)
        self.names = None                  # the named intermediates of long steps (printing/names.py)

    def name(self, e):
        return self.names.apply(e) if self.names else e

    def text(self, e, wrt=None):
        return index_text(self.name(e), self.ctx, wrt, self.var)

    def latex(self, e, wrt=None):
        return lambda: index_latex(self.name(e), self.ctx, wrt, self.var)

    def step_text(self, e, wrt=None):
        """A step's working: a long sum shown by its first and last terms (pipeline._Run's)."""
        return index_text(self.name(e), self.ctx, wrt, self.var, longest=STEP_TERMS)

    def step_latex(self, e, wrt=None):
        return lambda: index_latex(self.name(e), self.ctx, wrt, self.var, longest=STEP_TERMS)

    def name_steps(self, body, out_names) -> list:
        """A forward expression with two or more nested sums (attention, a normalisation) has
        them named, as a TA would: each derivative through a nested sum writes it again, and
        the rows would not fit on a page. One row a name, after the indexed output."""
        taken = [*self.variables.table, *map(str, self.variables.sizes), *out_names, "L", "f"]
        names = Names(body, taken, self.variables.sizes, reading=self._reading)
        if len(names.entries) < 2:
            return []
        self.names = names
        self.ctx.named_variables = names.variables()          # where a name stands in a product
        steps = []
        for entry, value in names.definitions():
            steps.append(Step("name", f"{index_text(entry, self.ctx)} := {index_text(value, self.ctx)}",
                              lambda v=value: index_latex(v, self.ctx),
                              lhs=index_latex(entry, self.ctx) + r" \mathrel{:}"))
        return steps

    def _reading(self, e, free):
        """The free indices of e in the order its printed form shows them."""
        p = IndexText(self.ctx)
        p._outer_free = {s.name for s in e.free_symbols}
        seen: dict = {}
        p._reading_indices(e, set(free), seen)
        return list(seen) + [i for i in free if i not in seen]


def _names(wrt) -> list:
    from .latex_input import variable_name
    names = [variable_name(w.strip()) for w in (wrt.split(",") if isinstance(wrt, str) else wrt) if w.strip()]
    if not names:
        raise IndexCalcError("--wrt names no variable")
    return names


def derive(text: str, wrt, where=None, order: int = 1, seed: int = 0) -> Derivation:
    """The gradient of a scalar expression, or the full derivative of an entry equation's left
    side; with order=2 the derivative of that once more by the same variable (the Hessian of a
    scalar), up to rank 4."""
    if order not in (1, 2):
        raise UnsupportedError(f"--order {order}: only first and second derivatives are supported")
    return derive_problem(read(text, parse_decls(where)), text, wrt, seed, order)


def derive_problem(problem, text: str, wrt, seed: int = 0, order: int = 1) -> Derivation:
    """derive() of a problem already read (index notation, or a TensorProblem)."""
    name = problem.output or "f"
    names = _checked(_names(wrt), problem)
    if order == 2:
        _second_fits(problem, names)
    results = [_derive_one(problem, problem.variables, var, np.random.default_rng(seed), name, order=order)
               for var in names]
    d = Derivation(text, N.Sym(name, problem.out_shape), problem.variables, results, name=name)
    d.output, d.problem = problem.output, problem
    return d


def backprop(text: str, wrt, where=None, seed: int = 0) -> Derivation:
    """∂L/∂V for an entry equation Y[...] = f(...) inside a network, with dY[...] = ∂L/∂Y."""
    return backprop_problem(read(text, parse_decls(where)), text, wrt, seed)


def backprop_problem(problem, text: str, wrt, seed: int = 0) -> Derivation:
    """backprop() of a problem already read (index notation, or a TensorProblem)."""
    if problem.output is None:
        raise IndexCalcError("backprop takes an entry equation such as `Y[i,j] = Σ_p X[i,p] W[j,p] + b[j]` "
                             "(the left side names the output)")
    names = _checked(_names(wrt), problem)
    if not problem.out_indices:                         # the loss itself: no upstream
        results = [_derive_one(problem, problem.variables, var, np.random.default_rng(seed), problem.output)
                   for var in names]
        d = Derivation(text, N.Sym(problem.output, N.SCALAR), problem.variables, results, name=problem.output)
        d.output, d.problem = problem.output, problem
        return d
    up = "d" + problem.output
    if up in problem.variables:
        raise IndexCalcError(f"{up} is the upstream gradient ∂L/∂{problem.output}; it cannot appear in the equation")
    shape = problem.out_shape
    variables = Variables({**problem.variables.table, up: Variable(up, LY.kind_of(shape), shape)},
                          problem.variables.sizes)
    results = [_derive_one(problem, variables, var, np.random.default_rng(seed), "L", upstream=up)
               for var in names]
    d = Derivation(text, N.Sym("L", N.SCALAR), variables, results, name="L", upstream=up)
    d.output, d.problem = problem.output, problem
    return d


MAX_RANK = 4          # a Hessian of a scalar by a matrix; a rank-3 tensor of second derivatives


def _second_fits(problem, names):
    """--order 2: the result has the output's indices and the variable's twice; beyond rank 4
    it is refused, with what to derive instead."""
    for var in names:
        rank = len(problem.out_indices) + 2 * len(LY.array_shape(problem.variables[var].shape))
        if rank > MAX_RANK and not problem.out_indices:      # a scalar by a tensor
            shape = LY.show_dims(problem.variables[var].shape)
            raise UnsupportedError(f"--order 2 of the expression by {var} ({shape}) would be an array of rank "
                                   f"{rank}; indexcalc gives second derivatives up to rank {MAX_RANK} (the "
                                   "Hessian of a scalar by a matrix): differentiate by a matrix or a vector, "
                                   "or write one batch entry's expression with matrices")
        if rank > MAX_RANK:
            what = f"{problem.output}[{','.join(problem.out_indices)}]" if problem.output else \
                f"the expression ({LY.show_dims(problem.out_shape)})"
            raise UnsupportedError(f"--order 2 of {what} by {var} would be an array of rank {rank}; indexcalc "
                                   f"gives second derivatives up to rank {MAX_RANK} (the Hessian of a scalar "
                                   "by a matrix): differentiate a scalar, or one entry's equation")


def _checked(names, problem):
    from .latex_input import spelled_as
    names = [spelled_as(var, problem.variables.table) for var in names]    # --wrt mu: the μ of μ_i
    for var in names:
        if var not in problem.variables:
            raise IndexCalcError(f"{var!r} does not appear in {problem.text!r}, so there is nothing to "
                                 f"differentiate by (the variables are {', '.join(problem.variables.table)})")
    return names


def _derive_one(problem: IndexProblem, variables, var, rng, name, upstream=None, order=1) -> Result:
    R = _Run(problem, variables, var)
    ctx = R.ctx
    out_idx = tuple(index_symbol(i) for i in problem.out_indices)
    var_idx = R.var_idx = ctx.free(variables[var].shape)
    var_free = [i for i in var_idx if i is not None]
    out_free = [] if upstream else list(out_idx)
    free = tuple(out_free + var_free)
    body = problem.index_form(ctx)
    if body.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise IndexCalcError(f"{problem.text!r} is not finite: it divides by zero")
    named = R.name_steps(body, [problem.output or name, upstream or ""])
    if upstream:
        ctx.upstream.add(upstream)
        entry = ctx.sum(sp.IndexedBase(upstream)[out_idx] * body, *out_idx)
        steps = _steps_chain(R, problem, body, out_idx, var_free, upstream)
    else:
        entry = body
        steps = _steps_index(R, problem, name, out_free, var_free)
    lhs = _lhs_latex(name, var, out_free, var_free)
    at = next(k for k, s in enumerate(steps) if s.rule in ("index output", "expand")) + 1
    steps[at:at] = named + _steps_rules(R, body)          # the names, then each rule it will use

    marked = Deriver(ctx, var, var_idx, marks=True).d(entry)
    more, terms, sifted = differentiate_steps(R, marked, var, var_free, free, lhs, whole=True)
    steps += more

    out_shape = N.SCALAR if upstream else problem.out_shape
    var_shape = variables[var].shape
    layout = LY.array_shape(out_shape) + LY.array_shape(var_shape)
    closed = None
    if len(layout) <= 2 and len(free) <= 2 and all(len(v.shape) <= 2 for _, v in variables.items()):
        closed = _closed(R, terms, free, out_shape, var_shape)
    batched = None
    if closed is not None:
        steps += _steps_match(R, terms, free, closed)
    elif len(layout) > 2 or any(len(v.shape) > 2 for _, v in variables.items()):
        batched = batch_match(R, terms, free, _target_shape(out_shape, var_shape) if len(layout) <= 2 else None)
    if batched is not None:                    # dS K over the batch index b: np.matmul's meaning
        closed = batched.node
        text, latex, note = batched.words()
        steps.append(Step("closed form", text, latex, note=note))
        code = _laid_out(R, batched.code, layout)
    else:
        code = _code(R, closed, terms, free, layout)
    # the index form as text is the whole expression (JSON, --format text's answer line);
    # the LaTeX one, boxed under the rows that define the names, is written with them
    result = Result(var, 1, list(layout), index_text(sifted, ctx), R.latex(sifted), closed, code, steps,
                    resimplify=_resimplify(R, terms, free))
    _guard(R, problem, variables, result, layout, rng, upstream, batched=batched)
    if order == 2:              # once more, guarded against differences of the verified first
        sizes, needs = choose_sizes(problem, variables), problem.domains()
        draw = _draws(problem, variables, sizes, rng, needs)
        result = _second(R, result, terms, free, layout, rng, name, draw=draw)
    return result


def _draws(problem, variables, sizes, rng, needs):
    """The guard's points, one after another (values drawn as `make_point`'s attempts 0, 1, 2)."""
    attempts = iter(range(1000))
    return lambda: make_point(problem, variables, sizes, rng, next(attempts) % 3, needs)


def _steps_index(R, problem, name, out_free, var_free):
    oi = _sub(out_free)
    body = problem.index_form(R.ctx)
    expanded_terms = R.nz.terms(body)
    expanded = _terms_expr(R, expanded_terms) if len(expanded_terms) < 50 else body
    return [
        Step("index", f"{from_latex(problem.text)}; index the derivative: {_lhs_text(name, R.var, out_free, var_free)}",
             _lhs_latex(name, R.var, out_free, var_free)),
        Step("expand", f"{name}{'_' + oi if oi else ''} = " + R.text(expanded), R.latex(expanded),
             f"{entry_name(name)}_{{{oi}}}" if oi else entry_name(name)),
    ] + problem.rule_steps(R, body)


def _steps_chain(R, problem, body, out_idx, var_free, up):
    out = problem.output
    var, oi, vi = entry_name(R.var), _sub(out_idx), _sub(var_free)
    out_l = entry_name(out)
    dy_l = fr"\frac{{\partial L}}{{\partial {out_l}_{{{oi}}}}}"
    dyv_l = fr"\frac{{\partial {out_l}_{{{oi}}}}}{{\partial {var}_{{{vi}}}}}"
    sigma_l = "".join(fr"\sum_{{{p}=1}}^{{{range_latex(R.ctx, p)}}} " for p in out_idx)
    sigma_t = f"Σ_{','.join(map(str, out_idx))} "
    lhs_t = _lhs_text("L", R.var, [], var_free)
    chain_t = f"{lhs_t} = {sigma_t}{up}_{oi} ∂{out}_{oi}/∂{R.var}_{vi}"
    return [
        Step("index", f"{from_latex(problem.text)}; index the derivative: {lhs_t}", _lhs_latex("L", R.var, [], var_free)),
        Step("chain rule", chain_t, f"{sigma_l}{dy_l} {dyv_l}", _lhs_latex("L", R.var, [], var_free)),
        Step("index output", f"{out}_{oi} = " + R.text(body), R.latex(body), f"{out_l}_{{{oi}}}"),
    ] + problem.rule_steps(R, body)


def _code(R, closed, terms, free, layout):
    kind = {0: "scalar", 1: "vector"}.get(len(layout), None)
    if len(layout) == 2:
        kind = "rowvector" if layout[0] == 1 else "matrix"
    if closed is not None and kind is not None:
        return R.numpy.code(closed, kind)
    try:
        code = EinsumPrinter(R.numpy, R.matcher, R.ctx).code(terms, free)
    except IndexCalcError:
        raise
    except Exception as e:  # noqa: BLE001 - an operand with no NumPy spelling
        raise UnsupportedError(f"no NumPy form for this derivative yet ({e.__class__.__name__}); its index "
                               "form is " + R.text(_terms_expr(R, terms))) from None
    return _laid_out(R, code, layout, not free)


def _laid_out(R, code, layout, always=False):
    """The code reshaped to the layout where the layout has unit axes the free indices do not
    carry (x^T X of a batch X is B×1×m: its derivative's code computes B×m×n)."""
    if len([d for d in layout if d != 1]) != len(layout) or always:
        dims = ", ".join(R.numpy.size(d) for d in layout)
        code = f"np.reshape({code}, ({dims}{',' if len(layout) == 1 else ''}))"
    return code


def forward_code(problem, seed: int = 0) -> str:
    """An entry equation's right side as one NumPy expression over its variables (np.einsum,
    window views for index arithmetic, never a loop over entries), checked against the input
    evaluated directly at a random point."""
    R = _Run(problem, problem.variables, next(iter(problem.variables.table)))
    free = tuple(index_symbol(i) for i in problem.out_indices)
    terms = R.nz.simplify_terms(R.nz.terms(problem.index_form(R.ctx)), set(free))
    try:
        code = EinsumPrinter(R.numpy, R.matcher, R.ctx).code(terms, free)
    except IndexCalcError:
        raise
    except Exception as e:  # noqa: BLE001 - an operand with no NumPy spelling
        raise UnsupportedError(f"no NumPy form for the right side of {problem.text!r} yet "
                               f"({e.__class__.__name__})") from None
    sizes = choose_sizes(problem, problem.variables)
    _sizes_from_inputs(problem, code, sizes)
    point = make_point(problem, problem.variables, sizes, np.random.default_rng(seed), 0, problem.domains())
    want = reference(problem, point)
    try:
        with np.errstate(all="ignore"):
            got = V.eval_code(code, point)
    except Exception as e:  # noqa: BLE001 - our own code failing is a bug
        raise VerificationError(f"indexcalc bug: the NumPy code of {problem.output}'s right side could not be "
                                f"evaluated ({type(e).__name__}: {e}); no code is written") from None
    if np.shape(got) != np.shape(want) or not np.allclose(got, want, rtol=1e-9, atol=1e-12):
        raise VerificationError(f"indexcalc bug: the NumPy code of {problem.output}'s right side differs from "
                                "the input evaluated directly; no code is written")
    return code


def _sizes_from_inputs(problem, code, sizes) -> None:
    """A module's forward pass has only its inputs: a size of the output that no input has
    (Y: N×O×H×W declared, X undeclared) would be an undefined name in the generated file."""
    import ast
    from .printing.numpy_code import py_name
    names = {n.id for n in ast.walk(ast.parse(code, mode="eval")) if isinstance(n, ast.Name)}
    inputs = {py_name(v) for v in problem.variables.table}
    loose = sorted(str(d) for d in sizes if str(d) in names and str(d) not in inputs)
    if loose:
        many = len(loose) > 1
        raise UnsupportedError(f"{problem.output}'s size{'s' if many else ''} {', '.join(loose)} "
                               f"{'are sizes' if many else 'is the size'} of no input, so the module's forward "
                               f"pass cannot compute {'them' if many else 'it'}: declare the input that has "
                               f"{'them' if many else 'it'} in --where")


# ---- the guard: the user's input, evaluated directly ----------------------------------------------
def choose_sizes(problem: IndexProblem, variables, rng=None) -> dict:
    """Small, distinct numbers for the size names, with every index range at least 2."""
    names = list(variables.sizes)
    derived = [d for d in problem.ranges.values() if isinstance(d, N.LinSize)]
    for d in derived:
        names += [n for n, _ in d.terms if n not in names]
    names += sorted({d for d in problem.ranges.values() if isinstance(d, str)} - set(names))
    first = {d: V.SIZES[k % len(V.SIZES)] for k, d in enumerate(names)}
    if all(d.value(first) >= 2 for d in derived):
        return first
    pick = np.random.default_rng(len(names))
    for attempt in range(3000):        # small first: the reference is dense over every index
        top = 8 if attempt < 2000 else 3 + len(names) + 3
        values = pick.choice(np.arange(2, top), size=len(names), replace=len(names) > top - 2)
        trial = {n: int(x) for n, x in zip(names, values)}
        if all(d.value(trial) >= 2 for d in derived):
            return trial
    raise IndexCalcError("cannot choose sizes for the numerical check: some index range "
                         f"({', '.join(map(str, derived))}) is never at least 2")


def make_point(problem, variables, sizes, rng, attempt, needs):
    """Values drawn by verify's recipe for `attempt`; where the input is not finite there (log(1 -
    p_i) at p_i > 1), the values scaled down, a quarter at a time, as verify.sample does (the
    guard found no point for -Σ_i y_i log(p_i) + (1 - y_i) log(1 - p_i), which the matrix
    language derives)."""
    drawn = {}
    for name, v in variables.items():        # attempt None: each variable its own recipe, its domain
        recipe = attempt % 3 if attempt is not None else int(rng.integers(3))     # kept or not, as
        need = needs.get(name, set()) if attempt is not None or rng.random() < 0.5 else set()  # verify's
        drawn[name] = V._draw(tuple(N.size_value(d, sizes) for d in v.shape), need, recipe, rng)  # strategies: √(x_i - y_i)
    for _ in range(3):
        point = _point(variables, sizes, drawn)
        if np.all(np.isfinite(reference(problem, point))):
            break
        drawn = {name: a / 4 for name, a in drawn.items()}
    return point


def _point(variables, sizes, env2d):
    point = V.Point.__new__(V.Point)
    point.variables, point.sizes = variables, dict(sizes)
    point.env2d, point.env = {}, {}
    for name, v in variables.items():
        a = env2d[name]
        point.env2d[name] = a
        kind = LY.kind_of(v.shape)
        point.env[name] = float(a.reshape(-1)[0]) if kind == "scalar" else a.reshape(-1) if kind == "vector" else a
    return point


def reference(problem: IndexProblem, point, upstream=None):
    """The input's value at the point, from its parsed tree (Σ dY ∘ Y for backprop)."""
    with np.errstate(all="ignore"):
        y = problem.value(point.env, point.sizes)
    if upstream:
        return float(np.sum(np.asarray(point.env[upstream]) * y))
    return y


def _directional(problem, point, var, u, upstream, eps):
    def at(x):
        env = dict(point.env)
        env[var] = x
        q = V.Point.__new__(V.Point)
        q.variables, q.sizes, q.env, q.env2d = point.variables, point.sizes, env, point.env2d
        return np.asarray(reference(problem, q, upstream), dtype=float)
    x = np.asarray(point.env[var], dtype=float)
    return (at(x + eps * u) - at(x - eps * u)) / (2 * eps)


def _projected(J, u, var_ndim):
    J = np.asarray(J, dtype=float)
    return np.tensordot(J, u, axes=var_ndim) if var_ndim else J * u


def _guard(R, problem, variables, result: Result, layout, rng, upstream, directions: int = 4,
           batched=None):
    """Every candidate (the NumPy code, the closed form and its text parsed back) against
    directional central differences of the input itself, along random directions."""
    var = R.var
    sizes = choose_sizes(problem, variables)
    needs = problem.domains()
    checks = {"NumPy code": lambda p: V.eval_code(result.numpy, p)}
    if result.closed is not None and batched is None:
        from .evaluate import evaluate

        def closed_value(p):
            return np.reshape(evaluate(result.closed, p.env2d, p.sizes), tuple(N.size_value(d, p.sizes) for d in layout))
        checks["closed form"] = closed_value
        checks["closed form, parsed back,"] = _roundtrip(R, result.closed, layout)
    elif batched is not None:               # its tree and its text, with NumPy's batched meaning
        checks.update(batched.checks(variables, layout))
    what = f"d/d{var}"
    for attempt in range(12):          # 0, 1, 2, 0 as verify draws; then each variable its own way
        point = make_point(problem, variables, sizes, rng, attempt if attempt < 4 else None, needs)
        base = reference(problem, point, upstream)
        if not np.all(np.isfinite(base)):
            continue
        want_shape = tuple(N.size_value(d, sizes) for d in layout)
        xshape = np.shape(point.env[var])
        us = [rng.normal(size=xshape) for _ in range(directions)]
        with np.errstate(all="ignore"):
            wants = [_directional(problem, point, var, u, upstream, 1e-6) for u in us]
        if not all(np.all(np.isfinite(w)) for w in wants):
            continue
        degenerate = False
        for cname, fn in checks.items():
            try:
                with np.errstate(all="ignore"):
                    got = np.asarray(fn(point), dtype=float)
            except Exception as e:  # noqa: BLE001 - any failure of our own output is a guard failure
                raise VerificationError(f"indexcalc bug: the {cname} of {what} could not be evaluated "
                                        f"({type(e).__name__}: {e}); no answer is shown") from None
            if got.shape != want_shape:
                raise VerificationError(f"indexcalc bug: the {cname} of {what} has shape {got.shape} instead of "
                                        f"{want_shape}; no answer is shown")
            if not np.all(np.isfinite(got)):
                degenerate = True
                break
            for u, want in zip(us, wants):
                g = _projected(got, u, len(xshape))
                if not V.close(g, want):
                    h = 1e-3
                    want = (4 * _directional(problem, point, var, u, upstream, h / 2)
                            - _directional(problem, point, var, u, upstream, h)) / 3
                if not V.close(g, want):
                    raise VerificationError(f"indexcalc bug: the {cname} of {what} disagrees with finite "
                                            f"differences of the input along a random direction "
                                            f"({V._worst(g, want)}); no answer is shown")
        if degenerate:
            continue
        result.checked_sizes = dict(sizes)
        return
    raise IndexCalcError("cannot check the result numerically: the input is not finite at random points")


def evaluate_at(d: Derivation, values: dict) -> dict:
    """`--at` for index notation: the input's value (from its parsed tree) and each
    derivative's NumPy code at the given numbers."""
    from .pipeline import fit_sizes  # pipeline imports this module when it needs it
    missing = [n for n, _ in d.variables.items() if n not in values]
    if missing:
        raise IndexCalcError(f"--at gives no value for {', '.join(missing)}")
    point = V.Point.__new__(V.Point)
    point.variables, point.sizes, point.env, point.env2d = d.variables, {}, {}, {}
    for name, v in d.variables.items():
        a = np.asarray(values[name], dtype=float)
        want = LY.array_shape(v.shape)
        if a.ndim != len(want):
            raise IndexCalcError(f"--at: {name} needs {len(want)} axes ({LY.show_dims(v.shape)}), not {a.ndim}")
        fit_sizes(name, want, a.shape, point.sizes)
        point.env[name] = float(a) if a.ndim == 0 else a
        point.env2d[name] = a.reshape(-1, 1) if a.ndim == 1 else a.reshape(1, 1) if a.ndim == 0 else a
    for name, v in d.variables.items():                # computed sizes (d - k + 1) must fit too
        for dim, n in zip(LY.array_shape(v.shape), np.shape(point.env[name])):
            if isinstance(dim, N.LinSize) and dim.value(point.sizes) != n:
                raise IndexCalcError(f"--at: {name} must have size {dim} = {dim.value(point.sizes)} there, not {n}")
    value = reference(d.problem, point) if d.upstream is None else None
    tolist = lambda x: np.asarray(x).tolist()
    out = {"derivatives": {r.wrt: tolist(V.eval_code(r.numpy, point)) for r in d.results}}
    out["value"] = tolist(value) if value is not None else None
    return out
