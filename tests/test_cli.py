import subprocess
import sys

from click.testing import CliRunner

from dcgan_complete import __version__
from dcgan_complete.cli import main


def test_help_does_not_import_tensorflow_and_is_fast():
    code = ("import sys, time; t = time.perf_counter(); from dcgan_complete.cli import main\n"
            "for args in (['--help'], ['train', '--help']):\n"
            "    try: main(args)\n"
            "    except SystemExit: pass\n"
            "print('TF' if 'tensorflow' in sys.modules else 'noTF', time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "Usage:" in out and "--g-steps" in out
    flag, seconds = out.split()[-2:]
    assert flag == "noTF"
    assert float(seconds) < 2.0  # generous here; the benchmark target is 0.5 s


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_bad_dataset_is_one_line_not_a_traceback(tmp_path):
    result = CliRunner().invoke(main, ["train", "--dataset", str(tmp_path / "missing"),
                                       "--checkpoint-dir", str(tmp_path / "ck")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: dataset folder {tmp_path / 'missing'} does not exist"]


def test_train_through_the_cli(tiny_dataset, tmp_path):
    ckpt = tmp_path / "ck"
    result = CliRunner().invoke(main, [
        "train", "--dataset", str(tiny_dataset), "--image-size", "16", "--z-dim", "8",
        "--gf-dim", "8", "--df-dim", "8", "--batch-size", "8", "--max-steps", "3",
        "--checkpoint-dir", str(ckpt), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "trained to step 3" in result.output
    assert (ckpt / "generator.weights.h5").is_file() and (ckpt / "samples").is_dir()
