"""Layered validation: every bad input gets its exact reason code, one bad transaction leaves the rest alone,
duplicates are caught, and scheme rules are data."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from iso20022_samples import (
    CREATED,
    GB_IBAN_2,
    UETR,
    edit,
    fps_transfer,
    message,
    sepa_transfer,
    xml,
)

from fasterpay.iso20022 import (
    SEPA_INST,
    UK_FPS,
    Account,
    Agent,
    DuplicateDetector,
    GroupStatus,
    InMemoryDuplicateDetector,
    Pacs008Validator,
    Party,
    PaymentType,
    ReasonCode,
    RequiredField,
    SchemeRules,
    TransactionStatus,
    UnknownSchemeError,
    build_pacs002,
    build_pacs008,
    parse_pacs002,
)

R = ReasonCode
_TX1 = "/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]"
_GRP = "/Document/FIToFICstmrCdtTrf/GrpHdr"


def codes(data: bytes, **kwargs) -> tuple[ReasonCode, ...]:
    return Pacs008Validator(**kwargs).validate(data).reason_codes


# -- valid messages ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        xml(fps_transfer()),
        xml(fps_transfer(debtor_account=Account(other_id="12345678"),
                         debtor_agent=Agent(clearing_system="GBDSC", member_id="200000"))),
        xml(fps_transfer(creditor_account=Account(iban=GB_IBAN_2), creditor_agent=Agent(bic="NWBKGB2L"))),
        xml(fps_transfer(amount=Decimal("1000000.00"))),
        xml(fps_transfer(amount=Decimal("0.01"))),
        xml(fps_transfer(amount=Decimal("10.500"))),  # 10.50 written with a trailing zero: same value
        xml(sepa_transfer()),
        xml(sepa_transfer(amount=Decimal("5000000.00"))),  # no scheme-wide cap under the 2025 rulebook
        xml(fps_transfer(), fps_transfer(end_to_end_id="E2E-FPS-2"), sepa_transfer()),
    ],
    ids=["fps", "fps-uk-accounts", "fps-ibans", "fps-at-limit", "one-penny", "trailing-zero", "sepa",
         "sepa-large", "mixed-batch"],
)
def test_valid_messages_are_accepted(data: bytes) -> None:
    report = Pacs008Validator().validate(data)
    assert report.rejections == ()
    assert report.group_status is GroupStatus.ACTC
    assert all(t.status is TransactionStatus.ACTC and t.transaction is not None for t in report.transactions)


# -- every bad input gets its exact reason code --------------------------------------------------------
_FPS = xml(fps_transfer())
_SEPA = xml(sepa_transfer())

BAD_INPUTS = [
    # not XML, unsafe XML, wrong message
    ("empty", b"", R.FF01, "/"),
    ("not-xml", b"payment: 10 GBP", R.FF01, "/"),
    ("truncated", _FPS[: len(_FPS) // 2], R.FF01, "/"),
    ("not-utf8", edit(_FPS, b"Ada Lovelace", "Ada Lövelace".encode("latin-1")), R.FF01, "/"),
    ("utf16", _FPS.decode().replace("UTF-8", "UTF-16").encode("utf-16"), R.FF01, "/"),
    ("declared-latin1", edit(_FPS, b'encoding="UTF-8"', b'encoding="ISO-8859-1"'), R.FF01, "/"),
    ("dtd", edit(_FPS, b"?>", b"?><!DOCTYPE Document>"), R.FF01, "/"),
    ("wrong-namespace", edit(_FPS, b"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08", b"urn:example:pay"),
     R.FF01, "/"),
    ("wrong-version-09", edit(_FPS, b"pacs.008.001.08", b"pacs.008.001.09"), R.FF01, "/"),
    ("wrong-version-02", edit(_FPS, b"pacs.008.001.08", b"pacs.008.001.02"), R.FF01, "/"),
    ("no-namespace", edit(_FPS, b' xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"', b""), R.FF01, "/"),
    ("wrong-root", edit(edit(_FPS, b"<Document", b"<Doc"), b"</Document>", b"</Doc>"), R.FF01, "/"),
    # structure against the message model (group level: the whole message)
    ("msgid-too-long", edit(_FPS, b"<MsgId>MSG-1<", b"<MsgId>" + b"M" * 36 + b"<"), R.FF01, f"{_GRP}/MsgId"),
    ("bad-creation-time", edit(_FPS, b"<CreDtTm>2025-06-02T09:30:15Z", b"<CreDtTm>yesterday"), R.FF01,
     f"{_GRP}/CreDtTm"),
    ("bad-settlement-method", edit(_FPS, b"<SttlmMtd>CLRG", b"<SttlmMtd>CASH"), R.FF01,
     f"{_GRP}/SttlmInf/SttlmMtd"),
    ("unknown-group-element", edit(_FPS, b"</GrpHdr>", b"<Priority>HIGH</Priority></GrpHdr>"), R.FF01,
     f"{_GRP}/Priority"),
    ("text-in-group", edit(_FPS, b"<GrpHdr>", b"<GrpHdr>hello"), R.FF01, _GRP),
    ("no-transactions", _FPS[: _FPS.index(b"<CdtTrfTxInf>")] + b"</FIToFICstmrCdtTrf></Document>", R.FF01,
     "/Document/FIToFICstmrCdtTrf/CdtTrfTxInf"),
    # structure (transaction level)
    ("missing-end-to-end-id", edit(_FPS, b"<EndToEndId>E2E-FPS-1</EndToEndId>", b""), R.FF01,
     f"{_TX1}/PmtId/EndToEndId"),
    ("elements-out-of-order", edit(_FPS, b"<InstrId>INS-FPS-1</InstrId><EndToEndId>E2E-FPS-1</EndToEndId>",
                                   b"<EndToEndId>E2E-FPS-1</EndToEndId><InstrId>INS-FPS-1</InstrId>"),
     R.FF01, f"{_TX1}/PmtId/InstrId"),
    ("element-twice", edit(_FPS, b"<ChrgBr>SLEV</ChrgBr>", b"<ChrgBr>SLEV</ChrgBr><ChrgBr>SLEV</ChrgBr>"),
     R.FF01, f"{_TX1}/ChrgBr"),
    ("bad-charge-bearer", edit(_FPS, b"<ChrgBr>SLEV", b"<ChrgBr>MINE"), R.FF01, f"{_TX1}/ChrgBr"),
    ("uetr-not-v4", edit(_FPS, UETR.encode(), b"8a562c67-ca16-18ba-b074-65581be6f011"), R.FF01,
     f"{_TX1}/PmtId/UETR"),
    ("choice-with-two", edit(_FPS, b"<IBAN>GB82WEST12345698765432</IBAN>",
                             b"<IBAN>GB82WEST12345698765432</IBAN><Othr><Id>1</Id></Othr>"), R.FF01,
     f"{_TX1}/DbtrAcct/Id"),
    ("unknown-attribute", edit(_FPS, b'Ccy="GBP"', b'Ccy="GBP" Fx="1"'), R.FF01, f"{_TX1}/IntrBkSttlmAmt"),
    ("ns-foreign-element", edit(_FPS, b"<ChrgBr>SLEV</ChrgBr>", b'<ChrgBr>SLEV</ChrgBr><x:Y xmlns:x="urn:x"/>'),
     R.FF01, f"{_TX1}/Y"),
    # payment type and scheme rules
    ("no-payment-type", xml(fps_transfer(payment_type=None)), R.FF03, f"{_TX1}/PmtTpInf"),
    ("sepa-without-inst", xml(sepa_transfer(payment_type=PaymentType(service_level="SEPA"))), R.FF03,
     f"{_TX1}/PmtTpInf"),
    ("missing-debtor-name", xml(fps_transfer(debtor=Party(country="GB"))), R.RR02, f"{_TX1}/Dbtr/Nm"),
    ("missing-creditor-name", xml(sepa_transfer(creditor=Party())), R.RR03, f"{_TX1}/Cdtr/Nm"),
    ("missing-debtor-account", xml(fps_transfer(debtor_account=None)), R.RR01, f"{_TX1}/DbtrAcct"),
    ("missing-creditor-account", xml(sepa_transfer(creditor_account=None)), R.AC01, f"{_TX1}/CdtrAcct"),
    ("sepa-agent-without-bic", xml(sepa_transfer(creditor_agent=Agent(name="Some bank"))), R.RC01,
     f"{_TX1}/CdtrAgt/FinInstnId/BICFI"),
    ("fps-agent-without-id", xml(fps_transfer(creditor_agent=Agent(name="Some bank"))), R.RC01,
     f"{_TX1}/CdtrAgt/FinInstnId/BICFI"),
    ("sepa-no-settlement-date", xml(sepa_transfer(settlement_date=None)), R.DT01, f"{_TX1}/IntrBkSttlmDt"),
    ("sepa-no-acceptance-time", xml(sepa_transfer(acceptance_time=None)), R.CH21, f"{_TX1}/AccptncDtTm"),
    ("sepa-no-tx-id", xml(sepa_transfer(transaction_id=None)), R.CH21, f"{_TX1}/PmtId/TxId"),
    # currency and amount
    ("unknown-currency", xml(fps_transfer(currency="ZZZ")), R.AM11, f"{_TX1}/IntrBkSttlmAmt/@Ccy"),
    ("currency-without-minor-units", xml(fps_transfer(currency="XAU")), R.AM11, f"{_TX1}/IntrBkSttlmAmt/@Ccy"),
    ("lowercase-currency", edit(_FPS, b'Ccy="GBP"', b'Ccy="gbp"'), R.AM11, f"{_TX1}/IntrBkSttlmAmt/@Ccy"),
    ("missing-currency", edit(_FPS, b' Ccy="GBP"', b""), R.AM11, f"{_TX1}/IntrBkSttlmAmt/@Ccy"),
    ("eur-in-fps", xml(fps_transfer(currency="EUR")), R.AM03, f"{_TX1}/IntrBkSttlmAmt/@Ccy"),
    ("gbp-in-sepa", xml(sepa_transfer(currency="GBP")), R.AM03, f"{_TX1}/IntrBkSttlmAmt/@Ccy"),
    ("three-decimals-gbp", xml(fps_transfer(amount=Decimal("10.001"))), R.CH20, f"{_TX1}/IntrBkSttlmAmt"),
    ("six-decimals", edit(_FPS, b">250.00<", b">250.000001<"), R.CH20, f"{_TX1}/IntrBkSttlmAmt"),
    ("negative", edit(_FPS, b">250.00<", b">-250.00<"), R.AM12, f"{_TX1}/IntrBkSttlmAmt"),
    ("exponent", edit(_FPS, b">250.00<", b">2.5E2<"), R.AM12, f"{_TX1}/IntrBkSttlmAmt"),
    ("not-a-number", edit(_FPS, b">250.00<", b">NaN<"), R.AM12, f"{_TX1}/IntrBkSttlmAmt"),
    ("empty-amount", edit(_FPS, b">250.00<", b"><"), R.AM12, f"{_TX1}/IntrBkSttlmAmt"),
    ("too-many-digits", edit(_FPS, b">250.00<", b">1234567890123456789<"), R.AM12, f"{_TX1}/IntrBkSttlmAmt"),
    ("missing-amount", edit(_FPS, b'<IntrBkSttlmAmt Ccy="GBP">250.00</IntrBkSttlmAmt>', b""), R.AM12,
     f"{_TX1}/IntrBkSttlmAmt"),
    ("zero", xml(fps_transfer(amount=Decimal("0.00"))), R.AM01, f"{_TX1}/IntrBkSttlmAmt"),
    ("over-fps-limit", xml(fps_transfer(amount=Decimal("1000000.01"))), R.AM02, f"{_TX1}/IntrBkSttlmAmt"),
    # identifiers
    ("iban-check-digits", xml(fps_transfer(debtor_account=Account(iban="GB83WEST12345698765432"))), R.AC01,
     f"{_TX1}/DbtrAcct/Id/IBAN"),
    ("iban-unknown-country", xml(sepa_transfer(creditor_account=Account(iban="XX89370400440532013000"))), R.AC01,
     f"{_TX1}/CdtrAcct/Id/IBAN"),
    ("iban-wrong-length", xml(sepa_transfer(debtor_account=Account(iban="DE8937040044053201300"))), R.AC01,
     f"{_TX1}/DbtrAcct/Id/IBAN"),
    ("iban-breaks-pattern", edit(_FPS, b"<IBAN>GB82", b"<IBAN>gb82"), R.AC01, f"{_TX1}/DbtrAcct/Id/IBAN"),
    ("sepa-non-iban-account", xml(sepa_transfer(creditor_account=Account(other_id="12345678"))), R.AC01,
     f"{_TX1}/CdtrAcct/Id/Othr"),
    ("uk-account-7-digits", xml(fps_transfer(creditor_account=Account(other_id="1234567"))), R.AC01,
     f"{_TX1}/CdtrAcct/Id/Othr/Id"),
    ("uk-account-without-sort-code", xml(fps_transfer(creditor_agent=Agent(bic="BARCGB22"))), R.RC08,
     f"{_TX1}/CdtrAgt/FinInstnId/ClrSysMmbId"),
    ("sort-code-5-digits", xml(fps_transfer(creditor_agent=Agent(clearing_system="GBDSC", member_id="60161"))),
     R.RC08, f"{_TX1}/CdtrAgt/FinInstnId/ClrSysMmbId/MmbId"),
    ("bic-unknown-country", xml(fps_transfer(debtor_agent=Agent(bic="WESTXX2L"))), R.RC01,
     f"{_TX1}/DbtrAgt/FinInstnId/BICFI"),
    ("bic-7-characters", xml(sepa_transfer(creditor_agent=Agent(bic="BNPAFRP")), check=False), R.RC01,
     f"{_TX1}/CdtrAgt/FinInstnId/BICFI"),
    ("bic-lowercase", xml(sepa_transfer(creditor_agent=Agent(bic="bnpafrpp")), check=False), R.RC01,
     f"{_TX1}/CdtrAgt/FinInstnId/BICFI"),
    # group consistency
    ("nb-of-txs-mismatch", edit(_FPS, b"<NbOfTxs>1<", b"<NbOfTxs>2<"), R.AM19, f"{_GRP}/NbOfTxs"),
    ("control-sum-wrong", edit(_FPS, b"</NbOfTxs>", b"</NbOfTxs><CtrlSum>250.01</CtrlSum>"), R.AM16,
     f"{_GRP}/CtrlSum"),
    ("total-wrong", edit(_FPS, b"</NbOfTxs>", b'</NbOfTxs><TtlIntrBkSttlmAmt Ccy="GBP">1</TtlIntrBkSttlmAmt>'),
     R.AM16, f"{_GRP}/TtlIntrBkSttlmAmt"),
    ("instructing-agent-bad-bic", xml(instructing_agent=Agent(bic="NWBKQQ2L")), R.RC01,
     f"{_GRP}/InstgAgt/FinInstnId/BICFI"),
]


@pytest.mark.parametrize(("data", "reason", "path"), [v[1:] for v in BAD_INPUTS], ids=[v[0] for v in BAD_INPUTS])
def test_each_bad_input_gets_exactly_its_reason_code(data: bytes, reason: ReasonCode, path: str) -> None:
    report = Pacs008Validator().validate(data)
    assert report.reason_codes == (reason,)
    assert report.group_status is GroupStatus.RJCT
    assert path in {r.path for r in report.rejections}
    status = build_pacs002(report.to_pacs002("STS-1", CREATED))  # every rejection can be answered
    answered = parse_pacs002(status)
    answered_codes = {r.code for r in answered.group_reasons} | {
        r.code for t in answered.transactions for r in t.reasons}
    assert answered_codes == {reason}


def test_correct_totals_and_group_values_are_accepted() -> None:
    data = edit(_FPS, b"</NbOfTxs>", b'</NbOfTxs><CtrlSum>250</CtrlSum><TtlIntrBkSttlmAmt Ccy="GBP">250.00'
                                    b"</TtlIntrBkSttlmAmt><IntrBkSttlmDt>2025-06-02</IntrBkSttlmDt>")
    assert codes(data) == ()
    sepa = edit(xml(sepa_transfer(settlement_date=None)), b"</NbOfTxs>",
                b"</NbOfTxs><IntrBkSttlmDt>2025-06-02</IntrBkSttlmDt>")
    assert codes(sepa) == ()  # the settlement date may be given once for the whole message


@pytest.mark.parametrize(
    ("currency", "amount", "expected"),
    [
        ("JPY", "100", ()),
        ("JPY", "100.5", (R.CH20,)),
        ("BHD", "1.234", ()),
        ("BHD", "1.2345", (R.CH20,)),
        ("GBP", "1.23", ()),
        ("GBP", "1.230", ()),
        ("GBP", "1.231", (R.CH20,)),
        ("CLF", "1.2345", ()),
    ],
)
def test_precision_follows_the_iso_4217_minor_units(currency: str, amount: str, expected: tuple) -> None:
    anywhere = SchemeRules("test", PaymentType(local_instrument_proprietary="FPS"), frozenset({currency}),
                           None, frozenset({"iban", "uk_account"}))
    data = xml(fps_transfer(currency=currency, amount=Decimal(amount)))
    assert codes(data, schemes=[anywhere]) == expected


# -- a batch: one bad transaction or message never affects the others ----------------------------------
def test_one_bad_transaction_is_rejected_and_the_others_are_accepted() -> None:
    data = xml(
        fps_transfer(end_to_end_id="E-OK-1"),
        fps_transfer(end_to_end_id="E-BAD-IBAN", debtor_account=Account(iban="GB83WEST12345698765432")),
        fps_transfer(end_to_end_id="E-OK-2", amount=Decimal("999.99")),
        fps_transfer(end_to_end_id="E-OVER", amount=Decimal("2000000.00")),
    )
    data = edit(data, b"<EndToEndId>E-OK-2</EndToEndId>", b"<EndToEndId>E-OK-2</EndToEndId><Bad/>")
    report = Pacs008Validator().validate(data)
    assert [(t.end_to_end_id, t.status.value, t.reason) for t in report.transactions] == [
        ("E-OK-1", "ACTC", None),
        ("E-BAD-IBAN", "RJCT", R.AC01),
        ("E-OK-2", "RJCT", R.FF01),
        ("E-OVER", "RJCT", R.AM02),
    ]
    assert report.group_status is GroupStatus.PART
    assert [t.end_to_end_id for t in report.accepted] == ["E-OK-1"]
    assert report.transactions[2].rejections[0].path == "/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[3]/PmtId/Bad"

    status = parse_pacs002(build_pacs002(report.to_pacs002("STS-9", CREATED)))
    assert status.group_status is GroupStatus.PART
    assert status.original_msg_id == "MSG-1" and status.original_nb_of_txs == 4
    assert [(t.original_end_to_end_id, t.status.value, [r.code for r in t.reasons]) for t in status.transactions] == [
        ("E-OK-1", "ACTC", []),
        ("E-BAD-IBAN", "RJCT", [R.AC01]),
        ("E-OK-2", "RJCT", [R.FF01]),
        ("E-OVER", "RJCT", [R.AM02]),
    ]
    assert status.transactions[1].reasons[0].additional_info == (
        "Dbtr IBAN is invalid (InvalidChecksumDigits)", "/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[2]/DbtrAcct/Id/IBAN")


def test_a_batch_of_messages_keeps_every_outcome_whatever_the_bad_ones_do() -> None:
    bomb = edit(_FPS, b"?>", b'?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>')
    batch = [xml(msg_id="M-1"), b"<broken", bomb, xml(fps_transfer(currency="USD"), msg_id="M-4"),
             b"x" * 300_000, xml(sepa_transfer(), msg_id="M-6")]
    reports = Pacs008Validator().validate_batch(batch)
    assert [r.reason_codes for r in reports] == [(), (R.FF01,), (R.FF01,), (R.AM03,), (R.FF01,), ()]
    assert [r.group_status.value for r in reports] == ["ACTC", "RJCT", "RJCT", "RJCT", "RJCT", "ACTC"]
    assert reports[4].rejections[0].message == "message is 300000 bytes; the limit is 262144"


def test_a_message_rejected_as_a_whole_still_accounts_for_each_transaction() -> None:
    data = edit(xml(fps_transfer(), fps_transfer(end_to_end_id="E2")), b"<NbOfTxs>2<", b"<NbOfTxs>3<")
    report = Pacs008Validator().validate(data)
    assert [(t.end_to_end_id, t.status.value, t.reason) for t in report.transactions] == [
        ("E2E-FPS-1", "RJCT", R.AM19), ("E2", "RJCT", R.AM19)]
    status = report.to_pacs002("STS-1", CREATED)
    assert status.group_status is GroupStatus.RJCT and status.transactions == ()
    assert [r.code for r in status.group_reasons] == [R.AM19]


def test_identifiers_that_do_not_fit_a_pacs002_are_left_out_of_it() -> None:
    data = edit(_FPS, b"<EndToEndId>E2E-FPS-1<", b"<EndToEndId>" + b"E" * 40 + b"<")
    report = Pacs008Validator().validate(data)
    assert report.transactions[0].end_to_end_id is None
    assert report.transactions[0].transaction_id == "TX-FPS-1"
    parse_pacs002(build_pacs002(report.to_pacs002("STS-1", CREATED)))


# -- duplicates ----------------------------------------------------------------------------------------
def test_the_same_message_twice_is_a_duplicate_message() -> None:
    validator = Pacs008Validator()
    assert validator.validate(_FPS).reason_codes == ()
    second = validator.validate(_FPS)
    assert second.reason_codes == (R.DU01,)
    assert second.rejections[0].path == f"{_GRP}/MsgId"


def test_a_reused_end_to_end_id_is_a_duplicate_payment_and_the_rest_of_its_message_passes() -> None:
    validator = Pacs008Validator()
    assert validator.validate(xml(msg_id="M-1")).reason_codes == ()
    report = validator.validate(xml(fps_transfer(end_to_end_id="E-NEW"), fps_transfer(), msg_id="M-2"))
    assert [(t.end_to_end_id, t.reason) for t in report.transactions] == [("E-NEW", None), ("E2E-FPS-1", R.DU04)]


def test_the_same_end_to_end_id_twice_in_one_message_rejects_the_second() -> None:
    report = Pacs008Validator().validate(xml(fps_transfer(), fps_transfer()))
    assert [t.reason for t in report.transactions] == [None, R.DU04]


def test_a_rejected_payment_does_not_use_up_its_end_to_end_id() -> None:
    validator = Pacs008Validator()
    bad = xml(fps_transfer(debtor_account=Account(iban="GB83WEST12345698765432")), msg_id="M-1")
    assert validator.validate(bad).reason_codes == (R.AC01,)
    assert validator.validate(xml(msg_id="M-2")).reason_codes == ()  # corrected and sent again


def test_an_unreadable_message_does_not_use_up_its_msg_id() -> None:
    validator = Pacs008Validator()
    assert validator.validate(edit(_FPS, b"<NbOfTxs>1<", b"<NbOfTxs>9<")).reason_codes == (R.AM19,)
    assert validator.validate(_FPS).reason_codes == ()


class _RecordingDetector:
    """A stand-in for the DynamoDB-backed detector: any class with the two methods will do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def seen_message(self, msg_id: str) -> bool:
        self.calls.append(("message", msg_id))
        return False

    def seen_end_to_end(self, end_to_end_id: str) -> bool:
        self.calls.append(("end_to_end", end_to_end_id))
        return end_to_end_id == "E-SEEN"


def test_any_duplicate_detector_plugs_in() -> None:
    detector = _RecordingDetector()
    assert isinstance(detector, DuplicateDetector) and isinstance(InMemoryDuplicateDetector(), DuplicateDetector)
    report = Pacs008Validator(duplicates=detector).validate(
        xml(fps_transfer(end_to_end_id="E-SEEN"), fps_transfer(end_to_end_id="E-BAD", currency="EUR"),
            fps_transfer(end_to_end_id="E-NEW")))
    assert [t.reason for t in report.transactions] == [R.DU04, R.AM03, None]
    assert detector.calls == [("message", "MSG-1"), ("end_to_end", "E-SEEN"), ("end_to_end", "E-NEW")]


# -- scheme rules are data -----------------------------------------------------------------------------
def test_limits_are_data_not_code() -> None:
    pre_2025_sepa = replace(SEPA_INST, max_amount=Decimal("100000.00"))
    data = xml(sepa_transfer(amount=Decimal("100000.01")))
    assert codes(data) == ()
    assert codes(data, schemes=[UK_FPS, pre_2025_sepa]) == (R.AM02,)
    stricter = replace(UK_FPS, limit_reason=R.AM13, max_amount=Decimal("100.00"))
    assert codes(xml(), schemes=[stricter]) == (R.AM13,)


def test_required_fields_are_data_too() -> None:
    needs_remittance = replace(UK_FPS, required=(*UK_FPS.required, RequiredField("RmtInf/Ustrd", R.CH21)))
    assert codes(xml(fps_transfer(remittance=())), schemes=[needs_remittance]) == (R.CH21,)
    assert codes(xml(), schemes=[needs_remittance]) == ()


def test_rules_load_from_plain_data() -> None:
    rules = SchemeRules.from_mapping({
        "name": "sepa_inst", "payment_type": {"service_level": "SEPA", "local_instrument": "INST"},
        "currencies": ["EUR"], "max_amount": None, "account_kinds": ["iban"],
        "required": [{"path": "Dbtr/Nm", "reason": "RR02"}, {"path": "IntrBkSttlmDt", "reason": "DT01",
                                                             "from_group": True}],
    })
    assert rules.required[1] == RequiredField("IntrBkSttlmDt", R.DT01, from_group=True)
    assert codes(xml(sepa_transfer(debtor=Party())), schemes=[rules]) == (R.RR02,)
    with pytest.raises(ValueError, match="never a float"):
        SchemeRules.from_mapping({"name": "x", "currencies": ["GBP"], "max_amount": 1e6, "account_kinds": []})
    with pytest.raises(ValueError, match="unknown account kinds"):
        replace(UK_FPS, account_kinds=frozenset({"bban"}))


def test_the_channel_can_force_a_scheme() -> None:
    untagged = xml(fps_transfer(payment_type=None))
    assert codes(untagged) == (R.FF03,)
    assert Pacs008Validator().validate(untagged, scheme="uk_fps").reason_codes == ()
    assert Pacs008Validator().validate(untagged, scheme=SEPA_INST).reason_codes == (R.RC01, R.DT01, R.CH21)
    with pytest.raises(UnknownSchemeError, match="unknown scheme 'bacs'; use one of: uk_fps, sepa_inst"):
        Pacs008Validator().validate(untagged, scheme="bacs")


def test_outcomes_name_the_scheme_and_carry_the_typed_payment() -> None:
    report = Pacs008Validator().validate(xml(fps_transfer(), sepa_transfer()))
    assert [t.scheme for t in report.transactions] == ["uk_fps", "sepa_inst"]
    assert report.accepted == (fps_transfer(), sepa_transfer())
    assert report.header is not None and report.header.msg_id == "MSG-1"
    assert build_pacs008(message(*report.accepted)) == xml(fps_transfer(), sepa_transfer())
