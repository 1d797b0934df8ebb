"""Face alignment: the affine geometry on tiny arrays, then dlib on scikit-image's astronaut."""
import csv
import dataclasses
import errno
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")

from dcgan_complete import align, files  # noqa: E402
from dcgan_complete.cli import main  # noqa: E402
from dcgan_complete.errors import DcganError, OptionError  # noqa: E402
from dcgan_complete.options import AlignOptions  # noqa: E402
from dcgan_complete.images import read_image, write_image  # noqa: E402

ASTRONAUT_FACE = (179, 83, 266, 170)  # dlib's box at upsample 0 (left, top, right, bottom)


@pytest.fixture(scope="module")
def aligner():
    return align._load_aligner(align.default_predictor_path())


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()


def _two_faces(astronaut):
    """The astronaut's face twice side by side, the right one smaller."""
    face = astronaut[20:260, 110:340]
    smaller = np.asarray(Image.fromarray(face).resize((180, 188), Image.LANCZOS))
    image = np.full((240, 420, 3), 200, np.uint8)
    image[:, :230] = face
    image[20:208, 235:415] = smaller
    return image


def _no_face():
    return np.tile(np.linspace(0, 255, 160).astype(np.uint8)[None, :, None], (120, 1, 3))


def _report(folder):
    with open(folder / align.REPORT_NAME, newline="") as f:
        return {row["path"]: row["reason"] for row in csv.DictReader(f)}


# ------------------------------------------------------------------------------------- geometry
def test_affine_from_points_is_exact():
    src = np.array([[10.0, 20.0], [50.0, 18.0], [31.0, 70.0]])
    dst = align.template_points(align.INNER_EYES_AND_BOTTOM_LIP, 64)
    matrix = align.affine_from_points(src, dst)
    mapped = np.hstack([src, np.ones((3, 1))]) @ matrix.T
    np.testing.assert_allclose(mapped, dst, atol=1e-9)


def test_affine_from_points_rejects_collinear_points():
    with pytest.raises(ValueError, match="collinear"):
        align.affine_from_points([[0, 0], [1, 1], [2, 2]], [[0, 0], [1, 0], [0, 1]])


def test_template_points_are_openface_mean_landmarks():
    points = align.template_points(align.OUTER_EYES_AND_NOSE, 1)
    np.testing.assert_allclose(points, [[0.194157, 0.169267], [0.788859, 0.158171],
                                        [0.494951, 0.514441]])
    with pytest.raises(ValueError, match="template"):
        align.template_points((0, 39, 42), 64)


def test_warp_border_reflects_or_is_black():
    image = np.zeros((4, 4, 3), np.uint8)
    image[:, :, 0] = np.arange(4) * 10  # red grows to the right
    shift_left = [[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]]  # output x = input x + 2
    reflected = align.warp_affine(image, shift_left, 4, border="reflect")
    black = align.warp_affine(image, shift_left, 4, border="black")
    np.testing.assert_array_equal(reflected[0, :, 0], [10, 0, 0, 10])  # mirrored at the edge
    np.testing.assert_array_equal(black[0, :, 0], [0, 0, 0, 10])
    np.testing.assert_array_equal(reflected[0, 2:, 0], image[0, :2, 0])
    with pytest.raises(ValueError, match="border"):
        align.warp_affine(image, shift_left, 4, border="wrap")


def test_warp_identity_and_shrinking_keep_the_picture():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    identity = align.warp_affine(image, [[1, 0, 0], [0, 1, 0]], 16)
    np.testing.assert_array_equal(identity, image)
    flat = np.full((300, 300, 3), 90, np.uint8)  # a 5x shrink goes through the box reduction
    half = align.warp_affine(flat, [[0.2, 0, 0], [0, 0.2, 0]], 60)
    np.testing.assert_array_equal(half, 90)


# ---------------------------------------------------------------------------------- one face
def test_astronaut_landmarks_land_on_the_template(aligner, astronaut):
    box = aligner.largest_box(astronaut)
    corners = (box.left(), box.top(), box.right(), box.bottom())
    assert corners == pytest.approx(ASTRONAUT_FACE, abs=8)
    crop = aligner.align(astronaut, box)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8

    # Find the landmarks again on the crop, upscaled 4x and padded so the detector sees a margin.
    scale, pad = 4, 64
    upscaled = np.asarray(Image.fromarray(crop).resize((64 * scale,) * 2, Image.BICUBIC))
    padded = np.pad(upscaled, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    found = aligner.largest_box(padded)
    assert found is not None
    indices = list(align.INNER_EYES_AND_BOTTOM_LIP)
    points = aligner.landmarks(padded, found)[indices] - pad
    points = (points + 0.5) / scale - 0.5  # back to crop pixel coordinates
    np.testing.assert_allclose(points, align.template_points(indices, 64), atol=2.0)


def test_outer_eyes_and_nose_crop_differs(aligner, astronaut):
    box = aligner.largest_box(astronaut)
    inner = aligner.align(astronaut, box)
    outer = aligner.align(astronaut, box, landmark_indices=align.OUTER_EYES_AND_NOSE, size=32)
    assert outer.shape == (32, 32, 3)
    assert not np.array_equal(inner[::2, ::2], outer)


def test_tight_crop_is_filled_by_reflection_not_black(aligner, astronaut):
    left, top, right, bottom = ASTRONAUT_FACE
    tight = astronaut[top:bottom + 4, left - 2:right + 2]  # like UTKFace: the face fills it
    box = (2, 0, right - left + 2, bottom - top)
    black = aligner.align(tight, box, border="black")
    reflected = aligner.align(tight, box, border="reflect")
    outside = black.max(axis=2) == 0  # beyond the photo's edge
    assert outside.mean() > 0.05
    assert reflected[outside].mean() > 60  # skin and background mirrored in, not black


def test_no_face_gives_none(aligner):
    assert aligner.largest_box(_no_face()) is None
    assert aligner.align(_no_face()) is None


# ------------------------------------------------------------------------------------- folders
@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory, astronaut):
    """Photos for align_folder: nested, clashing names, odd formats, no face, a corrupt file."""
    root = tmp_path_factory.mktemp("raw")
    # PNG: in a JPEG of the astronaut dlib also finds her mission patch, as a larger "face".
    write_image(root / "Eileen_Collins" / "Eileen_Collins_0001.png", astronaut)
    write_image(root / "a" / "face.png", astronaut)
    write_image(root / "b" / "face.png", astronaut[:, ::-1])
    gray16 = (astronaut.mean(axis=2) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(root / "gray16.PNG")  # write_image would take it as [-1, 1]
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    write_image(root / "rgba.png", rgba)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the pixels lie on their side
    Image.fromarray(np.rot90(astronaut)).save(root / "exif_rotated.png", exif=exif)
    write_image(root / "nothing.jpeg", _no_face())
    (root / "broken.jpg").write_bytes(b"this is not a JPEG")
    (root / "notes.txt").write_text("not an image")
    return root


def test_align_folder_aligns_reports_and_resumes(raw_dir, tmp_path):
    out = tmp_path / "aligned"
    summary = align.align_folder(raw_dir, out, workers=1, progress=False)

    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["Eileen_Collins_0001.png", "a__face.png", "b__face.png", "exif_rotated.png",
                     "gray16.png", "rgba.png"]
    for name in names:
        crop = read_image(out / name)
        assert crop.shape == (64, 64, 3)
    upright = read_image(out / "Eileen_Collins_0001.png").astype(int)
    assert np.abs(read_image(out / "exif_rotated.png").astype(int) - upright).mean() < 3
    assert (summary.found, summary.aligned, summary.faces) == (8, 6, 6)
    assert (summary.no_face, summary.unreadable, summary.several_faces) == (1, 1, 0)
    assert summary.report_path == out / "align_report.csv"
    assert _report(out) == {"nothing.jpeg": "no face", "broken.jpg": "unreadable"}
    assert "aligned 6, no face 1, several faces 0, unreadable 1" in str(summary)
    assert not list(out.glob(".*"))  # no temporary files left

    again = align.align_folder(raw_dir, out, workers=1, progress=False)
    assert (again.skipped, again.aligned, again.no_face, again.unreadable) == (6, 0, 1, 1)
    assert _report(out) == {"nothing.jpeg": "no face", "broken.jpg": "unreadable"}


def test_align_folder_in_parallel_matches_one_worker(raw_dir, tmp_path):
    one = align.align_folder(raw_dir, tmp_path / "one", workers=1, progress=False)
    two = align.align_folder(raw_dir, tmp_path / "two", workers=2, progress=False)
    assert (two.aligned, two.no_face, two.unreadable) == (one.aligned, one.no_face, one.unreadable)
    for path in (tmp_path / "one").glob("*.png"):
        np.testing.assert_array_equal(read_image(path), read_image(tmp_path / "two" / path.name))


@pytest.mark.parametrize("signum, whom", [(signal.SIGINT, "group"), (signal.SIGTERM, "parent")])
def test_a_stopped_parallel_run_prints_one_line_not_the_workers_tracebacks(tmp_path, astronaut,
                                                                           signum, whom):
    # Ctrl-C reaches every process of the terminal's group; a scheduler's SIGTERM the parent,
    # which stops the workers with SIGTERM.  Either way the parent alone speaks, in one line.
    raw, out = tmp_path / "raw", tmp_path / "aligned"
    write_image(raw / "p00.png", astronaut)
    for k in range(1, 48):  # enough work for the run to be stopped in the middle
        os.link(raw / "p00.png", raw / f"p{k:02d}.png")
    run = subprocess.Popen([sys.executable, "-m", "dcgan_complete", "align", str(raw), str(out),
                            "--workers", "2", "--upsample", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("p*.png")) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert run.poll() is None, "the run ended before it could be stopped"
        (os.killpg if whom == "group" else os.kill)(run.pid, signum)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 128 + signum
    assert "Traceback" not in stderr and "Interrupted" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
    assert not list(out.glob(".tmp-*"))
    assert 0 < len(list(out.glob("p*.png"))) < 48


def test_output_inside_raw_dir_is_not_read_back(tmp_path, astronaut):
    write_image(tmp_path / "photo.jpg", astronaut)
    for _ in range(2):
        summary = align.align_folder(tmp_path, tmp_path / "aligned", workers=1, progress=False)
        assert summary.found == 1
    assert summary.skipped == 1


def test_align_folder_errors(tmp_path):
    with pytest.raises(DcganError, match="does not exist"):
        align.align_folder(tmp_path / "missing", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DcganError, match="no .png"):
        align.align_folder(tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(DcganError, match="landmark model"):
        align.FaceAligner(tmp_path / "missing.dat")
    with pytest.raises(ValueError, match="landmarks"):
        align.align_folder(tmp_path, tmp_path / "out", landmarks="nose-only")


def test_flat_names_stay_unique_and_traceable():
    from pathlib import PurePosixPath as P

    paths = [P("Ann/Ann_0001.jpg"), P("x/face.jpg"), P("y/face.jpg"), P("y/face.png"),
             P("y/Face.JPG"), P("solo.jpeg")]
    names = align._flat_names(paths)
    assert names[0] == "Ann_0001" and names[-1] == "solo"
    assert names[1:3] == ["x__face", "y__face_jpg"]
    assert len({n.casefold() for n in names}) == len(names)


# ------------------------------------------------------------------------------ command line
def test_cli_all_faces_and_skip_multi(tmp_path, astronaut):
    raw = tmp_path / "raw"
    write_image(raw / "pair.png", _two_faces(astronaut))
    write_image(raw / "nothing.png", _no_face())
    runner = CliRunner()

    result = runner.invoke(main, ["align", str(raw), str(tmp_path / "all"), "--all-faces",
                                  "--workers", "1", "--upsample", "0"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "all").glob("*.png")) == ["pair_0.png", "pair_1.png"]
    assert "aligned 1 (2 faces), no face 1" in result.output
    assert f"report: {tmp_path / 'all' / 'align_report.csv'}" in result.output

    result = runner.invoke(main, ["align", str(raw), str(tmp_path / "one"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "one").glob("*.png")] == ["pair.png"]
    largest = read_image(tmp_path / "all" / "pair_0.png")
    np.testing.assert_array_equal(read_image(tmp_path / "one" / "pair.png"), largest)

    result = runner.invoke(main, ["align", str(raw), str(tmp_path / "multi"), "--skip-multi",
                                  "--workers", "1", "--border", "black", "--size", "32"])
    assert result.exit_code == 0, result.output
    assert not list((tmp_path / "multi").glob("*.png"))
    assert _report(tmp_path / "multi") == {"pair.png": "several faces", "nothing.png": "no face"}


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["align", str(tmp_path / "missing"), str(tmp_path / "out")])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        f"Error: RAW_DIR {tmp_path / 'missing'} does not exist"]
    result = runner.invoke(main, ["align", str(tmp_path), str(tmp_path / "out"), "--all-faces",
                                  "--skip-multi"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: --all-faces and --skip-multi exclude each other"]


def _error_lines(result):
    return [line for line in result.output.splitlines() if line.startswith("Error")]


def test_options_come_from_align_options_and_are_recorded(tmp_path, astronaut):
    params = {p.name: p.default for p in main.commands["align"].params}
    for option in dataclasses.fields(AlignOptions):
        assert params[option.name] == option.default, option.name

    raw, out = tmp_path / "raw", tmp_path / "out"
    write_image(raw / "face.png", astronaut)
    align.align_folder(raw, out, AlignOptions(size=32, workers=1), progress=False, border="black")
    assert read_image(out / "face.png").shape == (32, 32, 3)
    assert json.loads((out / align.RECORD_NAME).read_text()) == {
        "size": 32, "landmarks": "inner-eyes-and-bottom-lip", "border": "black",
        "all_faces": False}
    with pytest.raises(OptionError) as caught:
        align.align_folder(raw, out, size=48, workers=1, progress=False)
    assert set(caught.value.options) == {"size", "border", "aligned_dir"}
    assert "size 32 (asked 48), border black (asked reflect)" in str(caught.value)
    assert "--" not in str(caught.value)

    for bad in (dict(size=4), dict(all_faces=True, skip_multi=True), dict(upsample=-1),
                dict(landmarks=(0, 39, 42)), dict(border="wrap"), dict(workers=0)):
        with pytest.raises(OptionError):
            align.align_folder(raw, tmp_path / "refused", progress=False, **bad)
    assert not (tmp_path / "refused").exists()  # refused before any work


def test_missing_model_names_the_option_not_a_flag(tmp_path, astronaut, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None
                        if name == "face_recognition_models" else find_spec(name, *args))
    write_image(tmp_path / "raw" / "face.png", astronaut)
    with pytest.raises(OptionError) as caught:
        align.align_folder(tmp_path / "raw", tmp_path / "out", progress=False)
    assert caught.value.options == ("predictor",)
    assert "--" not in str(caught.value) and "or pass predictor PATH" in str(caught.value)
    result = CliRunner().invoke(main, ["align", str(tmp_path / "raw"), str(tmp_path / "out")])
    assert result.exit_code == 1
    assert len(_error_lines(result)) == 1 and "or pass --predictor PATH" in result.output


def test_full_disk_stops_the_run_in_one_line(raw_dir, tmp_path, monkeypatch):
    def no_space(path, image):
        with files.atomic_write(path) as tmp:
            tmp.write_bytes(b"half a PNG")
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(align, "write_image", no_space)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["align", str(raw_dir), str(out), "--workers", "1"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = _error_lines(result)
    assert line.startswith("Error: cannot write ") and "No space left on device: stopped" in line
    assert "aligned" not in result.output.replace(str(out), "")  # no summary: it stopped
    assert sorted(p.name for p in out.iterdir()) == [align.RECORD_NAME]  # nothing half-written


def test_a_crop_that_cannot_be_written_is_reported(tmp_path, astronaut):
    raw = tmp_path / "raw"
    write_image(raw / "ok.png", astronaut)
    Image.fromarray(astronaut).save(raw / ("x" * 240 + ".png"))  # too long for a temporary
    summary = align.align_folder(raw, tmp_path / "out", workers=1, progress=False)
    assert (summary.aligned, summary.failed) == (1, 1)
    [(path, reason, detail)] = summary.rejected
    assert (path, reason) == ("x" * 240 + ".png", "failed") and "too long" in detail
    assert _report(tmp_path / "out") == {"x" * 240 + ".png": "failed"}
