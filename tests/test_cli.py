import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
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


# ------------------------------------------------------------- every number option has bounds
def _fast_failing_args(command, tmp):
    """Arguments with which ``command`` fails at once, on a missing file, once its options pass:
    so a bad value that got through would show as another error, never as a run."""
    missing = str(tmp / "missing")
    out = str(tmp / "out")
    return {"train": ["--dataset", missing, "--checkpoint-dir", missing],
            "train-encoder": ["--checkpoint-dir", missing],
            "complete": [missing + ".png", "--checkpoint-dir", missing, "--out", out],
            "evaluate": [missing, "--checkpoint-dir", missing, "--out", out],
            "demo": ["--checkpoint-dir", missing, "--out", out],
            "serve": ["--checkpoint-dir", missing, "--port", "1"],
            "align": [missing, out],
            "detect": [missing + ".png", "--out", out],
            "train-detector": [missing, "--out", out]}[command]


def _options_of_type(kind):
    return [(name, max(param.opts, key=len), param)
            for name, command in sorted(main.commands.items()) for param in command.params
            if isinstance(param, click.Option) and isinstance(param.type, kind)]


FLOAT_OPTIONS = _options_of_type(click.types.FloatParamType)
INT_OPTIONS = _options_of_type(click.types.IntParamType)
# Counts that cost nothing up front however large (a long run stops on Ctrl-C), and the widths
# that are checked against the memory available instead of capped.
UNCAPPED_COUNTS = {"--epochs", "--max-steps", "--steps", "--sample-every", "--checkpoint-every",
                   "--keep", "--limit"}
MEMORY_CHECKED = {"--z-dim", "--gf-dim", "--df-dim", "--ef-dim"}


def _refused(args, flag):
    result = CliRunner().invoke(main, args)
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert result.exit_code in (1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert len(errors) == 1 and flag in errors[0], result.output
    return errors[0]


def test_every_command_s_numbers_are_found():
    """The tests below see every float and integer option (a sanity check of their lists)."""
    floats = {(c, f) for c, f, _ in FLOAT_OPTIONS}
    assert {("complete", "--lam"), ("train", "--lr"), ("train-encoder", "--z-weight"),
            ("serve", "--max-megapixels"), ("evaluate", "--anchor")} <= floats
    ints = {(c, f) for c, f, _ in INT_OPTIONS}
    assert {(c, "--seed") for c in ("train", "train-encoder", "complete", "evaluate", "demo",
                                    "serve")} <= ints
    assert {("align", "--size"), ("align", "--workers"), ("complete", "--threads")} <= ints


@pytest.mark.parametrize("command, flag", [(c, f) for c, f, _ in FLOAT_OPTIONS])
def test_every_float_option_refuses_what_is_not_a_finite_number_in_its_range(command, flag,
                                                                           tmp_path):
    """inf and nan anywhere, and 1e308, which float32 makes inf: one line naming the flag."""
    for value in ("inf", "-inf", "nan", "1e308"):
        _refused([command, *_fast_failing_args(command, tmp_path), flag, value], flag)


@pytest.mark.parametrize("command, flag", [(c, f) for c, f, p in INT_OPTIONS
                                           if f not in UNCAPPED_COUNTS])
def test_every_count_option_is_bounded(command, flag, tmp_path):
    """A count that sizes memory, processes or a seed has a stated cap (in options.py, shown by
    --help) or is checked against the memory available; a negative one is refused too."""
    param = next(p for c, f, p in INT_OPTIONS if (c, f) == (command, flag))
    assert isinstance(param.type, click.IntRange) and param.type.min is not None
    if flag in MEMORY_CHECKED:
        assert param.type.max is None
        line = _refused([command, *_fast_failing_args(command, tmp_path), flag, str(10 ** 7)],
                        flag)
        assert "GB of memory" in line
    else:
        assert param.type.max is not None, f"{command} {flag} has no cap"
        _refused([command, *_fast_failing_args(command, tmp_path), flag,
                  str(param.type.max + 1)], flag)
    _refused([command, *_fast_failing_args(command, tmp_path), flag, "-1"], flag)


def test_seeds_take_what_numpy_and_tensorflow_take_and_help_says_so():
    for command in ("train", "train-encoder", "complete", "evaluate", "demo", "serve"):
        result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
        assert re.search(r"--seed INTEGER RANGE .*0<=x<=4294967295", result.output), command


def test_click_choices_come_from_options():
    """Every click.Choice of the command line lists a constant of options.py, never a literal."""
    import ast

    from dcgan_complete import cli

    tree = ast.parse(Path(cli.__file__).read_text())
    choices = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and
               isinstance(node.func, ast.Attribute) and node.func.attr == "Choice"]
    assert choices
    for node in choices:
        assert isinstance(node.args[0], ast.Name), ast.unparse(node)
        assert hasattr(__import__("dcgan_complete.options", fromlist=["x"]), node.args[0].id)


def test_evaluate_and_demo_options_have_one_home(tiny_dataset, tmp_path):
    """The command line's defaults are the dataclasses', and the library takes the dataclasses."""
    from dcgan_complete.evaluate import evaluate
    from dcgan_complete.options import DemoOptions, EvaluateOptions

    defaults = {(c, p.name): p.default for c in ("evaluate", "demo")
                for p in main.commands[c].params}
    assert defaults[("evaluate", "seed")] == EvaluateOptions.seed == 0
    assert defaults[("demo", "seed")] == DemoOptions.seed == 0
    assert defaults[("evaluate", "limit")] is EvaluateOptions.limit is None
    summary = evaluate(tiny_dataset, evaluation=EvaluateOptions(
        masks=("random",), methods=("mean",), limit=2, seed=5), out_dir=tmp_path / "r",
        progress=False)
    assert summary.settings["seed"] == 5 and summary.images == 2
    again = evaluate(tiny_dataset, masks=("random",), methods=("mean",), limit=2, seed=5,
                     out_dir=tmp_path / "r2", progress=False)
    strip = [[{k: v for k, v in r.items() if k != "seconds"} for r in s.per_image]
             for s in (summary, again)]
    assert strip[0] == strip[1]
