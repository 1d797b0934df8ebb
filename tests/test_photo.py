"""Photos in, photos out: faces repaired inside ordinary photos at the photo's own size.

The photos are built from scikit-image's astronaut (public domain): a 256 px crop with one face,
two of them side by side, grayscale, RGBA and an EXIF-rotated JPEG; the cat (chelsea) is a photo
without a face.  dlib's real detector and landmarks find the faces; the tiny 16 px model of
conftest fills them, so the fills are poor but every step of the pipeline runs for real.
"""
import re

import numpy as np
import pytest
from click.testing import CliRunner
from skimage import data

from dcgan_complete.align import warp_affine
from dcgan_complete.cli import main
from dcgan_complete.classical import telea_fill
from dcgan_complete.images import read_image, write_image
from dcgan_complete.options import CompleteOptions, MaskOptions, PhotoOptions
from dcgan_complete.outputs import output_names
from dcgan_complete.photo import PhotoRepairer, crop_mask, find_faces, repair_photo
from dcgan_complete.search import Completer

FACE_BOX = (83, 64, 170, 150)  # where dlib finds the face in PHOTO (left, top, right, bottom)


def astronaut_photo():
    """256 x 256, one face (dlib: FACE_BOX)."""
    return np.ascontiguousarray(data.astronaut()[20:276, 100:356])


def two_faces_photo():
    """256 x 512: the astronaut beside her mirror image."""
    photo = astronaut_photo()
    return np.ascontiguousarray(np.concatenate([photo, photo[:, ::-1]], axis=1))


def damage(shape, rows=(100, 112), cols=None):
    """A band across the photo at nose height (white = known): over the face and, outside the
    face's frame, over the background."""
    mask = np.full(shape, 255, np.uint8)
    mask[rows[0]:rows[1], slice(*cols) if cols else slice(None)] = 0
    return mask


@pytest.fixture(scope="module")
def completer(tiny_model_dir):
    return Completer.from_checkpoint(
        tiny_model_dir, CompleteOptions(iterations=20, out_interval=10, seed=0, init="random"))


@pytest.fixture(scope="module")
def repairer(completer):
    return PhotoRepairer(completer)


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def complete_args(model, *args):
    return ["complete", *args, "--checkpoint-dir", model, "--iterations", "20",
            "--out-interval", "10", "--init", "random"]


def test_cli_repairs_a_photo_at_its_size_and_keeps_every_other_pixel(tiny_model_dir, tmp_path):
    photo = astronaut_photo()
    write_image(tmp_path / "photo.png", photo)
    write_image(tmp_path / "damage.png", damage(photo.shape[:2]))
    result = run(*complete_args(tiny_model_dir, tmp_path / "photo.png", "--mask",
                                tmp_path / "damage.png", "--out", tmp_path / "out", "--gif"))
    assert result.exit_code == 0, result.output
    repaired = read_image(tmp_path / "out" / "photo.png")
    known = damage(photo.shape[:2]) > 0
    assert repaired.shape == photo.shape
    assert np.array_equal(repaired[known], photo[known])
    assert np.abs(repaired[~known].astype(int) - photo[~known]).mean() > 0  # the hole changed
    # the band crosses the face's frame and runs on into the background: both paths filled it
    line = re.search(r"photo\.png \(256x256\): 1 face\(s\) found, 1 repaired; hole pixels filled "
                     r"by the model (\d+), by Telea (\d+)", result.output)
    assert line, result.output
    model, classical = map(int, line.groups())
    assert model > 0 and classical > 0 and model + classical == (~known).sum()
    assert read_image(tmp_path / "out" / "photo.face0.png").shape == (16, 16, 3)
    assert (read_image(tmp_path / "out" / "photo.masked.png")[~known] == 128).all()
    assert (tmp_path / "out" / "photo.face0.gif").is_file()
    assert "photo.face0" in (tmp_path / "out" / "losses.csv").read_text()


def test_two_faces_are_both_repaired(repairer):
    photo = two_faces_photo()
    repair = repairer.repair([photo], ["center"])[0]
    assert repair.faces_found == 2 and len(repair.faces) == 2
    assert repair.repaired.shape == photo.shape
    assert np.array_equal(repair.repaired[repair.known], photo[repair.known])
    for k, face in enumerate(repair.faces):
        mine = repair.owner == k
        assert face.pixels == mine.sum() > 100
        assert np.abs(repair.repaired[mine].astype(int) - photo[mine]).mean() > 1
        assert face.z.shape == (8,) and np.isfinite(face.loss)
    # one face on each half of the photo
    assert sorted(f.box[0] < 256 for f in repair.faces) == [False, True]
    assert repair.classical_pixels == 0


def test_the_center_kind_is_cut_in_each_face_frame(repairer):
    repair = repairer.repair([astronaut_photo()], ["center"])[0]
    ys, xs = np.nonzero(~repair.known)
    left, top, right, bottom = FACE_BOX
    # inside the face, around its middle, and about a quarter of its frame
    assert left < xs.min() and xs.max() < right and top < ys.min() and ys.max() < bottom
    frame = repair.faces[0].frame
    area = (~repair.known).sum() / (frame.scale * frame.size) ** 2
    assert 0.2 < area < 0.3


def test_a_background_hole_takes_only_the_classical_path(repairer):
    photo = astronaut_photo()
    known = np.ones(photo.shape[:2], np.float32)
    known[200:230, 10:40] = 0  # bottom left, far from the face
    repair = repairer.repair([photo], [known])[0]
    assert repair.faces_found == 1 and repair.faces == []
    assert repair.model_pixels == 0 and repair.classical_pixels == 900
    assert np.array_equal(repair.repaired, telea_fill(photo, known))
    # the summary says why no face was repaired ("1 face(s) found, 0 repaired" alone did not)
    assert repair.face_reports() == [
        "no face met the hole: Telea filled it (1 face(s) elsewhere left as they were)"]


def test_a_photo_without_faces_is_filled_classically_with_a_note(tiny_model_dir, tmp_path):
    cat = data.chelsea()
    write_image(tmp_path / "cat.png", cat)
    write_image(tmp_path / "damage.png", damage(cat.shape[:2], rows=(50, 60)))
    result = run(*complete_args(tiny_model_dir, tmp_path / "cat.png", "--mask",
                                tmp_path / "damage.png", "--out", tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert re.search(r"note: .*cat\.png: no face found; its 4510 hole pixels were filled "
                     r"classically \(Telea\)", result.output), result.output
    repaired = read_image(tmp_path / "out" / "cat.png")
    known = damage(cat.shape[:2], rows=(50, 60)) > 0
    assert repaired.shape == cat.shape and np.array_equal(repaired[known], cat[known])
    assert np.array_equal(repaired, telea_fill(cat, known))
    assert not list((tmp_path / "out").glob("cat.face*"))


def test_an_exif_rotated_photo_comes_out_upright(tiny_model_dir, tmp_path):
    from PIL import Image

    upright = np.ascontiguousarray(astronaut_photo()[:, :220])  # 256 high, 220 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored pixels are to be turned 90 degrees clockwise
    Image.fromarray(np.rot90(upright, 1)).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    decoded = read_image(tmp_path / "turned.jpg")
    assert decoded.shape == upright.shape  # read upright
    write_image(tmp_path / "damage.png", damage(upright.shape[:2]))
    result = run(*complete_args(tiny_model_dir, tmp_path / "turned.jpg", "--mask",
                                tmp_path / "damage.png", "--out", tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "1 face(s) found, 1 repaired" in result.output
    repaired = read_image(tmp_path / "out" / "turned.png")
    known = damage(upright.shape[:2]) > 0
    assert repaired.shape == upright.shape
    assert np.array_equal(repaired[known], decoded[known])


@pytest.mark.parametrize("kind", ["gray", "rgba"])
def test_grayscale_and_rgba_photos(tiny_model_dir, tmp_path, kind):
    photo = astronaut_photo()
    if kind == "gray":
        stored = np.rint(photo @ [0.299, 0.587, 0.114]).astype(np.uint8)  # (H, W)
    else:
        alpha = np.full(photo.shape[:2] + (1,), 255, np.uint8)
        alpha[:20] = 128  # a half-transparent strip at the top, composited over white
        stored = np.concatenate([photo, alpha], axis=2)
    write_image(tmp_path / "photo.png", stored)
    decoded = read_image(tmp_path / "photo.png")
    write_image(tmp_path / "damage.png", damage(photo.shape[:2]))
    result = run(*complete_args(tiny_model_dir, tmp_path / "photo.png", "--mask",
                                tmp_path / "damage.png", "--out", tmp_path / "out"))
    assert result.exit_code == 0, result.output
    repaired = read_image(tmp_path / "out" / "photo.png")
    known = damage(photo.shape[:2]) > 0
    assert repaired.shape == decoded.shape == photo.shape
    assert np.array_equal(repaired[known], decoded[known])
    assert not np.array_equal(repaired[~known], decoded[~known])
    if kind == "gray":  # the model's colour fill is made gray in a gray photo
        assert (repaired[..., 0] == repaired[..., 1]).all()
        assert (repaired[..., 1] == repaired[..., 2]).all()


def test_input_crop_keeps_the_centre_crop_and_format_jpg_writes_a_jpeg(tiny_model_dir,
                                                                       tmp_path):
    photo = astronaut_photo()
    write_image(tmp_path / "photo.png", photo)
    result = run(*complete_args(tiny_model_dir, tmp_path / "photo.png", "--input", "crop",
                                "--out", tmp_path / "crop"))
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "crop" / "photo.png").shape == (16, 16, 3)
    assert "centre-cropped" in result.output
    result = run(*complete_args(tiny_model_dir, tmp_path / "photo.png", "--format", "jpg",
                                "--quality", "90", "--out", tmp_path / "jpg"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "jpg" / "photo.jpg").read_bytes()[:2] == b"\xff\xd8"  # JPEG
    assert read_image(tmp_path / "jpg" / "photo.jpg").shape == photo.shape
    assert not (tmp_path / "jpg" / "photo.png").exists()


def test_crops_and_photos_in_one_run(tiny_model_dir, tmp_path):
    """auto: a 16 px image is an aligned crop, the 256 px one a photo; one summary for both."""
    from conftest import make_faces

    write_image(tmp_path / "crop.png", make_faces(1, 16, seed=5)[0])
    write_image(tmp_path / "photo.png", astronaut_photo())
    result = run(*complete_args(tiny_model_dir, tmp_path / "crop.png", tmp_path / "photo.png",
                                "--out", tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "out" / "crop.png").shape == (16, 16, 3)
    assert (tmp_path / "out" / "crop.generated.png").is_file()
    assert read_image(tmp_path / "out" / "photo.png").shape == (256, 256, 3)
    names = {row.split(",")[0] for row in
             (tmp_path / "out" / "losses.csv").read_text().splitlines()[1:]}
    assert names == {"crop", "photo.face0"}
    assert "completed 2 image(s)" in result.output


@pytest.mark.parametrize("size, side", [(64, 1), (16, 12)])
def test_a_crop_pixel_is_known_only_where_every_photo_pixel_under_it_is(repairer, size, side):
    """At 64 px the warp is bilinear (a single photo pixel can be seen); at 16 px it first
    averages 5x5 blocks, so the hole is a 12 px square."""
    photo = astronaut_photo()
    frame = find_faces(repairer.aligner, photo, size)[0]
    for y, x in [(100, 120), (101, 121), (80, 100), (125, 140)]:  # inside the frame
        known = np.ones(photo.shape[:2], bool)
        known[y:y + side, x:x + side] = False
        mask = crop_mask(frame, known)
        # the warp of an image that is bright only in the hole: every crop pixel it reaches
        # must be unknown
        marker = np.zeros_like(photo)
        marker[~known] = 255
        reached = warp_affine(marker, frame.transform, size).max(axis=2) > 0
        assert reached.any() and (mask[reached] == 0).all()
        assert (mask == 0).sum() <= 4 * reached.sum() + 8  # and not much more is unknown


def test_photo_api_returns_per_face_details(completer):
    photo = astronaut_photo()
    known = damage(photo.shape[:2], cols=(90, 160)) > 0  # over the face only
    repair = repair_photo(photo, known, completer, PhotoOptions(grain=False))
    [face] = repair.faces
    assert face.box == FACE_BOX
    assert face.transform.shape == (2, 3) and face.z.shape == (8,) and np.isfinite(face.loss)
    assert face.completed.shape == (16, 16, 3) and face.mask.min() == 0
    assert repair.model_pixels == (~known).sum() and repair.classical_pixels == 0
    assert set(repair.timings) == {"detect", "warp", "search", "blend"}


def test_wrong_size_mask_is_refused_by_the_api(completer):
    with pytest.raises(ValueError, match=r"the mask is 100x80 pixels, but the photo is 256x256"):
        repair_photo(astronaut_photo(), np.ones((80, 100)), completer)


def test_output_names_keep_face_crops_apart():
    assert output_names(["a/x.png", "b/x.face0.png"], faces=[1, None]) == ["x", "x.face0_2"]
    assert output_names(["x.png", "x.jpg"], faces=[0, 0], photo_format="jpg") == ["x", "x_2"]


def test_faces_given_to_the_plan_are_used_instead_of_detection(repairer):
    photo = astronaut_photo()
    known = damage(photo.shape[:2], cols=(90, 160)) > 0  # over the face only
    assert len(repairer.plan(photo, known).faces) == 1
    plan = repairer.plan(photo, known, frames=[])  # told there is no face: Telea alone
    repair = repairer.finish(plan, [])
    assert repair.faces == [] and repair.classical_pixels == (~known).sum()
    assert np.array_equal(repair.repaired, telea_fill(photo, known))


def test_evaluate_photos_scores_ours_and_telea_at_the_photo_scale(tiny_model_dir, tmp_path):
    from dcgan_complete.evaluate import evaluate_photos

    write_image(tmp_path / "raw" / "face.png", astronaut_photo())
    write_image(tmp_path / "raw" / "cat.png", data.chelsea())
    summary = evaluate_photos(tmp_path / "raw", checkpoint_dir=tiny_model_dir,
                              methods=["ours", "telea"], out_dir=tmp_path / "report",
                              options=CompleteOptions(iterations=10, out_interval=10,
                                                      init="random"),
                              mask_options=MaskOptions(center_scale=0.35),  # dlib finds it again
                              progress=False)
    assert summary.skipped == [("cat.png", "no face")]
    assert (summary.photos, summary.faces) == (1, 1)
    ours, telea = summary.rows
    assert (ours["method"], telea["method"]) == ("ours", "telea")
    assert ours["model_faces"] == 1 and ours["reached"] == 1.0 and 5 < ours["psnr_hole"] < 100
    assert 5 < telea["psnr_hole"] < 100 and 0 <= telea["face_found"] <= 1
    assert {p.name for p in (tmp_path / "report").iterdir()} == \
        {"summary.csv", "summary.json", "per_photo.csv", "per_face.csv", "comparison.png",
         "worst.png"}
    face = [r for r in summary.per_face if r["method"] == "ours"]
    assert [(r["face"], r["repaired_by"], r["why"]) for r in face] == [(0, "model", "")]
    assert 5 < face[0]["psnr_hole"] < 100 and face[0]["hole_pixels"] > 0
    # worst.png: original | masked | ours | telea for the one face
    assert read_image(tmp_path / "report" / "worst.png").shape[1] > 4 * 128
    assert "PSNR-hole" in summary.report() and "reached" in summary.report()


def test_each_face_is_blended_once_in_its_photo(completer, monkeypatch):
    """The search pastes G(z) into a photo's face crop without blending it: the face is
    Poisson-blended once, at the photo's size, and its crop is what came out in the photo."""
    calls = []
    blend = completer.blender

    def counting(*args, **kwargs):
        calls.append(1)
        return blend(*args, **kwargs)

    monkeypatch.setattr(completer, "blender", counting)
    photo = astronaut_photo()
    repair = repair_photo(photo, damage(photo.shape[:2]), completer, rng=0)
    assert len(repair.faces) == 1 and calls == []
    face = repair.faces[0]
    assert np.array_equal(face.completed, warp_affine(repair.repaired, face.transform,
                                                      completer.size))


def test_a_damaged_face_hog_misses_is_repaired_by_the_model(tiny_model_dir, tmp_path):
    """The middle of a face painted out: dlib's HOG detector no longer finds it on the photo
    filled by Telea (how photos were searched before), the damage-tolerant finder does, and
    the model repairs it; the summary says how it was found."""
    from PIL import Image

    from dcgan_complete.align import FaceAligner
    from dcgan_complete.classical import telea_fill
    from dcgan_complete.images import samples_dir

    sample = read_image(samples_dir() / "obama_official_portrait.png")
    photo = np.asarray(Image.fromarray(sample).resize((192, 192), Image.BICUBIC))
    [box] = FaceAligner().face_boxes(photo, 1)
    left, top, right, bottom = box.left(), box.top(), box.right(), box.bottom()
    w, h = right - left, bottom - top
    mask = np.full(photo.shape[:2], 255, np.uint8)
    mask[top + h // 4:top + 3 * h // 4, left + w // 4:left + 3 * w // 4] = 0
    assert FaceAligner().face_boxes(telea_fill(photo, mask > 0), 1) == []  # the old way
    write_image(tmp_path / "photo.png", photo)
    write_image(tmp_path / "hole.png", mask)
    result = run(*complete_args(tiny_model_dir, tmp_path / "photo.png", "--mask",
                                tmp_path / "hole.png", "--out", tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "1 face(s) found, 1 repaired" in result.output
    assert re.search(r"face at \(-?\d+, -?\d+\)-\(\d+, \d+\): the model \(found by CNN near the "
                     r"hole, aligned on (visible )?landmarks\)", result.output), result.output
    repaired = read_image(tmp_path / "out" / "photo.png")
    assert np.array_equal(repaired[mask > 0], photo[mask > 0])


def test_the_per_face_report_names_a_face_left_to_telea_and_why(tiny_model_dir, tmp_path):
    """A hole over nearly the whole face: the damaged photo shows no face to find, so Telea
    fills it, and per_face.csv says so, for that face."""
    from dcgan_complete.evaluate import evaluate_photos

    write_image(tmp_path / "raw" / "face.png", astronaut_photo())
    summary = evaluate_photos(tmp_path / "raw", checkpoint_dir=tiny_model_dir,
                              methods=["ours", "telea"], out_dir=tmp_path / "report",
                              options=CompleteOptions(iterations=2, init="random"),
                              mask_options=MaskOptions(center_scale=0.02), progress=False)
    [ours] = [r for r in summary.per_face if r["method"] == "ours"]
    assert (ours["repaired_by"], ours["why"]) == ("telea", "not found in the damaged photo")
    assert summary.rows[0]["reached"] == 0.0
    text = (tmp_path / "report" / "per_face.csv").read_text()
    assert "telea,not found in the damaged photo" in text


def test_a_12_megapixel_photo_goes_through_the_pipeline(tiny_model_dir, tmp_path):
    """4000 x 3000 with one face: found at the working scale, repaired at the photo's own size,
    every pixel outside the hole kept."""
    from PIL import Image

    big = np.asarray(Image.fromarray(astronaut_photo()).resize((3000, 3000), Image.BILINEAR))
    photo = np.zeros((3000, 4000, 3), np.uint8)
    photo[:, 500:3500] = big
    write_image(tmp_path / "big.png", photo)
    result = run(*complete_args(tiny_model_dir, tmp_path / "big.png", "--mask", "center",
                                "--out", tmp_path / "out", "--no-grain"))
    assert result.exit_code == 0, result.output
    assert "big.png (4000x3000): 1 face(s) found, 1 repaired" in result.output
    repaired = read_image(tmp_path / "out" / "big.png")
    masked = read_image(tmp_path / "out" / "big.masked.png")
    assert repaired.shape == photo.shape
    known = ~np.all(masked == 128, axis=2) | np.all(photo == 128, axis=2)
    assert np.array_equal(repaired[known], photo[known])
    assert not np.array_equal(repaired, photo)


def test_refine_aligns_a_damaged_face_again_on_its_first_repair(completer):
    """With refine, a face fitted to the landmarks outside its hole gets a new frame from its
    first repair and is searched again; pixels outside the hole stay the photo's."""
    from PIL import Image

    from dcgan_complete.align import ALIGNED_BY_VISIBLE
    from dcgan_complete.images import samples_dir

    sample = read_image(samples_dir() / "obama_official_portrait.png")
    photo = np.asarray(Image.fromarray(sample).resize((192, 192), Image.BICUBIC))
    from dcgan_complete.align import FaceAligner

    [box] = FaceAligner().face_boxes(photo, 1)
    w, h = box.right() - box.left(), box.bottom() - box.top()
    known = np.ones(photo.shape[:2], np.float32)
    top, left = box.top(), box.left()
    known[top + h // 4:top + 3 * h // 4, left + w // 4:left + 3 * w // 4] = 0
    first = repair_photo(photo, known, completer, PhotoOptions(grain=False), rng=0)
    again = repair_photo(photo, known, completer, PhotoOptions(grain=False, refine=True), rng=0)
    assert [f.frame.aligned_by for f in first.faces] == [ALIGNED_BY_VISIBLE]
    assert not np.allclose(first.faces[0].transform, again.faces[0].transform)
    assert np.array_equal(again.repaired[known > 0], photo[known > 0])
