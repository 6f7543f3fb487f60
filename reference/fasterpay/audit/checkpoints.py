"""Signed checkpoints: (origin, tree size, root hash, time), signed by a KMS asymmetric key.

A checkpoint's body has the shape of a C2SP ``tlog-checkpoint`` note: the log's origin, the tree size
in decimal, the root hash in base64, then one extension line ``time <UTC timestamp>``. The signature
line follows a blank line, as in a signed note: ``— <origin> <base64(key id || signature)>``, where the
key id is the first 4 bytes of SHA-256 of the public key (DER) and the signature is ECDSA P-256 over
SHA-256 of the body (KMS ``Sign``, ``ECDSA_SHA_256``, ``MessageType=RAW``). The signature scheme is
ours: generic signed-note verifiers, which expect Ed25519, will not accept it.

Anyone holding only the public key (PEM) can verify a checkpoint with :func:`verify_checkpoint`; the
private key never leaves KMS. :class:`LocalCheckpointSigner` signs in process, for tests and offline
demonstrations only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .merkle import HASH_SIZE

__all__ = [
    "SIGNING_ALGORITHM",
    "Checkpoint",
    "CheckpointError",
    "CheckpointSignatureError",
    "CheckpointSigner",
    "KmsCheckpointSigner",
    "LocalCheckpointSigner",
    "MalformedCheckpointError",
    "PublicKeyError",
    "SignedCheckpoint",
    "WrongKeyError",
    "key_id",
    "load_public_key",
    "sign_checkpoint",
    "verify_checkpoint",
]

SIGNING_ALGORITHM = "ECDSA_SHA_256"
_ORIGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")
_DASH = "\u2014"
_MAX_NOTE = 1024


class CheckpointError(ValueError):
    """A checkpoint could not be trusted; the message says why."""


class MalformedCheckpointError(CheckpointError):
    """The checkpoint text is not in the expected format (a corrupt or truncated file)."""


class CheckpointSignatureError(CheckpointError):
    """The signature does not verify with the given public key: the checkpoint was forged or altered."""


class WrongKeyError(CheckpointSignatureError):
    """The checkpoint names a different key than the one given: check which public key you were sent."""


class PublicKeyError(ValueError):
    """The public key could not be used: give the PEM of the log's ECC_NIST_P256 signing key."""


def load_public_key(pem: bytes | str) -> ec.EllipticCurvePublicKey:
    """Load a PEM (or DER) SubjectPublicKeyInfo of a P-256 key.

    Examples:
        >>> load_public_key(b"not a key")
        Traceback (most recent call last):
        ...
        fasterpay.audit.checkpoints.PublicKeyError: cannot read the public key: ...
    """
    data = pem.encode() if isinstance(pem, str) else bytes(pem)
    try:
        key = (serialization.load_pem_public_key(data) if data.lstrip().startswith(b"-----")
               else serialization.load_der_public_key(data))
    except (ValueError, TypeError) as exc:
        raise PublicKeyError(f"cannot read the public key: {exc}; give a PEM 'PUBLIC KEY' block") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise PublicKeyError("the public key is not an ECC_NIST_P256 (secp256r1) key")
    return key


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """First 4 bytes of SHA-256 of the key's DER SubjectPublicKeyInfo.

    Examples:
        >>> len(key_id(LocalCheckpointSigner.generate().public_key()))
        4
    """
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """What a signature commits to: the log ``origin`` had ``tree_size`` entries with ``root_hash`` at ``timestamp``."""

    origin: str
    tree_size: int
    root_hash: bytes
    timestamp: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not _ORIGIN.fullmatch(self.origin):
            raise ValueError(f"origin must be 1-128 of letters, digits, . _ / -, got {self.origin!r}")
        if isinstance(self.tree_size, bool) or not isinstance(self.tree_size, int) or self.tree_size < 0:
            raise ValueError(f"tree_size must be a whole number >= 0, got {self.tree_size!r}")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"root_hash must be {HASH_SIZE} bytes")
        if not isinstance(self.timestamp, datetime) or self.timestamp.tzinfo is None:
            raise ValueError("timestamp must be a timezone-aware datetime")
        at = self.timestamp.astimezone(UTC)  # the note keeps milliseconds: so does the object
        object.__setattr__(self, "timestamp", at.replace(microsecond=at.microsecond // 1000 * 1000))

    def body(self) -> bytes:
        """The signed text: origin, size, base64 root, ``time`` line, each ending in a newline."""
        at = self.timestamp.astimezone(UTC)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        root = base64.b64encode(self.root_hash).decode()
        return f"{self.origin}\n{self.tree_size}\n{root}\ntime {stamp}\n".encode()


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with its signature and the id of the key that made it."""

    checkpoint: Checkpoint
    key_id: bytes
    signature: bytes

    @property
    def tree_size(self) -> int:
        return self.checkpoint.tree_size

    @property
    def root_hash(self) -> bytes:
        return self.checkpoint.root_hash

    def to_text(self) -> str:
        """The note as stored: body, blank line, signature line.

        Examples:
            >>> signed.to_text().splitlines()[1]  # doctest: +SKIP
            '1000'
        """
        sig = base64.b64encode(self.key_id + self.signature).decode()
        return self.checkpoint.body().decode() + f"\n{_DASH} {self.checkpoint.origin} {sig}\n"

    @classmethod
    def from_text(cls, text: str | bytes) -> SignedCheckpoint:
        """Parse a stored note; raises :class:`MalformedCheckpointError` saying what is wrong.

        The text must be exactly what :meth:`to_text` writes, so one checkpoint has one spelling and any
        changed byte is either a different checkpoint (whose signature fails) or a refused note.

        Examples:
            >>> SignedCheckpoint.from_text("bank-a/audit\\n1\\n")
            Traceback (most recent call last):
            ...
            fasterpay.audit.checkpoints.MalformedCheckpointError: expected 4 body lines (origin, size, root, time), ...
        """
        if isinstance(text, bytes):
            if len(text) > _MAX_NOTE:
                raise MalformedCheckpointError(f"{len(text)} bytes: a checkpoint note is under {_MAX_NOTE}")
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedCheckpointError("not UTF-8 text") from None
        if len(text) > _MAX_NOTE:
            raise MalformedCheckpointError(f"{len(text)} characters: a checkpoint note is under {_MAX_NOTE}")
        if not text.endswith("\n"):
            raise MalformedCheckpointError("truncated: the note does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 6 or lines[4] != "":
            raise MalformedCheckpointError(
                "expected 4 body lines (origin, size, root, time), a blank line and a signature line")
        origin, size, root, time_line, _, sig_line = lines
        if not size.isdigit() or (size != "0" and size.startswith("0")) or len(size) > 19:
            raise MalformedCheckpointError(f"tree size {size[:30]!r} is not a decimal number")
        try:
            root_hash = base64.b64decode(root, validate=True)
        except binascii.Error:
            raise MalformedCheckpointError("the root hash is not base64") from None
        if not time_line.startswith("time "):
            raise MalformedCheckpointError("the fourth line must be 'time <UTC timestamp>'")
        try:
            at = datetime.strptime(time_line[5:], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            raise MalformedCheckpointError(f"unreadable time {time_line[5:40]!r}") from None
        parts = sig_line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH or parts[1] != origin:
            raise MalformedCheckpointError("the signature line must be '— <origin> <base64 signature>'")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise MalformedCheckpointError("the signature is not base64") from None
        if len(blob) < 4 + 8:
            raise MalformedCheckpointError("the signature is too short")
        try:
            checkpoint = Checkpoint(origin, int(size), root_hash, at)
        except ValueError as exc:
            raise MalformedCheckpointError(str(exc)) from None
        signed = cls(checkpoint, blob[:4], blob[4:])
        if signed.to_text() != text:  # e.g. base64 with stray padding bits, or a time without milliseconds
            raise MalformedCheckpointError(
                "not in canonical form: the note differs from the one its content gives (time or base64 spelling)")
        return signed


class CheckpointSigner(Protocol):
    """Signs checkpoint bodies and publishes the public key that verifies them."""

    def sign(self, message: bytes) -> bytes: ...

    def public_key(self) -> ec.EllipticCurvePublicKey: ...


class KmsCheckpointSigner:
    """Signs with a KMS ``ECC_NIST_P256`` / ``SIGN_VERIFY`` key: one ``kms:Sign`` per checkpoint.

    Examples:
        >>> signer = KmsCheckpointSigner(kms, "arn:aws:kms:...:key/...")  # doctest: +SKIP
        >>> pem = signer.public_key_pem()  # give this to auditors  # doctest: +SKIP
    """

    def __init__(self, kms: Any, key_id: str) -> None:
        self._kms = kms
        self.key_id = key_id
        self._public: ec.EllipticCurvePublicKey | None = None

    def sign(self, message: bytes) -> bytes:
        response = self._kms.sign(KeyId=self.key_id, Message=message, MessageType="RAW",
                                  SigningAlgorithm=SIGNING_ALGORITHM)
        return bytes(response["Signature"])

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The verifying key, from ``kms:GetPublicKey`` (fetched once)."""
        if self._public is None:
            self._public = load_public_key(self._kms.get_public_key(KeyId=self.key_id)["PublicKey"])
        return self._public

    def public_key_pem(self) -> bytes:
        return self.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)


class LocalCheckpointSigner:
    """An in-process P-256 key, for tests and offline demos: never for a production log.

    Examples:
        >>> signer = LocalCheckpointSigner.generate()
        >>> len(signer.public_key_pem()) > 100
        True
    """

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._private = private_key

    @classmethod
    def generate(cls) -> LocalCheckpointSigner:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message, ec.ECDSA(hashes.SHA256()))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._private.public_key()

    def public_key_pem(self) -> bytes:
        return self.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)


def sign_checkpoint(signer: CheckpointSigner, checkpoint: Checkpoint) -> SignedCheckpoint:
    """Sign ``checkpoint``'s body.

    Examples:
        >>> cp = Checkpoint("bank-a/audit", 0, bytes(32), datetime(2026, 1, 1, tzinfo=UTC))
        >>> signer = LocalCheckpointSigner.generate()
        >>> verify_checkpoint(sign_checkpoint(signer, cp), signer.public_key())
    """
    return SignedCheckpoint(checkpoint, key_id(signer.public_key()), signer.sign(checkpoint.body()))


def verify_checkpoint(signed: SignedCheckpoint, public_key: ec.EllipticCurvePublicKey | bytes | str) -> None:
    """Raise unless ``signed`` was signed by ``public_key``'s private key over exactly its body.

    Raises :class:`WrongKeyError` when the note names another key, :class:`CheckpointSignatureError`
    when the signature does not match the body.

    Examples:
        >>> signed = SignedCheckpoint.from_text(Path("000000001000.note").read_text())  # doctest: +SKIP
        >>> verify_checkpoint(signed, Path("audit-signing-key.pem").read_bytes())  # doctest: +SKIP
    """
    key = public_key if isinstance(public_key, ec.EllipticCurvePublicKey) else load_public_key(public_key)
    expected = key_id(key)
    if signed.key_id != expected:
        raise WrongKeyError(
            f"checkpoint {signed.tree_size} was signed by key {signed.key_id.hex()}, "
            f"but the public key given is {expected.hex()}: is it the right key for this log?")
    try:
        key.verify(signed.signature, signed.checkpoint.body(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise CheckpointSignatureError(
            f"checkpoint {signed.tree_size}: the signature does not match its content (forged or altered)"
        ) from None
