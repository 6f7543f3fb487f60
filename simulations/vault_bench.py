"""Benchmarks of the tokenisation vault (not part of the pattern: a copier leaves this file behind).

Two benches, each running its series side by side in one run on the same seeded workload:

* :func:`benchmark_vault`: IBANs tokenised (random tokens) and then detokenised, with a KMS call per item
  or with cached data keys;
* :func:`benchmark_payments`: the pipeline's ingest shape, four deterministic tokens per payment (debtor
  and creditor account and name, one data subject per payment), tokenised one call per field (with a
  KMS ``GenerateMac`` per field, as before token keys were cached, or with cached token keys) or with one
  ``tokenize_many`` per payment.

Reported per series: wall time on the current backend ("measured on moto" in this guide), API calls
metered per service and operation, KMS requests per 10k operations, request cost per 10k from the dated
price table, and latency modelled from the stated per-call latency model (virtual time: nothing sleeps).
Percentiles use the guide's one definition, :func:`fasterpay.metrics.percentile`.

Run it: ``python -m simulations.vault_bench --payments 1000`` prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fasterpay.faults import DEFAULT_LATENCY_MODEL, FaultInjector, LatencyModel
from fasterpay.metering import ApiCallMeter, MeterSnapshot
from fasterpay.metrics import percentile
from fasterpay.pricing import cost_of, per_10k
from fasterpay.vault import NO_CACHING, AuditRecord, Caller, DataKeyCachePolicy, Vault, VaultPolicy
from fasterpay.vault.classes import normalise, parse_data_class
from fasterpay.vault.stack import VaultResources, vault_as_role
from simulations import moto_speedups

__all__ = [
    "BENCH_CALLER", "PAYMENT_SERIES", "BenchmarkPolicy", "OperationStats", "PaymentSeries", "benchmark_payments",
    "benchmark_vault", "main", "payment_fields", "payment_workload", "sweep_max_uses", "synthetic_iban",
    "synthetic_name",
]

#: The caller the benchmark detokenizes as.
BENCH_CALLER = Caller("scheme-gateway", "scheme-submission")
BenchmarkPolicy = VaultPolicy.of(grants=[(BENCH_CALLER.principal, ["iban", "name"], [BENCH_CALLER.purpose])])

_GIVEN = ("Ann", "Ben", "Chloé", "Dev", "Ewa", "Femi", "Grace", "Hiro", "Isla", "Jon", "Kofi", "Lena", "Maya", "Nia")
_FAMILY = ("Smith", "O’Brien", "Patel", "Nowak", "Okafor", "Jones", "Müller", "Khan", "Evans", "Silva", "Wright")


def synthetic_iban(rng: random.Random) -> str:
    """A valid, made-up UK IBAN (bank code ``FAKE``) from ``rng``.

    Examples:
        >>> synthetic_iban(random.Random(1))[:8]
        'GB72FAKE'
    """
    bban = "FAKE" + "".join(str(rng.randrange(10)) for _ in range(14))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + "GB00")) % 97
    return f"GB{check:02d}{bban}"


def synthetic_name(rng: random.Random) -> str:
    """A made-up person's name from ``rng``, with a number so that names rarely repeat.

    Examples:
        >>> synthetic_name(random.Random(1))
        'Chloé Silva 867'
    """
    return f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)} {rng.randrange(1000)}"


def payment_fields(rng: random.Random) -> list[tuple[str, str]]:
    """The four values the pipeline tokenises per payment, for two new parties: ``(value, data class)``.

    Examples:
        >>> [cls for _, cls in payment_fields(random.Random(1))]
        ['iban', 'iban', 'name', 'name']
    """
    debtor, creditor = (synthetic_iban(rng), synthetic_name(rng)), (synthetic_iban(rng), synthetic_name(rng))
    return [(debtor[0], "iban"), (creditor[0], "iban"), (debtor[1], "name"), (creditor[1], "name")]


def payment_workload(rng: random.Random, payments: int, *, parties: int) -> list[list[tuple[str, str]]]:
    """``payments`` payments between ``parties`` seeded parties: the same accounts and names recur.

    Examples:
        >>> len(payment_workload(random.Random(1), 3, parties=10))
        3
    """
    pool = [(synthetic_iban(rng), synthetic_name(rng)) for _ in range(parties)]
    workload = []
    for _ in range(payments):
        (debtor_iban, debtor_name), (creditor_iban, creditor_name) = rng.sample(pool, 2)
        workload.append([(debtor_iban, "iban"), (creditor_iban, "iban"), (debtor_name, "name"), (creditor_name, "name")])
    return workload


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
    def dynamodb_calls_per_op(self) -> Decimal:
        return Decimal(self.calls.count(service="dynamodb")) / self.operations

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


def _instrumented_vault(env: Any, resources: VaultResources, *, seed: int, latency: LatencyModel,
                        cache: DataKeyCachePolicy, token_key_cache: DataKeyCachePolicy | None = None,
                        ) -> tuple[Vault, ApiCallMeter, FaultInjector]:
    moto_speedups.install_on_moto(env)  # moto's serialiser cached: the same answers, less of moto's time
    meter = ApiCallMeter()
    faults = FaultInjector(latency=latency, seed=seed)

    def instrument(client: Any) -> None:
        meter.attach(client)
        faults.attach(client)

    vault = vault_as_role(env, resources, None, policy=BenchmarkPolicy, cache=cache, token_key_cache=token_key_cache,
                          instrument=instrument)
    return vault, meter, faults


def _tenant(series: str) -> str:
    return "bench-" + "".join(c if c.isalnum() else "-" for c in series.lower())[:40]


def benchmark_vault(
    env: Any,
    resources: VaultResources,
    *,
    series: str,
    cache: DataKeyCachePolicy,
    operations: int,
    seed: int,
    subjects: int = 500,
    latency: LatencyModel = DEFAULT_LATENCY_MODEL,
    detokenize_operations: int | None = None,
) -> tuple[OperationStats, OperationStats]:
    """Tokenise ``operations`` seeded IBANs for ``subjects`` data subjects, then detokenise them all, or
    ``detokenize_operations`` of them spread evenly over the run (a smaller sample of the same tokens).

    Detokenize writes its audit record to the vault's DynamoDB audit table through the metered client, so
    its cost is included.
    Each series uses a tenant of its own, so no series finds subject records another one created.
    """
    if detokenize_operations is not None and not 1 <= detokenize_operations <= operations:
        raise ValueError(f"detokenize_operations must be 1 to {operations}, got {detokenize_operations}")
    vault, meter, faults = _instrumented_vault(env, resources, seed=seed, latency=latency, cache=cache)
    tenant, workload, tokens, tokenize = _tokenize_series(vault, meter, faults, series=series, operations=operations,
                                                          seed=seed, subjects=subjects)
    picked = range(len(tokens)) if detokenize_operations is None else \
        sorted({i * len(tokens) // detokenize_operations for i in range(detokenize_operations)})
    clear, detokenize = _timed(
        [lambda t=tokens[i]: vault.detokenize(t, tenant=tenant, caller=BENCH_CALLER) for i in picked],
        meter, faults, series, "detokenize")
    if clear != [workload[i][0] for i in picked]:
        raise AssertionError("a detokenised value differs from the value tokenised")  # never silently wrong
    return tokenize, detokenize


def _tokenize_series(vault: Vault, meter: ApiCallMeter, faults: FaultInjector, *, series: str, operations: int,
                     seed: int, subjects: int) -> tuple[str, list[tuple[str, str]], list[Any], OperationStats]:
    """Tokenise ``operations`` seeded IBANs for ``subjects`` subjects in the series' own tenant."""
    tenant = _tenant(series)
    rng = random.Random(seed)
    workload = [(synthetic_iban(rng), f"cust-{rng.randrange(subjects)}") for _ in range(operations)]
    tokens, stats = _timed(
        [lambda v=v, s=s: vault.tokenize(v, "iban", tenant=tenant, subject=s) for v, s in workload],
        meter, faults, series, "tokenize")
    return tenant, workload, tokens, stats


def sweep_max_uses(env: Any, resources: VaultResources, *, max_uses: Sequence[int], operations: int, seed: int,
                   max_age_seconds: float = 300.0, subjects: int = 500,
                   latency: LatencyModel = DEFAULT_LATENCY_MODEL) -> list[tuple[int, Decimal]]:
    """KMS requests per 10k tokenisations for each data-key ``max_uses`` bound (tokenisations only: the
    bound is on encryptions under one data key)."""
    rows = []
    for bound in max_uses:
        policy = DataKeyCachePolicy(max_age_seconds=max_age_seconds, max_uses=bound)
        vault, meter, faults = _instrumented_vault(env, resources, seed=seed, latency=latency, cache=policy)
        *_, stats = _tokenize_series(vault, meter, faults, series=f"max_uses={bound}", operations=operations,
                                     seed=seed, subjects=subjects)
        rows.append((bound, stats.kms_per_10k))
    return rows


@dataclass(frozen=True)
class PaymentSeries:
    """How a series tokenises a payment's four fields."""

    name: str
    batched: bool  # one tokenize_many per payment, or one tokenize per field
    token_key_cache: DataKeyCachePolicy | None  # None: the data-key cache's bound; NO_CACHING: GenerateMac per field


#: The series the notebook compares: before (a KMS GenerateMac per field), cached token keys, and batches.
PAYMENT_SERIES = (
    PaymentSeries("GenerateMac per field", batched=False, token_key_cache=NO_CACHING),
    PaymentSeries("cached token keys", batched=False, token_key_cache=None),
    PaymentSeries("tokenize_many per payment", batched=True, token_key_cache=None),
)


def benchmark_payments(
    env: Any,
    resources: VaultResources,
    *,
    series: PaymentSeries,
    payments: int,
    seed: int,
    parties: int = 2_000,
    checked: int = 50,
    cache: DataKeyCachePolicy = DataKeyCachePolicy(),
    latency: LatencyModel = DEFAULT_LATENCY_MODEL,
) -> OperationStats:
    """Tokenise the four fields of ``payments`` seeded payments between ``parties`` parties, as ingest does.

    Each payment is its own data subject (``pay:<n>``), and every token is deterministic, so accounts and
    names that recur get the tokens they had. One operation is one payment. Afterwards the tokens of
    ``checked`` evenly spaced payments are detokenised (unmetered, unaudited) to check the round trip.
    """
    tenant = _tenant(series.name)
    workload = payment_workload(random.Random(seed), payments, parties=parties)
    vault, meter, faults = _instrumented_vault(env, resources, seed=seed, latency=latency, cache=cache,
                                               token_key_cache=series.token_key_cache)

    def one_by_one(fields: list[tuple[str, str]], subject: str) -> list[str]:
        return [vault.tokenize(v, c, tenant=tenant, subject=subject, deterministic=True) for v, c in fields]

    def batched(fields: list[tuple[str, str]], subject: str) -> list[str]:
        return vault.tokenize_many(fields, tenant=tenant, subject=subject)

    tokenize = batched if series.batched else one_by_one
    tokens, stats = _timed([lambda f=f, n=n: tokenize(f, f"pay:{n}") for n, f in enumerate(workload)],
                           meter, faults, series.name, "tokenize payment (4 fields)")
    checker = vault_as_role(env, resources, None, policy=BenchmarkPolicy, audit=_NullAudit())
    for n in sorted({i * payments // max(1, min(checked, payments)) for i in range(min(checked, payments))}):
        clear = [checker.detokenize(t, tenant=tenant, caller=BENCH_CALLER) for t in tokens[n]]
        if [normalise(v, parse_data_class(c)) for v, c in workload[n]] != clear:
            raise AssertionError("a detokenised value differs from the value tokenised")  # never silently wrong
    return stats


class _NullAudit:
    """The round-trip check is not a detokenize the guide counts: its records go nowhere."""

    def append(self, record: AuditRecord) -> None:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulations.vault_bench``: run the payment series on moto and print a JSON summary."""
    from fasterpay.aws import Backend, open_environment
    from fasterpay.vault.stack import deploy_vault

    parser = argparse.ArgumentParser(prog="python -m simulations.vault_bench", description=main.__doc__)
    parser.add_argument("--payments", type=int, default=1_000, help="payments per series (4 fields each)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with open_environment() as env:
        resources = deploy_vault(env.client("cloudformation"), env.client("kms"), on_moto=env.backend is not Backend.AWS)
        summary = {}
        for series in PAYMENT_SERIES:
            stats = benchmark_payments(env, resources, series=series, payments=args.payments, seed=args.seed)
            summary[series.name] = {
                "payments": stats.operations,
                "calls_by_operation": stats.calls.by_operation(),
                "kms_per_10k_payments": str(stats.kms_per_10k),
                "api_calls_per_payment": str(stats.api_calls_per_op),
                "cost_per_10k_payments_usd": str(stats.cost_per_10k),
                "modelled_p50_ms": round(stats.modelled_percentile(50), 1),
                "modelled_p99_ms": round(stats.modelled_percentile(99), 1),
            }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
