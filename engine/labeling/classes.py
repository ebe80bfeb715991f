"""Class names and ids: validation (a class name becomes a folder name in exports) and
lookup inside a caller's transaction. Label changes themselves go through
engine.labeling.labels, which re-exports these."""
from __future__ import annotations

import sqlite3
import unicodedata

from engine.errors import LabelError
from engine.workspace import utc_now

MAX_CLASS_NAME_LENGTH = 100
_FORBIDDEN_CHARACTERS = set('/\\:*?"<>|')


def validate_class_name(name: str) -> str:
    """The class name, stripped, if it can be a folder name in exports.

    Raises:
        LabelError: empty, '.'/'..', too long, or containing path separators, characters
            Windows forbids in file names, or control characters.
    """
    cleaned = unicodedata.normalize("NFC", str(name)).strip()
    if not cleaned:
        raise LabelError("A class name cannot be empty. Type a name such as 'cat'.")
    if cleaned in {".", ".."}:
        raise LabelError(f"'{cleaned}' cannot be a class name: it means a folder. Pick a word.")
    if len(cleaned) > MAX_CLASS_NAME_LENGTH:
        raise LabelError(f"The class name is {len(cleaned)} characters long; the limit is "
                         f"{MAX_CLASS_NAME_LENGTH}. Use a shorter name.")
    bad = sorted({ch for ch in cleaned if ch in _FORBIDDEN_CHARACTERS
                  or unicodedata.category(ch).startswith("C")})
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        raise LabelError(f"The class name '{cleaned}' contains {shown}, which cannot appear in "
                         "a folder name (class names become folder names in exports). "
                         "Remove those characters.")
    return cleaned


def ensure_class(connection: sqlite3.Connection, name: str) -> int:
    """Id of the class called `name`, creating it if needed (inside the caller's transaction).

    Raises:
        LabelError: invalid name, or a different class already has the same name up to
            capitals ('Cat' vs 'cat' would be one folder on Windows and macOS).
    """
    cleaned = validate_class_name(name)
    row = connection.execute("SELECT id FROM classes WHERE name = ?", (cleaned,)).fetchone()
    if row:
        return int(row[0])
    _refuse_case_twin(connection, cleaned)
    cursor = connection.execute("INSERT INTO classes(name, created_at) VALUES (?, ?)",
                                (cleaned, utc_now()))
    return int(cursor.lastrowid)


def _refuse_case_twin(connection: sqlite3.Connection, name: str,
                      ignore_id: int | None = None) -> None:
    for row in connection.execute("SELECT id, name FROM classes"):
        if row["name"].casefold() == name.casefold() and row["id"] != ignore_id:
            raise LabelError(
                f"A class '{row['name']}' already exists; '{name}' differs only in capitals, and "
                "the two would become the same folder in exports. Use the existing class, or "
                f"rename '{row['name']}' to '{name}'.")


def _class_id(connection: sqlite3.Connection, name: str) -> int:
    cleaned = unicodedata.normalize("NFC", str(name)).strip()
    row = connection.execute("SELECT id FROM classes WHERE name = ?", (cleaned,)).fetchone()
    if row is None:
        known = [r[0] for r in connection.execute("SELECT name FROM classes ORDER BY name")]
        listed = ", ".join(f"'{n}'" for n in known) or "none yet"
        raise LabelError(f"There is no class '{cleaned}'. Existing classes: {listed}.")
    return int(row[0])
