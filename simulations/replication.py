"""An EMULATION of DynamoDB global-table replication between two regions of in-process moto.

moto has no global tables. :class:`StreamReplicator` reads the DynamoDB Streams (``NEW_AND_OLD_IMAGES``)
of the source region's tables and applies each record to the same-named table in the target region after
a lag drawn from a distribution, on a virtual clock (nothing sleeps), with last-writer-wins semantics
(an unconditional put of the new image, or a delete). What it shows and what it does not:

* it shows asynchronous replication: a write acknowledged in the source is missing in the target until
  its lag has passed; a paused or cut link builds a backlog; what was never applied is the *tail*;
* it applies what one :meth:`StreamReplicator.pump` read as a unit, and the drills pump between
  transactions, so a replica never sees half of a transaction here. **Real global tables do not
  replicate transactions atomically**: a replica can see part of one. The drills' reconciliation would
  report such a tear; the emulation cannot produce one;
* its own writes into the target are remembered (:class:`EchoFilter`) so the reverse replicator does not
  send them back, as global tables do not;
* the fence/control table is never replicated (create it without a stream).

Streams need ``AWS_ACCOUNT_ID_ENDPOINT_MODE=disabled`` with current botocore on moto:
:func:`enable_streams_on_moto` sets it before clients are made.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fasterpay.faults import LatencyDistribution

__all__ = ["EchoFilter", "ReplicationRecord", "StreamReplicator", "create_replicated_table",
           "enable_streams_on_moto", "resync", "scan_all"]


def enable_streams_on_moto() -> None:
    """Let botocore's DynamoDB clients talk to moto's streams (EMULATION set-up; call before making clients)."""
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")


def create_replicated_table(dynamodb: Any, name: str, *, sort_key: bool = False) -> str:
    """Create a table with a ``NEW_AND_OLD_IMAGES`` stream, as a global table's replica has (EMULATION helper).

    Examples:
        >>> create_replicated_table(env.client("dynamodb"), "payments")  # doctest: +SKIP
        'payments'
    """
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    if sort_key:
        attributes.append({"AttributeName": "sk", "AttributeType": "S"})
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
    dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=attributes,
                          KeySchema=schema,
                          StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    return name


def _digest(table: str, keys: Any, image: Any) -> str:
    body = json.dumps([table, keys, image], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass
class EchoFilter:
    """Writes a replicator made in a region, so the reverse replicator skips them (EMULATION).

    Examples:
        >>> echoes = EchoFilter()
        >>> echoes.add("t", {"pk": {"S": "a"}}, None); echoes.take("t", {"pk": {"S": "a"}}, None)
        True
    """

    pending: Counter[str] = field(default_factory=Counter)

    def add(self, table: str, keys: Any, image: Any) -> None:
        """Remember one applied write."""
        self.pending[_digest(table, keys, image)] += 1

    def take(self, table: str, keys: Any, image: Any) -> bool:
        """True (and forget it) if this stream record is the echo of an applied write."""
        d = _digest(table, keys, image)
        if self.pending[d] > 0:
            self.pending[d] -= 1
            return True
        return False


@dataclass(frozen=True)
class ReplicationRecord:
    """One stream record read from the source (EMULATION): its table, keys, new image (None: a delete), times."""

    table: str
    keys: dict[str, Any]
    image: dict[str, Any] | None
    committed_at: float  # the virtual time of the pump that read it (the drills pump between transactions)
    due_at: float
    sequence: str = ""


class StreamReplicator:
    """EMULATED global-table replication of ``tables`` from one region to another, one direction.

    ``lag`` is a :class:`~fasterpay.faults.LatencyDistribution` (milliseconds) or a callable
    ``(rng) -> seconds``. ``source_version`` (optional) returns a count of writes made to a table in the
    source region; its stream is read only when that count has changed (saves calls; an emulation shortcut).
    ``source_echoes`` are the writes the reverse replicator made in the source
    region (skipped); ``target_echoes`` receives this replicator's writes into the target.

    Examples:
        >>> rep = StreamReplicator(ddb_a, ddb_b, streams_a, ["payments"], lag=LatencyDistribution(500, 2000),
        ...                        clock=clock, seed=1)  # doctest: +SKIP
        >>> rep.start(); rep.pump(clock())  # doctest: +SKIP
    """

    def __init__(self, source_ddb: Any, target_ddb: Any, streams_client: Any, tables: Sequence[str], *,
                 lag: LatencyDistribution | Callable[[random.Random], float], clock: Callable[[], float], seed: int,
                 source_echoes: EchoFilter | None = None, target_echoes: EchoFilter | None = None,
                 name: str = "", source_version: Callable[[str], int] | None = None) -> None:
        self.source = source_ddb
        self.target = target_ddb
        self.streams = streams_client
        self.tables = tuple(tables)
        self.lag = lag
        self.clock = clock
        self.rng = random.Random(seed)
        self.source_echoes = source_echoes or EchoFilter()
        self.target_echoes = target_echoes or EchoFilter()
        self.name = name
        self.source_version = source_version  # a counter of writes in the source: skip reads when unchanged
        self._read_version: dict[str, int] = {}
        self.paused = False
        self.connected = True
        self._iterators: dict[str, list[str]] = {}
        self._backlog: list[list[ReplicationRecord]] = []  # groups (one per pump), in source order
        self.applied = 0
        self.read_errors = 0
        self._last_due = 0.0

    # -- control --------------------------------------------------------------------------------
    def start(self, position: str = "LATEST") -> None:
        """Begin reading every table's stream at ``position`` (LATEST or TRIM_HORIZON)."""
        self._iterators = {}
        if position == "LATEST":
            self.source_echoes.pending.clear()  # echoes written before now are never read
        for table in self.tables:
            arn = self.source.describe_table(TableName=table)["Table"]["LatestStreamArn"]
            shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
            self._iterators[table] = [
                self.streams.get_shard_iterator(StreamArn=arn, ShardId=s["ShardId"], ShardIteratorType=position)["ShardIterator"]
                for s in shards]

    def pause(self) -> None:
        """The "paused replication" fault: records are still read, none applied (EMULATION)."""
        self.paused = True

    def resume(self) -> None:
        """Apply again; the backlog drains as its records fall due."""
        self.paused = False

    def disconnect(self) -> None:
        """A network partition between the regions (or the replica removed): nothing is applied (EMULATION)."""
        self.connected = False

    def reconnect(self) -> None:
        """The partition heals."""
        self.connected = True

    # -- work -----------------------------------------------------------------------------------
    def _lag_seconds(self) -> float:
        if isinstance(self.lag, LatencyDistribution):
            return self.lag.sample(self.rng)
        return float(self.lag(self.rng))

    def read(self, now: float) -> int:
        """Read new stream records into the backlog, stamped ``now``; returns how many (0 if unreachable).

        Reading goes on while the link is cut or paused (the source region keeps its stream); only
        applying stops.
        """
        group: list[ReplicationRecord] = []
        try:
            for table, iterators in self._iterators.items():
                version = None if self.source_version is None else self.source_version(table)
                if version is not None and self._read_version.get(table) == version:
                    continue
                for i, it in enumerate(iterators):
                    while it:
                        page = self.streams.get_records(ShardIterator=it, Limit=1000)
                        records = page.get("Records", [])
                        for r in records:
                            group.append(self._record(table, r, now))
                        it = page.get("NextShardIterator")
                        iterators[i] = it
                        if len(records) < 1000:
                            break
                if version is not None:
                    self._read_version[table] = version
        except (BotoCoreError, ClientError):
            self.read_errors += 1
        group = [r for r in group if not self.source_echoes.take(r.table, r.keys, r.image)]
        if group:
            # one lag per group; never before the group ahead of it (a replication stream applies in order)
            due = max(now + self._lag_seconds(), self._last_due)
            self._last_due = due
            self._backlog.append([ReplicationRecord(r.table, r.keys, r.image, now, due, r.sequence) for r in group])
        return len(group)

    @staticmethod
    def _record(table: str, raw: dict[str, Any], now: float) -> ReplicationRecord:
        ddb = raw["dynamodb"]
        image = None if raw["eventName"] == "REMOVE" else ddb.get("NewImage")
        return ReplicationRecord(table, ddb["Keys"], image, now, now, str(ddb.get("SequenceNumber", "")))

    def pump(self, now: float) -> int:
        """Read what is new, then apply every group that is due (unless paused or cut); returns records applied."""
        self.read(now)
        if self.paused or not self.connected:
            return 0
        applied = 0
        while self._backlog and self._backlog[0][0].due_at <= now:
            group = self._backlog[0]
            self._apply(group)
            self._backlog.pop(0)
            applied += len(group)
        self.applied += applied
        return applied

    def drain(self) -> int:
        """Apply the whole backlog now, whatever its due times (a test helper; drills use :meth:`pump`)."""
        applied = 0
        for group in self._backlog:
            self._apply(group)
            applied += len(group)
        self._backlog.clear()
        self.applied += applied
        return applied

    def _apply(self, group: Iterable[ReplicationRecord]) -> None:
        """Last writer wins: the latest record per key is put (or deleted), unconditionally."""
        latest: dict[tuple[str, str], ReplicationRecord] = {}
        for r in group:
            latest[(r.table, json.dumps(r.keys, sort_keys=True))] = r
        by_table: dict[str, list[dict[str, Any]]] = {}
        for r in latest.values():
            request = {"DeleteRequest": {"Key": r.keys}} if r.image is None else {"PutRequest": {"Item": r.image}}
            by_table.setdefault(r.table, []).append(request)
            self.target_echoes.add(r.table, r.keys, r.image)
        _batch_write(self.target, by_table)

    # -- what is left -------------------------------------------------------------------------------
    def backlog(self) -> list[ReplicationRecord]:
        """Records read and not yet applied, oldest first (with their source-commit times)."""
        return [r for group in self._backlog for r in group]

    def lag_seconds(self, now: float) -> float:
        """How far the target is behind: now minus the oldest unapplied record's commit time (0 if none)."""
        return now - self._backlog[0][0].committed_at if self._backlog else 0.0

    def take_tail(self, now: float) -> list[ReplicationRecord]:
        """Everything not applied (the backlog and whatever the source stream still holds), removed.

        Used at failback: the tail is reconciled by UETR, never applied blindly (EMULATION).
        """
        self.read(now)
        tail = self.backlog()
        self._backlog.clear()
        return tail

    def discard_backlog(self) -> int:
        """Forget the backlog (after :func:`resync` copied the source wholesale); returns how many."""
        n = len(self.backlog())
        self._backlog.clear()
        return n


def _batch_write(ddb: Any, by_table: dict[str, list[dict[str, Any]]]) -> None:
    requests = [(t, r) for t, rs in by_table.items() for r in rs]
    for start in range(0, len(requests), 25):
        chunk: dict[str, list[dict[str, Any]]] = {}
        for t, r in requests[start:start + 25]:
            chunk.setdefault(t, []).append(r)
        while chunk:
            chunk = ddb.batch_write_item(RequestItems=chunk).get("UnprocessedItems") or {}


def scan_all(ddb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of ``table`` (strongly consistent scan, page by page)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def resync(source_ddb: Any, target_ddb: Any, tables: Sequence[str], *, key_names: dict[str, tuple[str, ...]],
           echoes: EchoFilter | None = None) -> int:
    """Make the target's tables equal to the source's (EMULATION of re-adding a replica: a full copy).

    Items only in the target are deleted, every source item is put; each write is remembered in
    ``echoes`` (the filter of the replicator that reads the target) so it is not sent back. Returns the
    number of writes.
    """
    writes = 0
    for table in tables:
        keys = key_names.get(table, ("pk",))
        source = {json.dumps({k: i[k] for k in keys}, sort_keys=True): i for i in scan_all(source_ddb, table)}
        target = {json.dumps({k: i[k] for k in keys}, sort_keys=True): i for i in scan_all(target_ddb, table)}
        requests: list[dict[str, Any]] = []
        for key, item in target.items():
            if key not in source:
                requests.append({"DeleteRequest": {"Key": json.loads(key)}})
                if echoes is not None:
                    echoes.add(table, json.loads(key), None)
        for key, item in source.items():
            if target.get(key) != item:
                requests.append({"PutRequest": {"Item": item}})
                if echoes is not None:
                    echoes.add(table, json.loads(key), item)
        _batch_write(target_ddb, {table: requests})
        writes += len(requests)
    return writes
