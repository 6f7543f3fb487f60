"""The append-only audit trail: entries into an RFC 6962 tree, segments to storage, signed checkpoints.

``append`` encodes an entry (with its position and the hash of the entry before it), adds its leaf to
the tree and buffers it. ``flush`` writes the buffered entries as one segment, then signs and stores a
checkpoint of everything stored: every flush signs, and so does :meth:`AuditTrail.close`, so a log
has no unsigned tail except after a crash between the two writes (which the verifier reports as
unverifiable, never as intact). A checkpoint only ever covers entries that are already stored, so a
crash can lose buffered entries but never leaves a checkpoint pointing at entries that do not exist.
Each flush costs one ``kms:Sign`` and two S3 PUTs: ``batch_size`` is the cost lever.

The trail keeps the tree (32 bytes per entry per level, about 64 bytes per entry), not the entries,
so it can prove inclusion and consistency for any earlier size. One writer per log origin: two
writers would fork the log, which the verifier reports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .checkpoints import Checkpoint, CheckpointSigner, SignedCheckpoint, sign_checkpoint
from .entries import GENESIS_PREV, MAX_ENTRY_BYTES, AuditEntry, encode_entry
from .merkle import MerkleTree, leaf_hash
from .store import AuditStore

__all__ = ["AuditTrail", "LoggedEntry", "TrailClosedError"]


class TrailClosedError(RuntimeError):
    """The trail was closed; open a new :class:`AuditTrail` to append more."""


@dataclass(frozen=True)
class LoggedEntry:
    """Where an entry went: its position in the log and its leaf hash."""

    seq: int
    leaf_hash: bytes


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditTrail:
    """An append-only, tamper-evident log over an :class:`~fasterpay.audit.store.AuditStore`.

    ``batch_size`` entries make one segment (1 = a write per entry, durable before ``append`` returns;
    ``None`` = only on :meth:`flush`). Every flush signs a checkpoint of what is stored: a trail that
    signed only every so many entries would leave an unsigned tail that anyone could rewrite or cut
    unnoticed. A checkpoint costs one signature and one PUT, so batch the entries to batch the signatures.

    Examples:
        >>> from fasterpay.audit import InMemoryAuditStore, LocalCheckpointSigner
        >>> trail = AuditTrail(store=InMemoryAuditStore(), signer=LocalCheckpointSigner.generate(),
        ...                    origin="bank-a/payments", batch_size=2)
        >>> entry = AuditEntry("payment.status", "svc-clearing", "E2E-1", "ACSP",
        ...                    datetime(2026, 11, 28, tzinfo=UTC))
        >>> [trail.append(entry).seq for _ in range(3)]
        [0, 1, 2]
        >>> trail.latest_checkpoint.tree_size  # the flush at 2 entries signed; the third is buffered
        2
        >>> trail.close().tree_size
        3
    """

    def __init__(
        self,
        *,
        store: AuditStore,
        signer: CheckpointSigner,
        origin: str,
        batch_size: int | None = 100,
        clock: Callable[[], datetime] = _utc_now,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
    ) -> None:
        if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
            raise ValueError("batch_size must be None or a whole number >= 1")
        Checkpoint(origin, 0, bytes(32), clock())  # validates the origin early
        self.store = store
        self.signer = signer
        self.origin = origin
        self.batch_size = batch_size
        self.max_entry_bytes = max_entry_bytes
        self._clock = clock
        self._lock = threading.RLock()
        self._tree = MerkleTree()
        self._pending: list[bytes] = []
        self._stored = 0
        self._prev = GENESIS_PREV
        self._checkpoints: list[SignedCheckpoint] = []
        self._closed = False

    # -- writing ------------------------------------------------------------------------------------
    def append(self, entry: AuditEntry) -> LoggedEntry:
        """Add ``entry`` at the end of the log. Raises before anything changes if the entry is invalid."""
        with self._lock:
            if self._closed:
                raise TrailClosedError("this trail is closed")
            seq = self._tree.size
            line = encode_entry(entry, seq, self._prev, max_bytes=self.max_entry_bytes)
            leaf = leaf_hash(line)
            self._tree.append_leaf_hash(leaf)
            self._pending.append(line)
            self._prev = leaf.hex()
            if self.batch_size is not None and len(self._pending) >= self.batch_size:
                self.flush()
            return LoggedEntry(seq, leaf)

    def flush(self) -> int:
        """Write buffered entries as one segment, then sign a checkpoint of them; returns how many were written.

        If the write fails, the entries stay buffered and :class:`~fasterpay.audit.store.AuditStoreError`
        propagates: retry ``flush`` or fail the operations that produced them. If signing or storing the
        checkpoint fails, the entries are stored but not yet signed and the error propagates; the next
        ``flush`` (even with nothing buffered) signs them.
        """
        with self._lock:
            written = 0
            if self._pending:
                first, end = self._stored, self._stored + len(self._pending)
                self.store.put_segment(first, end, b"".join(line + b"\n" for line in self._pending))
                written = len(self._pending)
                self._pending.clear()
                self._stored = end
            if self._stored > self._signed_size():
                self._sign()
            return written

    def checkpoint(self) -> SignedCheckpoint:
        """Flush (which signs what it stored) and return the checkpoint of everything stored.

        An empty trail gets a checkpoint of size 0, so even "nothing was logged" is signed.
        """
        with self._lock:
            self.flush()
            latest = self.latest_checkpoint
            if latest is not None and latest.tree_size == self._stored:
                return latest
            return self._sign()

    def close(self) -> SignedCheckpoint:
        """Flush, checkpoint, and refuse further appends."""
        with self._lock:
            signed = self.checkpoint()
            self._closed = True
            return signed

    def _signed_size(self) -> int:
        return self._checkpoints[-1].tree_size if self._checkpoints else 0

    def _sign(self) -> SignedCheckpoint:
        checkpoint = Checkpoint(self.origin, self._stored, self._tree.root(self._stored), self._clock())
        signed = sign_checkpoint(self.signer, checkpoint)
        self.store.put_checkpoint(signed)
        self._checkpoints.append(signed)
        return signed

    # -- reading ------------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Entries appended (stored or buffered)."""
        return self._tree.size

    @property
    def stored(self) -> int:
        """Entries written to storage."""
        return self._stored

    @property
    def latest_checkpoint(self) -> SignedCheckpoint | None:
        return self._checkpoints[-1] if self._checkpoints else None

    @property
    def checkpoints(self) -> tuple[SignedCheckpoint, ...]:
        return tuple(self._checkpoints)

    def root(self, tree_size: int | None = None) -> bytes:
        """Root hash at ``tree_size`` (default: every entry appended)."""
        return self._tree.root(tree_size)

    def leaf_hash(self, seq: int) -> bytes:
        return self._tree.leaf_hash(seq)

    def prove_inclusion(self, seq: int, tree_size: int | None = None) -> list[bytes]:
        """Audit path of entry ``seq`` in the tree of ``tree_size`` (default: the latest checkpoint)."""
        with self._lock:
            size = tree_size if tree_size is not None else self._checkpointed_size()
            return self._tree.inclusion_proof(seq, size)

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the tree of ``new_size`` (default: the latest checkpoint) extends ``old_size``."""
        with self._lock:
            size = new_size if new_size is not None else self._checkpointed_size()
            return self._tree.consistency_proof(old_size, size)

    def _checkpointed_size(self) -> int:
        if not self._checkpoints:
            raise ValueError("no checkpoint yet: call checkpoint() first, or give a tree size")
        return self._checkpoints[-1].tree_size
