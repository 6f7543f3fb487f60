"""The idempotency store, on DynamoDB (moto) and in memory, with one set of tests for both."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasterpay.aws import AwsEnvironment
from fasterpay.idempotency import (
    Claim,
    DynamoDbIdempotencyStore,
    IdempotencyKeyReuseError,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    InvalidIdempotencyKeyError,
    LeaseLostError,
    ManualClock,
    NonCanonicalValueError,
    Replay,
    RequestInProgressError,
    Status,
    canonical_json,
    create_idempotency_table,
    fingerprint,
)
from fasterpay.metering import ApiCallMeter
from ledger_harness import SerialisedClient, race

PAYMENT = {"debit_account": "alice", "credit_account": "bob", "amount_minor": 2_500, "currency": "GBP"}
FP = fingerprint(PAYMENT)
LEASE, RETENTION = 30.0, 3_600


# -- fingerprints ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ({"amount": Decimal("10.50")}, {"amount": Decimal("10.5")}),
        ({"amount": Decimal("0")}, {"amount": Decimal("-0.00")}),
        ({"name": "Zoe\u0308"}, {"name": "Zo\u00eb"}),  # NFD and NFC of "Zoë"
        ({"legs": [{"x": 1, "y": 2}]}, {"legs": ({"y": 2, "x": 1},)}),
    ],
    ids=["key order", "decimal scale", "negative zero", "unicode form", "nested"],
)
def test_equal_meaning_gives_equal_fingerprints(left: dict, right: dict) -> None:
    assert fingerprint(left) == fingerprint(right)


@pytest.mark.parametrize(
    "changed",
    [{**PAYMENT, "amount_minor": 2_501}, {**PAYMENT, "currency": "EUR"}, {**PAYMENT, "credit_account": "carol"},
     {**PAYMENT, "extra": None}, {**PAYMENT, "amount_minor": "2500"}],
    ids=["amount", "currency", "beneficiary", "extra field", "type"],
)
def test_any_change_of_content_changes_the_fingerprint(changed: dict) -> None:
    assert fingerprint(changed) != FP


def test_ignored_fields_do_not_change_the_fingerprint() -> None:
    assert fingerprint({**PAYMENT, "sent_at": "12:00"}, ignore=("sent_at",)) == FP
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
    assert FP.startswith("v1:") and len(FP) == 3 + 64


@pytest.mark.parametrize("bad", [{"amount": 10.5}, {"amount": Decimal("NaN")}, {"tags": {"a"}}, {1: "x"}, ["list"]],
                         ids=["float", "nan", "set", "non-string key", "not a mapping"])
def test_values_without_a_canonical_form_are_refused(bad: object) -> None:
    with pytest.raises(NonCanonicalValueError):
        fingerprint(bad)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8),
                       st.one_of(st.integers(), st.text(max_size=12), st.booleans(), st.none(),
                                 st.decimals(allow_nan=False, allow_infinity=False, places=2)),
                       max_size=6))
def test_fingerprint_ignores_key_order(payload: dict) -> None:
    assert fingerprint(payload) == fingerprint(dict(reversed(list(payload.items()))))


# -- the store, both backends ----------------------------------------------------------------------
@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)


@pytest.fixture
def meter() -> ApiCallMeter:
    return ApiCallMeter()


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest, clock: ManualClock, meter: ApiCallMeter) -> IdempotencyStore:
    if request.param == "memory":
        return InMemoryIdempotencyStore(lease_seconds=LEASE, retention_seconds=RETENTION, clock=clock)
    env: AwsEnvironment = request.getfixturevalue("env")
    dynamodb = meter.attach(env.client("dynamodb"))
    table = create_idempotency_table(dynamodb, "test-idempotency")
    return DynamoDbIdempotencyStore(dynamodb, table, lease_seconds=LEASE, retention_seconds=RETENTION, clock=clock)


def test_first_attempt_claims_with_fence_one(store: IdempotencyStore, clock: ManualClock) -> None:
    claim = store.begin("bank-a", "req-1", FP)
    assert isinstance(claim, Claim) and claim.fence == 1 and not claim.taken_over
    record = store.get("bank-a", "req-1")
    assert record is not None and record.status is Status.IN_PROGRESS
    assert record.lease_until_ms == int((clock() + LEASE) * 1000)
    assert record.expires_at == int(clock()) + RETENTION


def test_completed_key_replays_the_stored_response(store: IdempotencyStore) -> None:
    claim = store.begin("bank-a", "req-1", FP)
    assert isinstance(claim, Claim)
    store.complete(claim, {"transfer_id": "e2e-1", "status": "posted"})
    replay = store.begin("bank-a", "req-1", FP)
    assert isinstance(replay, Replay) and replay.value == {"transfer_id": "e2e-1", "status": "posted"}


def test_same_key_different_payload_is_refused(store: IdempotencyStore) -> None:
    claim = store.begin("bank-a", "req-1", FP)
    store.complete(claim, {"ok": True})  # type: ignore[arg-type]
    with pytest.raises(IdempotencyKeyReuseError) as info:
        store.begin("bank-a", "req-1", fingerprint({**PAYMENT, "amount_minor": 9_999}))
    assert info.value.stored_fingerprint == FP and "use a new key" in str(info.value)


def test_keys_are_scoped_per_caller(store: IdempotencyStore) -> None:
    assert isinstance(store.begin("bank-a", "req-1", FP), Claim)
    assert isinstance(store.begin("bank-b", "req-1", fingerprint({"other": 1})), Claim)


def test_retry_during_the_lease_is_told_to_wait(store: IdempotencyStore, clock: ManualClock) -> None:
    store.begin("bank-a", "req-1", FP)
    clock.advance(10)
    with pytest.raises(RequestInProgressError) as info:
        store.begin("bank-a", "req-1", FP)
    assert info.value.retry_after_seconds == pytest.approx(LEASE - 10)


def test_expired_lease_is_taken_over_and_the_stale_holder_is_fenced_off(
    store: IdempotencyStore, clock: ManualClock
) -> None:
    stalled = store.begin("bank-a", "req-1", FP)
    clock.advance(LEASE + 1)
    successor = store.begin("bank-a", "req-1", FP)
    assert isinstance(successor, Claim) and successor.fence == 2 and successor.taken_over
    with pytest.raises(LeaseLostError):
        store.complete(stalled, {"from": "stalled"})  # type: ignore[arg-type]
    with pytest.raises(LeaseLostError):
        store.release(stalled)  # type: ignore[arg-type]
    store.complete(successor, {"from": "successor"})
    replay = store.begin("bank-a", "req-1", FP)
    assert isinstance(replay, Replay) and replay.value == {"from": "successor"}


def test_release_lets_a_retry_run_at_once(store: IdempotencyStore) -> None:
    claim = store.begin("bank-a", "req-1", FP)
    store.release(claim)  # type: ignore[arg-type]
    assert store.get("bank-a", "req-1") is None
    again = store.begin("bank-a", "req-1", FP)
    assert isinstance(again, Claim) and again.fence == 1


def test_expired_record_counts_as_absent_on_read_and_on_write(store: IdempotencyStore, clock: ManualClock) -> None:
    claim = store.begin("bank-a", "req-1", FP)
    store.complete(claim, {"old": True})  # type: ignore[arg-type]
    clock.advance(RETENTION + 1)  # past retention; neither moto nor (yet) DynamoDB has deleted the item
    assert store.get("bank-a", "req-1") is None
    fresh = store.begin("bank-a", "req-1", fingerprint({"a": "new request after retention"}))
    assert isinstance(fresh, Claim) and fresh.fence == 1


def test_run_executes_once_and_replays(store: IdempotencyStore) -> None:
    calls: list[int] = []

    def post(claim: Claim) -> dict:
        calls.append(claim.fence)
        return {"posted": len(calls)}

    first = store.run("bank-a", "req-1", PAYMENT, post)
    second = store.run("bank-a", "req-1", PAYMENT, post)
    assert (first.response, first.replayed) == ({"posted": 1}, False)
    assert (second.response, second.replayed) == ({"posted": 1}, True)
    assert calls == [1]


def test_run_releases_the_claim_when_the_operation_fails(store: IdempotencyStore) -> None:
    def failing(claim: Claim) -> dict:
        raise ConnectionError("downstream unavailable")

    with pytest.raises(ConnectionError):
        store.run("bank-a", "req-1", PAYMENT, failing)
    assert store.get("bank-a", "req-1") is None
    assert store.run("bank-a", "req-1", PAYMENT, lambda claim: {"ok": 1}).response == {"ok": 1}


@pytest.mark.parametrize(("scope", "key"), [("", "k"), ("bank#a", "k"), ("bank-a", ""), ("bank-a", "k" * 129),
                                            ("bank-a", "key with spaces"), ("bank-a", "a#b")])
def test_bad_scope_or_key_is_refused_before_anything_is_written(
    store: IdempotencyStore, meter: ApiCallMeter, scope: str, key: str
) -> None:
    before = meter.snapshot()
    with pytest.raises(InvalidIdempotencyKeyError):
        store.begin(scope, key, FP)
    assert (meter.snapshot() - before).count() == 0


@pytest.mark.parametrize(("lease", "retention"), [(0, 60), (-1, 60), (60, 30)])
def test_lease_and_retention_are_checked(lease: float, retention: int) -> None:
    with pytest.raises(ValueError):
        InMemoryIdempotencyStore(lease_seconds=lease, retention_seconds=retention)


def test_concurrent_attempts_yield_exactly_one_claim(store: IdempotencyStore) -> None:
    if isinstance(store, DynamoDbIdempotencyStore):
        store._ddb = SerialisedClient(store._ddb)  # moto is not isolated per call; DynamoDB is (ledger_harness)
    def attempt() -> str:
        try:
            result = store.begin("bank-a", "req-race", FP)
            return "claim" if isinstance(result, Claim) else "replay"
        except RequestInProgressError:
            return "in-progress"

    outcomes = race(8, attempt)
    assert sorted(outcomes) == ["claim"] + ["in-progress"] * 7


# -- DynamoDB specifics: the TTL attribute and the write units -----------------------------------------
def test_table_has_ttl_on_expires_at(env: AwsEnvironment) -> None:
    dynamodb = env.client("dynamodb")
    create_idempotency_table(dynamodb, "ttl-check")
    ttl = dynamodb.describe_time_to_live(TableName="ttl-check")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def _units(meter: ApiCallMeter, action: Callable[[], object]) -> Decimal:
    before = meter.snapshot()
    try:
        action()
    except IdempotencyKeyReuseError:
        pass
    return (meter.snapshot() - before).write_units


def test_write_units_per_call(env: AwsEnvironment, clock: ManualClock, meter: ApiCallMeter) -> None:
    dynamodb = meter.attach(env.client("dynamodb"))
    store = DynamoDbIdempotencyStore(dynamodb, create_idempotency_table(dynamodb, "units"), clock=clock)
    first = _units(meter, lambda: store.run("bank-a", "req-1", PAYMENT, lambda claim: {"ok": True}))
    replay_meter = meter.snapshot()
    replay = store.run("bank-a", "req-1", PAYMENT, lambda claim: {"ok": False})
    replay_calls = meter.snapshot() - replay_meter
    reuse = _units(meter, lambda: store.run("bank-a", "req-1", {"other": 1}, lambda claim: {}))
    assert first == 2  # claim (PutItem) + complete (UpdateItem)
    assert replay.replayed and replay_calls.write_units == 1 and replay_calls.read_units == 0  # ALL_OLD: no read
    assert reuse == 1


def test_stale_fence_cancels_a_transaction_that_carries_the_completion(
    env: AwsEnvironment, clock: ManualClock
) -> None:
    dynamodb = env.client("dynamodb")
    store = DynamoDbIdempotencyStore(dynamodb, create_idempotency_table(dynamodb, "txn"), lease_seconds=LEASE,
                                     clock=clock)
    stalled = store.begin("bank-a", "req-1", FP)
    clock.advance(LEASE + 1)
    store.begin("bank-a", "req-1", FP)  # the successor, fence 2
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException) as info:
        dynamodb.transact_write_items(TransactItems=[store.completion(stalled).item({"from": "stalled"})])  # type: ignore[arg-type]
    assert [r["Code"] for r in info.value.response["CancellationReasons"]] == ["ConditionalCheckFailed"]
    assert isinstance(store.completion(stalled).lost(), LeaseLostError)  # type: ignore[arg-type]
