"""The one table of backbones: name -> native resolution, parameters, builder, preprocessing.

Every derived value (native input size, parameter count, Grad-CAM layer, the weights file
Keras expects) comes from :data:`VARIANTS`; nothing else in the product spells them again.
Keras is imported lazily (building a backbone), so importing this module is cheap.

Preprocessing rules, enforced by :func:`build_backbone`:
- Keras EfficientNet rescales and normalises its own input, so images reach it as floats in
  0..255. Dividing by 255 first gives chance accuracy (keras-io #1549, tensorflow #48412).
- MobileNet, MobileNetV2, InceptionV3 and Xception expect ``x / 127.5 - 1``; that is a
  ``Rescaling(1/127.5, offset=-1)`` layer inside the model (no Lambda layer, so the saved
  model loads with ``safe_mode=True``), so their input is also 0..255 floats.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import keras

KERAS_WEIGHTS_SUBDIR = "models"          # under $KERAS_HOME (default ~/.keras)
# Where Keras downloads the ImageNet files from (keras.applications' weight URLs); the probe
# below asks it for nothing but its headers. STUDIO_WEIGHTS_URL overrides it (tests, mirrors).
WEIGHTS_SOURCE_URL = "https://storage.googleapis.com/"
WEIGHTS_SOURCE_ENV = "STUDIO_WEIGHTS_URL"
PREPROCESS_NONE = "none"                 # the backbone rescales its own 0..255 input
PREPROCESS_TF = "tf"                     # x / 127.5 - 1, as a Rescaling layer


@dataclass(frozen=True)
class VariantSpec:
    """One backbone.

    Attributes:
        name: variant name used everywhere (``B0``, ``MobileNetV2-0.5``, ...).
        family: ``efficientnet`` | ``mobilenet_v2`` | ``mobilenet`` | ``inception_v3`` | ``xception``.
        native_size_px: the input side the backbone was designed and pretrained for.
        parameters: parameter count of the backbone without its ImageNet top.
        builder: name of the ``keras.applications`` function that builds it.
        alpha: width multiplier (MobileNets), else None.
        preprocessing: ``none`` (EfficientNet: input 0..255) or ``tf`` (x / 127.5 - 1 inside).
        last_conv_layer: the last convolutional activation, for Grad-CAM.
        min_size_px: the smallest input side the backbone accepts.
    """

    name: str
    family: str
    native_size_px: int
    parameters: int
    builder: str
    alpha: float | None = None
    preprocessing: str = PREPROCESS_NONE
    last_conv_layer: str = "top_activation"
    min_size_px: int = 32

    def keras_weights_file(self, image_size_px: int | None = None) -> str:
        """The file name Keras looks for in ``~/.keras/models/`` for ``weights='imagenet'``."""
        size = image_size_px or self.native_size_px
        if self.family == "efficientnet":
            return f"efficientnet{self.name.lower()}_notop.h5"
        if self.family == "mobilenet_v2":
            rows = size if size in (96, 128, 160, 192, 224) else 224
            return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(self.alpha)}_{rows}_no_top.h5"
        if self.family == "mobilenet":
            rows = size if size in (128, 160, 192, 224) else 224
            alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}[self.alpha]
            return f"mobilenet_{alpha_text}_{rows}_tf_no_top.h5"
        if self.family == "inception_v3":
            return "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
        return "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _efficientnet(index: int, size: int, parameters: int) -> VariantSpec:
    return VariantSpec(name=f"B{index}", family="efficientnet", native_size_px=size,
                       parameters=parameters, builder=f"EfficientNetB{index}")


def _mobilenet_v2(alpha: float, parameters: int) -> VariantSpec:
    return VariantSpec(name=f"MobileNetV2-{alpha}", family="mobilenet_v2", native_size_px=224,
                       parameters=parameters, builder="MobileNetV2", alpha=alpha,
                       preprocessing=PREPROCESS_TF, last_conv_layer="out_relu")


def _mobilenet(alpha: float, parameters: int) -> VariantSpec:
    return VariantSpec(name=f"MobileNet-{alpha}", family="mobilenet", native_size_px=224,
                       parameters=parameters, builder="MobileNet", alpha=alpha,
                       preprocessing=PREPROCESS_TF, last_conv_layer="conv_pw_13_relu")


# Parameter counts measured with keras.applications (include_top=False), Keras 3.15.
_TABLE: tuple[VariantSpec, ...] = (
    _efficientnet(0, 224, 4_049_571),
    _efficientnet(1, 240, 6_575_239),
    _efficientnet(2, 260, 7_768_569),
    _efficientnet(3, 300, 10_783_535),
    _efficientnet(4, 380, 17_673_823),
    _efficientnet(5, 456, 28_513_527),
    _efficientnet(6, 528, 40_960_143),
    _efficientnet(7, 600, 64_097_687),
    _mobilenet_v2(0.35, 410_208),
    _mobilenet_v2(0.5, 706_224),
    _mobilenet_v2(0.75, 1_382_064),
    _mobilenet_v2(1.0, 2_257_984),
    _mobilenet_v2(1.3, 3_766_048),
    _mobilenet_v2(1.4, 4_363_712),
    _mobilenet(0.25, 218_544),
    _mobilenet(0.5, 829_536),
    _mobilenet(0.75, 1_832_976),
    _mobilenet(1.0, 3_228_864),
    VariantSpec(name="InceptionV3", family="inception_v3", native_size_px=299,
                parameters=21_802_784, builder="InceptionV3", preprocessing=PREPROCESS_TF,
                last_conv_layer="mixed10", min_size_px=75),
    VariantSpec(name="Xception", family="xception", native_size_px=299, parameters=20_861_480,
                builder="Xception", preprocessing=PREPROCESS_TF,
                last_conv_layer="block14_sepconv2_act", min_size_px=71),
)
VARIANTS: dict[str, VariantSpec] = {spec.name: spec for spec in _TABLE}
EFFICIENTNET_VARIANTS: tuple[str, ...] = tuple(f"B{i}" for i in range(8))


def get_variant(name: str) -> VariantSpec:
    """The spec of a variant name. Raises ConfigError listing the valid names."""
    from engine.errors import ConfigError

    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(f"variant must be one of {', '.join(VARIANTS)}; got {name!r}.") from None


def build_backbone(spec: VariantSpec, image_size_px: int, weights: str | None,
                   inputs: keras.KerasTensor | None = None) -> keras.Model:
    """The backbone without its ImageNet top, taking float images in 0..255.

    Args:
        spec: the variant.
        image_size_px: square input side.
        weights: ``'imagenet'``, ``None`` (random init) or the path of a weights file.
        inputs: an existing input tensor (the backbone's layers are then built on it).
    Returns:
        A functional model ``(batch, size, size, 3) -> (batch, h, w, channels)`` whose
        first layers apply the variant's preprocessing.
    Raises:
        ConfigError: the size is below what the backbone accepts.
    """
    import keras

    from engine.errors import ConfigError

    if image_size_px < spec.min_size_px:
        raise ConfigError(f"image_size_px must be at least {spec.min_size_px} for {spec.name}; "
                          f"got {image_size_px}.")
    shape = (image_size_px, image_size_px, 3)
    if inputs is None:
        inputs = keras.Input(shape=shape, name="image")
    tensor = inputs
    if spec.preprocessing == PREPROCESS_TF:
        tensor = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(inputs)
    kwargs: dict[str, Any] = {"include_top": False, "weights": weights, "input_tensor": tensor,
                              "input_shape": shape}
    if spec.alpha is not None:
        kwargs["alpha"] = spec.alpha
    return getattr(keras.applications, spec.builder)(**kwargs)


_BLOCK_PATTERNS: dict[str, re.Pattern[str]] = {
    "efficientnet": re.compile(r"^(block\d+[a-z])_"),
    "mobilenet_v2": re.compile(r"^(block_\d+)_"),
    "mobilenet": re.compile(r"^conv_(?:dw|pw)_(\d+)"),
    "xception": re.compile(r"^(block\d+)_"),
}


def block_starts(spec: VariantSpec, backbone: keras.Model) -> list[int]:
    """Indices into ``backbone.layers`` where each block begins, bottom to top.

    A block is the unit of fine-tuning: unfreezing the top N blocks makes every layer from
    ``block_starts[-N]`` to the end trainable (whole blocks, never half of one).
    """
    names = [layer.name for layer in backbone.layers]
    if spec.family == "inception_v3":
        # InceptionV3's inner layers have generic names; blocks end at each 'mixedN' concat.
        ends = [i for i, name in enumerate(names) if re.fullmatch(r"mixed\d+", name)]
        return [0] + [end + 1 for end in ends[:-1]]
    pattern = _BLOCK_PATTERNS[spec.family]
    starts: list[int] = []
    previous = None
    for index, name in enumerate(names):
        match = pattern.match(name)
        if match and match.group(1) != previous:
            previous = match.group(1)
            starts.append(index)
    return starts


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` (default ~/.keras/models)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / KERAS_WEIGHTS_SUBDIR


def weights_source_url() -> str:
    """The address :func:`weights_source_reachable` asks (``$STUDIO_WEIGHTS_URL`` or Keras's)."""
    return os.environ.get(WEIGHTS_SOURCE_ENV) or WEIGHTS_SOURCE_URL


def weights_source_reachable(url: str | None = None, timeout_s: float = 3.0) -> bool:
    """True when the place Keras downloads ImageNet weights from answers now (one HEAD
    request to ``url``, default :func:`weights_source_url`, at most ``timeout_s`` seconds): a
    pretrained run can then fetch its file when it starts. Offline machines answer False at
    once (no name resolution)."""
    import urllib.error
    import urllib.request

    url = url or weights_source_url()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"),
                                    timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True   # it answered (e.g. 403 on the bucket root): the files can be fetched
    except (OSError, ValueError):
        return False


def install_weights_file(path: str | Path, variant: str, image_size_px: int | None = None) -> Path:
    """Copy a weights file into the Keras cache under the name ``weights='imagenet'`` looks for.

    Args:
        path: an ImageNet no-top weights file for this backbone (e.g. from another machine).
        variant: the variant it belongs to.
    Returns:
        The installed file.
    Raises:
        WeightsUnavailableError: the file does not exist or cannot be copied.
    """
    from engine.errors import WeightsUnavailableError

    source = Path(path).expanduser()
    spec = get_variant(variant)
    if not source.is_file():
        raise WeightsUnavailableError(f"The weights file {source} does not exist. Choose the "
                                      f"downloaded file {spec.keras_weights_file(image_size_px)}.")
    target = keras_cache_dir() / spec.keras_weights_file(image_size_px)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".partial")
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except OSError as err:
        raise WeightsUnavailableError(
            f"Could not copy {source} to {target}: {err.strerror}. Copy it there by hand.") from err
    return target


def offline_message(spec: VariantSpec, image_size_px: int | None = None) -> str:
    """What to do when the ImageNet weights of ``spec`` cannot be downloaded."""
    file_name = spec.keras_weights_file(image_size_px)
    return (f"The ImageNet weights for {spec.name} could not be downloaded: this machine seems "
            f"to be offline. Keras needs the file {file_name}. Download it on a machine with "
            f"internet access (https://storage.googleapis.com/tensorflow/keras-applications/) and "
            f"put it in {keras_cache_dir()}/, or choose the file as 'Weights file' on the Train "
            f"page (CLI: --weights /path/to/{file_name}), or train with weights 'none'.")


def build_backbone_checked(spec: VariantSpec, image_size_px: int, weights: str,
                           inputs: keras.KerasTensor | None = None) -> keras.Model:
    """:func:`build_backbone` with the weights choice of a TrainConfig ('imagenet' | 'none' |
    path) and weights problems turned into WeightsUnavailableError with a way out."""
    from engine.errors import WeightsUnavailableError

    if weights == "imagenet":
        try:
            return build_backbone(spec, image_size_px, "imagenet", inputs=inputs)
        except Exception as err:  # get_file raises a bare Exception("URL fetch failure ...")
            text = str(err)
            if "fetch failure" in text or "URL" in text or isinstance(err, OSError):
                raise WeightsUnavailableError(offline_message(spec, image_size_px),
                                              detail=text) from err
            raise
    if weights == "none":
        return build_backbone(spec, image_size_px, None, inputs=inputs)
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailableError(f"The weights file {path} does not exist. Choose an "
                                      f"existing file, e.g. {spec.keras_weights_file()}.")
    try:
        return build_backbone(spec, image_size_px, str(path), inputs=inputs)
    except (ValueError, OSError, KeyError) as err:
        raise WeightsUnavailableError(
            f"The weights file {path.name} does not fit {spec.name} ({err}). Choose the "
            f"no-top ImageNet file of this backbone, e.g. {spec.keras_weights_file()}, or pick "
            f"the variant the file was made for.", detail=repr(err)) from err
