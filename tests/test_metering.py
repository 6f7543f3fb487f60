"""Tests for fasterpay.metering: calls, attempts, errors, DynamoDB units from item sizes, SQS chunks."""

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
from hypothesis import given, settings
from hypothesis import strategies as st

from fasterpay.aws import AwsEnvironment
from fasterpay.metering import (
    SQS_CHUNK_BYTES,
    ApiCallMeter,
    CallKey,
    MeterSnapshot,
    dynamodb_item_size,
    dynamodb_read_units,
    dynamodb_units,
    sqs_requests,
)

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


# DynamoDB units from item sizes.
def _big(end_to_end_id: str, memo_bytes: int) -> dict[str, Any]:
    """An item of ``10 + len(end_to_end_id) + 4 + memo_bytes`` bytes."""
    return {"EndToEndId": {"S": end_to_end_id}, "Memo": {"S": "x" * memo_bytes}}


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({"S": "abc"}, 3), ({"S": "£1"}, 3), ({"S": ""}, 0),
        ({"N": "7"}, 2), ({"N": "-12.50"}, 3), ({"N": "0.000125"}, 3), ({"N": "1250.75"}, 4),
        ({"N": "12345678901234567890"}, 11), ({"N": "1E+3"}, 2),
        ({"B": b"\x00" * 16}, 16), ({"BOOL": False}, 1), ({"NULL": True}, 1),
        ({"SS": ["fps", "gbp"]}, 6), ({"NS": ["1", "22"]}, 4), ({"BS": [b"ab", b"c"]}, 3),
        ({"L": []}, 3), ({"L": [{"S": "debit"}, {"N": "-3"}]}, 3 + 6 + 3),
        ({"M": {}}, 3), ({"M": {"Bic": {"S": "NWBKGB2L"}}}, 3 + 1 + 3 + 8),
    ],
)
def test_attribute_sizes_follow_dynamodbs_rule(value: dict[str, Any], size: int) -> None:
    assert dynamodb_item_size({"Attr": value}) == len("Attr") + size


@pytest.mark.parametrize(
    ("operation", "params", "writes"),
    [
        ("PutItem", {"TableName": "t", "Item": _big("E2E-1", 3000)}, "3"),  # 3019 bytes
        ("PutItem", {"TableName": "t", "Item": _big("E2E-1", 1005)}, "1"),  # 1024 bytes
        ("PutItem", {"TableName": "t", "Item": _big("E2E-1", 1006)}, "2"),  # 1025 bytes
        ("TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": "t", "Item": _big("E2E-1", 10)}},
            {"Put": {"TableName": "t", "Item": _big("E2E-2", 10)}}]}, "4"),
        ("TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": "t", "Item": _big("E2E-1", 3000)}},
            {"Update": {"TableName": "t", "Key": _item("E2E-2"), "UpdateExpression": "SET m = :m",
                        "ExpressionAttributeValues": {":m": {"S": "x" * 2000}}}},
            {"Delete": {"TableName": "t", "Key": _item("E2E-3")}},
            {"ConditionCheck": {"TableName": "t", "Key": _item("E2E-4"),
                                "ConditionExpression": "attribute_exists(EndToEndId)"}}]}, "14"),
        ("UpdateItem", {"TableName": "t", "Key": _item("E2E-1"), "UpdateExpression": "SET m = :m",
                        "ExpressionAttributeValues": {":m": {"S": "x" * 2000}}}, "2"),
        ("UpdateItem", {"TableName": "t", "Key": _item("E2E-1"),
                        "AttributeUpdates": {"Memo": {"Value": {"S": "x" * 1500}}}}, "2"),
        ("DeleteItem", {"TableName": "t", "Key": _item("E2E-1")}, "1"),
        ("BatchWriteItem", {"RequestItems": {"t": [
            {"PutRequest": {"Item": _big("E2E-1", 3000)}},
            {"DeleteRequest": {"Key": _item("E2E-2")}}]}}, "4"),
    ],
)
def test_write_units_come_from_item_sizes(operation: str, params: dict[str, Any], writes: str) -> None:
    assert dynamodb_units(operation, params)[0] == Decimal(writes)


_ITEM_5KB = _big("E2E-big", 5000)  # 5021 bytes: two 4 KB read units


@pytest.mark.parametrize(
    ("operation", "params", "response", "reads"),
    [
        ("GetItem", {"ConsistentRead": True}, {"Item": _ITEM_5KB}, "2"),
        ("GetItem", {}, {"Item": _ITEM_5KB}, "1"),
        ("GetItem", {"ConsistentRead": True}, {}, "1"),  # nothing found: still one unit
        ("GetItem", {}, {}, "0.5"),
        ("Query", {"ConsistentRead": True}, {"Items": [_big(f"E2E-{n}", 1005) for n in range(10)]}, "3"),
        ("Scan", {}, {"Items": []}, "0.5"),
        ("BatchGetItem", {"RequestItems": {"t": {"Keys": [_item("E2E-big"), _item("E2E-none")],
                                                 "ConsistentRead": True}}},
         {"Responses": {"t": [_ITEM_5KB]}}, "3"),
        ("BatchGetItem", {"RequestItems": {"t": {"Keys": [_item("E2E-big"), _item("E2E-later")]}}},
         {"Responses": {"t": [_ITEM_5KB]}, "UnprocessedKeys": {"t": {"Keys": [_item("E2E-later")]}}},
         "1"),
        ("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "t", "Key": _item("E2E-big")}},
                                                {"Get": {"TableName": "t", "Key": _item("E2E-none")}}]},
         {"Responses": [{"Item": _ITEM_5KB}, {}]}, "6"),
    ],
)
def test_read_units_come_from_the_items_returned(
    operation: str, params: dict[str, Any], response: dict[str, Any], reads: str
) -> None:
    assert dynamodb_read_units(operation, params, response) == Decimal(reads)


def _mixed_item(memo_bytes: int) -> dict[str, Any]:
    """Every kind of value; 115 bytes counted by hand before the memo."""
    return {
        "EndToEndId": {"S": "E2E-mixed"},  # 10 + 9
        "Amount": {"N": "1250.75"},  # 6 + 6 digits / 2 + 1
        "Token": {"B": b"\x00" * 16},  # 5 + 16
        "Settled": {"BOOL": True},  # 7 + 1
        "Reason": {"NULL": True},  # 6 + 1
        "Legs": {"L": [{"S": "debit"}, {"N": "-3"}]},  # 4 + 3 + (1 + 5) + (1 + 2)
        "Party": {"M": {"Bic": {"S": "NWBKGB2L"}}},  # 5 + 3 + (1 + 3 + 8)
        "Tags": {"SS": ["fps", "gbp"]},  # 4 + 6
        "Memo": {"S": "x" * memo_bytes},  # 4 + memo
    }


def test_moto_calls_are_metered_by_the_item_size_rule(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb"))

    dynamodb.put_item(TableName="postings", Item=_mixed_item(909))  # 1024 bytes
    assert (meter.write_units, meter.read_units) == (Decimal(1), Decimal(0))
    dynamodb.get_item(TableName="postings", Key=_item("E2E-mixed"), ConsistentRead=True)
    assert meter.read_units == Decimal(1)

    dynamodb.put_item(TableName="postings", Item=_mixed_item(910))  # 1025 bytes
    assert meter.write_units == Decimal(1 + 2)
    dynamodb.put_item(TableName="postings", Item=_big("E2E-big", 5000))  # 5021 bytes
    assert meter.write_units == Decimal(1 + 2 + 5)
    dynamodb.get_item(TableName="postings", Key=_item("E2E-big"), ConsistentRead=True)
    dynamodb.get_item(TableName="postings", Key=_item("E2E-big"))
    assert meter.read_units == Decimal(1 + 2 + 1)


def test_a_3_kb_put_is_3_write_units_and_a_small_transaction_4(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb"))
    dynamodb.put_item(TableName="postings", Item=_big("E2E-1", 3000))
    assert meter.write_units == Decimal(3)
    meter.reset()
    dynamodb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "postings", "Item": _item("E2E-2")}},
        {"Put": {"TableName": "postings", "Item": _item("E2E-3")}},
    ])
    assert meter.write_units == Decimal(4)


def test_a_query_of_ten_1_kb_items_is_3_read_units(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb"))
    dynamodb.create_table(
        TableName="statements", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "AccountId", "KeyType": "HASH"},
                   {"AttributeName": "Seq", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "AccountId", "AttributeType": "S"},
                              {"AttributeName": "Seq", "AttributeType": "N"}],
    )
    for n in range(10):  # 9 + 2 + 3 + 2 + 4 + 1004 = 1024 bytes each
        dynamodb.put_item(TableName="statements", Item={
            "AccountId": {"S": "A1"}, "Seq": {"N": str(n)}, "Memo": {"S": "x" * 1004}})
    assert meter.write_units == Decimal(10)

    def query(**consistency: bool) -> Decimal:
        before = meter.snapshot()
        reply = dynamodb.query(TableName="statements", KeyConditionExpression="AccountId = :a",
                               ExpressionAttributeValues={":a": {"S": "A1"}}, **consistency)
        assert reply["Count"] == 10
        return (meter.snapshot() - before).read_units

    assert query(ConsistentRead=True) == Decimal(3)  # 10,240 bytes: three 4 KB units
    assert query() == Decimal("1.5")


def test_batch_and_transactional_reads_are_metered_per_item(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb"))
    dynamodb.put_item(TableName="postings", Item=_big("E2E-big", 5000))
    meter.reset()

    dynamodb.batch_get_item(RequestItems={"postings": {
        "Keys": [_item("E2E-big"), _item("E2E-none")], "ConsistentRead": True}})
    assert meter.read_units == Decimal(2 + 1)
    dynamodb.transact_get_items(TransactItems=[
        {"Get": {"TableName": "postings", "Key": _item("E2E-big")}},
        {"Get": {"TableName": "postings", "Key": _item("E2E-none")}},
    ])
    assert meter.read_units == Decimal(3 + 4 + 2)


def test_units_are_kept_per_table(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb"))
    dynamodb.create_table(
        TableName="outbox", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "EventId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "EventId", "AttributeType": "S"}],
    )
    before = meter.snapshot()
    dynamodb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "postings", "Item": _big("E2E-1", 3000)}},
        {"Put": {"TableName": "outbox", "Item": {"EventId": {"S": "EV-1"}}}},
    ])
    dynamodb.get_item(TableName="outbox", Key={"EventId": {"S": "EV-1"}}, ConsistentRead=True)
    between = meter.snapshot() - before

    assert between.write_units_by_table == {"postings": Decimal(6), "outbox": Decimal(2)}
    assert between.read_units_by_table == {"outbox": Decimal(1)}
    assert (between.write_units, between.read_units) == (Decimal(8), Decimal(1))


def test_failed_reads_cost_nothing_and_failed_writes_are_charged(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb", config=NO_RETRIES))
    dynamodb.put_item(TableName="postings", Item=_big("E2E-1", 3000))
    with pytest.raises(ClientError):
        dynamodb.put_item(TableName="postings", Item=_big("E2E-1", 3000),
                          ConditionExpression="attribute_not_exists(EndToEndId)")
    with pytest.raises(ClientError):
        dynamodb.get_item(TableName="missing", Key=_item("E2E-1"))
    assert (meter.write_units, meter.read_units) == (Decimal(6), Decimal(0))


def test_the_resource_layer_is_sized_in_botocores_typed_form(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    meter.attach_session(env.session)
    table = env.session.resource("dynamodb").Table("postings")
    table.put_item(Item={"EndToEndId": "E2E-big", "Memo": "x" * 5000, "Amount": Decimal("12.5")})
    table.get_item(Key={"EndToEndId": "E2E-big"}, ConsistentRead=True)
    assert (meter.write_units, meter.read_units) == (Decimal(5), Decimal(2))


# SQS: one request per 64 KB chunk.
@pytest.mark.parametrize(
    ("operation", "params", "requests"),
    [
        ("SendMessage", {"MessageBody": "x" * SQS_CHUNK_BYTES}, 1),
        ("SendMessage", {"MessageBody": "x" * (SQS_CHUNK_BYTES + 1)}, 2),
        ("SendMessage", {"MessageBody": "x" * 256 * 1024}, 4),
        ("SendMessage", {"MessageBody": "x" * (SQS_CHUNK_BYTES - 10), "MessageAttributes": {
            "Scheme": {"DataType": "String", "StringValue": "FPS"}}}, 2),  # 6 + 6 + 3 more bytes
        ("SendMessageBatch", {"Entries": [{"Id": str(n), "MessageBody": "x" * 10_000}
                                          for n in range(10)]}, 2),
        ("SendMessage", {"MessageBody": ""}, 1),
        ("DeleteMessage", {"ReceiptHandle": "r"}, 1),
        ("ReceiveMessage", {}, 1),
    ],
)
def test_sqs_requests_are_counted_per_64_kb_chunk(
    operation: str, params: dict[str, Any], requests: int
) -> None:
    assert sqs_requests(operation, params) == requests


def test_received_messages_are_sized_from_the_response() -> None:
    reply = {"Messages": [{"Body": "x" * 40_000}, {"Body": "y" * 40_000, "MessageAttributes": {
        "Trace": {"DataType": "Binary", "BinaryValue": b"\x01" * 100}}}]}
    assert sqs_requests("ReceiveMessage", {}, reply) == 2
    assert sqs_requests("ReceiveMessage", {}, {}) == 1  # an empty receive is still a request


def test_meter_counts_sqs_chunks_of_real_calls(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    sqs = meter.attach(env.client("sqs"))
    queue = sqs.create_queue(QueueName="payments")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="x" * 100_000)
    handle = sqs.receive_message(QueueUrl=queue)["Messages"][0]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=handle)
    sqs.receive_message(QueueUrl=queue)

    assert meter.count(service="sqs") == 5
    assert meter.sqs_requests == 1 + 2 + 2 + 1 + 1
    meter.reset()
    assert meter.sqs_requests == 0


def test_unprocessed_batch_writes_are_taken_back(env: AwsEnvironment) -> None:
    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb"))
    left_over = {"PutRequest": {"Item": _big("E2E-1", 3000)}}

    def unprocessed(parsed: dict[str, Any], **_: Any) -> None:  # moto processes everything
        parsed["UnprocessedItems"] = {"postings": [left_over]}

    dynamodb.meta.events.register("after-call.dynamodb.BatchWriteItem", unprocessed)
    dynamodb.batch_write_item(RequestItems={"postings": [
        left_over, {"PutRequest": {"Item": _item("E2E-2")}}]})
    assert meter.write_units == Decimal(1)
    assert meter.snapshot().write_units_by_table == {"postings": Decimal(1)}


@settings(max_examples=50, deadline=None)
@given(memo=st.integers(min_value=0, max_value=20_000), body=st.integers(min_value=0, max_value=300_000))
def test_units_round_up_per_unit_of_size(memo: int, body: int) -> None:
    size = len("EndToEndId") + len("E2E-1") + len("Memo") + memo
    put = {"TableName": "t", "Item": _big("E2E-1", memo)}
    assert dynamodb_units("PutItem", put)[0] == max(1, -(-size // 1024))
    assert dynamodb_units("TransactWriteItems", {"TransactItems": [{"Put": put}]})[0] == 2 * max(1, -(-size // 1024))
    assert dynamodb_read_units("GetItem", {"ConsistentRead": True}, {"Item": put["Item"]}) == max(1, -(-size // 4096))
    assert sqs_requests("SendMessage", {"MessageBody": "x" * body}) == max(1, -(-body // SQS_CHUNK_BYTES))


def test_snapshots_add_and_survive_pickling(env: AwsEnvironment) -> None:
    """A run split across processes sends its meters back pickled and adds them up."""
    import pickle

    meter = ApiCallMeter()
    dynamodb = meter.attach(env.client("dynamodb"))
    dynamodb.put_item(TableName="postings", Item=_item("E2E-1"))
    first = meter.snapshot()
    dynamodb.get_item(TableName="postings", Key=_item("E2E-1"))
    second = meter.snapshot() - first

    back = pickle.loads(pickle.dumps(first))
    assert back == first and back.by_operation() == {"dynamodb:PutItem": 1}
    total = back + second
    assert total.by_operation() == {"dynamodb:GetItem": 1, "dynamodb:PutItem": 1}
    assert (total.write_units, total.read_units) == (Decimal("1"), Decimal("0.5"))
    assert total.write_units_by_table == first.write_units_by_table


def test_kinesis_put_payload_units_count_written_records_per_25_kb(env: AwsEnvironment) -> None:
    kinesis = env.client("kinesis")
    kinesis.create_stream(StreamName="status", ShardCount=1)
    meter = ApiCallMeter()
    meter.attach(kinesis)
    kinesis.put_record(StreamName="status", Data=b"x" * (25 * 1024), PartitionKey="a")  # 25 KB + key: 2 units
    kinesis.put_records(StreamName="status", Records=[{"Data": b"{}", "PartitionKey": str(n)} for n in range(3)])
    kinesis.list_shards(StreamName="status")
    snapshot = meter.snapshot()
    assert snapshot.kinesis_put_units == 5
    assert (snapshot - snapshot).kinesis_put_units == 0 and (snapshot + snapshot).kinesis_put_units == 10
    meter.reset()
    assert meter.snapshot().kinesis_put_units == 0


def test_kinesis_records_that_failed_are_not_counted() -> None:
    from fasterpay.metering import kinesis_put_units

    records = [{"Data": b"a", "PartitionKey": "k"}] * 3
    answer = {"FailedRecordCount": 1, "Records": [{"SequenceNumber": "1"}, {"ErrorCode": "InternalFailure"},
                                                  {"SequenceNumber": "2"}]}
    assert kinesis_put_units("PutRecords", {"Records": records}, answer) == 2
    assert kinesis_put_units("GetRecords", {"ShardIterator": "x"}) == 0
