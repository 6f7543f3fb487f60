"""Benchmarks of the audit trail (:mod:`fasterpay.audit`), so the notebook stays thin.

* :func:`benchmark_trail`: append throughput through an :class:`AuditTrail` writing to S3 and signing
  with KMS (wall time on the current backend, "measured on moto" in this guide), with the S3 writes
  and KMS signs per 10k entries counted by the metering hooks, the request cost computed from the
  dated price table, and the latency an appender waits modelled from the stated latency model.
* :func:`proof_scaling`: proof sizes (counted) and verification time (CPU time of this process, no
  AWS involved) as the log grows, from one tree built once to the largest size.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fasterpay.audit.checkpoints import KmsCheckpointSigner
from fasterpay.audit.entries import AuditEntry
from fasterpay.audit.log import AuditTrail
from fasterpay.audit.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from fasterpay.audit.store import S3AuditStore
from fasterpay.faults import DEFAULT_LATENCY_MODEL, FaultInjector, LatencyModel
from fasterpay.metering import ApiCallMeter, MeterSnapshot
from fasterpay.metrics import percentile
from fasterpay.pricing import cost_of, per_10k

__all__ = ["ProofScalingRow", "TrailStats", "benchmark_trail", "proof_scaling", "synthetic_entries",
           "tree_append_rate"]


def synthetic_entries(count: int, seed: int, *, start: datetime | None = None) -> list[AuditEntry]:
    """Seeded payment status changes, by reference only (EndToEndId, UETR, status).

    Examples:
        >>> synthetic_entries(1, seed=1)[0].kind
        'payment.status'
    """
    rng = random.Random(seed)
    at = start or datetime(2026, 11, 28, 9, tzinfo=UTC)
    statuses = ("ACTC", "ACSP", "ACSC")
    out = []
    for i in range(count):
        uetr = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        out.append(AuditEntry("payment.status", "svc-pipeline", f"E2E-{seed % 1000:03d}-{i:08d}",
                              statuses[i % 3], at + timedelta(milliseconds=i), {"uetr": uetr}))
    return out


@dataclass(frozen=True)
class TrailStats:
    """One series of :func:`benchmark_trail`: wall time, metered calls, and modelled waits per append."""

    series: str
    entries: int
    batch_size: int
    wall_seconds: float
    calls: MeterSnapshot
    modelled_ms: tuple[float, ...] = field(repr=False)  # per append, what the appender waited

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.wall_seconds

    def per_10k(self, service: str, operation: str) -> Decimal:
        return Decimal(self.calls.count(service=service, operation=operation) * 10_000) / self.entries

    @property
    def s3_puts_per_10k(self) -> Decimal:
        return self.per_10k("s3", "PutObject")

    @property
    def kms_signs_per_10k(self) -> Decimal:
        return self.per_10k("kms", "Sign")

    @property
    def cost_per_10k(self) -> Decimal:
        return per_10k(cost_of(self.calls).total, self.entries)

    def modelled_percentile(self, q: float) -> float:
        """The ``q``-th percentile of the modelled wait per append, by :func:`fasterpay.metrics.percentile`."""
        return percentile(self.modelled_ms, q)


def benchmark_trail(
    s3: Any,
    kms: Any,
    bucket: str,
    signing_key_arn: str,
    *,
    series: str,
    entries: int,
    batch_size: int,
    seed: int,
    latency: LatencyModel = DEFAULT_LATENCY_MODEL,
) -> TrailStats:
    """Append ``entries`` seeded status changes through a trail on S3 + KMS, then close it.

    Each series writes under a prefix of its own, so series never collide in the bucket.

    Examples:
        >>> stats = benchmark_trail(s3, kms, res.bucket, res.signing_key_arn, series="batched",  # doctest: +SKIP
        ...                         entries=10_000, batch_size=100, seed=7)
        >>> stats.kms_signs_per_10k  # doctest: +SKIP (a checkpoint per flush: per batch of 100)
        Decimal('100')
    """
    meter = ApiCallMeter()
    faults = FaultInjector(latency=latency, seed=seed)
    for client in (s3, kms):
        meter.attach(client)
        faults.attach(client)
    prefix = "bench/" + "".join(c if c.isalnum() else "-" for c in series.lower())[:40] + "/"
    trail = AuditTrail(store=S3AuditStore(s3, bucket, prefix=prefix), signer=KmsCheckpointSigner(kms, signing_key_arn),
                       origin="bench/" + prefix.split("/")[1], batch_size=batch_size)
    workload = synthetic_entries(entries, seed)
    before = meter.snapshot()
    modelled: list[float] = []
    start = time.perf_counter()
    for entry in workload:
        with faults.span() as span:
            trail.append(entry)
        modelled.append(span.modelled_seconds * 1000)
    with faults.span() as span:
        trail.close()
    modelled[-1] += span.modelled_seconds * 1000
    wall = time.perf_counter() - start
    return TrailStats(series, entries, batch_size, wall, meter.snapshot() - before, tuple(modelled))


def tree_append_rate(entries: int, *, batched: bool) -> float:
    """Leaves per second into a bare :class:`MerkleTree` (CPU only): one call per entry, or one ``extend``.

    Examples:
        >>> tree_append_rate(1_000, batched=True) > 0
        True
    """
    payloads = [i.to_bytes(8, "big") * 16 for i in range(entries)]  # 128-byte entries
    tree = MerkleTree()
    start = time.perf_counter()
    if batched:
        tree.extend(payloads)
    else:
        for payload in payloads:
            tree.append(payload)
    return entries / (time.perf_counter() - start)


@dataclass(frozen=True)
class ProofScalingRow:
    """Proof sizes (largest and mean, in hashes) and verification times at one tree size."""

    tree_size: int
    inclusion_hashes_max: int
    inclusion_hashes_mean: float
    consistency_hashes_max: int
    inclusion_verify_us: float  # CPU time per verification, this machine
    consistency_verify_us: float
    samples: int


def proof_scaling(sizes: Sequence[int], *, samples: int, seed: int) -> tuple[list[ProofScalingRow], float]:
    """Proof sizes and verification times at each size; also returns the build rate (leaves/s).

    One tree is built to ``max(sizes)``; smaller sizes are earlier versions of it, which the tree
    answers for directly. For each size, ``samples`` random leaves get an inclusion proof and
    ``samples`` random earlier sizes a consistency proof; each proof is checked, then timed.

    Examples:
        >>> rows, _ = proof_scaling([1_000, 2_000], samples=5, seed=1)
        >>> [r.inclusion_hashes_max for r in rows]
        [10, 11]
    """
    rng = random.Random(seed)
    largest = max(sizes)
    tree = MerkleTree()
    start = time.perf_counter()
    for i in range(largest):
        tree.append(i.to_bytes(8, "big"))
    build_rate = largest / (time.perf_counter() - start)
    rows = []
    for n in sorted(sizes):
        root = tree.root(n)
        incl, cons = [], []
        for _ in range(samples):
            index = rng.randrange(n)
            proof = tree.inclusion_proof(index, n)
            verify_inclusion(leaf_hash(index.to_bytes(8, "big")), index, n, proof, root)
            incl.append((index, proof))
            old = rng.randrange(1, n)
            cproof = tree.consistency_proof(old, n)
            verify_consistency(old, n, tree.root(old), root, cproof)
            cons.append((old, tree.root(old), cproof))
        leaves = [leaf_hash(i.to_bytes(8, "big")) for i, _ in incl]
        t0 = time.perf_counter()
        for (index, proof), leaf in zip(incl, leaves, strict=True):
            verify_inclusion(leaf, index, n, proof, root)
        t1 = time.perf_counter()
        for old, old_root, cproof in cons:
            verify_consistency(old, n, old_root, root, cproof)
        t2 = time.perf_counter()
        rows.append(ProofScalingRow(
            tree_size=n,
            inclusion_hashes_max=max(len(p) for _, p in incl),
            inclusion_hashes_mean=statistics.fmean(len(p) for _, p in incl),
            consistency_hashes_max=max(len(c) for _, _, c in cons),
            inclusion_verify_us=(t1 - t0) / samples * 1e6,
            consistency_verify_us=(t2 - t1) / samples * 1e6,
            samples=samples,
        ))
    return rows, build_rate
