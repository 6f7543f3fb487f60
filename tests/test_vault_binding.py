"""Every stored field of a vault record is bound to its ciphertext; an edit is audited as tampering.

Issue 9, defect 8: the stored ``tenant``, ``data_class``, ``alg`` and ``kms_key_id`` could be edited
unnoticed, and a record pointed at an erased subject was reported as ``subject-erased``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fasterpay.aws import AwsEnvironment
from fasterpay.vault import (
    Caller,
    EncryptionContextError,
    InMemoryAuditLog,
    TamperedCiphertextError,
    Vault,
    VaultPolicy,
)
from fasterpay.vault.stack import VaultResources, deploy_vault, vault_as_role

IBAN = "GB82WEST12345698765432"
GATEWAY = Caller("scheme-gateway", "scheme-submission")
DPO = Caller("dpo", "gdpr-art-17")
POLICY = VaultPolicy.of(grants=[("scheme-gateway", ["iban", "name"], ["scheme-submission"])], erasers=["dpo"])
STRING_FIELDS = ("tenant", "data_class", "subject", "alg", "kms_key_id", "created_at")
BINARY_FIELDS = ("ciphertext", "nonce", "binding")


@pytest.fixture
def resources(env: AwsEnvironment) -> VaultResources:
    return deploy_vault(env.client("cloudformation"), env.client("kms"), on_moto=True)


@pytest.fixture
def audit() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
def vault(env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog) -> Vault:
    return vault_as_role(env, resources, None, policy=POLICY, audit=audit)


@pytest.fixture
def token(vault: Vault) -> str:
    """An IBAN of subject cust-1; cust-2 exists too, cust-gone was erased, cust-nobody never existed."""
    vault.tokenize("Ann Smith", "name", tenant="bank-a", subject="cust-2")
    vault.tokenize("Ben Jones", "name", tenant="bank-a", subject="cust-gone")
    vault.erase_subject(tenant="bank-a", subject="cust-gone", caller=DPO)
    return vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")


def stored(env: AwsEnvironment, resources: VaultResources, token: str) -> dict[str, Any]:
    key = {"pk": {"S": f"TOKEN#{token}"}}
    return env.client("dynamodb").get_item(TableName=resources.vault_table, Key=key)["Item"]


def store(env: AwsEnvironment, resources: VaultResources, item: dict[str, Any]) -> None:
    env.client("dynamodb").put_item(TableName=resources.vault_table, Item=item)


@pytest.mark.parametrize(
    ("field", "edited"),
    [
        ("tenant", "bank-b"),
        ("data_class", "name"),
        ("alg", "AES-256-GCM/HKDF-SHA256/v3"),
        ("alg", "AES-256-GCM/HKDF-SHA256/v1"),  # a downgrade that keeps the binding: still tampering
        ("kms_key_id", "other-key"),  # replaced by the HMAC key's ARN below
        ("created_at", "2020-01-01T00:00:00+00:00"),
        ("subject", "cust-gone"),  # an erased subject: tampering, not subject-erased
        ("subject", "cust-nobody"),  # a subject that never existed
        ("subject", "cust-2"),  # another live subject of the same tenant
    ],
    ids=["tenant", "data_class", "alg", "alg-downgrade", "kms_key_id", "created_at", "subject-to-erased",
         "subject-to-unknown", "subject-to-other"],
)
def test_editing_a_stored_field_is_audited_as_tampering(
    vault: Vault, env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog, token: str,
    field: str, edited: str,
) -> None:
    original = stored(env, resources, token)
    if field == "kms_key_id":
        edited = resources.token_mac_key_arn  # a real key ARN of the same account
    assert original[field]["S"] != edited
    store(env, resources, {**original, field: {"S": edited}})
    with pytest.raises(TamperedCiphertextError):
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
    record = audit.records[-1]
    assert (record.result.value, record.reason, record.reference) == ("tampered", "record binding failed", token)
    store(env, resources, original)  # put back, the record reads again: the edit alone was refused
    assert vault.detokenize(token, tenant="bank-a", caller=GATEWAY) == IBAN


@pytest.mark.parametrize("field", [*STRING_FIELDS, *BINARY_FIELDS, "encrypted_data_key"])
def test_removing_a_stored_field_is_audited_as_tampering(
    vault: Vault, env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog, token: str, field: str
) -> None:
    item = stored(env, resources, token)
    del item[field]
    store(env, resources, item)
    with pytest.raises(TamperedCiphertextError, match=f"missing {field}"):
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
    assert (audit.records[-1].result.value, audit.records[-1].reason) == ("tampered", f"missing {field}")


def test_an_erased_subject_is_still_reported_as_erased(vault: Vault, audit: InMemoryAuditLog, token: str) -> None:
    from fasterpay.vault import SubjectErasedError

    vault.erase_subject(tenant="bank-a", subject="cust-1", caller=DPO)
    with pytest.raises(SubjectErasedError):
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
    assert audit.records[-1].result.value == "subject-erased"


def test_a_deleted_subject_record_is_tampering(
    vault: Vault, env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog, token: str
) -> None:
    env.client("dynamodb").delete_item(TableName=resources.vault_table, Key={"pk": {"S": "SUBJECT#bank-a#cust-1"}})
    with pytest.raises(TamperedCiphertextError):
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
    assert (audit.records[-1].result.value, audit.records[-1].reason) == ("tampered", "subject record missing")


def test_the_binding_is_checked_before_the_subject_secret_is_read(
    vault: Vault, env: AwsEnvironment, resources: VaultResources, token: str
) -> None:
    from fasterpay.metering import ApiCallMeter

    meter = ApiCallMeter()
    meter.attach(vault._ddb)  # type: ignore[attr-defined]
    store(env, resources, {**stored(env, resources, token), "subject": {"S": "cust-gone"}})
    with pytest.raises(TamperedCiphertextError):
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
    assert meter.snapshot().by_operation() == {"dynamodb:GetItem": 1}  # the token record only


def test_a_record_moved_to_another_tenant_fails_in_kms_first(
    vault: Vault, env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog, token: str
) -> None:
    store(env, resources, {**stored(env, resources, token), "tenant": {"S": "bank-b"}})
    with pytest.raises(EncryptionContextError):  # the data key was made for bank-a: KMS decides, not the record
        vault.detokenize(token, tenant="bank-b", caller=GATEWAY)
    assert audit.records[-1].result.value == "context-mismatch"


def test_records_of_format_v1_are_refused_with_a_clear_error(
    vault: Vault, env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog
) -> None:
    from fasterpay.vault import RecordFormatError

    vault.tokenize("Ann Smith", "name", tenant="bank-a", subject="cust-1")  # creates the subject's secret
    secret = env.client("dynamodb").get_item(
        TableName=resources.vault_table, Key={"pk": {"S": "SUBJECT#bank-a#cust-1"}})["Item"]["secret"]["B"]
    context = {"purpose": "fasterpay-vault", "tenant": "bank-a", "data_class": "iban"}
    key = env.client("kms").generate_data_key(KeyId=resources.vault_key_arn, KeySpec="AES_256",
                                              EncryptionContext=context)
    token, nonce, v1 = "tok_iban_" + "v" * 32, os.urandom(12), "AES-256-GCM/HKDF-SHA256/v1"
    value_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=secret,
                     info=f"{v1}|bank-a|cust-1".encode()).derive(key["Plaintext"])
    aad = json.dumps({"v": 1, "tenant": "bank-a", "data_class": "iban", "token": token, "subject": "cust-1"},
                     sort_keys=True, separators=(",", ":")).encode()
    store(env, resources, {  # exactly what format v1 wrote
        "pk": {"S": f"TOKEN#{token}"}, "tenant": {"S": "bank-a"}, "data_class": {"S": "iban"},
        "subject": {"S": "cust-1"}, "ciphertext": {"B": AESGCM(value_key).encrypt(nonce, IBAN.encode(), aad)},
        "nonce": {"B": nonce}, "encrypted_data_key": {"B": key["CiphertextBlob"]}, "kms_key_id": {"S": key["KeyId"]},
        "alg": {"S": v1}, "created_at": {"S": "2026-01-05T10:00:00+00:00"},
    })
    with pytest.raises(RecordFormatError, match="format v1.*re-tokenise"):
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
    assert audit.records[-1].result.value == "unsupported-format"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_edit_of_a_record_is_tampering(
    vault: Vault, env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog, token: str,
    data: st.DataObject,
) -> None:
    original = stored(env, resources, token)
    field = data.draw(st.sampled_from([*STRING_FIELDS, *BINARY_FIELDS]), label="field")
    item = dict(original)
    if field in STRING_FIELDS:
        text = data.draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=80)
                         .filter(lambda s: s != original[field]["S"]), label="text")
        item[field] = {"S": text}
    else:
        blob = bytearray(original[field]["B"])
        position = data.draw(st.integers(0, len(blob) * 8 - 1), label="bit")
        blob[position // 8] ^= 1 << (position % 8)
        item[field] = {"B": bytes(blob)}
    store(env, resources, item)
    try:
        with pytest.raises(TamperedCiphertextError):
            vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
        assert audit.records[-1].result.value == "tampered"
    finally:
        store(env, resources, original)
