"""Seeded, modelled latency and fault injection with botocore event hooks.

A :class:`FaultInjector` attached to a client acts on every HTTP *attempt*, before the request
leaves the SDK (``before-send``, registered first so it runs before moto's own handler). Per
attempt it draws, from one seeded ``random.Random``:

* a latency from a :class:`LatencyModel` (log-normal per service/operation), which is added to
  *virtual time* (``sleep=False``, the default) or slept (``sleep=True``);
* a fault from a :class:`FaultPlan` (its own :class:`FaultRates`, or a service's own rates from
  ``per_service``): a throttle or a 5xx answered in the service's own wire protocol and error
  code, a ``ReadTimeoutError``, a *lost response*, or an ``EndpointConnectionError`` for a
  partitioned region.

Because faults are raised or answered inside ``before-send``, botocore handles them exactly as
it handles the same outcome of a real HTTP attempt: its retry logic (``needs-retry``) sees
them and retries them. An attempt that gets a fault never reaches moto or AWS, except a lost
response: that attempt is delivered first (the injector dispatches ``before-send`` once more to
the other handlers, so moto answers, or else sends it with the client's HTTP session), so a
write commits, and then the client gets a ``ReadTimeoutError`` as if the response were lost on
the wire. With SDK retries on, botocore retries it like any read timeout, so the retry meets
the committed write (a conditional put fails, an SQS message is sent twice).
The same seed and the same sequence of attempts give the same latencies and faults.

Limits: SDK retry back-off is botocore's own and is slept in wall time; it is not in
``modelled_seconds``. A timeout costs the client's ``read_timeout``, a lost response its
latency plus ``read_timeout``, and a partitioned attempt its ``connect_timeout`` in modelled
time. Attach one injector per client: a lost response re-dispatches ``before-send``. DynamoDB
transactions that AWS throttles may come back as ``TransactionCanceledException`` (reason
``ThrottlingError``); the injector returns the plain ``ProvisionedThroughputExceededException``.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.hooks import first_non_none_response

__all__ = [
    "DEFAULT_LATENCY_MODEL",
    "FAULT_KINDS",
    "AttemptRecord",
    "FaultInjector",
    "FaultPlan",
    "FaultRates",
    "LatencyDistribution",
    "LatencyModel",
    "Span",
    "UnsupportedProtocolError",
]

_Z_99 = 2.326347874  # standard normal quantile at 0.99
FAULT_KINDS = ("throttle", "server_error", "timeout", "lost_response", "partition")
_RATE_KINDS = (  # (rate field, fault kind), in the order one uniform draw is split between them
    ("throttle_rate", "throttle"),
    ("server_error_rate", "server_error"),
    ("timeout_rate", "timeout"),
    ("lost_response_rate", "lost_response"),
)
_NOWHERE_URL = "https://fasterpay-fault-injected.invalid/"  # no moto backend answers this
_SUPPORTED_PROTOCOLS = frozenset({"json", "rest-json", "query", "ec2", "rest-xml"})
_DYNAMODB_DATA_PLANE = frozenset(
    {
        "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
        "BatchWriteItem", "TransactGetItems", "TransactWriteItems", "ExecuteStatement",
        "BatchExecuteStatement", "ExecuteTransaction",
    }
)
# (error code, HTTP status) per service; see _throttle_error and _server_error. KMS codes are
# those of the KMS API reference and botocore's model (KMSInternalException is modelled, 500).
_THROTTLE_BY_SERVICE = {
    "kms": ("ThrottlingException", 400),
    "sqs": ("RequestThrottled", 400),
    "s3": ("SlowDown", 503),
}
_SERVER_ERROR_BY_SERVICE = {
    "dynamodb": ("InternalServerError", 500),
    "kms": ("KMSInternalException", 500),
    "s3": ("InternalError", 500),
}


class UnsupportedProtocolError(NotImplementedError):
    """The injector cannot write error responses in this service's wire protocol."""


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class LatencyDistribution:
    """A log-normal latency fitted to a median and a 99th percentile, in milliseconds.

    Examples:
        >>> dist = LatencyDistribution(p50_ms=4, p99_ms=12)
        >>> round(dist.sample(random.Random(7)) * 1000, 3) > 0
        True
    """

    p50_ms: float
    p99_ms: float

    def __post_init__(self) -> None:
        p50 = _check_number("p50_ms", self.p50_ms)
        p99 = _check_number("p99_ms", self.p99_ms)
        if not 0 < p50 <= p99:
            raise ValueError(
                f"Need 0 < p50_ms <= p99_ms, got p50_ms={p50}, p99_ms={p99}: "
                f"give the median first and a 99th percentile at least as large."
            )

    @property
    def mu(self) -> float:
        """Mean of the underlying normal: ln(p50 in ms)."""
        return math.log(self.p50_ms)

    @property
    def sigma(self) -> float:
        """Standard deviation of the underlying normal."""
        return (math.log(self.p99_ms) - math.log(self.p50_ms)) / _Z_99

    def sample(self, rng: random.Random) -> float:
        """One latency in **seconds**, drawn from ``rng``."""
        return rng.lognormvariate(self.mu, self.sigma) / 1000.0


@dataclass(frozen=True)
class LatencyModel:
    """Latency per call: by (service, operation), else by service, else ``default``.

    Examples:
        >>> model = LatencyModel(default=LatencyDistribution(10, 40),
        ...                      per_service={"kms": LatencyDistribution(6, 20)})
        >>> model.for_call("kms", "Decrypt").p50_ms
        6
    """

    default: LatencyDistribution
    per_service: Mapping[str, LatencyDistribution] = field(default_factory=dict)
    per_operation: Mapping[tuple[str, str], LatencyDistribution] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_service", MappingProxyType(dict(self.per_service)))
        object.__setattr__(self, "per_operation", MappingProxyType(dict(self.per_operation)))

    def for_call(self, service: str, operation: str) -> LatencyDistribution:
        """The distribution that applies to one call."""
        found = self.per_operation.get((service, operation)) or self.per_service.get(service)
        return found or self.default

    def describe(self) -> list[dict[str, object]]:
        """Rows of service, operation (``"*"`` = any), p50_ms, p99_ms, for the method page."""
        rows: list[dict[str, object]] = [_row("*", "*", self.default)]
        rows += [_row(service, "*", dist) for service, dist in sorted(self.per_service.items())]
        rows += [_row(s, o, dist) for (s, o), dist in sorted(self.per_operation.items())]
        return rows


def _row(service: str, operation: str, dist: LatencyDistribution) -> dict[str, object]:
    return {
        "service": service, "operation": operation, "p50_ms": dist.p50_ms, "p99_ms": dist.p99_ms
    }


DEFAULT_LATENCY_MODEL = LatencyModel(
    default=LatencyDistribution(10, 40),
    per_service={
        "dynamodb": LatencyDistribution(4, 12),
        "kms": LatencyDistribution(6, 20),
        "sqs": LatencyDistribution(8, 30),
        "s3": LatencyDistribution(20, 80),
        "sts": LatencyDistribution(20, 60),
        "iam": LatencyDistribution(20, 60),
    },
    per_operation={
        ("dynamodb", "TransactWriteItems"): LatencyDistribution(9, 30),
        ("dynamodb", "TransactGetItems"): LatencyDistribution(9, 30),
    },
    source=(
        "Modelled assumptions, not measurements: in-region round trips from a client in "
        "eu-west-2, informed by AWS's public statements (e.g. DynamoDB 'single-digit "
        "millisecond' latency). Stated 2026-11; replace with your own measurements."
    ),
)


def _frozenset_or_none(name: str, value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(
            f"{name} must be a set of names, not the string {value!r}: wrap it in {{}}."
        )
    return frozenset(value)


def _check_rates(owner: str, rates: Iterable[tuple[str, object]]) -> float:
    total = 0.0
    for name, value in rates:
        rate = _check_number(name, value)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{owner}.{name} must be between 0 and 1, got {rate}.")
        total += rate
    if total > 1.0:
        raise ValueError(f"{owner}'s fault rates add up to {total}; keep their sum at most 1.")
    return total


@dataclass(frozen=True)
class FaultRates:
    """Per-attempt probabilities of each drawn fault, for one service in ``FaultPlan.per_service``.

    Each rate is between 0 and 1 and their sum is at most 1: one uniform draw per attempt picks
    at most one fault. ``lost_response_rate`` lets the attempt commit, then times the client out.

    Examples:
        >>> kms = FaultRates(throttle_rate=0.01, server_error_rate=0.01)
        >>> kms.pick(0.005), kms.pick(0.015), kms.pick(0.5)
        ('throttle', 'server_error', None)
        >>> FaultRates(timeout_rate=0.7, lost_response_rate=0.7)
        Traceback (most recent call last):
        ...
        ValueError: FaultRates's fault rates add up to 1.4; keep their sum at most 1.
    """

    throttle_rate: float = 0.0
    server_error_rate: float = 0.0
    timeout_rate: float = 0.0
    lost_response_rate: float = 0.0

    def __post_init__(self) -> None:
        _check_rates("FaultRates", ((name, getattr(self, name)) for name, _ in _RATE_KINDS))

    @property
    def injects(self) -> bool:
        """Whether any rate is above zero (if not, no random number is drawn)."""
        return any(getattr(self, name) for name, _ in _RATE_KINDS)

    def pick(self, draw: float) -> str | None:
        """The fault kind for one uniform ``draw`` in [0, 1), or None for no fault."""
        edge = 0.0
        for name, kind in _RATE_KINDS:
            edge += getattr(self, name)
            if draw < edge:
                return kind
        return None


def _frozen_rates(value: Mapping[str, FaultRates]) -> Mapping[str, FaultRates]:
    if not isinstance(value, Mapping):
        raise TypeError(
            f"per_service must map service names to FaultRates, not {type(value).__name__}."
        )
    for service, rates in value.items():
        if not isinstance(service, str) or not isinstance(rates, FaultRates):
            raise TypeError(
                f"per_service must map service names to FaultRates, got {service!r}: "
                f"{type(rates).__name__}."
            )
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class FaultPlan:
    """What to inject. Rates are per attempt; ``services``/``operations`` of None mean all.

    The plan's own rates apply to every service in scope, except the services named in
    ``per_service``, which get their own :class:`FaultRates` instead. The filters scope every
    fault, partitions included; a service named in ``per_service`` is in scope even if
    ``services`` leaves it out.

    Examples:
        >>> plan = FaultPlan(throttle_rate=0.05, services=frozenset({"dynamodb"}))
        >>> plan.applies_to("dynamodb", "PutItem"), plan.applies_to("kms", "Decrypt")
        (True, False)
        >>> plan = FaultPlan(per_service={"kms": FaultRates(throttle_rate=0.01)})
        >>> plan.rates_for("kms").throttle_rate, plan.rates_for("dynamodb").injects
        (0.01, False)
    """

    throttle_rate: float = 0.0
    server_error_rate: float = 0.0
    timeout_rate: float = 0.0
    partitioned_regions: frozenset[str] = frozenset()
    services: frozenset[str] | None = None
    operations: frozenset[str] | None = None
    lost_response_rate: float = 0.0
    per_service: Mapping[str, FaultRates] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_rates("FaultPlan", ((name, getattr(self, name)) for name, _ in _RATE_KINDS))
        own = FaultRates(**{name: getattr(self, name) for name, _ in _RATE_KINDS})
        object.__setattr__(self, "_own_rates", own)
        regions = _frozenset_or_none("partitioned_regions", self.partitioned_regions)
        object.__setattr__(self, "partitioned_regions", regions)
        object.__setattr__(self, "services", _frozenset_or_none("services", self.services))
        object.__setattr__(self, "operations", _frozenset_or_none("operations", self.operations))
        object.__setattr__(self, "per_service", _frozen_rates(self.per_service))

    def applies_to(self, service: str, operation: str) -> bool:
        """Whether faults may be injected into this call."""
        in_services = self.services is None or service in self.services
        return (in_services or service in self.per_service) and (
            self.operations is None or operation in self.operations
        )

    def rates_for(self, service: str) -> FaultRates:
        """The rates that apply to ``service``: its own from ``per_service``, else the plan's."""
        own: FaultRates = self._own_rates  # type: ignore[attr-defined]  # set in __post_init__
        return self.per_service.get(service, own)


@dataclass(frozen=True)
class AttemptRecord:
    """One HTTP attempt seen by the injector."""

    service: str
    operation: str
    region: str
    modelled_seconds: float
    fault: str | None


class Span:
    """Modelled time and faults of the attempts made inside one ``span()`` on one thread."""

    def __init__(self) -> None:
        self.modelled_seconds = 0.0
        self.attempts = 0
        self.faults: Counter[str] = Counter()

    def _add(self, seconds: float, fault: str | None) -> None:
        self.modelled_seconds += seconds
        self.attempts += 1
        if fault is not None:
            self.faults[fault] += 1


@dataclass(frozen=True)
class _Binding:
    service: str
    region: str
    protocol: str
    json_version: str
    query_compatible: bool
    read_timeout: float
    connect_timeout: float


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class FaultInjector:
    """Adds modelled latency and injects faults into the clients it is attached to.

    Every attempt is recorded (:attr:`calls`); a long run passes ``history`` to keep only the last ones, so
    its memory stays flat. Fault counts and modelled time always cover every attempt.

    Examples:
        >>> injector = FaultInjector(latency=DEFAULT_LATENCY_MODEL,
        ...                          plan=FaultPlan(throttle_rate=0.01), seed=42)
        >>> dynamodb = injector.attach(env.client("dynamodb"))  # doctest: +SKIP
        >>> with injector.span() as span:  # doctest: +SKIP
        ...     dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})
        >>> span.modelled_seconds  # doctest: +SKIP
        0.0041...
    """

    def __init__(
        self,
        *,
        latency: LatencyModel | None = None,
        plan: FaultPlan = FaultPlan(),
        seed: int,
        sleep: bool = False,
        history: int | None = None,
    ) -> None:
        if history is not None and history < 0:
            raise ValueError("history must be None (keep every attempt) or a count of at least 0")
        self.latency = latency
        self.plan = plan
        self.seed = seed
        self.sleep = sleep
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._modelled_seconds = 0.0
        # the last ``history`` attempts (all if None): a long run bounds it, so memory does not grow with it
        self._calls: deque[AttemptRecord] = deque(maxlen=history)
        self._injected: Counter[str] = Counter()
        self._injected_by_service: Counter[str] = Counter()
        self._request_ids = 0
        self._id = f"fasterpay-faults-{id(self)}"

    def attach(self, client: Any) -> Any:
        """Inject into ``client``'s attempts; attaching twice is harmless. Returns the client.

        Examples:
            >>> kms = injector.attach(env.client("kms"))  # doctest: +SKIP
        """
        service_model = client.meta.service_model
        protocol = getattr(service_model, "resolved_protocol", service_model.protocol)
        rates = self.plan.rates_for(service_model.service_name)
        writes_errors = rates.throttle_rate or rates.server_error_rate
        if protocol not in _SUPPORTED_PROTOCOLS and writes_errors:
            raise UnsupportedProtocolError(
                f"Cannot write {protocol!r} error responses for {service_model.service_name}: "
                f"use a plan without throttle/server-error rates for this client."
            )
        config = client.meta.config
        binding = _Binding(
            service=service_model.service_name,
            region=client.meta.region_name or "",
            protocol=protocol,
            json_version=str(service_model.metadata.get("jsonVersion", "1.0")),
            query_compatible=service_model.metadata.get("awsQueryCompatible") is not None,
            read_timeout=float(config.read_timeout),
            connect_timeout=float(config.connect_timeout),
        )

        def before_send(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
            if getattr(self._local, "delivering", False):
                return None  # a lost response being delivered: let moto or HTTP answer it
            return self._on_attempt(
                binding, event_name.rsplit(".", 1)[-1], request,
                deliver=lambda: self._deliver(client, event_name, request),
            )

        client.meta.events.register_first("before-send", before_send, unique_id=self._id)
        return client

    @contextmanager
    def span(self) -> Iterator[Span]:
        """Collect the modelled time of this thread's attempts inside the block.

        Examples:
            >>> with injector.span() as span:  # doctest: +SKIP
            ...     authorise_payment(...)
            >>> span.modelled_seconds  # doctest: +SKIP
        """
        stack: list[Span] = self._local.__dict__.setdefault("spans", [])
        opened = Span()
        stack.append(opened)
        try:
            yield opened
        finally:
            stack.remove(opened)

    @property
    def modelled_seconds(self) -> float:
        """Modelled time of all attempts so far, all threads."""
        with self._lock:
            return self._modelled_seconds

    @property
    def calls(self) -> tuple[AttemptRecord, ...]:
        """One record per HTTP attempt, in order (the last ``history`` of them, if the injector was given one)."""
        with self._lock:
            return tuple(self._calls)

    @property
    def injected(self) -> Counter[str]:
        """Faults injected so far, by kind (a copy)."""
        with self._lock:
            return Counter(self._injected)

    @property
    def injected_by_service(self) -> Counter[str]:
        """Faults injected so far, by service (``kms``, ``dynamodb``...), all kinds together (a copy)."""
        with self._lock:
            return Counter(self._injected_by_service)

    def _on_attempt(
        self, binding: _Binding, operation: str, request: Any, *, deliver: Callable[[], None]
    ) -> AWSResponse | None:
        in_scope = self.plan.applies_to(binding.service, operation)
        with self._lock:
            seconds = 0.0
            if self.latency is not None:
                seconds = self.latency.for_call(binding.service, operation).sample(self._rng)
            fault = self._draw_fault(binding, in_scope)
            if fault == "timeout":
                seconds = binding.read_timeout
            elif fault == "lost_response":
                seconds += binding.read_timeout
            elif fault == "partition":
                seconds = binding.connect_timeout
            self._modelled_seconds += seconds
            self._calls.append(
                AttemptRecord(binding.service, operation, binding.region, seconds, fault)
            )
            if fault is not None:
                self._injected[fault] += 1
                self._injected_by_service[binding.service] += 1
            self._request_ids += 1
            request_id = f"fasterpay-fault-{self.seed}-{self._request_ids:08d}"
        for span in self._local.__dict__.get("spans", ()):
            span._add(seconds, fault)
        if self.sleep and seconds > 0:
            time.sleep(seconds)
        if fault is None:
            return None  # moto, or the real HTTP stack, answers
        if fault == "lost_response":
            deliver()  # the attempt reaches moto or AWS and commits; its response is dropped
            raise ReadTimeoutError(endpoint_url=request.url)
        url = request.url
        request.url = _NOWHERE_URL  # so that moto's own before-send handler ignores it
        if fault == "timeout":
            raise ReadTimeoutError(endpoint_url=url)
        if fault == "partition":
            raise EndpointConnectionError(endpoint_url=url)
        if fault == "throttle":
            code, status = _throttle_error(binding.service, operation, binding.protocol)
        else:
            code, status = _server_error(binding.service)
        return _error_response(binding, url, status, code, request_id)

    def _draw_fault(self, binding: _Binding, in_scope: bool) -> str | None:
        if not in_scope:
            return None
        if binding.region in self.plan.partitioned_regions:
            return "partition"
        rates = self.plan.rates_for(binding.service)
        if not rates.injects:
            return None
        return rates.pick(self._rng.random())

    def _deliver(self, client: Any, event_name: str, request: Any) -> None:
        """Send an attempt whose response will be lost: to moto, else over the client's HTTP."""
        self._local.delivering = True
        try:
            answers = client.meta.events.emit(event_name, request=request)
        finally:
            self._local.delivering = False
        if first_non_none_response(answers) is None:  # no stub answered: the real HTTP stack
            client._endpoint.http_session.send(request)


def _throttle_error(service: str, operation: str, protocol: str) -> tuple[str, int]:
    if service == "dynamodb":
        if operation in _DYNAMODB_DATA_PLANE:
            return "ProvisionedThroughputExceededException", 400
        return "ThrottlingException", 400
    if service in _THROTTLE_BY_SERVICE:
        return _THROTTLE_BY_SERVICE[service]
    if protocol == "query":
        return "Throttling", 400
    if protocol == "ec2":
        return "RequestLimitExceeded", 503
    return "ThrottlingException", 400


def _server_error(service: str) -> tuple[str, int]:
    return _SERVER_ERROR_BY_SERVICE.get(service, ("ServiceUnavailable", 503))


def _error_response(
    binding: _Binding, url: str, status: int, code: str, request_id: str
) -> AWSResponse:
    message = "Injected by fasterpay.faults"
    fault_type = "Sender" if status < 500 else "Receiver"
    headers: dict[str, str] = {"x-amzn-RequestId": request_id}
    if binding.protocol == "json":
        headers["Content-Type"] = f"application/x-amz-json-{binding.json_version}"
        if binding.query_compatible:
            headers["x-amzn-query-error"] = f"{code};{fault_type}"
        body = json.dumps({"__type": f"com.amazonaws.{binding.service}#{code}", "message": message})
    elif binding.protocol == "rest-json":
        headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": code})
        body = json.dumps({"message": message})
    elif binding.protocol == "query":
        headers["Content-Type"] = "text/xml"
        body = (
            f"<ErrorResponse><Error><Type>{fault_type}</Type><Code>{escape(code)}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            f"</ErrorResponse>"
        )
    elif binding.protocol == "ec2":
        headers["Content-Type"] = "text/xml"
        body = (
            f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{message}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
    else:  # rest-xml
        headers.update({"Content-Type": "application/xml", "x-amz-request-id": request_id})
        body = (
            f"<Error><Code>{escape(code)}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    return AWSResponse(url, status, headers, _RawBody(body.encode()))
