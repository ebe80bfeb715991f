"""The "new training run" form of the Train page: the data summary, the model choice with its
cost estimates, the starting weights, the epochs and the expert settings; returns one
TrainConfig.

The form keeps the project's last settings (``engine.training.settings``): its widgets are
seeded from them once per browser session, and every valid form is stored again, so a
refresh, a restart or the end of a run shows the same settings.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pandas as pd
import streamlit as st

from engine.errors import EngineError
from engine.labeling.split import split_summary
from engine.training import estimates
from engine.training.backends import requested_backend
from engine.training.config import Head, HeadFit, TrainConfig
from engine.training.settings import TrainSettings, load_train_settings, save_train_settings
from engine.training.variants import VARIANTS
from engine.workspace import Workspace
from ui.errors import show_error
from ui.train import weights as weights_view
from ui.train.expert import BACKEND_NAMES, backend_options, render_expert

KEY = "train_form_"           # prefix of this form's widget keys
NATIVE = "native"
DEFAULTS = TrainConfig()
FAMILY_NAMES = {"efficientnet": "EfficientNet", "mobilenet_v2": "MobileNetV2",
                "mobilenet": "MobileNet", "inception_v3": "InceptionV3", "xception": "Xception"}
# Widget key suffix -> TrainConfig field, for the widgets whose value is the field's value.
PLAIN_FIELDS = {"variant": "variant", "epochs": "epochs", "fine_epochs": "fine_tune_epochs",
                "blocks": "fine_tune_blocks", "augment": "augment", "augment1": "augment_phase1",
                "batch": "batch_size", "optimizer": "optimizer", "lr": "learning_rate",
                "patience": "patience", "stop_patience": "stop_patience",
                "threshold": "threshold", "factor": "factor", "dwell": "dwell",
                "early": "early_stopping", "class_weights": "class_weights", "seed": "seed",
                "smoothing": "label_smoothing", "head": "head", "pooling": "pooling",
                "dropout": "dropout", "backend": "backend"}

SUMMARY_HEADINGS = {"class": "Class", "train": "Training", "val": "Validation",
                    "test": "Test", "unassigned": "No split yet", "total": "Total"}


def render_split_summary(workspace: Workspace) -> pd.DataFrame:
    """Show class x split counts; returns the summary (empty when nothing is labeled)."""
    summary = split_summary(workspace)
    if summary.empty:
        st.warning("No labeled images yet. Import photos on the Data page and label them on the "
                   "Label page; training needs at least two classes.")
        return summary
    totals = summary[["train", "val", "test", "unassigned", "total"]].sum()
    table = pd.concat([summary, pd.DataFrame([{"class": "All", **totals}])])
    st.dataframe(table.rename(columns=SUMMARY_HEADINGS), hide_index=True, key=f"{KEY}split")
    if totals["unassigned"]:
        st.info(f"{totals['unassigned']} labeled images have no split yet; training assigns them "
                "(stratified 80/10/10 unless you changed the ratios on the Label page).")
    return summary


@st.cache_resource(show_spinner=False)
def expected_device(backend_choice: str = "auto") -> tuple[str, str]:
    """(plain words, expert detail) of where a worker will train with the form's backend
    choice: a GPU when nvidia-smi lists one, else the CPU, with the Keras backend and the
    precision it will use."""
    try:
        backend = requested_backend(backend_choice).value
    except EngineError:                 # a KERAS_BACKEND the app cannot train with
        backend = os.environ.get("KERAS_BACKEND", "")
    backend_name = BACKEND_NAMES.get(backend, backend)
    gpus: list[str] = []
    if shutil.which("nvidia-smi"):
        try:
            output = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=10).stdout
            gpus = [name.strip() for name in output.split("\n") if name.strip()]
        except (OSError, subprocess.SubprocessError):
            gpus = []
    if gpus:
        count = f" x{len(gpus)}" if len(gpus) > 1 else ""
        return (f"graphics card ({gpus[0]}{count}, {backend_name})",
                f"Device: GPU {gpus[0]}{count}. Backend: {backend}. Precision: mixed "
                "(float16 compute, float32 weights), unless set otherwise.")
    return (f"CPU ({backend_name})",
            f"Device: CPU, {os.cpu_count()} cores; no GPU found. Backend: {backend}. "
            "Precision: float32.")


def chosen_backend() -> str:
    """The form's "Training engine" choice (``auto`` before the form is shown)."""
    return str(st.session_state.get(f"{KEY}backend", "auto"))


def seed_widgets(workspace: Workspace) -> TrainSettings:
    """Put the project's stored settings into every form widget not yet in this session."""
    settings = load_train_settings(workspace)
    values = settings.values
    state = st.session_state
    for suffix, field in PLAIN_FIELDS.items():
        value = values[field]
        if isinstance(getattr(DEFAULTS, field), float):
            value = float(value)     # a number box refuses an int where its range is float
        state.setdefault(f"{KEY}{suffix}", value)
    state.setdefault(f"{KEY}fine_lr", float(values["fine_tune_learning_rate"] or 0.0))
    state.setdefault(f"{KEY}gradient", values.get("head_fit") == HeadFit.GRADIENT.value)
    state.setdefault(f"{KEY}size", values["image_size_px"] or NATIVE)
    if state[f"{KEY}backend"] not in backend_options():   # stored, then uninstalled
        state[f"{KEY}backend"] = "auto"
    if not settings.is_stored:
        kind = weights_view.default_choice(values["variant"], values["image_size_px"])
    else:
        kind = settings.weights_kind
    state.setdefault(weights_view.CHOICE, kind)
    if settings.weights_kind == "file":
        state.setdefault(weights_view.PATH, values["weights"])
    return settings


def variant_table(workspace: Workspace, summary: pd.DataFrame, variant: str,
                  image_size_px: int | None, batch_size: int
                  ) -> tuple[pd.DataFrame, estimates.Throughput]:
    """One row per model of the chosen variant's family, with its size and cost estimates."""
    throughput = estimates.measured_throughput(workspace)
    num_images = int(summary["total"].sum()) if not summary.empty else 0
    num_train = int(summary["train"].sum() + 0.8 * summary["unassigned"].sum()) \
        if not summary.empty else 0
    family = VARIANTS[variant].family
    rows = []
    for name, spec in VARIANTS.items():
        if spec.family != family:
            continue
        size = image_size_px or spec.native_size_px
        cost = estimates.estimate_cost(name, max(size, spec.min_size_px), num_train, num_images,
                                       batch_size, throughput)
        rows.append({"Model": name + (" ◀ chosen" if name == variant else ""),
                     "Made for (px)": spec.native_size_px,
                     "Size (million parameters)": spec.parameters / 1e6,
                     "Preparing, once (s)": cost.features_seconds,
                     "Each fine-tuning epoch (s)": cost.fine_tune_seconds_per_epoch,
                     "Memory (GB)": cost.memory_bytes / 1e9})
    return pd.DataFrame(rows), throughput


def size_label(size: int | str, native_size_px: int, relative_speed: float) -> str:
    """'as made (224 px)', '128 px · about 3× faster', '300 px · about 1.8× slower'."""
    if size == NATIVE:
        return f"as made ({native_size_px} px)"
    if relative_speed >= 1:
        return f"{size} px · about {relative_speed:.2g}× faster"
    return f"{size} px · about {1 / relative_speed:.2g}× slower"


def _render_model_choice(workspace: Workspace, summary: pd.DataFrame) -> tuple[str, int | None]:
    left, right = st.columns(2)
    variant = left.selectbox("Model", list(VARIANTS), key=f"{KEY}variant",
                             help="The network that learns your classes. B0 is small and fast; "
                                  "bigger ones need more time and memory. MobileNet models are "
                                  "the fastest.")
    spec = VARIANTS[variant]
    choices = estimates.size_choices(variant)
    options = [NATIVE if choice.is_native else choice.image_size_px for choice in choices]
    speeds = {option: choice.relative_speed for option, choice in zip(options, choices)}
    if st.session_state.get(f"{KEY}size") not in options:
        st.session_state[f"{KEY}size"] = NATIVE      # the new model cannot take the old size
    size_choice = right.select_slider(
        "Photo size", options, key=f"{KEY}size",
        format_func=lambda size: size_label(size, spec.native_size_px, speeds[size]),
        help="Photos are resized to this square side. The size the model was made for is the "
             "one it was pretrained at; smaller trains faster, larger can see finer detail. "
             "The speeds are estimates: the work per photo grows with its pixel count (half "
             "the side, about a quarter of the work), and every photo also costs a fixed time "
             "to read, so the real gain is often smaller.")
    image_size_px = None if size_choice == NATIVE else int(size_choice)
    table, throughput = variant_table(workspace, summary, variant, image_size_px,
                                      int(st.session_state.get(f"{KEY}batch", 32)))
    st.dataframe(table, hide_index=True, key=f"{KEY}variants", column_config={
        "Model": st.column_config.TextColumn(width="medium"),   # "MobileNetV2-1.0 ◀ chosen"
        "Size (million parameters)": st.column_config.NumberColumn(format="%.1f"),
        "Preparing, once (s)": st.column_config.NumberColumn(
            format="%.1f", help="Step 1 first runs every photo through the model once."),
        "Each fine-tuning epoch (s)": st.column_config.NumberColumn(format="%.1f"),
        "Memory (GB)": st.column_config.NumberColumn(format="%.1f")})
    st.caption(f"The {FAMILY_NAMES.get(spec.family, spec.family)} models, with rough times on "
               "this computer for your photos: a guide to compare models and sizes (minutes or "
               "hours?), not a promise.")
    with st.expander("Expert details: how the estimates are made"):
        st.write(
            f"Estimates at {f'{image_size_px} px' if image_size_px else 'each native size'}: "
            "multiply-adds per image (published figures, scaled by the pixel count) × images ÷ "
            f"this machine's speed, {throughput.source}. Phase 1 computes the backbone features "
            "once, then each head epoch takes about a second. Memory: TensorFlow + 16 bytes per "
            "parameter + the batch's activations. Small images carry fixed per-step costs, so "
            "figures measured at one size drift at another.")
    return variant, image_size_px


def step_one_solved() -> bool:
    """The form's settings solve step 1 (``TrainConfig.solves_head``, from the widgets' state)."""
    state = st.session_state
    return (not state.get(f"{KEY}gradient", False)
            and state.get(f"{KEY}head", DEFAULTS.head.value) == Head.SIMPLE.value
            and not state.get(f"{KEY}augment1", False))


def render_form(workspace: Workspace, summary: pd.DataFrame) -> TrainConfig | None:
    """Render the settings; returns the TrainConfig they describe (None when not usable).

    A usable form is stored as this project's settings."""
    settings = seed_widgets(workspace)
    variant, image_size_px = _render_model_choice(workspace, summary)
    weights = weights_view.render_weights(workspace, variant, image_size_px, summary)
    epochs_col, fine_col = st.columns(2)
    if step_one_solved():
        epochs_col.markdown("**Step 1 (seconds)**")
        epochs_col.caption("The new last layer is fitted exactly to your training photos: no "
                           "epochs to choose. (Expert settings can train it epoch by epoch.)")
        # The epochs box is not drawn, so Streamlit forgets its value: keep the stored one
        # (it comes back if step 1 goes back to epochs).
        epochs = max(1, int(settings.values["epochs"]))
    else:
        epochs = epochs_col.number_input(
            "Epochs, step 1 (quick)", 0, 1000, key=f"{KEY}epochs",
            help="An epoch is one pass over all training photos. Step 1 keeps the pretrained "
                 "model fixed and trains only its new last layers (the head): fast.")
    fine_tune_epochs = fine_col.number_input(
        "Epochs, step 2: fine-tuning (slower)", 0, 1000, key=f"{KEY}fine_epochs",
        help="After step 1, the top of the model learns too (fine-tuning). 0 = skip step 2. "
             "You can also press 'Fine-tune now' while step 1 runs.")
    aug_col, aug1_col = st.columns(2)
    augment = aug_col.toggle("Vary the photos while fine-tuning", key=f"{KEY}augment",
                             help="Random flips, small turns, zoom, shifts and contrast "
                                  "(augmentation), so the model does not learn the photos by "
                                  "heart.")
    augment_phase1 = aug1_col.toggle("Vary them in step 1 too (slower)", key=f"{KEY}augment1",
                                     help="Runs the whole model on every step instead of reusing "
                                          "its first pass, so step 1 then trains epoch by "
                                          "epoch instead of being fitted exactly.")
    expert = render_expert()
    if weights is None:
        return None
    if int(epochs) + int(fine_tune_epochs) == 0:
        st.error("Both epoch counts are 0, so nothing would be trained: set at least one to 1 "
                 "or more.")
        return None
    fields: dict[str, Any] = {"variant": variant, "weights": weights,
                              "image_size_px": image_size_px, "epochs": int(epochs),
                              "fine_tune_epochs": int(fine_tune_epochs), "augment": augment,
                              "augment_phase1": augment_phase1, **expert}
    fields["fine_tune_blocks"] = int(fields["fine_tune_blocks"])
    try:
        config = TrainConfig(**fields)
    except EngineError as err:
        show_error(err)
        return None
    save_train_settings(workspace, config)
    return config
