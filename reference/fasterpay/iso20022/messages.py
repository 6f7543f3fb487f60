"""Build and parse pacs.008.001.08 and pacs.002.001.10 with the ``pyiso20022`` bindings.

Building maps the typed model (:mod:`.model`) onto the bindings and serialises them with ``xsdata``;
the result is checked against the message model before it is returned, so a builder never emits a
message that breaks the schema. Parsing runs the hardened parser (:mod:`.xmlsafe`), checks the whole
tree against the message model (:mod:`.structure`), and only then binds it. Business rules (scheme,
currency, limits, duplicates) are the validator's job: see :mod:`.validation`.
"""

from __future__ import annotations

import copy
import functools
from datetime import datetime
from decimal import Decimal
from enum import Enum
from types import ModuleType
from typing import Any
from xml.etree.ElementTree import Element

from pyiso20022.pacs import pacs_002_001_10 as p2
from pyiso20022.pacs import pacs_008_001_08 as p8
from xsdata.exceptions import ParserError
from xsdata.formats.converter import StringConverter, converter
from xsdata.formats.dataclass.context import XmlContext
from xsdata.formats.dataclass.models.elements import XmlMeta, XmlVar
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig
from xsdata.formats.dataclass.parsers.handlers import XmlEventHandler
from xsdata.formats.dataclass.parsers.utils import ParserUtils
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig
from xsdata.models.datatype import XmlDate, XmlDateTime, XmlTime

from .codes import GroupStatus, ReasonCode, TransactionStatus
from .errors import InvalidPaymentError, MessageFormatError, Rejection
from .model import (
    PACS002_VERSION,
    PACS008_VERSION,
    Account,
    Agent,
    CreditTransfer,
    GroupHeader,
    Pacs002,
    Pacs008,
    Party,
    PaymentType,
    StatusReason,
    TransactionStatusReport,
)
from .structure import check_element
from .xmlsafe import DEFAULT_MAX_MESSAGE_BYTES, parse_xml
from .xsdtime import parse_xsd_date, parse_xsd_datetime

__all__ = [
    "PACS002_NAMESPACE",
    "PACS008_NAMESPACE",
    "bind",
    "build_pacs002",
    "build_pacs008",
    "check_root",
    "credit_transfer_from_binding",
    "group_header_from_binding",
    "parse_pacs002",
    "parse_pacs008",
]

PACS008_NAMESPACE = f"urn:iso:std:iso:20022:tech:xsd:{PACS008_VERSION}"
PACS002_NAMESPACE = f"urn:iso:std:iso:20022:tech:xsd:{PACS002_VERSION}"
_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"

_CONTEXT = XmlContext()  # caches the bindings' metadata; parsers and serializers are made per call
_PARSER_CONFIG = ParserConfig(
    fail_on_unknown_properties=True, fail_on_unknown_attributes=True, fail_on_converter_warnings=True
)


def _serializer(pretty: bool) -> XmlSerializer:
    config = SerializerConfig(indent="  " if pretty else None, xml_declaration=True, encoding="UTF-8")
    return XmlSerializer(config=config, context=_CONTEXT)


def _xml_datetime(value: datetime) -> XmlDateTime:
    return XmlDateTime.from_datetime(value)


def _datetime(value: XmlDateTime | None) -> datetime | None:
    """The bound value as a datetime, read as XSD reads it (``24:00:00`` is the next day's midnight)."""
    return None if value is None else parse_xsd_datetime(str(value))


def _amount(value: Decimal) -> Decimal:
    """The amount in plain positional notation (``Decimal('1E+2')`` is written as ``100``)."""
    return Decimal(format(value, "f"))


# -- model -> bindings ---------------------------------------------------------------------------------
def _agent(agent: Agent, bindings: ModuleType) -> Any:
    """An agent as ``bindings``' BranchAndFinancialInstitutionIdentification6 (pacs.008 and pacs.002 share it)."""
    member = None
    if agent.member_id is not None:
        system = bindings.ClearingSystemIdentification2Choice(cd=agent.clearing_system) if agent.clearing_system else None
        member = bindings.ClearingSystemMemberIdentification2(clr_sys_id=system, mmb_id=agent.member_id)
    return bindings.BranchAndFinancialInstitutionIdentification6(
        fin_instn_id=bindings.FinancialInstitutionIdentification18(
            bicfi=agent.bic, clr_sys_mmb_id=member, nm=agent.name)
    )


def _party(party: Party) -> p8.PartyIdentification135:
    address = None
    if party.country is not None or party.address_lines:
        address = p8.PostalAddress24(ctry=party.country, adr_line=list(party.address_lines))
    return p8.PartyIdentification135(nm=party.name, pstl_adr=address)


def _account(account: Account | None) -> p8.CashAccount38 | None:
    if account is None:
        return None
    if account.iban is not None:
        return p8.CashAccount38(id=p8.AccountIdentification4Choice(iban=account.iban))
    scheme = p8.AccountSchemeName1Choice(cd=account.other_scheme) if account.other_scheme else None
    other = p8.GenericAccountIdentification1(id=account.other_id or "", schme_nm=scheme)
    return p8.CashAccount38(id=p8.AccountIdentification4Choice(othr=other))


def _payment_type(payment_type: PaymentType | None) -> p8.PaymentTypeInformation28 | None:
    if payment_type is None:
        return None
    service = [p8.ServiceLevel8Choice(cd=payment_type.service_level)] if payment_type.service_level else []
    instrument = None
    if payment_type.local_instrument is not None:
        instrument = p8.LocalInstrument2Choice(cd=payment_type.local_instrument)
    elif payment_type.local_instrument_proprietary is not None:
        instrument = p8.LocalInstrument2Choice(prtry=payment_type.local_instrument_proprietary)
    return p8.PaymentTypeInformation28(svc_lvl=service, lcl_instrm=instrument)


def _transaction(tx: CreditTransfer) -> p8.CreditTransferTransaction39:
    try:
        charge_bearer = p8.ChargeBearerType1Code(tx.charge_bearer)
    except ValueError:
        known = ", ".join(c.value for c in p8.ChargeBearerType1Code)
        raise InvalidPaymentError(f"charge_bearer {tx.charge_bearer!r} is not one of {known}") from None
    return p8.CreditTransferTransaction39(
        pmt_id=p8.PaymentIdentification7(
            instr_id=tx.instruction_id, end_to_end_id=tx.end_to_end_id, tx_id=tx.transaction_id, uetr=tx.uetr
        ),
        pmt_tp_inf=_payment_type(tx.payment_type),
        intr_bk_sttlm_amt=p8.ActiveCurrencyAndAmount(value=_amount(tx.amount), ccy=tx.currency),
        intr_bk_sttlm_dt=XmlDate.from_date(tx.settlement_date) if tx.settlement_date else None,
        accptnc_dt_tm=_xml_datetime(tx.acceptance_time) if tx.acceptance_time else None,
        chrg_br=charge_bearer,
        dbtr=_party(tx.debtor),
        dbtr_acct=_account(tx.debtor_account),
        dbtr_agt=_agent(tx.debtor_agent, p8),
        cdtr_agt=_agent(tx.creditor_agent, p8),
        cdtr=_party(tx.creditor),
        cdtr_acct=_account(tx.creditor_account),
        rmt_inf=p8.RemittanceInformation16(ustrd=list(tx.remittance)) if tx.remittance else None,
    )


def _pacs008_document(message: Pacs008) -> p8.Document:
    header = message.header
    try:
        method = p8.SettlementMethod1Code(header.settlement_method)
    except ValueError:
        known = ", ".join(c.value for c in p8.SettlementMethod1Code)
        raise InvalidPaymentError(f"settlement_method {header.settlement_method!r} is not one of {known}") from None
    group = p8.GroupHeader93(
        msg_id=header.msg_id,
        cre_dt_tm=_xml_datetime(header.created_at),
        nb_of_txs=str(message.nb_of_txs),
        sttlm_inf=p8.SettlementInstruction7(sttlm_mtd=method),
        instg_agt=_agent(header.instructing_agent, p8) if header.instructing_agent else None,
        instd_agt=_agent(header.instructed_agent, p8) if header.instructed_agent else None,
    )
    body = p8.FitoFicustomerCreditTransferV08(
        grp_hdr=group, cdt_trf_tx_inf=[_transaction(tx) for tx in message.transactions]
    )
    return p8.Document(fito_ficstmr_cdt_trf=body)


def _reasons(reasons: tuple[StatusReason, ...]) -> list[p2.StatusReasonInformation12]:
    return [
        p2.StatusReasonInformation12(
            rsn=p2.StatusReason6Choice(cd=r.code.value if isinstance(r.code, ReasonCode) else r.code),
            addtl_inf=list(r.additional_info),
        )
        for r in reasons
    ]


def _pacs002_document(report: Pacs002) -> p2.Document:
    group = p2.OriginalGroupHeader17(
        orgnl_msg_id=report.original_msg_id,
        orgnl_msg_nm_id=report.original_msg_name_id,
        orgnl_cre_dt_tm=_xml_datetime(report.original_created_at) if report.original_created_at else None,
        orgnl_nb_of_txs=str(report.original_nb_of_txs) if report.original_nb_of_txs is not None else None,
        grp_sts=report.group_status.value if report.group_status else None,
        sts_rsn_inf=_reasons(report.group_reasons),
    )
    transactions = [
        p2.PaymentTransaction110(
            orgnl_instr_id=tx.original_instruction_id,
            orgnl_end_to_end_id=tx.original_end_to_end_id,
            orgnl_tx_id=tx.original_transaction_id,
            orgnl_uetr=tx.original_uetr,
            tx_sts=tx.status.value,
            sts_rsn_inf=_reasons(tx.reasons),
        )
        for tx in report.transactions
    ]
    body = p2.FitoFipaymentStatusReportV10(
        grp_hdr=p2.GroupHeader91(
            msg_id=report.msg_id,
            cre_dt_tm=_xml_datetime(report.created_at),
            instg_agt=_agent(report.instructing_agent, p2) if report.instructing_agent else None,
            instd_agt=_agent(report.instructed_agent, p2) if report.instructed_agent else None,
        ),
        orgnl_grp_inf_and_sts=[group],
        tx_inf_and_sts=transactions,
    )
    return p2.Document(fito_fipmt_sts_rpt=body)


def _render(document: object, namespace: str, pretty: bool) -> bytes:
    return _serializer(pretty).render(document, ns_map={None: namespace}).encode("utf-8")


def _check_built(xml: bytes, document_class: type, namespace: str) -> None:
    root = parse_xml(xml, max_bytes=max(len(xml), 1))
    problems = check_root(root, namespace) or check_element(root, document_class, "/Document")
    if problems:
        shown = "; ".join(str(p) for p in problems[:5])
        raise InvalidPaymentError(f"the message would break the schema: {shown}; fix these fields and build again")


def build_pacs008(message: Pacs008, *, pretty: bool = False, check: bool = True) -> bytes:
    """Serialise a :class:`~.model.Pacs008` to pacs.008.001.08 XML bytes (UTF-8, with XML declaration).

    The output is checked against the message model; a field that breaks the schema (a 36-character
    MsgId, a negative amount) raises :class:`InvalidPaymentError`. ``check=False`` skips that, for
    producing deliberately invalid test messages only.

    Examples:
        >>> from datetime import UTC
        >>> tx = CreditTransfer(end_to_end_id="E1", amount=Decimal("10.50"), currency="GBP",
        ...     debtor=Party(name="A"), debtor_agent=Agent(bic="NWBKGB2L"),
        ...     creditor_agent=Agent(bic="BARCGB22"), creditor=Party(name="B"))
        >>> xml = build_pacs008(Pacs008(GroupHeader("MSG-1", datetime(2025, 1, 1, tzinfo=UTC)), (tx,)))
        >>> b'<IntrBkSttlmAmt Ccy="GBP">10.50</IntrBkSttlmAmt>' in xml
        True
    """
    if not isinstance(message, Pacs008):
        raise InvalidPaymentError(f"build_pacs008 takes a Pacs008, not {type(message).__name__}")
    xml = _render(_pacs008_document(message), PACS008_NAMESPACE, pretty)
    if check:
        _check_built(xml, p8.Document, PACS008_NAMESPACE)
    return xml


def build_pacs002(report: Pacs002, *, pretty: bool = False) -> bytes:
    """Serialise a :class:`~.model.Pacs002` status report to pacs.002.001.10 XML bytes.

    Examples:
        >>> from datetime import UTC
        >>> report = Pacs002("STS-1", datetime(2025, 1, 1, tzinfo=UTC), original_msg_id="MSG-1",
        ...     transactions=(TransactionStatusReport(TransactionStatus.RJCT, original_end_to_end_id="E1",
        ...                                           reasons=(StatusReason("AC01"),)),))
        >>> b"<TxSts>RJCT</TxSts>" in build_pacs002(report)
        True
    """
    if not isinstance(report, Pacs002):
        raise InvalidPaymentError(f"build_pacs002 takes a Pacs002, not {type(report).__name__}")
    xml = _render(_pacs002_document(report), PACS002_NAMESPACE, pretty)
    _check_built(xml, p2.Document, PACS002_NAMESPACE)
    return xml


# -- bindings -> model ---------------------------------------------------------------------------------
def check_root(root: Element, namespace: str) -> list[Rejection]:
    """FF01 unless ``root`` is a ``Document`` in ``namespace`` (names a wrong version or a foreign namespace)."""
    expected = f"{{{namespace}}}Document"
    if root.tag == expected:
        return []
    found_ns, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    want = namespace.removeprefix(_PREFIX)
    if found_ns.startswith(_PREFIX) and local == "Document":
        got = found_ns.removeprefix(_PREFIX)[:40]
        message = f"message is {got}; only {want} is accepted"
    elif local != "Document":
        message = f"root element is {local[:40]!r}, not Document ({want})"
    else:
        message = f"namespace is not the ISO 20022 namespace of {want}"
    return [Rejection(ReasonCode.FF01, "/", message)]


def bind(element: Element, binding: type) -> object:
    """Bind an element that has passed :func:`~.structure.check_element` to its ``pyiso20022`` class.

    A plain tree (what every checked pacs.008 and pacs.002 is) is bound directly by :func:`_bind_plain`,
    which gives the same object as xsdata's parser at a fraction of the CPU; anything else, and any
    problem, goes through xsdata's parser, so the result and the error are always xsdata's.
    """
    try:
        return _bind_plain(element, _CONTEXT.fetch(binding), root=True)
    except Exception:  # noqa: BLE001 - not plain, or not bindable: xsdata's parser decides, in its own words
        pass
    try:
        parser = XmlParser(config=_PARSER_CONFIG, context=_CONTEXT, handler=XmlEventHandler)
        return parser.parse(copy.deepcopy(element), binding)  # binding consumes the tree it walks
    except (ParserError, TypeError, ValueError) as exc:  # defensive: the structure check comes first
        raise MessageFormatError([Rejection(ReasonCode.FF01, "/", f"cannot bind the message ({exc})")]) from None


# -- plain binding -------------------------------------------------------------------------------------
# xsdata's XmlParser binds through a general event machine (a node object per element, xsi:type
# substitution, wildcards, mixed content) that costs more than the rest of parsing and validating
# together. ISO 20022 messages use none of that: elements, attributes and simple values only. The
# plain binder below does exactly what xsdata's ElementNode and PrimitiveNode do for such trees (the
# same metadata, the same value converter, the same class factory) and gives up with _NotPlain on
# anything else, for xsdata's parser to handle.
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
#: Attributes that make xsdata bind an element differently (type substitution, nil).
_XSI_SUBSTITUTION = frozenset({f"{_XSI}type", f"{_XSI}nil"})
_PLAIN_VALUE_TYPES = frozenset({str, bool, int, float, Decimal, XmlDate, XmlDateTime, XmlTime})


class _NotPlain(Exception):
    """The tree uses something the plain binder leaves to xsdata's parser."""


def _plain_value_type(kind: object) -> bool:
    if isinstance(kind, type) and issubclass(kind, Enum):
        return all(isinstance(member.value, str) for member in kind)
    return kind in _PLAIN_VALUE_TYPES


@functools.cache  # one entry per binding class: bounded, and independent of any message
def _is_plain(clazz: type) -> bool:
    """True when every field of ``clazz`` is a plain element, attribute or text of a simple or class type."""
    meta = _CONTEXT.build(clazz)
    if meta.wildcards or meta.choices or meta.wrappers or meta.any_attributes or meta.mixed_content:
        return False
    if any(len(found) != 1 for found in meta.elements.values()):
        return False
    return all(
        var.init
        and not (var.is_clazz_union or var.any_type or var.is_wildcard or var.is_elements or var.is_attributes)
        and (var.clazz is not None or all(_plain_value_type(kind) for kind in var.types))
        for var in meta.get_all_vars()
    )


def _leaf_value(meta: XmlMeta, var: XmlVar, text: str | None) -> Any:
    """The value of a simple element, as xsdata's PrimitiveNode gives it."""
    # Most leaves are strings, which xsdata's own string converter returns as they are: skip its lookups.
    plain_string = var.types == (str,) and not var.tokens and type(converter.registry.get(str)) is StringConverter
    if text is not None and plain_string:
        return text
    value = ParserUtils.parse_var(meta=meta, var=var, config=_PARSER_CONFIG, value=text)
    if value is None and not var.nillable:
        value = b"" if bytes in var.types else ""
    return value


def _bind_plain(element: Element, meta: XmlMeta, *, root: bool = False) -> object:
    """``element`` as an instance of ``meta.clazz``, bound as xsdata's parser binds it; _NotPlain otherwise."""
    if not _is_plain(meta.clazz):
        raise _NotPlain
    if root and ParserUtils.normalize_content(element.tail):
        raise _NotPlain  # xsdata returns the root's trailing text instead of the object
    params: dict[str, Any] = {}
    for qname, value in element.attrib.items():
        var = meta.find_attribute(qname)
        if var is not None:
            params[var.name] = ParserUtils.parse_var(meta=meta, var=var, config=_PARSER_CONFIG, value=value)
        elif not qname.startswith(_XSI) or qname in _XSI_SUBSTITUTION:
            raise _NotPlain  # an unknown attribute (refused), or an xsi:type / xsi:nil substitution
    lists: dict[str, tuple[XmlVar, list[Any]]] = {}  # repeated elements, in document order
    for child in element:
        found = meta.elements.get(child.tag) if isinstance(child.tag, str) else None
        if not found:
            raise _NotPlain  # an unknown element: refused
        var = found[0]
        if not var.list_element and var.name in params:
            raise _NotPlain  # a repeated single element: xsdata refuses it, or keeps the first and logs the rest
        if var.clazz is not None:
            value = _bind_plain(child, _CONTEXT.fetch(var.clazz, meta.namespace))
            if ParserUtils.normalize_content(child.tail):
                raise _NotPlain  # text after a complex element: xsdata logs it as unassigned
        elif len(child) or (child.attrib and not _XSI_SUBSTITUTION.isdisjoint(child.attrib)):
            raise _NotPlain  # a simple element with children (refused), or a substitution
        else:
            value = _leaf_value(meta, var, child.text)
        if var.list_element:
            lists.setdefault(var.name, (var, []))[1].append(value)
        else:
            params[var.name] = value
    for name, (var, values) in lists.items():
        params[name] = (var.factory or list)(values)
    text = meta.text
    if text is not None and element.text is not None:
        params[text.name] = ParserUtils.parse_var(meta=meta, var=text, config=_PARSER_CONFIG, value=element.text)
    return _PARSER_CONFIG.class_factory(meta.clazz, params)


def _agent_from(binding: object | None) -> Agent | None:
    if binding is None:
        return None
    fin = binding.fin_instn_id  # type: ignore[attr-defined]
    member = fin.clr_sys_mmb_id
    system = member.clr_sys_id.cd if member is not None and member.clr_sys_id is not None else None
    return Agent(bic=fin.bicfi, clearing_system=system, member_id=member.mmb_id if member else None, name=fin.nm)


def _party_from(binding: p8.PartyIdentification135) -> Party:
    address = binding.pstl_adr
    return Party(
        name=binding.nm,
        country=address.ctry if address else None,
        address_lines=tuple(address.adr_line) if address else (),
    )


def _account_from(binding: p8.CashAccount38 | None) -> Account | None:
    if binding is None:
        return None
    if binding.id.iban is not None:
        return Account(iban=binding.id.iban)
    other = binding.id.othr
    assert other is not None
    return Account(other_id=other.id, other_scheme=other.schme_nm.cd if other.schme_nm else None)


def _payment_type_from(binding: p8.PaymentTypeInformation28 | None) -> PaymentType | None:
    if binding is None:
        return None
    service = next((s.cd for s in binding.svc_lvl if s.cd), None)
    instrument = binding.lcl_instrm
    return PaymentType(
        service_level=service,
        local_instrument=instrument.cd if instrument else None,
        local_instrument_proprietary=instrument.prtry if instrument else None,
    )


def group_header_from_binding(binding: p8.GroupHeader93) -> GroupHeader:
    """The model's :class:`~.model.GroupHeader` from a bound ``GrpHdr``."""
    return GroupHeader(
        msg_id=binding.msg_id,
        created_at=parse_xsd_datetime(str(binding.cre_dt_tm)),
        settlement_method=binding.sttlm_inf.sttlm_mtd.value,
        instructing_agent=_agent_from(binding.instg_agt),
        instructed_agent=_agent_from(binding.instd_agt),
    )


def credit_transfer_from_binding(
    binding: p8.CreditTransferTransaction39, group: p8.GroupHeader93 | None = None
) -> CreditTransfer:
    """The model's :class:`~.model.CreditTransfer` from a bound ``CdtTrfTxInf``.

    ``PmtTpInf`` and ``IntrBkSttlmDt`` given once in the group header apply to each transaction that
    does not give its own.
    """
    payment_type = binding.pmt_tp_inf or (group.pmt_tp_inf if group else None)
    settlement_date: XmlDate | None = binding.intr_bk_sttlm_dt or (group.intr_bk_sttlm_dt if group else None)
    return CreditTransfer(
        end_to_end_id=binding.pmt_id.end_to_end_id,
        amount=binding.intr_bk_sttlm_amt.value,
        currency=binding.intr_bk_sttlm_amt.ccy,
        debtor=_party_from(binding.dbtr),
        debtor_agent=_agent_from(binding.dbtr_agt) or Agent(),
        creditor_agent=_agent_from(binding.cdtr_agt) or Agent(),
        creditor=_party_from(binding.cdtr),
        debtor_account=_account_from(binding.dbtr_acct),
        creditor_account=_account_from(binding.cdtr_acct),
        instruction_id=binding.pmt_id.instr_id,
        transaction_id=binding.pmt_id.tx_id,
        uetr=binding.pmt_id.uetr,
        settlement_date=parse_xsd_date(str(settlement_date)) if settlement_date else None,
        acceptance_time=_datetime(binding.accptnc_dt_tm),
        charge_bearer=binding.chrg_br.value,
        payment_type=_payment_type_from(payment_type),
        remittance=tuple(binding.rmt_inf.ustrd) if binding.rmt_inf else (),
    )


def _parse_checked(xml_bytes: bytes, namespace: str, document_class: type, max_bytes: int) -> object:
    root = parse_xml(xml_bytes, max_bytes=max_bytes)
    problems = check_root(root, namespace) or check_element(root, document_class, "/Document")
    if problems:
        raise MessageFormatError(problems)
    return bind(root, document_class)


def parse_pacs008(xml_bytes: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Pacs008:
    """Parse pacs.008.001.08 bytes into a :class:`~.model.Pacs008`, or raise :class:`MessageFormatError`.

    The bytes go through the hardened parser and the full structural check; business rules are not
    applied (use :class:`~.validation.Pacs008Validator` for those, and for per-transaction outcomes).

    Examples:
        >>> from datetime import UTC
        >>> tx = CreditTransfer(end_to_end_id="E1", amount=Decimal("10.50"), currency="GBP",
        ...     debtor=Party(name="A"), debtor_agent=Agent(bic="NWBKGB2L"),
        ...     creditor_agent=Agent(bic="BARCGB22"), creditor=Party(name="B"))
        >>> message = Pacs008(GroupHeader("MSG-1", datetime(2025, 1, 1, tzinfo=UTC)), (tx,))
        >>> parse_pacs008(build_pacs008(message)) == message
        True
    """
    document = _parse_checked(xml_bytes, PACS008_NAMESPACE, p8.Document, max_bytes)
    body = document.fito_ficstmr_cdt_trf  # type: ignore[attr-defined]
    return Pacs008(
        header=group_header_from_binding(body.grp_hdr),
        transactions=tuple(credit_transfer_from_binding(tx, body.grp_hdr) for tx in body.cdt_trf_tx_inf),
    )


def _status_reasons(bindings: list[p2.StatusReasonInformation12]) -> tuple[StatusReason, ...]:
    reasons = []
    for info in bindings:
        code = (info.rsn.cd or info.rsn.prtry or "") if info.rsn else ""
        known = ReasonCode._value2member_map_.get(code)
        reasons.append(StatusReason(code=known if isinstance(known, ReasonCode) else code,
                                    additional_info=tuple(info.addtl_inf)))
    return tuple(reasons)


def parse_pacs002(xml_bytes: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Pacs002:
    """Parse pacs.002.001.10 bytes into a :class:`~.model.Pacs002`, or raise :class:`MessageFormatError`.

    The model describes one original message: a report with several ``OrgnlGrpInfAndSts`` is refused
    (FF01), as is a status code outside :class:`TransactionStatus` / :class:`GroupStatus`.

    Examples:
        >>> from datetime import UTC
        >>> report = Pacs002("STS-1", datetime(2025, 1, 1, tzinfo=UTC), original_msg_id="MSG-1",
        ...                  group_status=GroupStatus.ACTC)
        >>> parse_pacs002(build_pacs002(report)) == report
        True
    """
    document = _parse_checked(xml_bytes, PACS002_NAMESPACE, p2.Document, max_bytes)
    body = document.fito_fipmt_sts_rpt  # type: ignore[attr-defined]
    groups = body.orgnl_grp_inf_and_sts
    if len(groups) != 1:
        raise MessageFormatError([Rejection(ReasonCode.FF01, "/Document/FIToFIPmtStsRpt/OrgnlGrpInfAndSts",
                                            f"expected one OrgnlGrpInfAndSts, found {len(groups)}")])
    group = groups[0]
    try:
        transactions = tuple(
            TransactionStatusReport(
                status=TransactionStatus(tx.tx_sts),
                original_end_to_end_id=tx.orgnl_end_to_end_id,
                original_instruction_id=tx.orgnl_instr_id,
                original_transaction_id=tx.orgnl_tx_id,
                original_uetr=tx.orgnl_uetr,
                reasons=_status_reasons(tx.sts_rsn_inf),
            )
            for tx in body.tx_inf_and_sts
        )
        group_status = GroupStatus(group.grp_sts) if group.grp_sts else None
    except ValueError as exc:
        raise MessageFormatError([Rejection(ReasonCode.FF01, "/Document/FIToFIPmtStsRpt",
                                            f"unsupported status code ({exc})")]) from None
    return Pacs002(
        msg_id=body.grp_hdr.msg_id,
        created_at=parse_xsd_datetime(str(body.grp_hdr.cre_dt_tm)),
        original_msg_id=group.orgnl_msg_id,
        original_msg_name_id=group.orgnl_msg_nm_id,
        original_created_at=_datetime(group.orgnl_cre_dt_tm),
        original_nb_of_txs=int(group.orgnl_nb_of_txs) if group.orgnl_nb_of_txs is not None else None,
        group_status=group_status,
        group_reasons=_status_reasons(group.sts_rsn_inf),
        transactions=transactions,
        instructing_agent=_agent_from(body.grp_hdr.instg_agt),
        instructed_agent=_agent_from(body.grp_hdr.instd_agt),
    )

