"""The pipeline's own state in DynamoDB: payment statuses, duplicate checks and a failure log.

One table (partition key ``pk``) holds three kinds of item:

* ``PAY#<uetr>``: a payment's status, its history of status changes and the clearing decision. Every
  change is a conditional update, so a redelivered message can never move a status backwards or twice.
* ``DUP#MSG#<MsgId>`` and ``DUP#E2E#<EndToEndId>``: duplicate checks, one conditional put each.
* ``FAIL#<stage>#<messageId>``: why a queue message failed, kept for the dead-letter queue's readers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from fasterpay.iso20022 import TransactionStatus

from .model import Payment

__all__ = [
    "DynamoDbDuplicateDetector",
    "PaymentStatus",
    "StatusConflictError",
    "StatusStore",
]

#: Which status may follow which (RJCT is terminal, ACSC is terminal).
_PREDECESSORS: dict[str, tuple[str, ...]] = {
    "ACTC": (),
    "ACCP": ("ACTC",),
    "ACSP": ("ACCP",),
    "ACSC": ("ACSP",),
    "RJCT": ("ACTC", "ACCP"),
}


class StatusConflictError(Exception):
    """A status change is not allowed from the payment's current status; nothing was written.

    A redelivered message that finds its change already made is not a conflict; this error means the
    payment moved on another way (for example it was rejected), so drop the message.
    """


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class PaymentStatus:
    """A payment's current status and what led to it."""

    uetr: str
    status: str
    reason: str | None
    payment: Payment
    history: tuple[dict[str, Any], ...]
    decision: str | None = None
    cycle: str | None = None


class DynamoDbDuplicateDetector:
    """A :class:`~fasterpay.iso20022.DuplicateDetector` backed by conditional puts.

    ``owner`` names the submission (the channel's id for one received message). A redelivery of the same
    submission is not a duplicate of itself, so a crash between the check and the answer never turns a
    payment into a false DU01/DU04; a second submission with the same MsgId is.

    Examples:
        >>> detector = DynamoDbDuplicateDetector(dynamodb, "fasterpay-payments", owner="sub-1")  # doctest: +SKIP
        >>> detector.seen_message("MSG-1")  # doctest: +SKIP
        False
    """

    def __init__(self, dynamodb: Any, table: str, *, owner: str) -> None:
        self._ddb = dynamodb
        self.table = table
        self.owner = owner

    def _seen(self, key: str) -> bool:
        try:
            self._ddb.put_item(
                TableName=self.table,
                Item={"pk": {"S": key}, "owner": {"S": self.owner}},
                ConditionExpression="attribute_not_exists(pk) OR #o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": self.owner}},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return True
            raise
        return False

    def seen_message(self, msg_id: str) -> bool:
        """Record ``msg_id`` for this submission; True if another submission recorded it first."""
        return self._seen(f"DUP#MSG#{msg_id}")

    def seen_end_to_end(self, end_to_end_id: str) -> bool:
        """Record ``end_to_end_id`` for this submission; True if another submission recorded it first."""
        return self._seen(f"DUP#E2E#{end_to_end_id}")


class StatusStore:
    """Payment statuses with conditional, exactly-once transitions.

    Examples:
        >>> store = StatusStore(dynamodb, "fasterpay-payments")  # doctest: +SKIP
        >>> store.accept(payment, at=now)  # doctest: +SKIP
        >>> store.advance(payment.uetr, "ACCP", at=now).status  # doctest: +SKIP
        'ACCP'
    """

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self.table = table

    def accept(self, payment: Payment, *, at: float) -> bool:
        """Record a payment as ACTC; False if it was recorded before (a redelivery)."""
        try:
            self._ddb.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"PAY#{payment.uetr}"},
                    "status": {"S": "ACTC"},
                    "payment": {"S": payment.to_json()},
                    "history": {"L": [_entry("ACTC", at, None)]},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def advance(
        self, uetr: str, status: str | TransactionStatus, *, at: float, reason: str | None = None,
        rail: str | None = None, cycle: str | None = None,
    ) -> PaymentStatus:
        """Move a payment to ``status``; a repeat of the same change is answered, not applied twice.

        Raises:
            StatusConflictError: the payment is in a status that may not move to ``status``.
        """
        new = str(status)
        allowed = _PREDECESSORS[new]
        names = {"#s": "status"}
        values: dict[str, Any] = {":new": {"S": new}, ":h": {"L": [_entry(new, at, reason)]}}
        update = "SET #s = :new, history = list_append(history, :h)"
        if reason is not None:
            update += ", #r = :reason"
            names["#r"] = "reason"
            values[":reason"] = {"S": reason}
        if rail is not None:
            update += ", rail = :rail"
            values[":rail"] = {"S": rail}
        if cycle is not None:
            update += ", #c = :cycle"
            names["#c"] = "cycle"
            values[":cycle"] = {"S": cycle}
        placeholders = []
        for n, previous in enumerate(allowed):
            values[f":p{n}"] = {"S": previous}
            placeholders.append(f":p{n}")
        try:
            answer = self._ddb.update_item(
                TableName=self.table, Key={"pk": {"S": f"PAY#{uetr}"}}, UpdateExpression=update,
                ConditionExpression=f"#s IN ({', '.join(placeholders)})", ExpressionAttributeNames=names,
                ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item") or self._item(uetr)
            if old is not None and old["status"]["S"] == new:
                return _status(old)  # this change was made before: a redelivery
            current = old["status"]["S"] if old else "none"
            raise StatusConflictError(f"payment {uetr} is {current}; it cannot become {new}") from exc
        return _status(answer["Attributes"])

    def decide(self, uetr: str, decision: str) -> str:
        """Record the clearing decision once; return the decision that stands (the first one recorded)."""
        try:
            self._ddb.update_item(
                TableName=self.table, Key={"pk": {"S": f"PAY#{uetr}"}}, UpdateExpression="SET decision = :d",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(decision)",
                ExpressionAttributeValues={":d": {"S": decision}},
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            item = self._item(uetr)
            if item is None or "decision" not in item:
                raise
            return str(item["decision"]["S"])
        return decision

    def get(self, uetr: str) -> PaymentStatus | None:
        """The payment's status, or None."""
        item = self._item(uetr)
        return None if item is None else _status(item)

    def record_rejection(self, key: str, pacs002_xml: bytes, reasons: list[str], *, at: float) -> None:
        """Keep the pacs.002 of a message rejected at ingest (it never became a payment)."""
        self._ddb.put_item(TableName=self.table, Item={
            "pk": {"S": f"REJ#{key}"}, "status": {"S": "RJCT"}, "reasons": {"S": ",".join(reasons)},
            "pacs002": {"B": pacs002_xml}, "at": {"N": repr(at)},
        })

    def record_failure(self, stage: str, message_id: str, reason: str, receive_count: int) -> None:
        """Why a queue message failed (read beside the dead-letter queue)."""
        self._ddb.put_item(TableName=self.table, Item={
            "pk": {"S": f"FAIL#{stage}#{message_id}"}, "reason": {"S": reason[:500]},
            "receive_count": {"N": str(receive_count)},
        })

    def failure(self, stage: str, message_id: str) -> str | None:
        """The last recorded failure reason of a queue message."""
        item = self._ddb.get_item(TableName=self.table, Key={"pk": {"S": f"FAIL#{stage}#{message_id}"}}).get("Item")
        return None if item is None else str(item["reason"]["S"])

    def payments(self) -> Iterator[PaymentStatus]:
        """Every payment (a Scan: for reconciliation, not the posting path)."""
        for item in self._scan():
            if item["pk"]["S"].startswith("PAY#"):
                yield _status(item)

    def rejected_at_ingest(self) -> Iterator[dict[str, Any]]:
        """Every message or transaction rejected at ingest: key, reasons."""
        for item in self._scan():
            if item["pk"]["S"].startswith("REJ#"):
                yield {"key": item["pk"]["S"][4:], "reasons": item["reasons"]["S"].split(",")}

    def _scan(self) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self._ddb.scan(**kwargs)
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _item(self, uetr: str) -> dict[str, Any] | None:
        return self._ddb.get_item(TableName=self.table, Key={"pk": {"S": f"PAY#{uetr}"}},
                                  ConsistentRead=True).get("Item")


def _entry(status: str, at: float, reason: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": {"S": status}, "at": {"N": repr(at)}}
    if reason is not None:
        entry["reason"] = {"S": reason}
    return {"M": entry}


def _status(item: dict[str, Any]) -> PaymentStatus:
    history = tuple(
        {"status": h["M"]["status"]["S"], "at": float(h["M"]["at"]["N"]),
         "reason": h["M"].get("reason", {}).get("S")}
        for h in item.get("history", {}).get("L", [])
    )
    payment = Payment.from_json(item["payment"]["S"])
    return PaymentStatus(
        uetr=item["pk"]["S"][4:], status=item["status"]["S"], reason=item.get("reason", {}).get("S"),
        payment=payment.routed(item["rail"]["S"]) if "rail" in item else payment, history=history,
        decision=item.get("decision", {}).get("S"), cycle=item.get("cycle", {}).get("S"),
    )


def dumps(value: Any) -> str:
    """Compact JSON."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
