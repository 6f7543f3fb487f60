"""The service level indicators the operations alarms watch, emitted as CloudWatch EMF.

Two objectives, each with its indicator, window and error budget (the operations article states them):

* **Authorisation**: 99.99% of authorisations succeed within 150 ms, over 30 days. Events: every
  submission the service accepted for processing. Good: a decision (ACTC, or a business rejection such
  as AM04) returned within 150 ms of the submission arriving. Bad: slower, or no decision at all (a
  technical failure: a 5xx, a timeout after retries, a dead-lettered message). Budget: 0.01% of events,
  about 4.3 minutes of total outage a month.
* **Critical path**: 99% of authorised payments reach ACSP within 300 ms of our own processing (the
  scheme's answer time excluded), over 30 days: "p99 below 300 ms" written as an objective. Events:
  authorised payments. Bad: slower than 300 ms, or failed for a technical reason on the way (for example
  the scheme connection timed out: AB05, AB06). Business rejections by the scheme or the beneficiary's
  bank are good events: the system did its job. Budget: 1%.

:class:`SliPublisher` emits one value per event, so CloudWatch can compute the good share itself with the
percentile-rank statistic (``PR(:150)`` is the percentage of values at or below 150):

======================== ============== ===================================================
metric                   unit           one datum per
======================== ============== ===================================================
``AuthorisationLatency`` Milliseconds   decision returned
``AuthorisationError``   Count          submission that got no decision
``CriticalPathLatency``  Milliseconds   payment that reached ACSP
``CriticalPathError``    Count          authorised payment that failed for a technical reason
``SchemeSubmission``     Count          submission to the scheme
``SchemeTimeout``        Count          submission the scheme did not answer in time
``ReconciliationMismatches`` Count      settlement cycle reconciled (0 when clean)
``DependencyThrottle``   Count          attempt an AWS service throttled (dimension ``service``)
======================== ============== ===================================================

:func:`count_throttles` hooks a boto3 client so that each throttled attempt (the SDK's own list of
throttling error codes) is counted, retried or not: KMS throttling shows up before payments fail.

Every datum carries the dimension ``Stage`` (the deployment stage, such as ``prod``; not the pipeline step,
which :meth:`PaymentMetrics.stage` reports under the lower-case ``stage``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .emf import PaymentMetrics
from .slo import Slo

__all__ = ["AUTHORISATION_SLO", "CRITICAL_PATH_SLO", "SLI_NAMESPACE", "THROTTLING_ERROR_CODES", "SliPublisher",
           "count_throttles"]

#: The namespace of the SLI metrics (the operations template's ``MetricNamespace`` default).
SLI_NAMESPACE = "FasterPay/Payments"
#: 99.99% of authorisations succeed within 150 ms, over 30 days.
AUTHORISATION_SLO = Slo("authorisation", objective=0.9999, threshold_ms=150, period_days=30)
#: 99% of authorised payments reach ACSP within 300 ms of our processing, over 30 days.
CRITICAL_PATH_SLO = Slo("critical-path", objective=0.99, threshold_ms=300, period_days=30)
#: The error codes botocore's standard retry mode treats as throttling (``botocore.retries.standard``).
THROTTLING_ERROR_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException"})


class SliPublisher:
    """Emit the SLI events of one deployment ``stage`` as EMF documents to ``sink`` (default: print to stdout,
    which Lambda sends to CloudWatch Logs).

    Each datum's dimensions are exactly ``Stage`` (plus ``service`` for a throttle), the set the operations
    alarms name: the publisher's own :class:`PaymentMetrics` adds no Powertools ``service`` dimension.

    Examples:
        >>> documents = []
        >>> sli = SliPublisher(stage="prod", sink=documents.append)
        >>> sli.authorisation(42.0); sli.authorisation(None); sli.metrics.flush()
        1
        >>> documents[0]["AuthorisationLatency"], documents[0]["AuthorisationError"], documents[0]["Stage"]
        ([42.0], [1.0], 'prod')
        >>> documents[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        [['Stage']]
    """

    def __init__(self, *, stage: str, namespace: str = SLI_NAMESPACE,
                 sink: Callable[[dict[str, Any]], None] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        if not stage or not stage.replace("-", "").isalnum():
            raise ValueError(f"stage must be a short name such as 'prod', got {stage!r}")
        kwargs: dict[str, Any] = {} if sink is None else {"sink": sink}
        self.metrics = PaymentMetrics(namespace=namespace, service=None, clock=clock, **kwargs)
        self._dims = {"Stage": stage}

    def _latency(self, name: str, error: str, latency_ms: float | None) -> None:
        if latency_ms is None:
            self.metrics.record(error, 1, unit="Count", dimensions=self._dims)
            return
        if not 0 <= latency_ms < 86_400_000:
            raise ValueError(f"{name} must be between 0 and a day in ms, got {latency_ms}")
        self.metrics.record(name, latency_ms, unit="Milliseconds", dimensions=self._dims)

    def authorisation(self, latency_ms: float | None) -> None:
        """A decision returned after ``latency_ms``, or None when the submission got no decision."""
        self._latency("AuthorisationLatency", "AuthorisationError", latency_ms)

    def critical_path(self, latency_ms: float | None) -> None:
        """An authorised payment at ACSP after ``latency_ms`` of our processing, or None: it failed technically."""
        self._latency("CriticalPathLatency", "CriticalPathError", latency_ms)

    def scheme_submission(self, *, timed_out: bool) -> None:
        """One submission to the scheme, and whether its answer missed the time limit."""
        self.metrics.record("SchemeSubmission", 1, unit="Count", dimensions=self._dims)
        if timed_out:
            self.metrics.record("SchemeTimeout", 1, unit="Count", dimensions=self._dims)

    def reconciliation(self, mismatches: int) -> None:
        """One settlement cycle reconciled with ``mismatches`` differences (publish 0: silence breaches)."""
        if isinstance(mismatches, bool) or not isinstance(mismatches, int) or mismatches < 0:
            raise ValueError(f"mismatches must be a count, got {mismatches!r}")
        self.metrics.record("ReconciliationMismatches", mismatches, unit="Count", dimensions=self._dims)

    def throttle(self, service: str) -> None:
        """One attempt that ``service`` (``kms``, ``dynamodb``, ``sqs``...) refused as throttled."""
        if not service or not service.replace("-", "").isalnum():
            raise ValueError(f"service must be a service name such as 'kms', got {service!r}")
        self.metrics.record("DependencyThrottle", 1, unit="Count", dimensions={**self._dims, "service": service})


def count_throttles(client: Any, publisher: SliPublisher) -> Any:
    """Count every throttled attempt of ``client`` (before the SDK decides whether to retry it); returns the client.

    The hook only observes: it returns nothing, so botocore's retry decision is unchanged.
    """
    service = client.meta.service_model.service_name

    def observe(response: Any = None, **_: Any) -> None:
        if not response:
            return
        parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
        code = (parsed or {}).get("Error", {}).get("Code")
        if code in THROTTLING_ERROR_CODES:
            publisher.throttle(service)

    client.meta.events.register(f"needs-retry.{client.meta.service_model.service_id.hyphenize()}", observe,
                                unique_id=f"fasterpay-count-throttles-{id(publisher)}")
    return client
