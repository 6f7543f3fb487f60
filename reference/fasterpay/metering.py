"""Count AWS API calls per service, operation and region with botocore event hooks.

The meter listens to events that botocore emits for every client, so it sees exactly what the
code sends, on moto and on a real account alike:

* ``calls``: API calls made by our code, once per call however many times the SDK retried it
  (``before-call``);
* ``attempts``: HTTP attempts, SDK retries included (``response-received``);
* ``errors``: calls that finally failed, keyed by ``(CallKey, error code)`` (``after-call`` with
  an HTTP status >= 300, or ``after-call-error`` for connection errors and timeouts, whose
  code is the exception class name, e.g. ``ReadTimeoutError``);
* ``write_units`` / ``read_units``: DynamoDB capacity *estimates* from the request parameters,
  once per call, assuming items under 1 KB (writes) and 4 KB (reads):
  PutItem, UpdateItem, DeleteItem 1 WRU; TransactWriteItems 2 WRU per item; BatchWriteItem
  1 WRU per request item; GetItem 1 RRU if ``ConsistentRead`` else 0.5; BatchGetItem the same per
  key; TransactGetItems 2 RRU per item; Query and Scan 1 RRU (consistent) or 0.5 RRU per call as a
  floor (the real figure grows with the data read). Failed conditional writes are counted, as
  AWS charges them; throttled attempts are not counted twice because units are per call.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

__all__ = ["ApiCallMeter", "CallKey", "MeterSnapshot", "dynamodb_units"]

_CONTEXT_PARAMS = "fasterpay.metering.api_params"
_CONTEXT_KEY = "fasterpay.metering.call_key"
_ONE = Decimal(1)
_HALF = Decimal("0.5")
_ZERO = Decimal(0)
_SINGLE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})


@dataclass(frozen=True, order=True)
class CallKey:
    """One kind of API call: botocore service name (``"dynamodb"``), operation, region."""

    service: str
    operation: str
    region: str


def _frozen(mapping: Mapping[Any, int]) -> Mapping[Any, int]:
    return MappingProxyType({key: value for key, value in mapping.items() if value})


@dataclass(frozen=True)
class MeterSnapshot:
    """An immutable copy of a meter's counts; ``later - earlier`` gives the calls in between.

    Examples:
        >>> before = meter.snapshot()  # doctest: +SKIP
        >>> kms.generate_random(NumberOfBytes=16)  # doctest: +SKIP
        >>> (meter.snapshot() - before).by_operation()  # doctest: +SKIP
        {'kms:GenerateRandom': 1}
    """

    calls: Mapping[CallKey, int] = field(default_factory=dict)
    attempts: Mapping[CallKey, int] = field(default_factory=dict)
    errors: Mapping[tuple[CallKey, str], int] = field(default_factory=dict)
    write_units: Decimal = _ZERO
    read_units: Decimal = _ZERO

    def __post_init__(self) -> None:
        for name in ("calls", "attempts", "errors"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def __sub__(self, other: MeterSnapshot) -> MeterSnapshot:
        if not isinstance(other, MeterSnapshot):
            return NotImplemented
        return MeterSnapshot(
            calls=Counter(self.calls) - Counter(other.calls),
            attempts=Counter(self.attempts) - Counter(other.attempts),
            errors=Counter(self.errors) - Counter(other.errors),
            write_units=self.write_units - other.write_units,
            read_units=self.read_units - other.read_units,
        )

    def count(
        self, service: str | None = None, operation: str | None = None, region: str | None = None
    ) -> int:
        """Calls matching every filter given.

        Examples:
            >>> snapshot.count(service="kms")  # doctest: +SKIP
            3
        """
        return _count(self.calls, service, operation, region)

    def count_attempts(
        self, service: str | None = None, operation: str | None = None, region: str | None = None
    ) -> int:
        """HTTP attempts (retries included) matching every filter given."""
        return _count(self.attempts, service, operation, region)

    def count_errors(self, code: str | None = None, service: str | None = None) -> int:
        """Failed calls, optionally only those with error ``code`` and/or of ``service``."""
        return sum(
            n
            for (key, error_code), n in self.errors.items()
            if (code is None or error_code == code) and (service is None or key.service == service)
        )

    def by_operation(self) -> dict[str, int]:
        """Calls per ``"service:Operation"``, all regions together, sorted by key."""
        totals: Counter[str] = Counter()
        for key, n in self.calls.items():
            totals[f"{key.service}:{key.operation}"] += n
        return dict(sorted(totals.items()))


def _count(
    counts: Mapping[CallKey, int], service: str | None, operation: str | None, region: str | None
) -> int:
    return sum(
        n
        for key, n in counts.items()
        if (service is None or key.service == service)
        and (operation is None or key.operation == operation)
        and (region is None or key.region == region)
    )


def dynamodb_units(operation: str, params: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """Estimated (write units, read units) of one DynamoDB call; see the module docstring.

    Examples:
        >>> dynamodb_units("TransactWriteItems", {"TransactItems": [{}, {}]})
        (Decimal('4'), Decimal('0'))
        >>> dynamodb_units("GetItem", {"ConsistentRead": False})
        (Decimal('0'), Decimal('0.5'))
    """
    if operation in _SINGLE_WRITES:
        return _ONE, _ZERO
    if operation == "TransactWriteItems":
        return Decimal(2 * len(params.get("TransactItems", ()))), _ZERO
    if operation == "BatchWriteItem":
        items = sum(len(requests) for requests in params.get("RequestItems", {}).values())
        return Decimal(items), _ZERO
    if operation in ("GetItem", "Query", "Scan"):
        return _ZERO, _ONE if params.get("ConsistentRead") else _HALF
    if operation == "TransactGetItems":
        return _ZERO, Decimal(2 * len(params.get("TransactItems", ())))
    if operation == "BatchGetItem":
        units = sum(
            (
                len(request.get("Keys", ())) * (_ONE if request.get("ConsistentRead") else _HALF)
                for request in params.get("RequestItems", {}).values()
            ),
            _ZERO,
        )
        return _ZERO, units
    return _ZERO, _ZERO


class ApiCallMeter:
    """Counts API calls of the clients it is attached to. Thread-safe.

    Examples:
        >>> meter = ApiCallMeter()
        >>> kms = meter.attach(env.client("kms"))  # doctest: +SKIP
        >>> kms.generate_random(NumberOfBytes=16)  # doctest: +SKIP
        >>> meter.count(service="kms", operation="GenerateRandom")  # doctest: +SKIP
        1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[CallKey] = Counter()
        self._attempts: Counter[CallKey] = Counter()
        self._errors: Counter[tuple[CallKey, str]] = Counter()
        self._write_units = _ZERO
        self._read_units = _ZERO
        self._id = f"fasterpay-meter-{id(self)}"

    def attach(self, client: Any) -> Any:
        """Meter ``client``; attaching twice is harmless. Returns the client.

        Examples:
            >>> dynamodb = meter.attach(env.client("dynamodb"))  # doctest: +SKIP
        """
        self._register(client.meta.events)
        return client

    def attach_session(self, session: Any) -> Any:
        """Meter every client created *later* from ``session`` (a boto3 or botocore session).

        Clients copy the session's event hooks when they are created, so clients that exist
        already are not metered: attach those with :meth:`attach`. Returns the session.

        Examples:
            >>> meter.attach_session(env.session)  # doctest: +SKIP
            >>> sqs = env.client("sqs")  # metered  # doctest: +SKIP
        """
        events = getattr(session, "events", None)
        if events is None:  # a botocore session
            events = session.get_component("event_emitter")
        self._register(events)
        return session

    def _register(self, events: Any) -> None:
        handlers = (
            ("before-parameter-build", self._on_parameter_build),
            ("before-call", self._on_before_call),
            ("response-received", self._on_response_received),
            ("after-call", self._on_after_call),
            ("after-call-error", self._on_after_call_error),
        )
        for event, handler in handlers:
            events.register(event, handler, unique_id=f"{self._id}-{event}")

    # Event handlers. They return None so they never change what botocore does.
    def _on_parameter_build(
        self, params: Mapping[str, Any], context: dict[str, Any] | None = None, **_: Any
    ) -> None:
        if context is not None:
            context.setdefault(_CONTEXT_PARAMS, params)

    def _on_before_call(self, model: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is None:
            return
        key = CallKey(
            service=model.service_model.service_name,
            operation=model.name,
            region=str(context.get("client_region") or ""),
        )
        context[_CONTEXT_KEY] = key
        writes, reads = _ZERO, _ZERO
        if key.service == "dynamodb":
            writes, reads = dynamodb_units(key.operation, context.get(_CONTEXT_PARAMS) or {})
        with self._lock:
            self._calls[key] += 1
            self._write_units += writes
            self._read_units += reads

    def _on_response_received(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        key = (context or {}).get(_CONTEXT_KEY)
        if key is not None:
            with self._lock:
                self._attempts[key] += 1

    def _on_after_call(
        self, http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        key = context.get(_CONTEXT_KEY)
        if key is None or http_response.status_code < 300:
            return
        code = context.get("error_code_override") or parsed.get("Error", {}).get("Code")
        with self._lock:
            self._errors[(key, str(code or http_response.status_code))] += 1

    def _on_after_call_error(
        self, exception: BaseException, context: dict[str, Any] | None = None, **_: Any
    ) -> None:
        key = (context or {}).get(_CONTEXT_KEY)
        if key is not None:
            with self._lock:
                self._errors[(key, type(exception).__name__)] += 1

    # Reading the counts.
    def snapshot(self) -> MeterSnapshot:
        """An immutable copy of the counts so far."""
        with self._lock:
            return MeterSnapshot(
                calls=dict(self._calls),
                attempts=dict(self._attempts),
                errors=dict(self._errors),
                write_units=self._write_units,
                read_units=self._read_units,
            )

    def count(
        self, service: str | None = None, operation: str | None = None, region: str | None = None
    ) -> int:
        """Calls so far matching every filter given.

        Examples:
            >>> meter.count(service="dynamodb", region="eu-west-2")  # doctest: +SKIP
            12
        """
        with self._lock:
            return _count(self._calls, service, operation, region)

    def reset(self) -> None:
        """Forget all counts (attachments stay)."""
        with self._lock:
            self._calls.clear()
            self._attempts.clear()
            self._errors.clear()
            self._write_units = _ZERO
            self._read_units = _ZERO

    @property
    def calls(self) -> Mapping[CallKey, int]:
        """Calls per key (a copy)."""
        return self.snapshot().calls

    @property
    def attempts(self) -> Mapping[CallKey, int]:
        """HTTP attempts per key, retries included (a copy)."""
        return self.snapshot().attempts

    @property
    def errors(self) -> Mapping[tuple[CallKey, str], int]:
        """Finally failed calls per (key, error code) (a copy)."""
        return self.snapshot().errors

    @property
    def write_units(self) -> Decimal:
        """Estimated DynamoDB write units so far."""
        return self.snapshot().write_units

    @property
    def read_units(self) -> Decimal:
        """Estimated DynamoDB read units so far."""
        return self.snapshot().read_units
