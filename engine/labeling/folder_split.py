"""The split a dataset's own folders give (``train/``, ``val/``, ``test/`` above the class
folders), kept as given.

Published datasets come split; re-drawing that split would move photos from ``val/`` into
training and the reverse, so scores would not compare with anyone else's. The import stores
each photo's folder split in ``images.split`` and remembers here which imports gave one.
Rules the code enforces (with engine.labeling.split):

- *Kept*: a plain split (no ``resplit``) never moves a photo whose split its folders gave,
  not even to join a duplicate: the duplicate joins the given photo instead.
- *Carved from train only*: a split the folders did not give (often ``test/``) can be carved
  out of the given train split (stratified by class, seeded, duplicate groups whole), never
  out of the given val or test.
- *Re-split on request*: re-splitting everything forgets the given split (the pages warn).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pandas as pd

from engine.errors import ConfigError
from engine.labeling.split_groups import all_images, draw_key, duplicate_groups
from engine.workspace import Workspace, utc_now

SPLITS = ("train", "val", "test")
SETTING_GIVEN = "split.given"


@dataclass(frozen=True)
class GivenSplit:
    """The split given by the folders of one or more imports.

    Attributes:
        splits: the splits the folders named, in train/val/test order.
        carved: splits carved out of train afterwards (so they are no longer missing).
        counts: usable labeled photos per split of those imports, e.g. {"train": 245, ...}.
    """
    splits: tuple[str, ...]
    carved: tuple[str, ...]
    counts: dict[str, int]

    @property
    def missing(self) -> tuple[str, ...]:
        """Splits neither given nor carved (e.g. ('test',) for a train/ + val/ dataset)."""
        return tuple(s for s in SPLITS if s not in self.splits and s not in self.carved)


def _load(workspace: Workspace) -> dict:
    try:
        saved = json.loads(workspace.get_setting(SETTING_GIVEN) or "{}")
    except ValueError:
        saved = {}
    return saved if isinstance(saved, dict) else {}


def record_given_split(workspace: Workspace, import_id: int, splits: list[str]) -> None:
    """Remember that import `import_id` gave these splits (called by the import)."""
    saved = _load(workspace)
    imports = saved.setdefault("imports", {})
    imports[str(int(import_id))] = sorted(set(splits) & set(SPLITS), key=SPLITS.index)
    workspace.set_setting(SETTING_GIVEN, json.dumps(saved))


def forget_given_split(workspace: Workspace) -> None:
    """Drop the given split (re-splitting everything); the photos keep their split until the
    re-split draws a new one."""
    workspace.set_setting(SETTING_GIVEN, json.dumps({}))


def given_import_ids(workspace: Workspace) -> set[int]:
    return {int(key) for key in _load(workspace).get("imports", {})}


def given_split(workspace: Workspace, images: pd.DataFrame | None = None) -> GivenSplit | None:
    """The split the folders gave, or None when no import gave one."""
    saved = _load(workspace)
    imports = saved.get("imports", {})
    if not imports:
        return None
    named = {s for splits in imports.values() for s in splits}
    images = all_images(workspace) if images is None else images
    mine = images[images["is_trainable"] & images["import_id"].isin([int(k) for k in imports])]
    counts = {s: int((mine["split"] == s).sum()) for s in SPLITS if s in named}
    return GivenSplit(tuple(s for s in SPLITS if s in named),
                      tuple(s for s in SPLITS if s in saved.get("carved", [])), counts)


def given_image_ids(workspace: Workspace, images: pd.DataFrame) -> set[int]:
    """Images whose split their folders gave (they are never moved by a plain split)."""
    ids = given_import_ids(workspace)
    if not ids:
        return set()
    mask = images["import_id"].isin(list(ids)) & images["split"].notna()
    return set(images.loc[mask, "image_id"].astype(int))


def carve_split(workspace: Workspace, target: str = "test", share: float = 0.1,
                seed: int = 0) -> int:
    """Move a share of each class's train photos into `target` (a split the folders did not
    give), keeping duplicate groups whole; photos in val or test are never taken.

    Args:
        target: 'val' or 'test'.
        share: fraction of each class's photos (all splits) the new split gets, 0 < share < 1
            (default 0.1); at least one photo per class when its train split has two or more.
        seed: seed of the draw (the same seed and photos give the same carve).
    Returns:
        The number of photos moved (split_summary gives the counts after it).
    Raises:
        ConfigError: a bad target or share, or `target` is a split the folders gave.
    """
    if target not in ("val", "test"):
        raise ConfigError(f"Only a val or test split can be carved out of train; got {target!r}.")
    if not 0 < share < 1:
        raise ConfigError(f"The share to carve out of train must be between 0 and 1 (for "
                          f"example 0.1 for 10%); got {share!r}.")
    given = given_split(workspace)
    if given is not None and target in given.splits:
        raise ConfigError(f"The folders already give a {target} split; it is kept as it is. "
                          "Re-split everything instead if you want a new draw.")
    images = all_images(workspace)
    split_of = dict(zip(images["image_id"].astype(int), images["split"]))
    trainable = images[images["is_trainable"]]
    labels = dict(zip(trainable["image_id"].astype(int), trainable["label"]))
    shas = dict(zip(images["image_id"].astype(int), images["sha256"]))
    movable: dict[str, list[list[int]]] = {}
    for members in duplicate_groups(workspace, images):
        usable = [i for i in members if i in labels]
        # A group with a member outside train stays where it is (it would leak otherwise).
        if usable and all(split_of[i] == "train" for i in members if isinstance(split_of[i], str)):
            group_labels = [labels[i] for i in usable]
            label = max(sorted(set(group_labels)), key=group_labels.count)
            movable.setdefault(label, []).append(usable)
    moved: list[int] = []
    for label, groups in movable.items():
        total = int((trainable["label"] == label).sum())
        num_train = sum(len(g) for g in groups)
        wanted = min(num_train - 1, max(1, math.floor(share * total + 0.5)))
        groups.sort(key=lambda g: draw_key(seed, min(shas[i] for i in g)))
        for group in groups:
            if wanted <= 0:
                break
            if len(group) <= wanted:
                moved += group
                wanted -= len(group)
    if moved:
        now = utc_now()
        with workspace.connect() as connection:
            connection.executemany("UPDATE images SET split = ?, updated_at = ? WHERE id = ?",
                                   [(target, now, i) for i in moved])
    saved = _load(workspace)
    saved["carved"] = sorted(set(saved.get("carved", [])) | {target}, key=SPLITS.index)
    workspace.set_setting(SETTING_GIVEN, json.dumps(saved))
    return len(moved)
