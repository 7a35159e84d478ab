"""The matrix language on tensors (SPEC §1.2): `softmax(Q K^T / sqrt(D)) V` for Q, K, V of
shape B×S×D means what NumPy means (batched np.matmul over the leading axes, `^T` on the last
two axes, broadcasting, softmax along the last axis).

The typed tree (shapes.py reads tensors with NumPy's rules) is lowered to the same indexed-sum
form index notation produces (index_form.py's entry rules carry the leading batch indices), so
the derivation, the steps, the batched closed forms (batch.py), the einsum code and the guard
are index_pipeline's. What differs is the problem object: its index form is the typed tree's
entry, and the guard's reference is the typed tree evaluated directly with NumPy
(tensor_eval.py), never our lowering of it.
"""
from __future__ import annotations

from . import nodes as N
from .index_form import IndexContext


def has_tensor(typed: N.Node, variables) -> bool:
    """Whether a typed tree is the matrix language on tensors: a variable or a node of rank ≥ 3."""
    return any(len(v.shape) > 2 for _, v in variables.items()) or \
        any(n.shape is not None and len(n.shape) > 2 for n in typed.walk())


class TensorProblem:
    """What index_pipeline's derivations ask of a problem (as IndexProblem answers it for
    index notation): the output's indices and shape, the index form, the value, the domains."""

    def __init__(self, text: str, typed: N.Node, variables, output: str | None = None):
        self.text, self.typed, self.variables, self.output = text, typed, variables, output
        probe = IndexContext(variables)
        self._idx = probe.free(typed.shape)            # one place per place of the engine's shape
        self.out_indices = tuple(str(i) for i in self._idx if i is not None)
        self.ranges = {str(i): probe.ranges[i] for i in self._idx if i is not None}
        self.sizes = set(variables.sizes)

    @property
    def out_shape(self) -> tuple:
        return self.typed.shape

    def register(self, ctx):
        for i in self._idx:
            if i is not None:
                ctx.ranges[i] = self.ranges[str(i)]
                ctx._free_used.add(str(i))

    def index_form(self, ctx):
        return ctx.entry(self.typed, self._idx)

    def value(self, env: dict, sizes: dict):
        from .tensor_eval import value
        return value(self.typed, env, sizes)

    def domains(self) -> dict:
        from .verify import _domains
        return _domains(self.typed)

    def rule_steps(self, R, body) -> list:
        """The softmax, norm and element-wise chain rules the derivative uses, as the matrix
        language's steps state them (pipeline._steps_rules)."""
        from .pipeline import _steps_rules
        return _steps_rules(R, body)


def derive(text: str, typed: N.Node, variables, wrt, seed: int = 0, output: str | None = None, read=None,
           order: int = 1):
    """The derivative of a typed tensor expression (the gradient of a scalar, else the full
    derivative), by index_pipeline's stages; `read` is the "read as" step put first. With
    order=2, the derivative of that once more by the same variable, as index notation's
    (index_pipeline: up to rank 4, guarded against differences of the verified first)."""
    from . import index_pipeline
    problem = TensorProblem(text, typed, variables, output)
    d = index_pipeline.derive_problem(problem, text, wrt, seed, order)
    return _finish(d, typed, read)


def backprop(text: str, output: str, rhs: N.Node, variables, wrt, seed: int = 0, read=None):
    """∂L/∂V for `Y = rhs` with tensors, in terms of dY (shaped like Y)."""
    from . import index_pipeline
    problem = TensorProblem(text, rhs, variables, output)
    d = index_pipeline.backprop_problem(problem, text, wrt, seed)
    return _finish(d, rhs, read)


def _finish(d, typed, read):
    if read is not None:
        for r in d.results:
            r.steps.insert(0, read)
        d.read_as = read.text
    return d


def is_tensor_derivation(d) -> bool:
    return isinstance(getattr(d, "problem", None), TensorProblem)
