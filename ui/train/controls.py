"""The buttons that steer a run: Halt, Fine-tune now, Add epochs and Cancel while it trains,
and "Continue N more epochs" once it has been halted.

Each button says what it does on its face and in its tooltip (Halt keeps the model, Cancel
throws the run away), not only inside the Cancel pop-up.
"""
from __future__ import annotations

import time

import streamlit as st

from engine import jobs
from engine.errors import EngineError
from ui.errors import show_error

# What the worker was asked, in words, for the "sent" note.
COMMAND_NAMES = {"halt": "halt", "fine_tune": "fine-tune now", "continue": "add epochs",
                 "cancel": "cancel"}
HALT_HELP = ("Stops within one batch and keeps the best model so far: its results are written "
             "and you can continue the run later. Cancel instead throws the run away.")
CANCEL_HELP = "Stops now and throws this run away: no model, no results. Halt keeps them."
# A click that lands while the fragment's timed rerun starts can reach its callback twice
# (the interrupted run and its replacement both see the click); one command per click.
DUPLICATE_CLICK_SECONDS = 2.0


def _send(workspace, run_id: str, kind: str, count_key: str | None = None) -> None:
    """Button callback: queue a command (runs before the rerun, so the view shows it at once)."""
    argument = int(st.session_state[count_key]) if count_key else None
    last = st.session_state.get(f"command-last-{run_id}")
    now = time.time()
    if last and last[0] == (kind, argument) and now - last[1] < DUPLICATE_CLICK_SECONDS:
        return
    st.session_state[f"command-last-{run_id}"] = ((kind, argument), now)
    try:
        jobs.send_command(workspace, run_id, kind, argument)
    except EngineError as err:
        st.session_state[f"command-error-{run_id}"] = err.user_message


def render_live_controls(workspace, run_id: str, status: jobs.JobStatus,
                         progress=None) -> None:
    """Halt / Fine-tune now / Add N epochs / Cancel of a running job. ``progress`` (its
    :class:`engine.training.progress.Progress`): Halt turns into a greyed "Halting…" once
    sent, and "Fine-tune now" is left out once fine-tuning (or the last step) has begun."""
    error = st.session_state.pop(f"command-error-{run_id}", None)
    if error:
        st.error(error)
    pending = status.pending_commands
    if pending:
        names = ", ".join(COMMAND_NAMES.get(c.kind, c.kind) + (f" {c.argument}" if c.argument else "")
                          for c in pending)
        st.info(f"Sent to the training, acted on within one batch: {names}", icon=":material/send:")
    phase = progress.phase.phase if progress is not None and progress.phase else None
    halting = any(command.kind == "halt" for command in pending) or (
        progress is not None and "halt" in progress.acknowledged)
    halt, fine_tune, more, cancel = st.columns([1.2, 1, 1.6, 1.2])
    halt.button("Halting…" if halting else "Halt: stop, keep the model", icon=":material/stop:",
                key=f"halt-{run_id}", width="stretch", disabled=halting, on_click=_send,
                args=(workspace, run_id, "halt"),
                help="The training is stopping and keeps its best model." if halting else HALT_HELP)
    if phase not in ("fine_tune", "finishing"):
        fine_tune.button("Fine-tune now", icon=":material/lock_open:", key=f"fine-{run_id}",
                         width="stretch", on_click=_send, args=(workspace, run_id, "fine_tune"),
                         help="End step 1 now and start step 2, where the top of the model "
                              "learns too.")
    with more:
        number_col, button_col = st.columns([1, 1.3])
        count_key = f"more-n-{run_id}"
        extra = number_col.number_input("More epochs", 1, 1000, 1, key=count_key,
                                        label_visibility="collapsed")
        button_col.button(f"Add {int(extra)} epoch{'s' if extra > 1 else ''}", icon=":material/add:",
                          key=f"more-{run_id}", width="stretch",
                          on_click=_send, args=(workspace, run_id, "continue", count_key),
                          help="Make the current step this many epochs longer.")
    with cancel.popover("Cancel: throw away", icon=":material/close:", width="stretch",
                        help=CANCEL_HELP):
        st.write("Stop now and throw this run away? Halt stops too, but keeps the model.")
        st.button("Yes, cancel the run", key=f"cancel-{run_id}", type="primary",
                  on_click=_send, args=(workspace, run_id, "cancel"))


def render_continue(workspace, run_id: str, on_started) -> None:
    """'Continue N more epochs' for a halted or finished run (its weights are kept)."""
    continue_run = getattr(jobs, "continue_run", None)
    if continue_run is None:     # an engine without engine.jobs.continue_run
        return
    number_col, button_col = st.columns([1, 3])
    count = number_col.number_input("Epochs to add", 1, 1000, 2, key=f"continue-n-{run_id}",
                                    label_visibility="collapsed")
    if button_col.button(f"Continue {int(count)} more epoch{'s' if count > 1 else ''}",
                         icon=":material/play_arrow:", key=f"continue-{run_id}",
                         help="Train this run on from where it stopped, with the same "
                              "settings; the new epochs are added to it."):
        try:
            continue_run(workspace, run_id, int(count))
        except EngineError as err:
            show_error(err)
        else:
            on_started()
