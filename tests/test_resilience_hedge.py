"""Hedged safe reads (fasterpay.resilience.hedge): threads coordinated by events, never by sleeps."""

from __future__ import annotations

import ast
import math
import random
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fasterpay.resilience.hedge import (
    HEDGEABLE_OPERATIONS,
    HedgeStats,
    UnsafeHedgeError,
    check_hedgeable,
    evaluate_hedging,
    hedged_read,
    modelled_hedge,
)

MODULE = Path(__file__).resolve().parents[1] / "reference" / "fasterpay" / "resilience" / "hedge.py"
SAFETY = 10.0  # seconds an event wait may take before the test fails instead of hanging


class Call:
    """A fake request: records that it was sent, optionally waits for a gate, then answers or raises."""

    def __init__(self, value: object = None, *, gate: threading.Event | None = None,
                 error: BaseException | None = None, on_start: Callable[[], None] | None = None) -> None:
        self.value, self.gate, self.error, self.on_start = value, gate, error, on_start
        self.started = threading.Event()

    def __call__(self) -> object:
        self.started.set()
        if self.on_start is not None:
            self.on_start()
        if self.gate is not None:
            assert self.gate.wait(SAFETY), "the test never opened the gate"
        if self.error is not None:
            raise self.error
        return self.value


@pytest.fixture
def gates() -> list[threading.Event]:
    """Events the test opens; all opened at the end so no thread is left waiting."""
    made: list[threading.Event] = []
    yield made
    for gate in made:
        gate.set()


def _gate(gates: list[threading.Event]) -> threading.Event:
    gate = threading.Event()
    gates.append(gate)
    return gate


# -- what may be hedged -------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["PutItem", "put_item", "UpdateItem", "DeleteItem", "TransactWriteItems",
                                       "BatchWriteItem", "SendMessage", "SendMessageBatch", "TransactGetItems",
                                       "Decrypt", "GenerateDataKey", "ReceiveMessage"])
def test_writes_and_unlisted_operations_are_refused(operation: str) -> None:
    with pytest.raises(UnsafeHedgeError, match="doubles its side effects"):
        check_hedgeable(operation)


@pytest.mark.parametrize("bad", ["", None, 3])
def test_an_unnamed_operation_is_refused(bad: object) -> None:
    with pytest.raises(UnsafeHedgeError):
        check_hedgeable(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("operation", "params"), [
    ("GetItem", {"ConsistentRead": True}),
    ("query", {"ConsistentRead": True}),
    ("BatchGetItem", {"RequestItems": {"sortcodes": {"Keys": [], "ConsistentRead": True}}}),
])
def test_strongly_consistent_reads_are_refused(operation: str, params: dict[str, object]) -> None:
    with pytest.raises(UnsafeHedgeError, match="stale"):
        check_hedgeable(operation, params)


@pytest.mark.parametrize(("operation", "name"), [("get_item", "GetItem"), ("GetItem", "GetItem"), ("query", "Query"),
                                                 ("batch_get_item", "BatchGetItem"), ("get_parameter", "GetParameter")])
def test_eventually_consistent_reads_are_hedgeable(operation: str, name: str) -> None:
    assert check_hedgeable(operation, {"ConsistentRead": False}) == name
    assert name in HEDGEABLE_OPERATIONS


def test_a_refused_hedge_sends_nothing() -> None:
    primary, backup = Call("p"), Call("b")
    with pytest.raises(UnsafeHedgeError):
        hedged_read(primary, backup, hedge_after_s=0.0, operation="TransactWriteItems")
    with pytest.raises(UnsafeHedgeError):
        hedged_read(primary, backup, hedge_after_s=0.0, operation="GetItem", params={"ConsistentRead": True})
    assert not primary.started.is_set() and not backup.started.is_set()


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "1"])
def test_bad_hedge_delays_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        hedged_read(Call(1), Call(2), hedge_after_s=bad, operation="GetItem")  # type: ignore[arg-type]


# -- the threaded hedged read -------------------------------------------------------------------------
def test_a_fast_primary_is_not_hedged() -> None:
    stats = HedgeStats()
    backup = Call("b")
    got = hedged_read(Call("p"), backup, hedge_after_s=SAFETY, operation="GetItem", stats=stats)
    assert (got.value, got.source, got.hedged) == ("p", "primary", False)
    assert not backup.started.is_set()
    assert (stats.reads, stats.hedges, stats.extra_request_share) == (1, 0, 0.0)


def test_a_slow_primary_is_hedged_and_the_backup_answers(gates: list[threading.Event]) -> None:
    stats = HedgeStats()
    primary = Call("p", gate=_gate(gates))  # never answers during the read
    got = hedged_read(primary, Call("b"), hedge_after_s=0.0, operation="GetItem", stats=stats)
    assert (got.value, got.source, got.hedged) == ("b", "backup", True)
    assert (stats.reads, stats.hedges, stats.backup_wins) == (1, 1, 1)


def test_the_primary_can_still_win_after_the_hedge(gates: list[threading.Event]) -> None:
    release_primary, hold_backup = _gate(gates), _gate(gates)
    primary = Call("p", gate=release_primary)
    backup = Call("b", gate=hold_backup, on_start=release_primary.set)  # the hedge goes out, then the primary answers
    stats = HedgeStats()
    got = hedged_read(primary, backup, hedge_after_s=0.0, operation="GetItem", stats=stats)
    assert (got.value, got.source, got.hedged) == ("p", "primary", True)
    assert backup.started.is_set()
    assert (stats.hedges, stats.backup_wins) == (1, 0)


def test_a_primary_that_fails_fast_is_hedged_at_once() -> None:
    stats = HedgeStats()
    got = hedged_read(Call(error=ConnectionError("reset")), Call("b"), hedge_after_s=SAFETY, operation="GetItem",
                      stats=stats)
    assert (got.value, got.source, got.hedged) == ("b", "backup", True)
    assert stats.hedges == 1


def test_when_both_fail_the_primary_error_is_raised() -> None:
    with pytest.raises(ConnectionError, match="primary"):
        hedged_read(Call(error=ConnectionError("primary")), Call(error=KeyError("backup")), hedge_after_s=0.0,
                    operation="GetItem")


def test_no_time_at_all_times_out_without_a_hedge(gates: list[threading.Event]) -> None:
    stats = HedgeStats()
    backup = Call("b")
    with pytest.raises(TimeoutError, match="timed out"):
        hedged_read(Call("p", gate=_gate(gates)), backup, hedge_after_s=0.0, timeout_s=0.0, operation="GetItem",
                    stats=stats)
    assert not backup.started.is_set()
    assert (stats.reads, stats.hedges) == (1, 0)


def test_the_overall_limit_is_read_from_the_injected_clock(gates: list[threading.Event]) -> None:
    times = iter([0.0])
    clock = lambda: next(times, 100.0)  # noqa: E731 - the limit starts at 0, every later reading is 100 s on
    with pytest.raises(TimeoutError):
        hedged_read(Call("p", gate=_gate(gates)), Call("b", gate=_gate(gates)), hedge_after_s=0.0, timeout_s=5.0,
                    operation="GetItem", clock=clock)


def test_a_shared_executor_is_reused_and_left_running(gates: list[threading.Event]) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(3):
            got = hedged_read(Call("p", gate=_gate(gates)), Call("b"), hedge_after_s=0.0, operation="Query",
                              executor=pool)
            assert got.value == "b"
            gates[-1].set()  # let the slow primary finish, freeing its worker
        assert pool.submit(lambda: "still open").result(timeout=SAFETY) == "still open"


# -- the modelled evaluator ---------------------------------------------------------------------------
def test_modelled_hedge_rule() -> None:
    assert modelled_hedge(0.004, 0.1, 0.009) == (0.004, False)
    assert modelled_hedge(0.009, 0.1, 0.009) == (0.009, False)  # answered exactly at the threshold: no hedge
    latency, hedged = modelled_hedge(0.050, 0.005, 0.009)
    assert hedged and latency == pytest.approx(0.014)
    assert modelled_hedge(0.012, 0.050, 0.009) == (0.012, True)  # hedged, but the primary still wins
    with pytest.raises(ValueError):
        modelled_hedge(-1.0, 0.0, 0.0)


def test_evaluation_never_slower_and_counts_exactly_the_hedges() -> None:
    rng = random.Random(3)
    primary = [rng.lognormvariate(1.4, 0.5) / 1000 for _ in range(2_000)]
    backup = [rng.lognormvariate(1.4, 0.5) / 1000 for _ in range(2_000)]
    threshold = sorted(primary)[1_899]
    run = evaluate_hedging(primary, backup, threshold)
    assert all(h <= p for h, p in zip(run.latencies_s, primary, strict=True))
    assert run.hedges == sum(p > threshold for p in primary) == 100
    assert run.extra_request_share == pytest.approx(0.05)
    with pytest.raises(ValueError, match="one backup latency per primary"):
        evaluate_hedging([0.1, 0.2], [0.1], 0.05)


# -- the pattern copies alone -------------------------------------------------------------------------
def test_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: the module must copy alone"
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in sys.stdlib_module_names, name
