"""The EMULATED global-table replication: lag, pause, tail, echoes and resync on two moto regions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from simulations.replication import (
    EchoFilter,
    StreamReplicator,
    create_replicated_table,
    enable_streams_on_moto,
    resync,
)
from simulations.scheme import VirtualClock

A, B = "eu-west-2", "eu-west-1"


@pytest.fixture(autouse=True)
def _streams_on_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's DynamoDB Streams need this with current botocore; scoped to the test (restored after)."""
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")


@pytest.fixture
def regions() -> Iterator[dict[str, Any]]:
    enable_streams_on_moto()
    from fasterpay.aws import open_environment

    with open_environment("moto", region=A) as env:
        ddb_a, ddb_b = env.client("dynamodb", region=A), env.client("dynamodb", region=B)
        for ddb in (ddb_a, ddb_b):
            create_replicated_table(ddb, "t")
        clock = VirtualClock(1000.0)
        echo_a, echo_b = EchoFilter(), EchoFilter()
        ab = StreamReplicator(ddb_a, ddb_b, env.client("dynamodbstreams", region=A), ["t"],
                              lag=lambda rng: 5.0, clock=clock, seed=1, source_echoes=echo_a, target_echoes=echo_b)
        ba = StreamReplicator(ddb_b, ddb_a, env.client("dynamodbstreams", region=B), ["t"],
                              lag=lambda rng: 5.0, clock=clock, seed=2, source_echoes=echo_b, target_echoes=echo_a)
        ab.start("TRIM_HORIZON")
        ba.start("TRIM_HORIZON")
        yield {"a": ddb_a, "b": ddb_b, "ab": ab, "ba": ba, "clock": clock, "echo_a": echo_a}


def _get(ddb: Any, pk: str) -> dict[str, Any] | None:
    return ddb.get_item(TableName="t", Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")


def _put(ddb: Any, pk: str, v: int) -> None:
    ddb.put_item(TableName="t", Item={"pk": {"S": pk}, "v": {"N": str(v)}})


def test_regions_are_isolated_and_the_write_arrives_after_its_lag(regions: dict[str, Any]) -> None:
    a, b, ab, clock = regions["a"], regions["b"], regions["ab"], regions["clock"]
    _put(a, "x", 1)
    assert _get(b, "x") is None
    assert ab.pump(clock()) == 0  # read, not yet due
    assert len(ab.backlog()) == 1 and ab.backlog()[0].committed_at == clock()
    clock.advance(4.9)
    assert ab.pump(clock()) == 0 and _get(b, "x") is None
    assert ab.lag_seconds(clock()) == pytest.approx(4.9)
    clock.advance(0.2)
    assert ab.pump(clock()) == 1
    assert _get(b, "x") == {"pk": {"S": "x"}, "v": {"N": "1"}}
    assert ab.lag_seconds(clock()) == 0.0


def test_last_writer_wins_and_deletes_replicate(regions: dict[str, Any]) -> None:
    a, b, ab, clock = regions["a"], regions["b"], regions["ab"], regions["clock"]
    _put(a, "x", 1)
    _put(a, "x", 2)
    _put(a, "y", 1)
    a.delete_item(TableName="t", Key={"pk": {"S": "y"}})
    ab.pump(clock())
    clock.advance(6)
    ab.pump(clock())
    assert _get(b, "x")["v"] == {"N": "2"} and _get(b, "y") is None


def test_pause_builds_a_backlog_and_resume_drains_it(regions: dict[str, Any]) -> None:
    a, b, ab, clock = regions["a"], regions["b"], regions["ab"], regions["clock"]
    ab.pause()
    for n in range(5):
        _put(a, f"k{n}", n)
        ab.pump(clock())
        clock.advance(10)
    assert len(ab.backlog()) == 5 and all(_get(b, f"k{n}") is None for n in range(5))
    assert ab.lag_seconds(clock()) == pytest.approx(50.0)  # the RPO grows while paused
    ab.resume()
    assert ab.pump(clock()) == 5
    assert all(_get(b, f"k{n}") is not None for n in range(5)) and not ab.backlog()


def test_take_tail_returns_what_was_never_applied_and_removes_it(regions: dict[str, Any]) -> None:
    a, b, ab, clock = regions["a"], regions["b"], regions["ab"], regions["clock"]
    _put(a, "applied", 1)
    ab.pump(clock())
    clock.advance(6)
    ab.pump(clock())
    ab.disconnect()
    _put(a, "read", 2)
    ab.pump(clock())  # read into the backlog, not applied (cut)
    _put(a, "unread", 3)  # still only in the source stream
    tail = ab.take_tail(clock())
    assert sorted(r.keys["pk"]["S"] for r in tail) == ["read", "unread"]
    assert not ab.backlog()
    ab.reconnect()
    clock.advance(10)
    assert ab.pump(clock()) == 0 and _get(b, "read") is None  # never applied blindly


def test_echoes_are_not_sent_back(regions: dict[str, Any]) -> None:
    a, b, ab, ba, clock = regions["a"], regions["b"], regions["ab"], regions["ba"], regions["clock"]
    _put(a, "x", 1)
    ab.pump(clock())
    clock.advance(6)
    ab.pump(clock())
    ba.pump(clock())
    assert not ba.backlog()  # B's stream has the applied write, recognised as an echo
    _put(b, "x", 7)  # a real write in B does go back
    ba.pump(clock())
    assert len(ba.backlog()) == 1


def test_resync_makes_the_target_equal_and_marks_echoes(regions: dict[str, Any]) -> None:
    a, b, ab, clock = regions["a"], regions["b"], regions["ab"], regions["clock"]
    _put(b, "only-in-b", 1)
    _put(a, "stale", 1)
    _put(b, "stale", 9)
    writes = resync(b, a, ["t"], key_names={}, echoes=regions["echo_a"])
    assert writes == 2
    assert _get(a, "only-in-b") is not None and _get(a, "stale")["v"] == {"N": "9"}
    _put(a, "gone", 1)
    resync(b, a, ["t"], key_names={}, echoes=regions["echo_a"])
    assert _get(a, "gone") is None
    ab.pump(clock())
    keys = sorted(r.keys["pk"]["S"] for r in ab.backlog())
    assert keys == ["gone", "stale"]  # the two real writes in A; the resync's writes are echoes
