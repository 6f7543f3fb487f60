"""pacs.008 and pacs.002: build, parse, round trips, schema validity of what we build, and the model's guards."""

from __future__ import annotations

import doctest
import importlib
import string
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iso20022_samples import CREATED, GB_IBAN_2, UETR, edit, fps_transfer, message, sepa_transfer, xml
from pyiso20022.pacs import pacs_002_001_10 as p2
from pyiso20022.pacs import pacs_008_001_08 as p8

from fasterpay.iso20022 import (
    PACS002_NAMESPACE,
    PACS008_NAMESPACE,
    REASON_DESCRIPTIONS,
    SEPA_INST,
    Account,
    Agent,
    CreditTransfer,
    GroupHeader,
    GroupStatus,
    InvalidPaymentError,
    MessageFormatError,
    Pacs002,
    Pacs008,
    Party,
    PaymentType,
    ReasonCode,
    StatusReason,
    TransactionStatus,
    TransactionStatusReport,
    build_pacs002,
    build_pacs008,
    parse_pacs002,
    parse_pacs008,
    parse_xml,
)
from fasterpay.iso20022.structure import check_element


# -- round trips ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sample",
    [
        message(fps_transfer()),
        message(sepa_transfer()),
        message(fps_transfer(), fps_transfer(end_to_end_id="E2E-FPS-2", amount=Decimal("0.01")),
                fps_transfer(end_to_end_id="E2E-FPS-3", debtor_account=Account(iban=GB_IBAN_2))),
        message(fps_transfer(creditor_agent=Agent(bic="BARCGB22", clearing_system="GBDSC", member_id="200000",
                                                  name="Barclays"),
                             creditor=Party(name="Zoë Ó Briain", country="GB", address_lines=("1 High St", "Leeds")),
                             remittance=("line 1", "line 2"), acceptance_time=CREATED + timedelta(microseconds=7))),
        message(sepa_transfer(), instructing_agent=Agent(bic="COBADEFF"), instructed_agent=Agent(bic="BNPAFRPP"),
                settlement_method="INDA"),
        message(sepa_transfer(creditor_account=Account(other_id="0012345678", other_scheme="BBAN"),
                              payment_type=None, uetr=None, instruction_id=None, transaction_id=None)),
    ],
    ids=["fps", "sepa", "three-transactions", "every-optional-field", "group-agents", "minimal"],
)
def test_pacs008_round_trips(sample: Pacs008) -> None:
    assert parse_pacs008(build_pacs008(sample)) == sample
    assert parse_pacs008(build_pacs008(sample, pretty=True)) == sample


def test_built_pacs008_is_valid_against_the_message_model_and_uses_the_standard_namespace() -> None:
    data = xml(fps_transfer(), sepa_transfer())
    root = parse_xml(data)
    assert root.tag == f"{{{PACS008_NAMESPACE}}}Document"
    assert PACS008_NAMESPACE == "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"
    assert check_element(root, p8.Document, "/Document") == []
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"<NbOfTxs>2</NbOfTxs>" in data and b"<SttlmMtd>CLRG</SttlmMtd>" in data


def test_parse_reads_group_level_payment_type_and_settlement_date_into_each_transaction() -> None:
    data = xml(sepa_transfer(payment_type=None, settlement_date=None))
    data = edit(data, b"<SttlmInf>", b"<IntrBkSttlmDt>2025-06-03</IntrBkSttlmDt><SttlmInf>")
    data = edit(data, b"</SttlmInf>", b"</SttlmInf><PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl>"
                                      b"<LclInstrm><Cd>INST</Cd></LclInstrm></PmtTpInf>")
    tx = parse_pacs008(data).transactions[0]
    assert tx.settlement_date == date(2025, 6, 3)
    assert tx.payment_type == SEPA_INST.payment_type


def test_parse_accepts_a_prefixed_namespace_and_schema_location() -> None:
    data = xml()
    prefixed = data.replace(b"<", b"<ns:").replace(b"<ns:/", b"</ns:").replace(b"<ns:?xml", b"<?xml")
    prefixed = edit(prefixed, b'xmlns="', b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                                         b'xsi:schemaLocation="x y" xmlns:ns="')
    assert parse_pacs008(prefixed) == message()


@pytest.mark.parametrize(
    ("created_at"),
    [CREATED, datetime(2025, 6, 2, 10, 30, tzinfo=timezone(timedelta(hours=1))), datetime(2025, 6, 2, 9, 30)],
    ids=["utc", "offset", "local-time"],
)
def test_creation_time_keeps_its_offset(created_at: datetime) -> None:
    sample = message(msg_id="MSG-T")
    sample = replace(sample, header=replace(sample.header, created_at=created_at))
    parsed = parse_pacs008(build_pacs008(sample))
    assert parsed.header.created_at == created_at
    assert parsed.header.created_at.utcoffset() == created_at.utcoffset()


@pytest.mark.parametrize(
    "report",
    [
        Pacs002("STS-1", CREATED, original_msg_id="MSG-1", group_status=GroupStatus.ACTC),
        Pacs002("STS-2", CREATED, original_msg_id="NOTPROVIDED", group_status=GroupStatus.RJCT,
                group_reasons=(StatusReason(ReasonCode.FF01, ("not well-formed XML",)),)),
        Pacs002("STS-3", CREATED, original_msg_id="MSG-3", original_created_at=CREATED, original_nb_of_txs=2,
                group_status=GroupStatus.PART,
                transactions=(
                    TransactionStatusReport(TransactionStatus.ACTC, "E1", "I1", "T1", UETR),
                    TransactionStatusReport(TransactionStatus.RJCT, "E2", reasons=(
                        StatusReason(ReasonCode.AC01, ("Dbtr IBAN is invalid", "/Document/x")),
                        StatusReason(ReasonCode.AM02),
                    )),
                ),
                instructing_agent=Agent(bic="NWBKGB2L"), instructed_agent=Agent(member_id="123456")),
        Pacs002("STS-4", CREATED, original_msg_id="MSG-4",
                transactions=(TransactionStatusReport(TransactionStatus.RJCT, "E1",
                                                      reasons=(StatusReason(ReasonCode.AB05),)),)),
        Pacs002("STS-5", CREATED, original_msg_id="MSG-5",
                transactions=(TransactionStatusReport(TransactionStatus.ACSC, "E1"),)),
    ],
    ids=["group-accepted", "group-rejected", "per-transaction", "timeout", "settled"],
)
def test_pacs002_round_trips(report: Pacs002) -> None:
    data = build_pacs002(report)
    assert parse_pacs002(data) == report
    root = parse_xml(data)
    assert root.tag == f"{{{PACS002_NAMESPACE}}}Document"
    assert PACS002_NAMESPACE == "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10"
    assert check_element(root, p2.Document, "/Document") == []


def test_pacs002_reason_codes_come_back_as_reason_codes_and_unknown_codes_as_strings() -> None:
    report = Pacs002("STS-1", CREATED, original_msg_id="MSG-1",
                     transactions=(TransactionStatusReport(TransactionStatus.RJCT, "E1",
                                                           reasons=(StatusReason("AC01"), StatusReason("ZZ99"))),))
    reasons = parse_pacs002(build_pacs002(report)).transactions[0].reasons
    assert reasons[0].code is ReasonCode.AC01
    assert reasons[1].code == "ZZ99" and not isinstance(reasons[1].code, ReasonCode)


def test_pacs002_with_an_unknown_status_or_two_original_groups_is_refused() -> None:
    data = build_pacs002(Pacs002("STS-1", CREATED, original_msg_id="MSG-1", group_status=GroupStatus.ACTC))
    with pytest.raises(MessageFormatError, match="unsupported status code"):
        parse_pacs002(edit(data, b"<GrpSts>ACTC</GrpSts>", b"<GrpSts>XXXX</GrpSts>"))
    start, end = data.index(b"<OrgnlGrpInfAndSts>"), data.index(b"</OrgnlGrpInfAndSts>") + 20
    with pytest.raises(MessageFormatError, match="expected one OrgnlGrpInfAndSts, found 2"):
        parse_pacs002(data[:end] + data[start:end] + data[end:])


def test_parse_pacs002_refuses_a_pacs008() -> None:
    with pytest.raises(MessageFormatError, match=r"pacs\.008\.001\.08; only pacs\.002\.001\.10 is accepted") as caught:
        parse_pacs002(xml())
    assert caught.value.reason is ReasonCode.FF01


# -- the builder refuses what would break the schema or the money rules --------------------------------
@pytest.mark.parametrize(
    ("build", "message_part"),
    [
        (lambda: message(msg_id="M" * 36), "MsgId is longer than 35"),
        (lambda: message(fps_transfer(end_to_end_id="")), "EndToEndId is empty"),
        (lambda: message(fps_transfer(amount=Decimal("-1.00"))), "IntrBkSttlmAmt is below the minimum 0"),
        (lambda: message(fps_transfer(amount=Decimal("1.123456"))), "more than 5 decimal places"),
        (lambda: message(fps_transfer(uetr="not-a-uuid")), "UETR does not match"),
        (lambda: message(fps_transfer(currency="gbp")), "attribute Ccy does not match"),
        (lambda: message(fps_transfer(remittance=("x" * 141,))), "Ustrd is longer than 140"),
    ],
)
def test_build_refuses_a_message_that_breaks_the_schema(build, message_part: str) -> None:
    with pytest.raises(InvalidPaymentError, match=message_part):
        build_pacs008(build())


def test_build_can_skip_the_check_to_make_deliberately_bad_test_messages() -> None:
    data = build_pacs008(message(fps_transfer(amount=Decimal("-1.00"))), check=False)
    assert b">-1.00</IntrBkSttlmAmt>" in data


@pytest.mark.parametrize(
    ("make", "message_part"),
    [
        (lambda: fps_transfer(amount=10.5), "money is never float"),
        (lambda: fps_transfer(amount=10), "amount must be Decimal, not int"),
        (lambda: fps_transfer(amount=Decimal("NaN")), "finite Decimal"),
        (lambda: fps_transfer(amount=Decimal("Infinity")), "finite Decimal"),
        (lambda: fps_transfer(debtor="Ada"), "debtor must be Party"),
        (lambda: fps_transfer(settlement_date=CREATED), "settlement_date must be a date"),
        (lambda: fps_transfer(remittance="one line"), "remittance must be a sequence of str"),
        (lambda: Account(), "exactly one of iban and other_id"),
        (lambda: Account(iban=GB_IBAN_2, other_id="1"), "exactly one of iban and other_id"),
        (lambda: Agent(clearing_system="GBDSC"), "clearing_system needs a member_id"),
        (lambda: PaymentType(local_instrument="INST", local_instrument_proprietary="X"), "not both"),
        (lambda: Pacs008(GroupHeader("M", CREATED), ()), "at least one transaction"),
        (lambda: GroupHeader("M", "2025-06-02"), "created_at must be datetime"),
        (lambda: Pacs002("S", CREATED, original_msg_id="M"), "group_status, transaction statuses, or both"),
        (lambda: TransactionStatusReport("DONE"), "unknown transaction status 'DONE'"),
        (lambda: Pacs002("S", CREATED, original_msg_id="M", group_status="MAYBE"), "unknown group status"),
    ],
)
def test_model_rejects_wrong_types_with_a_clear_message(make, message_part: str) -> None:
    with pytest.raises(InvalidPaymentError, match=message_part):
        make()


def test_builders_take_only_their_model() -> None:
    with pytest.raises(InvalidPaymentError, match="build_pacs008 takes a Pacs008, not dict"):
        build_pacs008({})  # type: ignore[arg-type]
    with pytest.raises(InvalidPaymentError, match="charge_bearer 'XXXX' is not one of"):
        build_pacs008(message(fps_transfer(charge_bearer="XXXX")))


def test_decimal_in_exponent_form_is_written_in_positional_notation() -> None:
    data = xml(fps_transfer(amount=Decimal("1E+2")))
    assert b">100</IntrBkSttlmAmt>" in data
    assert parse_pacs008(data).transactions[0].amount == Decimal("100")


# -- properties ----------------------------------------------------------------------------------------
_text = st.text(alphabet=string.ascii_letters + string.digits + " -/.", min_size=1, max_size=35).filter(
    lambda s: s.strip() == s and s.strip())
_amounts = st.builds(lambda minor, places: Decimal(minor).scaleb(-places),
                     st.integers(min_value=0, max_value=10**13 - 1), st.integers(min_value=0, max_value=5))


@st.composite
def _transfers(draw: st.DrawFn) -> CreditTransfer:
    base = draw(st.sampled_from([fps_transfer(), sepa_transfer()]))
    return replace(
        base,
        end_to_end_id=draw(_text),
        amount=draw(_amounts),
        currency=draw(st.sampled_from(["GBP", "EUR", "JPY", "BHD", "USD"])),
        debtor=Party(name=draw(st.one_of(st.none(), st.text(min_size=1, max_size=140).filter(
            lambda s: s.isprintable() and s.strip() == s and s.strip())))),
        uetr=draw(st.one_of(st.none(), st.uuids(version=4).map(str))),
        remittance=tuple(draw(st.lists(_text, max_size=3))),
        acceptance_time=draw(st.one_of(st.none(), st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)))),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_transfers(), min_size=1, max_size=3), _text)
def test_any_valid_payment_round_trips(transactions: list[CreditTransfer], msg_id: str) -> None:
    sample = Pacs008(GroupHeader(msg_id=msg_id, created_at=CREATED), tuple(transactions))
    assert parse_pacs008(build_pacs008(sample)) == sample


@settings(max_examples=100, deadline=None)
@given(_amounts)
def test_amounts_never_lose_precision(amount: Decimal) -> None:
    parsed = parse_pacs008(xml(fps_transfer(amount=amount))).transactions[0].amount
    assert parsed == amount
    assert parsed.as_tuple() == amount.as_tuple()  # same digits and the same number of decimal places
    assert isinstance(parsed, Decimal)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_any_generated_valid_message_rebuilds_byte_for_byte(seed: int) -> None:
    from simulations.generator import GeneratorSettings, generate_messages

    for generated in generate_messages(GeneratorSettings(count=4, seed=seed)):
        assert build_pacs008(parse_pacs008(generated.xml)) == generated.xml


# -- the docstring examples are tests too --------------------------------------------------------------
@pytest.mark.parametrize(
    "module", ["codes", "duplicates", "errors", "messages", "model", "schemes", "structure", "validation",
               "xmlsafe"])
def test_docstring_examples_run(module: str) -> None:
    imported = importlib.import_module(f"fasterpay.iso20022.{module}")
    result = doctest.testmod(imported, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_reason_code_has_a_description() -> None:
    assert set(REASON_DESCRIPTIONS) == set(ReasonCode)
    assert str(ReasonCode.AC01) == "AC01" and ReasonCode.AC01 == "AC01"
