"""Payment arrival curves for the queue simulation: a UK Faster Payments day, a payday, a burst.

Every shape is *modelled*: piecewise-constant arrival rates (payments per second) over one day, from which
:meth:`LoadShape.arrivals` draws seeded Poisson counts per step. Each shape states its daily volume
(:attr:`LoadShape.expected_total`), and the rates integrate to it exactly.

Where the figures come from:

* **Volume.** Pay.UK's Annual Report 2024: the Faster Payment System processed 5.1 billion payments in 2024
  (2023: 4.5 billion), with a record month of 461 million in December 2024
  (https://www.wearepay.uk/annual-report-2024/, as summarised in
  https://northeypoint.substack.com/p/what-is-prompting-the-growth-in-demand). The default day is that record
  month spread over its 31 days (about 14.9 million payments a day), times the bank's share of FPS volume
  (``bank_share``, default 5%: a large retail bank; 1% is a mid-sized one).
* **Intraday profile.** Pay.UK publishes no hourly profile that we found, so the profile is an
  **assumption**, shaped by what the scheme has said: single immediate payments peak "from 06:30 probably
  during a commute to work", then "a flurry of activity over the lunchtime period"
  (Faster Payments Scheme, InstaPay interview:
  http://www.fasterpayments.org.uk/industry-news/instapay-interview-faster-payments-scheme). Our weights
  (:data:`FPS_HOURLY_WEIGHTS`): low overnight (00:00-06:00, a third or less of the mean), a ramp from 06:00
  to 08:00, a plateau through the morning to the lunchtime peak at 12:00-13:00 (1.74x the day's mean), a
  slow decline through the evening. Standing orders, which the scheme processes in a batch from midnight
  (https://www.internationalfinance.com/news/faster-payments/), are not in this curve: they are a bulk flow a
  bank can schedule.
* **Payday (month end).** An **assumption**: on payday, salaries land overnight and customers move money in
  the morning, so the curve runs at ``2.5x`` between 07:00 and 13:00 (:func:`month_end_peak`).
* **Burst.** An **assumption** for a stress case (a retailer's flash sale, a reconnecting PSP releasing a
  backlog): ``10x`` the curve for five minutes from 11:00 (:func:`sudden_burst`).

Examples:
    >>> day = fps_daily(bank_share=0.01)
    >>> round(day.expected_total)
    148710
    >>> sum(day.arrivals(seed=1)) > 140_000
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DAY_S", "FPS_DAYS_IN_MONTH", "FPS_HOURLY_WEIGHTS", "FPS_MONTHLY_VOLUME", "LoadShape", "fps_daily",
           "month_end_peak", "shapes", "sudden_burst"]

DAY_S = 86_400
#: Faster Payments in December 2024, the record month (Pay.UK Annual Report 2024).
FPS_MONTHLY_VOLUME = 461_000_000
FPS_DAYS_IN_MONTH = 31
#: Relative arrivals per hour, 00:00 to 23:00 (an assumption, see the module docstring).
FPS_HOURLY_WEIGHTS: tuple[float, ...] = (
    1.0, 0.6, 0.4, 0.35, 0.4, 0.7,        # 00-05: overnight
    1.8, 3.5, 5.0, 5.6, 5.8, 6.0,         # 06-11: commute ramp, morning
    6.4, 6.2, 5.6, 5.4, 5.4, 5.6,         # 12-17: lunchtime peak, afternoon
    5.4, 5.0, 4.4, 3.6, 2.6, 1.6,         # 18-23: evening decline
)


@dataclass(frozen=True)
class LoadShape:
    """Arrival rates over a day, as ``(start_s, end_s, payments_per_s)`` segments (modelled).

    Examples:
        >>> shape = LoadShape("flat", ((0, 60, 2.0),))
        >>> shape.expected_total, shape.peak_rate_per_s, shape.duration_s
        (120.0, 2.0, 60)
    """

    name: str
    segments: tuple[tuple[int, int, float], ...]
    description: str = ""

    def __post_init__(self) -> None:
        position = 0
        for start, end, rate in self.segments:
            if start != position or end <= start or rate < 0:
                raise ValueError(f"{self.name}: segments must be contiguous from 0 with rates >= 0: "
                                 f"({start}, {end}, {rate})")
            position = end

    @property
    def duration_s(self) -> int:
        """The shape's length in seconds."""
        return self.segments[-1][1]

    @property
    def expected_total(self) -> float:
        """Payments the shape states: the integral of its rate."""
        return sum((end - start) * rate for start, end, rate in self.segments)

    @property
    def mean_rate_per_s(self) -> float:
        """The day's mean arrival rate."""
        return self.expected_total / self.duration_s

    @property
    def peak_rate_per_s(self) -> float:
        """The highest rate of any segment."""
        return max(rate for _, _, rate in self.segments)

    def rates(self, step_s: int = 1) -> np.ndarray:
        """Mean arrivals per second in each step of ``step_s`` seconds."""
        per_second = np.empty(self.duration_s)
        for start, end, rate in self.segments:
            per_second[start:end] = rate
        steps = self.duration_s // step_s
        return per_second[:steps * step_s].reshape(steps, step_s).mean(axis=1)

    def arrivals(self, seed: int, step_s: int = 1) -> list[int]:
        """Seeded Poisson arrivals per step (the same seed gives the same list)."""
        rng = np.random.default_rng(seed)
        return rng.poisson(self.rates(step_s) * step_s).tolist()


def _hourly(name: str, daily_volume: float, weights: Sequence[float], description: str) -> LoadShape:
    if len(weights) != 24 or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError("weights must be 24 non-negative numbers, one per hour, not all zero")
    total = sum(weights)
    return LoadShape(name, tuple((h * 3600, (h + 1) * 3600, daily_volume * w / total / 3600)
                                 for h, w in enumerate(weights)), description)


def _scaled(shape: LoadShape, name: str, start_s: int, end_s: int, factor: float, description: str) -> LoadShape:
    """``shape`` with its rate multiplied by ``factor`` in ``[start_s, end_s)``."""
    if not 0 <= start_s < end_s <= shape.duration_s or factor < 0:
        raise ValueError(f"window [{start_s}, {end_s}) must lie inside the day and factor must be >= 0")
    cuts = sorted({0, start_s, end_s, shape.duration_s} | {s for s, _, _ in shape.segments})
    segments = []
    for start, end in zip(cuts, cuts[1:]):
        rate = next(r for s, e, r in shape.segments if s <= start < e)
        segments.append((start, end, rate * factor if start_s <= start < end_s else rate))
    return LoadShape(name, tuple(segments), description)


def fps_daily(*, bank_share: float = 0.05, monthly_volume: int = FPS_MONTHLY_VOLUME,
              days_in_month: int = FPS_DAYS_IN_MONTH,
              weights: Sequence[float] = FPS_HOURLY_WEIGHTS) -> LoadShape:
    """A normal day of a bank with ``bank_share`` of UK Faster Payments volume.

    Examples:
        >>> day = fps_daily(bank_share=0.05)
        >>> round(day.expected_total), round(day.peak_rate_per_s / day.mean_rate_per_s, 2)
        (743548, 1.74)
    """
    if not 0 < bank_share <= 1:
        raise ValueError(f"bank_share must be in (0, 1], got {bank_share}")
    volume = monthly_volume * bank_share / days_in_month
    return _hourly("fps-daily", volume, weights,
                   f"{bank_share:.1%} of {monthly_volume:,} FPS payments a month over {days_in_month} days")


def month_end_peak(*, factor: float = 2.5, window_s: tuple[int, int] = (7 * 3600, 13 * 3600),
                   **daily: float) -> LoadShape:
    """Payday: the daily curve at ``factor`` times its rate inside ``window_s`` (an assumption).

    Examples:
        >>> payday, day = month_end_peak(bank_share=0.01), fps_daily(bank_share=0.01)
        >>> round(payday.expected_total / day.expected_total, 2)
        1.55
    """
    base = fps_daily(**daily)  # type: ignore[arg-type]
    return _scaled(base, "month-end-peak", window_s[0], window_s[1], factor,
                   f"payday: {factor}x between {window_s[0] // 3600:02d}:00 and {window_s[1] // 3600:02d}:00")


def sudden_burst(*, factor: float = 10.0, start_s: int = 11 * 3600, duration_s: int = 300,
                 **daily: float) -> LoadShape:
    """The daily curve with a burst of ``factor`` times its rate for ``duration_s`` (an assumption).

    Examples:
        >>> burst = sudden_burst(bank_share=0.01)
        >>> round(burst.peak_rate_per_s / fps_daily(bank_share=0.01).peak_rate_per_s)
        9
    """
    base = fps_daily(**daily)  # type: ignore[arg-type]
    return _scaled(base, "sudden-burst", start_s, start_s + duration_s, factor,
                   f"{factor}x for {duration_s} s from {start_s // 3600:02d}:{start_s % 3600 // 60:02d}")


def shapes(*, bank_share: float = 0.05) -> list[LoadShape]:
    """The three shapes the simulation compares: a normal day, payday, a burst.

    Examples:
        >>> [s.name for s in shapes()]
        ['fps-daily', 'month-end-peak', 'sudden-burst']
    """
    return [fps_daily(bank_share=bank_share), month_end_peak(bank_share=bank_share),
            sudden_burst(bank_share=bank_share)]
