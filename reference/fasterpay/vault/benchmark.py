"""Benchmarks of the vault, side by side in one run: a KMS call per item vs cached data keys.

For each series the same seeded workload is tokenised and then detokenised. Reported per operation:
wall time on the current backend ("measured on moto" in this guide), API calls metered per service,
KMS requests per 10k operations, request cost per 10k from the dated price table, and latency
modelled from the stated per-call latency model (virtual time: nothing sleeps).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fasterpay.faults import DEFAULT_LATENCY_MODEL, FaultInjector, LatencyModel
from fasterpay.metering import ApiCallMeter, MeterSnapshot
from fasterpay.pricing import cost_of, per_10k

from .audit import DynamoDbAuditLog
from .core import Vault
from .datakeys import DataKeyCachePolicy
from .policy import Caller, VaultPolicy

__all__ = ["BenchmarkPolicy", "OperationStats", "benchmark_vault", "percentile", "synthetic_iban", "sweep_max_uses"]

#: The caller the benchmark detokenizes as.
BENCH_CALLER = Caller("scheme-gateway", "scheme-submission")
BenchmarkPolicy = VaultPolicy.of(grants=[(BENCH_CALLER.principal, ["iban", "name"], [BENCH_CALLER.purpose])])


def synthetic_iban(rng: random.Random) -> str:
    """A valid, made-up UK IBAN (bank code ``FAKE``) from ``rng``.

    Examples:
        >>> synthetic_iban(random.Random(1))[:8]
        'GB05FAKE'
    """
    bban = "FAKE" + "".join(str(rng.randrange(10)) for _ in range(14))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + "GB00")) % 97
    return f"GB{check:02d}{bban}"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[min(max(int(q), 1), 99) - 1]


@dataclass(frozen=True)
class OperationStats:
    series: str
    operation: str
    operations: int
    wall_seconds: float
    calls: MeterSnapshot
    modelled_ms: tuple[float, ...] = field(repr=False)

    @property
    def ops_per_second(self) -> float:
        return self.operations / self.wall_seconds

    @property
    def kms_requests(self) -> int:
        return self.calls.count(service="kms")

    @property
    def kms_per_10k(self) -> Decimal:
        return Decimal(self.kms_requests * 10_000) / self.operations

    @property
    def api_calls_per_op(self) -> Decimal:
        return Decimal(self.calls.count()) / self.operations

    @property
    def cost_per_10k(self) -> Decimal:
        return per_10k(cost_of(self.calls).total, self.operations)

    def modelled_percentile(self, q: float) -> float:
        return percentile(self.modelled_ms, q)


def _timed(operations: Sequence[Callable[[], Any]], meter: ApiCallMeter, faults: FaultInjector,
           series: str, name: str) -> tuple[list[Any], OperationStats]:
    before = meter.snapshot()
    results, modelled = [], []
    start = time.perf_counter()
    for op in operations:
        with faults.span() as span:
            results.append(op())
        modelled.append(span.modelled_seconds * 1000)
    wall = time.perf_counter() - start
    return results, OperationStats(series, name, len(operations), wall, meter.snapshot() - before, tuple(modelled))


def benchmark_vault(
    env: Any,
    resources: Any,
    *,
    series: str,
    cache: DataKeyCachePolicy,
    operations: int,
    seed: int,
    subjects: int = 500,
    latency: LatencyModel = DEFAULT_LATENCY_MODEL,
) -> tuple[OperationStats, OperationStats]:
    """Tokenise ``operations`` seeded IBANs for ``subjects`` data subjects, then detokenise them all.

    Detokenize writes its audit record to the vault's DynamoDB audit table, so its cost is included.
    Each series uses a tenant of its own, so no series finds subject records another one created.
    """
    tenant = "bench-" + "".join(c if c.isalnum() else "-" for c in series.lower())[:40]
    from .stack import vault_as_role

    rng = random.Random(seed)
    meter = ApiCallMeter()
    faults = FaultInjector(latency=latency, seed=seed)

    def instrument(client: Any) -> None:
        meter.attach(client)
        faults.attach(client)

    vault: Vault = vault_as_role(env, resources, None, policy=BenchmarkPolicy, cache=cache, instrument=instrument)
    vault.audit = DynamoDbAuditLog(vault._ddb, resources.audit_table)
    workload = [(synthetic_iban(rng), f"cust-{rng.randrange(subjects)}") for _ in range(operations)]
    tokens, tokenize = _timed(
        [lambda v=v, s=s: vault.tokenize(v, "iban", tenant=tenant, subject=s) for v, s in workload],
        meter, faults, series, "tokenize")
    clear, detokenize = _timed(
        [lambda t=t: vault.detokenize(t, tenant=tenant, caller=BENCH_CALLER) for t in tokens],
        meter, faults, series, "detokenize")
    if clear != [v for v, _ in workload]:
        raise AssertionError("a detokenised value differs from the value tokenised")  # never silently wrong
    return tokenize, detokenize


def sweep_max_uses(env: Any, resources: Any, *, max_uses: Sequence[int], operations: int, seed: int,
                   max_age_seconds: float = 300.0) -> list[tuple[int, Decimal]]:
    """KMS requests per 10k tokenisations for each data-key ``max_uses`` bound."""
    rows = []
    for bound in max_uses:
        policy = DataKeyCachePolicy(max_age_seconds=max_age_seconds, max_uses=bound)
        stats, _ = benchmark_vault(env, resources, series=f"max_uses={bound}", cache=policy,
                                   operations=operations, seed=seed)
        rows.append((bound, stats.kms_per_10k))
    return rows
