"""One error base class. The CLI turns each into a message and an exit status."""


class IndexCalcError(Exception):
    """Bad input or an unsupported request: exit status 2."""
    exit_status = 2


class ParseError(IndexCalcError):
    """The input does not parse; the message shows the input with a caret."""

    def __init__(self, message: str, text: str = "", column: int | None = None):
        self.text, self.column, self.reason = text, column, message
        if column is not None and text:
            message = f"{message}\n  {text}\n  {' ' * max(column - 1, 0)}^"
            message = f"column {column}: " + message
        super().__init__(message)


class ShapeError(IndexCalcError):
    """Shapes that do not fit together; the message names both shapes."""


class UnsupportedError(IndexCalcError):
    """A construct the language has but this version cannot derive, or one it does not have."""


class VerificationError(IndexCalcError):
    """The numerical guard rejected indexcalc's own result: a bug in indexcalc."""
    exit_status = 3


def describe(e: BaseException) -> tuple[str, int]:
    """(the message the user sees, the exit status) for an exception out of a command: one
    place for this text, shared by the command line and the web page (`indexcalc serve`).
    Messages quote input and files: control characters are shown, never sent (`visible`)."""
    message, status = _describe(e)
    return visible(message), status


def _describe(e: BaseException) -> tuple[str, int]:
    if isinstance(e, IndexCalcError):
        kind = "internal check failed" if e.exit_status == 3 else "error"
        return f"indexcalc: {kind}: {e}", e.exit_status
    if isinstance(e, RecursionError):
        return "indexcalc: error: the expression is nested too deeply", 2
    if isinstance(e, MemoryError):
        return "indexcalc: error: out of memory (are the declared sizes too large?)", 2
    return f"indexcalc: internal error (a bug, please report it): {type(e).__name__}: {e}", 3


def visible(text: str) -> str:
    """Control characters (an escape sequence would reach the terminal) as their visible
    pictures, one character each so a caret stays under its column: ESC as ␛, DEL as ␡; newlines
    and tabs stay."""
    return text.translate(_PICTURES)


_PICTURES = {c: 0x2400 + c for c in range(0x20) if chr(c) not in "\n\t"}
_PICTURES.update({0x7F: 0x2421, **{c: 0xFFFD for c in range(0x80, 0xA0)}})
