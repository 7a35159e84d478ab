"""The fast SymPy helpers agree with the SymPy functions they stand in for."""
import numpy as np
import sympy as sp

from indexcalc.index_form import make_sum, replace
from indexcalc.pipeline import derive


def test_make_sum_equals_sympy_sum():
    p, q, n = sp.symbols("p q n", integer=True)
    A = sp.IndexedBase("A")
    body = A[p, q] * A[q, p]
    fast = make_sum(make_sum(body, [(q, 1, n)]), [(p, 1, n)])
    slow = sp.Sum(sp.Sum(body, (q, 1, n)), (p, 1, n))
    assert fast == slow and hash(fast) == hash(slow)
    assert fast.free_symbols == slow.free_symbols
    assert make_sum(sp.S.Zero, [(p, 1, n)]) == 0


def test_replace_equals_xreplace_through_nested_sums():
    p, q, i, j, n = sp.symbols("p q i j n", integer=True)
    A = sp.IndexedBase("A")
    e = sp.Sum(sp.Sum(A[p, q] * sp.KroneckerDelta(q, i), (q, 1, n)) * A[p, j], (p, 1, n)) + A[i, j]
    sub = {i: j, A[i, j]: sp.Integer(2)}
    assert replace(e, sub) == e.xreplace(sub)


def test_long_chain_gives_the_transposed_product():
    """tr(A1 … A24 X) by X = (A1 … A24)^T: the fast paths (flat sums, memoised lookups,
    bucketed Hadamard matching) still give the right numbers."""
    n = 24
    names = " ".join(f"A{k}" for k in range(1, n + 1))
    result = derive(f"tr({names} X)", "X")
    assert result.closed_form == " ".join(f"A{k}^T" for k in range(n, 0, -1))
    rng = np.random.default_rng(0)
    env = {f"A{k}": rng.normal(size=(3, 3)) * 0.6 for k in range(1, n + 1)}
    env["X"] = rng.normal(size=(3, 3))
    got = eval(result.numpy, {"np": np, "n": 3, **env})
    want = np.linalg.multi_dot([env[f"A{k}"] for k in range(1, n + 1)]).T
    assert np.allclose(got, want)


def test_nodes_behave_as_frozen_dataclasses_did():
    """nodes.Node stands in for @dataclass(frozen=True) (a cold-start saving): fields in order
    with defaults, equality and hash by type and values, Call.col not compared, immutable."""
    import pytest

    from indexcalc import nodes as N
    x, y = N.Sym("x"), N.Sym("x")
    assert x == y and hash(x) == hash(y) and x.shape is None and x != N.Sym("x", (3, 1))
    assert N.Add(x, y) != N.Sub(x, y) and N.Trace(x).shape == N.SCALAR
    assert N.Call("tr", (x,), col=3) == N.Call("tr", (x,), col=7) and N.Call("tr", (x,), col=3).col == 3
    m = N.MatMul(x, N.Sym("B"), shape=(2, 2))
    assert m.replace(shape=None) == N.MatMul(x, N.Sym("B")) and m.shape == (2, 2)
    assert list(dict(m.items())) == ["a", "b", "shape"] and repr(x) == "Sym(name='x', shape=None)"
    with pytest.raises(AttributeError):
        x.name = "y"
    with pytest.raises(TypeError):
        N.Add(x)
    with pytest.raises(TypeError):
        N.Neg(x, shape=None, a=x)


def _context(ranges):
    """An IndexContext over no variables, with the given index ranges."""
    from types import SimpleNamespace

    from indexcalc.index_form import IndexContext
    ctx = IndexContext(SimpleNamespace(sizes={}, items=lambda: []))
    ctx.ranges.update(ranges)
    return ctx


def test_same_terms_up_to_dummy_names_with_many_dummies():
    """Past six summation indices same_terms maps names factor by factor instead of trying
    every permutation: a renamed chain is the same term, a chain with one link reversed is not
    (though its factors read the same with the indices blanked)."""
    from indexcalc.deltas import Normalizer, Term
    names = "pqrstuvw"
    idx = {c: sp.Symbol(c, integer=True) for c in "ij" + names}
    ranges = {s: "n" for s in idx.values()}
    norm = Normalizer(_context(ranges))
    A = sp.IndexedBase("A")

    def chain(order, flip=None):
        path = ["i", *order, "j"]
        pairs = [(a, b) if k != flip else (b, a) for k, (a, b) in enumerate(zip(path, path[1:]))]
        return Term(sp.S.One, tuple(A[idx[a], idx[b]] for a, b in pairs), tuple(idx[c] for c in order))

    t = chain(names)
    assert norm.same_terms([t], [chain("wvutsrqp")])           # the same chain, other names
    assert not norm.same_terms([t], [chain(names, flip=4)])    # A_st became A_ts


def test_same_terms_however_the_sum_is_cut_into_terms():
    """A sum kept whole as one term, (A_ji + B_ji) + A_ji + δ_ij, is the same sum as 2 A_ji +
    B_ji + δ_ij (the long profile's tr((A + B)(A + I)) by A: same text, called 'not simplified');
    a sum that differs in one coefficient, or that spreads to a different sum, is not."""
    from indexcalc.deltas import Normalizer, Term
    i, j, p = (sp.Symbol(c, integer=True) for c in "ijp")
    norm = Normalizer(_context({i: "n", j: "n", p: "n"}))
    A, B, s = sp.IndexedBase("A"), sp.IndexedBase("B"), sp.IndexedBase("s")
    one = lambda f, c=1: Term(sp.S(c), (f,), ())   # noqa: E731
    kept = [one(A[j, i] + B[j, i]), one(A[j, i]), one(sp.KroneckerDelta(i, j))]
    spread = [one(A[j, i], 2), one(B[j, i]), one(sp.KroneckerDelta(i, j))]
    assert norm.same_terms(kept, spread) and norm.same_terms(spread, kept)
    assert not norm.same_terms(kept, [one(A[j, i], 2), one(B[j, i], 2), one(sp.KroneckerDelta(i, j))])
    assert not norm.same_terms(kept, [one(A[i, j], 2), one(B[j, i]), one(sp.KroneckerDelta(i, j))])
    # under a sum: Σ_p (s_p + 1) A_pi is Σ_p s_p A_pi + Σ_q A_qi, whatever the dummies' names
    q = sp.Symbol("q", integer=True)
    norm.ctx.ranges[q] = "n"
    whole = [Term(sp.S.One, (s[p] + 1, A[p, i]), (p,))]
    parts = [Term(sp.S.One, (s[q], A[q, i]), (q,)), Term(sp.S.One, (A[p, i],), (p,))]
    assert norm.same_terms(whole, parts)
    assert not norm.same_terms(whole, [Term(sp.S.One, (s[q], A[i, q]), (q,)), Term(sp.S.One, (A[p, i],), (p,))])
