"""The payment API in front of the ledger: a client's idempotency key, then one transaction.

``submit`` claims the client's key in the idempotency store (lease and fence), then posts the transfer
with the claim's completion inside the ledger transaction. So either the postings, the outbox event and
the stored answer all commit, or none do. A retry with the same key gets the stored answer; a stalled
attempt whose lease ran out is refused at commit (its fence is stale).
"""

from __future__ import annotations

from ..idempotency.fingerprint import fingerprint
from ..idempotency.store import DynamoDbIdempotencyStore, LeaseLostError, Replay

from .core import Ledger
from .model import Crash, Transfer, TransferRefusedError, TransferResult, no_crash

__all__ = ["TransferService"]


class TransferService:
    """Idempotent transfers for API callers.

    Examples:
        >>> service = TransferService(ledger, DynamoDbIdempotencyStore(dynamodb, tables.idempotency))
        ...     # doctest: +SKIP
        >>> service.submit("bank-a", "7f9c2a64-req-1", Transfer("e2e-1", "alice", "bob", 2_500, "GBP"))
        ...     # doctest: +SKIP
    """

    def __init__(self, ledger: Ledger, store: DynamoDbIdempotencyStore, *, crash: Crash = no_crash) -> None:
        self.ledger = ledger
        self.store = store
        self.crash = crash

    def submit(self, caller: str, idempotency_key: str, transfer: Transfer) -> TransferResult:
        """Post ``transfer`` once per ``(caller, idempotency_key)``; retries get the first answer.

        A refusal (insufficient funds, unknown account, ...) is an answer too: it is stored and raised
        again, with ``replayed=True``, on every retry of the same key.

        Raises:
            IdempotencyKeyReuseError: the key was used for a different transfer.
            RequestInProgressError: another attempt with this key is running; retry later.
            LeaseLostError: this attempt stalled past its lease and another took over; report nothing.
            TransferRefusedError: the ledger refused the transfer (stored for retries).
        """
        claim = self.store.begin(caller, idempotency_key, fingerprint(transfer.payload()))
        if isinstance(claim, Replay):
            return TransferResult.from_response(claim.value, replayed=True)
        self.crash("claimed")
        try:
            result = self.ledger.transfer(transfer, completion=self.store.completion(claim))
        except TransferRefusedError as refusal:
            self.store.complete(claim, {"refused": refusal.reason, "message": str(refusal)})
            raise
        except LeaseLostError:
            raise
        except Exception:
            self.store.abandon(claim)
            raise
        if result.replayed:  # posted before under another key: our completion was not committed with it
            self.store.complete(claim, result.as_response())
        self.crash("posted")
        return result

