"""The payment as it travels between stages: tokenised, integer minor units, plain JSON on the queues.

No clear personal data leaves ingest: names and account identifiers are vault tokens. Agents (banks)
are not personal data and stay in clear, because routing needs them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from ..ledger import SimulatedCrash  # one crash type for the ledger's and the pipeline's steps

__all__ = [
    "Payment",
    "PipelineError",
    "PoisonMessageError",
    "SimulatedCrash",
    "customer_account",
    "inflight_account",
    "settled_account",
    "to_minor_units",
]


class PipelineError(Exception):
    """Base class of the pipeline's errors."""


class PoisonMessageError(PipelineError):
    """A queue message is not a payment this stage can read; it goes to the DLQ after its retries.

    Fix the producer, then redrive the message with :func:`fasterpay.pipeline.runner.redrive`.
    """


def to_minor_units(amount: Decimal, exponent: int) -> int:
    """Decimal major units to integer minor units, exactly (refuses a fraction of a minor unit).

    Examples:
        >>> to_minor_units(Decimal("10.50"), 2)
        1050
    """
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__}: money is never float")
    minor = amount.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} has more decimals than the currency's {exponent}: validate it first")
    return int(minor)


def customer_account(token: str) -> str:
    """The ledger account id of a customer, from the deterministic token of their account identifier.

    Examples:
        >>> customer_account("dtk_iban_abcdefghijklmnopqrstuvwxyz234567")
        'cust:dtk.iban.abcdefghijklmnopqrstuvwxyz234567'
    """
    return "cust:" + token.replace("_", ".")


def inflight_account(rail: str, currency: str) -> str:
    """Where held and cleared money sits until its cycle settles (or, for a book transfer, it is credited).

    Its balance is *derived*: the holds recorded on the payment items (each payment item is the journal
    entry of its own hold), plus the stored balance item, which only settlement and book transfers
    debit. So no hot balance item takes a write per payment.

    Examples:
        >>> inflight_account("uk_fps", "GBP")
        'inflight:uk_fps:GBP'
    """
    return f"inflight:{rail}:{currency}"


def settled_account(rail: str, currency: str) -> str:
    """Money handed over at settlement (the rail's central account, here on our books).

    Examples:
        >>> settled_account("sepa_inst", "EUR")
        'settled:sepa_inst:EUR'
    """
    return f"settled:{rail}:{currency}"


@dataclass(frozen=True)
class Payment:
    """One accepted credit transfer, tokenised, as every step after ingest sees it.

    Examples:
        >>> p = Payment("u-1", "E2E-1", "MSG-1", "uk_fps", 1050, "GBP", 2, "dtk_iban_a", "tok_iban_b",
        ...             "dtk_name_c", "dtk_name_d", "BARCGB22", "NWBKGB2L", 1_800_000_000.0)
        >>> Payment.from_json(p.to_json()) == p
        True
    """

    uetr: str
    end_to_end_id: str
    msg_id: str
    scheme: str
    amount_minor: int
    currency: str
    exponent: int
    debtor_account_token: str
    creditor_account_token: str
    debtor_name_token: str
    creditor_name_token: str
    debtor_agent: str
    creditor_agent: str
    accepted_at: float
    rail: str = ""
    submission_id: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise PoisonMessageError("amount_minor must be an int of minor units")
        if self.amount_minor <= 0:
            raise PoisonMessageError("amount_minor must be positive")
        for name in ("uetr", "currency", "debtor_account_token", "creditor_account_token"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise PoisonMessageError(f"{name} must be a non-empty string")

    @property
    def debtor_ledger_account(self) -> str:
        """The debtor's ledger account."""
        return customer_account(self.debtor_account_token)

    @property
    def creditor_ledger_account(self) -> str:
        """The creditor's ledger account (only a book transfer credits it on our ledger)."""
        return customer_account(self.creditor_account_token)

    @property
    def amount(self) -> Decimal:
        """The amount in major units, exactly."""
        return Decimal(self.amount_minor).scaleb(-self.exponent)

    def to_json(self) -> str:
        """The queue body."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str) -> Payment:
        """Parse a queue body; anything unreadable is a :class:`PoisonMessageError`."""
        try:
            data: dict[str, Any] = json.loads(body)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise PoisonMessageError(f"not a payment message: {exc}") from None
