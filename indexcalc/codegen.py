"""Problem file -> `modules_generated.py`: NumPy modules whose backward passes are the derived,
verified closed forms, printed by the project's NumPy printer, written through the jinja2
template `templates/modules_generated.py.j2`.

Per module problem: `backprop` derives every gradient (the guard checks each against finite
differences), `fold` rewrites it in terms of the module's cached output, the fold is checked
numerically, and the template gets one block of code per gradient.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import nodes as N
from . import verify as V
from .errors import IndexCalcError
from .fold import check_fold, fold
from .parse import parse
from .printing.numpy_code import NumpyPrinter
from .printing.text import to_text
from .shapes import Variable, Variables, infer, parse_decls

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
    params: dict              # key -> variable
    param_shapes: dict        # key -> (rows expr, cols expr) in constructor arguments
    init: dict
    sizes: dict               # size name -> constructor argument
    gradients: list = field(default_factory=list)
    locals_forward: list = field(default_factory=list)
    locals_backward: list = field(default_factory=list)
    cache: list = field(default_factory=list)
    init_code: dict = field(default_factory=dict)
    uses_std: bool = False
    key_of: dict = field(default_factory=dict)


# how a parameter starts: Kaiming-normal weights (1/in for the input layer), zero biases
INIT = {
    "normal": lambda shape: f"np.random.normal(0.0, std, size=({shape}))",
    "zeros": lambda shape: f"np.zeros(({shape}))",
}


def load(path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise IndexCalcError(f"no problem file {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise IndexCalcError(f"{path} is not valid TOML: {e}") from None


def assumptions(texts, decls):
    """`T 1 = 1` -> [(typed T 1, typed 1)]."""
    out = []
    for text in texts or ():
        if text.count("=") != 1:
            raise IndexCalcError(f"an assumption is an equation such as `T 1 = 1`, not {text!r}")
        lhs_text, rhs_text = text.split("=", 1)
        try:
            lhs, _ = infer(parse(lhs_text), decls)
            value, _ = infer(parse(rhs_text), decls, expect=lhs.shape)
        except IndexCalcError as e:
            raise IndexCalcError(f"the assumption {text.strip()!r}: {e}") from None
        out.append((lhs, value))
    return out


def build_module(problem: dict) -> Module:
    from .pipeline import backprop
    spec = problem["module"]
    eq, where = problem["equation"], problem.get("where")
    decls = parse_decls(where)
    params = dict(spec.get("params", {}))
    inp, target = spec["input"], spec.get("target")
    wrt = list(params.values()) + [inp]
    d = backprop(eq, ",".join(wrt), where)
    out = d.output
    if d.rhs.is_scalar and target is None:
        raise IndexCalcError(f"{spec['class']}: a loss module needs `target` (the targets' variable)")
    variables = Variables(dict(d.variables.table), d.variables.sizes)
    variables.table[out] = Variable(out, N.kind_of(d.rhs.shape), d.rhs.shape)
    printer = NumpyPrinter(variables, helpers=HELPERS)
    assumed = assumptions(problem.get("assume"), decls)
    point = V.sample(d.tree, d.variables, np.random.default_rng(7))
    forward = printer.code(d.rhs, N.kind_of(d.rhs.shape))
    m = Module(spec["class"], problem["id"], eq, inp, out, target, forward, params, {},
               dict(spec.get("init", {})), dict(spec.get("sizes", {})))
    key_of = {v: k for k, v in params.items()}
    for r in d.results:
        if r.closed is None:
            raise IndexCalcError(f"{spec['class']}: ∂L/∂{r.wrt} has no closed form to generate code from")
        folded = fold(r.closed, d.rhs, out, assumed)
        check_fold(folded, r.closed, d.rhs, out, point, assumed)
        kind = variables[r.wrt].kind
        m.gradients.append(Gradient(key_of.get(r.wrt, "return"), r.wrt, to_text(folded),
                                    printer.code(folded, kind)))
    m.key_of = key_of
    for key, var in params.items():
        shape = variables[var].array_shape
        dims = tuple(d if isinstance(d, int) else m.sizes.get(d) for d in shape)
        if None in dims:
            raise IndexCalcError(f"{spec['class']}: give every size of {var} a constructor argument in "
                                 f"`sizes` (the shape is {shape})")
        m.param_shapes[key] = dims
        how = m.init.get(key, "zeros")
        if how not in INIT:
            raise IndexCalcError(f"{spec['class']}: unknown init {how!r} (known: {', '.join(INIT)})")
        m.init_code[key] = INIT[how](", ".join(map(str, dims)))
        m.uses_std |= how == "normal"
    names = [inp] + ([target] if target else []) + list(params.values())
    m.locals_forward = [n for n in names if _uses(m.forward, n)]
    codes = " ".join(g.code for g in m.gradients)
    m.locals_backward = [n for n in [inp, out] + ([target] if target else []) + list(params.values())
                         if _uses(codes, n)]
    m.cache = [n for n in (inp, out) if n in m.locals_backward]
    return m


def _uses(code: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", code) is not None


def template_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "templates", here / "templates"):
        if (candidate / TEMPLATE).exists():
            return candidate
    raise IndexCalcError(f"cannot find the template {TEMPLATE} (looked in {here.parent / 'templates'})")


def generate(path) -> str:
    import jinja2
    data = load(path)
    modules = [build_module(p) for p in data.get("problem", []) if "module" in p]
    if not modules:
        raise IndexCalcError(f"{path} has no problem with a [problem.module] table")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())),
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    code = env.get_template(TEMPLATE).render(modules=modules, source=Path(path).name)
    return code.rstrip("\n") + "\n"
