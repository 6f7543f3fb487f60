"""The offline verifier: given an exported log and the public key, say "intact" or name what failed.

Usage::

    python -m fasterpay.audit.verify EXPORT_DIR --public-key audit-signing-key.pem
        [--witness LATEST_TRUSTED.note | LAST_REPORT.json] [--json]

Exit status: 0 intact, 1 not intact (the report names the first failure), 2 unusable input (no such
folder, unreadable public key or witness), 3 unverifiable (everything signed checks out, but entries
after the last checkpoint are signed by nothing, so nobody can tell whether they were changed, added
or removed). It needs no AWS access, only the export and the public key, which the auditor should
obtain separately from the export (for example from ``kms:GetPublicKey`` or from a published copy):
a key shipped inside the export proves nothing.

**What "intact" means.** Every entry is covered by a checkpoint signed with the key, and nothing in
the export contradicts it. Without a witness that cannot rule out a log cut back to an earlier
checkpoint, with the later entries and checkpoints withheld: such a log is consistent with itself.
A :class:`Witness` (the latest checkpoint the auditor holds from outside the writer's control, as a
signed note or as the size and root of an earlier report) closes that gap: the export must hold at
least as many entries, and its first ``size`` entries must have the witness's root.

Checks, in order; the first failure is reported:

1. every checkpoint parses, is signed by the given key, has the size its file name says, all share
   one origin, and their times do not go backwards as sizes grow ("checkpoints out of order");
2. the witness, if it is a signed note, is signed by the key too, and names the export's origin;
3. each entry parses in canonical form and is not too large (a date that does not exist is named
   like any other bad field), ``seq`` equals its position (a deleted, moved or inserted entry is
   named), and each segment holds exactly the entries its name says;
4. the hash chain: each entry records the leaf hash of the entry before it, so an entry changed after
   it was written is named exactly;
5. the RFC 6962 root at every checkpoint's size equals the signed root, and no checkpoint vouches for
   more entries than the export holds (a truncated log);
6. the witness: the export holds at least its size (else it was truncated) and has its root at that
   size (else it was rewritten or forked, even if re-signed with the log's key);
7. every entry is covered by a checkpoint or the witness; if not, the report is "unverifiable" and
   names the entries after the last checkpoint.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import itertools
import json
import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from .checkpoints import (
    CheckpointError,
    CheckpointSignatureError,
    MalformedCheckpointError,
    PublicKeyError,
    SignedCheckpoint,
    WrongKeyError,
    load_public_key,
    verify_checkpoint,
)
from .entries import GENESIS_PREV, MAX_ENTRY_BYTES, EntryTooLargeError, InvalidEntryError, decode_entry
from .merkle import HASH_SIZE, MerkleTree, leaf_hash
from .store import CHECKPOINTS_DIR, SEGMENTS_DIR

__all__ = ["ExportNotFoundError", "Finding", "VerificationReport", "Witness", "WitnessError", "main",
           "verify_export"]

_SEGMENT = re.compile(r"(\d{12})-(\d{12})\.jsonl")
_CHECKPOINT = re.compile(r"(\d{12})\.note")


class ExportNotFoundError(FileNotFoundError):
    """The export folder, or its segments/ or checkpoints/ folder, does not exist."""


class WitnessError(ValueError):
    """The witness could not be read: give a checkpoint note, or the JSON of an earlier report (``--json``)."""


@dataclass(frozen=True)
class Witness:
    """The latest checkpoint an auditor trusts, held outside the writer's control: a size and its root.

    Keep it somewhere the log's writer cannot change: a second account, the auditor's own records, a
    transparency copy. A signed note (``signed``) is checked against the log's key like any checkpoint;
    a bare size and root, such as the ``tree_size`` and ``root_hash`` of an earlier report, is taken as
    given, because the auditor vouches for where it came from.

    Examples:
        >>> w = Witness.parse('{"tree_size": 2, "root_hash": "' + "A" * 43 + '=", "origin": "bank-a/audit"}')
        >>> w.tree_size, w.origin
        (2, 'bank-a/audit')
        >>> Witness.parse('{"tree_size": 2}')
        Traceback (most recent call last):
        ...
        fasterpay.audit.verify.WitnessError: a JSON witness needs tree_size and root_hash ...
    """

    tree_size: int
    root_hash: bytes
    origin: str | None = None
    signed: SignedCheckpoint | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.tree_size, bool) or not isinstance(self.tree_size, int) or self.tree_size < 0:
            raise WitnessError(f"the witness's tree_size must be a whole number >= 0, got {self.tree_size!r}")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise WitnessError(f"the witness's root_hash must be {HASH_SIZE} bytes")
        if self.origin is not None and not isinstance(self.origin, str):
            raise WitnessError("the witness's origin must be a string")

    @classmethod
    def of(cls, signed: SignedCheckpoint) -> Witness:
        """A witness from a signed checkpoint (its signature is checked when the export is verified)."""
        return cls(signed.tree_size, signed.root_hash, signed.checkpoint.origin, signed)

    @classmethod
    def parse(cls, data: bytes | str) -> Witness:
        """A witness from a checkpoint note, or from JSON with ``tree_size``, ``root_hash`` (base64) and
        optionally ``origin``, such as an earlier report that was intact or unverifiable."""
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        if not text.lstrip().startswith(("{", "[")):
            try:
                return cls.of(SignedCheckpoint.from_text(data))
            except MalformedCheckpointError as exc:
                raise WitnessError(f"the witness is neither JSON nor a readable checkpoint note: {exc}") from None
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError):
            raise WitnessError("the witness is not valid JSON") from None
        if not isinstance(raw, dict) or "tree_size" not in raw or "root_hash" not in raw:
            raise WitnessError("a JSON witness needs tree_size and root_hash (base64), as a report's --json has")
        if raw.get("verdict") == "not-intact" or (raw.get("intact") is False and "verdict" not in raw):
            raise WitnessError("that report was not intact: it vouches for nothing, so it cannot be a witness")
        root = raw["root_hash"]
        try:
            root_hash = base64.b64decode(root, validate=True) if isinstance(root, str) else None
        except (ValueError, binascii.Error):
            root_hash = None
        if root_hash is None or base64.b64encode(root_hash).decode() != root:
            raise WitnessError("the witness's root_hash must be the base64 of a 32-byte root")
        return cls(raw["tree_size"], root_hash, raw.get("origin") or None)

    @classmethod
    def from_file(cls, path: Path | str) -> Witness:
        """Read a witness file (``.note`` or ``.json``); ``OSError`` if it cannot be read."""
        return cls.parse(Path(path).read_bytes())

    def to_json(self) -> str:
        """``tree_size``, ``root_hash`` (base64) and ``origin``: what :meth:`parse` reads back."""
        return json.dumps({"origin": self.origin, "root_hash": base64.b64encode(self.root_hash).decode(),
                           "tree_size": self.tree_size}, sort_keys=True)


@dataclass(frozen=True)
class Finding:
    """Why the export is not intact: which check failed, where, and what it means."""

    check: str  # checkpoint, signature, wrong-key, order, origin, entry, too-large, sequence, segment,
    #             chain, root, truncated, trusted (the witness), unsigned (the report is unverifiable)
    reason: str
    entry: int | None = None  # position in the log (0-based)
    checkpoint: str | None = None  # file name under checkpoints/

    def __str__(self) -> str:
        where = f"entry {self.entry}" if self.entry is not None else f"checkpoint {self.checkpoint}"
        return f"{where}: {self.reason}"


_EXIT_STATUS = {"intact": 0, "not-intact": 1, "unverifiable": 3}


@dataclass(frozen=True)
class VerificationReport:
    """The verifier's answer. ``intact`` is True only if every check passed and every entry is signed.

    ``verdict`` says which of three it is: ``intact``; ``unverifiable`` (everything signed checks out,
    but ``unsigned_entries`` at the end are covered by no checkpoint: they could have been changed,
    added or removed, and the finding names the first); ``not-intact`` (the finding names what failed).
    """

    intact: bool
    entries: int
    checkpoints: int
    tree_size: int = 0  # entries vouched for: by the latest checkpoint that verified, or by the witness
    root_hash: str = ""  # base64, the root at tree_size
    unsigned_entries: int = 0
    finding: Finding | None = field(default=None)
    origin: str = ""
    witness_size: int | None = None  # the witness the export was checked against, if any

    @property
    def verdict(self) -> str:
        """``intact``, ``unverifiable`` or ``not-intact``."""
        if self.intact:
            return "intact"
        return "unverifiable" if self.finding is not None and self.finding.check == "unsigned" else "not-intact"

    @property
    def exit_status(self) -> int:
        """The command line's exit status: 0 intact, 1 not intact, 3 unverifiable."""
        return _EXIT_STATUS[self.verdict]

    def witness(self) -> Witness | None:
        """What this report vouches for, to keep as the witness of the next verification (None if nothing)."""
        if self.verdict == "not-intact" or not self.root_hash:
            return None
        return Witness(self.tree_size, base64.b64decode(self.root_hash), self.origin or None)

    def __str__(self) -> str:
        if self.verdict == "not-intact":
            return f"NOT INTACT: {self.finding}"
        if self.verdict == "unverifiable":
            return f"UNVERIFIABLE: {self.finding}"
        anchor = (f"; extends the witness at size {self.witness_size}" if self.witness_size is not None else
                  "; no witness given, so a log cut back to an earlier checkpoint would pass too (use --witness)")
        return (f"intact: {self.entries} entries, {self.checkpoints} checkpoints, latest at size "
                f"{self.tree_size} with root {self.root_hash}{anchor}")

    def to_json(self) -> str:
        """Every field, and ``verdict``; keep it: its ``tree_size`` and ``root_hash`` are a witness."""
        return json.dumps({**asdict(self), "verdict": self.verdict}, sort_keys=True)


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
    witness: Witness | SignedCheckpoint | None = None,
    trusted_checkpoint: SignedCheckpoint | None = None,
    allow_unsigned_tail: bool = False,
    max_entry_bytes: int = MAX_ENTRY_BYTES,
) -> VerificationReport:
    """Verify an exported log against ``public_key``; see the module docstring for the checks.

    ``witness`` is the latest checkpoint you trust, held outside the writer's control (a
    :class:`Witness`, or a :class:`~fasterpay.audit.checkpoints.SignedCheckpoint`): with it, a log cut
    back to an earlier checkpoint, or rewritten and re-signed, is not intact. ``trusted_checkpoint`` is
    its old name. ``allow_unsigned_tail`` is deprecated and has no effect: entries after the last
    checkpoint always make the report unverifiable, never intact.

    Raises :class:`ExportNotFoundError` or :class:`~fasterpay.audit.checkpoints.PublicKeyError` for
    unusable input; every problem with the export's content is a finding in the report instead.

    Examples:
        >>> report = verify_export("audit-export", Path("audit-signing-key.pem").read_bytes(),  # doctest: +SKIP
        ...                        witness=Witness.from_file("last-report.json"))
        >>> print(report)  # doctest: +SKIP
        intact: 1200 entries, 12 checkpoints, latest at size 1200 with root ...; extends the witness at size 1100
    """
    if witness is not None and trusted_checkpoint is not None:
        raise TypeError("give witness or trusted_checkpoint (its old name), not both")
    given = witness if witness is not None else trusted_checkpoint
    anchor = Witness.of(given) if isinstance(given, SignedCheckpoint) else given
    if allow_unsigned_tail:
        warnings.warn("allow_unsigned_tail has no effect: entries after the last checkpoint make the report "
                      "unverifiable, never intact", DeprecationWarning, stacklevel=2)
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
    origin = checkpoints.by_size[0][1].checkpoint.origin
    if anchor is not None:
        finding = _witness_signature_finding(anchor, key, origin)
        if finding is not None:
            return _fail(0, count, finding)
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
    latest = checkpoints.by_size[-1][1]
    vouched, vouched_root = latest.tree_size, latest.root_hash
    if anchor is not None:
        finding = _witness_finding(tree, anchor, latest.tree_size)
        if finding is not None:
            return _fail(tree.size, count, finding)
        if anchor.tree_size > vouched:  # the witness saw a checkpoint this export lacks: it vouches further
            vouched, vouched_root = anchor.tree_size, anchor.root_hash
    unsigned = tree.size - vouched
    return VerificationReport(unsigned == 0, tree.size, count, vouched, base64.b64encode(vouched_root).decode(),
                              unsigned, _unsigned_finding(tree.size, vouched) if unsigned else None, origin,
                              anchor.tree_size if anchor is not None else None)


def _witness_signature_finding(witness: Witness, key: ec.EllipticCurvePublicKey, origin: str) -> Finding | None:
    if witness.signed is not None:
        try:
            verify_checkpoint(witness.signed, key)
        except CheckpointError as exc:
            return Finding("trusted", f"the witness does not verify: {exc}", checkpoint="(witness)")
    if witness.origin is not None and witness.origin != origin:
        return Finding("trusted", f"the witness is a checkpoint of log {witness.origin!r}, but this export is of "
                                  f"{origin!r}: give the witness of this log", checkpoint="(witness)")
    return None


def _witness_finding(tree: MerkleTree, witness: Witness, latest_size: int) -> Finding | None:
    size = witness.tree_size
    if size > tree.size:
        return Finding("trusted", f"the witness vouches for {size} entries but the export holds {tree.size}: "
                                  f"entries {tree.size} to {size - 1} are missing, so the log was cut back "
                                  "(truncated) since the witness saw it", entry=tree.size)
    if tree.root(size) != witness.root_hash:
        extends = f"; the checkpoint at size {latest_size} does not extend it" if latest_size >= size else ""
        return Finding("trusted", f"the first {size} entries do not have the witness's root{extends}: the log was "
                                  "rewritten or forked since the witness saw it, and re-signed if its checkpoints "
                                  "verify", checkpoint="(witness)")
    return None


def _unsigned_finding(entries: int, vouched: int) -> Finding:
    verified = f"entries 0 to {vouched - 1} verify against it" if vouched else "no entry is signed"
    return Finding("unsigned", f"the last {entries - vouched} entries, {vouched} to {entries - 1}, come after the "
                               f"last checkpoint (size {vouched}) and nothing signs them, so they could have been "
                               f"changed, added or removed unnoticed ({verified}); the writer signs at every flush: "
                               "export again after its next flush, or find out why it stopped", entry=vouched)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0 intact, 1 not intact, 2 unusable input, 3 unverifiable).

    Examples:
        >>> main(["audit-export", "--public-key", "key.pem", "--witness", "last.json"])  # doctest: +SKIP
        intact: 1200 entries, 12 checkpoints, latest at size 1200 with root ...; extends the witness at size 1100
        0
    """
    parser = argparse.ArgumentParser(prog="python -m fasterpay.audit.verify",
                                     description="Verify an exported audit log offline.")
    parser.add_argument("export_dir", type=Path, help="folder holding segments/ and checkpoints/")
    parser.add_argument("--public-key", type=Path, required=True, help="PEM of the log's signing key")
    parser.add_argument("--witness", "--trusted-checkpoint", dest="witness", type=Path,
                        help="the latest checkpoint you trust, kept outside the writer's control: a .note, or the "
                             "JSON of an earlier report (--json); detects a log cut back or rewritten since")
    parser.add_argument("--allow-unsigned-tail", action="store_true",
                        help="deprecated, no effect: unsigned entries make the report UNVERIFIABLE (exit status 3)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.allow_unsigned_tail:
        print("--allow-unsigned-tail has no effect: entries after the last checkpoint are reported as "
              "unverifiable (exit status 3)", file=sys.stderr)
    try:
        pem = args.public_key.read_bytes()
        witness = Witness.from_file(args.witness) if args.witness is not None else None
        report = verify_export(args.export_dir, pem, witness=witness)
    except (OSError, PublicKeyError, MalformedCheckpointError, WitnessError) as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    print(report.to_json() if args.json else str(report))
    return report.exit_status


if __name__ == "__main__":
    sys.exit(main())
