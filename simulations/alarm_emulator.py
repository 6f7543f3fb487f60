"""CloudWatch alarms evaluated offline: metric data, metric math, M-of-N alarms and composite rules. EMULATED.

moto stores alarms (``PutMetricAlarm``) but never evaluates them, has no composite alarms, and cannot compute
percentile statistics such as ``PR(:150)``. To show *when* the operations template's alarms would fire, this
module evaluates the same alarm definitions, resolved from the template, against metric data kept at
CloudWatch's one-minute resolution, minute by minute, following the documented semantics:

* **Statistics** over a period: ``Sum``, ``SampleCount``, ``Average``, ``Minimum``, ``Maximum``, percentiles
  (``p99``, ``p99.9``) and percentile rank ``PR(a:b)`` (the percentage of values above ``a`` and at most
  ``b``; either bound may be empty). Distributions are kept as histograms with 1 ms bins up to 2 s and 10 ms
  bins up to 60 s, so ``PR`` at a whole-millisecond bound is exact and a percentile is exact to its bin.
* **Metric math**: ``+ - * /``, unary minus, numbers, query ids and ``FILL(x, value)``. A datapoint whose
  inputs are missing is missing; division by zero gives a missing datapoint, as CloudWatch drops it. Other
  functions (``ANOMALY_DETECTION_BAND``, ``SERVICE_QUOTA``, ``SEARCH``) raise :class:`UnsupportedAlarm`:
  their models are AWS's own and are not emulated.
* **Alarms**: a sliding window of ``EvaluationPeriods`` periods of ``Period`` seconds ending at the
  evaluation time, ``DatapointsToAlarm`` of them breaching (default: all), and ``TreatMissingData``
  (``missing``, ``notBreaching``, ``breaching``, ``ignore``).
* **Composite alarms**: ``ALARM(name)``, ``OK(name)``, ``INSUFFICIENT_DATA(name)``, ``TRUE``, ``FALSE``,
  ``AND``, ``OR``, ``NOT`` and parentheses, over the states of the metric alarms at the same minute.

What it does not do: CloudWatch evaluates alarms about once a minute with some delay after the datapoints
arrive; here evaluation is exactly at each minute's end, so detection times are a lower bound by up to a
minute or two. Metric data arrives on time (EMF extraction lag is not modelled).

Examples:
    >>> store = MetricStore(start_s=0, minutes=10)
    >>> for minute in range(10):
    ...     store.add("NS", "Errors", {}, minute, count=5 if minute >= 6 else 0)
    >>> alarm = {"AlarmName": "errors", "Namespace": "NS", "MetricName": "Errors", "Statistic": "Sum",
    ...          "Period": 60, "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 1,
    ...          "ComparisonOperator": "GreaterThanOrEqualToThreshold"}
    >>> history = evaluate_timeline(store, [alarm])
    >>> history.first("errors", "ALARM")
    480.0
"""

from __future__ import annotations

import ast
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

__all__ = [
    "HISTOGRAM_EDGES",
    "AlarmHistory",
    "MetricStore",
    "Transition",
    "UnsupportedAlarm",
    "evaluate_composite_rule",
    "evaluate_expression",
    "evaluate_timeline",
    "expression_ids",
]

#: Upper bin edges in ms: bin ``i`` holds values in ``(edges[i-1], edges[i]]``; the last bin is open-ended.
HISTOGRAM_EDGES = np.concatenate([np.arange(0.0, 2_000.0, 1.0), np.arange(2_000.0, 60_000.0 + 1, 10.0)])

_OPERATORS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_MISSING = ("missing", "notBreaching", "breaching", "ignore")


class UnsupportedAlarm(ValueError):
    """An alarm, statistic or expression this emulator does not evaluate; the message names what."""


def _key(namespace: str, name: str, dimensions: Mapping[str, str]) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return namespace, name, tuple(sorted(dimensions.items()))


@dataclass
class _Series:
    """Per-minute count, sum, min, max, and a histogram when values were distributions."""

    minutes: int
    count: np.ndarray = field(init=False)
    total: np.ndarray = field(init=False)
    low: np.ndarray = field(init=False)
    high: np.ndarray = field(init=False)
    hist: np.ndarray | None = None
    _cum: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
    #: traffic before the first minute, as one block spread evenly over ``history_minutes``
    history_minutes: int = 0
    history: tuple[float, float, float, float, np.ndarray | None] | None = None

    def __post_init__(self) -> None:
        self.count = np.zeros(self.minutes)
        self.total = np.zeros(self.minutes)
        self.low = np.full(self.minutes, np.inf)
        self.high = np.full(self.minutes, -np.inf)

    def cumulative(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if self._cum is None:
            zero = np.zeros(1)
            hist = None
            if self.hist is not None:
                hist = np.vstack([np.zeros((1, self.hist.shape[1])), np.cumsum(self.hist, axis=0)])
            self._cum = (np.concatenate([zero, np.cumsum(self.count)]),
                         np.concatenate([zero, np.cumsum(self.total)]), hist)
        return self._cum


class MetricStore:
    """Metric data at one-minute resolution from ``start_s`` (epoch seconds) for ``minutes`` minutes.

    :meth:`put_metric_data` takes the arguments of CloudWatch's ``PutMetricData`` (``Value``, ``Values`` with
    ``Counts``, or ``StatisticValues``), so what a service publishes can be replayed here unchanged;
    :meth:`add` is the vectorised form a simulation uses.
    """

    def __init__(self, *, start_s: float, minutes: int) -> None:
        if minutes < 1:
            raise ValueError("minutes must be at least 1")
        self.start_s = float(start_s)
        self.minutes = minutes
        self._series: dict[tuple[str, str, tuple[tuple[str, str], ...]], _Series] = {}
        self._memo: dict[tuple[Any, ...], float | None] = {}

    def _minute(self, at: float | datetime) -> int:
        seconds = at.timestamp() if isinstance(at, datetime) else float(at)
        minute = int((seconds - self.start_s) // 60)
        if not 0 <= minute < self.minutes:
            raise ValueError(f"timestamp {at} is outside the store's {self.minutes} minutes")
        return minute

    def _get(self, namespace: str, name: str, dimensions: Mapping[str, str]) -> _Series:
        key = _key(namespace, name, dimensions)
        if key not in self._series:
            self._series[key] = _Series(self.minutes)
        series = self._series[key]
        series._cum = None
        self._memo.clear()
        return series

    def add_history(self, namespace: str, name: str, dimensions: Mapping[str, str], *, minutes: int,
                    values: Sequence[float] | np.ndarray, counts: Sequence[float] | np.ndarray | None = None) -> None:
        """Traffic of the ``minutes`` before the store's first minute, as one block: a window that reaches back
        before the start takes the share of the block its overlap covers (the history is assumed even)."""
        if minutes < 1:
            raise ValueError("minutes must be at least 1")
        array, weights = _weighted(values, counts)
        series = self._get(namespace, name, dimensions)
        hist = np.bincount(np.searchsorted(HISTOGRAM_EDGES, array, side="left"), weights=weights,
                           minlength=HISTOGRAM_EDGES.size + 1)
        series.history_minutes = minutes
        series.history = (float(weights.sum()), float((array * weights).sum()), float(array.min()),
                          float(array.max()), hist)

    def add(self, namespace: str, name: str, dimensions: Mapping[str, str], minute: int, *,
            values: Sequence[float] | np.ndarray | None = None, count: float | None = None,
            counts: Sequence[float] | np.ndarray | None = None) -> None:
        """At ``minute``: the individual ``values`` of a distribution (each ``counts`` times, as in
        ``PutMetricData``'s ``Values`` and ``Counts``), or one datapoint of ``count``."""
        if (values is None) == (count is None):
            raise ValueError("give values or count")
        series = self._get(namespace, name, dimensions)
        if not 0 <= minute < self.minutes:
            raise ValueError(f"minute {minute} is outside the store's {self.minutes} minutes")
        if count is not None:
            if not math.isfinite(count):
                raise ValueError("a datapoint must be finite")
            series.count[minute] += 1
            series.total[minute] += count
            series.low[minute] = min(series.low[minute], count)
            series.high[minute] = max(series.high[minute], count)
            return
        array, weights = _weighted(values, counts)
        if array.size == 0:
            return
        if series.hist is None:
            series.hist = np.zeros((self.minutes, HISTOGRAM_EDGES.size + 1))
        series.count[minute] += float(weights.sum())
        series.total[minute] += float((array * weights).sum())
        series.low[minute] = min(series.low[minute], float(array.min()))
        series.high[minute] = max(series.high[minute], float(array.max()))
        series.hist[minute] += np.bincount(np.searchsorted(HISTOGRAM_EDGES, array, side="left"), weights=weights,
                                           minlength=HISTOGRAM_EDGES.size + 1)

    def put_metric_data(self, *, Namespace: str, MetricData: Iterable[Mapping[str, Any]]) -> None:  # noqa: N803
        """Record datapoints given in ``PutMetricData``'s own shape."""
        for datum in MetricData:
            dims = {d["Name"]: d["Value"] for d in datum.get("Dimensions", ())}
            minute = self._minute(datum["Timestamp"])
            if "Values" in datum:
                counts = datum.get("Counts") or [1] * len(datum["Values"])
                if len(counts) != len(datum["Values"]):
                    raise ValueError("Values and Counts differ in length")
                self.add(Namespace, datum["MetricName"], dims, minute, values=datum["Values"], counts=counts)
            elif "StatisticValues" in datum:
                raise UnsupportedAlarm("StatisticValues datapoints are not emulated; send Values and Counts")
            else:
                self.add(Namespace, datum["MetricName"], dims, minute, count=float(datum["Value"]))

    def statistic(self, namespace: str, name: str, dimensions: Mapping[str, str], stat: str, *,
                  period_s: int, end_minute: int) -> float | None:
        """``stat`` over the ``period_s`` ending with minute ``end_minute`` (inclusive); None when no data."""
        memo = (_key(namespace, name, dimensions), stat, int(period_s), end_minute)
        if memo not in self._memo:
            self._memo[memo] = self._statistic(namespace, name, dimensions, stat, period_s=period_s,
                                               end_minute=end_minute)
        return self._memo[memo]

    def _statistic(self, namespace: str, name: str, dimensions: Mapping[str, str], stat: str, *,
                   period_s: int, end_minute: int) -> float | None:
        series = self._series.get(_key(namespace, name, dimensions))
        if series is None:
            return None
        width = max(1, int(period_s) // 60)
        hi = min(end_minute + 1, self.minutes)
        lo = max(0, end_minute + 1 - width)
        if hi < lo:
            return None
        count_cum, total_cum, hist_cum = series.cumulative()
        n = float(count_cum[hi] - count_cum[lo])
        total = float(total_cum[hi] - total_cum[lo])
        before = min(series.history_minutes, max(0, width - (end_minute + 1)))
        share = before / series.history_minutes if before and series.history is not None else 0.0
        history = series.history if share else None
        if history is not None:
            n, total = n + share * history[0], total + share * history[1]
        if n == 0:
            return None
        if stat == "SampleCount":
            return n
        if stat == "Sum":
            return total
        if stat == "Average":
            return total / n
        if stat in ("Minimum", "Maximum"):
            pick = min if stat == "Minimum" else max
            values = []
            if hi > lo:
                values.append(float(series.low[lo:hi].min() if stat == "Minimum" else series.high[lo:hi].max()))
            if history is not None:
                values.append(history[2] if stat == "Minimum" else history[3])
            return pick(values)
        if hist_cum is None and (history is None or history[4] is None):
            raise UnsupportedAlarm(f"{stat} needs a distribution; {name} was sent as single datapoints")
        hist = hist_cum[hi] - hist_cum[lo] if hist_cum is not None else 0.0
        if history is not None and history[4] is not None:
            hist = hist + share * history[4]
        if match := re.fullmatch(r"p(\d+(?:\.\d+)?)", stat):
            q = float(match.group(1)) / 100
            index = int(np.searchsorted(np.cumsum(hist), q * n, side="left"))
            return float(HISTOGRAM_EDGES[min(index, HISTOGRAM_EDGES.size - 1)])
        if match := re.fullmatch(r"PR\(([\d.]*):([\d.]*)\)", stat):
            low = float(match.group(1)) if match.group(1) else -math.inf
            high = float(match.group(2)) if match.group(2) else math.inf

            def at_most(x: float) -> float:
                if x == math.inf:
                    return n
                if x == -math.inf:
                    return 0.0
                index = int(np.searchsorted(HISTOGRAM_EDGES, x, side="right"))
                if index == 0 or HISTOGRAM_EDGES[index - 1] != x:
                    raise UnsupportedAlarm(f"PR bound {x} is not a bin edge of the emulator's histogram")
                return float(hist[:index].sum())

            return 100.0 * (at_most(high) - at_most(low)) / n
        raise UnsupportedAlarm(f"statistic {stat!r} is not emulated")


def _weighted(values: Sequence[float] | np.ndarray, counts: Sequence[float] | np.ndarray | None
              ) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(values, dtype=float)
    weights = np.ones(array.size) if counts is None else np.asarray(counts, dtype=float)
    if weights.shape != array.shape:
        raise ValueError("values and counts differ in length")
    if not (np.all(np.isfinite(array)) and np.all(np.isfinite(weights))) or np.any(weights < 0):
        raise ValueError("values must be finite and counts finite and non-negative")
    keep = weights > 0
    return array[keep], weights[keep]


# -- metric math ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _parsed(expression: str) -> ast.Expression:
    try:
        return ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise UnsupportedAlarm(f"cannot parse the expression {expression!r}: {exc.msg}") from None


def expression_ids(expression: str) -> set[str]:
    """The query ids an arithmetic expression reads (:class:`UnsupportedAlarm` for anything it cannot evaluate).

    Examples:
        >>> sorted(expression_ids("100 * FILL(timeouts, 0) / submissions"))
        ['submissions', 'timeouts']
    """
    names = {node.id for node in ast.walk(_parsed(expression)) if isinstance(node, ast.Name)}
    evaluate_expression(expression, dict.fromkeys(names, 1.0))  # refuses what it cannot evaluate
    functions = {node.func.id for node in ast.walk(_parsed(expression))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    return names - functions


def evaluate_expression(expression: str, values: Mapping[str, float | None]) -> float | None:
    """A metric-math ``expression`` over one datapoint of each query id in ``values``.

    Examples:
        >>> evaluate_expression("(n * (100 - pr) / 100 + FILL(err, 0)) / (n + FILL(err, 0))",
        ...                     {"n": 10_000, "pr": 99.5, "err": None})
        0.005
        >>> evaluate_expression("a / b", {"a": 1, "b": 0}) is None
        True
    """
    tree = _parsed(expression)

    def ev(node: ast.AST) -> float | None:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise UnsupportedAlarm(f"the expression refers to {node.id!r}, which is not a query id")
            value = values[node.id]
            return None if value is None or math.isnan(float(value)) else float(value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = ev(node.operand)
            return None if operand is None else (-operand if isinstance(node.op, ast.USub) else operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            left, right = ev(node.left), ev(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            return None if right == 0 else left / right
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "FILL" and len(node.args) == 2 and not node.keywords:
                value = ev(node.args[0])
                return ev(node.args[1]) if value is None else value
            raise UnsupportedAlarm(f"function {node.func.id} is not emulated (its model is AWS's own)")
        raise UnsupportedAlarm(f"unsupported syntax in the expression {expression!r}")

    return ev(tree)


# -- composite rules ---------------------------------------------------------------------------------------
_TOKEN = re.compile(r'\s*(?:(?P<fn>ALARM|OK|INSUFFICIENT_DATA)\(\s*(?:"(?P<q>[^"]+)"|(?P<bare>[^\s()"]+))\s*\)'
                    r"|(?P<kw>AND|OR|NOT|TRUE|FALSE)\b|(?P<paren>[()]))")


def _tokens(rule: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    rule = rule.rstrip()
    while pos < len(rule):
        match = _TOKEN.match(rule, pos)
        if match is None:
            raise UnsupportedAlarm(f"cannot read the alarm rule at {rule[pos:pos + 30]!r}")
        if match.group("fn"):
            out.append((match.group("fn"), match.group("q") or match.group("bare")))
        elif match.group("kw"):
            out.append(("kw", match.group("kw")))
        else:
            out.append(("paren", match.group("paren")))
        pos = match.end()
    return out


def evaluate_composite_rule(rule: str, states: Mapping[str, str]) -> bool:
    """Whether a composite ``AlarmRule`` holds for the alarms' current ``states`` (NOT binds tightest, then
    AND, then OR, as CloudWatch evaluates them).

    Examples:
        >>> evaluate_composite_rule('ALARM("a") AND NOT OK(b)', {"a": "ALARM", "b": "INSUFFICIENT_DATA"})
        True
    """
    tokens = _tokens(rule)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise UnsupportedAlarm(f"the alarm rule {rule!r} ends too early")
        pos += 1
        return tokens[pos - 1]

    def primary() -> bool:
        kind, value = take()
        if kind == "paren" and value == "(":
            result = disjunction()
            if take() != ("paren", ")"):
                raise UnsupportedAlarm(f"unbalanced parentheses in {rule!r}")
            return result
        if kind == "kw" and value in ("TRUE", "FALSE"):
            return value == "TRUE"
        if kind == "kw" and value == "NOT":
            return not primary()
        if kind in ("ALARM", "OK", "INSUFFICIENT_DATA"):
            if value not in states:
                raise UnsupportedAlarm(f"the alarm rule names {value!r}, which is not an alarm here")
            return states[value] == kind
        raise UnsupportedAlarm(f"unexpected {value!r} in the alarm rule {rule!r}")

    def conjunction() -> bool:
        result = primary()
        while peek() == ("kw", "AND"):
            take()
            right = primary()
            result = result and right
        return result

    def disjunction() -> bool:
        result = conjunction()
        while peek() == ("kw", "OR"):
            take()
            right = conjunction()
            result = result or right
        return result

    result = disjunction()
    if pos != len(tokens):
        raise UnsupportedAlarm(f"unexpected {tokens[pos][1]!r} in the alarm rule {rule!r}")
    return result


# -- evaluation ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    """An alarm entering ``state`` at ``at_s`` seconds from the store's start."""

    alarm: str
    state: str
    at_s: float


@dataclass
class AlarmHistory:
    """Every state change of every alarm, and each alarm's state at each minute's end."""

    transitions: list[Transition]
    states: dict[str, list[str]]

    def first(self, alarm: str, state: str, *, after_s: float = 0.0) -> float | None:
        """Seconds from the start to ``alarm``'s first change into ``state`` at or after ``after_s``."""
        return next((t.at_s for t in self.transitions if t.alarm == alarm and t.state == state and t.at_s >= after_s),
                    None)


def _value(alarm: Mapping[str, Any], store: MetricStore, end_minute: int) -> float | None:
    if "Metrics" not in alarm:
        dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", ())}
        stat = alarm.get("Statistic") or alarm.get("ExtendedStatistic")
        return store.statistic(alarm["Namespace"], alarm["MetricName"], dims, stat,
                               period_s=int(alarm["Period"]), end_minute=end_minute)
    if alarm.get("ThresholdMetricId"):
        raise UnsupportedAlarm(f"{alarm['AlarmName']}: anomaly-detection thresholds are not emulated")
    values: dict[str, float | None] = {}
    expressions: list[Mapping[str, Any]] = []
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            ms = query["MetricStat"]
            metric = ms["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", ())}
            values[query["Id"]] = store.statistic(metric["Namespace"], metric["MetricName"], dims, ms["Stat"],
                                                  period_s=int(ms["Period"]), end_minute=end_minute)
        else:
            expressions.append(query)
    for query in expressions:  # in order: an expression may use an earlier one
        values[query["Id"]] = evaluate_expression(query["Expression"], values)
    returned = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    if len(returned) != 1:
        raise UnsupportedAlarm(f"{alarm['AlarmName']}: exactly one query must return data, got {len(returned)}")
    return values[returned[0]["Id"]]


def _period(alarm: Mapping[str, Any]) -> int:
    if "Period" in alarm:
        return int(alarm["Period"])
    periods = {int(q["MetricStat"]["Period"]) for q in alarm["Metrics"] if "MetricStat" in q}
    if len(periods) != 1:
        raise UnsupportedAlarm(f"{alarm['AlarmName']}: the queries need one period, got {sorted(periods)}")
    return periods.pop()


def evaluate_timeline(store: MetricStore, alarms: Sequence[Mapping[str, Any]],
                      composites: Sequence[Mapping[str, Any]] = ()) -> AlarmHistory:
    """Evaluate every alarm at the end of each minute of ``store``.

    ``alarms`` are ``PutMetricAlarm`` requests (a resolved template's properties); ``composites`` have
    ``AlarmName`` and ``AlarmRule``.
    """
    history = AlarmHistory([], {a["AlarmName"]: [] for a in [*alarms, *composites]})
    for alarm in alarms:
        if alarm.get("TreatMissingData", "missing") not in _MISSING:
            raise UnsupportedAlarm(f"{alarm['AlarmName']}: TreatMissingData {alarm.get('TreatMissingData')!r}")
        if alarm["ComparisonOperator"] not in _OPERATORS:
            raise UnsupportedAlarm(f"{alarm['AlarmName']}: operator {alarm['ComparisonOperator']} is not emulated")
    seen: dict[tuple[str, int], float | None] = {}  # an M-of-N alarm reads each datapoint N times
    for minute in range(store.minutes):
        current: dict[str, str] = {}
        for alarm in alarms:
            name = alarm["AlarmName"]
            previous = history.states[name][-1] if history.states[name] else "INSUFFICIENT_DATA"
            period, n = _period(alarm), int(alarm["EvaluationPeriods"])
            m = int(alarm.get("DatapointsToAlarm") or n)
            step = max(1, period // 60)
            points = []
            for k in range(n):
                at = minute - k * step
                if (name, at) not in seen:
                    seen[(name, at)] = _value(alarm, store, at) if at >= 0 else None
                points.append(seen[(name, at)])
            missing = alarm.get("TreatMissingData", "missing")
            compare = _OPERATORS[alarm["ComparisonOperator"]]
            threshold = float(alarm["Threshold"])
            breaching = sum(1 for p in points if p is not None and compare(p, threshold))
            present = sum(1 for p in points if p is not None)
            if missing == "breaching":
                breaching += n - present
            if present == 0 and missing in ("missing", "ignore"):  # ignore keeps the state; missing has none
                state = previous if missing == "ignore" else "INSUFFICIENT_DATA"
            else:
                state = "ALARM" if breaching >= m else "OK"
            current[name] = state
        for composite in composites:
            current[composite["AlarmName"]] = "ALARM" if evaluate_composite_rule(composite["AlarmRule"], current) else "OK"
        for name, state in current.items():
            states = history.states[name]
            if not states or states[-1] != state:
                history.transitions.append(Transition(name, state, (minute + 1) * 60.0))
            states.append(state)
    return history
