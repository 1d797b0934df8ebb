"""The ``dcgan-complete`` command line: parses options and calls the library, nothing more.

TensorFlow is imported only inside the commands that need it, so ``--help`` stays fast.
"""
from __future__ import annotations

import functools
import os
import sys

import click

# TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) is noise for a CLI user;
# export TF_CPP_MIN_LOG_LEVEL=0 to see it again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dcgan_complete import __version__
from dcgan_complete.errors import DcganError, OptionError, exit_code_of, signals_interrupt
from dcgan_complete.files import display_name
from dcgan_complete.options import (ALIGN_BORDERS, ALIGN_LANDMARKS, COMPLETE_OUT,
                                    DEMO_ITERATIONS, DEMO_OUT, EVALUATE_OUT, MIN_ALIGN_SIZE,
                                    AlignOptions, CompleteOptions, MaskOptions, TrainOptions,
                                    default)


def _flag(option):
    """The current command's flag for a library option name (``out_dir`` -> ``--out``)."""
    ctx = click.get_current_context(silent=True)
    for param in ctx.command.params if ctx else ():
        if param.name == option and param.opts:
            return max(param.opts, key=len) if isinstance(param, click.Option) else \
                param.human_readable_name
    return option


def _friendly_errors(func):
    """Run a command so that whatever goes wrong ends in one line and the right exit status.

    The library's errors (with its option names replaced by this command's flags) and OS errors
    become ``Error: ...`` (status 1); Ctrl-C and SIGTERM stop the run through the code's normal
    clean-up (temporary files removed, ``train`` checkpoints) and exit 130 and 143.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with signals_interrupt():
                return func(*args, **kwargs)
        except OptionError as exc:
            raise click.ClickException(exc.format(_flag)) from None
        except DcganError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = f"{display_name(exc.filename)}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None
        except KeyboardInterrupt as exc:
            click.echo("interrupted", err=True)
            sys.exit(exit_code_of(exc))
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


# ---------------------------------------------------------------------------------------- train
def _train(name, *decls, **kwargs):
    return _option(TrainOptions, name, *decls, **kwargs)


@main.command()
@click.option("--dataset", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder of training images (.png/.jpg/.jpeg, searched recursively).")
@_train("epochs", type=click.IntRange(min=1), help="Passes over the dataset.")
@_train("max_steps", type=click.IntRange(min=1),
        help="Stop after this many steps in all (counting earlier runs), even mid-epoch.")
@_train("batch_size", type=click.IntRange(min=1))
@_train("image_size", type=click.Choice(["16", "32", "64", "128"]),
        callback=lambda c, p, v: int(v),
        help="Side of the square images the model makes; others are centre-cropped and resized.")
@_train("z_dim", type=click.IntRange(min=1), help="Length of the latent vector z.")
@_train("gf_dim", type=click.IntRange(min=1), help="Filters in the generator's last hidden layer.")
@_train("df_dim", type=click.IntRange(min=1),
        help="Filters in the discriminator's first layer.")
@_train("lr", type=click.FloatRange(min=0, min_open=True),
        help="Adam learning rate for both networks.")
@_train("beta1", type=click.FloatRange(0, 1), help="Adam beta1.")
@_train("g_steps", type=click.IntRange(min=1), help="Generator updates per discriminator update.")
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
@_train("seed", type=int, help="Random seed for weights, z and shuffling.")
@_train("precision", type=click.Choice(["auto", "float32", "mixed_bfloat16"]),
        help="Compute precision; weights stay float32 either way. auto: mixed_bfloat16 on a CPU "
             "with native bfloat16 (AVX512-BF16/AMX) and no GPU, else float32.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="CPU threads for TensorFlow (0: all cores).")
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
    "the model's size. Kinds: center (the middle; --center-scale), random (--fraction of "
    "pixels missing), left/right/top/bottom (half), grid (every 4th row and column known), "
    "pattern (random blotches, ~25%), full (nothing missing: projection), lowres (only 8x8 "
    "block averages known), scratches, text, irregular (brush strokes). Random kinds follow "
    "--seed.")


def _search(name, *decls, **kwargs):
    return _option(CompleteOptions, name, *decls, **kwargs)


def _mask(name, *decls, **kwargs):
    return _option(MaskOptions, name, *decls, **kwargs)


# The options `complete` and `evaluate` share: the model, the mask parameters and the search
# (CompleteOptions' fields); and the two options both end with.
_COMPLETION_OPTIONS = (
    click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=str),
                 help="A `train` output folder  [default: the bundled face model]"),
    _mask("center_scale", type=click.FloatRange(0, 0.5, max_open=True),
          help="center: fraction of the side kept on every edge (0.25: the hole is the middle "
               "half, a quarter of the area)."),
    _mask("fraction", type=click.FloatRange(0, 1), help="random: fraction of pixels missing."),
    _search("context_weight", type=click.Choice(["plain", "window"]),
            help="plain: every known pixel counts the same; window: known pixels count by the "
                 "share of missing pixels around them (the paper's weighting)."),
    _search("window", type=click.IntRange(min=1),
            help="Side of the square for --context-weight window (odd)."),
    _search("lam", type=click.FloatRange(min=0),
            help="Weight of the perceptual (discriminator) loss; 0 needs no discriminator."),
    _search("prior", type=click.Choice(["log1m", "nonsat"]),
            help="Perceptual loss: log(1 - D(G(z))) (the paper) or -log D(G(z))."),
    _search("optimizer", type=click.Choice(["momentum", "adam"]),
            help="Projected Nesterov momentum, or Adam (as in the paper); z is clipped to "
                 "[-1, 1] after every step."),
    _search("lr", type=click.FloatRange(min=0, min_open=True)),
    _search("momentum", type=click.FloatRange(0, 1)),
    _search("iterations", type=click.IntRange(min=1)),
    _search("restarts", type=click.IntRange(min=1),
            help="Random starts per image; the lowest loss wins."),
    _search("tolerance", type=click.FloatRange(min=0),
            help="Stop a batch early once no image's best loss improved by this fraction over "
                 "the last --out-interval iterations."),
    _search("out_interval", type=click.IntRange(min=1),
            help="Iterations between frames and loss records."),
    _search("batch_size", type=click.IntRange(min=1)),
    _search("blend", type=click.Choice(["poisson", "none"]),
            help="Poisson-blend the fill into the known pixels, or paste it as it is."),
)
_RUN_OPTIONS = (
    _search("precision", type=click.Choice(["float32", "mixed_bfloat16"])),
    click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
                 help="CPU threads for TensorFlow (0: all cores)."),
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
                                              "(default: centre-crop and resize them).")
@_search("seed", type=int, help="Seed for random masks and starting z.")
@_with_options(_RUN_OPTIONS)
@_friendly_errors
def complete(images, mask, out_dir, checkpoint_dir, center_scale, fraction, frames, gif, strict,
             threads, **options):
    """Fill in the masked part of IMAGES (aligned face crops) with the model.

    \b
    Writes, for every input NAME, into --out:
      NAME.png            the completed image (known pixels untouched)
      NAME.masked.png     what the model was given
      NAME.generated.png  G(z) for the best z
      NAME.gif            the search, with --gif (frames/NAME/ with --frames)
      summary.png         input | masked | completed for every image
      losses.csv          contextual, perceptual and total loss every --out-interval iterations
    An input whose outputs would take another's name (or summary.png's) gets the next free name
    (NAME_2), and the run says so.
    """
    import warnings

    options = CompleteOptions(**options)
    mask_options = MaskOptions(center_scale, fraction)
    _start_tensorflow(threads)
    from dcgan_complete.complete import ResizeWarning, complete_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResizeWarning)
        summary = complete_files(
            images, mask=mask, out_dir=out_dir, checkpoint_dir=checkpoint_dir, options=options,
            frames=frames, gif=gif, strict=strict, mask_options=mask_options)
    for w in caught:
        if issubclass(w.category, ResizeWarning):
            click.echo(f"warning: {w.message} (use --strict to refuse them)", err=True)
    for path, reason in summary.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    for path, name in summary.renamed:
        click.echo(f"note: {path} is written as {name}.png (its own name is taken by another "
                   "output)", err=True)
    click.echo(f"completed {summary.completed} image(s) in {summary.seconds:.1f} s "
               f"({summary.iterations} iterations); results in {display_name(summary.out_dir)}/")


# ---------------------------------------------------------------------------------------- align
def _align(name, *decls, **kwargs):
    return _option(AlignOptions, name, *decls, **kwargs)


@main.command()
@click.argument("raw_dir", type=click.Path(path_type=str))
@click.argument("aligned_dir", type=click.Path(file_okay=False, path_type=str))
@_align("size", type=click.IntRange(min=MIN_ALIGN_SIZE), help="Side of the square crops in pixels.")
@_align("landmarks", type=click.Choice(ALIGN_LANDMARKS),
        help="The three dlib landmarks mapped exactly onto OpenFace's template.")
@_align("all_faces", is_flag=True,
        help="Write every face of a photo as NAME_0.png, NAME_1.png, ... (largest first) "
             "instead of only the largest.")
@_align("skip_multi", is_flag=True,
        help="Skip photos with more than one face (listed in the report).")
@_align("upsample", type=click.Choice(["0", "1", "auto"]),
        callback=lambda c, p, v: v if v == "auto" else int(v),
        help="Double the photo this often before detecting; 1 finds faces down to about "
             "40 px but is 4x slower; auto tries 1 only where 0 finds nothing.")
@_align("border", type=click.Choice(ALIGN_BORDERS),
        help="Fill where the crop reaches past the photo's edge: mirrored photo, or black "
             "as OpenFace does.")
@_align("workers", type=click.IntRange(min=1),
        help="Processes to run in parallel  [default: number of cores]")
@_align("predictor", type=click.Path(dir_okay=False, path_type=str),
        help="dlib's shape_predictor_68_face_landmarks.dat  [default: the one from the "
             "face-recognition-models package]")
@_friendly_errors
def align(raw_dir, aligned_dir, **options):
    """Crop every face in RAW_DIR's photos to an aligned square PNG in ALIGNED_DIR.

    RAW_DIR is searched recursively for .jpg, .jpeg and .png files; the crops go into
    ALIGNED_DIR without subfolders, named after their photo.  Existing crops are skipped, so
    an interrupted run continues where it stopped; ALIGNED_DIR/align_options.json keeps
    --size, --landmarks, --border and --all-faces, which a later run into it must repeat.
    Photos without a usable face are listed, with the reason, in ALIGNED_DIR/align_report.csv.
    """
    options = AlignOptions(**options)
    from dcgan_complete.align import align_folder

    summary = align_folder(raw_dir, aligned_dir, options)
    click.echo(summary)
    click.echo(f"report: {display_name(summary.report_path)}")


# ------------------------------------------------------------------------------------- evaluate
@main.command()
@click.argument("aligned_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--mask", "masks", multiple=True,
              help="A mask kind to evaluate; repeat for several  [default: center, pattern, "
                   "random and left, the paper's four (left is its 'half')]. Any kind of "
                   "`complete --mask` but full and lowres.")
@click.option("--method", "methods", multiple=True,
              help="A method to score; repeat for several  [default: all]: ours (the model), "
                   "biharmonic, telea, navier-stokes, mean.")
@click.option("--limit", type=click.IntRange(min=1),
              help="Use only this many images, drawn at random with --seed.")
@click.option("--out", "out_dir", default=EVALUATE_OUT, show_default=True,
              type=click.Path(file_okay=False, path_type=str),
              help="Output folder (created if missing).")
@_with_options(_COMPLETION_OPTIONS)
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed for the choice of images, the random masks and the starting z.")
@_with_options(_RUN_OPTIONS)
@_friendly_errors
def evaluate(aligned_dir, masks, methods, limit, out_dir, checkpoint_dir, center_scale, fraction,
             seed, threads, **options):
    """Score the model's completions of ALIGNED_DIR's faces against the originals.

    Every image is masked with every --mask and filled by the model (all of `complete`'s
    options apply) and by classical inpainting: scikit-image's biharmonic, OpenCV's Telea and
    Navier-Stokes, and the mean colour of the known pixels.  Use faces the model never saw.
    The baselines need `pip install 'dcgan-complete[eval]'`.

    \b
    Prints a table (reStructuredText) and writes into --out:
      summary.csv, summary.json  per mask and method: PSNR, PSNR of the hole, SSIM, share with a
                                 face found (dlib, padded and 4x enlarged), embedding distance to the
                                 original (and share < 0.6: same person), seconds per image
      per_image.csv              every score of every image
      comparison.png             original | masked | ours | biharmonic | telea, per mask
    """
    options = CompleteOptions(seed=seed, **options)
    mask_options = MaskOptions(center_scale, fraction)
    _start_tensorflow(threads)
    from dcgan_complete.evaluate import DEFAULT_MASKS, METHODS, evaluate as run_evaluation

    summary = run_evaluation(
        aligned_dir, checkpoint_dir=checkpoint_dir, masks=masks or DEFAULT_MASKS,
        methods=methods or METHODS, limit=limit, seed=seed, out_dir=out_dir,
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
@main.command()
@click.option("--out", "out_dir", default=DEMO_OUT, show_default=True,
              type=click.Path(file_okay=False, path_type=str), help="Output folder.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=str),
              help="A `train` output folder  [default: the bundled face model]")
@click.option("--samples", type=click.Path(file_okay=False, path_type=str),
              help="A folder of aligned faces  [default: the bundled sample faces]")
@click.option("--iterations", default=DEMO_ITERATIONS, show_default=True,
              type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@_with_options(_RUN_OPTIONS)
@_friendly_errors
def demo(out_dir, checkpoint_dir, samples, iterations, seed, precision, threads):
    """Complete the sample faces with center, random, scratches and text masks.

    Writes OUT/summary.png (one row per face: original, then masked | completed per mask) and,
    per mask, OUT/KIND/ with what `complete --gif` writes.
    """
    options = CompleteOptions(iterations=iterations, seed=seed, precision=precision)
    _start_tensorflow(threads)
    from dcgan_complete.demo import run_demo

    summary = run_demo(out_dir, checkpoint_dir=checkpoint_dir, samples=samples, options=options)
    click.echo(f"done: {display_name(summary)} (and one folder per mask in "
               f"{display_name(out_dir)}/)")
