"""What an attacker with write access to an export (or to a bucket without Object Lock) could do, as
functions, so the notebook can show each attack being caught. For demonstrations and tests only.

Every function takes the log's objects (key → bytes, as :meth:`S3AuditStore.objects` returns them) and
returns a changed copy; nothing is re-signed, because an attacker does not hold the KMS key.
:func:`detection_matrix` applies every single-entry tampering at every position of a log and runs the
offline verifier on each result.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fasterpay.audit.entries import GENESIS_PREV
from fasterpay.audit.merkle import leaf_hash
from fasterpay.audit.store import CHECKPOINTS_DIR, SEGMENTS_DIR, write_export
from fasterpay.audit.verify import VerificationReport, verify_export

__all__ = ["SINGLE_ENTRY_TAMPERINGS", "DetectionMatrix", "change_entry", "delete_entry", "detection_matrix",
           "forge_checkpoint", "insert_entry", "swap_entries", "truncate_log"]

Objects = dict[str, bytes]


def _segments(objects: Objects) -> list[tuple[str, list[bytes]]]:
    keys = sorted(k for k in objects if k.startswith(SEGMENTS_DIR + "/"))
    return [(k, objects[k].split(b"\n")[:-1]) for k in keys]


def _rebuild(objects: Objects, segments: list[tuple[str, list[bytes]]]) -> Objects:
    out = {k: v for k, v in objects.items() if not k.startswith(SEGMENTS_DIR + "/")}
    out.update({k: b"".join(line + b"\n" for line in lines) for k, lines in segments if lines})
    return out


def _locate(segments: list[tuple[str, list[bytes]]], k: int) -> tuple[int, int]:
    for s, (_, lines) in enumerate(segments):
        if k < len(lines):
            return s, k
        k -= len(lines)
    raise IndexError(f"the log has no entry {k}")


def _recode(line: bytes, **changes: object) -> bytes:
    data = json.loads(line)
    data.update(changes)
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def change_entry(objects: Objects, k: int, **changes: object) -> Objects:
    """Rewrite fields of entry ``k`` (default: its outcome becomes RJCT), keeping it well formed.

    Examples:
        >>> changed = change_entry(store.objects(), 3, outcome="ACSC")  # doctest: +SKIP
    """
    segments = _segments(objects)
    s, i = _locate(segments, k)
    segments[s][1][i] = _recode(segments[s][1][i], **(changes or {"outcome": "RJCT"}))
    return _rebuild(objects, segments)


def delete_entry(objects: Objects, k: int) -> Objects:
    """Remove entry ``k``."""
    segments = _segments(objects)
    s, i = _locate(segments, k)
    del segments[s][1][i]
    return _rebuild(objects, segments)


def swap_entries(objects: Objects, k: int) -> Objects:
    """Swap entries ``k`` and ``k + 1``."""
    segments = _segments(objects)
    (s, i), (t, j) = _locate(segments, k), _locate(segments, k + 1)
    segments[s][1][i], segments[t][1][j] = segments[t][1][j], segments[s][1][i]
    return _rebuild(objects, segments)


def insert_entry(objects: Objects, k: int) -> Objects:
    """Insert a well-formed forged entry at position ``k``, with the seq and hash link it would need."""
    segments = _segments(objects)
    flat = [line for _, lines in segments for line in lines]
    prev = GENESIS_PREV if k == 0 else leaf_hash(flat[k - 1]).hex()
    forged = json.dumps({"actor": "svc-clearing", "at": "2026-11-28T09:00:00.000Z", "kind": "payment.status",
                         "outcome": "ACSC", "prev": prev, "refs": {}, "seq": k, "subject": "E2E-FORGED"},
                        sort_keys=True, separators=(",", ":")).encode()
    if k == len(flat):
        segments[-1][1].append(forged)
    else:
        s, i = _locate(segments, k)
        segments[s][1].insert(i, forged)
    return _rebuild(objects, segments)


def truncate_log(objects: Objects, k: int) -> Objects:
    """Keep the first ``k`` entries only (checkpoints are left as they are)."""
    segments = _segments(objects)
    keep = k
    for _, lines in segments:
        del lines[max(0, keep):]
        keep -= len(lines) if keep > 0 else 0
    return _rebuild(objects, segments)


def forge_checkpoint(objects: Objects, tree_size: int, *, root_b64: str) -> Objects:
    """Replace the root in the checkpoint at ``tree_size`` (the signature cannot follow)."""
    key = f"{CHECKPOINTS_DIR}/{tree_size:012d}.note"
    lines = objects[key].decode().split("\n")
    lines[2] = root_b64
    return {**objects, key: "\n".join(lines).encode()}


#: Single-entry tamperings: name → (function, which positions it applies to, given the log size n).
SINGLE_ENTRY_TAMPERINGS: dict[str, tuple[Callable[[Objects, int], Objects], Callable[[int], range]]] = {
    "change an entry": (change_entry, lambda n: range(n)),
    "change an entry's hash link": (lambda o, k: change_entry(o, k, prev="f" * 64), lambda n: range(n)),
    "delete an entry": (delete_entry, lambda n: range(n)),
    "reorder two entries": (swap_entries, lambda n: range(n - 1)),
    "insert an entry": (insert_entry, lambda n: range(n + 1)),
    "truncate the log": (truncate_log, lambda n: range(n)),
}


@dataclass(frozen=True)
class DetectionMatrix:
    """Per tampering: cases tried, cases detected, cases where the report named the tampered entry."""

    rows: dict[str, tuple[int, int, int]]
    example: dict[str, VerificationReport]

    @property
    def cases(self) -> int:
        return sum(r[0] for r in self.rows.values())

    @property
    def detected(self) -> int:
        return sum(r[1] for r in self.rows.values())

    @property
    def named(self) -> int:
        return sum(r[2] for r in self.rows.values())


def detection_matrix(objects: Objects, public_key: bytes, *, entries: int) -> DetectionMatrix:
    """Apply every single-entry tampering at every position and verify each result offline.

    Examples:
        >>> matrix = detection_matrix(store.objects(), signer.public_key_pem(), entries=trail.size)  # doctest: +SKIP
        >>> matrix.detected == matrix.cases  # doctest: +SKIP
        True
    """
    rows: dict[str, tuple[int, int, int]] = {}
    example: dict[str, VerificationReport] = {}
    work = Path(tempfile.mkdtemp(prefix="fasterpay-tamper-"))
    try:
        for name, (apply, positions) in SINGLE_ENTRY_TAMPERINGS.items():
            tried = detected = named = 0
            for k in positions(entries):
                target = work / f"case-{tried}"
                write_export(target, apply(objects, k))
                report = verify_export(target, public_key)
                shutil.rmtree(target)
                tried += 1
                detected += not report.intact
                named += report.finding is not None and report.finding.entry == k
                if k == entries // 2:
                    example[name] = report
            rows[name] = (tried, detected, named)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return DetectionMatrix(rows, example)
