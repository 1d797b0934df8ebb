"""Writing files safely: the one atomic writer, output folders checked before the work, and
file names that can be printed whatever bytes they hold.

Every file the package writes (images, GIFs, CSV and JSON reports, checkpoints, weights) goes
through :func:`atomic_write`: the data go to ``.tmp-PID-RANDOM-NAME`` beside the target, which
is renamed over the target only once complete, and removed on any failure (an exception, Ctrl-C,
SIGTERM), so no half-written file is ever left under the target's name.  Only a process killed
outright (``kill -9``, the out-of-memory killer, a power cut) cannot remove its temporary file:
the next run that writes into that folder does (:func:`remove_stale_temporaries`).  Outputs
follow the umask like any other file (no ``mkstemp`` 0600 modes).  An ``OSError`` becomes a
one-line :class:`~dcgan_complete.errors.DcganError` naming the target.

A run that owns a folder for its whole length (``train`` and ``train-encoder``: their checkpoint
folder) holds :class:`FolderLock` on it, so that a second run on the same folder is refused at
its start instead of both writing checkpoints over each other's.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import re
import stat
import threading
import time
import uuid
from pathlib import Path

from dcgan_complete.errors import DcganError, OptionError

try:
    import fcntl
except ImportError:  # Windows: runs on one folder go unguarded (FolderLock)
    fcntl = None

TEMP_PREFIX = ".tmp-"
# .tmp-PID-8 hex digits-NAME, as temporary_path makes them
TEMP_PATTERN = re.compile(r"^\.tmp-(\d{1,10})-[0-9a-f]{8}-.")
# A temporary file whose process is not running here is stale if it was last changed before this
# process started, or this long ago: a writer on another machine sharing the folder (its PID
# means nothing here) is still changing its file.
STALE_SECONDS = 600
LOCK_FILE = ".dcgan-complete.lock"

_STARTED = time.time()  # this process's start, near enough: when the package was imported
_swept = set()  # the folders this process has cleaned of stale temporary files already


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
    it was; an ``OSError`` is raised again as a :class:`DcganError` naming ``path``.  The first
    write into a folder removes the temporary files that killed processes left there
    (:func:`remove_stale_temporaries`).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DcganError(os_error_message(exc, path.parent)) from None
    remove_stale_temporaries(path.parent)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise DcganError(os_error_message(exc, path)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def remove_stale_temporaries(folder):
    """Remove from ``folder`` the temporary files of writers that were killed mid-write.

    A file is removed only if its name is one :func:`temporary_path` makes, it is a regular
    file, the process its name gives is not running on this machine, and it was last changed
    before this process started or :data:`STALE_SECONDS` ago (a writer on another machine that
    shares the folder keeps changing its file).  Nothing else in the folder is ever touched.
    Each folder is looked at once per process, at the first write into it.

    Returns
    -------
    list of Path
        The files removed.
    """
    key = os.path.abspath(folder)
    if key in _swept:
        return []
    if len(_swept) > 10000:  # a long-lived process (serve) writes into a new folder per request
        _swept.clear()
    _swept.add(key)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_PATTERN.match(entry.name)
        if not match:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or _running(int(match.group(1))):
                continue
            if info.st_mtime >= max(_STARTED, time.time() - STALE_SECONDS):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def _running(pid):
    """Whether a process ``pid`` runs on this machine (or might: when it cannot be told)."""
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # another user's process, or not a PID
        return True
    return True


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
    under a file, a full disk) fails at once in one line instead of after the work.  The
    temporary files that killed runs left in it are removed (:func:`remove_stale_temporaries`).

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
        remove_stale_temporaries(path)
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


class FolderLock:
    """This process's claim on a folder for a whole run: a second run is refused at its start.

    The claim is a lock (``flock``) on ``FOLDER/.dcgan-complete.lock``, which holds the PID and
    the command of the run that has it, and is removed when the run lets go.  The system releases
    the lock when that process ends however it ends (``kill -9`` included, which leaves the file),
    so a stale claim never blocks a later run.  Within one process the claim is shared: a second
    FolderLock on the same folder (a Trainer built again to resume) takes it without waiting.
    Where the file system takes no locks, runs go unguarded.

    Parameters
    ----------
    folder : str or Path
        An existing folder.
    command : str
        What holds it, for the message a second run shows (``train``, ``train-encoder``).
    option : str, optional
        The option that named the folder: the refusal is then an OptionError naming it.

    Raises
    ------
    OptionError or DcganError
        If another process holds the folder: "{option} FOLDER is in use by another run
        (train, PID 1234): wait for it to end, or choose another {option}".

    Example
    -------
    >>> with FolderLock("run1", "train", "checkpoint_dir"):  # doctest: +SKIP
    ...     train_in("run1")
    """

    _held = {}  # folder -> [descriptor, number of FolderLocks of this process on it]
    _guard = threading.Lock()

    def __init__(self, folder, command, option=None):
        self.folder = Path(folder)
        self._key = os.path.realpath(self.folder)
        self._active = False
        with self._guard:
            held = self._held.get(self._key)
            if held is not None:
                held[1] += 1
            else:
                self._held[self._key] = [self._acquire(command, option), 1]
        self._active = True

    def _acquire(self, command, option):
        path = self.folder / LOCK_FILE
        for _ in range(100):  # in practice once; again only when the holder let go meanwhile
            cloexec = getattr(os, "O_CLOEXEC", 0)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | cloexec, 0o666)
            except PermissionError:  # another user's file: it can be locked all the same
                try:
                    fd = os.open(path, os.O_RDONLY | cloexec)
                except OSError as exc:
                    raise DcganError(os_error_message(exc, path)) from None
            except OSError as exc:
                raise DcganError(os_error_message(exc, path)) from None
            if fcntl is None:
                return fd
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return fd  # the file system takes no locks: nothing to guard with
                holder = _read_holder(fd)
                os.close(fd)
                self._refuse(holder, option)
            # The holder before us removes the file as it lets go: if it did so after we opened
            # it, our lock is on a file no later run will see.  Then try again on the new one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        else:
            raise DcganError(f"cannot lock {display_name(path)}: it is replaced all the time")
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        return fd

    def _refuse(self, holder, option):
        where = display_name(self.folder)
        named, other = (f"{{{option}}} {where}", f"another {{{option}}}") if option else \
            (where, "another folder")
        message = f"{named} is in use by another run ({holder}): wait for it to end, or " \
                  f"choose {other}"
        if option:
            raise OptionError(option, message) from None
        raise DcganError(message) from None

    def release(self):
        """Give the claim up (once the last FolderLock of this process on the folder does)."""
        if not self._active:
            return
        self._active = False
        with self._guard:
            held = self._held.get(self._key)
            if held is None:
                return
            held[1] -= 1
            if held[1] == 0:  # the folder is left as it was found: the file goes, then the lock
                del self._held[self._key]
                with contextlib.suppress(OSError):
                    if fcntl is not None and os.path.samestat(
                            os.fstat(held[0]), os.stat(self.folder / LOCK_FILE,
                                                       follow_symlinks=False)):
                        os.unlink(self.folder / LOCK_FILE)
                with contextlib.suppress(OSError):
                    os.close(held[0])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.release()


def _read_holder(fd):
    """"COMMAND, PID N" from a lock file's contents, or what can be said without them."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        text = []
    if text and text[0].isdigit():
        command = " ".join(text[1:]) or "a run"
        return f"{command}, PID {text[0]}"
    return "its PID is not recorded yet"
