"""FinOps for payments: cost per payment by pattern and component, scaling strategies, capacity, guards.

* :mod:`.costs`: split a metered run by pattern and price it per 10,000 payments (exact Decimal USD);
  the CloudWatch datum that tracks cost per transaction as an SLO.
* :mod:`.autoscaling`: cost against throttling for DynamoDB on-demand, provisioned with auto scaling
  and reserved capacity; Lambda against Fargate (break-even TPS); provisioned and reserved concurrency.
* :mod:`.capacity`: which AWS quota binds first at a target rate, with each quota cited and the plan
  that gets past it (caching, sharding, cells, a quota increase, another region).
* :mod:`.guards`: a retry budget, a log budget and a per-client allowance, so that failures and abuse
  cannot run up the bill.
* :mod:`.price_check`: the dated price table against the AWS Price List API (needs an account).

Copy ``finops/`` with ``metering.py`` and ``pricing.py`` (and ``aws.py`` to run the quick start on moto; see
``__copy_with__``); every module needs the standard library only, boto3 clients are passed in.
"""

from .autoscaling import (
    SCALING_PRICE_PROVENANCE,
    SCALING_PRICES,
    BreakEven,
    ScalingPrices,
    ScalingResult,
    dynamodb_on_demand,
    dynamodb_provisioned_autoscaling,
    dynamodb_reserved,
    fargate_compute,
    fargate_cost,
    lambda_compute,
    lambda_cost,
    lambda_fargate_break_even_tps,
    provisioned_concurrency,
)
from .capacity import (
    QUOTAS,
    CallProfile,
    CapacityModelError,
    CapacityRow,
    LimitCheck,
    ServiceQuota,
    capacity_plan,
    capacity_table,
    first_binding,
    quotas_for,
)
from .guards import AllowanceExceededError, ClientAllowance, LogBudget, RetryBudget
from .price_check import Drift, live_price, price_drift
from .costs import (
    DEFAULT_RULES,
    PATTERNS,
    AllocationRule,
    PatternUsage,
    UnitCost,
    UnknownPatternError,
    spread_fixed,
    split_by_pattern,
    unit_cost,
    unit_cost_metric,
)

#: Modules to copy with this folder, into the same parent package (aws.py only for the quick start's moto).
__copy_with__: tuple[str, ...] = ("metering.py", "pricing.py", "aws.py")

__all__ = [
    "DEFAULT_RULES", "PATTERNS", "QUOTAS", "SCALING_PRICES", "SCALING_PRICE_PROVENANCE",
    "AllocationRule", "AllowanceExceededError", "BreakEven", "CallProfile", "CapacityModelError", "CapacityRow",
    "ClientAllowance", "Drift", "LimitCheck", "LogBudget", "PatternUsage", "RetryBudget", "ScalingPrices",
    "ScalingResult", "ServiceQuota", "UnitCost", "UnknownPatternError", "capacity_plan", "capacity_table",
    "dynamodb_on_demand", "dynamodb_provisioned_autoscaling", "dynamodb_reserved", "fargate_compute", "fargate_cost",
    "first_binding", "lambda_compute", "lambda_cost", "lambda_fargate_break_even_tps", "live_price", "price_drift",
    "provisioned_concurrency", "quotas_for", "spread_fixed", "split_by_pattern", "unit_cost", "unit_cost_metric",
]
