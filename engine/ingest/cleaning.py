"""One-click cleaning: quarantine what is safe to quarantine, leave a person's calls to them.

"Quarantine all flagged" (the Data page's Issues tab) and ``python -m engine clean
--quarantine-flagged`` both call :func:`quarantine_flagged`, which never takes a good photo out
of training:

- broken files (empty, not an image, corrupt, ...) and the chosen warnings about one file
  (too small, extreme aspect ratio) are quarantined;
- exact and near copies with the same label keep one copy: only the later copies are flagged
  (engine.ingest.duplicates), and those are quarantined;
- copies that carry *different* labels (``label_conflict``) are the person's call: which label
  is right cannot be told from the files. They are left, grouped, for :func:`resolve_conflict`
  (the page's "Which is right?" buttons: keep as one label, or quarantine all);
- look-alike pairs found by a trained model (``model_near_duplicate``) may be two good photos:
  they are left too.

Quarantine is a status (engine.ingest.quarantine): every action here is reversible.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from engine.errors import ConfigError, WorkspaceError
from engine.ingest.checks import FILE_KINDS, KIND_ORDER, KIND_TITLES, CheckConfig
from engine.ingest.issues import find_issues
from engine.ingest.quarantine import quarantine_rows
from engine.workspace import Workspace

# Kinds the bulk action quarantines, and kinds it leaves for a person to decide.
BULK_KINDS = tuple(kind for kind in KIND_ORDER if kind in (*FILE_KINDS, "duplicate",
                                                             "near_duplicate"))
PERSON_KINDS = ("label_conflict", "model_near_duplicate")


@dataclass(frozen=True)
class Decision:
    """A group of photos only a person can settle: the same picture under different labels
    (``label_conflict``) or look-alikes found by a model (``model_near_duplicate``).

    ``image_ids``, ``paths`` (as imported) and ``labels`` are parallel, in import order.
    """
    kind: str
    image_ids: tuple[int, ...]
    paths: tuple[str, ...]
    labels: tuple[str | None, ...]

    @property
    def choices(self) -> tuple[str, ...]:
        """The labels a person may keep, in order of first appearance."""
        return tuple(dict.fromkeys(label for label in self.labels if label))


@dataclass(frozen=True)
class CleaningPlan:
    """What one-click cleaning does now.

    Attributes:
        flagged: find_issues' rows of the images still in the dataset, one per image (its
            most severe kind), most severe first.
        to_quarantine: those the bulk action quarantines (columns as ``flagged``).
        left_for_you: the groups left for a person, label conflicts first.
    """
    flagged: pd.DataFrame
    to_quarantine: pd.DataFrame
    left_for_you: tuple[Decision, ...]


@dataclass(frozen=True)
class CleaningResult:
    """What :func:`quarantine_flagged` did: ``quarantined`` paths (as imported) and the groups
    it left for a person."""
    quarantined: tuple[str, ...]
    left_for_you: tuple[Decision, ...]


def check_kinds(kinds: Iterable[str] | None) -> tuple[str, ...]:
    """The bulk kinds to act on (None = all of :data:`BULK_KINDS`).

    Raises:
        ConfigError: a kind is unknown, or is one a person decides.
    """
    if kinds is None:
        return BULK_KINDS
    chosen = tuple(dict.fromkeys(str(kind).strip() for kind in kinds if str(kind).strip()))
    for kind in chosen:
        if kind in PERSON_KINDS:
            raise ConfigError(f"'{kind}' ({KIND_TITLES[kind]}) is never quarantined in bulk: "
                              "which photo is right is your call. Choose from: "
                              f"{', '.join(BULK_KINDS)}.")
        if kind not in BULK_KINDS:
            raise ConfigError(f"Unknown kind '{kind}'. Choose from: {', '.join(BULK_KINDS)}.")
    return chosen


def plan_cleaning(workspace: Workspace, kinds: Iterable[str] | None = None,
                  config: CheckConfig | None = None) -> CleaningPlan:
    """What "Quarantine all flagged" would do now, without doing it.

    Args:
        kinds: the bulk kinds to quarantine (default: all of :data:`BULK_KINDS`).
    Returns:
        A :class:`CleaningPlan`.
    Raises:
        ConfigError: as :func:`check_kinds`.
    """
    chosen = check_kinds(kinds)
    issues = find_issues(workspace, config)
    active = issues[issues["status"] == "ok"]
    flagged = active.drop_duplicates("image_id").reset_index(drop=True)
    decisions = _decisions(workspace, active)
    in_conflict = {image_id for decision in decisions if decision.kind == "label_conflict"
                   for image_id in decision.image_ids}
    to_quarantine = flagged[flagged["kind"].isin(chosen)
                            & ~flagged["image_id"].isin(in_conflict)].reset_index(drop=True)
    return CleaningPlan(flagged, to_quarantine, decisions)


def quarantine_flagged(workspace: Workspace, kinds: Iterable[str] | None = None,
                       config: CheckConfig | None = None) -> CleaningResult:
    """Quarantine every flagged photo that is safe to quarantine (see the module docstring);
    leave label conflicts and look-alike pairs for a person.

    Args:
        kinds: the bulk kinds to quarantine (default: all of :data:`BULK_KINDS`).
    Returns:
        A :class:`CleaningResult`: the paths quarantined now (reason: the kind's title) and
        the groups left.
    Raises:
        ConfigError: as :func:`check_kinds`.
    """
    plan = plan_cleaning(workspace, kinds, config)
    changed: set[int] = set()
    with workspace.connect() as connection:
        for kind, rows in plan.to_quarantine.groupby("kind", sort=False):
            changed.update(quarantine_rows(connection, rows["image_id"].tolist(),
                                           KIND_TITLES.get(kind, kind)))
    quarantined = plan.to_quarantine[plan.to_quarantine["image_id"].isin(changed)]
    left = plan_cleaning(workspace, kinds, config).left_for_you
    return CleaningResult(tuple(quarantined["path"]), left)


def resolve_conflict(workspace: Workspace, image_ids: Sequence[int],
                     keep_label: str | None) -> list[int]:
    """Settle one "Which is right?" group: keep the photos labelled `keep_label` and
    quarantine the others (the copies under another label), or quarantine all of them when
    `keep_label` is None. Labels are not changed; quarantine can be undone.

    Args:
        image_ids: the group's images (a :class:`Decision`'s ``image_ids``).
        keep_label: the label that is right, one of the group's labels; None = none is.
    Returns:
        The ids quarantined now.
    Raises:
        WorkspaceError: an id does not exist, or no photo of the group has `keep_label`.
    """
    ids = [int(image_id) for image_id in image_ids]
    labels = _labels(workspace, ids)
    if keep_label is not None and keep_label not in labels.values():
        raise WorkspaceError(f"None of these photos is labelled '{keep_label}' any more; "
                             "refresh the page and choose again.")
    dropped = [image_id for image_id in ids if keep_label is None
               or labels.get(image_id) != keep_label]
    reason = ("Duplicate with different labels: none was right" if keep_label is None else
              f"Duplicate with different labels: kept the copy labelled {keep_label}")
    with workspace.connect() as connection:
        return quarantine_rows(connection, dropped, reason)


def _labels(workspace: Workspace, ids: list[int]) -> dict[int, str | None]:
    if not ids:
        return {}
    with workspace.connect() as connection:
        rows = connection.execute(
            "SELECT images.id, classes.name FROM images LEFT JOIN classes "
            "ON classes.id = images.class_id "
            f"WHERE images.id IN ({', '.join('?' * len(ids))})", ids).fetchall()
    found = {int(row[0]): row[1] for row in rows}
    missing = [image_id for image_id in ids if image_id not in found]
    if missing:
        raise WorkspaceError(f"No image with id {missing[0]} in this project; refresh the page "
                             "and try again.")
    return found


def _decisions(workspace: Workspace, active: pd.DataFrame) -> tuple[Decision, ...]:
    """Groups of PERSON_KINDS rows: images linked by an issue's related image, one group per
    connected set, each image in the group of its most severe person kind."""
    decisions: list[Decision] = []
    taken: set[int] = set()
    for kind in PERSON_KINDS:
        rows = active[active["kind"] == kind]
        links = [(int(image_id), None if pd.isna(related) else int(related))
                 for image_id, related in zip(rows["image_id"], rows["related_image_id"])]
        for members in _connected(links):
            decision = _decision(workspace, kind, [m for m in members if m not in taken])
            if decision is not None:
                decisions.append(decision)
                taken.update(decision.image_ids)
    return tuple(decisions)


def _connected(links: list[tuple[int, int | None]]) -> list[list[int]]:
    """Connected sets of the graph whose edges are `links` (union-find), in first-seen order."""
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for node, other in links:
        root(node)
        if other is not None:
            parent[root(node)] = root(other)
    groups: dict[int, list[int]] = {}
    for node in parent:
        groups.setdefault(root(node), []).append(node)
    return list(groups.values())


def _decision(workspace: Workspace, kind: str, members: list[int]) -> Decision | None:
    """The group's images still in the dataset, in import order; None when fewer than two."""
    if len(members) < 2:
        return None
    with workspace.connect() as connection:
        rows = connection.execute(
            "SELECT images.id, images.source_path, classes.name FROM images LEFT JOIN classes "
            "ON classes.id = images.class_id WHERE images.status = 'ok' AND images.id IN "
            f"({', '.join('?' * len(members))}) "
            "ORDER BY images.import_id, images.source_path, images.id", members).fetchall()
    if len(rows) < 2:
        return None
    return Decision(kind, tuple(int(row[0]) for row in rows), tuple(row[1] for row in rows),
                    tuple(row[2] for row in rows))
