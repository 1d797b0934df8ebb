"""``dcgan-complete serve``: a local web page that repairs damaged photos and faces.

The page is a Gradio app (the optional ``app`` extra).  An upload is searched by the damage
detector, when there is one, and what it finds is painted as the editor's mask layer; the brush
adds to it, the eraser takes away, "Find damage" runs the detector again at another threshold,
and a mask kind is painted into the layer in every face's frame.  Complete repairs it: an upload
of the model's size is an aligned crop, searched as it is; any other is a photo, repaired at its
own size as ``complete`` repairs it (:class:`~dcgan_complete.photo.PhotoRepairer`): its faces by
the model, the rest of the mask by Telea, every other pixel unchanged.  While the search runs the
page shows the iteration, the loss and the (largest) face's crop as it fills; then the photo
before and after in a slider, masked | completed | G(z) of the face, one line per face (the
model's or Telea's), and the downloads: the repaired photo as PNG and JPEG at full size, the mask
used and the GIF of the search.  With "Alternatives" above 1, several fills from starts kept
apart (``CompleteOptions.variants``) are shown to pick from, with their spread map.  Pictures
sent to the browser are at most :data:`PREVIEW_SIDE` px; downloads are full size.

It runs offline: no CDN, no analytics, no share link.  Requests queue: ``concurrency`` searches
run at once (one by default), ``queue_size`` more wait and are told their place, and one more is
told that the queue is full.  A bad upload (not an image, empty, too large, a mask that covers
nothing) or a bad value of the form (checked as the command line checks its options) gets a
one-line message under the Complete button, there until the next request, and the server keeps
serving.  Each session's downloads stay until the session ends (its tab is closed) or an hour
after its last result; :func:`serve` keeps every file in one temporary folder, removed when the
server stops.

Example
-------
>>> from dcgan_complete.search import load_completer
>>> from dcgan_complete.app import build_app
>>> build_app(load_completer()).launch()   # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import queue
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.files import display_name
from dcgan_complete.classical import HOLE_GRAY
from dcgan_complete.options import (OPTIMIZERS, CompleteOptions, DetectOptions, MaskOptions,
                                    PhotoOptions, ServeOptions)
from dcgan_complete.search import Completer

APP_EXTRA = "pip install 'dcgan-complete[app]'"
TITLE = "dcgan-complete"

# The mask menu: the brush alone, or a kind whose holes are added to the brush strokes (not
# "full", which has none, nor "lowres", whose mask is coarser than the image).
BRUSH_ONLY = "brush strokes only"
PAGE_MASK_KINDS = tuple(k for k in mask_lib.MASK_KINDS if k not in ("full", "lowres"))

# A pixel is known only where (almost) no paint touched it: the soft edge of a stroke is damage.
# Uploaded mask layers follow the same rule (white = known, black = fill).
PAINT_THRESHOLD = 250

# What one request may ask for, so that one user cannot hold the server for hours.
MAX_ITERATIONS = 5000
MAX_RESTARTS = 16

# Gradio drops the page's uploads and pictures this long after they were made; a session's
# downloads go when it ends (its tab is closed), or this long after its last result (a caller
# without a tab never ends its session).
KEEP_FILES_SECONDS = 3600

# The results are shown this tall, in pixels, without smoothing: the model's pixels as they are.
RESULT_HEIGHT = 240

# A picture the page sends the browser (the before/after, the alternatives, the spread map) is at
# most this many pixels on its longer side: a 2-megapixel photo is shown at its own size, a
# 12-megapixel one shrunk to about 3; the downloads are always at the photo's size.
PREVIEW_SIDE = 2048

# How many fills to choose from the page offers at most (each costs a search's starts).
MAX_PAGE_VARIANTS = 6
PAGE_CSS = (".result img { width: 100%; height: 100%; object-fit: contain; "
            "image-rendering: pixelated; }")

# The search options as the page's form names them (in its messages).
FORM_LABELS = {"lam": "lambda", "optimizer": "optimiser"}


class UploadError(DcganError):
    """A request the page cannot work on; the message is shown on the page as it is."""


def import_gradio():
    """Import Gradio with everything that would reach the network switched off.

    Raises
    ------
    DcganError
        When Gradio is not installed, naming the extra that brings it.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import gradio
    except ImportError:
        raise DcganError(f"the web page needs Gradio: {APP_EXTRA}") from None
    return gradio


# ------------------------------------------------------------------------------------ uploads
def _upload_path(file):
    """The server-side path of an uploaded file: Gradio's FileData (a dict) or a plain path."""
    if isinstance(file, dict):
        return file.get("path"), file.get("orig_name") or Path(file.get("path") or "").name
    if isinstance(file, (str, os.PathLike)):
        return str(file), Path(file).name
    return None, None


def read_upload(file, max_megapixels=ServeOptions.max_megapixels):
    """Read an uploaded image as uint8 RGB, refusing what the page cannot use.

    Parameters
    ----------
    file : dict (Gradio FileData) or path
    max_megapixels : float
        Larger images are refused from their header, before they are decoded.

    Returns
    -------
    image : uint8 array (H, W, 3)
    name : str
        The name the user's file had (not the server's temporary one).

    Raises
    ------
    UploadError
        With a message that names the user's file, never a server path.
    """
    path, name = _upload_path(file)
    if not path:
        raise UploadError("upload a face first (or pick a sample below the editor)")
    shown = display_name(name)
    if os.path.getsize(path) == 0:
        raise UploadError(f"{shown} is empty (0 bytes)")
    width, height = imgs.image_size(path) or (0, 0)  # the header alone, not the pixels
    if width * height > max_megapixels * 1e6:
        raise UploadError(f"{shown} is too large: {width}x{height} is "
                          f"{width * height / 1e6:.0f} megapixels; the page takes up to "
                          f"{max_megapixels:g}")
    try:
        image = imgs.read_image(path, max_megapixels=max_megapixels)
    except imgs.ImageReadError as exc:
        raise UploadError(str(exc).replace(display_name(path), shown)) from None
    return image, name


def painted_known(layers, shape, max_megapixels=ServeOptions.max_megapixels):
    """Where no brush stroke is: a bool array of ``shape`` (H, W), True = known pixel.

    ``layers`` are the editor's layers: images whose transparent or white pixels are known and
    whose painted (dark) pixels are to fill; an uploaded white/black mask works the same way.
    """
    known = np.ones(shape, bool)
    for layer in layers or ():
        pixels, name = read_upload(layer, max_megapixels)
        if pixels.shape[:2] != shape:
            raise UploadError(f"the mask {display_name(name)} is {pixels.shape[1]}x"
                              f"{pixels.shape[0]}, the image {shape[1]}x{shape[0]}")
        known &= pixels.astype(np.float32).mean(axis=2) >= PAINT_THRESHOLD
    return known


def mask_layer(known):
    """The editor's mask layer for ``known`` (bool (H, W), True = known): opaque black where the
    page is to fill, transparent elsewhere, as the brush paints (uint8 RGBA (H, W, 4))."""
    layer = np.zeros((*known.shape, 4), np.uint8)
    layer[~known, 3] = 255
    return layer


def editor_value(background, layer_path=None):
    """The editor's value: the upload as it is (``background``: its FileData or path) and one
    mask layer (a PNG's path) or none."""
    if isinstance(background, dict):
        background = background.get("path")
    return {"background": background, "layers": [str(layer_path)] if layer_path else [],
            "composite": None}


def shrink_for_page(image, side=PREVIEW_SIDE):
    """``image`` at most ``side`` px on its longer side, for the browser (downloads stay full
    size)."""
    import cv2

    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    scale = side / max(h, w)
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


@dataclasses.dataclass
class PageInput:
    """One request, ready for the search: an aligned face at the model's size, or a photo at its
    own size (``photo``), and its mask."""

    image: np.ndarray   # uint8 (H, W, 3): (S, S, 3) for an aligned crop
    mask: np.ndarray    # float32 (H, W), 1 = known
    name: str           # for the downloads
    note: str = ""      # what was done to the upload, for the page
    photo: bool = False  # repaired at its own size by the photo pipeline (faces found in it)
    kind: str = None    # a photo's mask kind, drawn in every face's frame once its faces are found


def is_photo(image, size):
    """An upload of any size but the model's is a photo, as ``complete --input auto`` takes it."""
    return image.shape[:2] != (size, size)


def prepare_input(editor, kind, size, seed=None, max_megapixels=ServeOptions.max_megapixels,
                  mask_options: MaskOptions | None = None):
    """Turn the editor's value (background + brush layers) and the mask menu into a PageInput.

    The downloads are named after the background's file; the browser's editor sends its own
    name ("background"), and then they are "photo-completed" or "face-completed".

    An upload of the model's size is an aligned crop, searched as it is; any other is a photo,
    repaired at its own size (:func:`repair_live`).

    Raises
    ------
    UploadError
        For a missing or unreadable upload, a mask that covers nothing or everything.
    """
    editor = editor or {}
    if not isinstance(editor, dict):  # a plain image (path) from the API: no strokes
        editor = {"background": editor}
    image, name = read_upload(editor.get("background"), max_megapixels)
    mask = painted_known(editor.get("layers"), image.shape[:2],
                         max_megapixels).astype(np.float32)
    photo = is_photo(image, size)
    if kind in (None, "", BRUSH_ONLY):
        kind = None
    elif kind not in PAGE_MASK_KINDS:
        raise UploadError(f"unknown mask {kind!r}; choose {BRUSH_ONLY} or one of "
                          f"{', '.join(PAGE_MASK_KINDS)}")
    elif not photo:
        params = (mask_options or MaskOptions()).params()
        mask = mask * mask_lib.make_mask(kind, size, rng=seed, **params)
    if mask.min() >= 0.5 and not (photo and kind):
        raise UploadError("nothing to fill: paint over the damage with the brush, or choose a "
                          "mask kind")
    if mask.max() < 0.5:
        raise UploadError(f"the mask covers the whole {'photo' if photo else 'face'}: leave "
                          "some of it unpainted")
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem)[:40]
    if stem in ("", "background"):  # the editor's own name for its canvas
        stem = "photo" if photo else "face"
    note = ""
    if photo:
        note = (f"Your image is {image.shape[1]}x{image.shape[0]}: a photo. Its faces are found "
                f"and repaired by the model at {size}x{size}, the rest of the hole by Telea; "
                "every pixel you did not paint stays as it is.")
    return PageInput(image, mask, f"{stem}-completed", note, photo, kind if photo else None)


# ----------------------------------------------------------------------------------- searching
class LiveCompleter(Completer):
    """A Completer that lets its progress callback see the search's current state, so the page
    can show the completion as it forms.  The state is kept per thread: several searches may
    share one LiveCompleter."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._live = threading.local()

    def search(self, state, targets, iterations):
        self._live.state = super().search(state, targets, iterations)
        return self._live.state

    def current_paste(self, image, mask):
        """G(z) of the current first start pasted into the holes of ``image`` (no blending:
        cheap enough to show every chunk)."""
        generated = imgs.to_uint8(self.generate(self._live.state.z[:1])[0])
        return np.where(mask[..., None] >= 0.5, image, generated)


class Searches:
    """The compiled searches of one model, one per value of the options compiled into a search
    (``Completer.TRACED_OPTIONS``).  A request gets a twin of one with its own options
    (:meth:`Completer.with_options`): its seed, lambda, iterations and restarts cost no new
    trace.  Of the traced options the page's form changes only the optimiser, so there are at
    most ``len(OPTIMIZERS)`` searches, however many values the requests bring.
    """

    def __init__(self, completer: Completer):
        self.base = completer
        self._lock = threading.Lock()
        self._compiled = {}

    def options(self, **changes):
        """The base completer's options with ``changes``; raises UploadError when invalid."""
        try:
            return dataclasses.replace(self.base.options, **changes)
        except OptionError as exc:
            raise UploadError(exc.format(lambda name: FORM_LABELS.get(name, name))) from None

    def get(self, options: CompleteOptions) -> LiveCompleter:
        key = tuple(getattr(options, name) for name in Completer.TRACED_OPTIONS)
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = LiveCompleter(
                    self.base.generator, self.base.discriminator,
                    dataclasses.replace(options, init=self.base.init),
                    getattr(self.base, "encoder", None))
            return self._compiled[key].with_options(options)


class SessionFiles:
    """The downloads of each session of the page, in a folder of its own under ``root``, until
    the session ends (:meth:`end`: its tab was closed, its client went away) or ``keep_seconds``
    after its last request.

    Each request writes to a new folder, so a link the page has shown keeps its file.  ``root``
    goes when the server stops (:func:`running`); without it, a temporary folder is made.
    """

    def __init__(self, root=None, keep_seconds=KEEP_FILES_SECONDS):
        self._temp = None if root else tempfile.TemporaryDirectory(prefix="dcgan-complete-page-")
        self.root = Path(root or self._temp.name)
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._folders, self._used = {}, {}

    def new_folder(self, session):
        """An empty folder for one request of ``session`` (its hash); the sessions idle for
        ``keep_seconds`` or more end first."""
        now = time.monotonic()
        for idle in [s for s, used in list(self._used.items())
                     if now - used >= self.keep_seconds and s != session]:
            self.end(idle)
        with self._lock:
            if session not in self._folders:
                self._folders[session] = Path(tempfile.mkdtemp(prefix="session-", dir=self.root))
            self._used[session] = now
            return Path(tempfile.mkdtemp(prefix="request-", dir=self._folders[session]))

    def end(self, session):
        """Remove the downloads of ``session``."""
        with self._lock:
            folder = self._folders.pop(session, None)
            self._used.pop(session, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


class Aligners:
    """dlib's face detectors and landmark model (:class:`~dcgan_complete.align.FaceAligner`),
    lent to one request at a time and loaded only when all are out: as many as requests run at
    once, not one per thread (Gradio runs handlers on a pool of threads)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._free = []

    @contextlib.contextmanager
    def lend(self):
        with self._lock:
            aligner = self._free.pop() if self._free else None
        if aligner is None:
            from dcgan_complete.align import FaceAligner

            aligner = FaceAligner()
        try:
            yield aligner
        finally:
            with self._lock:
                self._free.append(aligner)


class _Stopped(Exception):
    """The page went away (Stop, closed tab): the search ends at its next chunk."""


@dataclasses.dataclass
class Progress:
    """Where a search stands, after a chunk of iterations."""

    iterations: int
    total: int
    loss: float
    preview: np.ndarray  # uint8 (S, S, 3): the completion as it stands


def _live(work, stop: threading.Event):
    """Run ``work(progress)`` in a thread of its own; yield what ``progress`` puts out (the
    :class:`Progress` of each chunk) and ``work``'s result last.

    ``progress(event)`` raises when ``stop`` is set, so the search ends at its next chunk;
    closing the generator (the page went away) sets ``stop``.
    """
    events = queue.Queue()

    def progress(event):
        if stop.is_set():
            raise _Stopped()
        if event is not None:
            events.put(event)

    def run():
        try:
            events.put(work(progress))
        except BaseException as exc:  # handed to the page's thread, raised there
            events.put(exc)

    thread = threading.Thread(target=run, name="dcgan-complete-search", daemon=True)
    thread.start()
    try:
        while True:
            event = events.get()
            if isinstance(event, _Stopped):
                return
            if isinstance(event, BaseException):
                raise event
            yield event
            if not isinstance(event, Progress):
                return
    finally:
        stop.set()


def _chunks(completer: LiveCompleter, image, mask, put):
    """The ``progress`` callback of :meth:`Completer.complete` that hands ``put`` a
    :class:`Progress` per chunk, its preview ``image`` with the current G(z) in its holes."""
    total = completer.options.iterations
    done = 0

    def progress(images_done, loss, iterations):
        nonlocal done
        done += iterations
        put(None if images_done else  # the last call comes with the result itself
            Progress(min(done, total), total, loss, completer.current_paste(image, mask)))

    return progress


def search_live(completer: LiveCompleter, page: PageInput, stop: threading.Event):
    """Run the search for one aligned face in a thread of its own; yield a :class:`Progress`
    after every ``out_interval`` iterations and the CompletionResult last.

    Closing the generator (the page went away) or setting ``stop`` ends the search at its next
    chunk.
    """
    return _live(lambda put: completer.complete(
        page.image[None], [page.mask], frames=True,
        progress=_chunks(completer, page.image, page.mask, put)), stop)


def repair_live(completer: LiveCompleter, page: PageInput, stop: threading.Event,
                mask_options: MaskOptions | None = None, aligner=None):
    """Repair a photo at its own size as ``complete`` does (:class:`PhotoRepairer`: its faces
    by the model, the rest of the hole by Telea), in a thread of its own; yield a
    :class:`Progress` per chunk (its preview: the largest face's crop as it fills) and the
    PhotoRepair last.  ``stop`` and closing the generator end it as :func:`search_live`.
    """
    from dcgan_complete.photo import PhotoRepairer, kind_hole

    def work(put):
        repairer = PhotoRepairer(completer, aligner=aligner)
        seed = completer.options.seed
        rng = np.random.default_rng(seed)  # as PhotoRepairer.repair draws its kinds and grain
        known, frames = page.mask, None
        if page.kind:  # the kind is drawn in the frames of the faces found despite the strokes
            frames, _ = repairer.find_faces(page.image, page.mask >= 0.5)
            params = (mask_options or MaskOptions()).params()
            known = known * ~kind_hole(frames, page.kind, page.image.shape[:2], rng, **params)
        plan = repairer.plan(page.image, known, rng, frames=frames)  # faces looked for once
        progress = None
        if plan.faces:
            progress = _chunks(completer, plan.faces[0].crop, plan.faces[0].mask, put)
        [part] = repairer.search([plan], frames=True, progress=progress)
        return repairer.finish(plan, *part, rng=rng)

    return _live(work, stop)


# ---------------------------------------------------------------------------------------- page
def _as_number(value, name, kind=int, default=None):
    """A form field's value (raw JSON: the page sends numbers, an API caller anything), read as
    the command line reads its option; its range is the options' check."""
    if value is None or (isinstance(value, str) and not value.strip()):  # an empty box
        return default
    wanted = "a whole number" if kind is int else "a number"
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        number = kind(value)
        if kind is int and number != float(value):
            raise ValueError(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        raise UploadError(f"{name} must be {wanted}, not {value!r}") from None
    return number


def _status(text, note=""):
    return text + (f"\n\n*{note}*" if note else "")


@dataclasses.dataclass
class PageResult:
    """One request's files, in its own folder: the fills at full size, what the browser is shown
    of them, the mask used and the search's animation.  ``fills[0]`` is the best fill; the
    others are the alternatives (``--variants``)."""

    name: str
    fills: list      # full-size PNG of each fill
    previews: list   # each fill at most PREVIEW_SIDE px
    before: str      # the input with its hole, at most PREVIEW_SIDE px
    mask: str        # the mask used, full size: white = kept, black = filled
    gif: str = None  # the search as it went (the first face's region, for a photo)
    spread: str = None  # the spread map of the fills (with alternatives)

    def downloads(self, k=0):
        """Fill ``k`` as PNG and JPEG, the mask, the GIF: the files of the Downloads list."""
        png = Path(self.fills[k])
        jpg = png.with_suffix(".jpg")
        if not jpg.exists():
            imgs.write_jpeg(jpg, imgs.read_image(png), PhotoOptions.quality)
        return [str(png), str(jpg), self.mask] + ([self.gif] if self.gif else [])


def save_result(out_dir, name, before, fills, known, animation=(), spread=None):
    """Write a request's files (see :class:`PageResult`) into ``out_dir``.

    Parameters
    ----------
    before : uint8 (H, W, 3)
        The input with its hole gray.
    fills : list of uint8 (H, W, 3)
        The best fill first, then the alternatives.
    known : bool (H, W)
        The mask used.
    animation : list of uint8 pictures
        The search as it went (none: no GIF).
    spread : uint8 (H, W, 3), optional
        The spread map's picture.
    """
    from concurrent.futures import ThreadPoolExecutor

    out_dir = Path(out_dir)
    fill_paths = [out_dir / (f"{name}.png" if k == 0 else f"{name}.variant{k + 1}.png")
                  for k in range(len(fills))]
    preview_paths = [out_dir / f"{name}.preview{k + 1}.png" for k in range(len(fills))]
    jobs = [(path, fill) for path, fill in zip(fill_paths, fills)]
    jobs += [(path, shrink_for_page(fill)) for path, fill in zip(preview_paths, fills)]
    jobs += [(out_dir / f"{name}.before.png", shrink_for_page(before)),
             (out_dir / f"{name}.mask.png", np.where(known, 255, 0).astype(np.uint8))]
    if spread is not None:
        jobs.append((out_dir / f"{name}.spread.png", shrink_for_page(spread)))
    # zlib lets go of the GIL: two cores encode a photo's files side by side
    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(imgs.write_image, path, image) for path, image in jobs]:
            done.result()
    gif = None
    if len(animation):
        gif = imgs.write_animation(out_dir / f"{name}.gif", list(animation))
    result = PageResult(name, [str(p) for p in fill_paths], [str(p) for p in preview_paths],
                        str(out_dir / f"{name}.before.png"), str(out_dir / f"{name}.mask.png"),
                        None if gif is None else str(gif),
                        None if spread is None else str(out_dir / f"{name}.spread.png"))
    result.downloads(0)  # the best fill's JPEG
    return result


def _spread_picture(spread, under):
    """The picture of a spread map (None: no alternatives) over ``under``, at most
    PREVIEW_SIDE px: it is only shown."""
    if spread is None:
        return None
    import cv2

    from dcgan_complete.variants import spread_picture

    under = shrink_for_page(under)
    h, w = under.shape[:2]
    if spread.shape != (h, w):  # the largest spread of the pixels each shown one stands for
        spread = cv2.resize(cv2.dilate(spread, np.ones((3, 3), np.uint8)), (w, h),
                            interpolation=cv2.INTER_AREA)
    return spread_picture(spread, under)


def save_photo_result(out_dir, page: PageInput, repair):
    """A repaired photo's files (:func:`save_result`): its fills, the first face's search."""
    fills = list(repair.variants or [repair.repaired])
    animation = []
    if repair.faces and repair.faces[0].frames:
        animation = [repair.face_region(0, masked=True)] + \
            [repair.face_region(0, frame) for frame in repair.faces[0].frames[:-1]] + \
            [repair.face_region(0)]
    return save_result(out_dir, page.name, repair.masked, fills, repair.known, animation,
                       _spread_picture(repair.spread, page.image))


def save_crop_result(out_dir, page: PageInput, result):
    """An aligned crop's files (:func:`save_result`): its fills, its search every
    ``out_interval`` iterations."""
    from dcgan_complete.variants import spread_map

    known = page.mask >= 0.5
    fills, spread = [result.completed[0]], None
    if result.variants is not None:
        fills, spread = list(result.variants[0]), spread_map(result.variants[0], ~known)
    return save_result(out_dir, page.name, result.masked[0], fills, known,
                       [result.masked[0], *result.frames[0][:-1], result.completed[0]],
                       _spread_picture(spread, page.image))


def photo_report(repair, note=""):
    """The page's status for a repaired photo: one line per face (the model's or Telea's)."""
    lines = repair.face_reports() or [
        "no face found over the hole: Telea filled it" if repair.faces_found == 0 else
        "no face met the hole: Telea filled it"]
    text = (f"Done: {repair.faces_found} face(s) found, {len(repair.faces)} repaired by the "
            f"model; hole pixels filled by the model {repair.model_pixels}, by Telea "
            f"{repair.classical_pixels}.\n\n" + "\n".join(f"- {line}" for line in lines))
    return _status(text, note)


def limits_text(options: ServeOptions):
    """The page's bounds, as the page states them."""
    return (f"Limits: uploads up to {options.max_upload_mb} MB and {options.max_megapixels:g} "
            f"megapixels; {options.concurrency} search at a time, and up to "
            f"{options.queue_size} more requests wait their turn (each is told its place). "
            f"Pictures are shown at most {PREVIEW_SIDE} px wide; downloads are full size.")


def build_app(completer: Completer, options: ServeOptions | None = None,
              mask_options: MaskOptions | None = None, work_dir=None, detector=None,
              detect_options: DetectOptions | None = None):
    """The web page for ``completer``, as a Gradio Blocks app (not launched).

    Parameters
    ----------
    completer : Completer
        The model; its options are the Advanced section's defaults.
    options : ServeOptions
        Concurrency, queue size and the upload limits.
    mask_options : MaskOptions
        Parameters of the mask kinds (center's scale, random's fraction).
    work_dir : path, optional
        Where each session's downloads are kept until it ends (:class:`SessionFiles`); default:
        a temporary folder.  Gradio serves them from there when it is Gradio's own temporary
        folder (``GRADIO_TEMP_DIR``, as :func:`running` sets it), else from copies it makes.
    detector : Detector, optional
        The damage detector (:func:`~dcgan_complete.detector.locate_detector`): an upload is
        searched for damage, and what it finds is painted as the editor's mask layer.  None:
        the user paints all of it.
    detect_options : DetectOptions
        The detector's default threshold and how far what it finds is widened.

    Returns
    -------
    gradio.Blocks
        Queued; call ``.launch()`` (see :func:`launch_options` for the offline settings).
    """
    gr = import_gradio()
    options = options or ServeOptions()
    detect_options = detect_options or DetectOptions()
    searches = Searches(completer)
    size = completer.size
    base = completer.options
    files = SessionFiles(work_dir)
    aligners = Aligners()
    outputs_count = 10  # status ... chosen: see the click event below

    def refuse(message, count=outputs_count, problem_at=5):
        """A request the page cannot do: the message stays under the Complete button (and an
        API caller gets it as the error)."""
        values = [gr.skip()] * count
        values[problem_at] = gr.update(value=f"**{message}**", visible=True)
        yield tuple(values)
        raise gr.Error(message, print_exception=False)

    def uploaded(editor, threshold, last, request):
        """A new upload: with a detector, what it finds is painted as the mask layer.  The
        editor reports the layer the page sent as an upload too: that one is not searched
        again (``last``: the background searched last)."""
        background = _upload_path((editor or {}).get("background") if isinstance(editor, dict)
                                  else editor)[0]
        if background is None:  # the editor cleared
            return
        if detector is None:
            yield gr.skip(), "Paint over the damage with the brush, then press Complete.", \
                gr.skip(), background
        elif background != last:
            for values in find_damage(editor, threshold, request):
                yield (*values, background)
        else:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()

    def find_damage(editor, threshold, request):
        """Run the detector on the upload: what it finds becomes the editor's mask layer (the
        strokes painted before are replaced)."""
        try:
            editor = editor if isinstance(editor, dict) else {"background": editor}
            image, _ = read_upload(editor.get("background"), options.max_megapixels)
            if detector is None:
                raise UploadError("no damage detector is loaded (see `dcgan-complete serve "
                                  "--help`): paint the damage with the brush")
            threshold = _as_number(threshold, "threshold", float,
                                   default=detect_options.threshold)
            try:
                DetectOptions(threshold=threshold, grow=detect_options.grow)
            except OptionError as exc:
                raise UploadError(exc.format(lambda name: name)) from None
        except UploadError as exc:
            yield from refuse(str(exc), 3, 2)
            return
        from dcgan_complete.detector import damage_mask, detect_damage

        tic = time.perf_counter()
        known = damage_mask(detect_damage(image, detector), threshold,
                            detect_options.grow) >= 0.5
        layer = files.new_folder(request.session_hash) / "damage-found.png"
        imgs.write_image(layer, mask_layer(known))
        share = 1 - known.mean()
        if share == 0:
            text = (f"No damage found at threshold {threshold:g}: paint it with the brush, or "
                    "lower the threshold and press Find damage.")
        else:
            text = (f"Damage found on {share:.2%} of the image (threshold {threshold:g}, "
                    f"{time.perf_counter() - tic:.1f} s), painted black on it. The brush adds "
                    "to it, the eraser takes away; then press Complete.")
        yield (editor_value(editor.get("background"), layer if share else None), text,
               gr.update(value="", visible=False))

    def preview_kind(editor, kind, seed, request):
        """Paint the holes of a mask kind into the editor's mask layer, beside the strokes
        there, so that what Complete fills is what the editor shows."""
        if kind in (None, "", BRUSH_ONLY):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            editor = editor if isinstance(editor, dict) else {"background": editor}
            image, _ = read_upload(editor.get("background"), options.max_megapixels)
            known = painted_known(editor.get("layers"), image.shape[:2], options.max_megapixels)
            seed = _as_number(seed, "seed")
            params = (mask_options or MaskOptions()).params()
            if is_photo(image, size):
                from dcgan_complete.photo import PhotoRepairer, kind_hole

                with aligners.lend() as aligner:
                    frames, _ = PhotoRepairer(completer, aligner=aligner).find_faces(image,
                                                                                     known)
                if not frames:
                    raise UploadError(f"no face found to draw the {kind} mask in: paint the "
                                      "damage with the brush")
                hole = kind_hole(frames, kind, image.shape[:2], np.random.default_rng(seed),
                                 **params)
                where = f"in the frame of {len(frames)} face(s)"
            else:
                hole = mask_lib.make_mask(kind, size, rng=seed, **params) < 0.5
                where = "on the face"
        except UploadError as exc:
            return (gr.skip(), BRUSH_ONLY, gr.skip(),
                    gr.update(value=f"**{exc}**", visible=True))
        layer = files.new_folder(request.session_hash) / f"mask-{kind}.png"
        imgs.write_image(layer, mask_layer(known & ~hole))
        return (editor_value(editor.get("background"), layer), BRUSH_ONLY,
                f"The {kind} mask is painted {where}, beside your strokes: correct it with the "
                "brush and the eraser, then press Complete.", gr.update(value="", visible=False))

    def complete(editor, kind, iterations, lam, restarts, seed, optimizer, variants, request):
        try:  # the form's values first: the seed also draws the random mask kinds
            search_options = searches.options(
                iterations=_as_number(iterations, "iterations", default=base.iterations),
                lam=_as_number(lam, "lambda", float, default=base.lam),
                restarts=_as_number(restarts, "restarts", default=base.restarts),
                seed=_as_number(seed, "seed"), optimizer=optimizer or base.optimizer,
                variants=_as_number(variants, "alternatives", default=1))
            if search_options.iterations > MAX_ITERATIONS or \
                    search_options.restarts > MAX_RESTARTS or \
                    search_options.variants > MAX_PAGE_VARIANTS:
                raise UploadError(f"the page runs at most {MAX_ITERATIONS} iterations, "
                                  f"{MAX_RESTARTS} restarts and {MAX_PAGE_VARIANTS} "
                                  "alternatives")
            page = prepare_input(editor, kind, size, search_options.seed,
                                 options.max_megapixels, mask_options)
        except UploadError as exc:
            yield from refuse(str(exc))
            return
        live = searches.get(search_options)
        # the masked input is shown with the result, not before: sent twice, its picture would be
        # rewritten in Gradio's cache (see below)
        yield (_status("Starting the search…", page.note), None, None, None, None,
               gr.update(value="", visible=False), None, gr.update(value=None, visible=False),
               gr.update(value=None, visible=False), None)
        stop = threading.Event()
        # Gradio rewrites an image's cache file in place whenever the same picture is sent
        # again, which can cut short a browser still fetching it: a preview is not sent twice
        try:
            result, shown = None, None
            with aligners.lend() as aligner:
                events = (repair_live(live, page, stop, mask_options, aligner) if page.photo
                          else search_live(live, page, stop))
                for event in events:
                    if isinstance(event, Progress):
                        fresh = shown is None or not np.array_equal(event.preview, shown)
                        shown = event.preview
                        yield (_status(f"Searching: iteration {event.iterations} of {event.total}, "
                                       f"loss {event.loss:.1f}", page.note),
                               gr.skip(), event.preview if fresh else gr.skip(),
                               *[gr.skip()] * (outputs_count - 3))
                    else:
                        result = event
            if result is None:
                return
            out_dir = files.new_folder(request.session_hash)
            if page.photo:
                saved = save_photo_result(out_dir, page, result)
                text = photo_report(result, page.note)
                crops = (None, None, None)
                if result.faces:  # the largest face's crop: masked | repaired | G(z)
                    face = result.faces[0]
                    crops = (np.where(face.mask[..., None] >= 0.5, face.crop, HOLE_GRAY),
                             face.completed, face.generated)
            else:
                saved = save_crop_result(out_dir, page, result)
                text = _status(f"Done: {result.iterations_run} iterations in "
                               f"{result.seconds:.1f} s, loss {float(result.loss[0]):.1f}.",
                               page.note)
                crops = (result.masked[0], result.completed[0], result.generated[0])
            several = len(saved.fills) > 1
            if several:
                text += (f"\n\n{len(saved.fills)} alternatives below, the best (lowest loss) "
                         "first: pick one for the final photo. The spread map is bright where "
                         "they disagree: there the fill is a guess.")
            yield (text, *crops, saved.downloads(0), gr.skip(), (saved.before, saved.previews[0]),
                   gr.update(value=[(p, f"alternative {k + 1}")
                                    for k, p in enumerate(saved.previews)], visible=several,
                             selected_index=0 if several else None),
                   gr.update(value=saved.spread, visible=several), dataclasses.asdict(saved))
        except DcganError as exc:  # a search that cannot go on says why
            yield from refuse(str(exc))
        finally:
            stop.set()

    def pick(saved, request, selection):
        """An alternative chosen: it becomes the after of the before/after and the download."""
        if not saved or selection is None or selection.index is None:
            return gr.skip(), gr.skip(), gr.skip()
        saved = PageResult(**saved)
        k = int(selection.index)
        if not 0 <= k < len(saved.fills):
            return gr.skip(), gr.skip(), gr.skip()
        return ((saved.before, saved.previews[k]), saved.downloads(k),
                f"Alternative {k + 1} of {len(saved.fills)} chosen: its photo is in Downloads.")

    def forget(request):
        files.end(request.session_hash)

    # Gradio passes the request to a gr.Request parameter, the selection to a gr.SelectData one
    for handler in (uploaded, find_damage, preview_kind, complete, pick, forget):
        handler.__annotations__["request"] = gr.Request
    pick.__annotations__["selection"] = gr.SelectData

    samples = imgs.samples_dir()
    finds = detector is not None
    with gr.Blocks(title=TITLE, analytics_enabled=False,
                   delete_cache=(KEEP_FILES_SECONDS, KEEP_FILES_SECONDS)) as app:
        gr.Markdown(
            f"## {TITLE}: repair the damaged parts of a photo or a face\n"
            "Upload a photo (or a face, or pick a sample). " +
            ("The damage found is painted black on it: add to it with the brush, take away "
             "with the eraser. " if finds else "Paint over the damage with the brush. ") +
            "Press **Complete**: faces are filled by the model, the rest by Telea, and every "
            "pixel that is not painted stays as it is.")
        with gr.Row():
            with gr.Column(scale=1):
                editor = gr.ImageMask(
                    label=f"Photo, or a face ({size}x{size} aligned crop): black = to repair",
                    type="filepath", image_mode="RGBA", format="png",
                    sources=["upload", "clipboard"],
                    transforms=(), layers=False, elem_id="editor",
                    brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=6))
                with gr.Row():
                    threshold = gr.Slider(0.05, 0.95, value=detect_options.threshold,
                                          step=0.05, label="Damage threshold",
                                          info="Lower finds more (and more that is not damage).",
                                          elem_id="threshold", visible=finds)
                    find = gr.Button("Find damage", elem_id="find-damage", visible=finds)
                kind = gr.Dropdown([BRUSH_ONLY, *PAGE_MASK_KINDS], value=BRUSH_ONLY,
                                   label="Add the holes of a mask kind", elem_id="mask-kind",
                                   info="Painted into the mask in every face's frame, beside "
                                        "your strokes (random kinds follow the seed).")
                variants = gr.Slider(1, MAX_PAGE_VARIANTS, value=1, step=1,
                                     label="Alternatives (fills to choose from)",
                                     elem_id="variants-count")
                with gr.Row():
                    run = gr.Button("Complete", variant="primary", elem_id="complete")
                    cancel = gr.Button("Stop", elem_id="stop")
                # a request the page cannot do says why here, until the next one
                problem = gr.Markdown("", visible=False, elem_id="problem")
                gr.Markdown(limits_text(options), elem_id="limits")
                with gr.Accordion("Advanced: the search", open=False):
                    iterations = gr.Slider(10, MAX_ITERATIONS, value=base.iterations, step=10,
                                           label="Iterations", elem_id="iterations")
                    lam = gr.Number(base.lam, label="Lambda (weight of the discriminator's "
                                                    "say)", minimum=0)
                    restarts = gr.Slider(1, MAX_RESTARTS, value=base.restarts, step=1,
                                         label="Restarts (the lowest loss wins)")
                    # a text box: empty when no seed is set (a number box would show 0)
                    seed = gr.Textbox("" if base.seed is None else str(base.seed), max_lines=1,
                                      placeholder="none: a different result every time",
                                      label="Seed (clear it for a different result every time)",
                                      elem_id="seed")
                    optimizer = gr.Radio(list(OPTIMIZERS), value=base.optimizer,
                                         label="Optimiser")
                if samples is not None:
                    gr.Examples([[str(p)] for p in imgs.find_images(samples, recursive=False)],
                                inputs=[editor], label="Sample faces")
            with gr.Column(scale=1):
                status = gr.Markdown("Waiting for a photo.", elem_id="status")
                compare = gr.ImageSlider(label="Before / after (drag; fullscreen to zoom)",
                                         type="filepath", format="png", interactive=False,
                                         buttons=["download", "fullscreen"], max_height=600,
                                         elem_id="compare")
                with gr.Row():
                    masked, completed, generated = (
                        gr.Image(label=label, format="png", interactive=False, height=RESULT_HEIGHT,
                                 buttons=["download", "fullscreen"], elem_id=elem_id,
                                 elem_classes=["result"])
                        for label, elem_id in (("Masked (the face's crop)", "masked"),
                                               ("Completed: the search", "completed"),
                                               ("G(z)", "generated")))
                gallery = gr.Gallery(label="Alternatives: pick one", columns=3, height="auto",
                                     allow_preview=False, visible=False, elem_id="variants")
                spread = gr.Image(label="Spread of the alternatives (bright: a guess)",
                                  type="filepath", interactive=False, visible=False,
                                  elem_id="spread")
                downloads = gr.File(label="Downloads: the repaired photo (PNG, JPEG) at full "
                                          "size, the mask used, the search as a GIF",
                                    file_count="multiple", interactive=False,
                                    elem_id="downloads")
                chosen = gr.State(None)
                searched = gr.State(None)  # the upload last searched for damage
        event = run.click(
            complete, [editor, kind, iterations, lam, restarts, seed, optimizer, variants],
            [status, masked, completed, generated, downloads, problem, compare, gallery, spread,
             chosen],
            api_name="complete", preprocess=False, show_progress="minimal",
            show_progress_on=[status])
        cancel.click(None, cancels=[event])
        gallery.select(pick, [chosen], [compare, downloads, status], api_name=False)
        editor.upload(uploaded, [editor, threshold, searched],
                      [editor, status, problem, searched], api_name=False, preprocess=False)
        find.click(find_damage, [editor, threshold], [editor, status, problem],
                   api_name="find_damage", preprocess=False)
        kind.input(preview_kind, [editor, kind, seed], [editor, kind, status, problem],
                   api_name="preview_kind", preprocess=False)
        app.unload(forget)  # the tab was closed: its downloads go
    return app.queue(default_concurrency_limit=options.concurrency, max_size=options.queue_size)


def launch_options(options: ServeOptions, work_dir=None):
    """The keyword arguments of ``Blocks.launch`` for a page that stays on this machine: no
    share link, no server-side rendering (it needs Node), the upload limit."""
    return dict(server_name=options.host, server_port=options.port, share=False, css=PAGE_CSS,
                ssr_mode=False, pwa=False, mcp_server=False, quiet=True, show_error=False,
                max_file_size=f"{options.max_upload_mb}mb", prevent_thread_lock=True,
                allowed_paths=[str(work_dir)] if work_dir else None)


def check_port(host, port):
    """Refuse a port that another program already holds, before the model is loaded."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise OptionError("port", f"cannot serve on {host}:{port} ({{port}}): "
                                  f"{exc.strerror or exc}") from None


@contextlib.contextmanager
def _gradio_files_in(folder):
    """Gradio keeps uploads and outputs where GRADIO_TEMP_DIR says when its parts are made."""
    saved = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = saved


@contextlib.contextmanager
def running(completer: Completer, options: ServeOptions | None = None,
            mask_options: MaskOptions | None = None, detector=None,
            detect_options: DetectOptions | None = None):
    """The page served in the background, as :func:`serve` serves it; yields its URL and its
    temporary folder.

    Every file of the page (uploads, results, downloads) lives in that folder, which is removed
    when the server stops, on leaving the ``with`` block.
    """
    options = options or ServeOptions()
    with tempfile.TemporaryDirectory(prefix="dcgan-complete-serve-") as temp, \
            _gradio_files_in(temp):
        import_gradio()  # after GRADIO_TEMP_DIR is set: some of its folders are fixed on import
        app = build_app(completer, options, mask_options, work_dir=temp, detector=detector,
                        detect_options=detect_options)
        app.launch(**launch_options(options, temp))
        try:
            yield app.local_url, Path(temp)
        finally:
            app.close()


def serve(completer: Completer, options: ServeOptions | None = None,
          mask_options: MaskOptions | None = None, ready=None, detector=None,
          detect_options: DetectOptions | None = None):
    """Serve the page until Ctrl-C or SIGTERM (KeyboardInterrupt, raised again afterwards).

    Every file (uploads, results) lives in one temporary folder, removed when the server stops.

    Parameters
    ----------
    ready : callable(url, temp_folder), optional
        Called once the page is up.
    detector, detect_options
        The damage detector and its settings (see :func:`build_app`).
    """
    options = options or ServeOptions()
    check_serving(options, port=False)
    with running(completer, options, mask_options, detector, detect_options) as (url, temp):
        if ready is not None:
            ready(url, str(temp))
        while True:
            time.sleep(3600)


def page_detector(detect_options: DetectOptions, model_dir=None):
    """The damage detector of the page: ``detect_options.detector``, else the model folder's,
    else (the bundled model) the bundled one; None when a model folder has none and none is
    named (the user paints all of the damage)."""
    from dcgan_complete.detector import DETECTOR_FILE, locate_detector

    if detect_options.detector is None and model_dir is not None and \
            not (Path(model_dir) / DETECTOR_FILE).is_file():
        return None
    return locate_detector(detect_options.detector, model_dir)


def check_serving(options: ServeOptions, port=True):
    """What can be checked before the model is loaded: Gradio is installed (without importing
    it), the port is free."""
    try:
        found = importlib.util.find_spec("gradio") is not None
    except ValueError:  # an entry of None in sys.modules: imports of it are blocked
        found = False
    if not found:
        raise DcganError(f"the web page needs Gradio: {APP_EXTRA}")
    if port:
        check_port(options.host, options.port)
