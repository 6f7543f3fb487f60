"""Payment status events on Kinesis Data Streams, consumed with KCL-style leases and applied exactly once.

A payment's status changes (ISO 20022 ``TxSts``: ACTC, ACCP, ACSP, ACSC, RJCT) are published as
:class:`StatusEvent` records to a Kinesis data stream by :class:`StatusEventPublisher`, and read by
:class:`StreamConsumer` workers that share the shards through a lease table in DynamoDB, as the
Kinesis Client Library (KCL) does. Each event's downstream effect is committed together with a
*processed* marker in one ``TransactWriteItems``, so a record read twice (after a crash, a lease
takeover or a replay) changes nothing the second time.

**Ordering.** The partition key is the debtor account's vault token, so one account's events land on
one shard, in the order they were written. ``PutRecords`` can fail *some* records of a call and write
the records that follow them, so the publisher never puts two records of one account in one call
(see :class:`StatusEventPublisher`). The consumer reads each shard in sequence-number order.

**Resharding.** A shard owns a range of the 128-bit hash-key space (MD5 of the partition key).
``SplitShard`` closes the parent and creates two children, each owning part of the parent's range;
``MergeShards`` closes two adjacent parents and creates one child. New records go to the children;
the records already in the parent *stay there* (resharding moves nothing) until retention ends. An
account's older events are therefore in the parent and its newer ones in a child, so a consumer must
read the parent to its end (``SHARD_END``) before it starts the children: :class:`StreamConsumer`
takes a child's lease only once every parent's checkpoint is ``SHARD_END``. That is the KCL's rule, and
it keeps per-account order across a split. More shards allow more workers in parallel (one lease,
hence one worker, per shard at a time), at a cost per shard-hour.

**Mapping to the KCL.** The lease table has one item per shard, keyed by ``leaseKey`` (the shard id),
with ``leaseOwner``, ``leaseCounter``, ``checkpoint`` (a sequence number, ``TRIM_HORIZON`` or
``SHARD_END``), ``checkpointSubSequenceNumber``, ``ownerSwitchesSinceCheckpoint`` and
``parentShardIds``, as the KCL's. An owner renews its leases by incrementing ``leaseCounter``;
another worker that sees a counter unchanged for ``failover_time`` (KCL default 10 s) may take the lease.
Taking, renewing and checkpointing are conditional writes on ``leaseOwner`` and ``leaseCounter``, so a
worker whose lease was taken cannot checkpoint (:class:`LeaseLostError`): it stops, and the new owner
resumes from the last checkpoint. What happened between that checkpoint and the crash is read again;
the processed markers absorb it. Unlike the KCL, a poll takes every lease it may (no load balancing
between live workers beyond "one owner per shard").

**Malformed records** (not JSON, or failing :class:`StatusEvent`'s checks) are *poison*: the consumer
records them (a ``POISON#<shard>#<sequence>`` item in the processed table and the poll report's
``poison`` list) and moves on, so one bad record never blocks its shard. An operator inspects them.

**What moto (5.2.5) does and does not do** (each point is checked by ``tests/test_agents_stream.py``):

* ``GetRecords`` returns ``MillisBehindLatest``, computed from the arrival times of the last record
  returned and the shard's newest record (0 when nothing is returned). In-process runs write records
  within milliseconds, so it is near 0; :func:`records_behind` counts records instead.
* ``AT_SEQUENCE_NUMBER``, ``AFTER_SEQUENCE_NUMBER``, ``TRIM_HORIZON`` and ``AT_TIMESTAMP`` iterators work.
  Sequence numbers are small integers per shard (AWS's are large, increasing per shard, not dense).
* ``ListShards`` reports ``ParentShardId`` (and ``AdjacentParentShardId`` after a merge) and, for a
  closed shard, ``EndingSequenceNumber``.
* ``SplitShard`` differs from AWS: moto closes the parent but keeps routing new records *to the parent*
  (its key lookup does not skip closed shards), so the children stay empty; and it rewrites the parent's
  records, resetting their arrival times (``AT_TIMESTAMP`` after a split is wrong). A consumer that
  treats the closed parent as finished then misses records. ``simulations.stream_bench.aws_like_resharding``
  patches moto to AWS's behaviour for the drill and the tests.
* ``GetRecords`` never omits ``NextShardIterator``, even at the end of a closed shard (AWS omits it at
  ``SHARD_END``). The consumer also treats "closed shard, nothing returned, checkpoint at or past its
  ``EndingSequenceNumber``" as the end.
* ``PutRecords`` never fails part of a call (no throttling); tests inject partial failures with a
  wrapper client.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

__all__ = [
    "CRASH_POINTS",
    "MAX_PUT_RECORDS",
    "MAX_PUT_RECORDS_BYTES",
    "SHARD_END",
    "STATUS_CODES",
    "TRIM_HORIZON",
    "InvalidStatusEventError",
    "Lease",
    "LeaseLostError",
    "LeaseTable",
    "PollReport",
    "PoisonRecord",
    "PublishFailedError",
    "PublishReport",
    "StatusEvent",
    "StatusEventPublisher",
    "StreamConsumer",
    "StreamError",
    "create_lease_table",
    "create_processed_table",
    "list_shards",
    "records_behind",
]

STATUS_CODES = ("ACTC", "ACCP", "ACSP", "ACSC", "RJCT")
"""ISO 20022 ``TxSts`` codes a status event may carry."""
TRIM_HORIZON = "TRIM_HORIZON"
SHARD_END = "SHARD_END"
MAX_PUT_RECORDS = 500
MAX_PUT_RECORDS_BYTES = 5 * 1024 * 1024
CRASH_POINTS = ("after-effect", "before-checkpoint", "after-checkpoint")
"""Where :class:`StreamConsumer` calls its ``crash`` hook: after a record's effect committed; before a
checkpoint write; after it."""

_UETR_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_E2E_RE = re.compile(r"[A-Za-z0-9./:+-]{1,35}")
_TOKEN_RE = re.compile(r"(?:tok|dtk)_[a-z]+(?:_[a-z]+)*_[a-z2-7]{16,64}")
_REASON_RE = re.compile(r"[A-Z0-9]{4}")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_FIELDS = ("event_id", "uetr", "end_to_end_id", "status", "reason", "account", "amount_minor", "currency", "at")

Crash = Callable[[str], None]
Apply = Callable[["StatusEvent"], list[dict[str, Any]]]


class StreamError(Exception):
    """Base class of this module's errors."""


class InvalidStatusEventError(StreamError, ValueError):
    """A status event (or a record's body) is malformed; fix the producer, nothing was published."""


class PublishFailedError(StreamError):
    """Records still failed after the retries: ``unsent`` were not written, in order; publish them again later.

    ``sent`` counts the records written. Records of an account after its failed one are in ``unsent`` too
    (never written ahead of it).
    """

    def __init__(self, message: str, *, sent: int, unsent: Sequence[StatusEvent]) -> None:
        super().__init__(message)
        self.sent = sent
        self.unsent = tuple(unsent)


class LeaseLostError(StreamError):
    """Another worker took this shard's lease: stop processing it; the new owner resumes from the checkpoint."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidStatusEventError(message)


@dataclass(frozen=True)
class StatusEvent:
    """One payment status change (pacs.002 ``TxSts``), keyed for the stream by the debtor account's token.

    ``account`` is a vault token (``dtk_iban_…``), never an account number or IBAN; ``amount_minor`` is an
    integer in minor units of ``currency``; ``at`` is epoch milliseconds.

    Examples:
        >>> event = StatusEvent("6f1c3e1a-0d2b-4c3e-9a4b-1f2e3d4c5b6a", "E2E-1", "ACSC",
        ...     "dtk_iban_" + "a" * 32, 1250, "GBP", 1767225600000)
        >>> event.event_id
        '6f1c3e1a-0d2b-4c3e-9a4b-1f2e3d4c5b6a:ACSC'
        >>> StatusEvent.from_json(event.to_json()) == event
        True
        >>> StatusEvent("6f1c3e1a-0d2b-4c3e-9a4b-1f2e3d4c5b6a", "E2E-1", "ACSC", "GB82WEST12345698765432",
        ...     1250, "GBP", 0)
        Traceback (most recent call last):
        ...
        fasterpay.agents.stream.InvalidStatusEventError: account must be a vault token (tok_/dtk_...), not a raw value
    """

    uetr: str
    end_to_end_id: str
    status: str
    account: str
    amount_minor: int
    currency: str
    at: int
    reason: str | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.uetr, str) and bool(_UETR_RE.fullmatch(self.uetr)),
               "uetr must be a lowercase UUIDv4 (ISO 20022 UETR)")
        _check(isinstance(self.end_to_end_id, str) and bool(_E2E_RE.fullmatch(self.end_to_end_id)),
               "end_to_end_id must be 1-35 characters from [A-Za-z0-9./:+-]")
        _check(self.status in STATUS_CODES, f"status must be one of {', '.join(STATUS_CODES)}")
        _check(isinstance(self.account, str) and bool(_TOKEN_RE.fullmatch(self.account)),
               "account must be a vault token (tok_/dtk_...), not a raw value")
        _check(type(self.amount_minor) is int and self.amount_minor >= 0,
               "amount_minor must be a non-negative int (minor units), never a float")
        _check(isinstance(self.currency, str) and bool(_CURRENCY_RE.fullmatch(self.currency)),
               "currency must be an ISO 4217 code such as 'GBP'")
        _check(type(self.at) is int and self.at >= 0, "at must be epoch milliseconds (int)")
        _check(self.reason is None or (isinstance(self.reason, str) and bool(_REASON_RE.fullmatch(self.reason))),
               "reason must be a 4-character ISO 20022 reason code such as 'AC04', or None")

    @property
    def event_id(self) -> str:
        """Deterministic: one event per payment and status, so a re-sent event has the same id."""
        return f"{self.uetr}:{self.status}"

    def to_json(self) -> str:
        """The record body: compact JSON with sorted keys."""
        return json.dumps({"event_id": self.event_id, **asdict(self)}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str | bytes) -> StatusEvent:
        """Parse a record body; :class:`InvalidStatusEventError` if it is not a valid event."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidStatusEventError(f"record body is not JSON: {exc}") from None
        _check(isinstance(data, dict), "record body must be a JSON object")
        _check(set(data) == set(_FIELDS), f"record body must have exactly the fields {', '.join(_FIELDS)}")
        event = cls(**{name: data[name] for name in _FIELDS if name != "event_id"})
        _check(data["event_id"] == event.event_id, "event_id does not match uetr and status")
        return event


# Publishing.
@dataclass(frozen=True)
class PublishReport:
    """What :meth:`StatusEventPublisher.publish` did: records written, calls, records retried."""

    published: int = 0
    calls: int = 0
    retried_records: int = 0
    shards: Mapping[str, int] = field(default_factory=dict)


class StatusEventPublisher:
    """Writes status events with ``PutRecords``, partition key = account token, keeping each account's order.

    ``PutRecords`` is not atomic: a call can fail some records (``ErrorCode``
    ``ProvisionedThroughputExceededException`` or ``InternalFailure``) and still write the records after them.
    If a call held two records of account A and the first failed, the second would be written ahead of it,
    and retrying "only the failed record" would put A's events out of order. So each call carries *at most
    one record per account*: the head of each account's queue. A failed head stays at the head and is
    retried (after a back-off) before anything later for that account is sent; records of other accounts
    keep flowing. This is "retry the failed record and everything after it for that partition key", with
    nothing after it ever in flight. (The KPL's record aggregation is the other way: one Kinesis record per
    batch of an account's events, written or failed as a whole.)

    A call also stays within 500 records and 5 MiB (data plus partition keys). A record that fails
    ``max_attempts`` times stops its account (:class:`PublishFailedError` lists what was not written,
    in order); other accounts are still drained first.

    Examples:
        >>> publisher = StatusEventPublisher(kinesis, "fasterpay-status")  # doctest: +SKIP
        >>> publisher.publish(events).published  # doctest: +SKIP
        300
    """

    def __init__(self, kinesis: Any, stream_name: str, *, max_attempts: int = 8, base_delay: float = 0.05,
                 max_delay: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._kinesis = kinesis
        self.stream_name = stream_name
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep

    def publish(self, events: Iterable[StatusEvent]) -> PublishReport:
        """Write ``events``; each account's events in the order given."""
        queues: dict[str, deque[tuple[StatusEvent, bytes]]] = {}
        for event in events:
            queues.setdefault(event.account, deque()).append((event, event.to_json().encode()))
        failures: dict[str, int] = {}
        stopped: dict[str, deque[tuple[StatusEvent, bytes]]] = {}
        published = calls = retried = round_ = 0
        shards: dict[str, int] = {}
        while queues:
            batch = self._batch(queues)
            calls += 1
            response = self._kinesis.put_records(StreamName=self.stream_name, Records=[
                {"Data": data, "PartitionKey": account} for account, data in batch])
            failed_any = False
            for (account, _), result in zip(batch, response["Records"], strict=True):
                if "ErrorCode" in result:
                    retried += 1
                    failures[account] = failures.get(account, 0) + 1
                    if failures[account] >= self.max_attempts:
                        stopped[account] = queues.pop(account)
                    else:
                        failed_any = True  # a retry is due: back off first
                    continue
                failures.pop(account, None)
                queues[account].popleft()
                if not queues[account]:
                    del queues[account]
                published += 1
                shards[result["ShardId"]] = shards.get(result["ShardId"], 0) + 1
            if failed_any:
                round_ += 1
                self.sleep(min(self.max_delay, self.base_delay * 2 ** min(round_ - 1, 16)))
            else:
                round_ = 0
        if stopped:
            unsent = [event for queue in stopped.values() for event, _ in queue]
            raise PublishFailedError(
                f"{len(stopped)} account(s) still failing after {self.max_attempts} attempts; "
                f"{len(unsent)} event(s) not written (their order kept): retry later",
                sent=published, unsent=unsent)
        return PublishReport(published, calls, retried, shards)

    @staticmethod
    def _batch(queues: Mapping[str, deque[tuple[StatusEvent, bytes]]]) -> list[tuple[str, bytes]]:
        """The head record of each account, up to the PutRecords limits."""
        batch: list[tuple[str, bytes]] = []
        size = 0
        for account, queue in queues.items():
            data = queue[0][1]
            record_size = len(data) + len(account.encode())
            if len(batch) == MAX_PUT_RECORDS or (batch and size + record_size > MAX_PUT_RECORDS_BYTES):
                break
            batch.append((account, data))
            size += record_size
        return batch


# Leases.
@dataclass(frozen=True)
class Lease:
    """One shard's lease, as stored (the KCL's attribute names in the table)."""

    shard_id: str
    owner: str | None
    counter: int
    checkpoint: str
    parent_shard_ids: tuple[str, ...] = ()
    owner_switches_since_checkpoint: int = 0

    @property
    def finished(self) -> bool:
        return self.checkpoint == SHARD_END


def create_lease_table(dynamodb: Any, name: str) -> str:
    """Create a KCL-style lease table (on-demand, hash key ``leaseKey``); returns its name.

    Examples:
        >>> create_lease_table(dynamodb, "fasterpay-status-leases")  # doctest: +SKIP
        'fasterpay-status-leases'
    """
    dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}])
    return name


def create_processed_table(dynamodb: Any, name: str) -> str:
    """Create the table of processed markers and poison records (on-demand, hash key ``pk``), with TTL on
    ``expires_at`` so markers expire once no replay can reach their events (see ``marker_retention_s``)."""
    dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    dynamodb.update_time_to_live(TableName=name,
                                 TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    return name


def _lease(item: Mapping[str, Any]) -> Lease:
    parents = item.get("parentShardIds", {}).get("SS", [])
    return Lease(
        shard_id=item["leaseKey"]["S"],
        owner=item["leaseOwner"]["S"] if "leaseOwner" in item else None,
        counter=int(item["leaseCounter"]["N"]),
        checkpoint=item["checkpoint"]["S"],
        parent_shard_ids=tuple(sorted(parents)),
        owner_switches_since_checkpoint=int(item.get("ownerSwitchesSinceCheckpoint", {"N": "0"})["N"]),
    )


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class LeaseTable:
    """The lease table: one item per shard; every change to a held lease is conditional on owner and counter.

    Examples:
        >>> leases = LeaseTable(dynamodb, "fasterpay-status-leases")  # doctest: +SKIP
        >>> lease = leases.take(leases.ensure("shardId-000000000000"), "worker-a")  # doctest: +SKIP
        >>> leases.checkpoint(lease, "49590338271490256608559692538361571095921575989136588898")  # doctest: +SKIP
    """

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = dynamodb
        self.table_name = table_name

    def ensure(self, shard_id: str, parent_shard_ids: Sequence[str] = ()) -> Lease:
        """Create the shard's lease (checkpoint ``TRIM_HORIZON``, no owner) unless it exists; return it."""
        item: dict[str, Any] = {"leaseKey": {"S": shard_id}, "leaseCounter": {"N": "0"},
                                "checkpoint": {"S": TRIM_HORIZON}, "checkpointSubSequenceNumber": {"N": "0"},
                                "ownerSwitchesSinceCheckpoint": {"N": "0"}}
        if parent_shard_ids:
            item["parentShardIds"] = {"SS": sorted(parent_shard_ids)}
        try:
            self._ddb.put_item(TableName=self.table_name, Item=item,
                               ConditionExpression="attribute_not_exists(leaseKey)")
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            found = self.get(shard_id)
            assert found is not None
            return found
        return _lease(item)

    def get(self, shard_id: str) -> Lease | None:
        item = self._ddb.get_item(TableName=self.table_name, Key={"leaseKey": {"S": shard_id}},
                                  ConsistentRead=True).get("Item")
        return _lease(item) if item else None

    def list(self) -> list[Lease]:
        """Every lease, sorted by shard id (a consistent scan, paginated)."""
        leases: list[Lease] = []
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            page = self._ddb.scan(**kwargs)
            leases += [_lease(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return sorted(leases, key=lambda lease: lease.shard_id)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _update(self, lease: Lease, *, owner: str | None, set_: str, values: Mapping[str, Any],
                condition_owner: str | None) -> Lease:
        """Conditional update: owner is ``condition_owner`` (None: no owner) and the counter unchanged."""
        names = {"#owner": "leaseOwner", "#counter": "leaseCounter"}
        expected: dict[str, Any] = {":expected": {"N": str(lease.counter)}, ":one": {"N": "1"}, **values}
        if condition_owner is None:
            condition = "attribute_not_exists(#owner) AND #counter = :expected"
        else:
            condition = "#owner = :old AND #counter = :expected"
            expected[":old"] = {"S": condition_owner}
        update = f"SET #counter = #counter + :one{', ' + set_ if set_ else ''}"
        if owner is None:
            update += " REMOVE #owner"
        else:
            update += ", #owner = :new"
            expected[":new"] = {"S": owner}
        try:
            item = self._ddb.update_item(
                TableName=self.table_name, Key={"leaseKey": {"S": lease.shard_id}}, UpdateExpression=update,
                ConditionExpression=condition, ExpressionAttributeNames=names,
                ExpressionAttributeValues=expected, ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as exc:
            if _conditional_failed(exc):
                raise LeaseLostError(
                    f"lease {lease.shard_id} changed (expected owner {condition_owner!r}, counter "
                    f"{lease.counter}): another worker holds it; stop processing this shard") from None
            raise
        return _lease(item)

    def take(self, lease: Lease, worker_id: str) -> Lease:
        """Become the owner (the caller decided the lease is free or expired); :class:`LeaseLostError` if it moved."""
        values: dict[str, Any] = {}
        set_ = ""
        if lease.owner != worker_id:
            set_ = "ownerSwitchesSinceCheckpoint = ownerSwitchesSinceCheckpoint + :one"
        return self._update(lease, owner=worker_id, set_=set_, values=values, condition_owner=lease.owner)

    def renew(self, lease: Lease) -> Lease:
        """Increment the counter (a heartbeat others watch); :class:`LeaseLostError` if the lease was taken."""
        return self._update(lease, owner=lease.owner, set_="", values={}, condition_owner=lease.owner)

    def checkpoint(self, lease: Lease, checkpoint: str) -> Lease:
        """Record progress; only the current owner with the current counter can (:class:`LeaseLostError`)."""
        if lease.owner is None:
            raise LeaseLostError(f"lease {lease.shard_id} has no owner: take it before checkpointing")
        return self._update(lease, owner=lease.owner, values={":checkpoint": {"S": checkpoint}, ":zero": {"N": "0"}},
                            set_="checkpoint = :checkpoint, ownerSwitchesSinceCheckpoint = :zero",
                            condition_owner=lease.owner)

    def release(self, lease: Lease) -> Lease:
        """Give the lease up (clean shutdown), so another worker can take it at once."""
        return self._update(lease, owner=None, set_="", values={}, condition_owner=lease.owner)


# Consuming.
@dataclass(frozen=True)
class PoisonRecord:
    """A record the consumer could not parse: skipped (never blocks its shard) and kept for an operator."""

    shard_id: str
    sequence_number: str
    error: str


@dataclass
class PollReport:
    """What one poll (or a replay) did.

    ``millis_behind_latest`` is the largest ``MillisBehindLatest`` GetRecords returned (None if absent);
    ``duplicates`` are records whose marker already existed (redelivered or replayed).
    """

    read: int = 0
    applied: int = 0
    duplicates: int = 0
    checkpoints: int = 0
    takeovers: int = 0
    finished_shards: list[str] = field(default_factory=list)
    poison: list[PoisonRecord] = field(default_factory=list)
    millis_behind_latest: int | None = None
    lost_leases: list[str] = field(default_factory=list)

    def add(self, other: PollReport) -> None:
        self.read += other.read
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.checkpoints += other.checkpoints
        self.takeovers += other.takeovers
        self.finished_shards += other.finished_shards
        self.poison += other.poison
        self.lost_leases += other.lost_leases
        if other.millis_behind_latest is not None:
            self.millis_behind_latest = max(self.millis_behind_latest or 0, other.millis_behind_latest)


def _no_crash(point: str) -> None:
    """The default crash hook: does nothing."""


def list_shards(kinesis: Any, stream_name: str) -> list[dict[str, Any]]:
    """Every shard of the stream, open and closed (``ListShards``, paginated)."""
    shards: list[dict[str, Any]] = []
    response = kinesis.list_shards(StreamName=stream_name)
    shards += response["Shards"]
    while response.get("NextToken"):
        response = kinesis.list_shards(NextToken=response["NextToken"])
        shards += response["Shards"]
    return shards


def _at_or_past(checkpoint: str, ending: str) -> bool:
    if checkpoint == SHARD_END:
        return True
    if checkpoint == TRIM_HORIZON:
        return False
    return int(checkpoint) >= int(ending)


class StreamConsumer:
    """A worker: takes free or expired leases, reads its shards, applies each event once, checkpoints.

    ``apply(event)`` returns the ``TransactWriteItems`` entries of the event's effect (at most 99); they
    commit with the processed marker ``EVENT#<event_id>`` in ``processed_table``, on condition that the
    marker is new. A duplicate is skipped and counted. The worker checkpoints every ``checkpoint_every``
    records and at the end of each shard's read in a poll; ``crash(point)`` is called at
    :data:`CRASH_POINTS` so a test can stop the worker there.

    ``clock`` returns epoch milliseconds; a lease owned by another worker whose ``leaseCounter`` this worker
    has seen unchanged for ``failover_ms`` is expired and may be taken (KCL's ``failoverTimeMillis``).

    Examples:
        >>> worker = StreamConsumer(kinesis, dynamodb, stream_name="fasterpay-status",  # doctest: +SKIP
        ...     lease_table=LeaseTable(dynamodb, "leases"), worker_id="worker-a", apply=effect,
        ...     processed_table="processed")
        >>> worker.poll_once().applied  # doctest: +SKIP
        120
    """

    def __init__(self, kinesis: Any, dynamodb: Any, *, stream_name: str, lease_table: LeaseTable, worker_id: str,
                 apply: Apply, processed_table: str, checkpoint_every: int = 25, failover_ms: int = 10_000,
                 max_records: int = 500, clock: Callable[[], int] = lambda: int(time.time() * 1000),
                 crash: Crash = _no_crash, marker_retention_s: int = 8 * 86_400) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        if marker_retention_s < 86_400:
            raise ValueError("marker_retention_s must exceed the stream's retention period (at least 24 hours, "
                             "the Kinesis minimum) and any replay window")
        self._kinesis = kinesis
        self._ddb = dynamodb
        self.stream_name = stream_name
        self.leases = lease_table
        self.worker_id = worker_id
        self.apply = apply
        self.processed_table = processed_table
        self.checkpoint_every = checkpoint_every
        self.failover_ms = failover_ms
        self.max_records = max_records
        self.clock = clock
        self.crash = crash
        self.marker_retention_s = marker_retention_s
        self._seen: dict[str, tuple[str | None, int, int]] = {}  # shard -> (owner, counter, first seen ms)

    # Leases.
    def sync_shards(self) -> dict[str, dict[str, Any]]:
        """Create a lease for every shard (``ListShards``) with its parents; returns the shards by id."""
        shards = {shard["ShardId"]: shard for shard in list_shards(self._kinesis, self.stream_name)}
        known = {lease.shard_id for lease in self.leases.list()}
        for shard_id, shard in shards.items():
            if shard_id not in known:
                parents = [p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p]
                self.leases.ensure(shard_id, parents)
        return shards

    def _expired(self, lease: Lease) -> bool:
        """True if nobody owns ``lease`` or its counter has not moved for ``failover_ms`` (as this worker saw it)."""
        if lease.owner is None:
            return True
        now = self.clock()
        seen = self._seen.get(lease.shard_id)
        if seen is None or seen[:2] != (lease.owner, lease.counter):
            self._seen[lease.shard_id] = (lease.owner, lease.counter, now)
            return False
        return now - seen[2] >= self.failover_ms

    def _acquire(self, lease: Lease, report: PollReport) -> Lease | None:
        """This worker's hold on ``lease`` (renewed or taken), or None if someone else holds it."""
        try:
            if lease.owner == self.worker_id:
                return self.leases.renew(lease)
            if not self._expired(lease):
                return None
            taken = self.leases.take(lease, self.worker_id)
        except LeaseLostError:
            report.lost_leases.append(lease.shard_id)
            return None
        if lease.owner is not None:
            report.takeovers += 1
        return taken

    @staticmethod
    def ready(lease: Lease, leases: Mapping[str, Lease]) -> bool:
        """A shard may be read once every parent still in the table is at ``SHARD_END`` (KCL's rule)."""
        return all(leases[parent].finished for parent in lease.parent_shard_ids if parent in leases)

    # Polling.
    def poll_once(self) -> PollReport:
        """One round: sync shards, then for each unfinished shard whose parents are done, read and apply."""
        report = PollReport()
        shards = self.sync_shards()
        leases = {lease.shard_id: lease for lease in self.leases.list()}
        for shard_id in _parents_first(list(leases), leases):
            lease = leases[shard_id]
            if lease.finished or not self.ready(lease, leases):
                continue
            held = self._acquire(lease, report)
            if held is None:
                continue
            try:
                leases[shard_id] = self._read_shard(held, shards.get(shard_id), report)
            except LeaseLostError:
                report.lost_leases.append(shard_id)
        return report

    def drain(self, *, max_polls: int = 10_000) -> PollReport:
        """Poll until a poll reads nothing and finishes no shard."""
        total = PollReport()
        for _ in range(max_polls):
            report = self.poll_once()
            total.add(report)
            if report.read == 0 and not report.finished_shards:
                break
        return total

    def _iterator(self, shard_id: str, checkpoint: str) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard_id}
        if checkpoint == TRIM_HORIZON:
            kwargs["ShardIteratorType"] = TRIM_HORIZON
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=checkpoint)
        return str(self._kinesis.get_shard_iterator(**kwargs)["ShardIterator"])

    def _checkpoint(self, lease: Lease, checkpoint: str, report: PollReport) -> Lease:
        self.crash("before-checkpoint")
        lease = self.leases.checkpoint(lease, checkpoint)
        report.checkpoints += 1
        self.crash("after-checkpoint")
        return lease

    def _read_shard(self, lease: Lease, shard: Mapping[str, Any] | None, report: PollReport) -> Lease:
        response = self._kinesis.get_records(ShardIterator=self._iterator(lease.shard_id, lease.checkpoint),
                                             Limit=self.max_records)
        if "MillisBehindLatest" in response:
            report.millis_behind_latest = max(report.millis_behind_latest or 0, int(response["MillisBehindLatest"]))
        records = response.get("Records", [])
        since_checkpoint = 0
        last: str | None = None
        for record in records:
            self._handle(lease.shard_id, record, report)
            last = record["SequenceNumber"]
            since_checkpoint += 1
            if since_checkpoint >= self.checkpoint_every:
                lease = self._checkpoint(lease, last, report)
                since_checkpoint = 0
        if since_checkpoint:
            assert last is not None
            lease = self._checkpoint(lease, last, report)
        ending = ((shard or {}).get("SequenceNumberRange") or {}).get("EndingSequenceNumber")
        at_end = response.get("NextShardIterator") is None or (
            ending is not None and not records and _at_or_past(lease.checkpoint, ending))
        if at_end:
            lease = self._checkpoint(lease, SHARD_END, report)
            report.finished_shards.append(lease.shard_id)
        return lease

    def _handle(self, shard_id: str, record: Mapping[str, Any], report: PollReport) -> None:
        report.read += 1
        try:
            event = StatusEvent.from_json(record["Data"])
        except InvalidStatusEventError as exc:
            self._poison(shard_id, record, str(exc), report)
            return
        if self.handle(event, shard_id=shard_id, sequence_number=record["SequenceNumber"]):
            report.applied += 1
        else:
            report.duplicates += 1
        self.crash("after-effect")

    def handle(self, event: StatusEvent, *, shard_id: str = "", sequence_number: str = "") -> bool:
        """Apply ``event`` with its marker in one transaction; False if the marker existed (a duplicate)."""
        marker = {"Put": {
            "TableName": self.processed_table,
            "Item": {"pk": {"S": f"EVENT#{event.event_id}"}, "shard_id": {"S": shard_id},
                     "sequence_number": {"S": sequence_number}, "worker_id": {"S": self.worker_id},
                     "processed_at": {"N": str(self.clock())},
                     "expires_at": {"N": str(self.clock() // 1000 + self.marker_retention_s)}},  # TTL, epoch s
            "ConditionExpression": "attribute_not_exists(pk)",
        }}
        try:
            self._ddb.transact_write_items(TransactItems=[marker, *self.apply(event)])
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or [{}]
            if str(reasons[0].get("Code")) == "ConditionalCheckFailed":
                return False
            raise
        return True

    def _poison(self, shard_id: str, record: Mapping[str, Any], error: str, report: PollReport) -> None:
        poison = PoisonRecord(shard_id, record["SequenceNumber"], error)
        self._ddb.put_item(TableName=self.processed_table, Item={
            "pk": {"S": f"POISON#{shard_id}#{poison.sequence_number}"}, "error": {"S": error[:1000]},
            "data_b64": {"S": base64.b64encode(bytes(record["Data"])[:4096]).decode()}})
        report.poison.append(poison)

    # Replay.
    def replay(self, *, from_sequence: Mapping[str, str] | None = None, from_timestamp: datetime | None = None,
               shard_ids: Sequence[str] | None = None) -> PollReport:
        """Read shards again from ``from_sequence`` (shard id -> sequence number, ``AT_SEQUENCE_NUMBER``) or
        ``from_timestamp`` (``AT_TIMESTAMP``) to their tip and apply each record; duplicates are skipped.

        Lease checkpoints are not touched (replay reads on its own iterators, parents before children); to make
        the worker group itself re-read from an earlier point, move a checkpoint back with
        :meth:`rewind_checkpoint`.
        """
        if (from_sequence is None) == (from_timestamp is None):
            raise ValueError("give exactly one of from_sequence or from_timestamp")
        report = PollReport()
        self.sync_shards()
        leases = {lease.shard_id: lease for lease in self.leases.list()}
        wanted = list(from_sequence) if from_sequence is not None else list(shard_ids or leases)
        for shard_id in _parents_first(wanted, leases):
            kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard_id}
            if from_sequence is not None:
                kwargs.update(ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=from_sequence[shard_id])
            else:
                kwargs.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=from_timestamp)
            iterator: str | None = self._kinesis.get_shard_iterator(**kwargs)["ShardIterator"]
            while iterator:
                response = self._kinesis.get_records(ShardIterator=iterator, Limit=self.max_records)
                for record in response.get("Records", []):
                    self._handle(shard_id, record, report)
                if not response.get("Records") and not response.get("MillisBehindLatest"):
                    break  # at the tip (AWS may answer empty mid-shard, with MillisBehindLatest > 0)
                iterator = response.get("NextShardIterator")
        return report

    def rewind_checkpoint(self, shard_id: str, checkpoint: str) -> Lease:
        """Move a held lease's checkpoint to ``checkpoint`` (backwards too): the worker re-reads from there."""
        lease = self.leases.get(shard_id)
        if lease is None or lease.owner != self.worker_id:
            raise LeaseLostError(f"worker {self.worker_id} does not hold {shard_id}: take the lease first")
        return self.leases.checkpoint(lease, checkpoint)


def _parents_first(shard_ids: Sequence[str], leases: Mapping[str, Lease]) -> list[str]:
    """``shard_ids`` ordered so that a shard comes after its parents (depth in the lineage, then id)."""
    def depth(shard_id: str) -> int:
        lease = leases.get(shard_id)
        return 0 if lease is None or not lease.parent_shard_ids else 1 + max(
            depth(parent) for parent in lease.parent_shard_ids)
    return sorted(shard_ids, key=lambda shard_id: (depth(shard_id), shard_id))


def records_behind(kinesis: Any, stream_name: str, leases: Iterable[Lease], *, limit: int = 10_000) -> dict[str, int]:
    """Records after each lease's checkpoint, counted by reading the shard (a measurement, not for hot paths).

    On AWS prefer ``MillisBehindLatest`` and the ``GetRecords.IteratorAgeMilliseconds`` metric: this reads every
    record it counts. Finished shards count 0.
    """
    behind: dict[str, int] = {}
    for lease in leases:
        if lease.finished:
            behind[lease.shard_id] = 0
            continue
        kwargs: dict[str, Any] = {"StreamName": stream_name, "ShardId": lease.shard_id}
        if lease.checkpoint == TRIM_HORIZON:
            kwargs["ShardIteratorType"] = TRIM_HORIZON
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=lease.checkpoint)
        iterator: str | None = kinesis.get_shard_iterator(**kwargs)["ShardIterator"]
        count = 0
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=limit)
            count += len(response.get("Records", []))
            if not response.get("Records") and not response.get("MillisBehindLatest"):
                break
            iterator = response.get("NextShardIterator")
        behind[lease.shard_id] = count
    return behind

