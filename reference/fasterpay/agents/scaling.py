"""SQS consumers that scale with their backlog: Little's law, and the metric that AWS scales on.

A queue of payments must be drained within an *acceptable latency* ``L`` (seconds from arrival to done).
A consumer handles one message in ``p`` seconds on average. By Little's law a consumer that has ``N``
messages waiting for it clears the last of them after ``N * p`` seconds, so the most it may have waiting
is ``L / p``: the **target backlog per consumer**. A queue holding ``B`` visible messages needs
``ceil(B / (L / p))`` consumers; with that many, every consumer clears its share in at most ``L``.

This is the policy AWS recommends for queue consumers in an Auto Scaling group or an ECS service:
*backlog per instance* = ``ApproximateNumberOfMessagesVisible`` / running consumers, tracked at a target of
``L / p`` ("acceptable backlog per instance" = acceptable latency / average processing time).
:meth:`BacklogScalingPolicy.metric_math` returns that target-tracking configuration, computed by CloudWatch
metric math instead of a published custom metric:

* Scaling policy based on Amazon SQS (the backlog-per-instance method, acceptable latency / processing
  time): https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-using-sqs-queue.html
* Target tracking with metric math, example "Amazon SQS queue backlog per instance" (``m1`` visible messages,
  ``m2`` ``GroupInServiceInstances``, ``e1 = m1 / m2``):
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-target-tracking-metric-math.html
* For a count metric, ``TargetValue`` is the optimal average count per instance in a one-minute interval:
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_TargetTrackingConfiguration.html

:meth:`BacklogScalingPolicy.desired` is the same decision made locally (a simulation, a custom scaler, or a
check of what the target-tracking policy will do): scale out at once, scale in only after a cooldown, never
below the consumers still holding received messages, clamped to ``[min_consumers, max_consumers]``.

Lambda needs no such policy: its SQS event source mapping scales itself, starting with five concurrent
batches and adding up to 300 instances per minute, up to 1,000 concurrent batches (``MaximumConcurrency``
caps it, 2 to 1,000): https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html.
``max_scale_out_step=300`` with a 60 s decision period reproduces that ramp in a simulation.

The queue's age of oldest message (``ApproximateAgeOfOldestMessage``, "the approximate age of the oldest
non-deleted message in the queue") is the alarm to pair with this policy: backlog says how much is
waiting, age says for how long: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html

Examples:
    >>> policy = BacklogScalingPolicy(acceptable_latency_s=5, processing_time_s=0.2, min_consumers=1,
    ...                               max_consumers=50)
    >>> policy.target_backlog_per_consumer
    25.0
    >>> policy.desired(visible_messages=260, in_flight=0, current=2, now_s=0)
    11
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["BacklogScalingPolicy", "InvalidScalingPolicyError", "backlog_metric_math"]


class InvalidScalingPolicyError(ValueError):
    """A scaling policy was given an impossible setting (a non-positive time, min above max, NaN, ...)."""


def _positive_time(name: str, value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidScalingPolicyError(f"{name} must be a number of seconds, got {value!r}") from None
    if math.isnan(number) or math.isinf(number) or number <= 0:
        raise InvalidScalingPolicyError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return number


def _count(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidScalingPolicyError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise InvalidScalingPolicyError(f"{name} must be at least {minimum}, got {value}")
    return value


class BacklogScalingPolicy:
    """How many consumers a queue needs: ``ceil(visible / (acceptable_latency_s / processing_time_s))``.

    The policy keeps one piece of state, the time of its last change, for the scale-in cooldown. Scale-out
    is never delayed: a payment queue that grows is an incident in the making, one that shrinks is not.

    Args:
        acceptable_latency_s: the longest a message may wait and be processed (``L``).
        processing_time_s: the average time one consumer takes per message (``p``).
        min_consumers: never fewer (0 allows scale to zero).
        max_consumers: never more (the account's concurrency, the database's connection budget, ...).
        max_scale_out_step: at most this many consumers added per decision (None: no limit). Lambda's own
            SQS scaling adds up to 300 instances per minute.
        max_scale_in_step: at most this many removed per decision (None: no limit).
        scale_in_cooldown_s: after any change, wait this long before removing consumers.
        batch_size: messages a consumer holds at once; a scale-in never drops below
            ``ceil(in_flight / batch_size)`` consumers, the ones still working on received messages.

    Raises:
        InvalidScalingPolicyError: a time that is not positive and finite, a negative count, min above max.

    Examples:
        >>> policy = BacklogScalingPolicy(2.0, 0.1, min_consumers=1, max_consumers=10, scale_in_cooldown_s=300)
        >>> policy.desired(visible_messages=100, in_flight=0, current=1, now_s=0)  # out at once
        5
        >>> policy.desired(visible_messages=0, in_flight=0, current=5, now_s=100)  # within the cooldown
        5
        >>> policy.desired(visible_messages=0, in_flight=0, current=5, now_s=300)
        1
        >>> policy.desired(visible_messages=10_000, in_flight=0, current=1, now_s=310)  # clamped
        10
    """

    def __init__(self, acceptable_latency_s: float, processing_time_s: float, *, min_consumers: int = 1,
                 max_consumers: int = 100, max_scale_out_step: int | None = None,
                 max_scale_in_step: int | None = None, scale_in_cooldown_s: float = 300.0,
                 batch_size: int = 10) -> None:
        self.acceptable_latency_s = _positive_time("acceptable_latency_s", acceptable_latency_s)
        self.processing_time_s = _positive_time("processing_time_s", processing_time_s)
        self.min_consumers = _count("min_consumers", min_consumers, minimum=0)
        self.max_consumers = _count("max_consumers", max_consumers, minimum=1)
        if self.min_consumers > self.max_consumers:
            raise InvalidScalingPolicyError(
                f"min_consumers ({min_consumers}) is above max_consumers ({max_consumers})")
        self.max_scale_out_step = None if max_scale_out_step is None else _count(
            "max_scale_out_step", max_scale_out_step, minimum=1)
        self.max_scale_in_step = None if max_scale_in_step is None else _count(
            "max_scale_in_step", max_scale_in_step, minimum=1)
        try:
            cooldown = float(scale_in_cooldown_s)
        except (TypeError, ValueError):
            raise InvalidScalingPolicyError(f"scale_in_cooldown_s must be seconds, got {scale_in_cooldown_s!r}") from None
        if math.isnan(cooldown) or cooldown < 0:
            raise InvalidScalingPolicyError(f"scale_in_cooldown_s must be zero or more seconds, got {scale_in_cooldown_s!r}")
        self.scale_in_cooldown_s = cooldown
        self.batch_size = _count("batch_size", batch_size, minimum=1)
        self._last_change_s: float | None = None

    @property
    def target_backlog_per_consumer(self) -> float:
        """``L / p``: the messages one consumer may have waiting and still finish them within ``L``.

        Examples:
            >>> BacklogScalingPolicy(10, 0.5).target_backlog_per_consumer
            20.0
        """
        return self.acceptable_latency_s / self.processing_time_s

    def needed(self, visible_messages: int, arrival_rate_per_s: float | None = None) -> int:
        """Consumers the backlog needs by Little's law, before clamps and cooldown.

        With ``arrival_rate_per_s`` the messages expected within the acceptable latency count as backlog too:
        ``ceil((visible + rate * L) / (L / p)) = ceil(visible / (L / p) + rate * p)``, where ``rate * p`` is
        Little's law for the consumers themselves (the average number busy). Without it, a queue that its
        consumers keep empty reads as "needs none", and the fleet shrinks until a backlog builds again.

        Examples:
            >>> BacklogScalingPolicy(5, 0.2).needed(26)  # 26 / 25 messages per consumer
            2
            >>> BacklogScalingPolicy(5, 0.2).needed(0, arrival_rate_per_s=19)  # 19/s x 0.2 s busy
            4
        """
        if visible_messages < 0:
            raise ValueError(f"visible_messages must be zero or more, got {visible_messages}")
        backlog = float(visible_messages)
        if arrival_rate_per_s is not None:
            if math.isnan(arrival_rate_per_s) or arrival_rate_per_s < 0:
                raise ValueError(f"arrival_rate_per_s must be zero or more, got {arrival_rate_per_s}")
            backlog += arrival_rate_per_s * self.acceptable_latency_s
        return math.ceil(backlog / self.target_backlog_per_consumer - 1e-9)

    def desired(self, visible_messages: int, in_flight: int, current: int, now_s: float, *,
                arrival_rate_per_s: float | None = None) -> int:
        """The consumer count to run now.

        Args:
            visible_messages: ``ApproximateNumberOfMessagesVisible`` (the backlog waiting for a consumer).
            in_flight: ``ApproximateNumberOfMessagesNotVisible`` (received, not yet deleted).
            current: consumers running or starting now.
            now_s: the time of the decision, in seconds (any origin; only differences matter).
            arrival_rate_per_s: optional ``NumberOfMessagesSent`` per second over the last period; see
                :meth:`needed`.

        Returns:
            ``ceil(visible / target)`` clamped to the bounds; above ``current`` at once (at most
            ``max_scale_out_step`` more); below it only once ``scale_in_cooldown_s`` has passed since the last
            change, and never below the consumers holding ``in_flight`` messages.
        """
        if visible_messages < 0 or in_flight < 0 or current < 0:
            raise ValueError(f"counts must be zero or more (visible {visible_messages}, in flight {in_flight}, "
                             f"current {current})")
        if isinstance(now_s, float) and math.isnan(now_s):
            raise ValueError("now_s is NaN")
        want = min(max(self.needed(visible_messages, arrival_rate_per_s), self.min_consumers), self.max_consumers)
        if want > current:
            if self.max_scale_out_step is not None:
                want = min(want, current + self.max_scale_out_step)
            self._last_change_s = now_s
            return want
        if want < current:
            if self._last_change_s is not None and now_s - self._last_change_s < self.scale_in_cooldown_s:
                return current
            holding = math.ceil(in_flight / self.batch_size)
            want = max(want, min(holding, current))
            if self.max_scale_in_step is not None:
                want = max(want, current - self.max_scale_in_step)
            if want < current:
                self._last_change_s = now_s
            return want
        return current

    def metric_math(self, queue_name: str, *, include_arrivals: bool = False, **consumers: Any) -> dict[str, Any]:
        """The target-tracking configuration for this policy (see :func:`backlog_metric_math`).

        ``include_arrivals=True`` adds the arrivals expected within the acceptable latency to the backlog,
        as :meth:`needed` does with ``arrival_rate_per_s``.

        Examples:
            >>> config = BacklogScalingPolicy(5, 0.2).metric_math("payments-accept", auto_scaling_group="workers")
            >>> config["TargetValue"], config["CustomizedMetricSpecification"]["Metrics"][-1]["Expression"]
            (25.0, 'm1 / m2')
        """
        return backlog_metric_math(
            queue_name, target_backlog_per_consumer=self.target_backlog_per_consumer,
            arrivals_within_s=self.acceptable_latency_s if include_arrivals else None, **consumers)


def backlog_metric_math(queue_name: str, *, target_backlog_per_consumer: float, auto_scaling_group: str | None = None,
                        consumer_metric: dict[str, Any] | None = None,
                        arrivals_within_s: float | None = None) -> dict[str, Any]:
    """A ``TargetTrackingConfiguration`` on *backlog per consumer*, computed by CloudWatch metric math.

    ``m1`` is the queue's ``ApproximateNumberOfMessagesVisible`` (``AWS/SQS``, statistic Sum), ``m2`` the running
    consumers (by default the group's ``GroupInServiceInstances``, ``AWS/AutoScaling``, statistic Average), and
    ``e1 = m1 / m2`` the returned series, as in AWS's example
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-target-tracking-metric-math.html).
    For an ECS service pass ``consumer_metric`` (for instance the service's running task count) and use the
    configuration with Application Auto Scaling. ``m2`` is zero when no consumer runs: keep ``MinSize`` at 1 or
    more, or pair the policy with a step-scaling alarm on the visible count to start from zero.

    Args:
        queue_name: the SQS queue's name (not its URL).
        target_backlog_per_consumer: ``acceptable latency / processing time per message``.
        auto_scaling_group: the EC2 Auto Scaling group whose in-service instances consume the queue.
        consumer_metric: instead, ``{"Namespace", "MetricName", "Dimensions"}`` of a metric counting consumers.
        arrivals_within_s: our extension, not AWS's example: also count the messages expected to arrive within
            this many seconds, from ``NumberOfMessagesSent`` (``m3``, Sum per minute):
            ``e1 = (m1 + m3 * arrivals_within_s / 60) / m2``.

    Examples:
        >>> config = backlog_metric_math("accept", target_backlog_per_consumer=25, auto_scaling_group="workers")
        >>> [m["Id"] for m in config["CustomizedMetricSpecification"]["Metrics"]]
        ['m1', 'm2', 'e1']
    """
    if not queue_name or "/" in queue_name:
        raise ValueError(f"queue_name must be the queue's name, not its URL: {queue_name!r}")
    target = float(target_backlog_per_consumer)
    if math.isnan(target) or math.isinf(target) or target <= 0:
        raise ValueError(f"target_backlog_per_consumer must be positive, got {target_backlog_per_consumer!r}")
    if (auto_scaling_group is None) == (consumer_metric is None):
        raise ValueError("give exactly one of auto_scaling_group or consumer_metric")
    if arrivals_within_s is not None and not arrivals_within_s > 0:
        raise ValueError(f"arrivals_within_s must be positive seconds, got {arrivals_within_s!r}")
    if consumer_metric is None:
        consumer_metric = {"Namespace": "AWS/AutoScaling", "MetricName": "GroupInServiceInstances",
                           "Dimensions": [{"Name": "AutoScalingGroupName", "Value": auto_scaling_group}]}
    expression = "m1 / m2" if arrivals_within_s is None else f"(m1 + m3 * {arrivals_within_s:g} / 60) / m2"
    arrivals = [] if arrivals_within_s is None else [
        {"Label": "Messages sent in the minute", "Id": "m3", "ReturnData": False,
         "MetricStat": {"Metric": {"Namespace": "AWS/SQS", "MetricName": "NumberOfMessagesSent",
                                   "Dimensions": [{"Name": "QueueName", "Value": queue_name}]},
                        "Stat": "Sum"}}]
    return {
        "TargetValue": target,
        "CustomizedMetricSpecification": {"Metrics": [
            {"Label": "Messages waiting for a consumer", "Id": "m1", "ReturnData": False,
             "MetricStat": {"Metric": {"Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible",
                                       "Dimensions": [{"Name": "QueueName", "Value": queue_name}]},
                            "Stat": "Sum"}},
            {"Label": "Running consumers", "Id": "m2", "ReturnData": False,
             "MetricStat": {"Metric": dict(consumer_metric), "Stat": "Average"}},
            *arrivals,
            {"Label": "Backlog per consumer", "Id": "e1", "Expression": expression, "ReturnData": True},
        ]},
    }
