"""Tokenisation and the secure data vault (KMS envelope encryption + DynamoDB).

Copy the whole ``vault/`` folder; it needs boto3 and ``cryptography`` only (``stack.py`` also needs
:mod:`fasterpay.aws`, or your own way to deploy the template).
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
    DetokenizeDeniedError,
    EncryptionContextError,
    ErasureReceipt,
    InvalidReferenceError,
    SubjectErasedError,
    TamperedCiphertextError,
    UnknownTokenError,
    Vault,
    VaultAccessDeniedError,
    VaultError,
)
from .datakeys import NO_CACHING, DataKey, DataKeyCache, DataKeyCachePolicy
from .policy import Caller, DetokenizeGrant, VaultPolicy

__all__ = [
    "ALGORITHM", "NO_CACHING", "UNAUTHORISED_RESULTS", "AuditLog", "AuditRecord", "AuditResult",
    "AuditWriteError", "Caller", "DataClass", "DataKey", "DataKeyCache", "DataKeyCachePolicy",
    "DetokenizeDeniedError", "DetokenizeGrant", "DynamoDbAuditLog", "EncryptionContextError",
    "ErasureReceipt", "InMemoryAuditLog", "InvalidReferenceError", "InvalidValueError",
    "SubjectErasedError", "TamperedCiphertextError", "UnknownDataClassError", "UnknownTokenError", "Vault",
    "VaultAccessDeniedError", "VaultError", "VaultPolicy", "normalise",
]
