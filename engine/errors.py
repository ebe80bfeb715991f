"""Error classes of the engine.

Every error the engine raises on purpose is an :class:`EngineError` whose ``user_message``
says what happened and what to do next, in words a non-programmer understands. Pages show
``user_message``; the CLI prints it; tests assert on the class.
"""
from __future__ import annotations


class EngineError(Exception):
    """Base class of all deliberate engine errors.

    Args:
        user_message: what happened and what to do next (shown in the UI and the CLI).
        detail: optional technical detail (pages show it under "Details"; the CLI prints only
            user_message).
    """

    def __init__(self, user_message: str, detail: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.detail = detail


class ConfigError(EngineError):
    """A configuration value is out of range or of the wrong kind."""


class WorkspaceError(EngineError):
    """The workspace folder or its database cannot be opened or is inconsistent."""


class ImportFailedError(EngineError):
    """An import could not proceed (nothing readable, bad archive, path outside the root)."""


class DatasetError(EngineError):
    """The labeled dataset cannot be used as asked (too few images, one class, broken files)."""


class LabelError(EngineError):
    """A class or label operation is invalid (bad class name, unknown class)."""


class WeightsUnavailableError(EngineError):
    """Pretrained weights cannot be obtained (offline machine, missing or mismatched file)."""


class TrainingError(EngineError):
    """Training failed or cannot start (a job already runs, nothing to resume)."""


class JobError(EngineError):
    """A background job cannot be started, found or steered."""


class RunError(EngineError):
    """A run folder is missing, incomplete or unreadable."""


class ExportError(EngineError):
    """A model export failed or did not match the original model."""


class ProjectError(EngineError):
    """A project cannot be created, found, renamed or deleted as asked."""
