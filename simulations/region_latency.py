"""Modelled cross-region latency, hedged reads and per-hop deadline budgets, for the resilience article.

**Every figure here is modelled**, never measured: latencies are drawn (seeded) from stated log-normal
distributions, and percentiles use the guide's one definition, :func:`fasterpay.metrics.percentile`.

Network figures (round-trip times, RTT) and where they come from:

* **eu-west-2 (London) <-> eu-west-1 (Dublin): p50 11.3 ms, p99 13.5 ms.** From R. Imaoka, "Using ping
  to test AWS VPC network latency across different regions" (10 June 2019; code
  https://github.com/richardimaoka/aws-ping): ICMP ping between EC2 instances, eu-west-2 -> eu-west-1
  average 11.327 ms, min 11.101 ms, max 13.482 ms. We take the average as the median and the observed
  maximum as the p99. A 2019 measurement: measure your own path before relying on it.
* **Cross-AZ in eu-west-2: p50 1.1 ms, p99 2.2 ms.** Same author, "... across availability zones in each
  single region" (16 June 2019): eu-west-2 AZ pairs average 0.774 to 1.26 ms, maxima up to 2.182 ms.
* **Same AZ: p50 0.25 ms, p99 0.5 ms. Assumption.** The median is the smallest same-AZ ping reported in
  "Measuring AWS Region and AZ Latency" (xkyle.com, best of 50 pings, ~0.250 ms); the p99 is ours.

AWS call latencies come from ``fasterpay.faults.DEFAULT_LATENCY_MODEL`` (in-region, client in
eu-west-2; modelled assumptions). A call made from eu-west-2 to an endpoint in eu-west-1 costs the
in-region call plus one inter-region RTT (:func:`critical_path_table`); a write that must be replicated
synchronously to the other region before it is acknowledged costs at least one more.

Hedging (:func:`simulate_hedging`): primary and backup latencies are drawn independently. That is the
best case: when the slowness has a shared cause (a hot partition, a degraded region), the backup is
slow too and hedging helps less. The default distribution (GetItem, p50 4 ms, p99 12 ms) has a light
tail, so hedging buys little; the *stall* rows add a stated assumption (1 % of attempts stall 50 ms, e.g.
a retried 5xx or a new connection) to show where hedging pays.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fasterpay.faults import DEFAULT_LATENCY_MODEL, LatencyDistribution, LatencyModel
from fasterpay.iso20022.schemes import SCHEMES
from fasterpay.metrics import Figure, percentile
from fasterpay.resilience.deadline import HOPS, HopBudget
from fasterpay.resilience.hedge import evaluate_hedging

__all__ = [
    "CROSS_AZ_RTT",
    "HOP_CALLS",
    "INTER_REGION_RTT",
    "NETWORK_SOURCES",
    "SAME_AZ_RTT",
    "STALL_ASSUMPTION",
    "BudgetRow",
    "HedgingRow",
    "PathRow",
    "critical_path_table",
    "deadline_budget_table",
    "figures",
    "markdown_tables",
    "simulate_hedging",
]

KIND = "modelled"

#: eu-west-2 <-> eu-west-1 round trip (Imaoka 2019: avg 11.327 ms, max 13.482 ms)
INTER_REGION_RTT = LatencyDistribution(11.3, 13.5)
#: cross-AZ round trip in eu-west-2 (Imaoka 2019: averages 0.774-1.26 ms, maxima up to 2.182 ms)
CROSS_AZ_RTT = LatencyDistribution(1.1, 2.2)
#: same-AZ round trip: an assumption (xkyle.com reports ~0.25 ms best-of-50 for a same-AZ pair)
SAME_AZ_RTT = LatencyDistribution(0.25, 0.5)

#: Where each network figure comes from (shown beside the tables).
NETWORK_SOURCES: Mapping[str, str] = {
    "eu-west-2 <-> eu-west-1": (
        "R. Imaoka, 'Using ping to test AWS VPC network latency across different regions', 2019-06-10, "
        "https://github.com/richardimaoka/aws-ping: avg 11.327 ms, min 11.101 ms, max 13.482 ms"
    ),
    "cross-AZ (eu-west-2)": (
        "R. Imaoka, 'Using ping to test AWS VPC network latency across availability zones in each single "
        "region', 2019-06-16: eu-west-2 pairs avg 0.774-1.26 ms, max up to 2.182 ms"
    ),
    "same AZ": (
        "Assumption: p50 0.25 ms as the smallest same-AZ ping in xkyle.com 'Measuring AWS Region and AZ "
        "Latency' (best of 50 pings); p99 0.5 ms assumed"
    ),
}

#: (rate, extra ms): share of attempts that stall, and by how much. An assumption, not in the model.
STALL_ASSUMPTION = (0.01, 50.0)

#: AWS calls (and the scheme's answer) each hop makes per payment, in order: (service, operation, calls).
#: Mirrors ``fasterpay.pipeline.stages`` and the comments of ``DEFAULT_FIXED_HOPS_S``.
HOP_CALLS: Mapping[str, tuple[tuple[str, str, int], ...]] = {
    "ingest": (("sqs", "SendMessage", 1),),
    "tokenise": (("kms", "GenerateDataKey", 1), ("dynamodb", "BatchWriteItem", 2)),
    "authorise": (("dynamodb", "TransactWriteItems", 1),),
    "route": (),
    "clear": (("sqs", "SendMessageBatch", 1), ("scheme", "answer", 1), ("dynamodb", "UpdateItem", 1)),
    "answer": (("sqs", "SendMessageBatch", 1),),
}


def _ms(dist: LatencyDistribution, rng: random.Random) -> float:
    return dist.sample(rng) * 1000.0


@dataclass(frozen=True)
class HedgingRow:
    """One strategy: plain reads, or reads hedged after a percentile, with its modelled p50/p99 and cost."""

    strategy: str
    hedge_after_ms: float | None
    p50_ms: float
    p99_ms: float
    extra_request_share: float  # hedges per read
    reads: int
    kind: str = KIND


def simulate_hedging(
    n: int = 20_000,
    seed: int = 7,
    *,
    distribution: LatencyDistribution | None = None,
    quantiles: Sequence[float] = (90, 95),
    backups: Sequence[str] = ("same-region", "replica"),
    stall: tuple[float, float] = (0.0, 0.0),
    rtt: LatencyDistribution = INTER_REGION_RTT,
) -> list[HedgingRow]:
    """Plain reads vs reads hedged after the p90/p95 of the call: modelled p50, p99 and extra requests.

    ``distribution`` defaults to DynamoDB GetItem in ``DEFAULT_LATENCY_MODEL``. The hedge threshold is
    the percentile of a separate calibration sample (what an operator would measure). A ``"replica"``
    backup reads from eu-west-1 and pays one inter-region RTT on top. ``stall`` = (rate, ms) adds a
    stall to that share of attempts, independently.

    Examples:
        >>> rows = simulate_hedging(2_000, seed=1, quantiles=(95,), backups=("same-region",))
        >>> [r.strategy for r in rows]
        ['plain', 'hedged after p95 (same-region)']
        >>> rows[1].p99_ms < rows[0].p99_ms and 0.03 < rows[1].extra_request_share < 0.07
        True
    """
    if n < 2:
        raise ValueError(f"n must be at least 2 reads, got {n}.")
    rate, stall_ms = stall
    if not 0.0 <= rate <= 1.0 or stall_ms < 0:
        raise ValueError(f"stall must be (rate in [0, 1], ms >= 0), got {stall!r}.")
    for backup in backups:
        if backup not in ("same-region", "replica"):
            raise ValueError(f"backup must be 'same-region' or 'replica', got {backup!r}.")
    dist = distribution or DEFAULT_LATENCY_MODEL.for_call("dynamodb", "GetItem")

    def attempts(stream: int) -> list[float]:
        rng = random.Random(f"{seed}/{stream}")
        return [_ms(dist, rng) + (stall_ms if rate and rng.random() < rate else 0.0) for _ in range(n)]

    calibration, primary, second = attempts(0), attempts(1), attempts(2)
    rtt_rng = random.Random(f"{seed}/rtt")
    replica = [b + _ms(rtt, rtt_rng) for b in second]
    rows = [HedgingRow("plain", None, percentile(primary, 50), percentile(primary, 99), 0.0, n)]
    for q in quantiles:
        threshold = percentile(calibration, q)
        for backup in backups:
            run = evaluate_hedging(primary, second if backup == "same-region" else replica, threshold)
            rows.append(HedgingRow(
                f"hedged after p{q:g} ({backup})", threshold, percentile(run.latencies_s, 50),
                percentile(run.latencies_s, 99), run.extra_request_share, n,
            ))
    return rows


@dataclass(frozen=True)
class PathRow:
    """A call on the critical path, in region or across regions: modelled p50/p99 and what it adds."""

    path: str
    p50_ms: float
    p99_ms: float
    added_p99_ms: float
    kind: str = KIND


def critical_path_table(
    n: int = 20_000, seed: int = 7, *, model: LatencyModel = DEFAULT_LATENCY_MODEL
) -> list[PathRow]:
    """How a synchronous cross-region read or write adds to the critical path (client in eu-west-2).

    Reads: GetItem in region vs the same GetItem sent to eu-west-1 (+ 1 RTT). Writes: the authorise
    hop's TransactWriteItems in region vs acknowledged only after a synchronous copy to eu-west-1
    (+ at least 1 RTT; an assumption about any synchronous replication, not a DynamoDB figure).
    """
    rng = random.Random(f"{seed}/paths")
    get = model.for_call("dynamodb", "GetItem")
    write = model.for_call("dynamodb", "TransactWriteItems")
    samples = {
        "GetItem, same region (cross-AZ)": [_ms(get, rng) for _ in range(n)],
        "GetItem, from eu-west-2 to eu-west-1": [_ms(get, rng) + _ms(INTER_REGION_RTT, rng) for _ in range(n)],
        "TransactWriteItems, same region": [_ms(write, rng) for _ in range(n)],
        "TransactWriteItems + synchronous copy to eu-west-1": [
            _ms(write, rng) + _ms(INTER_REGION_RTT, rng) for _ in range(n)
        ],
        "network only: same-AZ RTT": [_ms(SAME_AZ_RTT, rng) for _ in range(n)],
        "network only: cross-AZ RTT": [_ms(CROSS_AZ_RTT, rng) for _ in range(n)],
        "network only: eu-west-2 <-> eu-west-1 RTT": [_ms(INTER_REGION_RTT, rng) for _ in range(n)],
    }
    base = {
        "GetItem, from eu-west-2 to eu-west-1": "GetItem, same region (cross-AZ)",
        "TransactWriteItems + synchronous copy to eu-west-1": "TransactWriteItems, same region",
    }
    rows = []
    for path, values in samples.items():
        p99 = percentile(values, 99)
        added = p99 - percentile(samples[base[path]], 99) if path in base else 0.0
        rows.append(PathRow(path, percentile(values, 50), p99, added))
    return rows


@dataclass(frozen=True)
class BudgetRow:
    """One hop of one scheme: its budget, the modelled p99 of its calls, and the headroom."""

    scheme: str
    hop: str
    budget_ms: float
    modelled_p99_ms: float
    headroom_ms: float
    kind: str = KIND


def _hop_draw(hop: str, scheme: str, model: LatencyModel, rng: random.Random) -> float:
    total = 0.0
    for service, operation, calls in HOP_CALLS[hop]:
        if service == "scheme":
            p50, p99 = SCHEMES[scheme].clearing.answer_ms  # type: ignore[union-attr]  # the simulated gateway
            dist = LatencyDistribution(p50, p99)
        else:
            dist = model.for_call(service, operation)
        total += sum(_ms(dist, rng) for _ in range(calls))
    return total


def deadline_budget_table(
    n: int = 20_000, seed: int = 7, *, schemes: Iterable[str] = ("uk_fps", "sepa_inst"),
    model: LatencyModel = DEFAULT_LATENCY_MODEL,
) -> list[BudgetRow]:
    """Rows (scheme, hop, budget ms, modelled p99 ms, headroom ms) for the default :class:`HopBudget`.

    The modelled p99 is of one attempt per call, no faults, AWS calls only (CPU is not modelled); the
    ``clear`` hop includes the simulated scheme's answer time (``Clearing.answer_ms``, an assumption).
    A last row per scheme, hop ``"end to end"``, compares the enforced limit with the p99 of the sum.

    Examples:
        >>> rows = deadline_budget_table(2_000, seed=1)
        >>> [(r.hop, r.budget_ms) for r in rows if r.scheme == "sepa_inst"][-2:]
        [('answer', 250.0), ('end to end', 9000.0)]
        >>> all(r.headroom_ms > 0 for r in rows)
        True
    """
    rows: list[BudgetRow] = []
    for scheme in schemes:
        rules = SCHEMES[scheme]
        table = HopBudget.for_scheme(rules)
        rng = random.Random(f"{seed}/{scheme}/hops")
        draws = {hop: [_hop_draw(hop, scheme, model, rng) for _ in range(n)] for hop in HOPS}
        for hop in HOPS:
            budget = table.budget(hop) * 1000.0
            p99 = percentile(draws[hop], 99)
            rows.append(BudgetRow(scheme, hop, round(budget, 3), p99, budget - p99))
        totals = [sum(draws[hop][i] for hop in HOPS) for i in range(n)]
        enforced = table.enforced_s * 1000.0
        p99 = percentile(totals, 99)
        rows.append(BudgetRow(scheme, "end to end", round(enforced, 3), p99, enforced - p99))
    return rows


def figures(n: int = 20_000, seed: int = 7) -> list[Figure]:
    """The article's figures, all ``kind="modelled"``.

    Examples:
        >>> {f.kind for f in figures(2_000, seed=1)}
        {'modelled'}
    """
    rows = {r.strategy: r for r in simulate_hedging(n, seed, quantiles=(95,), backups=("same-region",))}
    plain, hedged = rows["plain"], rows["hedged after p95 (same-region)"]
    stalled = {r.strategy: r for r in simulate_hedging(n, seed, quantiles=(95,), backups=("same-region",),
                                                      stall=STALL_ASSUMPTION)}
    out = [
        Figure.of("getitem_p99_ms", "GetItem p99, plain reads (modelled)", plain.p99_ms, "ms", KIND, n,
                  series="plain"),
        Figure.of("getitem_p99_ms", "GetItem p99, hedged after the p95 (modelled)", hedged.p99_ms, "ms", KIND, n,
                  series="hedged p95"),
        Figure.of("getitem_p99_ms", "GetItem p99 with 1% stalls of 50 ms, plain (modelled)",
                  stalled["plain"].p99_ms, "ms", KIND, n, series="plain, stalls"),
        Figure.of("getitem_p99_ms", "GetItem p99 with 1% stalls of 50 ms, hedged after the p95 (modelled)",
                  stalled["hedged after p95 (same-region)"].p99_ms, "ms", KIND, n, series="hedged p95, stalls"),
        Figure.of("hedge_extra_request_share", "Extra requests sent by hedging after the p95 (modelled)",
                  100 * hedged.extra_request_share, "%", KIND, n),
        Figure.of("cross_region_rtt_ms", "eu-west-2 <-> eu-west-1 round trip used by the model (p50)",
                  INTER_REGION_RTT.p50_ms, "ms", KIND, 1),
    ]
    for scheme in ("uk_fps", "sepa_inst"):
        table = HopBudget.for_scheme(SCHEMES[scheme])
        out.append(Figure.of("enforced_deadline_s", f"Answer deadline the pipeline enforces, {scheme} "
                             f"(scheme limit minus {table.margin_s:g} s margin)", table.enforced_s, "s", KIND, 1,
                             series=scheme))
    return out


def markdown_tables(n: int = 20_000, seed: int = 7) -> str:
    """The three tables as Markdown, every one labelled modelled."""
    lines = ["**Hedged reads (modelled)**", "",
             "| strategy | hedge after (ms) | p50 (ms) | p99 (ms) | extra requests |", "|---|---:|---:|---:|---:|"]
    for label, stall in (("", (0.0, 0.0)), (", 1% stalls of 50 ms", STALL_ASSUMPTION)):
        for r in simulate_hedging(n, seed, stall=stall):
            after = "-" if r.hedge_after_ms is None else f"{r.hedge_after_ms:.1f}"
            lines.append(f"| {r.strategy}{label} | {after} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
                         f"{100 * r.extra_request_share:.1f} % |")
    lines += ["", "**Critical path (modelled)**", "", "| path | p50 (ms) | p99 (ms) | adds at p99 (ms) |",
              "|---|---:|---:|---:|"]
    lines += [f"| {r.path} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.added_p99_ms:.1f} |"
              for r in critical_path_table(n, seed)]
    lines += ["", "**Deadline budget per hop (modelled)**", "",
              "| scheme | hop | budget (ms) | modelled p99 (ms) | headroom (ms) |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r.scheme} | {r.hop} | {r.budget_ms:.0f} | {r.modelled_p99_ms:.1f} | {r.headroom_ms:.1f} |"
              for r in deadline_budget_table(n, seed)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - a preview for authors
    print(markdown_tables())
