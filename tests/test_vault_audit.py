"""Every detokenize and erase attempt is audited once, under the identity the vault authenticates as.

Issue 9, defect 4: refusals that raised before the audit write (malformed token, bad tenant) or whose
IAM denial was swallowed left no record, and records named the principal the caller declared.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fasterpay.aws import AwsEnvironment
from fasterpay.metering import ApiCallMeter
from fasterpay.vault import (
    AuditWriteError,
    Caller,
    DetokenizeDeniedError,
    EncryptionContextError,
    InMemoryAuditLog,
    InvalidReferenceError,
    SubjectErasedError,
    TamperedCiphertextError,
    UnknownTokenError,
    Vault,
    VaultAccessDeniedError,
    VaultPolicy,
)
from fasterpay.vault.audit import scan_audit_table
from fasterpay.vault.stack import VaultResources, deploy_vault, vault_as_role

IBAN = "GB82WEST12345698765432"
GATEWAY = Caller("scheme-gateway", "scheme-submission")
DPO = Caller("dpo", "gdpr-art-17")
POLICY = VaultPolicy.of(grants=[("scheme-gateway", ["iban", "name"], ["scheme-submission"])], erasers=["dpo"])
ROLES = ("tokenizer", "detokenizer", "eraser", "router")


def session_arn(role_arn: str) -> str:
    """The ARN STS reports for ``vault_as_role``'s session of ``role_arn`` (session name = role name)."""
    match = re.fullmatch(r"arn:aws:iam::(\d{12}):role/([\w+=,.@-]+)", role_arn)
    assert match is not None, role_arn
    account, name = match.groups()
    return f"arn:aws:sts::{account}:assumed-role/{name}/{name}"


@pytest.fixture
def resources(env: AwsEnvironment) -> VaultResources:
    return deploy_vault(env.client("cloudformation"), env.client("kms"), on_moto=True)


@pytest.fixture
def audit() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
def meter() -> ApiCallMeter:
    return ApiCallMeter()


@pytest.fixture
def admin(env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog) -> Vault:
    """The environment's own credentials: sets the scene before IAM is enforced."""
    return vault_as_role(env, resources, None, policy=POLICY, audit=audit)


def role_vaults(env: AwsEnvironment, resources: VaultResources, audit: Any, meter: ApiCallMeter | None = None
                ) -> dict[str, Vault]:
    """One vault per role, assumed before IAM is enforced (moto refuses the session's own keys inside)."""
    return {name: vault_as_role(env, resources, getattr(resources, f"{name}_role_arn"), policy=POLICY, audit=audit,
                                instrument=meter.attach if meter else None)
            for name in ROLES}


def flip_ciphertext(env: AwsEnvironment, resources: VaultResources, token: str) -> None:
    ddb = env.client("dynamodb")
    item = ddb.get_item(TableName=resources.vault_table, Key={"pk": {"S": f"TOKEN#{token}"}})["Item"]
    blob = bytearray(item["ciphertext"]["B"])
    blob[-1] ^= 0x80
    ddb.put_item(TableName=resources.vault_table, Item={**item, "ciphertext": {"B": bytes(blob)}})


@dataclass(frozen=True)
class Attempt:
    role: str
    token: Any
    tenant: Any
    caller: Caller
    error: type[Exception] | None  # None: allowed
    result: str
    reason: str  # a regular expression the whole reason must match
    reference: str | None = None  # what the record names; None: the token itself
    recorded_tenant: str | None = None  # None: the tenant itself


def test_every_detokenize_attempt_is_audited_once_under_the_authenticated_role(
    env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog, admin: Vault
) -> None:
    good = admin.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    gone = admin.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-2")
    admin.erase_subject(tenant="bank-a", subject="cust-2", caller=DPO)
    altered = admin.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-3")
    flip_ciphertext(env, resources, altered)
    unknown = "tok_iban_" + "a" * 32
    roles = role_vaults(env, resources, audit)
    kinds = [
        Attempt("detokenizer", good, "bank-a", GATEWAY, None, "allowed", ""),
        Attempt("detokenizer", "not-a-token", "bank-a", GATEWAY, UnknownTokenError, "invalid-request",
                r"not a vault token: str of 11 characters", reference="invalid-token"),
        Attempt("detokenizer", None, "bank-a", GATEWAY, UnknownTokenError, "invalid-request",
                r"not a vault token: NoneType", reference="invalid-token"),
        Attempt("detokenizer", IBAN, "bank-a", GATEWAY, UnknownTokenError, "invalid-request",  # a clear value
                r"not a vault token: str of 22 characters", reference="invalid-token"),
        Attempt("detokenizer", good, "bank#a", GATEWAY, InvalidReferenceError, "invalid-request",
                r"tenant is not 1-64 characters from \[A-Za-z0-9._:-\]: str of 6 characters",
                recorded_tenant="invalid-tenant"),
        Attempt("detokenizer", good, "", GATEWAY, InvalidReferenceError, "invalid-request",
                r"tenant is not 1-64 characters from \[A-Za-z0-9._:-\]: str of 0 characters",
                recorded_tenant="invalid-tenant"),
        Attempt("detokenizer", good, "bank-b", GATEWAY, EncryptionContextError, "context-mismatch",
                r"Decrypt: InvalidCiphertextException"),
        Attempt("detokenizer", good, "bank-a", Caller("analytics", "scheme-submission"), DetokenizeDeniedError,
                "denied-policy", r"no grant for iban / scheme-submission"),
        Attempt("detokenizer", good, "bank-a", Caller("scheme-gateway", "marketing"), DetokenizeDeniedError,
                "denied-policy", r"no grant for iban / marketing"),
        Attempt("tokenizer", good, "bank-a", GATEWAY, VaultAccessDeniedError, "denied-iam",
                r"Decrypt: AccessDeniedException"),  # KMS refuses the tokenizer
        Attempt("eraser", good, "bank-a", GATEWAY, VaultAccessDeniedError, "denied-iam",
                r"GetItem: AccessDeniedException"),  # DynamoDB refuses the eraser
        Attempt("router", good, "bank-a", GATEWAY, VaultAccessDeniedError, "denied-iam",
                r"GetItem: AccessDeniedException"),
        Attempt("detokenizer", gone, "bank-a", GATEWAY, SubjectErasedError, "subject-erased", r"subject cust-2 erased"),
        Attempt("detokenizer", unknown, "bank-a", GATEWAY, UnknownTokenError, "unknown-token", r""),
        Attempt("detokenizer", altered, "bank-a", GATEWAY, TamperedCiphertextError, "tampered",
                r"record binding failed"),
    ]
    attempts = kinds * 8
    before = len(audit.records)
    with env.iam_enforced():
        for attempt in attempts:
            vault = roles[attempt.role]
            if attempt.error is None:
                assert vault.detokenize(attempt.token, tenant=attempt.tenant, caller=attempt.caller) == IBAN
                continue
            with pytest.raises(attempt.error) as refused:
                vault.detokenize(attempt.token, tenant=attempt.tenant, caller=attempt.caller)
            assert getattr(refused.value, "audit_error", None) is None  # the refusal was audited
    records = audit.records[before:]
    assert len(attempts) == 120 and sum(a.error is not None for a in attempts) == 112
    assert len(records) == len(attempts)  # one record per attempt, refused or allowed
    for attempt, record in zip(attempts, records, strict=True):
        expected_reference = attempt.reference or attempt.token
        assert (record.action, record.result.value, record.reference, record.tenant) == (
            "detokenize", attempt.result, expected_reference, attempt.recorded_tenant or attempt.tenant)
        assert re.fullmatch(attempt.reason, record.reason), (attempt, record.reason)
        assert record.principal == session_arn(getattr(resources, f"{attempt.role}_role_arn"))
        assert (record.claimed_principal, record.purpose) == (attempt.caller.principal, attempt.caller.purpose)
    assert not any(IBAN in repr(record) for record in records)  # a clear value sent as a token is not logged


def test_iam_denied_tokenizer_and_eraser_are_recorded_as_themselves(
    env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog, admin: Vault
) -> None:
    token = admin.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    roles = role_vaults(env, resources, audit)
    with env.iam_enforced():
        for name in ("tokenizer", "eraser"):
            with pytest.raises(VaultAccessDeniedError):
                roles[name].detokenize(token, tenant="bank-a", caller=GATEWAY)
    principals = [(r.principal, r.claimed_principal, r.result.value) for r in audit.records]
    assert principals == [
        (session_arn(resources.tokenizer_role_arn), "scheme-gateway", "denied-iam"),
        (session_arn(resources.eraser_role_arn), "scheme-gateway", "denied-iam"),
    ]


def test_the_identity_is_asked_of_sts_once_per_vault_and_never_to_tokenize(
    env: AwsEnvironment, resources: VaultResources, meter: ApiCallMeter
) -> None:
    vault = vault_as_role(env, resources, None, policy=POLICY, audit=InMemoryAuditLog(), instrument=meter.attach)
    tokens = [vault.tokenize(f"Customer {i}", "name", tenant="bank-a", subject=f"s{i}") for i in range(5)]
    assert meter.count("sts") == 0
    for token in tokens:
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
    with pytest.raises(UnknownTokenError):
        vault.detokenize("junk", tenant="bank-a", caller=GATEWAY)
    vault.erase_subject(tenant="bank-a", subject="s0", caller=DPO)
    assert meter.snapshot().by_operation()["sts:GetCallerIdentity"] == 1
    assert vault.caller_identity() == env.client("sts").get_caller_identity()["Arn"]


def test_a_refusal_whose_audit_write_is_denied_still_raises_and_says_so(
    env: AwsEnvironment, resources: VaultResources, admin: Vault
) -> None:
    token = admin.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    router = vault_as_role(env, resources, resources.router_role_arn, policy=POLICY)  # audits to DynamoDB as itself
    with env.iam_enforced():
        with pytest.raises(VaultAccessDeniedError) as refused:  # the router may not write the audit table either
            router.detokenize(token, tenant="bank-a", caller=GATEWAY)
    assert isinstance(refused.value.audit_error, AuditWriteError)
    assert "AccessDeniedException" in str(refused.value.audit_error)
    assert any(note.startswith("not audited: ") for note in refused.value.__notes__)
    assert scan_audit_table(env.client("dynamodb"), resources.audit_table) == []


@pytest.mark.parametrize(
    ("token", "tenant", "caller", "error"),
    [("tok_iban_" + "b" * 32, "bank-a", Caller("analytics", "curiosity"), DetokenizeDeniedError),
     ("junk", "bank-a", GATEWAY, UnknownTokenError),
     ("tok_iban_" + "b" * 32, "bank#a", GATEWAY, InvalidReferenceError),
     ("tok_iban_" + "b" * 32, "bank-a", GATEWAY, UnknownTokenError)],
    ids=["denied-policy", "malformed-token", "bad-tenant", "unknown-token"],
)
def test_a_refusal_is_never_turned_into_success_when_the_audit_log_is_down(
    env: AwsEnvironment, resources: VaultResources, token: str, tenant: str, caller: Caller,
    error: type[Exception],
) -> None:
    class BrokenAudit:
        def append(self, record: object) -> None:
            raise AuditWriteError("audit table unavailable")

    vault = vault_as_role(env, resources, None, policy=POLICY, audit=BrokenAudit())
    with pytest.raises(error) as refused:
        vault.detokenize(token, tenant=tenant, caller=caller)
    assert str(refused.value.audit_error) == "audit table unavailable"


def test_every_erase_attempt_is_audited_under_the_authenticated_role(
    env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog, admin: Vault
) -> None:
    admin.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    roles = role_vaults(env, resources, audit)
    attempts: list[tuple[str, Callable[[Vault], object], type[Exception] | None, str, str, str]] = [
        ("detokenizer", lambda v: v.erase_subject(tenant="bank-a", subject="cust-1", caller=DPO),
         VaultAccessDeniedError, "denied-iam", "UpdateItem: AccessDeniedException", "subject:cust-1"),
        ("eraser", lambda v: v.erase_subject(tenant="bank-a", subject="cust 1", caller=DPO),
         InvalidReferenceError, "invalid-request",
         "subject is not 1-64 characters from [A-Za-z0-9._:-]: str of 6 characters", "invalid-subject"),
        ("eraser", lambda v: v.erase_subject(tenant="bank-a", subject="cust-1", caller=GATEWAY),
         DetokenizeDeniedError, "denied-policy", "not an eraser", "subject:cust-1"),
        ("eraser", lambda v: v.erase_subject(tenant="bank-a", subject="cust-1", caller=DPO),
         None, "erased", "", "subject:cust-1"),
    ]
    with env.iam_enforced():
        for role, call, error, *_ in attempts:
            if error is None:
                call(roles[role])
            else:
                with pytest.raises(error):
                    call(roles[role])
    assert [(r.action, r.principal, r.claimed_principal, r.result.value, r.reason, r.reference)
            for r in audit.records] == [
        ("erase", session_arn(getattr(resources, f"{role}_role_arn")), caller, result, reason, reference)
        for (role, _, _, result, reason, reference), caller in zip(attempts, ["dpo", "dpo", "scheme-gateway", "dpo"])
    ]


def test_an_unexpected_aws_error_is_audited_as_failed_and_raised(
    env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog, admin: Vault
) -> None:
    token = admin.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")

    def throttled(**_: object) -> dict[str, object]:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                          "GetItem")

    admin._ddb.get_item = throttled  # type: ignore[attr-defined]  # the client's own method, on this instance
    with pytest.raises(ClientError) as raised:
        admin.detokenize(token, tenant="bank-a", caller=GATEWAY)
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    record = audit.records[-1]
    assert (record.result.value, record.reason) == ("failed", "GetItem: ProvisionedThroughputExceededException")


def test_without_an_sts_client_the_identity_is_that_of_the_kms_clients_credentials(
    env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog
) -> None:
    from fasterpay.aws import assume_role

    credentials = assume_role(env.client("sts"), resources.detokenizer_role_arn, "fasterpay-detokenizer")
    vault = Vault(kms=env.client("kms", credentials=credentials), table_name=resources.vault_table,
                  dynamodb=env.client("dynamodb", credentials=credentials), key_id=resources.vault_key_arn,
                  audit=audit, policy=POLICY)  # as the pipeline's bootstrap builds it: no sts=
    with pytest.raises(UnknownTokenError):
        vault.detokenize("junk", tenant="bank-a", caller=GATEWAY)
    assert audit.records[-1].principal == session_arn(resources.detokenizer_role_arn)


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [("http://127.0.0.1:5123", "http://127.0.0.1:5123"),  # moto-server, LocalStack: the same endpoint
     (None, "https://sts.eu-west-2.amazonaws.com")],  # AWS: STS's own regional endpoint
    ids=["local-endpoint", "aws"],
)
def test_the_derived_sts_client_keeps_region_credentials_and_a_local_endpoint(
    env: AwsEnvironment, endpoint: str | None, expected: str
) -> None:
    from fasterpay.vault.core import _sts_beside

    kms = env.session.client("kms", region_name="eu-west-2", endpoint_url=endpoint, aws_access_key_id="AKIDEXAMPLE",
                             aws_secret_access_key="secret", aws_session_token="token")
    sts = _sts_beside(kms)
    frozen = sts._get_credentials().get_frozen_credentials()
    assert (sts.meta.endpoint_url, sts.meta.region_name) == (expected, "eu-west-2")
    assert (frozen.access_key, frozen.secret_key, frozen.token) == ("AKIDEXAMPLE", "secret", "token")
