"""Every option's one home: the settings of each stage as a dataclass, with its default, its
bounds and its check.  The command line takes its defaults, its choices and its ranges from here
and builds these objects before any work (and before TensorFlow is imported), so a bad value is
refused at once.

Every number has bounds: a float option must be finite (``inf`` and ``nan`` are refused) and,
where a larger value only overflows the float32 computation or means nothing, at most its
``MAX_*``; a seed lies in 0..2**32-1 (:data:`MAX_SEED`); a count that sizes memory or processes
(batch, restarts, threads, workers, crop size) has a stated cap.  What depends on the model as
well (the memory of a search's batch of starts) is checked against the memory available
(:func:`check_search_memory`, :func:`available_memory`).

Nothing here imports more than the standard library.  Errors are
:class:`~dcgan_complete.errors.OptionError` naming the field (``window``); the command line
shows its flag (``--window``) instead.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os

from dcgan_complete.errors import OptionError

# Output folders of the commands that write one.
COMPLETE_OUT = "out"
DETECT_OUT = "damage"
DETECTOR_OUT = "detector"
# `complete --mask auto`: the damage detector finds the mask (dcgan_complete.detector)
AUTO_MASK = "auto"
EVALUATE_OUT = "report"
DEMO_OUT = "demo-out"

PRECISIONS = ("float32", "mixed_bfloat16")
# what a run may ask for: "auto" picks one of PRECISIONS (dcgan_complete.model.resolve_precision)
PRECISION_CHOICES = ("auto",) + PRECISIONS
PRIORS = ("log1m", "nonsat")
INITS = ("encoder", "random")
# Search defaults that depend on where it starts.  From random points the search needs its
# 1000 iterations; from the encoder's guess far fewer, with smaller steps (README, "Speed").
START_DEFAULTS = {"encoder": {"iterations": 50, "lr": 0.003},
                  "random": {"iterations": 1000, "lr": 0.01}}
OPTIMIZERS = ("momentum", "adam")
BLENDS = ("poisson", "none")
CONTEXT_WEIGHT_KINDS = ("plain", "window")
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 128

# --- bounds (each is shown by --help, where click prints the range)
# numpy's legacy seeding (np.random.seed, which keras.utils.set_random_seed calls) takes
# 0..2**32-1, and so does every other seed here (numpy Generators, tf.random, tf.data).
MAX_SEED = 2 ** 32 - 1
# TensorFlow's thread pools (--threads) and align's processes (--workers): more than this only
# costs memory and switching.
MAX_THREADS = 1024
MAX_WORKERS = 256
# Images in one batch (train, train-encoder, complete) and starts per image (--restarts): the
# memory of a batch grows with both (complete checks batch x restarts against the memory
# available too, once it knows the model: check_search_memory).
MAX_BATCH_SIZE = 1024
MAX_RESTARTS = 100
# Fills to choose from per image (complete --variants): each beyond the first adds one start
# per image to the search, and --variants N writes N + 1 more images per input.
MAX_VARIANTS = 8
# Generator updates per discriminator update: the loop is unrolled into the compiled step.
MAX_G_STEPS = 10
# Search steps (--iterations, --out-interval): TensorFlow counts them in 64-bit integers; a
# billion steps take months.
MAX_ITERATIONS = 10 ** 9
# A window of 2 x side - 1 already covers the whole image from every pixel: every larger one gives
# the same weights, at a cost that grows with its area.
MAX_WINDOW = 2 * MAX_IMAGE_SIZE - 1
# Learning rates and step sizes: Adam moves every weight by about lr per step, and the search
# moves z, which lies in [-1, 1]; larger steps only jump from edge to edge.
MAX_LR = 1.0
# Loss weights (--lam, --anchor, --feature-weight, --z-weight): the losses are float32, and a
# weight this large already drowns every other term.
MAX_WEIGHT = 1e6
# Noise added to the encoder's guess for restarts: z lies in [-1, 1], a spread wider than that
# only piles the starts on its corners.
MAX_INIT_NOISE = 2.0
# How a run uses several devices or machines (dcgan_complete.distribute): training can span
# machines; completion shares its inputs between machines with shards instead.
TRAIN_DISTRIBUTE = ("none", "auto", "mirrored", "multiworker")
COMPLETE_DISTRIBUTE = ("none", "mirrored")


def image_sizes():
    """The image sizes a model can have: the powers of two from 16 to 128."""
    return [2 ** k for k in range(int(math.log2(MIN_IMAGE_SIZE)),
                                  int(math.log2(MAX_IMAGE_SIZE)) + 1)]


IMAGE_SIZES = tuple(str(size) for size in image_sizes())  # as the command line offers them


def _choice(name, value, allowed):
    if value not in allowed:
        raise OptionError(name, f"{{{name}}} must be one of {', '.join(map(str, allowed))}, "
                                f"not {value!r}")


def _at_least(obj, low, *names, high=None):
    """Each field of ``names`` is None or an integer in [low, high] (high None: no cap)."""
    for name in names:
        value = getattr(obj, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise OptionError(name, f"{{{name}}} must be an integer >= {low}, not {value!r}")
        if high is not None and value > high:
            raise OptionError(name, f"{{{name}}} must be at most {high}, not {value}")


def _seed(obj, name="seed"):
    """The field ``name`` is None or a seed every generator takes: 0..2**32-1."""
    value = getattr(obj, name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or
                              not 0 <= value <= MAX_SEED):
        raise OptionError(name, f"{{{name}}} must be an integer from 0 to {MAX_SEED} "
                                f"(2**32 - 1), not {value!r}")


def _number(value):
    """A bound as the messages show it: 1e+06, 0.5, 1."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _in_range(name, value, low, high, low_open=False, high_open=False):
    """``value`` is a finite real number between ``low`` and ``high`` (None: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionError(name, f"{{{name}}} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise OptionError(name, f"{{{name}}} must be a finite number, not {value}")
    ok = (value > low if low_open else value >= low) and \
        (high is None or (value < high if high_open else value <= high))
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open or high is None else "]"
        raise OptionError(name, f"{{{name}}} must be in {left}{_number(low)}, "
                                f"{'inf' if high is None else _number(high)}{right}, not {value}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the shapes of the networks' weights."""

    image_size: int = 64
    z_dim: int = 100
    gf_dim: int = 64
    df_dim: int = 64

    def __post_init__(self):
        if self.image_size not in image_sizes():
            raise OptionError("image_size", f"{{image_size}} must be a power of two from "
                                            f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}, not "
                                            f"{self.image_size!r}")
        _at_least(self, 1, "z_dim", "gf_dim", "df_dim")

    @property
    def n_up(self):
        """Number of stride-2 layers between 4x4 and the image size."""
        return int(math.log2(self.image_size)) - 2

    def _widths(self, base):
        # the hidden widths from the image side inwards, as dcgan_complete.model builds them
        return [base * min(2 ** i, 8) for i in range(self.n_up)]

    def feature_values(self):
        """Values in one image's feature maps, ``(generator, discriminator)``: the outputs of the
        dense and convolution layers alone, so a lower bound of what a pass keeps per image."""
        g = sum((4 * 2 ** i) ** 2 * width
                for i, width in enumerate(self._widths(self.gf_dim)[::-1]))
        d = sum((self.image_size // 2 ** (i + 1)) ** 2 * width
                for i, width in enumerate(self._widths(self.df_dim)))
        return g + self.image_size ** 2 * 3, d + 1

    def parameters(self):
        """Weights of the generator and the discriminator together (their kernels: the biases
        and batch norm add a fraction of a percent)."""
        g_widths = self._widths(self.gf_dim)[::-1] + [3]
        d_widths = [3] + self._widths(self.df_dim)
        g = self.z_dim * 16 * g_widths[0] + sum(25 * a * b for a, b in zip(g_widths, g_widths[1:]))
        d = sum(25 * a * b for a, b in zip(d_widths, d_widths[1:])) + 16 * d_widths[-1]
        return g + d

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclasses.dataclass
class TrainOptions:
    """Every option of ``dcgan-complete train`` except the dataset."""

    epochs: int = 25
    max_steps: int | None = None
    batch_size: int = 64
    image_size: int = 64
    z_dim: int = 100
    gf_dim: int = 64
    df_dim: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    g_steps: int = 2
    checkpoint_dir: str = "checkpoint"
    sample_dir: str | None = None
    log_dir: str | None = None
    sample_every: int = 100
    checkpoint_every: int = 500
    keep: int = 3
    seed: int | None = None
    precision: str = "auto"
    progress: bool = True
    distribute: str = "none"   # none, auto, mirrored (local devices), multiworker (TF_CONFIG)
    devices: str | None = None  # with mirrored: "GPU:0,GPU:1" [default: every local GPU]

    def __post_init__(self):
        _at_least(self, 1, "epochs", "max_steps", "sample_every", "checkpoint_every", "keep")
        _at_least(self, 1, "g_steps", high=MAX_G_STEPS)
        _at_least(self, 1, "batch_size", high=MAX_BATCH_SIZE)
        _seed(self)
        _in_range("lr", self.lr, 0, MAX_LR, low_open=True)
        # Adam divides by 1 - beta1**t: beta1 = 1 would divide by zero
        _in_range("beta1", self.beta1, 0, 1, high_open=True)
        _choice("precision", self.precision, PRECISION_CHOICES)
        _choice("distribute", self.distribute, TRAIN_DISTRIBUTE)
        self.devices = _check_devices(self.devices, self.distribute)
        config = self.model_config  # checks the architecture options
        # float32 weights, their gradients and Adam's two moments; every image's feature maps
        # through G, and through D for the real and the generated batch
        g, d = config.feature_values()
        value_bytes = 4 if self.precision == "float32" else 2
        _check_memory(16 * config.parameters() + self.batch_size * (g + 2 * d) * value_bytes,
                      ("batch_size", "gf_dim", "df_dim", "z_dim", "image_size"),
                      f"training a model of {{image_size}} {self.image_size}, {{z_dim}} "
                      f"{self.z_dim}, {{gf_dim}} {self.gf_dim} and {{df_dim}} {self.df_dim} on "
                      f"batches of {{batch_size}} {self.batch_size}",
                      "lower {batch_size}, {gf_dim} or {df_dim}")

    @property
    def model_config(self):
        return ModelConfig(image_size=self.image_size, z_dim=self.z_dim, gf_dim=self.gf_dim,
                           df_dim=self.df_dim)


@dataclasses.dataclass
class CompleteOptions:
    """The search and output settings of ``complete``, ``evaluate`` and ``demo``."""

    lam: float = 0.1
    prior: str = "log1m"
    context_weight: str = "window"  # +0.8 dB PSNR over plain on center holes (README)
    window: int = 7
    optimizer: str = "momentum"
    lr: float | None = None          # None: START_DEFAULTS for the start the search takes
    momentum: float = 0.9
    iterations: int | None = None    # None: START_DEFAULTS for the start the search takes
    restarts: int = 1
    out_interval: int = 50
    batch_size: int = 64
    tolerance: float | None = None
    blend: str = "poisson"
    seed: int | None = None
    precision: str = "auto"  # bf16 where the CPU has it: as good, 2x faster (README, "Speed")
    init: str = "encoder"  # where the search starts: the model's encoder (if it has one), random
    init_noise: float = 0.2  # restarts after the first start from the encoder's z plus this noise
    # a search from the encoder's guess E adds anchor * ||z - E||^2 to its loss: on 101
    # held-out faces this kept dlib's face in center/left fills the search otherwise lost (README)
    anchor: float = 10.0
    # fills per image from starts kept apart (Completer.complete): 1 = the usual best alone
    variants: int = 1

    def __post_init__(self):
        _choice("prior", self.prior, PRIORS)
        _choice("init", self.init, INITS)
        _in_range("init_noise", self.init_noise, 0, MAX_INIT_NOISE)
        _in_range("anchor", self.anchor, 0, MAX_WEIGHT)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("blend", self.blend, BLENDS)
        _choice("context_weight", self.context_weight, CONTEXT_WEIGHT_KINDS)
        _choice("precision", self.precision, PRECISION_CHOICES)
        _at_least(self, 1, "window", high=MAX_WINDOW)
        _at_least(self, 1, "iterations", "out_interval", high=MAX_ITERATIONS)
        _at_least(self, 1, "restarts", high=MAX_RESTARTS)
        _at_least(self, 1, "variants", high=MAX_VARIANTS)
        _at_least(self, 1, "batch_size", high=MAX_BATCH_SIZE)
        _seed(self)
        if self.window % 2 == 0:
            raise OptionError("window", f"{{window}} must be odd (a square centred on a pixel), "
                                        f"not {self.window}")
        _in_range("lam", self.lam, 0, MAX_WEIGHT)
        if self.lr is not None:
            _in_range("lr", self.lr, 0, MAX_LR, low_open=True)
        _in_range("momentum", self.momentum, 0, 1)
        if self.tolerance is not None:  # a share of the loss
            _in_range("tolerance", self.tolerance, 0, 1)

    def for_start(self, start):
        """These options with the defaults left open (None) filled in for ``start``."""
        return dataclasses.replace(self, **{k: v for k, v in START_DEFAULTS[start].items()
                                            if getattr(self, k) is None})


@dataclasses.dataclass
class MaskOptions:
    """The parameters of the built-in mask kinds that a user can set."""

    center_scale: float = 0.25  # center: share of the side kept on each edge
    fraction: float = 0.8       # random: share of the pixels missing

    def __post_init__(self):
        _in_range("center_scale", self.center_scale, 0, 0.5, high_open=True)
        _in_range("fraction", self.fraction, 0, 1)

    def params(self):
        """As keyword arguments of :func:`dcgan_complete.masks.make_mask`."""
        return {"scale": self.center_scale, "fraction": self.fraction}


def parse_devices(devices):
    """``"gpu:0, GPU:1"`` -> ``["GPU:0", "GPU:1"]``: device names as TensorFlow writes them.

    Raises
    ------
    ValueError
        For a name that is not ``CPU:N`` or ``GPU:N``, or one listed twice.
    """
    names = [d.strip().upper() for d in str(devices).split(",")]
    for name in names:
        kind, _, index = name.partition(":")
        if kind not in ("CPU", "GPU") or not index.isdigit():
            raise ValueError(f"{name!r} is not a device name like GPU:0 or CPU:0")
    if len(set(names)) != len(names):
        raise ValueError("a device is listed twice")
    return names


def _check_devices(devices, distribute):
    """``devices`` in its canonical spelling ("GPU:0,GPU:1"), after checking it."""
    if devices is None:
        return None
    if distribute != "mirrored":
        raise OptionError(("devices", "distribute"),
                          "{devices} needs {distribute} mirrored (it names the devices that "
                          f"share each batch), not {distribute!r}")
    try:
        return ",".join(parse_devices(devices))
    except ValueError as exc:
        raise OptionError("devices", f"{{devices}} must be a comma-separated list of devices "
                                     f"like GPU:0,GPU:1: {exc}") from None


def parse_shard(shard):
    """``"2/3"`` -> ``(2, 3)``: the second of three slices.

    Raises
    ------
    OptionError
        Naming ``shard``, unless it is K/N with 1 <= K <= N.
    """
    k, slash, n = str(shard).partition("/")
    if slash and k.strip().isdigit() and n.strip().isdigit() and 1 <= int(k) <= int(n):
        return int(k), int(n)
    raise OptionError("shard", f"{{shard}} must be K/N, the K-th of N slices of the inputs with "
                               f"1 <= K <= N (as 2/3), not {shard!r}")


@dataclasses.dataclass
class BulkOptions:
    """How ``complete`` shares a large job: ``shard`` "K/N" completes only the K-th of N
    slices of the inputs (by sorted path), so that N processes or machines can share one input
    list and one output folder; ``distribute`` "mirrored" splits every batch across the local
    GPUs (or ``devices``)."""

    shard: str | None = None
    distribute: str = "none"
    devices: str | None = None

    def __post_init__(self):
        if self.shard is not None:
            parse_shard(self.shard)
        _choice("distribute", self.distribute, COMPLETE_DISTRIBUTE)
        self.devices = _check_devices(self.devices, self.distribute)

    @property
    def shard_of(self):
        """``(K, N)``, or None without a shard."""
        return None if self.shard is None else parse_shard(self.shard)


# ------------------------------------------------------------------------------------- memory
def available_memory():
    """Bytes of memory this process can still take, or None where that cannot be told.

    The smaller of the system's available memory (``MemAvailable`` of ``/proc/meminfo``: free
    memory and the caches that can be dropped) and what a container's memory limit (cgroup v2 or
    v1) leaves of it.  None off Linux: no memory check is made there.
    """
    found = []
    try:
        with open("/proc/meminfo") as f:
            found += [int(line.split()[1]) * 1024 for line in f
                      if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    for folder, limit_name, usage_name, cache_name in (
            ("/sys/fs/cgroup", "memory.max", "memory.current", "inactive_file"),
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes",
             "total_inactive_file")):
        try:
            with open(os.path.join(folder, limit_name)) as f:
                limit = f.read().strip()
            with open(os.path.join(folder, usage_name)) as f:
                usage = int(f.read())
            with open(os.path.join(folder, "memory.stat")) as f:
                cache = sum(int(line.split()[1]) for line in f
                            if line.split()[0] == cache_name)
        except (OSError, ValueError, IndexError):
            continue
        if limit.isdigit() and int(limit) < 2 ** 60:  # "max" or a huge number: no limit
            found.append(max(0, int(limit) - usage + cache))
        break
    return min(found) if found else None


def _gigabytes(n):
    return f"{n / 1e9:,.1f} GB"


def _check_memory(need, options, what, advice):
    """Refuse (naming ``options``) when ``need`` bytes exceed the memory available."""
    have = available_memory()
    if have is not None and need > have:
        raise OptionError(options, f"{what} needs at least {_gigabytes(need)} of memory, and "
                                   f"{_gigabytes(have)} is available: {advice}")


def check_search_memory(options: CompleteOptions, images, bytes_per_start):
    """Refuse, before it starts, a search whose batch of starts cannot fit in memory.

    One batch searches ``restarts`` starts for each of up to ``batch_size`` images at once, and
    with ``variants`` V > 1 then V - 1 starts each, the other fills' (a batch of their own).

    Parameters
    ----------
    options : CompleteOptions
    images : int
        How many images are to be completed (a batch holds ``batch_size`` of them at most).
    bytes_per_start : int
        A lower bound of one start's memory (the feature maps of G and D); 0 checks nothing.

    Raises
    ------
    OptionError
        Naming ``batch_size`` and ``restarts`` (or ``variants``, when its batch is the larger),
        with the estimate and the memory available.
    """
    batch = min(images, options.batch_size)
    starts = batch * max(options.restarts, options.variants - 1)
    if options.variants - 1 > options.restarts:
        names, each = ("batch_size", "variants"), f"{{variants}} {options.variants} - 1"
        advice = "lower {batch_size} or {variants}"
    else:
        names, each = ("batch_size", "restarts"), f"{{restarts}} {options.restarts}"
        advice = "lower {batch_size} or {restarts}"
    _check_memory(starts * bytes_per_start, names,
                  f"searching {starts} starts at once ({each} for each of the {batch} image(s) "
                  f"of a batch, {{batch_size}} {options.batch_size})", advice)


def default(options_class, name):
    """The default of one field, for the command line's ``default=``."""
    return {f.name: f.default for f in dataclasses.fields(options_class)}[name]


ALIGN_LANDMARKS = ("inner-eyes-and-bottom-lip", "outer-eyes-and-nose")
ALIGN_BORDERS = ("reflect", "black")
# A crop's side: the largest model takes 128 px, and every crop is decoded for training.
MIN_ALIGN_SIZE, MAX_ALIGN_SIZE = 8, 1024
# How often a photo is doubled before dlib looks for faces ("auto": 1 only where 0 finds none);
# each doubling takes 4x the memory and time.  The command line offers UPSAMPLES.
MAX_UPSAMPLE = 2
UPSAMPLES = ("0", "1", "auto")


def _check_upsample(value):
    if value != "auto" and (isinstance(value, bool) or not isinstance(value, int) or
                            not 0 <= value <= MAX_UPSAMPLE):
        raise OptionError("upsample", f"{{upsample}} must be 'auto' or an integer from 0 to "
                                      f"{MAX_UPSAMPLE}, not {value!r}")


@dataclasses.dataclass
class AlignOptions:
    """Every option of ``dcgan-complete align`` (see :func:`dcgan_complete.align.align_folder`).

    ``landmarks`` is a name from :data:`ALIGN_LANDMARKS` or three dlib landmark indices (kept as
    a tuple); ``upsample`` is ``'auto'`` or an integer >= 0.
    """

    size: int = 64
    landmarks: str | tuple = "inner-eyes-and-bottom-lip"
    all_faces: bool = False
    skip_multi: bool = False
    upsample: int | str = "auto"
    border: str = "reflect"
    workers: int | None = None
    predictor: str | None = None

    def __post_init__(self):
        _at_least(self, MIN_ALIGN_SIZE, "size", high=MAX_ALIGN_SIZE)
        _at_least(self, 1, "workers", high=MAX_WORKERS)
        if isinstance(self.landmarks, str):
            _choice("landmarks", self.landmarks, ALIGN_LANDMARKS)
        else:
            try:
                indices = tuple(self.landmarks)
            except TypeError:
                indices = ()
            if len(indices) != 3 or not all(hasattr(i, "__index__") and not isinstance(i, bool)
                                            for i in indices):
                raise OptionError("landmarks", f"{{landmarks}} must be one of "
                                               f"{', '.join(ALIGN_LANDMARKS)} or three landmark "
                                               f"indices, not {self.landmarks!r}")
            self.landmarks = tuple(int(i) for i in indices)
        _check_upsample(self.upsample)
        _choice("border", self.border, ALIGN_BORDERS)
        if self.all_faces and self.skip_multi:
            raise OptionError(("all_faces", "skip_multi"),
                              "{all_faces} and {skip_multi} exclude each other")


# The mask kinds an encoder learns from (the random kinds and the fixed ones; not lowres, whose
# mask is coarser than the image).
ENCODER_MASKS = ("center", "random", "left", "right", "top", "bottom", "pattern", "scratches",
                 "text", "irregular", "full")


@dataclasses.dataclass
class EncoderOptions:
    """Every option of ``dcgan-complete train-encoder``."""

    checkpoint_dir: str = "checkpoint"  # the model folder; the encoder is written beside it
    dataset: str | None = None          # real aligned faces (besides the generator's samples)
    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-4
    ef_dim: int = 32                    # filters in the encoder's first layer
    real_fraction: float = 0.5          # share of each batch from dataset (with one)
    feature_weight: float = 1.0         # real faces: weight of the discriminator-feature loss
    z_weight: float = 1.0               # samples: weight of the loss on z
    checkpoint_every: int = 250
    keep: int = 2
    seed: int | None = None
    precision: str = "auto"
    progress: bool = True

    def __post_init__(self):
        _at_least(self, 1, "steps", "ef_dim", "checkpoint_every", "keep")
        _at_least(self, 1, "batch_size", high=MAX_BATCH_SIZE)
        _seed(self)
        # the encoder's first two convolutions alone (the smallest model has two): float32
        # weights, their gradients and Adam's two moments; the model adds more once it is known
        _check_memory(16 * 25 * (4 * self.ef_dim + 2 * self.ef_dim ** 2), "ef_dim",
                      f"an encoder of {{ef_dim}} {self.ef_dim}", "lower {ef_dim}")
        _in_range("lr", self.lr, 0, MAX_LR, low_open=True)
        _in_range("real_fraction", self.real_fraction, 0, 1)
        _in_range("feature_weight", self.feature_weight, 0, MAX_WEIGHT)
        _in_range("z_weight", self.z_weight, 0, MAX_WEIGHT)
        _choice("precision", self.precision, PRECISION_CHOICES)


# How `complete` takes an image: an aligned crop of the model's size, or an ordinary photo.
PHOTO_INPUTS = ("auto", "crop", "photo")
PHOTO_FORMATS = ("png", "jpg")


# The damage detector's size and training tiles (train-detector)
MAX_DETECTOR_TILE, MAX_DETECTOR_FILTERS, MAX_DETECTOR_LEVELS = 1024, 64, 6
MAX_GROW = 64  # px: `detect --grow` widens what is found by at most this much


@dataclasses.dataclass
class DetectOptions:
    """How damage found by the detector becomes a mask (``detect`` and ``complete --mask
    auto``): a pixel of probability ``threshold`` or more is damage, widened by ``grow`` px."""

    # the bundled detector (trained with paint and lost emulsion too) flags about a third less
    # of clean photos at 0.6 than at 0.5 for the same share of the true mask's gain (training
    # photos, Telea filling both masks: LFW 0.20% against 0.67% flagged, raw_photos 0.10%
    # against 0.18%); dcgan_complete/weights/MODEL_CARD.md has the measurements
    threshold: float = 0.6
    # the halo around a crack or a letter is damage too; measured on training photos (Telea
    # filling both masks), 1 px recovered more of the true mask's gain than 2 (LFW 0.61
    # against 0.57, raw_photos 0.50 against 0.48) and repainted less of clean photos
    grow: int = 1
    overlay: bool = False
    detector: str | None = None  # a folder or detector.weights.h5; None: the model's, or bundled

    def __post_init__(self):
        _in_range("threshold", self.threshold, 0, 1, low_open=True, high_open=True)
        _at_least(self, 0, "grow", high=MAX_GROW)


@dataclasses.dataclass
class DetectorOptions:
    """Options of the damage detector's training (``train-detector``).

    Attributes
    ----------
    out_dir : str
        Where checkpoints, TensorBoard logs and the detector go; a run there resumes.
    steps : int
        Train up to this step.
    batch_size, tile : int
        Tiles per step and their side in px (a multiple of 2 ** levels).
    base_filters, levels : int
        The width of the U-Net's full-resolution layer and how many times it halves.
    lr : float
        Adam's learning rate (after a short warm-up, cosine decay to a tenth at ``steps``).
    clean_fraction : float
        The share of tiles with no damage at all.
    hard_negatives : tuple of str
        Detectors (folders or weight files) whose false alarms on the training photos become
        training tiles: cut around what each flags on the clean photos, half of them with
        damage drawn over them (:func:`~dcgan_complete.detector.mine_hard_negatives`).
    hard_share : float
        The share of tiles drawn from those, when there are any.
    whole_share : float
        The share of batches of whole photos, with their own borders, at half to all of
        ``tile`` (:meth:`~dcgan_complete.detector.TileSampler.whole_batch`).
    augment : float
        The share of training photos turned and recoloured before damage is drawn on them
        (:func:`~dcgan_complete.detector.varied`).
    init : str or None
        A detector (folder or weight file) a fresh run starts from instead of random weights
        (:func:`~dcgan_complete.detector.grow_from`): as wide, and as deep or deeper; the
        levels it lacks start as a pass-through, so the run begins with what it finds.
    checkpoint_every : int
        Steps between checkpoints.
    precision : str
        "auto", "float32" or "mixed_bfloat16".
    seed : int or None
    progress : bool
        Show a progress bar.
    """

    out_dir: str = DETECTOR_OUT
    steps: int = 20000
    batch_size: int = 8
    tile: int = 256
    base_filters: int = 12
    levels: int = 6
    lr: float = 1e-3
    clean_fraction: float = 0.2
    hard_negatives: tuple = ()
    hard_share: float = 0.3
    whole_share: float = 0.0
    augment: float = 0.0
    init: str | None = None
    checkpoint_every: int = 200
    precision: str = "auto"
    seed: int | None = None
    progress: bool = True

    def __post_init__(self):
        _at_least(self, 1, "steps", "checkpoint_every", high=MAX_ITERATIONS)
        _at_least(self, 1, "batch_size", high=MAX_BATCH_SIZE)
        _at_least(self, 1, "tile", high=MAX_DETECTOR_TILE)
        _at_least(self, 1, "base_filters", high=MAX_DETECTOR_FILTERS)
        _at_least(self, 1, "levels", high=MAX_DETECTOR_LEVELS)
        if self.tile % 2 ** self.levels:
            raise OptionError(("tile", "levels"), f"{{tile}} must be a multiple of 2 ** "
                                                  f"{{levels}} ({2 ** self.levels}), not "
                                                  f"{self.tile}")
        _in_range("clean_fraction", self.clean_fraction, 0, 1, high_open=True)
        _in_range("hard_share", self.hard_share, 0, 1, high_open=True)
        _in_range("whole_share", self.whole_share, 0, 1, high_open=True)
        _in_range("augment", self.augment, 0, 1)
        if isinstance(self.hard_negatives, (str, os.PathLike)):
            self.hard_negatives = (self.hard_negatives,)
        self.hard_negatives = tuple(str(p) for p in self.hard_negatives)
        if self.init is not None:
            self.init = str(self.init)
        _in_range("lr", self.lr, 0, MAX_LR, low_open=True)
        _choice("precision", self.precision, PRECISION_CHOICES)
        _seed(self)


@dataclasses.dataclass
class PhotoOptions:
    """How ``complete`` repairs ordinary photos (see :mod:`dcgan_complete.photo`).

    ``input_mode``: ``auto`` takes an image of exactly the model's size for an aligned crop and
    any other for a photo; ``crop`` centre-crops and resizes every image (the crop pipeline);
    ``photo`` repairs every image as a photo, at its own size.  ``format``/``quality``: the
    repaired photo is written as PNG, or as JPEG of that quality.  ``grain``: add noise to the
    model's fill up to the photo's own noise level around the hole.  ``upsample``: as in
    :class:`AlignOptions` (how hard to look for small faces).  ``refine``: a face whose frame
    was fitted to the landmarks outside its hole is aligned again on its first repair (where
    the landmarks see a face, not Telea's smear) and searched again in the new frame.
    """

    input_mode: str = "auto"
    format: str = "png"
    quality: int = 95
    grain: bool = True
    upsample: int | str = "auto"
    # a face aligned on the landmarks outside its hole can be aligned again on its first
    # repair and searched again; off: on 95 faces of raw_photos it changed the hole PSNR by
    # -0.02 dB and found no more faces, for 0.16 s more a photo (README, "Repair a photo")
    refine: bool = False

    def __post_init__(self):
        _choice("input_mode", self.input_mode, PHOTO_INPUTS)
        _choice("format", self.format, PHOTO_FORMATS)
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) or \
                not 1 <= self.quality <= 100:
            raise OptionError("quality", f"{{quality}} must be an integer from 1 to 100, not "
                                         f"{self.quality!r}")
        _check_upsample(self.upsample)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Searches at once (each takes every core and its batch's memory), requests waiting (each holds
# its upload), the size of one upload, and of one image (1000 megapixels: 3 GB decoded).
MAX_CONCURRENCY, MAX_QUEUE_SIZE, MAX_UPLOAD_MB, MAX_UPLOAD_MEGAPIXELS = 64, 1000, 1024, 1000.0


@dataclasses.dataclass
class ServeOptions:
    """The web page's own settings (``dcgan-complete serve``, :func:`dcgan_complete.app.serve`);
    its search settings are a :class:`CompleteOptions`.

    ``concurrency``: searches run at once (each takes the CPU's cores, so 1 is fastest for all);
    ``queue_size``: requests that may wait beyond those (one more is told the queue is full);
    ``max_upload_mb``: uploads above it are refused before they are read; ``max_megapixels``:
    larger images are refused before they are decoded.
    """

    host: str = "127.0.0.1"
    port: int = 7860
    concurrency: int = 1
    queue_size: int = 8
    max_upload_mb: int = 20
    max_megapixels: float = 25.0

    def __post_init__(self):
        if not isinstance(self.host, str) or not self.host.strip():
            raise OptionError("host", f"{{host}} must be a host name or address, not "
                                      f"{self.host!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or \
                not 1 <= self.port <= 65535:
            raise OptionError("port", f"{{port}} must be an integer from 1 to 65535, not "
                                      f"{self.port!r}")
        _at_least(self, 1, "concurrency", high=MAX_CONCURRENCY)
        _at_least(self, 1, "queue_size", high=MAX_QUEUE_SIZE)
        _at_least(self, 1, "max_upload_mb", high=MAX_UPLOAD_MB)
        _in_range("max_megapixels", self.max_megapixels, 0, MAX_UPLOAD_MEGAPIXELS, low_open=True)

    @property
    def public(self):
        """Whether the page is reachable from other machines (any host but the loopback)."""
        return self.host not in LOOPBACK_HOSTS and not self.host.startswith("127.")


# ------------------------------------------------------------------------------ evaluate, demo
EVALUATE_METHODS = ("ours", "biharmonic", "telea", "navier-stokes", "mean")
# The paper's four masks ("left" is its "half"); on photos, a hole over the middle of each face.
EVALUATE_MASKS = ("center", "pattern", "random", "left")
PHOTO_EVALUATE_MASKS = ("center",)
PHOTO_EVALUATE_METHODS = ("ours", "telea", "biharmonic")
DEMO_MASKS = ("center", "random", "scratches", "text")


def parse_iteration_counts(counts, name="sweep"):
    """``"25,50,100"`` (or a sequence of integers) -> ``(25, 50, 100)``, sorted, each once.

    Raises
    ------
    OptionError
        Naming ``name``, unless every count is an integer from 1 to :data:`MAX_ITERATIONS`.
    """
    parts = counts.split(",") if isinstance(counts, str) else list(counts)
    try:
        values = [int(p) if isinstance(p, str) else p for p in parts
                  if not (isinstance(p, str) and not p.strip())]
    except ValueError:
        values = []
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and
                             1 <= v <= MAX_ITERATIONS for v in values):
        raise OptionError(name, f"{{{name}}} must be iteration counts from 1 to "
                                f"{MAX_ITERATIONS} like 25,50,100, not {counts!r}")
    return tuple(sorted(set(values)))


@dataclasses.dataclass
class EvaluateOptions:
    """What ``dcgan-complete evaluate`` scores (see :func:`dcgan_complete.evaluate.evaluate`);
    its search settings are a :class:`CompleteOptions`, its mask parameters a
    :class:`MaskOptions`.

    ``masks``, ``methods``: mask kinds and methods to score, empty for the mode's defaults
    (:attr:`mask_kinds`, :attr:`method_names`); ``limit``: only this many images, drawn with
    ``seed``, which also draws the random masks and the search's starting points (a run with the
    same options repeats exactly); ``photos``: the folder holds ordinary photos, repaired at
    their own size; ``sweep``: iteration counts (``"25,50,100"`` or a sequence), to measure the
    time to quality instead; ``detect``: the folder holds clean photos, damaged with seeded
    synthetic damage to score the damage detector and ``--mask auto``.
    """

    masks: tuple = ()
    methods: tuple = ()
    limit: int | None = None
    seed: int = 0
    photos: bool = False
    sweep: tuple | None = None
    detect: bool = False

    def __post_init__(self):
        self.masks = (self.masks,) if isinstance(self.masks, str) else tuple(self.masks)
        self.methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        for method in self.methods:  # the mask kinds are checked where they live (masks)
            if method not in EVALUATE_METHODS:
                raise OptionError("methods", f"unknown method {method!r}: choose from "
                                             f"{', '.join(EVALUATE_METHODS)}")
        _at_least(self, 1, "limit")
        if self.seed is None:
            raise OptionError("seed", "{seed} must be an integer: an evaluation repeats exactly")
        _seed(self)
        if self.sweep is not None:
            self.sweep = parse_iteration_counts(self.sweep)
            if self.photos:
                raise OptionError(("sweep", "photos"), "{sweep} and {photos} exclude each other")
        if self.detect and (self.photos or self.sweep is not None):
            raise OptionError(("detect", "photos" if self.photos else "sweep"),
                              "{detect} and {%s} exclude each other"
                              % ("photos" if self.photos else "sweep"))

    @property
    def mask_kinds(self):
        """The mask kinds to score: ``masks``, or the mode's default."""
        return self.masks or (PHOTO_EVALUATE_MASKS if self.photos else EVALUATE_MASKS)

    @property
    def method_names(self):
        """The methods to score: ``methods``, or the mode's default."""
        return self.methods or (PHOTO_EVALUATE_METHODS if self.photos else EVALUATE_METHODS)


@dataclasses.dataclass
class DemoOptions:
    """Every option of ``dcgan-complete demo`` (see :func:`dcgan_complete.demo.run_demo`) but
    the model and the output folder.

    ``samples``: a folder of aligned faces (None: the bundled ones); ``mask_kinds``: the masks
    each face is completed with; ``iterations``, ``seed``, ``precision``: as for ``complete``,
    whose defaults the other search settings keep, except that the seed is fixed so that the
    demo repeats.
    """

    samples: str | None = None
    mask_kinds: tuple = DEMO_MASKS
    iterations: int | None = None
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self):
        self.mask_kinds = tuple(self.mask_kinds)
        if not self.mask_kinds:
            raise OptionError("mask_kinds", "give at least one mask kind")
        self.search_options()  # checks iterations, seed and precision

    def search_options(self):
        """The search's settings: :class:`CompleteOptions` with these changes."""
        return CompleteOptions(iterations=self.iterations, seed=self.seed,
                               precision=self.precision)
