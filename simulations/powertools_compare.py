"""Powertools for AWS Lambda's idempotency utility beside this guide's store, on the same moto DynamoDB.

Powertools (PyPI ``aws-lambda-powertools``) is imported only here, lazily: neither the store nor the
ledger needs it. Both are run, metered, and broken the same way:

* write and read units per first call, per retry and per key reused for another payload;
* a crash *after* the handler's effect but before the record completes. Powertools keeps its record
  apart from the effect, so once the in-progress lease (the Lambda's remaining time) runs out, the retry
  runs the handler again. Here the record completes inside the ledger transaction, so the retry replays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fasterpay.idempotency.store import (
    DynamoDbIdempotencyStore,
    IdempotencyKeyReuseError,
    ManualClock,
    create_idempotency_table,
)
from fasterpay.ledger.core import Ledger, create_ledger_tables
from fasterpay.ledger.model import CrashPlan, SimulatedCrash, Transfer
from fasterpay.ledger.service import TransferService
from fasterpay.metering import ApiCallMeter

__all__ = ["FakeLambdaContext", "UnitsRow", "compare_crash_after_effect", "compare_units", "powertools_version"]


def powertools_version() -> str:
    """The installed Powertools version (raises ImportError if it is not installed)."""
    from importlib.metadata import version

    import aws_lambda_powertools  # noqa: F401

    return version("aws-lambda-powertools")


class FakeLambdaContext:
    """The parts of a Lambda context that Powertools' ``@idempotent`` reads."""

    function_name = "fasterpay-payments"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:eu-west-2:123456789012:function:fasterpay-payments"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def __init__(self, remaining_ms: int = 3_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass(frozen=True)
class UnitsRow:
    tool: str
    case: str
    outcome: str
    write_units: Decimal
    read_units: Decimal
    calls: int


#: The three calls per key, in order: the amount each sends.
_CASES = {"first call": 5, "retry, same payload": 5, "same key, other payload": 6}


def _powertools_table(dynamodb: Any, name: str) -> str:
    dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    dynamodb.update_time_to_live(TableName=name,
                                 TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"})
    return name


def _powertools_handler(dynamodb: Any, table: str, effect: Any, *, validate: bool) -> Any:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent,
    )

    layer = DynamoDBPersistenceLayer(table_name=table, boto3_client=dynamodb)
    config = IdempotencyConfig(event_key_jmespath="idempotency_key",
                               payload_validation_jmespath="payment" if validate else None)

    @idempotent(persistence_store=layer, config=config)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return effect(event)

    return handler


def compare_units(env: Any, *, calls: int = 20, table_prefix: str = "cmp") -> list[UnitsRow]:
    """Units per call for a first call, a retry and a reused key, Powertools and ours, averaged over ``calls``."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError

    dynamodb = env.client("dynamodb")
    rows: list[UnitsRow] = []
    context = FakeLambdaContext()
    for validate in (True, False):
        meter = ApiCallMeter()
        table = _powertools_table(dynamodb, f"{table_prefix}-powertools-{int(validate)}")
        handler = _powertools_handler(meter.attach(env.client("dynamodb")), table,
                                      lambda event: {"posted": event["payment"]["amount_minor"]}, validate=validate)
        label = "Powertools " + ("(payload validation on)" if validate else "(default config)")
        for case, amount in _CASES.items():
            before = meter.snapshot()
            outcomes = set()
            for n in range(calls):
                try:
                    answer = handler({"idempotency_key": f"k{n}", "payment": {"amount_minor": amount}}, context)
                    outcomes.add(f"returned {answer}")
                except IdempotencyValidationError:
                    outcomes.add("refused (IdempotencyValidationError)")
            rows.append(_row(label, case, outcomes, meter.snapshot() - before, calls))
    meter = ApiCallMeter()
    ours_ddb = meter.attach(env.client("dynamodb"))
    store = DynamoDbIdempotencyStore(ours_ddb, create_idempotency_table(dynamodb, f"{table_prefix}-ours"))
    for case, amount in _CASES.items():
        before = meter.snapshot()
        outcomes = set()
        for n in range(calls):
            try:
                outcome = store.run("payments", f"k{n}", {"amount_minor": amount},
                                    lambda claim, a=amount: {"posted": a})
                outcomes.add(f"returned {outcome.response}")
            except IdempotencyKeyReuseError:
                outcomes.add("refused (IdempotencyKeyReuseError)")
        rows.append(_row("fasterpay.idempotency", case, outcomes, meter.snapshot() - before, calls))
    return rows


def _row(tool: str, case: str, outcomes: set[str], calls: Any, n: int) -> UnitsRow:
    return UnitsRow(tool, case, "; ".join(sorted(outcomes)), calls.write_units / n, calls.read_units / n,
                    calls.count() // n)


def compare_crash_after_effect(env: Any, *, table_prefix: str = "crash") -> dict[str, int]:
    """Post one transfer, crash after the effect, retry after the lease: how many postings result?

    Powertools: the handler posts through :meth:`Ledger.transfer` with a fresh transfer id per
    invocation (as a handler that makes its own ids would), then the process dies before Powertools
    saves the result. Ours: :class:`TransferService` crashes at the same boundary ("posted").
    """
    dynamodb = env.client("dynamodb")
    results: dict[str, int] = {}

    # Powertools: the record and the effect are two separate writes.
    tables = create_ledger_tables(dynamodb, None, f"{table_prefix}-pt")
    ledger = Ledger(dynamodb, tables)
    ledger.open_account("settlement", "GBP", allow_negative=True)
    ledger.open_account("alice", "GBP")
    ledger.open_account("bob", "GBP")
    ledger.transfer(Transfer("fund", "settlement", "alice", 100_000, "GBP"))
    crashed = [False]

    def effect(event: dict[str, Any]) -> dict[str, Any]:
        attempt = sum(1 for _ in ledger.journal())  # a new id per invocation
        result = ledger.transfer(Transfer(f"pt-{attempt}", "alice", "bob", event["payment"]["amount_minor"], "GBP"))
        if not crashed[0]:
            crashed[0] = True
            raise SimulatedCrash("posted")  # the process dies after the effect, before save_success
        return {"transfer_id": result.transfer_id}

    lease_ms = 50
    handler = _powertools_handler(dynamodb, _powertools_table(dynamodb, f"{table_prefix}-powertools"), effect,
                                  validate=True)
    event = {"idempotency_key": "req-1", "payment": {"amount_minor": 2_500}}
    try:
        handler(event, FakeLambdaContext(remaining_ms=lease_ms))
    except SimulatedCrash:
        pass
    time.sleep(lease_ms / 1000 + 0.05)  # the in-progress record expires with the Lambda's remaining time
    handler(event, FakeLambdaContext(remaining_ms=lease_ms))
    results["Powertools (record apart from the effect)"] = sum(1 for _ in ledger.journal()) - 1

    # Ours: the completion is an item of the ledger transaction.
    tables = create_ledger_tables(dynamodb, None, f"{table_prefix}-ours")
    clock = ManualClock()
    ledger = Ledger(dynamodb, tables, clock=clock)
    ledger.open_account("settlement", "GBP", allow_negative=True)
    ledger.open_account("alice", "GBP")
    ledger.open_account("bob", "GBP")
    ledger.transfer(Transfer("fund", "settlement", "alice", 100_000, "GBP"))
    store = DynamoDbIdempotencyStore(dynamodb, tables.idempotency, lease_seconds=30, clock=clock)
    transfer = Transfer("ours-1", "alice", "bob", 2_500, "GBP")
    crash = CrashPlan("posted")
    ledger.crash = crash
    try:
        TransferService(ledger, store, crash=crash).submit("payments", "req-1", transfer)
    except SimulatedCrash:
        pass
    clock.advance(31)
    TransferService(ledger, store).submit("payments", "req-1", transfer)
    results["fasterpay (completion inside the transaction)"] = sum(1 for _ in ledger.journal()) - 1
    return results
