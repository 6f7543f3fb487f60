"""The modelled queue: seeded and deterministic, conserving, and the policy against fixed fleets."""

from __future__ import annotations

import math

import pytest

from fasterpay.agents.scaling import BacklogScalingPolicy
from simulations.load_shapes import FPS_MONTHLY_VOLUME, LoadShape, fps_daily, month_end_peak, shapes, sudden_burst
from simulations.queue_sim import FixedFleet, compare, fleet_for_rate, simulate

ACCEPTABLE_S, PROCESSING_S = 5.0, 0.2


def _policy() -> BacklogScalingPolicy:
    return BacklogScalingPolicy(ACCEPTABLE_S, PROCESSING_S, min_consumers=1, max_consumers=200)


@pytest.fixture(scope="module")
def daily_runs():
    return compare(fps_daily(bank_share=0.05), _policy(), seed=7, processing_time_s=PROCESSING_S)


def test_the_same_seed_gives_the_same_run_and_another_seed_does_not() -> None:
    shape = LoadShape("flat", ((0, 1800, 12.0),))
    first, again = simulate(shape, _policy(), seed=5), simulate(shape, _policy(), seed=5)
    assert first.summary() == again.summary()
    assert (first.queue_depth, first.consumers, first.latency_per_minute) == (
        again.queue_depth, again.consumers, again.latency_per_minute)
    assert simulate(shape, _policy(), seed=6).arrived != first.arrived


def test_messages_are_conserved(daily_runs) -> None:
    for run in daily_runs.values():
        assert run.arrived == run.processed + run.left_in_queue
        assert run.left_in_queue == run.queue_depth[-1]
    assert daily_runs["fixed_mean"].left_in_queue > 0  # too small a fleet ends the day with a backlog


def test_the_policy_keeps_p99_under_the_acceptable_latency_for_less_than_a_peak_sized_fleet(daily_runs) -> None:
    auto, peak = daily_runs["autoscaled"], daily_runs["fixed_peak"]
    assert auto.modelled_p99_latency_s < ACCEPTABLE_S
    assert auto.share_over_acceptable < 0.01
    assert auto.consumer_seconds < 0.75 * peak.consumer_seconds
    assert peak.modelled_p99_latency_s < ACCEPTABLE_S  # the costly fleet meets it too
    assert len(auto.latency_per_minute) == 1440 and len(auto.queue_depth) == 86_400
    assert max(auto.oldest_age_s) == auto.max_age_s


def test_a_mean_sized_fleet_breaches_on_the_burst() -> None:
    burst = sudden_burst(bank_share=0.05)
    fleet = fleet_for_rate(fps_daily(bank_share=0.05).mean_rate_per_s, PROCESSING_S)
    run = simulate(burst, fleet, seed=7, acceptable_latency_s=ACCEPTABLE_S, processing_time_s=PROCESSING_S)
    assert run.modelled_p99_latency_s > 10 * ACCEPTABLE_S and run.max_age_s > 600
    assert run.share_over_acceptable > 0.5


def test_shapes_integrate_to_their_stated_volumes() -> None:
    day = fps_daily(bank_share=0.01)
    assert day.expected_total == pytest.approx(FPS_MONTHLY_VOLUME * 0.01 / 31)
    for shape in [*shapes(bank_share=0.01), month_end_peak(bank_share=0.02, factor=3.0)]:
        assert float(shape.rates().sum()) == pytest.approx(shape.expected_total)
        assert float(shape.rates(step_s=60).sum() * 60) == pytest.approx(shape.expected_total)
        drawn = sum(shape.arrivals(seed=11))
        assert abs(drawn - shape.expected_total) < 5 * math.sqrt(shape.expected_total)  # Poisson: 5 sigma
    window = sum((e - s) * r for s, e, r in day.segments if 7 * 3600 <= s < 13 * 3600)
    assert month_end_peak(bank_share=0.01).expected_total == pytest.approx(day.expected_total + 1.5 * window)
    burst_rate = next(r for s, e, r in day.segments if s <= 11 * 3600 < e)
    assert sudden_burst(bank_share=0.01).expected_total == pytest.approx(day.expected_total + 9 * 300 * burst_rate)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        LoadShape("gap", ((0, 10, 1.0), (20, 30, 1.0)))
    with pytest.raises(ValueError, match="bank_share"):
        fps_daily(bank_share=0)
    with pytest.raises(ValueError, match="at least one consumer"):
        FixedFleet(0)
