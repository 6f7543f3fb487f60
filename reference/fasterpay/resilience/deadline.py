"""Deadlines: one absolute time by which the customer gets an answer, carried across every hop.

A payment has one deadline, fixed when it is received and derived from its scheme's time limit. Every
hop works under a :meth:`Deadline.child` of it (the earlier of the payment's deadline and the hop's own
budget from :class:`HopBudget`), gives its AWS calls timeouts that fit the time left
(:func:`botocore_config`), checks it before expensive work (:meth:`Deadline.check`) and passes it on
with the message (:meth:`Deadline.to_header`, :meth:`Deadline.to_message_attribute`). A hop that finds
the deadline gone stops and answers "timed out" instead of doing work whose answer nobody waits for.

The deadline is an **absolute** epoch time, not "seconds left": a relative figure would not count the
time a message sat in a queue. That needs the hosts' clocks to agree; on AWS the Amazon Time Sync
Service keeps them within milliseconds, which the safety margin covers.

Which limit the pipeline enforces (sources checked 2026; see the article for quotations):

* **UK Faster Payments**: the central infrastructure answers the sending bank within **15 s**.
* **SEPA Instant (SCT Inst)**: the rulebook's **10 s** maximum execution time. Earlier rulebooks
  (2017 to 2023) also defined a hard *time-out deadline* of **20 s** after the originator bank's time
  stamp, for exceptional processing. The 2025 rulebook (in force 5 October 2025, aligned with
  Regulation (EU) 2024/886) keeps 10 s from the *time of receipt* and, as secondary sources report it,
  splits it into 5 s (target execution), 7 s (hard time-out at the beneficiary side) and 9 s (the
  originator must have the confirmation). The 2025 figures were **not checked against the rulebook
  text itself**, only against secondary summaries; verify them before relying on them.

The pipeline enforces the **shorter, customer-facing** figure: 15 s for FPS and 10 s for SEPA Instant
(the same ``time_limit_seconds`` as the scheme registry, :mod:`fasterpay.iso20022.schemes`), minus a
safety margin (:data:`DEFAULT_MARGIN_S`, 1 s), anchored when the payment is received. It never waits
for a longer hard time-out: the customer must have an answer before the scheme limit, and the margin
leaves time to send that answer (and absorbs clock skew). For SEPA Instant the enforced 9 s coincides
with the 2025 rulebook's reported 9-second confirmation deadline.

Standard library and botocore only, so the module copies alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from botocore.config import Config

__all__ = [
    "DEADLINE_HEADER",
    "DEFAULT_FIXED_HOPS_S",
    "DEFAULT_MARGIN_S",
    "HOPS",
    "SCHEME_TIME_LIMITS_S",
    "Deadline",
    "DeadlineExceededError",
    "HopBudget",
    "HopBudgetError",
    "MalformedDeadlineError",
    "botocore_config",
    "scheme_time_limit_s",
]

#: The scheme time limits the pipeline enforces, in seconds: the same figures as
#: ``fasterpay.iso20022.schemes`` (``Clearing.time_limit_seconds``), repeated here so that the module
#: copies alone; a test keeps the two equal. Pass the registry's rules instead of a name to use them.
SCHEME_TIME_LIMITS_S: Mapping[str, float] = MappingProxyType({"uk_fps": 15.0, "sepa_inst": 10.0})

#: Time kept back from the scheme limit: to send the answer after the last check, and for clock skew.
DEFAULT_MARGIN_S = 1.0

#: The header (dict key, or SQS message attribute name) that carries a deadline across a hop.
DEADLINE_HEADER = "fasterpay-deadline"

#: The pipeline's hops, in order (see :mod:`fasterpay.pipeline.stages`).
HOPS = ("ingest", "tokenise", "authorise", "route", "clear", "answer")

#: Budgets of the hops other than ``clear``, in seconds; ``clear`` gets what is left of the enforced
#: limit (:meth:`HopBudget.for_scheme`). Figures come from the *modelled* per-call latencies of
#: ``fasterpay.faults.DEFAULT_LATENCY_MODEL`` (p99: SQS 30 ms, KMS 20 ms, DynamoDB 12 ms,
#: TransactWriteItems 30 ms), times the calls each hop makes, times 3 attempts (botocore's default),
#: plus botocore's worst non-throttling back-off before attempts 2 and 3 (50 + 100 ms; DynamoDB
#: 25 + 50 ms), rounded up. ``simulations/region_latency.py`` recomputes the modelled p99 per hop and
#: the headroom. Throttling back-off (1 s base) is not covered: check the deadline after a call.
DEFAULT_FIXED_HOPS_S: Mapping[str, float] = MappingProxyType({
    # 1 SQS call (SendMessage by the API; the event-source poll is not in the model):
    # 3 x 30 ms + 150 ms back-off = 240 ms, + parse and validate (CPU) -> 300 ms
    "ingest": 0.30,
    # 1 KMS GenerateDataKey on a data-key cache miss (3 x 20 + 150 = 210 ms) and 2 DynamoDB
    # BatchWriteItem for the vault records of a 10-message batch (2 x (3 x 12 + 75) = 222 ms) -> 450 ms
    "tokenise": 0.45,
    # 1 DynamoDB TransactWriteItems (hold + status + duplicate guards): 3 x 30 + 75 = 165 ms -> 200 ms
    "authorise": 0.20,
    # decided in memory: no AWS call, CPU only -> 50 ms
    "route": 0.05,
    # 1 SQS SendMessageBatch to the answers queue: 3 x 30 + 150 = 240 ms -> 250 ms
    "answer": 0.25,
})

_HEADER = re.compile(r"^[0-9]{1,11}(\.[0-9]{1,9})?$")
_MAX_AHEAD_S = 3600.0
_EPSILON_S = 1e-6  # epoch seconds near 1.7e9 carry ~0.2 microsecond float error: ignore differences below this


class DeadlineExceededError(TimeoutError):
    """A stage found the payment's deadline gone (or too close to do its work).

    ``overrun_s`` is how far past the deadline the stage is, or would end up if it went ahead.
    """

    def __init__(self, stage: str, overrun_s: float) -> None:
        self.stage = stage
        self.overrun_s = overrun_s
        super().__init__(
            f"{stage}: past the payment's deadline by {overrun_s * 1000:.0f} ms; stop work on this "
            f"payment and answer it as timed out (the scheme's timeout reason) instead of retrying."
        )


class MalformedDeadlineError(ValueError):
    """A deadline header is missing or is not a deadline; the sender must use :meth:`Deadline.to_header`."""


class HopBudgetError(ValueError):
    """Hop budgets that are negative, unknown or add up to more than the enforced limit."""


def _seconds(name: str, value: object, *, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}.")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = "at least 0" if allow_zero else "above 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}.")
    return number


def scheme_time_limit_s(scheme: object) -> float:
    """A scheme's time limit in seconds: from a name, a number, or the registry's rules.

    Rules are read by duck typing (``rules.clearing.time_limit_seconds``), so the scheme registry of
    ``fasterpay.iso20022.schemes`` is the source when you pass it, without this module importing it.

    Examples:
        >>> scheme_time_limit_s("uk_fps"), scheme_time_limit_s("sepa_inst")
        (15.0, 10.0)
        >>> scheme_time_limit_s(12)
        12.0
        >>> scheme_time_limit_s("chaps")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: No time limit for scheme 'chaps': use one of uk_fps, sepa_inst, ...
    """
    if isinstance(scheme, str):
        try:
            return SCHEME_TIME_LIMITS_S[scheme]
        except KeyError:
            raise ValueError(
                f"No time limit for scheme {scheme!r}: use one of {', '.join(SCHEME_TIME_LIMITS_S)}, "
                f"a number of seconds, or the scheme's rules."
            ) from None
    if isinstance(scheme, (int, float)) and not isinstance(scheme, bool):
        return _seconds("scheme time limit", scheme, allow_zero=False)
    clearing = getattr(scheme, "clearing", scheme)
    limit = getattr(clearing, "time_limit_seconds", None)
    if limit is None:
        raise ValueError(
            f"{type(scheme).__name__} has no clearing.time_limit_seconds: pass a scheme name or seconds."
        )
    return _seconds("scheme time limit", limit, allow_zero=False)


@dataclass(frozen=True)
class Deadline:
    """An absolute deadline (epoch seconds) read against an injected ``clock``.

    Examples:
        >>> now = [1_000.0]
        >>> clock = lambda: now[0]
        >>> d = Deadline.for_scheme("sepa_inst", clock)  # 10 s limit - 1 s margin
        >>> d.at, d.remaining()
        (1009.0, 9.0)
        >>> d.child(0.25).at  # a hop's budget: the earlier of the two
        1000.25
        >>> Deadline.from_header(d.to_header(), clock) == d
        True
        >>> now[0] = 1_010.0
        >>> d.expired(), d.remaining()
        (True, 0.0)
        >>> d.check("clear")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fasterpay.resilience.deadline.DeadlineExceededError: clear: past the payment's deadline by 1000 ms; ...
    """

    at: float
    clock: Callable[[], float] = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.at, bool) or not isinstance(self.at, (int, float)) or not math.isfinite(self.at):
            raise ValueError(f"A deadline is a finite epoch time in seconds, got {self.at!r}.")
        if not callable(self.clock):
            raise TypeError("clock must be a callable returning epoch seconds, e.g. time.time.")
        object.__setattr__(self, "at", float(self.at))

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float]) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(clock() + _seconds("seconds", seconds), clock)

    @classmethod
    def for_scheme(
        cls,
        scheme: object,
        clock: Callable[[], float],
        *,
        received_at: float | None = None,
        margin_s: float = DEFAULT_MARGIN_S,
    ) -> Deadline:
        """The answer deadline of a payment: received time + the scheme's limit - ``margin_s``.

        ``received_at`` (epoch seconds; default now) anchors it where the payment was received, so that
        a later hop computes the same deadline.
        """
        limit = scheme_time_limit_s(scheme)
        margin = _seconds("margin_s", margin_s)
        if margin >= limit:
            raise ValueError(f"margin_s {margin} s leaves nothing of the {limit} s limit: keep it smaller.")
        start = clock() if received_at is None else received_at
        return cls(start + limit - margin, clock)

    def remaining(self) -> float:
        """Seconds left, never below 0."""
        return max(0.0, self.at - self.clock())

    def overrun(self) -> float:
        """Seconds past the deadline, 0 before it."""
        return max(0.0, self.clock() - self.at)

    def expired(self) -> bool:
        """Whether the deadline has passed (at the deadline itself, it has)."""
        return self.clock() >= self.at

    def child(self, budget_s: float) -> Deadline:
        """A sub-deadline for one hop: the earlier of this deadline and now + ``budget_s``."""
        budget = _seconds("budget_s", budget_s)
        return Deadline(min(self.at, self.clock() + budget), self.clock)

    def check(self, stage: str) -> None:
        """Raise :class:`DeadlineExceededError` if the deadline has passed."""
        now = self.clock()
        if now >= self.at:
            raise DeadlineExceededError(stage, now - self.at)

    def to_header(self) -> str:
        """The deadline as a header value: epoch seconds, a decimal string with microseconds."""
        return f"{self.at:.6f}"

    @classmethod
    def from_header(cls, value: object, clock: Callable[[], float], *, max_ahead_s: float = _MAX_AHEAD_S) -> Deadline:
        """A deadline read from a header written by :meth:`to_header`.

        A past deadline is returned as is (its :meth:`check` raises); a value that is not a decimal
        epoch time, or is more than ``max_ahead_s`` ahead (a bad or hostile header must not stretch
        the work), raises :class:`MalformedDeadlineError`.
        """
        if isinstance(value, bytes):
            value = value.decode("ascii", errors="replace")
        if not isinstance(value, str) or not _HEADER.match(value.strip()):
            raise MalformedDeadlineError(
                f"{DEADLINE_HEADER} must be epoch seconds as a decimal string, got {value!r}: "
                f"write it with Deadline.to_header()."
            )
        at = float(value.strip())
        ahead = at - clock()
        if ahead > max_ahead_s:
            raise MalformedDeadlineError(
                f"{DEADLINE_HEADER} is {ahead:.0f} s ahead, more than {max_ahead_s:.0f} s: refuse it and "
                f"derive the deadline from the scheme instead."
            )
        return cls(at, clock)

    def to_message_attribute(self) -> dict[str, dict[str, str]]:
        """``MessageAttributes`` for ``SendMessage`` (an SQS ``Number`` attribute).

        Examples:
            >>> Deadline(1700000000.5, lambda: 0.0).to_message_attribute()
            {'fasterpay-deadline': {'DataType': 'Number', 'StringValue': '1700000000.500000'}}
        """
        return {DEADLINE_HEADER: {"DataType": "Number", "StringValue": self.to_header()}}

    @classmethod
    def from_message_attributes(cls, attributes: Mapping[str, Any] | None, clock: Callable[[], float]) -> Deadline:
        """The deadline in a received message's attributes (SQS ``StringValue``, or Lambda's ``stringValue``)."""
        entry = (attributes or {}).get(DEADLINE_HEADER)
        if not isinstance(entry, Mapping):
            raise MalformedDeadlineError(
                f"The message has no {DEADLINE_HEADER} attribute: the sender must attach "
                f"Deadline.to_message_attribute(), or derive the deadline from the scheme."
            )
        return cls.from_header(entry.get("StringValue", entry.get("stringValue")), clock)


def _backoff_s(attempts: int, base_s: float) -> float:
    """botocore's worst non-throttling back-off before attempts 2..n: base * (1 + 2 + ... + 2**(n-2))."""
    return base_s * (2 ** (attempts - 1) - 1)


def botocore_config(
    deadline: Deadline,
    floor_s: float,
    *,
    max_attempts: int = 3,
    connect_timeout_s: float = 0.1,
    backoff_base_s: float = 0.05,
    base: Config | None = None,
    stage: str = "aws call",
) -> Config:
    """A botocore ``Config`` whose attempts, timeouts and back-off fit in the time left.

    ``floor_s`` is the shortest attempt worth making (e.g. the call's p99). The number of attempts
    (``retries.total_max_attempts``, standard mode) is cut until ``attempts x floor_s`` plus botocore's
    worst non-throttling back-off fits; each attempt gets an equal share as connect + read timeouts.
    Raises :class:`DeadlineExceededError` when not even one attempt fits. Timeouts bound each socket
    wait, not throttling back-off: call :meth:`Deadline.check` after the call as well.

    Examples:
        >>> d = Deadline(100.4, lambda: 100.0)
        >>> cfg = botocore_config(d, floor_s=0.05)
        >>> cfg.retries["total_max_attempts"], round(cfg.connect_timeout + cfg.read_timeout, 3)
        (3, 0.083)
        >>> botocore_config(Deadline(100.06, lambda: 100.0), floor_s=0.05).retries["total_max_attempts"]
        1
    """
    floor = _seconds("floor_s", floor_s, allow_zero=False)
    connect_cap = _seconds("connect_timeout_s", connect_timeout_s, allow_zero=False)
    backoff = _seconds("backoff_base_s", backoff_base_s)
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be a whole number of at least 1, got {max_attempts!r}.")
    remaining = deadline.remaining()
    attempts = 0
    for n in range(1, max_attempts + 1):
        if n * floor + _backoff_s(n, backoff) <= remaining + _EPSILON_S:
            attempts = n
    if attempts == 0 or remaining <= _backoff_s(attempts, backoff):
        raise DeadlineExceededError(stage, max(floor - remaining, 0.0))
    per_attempt = max(remaining - _backoff_s(attempts, backoff), 0.0) / attempts
    connect = min(connect_cap, per_attempt / 2)
    config = Config(
        connect_timeout=connect,
        read_timeout=per_attempt - connect,
        retries={"mode": "standard", "total_max_attempts": attempts},
    )
    return base.merge(config) if base is not None else config


@dataclass(frozen=True)
class HopBudget:
    """Named per-hop timeout budgets that fit in a scheme's enforced limit.

    Examples:
        >>> fps = HopBudget.for_scheme("uk_fps")
        >>> fps.enforced_s, round(fps.budget("clear"), 2)
        (14.0, 12.75)
        >>> HopBudget(10.0, {"ingest": 5.0, "clear": 5.0})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fasterpay.resilience.deadline.HopBudgetError: Hop budgets add up to 10.0 s, ... by 1.0 s.
    """

    scheme_limit_s: float
    budgets_s: Mapping[str, float]
    margin_s: float = DEFAULT_MARGIN_S

    def __post_init__(self) -> None:
        limit = _seconds("scheme_limit_s", self.scheme_limit_s, allow_zero=False)
        margin = _seconds("margin_s", self.margin_s)
        if margin >= limit:
            raise HopBudgetError(f"margin_s {margin} s leaves nothing of the {limit} s limit: keep it smaller.")
        if not isinstance(self.budgets_s, Mapping) or not self.budgets_s:
            raise HopBudgetError("budgets_s must map hop names to seconds, e.g. {'ingest': 0.3, ...}.")
        budgets: dict[str, float] = {}
        for hop, seconds in self.budgets_s.items():
            if not isinstance(hop, str) or not hop:
                raise HopBudgetError(f"Hop names must be non-empty strings, got {hop!r}.")
            try:
                budgets[hop] = _seconds(f"budget of {hop!r}", seconds, allow_zero=False)
            except (TypeError, ValueError) as exc:
                raise HopBudgetError(str(exc)) from None
        object.__setattr__(self, "scheme_limit_s", limit)
        object.__setattr__(self, "margin_s", margin)
        object.__setattr__(self, "budgets_s", MappingProxyType(budgets))
        total = sum(budgets.values())
        if total > self.enforced_s + 1e-9:
            biggest = sorted(budgets, key=budgets.__getitem__, reverse=True)[:2]
            raise HopBudgetError(
                f"Hop budgets add up to {total:.1f} s, more than the enforced {self.enforced_s:.1f} s "
                f"({limit:.1f} s scheme limit - {margin:.1f} s margin): shorten "
                f"{' or '.join(repr(h) for h in biggest)} by {total - self.enforced_s:.1f} s."
            )

    @classmethod
    def for_scheme(
        cls,
        scheme: object,
        *,
        margin_s: float = DEFAULT_MARGIN_S,
        fixed_s: Mapping[str, float] = DEFAULT_FIXED_HOPS_S,
        rest: str = "clear",
    ) -> HopBudget:
        """The default table: ``fixed_s`` for the short hops, what is left for ``rest`` (the scheme)."""
        limit = scheme_time_limit_s(scheme)
        left = limit - _seconds("margin_s", margin_s) - sum(fixed_s.values())
        if left <= 0:
            raise HopBudgetError(
                f"The fixed hops take {sum(fixed_s.values()):.2f} s, leaving nothing for {rest!r} "
                f"within {limit} s - {margin_s} s: shorten them."
            )
        merged = {**fixed_s, rest: left}
        ordered = {hop: merged[hop] for hop in HOPS if hop in merged}
        ordered.update({hop: s for hop, s in merged.items() if hop not in ordered})
        return cls(limit, ordered, margin_s)

    @property
    def enforced_s(self) -> float:
        """The limit the pipeline enforces: the scheme limit minus the margin."""
        return self.scheme_limit_s - self.margin_s

    @property
    def total_s(self) -> float:
        """The sum of the hop budgets."""
        return sum(self.budgets_s.values())

    @property
    def slack_s(self) -> float:
        """Enforced limit minus the budgets (unassigned time)."""
        return self.enforced_s - self.total_s

    def budget(self, hop: str) -> float:
        """One hop's budget in seconds."""
        try:
            return self.budgets_s[hop]
        except KeyError:
            raise HopBudgetError(f"No budget for hop {hop!r}: use one of {', '.join(self.budgets_s)}.") from None

    def deadline(self, hop: str, payment: Deadline) -> Deadline:
        """The hop's deadline: the earlier of the payment's deadline and now + the hop's budget."""
        return payment.child(self.budget(hop))

    def rows(self) -> list[tuple[str, float]]:
        """``(hop, budget_s)`` in order, for the article's table."""
        return list(self.budgets_s.items())
