"""The numerical guard must catch a wrong rule: break one on purpose and see it refuse."""
import pytest

from indexcalc import derive, functions
from indexcalc import diff
from indexcalc.errors import VerificationError


def test_guard_catches_a_wrong_elementwise_rule(monkeypatch):
    wrong = functions.Elementwise("sin", functions.sp.sin, lambda u: functions.sp.sin(u), "np.sin({})",
                                  functions.np.sin)          # d sin = sin: wrong
    monkeypatch.setitem(functions.TABLE, "sin", wrong)
    with pytest.raises(VerificationError):
        derive("sum(sin(X))", "X")


def test_guard_catches_a_wrong_inverse_rule(monkeypatch):
    original = diff.ATOM_RULES[diff.N.Inverse]
    monkeypatch.setitem(diff.ATOM_RULES, diff.N.Inverse, lambda D, node, idx: -original(D, node, idx))
    with pytest.raises(VerificationError):
        derive("tr(X^-1 A)", "X")


def test_guard_catches_a_wrong_leaf_rule(monkeypatch):
    monkeypatch.setattr(diff, "deltas", lambda indices, wrt: 2 * diff.sp.Mul(
        *[diff.sp.KroneckerDelta(a, b) for a, b in zip(indices, wrt)]))
    with pytest.raises(VerificationError):
        derive("x^T a", "x")
