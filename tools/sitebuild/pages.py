"""Markdown fragments the build generates from data: KPI table, per-article figures, model tables.

Each fragment is written to ``build/generated/`` and included into a page with pymdownx.snippets, so
no figure on the site is typed by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from fasterpay.metrics import Figure, MetricsFile

__all__ = ["KPIS", "SMALL_SAMPLE", "Kpi", "number", "render_figures", "render_kpis", "render_rows", "sample", "source_page"]


@dataclass(frozen=True)
class Kpi:
    id: str
    name: str
    unit: str
    meaning: str
    awaiting: str  # the article that will produce it, named while none does


_PIPELINE = "The payment pipeline end to end"
_AUDIT = "Tamper-evident audit trails and observability"
_AGENTS = "Queue agents, streams and an LLM routing agent"
_REGIONS = "Multi-region resilience and failover drills"
_FINOPS = "FinOps for payments"
_OPERATIONS = "Operating it: SLOs, alerting, runbooks and drills"
KPIS: tuple[Kpi, ...] = (
    Kpi("tps_sustained", "Throughput, sustained", "payments/s",
        "All the bench's payments over the time its handlers ran, measured on moto: compare it only with the "
        "honest floor's, never with AWS.", _PIPELINE),
    Kpi("tps_peak", "Throughput, peak", "payments/s",
        "The busiest table set of the bench (its payments over its own handler time), measured on moto.", _PIPELINE),
    Kpi("latency_p50", "End-to-end latency p50", "ms",
        "From the sender's SendMessageBatch to the ACSP answer on the answers queue, modelled over every hop, "
        "without the scheme's own answer time.", _PIPELINE),
    Kpi("latency_p95", "End-to-end latency p95", "ms", "As p50, at the 95th percentile.", _PIPELINE),
    Kpi("latency_p99", "End-to-end latency p99", "ms", "As p50, at the 99th percentile; the target is 150 ms.",
        _PIPELINE),
    Kpi("authorise_p50", "Authorisation latency p50", "ms",
        "From the sender's SendMessageBatch to the committed hold (funds reserved), modelled.", _PIPELINE),
    Kpi("authorise_p95", "Authorisation latency p95", "ms", "As p50, at the 95th percentile.", _PIPELINE),
    Kpi("authorise_p99", "Authorisation latency p99", "ms", "As p50, at the 99th percentile; the target is 75 ms.",
        _PIPELINE),
    Kpi("error_rate", "Error rate: valid payments not settled", "%",
        "The share of well-formed payments that did not reach ACSC: refused by sanctions or fraud rules or for "
        "funds, rejected by the scheme, or timed out. Malformed messages are not counted.", _PIPELINE),
    Kpi("recon_mismatches_per_10k", "Reconciliation mismatches", "per 10k payments",
        "Ledger, settlement report, settlement replay and payment status disagree, in the chaos run.", _PIPELINE),
    Kpi("cost_per_10k_tx", "Cost", "USD per 10k payments",
        "Every metered AWS call and unit of the bench × the dated eu-west-2 price table.", _PIPELINE),
    Kpi("cost_by_component", "Cost by component", "USD per 10k payments",
        "The cost above, split by the service that bills it.", _PIPELINE),
    Kpi("finops_cost_per_10k", "Cost per 10k payments, every pattern", "USD per 10k payments",
        "The pipeline, vault, ledger, audit trail, telemetry, status stream and exception agent together: every "
        "metered call and unit × the dated price table of each region.", _FINOPS),
    Kpi("finops_cost_by_pattern", "Cost per 10k payments, by pattern", "USD per 10k payments",
        "The cost above in eu-west-2, split by the pattern that makes the calls.", _FINOPS),
    Kpi("finops_cost_by_component", "Cost per 10k payments, by component", "USD per 10k payments",
        "The cost above in eu-west-2, split by what AWS bills: request units, requests, GB-seconds, bytes, tokens.",
        _FINOPS),
    Kpi("double_posts_per_10k", "Payments posted twice", "per 10k payments",
        "Under duplicate delivery, with exactly-once effects and without them.", "Idempotency and the ledger"),
    Kpi("audited_detokenize_events", "Audited detokenize events", "events",
        "Every detokenize in the notebook's run, allowed or refused, each with an append-only audit record.",
        "Tokenisation vault"),
    Kpi("unauthorised_attempts", "Unauthorised detokenize attempts", "attempts",
        "Detokenize calls refused by the vault policy, by IAM or by KMS's encryption context.", "Tokenisation vault"),
    Kpi("audit_tampering_detected", "Audit tampering detected", "%",
        "Single-entry tamperings of an exported audit log caught by the offline verifier.", _AUDIT),
    Kpi("audit_cost_per_10k_events", "Audit trail cost", "USD per 10k audit events",
        "S3 writes and KMS signs of the batched Merkle log × the dated price table.", _AUDIT),
    Kpi("slo_minutes_to_page", "Minutes to page on an outage", "min",
        "From a simulated outage to the first burn-rate page.", _AUDIT),
    Kpi("agent_fallback_rate", "Routing agent fallback rate", "%",
        "Exceptions the routing agent settled with the rules' safe default (hold for review) instead of the "
        "model's answer: invalid or disallowed answers, timeouts, throttles, model errors, budget. With a "
        "stand-in model and injected faults.", _AGENTS),
    Kpi("agent_decisions_audited", "Routing agent decisions audited", "%",
        "Decisions with an entry in the tamper-evident audit log, verified offline.", _AGENTS),
    Kpi("agent_personal_data_in_prompts", "Personal data found in prompts, logs and audit entries", "values",
        "What the personal-data guard finds when it reads everything the agent sent or wrote again; must be 0.",
        _AGENTS),
    Kpi("stream_lag_p99", "Stream consumer lag p99", "records",
        "Records between the consumer's position and the stream's tip at each poll, across crashes and a "
        "shard split.", _AGENTS),
    Kpi("queue_latency_p99", "Queue latency p99: backlog autoscaler against a fixed fleet", "s",
        "Time from arrival on the queue to processed, over a UK FPS-like day, modelled.", _AGENTS),
    Kpi("rpo_payments", "RPO: acknowledged payments not yet replicated at failover", "payments",
        "Payments the primary region had acknowledged but not replicated when it failed, per drill (emulated "
        "global-table replication on moto); each is reconciled at failback, none is lost.", _REGIONS),
    Kpi("rpo_seconds", "RPO: replication window at failover", "s",
        "The replication lag at the moment the primary failed, per drill (emulated lag, virtual clock).", _REGIONS),
    Kpi("rto_seconds", "RTO, modelled", "s",
        "Detection by a quorum of health checks + routing-control switch + fence interval + senders' re-route, "
        "from stated inputs.", _REGIONS),
    Kpi("drill_lost", "Payments lost in the failover drills", "payments",
        "Acknowledged payments with no final status after failover and failback, per drill; must be 0.", _REGIONS),
    Kpi("drill_doubled", "Payments doubled in the failover drills", "payments",
        "Payments booked or settled twice across both regions, per drill; must be 0.", _REGIONS),
    Kpi("time_to_detect", "Time to detect: scheme timeout storm", "min",
        "From the storm's start to the first page, with the operations template's alarms evaluated minute by "
        "minute (emulated) on traffic drawn from pipeline runs on moto; with the cause alarm paging, and with the "
        "SLO burn pages alone.", _OPERATIONS),
    Kpi("time_to_restore", "Time to restore: scheme timeout storm", "min",
        "From the storm's start until the critical-path SLO's 5-minute burn is under 1x again, with the runbook's "
        "remedy applied 10 minutes after the page.", _OPERATIONS),
)


def _cell(text: object) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def render_kpis(metrics: Mapping[str, MetricsFile], article_links: Mapping[str, str]) -> str:
    """The KPI table: every KPI with the figures that report it, or what will produce it."""
    lines = ["| KPI | Value | Unit | How obtained | Sample | Source |", "| --- | --- | --- | --- | --- | --- |"]
    for kpi in KPIS:
        found = [(m, f) for m in metrics.values() for f in m.figures if f.kpi == kpi.id]
        if not found:
            lines.append(f"| {kpi.name} | *not produced yet* | {kpi.unit} | — | — | awaiting: {kpi.awaiting} |")
        distinct = len({f.series for _, f in found}) == len(found)  # else the series (a region) names no part
        for m, f in found:
            label_part = f.label.rsplit(": ", 1)[-1] if len(found) > 1 else None  # e.g. "Cost per 10k: sqs"
            part = f.series if f.series and distinct else label_part
            name = f"{kpi.name} ({part})" if part else kpi.name
            link = article_links.get(m.article)
            source = f"[{m.article}]({link})" if link else m.article
            lines.append(f"| {_cell(name)} | **{number(f.value)}** | {_cell(kpi.unit)} | {f.kind} "
                         f"| {sample(f.sample_size)} | {source} |")
    lines += ["", "Definitions:", ""]
    lines += [f"- **{_cell(kpi.name)}** ({_cell(kpi.unit)}): {kpi.meaning}" for kpi in KPIS]
    return "\n".join(lines) + "\n"


#: Samples below this size are flagged: a rate or percentile from fewer events can move a lot between runs.
SMALL_SAMPLE = 1_000


def number(value: str) -> str:
    """A figure's value with thousands separators, its decimals as recorded.

    Examples:
        >>> number("10000.0"), number("1500"), number("0.0931"), number("-1234.50")
        ('10,000.0', '1,500', '0.0931', '-1,234.50')
    """
    return format(Decimal(value), ",")


def sample(size: int) -> str:
    """A sample size, flagged when it is small.

    Examples:
        >>> sample(1_500), sample(120)
        ('1,500', '120 (small)')
    """
    return f"{size:,}" if size >= SMALL_SAMPLE else f"{size:,} (small)"


def _stamp(m: MetricsFile) -> str:
    mc = m.machine
    return (f"Generated {m.generated_at} by the article's notebook on {mc.get('platform')} ({mc.get('machine')}, "
            f"{mc.get('cpu_count')} CPUs, Python {mc.get('python')}); backend {m.backend}; seed {m.seed}; "
            f"run size `{m.scale}`.")


def _breakable(header: str) -> str:
    """A header that may wrap after a dot or a slash (``fasterpay.idempotency``), not inside a word."""
    return header.replace(".", ".<wbr>").replace("/", "/<wbr>")


def _table(figures: list[Figure]) -> list[str]:
    series = list(dict.fromkeys(f.series for f in figures if f.series)) or ["Value"]
    rows: dict[str, dict[str, Figure]] = {}
    for f in figures:
        rows.setdefault(f.key, {})[f.series or "Value"] = f
    lines = ["| Figure | " + " | ".join(_breakable(_cell(s)) for s in series) + " | Unit | How obtained | Sample |",
             "|" + " --- |" * (len(series) + 4)]
    for by_series in rows.values():
        first = next(iter(by_series.values()))
        values = " | ".join(number(by_series[s].value) if s in by_series else "—" for s in series)
        lines.append(f"| {_cell(first.label)} | {values} | {_cell(first.unit)} | {first.kind} "
                     f"| {sample(first.sample_size)} |")
    return lines


def render_figures(m: MetricsFile) -> str:
    """An article's figures: a table per set of series compared side by side, one for single figures."""
    compared = [f for f in m.figures if f.series]
    single = [f for f in m.figures if not f.series]
    series_of: dict[str, list[str]] = {}
    for f in compared:
        series_of.setdefault(f.key, []).append(str(f.series))
    groups: dict[tuple[str, ...], list[Figure]] = {}  # one table per set of series: narrow enough to read
    for f in compared:
        groups.setdefault(tuple(series_of[f.key]), []).append(f)
    parts = [_table(group) for group in (*groups.values(), single) if group]
    return "\n\n".join("\n".join(t) for t in parts) + "\n\n" + _stamp(m) + "\n"


def render_rows(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def source_page(path: str) -> str:
    """A page that shows one repository file with line anchors, included from the file itself."""
    lexer = {".py": "python", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(path[path.rfind("."):], "text")
    # Left out of search: a reader searching for "EncryptionContext" wants the article, not a raw listing.
    return (f'---\nsearch:\n  exclude: true\n---\n\n# `{path}`\n\n'
            f'```{lexer} linenums="1"\n--8<-- "{path}"\n```\n')


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"


def _by_run(fields: list[str], runs: list[tuple[str, ...]]) -> str:
    """One column per run and one row per field: a few runs of many fields still fit the text column."""
    header = ["", *(f"{run[3]} payments" for run in runs)]
    return render_rows(header, [(name, *(run[i] for run in runs)) for i, name in enumerate(fields)])


def render_recorded_runs(records: Iterable[dict[str, object]]) -> str:
    """The recorded volume runs (``python -m simulations ... --record``): what ran, where, how long, and what came out.

    Benches and chaos runs report different things, so each kind gets its own table."""
    benches, others = [], []
    for r in sorted(records, key=lambda r: (str(r["command"]), str(r["date"]))):
        s, machine = r["summary"], r["machine"]
        assert isinstance(s, dict) and isinstance(machine, dict)
        workers = int(s.get("workers", 1))
        took = float(s["seconds"])
        commit = str(r.get("commit") or "")[:7]
        where = (f"`{r['command']}`", str(r["date"])[:10] + (f", commit `{commit}`" if commit else ""),
                 f"{machine['machine']}, {machine['cpu_count']} CPUs, {workers} process{'es' if workers > 1 else ''}",
                 f"{s['payments']:,}", f"{took:,.0f} s ({_duration(took)})" if took >= 3600 else f"{took:,.0f} s")
        if "floor_ratio_calls" in s:
            benches.append((*where, f"{float(s['api_calls_per_payment']):.2f}",
                            f"{s['floor_ratio_calls']:.2f}x / {s['floor_ratio_cost']:.2f}x / {s['floor_ratio_wall']:.2f}x",
                            f"{s['cost_per_10k_usd']}", f"{float(s['kms_requests_per_10k']):.1f}",
                            f"{float(s['modelled_p99_ms_ingest_to_acsp']):.0f} / {float(s['modelled_p99_ms_authorise']):.0f}",
                            f"{float(s['peak_rss_mb']):,.0f} MB"))
            continue
        crashes = s.get("crash_points_hit") or {}
        injected = s.get("injected") or {}
        others.append((*where,
                       f"{s['lost']} / {s['doubled']} / {s['non_final']} / {s['reconciliation_mismatches']}",
                       ", ".join(f"{k} {v}" for k, v in sorted(s["ledger_sum_by_currency"].items())),
                       f"{min(crashes.values())} ({len(crashes)} points)" if crashes else "none armed",
                       ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(injected.items())) or "none",
                       f"{float(s['peak_rss_mb']):,.0f} MB", "passed" if s["ok"] else "FAILED"))
    parts = []
    if benches:
        parts.append("**Benches** (no faults). Floor ratios are calls / cost / wall time; latency is modelled "
                     "p99 in ms, ingest to ACSP / authorisation; cost is USD per 10k payments, all in, eu-west-2.\n\n"
                     + _by_run(["Command", "Date", "Machine", "Payments", "Took", "AWS calls per payment",
                                "Pipeline / floor", "Cost per 10k", "KMS per 10k", "p99 ms", "Peak RSS"], benches))
    if others:
        parts.append("**Chaos and replay runs.** Lost / doubled / non-final / mismatches must all be 0.\n\n"
                     + _by_run(["Command", "Date", "Machine", "Payments", "Took",
                                "Lost / doubled / non-final / mismatches", "Ledger sums",
                                "Fewest crashes at a point", "Faults injected", "Peak RSS", "Outcome"], others))
    return "\n".join(parts) if parts else "No run has been recorded yet.\n"
