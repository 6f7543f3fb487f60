"""The scheme port: how the clearing step talks to a payment scheme.

A real connector (an FPS gateway over MQ, a TIPS or RT1 connection) implements :class:`SchemeGateway`.
The guide's simulated scheme lives in ``simulations/scheme.py``: the reference code never depends on it.

A scheme must answer a resubmission of the same payment (same UETR) with its first answer; both UK FPS
and SEPA Instant identify a payment by its ids and refuse to execute it twice. The pipeline relies on
that only for the *answer*: its own status write decides once and for ever (see :mod:`.store`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .model import Payment

__all__ = ["SchemeAnswer", "SchemeGateway"]


@dataclass(frozen=True)
class SchemeAnswer:
    """A scheme's answer to one payment.

    ``accepted`` with ``seconds`` (how long the answer took, measured by the connector) within the
    rail's time limit clears the payment; otherwise ``reason`` says why not (``"timeout"`` for no answer
    in time, or the scheme's ISO reason code).

    Examples:
        >>> SchemeAnswer(True, 0.9).accepted
        True
    """

    accepted: bool
    seconds: float
    reason: str | None = None


@runtime_checkable
class SchemeGateway(Protocol):
    """Submit a batch of payments to their rails; answers come back in the same order.

    The clearing step submits a batch at once and waits for every answer (or the rail's time limit),
    so a batch costs the wait of its slowest payment, not the sum.
    """

    def submit(self, payments: Sequence[Payment], *, time_limits: Sequence[float]) -> list[SchemeAnswer]:
        """One answer per payment, in order; never raises for a single payment's failure."""
        ...
