"""Charts for the multi-region drills: one timeline per drill, built from its ``timeline`` events.

Each drill (:mod:`simulations.region_drills`) records ``(seconds, event)`` pairs as it runs. The chart puts
them on three lanes (the two regions and the control plane), shades the time each region was active for
the cell, hatches the outage, and marks the moments a reader looks for: the failure, the verdict of the
health quorum, the switch, the senders' re-route, the return and the failback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["LANES", "MILESTONES", "active_spans", "milestones", "timeline_chart"]

#: Lanes from top to bottom.
LANES = ("eu-west-2", "eu-west-1", "control plane")

#: (pattern in the event text, short label, lane) for the events the chart names; the others are dots.
MILESTONES: tuple[tuple[str, str, str], ...] = (
    (r"replication .* paused", "replication paused", "eu-west-2"),
    (r"eu-west-2 fails", "fails", "eu-west-2"),
    (r"^partition:", "partitioned", "eu-west-2"),
    (r"eu-west-2 is back", "back", "eu-west-2"),
    (r"ReplicationLatency alarm", "lag alarm", "control plane"),
    (r"health: .* unhealthy", "quorum: unhealthy", "control plane"),
    (r"eu-west-1 ON at epoch", "ON (epoch +1)", "eu-west-1"),
    (r"eu-west-2 ON at epoch", "ON (epoch +1)", "eu-west-2"),
    (r"re-routed to eu-west-1", "senders re-routed", "eu-west-1"),
    (r"re-routed to eu-west-2", "senders re-routed", "eu-west-2"),
    (r"tail records .* reconciled", "tail reconciled", "eu-west-1"),
    (r"lease lapses|lease lapsed", "lease lapses", "eu-west-2"),
)


def milestones(timeline: Sequence[tuple[float, str]]) -> list[tuple[float, str, str]]:
    """``(seconds, label, lane)`` for each event that matches a milestone pattern, in time order.

    Examples:
        >>> milestones([(8.2, "eu-west-2 fails (every call: EndpointConnectionError)"), (9.0, "other")])
        [(8.2, 'fails', 'eu-west-2')]
    """
    found = []
    for at, text in timeline:
        for pattern, label, lane in MILESTONES:
            if re.search(pattern, text):
                found.append((at, label, lane))
                break
    return sorted(found)


def active_spans(timeline: Sequence[tuple[float, str]], end: float) -> list[tuple[str, float, float]]:
    """``(region, start, end)`` for each time a region was ON for the cell (the primary from 0).

    Examples:
        >>> active_spans([(50.0, "cell-1: eu-west-1 ON at epoch 2")], end=100.0)
        [('eu-west-2', 0.0, 50.0), ('eu-west-1', 50.0, 100.0)]
    """
    spans: list[tuple[str, float, float]] = []
    region, since = "eu-west-2", 0.0
    for at, text in sorted(timeline):
        m = re.search(r"(eu-west-[12]) OFF at epoch", text)
        if m and m.group(1) == region:
            spans.append((region, since, at))
            region, since = "", at
            continue
        m = re.search(r"(eu-west-[12]) ON at epoch", text)
        if m:
            if region:
                spans.append((region, since, at))
            region, since = m.group(1), at
    if region:
        spans.append((region, since, end))
    return [s for s in spans if s[2] > s[1]]


def timeline_chart(result: Any, ax: Any) -> None:
    """Draw one drill's timeline on ``ax`` (a matplotlib axes): lanes, active spans, outage, milestones."""
    timeline = list(result.timeline)
    end = max((at for at, _ in timeline), default=0.0) + 10.0
    lane_y = {lane: len(LANES) - 1 - i for i, lane in enumerate(LANES)}
    for region, start, stop in active_spans(timeline, end):
        ax.barh(lane_y[region], stop - start, left=start, height=0.5, color="#a9dfbf", edgecolor="none",
                label="active for the cell" if region == "eu-west-2" and start == 0.0 else None)
    fails = [at for at, text in timeline if "eu-west-2 fails" in text or text.startswith("partition:")]
    backs = [at for at, text in timeline if "eu-west-2 is back" in text]
    if fails:
        ax.barh(lane_y["eu-west-2"], (backs[0] if backs else end) - fails[0], left=fails[0], height=0.5,
                color="none", edgecolor="#c0392b", hatch="///", linewidth=0, label="outage or partition")
    for at, _ in timeline:
        ax.plot([at], [lane_y["control plane"] - 0.45], marker="|", color="#7f8c8d", markersize=6)
    last: dict[str, tuple[float, int]] = {}  # lane -> (time, row) of the label placed last
    for at, label, lane in milestones(timeline):
        y = lane_y[lane]
        previous = last.get(lane)
        row = (previous[1] + 1) % 2 if previous and at - previous[0] < 0.2 * end else 0
        last[lane] = (at, row)
        ax.plot([at], [y], marker="o", color="#1f3a93", markersize=4)
        ax.annotate(label, (at, y), xytext=(2, 7 if row == 0 else -13), textcoords="offset points", fontsize=6.5,
                    color="#1f3a93")
    ax.set_yticks([lane_y[lane] for lane in LANES], list(LANES))
    ax.set_ylim(-0.8, len(LANES) - 0.3 + 0.35)
    ax.set_xlim(0, end)
    ax.set_xlabel("seconds since the drill began (virtual clock)")
    ax.set_title(f"{result.name.replace('_', ' ')}: RPO {result.rpo_payments} payments, "
                 f"RTO {result.rto_modelled_seconds:.0f} s (modelled), lost {len(result.lost)}, "
                 f"doubled {len(result.doubled)}", fontsize=8)
