"""Every option's one home: the settings of each stage as a dataclass, with its default and its
check.  The command line takes its defaults from here and builds these objects before any work
(and before TensorFlow is imported), so a bad value is refused at once.

Nothing here imports more than the standard library.  Errors are
:class:`~dcgan_complete.errors.OptionError` naming the field (``window``); the command line
shows its flag (``--window``) instead.
"""
from __future__ import annotations

import dataclasses
import math

from dcgan_complete.errors import OptionError

# Output folders of the commands that write one.
COMPLETE_OUT = "out"
EVALUATE_OUT = "report"
DEMO_OUT = "demo-out"

PRECISIONS = ("float32", "mixed_bfloat16")
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
# How a run uses several devices or machines (dcgan_complete.distribute): training can span
# machines; completion shares its inputs between machines with shards instead.
TRAIN_DISTRIBUTE = ("none", "auto", "mirrored", "multiworker")
COMPLETE_DISTRIBUTE = ("none", "mirrored")


def image_sizes():
    """The image sizes a model can have: the powers of two from 16 to 128."""
    return [2 ** k for k in range(int(math.log2(MIN_IMAGE_SIZE)),
                                  int(math.log2(MAX_IMAGE_SIZE)) + 1)]


def _choice(name, value, allowed):
    if value not in allowed:
        raise OptionError(name, f"{{{name}}} must be one of {', '.join(map(str, allowed))}, "
                                f"not {value!r}")


def _at_least(obj, low, *names):
    for name in names:
        value = getattr(obj, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise OptionError(name, f"{{{name}}} must be an integer >= {low}, not {value!r}")


def _in_range(name, value, low, high, low_open=False, high_open=False):
    ok = (value > low if low_open else value >= low) and \
        (high is None or (value < high if high_open else value <= high))
    if not ok or value != value:  # NaN
        left, right = "(" if low_open else "[", ")" if high_open or high is None else "]"
        raise OptionError(name, f"{{{name}}} must be in {left}{low}, "
                                f"{'inf' if high is None else high}{right}, not {value}")


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
        _at_least(self, 1, "epochs", "max_steps", "batch_size", "g_steps", "sample_every",
                  "checkpoint_every", "keep")
        _in_range("lr", self.lr, 0, None, low_open=True)
        _in_range("beta1", self.beta1, 0, 1)
        _choice("precision", self.precision, ("auto",) + PRECISIONS)
        _choice("distribute", self.distribute, TRAIN_DISTRIBUTE)
        self.devices = _check_devices(self.devices, self.distribute)
        self.model_config  # checks the architecture options

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

    def __post_init__(self):
        _choice("prior", self.prior, PRIORS)
        _choice("init", self.init, INITS)
        _in_range("init_noise", self.init_noise, 0, None)
        _in_range("anchor", self.anchor, 0, None)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("blend", self.blend, BLENDS)
        _choice("context_weight", self.context_weight, CONTEXT_WEIGHT_KINDS)
        _choice("precision", self.precision, ("auto",) + PRECISIONS)
        _at_least(self, 1, "window", "iterations", "restarts", "out_interval", "batch_size")
        if self.window % 2 == 0:
            raise OptionError("window", f"{{window}} must be odd (a square centred on a pixel), "
                                        f"not {self.window}")
        _in_range("lam", self.lam, 0, None)
        if self.lr is not None:
            _in_range("lr", self.lr, 0, None, low_open=True)
        _in_range("momentum", self.momentum, 0, 1)
        if self.tolerance is not None:
            _in_range("tolerance", self.tolerance, 0, None)


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


def default(options_class, name):
    """The default of one field, for the command line's ``default=``."""
    return {f.name: f.default for f in dataclasses.fields(options_class)}[name]


ALIGN_LANDMARKS = ("inner-eyes-and-bottom-lip", "outer-eyes-and-nose")
ALIGN_BORDERS = ("reflect", "black")
MIN_ALIGN_SIZE = 8


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
        _at_least(self, MIN_ALIGN_SIZE, "size")
        _at_least(self, 1, "workers")
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
        if self.upsample != "auto" and (isinstance(self.upsample, bool) or
                                        not isinstance(self.upsample, int) or self.upsample < 0):
            raise OptionError("upsample", f"{{upsample}} must be 'auto' or an integer >= 0, "
                                          f"not {self.upsample!r}")
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
        _at_least(self, 1, "steps", "batch_size", "ef_dim", "checkpoint_every", "keep")
        _in_range("lr", self.lr, 0, None, low_open=True)
        _in_range("real_fraction", self.real_fraction, 0, 1)
        _in_range("feature_weight", self.feature_weight, 0, None)
        _in_range("z_weight", self.z_weight, 0, None)
        _choice("precision", self.precision, ("auto",) + PRECISIONS)


# How `complete` takes an image: an aligned crop of the model's size, or an ordinary photo.
PHOTO_INPUTS = ("auto", "crop", "photo")
PHOTO_FORMATS = ("png", "jpg")


@dataclasses.dataclass
class PhotoOptions:
    """How ``complete`` repairs ordinary photos (see :mod:`dcgan_complete.photo`).

    ``input_mode``: ``auto`` takes an image of exactly the model's size for an aligned crop and
    any other for a photo; ``crop`` centre-crops and resizes every image (the crop pipeline);
    ``photo`` repairs every image as a photo, at its own size.  ``format``/``quality``: the
    repaired photo is written as PNG, or as JPEG of that quality.  ``grain``: add noise to the
    model's fill up to the photo's own noise level around the hole.  ``upsample``: as in
    :class:`AlignOptions` (how hard to look for small faces).
    """

    input_mode: str = "auto"
    format: str = "png"
    quality: int = 95
    grain: bool = True
    upsample: int | str = "auto"

    def __post_init__(self):
        _choice("input_mode", self.input_mode, PHOTO_INPUTS)
        _choice("format", self.format, PHOTO_FORMATS)
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) or \
                not 1 <= self.quality <= 100:
            raise OptionError("quality", f"{{quality}} must be an integer from 1 to 100, not "
                                         f"{self.quality!r}")
        if self.upsample != "auto" and (isinstance(self.upsample, bool) or
                                        not isinstance(self.upsample, int) or self.upsample < 0):
            raise OptionError("upsample", f"{{upsample}} must be 'auto' or an integer >= 0, "
                                          f"not {self.upsample!r}")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


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
        _at_least(self, 1, "concurrency", "queue_size", "max_upload_mb")
        _in_range("max_megapixels", self.max_megapixels, 0, None, low_open=True)

    @property
    def public(self):
        """Whether the page is reachable from other machines (any host but the loopback)."""
        return self.host not in LOOPBACK_HOSTS and not self.host.startswith("127.")
