"""One ``path,label`` CSV parser for the Data import and the Label page's bulk labels: the same
file reads the same way in both."""
from __future__ import annotations

import pytest

from engine.errors import ImportFailedError, LabelError
from engine.ingest.importing import import_csv
from engine.labeling.csv_labels import apply_label_csv, parse_label_csv
from tests.planted import jpeg_bytes, scene, write


@pytest.mark.parametrize("header", ["path,label\n", "path,class\n", "File,Category\n",
                                    "filename,label,split\n", ""])
def test_every_header_form_reads_the_same_rows(header):
    split = ",train" if "split" in header else ""
    rows = parse_label_csv(f"{header}a/1.jpg,cat{split}\n\nb/2.jpg,{split}\n", "x.csv")
    assert [(row.path, row.label) for row in rows] == [("a/1.jpg", "cat"), ("b/2.jpg", None)]
    assert [row.line for row in rows] == ([1, 3] if not header else [2, 4])
    assert {row.split for row in rows} == ({"train"} if split else {None})


def test_columns_in_any_order_and_bad_headers():
    rows = parse_label_csv("label,path\ncat,a/1.jpg\n")
    assert (rows[0].path, rows[0].label) == ("a/1.jpg", "cat")
    with pytest.raises(LabelError, match="'path' and 'label'"):
        parse_label_csv("file_name,thing\na,b\n")
    with pytest.raises(LabelError, match="Line 2 of x.csv: the split 'holdout'"):
        parse_label_csv("path,label,split\na.jpg,cat,holdout\n", "x.csv")


def test_a_path_class_csv_works_for_import_and_for_labels(workspace, tmp_path):
    for name, class_index in (("pics/one.jpg", 0), ("pics/two.jpg", 1)):
        write(tmp_path / name, jpeg_bytes(scene(class_index + 3, (40, 32), class_index)))
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,class\npics/one.jpg,cat\npics/two.jpg,dog\n")
    report = import_csv(workspace, csv_file)
    # The header is a header on the Data import too: no file called 'path' is looked for.
    assert report.classes == {"cat": 1, "dog": 1} and report.problems == ()
    relabel = tmp_path / "relabel.csv"
    relabel.write_text("path,class\npics/one.jpg,dog\n")
    result = apply_label_csv(workspace, relabel)
    assert result.num_changed == 1 and result.num_unmatched == 0


def test_import_csv_split_column_is_kept(workspace, tmp_path):
    for i in range(4):
        write(tmp_path / f"p{i}.jpg", jpeg_bytes(scene(i + 10, (40, 32), i % 2)))
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,label,split\n" + "".join(
        f"p{i}.jpg,{'ab'[i % 2]},{('train', 'val')[i // 2]}\n" for i in range(4)))
    report = import_csv(workspace, csv_file)
    assert report.given_split == {"train": 2, "val": 2}
    with pytest.raises(ImportFailedError, match="'path' and 'label'"):
        (tmp_path / "bad.csv").write_text("path,thing\n1,2\n")
        import_csv(workspace, tmp_path / "bad.csv")
