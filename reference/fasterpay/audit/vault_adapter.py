"""The vault's first customer: its detokenize and erase records, into the tamper-evident log.

:class:`MerkleAuditLog` implements the vault's ``AuditLog`` protocol (``append(record)``). Each
:class:`~fasterpay.vault.AuditRecord` becomes one entry that carries references only: the token (or
``subject:<id>`` for an erasure), principal, purpose, tenant, result and event id, plus the SHA-256 of
the full record as the vault wrote it. The record's free-text reason is not logged; its hash is, so a
record kept elsewhere (for example the vault's DynamoDB audit table, passed as ``also``) can be proved
unchanged later. It fails closed: if either write fails the vault gets ``AuditWriteError`` and returns
no value.
"""

from __future__ import annotations

import hashlib
import json

from ..vault.audit import AuditLog, AuditRecord, AuditWriteError

from .entries import AuditEntry
from .log import AuditTrail

__all__ = ["MerkleAuditLog", "record_digest"]


def record_digest(record: AuditRecord) -> str:
    """``sha256:<hex>`` of the record's canonical JSON (as :meth:`AuditRecord.as_item` gives it).

    Examples:
        >>> record_digest(record)[:7]  # doctest: +SKIP
        'sha256:'
    """
    canonical = json.dumps(record.as_item(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


class MerkleAuditLog:
    """A vault ``AuditLog`` that appends to an :class:`AuditTrail` (and, first, to ``also`` if given).

    ``durable=True`` flushes every record to storage before the vault returns a value (one S3 write per
    detokenize); ``False`` leaves batching to the trail and accepts losing the buffered records in a
    crash, which a vault should not accept.

    Examples:
        >>> vault.audit = MerkleAuditLog(trail, also=DynamoDbAuditLog(dynamodb, table))  # doctest: +SKIP
    """

    def __init__(self, trail: AuditTrail, *, also: AuditLog | None = None, durable: bool = True) -> None:
        self.trail = trail
        self.also = also
        self.durable = durable

    def append(self, record: AuditRecord) -> None:
        refs = {"event_id": record.event_id, "tenant": record.tenant, "purpose": record.purpose,
                "record": record_digest(record)}
        try:
            entry = AuditEntry(kind=f"vault.{record.action}", actor=record.principal, subject=record.reference,
                               outcome=record.result.value, at=record.at, refs=refs)
            if self.also is not None:
                self.also.append(record)
            self.trail.append(entry)
            if self.durable:
                self.trail.flush()
        except AuditWriteError:
            raise
        except Exception as exc:  # any failure: the vault must not hand out a value unaudited
            raise AuditWriteError(f"could not append audit record {record.event_id} to the Merkle log: {exc}") from exc
