"""process_batch: partial batch failures, FIFO group order, poison isolation on moto, malformed events."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from fasterpay.agents.batch import MalformedEventError, PoisonRecordError, process_batch, process_batch_outcome


def _record(message_id: str, body: str, *, group: str | None = None, receives: int = 1) -> dict[str, Any]:
    attributes = {"ApproximateReceiveCount": str(receives)}
    if group is not None:
        attributes["MessageGroupId"] = group
    return {"messageId": message_id, "receiptHandle": f"rh-{message_id}", "body": body, "attributes": attributes,
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-west-2:123456789012:q" + (".fifo" if group else "")}


def _failing_on(*bad: str):
    calls: list[str] = []

    def handle(record: dict[str, Any]) -> None:
        calls.append(record["messageId"])
        if record["body"] in bad:
            raise RuntimeError(f"cannot book {record['body']}")
    return handle, calls


def test_partial_failures_are_reported_exactly_and_in_lambdas_shape() -> None:
    event = {"Records": [_record(f"m{n}", "bad" if n in (1, 3) else "ok") for n in range(5)]}
    handle, calls = _failing_on("bad")
    assert process_batch(event, handle) == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    assert calls == [f"m{n}" for n in range(5)]  # a standard queue: every record is tried


def test_all_good_is_an_empty_list() -> None:
    event = {"Records": [_record("a", "ok"), _record("b", "ok")]}
    assert process_batch(event, lambda record: None) == {"batchItemFailures": []}


def test_fifo_stops_the_failed_group_and_lets_other_groups_continue() -> None:
    plan = [("a", "ok"), ("a", "bad"), ("b", "ok"), ("a", "ok"), ("b", "ok"), ("c", "bad"), ("a", "ok")]
    event = {"Records": [_record(f"m{n}", body, group=group) for n, (group, body) in enumerate(plan)]}
    handle, calls = _failing_on("bad")
    outcome = process_batch_outcome(event, handle)  # FIFO detected from the .fifo ARN
    assert calls == ["m0", "m1", "m2", "m4", "m5"]  # m3 and m6 are behind m1 in group a: never processed
    assert outcome.succeeded == ["m0", "m2", "m4"]
    assert outcome.skipped == ["m3", "m6"]
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": m} for m in ("m1", "m3", "m5", "m6")]}
    whole, calls = _failing_on("bad")
    assert process_batch(event, whole, fifo_stop="batch")["batchItemFailures"] == [
        {"itemIdentifier": f"m{n}"} for n in range(1, 7)]
    assert calls == ["m0", "m1"]


def test_poison_is_reported_and_logged_once_with_its_receive_count(caplog: pytest.LogCaptureFixture) -> None:
    event = {"Records": [_record("good", "ok"), _record("p", "poison", receives=3)]}

    def handle(record: dict[str, Any]) -> None:
        if record["body"] == "poison":
            raise PoisonRecordError("not a pacs.008")
    with caplog.at_level(logging.WARNING, logger="fasterpay.agents.batch"):
        assert process_batch(event, handle, max_receive_count=3) == {"batchItemFailures": [{"itemIdentifier": "p"}]}
    assert len(caplog.records) == 1
    assert caplog.records[0].receive_count == 3 and caplog.records[0].poison is True
    assert "last before the dead-letter queue" in caplog.records[0].getMessage()
    assert process_batch(event, lambda r: None, is_poison=lambda r: r["body"] == "poison")["batchItemFailures"] == [
        {"itemIdentifier": "p"}]


@pytest.mark.parametrize(("event", "message"), [
    (None, "a mapping"),
    ({"records": []}, "no 'Records' list"),
    ({"Records": "x"}, "no 'Records' list"),
    ({"Records": [{"body": "x"}]}, "has no messageId"),
    ({"Records": [{"messageId": "a"}, {"messageId": "a"}]}, "appears twice"),
    ({"Records": [{"messageId": "a", "eventSource": "aws:kinesis"}]}, "not aws:sqs"),
    ({"Records": [{"messageId": "a", "eventSourceARN": "arn:aws:sqs:eu-west-2:1:q.fifo"}]}, "no MessageGroupId"),
])
def test_a_malformed_event_raises_so_the_whole_batch_retries(event: Any, message: str) -> None:
    with pytest.raises(MalformedEventError, match=message):
        process_batch(event, lambda record: None)


def test_poison_reaches_the_dlq_after_max_receive_count_while_good_messages_flow(env) -> None:
    from fasterpay.pipeline.runner import LocalRunner

    sqs = env.client("sqs")
    dlq_url = sqs.create_queue(QueueName="agents-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="agents", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
    poison = {4, 11, 17}
    for start in range(0, 30, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "MessageBody": json.dumps({"n": n, "poison": n in poison})} for n in range(start, start + 10)])
    processed: dict[int, int] = {}
    receives: dict[int, int] = {}

    def handle(record: dict[str, Any]) -> None:
        body = json.loads(record["body"])
        receives[body["n"]] = int(record["attributes"]["ApproximateReceiveCount"])
        if body["poison"]:
            raise PoisonRecordError("unreadable")
        processed[body["n"]] = processed.get(body["n"], 0) + 1

    runner = LocalRunner(sqs, {"q": url}, {"q": lambda event, context: process_batch(event, handle)},
                         region=env.region)
    runner.run_until_idle()
    assert processed == {n: 1 for n in range(30) if n not in poison}  # every good message exactly once
    assert {n: receives[n] for n in poison} == {n: 3 for n in poison}  # tried maxReceiveCount times
    in_dlq = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert sorted(json.loads(m["Body"])["n"] for m in in_dlq) == sorted(poison)
