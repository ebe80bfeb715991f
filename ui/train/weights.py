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
from engine.projects import weights_library_dir
from engine.training.settings import (keep_weights_file, list_weights_files, scratch_expectation,
                                      weights_dir)
from engine.training.variants import (VARIANTS, keras_cache_dir, offline_message,
                                      weights_source_reachable, weights_source_url)
from engine.workspace import Workspace
from ui import state
from ui.errors import show_error

KEY = "train_form_"
CHOICE = f"{KEY}weights"
PATH = f"{KEY}weights_path"
UPLOAD = f"{KEY}weights_upload"
FILE = f"{KEY}weights_file"                     # a known file's path, or OTHER
UPLOAD_ERROR = f"{KEY}weights_upload_error"
OTHER = "other"
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
    asked = not has_imagenet and choice != "none"
    if asked:
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
    return _render_file(workspace, variant, image_size_px, asked)


def library_dir() -> Path:
    """This computer's weights folder: ``weights/`` in the projects root, for every project."""
    return weights_library_dir(state.projects_root())


def known_files(workspace: Workspace) -> list[Path]:
    """The weights files this project can use: the computer's, then the project's own (older
    versions kept uploads there)."""
    return list_weights_files(library_dir(), weights_dir(workspace))


def _keep_upload() -> None:
    """The uploader's on_change: keep the file on this computer and choose it."""
    uploaded = st.session_state.get(UPLOAD)
    if uploaded is None:
        return
    try:
        kept = keep_weights_file(library_dir(), uploaded.name, uploaded.getvalue())
    except EngineError as err:
        st.session_state[UPLOAD_ERROR] = err
    else:
        st.session_state[FILE] = str(kept)


def _default_file(options: list[str], expected_name: str) -> str:
    typed = str(st.session_state.get(PATH) or "").strip()
    if typed:                                   # stored settings: that file, else "another"
        resolved = str(Path(typed).expanduser().resolve())
        return resolved if resolved in options else OTHER
    matching = [option for option in options if Path(option).name == expected_name]
    return (matching or options)[0]


def _render_file(workspace: Workspace, variant: str, image_size_px: int | None,
                 asked: bool) -> str | None:
    """The weights-file choice; ``asked``: the page already asked for a file (no second
    hint)."""
    spec = VARIANTS[variant]
    expected_name = spec.keras_weights_file(image_size_px)
    options = [str(path) for path in known_files(workspace)] + [OTHER]
    if st.session_state.get(FILE) not in options:
        st.session_state[FILE] = _default_file(options, expected_name)
    chosen = OTHER
    if len(options) > 1:
        chosen = st.selectbox(
            "Weights file", options, key=FILE,
            format_func=lambda option: ("Another file on this computer…" if option == OTHER
                                        else Path(option).name),
            help=f"The weights files kept on this computer (in {library_dir()}), for every "
                 f"project. Keras names the file for {variant} {expected_name}.")
    path = chosen
    if chosen == OTHER:
        path = st.text_input("The weights file's place on this computer", key=PATH,
                             placeholder=f"/path/to/{expected_name}",
                             help="Or upload it below: it is then kept on this computer for "
                                  "every project.").strip()
    st.file_uploader("Add a weights file (.h5): kept on this computer, for every project",
                     type=["h5"], key=UPLOAD, on_change=_keep_upload)
    if UPLOAD_ERROR in st.session_state:
        show_error(st.session_state.pop(UPLOAD_ERROR))
    if not path:
        if not asked:
            st.info("To start from a weights file, upload it or type where it is.",
                    icon=":material/info:")
        return None
    if not Path(path).expanduser().is_file():
        st.error(f"There is no file {path}. Check the place, or upload the file again.")
        return None
    st.caption(f"Training starts from {Path(path).name}.")
    return path
