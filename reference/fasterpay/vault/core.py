"""The tokenisation vault: envelope encryption with KMS data keys, values in DynamoDB, crypto-shredding.

Key hierarchy (see the article for the reasoning):

* a KMS key, which never leaves KMS;
* data keys from ``kms:GenerateDataKey`` under the encryption context ``{purpose, tenant, data_class}``,
  cached with a bounded age and use count; the encrypted data key is stored beside each ciphertext;
* for deterministic tokens, a token key per tenant and data class, derived once from the KMS HMAC key
  (``kms:GenerateMac`` of a fixed, versioned label) and cached the same way;
* a random 256-bit secret per data subject, in one vault record that erasure destroys;
* the value key ``HKDF-SHA256(data key, salt=subject secret)``; the value is sealed with AES-256-GCM,
  whose associated data binds it to its token and to every text field of its record (tenant, data class,
  subject, algorithm, KMS key id, creation time);
* a record binding, ``HMAC-SHA256`` under a key derived from the data key alone, over those fields, the
  nonce, the ciphertext and the encrypted data key: detokenize checks it before reading the subject's
  secret, so an edited record is told apart from an erased subject.

Record format v2 (:data:`ALGORITHM`). Records of format v1, which bound only tenant, data class, token and
subject, are refused with :class:`RecordFormatError`; before release there is no migration.

The tokenizer never needs ``kms:Decrypt``; detokenize needs it; erasing the subject secret makes every
value of that subject unrecoverable, even to a holder of ``kms:Decrypt``. Every detokenize and erase
attempt is audited once, under the identity the vault's clients authenticate as.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .audit import AuditLog, AuditRecord, AuditResult, AuditWriteError
from .classes import DataClass, InvalidValueError, normalise, parse_data_class
from .datakeys import DataKey, DataKeyCache, DataKeyCachePolicy, TokenKeyCache
from .policy import Caller, VaultPolicy

__all__ = [
    "ALGORITHM",
    "BatchIncompleteError",
    "DetokenizeDeniedError",
    "EncryptionContextError",
    "ErasureReceipt",
    "InvalidReferenceError",
    "RecordFormatError",
    "SubjectErasedError",
    "TamperedCiphertextError",
    "UnknownTokenError",
    "Vault",
    "VaultAccessDeniedError",
    "VaultError",
]

#: The record format this vault writes and reads; a record naming another is refused.
ALGORITHM = "AES-256-GCM/HKDF-SHA256/v2"
_FORMAT_VERSION = 2
_LEGACY_ALGORITHMS = frozenset({"AES-256-GCM/HKDF-SHA256/v1"})
_BOUND_TEXT = ("tenant", "data_class", "subject", "alg", "kms_key_id", "created_at")  # in the AAD and the binding
_BOUND_BYTES = ("nonce", "ciphertext", "encrypted_data_key")  # in the binding
_BINDING_INFO = b"fasterpay-vault/record-binding/v2"
_PURPOSE = "fasterpay-vault"
_REF_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TOKEN_RE = re.compile(r"(tok|dtk)_(pan|iban|account_number|name)_([a-z2-7]{32})")
_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_BATCH_GET_KEYS = 100  # DynamoDB's limit per BatchGetItem
_BATCH_WRITE_ITEMS = 25  # DynamoDB's limit per BatchWriteItem
_BATCH_ATTEMPTS = 6  # per batch call, the first included; back-off 50 ms doubling, capped at 1 s


class VaultError(Exception):
    """Base class of the vault's errors.

    ``audit_error`` is set when the attempt was refused but its audit record could not be written: the
    refusal is raised all the same (never a value), and a note says it was not audited.
    """

    audit_error: AuditWriteError | None = None


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
    """A field of the token's record, or its subject's record, was changed or removed; nothing was decrypted.

    Restore the record from a backup and find who could write the vault table.
    """


class RecordFormatError(VaultError):
    """The record was written in format v1, which this vault no longer reads; re-tokenise the value from its source."""


class SubjectErasedError(VaultError):
    """The data subject was erased (crypto-shredded); their values can no longer be tokenised or read."""


class BatchIncompleteError(VaultError):
    """DynamoDB left part of a batch unprocessed after every retry (throttling); no token was returned.

    Call ``tokenize_many`` again: deterministic values already written are found and skipped. Random
    tokens written before the error were never returned; their records are orphans.
    """


@dataclass(frozen=True)
class ErasureReceipt:
    tenant: str
    subject: str
    erased_at: datetime
    audit_event_id: str


def _is_ref(value: object) -> bool:
    return isinstance(value, str) and _REF_RE.fullmatch(value) is not None


def _ref_error(kind: str, value: object) -> InvalidReferenceError:
    return InvalidReferenceError(f"{kind} must be 1-64 characters from [A-Za-z0-9._:-], got {value!r}")


def _ref(kind: str, value: str) -> str:
    if not _is_ref(value):
        raise _ref_error(kind, value)
    return value


def _shape(value: object) -> str:
    """What an invalid input looked like, without its content (it may be a value in clear)."""
    return f"str of {len(value)} characters" if isinstance(value, str) else type(value).__name__


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _aws_reason(exc: ClientError) -> str:
    """``"<operation>: <error code>"``, e.g. ``"Decrypt: AccessDeniedException"``."""
    return f"{exc.operation_name}: {_code(exc)}"


def _sts_beside(client: Any) -> Any:
    """An STS client that signs with ``client``'s credentials, in its region (at its endpoint, unless AWS's).

    botocore has no public accessor for a client's credentials; pass ``sts=`` to :class:`Vault` instead
    when the clients go through a VPC endpoint or a proxy.
    """
    credentials = client._get_credentials()  # botocore's accessor, private: hence the sts= parameter
    if credentials is None:
        raise VaultError("the vault's KMS client has no credentials to ask STS who it is")
    frozen = credentials.get_frozen_credentials()
    endpoint = client.meta.endpoint_url
    on_aws = (urlsplit(endpoint).hostname or "").endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))
    return boto3.client("sts", region_name=client.meta.region_name, endpoint_url=None if on_aws else endpoint,
                        aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
                        aws_session_token=frozen.token)


class _Refusal(Exception):
    """Inside the vault only: an attempt was refused; what to audit, and the error to raise once audited."""

    def __init__(self, result: AuditResult, reason: str, error: VaultError, cause: BaseException | None = None):
        super().__init__(reason)
        self.result, self.reason, self.error, self.cause = result, reason, error, cause


class Vault:
    """Tokenise and detokenize sensitive values with KMS envelope encryption and DynamoDB storage.

    Each process builds a ``Vault`` from the clients of its own role: a tokenizer's clients cannot
    decrypt, so its ``detokenize`` fails with :class:`VaultAccessDeniedError` even if the code is called.
    Audit records name that role: ``sts`` (a client with the same credentials; by default one is made
    from ``kms``'s) is asked ``GetCallerIdentity`` once, at the first audited attempt.

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
        token_key_cache: DataKeyCachePolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        sts: Any | None = None,
    ) -> None:
        self._kms = kms
        self._sts = sts
        self._identity: str | None = None
        self._identity_lock = threading.Lock()
        self._ddb = dynamodb
        self.table_name = table_name
        self.mac_key_id = mac_key_id
        self.audit = audit
        self.policy = policy
        self.data_keys = DataKeyCache(kms, key_id, cache)
        self.token_keys = (
            TokenKeyCache(kms, mac_key_id, token_key_cache or cache) if mac_key_id is not None else None
        )
        self._clock = clock
        self._sleep = sleep

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

        Random tokens (``tok_…``) differ on every call. Deterministic tokens (``dtk_…``) are an HMAC of
        tenant, data class and value under a token key derived from the KMS HMAC key (one ``GenerateMac``
        per tenant and data class per cache entry): equal values get equal tokens, so a team can match
        them without decrypting, at the price of linkability. Tokenising several values of one subject?
        :meth:`tokenize_many` makes one read and one batched write for all of them.

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
            secret = self._subject_secret(tenant, subject, refuse_erased=True) or self._create_subject_secret(
                tenant, subject)
            self._ddb.put_item(
                TableName=self.table_name,
                Item=self._sealed_record(token, canonical, cls, tenant, subject, data_key, secret),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException" and deterministic:
                return token  # the same value was tokenised before: same token, nothing new written
            if _code(exc) in _ACCESS_DENIED:
                raise VaultAccessDeniedError(f"tokenize refused by IAM: {exc}") from exc
            raise
        return token

    def tokenize_many(
        self,
        values: Sequence[tuple[str, DataClass | str]],
        *,
        tenant: str,
        subject: str,
        deterministic: bool = True,
    ) -> list[str]:
        """Tokenise several ``(value, data_class)`` pairs of one data subject; tokens in the same order.

        Every value is validated first, so a bad one raises before any AWS call. Then one
        ``BatchGetItem`` reads the subject secret and, for deterministic tokens, the records of the
        tokens, so values already in the vault are skipped; the subject secret is created with a
        conditional ``PutItem`` only if it is missing and something new is written; every new record goes
        out with ``BatchWriteItem`` (25 per call). Equal values in one call share a token and a record.
        Unprocessed keys and items are retried with back-off a bounded number of times.

        ``BatchWriteItem`` cannot be conditional. If two callers tokenise the same new value at the same
        time, both write its record: each record holds the same value, sealed for its own subject, and
        the last write wins. A deterministic token's record therefore belongs to the first subject that
        stored it, or, after such a race, to the last of the concurrent first writers; erasing that
        subject makes the shared token unreadable for everyone (as with :meth:`tokenize`).

        Examples:
            >>> vault.tokenize_many([("GB82 WEST 1234 5698 7654 32", "iban"), ("Ann Smith", "name")],
            ...                     tenant="bank-a", subject="pay:6f1c")  # doctest: +SKIP
            ['dtk_iban_…', 'dtk_name_…']

        Raises:
            InvalidValueError, UnknownDataClassError, InvalidReferenceError: bad input; nothing is written.
            SubjectErasedError: the subject was erased; nothing is written.
            VaultAccessDeniedError: IAM refused a call.
            BatchIncompleteError: DynamoDB kept refusing part of a batch; call again.
        """
        _ref("subject", subject)
        return self.tokenize_batch([(value, cls, subject) for value, cls in self._pairs(values)], tenant=tenant,
                                   deterministic=deterministic, _api="tokenize_many")

    def tokenize_batch(
        self,
        requests: Sequence[tuple[str, DataClass | str, str]],
        *,
        tenant: str,
        deterministic: bool = True,
        _api: str = "tokenize_batch",
    ) -> list[str]:
        """Tokenise ``(value, data_class, subject)`` triples of several subjects at once, in order.

        What :meth:`tokenize_many` does for one subject, for a whole batch (a queue batch of payments,
        each with its own data subject): one ``BatchGetItem`` for every subject secret and every
        deterministic token record (100 keys per call), a conditional ``PutItem`` only for a subject
        that has no secret yet, and ``BatchWriteItem`` (25 per call) for the new records. Every triple
        is validated before any AWS call. The same caveat on concurrent first writes applies.

        Examples:
            >>> vault.tokenize_batch([("GB82 WEST 1234 5698 7654 32", "iban", "cust:1"),
            ...                       ("Ann Smith", "name", "cust:2")], tenant="bank-a")  # doctest: +SKIP
            ['dtk_iban_…', 'dtk_name_…']

        Raises:
            InvalidValueError, UnknownDataClassError, InvalidReferenceError: bad input; nothing is written.
            SubjectErasedError: a subject of the batch was erased; nothing is written.
            VaultAccessDeniedError: IAM refused a call.
            BatchIncompleteError: DynamoDB kept refusing part of a batch; call again.
        """
        _ref("tenant", tenant)
        checked: list[tuple[str, DataClass, str]] = []
        for index, triple in enumerate(requests):
            try:
                value, data_class, subject = triple
            except (TypeError, ValueError):
                raise InvalidValueError(f"requests[{index}] must be (value, data_class, subject), got {triple!r}") from None
            _ref("subject", subject)
            canonical, cls = self._checked(index, (value, data_class))
            checked.append((canonical, cls, subject))
        if deterministic and self.token_keys is None:
            raise VaultError("deterministic tokens need mac_key_id (an HMAC_256 KMS key)")
        if not checked:
            return []
        try:
            tokens = [self._mac_token(canonical, cls, tenant) if deterministic else self._random_token(cls)
                      for canonical, cls, _ in checked]
            new: dict[str, tuple[str, DataClass, str]] = {}
            for token, triple in zip(tokens, checked):
                new.setdefault(token, triple)  # equal values share one token and one record (the first subject's)
            subjects = list(dict.fromkeys(subject for _, _, subject in checked))
            subject_keys = {subject: f"SUBJECT#{tenant}#{subject}" for subject in subjects}
            found = self._batch_get([*({"pk": {"S": pk}} for pk in subject_keys.values()),
                                     *({"pk": {"S": f"TOKEN#{t}"}} for t in new if deterministic)])
            secrets_by_subject = {subject: self._secret_in(found.pop(pk, None), tenant, subject, refuse_erased=True)
                                  for subject, pk in subject_keys.items()}
            for pk in found:
                new.pop(pk.removeprefix("TOKEN#"), None)  # already in the vault: same token, nothing written
            if new:
                data_keys = {token: self.data_keys.for_encryption(self._kms_context(tenant, cls))
                             for token, (_, cls, _) in new.items()}
                records = []
                for token, (canonical, cls, subject) in new.items():
                    secret = secrets_by_subject.get(subject)
                    if secret is None:
                        secret = secrets_by_subject[subject] = self._create_subject_secret(tenant, subject)
                    records.append(self._sealed_record(token, canonical, cls, tenant, subject, data_keys[token], secret))
                self._batch_write(records)
        except ClientError as exc:
            if _code(exc) in _ACCESS_DENIED:
                raise VaultAccessDeniedError(f"{_api} refused by IAM: {exc}") from exc
            raise
        return tokens

    def deterministic_token(self, value: str, data_class: DataClass | str, *, tenant: str) -> str:
        """The deterministic token ``value`` has (or would have) in ``tenant``; no record is read or written.

        For matching only (a ledger account id, a screening list); costs no AWS call once the token key
        is cached.

        Examples:
            >>> vault.deterministic_token("GB82 WEST 1234 5698 7654 32", "iban", tenant="bank-a")  # doctest: +SKIP
            'dtk_iban_…'
        """
        _ref("tenant", tenant)
        canonical, cls = self._checked(0, (value, data_class))
        return self._mac_token(canonical, cls, tenant)

    def warm(self, *, tenant: str, data_classes: Sequence[DataClass | str]) -> None:
        """Fetch the data keys and token keys of ``data_classes`` now (a Lambda cold start's init phase),
        so the first payments do not wait for KMS.

        Examples:
            >>> vault.warm(tenant="bank-a", data_classes=["iban", "name"])  # doctest: +SKIP
        """
        _ref("tenant", tenant)
        for data_class in data_classes:
            cls = parse_data_class(data_class)
            self.data_keys.for_encryption(self._kms_context(tenant, cls))
            if self.token_keys is not None:
                self.token_keys.mac(tenant, cls.value, b"warm")

    @staticmethod
    def _pairs(values: Sequence[tuple[str, DataClass | str]]) -> list[tuple[str, DataClass | str]]:
        pairs = []
        for index, pair in enumerate(values):
            try:
                value, data_class = pair
            except (TypeError, ValueError):
                raise InvalidValueError(f"values[{index}] must be a (value, data_class) pair, got {pair!r}") from None
            pairs.append((value, data_class))
        return pairs

    # -- detokenize -------------------------------------------------------------------------------
    def detokenize(self, token: str, *, tenant: str, caller: Caller) -> str:
        """Return the value behind ``token`` to an authorised ``caller``; every attempt is audited once.

        The tenant is the caller's, not the record's: a token of another tenant fails in KMS
        (:class:`EncryptionContextError`) even if the policy would allow it. Then the record's binding is
        checked (every stored field), then the subject's secret is read, then AES-GCM opens the value.
        If a refusal cannot be audited, the refusal is still raised, with ``audit_error`` set.

        Examples:
            >>> vault.detokenize(token, tenant="bank-a", caller=Caller("scheme-gateway", "scheme-submission"))
            ...     # doctest: +SKIP
            'GB82WEST12345698765432'

        Raises:
            InvalidReferenceError, UnknownTokenError: a malformed tenant or token (audited ``invalid-request``).
            DetokenizeDeniedError, VaultAccessDeniedError, UnknownTokenError, EncryptionContextError, TamperedCiphertextError, RecordFormatError, SubjectErasedError: refused, and audited as such.
            AuditWriteError: the value was readable but could not be audited, so it is not returned.
        """
        reference = token if isinstance(token, str) and _TOKEN_RE.fullmatch(token) else "invalid-token"
        audited_tenant = tenant if _is_ref(tenant) else "invalid-tenant"
        try:
            clear = self._open(token, tenant, caller)
        except _Refusal as refusal:
            self._refuse("detokenize", caller, audited_tenant, reference, refusal)
        except Exception as exc:
            self._audit_failure("detokenize", caller, audited_tenant, reference, exc)
            raise
        self._audit("detokenize", caller, audited_tenant, reference, AuditResult.ALLOWED)  # fails closed
        return clear

    def _open(self, token: str, tenant: str, caller: Caller) -> str:
        """The value behind ``token``, or :class:`_Refusal`; audits nothing (:meth:`detokenize` does)."""
        if not _is_ref(tenant):
            raise _Refusal(AuditResult.INVALID_REQUEST,
                           f"tenant is not 1-64 characters from [A-Za-z0-9._:-]: {_shape(tenant)}",
                           _ref_error("tenant", tenant))
        match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            raise _Refusal(AuditResult.INVALID_REQUEST, f"not a vault token: {_shape(token)}",
                           UnknownTokenError(f"not a vault token: {_shape(token)}; check the token"))
        cls = DataClass(match.group(2))
        if not self.policy.may_detokenize(caller, cls):
            raise _Refusal(AuditResult.DENIED_POLICY, f"no grant for {cls.value} / {caller.purpose}",
                           DetokenizeDeniedError(f"{caller.principal} may not detokenize {cls.value} "
                                                 f"for {caller.purpose!r}"))
        try:
            item = self._ddb.get_item(
                TableName=self.table_name, Key={"pk": {"S": f"TOKEN#{token}"}}, ConsistentRead=True
            ).get("Item")
            if item is None:
                raise _Refusal(AuditResult.UNKNOWN_TOKEN, "", UnknownTokenError(f"the vault holds no value for {token}"))
            text, blobs = self._stored_fields(token, item)
            try:  # KMS first: it checks the caller's tenant before anything else of the record is used
                data_key = self.data_keys.for_decryption(blobs["encrypted_data_key"], self._kms_context(tenant, cls))
            except ClientError as exc:
                if _code(exc) == "InvalidCiphertextException":
                    raise _Refusal(AuditResult.CONTEXT_MISMATCH, _aws_reason(exc),
                                   EncryptionContextError(f"{token} was not encrypted for tenant {tenant}"), exc) from None
                raise
            self._check_binding(token, item, text, blobs, data_key, tenant, cls)
            subject = text["subject"]
            secret = self._secret_to_read(tenant, subject, token)
            try:
                clear = AESGCM(self._value_key(data_key, secret, tenant, subject)).decrypt(
                    blobs["nonce"], blobs["ciphertext"], self._aad(token, text))
            except InvalidTag as exc:
                raise _Refusal(AuditResult.TAMPERED, "AES-GCM authentication failed",
                               TamperedCiphertextError(f"{token}: its subject's secret was altered"), exc) from None
        except ClientError as exc:
            if _code(exc) in _ACCESS_DENIED:
                raise _Refusal(AuditResult.DENIED_IAM, _aws_reason(exc),
                               VaultAccessDeniedError(f"detokenize refused by IAM: {exc}"), exc) from None
            raise
        return clear.decode("utf-8")

    # -- erase ------------------------------------------------------------------------------------
    def erase_subject(self, *, tenant: str, subject: str, caller: Caller) -> ErasureReceipt:
        """Crypto-shred a data subject: destroy their secret, so none of their values can be decrypted.

        Ciphertexts stay wherever they were copied (backups, streams, logs) and become useless. Tokenising
        for an erased subject is refused afterwards. Idempotent: erasing twice is not an error. Every
        attempt is audited, as :meth:`detokenize`'s are; if the erasure's own record cannot be written,
        the subject is erased all the same and :class:`AuditWriteError` is raised.

        Examples:
            >>> vault.erase_subject(tenant="bank-a", subject="cust-1", caller=Caller("dpo", "gdpr-art-17"))
            ...     # doctest: +SKIP
            ErasureReceipt(tenant='bank-a', subject='cust-1', ...)
        """
        audited_tenant = tenant if _is_ref(tenant) else "invalid-tenant"
        reference = f"subject:{subject}" if _is_ref(subject) else "invalid-subject"
        try:
            now = self._shred(tenant, subject, caller)
        except _Refusal as refusal:
            self._refuse("erase", caller, audited_tenant, reference, refusal)
        except Exception as exc:
            self._audit_failure("erase", caller, audited_tenant, reference, exc)
            raise
        event_id = self._audit("erase", caller, tenant, reference, AuditResult.ERASED)
        return ErasureReceipt(tenant, subject, now, event_id)

    def _shred(self, tenant: str, subject: str, caller: Caller) -> datetime:
        for kind, value in (("tenant", tenant), ("subject", subject)):
            if not _is_ref(value):
                raise _Refusal(AuditResult.INVALID_REQUEST,
                               f"{kind} is not 1-64 characters from [A-Za-z0-9._:-]: {_shape(value)}",
                               _ref_error(kind, value))
        if not self.policy.may_erase(caller):
            raise _Refusal(AuditResult.DENIED_POLICY, "not an eraser",
                           DetokenizeDeniedError(f"{caller.principal} may not erase data subjects"))
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
                raise _Refusal(AuditResult.DENIED_IAM, _aws_reason(exc),
                               VaultAccessDeniedError(f"erase refused by IAM: {exc}"), exc) from None
            raise
        return now

    # -- identity and audit -----------------------------------------------------------------------
    def caller_identity(self) -> str:
        """The ARN this vault's AWS clients authenticate as: STS ``GetCallerIdentity``, asked once per vault.

        Audit records name it as the principal. STS answers every authenticated caller, whatever its
        policies say, and the call is free.

        Examples:
            >>> vault.caller_identity()  # doctest: +SKIP
            'arn:aws:sts::123456789012:assumed-role/fasterpay-detokenizer/fasterpay-detokenizer'

        Raises:
            AuditWriteError: STS could not be asked, so no attempt can be audited under a known identity.
        """
        with self._identity_lock:
            if self._identity is None:
                try:
                    sts = self._sts if self._sts is not None else _sts_beside(self._kms)
                    self._identity = str(sts.get_caller_identity()["Arn"])
                except Exception as exc:  # any failure: nothing is audited under a guessed name
                    raise AuditWriteError(f"could not establish the vault's AWS identity: {exc}") from exc
            return self._identity

    def _audit(
        self, action: str, caller: Caller, tenant: str, reference: str, result: AuditResult, reason: str = ""
    ) -> str:
        event_id = str(uuid.uuid4())
        self.audit.append(
            AuditRecord(event_id, self._clock(), action, self.caller_identity(), caller.purpose, tenant, reference,
                        result, reason, claimed_principal=caller.principal)
        )
        return event_id

    def _refuse(self, action: str, caller: Caller, tenant: str, reference: str, refusal: _Refusal) -> NoReturn:
        """Audit ``refusal`` and raise its error; if the record cannot be written, raise it still, marked so."""
        try:
            self._audit(action, caller, tenant, reference, refusal.result, refusal.reason)
        except AuditWriteError as exc:
            refusal.error.audit_error = exc
            refusal.error.add_note(f"not audited: {exc}")
        raise refusal.error from refusal.cause

    def _audit_failure(self, action: str, caller: Caller, tenant: str, reference: str, exc: Exception) -> None:
        """Audit an unexpected error as ``failed``; the caller re-raises ``exc`` either way."""
        reason = _aws_reason(exc) if isinstance(exc, ClientError) else type(exc).__name__
        try:
            self._audit(action, caller, tenant, reference, AuditResult.FAILED, reason)
        except AuditWriteError as audit_exc:
            exc.add_note(f"not audited: {audit_exc}")

    # -- internals --------------------------------------------------------------------------------
    @staticmethod
    def _kms_context(tenant: str, cls: DataClass) -> dict[str, str]:
        return {"purpose": _PURPOSE, "tenant": tenant, "data_class": cls.value}

    @staticmethod
    def _aad(token: str, text: Mapping[str, str]) -> bytes:
        """AES-GCM associated data: the format version, the token and every text field of its record."""
        bound = {"v": _FORMAT_VERSION, "token": token, **{name: text[name] for name in _BOUND_TEXT}}
        return json.dumps(bound, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def _binding(cls, data_key: bytes, token: str, text: Mapping[str, str], blobs: Mapping[str, bytes]) -> bytes:
        """HMAC-SHA256 of every stored field (length-prefixed), keyed from the data key alone: checkable
        before the subject's secret is read, and after the subject is erased."""
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_BINDING_INFO).derive(data_key)
        mac = hmac.new(key, digestmod=hashlib.sha256)
        for part in (cls._aad(token, text), *(blobs[name] for name in _BOUND_BYTES)):
            mac.update(len(part).to_bytes(4, "big"))
            mac.update(part)
        return mac.digest()

    @staticmethod
    def _stored_fields(token: str, item: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, bytes]]:
        """The bound text and binary fields of a token's record; a missing or mistyped one is tampering."""
        fields: dict[str, Any] = {}
        for name, kind in [*((n, "S") for n in _BOUND_TEXT), *((n, "B") for n in _BOUND_BYTES)]:
            value = item.get(name, {}).get(kind) if isinstance(item.get(name), dict) else None
            if value is None:
                raise _Refusal(AuditResult.TAMPERED, f"missing {name}",
                               TamperedCiphertextError(f"{token}: its record is missing {name}"))
            fields[name] = value if kind == "S" else bytes(value)
        return ({n: fields[n] for n in _BOUND_TEXT}, {n: fields[n] for n in _BOUND_BYTES})

    def _check_binding(self, token: str, item: Mapping[str, Any], text: Mapping[str, str],
                       blobs: Mapping[str, bytes], data_key: bytes, tenant: str, cls: DataClass) -> None:
        """Refuse a record of an old format, or one whose stored fields are not those it was sealed with."""
        stored = item.get("binding", {}).get("B") if isinstance(item.get("binding"), dict) else None
        if stored is None:
            if text["alg"] in _LEGACY_ALGORITHMS:
                raise _Refusal(AuditResult.UNSUPPORTED_FORMAT, f"record format {text['alg']}", RecordFormatError(
                    f"{token} is a record of format v1 ({text['alg']}), which this vault does not read: "
                    "re-tokenise the value from its source (before release there is no migration)"))
            raise _Refusal(AuditResult.TAMPERED, "missing binding",
                           TamperedCiphertextError(f"{token}: its record is missing binding"))
        expected = self._binding(data_key, token, text, blobs)
        if not (hmac.compare_digest(expected, bytes(stored)) and text["tenant"] == tenant
                and text["data_class"] == cls.value):
            raise _Refusal(AuditResult.TAMPERED, "record binding failed",
                           TamperedCiphertextError(f"{token}: a stored field of its record was altered"))

    def _secret_to_read(self, tenant: str, subject: str, token: str) -> bytes:
        """The secret of a record's (authenticated) subject, or the refusal: erased, or its record tampered."""
        key = {"pk": {"S": f"SUBJECT#{tenant}#{subject}"}}
        item = self._ddb.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        if item is None:  # every record's subject was created before it; erasure keeps the subject's record
            raise _Refusal(AuditResult.TAMPERED, "subject record missing",
                           TamperedCiphertextError(f"{token}: the record of subject {subject} was deleted"))
        if item.get("status", {}).get("S") == "erased":
            raise _Refusal(AuditResult.SUBJECT_ERASED, f"subject {subject} erased",
                           SubjectErasedError(f"subject {subject} of tenant {tenant} was erased"))
        if "B" not in item.get("secret", {}):
            raise _Refusal(AuditResult.TAMPERED, "subject secret missing",
                           TamperedCiphertextError(f"{token}: subject {subject} has no secret but is not erased"))
        return bytes(item["secret"]["B"])

    @staticmethod
    def _value_key(data_key: bytes, secret: bytes, tenant: str, subject: str) -> bytes:
        info = f"{ALGORITHM}|{tenant}|{subject}".encode()
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=secret, info=info).derive(data_key)

    @staticmethod
    def _random_token(cls: DataClass) -> str:
        return f"tok_{cls.value}_{_b32(secrets.token_bytes(20))}"

    def _mac_token(self, canonical: str, cls: DataClass, tenant: str) -> str:
        if self.token_keys is None:
            raise VaultError("deterministic tokens need mac_key_id (an HMAC_256 KMS key)")
        message = json.dumps([tenant, cls.value, canonical], separators=(",", ":")).encode("utf-8")
        mac = self.token_keys.mac(tenant, cls.value, message)
        return f"dtk_{cls.value}_{_b32(mac[:20])}"

    @staticmethod
    def _checked(index: int, pair: Any) -> tuple[str, DataClass]:
        """``(canonical value, data class)`` of one ``(value, data_class)`` pair, or the error, naming its index."""
        try:
            value, data_class = pair
        except (TypeError, ValueError):
            raise InvalidValueError(f"values[{index}] must be a (value, data_class) pair, got {pair!r}") from None
        try:
            cls = parse_data_class(data_class)
            return normalise(value, cls), cls
        except ValueError as exc:
            raise type(exc)(f"values[{index}]: {exc}") from exc

    def _sealed_record(self, token: str, canonical: str, cls: DataClass, tenant: str, subject: str,
                       data_key: DataKey, secret: bytes) -> dict[str, Any]:
        """The vault item of ``token`` (format v2): ``canonical`` sealed with AES-256-GCM under the value key,
        every text field in the associated data, and the record binding over every field."""
        text = {"tenant": tenant, "data_class": cls.value, "subject": subject, "alg": ALGORITHM,
                "kms_key_id": data_key.key_id, "created_at": self._clock().isoformat()}
        nonce = os.urandom(12)
        sealed = AESGCM(self._value_key(data_key.plaintext, secret, tenant, subject)).encrypt(
            nonce, canonical.encode("utf-8"), self._aad(token, text)
        )
        blobs = {"nonce": nonce, "ciphertext": sealed, "encrypted_data_key": data_key.encrypted}
        return {
            "pk": {"S": f"TOKEN#{token}"},
            **{name: {"S": value} for name, value in text.items()},
            **{name: {"B": value} for name, value in blobs.items()},
            "binding": {"B": self._binding(data_key.plaintext, token, text, blobs)},
        }

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(0.05 * 2 ** (attempt - 1), 1.0)

    def _batch_get(self, keys: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The items of ``keys`` that exist, by ``pk`` (only ``pk``, ``status`` and ``secret`` are read)."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), _BATCH_GET_KEYS):
            request: dict[str, Any] = {self.table_name: {
                "Keys": keys[start:start + _BATCH_GET_KEYS],
                "ConsistentRead": True,
                "ProjectionExpression": "#pk, #status, #secret",
                "ExpressionAttributeNames": {"#pk": "pk", "#status": "status", "#secret": "secret"},
            }}
            attempt = 0
            while request:
                if attempt == _BATCH_ATTEMPTS:
                    left = len(request[self.table_name]["Keys"])
                    raise BatchIncompleteError(
                        f"DynamoDB left {left} of {len(keys)} keys unread after {attempt} BatchGetItem attempts; "
                        "nothing was written, call again")
                if attempt:
                    self._sleep(self._backoff(attempt))
                reply = self._ddb.batch_get_item(RequestItems=request)
                for item in reply.get("Responses", {}).get(self.table_name, []):
                    found[item["pk"]["S"]] = item
                request = reply.get("UnprocessedKeys") or {}
                attempt += 1
        return found

    def _batch_write(self, items: list[dict[str, Any]]) -> None:
        """Put ``items`` with ``BatchWriteItem``, 25 per call, retrying unprocessed items with back-off."""
        for start in range(0, len(items), _BATCH_WRITE_ITEMS):
            chunk = items[start:start + _BATCH_WRITE_ITEMS]
            request: dict[str, Any] = {self.table_name: [{"PutRequest": {"Item": item}} for item in chunk]}
            attempt = 0
            while request:
                if attempt == _BATCH_ATTEMPTS:
                    left = len(request[self.table_name])
                    raise BatchIncompleteError(
                        f"DynamoDB left {left} of {len(items)} token records unwritten after {attempt} "
                        "BatchWriteItem attempts; no token was returned, call again")
                if attempt:
                    self._sleep(self._backoff(attempt))
                request = self._ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
                attempt += 1

    @staticmethod
    def _secret_in(item: dict[str, Any] | None, tenant: str, subject: str, *, refuse_erased: bool) -> bytes | None:
        """The secret in a subject item; ``None`` if there is no item, or it was erased and not ``refuse_erased``."""
        if item is None:
            return None
        if item.get("status", {}).get("S") == "erased" or "secret" not in item:
            if refuse_erased:
                raise SubjectErasedError(f"subject {subject} of tenant {tenant} was erased")
            return None
        return bytes(item["secret"]["B"])

    def _subject_secret(self, tenant: str, subject: str, *, refuse_erased: bool) -> bytes | None:
        """The subject's secret (consistent read); ``None`` if it has none yet or, unless refused, was erased."""
        key = {"pk": {"S": f"SUBJECT#{tenant}#{subject}"}}
        item = self._ddb.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        return self._secret_in(item, tenant, subject, refuse_erased=refuse_erased)

    def _create_subject_secret(self, tenant: str, subject: str) -> bytes:
        """A new secret for ``subject`` (conditional put); if another tokenizer created one first, theirs."""
        secret = secrets.token_bytes(32)
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item={"pk": {"S": f"SUBJECT#{tenant}#{subject}"}, "secret": {"B": secret},
                      "status": {"S": "active"}, "created_at": {"S": self._clock().isoformat()}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            return secret
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
        theirs = self._subject_secret(tenant, subject, refuse_erased=True)  # or SubjectErasedError, if erased since
        if theirs is None:
            raise VaultError(f"could not read or create the secret of subject {subject}")
        return theirs

