"""The data-key cache: bounded age, bounded uses, context-keyed (an in-memory fake KMS, no moto)."""

from __future__ import annotations

import os

import pytest

from fasterpay.vault import NO_CACHING, DataKeyCache, DataKeyCachePolicy


class FakeKms:
    """Just enough of KMS for the cache: counts calls, checks the context on decrypt."""

    def __init__(self) -> None:
        self.generated = 0
        self.decrypted = 0
        self._keys: dict[bytes, tuple[bytes, dict[str, str]]] = {}

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
