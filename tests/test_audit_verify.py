"""The offline verifier: intact logs pass; every single change, deletion, reordering, insertion or
truncation of an entry, and every forged checkpoint, is detected and named; bad input gets a clear
error, never a crash or a false "intact"."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fasterpay.audit import (
    AuditEntry,
    AuditStoreError,
    AuditTrail,
    Checkpoint,
    ExportNotFoundError,
    InMemoryAuditStore,
    LocalCheckpointSigner,
    PublicKeyError,
    SignedCheckpoint,
    leaf_hash,
    sign_checkpoint,
    verify_export,
    write_export,
)
from fasterpay.audit.verify import main

T0 = datetime(2026, 11, 28, 9, tzinfo=UTC)
SIGNER = LocalCheckpointSigner.generate()
PEM = SIGNER.public_key_pem()
OTHER_PEM = LocalCheckpointSigner.generate().public_key_pem()


def build_log(n: int, *, batch: int = 3) -> dict[str, bytes]:
    """A closed log of ``n`` entries, a segment and a checkpoint per ``batch`` entries (and one at close)."""
    ticks = iter(T0 + timedelta(seconds=i) for i in range(10_000_000))
    store = InMemoryAuditStore()
    trail = AuditTrail(store=store, signer=SIGNER, origin="bank-a/audit", batch_size=batch,
                       clock=lambda: next(ticks))
    for i in range(n):
        trail.append(AuditEntry("payment.status", "svc-clearing", f"E2E-{i:05d}", ("ACTC", "ACSP", "ACSC")[i % 3],
                                T0 + timedelta(seconds=i), {"uetr": f"u-{i}"}))
    trail.close()
    return store.objects()


def lines_of(objects: dict[str, bytes]) -> list[list[bytes]]:
    """Lines per segment, in order."""
    return [objects[k].split(b"\n")[:-1] for k in sorted(k for k in objects if k.startswith("segments/"))]


def with_lines(objects: dict[str, bytes], segments: list[list[bytes]]) -> dict[str, bytes]:
    names = sorted(k for k in objects if k.startswith("segments/"))
    out = {k: v for k, v in objects.items() if not k.startswith("segments/")}
    for name, lines in zip(names, segments, strict=True):
        if lines:
            out[name] = b"".join(line + b"\n" for line in lines)
    return out


def locate(segments: list[list[bytes]], k: int) -> tuple[int, int]:
    for s, lines in enumerate(segments):
        if k < len(lines):
            return s, k
        k -= len(lines)
    raise IndexError(k)


def recode(line: bytes, **changes: object) -> bytes:
    data = json.loads(line)
    data.update(changes)
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def forged_entry(seq: int, prev: str) -> bytes:
    return recode(b'{"actor":"svc-clearing","at":"2026-11-28T09:00:00.000Z","kind":"payment.status","outcome":"ACSC",'
                  b'"prev":"","refs":{},"seq":0,"subject":"E2E-FORGED"}', seq=seq, prev=prev)


def tamper(objects: dict[str, bytes], op: str, k: int) -> dict[str, bytes]:
    """Apply one single-entry tampering ``op`` at entry ``k``."""
    segments = [list(s) for s in lines_of(objects)]
    flat = [line for seg in segments for line in seg]
    if op == "truncate":
        keep, out = k, []
        for seg in segments:
            out.append(seg[:max(0, keep)])
            keep -= len(seg)
        return with_lines(objects, out)
    if op == "insert":
        prev = "0" * 64 if k == 0 else leaf_hash(flat[k - 1]).hex()
        if k == len(flat):
            segments[-1].append(forged_entry(k, prev))
        else:
            s, i = locate(segments, k)
            segments[s].insert(i, forged_entry(k, prev))
        return with_lines(objects, segments)
    s, i = locate(segments, k)
    if op == "change":
        segments[s][i] = recode(segments[s][i], outcome="RJCT")
    elif op == "change-prev":
        segments[s][i] = recode(segments[s][i], prev="f" * 64)
    elif op == "delete":
        del segments[s][i]
    elif op == "swap":
        s2, i2 = locate(segments, k + 1)
        segments[s][i], segments[s2][i2] = segments[s2][i2], segments[s][i]
    else:
        raise ValueError(op)
    return with_lines(objects, segments)


def verify(objects: dict[str, bytes], where: Path, **kwargs):
    if where.exists():
        shutil.rmtree(where)
    write_export(where, objects)
    return verify_export(where, PEM, **kwargs)


# -- intact -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_an_untouched_export_is_intact(tmp_path: Path, n: int) -> None:
    report = verify(build_log(n), tmp_path / "x")
    assert report.intact and report.entries == n and report.tree_size == n
    assert str(report).startswith(f"intact: {n} entries")


# -- exhaustive on small logs -------------------------------------------------------------------------
OPS = ("change", "change-prev", "delete", "swap", "insert", "truncate")


def test_every_single_entry_tampering_of_small_logs_is_detected_and_named(tmp_path: Path) -> None:
    """Every op at every position of every log from 1 to 12 entries; the report names the entry."""
    checked = 0
    for n in range(1, 13):
        original = build_log(n)
        for op in OPS:
            positions = range(n + 1) if op == "insert" else range(n - 1) if op == "swap" else range(n)
            for k in positions:
                report = verify(tamper(original, op, k), tmp_path / "x")
                assert not report.intact, (n, op, k)
                assert report.finding is not None and report.finding.entry == k, (n, op, k, report.finding)
                checked += 1
    assert checked > 400


def test_a_flipped_byte_anywhere_is_detected(tmp_path: Path) -> None:
    original = build_log(9)
    for key in sorted(k for k in original if k.startswith("segments/")):
        body = original[key]
        for offset in range(0, len(body), 7):
            changed = dict(original)
            changed[key] = body[:offset] + bytes([body[offset] ^ 0x01]) + body[offset + 1:]
            assert not verify(changed, tmp_path / "x").intact, (key, offset)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(min_value=20, max_value=400), op=st.sampled_from(OPS), data=st.data())
def test_tampering_of_larger_logs_is_detected_and_named(tmp_path: Path, n: int, op: str, data: st.DataObject) -> None:
    top = n if op == "insert" else n - 2 if op == "swap" else n - 1
    k = data.draw(st.integers(min_value=0, max_value=top))
    report = verify(tamper(build_log(n, batch=17), op, k), tmp_path / "h")
    assert not report.intact and report.finding is not None and report.finding.entry == k


# -- checkpoints --------------------------------------------------------------------------------------
def _note(objects: dict[str, bytes], size: int) -> str:
    return f"checkpoints/{size:012d}.note"


@pytest.mark.parametrize("line, replacement", [(1, "5"), (2, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                                               (3, "time 2026-11-28T09:00:00.000Z")])
def test_a_forged_checkpoint_fails_its_signature(tmp_path: Path, line: int, replacement: str) -> None:
    objects = build_log(8)
    key = _note(objects, 8)
    lines = objects[key].decode().split("\n")
    lines[line] = replacement
    objects[key] = "\n".join(lines).encode()
    report = verify(objects, tmp_path / "x")
    assert not report.intact and report.finding.check == "signature" and report.finding.checkpoint.endswith("8.note")


def test_a_checkpoint_signed_by_another_key_is_named_as_the_wrong_key(tmp_path: Path) -> None:
    objects = build_log(8)
    other = LocalCheckpointSigner.generate()
    checkpoint = SignedCheckpoint.from_text(objects[_note(objects, 8)]).checkpoint
    objects[_note(objects, 8)] = sign_checkpoint(other, checkpoint).to_text().encode()
    report = verify(objects, tmp_path / "x")
    assert report.finding.check == "wrong-key" and "right key" in report.finding.reason


def test_the_wrong_public_key_never_yields_intact(tmp_path: Path) -> None:
    write_export(tmp_path / "x", build_log(5))
    report = verify_export(tmp_path / "x", OTHER_PEM)
    assert not report.intact and report.finding.check == "wrong-key"


def test_checkpoints_out_of_order_are_reported(tmp_path: Path) -> None:
    objects = build_log(8)
    later = SignedCheckpoint.from_text(objects[_note(objects, 8)]).checkpoint
    earlier = Checkpoint(later.origin, later.tree_size, later.root_hash, T0 - timedelta(days=1))
    objects[_note(objects, 8)] = sign_checkpoint(SIGNER, earlier).to_text().encode()
    report = verify(objects, tmp_path / "x")
    assert report.finding.check == "order" and "out of order" in report.finding.reason


def test_a_renamed_checkpoint_is_reported(tmp_path: Path) -> None:
    objects = build_log(8)
    objects["checkpoints/000000000007.note"] = objects.pop(_note(objects, 8))
    assert verify(objects, tmp_path / "x").finding.check == "checkpoint"


def test_a_checkpoint_of_another_log_is_reported(tmp_path: Path) -> None:
    objects = build_log(8)
    cp = SignedCheckpoint.from_text(objects[_note(objects, 8)]).checkpoint
    objects[_note(objects, 8)] = sign_checkpoint(
        SIGNER, Checkpoint("bank-b/audit", cp.tree_size, cp.root_hash, cp.timestamp)).to_text().encode()
    assert verify(objects, tmp_path / "x").finding.check == "origin"


def test_a_trusted_checkpoint_catches_truncation_with_deleted_checkpoints(tmp_path: Path) -> None:
    objects = build_log(12)
    trusted = SignedCheckpoint.from_text(objects[_note(objects, 12)])
    cut = tamper(objects, "truncate", 6)  # at a segment boundary, and the later checkpoints deleted too
    for size in (9, 12):
        cut.pop(_note(cut, size))
    assert verify(cut, tmp_path / "x").intact  # self-consistent: only an outside anchor can tell
    report = verify(cut, tmp_path / "y", trusted_checkpoint=trusted)
    assert not report.intact and report.finding.check == "trusted"


def test_entries_after_the_last_checkpoint_are_unverifiable_never_intact(tmp_path: Path) -> None:
    """A crash between a segment and its checkpoint leaves an unsigned tail: it is named, not vouched for."""

    class CrashBeforeCheckpoint(InMemoryAuditStore):
        def put_checkpoint(self, signed: SignedCheckpoint) -> None:
            if signed.tree_size > 5:
                raise AuditStoreError("the writer died before storing the checkpoint")
            super().put_checkpoint(signed)

    store = CrashBeforeCheckpoint()
    trail = AuditTrail(store=store, signer=SIGNER, origin="bank-a/audit", batch_size=5)
    for i in range(7):
        trail.append(AuditEntry("payment.status", "svc", f"E2E-{i}", "ACSP", T0))
    with pytest.raises(AuditStoreError):
        trail.flush()  # entries 5 and 6 are stored; their checkpoint is not
    report = verify(store.objects(), tmp_path / "x")
    assert not report.intact and report.verdict == "unverifiable" and report.exit_status == 3
    assert report.finding.check == "unsigned" and report.finding.entry == 5 and report.unsigned_entries == 2
    assert report.tree_size == 5 and str(report).startswith("UNVERIFIABLE: entry 5: the last 2 entries, 5 to 6")
    with pytest.warns(DeprecationWarning, match="no effect"):
        relaxed = verify(store.objects(), tmp_path / "y", allow_unsigned_tail=True)
    assert relaxed == report


# -- bad input: a named error or finding, never a crash or a false "intact" -----------------------------
def test_a_missing_folder_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(ExportNotFoundError, match="segments/ and checkpoints/"):
        verify_export(tmp_path / "nowhere", PEM)
    (tmp_path / "half" / "segments").mkdir(parents=True)
    with pytest.raises(ExportNotFoundError):
        verify_export(tmp_path / "half", PEM)


@pytest.mark.parametrize("pem", [b"", b"not a key", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"])
def test_an_unreadable_public_key_is_a_named_error(tmp_path: Path, pem: bytes) -> None:
    write_export(tmp_path / "x", build_log(3))
    with pytest.raises(PublicKeyError):
        verify_export(tmp_path / "x", pem)


def test_a_public_key_on_another_curve_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_export(tmp_path / "x", build_log(3))
    with pytest.raises(PublicKeyError, match="ECC_NIST_P256"):
        verify_export(tmp_path / "x", p384)


def _segment_key(objects: dict[str, bytes]) -> str:
    return sorted(k for k in objects if k.startswith("segments/"))[0]


@pytest.mark.parametrize(("damage", "check", "words", "entry"), [
    (lambda b: b[:-1], "entry", "does not end with a newline", 2),
    (lambda b: b[: len(b) // 2], "entry", "does not end with a newline", 1),
    (lambda b: b"\xff\xfe" + b, "entry", "not canonical", 0),
    (lambda b: b"{not json}\n" + b, "entry", "not canonical", 0),
    (lambda b: b"\n" + b, "entry", "not canonical", 0),
    (lambda b: b.replace(b'"seq":0', b'"seq":"0"'), "entry", "whole number", 0),
    (lambda b: b.replace(b'","kind"', b'","extra":1,"kind"', 1), "entry", "fields must be exactly", 0),
    (lambda b: b.replace(b"svc-clearing", b"Ann Smith", 1), "entry", "reference-shaped", 0),
    (lambda b: b.replace(b'"outcome":"ACTC"', b'"outcome": "ACTC"', 1), "entry", "canonical form", 0),
    (lambda b: (b'{"pad":"' + b"x" * 5000 + b'"}\n') + b, "too-large", "more than", 0),
])
def test_corrupt_segments_are_named(tmp_path: Path, damage, check: str, words: str, entry: int) -> None:
    objects = build_log(6)
    key = _segment_key(objects)
    objects[key] = damage(objects[key])
    report = verify(objects, tmp_path / "x")
    assert not report.intact and report.finding.check == check and words in report.finding.reason
    assert report.finding.entry == entry


@pytest.mark.parametrize("damage", [
    lambda b: b"", lambda b: b[:40], lambda b: b.replace(b"\n", b"\r\n"), lambda b: b"\xff" * 40 + b"\n",
    lambda b: b.rstrip(b"\n"), lambda b: b * 3,
])
def test_corrupt_or_truncated_checkpoints_are_named(tmp_path: Path, damage) -> None:
    objects = build_log(4)
    objects[_note(objects, 4)] = damage(objects[_note(objects, 4)])
    report = verify(objects, tmp_path / "x")
    assert not report.intact and report.finding.check in ("checkpoint", "signature")


def test_an_export_without_checkpoints_is_not_intact(tmp_path: Path) -> None:
    objects = {k: v for k, v in build_log(4).items() if k.startswith("segments/")}
    report = verify(objects, tmp_path / "x")
    assert not report.intact and "no checkpoint" in report.finding.reason


def test_unexpected_files_are_named(tmp_path: Path) -> None:
    write_export(tmp_path / "x", build_log(4))
    (tmp_path / "x" / "segments" / "notes.txt").write_text("hello")
    report = verify_export(tmp_path / "x", PEM)
    assert report.finding.check == "segment" and "notes.txt" in report.finding.reason


def test_oversized_entries_are_refused_when_written() -> None:
    from fasterpay.audit import EntryTooLargeError

    trail = AuditTrail(store=InMemoryAuditStore(), signer=SIGNER, origin="bank-a/audit", max_entry_bytes=300)
    refs = {f"ref_{i}": "x" * 40 for i in range(8)}
    with pytest.raises(EntryTooLargeError, match="more than 300"):
        trail.append(AuditEntry("payment.status", "svc", "E2E-1", "ACSP", T0, refs))
    assert trail.size == 0


# -- the command line ---------------------------------------------------------------------------------
def test_the_command_says_intact_or_names_the_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    objects = build_log(10)
    write_export(tmp_path / "ok", objects)
    write_export(tmp_path / "bad", tamper(objects, "change", 4))
    (tmp_path / "key.pem").write_bytes(PEM)
    assert main([str(tmp_path / "ok"), "--public-key", str(tmp_path / "key.pem")]) == 0
    assert capsys.readouterr().out.startswith("intact: 10 entries")
    assert main([str(tmp_path / "bad"), "--public-key", str(tmp_path / "key.pem"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["intact"] is False and report["finding"]["entry"] == 4
    assert main([str(tmp_path / "nowhere"), "--public-key", str(tmp_path / "key.pem")]) == 2
    assert "cannot verify" in capsys.readouterr().err
    (tmp_path / "bad.pem").write_text("garbage")
    assert main([str(tmp_path / "ok"), "--public-key", str(tmp_path / "bad.pem")]) == 2
    assert main([str(tmp_path / "ok"), "--public-key", str(tmp_path / "missing.pem")]) == 2
