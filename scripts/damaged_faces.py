"""How many damaged faces are found and how well they are aligned: align.find_damaged_faces
against the photo pipeline's old way (dlib's HOG on the photo with its hole filled by Telea).

    .venv/bin/python scripts/damaged_faces.py [RAW_DIR] [--kinds middle,eyes,crack,large]
        [--lfw 0] [--no-faces]

RAW_DIR defaults to ../shared/data/raw_photos/with_faces next to the repository.  Every face that
dlib's HOG detector finds in an undamaged photo (upsample 1) gets a hole of each kind, all faces
of a photo at once, and the hole's pixels are painted gray so that nothing under it can be seen:

- ``middle``: the middle half of the face's box (eyes, nose, mouth);
- ``eyes``: a band over both eyes, a little wider than the box;
- ``crack``: a jagged line across the face, 12% of the box's width thick;
- ``large``: the middle three quarters of the box (most faces can then not be aligned).

A face is *reached* when a box found on the damaged photo matches its clean box (IoU >= 0.5)
and has a frame.  The frame error is the mean distance, in pixels of a 64 px crop, between the
crop's four corners and centre carried back into the photo by the clean frame (``align``'s,
from the undamaged photo) and forward again by the frame found on the damaged photo.  "Before
the fit" is ``align``'s three-landmark frame from the landmarks on the Telea fill, in the same box.

``--lfw N`` adds N LFW photos (first photo of the odd-numbered people after the first 600: none
was used for the shape model or the CNN box calibration of scripts/face_shape.py).
``--no-faces`` also counts faces found in ../shared/data/raw_photos/no_faces with holes in them.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dcgan_complete import align  # noqa: E402
from dcgan_complete.classical import telea_fill  # noqa: E402
from dcgan_complete.images import find_images, read_image  # noqa: E402

KINDS = ("middle", "eyes", "crack", "large")
SIZE = 64
MATCH_IOU = 0.5
# Boxes dlib finds that are not faces: (photo name, a point inside the box).
NOT_FACES = {"skimage_astronaut.png": (170, 380)}  # the mission patch on her suit


def hole_for(box, kind, shape, rng):
    """The hole of ``kind`` over a face's box, as a bool (H, W) array."""
    import cv2

    left, top, right, bottom = box
    w, h = right - left, bottom - top
    hole = np.zeros(shape[:2], bool)
    if kind == "middle":
        hole[max(top + h // 4, 0):top + 3 * h // 4, max(left + w // 4, 0):left + 3 * w // 4] = 1
    elif kind == "eyes":
        hole[max(int(top + 0.18 * h), 0):int(top + 0.48 * h),
             max(int(left - 0.05 * w), 0):int(right + 0.05 * w)] = True
    elif kind == "large":
        hole[max(top + h // 8, 0):top + 7 * h // 8, max(left + w // 8, 0):left + 7 * w // 8] = 1
    elif kind == "crack":
        drawn = np.zeros(shape[:2], np.uint8)
        y0, y1 = top + rng.uniform(0, 0.4) * h, bottom - rng.uniform(0, 0.4) * h
        if rng.random() < 0.5:
            y0, y1 = y1, y0
        xs = np.linspace(left - 0.1 * w, right + 0.1 * w, 6)
        ys = np.linspace(y0, y1, 6) + rng.normal(0, 0.06 * h, 6)
        points = np.stack([xs, ys], axis=1).round().astype(np.int32)
        cv2.polylines(drawn, [points], False, 1, thickness=max(2, int(round(0.12 * w))))
        hole = drawn > 0
    else:
        raise ValueError(kind)
    return hole


def frame_error(clean, found, size=SIZE):
    """Mean distance (crop pixels) of the crop's corners and centre between two frames."""
    last = size - 1
    crop = np.array([[0, 0], [last, 0], [0, last], [last, last], [last / 2, last / 2]], float)
    back = np.linalg.inv(np.vstack([clean, [0, 0, 1]]))[:2]
    photo = np.hstack([crop, np.ones((5, 1))]) @ back.T
    again = np.hstack([photo, np.ones((5, 1))]) @ np.asarray(found).T
    return float(np.linalg.norm(again - crop, axis=1).mean())


def three_point_frame(landmarks):
    indices = list(align.INNER_EYES_AND_BOTTOM_LIP)
    return align.affine_from_points(landmarks[indices], align.template_points(indices, SIZE))


def clean_faces(aligner, photo, name):
    """(box, clean frame) of every face HOG finds at upsample 1, less known non-faces."""
    faces = []
    for box in aligner.face_boxes(photo, 1):
        box = align._box_tuple(box)
        x, y = NOT_FACES.get(name, (-1, -1))
        if box[0] <= x <= box[2] and box[1] <= y <= box[3]:
            continue
        landmarks = aligner.landmarks(photo, box)
        try:
            faces.append((box, three_point_frame(landmarks)))
        except ValueError:
            pass
    return faces


def lfw_photos(lfw_dir, count):
    people = sorted(p for p in Path(lfw_dir).iterdir() if p.is_dir())[1::2][600:]
    photos = []
    for person in people:
        files = sorted(person.glob("*.jpg"))
        if files:
            photos.append(files[0])
        if len(photos) == count:
            break
    return photos


def measure(aligner, sources, kind, seed=0):
    rng = np.random.default_rng(seed)
    rows, times, old_times, false_found = [], [], [], 0
    cpu = []
    for path in sources:
        photo = read_image(path)
        faces = clean_faces(aligner, photo, path.name)
        if not faces:
            continue
        hole = np.zeros(photo.shape[:2], bool)
        for box, _ in faces:
            hole |= hole_for(box, kind, photo.shape, rng)
        damaged = photo.copy()
        damaged[hole] = 128
        known = ~hole
        tic = time.perf_counter()
        filled = telea_fill(damaged, known)
        telea_seconds = time.perf_counter() - tic
        old_boxes = [align._box_tuple(b) for b in aligner.face_boxes(filled, "auto")]
        old_times.append(time.perf_counter() - tic)
        tic, cpu_tic = time.perf_counter(), time.process_time()
        found = align.find_damaged_faces(damaged, known, SIZE, filled=filled, aligner=aligner)
        times.append(time.perf_counter() - tic + telea_seconds)
        cpu.append(time.process_time() - cpu_tic)
        matched = set()
        for box, clean in faces:
            row = {"photo": path.name, "width": box[2] - box[0], "old": False, "found": False,
                   "aligned": False, "reason": "", "by": "", "error": np.nan,
                   "error_before": np.nan, "error_old": np.nan, "error_perfect_fill": np.nan}
            old = [b for b in old_boxes if align.box_iou(box, b) >= MATCH_IOU]
            if old:
                row["old"] = True
                row["error_old"] = frame_error(clean, three_point_frame(
                    aligner.landmarks(filled, old[0])))
            best = max(found, key=lambda f: align.box_iou(box, f.box), default=None)
            if best is not None and align.box_iou(box, best.box) >= MATCH_IOU:
                matched.add(id(best))
                row.update(found=True, aligned=best.aligned, reason=best.reason or "",
                           by=best.found_by)
                row["error_before"] = frame_error(clean, three_point_frame(best.landmarks))
                if best.aligned:
                    row["error"] = frame_error(clean, best.transform)
                    row["how"] = best.aligned_by
                    # The same fit on landmarks found with the undamaged face in the hole: the
                    # best that refining the frame on a completion can do.
                    perfect = align.align_face(aligner, photo, known, best.box, SIZE)
                    if perfect.aligned:
                        row["error_perfect_fill"] = frame_error(clean, perfect.transform)
            rows.append(row)
        false_found += sum(1 for f in found if id(f) not in matched
                           and all(align.box_iou(f.box, b) < 0.3 for b, _ in faces))
    return rows, times, old_times, false_found, cpu


def report(kind, rows, times, old_times, false_found, cpu):
    def share(key, subset):
        return f"{sum(r[key] for r in subset)}/{len(subset)}"

    def errors(key, subset):
        values = np.array([r[key] for r in subset if np.isfinite(r[key])])
        if not len(values):
            return "-"
        return f"{values.mean():.2f} (median {np.median(values):.2f}, p90 " \
               f"{np.percentile(values, 90):.2f}, n {len(values)})"

    large = [r for r in rows if r["width"] >= 80]
    reached = [r for r in rows if r["aligned"]]
    print(f"== {kind}: {len(rows)} faces in {len(times)} photos ({len(large)} of >= 80 px)")
    print(f"  reached, old (HOG on Telea):        {share('old', rows):>8}   >= 80 px: "
          f"{share('old', large)}")
    print(f"  found, new:                         {share('found', rows):>8}   >= 80 px: "
          f"{share('found', large)}")
    print(f"  reached (found and aligned), new:   {share('aligned', rows):>8}   >= 80 px: "
          f"{share('aligned', large)}")
    reasons = {}
    for r in rows:
        if r["found"] and not r["aligned"]:
            key = r["reason"].split("(")[0].strip()
            reasons[key] = reasons.get(key, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"    not aligned, with the reason: {count} x {reason}")
    by = {}
    for r in rows:
        if r["found"]:
            by[r["by"]] = by.get(r["by"], 0) + 1
    print(f"  found by: {by};  boxes matching no face: {false_found}")
    print(f"  frame error, crop px, reached faces: after the fit {errors('error', reached)}")
    print(f"                                   before the fit {errors('error_before', reached)}")
    print(f"             refitted on the undamaged pixels {errors('error_perfect_fill', reached)}")
    print(f"  frame error of the old pipeline on the faces it reached: "
          f"{errors('error_old', rows)}")
    fitted = [r for r in reached if r.get("how") == align.ALIGNED_BY_VISIBLE]
    print(f"  of those fitted to the visible landmarks ({len(fitted)}): after "
          f"{errors('error', fitted)}, before {errors('error_before', fitted)}")
    print(f"  time per photo: new {np.mean(times):.2f} s (median {np.median(times):.2f}, max "
          f"{np.max(times):.2f}), old {np.mean(old_times):.2f} s; Telea fill counted in both")
    print(f"  CPU time of find_damaged_faces alone: {np.mean(cpu):.2f} s a photo (median "
          f"{np.median(cpu):.2f}, max {np.max(cpu):.2f})")


def no_faces(aligner, folder, seed=0):
    """Faces found in photos without faces, each with three random rectangular holes."""
    rng = np.random.default_rng(seed)
    found, count = 0, 0
    for path in find_images(folder):
        photo = read_image(path)
        h, w = photo.shape[:2]
        known = np.ones((h, w), bool)
        for _ in range(3):
            side = int(rng.uniform(0.1, 0.3) * min(h, w))
            y, x = rng.integers(0, h - side), rng.integers(0, w - side)
            known[y:y + side, x:x + side] = False
        photo = photo.copy()
        photo[~known] = 128
        faces = align.find_damaged_faces(photo, known, SIZE, aligner=aligner)
        found += len(faces)
        count += 1
        for f in faces:
            print(f"    {path.name}: {f.box} {f.found_by} {f.aligned_by or f.reason}")
    print(f"== no faces: {found} faces found in {count} photos with three holes each")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = REPO.parent / "shared" / "data" / "raw_photos" / "with_faces"
    parser.add_argument("raw_dir", nargs="?", default=default, type=Path)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--lfw", type=int, default=0)
    parser.add_argument("--no-faces", action="store_true")
    args = parser.parse_args()
    aligner = align.FaceAligner()
    sources = find_images(args.raw_dir)
    if args.lfw:
        sources += lfw_photos(REPO.parent / "shared" / "data" / "lfw", args.lfw)
    for kind in args.kinds.split(","):
        report(kind, *measure(aligner, sources, kind))
    if args.no_faces:
        no_faces(aligner, args.raw_dir.parent / "no_faces")


if __name__ == "__main__":
    main()
