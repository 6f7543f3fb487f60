"""Tests for fasterpay.metering: calls, attempts, errors and DynamoDB unit estimates."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from fasterpay.aws import AwsEnvironment
from fasterpay.metering import ApiCallMeter, CallKey, MeterSnapshot, dynamodb_units

REGION = "eu-west-2"
# botocore's "max_attempts" counts retries; "total_max_attempts" counts the first attempt too.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture
def env(postings_env: AwsEnvironment) -> AwsEnvironment:
    return postings_env  # a moto environment with a "postings" table (tests/conftest.py)


def _item(end_to_end_id: str) -> dict[str, Any]:
    return {"EndToEndId": {"S": end_to_end_id}}


class _FailFirstAttempts:
    """A before-send hook answering the first ``n`` attempts with a DynamoDB 500."""

    def __init__(self, n: int) -> None:
        self.remaining = n

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.remaining == 0:
            return None
        self.remaining -= 1
        body = json.dumps({"__type": "com.amazonaws.dynamodb#InternalServerError", "message": "x"})

        class Raw:
            def stream(self, **_: Any) -> Iterator[bytes]:
                yield body.encode()

        return AWSResponse(request.url, 500, {"x-amzn-RequestId": "r"}, Raw())


def test_counts_per_service_operation_and_region(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    london = meter.attach(env.client("dynamodb"))
    virginia = meter.attach(env.client("kms", region="us-east-1"))
    london_kms = meter.attach(env.client("kms"))

    for n in range(3):
        london.put_item(TableName="postings", Item=_item(f"E2E-{n}"))
    london.get_item(TableName="postings", Key=_item("E2E-0"))
    virginia.generate_random(NumberOfBytes=16)
    virginia.generate_random(NumberOfBytes=16)
    london_kms.generate_random(NumberOfBytes=16)

    assert meter.count() == 7
    assert meter.count(service="dynamodb", operation="PutItem", region=REGION) == 3
    assert meter.count(service="kms", region="us-east-1") == 2
    assert meter.count(service="kms", region=REGION) == 1
    assert meter.count(operation="GetItem") == 1
    assert meter.calls[CallKey("kms", "GenerateRandom", "us-east-1")] == 2
    assert meter.snapshot().by_operation() == {
        "dynamodb:GetItem": 1, "dynamodb:PutItem": 3, "kms:GenerateRandom": 3,
    }


def test_attaching_twice_does_not_double_count(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    kms = meter.attach(meter.attach(env.client("kms")))
    kms.generate_random(NumberOfBytes=8)
    assert meter.count() == 1
    assert meter.snapshot().count_attempts() == 1


def test_attach_session_meters_clients_created_later_only(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    existing = env.client("kms")
    meter.attach_session(env.session)
    later = env.client("kms")
    meter.attach(later)  # also attached directly: still counted once

    existing.generate_random(NumberOfBytes=8)
    later.generate_random(NumberOfBytes=8)
    env.client("sqs").list_queues()

    assert meter.snapshot().by_operation() == {"kms:GenerateRandom": 1, "sqs:ListQueues": 1}


def test_two_meters_count_independently(env: AwsEnvironment) -> None:
    first, second = ApiCallMeter(), ApiCallMeter()
    kms = second.attach(first.attach(env.client("kms")))
    kms.generate_random(NumberOfBytes=8)
    assert (first.count(), second.count()) == (1, 1)


def test_retries_are_attempts_not_calls(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client(
        "dynamodb", config=Config(retries={"total_max_attempts": 3, "mode": "standard"})))
    dynamodb.meta.events.register_first("before-send", _FailFirstAttempts(2))

    dynamodb.get_item(TableName="postings", Key=_item("E2E-0"))

    key = CallKey("dynamodb", "GetItem", REGION)
    assert meter.calls == {key: 1}
    assert meter.attempts == {key: 3}
    assert meter.errors == {}
    assert meter.read_units == Decimal("0.5")  # once per call, not per attempt


def test_call_that_fails_after_all_retries_is_one_error(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client(
        "dynamodb", config=Config(retries={"total_max_attempts": 2, "mode": "standard"})))
    dynamodb.meta.events.register_first("before-send", _FailFirstAttempts(5))

    with pytest.raises(ClientError) as raised:
        dynamodb.get_item(TableName="postings", Key=_item("E2E-0"))

    assert raised.value.response["Error"]["Code"] == "InternalServerError"
    key = CallKey("dynamodb", "GetItem", REGION)
    assert meter.errors == {(key, "InternalServerError"): 1}
    assert meter.snapshot().count_attempts() == 2
    assert meter.count() == 1


def test_errors_are_recorded_by_code(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb", config=NO_RETRIES))
    dynamodb.put_item(TableName="postings", Item=_item("E2E-1"))
    for _ in range(2):
        with pytest.raises(ClientError):
            dynamodb.put_item(TableName="postings", Item=_item("E2E-1"),
                              ConditionExpression="attribute_not_exists(EndToEndId)")
    with pytest.raises(ClientError):
        dynamodb.get_item(TableName="missing", Key=_item("E2E-1"))

    def time_out(request: Any, **_: Any) -> None:
        raise ReadTimeoutError(endpoint_url=request.url)

    dynamodb.meta.events.register_first("before-send.dynamodb.DeleteItem", time_out)
    with pytest.raises(ReadTimeoutError):
        dynamodb.delete_item(TableName="postings", Key=_item("E2E-1"))

    snapshot = meter.snapshot()
    assert snapshot.errors == {
        (CallKey("dynamodb", "PutItem", REGION), "ConditionalCheckFailedException"): 2,
        (CallKey("dynamodb", "GetItem", REGION), "ResourceNotFoundException"): 1,
        (CallKey("dynamodb", "DeleteItem", REGION), "ReadTimeoutError"): 1,
    }
    assert snapshot.count_errors(code="ConditionalCheckFailedException") == 2
    assert snapshot.count_errors(service="kms") == 0
    assert snapshot.count() == 5


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("PutItem", {}, ("1", "0")),
        ("UpdateItem", {}, ("1", "0")),
        ("DeleteItem", {}, ("1", "0")),
        ("TransactWriteItems", {"TransactItems": [{}, {}, {}]}, ("6", "0")),
        ("BatchWriteItem", {"RequestItems": {"a": [{}, {}], "b": [{}]}}, ("3", "0")),
        ("GetItem", {}, ("0", "0.5")),
        ("GetItem", {"ConsistentRead": True}, ("0", "1")),
        ("BatchGetItem", {"RequestItems": {"a": {"Keys": [{}, {}]},
                                            "b": {"Keys": [{}], "ConsistentRead": True}}},
         ("0", "2")),
        ("TransactGetItems", {"TransactItems": [{}, {}]}, ("0", "4")),
        ("Query", {}, ("0", "0.5")),
        ("Scan", {"ConsistentRead": True}, ("0", "1")),
        ("DescribeTable", {}, ("0", "0")),
    ],
)
def test_dynamodb_unit_estimates(
    operation: str, params: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert dynamodb_units(operation, params) == (Decimal(expected[0]), Decimal(expected[1]))


def test_meter_sums_dynamodb_units_of_real_calls(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb"))
    dynamodb.put_item(TableName="postings", Item=_item("E2E-1"))
    dynamodb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "postings", "Item": _item("E2E-2")}},
        {"Put": {"TableName": "postings", "Item": _item("E2E-3")}},
    ])
    dynamodb.get_item(TableName="postings", Key=_item("E2E-1"), ConsistentRead=True)
    dynamodb.get_item(TableName="postings", Key=_item("E2E-2"))
    meter.attach(env.client("kms")).generate_random(NumberOfBytes=8)

    assert meter.write_units == Decimal("5")
    assert meter.read_units == Decimal("1.5")
    assert isinstance(meter.read_units, Decimal)


def test_snapshot_subtraction_gives_the_calls_in_between(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb"))
    kms = meter.attach(env.client("kms"))
    dynamodb.put_item(TableName="postings", Item=_item("E2E-1"))
    before = meter.snapshot()

    kms.generate_random(NumberOfBytes=8)
    dynamodb.put_item(TableName="postings", Item=_item("E2E-2"))
    dynamodb.get_item(TableName="postings", Key=_item("E2E-2"))
    between = meter.snapshot() - before

    assert between.by_operation() == {
        "dynamodb:GetItem": 1, "dynamodb:PutItem": 1, "kms:GenerateRandom": 1,
    }
    assert (between.write_units, between.read_units) == (Decimal("1"), Decimal("0.5"))
    assert before.count() == 1  # the earlier snapshot did not change
    assert between.count(service="dynamodb") == 2


def test_snapshot_is_immutable() -> None:
    snapshot = MeterSnapshot(calls={CallKey("kms", "Decrypt", REGION): 2})
    with pytest.raises(TypeError):
        snapshot.calls[CallKey("kms", "Decrypt", REGION)] = 3  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.write_units = Decimal(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot - 1  # type: ignore[operator]


def test_reset_forgets_counts_but_stays_attached(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb"))
    dynamodb.put_item(TableName="postings", Item=_item("E2E-1"))
    meter.reset()
    assert (meter.count(), meter.write_units, meter.errors) == (0, Decimal(0), {})
    dynamodb.put_item(TableName="postings", Item=_item("E2E-2"))
    assert meter.count() == 1


def test_threads_are_counted_exactly(env: AwsEnvironment) -> None:
    threads, calls_each = 8, 25
    meter = ApiCallMeter()
    clients = [meter.attach(env.client("kms")) for _ in range(threads)]
    start = threading.Barrier(threads)

    def work(kms: Any) -> None:
        start.wait()
        for _ in range(calls_each):
            kms.generate_random(NumberOfBytes=8)

    workers = [threading.Thread(target=work, args=(kms,)) for kms in clients]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert meter.count(service="kms", operation="GenerateRandom") == threads * calls_each
    assert meter.snapshot().count_attempts() == threads * calls_each
