"""Model pieces: the classification heads, augmentation, the assembled model, freezing.

Everything here is built from stock Keras layers (``Rescaling`` for preprocessing, no
``Lambda``), so a saved ``model.keras`` loads with ``keras.models.load_model(path,
safe_mode=True)``. Loaders import this module first; it is where any custom layer would be
registered (``keras.saving.register_keras_serializable(package="studio")``).

Model layout (one functional model, backbone layers inlined so Grad-CAM finds
``VariantSpec.last_conv_layer`` with ``model.get_layer``)::

    image (float32 0..255) -> [Rescaling for tf-style backbones] -> backbone
        -> GlobalMax/AvgPooling2D "pool" -> head (nested model "head") -> softmax probabilities
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.linear import HEAD_EPSILON, SolvedHead
from engine.training.config import Head, Optimizer, Pooling, TrainConfig
from engine.training.variants import VariantSpec, block_starts, build_backbone_checked

if TYPE_CHECKING:  # pragma: no cover
    import keras

HEAD_NAME = "head"
DATA_LOSS = "cross_entropy"   # the metric holding the data loss (see compile_for_training)
POOL_NAME = "pool"
# The 000 seed's head regularisation.
SEED_DENSE_UNITS = 256
SEED_L2 = 0.016
SEED_L1 = 0.006
SIMPLE_BN_MOMENTUM = 0.9   # the simple head's standardisation (see build_head)


@dataclass
class StudioModel:
    """The assembled model and the handles training needs.

    Attributes:
        model: image -> probabilities (what is saved as model.keras).
        backbone: the backbone (its layers are inlined in ``model``).
        head: features -> probabilities (trained alone on cached features in phase 1).
        feature_model: image -> pooled features (shares layers with ``model``).
        feature_dim: length of a pooled feature vector.
    """

    model: keras.Model
    backbone: keras.Model
    head: keras.Model
    feature_model: keras.Model
    feature_dim: int


def build_head(feature_dim: int, num_classes: int, config: TrainConfig, seed: int) -> keras.Model:
    """The classification head over pooled features.

    ``seed`` (000 seed): BatchNorm, Dense 256 ReLU with L2 kernel / L1 activity and bias
    regularisation, Dropout, softmax. ``simple``: BatchNorm, Dropout, softmax, i.e. a logistic
    regression on standardised features. The softmax layer is float32 even under mixed
    precision, so probabilities and the loss stay exact.

    Why the simple head standardises: pooled backbone features differ in scale from one
    dimension to the next (max-pooled MobileNetV2 features run from 0 to ~6), so a softmax
    straight on them trains erratically at phase 1's learning rate (the first epochs' loss
    is 10 and more) and ends below a logistic regression on the same features. Measured on
    the cached features of a ``python -m bench.quality`` run (pets-dev, MobileNetV2-0.35,
    120 training photos, 960 test photos; phase 1 replayed with three seeds): test accuracy
    0.926-0.935 without it, 0.937-0.944 with it; the best logistic regression 0.945. The
    engine's own run with it: 0.941. ``SIMPLE_BN_MOMENTUM`` is lower than Keras' 0.99 so the
    moving statistics settle within the few steps per epoch a small dataset gives.
    """
    import keras
    from keras import layers, regularizers

    inputs = keras.Input(shape=(feature_dim,), name="features")
    tensor = inputs
    if config.head == Head.SEED:
        tensor = layers.BatchNormalization(axis=-1, momentum=0.99, epsilon=0.001,
                                           name="head_bn")(tensor)
        tensor = layers.Dense(SEED_DENSE_UNITS, activation="relu", name="head_dense",
                              kernel_regularizer=regularizers.L2(SEED_L2),
                              activity_regularizer=regularizers.L1(SEED_L1),
                              bias_regularizer=regularizers.L1(SEED_L1))(tensor)
    else:
        tensor = layers.BatchNormalization(axis=-1, momentum=SIMPLE_BN_MOMENTUM,
                                           epsilon=HEAD_EPSILON, name="head_bn")(tensor)
    tensor = layers.Dropout(config.dropout, seed=seed, name="head_dropout")(tensor)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32",
                           name="probabilities")(tensor)
    return keras.Model(inputs, outputs, name=HEAD_NAME)


def write_solved_head(head: keras.Model, solved: SolvedHead) -> None:
    """Make the ``simple`` head compute ``solved``'s probabilities exactly: its BatchNorm
    standardizes with the solver's mean and variance (scale 1, shift 0) and its softmax layer
    takes the solver's weights; Dropout is off outside training.

    Raises:
        ValueError: the head is not the simple one (the seed's has a hidden layer).
    """
    names = {layer.name for layer in head.layers}
    if "head_dense" in names or "head_bn" not in names:
        raise ValueError("only the simple head (standardization + softmax) can take a solved "
                         "step 1")
    batch_norm = head.get_layer("head_bn")
    ones = np.ones_like(solved.mean)
    batch_norm.set_weights([ones, np.zeros_like(solved.mean), solved.mean, solved.variance])
    head.get_layer("probabilities").set_weights([solved.kernel, solved.bias])


def assemble_model(spec: VariantSpec, config: TrainConfig, num_classes: int,
                   backbone_weights: str) -> StudioModel:
    """Backbone + pooling + head as one model (see the module docstring).

    Args:
        backbone_weights: ``'imagenet'``, ``None`` or a weights file path.
    """
    import keras

    size = config.effective_image_size_px
    inputs = keras.Input(shape=(size, size, 3), name="image")
    backbone = build_backbone_checked(spec, size, backbone_weights, inputs=inputs)
    pooling_layer = (keras.layers.GlobalMaxPooling2D if config.pooling == Pooling.MAX
                     else keras.layers.GlobalAveragePooling2D)
    pooled = pooling_layer(name=POOL_NAME, dtype="float32")(backbone.output)
    feature_dim = int(pooled.shape[-1])
    head = build_head(feature_dim, num_classes, config, seed=config.seed)
    outputs = head(pooled)
    model = keras.Model(inputs, outputs, name=f"studio_{spec.name.lower().replace('.', '_')}")
    feature_model = keras.Model(inputs, pooled, name="features")
    return StudioModel(model, backbone, head, feature_model, feature_dim)


def augmentation(seed: int) -> keras.Sequential:
    """Random flip, rotation, zoom, shift and contrast for 0..255 float images (train only);
    rotation, zoom and shift as one affine transform (:mod:`engine.training.augmentation`)."""
    from engine.training.augmentation import build_augmentation

    return build_augmentation(seed)


def freeze_backbone(studio: StudioModel) -> None:
    """Phase 1: the whole backbone frozen (BatchNorm layers then run in inference mode)."""
    studio.backbone.trainable = False
    studio.head.trainable = True
    forget_predict_steps(studio)


def forget_predict_steps(studio: StudioModel) -> None:
    """Drop the cached predict steps of every model sharing the changed layers.

    Under a ``keras.distribution`` (JAX data_parallel) Keras bakes one sharding per
    trainable / non-trainable variable into a model's compiled predict step, so a step
    traced before (un)freezing fails afterwards ("pytree structure error ... out_shardings").
    ``compile`` resets the train and test steps, not this one. Elsewhere it costs one retrace.
    """
    for model in (studio.model, studio.head, studio.feature_model):
        model.predict_function = None


def unfreeze_top_blocks(studio: StudioModel, spec: VariantSpec, num_blocks: int,
                        freeze_batch_norm: bool = True) -> int:
    """Phase 2: make the top ``num_blocks`` whole blocks trainable (0 = all blocks).

    BatchNormalization layers stay frozen: their moving statistics were learnt on ImageNet
    and re-estimating them from small batches of a small dataset wrecks the features
    (keras.io "Transfer learning & fine-tuning"; the 001 seed). The exception is a backbone
    trained from scratch (``freeze_batch_norm=False``): it has no statistics worth keeping,
    and frozen initial statistics make its activations vanish, so nothing would learn.

    Returns:
        The number of backbone layers made trainable.
    """
    import keras

    layers = studio.backbone.layers
    starts = block_starts(spec, studio.backbone)
    first = 0 if num_blocks == 0 or num_blocks >= len(starts) else starts[-num_blocks]
    studio.backbone.trainable = True
    count = 0
    for index, layer in enumerate(layers):
        is_batch_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = index >= first and not (is_batch_norm and freeze_batch_norm)
        count += int(layer.trainable and bool(layer.weights))
    studio.head.trainable = True
    forget_predict_steps(studio)
    return count


def training_model(model: keras.Model, seed: int, augment: bool) -> keras.Model:
    """What ``fit`` trains: ``model`` itself, or with ``augment`` the augmentation layers in
    front of it, so augmentation runs inside the compiled training step on the training
    device (and only when ``training=True``: validation sees the plain images). The wrapper
    shares every variable with ``model``; ``model`` is what is saved, without augmentation."""
    import keras

    if not augment:
        return model
    inputs = keras.Input(shape=tuple(model.input_shape[1:]), name="image")
    return keras.Model(inputs, model(augmentation(seed)(inputs)), name="training")


def compile_for_training(model: keras.Model, optimizer: Optimizer, learning_rate: float,
                         label_smoothing: float, jit: bool, weighted: bool = False) -> None:
    """Compile with the run's optimizer, cross-entropy and accuracy. ``jit``: XLA on a GPU
    fuses the step (faster); on a CPU its compile time (tens of seconds for EfficientNet)
    outweighs the gain for the few epochs a run has. JAX always compiles the step, whatever
    ``jit`` says: without ``jax.jit`` Keras runs every op of every step eagerly, several
    times slower than the compiled step even on a CPU.

    The metric ``cross_entropy`` (logs ``cross_entropy`` / ``val_cross_entropy``) is the data
    loss alone: Keras' ``loss`` adds the layers' L1/L2 penalties (the seed head's are most of
    it) and label smoothing, so it cannot be compared with a log loss; curves, tables and the
    controller use the data loss (:meth:`engine.training.loop.Trainer.after_epoch`).

    ``weighted``: the metrics honour the batches' sample weights (the padding rows of full
    batches on several devices weigh 0, :mod:`engine.training.sharding`; Keras's plain
    ``metrics`` ignore sample weights, its ``weighted_metrics`` do not)."""
    import keras

    jit = jit or keras.config.backend() == "jax"
    optimizer_class = {Optimizer.ADAMAX: keras.optimizers.Adamax,
                       Optimizer.ADAM: keras.optimizers.Adam,
                       Optimizer.RMSPROP: keras.optimizers.RMSprop}[optimizer]
    metrics = ["accuracy", keras.metrics.CategoricalCrossentropy(name=DATA_LOSS)]
    model.compile(optimizer=optimizer_class(learning_rate=learning_rate),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  metrics=None if weighted else metrics,
                  weighted_metrics=metrics if weighted else None,
                  jit_compile="auto" if jit else False)
    build_training_state(model)


def build_training_state(model: keras.Model) -> None:
    """Create the optimizer's, the loss's and the metrics' variables of a compiled model now,
    before its training step is first traced.

    On TensorFlow, for a model not made under a distribution strategy, Keras leaves this to
    the first trace of the step (``TensorFlowTrainer._maybe_symbolic_build``); that trace
    creates variables, so TensorFlow traces the step a second time without them. Building
    first halves the time the first batch of each phase waits: a tiny run's fine-tuning
    step was built in 11.7 s, 6.0 s with this. JAX and PyTorch do the same in every ``fit``
    (their trainers call ``_symbolic_build``), so this makes TensorFlow do what they do."""

    example = (np.zeros((1, *model.input_shape[1:]), dtype=model.inputs[0].dtype),
               np.zeros((1, *model.output_shape[1:]), dtype="float32"))
    model._symbolic_build(data_batch=example)
