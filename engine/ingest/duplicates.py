"""Group checks: exact duplicates (SHA-256), near duplicates (64-bit dHash) and duplicates
that carry different labels. They take :class:`HashRecord` s and return issues in the shared
schema of engine.ingest.checks, so a folder scan and the workspace use the same code."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.ingest.checks import CheckConfig, Issue

@dataclass(frozen=True)
class HashRecord:
    """What the group checks need of one file. `key` names it (a path or an image id)."""
    key: object
    path: str
    sha256: str
    dhash: int | None
    label: str | None


@dataclass
class _GroupFindings:
    issues: list[tuple[object, Issue, object | None]] = field(default_factory=list)

    def add(self, record: HashRecord, kind: str, severity: str, detail: str,
            related: HashRecord | None = None) -> None:
        issue = Issue(record.path, kind, severity, detail, related.path if related else None)
        self.issues.append((record.key, issue, related.key if related else None))


def find_exact_duplicates(records: Sequence[HashRecord]) -> list[tuple[object, Issue, object]]:
    """Every file whose bytes equal an earlier file's is a ``duplicate`` of the first one.

    Returns:
        (key, issue, related key) triples.
    """
    findings = _GroupFindings()
    first_by_hash: dict[str, HashRecord] = {}
    for record in records:
        first = first_by_hash.setdefault(record.sha256, record)
        if first is not record:
            findings.add(record, "duplicate", "warning",
                         f"Same bytes as {first.path}; keep one copy.", first)
    return findings.issues


def near_duplicate_pairs(hashes: Sequence[int], max_distance: int) -> list[tuple[int, int, int]]:
    """Index pairs (i < j, distance) of hashes at most `max_distance` bits apart.

    Pigeonhole banding: two 64-bit hashes within d bits agree exactly on at least one of
    d + 1 bands, so only hashes sharing a band value are compared (near-linear, not n^2).
    Equal hashes (blank frames, copies) are linked to their first occurrence only, so a
    thousand black images give a thousand pairs, not half a million.
    """
    if len(hashes) < 2:
        return []
    values = np.asarray(hashes, dtype=np.uint64)
    unique, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    pairs = {(int(first[group]), index, 0) for index, group in enumerate(inverse.tolist())
             if first[group] != index}
    edges = np.linspace(0, 64, max_distance + 2).astype(int)
    for start, stop in zip(edges[:-1], edges[1:]):
        bands = (unique >> np.uint64(start)) & np.uint64((1 << int(stop - start)) - 1)
        order = np.argsort(bands, kind="stable")
        for bucket in np.split(order, np.flatnonzero(np.diff(bands[order])) + 1):
            if len(bucket) > 1:
                pairs.update(_close_pairs(unique, np.sort(bucket), first, max_distance))
    return sorted(pairs)


def _close_pairs(unique: np.ndarray, bucket: np.ndarray, first: np.ndarray,
                 max_distance: int, block: int = 1024) -> set[tuple[int, int, int]]:
    """Pairs within one bucket, compared in blocks so memory stays small for big buckets."""
    found = set()
    members = unique[bucket]
    for offset in range(0, len(bucket), block):
        rows = members[offset:offset + block]
        distances = np.bitwise_count(rows[:, None] ^ members[None, :])
        for row, col in zip(*np.nonzero(distances <= max_distance)):
            if offset + row < col:
                one, two = int(first[bucket[offset + row]]), int(first[bucket[col]])
                found.add((min(one, two), max(one, two), int(distances[row, col])))
    return found


def find_near_duplicates(records: Sequence[HashRecord], max_distance: int
                         ) -> list[tuple[object, Issue, object]]:
    """``near_duplicate``: a later file whose dHash is within `max_distance` bits of an earlier
    one (exact duplicates are left to :func:`find_exact_duplicates`)."""
    hashed = [record for record in records if record.dhash is not None]
    findings = _GroupFindings()
    flagged: set[int] = set()
    for first, second, distance in near_duplicate_pairs([r.dhash for r in hashed], max_distance):
        if second in flagged or hashed[first].sha256 == hashed[second].sha256:
            continue
        flagged.add(second)
        findings.add(hashed[second], "near_duplicate", "warning",
                     f"Looks nearly identical to {hashed[first].path} (perceptual hash differs "
                     f"in {distance} of 64 bits): a resized or re-saved copy?", hashed[first])
    return findings.issues


def find_label_conflicts(records: Sequence[HashRecord], max_distance: int
                         ) -> list[tuple[object, Issue, object]]:
    """``label_conflict``: the same picture carrying different labels. Exact copies are errors
    (training would learn both answers); near copies are warnings (they may be two photos)."""
    findings = _GroupFindings()
    by_hash: dict[str, list[HashRecord]] = defaultdict(list)
    for record in records:
        by_hash[record.sha256].append(record)
    for group in by_hash.values():
        labels = sorted({record.label for record in group if record.label})
        if len(labels) > 1:
            for record in group:
                others = [r for r in group if r is not record and r.label != record.label]
                findings.add(record, "label_conflict", "error",
                             f"The same file is labeled {', '.join(labels)}; "
                             "decide which label is right.", others[0] if others else None)
    hashed = [record for record in records if record.dhash is not None]
    for first, second, distance in near_duplicate_pairs([r.dhash for r in hashed], max_distance):
        one, two = hashed[first], hashed[second]
        if one.label and two.label and one.label != two.label and one.sha256 != two.sha256:
            findings.add(two, "label_conflict", "warning",
                         f"Nearly identical to {one.path} (labeled {one.label}) but labeled "
                         f"{two.label}.", one)
    return findings.issues


def find_group_issues(records: Sequence[HashRecord], config: CheckConfig
                      ) -> list[tuple[object, Issue, object]]:
    """All group checks over readable files, in KIND_ORDER."""
    return (find_label_conflicts(records, config.near_duplicate_distance)
            + find_exact_duplicates(records)
            + find_near_duplicates(records, config.near_duplicate_distance))
