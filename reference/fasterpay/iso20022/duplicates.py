"""Duplicate detection for MsgId (DU01) and EndToEndId (DU04): a small protocol and an in-memory fake.

The pipeline backs the protocol with a DynamoDB conditional write (``attribute_not_exists``) through the
idempotency store, so "check" and "record" are one atomic step and two concurrent copies of a message
cannot both pass. Keys are used as given: to make MsgId unique per sender rather than globally, wrap the
detector and prefix the key with the sender's BIC.
"""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

__all__ = ["DuplicateDetector", "InMemoryDuplicateDetector"]


@runtime_checkable
class DuplicateDetector(Protocol):
    """Records identifiers and says whether each was recorded before. Both methods are atomic."""

    def seen_message(self, msg_id: str) -> bool:
        """Record ``msg_id``; return True if it had been recorded before (a duplicate message)."""
        ...

    def seen_end_to_end(self, end_to_end_id: str) -> bool:
        """Record ``end_to_end_id``; return True if it had been recorded before (a duplicate payment)."""
        ...


class InMemoryDuplicateDetector:
    """A thread-safe in-process :class:`DuplicateDetector`, for tests and the simulations.

    It forgets everything when the process ends, so it cannot protect a fleet of Lambda functions;
    use the DynamoDB-backed detector there.

    Examples:
        >>> detector = InMemoryDuplicateDetector()
        >>> detector.seen_message("MSG-1"), detector.seen_message("MSG-1")
        (False, True)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: set[str] = set()
        self._end_to_end: set[str] = set()

    @staticmethod
    def _seen(store: set[str], key: str, lock: threading.Lock) -> bool:
        with lock:
            if key in store:
                return True
            store.add(key)
            return False

    def seen_message(self, msg_id: str) -> bool:
        """Record ``msg_id``; True if it had been recorded before."""
        return self._seen(self._messages, msg_id, self._lock)

    def seen_end_to_end(self, end_to_end_id: str) -> bool:
        """Record ``end_to_end_id``; True if it had been recorded before."""
        return self._seen(self._end_to_end, end_to_end_id, self._lock)

    def __len__(self) -> int:
        return len(self._messages) + len(self._end_to_end)
