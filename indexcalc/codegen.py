"""Problem file -> `modules_generated.py`: NumPy modules whose backward passes are the derived,
verified closed forms, printed by the project's NumPy printer, written through the jinja2
template `templates/modules_generated.py.j2`.

Per module problem: `backprop` derives every gradient (the guard checks each against finite
differences), `fold` rewrites it in terms of the module's cached output, the fold is checked
numerically, and the template gets one block of code per gradient.

A problem file is data from anyone: nothing it says reaches the generated source except
names checked by problems.python_name (class, constructor arguments), variables of the
equation (printed by py_name, the NumPy printer's own naming), dictionary keys as Python
string literals (repr), and text inside docstrings and comments escaped (`doc`, `comment`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import nodes as N
from . import verify as V
from .errors import IndexCalcError, VerificationError
from .fold import assumptions, check_fold, fold
from .printing.numpy_code import NumpyPrinter, py_name
from .problems import CODEGEN_RESERVED, Problem, load
from .printing.text import to_text
from .shapes import Variable, Variables, parse_decls

TEMPLATE = "modules_generated.py.j2"
HELPERS = {"softmax": "_softmax"}      # functions the template defines


@dataclass
class Gradient:
    target: str               # "return" (the input's gradient) or a grads key
    var: str
    closed_form: str
    code: str


@dataclass
class Module:
    cls: str
    problem: str
    equation: str
    input: str
    output: str
    target: str | None
    forward: str
    params: dict              # key in params/grads -> variable
    args: list                # the constructor's size arguments (in_features, out_features)
    init_code: dict           # key -> NumPy code that creates the parameter
    gradients: list
    locals_forward: list      # parameters the forward pass reads
    locals_backward: list     # cached values and parameters the backward pass reads
    cache: list               # what forward stores for backward
    # modules of index-notation problems (build_index_module): several inputs, constants
    # (ε) as constructor arguments, and the passes' shared temporaries (codeshare)
    inputs: list | None = None
    constants: dict | None = None
    forward_defs: list | None = None
    backward_defs: list | None = None
    init_dims: dict | None = None         # key -> the parameter's sizes as constructor arguments

    @property
    def uses_std(self) -> bool:
        return any("std" in code for code in self.init_code.values())

    @property
    def key_of(self) -> dict:
        return {var: key for key, var in self.params.items()}

    @property
    def ctor(self) -> str:
        """The constructor's parameters after self."""
        consts = [f"{py_name(k)}={v!r}" for k, v in (self.constants or {}).items()]
        layer = ["input_layer=False"] if self.params and (self.uses_std or not self.index_form) else []
        return ", ".join([*self.args, *layer, *consts])

    @property
    def fan_in(self) -> str:
        """The first normal-initialised parameter's fan-in: the product of its sizes after
        the first, as constructor arguments (in_features of a linear layer, in_channels ×
        kernel of a convolution)."""
        dims = next((d[1:] for key, d in (self.init_dims or {}).items() if "std" in self.init_code[key]), [])
        return " * ".join(map(str, dims)) if len(dims) == 1 else "(" + " * ".join(map(str, dims or [1])) + ")"

    @property
    def index_form(self) -> bool:
        return self.inputs is not None


# how a parameter starts: Kaiming-normal weights (1/in for the input layer), zero biases
INIT = {
    "normal": lambda shape: f"np.random.normal(0.0, std, size=({shape}))",
    "zeros": lambda shape: f"np.zeros(({shape}))",
    "ones": lambda shape: f"np.ones(({shape}))",
}


def build_module(problem: Problem) -> Module:
    from .from_index_notation import is_index_notation
    from .pipeline import backprop
    spec = problem.module
    cls, eq, where = spec["class"], problem.source, problem.where
    if not problem.is_equation:
        raise IndexCalcError(f"{cls}: a module problem needs an `equation` such as \"Y = X W^T + b\"")
    if is_index_notation(eq):
        return build_index_module(problem)
    if isinstance(spec["input"], list) or spec.get("constants"):
        raise IndexCalcError(f"{cls}: several inputs and `constants` are for equations in index notation; "
                             "this module's `input` is one variable")
    params = dict(spec.get("params", {}))
    inp, target = spec["input"], spec.get("target")
    d = backprop(eq, list(params.values()) + [inp], where)
    from .tensor_pipeline import is_tensor_derivation
    if is_tensor_derivation(d):         # the matrix language on tensors: index_pipeline's modules
        return build_index_module(problem, d)
    out = d.output
    if d.rhs.is_scalar and target is None:
        raise IndexCalcError(f"{cls}: a loss module needs `target` (the targets' variable)")
    roles = [inp, *params.values()]
    if len(set(roles)) != len(roles):
        raise IndexCalcError(f"{cls}: the input and the parameters must be different variables ({', '.join(roles)})")
    others = [n for n in d.variables.table if n not in (*roles, d.upstream)]
    if target is not None and target not in others:
        raise IndexCalcError(f"{cls}: `target` {target!r} is not one of the equation's other variables "
                             f"({', '.join(others) or 'there are none'})")
    loose = [n for n in others if n != target]
    if loose:
        raise IndexCalcError(f"{cls}: the equation's {', '.join(loose)} is neither the `input`, a parameter "
                             "(`params`) nor the `target`; the module would have no value for it")
    _check_names(cls, [out, *d.variables.table])
    variables = Variables({**d.variables.table, out: Variable(out, N.kind_of(d.rhs.shape), d.rhs.shape)},
                          d.variables.sizes, d.variables.functions)
    printer = NumpyPrinter(variables, helpers=HELPERS)
    assumed = assumptions(problem.assume, parse_decls(where))
    point = V.sample(d.tree, d.variables, np.random.default_rng(7))
    key_of = {var: key for key, var in params.items()}
    gradients = []
    for r in d.results:
        if r.closed is None:
            raise IndexCalcError(f"{cls}: ∂L/∂{r.wrt} has no closed form to generate code from")
        folded = fold(r.closed, d.rhs, out, assumed)
        check_fold(folded, r.closed, d.rhs, out, point, assumed)
        gradients.append(Gradient(key_of.get(r.wrt, "return"), r.wrt, to_text(folded),
                                  printer.code(folded, variables[r.wrt].kind)))
    forward = printer.code(d.rhs, N.kind_of(d.rhs.shape))
    backward = " ".join(g.code for g in gradients)
    locals_backward = [n for n in [inp, out, *params.values()] if _uses(backward, py_name(n))]
    return Module(cls, problem.id, eq, inp, out, target, forward, params,
                  list(spec.get("sizes", {}).values()), _init_code(cls, spec, params, variables), gradients,
                  [n for n in params.values() if _uses(forward, py_name(n))], locals_backward,
                  [n for n in (inp, out) if n in locals_backward])


def build_index_module(problem: Problem, d=None) -> Module:
    """A module of an entry equation in index notation (SPEC §1.3): the forward pass is the
    right side's NumPy code (index_pipeline.forward_code), each gradient the verified code of
    `backprop`, the two passes sharing every common value (codeshare)."""
    from . import index_pipeline as IP
    spec = problem.module
    cls, eq, where = spec["class"], problem.source, problem.where
    inputs = spec["input"] if isinstance(spec["input"], list) else [spec["input"]]
    params = dict(spec.get("params", {}))
    constants = dict(spec.get("constants", {}))
    if spec.get("target") is not None:
        raise IndexCalcError(f"{cls}: a loss module (`target`) in index notation is not supported yet; "
                             "write the loss in the matrix language")
    roles = [*inputs, *params.values(), *constants]
    if len(set(roles)) != len(roles):
        raise IndexCalcError(f"{cls}: the inputs, parameters and constants must be different variables "
                             f"({', '.join(roles)})")
    if d is None:                              # (a derivation of tensor input comes derived)
        d = IP.backprop(eq, [*params.values(), *inputs], where)
    prob, out = d.problem, d.output
    if not prob.out_indices:
        raise IndexCalcError(f"{cls}: a module's output needs indices (Y[i,j] = ...), not a scalar")
    for name in constants:
        if name not in prob.variables.table:
            raise IndexCalcError(f"{cls}: `constants` names {name}, which is not in the equation")
        if prob.variables[name].kind != "scalar":
            raise IndexCalcError(f"{cls}: the constant {name} must be declared a scalar (`{name}: scalar`)")
    loose = [n for n in prob.variables.table if n not in roles]
    if loose:
        raise IndexCalcError(f"{cls}: the equation's {', '.join(loose)} is neither an `input`, a parameter "
                             "(`params`) nor one of the `constants`; the module would have no value for it")
    _check_names(cls, [out, *d.variables.table])
    shared = index_passes(d)
    key_of = {var: key for key, var in params.items()}
    gradients = [Gradient(key_of.get(r.wrt, "return"), r.wrt, r.closed_form or r.index_form,
                          shared.grads[py_name(r.wrt)]) for r in d.results]
    dims: dict = {}
    variables = Variables({**d.variables.table}, d.variables.sizes, d.variables.functions)
    fwd_text = " ".join([c for _, c in shared.forward] + [shared.output])
    bwd_text = " ".join([c for _, c in shared.backward] + list(shared.grads.values()))
    return Module(cls, problem.id, eq, inputs[0], out, None, shared.output, params,
                  list(spec.get("sizes", {}).values()), _init_code(cls, spec, params, variables, True, dims), gradients,
                  [n for n in params.values() if _uses(fwd_text, py_name(n))],
                  [n for n in [*inputs, *params.values(), *constants] if _uses(bwd_text, py_name(n))],
                  [n for n in inputs if _uses(bwd_text, py_name(n))] +
                  ([out] if _uses(bwd_text, py_name(out)) else []) + shared.saved,
                  inputs=inputs, constants={c: v for c, v in constants.items()},
                  forward_defs=shared.forward, backward_defs=shared.backward, init_dims=dims)


def index_passes(d):
    """The forward and backward passes (codeshare.Shared) of an index-notation backprop
    derivation: the right side's code and each gradient's verified code, sharing values."""
    from . import codeshare
    from . import index_pipeline as IP
    prob, out = d.problem, d.output
    forward = IP.forward_code(prob)
    grads = {r.wrt: r.numpy for r in d.results}
    sizes = IP.choose_sizes(prob, d.variables)
    needs = prob.domains()
    points = []
    for k in range(3):                         # different sizes: `X.shape[0]` is not `F.shape[1]`
        at = {n: v + k for n, v in sizes.items()}
        pt = IP.make_point(prob, d.variables, at, np.random.default_rng(11 + k), 0, needs)
        points.append({**pt.namespace(), "_einsum": codeshare.einsum_cached()})
    arrays = {py_name(n) for n, v in d.variables.items() if v.kind != "scalar"}
    return codeshare.share(py_name(out), forward, {py_name(w): c for w, c in grads.items()}, points, arrays)


def _check_names(cls, names) -> None:
    """Every variable becomes a local of the generated methods under its py_name: it must be
    an identifier that Python does not normalise into another one, and not one the methods use."""
    import unicodedata
    seen = {}
    for name in names:
        py = py_name(name)
        if (not py.isidentifier() or unicodedata.normalize("NFKC", py) != py or py.startswith("_")
                or py in CODEGEN_RESERVED - {"x", "y", "dout"}):
            raise IndexCalcError(f"{cls}: the variable {name!r} cannot be a name in the generated code; rename it")
        if seen.setdefault(py, name) != name:
            raise IndexCalcError(f"{cls}: the variables {seen[py]!r} and {name!r} have the same name in Python")


def _init_code(cls, spec, params, variables, fan_in=False, dims_out=None) -> dict:
    """Each parameter's creation, its sizes named by the constructor's arguments (`sizes`).
    fan_in: the standard deviation of `normal` comes from the weight's fan-in (Module.fan_in),
    not from an `in_features` argument. dims_out (a dict) gets each parameter's sizes."""
    sizes, init = spec.get("sizes", {}), spec.get("init", {})
    known = set(variables.sizes)
    stray = [s for s in sizes if s not in known]
    if stray:
        raise IndexCalcError(f"{cls}: `sizes` names {', '.join(stray)}, which the declared shapes do not have "
                             f"(they have {', '.join(sorted(known)) or 'none'})")
    stray = [k for k in init if k not in params]
    if stray:
        raise IndexCalcError(f"{cls}: `init` names {', '.join(stray)}, which is not a key of `params`")
    out = {}
    for key, var in params.items():
        shape = variables[var].array_shape
        dims = [d if isinstance(d, int) else sizes.get(d) for d in shape]
        if None in dims:
            raise IndexCalcError(f"{cls}: give every size of {var} a constructor argument in "
                                 f"`sizes` (the shape is {shape})")
        how = init.get(key, "zeros")
        if how not in INIT:
            raise IndexCalcError(f"{cls}: unknown init {how!r} (known: {', '.join(INIT)})")
        out[key] = INIT[how](", ".join(map(str, dims)))
        if dims_out is not None:
            dims_out[key] = dims
    if any(init.get(k) == "normal" for k in params) and "in_features" not in sizes.values() and not fan_in:
        raise IndexCalcError(f"{cls}: `init = normal` scales by the fan-in: name it `in_features` in `sizes`")
    return out


def _uses(code: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", code) is not None


def doc(text) -> str:
    """Text inside a triple-quoted docstring: backslashes, quotes and anything unprintable
    escaped, so that it can neither end the string nor the line."""
    out = []
    for ch in str(text):
        if ch in '\\"':
            out.append("\\" + ch)
        elif not ch.isprintable():
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def comment(text) -> str:
    """Text in a # comment: one line."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def template_dir(name: str = TEMPLATE) -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "templates", here / "templates"):
        if (candidate / name).exists():
            return candidate
    raise IndexCalcError(f"cannot find the template {name} (looked in {here.parent / 'templates'})")


def is_problem_file(text: str) -> bool:
    """codegen's argument: a problem file (a .toml path, or an existing file that is no
    equation), else an equation."""
    import os
    if text.strip().endswith(".toml"):
        return True
    if "=" in text:
        return False
    if os.path.isfile(text):
        return True
    raise IndexCalcError(f"codegen takes a problem file (.toml) or an equation such as "
                         f"\"Y = tanh(X W + b)\"; {text!r} is neither")


def generate(path, target: str = "numpy") -> str:
    if target != "numpy":
        return _generate_for(path, target)
    import jinja2
    modules = [build_module(p) for p in load(path).problems if p.module is not None]
    if not modules:
        raise IndexCalcError(f"{path} has no problem with a [problem.module] table")
    classes = [m.cls for m in modules]
    twice = sorted({c for c in classes if classes.count(c) > 1})
    if twice:
        raise IndexCalcError(f"{path}: two modules are named {', '.join(twice)}; the second would replace the first")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())),
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    from .codeshare import EINSUM_SOURCE
    env.filters.update(py=py_name, doc=doc, comment=comment, literal=json.dumps, dvar=lambda v: py_name("d" + v))
    code = env.get_template(TEMPLATE).render(modules=modules, source=Path(path).name,
                                             einsum_source=EINSUM_SOURCE.rstrip("\n"))
    return compiled(code.rstrip("\n") + "\n")


def compiled(code: str) -> str:
    """The generated source, once Python has compiled it: a file that would not even import is
    our bug (exit 3), never a file written for the user."""
    try:
        compile(code, "<generated module>", "exec")
    except SyntaxError as e:
        raise VerificationError(f"the generated module does not compile (line {e.lineno}: {e.msg}); "
                                f"this is an indexcalc bug, nothing was written") from None
    return code


def _generate_for(path, target: str) -> str:
    """The module problems of a problem file as torch or JAX modules (modulegen), parameters
    and input as the file's [problem.module] tables name them."""
    from . import modulegen
    modules = []
    for p in load(path).problems:
        if p.module is None:
            continue
        if not p.is_equation:
            raise IndexCalcError(f"{p.module['class']}: a module problem needs an `equation`")
        params = list(p.module.get("params", {}).values())
        inputs = p.module["input"] if isinstance(p.module["input"], list) else [p.module["input"]]
        wrt = params + inputs
        modules.append(modulegen.build(p.source, wrt, p.where, target, ",".join(params),
                                       p.module["class"]))
    if not modules:
        raise IndexCalcError(f"{path} has no problem with a [problem.module] table")
    return modulegen.render(modules, target, f"indexcalc codegen {Path(path).name} --target {target}")
