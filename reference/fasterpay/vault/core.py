"""The tokenisation vault: envelope encryption with KMS data keys, values in DynamoDB, crypto-shredding.

Key hierarchy (see the article for the reasoning):

* a KMS key, which never leaves KMS;
* data keys from ``kms:GenerateDataKey`` under the encryption context ``{purpose, tenant, data_class}``,
  cached with a bounded age and use count; the encrypted data key is stored beside each ciphertext;
* a random 256-bit secret per data subject, in one vault record that erasure destroys;
* the value key ``HKDF-SHA256(data key, salt=subject secret)``; the value is sealed with AES-256-GCM,
  whose associated data binds it to its tenant, data class, token and subject.

The tokenizer never needs ``kms:Decrypt``; detokenize needs it; erasing the subject secret makes every
value of that subject unrecoverable, even to a holder of ``kms:Decrypt``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .audit import AuditLog, AuditRecord, AuditResult, AuditWriteError
from .classes import DataClass, normalise, parse_data_class
from .datakeys import DataKeyCache, DataKeyCachePolicy
from .policy import Caller, VaultPolicy

__all__ = [
    "ALGORITHM",
    "DetokenizeDeniedError",
    "EncryptionContextError",
    "ErasureReceipt",
    "InvalidReferenceError",
    "SubjectErasedError",
    "TamperedCiphertextError",
    "UnknownTokenError",
    "Vault",
    "VaultAccessDeniedError",
    "VaultError",
]

ALGORITHM = "AES-256-GCM/HKDF-SHA256/v1"
_PURPOSE = "fasterpay-vault"
_REF_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TOKEN_RE = re.compile(r"(tok|dtk)_(pan|iban|account_number|name)_([a-z2-7]{32})")
_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


class VaultError(Exception):
    """Base class of the vault's errors."""


class InvalidReferenceError(VaultError, ValueError):
    """A tenant or subject id is empty, longer than 64 characters, or has characters outside [A-Za-z0-9._:-]."""


class UnknownTokenError(VaultError, LookupError):
    """The token is malformed or the vault holds no value for it; check the token and the tenant."""


class DetokenizeDeniedError(VaultError, PermissionError):
    """The vault policy does not grant this caller and purpose this data class; ask for a grant."""


class VaultAccessDeniedError(VaultError, PermissionError):
    """AWS IAM refused a call the operation needs: the role lacks the permission (by design, or by mistake)."""


class EncryptionContextError(VaultError):
    """KMS refused to decrypt: the data key was made for another tenant or data class."""


class TamperedCiphertextError(VaultError):
    """The ciphertext, or the token, tenant or subject it is bound to, was changed: AES-GCM rejected it."""


class SubjectErasedError(VaultError):
    """The data subject was erased (crypto-shredded); their values can no longer be tokenised or read."""


@dataclass(frozen=True)
class ErasureReceipt:
    tenant: str
    subject: str
    erased_at: datetime
    audit_event_id: str


def _ref(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _REF_RE.fullmatch(value):
        raise InvalidReferenceError(f"{kind} must be 1-64 characters from [A-Za-z0-9._:-], got {value!r}")
    return value


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Vault:
    """Tokenise and detokenize sensitive values with KMS envelope encryption and DynamoDB storage.

    Each process builds a ``Vault`` from the clients of its own role: a tokenizer's clients cannot
    decrypt, so its ``detokenize`` fails with :class:`VaultAccessDeniedError` even if the code is called.

    Examples:
        >>> vault = Vault(kms=kms, dynamodb=ddb, table_name="fasterpay-vault", key_id=key_arn,
        ...               audit=audit_log, policy=policy)  # doctest: +SKIP
        >>> token = vault.tokenize("GB82 WEST 1234 5698 7654 32", "iban", tenant="bank-a", subject="cust-1")
        ...     # doctest: +SKIP
        >>> vault.detokenize(token, tenant="bank-a", caller=Caller("scheme-gateway", "scheme-submission"))
        ...     # doctest: +SKIP
        'GB82WEST12345698765432'
    """

    def __init__(
        self,
        *,
        kms: Any,
        dynamodb: Any,
        table_name: str,
        key_id: str,
        audit: AuditLog,
        policy: VaultPolicy,
        mac_key_id: str | None = None,
        cache: DataKeyCachePolicy = DataKeyCachePolicy(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._kms = kms
        self._ddb = dynamodb
        self.table_name = table_name
        self.mac_key_id = mac_key_id
        self.audit = audit
        self.policy = policy
        self.data_keys = DataKeyCache(kms, key_id, cache)
        self._clock = clock

    # -- tokenize ---------------------------------------------------------------------------------
    def tokenize(
        self,
        value: str,
        data_class: DataClass | str,
        *,
        tenant: str,
        subject: str,
        deterministic: bool = False,
    ) -> str:
        """Encrypt ``value`` and return a token that reveals nothing about it.

        Random tokens (``tok_…``) differ on every call. Deterministic tokens (``dtk_…``) are a keyed HMAC
        (KMS ``GenerateMac``) of tenant, data class and value: equal values get equal tokens, so a team can
        match them without decrypting, at the price of linkability and one KMS call per tokenisation.

        Raises:
            InvalidValueError, UnknownDataClassError, InvalidReferenceError: bad input; nothing is written.
            SubjectErasedError: the subject was erased.
            VaultAccessDeniedError: IAM refused a call (for example a router role calling the vault).
        """
        cls = parse_data_class(data_class)
        canonical = normalise(value, cls)
        _ref("tenant", tenant)
        _ref("subject", subject)
        try:
            data_key = self.data_keys.for_encryption(self._kms_context(tenant, cls))
            token = self._mac_token(canonical, cls, tenant) if deterministic else self._random_token(cls)
            secret = self._subject_secret(tenant, subject, create=True)
            nonce = os.urandom(12)
            sealed = AESGCM(self._value_key(data_key.plaintext, secret, tenant, subject)).encrypt(
                nonce, canonical.encode("utf-8"), self._aad(tenant, cls, token, subject)
            )
            self._ddb.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": f"TOKEN#{token}"},
                    "tenant": {"S": tenant},
                    "data_class": {"S": cls.value},
                    "subject": {"S": subject},
                    "ciphertext": {"B": sealed},
                    "nonce": {"B": nonce},
                    "encrypted_data_key": {"B": data_key.encrypted},
                    "kms_key_id": {"S": data_key.key_id},
                    "alg": {"S": ALGORITHM},
                    "created_at": {"S": self._clock().isoformat()},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException" and deterministic:
                return token  # the same value was tokenised before: same token, nothing new written
            if _code(exc) in _ACCESS_DENIED:
                raise VaultAccessDeniedError(f"tokenize refused by IAM: {exc}") from exc
            raise
        return token

    # -- detokenize -------------------------------------------------------------------------------
    def detokenize(self, token: str, *, tenant: str, caller: Caller) -> str:
        """Return the value behind ``token`` to an authorised ``caller``; every attempt is audited.

        The tenant is the caller's, not the record's: a token of another tenant fails in KMS
        (:class:`EncryptionContextError`) even if the policy would allow it.

        Raises:
            DetokenizeDeniedError, VaultAccessDeniedError, UnknownTokenError, SubjectErasedError,
            EncryptionContextError, TamperedCiphertextError, AuditWriteError.
        """
        _ref("tenant", tenant)
        match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            raise UnknownTokenError(f"{token!r} is not a vault token")
        cls = DataClass(match.group(2))

        def audit(result: AuditResult, reason: str = "") -> str:
            return self._audit("detokenize", caller, tenant, token, result, reason)

        if not self.policy.may_detokenize(caller, cls):
            audit(AuditResult.DENIED_POLICY, f"no grant for {cls.value} / {caller.purpose}")
            raise DetokenizeDeniedError(f"{caller.principal} may not detokenize {cls.value} for {caller.purpose!r}")
        try:
            item = self._ddb.get_item(
                TableName=self.table_name, Key={"pk": {"S": f"TOKEN#{token}"}}, ConsistentRead=True
            ).get("Item")
            if item is None:
                audit(AuditResult.UNKNOWN_TOKEN)
                raise UnknownTokenError(f"the vault holds no value for {token}")
            subject = item["subject"]["S"]
            try:  # KMS first: it checks the caller's tenant before anything else of the record is used
                data_key = self.data_keys.for_decryption(item["encrypted_data_key"]["B"], self._kms_context(tenant, cls))
            except ClientError as exc:
                if _code(exc) == "InvalidCiphertextException":
                    audit(AuditResult.CONTEXT_MISMATCH, "KMS refused the encryption context")
                    raise EncryptionContextError(f"{token} was not encrypted for tenant {tenant}") from exc
                raise
            secret = self._subject_secret(tenant, subject, create=False)
            if secret is None:
                audit(AuditResult.SUBJECT_ERASED, f"subject {subject} erased")
                raise SubjectErasedError(f"subject {subject} of tenant {tenant} was erased")
            try:
                clear = AESGCM(self._value_key(data_key, secret, tenant, subject)).decrypt(
                    item["nonce"]["B"], item["ciphertext"]["B"], self._aad(tenant, cls, token, subject)
                )
            except InvalidTag as exc:
                audit(AuditResult.TAMPERED, "AES-GCM authentication failed")
                raise TamperedCiphertextError(f"{token}: ciphertext or its binding was altered") from exc
        except ClientError as exc:
            if _code(exc) in _ACCESS_DENIED:
                try:
                    audit(AuditResult.DENIED_IAM, _code(exc))
                except AuditWriteError:
                    pass  # the role may not even write audit records; CloudTrail still has the denial
                raise VaultAccessDeniedError(f"detokenize refused by IAM: {exc}") from exc
            raise
        audit(AuditResult.ALLOWED)  # fails closed: no audit record, no value
        return clear.decode("utf-8")

    # -- erase ------------------------------------------------------------------------------------
    def erase_subject(self, *, tenant: str, subject: str, caller: Caller) -> ErasureReceipt:
        """Crypto-shred a data subject: destroy their secret, so none of their values can be decrypted.

        Ciphertexts stay wherever they were copied (backups, streams, logs) and become useless. Tokenising
        for an erased subject is refused afterwards. Idempotent: erasing twice is not an error.
        """
        _ref("tenant", tenant)
        _ref("subject", subject)
        reference = f"subject:{subject}"
        if not self.policy.may_erase(caller):
            self._audit("erase", caller, tenant, reference, AuditResult.DENIED_POLICY, "not an eraser")
            raise DetokenizeDeniedError(f"{caller.principal} may not erase data subjects")
        now = self._clock()
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"SUBJECT#{tenant}#{subject}"}},
                UpdateExpression="SET #s = :erased, erased_at = :at REMOVE secret",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":erased": {"S": "erased"}, ":at": {"S": now.isoformat()}},
            )
        except ClientError as exc:
            if _code(exc) in _ACCESS_DENIED:
                raise VaultAccessDeniedError(f"erase refused by IAM: {exc}") from exc
            raise
        event_id = self._audit("erase", caller, tenant, reference, AuditResult.ERASED)
        return ErasureReceipt(tenant, subject, now, event_id)

    # -- internals --------------------------------------------------------------------------------
    @staticmethod
    def _kms_context(tenant: str, cls: DataClass) -> dict[str, str]:
        return {"purpose": _PURPOSE, "tenant": tenant, "data_class": cls.value}

    @staticmethod
    def _aad(tenant: str, cls: DataClass, token: str, subject: str) -> bytes:
        binding = {"v": 1, "tenant": tenant, "data_class": cls.value, "token": token, "subject": subject}
        return json.dumps(binding, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @staticmethod
    def _value_key(data_key: bytes, secret: bytes, tenant: str, subject: str) -> bytes:
        info = f"{ALGORITHM}|{tenant}|{subject}".encode()
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=secret, info=info).derive(data_key)

    @staticmethod
    def _random_token(cls: DataClass) -> str:
        return f"tok_{cls.value}_{_b32(secrets.token_bytes(20))}"

    def _mac_token(self, canonical: str, cls: DataClass, tenant: str) -> str:
        if self.mac_key_id is None:
            raise VaultError("deterministic tokens need mac_key_id (an HMAC_256 KMS key)")
        message = json.dumps([tenant, cls.value, canonical], separators=(",", ":")).encode("utf-8")
        mac = self._kms.generate_mac(KeyId=self.mac_key_id, Message=message, MacAlgorithm="HMAC_SHA_256")["Mac"]
        return f"dtk_{cls.value}_{_b32(mac[:20])}"

    def _subject_secret(self, tenant: str, subject: str, *, create: bool) -> bytes | None:
        key = {"pk": {"S": f"SUBJECT#{tenant}#{subject}"}}
        for _ in range(2):
            item = self._ddb.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
            if item is not None:
                if item.get("status", {}).get("S") == "erased" or "secret" not in item:
                    if create:
                        raise SubjectErasedError(f"subject {subject} of tenant {tenant} was erased")
                    return None
                return bytes(item["secret"]["B"])
            if not create:
                return None
            try:
                secret = secrets.token_bytes(32)
                self._ddb.put_item(
                    TableName=self.table_name,
                    Item={**key, "secret": {"B": secret}, "status": {"S": "active"},
                          "created_at": {"S": self._clock().isoformat()}},
                    ConditionExpression="attribute_not_exists(pk)",
                )
                return secret
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                # another tokenizer created it first: read theirs
        raise VaultError(f"could not read or create the secret of subject {subject}")

    def _audit(
        self, action: str, caller: Caller, tenant: str, reference: str, result: AuditResult, reason: str = ""
    ) -> str:
        event_id = str(uuid.uuid4())
        self.audit.append(
            AuditRecord(event_id, self._clock(), action, caller.principal, caller.purpose, tenant, reference,
                        result, reason)
        )
        return event_id
