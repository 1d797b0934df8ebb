"""Bad input, read as a table: what a user did, and what must happen instead of a traceback or a
lost file.

Every row of ``CASES`` runs the real command line on real files in a fresh folder:
``prepare(tmp, env)`` lays out the files and returns the arguments; the run must exit with
``status`` and print ``message`` (a regular expression) as its one error line; ``check(tmp)``
then asserts that nothing of the user's was lost or overwritten.  Cases that need a second process
(signals, another user) follow the table.

``env`` holds what the rows share: ``env.model`` (the tiny model trained once per session),
``env.dataset`` (its 16 px training faces) and ``env.face(k)`` (a 16 px face, uint8).
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from click.testing import CliRunner

from dcgan_complete.cli import main
from dcgan_complete.images import read_image, write_image

from conftest import make_faces


@dataclasses.dataclass
class Case:
    name: str
    prepare: Callable          # (tmp: Path, env) -> list of CLI arguments
    message: str               # regular expression the one error line must match
    status: int = 1
    check: Callable | None = None  # (tmp: Path) -> None, asserts what must still hold


class Env:
    def __init__(self, model, dataset):
        self.model, self.dataset = Path(model), Path(dataset)
        self._faces = make_faces(8, 16, seed=99)

    def face(self, k=0):
        return self._faces[k]

    def complete(self, *args, iterations=2):
        """The arguments of a fast `complete` run on the tiny model."""
        return ["complete", *map(str, args), "--checkpoint-dir", str(self.model),
                "--iterations", str(iterations), "--out-interval", "1"]


def _unchanged(path, image):
    def check(tmp):
        assert np.array_equal(read_image(tmp / path), image)
    return check


# ------------------------------------------------------------------------------------ complete
def _input_named_summary(tmp, env):
    write_image(tmp / "in" / "summary.png", env.face(0))
    write_image(tmp / "in" / "a.png", env.face(1))
    return env.complete(tmp / "in" / "a.png", tmp / "in" / "summary.png", "--out", tmp / "out")


def _summary_input_kept_apart(tmp):
    assert read_image(tmp / "out" / "summary_2.png").shape == (16, 16, 3)  # the completion
    assert read_image(tmp / "out" / "summary.png").shape[1] > 2 * 16       # the grid
    assert {r.split(",")[0] for r in (tmp / "out" / "losses.csv").read_text().splitlines()[1:]} \
        == {"a", "summary_2"}


def _input_beside_its_masked_name(tmp, env):
    write_image(tmp / "in" / "x.png", env.face(0))
    write_image(tmp / "in" / "x.masked.png", env.face(1))
    return env.complete(tmp / "in" / "x.png", tmp / "in" / "x.masked.png", "--out", tmp / "out")


def _masked_names_kept_apart(tmp):
    # x's masked view keeps its gray hole; the input x.masked.png has its own outputs
    assert (read_image(tmp / "out" / "x.masked.png")[8, 8] == 128).all()
    assert (tmp / "out" / "x.masked_2.png").is_file()
    assert (tmp / "out" / "x.masked_2.masked.png").is_file()


def _masks_folder_as_out(tmp, env):
    write_image(tmp / "in" / "a.png", env.face(0))
    write_image(tmp / "masks" / "a.png", (np.arange(256).reshape(16, 16) % 2 * 255).astype(np.uint8))
    (tmp / "masks_before").write_bytes((tmp / "masks" / "a.png").read_bytes())
    return env.complete(tmp / "in" / "a.png", "--mask", tmp / "masks", "--out", tmp / "masks")


def _masks_untouched(tmp):
    assert sorted(p.name for p in (tmp / "masks").iterdir()) == ["a.png"]
    assert (tmp / "masks" / "a.png").read_bytes() == (tmp / "masks_before").read_bytes()


def _input_inside_out(tmp, env):
    write_image(tmp / "out" / "deep" / "a.png", env.face(0))
    return env.complete(tmp / "out" / "deep" / "a.png", "--out", tmp / "out")


def _complete_out_under_a_file(tmp, env):
    write_image(tmp / "a.png", env.face(0))
    (tmp / "notes").write_text("mine")
    return env.complete(tmp / "a.png", "--out", tmp / "notes" / "out")


def _notes_kept(tmp):
    assert (tmp / "notes").read_text() == "mine"


def _output_blocked_by_a_folder(tmp, env):
    """The completion's own file name is taken by a folder: the write fails after the search."""
    write_image(tmp / "a.png", env.face(0))
    (tmp / "out" / "a.png").mkdir(parents=True)
    return env.complete(tmp / "a.png", "--out", tmp / "out")


def _no_temporary_files_in_out(tmp):
    assert not list((tmp / "out").rglob(".tmp-*"))


def _with_option(*extra):
    def prepare(tmp, env):
        write_image(tmp / "a.png", env.face(0))
        # a model that does not exist: the option must be refused before the model is looked at
        return ["complete", tmp / "a.png", "--checkpoint-dir", tmp / "no-model", "--out",
                tmp / "out", *extra]
    return prepare


def _model_without(name, *extra, edit=None):
    """The tiny model copied with ``name`` removed (or edited by ``edit(path)``)."""
    def prepare(tmp, env):
        import shutil

        shutil.copytree(env.model, tmp / "model")
        if edit:
            edit(tmp / "model" / name)
        else:
            (tmp / "model" / name).unlink()
        write_image(tmp / "a.png", env.face(0))
        return ["complete", tmp / "a.png", "--checkpoint-dir", tmp / "model", "--out",
                tmp / "out", "--iterations", "2", *extra]
    return prepare


def _truncate(path):
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def _wider_config(path):
    import json

    body = json.loads(path.read_text())
    body["model"]["gf_dim"] *= 2
    path.write_text(json.dumps(body))


def _folder_as_image(tmp, env):
    (tmp / "photos.png").mkdir()  # a folder stands for its images: here none
    (tmp / "photos.png" / "notes.txt").write_text("not a picture")
    return env.complete(tmp / "photos.png", "--out", tmp / "out")


def _huge_png(tmp, env):
    from PIL import Image

    Image.new("1", (13500, 13500)).save(tmp / "huge.png")  # 182 megapixels, a few kB on disk
    return env.complete(tmp / "huge.png", "--out", tmp / "out")


def _text_as_image(tmp, env):
    (tmp / "notes.png").write_text("not a picture")
    return env.complete(tmp / "notes.png", "--out", tmp / "out")


def _name_not_utf8(tmp, env):
    import os

    write_image(tmp / os.fsdecode(b"caf\xe9.png"), env.face(0))
    return env.complete(tmp / os.fsdecode(b"caf\xe9.png"), "--out", tmp / "out")


def _losses_name_printable(tmp):
    import os

    assert "caf\\xe9," in (tmp / "out" / "losses.csv").read_text(encoding="utf-8")
    assert (tmp / "out" / os.fsdecode(b"caf\xe9.png")).is_file()


COMPLETE_CASES = [
    Case("complete-input-named-summary", _input_named_summary,
         r"note: .*summary\.png is written as summary_2\.png", status=0,
         check=_summary_input_kept_apart),
    Case("complete-input-beside-x.masked", _input_beside_its_masked_name,
         r"note: .*x\.masked\.png is written as x\.masked_2\.png", status=0,
         check=_masked_names_kept_apart),
    Case("complete-out-is-the-masks-folder", _masks_folder_as_out,
         r"^Error: --out .*masks holds the masks .*masks: outputs could overwrite it",
         check=_masks_untouched),
    Case("complete-out-holds-an-input", _input_inside_out,
         r"^Error: --out .*out holds the input .*a\.png"),
    Case("complete-out-under-a-file", _complete_out_under_a_file,
         r"^Error: cannot write to --out .*notes.out: a file is in the way", check=_notes_kept),
    Case("complete-output-name-taken-by-a-folder", _output_blocked_by_a_folder,
         r"^Error: cannot write .*out.a\.png: Is a directory$",
         check=_no_temporary_files_in_out),
    Case("complete-even-window", _with_option("--window", "8"),
         r"^Error: --window must be odd .*not 8$"),
    Case("complete-center-scale-half", _with_option("--center-scale", "0.5"),
         r"Invalid value for '--center-scale': 0\.5 is not in the range 0<=x<0\.5", status=2),
    Case("complete-negative-lam", _with_option("--lam", "-1"),
         r"Invalid value for '--lam'", status=2),
    Case("complete-no-discriminator", _model_without("discriminator.weights.h5"),
         r"^Error: .*model has no discriminator\.weights\.h5: the perceptual loss needs the "
         r"discriminator \(with --lam 0"),
    Case("complete-no-discriminator-lam-0", _model_without("discriminator.weights.h5", "--lam",
                                                           "0"), r"completed 1 image", status=0),
    Case("complete-truncated-generator", _model_without("generator.weights.h5", edit=_truncate),
         r"^Error: cannot load .*model.generator\.weights\.h5: damaged, or not the weights"),
    Case("complete-malformed-config", _model_without(
        "config.json", edit=lambda p: p.write_text("{")),
         r"^Error: .*model.config\.json is not a model description"),
    Case("complete-config-not-the-weights", _model_without("config.json", edit=_wider_config),
         r"^Error: cannot load .*model.generator\.weights\.h5: damaged, or not the weights of "
         r"the model that config\.json describes"),
    Case("complete-folder-without-images", _folder_as_image,
         r"^Error: input folder .*photos\.png holds no \.png, \.jpg, .* or \.webp images$"),
    Case("complete-180-megapixels", _huge_png,
         r"cannot read .*huge\.png: too large \(182 megapixels; the limit is 100: set "
         r"DCGAN_COMPLETE_MAX_MEGAPIXELS to raise it\)$"),
    Case("complete-text-file-as-image", _text_as_image,
         r"cannot read .*notes\.png: not an image \(no known image format\)$"),
    Case("complete-name-not-utf8", _name_not_utf8, r"completed 1 image", status=0,
         check=_losses_name_printable),
]

# ---------------------------------------------------------------------------------------- train
def _train(env, ckpt, *extra):
    """The arguments of a fast `train` run of the tiny model's shape (``extra`` overrides)."""
    return ["train", "--dataset", env.dataset, "--image-size", "16", "--z-dim", "8",
            "--gf-dim", "8", "--df-dim", "8", "--batch-size", "8", "--max-steps", "61",
            "--checkpoint-dir", ckpt, *extra]


def _copy_model(env, ckpt, checkpoints=True):
    """The tiny model in ``ckpt``: with its checkpoint, or as exported weights alone."""
    import shutil

    shutil.copytree(env.model, ckpt, ignore=None if checkpoints else
                    shutil.ignore_patterns("ckpt-*.npz"))
    return ckpt


def _no_temporary_files(tmp):
    assert not [p for p in tmp.rglob(".tmp-*")], "a temporary file was left behind"


def _under_a_file(option):
    def prepare(tmp, env):
        (tmp / "not-a-dir").write_text("the user's file")
        folder = tmp / "not-a-dir" / "out"
        ckpt = folder if option == "--checkpoint-dir" else tmp / "ck"
        extra = [] if option == "--checkpoint-dir" else [option, folder]
        return _train(env, ckpt, *extra)
    return prepare


def _file_kept(tmp):
    assert (tmp / "not-a-dir").read_text() == "the user's file"
    _no_temporary_files(tmp)


def _damaged_only_checkpoint(keep_bytes):
    def prepare(tmp, env):
        ckpt = _copy_model(env, tmp / "ck")
        (newest,) = ckpt.glob("ckpt-*.npz")
        newest.write_bytes(newest.read_bytes()[:keep_bytes(newest.stat().st_size)])
        return _train(env, ckpt)
    return prepare


def _exported_only(tmp, env):
    _copy_model(env, tmp / "original", checkpoints=False)  # to compare with afterwards
    _copy_model(env, tmp / "ck", checkpoints=False)
    return _train(env, tmp / "ck", "--gf-dim", "16")


def _model_kept(tmp):
    import filecmp

    names = ["config.json", "generator.weights.h5", "discriminator.weights.h5"]
    assert filecmp.cmpfiles(tmp / "ck", tmp / "original", names, shallow=False)[0] == names
    assert not list((tmp / "ck").glob("ckpt-*.npz"))


def _malformed_config(tmp, env):
    (tmp / "ck").mkdir()
    (tmp / "ck" / "config.json").write_text("{not json")
    return _train(env, tmp / "ck")


def _config_kept(tmp):
    assert (tmp / "ck" / "config.json").read_text() == "{not json"


def _no_model_written(tmp):
    assert not (tmp / "ck" / "config.json").exists()


def _not_utf8_model(tmp, env):
    import os

    ckpt = _copy_model(env, tmp / os.fsdecode(b"model-\xff"))
    return _train(env, ckpt, "--gf-dim", "16")


TRAIN_CASES = [
    Case("train-checkpoint-dir-under-a-file", _under_a_file("--checkpoint-dir"),
         r"^Error: cannot write to --checkpoint-dir .*not-a-dir.out: a file is in the way",
         check=_file_kept),
    Case("train-sample-dir-under-a-file", _under_a_file("--sample-dir"),
         r"^Error: cannot write to --sample-dir .*not-a-dir.out: a file is in the way",
         check=_file_kept),
    Case("train-log-dir-under-a-file", _under_a_file("--log-dir"),
         r"^Error: cannot write to --log-dir .*not-a-dir.out: a file is in the way",
         check=_file_kept),
    Case("train-only-checkpoint-cut-to-half", _damaged_only_checkpoint(lambda n: n // 2),
         r"^Error: none of the 1 checkpoint\(s\) in .*ck loads \(newest: .*ckpt-00000060\.npz: "
         r"damaged or incomplete \(.+\)\): move the ckpt-\*\.npz files away",
         check=_no_temporary_files),
    Case("train-only-checkpoint-empty", _damaged_only_checkpoint(lambda n: 0),
         r"^Error: none of the 1 checkpoint\(s\) in .*ck loads \(newest: .*ckpt-00000060\.npz: "
         r"damaged or incomplete \(.+\)\)"),
    Case("train-other-architecture-into-exported-weights", _exported_only,
         r"^Error: the model in .*ck was trained with --gf-dim 8 \(asked 16\): pass the same "
         r"options to resume, or use another --checkpoint-dir$", check=_model_kept),
    Case("train-malformed-config-json", _malformed_config,
         r"^Error: .*ck.config\.json is not a model description \(",
         check=_config_kept),
    Case("train-other-architecture-name-not-utf8", _not_utf8_model,
         r"^Error: the model in .*model-\\xff was trained with --gf-dim 8 \(asked 16\)"),
    Case("train-batch-larger-than-the-dataset",
         lambda tmp, env: _train(env, tmp / "ck", "--batch-size", "64"),
         r"^Error: --batch-size 64 is larger than the dataset \(48 readable images\)$",
         check=_no_model_written),
]

# ---------------------------------------------------------------------------------------- align
def _astronaut():
    from skimage.data import astronaut  # a photo in which dlib finds one face

    return astronaut()


def _align(raw, out, *args):
    return ["align", raw, out, "--workers", "1", *args]


def _aligned_at_32(*args):
    """tmp/raw/face.png aligned at --size 32 into tmp/out (crop kept in tmp/before), then
    `align` again with ``args``."""
    def prepare(tmp, env):
        write_image(tmp / "raw" / "face.png", _astronaut())
        first = CliRunner().invoke(main, [str(a) for a in
                                          _align(tmp / "raw", tmp / "out", "--size", "32")])
        assert first.exit_code == 0, first.output
        (tmp / "before").write_bytes((tmp / "out" / "face.png").read_bytes())
        return _align(tmp / "raw", tmp / "out", *args)
    return prepare


def _crop_untouched(tmp):
    assert (tmp / "out" / "face.png").read_bytes() == (tmp / "before").read_bytes()
    assert [p.name for p in (tmp / "out").glob("*.png")] == ["face.png"]


def _older_folder_at_32(tmp, env):
    """An ALIGNED_DIR of 32 px crops from a version that kept no align_options.json."""
    write_image(tmp / "raw" / "face.png", _astronaut())
    write_image(tmp / "raw" / "other.png", _astronaut()[:, ::-1])
    write_image(tmp / "out" / "face.png", np.full((32, 32, 3), 99, np.uint8))
    (tmp / "before").write_bytes((tmp / "out" / "face.png").read_bytes())
    return _align(tmp / "raw", tmp / "out")


def _out_under_a_file(tmp, env):
    write_image(tmp / "raw" / "face.png", _astronaut())
    (tmp / "notes").write_text("mine")
    return _align(tmp / "raw", tmp / "notes" / "aligned")


def _raw_dir_is_a_photo(tmp, env):
    write_image(tmp / "face.png", _astronaut())
    return _align(tmp / "face.png", tmp / "out")


def _names_not_utf8(tmp, env):
    import os

    (tmp / "raw").mkdir()
    (tmp / "raw" / os.fsdecode(b"\xffbad.png")).write_text("not an image")
    write_image(tmp / "raw" / os.fsdecode(b"\xffface.png"), _astronaut())
    return _align(tmp / "raw", tmp / "out")


def _reported_printably(tmp):
    import csv
    import os

    assert read_image(tmp / "out" / os.fsdecode(b"\xffface.png")).shape == (64, 64, 3)
    with open(tmp / "out" / "align_report.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(row["path"], row["reason"]) for row in rows] == [("\\xffbad.png", "unreadable")]
    # The reason is read_image's, with the name made printable.
    assert re.search(r"^cannot read .*raw/\\xffbad\.png: not an image",
                     rows[0]["detail"]), rows[0]["detail"]


ALIGN_CASES = [
    Case("align_rerun_other_size", _aligned_at_32("--size", "48"),
         r"^Error: .*out holds crops made with --size 32 \(asked 48\): pass the same options.*"
         r"another ALIGNED_DIR$", check=_crop_untouched),
    Case("align_rerun_all_faces", _aligned_at_32("--size", "32", "--all-faces"),
         r"--all-faces off \(asked on\)", check=_crop_untouched),
    Case("align_rerun_same_size", _aligned_at_32("--size", "32"), "", status=0,
         check=_crop_untouched),
    Case("align_older_folder_other_size", _older_folder_at_32,
         r"out holds 32x32 crops, not --size 64: pass --size 32", check=_crop_untouched),
    Case("align_out_under_a_file", _out_under_a_file,
         r"cannot write to ALIGNED_DIR .*notes/aligned: a file is in the way",
         check=lambda tmp: (tmp / "notes").read_text() == "mine" or pytest.fail("notes lost")),
    Case("align_raw_dir_is_a_photo", _raw_dir_is_a_photo,
         r"RAW_DIR .*face\.png is a file, not a folder of photos",
         check=lambda tmp: not (tmp / "out").exists() or pytest.fail("out created")),
    Case("align_all_faces_and_skip_multi",
         lambda tmp, env: _align(tmp, tmp / "out", "--all-faces", "--skip-multi"),
         r"^Error: --all-faces and --skip-multi exclude each other$"),
    Case("align_names_not_utf8", _names_not_utf8, "", status=0, check=_reported_printably),
]

# ------------------------------------------------------------------------------ evaluate, demo
def _demo(tmp, env, *extra):
    return ["demo", "--checkpoint-dir", env.model, "--iterations", "2", "--out", tmp / "out",
            *extra]


def _evaluate(tmp, env, *extra):
    return ["evaluate", env.dataset, "--checkpoint-dir", env.model, "--iterations", "2",
            "--limit", "2", "--mask", "center", *extra]


OTHER_CASES = [
    Case("demo-samples-missing", lambda tmp, env: _demo(tmp, env, "--samples", tmp / "nope"),
         r"^Error: --samples .*nope does not exist$"),
    Case("demo-samples-empty", lambda tmp, env: (tmp / "empty").mkdir() or
         _demo(tmp, env, "--samples", tmp / "empty"),
         r"^Error: --samples .*empty holds no \.png, \.jpg, .* or \.webp images$"),
    Case("evaluate-out-under-a-file", lambda tmp, env: (tmp / "notes").write_text("mine") and
         _evaluate(tmp, env, "--out", tmp / "notes" / "report"),
         r"^Error: cannot write to --out .*notes.report: a file is in the way",
         check=_notes_kept),
    Case("evaluate-even-window", lambda tmp, env: _evaluate(tmp, env, "--window", "4"),
         r"^Error: --window must be odd"),
]

# -------------------------------------------------------------------------------------- photos
def _photo(tmp, name="photo.png", width=256):
    """A real photo with one face: scikit-image's astronaut (public domain), 256 high."""
    from skimage import data

    photo = np.ascontiguousarray(data.astronaut()[20:276, 100:100 + width])
    write_image(tmp / name, photo)
    return photo


def _photo_with_mask(mask_shape):
    def prepare(tmp, env):
        _photo(tmp)
        write_image(tmp / "damage.png", np.full(mask_shape, 255, np.uint8))
        return env.complete(tmp / "photo.png", "--mask", tmp / "damage.png", "--out", tmp / "out")
    return prepare


def _turned_photo_unturned_mask(tmp, env):
    """A JPEG whose EXIF turns it upright, with a mask drawn on its stored (sideways) pixels."""
    from PIL import Image

    photo = _photo(tmp, width=220)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(photo, 1)).save(tmp / "turned.jpg", exif=exif)
    write_image(tmp / "damage.png", np.full((220, 256), 255, np.uint8))
    return env.complete(tmp / "turned.jpg", "--mask", tmp / "damage.png", "--out", tmp / "out")


def _photo_mask_all_black(tmp, env):
    _photo(tmp)
    write_image(tmp / "damage.png", np.zeros((256, 256), np.uint8))
    return env.complete(tmp / "photo.png", "--mask", tmp / "damage.png", "--out", tmp / "out")


def _photo_missing_from_masks_folder(tmp, env):
    _photo(tmp)
    _photo(tmp, "other.png")
    write_image(tmp / "masks" / "photo.png", np.full((256, 256), 255, np.uint8))
    return env.complete(tmp / "photo.png", tmp / "other.png", "--mask", tmp / "masks",
                        "--out", tmp / "out")


def _nothing_written(tmp):
    assert not (tmp / "out").exists() or not [p for p in (tmp / "out").iterdir()]


PHOTO_CASES = [
    Case("photo-mask-of-another-size", _photo_with_mask((80, 100)),
         r"^Error: mask .*damage\.png is 100x80 pixels, but .*photo\.png is 256x256: a mask "
         r"must have its image's size$", check=_nothing_written),
    Case("photo-mask-of-the-unturned-photo", _turned_photo_unturned_mask,
         r"^Error: mask .*damage\.png is 256x220 pixels, but .*turned\.jpg is 220x256: .*"
         r"turned by their EXIF orientation: draw the mask on the upright image\)$",
         check=_nothing_written),
    Case("photo-mask-all-black", _photo_mask_all_black,
         r"^Error: mask .*damage\.png has no known pixel: it is all black"),
    Case("photo-without-a-mask-in-the-folder", _photo_missing_from_masks_folder,
         r"^Error: no mask for image .*other\.png in .*masks"),
    Case("photo-jpeg-quality-out-of-range",
         lambda tmp, env: _photo(tmp) is None or
         env.complete(tmp / "photo.png", "--format", "jpg", "--quality", "0"),
         r"^Error: Invalid value for '--quality'", status=2),
    Case("photo-strict-and-input-photo",
         lambda tmp, env: _photo(tmp) is None or
         env.complete(tmp / "photo.png", "--input", "photo", "--strict", "--out", tmp / "out"),
         r"^Error: --strict refuses images that are not the model's size, --input photo "
         r"repairs every image at its own size: choose one$"),
    Case("photo-unknown-input-mode",
         lambda tmp, env: _photo(tmp) is None or
         env.complete(tmp / "photo.png", "--input", "scan"),
         r"^Error: Invalid value for '--input'", status=2),
]

# ---------------------------------------------------------------------------------------- serve
# Each row fails before the server starts (a row that started it would wait for Ctrl-C); the
# page's own bad uploads are in test_app.py.
def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_held_ports = []  # sockets that keep a port taken until the row's check releases them


def _serve_on_a_taken_port(tmp, env):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    _held_ports.append(taken)
    return ["serve", "--checkpoint-dir", env.model, "--port", taken.getsockname()[1]]


def _release_ports(tmp):
    while _held_ports:
        _held_ports.pop().close()


SERVE_CASES = [
    Case("serve-port-taken", _serve_on_a_taken_port,
         r"^Error: cannot serve on 127\.0\.0\.1:\d+ \(--port\): Address already in use$",
         check=_release_ports),
    Case("serve-no-model-there", lambda tmp, env: ["serve", "--checkpoint-dir", tmp / "nope",
                                                   "--port", _free_port()],
         r"^Error: .*nope holds no trained model"),
    Case("serve-queue-of-none", lambda tmp, env: ["serve", "--queue-size", "0"],
         r"^Error: Invalid value for '--queue-size'", status=2),
    Case("serve-no-megapixels", lambda tmp, env: ["serve", "--max-megapixels", "0"],
         r"^Error: Invalid value for '--max-megapixels'", status=2),
]

# -------------------------------------------------------- several devices, machines, shards
def _face_in(tmp, env, *names):
    for name in names:
        write_image(tmp / name, env.face(0))
    return [tmp / name for name in names]


def _nothing_written(folder):
    def check(tmp):
        assert not (tmp / folder).exists() or not any((tmp / folder).iterdir())
    return check


DISTRIBUTE_CASES = [
    Case("train-devices-without-mirrored",
         lambda tmp, env: _train(env, tmp / "ck", "--devices", "GPU:0"),
         r"^Error: --devices needs --distribute mirrored \(it names the devices that share each "
         r"batch\), not 'none'$"),
    Case("train-devices-not-devices",
         lambda tmp, env: _train(env, tmp / "ck", "--distribute", "mirrored", "--devices",
                                 "TPU:0"),
         r"^Error: --devices must be a comma-separated list of devices like GPU:0,GPU:1: "
         r"'TPU:0' is not a device name"),
    Case("train-multiworker-without-tf-config",
         lambda tmp, env: _train(env, tmp / "ck", "--distribute", "multiworker"),
         r"^Error: --distribute multiworker needs the TF_CONFIG environment variable",
         check=_nothing_written("ck")),
    Case("complete-shard-past-the-end",
         lambda tmp, env: env.complete(*_face_in(tmp, env, "a.png"), "--shard", "4/3",
                                       "--out", tmp / "out"),
         r"^Error: --shard must be K/N, the K-th of N slices of the inputs with 1 <= K <= N "
         r"\(as 2/3\), not '4/3'$", status=1, check=_nothing_written("out")),
    Case("complete-shard-same-names",
         lambda tmp, env: env.complete(*_face_in(tmp, env, "a/x.png", "b/x.png"),
                                       "--shard", "1/2", "--out", tmp / "out"),
         r"^Error: with --shard every input needs outputs of its own name: rename .*b.x\.png",
         check=_nothing_written("out")),
    Case("complete-shard-name-of-a-face-output",   # a.png's first face is a.face0.png
         lambda tmp, env: env.complete(*_face_in(tmp, env, "a.png", "a.face0.png"),
                                       "--shard", "1/2", "--out", tmp / "out"),
         r"^Error: with --shard every input needs outputs of its own name: rename "
         r".*a\.face0\.png", check=_nothing_written("out")),
    Case("complete-mirrored-on-a-missing-gpu",
         lambda tmp, env: env.complete(*_face_in(tmp, env, "a.png"), "--distribute", "mirrored",
                                       "--devices", "GPU:63", "--out", tmp / "out"),
         r"^Error: --devices names GPU:63, but this machine has (no GPU|\d+ GPU\(s\))$",
         check=_nothing_written("out")),
]

# -------------------------------------------------------------------------------------- options
# Every number has bounds (dcgan_complete.options): a seed lies in 0..2**32-1, a float is finite
# and, where more only overflows float32, capped; counts that size memory or processes are
# capped, or checked against the memory available.  test_cli.py tries every option of every
# command; these rows are the cases users ran into.
def _encoder(tmp, *extra):
    return ["train-encoder", "--checkpoint-dir", tmp / "no-model", *extra]


def _out_of_range(flag, value, bounds):
    """click's one line for a value outside the range that options.py sets."""
    return rf"^Error: Invalid value for '{re.escape(flag)}': {re.escape(value)} is not in the " \
           rf"range {re.escape(bounds)}\.$"


SEED_RANGE = "0<=x<=4294967295"


def _overflowing_model(tmp, env):
    """The tiny model with its discriminator's convolutions scaled by 1e38: finite weights whose
    activations overflow float32, so the search's loss turns NaN at its first step."""
    import shutil

    import h5py

    shutil.copytree(env.model, tmp / "model")
    with h5py.File(tmp / "model" / "discriminator.weights.h5", "r+") as f:
        for layer in ("conv2d", "conv2d_1"):
            kernel = f[f"layers/{layer}/vars/0"]
            kernel[...] = kernel[...] * np.float32(1e38)
    write_image(tmp / "a.png", env.face(0))
    return ["complete", tmp / "a.png", "--checkpoint-dir", tmp / "model", "--out", tmp / "out",
            "--iterations", "3", "--out-interval", "1", "--gif", "--frames"]


OPTION_CASES = [
    Case("complete-seed-negative", _with_option("--seed", "-1"),
         _out_of_range("--seed", "-1", SEED_RANGE), status=2),
    Case("evaluate-seed-negative", lambda tmp, env: _evaluate(tmp, env, "--seed", "-1"),
         _out_of_range("--seed", "-1", SEED_RANGE), status=2),
    Case("demo-seed-negative", lambda tmp, env: _demo(tmp, env, "--seed", "-1"),
         _out_of_range("--seed", "-1", SEED_RANGE), status=2),
    Case("serve-seed-negative",
         lambda tmp, env: ["serve", "--checkpoint-dir", tmp / "nope", "--seed", "-1"],
         _out_of_range("--seed", "-1", SEED_RANGE), status=2),
    Case("train-seed-2**64", lambda tmp, env: _train(env, tmp / "ck", "--seed", str(2 ** 64)),
         _out_of_range("--seed", str(2 ** 64), SEED_RANGE), status=2, check=_no_model_written),
    Case("train-encoder-seed-2**32", lambda tmp, env: _encoder(tmp, "--seed", str(2 ** 32)),
         _out_of_range("--seed", str(2 ** 32), SEED_RANGE), status=2),
    Case("complete-lam-inf", _with_option("--lam", "inf"),
         _out_of_range("--lam", "inf", "0<=x<=1000000.0"), status=2),
    Case("complete-lr-inf-gif", _with_option("--lr", "inf", "--gif"),
         _out_of_range("--lr", "inf", "0<x<=1.0"), status=2),
    Case("complete-anchor-1e308", _with_option("--anchor", "1e308"),
         _out_of_range("--anchor", "1e+308", "0<=x<=1000000.0"), status=2),
    Case("complete-lr-overflows-float32", _with_option("--lr", "1e39"),
         _out_of_range("--lr", "1e+39", "0<x<=1.0"), status=2),
    Case("complete-tolerance-inf", _with_option("--tolerance", "inf"),
         _out_of_range("--tolerance", "inf", "0<=x<=1"), status=2),
    Case("complete-lam-nan", _with_option("--lam", "nan"),
         r"^Error: --lam must be a finite number, not nan$"),
    Case("evaluate-lam-inf", lambda tmp, env: _evaluate(tmp, env, "--lam", "inf"),
         _out_of_range("--lam", "inf", "0<=x<=1000000.0"), status=2),
    Case("serve-max-megapixels-inf",
         lambda tmp, env: ["serve", "--checkpoint-dir", tmp / "nope", "--max-megapixels", "inf"],
         _out_of_range("--max-megapixels", "inf", "0<x<=1000.0"), status=2),
    Case("train-lr-inf", lambda tmp, env: _train(env, tmp / "ck", "--lr", "inf"),
         _out_of_range("--lr", "inf", "0<x<=1.0"), status=2, check=_no_model_written),
    Case("train-beta1-1-divides-by-zero", lambda tmp, env: _train(env, tmp / "ck", "--beta1", "1"),
         _out_of_range("--beta1", "1.0", "0<=x<1"), status=2, check=_no_model_written),
    Case("train-encoder-z-weight-inf", lambda tmp, env: _encoder(tmp, "--z-weight", "inf"),
         _out_of_range("--z-weight", "inf", "0<=x<=1000000.0"), status=2),
    Case("complete-search-diverges", _overflowing_model,
         r"^Error: the search diverged: its loss became nan after 1 iteration\(s\) \(--lr "
         r"[0-9.]+, --lam 0\.1\): lower them, or check the model \(its networks may overflow\)$",
         check=_nothing_written("out")),
    Case("complete-window-1001", _with_option("--window", "1001"),
         _out_of_range("--window", "1001", "1<=x<=255"), status=2),
    Case("complete-threads-99999999999", _with_option("--threads", "99999999999"),
         _out_of_range("--threads", "99999999999", "0<=x<=1024"), status=2),
    Case("complete-restarts-1000", _with_option("--restarts", "1000"),
         _out_of_range("--restarts", "1000", "1<=x<=100"), status=2),
    Case("complete-batch-size-100000", _with_option("--batch-size", "100000"),
         _out_of_range("--batch-size", "100000", "1<=x<=1024"), status=2),
    Case("complete-iterations-past-int64", _with_option("--iterations", str(10 ** 20)),
         _out_of_range("--iterations", str(10 ** 20), "1<=x<=1000000000"), status=2),
    Case("align-size-20000",
         lambda tmp, env: (tmp / "raw").mkdir() or _align(tmp / "raw", tmp / "out", "--size",
                                                          "20000"),
         _out_of_range("--size", "20000", "8<=x<=1024"), status=2,
         check=_nothing_written("out")),
    Case("align-workers-99999999999",
         lambda tmp, env: (tmp / "raw").mkdir() or ["align", tmp / "raw", tmp / "out",
                                                    "--workers", "99999999999"],
         _out_of_range("--workers", "99999999999", "1<=x<=256"), status=2,
         check=_nothing_written("out")),
    Case("train-batch-size-100000",
         lambda tmp, env: _train(env, tmp / "ck", "--batch-size", "100000"),
         _out_of_range("--batch-size", "100000", "1<=x<=1024"), status=2,
         check=_no_model_written),
    Case("train-encoder-batch-size-100000", lambda tmp, env: _encoder(tmp, "--batch-size",
                                                                      "100000"),
         _out_of_range("--batch-size", "100000", "1<=x<=1024"), status=2),
    Case("train-gf-dim-beyond-memory",
         lambda tmp, env: _train(env, tmp / "ck", "--gf-dim", str(10 ** 7)),
         r"^Error: training a model of --image-size 16, --z-dim 8, --gf-dim 10000000 and "
         r"--df-dim 8 on batches of --batch-size 8 needs at least [0-9,]+\.\d GB of memory, and "
         r"[0-9,]+\.\d GB is available: lower --batch-size, --gf-dim or --df-dim$",
         check=_no_model_written),
    Case("train-encoder-ef-dim-beyond-memory",
         lambda tmp, env: _encoder(tmp, "--ef-dim", str(10 ** 7)),
         r"^Error: an encoder of --ef-dim 10000000 needs at least [0-9,]+\.\d GB of memory, and "
         r"[0-9,]+\.\d GB is available: lower --ef-dim$"),
    Case("evaluate-sweep-and-photos",
         lambda tmp, env: _evaluate(tmp, env, "--sweep", "1,2", "--photos"),
         r"^Error: --sweep and --photos exclude each other$"),
]

CASES = COMPLETE_CASES + TRAIN_CASES + ALIGN_CASES + OTHER_CASES + PHOTO_CASES + SERVE_CASES \
    + DISTRIBUTE_CASES + OPTION_CASES


@pytest.fixture
def env(tiny_model_dir, tiny_dataset):
    return Env(tiny_model_dir, tiny_dataset)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case, env, tmp_path):
    args = case.prepare(tmp_path, env)
    result = CliRunner().invoke(main, [str(a) for a in args])
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert result.exit_code == case.status, result.output
    if not case.status:
        assert re.search(case.message, result.output), result.output
    else:
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            f"traceback: {result.exception!r}"
        assert len(lines) == 1, result.output
        assert re.search(case.message, lines[0]), lines[0]
    if case.check is not None:
        case.check(tmp_path)


# ------------------------------------------------------------------ beyond the table: processes
@pytest.mark.parametrize("signum, status", [(2, 130), (15, 143)], ids=["ctrl-c", "sigterm"])
def test_complete_stopped_by_a_signal_exits_with_its_status_and_leaves_no_file(env, tmp_path,
                                                                               signum, status):
    """Ctrl-C or a scheduler's SIGTERM during the search: 130 or 143, one line, no stray file."""
    import os
    import signal
    import subprocess
    import sys
    import time

    write_image(tmp_path / "a.png", env.face(0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dcgan_complete", "complete", str(tmp_path / "a.png"),
         "--checkpoint-dir", str(env.model), "--iterations", str(10 ** 7), "--out-interval", "10",
         "--out", str(tmp_path / "out"), "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and \
                not (tmp_path / "out").is_dir():  # the folder is made once the checks pass
            time.sleep(0.1)
        time.sleep(3)  # into the search
        assert proc.poll() is None, proc.communicate()[1].decode()
        proc.send_signal(signal.Signals(signum))
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err.decode()[-2000:]
    assert "Traceback" not in err.decode() and err.decode().strip().endswith("interrupted")
    assert not list(tmp_path.rglob(".tmp-*"))


def test_evaluate_reports_follow_the_umask_and_the_bar_counts_iterations(env, tmp_path, capsys):
    """Reports were written 0600 (mkstemp); the bar counted fills, so its estimate was 10x off."""
    import os

    from dcgan_complete.evaluate import evaluate
    from dcgan_complete.options import CompleteOptions

    umask = os.umask(0o022)
    try:
        evaluate(env.dataset, checkpoint_dir=env.model, masks=["center", "random"],
                 methods=["ours", "mean"], limit=3, out_dir=tmp_path / "r",
                 options=CompleteOptions(iterations=30, out_interval=10, batch_size=2))
    finally:
        os.umask(umask)
    for name in ("summary.csv", "summary.json", "per_image.csv", "comparison.png"):
        assert os.stat(tmp_path / "r" / name).st_mode & 0o777 == 0o644, name
    # 2 masks x 2 batches (3 images, batch 2) x 30 iterations, counted as iterations
    final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.search(r"120/120 \[.*it/s", final), final


def test_a_search_that_cannot_fit_in_memory_is_refused_before_it_starts():
    """--batch-size x --restarts starts are searched at once: 1024 x 100 of a 128 px model need
    at least 429 GB for the networks' feature maps alone, which no test machine has."""
    from dcgan_complete.errors import OptionError
    from dcgan_complete.masks import make_mask
    from dcgan_complete.model import build_discriminator, build_generator
    from dcgan_complete.options import CompleteOptions, ModelConfig, available_memory
    from dcgan_complete.search import Completer

    config = ModelConfig(image_size=128)
    completer = Completer(build_generator(config), build_discriminator(config),
                          CompleteOptions(init="random", iterations=1, restarts=100,
                                          batch_size=1024, precision="float32"))
    assert available_memory() < 429.4e9  # else this machine would run the search
    images = np.zeros((1024, 128, 128, 3), np.uint8)
    with pytest.raises(OptionError) as error:
        completer.complete(images, [make_mask("center", 128)] * 1024)
    assert re.fullmatch(r"searching 102400 starts at once \(restarts 100 for each of the 1024 "
                        r"image\(s\) of a batch, batch_size 1024\) needs at least 429\.5 GB of "
                        r"memory, and [0-9,]+\.\d GB is available: lower batch_size or restarts",
                        str(error.value)), str(error.value)
    assert error.value.format(lambda name: "--" + name.replace("_", "-")).endswith(
        "lower --batch-size or --restarts")


def test_a_second_complete_into_a_folder_in_use_is_refused(env, tmp_path):
    """Two `complete` runs into one --out would write over each other's outputs and summary:
    the second is refused at its start, naming the first's PID; once the first ends, the
    folder is free again."""
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from dcgan_complete.files import FolderLock\n"
         "lock = FolderLock(sys.argv[1], 'complete', 'out_dir')\n"
         "print('held', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        write_image(tmp_path / "a.png", env.face(0))
        args = env.complete(tmp_path / "a.png", "--out", out)
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert re.search(rf"^Error: --out .*out is in use by another run \(complete, PID "
                         rf"{holder.pid}\): wait for it to end, or choose another --out$",
                         result.output, re.M), result.output
        assert not (out / "a.png").exists()
    finally:
        holder.kill()
        holder.wait()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (out / "a.png").exists()


def test_a_signal_that_library_code_turns_into_another_error_still_stops_with_its_status():
    """SIGTERM while TensorFlow's C++ was calling back into Python came out of it as an
    AssertionError: the run ended with status 1 and a traceback instead of 143."""
    import os
    import signal
    import time

    import click

    from dcgan_complete.cli import _friendly_errors

    @click.command()
    @click.option("--signal-first", is_flag=True)
    @_friendly_errors
    def command(signal_first):
        try:
            if signal_first:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)
        except KeyboardInterrupt:
            pass  # what a library's C code does with the exception the handler raised...
        raise AssertionError("len(args) == 1")  # ...before failing on its own state

    stopped = CliRunner().invoke(command, ["--signal-first"])
    assert stopped.exit_code == 143, stopped.output
    assert stopped.output.strip() == "interrupted"
    bug = CliRunner().invoke(command, [])  # without a signal it is a bug, and stays one
    assert isinstance(bug.exception, AssertionError)
