"""Keys from KMS with a bounded cache, so KMS is not called once per value.

A data key is reused for at most ``max_uses`` encryptions and ``max_age_seconds``; decrypted data keys
are cached the same way. Both are keyed by the KMS key and the full KMS encryption context, exactly as
the AWS Encryption SDK's caching materials manager does.

Deterministic tokens use a key derived once per tenant and data class from the KMS HMAC key
(:class:`TokenKeyCache`), under the same kind of bound. Unlike a data key, a derived token key is the
same every time it is derived: that is what keeps tokens stable across refreshes and restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DataKey", "DataKeyCache", "DataKeyCachePolicy", "NO_CACHING", "TOKEN_KEY_LABEL", "TokenKeyCache"]


@dataclass(frozen=True)
class DataKeyCachePolicy:
    """How long and how often one cached key (a data key, or a derived token key) may be used.

    ``max_uses=1`` means a KMS call for every encryption, every decryption and every deterministic token.
    """

    max_age_seconds: float = 300.0
    max_uses: int = 10_000
    max_entries: int = 256

    def __post_init__(self) -> None:
        if self.max_age_seconds < 0 or self.max_uses < 1 or self.max_entries < 1:
            raise ValueError("max_age_seconds must be >= 0, max_uses and max_entries >= 1")


#: One KMS call per encryption, per decryption and per deterministic token: the notebook's baseline.
NO_CACHING = DataKeyCachePolicy(max_age_seconds=0.0, max_uses=1, max_entries=1)


@dataclass(frozen=True)
class DataKey:
    """A 256-bit data key in clear (kept in memory only) and as KMS returned it, encrypted."""

    plaintext: bytes
    encrypted: bytes
    key_id: str


@dataclass
class _Entry:
    key: Any  # a DataKey, or a derived token key (bytes)
    created: float
    uses: int = 0


def _context_key(key_id: str, context: Mapping[str, str], extra: bytes = b"") -> tuple[Any, ...]:
    return (key_id, tuple(sorted(context.items())), extra)


class _BoundedCache:
    """Entries that expire after ``max_uses`` uses or ``max_age_seconds``, least recently used evicted first."""

    def __init__(self, policy: DataKeyCachePolicy, clock: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _take(self, table: OrderedDict[tuple[Any, ...], _Entry], k: tuple[Any, ...]) -> Any | None:
        entry = table.get(k)
        if entry is None:
            return None
        if entry.uses >= self.policy.max_uses or self._clock() - entry.created >= self.policy.max_age_seconds:
            del table[k]
            return None
        entry.uses += 1
        table.move_to_end(k)
        self.hits += 1
        return entry.key

    def _put(self, table: OrderedDict[tuple[Any, ...], _Entry], k: tuple[Any, ...], key: Any) -> None:
        self.misses += 1
        if self.policy.max_uses > 1 and self.policy.max_age_seconds > 0:
            table[k] = _Entry(key, self._clock(), uses=1)
            while len(table) > self.policy.max_entries:
                table.popitem(last=False)


class DataKeyCache(_BoundedCache):
    """Cache of data keys for one KMS key.

    Examples:
        >>> cache = DataKeyCache(kms_client, "alias/vault", DataKeyCachePolicy(max_uses=1000))  # doctest: +SKIP
        >>> key = cache.for_encryption({"tenant": "bank-a", "data_class": "iban"})  # doctest: +SKIP
    """

    def __init__(
        self,
        kms: Any,
        key_id: str,
        policy: DataKeyCachePolicy = DataKeyCachePolicy(),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(policy, clock)
        self._kms = kms
        self.key_id = key_id
        self._encrypt: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._decrypt: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()

    def for_encryption(self, context: Mapping[str, str]) -> DataKey:
        """Return a data key for ``context``: cached, or new from ``kms:GenerateDataKey``."""
        k = _context_key(self.key_id, context)
        with self._lock:
            cached = self._take(self._encrypt, k)
            if cached is not None:
                return cached
            reply = self._kms.generate_data_key(KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=dict(context))
            key = DataKey(reply["Plaintext"], reply["CiphertextBlob"], reply["KeyId"])
            self._put(self._encrypt, k, key)
            return key

    def for_decryption(self, encrypted: bytes, context: Mapping[str, str]) -> bytes:
        """Return the clear data key for ``encrypted``: cached, or from ``kms:Decrypt`` under ``context``.

        KMS refuses (``InvalidCiphertextException``) when ``context`` is not the one the key was made with.
        """
        k = _context_key(self.key_id, context, encrypted)
        with self._lock:
            cached = self._take(self._decrypt, k)
            if cached is not None:
                return cached.plaintext
            reply = self._kms.decrypt(CiphertextBlob=encrypted, KeyId=self.key_id, EncryptionContext=dict(context))
            key = DataKey(reply["Plaintext"], encrypted, reply["KeyId"])
            self._put(self._decrypt, k, key)
            return key.plaintext

    def clear(self) -> None:
        """Forget every cached key (call it when a key is rotated or a process is drained)."""
        with self._lock:
            self._encrypt.clear()
            self._decrypt.clear()


#: The fixed, versioned label every deterministic-token key is derived from. A new label (``-v2``) or a new
#: KMS HMAC key changes every deterministic token: plan it as a migration (see the article).
TOKEN_KEY_LABEL = "fasterpay-dtk-v1"


class TokenKeyCache(_BoundedCache):
    """Keys for deterministic tokens: one KMS ``GenerateMac`` per tenant and data class, then HMAC in process.

    The token key of a tenant and data class is ``GenerateMac(mac_key_id, "<label>|<tenant>|<data class>")``
    (HMAC-SHA256 in KMS). It is the same every time it is derived, so tokens stay the same across cache
    refreshes, restarts and processes. The KMS HMAC key never leaves KMS; a derived key lives in this
    cache only, under the policy's bound, and is never returned: callers get MACs, not keys. Entries are
    keyed by MAC key id, label, tenant and data class.

    Examples:
        >>> cache = TokenKeyCache(kms_client, mac_key_arn, DataKeyCachePolicy(max_age_seconds=300))  # doctest: +SKIP
        >>> len(cache.mac("bank-a", "iban", b'["bank-a","iban","GB82WEST12345698765432"]'))  # doctest: +SKIP
        32
    """

    def __init__(
        self,
        kms: Any,
        mac_key_id: str,
        policy: DataKeyCachePolicy = DataKeyCachePolicy(),
        *,
        label: str = TOKEN_KEY_LABEL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(policy, clock)
        self._kms = kms
        self.mac_key_id = mac_key_id
        self.label = label
        self._keys: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()

    def derivation_message(self, tenant: str, data_class: str) -> bytes:
        """What KMS MACs to derive the token key of ``tenant`` and ``data_class``.

        Examples:
            >>> TokenKeyCache(None, "k").derivation_message("bank-a", "iban")
            b'fasterpay-dtk-v1|bank-a|iban'
        """
        return f"{self.label}|{tenant}|{data_class}".encode()

    def mac(self, tenant: str, data_class: str, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under the token key of ``tenant`` and ``data_class`` (32 bytes)."""
        k = (self.mac_key_id, self.label, tenant, data_class)
        with self._lock:
            key = self._take(self._keys, k)
            if key is None:
                reply = self._kms.generate_mac(KeyId=self.mac_key_id, MacAlgorithm="HMAC_SHA_256",
                                               Message=self.derivation_message(tenant, data_class))
                key = bytes(reply["Mac"])
                self._put(self._keys, k, key)
        return hmac.new(key, message, hashlib.sha256).digest()

    def clear(self) -> None:
        """Forget every derived key (call it when a process is drained; tokens do not change)."""
        with self._lock:
            self._keys.clear()
