"""The offline verifier: given an exported log and the public key, say "intact" or name what failed.

Usage::

    python -m fasterpay.audit.verify EXPORT_DIR --public-key audit-signing-key.pem
        [--trusted-checkpoint LAST_SEEN.note] [--allow-unsigned-tail] [--json]

Exit status: 0 intact, 1 not intact (the report names the first failure), 2 unusable input (no such
folder, unreadable public key). It needs no AWS access, only the export and the public key, which the
auditor should obtain separately from the export (for example from ``kms:GetPublicKey`` or from a
published copy): a key shipped inside the export proves nothing.

Checks, in order; the first failure is reported:

1. every checkpoint parses, is signed by the given key, has the size its file name says, all share
   one origin, and their times do not go backwards as sizes grow ("checkpoints out of order");
2. the trusted checkpoint, if given, is signed by the key too;
3. each entry parses in canonical form and is not too large, ``seq`` equals its position (a deleted,
   moved or inserted entry is named), and each segment holds exactly the entries its name says;
4. the hash chain: each entry records the leaf hash of the entry before it, so an entry changed after
   it was written is named exactly;
5. the RFC 6962 root at every checkpoint's size equals the signed root, and no checkpoint vouches for
   more entries than the export holds (a truncated log); a trusted checkpoint must match too
   (a rolled-back or forked log);
6. every entry is covered by a checkpoint (unless ``--allow-unsigned-tail``).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from .checkpoints import (
    CheckpointSignatureError,
    MalformedCheckpointError,
    PublicKeyError,
    SignedCheckpoint,
    WrongKeyError,
    load_public_key,
    verify_checkpoint,
)
from .entries import GENESIS_PREV, MAX_ENTRY_BYTES, EntryTooLargeError, InvalidEntryError, decode_entry
from .merkle import MerkleTree, leaf_hash
from .store import CHECKPOINTS_DIR, SEGMENTS_DIR

__all__ = ["ExportNotFoundError", "Finding", "VerificationReport", "main", "verify_export"]

_SEGMENT = re.compile(r"(\d{12})-(\d{12})\.jsonl")
_CHECKPOINT = re.compile(r"(\d{12})\.note")


class ExportNotFoundError(FileNotFoundError):
    """The export folder, or its segments/ or checkpoints/ folder, does not exist."""


@dataclass(frozen=True)
class Finding:
    """Why the export is not intact: which check failed, where, and what it means."""

    check: str  # checkpoint, signature, wrong-key, order, origin, entry, too-large, sequence, segment,
    #             chain, root, truncated, trusted, unsigned
    reason: str
    entry: int | None = None  # position in the log (0-based)
    checkpoint: str | None = None  # file name under checkpoints/

    def __str__(self) -> str:
        where = f"entry {self.entry}" if self.entry is not None else f"checkpoint {self.checkpoint}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class VerificationReport:
    """The verifier's answer. ``intact`` is True only if every check passed."""

    intact: bool
    entries: int
    checkpoints: int
    tree_size: int = 0
    root_hash: str = ""  # base64, of the latest checkpoint that verified
    unsigned_entries: int = 0
    finding: Finding | None = field(default=None)

    def __str__(self) -> str:
        if not self.intact:
            return f"NOT INTACT: {self.finding}"
        tail = f"; {self.unsigned_entries} entries after it are not signed yet" if self.unsigned_entries else ""
        return (f"intact: {self.entries} entries, {self.checkpoints} checkpoints, latest at size "
                f"{self.tree_size} with root {self.root_hash}{tail}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class _Checkpoints:
    by_size: list[tuple[str, SignedCheckpoint]]


def _fail(entries: int, checkpoints: int, finding: Finding) -> VerificationReport:
    return VerificationReport(False, entries, checkpoints, finding=finding)


def _check_checkpoints(folder: Path, key: ec.EllipticCurvePublicKey) -> tuple[_Checkpoints | None, Finding | None]:
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    loaded: list[tuple[str, SignedCheckpoint]] = []
    for path in files:
        match = _CHECKPOINT.fullmatch(path.name)
        if match is None or not path.is_file():
            return None, Finding("checkpoint", "not a checkpoint file name (<12-digit size>.note)",
                                 checkpoint=path.name)
        try:
            signed = SignedCheckpoint.from_text(path.read_bytes())
        except MalformedCheckpointError as exc:
            return None, Finding("checkpoint", f"unreadable: {exc}", checkpoint=path.name)
        try:
            verify_checkpoint(signed, key)
        except WrongKeyError as exc:
            return None, Finding("wrong-key", str(exc), checkpoint=path.name)
        except CheckpointSignatureError as exc:
            return None, Finding("signature", str(exc), checkpoint=path.name)
        if signed.tree_size != int(match.group(1)):
            return None, Finding("checkpoint", f"the file name says size {int(match.group(1))} but the signed "
                                               f"size is {signed.tree_size}: the file was renamed",
                                 checkpoint=path.name)
        loaded.append((path.name, signed))
    if not loaded:
        return None, Finding("checkpoint", "no checkpoint in the export: nothing vouches for the entries; "
                                           "export checkpoints/ too", checkpoint="(none)")
    origin = loaded[0][1].checkpoint.origin
    for (name_a, a), (name_b, b) in itertools.pairwise(loaded):
        if b.checkpoint.origin != origin:
            return None, Finding("origin", f"origin {b.checkpoint.origin!r} differs from {origin!r}: "
                                           "checkpoints of another log were mixed in", checkpoint=name_b)
        if b.checkpoint.timestamp < a.checkpoint.timestamp:
            return None, Finding("order", f"dated {b.checkpoint.timestamp.isoformat()}, before the checkpoint at "
                                          f"the smaller size {a.tree_size} ({name_a}): checkpoints out of order",
                                 checkpoint=name_b)
    return _Checkpoints(loaded), None


def _read_entries(folder: Path, max_entry_bytes: int,
                  signed_roots: dict[int, bytes]) -> tuple[list[bytes], list[str], Finding | None]:
    """Leaf hashes and recorded ``prev`` links in order; or the first entry-level finding."""
    segments: list[tuple[str, int, int, list[bytes], bool]] = []
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        match = _SEGMENT.fullmatch(path.name)
        if match is None or not path.is_file():
            at = sum(len(seg[3]) for seg in segments)
            return [], [], Finding("segment", f"unexpected file segments/{path.name} (not <first>-<end>.jsonl)",
                                   entry=at)
        lines = path.read_bytes().split(b"\n")
        truncated = lines[-1] != b""
        segments.append((path.name, int(match.group(1)), int(match.group(2)),
                         lines if truncated else lines[:-1], truncated))
    everything = [line for seg in segments for line in seg[3]]
    leaves: list[bytes] = []
    prevs: list[str] = []
    seq_at: list[int] = []
    for name, first, end, lines, truncated in segments:
        start = len(leaves)
        for offset, line in enumerate(lines):
            position = start + offset
            if truncated and offset == len(lines) - 1:
                return leaves, prevs, Finding(
                    "entry", f"truncated: segments/{name} does not end with a newline", entry=position)
            try:
                data = decode_entry(line, max_bytes=max_entry_bytes)
            except EntryTooLargeError as exc:
                return leaves, prevs, Finding("too-large", f"{exc} (in segments/{name})", entry=position)
            except InvalidEntryError as exc:
                return leaves, prevs, Finding("entry", f"{exc} (in segments/{name})", entry=position)
            seq = data["seq"]
            if seq != position:
                return leaves, prevs, _sequence_finding(position, seq, everything[position + 1:], seq_at, line,
                                                        leaves, signed_roots)
            leaves.append(leaf_hash(line))
            prevs.append(data["prev"])
            seq_at.append(seq)
        if first != start or end != len(leaves):
            return leaves, prevs, Finding(
                "segment", f"segments/{name} should hold entries {first} to {end - 1} but holds "
                           f"{start} to {len(leaves) - 1}: entries were removed or added", entry=min(end, len(leaves)))
    return leaves, prevs, None


def _seq_of(raw: bytes) -> int | None:
    try:
        return int(decode_entry(raw, max_bytes=1 << 20)["seq"])
    except InvalidEntryError:
        return None


def _sequence_finding(position: int, seq: int, later: list[bytes], seq_at: list[int], line: bytes,
                      leaves: list[bytes], signed_roots: dict[int, bytes]) -> Finding:
    if seq > position:
        if any(_seq_of(raw) == position for raw in later):
            return Finding("sequence", f"holds entry {seq}; entry {position} comes later: entries were reordered",
                           entry=position)
        return Finding("sequence", f"holds entry {seq}: entry {position} is missing (deleted)", entry=position)
    # The same seq twice: the genuine entry is the one that its successor links to.
    earlier = seq_at.index(seq) if seq in seq_at else None
    successor_prev = None
    if later:
        try:
            successor_prev = decode_entry(later[0], max_bytes=1 << 20)["prev"]
        except InvalidEntryError:
            successor_prev = None
    genuine_later = successor_prev == leaf_hash(line).hex()
    if successor_prev is None and earlier is not None and seq + 1 in signed_roots:  # no successor: ask the root
        trial = MerkleTree()
        for leaf in [*leaves[:seq], leaf_hash(line)]:
            trial.append_leaf_hash(leaf)
        genuine_later = trial.root() == signed_roots[seq + 1]
    if earlier is not None and genuine_later:
        return Finding("sequence", f"it and the entry at position {position} both claim seq {seq}, and the log "
                                   f"links to the one at position {position}: this one was inserted", entry=earlier)
    return Finding("sequence", f"repeats seq {seq}: an entry was inserted or duplicated here", entry=position)


def _chain_finding(tree: MerkleTree, prevs: list[str], checkpoints: _Checkpoints) -> Finding | None:
    """The first broken link, blamed on the entry that changed.

    Changing entry k breaks the link from k+1 to it, and also its own link to k-1 if its ``prev`` was
    changed. So two broken links in a row blame the entry between them, and one broken link blames the
    entry before it. For the last entry, which has no successor, the signed root decides: if putting
    back the hash that the last entry recorded for its predecessor restores the root, the predecessor
    changed; otherwise the last entry did.
    """
    n = tree.size

    def broken(j: int) -> bool:
        return prevs[j] != (GENESIS_PREV if j == 0 else tree.leaf_hash(j - 1).hex())

    for j in range(n):
        if not broken(j):
            continue
        if j == 0 or (j + 1 < n and broken(j + 1)):
            return Finding("chain", "changed after it was written: its link to the entry before it and the next "
                                    "entry's link to it both fail", entry=j)
        if j + 1 == n and not _restores_root(tree, j - 1, bytes.fromhex(prevs[j]), checkpoints):
            return Finding("chain", "changed after it was written: its link to the entry before it fails and "
                                    "the signed root confirms it is this entry", entry=j)
        return Finding("chain", f"changed after it was written: entry {j} recorded a different hash for it",
                       entry=j - 1)
    return None


def _restores_root(tree: MerkleTree, index: int, leaf: bytes, checkpoints: _Checkpoints) -> bool:
    covering = [s for _, s in checkpoints.by_size if index < s.tree_size <= tree.size]
    if not covering:
        return True
    trial = MerkleTree()
    for i in range(covering[0].tree_size):
        trial.append_leaf_hash(leaf if i == index else tree.leaf_hash(i))
    return trial.root() == covering[0].root_hash


def verify_export(
    directory: Path | str,
    public_key: bytes | str | ec.EllipticCurvePublicKey,
    *,
    trusted_checkpoint: SignedCheckpoint | None = None,
    allow_unsigned_tail: bool = False,
    max_entry_bytes: int = MAX_ENTRY_BYTES,
) -> VerificationReport:
    """Verify an exported log against ``public_key``; see the module docstring for the checks.

    Raises :class:`ExportNotFoundError` or :class:`~fasterpay.audit.checkpoints.PublicKeyError` for
    unusable input; every problem with the export's content is a finding in the report instead.

    Examples:
        >>> report = verify_export("audit-export", Path("audit-signing-key.pem").read_bytes())  # doctest: +SKIP
        >>> print(report)  # doctest: +SKIP
        intact: 1200 entries, 2 checkpoints, latest at size 1200 with root ...
    """
    key = public_key if isinstance(public_key, ec.EllipticCurvePublicKey) else load_public_key(public_key)
    root = Path(directory)
    for folder in (root, root / SEGMENTS_DIR, root / CHECKPOINTS_DIR):
        if not folder.is_dir():
            raise ExportNotFoundError(f"{folder} is not a folder: give the export folder that holds "
                                      f"{SEGMENTS_DIR}/ and {CHECKPOINTS_DIR}/")
    checkpoints, finding = _check_checkpoints(root / CHECKPOINTS_DIR, key)
    if finding is not None or checkpoints is None:
        return _fail(0, 0, finding or Finding("checkpoint", "no checkpoints", checkpoint="(none)"))
    count = len(checkpoints.by_size)
    if trusted_checkpoint is not None:
        try:
            verify_checkpoint(trusted_checkpoint, key)
        except CheckpointSignatureError as exc:
            return _fail(0, count, Finding("trusted", f"the trusted checkpoint does not verify: {exc}",
                                           checkpoint="(trusted)"))
    signed_roots = {signed.tree_size: signed.root_hash for _, signed in checkpoints.by_size}
    leaves, prevs, finding = _read_entries(root / SEGMENTS_DIR, max_entry_bytes, signed_roots)
    if finding is not None:
        return _fail(len(leaves), count, finding)
    tree = MerkleTree()
    for leaf in leaves:
        tree.append_leaf_hash(leaf)
    finding = _chain_finding(tree, prevs, checkpoints)
    if finding is not None:
        return _fail(tree.size, count, finding)
    previous = 0
    for name, signed in checkpoints.by_size:
        if signed.tree_size > tree.size:
            return _fail(tree.size, count, Finding(
                "truncated", f"the checkpoint {name} vouches for {signed.tree_size} entries but the export holds "
                             f"{tree.size}: entries {tree.size} to {signed.tree_size - 1} are missing",
                entry=tree.size))
        if tree.root(signed.tree_size) != signed.root_hash:
            suspect = signed.tree_size - 1
            return _fail(tree.size, count, Finding(
                "root", f"the entries up to it do not match the root signed in {name}: it was changed after it "
                        f"was written (and entries from {previous} on may have been rewritten with it)", entry=suspect))
        previous = signed.tree_size
    if trusted_checkpoint is not None:
        size = trusted_checkpoint.tree_size
        if size > tree.size or tree.root(size) != trusted_checkpoint.root_hash:
            return _fail(tree.size, count, Finding(
                "trusted", f"the export does not extend the trusted checkpoint at size {size}: the log was rolled "
                           "back or forked since you saw it", checkpoint="(trusted)"))
    latest = checkpoints.by_size[-1][1]
    unsigned = tree.size - latest.tree_size
    if unsigned and not allow_unsigned_tail:
        return _fail(tree.size, count, Finding(
            "unsigned", f"no checkpoint covers it or the {unsigned - 1} entries after it: appended after the last "
                        "checkpoint, or inserted (export after a checkpoint, or pass --allow-unsigned-tail)",
            entry=latest.tree_size))
    return VerificationReport(True, tree.size, count, latest.tree_size,
                              base64.b64encode(latest.root_hash).decode(), unsigned)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0 intact, 1 not intact, 2 unusable input).

    Examples:
        >>> main(["audit-export", "--public-key", "audit-signing-key.pem"])  # doctest: +SKIP
        intact: 1200 entries, 2 checkpoints, latest at size 1200 with root ...
        0
    """
    parser = argparse.ArgumentParser(prog="python -m fasterpay.audit.verify",
                                     description="Verify an exported audit log offline.")
    parser.add_argument("export_dir", type=Path, help="folder holding segments/ and checkpoints/")
    parser.add_argument("--public-key", type=Path, required=True, help="PEM of the log's signing key")
    parser.add_argument("--trusted-checkpoint", type=Path, help="a checkpoint you saw earlier (.note)")
    parser.add_argument("--allow-unsigned-tail", action="store_true",
                        help="accept entries after the last checkpoint (they are not verified)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        pem = args.public_key.read_bytes()
        trusted = None
        if args.trusted_checkpoint is not None:
            trusted = SignedCheckpoint.from_text(args.trusted_checkpoint.read_bytes())
        report = verify_export(args.export_dir, pem, trusted_checkpoint=trusted,
                               allow_unsigned_tail=args.allow_unsigned_tail)
    except (OSError, PublicKeyError, MalformedCheckpointError) as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    print(report.to_json() if args.json else str(report))
    return 0 if report.intact else 1


if __name__ == "__main__":
    sys.exit(main())
