"""Metrics in CloudWatch Embedded Metric Format (EMF), through Powertools for AWS Lambda.

A Lambda function (or any process whose stdout reaches CloudWatch Logs) prints one JSON document per
metric set; CloudWatch extracts the metrics asynchronously, with no ``PutMetricData`` call on the
payment's path. :class:`PaymentMetrics` keeps one Powertools ``EphemeralMetrics`` per dimension set
(stage; caller for detokenize counts), so each document's dimensions are exact, and hands the finished
documents to a sink (default: print to stdout). Dimension values go through the personal-data guard.

:func:`validate_emf` checks a document against the published EMF specification, for tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from .redaction import refuse_personal_data

__all__ = ["EmfError", "PaymentMetrics", "validate_emf"]

_MAX_VALUES = 99  # Powertools prints a set by itself at 100 values; flush before it does


class EmfError(ValueError):
    """A document is not valid EMF; the message names the rule it breaks."""


def _line(document: Mapping[str, Any]) -> str:
    """A document as one compact JSON line: what reaches CloudWatch Logs."""
    return json.dumps(document, separators=(",", ":"))


def _print(document: dict[str, Any]) -> None:
    print(_line(document))


class PaymentMetrics:
    """Stage latency and outcome counts, and detokenize counts per caller, as EMF documents.

    Powertools adds a ``service`` dimension to every metric set; with ``service=None`` it adds none (an alarm
    matches a metric only with its exact set of dimensions, so the set must be the one the alarm names).

    :attr:`bytes_emitted` counts the documents handed to the sink as the compact JSON lines the default
    sink prints (newline included): the bytes CloudWatch Logs ingests, for the cost model.

    Examples:
        >>> docs = []
        >>> metrics = PaymentMetrics(namespace="FasterPay", service="payments", sink=docs.append)
        >>> metrics.stage("authorise", latency_ms=12.5, ok=True)
        >>> metrics.flush()
        1
        >>> docs[0]["StageLatency"], docs[0]["stage"]
        ([12.5], 'authorise')
        >>> metrics.bytes_emitted == len(json.dumps(docs[0], separators=(",", ":"))) + 1
        True
    """

    def __init__(self, *, namespace: str, service: str | None, sink: Callable[[dict[str, Any]], None] = _print,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.namespace = namespace
        self.service = service
        self.sink = sink
        self._clock = clock
        self._sets: dict[tuple[tuple[str, str], ...], EphemeralMetrics] = {}
        self._counts: dict[tuple[tuple[str, str], ...], int] = {}
        self.bytes_emitted = 0

    def _set(self, dimensions: Mapping[str, str]) -> EphemeralMetrics:
        refuse_personal_data(dimensions, where="metric dimension")
        key = tuple(sorted(dimensions.items()))
        if self._counts.get(key, 0) >= _MAX_VALUES:
            self._emit(key)
        if key not in self._sets:
            metrics = EphemeralMetrics(namespace=self.namespace, service=self.service)
            if self.service is None:
                metrics.service = None  # no ``service`` dimension, even where POWERTOOLS_SERVICE_NAME is set
            for name, value in key:
                metrics.add_dimension(name=name, value=value)
            self._sets[key] = metrics
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._sets[key]

    def stage(self, stage: str, *, latency_ms: float, ok: bool) -> None:
        """One payment through one stage: latency, and a success or failure count."""
        metrics = self._set({"stage": stage})
        metrics.add_metric(name="StageLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
        metrics.add_metric(name="StageSuccess" if ok else "StageFailure", unit=MetricUnit.Count, value=1)

    def record(self, name: str, value: float, *, unit: str, dimensions: Mapping[str, str]) -> None:
        """One value of metric ``name`` (``unit`` is a CloudWatch unit name, e.g. ``"Milliseconds"``)."""
        self._set(dimensions).add_metric(name=name, unit=MetricUnit(unit), value=value)

    def detokenize(self, caller: str) -> None:
        """One detokenize by ``caller`` (a principal, not a person): feeds the per-caller spike alarm."""
        self._set({"caller": caller}).add_metric(name="Detokenize", unit=MetricUnit.Count, value=1)

    def _emit(self, key: tuple[tuple[str, str], ...]) -> None:
        metrics = self._sets.pop(key, None)
        self._counts.pop(key, None)
        if metrics is None or not metrics.metric_set:
            return
        if self._clock is not None:
            metrics.set_timestamp(self._clock().astimezone(UTC))
        document = dict(metrics.serialize_metric_set())
        self.sink(document)
        self.bytes_emitted += len(_line(document).encode("utf-8")) + 1
        metrics.clear_metrics()

    def flush(self) -> int:
        """Emit every pending metric set; returns the number of documents."""
        keys = [k for k, m in self._sets.items() if m.metric_set]
        for key in list(self._sets):
            self._emit(key)
        return len(keys)


def validate_emf(document: Mapping[str, Any]) -> None:
    """Raise :class:`EmfError` unless ``document`` follows the CloudWatch EMF specification.

    Checks: ``_aws`` with an integer millisecond ``Timestamp`` and a ``CloudWatchMetrics`` list; each
    directive has a ``Namespace``, ``Dimensions`` as lists of at most 30 names (each a member of the
    root), and ``Metrics`` with a ``Name`` (a member of the root, a number or a list of at most 100
    numbers) and an optional ``Unit``.

    Examples:
        >>> validate_emf({"_aws": {"Timestamp": 0, "CloudWatchMetrics": [
        ...     {"Namespace": "FasterPay", "Dimensions": [["stage"]], "Metrics": [{"Name": "StageLatency"}]}]},
        ...     "stage": "clear", "StageLatency": [12.5]})
    """
    aws = document.get("_aws")
    if not isinstance(aws, Mapping):
        raise EmfError("the root must have an _aws object")
    if not isinstance(aws.get("Timestamp"), int) or isinstance(aws.get("Timestamp"), bool):
        raise EmfError("_aws.Timestamp must be an integer (milliseconds since the epoch)")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        raise EmfError("_aws.CloudWatchMetrics must be a non-empty list")
    for directive in directives:
        if not isinstance(directive.get("Namespace"), str) or not directive["Namespace"]:
            raise EmfError("each directive needs a Namespace")
        for dimension_set in directive.get("Dimensions", []):
            if not isinstance(dimension_set, list) or len(dimension_set) > 30:
                raise EmfError("each dimension set is a list of at most 30 names")
            for name in dimension_set:
                if not isinstance(document.get(name), str):
                    raise EmfError(f"dimension {name!r} must be a string member of the root")
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list) or not metrics or len(metrics) > 100:
            raise EmfError("Metrics must list 1 to 100 metric definitions")
        for metric in metrics:
            value = document.get(metric.get("Name"))
            values = value if isinstance(value, list) else [value]
            if not values or len(values) > 100 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise EmfError(f"metric {metric.get('Name')!r} needs a number or a list of up to 100 numbers")
