"""A SIMULATED scheme gateway: answers with modelled latency, timeouts and rejections. Nothing here talks
to a real scheme; everything it produces is modelled and labelled so.

The answer for a payment is a pure function of the seed and the payment's UETR, as a real scheme's answer
to a resubmission of the same payment is: a redelivered clearing message gets the same answer. Answer times
come from the scheme registry (``Clearing.answer_ms``): assumptions, not measurements.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fasterpay.faults import LatencyDistribution
from fasterpay.iso20022.schemes import SCHEMES
from fasterpay.pipeline import Payment, SchemeAnswer

__all__ = ["SimulatedSchemeGateway", "VirtualClock", "scheme_latency"]


class VirtualClock:
    """A clock that moves only when told to (never sleeps).

    Examples:
        >>> clock = VirtualClock(100.0)
        >>> clock.advance(2.5); clock()
        102.5
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self.now += seconds


def scheme_latency() -> dict[str, LatencyDistribution]:
    """The modelled answer time per rail, from the scheme registry.

    Examples:
        >>> scheme_latency()["uk_fps"].p50_ms
        900.0
    """
    return {rules.clearing.rail: LatencyDistribution(*rules.clearing.answer_ms)
            for rules in SCHEMES.values() if rules.clearing is not None}


@dataclass
class SimulatedSchemeGateway:
    """Submit payments to simulated rails (implements :class:`fasterpay.pipeline.SchemeGateway`).

    ``timeout_rate`` of payments get no answer in time (modelled as an answer after the time limit);
    ``reject_rate`` are refused by the creditor agent (AC04, account closed).

    Examples:
        >>> gw = SimulatedSchemeGateway(seed=1, timeout_rate=1.0)
        >>> gw.answer("u-1", "uk_fps", time_limit=15).accepted
        False
    """

    seed: int
    latency: Mapping[str, LatencyDistribution] = field(default_factory=scheme_latency)
    timeout_rate: float = 0.0
    reject_rate: float = 0.0
    submissions: int = 0
    answers: list[float] = field(default_factory=list, repr=False)  #: each answer's time (capped at its limit)
    batch_waits: list[float] = field(default_factory=list, repr=False)  #: each batch's wait: its slowest answer
    timed_out: set[str] = field(default_factory=set, repr=False)  #: UETRs answered too late (the caller clears it)

    def answer(self, uetr: str, rail: str, *, time_limit: float) -> SchemeAnswer:
        """The modelled answer for one payment on one rail (the same for the same UETR, always)."""
        self.submissions += 1
        digest = hashlib.sha256(f"{self.seed}:{uetr}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        seconds = self.latency[rail].sample(rng)
        draw = rng.random()
        if draw < self.timeout_rate:
            self.timed_out.add(uetr)
            return SchemeAnswer(False, time_limit + seconds, "timeout")
        if draw < self.timeout_rate + self.reject_rate:
            return SchemeAnswer(False, seconds, "AC04")
        if seconds > time_limit:
            self.timed_out.add(uetr)
            return SchemeAnswer(False, seconds, "timeout")
        return SchemeAnswer(True, seconds)

    def submit(self, payments: Sequence[Payment], *, time_limits: Sequence[float]) -> list[SchemeAnswer]:
        """Answers in order; the batch waits for its slowest answer (capped at its time limit)."""
        out = [self.answer(p.uetr, p.rail, time_limit=limit) for p, limit in zip(payments, time_limits, strict=True)]
        waits = [min(a.seconds, limit) for a, limit in zip(out, time_limits, strict=True)]
        self.answers.extend(waits)
        self.batch_waits.append(max(waits, default=0.0))
        return out
