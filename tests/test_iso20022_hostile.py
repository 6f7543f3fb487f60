"""Hostile and odd input: validation never raises, the parser raises only its documented error, the parser
agrees with the official pacs.008.001.08 XSD on which messages are well-formed, and the schemes' account
rules hold (UK FPS between UK accounts, SEPA Instant within the SEPA zone)."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iso20022_samples import DE_IBAN, FR_IBAN, GB_IBAN_1, GB_IBAN_2, fps_transfer, sepa_transfer, xml

from fasterpay.iso20022 import (
    Account,
    GroupStatus,
    MessageFormatError,
    Pacs008Validator,
    ReasonCode,
    parse_pacs008,
)
from fasterpay.iso20022.xsdtime import XsdValueError, parse_xsd_date, parse_xsd_datetime
from simulations.generator import GeneratorSettings, generate_messages

XSD = Path(__file__).parent / "data" / "pacs.008.001.08.xsd"  # the official schema (ISO 20022, 2019 release)
NS = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"
TR_IBAN = "TR330006100519786457841326"  # a valid IBAN of a country outside the SEPA zone
VALID = [m.xml for m in generate_messages(GeneratorSettings(count=40, seed=11, invalid_rate=0.0))
         if m.case == "valid"]


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(XSD))


def _edit(data: bytes, pattern: str, replacement: str) -> bytes:
    text, count = re.subn(pattern, replacement, data.decode(), count=1)
    assert count == 1, pattern
    return text.encode()


# -- the review's vectors: each once crashed the validator or the parser, or was wrongly accepted -----------
HOSTILE = {
    "created at +25:00": (r"(<CreDtTm>[^<]*?)(Z|[+-]\d\d:\d\d)?</CreDtTm>", r"\g<1>+25:00</CreDtTm>", ReasonCode.FF01),
    "settlement date 0000-01-01": (r"<IntrBkSttlmDt>[^<]*</IntrBkSttlmDt>",
                                   "<IntrBkSttlmDt>0000-01-01</IntrBkSttlmDt>", ReasonCode.DT01),
    "amount 1e999999999": (r"(<IntrBkSttlmAmt[^>]*>)[^<]*<", r"\g<1>1e999999999<", ReasonCode.AM12),
    "settlement date +15:00": (r"<IntrBkSttlmDt>([^<]*)</IntrBkSttlmDt>", r"<IntrBkSttlmDt>\1+15:00</IntrBkSttlmDt>",
                               ReasonCode.DT01),
    "created on 30 February": (r"<CreDtTm>\d{4}-\d\d-\d\d", "<CreDtTm>2026-02-30", ReasonCode.FF01),
    "created at 24:30": (r"<CreDtTm>(\d{4}-\d\d-\d\d)T[^<]*</CreDtTm>", r"<CreDtTm>\1T24:30:00Z</CreDtTm>",
                         ReasonCode.FF01),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_field_is_rejected_with_a_reason_never_raised(case: str, schema: xmlschema.XMLSchema10) -> None:
    pattern, replacement, reason = HOSTILE[case]
    data = _edit(VALID[0], pattern, replacement)
    report = Pacs008Validator().validate(data)
    assert report.group_status is GroupStatus.RJCT
    assert report.reason_codes == (reason,)
    with pytest.raises(MessageFormatError) as caught:
        parse_pacs008(data)
    assert caught.value.reason is reason
    assert not schema.is_valid(data.decode())  # the XSD refuses each of them too


def test_24_00_00_is_the_end_of_the_day_as_the_xsd_says(schema: xmlschema.XMLSchema10) -> None:
    data = _edit(VALID[0], r"<CreDtTm>[^<]*</CreDtTm>", "<CreDtTm>2026-11-28T24:00:00Z</CreDtTm>")
    assert schema.is_valid(data.decode())
    assert Pacs008Validator().validate(data).group_status is GroupStatus.ACTC
    assert parse_pacs008(data).header.created_at == datetime(2026, 11, 29, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2026-11-28T10:00:00+14:01", "2026-11-28T10:00:00+14:60", "2026-13-01T00:00:00",
                                  "2026-11-28T23:59:60Z", "9999-12-31T24:00:00Z", "2026-11-28", " ", "1e9"])
def test_xsd_datetimes_out_of_range_raise_the_documented_error(text: str) -> None:
    with pytest.raises(XsdValueError):
        parse_xsd_datetime(text)


def test_xsd_dates_keep_the_calendar() -> None:
    assert parse_xsd_date("2028-02-29-14:00").isoformat() == "2028-02-29"
    for bad in ("2027-02-29", "2026-11-28+14:30", "0000-01-01", "26-11-28"):
        with pytest.raises(XsdValueError):
            parse_xsd_date(bad)


# -- the schemes' account rules ----------------------------------------------------------------------------
@pytest.mark.parametrize(("debtor", "creditor", "reason"), [
    (DE_IBAN, FR_IBAN, ReasonCode.AC02),  # the review's case: GBP FPS between two euro-area accounts
    (GB_IBAN_1, FR_IBAN, ReasonCode.AC03),
    (DE_IBAN, GB_IBAN_2, ReasonCode.AC02),
])
def test_uk_faster_payments_moves_money_between_uk_accounts_only(debtor: str, creditor: str,
                                                                 reason: ReasonCode) -> None:
    data = xml(fps_transfer(debtor_account=Account(iban=debtor), creditor_account=Account(iban=creditor)))
    outcome = Pacs008Validator().validate(data).transactions[0]
    assert (outcome.accepted, outcome.reason) == (False, reason)
    assert debtor not in outcome.rejections[0].message and creditor not in outcome.rejections[0].message


def test_uk_faster_payments_takes_gb_ibans_and_uk_account_numbers() -> None:
    report = Pacs008Validator().validate(xml(
        fps_transfer(debtor_account=Account(iban=GB_IBAN_1), creditor_account=Account(iban=GB_IBAN_2),
                     end_to_end_id="E2E-IBAN"),
        fps_transfer(end_to_end_id="E2E-SORTCODE")))
    assert report.group_status is GroupStatus.ACTC, report.rejections


@pytest.mark.parametrize(("debtor", "creditor", "reason"), [
    (TR_IBAN, FR_IBAN, ReasonCode.AC02),
    (DE_IBAN, TR_IBAN, ReasonCode.AC03),
])
def test_sepa_instant_moves_money_within_the_sepa_zone_only(debtor: str, creditor: str, reason: ReasonCode) -> None:
    data = xml(sepa_transfer(debtor_account=Account(iban=debtor), creditor_account=Account(iban=creditor)))
    outcome = Pacs008Validator().validate(data).transactions[0]
    assert (outcome.accepted, outcome.reason) == (False, reason)


def test_sepa_instant_takes_sepa_zone_ibans() -> None:
    data = xml(sepa_transfer(debtor_account=Account(iban=DE_IBAN), creditor_account=Account(iban=FR_IBAN)))
    assert Pacs008Validator().validate(data).group_status is GroupStatus.ACTC


# -- property: mutated messages ----------------------------------------------------------------------------
_VALUES = st.one_of(
    st.sampled_from(["", " ", "0", "-1", "1e999999999", "NaN", "1.123456", "99999999999999999999", "12.5",
                     "GBP", "EUR", "XXX", "gbp", "2026-11-28", "0000-01-01", "2026-02-30", "2026-11-28+15:00",
                     "2026-11-28T24:00:00Z", "2026-11-28T10:00:00+25:00", "2026-11-28T10:00:00", "true",
                     "GB82WEST12345698765432", "GB00WEST12345698765432", "DE89370400440532013000",
                     "NWBKGB2L", "nwbkgb2l", "FPS", "SEPA", "INST", "CLRG", "SLEV", "x" * 141, "é", "\u0000"]),
    st.text(max_size=40),
)


def _element_paths(root: ET.Element) -> list[tuple[ET.Element, ET.Element]]:
    """(parent, child) for every element below the root."""
    return [(parent, child) for parent in root.iter() for child in parent]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(VALID))
    kind = draw(st.sampled_from(["delete", "duplicate", "reorder", "value", "attribute", "truncate"]))
    if kind == "truncate":
        return data[:draw(st.integers(min_value=0, max_value=len(data) - 1))]
    root = ET.fromstring(data)
    pairs = _element_paths(root)
    parent, child = draw(st.sampled_from(pairs))
    index = list(parent).index(child)
    if kind == "delete":
        parent.remove(child)
    elif kind == "duplicate":
        parent.insert(index + 1, copy.deepcopy(child))
    elif kind == "reorder":
        siblings = list(parent)
        other = draw(st.integers(min_value=0, max_value=len(siblings) - 1))
        siblings[index], siblings[other] = siblings[other], siblings[index]
        for s in list(parent):
            parent.remove(s)
        parent.extend(siblings)
    elif kind == "value":
        leaves = [c for _, c in pairs if len(c) == 0]
        leaf = draw(st.sampled_from(leaves))
        leaf.text = draw(_VALUES)
    else:
        amounts = [c for _, c in pairs if "Ccy" in c.attrib]
        target = draw(st.sampled_from(amounts))
        target.set("Ccy", draw(_VALUES))
    ET.register_namespace("", NS)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _xsd_valid(schema: xmlschema.XMLSchema10, data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    try:
        return bool(schema.is_valid(text))
    except Exception:  # noqa: BLE001 - not well-formed XML: the schema cannot even read it
        return False


def _outside_python_years(data: bytes) -> bool:
    """XSD allows years beyond 9999 and before 0001; this service refuses them (documented in xsdtime)."""
    return re.search(rb">-?\d{5,}-\d\d-\d\d|>-\d{4}-\d\d-\d\d", data) is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_mutated_messages_never_crash_and_the_parser_agrees_with_the_xsd(
        data: bytes, schema: xmlschema.XMLSchema10) -> None:
    report = Pacs008Validator().validate(data)  # must not raise
    for rejection in report.rejections:
        assert isinstance(rejection.reason, ReasonCode) and rejection.message
    try:
        parse_pacs008(data)
        parsed = True
    except MessageFormatError as exc:
        parsed = False
        assert all(isinstance(r.reason, ReasonCode) for r in exc.rejections)
    if not _outside_python_years(data):
        assert parsed == _xsd_valid(schema, data), data.decode("utf-8", "replace")
    if not parsed:
        assert report.group_status is GroupStatus.RJCT or any(not t.accepted for t in report.transactions)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_never_crash(data: bytes) -> None:
    report = Pacs008Validator().validate(data)
    assert report.group_status is GroupStatus.RJCT and report.reason_codes
    with pytest.raises(MessageFormatError):
        parse_pacs008(data)
