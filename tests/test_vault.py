"""The tokenisation vault against moto: round trips, caching, context binding, audit, erasure, IAM."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fasterpay.aws import AwsEnvironment
from fasterpay.metering import ApiCallMeter
from fasterpay.vault import (
    NO_CACHING,
    AuditResult,
    AuditWriteError,
    Caller,
    DataClass,
    DataKeyCachePolicy,
    DetokenizeDeniedError,
    DynamoDbAuditLog,
    EncryptionContextError,
    InMemoryAuditLog,
    InvalidReferenceError,
    InvalidValueError,
    SubjectErasedError,
    TamperedCiphertextError,
    UnknownDataClassError,
    UnknownTokenError,
    Vault,
    VaultAccessDeniedError,
    VaultError,
    VaultPolicy,
)
from fasterpay.vault.stack import VaultResources, deploy_vault, vault_as_role

IBAN = "GB82WEST12345698765432"
GATEWAY = Caller("scheme-gateway", "scheme-submission")
POLICY = VaultPolicy.of(
    grants=[("scheme-gateway", ["iban", "name", "account_number", "pan"], ["scheme-submission"])],
    erasers=["dpo"],
)


@pytest.fixture
def resources(env: AwsEnvironment) -> VaultResources:
    return deploy_vault(env.client("cloudformation"), env.client("kms"), on_moto=True)


@pytest.fixture
def meter() -> ApiCallMeter:
    return ApiCallMeter()


@pytest.fixture
def audit() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
def vault(env: AwsEnvironment, resources: VaultResources, meter: ApiCallMeter, audit: InMemoryAuditLog) -> Vault:
    return vault_as_role(env, resources, None, policy=POLICY, audit=audit, instrument=meter.attach)


def vault_items(env: AwsEnvironment, resources: VaultResources, prefix: str = "TOKEN#") -> list[dict]:
    items = env.client("dynamodb").scan(TableName=resources.vault_table)["Items"]
    return [i for i in items if i["pk"]["S"].startswith(prefix)]


# -- round trips --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "data_class", "expected"),
    [
        ("4111 1111 1111 1111", "pan", "4111111111111111"),
        ("gb82 west 1234 5698 7654 32", "iban", IBAN),
        ("31926819", "account_number", "31926819"),
        ("Zoë O’Brien", "name", "Zoë O’Brien"),
    ],
)
def test_round_trip_per_data_class(vault: Vault, value: str, data_class: str, expected: str) -> None:
    token = vault.tokenize(value, data_class, tenant="bank-a", subject="cust-1")
    assert token.startswith(f"tok_{data_class}_")
    assert vault.detokenize(token, tenant="bank-a", caller=GATEWAY) == expected


def test_tokens_reveal_nothing_and_are_fresh_each_time(vault: Vault) -> None:
    tokens = {vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1") for _ in range(5)}
    assert len(tokens) == 5
    for token in tokens:
        assert "WEST" not in token.upper() and "12345698" not in token


def test_ciphertext_is_stored_with_its_encrypted_data_key_and_no_clear_value(
    vault: Vault, env: AwsEnvironment, resources: VaultResources
) -> None:
    vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    (item,) = vault_items(env, resources)
    assert set(item) >= {"ciphertext", "nonce", "encrypted_data_key", "kms_key_id", "alg"}
    assert IBAN.encode() not in item["ciphertext"]["B"]
    assert all(IBAN not in str(v) for v in item.values())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=140))
def test_any_valid_name_round_trips(vault: Vault, name: str) -> None:
    import unicodedata

    token = vault.tokenize(name, DataClass.NAME, tenant="bank-a", subject="cust-p")
    assert vault.detokenize(token, tenant="bank-a", caller=GATEWAY) == unicodedata.normalize("NFC", name).strip()


# -- deterministic tokens -----------------------------------------------------------------------------
def test_deterministic_tokens_match_equal_values_within_a_tenant_only(vault: Vault, meter: ApiCallMeter) -> None:
    a = vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1", deterministic=True)
    b = vault.tokenize("gb82 west 1234 5698 7654 32", "iban", tenant="bank-a", subject="cust-1", deterministic=True)
    c = vault.tokenize(IBAN, "iban", tenant="bank-b", subject="cust-1", deterministic=True)
    assert a == b != c and a.startswith("dtk_iban_")
    assert meter.count("kms", "GenerateMac") == 2  # one token key per tenant and data class, not one per value
    assert vault.detokenize(a, tenant="bank-a", caller=GATEWAY) == IBAN


def test_a_thousand_deterministic_tokenisations_call_generate_mac_once_per_tenant_and_class(
    vault: Vault, meter: ApiCallMeter
) -> None:
    tokens = [vault.tokenize(f"Customer {i}", "name", tenant="bank-a", subject=f"s{i}", deterministic=True)
              for i in range(100)]
    for batch in range(9):  # and 900 more in batches: 50 names and 50 account numbers per subject
        values = [(f"Customer {batch}-{i}", "name") for i in range(50)] + [(f"{batch}{i:07d}", "account_number")
                                                                            for i in range(50)]
        tokens += vault.tokenize_many(values, tenant="bank-a", subject=f"b{batch}")
    assert len(set(tokens)) == 1_000
    assert meter.count("kms", "GenerateMac") == 2  # was 1,000: one per value; now one per tenant and data class
    assert meter.count("kms") == 4  # plus one data key per data class


def test_deterministic_tokens_are_pinned_to_the_versioned_derivation(
    vault: Vault, env: AwsEnvironment, resources: VaultResources
) -> None:
    import base64
    import hashlib
    import hmac

    key = env.client("kms").generate_mac(KeyId=resources.token_mac_key_arn, MacAlgorithm="HMAC_SHA_256",
                                         Message=b"fasterpay-dtk-v1|bank-a|iban")["Mac"]
    mac = hmac.new(key, b'["bank-a","iban","GB82WEST12345698765432"]', hashlib.sha256).digest()
    expected = "dtk_iban_" + base64.b32encode(mac[:20]).decode().rstrip("=").lower()
    assert vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1", deterministic=True) == expected


def test_deterministic_tokens_survive_cache_refreshes_and_restarts(
    env: AwsEnvironment, resources: VaultResources, meter: ApiCallMeter
) -> None:
    refreshing = vault_as_role(env, resources, None, policy=POLICY, audit=InMemoryAuditLog(), instrument=meter.attach,
                               cache=DataKeyCachePolicy(max_uses=2))  # a new token key every second value
    restarted = vault_as_role(env, resources, None, policy=POLICY, audit=InMemoryAuditLog())  # another process
    values = [(IBAN, "iban"), ("31926819", "account_number"), ("Ann Smith", "name")] * 3
    first = [refreshing.tokenize(v, c, tenant="bank-a", subject="cust-1", deterministic=True) for v, c in values]
    assert meter.count("kms", "GenerateMac") >= 4  # the cache did refresh...
    assert first == first[:3] * 3  # ...and equal values kept their tokens
    assert restarted.tokenize_many(values, tenant="bank-a", subject="cust-2") == first


@pytest.mark.parametrize(
    ("other_value", "other_class", "other_tenant"),
    [("31926819", "account_number", "bank-b"), ("31926819", "name", "bank-a"), ("31926818", "account_number", "bank-a")],
    ids=["other-tenant", "other-data-class", "other-value"],
)
def test_deterministic_tokens_differ_by_tenant_class_and_value(
    vault: Vault, other_value: str, other_class: str, other_tenant: str
) -> None:
    mine = vault.tokenize("31926819", "account_number", tenant="bank-a", subject="s", deterministic=True)
    other = vault.tokenize(other_value, other_class, tenant=other_tenant, subject="s", deterministic=True)
    assert mine.rsplit("_", 1)[1] != other.rsplit("_", 1)[1]  # the MAC part differs, not just the prefix


def test_deterministic_retokenisation_writes_nothing_new(
    vault: Vault, env: AwsEnvironment, resources: VaultResources
) -> None:
    for _ in range(3):
        vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1", deterministic=True)
    assert len(vault_items(env, resources)) == 1


def test_deterministic_tokens_need_a_mac_key(env: AwsEnvironment, resources: VaultResources) -> None:
    vault = Vault(
        kms=env.client("kms"), dynamodb=env.client("dynamodb"), table_name=resources.vault_table,
        key_id=resources.vault_key_arn, audit=InMemoryAuditLog(), policy=POLICY,
    )
    with pytest.raises(VaultError, match="mac_key_id"):
        vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1", deterministic=True)


# -- caching ------------------------------------------------------------------------------------------
def test_cached_data_keys_call_kms_once_per_context(vault: Vault, meter: ApiCallMeter) -> None:
    tokens = [vault.tokenize(f"Customer {i}", "name", tenant="bank-a", subject=f"s{i}") for i in range(50)]
    for token in tokens:
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
    assert meter.count("kms", "GenerateDataKey") == 1
    assert meter.count("kms", "Decrypt") == 1


def test_without_caching_every_operation_calls_kms(
    env: AwsEnvironment, resources: VaultResources, meter: ApiCallMeter
) -> None:
    vault = vault_as_role(env, resources, None, policy=POLICY, audit=InMemoryAuditLog(), cache=NO_CACHING,
                          instrument=meter.attach)
    tokens = [vault.tokenize(f"Customer {i}", "name", tenant="bank-a", subject="s") for i in range(20)]
    for token in tokens:
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
    assert meter.count("kms", "GenerateDataKey") == 20
    assert meter.count("kms", "Decrypt") == 20


def test_each_data_class_and_tenant_gets_its_own_data_key(vault: Vault, meter: ApiCallMeter) -> None:
    for tenant in ("bank-a", "bank-b"):
        vault.tokenize(IBAN, "iban", tenant=tenant, subject="s")
        vault.tokenize("Ann", "name", tenant=tenant, subject="s")
    assert meter.count("kms", "GenerateDataKey") == 4


# -- context binding and tampering --------------------------------------------------------------------
def test_wrong_tenant_context_is_refused_by_kms_and_audited(vault: Vault, audit: InMemoryAuditLog) -> None:
    token = vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    with pytest.raises(EncryptionContextError):
        vault.detokenize(token, tenant="bank-b", caller=GATEWAY)
    assert audit.records[-1].result is AuditResult.CONTEXT_MISMATCH


def test_flipped_ciphertext_byte_is_detected(vault: Vault, env: AwsEnvironment, resources: VaultResources) -> None:
    token = vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    ddb = env.client("dynamodb")
    (item,) = vault_items(env, resources)
    blob = bytearray(item["ciphertext"]["B"])
    blob[0] ^= 0x01
    item["ciphertext"] = {"B": bytes(blob)}
    ddb.put_item(TableName=resources.vault_table, Item=item)
    with pytest.raises(TamperedCiphertextError):
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)


def test_ciphertext_moved_to_another_token_is_detected(
    vault: Vault, env: AwsEnvironment, resources: VaultResources
) -> None:
    victim = vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    mine = vault.tokenize("DE89370400440532013000", "iban", tenant="bank-a", subject="cust-1")
    ddb = env.client("dynamodb")
    stolen = ddb.get_item(TableName=resources.vault_table, Key={"pk": {"S": f"TOKEN#{victim}"}})["Item"]
    stolen["pk"] = {"S": f"TOKEN#{mine}"}
    ddb.put_item(TableName=resources.vault_table, Item=stolen)
    with pytest.raises(TamperedCiphertextError):
        vault.detokenize(mine, tenant="bank-a", caller=GATEWAY)


# -- authorisation and audit --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "caller",
    [Caller("scheme-gateway", "marketing"), Caller("analytics", "scheme-submission")],
    ids=["wrong-purpose", "unknown-principal"],
)
def test_detokenize_without_a_grant_is_denied_and_audited(
    vault: Vault, audit: InMemoryAuditLog, meter: ApiCallMeter, caller: Caller
) -> None:
    token = vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    before = meter.snapshot()
    with pytest.raises(DetokenizeDeniedError):
        vault.detokenize(token, tenant="bank-a", caller=caller)
    (record,) = audit.records
    assert (record.result, record.claimed_principal, record.reference) == (AuditResult.DENIED_POLICY, caller.principal,
                                                                           token)
    assert record.principal == "arn:aws:sts::123456789012:user/moto"  # who the vault's clients are, not the claim
    assert (meter.snapshot() - before).count("kms") == 0  # denied before any key is touched


def test_grant_is_per_data_class(vault: Vault) -> None:
    policy = VaultPolicy.of(grants=[("fraud", ["name"], ["investigation"])])
    assert policy.may_detokenize(Caller("fraud", "investigation"), DataClass.NAME)
    assert not policy.may_detokenize(Caller("fraud", "investigation"), DataClass.PAN)


def test_allowed_detokenize_is_audited_without_the_value(vault: Vault, audit: InMemoryAuditLog) -> None:
    token = vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
    (record,) = audit.records
    assert record.result is AuditResult.ALLOWED and record.action == "detokenize"
    assert IBAN not in repr(record)


def test_detokenize_fails_closed_when_the_audit_log_is_down(env: AwsEnvironment, resources: VaultResources) -> None:
    class BrokenAudit:
        def append(self, record: object) -> None:
            raise AuditWriteError("audit table unavailable")

    vault = vault_as_role(env, resources, None, policy=POLICY, audit=BrokenAudit())
    token = vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    with pytest.raises(AuditWriteError):
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)


def test_dynamodb_audit_log_is_append_only(env: AwsEnvironment, resources: VaultResources) -> None:
    log = DynamoDbAuditLog(env.client("dynamodb"), resources.audit_table)
    vault = vault_as_role(env, resources, None, policy=POLICY, audit=log)
    token = vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    vault.detokenize(token, tenant="bank-a", caller=GATEWAY)
    day = datetime.now(UTC).date().isoformat()
    (stored,) = log.records_for_day(day)
    assert stored["result"] == "allowed" and stored["reference"] == token
    from fasterpay.vault import AuditRecord

    replay = AuditRecord(stored["event_id"], datetime.fromisoformat(stored["at"]), "detokenize", "x", "y",
                         "bank-a", token, AuditResult.DENIED_POLICY)
    with pytest.raises(AuditWriteError):
        log.append(replay)  # an existing record cannot be overwritten
    assert log.records_for_day(day)[0]["result"] == "allowed"


@pytest.mark.parametrize("token", ["", "tok_iban_short", "tok_ssn_" + "a" * 32, "TOK_IBAN_" + "A" * 32, None])
def test_malformed_tokens_are_unknown(vault: Vault, token: object) -> None:
    with pytest.raises(UnknownTokenError):
        vault.detokenize(token, tenant="bank-a", caller=GATEWAY)  # type: ignore[arg-type]


def test_unknown_token_is_audited(vault: Vault, audit: InMemoryAuditLog) -> None:
    with pytest.raises(UnknownTokenError):
        vault.detokenize("tok_iban_" + "a" * 32, tenant="bank-a", caller=GATEWAY)
    assert audit.records[-1].result is AuditResult.UNKNOWN_TOKEN


# -- bad input leaves nothing written -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "data_class", "tenant", "subject", "error"),
    [
        ("", "name", "bank-a", "s", InvalidValueError),
        ("x" * 141, "name", "bank-a", "s", InvalidValueError),
        ("4111111111111112", "pan", "bank-a", "s", InvalidValueError),
        ("GB00WEST12345698765432", "iban", "bank-a", "s", InvalidValueError),
        ("123", "ssn", "bank-a", "s", UnknownDataClassError),
        (IBAN, "iban", "", "s", InvalidReferenceError),
        (IBAN, "iban", "bank#a", "s", InvalidReferenceError),
        (IBAN, "iban", "bank-a", "s" * 65, InvalidReferenceError),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    vault: Vault, env: AwsEnvironment, resources: VaultResources, meter: ApiCallMeter,
    value: str, data_class: str, tenant: str, subject: str, error: type[Exception],
) -> None:
    with pytest.raises(error):
        vault.tokenize(value, data_class, tenant=tenant, subject=subject)
    assert env.client("dynamodb").scan(TableName=resources.vault_table)["Count"] == 0
    assert meter.count() == 0


# -- crypto-shredding ---------------------------------------------------------------------------------
def test_erasure_makes_a_subjects_values_unrecoverable(
    vault: Vault, env: AwsEnvironment, resources: VaultResources, audit: InMemoryAuditLog
) -> None:
    gone = vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    kept = vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-2")
    receipt = vault.erase_subject(tenant="bank-a", subject="cust-1", caller=Caller("dpo", "gdpr-art-17"))
    assert audit.records[-1].result is AuditResult.ERASED and audit.records[-1].event_id == receipt.audit_event_id
    with pytest.raises(SubjectErasedError):
        vault.detokenize(gone, tenant="bank-a", caller=GATEWAY)
    assert vault.detokenize(kept, tenant="bank-a", caller=GATEWAY) == IBAN
    with pytest.raises(SubjectErasedError):
        vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    subject = env.client("dynamodb").get_item(
        TableName=resources.vault_table, Key={"pk": {"S": "SUBJECT#bank-a#cust-1"}}
    )["Item"]
    assert "secret" not in subject and subject["status"]["S"] == "erased"


def test_erased_value_cannot_be_decrypted_even_with_kms_decrypt(
    vault: Vault, env: AwsEnvironment, resources: VaultResources
) -> None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    token = vault.tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    vault.erase_subject(tenant="bank-a", subject="cust-1", caller=Caller("dpo", "gdpr-art-17"))
    item = env.client("dynamodb").get_item(TableName=resources.vault_table, Key={"pk": {"S": f"TOKEN#{token}"}})["Item"]
    data_key = env.client("kms").decrypt(
        CiphertextBlob=item["encrypted_data_key"]["B"],
        EncryptionContext={"purpose": "fasterpay-vault", "tenant": "bank-a", "data_class": "iban"},
    )["Plaintext"]  # an administrator with kms:Decrypt still gets the data key...
    text = {name: item[name]["S"] for name in ("tenant", "data_class", "subject", "alg", "kms_key_id", "created_at")}
    for guess in (b"", b"\x00" * 32):  # ...but without the destroyed subject secret no key opens the value
        key = Vault._value_key(data_key, guess, "bank-a", "cust-1")
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(item["nonce"]["B"], item["ciphertext"]["B"], Vault._aad(token, text))


def test_only_erasers_may_erase_and_erasure_is_idempotent(vault: Vault, audit: InMemoryAuditLog) -> None:
    with pytest.raises(DetokenizeDeniedError):
        vault.erase_subject(tenant="bank-a", subject="cust-1", caller=GATEWAY)
    assert audit.records[-1].result is AuditResult.DENIED_POLICY
    dpo = Caller("dpo", "gdpr-art-17")
    vault.erase_subject(tenant="bank-a", subject="cust-1", caller=dpo)
    vault.erase_subject(tenant="bank-a", subject="cust-1", caller=dpo)


def test_concurrent_first_tokenisations_of_one_subject_share_one_secret(vault: Vault) -> None:
    tokens: list[str] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        token = vault.tokenize(f"Name {i}", "name", tenant="bank-a", subject="new-subject")
        with lock:
            tokens.append(token)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(vault.detokenize(t, tenant="bank-a", caller=GATEWAY) for t in tokens) == sorted(
        f"Name {i}" for i in range(8)
    )


# -- least privilege, enforced by moto's IAM --------------------------------------------------------
@pytest.fixture
def roles(env: AwsEnvironment, resources: VaultResources, meter: ApiCallMeter) -> Iterator[dict[str, Vault]]:
    vaults = {
        name: vault_as_role(env, resources, arn, policy=POLICY, instrument=meter.attach)
        for name, arn in {
            "tokenizer": resources.tokenizer_role_arn,
            "detokenizer": resources.detokenizer_role_arn,
            "eraser": resources.eraser_role_arn,
            "router": resources.router_role_arn,
        }.items()
    }
    with env.iam_enforced():
        yield vaults


def test_tokenizer_role_can_encrypt_but_not_decrypt(roles: dict[str, Vault], meter: ApiCallMeter) -> None:
    token = roles["tokenizer"].tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    with pytest.raises(VaultAccessDeniedError):
        roles["tokenizer"].detokenize(token, tenant="bank-a", caller=GATEWAY)
    assert meter.snapshot().count_errors("AccessDeniedException", service="kms") == 1


def test_detokenizer_role_can_decrypt_but_not_encrypt(
    roles: dict[str, Vault], env: AwsEnvironment, resources: VaultResources
) -> None:
    token = roles["tokenizer"].tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    assert roles["detokenizer"].detokenize(token, tenant="bank-a", caller=GATEWAY) == IBAN
    with pytest.raises(VaultAccessDeniedError):
        roles["detokenizer"].tokenize("DE89370400440532013000", "iban", tenant="bank-a", subject="cust-1")


def test_router_role_can_do_neither_and_its_attempts_are_counted(
    roles: dict[str, Vault], meter: ApiCallMeter
) -> None:
    token = roles["tokenizer"].tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    with pytest.raises(VaultAccessDeniedError):
        roles["router"].tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    with pytest.raises(VaultAccessDeniedError):
        roles["router"].detokenize(token, tenant="bank-a", caller=GATEWAY)
    assert meter.snapshot().count_errors("AccessDeniedException") >= 2


def test_eraser_role_can_shred_but_not_read(roles: dict[str, Vault]) -> None:
    token = roles["tokenizer"].tokenize(IBAN, "iban", tenant="bank-a", subject="cust-1")
    roles["eraser"].erase_subject(tenant="bank-a", subject="cust-1", caller=Caller("dpo", "gdpr-art-17"))
    with pytest.raises(VaultAccessDeniedError):
        roles["eraser"].detokenize(token, tenant="bank-a", caller=GATEWAY)


def test_cache_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        DataKeyCachePolicy(max_uses=0)
