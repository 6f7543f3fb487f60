"""Transfers, results, events and the ledger's errors. Money is integer minor units with an ISO 4217 code."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "CONSUMER_STEPS",
    "RELAY_STEPS",
    "TRANSFER_STEPS",
    "CrashPlan",
    "CurrencyMismatchError",
    "InsufficientFundsError",
    "InvalidTransferError",
    "LedgerBusyError",
    "LedgerError",
    "OutboxEvent",
    "SimulatedCrash",
    "Transfer",
    "TransferIdReuseError",
    "TransferRefusedError",
    "TransferResult",
    "UnknownAccountError",
    "no_crash",
    "shard_of",
]

_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
MAX_AMOUNT_MINOR = 10**15

#: Step boundaries where a test may crash the process (see :class:`CrashPlan`).
TRANSFER_STEPS = ("claimed", "posted")  # after the idempotency claim; after the ledger transaction committed
RELAY_STEPS = ("read", "sent", "deleted")  # outbox page read; sent to SQS; outbox items deleted
CONSUMER_STEPS = ("received", "applied", "acknowledged")  # message received; effect committed; message deleted


class LedgerError(Exception):
    """Base class of the ledger's errors."""


class InvalidTransferError(LedgerError, ValueError):
    """A transfer or account is malformed (ids, currency, amount); nothing was written."""


class LedgerBusyError(LedgerError):
    """DynamoDB cancelled the transaction for contention or throttling: retry with back-off, same transfer id."""


class TransferRefusedError(LedgerError):
    """The ledger refused the transfer for a business reason; nothing was posted.

    ``reason`` is a stable code; ``replayed`` is True when the refusal is the stored answer to a retry.
    """

    reason = "refused"

    def __init__(self, message: str, *, replayed: bool = False) -> None:
        super().__init__(message)
        self.replayed = replayed


class InsufficientFundsError(TransferRefusedError):
    """The debit account (or, for a sharded account, every shard of it) cannot cover the amount."""

    reason = "insufficient-funds"


class UnknownAccountError(TransferRefusedError):
    """An account of the transfer was never opened."""

    reason = "unknown-account"


class CurrencyMismatchError(TransferRefusedError):
    """The transfer's currency is not the account's currency."""

    reason = "currency-mismatch"


class TransferIdReuseError(TransferRefusedError):
    """The transfer id was posted before with different content: a new transfer needs a new id."""

    reason = "transfer-id-reuse"


REFUSALS: Mapping[str, type[TransferRefusedError]] = {
    cls.reason: cls
    for cls in (InsufficientFundsError, UnknownAccountError, CurrencyMismatchError, TransferIdReuseError)
}


class SimulatedCrash(BaseException):  # noqa: N818 (a crash, not an error: BaseException passes `except Exception`)
    """Raised by a :class:`CrashPlan` at a step boundary, as if the process died there."""

    def __init__(self, step: str) -> None:
        super().__init__(f"simulated crash after step {step!r}")
        self.step = step


class CrashPlan:
    """Crash once at step ``at``; remembers every step boundary passed.

    Examples:
        >>> plan = CrashPlan("posted")
        >>> plan("claimed"); plan.seen
        ['claimed']
    """

    def __init__(self, at: str | None = None, *, times: int = 1) -> None:
        self.at = at
        self.remaining = times
        self.seen: list[str] = []

    def __call__(self, step: str) -> None:
        self.seen.append(step)
        if step == self.at and self.remaining > 0:
            self.remaining -= 1
            raise SimulatedCrash(step)


def no_crash(step: str) -> None:
    """The default crash hook: does nothing."""


def check_id(kind: str, value: object) -> str:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise InvalidTransferError(f"{kind} must be 1-64 characters from [A-Za-z0-9._:-], got {value!r}")
    return value


def check_currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY_RE.fullmatch(value):
        raise InvalidTransferError(f"currency must be an ISO 4217 code such as 'GBP', got {value!r}")
    return value


def shard_of(value: str, shards: int) -> int:
    """A stable shard number in ``range(shards)`` (SHA-256, so the same on every process and run)."""
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big") % shards


@dataclass(frozen=True)
class Transfer:
    """Move ``amount_minor`` of ``currency`` from ``debit_account`` to ``credit_account``.

    ``transfer_id`` identifies the payment for ever (for example its EndToEndId or UETR): posting it
    twice posts it once, and posting it with different content is refused.

    Examples:
        >>> Transfer("e2e-1", "alice", "bob", 1050, "GBP").payload()["amount_minor"]
        1050
    """

    transfer_id: str
    debit_account: str
    credit_account: str
    amount_minor: int
    currency: str
    reference: str = ""

    def __post_init__(self) -> None:
        check_id("transfer_id", self.transfer_id)
        check_id("debit_account", self.debit_account)
        check_id("credit_account", self.credit_account)
        check_currency(self.currency)
        if self.debit_account == self.credit_account:
            raise InvalidTransferError("debit and credit accounts must differ")
        amount = self.amount_minor
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise InvalidTransferError(
                f"amount_minor must be an int of minor units (pence, cents), not {type(amount).__name__}"
            )
        if not 0 < amount <= MAX_AMOUNT_MINOR:
            raise InvalidTransferError(f"amount_minor must be between 1 and {MAX_AMOUNT_MINOR}, got {amount}")
        if not isinstance(self.reference, str) or len(self.reference) > 140:
            raise InvalidTransferError("reference must be a string of at most 140 characters")

    def payload(self) -> dict[str, Any]:
        """The content that the transfer id stands for (its fingerprint is stored with the transfer)."""
        return asdict(self)


@dataclass(frozen=True)
class TransferResult:
    """A posted transfer, as stored in its journal record and replayed to retries."""

    transfer_id: str
    debit_account: str
    credit_account: str
    amount_minor: int
    currency: str
    posted_at: str
    event_id: str
    debit_shard: int = 0
    credit_shard: int = 0
    replayed: bool = False

    def as_response(self) -> dict[str, Any]:
        """The JSON-ready answer stored for replay (``replayed`` is not stored: it describes a call)."""
        data = asdict(self)
        data.pop("replayed")
        return data

    @classmethod
    def from_response(cls, data: Mapping[str, Any], *, replayed: bool) -> TransferResult:
        """Rebuild a result from a stored answer; a stored refusal is raised again."""
        if "refused" in data:
            raise REFUSALS.get(data["refused"], TransferRefusedError)(data.get("message", ""), replayed=True)
        return cls(**{**data, "replayed": replayed})


@dataclass(frozen=True)
class OutboxEvent:
    """What the ledger tells the rest of the system, written in the same transaction as the postings."""

    event_id: str
    type: str
    group: str  # the SQS FIFO message group: events of one debit account stay in order
    body: str  # JSON

    def data(self) -> dict[str, Any]:
        return json.loads(self.body)

    @classmethod
    def transfer_posted(cls, result: TransferResult) -> OutboxEvent:
        body = {"type": "TransferPosted", **result.as_response()}
        return cls(result.event_id, "TransferPosted", result.debit_account,
                   json.dumps(body, sort_keys=True, separators=(",", ":")))


Crash = Callable[[str], None]
