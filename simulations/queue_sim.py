"""A discrete-time model of an SQS queue and its consumers: backlog scaling against fixed fleets.

Everything here is **modelled**, not measured: no queue, no consumer and no clock are real. Per step
(``step_s``, default 1 s):

1. Payments arrive (seeded Poisson counts from a :class:`~simulations.load_shapes.LoadShape`) and join the
   back of the queue, kept as ``[arrival_step, count]`` buckets, oldest first (SQS standard queues are not
   strictly FIFO; oldest-first is the model).
2. Each running consumer has ``step_s`` seconds of work. Messages leave the front of the queue while the
   consumers' combined work covers their processing times, each drawn from a seeded **lognormal** with mean
   ``processing_time_s`` and log-space sigma ``processing_sigma`` (default 0.5: a long right tail). Work not
   used because the queue ran dry is lost (idle consumers).
3. A message's **modelled latency** is its wait (arrival step to serving step, in whole steps) plus the time of
   the batch it was received in: SQS deletes it when the whole batch returns, and a batch holds
   ``min(batch_size, messages served per consumer this step)`` messages of mean ``processing_time_s``.
4. Every ``metric_period_s`` the scaler decides, seeing the visible count and the arrival rate of one period
   earlier (CloudWatch publishes SQS metrics per minute, so the scaler always looks at a past minute). New consumers count (and
   cost) from the decision but work only after ``consumer_start_s`` (cold start). Scale-in stops starting
   consumers first, then running ones.

The cost proxy is **consumer-seconds**: consumers running or starting, times seconds. Latency percentiles come
from a histogram with 0.1 s bins (per minute of completion, and overall). The model conserves messages:
``arrived == processed + left_in_queue``.

Examples:
    >>> from fasterpay.agents.scaling import BacklogScalingPolicy
    >>> from simulations.load_shapes import LoadShape
    >>> shape = LoadShape("flat", ((0, 600, 20.0),))
    >>> policy = BacklogScalingPolicy(5, 0.2, min_consumers=1, max_consumers=20)
    >>> run = simulate(shape, policy, seed=3)
    >>> run.arrived == run.processed + run.left_in_queue
    True
    >>> run.max_consumers >= 4  # 20 payments/s x 0.2 s: at least four busy consumers
    True
"""

from __future__ import annotations

import copy
import math
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fasterpay.agents.scaling import BacklogScalingPolicy

from .load_shapes import LoadShape, shapes

__all__ = ["FixedFleet", "SimResult", "compare", "compare_all", "fleet_for_rate", "simulate"]

_BINS_PER_S = 10  # latency histogram resolution: 0.1 s


@dataclass(frozen=True)
class FixedFleet:
    """A constant number of consumers (no scaling)."""

    consumers: int
    label: str = "fixed"

    def __post_init__(self) -> None:
        if self.consumers < 1:
            raise ValueError(f"a fixed fleet needs at least one consumer, got {self.consumers}")


def fleet_for_rate(rate_per_s: float, processing_time_s: float, *, utilisation: float = 1.0,
                   label: str = "fixed") -> FixedFleet:
    """The fixed fleet that keeps up with ``rate_per_s`` at the given utilisation: ``ceil(rate * p / u)``.

    Examples:
        >>> fleet_for_rate(8.6, 0.2).consumers, fleet_for_rate(15, 0.2, utilisation=0.7).consumers
        (2, 5)
    """
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation must be in (0, 1], got {utilisation}")
    return FixedFleet(max(1, math.ceil(rate_per_s * processing_time_s / utilisation - 1e-9)), label)


def _percentile(histogram: Mapping[int, int], q: float) -> float:
    """The ``q`` quantile (0..1) of a 0.1 s histogram, as the upper edge of its bin; 0.0 when empty."""
    total = sum(histogram.values())
    if not total:
        return 0.0
    rank = q * total
    seen = 0
    for bin_ in sorted(histogram):
        seen += histogram[bin_]
        if seen >= rank:
            return (bin_ + 1) / _BINS_PER_S
    return (max(histogram) + 1) / _BINS_PER_S  # pragma: no cover - rank <= total


@dataclass
class SimResult:
    """One modelled run: time series per step and per minute, and the summary figures."""

    shape: str
    strategy: str
    seed: int
    step_s: int
    acceptable_latency_s: float
    arrived: int
    processed: int
    left_in_queue: int
    consumer_seconds: float
    max_consumers: int
    max_age_s: float
    modelled_p50_latency_s: float
    modelled_p95_latency_s: float
    modelled_p99_latency_s: float
    share_over_acceptable: float
    queue_depth: list[int] = field(repr=False)           # per step, visible messages at its end
    oldest_age_s: list[float] = field(repr=False)        # per step, age of the oldest message
    consumers: list[int] = field(repr=False)             # per step, running + starting
    latency_per_minute: list[tuple[float, float, float]] = field(repr=False)  # (p50, p95, p99) by completion
    wall_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The comparable figures (JSON-ready); every latency is modelled."""
        return {
            "shape": self.shape, "strategy": self.strategy, "seed": self.seed, "kind": "modelled",
            "arrived": self.arrived, "processed": self.processed, "left_in_queue": self.left_in_queue,
            "consumer_seconds": round(self.consumer_seconds), "max_consumers": self.max_consumers,
            "max_age_s": self.max_age_s, "modelled_p50_latency_s": self.modelled_p50_latency_s,
            "modelled_p95_latency_s": self.modelled_p95_latency_s,
            "modelled_p99_latency_s": self.modelled_p99_latency_s,
            "acceptable_latency_s": self.acceptable_latency_s,
            "share_over_acceptable": round(self.share_over_acceptable, 6),
        }


def simulate(shape: LoadShape, strategy: BacklogScalingPolicy | FixedFleet, *, processing_time_s: float = 0.2,
             processing_sigma: float = 0.5, acceptable_latency_s: float | None = None, metric_period_s: int = 60,
             consumer_start_s: int = 30, batch_size: int = 10, step_s: int = 1, seed: int = 0,
             use_arrival_rate: bool = True) -> SimResult:
    """Run the modelled queue through ``shape`` with a scaling policy or a fixed fleet.

    Args:
        shape: the arrivals.
        strategy: a :class:`~fasterpay.agents.scaling.BacklogScalingPolicy` (copied: the caller's keeps its
            state) or a :class:`FixedFleet`.
        processing_time_s: mean processing time per message (lognormal).
        processing_sigma: the lognormal's sigma in log space.
        acceptable_latency_s: the latency the run is judged against (default: the policy's; 5 s for a fleet).
        metric_period_s: how often the scaler decides, and how old the visible count it sees is.
        consumer_start_s: a new consumer's start-up time (cold start), during which it costs but does not work.
        batch_size: messages per receive (SQS and Lambda's SQS batch: at most 10 per ``ReceiveMessage``).
        step_s: the model's time step.
        seed: seeds the arrivals and the processing times; the same seed gives the same result.
        use_arrival_rate: give the policy the arrival rate of the period before last (``NumberOfMessagesSent``,
            as old as the visible count); False scales on the visible backlog alone, AWS's basic metric.

    Returns:
        A :class:`SimResult`.
    """
    if step_s < 1 or metric_period_s < step_s or consumer_start_s < 0 or batch_size < 1:
        raise ValueError("step_s >= 1, metric_period_s >= step_s, consumer_start_s >= 0 and batch_size >= 1")
    if processing_time_s <= 0 or processing_sigma < 0:
        raise ValueError("processing_time_s must be positive and processing_sigma zero or more")
    started = time.perf_counter()
    policy = copy.deepcopy(strategy) if isinstance(strategy, BacklogScalingPolicy) else None
    if acceptable_latency_s is None:
        acceptable_latency_s = policy.acceptable_latency_s if policy is not None else 5.0
    label = (f"backlog-policy(target {policy.target_backlog_per_consumer:g}/consumer)" if policy is not None
             else f"{strategy.label}-{strategy.consumers}")  # type: ignore[union-attr]

    arrivals = shape.arrivals(seed, step_s)
    total = sum(arrivals)
    rng = np.random.default_rng([seed, 1])
    mu = math.log(processing_time_s) - processing_sigma ** 2 / 2  # lognormal with this mean
    work_line = [0.0] + np.cumsum(rng.lognormal(mu, processing_sigma, total)).tolist()  # service done after i msgs

    running = max(policy.min_consumers, 1) if policy is not None else strategy.consumers  # type: ignore[union-attr]
    starting: deque[list[int]] = deque()  # [ready_step, count]
    starting_count = 0
    period_steps = metric_period_s // step_s
    start_steps = math.ceil(consumer_start_s / step_s)
    queue: deque[list[int]] = deque()
    queued = served = 0
    work_position = 0.0
    observed_visible = 0  # the visible count the scaler sees: sampled one metric period ago
    observed_rate: float | None = None  # arrivals per second over the period before the last one
    period_arrivals = 0
    in_flight = 0
    over = 0
    max_consumers = running
    all_latency: dict[int, int] = {}
    minute_latency: list[dict[int, int]] = [{} for _ in range(math.ceil(len(arrivals) * step_s / 60))]
    depth_series: list[int] = []
    age_series: list[float] = []
    consumer_series: list[int] = []
    over_bin = acceptable_latency_s * _BINS_PER_S

    depth_append, age_append, consumers_append = depth_series.append, age_series.append, consumer_series.append
    for t, arrived in enumerate(arrivals):
        period_arrivals += arrived
        if arrived:
            queue.append([t, arrived])
            queued += arrived
        if starting and starting[0][0] <= t:
            while starting and starting[0][0] <= t:
                running += starting.popleft()[1]
            starting_count = sum(count for _, count in starting)
        in_flight = 0
        if queued and running:
            target = work_position + running * step_s
            can_serve = bisect_right(work_line, target, served, served + queued + 1) - 1 - served
            n = can_serve if can_serve < queued else queued
            if n > 0:
                per_consumer = -(-n // running)
                batch_time = (per_consumer if per_consumer < batch_size else batch_size) * processing_time_s
                minute = minute_latency[t * step_s // 60]
                left = n
                while left:
                    bucket = queue[0]
                    count = bucket[1]
                    take = count if count < left else left
                    latency_bin = int(((t - bucket[0]) * step_s + batch_time) * _BINS_PER_S)
                    all_latency[latency_bin] = all_latency.get(latency_bin, 0) + take
                    minute[latency_bin] = minute.get(latency_bin, 0) + take
                    if latency_bin >= over_bin:
                        over += take
                    left -= take
                    if take == count:
                        queue.popleft()
                    else:
                        bucket[1] = count - take
                served += n
                queued -= n
                in_flight = n if n < running * batch_size else running * batch_size
            work_position = target if n == can_serve and queued else work_line[served]
        else:
            work_position = work_line[served]
        current = running + starting_count
        depth_append(queued)
        age_append(float((t - queue[0][0]) * step_s) if queued else 0.0)
        consumers_append(current)
        if policy is not None and (t + 1) % period_steps == 0:
            want = policy.desired(observed_visible, in_flight, current, (t + 1) * step_s,
                                  arrival_rate_per_s=observed_rate if use_arrival_rate else None)
            observed_visible = queued  # the next decision sees these: a period old
            observed_rate = period_arrivals / metric_period_s
            period_arrivals = 0
            if want > current:
                starting.append([t + 1 + start_steps, want - current])
            elif want < current:
                cut = current - want
                while cut and starting:
                    take = min(cut, starting[-1][1])
                    starting[-1][1] -= take
                    cut -= take
                    if not starting[-1][1]:
                        starting.pop()
                running -= cut
            starting_count = sum(count for _, count in starting)
            max_consumers = max(max_consumers, want)
    consumer_seconds = float(sum(consumer_series) * step_s)

    return SimResult(
        shape=shape.name, strategy=label, seed=seed, step_s=step_s, acceptable_latency_s=acceptable_latency_s,
        arrived=total, processed=served, left_in_queue=queued, consumer_seconds=consumer_seconds,
        max_consumers=max_consumers, max_age_s=max(age_series, default=0.0),
        modelled_p50_latency_s=_percentile(all_latency, 0.50), modelled_p95_latency_s=_percentile(all_latency, 0.95),
        modelled_p99_latency_s=_percentile(all_latency, 0.99), share_over_acceptable=over / served if served else 0.0,
        queue_depth=depth_series, oldest_age_s=age_series, consumers=consumer_series,
        latency_per_minute=[(_percentile(h, 0.5), _percentile(h, 0.95), _percentile(h, 0.99)) for h in minute_latency],
        wall_seconds=time.perf_counter() - started)


def compare(shape: LoadShape, policy: BacklogScalingPolicy, *, peak_utilisation: float = 0.7, seed: int = 0,
            **model: Any) -> dict[str, SimResult]:
    """The policy against a fleet sized for the shape's mean rate and one sized for its peak.

    The mean fleet is ``ceil(mean rate * p)``; the peak fleet ``ceil(peak rate * p / peak_utilisation)``.

    Examples:
        >>> from fasterpay.agents.scaling import BacklogScalingPolicy
        >>> from simulations.load_shapes import LoadShape
        >>> runs = compare(LoadShape("flat", ((0, 300, 10.0),)), BacklogScalingPolicy(5, 0.2), seed=1)
        >>> sorted(runs)
        ['autoscaled', 'fixed_mean', 'fixed_peak']
    """
    p = model.get("processing_time_s", 0.2)
    fleets = {"fixed_mean": fleet_for_rate(shape.mean_rate_per_s, p, label="mean-sized"),
              "fixed_peak": fleet_for_rate(shape.peak_rate_per_s, p, utilisation=peak_utilisation,
                                           label="peak-sized")}
    runs = {"autoscaled": simulate(shape, policy, seed=seed, **model)}
    for name, fleet in fleets.items():
        runs[name] = simulate(shape, fleet, seed=seed, acceptable_latency_s=policy.acceptable_latency_s, **model)
    return runs


def compare_all(*, bank_share: float = 0.05, acceptable_latency_s: float = 5.0, processing_time_s: float = 0.2,
                max_consumers: int = 200, seed: int = 0, **model: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Every shape of :func:`simulations.load_shapes.shapes`, each against the three strategies (summaries).

    The mean and peak fleets are sized on the normal day's curve (what a team would provision for).
    """
    policy = BacklogScalingPolicy(acceptable_latency_s, processing_time_s, min_consumers=1,
                                  max_consumers=max_consumers)
    all_shapes = shapes(bank_share=bank_share)
    day = all_shapes[0]
    fleets = {"fixed_mean": fleet_for_rate(day.mean_rate_per_s, processing_time_s, label="mean-sized"),
              "fixed_peak": fleet_for_rate(day.peak_rate_per_s, processing_time_s, utilisation=0.7,
                                           label="peak-sized")}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for shape in all_shapes:
        runs = {"autoscaled": simulate(shape, policy, processing_time_s=processing_time_s, seed=seed, **model)}
        for name, fleet in fleets.items():
            runs[name] = simulate(shape, fleet, processing_time_s=processing_time_s, seed=seed,
                                  acceptable_latency_s=acceptable_latency_s, **model)
        out[shape.name] = {name: run.summary() for name, run in runs.items()}
    return out
