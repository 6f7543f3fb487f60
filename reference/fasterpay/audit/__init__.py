"""Tamper-evident audit trails: an RFC 6962 Merkle log, KMS-signed checkpoints, S3 Object Lock.

Copy the whole ``audit/`` folder; it needs boto3 and ``cryptography`` only. ``vault_adapter.py`` also
needs :mod:`fasterpay.vault` (leave it out if you do not use the vault) and ``stack.py`` needs
:mod:`fasterpay.aws`. The benches and the export attacker the notebook uses are not part of the pattern:
they live in ``simulations/audit_bench.py`` and ``simulations/audit_tamper.py``.
"""

from .checkpoints import (
    SIGNING_ALGORITHM,
    Checkpoint,
    CheckpointError,
    CheckpointSignatureError,
    CheckpointSigner,
    KmsCheckpointSigner,
    LocalCheckpointSigner,
    MalformedCheckpointError,
    PublicKeyError,
    SignedCheckpoint,
    WrongKeyError,
    load_public_key,
    sign_checkpoint,
    verify_checkpoint,
)
from .entries import (
    MAX_ENTRY_BYTES,
    AuditEntry,
    EntryTooLargeError,
    InvalidEntryError,
    PersonalDataError,
    decode_entry,
    encode_entry,
)
from .log import AuditTrail, LoggedEntry, TrailClosedError
from .merkle import (
    EMPTY_ROOT,
    ConsistencyProofError,
    InclusionProofError,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from .store import AuditStore, AuditStoreError, InMemoryAuditStore, ObjectExistsError, S3AuditStore, write_export

_FROM_VERIFY = ("ExportNotFoundError", "Finding", "VerificationReport", "Witness", "WitnessError",
                "verify_export")


def __getattr__(name: str) -> object:
    # Imported on first use, so ``python -m fasterpay.audit.verify`` does not import the module twice.
    if name in _FROM_VERIFY:
        from . import verify

        return getattr(verify, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: Folders and modules to copy with this folder, into the same parent package: the copy test copies
#: exactly these and runs the quick start.
__copy_with__: tuple[str, ...] = ("vault", "observability", "aws.py", "cloudformation")

__all__ = [
    "EMPTY_ROOT", "MAX_ENTRY_BYTES", "SIGNING_ALGORITHM", "AuditEntry", "AuditStore", "AuditStoreError",
    "AuditTrail", "Checkpoint", "CheckpointError", "CheckpointSignatureError", "CheckpointSigner",
    "ConsistencyProofError", "EntryTooLargeError", "ExportNotFoundError", "Finding", "InMemoryAuditStore",
    "InclusionProofError", "InvalidEntryError", "KmsCheckpointSigner", "LocalCheckpointSigner", "LoggedEntry",
    "MalformedCheckpointError", "MerkleTree", "ObjectExistsError", "PersonalDataError", "ProofError",
    "PublicKeyError", "S3AuditStore", "SignedCheckpoint", "TrailClosedError", "VerificationReport", "Witness",
    "WitnessError", "WrongKeyError", "decode_entry", "encode_entry", "leaf_hash", "load_public_key", "node_hash",
    "sign_checkpoint", "verify_checkpoint", "verify_consistency", "verify_export", "verify_inclusion",
    "write_export",
]
