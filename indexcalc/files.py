"""Files indexcalc writes: every output whole or not at all, never over an input (SPEC §4),
and the per-user cache directory.

`check_output` runs before the work (a bad `-o` costs nothing); `write_output` writes through
a temporary file in the target's own directory and renames it over the target, so a failed
write (a full disk, an interrupt) leaves the old file as it was. A target that exists and is
not a regular file (`/dev/stdout`, `/dev/full`, a pipe) is written directly: there is nothing
to keep, and a rename would replace the device itself.
"""
from __future__ import annotations

import os
import stat
import sys
import tempfile

from .errors import IndexCalcError


def read_text(path, what: str) -> str:
    """An input file's text (UTF-8, a BOM allowed), or exit status 2 with the file named and
    what it was meant to be (`what`: "problem file", "answers file"): missing, a directory,
    unreadable, not UTF-8 (with the line and the byte), or holding a NUL (not a text file)."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise IndexCalcError(f"no {what} {name}") from None
    except IsADirectoryError:
        article = "an" if what[:1] in "aeiou" else "a"
        raise IndexCalcError(f"{name} is a directory, not {article} {what}") from None
    except OSError as e:
        raise IndexCalcError(f"cannot read {name}: {e.strerror}") from None
    try:
        text = data.decode("utf-8-sig")             # a BOM (Windows editors) is fine
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise IndexCalcError(f"{name}, line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}); "
                             f"save the {what} as UTF-8") from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise IndexCalcError(f"{name}, line {line}: a NUL character; this is not a text file")
    return text


def _real(path) -> str:
    return os.path.realpath(os.fspath(path))


def _same(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _real(a) == _real(b)


def check_output(path, inputs=()) -> None:
    """Exit status 2 unless `path` can be an output file: not a directory, in a directory
    that exists, and not one of `inputs` (by the file itself, through links too)."""
    path = os.fspath(path)
    if not path:
        raise IndexCalcError("the output file name is empty")
    for inp in inputs:
        if inp is not None and _same(path, inp):
            raise IndexCalcError(f"the output {path} is the input file {inp}; "
                                 "name another output file with -o")
    real = _real(path)
    if os.path.isdir(real) or path.endswith(os.sep):
        raise IndexCalcError(f"cannot write {path}: it is a directory; name a file")
    parent = os.path.dirname(real) or "."
    if not os.path.isdir(parent):
        shown = os.path.dirname(path) or "."
        if os.path.exists(parent):                   # -o notes.txt/out.py: a file, not a folder
            raise IndexCalcError(f"cannot write {path}: {shown} is a file, not a directory")
        raise IndexCalcError(f"cannot write {path}: the directory {shown} does not exist")


def write_output(path, data, inputs=()) -> None:
    """Write `data` (str, as UTF-8, or bytes) to `path` whole or not at all."""
    check_output(path, inputs)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    real = _real(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise IndexCalcError(f"cannot write {path}: {e.strerror}") from None
    try:
        if st is not None and not stat.S_ISREG(st.st_mode):
            with open(real, "wb") as f:          # a device or a pipe: nothing to keep
                f.write(payload)
            return
        _replace(real, payload, st.st_mode if st is not None else None)
    except OSError as e:
        raise IndexCalcError(f"cannot write {path}: {e.strerror or e}") from None


def _replace(real: str, payload: bytes, mode) -> None:
    directory, name = os.path.split(real)
    fd, tmp = tempfile.mkstemp(dir=directory or ".", prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(mode) if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, real)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def announce(path) -> None:
    print(f"wrote {path}", file=sys.stderr)


# ---- the per-user cache ------------------------------------------------------------------------
def user_cache_dir() -> str | None:
    """`$XDG_CACHE_HOME/indexcalc` (default `~/.cache/indexcalc`), created with mode 0700 and
    used only if it is a real directory (not a link) owned by this user that nobody else can
    write to; None otherwise (then nothing is cached)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    path = os.path.join(base, "indexcalc")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return None
    return path if _private(st, directory=True) else None


def _private(st, directory: bool) -> bool:
    kind = stat.S_ISDIR if directory else stat.S_ISREG
    uid = os.getuid() if hasattr(os, "getuid") else st.st_uid
    return kind(st.st_mode) and st.st_uid == uid and not (st.st_mode & (0o077 if directory else 0o022))


def read_private(path) -> bytes | None:
    """A cache file's bytes if it is a regular file of this user's that nobody else can
    write (opened without following links); None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not _private(os.fstat(f.fileno()), directory=False):
            return None
        return f.read()


def write_private(path, payload: bytes) -> None:
    """Write a cache file atomically with mode 0600; any failure is ignored (it is a cache)."""
    directory, name = os.path.split(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
