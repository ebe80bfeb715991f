"""The "new training run" form of the Train page: split summary, variant table, weights,
epochs, fine-tuning, augmentation and the advanced settings; returns one TrainConfig."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import streamlit as st

from engine.training import estimates
from engine.training.config import ClassWeights, Head, Optimizer, Pooling, TrainConfig
from engine.errors import EngineError
from engine.labeling.split import split_summary
from engine.training.variants import VARIANTS, keras_cache_dir, offline_message
from engine.workspace import Workspace

KEY = "train_form_"           # prefix of this form's widget keys
SIZE_CHOICES = (32, 64, 96, 128, 160, 192, 224, 240, 260, 300, 380, 456, 528, 600)
WEIGHTS_CHOICES = {"imagenet": "ImageNet (pretrained, recommended)",
                   "file": "A weights file (upload or path)",
                   "none": "None: train from scratch"}
DEFAULTS = TrainConfig()      # the one source of default values


def render_split_summary(workspace: Workspace) -> pd.DataFrame:
    """Show class x split counts; returns the summary (empty when nothing is labeled)."""
    summary = split_summary(workspace)
    if summary.empty:
        st.warning("No labeled images yet. Import photos on the Data page and label them on the "
                   "Label page; training needs at least two classes.")
        return summary
    totals = summary[["train", "val", "test", "unassigned", "total"]].sum()
    st.dataframe(pd.concat([summary, pd.DataFrame([{"class": "All", **totals}])]),
                 hide_index=True, key=f"{KEY}split")
    if totals["unassigned"]:
        st.info(f"{totals['unassigned']} labeled images have no split yet; training assigns them "
                "(stratified 80/10/10 unless you changed the ratios on the Label page).")
    return summary


def imagenet_available(variant: str, image_size_px: int | None) -> bool:
    """True when Keras's cache already holds the ImageNet file (no download needed)."""
    spec = VARIANTS[variant]
    return (keras_cache_dir() / spec.keras_weights_file(image_size_px)).is_file()


@st.cache_resource(show_spinner=False)
def expected_device() -> str:
    """The device a worker will train on: a GPU when nvidia-smi lists one, else the CPU."""
    import os

    if shutil.which("nvidia-smi"):
        try:
            names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                   capture_output=True, text=True, timeout=10).stdout.split("\n")
            names = [name.strip() for name in names if name.strip()]
            if names:
                return f"GPU: {names[0]}" + (f" (x{len(names)})" if len(names) > 1 else "")
        except (OSError, subprocess.SubprocessError):
            pass
    return f"CPU ({os.cpu_count()} cores; no GPU found)"


def variant_table(workspace: Workspace, summary: pd.DataFrame, image_size_px: int | None,
                  batch_size: int) -> tuple[pd.DataFrame, estimates.Throughput]:
    """One row per variant with native size, parameters and the cost estimates."""
    throughput = estimates.measured_throughput(workspace)
    num_images = int(summary["total"].sum()) if not summary.empty else 0
    num_train = int(summary["train"].sum() + 0.8 * summary["unassigned"].sum()) \
        if not summary.empty else 0
    rows = []
    for name, spec in VARIANTS.items():
        size = image_size_px or spec.native_size_px
        cost = estimates.estimate_cost(name, max(size, spec.min_size_px), num_train, num_images,
                                       batch_size, throughput)
        rows.append({"Variant": name, "Native px": spec.native_size_px,
                     "Parameters (M)": spec.parameters / 1e6,
                     "Features, once (s)": cost.features_seconds,
                     "Fine-tune s / epoch": cost.fine_tune_seconds_per_epoch,
                     "Memory (GB)": cost.memory_bytes / 1e9})
    return pd.DataFrame(rows), throughput


def render_form(workspace: Workspace, summary: pd.DataFrame) -> TrainConfig | None:
    """Render the settings; returns the TrainConfig they describe (None when invalid)."""
    left, right = st.columns(2)
    variant = left.selectbox("Backbone (variant)", list(VARIANTS),
                             index=list(VARIANTS).index(DEFAULTS.variant), key=f"{KEY}variant",
                             help="B0 is small and fast; bigger variants need more time and memory.")
    spec = VARIANTS[variant]
    native_label = f"native ({spec.native_size_px} px)"
    size_options = [native_label, *[s for s in SIZE_CHOICES if s >= spec.min_size_px]]
    size_choice = right.select_slider(
        "Image size", size_options, value=native_label, key=f"{KEY}size",
        help="Images are resized to this square side. Smaller trains much faster; the native "
             "size is what the backbone was pretrained at.")
    image_size_px = None if size_choice == native_label else int(size_choice)
    batch_size = st.session_state.get(f"{KEY}batch", DEFAULTS.batch_size)

    table, throughput = variant_table(workspace, summary, image_size_px, batch_size)
    st.dataframe(table, hide_index=True, key=f"{KEY}variants", height=280, column_config={
        "Parameters (M)": st.column_config.NumberColumn(format="%.1f"),
        "Features, once (s)": st.column_config.NumberColumn(format="%.1f"),
        "Fine-tune s / epoch": st.column_config.NumberColumn(format="%.1f"),
        "Memory (GB)": st.column_config.NumberColumn(format="%.1f")})
    st.caption(
        f"Estimates at {f'{image_size_px} px' if image_size_px else 'each native size'}: "
        "multiply-adds per image (published figures, scaled by the pixel count) × images ÷ this "
        f"machine's speed, {throughput.source}. Phase 1 computes the backbone "
        "features once, then each head epoch takes about a second; fine-tuning epochs cost the "
        "column's time. Memory: TensorFlow + 16 bytes per parameter + the batch's activations. "
        "A rough guide to compare variants and sizes (minutes or hours?), not a promise: small "
        "images carry fixed per-step costs, so figures measured at one size drift at another.")

    weights = _render_weights(workspace, variant, image_size_px)
    epochs_col, fine_col, blocks_col = st.columns(3)
    epochs = epochs_col.number_input("Epochs, phase 1 (head only)", 0, 1000, DEFAULTS.epochs,
                                     key=f"{KEY}epochs",
                                     help="The backbone stays frozen; only the new head learns.")
    fine_tune_epochs = fine_col.number_input(
        "Fine-tuning epochs, phase 2", 0, 1000, DEFAULTS.fine_tune_epochs, key=f"{KEY}fine_epochs",
        help="After phase 1, unfreeze the top of the backbone and train on. 0 = no fine-tuning. "
             "You can also press 'Fine-tune now' while phase 1 runs.")
    fine_tune_blocks = blocks_col.number_input(
        "Blocks to unfreeze", 0, 100, DEFAULTS.fine_tune_blocks, key=f"{KEY}blocks",
        help="How many of the backbone's top blocks learn in phase 2 (0 = all). Whole blocks are "
             "unfrozen; BatchNormalization layers stay frozen.")
    aug_col, aug1_col = st.columns(2)
    augment = aug_col.toggle("Augment images while fine-tuning", DEFAULTS.augment, key=f"{KEY}augment",
                             help="Random flips, small rotations, zoom, shifts and contrast.")
    augment_phase1 = aug1_col.toggle("Augment in phase 1 too (slower)", DEFAULTS.augment_phase1,
                                     key=f"{KEY}augment1",
                                     help="Needs the backbone on every step instead of cached features.")
    advanced = _render_advanced()
    try:
        return TrainConfig(variant=variant, weights=weights, image_size_px=image_size_px,
                           epochs=int(epochs), fine_tune_epochs=int(fine_tune_epochs),
                           fine_tune_blocks=int(fine_tune_blocks), augment=augment,
                           augment_phase1=augment_phase1, **advanced)
    except EngineError as err:
        st.error(err.user_message)
        return None


def _render_weights(workspace: Workspace, variant: str, image_size_px: int | None) -> str:
    spec = VARIANTS[variant]
    has_imagenet = imagenet_available(variant, image_size_px)
    default = "imagenet" if has_imagenet else "none"
    choice = st.radio("Starting weights", list(WEIGHTS_CHOICES), format_func=WEIGHTS_CHOICES.get,
                      index=list(WEIGHTS_CHOICES).index(default), key=f"{KEY}weights",
                      horizontal=True)
    if choice == "imagenet" and not has_imagenet:
        st.warning(offline_message(spec, image_size_px))
    if not has_imagenet:
        st.caption(f"ImageNet weights for {variant} are not on this machine "
                   f"({keras_cache_dir() / spec.keras_weights_file(image_size_px)}), and this "
                   "machine cannot download them. Pretrained weights learn from far fewer photos; "
                   "from scratch needs many more images and epochs.")
    if choice != "file":
        return choice
    uploaded = st.file_uploader(f"Weights file for {variant} (.h5)", type=["h5"],
                                key=f"{KEY}weights_upload")
    typed = st.text_input("…or the path of the file on this computer", key=f"{KEY}weights_path",
                          placeholder=f"/path/to/{spec.keras_weights_file(image_size_px)}")
    try:
        if uploaded is not None:
            saved = _save_upload(workspace, uploaded)
            st.caption(f"Saved to {saved}; training loads it into {variant}.")
            return str(saved)
        if typed.strip():
            if not Path(typed.strip()).expanduser().is_file():
                st.error(f"There is no file {typed.strip()}. Check the path.")
                return "none"
            return typed.strip()
    except EngineError as err:
        st.error(err.user_message)
    st.info("Choose a weights file, or pick another option.")
    return "none"


def _save_upload(workspace: Workspace, uploaded) -> Path:
    """Keep an uploaded weights file in the workspace cache (once per upload)."""
    target = workspace.cache_dir / "weights" / Path(uploaded.name).name
    if not target.is_file() or target.stat().st_size != uploaded.size:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(uploaded.getvalue())
        partial.replace(target)
    return target


def _render_advanced() -> dict:
    with st.expander("Advanced settings"):
        col1, col2, col3 = st.columns(3)
        values = {
            "batch_size": col1.number_input("Batch size", 1, 1024, DEFAULTS.batch_size, key=f"{KEY}batch"),
            "optimizer": col2.selectbox("Optimizer", [o.value for o in Optimizer],
                                        index=[o.value for o in Optimizer].index(DEFAULTS.optimizer.value),
                                        key=f"{KEY}optimizer"),
            "learning_rate": col3.number_input("Learning rate", 1e-6, 1.0, DEFAULTS.learning_rate,
                                               format="%.5f", step=1e-4, key=f"{KEY}lr"),
        }
        st.markdown("**Learning-rate controller** (the 000 seed's LRA)")
        col1, col2, col3, col4 = st.columns(4)
        values |= {
            "patience": col1.number_input("Patience (epochs)", 1, 1000, DEFAULTS.patience, key=f"{KEY}patience",
                                          help="Epochs without improvement before the LR is reduced."),
            "stop_patience": col2.number_input("Stop patience", 1, 1000, DEFAULTS.stop_patience,
                                               key=f"{KEY}stop_patience",
                                               help="LR reductions without improvement before training stops."),
            "threshold": col3.number_input("Threshold", 0.0, 1.0, DEFAULTS.threshold, step=0.05,
                                           key=f"{KEY}threshold",
                                           help="Above this training accuracy the controller watches validation loss."),
            "factor": col4.number_input("Factor", 0.01, 0.99, DEFAULTS.factor, step=0.05, key=f"{KEY}factor",
                                        help="LR multiplier on a plateau."),
        }
        col1, col2, col3, col4 = st.columns(4)
        values |= {
            "dwell": col1.toggle("Dwell", DEFAULTS.dwell, key=f"{KEY}dwell",
                                 help="On a plateau, go back to the best weights before continuing."),
            "early_stopping": col2.toggle("Plain early stopping", DEFAULTS.early_stopping,
                                          key=f"{KEY}early", help="Instead of the LR controller."),
            "class_weights": col3.selectbox("Class weights", [c.value for c in ClassWeights],
                                            key=f"{KEY}class_weights",
                                            help="auto = balance rare classes by inverse frequency."),
            "seed": col4.number_input("Seed", 0, 2**31 - 1, DEFAULTS.seed, key=f"{KEY}seed"),
        }
        col1, col2 = st.columns(2)
        fine_lr = col1.number_input(
            "Fine-tuning learning rate (0 = learning rate ÷ 10)", 0.0, 1.0, 0.0, format="%.6f",
            step=1e-5, key=f"{KEY}fine_lr")
        values |= {
            "fine_tune_learning_rate": fine_lr or None,
            "label_smoothing": col2.number_input("Label smoothing", 0.0, 0.5, DEFAULTS.label_smoothing,
                                                 step=0.05, key=f"{KEY}smoothing",
                                                 help="Softens the targets; can help with noisy labels."),
        }
        col1, col2, col3 = st.columns(3)
        values |= {
            "head": col1.selectbox("Head", [h.value for h in Head], key=f"{KEY}head"),
            "pooling": col2.selectbox("Pooling", [p.value for p in Pooling], key=f"{KEY}pooling"),
            "dropout": col3.number_input("Dropout", 0.0, 0.9, DEFAULTS.dropout, step=0.05, key=f"{KEY}dropout"),
        }
    return values

