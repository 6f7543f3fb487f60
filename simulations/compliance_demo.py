"""The compliance article's live evidence, kept here so its notebook stays thin.

* :func:`erasure` tokenises a customer's values, erases the customer (crypto-shredding), and proves that
  nothing is left to read: detokenize is refused, KMS ``Decrypt`` of every wrapped key of the customer's
  ciphertexts cannot give back a value, and a scan of every table in the environment finds the clear values
  nowhere.
* :func:`residency` asks each deploy helper for a region outside the allowed ones: each refuses before it
  creates anything, and each template carries the same rule for CloudFormation.
* :func:`cloudtrail` creates the trail of ``cloudformation/security.yaml`` from the template's own
  properties (moto's CloudFormation has no trail) and reads back its data-event selectors.
* :func:`break_glass` evaluates the template's break-glass trust policy for requests with and without MFA
  and session tags, and shows the helper refusing a request without MFA before any AWS call.

Everything runs on moto; where moto cannot enforce (IAM condition keys), the module says so and evaluates the
policy itself.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fasterpay.aws import AwsEnvironment, Backend
from fasterpay.metering import ApiCallMeter

from .templates import parse_template, resolve

__all__ = ["BreakGlassCase", "ErasureProof", "break_glass", "cloudtrail", "erasure", "residency"]

TEMPLATES = Path(__file__).resolve().parents[1] / "reference" / "fasterpay" / "cloudformation"
CUSTOMER = {"iban": "GB33BUKB20201555555555", "name": "Ada Lovelace", "account_number": "55779911"}


@dataclass(frozen=True)
class ErasureProof:
    """What :func:`erasure` found after the erasure; every count of readable values must be 0."""

    tokens: int
    subject_secret_left: bool
    detokenize_refused: int
    ciphertext_items: int
    kms_decrypts_tried: int
    values_recovered: int
    tables_scanned: int
    items_scanned: int
    clear_values_found: int
    receipt: Any = field(repr=False, default=None)


def _scan_for(ddb: Any, values: list[str]) -> tuple[int, int, int]:
    """Tables scanned, items scanned, items in which any of ``values`` appears (as text or base64)."""
    needles = [v.encode() for v in values] + [base64.b64encode(v.encode()) for v in values]
    tables = items = found = 0
    for table in ddb.list_tables()["TableNames"]:
        tables += 1
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                items += 1
                raw = repr(item).encode()
                found += any(needle in raw for needle in needles)
    return tables, items, found


def erasure(env: AwsEnvironment) -> ErasureProof:
    """Tokenise a customer's values, erase the customer, and look everywhere for what is left.

    After the erasure an administrator with ``kms:Decrypt`` still obtains each ciphertext's data key, but the
    value key is derived from the data key *and* the subject's secret, which the erasure destroyed: AES-GCM
    refuses every guess. Then every table in the environment is scanned for the clear values.
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from fasterpay.vault import Caller, SubjectErasedError, Vault, VaultPolicy
    from fasterpay.vault.stack import deploy_vault, vault_as_role

    resources = deploy_vault(env.client("cloudformation"), env.client("kms"), name_prefix="dpo",
                             on_moto=env.backend is not Backend.AWS)
    policy = VaultPolicy.of(grants=[("payments-ops", ["iban", "name", "account_number"], ["investigation"])],
                            erasers=["dpo"])
    vault = vault_as_role(env, resources, None, policy=policy)
    tokens = [vault.tokenize(value, data_class, tenant="bank-a", subject="cust-42")
              for data_class, value in CUSTOMER.items()]
    receipt = vault.erase_subject(tenant="bank-a", subject="cust-42", caller=Caller("dpo", "gdpr-art-17"))
    refused = 0
    for token in tokens:
        try:
            vault.detokenize(token, tenant="bank-a", caller=Caller("payments-ops", "investigation"))
        except SubjectErasedError:
            refused += 1
    ddb, kms = env.client("dynamodb"), env.client("kms")
    tried = recovered = 0
    for token in tokens:
        item = ddb.get_item(TableName=resources.vault_table, Key={"pk": {"S": f"TOKEN#{token}"}})["Item"]
        data_key = kms.decrypt(CiphertextBlob=item["encrypted_data_key"]["B"], EncryptionContext={
            "purpose": "fasterpay-vault", "tenant": "bank-a", "data_class": item["data_class"]["S"]})["Plaintext"]
        text = {name: item[name]["S"] for name in ("tenant", "data_class", "subject", "alg", "kms_key_id",
                                                   "created_at")}
        for guess in (b"", b"\x00" * 32):  # the destroyed secret cannot be supplied: try what is left
            tried += 1
            key = Vault._value_key(data_key, guess, "bank-a", "cust-42")
            try:
                AESGCM(key).decrypt(item["nonce"]["B"], item["ciphertext"]["B"], Vault._aad(token, text))
                recovered += 1
            except InvalidTag:
                pass
    subject = ddb.get_item(TableName=resources.vault_table, Key={"pk": {"S": "SUBJECT#bank-a#cust-42"}})["Item"]
    tables, items, found = _scan_for(ddb, list(CUSTOMER.values()))
    return ErasureProof(len(tokens), "secret" in subject, refused, len(tokens), tried, recovered, tables, items, found,
                        receipt)


def residency(env: AwsEnvironment, *, region: str = "us-east-1") -> dict[str, str]:
    """Each deploy helper asked for ``region`` (not allowed by default): what it answered, nothing created."""
    from fasterpay.audit.stack import deploy_audit
    from fasterpay.ledger.stack import deploy_ledger
    from fasterpay.pipeline.stack import deploy_pipeline
    from fasterpay.vault.stack import deploy_vault

    cloudformation = env.client("cloudformation", region=region)
    attempts = {
        "vault": lambda: deploy_vault(cloudformation, env.client("kms", region=region), on_moto=True),
        "audit": lambda: deploy_audit(cloudformation, env.client("kms", region=region), env.client("s3", region=region),
                                      on_moto=True),
        "ledger": lambda: deploy_ledger(cloudformation, on_moto=True),
        "pipeline": lambda: deploy_pipeline(cloudformation, on_moto=True),
    }
    answers: dict[str, str] = {}
    for name, attempt in attempts.items():
        try:
            attempt()
            answers[name] = "DEPLOYED (not refused)"
        except ValueError as exc:
            answers[name] = str(exc)
    answers["stacks created"] = str(len(cloudformation.list_stacks()["StackSummaries"]))
    return answers


def template_rule(name: str) -> Any:
    """The ``AllowedRegions`` assertion of a template, as CloudFormation reads it."""
    template = parse_template((TEMPLATES / f"{name}.yaml").read_text(encoding="utf-8"))
    return [assertion["Assert"] for rule in template.get("Rules", {}).values() for assertion in rule["Assertions"]]


def cloudtrail(env: AwsEnvironment) -> dict[str, Any]:
    """The security template's trail, created through the CloudTrail API from its properties, read back."""
    template = parse_template((TEMPLATES / "security.yaml").read_text(encoding="utf-8"))
    s3, kms = env.client("s3"), env.client("kms")
    bucket = "fasterpay-trail-demo"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": env.region},
                     ObjectLockEnabledForBucket=True)
    key = kms.create_key(Description="trail key")["KeyMetadata"]["Arn"]
    trail = resolve(template, template["Resources"]["Trail"]["Properties"],
                    attributes={"TrailBucket": bucket, "TrailKey": key, "TrailKey.Arn": key})
    client = env.client("cloudtrail")
    made = client.create_trail(Name=trail["TrailName"], S3BucketName=bucket, KmsKeyId=key,
                               IsMultiRegionTrail=trail["IsMultiRegionTrail"],
                               EnableLogFileValidation=trail["EnableLogFileValidation"],
                               IncludeGlobalServiceEvents=trail["IncludeGlobalServiceEvents"])
    client.put_event_selectors(TrailName=made["TrailARN"], AdvancedEventSelectors=trail["AdvancedEventSelectors"])
    (described,) = client.describe_trails(trailNameList=[made["TrailARN"]])["trailList"]
    return {"trail": described, "selectors": client.get_event_selectors(TrailName=made["TrailARN"])}


@dataclass(frozen=True)
class BreakGlassCase:
    """One request for the break-glass role and what the trust policy decides."""

    name: str
    allowed: bool
    reasons: tuple[str, ...]


def break_glass(env: AwsEnvironment) -> tuple[list[BreakGlassCase], str, int, str]:
    """The template's trust policy evaluated for five requests; the helper refusing a request without MFA
    (and the AWS calls it made: none); and, with MFA, the assumed-role ARN on moto."""
    from fasterpay.security import BreakGlassRefusedError, assume_break_glass, evaluate_trust_policy, request_context

    template = parse_template((TEMPLATES / "security.yaml").read_text(encoding="utf-8"))
    trust = resolve(template, template["Resources"]["BreakGlassRole"]["Properties"]["AssumeRolePolicyDocument"])
    responder = resolve(template, {"Ref": "BreakGlassPrincipalArn"})
    principal = responder if responder.startswith("arn:") else "arn:aws:iam::123456789012:user/responder"
    tags = {"incident-id": "INC-4711", "operator": "alice"}
    requests = {
        "MFA 60 s old, incident tags": request_context(mfa_age_s=60, tags=tags),
        "no MFA": request_context(mfa_age_s=None, tags=tags),
        "MFA 2 hours old": request_context(mfa_age_s=7200, tags=tags),
        "MFA, no incident id": request_context(mfa_age_s=60, tags={"operator": "alice"}),
        "MFA, an extra tag": request_context(mfa_age_s=60, tags={**tags, "team": "ops"}),
    }
    cases = []
    for name, context in requests.items():
        decision = evaluate_trust_policy(trust, principal_arn=principal, action="sts:AssumeRole", context=context)
        cases.append(BreakGlassCase(name, decision.allowed, tuple(decision.reasons)))
    sts = env.client("sts")
    meter = ApiCallMeter()
    meter.attach(sts)
    role = "arn:aws:iam::123456789012:role/fasterpay-break-glass"
    try:
        assume_break_glass(sts, role, mfa_serial="arn:aws:iam::123456789012:mfa/alice", token_code="",
                           incident_id="INC-4711", operator="alice")
        refusal = "NOT REFUSED"
    except BreakGlassRefusedError as exc:
        refusal = str(exc)
    calls = meter.count()
    assumed = assume_break_glass(sts, role, mfa_serial="arn:aws:iam::123456789012:mfa/alice", token_code="123456",
                                 incident_id="INC-4711", operator="alice")["AssumedRoleArn"]
    return cases, refusal, calls, assumed
