import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from dcgan_complete.cli import main
from dcgan_complete.demo import DEMO_MASKS, run_demo
from dcgan_complete.images import samples_dir
from dcgan_complete.options import CompleteOptions
from dcgan_complete.images import read_image


def test_sample_faces_ship_with_their_sources():
    samples = samples_dir()
    faces = sorted(samples.glob("*.png"))
    assert len(faces) >= 4
    readme = (samples / "README.rst").read_text()
    for face in faces:
        assert read_image(face).shape == (64, 64, 3)
        assert face.name in readme  # every sample has its source and licence


def test_demo_end_to_end_with_few_iterations(tiny_model_dir, tmp_path):
    summary = run_demo(tmp_path, checkpoint_dir=tiny_model_dir,
                       options=CompleteOptions(iterations=20, out_interval=10, seed=0),
                       progress=False)
    n = len(list(samples_dir().glob("*.png")))
    grid = read_image(summary)
    # one row per face, 1 + 2 * 4 columns of 16 px tiles with 2 px padding
    assert grid.shape[:2] == (n * 18 + 2, (1 + 2 * len(DEMO_MASKS)) * 18 + 2)
    for kind in DEMO_MASKS:
        assert len(list((tmp_path / kind).glob("*.gif"))) == n
        assert len([p for p in (tmp_path / kind).glob("*.png")
                    if p.name.count(".") == 1 and p.name != "summary.png"]) == n


def test_demo_cli_says_where_results_are(tiny_model_dir, tmp_path):
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "d"), "--iterations", "5",
                                       "--checkpoint-dir", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "d" / "summary.png") in result.output


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not (ROOT / "setup.py").is_file(), reason="needs a source checkout")
def test_wheel_carries_sample_faces_and_weights(tmp_path):
    # build from a copy: a stale build/ in the checkout could hide a missing file
    src = tmp_path / "src"
    shutil.copytree(ROOT / "dcgan_complete", src / "dcgan_complete",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data" / "samples", src / "data" / "samples")
    for name in ("setup.py", "setup.cfg", "MANIFEST.in", "README.rst"):
        shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(src)], check=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    samples = ROOT / "data" / "samples"
    for sample in sorted(samples.glob("*.png")) + [samples / "README.rst"]:
        assert f"dcgan_complete/samples/{sample.name}" in names
    for weight in (ROOT / "dcgan_complete" / "weights").iterdir():
        assert f"dcgan_complete/weights/{weight.name}" in names
