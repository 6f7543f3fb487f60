"""The ledger's AWS resources, created from ``fasterpay/cloudformation/ledger.yaml``.

The same template deploys to a real account (the default, ``on_moto=False``: every IAM statement scoped
to the ledger's own tables and queue, both queues TLS-only) and to moto, where only ``on_moto=True``
works around three moto gaps, in the open: IAM statements name ``"*"`` because moto never matches
DynamoDB resource ARNs, the queue policies are left out because moto's CloudFormation cannot create
them, and TTL is switched on through the DynamoDB API because moto's CloudFormation ignores
``TimeToLiveSpecification``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from ..aws import AwsEnvironment, assume_role, deploy_stack

from .core import LedgerTables

__all__ = ["LedgerResources", "deploy_ledger", "ledger_template", "role_clients"]


@dataclass(frozen=True)
class LedgerResources:
    tables: LedgerTables
    poster_role_arn: str
    relay_role_arn: str
    consumer_role_arn: str
    reconciler_role_arn: str


def ledger_template() -> str:
    """The CloudFormation template, as text."""
    return files(__name__.rsplit(".", 2)[0]).joinpath("cloudformation/ledger.yaml").read_text(encoding="utf-8")


def deploy_ledger(
    cloudformation: Any, *, name_prefix: str = "fasterpay", on_moto: bool = False, dynamodb: Any = None,
    allowed_regions: tuple[str, ...] = ("eu-west-2",),
) -> LedgerResources:
    """Deploy the ledger stack and return its resources.

    On moto, pass ``on_moto=True`` and ``dynamodb`` so that TTL is switched on (moto's CloudFormation
    ignores it). ``allowed_regions`` are where the ledger may hold data: any other region is refused here
    (moto ignores the template's ``Rules``) and by CloudFormation on AWS.

    Examples:
        >>> with open_environment() as env:  # doctest: +SKIP
        ...     res = deploy_ledger(env.client("cloudformation"), dynamodb=env.client("dynamodb"),
        ...                         on_moto=env.backend is not Backend.AWS)
        ...     ledger = Ledger(env.client("dynamodb"), res.tables)
    """
    region = cloudformation.meta.region_name
    if region not in allowed_regions:
        raise ValueError(f"{region} is not in allowed_regions {allowed_regions}: deploy in an allowed region")
    out = deploy_stack(
        cloudformation, stack_name=f"{name_prefix}-ledger", template_body=ledger_template(),
        parameters={"NamePrefix": name_prefix, "ScopeToResources": "false" if on_moto else "true",
                    "QueuePolicies": "disabled" if on_moto else "enabled",
                    "AllowedRegions": ",".join(allowed_regions)},
    )
    tables = LedgerTables(
        ledger=out["LedgerTableName"], outbox=out["OutboxTableName"], idempotency=out["IdempotencyTableName"],
        consumer=out["ConsumerTableName"], queue_url=out["EventsQueueUrl"],
        dead_letter_queue_url=out["EventsDeadLetterQueueUrl"],
    )
    if on_moto and dynamodb is not None:
        for table in (tables.idempotency, tables.consumer):
            ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if ttl["TimeToLiveStatus"] != "ENABLED":
                dynamodb.update_time_to_live(
                    TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    return LedgerResources(
        tables=tables,
        poster_role_arn=out["PosterRoleArn"],
        relay_role_arn=out["RelayRoleArn"],
        consumer_role_arn=out["ConsumerRoleArn"],
        reconciler_role_arn=out["ReconcilerRoleArn"],
    )


def role_clients(env: AwsEnvironment, role_arn: str | None, *services: str, instrument: Any = None) -> list[Any]:
    """Clients of ``services`` carrying ``role_arn``'s credentials (``None``: the environment's own).

    ``instrument`` is called with each client (for example ``meter.attach``).

    Examples:
        >>> dynamodb, sqs = role_clients(env, res.relay_role_arn, "dynamodb", "sqs")  # doctest: +SKIP
    """
    credentials = None
    if role_arn is not None:
        credentials = assume_role(env.client("sts"), role_arn, role_arn.rsplit("/", 1)[-1])
    clients = [env.client(service, credentials=credentials) for service in services]
    if instrument is not None:
        for client in clients:
            instrument(client)
    return clients

