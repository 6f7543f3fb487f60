"""A double-entry ledger on DynamoDB with exactly-once effects: one transaction per transfer (debit,
credit, transfer record, outbox event), an outbox relay to SQS FIFO and a deduplicating consumer.

Copy ``ledger/`` with ``idempotency/``; they need boto3 only (``stack.py`` also uses :mod:`fasterpay.aws`).
The benches and the Powertools comparison are not part of the pattern: they live in
``simulations/ledger_bench.py`` and ``simulations/powertools_compare.py``.
"""

from .consumer import ConsumerReport, DeduplicatingConsumer, read_projection, statement_projection
from .core import Account, Balance, Ledger, LedgerTables, Reconciliation, create_ledger_tables
from .model import (
    CONSUMER_STEPS,
    RELAY_STEPS,
    TRANSFER_STEPS,
    CrashPlan,
    CurrencyMismatchError,
    InsufficientFundsError,
    InvalidTransferError,
    LedgerBusyError,
    LedgerError,
    OutboxEvent,
    SimulatedCrash,
    Transfer,
    TransferIdReuseError,
    TransferRefusedError,
    TransferResult,
    UnknownAccountError,
    no_crash,
    shard_of,
)
from .outbox import OutboxRelay, RelayReport
from .service import TransferService

#: Folders and modules to copy with this folder, into the same parent package: the copy test copies
#: exactly these and runs the quick start.
__copy_with__: tuple[str, ...] = ("idempotency", "aws.py", "cloudformation")

__all__ = [
    "CONSUMER_STEPS", "RELAY_STEPS", "TRANSFER_STEPS", "Account", "Balance", "ConsumerReport", "CrashPlan",
    "CurrencyMismatchError", "DeduplicatingConsumer", "InsufficientFundsError", "InvalidTransferError",
    "Ledger", "LedgerBusyError", "LedgerError", "LedgerTables", "OutboxEvent", "OutboxRelay", "Reconciliation",
    "RelayReport", "SimulatedCrash", "Transfer", "TransferIdReuseError", "TransferRefusedError",
    "TransferResult", "TransferService", "UnknownAccountError", "create_ledger_tables", "no_crash",
    "read_projection", "shard_of", "statement_projection",
]
