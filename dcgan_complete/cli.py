"""The ``dcgan-complete`` command line: parses options and calls the library, nothing more.

TensorFlow is imported only inside the commands that need it, so ``--help`` stays fast.
"""
from __future__ import annotations

import functools
import os
import sys
import time
import warnings

import click

_STARTED = time.perf_counter()  # the program's start: `complete` reports its wall time from here

# TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) is noise for a CLI user;
# export TF_CPP_MIN_LOG_LEVEL=0 to see it again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dcgan_complete import __version__
from dcgan_complete.errors import (DcganError, Note, OptionError, exit_code_of,
                                   signals_interrupt)
from dcgan_complete.files import display_name
from dcgan_complete.options import (
    ALIGN_BORDERS, ALIGN_LANDMARKS, BLENDS, COMPLETE_DISTRIBUTE, COMPLETE_OUT,
    CONTEXT_WEIGHT_KINDS, DEMO_OUT, EVALUATE_MASKS, EVALUATE_METHODS, EVALUATE_OUT, IMAGE_SIZES,
    INITS, MAX_ALIGN_SIZE, MAX_BATCH_SIZE, MAX_CONCURRENCY, MAX_G_STEPS, MAX_ITERATIONS, MAX_LR,
    MAX_QUEUE_SIZE, MAX_RESTARTS, MAX_SEED, MAX_THREADS, MAX_UPLOAD_MB, MAX_UPLOAD_MEGAPIXELS,
    MAX_WEIGHT, MAX_WINDOW, MAX_WORKERS, MIN_ALIGN_SIZE, OPTIMIZERS, PHOTO_EVALUATE_MASKS,
    PHOTO_EVALUATE_METHODS, PHOTO_FORMATS, PHOTO_INPUTS, PRECISION_CHOICES, PRIORS, START_DEFAULTS,
    TRAIN_DISTRIBUTE, UPSAMPLES, AlignOptions, BulkOptions, CompleteOptions, DemoOptions,
    EncoderOptions, EvaluateOptions, MaskOptions, PhotoOptions, ServeOptions, TrainOptions,
    default)
from dcgan_complete.options import (DETECT_OUT, MAX_DETECTOR_FILTERS, MAX_DETECTOR_LEVELS,
                                    MAX_DETECTOR_TILE, MAX_GROW, DetectOptions,
                                    DetectorOptions)
from dcgan_complete.options import MAX_VARIANTS


def _flag(option):
    """The current command's flag for a library option name (``out_dir`` -> ``--out``)."""
    ctx = click.get_current_context(silent=True)
    for param in ctx.command.params if ctx else ():
        if param.name == option and param.opts:
            return max(param.opts, key=len) if isinstance(param, click.Option) else \
                param.human_readable_name
    return option


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """The library's notes as one line each, ``note: ...``; other warnings as Python shows them."""
    if issubclass(category, Note):
        click.echo(f"note: {message}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def _friendly_errors(func):
    """Run a command so that whatever goes wrong ends in one line and the right exit status.

    The library's errors (with its option names replaced by this command's flags) and OS errors
    become ``Error: ...`` (status 1); Ctrl-C and SIGTERM stop the run through the code's normal
    clean-up (temporary files removed, ``train`` checkpoints) and exit 130 and 143.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        received = []  # the signals that arrived
        try:
            with signals_interrupt(received), warnings.catch_warnings():
                warnings.simplefilter("always", Note)
                warnings.showwarning = _show_warning
                return func(*args, **kwargs)
        except KeyboardInterrupt as exc:
            click.echo("interrupted", err=True)
            sys.exit(exit_code_of(exc))
        except Exception as exc:
            if received and not isinstance(exc, (click.ClickException, click.exceptions.Exit)):
                # the signal landed in library code (TensorFlow's C++ calling back into Python)
                # that turned the interruption into another exception: still a stop, not a bug
                click.echo("interrupted", err=True)
                sys.exit(128 + received[0])
            if isinstance(exc, OptionError):
                raise click.ClickException(exc.format(_flag)) from None
            if isinstance(exc, DcganError):
                raise click.ClickException(str(exc)) from None
            if isinstance(exc, OSError):
                where = f"{display_name(exc.filename)}: " if exc.filename else ""
                raise click.ClickException(f"{where}{exc.strerror or exc}") from None
            raise
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dcgan-complete")
def main():
    """Fill in missing or damaged parts of face photos with a DCGAN.

    \b
    Typical use:
      dcgan-complete align raw/ aligned/
      dcgan-complete train --dataset aligned
      dcgan-complete complete imgs/* --mask center --out out/
      dcgan-complete evaluate heldout/ --limit 100 --out report/
    """


def _option(options_class, name, *decls, **kwargs):
    """A click option whose default is the options dataclass's (the one home of defaults)."""
    decls = decls or ("--" + name.replace("_", "-"),)
    value = default(options_class, name)
    if value is not None:
        kwargs.setdefault("show_default", True)
    return click.option(*decls, name, default=value, **kwargs)


# The ranges and choices of the options: their bounds live in options.py.
_SEED = click.IntRange(0, MAX_SEED)
_THREADS = click.IntRange(0, MAX_THREADS)
_BATCH = click.IntRange(1, MAX_BATCH_SIZE)
_LR = click.FloatRange(0, MAX_LR, min_open=True)
_WEIGHT = click.FloatRange(0, MAX_WEIGHT)
_PRECISIONS = click.Choice(PRECISION_CHOICES)
_THREADS_HELP = f"CPU threads for TensorFlow (0: all cores; at most {MAX_THREADS})."


# ---------------------------------------------------------------------------------------- train
def _train(name, *decls, **kwargs):
    return _option(TrainOptions, name, *decls, **kwargs)


@main.command()
@click.option("--dataset", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder of training images (.png, .jpg, .tif, ..., searched recursively).")
@_train("epochs", type=click.IntRange(min=1), help="Passes over the dataset.")
@_train("max_steps", type=click.IntRange(min=1),
        help="Stop after this many steps in all (counting earlier runs), even mid-epoch.")
@_train("batch_size", type=_BATCH)
@_train("image_size", type=click.Choice(IMAGE_SIZES),
        callback=lambda c, p, v: int(v),
        help="Side of the square images the model makes; others are centre-cropped and resized.")
@_train("z_dim", type=click.IntRange(min=1), help="Length of the latent vector z.")
@_train("gf_dim", type=click.IntRange(min=1), help="Filters in the generator's last hidden layer.")
@_train("df_dim", type=click.IntRange(min=1),
        help="Filters in the discriminator's first layer.")
@_train("lr", type=_LR, help="Adam learning rate for both networks.")
@_train("beta1", type=click.FloatRange(0, 1, max_open=True), help="Adam beta1.")
@_train("g_steps", type=click.IntRange(1, MAX_G_STEPS),
        help="Generator updates per discriminator update.")
@_train("checkpoint_dir", type=click.Path(file_okay=False, path_type=str),
        help="Checkpoints, config and exported weights; training resumes from here.")
@_train("sample_dir", type=click.Path(file_okay=False, path_type=str),
        help="Where sample grids go  [default: CHECKPOINT_DIR/samples]")
@_train("log_dir", type=click.Path(file_okay=False, path_type=str),
        help="TensorBoard logs  [default: CHECKPOINT_DIR/logs]")
@_train("sample_every", type=click.IntRange(min=1),
        help="Steps between 8x8 sample grids (from a fixed z).")
@_train("checkpoint_every", type=click.IntRange(min=1),
        help="Steps between checkpoints (one is also written at the end, on Ctrl-C and on "
             "SIGTERM).")
@_train("keep", type=click.IntRange(min=1), help="How many checkpoints to keep.")
@_train("seed", type=_SEED, help="Random seed for weights, z and shuffling.")
@_train("precision", type=_PRECISIONS,
        help="Compute precision; weights stay float32 either way. auto: mixed_bfloat16 on GPUs "
             "of compute capability 8.0 or later and on a CPU with native bfloat16 "
             "(AVX512-BF16/AMX) and no GPU, else float32.")
@_train("distribute", type=click.Choice(TRAIN_DISTRIBUTE),
        help="mirrored: every local GPU (or --devices) trains on a share of each batch; "
             "multiworker: the machines that TF_CONFIG lists do (run the same command on each; "
             "see the README); auto: mirrored with several GPUs, else none.")
@_train("devices", help="With --distribute mirrored: the devices, as GPU:0,GPU:1  [default: "
                        "every GPU]. CPU:0,CPU:1 splits the CPU (for trying it out).")
@click.option("--threads", type=_THREADS, default=0, show_default=True, help=_THREADS_HELP)
@_friendly_errors
def train(dataset, threads, **options):
    """Train a DCGAN on a folder of aligned face images.

    Running it again with the same --checkpoint-dir resumes where the last run stopped.  Ctrl-C
    or SIGTERM writes a checkpoint first, then exits with status 130 or 143.
    """
    options = TrainOptions(**options)
    _start_tensorflow(threads)
    from dcgan_complete.train import train as run_training

    result = run_training(dataset, options)
    if result.stopped == "interrupted":
        sys.exit(result.exit_code)


# -------------------------------------------------------------------------------- train-encoder
def _encoder(name, *decls, **kwargs):
    return _option(EncoderOptions, name, *decls, **kwargs)


@main.command("train-encoder")
@_encoder("checkpoint_dir", type=click.Path(file_okay=False, path_type=str),
          help="The model folder (a `train` output); the encoder is written into it.")
@_encoder("dataset", type=click.Path(file_okay=False, path_type=str),
          help="Real aligned faces to learn from as well as the generator's own samples "
               "(pixel and discriminator-feature loss).")
@_encoder("steps", type=click.IntRange(min=1), help="Steps in all (counting earlier runs).")
@_encoder("batch_size", type=_BATCH)
@_encoder("lr", type=_LR, help="Adam learning rate.")
@_encoder("ef_dim", type=click.IntRange(min=1), help="Filters in the encoder's first layer.")
@_encoder("real_fraction", type=click.FloatRange(0, 1),
          help="Share of each batch taken from --dataset.")
@_encoder("feature_weight", type=_WEIGHT,
          help="Weight of the discriminator-feature loss on real faces.")
@_encoder("z_weight", type=_WEIGHT,
          help="Weight of the loss on z for the generator's samples.")
@_encoder("checkpoint_every", type=click.IntRange(min=1),
          help="Steps between checkpoints (one is also written at the end, on Ctrl-C and on "
               "SIGTERM).")
@_encoder("keep", type=click.IntRange(min=1), help="How many checkpoints to keep.")
@_encoder("seed", type=_SEED, help="Random seed.")
@_encoder("precision", type=_PRECISIONS, help="As for train.")
@click.option("--threads", type=_THREADS, default=0, show_default=True, help=_THREADS_HELP)
@_friendly_errors
def train_encoder(threads, **options):
    """Train an encoder that starts `complete`'s search near the answer.

    It learns E(masked face, mask) -> z against the model's frozen generator, from the
    generator's own samples under random masks and, with --dataset, from real faces. It writes
    CHECKPOINT_DIR/encoder.weights.h5 (and checkpoints and logs in CHECKPOINT_DIR/encoder/);
    `complete --init encoder`, the default, then starts from its guess. Running it again
    resumes.
    """
    options = EncoderOptions(**options)
    _start_tensorflow(threads)
    from dcgan_complete.encoder import train_encoder as run

    result = run(options)
    if result.stopped == "interrupted":
        sys.exit(result.exit_code)


def _start_tensorflow(threads=0):
    """Import TensorFlow with its C++ start-up banner hidden, and set the thread count.

    Its absl logging prints before any setting can silence it, so file descriptor 2 is pointed at
    /dev/null for the import alone; a failing import still raises (and is shown) as usual.
    """
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


# ------------------------------------------------------------------------------------- complete
_MASK_HELP = (
    "What to fill: a kind, a mask PNG (one mask for every image) or a folder of PNGs (one per "
    "image, matched by file stem). Mask images are white = known, black = fill, and must be "
    "the image's size (a photo's own size). On a photo a kind is drawn in every face's aligned "
    "frame. Kinds: center (the middle; --center-scale), random (--fraction of "
    "pixels missing), left/right/top/bottom (half), grid (every 4th row and column known), "
    "pattern (random blotches, ~25%), full (nothing missing: projection), lowres (only 8x8 "
    "block averages known), scratches, text, irregular (brush strokes). Random kinds follow "
    "--seed. auto: the damage detector finds what to fill (cracks, scratches, dust, stains, "
    "stamps; --threshold, --grow), as `detect` would.")


def _search(name, *decls, **kwargs):
    return _option(CompleteOptions, name, *decls, **kwargs)


def _mask(name, *decls, **kwargs):
    return _option(MaskOptions, name, *decls, **kwargs)


def _photo(name, *decls, **kwargs):
    return _option(PhotoOptions, name, *decls, **kwargs)


def _bulk(name, *decls, **kwargs):
    return _option(BulkOptions, name, *decls, **kwargs)


def _detect(name, *decls, **kwargs):
    return _option(DetectOptions, name, *decls, **kwargs)


# How damage found by the detector becomes a mask: `detect` and `complete --mask auto`.
_DETECT_OPTIONS = (
    _detect("threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
            help="A pixel the detector gives at least this probability of damage is damage."),
    _detect("grow", type=click.IntRange(0, MAX_GROW),
            help="Widen what is found by this many pixels, so that halos are filled too."),
    _detect("detector", type=click.Path(path_type=str),
            help="A damage detector (a `train-detector` folder or its detector.weights.h5)  "
                 "[default: the model folder's, or the bundled one]"),
)


# The options `complete` and `evaluate` share: the model, the mask parameters and the search
# (CompleteOptions' fields); and the two options both end with.
_COMPLETION_OPTIONS = (
    click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=str),
                 help="A `train` output folder  [default: the bundled face model]"),
    _mask("center_scale", type=click.FloatRange(0, 0.5, max_open=True),
          help="center: fraction of the side kept on every edge (0.25: the hole is the middle "
               "half, a quarter of the area)."),
    _mask("fraction", type=click.FloatRange(0, 1), help="random: fraction of pixels missing."),
    _search("context_weight", type=click.Choice(CONTEXT_WEIGHT_KINDS),
            help="plain: every known pixel counts the same; window: known pixels count by the "
                 "share of missing pixels around them (the paper's weighting)."),
    _search("window", type=click.IntRange(1, MAX_WINDOW),
            help="Side of the square for --context-weight window (odd; a window of twice the "
                 "image's side already covers the whole image from every pixel)."),
    _search("lam", type=_WEIGHT,
            help="Weight of the perceptual (discriminator) loss; 0 needs no discriminator."),
    _search("prior", type=click.Choice(PRIORS),
            help="Perceptual loss: log(1 - D(G(z))) (the paper) or -log D(G(z))."),
    _search("optimizer", type=click.Choice(OPTIMIZERS),
            help="Projected Nesterov momentum, or Adam (as in the paper); z is clipped to "
                 "[-1, 1] after every step."),
    _search("lr", type=_LR,
            help=f"Step size  [default: {START_DEFAULTS['encoder']['lr']} from the encoder's "
                 f"guess, {START_DEFAULTS['random']['lr']} from random starts]"),
    _search("momentum", type=click.FloatRange(0, 1)),
    _search("iterations", type=click.IntRange(1, MAX_ITERATIONS),
            help=f"Search steps per image  [default: {START_DEFAULTS['encoder']['iterations']} "
                 f"from the encoder's guess, {START_DEFAULTS['random']['iterations']} from "
                 "random starts]"),
    _search("init", type=click.Choice(INITS),
            help="Where the search starts: the model's encoder's guess (models without one "
                 "start at random, with a note), or random points."),
    _search("anchor", type=_WEIGHT,
            help="Pull towards the encoder's guess E: with --init encoder the loss gains "
                 "ANCHOR * |z - E|^2 (0: off)."),
    _search("restarts", type=click.IntRange(1, MAX_RESTARTS),
            help="Starts per image; the lowest loss wins. With the encoder, the first is its "
                 "guess, half the others its guess plus noise, the rest random. A batch "
                 "searches --batch-size x --restarts starts at once: a run that would not fit "
                 "in the memory available is refused."),
    _search("tolerance", type=click.FloatRange(0, 1),
            help="Stop a batch early once no image's best loss improved by this fraction over "
                 "the last --out-interval iterations."),
    _search("out_interval", type=click.IntRange(1, MAX_ITERATIONS),
            help="Iterations between frames and loss records."),
    _search("batch_size", type=_BATCH, help="Images searched at once."),
    _search("blend", type=click.Choice(BLENDS),
            help="Poisson-blend the fill into the known pixels, or paste it as it is."),
)
_RUN_OPTIONS = (
    _search("precision", type=_PRECISIONS,
            help="Compute precision of the networks. auto: mixed_bfloat16 on GPUs of compute "
                 "capability 8.0 or later and on a CPU with native bfloat16 (AVX512-BF16/AMX) "
                 "and no GPU, else float32."),
    click.option("--threads", type=_THREADS, default=0, show_default=True, help=_THREADS_HELP),
)


def _with_options(options):
    """Apply a tuple of click options as one decorator, in the order listed."""

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--mask", default="center", show_default=True, help=_MASK_HELP)
@click.option("--out", "out_dir", default=COMPLETE_OUT, show_default=True,
              type=click.Path(file_okay=False, path_type=str),
              help="Output folder (created if missing; must not hold the inputs or masks).")
@_with_options(_COMPLETION_OPTIONS)
@click.option("--frames", is_flag=True, help="Write the completion every --out-interval "
                                              "iterations to OUT/frames/NAME/.")
@click.option("--gif", is_flag=True, help="Write OUT/NAME.gif of the iterations.")
@click.option("--strict", is_flag=True, help="Refuse images that are not the model's size "
                                              "(default: repair them as photos, or with --input "
                                              "crop centre-crop and resize them).")
@_photo("input_mode", "--input", type=click.Choice(PHOTO_INPUTS),
        help="auto: an image of exactly the model's size is an aligned crop, any other a photo, "
             "repaired at its own size; crop: centre-crop and resize every image; photo: every "
             "image is a photo.")
@_photo("format", type=click.Choice(PHOTO_FORMATS),
        help="File format of a repaired photo (jpg is lossy: pixels outside the hole then "
             "change a little).")
@_photo("quality", type=click.IntRange(1, 100), help="JPEG quality for --format jpg.")
@_photo("grain", "--grain/--no-grain",
        help="Add the photo's own fine noise, measured around the hole, to the model's fill "
             "(which is drawn at the model's size, so smoother than a large face).")
@_bulk("shard", metavar="K/N",
       help="Complete only the K-th of N slices of IMAGES (by sorted path), so that N processes "
            "or machines share one input list and one --out; summary.png and losses.csv become "
            "summary-K-of-N.png and losses-K-of-N.csv.")
@_bulk("distribute", type=click.Choice(COMPLETE_DISTRIBUTE),
       help="mirrored: split every batch between the local GPUs (or --devices).")
@_bulk("devices", help="With --distribute mirrored: the devices, as GPU:0,GPU:1  [default: every "
                       "GPU]. CPU:0,CPU:1 splits the CPU (for trying it out).")
@_search("seed", type=_SEED, help="Seed for random masks and starting z.")
@_search("variants", metavar="N", type=click.IntRange(1, MAX_VARIANTS),
         help="Fills to choose from per image: the usual one and N-1 more from search starts "
              "kept apart (each costs one more start per image). With N > 1 also writes "
              "NAME.variant1.png ... NAME.variantN.png (variant1 = NAME.png's pixels; PNG even "
              "with --format jpg) and NAME.spread.png, where the fills disagree: bright = a "
              "guess, dark = pinned down by the known pixels.")
@_with_options(_DETECT_OPTIONS)
@_with_options(_RUN_OPTIONS)
@_friendly_errors
def complete(images, mask, out_dir, checkpoint_dir, center_scale, fraction, frames, gif, strict,
             threads, input_mode, format, quality, grain, threshold, grow, detector, **options):
    """Fill in the masked part of IMAGES (aligned face crops, or photos) with the model.

    A photo (any image that is not the model's size, see --input) is repaired at its own size:
    its faces are found and aligned as `align` does, the mask is carried into each face's
    frame, all faces are completed in one search and blended back into the photo's hole;
    hole pixels no face covers are filled by Telea (OpenCV). Outside the hole every pixel stays
    as it was.

    \b
    Writes, for every input NAME, into --out:
      NAME.png            the completed image (known pixels untouched)
      NAME.masked.png     what the model was given
      NAME.generated.png  G(z) for the best z
      NAME.gif            the search, with --gif (frames/NAME/ with --frames)
      summary.png         input | masked | completed for every image
      losses.csv          contextual, perceptual and total loss every --out-interval iterations
                          (with --shard K/N: summary-K-of-N.png, losses-K-of-N.csv)
    and for a photo NAME instead:
      NAME.png            the repaired photo, its own size (NAME.jpg with --format jpg)
      NAME.masked.png     the photo with its hole gray
      NAME.face0.png ...  each repaired face, as the aligned crop the model completed
      NAME.face0.gif ...  with --gif: the search shown on the face's region of the photo
    and for either, with --variants N (N > 1):
      NAME.variant1.png ... NAME.variantN.png  the N fills (variant1 is NAME.png's)
      NAME.spread.png     their per-pixel spread over the fill: bright where they disagree
    An input whose outputs would take another's name (or summary.png's) gets the next free name
    (NAME_2), and the run says so.
    """
    bulk = BulkOptions(**{k: options.pop(k) for k in ("shard", "distribute", "devices")})
    options = CompleteOptions(**options)
    photo_options = PhotoOptions(input_mode=input_mode, format=format, quality=quality,
                                 grain=grain)
    mask_options = MaskOptions(center_scale, fraction)
    detect_options = DetectOptions(threshold=threshold, grow=grow, detector=detector)
    _start_tensorflow(threads)
    from dcgan_complete.complete import complete_files

    summary = complete_files(
        images, mask=mask, out_dir=out_dir, checkpoint_dir=checkpoint_dir, options=options,
        frames=frames, gif=gif, strict=strict, mask_options=mask_options,
        photo_options=photo_options, bulk=bulk, started=_STARTED, detect_options=detect_options)
    *notes, last = summary.lines()
    for line in notes:
        click.echo(line, err=line.startswith(("skipped", "note:")))
    click.echo(last)


# ------------------------------------------------------------------------------ train-detector
def _detector(name, *decls, **kwargs):
    return _option(DetectorOptions, name, *decls, **kwargs)


@main.command("train-detector")
@click.argument("data_dirs", nargs=-1, required=True, type=click.Path(path_type=str))
@_detector("out_dir", "--out", type=click.Path(file_okay=False, path_type=str),
           help="Checkpoints, TensorBoard logs and detector.weights.h5; a run there resumes.")
@_detector("steps", type=click.IntRange(1, MAX_ITERATIONS), help="Train up to this step.")
@_detector("batch_size", type=_BATCH, help="Tiles per step.")
@_detector("tile", type=click.IntRange(1, MAX_DETECTOR_TILE),
           help="Side of the training tiles in px (a multiple of 2 ** --levels).")
@_detector("base_filters", type=click.IntRange(1, MAX_DETECTOR_FILTERS),
           help="Width of the U-Net's full-resolution layer.")
@_detector("levels", type=click.IntRange(1, MAX_DETECTOR_LEVELS),
           help="How many times the U-Net halves the resolution.")
@_detector("lr", type=_LR, help="Adam's learning rate (cosine decay to a tenth).")
@_detector("clean_fraction", type=click.FloatRange(0, 1, max_open=True),
           help="Share of training tiles without damage.")
@_detector("hard_negatives", "--hard-negatives", multiple=True,
           type=click.Path(exists=True, path_type=str),
           help="A detector (folder or .weights.h5) whose false alarms on the training photos "
                "become training tiles, as clean; repeat for several.")
@_detector("hard_share", type=click.FloatRange(0, 1, max_open=True),
           help="Share of training tiles cut from --hard-negatives.")
@_detector("whole_share", type=click.FloatRange(0, 1, max_open=True),
           help="Share of training batches of whole photos, with their own borders, at "
                "half to all of --tile.")
@_detector("augment", type=click.FloatRange(0, 1),
           help="Share of training photos turned by a multiple of 90 degrees and recoloured "
                "(hue, saturation, brightness) before damage is drawn on them.")
@_detector("init", type=click.Path(exists=True, path_type=str),
           help="Start a new run from this detector (folder or .weights.h5) instead of random "
                "weights: as many filters, as many levels or more.")
@_detector("checkpoint_every", type=click.IntRange(1, MAX_ITERATIONS),
           help="Steps between checkpoints.")
@_detector("precision", type=_PRECISIONS, help="Compute precision.")
@_detector("seed", type=_SEED, help="Seed of the damage drawn and the tiles chosen.")
@click.option("--threads", type=_THREADS, default=0, show_default=True, help=_THREADS_HELP)
@_friendly_errors
def train_detector(data_dirs, threads, **options):
    """Train the damage detector on DATA_DIRS: folders of clean photos (searched recursively),
    over which synthetic damage is drawn (cracks, scratches, dust, creases, stains, ink, date
    stamps, torn corners, paint and lost emulsion) with old-photo looks on both sides.

    A fixed share of the photos (by a hash of their names) is held out for evaluation. Ctrl-C
    stops at the next step with a checkpoint; running again with the same --out resumes.
    `detect --detector OUT` and `complete --mask auto --detector OUT` use the result.
    """
    options = DetectorOptions(**options)
    _start_tensorflow(threads)
    from dcgan_complete.detector import train_detector as run

    result = run(data_dirs, options)
    for note in result.notes:
        click.echo(note, err=True)
    if result.hard_negatives:
        click.echo(f"trained with {result.hard_negatives} hard-negative tiles")
    click.echo(f"{result.stopped} at step {result.step} after {result.seconds:.0f} s; detector "
               f"in {display_name(options.out_dir)}/")
    if result.stopped == "interrupted":
        sys.exit(result.exit_code)


# --------------------------------------------------------------------------------------- detect
@main.command()
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--out", "out_dir", default=DETECT_OUT, show_default=True,
              type=click.Path(file_okay=False, path_type=str),
              help="Output folder for the masks (created if missing; must not hold the photos).")
@_with_options(_DETECT_OPTIONS)
@_detect("overlay", is_flag=True,
         help="Also write OUT/NAME.overlay.png: the damage found, in colour over the photo.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=str),
              help="A model folder whose detector.weights.h5 to use  [default: the bundled "
                   "detector]")
@click.option("--threads", type=_THREADS, default=0, show_default=True, help=_THREADS_HELP)
@_friendly_errors
def detect(photos, out_dir, threshold, grow, detector, overlay, checkpoint_dir, threads):
    """Find the damage in PHOTOS (cracks, scratches, dust, stains, ink, date stamps, torn
    corners, paint) and write it as masks.

    \b
    Writes, for every photo NAME, into --out:
      NAME.png          the mask, the photo's size and upright: white = intact, black = damage
      NAME.overlay.png  with --overlay: the damage found, in colour over the photo
    `dcgan-complete complete PHOTOS --mask OUT/` repairs what the masks mark, so they can be
    checked or touched up in any paint program first; `complete --mask auto` does both at once.
    """
    options = DetectOptions(threshold=threshold, grow=grow, overlay=overlay, detector=detector)
    _start_tensorflow(threads)
    from dcgan_complete.detect import detect_files

    summary = detect_files(photos, out_dir, options, model_dir=checkpoint_dir)
    *notes, last = summary.lines()
    for line in notes:
        click.echo(line, err=line.startswith("skipped"))
    click.echo(last)


# ---------------------------------------------------------------------------------------- align
def _align(name, *decls, **kwargs):
    return _option(AlignOptions, name, *decls, **kwargs)


@main.command()
@click.argument("raw_dir", type=click.Path(path_type=str))
@click.argument("aligned_dir", type=click.Path(file_okay=False, path_type=str))
@_align("size", type=click.IntRange(MIN_ALIGN_SIZE, MAX_ALIGN_SIZE),
        help="Side of the square crops in pixels.")
@_align("landmarks", type=click.Choice(ALIGN_LANDMARKS),
        help="The three dlib landmarks mapped exactly onto OpenFace's template.")
@_align("all_faces", is_flag=True,
        help="Write every face of a photo as NAME_0.png, NAME_1.png, ... (largest first) "
             "instead of only the largest.")
@_align("skip_multi", is_flag=True,
        help="Skip photos with more than one face (listed in the report).")
@_align("upsample", type=click.Choice(UPSAMPLES),
        callback=lambda c, p, v: v if v == "auto" else int(v),
        help="Double the photo this often before detecting; 1 finds faces down to about "
             "40 px but is 4x slower; auto tries 1 only where 0 finds nothing.")
@_align("border", type=click.Choice(ALIGN_BORDERS),
        help="Fill where the crop reaches past the photo's edge: mirrored photo, or black "
             "as OpenFace does.")
@_align("workers", type=click.IntRange(1, MAX_WORKERS),
        help="Processes to run in parallel  [default: number of cores]")
@_align("predictor", type=click.Path(dir_okay=False, path_type=str),
        help="dlib's shape_predictor_68_face_landmarks.dat  [default: the one from the "
             "face-recognition-models package]")
@_friendly_errors
def align(raw_dir, aligned_dir, **options):
    """Crop every face in RAW_DIR's photos to an aligned square PNG in ALIGNED_DIR.

    RAW_DIR is searched recursively for image files (.jpg, .png, .tif, .bmp, .webp); the
    crops go into ALIGNED_DIR without subfolders, named after their photo.  Existing crops are
    skipped, so an interrupted run continues where it stopped; ALIGNED_DIR/align_options.json
    keeps --size, --landmarks, --border and --all-faces, which a later run into it must repeat.
    Photos without a usable face are listed, with the reason, in ALIGNED_DIR/align_report.csv.
    """
    options = AlignOptions(**options)
    from dcgan_complete.align import align_folder

    summary = align_folder(raw_dir, aligned_dir, options)
    click.echo(summary)
    click.echo(f"report: {display_name(summary.report_path)}")


# ------------------------------------------------------------------------------------- evaluate
def _evaluate(name, *decls, **kwargs):
    return _option(EvaluateOptions, name, *decls, **kwargs)


@main.command()
@click.argument("aligned_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--mask", "masks", multiple=True,
              help=f"A mask kind to evaluate; repeat for several  [default: "
                   f"{', '.join(EVALUATE_MASKS)}, the paper's four (left is its 'half')]. Any "
                   "kind of `complete --mask` but full and lowres.")
@click.option("--method", "methods", multiple=True,
              help=f"A method to score; repeat for several  [default: all]: "
                   f"{', '.join(EVALUATE_METHODS)} (ours is the model).")
@_evaluate("limit", type=click.IntRange(min=1),
           help="Use only this many images, drawn at random with --seed.")
@_evaluate("sweep", metavar="N,N,...",
           help="Time to quality instead: score the model after each of these iteration counts "
                "(e.g. 25,50,100,200,500,1000), for random and encoder starts, float32 and "
                "bfloat16; writes sweep.csv, sweep.json and sweep.png.")
@click.option("--photos", is_flag=True,
              help="ALIGNED_DIR holds ordinary photos (RAW_DIR): cut a hole over the middle of "
                   "every face at the photo's scale and score the repaired photos at full "
                   "resolution (PSNR of the hole, dlib finds the face again)  [methods default: "
                   f"{', '.join(PHOTO_EVALUATE_METHODS)}; mask default: "
                   f"{', '.join(PHOTO_EVALUATE_MASKS)}].")
@click.option("--detect", is_flag=True,
              help="ALIGNED_DIR holds clean photos (PHOTO_DIR): draw synthetic damage over each "
                   "(seeded by --seed) and score the damage detector (precision, recall, F1 "
                   "within 2 px, IoU, share flagged on the clean photos) and the repairs "
                   "(whole-photo PSNR: damaged, --mask auto, the true mask, Telea); "
                   "per_photo.csv has each photo's kinds of damage and scores.")
@click.option("--out", "out_dir", default=EVALUATE_OUT, show_default=True,
              type=click.Path(file_okay=False, path_type=str),
              help="Output folder (created if missing).")
@_with_options(_COMPLETION_OPTIONS)
@_with_options(_DETECT_OPTIONS)
@_evaluate("seed", type=_SEED,
           help="Seed for the choice of images, the random masks and the starting z.")
@_with_options(_RUN_OPTIONS)
@_friendly_errors
def evaluate(aligned_dir, masks, methods, limit, sweep, photos, detect, out_dir, checkpoint_dir,
             center_scale, fraction, seed, threads, threshold, grow, detector, **options):
    """Score the model's completions of ALIGNED_DIR's faces against the originals.

    Every image is masked with every --mask and filled by the model (all of `complete`'s
    options apply) and by classical inpainting: scikit-image's biharmonic, OpenCV's Telea and
    Navier-Stokes, and the mean colour of the known pixels.  Use faces the model never saw.
    The baselines need `pip install 'dcgan-complete[eval]'`.

    With --photos, ALIGNED_DIR is a folder of ordinary photos, repaired at their own size as
    `complete` does (see --photos); it writes summary.csv, summary.json, per_photo.csv,
    per_face.csv (who repaired each damaged face: the model, or Telea and why),
    comparison.png (original | masked | each method, per face) and worst.png (the same for
    the five faces the model filled worst, by hole PSNR).

    \b
    Prints a table (reStructuredText) and writes into --out:
      summary.csv, summary.json  per mask and method: PSNR, PSNR of the hole, SSIM, share with a
                                 face found (dlib, padded and 4x enlarged), embedding distance to the
                                 original (and share < 0.6: same person), seconds per image
      per_image.csv              every score of every image
      comparison.png             original | masked | ours | biharmonic | telea, per mask
    """
    evaluation = EvaluateOptions(masks=masks, methods=methods, limit=limit, seed=seed,
                                 photos=photos, sweep=sweep, detect=detect)
    options = CompleteOptions(seed=evaluation.seed, **options)
    mask_options = MaskOptions(center_scale, fraction)
    detect_options = DetectOptions(threshold=threshold, grow=grow, detector=detector)
    _start_tensorflow(threads)

    if evaluation.detect:
        from dcgan_complete.evaluate import evaluate_detection

        result = evaluate_detection(aligned_dir, checkpoint_dir, evaluation, out_dir=out_dir,
                                    options=options, detect_options=detect_options)
        click.echo(result.report())
        click.echo(f"\n{result.photos} photo(s) in {result.seconds:.1f} s; report in "
                   f"{display_name(result.out_dir)}/")
        return

    if evaluation.sweep:
        from dcgan_complete.sweep import time_to_quality

        result = time_to_quality(aligned_dir, checkpoint_dir=checkpoint_dir,
                                 masks=evaluation.mask_kinds, iterations=evaluation.sweep,
                                 limit=evaluation.limit, seed=evaluation.seed, out_dir=out_dir,
                                 options=options, mask_options=mask_options)
        click.echo(result.report())
        click.echo(f"\n{result.images} image(s) in {result.seconds:.1f} s; sweep.csv, sweep.json "
                   f"and sweep.png in {display_name(result.out_dir)}/")
        return

    if evaluation.photos:
        from dcgan_complete.evaluate import evaluate_photos

        result = evaluate_photos(aligned_dir, checkpoint_dir, evaluation, out_dir=out_dir,
                                 options=options, mask_options=mask_options)
        for path, reason in result.skipped:
            click.echo(f"skipped {path}: {reason}", err=True)
        click.echo(result.report())
        click.echo(f"\n{result.photos} photo(s) in {result.seconds:.1f} s; report in "
                   f"{display_name(result.out_dir)}/")
        return

    from dcgan_complete.evaluate import evaluate as run_evaluation

    summary = run_evaluation(aligned_dir, checkpoint_dir, evaluation, out_dir=out_dir,
                             options=options, mask_options=mask_options)
    for path, reason in summary.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    if summary.resized:
        click.echo(f"warning: {summary.resized} image(s) were centre-cropped and resized to the "
                   "model's size", err=True)
    click.echo(summary.report())
    click.echo(f"\n{summary.images} image(s) in {summary.seconds:.1f} s; report in "
               f"{display_name(summary.out_dir)}/")


# ----------------------------------------------------------------------------------------- demo
def _demo(name, *decls, **kwargs):
    return _option(DemoOptions, name, *decls, **kwargs)


@main.command()
@click.option("--out", "out_dir", default=DEMO_OUT, show_default=True,
              type=click.Path(file_okay=False, path_type=str), help="Output folder.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=str),
              help="A `train` output folder  [default: the bundled face model]")
@_demo("samples", type=click.Path(file_okay=False, path_type=str),
       help="A folder of aligned faces  [default: the bundled sample faces]")
@_demo("iterations", type=click.IntRange(1, MAX_ITERATIONS),
       help="Search steps per image  [default: complete's]")
@_demo("seed", type=_SEED, help="Seed for the random masks and the starting z.")
@_with_options(_RUN_OPTIONS)
@_friendly_errors
def demo(out_dir, checkpoint_dir, threads, **options):
    """Complete the sample faces with center, random, scratches and text masks.

    Writes OUT/summary.png (one row per face: original, then masked | completed per mask) and,
    per mask, OUT/KIND/ with what `complete --gif` writes.
    """
    options = DemoOptions(**options)
    _start_tensorflow(threads)
    from dcgan_complete.demo import run_demo

    summary = run_demo(out_dir, checkpoint_dir=checkpoint_dir, demo=options)
    click.echo(f"done: {display_name(summary)} (and one folder per mask in "
               f"{display_name(out_dir)}/)")


# ---------------------------------------------------------------------------------------- serve
def _serve(name, *decls, **kwargs):
    return _option(ServeOptions, name, *decls, **kwargs)


@main.command()
@_serve("host", help="Address to listen on. The default is this machine only; 0.0.0.0 lets "
                     "anyone on the network use the page.")
@_serve("port", type=click.IntRange(1, 65535))
@_serve("concurrency", type=click.IntRange(1, MAX_CONCURRENCY),
        help="Searches at once (each uses every core, so 1 serves everyone fastest).")
@_serve("queue_size", type=click.IntRange(1, MAX_QUEUE_SIZE),
        help="Requests that may wait for a search (each is told its place); one more is told "
             "that the queue is full.")
@_serve("max_upload_mb", type=click.IntRange(1, MAX_UPLOAD_MB),
        help="Larger uploads are refused.")
@_serve("max_megapixels", type=click.FloatRange(0, MAX_UPLOAD_MEGAPIXELS, min_open=True),
        help="Larger images are refused before they are decoded.")
@_with_options(_COMPLETION_OPTIONS)
@_search("seed", type=_SEED, help="The page's default seed (random masks and starting z).")
@_with_options(_DETECT_OPTIONS[:2])
@_detect("detector", type=click.Path(path_type=str),
         help="The damage detector that paints what it finds on each upload  [default: the "
              "model folder's, or the bundled one; none: the user paints it all]")
@_with_options(_RUN_OPTIONS)
@_friendly_errors
def serve(host, port, concurrency, queue_size, max_upload_mb, max_megapixels, checkpoint_dir,
          center_scale, fraction, threshold, grow, detector, threads, **options):
    """Serve a web page that repairs damaged photos and faces.

    Upload a photo (or an aligned face): the damage detector paints what it finds on it, the
    brush and eraser correct that, Complete repairs it (faces by the model, the rest by Telea)
    and shows it before/after, with the PNG, JPEG, mask and GIF to download, and with
    "Alternatives" several fills to pick from and their spread map. The search options given
    here are the page's defaults (its "Advanced" section); --threshold and --grow are the
    detector's. Needs `pip install 'dcgan-complete[app]'`. Runs offline; every file stays in a
    temporary folder that is removed when the server stops (Ctrl-C).
    """
    serve_options = ServeOptions(host, port, concurrency, queue_size, max_upload_mb,
                                 max_megapixels)
    options = CompleteOptions(**options)
    mask_options = MaskOptions(center_scale, fraction)
    _start_tensorflow(threads)
    from dcgan_complete.app import check_serving, page_detector, serve as run_server
    from dcgan_complete.search import load_completer

    if serve_options.public:
        click.echo(f"warning: --host {host} lets anyone who can reach this machine on the "
                   "network use the page (and its CPU)", err=True)
    detect_options = DetectOptions(threshold, grow, detector=detector)
    check_serving(serve_options)
    completer = load_completer(checkpoint_dir, options)
    found = page_detector(detect_options, checkpoint_dir)
    if found is None:
        click.echo(f"note: {display_name(checkpoint_dir)} has no damage detector: the page "
                   "asks the user to paint all of the damage (--detector names one)", err=True)
    run_server(completer, serve_options, mask_options, detector=found,
               detect_options=detect_options,
               ready=lambda url, temp: click.echo(f"serving on {url} (Ctrl-C to stop)"))
