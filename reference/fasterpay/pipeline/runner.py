"""Run the stage handlers locally, the way Lambda's SQS event source mapping would.

:class:`LocalRunner` polls each stage's queue with ``ReceiveMessage``, builds the SQS event Lambda would
deliver, calls the same handler, deletes the records it finished and makes the failed ones visible again
(on AWS they reappear when their visibility timeout ends; here at once, so a run takes no real time).
Each queue's ``RedrivePolicy`` moves a message to its dead-letter queue after ``maxReceiveCount``
receives; moto honours it (checked by ``tests/test_pipeline_runner.py``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import SimulatedCrash

__all__ = ["DeadLetter", "LocalRunner", "RunnerReport", "dead_letters", "redrive", "sqs_event"]

Handler = Callable[[Mapping[str, Any], Any], Mapping[str, Any]]


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda builds from ``ReceiveMessage`` output.

    Examples:
        >>> event = sqs_event([{"MessageId": "m1", "ReceiptHandle": "r", "Body": "{}", "MD5OfBody": "x",
        ...                     "Attributes": {"ApproximateReceiveCount": "1"}}],
        ...                   queue_arn="arn:aws:sqs:eu-west-2:123456789012:q", region="eu-west-2")
        >>> event["Records"][0]["eventSource"], event["Records"][0]["messageId"]
        ('aws:sqs', 'm1')
    """
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": dict(m.get("Attributes", {})),
        "messageAttributes": {k: {"stringValue": v.get("StringValue"), "dataType": v.get("DataType")}
                              for k, v in m.get("MessageAttributes", {}).items()},
        "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324 (SQS's own)
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    } for m in messages]}


@dataclass
class RunnerReport:
    """What one run did: batches per queue, records finished and failed, crashes survived."""

    batches: dict[str, int] = field(default_factory=dict)
    finished: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    crashes: int = 0
    rounds: int = 0
    pending_retries: int = 0  # deletes and visibility resets that failed once and were retried


class LocalRunner:
    """Polls the handlers' queues and hands batches to them until every message is accounted for.

    "Idle" means every queue reports no message visible and none in flight, and no delete or visibility
    reset of this runner is still pending: each message was deleted, is waiting to be received again, or
    was moved to its dead-letter queue by the queue's redrive policy. A delete or visibility reset that
    fails is retried every round until it goes through (on AWS, the visibility timeout would end instead).

    Examples:
        >>> runner = LocalRunner(sqs, queues, make_handlers(ctx), region="eu-west-2")  # doctest: +SKIP
        >>> runner.run_until_idle().finished["accept"]  # doctest: +SKIP
        100
    """

    def __init__(self, sqs: Any, queues: Mapping[str, str], handlers: Mapping[str, Handler], *, region: str,
                 batch_size: int = 10, on_batch: Callable[[str, int], None] | None = None,
                 on_crash: Callable[[str, str, str, int], None] | None = None, control: Any = None,
                 sleep: Callable[[float], None] = time.sleep, max_wait: float = 2.0) -> None:
        if not 1 <= batch_size <= 10:
            raise ValueError("batch_size must be 1 to 10 (the SQS ReceiveMessage maximum)")
        unknown = set(handlers) - set(queues)
        if unknown:
            raise ValueError(f"handlers without a queue: {sorted(unknown)}")
        self.sqs = sqs
        #: the client that reads queue depths for the idle check and to skip empty queues; Lambda's event
        #: source mapping needs no such calls, so a bench passes a client it does not count
        self.control = control if control is not None else sqs
        self.queues = {name: queues[name] for name in handlers}
        self.handlers = dict(handlers)
        self.region = region
        self.batch_size = batch_size
        self.on_batch = on_batch
        self.on_crash = on_crash
        #: how the runner waits when nothing is visible but a message is still in flight (a receive whose
        #: answer was lost keeps its message invisible until the queue's visibility timeout ends): real
        #: time by default; a simulation passes a function that moves its clock instead
        self.sleep = sleep
        self.max_wait = max_wait
        self._arns: dict[str, str] = {}
        self._pending: list[tuple[str, str, str]] = []  # (queue url, "delete" | "release", receipt handle)
        self.report = RunnerReport()

    def _retry_pending(self) -> int:
        """Retry failed deletes and visibility resets; returns how many were pending."""
        pending, self._pending = self._pending, []
        for url, action, handle in pending:
            self.report.pending_retries += 1
            try:
                if action == "delete":
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
                else:
                    self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
            except Exception as exc:  # noqa: BLE001 - still pending, unless SQS says the receipt is gone
                if not _receipt_gone(exc):
                    self._pending.append((url, action, handle))
        return len(pending)

    def _arn(self, name: str) -> str:
        """The queue's ARN, from its URL (``https://sqs.<region>.amazonaws.com/<account>/<name>``): no API call."""
        if name not in self._arns:
            account, queue = self.queues[name].rstrip("/").split("/")[-2:]
            self._arns[name] = f"arn:aws:sqs:{self.region}:{account}:{queue}"
        return self._arns[name]

    def poll_once(self, name: str) -> int:
        """Receive one batch from ``name``'s queue and run its handler; returns the records received (-1: poll failed)."""
        url = self.queues[name]
        try:
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=self.batch_size,
                                                AttributeNames=["All"], MessageAttributeNames=["All"],
                                                WaitTimeSeconds=0).get("Messages", [])
        except Exception:  # noqa: BLE001 - a failed poll is retried; the queue is not idle
            return -1
        if not messages:
            return 0
        report = self.report
        report.batches[name] = report.batches.get(name, 0) + 1
        event = sqs_event(messages, queue_arn=self._arn(name), region=self.region)
        try:
            answer = self.handlers[name](event, None)
            failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        except SimulatedCrash as crash:
            report.crashes += 1
            failed = {m["MessageId"] for m in messages}  # the invocation died: the whole batch comes back
            if self.on_crash is not None:
                for m in messages:
                    self.on_crash(name, m["MessageId"], f"invocation crashed ({crash.step})",
                                  int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")))
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        self._settle(url, "delete", done)
        self._settle(url, "release", retry)
        report.finished[name] = report.finished.get(name, 0) + len(done)
        report.failed[name] = report.failed.get(name, 0) + len(retry)
        if self.on_batch is not None:
            self.on_batch(name, len(done))
        return len(messages)

    def _settle(self, url: str, action: str, messages: list[dict[str, Any]]) -> None:
        """Delete (finished) or make visible again (failed); whatever does not go through stays pending."""
        if not messages:
            return
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
        try:
            if action == "delete":
                answer = self.sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            else:  # on AWS: visible again when the visibility timeout ends
                answer = self.sqs.change_message_visibility_batch(
                    QueueUrl=url, Entries=[{**e, "VisibilityTimeout": 0} for e in entries])
        except Exception:  # noqa: BLE001 - every one of them is pending
            self._pending.extend((url, action, m["ReceiptHandle"]) for m in messages)
            return
        for bad in answer.get("Failed", []):
            if bad.get("Code") != "ReceiptHandleIsInvalid":
                self._pending.append((url, action, messages[int(bad["Id"])]["ReceiptHandle"]))

    def _visible(self, name: str) -> bool:
        try:
            attributes = self.control.get_queue_attributes(QueueUrl=self.queues[name],
                                                           AttributeNames=["ApproximateNumberOfMessages"])
            return int(attributes["Attributes"]["ApproximateNumberOfMessages"]) > 0
        except Exception:  # noqa: BLE001 - unknown: poll it
            return True

    def idle(self) -> bool:
        """True when nothing is pending and every queue has no message visible or in flight."""
        if self._pending:
            return False
        for url in self.queues.values():
            try:
                attributes = self.control.get_queue_attributes(QueueUrl=url, AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            except Exception:  # noqa: BLE001 - unknown: not idle
                return False
            if int(attributes["ApproximateNumberOfMessages"]) or int(attributes["ApproximateNumberOfMessagesNotVisible"]):
                return False
        return True

    def run_until_idle(self, *, max_rounds: int = 100_000) -> RunnerReport:
        """Poll every queue in order until a whole round receives nothing and :meth:`idle` holds.

        A round that receives nothing while a message is still in flight waits before the next one, from
        50 ms doubling up to ``max_wait`` seconds, instead of polling in a tight loop.
        """
        wait = 0.05
        for _ in range(max_rounds):
            self.report.rounds += 1
            received = self._retry_pending()
            for name in self.queues:
                if self.control is not self.sqs and not self._visible(name):
                    continue  # as the event source mapping's long poll would: no empty receive billed per round
                # drain a queue a few batches at a time so the next handler sees full batches too
                for _ in range(4):
                    got = self.poll_once(name)
                    received += abs(got)
                    if got < self.batch_size:
                        break
            if received:
                wait = 0.05
                continue
            if self.idle():
                return self.report
            self.sleep(wait)
            wait = min(wait * 2, self.max_wait)
        raise RuntimeError(f"queues still busy after {max_rounds} rounds: look for a message that never fails "
                           f"or succeeds (a handler that neither deletes nor fails it)")


@dataclass(frozen=True)
class DeadLetter:
    """A message in a dead-letter queue and the last reason its stage recorded."""

    stage: str
    message_id: str
    body: str
    receive_count: int
    reason: str | None


def dead_letters(sqs: Any, dlq_url: str, *, stage: str, reason_of: Callable[[str, str], str | None]) -> list[DeadLetter]:
    """Read (without deleting) what is in a dead-letter queue, with each message's failure reason.

    Examples:
        >>> dead_letters(sqs, dlq_url, stage="ingest", reason_of=statuses.failure)  # doctest: +SKIP
        [DeadLetter(stage='ingest', message_id='…', body='not json', receive_count=3, reason='poison: …')]
    """
    found: dict[str, DeadLetter] = {}
    for _ in range(100):
        messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                       VisibilityTimeout=0, WaitTimeSeconds=0).get("Messages", [])
        new = [m for m in messages if m["MessageId"] not in found]
        if not new:
            break
        for m in new:
            found[m["MessageId"]] = DeadLetter(stage, m["MessageId"], m["Body"],
                                               int(m["Attributes"].get("ApproximateReceiveCount", "0")),
                                               reason_of(stage, m["MessageId"]))
    return list(found.values())


def redrive(sqs: Any, dlq_url: str, queue_url: str, *, transform: Callable[[str], str | None] = lambda b: b) -> int:
    """Move messages from a dead-letter queue back to its source queue; returns how many moved.

    ``transform`` may repair a body (return the new body) or keep the message in the DLQ for a person
    (return None). Works the same on AWS, where ``StartMessageMoveTask`` is the managed alternative.

    Examples:
        >>> redrive(sqs, dlq_url, queue_url, transform=lambda body: body if body.startswith("{") else None)
        ...     # doctest: +SKIP
        3
    """
    moved = 0
    kept: list[str] = []
    fifo = queue_url.endswith(".fifo")
    while True:
        messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=300, MessageSystemAttributeNames=["All"]
                                       ).get("Messages", [])
        if not messages:
            break
        for m in messages:
            body = transform(m["Body"])
            if body is None:
                kept.append(m["ReceiptHandle"])
                continue
            extra: dict[str, str] = {}
            if fifo:  # same group (order within it kept); a new deduplication id, or SQS would drop the resend
                attributes = m.get("Attributes", {})
                extra = {"MessageGroupId": attributes.get("MessageGroupId", "redrive"),
                         "MessageDeduplicationId": f"redrive-{m['MessageId']}"}
            sqs.send_message(QueueUrl=queue_url, MessageBody=body, **extra)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
            moved += 1
    for handle in kept:  # visible again in the DLQ for whoever reads it next
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return moved


def _receipt_gone(exc: Exception) -> bool:
    """SQS says the receipt handle no longer names a received message (deleted, or received again)."""
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("ReceiptHandleIsInvalid", "AWS.SimpleQueueService.ReceiptHandleIsInvalid", "InvalidParameterValue")
