"""Data keys from KMS with a bounded cache, so KMS is not called once per value.

A data key is reused for at most ``max_uses`` encryptions and ``max_age_seconds``; decrypted data keys
are cached the same way. Both are keyed by the KMS key and the full KMS encryption context, exactly as
the AWS Encryption SDK's caching materials manager does.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DataKey", "DataKeyCache", "DataKeyCachePolicy", "NO_CACHING"]


@dataclass(frozen=True)
class DataKeyCachePolicy:
    """How long and how often one data key may be used.

    ``max_uses=1`` means a KMS call for every encryption and every decryption.
    """

    max_age_seconds: float = 300.0
    max_uses: int = 10_000
    max_entries: int = 256

    def __post_init__(self) -> None:
        if self.max_age_seconds < 0 or self.max_uses < 1 or self.max_entries < 1:
            raise ValueError("max_age_seconds must be >= 0, max_uses and max_entries >= 1")


#: One KMS call per encryption and per decryption: the baseline the notebook compares against.
NO_CACHING = DataKeyCachePolicy(max_age_seconds=0.0, max_uses=1, max_entries=1)


@dataclass(frozen=True)
class DataKey:
    """A 256-bit data key in clear (kept in memory only) and as KMS returned it, encrypted."""

    plaintext: bytes
    encrypted: bytes
    key_id: str


@dataclass
class _Entry:
    key: DataKey
    created: float
    uses: int = 0


def _context_key(key_id: str, context: Mapping[str, str], extra: bytes = b"") -> tuple[Any, ...]:
    return (key_id, tuple(sorted(context.items())), extra)


class DataKeyCache:
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
        self._kms = kms
        self.key_id = key_id
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._encrypt: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._decrypt: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _take(self, table: OrderedDict[tuple[Any, ...], _Entry], k: tuple[Any, ...]) -> DataKey | None:
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

    def _put(self, table: OrderedDict[tuple[Any, ...], _Entry], k: tuple[Any, ...], key: DataKey) -> None:
        self.misses += 1
        if self.policy.max_uses > 1 and self.policy.max_age_seconds > 0:
            table[k] = _Entry(key, self._clock(), uses=1)
            while len(table) > self.policy.max_entries:
                table.popitem(last=False)

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
