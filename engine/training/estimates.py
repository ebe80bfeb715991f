"""Rough time and memory estimates for a training run, before it starts (the Train page's
variant table).

How the estimate is made:

- *Work per image* = the backbone's multiply-adds at its native size (published figures in
  :data:`MULTIPLY_ADDS_AT_NATIVE`) scaled by ``(image_size_px / native_size_px) ** 2``
  (convolution work grows with the pixel count).
- *Machine speed* = multiply-adds per second, taken from the most recent fine-tuning epochs
  stored in this workspace at 128 px or more (``run_events``: EpochEnded durations and
  RunStarted image counts), so estimates learn this machine; before such a run, the figures
  measured on the team's 2-core CPU machine (:data:`DEFAULT_TRAIN_MACS_PER_SECOND`, below).
- *Seconds per fine-tuning epoch* = training images x work per image / training speed.
  *Phase-1 features* = all images x work per image / inference speed, once per run (phase-1
  epochs then train only the small head on cached features and take about a second).
- *Memory* = TensorFlow's own footprint + 16 bytes per parameter (weights, gradients, two
  optimizer slots) + batch size x activation memory per image, the latter taken proportional
  to the multiply-adds (measured on B0).

Measured (2026-11-26, ``python bench/measure_train_step.py``, EfficientNetB0, 128 px, weights
none, CPU with 2 cores shared with other work): batch 24 trains 27 images/s and infers 46
images/s; peak RSS 1.70 GB at batch 8 and 2.22 GB at batch 24, i.e. 32.5 MB per image.
The estimate ranks the variants and says "minutes or hours"; it does not promise a time.

The photo sizes the Train page offers (:func:`size_choices`) run from a smaller side than the
model's own (96 px for a 224-px model, the same fraction for the others) to 600 px, each with
its estimated speed relative to the native size: the work per photo scales with the pixel
count, so half the side is about four times faster, an estimate and not a promise.
Small images carry fixed per-step costs (data pipeline, augmentation, Python), so a speed
measured at 64 px overstates the time at 224 px (on the team machine a B0 fine-tuning
epoch at 64 px ran 11 images/s, while the pure training step at 128 px runs 27).
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass

from engine.training.config import MIN_IMAGE_SIZE_PX
from engine.training.variants import VARIANTS, get_variant
from engine.workspace import Workspace

# Multiply-adds of one forward pass at the native size (EfficientNet paper Table 2 "FLOPs";
# MobileNetV2 paper Table 6 / Keras docs; MobileNet paper Tables 6-7; Inception-v3 and
# Xception papers).
MULTIPLY_ADDS_AT_NATIVE: dict[str, float] = {
    "B0": 0.39e9, "B1": 0.70e9, "B2": 1.0e9, "B3": 1.8e9,
    "B4": 4.2e9, "B5": 9.9e9, "B6": 19e9, "B7": 37e9,
    "MobileNetV2-0.35": 59e6, "MobileNetV2-0.5": 97e6, "MobileNetV2-0.75": 209e6,
    "MobileNetV2-1.0": 300e6, "MobileNetV2-1.3": 509e6, "MobileNetV2-1.4": 582e6,
    "MobileNet-0.25": 41e6, "MobileNet-0.5": 149e6, "MobileNet-0.75": 325e6,
    "MobileNet-1.0": 569e6, "InceptionV3": 5.7e9, "Xception": 8.4e9,
}
_B0_128_MACS = 0.39e9 * (128 / 224) ** 2
DEFAULT_TRAIN_MACS_PER_SECOND = 27.0 * _B0_128_MACS        # 27 images/s training B0 @128 px
DEFAULT_INFER_MACS_PER_SECOND = 46.0 * _B0_128_MACS        # 46 images/s inference B0 @128 px
ACTIVATION_BYTES_PER_MAC = 32.5e6 / _B0_128_MACS            # 32.5 MB per image, B0 @128 px
RUNTIME_BYTES = 1.2e9                                        # TensorFlow + data pipeline
OPTIMIZER_BYTES_PER_PARAMETER = 16                           # float32 weights, grads, 2 slots
# Runs on smaller images are dominated by per-image overheads (decoding, augmentation), not by
# the backbone, so they would make every larger size look far slower: not used to calibrate.
MIN_CALIBRATION_SIZE_PX = 128
# The smallest side offered is this fraction of the native side (96 px for a 224-px model),
# rounded to a multiple of SIZE_STEP_PX; then the usual sizes up to LARGEST_OFFERED_SIZE_PX.
SMALLEST_SIZE_FRACTION = 96 / 224
SIZE_STEP_PX = 16
OFFERED_SIZES_PX = (96, 128, 160, 192, 224, 240, 260, 300, 380, 456, 528, 600)
LARGEST_OFFERED_SIZE_PX = 600


@dataclass(frozen=True)
class Throughput:
    """Machine speed in multiply-adds per second and where the figure comes from."""
    train_macs_per_second: float
    infer_macs_per_second: float
    source: str


@dataclass(frozen=True)
class CostEstimate:
    """Estimated cost of one variant at one size on this machine for this dataset."""
    variant: str
    image_size_px: int
    multiply_adds: float               # per image, one forward pass
    features_seconds: float            # phase 1: computing backbone features of every image, once
    fine_tune_seconds_per_epoch: float
    memory_bytes: float                # peak while fine-tuning at the batch size


@dataclass(frozen=True)
class SizeChoice:
    """One photo size the Train page offers for a variant.

    Attributes:
        image_size_px: the square side.
        is_native: the size the variant was made (and pretrained) for.
        relative_speed: estimated training speed relative to the native size (2.0 = about
            twice as fast), from the multiply-adds per image; an estimate, not a measurement.
    """
    image_size_px: int
    is_native: bool
    relative_speed: float


def size_choices(variant: str) -> list[SizeChoice]:
    """The photo sizes to offer for ``variant``, smallest first, the native size among them.

    Raises:
        ConfigError: an unknown variant.
    """
    spec = get_variant(variant)
    scaled = round(spec.native_size_px * SMALLEST_SIZE_FRACTION / SIZE_STEP_PX) * SIZE_STEP_PX
    smallest = max(spec.min_size_px, MIN_IMAGE_SIZE_PX, scaled)
    largest = max(LARGEST_OFFERED_SIZE_PX, spec.native_size_px)
    # A usual size a few pixels from the native or the smallest one would read as a duplicate.
    sizes = {smallest, spec.native_size_px,
             *(size for size in OFFERED_SIZES_PX if smallest + SIZE_STEP_PX // 2 < size <= largest
               and abs(size - spec.native_size_px) > SIZE_STEP_PX // 2)}
    native_work = multiply_adds(spec.name)
    return [SizeChoice(size, size == spec.native_size_px,
                       native_work / multiply_adds(spec.name, size)) for size in sorted(sizes)]


def multiply_adds(variant: str, image_size_px: int | None = None) -> float:
    """Forward-pass multiply-adds of one image at ``image_size_px`` (default native)."""
    spec = get_variant(variant)
    size = image_size_px or spec.native_size_px
    return MULTIPLY_ADDS_AT_NATIVE[spec.name] * (size / spec.native_size_px) ** 2


def default_throughput() -> Throughput:
    return Throughput(DEFAULT_TRAIN_MACS_PER_SECOND, DEFAULT_INFER_MACS_PER_SECOND,
                      "as measured on a 2-core CPU (B0 at 128 px: 27 training images/s)")


def measured_throughput(workspace: Workspace) -> Throughput:
    """Machine speed from this workspace's latest run with fine-tuning epochs, else the default.

    Speed = training images x multiply-adds per image / median fine-tuning epoch duration
    (the epoch time includes its validation pass, so the estimate includes it too).
    """
    default = default_throughput()
    with workspace.connect() as connection:
        runs = connection.execute(
            "SELECT DISTINCT run_id FROM run_events WHERE kind = 'EpochEnded' "
            "AND payload_json LIKE '%\"phase\": \"fine_tune\"%' ORDER BY id DESC LIMIT 5").fetchall()
        for row in runs:
            started = connection.execute(
                "SELECT payload_json FROM run_events WHERE run_id = ? AND kind = 'RunStarted' "
                "ORDER BY id DESC LIMIT 1", (row["run_id"],)).fetchone()
            epochs = connection.execute(
                "SELECT payload_json FROM run_events WHERE run_id = ? AND kind = 'EpochEnded'",
                (row["run_id"],)).fetchall()
            if started is None:
                continue
            info = json.loads(started["payload_json"])
            payloads = [json.loads(epoch["payload_json"]) for epoch in epochs]
            # The first fine-tuning epoch also builds the graph: leave it out when others exist.
            durations = [payload["duration_seconds"] for payload in payloads
                         if payload.get("phase") == "fine_tune" and payload["duration_seconds"] > 0]
            durations = durations[1:] or durations
            if (info.get("variant") not in VARIANTS or not durations or info.get("num_train", 0) < 1
                    or info.get("image_size_px", 0) < MIN_CALIBRATION_SIZE_PX):
                continue
            work = info["num_train"] * multiply_adds(info["variant"], info["image_size_px"])
            train_speed = work / statistics.median(durations)
            ratio = train_speed / default.train_macs_per_second
            return Throughput(train_speed, default.infer_macs_per_second * ratio,
                              f"measured from run {row['run_id']} on this machine "
                              f"({info['num_train'] / statistics.median(durations):.1f} training "
                              f"images/s, {info['variant']} at {info['image_size_px']} px)")
    return default


def estimate_cost(variant: str, image_size_px: int | None, num_train: int, num_images: int,
                  batch_size: int, throughput: Throughput) -> CostEstimate:
    """Estimate one variant's features time, seconds per fine-tuning epoch and peak memory.

    Args:
        image_size_px: input side; None = the variant's native size.
        num_train: training images; num_images: all images whose features phase 1 computes.
        batch_size: images per step.
    """
    spec = get_variant(variant)
    size = image_size_px or spec.native_size_px
    work = multiply_adds(variant, size)
    memory = (RUNTIME_BYTES + OPTIMIZER_BYTES_PER_PARAMETER * spec.parameters
              + batch_size * work * ACTIVATION_BYTES_PER_MAC)
    return CostEstimate(
        variant=spec.name, image_size_px=size, multiply_adds=work,
        features_seconds=num_images * work / throughput.infer_macs_per_second,
        fine_tune_seconds_per_epoch=num_train * work / throughput.train_macs_per_second,
        memory_bytes=memory)
