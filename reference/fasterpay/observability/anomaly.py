"""An alert on anomalous detokenize activity: a spike in one caller's rate.

A legitimate service that may detokenize can still be abused: a compromised support tool, or an
insider exporting account data one token at a time, stays inside its grant but not inside its usual
rate. :class:`DetokenizeSpikeDetector` counts detokenize calls per caller per window (one minute) and
keeps, per caller, an exponentially weighted baseline of its normal count. A window fires when the
count exceeds all of ``min_count``, ``factor`` × baseline and baseline + ``z`` × √baseline (a Poisson
tail). Windows that fire do not update the baseline, so a sustained spike never becomes normal.
A caller never seen before starts from a baseline of zero: anything above ``min_count`` fires.

In CloudWatch, the same signal is the ``Detokenize`` EMF metric with a ``caller`` dimension and an
anomaly-detection alarm per caller; this class makes the rule explicit and testable.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["DetokenizeSpikeDetector", "SpikeAlert"]


@dataclass(frozen=True)
class SpikeAlert:
    """``caller`` made ``count`` detokenize calls in the window starting at ``window_start_s``."""

    caller: str
    window_start_s: float
    count: int
    baseline: float
    threshold: float


class DetokenizeSpikeDetector:
    """Per-caller spike detection over fixed windows; feed events in time order.

    Examples:
        >>> detector = DetokenizeSpikeDetector(window_s=60, min_count=20, warmup_s=600)
        >>> for minute in range(30):
        ...     for i in range(5):
        ...         _ = detector.observe("scheme-gateway", minute * 60 + i)
        >>> alerts = [a for i in range(200) for a in detector.observe("support-desk", 30 * 60 + i * 0.2)]
        >>> alerts += detector.close(32 * 60)
        >>> [(a.caller, a.count) for a in alerts]
        [('support-desk', 200)]
    """

    def __init__(self, *, window_s: float = 60, alpha: float = 0.05, factor: float = 5.0, z: float = 5.0,
                 min_count: int = 30, warmup_s: float = 0.0, baselines: Mapping[str, float] | None = None) -> None:
        if window_s <= 0 or not 0 < alpha <= 1 or factor < 1 or z < 0 or min_count < 1:
            raise ValueError("need window_s > 0, 0 < alpha <= 1, factor >= 1, z >= 0, min_count >= 1")
        self.window_s = window_s
        self.alpha = alpha
        self.factor = factor
        self.z = z
        self.min_count = min_count
        self.warmup_s = warmup_s
        self.baselines: dict[str, float] = dict(baselines or {})
        self.alerts: list[SpikeAlert] = []
        self._window: int | None = None
        self._counts: Counter[str] = Counter()

    def threshold(self, caller: str) -> float:
        """The count above which ``caller``'s next window fires."""
        b = self.baselines.get(caller, 0.0)
        return max(float(self.min_count), self.factor * b, b + self.z * math.sqrt(b))

    def observe(self, caller: str, at_s: float) -> list[SpikeAlert]:
        """Count one detokenize; returns the alerts of any window this event closed."""
        window = int(at_s // self.window_s)
        fired: list[SpikeAlert] = []
        if self._window is None:
            self._window = window
        elif window < self._window:
            raise ValueError(f"event at {at_s}s is older than the current window: feed events in time order")
        while window > self._window:
            fired += self._close_window()
        self._counts[caller] += 1
        return fired

    def observe_many(self, events: Iterable[tuple[str, float]]) -> list[SpikeAlert]:
        """Feed ``(caller, at_s)`` pairs in time order; returns every alert raised."""
        fired: list[SpikeAlert] = []
        for caller, at_s in events:
            fired += self.observe(caller, at_s)
        return fired

    def close(self, until_s: float) -> list[SpikeAlert]:
        """Close every window that ends at or before ``until_s``."""
        fired: list[SpikeAlert] = []
        while self._window is not None and (self._window + 1) * self.window_s <= until_s:
            fired += self._close_window()
        return fired

    def _close_window(self) -> list[SpikeAlert]:
        assert self._window is not None
        start = self._window * self.window_s
        learning = start < self.warmup_s
        fired = []
        for caller in sorted(set(self.baselines) | set(self._counts)):
            count = self._counts.get(caller, 0)
            baseline = self.baselines.get(caller, 0.0)
            limit = self.threshold(caller)
            if count > limit and not learning:
                fired.append(SpikeAlert(caller, start, count, baseline, limit))
                continue  # a spike never becomes the new normal
            self.baselines[caller] = count if caller not in self.baselines and learning else \
                (1 - self.alpha) * baseline + self.alpha * count
        self._counts.clear()
        self._window += 1
        self.alerts += fired
        return fired
