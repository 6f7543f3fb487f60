"""The vault's AWS resources, created from ``fasterpay/cloudformation/vault.yaml``.

The same template deploys to a real account (the default, ``on_moto=False``: every IAM statement scoped
to the vault's own keys and tables) and to moto, where only ``on_moto=True`` works around two moto gaps,
in the open: IAM statements are granted on ``"*"`` because moto never matches KMS or DynamoDB resource
ARNs, and the HMAC key is created through the KMS API because moto's CloudFormation cannot create one.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from ..aws import AwsEnvironment, assume_role, deploy_stack

from .audit import AuditLog, DynamoDbAuditLog
from .core import Vault
from .datakeys import DataKeyCachePolicy
from .policy import VaultPolicy

__all__ = ["VaultResources", "deploy_vault", "vault_as_role", "vault_template"]


@dataclass(frozen=True)
class VaultResources:
    vault_key_arn: str
    token_mac_key_arn: str
    vault_table: str
    audit_table: str
    tokenizer_role_arn: str
    detokenizer_role_arn: str
    eraser_role_arn: str
    router_role_arn: str


def vault_template() -> str:
    """The CloudFormation template, as text."""
    return files(__name__.rsplit(".", 2)[0]).joinpath("cloudformation/vault.yaml").read_text(encoding="utf-8")


def deploy_vault(
    cloudformation: Any,
    kms: Any,
    *,
    name_prefix: str = "fasterpay",
    on_moto: bool = False,
    allowed_regions: tuple[str, ...] = ("eu-west-2",),
) -> VaultResources:
    """Deploy the vault stack and return its resources.

    ``allowed_regions`` are where tokens and personal data may be held: any other region is refused here
    (moto ignores the template's ``Rules``) and by CloudFormation on AWS.

    Examples:
        >>> with open_environment() as env:  # doctest: +SKIP
        ...     res = deploy_vault(env.client("cloudformation"), env.client("kms"),
        ...                        on_moto=env.backend is not Backend.AWS)
    """
    region = cloudformation.meta.region_name
    if region not in allowed_regions:
        raise ValueError(f"{region} is not in allowed_regions {allowed_regions}: deploy in an allowed region")
    parameters = {"NamePrefix": name_prefix, "ScopeToResources": "false" if on_moto else "true",
                  "AllowedRegions": ",".join(allowed_regions)}
    if on_moto:
        mac = kms.create_key(
            KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Description=f"{name_prefix} token HMAC key"
        )
        parameters["TokenMacKeyArn"] = mac["KeyMetadata"]["Arn"]
    out = deploy_stack(
        cloudformation, stack_name=f"{name_prefix}-vault", template_body=vault_template(), parameters=parameters
    )
    return VaultResources(
        vault_key_arn=out["VaultKeyArn"],
        token_mac_key_arn=out["TokenMacKeyArn"],
        vault_table=out["VaultTableName"],
        audit_table=out["AuditTableName"],
        tokenizer_role_arn=out["TokenizerRoleArn"],
        detokenizer_role_arn=out["DetokenizerRoleArn"],
        eraser_role_arn=out["EraserRoleArn"],
        router_role_arn=out["RouterRoleArn"],
    )


def vault_as_role(
    env: AwsEnvironment,
    resources: VaultResources,
    role_arn: str | None,
    *,
    policy: VaultPolicy,
    audit: AuditLog | None = None,
    cache: DataKeyCachePolicy = DataKeyCachePolicy(),
    token_key_cache: DataKeyCachePolicy | None = None,
    instrument: Any = None,
) -> Vault:
    """Build a :class:`Vault` whose clients carry ``role_arn``'s credentials (``None``: the environment's own).

    ``cache`` bounds data keys and, unless ``token_key_cache`` is given, derived token keys too.
    ``instrument`` is called with each client (for example ``meter.attach``), so API calls can be counted;
    the STS client makes one ``GetCallerIdentity`` call per vault, at its first audited attempt.
    On moto, assume the roles before ``env.iam_enforced()`` starts; the clients keep the credentials.
    """
    credentials = None
    if role_arn is not None:
        credentials = assume_role(env.client("sts"), role_arn, role_arn.rsplit("/", 1)[-1])
    kms = env.client("kms", credentials=credentials)
    dynamodb = env.client("dynamodb", credentials=credentials)
    sts = env.client("sts", credentials=credentials)  # who the audit records name: this role's session
    if instrument is not None:
        for client in (kms, dynamodb, sts):
            instrument(client)
    return Vault(
        kms=kms,
        dynamodb=dynamodb,
        table_name=resources.vault_table,
        key_id=resources.vault_key_arn,
        mac_key_id=resources.token_mac_key_arn,
        audit=audit if audit is not None else DynamoDbAuditLog(dynamodb, resources.audit_table),
        policy=policy,
        cache=cache,
        token_key_cache=token_key_cache,
        sts=sts,
    )
