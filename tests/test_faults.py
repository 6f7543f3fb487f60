"""Tests for fasterpay.faults: seeded latency, injected faults and virtual time."""

from __future__ import annotations

import math
import random
import statistics
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

import fasterpay.faults as faults
from fasterpay.aws import AwsEnvironment
from fasterpay.faults import (
    DEFAULT_LATENCY_MODEL,
    FAULT_KINDS,
    AttemptRecord,
    FaultInjector,
    FaultPlan,
    FaultRates,
    LatencyDistribution,
    LatencyModel,
)
from fasterpay.metering import ApiCallMeter

REGION = "eu-west-2"
# botocore's "max_attempts" counts retries; "total_max_attempts" counts the first attempt too.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
ONE_RETRY = Config(retries={"total_max_attempts": 2, "mode": "standard"})
# With latency=None each in-scope attempt draws one number; random.Random(1) draws 0.134 then
# 0.847, so at rate 0.5 the first attempt gets the fault and the retry does not.
FIRST_ATTEMPT_ONLY = {"seed": 1, "rate": 0.5}


@pytest.fixture
def env(postings_env: AwsEnvironment) -> AwsEnvironment:
    return postings_env  # a moto environment with a "postings" table (tests/conftest.py)


@pytest.fixture
def backoff_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record botocore's retry back-off instead of sleeping it (no wall-clock in tests)."""
    slept: list[float] = []
    monkeypatch.setattr("botocore.endpoint.time.sleep", slept.append)
    return slept


def _item(end_to_end_id: str) -> dict[str, Any]:
    return {"EndToEndId": {"S": end_to_end_id}}


def _stored(env: AwsEnvironment, end_to_end_id: str) -> bool:
    """Whether the item is in moto's table, read by a client without an injector."""
    found = env.client("dynamodb").get_item(TableName="postings", Key=_item(end_to_end_id))
    return "Item" in found


def _queued_bodies(env: AwsEnvironment, queue_url: str) -> list[str]:
    sqs = env.client("sqs")
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [message["Body"] for message in received.get("Messages", [])]


# Latency distributions and models ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("p50", "p99"), [(0, 10), (-1, 10), (5, 4), (math.nan, 10), (4, math.inf)]
)
def test_latency_distribution_rejects_bad_percentiles(p50: float, p99: float) -> None:
    with pytest.raises(ValueError):
        LatencyDistribution(p50, p99)


@pytest.mark.parametrize(("p50", "p99"), [("4", 12), (True, 12), (4, None)])
def test_latency_distribution_rejects_non_numbers(p50: Any, p99: Any) -> None:
    with pytest.raises(TypeError):
        LatencyDistribution(p50, p99)


def test_latency_samples_match_p50_and_p99() -> None:
    dist = LatencyDistribution(p50_ms=4, p99_ms=12)
    rng = random.Random(20261101)
    samples_ms = [dist.sample(rng) * 1000 for _ in range(40_000)]
    percentiles = statistics.quantiles(samples_ms, n=100)

    assert math.isclose(dist.mu, math.log(4))
    assert percentiles[49] == pytest.approx(4, rel=0.03)
    assert percentiles[98] == pytest.approx(12, rel=0.06)
    assert min(samples_ms) > 0


def test_equal_percentiles_give_a_constant_latency() -> None:
    dist = LatencyDistribution(7, 7)
    assert {round(dist.sample(random.Random(seed)), 12) for seed in range(5)} == {0.007}


def test_latency_model_picks_operation_then_service_then_default() -> None:
    model = LatencyModel(
        default=LatencyDistribution(10, 40),
        per_service={"dynamodb": LatencyDistribution(4, 12)},
        per_operation={("dynamodb", "TransactWriteItems"): LatencyDistribution(9, 30)},
    )
    assert model.for_call("dynamodb", "TransactWriteItems").p50_ms == 9
    assert model.for_call("dynamodb", "GetItem").p50_ms == 4
    assert model.for_call("kinesis", "PutRecord").p50_ms == 10
    assert model.describe() == [
        {"service": "*", "operation": "*", "p50_ms": 10, "p99_ms": 40},
        {"service": "dynamodb", "operation": "*", "p50_ms": 4, "p99_ms": 12},
        {"service": "dynamodb", "operation": "TransactWriteItems", "p50_ms": 9, "p99_ms": 30},
    ]


def test_default_latency_model_states_its_assumptions() -> None:
    model = DEFAULT_LATENCY_MODEL
    figures = {(s, o): (d.p50_ms, d.p99_ms) for s, o, d in [
        ("dynamodb", "GetItem", model.for_call("dynamodb", "GetItem")),
        ("dynamodb", "PutItem", model.for_call("dynamodb", "PutItem")),
        ("dynamodb", "TransactWriteItems", model.for_call("dynamodb", "TransactWriteItems")),
        ("kms", "Decrypt", model.for_call("kms", "Decrypt")),
        ("sqs", "SendMessage", model.for_call("sqs", "SendMessage")),
        ("s3", "PutObject", model.for_call("s3", "PutObject")),
        ("sts", "AssumeRole", model.for_call("sts", "AssumeRole")),
        ("lambda", "Invoke", model.for_call("lambda", "Invoke")),
    ]}
    assert figures == {
        ("dynamodb", "GetItem"): (4, 12), ("dynamodb", "PutItem"): (4, 12),
        ("dynamodb", "TransactWriteItems"): (9, 30), ("kms", "Decrypt"): (6, 20),
        ("sqs", "SendMessage"): (8, 30), ("s3", "PutObject"): (20, 80),
        ("sts", "AssumeRole"): (20, 60), ("lambda", "Invoke"): (10, 40),
    }
    assert "assumptions" in model.source and "not measurements" in model.source
    assert "2026-11" in model.source
    with pytest.raises(TypeError):
        model.per_service["kms"] = LatencyDistribution(1, 2)  # type: ignore[index]


# Fault plans ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"throttle_rate": -0.1}, {"server_error_rate": 1.5}, {"timeout_rate": math.nan},
     {"throttle_rate": 0.6, "server_error_rate": 0.3, "timeout_rate": 0.2}],
)
def test_fault_plan_rejects_bad_rates(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FaultPlan(**kwargs)


@pytest.mark.parametrize("field", ["services", "operations", "partitioned_regions"])
def test_fault_plan_rejects_a_bare_string_for_a_set(field: str) -> None:
    with pytest.raises(TypeError, match="set of names"):
        FaultPlan(**{field: "dynamodb"})


def test_fault_plan_freezes_its_sets() -> None:
    plan = FaultPlan(services={"kms"}, operations=["Decrypt"], partitioned_regions={"eu-west-1"})
    assert plan.services == frozenset({"kms"}) and isinstance(plan.operations, frozenset)
    assert plan.applies_to("kms", "Decrypt") and not plan.applies_to("kms", "Encrypt")
    assert not plan.applies_to("dynamodb", "Decrypt")


def test_fault_kinds_include_lost_response() -> None:
    assert FAULT_KINDS == ("throttle", "server_error", "timeout", "lost_response", "partition")


@pytest.mark.parametrize(
    "kwargs",
    [{"lost_response_rate": -0.1}, {"lost_response_rate": 1.01}, {"lost_response_rate": math.inf},
     {"timeout_rate": 0.5, "lost_response_rate": 0.6}],
)
@pytest.mark.parametrize("rates_class", [FaultRates, FaultPlan])
def test_lost_response_rate_is_validated_with_the_others(
    rates_class: type, kwargs: dict[str, float]
) -> None:
    with pytest.raises(ValueError):
        rates_class(**kwargs)


@pytest.mark.parametrize("rate", ["0.1", None, True])
def test_fault_rates_reject_non_numbers(rate: Any) -> None:
    with pytest.raises(TypeError):
        FaultRates(throttle_rate=rate)


@pytest.mark.parametrize(
    "per_service",
    [{"kms": 0.01}, {"kms": FaultPlan(throttle_rate=0.01)}, {("kms",): FaultRates()}, ["kms"]],
)
def test_per_service_must_map_names_to_fault_rates(per_service: Any) -> None:
    with pytest.raises(TypeError, match="FaultRates"):
        FaultPlan(per_service=per_service)


def test_per_service_rates_replace_the_plans_own_and_bring_the_service_into_scope() -> None:
    kms = FaultRates(throttle_rate=0.01, server_error_rate=0.01)
    plan = FaultPlan(timeout_rate=0.2, services=frozenset({"sqs"}), per_service={"kms": kms})

    assert plan.rates_for("kms") == kms
    assert plan.rates_for("sqs") == FaultRates(timeout_rate=0.2)
    assert plan.applies_to("kms", "GenerateDataKey") and plan.applies_to("sqs", "SendMessage")
    assert not plan.applies_to("dynamodb", "PutItem")
    assert [kms.pick(draw) for draw in (0.0, 0.0099, 0.01, 0.0199, 0.02)] == [
        "throttle", "throttle", "server_error", "server_error", None]
    with pytest.raises(TypeError):
        plan.per_service["dynamodb"] = kms  # type: ignore[index]


# Injection against moto ---------------------------------------------------------------------------


def _run_mixed_calls(env: AwsEnvironment, seed: int) -> tuple[AttemptRecord, ...]:
    injector = FaultInjector(
        latency=DEFAULT_LATENCY_MODEL,
        plan=FaultPlan(throttle_rate=0.2, server_error_rate=0.1, timeout_rate=0.1),
        seed=seed,
    )
    dynamodb = injector.attach(env.client("dynamodb", config=NO_RETRIES))
    kms = injector.attach(env.client("kms", config=NO_RETRIES))
    for n in range(30):
        call: Callable[[], Any] = (
            (lambda: kms.generate_random(NumberOfBytes=8)) if n % 3 == 0
            else (lambda: dynamodb.put_item(TableName="postings", Item=_item(f"E2E-{n}")))
        )
        try:
            call()
        except (ClientError, ReadTimeoutError):
            pass
    return injector.calls


def test_same_seed_gives_the_same_latencies_and_faults(env: AwsEnvironment) -> None:
    first = _run_mixed_calls(env, seed=7)
    second = _run_mixed_calls(env, seed=7)
    other = _run_mixed_calls(env, seed=8)

    assert first == second
    assert first != other
    assert {record.fault for record in first} == {None, "throttle", "server_error", "timeout"}


def test_same_seed_gives_the_same_lost_responses_and_every_one_committed(
    env: AwsEnvironment,
) -> None:
    plan = FaultPlan(
        throttle_rate=0.1, timeout_rate=0.1, lost_response_rate=0.2,
        per_service={"kms": FaultRates(server_error_rate=0.3, lost_response_rate=0.2)},
    )
    runs = []
    for run in range(2):
        injector = FaultInjector(latency=DEFAULT_LATENCY_MODEL, plan=plan, seed=20261128)
        dynamodb = injector.attach(env.client("dynamodb", config=NO_RETRIES))
        kms = injector.attach(env.client("kms", config=NO_RETRIES))
        for n in range(60):
            try:
                if n % 3 == 0:
                    kms.generate_random(NumberOfBytes=8)
                else:
                    dynamodb.put_item(TableName="postings", Item=_item(f"E2E-{run}-{n}"))
            except (ClientError, ReadTimeoutError):
                pass
        runs.append(injector.calls)

    first, second = runs
    assert first == second
    assert {record.fault for record in first if record.service == "kms"} == {
        None, "server_error", "lost_response"}
    assert {record.fault for record in first if record.service == "dynamodb"} == {
        None, "throttle", "timeout", "lost_response"}
    # One attempt per call (no SDK retries): a put is stored exactly when its attempt reached moto.
    for n, record in enumerate(first):
        if record.service == "dynamodb":
            assert _stored(env, f"E2E-0-{n}") == (record.fault in (None, "lost_response")), n


@pytest.mark.parametrize(
    ("service", "call", "code", "status"),
    [
        ("dynamodb", lambda c: c.put_item(TableName="postings", Item=_item("E2E-1")),
         "ProvisionedThroughputExceededException", 400),
        ("dynamodb", lambda c: c.list_tables(), "ThrottlingException", 400),
        ("kms", lambda c: c.generate_random(NumberOfBytes=8), "ThrottlingException", 400),
        ("sqs", lambda c: c.list_queues(), "RequestThrottled", 400),
        ("s3", lambda c: c.list_buckets(), "SlowDown", 503),
        ("sts", lambda c: c.get_caller_identity(), "Throttling", 400),
        ("lambda", lambda c: c.list_functions(), "ThrottlingException", 400),
    ],
)
def test_throttle_surfaces_the_services_own_code_without_retries(
    env: AwsEnvironment, service: str, call: Callable[[Any], Any], code: str, status: int
) -> None:
    injector = FaultInjector(plan=FaultPlan(throttle_rate=1.0), seed=1)
    client = injector.attach(env.client(service, config=NO_RETRIES))

    with pytest.raises(ClientError) as raised:
        call(client)

    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert injector.injected == {"throttle": 1}


def test_throttle_raises_the_modelled_exception_class(env: AwsEnvironment) -> None:
    injector = FaultInjector(plan=FaultPlan(throttle_rate=1.0), seed=1)
    dynamodb = injector.attach(env.client("dynamodb", config=NO_RETRIES))
    with pytest.raises(dynamodb.exceptions.ProvisionedThroughputExceededException):
        dynamodb.get_item(TableName="postings", Key=_item("E2E-1"))


def test_injected_fault_never_reaches_moto(env: AwsEnvironment) -> None:
    injector = FaultInjector(plan=FaultPlan(throttle_rate=1.0), seed=1)
    throttled = injector.attach(env.client("dynamodb", config=NO_RETRIES))
    with pytest.raises(ClientError):
        throttled.put_item(TableName="postings", Item=_item("E2E-1"))
    assert "Item" not in env.client("dynamodb").get_item(TableName="postings", Key=_item("E2E-1"))


def test_throttles_are_retried_by_the_sdk(env: AwsEnvironment, backoff_sleeps: list[float]) -> None:
    injector = FaultInjector(plan=FaultPlan(throttle_rate=0.5), seed=3)
    meter = ApiCallMeter()
    dynamodb = env.client("dynamodb", config=Config(retries={"total_max_attempts": 5,
                                                              "mode": "standard"}))
    meter.attach(injector.attach(dynamodb))
    succeeded = 0
    for n in range(20):
        try:
            dynamodb.put_item(TableName="postings", Item=_item(f"E2E-{n}"))
            succeeded += 1
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ProvisionedThroughputExceededException"

    snapshot = meter.snapshot()
    attempts = snapshot.count_attempts()
    assert snapshot.count() == 20
    assert attempts == len(injector.calls) > 20
    assert attempts - injector.injected["throttle"] == succeeded
    assert snapshot.count_errors() == 20 - succeeded
    assert len(backoff_sleeps) == attempts - 20
    stored = env.client("dynamodb").scan(TableName="postings")["Count"]
    assert stored == succeeded


@pytest.mark.parametrize(
    ("service", "call", "code", "status"),
    [
        ("dynamodb", lambda c: c.get_item(TableName="postings", Key=_item("E2E-1")),
         "InternalServerError", 500),
        ("kms", lambda c: c.generate_random(NumberOfBytes=8), "KMSInternalException", 500),
        ("sqs", lambda c: c.list_queues(), "ServiceUnavailable", 503),
        ("s3", lambda c: c.list_buckets(), "InternalError", 500),
    ],
)
def test_server_errors_use_the_services_own_code(
    env: AwsEnvironment, service: str, call: Callable[[Any], Any], code: str, status: int
) -> None:
    injector = FaultInjector(plan=FaultPlan(server_error_rate=1.0), seed=1)
    client = injector.attach(env.client(service, config=NO_RETRIES))
    with pytest.raises(ClientError) as raised:
        call(client)
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert injector.injected == {"server_error": 1}


def test_timeout_raises_read_timeout_and_costs_the_read_timeout(env: AwsEnvironment) -> None:
    injector = FaultInjector(plan=FaultPlan(timeout_rate=1.0), seed=1)
    kms = injector.attach(env.client(
        "kms", config=Config(read_timeout=2, retries={"total_max_attempts": 1})))
    with pytest.raises(ReadTimeoutError):
        kms.generate_random(NumberOfBytes=8)
    assert injector.modelled_seconds == 2.0
    assert injector.calls == (AttemptRecord("kms", "GenerateRandom", REGION, 2.0, "timeout"),)


def test_timeouts_are_retried_by_the_sdk(env: AwsEnvironment, backoff_sleeps: list[float]) -> None:
    injector = FaultInjector(plan=FaultPlan(timeout_rate=1.0), seed=1)
    kms = injector.attach(env.client("kms", config=Config(retries={"total_max_attempts": 3,
                                                                   "mode": "standard"})))
    with pytest.raises(ReadTimeoutError):
        kms.generate_random(NumberOfBytes=8)
    assert injector.injected == {"timeout": 3}


# Lost responses: the attempt commits, then the client times out ---------------------------------


def test_lost_response_commits_then_raises_read_timeout(env: AwsEnvironment) -> None:
    injector = FaultInjector(
        latency=LatencyModel(default=LatencyDistribution(4, 4)),
        plan=FaultPlan(lost_response_rate=1.0), seed=1,
    )
    dynamodb = injector.attach(env.client(
        "dynamodb", config=Config(read_timeout=2, retries={"total_max_attempts": 1})))

    with pytest.raises(ReadTimeoutError):
        dynamodb.put_item(TableName="postings", Item=_item("E2E-LOST"))

    assert _stored(env, "E2E-LOST")
    assert injector.injected == {"lost_response": 1}
    assert injector.calls == (
        AttemptRecord("dynamodb", "PutItem", REGION, pytest.approx(2.004), "lost_response"),)
    assert injector.modelled_seconds == pytest.approx(2.004)  # latency + read_timeout


def test_timeout_does_not_commit(env: AwsEnvironment) -> None:
    injector = FaultInjector(plan=FaultPlan(timeout_rate=1.0), seed=1)
    dynamodb = injector.attach(env.client("dynamodb", config=NO_RETRIES))
    with pytest.raises(ReadTimeoutError):
        dynamodb.put_item(TableName="postings", Item=_item("E2E-TIMEOUT"))
    assert not _stored(env, "E2E-TIMEOUT")
    assert injector.injected == {"timeout": 1}


def test_sdk_retry_of_a_lost_conditional_put_meets_its_own_committed_write(
    env: AwsEnvironment, backoff_sleeps: list[float]
) -> None:
    injector = FaultInjector(
        plan=FaultPlan(lost_response_rate=FIRST_ATTEMPT_ONLY["rate"]),
        seed=FIRST_ATTEMPT_ONLY["seed"],
    )
    meter = ApiCallMeter()
    dynamodb = meter.attach(injector.attach(env.client("dynamodb", config=ONE_RETRY)))

    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException) as raised:
        dynamodb.put_item(TableName="postings", Item=_item("E2E-ONCE"),
                          ConditionExpression="attribute_not_exists(EndToEndId)")

    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    assert [record.fault for record in injector.calls] == ["lost_response", None]
    assert len(backoff_sleeps) == 1  # botocore retried it as a read timeout
    assert meter.snapshot().count_attempts() == 2
    assert _stored(env, "E2E-ONCE")


def test_lost_sqs_send_message_is_in_the_queue(env: AwsEnvironment) -> None:
    queue_url = env.client("sqs").create_queue(QueueName="payments-lost")["QueueUrl"]
    injector = FaultInjector(plan=FaultPlan(lost_response_rate=1.0), seed=1)
    sqs = injector.attach(env.client("sqs", config=NO_RETRIES))

    with pytest.raises(ReadTimeoutError):
        sqs.send_message(QueueUrl=queue_url, MessageBody="pacs.008 E2E-SQS")

    assert _queued_bodies(env, queue_url) == ["pacs.008 E2E-SQS"]
    assert injector.injected == {"lost_response": 1}


def test_sdk_retry_of_a_lost_sqs_send_delivers_the_message_twice(
    env: AwsEnvironment, backoff_sleeps: list[float]
) -> None:
    queue_url = env.client("sqs").create_queue(QueueName="payments-twice")["QueueUrl"]
    injector = FaultInjector(
        plan=FaultPlan(lost_response_rate=FIRST_ATTEMPT_ONLY["rate"]),
        seed=FIRST_ATTEMPT_ONLY["seed"],
    )
    sqs = injector.attach(env.client("sqs", config=ONE_RETRY))

    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="pacs.008 E2E-DUP")

    assert sent["ResponseMetadata"]["RetryAttempts"] == 1
    assert [record.fault for record in injector.calls] == ["lost_response", None]
    assert _queued_bodies(env, queue_url) == ["pacs.008 E2E-DUP"] * 2


def test_lost_response_without_a_stub_goes_over_the_clients_http_session(
    env: AwsEnvironment,
) -> None:
    sent: list[Any] = []

    class RecordingHttpSession:
        def send(self, request: Any) -> AWSResponse:
            sent.append(request)
            return AWSResponse(request.url, 200, {}, faults._RawBody(b"<ok/>"))

    injector = FaultInjector(plan=FaultPlan(lost_response_rate=1.0), seed=1)
    # No moto backend answers this host, so the delivery must fall through to HTTP.
    sqs = injector.attach(env.session.client(
        "sqs", region_name=REGION, endpoint_url="https://sqs.fasterpay-no-stub.invalid",
        config=NO_RETRIES))
    sqs._endpoint.http_session = RecordingHttpSession()

    with pytest.raises(ReadTimeoutError):
        sqs.send_message(QueueUrl="https://sqs.fasterpay-no-stub.invalid/1/q", MessageBody="m")

    assert [request.url for request in sent] == ["https://sqs.fasterpay-no-stub.invalid/"]


def test_span_records_lost_responses(env: AwsEnvironment) -> None:
    injector = FaultInjector(plan=FaultPlan(lost_response_rate=1.0), seed=1)
    kms = injector.attach(env.client("kms", config=NO_RETRIES))
    with injector.span() as span, pytest.raises(ReadTimeoutError):
        kms.generate_random(NumberOfBytes=8)
    assert span.faults == {"lost_response": 1} and span.attempts == 1


# Per-service rates: KMS -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kms_rates", "code", "status"),
    [
        (FaultRates(throttle_rate=1.0), "ThrottlingException", 400),
        (FaultRates(server_error_rate=1.0), "KMSInternalException", 500),
    ],
)
def test_kms_gets_its_own_rates_and_dynamodb_is_never_faulted(
    env: AwsEnvironment, kms_rates: FaultRates, code: str, status: int
) -> None:
    key_id = env.client("kms").create_key()["KeyMetadata"]["KeyId"]
    injector = FaultInjector(plan=FaultPlan(per_service={"kms": kms_rates}), seed=1)
    kms = injector.attach(env.client("kms", config=NO_RETRIES))
    dynamodb = injector.attach(env.client("dynamodb", config=NO_RETRIES))

    with pytest.raises(ClientError) as raised:
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    for n in range(20):
        dynamodb.put_item(TableName="postings", Item=_item(f"E2E-{n}"))

    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert {record.fault for record in injector.calls if record.service == "dynamodb"} == {None}
    assert len(injector.calls) == 21 and sum(injector.injected.values()) == 1


def test_kms_server_error_raises_the_modelled_exception_class(env: AwsEnvironment) -> None:
    key_id = env.client("kms").create_key()["KeyMetadata"]["KeyId"]
    injector = FaultInjector(
        plan=FaultPlan(per_service={"kms": FaultRates(server_error_rate=1.0)}), seed=1)
    kms = injector.attach(env.client("kms", config=NO_RETRIES))
    with pytest.raises(kms.exceptions.KMSInternalException):
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")


def test_partitioned_region_is_unreachable_and_others_are_not(env: AwsEnvironment) -> None:
    injector = FaultInjector(plan=FaultPlan(partitioned_regions=frozenset({"eu-west-1"})), seed=1)
    config = Config(connect_timeout=3, retries={"total_max_attempts": 1})
    dublin = injector.attach(env.client("kms", region="eu-west-1", config=config))
    london = injector.attach(env.client("kms", config=config))

    with pytest.raises(EndpointConnectionError):
        dublin.generate_random(NumberOfBytes=8)
    london.generate_random(NumberOfBytes=8)

    assert injector.injected == {"partition": 1}
    assert injector.modelled_seconds == 3.0
    assert [record.region for record in injector.calls] == ["eu-west-1", REGION]


def test_service_and_operation_filters_scope_the_faults(env: AwsEnvironment) -> None:
    injector = FaultInjector(
        plan=FaultPlan(throttle_rate=1.0, services=frozenset({"dynamodb"}),
                       operations=frozenset({"PutItem"})),
        seed=1,
    )
    dynamodb = injector.attach(env.client("dynamodb", config=NO_RETRIES))
    kms = injector.attach(env.client("kms", config=NO_RETRIES))

    kms.generate_random(NumberOfBytes=8)
    dynamodb.get_item(TableName="postings", Key=_item("E2E-1"))
    with pytest.raises(ClientError):
        dynamodb.put_item(TableName="postings", Item=_item("E2E-1"))

    assert [record.fault for record in injector.calls] == [None, None, "throttle"]


def test_attaching_twice_injects_once_per_attempt(env: AwsEnvironment) -> None:
    injector = FaultInjector(latency=DEFAULT_LATENCY_MODEL, seed=1)
    kms = injector.attach(injector.attach(env.client("kms")))
    kms.generate_random(NumberOfBytes=8)
    assert len(injector.calls) == 1


# Virtual time and spans -------------------------------------------------------------------------


def test_virtual_time_is_not_slept(env: AwsEnvironment, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(faults.time, "sleep", slept.append)
    virtual = FaultInjector(latency=DEFAULT_LATENCY_MODEL, seed=5)
    virtual.attach(env.client("kms")).generate_random(NumberOfBytes=8)
    assert slept == []

    real = FaultInjector(latency=DEFAULT_LATENCY_MODEL, seed=5, sleep=True)
    real.attach(env.client("kms")).generate_random(NumberOfBytes=8)
    assert slept == [real.modelled_seconds] == [virtual.modelled_seconds]
    assert 0 < slept[0] < 1


def test_spans_count_only_their_own_threads_attempts(env: AwsEnvironment) -> None:
    threads, calls_each = 6, 10
    injector = FaultInjector(latency=DEFAULT_LATENCY_MODEL, seed=11)
    clients = [injector.attach(env.client("kms")) for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    spans: list[faults.Span] = []
    lock = threading.Lock()

    def work(kms: Any) -> None:
        with injector.span() as outer:
            start.wait()
            with injector.span() as inner:
                kms.generate_random(NumberOfBytes=8)
            for _ in range(calls_each - 1):
                kms.generate_random(NumberOfBytes=8)
        assert outer.modelled_seconds > inner.modelled_seconds > 0
        assert inner.attempts == 1
        with lock:
            spans.append(outer)

    workers = [threading.Thread(target=work, args=(kms,)) for kms in clients]
    with injector.span() as main_span:
        for worker in workers:
            worker.start()
        start.wait()
        for worker in workers:
            worker.join()

    assert main_span.attempts == 0 and main_span.modelled_seconds == 0
    assert [span.attempts for span in spans] == [calls_each] * threads
    total = sum(span.modelled_seconds for span in spans)
    assert total == pytest.approx(injector.modelled_seconds)
    assert injector.modelled_seconds == pytest.approx(
        sum(record.modelled_seconds for record in injector.calls))


def test_span_records_faults(env: AwsEnvironment) -> None:
    injector = FaultInjector(plan=FaultPlan(throttle_rate=1.0), seed=1)
    kms = injector.attach(env.client("kms", config=NO_RETRIES))
    with injector.span() as span, pytest.raises(ClientError):
        kms.generate_random(NumberOfBytes=8)
    assert span.faults == {"throttle": 1} and span.attempts == 1


def test_a_bounded_history_keeps_the_last_attempts_and_still_counts_every_one(env: AwsEnvironment) -> None:
    """A long run keeps memory flat: only the last ``history`` records stay; totals cover every attempt."""
    full = FaultInjector(latency=DEFAULT_LATENCY_MODEL, plan=FaultPlan(throttle_rate=0.3), seed=5)
    bounded = FaultInjector(latency=DEFAULT_LATENCY_MODEL, plan=FaultPlan(throttle_rate=0.3), seed=5, history=4)
    for injector in (full, bounded):
        dynamodb = injector.attach(env.client("dynamodb", config=NO_RETRIES))
        for n in range(12):
            try:
                dynamodb.put_item(TableName="postings", Item=_item(f"E2E-{n}"))
            except ClientError:
                pass
    assert len(full.calls) == 12 and bounded.calls == full.calls[-4:]
    assert bounded.modelled_seconds == full.modelled_seconds and bounded.injected == full.injected
    assert sum(bounded.injected.values()) > 0
    with pytest.raises(ValueError):
        FaultInjector(seed=1, history=-1)
