"""A chaos drill of :mod:`fasterpay.agents.stream`: crashes, lease takeovers and a shard split, on moto.

:func:`run_stream_drill` publishes payment status events for a set of accounts, splits a shard halfway,
and consumes with one live worker at a time. At seeded points the worker "dies" at one of the crash points
(:data:`fasterpay.agents.stream.CRASH_POINTS`, in turn, so each is hit many times); a new worker with
another id sees the dead worker's leases, is refused them until ``failover_ms`` has passed on the injected
clock, then takes them and resumes from the checkpoints. ``PutRecords`` fails a seeded share of records
(:class:`PartialFailureKinesis`), so the publisher's ordered retries are exercised too.

Everything is **counted** (effects, duplicates absorbed, lost, doubled, per-account order violations,
takeovers, checkpoints, AWS calls by operation) or read back from the tables. Consumer lag is sampled before
each poll as *records behind* (counted by reading the stream from the checkpoints; those reads are left out of
the call counts) and as a **modelled** time lag: records behind x a stated processing time per record, plus
the poll interval. ``MillisBehindLatest`` is kept as moto returns it (near 0 in process: it is computed from
arrival times of records written milliseconds apart).

moto's ``SplitShard`` keeps routing new records to the closed parent (see the module docstring of
:mod:`fasterpay.agents.stream`); the drill runs inside :func:`aws_like_resharding`, which makes moto route
them to the children and leave the parent's records in place, as AWS does. Every random choice comes from one
``random.Random(seed)``.
"""

from __future__ import annotations

import bisect
import random
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from hashlib import md5
from typing import Any

from fasterpay.agents.stream import (
    CRASH_POINTS,
    Lease,
    LeaseTable,
    StatusEvent,
    StatusEventPublisher,
    TRIM_HORIZON,
    StreamConsumer,
    create_lease_table,
    create_processed_table,
    list_shards,
)
from fasterpay.ledger.model import SimulatedCrash
from fasterpay.metering import ApiCallMeter, MeterSnapshot

__all__ = [
    "CrashSchedule",
    "PartialFailureKinesis",
    "StreamDrillResult",
    "account_token",
    "aws_like_resharding",
    "generate_status_events",
    "history_effect",
    "read_histories",
    "run_stream_drill",
]

_B32 = "abcdefghijklmnopqrstuvwxyz234567"


@contextmanager
def aws_like_resharding() -> Iterator[None]:
    """Make moto's ``SplitShard`` behave as AWS's: new records go to open shards only, old ones stay put.

    moto 5.2.5 looks a partition key up in every shard, closed ones included, so after a split the closed
    parent keeps receiving records and the children stay empty; and its split rewrites the parent's records.
    Inside this context the key lookup skips closed shards and the split leaves the parent's records alone.
    """
    from moto.kinesis import models

    original_lookup = models.Stream.get_shard_for_key
    original_split = models.Stream.split_shard

    def get_shard_for_key(self: Any, partition_key: str, explicit_hash_key: str) -> Any:
        key = int(explicit_hash_key) if explicit_hash_key else int(md5(partition_key.encode()).hexdigest(), 16)
        return next((shard for shard in self.shards.values()
                     if shard.is_open and shard.starting_hash <= key <= shard.ending_hash), None)

    def split_shard(self: Any, shard_to_split: str, new_starting_hash_key: str) -> None:
        shard = self.shards[shard_to_split]
        records, shard.records = shard.records, OrderedDict()
        try:
            original_split(self, shard_to_split, new_starting_hash_key)
        finally:
            shard.records = records

    models.Stream.get_shard_for_key = get_shard_for_key  # type: ignore[method-assign]
    models.Stream.split_shard = split_shard  # type: ignore[method-assign]
    try:
        yield
    finally:
        models.Stream.get_shard_for_key = original_lookup  # type: ignore[method-assign]
        models.Stream.split_shard = original_split  # type: ignore[method-assign]


class PartialFailureKinesis:
    """A Kinesis client whose ``PutRecords`` fails some records as AWS can: those are *not written*, the rest are.

    ``fail(position, record)`` (or a seeded ``rate``) picks the failing records; they come back with
    ``ErrorCode`` ``ProvisionedThroughputExceededException`` and the call's ``FailedRecordCount``. Every
    other method goes to the wrapped client.

    Examples:
        >>> flaky = PartialFailureKinesis(kinesis, rate=0.1, rng=random.Random(7))  # doctest: +SKIP
    """

    def __init__(self, client: Any, *, rate: float = 0.0, rng: random.Random | None = None,
                 fail: Callable[[int, Mapping[str, Any]], bool] | None = None) -> None:
        self._client = client
        self._rng = rng or random.Random(0)
        self.rate = rate
        self.fail = fail
        self.failed_records = 0
        self.written: dict[str, list[int]] = {}  # shard -> sequence numbers acknowledged, in order


    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        records = kwargs["Records"]
        failing = [bool(self.fail(n, r)) if self.fail else self._rng.random() < self.rate
                   for n, r in enumerate(records)]
        sent = [record for record, bad in zip(records, failing, strict=True) if not bad]
        answers = iter(self._client.put_records(**{**kwargs, "Records": sent})["Records"] if sent else [])
        results = [{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded (injected)"}
                   if bad else next(answers) for bad in failing]
        self.failed_records += sum(failing)
        for result in results:
            if "SequenceNumber" in result:
                self.written.setdefault(result["ShardId"], []).append(int(result["SequenceNumber"]))
        return {"FailedRecordCount": sum(failing), "Records": results}

    def behind(self, leases: Iterable[Lease]) -> int:
        """Records written but not yet checkpointed, from ``PutRecords``' acknowledgements (no AWS call).

        The same count as :func:`fasterpay.agents.stream.records_behind`, which reads the shards for it; a shard
        that no lease covers yet (a new child) counts whole.
        """
        by_shard = {lease.shard_id: lease for lease in leases}
        total = 0
        for shard_id, sequences in self.written.items():
            lease = by_shard.get(shard_id)
            if lease is not None and lease.finished:
                continue
            if lease is None or lease.checkpoint == TRIM_HORIZON:
                total += len(sequences)
            else:
                total += len(sequences) - bisect.bisect_right(sequences, int(lease.checkpoint))
        return total


class CrashSchedule:
    """The workers' crash hook: after about ``every`` records (seeded jitter) it arms the next crash point in turn.

    An armed point raises :class:`~fasterpay.ledger.model.SimulatedCrash` the next time a worker reaches it.
    """

    def __init__(self, rng: random.Random, every: int) -> None:
        self._rng = rng
        self.every = every
        self.hits: Counter[str] = Counter()
        self._turn = 0
        self._armed: str | None = None
        self._countdown = self._next_gap()

    def _next_gap(self) -> int:
        return max(1, self._rng.randint(self.every // 2, self.every + self.every // 2)) if self.every else 0

    def __call__(self, point: str) -> None:
        if not self.every:
            return
        if point == "after-effect" and self._armed is None:
            self._countdown -= 1
            if self._countdown <= 0:
                self._armed = CRASH_POINTS[self._turn % len(CRASH_POINTS)]
                self._turn += 1
        if point == self._armed:
            self._armed = None
            self._countdown = self._next_gap()
            self.hits[point] += 1
            raise SimulatedCrash(point)


def account_token(rng: random.Random) -> str:
    """A deterministic-token-shaped reference (``dtk_iban_`` + 32 base32 characters), as the vault issues."""
    return "dtk_iban_" + "".join(rng.choice(_B32) for _ in range(32))


def generate_status_events(count: int, accounts: int, rng: random.Random, *, start_ms: int = 1_767_225_600_000,
                           reject_rate: float = 0.05) -> list[StatusEvent]:
    """``count`` events in publish order: each payment goes ACTC, ACSP, then ACSC (or RJCT with AM04);
    payments of many accounts interleave."""
    tokens = [account_token(rng) for _ in range(accounts)]
    events: list[StatusEvent] = []
    open_payments: list[list[Any]] = []  # [uetr, e2e, account, amount, statuses left]
    while len(events) < count:
        if len(open_payments) < 2 * accounts and (not open_payments or rng.random() < 0.4):
            last = "RJCT" if rng.random() < reject_rate else "ACSC"
            open_payments.append([str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"E2E-{len(events)}",
                                  rng.choice(tokens), rng.randint(100, 2_500_000), ["ACTC", "ACSP", last]])
        payment = rng.choice(open_payments)
        status = payment[4].pop(0)
        events.append(StatusEvent(payment[0], payment[1], status, payment[2], payment[3], "GBP",
                                  start_ms + 2 * len(events), "AM04" if status == "RJCT" else None))
        if not payment[4]:
            open_payments.remove(payment)
    return events


def history_effect(table: str) -> Callable[[StatusEvent], list[dict[str, Any]]]:
    """An effect that writes one item per commit (``EFFECT#<n>``, n counting calls), so the order of commits
    and any event committed twice can be read back (:func:`read_histories`). Small items keep moto fast."""
    calls = [0]

    def apply(event: StatusEvent) -> list[dict[str, Any]]:
        calls[0] += 1
        return [{"Put": {"TableName": table, "Item": {
            "pk": {"S": f"EFFECT#{calls[0]:09d}"}, "n": {"N": str(calls[0])}, "account": {"S": event.account},
            "event_id": {"S": event.event_id}, "amount_minor": {"N": str(event.amount_minor)}}}}]
    return apply


def read_histories(dynamodb: Any, table: str) -> dict[str, list[str]]:
    """Each account's committed event ids, in commit order."""
    rows: list[tuple[int, str, str]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kwargs)
        rows += [(int(item["n"]["N"]), item["account"]["S"], item["event_id"]["S"])
                 for item in page.get("Items", []) if item["pk"]["S"].startswith("EFFECT#")]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    histories: dict[str, list[str]] = {}
    for _, account, event_id in sorted(rows):
        histories.setdefault(account, []).append(event_id)
    return histories


@dataclass
class StreamDrillResult:
    """What a drill did and found; ``lost``, ``doubled`` and ``order_violations`` should be 0."""

    events_published: int
    publish_calls: int
    publish_records_retried: int
    effects_applied: int
    duplicates_absorbed: int
    lost: int
    doubled: int
    order_violations: int
    crashes_survived: int
    crashes_by_point: dict[str, int]
    lease_takeovers: int
    takeovers_refused_before_failover: int
    redelivered_after_crash: int
    checkpoint_calls: int
    poison: int
    shards_before_split: int
    shards_after_split: int
    split_shard: str | None
    aws_calls: dict[str, int]
    records_behind: list[int] = field(default_factory=list)
    modelled_lag_ms: list[float] = field(default_factory=list)
    millis_behind_latest: list[int | None] = field(default_factory=list)
    per_record_ms: float = 0.0
    poll_interval_ms: int = 0
    polls: int = 0
    seed: int = 0
    wall_seconds: float = 0.0


def run_stream_drill(kinesis: Any, dynamodb: Any, *, events: int = 300, accounts: int = 24, seed: int = 7,
                     crash_every: int = 20, split_at: float | None = 0.5, shards: int = 2,
                     publish_chunk: int = 40, publish_failure_rate: float = 0.05, checkpoint_every: int = 10,
                     max_records: int = 60, failover_ms: int = 10_000, poll_interval_ms: int = 200,
                     per_record_ms: float = 2.0, name: str = "fasterpay-status") -> StreamDrillResult:
    """Publish ``events`` status events, consume them through crashes, takeovers and a split; count everything.

    ``crash_every`` is the mean number of records between crashes (0: none); ``split_at`` the share of
    events published before a shard is split at the midpoint of its hash range (None: no split). The
    modelled lag is ``records behind x per_record_ms + poll_interval_ms`` (stated assumptions, not measured).

    Examples:
        >>> result = run_stream_drill(env.client("kinesis"), env.client("dynamodb"), events=300)  # doctest: +SKIP
        >>> (result.lost, result.doubled, result.order_violations)  # doctest: +SKIP
        (0, 0, 0)
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    meter = ApiCallMeter()
    meter.attach(kinesis)
    meter.attach(dynamodb)
    sampling = MeterSnapshot()
    with aws_like_resharding():
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        lease_table = _CountingLeaseTable(dynamodb, create_lease_table(dynamodb, f"{name}-leases"))
        processed = create_processed_table(dynamodb, f"{name}-processed")
        effects = create_processed_table(dynamodb, f"{name}-effects")
        all_events = generate_status_events(events, accounts, rng)
        flaky = PartialFailureKinesis(kinesis, rate=publish_failure_rate, rng=random.Random(rng.getrandbits(32)))
        publisher = StatusEventPublisher(flaky, name, sleep=lambda _: None)
        crash = CrashSchedule(random.Random(rng.getrandbits(32)), crash_every)
        now = [0]
        effect = history_effect(effects)
        apply_calls = [0]

        def counted(event: StatusEvent) -> list[dict[str, Any]]:
            apply_calls[0] += 1
            return effect(event)

        def worker(n: int) -> StreamConsumer:
            return StreamConsumer(kinesis, dynamodb, stream_name=name, lease_table=lease_table,
                                  worker_id=f"worker-{n}", apply=counted, processed_table=processed,
                                  checkpoint_every=checkpoint_every, failover_ms=failover_ms,
                                  max_records=max_records, clock=lambda: now[0], crash=crash)

        workers = 1
        live = worker(workers)
        published = publish_calls = retried = refused = poison = polls = 0
        shards_before = len(list_shards(kinesis, name))
        split: str | None = None
        result_lag: list[int] = []
        mbl: list[int | None] = []
        recovering = False
        idle_polls = 0
        while True:
            if published < len(all_events):
                chunk = all_events[published:published + publish_chunk]
                report = publisher.publish(chunk)
                published += report.published
                publish_calls += report.calls
                retried += report.retried_records
                if split_at is not None and split is None and published >= split_at * len(all_events):
                    split = _split_busiest(kinesis, name)
            before = meter.snapshot()
            behind = flaky.behind(lease_table.list())
            sampling = sampling + (meter.snapshot() - before)
            result_lag.append(behind)
            if published >= len(all_events) and behind == 0 and not recovering:
                idle_polls += 1
                if idle_polls > 2:
                    break
            polls += 1
            now[0] += poll_interval_ms
            try:
                poll = live.poll_once()
            except SimulatedCrash:
                while True:  # a new worker looks: the dead worker's leases are not expired yet
                    workers += 1
                    live = worker(workers)
                    try:
                        live.poll_once()
                    except SimulatedCrash:
                        continue
                    break
                refused += sum(1 for lease in lease_table.list()
                               if lease.owner not in (None, live.worker_id) and not lease.finished)
                now[0] += failover_ms
                recovering = True
                mbl.append(None)
                continue
            recovering = False
            poison += len(poll.poison)
            mbl.append(poll.millis_behind_latest)
        histories = read_histories(dynamodb, effects)
    applied = sum(len(history) for history in histories.values())
    expected: dict[str, list[str]] = {}
    for event in all_events:
        expected.setdefault(event.account, []).append(event.event_id)
    counts = Counter(event_id for history in histories.values() for event_id in history)
    lost = sum(1 for event in all_events if counts[event.event_id] == 0)
    doubled = sum(n - 1 for n in counts.values() if n > 1)
    violations = 0
    for account, history in histories.items():
        position = {event_id: n for n, event_id in enumerate(expected.get(account, []))}
        ranks = [position.get(event_id, -1) for event_id in history]
        violations += sum(1 for a, b in zip(ranks, ranks[1:], strict=False) if b <= a)
    calls = (meter.snapshot() - sampling).by_operation()
    return StreamDrillResult(
        events_published=published, publish_calls=publish_calls, publish_records_retried=retried,
        effects_applied=applied, duplicates_absorbed=apply_calls[0] - applied, lost=lost, doubled=doubled,
        order_violations=violations, crashes_survived=sum(crash.hits.values()),
        crashes_by_point=dict(sorted(crash.hits.items())), lease_takeovers=lease_table.takeovers,
        takeovers_refused_before_failover=refused, redelivered_after_crash=apply_calls[0] - applied,
        checkpoint_calls=lease_table.checkpoints, poison=poison, shards_before_split=shards_before,
        shards_after_split=len(list_shards(kinesis, name)), split_shard=split, aws_calls=calls,
        records_behind=result_lag, modelled_lag_ms=[n * per_record_ms + poll_interval_ms for n in result_lag],
        millis_behind_latest=mbl, per_record_ms=per_record_ms, poll_interval_ms=poll_interval_ms, polls=polls,
        seed=seed, wall_seconds=round(time.perf_counter() - started, 3))


class _CountingLeaseTable(LeaseTable):
    """A lease table that counts checkpoint writes (a crashed poll's report is lost; this count is not)."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        super().__init__(dynamodb, table_name)
        self.checkpoints = 0
        self.takeovers = 0

    def take(self, lease: Lease, worker_id: str) -> Lease:
        taken = super().take(lease, worker_id)
        if lease.owner not in (None, worker_id):
            self.takeovers += 1
        return taken

    def checkpoint(self, lease: Lease, checkpoint: str) -> Lease:
        self.checkpoints += 1
        return super().checkpoint(lease, checkpoint)


def _split_busiest(kinesis: Any, stream_name: str) -> str:
    """Split the first open shard at the midpoint of its hash-key range; returns its id."""
    shard = next(s for s in list_shards(kinesis, stream_name) if "EndingSequenceNumber" not in s["SequenceNumberRange"])
    low, high = int(shard["HashKeyRange"]["StartingHashKey"]), int(shard["HashKeyRange"]["EndingHashKey"])
    kinesis.split_shard(StreamName=stream_name, ShardToSplit=shard["ShardId"], NewStartingHashKey=str((low + high) // 2))
    return str(shard["ShardId"])
