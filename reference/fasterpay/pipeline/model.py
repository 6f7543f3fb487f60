"""The payment as it travels between stages: tokenised, integer minor units, plain JSON on the queues.

No clear personal data leaves ingest: names and account identifiers are vault tokens. Agents (banks)
are not personal data and stay in clear, because routing needs them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

__all__ = [
    "CLEARING_TIME_LIMITS",
    "Payment",
    "PipelineError",
    "PoisonMessageError",
    "customer_account",
    "to_minor_units",
]

#: The scheme's answer time limits in seconds (UK FPS: 15 s to the sending bank; SEPA Instant: 10 s).
CLEARING_TIME_LIMITS: dict[str, int] = {"uk_fps": 15, "sepa_inst": 10, "internal": 5}


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


@dataclass(frozen=True)
class Payment:
    """One accepted credit transfer, tokenised, as every stage after ingest sees it.

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

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise PoisonMessageError("amount_minor must be an int of minor units")

    @property
    def debtor_ledger_account(self) -> str:
        """The debtor's ledger account."""
        return customer_account(self.debtor_account_token)

    @property
    def suspense_account(self) -> str:
        """Where the authorisation hold sits: one suspense account per scheme and currency."""
        return f"suspense:{self.scheme}:{self.currency}"

    def routed(self, rail: str) -> Payment:
        """The same payment with its rail chosen."""
        return Payment(**{**asdict(self), "rail": rail})

    def to_json(self) -> str:
        """The queue body."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str) -> Payment:
        """Parse a queue body; anything unreadable is a :class:`PoisonMessageError`."""
        try:
            data: dict[str, Any] = json.loads(body)
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise PoisonMessageError(f"not a payment message: {exc}") from None
