"""The audit stack on moto: Object Lock in COMPLIANCE mode, write-once keys, least-privilege roles,
the end-to-end export and offline verification, and what moto does not enforce that AWS does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fasterpay.audit import (
    AuditEntry,
    AuditTrail,
    KmsCheckpointSigner,
    ObjectExistsError,
    S3AuditStore,
    verify_export,
)
from fasterpay.audit.stack import AuditResources, deploy_audit
from fasterpay.aws import AwsEnvironment, assume_role

T0 = dt.datetime(2026, 11, 28, 9, tzinfo=dt.UTC)
FIRST_SEGMENT = "segments/000000000000-000000000002.jsonl"


@pytest.fixture
def resources(env: AwsEnvironment) -> AuditResources:
    return deploy_audit(env.client("cloudformation"), env.client("kms"), env.client("s3"), retention_days=3,
                        on_moto=True)


@pytest.fixture
def filled(env: AwsEnvironment, resources: AuditResources) -> S3AuditStore:
    store = S3AuditStore(env.client("s3"), resources.bucket)
    trail = AuditTrail(store=store, signer=KmsCheckpointSigner(env.client("kms"), resources.signing_key_arn),
                       origin="bank-a/audit", batch_size=2)
    for i in range(7):
        trail.append(AuditEntry("payment.status", "svc-clearing", f"E2E-{i}", "ACSP", T0))
    trail.close()
    return store


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_the_bucket_locks_every_version_in_compliance_mode(env: AwsEnvironment, resources: AuditResources,
                                                           filled: S3AuditStore) -> None:
    s3 = env.client("s3")
    rule = s3.get_object_lock_configuration(Bucket=resources.bucket)["ObjectLockConfiguration"]
    assert rule["ObjectLockEnabled"] == "Enabled"
    assert rule["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE" and rule["Rule"]["DefaultRetention"]["Days"] == 3
    assert s3.get_bucket_versioning(Bucket=resources.bucket)["Status"] == "Enabled"
    retention = filled.retention(FIRST_SEGMENT)
    assert retention.mode == "COMPLIANCE"
    assert retention.retain_until > dt.datetime.now(dt.UTC) + dt.timedelta(days=2)


def test_a_locked_version_cannot_be_deleted(env: AwsEnvironment, resources: AuditResources,
                                            filled: S3AuditStore) -> None:
    s3 = env.client("s3")
    version = s3.head_object(Bucket=resources.bucket, Key=FIRST_SEGMENT)["VersionId"]
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=resources.bucket, Key=FIRST_SEGMENT, VersionId=version)
    assert _code(refused) == "AccessDenied"
    marker = s3.delete_object(Bucket=resources.bucket, Key=FIRST_SEGMENT)  # allowed: only hides it
    assert marker["DeleteMarker"] is True
    assert s3.get_object(Bucket=resources.bucket, Key=FIRST_SEGMENT, VersionId=version)["Body"].read()
    assert filled.version_findings() == [f"{FIRST_SEGMENT}: delete marker (the locked version is still there)"]


def test_the_log_never_overwrites_and_an_overwrite_by_someone_else_is_found(
        env: AwsEnvironment, resources: AuditResources, filled: S3AuditStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectExistsError):
        filled.put_segment(0, 2, b"forged\n")
    env.client("s3").put_object(Bucket=resources.bucket, Key=FIRST_SEGMENT, Body=b"forged\n")  # no If-None-Match
    assert filled.version_findings() == [f"{FIRST_SEGMENT}: 2 versions (overwritten)"]
    pem = KmsCheckpointSigner(env.client("kms"), resources.signing_key_arn).public_key_pem()
    report = verify_export(filled.export(tmp_path / "export"), pem)
    assert not report.intact and report.finding.entry == 0


def test_an_untouched_bucket_exports_and_verifies_offline(env: AwsEnvironment, resources: AuditResources,
                                                          filled: S3AuditStore, tmp_path: Path) -> None:
    pem = KmsCheckpointSigner(env.client("kms"), resources.signing_key_arn).public_key_pem()
    report = verify_export(filled.export(tmp_path / "export"), pem)
    assert report.intact and report.entries == 7 and report.checkpoints == 4  # flushes at 2, 4, 6 and close
    assert filled.version_findings() == []


def test_roles_can_append_and_read_but_never_delete_or_sign_as_auditor(env: AwsEnvironment,
                                                                        resources: AuditResources) -> None:
    sts = env.client("sts")
    writer = assume_role(sts, resources.writer_role_arn, "audit-writer")
    auditor = assume_role(sts, resources.auditor_role_arn, "auditor")
    w_s3, w_kms = env.client("s3", credentials=writer), env.client("kms", credentials=writer)
    a_s3, a_kms = env.client("s3", credentials=auditor), env.client("kms", credentials=auditor)
    with env.iam_enforced():
        trail = AuditTrail(store=S3AuditStore(w_s3, resources.bucket),
                           signer=KmsCheckpointSigner(w_kms, resources.signing_key_arn), origin="bank-a/audit",
                           batch_size=2)
        trail.append(AuditEntry("payment.status", "svc", "E2E-1", "ACSP", T0))
        trail.append(AuditEntry("payment.status", "svc", "E2E-2", "ACSC", T0))
        version = a_s3.head_object(Bucket=resources.bucket, Key=FIRST_SEGMENT)["VersionId"]
        assert S3AuditStore(a_s3, resources.bucket).keys() == ["checkpoints/000000000002.note", FIRST_SEGMENT]
        assert a_kms.get_public_key(KeyId=resources.signing_key_arn)["PublicKey"]
        for call in (
            lambda: w_s3.delete_object(Bucket=resources.bucket, Key=FIRST_SEGMENT, VersionId=version),
            lambda: w_s3.delete_object(Bucket=resources.bucket, Key=FIRST_SEGMENT),
            lambda: w_s3.get_object(Bucket=resources.bucket, Key=FIRST_SEGMENT),
            lambda: a_s3.put_object(Bucket=resources.bucket, Key="segments/x.jsonl", Body=b"x"),
            lambda: a_kms.sign(KeyId=resources.signing_key_arn, Message=b"x", MessageType="RAW",
                               SigningAlgorithm="ECDSA_SHA_256"),
        ):
            with pytest.raises(ClientError) as denied:
                call()
            assert _code(denied) in ("AccessDenied", "AccessDeniedException")


def test_what_moto_does_not_enforce_that_aws_does(env: AwsEnvironment, resources: AuditResources,
                                                  filled: S3AuditStore) -> None:
    """moto lets COMPLIANCE retention be shortened, which AWS refuses to anyone (root included), and has
    no GetObjectRetention. If this test starts failing, moto has closed the gap: update the page."""
    s3 = env.client("s3")
    version = s3.head_object(Bucket=resources.bucket, Key=FIRST_SEGMENT)["VersionId"]
    s3.put_object_retention(Bucket=resources.bucket, Key=FIRST_SEGMENT, VersionId=version,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": dt.datetime(2000, 1, 1)})
    assert filled.retention(FIRST_SEGMENT, version).retain_until.year == 2000  # AWS: AccessDenied
    no_retries = env.client("s3", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError):  # moto answers 500: not implemented
        no_retries.get_object_retention(Bucket=resources.bucket, Key=FIRST_SEGMENT)


def test_retention_must_be_at_least_a_day(env: AwsEnvironment) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        deploy_audit(env.client("cloudformation"), env.client("kms"), env.client("s3"), retention_days=0, on_moto=True)
