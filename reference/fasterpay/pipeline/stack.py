"""The pipeline's AWS resources, created from ``fasterpay/cloudformation/pipeline.yaml``.

Without ``on_moto`` the stack is the production one. Only ``on_moto=True`` works around two moto gaps,
in the open: the event source mappings are left out (``EventSourceMappings=disabled``), because moto's
mappings try to invoke Lambda through Docker (the local runner polls the same queues instead), and so are
the TLS-only queue policies (``QueuePolicies=disabled``), which moto's CloudFormation cannot create.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from ..aws import deploy_stack

__all__ = ["QUEUES", "PipelineResources", "deploy_pipeline", "pipeline_template"]

#: The pipeline's queues: one per handler, and the answers queue the sender reads.
QUEUES = ("accept", "clear", "answers")


@dataclass(frozen=True)
class PipelineResources:
    """The stack's outputs: tables, and a queue and dead-letter queue per handler (and for answers)."""

    payments_table: str
    settlement_table: str
    queues: dict[str, str]
    dead_letter_queues: dict[str, str]


def pipeline_template() -> str:
    """The CloudFormation template, as text."""
    return files(__name__.rsplit(".", 2)[0]).joinpath("cloudformation/pipeline.yaml").read_text(encoding="utf-8")


def deploy_pipeline(cloudformation: Any, *, name_prefix: str = "fasterpay", on_moto: bool = False,
                    max_receive_count: int = 5, allowed_regions: tuple[str, ...] = ("eu-west-2",),
                    parameters: dict[str, str] | None = None) -> PipelineResources:
    """Deploy the pipeline stack and return its resources.

    ``allowed_regions`` are where this deployment may hold payment data: any other region is refused
    here (moto ignores the template's ``Rules``) and by CloudFormation on AWS.

    Examples:
        >>> with open_environment() as env:  # doctest: +SKIP
        ...     res = deploy_pipeline(env.client("cloudformation"), on_moto=env.backend is not Backend.AWS)
    """
    params = {"NamePrefix": name_prefix, "MaxReceiveCount": str(max_receive_count),
              "AllowedRegions": ",".join(allowed_regions),
              "EventSourceMappings": "disabled" if on_moto else "enabled",
              "QueuePolicies": "disabled" if on_moto else "enabled", **(parameters or {})}
    if int(params["MaxReceiveCount"]) < 5:  # the template's MinValue, which moto does not check
        raise ValueError("max_receive_count must be at least 5, so a throttled batch is retried, not dead-lettered")
    region = cloudformation.meta.region_name
    if region not in params["AllowedRegions"].split(","):
        raise ValueError(f"{region} is not in allowed_regions {params['AllowedRegions']}: deploy in an allowed region")
    out = deploy_stack(cloudformation, stack_name=f"{name_prefix}-pipeline", template_body=pipeline_template(),
                       parameters=params, poll_seconds=1)
    return PipelineResources(
        payments_table=out["PaymentsTableName"], settlement_table=out["SettlementTableName"],
        queues={q: out[f"{q.capitalize()}QueueUrl"] for q in QUEUES},
        dead_letter_queues={q: out[f"{q.capitalize()}DeadLetterQueueUrl"] for q in QUEUES},
    )
