"""The cost guards: a retry storm stays bounded, a log flood is capped and reported, a client over its
allowance is refused before any AWS call."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fasterpay.aws import AwsEnvironment
from fasterpay.finops.guards import AllowanceExceededError, ClientAllowance, LogBudget, RetryBudget
from fasterpay.metering import ApiCallMeter


def _throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GenerateMac")


def test_a_retry_storm_adds_at_most_the_budget_not_attempts_times_requests() -> None:
    budget = RetryBudget(ratio=0.1, minimum=5)
    calls = 0

    def always_throttled() -> None:
        nonlocal calls
        calls += 1
        raise _throttled()

    for _ in range(1_000):
        with pytest.raises(ClientError):
            budget.call(always_throttled, retryable=lambda e: True, attempts=3, sleep=lambda s: None)
    assert budget.requests == 1_000
    assert calls <= 1_000 + 5 + 0.1 * 1_000  # without the budget: 3,000
    assert budget.retries == calls - 1_000 and budget.refused > 0


def test_retries_within_budget_still_recover_a_transient_fault() -> None:
    budget = RetryBudget(ratio=0.1, minimum=2)
    outcomes = iter([_throttled(), "ok"])

    def flaky() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert budget.call(flaky, retryable=lambda e: True, sleep=lambda s: None) == "ok"
    assert budget.retries == 1


def test_an_error_that_is_not_retryable_is_raised_at_once() -> None:
    budget = RetryBudget()
    with pytest.raises(ValueError):
        budget.call(lambda: (_ for _ in ()).throw(ValueError("bad input")), retryable=lambda e: False)
    assert budget.retries == 0


def test_a_retry_budget_on_real_calls_bounds_the_metered_calls(env: AwsEnvironment) -> None:
    kms = env.client("kms")
    meter = ApiCallMeter()
    meter.attach(kms)
    budget = RetryBudget(ratio=0.0, minimum=0)
    with pytest.raises(ClientError):
        budget.call(lambda: kms.describe_key(KeyId="alias/missing"), retryable=lambda e: True, sleep=lambda s: None)
    assert meter.count(service="kms") == 1  # a spent budget means no second call


@pytest.mark.parametrize(("ratio", "minimum"), [(-0.1, 1), (1.5, 1), (0.1, -1)])
def test_a_nonsense_retry_budget_is_refused(ratio: float, minimum: int) -> None:
    with pytest.raises(ValueError):
        RetryBudget(ratio=ratio, minimum=minimum)


def test_a_log_flood_is_capped_and_summarised_and_the_first_errors_are_kept() -> None:
    out = io.StringIO()
    budget = LogBudget(out, max_bytes=4_096, error_reserve=1_024)
    record = {"level": "INFO", "message": "record failed", "payload": "x" * 200}
    written = sum(budget.write(record) for _ in range(1_000))
    assert budget.write({"level": "ERROR", "message": "dependency down"}, level="ERROR")  # the reserve
    emitted = budget.reset()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert emitted == len(out.getvalue().encode()) <= 4_096 + 200
    assert written < 20 and lines[-1]["message"] == "log budget spent: lines dropped"
    assert lines[-1]["dropped_lines"] == 1_000 - written
    assert any(line["message"] == "dependency down" for line in lines)
    assert budget.written == 0 and budget.write(record)  # the next invocation starts afresh


def test_a_log_budget_that_cannot_hold_its_reserve_is_refused() -> None:
    with pytest.raises(ValueError):
        LogBudget(io.StringIO(), max_bytes=100, error_reserve=200)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


def test_a_client_over_its_rate_is_refused_and_others_are_not() -> None:
    clock = _Clock()
    allowance = ClientAllowance(rate_per_s=10, burst=20, daily=10_000, clock=clock)
    admitted = 0
    for _ in range(100):
        try:
            allowance.admit("psp-a")
            admitted += 1
        except AllowanceExceededError:
            pass
    assert admitted == 20 and allowance.refused == 80  # the burst, then nothing until tokens refill
    allowance.admit("psp-b")  # another client has its own bucket
    clock.now += 1.0
    for _ in range(10):
        allowance.admit("psp-a")  # 10 tokens a second
    with pytest.raises(AllowanceExceededError, match="over 10"):
        allowance.admit("psp-a")


def test_a_client_over_its_daily_allowance_waits_for_the_next_day() -> None:
    clock = _Clock()
    allowance = ClientAllowance(rate_per_s=1_000, burst=1_000, daily=5, clock=clock)
    for _ in range(5):
        allowance.admit("psp-a")
    with pytest.raises(AllowanceExceededError, match="for today"):
        allowance.admit("psp-a")
    clock.now += 86_400
    allowance.admit("psp-a")


def test_a_refused_submission_makes_no_aws_call(env: AwsEnvironment) -> None:
    sqs = env.client("sqs")
    url = sqs.create_queue(QueueName="ingest")["QueueUrl"]
    meter = ApiCallMeter()
    meter.attach(sqs)
    allowance = ClientAllowance(rate_per_s=1, burst=2, daily=100, clock=_Clock())

    def submit(body: str) -> Any:
        allowance.admit("psp-a")
        return sqs.send_message(QueueUrl=url, MessageBody=body)

    sent = refused = 0
    for n in range(50):
        try:
            submit(f"payment {n}")
            sent += 1
        except AllowanceExceededError:
            refused += 1
    assert (sent, refused) == (2, 48) and meter.count(service="sqs") == 2
