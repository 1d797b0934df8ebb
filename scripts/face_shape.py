"""Build ``dcgan_complete/weights/face_shape.npz``: the 68-point face shape in the aligned frame.

    .venv/bin/python scripts/face_shape.py [LFW_DIR] [--faces 2600] [--modes 16] [--cnn 250]

LFW_DIR defaults to ../shared/data/lfw next to the repository.  The first photo of every second
person (people sorted by name) is used; a photo counts when dlib's HOG detector finds exactly
one face in it at upsample 0.  For each face, the 68 landmarks are carried into the unit aligned
frame by ``align``'s own affine (the three landmarks of INNER_EYES_AND_BOTTOM_LIP sent onto
:data:`~dcgan_complete.align.TEMPLATE`), so the mean shape agrees with the template exactly at
those three points and the shape model describes the crops the model is trained on.

Written (float32):

- ``mean`` (68, 2): the mean shape, ``(x, y)`` as fractions of the crop's side;
- ``modes`` (K, 68, 2) and ``variances`` (K,): the principal modes of the shapes around it;
- ``box`` (4,): where dlib's HOG box falls in the frame on average, ``(left, top, right,
  bottom)``;
- ``faces``: how many faces were used.

With ``--cnn N`` it also prints, for N other LFW faces, how dlib's CNN detector's box relates to
the HOG box of the same face (the constants of ``align.CNN_TO_HOG_BOX``).
"""
import argparse
import io
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dcgan_complete import align, files  # noqa: E402
from dcgan_complete.images import read_image  # noqa: E402

OUT = REPO / "dcgan_complete" / "weights" / align.SHAPE_FILE


def _first_photos(lfw_dir, every, offset):
    people = sorted(p for p in Path(lfw_dir).iterdir() if p.is_dir())
    for person in people[offset::every]:
        photos = sorted(person.glob("*.jpg"))
        if photos:
            yield photos[0]


def _one_face(aligner, image):
    boxes = aligner.face_boxes(image, 0)
    return boxes[0] if len(boxes) == 1 else None


def build(lfw_dir, faces, modes):
    aligner = align.FaceAligner()
    anchors = list(align.INNER_EYES_AND_BOTTOM_LIP)
    unit = align.template_points(anchors, 1.0)
    shapes, boxes = [], []
    for path in _first_photos(lfw_dir, 2, 0):
        image = read_image(path)
        box = _one_face(aligner, image)
        if box is None:
            continue
        landmarks = aligner.landmarks(image, box)
        frame = align.affine_from_points(landmarks[anchors], unit)
        shapes.append(np.hstack([landmarks, np.ones((68, 1))]) @ frame.T)
        corners = np.array([[box.left(), box.top(), 1.0], [box.right(), box.bottom(), 1.0]])
        boxes.append((corners @ frame.T).ravel())
        if len(shapes) == faces:
            break
    shapes = np.array(shapes)
    mean = shapes.mean(axis=0)
    centred = (shapes - mean).reshape(len(shapes), -1)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variances = singular[:modes] ** 2 / (len(shapes) - 1)
    explained = variances.sum() / (singular ** 2 / (len(shapes) - 1)).sum()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, mean=mean.astype(np.float32),
                        modes=vt[:modes].reshape(modes, 68, 2).astype(np.float32),
                        variances=variances.astype(np.float32),
                        box=np.mean(boxes, axis=0).astype(np.float32),
                        faces=np.int64(len(shapes)))
    files.write_bytes(OUT, buffer.getvalue())
    print(f"{files.display_name(OUT)}: {len(shapes)} faces, {modes} modes explain "
          f"{100 * explained:.1f}% of the shape variance")


def cnn_offsets(lfw_dir, count):
    """Median CNN -> HOG box relation on ``count`` faces not used for the shape."""
    aligner = align.FaceAligner()
    found = []
    for path in _first_photos(lfw_dir, 2, 1):
        image = read_image(path)
        box = _one_face(aligner, image)
        if box is None:
            continue
        hog = np.array([box.left(), box.top(), box.right(), box.bottom()], float)
        for cnn, _ in aligner.cnn_face_boxes(image, calibrated=False):
            if align.box_iou(hog, cnn) > 0.3:
                found.append((hog, np.asarray(cnn, float)))
                break
        if len(found) == count:
            break
    best = None
    for scale in np.arange(0.95, 1.25, 0.01):
        for dx in np.arange(-0.05, 0.06, 0.01):
            for dy in np.arange(-0.02, 0.15, 0.01):
                overlaps = [align.box_iou(h, align._move_box(c, (scale, dx, dy))) for h, c in found]
                if best is None or np.mean(overlaps) > best[0]:
                    best = (np.mean(overlaps), scale, dx, dy)
    print(f"CNN -> HOG box on {len(found)} faces: scale {best[1]:.2f}, dx {best[2]:.2f}, "
          f"dy {best[3]:.2f} (of the CNN box's side); mean IoU {best[0]:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lfw_dir", nargs="?", default=REPO.parent / "shared" / "data" / "lfw")
    parser.add_argument("--faces", type=int, default=2600)
    parser.add_argument("--modes", type=int, default=16)
    parser.add_argument("--cnn", type=int, default=0)
    args = parser.parse_args()
    build(args.lfw_dir, args.faces, args.modes)
    if args.cnn:
        cnn_offsets(args.lfw_dir, args.cnn)


if __name__ == "__main__":
    main()
