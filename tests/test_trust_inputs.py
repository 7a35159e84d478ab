"""Issue 13's exit-3 list (part 7): each bad input that gave "internal error" is now exit 2 with
one clear message (or a right answer), never a traceback."""
import pytest

from indexcalc.cli import main

from .test_fuzz_inputs import api, cli
from .test_trust_files import assert_refused, run_cli

BIG = "9" * 400
BATTERY = [
    (["check", "x^T A x", "--wrt", "x,A", "--answer", "2 A x"], "one variable"),
    (["derive", "softmax(alpha)", "--wrt", "alpha"], "softmax"),
    (["derive", "sum(softmax(a))", "--wrt", "a", "--where", "a: scalar"], "softmax"),
    (["derive", "sum(conv(x, w))", "--wrt", "x", "--where", "x: 3, w: 5"], "kernel"),
    (["backprop", "y = conv(x, w)", "--wrt", "w", "--where", "x: 2, w: 4"], "kernel"),
    (["derive", "logdet(X)", "--wrt", "X", "--at", "X=[[1,1],[1,1]]"], "singular"),
    (["derive", "sum(inv(X))", "--wrt", "X", "--at", "X=[[1,1],[1,1]]"], "singular"),
    (["derive", f"{BIG} x^T x", "--wrt", "x"], "too large"),
    (["derive", f"x^T x / {BIG}", "--wrt", "x"], "too large"),
    (["derive", f"x^{BIG}", "--wrt", "x", "--where", "x: scalar"], "too large"),
    (["derive", "0." + "0" * 400 + "1 x^T x", "--wrt", "x"], "too small"),
    (["check", "x^T x", "--wrt", "x", "--answer", f"{BIG} x"], "too large"),
    (["derive", "tr(X)", "--wrt", "X", "--where", "X: 100000×100000"], "entries"),
    (["derive", "X", "--wrt", "X", "--where", "X: 100×100"], "entries"),
    (["derive", "x^T x", "--wrt", "x", "--at", "x=[1,2], x=[3,4]"], "twice"),
    (["derive", "sum(conv(x, w))", "--wrt", "x", "--at", "x=[1,2], w=[1,2,3]"], "no entries"),
]


@pytest.mark.parametrize("args,says", BATTERY, ids=[" ".join(a)[:60] for a, _ in BATTERY])
def test_bad_inputs_are_exit_2_with_one_message(args, says):
    p = run_cli(args)
    assert_refused(p)
    assert says in p.stderr


@pytest.mark.parametrize("text", [" -", " -x^T x", "  -", " - (x"])
def test_the_command_line_reads_a_leading_space_as_the_api_does(text):
    """The long fuzz profile's " -": the CLI protects a leading minus with a space and took
    the user's own space away with it, so its caret and column differed from the API's."""
    e = api(text, "x")
    status, _, err = cli(["derive", text, "--wrt", "x", "--format", "numpy"])
    assert (status == 2) == (e is not None), (status, err)
    if e is not None and getattr(e, "column", None):
        assert f"column {e.column}" in err


def test_a_leading_minus_is_still_an_expression():
    assert main(["derive", "-x^T x", "--wrt", "x", "--format", "numpy"]) == 0
    assert main(["check", "-x^T x", "--wrt", "x", "--answer", "-2 x"]) == 0
