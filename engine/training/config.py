"""The training configuration: one frozen, validated dataclass and its closed choices.

``TrainConfig`` is what a page or the CLI builds and what a run stores in ``config.json``
(``to_dict`` / ``from_dict`` round-trip exactly).

Defaults: phase 1 (step 1) is *solved*, not trained (``head_fit = solve``): the ``simple`` head
(BatchNorm, Dropout 0.2, softmax: a logistic regression on standardised features, see
``engine.training.layers.build_head``) takes the weights of an L2-regularized logistic
regression on the cached features whose strength has the lowest validation loss
(``engine.linear.solve_softmax_head``), in seconds. ``head_fit = gradient`` trains it by
gradient descent as the 000 seed does: Adam at 1e-2 on the cached features until validation
loss has not improved for ``head_patience`` = 10 epochs (``epochs`` = 50 is only the cap),
keeping the best epoch. With a few hundred photos that path overfits within a few epochs and
early stopping then keeps a barely trained head (issue 24: 0.82 against the logistic
regression's 0.84 on 300 flower photos); the seed's own head (Dense 256 with L1/L2 penalties,
Adamax 1e-3, 10 epochs) under-fits small data (80 % vs 94 % on 120 training photos). The seed's
head, and augmentation in phase 1, always train by gradient descent.
Fine-tuning runs the 000 seed's LRA controller with the seed's settings: patience 1,
stop_patience 6 (the seed's ``stop_patience = 6``), threshold 0.9, factor 0.5, dwell on, at
learning_rate / 100.
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from engine.choices import Choice
from engine.errors import ConfigError
from engine.training.variants import VARIANTS


class Head(Choice):
    SEED = "seed"          # pooling, BatchNorm, Dense 256 (L2/L1), Dropout 0.45, softmax (000 seed)
    SIMPLE = "simple"      # BatchNorm (standardises the features), Dropout, softmax


class HeadFit(Choice):
    """How step 1 fits the simple head on the cached features."""
    SOLVE = "solve"        # an exact L2 logistic regression, strength chosen on validation loss
    GRADIENT = "gradient"  # epochs of gradient descent with early stopping (the 000 seed's way)


class Optimizer(Choice):
    ADAMAX = "adamax"
    ADAM = "adam"
    RMSPROP = "rmsprop"


class ClassWeights(Choice):
    AUTO = "auto"          # inverse class frequency of the training split
    NONE = "none"


class Pooling(Choice):
    MAX = "max"            # the 000 seed's choice
    AVG = "avg"


class Distribution(Choice):
    """How many devices one run trains on (see ``engine.training.devices.make_strategy``)."""
    AUTO = "auto"                  # every device when there are several (per backend), else none
    NONE = "none"                  # one device: the GPU, or the CPU
    MIRRORED = "mirrored"          # TensorFlow: MirroredStrategy over the GPUs (the CPU when none)
    DATA_PARALLEL = "data_parallel"  # JAX: keras.distribution.DataParallel, all devices and hosts
    MULTI_WORKER = "multi_worker"  # refused (old runs only): several machines use data_parallel


class Backend(Choice):
    """The Keras backend that trains (see ``engine.training.backends``)."""
    AUTO = "auto"                  # KERAS_BACKEND when it is set, else tensorflow
    TENSORFLOW = "tensorflow"
    JAX = "jax"
    TORCH = "torch"

    @classmethod
    def concrete(cls) -> tuple[Backend, ...]:
        """The real backends (every member but ``auto``)."""
        return tuple(member for member in cls if member is not cls.AUTO)


WEIGHTS_IMAGENET = "imagenet"
WEIGHTS_NONE = "none"

MIN_IMAGE_SIZE_PX = 32
MAX_IMAGE_SIZE_PX = 1024


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides how one run trains.

    Attributes:
        variant: a name of ``engine.training.variants.VARIANTS`` (``B0``..``B7``, ``MobileNetV2-0.5`` ...).
        weights: ``'imagenet'`` (Keras downloads and caches), ``'none'`` (from scratch) or the
            path of a weights file (``.h5`` / ``.weights.h5``) for this backbone.
        image_size_px: square input side in pixels, 32..1024; ``None`` = the variant's native size.
        epochs: the most phase-1 epochs (frozen backbone, head only), 0..1000; phase 1 stops
            earlier, on its best epoch, once validation loss has not improved for
            ``head_patience`` epochs.
        fine_tune_epochs: phase-2 epochs (backbone partly or fully trainable), 0..1000.
        fine_tune_blocks: number of top backbone blocks to unfreeze in phase 2; 0 = all.
        head: ``simple`` (default) or ``seed`` (the 000 seed's head).
        head_fit: ``solve`` (default: step 1 solved exactly, see the module docstring) or
            ``gradient`` (epochs of gradient descent, the 000 seed's way); see ``solves_head``.
        pooling: ``max`` (seed) or ``avg`` pooling of the backbone's last feature map.
        dropout: dropout rate of the head, 0..0.9 (default 0.2; the seed's head used 0.45).
        augment: augmentation (flip, rotation, zoom, shift, contrast) in phase 2.
        augment_phase1: augment in phase 1 too; takes the slower exact path (no feature cache).
        batch_size: images per step, 1..1024.
        optimizer: ``adamax`` | ``adam`` | ``rmsprop``.
        learning_rate: phase-1 learning rate, (0, 1].
        fine_tune_learning_rate: phase-2 learning rate, (0, 1]; ``None`` = learning_rate / 100.
        head_patience: phase 1 stops after this many epochs without a lower validation loss, 1..1000.
        patience: fine-tuning epochs without improvement before the LR is multiplied by
            ``factor``, >= 1.
        stop_patience: LR reductions without improvement before training stops, >= 1.
        threshold: training accuracy above which the controller watches validation loss, 0..1.
        factor: LR multiplier on a plateau, (0, 1).
        dwell: on a plateau, go back to the best weights before continuing.
        early_stopping: in fine-tuning, plain early stopping on validation loss (after
            ``stop_patience`` epochs) instead of the LR controller.
        class_weights: ``auto`` (balance by inverse frequency) or ``none``.
        seed: random seed of shuffling, augmentation and weight initialisation.
        mixed_precision: ``None`` = automatic (on when a GPU is present), or forced on/off.
        label_smoothing: 0..0.5.
        distribution: ``auto`` (several devices -> ``mirrored`` on TensorFlow,
            ``data_parallel`` on JAX), ``none``, ``mirrored`` or ``data_parallel`` (JAX: every
            device of every host). ``batch_size`` is per replica (device): the global batch is
            ``batch_size`` x the number of replicas.
        backend: ``auto`` (``KERAS_BACKEND``, else tensorflow), ``tensorflow``, ``jax`` or
            ``torch``; it must be chosen before Keras loads (``engine.training.backends``).
    """

    variant: str = "B0"
    weights: str = WEIGHTS_IMAGENET
    image_size_px: int | None = None
    epochs: int = 50
    fine_tune_epochs: int = 5
    fine_tune_blocks: int = 0
    head: Head = Head.SIMPLE
    head_fit: HeadFit = HeadFit.SOLVE
    pooling: Pooling = Pooling.MAX
    dropout: float = 0.2
    augment: bool = True
    augment_phase1: bool = False
    batch_size: int = 32
    optimizer: Optimizer = Optimizer.ADAM
    learning_rate: float = 1e-2
    fine_tune_learning_rate: float | None = None
    head_patience: int = 10
    patience: int = 1
    stop_patience: int = 6
    threshold: float = 0.9
    factor: float = 0.5
    dwell: bool = True
    early_stopping: bool = False
    class_weights: ClassWeights = ClassWeights.AUTO
    seed: int = 0
    mixed_precision: bool | None = None
    label_smoothing: float = 0.0
    distribution: Distribution = Distribution.AUTO
    backend: Backend = Backend.AUTO

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        set_field(self, "head", Head.from_str(self.head, "head"))
        set_field(self, "head_fit", HeadFit.from_str(self.head_fit, "head_fit"))
        set_field(self, "pooling", Pooling.from_str(self.pooling, "pooling"))
        set_field(self, "optimizer", Optimizer.from_str(self.optimizer, "optimizer"))
        set_field(self, "class_weights", ClassWeights.from_str(self.class_weights, "class_weights"))
        set_field(self, "distribution", Distribution.from_str(self.distribution, "distribution"))
        set_field(self, "backend", Backend.from_str(self.backend, "backend"))
        self._validate_variant_and_weights()
        if self.image_size_px is not None:
            _check_int("image_size_px", self.image_size_px, MIN_IMAGE_SIZE_PX, MAX_IMAGE_SIZE_PX)
        _check_int("epochs", self.epochs, 0, 1000)
        _check_int("fine_tune_epochs", self.fine_tune_epochs, 0, 1000)
        if self.epochs + self.fine_tune_epochs == 0:
            raise ConfigError("epochs and fine_tune_epochs are both 0: nothing would be trained. "
                              "Set at least one of them to 1 or more.")
        _check_int("fine_tune_blocks", self.fine_tune_blocks, 0, 1000)
        _check_int("batch_size", self.batch_size, 1, 1024)
        _check_int("head_patience", self.head_patience, 1, 1000)
        _check_int("patience", self.patience, 1, 1000)
        _check_int("stop_patience", self.stop_patience, 1, 1000)
        _check_int("seed", self.seed, 0, 2**31 - 1)
        _check_float("dropout", self.dropout, 0.0, 0.9)
        _check_float("threshold", self.threshold, 0.0, 1.0)
        _check_float("label_smoothing", self.label_smoothing, 0.0, 0.5)
        _check_open_float("learning_rate", self.learning_rate, 0.0, 1.0, upper_inclusive=True)
        if self.fine_tune_learning_rate is not None:
            _check_open_float("fine_tune_learning_rate", self.fine_tune_learning_rate, 0.0, 1.0,
                              upper_inclusive=True)
        _check_open_float("factor", self.factor, 0.0, 1.0, upper_inclusive=False)
        for name in ("augment", "augment_phase1", "dwell", "early_stopping"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false; got {getattr(self, name)!r}.")
        if self.mixed_precision is not None and not isinstance(self.mixed_precision, bool):
            raise ConfigError("mixed_precision must be true, false or empty (automatic); "
                              f"got {self.mixed_precision!r}.")

    def _validate_variant_and_weights(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {', '.join(VARIANTS)}; "
                              f"got {self.variant!r}.")
        if not isinstance(self.weights, str) or not self.weights.strip():
            raise ConfigError("weights must be 'imagenet', 'none' or the path of a weights file; "
                              f"got {self.weights!r}.")
        lowered = self.weights.strip().lower()
        if lowered in (WEIGHTS_IMAGENET, WEIGHTS_NONE):
            object.__setattr__(self, "weights", lowered)
            return
        path = Path(self.weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"weights: the file {path} does not exist. Choose an existing .h5 "
                              "weights file, or use 'imagenet' or 'none'.")
        object.__setattr__(self, "weights", str(path.resolve()))

    # ---------------------------------------------------------------- derived values
    @property
    def weights_kind(self) -> str:
        """'imagenet', 'none' or 'file'."""
        return self.weights if self.weights in (WEIGHTS_IMAGENET, WEIGHTS_NONE) else "file"

    @property
    def effective_image_size_px(self) -> int:
        """The input side actually used: the override or the variant's native size."""
        return self.image_size_px or VARIANTS[self.variant].native_size_px

    @property
    def solves_head(self) -> bool:
        """Step 1 is solved (one exact fit on the cached features), not trained by epochs:
        ``head_fit`` is ``solve``, the head is the simple one (the seed's hidden layer has no
        exact solution) and phase 1 does not augment (it then has no cached features)."""
        return (self.head_fit == HeadFit.SOLVE and self.head == Head.SIMPLE
                and not self.augment_phase1 and self.epochs > 0)

    @property
    def head_epochs(self) -> int:
        """Step 1's planned epochs: one when it is solved, else ``epochs``."""
        return 1 if self.solves_head else self.epochs

    @staticmethod
    def planned_epochs_of(data: dict[str, Any]) -> int:
        """Step 1's and fine-tuning's planned epochs of a stored config (a run's config.json),
        also when it no longer validates (its weights file was moved)."""
        try:
            config = TrainConfig.from_dict(data)
        except ConfigError:
            return int(data.get("epochs", 0)) + int(data.get("fine_tune_epochs", 0))
        return config.head_epochs + config.fine_tune_epochs

    @property
    def effective_fine_tune_learning_rate(self) -> float:
        return self.fine_tune_learning_rate or self.learning_rate / 100.0

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (Enums as their string values)."""
        return {key: (value.value if isinstance(value, enum.Enum) else value)
                for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys (e.g. class_names added by a run) are
        ignored so a run's config.json loads directly."""
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}; got {value!r}.")


def _check_float(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{name} must be a number from {low} to {high}; got {value!r}.")


def _check_open_float(name: str, value: Any, low: float, high: float,
                      upper_inclusive: bool) -> None:
    ok_type = not isinstance(value, bool) and isinstance(value, (int, float))
    ok_range = ok_type and low < value and (value <= high if upper_inclusive else value < high)
    if not ok_range:
        bracket = "]" if upper_inclusive else ")"
        raise ConfigError(f"{name} must be a number in ({low}, {high}{bracket}; got {value!r}.")
