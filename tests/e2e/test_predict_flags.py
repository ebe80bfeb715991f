"""Predict in a real browser (issue 22 items 1-2): a folder with broken files (corrupt PNG,
garbled JPEG, a 1x1 photo, Windows' Thumbs.db) and a photo unlike the training photos; every
file gets a row, the broken ones say why in the import's words, the foreign one "Looks like
none of the classes". Screenshot: test-artifacts/e2e/predict_flags.png."""
from __future__ import annotations

from PIL import Image

from engine.workspace import open_workspace
from tests.e2e.conftest import screenshot
from tests.e2e.driving import act_until, click, settle, type_value
from tests.engine.tiny_runs import add_finished_run, image_table
from tests.planted import (
    bad_crc_png,
    garble_jpeg,
    jpeg_bytes,
    png_bytes,
    scene,
    thumbs_db,
    write,
)


def test_predict_says_why_for_broken_files_and_foreign_photos(page, app_url, workspace_path,
                                                              tmp_path):
    page.goto(app_url)
    page.get_by_text("Imported the sample project").wait_for(timeout=180_000)
    images = image_table(tmp_path / "photos", per_class=8)
    images["image_id"] += 1_000_000            # ids that are not the sample project's photos
    add_finished_run(open_workspace(workspace_path), images, epochs=3)
    folder = tmp_path / "new photos"
    write(folder / "garbled.jpg", garble_jpeg(jpeg_bytes(scene(902, (160, 120)), quality=95)))
    write(folder / "bad_crc.png", bad_crc_png(png_bytes(scene(901, (48, 48)))))
    write(folder / "pixel.jpg", jpeg_bytes(Image.new("RGB", (1, 1), (200, 30, 30))))
    write(folder / "Thumbs.db", thumbs_db())
    write(folder / "blank.png", png_bytes(Image.new("RGB", (96, 96), (255, 255, 255))))

    page.goto(f"{app_url}/Predict")
    source = page.get_by_role("radio", name="A folder on this computer")
    act_until(page, lambda: page.get_by_text("A folder on this computer").click(),
              source.is_checked, what="a folder")
    type_value(page, page.get_by_label("Folder path (searched recursively)"), str(folder))
    page.get_by_text("5 files found.").wait_for()
    click(page, page.get_by_role("button", name="Predict 5 file(s)"))
    page.get_by_text("Looks like none of the classes (closest:").first.wait_for(timeout=180_000)
    main = page.get_by_test_id("stMain")
    for words in ("Windows' Thumbs.db", "The JPEG data is damaged", "1x1 px",
                  "bad header checksum"):
        main.get_by_text(words).first.wait_for()
    settle(page)
    text = main.inner_text()
    assert text.count("Could not be read:") == 4
    assert "✅" not in text.split("Looks like none of the classes (closest:")[1][:40]
    screenshot(page, "predict_flags")
