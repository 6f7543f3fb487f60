"""BacklogScalingPolicy: Little's-law target, clamps, cooldown, immediate scale-out, validation, metric math."""

from __future__ import annotations

import math

import pytest

from fasterpay.agents.scaling import BacklogScalingPolicy, InvalidScalingPolicyError, backlog_metric_math


def test_target_is_acceptable_latency_over_processing_time() -> None:
    policy = BacklogScalingPolicy(acceptable_latency_s=5, processing_time_s=0.2)
    assert policy.target_backlog_per_consumer == pytest.approx(25)
    # a consumer clears exactly `target` messages in the acceptable latency
    assert policy.target_backlog_per_consumer * policy.processing_time_s == pytest.approx(5)
    assert policy.needed(25) == 1 and policy.needed(26) == 2 and policy.needed(0) == 0
    assert policy.needed(0, arrival_rate_per_s=19) == math.ceil(19 * 0.2)


@pytest.mark.parametrize(("visible", "expected"), [(0, 2), (1, 2), (250, 10), (1_000_000, 30)])
def test_desired_is_clamped_to_min_and_max(visible: int, expected: int) -> None:
    policy = BacklogScalingPolicy(5, 0.2, min_consumers=2, max_consumers=30)
    assert policy.desired(visible, 0, current=expected, now_s=0) == expected  # steady: no change
    fresh = BacklogScalingPolicy(5, 0.2, min_consumers=2, max_consumers=30)
    assert fresh.desired(visible, 0, current=2, now_s=0) == expected


def test_scale_out_is_immediate_even_inside_the_cooldown_and_respects_the_step() -> None:
    policy = BacklogScalingPolicy(5, 0.2, min_consumers=1, max_consumers=100, scale_in_cooldown_s=300)
    assert policy.desired(100, 0, current=1, now_s=0) == 4
    assert policy.desired(1000, 0, current=4, now_s=1) == 40  # one second later: no cooldown for scale-out
    stepped = BacklogScalingPolicy(5, 0.2, max_consumers=1000, max_scale_out_step=300)
    assert stepped.desired(25_000, 0, current=5, now_s=0) == 305  # Lambda: up to 300 more per minute


def test_scale_in_waits_for_the_cooldown_and_keeps_consumers_holding_messages() -> None:
    policy = BacklogScalingPolicy(5, 0.2, min_consumers=1, max_consumers=100, scale_in_cooldown_s=300, batch_size=10)
    assert policy.desired(250, 0, current=1, now_s=0) == 10
    assert policy.desired(0, 0, current=10, now_s=60) == 10
    assert policy.desired(0, 0, current=10, now_s=299) == 10
    assert policy.desired(0, 35, current=10, now_s=300) == 4  # 35 in flight: 4 consumers still hold batches
    assert policy.desired(0, 0, current=4, now_s=301) == 4  # the scale-in restarted the cooldown
    assert policy.desired(0, 0, current=4, now_s=600) == 1
    limited = BacklogScalingPolicy(5, 0.2, max_scale_in_step=2, scale_in_cooldown_s=0)
    assert limited.desired(0, 0, current=10, now_s=0) == 8


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"acceptable_latency_s": 0, "processing_time_s": 1}, "acceptable_latency_s must be a positive"),
    ({"acceptable_latency_s": 5, "processing_time_s": -1}, "processing_time_s must be a positive"),
    ({"acceptable_latency_s": float("nan"), "processing_time_s": 1}, "acceptable_latency_s must be a positive"),
    ({"acceptable_latency_s": 5, "processing_time_s": float("inf")}, "processing_time_s must be a positive"),
    ({"acceptable_latency_s": "soon", "processing_time_s": 1}, "must be a number of seconds"),
    ({"acceptable_latency_s": 5, "processing_time_s": 1, "min_consumers": 5, "max_consumers": 2}, "is above max"),
    ({"acceptable_latency_s": 5, "processing_time_s": 1, "min_consumers": -1}, "min_consumers must be at least 0"),
    ({"acceptable_latency_s": 5, "processing_time_s": 1, "max_consumers": 1.5}, "must be a whole number"),
    ({"acceptable_latency_s": 5, "processing_time_s": 1, "scale_in_cooldown_s": float("nan")}, "zero or more"),
])
def test_impossible_settings_are_refused_with_a_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidScalingPolicyError, match=message):
        BacklogScalingPolicy(**kwargs)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="zero or more"):
        BacklogScalingPolicy(5, 0.2).desired(-1, 0, current=1, now_s=0)


def test_metric_math_is_aws_backlog_per_instance() -> None:
    config = BacklogScalingPolicy(5, 0.2).metric_math("payments-accept", auto_scaling_group="workers")
    assert config["TargetValue"] == 25.0
    m1, m2, e1 = config["CustomizedMetricSpecification"]["Metrics"]
    assert m1["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert m1["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "QueueName", "Value": "payments-accept"}]
    assert m2["MetricStat"]["Metric"]["MetricName"] == "GroupInServiceInstances"
    assert (e1["Expression"], e1["ReturnData"], m1["ReturnData"], m2["ReturnData"]) == ("m1 / m2", True, False, False)
    with_arrivals = BacklogScalingPolicy(5, 0.2).metric_math("q", auto_scaling_group="g", include_arrivals=True)
    assert with_arrivals["CustomizedMetricSpecification"]["Metrics"][-1]["Expression"] == "(m1 + m3 * 5 / 60) / m2"
    with pytest.raises(ValueError, match="exactly one"):
        backlog_metric_math("q", target_backlog_per_consumer=25)
    with pytest.raises(ValueError, match="not its URL"):
        backlog_metric_math("https://sqs/q", target_backlog_per_consumer=25, auto_scaling_group="g")
