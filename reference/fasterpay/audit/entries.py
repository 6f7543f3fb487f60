"""Audit entries: what one line of the log says, in one canonical byte form, with no personal data.

An entry names an event by references only: a kind (``vault.detokenize``, ``payment.status``), the
actor (a service or principal), the subject (a token, an EndToEndId, a UETR), an outcome code and a
few more references. Every value must be a single reference-shaped word; anything with spaces, and
any value that is, whole, a valid IBAN or card number, is refused with :class:`PersonalDataError`.
An immutable log cannot be erased, so personal data must never enter it: log tokens from the vault.

The leaf bytes are canonical JSON (sorted keys, no spaces, ASCII) of the entry plus ``seq`` (its
position) and ``prev`` (the hex leaf hash of the entry before it, all zeros for the first). ``seq``
and ``prev`` let the offline verifier name the exact entry that was removed, moved or changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

__all__ = [
    "GENESIS_PREV",
    "MAX_ENTRY_BYTES",
    "AuditEntry",
    "EntryTooLargeError",
    "InvalidEntryError",
    "PersonalDataError",
    "decode_entry",
    "encode_entry",
]

#: Largest encoded entry accepted, in bytes. Entries hold references, never documents.
MAX_ENTRY_BYTES = 2048
#: ``prev`` of the first entry.
GENESIS_PREV = "0" * 64
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#=+-]{0,199}")
_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
_KIND = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_-]*)+")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", re.ASCII)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_REFS = 12
_FIELDS = ("seq", "prev", "at", "kind", "actor", "subject", "outcome", "refs")


class InvalidEntryError(ValueError):
    """An entry is malformed; the message names the field. Fix the caller, nothing was logged."""


class PersonalDataError(InvalidEntryError):
    """A value looks like personal data (free text, an IBAN, a card number): log a vault token instead."""


class EntryTooLargeError(InvalidEntryError):
    """An encoded entry exceeds :data:`MAX_ENTRY_BYTES`: log references, not documents."""


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _iban_ok(value: str) -> bool:
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", value):
        return False
    moved = value[4:] + value[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _check_reference(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidEntryError(f"{name} must be a string reference, got {type(value).__name__}")
    if not _REFERENCE.fullmatch(value):
        raise PersonalDataError(
            f"{name} must be one reference-shaped word (letters, digits, . _ : / # = + -; at most 200), "
            f"got {len(value)} characters that are not: log a token, a hash or an id, never free text")
    compact = value.replace("-", "").replace(".", "")
    if compact.isdigit() and 12 <= len(compact) <= 19 and _luhn_ok(compact):
        raise PersonalDataError(f"{name} looks like a card number: log the vault's token instead")
    if _iban_ok(value.upper()):
        raise PersonalDataError(f"{name} looks like an IBAN: log the vault's token instead")
    return value


@dataclass(frozen=True)
class AuditEntry:
    """One audited event, by references only.

    Examples:
        >>> AuditEntry(kind="payment.status", actor="svc-clearing", subject="E2E-20261128-0001",
        ...            outcome="ACSP", at=datetime(2026, 11, 28, tzinfo=UTC),
        ...            refs={"uetr": "2f7f1c0e-3c1b-4a39-9e0b-6a4d2e1c9b10"}).outcome
        'ACSP'
    """

    kind: str
    actor: str
    subject: str
    outcome: str
    at: datetime
    refs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not _KIND.fullmatch(self.kind):
            raise InvalidEntryError(f"kind must look like 'area.event' in lower case, got {self.kind!r}")
        _check_reference("actor", self.actor)
        _check_reference("subject", self.subject)
        _check_reference("outcome", self.outcome)
        if not isinstance(self.at, datetime) or self.at.tzinfo is None:
            raise InvalidEntryError("at must be a timezone-aware datetime (UTC)")
        if not isinstance(self.refs, Mapping) or len(self.refs) > _MAX_REFS:
            raise InvalidEntryError(f"refs must be a mapping of at most {_MAX_REFS} references")
        for key, value in self.refs.items():
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                raise InvalidEntryError(f"refs key {key!r} must be lower_snake_case, at most 40 characters")
            _check_reference(f"refs.{key}", value)
        object.__setattr__(self, "refs", MappingProxyType(dict(self.refs)))

    def timestamp(self) -> str:
        """``at`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
        at = self.at.astimezone(UTC)
        return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def encode_entry(entry: AuditEntry, seq: int, prev: str, *, max_bytes: int = MAX_ENTRY_BYTES) -> bytes:
    """The canonical leaf bytes of ``entry`` at position ``seq`` after a leaf whose hash is ``prev`` (hex).

    Examples:
        >>> e = AuditEntry("payment.status", "svc", "E2E-1", "ACSC", datetime(2026, 1, 1, tzinfo=UTC))
        >>> encode_entry(e, 0, GENESIS_PREV)[:40]
        b'{"actor":"svc","at":"2026-01-01T00:00:00'
    """
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InvalidEntryError(f"seq must be a whole number >= 0, got {seq!r}")
    if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        raise InvalidEntryError("prev must be 64 lower-case hex characters")
    body = json.dumps(
        {"seq": seq, "prev": prev, "at": entry.timestamp(), "kind": entry.kind, "actor": entry.actor,
         "subject": entry.subject, "outcome": entry.outcome, "refs": dict(entry.refs)},
        sort_keys=True, separators=(",", ":"), ensure_ascii=True,
    ).encode("ascii")
    if len(body) > max_bytes:
        raise EntryTooLargeError(f"entry {seq} encodes to {len(body)} bytes, more than {max_bytes}")
    return body


def decode_entry(line: bytes, *, max_bytes: int = MAX_ENTRY_BYTES) -> dict[str, Any]:
    """Parse and check one stored entry; raises :class:`InvalidEntryError` saying what is wrong.

    The bytes must be exactly the canonical form :func:`encode_entry` writes, so two encodings of the
    same content cannot both be valid.

    Examples:
        >>> e = AuditEntry("payment.status", "svc", "E2E-1", "ACSC", datetime(2026, 1, 1, tzinfo=UTC))
        >>> decode_entry(encode_entry(e, 7, GENESIS_PREV))["seq"]
        7
    """
    if len(line) > max_bytes:
        raise EntryTooLargeError(f"{len(line)} bytes, more than the {max_bytes} an entry may have")
    try:
        data = json.loads(line.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSONDecodeError, huge numbers
        raise InvalidEntryError(f"not canonical ASCII JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or sorted(data) != sorted(_FIELDS):
        raise InvalidEntryError(f"fields must be exactly {', '.join(_FIELDS)}")
    if not isinstance(data["at"], str) or not _TIME.fullmatch(data["at"]):
        raise InvalidEntryError("at must look like 2026-11-28T09:30:00.000Z")
    try:  # the shape is checked above; this refuses a day, month or hour that does not exist
        at = datetime.fromisoformat(data["at"])
    except ValueError:
        raise InvalidEntryError(f"at {data['at']!r} has the right shape but is not a real date and time") from None
    try:
        entry = AuditEntry(data["kind"], data["actor"], data["subject"], data["outcome"], at, data["refs"])
        canonical = encode_entry(entry, data["seq"], data["prev"], max_bytes=max_bytes)
    except (TypeError, AttributeError) as exc:
        raise InvalidEntryError(f"a field has the wrong type ({exc})") from None
    if canonical != line:
        raise InvalidEntryError("not in canonical form (key order, spacing or escaping differs)")
    return data
