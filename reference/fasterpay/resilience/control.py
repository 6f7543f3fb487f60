"""Routing control, health quorum and the failover/failback procedure for active/passive cells.

* :class:`RoutingControlPlane`: which region is active for a cell, at which epoch. In production this
  is Amazon Route 53 Application Recovery Controller (ARC) routing controls: a data plane of five
  regional cluster endpoints that is strongly consistent, and is read and set through any of them
  (:class:`ArcRoutingControls`). :class:`InMemoryRoutingControls` is an **emulated** control plane with
  the same contract (a consistent store, conditional set on the expected epoch) for tests and drills.
* :class:`HealthPolicy` and :class:`HealthQuorum`: a region is declared unhealthy only when at least
  ``quorum`` of ``vantage_points`` each saw ``failure_threshold`` consecutive failed probes, so one
  flapping or lying probe cannot trigger a failover (the "false health signal" threat).
* :class:`FailoverController`: ``failover`` = (1) set the old region OFF, (2) wait the **fence
  interval** (:func:`fence_interval` = lease ttl + max clock skew + longest in-flight write), (3) bump
  the epoch and set the new region ON, (4) the new region's lease starts. ``failback`` is the same in
  reverse, allowed only when replication to the old region has no backlog and the old region's
  unreplicated tail has been reconciled. Both return a timeline of ``(seconds, event)``.
* :class:`RtoModel`: the modelled recovery time, every input a named parameter with its source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "ArcRoutingControls",
    "ControlConflictError",
    "FailbackNotReadyError",
    "FailoverController",
    "HealthPolicy",
    "HealthQuorum",
    "InMemoryRoutingControls",
    "RoutingControlPlane",
    "RtoModel",
    "fence_interval",
]


class ControlConflictError(Exception):
    """The cell's epoch is not the one expected: another operator or controller changed it first.

    Read the current state with ``active(cell)`` and decide again; never force a set.
    """


class FailbackNotReadyError(Exception):
    """Failback refused: replication to the old region has a backlog, or its tail is not reconciled.

    Wait until the backlog is zero, reconcile the old region's unreplicated tail against the active
    region (by UETR), then call ``failback`` again.
    """


class RoutingControlPlane(Protocol):
    """Which region is active for a cell: ``(region, epoch, state)``; conditional on the epoch to set."""

    def active(self, cell: str) -> tuple[str, int, str]: ...

    def set(self, cell: str, region: str, state: str, *, expected_epoch: int, new_epoch: int) -> None: ...


class InMemoryRoutingControls:
    """An EMULATED routing control plane: a consistent in-memory store of ``{cell: (region, epoch, state)}``.

    It stands in for Route 53 ARC routing controls, whose data plane is five regional cluster endpoints
    and is strongly consistent; ``set`` is conditional on the expected epoch, as a controller that reads
    before it writes would be. ``reachable`` (a callable taking the caller's region, or None for any)
    emulates a region that cannot reach the control plane: a call from it raises ``ConnectionError``.

    Examples:
        >>> controls = InMemoryRoutingControls({"c1": ("eu-west-2", 1, "ON")})
        >>> controls.active("c1")
        ('eu-west-2', 1, 'ON')
        >>> controls.set("c1", "eu-west-2", "OFF", expected_epoch=1, new_epoch=1)
        >>> controls.active("c1")
        ('eu-west-2', 1, 'OFF')
    """

    def __init__(self, cells: Mapping[str, tuple[str, int, str]]) -> None:
        self._cells = dict(cells)
        self.unreachable_from: set[str] = set()
        self.updates = 0

    def view(self, region: str) -> _RegionView:
        """The control plane as ``region`` reaches it (raises ConnectionError while cut off)."""
        return _RegionView(self, region)

    def active(self, cell: str) -> tuple[str, int, str]:
        """The cell's active region, epoch and state (ON or OFF)."""
        return self._cells[cell]

    def set(self, cell: str, region: str, state: str, *, expected_epoch: int, new_epoch: int) -> None:
        """Set the cell's region and state, only if its epoch is ``expected_epoch`` (never backwards)."""
        if state not in ("ON", "OFF"):
            raise ValueError("state is ON or OFF")
        _, epoch, _ = self._cells[cell]
        if epoch != expected_epoch or new_epoch < epoch:
            raise ControlConflictError(f"cell {cell} is at epoch {epoch}, not {expected_epoch}: read it again")
        self._cells[cell] = (region, new_epoch, state)
        self.updates += 1


class _RegionView:
    def __init__(self, plane: InMemoryRoutingControls, region: str) -> None:
        self._plane = plane
        self.region = region

    def active(self, cell: str) -> tuple[str, int, str]:
        if self.region in self._plane.unreachable_from:
            raise ConnectionError(f"{self.region} cannot reach the routing control plane")
        return self._plane.active(cell)


class ArcRoutingControls:
    """Route 53 ARC routing controls through ``route53-recovery-cluster`` (NOT tested: moto lacks ARC).

    ``arns`` maps ``(cell, region)`` to the routing control ARN of that region's cell; the epoch is kept
    by the caller (ARC has no epoch: store it beside the controls, for example in a DynamoDB item the
    controller updates conditionally). Use a client per cluster endpoint and retry on the next one.

    Examples:
        >>> arc = ArcRoutingControls(boto3.client("route53-recovery-cluster", endpoint_url=url),
        ...                          {("c1", "eu-west-2"): arn_a, ("c1", "eu-west-1"): arn_b})  # doctest: +SKIP
    """

    def __init__(self, cluster_client: Any, arns: Mapping[tuple[str, str], str], epochs: dict[str, int] | None = None) -> None:
        self._client = cluster_client
        self._arns = dict(arns)
        self._epochs = dict(epochs or {})

    def active(self, cell: str) -> tuple[str, int, str]:
        """The region whose routing control is On (OFF and the first region if none is)."""
        regions = [region for (c, region) in self._arns if c == cell]
        for region in regions:
            state = self._client.get_routing_control_state(RoutingControlArn=self._arns[(cell, region)])
            if state["RoutingControlState"] == "On":
                return region, self._epochs.get(cell, 0), "ON"
        return regions[0], self._epochs.get(cell, 0), "OFF"

    def set(self, cell: str, region: str, state: str, *, expected_epoch: int, new_epoch: int) -> None:
        """Turn the cell's controls: ``region`` to ``state``, every other region Off, in one update."""
        if self._epochs.get(cell, 0) != expected_epoch:
            raise ControlConflictError(f"cell {cell} is at epoch {self._epochs.get(cell, 0)}, not {expected_epoch}")
        entries = [{"RoutingControlArn": arn, "RoutingControlState": ("On" if r == region and state == "ON" else "Off")}
                   for (c, r), arn in self._arns.items() if c == cell]
        self._client.update_routing_control_states(UpdateRoutingControlStateEntries=entries)
        self._epochs[cell] = new_epoch


def fence_interval(*, lease_ttl_s: float, max_clock_skew_s: float, max_inflight_write_s: float) -> float:
    """How long to wait after setting the old region OFF before the new region may write.

    ``lease_ttl_s + max_clock_skew_s + max_inflight_write_s``: the old region's last renewal may have
    happened just before OFF (its lease then runs ``ttl`` more), its clock may be behind by the skew, and
    a write (to DynamoDB, or a submission to the scheme) that started just before the lease ended may
    still be in flight.

    Examples:
        >>> fence_interval(lease_ttl_s=10.0, max_clock_skew_s=1.0, max_inflight_write_s=4.0)
        15.0
    """
    return lease_ttl_s + max_clock_skew_s + max_inflight_write_s


@dataclass(frozen=True)
class HealthPolicy:
    """When a region counts as unhealthy: ``quorum`` of ``vantage_points`` saw ``failure_threshold`` failures in a row.

    Defaults follow Route 53 health checks: a 30 s request interval (10 s "fast") and a failure threshold
    of 3 (Route 53 developer guide, "Values that you specify when you create or update health checks");
    Route 53 checks from several regions and calls an endpoint unhealthy when fewer than 18% of its
    checkers see it healthy; here a simple majority of our own vantage points decides.

    Examples:
        >>> HealthPolicy().detection_seconds
        90.0
        >>> HealthPolicy(interval_s=10.0).detection_seconds
        30.0
    """

    interval_s: float = 30.0
    failure_threshold: int = 3
    vantage_points: int = 3
    quorum: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.quorum <= self.vantage_points:
            raise ValueError("quorum must be between 1 and vantage_points")
        if self.failure_threshold < 1 or self.interval_s <= 0:
            raise ValueError("failure_threshold >= 1 and interval_s > 0")

    @property
    def detection_seconds(self) -> float:
        """Time from the failure to the quorum's verdict: ``interval_s * failure_threshold``."""
        return self.interval_s * self.failure_threshold


@dataclass
class HealthQuorum:
    """Consecutive failures per vantage point; unhealthy only on a quorum.

    Examples:
        >>> q = HealthQuorum(HealthPolicy(failure_threshold=2))
        >>> for _ in range(5): q.observe(0, ok=False)  # one lying vantage point
        >>> q.unhealthy
        False
        >>> for _ in range(2): q.observe(1, ok=False)
        >>> q.unhealthy
        True
    """

    policy: HealthPolicy
    failures: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.failures = [0] * self.policy.vantage_points

    def observe(self, vantage: int, *, ok: bool) -> None:
        """Record one probe of one vantage point."""
        self.failures[vantage] = 0 if ok else self.failures[vantage] + 1

    @property
    def unhealthy(self) -> bool:
        """At least ``quorum`` vantage points are at or above the failure threshold."""
        return sum(f >= self.policy.failure_threshold for f in self.failures) >= self.policy.quorum


@dataclass(frozen=True)
class RtoModel:
    """Modelled RTO = detection + control-plane switch + fence interval + client re-route.

    Every input is a named parameter with its default's source:

    * ``health``: Route 53 health check interval 30 s (10 s fast) x failure threshold 3 (Route 53 docs);
    * ``control_switch_s``: an ARC routing control update takes effect in seconds (ARC docs: the data
      plane is highly available and updates are typically applied within seconds); 5 s assumed;
    * ``lease_ttl_s``, ``max_clock_skew_s``, ``max_inflight_write_s``: our own choices: a 10 s lease,
      1 s skew (Amazon Time Sync keeps hosts within milliseconds; 1 s is a generous bound), and 4 s for
      the longest write or scheme submission in flight (an SDK timeout we set);
    * ``reroute_s``: clients follow the switch after a DNS TTL (60 s record TTL assumed; ARC routing
      controls act on Route 53 health checks of records with this TTL) or after their own retry.

    Examples:
        >>> RtoModel().seconds
        170.0
        >>> RtoModel(health=HealthPolicy(interval_s=10.0), reroute_s=10.0).seconds
        60.0
    """

    health: HealthPolicy = HealthPolicy()
    control_switch_s: float = 5.0
    lease_ttl_s: float = 10.0
    max_clock_skew_s: float = 1.0
    max_inflight_write_s: float = 4.0
    reroute_s: float = 60.0

    @property
    def fence_interval_s(self) -> float:
        """See :func:`fence_interval`."""
        return fence_interval(lease_ttl_s=self.lease_ttl_s, max_clock_skew_s=self.max_clock_skew_s,
                              max_inflight_write_s=self.max_inflight_write_s)

    @property
    def seconds(self) -> float:
        """The modelled recovery time objective."""
        return self.health.detection_seconds + self.control_switch_s + self.fence_interval_s + self.reroute_s

    def inputs(self) -> dict[str, float]:
        """Every input and the total, for a report."""
        return {"detection_s": self.health.detection_seconds, "interval_s": self.health.interval_s,
                "failure_threshold": float(self.health.failure_threshold), "control_switch_s": self.control_switch_s,
                "lease_ttl_s": self.lease_ttl_s, "max_clock_skew_s": self.max_clock_skew_s,
                "max_inflight_write_s": self.max_inflight_write_s, "fence_interval_s": self.fence_interval_s,
                "reroute_s": self.reroute_s, "rto_s": self.seconds}


class FailoverController:
    """Moves a cell between regions: OFF, wait the fence interval, new epoch ON.

    ``wait(seconds)`` is how the controller waits (``time.sleep`` in production; a virtual clock's
    ``advance`` in a drill); ``clock`` reads the time for the timeline.

    Examples:
        >>> controller = FailoverController(controls, RtoModel(), clock=time.time, wait=time.sleep)  # doctest: +SKIP
        >>> timeline = controller.failover("c1", "eu-west-1")  # doctest: +SKIP
    """

    def __init__(self, control: RoutingControlPlane, model: RtoModel, *, clock: Callable[[], float],
                 wait: Callable[[float], None]) -> None:
        self.control = control
        self.model = model
        self.clock = clock
        self.wait = wait

    def failover(self, cell: str, to_region: str) -> list[tuple[float, str]]:
        """Make ``to_region`` active for ``cell``; returns the timeline of what was done when."""
        region, epoch, _ = self.control.active(cell)
        if region == to_region:
            return []
        timeline = [(self.clock(), f"{cell}: {region} OFF at epoch {epoch}")]
        self.control.set(cell, region, "OFF", expected_epoch=epoch, new_epoch=epoch)
        self.wait(self.model.fence_interval_s)
        timeline.append((self.clock(), f"{cell}: fence interval {self.model.fence_interval_s:g} s waited"))
        self.control.set(cell, to_region, "ON", expected_epoch=epoch, new_epoch=epoch + 1)
        timeline.append((self.clock(), f"{cell}: {to_region} ON at epoch {epoch + 1}"))
        return timeline

    def failback(self, cell: str, to_region: str, *, backlog: int, tail_reconciled: bool) -> list[tuple[float, str]]:
        """Failover in reverse, refused while replication to ``to_region`` lags or its tail is unreconciled.

        Raises:
            FailbackNotReadyError: ``backlog`` is not zero or ``tail_reconciled`` is False.
        """
        if backlog or not tail_reconciled:
            raise FailbackNotReadyError(
                f"{cell}: replication backlog {backlog}, tail reconciled {tail_reconciled}: wait, reconcile, retry")
        return self.failover(cell, to_region)

    @staticmethod
    def declare(quorums: Sequence[HealthQuorum]) -> bool:
        """Whether every given quorum says unhealthy (one region's quorum in the simple case)."""
        return all(q.unhealthy for q in quorums)
