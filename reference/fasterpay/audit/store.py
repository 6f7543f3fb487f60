"""Where the log lives: segments and checkpoints in S3 with Object Lock (COMPLIANCE), or in memory.

Layout, the same in the bucket and in an export folder::

    segments/000000000000-000000000100.jsonl   entries [0, 100), one canonical JSON entry per line
    checkpoints/000000000100.note               the signed checkpoint at tree size 100

Every object is written with ``If-None-Match: *``, so an existing key is never overwritten by the log
writer, and the bucket's default retention (COMPLIANCE mode) locks each version for the retention
period: nobody, not even the account root, can delete or shorten it on AWS. A ``DeleteObject``
without a version id only adds a delete marker; the locked version stays and can be read by id.
:meth:`S3AuditStore.version_findings` names keys that have more than one version or a delete marker.

moto enforces the refusal to delete a locked version and ``If-None-Match``, but lets COMPLIANCE
retention be shortened (AWS refuses) and does not implement ``GetObjectRetention`` (use
``HeadObject``, as :meth:`S3AuditStore.retention` does).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from .checkpoints import SignedCheckpoint

__all__ = [
    "CHECKPOINTS_DIR",
    "SEGMENTS_DIR",
    "AuditStore",
    "AuditStoreError",
    "InMemoryAuditStore",
    "ObjectExistsError",
    "Retention",
    "S3AuditStore",
    "checkpoint_name",
    "segment_name",
    "write_export",
]

SEGMENTS_DIR = "segments"
CHECKPOINTS_DIR = "checkpoints"


class AuditStoreError(RuntimeError):
    """Storage refused or failed a write: the entries are not durable, so do not acknowledge them."""


class ObjectExistsError(AuditStoreError):
    """The key exists already: the log never overwrites. Another writer may be using this log origin."""


def segment_name(first: int, end: int) -> str:
    """Key of the segment holding entries ``[first, end)``.

    Examples:
        >>> segment_name(0, 100)
        'segments/000000000000-000000000100.jsonl'
    """
    return f"{SEGMENTS_DIR}/{first:012d}-{end:012d}.jsonl"


def checkpoint_name(tree_size: int) -> str:
    """Key of the checkpoint at ``tree_size``.

    Examples:
        >>> checkpoint_name(100)
        'checkpoints/000000000100.note'
    """
    return f"{CHECKPOINTS_DIR}/{tree_size:012d}.note"


class AuditStore(Protocol):
    """Write-once storage for segments and checkpoints."""

    def put_segment(self, first: int, end: int, body: bytes) -> None: ...

    def put_checkpoint(self, signed: SignedCheckpoint) -> None: ...

    def objects(self) -> dict[str, bytes]: ...


class InMemoryAuditStore:
    """Segments and checkpoints in a dict, write-once like the bucket: for tests and the notebook."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, bytes] = {}

    def _put(self, key: str, body: bytes) -> None:
        with self._lock:
            if key in self._objects:
                raise ObjectExistsError(f"{key} exists already; the log never overwrites")
            self._objects[key] = bytes(body)

    def put_segment(self, first: int, end: int, body: bytes) -> None:
        self._put(segment_name(first, end), body)

    def put_checkpoint(self, signed: SignedCheckpoint) -> None:
        self._put(checkpoint_name(signed.tree_size), signed.to_text().encode())

    def objects(self) -> dict[str, bytes]:
        """Every object by key (a copy)."""
        with self._lock:
            return dict(self._objects)


@dataclass(frozen=True)
class Retention:
    """An object version's lock, as ``HeadObject`` reports it."""

    mode: str | None
    retain_until: datetime | None


class S3AuditStore:
    """Segments and checkpoints in an S3 bucket with Object Lock; takes the client, never builds one.

    Examples:
        >>> store = S3AuditStore(s3, "fasterpay-audit-123456789012-eu-west-2")  # doctest: +SKIP
        >>> store.put_segment(0, 2, b'{...}\\n{...}\\n')  # doctest: +SKIP
    """

    def __init__(self, s3: Any, bucket: str, *, prefix: str = "") -> None:
        if prefix and not prefix.endswith("/"):
            raise ValueError("prefix must be empty or end with '/'")
        self._s3 = s3
        self.bucket = bucket
        self.prefix = prefix

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=body, IfNoneMatch="*",
                                ContentType=content_type, ChecksumAlgorithm="SHA256")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise ObjectExistsError(f"{key} exists already in {self.bucket}; the log never overwrites") from exc
            raise AuditStoreError(f"could not write {key} to {self.bucket}: {code}") from exc

    def put_segment(self, first: int, end: int, body: bytes) -> None:
        self._put(segment_name(first, end), body, "application/x-ndjson")

    def put_checkpoint(self, signed: SignedCheckpoint) -> None:
        self._put(checkpoint_name(signed.tree_size), signed.to_text().encode(), "text/plain; charset=utf-8")

    def keys(self) -> list[str]:
        """Current keys (without the prefix), sorted."""
        out: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            out.extend(o["Key"][len(self.prefix):] for o in page.get("Contents", []))
        return sorted(out)

    def objects(self) -> dict[str, bytes]:
        """The current version of every object, by key (needs ``s3:ListBucket`` and ``s3:GetObject``)."""
        return {key: self._s3.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
                for key in self.keys()}

    def retention(self, key: str, version_id: str | None = None) -> Retention:
        """Lock mode and retain-until date of a version (from ``HeadObject``)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + key}
        if version_id:
            kwargs["VersionId"] = version_id
        head = self._s3.head_object(**kwargs)
        return Retention(head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate"))

    def version_findings(self) -> list[str]:
        """Keys with more than one version or with a delete marker: each is a sign of tampering.

        The locked original versions are still there; read them with ``GetObject`` and ``VersionId``.
        """
        versions: dict[str, int] = {}
        markers: set[str] = set()
        paginator = self._s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for v in page.get("Versions", []):
                versions[v["Key"]] = versions.get(v["Key"], 0) + 1
            for m in page.get("DeleteMarkers", []):
                markers.add(m["Key"])
        findings = [f"{k[len(self.prefix):]}: {n} versions (overwritten)" for k, n in sorted(versions.items()) if n > 1]
        findings += [f"{k[len(self.prefix):]}: delete marker (the locked version is still there)"
                     for k in sorted(markers)]
        return findings

    def export(self, directory: Path | str) -> Path:
        """Download the current version of every object into ``directory`` (the verifier's input)."""
        return write_export(directory, self.objects())


def write_export(directory: Path | str, objects: dict[str, bytes]) -> Path:
    """Write ``objects`` (key → bytes, keys as in the bucket) under ``directory``; returns the folder.

    Examples:
        >>> write_export(tmp_path / "export", store.objects())  # doctest: +SKIP
    """
    root = Path(directory)
    (root / SEGMENTS_DIR).mkdir(parents=True, exist_ok=True)
    (root / CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
    for key, body in objects.items():
        folder, _, name = key.partition("/")
        if folder not in (SEGMENTS_DIR, CHECKPOINTS_DIR) or not name or "/" in name or name.startswith("."):
            raise AuditStoreError(f"unexpected key {key!r} in the audit store; not exported")
        (root / folder / name).write_bytes(body)
    return root
