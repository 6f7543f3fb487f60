"""Autoscaling strategies priced over a day of demand: DynamoDB capacity modes, Lambda or Fargate, peak windows.

Every function here is a **model** (stdlib only, no AWS call): it takes a demand series, one value per step of
``step_s`` seconds (request units per second for DynamoDB, requests per second for compute), and returns a
:class:`ScalingResult` with the cost in exact ``Decimal`` USD and the risk the strategy runs (units throttled,
share of seconds throttled, share of cold starts). The series is a fluid: demand inside a step is spread evenly.

**What is modelled, and from where.**

* DynamoDB on-demand (:func:`dynamodb_on_demand`): billed per request unit; a table instantly serves up to twice
  its previous peak ("up to double the previous peak traffic on the table",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html). By default the
  table has seen the day's peak before, so it never throttles; pass ``previous_peak`` to model a new table.
* DynamoDB provisioned with auto scaling (:func:`dynamodb_provisioned_autoscaling`): target tracking on consumed
  capacity. AWS's alarms scale out when utilisation stays above the target for **2 consecutive minutes** and
  scale in when it stays 20 points below it for **15 consecutive minutes**
  (https://repost.aws/knowledge-center/dynamodb-auto-scaling); the new capacity applies after ``update_s`` (an
  assumption: UpdateTable takes "several minutes" at worst). Consumed capacity is what was *served*, so a table
  that throttles sees 100% utilisation and grows by ``1 / target`` per round, not to the demand at once.
  **Burst capacity**: up to 300 s of unused capacity is kept and spent before requests throttle
  (https://repost.aws/knowledge-center/dynamodb-spiky-workloads-short-intervals; best effort, not guaranteed).
  **Scale-in limit**: "a decrease is allowed up to four times, anytime per day" (UTC), plus one more whenever
  there was no decrease in the preceding hour, at most 27 a day (DynamoDB service quotas,
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html, as quoted by
  https://help.stackzone.com/article/aws-config-rule-dynamodb-throughput-limit-check; the stored AWS page was not
  found). Capacity is billed per unit-hour, time-weighted here (our assumption about partial hours).
* DynamoDB reserved capacity (:func:`dynamodb_reserved`): 1-year term, partial upfront, bought in blocks of 100
  units (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/reserved-capacity.html: "up to 54%" off
  for one year). The reserved units are billed every hour, used or not; provisioned capacity above them is billed
  at the standard rate. The upfront fee is spread evenly over 365 days.
* Lambda (:func:`lambda_compute`): requests plus GB-seconds (rate x duration x memory); duration is billed in
  whole milliseconds. Provisioned concurrency (:func:`provisioned_concurrency`): a price per GB-second kept warm,
  billed in 5-minute increments, plus a lower duration price for the invocations it serves; reserved concurrency
  is a cap that throttles above it. Cold starts: an on-demand environment stays warm for ``keep_warm_s`` after its
  last use (an assumption: AWS does not document it); concurrency is ``rate x duration`` (Little's law), rounded
  up to whole environments, so Poisson peaks inside a step are not seen and the cold-start share is a floor.
* Fargate (:func:`fargate_compute`): tasks x (vCPU-hours + GB-hours), per second; tasks sized from a per-task
  throughput at a target utilisation, fixed or following demand with a lag (step scaling).
* :func:`lambda_fargate_break_even_tps`: the rate above which an always-on Fargate fleet (never below
  ``min_tasks``) never costs more than Lambda, in closed form.

**Rounding, stated once.** Demand is float; money never is. Request units and requests are rounded *up* to whole
units over the series; unit-hours, task-hours and GB-seconds of provisioned concurrency are quantized to
``0.000001`` (half-even) before they meet a price; an amortised upfront fee to ``0.0000000001`` USD. With those
quantities the cost is exact (``Inexact`` traps). ``cost_per_day`` scales ``cost`` by ``86400 / duration`` and
is quantized to ``0.00000001`` USD (equal to ``cost`` when the series is one day).

**The prices, as looked up on 2026-12-02** (:data:`SCALING_PRICES`, :data:`SCALING_PRICE_PROVENANCE`), with the
convention of :mod:`fasterpay.pricing`: ``"aws page"`` read on a stored AWS page, ``"secondary"`` from third-party
guides or public repositories quoting the AWS Price List, ``"substitute: ..."`` another region's figure.

* DynamoDB provisioned, us-east-1, $0.00065 per WCU-hour and $0.00013 per RCU-hour: a public repository quoting
  the us-east-1 price list (secondary; the stored AWS page renders its table with scripts).
* Reserved capacity, us-east-1, 1 year: $150 upfront + $0.0128 an hour per 100 WCU, $30 + $0.0025 per 100 RCU,
  from a public guide (secondary); both work out to 54% below the standard rate, as the AWS page says.
* No eu-west-2 DynamoDB provisioned or reserved figure was found: the us-east-1 figures stand in
  (``"substitute: us-east-1 figure"``); London's are probably higher.
* Lambda provisioned concurrency, $0.0000041667 per GB-second and $0.0000097222 per GB-second of duration
  (us-east-1), $0.0000048304 and $0.0000112709 (eu-west-2): public repositories quoting the AWS calculator's
  metered-unit map and the Price List (secondary; the London pair in two of them).
* Fargate Linux, us-east-1: $0.04048 per vCPU-hour and $0.004445 per GB-hour (x86), $0.03238 and $0.00356 (Arm),
  from third-party guides dated 2025-2026 (secondary); eu-west-2: $0.04656 / $0.00511 (x86), $0.03725 / $0.00409
  (Arm), the Price List as quoted by two public repositories (secondary).
* DynamoDB on-demand and Lambda request and duration prices come from :data:`fasterpay.pricing.PRICE_TABLES`, with
  their provenance there.

Examples:
    >>> flat = [100.0] * 1440  # 100 write units/s all day, one value a minute
    >>> on_demand = dynamodb_on_demand(flat, step_s=60)
    >>> provisioned = dynamodb_provisioned_autoscaling(flat, step_s=60, target_utilisation=0.7)
    >>> on_demand.cost_per_day, provisioned.cost_per_day, provisioned.throttled_units
    (Decimal('5.40000000'), Decimal('2.23080000'), 0.0)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, Inexact, localcontext
from types import MappingProxyType

from ..pricing import PRICE_PROVENANCE, PRICE_TABLES, check_prices

__all__ = [
    "SCALING_PRICES",
    "SCALING_PRICE_PROVENANCE",
    "SCALING_PRICES_EU_WEST_2",
    "SCALING_PRICES_US_EAST_1",
    "BreakEven",
    "ScalingPrices",
    "ScalingResult",
    "dynamodb_on_demand",
    "dynamodb_provisioned_autoscaling",
    "dynamodb_reserved",
    "fargate_compute",
    "fargate_cost",
    "lambda_compute",
    "lambda_cost",
    "lambda_fargate_break_even_tps",
    "provisioned_concurrency",
]

DAY_S = 86_400
_HOUR_S = 3_600
_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_QUANTITY = Decimal("0.000001")   # unit-hours, task-hours, GB-seconds
_UPFRONT = Decimal("0.0000000001")
_PER_DAY = Decimal("0.00000001")
_TERM_DAYS = 365
_PC_BILLING_S = 300               # provisioned concurrency is billed in 5-minute increments
_LABELS = ("as_of", "region", "source_urls")
_ARCHITECTURES = ("x86_64", "arm64")


@dataclass(frozen=True)
class ScalingPrices:
    """Capacity, concurrency and container prices in USD for one region, dated (defaults: us-east-1).

    Every price is a ``Decimal``; a float raises ``TypeError``. Provenance per field:
    :data:`SCALING_PRICE_PROVENANCE`.

    Examples:
        >>> ScalingPrices(dynamodb_wcu_hour=0.00065)
        Traceback (most recent call last):
        ...
        TypeError: dynamodb_wcu_hour must be a Decimal, e.g. Decimal('0.00065'): money is never float.
    """

    as_of: str = "2026-12-02"
    region: str = "us-east-1"
    source_urls: tuple[str, ...] = (
        "https://aws.amazon.com/dynamodb/pricing/provisioned/",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/reserved-capacity.html",
        "https://aws.amazon.com/lambda/pricing/",
        "https://aws.amazon.com/fargate/pricing/",
        # Quoted by third parties for the figures marked "secondary"; not read by us.
        "https://calculator.aws/pricing/2.0/meteredUnitMaps/lambda/USD/current/lambda.json",
        "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonDynamoDB/current/us-east-1/index.json",
        "https://www.vantage.sh/blog/fargate-pricing",
    )
    dynamodb_wcu_hour: Decimal = Decimal("0.00065")
    dynamodb_rcu_hour: Decimal = Decimal("0.00013")
    dynamodb_reserved_wcu_upfront_per_100: Decimal = Decimal("150")
    dynamodb_reserved_wcu_hour_per_100: Decimal = Decimal("0.0128")
    dynamodb_reserved_rcu_upfront_per_100: Decimal = Decimal("30")
    dynamodb_reserved_rcu_hour_per_100: Decimal = Decimal("0.0025")
    dynamodb_write_unit_per_million: Decimal = PRICE_TABLES["us-east-1"].dynamodb_write_unit_per_million
    dynamodb_read_unit_per_million: Decimal = PRICE_TABLES["us-east-1"].dynamodb_read_unit_per_million
    lambda_requests_per_million: Decimal = PRICE_TABLES["us-east-1"].lambda_requests_per_million
    lambda_x86_per_gb_second: Decimal = PRICE_TABLES["us-east-1"].lambda_x86_per_gb_second
    lambda_arm64_per_gb_second: Decimal = PRICE_TABLES["us-east-1"].lambda_arm64_per_gb_second
    lambda_provisioned_per_gb_second: Decimal = Decimal("0.0000041667")
    lambda_provisioned_duration_per_gb_second: Decimal = Decimal("0.0000097222")
    fargate_x86_vcpu_hour: Decimal = Decimal("0.04048")
    fargate_x86_gb_hour: Decimal = Decimal("0.004445")
    fargate_arm64_vcpu_hour: Decimal = Decimal("0.03238")
    fargate_arm64_gb_hour: Decimal = Decimal("0.00356")

    def __post_init__(self) -> None:
        check_prices(self.prices(), example="0.00065")

    def prices(self) -> dict[str, Decimal]:
        """Every price field by name (no labels).

        Examples:
            >>> SCALING_PRICES_US_EAST_1.prices()["fargate_x86_vcpu_hour"]
            Decimal('0.04048')
        """
        return {name: value for name, value in vars(self).items() if name not in _LABELS}


SCALING_PRICES_US_EAST_1 = ScalingPrices()
_LONDON = PRICE_TABLES["eu-west-2"]
SCALING_PRICES_EU_WEST_2 = ScalingPrices(
    region="eu-west-2",
    source_urls=(
        "https://aws.amazon.com/dynamodb/pricing/provisioned/",
        "https://aws.amazon.com/lambda/pricing/",
        "https://aws.amazon.com/fargate/pricing/",
        # Quoted by public repositories for the figures marked "secondary"; not read by us.
        "https://calculator.aws/pricing/2.0/meteredUnitMaps/lambda/USD/current/lambda.json",
        "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AWSLambda/current/eu-west-2/index.json",
        "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonECS/current/eu-west-2/index.json",
    ),
    # No eu-west-2 DynamoDB provisioned or reserved figure was found: the us-east-1 figures stand in.
    dynamodb_wcu_hour=Decimal("0.00065"),
    dynamodb_rcu_hour=Decimal("0.00013"),
    dynamodb_reserved_wcu_upfront_per_100=Decimal("150"),
    dynamodb_reserved_wcu_hour_per_100=Decimal("0.0128"),
    dynamodb_reserved_rcu_upfront_per_100=Decimal("30"),
    dynamodb_reserved_rcu_hour_per_100=Decimal("0.0025"),
    dynamodb_write_unit_per_million=_LONDON.dynamodb_write_unit_per_million,
    dynamodb_read_unit_per_million=_LONDON.dynamodb_read_unit_per_million,
    lambda_requests_per_million=_LONDON.lambda_requests_per_million,
    lambda_x86_per_gb_second=_LONDON.lambda_x86_per_gb_second,
    lambda_arm64_per_gb_second=_LONDON.lambda_arm64_per_gb_second,
    lambda_provisioned_per_gb_second=Decimal("0.0000048304"),
    lambda_provisioned_duration_per_gb_second=Decimal("0.0000112709"),
    fargate_x86_vcpu_hour=Decimal("0.04656"),
    fargate_x86_gb_hour=Decimal("0.00511"),
    fargate_arm64_vcpu_hour=Decimal("0.03725"),
    fargate_arm64_gb_hour=Decimal("0.00409"),
)
SCALING_PRICES: Mapping[str, ScalingPrices] = MappingProxyType(
    {"us-east-1": SCALING_PRICES_US_EAST_1, "eu-west-2": SCALING_PRICES_EU_WEST_2})

_SECONDARY = "secondary"
_US_SUBSTITUTE = "substitute: us-east-1 figure"
_IMPORTED = {  # our field -> the fasterpay.pricing field it comes from (same provenance)
    "dynamodb_write_unit_per_million": "dynamodb_write_unit_per_million",
    "dynamodb_read_unit_per_million": "dynamodb_read_unit_per_million",
    "lambda_requests_per_million": "lambda_requests_per_million",
    "lambda_x86_per_gb_second": "lambda_x86_per_gb_second",
    "lambda_arm64_per_gb_second": "lambda_arm64_per_gb_second",
}
_DYNAMODB_CAPACITY = ("dynamodb_wcu_hour", "dynamodb_rcu_hour", "dynamodb_reserved_wcu_upfront_per_100",
                      "dynamodb_reserved_wcu_hour_per_100", "dynamodb_reserved_rcu_upfront_per_100",
                      "dynamodb_reserved_rcu_hour_per_100")
_OWN = ("lambda_provisioned_per_gb_second", "lambda_provisioned_duration_per_gb_second", "fargate_x86_vcpu_hour",
        "fargate_x86_gb_hour", "fargate_arm64_vcpu_hour", "fargate_arm64_gb_hour")


def _provenance(region: str) -> Mapping[str, str]:
    table: dict[str, str] = {}
    for name in _DYNAMODB_CAPACITY:
        table[name] = _SECONDARY if region == "us-east-1" else _US_SUBSTITUTE
    table.update({name: PRICE_PROVENANCE[region][source] for name, source in _IMPORTED.items()})
    table.update({name: _SECONDARY for name in _OWN})
    return MappingProxyType(table)


SCALING_PRICE_PROVENANCE: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {region: _provenance(region) for region in SCALING_PRICES})
"""Per region and price field: ``"aws page"``, ``"secondary"`` or ``"substitute: ..."``."""


@dataclass(frozen=True)
class ScalingResult:
    """One strategy over one demand series: its cost and the risk it runs (modelled).

    ``cost`` is for the series, exact; ``cost_per_day`` scales it to 86,400 s. ``throttled_units`` are units (or
    requests) asked for and refused; ``throttled_seconds_share`` the share of the series' seconds with any
    refused; ``cold_start_share`` the share of invocations that started an environment (Lambda only).
    ``capacity`` is the provisioned units (or tasks, or environments) per step, when there is such a thing;
    ``ideal_cost_per_day`` what capacity that followed demand at the target, with no lag and no limit, would cost;
    ``reserved_units`` the DynamoDB units bought as reserved capacity (:func:`dynamodb_reserved`).
    """

    strategy: str
    cost: Decimal
    cost_per_day: Decimal
    demand_units: int
    throttled_units: float
    throttled_seconds_share: float
    cold_start_share: float = 0.0
    note: str = ""
    ideal_cost_per_day: Decimal | None = None
    capacity: tuple[int, ...] = field(default=(), repr=False)
    reserved_units: int = 0

    @property
    def throttled_share(self) -> float:
        """Throttled units as a share of the units asked for."""
        return self.throttled_units / self.demand_units if self.demand_units else 0.0


@dataclass(frozen=True)
class BreakEven:
    """The rate above which an always-on Fargate fleet never costs more than Lambda.

    ``tps`` is that rate (quantized to 0.0001), ``tasks`` the fleet at it; both daily costs are exact.
    """

    tps: Decimal
    tasks: int
    lambda_per_tps_day: Decimal
    task_per_day: Decimal


# -- validation and exact arithmetic -----------------------------------------------------------------------------
def _series(name: str, values: Iterable[float]) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers (units or requests per second), one per step") from None
    if not out:
        raise ValueError(f"{name} is empty: pass one value per step, e.g. LoadShape.rates(60).tolist() for a day "
                         f"at 60 s steps")
    for i, v in enumerate(out):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}[{i}] is {v}: demand must be finite and zero or more; clip or drop bad samples")
    return out


def _step(step_s: int, *, minute_aligned: bool = False) -> int:
    if isinstance(step_s, bool) or not isinstance(step_s, int) or step_s < 1:
        raise ValueError(f"step_s must be a whole number of seconds >= 1, got {step_s!r}")
    if minute_aligned and 60 % step_s and step_s % 60:
        raise ValueError(f"step_s must divide 60 or be a multiple of 60 (alarms evaluate per minute), got {step_s}")
    return step_s


def _utilisation(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise ValueError(f"{name} must be in (0, 1], e.g. 0.7 for 70%, got {value!r}")
    return float(value)


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _count(name: str, value: int, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _kind(kind: str) -> str:
    if kind not in ("write", "read"):
        raise ValueError(f"kind must be 'write' or 'read', got {kind!r}")
    return kind


def _architecture(architecture: str) -> str:
    if architecture not in _ARCHITECTURES:
        raise ValueError(f"architecture must be one of {_ARCHITECTURES}, got {architecture!r}")
    return architecture


def _size(value: float | str | Decimal) -> Decimal:
    """A resource size (vCPU, GB) as an exact Decimal; floats go through their shortest repr."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite() or number <= 0:
        raise ValueError(f"sizes must be positive, got {value!r}")
    return number


def _hours(seconds: int) -> Decimal:
    """Seconds as hours, quantized to 0.000001 (the stated rounding; safe inside :class:`_Exact`)."""
    with localcontext() as context:
        context.prec = 60
        context.traps[Inexact] = False
        return (Decimal(seconds) / _HOUR_S).quantize(_QUANTITY, ROUND_HALF_EVEN)


def _whole_units(total: float) -> int:
    """Units over the series, rounded up (a float sum of rates x seconds)."""
    return max(0, math.ceil(total - 1e-9))


def _per_day(cost: Decimal, duration_s: int) -> Decimal:
    return (cost * DAY_S / duration_s).quantize(_PER_DAY, ROUND_HALF_EVEN)


class _Exact:
    """``with _Exact():`` Decimal arithmetic that raises rather than rounds."""

    def __enter__(self) -> None:
        self._context = localcontext()
        context = self._context.__enter__()
        context.prec = 60
        context.traps[Inexact] = True

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)


def _ceil(x: float) -> int:
    return math.ceil(x - 1e-9)


# -- DynamoDB --------------------------------------------------------------------------------------------------------
def dynamodb_on_demand(demand: Sequence[float], *, step_s: int = 60, kind: str = "write",
                       previous_peak: float | None = None, prices: ScalingPrices = SCALING_PRICES_US_EAST_1
                       ) -> ScalingResult:
    """On-demand capacity: every request unit billed; throttles only above twice the previous peak.

    ``previous_peak`` (units/s) is the highest rate the table has served before the series; None means it has
    served the series' own peak (a table in production for a while), so nothing throttles. The peak grows with
    what the table serves, one step at a time.

    Examples:
        >>> run = dynamodb_on_demand([10.0, 10.0, 500.0], step_s=60, previous_peak=10.0)
        >>> run.demand_units, run.throttled_units, run.cost
        (31200, 28800.0, Decimal('0.0015'))
    """
    rates = _series("demand", demand)
    step = _step(step_s)
    _kind(kind)
    peak = max(rates) if previous_peak is None else float(previous_peak)
    if peak < 0 or not math.isfinite(peak):
        raise ValueError(f"previous_peak must be zero or more units/s, got {previous_peak!r}")
    throttled = 0.0
    seconds = 0.0
    for rate in rates:
        allowance = 2 * peak
        if rate > allowance:
            throttled += (rate - allowance) * step
            seconds += step
        peak = max(peak, min(rate, allowance))
    units = _whole_units(sum(rates) * step)
    billed = _whole_units(sum(rates) * step - throttled)
    price = prices.dynamodb_write_unit_per_million if kind == "write" else prices.dynamodb_read_unit_per_million
    with _Exact():
        cost = billed * price / _MILLION
    duration = len(rates) * step
    return ScalingResult("on-demand", cost, _per_day(cost, duration), units, throttled, seconds / duration,
                         note="billed per request unit; no capacity to manage")


def _capacity_hour_price(kind: str, prices: ScalingPrices) -> Decimal:
    return prices.dynamodb_wcu_hour if kind == "write" else prices.dynamodb_rcu_hour


def _autoscale(rates: list[float], step: int, *, target: float, min_capacity: int, max_capacity: int,
               alarm_minutes: int, scale_in_minutes: int, scale_in_margin: float, update_s: int,
               burst_s: int, decreases_anytime: int, extra_decrease_after_s: int, initial: int | None
               ) -> tuple[list[int], float, float, int]:
    """Capacity per step, throttled units, throttled seconds and decreases made (see the module docstring)."""
    per_minute = max(1, 60 // step)
    update_steps = math.ceil(update_s / step)
    clamp = lambda units: min(max(units, min_capacity), max_capacity)  # noqa: E731
    capacity = clamp(initial if initial is not None else _ceil(rates[0] / target))
    pending: tuple[int, int] | None = None  # (step it applies at, new capacity)
    window = max(1, math.ceil(burst_s / step)) if burst_s else 0
    bank: deque[list[float]] = deque()  # [step, unused units] of the last burst_s seconds, oldest first
    served_minute = 0.0
    capacity_minute = 0.0
    high = low = 0
    decreases = decreases_today = 0
    last_decrease: int | None = None
    throttled = seconds = 0.0
    series: list[int] = []
    for i, rate in enumerate(rates):
        if pending is not None and i >= pending[0]:
            capacity, pending = pending[1], None
        asked, have = rate * step, capacity * step
        while bank and bank[0][0] < i - window:
            bank.popleft()  # unused capacity older than burst_s is gone
        if asked <= have:
            served = asked
            if window and have > asked:
                bank.append([i, have - asked])
        else:
            extra = refused = asked - have
            while refused > 0 and bank:
                take = min(refused, bank[0][1])
                refused -= take
                bank[0][1] -= take
                if bank[0][1] <= 0:
                    bank.popleft()
            served = have + extra - refused
            if refused > 1e-9:
                throttled += refused
                seconds += min(step, refused / (rate - capacity))
        series.append(capacity)
        served_minute += served
        capacity_minute += have
        if (i + 1) % per_minute:
            continue
        minutes = max(1, step // 60)
        now = (i + 1) * step
        if now % DAY_S < step:
            decreases_today = 0
        utilisation = served_minute / capacity_minute if capacity_minute else 1.0
        consumed = served_minute / (minutes * 60)
        served_minute = capacity_minute = 0.0
        high = high + minutes if utilisation > target + 1e-9 else 0
        low = low + minutes if utilisation < target - scale_in_margin - 1e-9 else 0
        if pending is not None:
            continue
        want = clamp(_ceil(consumed / target))
        if high >= alarm_minutes and want > capacity:
            pending, high = (i + 1 + update_steps, want), 0
        elif low >= scale_in_minutes and want < capacity:
            allowed = decreases_today < decreases_anytime or (
                last_decrease is None or now - last_decrease >= extra_decrease_after_s)
            if allowed:
                pending, low = (i + 1 + update_steps, want), 0
                decreases += 1
                decreases_today += 1
                last_decrease = now
    return series, throttled, seconds, decreases


def dynamodb_provisioned_autoscaling(
        demand: Sequence[float], *, step_s: int = 60, kind: str = "write", target_utilisation: float = 0.7,
        min_capacity: int = 5, max_capacity: int = 40_000, alarm_minutes: int = 2, scale_in_minutes: int = 15,
        scale_in_margin: float = 0.2, update_s: int = 60, burst_s: int = 300, decreases_anytime: int = 4,
        extra_decrease_after_s: int = 3600, initial_capacity: int | None = None,
        prices: ScalingPrices = SCALING_PRICES_US_EAST_1) -> ScalingResult:
    """Provisioned capacity under target tracking, with burst capacity and the daily scale-in limit.

    Scale-out: when utilisation (served / provisioned, per minute) is above ``target_utilisation`` for
    ``alarm_minutes`` consecutive minutes, capacity becomes ``ceil(served rate / target)`` after ``update_s``.
    Until then a step is served from the capacity before it plus the burst credit: the unused capacity of the
    last ``burst_s`` seconds, oldest spent first. Scale-in: after ``scale_in_minutes`` below
    ``target - scale_in_margin``, if the quota allows (``decreases_anytime`` per UTC day, then one more when none
    happened in ``extra_decrease_after_s``).

    Examples:
        >>> step_up = [100.0] * 30 + [400.0] * 30  # per minute: 4x in one step
        >>> run = dynamodb_provisioned_autoscaling(step_up, step_s=60)
        >>> run.throttled_units > 0, run.capacity[0], max(run.capacity)
        (True, 143, 572)
    """
    rates = _series("demand", demand)
    step = _step(step_s, minute_aligned=True)
    _kind(kind)
    target = _utilisation("target_utilisation", target_utilisation)
    low_cap = _count("min_capacity", min_capacity, 1)
    high_cap = _count("max_capacity", max_capacity, low_cap)
    if not 0 <= scale_in_margin < target:
        raise ValueError(f"scale_in_margin must be in [0, target_utilisation), got {scale_in_margin!r}")
    capacity, throttled, seconds, decreases = _autoscale(
        rates, step, target=target, min_capacity=low_cap, max_capacity=high_cap,
        alarm_minutes=_count("alarm_minutes", alarm_minutes, 1),
        scale_in_minutes=_count("scale_in_minutes", scale_in_minutes, 1), scale_in_margin=scale_in_margin,
        update_s=_count("update_s", update_s), burst_s=_count("burst_s", burst_s),
        decreases_anytime=_count("decreases_anytime", decreases_anytime),
        extra_decrease_after_s=_count("extra_decrease_after_s", extra_decrease_after_s), initial=initial_capacity)
    price = _capacity_hour_price(kind, prices)
    duration = len(rates) * step
    ideal_units = sum(min(max(_ceil(r / target), low_cap), high_cap) for r in rates) * step
    with _Exact():
        cost = _hours(sum(capacity) * step) * price
        ideal = _hours(ideal_units) * price
    return ScalingResult(
        f"provisioned + auto scaling ({target:.0%})", cost, _per_day(cost, duration),
        _whole_units(sum(rates) * step), throttled, seconds / duration,
        note=f"{decreases} scale-ins; scale-out after {alarm_minutes} min + {update_s} s",
        ideal_cost_per_day=_per_day(ideal, duration), capacity=tuple(capacity))


def dynamodb_reserved(demand: Sequence[float], *, reserved_units: int | None = None, step_s: int = 60,
                      kind: str = "write", prices: ScalingPrices = SCALING_PRICES_US_EAST_1,
                      **autoscaling: float) -> ScalingResult:
    """Provisioned with auto scaling, its baseline bought as 1-year reserved capacity (blocks of 100 units).

    ``reserved_units`` defaults to the cheapest number of 100-unit blocks for this day's auto-scaled capacity
    (a block pays for itself when the table keeps it busy for more than about 11 hours a day at the default
    prices). The reserved units cost their hourly rate and their upfront fee spread over 365 days, whatever the
    table uses; capacity above them costs the standard rate. Throttling is the auto-scaled
    table's (reservation is billing only). ``autoscaling`` goes to :func:`dynamodb_provisioned_autoscaling`.

    Examples:
        >>> run = dynamodb_reserved([300.0] * 1440, step_s=60)
        >>> run.note, run.cost_per_day
        ('400 units reserved (1 year)', Decimal('3.32503562'))
    """
    base = dynamodb_provisioned_autoscaling(demand, step_s=step_s, kind=kind, prices=prices,
                                            **autoscaling)  # type: ignore[arg-type]
    step = step_s
    duration = len(base.capacity) * step
    upfront = (prices.dynamodb_reserved_wcu_upfront_per_100 if kind == "write"
               else prices.dynamodb_reserved_rcu_upfront_per_100)
    hourly = (prices.dynamodb_reserved_wcu_hour_per_100 if kind == "write"
              else prices.dynamodb_reserved_rcu_hour_per_100)

    def cost_with(reserved: int) -> Decimal:
        above = sum(max(0, c - reserved) for c in base.capacity) * step
        amortised = (Decimal(reserved // 100) * upfront * duration / (_TERM_DAYS * DAY_S)).quantize(
            _UPFRONT, ROUND_HALF_EVEN)
        with _Exact():
            return (amortised + _hours(reserved * duration) / 100 * hourly
                    + _hours(above) * _capacity_hour_price(kind, prices))

    if reserved_units is None:
        reserved = min(range(0, max(base.capacity) + 1, 100), key=lambda units: (cost_with(units), units))
    else:
        reserved = _count("reserved_units", reserved_units)
    if reserved % 100:
        raise ValueError(f"reserved capacity is bought in blocks of 100 units, got {reserved}: round to a block")
    cost = cost_with(reserved)
    return ScalingResult("reserved baseline + auto scaling", cost, _per_day(cost, duration), base.demand_units,
                         base.throttled_units, base.throttled_seconds_share,
                         note=f"{reserved} units reserved (1 year)", ideal_cost_per_day=base.ideal_cost_per_day,
                         capacity=base.capacity, reserved_units=reserved)


# -- Lambda and Fargate ----------------------------------------------------------------------------------------------
def _gb_seconds_price(prices: ScalingPrices, architecture: str) -> Decimal:
    return prices.lambda_x86_per_gb_second if architecture == "x86_64" else prices.lambda_arm64_per_gb_second


def lambda_cost(requests: int, *, duration_ms: int, memory_mb: int, architecture: str = "x86_64",
                prices: ScalingPrices = SCALING_PRICES_US_EAST_1) -> Decimal:
    """Requests plus GB-seconds (``requests x duration x memory``), exactly.

    Examples:
        >>> lambda_cost(1_000_000, duration_ms=120, memory_mb=512)
        Decimal('1.2000020000')
    """
    count = _count("requests", requests)
    ms = _count("duration_ms", duration_ms, 1)
    mb = _count("memory_mb", memory_mb, 128)
    with _Exact():
        gb_seconds = Decimal(count) * ms * mb / 1000 / 1024
        return (count * prices.lambda_requests_per_million / _MILLION
                + gb_seconds * _gb_seconds_price(prices, _architecture(architecture)))


def lambda_compute(rate: Sequence[float], *, step_s: int = 60, duration_ms: int = 120, memory_mb: int = 512,
                   architecture: str = "x86_64", prices: ScalingPrices = SCALING_PRICES_US_EAST_1) -> ScalingResult:
    """Lambda for a request-rate series: requests rounded up over the series, priced by :func:`lambda_cost`.

    Examples:
        >>> lambda_compute([10.0] * 1440).cost_per_day
        Decimal('1.03680173')
    """
    rates = _series("rate", rate)
    step = _step(step_s)
    requests = _whole_units(sum(rates) * step)
    cost = lambda_cost(requests, duration_ms=duration_ms, memory_mb=memory_mb, architecture=architecture,
                       prices=prices)
    duration = len(rates) * step
    return ScalingResult("lambda", cost, _per_day(cost, duration), requests, 0.0, 0.0,
                         note=f"{duration_ms} ms at {memory_mb} MB, {architecture}")


def fargate_cost(task_seconds: int, *, task_vcpu: float | str | Decimal = "0.5",
                 task_memory_gb: float | str | Decimal = "1", architecture: str = "x86_64",
                 prices: ScalingPrices = SCALING_PRICES_US_EAST_1) -> Decimal:
    """Task-seconds of one task size, as task-hours (quantized) x (vCPU-hour + GB-hour), exactly.

    Examples:
        >>> fargate_cost(2 * 86_400)  # two 0.5 vCPU / 1 GB tasks all day
        Decimal('1.184880000000')
    """
    seconds = _count("task_seconds", task_seconds)
    vcpu, memory = _size(task_vcpu), _size(task_memory_gb)
    arm = _architecture(architecture) == "arm64"
    with _Exact():
        per_hour = (vcpu * (prices.fargate_arm64_vcpu_hour if arm else prices.fargate_x86_vcpu_hour)
                    + memory * (prices.fargate_arm64_gb_hour if arm else prices.fargate_x86_gb_hour))
        return _hours(seconds) * per_hour


def fargate_compute(rate: Sequence[float], *, per_task_tps: float = 50.0, target_utilisation: float = 0.7,
                    scaling: str = "step", scale_lag_s: int = 180, min_tasks: int = 2, max_tasks: int = 1000,
                    fixed_tasks: int | None = None, step_s: int = 60, task_vcpu: float | str | Decimal = "0.5",
                    task_memory_gb: float | str | Decimal = "1", architecture: str = "x86_64",
                    prices: ScalingPrices = SCALING_PRICES_US_EAST_1) -> ScalingResult:
    """Fargate tasks for a request-rate series: fixed, or step scaling that follows demand ``scale_lag_s`` late.

    A task serves ``per_task_tps`` at 100%; the fleet is sized for ``target_utilisation``:
    ``ceil(rate / (per_task_tps x target))`` tasks, never below ``min_tasks`` (two, one per Availability Zone).
    ``scaling="fixed"`` runs ``fixed_tasks`` (default: sized for the series' peak) all day. Demand above the
    fleet's full capacity is counted as ``throttled_units``: it queues or is refused, in either case late.

    Examples:
        >>> run = fargate_compute([10.0] * 1440, per_task_tps=50)
        >>> run.capacity[0], run.cost_per_day, run.throttled_units
        (2, Decimal('1.18488000'), 0.0)
    """
    rates = _series("rate", rate)
    step = _step(step_s)
    throughput = _positive("per_task_tps", per_task_tps)
    target = _utilisation("target_utilisation", target_utilisation)
    floor = _count("min_tasks", min_tasks, 1)
    ceiling = _count("max_tasks", max_tasks, floor)
    if scaling not in ("step", "fixed"):
        raise ValueError(f"scaling must be 'step' or 'fixed', got {scaling!r}")
    needed = [min(max(_ceil(r / (throughput * target)), floor), ceiling) for r in rates]
    if scaling == "fixed":
        fleet = max(needed) if fixed_tasks is None else _count("fixed_tasks", fixed_tasks, 1)
        tasks = [fleet] * len(rates)
        label = f"fargate fixed ({fleet} tasks)"
    else:
        lag = math.ceil(_count("scale_lag_s", scale_lag_s) / step)
        tasks = [needed[max(0, i - lag)] for i in range(len(rates))]
        label = f"fargate step scaling ({scale_lag_s} s lag)"
    throttled = seconds = 0.0
    for r, n in zip(rates, tasks):
        if r > n * throughput + 1e-9:
            throttled += (r - n * throughput) * step
            seconds += step
    cost = fargate_cost(sum(tasks) * step, task_vcpu=task_vcpu, task_memory_gb=task_memory_gb,
                        architecture=architecture, prices=prices)
    duration = len(rates) * step
    return ScalingResult(label, cost, _per_day(cost, duration), _whole_units(sum(rates) * step), throttled,
                         seconds / duration, note=f"{per_task_tps:g} TPS per task at {target:.0%}",
                         capacity=tuple(tasks))


def lambda_fargate_break_even_tps(*, duration_ms: int = 120, memory_mb: int = 512, per_task_tps: float = 50.0,
                                  target_utilisation: float = 0.7, min_tasks: int = 2,
                                  task_vcpu: float | str | Decimal = "0.5", task_memory_gb: float | str | Decimal = "1",
                                  architecture: str = "x86_64", prices: ScalingPrices = SCALING_PRICES_US_EAST_1
                                  ) -> BreakEven | None:
    """The steady rate above which an always-on Fargate fleet never costs more than Lambda (closed form).

    Lambda costs ``L x r`` a day at ``r`` requests/s; the fleet ``C x max(m, ceil(r / (T u)))`` with ``C`` a task's
    daily cost, ``T`` per-task throughput, ``u`` the target and ``m`` the minimum fleet. If ``L <= C / (T u)``
    Lambda is never dearer (None). Otherwise the fleet is dearer only just below ``k C / L`` on the ``k``-task step,
    which happens while ``k C / L > (k - 1) T u``, i.e. for ``k < L T u / (L T u - C)``; the last such step
    ``K = max(m, ceil(L T u / (L T u - C)) - 1)`` gives the break-even ``K C / L``.

    Examples:
        >>> even = lambda_fargate_break_even_tps()
        >>> even.tps, even.tasks
        (Decimal('11.4282'), 2)
    """
    floor = _count("min_tasks", min_tasks, 1)
    throughput = Decimal(str(_positive("per_task_tps", per_task_tps)))
    target = Decimal(str(_utilisation("target_utilisation", target_utilisation)))
    lam = lambda_cost(DAY_S, duration_ms=duration_ms, memory_mb=memory_mb, architecture=architecture,
                      prices=prices)  # one request per second for a day
    task = fargate_cost(DAY_S, task_vcpu=task_vcpu, task_memory_gb=task_memory_gb, architecture=architecture,
                        prices=prices)
    capacity = throughput * target
    if lam * capacity <= task:
        return None
    ratio = lam * capacity / (lam * capacity - task)
    steps = max(floor, int(ratio.to_integral_value(ROUND_CEILING)) - 1)
    tps = (steps * task / lam).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
    return BreakEven(tps, steps, lam, task)


def provisioned_concurrency(rate: Sequence[float], *, provisioned: int = 0,
                            window_s: tuple[int, int] | None = None, reserved_concurrency: int | None = None,
                            duration_ms: int = 120, memory_mb: int = 512, keep_warm_s: int = 600,
                            init_ms: int = 800, step_s: int = 60,
                            prices: ScalingPrices = SCALING_PRICES_US_EAST_1) -> ScalingResult:
    """Lambda with ``provisioned`` environments kept warm in ``window_s`` (None: all series), and an optional cap.

    Provisioned environments cost ``provisioned x memory x window`` GB-seconds (window rounded up to 5 minutes)
    and serve up to ``provisioned`` concurrent invocations at the lower duration price; the rest run on demand.
    Concurrency is ``rate x duration`` rounded up to whole environments; an on-demand environment stays warm
    ``keep_warm_s`` after its last use, so a cold start happens when on-demand concurrency rises above its level of
    the last ``keep_warm_s``. ``reserved_concurrency`` caps concurrency: requests above it are throttled. A cold
    start adds ``init_ms`` (an input: measure it); the note gives its effect on p99 (x86 prices only).

    Examples:
        >>> day = [2.0] * 420 + [20.0] * 720 + [2.0] * 300  # requests/s per minute: busy 07:00-19:00
        >>> none = provisioned_concurrency(day)
        >>> peak = provisioned_concurrency(day, provisioned=3, window_s=(7 * 3600, 19 * 3600))
        >>> none.cold_start_share > peak.cold_start_share
        True
        >>> none.cost_per_day, peak.cost_per_day  # 80% busy: the lower duration price more than pays for it
        (Decimal('1.14048190'), Decimal('1.05048118'))
    """
    rates = _series("rate", rate)
    step = _step(step_s)
    envs = _count("provisioned", provisioned)
    duration_s = _count("duration_ms", duration_ms, 1) / 1000
    mb = _count("memory_mb", memory_mb, 128)
    warm_steps = max(1, math.ceil(_count("keep_warm_s", keep_warm_s) / step))
    total = len(rates) * step
    start, end = (0, total) if window_s is None else window_s
    if not 0 <= start < end <= total:
        raise ValueError(f"window_s must lie inside the series [0, {total}] with start < end, got {window_s!r}")
    cap = None if reserved_concurrency is None else _count("reserved_concurrency", reserved_concurrency, 1)
    recent: list[int] = []
    cold = 0
    throttled = seconds = 0.0
    on_provisioned = on_demand = 0.0
    for i, r in enumerate(rates):
        concurrency = r * duration_s
        if cap is not None and concurrency > cap:
            refused = (concurrency - cap) / duration_s * step
            throttled += refused
            seconds += step
            r, concurrency = cap / duration_s, float(cap)
        warm = envs if start <= i * step < end else 0
        needed = _ceil(concurrency)
        spill = max(0, needed - warm)
        cold += max(0, spill - max(recent[-warm_steps:], default=0))
        recent.append(spill)
        share = min(concurrency, warm) / concurrency if concurrency else 0.0
        on_provisioned += r * step * share
        on_demand += r * step * (1 - share)
    served = _whole_units(on_provisioned + on_demand)
    provisioned_requests = min(served, _whole_units(on_provisioned))
    window = math.ceil((end - start) / _PC_BILLING_S) * _PC_BILLING_S if envs else 0
    with _Exact():
        gb = Decimal(mb) / 1024
        kept = (Decimal(envs * window) * gb).quantize(_QUANTITY, ROUND_HALF_EVEN)
        pc_duration = (Decimal(provisioned_requests) * duration_ms / 1000 * gb).quantize(_QUANTITY, ROUND_HALF_EVEN)
        cost = (lambda_cost(served - provisioned_requests, duration_ms=duration_ms, memory_mb=mb, prices=prices)
                + provisioned_requests * prices.lambda_requests_per_million / _MILLION
                + kept * prices.lambda_provisioned_per_gb_second
                + pc_duration * prices.lambda_provisioned_duration_per_gb_second)
    asked = _whole_units(sum(rates) * step)
    cold_share = cold / served if served else 0.0
    where = "none" if not envs else ("all day" if window_s is None else f"{start // 3600:02d}-{end // 3600:02d}h")
    label = f"provisioned concurrency {envs} ({where})" if envs else "on-demand concurrency"
    if cap is not None:
        label += f", capped at {cap}"
    p99 = f"cold starts above 1%: p99 includes {init_ms} ms init" if cold_share > 0.01 else "p99 without init"
    return ScalingResult(label, cost, _per_day(cost, total), asked, throttled, seconds / total, cold_share,
                         note=p99)
