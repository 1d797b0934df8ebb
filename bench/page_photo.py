"""What a 12-megapixel photo costs the page: its server's peak memory and the wall time of each
step, as a browser would ask for them.

    python bench/page_photo.py PHOTO [--variants 3] [--checkpoint-dir DIR]

Starts ``dcgan-complete serve`` (the bundled model and detector unless told otherwise) as a
process, enlarges PHOTO to 12 megapixels (a JPEG, as a camera gives it), and through the page's
API (``gradio_client``): looks for damage (``/find_damage``, as an upload does), then completes
with a stroke across the middle of the photo and the center hole in every face's frame, with
one fill and with ``--variants``.  Prints each step's wall time, the server's memory (VmRSS)
after it and its peak (VmHWM), and the size of the pictures the browser is sent against the
downloads.  Give a photo with faces
(``raw_photos/with_faces/facerec_examples_knn_examples_test_obama_and_biden.jpg`` of
``../shared/data``).
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TWELVE_MEGAPIXELS = 12e6


def memory_mb(pid):
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split()[:2]
                values[key[:-1]] = int(value) / 1024
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--checkpoint-dir")
    args = parser.parse_args()
    from gradio_client import Client, handle_file
    from PIL import Image

    from dcgan_complete.images import read_image

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = Image.open(args.photo).convert("RGB")
        scale = (TWELVE_MEGAPIXELS / (photo.width * photo.height)) ** 0.5
        photo = photo.resize((round(photo.width * scale), round(photo.height * scale)),
                             Image.LANCZOS)
        photo.save(tmp / "photo.jpg", quality=92)
        w, h = photo.size
        stroke = np.zeros((h, w, 4), np.uint8)
        stroke[h // 2 - 20:h // 2 + 20, w // 4:3 * w // 4] = (0, 0, 0, 255)
        Image.fromarray(stroke, "RGBA").save(tmp / "stroke.png")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        command = [sys.executable, "-m", "dcgan_complete", "serve", "--port", str(port)]
        if args.checkpoint_dir:
            command += ["--checkpoint-dir", args.checkpoint_dir]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        try:
            for line in server.stdout:
                if line.startswith("serving on"):
                    break
            else:
                sys.exit("the server did not start")
            print(f"photo: {w}x{h} ({w * h / 1e6:.1f} MP, "
                  f"{(tmp / 'photo.jpg').stat().st_size / 1e6:.1f} MB JPEG); server after "
                  f"start: {memory_mb(server.pid)['VmRSS']:.0f} MB")
            client = Client(f"http://127.0.0.1:{port}/", verbose=False,
                            download_files=str(tmp / "d"))
            editor = {"background": handle_file(str(tmp / "photo.jpg")), "layers": [],
                      "composite": None, "id": None}
            tic = time.perf_counter()
            _, status, _ = client.predict(editor, 0.5, api_name="/find_damage")
            print(f"find damage: {time.perf_counter() - tic:.1f} s; {status.splitlines()[0]}; "
                  f"server {memory_mb(server.pid)}")
            editor["layers"] = [handle_file(str(tmp / "stroke.png"))]
            for variants in (1, args.variants):
                tic = time.perf_counter()
                out = client.predict(editor, "center", 50, 0.1, 1, "0", "momentum",
                                     variants, api_name="/complete")
                seconds = time.perf_counter() - tic
                status, downloads, compare = out[0], out[4], out[6]
                shown = read_image(compare[1]).shape
                full = read_image(downloads[0]).shape
                print(f"complete, {variants} fill(s): {seconds:.1f} s; "
                      f"{status.splitlines()[0]}; shown {shown[1]}x{shown[0]}, downloaded "
                      f"{full[1]}x{full[0]}; server {memory_mb(server.pid)}")
            client.close()
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
