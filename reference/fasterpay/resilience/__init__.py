"""Multi-region resilience: fencing, routing control, health quorum and the failover procedure.

Active/passive per cell: one region writes a cell at a time, fenced by an epoch and a lease
(:mod:`.fencing`); the controller moves a cell only after the old region's lease has certainly lapsed
(:mod:`.control`). Every payment carries one deadline from its scheme's time limit, split into hop
budgets (:mod:`.deadline`), and reads that tolerate staleness may be hedged (:mod:`.hedge`).
Replication between regions is DynamoDB global tables' (eventual, last writer wins); the drills in
``simulations/region_drills.py`` emulate it on moto, which has no global tables.

Copy ``resilience/`` with ``pipeline/`` and its siblings (see ``__copy_with__``).
"""

from .control import (
    ArcRoutingControls,
    ControlConflictError,
    FailbackNotReadyError,
    FailoverController,
    HealthPolicy,
    HealthQuorum,
    InMemoryRoutingControls,
    RoutingControlPlane,
    RtoModel,
    fence_interval,
)
from .fencing import Fence, FencedOutError, FenceGuard, LeaseState, RegionLease, create_fence_table, fence_key

from .deadline import (
    DEADLINE_HEADER,
    SCHEME_TIME_LIMITS_S,
    Deadline,
    DeadlineExceededError,
    HopBudget,
    HopBudgetError,
    MalformedDeadlineError,
    botocore_config,
    scheme_time_limit_s,
)
from .hedge import HedgeStats, Hedged, UnsafeHedgeError, check_hedgeable, hedged_read

#: Folders and modules to copy with this folder, into the same parent package. fencing.py and control.py
#: need boto3 only; the store they fence (pipeline/) is where the siblings come from.
__copy_with__: tuple[str, ...] = ("pipeline", "iso20022", "vault", "ledger", "idempotency", "aws.py", "cloudformation")

__all__ = [
    "DEADLINE_HEADER", "SCHEME_TIME_LIMITS_S", "Deadline", "DeadlineExceededError", "HedgeStats", "Hedged",
    "HopBudget", "HopBudgetError", "MalformedDeadlineError", "UnsafeHedgeError", "botocore_config",
    "check_hedgeable", "hedged_read", "scheme_time_limit_s",
    "ArcRoutingControls", "ControlConflictError", "FailbackNotReadyError", "FailoverController", "Fence",
    "FenceGuard", "FencedOutError", "HealthPolicy", "HealthQuorum", "InMemoryRoutingControls", "LeaseState",
    "RegionLease", "RoutingControlPlane", "RtoModel", "create_fence_table", "fence_interval", "fence_key",
]
