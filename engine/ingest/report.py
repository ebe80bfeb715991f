"""What an import tells its caller: progress while it runs, a report when it ends."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """A file of an import that needs attention (broken, not an image, bad label, missing)."""
    path: str
    kind: str
    detail: str


@dataclass(frozen=True)
class ImportProgress:
    """Progress of a running import, sent after every chunk."""
    done: int
    total: int | None              # None when unknown (a stream of uploads)
    imported: int
    already_present: int
    num_problems: int
    current_path: str

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


@dataclass(frozen=True)
class ImportReport:
    """What one import did.

    The counts follow the one definition of engine.ingest.overview: a *photo* is a file that
    decodes (usable); a *problem file* is one that does not (broken, not an image, refused,
    missing) and is counted apart.

    Attributes:
        imported: new files recorded (problem files included: they are rows to quarantine).
        already_present: files already in the workspace from an earlier import (skipped).
        problems: files needing attention: their most severe issue (path, kind, detail);
            problem files and photos to check (duplicates, too small...) together.
        classes: photos per class label in this import (new and already present).
        num_readable: new photos (``imported`` minus the problem files among them).
        num_problem_files: files of this import that are not usable photos.
        given_split: photos per split when the folders gave one (train/, val/, test/ above
            the class folders), e.g. {"train": 245, "val": 153}; empty when none did.
    """
    import_id: int
    source: str
    imported: int
    already_present: int
    problems: tuple[Problem, ...]
    classes: dict[str, int]
    num_readable: int = 0
    skipped: tuple[str, ...] = ()
    seconds: float = 0.0
    num_problem_files: int = 0
    given_split: dict[str, int] = field(default_factory=dict)

    @property
    def num_photos_to_check(self) -> int:
        """Usable photos with a warning (a duplicate, too small...)."""
        return max(0, len(self.problems) - self.num_problem_files)

    def summary_text(self) -> str:
        """One plain sentence: '122 new photos, 3 problem files; kept the split given by the
        folders: train 245, val 153.'"""
        parts = [f"{self.num_readable:,} new photo{'s' if self.num_readable != 1 else ''}"]
        if self.already_present:
            parts.append(f"{self.already_present:,} already in the project")
        if self.num_problem_files:
            parts.append(f"{self.num_problem_files:,} problem file"
                         f"{'s' if self.num_problem_files != 1 else ''} (not usable)")
        if self.num_photos_to_check:
            parts.append(f"{self.num_photos_to_check:,} photo"
                         f"{'s' if self.num_photos_to_check != 1 else ''} to check")
        text = ", ".join(parts) + "."
        if self.given_split:
            text += " Kept the split given by the folders: " + ", ".join(
                f"{name} {count:,}" for name, count in self.given_split.items()) + "."
        return text

    def to_dict(self) -> dict[str, object]:
        """The JSON form printed by ``python -m engine import --json``: ``imported`` (new files
        recorded, problem files included), ``usable`` (new photos among them),
        ``problem_files``, ``already_present``, ``problems``, ``classes``, ``given_split``."""
        return {"imported": self.imported, "usable": self.num_readable,
                "problem_files": self.num_problem_files,
                "already_present": self.already_present,
                "problems": [{"path": p.path, "kind": p.kind, "detail": p.detail}
                             for p in self.problems],
                "classes": dict(self.classes), "given_split": dict(self.given_split)}
