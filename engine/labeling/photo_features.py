"""Features of every photo for labeling by confirming, computed in the background.

The labeling model looks at each photo through an ImageNet backbone once: the Train page's
model when its weights are on this computer (a weights file, or Keras's ImageNet file), else
the smallest backbone whose weights are. The pooled vectors go into the feature cache
training uses (:mod:`engine.training.features`, same variant, size, pooling and weights), so
step 1 of a later run with those settings reuses them.

``python -m engine photo-features --workspace WS`` (started by :func:`start_feature_job`,
watched with :mod:`engine.processes` like model-assisted labeling) writes, in
``workspace/cache/labeling/``:

- ``features.json``: {"state": running|done|failed|cancelled|unavailable, "done", "total",
  "error", "pid", "started_at", "num_photos", "settings", "backbone": {...},
  "cache_name"};
- ``<cache_name>.npz``: the features of every usable photo in one file (``sha256``,
  ``features``) plus the standardization of :class:`engine.linear.FeatureSpace` and the
  features through it (``projected``), which the refit after every page reads in milliseconds;
- ``features.log``: the process's output; ``cancel``: present while a cancel is asked.

Without usable weights the state is ``unavailable`` and ``error`` says why in plain words.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import JobError, WeightsUnavailableError
from engine.linear import FeatureSpace
from engine.processes import engine_command, exclusive_lock, is_process_of, start_detached
from engine.workspace import Workspace

START_GRACE_SECONDS = 60.0
BATCH_SIZE = 32
_PHOTOS_QUERY = """SELECT id AS image_id, sha256, normalized_path FROM images
WHERE status = 'ok' AND normalized_path IS NOT NULL ORDER BY id"""


@dataclass(frozen=True)
class LabelingBackbone:
    """Which backbone the labeling model uses: variant, weights ('imagenet', 'none' or a
    file), square input side and pooling (as in TrainConfig)."""
    variant: str
    weights: str
    image_size_px: int
    pooling: str


def folder(workspace: Workspace) -> Path:
    path = workspace.cache_dir / "labeling"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _state_path(workspace: Workspace) -> Path:
    return folder(workspace) / "features.json"


def _cancel_path(workspace: Workspace) -> Path:
    return folder(workspace) / "cancel"


def _write_state(workspace: Workspace, state: dict[str, Any]) -> None:
    path = _state_path(workspace)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(state), encoding="utf-8")
    temporary.replace(path)


def read_state(workspace: Workspace) -> dict[str, Any]:
    """The feature job's last state ({} when none ran); a 'running' job whose process is gone
    reads as failed."""
    try:
        state = json.loads(_state_path(workspace).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if state.get("state") == "running":
        pid = state.get("pid")
        alive = (is_process_of(pid, "photo-features") if pid is not None else
                 time.time() - float(state.get("started_at") or 0) < START_GRACE_SECONDS)
        if not alive:
            state = {**state, "state": "failed", "error": "the feature process stopped"}
    return state


def photos(workspace: Workspace) -> tuple[list[int], list[str], list[str]]:
    """(image ids, sha256s, absolute normalized files) of every usable photo."""
    with workspace.connect() as connection:
        rows = connection.execute(_PHOTOS_QUERY).fetchall()
    return ([int(r["image_id"]) for r in rows], [r["sha256"] for r in rows],
            [str(workspace.path(r["normalized_path"])) for r in rows])


def _train_settings_text(workspace: Workspace) -> str:
    from engine.training.settings import SETTINGS_KEY
    return workspace.get_setting(SETTINGS_KEY) or ""


def needs_update(workspace: Workspace) -> bool:
    """True when features should be (re)computed now: never computed, photos were imported
    since, or the Train page's model changed. A running or cancelled job does not count."""
    state = read_state(workspace)
    if state.get("state") in ("running", "cancelled"):
        return False
    if state.get("state") == "failed":
        return False   # the page shows the error and a button to try again
    num_photos = len(photos(workspace)[0])
    if num_photos == 0 and not state:
        return False   # nothing imported yet
    return (not state or state.get("num_photos") != num_photos
            or state.get("settings") != _train_settings_text(workspace))


def choose_backbone(workspace: Workspace, variant: str | None = None,
                    weights: str | None = None,
                    image_size_px: int | None = None) -> LabelingBackbone:
    """The labeling model's backbone (see the module docstring).

    Args:
        variant, weights, image_size_px: explicit choice (CLI); weights may be 'none' there.
    Raises:
        WeightsUnavailableError: no backbone has weights on this computer.
    """
    from engine.training.settings import load_train_settings, weights_dir
    from engine.training.variants import VARIANTS, get_variant, keras_cache_dir

    values = load_train_settings(workspace).values
    pooling = str(values.get("pooling", "max"))
    if weights is not None or variant is not None:
        spec = get_variant(variant or values["variant"])
        chosen = weights or values["weights"]
        if chosen not in ("imagenet", "none") and not Path(chosen).is_file():
            raise WeightsUnavailableError(f"The weights file {chosen} does not exist.")
        return LabelingBackbone(spec.name, chosen, image_size_px or spec.native_size_px, pooling)
    spec = get_variant(values["variant"])
    size = int(values.get("image_size_px") or spec.native_size_px)
    if values["weights"] not in ("imagenet", "none") and Path(values["weights"]).is_file():
        return LabelingBackbone(spec.name, values["weights"], size, pooling)
    if values["weights"] == "imagenet" and (keras_cache_dir() / spec.keras_weights_file(size)).is_file():
        return LabelingBackbone(spec.name, "imagenet", size, pooling)
    # The computer's weights folder (beside the projects; also the app's default root for a
    # workspace opened directly), then the project's own folder of older versions.
    from engine.projects import resolve_projects_root, weights_library_dir
    folders = (weights_library_dir(workspace.root.parent),
               weights_library_dir(resolve_projects_root()), weights_dir(workspace))
    for other in sorted(VARIANTS.values(), key=lambda s: s.parameters):
        name = other.keras_weights_file()
        for folder in folders:
            if (folder / name).is_file():
                return LabelingBackbone(other.name, str(folder / name), other.native_size_px,
                                        pooling)
        if (keras_cache_dir() / name).is_file():
            return LabelingBackbone(other.name, "imagenet", other.native_size_px, pooling)
    from engine.training.variants import weights_source_reachable
    if values["weights"] == "imagenet" and weights_source_reachable():
        return LabelingBackbone(spec.name, "imagenet", size, pooling)   # Keras downloads it
    raise WeightsUnavailableError(
        "Suggestions need a pretrained model, and none is on this computer (it seems to be "
        "offline). Labeling works as usual. To get suggestions, choose a weights file on the "
        "Train page (for example mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5).")


def _feature_model(backbone: LabelingBackbone) -> tuple[Any, str]:
    """(image -> pooled features model, its weights fingerprint) built as training builds it."""
    import keras

    from engine.training.features import weights_fingerprint
    from engine.training.variants import build_backbone_checked, get_variant

    if backbone.weights == "none":
        keras.utils.set_random_seed(0)   # the same random backbone on every call
    size = backbone.image_size_px
    inputs = keras.Input(shape=(size, size, 3), name="image")
    net = build_backbone_checked(get_variant(backbone.variant), size, backbone.weights,
                                 inputs=inputs)
    pool = (keras.layers.GlobalMaxPooling2D if backbone.pooling == "max"
            else keras.layers.GlobalAveragePooling2D)
    pooled = pool(name="pool", dtype="float32")(net.output)
    return keras.Model(inputs, pooled, name="features"), weights_fingerprint(net)


def matrix_path(workspace: Workspace, cache_name: str) -> Path:
    return folder(workspace) / f"{cache_name}.npz"


def compute_photo_features(workspace: Workspace, backbone: LabelingBackbone, *,
                           progress: Any = None, should_stop: Any = None) -> str | None:
    """Features of every usable photo (cached ones reused) into the feature cache and the
    one-file matrix. Returns the cache name, or None when stopped."""
    from engine.training.features import decode_and_compute, feature_cache_dir

    _, shas, files = photos(workspace)
    model, fingerprint = _feature_model(backbone)
    cache = feature_cache_dir(workspace, backbone.variant, backbone.image_size_px,
                              backbone.pooling, fingerprint)
    result = None
    if shas:
        result, _, _ = decode_and_compute(workspace, model, cache, shas, files,
                                          backbone.image_size_px, BATCH_SIZE,
                                          progress=progress, should_stop=should_stop)
        if result is None:
            return None
    features = result.features if result is not None else np.zeros((0, 1), np.float32)
    target = matrix_path(workspace, cache.name)
    temporary = target.with_name(f".{target.stem}.{os.getpid()}.tmp.npz")
    np.savez(temporary, sha256=np.asarray(shas), features=features, **space_arrays(features))
    temporary.replace(target)
    return cache.name


def space_arrays(features: np.ndarray) -> dict[str, np.ndarray]:
    """The standardization of these features and the features through it ('projected'),
    stored with the matrix so a refit does not redo them."""
    if len(features) < 2:
        return {}
    space = FeatureSpace.fit(features)
    return {**space.to_arrays(), "projected": space.transform(features)}


def run_feature_job(workspace: Workspace, variant: str | None = None,
                    weights: str | None = None, image_size_px: int | None = None) -> dict[str, Any]:
    """Body of the background process (and of ``label-next``): choose, compute, record."""
    _cancel_path(workspace).unlink(missing_ok=True)
    base = {"pid": os.getpid(), "started_at": time.time(), "error": "", "done": 0, "total": 0,
            "num_photos": len(photos(workspace)[0]),
            "settings": _train_settings_text(workspace)}
    try:
        backbone = choose_backbone(workspace, variant, weights, image_size_px)
    except WeightsUnavailableError as err:
        state = {**base, "state": "unavailable", "error": err.user_message}
        _write_state(workspace, state)
        return state
    base["backbone"] = asdict(backbone)
    _write_state(workspace, {**base, "state": "running"})

    def progress(done: int, total: int) -> None:
        _write_state(workspace, {**base, "state": "running", "done": done, "total": total})

    try:
        name = compute_photo_features(workspace, backbone, progress=progress,
                                      should_stop=_cancel_path(workspace).is_file)
    except Exception as err:
        state = {**base, "state": "failed",
                 "error": getattr(err, "user_message", None) or f"{type(err).__name__}: {err}"}
        _write_state(workspace, state)
        raise
    state = ({**base, "state": "cancelled"} if name is None else
             {**base, "state": "done", "cache_name": name, "done": base["num_photos"],
              "total": base["num_photos"]})
    _cancel_path(workspace).unlink(missing_ok=True)
    _write_state(workspace, state)
    return state


def start_feature_job(workspace: Workspace) -> int | None:
    """Start the background feature job unless one runs. Returns its pid (None: running).

    Raises:
        JobError: the process cannot start.
    """
    with exclusive_lock(folder(workspace) / ".start.lock"):
        previous = read_state(workspace)
        if previous.get("state") == "running":
            return None
        _cancel_path(workspace).unlink(missing_ok=True)
        _write_state(workspace, {**previous, "state": "running", "pid": None, "done": 0,
                                 "total": 0, "error": "", "started_at": time.time()})
        command = engine_command("photo-features", "--workspace", str(workspace.root))
        try:
            return start_detached(command, folder(workspace) / "features.log")
        except OSError as err:
            _write_state(workspace, {**previous, "state": "failed",
                                     "error": f"the feature process did not start: {err}"})
            raise JobError(f"Preparing suggestions could not start ({err.strerror}). Try "
                           "again; if it keeps failing, restart the app.") from err


def cancel_feature_job(workspace: Workspace) -> None:
    """Ask the running feature job to stop after its current batch (what it computed stays
    cached)."""
    _cancel_path(workspace).touch()


def load_matrix(workspace: Workspace, cache_name: str) -> dict[str, np.ndarray] | None:
    """The one-file features of a finished job (None when missing)."""
    path = matrix_path(workspace, cache_name)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        keys = ["sha256", "projected"] if "projected" in data.files else data.files
        return {key: data[key] for key in keys}
