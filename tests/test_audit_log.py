"""The audit trail: entries by reference only, segments and checkpoints, proofs, and the vault's
detokenize records going into the Merkle log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasterpay.audit import (
    AuditEntry,
    AuditStoreError,
    AuditTrail,
    InMemoryAuditStore,
    InvalidEntryError,
    LocalCheckpointSigner,
    PersonalDataError,
    TrailClosedError,
    decode_entry,
    encode_entry,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from fasterpay.audit.entries import GENESIS_PREV
from fasterpay.audit.vault_adapter import MerkleAuditLog, record_digest
from fasterpay.aws import AwsEnvironment
from fasterpay.vault import (
    AuditRecord,
    AuditResult,
    AuditWriteError,
    Caller,
    DetokenizeDeniedError,
    InMemoryAuditLog,
    VaultPolicy,
)

T0 = datetime(2026, 11, 28, 9, tzinfo=UTC)
SIGNER = LocalCheckpointSigner.generate()


def entry(i: int = 0, **changes: object) -> AuditEntry:
    fields = {"kind": "payment.status", "actor": "svc-clearing", "subject": f"E2E-{i}", "outcome": "ACSP",
              "at": T0 + timedelta(seconds=i), "refs": {"uetr": "8a562c67-ca16-48ba-b074-65581be6f011"}}
    fields.update(changes)
    return AuditEntry(**fields)


def trail_of(store: InMemoryAuditStore | None = None, **kwargs: object) -> AuditTrail:
    return AuditTrail(store=store or InMemoryAuditStore(), signer=SIGNER, origin="bank-a/audit", **kwargs)


# -- entries: references only ---------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("subject", "Ann Smith"),  # free text
    ("subject", "GB82WEST12345698765432"),  # an IBAN
    ("subject", "gb82west12345698765432"),
    ("actor", "4111111111111111"),  # a card number
    ("outcome", "4111-1111-1111-1111"),
    ("subject", "ann@example.com"),
    ("subject", ""),
    ("subject", "x" * 201),
])
def test_personal_data_never_enters_the_log(field: str, value: str) -> None:
    with pytest.raises(PersonalDataError):
        entry(**{field: value})
    with pytest.raises(PersonalDataError):
        entry(refs={"note": value})


@pytest.mark.parametrize("changes", [{"kind": "Payment Status"}, {"kind": "status"}, {"at": datetime(2026, 1, 1)},
                                     {"refs": {"Bad Key": "x"}}, {"refs": {f"k{i}": "v" for i in range(13)}},
                                     {"actor": 42}])
def test_malformed_entries_are_refused(changes: dict) -> None:
    with pytest.raises(InvalidEntryError):
        entry(**changes)


def test_tokens_hashes_and_references_are_accepted() -> None:
    e = entry(subject="tok_iban_3f9a1c2b",
              refs={"record": "sha256:" + "ab" * 32, "uetr": "8a562c67-ca16-48ba-b074-65581be6f011"})
    line = encode_entry(e, 0, GENESIS_PREV)
    assert decode_entry(line)["subject"] == "tok_iban_3f9a1c2b"


@settings(max_examples=60, deadline=None)
@given(subject=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/#=+-]{0,60}", fullmatch=True),
       seq=st.integers(min_value=0, max_value=10**9))
def test_encoding_is_canonical_and_round_trips(subject: str, seq: int) -> None:
    try:
        e = entry(subject=subject)
    except PersonalDataError:
        return  # a whole-value IBAN or card number: refused, as it should be
    line = encode_entry(e, seq, "ab" * 32)
    data = decode_entry(line)
    assert data["subject"] == subject and data["seq"] == seq
    assert json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")).encode() == line


# -- the trail --------------------------------------------------------------------------------------
def test_every_flush_is_signed_so_a_closed_log_has_no_unsigned_tail() -> None:
    store = InMemoryAuditStore()
    trail = trail_of(store, batch_size=10)
    for i in range(57):
        trail.append(entry(i))
        assert trail.latest_checkpoint is None or trail.latest_checkpoint.tree_size == trail.stored
    assert trail.size == 57 and trail.stored == 50
    assert [c.tree_size for c in trail.checkpoints] == [10, 20, 30, 40, 50]
    trail.close()
    assert [c.tree_size for c in trail.checkpoints] == [10, 20, 30, 40, 50, 57]
    keys = sorted(store.objects())
    assert keys[:6] == [f"checkpoints/{n:012d}.note" for n in (10, 20, 30, 40, 50, 57)]
    assert keys[-1] == "segments/000000000050-000000000057.jsonl" and len(keys) == 6 + 6
    with pytest.raises(TrailClosedError):
        trail.append(entry(58))


def test_a_checkpoint_that_could_not_be_stored_is_signed_by_the_next_flush() -> None:
    class CheckpointsDown(InMemoryAuditStore):
        down = True

        def put_checkpoint(self, signed) -> None:
            if self.down:
                raise AuditStoreError("S3 unavailable")
            super().put_checkpoint(signed)

    store = CheckpointsDown()
    trail = trail_of(store, batch_size=2)
    trail.append(entry(0))
    with pytest.raises(AuditStoreError):
        trail.append(entry(1))  # the segment is stored, its checkpoint is not
    assert trail.stored == 2 and trail.checkpoints == ()
    store.down = False
    assert trail.flush() == 0  # nothing left to write, but the stored entries get their signature
    assert trail.latest_checkpoint.tree_size == 2 and "checkpoints/000000000002.note" in store.objects()


def test_entries_link_to_their_predecessor() -> None:
    store = InMemoryAuditStore()
    trail = trail_of(store, batch_size=None)
    logged = [trail.append(entry(i)) for i in range(3)]
    trail.close()
    lines = store.objects()["segments/000000000000-000000000003.jsonl"].split(b"\n")[:-1]
    assert [json.loads(line)["prev"] for line in lines] == [GENESIS_PREV, logged[0].leaf_hash.hex(),
                                                            logged[1].leaf_hash.hex()]
    assert [leaf_hash(line) for line in lines] == [e.leaf_hash for e in logged]


def test_inclusion_and_consistency_proofs_verify_against_signed_checkpoints() -> None:
    store = InMemoryAuditStore()
    trail = trail_of(store, batch_size=5)
    logged = [trail.append(entry(i)) for i in range(50)]
    first = trail.checkpoints[0]
    last = trail.close()
    proof = trail.prove_inclusion(17)
    verify_inclusion(logged[17].leaf_hash, 17, last.tree_size, proof, last.root_hash)
    verify_consistency(first.tree_size, last.tree_size, first.root_hash, last.root_hash,
                       trail.prove_consistency(first.tree_size))


def test_a_failed_write_keeps_entries_buffered_and_never_checkpoints_them() -> None:
    class Flaky(InMemoryAuditStore):
        down = True

        def put_segment(self, first: int, end: int, body: bytes) -> None:
            if self.down:
                raise AuditStoreError("S3 unavailable")
            super().put_segment(first, end, body)

    store = Flaky()
    trail = trail_of(store, batch_size=2)
    trail.append(entry(0))
    with pytest.raises(AuditStoreError):
        trail.append(entry(1))
    assert trail.stored == 0 and trail.checkpoints == ()
    store.down = False
    assert trail.flush() == 2 and trail.latest_checkpoint.tree_size == 2


def test_the_log_never_overwrites_a_segment() -> None:
    from fasterpay.audit import ObjectExistsError

    store = InMemoryAuditStore()
    store.put_segment(0, 1, b"x\n")
    with pytest.raises(ObjectExistsError, match="never overwrites"):
        store.put_segment(0, 1, b"y\n")


def test_invalid_entries_change_nothing() -> None:
    trail = trail_of(batch_size=1)
    with pytest.raises(PersonalDataError):
        trail.append(entry(subject="Ann Smith"))
    assert trail.size == 0 and trail.stored == 0


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"batch_size": True}, {"origin": "two words"}])
def test_trail_settings_are_validated(kwargs: dict) -> None:
    settings_ = {"store": InMemoryAuditStore(), "signer": SIGNER, "origin": "bank-a/audit", **kwargs}
    with pytest.raises(ValueError):
        AuditTrail(**settings_)


# -- the vault's detokenize records --------------------------------------------------------------------
def record(result: AuditResult = AuditResult.ALLOWED, reason: str = "") -> AuditRecord:
    return AuditRecord("5b0e3f1c-1d2e-4f5a-8b9c-0d1e2f3a4b5c", T0, "detokenize", "scheme-gateway",
                       "scheme-submission", "bank-a", "tok_iban_" + "a1" * 16, result, reason)


def test_vault_records_go_in_by_reference_with_a_digest_of_the_full_record() -> None:
    store = InMemoryAuditStore()
    table = InMemoryAuditLog()
    log = MerkleAuditLog(trail_of(store, batch_size=None), also=table)
    log.append(record(AuditResult.DENIED_POLICY, "no grant for iban / marketing"))
    line = next(v for k, v in store.objects().items() if k.startswith("segments/"))
    data = json.loads(line)
    assert data["kind"] == "vault.detokenize" and data["subject"] == "tok_iban_" + "a1" * 16
    assert data["outcome"] == "denied-policy" and data["refs"]["record"] == record_digest(table.records[0])
    assert b"marketing" not in line  # free text is only in the digest
    assert log.trail.stored == 1  # durable before the vault answers


def test_the_adapter_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    trail = trail_of(batch_size=None)
    monkeypatch.setattr(trail.store, "put_segment", lambda *a: (_ for _ in ()).throw(AuditStoreError("down")))
    with pytest.raises(AuditWriteError, match="Merkle log"):
        MerkleAuditLog(trail).append(record())


def test_the_vault_audits_detokenize_into_the_merkle_log(env: AwsEnvironment) -> None:
    from fasterpay.vault.stack import deploy_vault, vault_as_role

    resources = deploy_vault(env.client("cloudformation"), env.client("kms"), name_prefix="auditlog", on_moto=True)
    store = InMemoryAuditStore()
    trail = trail_of(store, batch_size=None)
    policy = VaultPolicy.of(grants=[("scheme-gateway", ["iban"], ["scheme-submission"])])
    vault = vault_as_role(env, resources, None, policy=policy, audit=MerkleAuditLog(trail))
    token = vault.tokenize("GB82 WEST 1234 5698 7654 32", "iban", tenant="bank-a", subject="customer-42")
    assert vault.detokenize(token, tenant="bank-a", caller=Caller("scheme-gateway", "scheme-submission"))
    with pytest.raises(DetokenizeDeniedError):
        vault.detokenize(token, tenant="bank-a", caller=Caller("support-desk", "curiosity"))
    trail.close()
    body = b"".join(v for k, v in sorted(store.objects().items()) if k.startswith("segments/"))
    outcomes = [json.loads(line)["outcome"] for line in body.split(b"\n")[:-1]]
    assert outcomes == ["allowed", "denied-policy"]
    assert b"GB82" not in body and b"WEST" not in body
