"""Read-only folder scan (``python -m engine scan``): every per-file check in a pool of
processes, then the group checks, without writing anything."""
from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from engine.ingest import filewalk
from engine.ingest.checks import (CheckConfig, FileAnalysis, Issue, imbalance_warning, inspect_bytes,
                           kind_rank, most_severe)
from engine.ingest.duplicates import HashRecord, find_group_issues
from engine.errors import ImportFailedError

@dataclass(frozen=True)
class ScanFile:
    """One file of a scan: its most severe finding (kind 'ok' when none)."""
    path: str                      # relative to the scanned root, '/' separated
    label: str | None              # class subfolder, None for files in the root
    kind: str
    severity: str | None
    detail: str
    related_path: str | None = None
    issues: tuple[Issue, ...] = ()


@dataclass(frozen=True)
class ScanReport:
    """Result of :func:`scan_folder`."""
    root: str
    files: tuple[ScanFile, ...]
    classes: dict[str, int]        # images per class among files without errors
    warnings: tuple[str, ...]      # dataset-level warnings (class imbalance)
    seconds: float
    workers: int

    @property
    def summary(self) -> dict[str, object]:
        issues: dict[str, int] = defaultdict(int)
        for scanned in self.files:
            if scanned.kind != "ok":
                issues[scanned.kind] += 1
        ordered = dict(sorted(issues.items(), key=lambda item: kind_rank(item[0])))
        return {"files": len(self.files), "ok": sum(f.kind == "ok" for f in self.files),
                "issues": ordered, "classes": self.classes, "warnings": list(self.warnings)}

    def to_dict(self) -> dict[str, object]:
        """The JSON form printed by ``python -m engine scan --json``."""
        files = []
        for scanned in self.files:
            entry = {"path": scanned.path, "label": scanned.label, "kind": scanned.kind,
                     "detail": scanned.detail}
            if scanned.related_path:
                entry["related_path"] = scanned.related_path
            files.append(entry)
        return {"summary": self.summary, "files": files}


def _scan_chunk(chunk: list[str], root: str, config: CheckConfig) -> list[FileAnalysis]:
    results = []
    for relative in chunk:
        try:
            data = (Path(root) / relative).read_bytes()
        except OSError as err:
            results.append(FileAnalysis(relative, 0, "", issues=(Issue(
                relative, "corrupt", "error", f"Cannot be read: {err.strerror}."),)))
            continue
        results.append(inspect_bytes(relative, data, config)[0])
    return results


def scan_folder(root: str | os.PathLike, config: CheckConfig | None = None,
                workers: int | None = None, chunk_size: int = 32) -> ScanReport:
    """Check every file under `root` without changing anything.

    Args:
        root: a folder, usually of class subfolders.
        config: thresholds; default :class:`CheckConfig`.
        workers: processes for decoding; default all cores (small folders run in-process).
        chunk_size: files per task sent to a worker.
    Returns:
        A :class:`ScanReport`, files in path order.
    Raises:
        ImportFailedError: `root` is not a folder.
    """
    config = config or CheckConfig()
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ImportFailedError(f"'{root}' is not a folder. Give the path of a folder of photos "
                                "(for example one with a subfolder per class).")
    started = time.perf_counter()
    paths = list(filewalk.iter_files(folder))
    workers = workers or filewalk.default_workers()
    if len(paths) < filewalk.MIN_FILES_FOR_POOL:
        workers = 1
    worker = partial(_scan_chunk, root=str(folder), config=config)
    analyses: list[FileAnalysis] = []
    for batch in filewalk.map_chunks(worker, filewalk.chunked(paths, chunk_size), workers):
        analyses.extend(batch)
    analyses.sort(key=lambda analysis: analysis.path)
    files, classes = _scan_files(analyses, config)
    warning = imbalance_warning(classes, config.imbalance_ratio)
    return ScanReport(str(folder), tuple(files), classes, (warning,) if warning else (),
                      time.perf_counter() - started, workers)


def _scan_files(analyses: list[FileAnalysis], config: CheckConfig
                ) -> tuple[list[ScanFile], dict[str, int]]:
    label_from_path = filewalk.label_from_path
    records = [HashRecord(analysis.path, analysis.path, analysis.sha256,
                          None if any(i.kind == "too_small" for i in analysis.issues)
                          else analysis.dhash, label_from_path(analysis.path))
               for analysis in analyses if analysis.is_readable]
    extra: dict[str, list[Issue]] = defaultdict(list)
    for key, issue, _related in find_group_issues(records, config):
        extra[key].append(issue)
    files, classes = [], defaultdict(int)
    for analysis in analyses:
        label = label_from_path(analysis.path)
        issues = (*analysis.issues, *extra.get(analysis.path, ()))
        worst = most_severe(issues)
        if label and analysis.is_readable:
            classes[label] += 1
        if worst is None:
            files.append(ScanFile(analysis.path, label, "ok", None, ""))
        else:
            files.append(ScanFile(analysis.path, label, worst.kind, worst.severity, worst.detail,
                                  worst.related_path, tuple(issues)))
    return files, dict(sorted(classes.items()))
