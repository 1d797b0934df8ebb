"""Files a hostile-but-ordinary user gives every command, and runs that meet each other.

- images in other colour models than RGB (CMYK print files, LAB, palettes with transparency,
  16-bit gray) are read as their colours;
- a decompression bomb (a PNG of a few hundred kilobytes that holds 12000x12000 pixels) is refused
  from its header by ``complete``, ``align`` and ``train``, in one line, without decoding it;
- a write cut short by ``kill -9`` leaves a hidden temporary file that the next run removes,
  while a live process's is kept;
- two runs on one checkpoint folder: the second is refused, naming the first's PID.

Every case uses real files and real processes (``subprocess``, ``SIGKILL``, ``SIGTERM``).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageCms

from dcgan_complete import data, files
from dcgan_complete.cli import main
from dcgan_complete.errors import DcganError
from dcgan_complete.images import (MAX_MEGAPIXELS_VARIABLE, ImageReadError, ImageTooLargeError,
                                   image_size, read_image, write_image)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "samples" / "obama_official_portrait.png"
BOMB_SIDE = 12000
LOW_PEAK_MB = 300  # a decoded 12000x12000 RGB image alone is 432 MB (576 MB inside Pillow)


def _one_line_error(result):
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


# ------------------------------------------------------------------------------ colour models
@pytest.fixture(scope="module")
def original():
    """A real photo (a bundled sample face), RGB."""
    with Image.open(SAMPLE) as image:
        return image.convert("RGB")


def _gray(image):
    return np.repeat(np.asarray(image.convert("L"))[..., None], 3, axis=2)


# Each writes ``image`` to ``path`` in another colour model, and returns the pixels expected back.
def _cmyk(image, path):
    image.convert("CMYK").save(path)
    return np.asarray(image)


def _lab(image, path):
    image.convert("LAB").save(path)
    return np.asarray(image)


def _palette_with_transparency(image, path):
    palette = image.convert("P")
    transparent = int(np.asarray(palette)[0, 0])
    palette.save(path, transparency=transparent)
    expected = np.array(palette.convert("RGB"))
    expected[np.asarray(palette) == transparent] = 255  # over white
    return expected


def _gray_alpha(image, path):
    gray = image.convert("L")
    gray.putalpha(Image.fromarray(np.where(np.arange(gray.width) < 10, 0, 255).astype(np.uint8)
                                  [None].repeat(gray.height, 0)))
    gray.save(path)
    expected = _gray(image)
    expected[:, :10] = 255  # the transparent stripe, over white
    return expected


def _gray_16_bit(image, path):
    Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257).save(path)
    return _gray(image)


def _rgb_with_an_srgb_profile(image, path):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image.save(path, icc_profile=profile)
    return np.asarray(image)


# (writer, file name, largest mean |error| allowed)
MODES = [
    (_cmyk, "print.jpg", 6.0),
    (_cmyk, "print.tif", 1.0),
    (_lab, "lab.tif", 2.0),
    (_palette_with_transparency, "palette.png", 0.5),
    (_gray_alpha, "gray-alpha.png", 0.5),
    (_gray_16_bit, "gray16.png", 0.5),
    (_rgb_with_an_srgb_profile, "srgb.png", 1.0),
]


@pytest.mark.parametrize("write, name, tolerance", MODES, ids=[m[1] for m in MODES])
def test_every_colour_model_is_read_as_its_colours(tmp_path, original, write, name, tolerance):
    want = write(original, tmp_path / name)
    pixels = read_image(tmp_path / name)
    assert pixels.shape == want.shape and pixels.dtype == np.uint8
    error = np.abs(pixels.astype(float) - want).mean()
    assert error <= tolerance, f"{name}: mean error {error:.1f}"
    assert pixels.flags.writeable


@pytest.mark.timeout(60)
def test_a_fifo_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ImageReadError, match=r"pipe\.png: not a regular file"):
        read_image(tmp_path / "pipe.png")


@pytest.mark.timeout(60)
def test_a_header_tells_the_size_without_decoding(tmp_path, bomb):
    """What the commands ask before reading a file (a crop or a photo?), bombs and FIFOs too."""
    os.mkfifo(tmp_path / "pipe.png")
    sizes = []
    assert _peak_growth_mb(lambda: sizes.append(image_size(bomb))) < LOW_PEAK_MB
    assert sizes == [(BOMB_SIDE, BOMB_SIDE)]
    assert image_size(tmp_path / "pipe.png") is None and image_size(tmp_path) is None


def test_a_cmyk_jpeg_is_not_read_as_white(tmp_path, original):
    """The K channel was taken for alpha: every pixel came out white."""
    _cmyk(original, tmp_path / "print.jpg")
    pixels = read_image(tmp_path / "print.jpg")
    assert pixels.mean() < 200 and np.abs(pixels.astype(float) - np.asarray(original)).mean() < 6


def test_training_reads_cmyk_files_as_their_colours(tmp_path, original):
    """``train`` and ``train-encoder`` decode through data.load_images."""
    folder = tmp_path / "set"
    folder.mkdir()
    _cmyk(original, folder / "a.jpg")
    _cmyk(original, folder / "b.tif")  # a print scanned to a CMYK TIFF
    paths = data.find_training_images(folder)
    images, _, summary = data.load_images(paths, 64, progress=False, root=folder)
    want = np.asarray(original.resize((64, 64), Image.LANCZOS)).astype(float)
    assert summary.used == 2
    assert all(np.abs(image - want).mean() < 6 for image in images)


# ------------------------------------------------------------------------ decompression bombs
def _png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + \
        struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def write_bomb(path, side=BOMB_SIDE, colour=(200, 120, 90)):
    """A real PNG of ``side`` x ``side`` pixels of one colour, a few hundred kilobytes: every row
    after the first says "as the row above" (PNG's Up filter), which deflate packs to nothing."""
    deflate = zlib.compressobj(9)
    first = b"\0" + bytes(colour) * side
    rest = (b"\2" + bytes(3 * side)) * 100
    parts = [deflate.compress(first)]
    full, left = divmod(side - 1, 100)
    parts += [deflate.compress(rest) for _ in range(full)]
    parts += [deflate.compress(rest[:left * (1 + 3 * side)]), deflate.flush()]
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                           + _png_chunk(b"IDAT", b"".join(parts)) + _png_chunk(b"IEND", b""))
    return Path(path)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    path = write_bomb(tmp_path_factory.mktemp("bomb") / "big.png")
    assert path.stat().st_size < 1_000_000
    assert struct.unpack(">II", path.read_bytes()[16:24]) == (BOMB_SIDE, BOMB_SIDE)  # IHDR
    small = write_bomb(path.with_name("small.png"), side=300)  # made alike: a real PNG
    assert np.array_equal(np.unique(read_image(small).reshape(-1, 3), axis=0), [[200, 120, 90]])
    return path


def _peak_growth_mb(run):
    """How far this process's peak memory rose above its memory before ``run()``, in MB (the
    kernel's peak counter is reset first: /proc/self/clear_refs)."""
    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024

    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    run()
    return status("VmHWM") - before


TOO_LARGE = (rf"too large \({BOMB_SIDE}x{BOMB_SIDE} is 144 megapixels; the limit is 100: set "
             rf"{MAX_MEGAPIXELS_VARIABLE} to raise it\)")


def test_a_bomb_is_refused_from_its_header(bomb):
    caught = []

    def read():
        with pytest.raises(ImageTooLargeError, match=TOO_LARGE) as error:
            read_image(bomb)
        caught.append(error)

    assert _peak_growth_mb(read) < LOW_PEAK_MB
    assert caught


def test_pillows_bomb_warning_never_reaches_the_user(bomb):
    script = textwrap.dedent(f"""
        from dcgan_complete.images import read_image, ImageReadError
        try:
            read_image({str(bomb)!r})
        except ImageReadError as exc:
            print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert "DecompressionBomb" not in done.stderr and "exceeds limit" not in done.stderr, \
        done.stderr
    assert "too large" in done.stdout


def test_the_pixel_limit_is_set_by_its_environment_variable(tmp_path, monkeypatch):
    write_image(tmp_path / "wide.png", np.zeros((1000, 2000, 3), np.uint8))  # 2 megapixels
    monkeypatch.setenv(MAX_MEGAPIXELS_VARIABLE, "1.5")
    with pytest.raises(ImageTooLargeError, match=r"the limit is 1\.5: set "
                                                 rf"{MAX_MEGAPIXELS_VARIABLE} to raise it"):
        read_image(tmp_path / "wide.png")
    monkeypatch.setenv(MAX_MEGAPIXELS_VARIABLE, "2.5")
    assert read_image(tmp_path / "wide.png").shape == (1000, 2000, 3)
    assert read_image(tmp_path / "wide.png", max_megapixels=3).shape == (1000, 2000, 3)
    with pytest.raises(ImageTooLargeError, match=r"the limit is 1\)$"):  # a caller's own limit
        read_image(tmp_path / "wide.png", max_megapixels=1)
    for bad in ("lots", "0", "-5", "inf", "nan"):
        monkeypatch.setenv(MAX_MEGAPIXELS_VARIABLE, bad)
        with pytest.raises(DcganError, match=f"{MAX_MEGAPIXELS_VARIABLE} must be a positive"):
            read_image(tmp_path / "wide.png")


def test_complete_refuses_a_bomb_in_one_line(bomb, tiny_model_dir, tmp_path):
    args = ["complete", str(bomb), "--checkpoint-dir", str(tiny_model_dir), "--out",
            str(tmp_path / "out"), "--iterations", "2"]
    results = []
    peak = _peak_growth_mb(lambda: results.append(CliRunner().invoke(main, args)))
    assert results[0].exit_code == 1, results[0].output
    line = _one_line_error(results[0])
    assert re.search(rf"^Error: .*cannot read .*big\.png: {TOO_LARGE}$", line), line
    assert peak < LOW_PEAK_MB


def test_align_skips_a_bomb_and_says_why(bomb, tmp_path):
    (tmp_path / "photos").mkdir()
    shutil.copy(bomb, tmp_path / "photos" / "big.png")
    args = ["align", str(tmp_path / "photos"), str(tmp_path / "aligned"), "--workers", "1"]
    results = []
    peak = _peak_growth_mb(lambda: results.append(CliRunner().invoke(main, args)))
    assert results[0].exit_code == 0, results[0].output
    # counted apart from the unreadable: the photo is fine, only larger than the limit
    assert "unreadable 0, too large 1" in results[0].output, results[0].output
    assert "Traceback" not in results[0].output
    report = (tmp_path / "aligned" / "align_report.csv").read_text()
    assert "big.png,too large," in report and "144 megapixels" in report
    assert peak < LOW_PEAK_MB


def _train_args(dataset, ckpt, *extra):
    return ["train", "--dataset", str(dataset), "--checkpoint-dir", str(ckpt),
            "--image-size", "16", "--z-dim", "8", "--gf-dim", "8", "--df-dim", "8",
            "--batch-size", "8", *extra]


def test_train_refuses_a_set_of_bombs_in_one_line(bomb, tmp_path):
    (tmp_path / "set").mkdir()
    shutil.copy(bomb, tmp_path / "set" / "big.png")
    results = []
    peak = _peak_growth_mb(lambda: results.append(CliRunner().invoke(
        main, _train_args(tmp_path / "set", tmp_path / "ck", "--max-steps", "1"))))
    assert results[0].exit_code == 1, results[0].output
    assert re.search(rf"^Error: none of the 1 image files under .* could be read: cannot read "
                     rf".*big\.png: {TOO_LARGE}$", _one_line_error(results[0]))
    assert peak < LOW_PEAK_MB


def test_train_skips_a_bomb_among_good_images_and_reports_it(bomb, tiny_dataset, tmp_path):
    shutil.copytree(tiny_dataset, tmp_path / "set")
    shutil.copy(bomb, tmp_path / "set" / "big.png")
    result = CliRunner().invoke(main, _train_args(tmp_path / "set", tmp_path / "ck",
                                                  "--max-steps", "1"))
    assert result.exit_code == 0, result.output
    assert "skipped 1 over the 100-megapixel limit (big.png; " \
           f"{MAX_MEGAPIXELS_VARIABLE} raises it)" in result.output
    assert "48 images from" in result.output


# ---------------------------------------------------------------------- temporary files
WRITER = textwrap.dedent("""
    import os, signal, sys
    from dcgan_complete.files import atomic_write

    target, how = sys.argv[1], sys.argv[2]
    with atomic_write(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"half of a file")
            f.flush()
            print(tmp, flush=True)
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            sys.stdin.readline()  # "live": wait to be told to finish
            f.write(b", and the rest")
""")


def _writer(target, how):
    """A real process writing ``target`` through files.atomic_write: killed with SIGKILL in the
    middle of the write ("kill"), or held there until its stdin gets a line ("live").
    Returns (process, its temporary file)."""
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target), how],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    tmp = Path(process.stdout.readline().strip())
    if how == "kill":
        assert process.wait(timeout=60) == -signal.SIGKILL
    assert tmp.name.startswith(f".tmp-{process.pid}-") and tmp.exists()
    return process, tmp


def _planted(folder, pid, name="x.png"):
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / f".tmp-{pid}-0123abcd-{name}"
    path.write_bytes(b"not ours to judge")
    return path


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _cli(*args):
    """Run the command line in a process of its own (a "next run" starts after the last one)."""
    return subprocess.run([sys.executable, "-m", "dcgan_complete", *map(str, args)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_a_write_killed_mid_way_is_cleaned_by_the_next_run(tmp_path, original):
    aligned = tmp_path / "aligned"
    (tmp_path / "photos").mkdir()
    original.save(tmp_path / "photos" / "face.png")
    _, killed = _writer(aligned / "face.png", "kill")
    live, kept = _writer(aligned / "other.png", "live")
    users = [aligned / ".tmp-notes.txt", aligned / "notes.tmp-1-0123abcd-x.png"]
    for path in users:
        path.write_text("the user's")
    try:
        done = _cli("align", tmp_path / "photos", aligned, "--workers", "1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert not killed.exists()
        assert kept.exists()  # its writer is alive
        assert all(path.read_text() == "the user's" for path in users)
    finally:
        live.communicate("finish\n", timeout=60)
    assert live.returncode == 0 and not kept.exists()
    assert (aligned / "other.png").read_bytes() == b"half of a file, and the rest"


def test_a_temporary_still_changing_is_kept_whatever_its_pid(tmp_path):
    """A writer on another machine sharing the folder: its PID means nothing here, but its file
    changed after this process started; one unchanged for STALE_SECONDS goes."""
    fresh = _planted(tmp_path / "fresh", _dead_pid())
    old = _planted(tmp_path / "old", _dead_pid())
    long_ago = time.time() - files.STALE_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    assert files.remove_stale_temporaries(tmp_path / "fresh") == [] and fresh.exists()
    assert files.remove_stale_temporaries(tmp_path / "old") == [old] and not old.exists()


# ------------------------------------------------------------------------- two runs at once
def _wait_for_holder(process, folder):
    """The PID in ``folder``'s lock file, once ``process`` holds it."""
    lock = Path(folder) / files.LOCK_FILE
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the first run ended ({process.returncode}): "
                                 f"{process.stdout.read()}")
        text = lock.read_text() if lock.exists() else ""
        if text.startswith(f"{process.pid} "):
            return text
        time.sleep(0.2)


def test_a_second_train_on_one_folder_is_refused_naming_the_first(tiny_dataset, tmp_path):
    """Two real runs; the first also removes what a run killed with SIGKILL mid-write left."""
    ckpt = tmp_path / "ck"
    _, checkpoint = _writer(ckpt / "ckpt-00000010.npz", "kill")
    _, sample = _writer(ckpt / "samples" / "train_00000010.png", "kill")
    first = subprocess.Popen(
        [sys.executable, "-m", "dcgan_complete", *_train_args(
            tiny_dataset, ckpt, "--max-steps", "100000", "--checkpoint-every", "100000",
            "--sample-every", "100000", "--seed", "0")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        assert _wait_for_holder(first, ckpt) == f"{first.pid} train\n"
        assert not checkpoint.exists() and not sample.exists()
        before = sorted(p.name for p in ckpt.rglob("*"))
        second = CliRunner().invoke(main, _train_args(tiny_dataset, ckpt, "--max-steps", "1"))
        assert second.exit_code == 1, second.output
        assert _one_line_error(second) == (
            f"Error: --checkpoint-dir {ckpt} is in use by another run (train, PID {first.pid}): "
            "wait for it to end, or choose another --checkpoint-dir")
        assert sorted(p.name for p in ckpt.rglob("*")) == before  # the second wrote nothing
        encoder = CliRunner().invoke(main, ["train-encoder", "--checkpoint-dir", str(ckpt),
                                            "--steps", "1"])
        assert encoder.exit_code == 1, encoder.output
        assert f"is in use by another run (train, PID {first.pid})" in _one_line_error(encoder)
    finally:
        first.send_signal(signal.SIGTERM)
        output = first.communicate(timeout=120)[0]
    assert first.returncode in (143, -signal.SIGTERM), output
    assert not (ckpt / files.LOCK_FILE).exists()  # the first let go of the folder
    third = CliRunner().invoke(main, _train_args(tiny_dataset, ckpt, "--max-steps", "1"))
    assert third.exit_code == 0, third.output


def _holder(folder, command, option=None):
    """Another process holding ``folder`` as ``command`` would, until a line on its stdin."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from dcgan_complete.files import FolderLock; "
         "lock = FolderLock(sys.argv[1], sys.argv[2], sys.argv[3] or None); "
         "print('held', flush=True); sys.stdin.readline()", str(folder), command,
         option or ""],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_train_encoder_holds_the_model_folder(tiny_model_dir, tiny_dataset, tmp_path):
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    holder = _holder(model, "train-encoder", "checkpoint_dir")
    try:
        result = CliRunner().invoke(main, ["train-encoder", "--checkpoint-dir", str(model),
                                           "--steps", "1"])
        assert result.exit_code == 1, result.output
        assert f"(train-encoder, PID {holder.pid})" in _one_line_error(result)
        trained = CliRunner().invoke(main, _train_args(tiny_dataset, model, "--max-steps", "1"))
        assert f"(train-encoder, PID {holder.pid})" in _one_line_error(trained)
    finally:
        holder.communicate("done\n", timeout=60)


def test_a_killed_holder_does_not_block_the_next_run(tmp_path):
    holder = _holder(tmp_path, "train")
    with pytest.raises(DcganError, match=f"in use by another run \\(train, PID {holder.pid}\\)"):
        files.FolderLock(tmp_path, "train")
    holder.kill()
    holder.wait(timeout=60)
    assert (tmp_path / files.LOCK_FILE).exists()  # kill -9 leaves the file, not the lock
    with files.FolderLock(tmp_path, "train"), files.FolderLock(tmp_path, "train"):
        assert (tmp_path / files.LOCK_FILE).read_text() == f"{os.getpid()} train\n"
    assert not (tmp_path / files.LOCK_FILE).exists()


def test_a_second_train_detector_on_one_folder_is_refused(tmp_path):
    """Two train-detector runs on one --out would write their checkpoints over each other's."""
    out = tmp_path / "det"
    out.mkdir()
    holder = _holder(out, "train-detector", "out_dir")
    try:
        result = CliRunner().invoke(main, ["train-detector", str(tmp_path / "none"), "--out",
                                           str(out), "--steps", "1"])
        assert result.exit_code == 1, result.output
        assert _one_line_error(result) == (
            f"Error: --out {out} is in use by another run (train-detector, PID {holder.pid}): "
            "wait for it to end, or choose another --out")
        assert sorted(p.name for p in out.iterdir()) == [files.LOCK_FILE]  # nothing written
    finally:
        holder.communicate("done\n", timeout=60)
