"""The command line (SPEC §2): thin; every stage lives in its own module."""
from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import IndexCalcError, describe

EPILOG = """examples:
  indexcalc derive "x^T B x" --wrt x
  indexcalc derive "tr(V X W)" --wrt X --where "V: n×m, X: m×p, W: p×n" --format latex
  indexcalc derive "x^T B x" --wrt x --order 2
  indexcalc backprop "Y = X W^T + b" --wrt W,b,X --where "X: S×M, W: N×M, b: 1×N"
  indexcalc check "x^T B x" --wrt x --answer "2 B x"
  indexcalc solve problems/index_gymnastics.toml --format pdf -o solutions.pdf
  indexcalc grade problems/index_gymnastics.toml examples/answers.csv -o report.html
exit status: 0 success, 1 a wrong answer in check, 2 bad input or unsupported, 3 internal check failed"""


# The subcommands: each is (name, add its arguments, run it). A new command is one row here
# and a module of its own; run() dispatches through this table.
COMMANDS: list = []
EXAMPLES: dict = {}          # command -> example command lines, shown by its --help


def command(name: str, help: str, examples=()):
    """Register a subcommand: the decorated function adds its arguments to a parser and
    returns the function that runs it (args -> exit status)."""
    def register(setup):
        COMMANDS.append((name, help, setup))
        EXAMPLES[name] = list(examples)
        return setup
    return register


WHERE_HELP = ('shapes of the variables, e.g. "X: S×M, b: 1×N, c: scalar, x: n, act: function" '
              "(default: upper-case names are matrices (Σ too), lower-case vectors, lower-case Greek scalars)")


@command("derive", "the derivative of an expression", examples=[
    'indexcalc derive "1/2 x^T A x" --wrt x',
    'indexcalc derive "tr(V X W)" --wrt X --where "V: n×m, X: m×p, W: p×n" --format latex'])
def _derive_cmd(d):
    d.add_argument("expr", help='the expression, in the language of SPEC §1 (e.g. "λ/2 ‖w‖^2 + sum(relu(X w))")')
    d.add_argument("--wrt", required=True, help="the variable(s) to differentiate by, comma separated")
    d.add_argument("--where", help=WHERE_HELP)
    d.add_argument("--order", type=int, default=1, choices=[1, 2], help="1: the derivative (default); 2: the Hessian")
    d.add_argument("--at", help='also evaluate the value and the derivative at these values, e.g. '
                                '"X=[[0,1],[2,3]], W=[[1,1],[1,1]]"')
    d.add_argument("--format", default="text", choices=["text", "latex", "json", "numpy"],
                   help="text: the steps and the closed form (default); latex; json (SPEC §3); numpy: the code only")
    return _derivation


@command("backprop", "gradients of a module Y = f(X, W, ...) in terms of dY = ∂L/∂Y", examples=[
    'indexcalc backprop "Y = X W^T + b" --wrt W,b,X --where "X: S×M, W: N×M, b: 1×N"',
    'indexcalc backprop "Y = sigmoid(X)" --wrt X --format json'])
def _backprop_cmd(b):
    b.add_argument("equation", help="the module as an equation Y = f(...): its left side names the output, "
                                    "whose upstream gradient is dY")
    b.add_argument("--wrt", required=True, help="the variable(s) to give ∂L/∂V for, comma separated")
    b.add_argument("--where", help=WHERE_HELP)
    b.add_argument("--assume", action="append", default=[],
                   help='e.g. "T 1 = 1" (rows of T sum to one): the text output also gives the '
                        "gradient simplified under it, checked numerically")
    b.add_argument("--format", default="text", choices=["text", "latex", "json", "numpy"],
                   help="text: the steps and the gradients (default); latex; json (SPEC §3); numpy: the code only")
    return _derivation


@command("check", "is a claimed derivative right?", examples=[
    'indexcalc check "x^T B x" --wrt x --answer "(B + B^T) x"',
    'indexcalc check "Y = sigmoid(X)" --wrt X --answer "Y ∘ (1 - Y) ∘ dY"'])
def _check_cmd(c):
    c.add_argument("expr", help="the expression, or the module's equation Y = f(...) (then the answer is "
                                "∂L/∂V written with dY, and may use Y)")
    c.add_argument("--wrt", required=True, help="the variable the claim is the derivative by")
    c.add_argument("--answer", required=True, help="the claimed derivative, in the same language")
    c.add_argument("--where", help=WHERE_HELP)
    c.add_argument("--assume", action="append", default=[],
                   help='e.g. "T 1 = 1" (rows of T sum to one, as one-hot targets): the claim is compared '
                        "at points where it holds")
    c.add_argument("--format", default="text", choices=["text", "json"], help="text (default) or json")
    return _check


@command("solve", "worked solutions of every problem in a problem file", examples=[
    "indexcalc solve problems/index_gymnastics.toml",
    "indexcalc solve problems/index_gymnastics.toml --format pdf -o solutions.pdf"])
def _solve_cmd(s):
    s.add_argument("problem_file", help="a problem file (TOML, SPEC §5)")
    s.add_argument("--format", default=None, choices=["text", "latex", "pdf"],
                   help="text (default), latex (a document) or pdf (needs pdflatex); without it, "
                        "the suffix of -o (.pdf, .tex, .txt) says which")
    s.add_argument("-o", dest="out", help="output file (default: standard output; for pdf, "
                                          "PROBLEM_FILE's name with .pdf)")
    return _solve


SOLVE_SUFFIXES = {".pdf": "pdf", ".tex": "latex", ".txt": "text", ".text": "text"}


def _solve_format(fmt, out) -> str:
    """--format, or the suffix of -o (solutions.pdf is a PDF: it was the text, in a file named
    .pdf); a format the suffix contradicts (--format pdf -o notes.tex) is exit 2, never a PDF
    written into a .tex, or over a problem file."""
    from pathlib import Path
    from .errors import IndexCalcError
    said = SOLVE_SUFFIXES.get(Path(out).suffix.lower()) if out else None
    if out and Path(out).suffix.lower() in (".toml", ".csv", ".py", ".json"):     # a problem file's place
        want = fmt or "text"
        raise IndexCalcError(f"-o {out}: solve writes {want}, not a {Path(out).suffix} file; name a "
                             f"{'.pdf' if want == 'pdf' else '.tex' if want == 'latex' else '.txt'} file")
    if fmt is None:
        return said or "text"
    if said and said != fmt:
        raise IndexCalcError(f"--format {fmt} but -o {out} names a {Path(out).suffix} file; "
                             f"drop --format (the suffix says {said}) or rename the file")
    return fmt


@command("codegen", "modules (forward, backward, gradient check) from a problem file or one equation", examples=[
    "indexcalc codegen problems/mlp.toml -o modules_generated.py",
    'indexcalc codegen "Y = softmax(Q K^T / sqrt(D)) V" --wrt Q,K,V --where "Q: S×D, K: S×D, V: S×D" --target torch'])
def _codegen_cmd(g):
    g.add_argument("problem_file", metavar="PROBLEM_FILE|EQUATION",
                   help="a problem file (TOML), or one equation Y = f(...)")
    g.add_argument("--wrt", help="for an equation: the variables to differentiate, comma separated")
    g.add_argument("--where", help='for an equation: shapes, e.g. "X: S×M, W: M×N, b: 1×N"')
    g.add_argument("--target", default="numpy", choices=["numpy", "torch", "jax"],
                   help="for an equation: NumPy class (default), torch.autograd.Function or jax.custom_vjp")
    g.add_argument("--params", help="for an equation: the variables that are the module's parameters "
                                    "(default: the differentiated ones that run along no data rows)")
    g.add_argument("--name", help="for an equation: the class name (default from the equation)")
    g.add_argument("-o", dest="out", help="output file (default: standard output)")
    return _codegen


@command("grade", "check a whole class's claimed answers (a CSV) against a problem file", examples=[
    "indexcalc grade problems/index_gymnastics.toml examples/answers.csv",
    "indexcalc grade problems/index_gymnastics.toml examples/answers.csv -o report.html"])
def _grade_cmd(g):
    g.add_argument("problem_file", help="the problem file (TOML) the answers are to")
    g.add_argument("answers", metavar="ANSWERS.csv", help="header student,problem,variable,answer; one claim a row")
    g.add_argument("-o", dest="out", help="report file (default: standard output)")
    g.add_argument("--format", choices=["text", "csv", "json", "html"],
                   help="default: from the report file's suffix (.csv, .json, .html), else text")
    return _grade


@command("serve", "a local web page: derive, backprop and check, the steps typeset", examples=[
    "indexcalc serve", "indexcalc serve --port 0 --time-limit 10"])
def _serve_cmd(s):
    s.add_argument("--port", type=int, default=8000, help="default 8000; 0 picks a free port")
    s.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this computer only)")
    s.add_argument("--time-limit", type=float, default=30.0, metavar="SECONDS",
                   help="stop a derivation that takes longer (default 30)")
    return _serve


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="indexcalc", description="Matrix and tensor derivatives in index notation.",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 allow_abbrev=False)
    from . import __version__
    ap.add_argument("--version", action="version", version=f"indexcalc {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, help_, setup in COMMANDS:
        examples = EXAMPLES.get(name)
        p = sub.add_parser(name, help=help_, description=help_,
                           epilog=("examples:\n" + "\n".join(f"  {e}" for e in examples)) if examples else None,
                           formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
        p.set_defaults(run=setup(p))
    return ap


def _at_text(text, values) -> str:
    """`--at` in the text output: numbers as written (52, not 52.), matrices a row a line."""
    from .output import array_text
    lines = [f"at {text}:"]
    rows = [("value:", values["value"])] + [(f"d/d{w}:", v) for w, v in values["derivatives"].items()]
    width = max(len(label) for label, _ in rows) + 2
    for label, v in rows:
        lines.append(f"  {label.ljust(width)}{array_text(v, indent=2 + width) if v is not None else '-'}")
    return "\n".join(lines) + "\n"


def _options(parser) -> tuple[set, set]:
    """(every option string of the parser and its subcommands, those that take a value)."""
    every, valued = set(), set()
    for action in parser._actions:
        every.update(action.option_strings)
        if action.nargs != 0:
            valued.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                e, v = _options(sub)
                every |= e
                valued |= v
    return every, valued


def _protect_leading_minus(argv, parser) -> list:
    """`indexcalc derive "-sum(x)" --wrt x`, `derive -A`, `--answer -x`: an expression that
    starts with a minus is not an option. argparse would take it for one, so it gets a
    leading space (which the parser ignores) unless it is one of our options and not an
    option's value. Options are never abbreviated: `--a` is the expression -(-a), not --at.
    Returns the arguments and the set of those protected, so that only these lose the space again (`_unprotect`): a space the user typed
    stays, as the API would read it."""
    options, takes_value = _options(parser)
    command = next((a for a in argv if a in _subcommands(parser)), None)
    if command:     # another command's option (codegen's --params) is an expression here
        own, own_valued = _options(_subcommands(parser)[command])
        options, takes_value = own | {o for a in parser._actions for o in a.option_strings}, own_valued
    out, protected = [], set()
    for k, a in enumerate(argv):
        after_option = k > 0 and argv[k - 1] in takes_value
        name = a.split("=", 1)[0]
        ours = name in options
        if a.startswith("-") and (after_option or not ours):
            a = " " + a
            protected.add(a)
        out.append(a)
    return out, protected


def _subcommands(parser) -> dict:
    return next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})


def _unprotect(args, protected):
    for name, value in vars(args).items():
        if isinstance(value, str) and value in protected:
            setattr(args, name, value[1:])
    return args


def run(argv) -> int:
    parser = build_parser()
    argv, protected = _protect_leading_minus(argv, parser)
    args = _unprotect(parser.parse_args(argv), protected)
    return args.run(args)


def _derivation(args) -> int:
    from . import output
    from .pipeline import backprop, derive, evaluate_at, parse_values
    at = getattr(args, "at", None)
    values = parse_values(at) if at else None          # bad numbers: exit 2 before the work
    if args.command == "derive":
        d = derive(args.expr, args.wrt, args.where, order=args.order)
    else:
        d = backprop(args.equation, args.wrt, args.where)
    at_values = evaluate_at(d, values) if at else None  # and before anything is printed
    if args.format == "json":
        print(output.derive_json(d, args.command, {"at": at_values} if at else None))
    elif args.format == "text" and args.command == "backprop":
        from .fold import assumptions
        from .shapes import parse_decls
        sys.stdout.write(output.derive_text(d, assumptions(args.assume, parse_decls(args.where))))
    else:
        text = output.FORMATS[args.format](d)
        sys.stdout.write(text + (_at_text(at, at_values) if at else ""))
    return 0


def _check(args) -> int:
    from .check import check
    v = check(args.expr, args.wrt, args.answer, args.where, assume=tuple(args.assume))
    if args.format == "json":
        from .output import strict_json
        print(strict_json(v.json()))
    else:
        print(("RIGHT: " if v.correct else "WRONG: ") + v.reason)
        if v.counterexample and v.counterexample.get("values"):
            print("counterexample values: " + json.dumps(v.counterexample["values"]))
    return 0 if v.correct else 1


def _grade(args) -> int:
    from . import grade as G
    _check_out(args.out, args.problem_file, args.answers)
    fmt = G.format_for(args.format, args.out)
    report = G.grade(args.problem_file, args.answers)
    _write(args.out, G.FORMATS[fmt](report), args.problem_file, args.answers)
    return 0


def _serve(args) -> int:
    from .serve import serve
    return serve(args.host, args.port, args.time_limit)


def _codegen(args) -> int:
    from .codegen import generate, is_problem_file
    if is_problem_file(args.problem_file):
        _check_out(args.out, args.problem_file)
        for option in ("wrt", "where", "params", "name"):
            if getattr(args, option) is not None:
                raise IndexCalcError(f"--{option} is for an equation; a problem file says it itself")
        _write(args.out, generate(args.problem_file, args.target), args.problem_file)
        return 0
    from .modulegen import generate as from_equation
    _check_out(args.out)
    if args.wrt is None:
        raise IndexCalcError("codegen EQUATION needs --wrt (the variables whose gradients the module returns)")
    _write(args.out, from_equation(args.problem_file, args.wrt, args.where, args.target, args.params, args.name))
    return 0


def _solve(args) -> int:
    from pathlib import Path
    from . import solve as S
    out = args.out
    _check_out(out, args.problem_file)             # a bad or input path is said first, as before
    args.format = _solve_format(args.format, out)
    if args.format == "pdf":
        S.require_latex()                  # say so before the work
        out = out or Path(args.problem_file).with_suffix(".pdf").name
    _check_out(out, args.problem_file)     # and so of a bad output file
    ps, solutions = S.solve(args.problem_file)
    if args.format == "text":
        _write(out, S.render_text(ps, solutions), args.problem_file)
    elif args.format == "latex":
        _write(out, S.render_latex(ps, solutions), args.problem_file)
    else:
        _write(out, S.compile_pdf(S.render_latex(ps, solutions)), args.problem_file)
    return 0


def _check_out(path, *inputs) -> None:
    """Before the work: an output file that cannot be written, or that is an input, is exit 2."""
    if path:
        from .files import check_output
        check_output(path, inputs)


def _write(path, data, *inputs):
    """`data` to standard output (no path) or to the file `path`, whole or not at all, never
    over one of `inputs` (files.write_output)."""
    if not path:
        sys.stdout.write(data)
        return
    from .files import announce, write_output
    write_output(path, data, inputs)
    announce(path)


class _Output:
    """Standard output whose failures (a full disk, `> /dev/full`) are bad output paths,
    exit status 2, not internal errors; a reader that left early stays BrokenPipeError."""

    def __init__(self, stream):
        self._stream = stream

    def _guard(self, op, *args):
        try:
            return op(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise IndexCalcError(f"cannot write the output: {e.strerror or e}") from None

    def write(self, text):
        return self._guard(self._stream.write, text)

    def flush(self):
        return self._guard(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stdout = sys.stdout
    sys.stdout = _Output(stdout)
    try:
        status = run(argv)
        sys.stdout.flush()
        return status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:             # the reader left early (`indexcalc ... | head -1`)
        return 1
    except Exception as e:  # noqa: BLE001 - never a traceback for the user
        message, status = describe(e)
        print(message, file=sys.stderr)
        return status
    finally:
        sys.stdout = stdout


_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread(environ) -> None:
    """Ask BLAS for one thread (read when NumPy is first imported), unless `environ` already
    names a thread count."""
    if not any(name in environ for name in _BLAS_THREADS):
        environ["OPENBLAS_NUM_THREADS"] = "1"


def entry() -> None:
    """The console script and `python -m indexcalc`: main(), then leave at once.

    Python's finalisation of a process that has imported SymPy (some 500 modules and their
    caches) takes 60-130 ms, longer than a whole derivation (bench/run.py, cold rows). Once
    main() has returned, every file it wrote is closed and nothing is left to clean up, so
    the process flushes its output and exits without finalising (os._exit).

    BLAS runs on one thread unless the environment says otherwise (OPENBLAS_NUM_THREADS,
    OMP_NUM_THREADS, MKL_NUM_THREADS): the command's numerical work is the guard's few small
    evaluations, and OpenBLAS starting a thread pool per core when NumPy is imported costs
    more than they do (cold `derive`: 10-50 ms of a 0.4 s run, bench/run.py's cold rows), and
    oversubscribes the cores when several commands run side by side."""
    one_blas_thread(os.environ)
    status = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:             # the reader left early (`indexcalc ... | head -1`)
        status = status or 1
    os._exit(status)


if __name__ == "__main__":
    entry()
