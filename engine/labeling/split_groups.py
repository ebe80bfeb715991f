"""Duplicate groups for the split: images that must share a split so nothing leaks from
training into test.

Three sources are joined with union-find:
- equal ``sha256`` (exact duplicates under two names);
- ``issues`` rows whose kind mentions a duplicate and that name a ``related_image_id``
  (written by the cleaning checks, which know their own thresholds);
- ``images.phash`` values within :data:`NEAR_DUPLICATE_MAX_BITS` bits of each other, so a
  workspace whose checks have not run yet is still protected.

Comparing every pair of hashes is quadratic, so candidate pairs come from a pigeonhole index:
two 64-bit hashes within d bits agree exactly on at least one of d + 1 bands.
"""
from __future__ import annotations

import hashlib

import pandas as pd

from engine.workspace import Workspace

# Hamming distance (bits of 64) under which two perceptual hashes count as the same photo.
NEAR_DUPLICATE_MAX_BITS = 4


class _UnionFind:
    def __init__(self, items: list[int]) -> None:
        self.parent = {item: item for item in items}

    def find(self, item: int) -> int:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, first: int, second: int) -> None:
        if first in self.parent and second in self.parent:
            a, b = self.find(first), self.find(second)
            if a != b:
                self.parent[max(a, b)] = min(a, b)


def _parse_hash(text: object) -> int | None:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return int(text.strip(), 16) & ((1 << 64) - 1)
    except ValueError:
        return None


def near_duplicate_pairs(hashes: dict[int, int],
                         max_bits: int = NEAR_DUPLICATE_MAX_BITS) -> list[tuple[int, int]]:
    """Pairs of ids whose 64-bit hashes differ in at most `max_bits` bits."""
    bands = max_bits + 1
    width = -(-64 // bands)
    mask = (1 << width) - 1
    candidates: set[tuple[int, int]] = set()
    for band in range(bands):
        buckets: dict[int, list[int]] = {}
        for image_id, value in hashes.items():
            buckets.setdefault((value >> (band * width)) & mask, []).append(image_id)
        for members in buckets.values():
            if 1 < len(members) <= 2000:  # a giant bucket is a degenerate hash (blank images)
                candidates.update((a, b) for i, a in enumerate(members) for b in members[i + 1:])
    return [(a, b) for a, b in candidates
            if (hashes[a] ^ hashes[b]).bit_count() <= max_bits]


def draw_key(seed: int, sha256: str) -> str:
    """The seeded, order-free draw order of an image: a hash of (seed, content hash)."""
    return hashlib.sha256(f"{seed}:{sha256}".encode()).hexdigest()


def all_images(workspace: Workspace) -> pd.DataFrame:
    """Every image with what the split needs.

    Returns:
        DataFrame with columns image_id, import_id, sha256, phash, split, label,
        is_trainable (labeled, not quarantined, not excluded, decodable), ordered by id.
    """
    query = """
    SELECT images.id AS image_id, images.import_id, images.sha256, images.phash, images.split,
           classes.name AS label,
           (images.class_id IS NOT NULL AND images.status = 'ok' AND images.is_excluded = 0
            AND images.normalized_path IS NOT NULL) AS is_trainable
    FROM images LEFT JOIN classes ON classes.id = images.class_id ORDER BY images.id
    """
    with workspace.connect() as connection:
        frame = pd.read_sql_query(query, connection)
    frame["is_trainable"] = frame["is_trainable"].astype(bool)
    return frame


def duplicate_groups(workspace: Workspace, images: pd.DataFrame) -> list[list[int]]:
    """Every image id in exactly one group (most groups are single images).

    Args:
        images: frame with columns image_id, sha256, phash (all images of the workspace).
    Returns:
        Lists of image ids, each sorted, groups ordered by their smallest id.
    """
    ids = [int(i) for i in images["image_id"]]
    union = _UnionFind(ids)
    first_of_sha: dict[str, int] = {}
    for image_id, sha in zip(ids, images["sha256"]):
        union.union(first_of_sha.setdefault(sha, image_id), image_id)
    with workspace.connect() as connection:
        related = connection.execute(
            "SELECT image_id, related_image_id FROM issues WHERE related_image_id IS NOT NULL "
            "AND kind LIKE '%dup%'").fetchall()
    for row in related:
        union.union(int(row[0]), int(row[1]))
    hashes = {image_id: value for image_id, text in zip(ids, images["phash"])
              if (value := _parse_hash(text)) is not None}
    for a, b in near_duplicate_pairs(hashes):
        union.union(a, b)
    groups: dict[int, list[int]] = {}
    for image_id in ids:
        groups.setdefault(union.find(image_id), []).append(image_id)
    return sorted((sorted(members) for members in groups.values()), key=lambda g: g[0])
