"""Input fuzzing: random strings and mutations of valid inputs (dropped or doubled characters,
stray operators, unbalanced brackets, unicode) through the API and the CLI. Never a traceback:
either an answer (exit 0), or exit 2 with one message; a parse error points at its column.

Default: a few hundred inputs. Thousands: `pytest tests/test_fuzz_inputs.py
--hypothesis-profile=long` (or INDEXCALC_HYPOTHESIS=long)."""
import contextlib
import io
import re
import subprocess
import sys

import pytest
from hypothesis import event, example, given, note, settings
from hypothesis import strategies as st

from indexcalc import derive
from indexcalc.cli import build_parser, main
from indexcalc.errors import IndexCalcError, ParseError, VerificationError
from indexcalc.pipeline import backprop

# every command's option strings (an expression spelled exactly as one is taken for it)
OPTIONS = {o for act in build_parser()._actions if isinstance(getattr(act, "choices", None), dict)
           for p in act.choices.values() for a in p._actions for o in a.option_strings}

from .cases import CASES

LONG = settings.default.max_examples >= 1000      # the long profile is loaded before this import

VALID = sorted({c[0] for c in CASES} | {
    "Y = X W^T + b", "L = -sum(T ∘ log(X)) / S", "h1 = relu(X W1 + b1)", "a = conv(h, w)",
    "x^T B x", "Q^T Q", "‖A x - y‖^2 + lambda ‖x‖^2", "X^{-1}", "V @ X @ W", "x^⊤ a",
})
OPERATORS = list("+-*/^'@·∘⊘,=()[]{}|‖⊤") + [".*", "./", ".^", "^T", "^-1", "||", "1", "T", " "]
UNICODE = "αβγλσ×∑∂δ∞√±≤≥→←∈ℝ⁻¹²ⅈ\u200b\u00a0\t\n😀\\\"'`#$%&;:!?~"


@st.composite
def mutated(draw):
    """A valid input with one to three edits: a character dropped or doubled, an operator or
    a unicode character inserted, a bracket added or removed, the text cut short."""
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 3))):
        if not text:
            break
        k = draw(st.integers(0, len(text) - 1))
        edit = draw(st.sampled_from(["drop", "double", "operator", "unicode", "open", "close", "cut", "swap"]))
        if edit == "drop":
            text = text[:k] + text[k + 1:]
        elif edit == "double":
            text = text[:k] + text[k] + text[k:]
        elif edit == "operator":
            text = text[:k] + draw(st.sampled_from(OPERATORS)) + text[k:]
        elif edit == "unicode":
            text = text[:k] + draw(st.sampled_from(UNICODE)) + text[k:]
        elif edit == "open":
            text = text[:k] + draw(st.sampled_from("([{‖")) + text[k:]
        elif edit == "close":
            text = text[:k] + draw(st.sampled_from(")]}‖")) + text[k:]
        elif edit == "cut":
            text = text[:k]
        else:
            j = draw(st.integers(0, len(text) - 1))
            chars = list(text)
            chars[k], chars[j] = chars[j], chars[k]
            text = "".join(chars)
    return text


RANDOM = st.lists(st.sampled_from(list("xyzABXWTIb1230 .,") + OPERATORS + list(UNICODE)),
                  max_size=20).map("".join)
INPUTS = st.one_of(mutated(), mutated(), RANDOM, st.text(max_size=20))


def variable_of(text):
    names = re.findall(r"[A-Za-z]\w*", text.split("=", 1)[-1])
    names = [n for n in names if n not in ("T", "I", "tr", "sum", "exp", "log", "norm", "softmax")]
    return names[0] if names else "x"


def api(text, wrt):
    """The API: an answer, or an IndexCalcError (exit 2) - any other exception fails the test."""
    try:
        if "=" in text:
            backprop(text, wrt)
        else:
            derive(text, wrt)
        return None
    except VerificationError:
        raise           # the guard rejected indexcalc's own answer: a bug, not bad input
    except IndexCalcError as e:
        return e


def cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as e:          # argparse's own usage errors: exit 2 with a message
            status = e.code
    return status, out.getvalue(), err.getvalue()


def assert_clear(status, err):
    assert "Traceback" not in err and "internal error" not in err and "internal check" not in err, err
    assert status in (0, 2), (status, err)
    if status == 2:                  # ours ("indexcalc: error: ..."), or argparse's usage line
        assert "error" in err, err


@settings(max_examples=4000 if LONG else 300)
@given(INPUTS)
@example(" -")            # the CLI took the user's own leading space with its protection's
@example("\xa0^")         # the input line itself looks like a caret to str.strip
@example("\n^")           # a line break: the caret counts columns from the input's start
@example("--w")           # an ambiguous abbreviation (--wrt, --where) is an expression, as in the API
@example("--order")       # an expression spelled exactly as an option is the option
@example("--a")           # so is an unambiguous one (--at): options are never abbreviated
def test_fuzzed_expressions_never_crash(text):
    wrt = variable_of(text)
    note(f"input {text!r} --wrt {wrt}")
    e = api(text, wrt)
    event("refused" if e else "answered")
    status, _, err = cli(["backprop" if "=" in text else "derive", text, "--wrt", wrt, "--format", "numpy"])
    assert_clear(status, err)
    if text.split("=", 1)[0] in OPTIONS:          # `--order` is both an expression and an option:
        return                                    # the CLI takes the option (exit 2, usage), clearly
    assert (status == 2) == (e is not None), (status, err, e)
    if isinstance(e, ParseError) and e.column is not None and e.text:
        event("parse error")
        assert f"column {e.column}" in err
        caret = [line for line in err.splitlines() if re.fullmatch(r" *\^", line)]   # not an input "\xa0^"
        assert caret and caret[0].index("^") == 2 + e.column - 1, err     # under the column


@settings(max_examples=1000 if LONG else 100)
@given(st.sampled_from(["x^T B x", "tr(V X W)", "sum(X W)", "Y = X W^T + b"]), INPUTS)
def test_fuzzed_answers_and_declarations_never_crash(expr, text):
    """The other places a user types: `check --answer`, `--where`, `--at`, `--wrt`."""
    wrt = "x" if "x" in expr else "X" if "X" in expr else "b"
    for argv in (["check", expr, "--wrt", wrt, "--answer", text],
                 ["derive", expr.split("=")[-1], "--wrt", wrt, "--where", text],
                 ["derive", expr.split("=")[-1], "--wrt", wrt, "--at", text],
                 ["derive", expr.split("=")[-1], "--wrt", text]):
        status, _, err = cli(argv)
        note(repr(argv))
        assert "Traceback" not in err and "internal" not in err, err
        assert status in (0, 1, 2), (status, err)


@pytest.mark.parametrize("text", ["x^T B x +", "(x", "tr(V X", "‖x", "x ∘∘ y", "x^T 😀 x", "sum(X,, 1)",
                                  "X^{-1", "= x", "Y = = X"])
def test_the_real_command_line_never_shows_a_traceback(text):
    p = subprocess.run([sys.executable, "-m", "indexcalc", "derive", text, "--wrt", "x"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "column" in p.stderr, p.stderr
