"""The exceptions the command line turns into one line, and how a run is told to stop.

Library messages name options by their Python names (``window``, ``out_dir``); the command line
puts its own flag names (``--window``, ``--out``) in their place, so the library never speaks of
flags.
"""
from __future__ import annotations

import contextlib
import importlib
import signal


class DcganError(Exception):
    """A problem with the user's input or files: bad option, missing data, mismatched checkpoint."""


class OptionError(DcganError, ValueError):
    """A bad option value.  ``message`` holds a ``{name}`` field for every option it names.

    ``str(error)`` fills them with the Python names; :meth:`format` with any other naming (the
    command line passes its flags).  Only those fields are replaced, so any other braces (in a
    file name, say) are left as they are.

    Example
    -------
    >>> str(OptionError("window", "{window} must be odd, got 8"))
    'window must be odd, got 8'
    >>> OptionError("window", "{window} must be odd, got 8").format(lambda n: "--" + n)
    '--window must be odd, got 8'
    """

    def __init__(self, options, message):
        self.options = (options,) if isinstance(options, str) else tuple(options)
        self.message = message
        super().__init__(self.format(str))

    def format(self, name_of):
        """The message with every option named by ``name_of(option)``."""
        message = self.message
        for option in self.options:
            message = message.replace("{" + option + "}", name_of(option))
        return message


class Note(UserWarning):
    """Something the user should know that is not an error (the command line prints it as
    ``note: ...``): a fallback taken, a default that could not apply."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT: Ctrl-C, SIGTERM: a scheduler, ``docker stop``).

    It is a KeyboardInterrupt, so the code that saves work on Ctrl-C saves it on SIGTERM too.
    ``exit_code`` is the shell's convention, 128 + the signal number (130, 143).
    """

    def __init__(self, signum=signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self):
        return 128 + self.signum


def exit_code_of(interrupt):
    """The exit status for a KeyboardInterrupt: 143 for SIGTERM, 130 for Ctrl-C."""
    return interrupt.exit_code if isinstance(interrupt, Interrupted) else 128 + signal.SIGINT


@contextlib.contextmanager
def signals_interrupt(received=None, signums=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread.

    So ``finally`` blocks run (temporary files are removed) and ``train`` checkpoints before it
    stops, whichever of the two signals arrived.  Outside the main thread this does nothing.

    Each signal's number is also appended to ``received`` (a list), if given: a signal that
    lands while a library's C code is calling back into Python (TensorFlow building a model,
    an import) can come out of that code as another exception (``SystemError``,
    ``AssertionError``), and the caller still needs to know the run was stopped.
    """
    def handler(signum, frame):
        if received is not None:
            received.append(int(signum))
        raise Interrupted(signum)

    with signal_handlers(handler, signums):
        yield


@contextlib.contextmanager
def signals_deferred(signums=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, SIGINT and SIGTERM wait: the first one received is raised as
    :class:`Interrupted` once the block ends.  Around a training step and its count, so that a
    checkpoint written on Ctrl-C is labelled with the step its weights are at (a signal landing
    after the weights moved but before the count did left the label one behind)."""
    received = []
    with signal_handlers(lambda signum, frame: received.append(int(signum)), signums):
        yield
    if received:
        raise Interrupted(received[0])


def signals_ignored(signums=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, SIGINT and SIGTERM are ignored: a second Ctrl-C or a scheduler's repeated
    SIGTERM cannot break the checkpoint being written."""
    return signal_handlers(signal.SIG_IGN, signums)


@contextlib.contextmanager
def signal_handlers(handler, signums=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, ``handler`` (a function, ``SIG_IGN`` or ``SIG_DFL``) handles
    ``signums``; the previous handlers come back after it.  Outside the main thread, where no
    signal arrives, this does nothing."""
    previous = {}
    try:
        for signum in signums:
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


# --------------------------------------------------------------------------------------------
# optional libraries

EVAL_EXTRA = "pip install 'dcgan-complete[eval]'"
_DISTRIBUTIONS = {"skimage": "scikit-image", "cv2": "opencv-python-headless"}
_EVAL_EXTRA_MODULES = ("skimage", "matplotlib")


class MissingDependencyError(DcganError, ImportError):
    """An optional library (scikit-image, of the ``eval`` extra) is not installed."""


def import_optional(name, purpose):
    """Import the module ``name`` of an optional library, or say how to install it.

    Parameters
    ----------
    name : str
        A module of scikit-image or OpenCV, e.g. ``"skimage.metrics"`` or ``"cv2"``.
    purpose : str
        What needs it, for the message (``"SSIM"``).

    Raises
    ------
    MissingDependencyError
        If the library cannot be imported; the message says how to install it (OpenCV is
        one of the package's own dependencies; scikit-image comes with the ``eval`` extra).
    """
    top = name.split(".")[0]
    try:
        importlib.import_module(top)  # a module cached in sys.modules hides a missing parent
        return importlib.import_module(name)
    except ImportError:
        package = _DISTRIBUTIONS.get(top, top)
        remedy = EVAL_EXTRA if top in _EVAL_EXTRA_MODULES else f"pip install {package}"
        raise MissingDependencyError(
            f"{purpose} needs {package}, which is not installed: {remedy}") from None
