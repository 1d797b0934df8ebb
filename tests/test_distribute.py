"""Several devices and several machines: mirrored replicas, workers on 127.0.0.1, shards.

Logical CPU devices can only be made before TensorFlow starts, and a multi-worker run takes over
its process's runtime, so the TensorFlow side of these tests runs in fresh processes: the
two-device checks are this file run as a script (``python tests/test_distribute.py two-devices
...``, which prints a JSON report), the workers are the real command line.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dcgan_complete.complete import complete_files
from dcgan_complete.outputs import select_shard
from dcgan_complete.errors import OptionError
from dcgan_complete.images import write_image
from dcgan_complete.model import auto_precision
from dcgan_complete.options import BulkOptions, CompleteOptions
from dcgan_complete.train import list_checkpoints, restore_checkpoint

from conftest import TINY, make_faces

HERE = Path(__file__).resolve()
# One mirrored step against one step on one device, in float32: what summing in another order
# may change.  Without synchronized batch norm the losses differ by ~1e-2 and the weights by
# ~4e-4 (measured), so this tolerance would catch it.
TOLERANCE = 1e-5
WORKER_TIMEOUT = 120  # seconds a multi-worker test may take before it counts as hung


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


# ------------------------------------------------------------------------ two logical CPUs
@pytest.fixture(scope="module")
def two_devices(tiny_dataset, tiny_model_dir, tmp_path_factory):
    """The JSON report of :func:`_two_devices_report`, run in a fresh process."""
    work = tmp_path_factory.mktemp("two_devices")
    proc = subprocess.run([sys.executable, str(HERE), "two-devices", str(tiny_dataset),
                           str(tiny_model_dir), str(work)], env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_one_mirrored_step_equals_one_step_on_one_device(two_devices):
    report = two_devices["one_step"]
    assert report["replicas"] == 2
    for name, (mirrored, single) in report["losses"].items():
        assert mirrored == pytest.approx(single, abs=TOLERANCE), name
    # every variable: both networks, batch-norm statistics, both Adam states
    assert report["variables"] > 40
    assert report["max_difference"] < TOLERANCE, report["worst"]
    assert report["changed"] > 1e-4  # the step did move the weights


def test_a_two_replica_run_resumes_on_one_device(two_devices):
    report = two_devices["resume"]
    assert report["mirrored_steps"] == 2
    assert report["resumed_at"] == 2 and report["restored_equal"]
    assert report["final_step"] == 3
    assert report["complete_loads_it"]


def test_mirrored_completion_gives_the_results_of_one_device(two_devices):
    report = two_devices["complete"]
    assert report["split_batches"] >= 2  # the batches really were split between the devices
    assert report["z_difference"] < 1e-5 and report["loss_difference"] < 1e-4
    assert report["pixel_difference"] <= 1


def _two_devices_report(dataset, model_dir, work):
    """Run in a fresh process: 2 logical CPU devices, mirrored against one device."""
    from dcgan_complete import distribute, masks
    from dcgan_complete.model import load_models
    from dcgan_complete.search import Completer
    from dcgan_complete.train import GAN, Trainer, TrainOptions

    cluster = distribute.start("mirrored", "CPU:0,CPU:1")  # first: makes the logical devices
    work = Path(work)

    def trainer(folder, steps, **kw):
        options = TrainOptions(**TINY, max_steps=steps, checkpoint_dir=str(work / folder),
                               sample_every=1000, checkpoint_every=1000, seed=3,
                               precision="float32", progress=False, **kw)
        return Trainer(dataset, options)

    mirrored = trainer("mirrored", 1, distribute="mirrored", devices="CPU:0,CPU:1")
    first = mirrored.fit()
    single = trainer("single", 1)
    second = single.fit()
    a = np.load(list_checkpoints(work / "mirrored")[-1][1])
    b = np.load(list_checkpoints(work / "single")[-1][1])
    names = [k for k in a.files if k != "meta"]
    differences = {k: float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in names}
    start = GAN(mirrored.options.model_config, seed=3, precision="float32")
    report = {"one_step": {
        "replicas": mirrored.cluster.replicas,
        "losses": {k: (first.history[0][k], second.history[0][k]) for k in first.history[0]},
        "variables": len(names), "max_difference": max(differences.values()),
        "worst": max(differences, key=differences.get),
        "changed": max(float(np.abs(a[k] - v.numpy()).max())
                       for k, v in start.variables().items() if k.startswith(("g/", "d/")))}}

    # the 2-replica run goes on to step 2, then resumes on one device
    steps = trainer("mirrored", 2, distribute="mirrored", devices="CPU:0,CPU:1").fit().step
    resumed = trainer("mirrored", 3)
    saved = np.load(list_checkpoints(work / "mirrored")[-1][1])
    equal = all(np.array_equal(saved[k], v.numpy()) for k, v in resumed.gan.variables().items())
    report["resume"] = {"mirrored_steps": steps, "resumed_at": resumed.step,
                        "restored_equal": equal, "final_step": resumed.fit().step,
                        "complete_loads_it": load_models(work / "mirrored")[0].z_dim == 8}

    # completion: the batch split between the two devices, against one device
    options = CompleteOptions(iterations=30, out_interval=10, batch_size=5, restarts=2, seed=0,
                              init="random", precision="float32")
    one = Completer.from_checkpoint(model_dir, options)
    with cluster.strategy.scope():
        two = Completer.from_checkpoint(model_dir, options)
    two.split_across(cluster.strategy)
    split_batches = []
    run_chunk = two._run_chunk

    def counting_chunk(state, targets, n):  # traced once per replica and batch shape
        split_batches.append(int(state.z.shape[0] or 0))
        return run_chunk(state, targets, n)

    two._run_chunk = counting_chunk
    two.split_across(cluster.strategy)
    faces = make_faces(7, 16, seed=5)
    holes = [masks.make_mask("center", 16)] * len(faces)
    x, y = one.complete(faces, holes), two.complete(faces, holes)
    report["complete"] = {
        "split_batches": len(split_batches),
        "z_difference": float(np.abs(x.z - y.z).max()),
        "loss_difference": float(np.abs(x.loss - y.loss).max() / np.abs(x.loss).max()),
        "pixel_difference": int(np.abs(x.completed.astype(int) - y.completed).max())}
    return report


# ---------------------------------------------------------------------- workers on 127.0.0.1
def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(dataset, tmp_path, max_steps):
    """Two `train --distribute multiworker` processes, each with its own checkpoint folder."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    tiny = [arg for k, v in TINY.items() for arg in ("--" + k.replace("_", "-"), str(v))]
    procs = []
    for index in range(2):
        env = dict(_env(), TF_CONFIG=json.dumps({"cluster": cluster,
                                                 "task": {"type": "worker", "index": index}}))
        args = [sys.executable, "-m", "dcgan_complete", "train", "--dataset", str(dataset),
                *tiny, "--max-steps", str(max_steps), "--checkpoint-every", "1",
                "--sample-every", "2", "--seed", "1", "--threads", "1", "--precision",
                "float32", "--distribute", "multiworker",
                "--checkpoint-dir", str(tmp_path / f"worker{index}")]
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return procs


def _finish(procs, timeout=WORKER_TIMEOUT):
    """(status, stdout, stderr) of every process; kills them all if one hangs."""
    deadline = time.time() + timeout
    out = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=max(1, deadline - time.time()))
            out.append((proc.returncode, stdout, stderr))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        pytest.fail(f"a worker did not end within {timeout} s")
    return out


def test_two_workers_train_and_only_the_chief_writes(tiny_dataset, tmp_path):
    (status0, out0, err0), (status1, out1, err1) = _finish(
        _start_workers(tiny_dataset, tmp_path, max_steps=3))
    assert status0 == 0, err0[-3000:]
    assert status1 == 0, err1[-3000:]
    chief = tmp_path / "worker0"
    assert [step for step, _ in list_checkpoints(chief)] == [1, 2, 3]
    for name in ("config.json", "generator.weights.h5", "discriminator.weights.h5"):
        assert (chief / name).is_file()
    assert sorted(p.name for p in (chief / "samples").iterdir()) == \
        ["train_00000002.png", "train_00000003.png"]
    assert any((chief / "logs").iterdir())
    assert not (tmp_path / "worker1").exists()  # the other worker wrote nothing at all
    assert "2 workers, 2 replicas; this is worker 1, not the chief" in out1
    assert "done at step 3" in out1 and "trained to step 3" in out0


@pytest.mark.parametrize("victim", [1, 0], ids=["worker-dies", "chief-dies"])
def test_a_dead_worker_stops_the_other_with_one_line(tiny_dataset, tmp_path, victim):
    procs = _start_workers(tiny_dataset, tmp_path, max_steps=10 ** 6)
    try:
        deadline = time.time() + WORKER_TIMEOUT
        while not [s for s, _ in list_checkpoints(tmp_path / "worker0") if s >= 3]:
            assert time.time() < deadline and all(p.poll() is None for p in procs), \
                "the workers did not reach step 3"
            time.sleep(0.1)
        procs[victim].send_signal(signal.SIGKILL)
        killed = time.time()
        status, _, err = _finish([procs[1 - victim]])[0]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert time.time() - killed < 60
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, err[-3000:]
    assert re.match(rf"Error: worker {victim} stopped answering \(.+\) at step \d+: the run "
                    r"stops; start every worker again with the same command to resume from the "
                    r"chief's last checkpoint", errors[0]), errors[0]
    assert "Traceback" not in err
    survivor = tmp_path / "worker0"
    for step, path in list_checkpoints(survivor):  # what the chief wrote still loads
        assert restore_checkpoint(_tiny_gan(), path)[0] == step


def _tiny_gan():
    from dcgan_complete.model import ModelConfig
    from dcgan_complete.train import GAN

    return GAN(ModelConfig(**{k: TINY[k] for k in ("image_size", "z_dim", "gf_dim", "df_dim")}))


# ------------------------------------------------------------------------ per-worker input
def test_each_input_pipeline_takes_its_own_share_of_every_batch():
    import tensorflow as tf

    from dcgan_complete.data import make_dataset

    pool = np.arange(12, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)

    def first_batches(dataset, steps=3):
        return [(np.round((x.numpy()[:, 0, 0, 0] + 1) * 127.5).astype(int), z.numpy())
                for x, z in dataset.take(steps)]

    whole = first_batches(make_dataset(pool, list(range(12)), 4, 4, seed=7, z_dim=2))
    shares = [first_batches(make_dataset(pool, list(range(12)), 4, 4, seed=7, z_dim=2,
                                         input_context=tf.distribute.InputContext(2, k, 2)))
              for k in range(2)]
    for step, (images, z) in enumerate(whole):
        mine, theirs = shares[0][step], shares[1][step]
        assert len(mine[0]) == len(theirs[0]) == 2  # a replica's share of the batch of 4
        assert not set(mine[0]) & set(theirs[0])     # different images on every replica
        assert sorted(np.concatenate([mine[0], theirs[0]])) == sorted(images)
        # an image keeps its z whichever pipeline takes it
        together = {int(i): tuple(v) for part in (mine, theirs) for i, v in zip(*part)}
        assert together == {int(i): tuple(v) for i, v in zip(images, z)}


# ---------------------------------------------------------------------------------- shards
def test_three_shards_complete_every_input_exactly_once(tiny_model_dir, tmp_path):
    for i, face in enumerate(make_faces(10, 16, seed=4)):
        write_image(tmp_path / "in" / f"face{i}.png", face)
    inputs = sorted((tmp_path / "in").iterdir())[::-1]  # the order given does not matter
    options = CompleteOptions(iterations=2, out_interval=1, init="random", seed=0)
    completed = []
    for k in (1, 2, 3):
        summary = complete_files(inputs, out_dir=tmp_path / "out", checkpoint_dir=tiny_model_dir,
                                 options=options, progress=False,
                                 bulk=BulkOptions(shard=f"{k}/3"))
        completed.append(summary.completed)
    assert completed == [3, 3, 4]
    out = tmp_path / "out"
    names = [f"face{i}" for i in range(10)]
    assert sorted(p.name for p in out.glob("*.png") if p.name.count(".") == 1 and
                  not p.name.startswith("summary")) == sorted(f"{n}.png" for n in names)
    assert sorted(p.name for p in out.glob("summary*")) == \
        ["summary-1-of-3.png", "summary-2-of-3.png", "summary-3-of-3.png"]
    rows = [line.split(",")[0] for k in (1, 2, 3) for line in
            (out / f"losses-{k}-of-3.csv").read_text().splitlines()[1:]]
    assert sorted(set(rows)) == sorted(names)
    per_image = {n: rows.count(n) for n in names}
    assert set(per_image.values()) == {2}  # each image's 2 loss records, in one shard only
    assert not (out / "summary.png").exists() and not (out / "losses.csv").exists()


def test_shards_are_slices_of_the_sorted_inputs():
    paths = [f"{c}.png" for c in "jihgfedcba"]
    shards = [select_shard(paths, k, 4) for k in range(1, 5)]
    assert [len(s) for s in shards] == [2, 3, 2, 3]
    assert sum(shards, []) == sorted(paths)
    # more shards than inputs: some are empty
    assert [select_shard(paths[:2], k, 3) for k in (1, 2, 3)] == [[], ["i.png"], ["j.png"]]


def test_shards_refuse_inputs_whose_outputs_would_collide(tiny_model_dir, tmp_path):
    for folder in ("a", "b"):
        write_image(tmp_path / folder / "x.png", make_faces(1, 16)[0])
    with pytest.raises(OptionError, match=r"^with shard every input needs outputs of its own "
                                          r"name: rename .*b.x\.png"):
        complete_files([tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"],
                       out_dir=tmp_path / "out", checkpoint_dir=tiny_model_dir,
                       bulk=BulkOptions(shard="1/2"))
    assert not list((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------- precision
def test_auto_precision_picks_bfloat16_on_gpus_that_have_it():
    assert auto_precision([(8, 0)]) == "mixed_bfloat16"          # A100
    assert auto_precision([(9, 0), (8, 9)]) == "mixed_bfloat16"  # H100, L4
    assert auto_precision([(7, 5)]) == "float32"                 # T4: no bfloat16 tensor cores
    assert auto_precision([(8, 0), (7, 0)]) == "float32"         # one precision for all devices
    assert auto_precision([None]) == "float32"
    # without a GPU the CPU decides, whatever its flags
    assert auto_precision([], "fpu avx2 avx512_bf16") == "mixed_bfloat16"
    assert auto_precision([], "fpu avx2") == "float32"
    assert auto_precision([(7, 0)], "avx512_bf16") == "float32"


if __name__ == "__main__":
    if sys.argv[1] == "two-devices":
        print(json.dumps(_two_devices_report(*sys.argv[2:5])))


@pytest.mark.parametrize("index, reason", [(1.5, "whole number, not 1.5"),
                                           (True, "whole number, not True"),
                                           ("one", "whole number, not 'one'"),
                                           (2, r"task \(worker 2\) is not one of its")])
def test_a_task_index_that_names_no_worker_is_refused(index, reason):
    # int(1.5) would have quietly made this the second worker, running a step out of turn
    from dcgan_complete.distribute import read_tf_config
    from dcgan_complete.errors import DcganError
    config = {"cluster": {"worker": ["a:2222", "b:2222"]},
              "task": {"type": "worker", "index": index}}
    with pytest.raises(DcganError, match=reason):
        read_tf_config({"TF_CONFIG": json.dumps(config)})
    config["task"]["index"] = "1"      # as a shell script may write it
    assert read_tf_config({"TF_CONFIG": json.dumps(config)}) == ("worker", 1, 2, False)
