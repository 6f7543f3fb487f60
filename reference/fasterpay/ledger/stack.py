"""The ledger's AWS resources, created from ``fasterpay/cloudformation/ledger.yaml``.

The same template deploys to a real account (``on_moto=False``: every IAM statement scoped to the
ledger's own tables and queue) and to moto, where two moto gaps are worked around in the open: IAM
statements name ``"*"`` because moto never matches DynamoDB resource ARNs, and TTL is switched on
through the DynamoDB API because moto's CloudFormation ignores ``TimeToLiveSpecification``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from fasterpay.aws import AwsEnvironment, assume_role, deploy_stack

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
    return files("fasterpay").joinpath("cloudformation/ledger.yaml").read_text(encoding="utf-8")


def deploy_ledger(
    cloudformation: Any, *, name_prefix: str = "fasterpay", on_moto: bool = True, dynamodb: Any = None
) -> LedgerResources:
    """Deploy the ledger stack and return its resources.

    On moto, pass ``dynamodb`` so that TTL is switched on (moto's CloudFormation ignores it).

    Examples:
        >>> with open_environment() as env:  # doctest: +SKIP
        ...     res = deploy_ledger(env.client("cloudformation"), dynamodb=env.client("dynamodb"))
        ...     ledger = Ledger(env.client("dynamodb"), res.tables)
    """
    out = deploy_stack(
        cloudformation, stack_name=f"{name_prefix}-ledger", template_body=ledger_template(),
        parameters={"NamePrefix": name_prefix, "ScopeToResources": "false" if on_moto else "true"},
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

