"""`python -m engine label-next` on a real import with a tiny random backbone: a cold-start page,
labels back through `label --csv` (new classes created), then one-class suggestions."""
from __future__ import annotations

import json

from engine.__main__ import main
from engine.labeling.labels import class_names
from tests.factories import write_photo

TINY = ["--variant", "MobileNet-0.25", "--weights", "none", "--image-size", "32"]


def _next(workspace, capsys, page=6):
    assert main(["label-next", "--workspace", str(workspace.root), *TINY, "--page", str(page),
                 "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_label_next_cold_start_then_suggestions(workspace, tmp_path, capsys):
    flat = tmp_path / "flat"
    for i in range(12):   # names carry no class
        write_photo(flat / f"photo_{i:02d}.jpg", i % 2, seed=i)
    assert main(["import", str(flat), "--workspace", str(workspace.root)]) == 0
    capsys.readouterr()
    truth = {f"photo_{i:02d}.jpg": "red" if i % 2 == 0 else "green" for i in range(12)}

    first = _next(workspace, capsys, page=4)
    assert first["unlabeled"] == 12 and first["classes"] == []
    assert len(first["images"]) == 4 and all(i["suggested"] is None for i in first["images"])
    assert first["seconds"] >= 0
    # label every photo but four, so the model has both classes
    rows = [f"{name},{label}" for name, label in sorted(truth.items())[:8]]
    (tmp_path / "in.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    assert main(["label", "--workspace", str(workspace.root), "--csv", str(tmp_path / "in.csv")]) == 0
    capsys.readouterr()
    assert set(class_names(workspace)) == {"red", "green"}

    second = _next(workspace, capsys)
    assert second["unlabeled"] == 4 and second["classes"] == ["green", "red"]
    assert second["class_name"] in ("green", "red")
    assert second["images"] and {i["suggested"] for i in second["images"]} == {second["class_name"]}
    assert all(0 <= i["confidence"] <= 1 for i in second["images"])
    assert {i["path"] for i in second["images"]} <= set(truth) - {n for n in sorted(truth)[:8]}
