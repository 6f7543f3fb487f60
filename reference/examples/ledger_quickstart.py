"""Quick start for idempotency and the double-entry ledger, as shown in the article (every block here is
tested by tests/test_ledger_examples.py).

Run it with ``python reference/examples/ledger_quickstart.py``: it uses moto unless FASTERPAY_BACKEND says
otherwise.
"""

from __future__ import annotations

from typing import Any

# --8<-- [start:setup]
from fasterpay.aws import AwsEnvironment, Backend, open_environment
from fasterpay.idempotency import DynamoDbIdempotencyStore
from fasterpay.ledger import Ledger, LedgerTables, Transfer, TransferService
from fasterpay.ledger.stack import deploy_ledger


def set_up(env: AwsEnvironment) -> tuple[LedgerTables, Ledger, TransferService]:
    dynamodb = env.client("dynamodb")
    tables = deploy_ledger(env.client("cloudformation"), dynamodb=dynamodb,
                           on_moto=env.backend is not Backend.AWS).tables
    ledger = Ledger(dynamodb, tables)
    ledger.open_account("settlement", "GBP", allow_negative=True)  # (1)!
    ledger.open_account("alice", "GBP")
    ledger.open_account("coffee-shop", "GBP", shards=8)  # (2)!
    ledger.transfer(Transfer("fund-alice", "settlement", "alice", 50_00, "GBP"))
    store = DynamoDbIdempotencyStore(dynamodb, tables.idempotency,
                                     lease_seconds=30, retention_seconds=7 * 86_400)  # (3)!
    return tables, ledger, TransferService(ledger, store)
# --8<-- [end:setup]


# --8<-- [start:submit]
def submit_twice(service: TransferService) -> tuple[Any, Any]:
    coffee = Transfer("E2E-20261128-0001", "alice", "coffee-shop", 3_20, "GBP",
                      reference="flat white")
    first = service.submit("bank-a", "9d1c6a0e-req", coffee)  # (1)!
    retry = service.submit("bank-a", "9d1c6a0e-req", coffee)  # (2)!
    assert retry.replayed and retry.posted_at == first.posted_at
    return first, retry
# --8<-- [end:submit]


# --8<-- [start:refusals]
from fasterpay.idempotency import IdempotencyKeyReuseError  # noqa: E402
from fasterpay.ledger import InsufficientFundsError, TransferIdReuseError  # noqa: E402


def refusals(ledger: Ledger, service: TransferService) -> dict[str, str]:
    bigger = Transfer("E2E-20261128-0001", "alice", "coffee-shop", 32_00, "GBP")
    too_big = Transfer("E2E-20261128-0002", "alice", "coffee-shop", 500_00, "GBP")
    attempts = {
        "same key, other payload": lambda: service.submit("bank-a", "9d1c6a0e-req", bigger),  # (1)!
        "same transfer id, other content": lambda: ledger.transfer(bigger),  # (2)!
        "overdraft": lambda: service.submit("bank-a", "5b7e-req", too_big),  # (3)!
    }
    refused = {}
    for case, attempt in attempts.items():
        try:
            attempt()
        except (IdempotencyKeyReuseError, TransferIdReuseError, InsufficientFundsError) as error:
            refused[case] = type(error).__name__
    return refused
# --8<-- [end:refusals]


# --8<-- [start:deliver]
from fasterpay.ledger import DeduplicatingConsumer, OutboxRelay, statement_projection  # noqa: E402


def deliver(env: AwsEnvironment, tables: LedgerTables) -> tuple[int, int]:
    dynamodb, sqs = env.client("dynamodb"), env.client("sqs")
    relay = OutboxRelay(dynamodb, sqs, outbox_table=tables.outbox, queue_url=tables.queue_url)
    sent = relay.drain().sent  # (1)!
    consumer = DeduplicatingConsumer(dynamodb, sqs, queue_url=tables.queue_url,
                                     table=tables.consumer, name="statements",
                                     apply=statement_projection(tables.consumer))
    applied = consumer.drain().applied  # (2)!
    return sent, applied
# --8<-- [end:deliver]


def main() -> dict[str, Any]:
    with open_environment() as env:
        tables, ledger, service = set_up(env)
        first, retry = submit_twice(service)
        refused = refusals(ledger, service)
        sent, applied = deliver(env, tables)
        return {
            "transfer_id": first.transfer_id,
            "replayed": retry.replayed,
            "alice": ledger.balance("alice").balance_minor,
            "coffee_shop": ledger.balance("coffee-shop").balance_minor,
            "refusals": refused,
            "sent": sent,
            "applied": applied,
            "balanced": ledger.reconcile().balanced,
        }


if __name__ == "__main__":
    print(main())
