"""The key caches: data keys and derived token keys; bounded age, bounded uses, keyed by context (a fake KMS)."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from fasterpay.vault import NO_CACHING, TOKEN_KEY_LABEL, DataKeyCache, DataKeyCachePolicy, TokenKeyCache


class FakeKms:
    """Just enough of KMS for the cache: counts calls, checks the context on decrypt."""

    def __init__(self) -> None:
        self.generated = 0
        self.decrypted = 0
        self.macs: list[tuple[str, bytes]] = []
        self._keys: dict[bytes, tuple[bytes, dict[str, str]]] = {}
        self._mac_keys: dict[str, bytes] = {}

    def generate_data_key(self, *, KeyId: str, KeySpec: str, EncryptionContext: dict[str, str]) -> dict:  # noqa: N803
        self.generated += 1
        plain, blob = os.urandom(32), os.urandom(48)
        self._keys[blob] = (plain, dict(EncryptionContext))
        return {"Plaintext": plain, "CiphertextBlob": blob, "KeyId": KeyId}

    def decrypt(self, *, CiphertextBlob: bytes, KeyId: str, EncryptionContext: dict[str, str]) -> dict:  # noqa: N803
        self.decrypted += 1
        plain, ctx = self._keys[CiphertextBlob]
        if ctx != EncryptionContext:
            raise ValueError("InvalidCiphertextException")
        return {"Plaintext": plain, "KeyId": KeyId}

    def generate_mac(self, *, KeyId: str, MacAlgorithm: str, Message: bytes) -> dict:  # noqa: N803
        assert MacAlgorithm == "HMAC_SHA_256"
        self.macs.append((KeyId, Message))
        key = self._mac_keys.setdefault(KeyId, os.urandom(32))  # an HMAC key that never leaves "KMS"
        return {"Mac": hmac.new(key, Message, hashlib.sha256).digest(), "KeyId": KeyId, "MacAlgorithm": MacAlgorithm}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


CTX = {"tenant": "bank-a", "data_class": "iban"}


def test_reuses_a_key_until_max_uses_then_asks_kms_again() -> None:
    kms = FakeKms()
    cache = DataKeyCache(kms, "k", DataKeyCachePolicy(max_age_seconds=60, max_uses=3), clock=Clock())
    keys = [cache.for_encryption(CTX) for _ in range(7)]
    assert kms.generated == 3  # uses 1-3, 4-6, 7
    assert keys[0] == keys[2] != keys[3]


def test_expires_a_key_after_max_age() -> None:
    kms, clock = FakeKms(), Clock()
    cache = DataKeyCache(kms, "k", DataKeyCachePolicy(max_age_seconds=10, max_uses=1000), clock=clock)
    first = cache.for_encryption(CTX)
    clock.now = 9.9
    assert cache.for_encryption(CTX) == first
    clock.now = 10.0
    assert cache.for_encryption(CTX) != first
    assert kms.generated == 2


def test_keys_are_never_shared_across_encryption_contexts() -> None:
    kms = FakeKms()
    cache = DataKeyCache(kms, "k", DataKeyCachePolicy())
    a = cache.for_encryption(CTX)
    b = cache.for_encryption({**CTX, "tenant": "bank-b"})
    assert a != b and kms.generated == 2


def test_no_caching_calls_kms_every_time() -> None:
    kms = FakeKms()
    cache = DataKeyCache(kms, "k", NO_CACHING)
    key = cache.for_encryption(CTX)
    for _ in range(4):
        cache.for_encryption(CTX)
        cache.for_decryption(key.encrypted, CTX)
    assert (kms.generated, kms.decrypted) == (5, 4)


def test_decryption_cache_is_keyed_by_blob_and_context() -> None:
    kms = FakeKms()
    cache = DataKeyCache(kms, "k", DataKeyCachePolicy())
    key = cache.for_encryption(CTX)
    assert cache.for_decryption(key.encrypted, CTX) == key.plaintext
    assert cache.for_decryption(key.encrypted, CTX) == key.plaintext
    assert kms.decrypted == 1
    with pytest.raises(ValueError, match="InvalidCiphertext"):
        cache.for_decryption(key.encrypted, {**CTX, "tenant": "bank-b"})  # a cached key is no bypass


def test_lru_bound_on_entries() -> None:
    kms = FakeKms()
    cache = DataKeyCache(kms, "k", DataKeyCachePolicy(max_entries=2))
    for tenant in ("a", "b", "c", "a"):
        cache.for_encryption({"tenant": tenant})
    assert kms.generated == 4  # "a" was evicted by "c"


@pytest.mark.parametrize("kwargs", [{"max_uses": 0}, {"max_age_seconds": -1}, {"max_entries": 0}])
def test_policy_rejects_nonsense(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        DataKeyCachePolicy(**kwargs)


# -- derived token keys -------------------------------------------------------------------------------
MESSAGE = b'["bank-a","iban","GB82WEST12345698765432"]'


def test_token_key_is_derived_once_from_the_versioned_label() -> None:
    kms = FakeKms()
    cache = TokenKeyCache(kms, "mac", DataKeyCachePolicy(), clock=Clock())
    macs = {cache.mac("bank-a", "iban", MESSAGE) for _ in range(1_000)}
    assert len(macs) == 1 and len(next(iter(macs))) == 32
    assert kms.macs == [("mac", f"{TOKEN_KEY_LABEL}|bank-a|iban".encode())]
    assert TOKEN_KEY_LABEL == "fasterpay-dtk-v1"  # changing it changes every deterministic token


def test_token_keys_refresh_under_the_bound_and_give_the_same_macs() -> None:
    kms, clock = FakeKms(), Clock()
    cache = TokenKeyCache(kms, "mac", DataKeyCachePolicy(max_age_seconds=10, max_uses=3), clock=clock)
    first = [cache.mac("bank-a", "iban", MESSAGE) for _ in range(7)]  # uses 1-3, 4-6, 7
    assert len(kms.macs) == 3
    clock.now = 10.0
    cache.mac("bank-a", "iban", MESSAGE)  # expired by age: derived again
    assert len(kms.macs) == 4
    cache.clear()
    assert cache.mac("bank-a", "iban", MESSAGE) == first[0] and set(first) == {first[0]}
    restarted = TokenKeyCache(kms, "mac")  # another process: same KMS key, same label
    assert restarted.mac("bank-a", "iban", MESSAGE) == first[0]


@pytest.mark.parametrize(
    ("mac_key_id", "tenant", "data_class", "label"),
    [("mac", "bank-b", "iban", TOKEN_KEY_LABEL), ("mac", "bank-a", "name", TOKEN_KEY_LABEL),
     ("other-mac", "bank-a", "iban", TOKEN_KEY_LABEL), ("mac", "bank-a", "iban", "fasterpay-dtk-v2")],
    ids=["tenant", "data-class", "mac-key", "label-version"],
)
def test_token_keys_are_never_shared_across_tenant_class_key_or_version(
    mac_key_id: str, tenant: str, data_class: str, label: str
) -> None:
    kms = FakeKms()
    mine = TokenKeyCache(kms, "mac").mac("bank-a", "iban", MESSAGE)
    assert TokenKeyCache(kms, mac_key_id, label=label).mac(tenant, data_class, MESSAGE) != mine


def test_token_key_cache_holds_at_most_max_entries() -> None:
    kms = FakeKms()
    cache = TokenKeyCache(kms, "mac", DataKeyCachePolicy(max_entries=2))
    for tenant in ("a", "b", "c", "a"):
        cache.mac(tenant, "iban", MESSAGE)
    assert len(kms.macs) == 4  # "a" was evicted by "c"


def test_no_caching_derives_a_token_key_for_every_token() -> None:
    kms = FakeKms()
    cache = TokenKeyCache(kms, "mac", NO_CACHING)
    assert len({cache.mac("bank-a", "iban", MESSAGE) for _ in range(5)}) == 1
    assert len(kms.macs) == 5
