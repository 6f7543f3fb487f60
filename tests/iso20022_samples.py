"""Sample payments for the ISO 20022 tests: one valid message per scheme, and a way to break it on purpose."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fasterpay.iso20022 import (
    SEPA_INST,
    UK_FPS,
    Account,
    Agent,
    CreditTransfer,
    GroupHeader,
    Pacs008,
    Party,
    build_pacs008,
)

CREATED = datetime(2025, 6, 2, 9, 30, 15, tzinfo=UTC)
UETR = "8a562c67-ca16-48ba-b074-65581be6f011"
GB_IBAN_1 = "GB82WEST12345698765432"
GB_IBAN_2 = "GB29NWBK60161331926819"
DE_IBAN = "DE89370400440532013000"
FR_IBAN = "FR1420041010050500013M02606"


def fps_transfer(**changes: Any) -> CreditTransfer:
    """A valid UK Faster Payment: IBAN to sort code and account number."""
    tx = CreditTransfer(
        end_to_end_id="E2E-FPS-1",
        amount=Decimal("250.00"),
        currency="GBP",
        debtor=Party(name="Ada Lovelace", country="GB"),
        debtor_agent=Agent(bic="WESTGB2L"),
        creditor_agent=Agent(clearing_system="GBDSC", member_id="601613"),
        creditor=Party(name="Alan Turing"),
        debtor_account=Account(iban=GB_IBAN_1),
        creditor_account=Account(other_id="31926819"),
        instruction_id="INS-FPS-1",
        transaction_id="TX-FPS-1",
        uetr=UETR,
        payment_type=UK_FPS.payment_type,
        remittance=("Invoice 2025-001",),
    )
    return replace(tx, **changes)


def sepa_transfer(**changes: Any) -> CreditTransfer:
    """A valid SEPA Instant credit transfer."""
    tx = CreditTransfer(
        end_to_end_id="E2E-SEPA-1",
        amount=Decimal("1999.99"),
        currency="EUR",
        debtor=Party(name="Grace Hopper", country="DE"),
        debtor_agent=Agent(bic="COBADEFF"),
        creditor_agent=Agent(bic="BNPAFRPP"),
        creditor=Party(name="Edsger Dijkstra", country="FR"),
        debtor_account=Account(iban=DE_IBAN),
        creditor_account=Account(iban=FR_IBAN),
        instruction_id="INS-SEPA-1",
        transaction_id="TX-SEPA-1",
        uetr="0f0ba1d5-5f6b-4bd4-9a5c-7d3d0c0e2f11",
        settlement_date=date(2025, 6, 2),
        acceptance_time=CREATED,
        payment_type=SEPA_INST.payment_type,
    )
    return replace(tx, **changes)


def message(*transactions: CreditTransfer, msg_id: str = "MSG-1", **header: Any) -> Pacs008:
    """A pacs.008 with the given transactions (one valid FPS payment by default)."""
    return Pacs008(GroupHeader(msg_id=msg_id, created_at=CREATED, **header), transactions or (fps_transfer(),))


def xml(*transactions: CreditTransfer, check: bool = True, **kwargs: Any) -> bytes:
    """The bytes of :func:`message`."""
    return build_pacs008(message(*transactions, **kwargs), check=check)


def edit(data: bytes, old: bytes, new: bytes, count: int = 1) -> bytes:
    """Replace ``old`` with ``new`` in a built message, failing loudly if ``old`` is not there."""
    assert data.count(old) >= count, f"{old!r} not found {count} time(s)"
    return data.replace(old, new, count)
