"""Idempotency keys with leases, fencing tokens and payload fingerprints (DynamoDB or in memory).

Copy the whole ``idempotency/`` folder; it needs boto3 only.
"""

from .fingerprint import FINGERPRINT_VERSION, NonCanonicalValueError, canonical_json, fingerprint
from .store import (
    Claim,
    DynamoDbIdempotencyStore,
    IdempotencyError,
    IdempotencyKeyReuseError,
    IdempotencyRecord,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    InvalidIdempotencyKeyError,
    LeaseLostError,
    ManualClock,
    Outcome,
    Replay,
    RequestInProgressError,
    Status,
    TransactionalCompletion,
    create_idempotency_table,
)

#: Folders and modules to copy with this folder, into the same parent package: the copy test copies
#: exactly these and runs the quick start.
__copy_with__: tuple[str, ...] = ()

__all__ = [
    "FINGERPRINT_VERSION", "Claim", "DynamoDbIdempotencyStore", "IdempotencyError", "IdempotencyKeyReuseError",
    "IdempotencyRecord", "IdempotencyStore", "InMemoryIdempotencyStore", "InvalidIdempotencyKeyError",
    "LeaseLostError", "ManualClock", "NonCanonicalValueError", "Outcome", "Replay", "RequestInProgressError",
    "Status", "TransactionalCompletion", "canonical_json", "create_idempotency_table", "fingerprint",
]
