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
DEMO_ITERATIONS = 600

PRECISIONS = ("float32", "mixed_bfloat16")
PRIORS = ("log1m", "nonsat")
OPTIMIZERS = ("momentum", "adam")
BLENDS = ("poisson", "none")
CONTEXT_WEIGHT_KINDS = ("plain", "window")
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 128


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

    def __post_init__(self):
        _at_least(self, 1, "epochs", "max_steps", "batch_size", "g_steps", "sample_every",
                  "checkpoint_every", "keep")
        _in_range("lr", self.lr, 0, None, low_open=True)
        _in_range("beta1", self.beta1, 0, 1)
        _choice("precision", self.precision, ("auto",) + PRECISIONS)
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
    lr: float = 0.01
    momentum: float = 0.9
    iterations: int = 1000
    restarts: int = 1
    out_interval: int = 50
    batch_size: int = 64
    tolerance: float | None = None
    blend: str = "poisson"
    seed: int | None = None
    precision: str = "float32"

    def __post_init__(self):
        _choice("prior", self.prior, PRIORS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("blend", self.blend, BLENDS)
        _choice("context_weight", self.context_weight, CONTEXT_WEIGHT_KINDS)
        _choice("precision", self.precision, PRECISIONS)
        _at_least(self, 1, "window", "iterations", "restarts", "out_interval", "batch_size")
        if self.window % 2 == 0:
            raise OptionError("window", f"{{window}} must be odd (a square centred on a pixel), "
                                        f"not {self.window}")
        _in_range("lam", self.lam, 0, None)
        _in_range("lr", self.lr, 0, None, low_open=True)
        _in_range("momentum", self.momentum, 0, 1)
        if self.tolerance is not None:
            _in_range("tolerance", self.tolerance, 0, None)


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
