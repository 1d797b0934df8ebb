"""Time to quality: how good the completions are after how many seconds, for each way to start
the search (random points, the encoder's guess) and each precision.

One search of the largest iteration count per (mask, start, precision) passes through every
smaller count: the best z seen after k iterations is exactly what a k-iteration search returns
(the tests check this), so every point of the curve costs no extra search.  The clock includes
the encoder's forward pass and excludes tracing (every completer is warmed up first).

Writes ``sweep.csv`` and ``sweep.json`` (one row per mask, start, precision and iteration count)
and ``sweep.png`` (PSNR, face found and loss against seconds per image), and reports, per mask,
the seconds each setting takes to reach the quality of the reference (random starts, float32,
the largest count: the search as it used to run).

Example
-------
>>> from dcgan_complete.sweep import time_to_quality
>>> summary = time_to_quality("heldout/", limit=32, out_dir="sweep")  # doctest: +SKIP
>>> print(summary.report())  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import io
import json
import time
from pathlib import Path

import numpy as np

from dcgan_complete import images as imgs
from dcgan_complete import masks as mask_lib
from dcgan_complete import metrics
from dcgan_complete.errors import DcganError
from dcgan_complete.files import (display_name, ensure_writable_dir, write_bytes, write_csv,
                                  write_text)
from dcgan_complete.options import EVALUATE_MASKS, EVALUATE_OUT, CompleteOptions, MaskOptions
from dcgan_complete.search import load_completer

SWEEP_ITERATIONS = (25, 50, 100, 200, 500, 1000)
SWEEP_STARTS = ("random", "encoder")
SWEEP_PRECISIONS = ("float32", "mixed_bfloat16")
FIELDS = ("mask", "init", "precision", "iterations", "seconds_per_image", "psnr", "psnr_hole",
          "face_found", "loss")


@dataclasses.dataclass
class SweepSummary:
    rows: list              # dicts with FIELDS
    images: int
    out_dir: Path
    seconds: float
    reference: tuple        # (init, precision, iterations) the others are measured against

    def reach(self):
        """Per mask and setting: the first iteration count whose PSNR and face-found share are
        at least the reference's, with its seconds per image (None if never)."""
        init, precision, iterations = self.reference
        out = []
        for kind in dict.fromkeys(r["mask"] for r in self.rows):
            ref = next(r for r in self.rows if (r["mask"], r["init"], r["precision"],
                                                r["iterations"]) == (kind, *self.reference))
            for setting in dict.fromkeys((r["init"], r["precision"]) for r in self.rows):
                curve = [r for r in self.rows if r["mask"] == kind and
                         (r["init"], r["precision"]) == setting]
                hit = next((r for r in curve if r["psnr"] >= ref["psnr"] - 1e-9 and
                            r["face_found"] >= ref["face_found"] - 1e-9), None)
                out.append({"mask": kind, "init": setting[0], "precision": setting[1],
                            "iterations": hit["iterations"] if hit else None,
                            "seconds_per_image": hit["seconds_per_image"] if hit else None,
                            "reference_seconds": ref["seconds_per_image"],
                            "reference_psnr": ref["psnr"],
                            "reference_face_found": ref["face_found"]})
        return out

    def report(self):
        """A reStructuredText table of the curve and one of the time to the reference quality."""
        head = ("mask", "start", "precision", "iterations", "s/image", "PSNR", "PSNR-hole",
                "face found", "loss")
        body = [(r["mask"], r["init"], r["precision"], str(r["iterations"]),
                 f"{r['seconds_per_image']:.3f}", f"{r['psnr']:.2f}", f"{r['psnr_hole']:.2f}",
                 f"{r['face_found']:.0%}", f"{r['loss']:.1f}") for r in self.rows]
        init, precision, iterations = self.reference
        reach_head = ("mask", "start", "precision", "iterations", "s/image",
                      "share of reference time")
        reach_body = [(r["mask"], r["init"], r["precision"],
                       "never" if r["iterations"] is None else str(r["iterations"]),
                       "-" if r["iterations"] is None else f"{r['seconds_per_image']:.3f}",
                       "-" if r["iterations"] is None else
                       f"{r['seconds_per_image'] / r['reference_seconds']:.1%}")
                      for r in self.reach()]
        return "\n".join([metrics.rst_table(head, body), "",
                          f"time to the quality (PSNR and face found) of {init} starts, "
                          f"{precision}, {iterations} iterations:", "",
                          metrics.rst_table(reach_head, reach_body)])


def time_to_quality(aligned_dir, checkpoint_dir=None, masks=EVALUATE_MASKS,
                    iterations=SWEEP_ITERATIONS, inits=SWEEP_STARTS, precisions=SWEEP_PRECISIONS,
                    limit=None, seed=0, out_dir=EVALUATE_OUT,
                    options: CompleteOptions | None = None,
                    mask_options: MaskOptions | None = None, stop_at=None, progress=True):
    """Score the model's completions of ``aligned_dir``'s faces at every count in
    ``iterations``, for every start in ``inits`` and precision in ``precisions``.

    The images, masks and random starting points are those of :func:`evaluate.evaluate` with the
    same ``seed`` (so the reference row matches an ``evaluate`` run).  ``options`` holds the
    other search settings (its ``iterations``, ``init`` and ``precision`` are replaced).
    ``stop_at`` maps a start to the largest count to run it to (``{"encoder": 200}``: the
    encoder's curve has flattened long before the reference's 1000).

    Returns
    -------
    SweepSummary
    """
    from tqdm import tqdm

    start = time.perf_counter()
    masks, _ = metrics.check_choices(masks, ("ours",))
    iterations = sorted({int(i) for i in iterations})
    if not iterations or iterations[0] < 1:
        raise DcganError("give at least one iteration count, each at least 1")
    options = options or CompleteOptions()
    mask_options = mask_options or MaskOptions()
    metrics.import_optional("matplotlib", "the sweep's plot")
    aligned_dir = Path(aligned_dir)
    paths = metrics.choose_images(aligned_dir, out_dir, limit, seed)
    ensure_writable_dir(out_dir, "out_dir")
    stop_at = stop_at or {}
    last = {init: max([i for i in iterations if i <= stop_at.get(init, iterations[-1])] or
                      iterations[:1]) for init in inits}
    completers = {(init, precision): load_completer(checkpoint_dir, dataclasses.replace(
        options, iterations=last[init], init=init, precision=precision))
        for precision in precisions for init in inits}
    # a model without an encoder runs its "encoder" start at random: measure only what exists
    completers = {k: c for k, c in completers.items() if c.init == k[0]}
    size = next(iter(completers.values())).size
    good, images, _, skipped = imgs.load_crops(paths, size)
    if images is None:
        raise DcganError(f"none of the {len(paths)} images could be read: {skipped[0][1]}")
    for completer in completers.values():  # trace the graphs outside the clock
        batch = images[:options.batch_size]
        completer.warm_up(batch, [mask_lib.center_mask(size)] * len(batch))
    checker = metrics.FaceChecker()
    batches = -(-len(images) // options.batch_size)
    bar = tqdm(total=len(masks) * batches * sum(last[i] for i, _ in completers), unit="it",
               desc="sweep", disable=not progress, dynamic_ncols=True)
    rows = []
    with bar:
        for kind in masks:
            kind_key = mask_lib.MASK_KINDS.index(kind)
            mask_list = mask_lib.masks_for_images(
                good, kind, size, rng=np.random.default_rng([seed, kind_key, 0]),
                **mask_options.params())
            for (init, precision), completer in completers.items():
                bar.set_postfix_str(f"{kind}, {init}, {precision}")
                result = completer.complete(
                    images, mask_list, rng=np.random.default_rng([seed, kind_key, 1]),
                    snapshots=iterations,
                    progress=lambda done, loss, its: bar.update(its))
                for iteration, seconds, z, loss in result.snapshots:
                    filled = completer.completions(images, mask_list, z)
                    rows.append({
                        "mask": kind, "init": init, "precision": precision,
                        "iterations": iteration, "seconds_per_image": seconds / len(images),
                        "psnr": float(np.mean([metrics.psnr(a, b) for a, b in
                                               zip(images, filled)])),
                        "psnr_hole": float(np.mean([metrics.psnr(a, b, mask=m) for a, b, m in
                                                    zip(images, filled, mask_list)])),
                        "face_found": float(np.mean([checker.face_found(f) for f in filled])),
                        "loss": float(np.mean(loss))})
    reference = ("random", "float32", iterations[-1]) \
        if ("random", "float32") in completers else (*next(iter(completers)), iterations[-1])
    summary = SweepSummary(rows, len(images), Path(out_dir), 0.0, reference)
    _write(summary, settings={"aligned_dir": display_name(aligned_dir), "seed": seed,
                              "masks": list(masks), "iterations": iterations,
                              "options": dataclasses.asdict(options),
                              "mask_options": dataclasses.asdict(mask_options)})
    summary.seconds = time.perf_counter() - start
    return summary


def _write(summary, settings):
    out = summary.out_dir
    write_csv(out / "sweep.csv", FIELDS, [[_cell(r[f]) for f in FIELDS] for r in summary.rows])
    write_text(out / "sweep.json", json.dumps({"settings": settings, "images": summary.images,
                                               "reference": list(summary.reference),
                                               "rows": summary.rows, "reach": summary.reach()},
                                              indent=2) + "\n")
    plot(summary.rows, out / "sweep.png")


def plot(rows, path):
    """PSNR, face-found share and loss against seconds per image: one column per mask, one
    line per start and precision, each point labelled by its iteration count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(r["mask"] for r in rows))
    settings = list(dict.fromkeys((r["init"], r["precision"]) for r in rows))
    panels = (("psnr", "PSNR (dB)"), ("face_found", "face found"), ("loss", "loss"))
    fig, axes = plt.subplots(len(panels), len(kinds), figsize=(4 * len(kinds), 9), squeeze=False,
                             sharex=True)
    for col, kind in enumerate(kinds):
        for row, (key, label) in enumerate(panels):
            ax = axes[row][col]
            for init, precision in settings:
                curve = [r for r in rows if r["mask"] == kind and
                         (r["init"], r["precision"]) == (init, precision)]
                xs = [r["seconds_per_image"] for r in curve]
                ys = [r[key] for r in curve]
                ax.plot(xs, ys, marker="o", linestyle="-" if init == "encoder" else "--",
                        label=f"{init} start, {'bf16' if 'bfloat16' in precision else 'fp32'}")
                if key == "psnr":
                    for r in curve:
                        ax.annotate(str(r["iterations"]), (r["seconds_per_image"], r[key]),
                                    fontsize=6, xytext=(2, 2), textcoords="offset points")
            ax.set_xscale("log")
            ax.grid(True, alpha=0.3)
            if row == 0:
                ax.set_title(kind)
            if col == 0:
                ax.set_ylabel(label)
            if row == len(panels) - 1:
                ax.set_xlabel("seconds per image")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_bytes(path, buffer.getvalue())


def _cell(value):
    return f"{value:.6g}" if isinstance(value, float) else value
