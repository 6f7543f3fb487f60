"""Idempotency records with a lease and a fencing token, on DynamoDB or in memory.

A request carries an idempotency key chosen by its client. The first attempt *claims* the key: it
writes an ``IN_PROGRESS`` record with the fingerprint of its payload, a lease (how long it may work
undisturbed) and a fence (1). Then:

* a retry while the lease runs is refused with :class:`RequestInProgressError` (retry later);
* a retry after the work completed gets the stored response back (:class:`Replay`), without running
  the operation again;
* a retry with the same key and a different payload is refused with :class:`IdempotencyKeyReuseError`;
* a retry after the lease ran out (the first attempt crashed or stalled) *takes over*: the fence goes
  up by one. The stalled attempt, if it wakes, can no longer complete or release the record
  (:class:`LeaseLostError`), and every write that carries its fence as a condition is refused too.

Records are kept for ``retention_seconds`` after they are written or completed. The time is stored in
``expires_at`` (epoch seconds), the table's TTL attribute. DynamoDB deletes expired items only
eventually (typically within days; moto never does), so expiry is also checked on every read and write:
an expired record counts as absent.

Examples:
    >>> store = InMemoryIdempotencyStore(lease_seconds=30, retention_seconds=86_400)
    >>> outcome = store.run("bank-a", "order-1", {"amount_minor": 1050}, lambda claim: {"ok": True})
    >>> outcome.response, outcome.replayed
    ({'ok': True}, False)
    >>> store.run("bank-a", "order-1", {"amount_minor": 1050}, lambda claim: {"ok": False}).replayed
    True
"""

from __future__ import annotations

import json
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from .fingerprint import fingerprint as fingerprint_of

__all__ = [
    "Claim",
    "DynamoDbIdempotencyStore",
    "IdempotencyError",
    "IdempotencyKeyReuseError",
    "IdempotencyRecord",
    "IdempotencyStore",
    "InMemoryIdempotencyStore",
    "InvalidIdempotencyKeyError",
    "LeaseLostError",
    "ManualClock",
    "Outcome",
    "Replay",
    "RequestInProgressError",
    "Status",
    "TransactionalCompletion",
    "create_idempotency_table",
]

_SCOPE_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_KEY_RE = re.compile(r"[A-Za-z0-9._:~-]{1,128}")


class IdempotencyError(Exception):
    """Base class of the idempotency store's errors."""


class InvalidIdempotencyKeyError(IdempotencyError, ValueError):
    """A scope is not 1-64 of [A-Za-z0-9._:-], or a key not 1-128 of [A-Za-z0-9._:~-]: fix the caller."""


class IdempotencyKeyReuseError(IdempotencyError):
    """The key was used before for a different payload: send a new key for a new request.

    ``stored_fingerprint`` and ``fingerprint`` say what differs; the stored response is never returned.
    """

    def __init__(self, key: str, stored_fingerprint: str, fingerprint: str) -> None:
        self.key = key
        self.stored_fingerprint = stored_fingerprint
        self.fingerprint = fingerprint
        super().__init__(
            f"idempotency key {key!r} was used for another payload ({stored_fingerprint[:15]}…, this one "
            f"{fingerprint[:15]}…): use a new key for a new request"
        )


class RequestInProgressError(IdempotencyError):
    """Another attempt holds this key's lease: retry after ``retry_after_seconds``."""

    def __init__(self, key: str, retry_after_seconds: float) -> None:
        self.key = key
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"{key!r} is in progress elsewhere: retry after {retry_after_seconds:.1f} s")


class LeaseLostError(IdempotencyError):
    """The claim's fence is stale: its lease ran out and another attempt took over.

    Report nothing to the client: the attempt that holds the current fence owns the outcome.
    """

    def __init__(self, key: str, fence: int) -> None:
        self.key = key
        self.fence = fence
        super().__init__(f"the lease on {key!r} with fence {fence} was lost to a later attempt")


class Status(str, Enum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class IdempotencyRecord:
    """What the store holds for one key."""

    key: str  # "<scope>#<client key>"
    fingerprint: str
    status: Status
    fence: int
    lease_until_ms: int
    expires_at: int  # epoch seconds: the TTL attribute
    response: str | None = None  # JSON text, once completed


@dataclass(frozen=True)
class Claim:
    """Permission to run the operation now, while the lease lasts, under ``fence``."""

    key: str
    fingerprint: str
    fence: int
    lease_until_ms: int
    taken_over: bool = False  # True when an earlier attempt's lease had run out


@dataclass(frozen=True)
class Replay:
    """The operation already completed: its stored response."""

    key: str
    response: str

    @property
    def value(self) -> Any:
        return json.loads(self.response)


@dataclass(frozen=True)
class Outcome:
    response: Any
    replayed: bool


class ManualClock:
    """A clock for tests and notebooks: epoch seconds that move only when told.

    Examples:
        >>> clock = ManualClock(1_000.0)
        >>> clock.advance(31); clock()
        1031.0
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def _check(scope: str, key: str) -> str:
    if not isinstance(scope, str) or not _SCOPE_RE.fullmatch(scope):
        raise InvalidIdempotencyKeyError(f"scope must be 1-64 characters from [A-Za-z0-9._:-], got {scope!r}")
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise InvalidIdempotencyKeyError(f"key must be 1-128 characters from [A-Za-z0-9._:~-], got {key!r}")
    return f"{scope}#{key}"


class IdempotencyStore(ABC):
    """The decisions, shared by every backend; a backend implements five small ``_hooks``.

    ``lease_seconds`` should exceed the operation's worst-case duration (a Lambda's timeout), and
    ``retention_seconds`` the longest a client may keep retrying: a retry after retention is a new request.
    """

    def __init__(
        self,
        *,
        lease_seconds: float = 30.0,
        retention_seconds: int = 86_400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        if retention_seconds < lease_seconds:
            raise ValueError(
                f"retention_seconds ({retention_seconds}) must be at least lease_seconds ({lease_seconds}): "
                "a record must outlive its lease"
            )
        self.lease_seconds = lease_seconds
        self.retention_seconds = int(retention_seconds)
        self.clock = clock

    # -- public template methods -------------------------------------------------------------------
    def begin(self, scope: str, key: str, fingerprint: str) -> Claim | Replay:
        """Claim ``key`` for this attempt, or return the stored response of a completed one.

        Raises:
            InvalidIdempotencyKeyError: bad scope or key; nothing was written.
            IdempotencyKeyReuseError: the key was used for a different payload.
            RequestInProgressError: another attempt holds a live lease.
        """
        stored_key = _check(scope, key)
        now = self.clock()
        now_ms = int(now * 1000)
        fresh = IdempotencyRecord(
            key=stored_key,
            fingerprint=fingerprint,
            status=Status.IN_PROGRESS,
            fence=1,
            lease_until_ms=now_ms + int(self.lease_seconds * 1000),
            expires_at=int(now) + self.retention_seconds,
        )
        existing = self._insert_if_absent(fresh, now)
        if existing is None:
            return Claim(stored_key, fingerprint, 1, fresh.lease_until_ms)
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReuseError(stored_key, existing.fingerprint, fingerprint)
        if existing.status is Status.COMPLETED:
            return Replay(stored_key, existing.response or "null")
        if existing.lease_until_ms > now_ms:
            raise RequestInProgressError(stored_key, (existing.lease_until_ms - now_ms) / 1000)
        taken = self._take_over(existing, fresh.lease_until_ms)
        if taken is None:  # a third attempt took over between our read and our write
            raise RequestInProgressError(stored_key, self.lease_seconds)
        return Claim(stored_key, fingerprint, taken.fence, taken.lease_until_ms, taken_over=True)

    def complete(self, claim: Claim, response: Any) -> None:
        """Store ``response`` (JSON-serialisable) for replay; raises :class:`LeaseLostError` if the fence is stale."""
        if not self._complete(claim, self.response_text(response), self.completed_expiry()):
            raise LeaseLostError(claim.key, claim.fence)

    def release(self, claim: Claim) -> None:
        """Delete this attempt's in-progress record so that a retry may run at once.

        Call it only when the operation had no effect. Raises :class:`LeaseLostError` if the fence is stale.
        """
        if not self._delete(claim):
            raise LeaseLostError(claim.key, claim.fence)

    def abandon(self, claim: Claim) -> None:
        """Release ``claim`` after a failure without effect, unless a later attempt took over already."""
        try:
            self.release(claim)
        except LeaseLostError:
            pass  # a later attempt owns the key now

    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The live record of ``key``, or None (expired records count as absent)."""
        record = self._get(_check(scope, key))
        if record is None or record.expires_at <= self.clock():
            return None
        return record

    def run(
        self,
        scope: str,
        key: str,
        payload: Mapping[str, Any],
        operation: Callable[[Claim], Any],
        *,
        ignore: tuple[str, ...] = (),
    ) -> Outcome:
        """Run ``operation`` at most once per key; replay its response on retries.

        If ``operation`` raises, its claim is released and the error propagates, so the client may retry:
        raise only before the operation had an effect. A crash (the process dying) leaves the record
        in progress until its lease runs out; the next retry then takes over.

        Examples:
            >>> outcome = store.run("bank-a", request_id, payload, post_payment)  # doctest: +SKIP
        """
        claim = self.begin(scope, key, fingerprint_of(payload, ignore=ignore))
        if isinstance(claim, Replay):
            return Outcome(claim.value, replayed=True)
        try:
            response = operation(claim)
        except Exception:
            self.abandon(claim)
            raise
        self.complete(claim, response)
        return Outcome(response, replayed=False)

    # -- helpers for backends ------------------------------------------------------------------------
    @staticmethod
    def response_text(response: Any) -> str:
        return json.dumps(response, sort_keys=True, separators=(",", ":"))

    def completed_expiry(self) -> int:
        return int(self.clock()) + self.retention_seconds

    # -- hooks --------------------------------------------------------------------------------------
    @abstractmethod
    def _insert_if_absent(self, record: IdempotencyRecord, now: float) -> IdempotencyRecord | None:
        """Write ``record`` unless a live one exists; return None if written, else the existing record."""

    @abstractmethod
    def _take_over(self, existing: IdempotencyRecord, lease_until_ms: int) -> IdempotencyRecord | None:
        """Raise the fence of an in-progress record whose lease ran out; None if another attempt did first."""

    @abstractmethod
    def _complete(self, claim: Claim, response: str, expires_at: int) -> bool:
        """Mark completed with ``response`` if the record is in progress under ``claim.fence``."""

    @abstractmethod
    def _delete(self, claim: Claim) -> bool:
        """Delete the record if it is in progress under ``claim.fence``."""

    @abstractmethod
    def _get(self, stored_key: str) -> IdempotencyRecord | None:
        """The record as stored, expired or not."""


class InMemoryIdempotencyStore(IdempotencyStore):
    """The same store in a dict: for unit tests, and for logic that must be tested without AWS."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._records: dict[str, IdempotencyRecord] = {}
        self._lock = threading.Lock()

    def _insert_if_absent(self, record: IdempotencyRecord, now: float) -> IdempotencyRecord | None:
        with self._lock:
            existing = self._records.get(record.key)
            if existing is not None and existing.expires_at > now:
                return existing
            self._records[record.key] = record
            return None

    def _take_over(self, existing: IdempotencyRecord, lease_until_ms: int) -> IdempotencyRecord | None:
        with self._lock:
            current = self._records.get(existing.key)
            if current is None or current.status is not Status.IN_PROGRESS or current.fence != existing.fence:
                return None
            taken = replace(current, fence=current.fence + 1, lease_until_ms=lease_until_ms)
            self._records[existing.key] = taken
            return taken

    def _holds(self, claim: Claim) -> IdempotencyRecord | None:
        current = self._records.get(claim.key)
        if current is None or current.status is not Status.IN_PROGRESS or current.fence != claim.fence:
            return None
        return current

    def _complete(self, claim: Claim, response: str, expires_at: int) -> bool:
        with self._lock:
            current = self._holds(claim)
            if current is None:
                return False
            self._records[claim.key] = replace(current, status=Status.COMPLETED, response=response,
                                               expires_at=expires_at)
            return True

    def _delete(self, claim: Claim) -> bool:
        with self._lock:
            if self._holds(claim) is None:
                return False
            del self._records[claim.key]
            return True

    def _get(self, stored_key: str) -> IdempotencyRecord | None:
        with self._lock:
            return self._records.get(stored_key)


class DynamoDbIdempotencyStore(IdempotencyStore):
    """Records in a DynamoDB table keyed ``pk`` (string), with TTL on ``expires_at``.

    Costs (on-demand, items under 1 KB): a first attempt writes 2 units (claim, complete); a replay or a
    refused reuse 1 unit (a failed conditional put, which returns the stored item, so nothing is read).

    Examples:
        >>> store = DynamoDbIdempotencyStore(dynamodb, "fasterpay-idempotency")  # doctest: +SKIP
    """

    def __init__(self, dynamodb: Any, table_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ddb = dynamodb
        self.table_name = table_name

    # The fence condition, shared by complete, release and the transactional completion.
    _HELD = "#status = :in_progress AND fence = :fence"

    def completion_item(self, claim: Claim, response: Any) -> dict[str, Any]:
        """A ``TransactWriteItems`` entry that completes ``claim``, so the completion commits or fails
        together with the operation's own writes. A stale fence cancels the whole transaction
        (reason ``ConditionalCheckFailed`` at this entry's index).

        Examples:
            >>> items = [debit, credit, store.completion_item(claim, result)]  # doctest: +SKIP
        """
        return {"Update": self._complete_request(claim, self.response_text(response), self.completed_expiry())}

    def completion(self, claim: Claim) -> TransactionalCompletion:
        """``claim``'s completion, to hand to code that writes in a transaction (the ledger)."""
        return TransactionalCompletion(self, claim)

    def _complete_request(self, claim: Claim, response: str, expires_at: int) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Key": {"pk": {"S": claim.key}},
            "UpdateExpression": "SET #status = :completed, #response = :response, expires_at = :expires",
            "ConditionExpression": self._HELD,
            "ExpressionAttributeNames": {"#status": "status", "#response": "response"},
            "ExpressionAttributeValues": {
                ":completed": {"S": Status.COMPLETED.value},
                ":in_progress": {"S": Status.IN_PROGRESS.value},
                ":fence": {"N": str(claim.fence)},
                ":response": {"S": response},
                ":expires": {"N": str(expires_at)},
            },
        }

    def _insert_if_absent(self, record: IdempotencyRecord, now: float) -> IdempotencyRecord | None:
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item=_to_item(record),
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            item = exc.response.get("Item")
            if item is None:  # an SDK or emulator that does not return the item: read it
                item = self._ddb.get_item(TableName=self.table_name, Key={"pk": {"S": record.key}},
                                          ConsistentRead=True).get("Item")
            if item is None:
                raise
            return _from_item(item)

    def _take_over(self, existing: IdempotencyRecord, lease_until_ms: int) -> IdempotencyRecord | None:
        try:
            answer = self._ddb.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": existing.key}},
                UpdateExpression="SET fence = :next, lease_until_ms = :lease",
                ConditionExpression=self._HELD,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":in_progress": {"S": Status.IN_PROGRESS.value},
                    ":fence": {"N": str(existing.fence)},
                    ":next": {"N": str(existing.fence + 1)},
                    ":lease": {"N": str(lease_until_ms)},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return _from_item(answer["Attributes"])

    def _complete(self, claim: Claim, response: str, expires_at: int) -> bool:
        try:
            self._ddb.update_item(**self._complete_request(claim, response, expires_at))
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _delete(self, claim: Claim) -> bool:
        try:
            self._ddb.delete_item(
                TableName=self.table_name,
                Key={"pk": {"S": claim.key}},
                ConditionExpression=self._HELD,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":in_progress": {"S": Status.IN_PROGRESS.value},
                    ":fence": {"N": str(claim.fence)},
                },
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _get(self, stored_key: str) -> IdempotencyRecord | None:
        item = self._ddb.get_item(TableName=self.table_name, Key={"pk": {"S": stored_key}},
                                  ConsistentRead=True).get("Item")
        return None if item is None else _from_item(item)


@dataclass(frozen=True)
class TransactionalCompletion:
    """Completes one claim inside someone else's ``TransactWriteItems``.

    Examples:
        >>> ledger.transfer(transfer, completion=store.completion(claim))  # doctest: +SKIP
    """

    store: DynamoDbIdempotencyStore
    claim: Claim

    def item(self, response: Any) -> dict[str, Any]:
        """The transaction item; it fails (and cancels the transaction) if the fence is stale."""
        return self.store.completion_item(self.claim, response)

    def lost(self) -> LeaseLostError:
        """The error to raise when the transaction was cancelled at this item."""
        return LeaseLostError(self.claim.key, self.claim.fence)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _to_item(record: IdempotencyRecord) -> dict[str, Any]:
    item = {
        "pk": {"S": record.key},
        "fingerprint": {"S": record.fingerprint},
        "status": {"S": record.status.value},
        "fence": {"N": str(record.fence)},
        "lease_until_ms": {"N": str(record.lease_until_ms)},
        "expires_at": {"N": str(record.expires_at)},
    }
    if record.response is not None:
        item["response"] = {"S": record.response}
    return item


def _from_item(item: Mapping[str, Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=item["pk"]["S"],
        fingerprint=item["fingerprint"]["S"],
        status=Status(item["status"]["S"]),
        fence=int(item["fence"]["N"]),
        lease_until_ms=int(item["lease_until_ms"]["N"]),
        expires_at=int(item["expires_at"]["N"]),
        response=item.get("response", {}).get("S"),
    )


def create_idempotency_table(dynamodb: Any, table_name: str) -> str:
    """Create an on-demand table keyed ``pk`` with TTL on ``expires_at`` (as the CloudFormation template
    does), wait until it is active and return its name. For tests and benchmarks that rotate tables.

    Examples:
        >>> create_idempotency_table(env.client("dynamodb"), "bench-1-idempotency")  # doctest: +SKIP
        'bench-1-idempotency'
    """
    dynamodb.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    return table_name
