"""The split: stratified, seeded, stable on add, duplicate groups together, locked test kept."""
from __future__ import annotations

import pytest

from engine.labeling import labels
from engine.errors import ConfigError, DatasetError
from engine.labeling.split import (SplitConfig, assign_splits, check_split, load_split_config,
                          min_images_per_class, set_test_locked, split_counts, split_summary)
from engine.labeling.split_groups import near_duplicate_pairs
from tests.engine.labeling_data import image_splits, insert_images


@pytest.mark.parametrize("kwargs, field", [
    ({"train": 1.2, "val": 0, "test": -0.2}, "train"), ({"val": -0.1, "test": 0.2}, "val"),
    ({"train": 0.5}, "add up to 1"), ({"seed": 1.5}, "seed"), ({"train": 0, "val": 0.5, "test": 0.5}, "train")])
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        SplitConfig(**kwargs)


def test_ratios_from_text():
    assert SplitConfig.from_ratios("70,20,10", seed=3) == SplitConfig(0.7, 0.2, 0.1, 3)
    with pytest.raises(ConfigError):
        SplitConfig.from_ratios("0.8,0.2")


@pytest.mark.parametrize("per_class", [(10, 37), (23, 101), (57, 58)])
def test_stratified_within_one_image_of_the_ratio(workspace, per_class):
    insert_images(workspace, ["a"] * per_class[0] + ["b"] * per_class[1])
    config = SplitConfig(0.7, 0.2, 0.1, seed=5)
    summary = assign_splits(workspace, config).set_index("class")
    for name, total in zip("ab", per_class):
        row = summary.loc[name]
        assert row["unassigned"] == 0 and row["total"] == total
        for split, share in config.ratios.items():
            assert abs(row[split] - share * total) <= 1, (name, split, row[split])
    assert summary.attrs["num_assigned"] == sum(per_class)


def test_same_seed_same_split_other_seed_differs(tmp_path):
    from engine.workspace import open_workspace
    results = []
    for name, seed in (("one", 1), ("two", 1), ("three", 2)):
        workspace = open_workspace(tmp_path / name)
        insert_images(workspace, ["a"] * 30 + ["b"] * 30)
        assign_splits(workspace, SplitConfig(seed=seed))
        results.append(image_splits(workspace))
    assert results[0] == results[1]
    assert results[0] != results[2]


def test_adding_images_keeps_existing_splits(workspace):
    first = insert_images(workspace, ["a"] * 20 + ["b"] * 20)
    assign_splits(workspace, SplitConfig(seed=0))
    before = image_splits(workspace)
    added = insert_images(workspace, ["a"] * 20 + ["b"] * 20, prefix="new")
    summary = assign_splits(workspace).set_index("class")
    after = image_splits(workspace)
    assert {i: after[i] for i in first} == before
    assert all(after[i] is not None for i in added)
    assert summary.attrs["num_assigned"] == 40
    # topped up towards the ratio: 40 per class -> 32/4/4
    assert summary.loc["a", ["train", "val", "test"]].tolist() == [32, 4, 4]


def test_resplit_redraws_but_keeps_locked_test(workspace):
    insert_images(workspace, ["a"] * 40 + ["b"] * 40)
    assign_splits(workspace, SplitConfig(seed=0))
    test_before = {i for i, s in image_splits(workspace).items() if s == "test"}
    set_test_locked(workspace, True)
    assign_splits(workspace, SplitConfig(seed=9), resplit=True)
    after = image_splits(workspace)
    assert {i for i, s in after.items() if s == "test"} == test_before
    set_test_locked(workspace, False)
    assign_splits(workspace, SplitConfig(seed=9), resplit=True)
    assert {i for i, s in image_splits(workspace).items() if s == "test"} != test_before


def test_locked_test_gets_no_new_images(workspace):
    insert_images(workspace, ["a"] * 20)
    assign_splits(workspace)
    set_test_locked(workspace, True)
    insert_images(workspace, ["a"] * 20, prefix="new")
    summary = assign_splits(workspace).set_index("class")
    assert summary.loc["a", "test"] == 2
    assert summary.loc["a", "train"] + summary.loc["a", "val"] == 38


def test_exact_and_near_duplicates_share_a_split(workspace):
    # 10 exact pairs (same sha256), 10 near pairs (phash 2 bits apart), 60 singles per class.
    shas, phashes, names = [], [], []
    for k in range(10):
        shas += [f"{k:064x}"] * 2
        phashes += [None, None]
    for k in range(10):
        base = (k * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)
        shas += [f"near{k}a".ljust(64, "0"), f"near{k}b".ljust(64, "0")]
        phashes += [f"{base:016x}", f"{base ^ 0b101:016x}"]
    for k in range(60):
        shas.append(f"single{k}".ljust(64, "1"))
        phashes.append(f"{(k * 0x2545F4914F6CDD1D + 12345) & ((1 << 64) - 1):016x}")
    names = (["a", "b"] * 50)
    ids = insert_images(workspace, names, shas=shas, phashes=phashes)
    # a pair only the checks know about (an issues row)
    with workspace.connect() as connection:
        connection.execute("INSERT INTO issues(image_id, kind, severity, detail, related_image_id,"
                           " created_at) VALUES (?, 'near_duplicate', 'warning', 'x', ?, 'now')",
                           (ids[-1], ids[-2]))
    for seed in range(5):
        assign_splits(workspace, SplitConfig(0.5, 0.25, 0.25, seed=seed), resplit=True)
        splits = image_splits(workspace)
        for k in range(20):
            assert splits[ids[2 * k]] == splits[ids[2 * k + 1]], (seed, k)
        assert splits[ids[-1]] == splits[ids[-2]]


def test_new_duplicate_of_a_test_image_joins_test(workspace):
    ids = insert_images(workspace, ["a"] * 20)
    assign_splits(workspace)
    test_id = next(i for i, s in image_splits(workspace).items() if s == "test")
    with workspace.connect() as connection:
        sha = connection.execute("SELECT sha256 FROM images WHERE id = ?", (test_id,)).fetchone()[0]
    copy = insert_images(workspace, ["a"], shas=[sha], prefix="copy")[0]
    assign_splits(workspace)
    assert image_splits(workspace)[copy] == "test"
    assert len(ids) == 20


def test_unlabeled_and_quarantined_images_get_no_split(workspace):
    ids = insert_images(workspace, ["a"] * 10 + [None])
    with workspace.connect() as connection:
        connection.execute("UPDATE images SET status = 'quarantined' WHERE id = ?", (ids[0],))
    summary = assign_splits(workspace)
    splits = image_splits(workspace)
    assert splits[ids[0]] is None and splits[ids[-1]] is None
    assert summary.set_index("class").loc["a", "total"] == 9


def test_too_small_class_error_names_class_and_count(workspace):
    insert_images(workspace, ["big"] * 20 + ["tiny"] * 4)
    with pytest.raises(DatasetError, match=r"'tiny' has 4 usable images.*at least 10.*Add 6 more"):
        check_split(workspace, SplitConfig())
    check_split(workspace, SplitConfig(0.5, 0.25, 0.25))  # 4 is enough for 50/25/25
    assert min_images_per_class(SplitConfig(1.0, 0.0, 0.0)) == 1


def test_one_class_is_refused(workspace):
    insert_images(workspace, ["only"] * 30)
    with pytest.raises(DatasetError, match="at least two classes"):
        check_split(workspace)


def test_config_is_saved_and_summary_follows_relabel(workspace):
    ids = insert_images(workspace, ["a"] * 10 + ["b"] * 10)
    assign_splits(workspace, SplitConfig(0.6, 0.2, 0.2, seed=4))
    assert load_split_config(workspace) == SplitConfig(0.6, 0.2, 0.2, seed=4)
    labels.rename_class(workspace, "a", "A")
    summary = split_summary(workspace)
    assert list(summary["class"]) == ["A", "b"]
    assert split_counts(summary)["A"] == {"train": 6, "val": 2, "test": 2}
    labels.assign_labels(workspace, ids[:1], None, source="test")
    assert split_summary(workspace).set_index("class").loc["A", "total"] == 9


def test_near_duplicate_pairs_finds_only_close_hashes():
    hashes = {1: 0, 2: 0b1111, 3: 0b11111, 4: (1 << 63) | 1}
    # 1-3 differ in 5 bits, 3-4 in 5 (bit 63 + four low bits); the rest in at most 4
    assert sorted(near_duplicate_pairs(hashes, max_bits=4)) == [(1, 2), (1, 4), (2, 3), (2, 4)]
