"""Batch tokenisation (``Vault.tokenize_many``) against moto: calls per batch, skips, erasure, IAM, retries."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import pytest

from fasterpay.aws import AwsEnvironment
from fasterpay.metering import ApiCallMeter
from fasterpay.vault import (
    BatchIncompleteError,
    Caller,
    InMemoryAuditLog,
    InvalidReferenceError,
    InvalidValueError,
    SubjectErasedError,
    UnknownDataClassError,
    Vault,
    VaultAccessDeniedError,
    VaultError,
    VaultPolicy,
)
from fasterpay.vault.stack import VaultResources, deploy_vault, vault_as_role
from simulations.vault_bench import payment_fields

IBAN = "GB82WEST12345698765432"
GATEWAY = Caller("scheme-gateway", "scheme-submission")
POLICY = VaultPolicy.of(grants=[("scheme-gateway", ["iban", "name", "account_number"], ["scheme-submission"])],
                        erasers=["dpo"])


@pytest.fixture
def resources(env: AwsEnvironment) -> VaultResources:
    return deploy_vault(env.client("cloudformation"), env.client("kms"), on_moto=True)


@pytest.fixture
def meter() -> ApiCallMeter:
    return ApiCallMeter()


@pytest.fixture
def vault(env: AwsEnvironment, resources: VaultResources, meter: ApiCallMeter) -> Vault:
    return vault_as_role(env, resources, None, policy=POLICY, audit=InMemoryAuditLog(), instrument=meter.attach)


def stored(env: AwsEnvironment, resources: VaultResources, prefix: str = "TOKEN#") -> list[dict[str, Any]]:
    items = env.client("dynamodb").scan(TableName=resources.vault_table)["Items"]
    return [i for i in items if i["pk"]["S"].startswith(prefix)]


def payment(i: int) -> list[tuple[str, str]]:
    return payment_fields(random.Random(i))


# -- calls per batch ----------------------------------------------------------------------------------
def test_ten_payments_of_four_fields_cost_three_dynamodb_calls_each_and_four_kms_calls_in_all(
    vault: Vault, meter: ApiCallMeter
) -> None:
    for i in range(10):
        vault.tokenize_many(payment(i), tenant="bank-a", subject=f"pay:{i}")
    assert meter.snapshot().by_operation() == {
        "dynamodb:BatchGetItem": 10,  # subject secret and the 4 token records, one read per payment
        "dynamodb:PutItem": 10,  # the new subject's secret (conditional)
        "dynamodb:BatchWriteItem": 10,  # the 4 new records
        "kms:GenerateDataKey": 2,  # iban and name: one data key each for the whole run
        "kms:GenerateMac": 2,  # iban and name: one token key each (was 40 calls, one per value)
    }


def test_values_already_in_the_vault_cost_one_read_and_nothing_else(
    vault: Vault, meter: ApiCallMeter, env: AwsEnvironment, resources: VaultResources
) -> None:
    first = [vault.tokenize_many(payment(i), tenant="bank-a", subject=f"pay:{i}") for i in range(10)]
    records = len(stored(env, resources))
    before = meter.snapshot()
    again = [vault.tokenize_many(payment(i), tenant="bank-a", subject=f"pay:again-{i}") for i in range(10)]
    assert again == first
    assert (meter.snapshot() - before).by_operation() == {"dynamodb:BatchGetItem": 10}
    assert len(stored(env, resources)) == records
    assert not stored(env, resources, "SUBJECT#bank-a#pay:again-")  # no secret made for a subject with no values


def test_a_large_batch_is_written_25_records_per_call(vault: Vault, meter: ApiCallMeter) -> None:
    values = [(f"Customer {i}", "name") for i in range(60)]
    tokens = vault.tokenize_many(values, tenant="bank-a", subject="bulk")
    assert len(set(tokens)) == 60
    calls = meter.snapshot().by_operation()
    assert (calls["dynamodb:BatchGetItem"], calls["dynamodb:BatchWriteItem"]) == (1, 3)  # 61 keys read; 25+25+10


def test_more_than_a_hundred_keys_are_read_in_several_calls(vault: Vault, meter: ApiCallMeter) -> None:
    vault.tokenize_many([(f"Customer {i}", "name") for i in range(150)], tenant="bank-a", subject="bulk")
    assert meter.count("dynamodb", "BatchGetItem") == 2  # 151 keys: 100 + 51


# -- what comes back --------------------------------------------------------------------------------
def test_every_token_detokenizes_to_its_value_in_order(vault: Vault) -> None:
    values = [("gb82 west 1234 5698 7654 32", "iban"), ("31926819", "account_number"), (" Zoë O’Brien ", "name")]
    tokens = vault.tokenize_many(values, tenant="bank-a", subject="pay:1")
    assert [t.split("_")[0] for t in tokens] == ["dtk"] * 3
    assert [vault.detokenize(t, tenant="bank-a", caller=GATEWAY) for t in tokens] == [IBAN, "31926819", "Zoë O’Brien"]


def test_batch_and_single_tokenisation_give_the_same_deterministic_tokens(vault: Vault) -> None:
    values = payment(7)
    batch = vault.tokenize_many(values, tenant="bank-a", subject="pay:7")
    assert batch == [vault.tokenize(v, c, tenant="bank-a", subject="other", deterministic=True) for v, c in values]


def test_equal_values_in_one_batch_share_a_token_and_one_record(
    vault: Vault, env: AwsEnvironment, resources: VaultResources
) -> None:
    tokens = vault.tokenize_many([("Ann Smith", "name"), (IBAN, "iban"), ("Ann Smith", "name")],
                                 tenant="bank-a", subject="pay:1")
    assert tokens[0] == tokens[2] != tokens[1]
    assert len(stored(env, resources)) == 2


def test_random_tokens_in_a_batch_are_all_fresh(vault: Vault, meter: ApiCallMeter) -> None:
    tokens = vault.tokenize_many([("Ann Smith", "name")] * 3, tenant="bank-a", subject="pay:1", deterministic=False)
    assert len(set(tokens)) == 3 and all(t.startswith("tok_name_") for t in tokens)
    assert meter.count("kms", "GenerateMac") == 0
    assert {vault.detokenize(t, tenant="bank-a", caller=GATEWAY) for t in tokens} == {"Ann Smith"}


def test_an_empty_batch_makes_no_call(vault: Vault, meter: ApiCallMeter) -> None:
    assert vault.tokenize_many([], tenant="bank-a", subject="pay:1") == []
    assert meter.count() == 0


# -- refusals: nothing is written ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "tenant", "error", "message"),
    [
        ([(IBAN, "iban"), ("GB00WEST12345698765432", "iban")], "bank-a", InvalidValueError, "values[1]: iban"),
        ([(IBAN, "iban"), ("123", "ssn")], "bank-a", UnknownDataClassError, "values[1]"),
        ([(IBAN, "iban"), ("", "name")], "bank-a", InvalidValueError, "values[1]: name"),
        ([(IBAN, "iban"), (IBAN,)], "bank-a", InvalidValueError, "values[1] must be a (value, data_class) pair"),
        ([(IBAN, "iban")], "bank#a", InvalidReferenceError, "tenant"),
    ],
    ids=["bad-check-digits", "unknown-class", "empty-name", "not-a-pair", "bad-tenant"],
)
def test_one_bad_value_refuses_the_whole_batch_before_any_call(
    vault: Vault, env: AwsEnvironment, resources: VaultResources, meter: ApiCallMeter,
    values: list[Any], tenant: str, error: type[Exception], message: str,
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        vault.tokenize_many(values, tenant=tenant, subject="pay:1")
    assert meter.count() == 0
    assert env.client("dynamodb").scan(TableName=resources.vault_table)["Count"] == 0


def test_an_erased_subject_is_refused_and_nothing_is_written(
    vault: Vault, env: AwsEnvironment, resources: VaultResources
) -> None:
    known = vault.tokenize_many([(IBAN, "iban")], tenant="bank-a", subject="cust-1")
    vault.erase_subject(tenant="bank-a", subject="cust-1", caller=Caller("dpo", "gdpr-art-17"))
    for values in ([("Ann Smith", "name")], [(IBAN, "iban")]):  # a new value, and one already in the vault
        with pytest.raises(SubjectErasedError):
            vault.tokenize_many(values, tenant="bank-a", subject="cust-1")
    assert [i["pk"]["S"] for i in stored(env, resources)] == [f"TOKEN#{known[0]}"]


def test_deterministic_batches_need_a_mac_key(env: AwsEnvironment, resources: VaultResources) -> None:
    vault = Vault(kms=env.client("kms"), dynamodb=env.client("dynamodb"), table_name=resources.vault_table,
                  key_id=resources.vault_key_arn, audit=InMemoryAuditLog(), policy=POLICY)
    with pytest.raises(VaultError, match="mac_key_id"):
        vault.tokenize_many([(IBAN, "iban")], tenant="bank-a", subject="cust-1")


# -- least privilege, enforced by moto's IAM ----------------------------------------------------------
@pytest.fixture
def roles(env: AwsEnvironment, resources: VaultResources, meter: ApiCallMeter) -> Iterator[dict[str, Vault]]:
    vaults = {
        name: vault_as_role(env, resources, arn, policy=POLICY, audit=InMemoryAuditLog(), instrument=meter.attach)
        for name, arn in {"tokenizer": resources.tokenizer_role_arn, "router": resources.router_role_arn}.items()
    }
    with env.iam_enforced():
        yield vaults


@pytest.mark.parametrize("deterministic", [True, False], ids=["deterministic", "random"])
def test_router_role_is_refused_with_vault_access_denied(
    roles: dict[str, Vault], meter: ApiCallMeter, env: AwsEnvironment, resources: VaultResources, deterministic: bool
) -> None:
    with pytest.raises(VaultAccessDeniedError, match="tokenize_many refused by IAM"):
        roles["router"].tokenize_many(payment(1), tenant="bank-a", subject="pay:1", deterministic=deterministic)
    assert meter.snapshot().count_errors("AccessDeniedException") == 1
    assert meter.count("dynamodb", "BatchWriteItem") == 0


def test_tokenizer_role_may_tokenize_in_batches(roles: dict[str, Vault]) -> None:
    assert len(roles["tokenizer"].tokenize_many(payment(1), tenant="bank-a", subject="pay:1")) == 4
    assert len(roles["tokenizer"].tokenize_batch([("Ann Smith", "name", "pay:2"), ("Bo Lee", "name", "pay:3")],
                                                 tenant="bank-a")) == 2


# -- unprocessed keys and items, and the race BatchWriteItem cannot prevent ---------------------------
class Throttled:
    """A DynamoDB client that leaves the last key (item) of its next ``reads`` (``writes``) batch calls
    unprocessed, as DynamoDB does when a partition is throttled; every other call goes to the real client."""

    def __init__(self, client: Any, *, reads: int = 0, writes: int = 0) -> None:
        self._client = client
        self.reads = reads
        self.writes = writes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        if self.reads <= 0:
            return dict(self._client.batch_get_item(RequestItems=RequestItems))
        self.reads -= 1
        (table, request), = RequestItems.items()
        keys = request["Keys"]
        reply = dict(self._client.batch_get_item(RequestItems={table: {**request, "Keys": keys[:-1]}})) if keys[:-1] else {}
        reply["UnprocessedKeys"] = {table: {**request, "Keys": keys[-1:]}}
        return reply

    def batch_write_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        if self.writes <= 0:
            return dict(self._client.batch_write_item(RequestItems=RequestItems))
        self.writes -= 1
        (table, requests), = RequestItems.items()
        if requests[:-1]:
            self._client.batch_write_item(RequestItems={table: requests[:-1]})
        return {"UnprocessedItems": {table: requests[-1:]}}


def throttled_vault(env: AwsEnvironment, resources: VaultResources, dynamodb: Any, sleeps: list[float]) -> Vault:
    return Vault(kms=env.client("kms"), dynamodb=dynamodb, table_name=resources.vault_table,
                 key_id=resources.vault_key_arn, mac_key_id=resources.token_mac_key_arn,
                 audit=InMemoryAuditLog(), policy=POLICY, sleep=sleeps.append)


def test_unprocessed_keys_and_items_are_retried_with_back_off(env: AwsEnvironment, resources: VaultResources) -> None:
    sleeps: list[float] = []
    dynamodb = Throttled(env.client("dynamodb"), reads=2, writes=2)
    vault = throttled_vault(env, resources, dynamodb, sleeps)
    tokens = vault.tokenize_many(payment(3), tenant="bank-a", subject="pay:3")
    assert (dynamodb.reads, dynamodb.writes) == (0, 0) and sleeps == [0.05, 0.1, 0.05, 0.1]
    assert [vault.detokenize(t, tenant="bank-a", caller=GATEWAY) for t in tokens] == [v for v, _ in payment(3)]


def test_keys_that_are_never_read_raise_before_anything_is_written(
    env: AwsEnvironment, resources: VaultResources
) -> None:
    sleeps: list[float] = []
    vault = throttled_vault(env, resources, Throttled(env.client("dynamodb"), reads=100), sleeps)
    with pytest.raises(BatchIncompleteError, match="unread after 6 BatchGetItem attempts"):
        vault.tokenize_many(payment(3), tenant="bank-a", subject="pay:3")
    assert len(sleeps) == 5 and max(sleeps) <= 1.0
    assert env.client("dynamodb").scan(TableName=resources.vault_table)["Count"] == 0


def test_items_that_are_never_written_raise_and_a_second_call_completes_the_batch(
    env: AwsEnvironment, resources: VaultResources
) -> None:
    sleeps: list[float] = []
    dynamodb = Throttled(env.client("dynamodb"), writes=100)
    vault = throttled_vault(env, resources, dynamodb, sleeps)
    with pytest.raises(BatchIncompleteError, match="1 of 4 token records unwritten after 6 BatchWriteItem attempts"):
        vault.tokenize_many(payment(3), tenant="bank-a", subject="pay:3")
    assert len(stored(env, resources)) == 3 and len(sleeps) == 5
    dynamodb.writes = 0
    tokens = vault.tokenize_many(payment(3), tenant="bank-a", subject="pay:3")  # finds 3 records, writes 1
    assert len(stored(env, resources)) == 4
    assert [vault.detokenize(t, tenant="bank-a", caller=GATEWAY) for t in tokens] == [v for v, _ in payment(3)]


class StaleReads:
    """A DynamoDB client whose batch reads miss every token record: a caller that read before another wrote."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        reply = self._client.batch_get_item(RequestItems=RequestItems)
        for table, items in reply.get("Responses", {}).items():
            reply["Responses"][table] = [i for i in items if not i["pk"]["S"].startswith("TOKEN#")]
        return dict(reply)


def test_concurrent_first_tokenisations_of_a_value_both_write_and_the_last_write_wins(
    vault: Vault, env: AwsEnvironment, resources: VaultResources
) -> None:
    first = vault.tokenize_many([(IBAN, "iban")], tenant="bank-a", subject="cust-a")
    racer = throttled_vault(env, resources, StaleReads(env.client("dynamodb")), [])
    second = racer.tokenize_many([(IBAN, "iban")], tenant="bank-a", subject="cust-b")  # read before cust-a's write
    assert first == second
    (record,) = stored(env, resources)
    assert record["subject"]["S"] == "cust-b"  # BatchWriteItem is unconditional: the record now belongs to cust-b
    assert vault.detokenize(first[0], tenant="bank-a", caller=GATEWAY) == IBAN  # same value either way
    vault.erase_subject(tenant="bank-a", subject="cust-b", caller=Caller("dpo", "gdpr-art-17"))
    with pytest.raises(SubjectErasedError):  # erasing the last writer makes the shared token unreadable
        vault.detokenize(first[0], tenant="bank-a", caller=GATEWAY)


# -- several subjects in one batch (the pipeline's queue batch) ----------------------------------------
def test_a_batch_of_ten_payments_of_known_customers_costs_one_read_and_one_write(
    vault: Vault, meter: ApiCallMeter, env: AwsEnvironment, resources: VaultResources
) -> None:
    subjects = [f"cust:{i}" for i in range(10)]
    vault.warm(tenant="bank-a", data_classes=["iban", "account_number", "name"])  # the init phase
    vault.tokenize_batch([(f"Customer {n}", "name", s) for n, s in enumerate(subjects)], tenant="bank-a")
    before = meter.snapshot()
    requests = [(value, cls, subjects[i]) for i in range(10) for value, cls in payment(100 + i)]
    tokens = vault.tokenize_batch(requests, tenant="bank-a")
    calls = (meter.snapshot() - before).by_operation()
    assert calls == {"dynamodb:BatchGetItem": 1, "dynamodb:BatchWriteItem": 2}  # 40 new records, 25 per write
    assert len(tokens) == 40 and all(t.startswith("dtk_") for t in tokens)
    assert vault.detokenize(tokens[0], tenant="bank-a", caller=GATEWAY)  # readable by a granted caller
    again = meter.snapshot()
    assert vault.tokenize_batch(requests, tenant="bank-a") == tokens  # all known now: one read, no write
    assert (meter.snapshot() - again).by_operation() == {"dynamodb:BatchGetItem": 1}
    assert vault.deterministic_token(requests[0][0], requests[0][1], tenant="bank-a") == tokens[0]


def test_a_batch_refuses_a_bad_triple_and_an_erased_subject_before_writing(vault: Vault, meter: ApiCallMeter) -> None:
    with pytest.raises(InvalidValueError, match=r"requests\[1\]"):
        vault.tokenize_batch([("Ann", "name", "cust:1"), ("Ann", "name")], tenant="bank-a")  # type: ignore[list-item]
    with pytest.raises(InvalidReferenceError):
        vault.tokenize_batch([("Ann", "name", "bad subject!")], tenant="bank-a")
    vault.tokenize_batch([("Ann", "name", "cust:gone")], tenant="bank-a")
    vault.erase_subject(tenant="bank-a", subject="cust:gone", caller=Caller("dpo", "erasure"))
    before = meter.count("dynamodb", "BatchWriteItem")
    with pytest.raises(SubjectErasedError):
        vault.tokenize_batch([("Bo", "name", "cust:ok"), ("Cy", "name", "cust:gone")], tenant="bank-a")
    assert meter.count("dynamodb", "BatchWriteItem") == before


# -- the notebook's benches -----------------------------------------------------------------------------


def test_the_max_uses_sweep_counts_a_data_key_per_max_uses_tokenisations(env: AwsEnvironment,
                                                                         resources: VaultResources) -> None:
    from simulations.vault_bench import benchmark_vault, sweep_max_uses
    from fasterpay.vault import DataKeyCachePolicy

    rows = dict(sweep_max_uses(env, resources, max_uses=[1, 10, 1_000], operations=40, seed=3))
    # GenerateDataKey once per max_uses encryptions (a fresh cache per point), nothing else from KMS
    assert rows == {1: 10_000, 10: 1_000, 1_000: 250}
    tokenize, detokenize = benchmark_vault(env, resources, series="s", operations=40, seed=3,
                                           cache=DataKeyCachePolicy(max_age_seconds=300, max_uses=10))
    assert (tokenize.operations, detokenize.operations) == (40, 40) and tokenize.kms_per_10k == 1_000
    sampled_tokenize, sampled = benchmark_vault(env, resources, series="sampled", operations=40, seed=3,
                                                cache=DataKeyCachePolicy(max_age_seconds=300, max_uses=10),
                                                detokenize_operations=7)
    assert (sampled_tokenize.operations, sampled.operations) == (40, 7)  # every detokenised value checked
    with pytest.raises(ValueError, match="detokenize_operations must be 1 to 40"):
        benchmark_vault(env, resources, series="bad", operations=40, seed=3,
                        cache=DataKeyCachePolicy(max_age_seconds=300, max_uses=10), detokenize_operations=41)
