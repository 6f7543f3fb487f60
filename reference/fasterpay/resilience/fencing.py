"""Fencing: only the region holding a cell's current epoch and an unexpired lease may write.

A *cell* is a range of accounts that one region serves at a time (active/passive per cell). Each region
keeps, in its own control table, one **fence item** per cell (``pk`` ``FENCE#<cell>``: ``owner`` region,
``epoch``, ``lease_until`` in epoch seconds). The item is **regional**: it is never replicated (a
replicated fence would let one region's write decide another region's right to write).

* :class:`RegionLease` renews ``lease_until = now + ttl`` in the local fence item, and only while the
  routing control plane (:mod:`.control`) says this region is active for the cell at that epoch. If the
  control plane cannot be reached, it does not renew: the lease lapses within ``ttl`` (fail closed).
* :class:`FenceGuard` adds one ``ConditionCheck`` to every transaction of the payment store
  (``owner = :me AND epoch = :epoch AND lease_until > :now``), so a region whose lease has lapsed, or
  which writes with a stale epoch, has every write refused, atomically with the write itself, and
  learns it as :class:`FencedOutError`.

The guard is not a lock service: it works because the controller never makes another region active
before the old region's lease has certainly lapsed (the *fence interval*, see
:func:`fasterpay.resilience.control.fence_interval`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

__all__ = [
    "Fence",
    "FenceGuard",
    "FencedOutError",
    "LeaseState",
    "RegionLease",
    "create_fence_table",
    "fence_key",
]

_CCF = "ConditionalCheckFailed"


class FencedOutError(Exception):
    """This region may not write for the cell: its lease lapsed or its epoch is stale; nothing was written.

    Stop taking work for the cell and let the sender retry: the routing control plane sends it to the
    active region. Do not retry the write here; renew the lease first (it succeeds only if this region
    is active again, at a newer epoch).
    """

    def __init__(self, message: str, *, cell: str, region: str, epoch: int) -> None:
        super().__init__(message)
        self.cell = cell
        self.region = region
        self.epoch = epoch


def fence_key(cell: str) -> dict[str, Any]:
    """The fence item's key in the control table.

    Examples:
        >>> fence_key("c1")
        {'pk': {'S': 'FENCE#c1'}}
    """
    return {"pk": {"S": f"FENCE#{cell}"}}


@dataclass(frozen=True)
class Fence:
    """A fence item as stored in one region's control table."""

    cell: str
    owner: str
    epoch: int
    lease_until: float

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Fence:
        """Parse a ``FENCE#`` item.

        Examples:
            >>> Fence.from_item({"pk": {"S": "FENCE#c1"}, "owner": {"S": "eu-west-2"}, "epoch": {"N": "3"},
            ...                  "lease_until": {"N": "100.5"}}).epoch
            3
        """
        return cls(item["pk"]["S"][6:], item["owner"]["S"], int(item["epoch"]["N"]), float(item["lease_until"]["N"]))


def create_fence_table(dynamodb: Any, name: str) -> str:
    """Create a region's control table (partition key ``pk``; no stream: it is never replicated).

    Examples:
        >>> create_fence_table(env.client("dynamodb", region="eu-west-2"), "fasterpay-control")  # doctest: +SKIP
        'fasterpay-control'
    """
    dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    return name


class _ActiveView(Protocol):
    def active(self, cell: str) -> tuple[str, int, str]: ...


class FenceGuard:
    """The write fence of one region for one cell: a ``ConditionCheck`` for each transaction.

    ``epoch`` is the epoch this region believes it holds (set by :class:`RegionLease` when it renews).
    ``clock`` returns this region's time in epoch seconds; the check compares it with ``lease_until``
    inside DynamoDB, at the write.

    Examples:
        >>> guard = FenceGuard(dynamodb, "fasterpay-control", "c1", "eu-west-2", clock=time.time)  # doctest: +SKIP
        >>> store = PaymentStore(dynamodb, "payments", "ledger", fence=guard)  # doctest: +SKIP
        >>> store.hold(payment, first_of_message=True, at=now)  # doctest: +SKIP
        Traceback (most recent call last):
        FencedOutError: eu-west-2 may not write cell c1 at epoch 1 ...
    """

    def __init__(self, dynamodb: Any, table: str, cell: str, region: str, clock: Callable[[], float], *,
                 epoch: int = 0) -> None:
        self._ddb = dynamodb
        self.table = table
        self.cell = cell
        self.region = region
        self.clock = clock
        self.epoch = epoch

    def condition_check(self) -> dict[str, Any]:
        """The ``ConditionCheck`` item to append to a ``TransactWriteItems`` call."""
        return {"ConditionCheck": {
            "TableName": self.table, "Key": fence_key(self.cell),
            "ConditionExpression": "#o = :me AND epoch = :epoch AND lease_until > :now",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":me": {"S": self.region}, ":epoch": {"N": str(self.epoch)},
                                          ":now": {"N": repr(float(self.clock()))}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}

    def fenced_out(self, reason: Mapping[str, Any]) -> FencedOutError | None:
        """The error to raise when the transaction was cancelled by this check, else None.

        ``reason`` is the ``CancellationReasons`` entry at the index of this check in the transaction.
        """
        if reason.get("Code") != _CCF:
            return None
        item = reason.get("Item")
        found = "no fence item" if not item else (
            f"fence owner {item.get('owner', {}).get('S')} epoch {item.get('epoch', {}).get('N')} "
            f"lease until {item.get('lease_until', {}).get('N')}")
        return FencedOutError(
            f"{self.region} may not write cell {self.cell} at epoch {self.epoch} ({found}, now {self.clock():.3f}): "
            "stop taking work for this cell; the sender retries through the routing control plane",
            cell=self.cell, region=self.region, epoch=self.epoch)

    def holds_lease(self) -> bool:
        """Whether the local fence item says this region may write now (a read; the write re-checks)."""
        fence = self.read()
        return (fence is not None and fence.owner == self.region and fence.epoch == self.epoch
                and fence.lease_until > self.clock())

    def read(self) -> Fence | None:
        """The local fence item (strongly consistent), or None."""
        item = self._ddb.get_item(TableName=self.table, Key=fence_key(self.cell), ConsistentRead=True).get("Item")
        return None if item is None else Fence.from_item(item)


@dataclass(frozen=True)
class LeaseState:
    """What one renewal did: ``renewed`` with the epoch and the new ``lease_until``, or why not."""

    renewed: bool
    epoch: int
    lease_until: float
    reason: str = ""


class RegionLease:
    """Renews this region's lease on a cell, only while the control plane says it is active.

    ``control`` is a :class:`~fasterpay.resilience.control.RoutingControlPlane` (anything with
    ``active(cell) -> (region, epoch, state)``); it may raise when unreachable, and then the lease is not
    renewed (fail closed). Renew every ``ttl / 3`` seconds or so.

    Examples:
        >>> lease = RegionLease(guard, control, ttl=10.0)  # doctest: +SKIP
        >>> lease.renew().renewed  # doctest: +SKIP
        True
    """

    def __init__(self, guard: FenceGuard, control: _ActiveView, *, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive seconds")
        self.guard = guard
        self.control = control
        self.ttl = ttl

    def renew(self) -> LeaseState:
        """Extend the lease if this region is ON for the cell; never move the epoch backwards."""
        guard = self.guard
        try:
            region, epoch, state = self.control.active(guard.cell)
        except (BotoCoreError, ClientError, ConnectionError, TimeoutError) as exc:
            return LeaseState(False, guard.epoch, 0.0, f"control plane unreachable: {type(exc).__name__}")
        if region != guard.region or state != "ON":
            return LeaseState(False, guard.epoch, 0.0, f"control plane: {region} is active ({state}) at epoch {epoch}")
        until = float(guard.clock()) + self.ttl
        try:
            guard._ddb.update_item(
                TableName=guard.table, Key=fence_key(guard.cell),
                UpdateExpression="SET #o = :me, epoch = :e, lease_until = :until",
                ConditionExpression="attribute_not_exists(pk) OR epoch <= :e",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": guard.region}, ":e": {"N": str(epoch)},
                                           ":until": {"N": repr(until)}})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return LeaseState(False, guard.epoch, 0.0, f"local fence holds a newer epoch than {epoch}")
        guard.epoch = epoch
        return LeaseState(True, epoch, until)
