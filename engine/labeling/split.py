"""The train / validation / test split: stratified, seeded, stable, duplicate-group aware.

The split is stored per image in ``images.split``; the ratios, seed and test lock live in the
``settings`` table. Rules the code enforces:

- *Stratified*: each class is split on its own, so every class has the ratio in every split
  (largest-remainder rounding: within one image of the exact ratio).
- *Stable*: :func:`assign_splits` gives a split only to images that have none, topping up each
  class towards the ratio; re-splitting everything is the explicit ``resplit=True``.
- *Seeded and order-free*: the order in which images are drawn is a hash of (seed, content
  hash), so the same photos give the same split whatever order they were imported in.
- *Leakage-safe*: exact duplicates (same sha256), pairs the checks flagged (``issues`` rows of a
  duplicate kind with ``related_image_id``) and near-identical perceptual hashes form one group
  that always lands in one split, so no photo is in training and test at the same time.
- *Locked test*: with the test set locked, re-splits and top-ups never move images into or out of
  test (except a duplicate of a test image, which must join it there).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import pandas as pd

from engine.errors import ConfigError, DatasetError
from engine.labeling.folder_split import forget_given_split, given_image_ids, given_split
from engine.labeling.split_groups import all_images as _all_images, draw_key, duplicate_groups
from engine.workspace import Workspace, utc_now

SPLITS = ("train", "val", "test")
_WORDS = {"train": "training", "val": "validation", "test": "test"}
SETTING_CONFIG = "split.config"
SETTING_TEST_LOCKED = "split.test_locked"


@dataclass(frozen=True)
class SplitConfig:
    """Ratios of the train / validation / test split and the seed of the draw.

    Attributes:
        train: share of each class for training, 0 < train <= 1 (default 0.8).
        val: share for validation (early stopping, LR schedule), 0..1 (default 0.1).
        test: share held out for the final report, 0..1 (default 0.1).
        seed: any integer; the same seed and photos give the same split (default 0).
    """
    train: float = 0.8
    val: float = 0.1
    test: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in SPLITS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or not 0 <= value <= 1:
                raise ConfigError(f"The {_WORDS[name]} share must be a number from 0 to 1 "
                                  f"(0% to 100%); got {value!r}.")
        if self.train <= 0:
            raise ConfigError(f"The training share must be above 0 (training needs photos); "
                              f"got {self.train!r}.")
        total = self.train + self.val + self.test
        if abs(total - 1) > 1e-6:
            percents = [round(share * 100, 1) for share in (self.train, self.val, self.test)]
            raise ConfigError(
                "Training, validation and test together must add up to 100% (shares that add "
                f"up to 1); they add up to {sum(percents):g}% ({percents[0]:g} + "
                f"{percents[1]:g} + {percents[2]:g}). Change one of them.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"The seed must be a whole number; got {self.seed!r}.")

    @property
    def ratios(self) -> dict[str, float]:
        return {"train": self.train, "val": self.val, "test": self.test}

    @classmethod
    def from_ratios(cls, text: str, seed: int = 0) -> "SplitConfig":
        """From '0.8,0.1,0.1' or '80,10,10' (percentages are scaled to shares)."""
        try:
            values = [float(part) for part in text.replace(" ", "").split(",")]
        except ValueError as err:
            raise ConfigError(f"Ratios must be three numbers like 0.8,0.1,0.1; got '{text}'.") from err
        if len(values) != 3:
            raise ConfigError(f"Ratios must be three numbers (train,val,test); got '{text}'.")
        if sum(values) > 1.5:  # given as percentages
            values = [value / 100 for value in values]
        return cls(*values, seed=seed)


def load_split_config(workspace: Workspace) -> SplitConfig:
    """The ratios and seed saved in the workspace (defaults when never saved)."""
    saved = workspace.get_setting(SETTING_CONFIG)
    if not saved:
        return SplitConfig()
    try:
        return SplitConfig(**json.loads(saved))
    except (ValueError, TypeError, ConfigError):
        return SplitConfig()


def save_split_config(workspace: Workspace, config: SplitConfig) -> None:
    workspace.set_setting(SETTING_CONFIG, json.dumps(asdict(config)))


def is_test_locked(workspace: Workspace) -> bool:
    return workspace.get_setting(SETTING_TEST_LOCKED, "0") == "1"


def set_test_locked(workspace: Workspace, locked: bool) -> None:
    """Lock (or unlock) the test split: while locked, splits never add to or take from it."""
    workspace.set_setting(SETTING_TEST_LOCKED, "1" if locked else "0")


def min_images_per_class(config: SplitConfig) -> int:
    """Fewest images a class needs so each split with a non-zero ratio gets one of them."""
    shares = [share for share in config.ratios.values() if share > 0]
    return max(len(shares), math.ceil(1 / min(shares) - 1e-9))


def check_split(workspace: Workspace, config: SplitConfig | None = None) -> None:
    """Refuse a dataset that cannot be split as asked (call before training).

    Raises:
        DatasetError: fewer than two classes have images, or a class has fewer images than
            the split needs; the message names the class, its count and the count it needs.
    """
    config = config or load_split_config(workspace)
    images = _all_images(workspace)
    counts = images[images["is_trainable"]].groupby("label").size()
    if len(counts) < 2:
        have = "none has" if len(counts) == 0 else f"only '{counts.index[0]}' has"
        raise DatasetError(f"Training needs labeled images of at least two classes; {have} "
                           "usable images. Label images of another class on the Label page.")
    if given_split(workspace, images) is not None:
        _check_given(images)
        return
    needed = min_images_per_class(config)
    small = counts[counts < needed].sort_values()
    if len(small):
        name, have = str(small.index[0]), int(small.iloc[0])
        others = f" ({len(small) - 1} more classes are also too small)" if len(small) > 1 else ""
        percent = "/".join(f"{round(share * 100)}" for share in config.ratios.values())
        raise DatasetError(
            f"Class '{name}' has {have} usable image{'s' if have != 1 else ''}; a {percent} "
            f"train/val/test split needs at least {needed} per class so that every split gets "
            f"one. Add {needed - have} more image{'s' if needed - have != 1 else ''} of "
            f"'{name}', merge or delete the class, or change the ratios{others}.")


def _check_given(images: pd.DataFrame) -> None:
    """With the folders' split kept, each class needs a photo in train (ratios do not apply)."""
    trainable = images[images["is_trainable"]]
    in_train = set(trainable.loc[trainable["split"] == "train", "label"])
    missing = sorted(set(trainable["label"]) - in_train, key=str.casefold)
    if missing:
        raise DatasetError(
            f"Class '{missing[0]}' has no photo in the train split the folders gave"
            + (f" ({len(missing) - 1} more classes neither)" if len(missing) > 1 else "")
            + ". Add its photos to the train folder and import again, or re-split everything "
              "on the Label page.")


def _allocate(num_new: int, existing: dict[str, int], ratios: dict[str, float],
              allowed: tuple[str, ...]) -> dict[str, int]:
    """How many of `num_new` images each allowed split gets so the class approaches `ratios`
    given the counts it already has (largest-remainder rounding)."""
    scale = sum(ratios[s] for s in allowed)
    weights = {s: (ratios[s] / scale if scale > 0 else 1 / len(allowed)) for s in allowed}
    pool = num_new + sum(existing[s] for s in allowed)
    deficit = {s: max(0.0, pool * weights[s] - existing[s]) for s in allowed}
    if sum(deficit.values()) <= 0:
        deficit = dict(weights)
    total_deficit = sum(deficit.values())
    share = {s: num_new * deficit[s] / total_deficit for s in allowed}
    counts = {s: math.floor(share[s] + 1e-9) for s in allowed}
    order = sorted(allowed, key=lambda s: (-(share[s] - counts[s]), SPLITS.index(s)))
    for s in order[:num_new - sum(counts.values())]:
        counts[s] += 1
    return counts


def assign_splits(workspace: Workspace, config: SplitConfig | None = None, *,
                  resplit: bool = False) -> pd.DataFrame:
    """Give a split to every trainable image that has none (or to all, with `resplit`).

    Args:
        config: ratios and seed; None uses the saved ones (defaults 0.8/0.1/0.1, seed 0).
            A given config is saved as the workspace's split settings.
        resplit: draw the split again for all images (a locked test split is kept); this
            forgets a split given by the import's folders (engine.labeling.folder_split).
    Returns:
        The class x split counts after the split, as :func:`split_summary`; ``attrs`` holds
        num_assigned (images given a split) and num_moved (images moved to join a duplicate).

    Without `resplit`, a photo whose split its folders gave is never moved (a duplicate joins
    it instead), and new photos are drawn only into the splits the folders gave or that were
    carved out of train.
    """
    if config is None:
        config = load_split_config(workspace)
    else:
        save_split_config(workspace, config)
    locked = is_test_locked(workspace)
    images = _all_images(workspace)
    split_of = _splits_of(images)
    given = None if resplit else given_split(workspace, images)
    kept = given_image_ids(workspace, images) if given else set()
    if resplit:
        forget_given_split(workspace)
        split_of = {i: (s if locked and s == "test" else None) for i, s in split_of.items()}
    trainable = set(images.loc[images["is_trainable"], "image_id"].astype(int))
    labels = dict(zip(images["image_id"].astype(int), images["label"]))
    shas = dict(zip(images["image_id"].astype(int), images["sha256"]))
    groups = duplicate_groups(workspace, images)
    in_use = (*given.splits, *given.carved) if given else SPLITS
    allowed = tuple(s for s in SPLITS if s in in_use and not (locked and s == "test")) or ("train",)
    pending: dict[str, list[list[int]]] = {}
    moved = 0
    for members in groups:
        taken = [split_of[i] for i in members if i in kept] or [
            split_of[i] for i in members if split_of[i] is not None]
        if taken:  # the group already lives somewhere: every member joins it there
            home = "test" if "test" in taken and locked else max(
                set(taken), key=lambda s: (taken.count(s), -SPLITS.index(s)))
            for i in members:
                if i in trainable and i not in kept and split_of[i] != home:
                    moved += split_of[i] is not None
                    split_of[i] = home
            continue
        todo = [i for i in members if i in trainable]
        if todo:
            group_labels = [labels[i] for i in todo]
            label = max(sorted(set(group_labels)), key=group_labels.count)
            pending.setdefault(label, []).append(todo)
    num_assigned = 0
    for label, label_groups in pending.items():
        in_class = [i for i in trainable if labels[i] == label and split_of[i] is not None]
        existing = {s: sum(1 for i in in_class if split_of[i] == s) for s in SPLITS}
        need = _allocate(sum(len(g) for g in label_groups), existing, config.ratios, allowed)
        # Bigger groups first (they are hard to place), then a seeded, order-free draw.
        label_groups.sort(key=lambda g: (-len(g), draw_key(config.seed, min(shas[i] for i in g))))
        for group in label_groups:
            target = max(allowed, key=lambda s: (need[s], -SPLITS.index(s)))
            need[target] -= len(group)
            for i in group:
                split_of[i] = target
            num_assigned += len(group)
    _store(workspace, images, split_of)
    summary = split_summary(workspace)
    summary.attrs.update(num_assigned=num_assigned, num_moved=moved)
    return summary


def _splits_of(images: pd.DataFrame) -> dict[int, str | None]:
    return {int(i): (s if isinstance(s, str) else None)
            for i, s in zip(images["image_id"], images["split"])}


def _store(workspace: Workspace, images: pd.DataFrame, split_of: dict[int, str | None]) -> None:
    before = _splits_of(images)
    changed = [(s, utc_now(), i) for i, s in split_of.items() if before.get(i) != s]
    if changed:
        with workspace.connect() as connection:
            connection.executemany("UPDATE images SET split = ?, updated_at = ? WHERE id = ?",
                                   changed)


def split_summary(workspace: Workspace) -> pd.DataFrame:
    """Class x split counts of the trainable images.

    Returns:
        DataFrame with one row per class (sorted by name) and columns class, train, val,
        test, unassigned, total (all ints).
    """
    images = _all_images(workspace)
    usable = images[images["is_trainable"]].copy()
    usable["split"] = usable["split"].fillna("unassigned")
    columns = [*SPLITS, "unassigned"]
    table = (usable.groupby(["label", "split"]).size().unstack(fill_value=0)
             .reindex(columns=columns, fill_value=0))
    table = table.loc[sorted(table.index, key=lambda n: (n.casefold(), n))]
    table["total"] = table[columns].sum(axis=1)
    table = table.astype(int).reset_index().rename(columns={"label": "class"})
    table.columns.name = None
    return table[["class", *columns, "total"]]


def split_counts(summary: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{class: {"train": n, "val": n, "test": n}} from a summary (the CLI's JSON)."""
    return {str(row["class"]): {s: int(row[s]) for s in SPLITS}
            for _, row in summary.iterrows()}
