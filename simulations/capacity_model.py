"""The capacity article's chart and figures: demand per service against the quota that caps it.

:func:`calls_per_second_chart` draws, for target rates from 100 to 100,000 payments a second, the demand
each service sees in the unit of its tightest quota (KMS requests/s, write units/s on the hottest key or
the busiest table, SQS calls/s per action, Lambda concurrent executions, API Gateway requests/s, Kinesis
records/s), log-log, with each quota as a dashed horizontal line labelled with its name and scope.
:func:`figures` publishes the numbers the article quotes, computed by
:mod:`fasterpay.finops.capacity`.

:data:`EXAMPLE_PROFILE` is an **illustrative** profile (not metered): three KMS requests, four write units
and 0.12 Lambda seconds a payment, a settlement account taking 2 % of the writes, a high throughput FIFO
queue with 1,000 message groups and batches of 10. Pass a metered one
(:meth:`~fasterpay.finops.capacity.CallProfile.from_snapshot`) to both functions for a real deployment.

Examples:
    >>> [f.value for f in figures(EXAMPLE_PROFILE) if f.key == "capacity_binding_utilisation"]
    ['0.02', '0.15', '1.50', '15.00']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from fasterpay.finops.capacity import (
    DEFAULT_HEADROOM,
    TARGET_RATES,
    CallProfile,
    ServiceQuota,
    capacity_plan,
    capacity_table,
    quotas_for,
)
from fasterpay.metrics import Figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure as PlotFigure

__all__ = ["EXAMPLE_PROFILE", "SERVICE_QUOTA_KEYS", "calls_per_second_chart", "figures", "service_demand"]

EXAMPLE_PROFILE = CallProfile(
    calls_per_payment={("apigateway", "Invoke"): 1, ("dynamodb", "TransactWriteItems"): 1,
                       ("dynamodb", "GetItem"): 1, ("kms", "GenerateMac"): 1, ("kms", "Decrypt"): 1,
                       ("kms", "GenerateDataKey"): 1, ("sqs", "SendMessageBatch"): 0.3},
    write_units_per_payment=4, read_units_per_payment=1, kms_requests_per_payment=3,
    lambda_seconds_per_payment=0.12, sqs_messages_per_payment=3, hottest_key_share=0.02,
    sqs_queue="fifo-high-throughput", message_groups=1_000, sqs_batch_size=10,
)
"""Illustrative per-payment demand (not metered); see the module docstring."""

SERVICE_QUOTA_KEYS: dict[str, tuple[str, ...]] = {
    "kms": ("kms-symmetric", "kms-ecc"),
    "dynamodb": ("dynamodb-partition-write", "dynamodb-table-write"),
    "sqs": ("sqs-fifo-queue", "sqs-fifo-high-throughput"),
    "lambda": ("lambda-concurrency",),
    "apigateway": ("apigateway-throttle",),
    "kinesis": ("kinesis-shard-records",),
}
"""Per service, the quotas whose demand the chart draws, tightest first: the first one the profile
touches gives the service's line and unit; every one it touches gets a quota line."""

_SERVICE_NAMES = {"kms": "KMS", "dynamodb": "DynamoDB", "sqs": "SQS", "lambda": "Lambda",
                  "apigateway": "API Gateway", "kinesis": "Kinesis"}
_SHORT_QUOTA = {
    "kms-symmetric": "KMS symmetric", "kms-ecc": "KMS ECC", "dynamodb-partition-write": "DDB partition WCU",
    "dynamodb-table-write": "DDB table WRU", "sqs-fifo-queue": "SQS FIFO", "sqs-fifo-high-throughput":
    "SQS FIFO HT", "lambda-concurrency": "Lambda concurrency", "apigateway-throttle": "API Gateway",
    "kinesis-shard-records": "Kinesis shard",
}
_LABEL_POINTS = 9.0  # vertical room one quota label needs, in points


def service_demand(profile: CallProfile, rate_per_s: float, region: str = "eu-west-2"
                   ) -> dict[str, tuple[ServiceQuota, float]]:
    """Per service the profile uses: (its first quota in :data:`SERVICE_QUOTA_KEYS`, demand on it).

    Examples:
        >>> {s: d for s, (q, d) in service_demand(EXAMPLE_PROFILE, 1_000).items() if s in ("kms", "lambda")}
        {'kms': 3000.0, 'lambda': 120.0}
    """
    checks = {check.quota.key: check for check in capacity_plan(profile, rate_per_s, region=region)}
    found: dict[str, tuple[ServiceQuota, float]] = {}
    for service, keys in SERVICE_QUOTA_KEYS.items():
        for key in keys:
            if key in checks:
                found[service] = (checks[key].quota, checks[key].demand)
                break
    return found


def _quota_lines(profile: CallProfile, rates: Sequence[float], region: str) -> list[ServiceQuota]:
    """The quotas to draw (those of :data:`SERVICE_QUOTA_KEYS` the profile touches), lowest limit first."""
    touched: set[str] = set()
    for rate in (min(rates), max(rates)):
        touched.update(check.quota.key for check in capacity_plan(profile, rate, region=region))
    quotas = quotas_for(region)
    drawn = [quotas[key] for keys in SERVICE_QUOTA_KEYS.values() for key in keys if key in touched]
    return sorted(drawn, key=lambda quota: (quota.limit, quota.key))


def _label_offsets(limits: Sequence[float], y_low: float, y_high: float, axes_points: float) -> list[float]:
    """Upward offsets, in points, that keep each quota label at least one line above the one below."""
    per_decade = axes_points / (math.log10(y_high) - math.log10(y_low))
    natural = [math.log10(limit) * per_decade for limit in limits]
    placed: list[float] = []
    for position in natural:
        placed.append(max(position, placed[-1] + _LABEL_POINTS) if placed else position)
    return [p - n for p, n in zip(placed, natural, strict=True)]


_WIDTH, _HEIGHT = 6.8, 3.6
_MARGINS = {"left": 0.095, "right": 0.64, "bottom": 0.13, "top": 0.91}


def calls_per_second_chart(profile: CallProfile = EXAMPLE_PROFILE, rates: Iterable[float] | None = None,
                           region: str = "eu-west-2") -> PlotFigure:
    """Log-log chart of demand per service against the target rate, with each quota as a dashed line.

    One solid line per service the profile uses (gid ``"service:<name>"``), one dashed line per quota
    (gid ``"quota:<key>"``), labelled at the right with the quota, its limit and its scope; labels of
    quotas at the same or nearby limits are stacked so they do not overlap. The rates default to 100 to
    100,000 payments a second; the four target rates are marked with thin vertical lines.

    Examples:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> fig = calls_per_second_chart()
        >>> sorted(line.get_gid() for line in fig.axes[0].lines if line.get_gid().startswith("service:"))
        ['service:API Gateway', 'service:DynamoDB', 'service:KMS', 'service:Lambda', 'service:SQS']
        >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    from simulations.plots import guide_style

    guide_style()
    points = sorted(set(rates)) if rates is not None else [10 ** (2 + i * 3 / 24) for i in range(25)]
    if not points or points[0] <= 0:
        raise ValueError("rates must be positive payments per second, such as (100, 1_000, 10_000)")
    # margins set by hand: the quota labels sit right of the axes, where constrained layout misplaces them
    fig = plt.figure(figsize=(_WIDTH, _HEIGHT), layout="none")
    ax = fig.add_axes((_MARGINS["left"], _MARGINS["bottom"], _MARGINS["right"] - _MARGINS["left"],
                       _MARGINS["top"] - _MARGINS["bottom"]))
    series: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for rate in points:
        for service, (quota, demand) in service_demand(profile, rate, region).items():
            series.setdefault(service, []).append(demand)
            units[service] = quota.unit
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour_of = {service: colours[i % len(colours)] for i, service in enumerate(SERVICE_QUOTA_KEYS)}
    for service, values in series.items():
        if len(values) != len(points):  # demand that starts above the lowest rate: not drawn
            continue
        name = _SERVICE_NAMES[service]
        ax.plot(points, values, color=colour_of[service], linewidth=1.6, gid=f"service:{name}",
                label=f"{name} ({units[service]})")
    quotas = _quota_lines(profile, points, region)
    all_values = [v for values in series.values() for v in values] + [q.limit for q in quotas]
    y_low = 10 ** math.floor(math.log10(min(v for v in all_values if v > 0)))
    y_high = 10 ** math.ceil(math.log10(max(all_values) * 1.5))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(points[0], points[-1])
    ax.set_ylim(y_low, y_high)
    axes_points = (_MARGINS["top"] - _MARGINS["bottom"]) * _HEIGHT * 72
    offsets = _label_offsets([q.limit for q in quotas], y_low, y_high, axes_points)
    for quota, offset in zip(quotas, offsets, strict=True):
        colour = colour_of[quota.service]
        ax.axhline(quota.limit, color=colour, linestyle="--", linewidth=0.9, gid=f"quota:{quota.key}")
        ax.annotate(f"{_SHORT_QUOTA.get(quota.key, quota.key)}: {quota.limit:,} per {quota.scope}",
                    xy=(1.0, quota.limit), xycoords=("axes fraction", "data"), xytext=(4, offset),
                    textcoords="offset points", va="center", ha="left", fontsize=6.5, color=colour,
                    annotation_clip=False, gid=f"label:{quota.key}")
    for target in TARGET_RATES:
        if points[0] <= target <= points[-1]:
            ax.axvline(target, color="0.85", linewidth=0.6, zorder=0, gid=f"target:{target}")
    ax.set_xlabel("target rate (payments/s)")
    ax.set_ylabel("demand (per s, or in flight)")
    ax.set_title(f"Demand per service and its quotas, {region}", loc="left")
    ax.legend(loc="upper left", fontsize=7, frameon=True, framealpha=0.9, edgecolor="none")
    return fig


def _series(rate: float) -> str:
    return f"{rate / 1000:g}k/s" if rate >= 1000 else f"{rate:g}/s"


def figures(profile: CallProfile = EXAMPLE_PROFILE, region: str = "eu-west-2",
            rates: Sequence[float] = TARGET_RATES, *, sample_size: int = 1) -> list[Figure]:
    """The article's figures: per rate the highest quota utilisation and the count it needs; at the top
    rate the cells, shards or groups each binding quota needs; the rate where the first quota binds, and
    the same with data-key caching. ``sample_size`` is the number of payments the profile was metered over.

    Examples:
        >>> needed = {f.key.rsplit("_", 1)[-1]: f.value for f in figures()
        ...           if f.key.startswith("capacity_needed_at_top_rate_")}
        >>> needed["apigateway-throttle"], needed["kms-symmetric"]
        ('13', '19')
    """
    figs: list[Figure] = []
    rows = capacity_table(profile, rates, region=region)
    for row in rows:
        top = row.top
        if top is None:
            continue
        label = "Highest share of a quota in use (the quotas that bind at 100k/s are named below)"
        figs.append(Figure.of("capacity_binding_utilisation", label, top.utilisation, "share of quota",
                              "modelled", sample_size, series=_series(row.rate_per_s)))
        figs.append(Figure.of("capacity_binding_needed", f"{label}: {top.needed_unit} needed at "
                              f"{DEFAULT_HEADROOM:.0%} use", top.needed, top.needed_unit, "computed", sample_size, places=0,
                              series=_series(row.rate_per_s)))
    last = rows[-1]
    for check in last.checks:
        if check.binds:  # one figure per quota, no series: a column per quota would not fit the page
            figs.append(Figure.of(f"capacity_needed_at_top_rate_{check.quota.key}",
                                  f"At {_series(last.rate_per_s)}, {check.quota.service} {check.quota.name}: "
                                  f"{check.plan}", check.needed, check.needed_unit, "computed", sample_size, places=0))
    for key, label, variant in (
            ("capacity_first_binding_rate", "Payments/s at which the first quota binds, no data-key cache",
             replace(profile, kms_cache_seconds=0.0)),
            ("capacity_first_binding_rate_cached", "Same, with a 300 s data-key cache",
             replace(profile, kms_cache_seconds=300))):
        figs.append(Figure.of(key, label, _first_binding_rate(variant, region), "payments/s", "modelled", sample_size,
                              places=0))
    return figs


def _first_binding_rate(profile: CallProfile, region: str) -> float:
    """The lowest rate at which some quota binds, by bisection on the rate (demand is not always linear)."""
    low, high = 1e-3, 1e7
    if not any(check.binds for check in capacity_plan(profile, high, region=region)):
        return high
    for _ in range(80):
        middle = math.sqrt(low * high)
        if any(check.binds for check in capacity_plan(profile, middle, region=region)):
            high = middle
        else:
            low = middle
    return high

