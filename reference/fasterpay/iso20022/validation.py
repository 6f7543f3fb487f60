"""Layered validation of pacs.008 messages, with an ISO 20022 reason code for every rejection.

The message as a whole passes these layers in order, and is rejected (group status RJCT) at the first
that fails:

1. size, UTF-8, well-formed XML without DTD or entities (:mod:`.xmlsafe`) -> FF01
2. root element and namespace: a ``Document`` of pacs.008.001.08 -> FF01
3. structure of the document and the group header against the message model (:mod:`.structure`) -> FF01
4. group consistency: ``NbOfTxs`` (AM19), ``CtrlSum`` and ``TtlIntrBkSttlmAmt`` (AM16), agent BICs (RC01)
5. duplicate ``MsgId`` (DU01)

Then each transaction passes its own layers and is rejected alone, so one bad payment does not stop the
others (group status PART):

1. structure against the message model -> FF01 (AC01 for an IBAN, RC01 a BIC, AM12 the amount or CH20 past
   5 decimals, AM11 its currency)
2. scheme: the payment type must name a configured scheme -> FF03
3. fields the scheme requires (:class:`~.schemes.RequiredField`, e.g. RR02 debtor name)
4. currency: ISO 4217 with minor units (AM11), settled by the scheme (AM03)
5. amount: not zero (AM01), no more decimals than the currency has (CH20), within the scheme limit (AM02)
6. identifiers: IBAN check digits and format, UK account number (AC01); the scheme's account rule (a GB
   account for UK FPS, a SEPA-zone IBAN for SEPA Instant: AC02 debtor, AC03 creditor); BIC (RC01); sort
   code (RC08)
7. duplicate ``EndToEndId`` (DU04), recorded only for a transaction that passed everything else
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element

from iso4217 import Currency
from pyiso20022.pacs import pacs_008_001_08 as p8
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from .codes import GroupStatus, ReasonCode, TransactionStatus
from .duplicates import DuplicateDetector, InMemoryDuplicateDetector
from .errors import MessageFormatError, Rejection
from .messages import (
    PACS008_NAMESPACE,
    bind,
    check_root,
    credit_transfer_from_binding,
    group_header_from_binding,
)
from .model import (
    Account,
    Agent,
    CreditTransfer,
    GroupHeader,
    Pacs002,
    StatusReason,
    TransactionStatusReport,
)
from .schemes import SCHEMES, SchemeRules, scheme_for
from .structure import check_element
from .xmlsafe import DEFAULT_MAX_MESSAGE_BYTES, parse_xml

__all__ = [
    "NOT_PROVIDED",
    "Pacs008Validator",
    "TransactionOutcome",
    "ValidationReport",
    "currency_exponent",
]

#: What a pacs.002 names as the original MsgId when the message was unreadable.
NOT_PROVIDED = "NOTPROVIDED"

_NS = {"p": PACS008_NAMESPACE}
_DOCUMENT = "/Document"
_BODY = "/Document/FIToFICstmrCdtTrf"
_GROUP = f"{_BODY}/GrpHdr"
_UETR = re.compile(r"[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}")
_SORT_CODE = re.compile(r"[0-9]{6}")
_UK_ACCOUNT = re.compile(r"[0-9]{8}")
_UK_SORT_CODE_SYSTEM = "GBDSC"


def currency_exponent(code: str) -> int | None:
    """The ISO 4217 minor-unit exponent of a currency, or None if it is not a currency with minor units.

    Examples:
        >>> currency_exponent("GBP"), currency_exponent("JPY"), currency_exponent("BHD")
        (2, 0, 3)
        >>> currency_exponent("XAU") is None, currency_exponent("ABC") is None
        (True, True)
    """
    try:
        return Currency(code).exponent
    except ValueError:
        return None


@dataclass(frozen=True)
class TransactionOutcome:
    """What happened to one ``CdtTrfTxInf``: accepted (ACTC) with its typed model, or rejected with reasons.

    The identifiers are read from the message even when it is rejected, where they are usable in a pacs.002.
    """

    index: int
    status: TransactionStatus
    rejections: tuple[Rejection, ...] = ()
    transaction: CreditTransfer | None = None
    scheme: str | None = None
    end_to_end_id: str | None = None
    instruction_id: str | None = None
    transaction_id: str | None = None
    uetr: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the transaction passed every layer."""
        return self.status is TransactionStatus.ACTC

    @property
    def reason(self) -> ReasonCode | None:
        """The reason code of the first rejection, or None when accepted."""
        return self.rejections[0].reason if self.rejections else None


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one message: group-level rejections and one outcome per transaction."""

    msg_id: str | None
    group_rejections: tuple[Rejection, ...]
    transactions: tuple[TransactionOutcome, ...]
    header: GroupHeader | None = None
    size_bytes: int = 0

    @property
    def group_status(self) -> GroupStatus:
        """RJCT if the message or every transaction was rejected, ACTC if all passed, PART otherwise."""
        if self.group_rejections or not self.transactions:
            return GroupStatus.RJCT
        accepted = sum(1 for t in self.transactions if t.accepted)
        if accepted == len(self.transactions):
            return GroupStatus.ACTC
        return GroupStatus.PART if accepted else GroupStatus.RJCT

    @property
    def accepted(self) -> tuple[CreditTransfer, ...]:
        """The typed transactions that passed, in message order."""
        return tuple(t.transaction for t in self.transactions if t.accepted and t.transaction is not None)

    @property
    def rejections(self) -> tuple[Rejection, ...]:
        """Every rejection: the group's, then each transaction's own."""
        own = tuple(r for t in self.transactions for r in t.rejections if r not in self.group_rejections)
        return self.group_rejections + own

    @property
    def reason_codes(self) -> tuple[ReasonCode, ...]:
        """The distinct reason codes, in the order they were found."""
        return tuple(dict.fromkeys(r.reason for r in self.rejections))

    def to_pacs002(
        self,
        msg_id: str,
        created_at: datetime,
        *,
        instructing_agent: Agent | None = None,
        instructed_agent: Agent | None = None,
    ) -> Pacs002:
        """The pacs.002 that answers this message: group status, and each transaction's status and reasons.

        A message rejected as a whole carries its reasons at group level only; otherwise every transaction
        is listed with ACTC or RJCT and its reasons (message and path in ``AddtlInf``).

        Examples:
            >>> from datetime import UTC
            >>> report = Pacs008Validator().validate(b"<not xml")
            >>> status = report.to_pacs002("STS-1", datetime(2025, 1, 1, tzinfo=UTC))
            >>> status.original_msg_id, status.group_status.value, status.group_reasons[0].code.value
            ('NOTPROVIDED', 'RJCT', 'FF01')
        """
        header = self.header
        transactions: tuple[TransactionStatusReport, ...] = ()
        if not self.group_rejections:
            transactions = tuple(
                TransactionStatusReport(
                    status=t.status,
                    original_end_to_end_id=t.end_to_end_id,
                    original_instruction_id=t.instruction_id,
                    original_transaction_id=t.transaction_id,
                    original_uetr=t.uetr,
                    reasons=tuple(_status_reason(r) for r in t.rejections),
                )
                for t in self.transactions
            )
        return Pacs002(
            msg_id=msg_id,
            created_at=created_at,
            original_msg_id=self.msg_id or NOT_PROVIDED,
            original_created_at=header.created_at if header else None,
            original_nb_of_txs=len(self.transactions) if self.transactions else None,
            group_status=self.group_status,
            group_reasons=tuple(_status_reason(r) for r in self.group_rejections),
            transactions=transactions,
            instructing_agent=instructing_agent,
            instructed_agent=instructed_agent,
        )


def _status_reason(rejection: Rejection) -> StatusReason:
    info = [rejection.message[:105]]
    if rejection.path != "/":
        info.append(rejection.path[-105:])
    return StatusReason(code=rejection.reason, additional_info=tuple(info))


def _usable_id(text: str | None) -> str | None:
    """An identifier read from a message, if it fits the pacs.002 (1-35 characters)."""
    return text if text is not None and 1 <= len(text) <= 35 else None


def _ids(element: Element) -> dict[str, str | None]:
    uetr = element.findtext("p:PmtId/p:UETR", namespaces=_NS)
    return {
        "end_to_end_id": _usable_id(element.findtext("p:PmtId/p:EndToEndId", namespaces=_NS)),
        "instruction_id": _usable_id(element.findtext("p:PmtId/p:InstrId", namespaces=_NS)),
        "transaction_id": _usable_id(element.findtext("p:PmtId/p:TxId", namespaces=_NS)),
        "uetr": uetr if uetr is not None and _UETR.fullmatch(uetr) else None,
    }


def _ns_path(path: str) -> str:
    return "/".join(f"p:{part}" for part in path.split("/"))


_XSD_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_AMOUNT_DIGITS = 18  #: totalDigits of ActiveCurrencyAndAmount: anything longer is refused by the structure check


def _raw_amount(element: Element) -> Decimal | None:
    """The interbank settlement amount as written, if it is an ``xs:decimal`` of at most 18 digits.

    Read before the transaction's own structure check (which rejects anything else), so it must not trust
    the text: ``1e999999999`` is not an ``xs:decimal``, and summing it would overflow.
    """
    text = element.findtext("p:IntrBkSttlmAmt", namespaces=_NS)
    if text is None or not _XSD_DECIMAL.fullmatch(text.strip()):
        return None
    digits = sum(c.isdigit() for c in text.strip().lstrip("+-").lstrip("0"))
    if digits > _AMOUNT_DIGITS + 5:  # generous: trailing zeros of the fraction do not count in XSD
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:  # pragma: no cover - the pattern allows only decimals
        return None


class Pacs008Validator:
    """Validates pacs.008.001.08 messages layer by layer; never raises for bad input, it reports it.

    Args:
        duplicates: where MsgId and EndToEndId are recorded (in memory unless given; the pipeline passes
            the DynamoDB-backed detector).
        schemes: the scheme rules a transaction may match by its payment type.
        max_message_bytes: messages larger than this are rejected (FF01) before parsing.

    Examples:
        >>> validator = Pacs008Validator()
        >>> validator.validate(b"<Document/>").reason_codes
        (<ReasonCode.FF01: 'FF01'>,)
    """

    def __init__(
        self,
        *,
        duplicates: DuplicateDetector | None = None,
        schemes: Iterable[SchemeRules] = tuple(SCHEMES.values()),
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.duplicates: DuplicateDetector = duplicates if duplicates is not None else InMemoryDuplicateDetector()
        self.schemes: dict[str, SchemeRules] = {s.name: s for s in schemes}
        self.max_message_bytes = max_message_bytes

    # -- public ------------------------------------------------------------------------------------------
    def validate(self, xml_bytes: bytes, *, scheme: str | SchemeRules | None = None) -> ValidationReport:
        """Validate one message. ``scheme`` forces the rules (the channel knows the scheme); otherwise each
        transaction's payment type selects them.

        Bad input never raises: it comes back as rejections. Only a caller's mistake does (``xml_bytes``
        that is not bytes: :class:`~.errors.InvalidPaymentError`; an unknown scheme name:
        :class:`~.schemes.UnknownSchemeError`).

        Examples:
            >>> report = Pacs008Validator().validate(b"<Document/>")
            >>> report.group_status.value, report.rejections[0].message
            ('RJCT', 'namespace is not the ISO 20022 namespace of pacs.008.001.08')
        """
        forced = scheme_for(scheme, self.schemes) if scheme is not None else None
        size = len(xml_bytes) if isinstance(xml_bytes, (bytes, bytearray, memoryview)) else 0
        try:
            root = parse_xml(xml_bytes, max_bytes=self.max_message_bytes)
        except MessageFormatError as exc:
            return ValidationReport(None, exc.rejections, (), size_bytes=size)
        problems = check_root(root, PACS008_NAMESPACE)
        if problems:
            return ValidationReport(None, tuple(problems), (), size_bytes=size)

        problems = check_element(root, p8.Document, _DOCUMENT, skip=frozenset({"FIToFICstmrCdtTrf"}))
        body = root.find("p:FIToFICstmrCdtTrf", _NS)
        tx_elements: list[Element] = [] if body is None else body.findall("p:CdtTrfTxInf", _NS)
        msg_id = _usable_id(body.findtext("p:GrpHdr/p:MsgId", namespaces=_NS)) if body is not None else None
        if body is not None and not problems:
            problems = check_element(body, p8.FitoFicustomerCreditTransferV08, _BODY,
                                     skip=frozenset({"CdtTrfTxInf"}))
        if problems or body is None:
            return self._group_rejected(msg_id, problems, tx_elements, None, size)

        group_element = body.find("p:GrpHdr", _NS)
        assert group_element is not None  # the structure check requires it
        group = bind(group_element, p8.GroupHeader93)
        assert isinstance(group, p8.GroupHeader93)
        header = group_header_from_binding(group)
        problems = self._check_group(group, tx_elements)
        if not problems and self.duplicates.seen_message(header.msg_id):
            problems = [Rejection(ReasonCode.DU01, f"{_GROUP}/MsgId",
                                  "a message with this MsgId was received before; do not send it again")]
        if problems:
            return self._group_rejected(header.msg_id, problems, tx_elements, header, size)

        outcomes = tuple(
            self._check_transaction(element, index, group, group_element, forced)
            for index, element in enumerate(tx_elements, start=1)
        )
        return ValidationReport(header.msg_id, (), outcomes, header=header, size_bytes=size)

    def validate_batch(
        self, messages: Iterable[bytes], *, scheme: str | SchemeRules | None = None
    ) -> list[ValidationReport]:
        """Validate each message on its own, in order; a bad message never affects the others.

        Examples:
            >>> reports = Pacs008Validator().validate_batch([b"<a>", b""])
            >>> [r.reason_codes for r in reports]
            [(<ReasonCode.FF01: 'FF01'>,), (<ReasonCode.FF01: 'FF01'>,)]
        """
        return [self.validate(message, scheme=scheme) for message in messages]

    # -- group layers ------------------------------------------------------------------------------------
    @staticmethod
    def _group_rejected(
        msg_id: str | None,
        problems: list[Rejection],
        tx_elements: list[Element],
        header: GroupHeader | None,
        size: int,
    ) -> ValidationReport:
        reasons = tuple(problems)
        outcomes = tuple(
            TransactionOutcome(index, TransactionStatus.RJCT, reasons, **_ids(element))
            for index, element in enumerate(tx_elements, start=1)
        )
        return ValidationReport(msg_id, reasons, outcomes, header=header, size_bytes=size)

    @staticmethod
    def _check_group(group: p8.GroupHeader93, tx_elements: list[Element]) -> list[Rejection]:
        problems: list[Rejection] = []
        if int(group.nb_of_txs) != len(tx_elements):
            problems.append(Rejection(ReasonCode.AM19, f"{_GROUP}/NbOfTxs",
                                      f"NbOfTxs is {int(group.nb_of_txs)} but the message has "
                                      f"{len(tx_elements)} transaction(s)"))
        amounts = [_raw_amount(e) for e in tx_elements]
        if all(a is not None for a in amounts):
            total = sum((a for a in amounts if a is not None), Decimal(0))
            if group.ctrl_sum is not None and group.ctrl_sum != total:
                problems.append(Rejection(ReasonCode.AM16, f"{_GROUP}/CtrlSum",
                                          "CtrlSum is not the sum of the transactions' interbank settlement amounts"))
            if group.ttl_intr_bk_sttlm_amt is not None and group.ttl_intr_bk_sttlm_amt.value != total:
                problems.append(Rejection(ReasonCode.AM16, f"{_GROUP}/TtlIntrBkSttlmAmt",
                                          "TtlIntrBkSttlmAmt is not the sum of the interbank settlement amounts"))
        for label, agent in (("InstgAgt", group.instg_agt), ("InstdAgt", group.instd_agt)):
            bic = agent.fin_instn_id.bicfi if agent is not None else None
            if bic is not None and not _bic_ok(bic):
                problems.append(Rejection(ReasonCode.RC01, f"{_GROUP}/{label}/FinInstnId/BICFI",
                                          f"{label} BIC has an unknown country code or a wrong format"))
        return problems

    # -- transaction layers ------------------------------------------------------------------------------
    def _check_transaction(
        self,
        element: Element,
        index: int,
        group: p8.GroupHeader93,
        group_element: Element,
        forced: SchemeRules | None,
    ) -> TransactionOutcome:
        path = f"{_BODY}/CdtTrfTxInf[{index}]"
        ids = _ids(element)

        def rejected(problems: list[Rejection], scheme: str | None = None) -> TransactionOutcome:
            return TransactionOutcome(index, TransactionStatus.RJCT, tuple(problems), scheme=scheme, **ids)

        problems = check_element(element, p8.CreditTransferTransaction39, path)
        if problems:
            return rejected(problems)
        try:
            binding = bind(element, p8.CreditTransferTransaction39)
        except MessageFormatError as exc:  # pragma: no cover - the structure check comes first
            return rejected(list(exc.rejections))
        assert isinstance(binding, p8.CreditTransferTransaction39)
        tx = credit_transfer_from_binding(binding, group)

        rules = forced or next((s for s in self.schemes.values() if s.identifies(tx.payment_type)), None)
        if rules is None:
            known = ", ".join(self.schemes)
            return rejected([Rejection(ReasonCode.FF03, f"{path}/PmtTpInf",
                                       f"the payment type names none of the configured schemes ({known})")])

        layers: tuple[Callable[[], list[Rejection]], ...] = (
            lambda: _check_required(rules, element, group_element, path),
            lambda: _check_currency(rules, tx, path),
            lambda: _check_amount(rules, tx, path),
            lambda: _check_identifiers(rules, tx, path),
        )
        for layer in layers:
            problems = layer()
            if problems:
                return rejected(problems, rules.name)
        if self.duplicates.seen_end_to_end(tx.end_to_end_id):
            return rejected([Rejection(ReasonCode.DU04, f"{path}/PmtId/EndToEndId",
                                       "a payment with this EndToEndId was accepted before")], rules.name)
        return TransactionOutcome(index, TransactionStatus.ACTC, (), tx, rules.name, **ids)


def _check_required(rules: SchemeRules, element: Element, group_element: Element, path: str) -> list[Rejection]:
    problems = []
    for field in rules.required:
        present = any(
            element.find(_ns_path(alt), _NS) is not None
            or (field.from_group and group_element.find(_ns_path(alt), _NS) is not None)
            for alt in field.alternatives
        )
        if not present:
            problems.append(Rejection(field.reason, f"{path}/{field.alternatives[0]}",
                                      f"{rules.name} requires {' or '.join(field.alternatives)}"))
    return problems


def _check_currency(rules: SchemeRules, tx: CreditTransfer, path: str) -> list[Rejection]:
    where = f"{path}/IntrBkSttlmAmt/@Ccy"
    if currency_exponent(tx.currency) is None:
        return [Rejection(ReasonCode.AM11, where, f"{tx.currency} is not an ISO 4217 currency with minor units")]
    if tx.currency not in rules.currencies:
        allowed = ", ".join(sorted(rules.currencies))
        return [Rejection(ReasonCode.AM03, where, f"{rules.name} settles {allowed} only, not {tx.currency}")]
    return []


def _check_amount(rules: SchemeRules, tx: CreditTransfer, path: str) -> list[Rejection]:
    where = f"{path}/IntrBkSttlmAmt"
    exponent = currency_exponent(tx.currency)
    assert exponent is not None  # the currency layer ran first
    if tx.amount == 0:
        return [Rejection(ReasonCode.AM01, where, "the amount is zero")]
    places = -int(tx.amount.normalize().as_tuple().exponent)
    if places > exponent:
        return [Rejection(ReasonCode.CH20, where,
                          f"{tx.currency} has {exponent} decimal place(s); the amount has {places}")]
    if rules.max_amount is not None and tx.amount > rules.max_amount:
        return [Rejection(rules.limit_reason, where,
                          f"the amount is over the {rules.name} limit of {rules.max_amount} per payment")]
    return []


def _bic_ok(bic: str) -> bool:
    try:
        BIC(bic)
    except SchwiftyException:
        return False
    return bic == bic.upper()


def _check_identifiers(rules: SchemeRules, tx: CreditTransfer, path: str) -> list[Rejection]:
    problems = []
    sides = (("Dbtr", tx.debtor_account, tx.debtor_agent), ("Cdtr", tx.creditor_account, tx.creditor_agent))
    for side, account, agent in sides:
        problems += _check_account(rules, account, agent, f"{path}/{side}Acct/Id", side)
        problems += _check_agent(agent, f"{path}/{side}Agt/FinInstnId", side)
    return problems


def _check_account(rules: SchemeRules, account: Account | None, agent: Agent, where: str, side: str) -> list[Rejection]:
    if account is None:
        return []
    if account.iban is not None:
        if "iban" not in rules.account_kinds:
            return [Rejection(ReasonCode.AC01, f"{where}/IBAN", f"{rules.name} does not take IBANs")]
        try:
            iban = IBAN(account.iban)  # parsed once: the zone check reads the same object
        except SchwiftyException as exc:
            return [Rejection(ReasonCode.AC01, f"{where}/IBAN", f"{side} IBAN is invalid ({type(exc).__name__})")]
        return _check_account_zone(rules, iban, f"{where}/IBAN", side)
    if "uk_account" not in rules.account_kinds:
        return [Rejection(ReasonCode.AC01, f"{where}/Othr", f"{rules.name} requires an IBAN")]
    if not _UK_ACCOUNT.fullmatch(account.other_id or ""):
        return [Rejection(ReasonCode.AC01, f"{where}/Othr/Id", f"{side} UK account number must be 8 digits")]
    if agent.clearing_system != _UK_SORT_CODE_SYSTEM:
        return [Rejection(ReasonCode.RC08, f"{where.rsplit('/', 2)[0]}/{side}Agt/FinInstnId/ClrSysMmbId",
                          f"a UK account number needs the {side} agent's sort code "
                          f"(ClrSysId/Cd {_UK_SORT_CODE_SYSTEM})")]
    return []


def _check_account_zone(rules: SchemeRules, iban: IBAN, where: str, side: str) -> list[Rejection]:
    """The scheme's account rule: FPS moves money between UK accounts, SEPA Instant within the SEPA zone.

    A breach is AC02 for the debtor's account and AC03 for the creditor's (the ISO codes for an account
    number that is invalid for this payment); the message names the rule, not the account.
    """
    reason = ReasonCode.AC02 if side == "Dbtr" else ReasonCode.AC03
    party = "debtor" if side == "Dbtr" else "creditor"
    if rules.iban_countries and iban.country_code not in rules.iban_countries:
        allowed = ", ".join(sorted(rules.iban_countries))
        return [Rejection(reason, where, f"{rules.name} moves money between {allowed} accounts only; "
                                         f"the {party} IBAN is from another country")]
    if rules.iban_sepa_zone and not iban.in_sepa_zone:
        return [Rejection(reason, where, f"{rules.name} moves money between SEPA-zone accounts only; "
                                         f"the {party} IBAN's country is outside the SEPA zone")]
    return []


def _check_agent(agent: Agent, where: str, side: str) -> list[Rejection]:
    problems = []
    if agent.bic is not None and not _bic_ok(agent.bic):
        problems.append(Rejection(ReasonCode.RC01, f"{where}/BICFI",
                                  f"{side} agent BIC has an unknown country code or a wrong format"))
    if agent.clearing_system == _UK_SORT_CODE_SYSTEM and not _SORT_CODE.fullmatch(agent.member_id or ""):
        problems.append(Rejection(ReasonCode.RC08, f"{where}/ClrSysMmbId/MmbId",
                                  f"{side} agent sort code must be 6 digits"))
    return problems
