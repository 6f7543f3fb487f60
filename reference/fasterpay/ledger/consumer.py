"""A consumer that applies each ledger event once, however often SQS delivers it.

For each message the consumer writes, in one ``TransactWriteItems``, a *processed* marker keyed by the
event id (on condition that it is new) and the event's effects. A redelivered event is cancelled at the
marker and only acknowledged. Markers expire (TTL on ``expires_at``) after ``retention_seconds``, which
must exceed the longest time SQS may keep a message (at most 14 days); expiry is also checked on write.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .model import Crash, OutboxEvent, no_crash

__all__ = ["ConsumerReport", "DeduplicatingConsumer", "statement_projection", "read_projection"]

Apply = Callable[[OutboxEvent], list[dict[str, Any]]]


@dataclass(frozen=True)
class ConsumerReport:
    received: int = 0
    applied: int = 0
    duplicates: int = 0


class DeduplicatingConsumer:
    """Receives ledger events from SQS and applies each once; give it the consumer role's clients.

    ``apply`` turns an event into ``TransactWriteItems`` entries (at most 99), committed with the marker.

    Examples:
        >>> consumer = DeduplicatingConsumer(dynamodb, sqs, queue_url=url, table=tables.consumer,
        ...     name="statements", apply=statement_projection(tables.consumer))  # doctest: +SKIP
        >>> consumer.poll_once().applied  # doctest: +SKIP
        3
    """

    def __init__(
        self,
        dynamodb: Any,
        sqs: Any,
        *,
        queue_url: str,
        table: str,
        name: str,
        apply: Apply,
        retention_seconds: int = 15 * 86_400,
        visibility_timeout: int = 30,
        clock: Callable[[], float] = time.time,
        crash: Crash = no_crash,
    ) -> None:
        self._ddb = dynamodb
        self._sqs = sqs
        self.queue_url = queue_url
        self.table = table
        self.name = name
        self.apply = apply
        self.retention_seconds = retention_seconds
        self.visibility_timeout = visibility_timeout
        self.clock = clock
        self.crash = crash

    def poll_once(self, *, max_messages: int = 10, wait_seconds: int = 0) -> ConsumerReport:
        """Receive up to ``max_messages`` and handle each: apply once, then acknowledge."""
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=self.visibility_timeout,
        ).get("Messages", [])
        if not messages:
            return ConsumerReport()
        self.crash("received")
        applied = duplicates = 0
        for message in messages:
            if self.handle(_event(message)):
                applied += 1
            else:
                duplicates += 1
            self.crash("applied")
            self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            self.crash("acknowledged")
        return ConsumerReport(len(messages), applied, duplicates)

    def drain(self, *, max_polls: int = 1_000) -> ConsumerReport:
        """Poll until the queue answers empty (or ``max_polls``)."""
        received = applied = duplicates = 0
        for _ in range(max_polls):
            report = self.poll_once()
            if report.received == 0:
                break
            received, applied, duplicates = (received + report.received, applied + report.applied,
                                             duplicates + report.duplicates)
        return ConsumerReport(received, applied, duplicates)

    def handle(self, event: OutboxEvent) -> bool:
        """Apply ``event`` unless it was applied before; True if applied now."""
        now = int(self.clock())
        marker = {"Put": {
            "TableName": self.table,
            "Item": {"pk": {"S": f"PROCESSED#{self.name}#{event.event_id}"},
                     "expires_at": {"N": str(now + self.retention_seconds)}},
            "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
            "ExpressionAttributeValues": {":now": {"N": str(now)}},
        }}
        try:
            self._ddb.transact_write_items(TransactItems=[marker, *self.apply(event)])
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or [{}]
            if str(reasons[0].get("Code")) == "ConditionalCheckFailed":
                return False
            raise
        return True


def _event(message: dict[str, Any]) -> OutboxEvent:
    body = message["Body"]
    data = json.loads(body)
    return OutboxEvent(data["event_id"], data["type"], data["debit_account"], body)


def statement_projection(table: str) -> Apply:
    """An example effect: per-account totals of money in and out, as a statement service would keep.

    Examples:
        >>> apply = statement_projection("fasterpay-ledger-consumer")
        >>> len(apply(OutboxEvent("e", "TransferPosted", "a", '{"debit_account": "a", '
        ...     '"credit_account": "b", "amount_minor": 5}')))
        2
    """

    def apply(event: OutboxEvent) -> list[dict[str, Any]]:
        data = event.data()
        amount = {"N": str(data["amount_minor"])}

        def add(account: str, field: str) -> dict[str, Any]:
            return {"Update": {
                "TableName": table, "Key": {"pk": {"S": f"STATEMENT#{account}"}},
                "UpdateExpression": f"ADD {field}_minor :amount, {field}_count :one",
                "ExpressionAttributeValues": {":amount": amount, ":one": {"N": "1"}},
            }}

        return [add(data["debit_account"], "out"), add(data["credit_account"], "in")]

    return apply


def read_projection(dynamodb: Any, table: str, account: str) -> dict[str, int]:
    """The statement totals of one account: ``in_minor``, ``in_count``, ``out_minor``, ``out_count``."""
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"STATEMENT#{account}"}},
                             ConsistentRead=True).get("Item", {})
    return {name: int(item[name]["N"]) if name in item else 0
            for name in ("in_minor", "in_count", "out_minor", "out_count")}
