"""Routing control, health quorum, fence interval and the failover/failback procedure."""

from __future__ import annotations

import pytest

from fasterpay.resilience import (
    ControlConflictError,
    FailbackNotReadyError,
    FailoverController,
    HealthPolicy,
    HealthQuorum,
    InMemoryRoutingControls,
    RtoModel,
    fence_interval,
)

A, B = "eu-west-2", "eu-west-1"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_one_lying_vantage_point_never_triggers_failover() -> None:
    quorum = HealthQuorum(HealthPolicy(interval_s=10.0, failure_threshold=3, vantage_points=3, quorum=2))
    for _ in range(100):
        quorum.observe(0, ok=False)  # lies: always "down"
        quorum.observe(1, ok=True)
        quorum.observe(2, ok=True)
        assert not quorum.unhealthy


def test_a_flapping_probe_resets_its_count() -> None:
    quorum = HealthQuorum(HealthPolicy(failure_threshold=3))
    for ok in (False, False, True, False, False, True):
        quorum.observe(1, ok=ok)
        quorum.observe(2, ok=ok)
    assert not quorum.unhealthy


def test_quorum_of_consecutive_failures_declares_unhealthy() -> None:
    quorum = HealthQuorum(HealthPolicy(failure_threshold=3))
    for n in range(3):
        quorum.observe(1, ok=False)
        quorum.observe(2, ok=False)
        assert quorum.unhealthy == (n == 2)


def test_policy_rejects_an_impossible_quorum() -> None:
    with pytest.raises(ValueError):
        HealthPolicy(vantage_points=3, quorum=4)


def test_fence_interval_formula() -> None:
    assert fence_interval(lease_ttl_s=10.0, max_clock_skew_s=1.0, max_inflight_write_s=4.0) == 15.0
    assert RtoModel().fence_interval_s == 15.0


def test_rto_is_the_sum_of_its_named_inputs() -> None:
    model = RtoModel(health=HealthPolicy(interval_s=10.0, failure_threshold=3), control_switch_s=5.0,
                     lease_ttl_s=10.0, max_clock_skew_s=1.0, max_inflight_write_s=4.0, reroute_s=60.0)
    assert model.seconds == 30.0 + 5.0 + 15.0 + 60.0
    assert model.inputs()["rto_s"] == model.seconds
    assert RtoModel().health.interval_s == 30.0 and RtoModel().health.failure_threshold == 3  # Route 53 defaults


def test_control_set_is_conditional_on_the_epoch() -> None:
    controls = InMemoryRoutingControls({"c1": (A, 4, "ON")})
    with pytest.raises(ControlConflictError):
        controls.set("c1", B, "ON", expected_epoch=3, new_epoch=5)
    with pytest.raises(ControlConflictError):
        controls.set("c1", B, "ON", expected_epoch=4, new_epoch=3)
    assert controls.active("c1") == (A, 4, "ON")


def test_failover_waits_the_fence_interval_before_the_new_region_is_on() -> None:
    clock = Clock()
    controls = InMemoryRoutingControls({"c1": (A, 1, "ON")})
    seen: list[tuple[float, tuple[str, int, str]]] = []

    def wait(seconds: float) -> None:
        seen.append((clock(), controls.active("c1")))  # during the wait: the old region is OFF, nobody is ON
        clock.advance(seconds)

    controller = FailoverController(controls, RtoModel(), clock=clock, wait=wait)
    timeline = controller.failover("c1", B)
    assert seen == [(0.0, (A, 1, "OFF"))]
    assert controls.active("c1") == (B, 2, "ON")
    assert [t for t, _ in timeline] == [0.0, 15.0, 15.0]
    assert "OFF" in timeline[0][1] and "ON at epoch 2" in timeline[-1][1]


def test_failback_refused_while_backlog_or_tail_unreconciled() -> None:
    clock = Clock()
    controls = InMemoryRoutingControls({"c1": (B, 2, "ON")})
    controller = FailoverController(controls, RtoModel(), clock=clock, wait=clock.advance)
    with pytest.raises(FailbackNotReadyError):
        controller.failback("c1", A, backlog=3, tail_reconciled=True)
    with pytest.raises(FailbackNotReadyError):
        controller.failback("c1", A, backlog=0, tail_reconciled=False)
    assert controls.active("c1") == (B, 2, "ON")
    controller.failback("c1", A, backlog=0, tail_reconciled=True)
    assert controls.active("c1") == (A, 3, "ON") and clock() == 15.0


def test_region_cut_off_from_the_control_plane_cannot_read_it() -> None:
    controls = InMemoryRoutingControls({"c1": (A, 1, "ON")})
    controls.unreachable_from.add(A)
    with pytest.raises(ConnectionError):
        controls.view(A).active("c1")
    assert controls.view(B).active("c1") == (A, 1, "ON")
