"""The pipeline's AWS resources, created from ``fasterpay/cloudformation/pipeline.yaml``.

On moto the event source mappings are left out (``EventSourceMappings=disabled``): moto's mappings try
to invoke Lambda through Docker. The local runner polls the same queues instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from fasterpay.aws import deploy_stack

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
    return files("fasterpay").joinpath("cloudformation/pipeline.yaml").read_text(encoding="utf-8")


def deploy_pipeline(cloudformation: Any, *, name_prefix: str = "fasterpay", on_moto: bool = True,
                    max_receive_count: int = 5, parameters: dict[str, str] | None = None) -> PipelineResources:
    """Deploy the pipeline stack and return its resources.

    Examples:
        >>> with open_environment() as env:  # doctest: +SKIP
        ...     res = deploy_pipeline(env.client("cloudformation"))
    """
    params = {"NamePrefix": name_prefix, "MaxReceiveCount": str(max_receive_count),
              "EventSourceMappings": "disabled" if on_moto else "enabled", **(parameters or {})}
    out = deploy_stack(cloudformation, stack_name=f"{name_prefix}-pipeline", template_body=pipeline_template(),
                       parameters=params, poll_seconds=1)
    return PipelineResources(
        payments_table=out["PaymentsTableName"], settlement_table=out["SettlementTableName"],
        queues={q: out[f"{q.capitalize()}QueueUrl"] for q in QUEUES},
        dead_letter_queues={q: out[f"{q.capitalize()}DeadLetterQueueUrl"] for q in QUEUES},
    )
