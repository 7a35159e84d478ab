"""`check`: is a claimed derivative right? The claim is compared with the derivative, which
the numerical guard has already verified, exactly in floating point: both evaluated at
several random points, with sizes that differ between points and between dimensions and
values of both signs, and they must agree to 1e-9 of the magnitude of their terms (see
magnitude.py: right answers written differently agree to rounding; a claim off by 1e-5, of
the wrong sign at 1e-6 scale, or right only for n = 3 or for positive x, does not). A wrong
claim gets the counterexample.

`references()` derives once and draws the points (a `Reference` per variable); `compare()`
(or `Reference.check`) checks one claim against it, so `grade` checks a class against one
derivation; `check()` is one claim, the command's entry point.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import numpy as np

from . import nodes as N
from . import verify as V
from .pipeline import backprop, derive
from .errors import IndexCalcError, ShapeError
from .evaluate import evaluate
from .from_index_notation import is_equation, is_index_notation
from .index_syntax import defined_text
from .from_index_notation import read as read_index
from .magnitude import magnitude
from .parse import parse
from .printing.text import to_text
from .shapes import infer, show_shape

TOL = 1e-9              # of the terms' magnitude: rounding is about 1e-16 of it
POINTS = 4              # each with its own sizes
SPREADS = (1.0, 2.5, 1.0, 0.5)     # how far the values range at each point
WIDE = 10.0             # one more point this wide where the expression has a kink (relu, abs, step)
_ERRORS = (np.linalg.LinAlgError, ValueError, ZeroDivisionError, OverflowError, FloatingPointError)


@dataclass
class Verdict:
    input: str
    wrt: str
    answer: str
    correct: bool
    reason: str
    expected: str | None
    counterexample: dict | None
    claimed: N.Node | None = None      # the claim as read (typed), for printing

    def __str__(self):
        return f"{'RIGHT' if self.correct else 'WRONG'}: {self.reason}"

    def _repr_html_(self):
        """Jupyter: the verdict in colour, the claim and the right answer."""
        import html
        colour, word = ("#1a7f37", "right") if self.correct else ("#cf222e", "wrong")
        rows = [("claim", self.answer), ("by", self.wrt), ("expected", self.expected or ""),
                ("why", self.reason)]
        body = "".join(f"<tr><th style='text-align:left'>{k}</th><td><code>{html.escape(str(v))}</code></td></tr>"
                       for k, v in rows)
        return (f"<div><b style='color:{colour}'>{word}</b>: ∂({html.escape(self.input)})/∂{html.escape(self.wrt)}"
                f"<table>{body}</table></div>")

    def json(self) -> dict:
        return {"command": "check", "input": self.input, "wrt": self.wrt, "answer": self.answer,
                "correct": self.correct, "reason": self.reason, "expected": self.expected,
                "counterexample": self.counterexample}


@dataclass
class Reference:
    """What a claim about one derivative is compared against, derived once: the derivation,
    the expected closed form, the random points, and the derivative's value and the
    magnitude of its terms at each (`grade` checks a whole class against one)."""
    input: str
    wrt: str
    derivation: object
    expected: str
    decls: dict
    layout: tuple
    points: list                       # V.Point, drawn once
    wide: set = field(default_factory=set, repr=False)         # k of the points drawn WIDE
    _want: dict = field(default_factory=dict, repr=False)      # k -> the derivative there
    _terms: dict = field(default_factory=dict, repr=False)     # k -> the magnitude of its terms

    def want(self, k: int, refined: bool = False):
        return self._want[k]

    def terms(self, k: int):
        return self._terms[k]

    def check(self, answer: str) -> Verdict:
        return compare(self, answer)

    @classmethod
    def of(cls, d, result, seed: int = 1, assumed=()) -> "Reference":
        """The reference for one result of an existing derivation (its points drawn here).
        `assumed` (fold.assumptions: a problem's `T 1 = 1`): every point satisfies it, so a
        claim is compared with the derivative where the problem says it is asked for."""
        decls = d.variables.decls()
        expected = result.closed_form or result.index_form
        if assumed:
            given = ", ".join(f"{to_text(a)} = {to_text(b)}" for a, b in assumed)
            expected = f"{_folded_text(d, result, assumed) or expected} (when {given})"
        ref = cls(d.input, result.wrt, d, expected, decls, tuple(result.shape), [])
        _draw_points(ref, result, np.random.default_rng(seed), assumed)
        return ref


def _folded_text(d, result, assumed) -> str | None:
    """The closed form under the assumptions (fold.folded_forms, checked there), as text."""
    from .fold import folded_forms
    try:
        f = folded_forms(d, assumed).get(result.wrt)
    except IndexCalcError:
        return None
    return to_text(f) if f is not None and not N.contains(f, d.output or "") else None


def _draw_points(ref: Reference, result, rng, assumed=()):
    """POINTS points, each with its own sizes (distinct per size name), values of both signs
    where the domain allows, and the derivative finite there; the assumptions hold at each."""
    from .fold import satisfy
    d, seen = ref.derivation, []
    for k in range(POINTS):
        sizes = V.draw_sizes(d.variables, d.tree, rng, avoid=seen)
        seen.append(sizes)
        found = {}

        def finite(point):
            if assumed:
                env2d = dict(point.env2d)
                for lhs, _ in assumed:
                    satisfy(env2d, lhs)
                point = point.at(env2d)
            with np.errstate(all="ignore"):
                try:
                    want, terms = _expected(result, ref.layout, point)
                except _ERRORS:
                    return False
            ok = bool(np.all(np.isfinite(want)) and np.all(np.isfinite(terms)))
            if ok:
                found["at"], found["point"] = (want, terms), point
            return ok
        point = V.sample(d.tree, d.variables, rng, check=finite, sizes=sizes, spread=SPREADS[k % len(SPREADS)])
        if "at" not in found:            # sample's fallback: a finite but very large point
            finite(point)
        ref.points.append(found.get("point", point))
        ref._want[k], ref._terms[k] = found.get("at", (None, None))
        if ref._want[k] is None:
            raise IndexCalcError("cannot check the claim numerically: the derivative is not finite at "
                                 "random points")
    if _has_kink(d.tree):
        # at points of spread ≤ 2.5, relu(X W + 20) is X W + 20 everywhere and the claim X^T dY
        # agreed: one wide point crosses the kink (dropped where the derivative is not finite)
        k = len(ref.points)
        found.clear()
        sizes = V.draw_sizes(d.variables, d.tree, rng, avoid=seen)
        V.sample(d.tree, d.variables, rng, check=finite, sizes=sizes, spread=WIDE)
        if "at" in found:
            ref.points.append(found["point"])
            ref._want[k], ref._terms[k] = found["at"]
            ref.wide.add(k)


def _has_kink(tree) -> bool:
    from . import functions as F
    return isinstance(tree, N.Node) and any(isinstance(n, N.Func) and n.name in F.PIECEWISE for n in tree.walk())


def _expected(result, layout, point):
    """The derivative at the point (NumPy layout) and the magnitude of its terms: from the
    closed form's tree, else from the verified NumPy code (the terms measured by moving)."""
    shape = tuple(N.size_value(d_, point.sizes) for d_ in layout)
    closed = result.closed if result.order == 1 else None
    if closed is not None:
        want = evaluate(closed, point.env2d, point.sizes)
        terms = magnitude(closed, point.env2d, point.sizes)
        return np.reshape(want, shape), np.reshape(terms, shape)
    want = np.reshape(V.eval_code(result.numpy, point), shape)
    return want, _code_terms(result.numpy, point, want)


def _code_terms(code, point, want):
    """The size of the terms of generated code at a point: every variable moved by a relative
    ±1e-6, the change per unit of it (verify.terms_by_moving), in the point's own layout."""
    def at(env):
        q = copy.copy(point)
        q.env = env
        return np.reshape(V.eval_code(code, q), np.shape(want))
    return V.terms_by_moving(at, point.env, want)


def references(expr: str, wrts, where: str | None = None, seed: int = 1, order: int = 1,
               mode: str | None = None, assume=()) -> dict:
    """{variable: Reference} for each of `wrts`, from one derivation of `expr`. `mode` is a
    problem's (derive, jacobian or backprop); by default an equation is a backprop. `assume`:
    a problem's assumptions (`T 1 = 1`), which every point of the comparison satisfies."""
    from .fold import assumptions
    from .parse import ident
    from .shapes import parse_decls
    names = [ident(w.strip()) for w in (wrts.split(",") if isinstance(wrts, str) else wrts)]
    expr = defined_text(expr)                   # f(x) = x^T A x: the expression f stands for
    if is_index_notation(expr):
        if assume:
            raise IndexCalcError("an assumption (`assume`) is not supported with index notation yet")
        return _index_references(expr, names, where, seed, mode, order)
    assumed = assumptions(assume, parse_decls(where)) if assume else ()
    mode = mode or ("backprop" if isinstance(parse(expr), N.Equation) else "derive")
    if mode == "backprop":
        d = backprop(expr, names, where)
    else:
        d = derive(expr, names, where, order=order, jacobian=mode == "jacobian")
    if getattr(d, "problem", None) is not None:        # tensors (SPEC §1.2): index_pipeline's points
        if assumed:
            raise IndexCalcError("an assumption (`assume`) is not supported with tensors yet")
        return _problem_references(expr, d, seed)
    return {r.wrt: Reference.of(d, r, seed, assumed) for r in d.results}


def _index_references(expr, names, where, seed, mode, order=1) -> dict:
    """References for index-notation input: the points of its own guard, and the guarded
    result's values there (the guard compared them with the input evaluated directly)."""
    from . import index_pipeline as IP
    equation = is_equation(expr)
    d = IP.backprop(expr, names, where) if equation and mode != "jacobian" and mode != "derive" \
        else IP.derive(expr, names, where, order=order)
    return _problem_references(expr, d, seed)


def _problem_references(expr, d, seed) -> dict:
    """References for a derivation by index_pipeline (index notation, or the matrix language on
    tensors): the points of its own guard, and the guarded result's values there."""
    from . import index_pipeline as IP
    problem = d.problem
    decls = d.variables.decls()
    out = {}
    for r in d.results:
        rng = np.random.default_rng(seed)
        sizes = IP.choose_sizes(problem, d.variables)
        points = [IP.make_point(problem, d.variables, at, rng, 0, problem.domains())
                  for at in _other_sizes(problem, sizes, 3)]
        if d.output and d.output not in decls:     # a claim may use the output (y ∘ (dy - dy^T y))
            decls[d.output] = problem.out_shape
            for p in points:
                _bind_output(p, d.output, IP.reference(problem, p))
        ref = Reference(expr, r.wrt, d, r.closed_form or r.index_form, decls, tuple(r.shape), points)
        for k, p in enumerate(points):
            with np.errstate(all="ignore"):
                ref._want[k] = V.eval_code(r.numpy, p)
                ref._terms[k] = _code_terms(r.numpy, p, ref._want[k])
        out[r.wrt] = ref
    return out


def _other_sizes(problem, sizes: dict, n: int) -> list:
    """n sets of sizes, each size name one larger than in the last (still distinct), so that a
    claim right only at one size (a size written as its number) is found; the guard's own
    sizes again where a computed range (d - k + 1) would fall below 2."""
    derived = [r for r in problem.ranges.values() if isinstance(r, N.LinSize)]
    out = []
    for k in range(n):
        at = {name: v + k for name, v in sizes.items()}
        out.append(at if all(r.value(at) >= 2 for r in derived) else dict(sizes))
    return out


def _bind_output(point, name, value):
    """The output's value at the point (the input evaluated directly), in both layouts."""
    value = np.asarray(value, dtype=float)
    point.env[name] = float(value) if value.ndim == 0 else value
    point.env2d[name] = value.reshape(1, 1) if value.ndim == 0 else value.reshape(-1, 1) if value.ndim == 1 else value


def reference(expr: str, wrt: str, where: str | None = None, seed: int = 1, assume=(), mode=None) -> Reference:
    from .parse import ident
    names = [ident(w.strip()) for w in wrt.split(",") if w.strip()] if isinstance(wrt, str) else list(wrt)
    if len(names) != 1:
        raise IndexCalcError(f"check takes one variable in --wrt (a claim is one derivative), not {wrt!r}")
    return references(expr, names, where, seed, mode=mode, assume=assume)[names[0]]


def check(expr: str, wrt: str, answer: str, where: str | None = None, seed: int = 1, assume=(),
          mode=None) -> Verdict:
    ref = reference(expr, wrt, where, seed, assume, mode)
    verdict = compare(ref, answer)
    if verdict.correct or assume:
        return verdict
    rows = _right_if_rows_sum_to_one(expr, ref, answer, where, seed, mode)
    if rows:
        verdict.reason += (f"; the claim is right when the rows of {rows} sum to one (one-hot or probability "
                           f"targets): check it with --assume \"{rows} 1 = 1\" (in a problem file, assume = [\"{rows} 1 = 1\"])")
    return verdict


def _right_if_rows_sum_to_one(expr, ref, answer, where, seed, mode) -> str | None:
    """The matrix T whose rows summing to one makes a wrong claim right, or None: the textbook
    gradient of softmax cross-entropy, (softmax(Z) - T) / S, assumes one-hot targets that the
    expression does not say (its derivative is (diag(T 1) softmax(Z) - T) / S)."""
    table = getattr(ref.derivation, "variables", None)
    names = [n for n, v in getattr(table, "items", lambda: [])() if v.kind == "matrix" and n != ref.wrt]
    for name in names:
        try:
            if compare(reference(expr, ref.wrt, where, seed, (f"{name} 1 = 1",), mode), answer).correct:
                return name
        except IndexCalcError:
            continue
    return None


def claim_of(ref: Reference, answer: str) -> N.Node:
    """The claim, read and typed; an error for names or sizes the expression does not have."""
    claimed = _typed_claim(_with_output(parse(answer), ref), ref.decls, _as2(ref.layout))
    unknown = sorted({n.name for n in claimed.walk() if isinstance(n, N.Sym)} - set(ref.decls))
    if unknown:
        raise IndexCalcError(f"the claimed answer uses {', '.join(unknown)}, which "
                             f"{'does' if len(unknown) == 1 else 'do'} not appear in {ref.input!r}")
    strange = _functions_not_in(claimed, ref)
    if strange:
        said = ", ".join(f"{f}(·)" for f in strange)
        hint = "; for the standard normal density write normpdf(x) (and normcdf(x), or Φ(x), for its cdf)" \
            if _DENSITY_NAMES & set(strange) else ""
        raise IndexCalcError(f"the claimed answer uses {said}, a generic function that does not appear in "
                             f"{ref.input!r} (a one-letter function name, or one declared `name: function`, "
                             f"stands for any function, so no derivative of {ref.input!r} can contain it)"
                             f"{hint}")
    loose = sorted({x for n in claimed.walk() for x in (n.shape or ()) if isinstance(x, str)}
                   - set(ref.derivation.variables.sizes))
    if loose:
        raise IndexCalcError(f"the claimed answer has a size ({', '.join(loose)}) that nothing in "
                             f"{ref.input!r} fixes (an identity or ones vector of any size?)")
    return claimed


_DENSITY_NAMES = {"φ", "phi", "ϕ", "varphi"}


def _functions_not_in(claimed: N.Node, ref: Reference) -> list:
    """The generic functions of a claim (φ(X), h'(X)) whose base is not a function of the
    expression: the claim cannot be a derivative of it (φ of the GELU's derivative, meant as
    the normal density, is a generic function by SPEC §1, and was compared as a test function)."""
    import re
    from . import functions as F
    tree = getattr(ref.derivation, "tree", None)
    used = {n.name.rstrip("'") for n in tree.walk() if isinstance(n, (N.Func, N.Call))} \
        if isinstance(tree, N.Node) else set()
    used |= set(getattr(ref.derivation.variables, "functions", ()))

    def in_input(f):
        return f in used or re.search(rf"(?<![\w\\]){re.escape(f)}\s*[\[(]", ref.input) is not None
    return sorted({n.name.rstrip("'") for n in claimed.walk()
                   if isinstance(n, N.Func) and F.is_generic(n.name) and not in_input(n.name.rstrip("'"))})


_BRACED = r"(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*"
_DERIVATIVE_LHS = re.compile(
    rf"^\s*(?:\\[dt]?frac\s*\{{\s*(?:\\partial|∂|d)\s*{_BRACED}\}}\s*\{{\s*(?:\\partial|∂|d)\s*(?P<v1>{_BRACED})\}}"
    rf"|(?:\\partial|∂|d)\s*[^/=]+?/\s*(?:\\partial|∂|d)\s*(?P<v2>[^=]+?)"
    rf"|(?:\\nabla|∇)\s*_\s*(?P<v3>\{{{_BRACED}\}}|[^\s{{]+)\s*[^=]*?)\s*(?<![<>!=])=(?!=)")


def claim_body(answer: str, wrt: str) -> str:
    """A claim written with the derivative it states on the left, as students and papers write
    it: ∂L/∂W = dY^T X, \\frac{\\partial L}{\\partial W} = ..., dL/dW = ..., \\nabla_W L = ... is its
    right side; ∂L/∂W_{jp} = Σ_i dY_ij X_ip the entry equation G_{jp} = ... (they were parse
    errors). A left side by another variable than --wrt is refused."""
    m = _DERIVATIVE_LHS.match(answer)
    if not m:
        return answer
    from .latex_input import from_latex, spelled_as
    var = (m.group("v1") or m.group("v2") or m.group("v3")).strip()
    var = from_latex(var[1:-1] if var.startswith("{") and var.endswith("}") else var).strip()
    v = re.fullmatch(r"([^\W\d]\w*?)(?:_\{?([A-Za-z](?:,?[A-Za-z])*)\}?|\[([^\[\]]+)\])?", var)
    if v is None:
        raise IndexCalcError(f"cannot read the derivative {m.group(0).rstrip('= ')!r} on the claim's left side: "
                             "write the claim itself (dY^T X) or G_ij = ... in index notation")
    name = spelled_as(v.group(1), [wrt])
    if name != wrt:
        raise IndexCalcError(f"the claim's left side is the derivative by {v.group(1)}, but --wrt asks for {wrt}")
    rhs = answer[m.end():]
    taken = set(re.findall(r"\w+", answer))
    out = next(g for g in ("G", "Grad", "DW", "Gout") if g not in taken)
    if v.group(2):
        return f"{out}_{{{v.group(2)}}} = {rhs}"
    if v.group(3):
        return f"{out}[{v.group(3)}] = {rhs}"
    return rhs


_LOSS = r"(?:L|\\mathcal\s*\{\s*L\s*\}|\\mathcal\s+L|\\ell(?![A-Za-z])|ℓ)"
_D = r"(?:\\partial(?![A-Za-z])|∂|d)"


def upstream_spelled(answer: str, ref) -> str:
    """A module's claim with the upstream gradient written as the seeds and students write it,
    ∂L/∂Y, dL/dY, \\frac{\\partial L}{\\partial \\mathbf{Y}}, \\nabla_Y L (an entry:
    \\frac{\\partial L}{\\partial Y_{ij}}), spelled dY (they were unreadable: `∂` is no
    character of the language). Only for the equation's own output, and only where L is no
    variable of it."""
    d = ref.derivation
    out, up = getattr(d, "output", None), getattr(d, "upstream", None)
    if not out or not up or "L" in ref.decls or not re.search(r"∂|∇|\\partial|\\nabla|d\s*" + _LOSS, answer):
        return answer
    y = re.escape(out)
    name = (rf"(?:\\(?:mathbf|mathbit|boldsymbol|bm|mathrm)\s*\{{\s*{y}\s*\}}|\{{\s*{y}\s*\}}"
            rf"|{y}(?![A-Za-z0-9]))")
    sub = r"(?P<sub>_\{[^{}]*\}|_[A-Za-z0-9]+|\[[^\[\]]*\])?"
    forms = [rf"\\[dt]?frac\s*\{{\s*{_D}\s*{_LOSS}\s*\}}\s*\{{\s*{_D}\s*{name}\s*{sub}\s*\}}",
             rf"(?<![\w\\]){_D}\s*{_LOSS}\s*/\s*{_D}\s*{name}{sub}",
             rf"(?:\\nabla(?![A-Za-z])|∇)\s*_\s*(?:\{{\s*{name}\s*\}}|{name})\s*{_LOSS}(?![A-Za-z0-9])(?P<sub>)"]
    spelled = answer
    for form in forms:
        spelled = re.sub(form, lambda m: f" {up}{m.group('sub') or ''} ", spelled)
    return answer if spelled == answer else " ".join(spelled.split())


_ENTRY_SUB = re.compile(r"\s*_\s*(?:\{\s*([A-Za-z])\s*,?\s*([A-Za-z])?\s*\}|([A-Za-z])([A-Za-z])?(?![\w{]))")
_CLOSE = {"[": "]", "(": ")"}


def _entry_groups(text: str) -> list | None:
    """[(start, end, the bracket's inside, its index letters)] of the bracketed entries of a
    text, `[B x]_i`, `(V^T W^T)_{ij}`, `softmax(X)_ij` (a known function with its call); None
    where a bracket does not close or a name that is no function stands before one (W(x + b)_i:
    W times the entry, or the entry of the product?)."""
    from .shapes import canonical
    out, i = [], 0
    while i < len(text):
        if text[i] not in _CLOSE:
            i += 1
            continue
        depth, j = 0, i
        while j < len(text):
            depth += text[j] in "[("
            depth -= text[j] in "])"
            if depth == 0:
                break
            j += 1
        if j == len(text) or text[j] != _CLOSE[text[i]]:
            return None
        m = _ENTRY_SUB.match(text, j + 1)
        if m is None:
            i += 1
            continue
        start = i
        if text[i] == "(" and (name := re.search(r"[A-Za-z_]\w*\s*$", text[:i])):
            if canonical(name.group().strip()) is None:
                return None
            start = name.start()
        letters = "".join(g for g in m.groups() if g)
        out.append((start, m.end(), text[start:j + 1] if start < i else text[i + 1:j], letters))
        i = m.end()
    return out


def entries_as_arrays(answer: str, ref) -> str:
    """A claim written as the seeds end a derivation, an entry of a matrix expression for each
    entry of the derivative: [(B + B^T) x]_i, [B x]_i + [x^T B]_i, [V^T W^T]_{ij} (it was
    unreadable). Each bracket is its array (a row read as the vector it indexes; [E]_ji beside
    [F]_ij is E^T), when every bracket has the derivative's number of indices, all the same
    letters, the first in order (i before j), and outside the brackets only numbers and scalars.
    Anything else is left as it is (and refused as before: [A]_ij [B]_ij is a product of entries)."""
    from .index_syntax import ENTRY_OF_GROUP
    from .latex_input import from_latex
    if not ENTRY_OF_GROUP.search(answer):
        return answer
    text = from_latex(answer) if "\\" in answer else answer
    groups = _entry_groups(text)
    rank = sum(1 for d in ref.layout if d != 1)
    if not groups or rank not in (1, 2) or any(len(g[3]) != rank or set(g[3]) != set(groups[0][3]) for g in groups):
        return answer
    if sorted(groups[0][3]) != list(groups[0][3]):    # [W V]_ji alone: of WV, or the derivative's (i, j)?
        return answer
    outside = list(zip([0] + [g[1] for g in groups], [g[0] for g in groups] + [len(text)]))
    scalars = {n for n, v in ref.decls.items() if tuple(v) == N.SCALAR} | set(map(str, ref.derivation.variables.sizes))
    for a, b in outside:                 # numbers and scalars around the entries, nothing indexed
        for name in re.findall(r"[^\W\d]\w*", text[a:b]):
            if name not in scalars:
                return answer
        if re.search(r"[^\w\s.+\-*/()]", text[a:b]):
            return answer
    for prev, nxt in zip(groups, groups[1:]):       # [A]_ij [B]_ij is a product of entries: not a sum
        between, depth, split = text[prev[1]:nxt[0]], 0, False
        for ch in between:
            depth += ch in "(["
            depth -= ch in ")]"
            split |= depth == 0 and ch in "+-"
        if not split:
            return answer
    pieces, k = [], 0
    for start, end, inside, letters in groups:
        transposed = letters != groups[0][3]
        if rank == 1:
            try:
                typed = infer(_with_output(parse(inside), ref), ref.decls)[0]
            except IndexCalcError:
                return answer
            transposed = typed.shape is not None and typed.shape[0] == 1 and typed.shape[1] != 1
        pieces += [text[k:start], f"({inside})" + ("^T" if transposed else "")]
        k = end
    return "".join(pieces) + text[k:]


def _unpunctuated(answer: str) -> str:
    """An answer as a sentence ends it, `(B + B^T) x.` or `= 2 x;`, is the answer (the full stop
    was a parse error): one '=' before it, and one '.', ';' or ',' after a name or a bracket."""
    return re.sub(r"(?<=[\w)\]}'$])\s*[.;,]\s*$", "", re.sub(r"^\s*=(?!=)", "", answer))      # $V^T W^T$. too


def compare(ref: Reference, answer: str) -> Verdict:
    """One claim against a reference. A claim that cannot be read raises IndexCalcError. The
    verdict carries the answer as written (JSON's "answer"), not as respelled for reading."""
    read = entries_as_arrays(upstream_spelled(claim_body(_unpunctuated(answer), ref.wrt), ref), ref)
    verdict = _compare_read(ref, read)
    verdict.answer = answer
    return verdict


def _compare_read(ref: Reference, answer: str) -> Verdict:
    if is_index_notation(answer):
        return _compare_index(ref, answer)
    expr, wrt, expected, layout = ref.input, ref.wrt, ref.expected, ref.layout
    claimed = claim_of(ref, answer)
    for k, point in enumerate(ref.points):
        sizes = {k_: int(v) for k_, v in point.sizes.items()}
        want = ref.want(k)
        with np.errstate(all="ignore"):
            try:
                got = _claimed_value(claimed, point)
            except _ERRORS as e:
                if k in ref.wide:
                    continue
                return _wrong(ref, answer, point, None, None, None, claimed,
                              f"the claim cannot be evaluated there ({type(e).__name__})")
        if k in ref.wide and not np.all(np.isfinite(got)):
            continue                     # a claim written another way may overflow where it is wide
        if got.size != want.size or not _same_layout(claimed.shape, layout):
            reason = (f"the claim has shape {show_shape(claimed.shape)}, but the derivative by {wrt} "
                      f"{_shape_words(layout)}; the derivative is {expected}")
            return Verdict(expr, wrt, answer, False, reason, expected,
                           {"sizes": sizes, "entry": [], "claimed_shape": list(np.shape(got)),
                            "expected_shape": list(want.shape), "claimed": None, "actual": None}, claimed)
        with np.errstate(all="ignore"):
            terms = 0.0 if _is_tensor(claimed) else \
                np.reshape(magnitude(claimed, point.env2d, point.sizes), want.shape)
        got = np.reshape(got, want.shape)
        bad = ~_equal(got, want, terms, ref.terms(k))
        if np.any(bad):
            return _wrong(ref, answer, point, got, want, bad, claimed)
    reason = _right_reason(ref)
    if tuple(claimed.shape) != tuple(_as2(layout)):
        reason += (f"; it is written as {show_shape(claimed.shape)}, the transpose of the gradient "
                   f"({show_shape(_as2(layout))}, shaped like {wrt}), which is accepted as the same "
                   "derivative in the other layout")
    return Verdict(expr, wrt, answer, True, reason, expected, None, claimed)


def _is_tensor(tree) -> bool:
    return any(n.shape is not None and len(n.shape) > 2 for n in tree.walk())


def _claimed_value(claimed, point):
    """A claim's value at a point; a claim on tensors with NumPy's meaning (tensor_eval.py)."""
    if _is_tensor(claimed):
        from .tensor_eval import value
        return value(claimed, point.env, point.sizes)
    return evaluate(claimed, point.env2d, point.sizes)


def _right_reason(ref) -> str:
    shown = "; ".join(", ".join(f"{a}={b}" for a, b in p.sizes.items()) for p in ref.points)
    where = f" (sizes {shown})" if shown else ""
    return (f"agrees with the derivative {ref.expected}: equal to rounding at {len(ref.points)} random "
            f"points{where}")


def _equal(got, want, terms_got, terms_want):
    """Entry by entry: equal up to rounding, relative to the size of the terms on both sides."""
    scale = np.abs(got) + np.abs(want) + terms_got + terms_want
    floor = 1e-13 * float(np.max(np.abs(want) + terms_want, initial=0))
    return (np.abs(got - want) <= TOL * scale + floor) & np.isfinite(got)


def _wrong(ref, answer, point, got, want, bad, claimed, why=None) -> Verdict:
    sizes = {k_: int(v) for k_, v in point.sizes.items()}
    values = {n: np.round(np.asarray(v), 4).tolist() for n, v in point.env.items()}
    at = f"at sizes {', '.join(f'{a}={b}' for a, b in sizes.items())}" if sizes else "at a random point"
    if got is None:
        return Verdict(ref.input, ref.wrt, answer, False, f"{at}, {why}; the derivative is {ref.expected}",
                       ref.expected, {"sizes": sizes, "entry": [], "claimed": None, "actual": None,
                                      "values": values}, claimed)
    rel = np.where(bad, np.abs(got - want) / (np.abs(got) + np.abs(want) + 1e-300), -1.0)
    k = np.unravel_index(np.argmax(np.where(np.isnan(rel), np.inf, rel)), want.shape) if want.shape else ()
    entry = [int(i) for i in k]
    a, b = _pair(float(got[k]), float(want[k]))
    reason = (f"{at}, entry {entry} of the claim is {a} but the derivative is {b}; "
              f"the derivative is {ref.expected}")
    return Verdict(ref.input, ref.wrt, answer, False, reason, ref.expected,
                   {"sizes": sizes, "entry": entry, "claimed": _number(got[k]), "actual": _number(want[k]),
                    "values": values}, claimed)


def _pair(a: float, b: float):
    """Two numbers printed with enough digits to tell them apart."""
    for digits in range(6, 18):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb:
            return sa, sb
    return f"{a!r}", f"{b!r}"


def _number(x):
    """A float for JSON: a non-finite claim is reported as None (JSON has no NaN)."""
    x = float(x)
    return x if np.isfinite(x) else None


def _with_output(claim: N.Node, ref: Reference) -> N.Node:
    """A claim about `Y = f(X)` may use the module's output Y (`Y ∘ (1 - Y) ∘ dY`, SPEC §6):
    Y stands for the equation's right side, substituted before the claim is compared."""
    output = getattr(ref.derivation, "output", None)
    if not output or output in ref.decls or not N.contains(claim, output):
        return claim
    equation = parse(ref.input)
    if not isinstance(equation, N.Equation):
        return claim
    return _substitute(claim, output, equation.rhs)


def _substitute(tree: N.Node, name: str, by: N.Node) -> N.Node:
    if isinstance(tree, N.Sym) and tree.name == name:
        return by
    if isinstance(tree, N.Call):
        tree = tree.replace(args=tuple(_substitute(a, name, by) for a in tree.args))
    return tree.map_children(lambda c: _substitute(c, name, by))


def _compare_index(ref: Reference, answer: str) -> Verdict:
    """A claim written in index notation (SPEC §1.3), evaluated directly from its parsed tree:
    `G[i,j] = Σ_p dY[p,i] X[p,j]` (its left side orders its indices) or, with one free index or
    none, the expression alone."""
    from .index_eval import Evaluator
    from .layout import shape_of_rank
    claim = read_index(answer, ref.decls, free_ok=True, out_shape=shape_of_rank(ref.layout))
    unknown = sorted(set(claim.variables.table) - set(ref.decls))
    if unknown:
        raise IndexCalcError(f"the claimed answer uses {', '.join(unknown)}, which "
                             f"{'does' if len(unknown) == 1 else 'do'} not appear in {ref.input!r}")
    for k, point in enumerate(ref.points):
        sizes = {k_: int(v) for k_, v in point.sizes.items()}
        want = np.asarray(ref.want(k), dtype=float)
        with np.errstate(all="ignore"):
            got = Evaluator(claim, point.env, point.sizes).output()
        if got.shape != want.shape and _same_layout(got.shape, want.shape):
            got = np.reshape(got, want.shape)    # ∂L/∂b_j = Σ_i dY_ij for a bias b: 1×N, a row
        if got.shape != want.shape:
            want_dims = "×".join(map(str, want.shape)) or "scalar"
            got_dims = "×".join(map(str, got.shape)) or "scalar"
            reason = (f"the claim has {len(got.shape)} free indices ({got_dims} here), but the derivative by "
                      f"{ref.wrt} is {want_dims} here; the derivative is {ref.expected}")
            return Verdict(ref.input, ref.wrt, answer, False, reason, ref.expected,
                           {"sizes": sizes, "entry": [], "claimed_shape": list(got.shape),
                            "expected_shape": list(want.shape), "claimed": None, "actual": None})
        got = np.asarray(got, dtype=float)
        bad = ~_equal(got, want, 0.0, np.reshape(ref.terms(k), want.shape))
        if np.any(bad):
            return _wrong(ref, answer, point, got, want, bad, None)
    return Verdict(ref.input, ref.wrt, answer, True, _right_reason(ref), ref.expected, None)


def _typed_claim(tree, decls, shape):
    """The claim typed with the derivative's shape where it fits (a lone `1` is then the ones
    vector); a claim of another shape is typed as it stands, and called wrong for its shape."""
    try:
        return infer(tree, decls, expect=shape)[0]
    except ShapeError:
        pass
    try:
        return infer(tree, decls)[0]
    except ShapeError as e:
        raise IndexCalcError(f"the claimed answer does not fit the shapes: {e}") from None


def _shape_words(layout) -> str:
    if len(layout) > 2:
        return f"is a rank-{len(layout)} tensor ({'×'.join(map(str, layout))})"
    return f"has the shape {show_shape(_as2(layout))}"


def _as2(layout):
    if len(layout) > 2:                      # a tensor: the engine's shape is its sizes
        return tuple(layout)
    if len(layout) == 0:
        return N.SCALAR
    if len(layout) == 1:
        return (layout[0], 1)
    return tuple(layout[:2])


def _same_layout(shape, layout) -> bool:
    non_unit = [d for d in shape if d != 1]
    return non_unit == [d for d in layout if d != 1]
