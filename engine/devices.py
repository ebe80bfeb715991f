"""Which device trains, and the numeric policy that goes with it.

On a GPU training runs in mixed precision (float16 compute, float32 variables; the output
layer stays float32 so the softmax and the loss are exact). On a CPU it stays float32:
float16 is slower there.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceInfo:
    """The device training uses.

    Attributes:
        kind: ``"GPU"`` or ``"CPU"``.
        name: human-readable, e.g. ``"GPU: NVIDIA H100 80GB HBM3"`` or ``"CPU (2 cores)"``.
        num_gpus: number of visible GPUs.
    """

    kind: str
    name: str
    num_gpus: int


def detect_device() -> DeviceInfo:
    """The GPU TensorFlow sees (the first, when several), else the CPU."""
    import os

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return DeviceInfo(kind="CPU", name=f"CPU ({os.cpu_count()} cores)", num_gpus=0)
    for gpu in gpus:
        try:  # grow memory on demand so the app and a worker can share one card
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: keep the existing setting
            pass
    try:
        details = tf.config.experimental.get_device_details(gpus[0])
        label = details.get("device_name") or gpus[0].name
    except (RuntimeError, ValueError, KeyError):  # best-effort; differs between builds
        label = gpus[0].name
    suffix = f" (x{len(gpus)})" if len(gpus) > 1 else ""
    return DeviceInfo(kind="GPU", name=f"GPU: {label}{suffix}", num_gpus=len(gpus))


def configure_precision(device: DeviceInfo, mixed_precision: bool | None) -> str:
    """Set the global Keras dtype policy and return its name.

    Args:
        mixed_precision: ``None`` = automatic (on for a GPU), or forced on/off.
    """
    import keras

    use_mixed = device.kind == "GPU" if mixed_precision is None else mixed_precision
    policy = "mixed_float16" if use_mixed else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy
