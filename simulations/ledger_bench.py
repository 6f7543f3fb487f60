"""Benchmarks of :mod:`fasterpay.ledger` for the notebook: duplicate rates, hot accounts, moto's table-size artefact.

Everything that carries over to AWS is **counted** (API calls and write units, per payment and per
partition key) or **computed** from counts (cost from the dated price table, the hot-key ceiling from a
stated per-key budget). Latency is **modelled** from the per-call latency model. Wall time is
**measured on moto** and only compared between series of one run.

moto copies every table a ``TransactWriteItems`` touches, so its transactions slow as tables grow
(:func:`moto_transaction_ms_by_table_size` shows it, with moto's own code). On moto the benchmarks
install :mod:`simulations.moto_speedups`, whose transaction snapshots only the items it touches and
answers as moto does (``tests/test_moto_speedups.py``), and they also *rotate tables*: every
``rotate_every`` payments they create a fresh set under a new name prefix and delete the old one, so
moto's memory stays flat. A payment's retries are submitted within its own generation, as client
retries come seconds later.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fasterpay.faults import DEFAULT_LATENCY_MODEL, FaultInjector, LatencyModel
from fasterpay.idempotency.store import DynamoDbIdempotencyStore
from fasterpay.ledger.consumer import DeduplicatingConsumer, statement_projection
from fasterpay.ledger.core import Ledger, LedgerTables, create_ledger_tables
from fasterpay.ledger.model import Transfer
from fasterpay.ledger.outbox import OutboxRelay
from fasterpay.ledger.service import TransferService
from fasterpay.metering import ApiCallMeter, MeterSnapshot
from fasterpay.pricing import cost_of, per_10k
from simulations import moto_speedups

__all__ = [
    "PARTITION_KEY_WRITE_UNITS_PER_SECOND",
    "DuplicateRun",
    "HotAccountRun",
    "KeyWriteCounter",
    "benchmark_duplicates",
    "benchmark_hot_account",
    "moto_transaction_ms_by_table_size",
    "naive_post",
]

#: The modelled write budget of one DynamoDB partition key: about 1,000 write units per second
#: (AWS documents this per-partition limit; moto has no such limit, so it cannot be observed here).
PARTITION_KEY_WRITE_UNITS_PER_SECOND = 1_000
_WRITES = {"PutItem": 1, "UpdateItem": 1, "DeleteItem": 1}


class KeyWriteCounter:
    """Counts estimated write units per (table, partition key), from each DynamoDB request.

    Transactional items count 2 units each, single writes 1, batch deletes and puts 1 each (items under
    1 KB), as :mod:`fasterpay.metering` estimates them in total.

    Examples:
        >>> counter = KeyWriteCounter()
        >>> dynamodb = counter.attach(env.client("dynamodb"))  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.units: Counter[tuple[str, str]] = Counter()
        self._id = f"fasterpay-keys-{id(self)}"

    def attach(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params.dynamodb", self._count, unique_id=self._id)
        return client

    def _count(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        operation = model.name
        if operation == "TransactWriteItems":
            for entry in params.get("TransactItems", ()):
                (kind, request), = entry.items()
                self.units[(request["TableName"], _pk(request, kind))] += 2
        elif operation in _WRITES:
            self.units[(params["TableName"], _pk(params, operation))] += 1
        elif operation == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    (kind, body), = request.items()
                    key = body.get("Item") or body.get("Key")
                    self.units[(table, key["pk"]["S"])] += 1

    def hottest(self) -> tuple[tuple[str, str], int]:
        """The (table, key) with most units, and its units."""
        return self.units.most_common(1)[0]


def _pk(request: dict[str, Any], kind: str) -> str:
    key = request.get("Item") if kind in ("Put", "PutItem") else request.get("Key")
    return str(key["pk"]["S"])  # type: ignore[index]


def naive_post(dynamodb: Any, tables: LedgerTables, transfer: Transfer) -> None:
    """What *not* to do: debit and credit in one transaction, but no transfer record, so every retry
    posts again. The benchmark's control series."""
    amount = {"N": str(transfer.amount_minor)}
    dynamodb.transact_write_items(TransactItems=[
        {"Update": {"TableName": tables.ledger, "Key": {"pk": {"S": f"BAL#{transfer.debit_account}#0"}},
                    "UpdateExpression": "SET balance = balance - :a", "ConditionExpression": "balance >= :a",
                    "ExpressionAttributeValues": {":a": amount}}},
        {"Update": {"TableName": tables.ledger, "Key": {"pk": {"S": f"BAL#{transfer.credit_account}#0"}},
                    "UpdateExpression": "SET balance = balance + :a", "ExpressionAttributeValues": {":a": amount}}},
    ])


@dataclass(frozen=True)
class DuplicateRun:
    """One series of the duplicate-rate sweep."""

    series: str
    duplicate_rate: float
    payments: int  # unique payments
    submissions: int  # payments plus their retries
    posted: int  # transfers in the journals (naive: postings)
    wall_seconds: float  # the posting loop only
    generations: int
    posting: MeterSnapshot  # the API and the ledger transaction
    delivery: MeterSnapshot  # outbox relay and deduplicating consumer
    first_ms: tuple[float, ...] = field(repr=False)  # modelled latency of first submissions
    retry_ms: tuple[float, ...] = field(repr=False)  # modelled latency of retries
    idempotent: bool = True  # False for the control series (no delivery either)

    @property
    def double_posts_per_10k(self) -> Decimal:
        return Decimal((self.posted - self.payments) * 10_000) / self.payments

    @property
    def submissions_per_second(self) -> float:
        return self.submissions / self.wall_seconds

    @property
    def write_units_per_payment(self) -> Decimal:
        return (self.posting.write_units + self.delivery.write_units) / self.payments

    @property
    def calls_per_payment(self) -> Decimal:
        return Decimal(self.posting.count() + self.delivery.count()) / self.payments

    def cost_per_10k(self, part: str = "total") -> Decimal:
        """USD per 10k unique payments: ``posting``, ``delivery`` or ``total``."""
        parts = {"posting": [self.posting], "delivery": [self.delivery], "total": [self.posting, self.delivery]}[part]
        cost = sum((cost_of(p, fifo_queues=True).total for p in parts), Decimal(0))
        return per_10k(cost, self.payments)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:24] or "series"


def _generations(total: int, size: int) -> Iterator[tuple[int, int]]:
    for gen, start in enumerate(range(0, total, size)):
        yield gen, min(size, total - start)


def _drop(dynamodb: Any, sqs: Any, tables: LedgerTables) -> None:
    for table in (tables.ledger, tables.outbox, tables.idempotency, tables.consumer):
        dynamodb.delete_table(TableName=table)
    for url in (tables.queue_url, tables.dead_letter_queue_url):
        if url:
            sqs.delete_queue(QueueUrl=url)
    _forget_moto_copies()


def _forget_moto_copies() -> None:
    """moto keeps a reference to every DynamoDB model object it ever creates (for its dashboard),
    including the copy of each table that every transaction makes: at full run size that exhausts
    memory. The benchmarks drop those references with each table generation (moto only; harmless
    elsewhere)."""
    try:
        from moto.core.model_instances import model_data
    except ImportError:  # not on moto
        return
    for model in model_data.get("dynamodb", {}).values():
        model.instances_tracked.clear()


def _deliver(dynamodb: Any, sqs: Any, tables: LedgerTables) -> None:
    OutboxRelay(dynamodb, sqs, outbox_table=tables.outbox, queue_url=tables.queue_url).drain()
    DeduplicatingConsumer(dynamodb, sqs, queue_url=tables.queue_url, table=tables.consumer, name="statements",
                          apply=statement_projection(tables.consumer)).drain()


def benchmark_duplicates(
    env: Any,
    *,
    series: str,
    duplicate_rate: float,
    payments: int,
    seed: int,
    rotate_every: int = 100,
    payers: int = 20,
    idempotent: bool = True,
    latency: LatencyModel = DEFAULT_LATENCY_MODEL,
) -> DuplicateRun:
    """Submit ``payments`` seeded transfers; each is retried once more with probability ``duplicate_rate``.

    ``idempotent=True``: through :class:`TransferService` (API key, one ledger transaction), then the
    outbox relay and the deduplicating consumer deliver every event. ``idempotent=False``: the control,
    :func:`naive_post` for every submission, retries included.
    """
    if not 0 <= duplicate_rate <= 1:
        raise ValueError("duplicate_rate must be between 0 and 1")
    moto_speedups.install_on_moto(env)  # same answers, no copy of each table per transaction
    rng = random.Random(seed)
    posting_meter, delivery_meter = ApiCallMeter(), ApiCallMeter()
    faults = FaultInjector(latency=latency, seed=seed)
    setup_ddb, setup_sqs = env.client("dynamodb"), env.client("sqs")
    ddb = faults.attach(posting_meter.attach(env.client("dynamodb")))
    relay_ddb = delivery_meter.attach(env.client("dynamodb"))
    relay_sqs = delivery_meter.attach(env.client("sqs"))
    first_ms: list[float] = []
    retry_ms: list[float] = []
    posted = submissions = generations = 0
    wall = 0.0
    for gen, size in _generations(payments, rotate_every):
        generations += 1
        tables = create_ledger_tables(setup_ddb, setup_sqs, f"bench-{_slug(series)}-{gen}")
        setup = Ledger(setup_ddb, tables)
        setup.open_account("settlement", "GBP", allow_negative=True)
        accounts = [f"payer-{n}" for n in range(payers)]
        for account in [*accounts, "merchant"]:
            setup.open_account(account, "GBP")
        for account in accounts:
            setup.transfer(Transfer(f"fund-{account}", "settlement", account, 10**9, "GBP"))
        if idempotent:  # deliver the funding events unmetered: they are set-up, not payments
            _deliver(setup_ddb, setup_sqs, tables)
        work: list[tuple[Transfer, str, bool]] = []
        for n in range(size):
            transfer = Transfer(f"pay-{gen}-{n}", rng.choice(accounts), "merchant", rng.randrange(100, 100_000), "GBP")
            work.append((transfer, f"req-{gen}-{n}", False))
        for index in range(size):  # each retry lands somewhere after its original
            if rng.random() < duplicate_rate:
                work.insert(rng.randrange(index + 1, len(work) + 1), (work[index][0], work[index][1], True))
        ledger = Ledger(ddb, tables)
        service = TransferService(ledger, DynamoDbIdempotencyStore(ddb, tables.idempotency))
        start = time.perf_counter()
        for transfer, key, is_retry in work:
            with faults.span() as span:
                if idempotent:
                    service.submit("bench", key, transfer)
                else:
                    naive_post(ddb, tables, transfer)
            (retry_ms if is_retry else first_ms).append(span.modelled_seconds * 1000)
        wall += time.perf_counter() - start  # posting only: delivery runs after, and only in one series
        if idempotent:
            _deliver(relay_ddb, relay_sqs, tables)
        submissions += len(work)
        if idempotent:
            posted += setup.reconcile().transfers - payers  # funding transfers are not payments
        else:
            posted += len(work)
        _drop(setup_ddb, setup_sqs, tables)
    return DuplicateRun(series, duplicate_rate, payments, submissions, posted, wall, generations,
                        posting_meter.snapshot(), delivery_meter.snapshot(), tuple(first_ms), tuple(retry_ms),
                        idempotent)


@dataclass(frozen=True)
class HotAccountRun:
    """Write units per partition key while many payers credit one account of ``shards`` shards."""

    shards: int
    transfers: int
    hottest_key: str  # "<table>/<pk>"
    hottest_units: int
    account_key_units: tuple[int, ...]  # units per balance shard of the hot account

    @property
    def hottest_units_per_transfer(self) -> Decimal:
        return Decimal(self.hottest_units) / self.transfers

    @property
    def modelled_ceiling_per_second(self) -> Decimal:
        """Transfers per second before the hottest key exceeds its modelled write budget."""
        return Decimal(PARTITION_KEY_WRITE_UNITS_PER_SECOND) / self.hottest_units_per_transfer


def benchmark_hot_account(
    env: Any,
    *,
    shards: int,
    transfers: int,
    seed: int,
    payers: int = 50,
    outbox_shards: int = 8,
    rotate_every: int = 200,
) -> HotAccountRun:
    """Credit one merchant account ``transfers`` times from ``payers`` payers and count units per key.

    Tables are rotated every ``rotate_every`` transfers (dropped and created again under the same names,
    so the counts per key add up across generations).
    """
    moto_speedups.install_on_moto(env)  # same answers, no copy of each table per transaction
    rng = random.Random(seed)
    setup_ddb = env.client("dynamodb")
    counter = KeyWriteCounter()
    counted = counter.attach(env.client("dynamodb"))
    prefix = f"hot-{shards}-{seed % 10_000}"
    accounts = [f"payer-{n}" for n in range(payers)]
    ledger_table = ""
    for gen, size in _generations(transfers, rotate_every):
        tables = create_ledger_tables(setup_ddb, None, prefix)
        ledger_table = tables.ledger
        setup = Ledger(setup_ddb, tables, outbox_shards=outbox_shards)
        setup.open_account("settlement", "GBP", allow_negative=True)
        setup.open_account("merchant", "GBP", shards=shards)
        for account in accounts:
            setup.open_account(account, "GBP")
            setup.transfer(Transfer(f"fund-{account}", "settlement", account, 10**9, "GBP"))
        ledger = Ledger(counted, tables, outbox_shards=outbox_shards)
        for n in range(size):
            ledger.transfer(Transfer(f"sale-{gen}-{n}", rng.choice(accounts), "merchant",
                                     rng.randrange(100, 10_000), "GBP"))
        if not setup.reconcile().balanced:
            raise AssertionError("the hot-account run left the books unbalanced")  # never silently wrong
        _drop(setup_ddb, env.client("sqs"), tables)
    (table, key), units = counter.hottest()
    per_shard = tuple(counter.units[(ledger_table, f"BAL#merchant#{n}")] for n in range(shards))
    short = table.removeprefix(ledger_table.removesuffix("ledger"))
    return HotAccountRun(shards, transfers, f"{short}/{key}", units, per_shard)


def moto_transaction_ms_by_table_size(
    env: Any, *, sizes: Sequence[int], transactions: int = 50
) -> list[tuple[int, float]]:
    """Measured on moto: mean ms per ``TransactWriteItems`` when the table already holds ``size`` items.

    This is moto's artefact (it copies each table a transaction touches), not DynamoDB's behaviour; it
    is why the benchmarks rotate tables.
    """
    dynamodb = env.client("dynamodb")
    with moto_speedups.unpatched():
        return _transaction_ms(env, dynamodb, sizes, transactions)


def _transaction_ms(env: Any, dynamodb: Any, sizes: Sequence[int], transactions: int) -> list[tuple[int, float]]:
    rows = []
    for size in sizes:
        tables = create_ledger_tables(dynamodb, None, f"artefact-{size}")
        ledger = Ledger(dynamodb, tables)
        ledger.open_account("settlement", "GBP", allow_negative=True)
        ledger.open_account("merchant", "GBP")
        filler = ({"PutRequest": {"Item": {"pk": {"S": f"TRANSFER#filler-{n}"}, "pad": {"S": "x" * 200}}}}
                  for n in range(size))
        while batch := list(itertools.islice(filler, 25)):
            dynamodb.batch_write_item(RequestItems={tables.ledger: batch})
        start = time.perf_counter()
        for n in range(transactions):
            ledger.transfer(Transfer(f"t-{n}", "settlement", "merchant", 100, "GBP"))
        rows.append((size, (time.perf_counter() - start) * 1000 / transactions))
        _drop(dynamodb, env.client("sqs"), tables)
    return rows

