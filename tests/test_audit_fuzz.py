"""The offline verifier reports and never crashes: an impossible date is a finding that names the entry,
and every single-byte change anywhere in a real export (every position of every segment and checkpoint)
is reported as not intact, with no exception escaping. No change is harmless: entries and checkpoint
notes each have exactly one valid spelling, so a changed byte is either refused or changes what is
signed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasterpay.audit import InvalidEntryError, decode_entry, load_public_key, verify_export, write_export
from fasterpay.audit.verify import main
from test_audit_verify import PEM, build_log, lines_of, recode, with_lines

KEY = load_public_key(PEM)


def flip(body: bytes, offset: int, mask: int) -> bytes:
    return body[:offset] + bytes([body[offset] ^ mask]) + body[offset + 1:]


@pytest.fixture
def export(tmp_path: Path) -> Iterator[tuple[Path, dict[str, bytes]]]:
    """A closed log of 5 entries in batches of 2: three segments, three checkpoints, about 1,750 bytes."""
    objects = build_log(5, batch=2)
    yield write_export(tmp_path / "export", objects), objects


# -- an impossible date ------------------------------------------------------------------------------
@pytest.mark.parametrize("at", [
    "2026-11-38T09:00:00.000Z",  # one flipped bit: '2' (0x32) becomes '3' (0x33)
    "2026-02-29T09:00:00.000Z",  # not a leap year
    "2026-13-28T09:00:00.000Z",
    "2026-11-28T24:00:00.000Z",
    "2026-11-28T09:60:00.000Z",
    "2026-11-28T09:00:60.000Z",
    "0000-11-28T09:00:00.000Z",
])
def test_an_impossible_date_is_refused_as_an_invalid_entry(at: str) -> None:
    line = lines_of(build_log(1))[0][0]
    with pytest.raises(InvalidEntryError, match="not a real date"):
        decode_entry(recode(line, at=at))


@pytest.mark.parametrize("k", [0, 2, 4])
def test_one_flipped_bit_in_a_date_is_a_finding_that_names_the_entry(tmp_path: Path, k: int) -> None:
    objects = build_log(5, batch=2)
    segments = lines_of(objects)
    s, i = divmod(k, 2)
    line = segments[s][i]
    day = line.index(b'"at":"2026-11-28T') + len(b'"at":"2026-11-')
    segments[s][i] = flip(line, day, 0x01)  # the day's tens digit: 28 becomes 38
    assert b"2026-11-38T" in segments[s][i]
    report = verify_export(write_export(tmp_path / "x", with_lines(objects, segments)), KEY)
    assert report.verdict == "not-intact" and report.finding.check == "entry" and report.finding.entry == k
    assert "'2026-11-38T09:00:0" in report.finding.reason and "not a real date" in report.finding.reason


def test_the_command_prints_its_report_and_its_json_and_exits_1_for_an_impossible_date(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    objects = build_log(3)
    key = next(k for k in objects if k.startswith("segments/"))
    objects[key] = objects[key].replace(b"2026-11-28T09:00:01", b"2026-11-38T09:00:01", 1)
    folder = write_export(tmp_path / "x", objects)
    (tmp_path / "key.pem").write_bytes(PEM)
    assert main([str(folder), "--public-key", str(tmp_path / "key.pem")]) == 1
    assert capsys.readouterr().out.startswith("NOT INTACT: entry 1: at '2026-11-38T09:00:01.000Z' has the right shape")
    assert main([str(folder), "--public-key", str(tmp_path / "key.pem"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "not-intact" and report["finding"]["entry"] == 1


@pytest.mark.parametrize(("line", "words"), [
    (b"[" * 1500 + b"]" * 1500, "not canonical ASCII JSON (RecursionError)"),  # nesting deeper than json allows
    (b'{"seq":' + b"9" * 5000 + b"}", "not canonical ASCII JSON (ValueError)"),  # past int's digit limit
    (b'{"seq":1e999}', "fields must be exactly"),
])
def test_hostile_lines_are_findings_not_exceptions(tmp_path: Path, line: bytes, words: str) -> None:
    objects = build_log(3)
    key = next(k for k in objects if k.startswith("segments/"))
    objects[key] = line + b"\n" + objects[key]
    report = verify_export(write_export(tmp_path / "x", objects), KEY, max_entry_bytes=16_384)
    assert report.verdict == "not-intact" and report.finding.entry == 0 and words in report.finding.reason


# -- every single-byte change --------------------------------------------------------------------------
def test_every_single_byte_change_of_a_real_export_is_reported_not_intact(
        export: tuple[Path, dict[str, bytes]]) -> None:
    """Every byte position of every file with its lowest bit flipped (the date of the issue: 28 -> 38);
    the property test below replaces bytes with arbitrary values."""
    folder, objects = export
    assert verify_export(folder, KEY).intact
    flips, missed = 0, []
    for key, body in sorted(objects.items()):
        path = folder / key
        for offset in range(len(body)):
            path.write_bytes(flip(body, offset, 0x01))
            report = verify_export(folder, KEY)  # an exception here fails the test: none may escape
            if report.verdict != "not-intact":
                missed.append((key, offset, str(report)))
            flips += 1
        path.write_bytes(body)
    assert flips == sum(len(body) for body in objects.values()) > 1700  # signatures vary by a few bytes
    assert missed == [], missed[:5]


@pytest.fixture(scope="module")
def larger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """A closed log of 23 entries in batches of 5: five segments, five checkpoints."""
    objects = build_log(23, batch=5)
    return write_export(tmp_path_factory.mktemp("larger") / "export", objects), objects


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_byte_replaced_anywhere_is_reported_not_intact(larger: tuple[Path, dict[str, bytes]],
                                                           data: st.DataObject) -> None:
    folder, objects = larger
    key = data.draw(st.sampled_from(sorted(objects)), label="file")
    body = objects[key]
    offset = data.draw(st.integers(0, len(body) - 1), label="offset")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != body[offset]), label="new byte")
    path = folder / key
    path.write_bytes(body[:offset] + bytes([value]) + body[offset + 1:])
    try:
        report = verify_export(folder, KEY)
    finally:
        path.write_bytes(body)
    assert report.verdict == "not-intact", (key, offset, value, str(report))
    assert report.finding is not None and (report.finding.entry is not None or report.finding.checkpoint)
