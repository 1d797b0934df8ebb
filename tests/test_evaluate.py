import csv
import json
import re
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from dcgan_complete.cli import main
from dcgan_complete.options import CompleteOptions
from dcgan_complete.errors import DcganError
from dcgan_complete.classical import BASELINES, mean_fill
from dcgan_complete.evaluate import DEFAULT_MASKS, METHODS, evaluate, format_table
from dcgan_complete.images import read_image
from dcgan_complete.masks import make_mask

from conftest import make_faces

SIZE = 16
FAST = CompleteOptions(iterations=20, out_interval=10, batch_size=8)


# ------------------------------------------------------------------------------------- baselines


@pytest.mark.parametrize("method", sorted(BASELINES))
@pytest.mark.parametrize("kind", ["center", "random", "left"])
def test_baselines_keep_known_pixels_and_fill_the_hole(method, kind):
    image = make_faces(1, SIZE, seed=5)[0]
    mask = make_mask(kind, SIZE, rng=0)
    filled = BASELINES[method](image, mask)
    assert filled.dtype == np.uint8 and filled.shape == image.shape
    known = mask == 1
    assert np.array_equal(filled[known], image[known])
    # the hole no longer shows what was there only by accident: a fill differs from a black hole
    assert filled[~known].any()


@pytest.mark.parametrize("method", ["biharmonic", "telea", "navier-stokes"])
def test_smooth_baselines_recover_a_smooth_image(method):
    ramp = np.linspace(40, 200, SIZE)
    image = np.stack([np.add.outer(ramp, ramp) / 2] * 3, axis=-1).round().astype(np.uint8)
    mask = make_mask("center", SIZE)
    hole = mask == 0
    error = np.abs(BASELINES[method](image, mask).astype(int) - image)[hole].mean()
    floor = np.abs(mean_fill(image, mask).astype(int) - image)[hole].mean()
    # a plane is biharmonic: recovered to rounding; the OpenCV methods beat the floor
    assert error <= (0.5 if method == "biharmonic" else 0.8 * floor)


def test_mean_fill_uses_the_mean_of_the_known_pixels():
    image = np.zeros((4, 4, 3), np.uint8)
    image[:, :2] = (30, 60, 90)
    mask = np.ones((4, 4))
    mask[:, 3] = 0                              # known: columns 0-2, two thirds coloured
    assert mean_fill(image, mask)[0, 3].tolist() == [20, 40, 60]


@pytest.mark.parametrize("method", sorted(BASELINES))
def test_baselines_reject_bad_input(method):
    fill = BASELINES[method]
    with pytest.raises(ValueError, match="uint8"):
        fill(np.zeros((8, 8, 3)), np.ones((8, 8)))
    with pytest.raises(ValueError, match="mask must have shape"):
        fill(np.zeros((8, 8, 3), np.uint8), np.ones((8, 7)))
    with pytest.raises(ValueError, match="no known pixel"):
        fill(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)))


def test_missing_opencv_gives_the_install_hint(monkeypatch, tiny_dataset, tmp_path):
    monkeypatch.setitem(sys.modules, "cv2", None)
    image, mask = make_faces(1, SIZE)[0], make_mask("center", SIZE)
    # OpenCV is one of the package's own dependencies: the hint installs it, not an extra
    with pytest.raises(DcganError, match=r"opencv-python-headless, which is not installed: "
                                         r"pip install opencv-python-headless$"):
        BASELINES["telea"](image, mask)
    # evaluate checks before it loads anything, and the CLI makes it one line
    with pytest.raises(DcganError, match="the telea baseline needs opencv"):
        evaluate(tiny_dataset, methods=("mean", "telea"), out_dir=tmp_path)
    result = CliRunner().invoke(main, ["evaluate", str(tiny_dataset), "--method", "navier-stokes",
                                       "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: the navier-stokes baseline needs opencv-python-headless, which is not installed: "
        "pip install opencv-python-headless"]


def test_missing_scikit_image_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(DcganError, match=r"scikit-image.*dcgan-complete\[eval\]"):
        BASELINES["biharmonic"](make_faces(1, SIZE)[0], make_mask("center", SIZE))


# ---------------------------------------------------------------------------------- evaluation


def _assert_rst_simple_table(table, n_rows):
    lines = table.splitlines()
    rules = [i for i, line in enumerate(lines) if set(line) <= {"=", " "}]
    assert rules == [0, 2, len(lines) - 1] and len(lines) == n_rows + 4
    spans = [m.span() for m in re.finditer("=+", lines[0])]
    gaps = [i for i in range(spans[-1][0]) if not any(a <= i < b for a, b in spans)]
    for line in lines[1:-1]:
        # text stays inside its column (the last may run on), and the first column is never
        # empty (an empty one would make the row a continuation line)
        assert all(i >= len(line) or line[i] == " " for i in gaps), line
        assert line[:spans[0][1]].strip()


def test_tiny_end_to_end_run_writes_every_file(tiny_model_dir, tiny_dataset, tmp_path):
    out = tmp_path / "report"
    summary = evaluate(tiny_dataset, tiny_model_dir, limit=2, seed=3, out_dir=out, options=FAST,
                       progress=False)
    assert {p.name for p in out.iterdir()} == {"summary.csv", "summary.json", "per_image.csv",
                                               "comparison.png"}
    pairs = [(k, m) for k in DEFAULT_MASKS for m in METHODS]
    assert [(r["mask"], r["method"]) for r in summary.rows] == pairs
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["mask"], r["method"]) for r in rows] == pairs
    with open(out / "per_image.csv") as f:
        per_image = list(csv.DictReader(f))
    assert len(per_image) == 2 * len(pairs) == len(summary.per_image)
    for row in per_image:
        assert 0 < float(row["psnr_hole"]) <= float(row["psnr"]) <= 100
        assert -1 <= float(row["ssim"]) <= 1 and row["face_found"] in ("0", "1")
        assert float(row["distance"]) >= 0 and float(row["seconds"]) >= 0
    document = json.loads((out / "summary.json").read_text())
    assert len(document["rows"]) == len(pairs) and document["images"] == 2
    assert document["settings"]["options"]["iterations"] == 20
    assert document["paper_psnr"]["left"] == {"context_encoder": 15.5, "yeh_et_al": 13.7}
    # 2 images x 4 masks rows of original | masked | ours | biharmonic | telea
    grid = read_image(out / "comparison.png")
    assert grid.shape[:2] == (8 * (SIZE + 2) + 2, 5 * (SIZE + 2) + 2)
    _assert_rst_simple_table(summary.table(), len(pairs))
    report = summary.report()
    assert "Context Encoder" in report
    assert "center 21.3 / 19.4" in report and "half (left) 15.5 / 13.7" in report


def test_same_seed_same_images_and_masks(tiny_dataset, tmp_path):
    runs = [evaluate(tiny_dataset, masks=("random",), methods=("mean",), limit=3, seed=7,
                     out_dir=tmp_path / str(i), progress=False) for i in range(2)]
    chosen = [r["image"] for r in runs[0].per_image]
    assert chosen == sorted(chosen) and len(set(chosen)) == 3
    strip = [[{k: v for k, v in r.items() if k != "seconds"} for r in run.per_image]
             for run in runs]
    assert strip[0] == strip[1] and len(strip[0]) == 3
    assert runs[0].settings["checkpoint_dir"] is None  # no model needed without "ours"


def test_format_table_rows_and_numbers():
    row = {"mask": "center", "method": "ours", "images": 2, "psnr": 23.456, "psnr_hole": 17.0,
           "ssim": 0.81234, "face_found": 0.5, "distance": 0.4321, "same_person": 1.0,
           "seconds_per_image": 1.5}
    table = format_table([row, {**row, "method": "navier-stokes"}])
    _assert_rst_simple_table(table, 2)
    assert table.splitlines()[1].split() == ["mask", "method", "PSNR", "PSNR-hole", "SSIM",
                                             "face", "found", "same", "person", "s/image"]
    assert table.splitlines()[3].split() == ["center", "ours", "23.46", "17.00", "0.812", "50%",
                                             "0.43", "(100%)", "1.500"]


def test_cli_evaluate_prints_the_table(tiny_dataset, tmp_path):
    result = CliRunner().invoke(main, [
        "evaluate", str(tiny_dataset), "--mask", "center", "--mask", "pattern",
        "--method", "mean", "--method", "biharmonic", "--limit", "2", "--out",
        str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    rows = [line.split()[:2] for line in result.output.splitlines()
            if line.startswith(("center ", "pattern "))]
    assert rows[:4] == [["center", "mean"], ["center", "biharmonic"], ["pattern", "mean"],
                        ["pattern", "biharmonic"]]
    assert (tmp_path / "r" / "summary.json").is_file()


@pytest.mark.parametrize("args, message", [
    (["--mask", "lowres"], "cannot evaluate mask 'lowres'"),
    (["--method", "magic"], "unknown method 'magic'"),
    ([], "no model given"),
])
def test_cli_evaluate_errors_are_one_line(tiny_dataset, tmp_path, monkeypatch, args, message):
    monkeypatch.setattr("dcgan_complete.search.bundled_model_dir", lambda: None)
    result = CliRunner().invoke(main, ["evaluate", str(tiny_dataset), "--out", str(tmp_path),
                                       *args])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
