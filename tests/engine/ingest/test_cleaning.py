"""engine.ingest.cleaning: one-click cleaning quarantines broken files and extra copies, and
leaves copies with different labels for a person ("Which is right?"), on a real workspace."""
from __future__ import annotations

import pytest

from engine.errors import ConfigError, WorkspaceError
from engine.ingest.cleaning import (plan_cleaning, quarantine_flagged, resolve_conflict)
from engine.ingest.importing import import_files
from engine.ingest.issues import find_issues
from engine.ingest.quarantine import restore_images
from engine.labeling.dataset import unquarantined_errors
from tests.planted import jpeg_bytes, scene

CONFLICT = ("Cat/cat.4012.jpg", "Dog/cat.4012.jpg")     # one photo under two labels
COPIES = ("Cat/cat.7.jpg", "Cat/cat.7_copy.jpg", "Cat/copy of cat.7.jpg")   # same label


def _status(workspace) -> dict[str, str]:
    with workspace.connect() as connection:
        return {path: status for path, status in connection.execute(
            "SELECT source_path, status FROM images")}


def import_messy(workspace, per_class: int = 3,
                 broken: tuple[tuple[str, bytes], ...] = (("Cat/empty.jpg", b""),)) -> None:
    """Import `per_class` distinct photos under Cat/ and Dog/ each, the conflict pair (one photo
    under both labels), three same-label copies and the `broken` files."""
    conflict, copy = jpeg_bytes(scene(40)), jpeg_bytes(scene(41, class_index=1))
    files = [(f"{label}/{label.lower()}.{n}.jpg", jpeg_bytes(scene(n, class_index=index)))
             for index, label in enumerate(("Cat", "Dog")) for n in range(per_class)]
    files += [(path, conflict) for path in CONFLICT] + [(path, copy) for path in COPIES]
    import_files(workspace, [*files, *broken], workers=1)


@pytest.fixture
def messy(workspace):
    """Eight distinct photos, a conflict pair, three same-label copies, two broken files."""
    import_messy(workspace, per_class=4,
                 broken=(("Cat/empty.jpg", b""), ("Dog/page.jpg", b"<html>404</html>")))
    return workspace


def test_plan_lists_without_changing_anything(messy):
    before = _status(messy)
    plan = plan_cleaning(messy)
    assert _status(messy) == before
    assert set(plan.to_quarantine["path"]) == {"Cat/empty.jpg", "Dog/page.jpg", *COPIES[1:]}
    assert [(d.kind, d.paths, d.labels) for d in plan.left_for_you] == [
        ("label_conflict", CONFLICT, ("Cat", "Dog"))]
    assert plan.left_for_you[0].choices == ("Cat", "Dog")
    assert set(plan.flagged["path"]) == {*plan.to_quarantine["path"], *CONFLICT}


def test_quarantine_flagged_keeps_one_copy_and_leaves_the_conflict(messy):
    result = quarantine_flagged(messy)
    assert sorted(result.quarantined) == sorted(["Cat/empty.jpg", "Dog/page.jpg", *COPIES[1:]])
    status = _status(messy)
    assert status[COPIES[0]] == "ok"                         # one copy stays
    assert status[CONFLICT[0]] == status[CONFLICT[1]] == "ok"   # the person's call
    assert [d.paths for d in result.left_for_you] == [CONFLICT]
    # Still listed, still blocking training until the person decides.
    issues = find_issues(messy)
    assert set(issues[(issues["status"] == "ok")]["path"]) == set(CONFLICT)
    assert set(unquarantined_errors(messy)["source_path"]) == set(CONFLICT)
    again = quarantine_flagged(messy)                        # nothing more to do
    assert again.quarantined == () and [d.paths for d in again.left_for_you] == [CONFLICT]


def test_only_the_chosen_kinds_and_never_a_persons_kind(messy):
    result = quarantine_flagged(messy, ["zero_byte"])
    assert result.quarantined == ("Cat/empty.jpg",)
    with pytest.raises(ConfigError, match="your call"):
        quarantine_flagged(messy, ["label_conflict"])
    with pytest.raises(ConfigError, match="Unknown kind 'broken'"):
        plan_cleaning(messy, ["broken"])


@pytest.mark.parametrize("keep, kept, dropped", [("Cat", 0, (1,)), ("Dog", 1, (0,)),
                                                   (None, None, (0, 1))])
def test_which_is_right(messy, keep, kept, dropped):
    decision = plan_cleaning(messy).left_for_you[0]
    changed = resolve_conflict(messy, decision.image_ids, keep)
    assert sorted(changed) == sorted(decision.image_ids[i] for i in dropped)
    status = _status(messy)
    assert [status[path] for path in CONFLICT] == [
        "ok" if i == kept else "quarantined" for i in range(2)]
    assert plan_cleaning(messy).left_for_you == ()
    assert not set(CONFLICT) & set(unquarantined_errors(messy)["source_path"])
    assert restore_images(messy, changed) == len(changed)      # reversible
    assert [d.paths for d in plan_cleaning(messy).left_for_you] == [CONFLICT]


def test_a_near_copy_under_another_label_is_left_too(workspace):
    photo = scene(50, size=(96, 72))
    files = [("Cat/a.jpg", jpeg_bytes(photo, quality=95)),
             ("Dog/a_resaved.jpg", jpeg_bytes(photo, quality=60))]
    files += [(f"Cat/other{n}.jpg", jpeg_bytes(scene(n))) for n in range(3)]
    import_files(workspace, files, workers=1)
    result = quarantine_flagged(workspace)
    assert result.quarantined == ()
    assert [(d.kind, d.paths) for d in result.left_for_you] == [
        ("label_conflict", ("Cat/a.jpg", "Dog/a_resaved.jpg"))]
    assert resolve_conflict(workspace, result.left_for_you[0].image_ids, "Dog")
    assert _status(workspace)["Cat/a.jpg"] == "quarantined"


def test_resolve_refuses_a_label_the_group_does_not_have(messy):
    decision = plan_cleaning(messy).left_for_you[0]
    with pytest.raises(WorkspaceError, match="'Bird'"):
        resolve_conflict(messy, decision.image_ids, "Bird")
