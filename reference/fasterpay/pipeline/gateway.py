"""A SIMULATED scheme gateway: answers with modelled latency, timeouts and rejections. Nothing here talks
to a real scheme; everything it produces is modelled and labelled so.

The answer for a payment is a pure function of the seed and the payment's UETR, as a real scheme's answer
to a resubmission of the same payment is: a redelivered clearing message gets the same answer.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fasterpay.faults import LatencyDistribution

from .model import Payment

__all__ = ["GatewayAnswer", "SimulatedSchemeGateway", "VirtualClock"]


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


@dataclass(frozen=True)
class GatewayAnswer:
    """The simulated scheme's answer: accepted, or rejected with a reason; ``seconds`` is modelled."""

    accepted: bool
    seconds: float
    reason: str | None = None


#: Modelled scheme answer times (p50, p99 in ms): assumptions, not measurements.
DEFAULT_SCHEME_LATENCY: dict[str, LatencyDistribution] = {
    "uk_fps": LatencyDistribution(900, 6_000),
    "sepa_inst": LatencyDistribution(1_200, 7_000),
    "internal": LatencyDistribution(1, 3),
}


@dataclass
class SimulatedSchemeGateway:
    """Submit a payment to a simulated rail.

    ``timeout_rate`` of payments get no answer in time (modelled as an answer after the time limit);
    ``reject_rate`` are refused by the creditor agent (AC04, account closed).

    Examples:
        >>> gw = SimulatedSchemeGateway(seed=1, timeout_rate=1.0)
        >>> gw.submit_uetr("u-1", "uk_fps", time_limit=15).accepted
        False
    """

    seed: int
    latency: Mapping[str, LatencyDistribution] = field(default_factory=lambda: dict(DEFAULT_SCHEME_LATENCY))
    timeout_rate: float = 0.0
    reject_rate: float = 0.0
    submissions: int = 0
    on_answer: Callable[[str, GatewayAnswer], None] | None = None

    def submit_uetr(self, uetr: str, rail: str, *, time_limit: float) -> GatewayAnswer:
        """The modelled answer for one payment on one rail."""
        self.submissions += 1
        digest = hashlib.sha256(f"{self.seed}:{uetr}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        seconds = self.latency[rail].sample(rng)
        draw = rng.random()
        if draw < self.timeout_rate:
            answer = GatewayAnswer(False, time_limit + seconds, "timeout")
        elif draw < self.timeout_rate + self.reject_rate:
            answer = GatewayAnswer(False, seconds, "AC04")
        elif seconds > time_limit:
            answer = GatewayAnswer(False, seconds, "timeout")
        else:
            answer = GatewayAnswer(True, seconds)
        if self.on_answer is not None:
            self.on_answer(uetr, answer)
        return answer

    def submit(self, payment: Payment, *, time_limit: float) -> GatewayAnswer:
        """Submit ``payment`` on its rail."""
        return self.submit_uetr(payment.uetr, payment.rail, time_limit=time_limit)
