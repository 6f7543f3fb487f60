"""The audit trail's AWS resources, created from ``fasterpay/cloudformation/audit.yaml``.

The same template deploys to a real account (the default, ``on_moto=False``: IAM scoped to the bucket
and key) and to moto, where only ``on_moto=True`` works around two moto gaps, in the open: moto's
CloudFormation ignores the bucket's Object Lock and versioning properties and cannot create an
asymmetric KMS key, so on moto both are created through the S3 and KMS APIs with the template's
settings and passed in as parameters. IAM statements are granted on ``"*"`` on moto, because moto
never matches KMS resource ARNs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from ..aws import deploy_stack

__all__ = ["AuditResources", "audit_template", "deploy_audit"]


@dataclass(frozen=True)
class AuditResources:
    """What the stack created (or, on moto, was given): bucket, signing key, roles, retention."""

    bucket: str
    signing_key_arn: str
    writer_role_arn: str
    auditor_role_arn: str
    retention_days: int


def audit_template() -> str:
    """The CloudFormation template, as text.

    Examples:
        >>> "ObjectLockEnabled" in audit_template()
        True
    """
    return files(__name__.rsplit(".", 2)[0]).joinpath("cloudformation/audit.yaml").read_text(encoding="utf-8")


def deploy_audit(
    cloudformation: Any,
    kms: Any,
    s3: Any,
    *,
    name_prefix: str = "fasterpay",
    retention_days: int = 1,
    on_moto: bool = False,
    allowed_regions: tuple[str, ...] = ("eu-west-2",),
) -> AuditResources:
    """Deploy the audit stack and return its resources.

    ``allowed_regions`` are where audit records may be held: any other region is refused here (moto
    ignores the template's ``Rules``) and by CloudFormation on AWS.

    Examples:
        >>> with open_environment() as env:  # doctest: +SKIP
        ...     res = deploy_audit(env.client("cloudformation"), env.client("kms"), env.client("s3"),
        ...                        on_moto=env.backend is not Backend.AWS)
    """
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or retention_days < 1:
        raise ValueError("retention_days must be a whole number of days >= 1")
    region = cloudformation.meta.region_name
    if region not in allowed_regions:
        raise ValueError(f"{region} is not in allowed_regions {allowed_regions}: deploy in an allowed region")
    parameters = {"NamePrefix": name_prefix, "RetentionDays": str(retention_days),
                  "ScopeToResources": "false" if on_moto else "true", "AllowedRegions": ",".join(allowed_regions)}
    if on_moto:
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY",
                             Description=f"{name_prefix} audit checkpoint signing key")
        parameters["SigningKeyArn"] = key["KeyMetadata"]["Arn"]
        region = s3.meta.region_name
        bucket = f"{name_prefix}-audit-{region}"
        create: dict[str, Any] = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
        if region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**create)  # Object Lock turns versioning on
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": retention_days}}})
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
        parameters["AuditBucketName"] = bucket
    out = deploy_stack(cloudformation, stack_name=f"{name_prefix}-audit", template_body=audit_template(),
                       parameters=parameters)
    return AuditResources(
        bucket=out["AuditBucketName"],
        signing_key_arn=out["SigningKeyArn"],
        writer_role_arn=out["AuditWriterRoleArn"],
        auditor_role_arn=out["AuditorRoleArn"],
        retention_days=int(out["RetentionDays"]),
    )
