"""Autoscaling strategies compared over three days of payments: cost per day against throttling risk (modelled).

Every strategy of :mod:`fasterpay.finops.autoscaling` (and the queue consumers of :mod:`simulations.queue_sim`)
runs over the three shapes of :mod:`simulations.load_shapes` (a UK FPS-like day, a month-end payday, a 10x
five-minute burst) at ``bank_share`` of FPS volume. Per payment the pipeline asks for ``write_units_per_payment``
DynamoDB write units and ``read_units_per_payment`` read units, and one Lambda invocation of ``duration_ms`` at
``memory_mb``: the defaults (9, 2, 120 ms, 512 MB) are the guide's pipeline figures as inputs; the notebook
overrides them with metered ones. Four layers:

* ``dynamodb``: on-demand, provisioned with auto scaling (70% target), and the same with 1-year reserved capacity
  for the baseline (the blocks that are cheapest on the *normal* day, bought once and kept on payday and burst
  days), writes and reads together. 60-s steps (alarms evaluate per minute; a step is a fluid inside).
* ``compute``: Lambda against Fargate tasks (0.5 vCPU, 1 GB, ``per_task_tps`` each at 70%), scaled by steps
  with a 180 s lag or fixed for the normal day's peak; plus the break-even rate (:func:`break_even`).
* ``peak windows``: Lambda with no provisioned concurrency, provisioned concurrency for 07:00-19:00 only, all
  day, and a reserved-concurrency cap that protects downstream by throttling above it.
* ``queue consumers``: :func:`simulations.queue_sim.simulate` with the queue article's backlog policy against
  fleets sized for the normal day's mean and peak; consumer-seconds priced as Fargate tasks of
  ``consumer_vcpu`` / ``consumer_memory_gb``. Its risk is the share of payments over the acceptable latency.
  It runs at ``queue_step_s=5`` to keep the whole run under 3 s: coarser steps batch arrivals and overstate the
  autoscaled fleet (its consumer-seconds by about a third on the burst day, a few percent on the others); pass
  ``queue_step_s=1`` for the queue article's resolution (about 5 s more).

Each row's ``risk`` is a share: throttled units (DynamoDB), demand above fleet capacity (compute), cold starts
plus throttled invocations (peak windows), payments later than 5 s (queue). Everything is modelled: no AWS call.

Examples:
    >>> rows = run()
    >>> sorted({row.layer for row in rows})
    ['compute', 'dynamodb', 'peak windows', 'queue consumers']
    >>> len(rows)
    39
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fasterpay.finops.autoscaling import (
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
from fasterpay.metrics import Figure

from .load_shapes import LoadShape, shapes

__all__ = ["LAYERS", "Row", "break_even", "break_even_numeric", "cost_risk_chart", "figures", "run"]

LAYERS = ("dynamodb", "compute", "peak windows", "queue consumers")
_RISK_LABELS = {
    "dynamodb": "units throttled (%)",
    "compute": "demand above fleet (%)",
    "peak windows": "cold starts + throttled (%)",
    "queue consumers": "payments over 5 s (%)",
}
_SHAPE_MARKERS = {"fps-daily": "o", "month-end-peak": "s", "sudden-burst": "^"}
_PEAK_WINDOW = (7 * 3600, 19 * 3600)


@dataclass(frozen=True)
class Row:
    """One strategy on one shape: cost per day (USD, exact) against its risk (a share, 0..1)."""

    shape: str
    layer: str
    strategy: str
    cost_per_day: Decimal
    risk: float
    latency_note: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the cost as a decimal string, the risk rounded to 6 places."""
        return {"shape": self.shape, "layer": self.layer, "strategy": self.strategy,
                "cost_per_day": str(self.cost_per_day), "risk": round(self.risk, 6),
                "latency_note": self.latency_note, "kind": "modelled"}


def _combined(write: ScalingResult, read: ScalingResult) -> tuple[Decimal, float]:
    units = write.demand_units + read.demand_units
    return write.cost_per_day + read.cost_per_day, (
        (write.throttled_units + read.throttled_units) / units if units else 0.0)


def _dynamodb(shape: LoadShape, day: LoadShape, writes: float, reads: float, prices: ScalingPrices) -> list[Row]:
    rates = shape.rates(60).tolist()
    w, r = [x * writes for x in rates], [x * reads for x in rates]
    normal = day.rates(60).tolist()
    reserved_w = dynamodb_reserved([x * writes for x in normal], kind="write", prices=prices)
    reserved_r = dynamodb_reserved([x * reads for x in normal], kind="read", prices=prices)
    held = (reserved_w.reserved_units, reserved_r.reserved_units)
    runs = {
        "on-demand": (dynamodb_on_demand(w, kind="write", prices=prices),
                      dynamodb_on_demand(r, kind="read", prices=prices)),
        "autoscaled": (dynamodb_provisioned_autoscaling(w, kind="write", prices=prices),
                       dynamodb_provisioned_autoscaling(r, kind="read", prices=prices)),
        "reserved": (dynamodb_reserved(w, kind="write", reserved_units=held[0], prices=prices),
                     dynamodb_reserved(r, kind="read", reserved_units=held[1], prices=prices)),
    }
    notes = {"on-demand": "no throttling below 2x the previous peak",
             "autoscaled": "throttled requests are retried by the SDK with backoff: added latency",
             "reserved": f"{held[0]} WCU + {held[1]} RCU reserved; throttling as autoscaled"}
    rows = []
    for name, (write, read) in runs.items():
        cost, risk = _combined(write, read)
        rows.append(Row(shape.name, "dynamodb", name, cost, risk, notes[name]))
    return rows


def _compute(shape: LoadShape, day: LoadShape, duration_ms: int, memory_mb: int, per_task_tps: float,
             prices: ScalingPrices) -> list[Row]:
    rates = shape.rates(60).tolist()
    fixed = max(2, math.ceil(day.peak_rate_per_s / (per_task_tps * 0.7) - 1e-9))
    lam = lambda_compute(rates, duration_ms=duration_ms, memory_mb=memory_mb, prices=prices)
    step = fargate_compute(rates, per_task_tps=per_task_tps, prices=prices)
    fleet = fargate_compute(rates, per_task_tps=per_task_tps, scaling="fixed", fixed_tasks=fixed, prices=prices)
    return [
        Row(shape.name, "compute", "lambda", lam.cost_per_day, 0.0, "scales per request; cold starts on rises"),
        Row(shape.name, "compute", "fargate-step", step.cost_per_day, step.throttled_share,
            "queues while 180 s behind demand"),
        Row(shape.name, "compute", "fargate-fixed", fleet.cost_per_day, fleet.throttled_share,
            f"{fixed} tasks sized for the normal day's peak"),
    ]


def _peak_windows(shape: LoadShape, day: LoadShape, duration_ms: int, memory_mb: int, reserved_concurrency: int,
                  prices: ScalingPrices) -> list[Row]:
    rates = shape.rates(60).tolist()
    warm = max(1, math.ceil(day.peak_rate_per_s * duration_ms / 1000 - 1e-9))
    common: dict[str, Any] = {"duration_ms": duration_ms, "memory_mb": memory_mb, "prices": prices}
    runs = {
        "pc-none": provisioned_concurrency(rates, **common),
        "pc-peak": provisioned_concurrency(rates, provisioned=warm, window_s=_PEAK_WINDOW, **common),
        "pc-all-day": provisioned_concurrency(rates, provisioned=warm, **common),
        "reserved-cap": provisioned_concurrency(rates, reserved_concurrency=reserved_concurrency, **common),
    }
    return [Row(shape.name, "peak windows", name, result.cost_per_day, result.cold_start_share + result.throttled_share,
                f"{result.note}; cold {result.cold_start_share:.4%}, throttled {result.throttled_share:.2%}")
            for name, result in runs.items()]


def _queue(shape: LoadShape, day: LoadShape, consumer_vcpu: str, consumer_memory_gb: str, step_s: int,
           prices: ScalingPrices, seed: int) -> list[Row]:
    # imported here: fasterpay.agents pulls in the pipeline (about 2 s), which the other layers do not need
    from fasterpay.agents.scaling import BacklogScalingPolicy

    from .queue_sim import fleet_for_rate, simulate

    processing = 0.2
    policy = BacklogScalingPolicy(5.0, processing, min_consumers=1, max_consumers=200)
    strategies = {
        "queue-autoscaled": policy,
        "queue-fixed-mean": fleet_for_rate(day.mean_rate_per_s, processing, label="mean-sized"),
        "queue-fixed-peak": fleet_for_rate(day.peak_rate_per_s, processing, utilisation=0.7, label="peak-sized"),
    }
    rows = []
    for name, strategy in strategies.items():
        result = simulate(shape, strategy, processing_time_s=processing, acceptable_latency_s=5.0, step_s=step_s,
                          seed=seed)
        cost = fargate_cost(round(result.consumer_seconds), task_vcpu=consumer_vcpu,
                            task_memory_gb=consumer_memory_gb, prices=prices)
        rows.append(Row(shape.name, "queue consumers", name, cost.quantize(Decimal("0.00000001")),
                        result.share_over_acceptable,
                        f"modelled p99 {result.modelled_p99_latency_s:g} s, max {result.max_consumers} consumers"))
    return rows


def run(*, bank_share: float = 0.05, write_units_per_payment: float = 9, read_units_per_payment: float = 2,
        duration_ms: int = 120, memory_mb: int = 512, per_task_tps: float = 50.0, reserved_concurrency: int = 10,
        consumer_vcpu: str = "0.25", consumer_memory_gb: str = "0.5", queue_step_s: int = 5,
        region: str = "us-east-1", seed: int = 0) -> list[Row]:
    """Every strategy of every layer over the three shapes: a row each (see the module docstring).

    ``write_units_per_payment``, ``read_units_per_payment``, ``duration_ms`` and ``memory_mb`` default to the
    guide's pipeline figures; pass metered ones. ``per_task_tps`` (a Fargate task's throughput) and
    ``reserved_concurrency`` are inputs too.
    """
    prices = SCALING_PRICES[region]
    all_shapes = shapes(bank_share=bank_share)
    day = all_shapes[0]
    rows: list[Row] = []
    for shape in all_shapes:
        rows += _dynamodb(shape, day, write_units_per_payment, read_units_per_payment, prices)
        rows += _compute(shape, day, duration_ms, memory_mb, per_task_tps, prices)
        rows += _peak_windows(shape, day, duration_ms, memory_mb, reserved_concurrency, prices)
        rows += _queue(shape, day, consumer_vcpu, consumer_memory_gb, queue_step_s, prices, seed)
    return rows


def break_even(*, region: str = "us-east-1", **model: Any) -> BreakEven | None:
    """The closed-form break-even rate (:func:`fasterpay.finops.autoscaling.lambda_fargate_break_even_tps`).

    Examples:
        >>> break_even().tps
        Decimal('11.4282')
    """
    return lambda_fargate_break_even_tps(prices=SCALING_PRICES[region], **model)


def break_even_numeric(*, upto_tps: float = 200.0, resolution: float = 0.01, region: str = "us-east-1",
                       duration_ms: int = 120, memory_mb: int = 512, per_task_tps: float = 50.0,
                       target_utilisation: float = 0.7, min_tasks: int = 2, task_vcpu: str = "0.5",
                       task_memory_gb: str = "1") -> float | None:
    """The same rate found by scanning: the last rate up to ``upto_tps`` where the fleet costs more than Lambda.

    Examples:
        >>> round(break_even_numeric(), 1)
        11.4
    """
    prices = SCALING_PRICES[region]
    lam = lambda_cost(86_400, duration_ms=duration_ms, memory_mb=memory_mb, prices=prices)
    task = fargate_cost(86_400, task_vcpu=task_vcpu, task_memory_gb=task_memory_gb, prices=prices)
    last: float | None = None
    steps = int(upto_tps / resolution)
    for i in range(1, steps + 1):
        tps = i * resolution
        tasks = max(min_tasks, math.ceil(tps / (per_task_tps * target_utilisation) - 1e-9))
        if tasks * task > lam * Decimal(str(round(tps, 6))):
            last = tps
    if last is None:
        return 0.0  # the fleet is never dearer
    if last >= upto_tps - resolution / 2:
        return None  # still dearer at upto_tps
    return round(last + resolution, 6)


def figures(rows: Sequence[Row], *, sample_size: int | None = None, region: str = "us-east-1",
            **model: Any) -> list[Figure]:
    """The rows as guide figures (kind "modelled"): cost per day and risk (%) per strategy, ``series`` = shape.

    The break-even rate in ``region`` (with the ``model`` inputs of :func:`break_even`, e.g. ``duration_ms``)
    is added as ``compute.break_even_tps``.

    Examples:
        >>> figs = figures([Row("fps-daily", "compute", "lambda", Decimal("0.89"), 0.0123, "")])
        >>> [(f.key, f.value, f.unit, f.series) for f in figs][:2]
        [('compute.lambda.cost_per_day', '0.89', 'USD/day', 'fps-daily'), ('compute.lambda.risk', '1.23', '%', 'fps-daily')]
    """
    size = sample_size if sample_size is not None else round(shapes()[0].expected_total)
    out: list[Figure] = []
    for row in rows:
        key = f"{row.layer.replace(' ', '_')}.{row.strategy}"
        out.append(Figure.of(f"{key}.cost_per_day", f"{row.strategy} ({row.layer}): cost per day",
                             row.cost_per_day, "USD/day", "modelled", size, places=2, series=row.shape))
        out.append(Figure.of(f"{key}.risk", f"{row.strategy} ({row.layer}): {_RISK_LABELS[row.layer]}",
                             row.risk * 100, "%", "modelled", size, places=2, series=row.shape))
    even = break_even(region=region, **model)
    if even is not None:
        out.append(Figure.of("compute.break_even_tps", f"Always-on Fargate cheaper than Lambda above ({region})",
                             even.tps, "payments/s", "modelled", size, places=2))
    return out


def cost_risk_chart(rows: Sequence[Row]) -> Any:
    """One figure, a panel per layer: cost per day (x) against risk (y, %), one marker per strategy and shape.

    Colour is the strategy (legend in each panel), marker the shape (legend on top).
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from .plots import COLUMN_INCHES, guide_style

    guide_style()
    fig, axes = plt.subplots(2, 2, figsize=(COLUMN_INCHES, 5.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, layer in zip(axes.flat, LAYERS):
        layer_rows = [row for row in rows if row.layer == layer]
        strategies = list(dict.fromkeys(row.strategy for row in layer_rows))
        for row in layer_rows:
            colour = colours[strategies.index(row.strategy) % len(colours)]
            ax.scatter([float(row.cost_per_day)], [row.risk * 100], s=22, color=colour,
                       marker=_SHAPE_MARKERS.get(row.shape, "o"), edgecolors="none", alpha=0.85)
        ax.set_title(layer)
        ax.set_xlabel("cost per day (USD)")
        ax.set_ylabel(_RISK_LABELS[layer])
        top = max((row.risk * 100 for row in layer_rows), default=0.0)
        if top > 1:  # shares that span decades: symlog keeps 0 on the axis
            ax.set_yscale("symlog", linthresh=0.1)
            ax.set_ylim(bottom=-0.02)
        else:  # all below 1%: a plain axis, 0 to a little above the largest
            ax.set_ylim(-0.02 * max(top, 0.05), max(top, 0.05) * 1.25)
        ax.margins(x=0.12)
        ax.grid(alpha=0.3)
        ax.legend(handles=[Line2D([], [], color=colours[i % len(colours)], marker="o", linestyle="", markersize=4,
                                  label=name) for i, name in enumerate(strategies)],
                  fontsize=6, loc="upper right", frameon=False, handletextpad=0.2, borderaxespad=0.2)
    fig.legend(handles=[Line2D([], [], color="0.3", marker=marker, linestyle="", markersize=4, label=shape)
                        for shape, marker in _SHAPE_MARKERS.items()],
               loc="outside upper center", ncols=3, frameon=False)
    return fig
