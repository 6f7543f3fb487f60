"""Autoscaling strategies: the behaviours the cost comparison relies on (fasterpay.finops.autoscaling)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from fasterpay.finops.autoscaling import (
    SCALING_PRICE_PROVENANCE,
    SCALING_PRICES,
    ScalingPrices,
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

DAY_MINUTES = 1440


def test_flat_load_provisioned_at_target_is_cheaper_than_on_demand_and_never_throttles():
    flat = [250.0] * DAY_MINUTES
    on_demand = dynamodb_on_demand(flat)
    provisioned = dynamodb_provisioned_autoscaling(flat, target_utilisation=0.7)
    assert provisioned.cost_per_day < on_demand.cost_per_day
    assert provisioned.throttled_units == 0 and provisioned.throttled_seconds_share == 0
    assert set(provisioned.capacity) == {math.ceil(250 / 0.7)}
    # 358 WCU x 24 h x $0.00065, exactly
    assert provisioned.cost_per_day == Decimal("358") * 24 * Decimal("0.00065")


def test_a_step_faster_than_the_scale_out_lag_throttles_provisioned_but_not_on_demand():
    step_up = [100.0] * 60 + [600.0] * 60
    provisioned = dynamodb_provisioned_autoscaling(step_up, burst_s=300)
    on_demand = dynamodb_on_demand(step_up)
    assert provisioned.throttled_units > 0
    assert on_demand.throttled_units == 0
    # the step is served from the capacity before it until the alarm (2 min) and the update (60 s) have passed
    assert provisioned.capacity[60] == provisioned.capacity[59] == math.ceil(100 / 0.7)
    assert provisioned.capacity[-1] >= math.ceil(600 / 0.7)
    # with no lag at all (alarm of 1 minute, instant update) far fewer units are refused
    quick = dynamodb_provisioned_autoscaling(step_up, alarm_minutes=1, update_s=0)
    assert quick.throttled_units < provisioned.throttled_units


def test_burst_capacity_absorbs_a_short_spike_of_at_most_300_s_of_unused_capacity():
    capacity = math.ceil(100 / 0.7)  # 143 units provisioned, 43 unused each second
    unused_300_s = (capacity - 100) * 300
    # a one-minute spike that needs exactly the credit the table saved (after >= 300 s at 100/s)
    spike = 100 + unused_300_s / 60
    quiet = [100.0] * 10
    absorbed = dynamodb_provisioned_autoscaling(quiet + [capacity + unused_300_s / 60] + quiet, alarm_minutes=5)
    assert absorbed.throttled_units == pytest.approx(0.0, abs=1e-6)
    # only the last 300 s of unused capacity count: a longer quiet spell saves no more, so 10% more throttles
    longer = dynamodb_provisioned_autoscaling([100.0] * 60 + [capacity + 1.1 * unused_300_s / 60] + quiet,
                                              alarm_minutes=5)
    assert longer.throttled_units == pytest.approx(0.1 * unused_300_s, rel=1e-6)
    # and with no burst capacity the same spike throttles in full
    none = dynamodb_provisioned_autoscaling(quiet + [capacity + unused_300_s / 60] + quiet, alarm_minutes=5,
                                            burst_s=0)
    assert none.throttled_units == pytest.approx(unused_300_s, rel=1e-6)
    assert spike > capacity


def test_scale_in_limits_keep_capacity_high_after_a_peak():
    # a staircase down every 20 minutes after a peak: more decreases than the quota allows
    levels = [1000.0, 800.0, 600.0, 450.0, 300.0, 200.0, 120.0, 80.0, 50.0]
    demand = [1000.0] * 60 + [level for level in levels for _ in range(20)] + [50.0] * 180
    limited = dynamodb_provisioned_autoscaling(demand)
    free = dynamodb_provisioned_autoscaling(demand, decreases_anytime=1000)
    assert limited.cost > free.cost
    assert limited.ideal_cost_per_day is not None and limited.cost_per_day > limited.ideal_cost_per_day
    assert sum(limited.capacity) > sum(free.capacity)
    assert limited.throttled_units == free.throttled_units == 0
    assert limited.note.startswith("5 scale-ins")  # 4 any time, then one an hour


def test_reserved_baseline_is_cheaper_on_a_flat_day_and_needs_whole_blocks():
    flat = [300.0] * DAY_MINUTES
    provisioned = dynamodb_provisioned_autoscaling(flat)
    reserved = dynamodb_reserved(flat)
    assert reserved.note == "400 units reserved (1 year)"
    assert reserved.cost_per_day < provisioned.cost_per_day
    assert reserved.throttled_units == provisioned.throttled_units
    with pytest.raises(ValueError, match="blocks of 100"):
        dynamodb_reserved(flat, reserved_units=150)


def test_break_even_matches_the_numeric_crossover():
    prices = SCALING_PRICES["us-east-1"]
    even = lambda_fargate_break_even_tps(per_task_tps=50, target_utilisation=0.7, min_tasks=2)
    assert even is not None
    lam = lambda_cost(86_400, duration_ms=120, memory_mb=512, prices=prices)
    task = fargate_cost(86_400, prices=prices)
    dearer = [tps / 100 for tps in range(1, 20_000)
              if max(2, math.ceil(tps / 100 / 35 - 1e-9)) * task > lam * Decimal(tps) / 100]
    assert abs(Decimal(str(max(dearer))) - even.tps) <= Decimal("0.01")
    # and the simulated day agrees: a flat load above the break-even is cheaper on an always-on fleet
    above, below = float(even.tps) * 1.05, float(even.tps) * 0.95
    assert (fargate_compute([above] * DAY_MINUTES, scaling="fixed").cost_per_day
            < lambda_compute([above] * DAY_MINUTES).cost_per_day)
    assert (fargate_compute([below] * DAY_MINUTES, scaling="fixed").cost_per_day
            > lambda_compute([below] * DAY_MINUTES).cost_per_day)
    # a step with alternating regions: the closed form still names the last crossing
    steep = lambda_fargate_break_even_tps(per_task_tps=8, target_utilisation=1.0, min_tasks=1)
    assert steep is not None and steep.tasks > 1
    dearer = [tps / 100 for tps in range(1, 20_000)
              if max(1, math.ceil(tps / 100 / 8 - 1e-9)) * task > lam * Decimal(tps) / 100]
    assert abs(Decimal(str(max(dearer))) - steep.tps) <= Decimal("0.01")
    assert lambda_fargate_break_even_tps(per_task_tps=0.5) is None  # a task slower than Lambda's price: never


def test_provisioned_concurrency_for_the_peak_window_costs_less_than_all_day_and_cuts_cold_starts():
    day = [1.0] * 420 + [30.0] * 720 + [1.0] * 300
    none = provisioned_concurrency(day)
    peak = provisioned_concurrency(day, provisioned=4, window_s=(7 * 3600, 19 * 3600))
    all_day = provisioned_concurrency(day, provisioned=4)
    assert peak.cost_per_day < all_day.cost_per_day
    assert none.cold_start_share > all_day.cold_start_share
    assert all_day.cold_start_share == 0
    capped = provisioned_concurrency(day, reserved_concurrency=2)
    assert capped.throttled_units > 0 and none.throttled_units == 0


def test_fargate_step_scaling_lags_a_burst_and_a_fixed_fleet_does_not_follow_it():
    burst = [10.0] * 60 + [200.0] * 5 + [10.0] * 60
    step = fargate_compute(burst, scale_lag_s=180)
    quick = fargate_compute(burst, scale_lag_s=0)
    assert step.throttled_units > 0 and quick.throttled_units == 0
    assert fargate_compute(burst, scaling="fixed", fixed_tasks=2).throttled_units > step.throttled_units


def test_money_is_decimal_and_float_prices_are_refused():
    result = dynamodb_on_demand([5.0] * 60)
    assert isinstance(result.cost, Decimal) and isinstance(result.cost_per_day, Decimal)
    assert isinstance(lambda_compute([1.0]).cost, Decimal)
    with pytest.raises(TypeError, match="money is never float"):
        ScalingPrices(fargate_x86_vcpu_hour=0.04048)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ScalingPrices(dynamodb_wcu_hour=Decimal("-1"))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: dynamodb_on_demand([]), "empty"),
    (lambda: dynamodb_on_demand([1.0, -2.0]), "zero or more"),
    (lambda: dynamodb_provisioned_autoscaling([float("nan")]), "finite"),
    (lambda: dynamodb_provisioned_autoscaling([1.0], target_utilisation=1.5), r"\(0, 1\]"),
    (lambda: dynamodb_provisioned_autoscaling([1.0], target_utilisation=0), r"\(0, 1\]"),
    (lambda: fargate_compute([1.0], target_utilisation=-0.1), r"\(0, 1\]"),
    (lambda: dynamodb_provisioned_autoscaling([1.0], step_s=45), "divide 60"),
    (lambda: dynamodb_on_demand([1.0], kind="scan"), "'write' or 'read'"),
    (lambda: provisioned_concurrency([1.0] * 10, window_s=(0, 10_000)), "inside the series"),
])
def test_bad_input_says_what_to_do(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_price_has_an_allowed_provenance_and_an_https_source():
    for region, prices in SCALING_PRICES.items():
        assert prices.as_of == "2026-12-02" and prices.region == region
        assert prices.source_urls and all(url.startswith("https://") for url in prices.source_urls)
        provenance = SCALING_PRICE_PROVENANCE[region]
        assert set(provenance) == set(prices.prices())
        for name, how in provenance.items():
            assert how in ("aws page", "secondary") or how.startswith("substitute: "), (region, name, how)


def test_the_chart_has_one_marker_per_strategy_and_shape():
    pytest.importorskip("matplotlib")
    from simulations.autoscale_compare import LAYERS, Row, cost_risk_chart, figures

    shapes = ("fps-daily", "month-end-peak", "sudden-burst")
    strategies = {layer: [f"{layer[:3]}-{i}" for i in range(3)] for layer in LAYERS}
    rows = [Row(shape, layer, name, Decimal(i + 1), 0.01 * i, "") for layer in LAYERS
            for i, name in enumerate(strategies[layer]) for shape in shapes]
    fig = cost_risk_chart(rows)
    try:
        assert len(fig.axes) == len(LAYERS)
        assert fig.dpi == 150 and fig.get_size_inches()[0] == pytest.approx(6.8)
        for ax, layer in zip(fig.axes, LAYERS):
            points = sum(len(collection.get_offsets()) for collection in ax.collections)
            assert points == len(strategies[layer]) * len(shapes)
            assert ax.get_title() == layer
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)
    figs = figures(rows)
    assert all(f.kind == "modelled" for f in figs)
    assert {f.series for f in figs} == set(shapes) | {None}
