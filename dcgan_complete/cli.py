"""The ``dcgan-complete`` command line: parses options and calls the library, nothing more.

TensorFlow is imported only inside the commands that need it, so ``--help`` stays fast.
"""
from __future__ import annotations

import functools
import os

import click

# TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) is noise for a CLI user;
# export TF_CPP_MIN_LOG_LEVEL=0 to see it again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dcgan_complete import __version__
from dcgan_complete.errors import DcganError


def _friendly_errors(func):
    """Turn the library's DcganError (and a missing optional dependency) into one clear line."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DcganError as exc:
            raise click.ClickException(str(exc)) from None
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


# ---------------------------------------------------------------------------------------- train
@main.command()
@click.option("--dataset", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder of training images (.png/.jpg/.jpeg, searched recursively).")
@click.option("--epochs", default=25, show_default=True, type=click.IntRange(min=1),
              help="Passes over the dataset.")
@click.option("--max-steps", type=click.IntRange(min=1),
              help="Stop after this many steps in all (counting earlier runs), even mid-epoch.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--image-size", default=64, show_default=True,
              type=click.Choice(["16", "32", "64", "128"]), callback=lambda c, p, v: int(v),
              help="Side of the square images the model makes; others are centre-cropped "
                   "and resized.")
@click.option("--z-dim", default=100, show_default=True, type=click.IntRange(min=1),
              help="Length of the latent vector z.")
@click.option("--gf-dim", default=64, show_default=True, type=click.IntRange(min=1),
              help="Filters in the generator's last hidden layer.")
@click.option("--df-dim", default=64, show_default=True, type=click.IntRange(min=1),
              help="Filters in the discriminator's first layer.")
@click.option("--lr", default=2e-4, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Adam learning rate for both networks.")
@click.option("--beta1", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Adam beta1.")
@click.option("--g-steps", default=2, show_default=True, type=click.IntRange(min=1),
              help="Generator updates per discriminator update.")
@click.option("--checkpoint-dir", default="checkpoint", show_default=True,
              type=click.Path(file_okay=False, path_type=str),
              help="Checkpoints, config and exported weights; training resumes from here.")
@click.option("--sample-dir", type=click.Path(file_okay=False, path_type=str),
              help="Where sample grids go  [default: CHECKPOINT_DIR/samples]")
@click.option("--log-dir", type=click.Path(file_okay=False, path_type=str),
              help="TensorBoard logs  [default: CHECKPOINT_DIR/logs]")
@click.option("--sample-every", default=100, show_default=True, type=click.IntRange(min=1),
              help="Steps between 8x8 sample grids (from a fixed z).")
@click.option("--checkpoint-every", default=500, show_default=True, type=click.IntRange(min=1),
              help="Steps between checkpoints (one is also written at the end and on Ctrl-C).")
@click.option("--keep", default=3, show_default=True, type=click.IntRange(min=1),
              help="How many checkpoints to keep.")
@click.option("--seed", type=int, help="Random seed for weights, z and shuffling.")
@click.option("--precision", default="auto", show_default=True,
              type=click.Choice(["auto", "float32", "mixed_bfloat16"]),
              help="Compute precision; weights stay float32 either way. auto: mixed_bfloat16 on "
                   "a CPU with native bfloat16 (AVX512-BF16/AMX) and no GPU, else float32.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="CPU threads for TensorFlow (0: all cores).")
@_friendly_errors
def train(dataset, threads, **options):
    """Train a DCGAN on a folder of aligned face images.

    Running it again with the same --checkpoint-dir resumes where the last run stopped.
    """
    _start_tensorflow(threads)
    from dcgan_complete.train import TrainOptions, train as run_training

    run_training(dataset, TrainOptions(**options))


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


# The options `complete` and `evaluate` share: the model, the mask parameters and the search
# (CompleteOptions' fields); and the two options both end with.
_COMPLETION_OPTIONS = (
    click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=str),
                 help="A `train` output folder  [default: the bundled face model]"),
    click.option("--center-scale", default=0.25, show_default=True, type=click.FloatRange(0, 0.5),
                 help="center: fraction of the side kept on every edge (0.25: the hole is the "
                      "middle half, a quarter of the area)."),
    click.option("--fraction", default=0.8, show_default=True, type=click.FloatRange(0, 1),
                 help="random: fraction of pixels missing."),
    click.option("--context-weight", default="window", show_default=True,
                 type=click.Choice(["plain", "window"]),
                 help="plain: every known pixel counts the same; window: known pixels count by "
                      "the share of missing pixels around them (the paper's weighting)."),
    click.option("--window", default=7, show_default=True, type=click.IntRange(min=1),
                 help="Side of the square for --context-weight window (odd)."),
    click.option("--lam", default=0.1, show_default=True, type=click.FloatRange(min=0),
                 help="Weight of the perceptual (discriminator) loss."),
    click.option("--prior", default="log1m", show_default=True,
                 type=click.Choice(["log1m", "nonsat"]),
                 help="Perceptual loss: log(1 - D(G(z))) (the paper) or -log D(G(z))."),
    click.option("--optimizer", default="momentum", show_default=True,
                 type=click.Choice(["momentum", "adam"]),
                 help="Projected Nesterov momentum, or Adam (as in the paper); z is clipped to "
                      "[-1, 1] after every step."),
    click.option("--lr", default=0.01, show_default=True,
                 type=click.FloatRange(min=0, min_open=True)),
    click.option("--momentum", default=0.9, show_default=True, type=click.FloatRange(0, 1)),
    click.option("--iterations", default=1000, show_default=True, type=click.IntRange(min=1)),
    click.option("--restarts", default=1, show_default=True, type=click.IntRange(min=1),
                 help="Random starts per image; the lowest loss wins."),
    click.option("--tolerance", type=click.FloatRange(min=0),
                 help="Stop a batch early once no image's best loss improved by this fraction "
                      "over the last --out-interval iterations."),
    click.option("--out-interval", default=50, show_default=True, type=click.IntRange(min=1),
                 help="Iterations between frames and loss records."),
    click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1)),
    click.option("--blend", default="poisson", show_default=True,
                 type=click.Choice(["poisson", "none"]),
                 help="Poisson-blend the fill into the known pixels, or paste it as it is."),
)
_RUN_OPTIONS = (
    click.option("--precision", default="float32", show_default=True,
                 type=click.Choice(["float32", "mixed_bfloat16"])),
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
@click.option("--out", "out_dir", default="out", show_default=True,
              type=click.Path(file_okay=False, path_type=str),
              help="Output folder (created if missing).")
@_with_options(_COMPLETION_OPTIONS)
@click.option("--frames", is_flag=True, help="Write the completion every --out-interval "
                                              "iterations to OUT/frames/NAME/.")
@click.option("--gif", is_flag=True, help="Write OUT/NAME.gif of the iterations.")
@click.option("--strict", is_flag=True, help="Refuse images that are not the model's size "
                                              "(default: centre-crop and resize them).")
@click.option("--seed", type=int, help="Seed for random masks and starting z.")
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
    """
    import warnings

    _start_tensorflow(threads)
    from dcgan_complete.complete import CompleteOptions, ResizeWarning, complete_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResizeWarning)
        summary = complete_files(
            images, mask=mask, out_dir=out_dir, checkpoint_dir=checkpoint_dir,
            options=CompleteOptions(**options), frames=frames, gif=gif, strict=strict,
            mask_params={"scale": center_scale, "fraction": fraction})
    for w in caught:
        if issubclass(w.category, ResizeWarning):
            click.echo(f"warning: {w.message}", err=True)
    for path, reason in summary.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    click.echo(f"completed {summary.completed} image(s) in {summary.seconds:.1f} s "
               f"({summary.iterations} iterations); results in {summary.out_dir}/")


# ---------------------------------------------------------------------------------------- align
@main.command()
@click.argument("raw_dir", type=click.Path(path_type=str))
@click.argument("aligned_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--size", default=64, show_default=True, type=click.IntRange(min=8),
              help="Side of the square crops in pixels.")
@click.option("--landmarks", default="inner-eyes-and-bottom-lip", show_default=True,
              type=click.Choice(["inner-eyes-and-bottom-lip", "outer-eyes-and-nose"]),
              help="The three dlib landmarks mapped exactly onto OpenFace's template.")
@click.option("--all-faces", is_flag=True,
              help="Write every face of a photo as NAME_0.png, NAME_1.png, ... (largest first) "
                   "instead of only the largest.")
@click.option("--skip-multi", is_flag=True,
              help="Skip photos with more than one face (listed in the report).")
@click.option("--upsample", default="auto", show_default=True,
              type=click.Choice(["0", "1", "auto"]),
              help="Double the photo this often before detecting; 1 finds faces down to about "
                   "40 px but is 4x slower; auto tries 1 only where 0 finds nothing.")
@click.option("--border", default="reflect", show_default=True,
              type=click.Choice(["reflect", "black"]),
              help="Fill where the crop reaches past the photo's edge: mirrored photo, or black "
                   "as OpenFace does.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Processes to run in parallel  [default: number of cores]")
@click.option("--predictor", type=click.Path(dir_okay=False, path_type=str),
              help="dlib's shape_predictor_68_face_landmarks.dat  [default: the one from the "
                   "face-recognition-models package]")
@_friendly_errors
def align(raw_dir, aligned_dir, all_faces, skip_multi, upsample, **options):
    """Crop every face in RAW_DIR's photos to an aligned square PNG in ALIGNED_DIR.

    RAW_DIR is searched recursively for .jpg, .jpeg and .png files; the crops go into
    ALIGNED_DIR without subfolders, named after their photo.  Existing crops are skipped, so
    an interrupted run continues where it stopped.  Photos without a usable face are listed,
    with the reason, in ALIGNED_DIR/align_report.csv.
    """
    from dcgan_complete.align import align_folder

    if all_faces and skip_multi:
        raise click.UsageError("--all-faces and --skip-multi exclude each other")
    summary = align_folder(raw_dir, aligned_dir, all_faces=all_faces, skip_multi=skip_multi,
                           upsample=upsample if upsample == "auto" else int(upsample), **options)
    click.echo(summary)
    click.echo(f"report: {summary.report_path}")


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
@click.option("--out", "out_dir", default="report", show_default=True,
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
    _start_tensorflow(threads)
    from dcgan_complete.complete import CompleteOptions
    from dcgan_complete.evaluate import DEFAULT_MASKS, METHODS, evaluate as run_evaluation

    summary = run_evaluation(
        aligned_dir, checkpoint_dir=checkpoint_dir, masks=masks or DEFAULT_MASKS,
        methods=methods or METHODS, limit=limit, seed=seed, out_dir=out_dir,
        options=CompleteOptions(seed=seed, **options),
        mask_params={"scale": center_scale, "fraction": fraction})
    for path, reason in summary.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    if summary.resized:
        click.echo(f"warning: {summary.resized} image(s) were centre-cropped and resized to the "
                   "model's size", err=True)
    click.echo(summary.report())
    click.echo(f"\n{summary.images} image(s) in {summary.seconds:.1f} s; report in "
               f"{summary.out_dir}/")


# ----------------------------------------------------------------------------------------- demo
@main.command()
@click.option("--out", "out_dir", default="demo-out", show_default=True,
              type=click.Path(file_okay=False, path_type=str), help="Output folder.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=str),
              help="A `train` output folder  [default: the bundled face model]")
@click.option("--samples", type=click.Path(file_okay=False, path_type=str),
              help="A folder of aligned faces  [default: the bundled sample faces]")
@click.option("--iterations", default=600, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@_with_options(_RUN_OPTIONS)
@_friendly_errors
def demo(out_dir, checkpoint_dir, samples, iterations, seed, precision, threads):
    """Complete the sample faces with center, random, scratches and text masks.

    Writes OUT/summary.png (one row per face: original, then masked | completed per mask) and,
    per mask, OUT/KIND/ with what `complete --gif` writes.
    """
    _start_tensorflow(threads)
    from dcgan_complete.complete import CompleteOptions
    from dcgan_complete.demo import run_demo

    summary = run_demo(out_dir, checkpoint_dir=checkpoint_dir, samples=samples,
                       options=CompleteOptions(iterations=iterations, seed=seed,
                                               precision=precision))
    click.echo(f"done: {summary} (and one folder per mask in {out_dir}/)")
