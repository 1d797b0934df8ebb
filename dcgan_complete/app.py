"""``dcgan-complete serve``: a local web page that repairs damaged photos and faces.

The page is a Gradio app (the optional ``app`` extra). A photo given to the upload box is searched
by the damage detector, when there is one, and comes back in the editor with what was found painted
as its mask layer; the brush adds to it, the eraser takes away, "Find damage" runs the detector
again at another threshold, and a mask kind is painted into the layer in every face's frame.
Complete repairs it: an upload of the model's size is an aligned crop, searched as it is; any other
is a photo, repaired at its own size as ``complete`` repairs it
(:class:`~dcgan_complete.photo.PhotoRepairer`): its faces by the model, the rest of the mask by
Telea, every other pixel unchanged. While the search runs the page shows the iteration, the loss and
the (largest) face's crop as it fills; then the photo before and after in a slider, masked |
completed | G(z) of the face, one line per face (the model's or Telea's), and the downloads: the
repaired photo as PNG and JPEG at full size, the mask used and the GIF of the search. With
"Alternatives" above 1, several fills from starts kept apart (``CompleteOptions.variants``) are
shown to pick from, with their spread map. Pictures sent to the browser are at most
:data:`PREVIEW_SIDE` px; downloads are full size.

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
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete.classical import HOLE_GRAY
from dcgan_complete.errors import DcganError, OptionError
from dcgan_complete.options import OPTIMIZERS, DetectOptions, MaskOptions, ServeOptions
from dcgan_complete.page import (BRUSH_ONLY, EDITOR_CANVAS, KEEP_FILES_SECONDS, MAX_ITERATIONS,
                                 MAX_PAGE_VARIANTS, MAX_RESTARTS, PAGE_MASK_KINDS, Aligners,
                                 PageResult, Progress, Searches, SessionFiles, UploadError,
                                 browser_background, editor_value, form_number, is_photo,
                                 limits_text, mask_layer, painted_known, photo_report,
                                 prepare_input, read_upload, repair_live, save_crop_result,
                                 save_photo_result, search_live, upload_path, with_note)
from dcgan_complete.search import Completer

APP_EXTRA = "pip install 'dcgan-complete[app]'"
TITLE = "dcgan-complete"

# The results are shown this tall, in pixels, without smoothing: the model's pixels as they are.
RESULT_HEIGHT = 240

PAGE_CSS = (".result img { width: 100%; height: 100%; object-fit: contain; "
            "image-rendering: pixelated; }")


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
    results_count = 8  # compare ... chosen: a result's outputs, emptied by a new photo

    def refuse(message, count=outputs_count, problem_at=5):
        """A request the page cannot do: the message stays beside the control that made it
        (output ``problem_at``: under Complete, or under the photo for Find damage), and an API
        caller gets it as the error."""
        values = [gr.skip()] * count
        values[problem_at] = gr.update(value=f"**{message}**", visible=True)
        yield tuple(values)
        raise gr.Error(message, print_exception=False)

    def uploaded(photo, threshold, request):
        """A photo given to the upload box (or a sample picked): it goes into the editor, with
        what the detector finds painted as the mask layer.

        The editor itself takes no uploads and nothing listens to its own upload event: it
        reports every value the page sends it as an upload of its own, and a listener that
        reads the editor while it is still drawing that value can leave it busy for good."""
        if upload_path(photo)[0] is None:  # the box cleared ("Another photo")
            return (gr.skip(),) * (5 + results_count)
        try:
            image, _ = read_upload(photo, options.max_megapixels)
        except UploadError as exc:
            return (gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                    gr.update(value=f"**{exc}**", visible=True), *[gr.skip()] * results_count)
        background = browser_background(upload_path(photo)[0], image,
                                        files.new_folder(request.session_hash))
        if detector is None:
            layer = None
            text = "Paint over the damage with the brush, then press Complete."
        else:
            layer, text = detect_layer(image, detect_options.threshold if threshold is None
                                       else threshold, request)
        return (gr.update(value=editor_value(background, layer), visible=True),
                gr.update(visible=False), gr.update(visible=True), text,
                gr.update(value="", visible=False), *no_results())

    def another_photo():
        """Back to the upload box, the editor emptied."""
        return (gr.update(value=None, visible=True), gr.update(value=None, visible=False),
                gr.update(visible=False), "Waiting for a photo.",
                gr.update(value="", visible=False), *no_results())

    def no_results():
        """The outputs of the last Complete emptied: they belong to the photo before."""
        return (None, None, None, None, None, gr.update(value=None, visible=False),
                gr.update(value=None, visible=False), None)

    def detect_layer(image, threshold, request):
        """The detector's mask layer for ``image`` (a PNG's path; None when nothing is found)
        and the status line that says so."""
        from dcgan_complete.detector import damage_mask, detect_damage

        tic = time.perf_counter()
        known = damage_mask(detect_damage(image, detector), threshold,
                            detect_options.grow) >= 0.5
        share = 1 - known.mean()
        if share == 0:
            return None, (f"No damage found at threshold {threshold:g}: paint it with the "
                          "brush, or lower the threshold and press Find damage.")
        layer = files.new_folder(request.session_hash) / "damage-found.png"
        imgs.write_image(layer, mask_layer(known))
        return layer, (f"Damage found on {share:.2%} of the image (threshold {threshold:g}, "
                       f"{time.perf_counter() - tic:.1f} s), painted black on it. The brush "
                       "adds to it, the eraser takes away; then press Complete.")

    def find_damage(editor, threshold, request):
        """Run the detector on the editor's image again: what it finds becomes the mask layer
        (the strokes painted before are replaced)."""
        try:
            editor = editor if isinstance(editor, dict) else {"background": editor}
            image, _ = read_upload(editor.get("background"), options.max_megapixels)
            if detector is None:
                raise UploadError("no damage detector is loaded (see `dcgan-complete serve "
                                  "--help`): paint the damage with the brush")
            threshold = form_number(threshold, "threshold", float,
                                    default=detect_options.threshold)
            try:
                DetectOptions(threshold=threshold, grow=detect_options.grow)
            except OptionError as exc:
                raise UploadError(exc.format(lambda name: name)) from None
        except UploadError as exc:
            yield from refuse(str(exc), 3, 2)
            return
        layer, text = detect_layer(image, threshold, request)
        yield (editor_value(editor.get("background"), layer), text,
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
            seed = form_number(seed, "seed")
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
                iterations=form_number(iterations, "iterations", default=base.iterations),
                lam=form_number(lam, "lambda", float, default=base.lam),
                restarts=form_number(restarts, "restarts", default=base.restarts),
                seed=form_number(seed, "seed"), optimizer=optimizer or base.optimizer,
                variants=form_number(variants, "alternatives", default=1))
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
        yield (with_note("Starting the search…", page.note), None, None, None, None,
               gr.update(value="", visible=False), None, gr.update(value=None, visible=False),
               gr.update(value=None, visible=False), None)
        stop = threading.Event()
        # Gradio rewrites an image's cache file in place whenever the same picture is sent
        # again, which can cut short a browser still fetching it: a preview is not sent twice
        try:
            result, shown = None, None
            events = (repair_live(live, page, stop, mask_options, aligners) if page.photo
                      else search_live(live, page, stop))
            for event in events:
                if isinstance(event, Progress):
                    fresh = shown is None or not np.array_equal(event.preview, shown)
                    shown = event.preview
                    yield (with_note(f"Searching: iteration {event.iterations} of "
                                     f"{event.total}, loss {event.loss:.1f}", page.note),
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
                text = with_note(f"Done: {result.iterations_run} iterations in "
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
                photo = gr.Image(label=f"Photo, or a face ({size}x{size} aligned crop)",
                                 type="filepath", sources=["upload", "clipboard"],
                                 elem_id="photo", height=400)
                editor = gr.ImageMask(
                    label="Black = to repair: the brush adds, the eraser takes away",
                    type="filepath", image_mode="RGBA", format="png", sources=(),
                    transforms=(), layers=False, elem_id="editor", canvas_size=EDITOR_CANVAS,
                    visible=False,
                    brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=6))
                another = gr.Button("Another photo", size="sm", elem_id="another-photo",
                                    visible=False)
                # an upload the page cannot use, or Find damage refused, says why here
                photo_problem = gr.Markdown("", visible=False, elem_id="photo-problem")
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
                                inputs=[photo], label="Sample faces")
            with gr.Column(scale=1):
                status = gr.Markdown("Waiting for a photo.", elem_id="status")
                compare = gr.ImageSlider(label="Before / after (drag; fullscreen to zoom)",
                                         type="filepath", format="png", interactive=False,
                                         buttons=["download", "fullscreen"], max_height=600,
                                         elem_id="compare")
                # hidden after a Complete that searched no face (nothing to show in them)
                with gr.Row(elem_id="face-panels") as face_panels:
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
        event = run.click(
            complete, [editor, kind, iterations, lam, restarts, seed, optimizer, variants],
            [status, masked, completed, generated, downloads, problem, compare, gallery, spread,
             chosen],
            api_name="complete", preprocess=False, show_progress="minimal",
            show_progress_on=[status])
        cancel.click(None, cancels=[event])
        # the face panels: shown while a search runs (its preview goes there), and afterwards
        # only if a face was searched; apart from the API's outputs, which stay as they are
        run.click(lambda: gr.update(visible=True), None, [face_panels], api_name=False,
                  queue=False)
        event.then(lambda crop: gr.update(visible=crop is not None), [masked], [face_panels],
                   api_name=False, queue=False, preprocess=False)  # whether, not what: no decode
        # the editor's own work (finding damage, painting a kind, picking an alternative) queues
        # apart from the searches: an upload is not held up by another user's search
        editing = dict(concurrency_limit=options.concurrency, concurrency_id="editing")
        gallery.select(pick, [chosen], [compare, downloads, status], api_name=False, **editing)
        # an upload or a sample picked (a change): the photo goes into the editor, and the
        # results of the photo before go
        results = [compare, masked, completed, generated, downloads, gallery, spread, chosen]
        assert len(results) == results_count
        photo.change(uploaded, [photo, threshold],
                     [editor, photo, another, status, photo_problem, *results],
                     api_name=False, preprocess=False, **editing)
        for emptied in (another.click, editor.clear):  # the editor's bin empties it too
            emptied(another_photo, None,
                    [photo, editor, another, status, photo_problem, *results],
                    api_name=False, queue=False)
        find.click(find_damage, [editor, threshold], [editor, status, photo_problem],
                   api_name="find_damage", preprocess=False, **editing)
        kind.input(preview_kind, [editor, kind, seed], [editor, kind, status, problem],
                   api_name="preview_kind", preprocess=False, **editing)
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
