"""Typed progress events and the command poll: the protocol between training and its watchers.

Training calls an ``EventSink`` with each event; the worker stores them in ``run_events``
(kind = the class name, payload = ``asdict(event)``) and the Train page renders them.
Between batches/epochs training asks a ``CommandSource`` for pending commands (halt,
fine-tune now, continue N, cancel) -- the 000 seed's interactive ``ask_epoch``, non-blocking.
"""
from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.workspace import Workspace


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    variant: str
    image_size_px: int
    num_train: int
    num_val: int
    num_test: int
    class_names: tuple[str, ...]
    device: str                       # e.g. "CPU" or "GPU: NVIDIA H100"


@dataclass(frozen=True)
class PhaseStarted:
    phase: str                        # "features" | "head" | "fine_tune" | "finishing"
    epochs: int                       # planned epochs in this phase
    steps_per_epoch: int
    initial_epoch: int                # global epoch index the phase starts at (0-based)
    learning_rate: float
    detail: str = ""
    # Epochs planned after this phase (what the time left adds for the phases to come).
    later_head_epochs: int = 0
    later_fine_tune_epochs: int = 0


@dataclass(frozen=True)
class BatchEnded:
    phase: str
    epoch: int                        # global epoch, 1-based
    batch: int                        # 1-based
    steps_per_epoch: int
    loss: float
    accuracy: float


@dataclass(frozen=True)
class EpochEnded:
    """One row of the 000 seed's epoch table."""
    phase: str
    epoch: int                        # global epoch, 1-based
    planned_epochs: int               # total planned epochs (all phases) at this point
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    learning_rate: float              # LR used in this epoch
    next_learning_rate: float         # LR for the next epoch
    monitor: str                      # "accuracy" | "val_loss"
    duration_seconds: float
    is_best: bool
    # ``loss`` and ``val_loss`` are the data loss (cross-entropy); ``penalty`` is what the
    # training objective adds to the training loss (the head's L1/L2 penalties, label
    # smoothing), 0 for the default head.
    penalty: float = 0.0
    later_epochs: int = 0             # of planned_epochs, those of later phases (fine-tuning)


@dataclass(frozen=True)
class HeadSolved:
    """Step 1 solved in one fit (``engine.training.solved_step``): each strength tried (the
    logistic regression's inverse regularization C), its validation loss, the one kept."""
    strengths: tuple[float, ...]
    losses: tuple[float, ...]
    kept: float
    chosen_by: str                    # "validation" | "cross-validation" | "default"
    seconds: float


@dataclass(frozen=True)
class LearningRateChanged:
    epoch: int
    old: float
    new: float
    reason: str


@dataclass(frozen=True)
class CheckpointSaved:
    epoch: int
    path: str                         # relative to the run folder


@dataclass(frozen=True)
class Message:
    """A note for the user (e.g. "halted by user", "restored best weights of epoch 3")."""
    text: str
    level: str = "info"               # info | warning


@dataclass(frozen=True)
class CommandAcknowledged:
    """The worker read a command (sent the moment it is read, before acting on it)."""
    kind: str                         # a CommandKind value
    argument: int | None
    phase: str                        # where training was: phase, global epoch, batch
    epoch: int
    batch: int
    # Training and validation batches that ended between the command being stored and being
    # read (None: its send time is unknown). Commands are read after every batch, so this is
    # at most 1 while batches run: the measure a halt is judged by, in batches, not seconds.
    steps_waited: int | None = None


@dataclass(frozen=True)
class RunFinished:
    status: str                       # "finished" | "halted" | "cancelled"
    test_accuracy: float | None
    log_loss: float | None
    seconds_per_epoch: float | None
    best_epoch: int | None


@dataclass(frozen=True)
class RunFailed:
    error_class: str
    message: str


Event = (RunStarted | PhaseStarted | BatchEnded | EpochEnded | HeadSolved | LearningRateChanged
         | CheckpointSaved | Message | CommandAcknowledged | RunFinished | RunFailed)
EventSink = Callable[[Event], None]
EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    RunStarted, PhaseStarted, BatchEnded, EpochEnded, HeadSolved, LearningRateChanged,
    CheckpointSaved,
    Message, CommandAcknowledged, RunFinished, RunFailed)}


def event_to_record(event: Event) -> tuple[str, dict[str, Any]]:
    """(kind, payload) for storage: kind is the class name, payload the dataclass fields."""
    return type(event).__name__, asdict(event)


def event_from_record(kind: str, payload: dict[str, Any]) -> Event:
    """Inverse of :func:`event_to_record`."""
    cls = EVENT_TYPES[kind]
    for name in ("class_names", "strengths", "losses"):   # JSON gives lists back
        if name in payload:
            payload = {**payload, name: tuple(payload[name])}
    return cls(**payload)


class CommandKind(str, enum.Enum):
    HALT = "halt"             # stop after this batch, keep the best weights, write artefacts
    FINE_TUNE = "fine_tune"   # end phase 1 now and start fine-tuning
    CONTINUE = "continue"     # extend the current phase by `argument` epochs
    CANCEL = "cancel"         # stop now; the run is marked cancelled


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    argument: int | None = None
    sent_at: float | None = None      # time.time() when the app stored it


# Returns the commands that arrived since the last call (possibly none). Must be cheap:
# training calls it after every training and validation batch.
CommandSource = Callable[[], list[Command]]


def no_commands() -> list[Command]:
    return []


@dataclass
class EventCollector:
    """An EventSink that keeps events in a list (for the CLI and tests)."""
    events: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append(event)


# -- stored events (the run_events table, written by engine.worker) -------------------------

@dataclass(frozen=True)
class StoredEvent:
    """One row of ``run_events``: its id (for incremental polling), time and typed event."""
    id: int
    created_at: float               # unix seconds
    event: Event


def read_events(workspace: Workspace, run_id: str, after_id: int = 0,
                kinds: tuple[str, ...] | None = None) -> list[StoredEvent]:
    """Stored progress events of a run, oldest first.

    Args:
        after_id: only events with a larger id (poll incrementally with the last id seen).
        kinds: only these event class names (e.g. ``("EpochEnded",)``); default all.
    Returns:
        StoredEvent list; rows of unknown kinds (a newer worker) are skipped.
    """
    query = "SELECT id, kind, payload_json, created_at FROM run_events WHERE run_id = ? AND id > ?"
    parameters: list[Any] = [run_id, after_id]
    if kinds:
        query += f" AND kind IN ({', '.join('?' for _ in kinds)})"
        parameters.extend(kinds)
    with workspace.connect() as connection:
        rows = connection.execute(query + " ORDER BY id", parameters).fetchall()
    events = []
    for row in rows:
        try:
            event = event_from_record(row["kind"], json.loads(row["payload_json"]))
        except (KeyError, TypeError):
            continue
        events.append(StoredEvent(id=row["id"], created_at=row["created_at"], event=event))
    return events
