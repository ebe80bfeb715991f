"""Classes and labels. Every label change anywhere in the app goes through this module so it
is recorded in label_history (one label_actions row per user action: the undo unit)."""
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
    """Id of the class called `name`, creating it if needed (inside the caller's transaction)."""
    cleaned = validate_class_name(name)
    row = connection.execute("SELECT id FROM classes WHERE name = ?", (cleaned,)).fetchone()
    if row:
        return int(row[0])
    cursor = connection.execute("INSERT INTO classes(name, created_at) VALUES (?, ?)",
                                (cleaned, utc_now()))
    return int(cursor.lastrowid)
