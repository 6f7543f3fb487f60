"""The ISO 20022 speed-ups answer exactly as the slow paths do: the plain binder gives xsdata's objects (and
leaves everything else to xsdata's parser), and the structure check's per-class tables stay bounded."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Comment, Element, SubElement

import pytest
from iso20022_samples import fps_transfer, sepa_transfer, xml
from pyiso20022.pacs import pacs_002_001_10 as p2
from pyiso20022.pacs import pacs_008_001_08 as p8
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.handlers import XmlEventHandler

from fasterpay.iso20022 import (
    MessageFormatError,
    Pacs008Validator,
    build_pacs002,
    parse_pacs002,
    parse_pacs008,
    parse_xml,
)
from fasterpay.iso20022 import messages, structure
from fasterpay.iso20022.messages import bind
from simulations.generator import GeneratorSettings, generate_messages

NS = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
BATCH = generate_messages(GeneratorSettings(count=60, seed=5, invalid_rate=0.2, duplicate_rate=0.05))


def _xsdata(element: Element, binding: type) -> tuple[str, Any]:
    """What xsdata's own parser makes of ``element``: ("ok", object) or ("error", message)."""
    parser = XmlParser(config=messages._PARSER_CONFIG, context=messages._CONTEXT, handler=XmlEventHandler)
    try:
        return "ok", parser.parse(copy.deepcopy(element), binding)
    except (TypeError, ValueError) as exc:  # what bind() turns into a rejection
        return "error", str(exc)


def _plain(element: Element, binding: type) -> Any:
    return messages._bind_plain(element, messages._CONTEXT.fetch(binding), root=True)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and repr(a) == repr(b)  # repr: Decimal("NaN") != Decimal("NaN")


def _parts(root: Element) -> list[tuple[Element, type]]:
    """The trees the parser and the validator bind: the document, the group header, each transaction."""
    parts = [(root, p8.Document)]
    body = root.find(f"{{{NS}}}FIToFICstmrCdtTrf")
    if body is not None:
        parts += [(e, p8.GroupHeader93) for e in body.findall(f"{{{NS}}}GrpHdr")]
        parts += [(e, p8.CreditTransferTransaction39) for e in body.findall(f"{{{NS}}}CdtTrfTxInf")]
    return parts


def _mutate(root: Element, rng: random.Random) -> None:
    """One random edit: the kinds of trees the plain binder must bind as xsdata does, or leave to it."""
    element = rng.choice(list(root.iter()))
    children = list(element)
    edit = rng.randrange(12)
    if edit == 0 and children:
        element.remove(rng.choice(children))
    elif edit == 1 and children:
        element.insert(0, copy.deepcopy(rng.choice(children)))
    elif edit == 2:
        element.text = rng.choice([None, "", " ", " 10.5 ", "NaN", "2025-13-01", "2025-01-01T24:00:00Z", "clrg", "x"])
    elif edit == 3:
        element.tail = rng.choice([None, "\n  ", "text"])
    elif edit == 4:
        element.set(XSI + rng.choice(["type", "nil", "schemaLocation"]), rng.choice(["true", "xs:string", "urn:x"]))
    elif edit == 5:
        element.set(rng.choice(["Ccy", "Foo", "{urn:x}a"]), rng.choice(["EUR", ""]))
    elif edit == 6:
        SubElement(element, f"{{{NS}}}{rng.choice(['Nm', 'Ustrd', 'Foo'])}").text = "v"
    elif edit == 7:
        envelope = SubElement(SubElement(element, f"{{{NS}}}SplmtryData"), f"{{{NS}}}Envlp")
        SubElement(envelope, "{urn:other}Any").text = "x"  # a wildcard: xsdata's parser binds it
    elif edit == 8 and children:
        rng.shuffle(children)
        element[:] = children
    elif edit == 9:
        element.append(Comment("c"))
    elif edit == 10 and children:
        element.remove(rng.choice(children))
        element.text = "12"
    elif edit == 11:
        element.tag = f"{{urn:wrong}}{element.tag.rsplit('}', 1)[-1]}" if isinstance(element.tag, str) else element.tag


def test_the_plain_binder_binds_every_checked_message_exactly_as_xsdata() -> None:
    checked = 0
    for generated in BATCH:
        try:
            root = parse_xml(generated.xml)
        except MessageFormatError:
            continue
        if structure.check_element(root, p8.Document, "/Document"):
            continue
        for element, binding in _parts(root):
            outcome, expected = _xsdata(element, binding)
            assert outcome == "ok"
            assert _same(_plain(element, binding), expected)  # the plain path, not the fallback
            checked += 1
    assert checked > 100


def test_the_plain_binder_binds_pacs002_exactly_as_xsdata() -> None:
    validator = Pacs008Validator()
    for generated in BATCH[:20]:
        report = validator.validate(generated.xml).to_pacs002("STS-1", datetime(2025, 1, 1, tzinfo=UTC))
        root = parse_xml(build_pacs002(report))
        assert _same(_plain(root, p2.Document), _xsdata(root, p2.Document)[1])


def test_edited_trees_bind_as_xsdata_binds_them_or_fail_as_it_fails() -> None:
    rng = random.Random(20)
    roots = [parse_xml(xml(fps_transfer())), parse_xml(xml(sepa_transfer()))]
    plain = 0
    for _ in range(150):
        root = copy.deepcopy(rng.choice(roots))
        for _ in range(rng.randrange(1, 4)):
            _mutate(root, rng)
        for element, binding in _parts(root):
            outcome, expected = _xsdata(element, binding)
            try:
                got = _plain(element, binding)
            except Exception:  # noqa: BLE001 - not plain: bind() hands it to xsdata's parser
                got = None
            else:
                plain += 1
                assert outcome == "ok" and _same(got, expected)
            if outcome == "ok":
                assert _same(bind(element, binding), expected)
            else:
                with pytest.raises(MessageFormatError) as caught:
                    bind(element, binding)
                assert caught.value.rejections[0].message == f"cannot bind the message ({expected})"
    assert plain > 80  # most edits stay plain, so the comparison above means something


def test_a_wildcard_xsi_type_or_trailing_text_is_left_to_xsdata() -> None:
    root = parse_xml(xml(fps_transfer()))
    tx = root.find(f"{{{NS}}}FIToFICstmrCdtTrf/{{{NS}}}CdtTrfTxInf")
    assert tx is not None
    with_wildcard = copy.deepcopy(tx)
    envelope = SubElement(SubElement(with_wildcard, f"{{{NS}}}SplmtryData"), f"{{{NS}}}Envlp")
    SubElement(envelope, "{urn:other}Any").text = "x"
    with_xsi_type = copy.deepcopy(tx)
    with_xsi_type.set(XSI + "type", "CreditTransferTransaction39")
    with_tail = copy.deepcopy(tx)
    with_tail.tail = "trailing"
    for element in (with_wildcard, with_xsi_type, with_tail):
        with pytest.raises(messages._NotPlain):
            _plain(element, p8.CreditTransferTransaction39)
        outcome, expected = _xsdata(element, p8.CreditTransferTransaction39)
        assert outcome == "ok"
        assert _same(bind(element, p8.CreditTransferTransaction39), expected)
    assert bind(with_tail, p8.CreditTransferTransaction39) == "trailing"  # xsdata's answer, kept as it was


def test_parsing_and_validating_plain_messages_never_need_xsdatas_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The speed-up is the plain binder: a checked message must never fall back to xsdata's event parser."""
    def must_not_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("xsdata's parser ran for a plain message")

    monkeypatch.setattr(messages.XmlParser, "parse", must_not_parse)
    data = xml(sepa_transfer())
    assert Pacs008Validator().validate(data).reason_codes == ()
    assert parse_pacs008(data).transactions[0].end_to_end_id == "E2E-SEPA-1"
    report = Pacs008Validator().validate(data).to_pacs002("STS-1", datetime(2025, 1, 1, tzinfo=UTC))
    assert parse_pacs002(build_pacs002(report)).original_msg_id == report.original_msg_id


def test_the_per_class_tables_are_bounded_by_the_bindings() -> None:
    for generated in BATCH:
        Pacs008Validator().validate(generated.xml)
    classes = {c for module in (p8, p2) for c in vars(module).values() if isinstance(c, type)}
    assert messages._is_plain.cache_info().currsize <= len(classes)
    assert structure._meta.cache_info().currsize <= len(classes)
