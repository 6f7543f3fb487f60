"""The typed message model: what the pipeline reads from a pacs.008 and writes into a pacs.002.

These frozen dataclasses carry the fields a payment pipeline acts on; :mod:`.messages` maps them to and
from the ISO 20022 bindings. Elements of a received message outside this model are still checked against
the schema, but are not carried. Amounts are :class:`~decimal.Decimal` in major units (``Decimal("10.50")``
GBP), never float; the model checks types and shapes only, the validator checks the business rules.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .codes import GroupStatus, TransactionStatus
from .errors import InvalidPaymentError

__all__ = [
    "PACS002_VERSION",
    "PACS008_VERSION",
    "Account",
    "Agent",
    "CreditTransfer",
    "GroupHeader",
    "Pacs002",
    "Pacs008",
    "Party",
    "PaymentType",
    "StatusReason",
    "TransactionStatusReport",
]

PACS008_VERSION = "pacs.008.001.08"
PACS002_VERSION = "pacs.002.001.10"


def _check_types(obj: Any, spec: dict[str, tuple[type, ...]]) -> None:
    for name, allowed in spec.items():
        value = getattr(obj, name)
        if isinstance(value, bool) and bool not in allowed:
            raise InvalidPaymentError(f"{type(obj).__name__}.{name} must be {_names(allowed)}, not bool")
        if not isinstance(value, allowed):
            raise InvalidPaymentError(
                f"{type(obj).__name__}.{name} must be {_names(allowed)}, not {type(value).__name__}"
            )


def _names(types: tuple[type, ...]) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in types)


def _tuple_of(obj: Any, name: str, item_type: type) -> None:
    value = getattr(obj, name)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise InvalidPaymentError(f"{type(obj).__name__}.{name} must be a sequence of {item_type.__name__}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, item_type):
            raise InvalidPaymentError(
                f"{type(obj).__name__}.{name} must hold {item_type.__name__} items, not {type(item).__name__}"
            )
    object.__setattr__(obj, name, items)


_OPT_STR = (str, type(None))


@dataclass(frozen=True)
class PaymentType:
    """``PmtTpInf``: the service level and local instrument that name the scheme.

    ``local_instrument`` is an ISO code (``LclInstrm/Cd``, e.g. ``INST``); ``local_instrument_proprietary``
    is a scheme's own value (``LclInstrm/Prtry``). At most one of the two.

    Examples:
        >>> PaymentType(service_level="SEPA", local_instrument="INST")
        PaymentType(service_level='SEPA', local_instrument='INST', local_instrument_proprietary=None)
    """

    service_level: str | None = None
    local_instrument: str | None = None
    local_instrument_proprietary: str | None = None

    def __post_init__(self) -> None:
        _check_types(self, {f.name: _OPT_STR for f in fields(self)})
        if self.local_instrument is not None and self.local_instrument_proprietary is not None:
            raise InvalidPaymentError("PaymentType: give local_instrument or local_instrument_proprietary, not both")

    def covers(self, other: PaymentType) -> bool:
        """True when every field set here has the same value in ``other`` (used to recognise a scheme)."""
        return all(
            getattr(self, f.name) is None or getattr(self, f.name) == getattr(other, f.name) for f in fields(self)
        )


@dataclass(frozen=True)
class Party:
    """A debtor or creditor (``PartyIdentification135``): name, country and up to 7 address lines."""

    name: str | None = None
    country: str | None = None
    address_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_types(self, {"name": _OPT_STR, "country": _OPT_STR})
        _tuple_of(self, "address_lines", str)


@dataclass(frozen=True)
class Account:
    """A cash account (``CashAccount38``): an IBAN, or another identifier such as a UK account number.

    Exactly one of ``iban`` and ``other_id``; ``other_scheme`` is ``Othr/SchmeNm/Cd`` (e.g. ``BBAN``).

    Examples:
        >>> Account(iban="GB82WEST12345698765432").iban
        'GB82WEST12345698765432'
    """

    iban: str | None = None
    other_id: str | None = None
    other_scheme: str | None = None

    def __post_init__(self) -> None:
        _check_types(self, {f.name: _OPT_STR for f in fields(self)})
        if (self.iban is None) == (self.other_id is None):
            raise InvalidPaymentError("Account: give exactly one of iban and other_id")
        if self.other_scheme is not None and self.other_id is None:
            raise InvalidPaymentError("Account: other_scheme only applies to other_id")


@dataclass(frozen=True)
class Agent:
    """A financial institution (``BranchAndFinancialInstitutionIdentification6``).

    Identified by ``bic`` (``BICFI``) and/or a clearing system member id, e.g. ``clearing_system="GBDSC"``
    (UK sort code) with ``member_id="123456"``.
    """

    bic: str | None = None
    clearing_system: str | None = None
    member_id: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        _check_types(self, {f.name: _OPT_STR for f in fields(self)})
        if self.clearing_system is not None and self.member_id is None:
            raise InvalidPaymentError("Agent: clearing_system needs a member_id")


@dataclass(frozen=True)
class CreditTransfer:
    """One ``CdtTrfTxInf``: the payment itself.

    Examples:
        >>> tx = CreditTransfer(
        ...     end_to_end_id="INV-1", amount=Decimal("10.50"), currency="GBP",
        ...     debtor=Party(name="Ada"), debtor_agent=Agent(bic="NWBKGB2L"),
        ...     creditor_agent=Agent(bic="BARCGB22"), creditor=Party(name="Bob"))
        >>> tx.amount
        Decimal('10.50')
    """

    end_to_end_id: str
    amount: Decimal
    currency: str
    debtor: Party
    debtor_agent: Agent
    creditor_agent: Agent
    creditor: Party
    debtor_account: Account | None = None
    creditor_account: Account | None = None
    instruction_id: str | None = None
    transaction_id: str | None = None
    uetr: str | None = None
    settlement_date: date | None = None
    acceptance_time: datetime | None = None
    charge_bearer: str = "SLEV"
    payment_type: PaymentType | None = None
    remittance: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.amount, float):
            raise InvalidPaymentError(
                "CreditTransfer.amount is a float; money is never float: pass Decimal('10.50') (major units)"
            )
        _check_types(
            self,
            {
                "end_to_end_id": (str,),
                "amount": (Decimal,),
                "currency": (str,),
                "debtor": (Party,),
                "debtor_agent": (Agent,),
                "creditor_agent": (Agent,),
                "creditor": (Party,),
                "debtor_account": (Account, type(None)),
                "creditor_account": (Account, type(None)),
                "instruction_id": _OPT_STR,
                "transaction_id": _OPT_STR,
                "uetr": _OPT_STR,
                "acceptance_time": (datetime, type(None)),
                "charge_bearer": (str,),
                "payment_type": (PaymentType, type(None)),
            },
        )
        if isinstance(self.settlement_date, datetime) or not isinstance(self.settlement_date, (date, type(None))):
            raise InvalidPaymentError("CreditTransfer.settlement_date must be a date (not a datetime) or None")
        if not self.amount.is_finite():
            raise InvalidPaymentError("CreditTransfer.amount must be a finite Decimal, not NaN or Infinity")
        _tuple_of(self, "remittance", str)


@dataclass(frozen=True)
class GroupHeader:
    """``GrpHdr`` of a pacs.008. ``NbOfTxs`` is not stored: it is the number of transactions."""

    msg_id: str
    created_at: datetime
    settlement_method: str = "CLRG"
    instructing_agent: Agent | None = None
    instructed_agent: Agent | None = None

    def __post_init__(self) -> None:
        _check_types(
            self,
            {
                "msg_id": (str,),
                "created_at": (datetime,),
                "settlement_method": (str,),
                "instructing_agent": (Agent, type(None)),
                "instructed_agent": (Agent, type(None)),
            },
        )


@dataclass(frozen=True)
class Pacs008:
    """A pacs.008.001.08 FI to FI customer credit transfer: a group header and one or more transactions.

    Examples:
        >>> from datetime import UTC
        >>> tx = CreditTransfer(end_to_end_id="E1", amount=Decimal("1.00"), currency="EUR",
        ...     debtor=Party(name="A"), debtor_agent=Agent(bic="DEUTDEFF"),
        ...     creditor_agent=Agent(bic="BNPAFRPP"), creditor=Party(name="B"))
        >>> Pacs008(GroupHeader("MSG-1", datetime(2025, 1, 1, tzinfo=UTC)), (tx,)).nb_of_txs
        1
    """

    header: GroupHeader
    transactions: tuple[CreditTransfer, ...]

    def __post_init__(self) -> None:
        _check_types(self, {"header": (GroupHeader,)})
        _tuple_of(self, "transactions", CreditTransfer)
        if not self.transactions:
            raise InvalidPaymentError("Pacs008 needs at least one transaction")

    @property
    def nb_of_txs(self) -> int:
        """The number of transactions (``GrpHdr/NbOfTxs``)."""
        return len(self.transactions)

    @property
    def control_sum(self) -> Decimal:
        """The sum of the interbank settlement amounts, exact."""
        return sum((t.amount for t in self.transactions), Decimal(0))


@dataclass(frozen=True)
class StatusReason:
    """One ``StsRsnInf``: a reason code (``Rsn/Cd``) and up to a few lines of additional information."""

    code: str
    additional_info: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_types(self, {"code": (str,)})
        _tuple_of(self, "additional_info", str)


@dataclass(frozen=True)
class TransactionStatusReport:
    """One ``TxInfAndSts``: the status of one original transaction, named by its original identifiers."""

    status: TransactionStatus
    original_end_to_end_id: str | None = None
    original_instruction_id: str | None = None
    original_transaction_id: str | None = None
    original_uetr: str | None = None
    reasons: tuple[StatusReason, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.status, TransactionStatus):
            try:
                object.__setattr__(self, "status", TransactionStatus(self.status))
            except ValueError:
                known = ", ".join(s.value for s in TransactionStatus)
                raise InvalidPaymentError(f"unknown transaction status {self.status!r}; use one of: {known}") from None
        _check_types(self, {n: _OPT_STR for n in ("original_end_to_end_id", "original_instruction_id",
                                                  "original_transaction_id", "original_uetr")})
        _tuple_of(self, "reasons", StatusReason)


@dataclass(frozen=True)
class Pacs002:
    """A pacs.002.001.10 FI to FI payment status report about one original message.

    Give a ``group_status`` (with ``group_reasons``) for the message as a whole, ``transactions`` for each
    transaction's own status, or both.

    Examples:
        >>> from datetime import UTC
        >>> report = Pacs002("STS-1", datetime(2025, 1, 1, tzinfo=UTC), original_msg_id="MSG-1",
        ...     group_status=GroupStatus.RJCT, group_reasons=(StatusReason("FF01"),))
        >>> report.group_status.value
        'RJCT'
    """

    msg_id: str
    created_at: datetime
    original_msg_id: str
    original_msg_name_id: str = PACS008_VERSION
    original_created_at: datetime | None = None
    original_nb_of_txs: int | None = None
    group_status: GroupStatus | None = None
    group_reasons: tuple[StatusReason, ...] = ()
    transactions: tuple[TransactionStatusReport, ...] = ()
    instructing_agent: Agent | None = None
    instructed_agent: Agent | None = None

    def __post_init__(self) -> None:
        if self.group_status is not None and not isinstance(self.group_status, GroupStatus):
            try:
                object.__setattr__(self, "group_status", GroupStatus(self.group_status))
            except ValueError:
                known = ", ".join(s.value for s in GroupStatus)
                raise InvalidPaymentError(f"unknown group status {self.group_status!r}; use one of: {known}") from None
        _check_types(
            self,
            {
                "msg_id": (str,),
                "created_at": (datetime,),
                "original_msg_id": (str,),
                "original_msg_name_id": (str,),
                "original_created_at": (datetime, type(None)),
                "original_nb_of_txs": (int, type(None)),
                "instructing_agent": (Agent, type(None)),
                "instructed_agent": (Agent, type(None)),
            },
        )
        _tuple_of(self, "group_reasons", StatusReason)
        _tuple_of(self, "transactions", TransactionStatusReport)
        if self.group_status is None and not self.transactions:
            raise InvalidPaymentError("Pacs002 needs a group_status, transaction statuses, or both")
