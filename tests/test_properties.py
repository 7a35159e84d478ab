"""Properties over random well-shaped expressions from the whole language (tests/strategies.py):

1. the derivative agrees with finite differences of an independent NumPy reference, or the
   answer is a clear UnsupportedError: never another exception, never a wrong number;
2. the closed form parses back to the same function;
3. simplifying twice changes nothing: the sifted index form sifted again is the same sum of
   terms (up to the names of summation indices, which past six are mapped factor by factor),
   and the closed form parsed and printed again is the same text.

Default: a few dozen examples each (derandomized, so CI is repeatable). Thousands:
`pytest tests/test_properties.py --hypothesis-profile=long --hypothesis-show-statistics`.
"""
import numpy as np
from hypothesis import assume, event, given, note, settings
from hypothesis import strategies as st

from indexcalc import derive, parse
from indexcalc.errors import IndexCalcError, UnsupportedError
from indexcalc.evaluate import evaluate, to_2d
from indexcalc.printing.text import to_text
from indexcalc.shapes import infer

from .conftest import finite_jacobian
from .strategies import SIZES, cases

LONG = settings.default.max_examples >= 1000      # the long profile is loaded before this import


def derived(case):
    """derive(), with UnsupportedError as the one acceptable refusal (recorded as an event), and
    the guard's "not finite at random points" where the NumPy reference is not finite either
    (‖b - b‖ in a denominator)."""
    note(f"indexcalc derive {case.text!r} --wrt {case.wrt} --where {case.where!r}")
    try:
        return derive(case.text, case.wrt, case.where)
    except UnsupportedError as e:
        event(f"unsupported: {str(e).split(':')[0][:60]}")
        return None
    except IndexCalcError as e:
        if "not finite" not in str(e) or _finite_somewhere(case):
            raise
        event("refused: not finite anywhere")
        return None


def _finite_somewhere(case, tries=10) -> bool:
    rng = np.random.default_rng(0)
    with np.errstate(all="ignore"):
        for _ in range(tries):
            try:
                if np.all(np.isfinite(np.asarray(case.expr.fn(case.draw(rng)), dtype=float))):
                    return True
            except np.linalg.LinAlgError:
                pass
    return False


def point(case, seed):
    env = case.draw(np.random.default_rng(seed))
    with np.errstate(all="raise"):
        try:
            value = np.asarray(case.expr.fn(env), dtype=float)
        except (FloatingPointError, np.linalg.LinAlgError):
            value = np.array(np.nan)
    assume(np.all(np.isfinite(value)) and np.abs(value).max(initial=0) < 1e6)
    assume(case.far_from_kinks(env))
    return env


def expected(case, env):
    want = finite_jacobian(case.expr.fn, env, case.wrt)
    assume(np.all(np.isfinite(want)))
    return want


def close(got, want, tol=1e-4):
    return got.shape == want.shape and np.allclose(got, want, rtol=tol, atol=tol * (1 + np.abs(want).max()))


@given(cases(), st.integers(0, 2**32 - 1))
def test_derivative_agrees_with_finite_differences_or_is_unsupported(case, seed):
    env = point(case, seed)
    d = derived(case)
    if d is None:
        return
    event("derived" + (" (closed form)" if d.closed_form else " (index form)"))
    r = d.results[0]
    got = np.asarray(eval(r.numpy, {"np": np, **SIZES, **env}), dtype=float)   # noqa: S307
    want = expected(case, env)
    assert close(got, want), f"numpy {r.numpy}\ngot {got}\nwant {want}"


@given(cases(), st.integers(0, 2**32 - 1))
def test_closed_form_parses_back_to_the_same_function(case, seed):
    env = point(case, seed)
    d = derived(case)
    if d is None or d.closed_form is None:
        return
    r = d.results[0]
    decls = {n: v.shape for n, v in d.variables.items()}
    back, _ = infer(parse(r.closed_form), decls, expect=r.closed.shape)
    env2d = {n: to_2d(env[n], d.variables[n]) for n in env}
    got = np.reshape(evaluate(back, env2d, SIZES), np.shape(expected(case, env)))
    assert close(got, expected(case, env)), f"closed form {r.closed_form}"


@given(cases())
def test_simplifying_twice_changes_nothing(case):
    d = derived(case)
    if d is None:
        return
    r = d.results[0]
    text, same = r.resimplify()
    assert same, f"sifted again: {text}\nwas: {r.index_form}"
    if r.closed_form is not None:
        decls = {n: v.shape for n, v in d.variables.items()}
        back, _ = infer(parse(r.closed_form), decls, expect=r.closed.shape)
        assert to_text(back) == r.closed_form


@settings(max_examples=400 if LONG else 15)      # each example differentiates twice, numerically too
@given(cases(max_depth=2, scalar_only=True), st.integers(0, 2**32 - 1))
def test_hessian_agrees_with_finite_differences_or_is_unsupported(case, seed):
    env = point(case, seed)
    note(f"indexcalc derive {case.text!r} --wrt {case.wrt} --where {case.where!r} --order 2")
    try:
        d = derive(case.text, case.wrt, case.where, order=2)
    except UnsupportedError as e:
        event(f"unsupported: {str(e).split(':')[0][:60]}")
        return
    got = np.asarray(eval(d.numpy, {"np": np, **SIZES, **env}), dtype=float)   # noqa: S307
    grad = lambda e: finite_jacobian(case.expr.fn, e, case.wrt, eps=1e-5)  # noqa: E731
    want = finite_jacobian(grad, env, case.wrt, eps=1e-4)
    assume(np.all(np.isfinite(want)))
    assert close(got, want, tol=1e-3), f"numpy {d.numpy}"


def test_the_strategy_covers_the_language():
    """The generator reaches every construct it claims to (a strategy that silently stopped
    drawing inverses or softmax would make the properties above weaker without failing).
    One pass over the drawn cases, until each needle has been seen (it was one search per
    needle: 25 s of the suite)."""
    from hypothesis import Phase, find, settings
    from hypothesis.errors import NoSuchExample
    needles = ["^T", "∘", "⊘", ".^", "tr(", "‖", "norm(", "det(", "^-1", "softmax(", "1^T", "diag(",
               "sum(", "exp(", "log(", "relu(", "+ I", "·", "1/2 ", "e-1 ", "gelu(", "ReLU(", "σ(", "erf("]
    missing = set(needles)

    def sees_the_last(c):
        missing.difference_update({n for n in missing if n in c.text})
        return not missing
    try:
        find(cases(), sees_the_last, settings=settings(max_examples=3000, database=None, phases=[Phase.generate]))
    except NoSuchExample:
        pass
    assert not missing, f"never drawn in 3000 cases: {sorted(missing)}"
