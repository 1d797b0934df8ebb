"""What the web page (:mod:`dcgan_complete.app`) does with a request, without Gradio.

- **Uploads**: the editor's value (the upload and its mask layers) read and checked
  (:func:`read_upload`, :func:`painted_known`) into a :class:`PageInput` (:func:`prepare_input`);
  a mask as the editor's layer (:func:`mask_layer`, :func:`editor_value`).
- **Searching**: the search for an aligned crop or the repair of a photo, run in a thread of its
  own while the page shows its progress (:func:`search_live`, :func:`repair_live`); the compiled
  searches shared by all requests (:class:`Searches`), dlib's models lent to one request at a
  time (:class:`Aligners`), each session's files (:class:`SessionFiles`).
- **Results**: a request's files (the fills at full size, what the browser is shown of them, the
  mask used, the GIF; :func:`save_result`) and what the page says of them.

Every message here is one line for the page, never a traceback: :class:`UploadError`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.files import display_name
from dcgan_complete.options import CompleteOptions, MaskOptions, PhotoOptions, ServeOptions
from dcgan_complete.outputs import crop_animation, face_animation
from dcgan_complete.search import Completer


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

# The editor's canvas (width, height): Gradio's default, which places a layer sent to it by
# this size (see mask_layer).
EDITOR_CANVAS = (800, 800)

# A picture the page sends the browser (the before/after, the alternatives, the spread map) is at
# most this many pixels on its longer side: a 2-megapixel photo is shown at its own size, a
# 12-megapixel one shrunk to about 3; the downloads are always at the photo's size.
PREVIEW_SIDE = 2048

# How many fills to choose from the page offers at most (each costs a search's starts).
MAX_PAGE_VARIANTS = 6
# The search options as the page's form names them (in its messages).
FORM_LABELS = {"lam": "lambda", "optimizer": "optimiser"}


class UploadError(DcganError):
    """A request the page cannot work on; the message is shown on the page as it is."""


# ------------------------------------------------------------------------------------ uploads
def upload_path(file):
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
    path, name = upload_path(file)
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
    A layer of the editor's canvas size (:func:`mask_layer`), larger than a small image, is cut
    to the image at its top left.
    """
    known = np.ones(shape, bool)
    for layer in layers or ():
        pixels, name = read_upload(layer, max_megapixels)
        if pixels.shape[:2] == _canvas_shape(shape):
            pixels = pixels[:shape[0], :shape[1]]
        if pixels.shape[:2] != shape:
            raise UploadError(f"the mask {display_name(name)} is {pixels.shape[1]}x"
                              f"{pixels.shape[0]}, the image {shape[1]}x{shape[0]}")
        known &= pixels.astype(np.float32).mean(axis=2) >= PAINT_THRESHOLD
    return known


def _canvas_shape(shape):
    """The shape of the editor's canvas for an image of ``shape``: at least EDITOR_CANVAS."""
    return max(shape[0], EDITOR_CANVAS[1]), max(shape[1], EDITOR_CANVAS[0])


def mask_layer(known):
    """The editor's mask layer for ``known`` (bool (H, W), True = known): opaque black where the
    page is to fill, transparent elsewhere, as the brush paints (uint8 RGBA).

    The browser's editor lays a layer it is sent over a canvas of at least
    :data:`EDITOR_CANVAS` and centres a smaller one in it, while the image lies at its top left:
    so the layer is as large as that canvas, the mask at its top left, and comes back from the
    editor cut to the image.
    """
    layer = np.zeros((*_canvas_shape(known.shape), 4), np.uint8)
    layer[:known.shape[0], :known.shape[1], 3] = np.where(known, 0, 255)
    return layer


# What a browser's editor can draw as it is; a TIFF scan it shows as a blank canvas.
BROWSER_FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "WEBP"})


def browser_background(path, image, folder):
    """The upload as the editor is to show it: the file itself where browsers draw its format,
    else ``image`` (its pixels as :func:`read_upload` read them) written as ``photo.png`` into
    ``folder``.  The search reads the editor's background back, so it sees the same pixels
    either way."""
    if imgs.image_format(path) in BROWSER_FORMATS:
        return path
    shown = Path(folder) / "photo.png"
    imgs.write_image(shown, image)
    return shown


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
    return imgs.shrink(image, side)


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
                mask_options: MaskOptions | None = None, aligners: Aligners | None = None):
    """Repair a photo at its own size as ``complete`` does (:class:`PhotoRepairer`: its faces
    by the model, the rest of the hole by Telea), in a thread of its own; yield a
    :class:`Progress` per chunk (its preview: the largest face's crop as it fills) and the
    PhotoRepair last.  ``stop`` and closing the generator end it as :func:`search_live`.

    dlib's models are borrowed from ``aligners`` (None: loaded for this repair) by that thread
    and given back when it ends, not when the page stops waiting for it: a search that is
    stopped while its faces are looked for still holds them until it has looked.
    """
    from dcgan_complete.photo import PhotoRepairer, kind_hole

    def work(put):
        with aligners.lend() if aligners else contextlib.nullcontext() as aligner:
            return repair(put, aligner)

    def repair(put, aligner):
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
def form_number(value, name, kind=int, default=None):
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


def with_note(text, note=""):
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
    animation = face_animation(repair, 0) if repair.faces and repair.faces[0].frames else []
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
                       crop_animation(result, 0),
                       _spread_picture(spread, page.image))


def photo_report(repair, note=""):
    """The page's status for a repaired photo: one line per face (the model's or Telea's)."""
    lines = repair.face_reports() or ["no face found over the hole: Telea filled it"]
    text = (f"Done: {repair.faces_found} face(s) found, {len(repair.faces)} repaired by the "
            f"model; hole pixels filled by the model {repair.model_pixels}, by Telea "
            f"{repair.classical_pixels}.\n\n" + "\n".join(f"- {line}" for line in lines))
    return with_note(text, note)


def limits_text(options: ServeOptions):
    """The page's bounds, as the page states them."""
    return (f"Limits: uploads up to {options.max_upload_mb} MB and {options.max_megapixels:g} "
            f"megapixels; {options.concurrency} search at a time, and up to "
            f"{options.queue_size} more requests wait their turn (each is told its place). "
            f"Pictures are shown at most {PREVIEW_SIDE} px wide; downloads are full size.")
