"""The "Starting weights" part of the Train form: pretrained, a weights file, or from scratch.

It never pretends: a weights file that is not there, or pretrained weights this computer
cannot get, make the form invalid (the Train button stays disabled) with a sentence saying
what to do, instead of quietly training from scratch.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from engine.errors import EngineError
from engine.training.settings import keep_weights_file, scratch_expectation
from engine.training.variants import (VARIANTS, keras_cache_dir, offline_message,
                                      weights_source_reachable, weights_source_url)
from engine.workspace import Workspace
from ui.errors import show_error

KEY = "train_form_"
CHOICE = f"{KEY}weights"
PATH = f"{KEY}weights_path"
UPLOAD = f"{KEY}weights_upload"
LAST_UPLOAD = f"{KEY}weights_last_upload"      # file id of the upload already kept
CHOICES = {"imagenet": "Pretrained (recommended)",
           "file": "A weights file",
           "none": "From scratch"}
CHOICE_HELP = ("Pretrained: the model starts from what it learned on ImageNet, 1.2 million "
               "everyday photos, so it needs far fewer of yours. A weights file: the same, from "
               "a .h5 file you have (for example copied from another computer). From scratch: "
               "the model starts knowing nothing.")


def imagenet_available(variant: str, image_size_px: int | None) -> bool:
    """True when Keras's cache already holds the ImageNet file (no download needed)."""
    spec = VARIANTS[variant]
    return (keras_cache_dir() / spec.keras_weights_file(image_size_px)).is_file()


@st.cache_data(ttl=300, show_spinner=False)
def _can_download(url: str) -> bool:
    return weights_source_reachable(url)


def imagenet_usable(variant: str, image_size_px: int | None) -> bool:
    """Pretrained can start: the file is on this computer, or it can be downloaded now."""
    return imagenet_available(variant, image_size_px) or _can_download(weights_source_url())


def default_choice(variant: str, image_size_px: int | None) -> str:
    """Pretrained when this computer has the file or can download it, else ask for a file."""
    return "imagenet" if imagenet_usable(variant, image_size_px) else "file"


def render_weights(workspace: Workspace, variant: str, image_size_px: int | None,
                   summary: pd.DataFrame) -> str | None:
    """The weights choice; returns 'imagenet', 'none' or a file path, None when not usable."""
    spec = VARIANTS[variant]
    has_imagenet = imagenet_usable(variant, image_size_px)
    choice = st.radio("Starting point", list(CHOICES), format_func=CHOICES.get, key=CHOICE,
                      horizontal=True, help=CHOICE_HELP)
    if choice == "imagenet" and has_imagenet and not imagenet_available(variant, image_size_px):
        st.caption(f"The pretrained file for {variant} is downloaded when training starts "
                   "(once; then it stays on this computer).")
    if not has_imagenet and choice != "none":
        st.info(f"Pretrained weights for {variant} are not on this computer, and it cannot "
                "download them, so give a weights file: a pretrained start learns well from "
                "far fewer photos.", icon=":material/info:")
    if choice == "imagenet":
        if has_imagenet:
            return "imagenet"
        with st.expander("Expert details: where the file goes"):
            st.write(offline_message(spec, image_size_px))
        st.warning("Choose “A weights file” (or copy the file to this computer) to train.")
        return None
    if choice == "none":
        num_labeled = int(summary["total"].sum()) if not summary.empty else 0
        st.warning(scratch_expectation(num_labeled, max(1, len(summary))),
                   icon=":material/warning:")
        return "none"
    return _render_file(workspace, variant, image_size_px)


def _render_file(workspace: Workspace, variant: str, image_size_px: int | None) -> str | None:
    spec = VARIANTS[variant]
    uploaded = st.file_uploader(f"Weights file for {variant} (.h5)", type=["h5"], key=UPLOAD)
    if uploaded is not None and st.session_state.get(LAST_UPLOAD) != uploaded.file_id:
        try:
            kept = keep_weights_file(workspace, uploaded.name, uploaded.getvalue())
        except EngineError as err:
            show_error(err)
        else:
            st.session_state[PATH] = str(kept)       # before the text box is drawn this run
            st.session_state[LAST_UPLOAD] = uploaded.file_id
    typed = st.text_input("…or the file's place on this computer", key=PATH,
                          placeholder=f"/path/to/{spec.keras_weights_file(image_size_px)}",
                          help="An uploaded file is kept with this project (in its weights "
                               "folder), so it is still there after a restart.")
    path = typed.strip()
    if not path:
        st.error("Upload the weights file, or type where it is, to train with it.")
        return None
    if not Path(path).expanduser().is_file():
        st.error(f"There is no file {path}. Check the place, or upload the file again.")
        return None
    st.caption(f"Training starts from {Path(path).name}.")
    return path
