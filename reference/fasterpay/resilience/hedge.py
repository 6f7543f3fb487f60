"""Hedged reads: send a second copy of a slow *safe* read and take whichever answer comes first.

:func:`hedged_read` sends the primary request; if it has not answered after ``hedge_after_s`` (set it
near the call's p95: only the slowest few per cent are hedged), it sends the backup (a second attempt,
or the same read against a replica region) and returns the first successful answer. The other request
is cancelled if it has not started and otherwise ignored: a thread cannot be interrupted, so it runs to
its end and its answer is dropped. A primary that fails before ``hedge_after_s`` is hedged at once.

Hedge **only reads that are safe to send twice and that tolerate staleness**:

* a write sent twice is two writes: a hedged ``PutItem``, ``TransactWriteItems`` or ``SendMessage``
  doubles its side effects (two holds, two messages), so writes are refused;
* a read from a lagging replica may be stale (DynamoDB global tables replicate asynchronously unless
  configured for multi-region strong consistency, and an eventually consistent read may miss a write
  made a moment ago), so a strongly consistent read (``ConsistentRead=True``), or a read whose answer
  must come from the writer region (a balance before a debit, a payment's own status before a
  transition), is refused.

Good candidates: reference data (sort-code and BIC directories, scheme reachability, configuration),
and status queries answered by the scheme. :func:`check_hedgeable` applies these rules to an
operation name and its parameters and raises :class:`UnsafeHedgeError`.

Hedging costs requests: :class:`HedgeStats` counts the hedges sent; with ``hedge_after_s`` at the p95
about 5 % more requests go out. :func:`modelled_hedge` and :func:`evaluate_hedging` give the same rule
deterministically over modelled latencies, for the article's table.

Standard library only, so the module copies alone.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "HEDGEABLE_OPERATIONS",
    "HedgeEvaluation",
    "HedgeStats",
    "Hedged",
    "UnsafeHedgeError",
    "check_hedgeable",
    "evaluate_hedging",
    "hedged_read",
    "modelled_hedge",
]

T = TypeVar("T")

#: Reads that may be hedged (allow-list; anything else is refused). Transactions
#: (``TransactGetItems``) are left out: use them where the answer must be consistent.
HEDGEABLE_OPERATIONS = frozenset({
    "GetItem", "BatchGetItem", "Query", "Scan",          # DynamoDB, eventually consistent only
    "GetObject", "HeadObject",                           # S3
    "GetParameter", "GetParameters",                     # SSM Parameter Store
    "SchemeStatusQuery",                                  # a scheme status enquiry (e.g. pacs.028)
})

_SNAKE = re.compile(r"_([a-z0-9])")


class UnsafeHedgeError(ValueError):
    """The request must not be hedged (a write, or a read that must be consistent); send it once."""


def _operation_name(operation: str) -> str:
    if not isinstance(operation, str) or not operation:
        raise UnsafeHedgeError(f"Name the operation to hedge (e.g. 'GetItem'), got {operation!r}.")
    if "_" in operation or operation.islower():  # boto3's get_item -> GetItem
        operation = _SNAKE.sub(lambda m: m.group(1).upper(), operation)
        operation = operation[:1].upper() + operation[1:]
    return operation


def check_hedgeable(operation: str, params: Mapping[str, Any] | None = None) -> str:
    """Raise :class:`UnsafeHedgeError` unless ``operation`` with ``params`` is safe to send twice.

    Returns the operation's API name.

    Examples:
        >>> check_hedgeable("get_item", {"TableName": "sortcodes", "Key": {}})
        'GetItem'
        >>> check_hedgeable("PutItem")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fasterpay.resilience.hedge.UnsafeHedgeError: PutItem is not a hedgeable read: a hedged write doubles ...
        >>> check_hedgeable("GetItem", {"ConsistentRead": True})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fasterpay.resilience.hedge.UnsafeHedgeError: GetItem with ConsistentRead=True must come from the writer: ...
    """
    name = _operation_name(operation)
    if name not in HEDGEABLE_OPERATIONS:
        raise UnsafeHedgeError(
            f"{name} is not a hedgeable read: a hedged write doubles its side effects, and other reads "
            f"may need the writer region. Send it once (with retries), or hedge one of: "
            f"{', '.join(sorted(HEDGEABLE_OPERATIONS))}."
        )
    consistent = bool((params or {}).get("ConsistentRead"))
    if not consistent and name == "BatchGetItem":
        items = (params or {}).get("RequestItems") or {}
        consistent = any(isinstance(v, Mapping) and v.get("ConsistentRead") for v in items.values())
    if consistent:
        raise UnsafeHedgeError(
            f"{name} with ConsistentRead=True must come from the writer: a replica or a second copy may "
            f"answer with stale data. Read it once, or hedge only an eventually consistent read whose "
            f"staleness you accept."
        )
    return name


class HedgeStats:
    """Thread-safe counts: reads, hedges sent (the extra requests: the cost), and backup wins.

    Examples:
        >>> stats = HedgeStats()
        >>> stats.extra_request_share
        0.0
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reads = 0
        self.hedges = 0
        self.backup_wins = 0

    def _add(self, *, hedged: bool, backup_won: bool) -> None:
        with self._lock:
            self.reads += 1
            self.hedges += int(hedged)
            self.backup_wins += int(backup_won)

    @property
    def extra_request_share(self) -> float:
        """Hedges per read: the share of extra requests sent."""
        with self._lock:
            return self.hedges / self.reads if self.reads else 0.0


@dataclass(frozen=True)
class Hedged(Generic[T]):
    """The answer of a hedged read: its ``value``, which request gave it, and whether a hedge was sent."""

    value: T
    source: str  # "primary" or "backup"
    hedged: bool


def _delay(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds of at least 0, got {value!r}.")
    return float(value)


def hedged_read(
    primary: Callable[[], T],
    backup: Callable[[], T],
    *,
    hedge_after_s: float,
    operation: str,
    params: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
    executor: Executor | None = None,
    stats: HedgeStats | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Hedged[T]:
    """Call ``primary``; if it has not answered after ``hedge_after_s``, call ``backup`` too; first answer wins.

    ``operation`` and ``params`` describe the request and are checked by :func:`check_hedgeable`
    before anything is sent. ``timeout_s`` bounds the whole wait (pass ``deadline.remaining()``,
    measured with ``clock``): when it runs out, ``TimeoutError``. When both requests fail, the primary's
    error is raised. Pass an ``executor`` with at least two workers to reuse threads; otherwise a private
    one is made and shut down without waiting for the loser.

    Examples:
        >>> hedged_read(lambda: "from primary", lambda: "from backup", hedge_after_s=1.0,
        ...             operation="GetItem").value
        'from primary'
        >>> hedged_read(lambda: 1, lambda: 2, hedge_after_s=0.01, operation="PutItem")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fasterpay.resilience.hedge.UnsafeHedgeError: PutItem is not a hedgeable read: a hedged write doubles ...
    """
    check_hedgeable(operation, params)
    after = _delay("hedge_after_s", hedge_after_s)
    limit = None if timeout_s is None else _delay("timeout_s", timeout_s)
    end = None if limit is None else clock() + limit

    def left() -> float | None:
        return None if end is None else max(0.0, end - clock())

    def record(*, hedged: bool, backup_won: bool = False) -> None:
        if stats is not None:
            stats._add(hedged=hedged, backup_won=backup_won)

    pool = executor if executor is not None else ThreadPoolExecutor(max_workers=2, thread_name_prefix="hedge")
    try:
        first = pool.submit(primary)
        futures: dict[Future[T], str] = {first: "primary"}
        done, _ = wait([first], timeout=after if limit is None else min(after, limit))
        failed_fast = bool(done) and first.exception() is not None
        if failed_fast or (not done and (limit is None or after < limit)):
            futures[pool.submit(backup)] = "backup"
        hedged = len(futures) == 2
        errors: dict[str, BaseException] = {}
        pending = set(futures)
        while pending:
            for future in [f for f in pending if f.done()]:
                pending.discard(future)
                exc = future.exception()
                if exc is None:
                    for other in pending:
                        other.cancel()  # not started: never sent; running: its answer is ignored
                    record(hedged=hedged, backup_won=futures[future] == "backup")
                    return Hedged(future.result(), futures[future], hedged)
                errors[futures[future]] = exc
            if pending:
                done, _ = wait(pending, timeout=left(), return_when=FIRST_COMPLETED)
                if not done:
                    for future in pending:
                        future.cancel()
                    record(hedged=hedged)
                    raise TimeoutError(f"{operation}: no answer within {limit} s; answer the payment as timed out.")
        record(hedged=hedged)
        raise errors.get("primary") or errors["backup"]
    finally:
        if executor is None:
            pool.shutdown(wait=False, cancel_futures=True)


def modelled_hedge(primary_s: float, backup_s: float, hedge_after_s: float) -> tuple[float, bool]:
    """The latency of one hedged read and whether it was hedged, for modelled primary and backup times.

    The backup starts at ``hedge_after_s`` if the primary has not answered by then.

    Examples:
        >>> modelled_hedge(0.25, 0.5, 0.5)  # seconds: answered before the hedge
        (0.25, False)
        >>> modelled_hedge(2.0, 0.25, 0.5)  # hedged at 0.5 s, the backup answers 0.25 s later
        (0.75, True)
    """
    after = _delay("hedge_after_s", hedge_after_s)
    primary, backup = _delay("primary_s", primary_s), _delay("backup_s", backup_s)
    if primary <= after:
        return primary, False
    return min(primary, after + backup), True


@dataclass(frozen=True)
class HedgeEvaluation:
    """Modelled latencies of a run of hedged reads, and the hedges they sent."""

    latencies_s: tuple[float, ...]
    hedges: int

    @property
    def reads(self) -> int:
        return len(self.latencies_s)

    @property
    def extra_request_share(self) -> float:
        """Hedges per read."""
        return self.hedges / self.reads if self.reads else 0.0


def evaluate_hedging(primary_s: Iterable[float], backup_s: Iterable[float], hedge_after_s: float) -> HedgeEvaluation:
    """Apply :func:`modelled_hedge` pairwise: deterministic, no threads, no clock.

    Examples:
        >>> run = evaluate_hedging([0.25, 2.0], [0.25, 0.25], 0.5)
        >>> run.latencies_s, run.hedges, run.extra_request_share
        ((0.25, 0.75), 1, 0.5)
    """
    latencies: list[float] = []
    hedges = 0
    primaries, backups = list(primary_s), list(backup_s)
    if len(primaries) != len(backups):
        raise ValueError(f"Give one backup latency per primary: {len(primaries)} vs {len(backups)}.")
    for p, b in zip(primaries, backups, strict=True):
        latency, hedged = modelled_hedge(p, b, hedge_after_s)
        latencies.append(latency)
        hedges += int(hedged)
    return HedgeEvaluation(tuple(latencies), hedges)
