"""Several devices and several machines: the ``tf.distribute`` strategy of a run, and who writes.

``distribute`` (the ``--distribute`` option) picks one:

- ``none``: one device, TensorFlow's default strategy.
- ``mirrored``: ``MirroredStrategy``, one replica per local GPU, or per device of ``devices``
  (``"GPU:0,GPU:1"``; ``CPU:N`` splits the CPU into logical devices, which shares its cores and
  is only good for trying things out).
- ``multiworker``: ``MultiWorkerMirroredStrategy`` across the machines that the standard
  ``TF_CONFIG`` variable lists (every local GPU of each, or its CPU).
- ``auto``: ``mirrored`` on a machine with several GPUs, else ``none``.

Every replica computes its slice of the global batch; gradients and (with synchronized batch
norm) batch statistics are summed across all of them, so that every replica holds the same
weights after every step.  One worker is the *chief* (TF_CONFIG's ``chief`` task, else
``worker`` 0): only it writes files, and the others take the state it resumed from
(:meth:`Cluster.from_chief`).  A worker that dies makes the collective operations of the others
fail within seconds (TensorFlow's coordination service stops getting its heartbeats);
:func:`lost_worker` turns that error into one line.  TensorFlow cannot carry on without it:
restarting every worker resumes from the last checkpoint.

Example
-------
>>> cluster = start("mirrored", "GPU:0,GPU:1")  # doctest: +SKIP
>>> cluster.replicas, cluster.is_chief  # doctest: +SKIP
(2, True)
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np

from dcgan_complete.errors import DcganError, OptionError, signal_handlers
from dcgan_complete.options import parse_devices

# How long the workers of a multi-worker run wait for each other to start, in seconds.
WORKER_START_TIMEOUT = 600

_WORKER_JOBS = ("chief", "worker")


@dataclasses.dataclass
class Cluster:
    """The strategy of a run and this process's part in it."""

    strategy: object
    kind: str = "none"     # none, mirrored or multiworker
    workers: int = 1
    task: str = ""         # TF_CONFIG's task of this process ("worker 1"), "" on one machine
    is_chief: bool = True  # whether this process writes checkpoints, samples and logs

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync

    def describe(self):
        """One line for the start of a run, as ``mirrored over CPU:0, CPU:1 (2 replicas)``."""
        if self.kind == "none":
            return "one device"
        if self.kind == "mirrored":
            devices = ", ".join(d.rsplit("device:", 1)[-1] for d in
                                self.strategy.extended.worker_devices)
            return f"mirrored over {devices} ({self.replicas} replicas)"
        role = "the chief: it writes the checkpoints, samples and logs" if self.is_chief else \
            "not the chief: the chief writes the checkpoints, samples and logs"
        return (f"multiworker: {self.workers} workers, {self.replicas} replicas; this is "
                f"{self.task}, {role}")

    def from_chief(self, arrays):
        """The chief's values of ``arrays`` (numpy arrays of the same shapes and dtypes on
        every worker), on every worker.  With one worker: ``arrays`` themselves."""
        if self.workers == 1:
            return [np.asarray(a) for a in arrays]
        arrays = [np.asarray(a) for a in arrays]
        out = [None] * len(arrays)
        # one all-reduce per dtype group: float32 weights as they are, the rest (counters) as
        # float64, which holds every integer up to 2**53 exactly
        groups = {}
        for i, a in enumerate(arrays):
            groups.setdefault(np.float32 if a.dtype == np.float32 else np.float64, []).append(i)
        for dtype, members in groups.items():
            flat = np.concatenate([arrays[i].astype(dtype).ravel() for i in members])
            summed = self._sum_over_workers(flat if self.is_chief else np.zeros_like(flat))
            offset = 0
            for i in members:
                size = arrays[i].size
                out[i] = summed[offset:offset + size].reshape(arrays[i].shape).astype(
                    arrays[i].dtype)
                offset += size
        return out

    def agree(self, what, value):
        """Raise the same DcganError on every worker unless all have the same ``value`` (text)
        as the chief; ``what`` names it in the message (``"options"``)."""
        if self.workers == 1:
            return
        digest = int.from_bytes(hashlib.sha256(value.encode()).digest()[:6], "big")
        chief = self.from_chief([np.array([digest], np.float64)])[0][0]
        differ = int(self._sum_over_workers(np.array([float(chief != digest)]))[0])
        if differ:
            raise DcganError(f"the {what} of {differ} worker(s) differ from the chief's: run "
                             "the same command, on the same data, on every machine")

    def barrier(self):
        """Return once every worker has called it (the others wait for the chief's writes)."""
        if self.workers > 1:
            self._sum_over_workers(np.zeros(1, np.float32))

    def _sum_over_workers(self, vector):
        """The sum of ``vector`` over the workers, each counted once (not once per replica)."""
        import tensorflow as tf

        counted = []

        def value(context):
            first = not counted  # the first local replica carries this worker's vector
            counted.append(context.replica_id_in_sync_group)
            return tf.constant(vector if first else np.zeros_like(vector))

        per_replica = self.strategy.experimental_distribute_values_from_function(value)
        try:
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica,
                                        axis=None).numpy()
        except tf.errors.OpError as exc:
            lost = lost_worker(exc, self)
            if lost is None:
                raise
            raise DcganError(f"{lost}: the run stops") from None


def start(distribute="none", devices=None):
    """The :class:`Cluster` of ``distribute`` (see the module's description).

    Call it before anything else runs on TensorFlow: logical CPU devices and the multi-worker
    runtime can only be set up before TensorFlow starts.

    Raises
    ------
    OptionError
        Naming ``distribute`` (no TF_CONFIG) or ``devices`` (a device this machine lacks).
    DcganError
        If TF_CONFIG does not describe a cluster this process is part of.
    """
    import tensorflow as tf

    if distribute == "auto":
        distribute = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "none"
    if distribute == "none":
        return Cluster(tf.distribute.get_strategy())
    if distribute == "mirrored":
        names = parse_devices(devices) if devices else None
        if names:
            _check_devices(names)
        return Cluster(tf.distribute.MirroredStrategy(names), kind="mirrored")
    if distribute == "multiworker":
        task_type, index, workers, is_chief = read_tf_config()
        message = (f"the {workers} workers of TF_CONFIG did not all start within "
                   f"{WORKER_START_TIMEOUT} s (this is {task_type} {index}): run the same "
                   "command on every machine it lists")
        # Ctrl-C and SIGTERM end the process at once while the workers gather: a Python handler
        # would only run once TensorFlow's wait returns, and there is nothing to save yet
        with _deadline(WORKER_START_TIMEOUT, message), signal_handlers(signal.SIG_DFL):
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            cluster = Cluster(strategy, "multiworker", workers, f"{task_type} {index}", is_chief)
            cluster.barrier()
        return cluster
    raise OptionError("distribute", f"{{distribute}} must be none, auto, mirrored or "
                                    f"multiworker, not {distribute!r}")


def read_tf_config(environ=os.environ):
    """``(task type, task index, number of workers, whether this task is the chief)`` from
    the ``TF_CONFIG`` variable.

    Example
    -------
    >>> read_tf_config({"TF_CONFIG": '{"cluster": {"worker": ["a:2222", "b:2222"]}, '
    ...                               '"task": {"type": "worker", "index": 1}}'})
    ('worker', 1, 2, False)
    """
    text = environ.get("TF_CONFIG")
    if not text:
        raise OptionError("distribute", "{distribute} multiworker needs the TF_CONFIG "
                                        "environment variable: the addresses of all workers and "
                                        "this one's task (see the README)")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        task_type, index = str(task["type"]), task["index"]
        sizes = {job: len(cluster[job]) for job in cluster}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DcganError(f"TF_CONFIG is not a cluster description ({exc.__class__.__name__}: "
                         f"{exc}); see the README for an example") from None
    if isinstance(index, str) and index.strip().isdigit():
        index = int(index)
    if isinstance(index, bool) or not isinstance(index, int):
        raise DcganError(f"TF_CONFIG's task index must be a whole number, not {index!r}")
    others = sorted(set(sizes) - set(_WORKER_JOBS))
    if others:
        raise DcganError(f"TF_CONFIG lists {', '.join(others)} tasks: multi-worker training "
                         "uses chief and worker tasks only")
    if task_type not in sizes or not 0 <= index < sizes[task_type]:
        raise DcganError(f"TF_CONFIG's task ({task_type} {index}) is not one of its cluster's")
    if sizes.get("chief", 0) > 1:
        raise DcganError("TF_CONFIG lists more than one chief")
    is_chief = task_type == "chief" or (task_type == "worker" and index == 0
                                        and not sizes.get("chief"))
    return task_type, index, sum(sizes.values()), is_chief


# What a collective operation raises when another worker is gone.
def _lost_errors():
    import tensorflow as tf

    return (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
            tf.errors.DeadlineExceededError, tf.errors.InternalError)


def lost_worker(error, cluster: Cluster):
    """One line on the worker that ``error`` says is gone (``worker 1 stopped answering (...)``),
    or None if ``error`` is something else."""
    if cluster.workers == 1 or not isinstance(error, _lost_errors()):
        return None
    text = str(error)
    task = re.search(r"/job:(\w+)/replica:\d+/task:(\d+)", text)
    who = f"{task.group(1)} {task.group(2)}" if task else "another worker"
    if "heartbeat" in text:
        why = "it stopped sending heartbeats"
    elif "Connection reset" in text or "Socket closed" in text or "failed to connect" in text:
        why = "its connection closed"
    else:
        why = next((line.strip() for line in text.splitlines() if line.strip()), "")[:160]
    return f"{who} stopped answering ({why})"


def _check_devices(names):
    """Refuse devices this machine lacks; make the logical CPUs that ``CPU:N`` names."""
    import tensorflow as tf

    gpus = [n for n in names if n.startswith("GPU")]
    have = len(tf.config.list_physical_devices("GPU"))
    missing = [n for n in gpus if int(n.split(":")[1]) >= have]
    if missing:
        has = f"{have} GPU(s)" if have else "no GPU"
        raise OptionError("devices", f"{{devices}} names {', '.join(missing)}, but this machine "
                                     f"has {has}")
    cpus = [int(n.split(":")[1]) for n in names if n.startswith("CPU")]
    if not cpus or max(cpus) == 0:
        return
    wanted = max(cpus) + 1
    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu)
    if configured is not None and len(configured) >= wanted:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * wanted)
    except RuntimeError:  # TensorFlow has started: its devices are what they are
        if len(tf.config.list_logical_devices("CPU")) < wanted:
            raise OptionError("devices", f"{{devices}} names CPU:{wanted - 1}, but TensorFlow "
                                         "started with fewer CPU devices (logical ones can only "
                                         "be made before it starts)") from None


# The watchdog of :func:`_deadline`: a process of its own, which ends with its parent.
_WATCHDOG = """
import os, signal, sys, time
parent, deadline, message = int(sys.argv[1]), time.time() + float(sys.argv[2]), sys.argv[3]
while time.time() < deadline:
    time.sleep(0.5)
    if os.getppid() != parent:
        sys.exit()
print("Error: " + message, file=sys.stderr, flush=True)
os.kill(parent, signal.SIGKILL)
"""


@contextlib.contextmanager
def _deadline(seconds, message):
    """Within the block, end this process after ``seconds`` with ``Error: message`` (status
    137: SIGKILL).

    TensorFlow waits for the other workers inside a C++ call that holds the GIL, so no thread
    or signal handler of this process runs until it returns, and it handles SIGTERM itself
    meanwhile: a small watchdog process prints the line and kills it.
    """
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()),
                                 str(seconds), message], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        watchdog.kill()
        watchdog.wait()


