"""Import photos into the workspace: class-folder trees, zip archives, uploaded files, CSVs.

Every file is hashed, checked (engine.ingest.checks), copied into the content-addressed store and,
when training needs it, given a normalised copy (engine.ingest.imaging). Broken files are recorded
too (with their issues), so they can be shown and quarantined; nothing is silently dropped.
Imports stream through engine.ingest.pipeline: bounded work in flight, one transaction per
chunk, restartable after a kill (re-running skips what is already there).
"""
from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Union

from engine.ingest import filewalk
from engine.ingest.checks import CheckConfig
from engine.errors import ImportFailedError, LabelError
from engine.labeling.csv_labels import read_label_csv
from engine.ingest.pipeline import (ImportItem, ImportProgress, ImportReport, Problem,
                                    Progress, replace_item, run_import)
from engine.workspace import Workspace, utc_now

__all__ = ["ImportProgress", "ImportReport", "Problem", "import_csv", "import_files",
           "import_folder", "import_sample_project", "import_zip", "should_import_sample"]

# A zip member bigger than this is refused before reading (zip bombs, video files).
MAX_MEMBER_BYTES = 256 * 1024 * 1024
# A member above this size packed more than MAX_COMPRESSION_RATIO times is refused too,
# so many medium-sized bombs cannot add up to a full disk.
SUSPICIOUS_MEMBER_BYTES = 16 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
FileInput = Union[Path, str, tuple[str, bytes]]
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")

# ----- public entry points ------------------------------------------------------------------

def import_folder(workspace: Workspace, root: Path, *, default_label: str | None = None,
                  progress: Progress | None = None, config: CheckConfig | None = None,
                  workers: int | None = None) -> ImportReport:
    """Import a folder of class subfolders (subfolder name = label, e.g. PetImages/Cat).

    Args:
        root: the folder. Files directly in it get `default_label` (None = unlabeled).
            A split folder level (train/, val/ or valid/ or validation/, test/, any letter
            case, also one level down: dataset/train/cat/) is not a class: the photos keep
            that split (engine.labeling.folder_split) and take the class below it.
        progress: called after every chunk of files.
        config: check thresholds; workers: processes (default: all cores).
    Returns:
        The :class:`ImportReport`.
    Raises:
        ImportFailedError: `root` is not a folder or holds no files to import.
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ImportFailedError(f"The folder '{root}' does not exist or is not a folder. "
                                "Check the path (copy it from your file manager).")
    folder = folder.resolve()
    total = sum(1 for _ in filewalk.iter_files(folder))
    if total == 0:
        raise ImportFailedError(f"The folder '{folder}' holds no files to import. Put your "
                                "photos in it, one subfolder per class.")
    items = (_folder_item(folder, relative, default_label)
             for relative in filewalk.iter_files(folder))
    return run_import(workspace, str(folder), "folder", items, total, progress, config, workers)


def _folder_item(folder: Path, relative: str, default_label: str | None) -> ImportItem:
    label, split = filewalk.place_from_path(relative)
    label = label or default_label
    if relative.lower().endswith(".zip"):
        return ImportItem(relative, label, failure=(
            "archive", "A zip archive inside the folder is not opened: import it on its own."))
    return ImportItem(relative, label, split, file_path=str(folder / relative))


def import_zip(workspace: Workspace, zip_file: Path | str | IO[bytes], *,
               label: str | None = None, use_subfolders: bool = True, name: str | None = None,
               progress: Progress | None = None, config: CheckConfig | None = None,
               workers: int | None = None) -> ImportReport:
    """Import a .zip archive (a path or an open binary file, e.g. an upload).

    Args:
        label: class of every file (overrides subfolders); None = take the class from the
            archive's subfolders when `use_subfolders`, else unlabeled.
        name: how the archive is called in the workspace (default its file name).
    Raises:
        ImportFailedError: not a zip archive, damaged, or without files.
    """
    source = name or (Path(zip_file).name if isinstance(zip_file, (str, Path)) else "upload.zip")
    try:
        archive = zipfile.ZipFile(zip_file)
    except (zipfile.BadZipFile, OSError) as err:
        raise ImportFailedError(f"'{source}' is not a readable zip archive ({err}). Re-create "
                                "the archive or import the folder instead.") from err
    with archive:
        members = _zip_members(archive)
        if not members:
            raise ImportFailedError(f"The archive '{source}' holds no files to import.")
        strip = _common_top_folder([member.filename for member in members
                                    if _member_refusal(member) is None])
        items = _zip_items(archive, members, strip, label, use_subfolders)
        return run_import(workspace, source, "zip", items, len(members), progress, config,
                           workers, skipped=())


def _zip_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Members that are files to look at (folders, hidden files, __MACOSX and side files out)."""
    members = []
    for member in archive.infolist():
        parts = PurePosixPath(member.filename.replace("\\", "/")).parts
        if member.is_dir() or not parts or any(part in filewalk.SKIPPED_FOLDERS or
                                               part.startswith(".") and part != ".."
                                               for part in parts[:-1]):
            continue
        if filewalk.is_candidate(parts[-1]):
            members.append(member)
    return members


def _common_top_folder(names: list[str]) -> str:
    """'PetImages/' when every member is PetImages/<class>/<file>; else ''. A split folder
    (train/ alone) is never stripped: it carries the split."""
    parts = [PurePosixPath(name.replace("\\", "/")).parts for name in names]
    tops = {part[0] for part in parts}
    if len(tops) == 1 and all(len(part) >= 3 for part in parts) \
            and filewalk.split_of_folder(next(iter(tops))) is None:
        return tops.pop() + "/"
    return ""


def _member_refusal(member: zipfile.ZipInfo) -> tuple[str, str] | None:
    """Why a zip member is not read: an entry escaping the archive, a link, a nested zip."""
    name = member.filename.replace("\\", "/")
    if ".." in PurePosixPath(name).parts:
        return ("unsafe_path", "The archive entry points outside the archive's folder (../); "
                               "refused for safety.")
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        return ("unsafe_path", "The archive entry has an absolute path (it starts with '/' or "
                               "a drive letter such as C:), so it would land outside the "
                               "archive's folder; refused for safety. Re-create the archive "
                               "from the photos' folder.")
    if (member.external_attr >> 16) & 0o170000 == 0o120000:
        return ("symlink", "A symbolic link inside the archive; links are not followed. Put "
                           "the photo itself in the archive.")
    if member.filename.lower().endswith(".zip"):
        return ("archive", "A zip inside the archive is not opened: unpack it and import it "
                           "separately.")
    if member.file_size > MAX_MEMBER_BYTES:
        return ("decompression_bomb", f"{member.file_size:,} bytes unpacked is above the "
                f"{MAX_MEMBER_BYTES:,}-byte limit for one file; not read.")
    ratio = member.file_size / max(1, member.compress_size)
    if member.file_size > SUSPICIOUS_MEMBER_BYTES and ratio > MAX_COMPRESSION_RATIO:
        # Photos hardly compress; a big entry packed this tightly is a zip bomb (or a blank
        # uncompressed picture, which is no use for training either).
        return ("decompression_bomb", f"{member.file_size:,} bytes unpacked from "
                f"{member.compress_size:,} (x{ratio:,.0f}): packed too tightly to be a photo; "
                "not read. If it is one, extract the archive and import the folder.")
    return None


def _zip_items(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], strip: str,
               label: str | None, use_subfolders: bool) -> Iterator[ImportItem]:
    for member in members:
        name = member.filename.replace("\\", "/")
        refusal = _member_refusal(member)
        relative = name if refusal and refusal[0] == "unsafe_path" else _safe_name(name)
        relative = relative[len(strip):] if strip and relative.startswith(strip) else relative
        folder_label, split = filewalk.place_from_path(relative)
        item_label = label or (folder_label if use_subfolders else None)
        split = split if use_subfolders else None
        if refusal is not None:
            yield ImportItem(relative, None if refusal[0] == "unsafe_path" else item_label,
                             failure=refusal)
            continue
        try:
            data = archive.read(member)
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, ValueError) as err:
            yield ImportItem(relative, item_label, failure=(
                "unreadable", f"Cannot be unpacked from the archive ({err})."))
            continue
        yield ImportItem(relative, item_label, split, data=data)


def import_files(workspace: Workspace, files: Iterable[FileInput], *, label: str | None = None,
                 use_subfolders: bool = True, source: str = "upload", total: int | None = None,
                 progress: Progress | None = None, config: CheckConfig | None = None,
                 workers: int | None = None) -> ImportReport:
    """Import single files: ``(name, bytes)`` pairs (browser uploads) or file paths.

    Args:
        files: an iterable (may be a generator: files are consumed as they are imported).
            A name may carry folders ('cat/x.jpg'); its top folder is the class when
            `use_subfolders` and no `label` is given.
        label: class of every file; None = from the name's folder, else unlabeled.
        source: how the upload is called in the workspace.
        total: number of files, for progress (default: len(files) when it has one).
    Raises:
        ImportFailedError: no files given.
    """
    if total is None and hasattr(files, "__len__"):
        total = len(files)  # type: ignore[arg-type]
    if total == 0:
        raise ImportFailedError("No files were given. Choose one or more photos to upload.")

    def items() -> Iterator[ImportItem]:
        for entry in files:
            if isinstance(entry, tuple):
                name, data = entry
                relative = _safe_name(name)
                item = ImportItem(relative, None, data=bytes(data))
            else:
                path = Path(entry)
                relative = path.name
                item = ImportItem(relative, None, file_path=str(path))
            folder_label, split = filewalk.place_from_path(relative)
            chosen = label or (folder_label if use_subfolders else None)
            yield replace_item(item, label=chosen, split=split if use_subfolders else None)

    return run_import(workspace, source, "files", items(), total, progress, config, workers)


def _safe_name(name: str) -> str:
    parts = [part for part in PurePosixPath(str(name).replace("\\", "/")).parts
             if part not in ("/", "..", ".", "")]
    return "/".join(parts) or "unnamed"


def import_csv(workspace: Workspace, csv_path: Path, *, base_folder: Path | None = None,
               progress: Progress | None = None, config: CheckConfig | None = None,
               workers: int | None = None) -> ImportReport:
    """Import the files a CSV of ``path,label`` lists, read by the one CSV parser
    (engine.labeling.csv_labels.parse_label_csv: header optional, an empty label =
    unlabeled, an optional split column is kept as the given split).

    Args:
        base_folder: what relative paths are relative to (default: the CSV's folder).

    Raises:
        ImportFailedError: the CSV is missing, unreadable, malformed, or lists no rows.
    """
    csv_file = Path(csv_path).expanduser()
    try:
        rows = read_label_csv(csv_file)
    except LabelError as err:
        raise ImportFailedError(err.user_message) from err
    if not rows:
        raise ImportFailedError(f"The CSV '{csv_path}' lists no files. Write one line per "
                                "photo: path,label (for example cats/1.jpg,cat).")
    base = Path(base_folder).expanduser().resolve() if base_folder else csv_file.resolve().parent
    if not base.is_dir():
        raise ImportFailedError(f"The folder '{base_folder}' does not exist; relative paths in "
                                "the CSV are looked up there.")

    def items() -> Iterator[ImportItem]:
        for row in rows:
            path = Path(row.path).expanduser()
            path = path if path.is_absolute() else base / path
            name = row.path.replace("\\", "/")
            if not path.is_file():
                yield ImportItem(name, row.label, failure=(
                    "missing", f"The CSV lists {row.path}, but there is no file {path}."))
                continue
            yield ImportItem(name, row.label, row.split if row.label else None,
                             file_path=str(path))

    return run_import(workspace, str(base), "csv", items(), len(rows), progress, config, workers)


# ----- the sample project -------------------------------------------------------------------

SAMPLE_PHOTOS_DIR = Path(__file__).resolve().parents[2] / "sample_data" / "photos"
SAMPLE_SETTING = "sample_project_imported"


def should_import_sample(workspace: Workspace) -> bool:
    """True on a first start: nothing but the sample was ever imported, and the sample import
    has not finished yet (an interrupted one is resumed)."""
    if workspace.get_setting(SAMPLE_SETTING) is not None or not SAMPLE_PHOTOS_DIR.is_dir():
        return False
    with workspace.connect() as connection:
        others = connection.execute("SELECT COUNT(*) FROM imports WHERE source != ?",
                                    (str(SAMPLE_PHOTOS_DIR.resolve()),)).fetchone()[0]
    return others == 0


def import_sample_project(workspace: Workspace, *, progress: Progress | None = None,
                          workers: int | None = None) -> ImportReport:
    """Import sample_data/photos (3 generated classes with planted problems) and remember that
    it was done, so it happens once per workspace."""
    report = import_folder(workspace, SAMPLE_PHOTOS_DIR, progress=progress, workers=workers)
    workspace.set_setting(SAMPLE_SETTING, utc_now())
    return report
