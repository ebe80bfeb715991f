"""Names a person can tell apart: "Run 3 · MobileNetV2-0.5 · 26 Nov 19:05".

Two runs of the same model otherwise read the same; the number counts the project's runs in
the order they were started, the time is local.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from engine.runs import RunRecord


def started_text(run: RunRecord) -> str:
    """The run's start (or creation) time as local '26 Nov 19:05'."""
    stamp = run.started_at or run.created_at
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%d %b %H:%M")
    except (TypeError, ValueError):
        return str(stamp or "")[:16]


def run_names(runs: Iterable[RunRecord]) -> dict[str, str]:
    """{run id: 'Run N · variant · time'}, N counting from the oldest run."""
    ordered = sorted(runs, key=lambda run: (run.created_at, run.id))
    return {run.id: f"Run {number} · {run.variant} · {started_text(run)}"
            for number, run in enumerate(ordered, start=1)}


def short_name(name: str) -> str:
    """'Run 3' of 'Run 3 · MobileNetV2-0.5 · 06 Dec 14:05' (a chart's marker label)."""
    return name.split(" · ", 1)[0]


def name_runs_in(text: str, names: dict[str, str]) -> str:
    """``text`` (an engine message naming run folders) with each run id replaced by its name."""
    for run_id in sorted(names, key=len, reverse=True):
        text = text.replace(run_id, names[run_id])
    return text
