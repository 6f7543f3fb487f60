"""Service level objectives and multi-window, multi-burn-rate alerts (Google SRE workbook, ch. 5).

An SLO says what fraction of events must be good over a period (30 days here): for example 99.99% of
authorisations succeed within 150 ms. The error budget is the rest (0.01%). The *burn rate* over a
window is the window's bad fraction divided by the budget: at 1x the budget lasts exactly the
period, at 14.4x two per cent of it is gone in an hour.

An alert fires when the burn rate exceeds its threshold over a long window *and* over a short one:
the long window makes it significant, the short one makes it stop soon after the problem does. The
workbook's recommended set, :data:`SRE_WORKBOOK_ALERTS`:

======== ============ ============= ========== =======================
severity long window  short window  burn rate  budget spent when fired
======== ============ ============= ========== =======================
page     1 hour       5 minutes     14.4       2%
page     6 hours      30 minutes    6          5%
ticket   3 days       6 hours       1          10%
======== ============ ============= ========== =======================

:class:`SliCounts` buckets good and total events (one minute by default) and answers any window in
O(1) from prefix sums; :func:`evaluate_alerts` walks the buckets and reports when each alert fires
and resolves. In CloudWatch, the same rule is a metric-math alarm per window and a composite alarm
(``ALARM(long) AND ALARM(short)``) per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["SRE_WORKBOOK_ALERTS", "AlertEvaluation", "AlertFiring", "BurnRateAlert", "SliCounts", "Slo",
           "evaluate_alerts"]


@dataclass(frozen=True)
class Slo:
    """An objective: ``objective`` of events good over ``period_days``; good may need ``latency <= threshold_ms``.

    Examples:
        >>> round(Slo("authorisation", objective=0.9999, threshold_ms=150).error_budget, 6)
        0.0001
    """

    name: str
    objective: float
    threshold_ms: float | None = None
    period_days: int = 30

    def __post_init__(self) -> None:
        if not 0 < self.objective < 1:
            raise ValueError(f"objective must be between 0 and 1 (e.g. 0.9999), got {self.objective}")
        if self.threshold_ms is not None and self.threshold_ms <= 0:
            raise ValueError("threshold_ms must be positive")
        if self.period_days < 1:
            raise ValueError("period_days must be at least 1")

    @property
    def error_budget(self) -> float:
        return 1 - self.objective

    def is_good(self, ok: bool, latency_ms: float) -> bool:
        """Whether one event meets the objective."""
        return ok and (self.threshold_ms is None or latency_ms <= self.threshold_ms)


@dataclass(frozen=True)
class BurnRateAlert:
    """Fire when the burn rate exceeds ``burn_rate`` over both windows."""

    name: str
    severity: str  # "page" or "ticket"
    long_window_s: int
    short_window_s: int
    burn_rate: float

    def __post_init__(self) -> None:
        if not 0 < self.short_window_s < self.long_window_s:
            raise ValueError("need 0 < short window < long window")
        if self.burn_rate <= 0:
            raise ValueError("burn_rate must be positive")

    def budget_spent(self, slo: Slo) -> float:
        """Fraction of the period's budget spent by the time it fires (burn rate × long window / period)."""
        return self.burn_rate * self.long_window_s / (slo.period_days * 86_400)


SRE_WORKBOOK_ALERTS: tuple[BurnRateAlert, ...] = (
    BurnRateAlert("fast burn (1h/5m at 14.4x)", "page", 3_600, 300, 14.4),
    BurnRateAlert("medium burn (6h/30m at 6x)", "page", 21_600, 1_800, 6.0),
    BurnRateAlert("slow burn (3d/6h at 1x)", "ticket", 259_200, 21_600, 1.0),
)


class SliCounts:
    """Good and total events per bucket of ``bucket_s`` seconds from ``start_s``.

    Examples:
        >>> counts = SliCounts(bucket_s=60)
        >>> counts.record(5.0, good=True); counts.record(70.0, good=False)
        >>> counts.error_rate(end_bucket=1, window_s=120)
        0.5
    """

    def __init__(self, *, bucket_s: int = 60, start_s: float = 0.0) -> None:
        if bucket_s < 1:
            raise ValueError("bucket_s must be at least 1")
        self.bucket_s = bucket_s
        self.start_s = start_s
        self.total: list[int] = []
        self.bad: list[int] = []
        self._prefix: tuple[list[int], list[int]] | None = None

    def record(self, at_s: float, *, good: bool) -> None:
        """One event at ``at_s``."""
        self.record_counts(at_s, total=1, bad=0 if good else 1)

    def record_counts(self, at_s: float, *, total: int, bad: int) -> None:
        """``total`` events in the bucket of ``at_s``, ``bad`` of them bad (a pre-aggregated count, as a
        CloudWatch metric delivers it)."""
        index = int((at_s - self.start_s) // self.bucket_s)
        if index < 0:
            raise ValueError(f"event at {at_s}s is before the start ({self.start_s}s)")
        if not 0 <= bad <= total:
            raise ValueError(f"need 0 <= bad <= total, got bad={bad}, total={total}")
        while len(self.total) <= index:
            self.total.append(0)
            self.bad.append(0)
        self.total[index] += total
        self.bad[index] += bad
        self._prefix = None

    def __len__(self) -> int:
        return len(self.total)

    def _sums(self) -> tuple[list[int], list[int]]:
        if self._prefix is None:
            total, bad = [0], [0]
            for t, b in zip(self.total, self.bad, strict=True):
                total.append(total[-1] + t)
                bad.append(bad[-1] + b)
            self._prefix = (total, bad)
        return self._prefix

    def error_rate(self, *, end_bucket: int, window_s: int) -> float | None:
        """Bad / total over the ``window_s`` ending with bucket ``end_bucket`` (None if no events)."""
        total, bad = self._sums()
        width = max(1, window_s // self.bucket_s)
        lo, hi = max(0, end_bucket + 1 - width), end_bucket + 1
        n = total[hi] - total[lo]
        return None if n == 0 else (bad[hi] - bad[lo]) / n

    def ratio_good(self) -> float:
        """Good / total over everything recorded."""
        total, bad = self._sums()
        return 1.0 if total[-1] == 0 else 1 - bad[-1] / total[-1]


@dataclass(frozen=True)
class AlertFiring:
    """One alert, firing from ``start_s`` until ``end_s`` (None: still firing at the end of the data)."""

    alert: BurnRateAlert
    start_s: float
    end_s: float | None


@dataclass
class AlertEvaluation:
    """Burn rates per window at each bucket end, and the firing intervals of each alert."""

    slo: Slo
    times_s: list[float]
    burn: dict[int, list[float]]  # window (s) → burn rate at each bucket end
    firings: list[AlertFiring] = field(default_factory=list)
    good_ratio: float = 1.0

    @property
    def budget_spent(self) -> float:
        """Fraction of the error budget the whole run spent, scaled to the SLO period."""
        span_days = (self.times_s[-1] - self.times_s[0]) / 86_400 if len(self.times_s) > 1 else 0
        scale = span_days / self.slo.period_days if span_days else 1
        return (1 - self.good_ratio) / self.slo.error_budget * scale

    def first_firing(self, alert: BurnRateAlert, after_s: float = 0.0) -> AlertFiring | None:
        found = [f for f in self.firings if f.alert == alert and f.start_s >= after_s]
        return found[0] if found else None


def evaluate_alerts(counts: SliCounts, slo: Slo,
                    alerts: Sequence[BurnRateAlert] = SRE_WORKBOOK_ALERTS) -> AlertEvaluation:
    """Evaluate every alert at the end of every bucket.

    Examples:
        >>> counts = SliCounts(bucket_s=60)
        >>> for s in range(7200):
        ...     counts.record(s, good=not (3600 <= s < 4200 and s % 10 == 0))
        >>> result = evaluate_alerts(counts, Slo("auth", 0.9999))
        >>> result.firings[0].alert.severity, result.firings[0].start_s
        ('page', 3660.0)
    """
    windows = sorted({w for a in alerts for w in (a.long_window_s, a.short_window_s)})
    times = [counts.start_s + (i + 1) * counts.bucket_s for i in range(len(counts))]
    burn: dict[int, list[float]] = {w: [] for w in windows}
    for i in range(len(counts)):
        for w in windows:
            rate = counts.error_rate(end_bucket=i, window_s=w)
            burn[w].append(0.0 if rate is None else rate / slo.error_budget)
    firings: list[AlertFiring] = []
    for alert in alerts:
        start: float | None = None
        for i, t in enumerate(times):
            on = burn[alert.long_window_s][i] > alert.burn_rate and burn[alert.short_window_s][i] > alert.burn_rate
            if on and start is None:
                start = t
            elif not on and start is not None:
                firings.append(AlertFiring(alert, start, t))
                start = None
        if start is not None:
            firings.append(AlertFiring(alert, start, None))
    firings.sort(key=lambda f: (f.start_s, f.alert.long_window_s))
    return AlertEvaluation(slo, times, burn, firings, counts.ratio_good())
