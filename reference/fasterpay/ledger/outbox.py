"""The outbox relay: events written in the ledger transaction, sent on to SQS FIFO, at least once.

The relay reads a page of events per outbox shard, sends them in one ``SendMessageBatch`` with the event
id as ``MessageDeduplicationId``, then deletes what was sent. A crash between sending and deleting sends
the same events again on the next run. SQS FIFO drops a resend within its 5-minute deduplication window
(moto forgets the id once the first copy is deleted), and the consumer's own deduplication catches the
rest, so downstream effects still happen once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import Crash, OutboxEvent, no_crash

__all__ = ["OutboxRelay", "RelayReport"]


@dataclass(frozen=True)
class RelayReport:
    read: int = 0
    sent: int = 0
    deleted: int = 0
    failed: int = 0  # refused by SQS in the batch: kept in the outbox for the next run

    def __add__(self, other: RelayReport) -> RelayReport:
        return RelayReport(self.read + other.read, self.sent + other.sent, self.deleted + other.deleted,
                           self.failed + other.failed)


class OutboxRelay:
    """Moves events from the outbox table to an SQS FIFO queue; give it the relay role's clients.

    Examples:
        >>> relay = OutboxRelay(dynamodb, sqs, outbox_table=tables.outbox, queue_url=tables.queue_url)
        ...     # doctest: +SKIP
        >>> relay.drain().sent  # doctest: +SKIP
        3
    """

    def __init__(
        self,
        dynamodb: Any,
        sqs: Any,
        *,
        outbox_table: str,
        queue_url: str,
        shards: int = 8,
        page_size: int = 10,
        crash: Crash = no_crash,
    ) -> None:
        if not 1 <= page_size <= 10:
            raise ValueError("page_size must be 1 to 10 (the SQS batch limit)")
        self._ddb = dynamodb
        self._sqs = sqs
        self.outbox_table = outbox_table
        self.queue_url = queue_url
        self.shards = shards
        self.page_size = page_size
        self.crash = crash

    def relay_once(self) -> RelayReport:
        """One page from every shard: read, send, delete."""
        report = RelayReport()
        for shard in range(self.shards):
            report += self._relay_page(shard)
        return report

    def drain(self, *, max_rounds: int = 1_000) -> RelayReport:
        """Relay until the outbox is empty (or ``max_rounds`` pages per shard)."""
        report = RelayReport()
        for _ in range(max_rounds):
            page = self.relay_once()
            report += page
            if page.read == 0:
                return report
        return report

    def pending(self) -> int:
        """Events waiting in the outbox."""
        total = 0
        for shard in range(self.shards):
            kwargs: dict[str, Any] = {**self._query(shard), "Select": "COUNT"}
            kwargs.pop("Limit")
            while True:
                page = self._ddb.query(**kwargs)
                total += page["Count"]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return total

    def _query(self, shard: int) -> dict[str, Any]:
        return {
            "TableName": self.outbox_table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"OUTBOX#{shard}"}},
            "ConsistentRead": True,
            "Limit": self.page_size,
        }

    def _relay_page(self, shard: int) -> RelayReport:
        items = self._ddb.query(**self._query(shard))["Items"]
        if not items:
            return RelayReport()
        self.crash("read")
        events = [OutboxEvent(i["event_id"]["S"], i["type"]["S"], i["group"]["S"], i["body"]["S"]) for i in items]
        answer = self._sqs.send_message_batch(QueueUrl=self.queue_url, Entries=[
            {"Id": str(n), "MessageBody": e.body, "MessageGroupId": e.group, "MessageDeduplicationId": e.event_id,
             "MessageAttributes": {"type": {"DataType": "String", "StringValue": e.type}}}
            for n, e in enumerate(events)
        ])
        sent = {int(entry["Id"]) for entry in answer.get("Successful", [])}
        self.crash("sent")
        if sent:
            self._delete([items[n] for n in sorted(sent)])
        self.crash("deleted")
        return RelayReport(read=len(items), sent=len(sent), deleted=len(sent), failed=len(items) - len(sent))

    def _delete(self, items: list[dict[str, Any]]) -> None:
        request = {self.outbox_table: [{"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}} for i in items]}
        while request:
            request = self._ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
