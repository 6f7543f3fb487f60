"""The double-entry ledger on moto: one transaction per transfer, refusals, replays, shards, crashes."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fasterpay.aws import AwsEnvironment, open_environment
from fasterpay.idempotency import (
    DynamoDbIdempotencyStore,
    IdempotencyKeyReuseError,
    LeaseLostError,
    ManualClock,
    RequestInProgressError,
    fingerprint,
)
from fasterpay.ledger import (
    TRANSFER_STEPS,
    CrashPlan,
    CurrencyMismatchError,
    InsufficientFundsError,
    InvalidTransferError,
    Ledger,
    LedgerBusyError,
    LedgerError,
    LedgerTables,
    OutboxRelay,
    SimulatedCrash,
    Transfer,
    TransferIdReuseError,
    TransferService,
    UnknownAccountError,
    create_ledger_tables,
)
from fasterpay.ledger.stack import deploy_ledger, ledger_template
from fasterpay.metering import ApiCallMeter
from simulations.templates import parse_template
from ledger_harness import SerialisedClient, race

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)


@pytest.fixture
def meter() -> ApiCallMeter:
    return ApiCallMeter()


@pytest.fixture
def tables(env: AwsEnvironment) -> LedgerTables:
    return create_ledger_tables(env.client("dynamodb"), env.client("sqs"), "test")


@pytest.fixture
def ledger(env: AwsEnvironment, tables: LedgerTables, meter: ApiCallMeter, clock: ManualClock) -> Ledger:
    ledger = Ledger(meter.attach(env.client("dynamodb")), tables, clock=clock)
    ledger.open_account("settlement", "GBP", allow_negative=True)
    for name in ("alice", "bob"):
        ledger.open_account(name, "GBP")
    ledger.open_account("euro-desk", "EUR")
    ledger.transfer(Transfer("fund-alice", "settlement", "alice", 10_000, "GBP"))
    return ledger


@pytest.fixture
def store(ledger: Ledger, tables: LedgerTables, clock: ManualClock) -> DynamoDbIdempotencyStore:
    return DynamoDbIdempotencyStore(ledger._ddb, tables.idempotency, lease_seconds=30, clock=clock)


def transfer_count(env: AwsEnvironment, tables: LedgerTables) -> int:
    items = env.client("dynamodb").scan(TableName=tables.ledger)["Items"]
    return sum(1 for item in items if item["pk"]["S"].startswith("TRANSFER#"))


# -- posting ---------------------------------------------------------------------------------------------
def test_transfer_moves_money_and_writes_journal_and_outbox_in_one_transaction(
    env: AwsEnvironment, ledger: Ledger, tables: LedgerTables, meter: ApiCallMeter
) -> None:
    before = meter.snapshot()
    result = ledger.transfer(Transfer("e2e-1", "alice", "bob", 2_500, "GBP", reference="rent"))
    calls = meter.snapshot() - before
    assert calls.by_operation() == {"dynamodb:TransactWriteItems": 1}
    assert calls.write_units == 8  # debit + credit + transfer record + outbox event, 2 units each
    assert (ledger.balance("alice").balance_minor, ledger.balance("bob").balance_minor) == (7_500, 2_500)
    assert ledger.get_transfer("e2e-1") == result and not result.replayed
    outbox = env.client("dynamodb").scan(TableName=tables.outbox)["Items"]
    assert [i["event_id"]["S"] for i in outbox if "e2e-1" in i["event_id"]["S"]] == ["TransferPosted:e2e-1"]


def test_retry_of_a_posted_transfer_replays_without_posting_again(ledger: Ledger, meter: ApiCallMeter) -> None:
    first = ledger.transfer(Transfer("e2e-1", "alice", "bob", 2_500, "GBP"))
    before = meter.snapshot()
    again = ledger.transfer(Transfer("e2e-1", "alice", "bob", 2_500, "GBP"))
    calls = meter.snapshot() - before
    assert again.replayed and again.posted_at == first.posted_at
    assert calls.count(operation="TransactWriteItems") == 1 and calls.read_units == 0  # answer from ALL_OLD
    assert ledger.balance("alice").balance_minor == 7_500


@pytest.mark.parametrize("change", [{"amount_minor": 2_501}, {"credit_account": "settlement"}, {"reference": "x"}],
                         ids=["amount", "beneficiary", "reference"])
def test_transfer_id_reused_for_different_content_is_refused(ledger: Ledger, change: dict) -> None:
    ledger.transfer(Transfer("e2e-1", "alice", "bob", 2_500, "GBP"))
    fields = {"transfer_id": "e2e-1", "debit_account": "alice", "credit_account": "bob", "amount_minor": 2_500,
              "currency": "GBP", **change}
    with pytest.raises(TransferIdReuseError) as info:
        ledger.transfer(Transfer(**fields))
    assert info.value.reason == "transfer-id-reuse"
    assert ledger.balance("alice").balance_minor == 7_500


def test_overdraft_is_refused_by_the_condition_and_nothing_is_written(
    env: AwsEnvironment, ledger: Ledger, tables: LedgerTables
) -> None:
    with pytest.raises(InsufficientFundsError):
        ledger.transfer(Transfer("e2e-big", "alice", "bob", 10_001, "GBP"))
    assert ledger.balance("alice").balance_minor == 10_000 and ledger.get_transfer("e2e-big") is None
    ledger.transfer(Transfer("e2e-all", "alice", "bob", 10_000, "GBP"))  # exactly the balance is allowed
    assert ledger.balance("alice").balance_minor == 0


@pytest.mark.parametrize(
    ("transfer", "error"),
    [
        (Transfer("e2e-2", "nobody", "bob", 1, "GBP"), UnknownAccountError),
        (Transfer("e2e-2", "alice", "nobody", 1, "GBP"), UnknownAccountError),
        (Transfer("e2e-2", "alice", "euro-desk", 1, "GBP"), CurrencyMismatchError),
        (Transfer("e2e-2", "alice", "bob", 1, "EUR"), CurrencyMismatchError),
    ],
    ids=["unknown debit", "unknown credit", "credit in another currency", "transfer in another currency"],
)
def test_unknown_accounts_and_currency_mismatches_are_refused(
    ledger: Ledger, transfer: Transfer, error: type[Exception]
) -> None:
    with pytest.raises(error):
        ledger.transfer(transfer)
    assert ledger.reconcile().balanced and ledger.get_transfer("e2e-2") is None


@pytest.mark.parametrize(
    "fields",
    [
        {"amount_minor": 0}, {"amount_minor": -5}, {"amount_minor": 10.5}, {"amount_minor": True},
        {"amount_minor": 10**16}, {"currency": "gbp"}, {"currency": "POUND"}, {"credit_account": "alice"},
        {"transfer_id": ""}, {"transfer_id": "id#with#hash"}, {"debit_account": "x" * 65}, {"reference": "r" * 141},
    ],
    ids=lambda f: next(iter(f.items()))[0] + "=" + repr(next(iter(f.values())))[:12],
)
def test_malformed_transfer_is_refused_before_any_aws_call(fields: dict) -> None:
    valid = {"transfer_id": "e2e-1", "debit_account": "alice", "credit_account": "bob", "amount_minor": 100,
             "currency": "GBP"}
    with pytest.raises(InvalidTransferError):
        Transfer(**{**valid, **fields})


def test_accounts_open_once_and_shards_are_checked(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="exists already"):
        ledger.open_account("alice", "GBP")
    for shards in (0, 65, True):
        with pytest.raises(InvalidTransferError):
            ledger.open_account("new", "GBP", shards=shards)


def test_a_fresh_process_reads_account_metadata(env: AwsEnvironment, ledger: Ledger, tables: LedgerTables) -> None:
    other = Ledger(env.client("dynamodb"), tables)
    assert other.account("alice").currency == "GBP" and other.balance("alice").balance_minor == 10_000
    with pytest.raises(UnknownAccountError):
        other.account("nobody")


@pytest.mark.parametrize("code", ["TransactionConflict", "ThrottlingError"])
def test_contention_is_reported_as_retryable(ledger: Ledger, code: str) -> None:
    """moto never reports contention; DynamoDB does, inside TransactionCanceledException."""
    from botocore.exceptions import ClientError

    real = ledger._ddb

    class Contended:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def transact_write_items(self, **_: object) -> None:
            reasons = [{"Code": code}, {"Code": "None"}, {"Code": "None"}, {"Code": "None"}]
            raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                               "CancellationReasons": reasons}, "TransactWriteItems")

    store = DynamoDbIdempotencyStore(real, ledger.tables.idempotency)
    ledger._ddb = Contended()
    with pytest.raises(LedgerBusyError, match="retry"):
        TransferService(ledger, store).submit("bank-a", "req-busy", Transfer("e2e-busy", "alice", "bob", 1, "GBP"))
    assert store.get("bank-a", "req-busy") is None  # the claim was released: the client may retry at once
    ledger._ddb = real
    assert not TransferService(ledger, store).submit("bank-a", "req-busy",
                                                     Transfer("e2e-busy", "alice", "bob", 1, "GBP")).replayed


# -- hot accounts --------------------------------------------------------------------------------------
def test_sharded_account_spreads_credits_and_keeps_one_balance(ledger: Ledger) -> None:
    ledger.open_account("merchant", "GBP", shards=4)
    for n in range(40):
        ledger.transfer(Transfer(f"sale-{n}", "alice", "merchant", 10, "GBP"))
    balance = ledger.balance("merchant")
    assert balance.balance_minor == 400 and len(balance.by_shard) == 4
    assert all(shard > 0 for shard in balance.by_shard)  # every shard took credits
    assert ledger.reconcile().balanced


def test_sharded_debit_tries_other_shards_but_never_overdraws_one(ledger: Ledger) -> None:
    ledger.open_account("merchant", "GBP", shards=4)
    for n in range(12):
        ledger.transfer(Transfer(f"sale-{n}", "alice", "merchant", 100, "GBP"))
    by_shard = ledger.balance("merchant").by_shard
    payout = max(by_shard)
    result = ledger.transfer(Transfer("payout-1", "merchant", "bob", payout, "GBP"))
    assert by_shard[result.debit_shard] == payout
    with pytest.raises(InsufficientFundsError, match="any one of its 4 shards"):
        ledger.transfer(Transfer("payout-2", "merchant", "bob", 1_200 - payout, "GBP"))  # more than any shard
    assert min(ledger.balance("merchant").by_shard) >= 0 and ledger.reconcile().balanced


# -- the payment API: idempotency keys with a fence inside the transaction --------------------------------
def test_service_posts_once_per_key_and_stores_the_answer_in_the_same_transaction(
    ledger: Ledger, store: DynamoDbIdempotencyStore, meter: ApiCallMeter
) -> None:
    service = TransferService(ledger, store)
    transfer = Transfer("e2e-1", "alice", "bob", 2_500, "GBP")
    before = meter.snapshot()
    first = service.submit("bank-a", "req-1", transfer)
    first_calls = meter.snapshot() - before
    again = service.submit("bank-a", "req-1", transfer)
    assert first_calls.by_operation() == {"dynamodb:PutItem": 1, "dynamodb:TransactWriteItems": 1}
    assert first_calls.write_units == 1 + 10  # the claim, then five transaction items
    assert again.replayed and again.transfer_id == first.transfer_id
    assert ledger.balance("bob").balance_minor == 2_500


def test_service_refuses_a_reused_key_and_replays_refusals(ledger: Ledger, store: DynamoDbIdempotencyStore) -> None:
    service = TransferService(ledger, store)
    service.submit("bank-a", "req-1", Transfer("e2e-1", "alice", "bob", 2_500, "GBP"))
    with pytest.raises(IdempotencyKeyReuseError):
        service.submit("bank-a", "req-1", Transfer("e2e-1", "alice", "bob", 9_999, "GBP"))
    with pytest.raises(InsufficientFundsError) as first:
        service.submit("bank-a", "req-2", Transfer("e2e-2", "alice", "bob", 50_000, "GBP"))
    ledger.transfer(Transfer("top-up", "settlement", "alice", 100_000, "GBP"))
    with pytest.raises(InsufficientFundsError) as retry:  # the stored answer, not a second attempt
        service.submit("bank-a", "req-2", Transfer("e2e-2", "alice", "bob", 50_000, "GBP"))
    assert not first.value.replayed and retry.value.replayed
    assert ledger.get_transfer("e2e-2") is None


def test_same_transfer_under_two_keys_posts_once(ledger: Ledger, store: DynamoDbIdempotencyStore) -> None:
    service = TransferService(ledger, store)
    transfer = Transfer("e2e-1", "alice", "bob", 2_500, "GBP")
    service.submit("bank-a", "req-1", transfer)
    second = service.submit("bank-a", "req-other", transfer)
    assert second.replayed and ledger.balance("alice").balance_minor == 7_500
    assert service.submit("bank-a", "req-other", transfer).replayed  # that key is completed too


def test_stalled_attempt_is_fenced_off_after_another_takes_over(
    ledger: Ledger, store: DynamoDbIdempotencyStore, clock: ManualClock
) -> None:
    transfer = Transfer("e2e-1", "alice", "bob", 2_500, "GBP")
    stalled = store.begin("bank-a", "req-1", fingerprint(transfer.payload()))
    with pytest.raises(RequestInProgressError):
        TransferService(ledger, store).submit("bank-a", "req-1", transfer)
    clock.advance(31)  # the stalled attempt's lease runs out
    successor = TransferService(ledger, store).submit("bank-a", "req-1", transfer)
    assert not successor.replayed
    with pytest.raises(LeaseLostError):  # it wakes and tries to post with its old fence
        ledger.transfer(transfer, completion=store.completion(stalled))  # type: ignore[arg-type]
    with pytest.raises(LeaseLostError):  # even for a transfer id no one posted yet
        ledger.transfer(Transfer("e2e-zombie", "alice", "bob", 1, "GBP"), completion=store.completion(stalled))  # type: ignore[arg-type]
    assert ledger.balance("alice").balance_minor == 7_500 and ledger.get_transfer("e2e-zombie") is None


@pytest.mark.parametrize("step", TRANSFER_STEPS)
def test_crash_at_every_step_boundary_then_retry_posts_exactly_once(
    env: AwsEnvironment, ledger: Ledger, store: DynamoDbIdempotencyStore, tables: LedgerTables,
    clock: ManualClock, step: str
) -> None:
    transfer = Transfer("e2e-1", "alice", "bob", 2_500, "GBP")
    crash = CrashPlan(step)
    ledger.crash = crash
    with pytest.raises(SimulatedCrash):
        TransferService(ledger, store, crash=crash).submit("bank-a", "req-1", transfer)
    clock.advance(31)  # the client retries after the crashed attempt's lease
    result = TransferService(ledger, store).submit("bank-a", "req-1", transfer)
    assert result.replayed == (step == "posted")
    assert ledger.balance("alice").balance_minor == 7_500 and ledger.balance("bob").balance_minor == 2_500
    assert transfer_count(env, tables) == 2 and ledger.reconcile().balanced  # funding + this one
    relay = OutboxRelay(env.client("dynamodb"), env.client("sqs"), outbox_table=tables.outbox,
                        queue_url=tables.queue_url)
    assert relay.pending() == 2  # one event per posted transfer, never one per attempt


# -- concurrency (threads against moto in process) ------------------------------------------------------
def test_concurrent_debits_never_overdraw_and_the_books_balance(ledger: Ledger) -> None:
    ledger._ddb = SerialisedClient(ledger._ddb)  # moto is not isolated per call; DynamoDB is (ledger_harness)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def pay(n: int) -> None:
        start.wait()
        try:
            ledger.transfer(Transfer(f"race-{n}", "alice", "bob", 1_500, "GBP"))
            name = "posted"
        except InsufficientFundsError:
            name = "refused"
        with lock:
            outcomes.append(name)

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("posted") == 6 and outcomes.count("refused") == 4  # 6 × 1,500 <= 10,000 < 7 × 1,500
    assert ledger.balance("alice").balance_minor == 1_000 and ledger.reconcile().balanced


def test_many_threads_of_random_transfers_keep_the_books_balanced(ledger: Ledger) -> None:
    ledger._ddb = SerialisedClient(ledger._ddb)  # see ledger_harness
    ledger.open_account("carol", "GBP")
    for name in ("bob", "carol"):
        ledger.transfer(Transfer(f"fund-{name}", "settlement", name, 10_000, "GBP"))

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(20):
            debit, credit = rng.sample(["alice", "bob", "carol"], 2)
            transfer_id = f"t-{seed}-{rng.randrange(25)}"  # collisions across threads: retries and reuses
            try:
                ledger.transfer(Transfer(transfer_id, debit, credit, rng.randrange(1, 4_000), "GBP"))
            except (InsufficientFundsError, TransferIdReuseError):
                pass

    threads = [threading.Thread(target=work, args=(seed % 3,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.reconcile().balanced
    assert all(ledger.balance(name).balance_minor >= 0 for name in ("alice", "bob", "carol"))


def test_concurrent_retries_of_one_request_post_once(ledger: Ledger, store: DynamoDbIdempotencyStore) -> None:
    ledger._ddb = store._ddb = SerialisedClient(ledger._ddb)  # see ledger_harness
    transfer = Transfer("e2e-race", "alice", "bob", 2_500, "GBP")
    def submit() -> str:
        try:
            outcome = TransferService(ledger, store).submit("bank-a", "req-race", transfer)
            return "replayed" if outcome.replayed else "posted"
        except RequestInProgressError:
            return "in-progress"

    results = race(8, submit)
    assert results.count("posted") == 1 and ledger.balance("bob").balance_minor == 2_500


# -- a property: any sequence of transfers, retries included, keeps the books balanced ------------------
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["a", "b", "c"]), st.sampled_from(["a", "b", "c"]),
                          st.integers(1, 4_000)), min_size=1, max_size=12))
def test_books_always_balance_and_no_account_goes_negative(
    moves: list[tuple[int, str, str, int]]
) -> None:
    with open_environment("moto", region="eu-west-2") as env:
        ledger = Ledger(env.client("dynamodb"), create_ledger_tables(env.client("dynamodb"), None, "prop"))
        ledger.open_account("bank", "GBP", allow_negative=True)
        for name in "abc":
            ledger.open_account(name, "GBP")
            ledger.transfer(Transfer(f"fund-{name}", "bank", name, 5_000, "GBP"))
        for transfer_no, debit, credit, amount in moves:  # a repeated transfer_no is a retry or a reuse
            if debit == credit:
                continue
            try:
                ledger.transfer(Transfer(f"t-{transfer_no}", debit, credit, amount, "GBP"))
            except (InsufficientFundsError, TransferIdReuseError):
                pass
        assert ledger.reconcile().balanced
        assert all(ledger.balance(name).balance_minor >= 0 for name in "abc")


# -- the CloudFormation template ----------------------------------------------------------------------
def test_template_deploys_to_moto_and_the_ledger_runs_on_it(env: AwsEnvironment) -> None:
    dynamodb = env.client("dynamodb")
    resources = deploy_ledger(env.client("cloudformation"), dynamodb=dynamodb, on_moto=True)
    tables = resources.tables
    assert tables.queue_url.endswith("fasterpay-ledger-events.fifo")
    for table in (tables.idempotency, tables.consumer):
        ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    attributes = env.client("sqs").get_queue_attributes(QueueUrl=tables.queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["FifoQueue"] == "true" and attributes["ContentBasedDeduplication"] == "false"
    assert '"maxReceiveCount": 5' in attributes["RedrivePolicy"]
    ledger = Ledger(dynamodb, tables)
    ledger.open_account("settlement", "GBP", allow_negative=True)
    ledger.open_account("alice", "GBP")
    ledger.transfer(Transfer("fund", "settlement", "alice", 100, "GBP"))
    assert ledger.reconcile().balanced


def test_relay_and_consumer_roles_cannot_write_balances() -> None:
    """On AWS the scoped statements decide; moto cannot check resource ARNs, so the template is read here."""
    template = parse_template(ledger_template())
    resources = template["Resources"]

    def actions(policy: str) -> set[str]:
        found: set[str] = set()
        for statement in resources[policy]["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            found |= {listed} if isinstance(listed, str) else set(listed)
        return found

    assert "dynamodb:UpdateItem" not in actions("RelayPolicy")
    assert not {a for a in actions("RelayPolicy") | actions("ReconcilerPolicy") if a.startswith("dynamodb:Put")}
    assert "sqs:SendMessage" not in actions("ConsumerPolicy")
    read_only = ("dynamodb:Get", "dynamodb:BatchGet", "dynamodb:Scan")
    assert not {a for a in actions("ReconcilerPolicy") if not a.startswith(read_only)}
    assert (REPO / "reference" / "fasterpay" / "cloudformation" / "ledger.yaml").read_text() == ledger_template()
