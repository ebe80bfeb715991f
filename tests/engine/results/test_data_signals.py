"""engine.results.data_signals: cleanlab's Datalab finds planted flips, an outlier and a
look-alike pair in generated features, in the Data page's issue schema."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.results.data_signals import (LOOK_ALIKE_KIND, SIGNAL_COLUMNS, SIGNAL_KINDS,
                                         find_data_signals, record_look_alikes)
from engine.runs import RunFolder
from tests.canned_runs import CannedImage, write_run_folder

CLASSES = ("cat", "dog")
NUM_PER_CLASS = 60
FLIPPED = (3, 70)          # positions whose label is planted wrong
OUTLIER = 20               # position whose features are far from every cluster
LOOK_ALIKE = (40, 100)     # position 100 becomes a near copy of 40 (same class)


def _planted_run(tmp_path):
    rng = np.random.default_rng(0)
    dims = 32
    centres = rng.normal(0, 3, (2, dims))
    labels = np.repeat([0, 1], NUM_PER_CLASS)
    features = centres[labels] + rng.normal(0, 1, (len(labels), dims))
    features[OUTLIER] = centres[0] + rng.normal(0, 1, dims) + 25.0
    features[LOOK_ALIKE[1]] = features[LOOK_ALIKE[0]] + rng.normal(0, 1e-3, dims)
    given = labels.copy()
    for position in FLIPPED:
        given[position] = 1 - given[position]
    # the run's own model learned the flipped labels: it agrees with them
    images = [CannedImage(i + 1, f"{CLASSES[label]}/img_{i}.jpg", "train", CLASSES[label],
                          (0.9, 0.1) if label == 0 else (0.1, 0.9))
              for i, label in enumerate(given)]
    labels[LOOK_ALIKE[1]] = labels[LOOK_ALIKE[0]]
    return write_run_folder(tmp_path / "run", images, CLASSES, features=features), labels


@pytest.fixture(scope="module")
def signals(tmp_path_factory):
    run_dir, labels = _planted_run(tmp_path_factory.mktemp("signals"))
    return find_data_signals(run_dir), labels


def test_planted_flips_are_label_issues_with_their_true_class(signals):
    table, labels = signals
    assert list(table.columns) == SIGNAL_COLUMNS
    issues = table[table["kind"] == "label"]
    found = set(issues["image_id"] - 1)
    assert set(FLIPPED) <= found and len(found) <= 2 * len(FLIPPED)
    for row in issues[(issues["image_id"] - 1).isin(FLIPPED)].itertuples():
        assert row.suggested == CLASSES[labels[row.image_id - 1]]
        assert row.self_confidence < 0.5 < row.suggested_confidence
        # the run's own model agrees with the wrong label; the detail says whose view it is
        assert row.model_predicted == row.label
        assert "trained without this photo" in row.detail


def test_the_far_away_image_is_an_outlier(signals):
    table, _ = signals
    outliers = table[table["kind"] == "outlier"]
    assert OUTLIER + 1 in set(outliers["image_id"])
    assert outliers["image_id"].iloc[0] == OUTLIER + 1        # most severe first


def test_the_look_alike_pair_is_one_near_duplicate_row(signals):
    table, _ = signals
    pairs = table[table["kind"] == "near_duplicate"]
    assert len(pairs) == 1
    row = pairs.iloc[0]
    assert (row["image_id"], row["related_image_id"]) == (LOOK_ALIKE[1] + 1, LOOK_ALIKE[0] + 1)
    assert row["related_path"].endswith(f"img_{LOOK_ALIKE[0]}.jpg")


def test_kinds_are_grouped_and_sorted_by_severity(signals):
    table, _ = signals
    kinds = list(dict.fromkeys(table["kind"]))
    assert kinds == [kind for kind in SIGNAL_KINDS if kind in kinds]
    for _, group in table.groupby("kind"):
        assert group["score"].is_monotonic_increasing
    assert table["score"].between(0, 1).all()


def test_look_alikes_are_stored_where_the_split_groups_read_them(signals, workspace):
    from engine.labeling.split_groups import duplicate_groups
    from tests.canned_runs import insert_images

    table, _ = signals
    ids = insert_images(workspace, ["cat"] * 120, ["train"] * 120, size_px=16)
    assert ids == list(range(1, 121))      # image ids match the canned run's
    assert record_look_alikes(workspace, table) == 1
    assert record_look_alikes(workspace, table) == 1      # replaced, not doubled
    with workspace.connect() as connection:
        kinds = [row[0] for row in connection.execute("SELECT kind FROM issues")]
        frame = pd.read_sql_query("SELECT id AS image_id, sha256, phash FROM images",
                                  connection)
    assert kinds == [LOOK_ALIKE_KIND]
    groups = duplicate_groups(workspace, frame)
    assert [LOOK_ALIKE[0] + 1, LOOK_ALIKE[1] + 1] in groups


def test_cli_prints_the_issue_schema(signals, tmp_path, capsys):
    from engine.__main__ import main

    run_dir, _ = _planted_run(tmp_path)
    assert main(["data-issues", "--run", str(run_dir), "--json"]) == 0
    issues = json.loads(capsys.readouterr().out)["issues"]
    assert {issue["kind"] for issue in issues} == set(SIGNAL_KINDS)
    assert all({"path", "kind", "score", "detail", "suggested", "related_path"} <= set(issue)
               for issue in issues)
    label = next(issue for issue in issues if issue["kind"] == "label")
    assert label["suggested"] in CLASSES and label["related_path"] is None


def test_label_top_lists_more_to_review_without_flagging_them(tmp_path):
    run_dir, _ = _planted_run(tmp_path)
    table = find_data_signals(run_dir, label_top=10)
    labels = table[table["kind"] == "label"]
    assert len(labels) >= 10 and labels["score"].is_monotonic_increasing
    flagged = labels[labels["is_flagged"]]
    assert set(FLIPPED) <= set(flagged["image_id"] - 1)
    assert not labels["is_flagged"].all()        # the extra rows are marked as not flagged
    assert table[table["kind"] != "label"]["is_flagged"].all()


def test_one_process_audits_runs_of_different_sizes_one_after_another(tmp_path):
    """As the app does: run after run in one server process (Datalab once kept the first
    run's inputs in shared settings and the second audit found no label column)."""
    run_dir, _ = _planted_run(tmp_path / "first")
    first = find_data_signals(run_dir)
    images = pd.read_csv(RunFolder(run_dir).predictions).head(100)
    with np.load(RunFolder(run_dir).embeddings) as data:
        features = data["features"][:100]
    smaller = write_run_folder(
        tmp_path / "second", [CannedImage(int(row.image_id), row.path, row.split, row.true,
                                          (row.prob_cat, row.prob_dog))
                              for row in images.itertuples()], CLASSES, features=features)
    second = find_data_signals(smaller)
    assert {"label", "outlier"} <= set(first["kind"]) and "label" in set(second["kind"])
