"""Writing files safely: the one atomic writer, output folders checked before the work, and
file names that can be printed whatever bytes they hold.

Every file the package writes (images, GIFs, CSV and JSON reports, checkpoints, weights) goes
through :func:`atomic_write`: the data go to ``.tmp-PID-RANDOM-NAME`` beside the target, which
is renamed over the target only once complete, and removed on any failure, so a crash, a full
disk or a kill never leaves a half-written file or a stray temporary one.  Outputs follow the
umask like any other file (no ``mkstemp`` 0600 modes).  An ``OSError`` becomes a one-line
:class:`~dcgan_complete.errors.DcganError` naming the target.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import uuid
from pathlib import Path

from dcgan_complete.errors import DcganError, OptionError

TEMP_PREFIX = ".tmp-"


def display_name(path):
    """``path`` as printable text: bytes that are not UTF-8 shown as ``\\xNN`` escapes.

    Example
    -------
    >>> display_name(os.fsdecode(b"caf\\xe9.png"))
    'caf\\\\xe9.png'
    """
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def os_error_message(exc, path=None):
    """One line for an ``OSError``: what failed and on which file."""
    target = path if path is not None else (exc.filename or "")
    reason = exc.strerror or exc.__class__.__name__
    return f"cannot write {display_name(target)}: {reason}"


def temporary_path(path):
    """The hidden temporary name beside ``path`` that :func:`atomic_write` writes to.  It ends
    with the target's full name, so writers that choose a format by extension still do."""
    path = Path(path)
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path to write ``path``'s contents to; rename it into place on success.

    On any exception (including Ctrl-C) the temporary file is removed and the target is left as
    it was; an ``OSError`` is raised again as a :class:`DcganError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DcganError(os_error_message(exc, path.parent)) from None
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise DcganError(os_error_message(exc, path)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically, synced to disk before the rename."""
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def write_text(path, text):
    """Write ``text`` to ``path`` atomically, as UTF-8."""
    return write_bytes(path, text.encode("utf-8"))


def write_csv(path, header, rows):
    """Write a CSV file atomically; every cell is made printable (see :func:`display_name`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([display_name(v) if isinstance(v, (str, Path)) else v for v in row])
    return write_text(path, buffer.getvalue())


def ensure_writable_dir(path, option=None):
    """Create the folder ``path`` if needed and check that files can be written in it.

    Called before any long work, so that a folder that cannot be written (no permission, a path
    under a file, a full disk) fails at once in one line instead of after the work.

    Parameters
    ----------
    path : str or Path
    option : str, optional
        The option that named the folder (``out_dir``): the error is then an OptionError, which
        the command line reports with its flag.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = temporary_path(path / "write-check")
        with open(probe, "wb") as f:
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        if isinstance(exc, (FileExistsError, NotADirectoryError)) or \
                (path.exists() and not path.is_dir()):
            reason = "a file is in the way (not a folder)"
        where = display_name(path)
        if option:
            raise OptionError(option, f"cannot write to {{{option}}} {where}: {reason}") from None
        raise DcganError(f"cannot write to {where}: {reason}") from None
    return path


def is_inside(path, folder):
    """Whether ``path`` is ``folder`` or lies anywhere below it (both resolved)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents
