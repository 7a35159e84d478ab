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


# ---- hypothesis profiles: `pytest --hypothesis-profile=long` (or INDEXCALC_HYPOTHESIS=long)
# runs thousands of random expressions; the default run stays fast. No deadline: the first
# call of a rule pays SymPy's caches, and a slow example is not a wrong one.
import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
settings.register_profile("default", max_examples=25, deadline=None, suppress_health_check=_QUIET,
                          derandomize=True)
settings.register_profile("long", max_examples=2500, deadline=None, suppress_health_check=_QUIET,
                          derandomize=False)      # each long run explores new ground
settings.load_profile(os.environ.get("INDEXCALC_HYPOTHESIS", "default"))
