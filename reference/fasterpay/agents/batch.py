"""Partial batch failures and poison-message isolation for an SQS-triggered Lambda.

With ``ReportBatchItemFailures`` on the event source mapping, a handler returns
``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}, ...]}``: Lambda deletes every other record of the
batch and leaves only the listed ones to come back when their visibility timeout ends. An empty list means
the whole batch succeeded; an exception means the whole batch failed and every record comes back
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html). :func:`process_batch` calls
one function per record and builds that answer.

**Poison messages.** A record that can never succeed (unparseable, a bug) fails on every receive. It is
reported failed, like any other failure, and logged once per receive with its ``ApproximateReceiveCount``;
after ``maxReceiveCount`` receives the queue's redrive policy moves it to the dead-letter queue, while every
good record of the same batches is deleted as it succeeds. Nothing is dropped: a message leaves the queue only
by succeeding or through the redrive policy. Raise :class:`PoisonRecordError` from the record handler (or pass
an ``is_poison`` predicate) to say "this will never work": it is logged as poison, so the dead letter can be
explained and, once the consumer is fixed, redriven (SQS ``StartMessageMoveTask``,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html).

**FIFO queues.** Order holds per message group. AWS says that with a FIFO queue the function "should stop
processing messages after the first failure and return all failed and unprocessed messages in
``batchItemFailures``" (services-sqs-errorhandling, above). A batch may carry several groups in order
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html); order is only promised within a
group, so by default :func:`process_batch` stops *the failed record's group*: every later record of that group
is reported failed without being processed, and other groups go on (Powertools' ``SqsFifoPartialProcessor``
offers the same choice as ``skip_group_on_error``). ``fifo_stop="batch"`` follows AWS's wording literally and
stops the whole batch at the first failure.

The module depends on the standard library only.

Examples:
    >>> event = {"Records": [
    ...     {"messageId": "m1", "body": "ok", "attributes": {"ApproximateReceiveCount": "1"}},
    ...     {"messageId": "m2", "body": "bad", "attributes": {"ApproximateReceiveCount": "1"}}]}
    >>> def handle(record):
    ...     if record["body"] == "bad":
    ...         raise PoisonRecordError("not a payment")
    >>> process_batch(event, handle)
    {'batchItemFailures': [{'itemIdentifier': 'm2'}]}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["BatchOutcome", "MalformedEventError", "PoisonRecordError", "process_batch", "process_batch_outcome"]

LOGGER = logging.getLogger(__name__)

Record = Mapping[str, Any]


class PoisonRecordError(Exception):
    """Raised by a record handler for a record that can never succeed; it goes to the DLQ after
    ``maxReceiveCount`` receives. Fix the consumer (or the data), then redrive the dead-letter queue."""


class MalformedEventError(ValueError):
    """The event is not an SQS batch (no ``Records`` list, a record without a ``messageId``, a FIFO record
    without a ``MessageGroupId``). Raised, not reported per record, so the whole batch comes back: check the
    event source mapping and the test event."""


@dataclass
class BatchOutcome:
    """What one batch did: the ids that succeeded, failed, were poison, or were skipped behind a FIFO failure."""

    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    poison: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # in batch order: failed, poison and skipped

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda answer: ``{"batchItemFailures": [{"itemIdentifier": id}, ...]}``."""
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failures]}


def _records(event: Any) -> list[Record]:
    if not isinstance(event, Mapping):
        raise MalformedEventError(f"an SQS event is a mapping with 'Records', got {type(event).__name__}")
    records = event.get("Records")
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
        raise MalformedEventError("the event has no 'Records' list: is this an SQS event?")
    seen: set[str] = set()
    for n, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise MalformedEventError(f"record {n} is not a mapping")
        message_id = record.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            raise MalformedEventError(f"record {n} has no messageId")
        if message_id in seen:
            raise MalformedEventError(f"messageId {message_id!r} appears twice in one batch")
        seen.add(message_id)
        source = record.get("eventSource")
        if source is not None and source != "aws:sqs":
            raise MalformedEventError(f"record {n} comes from {source!r}, not aws:sqs")
    return list(records)


def _receive_count(record: Record) -> int:
    try:
        return int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    except (TypeError, ValueError):
        return 1


def _group(record: Record, n: int) -> str:
    group = record.get("attributes", {}).get("MessageGroupId")
    if not isinstance(group, str) or not group:
        raise MalformedEventError(f"record {n} ({record['messageId']}) of a FIFO batch has no MessageGroupId")
    return group


def process_batch_outcome(event: Any, handle: Callable[[Record], Any], *, fifo: bool | None = None,
                          fifo_stop: Literal["group", "batch"] = "group",
                          is_poison: Callable[[Record], bool] | None = None,
                          max_receive_count: int | None = None,
                          logger: logging.Logger | None = None) -> BatchOutcome:
    """Like :func:`process_batch`, returning the per-record outcome (for tests, metrics and drills).

    Examples:
        >>> outcome = process_batch_outcome({"Records": [{"messageId": "a"}]}, lambda record: None)
        >>> outcome.succeeded, outcome.response()
        (['a'], {'batchItemFailures': []})
    """
    if fifo_stop not in ("group", "batch"):
        raise ValueError(f"fifo_stop must be 'group' or 'batch', got {fifo_stop!r}")
    log = logger or LOGGER
    records = _records(event)
    if fifo is None:  # a FIFO queue's ARN (and name) ends in .fifo
        fifo = any(str(r.get("eventSourceARN", "")).endswith(".fifo") for r in records)
    groups = [_group(r, n) for n, r in enumerate(records)] if fifo else [""] * len(records)
    outcome = BatchOutcome()
    stopped: set[str] = set()
    batch_stopped = False
    for record, group in zip(records, groups):
        message_id = record["messageId"]
        if fifo and (batch_stopped or group in stopped):
            outcome.skipped.append(message_id)
            outcome.failures.append(message_id)
            continue
        count = _receive_count(record)
        try:
            if is_poison is not None and is_poison(record):
                raise PoisonRecordError("the is_poison predicate refused it")
            handle(record)
        except PoisonRecordError as exc:
            outcome.poison.append(message_id)
            last = max_receive_count is not None and count >= max_receive_count
            log.error("poison record %s (receive %d%s): %s", message_id, count,
                      ", last before the dead-letter queue" if last else "", exc,
                      extra={"message_id": message_id, "receive_count": count, "poison": True})
        except Exception as exc:  # noqa: BLE001 - any other failure: reported, retried by SQS
            outcome.failed.append(message_id)
            log.warning("record %s failed (receive %d): %s: %s", message_id, count, type(exc).__name__, exc,
                        extra={"message_id": message_id, "receive_count": count, "poison": False})
        else:
            outcome.succeeded.append(message_id)
            continue
        outcome.failures.append(message_id)
        if fifo:
            stopped.add(group)
            batch_stopped = fifo_stop == "batch"
    return outcome


def process_batch(event: Any, handle: Callable[[Record], Any], *, fifo: bool | None = None,
                  fifo_stop: Literal["group", "batch"] = "group", is_poison: Callable[[Record], bool] | None = None,
                  max_receive_count: int | None = None, logger: logging.Logger | None = None) -> dict[str, Any]:
    """Run ``handle(record)`` for each record of an SQS event; return the partial batch response.

    Args:
        event: the SQS event Lambda delivers (``{"Records": [...]}``).
        handle: processes one record; returns normally on success, raises on failure
            (:class:`PoisonRecordError` for a record that will never succeed).
        fifo: the queue is FIFO; None (default) decides from the records' ``eventSourceARN`` (``.fifo``).
        fifo_stop: on a FIFO queue, after a failure stop that record's message ``"group"`` (default) or the
            whole ``"batch"``; the records not processed are reported failed, so they come back in order.
        is_poison: optional predicate; a record it accepts is treated as :class:`PoisonRecordError`
            without calling ``handle``.
        max_receive_count: the queue's ``maxReceiveCount``, only to say in the log that this was the last try.
        logger: where failures are logged (default: this module's logger).

    Returns:
        ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}`` in batch order; empty when all succeeded.

    Raises:
        MalformedEventError: not an SQS event; the whole batch is retried.

    Examples:
        >>> fifo_event = {"Records": [
        ...     {"messageId": f"m{n}", "body": body, "eventSourceARN": "arn:aws:sqs:eu-west-2:1:q.fifo",
        ...      "attributes": {"MessageGroupId": group}}
        ...     for n, (group, body) in enumerate([("a", "bad"), ("b", "ok"), ("a", "ok")])]}
        >>> def handle(record):
        ...     if record["body"] == "bad":
        ...         raise RuntimeError("ledger unavailable")
        >>> process_batch(fifo_event, handle)  # m2 is behind m0 in group a: not processed, reported failed
        {'batchItemFailures': [{'itemIdentifier': 'm0'}, {'itemIdentifier': 'm2'}]}
    """
    return process_batch_outcome(event, handle, fifo=fifo, fifo_stop=fifo_stop, is_poison=is_poison,
                                 max_receive_count=max_receive_count, logger=logger).response()
