"""Guards that keep the bill bounded when something goes wrong: retries, log volume, a client's spend.

Three ways a payments platform runs up cost without doing more business:

* **Runaway retries.** Every layer retries (the SDK, the handler, the queue's redelivery), so one slow
  dependency multiplies its own load. :class:`RetryBudget` allows retries only as a share of first
  attempts (the SDK's "standard" retry quota and gRPC's retry throttling work the same way): under a
  storm the extra calls are bounded by ``ratio`` × requests + ``minimum``, not by attempts × requests.
* **Log floods.** A failing dependency logs an error per record, with the record. :class:`LogBudget`
  caps the bytes one invocation may log; what it drops is counted and reported in one summary line, so
  a flood is visible without being paid for line by line.
* **Denial of wallet.** A client (or an attacker with a client's key) submits as fast as the platform
  scales. :class:`ClientAllowance` refuses work beyond a client's rate and daily count *before* any AWS
  call is made, so a refused submission costs nothing but the check.

Each takes its clock as an argument, so tests and simulations drive time.

Examples:
    >>> budget = RetryBudget(ratio=0.1, minimum=2)
    >>> [budget.request() for _ in range(10)] and [budget.can_retry() for _ in range(5)]
    [True, True, True, False, False]
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["AllowanceExceededError", "ClientAllowance", "LogBudget", "RetryBudget"]


class RetryBudget:
    """Retries allowed as a share of requests: ``minimum`` + ``ratio`` × first attempts so far.

    Call :meth:`request` once per first attempt and :meth:`can_retry` before each retry; a ``False``
    means fail now (let the queue redeliver later) instead of adding load to a dependency that is
    already failing. The budget is per process (per Lambda execution environment).
    """

    def __init__(self, *, ratio: float = 0.1, minimum: int = 10) -> None:
        if not 0 <= ratio <= 1:
            raise ValueError(f"ratio must be between 0 and 1 (a share of requests), got {ratio}")
        if minimum < 0:
            raise ValueError(f"minimum must be >= 0, got {minimum}")
        self.ratio = ratio
        self.minimum = minimum
        self.requests = 0
        self.retries = 0
        self.refused = 0

    def request(self) -> bool:
        """Count a first attempt (always allowed)."""
        self.requests += 1
        return True

    def can_retry(self) -> bool:
        """True, and counted, if a retry is within budget; False (counted as refused) if not."""
        if self.retries < self.minimum + self.ratio * self.requests:
            self.retries += 1
            return True
        self.refused += 1
        return False

    def call(self, operation: Callable[[], Any], *, retryable: Callable[[BaseException], bool],
             attempts: int = 3, sleep: Callable[[float], None] = time.sleep, base_delay: float = 0.05) -> Any:
        """Run ``operation``, retrying ``retryable`` errors with exponential back-off while the budget allows.

        Examples:
            >>> RetryBudget().call(lambda: "ok", retryable=lambda e: True)
            'ok'
        """
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.request()
        for attempt in range(attempts):
            try:
                return operation()
            except Exception as exc:
                if attempt + 1 == attempts or not retryable(exc) or not self.can_retry():
                    raise
                sleep(base_delay * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class LogBudget:
    """At most ``max_bytes`` of log lines per invocation; the rest counted, then summarised in one line.

    ``reset`` at the start of each invocation. Lines at ``ERROR`` are kept while ``error_reserve``
    bytes remain even when the INFO share is spent, so the first errors of a flood are always seen.
    """

    stream: TextIO
    max_bytes: int = 16_384
    error_reserve: int = 4_096
    written: int = 0
    dropped_lines: int = 0
    dropped_bytes: int = 0
    _errors_written: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or not 0 <= self.error_reserve <= self.max_bytes:
            raise ValueError("max_bytes must be > 0 and error_reserve between 0 and max_bytes")

    def write(self, record: dict[str, Any], *, level: str = "INFO") -> bool:
        """Write ``record`` as one JSON line if the budget allows; returns whether it was written."""
        line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
        size = len(line.encode("utf-8"))
        ordinary_room = self.max_bytes - self.error_reserve
        if level == "ERROR":
            fits = self.written + size <= self.max_bytes
        else:
            fits = self.written - self._errors_written + size <= ordinary_room and self.written + size <= self.max_bytes
        if not fits:
            self.dropped_lines += 1
            self.dropped_bytes += size
            return False
        self.stream.write(line)
        self.written += size
        if level == "ERROR":
            self._errors_written += size
        return True

    def reset(self) -> int:
        """End the invocation: write one summary line if anything was dropped; returns the bytes written."""
        written = self.written
        if self.dropped_lines:
            summary = json.dumps({"level": "WARNING", "message": "log budget spent: lines dropped",
                                  "dropped_lines": self.dropped_lines, "dropped_bytes": self.dropped_bytes},
                                 separators=(",", ":")) + "\n"
            self.stream.write(summary)
            written += len(summary.encode("utf-8"))
        self.written = self.dropped_lines = self.dropped_bytes = self._errors_written = 0
        return written


class AllowanceExceededError(Exception):
    """A client is over its submission rate or daily allowance: answer 429 and let it retry later."""


class ClientAllowance:
    """A token bucket per client (``rate_per_s``, ``burst``) and a count per UTC day (``daily``).

    :meth:`admit` is called before any AWS call is made for a submission: a refused submission costs
    nothing. In production the same limits sit at the edge (API Gateway usage plans and throttling); this
    is the check a handler keeps for callers that do not come through the edge.
    """

    def __init__(self, *, rate_per_s: float, burst: int, daily: int,
                 clock: Callable[[], float] = time.time) -> None:
        if rate_per_s <= 0 or burst < 1 or daily < 1:
            raise ValueError("rate_per_s must be > 0, burst and daily at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.daily = daily
        self.clock = clock
        self._tokens: dict[str, tuple[float, float]] = {}
        self._days: dict[str, tuple[int, int]] = {}
        self.refused = 0

    def admit(self, client: str) -> None:
        """Take one submission from ``client``'s allowance, or raise :class:`AllowanceExceededError`."""
        now = self.clock()
        tokens, at = self._tokens.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
        day = int(now // 86_400)
        seen_day, count = self._days.get(client, (day, 0))
        if seen_day != day:
            count = 0
        if count >= self.daily:
            self.refused += 1
            raise AllowanceExceededError(f"client {client!r} used its {self.daily} submissions for today")
        if tokens < 1:
            self._tokens[client] = (tokens, now)
            self.refused += 1
            raise AllowanceExceededError(f"client {client!r} is over {self.rate_per_s}/s: retry after back-off")
        self._tokens[client] = (tokens - 1, now)
        self._days[client] = (day, count + 1)
