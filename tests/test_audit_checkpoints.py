"""Signed checkpoints: KMS ECC_NIST_P256 signing on moto, verification with only the public key."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization

from fasterpay.audit import (
    Checkpoint,
    CheckpointSignatureError,
    KmsCheckpointSigner,
    LocalCheckpointSigner,
    MalformedCheckpointError,
    PublicKeyError,
    SignedCheckpoint,
    WrongKeyError,
    load_public_key,
    sign_checkpoint,
    verify_checkpoint,
)
from fasterpay.aws import AwsEnvironment
from fasterpay.metering import ApiCallMeter

AT = datetime(2026, 11, 28, 9, 30, 0, 123456, tzinfo=UTC)
ROOT = bytes(range(32))


@pytest.fixture
def kms_signer(env: AwsEnvironment) -> tuple[KmsCheckpointSigner, ApiCallMeter]:
    meter = ApiCallMeter()
    kms = meter.attach(env.client("kms"))
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    return KmsCheckpointSigner(kms, key), meter


def test_kms_signed_checkpoint_verifies_with_only_the_public_pem(kms_signer) -> None:
    signer, meter = kms_signer
    signed = sign_checkpoint(signer, Checkpoint("bank-a/audit", 42, ROOT, AT))
    pem = signer.public_key_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    parsed = SignedCheckpoint.from_text(signed.to_text())  # what an auditor reads from the bucket
    verify_checkpoint(parsed, pem)  # no AWS call, no credentials: only the PEM
    assert meter.count(service="kms", operation="Sign") == 1
    assert meter.count(service="kms", operation="GetPublicKey") == 1


def test_the_note_has_the_checkpoint_shape_and_keeps_milliseconds() -> None:
    signer = LocalCheckpointSigner.generate()
    text = sign_checkpoint(signer, Checkpoint("bank-a/audit", 42, ROOT, AT)).to_text()
    lines = text.split("\n")
    assert lines[:4] == ["bank-a/audit", "42", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                         "time 2026-11-28T09:30:00.123Z"]
    assert lines[4] == "" and lines[5].startswith("\u2014 bank-a/audit ") and text.endswith("\n")
    assert SignedCheckpoint.from_text(text).checkpoint == Checkpoint("bank-a/audit", 42, ROOT, AT)


@pytest.mark.parametrize("field, value", [("tree_size", 43), ("root_hash", bytes(32)), ("origin", "bank-b/audit"),
                                          ("timestamp", datetime(2026, 11, 28, 9, 31, tzinfo=UTC))])
def test_changing_any_field_breaks_the_signature(kms_signer, field: str, value: object) -> None:
    signer, _ = kms_signer
    signed = sign_checkpoint(signer, Checkpoint("bank-a/audit", 42, ROOT, AT))
    fields = {"origin": "bank-a/audit", "tree_size": 42, "root_hash": ROOT, "timestamp": AT, field: value}
    forged = SignedCheckpoint(Checkpoint(**fields), signed.key_id, signed.signature)
    with pytest.raises(CheckpointSignatureError, match="forged or altered"):
        verify_checkpoint(forged, signer.public_key())


def test_a_checkpoint_from_another_key_names_the_wrong_key(kms_signer) -> None:
    signer, _ = kms_signer
    other = LocalCheckpointSigner.generate()
    signed = sign_checkpoint(other, Checkpoint("bank-a/audit", 1, ROOT, AT))
    with pytest.raises(WrongKeyError, match="right key"):
        verify_checkpoint(signed, signer.public_key_pem())


def test_a_copied_key_id_does_not_help_a_forger(kms_signer) -> None:
    signer, _ = kms_signer
    other = LocalCheckpointSigner.generate()
    real = sign_checkpoint(signer, Checkpoint("bank-a/audit", 1, ROOT, AT))
    fake_body = Checkpoint("bank-a/audit", 1, bytes(32), AT)
    forged = SignedCheckpoint(fake_body, real.key_id, other.sign(fake_body.body()))
    with pytest.raises(CheckpointSignatureError):
        verify_checkpoint(forged, signer.public_key())


ROOT_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


@pytest.mark.parametrize("text, words", [
    ("", "newline"),
    ("bank-a/audit\n1\n", "expected 4 body lines"),
    ("bank-a/audit\nx\nAAAA\ntime 2026-11-28T09:30:00.000Z\n\n\u2014 bank-a/audit AAAAAAAAAAAAAAAA\n", "decimal"),
    ("bank-a/audit\n01\nAAAA\ntime 2026-11-28T09:30:00.000Z\n\n\u2014 bank-a/audit AAAAAAAAAAAAAAAA\n", "decimal"),
    ("bank-a/audit\n1\n!!!!\ntime 2026-11-28T09:30:00.000Z\n\n\u2014 bank-a/audit AAAAAAAAAAAAAAAA\n", "base64"),
    ("bank-a/audit\n1\nAAAA\ntime 2026-11-28T09:30:00.000Z\n\n\u2014 bank-a/audit AAAAAAAAAAAAAAAA\n", "root_hash"),
    (f"bank-a/audit\n1\n{ROOT_B64}\nwhen yesterday\n\n\u2014 bank-a/audit AAAAAAAAAAAAAAAA\n", "time"),
    (f"bank-a/audit\n1\n{ROOT_B64}\ntime 2026-11-28T09:30:00.000Z\n\n- bank-a/audit AAAA\n", "signature line"),
    (f"bank-a/audit\n1\n{ROOT_B64}\ntime 2026-11-28T09:30:00.000Z\n\n\u2014 bank-a/audit AAAA\n", "too short"),
    ("x" * 2000 + "\n", "under"),
])
def test_malformed_notes_are_refused_with_the_reason(text: str, words: str) -> None:
    with pytest.raises(MalformedCheckpointError, match=words):
        SignedCheckpoint.from_text(text)
    with pytest.raises(MalformedCheckpointError):
        SignedCheckpoint.from_text(text.encode() if text else b"\xff")


def test_public_keys_must_be_p256(kms_signer, env: AwsEnvironment) -> None:
    signer, _ = kms_signer
    der = signer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert load_public_key(der) == signer.public_key()
    rsa = env.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    with pytest.raises(PublicKeyError, match="ECC_NIST_P256"):
        load_public_key(env.client("kms").get_public_key(KeyId=rsa)["PublicKey"])


@pytest.mark.parametrize("kwargs", [{"origin": "has space"}, {"origin": ""}, {"tree_size": -1},
                                    {"root_hash": b"short"}, {"timestamp": datetime(2026, 1, 1)}])
def test_invalid_checkpoints_cannot_be_built(kwargs: dict) -> None:
    fields = {"origin": "bank-a/audit", "tree_size": 1, "root_hash": ROOT, "timestamp": AT, **kwargs}
    with pytest.raises(ValueError):
        Checkpoint(**fields)


def test_a_note_has_one_spelling_so_no_changed_byte_is_harmless() -> None:
    """The root's last base64 character carries 2 unused bits: a note that only changes them decodes to
    the same checkpoint, and used to verify. A note must now be exactly what to_text writes."""
    signer = LocalCheckpointSigner.generate()
    text = sign_checkpoint(signer, Checkpoint("bank-a/audit", 42, ROOT, AT)).to_text()
    lines = text.split("\n")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = lines[2][-2]
    lines[2] = lines[2][:-2] + alphabet[alphabet.index(last) ^ 1] + "="
    respelled = "\n".join(lines)
    assert respelled != text and base64.b64decode(lines[2]) == ROOT
    with pytest.raises(MalformedCheckpointError, match="canonical"):
        SignedCheckpoint.from_text(respelled)
    with pytest.raises(MalformedCheckpointError, match="canonical"):
        SignedCheckpoint.from_text(text.replace(".123Z", ".123000Z"))  # the same time, spelled longer
