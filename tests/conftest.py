import numpy as np
import pytest


def finite_jacobian(f, env, wrt, eps=1e-6):
    """d f(env) / d env[wrt] by central differences, output axes first (independent of indexcalc)."""
    x = np.asarray(env[wrt], dtype=float)
    out = np.asarray(f(env), dtype=float)
    jac = np.zeros(out.shape + x.shape)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fp = np.asarray(f({**env, wrt: xp if x.shape else float(xp)}), dtype=float)
        fm = np.asarray(f({**env, wrt: xm if x.shape else float(xm)}), dtype=float)
        jac[(Ellipsis,) + idx] = (fp - fm) / (2 * eps)
    return jac


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
