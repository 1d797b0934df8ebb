"""Faces found and aligned in photos with a hole (align.find_damaged_faces), on real faces.

Two photos, both shipped: scikit-image's astronaut (a 256 px crop of the photo, her face 89 px)
and the demo's Obama sample (data/samples, 64 px) enlarged three times, his face filling it.  The
holes are those of scripts/damaged_faces.py: the middle half of the face's box, and a band over
the eyes.  In both cases below dlib's HOG detector no longer finds the face once the hole is
filled by Telea, which is how photos were searched before.
"""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from dcgan_complete import align
from dcgan_complete.classical import telea_fill
from dcgan_complete.images import read_image

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
SIZE = 64
# The frame found on the damaged photo is within this many crop pixels of the frame found on the
# undamaged photo (mean over the crop's corners and centre).
FRAME_TOLERANCE = 2.5


def astronaut():
    """256 x 256 from scikit-image's astronaut, one face (HOG box (76, 56, 165, 146))."""
    return np.ascontiguousarray(data.astronaut()[20:276, 100:356])


def obama():
    """The Obama sample enlarged to 192 x 192: his face fills the photo."""
    sample = read_image(SAMPLES / "obama_official_portrait.png")
    return np.asarray(Image.fromarray(sample).resize((192, 192), Image.BICUBIC))


def middle_hole(box, shape):
    """The middle half of the box: eyes, nose and mouth."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    hole = np.zeros(shape[:2], bool)
    hole[max(top + h // 4, 0):top + 3 * h // 4, max(left + w // 4, 0):left + 3 * w // 4] = True
    return hole


def eyes_hole(box, shape):
    """A band over both eyes, a little wider than the box."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    hole = np.zeros(shape[:2], bool)
    hole[int(top + 0.18 * h):int(top + 0.48 * h),
         max(int(left - 0.05 * w), 0):int(right + 0.05 * w)] = True
    return hole


CASES = {"obama, middle": (obama, middle_hole), "astronaut, eyes": (astronaut, eyes_hole)}


@pytest.fixture(scope="module")
def aligner():
    return align._load_aligner(align.default_predictor_path())


def _three_point_frame(landmarks):
    indices = list(align.INNER_EYES_AND_BOTTOM_LIP)
    return align.affine_from_points(landmarks[indices], align.template_points(indices, SIZE))


def frame_error(clean, found):
    """Mean distance in crop pixels between where two frames put the crop's corners and centre."""
    last = SIZE - 1
    crop = np.array([[0, 0], [last, 0], [0, last], [last, last], [last / 2, last / 2]], float)
    back = np.linalg.inv(np.vstack([clean, [0, 0, 1]]))[:2]
    photo = np.hstack([crop, np.ones((5, 1))]) @ back.T
    again = np.hstack([photo, np.ones((5, 1))]) @ found.T
    return float(np.linalg.norm(again - crop, axis=1).mean())


@pytest.fixture(scope="module", params=list(CASES))
def damaged(request, aligner):
    """(photo, damaged photo, known, clean box, clean frame, faces found on the damaged photo)."""
    make_photo, make_hole = CASES[request.param]
    photo = make_photo()
    [box] = [align._box_tuple(b) for b in aligner.face_boxes(photo, 1)]
    clean = _three_point_frame(aligner.landmarks(photo, box))
    hole = make_hole(box, photo.shape)
    broken = photo.copy()
    broken[hole] = 128
    faces = align.find_damaged_faces(broken, ~hole, SIZE, aligner=aligner)
    return photo, broken, ~hole, box, clean, faces


def _match(faces, box):
    return [f for f in faces if align.box_iou(f.box, box) >= 0.5]


def test_hog_on_the_telea_fill_misses_the_damaged_face(aligner, damaged):
    # How photos were searched before: the reason this module exists.
    _, broken, known, box, _, _ = damaged
    boxes = aligner.face_boxes(telea_fill(broken, known), "auto")
    assert all(align.box_iou(b, box) < 0.5 for b in boxes)


def test_the_damaged_face_is_found_near_the_hole_and_aligned(damaged):
    _, _, _, box, _, faces = damaged
    [face] = _match(faces, box)
    assert face.found_by == align.FOUND_BY_CNN_NEAR_HOLE
    assert face.aligned and face.reason is None
    assert face.aligned_by == align.ALIGNED_BY_VISIBLE
    assert 8 <= face.visible.sum() < 68 and face.hole_share > 0.1
    assert len(faces) == 1  # nothing else taken for a face


def test_the_frame_is_near_the_undamaged_photos_frame(damaged):
    _, _, _, box, clean, faces = damaged
    [face] = _match(faces, box)
    assert frame_error(clean, face.transform) < FRAME_TOLERANCE
    # the crop it gives is the crop of the same face
    crop = align.warp_affine(damaged[0], face.transform, SIZE)
    reference = align.warp_affine(damaged[0], clean, SIZE)
    assert np.abs(crop.astype(int) - reference).mean() < 20


def test_three_landmarks_guessed_in_the_hole_give_a_worse_frame(aligner):
    # The astronaut with the band over her eyes: align's own three landmarks, found on the Telea
    # fill in the same box, put the frame beyond the tolerance; the visible landmarks do not.
    photo = astronaut()
    [box] = [align._box_tuple(b) for b in aligner.face_boxes(photo, 1)]
    clean = _three_point_frame(aligner.landmarks(photo, box))
    hole = eyes_hole(box, photo.shape)
    filled = telea_fill(photo, ~hole)
    guessed = _three_point_frame(aligner.landmarks(filled, box))
    fitted = align.align_face(aligner, filled, ~hole, box, SIZE)
    assert frame_error(clean, guessed) > FRAME_TOLERANCE
    assert frame_error(clean, fitted.transform) < FRAME_TOLERANCE


def test_what_the_hole_holds_is_never_looked_at(aligner, damaged):
    # The original face under the hole (a measurement's setting) changes nothing.
    photo, broken, known, _, _, faces = damaged
    again = align.find_damaged_faces(photo, known, SIZE, aligner=aligner)
    assert [f.box for f in again] == [f.box for f in faces]
    for a, b in zip(again, faces):
        np.testing.assert_array_equal(a.transform, b.transform)


def test_an_undamaged_photo_gives_aligns_faces_and_frames(aligner):
    photo = astronaut()
    [face] = align.find_damaged_faces(photo, np.ones(photo.shape[:2], bool), SIZE,
                                      aligner=aligner)
    [box] = aligner.face_boxes(photo)
    assert face.box == align._box_tuple(box)
    assert (face.found_by, face.aligned_by, face.reason) == (align.FOUND_BY_HOG,
                                                             align.ALIGNED_BY_LANDMARKS, None)
    assert face.visible.all() and face.hole_share == 0
    np.testing.assert_allclose(face.transform, _three_point_frame(aligner.landmarks(photo, box)))
    np.testing.assert_array_equal(align.warp_affine(photo, face.transform, SIZE),
                                  aligner.align(photo, box, SIZE))


@pytest.mark.parametrize("hole, reason", [
    (np.s_[46:156, 66:175], "the hole covers 68 of its 68 landmarks, too many to align it"),
    (np.s_[41:161, 102:175], "the hole leaves only one side of the face"),
])
def test_a_face_that_cannot_be_aligned_comes_back_with_the_reason(aligner, hole, reason):
    # The face is still seen in the fill the caller passes (the photo itself here, as a
    # completion would show it), but nearly all of it is in the hole.
    photo = astronaut()
    known = np.ones(photo.shape[:2], bool)
    known[hole] = False
    [face] = align.find_damaged_faces(photo, known, SIZE, filled=photo, aligner=aligner)
    assert face.transform is None and not face.aligned and face.aligned_by is None
    assert face.reason.startswith(reason)
    assert face.hole_share > 0.6


def test_no_face_in_a_photo_without_one_even_with_holes(aligner):
    photo = data.chelsea()
    known = np.ones(photo.shape[:2], bool)
    known[60:160, 120:220] = False
    known[200:260, 300:400] = False
    assert align.find_damaged_faces(photo, known, SIZE, aligner=aligner) == []


def suited_astronaut():
    """The astronaut enlarged 2.4 times (a scan's scale), her face and the mission patch on her
    suit, and a crack-like hole along the top of the patch, as the damage detector found there:
    (photo, known, her face's box, the patch's box)."""
    import cv2

    big = cv2.resize(data.astronaut(), None, fx=2.4, fy=2.4, interpolation=cv2.INTER_CUBIC)
    photo = np.ascontiguousarray(big[150:1100, 250:700])
    known = np.ones(photo.shape[:2], np.uint8)
    arc = np.array([(372, 858), (390, 842), (420, 838), (450, 846), (470, 862), (480, 885),
                    (484, 905)]) - [250, 150]
    cv2.polylines(known, [arc.astype(np.int32)], False, 0, 16)
    return photo, known > 0, (185, 42, 400, 257), (55, 656, 261, 869)


def test_a_pattern_near_a_hole_is_not_taken_for_a_face(aligner):
    # HOG, looking hard around the hole (upsampled, threshold 0), took the mission patch for a
    # face (score 0.07), and the model would have painted a face there.
    photo, known, face, patch = suited_astronaut()
    faces = align.find_damaged_faces(photo, known, SIZE, aligner=aligner)
    assert [f for f in faces if align.box_iou(f.box, patch) > 0.1] == []
    [found] = _match(faces, face)
    assert found.found_by == align.FOUND_BY_HOG and found.aligned


def test_a_face_found_near_the_hole_keeps_its_score_and_fit(damaged):
    # The detector's confidence and how well the visible landmarks fit a face: what the bars for
    # faces found near a hole look at.
    _, _, _, box, _, faces = damaged
    [face] = _match(faces, box)
    assert face.score > 0 and face.hole_share >= align.NEAR_HOLE_SHARE
    assert 0 <= face.fit_residual <= align.MAX_FIT_RESIDUAL


def test_find_damaged_faces_checks_its_input(aligner):
    photo = astronaut()
    with pytest.raises(ValueError, match="mask has shape"):
        align.find_damaged_faces(photo, np.ones((10, 10), bool), SIZE, aligner=aligner)
    assert align.find_damaged_faces(photo, np.zeros(photo.shape[:2]), SIZE,
                                    aligner=aligner) == []


# ------------------------------------------------------------------------------- the frame fit
def test_fit_frame_recovers_a_transform_from_part_of_the_shape():
    # The mean shape, rotated, scaled and moved into a photo; only the jaw and brows seen.
    mean = align.face_shape()["mean"]
    angle, scale, shift = 0.3, 140.0, np.array([300.0, 200.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    photo_points = scale * mean @ rotation.T + shift
    visible = np.zeros(68, bool)
    visible[:27] = True
    transform, residual, shape = align.fit_frame(photo_points, visible, SIZE)
    mapped = np.hstack([photo_points, np.ones((68, 1))]) @ transform.T
    np.testing.assert_allclose(mapped, SIZE * mean, atol=1e-6)  # the hidden points too
    np.testing.assert_allclose(shape, SIZE * mean, atol=1e-6)
    assert residual < 1e-6


def test_fit_frame_places_the_template_landmarks_like_align():
    mean = align.face_shape()["mean"]
    indices = list(align.INNER_EYES_AND_BOTTOM_LIP)
    np.testing.assert_allclose(mean[indices], align.template_points(indices, 1.0), atol=1e-5)


def test_fit_frame_refuses_too_few_or_collinear_points():
    points = align.face_shape()["mean"] * 100
    visible = np.zeros(68, bool)
    visible[:2] = True
    with pytest.raises(ValueError, match="at least three"):
        align.fit_frame(points, visible, SIZE)
    line = np.stack([np.arange(68.0), np.arange(68.0)], axis=1)
    with pytest.raises(ValueError, match="one line"):
        align.fit_frame(line, np.ones(68, bool), SIZE)


def test_cnn_boxes_are_moved_where_hog_puts_its_box(aligner):
    photo = astronaut()
    [hog] = aligner.face_boxes(photo, 1)  # HOG's box sizes come in steps: one step differs
    [(moved, confidence)] = aligner.cnn_face_boxes(photo)
    [(raw, _)] = aligner.cnn_face_boxes(photo, calibrated=False)
    assert confidence > 0
    assert align.box_iou(hog, moved) > 0.75
    assert align.box_iou(hog, moved) > align.box_iou(hog, raw) + 0.05


def test_thin_parts_of_a_hole_are_not_searched_for_a_face():
    """A crack or scratch (here 5 px wide) hides no face once Telea has filled it: the search
    near the hole skips parts thinner than MIN_HOLE_THICKNESS; a blob as long is searched."""
    hole = np.zeros((300, 400), bool)
    hole[50:55, 20:380] = True                  # a long scratch, 5 px wide
    hole[150:190, 100:300] = True               # a band 40 px thick
    parts = align._hole_parts(hole, [])
    assert parts == [(150, 190, 100, 300)]
    hole[50:62, 20:380] = True                  # the scratch widened to 12 px: it could hide one
    assert len(align._hole_parts(hole, [])) == 2


def test_only_deep_parts_of_a_hole_are_looked_at_again(aligner, monkeypatch):
    """Where the first look near a part of the hole finds no face, the slower looks (blurred,
    closer) follow only for a part at least LOOK_AGAIN_DEPTH deep: a date stamp or a speck of
    dust (here a band 12 px wide) hides no face the first look would miss."""
    y, x = np.mgrid[0:300, 0:400]
    photo = np.stack([60 + x // 4, 80 + y // 4, 120 + 0 * x], axis=-1).astype(np.uint8)
    looked = []
    search = align._search_part

    def spy(aligner, filled, known, part, looks):
        looked.append((part, len(looks)))
        return search(aligner, filled, known, part, looks)

    monkeypatch.setattr(align, "_search_part", spy)
    hole = np.zeros(photo.shape[:2], bool)
    hole[40:52, 20:200] = True                  # 12 px wide: 6 px deep
    hole[150:230, 220:330] = True               # 80 px wide: 40 px deep
    assert align.find_damaged_faces(photo, ~hole, SIZE, aligner=aligner) == []
    first = len(align.HOLE_LOOKS[:1])
    assert sorted(looked) == sorted([((40, 52, 20, 200), first), ((150, 230, 220, 330), first),
                                     ((150, 230, 220, 330), len(align.HOLE_LOOKS) - first)])
