"""Append-only audit records of every detokenize and erasure attempt, allowed or not.

Every attempt gets one record, malformed ones included. ``principal`` is the identity the vault's AWS
clients authenticate as (STS ``GetCallerIdentity``); the principal the caller states about itself is kept
beside it, as ``claimed_principal``, and is never taken for the identity. On DynamoDB each record is written with ``attribute_not_exists`` so an existing record is never
overwritten, and the roles that write records have ``dynamodb:PutItem`` only (no Update, no Delete).
Records hold tokens and references, never a value in clear.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

__all__ = [
    "AuditLog",
    "AuditRecord",
    "AuditResult",
    "AuditWriteError",
    "DynamoDbAuditLog",
    "InMemoryAuditLog",
    "UNAUTHORISED_RESULTS",
    "scan_audit_table",
]


class AuditWriteError(RuntimeError):
    """The audit record could not be written, so the vault refused the operation (it fails closed)."""


class AuditResult(str, Enum):
    """What happened to one attempt."""

    ALLOWED = "allowed"
    DENIED_POLICY = "denied-policy"
    DENIED_IAM = "denied-iam"
    CONTEXT_MISMATCH = "context-mismatch"
    UNKNOWN_TOKEN = "unknown-token"
    SUBJECT_ERASED = "subject-erased"
    TAMPERED = "tampered"
    ERASED = "erased"
    INVALID_REQUEST = "invalid-request"  # a malformed token, tenant or subject: refused before any AWS call
    UNSUPPORTED_FORMAT = "unsupported-format"  # a record of an older format, which this vault does not read
    FAILED = "failed"  # an unexpected error (throttling, an outage); the error is raised to the caller


#: Results that count as unauthorised attempts on the KPI page.
UNAUTHORISED_RESULTS = frozenset({AuditResult.DENIED_POLICY, AuditResult.DENIED_IAM, AuditResult.CONTEXT_MISMATCH})


@dataclass(frozen=True)
class AuditRecord:
    """Who did what to which token, why, and what happened.

    ``principal`` is the authenticated AWS identity (an ARN); ``claimed_principal`` and ``purpose`` are
    what the caller stated. A malformed token, tenant or subject is never copied into a record (it may be
    a value in clear): ``reference`` is then ``invalid-token`` or ``invalid-subject``, ``tenant`` is
    ``invalid-tenant``, and ``reason`` gives only its type and length.
    """

    event_id: str
    at: datetime
    action: str  # "detokenize" or "erase"
    principal: str
    purpose: str
    tenant: str
    reference: str  # a token, or "subject:<id>" for an erasure
    result: AuditResult
    reason: str = ""
    claimed_principal: str = ""

    def as_item(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["result"] = self.result.value
        return data


class AuditLog(Protocol):
    def append(self, record: AuditRecord) -> None: ...


class InMemoryAuditLog:
    """An audit log held in a list: for tests and for the notebook's counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[AuditRecord] = []

    def append(self, record: AuditRecord) -> None:
        with self._lock:
            if any(r.event_id == record.event_id for r in self.records[-64:]):
                raise AuditWriteError(f"audit record {record.event_id} exists already; records are append-only")
            self.records.append(record)


class DynamoDbAuditLog:
    """Audit records in a DynamoDB table keyed ``pk = "AUDIT#<day>"``, ``sk = "<time>#<event id>"``."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._dynamodb = dynamodb
        self.table_name = table_name

    def append(self, record: AuditRecord) -> None:
        item = {k: {"S": str(v)} for k, v in record.as_item().items()}
        item["pk"] = {"S": f"AUDIT#{record.at.date().isoformat()}"}
        item["sk"] = {"S": f"{record.at.isoformat()}#{record.event_id}"}
        try:
            self._dynamodb.put_item(
                TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except Exception as exc:  # any failure: the caller must not hand out a value unaudited
            raise AuditWriteError(f"could not append audit record {record.event_id}: {exc}") from exc

    def records_for_day(self, day: str) -> list[dict[str, str]]:
        """All records of one UTC day (``YYYY-MM-DD``), oldest first; needs ``dynamodb:Query``."""
        out: list[dict[str, str]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"AUDIT#{day}"}},
        }
        while True:
            page = self._dynamodb.query(**kwargs)
            out.extend({k: v["S"] for k, v in item.items()} for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def scan_audit_table(dynamodb: Any, table_name: str) -> list[dict[str, str]]:
    """Every audit record in the table (needs ``dynamodb:Scan``: an auditor's role, not the vault's)."""
    out: list[dict[str, str]] = []
    kwargs: dict[str, Any] = {"TableName": table_name}
    while True:
        page = dynamodb.scan(**kwargs)
        out.extend({k: v["S"] for k, v in item.items()} for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
