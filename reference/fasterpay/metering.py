"""Count AWS API calls per service, operation and region with botocore event hooks.

The meter listens to events that botocore emits for every client, so it sees exactly what the
code sends and what comes back, on moto and on a real account alike:

* ``calls``: API calls made by our code, once per call however many times the SDK retried it
  (``before-call``);
* ``attempts``: HTTP attempts, SDK retries included (``response-received``);
* ``errors``: calls that finally failed, keyed by ``(CallKey, error code)`` (``after-call`` with
  an HTTP status >= 300, or ``after-call-error`` for connection errors and timeouts, whose
  code is the exception class name, e.g. ``ReadTimeoutError``);
* ``write_units`` / ``read_units``: DynamoDB request units computed from item sizes, in total and
  per table (``write_units_by_table`` / ``read_units_by_table``);
* ``sqs_requests``: billable SQS requests, one per 64 KB chunk of payload.

**DynamoDB item size.** DynamoDB's rule (developer guide, "DynamoDB item sizes and formats"): the
sum of the UTF-8 lengths of the attribute names plus the value sizes. Strings: UTF-8 bytes.
Numbers: about 1 byte per two significant digits plus 1 (leading and trailing zeros trimmed).
Binary: raw bytes. Boolean and null: 1 byte. List and map: 3 bytes plus 1 per element plus the
elements (a map's element names count too). Sets: the sum of their elements.

**Write units** come from the *request*, once per call, so failed conditional writes count (AWS
charges them) and retries do not count twice. PutItem: ``ceil(item size / 1 KB)``;
BatchWriteItem: the same per put, and per delete the key size; TransactWriteItems: twice that per
item. UpdateItem, DeleteItem and the transactional Update, Delete and ConditionCheck are estimates
with a floor of one unit (two in a transaction): a delete or condition check counts its key size,
an update its key plus the values it writes, 1 unit per KB. The real bill uses the larger of the
item before and after the write, which the request does not show. Items left unprocessed by
BatchWriteItem are taken back when the response names them.

**Read units** come from the *response*: moto's ``ConsumedCapacity`` is not usable (it answers 1.0
for a 3 KB put and 0.5 for a consistent read), so the meter sizes the items returned. GetItem:
``ceil(size / 4 KB)`` units if ``ConsistentRead``, half that if not, at least one (half) unit even
when no item comes back; BatchGetItem: the same per key; Query and Scan: the total size of the
returned items rounded up to 4 KB, at least one unit; TransactGetItems: two units per 4 KB of each
item. Query and Scan are a floor: DynamoDB charges for the items it *read*, before a
``FilterExpression`` and whatever the ``ProjectionExpression``, and the response shows only what
was returned. Failed reads are not counted. PartiQL operations are not estimated.

**SQS.** Every SQS call is at least one request; a request whose payload (message bodies plus
message attributes: names, data types and values) is over 64 KB bills one request per 64 KB chunk.
SendMessage and SendMessageBatch are sized from the request, ReceiveMessage from the messages in
the response.

**Kinesis.** ``kinesis_put_units``: PUT payload units of the records Kinesis Data Streams accepted
(provisioned mode bills per million): one per 25 KB chunk of a record, at least one, the record being
its data plus its partition key. PutRecord counts once it succeeds; PutRecords counts the records
its response does not mark with an ``ErrorCode`` (a failed record is retried, and counted when it is
written).
"""

from __future__ import annotations

import operator
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

__all__ = [
    "KINESIS_PUT_UNIT_BYTES",
    "SQS_CHUNK_BYTES",
    "ApiCallMeter",
    "CallKey",
    "MeterSnapshot",
    "dynamodb_item_size",
    "dynamodb_read_units",
    "dynamodb_units",
    "kinesis_put_units",
    "sqs_requests",
]

_CONTEXT_PARAMS = "fasterpay.metering.api_params"
_CONTEXT_KEY = "fasterpay.metering.call_key"
_ONE = Decimal(1)
_TWO = Decimal(2)
_HALF = Decimal("0.5")
_ZERO = Decimal(0)
_WRITE_UNIT_BYTES = 1024
_READ_UNIT_BYTES = 4096
SQS_CHUNK_BYTES = 64 * 1024
"""SQS bills one request per 64 KB chunk of a request's payload."""
KINESIS_PUT_UNIT_BYTES = 25 * 1024
"""Kinesis Data Streams (provisioned) bills one PUT payload unit per 25 KB chunk of a record."""


@dataclass(frozen=True, order=True)
class CallKey:
    """One kind of API call: botocore service name (``"dynamodb"``), operation, region."""

    service: str
    operation: str
    region: str


def _frozen(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
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
    sqs_requests: int = 0
    write_units_by_table: Mapping[str, Decimal] = field(default_factory=dict)
    read_units_by_table: Mapping[str, Decimal] = field(default_factory=dict)
    kinesis_put_units: int = 0

    def __post_init__(self) -> None:
        for name in ("calls", "attempts", "errors", "write_units_by_table", "read_units_by_table"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def _combine(self, other: MeterSnapshot, op: Callable[[Any, Any], Any]) -> MeterSnapshot:
        """Field by field ``op`` (add or subtract) of two snapshots; counters drop what falls to zero."""
        return MeterSnapshot(
            calls=op(Counter(self.calls), Counter(other.calls)),
            attempts=op(Counter(self.attempts), Counter(other.attempts)),
            errors=op(Counter(self.errors), Counter(other.errors)),
            write_units=op(self.write_units, other.write_units),
            read_units=op(self.read_units, other.read_units),
            sqs_requests=op(self.sqs_requests, other.sqs_requests),
            write_units_by_table=op(Counter(self.write_units_by_table), Counter(other.write_units_by_table)),
            read_units_by_table=op(Counter(self.read_units_by_table), Counter(other.read_units_by_table)),
            kinesis_put_units=op(self.kinesis_put_units, other.kinesis_put_units),
        )

    def __sub__(self, other: MeterSnapshot) -> MeterSnapshot:
        if not isinstance(other, MeterSnapshot):
            return NotImplemented
        return self._combine(other, operator.sub)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Picklable (the read-only views are not), so a snapshot can come back from another process."""
        return (MeterSnapshot, (dict(self.calls), dict(self.attempts), dict(self.errors), self.write_units,
                                self.read_units, self.sqs_requests, dict(self.write_units_by_table),
                                dict(self.read_units_by_table), self.kinesis_put_units))

    def __add__(self, other: MeterSnapshot) -> MeterSnapshot:
        """Two meters' counts together (for example, the parts of a run split across processes)."""
        if not isinstance(other, MeterSnapshot):
            return NotImplemented
        return self._combine(other, operator.add)

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


# DynamoDB item sizes.
def _utf8(text: Any) -> int:
    return len(str(text).encode("utf-8"))


def _binary_size(data: Any) -> int:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    return _utf8(data)  # botocore sends a str blob as its UTF-8 bytes


def _number_size(text: Any) -> int:
    try:
        digits = Decimal(str(text)).normalize().as_tuple().digits
    except InvalidOperation:
        return _utf8(text)
    return (len(digits) + 1) // 2 + 1


def _value_size(value: Any) -> int:
    """Size of one typed attribute value (``{"S": "..."}``), its name not included."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return 0
    ((kind, data),) = value.items()
    if kind == "S":
        return _utf8(data)
    if kind == "N":
        return _number_size(data)
    if kind == "B":
        return _binary_size(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(member) for member in data)
    if kind == "NS":
        return sum(_number_size(member) for member in data)
    if kind == "BS":
        return sum(_binary_size(member) for member in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + _utf8(name) + _value_size(element) for name, element in data.items())
    return 0


def dynamodb_item_size(item: Mapping[str, Any] | None) -> int:
    """Bytes of a DynamoDB item (or key) in botocore's typed form, by DynamoDB's item-size rule.

    Examples:
        >>> dynamodb_item_size({"EndToEndId": {"S": "E2E-1"}, "Amount": {"N": "125.50"}})
        24
    """
    return sum(_utf8(name) + _value_size(value) for name, value in (item or {}).items())


def _units(size: int, unit_bytes: int) -> int:
    """Units of ``unit_bytes`` that ``size`` bytes take, at least one."""
    return max(1, -(-size // unit_bytes))


def _write_units(size: int) -> Decimal:
    return Decimal(_units(size, _WRITE_UNIT_BYTES))


def _update_size(update: Mapping[str, Any]) -> int:
    values = update.get("ExpressionAttributeValues") or {}
    legacy = update.get("AttributeUpdates") or {}
    return (
        dynamodb_item_size(update.get("Key"))
        + sum(_value_size(value) for value in values.values())
        + sum(_utf8(name) + _value_size(change.get("Value")) for name, change in legacy.items())
    )


def _add(units: dict[str, Decimal], table: Any, amount: Decimal) -> None:
    units[str(table or "")] = units.get(str(table or ""), _ZERO) + amount


def _write_units_by_table(operation: str, params: Mapping[str, Any]) -> dict[str, Decimal]:
    units: dict[str, Decimal] = {}
    table = params.get("TableName")
    if operation == "PutItem":
        _add(units, table, _write_units(dynamodb_item_size(params.get("Item"))))
    elif operation == "UpdateItem":
        _add(units, table, _write_units(_update_size(params)))
    elif operation == "DeleteItem":
        _add(units, table, _write_units(dynamodb_item_size(params.get("Key"))))
    elif operation == "BatchWriteItem":
        for name, requests in (params.get("RequestItems") or {}).items():
            for request in requests:
                put = request.get("PutRequest")
                if put is not None:
                    size = dynamodb_item_size(put.get("Item"))
                else:
                    size = dynamodb_item_size((request.get("DeleteRequest") or {}).get("Key"))
                _add(units, name, _write_units(size))
    elif operation == "TransactWriteItems":
        for item in params.get("TransactItems") or ():
            action = next(iter(item.values()), {}) if item else {}
            if "Put" in item:
                size = dynamodb_item_size(action.get("Item"))
            elif "Update" in item:
                size = _update_size(action)
            else:  # Delete, ConditionCheck
                size = dynamodb_item_size(action.get("Key"))
            _add(units, action.get("TableName"), _TWO * _write_units(size))
    return units


def _consistency(params: Mapping[str, Any]) -> Decimal:
    return _ONE if params.get("ConsistentRead") else _HALF


def _read_units(size: int) -> Decimal:
    return Decimal(_units(size, _READ_UNIT_BYTES))


def _read_units_by_table(
    operation: str, params: Mapping[str, Any], response: Mapping[str, Any] | None
) -> dict[str, Decimal]:
    """Read units; with ``response=None`` the request-side floor (every read found nothing)."""
    units: dict[str, Decimal] = {}
    answer: Mapping[str, Any] = response or {}
    table = params.get("TableName")
    if operation == "GetItem":
        _add(units, table, _read_units(dynamodb_item_size(answer.get("Item"))) * _consistency(params))
    elif operation in ("Query", "Scan"):
        total = sum(dynamodb_item_size(item) for item in answer.get("Items") or ())
        _add(units, table, _read_units(total) * _consistency(params))
    elif operation == "BatchGetItem":
        returned = answer.get("Responses") or {}
        unprocessed = answer.get("UnprocessedKeys") or {}
        for name, request in (params.get("RequestItems") or {}).items():
            factor = _consistency(request)
            items = returned.get(name) or ()
            left = len((unprocessed.get(name) or {}).get("Keys") or ())
            not_found = max(0, len(request.get("Keys") or ()) - len(items) - left)
            found = sum((_read_units(dynamodb_item_size(item)) for item in items), _ZERO)
            _add(units, name, (found + not_found) * factor)
    elif operation == "TransactGetItems":
        requested = params.get("TransactItems") or ()
        returned = answer.get("Responses") or ()
        for n, item in enumerate(requested):
            got = returned[n].get("Item") if n < len(returned) else None
            _add(units, (item.get("Get") or {}).get("TableName"),
                 _TWO * _read_units(dynamodb_item_size(got)))
    return units


def dynamodb_units(operation: str, params: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """(write units, read units) of one DynamoDB call, as far as its *request* shows them.

    Write units are computed from the sizes of the items in the request (see the module
    docstring). Read units are the floor the request alone gives, as if every read found
    nothing: the meter replaces them with :func:`dynamodb_read_units` of the response.

    Examples:
        >>> dynamodb_units("PutItem", {"TableName": "t", "Item": {"Memo": {"S": "x" * 3000}}})
        (Decimal('3'), Decimal('0'))
        >>> dynamodb_units("TransactWriteItems", {"TransactItems": [{}, {}]})
        (Decimal('4'), Decimal('0'))
        >>> dynamodb_units("GetItem", {"ConsistentRead": False})
        (Decimal('0'), Decimal('0.5'))
    """
    writes = sum(_write_units_by_table(operation, params).values(), _ZERO)
    return writes, sum(_read_units_by_table(operation, params, None).values(), _ZERO)


def dynamodb_read_units(
    operation: str, params: Mapping[str, Any], response: Mapping[str, Any]
) -> Decimal:
    """Read units of one successful DynamoDB call, from the sizes of the items it returned.

    Examples:
        >>> item = {"EndToEndId": {"S": "E2E-1"}, "Memo": {"S": "x" * 5000}}
        >>> dynamodb_read_units("GetItem", {"ConsistentRead": True}, {"Item": item})
        Decimal('2')
        >>> dynamodb_read_units("GetItem", {}, {"Item": item})
        Decimal('1.0')
    """
    return sum(_read_units_by_table(operation, params, response).values(), _ZERO)


# SQS payload chunks.
def _sqs_message_size(message: Mapping[str, Any]) -> int:
    size = _utf8(message.get("MessageBody", message.get("Body", "")))
    for name, attribute in (message.get("MessageAttributes") or {}).items():
        size += _utf8(name) + _utf8(attribute.get("DataType", ""))
        if "StringValue" in attribute:
            size += _utf8(attribute["StringValue"])
        if "BinaryValue" in attribute:
            size += _binary_size(attribute["BinaryValue"])
    return size


def sqs_requests(
    operation: str, params: Mapping[str, Any], response: Mapping[str, Any] | None = None
) -> int:
    """Billable requests of one SQS call: one per 64 KB chunk of its payload, at least one.

    SendMessage and SendMessageBatch are sized from ``params``; ReceiveMessage from the messages
    in ``response`` (one request without it); every other operation is one request.

    Examples:
        >>> sqs_requests("SendMessage", {"MessageBody": "x" * 100_000})
        2
        >>> sqs_requests("DeleteMessage", {})
        1
    """
    messages: Iterable[Mapping[str, Any]]
    if operation == "SendMessage":
        messages = (params,)
    elif operation == "SendMessageBatch":
        messages = params.get("Entries") or ()
    elif operation == "ReceiveMessage" and response is not None:
        messages = response.get("Messages") or ()
    else:
        return 1
    return _units(sum(_sqs_message_size(message) for message in messages), SQS_CHUNK_BYTES)


def _kinesis_record_units(record: Mapping[str, Any]) -> int:
    return _units(_binary_size(record.get("Data", b"")) + _utf8(record.get("PartitionKey", "")),
                  KINESIS_PUT_UNIT_BYTES)


def kinesis_put_units(operation: str, params: Mapping[str, Any], response: Mapping[str, Any] | None = None) -> int:
    """PUT payload units of a successful PutRecord or PutRecords call: one per 25 KB chunk of each record.

    PutRecords records whose response entry carries an ``ErrorCode`` were not written and are not
    counted; every other operation has none.

    Examples:
        >>> kinesis_put_units("PutRecord", {"Data": b"x" * 30_000, "PartitionKey": "a"})
        2
        >>> kinesis_put_units("PutRecords", {"Records": [{"Data": b"{}", "PartitionKey": "a"}] * 3},
        ...                   {"Records": [{"SequenceNumber": "1"}, {"ErrorCode": "InternalFailure"}, {}]})
        2
    """
    if operation == "PutRecord":
        return _kinesis_record_units(params)
    if operation != "PutRecords":
        return 0
    records = params.get("Records") or ()
    answers = (response or {}).get("Records") or [{}] * len(records)
    return sum(_kinesis_record_units(record) for record, answer in zip(records, answers, strict=False)
               if not answer.get("ErrorCode"))


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
        self._write_units: Counter[str] = Counter()
        self._read_units: Counter[str] = Counter()
        self._sqs_requests = 0
        self._kinesis_put_units = 0
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
        # boto3's DynamoDB resource layer turns responses into Python values in a handler for
        # "after-call.dynamodb", which runs before any handler for plain "after-call": size the
        # items in a handler for the same event, registered first, while they are still typed.
        events.register_first(
            "after-call.dynamodb", self._on_dynamodb_response, unique_id=f"{self._id}-dynamodb"
        )

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
        params = context.get(_CONTEXT_PARAMS) or {}
        writes: dict[str, Decimal] = {}
        sqs = 0
        if key.service == "dynamodb":
            writes = _write_units_by_table(key.operation, params)
        elif key.service == "sqs":  # ReceiveMessage: 1 now, the rest from the response
            sqs = sqs_requests(key.operation, params)
        with self._lock:
            self._calls[key] += 1
            self._write_units.update(writes)
            self._sqs_requests += sqs

    def _on_response_received(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        key = (context or {}).get(_CONTEXT_KEY)
        if key is not None:
            with self._lock:
                self._attempts[key] += 1

    def _on_after_call(
        self, http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        key = context.get(_CONTEXT_KEY)
        if key is None:
            return
        if http_response.status_code >= 300:
            code = context.get("error_code_override") or parsed.get("Error", {}).get("Code")
            with self._lock:
                self._errors[(key, str(code or http_response.status_code))] += 1
            return
        if key.service == "sqs" and key.operation == "ReceiveMessage":
            more = sqs_requests(key.operation, context.get(_CONTEXT_PARAMS) or {}, parsed) - 1
            with self._lock:
                self._sqs_requests += more
        elif key.service == "kinesis" and key.operation in ("PutRecord", "PutRecords"):
            units = kinesis_put_units(key.operation, context.get(_CONTEXT_PARAMS) or {}, parsed)
            with self._lock:
                self._kinesis_put_units += units

    def _on_dynamodb_response(
        self, http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        key = context.get(_CONTEXT_KEY)
        if key is None or key.service != "dynamodb" or http_response.status_code >= 300:
            return
        params = context.get(_CONTEXT_PARAMS) or {}
        reads = _read_units_by_table(key.operation, params, parsed)
        unwritten: dict[str, Decimal] = {}
        if parsed.get("UnprocessedItems"):
            unwritten = _write_units_by_table(
                "BatchWriteItem", {"RequestItems": parsed["UnprocessedItems"]}
            )
        with self._lock:
            self._read_units.update(reads)
            self._write_units.subtract(unwritten)

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
                write_units=sum(self._write_units.values(), _ZERO),
                read_units=sum(self._read_units.values(), _ZERO),
                sqs_requests=self._sqs_requests,
                write_units_by_table=dict(self._write_units),
                read_units_by_table=dict(self._read_units),
                kinesis_put_units=self._kinesis_put_units,
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
            self._write_units.clear()
            self._read_units.clear()
            self._sqs_requests = 0
            self._kinesis_put_units = 0

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
        """DynamoDB write units so far (from item sizes)."""
        return self.snapshot().write_units

    @property
    def read_units(self) -> Decimal:
        """DynamoDB read units so far (from the sizes of the items returned)."""
        return self.snapshot().read_units

    @property
    def sqs_requests(self) -> int:
        """Billable SQS requests so far (one per 64 KB chunk of payload)."""
        return self.snapshot().sqs_requests
