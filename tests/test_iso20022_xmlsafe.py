"""The hardened parser: XXE, entity expansion, oversized and malformed input are rejected with FF01, quickly,
before anything is expanded, fetched or read."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from iso20022_samples import CREATED, edit, xml

from fasterpay.iso20022 import (
    DEFAULT_MAX_MESSAGE_BYTES,
    InvalidPaymentError,
    MessageFormatError,
    MessageTooLargeError,
    Pacs008Validator,
    ReasonCode,
    UnsafeXmlError,
    build_pacs002,
    parse_pacs008,
    parse_xml,
)
from fasterpay.iso20022 import xmlsafe

_FPS = xml()


def _with_doctype(doctype: str, reference: str = "") -> bytes:
    data = edit(_FPS, b"?>", b"?>" + doctype.encode())
    return edit(data, b"<Nm>Ada Lovelace</Nm>", f"<Nm>{reference or 'Ada'}</Nm>".encode())


def _validate_with_deadline(data: bytes, seconds: float = 5.0):
    """Validate in a thread: a parser that opened the FIFO below would block there forever."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(Pacs008Validator().validate(data)), daemon=True)
    started = time.perf_counter()
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the parser blocked: it tried to read the external entity"
    return result[0], time.perf_counter() - started


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A named pipe with no writer: opening it for reading blocks, so any read attempt hangs the test."""
    path = tmp_path / "secret.fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("doctype", "reference"),
    [
        ('<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file://{path}">]>', "&xxe;"),
        ('<!DOCTYPE Document [<!ENTITY % p SYSTEM "file://{path}"> %p;]>', ""),
        ('<!DOCTYPE Document SYSTEM "file://{path}">', ""),
        ('<!DOCTYPE Document PUBLIC "-//X//EN" "file://{path}">', ""),
    ],
    ids=["external-entity", "parameter-entity", "external-dtd", "public-dtd"],
)
def test_xxe_is_rejected_with_ff01_without_reading_the_file(fifo: Path, doctype: str, reference: str) -> None:
    data = _with_doctype(doctype.format(path=fifo), reference)
    report, elapsed = _validate_with_deadline(data)
    assert report.reason_codes == (ReasonCode.FF01,)
    assert "DTD, entities or external references" in report.rejections[0].message
    assert elapsed < 1.0
    with pytest.raises(UnsafeXmlError):
        parse_pacs008(data)


def test_xxe_leaks_nothing_into_the_rejection_or_the_pacs002(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    data = _with_doctype(f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file://{secret}">]>', "&xxe;")
    report = Pacs008Validator().validate(data)
    answer = build_pacs002(report.to_pacs002("STS-1", CREATED))
    assert b"TOP-SECRET-MARKER" not in answer
    assert all("TOP-SECRET-MARKER" not in r.message for r in report.rejections)


def test_xinclude_is_not_processed(fifo: Path) -> None:
    data = edit(_FPS, b"<Nm>Ada Lovelace</Nm>",
                f'<Nm>Ada</Nm><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file://{fifo}"/>'.encode())
    report, _ = _validate_with_deadline(data)
    assert report.reason_codes == (ReasonCode.FF01,)
    assert report.rejections[0].path.endswith("/Dbtr/include")


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE Document [<!ENTITY l0 "lol">'
        + "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10)) + "]>",
        '<!DOCTYPE Document [<!ENTITY big "' + "x" * 50_000 + '">]>',
    ],
    ids=["billion-laughs", "quadratic-blowup"],
)
def test_entity_expansion_is_rejected_with_ff01_quickly(doctype: str) -> None:
    reference = "&l9;" if "l9" in doctype else "&big;" * 2_000
    data = _with_doctype(doctype, reference)
    started = time.perf_counter()
    report = Pacs008Validator().validate(data)
    assert time.perf_counter() - started < 0.5
    assert report.reason_codes == (ReasonCode.FF01,)
    with pytest.raises(UnsafeXmlError):
        parse_xml(data)


def test_an_oversized_message_is_rejected_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def parser_must_not_run(*args, **kwargs):
        raise AssertionError("the parser saw an oversized message")

    monkeypatch.setattr(xmlsafe.SafeElementTree, "fromstring", parser_must_not_run)
    report = Pacs008Validator(max_message_bytes=1_000).validate(b"<" + b"a" * 1_000)
    assert report.reason_codes == (ReasonCode.FF01,)
    assert report.rejections[0].message == "message is 1001 bytes; the limit is 1000"
    assert report.size_bytes == 1001
    with pytest.raises(MessageTooLargeError, match="the limit is 1000"):
        parse_xml(b"<" + b"a" * 1_000, max_bytes=1_000)


def test_the_size_limit_is_inclusive_and_configurable() -> None:
    assert len(_FPS) < DEFAULT_MAX_MESSAGE_BYTES
    assert Pacs008Validator(max_message_bytes=len(_FPS)).validate(_FPS).reason_codes == ()
    assert Pacs008Validator(max_message_bytes=len(_FPS) - 1).validate(_FPS).reason_codes == (ReasonCode.FF01,)
    with pytest.raises(MessageTooLargeError):
        parse_pacs008(_FPS, max_bytes=len(_FPS) - 1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "message is empty"),
        (b"  \n", "message is empty"),
        (b"<a><b></a>", "not well-formed XML (mismatched tag"),
        (b"<a>&undefined;</a>", "not well-formed XML (undefined entity"),
        (b"\xff\xfe<\x00a\x00/\x00>\x00", "not UTF-8"),
        (b'<?xml version="1.0" encoding="ISO-8859-1"?><a/>', "encoding other than UTF-8"),
        (b"<a/><b/>", "not well-formed XML (junk after document element"),
    ],
)
def test_malformed_input_is_a_format_error(data: bytes, message: str) -> None:
    with pytest.raises(MessageFormatError, match=message.replace("(", r"\(")) as caught:
        parse_xml(data)
    assert caught.value.reason is ReasonCode.FF01
    assert caught.value.rejections[0].path == "/"


def test_comments_and_processing_instructions_are_ignored() -> None:
    data = edit(_FPS, b"<GrpHdr>", b"<GrpHdr><!-- a comment --><?audit seen?>")
    assert Pacs008Validator().validate(data).reason_codes == ()


def test_deep_nesting_is_rejected_at_the_first_unknown_element_without_recursing() -> None:
    depth = 30_000  # 210 kB, under the size limit
    data = edit(_FPS, b"<ChrgBr>SLEV</ChrgBr>", b"<ChrgBr>SLEV</ChrgBr>" + b"<a>" * depth + b"</a>" * depth)
    started = time.perf_counter()
    report = Pacs008Validator().validate(data)
    assert time.perf_counter() - started < 2.0
    assert report.reason_codes == (ReasonCode.FF01,)
    assert [r.path for r in report.rejections] == ["/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/a"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"pacs.008.001.08", b"pacs.008.001.09", "message is pacs.008.001.09; only pacs.008.001.08 is accepted"),
        (b"pacs.008.001.08", b"pacs.008.001.02", "message is pacs.008.001.02; only pacs.008.001.08 is accepted"),
        (b"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08", b"urn:example:x",
         "namespace is not the ISO 20022 namespace of pacs.008.001.08"),
        (b"<Document", b"<AppHdr", "root element is 'AppHdr', not Document"),
    ],
    ids=["version-09", "version-02", "foreign-namespace", "wrong-root"],
)
def test_wrong_namespace_or_version_is_ff01(old: bytes, new: bytes, message: str) -> None:
    data = edit(_FPS, old, new).replace(b"</Document>", b"</AppHdr>" if new == b"<AppHdr" else b"</Document>")
    with pytest.raises(MessageFormatError, match=message) as caught:
        parse_pacs008(data)
    assert caught.value.reason is ReasonCode.FF01
    assert Pacs008Validator().validate(data).reason_codes == (ReasonCode.FF01,)


def test_parse_xml_takes_bytes_only() -> None:
    with pytest.raises(InvalidPaymentError, match="pass the message as bytes, not str"):
        parse_xml("<a/>")  # type: ignore[arg-type]
    assert parse_xml(bytearray(b"<a/>")).tag == "a"


def test_a_flood_of_errors_is_capped_so_the_answer_stays_small() -> None:
    data = edit(_FPS, b"<ChrgBr>SLEV</ChrgBr>", b"<ChrgBr>SLEV</ChrgBr>" + b"<Junk/>" * 5_000)
    report = Pacs008Validator().validate(data)
    assert report.reason_codes == (ReasonCode.FF01,)
    assert len(report.rejections) == 20
    assert len(build_pacs002(report.to_pacs002("STS-1", CREATED))) < 10_000
