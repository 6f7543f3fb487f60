"""The FinOps notebook's tables, charts and figures, kept here so the notebook stays thin.

Everything is computed from a :class:`simulations.finops_bench.CostRun` (metered calls × a dated price
table), the levers, the autoscaling rows and the capacity table; nothing is typed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from decimal import Decimal
from typing import Any

from fasterpay.finops.capacity import CallProfile
from fasterpay.finops.costs import PATTERNS, UnitCost
from fasterpay.metrics import Figure
from fasterpay.pricing import PRICE_PROVENANCE, PriceTable

from .finops_bench import CostRun, Lever

__all__ = ["breakdown_chart", "breakdown_rows", "capacity_profiles", "cost_figures", "levers_chart", "price_rows"]

#: One colour per component, the same in every chart.
COMPONENT_COLOURS = {
    "dynamodb writes": "#1f77b4", "dynamodb reads": "#aec7e8", "kms": "#d62728", "sqs": "#ff7f0e",
    "lambda requests": "#ffbb78", "lambda duration": "#e6a817", "logs": "#9467bd", "s3": "#2ca02c",
    "kinesis": "#17becf", "bedrock": "#8c564b",
}


def breakdown_rows(cost: UnitCost) -> list[list[str]]:
    """Rows of component × pattern (USD per 10k payments), with a total column and a total row.

    Components are rows and patterns columns, so the table stays narrow enough to read in a notebook.
    """
    components = [c for c, v in cost.by_component.items() if v]
    patterns = [p for p in PATTERNS if p in cost.by_pattern]
    rows = [["component", *patterns, "all"]]
    for component in components:
        rows.append([component, *(f"{cost.cells.get((p, component), Decimal(0)):.4f}" for p in patterns),
                     f"{cost.by_component[component]:.4f}"])
    rows.append(["all", *(f"{cost.by_pattern[p]:.4f}" for p in patterns), f"{cost.total:.4f}"])
    return rows


def breakdown_chart(costs: Sequence[UnitCost], fixed: Mapping[str, Decimal] | None = None) -> Any:
    """Stacked bars: cost per 10k payments per pattern, by component; one panel per price table."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(costs), figsize=(6.8, 3.2), sharey=True, squeeze=False)
    for ax, cost in zip(axes[0], costs, strict=True):
        patterns = [p for p in PATTERNS if p in cost.by_pattern]
        bottoms = [0.0] * len(patterns)
        for component, colour in COMPONENT_COLOURS.items():
            values = [float(cost.cells.get((p, component), 0)) for p in patterns]
            if any(values):
                ax.barh(patterns, values, left=bottoms, color=colour, label=component)
                bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlabel("USD per 10k payments (symlog)")
        ax.set_title(f"{cost.region}, prices of {cost.prices_as_of}: ${cost.total:.3f} in all")
        ax.invert_yaxis()
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=5, frameon=False)
    return figure


def levers_chart(levers: Sequence[Lever]) -> Any:
    """Cost per 10k payments with each lever and without it (paired bars)."""
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6.8, 2.8))
    names = [lever.name for lever in levers]
    positions = range(len(levers))
    ax.barh([p - 0.2 for p in positions], [float(lever.without) for lever in levers], height=0.4,
            color="#c0392b", label="without the lever")
    ax.barh([p + 0.2 for p in positions], [float(lever.with_lever) for lever in levers], height=0.4,
            color="#16a085", label="with it (the guide's design)")
    for p, lever in zip(positions, levers, strict=True):
        ax.annotate(f"+${lever.saving:.4f}", (float(lever.without), p - 0.2), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks(list(positions), names)
    ax.invert_yaxis()
    ax.set_xlabel("USD per 10k payments, every pattern but the exception agent (eu-west-2)")
    high = max(float(lever.without) for lever in levers)
    ax.set_xlim(0, high * 1.18)
    ax.legend(loc="lower right", frameon=False)
    return figure


def price_rows(prices: PriceTable) -> list[list[str]]:
    """The dated price table with each field's provenance ("aws page", "secondary", "substitute: ...")."""
    notes = PRICE_PROVENANCE[prices.region]
    rows = [["field", "USD", "provenance"]]
    for f in fields(PriceTable):
        if f.name in ("as_of", "region", "source_urls"):
            continue
        rows.append([f.name, str(getattr(prices, f.name)), notes[f.name]])
    return rows


def capacity_profiles(run: CostRun, *, kms_per_payment_uncached: Decimal,
                      cache_seconds: float = 300.0) -> tuple[CallProfile, CallProfile]:
    """The metered run as a capacity profile, without a token-key cache and with one of ``cache_seconds``.

    Lambda seconds per payment come from the run's GB-seconds (handlers at 0.5 GB); the hottest key's share
    from the run's written items; KMS requests per payment from the vault bench without a cache.
    """
    from dataclasses import replace

    summary = run.summary
    lambda_seconds = float(summary.lambda_gb_seconds) / 0.5 / max(summary.payments, 1)
    base = CallProfile.from_snapshot(summary.snapshot + summary.notify_snapshot, max(summary.payments, 1),
                                     lambda_seconds=lambda_seconds, hottest_key_share=run.hottest_key_share,
                                     sqs_batch_size=summary.settings.batch_size)
    uncached = replace(base, kms_requests_per_payment=float(kms_per_payment_uncached), kms_cache_seconds=0.0)
    return uncached, replace(uncached, kms_cache_seconds=cache_seconds)


def cost_figures(run: CostRun, costs: Sequence[UnitCost], levers: Sequence[Lever],
                 fixed: Mapping[str, Decimal]) -> list[Figure]:
    """The article's cost figures: totals per region, by pattern and component, the levers, fixed costs."""
    n = run.payments
    figs: list[Figure] = []
    for cost in costs:
        figs.append(Figure.of("cost_per_10k_all", "Cost per 10k payments, all patterns",
                              cost.total, "USD", "computed", n, places=4, series=cost.region,
                              kpi="finops_cost_per_10k"))
        for pattern, usd in cost.by_pattern.items():
            figs.append(Figure.of(f"cost_pattern_{pattern}", f"Cost per 10k payments: {pattern}",
                                  usd, "USD", "computed", n, places=4, series=cost.region,
                                  kpi="finops_cost_by_pattern" if cost.region == "eu-west-2" else None))
        for component, usd in cost.by_component.items():
            figs.append(Figure.of(f"cost_component_{component.replace(' ', '_')}",
                                  f"Cost per 10k payments: {component}", usd, "USD", "computed", n,
                                  places=4, series=cost.region,
                                  kpi="finops_cost_by_component" if cost.region == "eu-west-2" else None))
    for lever in levers:
        key = lever.name.replace(" ", "_").replace("-", "_")
        figs.append(Figure.of(f"lever_{key}_with", f"{lever.name}: with the lever", lever.with_lever, "USD",
                              "computed", n, places=4))
        figs.append(Figure.of(f"lever_{key}_without", f"{lever.name}: without it ({lever.how})", lever.without,
                              "USD", "computed", n, places=4))
    for name, usd in fixed.items():
        figs.append(Figure.of(f"fixed_{name.replace(' ', '_').replace('-', '_')}",
                              f"Fixed monthly cost per 10k payments: {name}", usd, "USD", "computed", n, places=5))
    figs += [
        Figure.of("exceptions_share", "Payments sent to the exception agent", 100 * run.exceptions / n, "%",
                  "counted", n),
        Figure.of("agent_cost_per_exception", "Bedrock cost per exception (stand-in model's tokens, guardrail)",
                  run.agent_cost_per_exception * 10_000, "USD per 10k exceptions", "computed", run.agent_cases),
        Figure.of("log_bytes_per_payment", "Log bytes ingested per payment (lines, EMF, Lambda's own)",
                  run.log_bytes / n, "bytes", "counted", n, places=0),
        Figure.of("api_calls_per_payment_all", "AWS API calls per payment, every pattern",
                  sum(u.snapshot.count() for u in run.usage.values()) / n, "calls", "counted", n),
        Figure.of("hottest_key_share", "Share of written items on the hottest partition key", 100 * run.hottest_key_share,
                  "%", "counted", n),
    ]
    return figs
