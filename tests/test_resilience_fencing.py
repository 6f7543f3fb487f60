"""Fencing: a write with a stale epoch or a lapsed lease is refused (FencedOutError) and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from fasterpay.ledger import Ledger, create_ledger_tables
from fasterpay.pipeline.model import Payment, customer_account, inflight_account
from fasterpay.pipeline.store import PaymentStore, TransitionConflictError
from fasterpay.resilience import (
    FencedOutError,
    FenceGuard,
    InMemoryRoutingControls,
    RegionLease,
    create_fence_table,
)

REGION = "eu-west-2"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _payment(n: int = 1, amount: int = 1_000) -> Payment:
    return Payment(f"00000000-0000-4000-8000-{n:012d}", f"E2E-{n}", f"MSG-{n}", "uk_fps", amount, "GBP", 2,
                   "dtk_iban_alice", f"tok_iban_b{n}", "dtk_name_a", "tok_name_b", "OURBGB2L", "BARCGB22",
                   1_800_000_000.0, rail="uk_fps", submission_id=f"sub-{n}")


@pytest.fixture
def world(env: Any) -> dict[str, Any]:
    ddb = env.client("dynamodb")
    for name in ("payments",):
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    tables = create_ledger_tables(ddb, None, "fx", queue=False)
    ledger = Ledger(ddb, tables)
    ledger.open_account("funding:GBP", "GBP", allow_negative=True)
    ledger.open_account(inflight_account("uk_fps", "GBP"), "GBP", allow_negative=True)
    ledger.open_account(customer_account("dtk_iban_alice"), "GBP")
    from fasterpay.ledger import Transfer

    ledger.transfer(Transfer("fund", "funding:GBP", customer_account("dtk_iban_alice"), 100_000, "GBP"))
    control = create_fence_table(ddb, "control")
    clock = Clock()
    controls = InMemoryRoutingControls({"c1": (REGION, 1, "ON")})
    guard = FenceGuard(ddb, control, "c1", REGION, clock)
    lease = RegionLease(guard, controls, ttl=10.0)
    store = PaymentStore(ddb, "payments", tables.ledger, fence=guard)
    return {"ddb": ddb, "ledger": ledger, "clock": clock, "controls": controls, "guard": guard, "lease": lease,
            "store": store, "tables": tables}


def _snapshot(ddb: Any, *tables: str) -> list[Any]:
    return [sorted(ddb.scan(TableName=t, ConsistentRead=True)["Items"], key=repr) for t in tables]


def test_condition_check_shape(world: dict[str, Any]) -> None:
    world["lease"].renew()
    check = world["guard"].condition_check()["ConditionCheck"]
    assert check["Key"] == {"pk": {"S": "FENCE#c1"}}
    assert check["ConditionExpression"] == "#o = :me AND epoch = :epoch AND lease_until > :now"
    assert check["ExpressionAttributeValues"][":epoch"] == {"N": "1"}


def test_write_with_valid_lease_succeeds_and_carries_the_check(world: dict[str, Any]) -> None:
    assert world["lease"].renew().renewed
    outcome = world["store"].hold(_payment(), first_of_message=True, at=world["clock"]())
    assert outcome.kind == "held"
    stored = world["store"].clear(_payment(), cycle="C1", at=world["clock"]())
    assert stored.status == "ACSP" and stored.cycle == "C1"


def test_no_fence_item_refuses_every_write(world: dict[str, Any]) -> None:
    before = _snapshot(world["ddb"], "payments", world["tables"].ledger)
    with pytest.raises(FencedOutError) as caught:
        world["store"].hold(_payment(), first_of_message=True, at=world["clock"]())
    assert "no fence item" in str(caught.value)
    assert _snapshot(world["ddb"], "payments", world["tables"].ledger) == before


def test_lapsed_lease_is_refused_and_changes_nothing(world: dict[str, Any]) -> None:
    store, clock = world["store"], world["clock"]
    world["lease"].renew()
    store.hold(_payment(1), first_of_message=True, at=clock())
    clock.now += 10.0  # lease_until = renewal + 10 s: lease_until > now is false from here
    before = _snapshot(world["ddb"], "payments", world["tables"].ledger)
    for write in (lambda: store.hold(_payment(2), first_of_message=True, at=clock()),
                  lambda: store.clear(_payment(1), cycle="C1", at=clock()),
                  lambda: store.release(_payment(1), "AB02", at=clock()),
                  lambda: store.reject(_payment(3), "AM04", at=clock())):
        with pytest.raises(FencedOutError) as caught:
            write()
        assert caught.value.region == REGION and caught.value.epoch == 1
    assert _snapshot(world["ddb"], "payments", world["tables"].ledger) == before
    assert store.get(_payment(1).uetr).status == "ACCP"


def test_stale_epoch_is_refused(world: dict[str, Any]) -> None:
    guard, lease, controls, clock = world["guard"], world["lease"], world["controls"], world["clock"]
    lease.renew()
    # the control plane moves the cell away and back: the local fence item now holds epoch 3
    controls.set("c1", "eu-west-1", "ON", expected_epoch=1, new_epoch=2)
    controls.set("c1", REGION, "ON", expected_epoch=2, new_epoch=3)
    other = FenceGuard(world["ddb"], guard.table, "c1", REGION, clock)
    assert RegionLease(other, controls, ttl=10.0).renew().epoch == 3
    guard.epoch = 1  # this writer still believes epoch 1
    before = _snapshot(world["ddb"], "payments")
    with pytest.raises(FencedOutError):
        world["store"].hold(_payment(), first_of_message=True, at=clock())
    assert _snapshot(world["ddb"], "payments") == before


def test_lease_is_not_renewed_when_off_or_unreachable(world: dict[str, Any]) -> None:
    guard, controls, clock = world["guard"], world["controls"], world["clock"]
    assert world["lease"].renew().renewed
    controls.unreachable_from.add(REGION)
    cut_off = RegionLease(guard, controls.view(REGION), ttl=10.0)
    state = cut_off.renew()
    assert not state.renewed and "unreachable" in state.reason
    controls.unreachable_from.clear()
    controls.set("c1", REGION, "OFF", expected_epoch=1, new_epoch=1)
    assert not world["lease"].renew().renewed
    clock.now += 10.0
    assert not guard.holds_lease()  # fail closed: the lease lapsed within ttl


def test_lease_never_moves_the_epoch_backwards(world: dict[str, Any]) -> None:
    guard, controls = world["guard"], world["controls"]
    controls.set("c1", REGION, "ON", expected_epoch=1, new_epoch=5)
    assert world["lease"].renew().epoch == 5
    stale = InMemoryRoutingControls({"c1": (REGION, 4, "ON")})  # a control plane that lags behind
    state = RegionLease(guard, stale, ttl=10.0).renew()
    assert not state.renewed and guard.read().epoch == 5


def test_conflicts_are_still_conflicts_with_a_fence(world: dict[str, Any]) -> None:
    store, clock = world["store"], world["clock"]
    world["lease"].renew()
    store.hold(_payment(), first_of_message=True, at=clock())
    store.release(_payment(), "AC04", at=clock())
    with pytest.raises(TransitionConflictError) as caught:
        store.clear(_payment(), cycle="C1", at=clock())
    assert caught.value.current is not None and caught.value.current.status == "RJCT"
    again = store.hold(_payment(), first_of_message=True, at=clock())
    assert again.kind == "redelivery"
    poor = _payment(9, amount=10_000_000)
    assert store.hold(poor, first_of_message=True, at=clock()).reason == "AM04"


def test_store_without_fence_sends_the_same_requests(world: dict[str, Any]) -> None:
    sent: list[str] = []
    ddb = world["ddb"]
    ddb.meta.events.register("before-parameter-build.dynamodb", lambda model, **_: sent.append(model.name))
    plain = PaymentStore(ddb, "payments", world["tables"].ledger)
    plain.hold(_payment(), first_of_message=True, at=1.0)
    plain.clear(_payment(), cycle="C1", at=2.0)
    assert sent == ["TransactWriteItems", "UpdateItem"]
