"""Tokenisation and the secure data vault (KMS envelope encryption + DynamoDB).

Copy the whole ``vault/`` folder; it needs boto3 and ``cryptography`` only (``stack.py`` also needs
:mod:`fasterpay.aws`, or your own way to deploy the template). The benchmark is not part of the pattern:
it lives in ``simulations/vault_bench.py`` (``from simulations.vault_bench import benchmark_vault``).
"""

from .audit import (
    UNAUTHORISED_RESULTS,
    AuditLog,
    AuditRecord,
    AuditResult,
    AuditWriteError,
    DynamoDbAuditLog,
    InMemoryAuditLog,
)
from .classes import DataClass, InvalidValueError, UnknownDataClassError, normalise
from .core import (
    ALGORITHM,
    BatchIncompleteError,
    DetokenizeDeniedError,
    EncryptionContextError,
    ErasureReceipt,
    InvalidReferenceError,
    RecordFormatError,
    SubjectErasedError,
    TamperedCiphertextError,
    UnknownTokenError,
    Vault,
    VaultAccessDeniedError,
    VaultError,
)
from .datakeys import NO_CACHING, TOKEN_KEY_LABEL, DataKey, DataKeyCache, DataKeyCachePolicy, TokenKeyCache
from .policy import Caller, DetokenizeGrant, VaultPolicy

#: Folders and modules to copy with this folder, into the same parent package: the copy test copies
#: exactly these and runs the quick start.
__copy_with__: tuple[str, ...] = ("aws.py", "cloudformation")

__all__ = [
    "ALGORITHM", "NO_CACHING", "TOKEN_KEY_LABEL", "UNAUTHORISED_RESULTS", "AuditLog", "AuditRecord",
    "AuditResult", "AuditWriteError", "BatchIncompleteError", "Caller", "DataClass", "DataKey", "DataKeyCache",
    "DataKeyCachePolicy", "DetokenizeDeniedError", "DetokenizeGrant", "DynamoDbAuditLog",
    "EncryptionContextError", "ErasureReceipt", "InMemoryAuditLog", "InvalidReferenceError", "InvalidValueError",
    "RecordFormatError", "SubjectErasedError", "TamperedCiphertextError", "TokenKeyCache", "UnknownDataClassError",
    "UnknownTokenError", "Vault", "VaultAccessDeniedError", "VaultError", "VaultPolicy", "normalise",
]
