"""Which Keras backend trains: TensorFlow (the default), JAX or PyTorch.

Keras 3 reads ``KERAS_BACKEND`` once, when ``keras`` is first imported, so the choice must be
made before anything imports Keras: :func:`select_backend` sets the variable, and refuses a
backend that is not installed or a switch after Keras has loaded with another one (the
process has to start again for that; the worker and the CLI each start fresh).
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from engine.errors import ConfigError
from engine.training.config import Backend

DEFAULT_BACKEND = Backend.TENSORFLOW
# What to install for each backend's GPU build (advice; the README says more per OS).
INSTALL_HINTS = {
    Backend.TENSORFLOW: "pip install tensorflow (GPU on Linux: pip install 'tensorflow[and-cuda]')",
    Backend.JAX: "pip install jax (GPU on Linux: pip install 'jax[cuda12]')",
    Backend.TORCH: "pip install torch (the PyTorch site lists the CUDA, ROCm and CPU builds)",
}


def installed_backends() -> tuple[str, ...]:
    """The backends whose package is importable here, in the order tensorflow, jax, torch.

    Checks with ``importlib.util.find_spec``: nothing is imported, so this is fast and safe to
    call before the backend is chosen.
    """
    return tuple(member.value for member in Backend.concrete()
                 if importlib.util.find_spec(member.value) is not None)


def requested_backend(backend: Backend | str | None = None) -> Backend:
    """The backend a setting asks for: ``auto`` (or ``None``) means ``KERAS_BACKEND`` when it
    is set, else TensorFlow."""
    choice = Backend.from_str(backend or Backend.AUTO, "backend")
    if choice != Backend.AUTO:
        return choice
    from_environment = os.environ.get("KERAS_BACKEND", "").strip()
    if not from_environment:
        return DEFAULT_BACKEND
    try:
        return Backend.from_str(from_environment, "KERAS_BACKEND")
    except ConfigError as err:
        raise ConfigError(f"The KERAS_BACKEND environment variable is {from_environment!r}, "
                          "which this app cannot train with. Set it to tensorflow, jax or torch, "
                          "or unset it to use TensorFlow.") from err


def select_backend(backend: Backend | str | None = None) -> str:
    """Make ``backend`` the Keras backend of this process and return its name.

    Call before Keras is imported. Calling again with the backend already active is fine.

    Raises:
        ConfigError: the backend is not installed (the message lists the installed ones and
            how to install it), or Keras already runs here on another backend.
    """
    choice = requested_backend(backend)
    installed = installed_backends()
    if choice.value not in installed:
        raise ConfigError(
            f"The {choice.value} backend is not installed here, so training cannot use it. "
            f"Installed: {', '.join(installed) or 'none'}. Choose one of those, or install it: "
            f"{INSTALL_HINTS[choice]}.")
    if "keras" in sys.modules:
        active = active_backend()
        if active != choice.value:
            raise ConfigError(
                f"Keras is already running on {active} in this process, so it cannot switch to "
                f"{choice.value}. Start the command again with --backend {choice.value} (or "
                f"KERAS_BACKEND={choice.value}) so the choice is made before Keras loads.")
    os.environ["KERAS_BACKEND"] = choice.value
    return choice.value


def active_backend() -> str:
    """The backend Keras runs on (imports Keras, which then fixes the backend)."""
    import keras

    return str(keras.config.backend())


# JAX compiles each training, evaluation and prediction step before its first batch (on a
# CPU, seconds for a small network, a minute for EfficientNet): kept on disk, a step compiled
# once is loaded the next time the same step is built, in this run or a later process: a
# continued, resumed or repeated run of the project starts without compiling again.
JAX_CACHE_FOLDER = "jax-compiled"
JAX_CACHE_MAX_BYTES = 1 << 30   # the least recently used entries go beyond this


def cache_compiled_steps(cache_dir: Path) -> None:
    """On JAX, keep compiled steps in ``cache_dir``/jax-compiled (a project's cache folder),
    unless ``JAX_COMPILATION_CACHE_DIR`` already names a folder; every compile is kept, however
    short. JAX opens its cache once per process, at the first compile, so a process keeps the
    first folder it was given: each run's worker is a process of its own. No effect on
    TensorFlow and PyTorch."""
    if active_backend() != "jax":
        return
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(cache_dir / JAX_CACHE_FOLDER))
        jax.config.update("jax_compilation_cache_max_size", JAX_CACHE_MAX_BYTES)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
