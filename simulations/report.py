"""Turn a pipeline run into what the CLI prints, the JSON summary and the article's metrics.

Cost is computed, never typed: metered calls and units (plus Lambda requests and GB-seconds, and log
bytes) times a dated price table, for eu-west-2 (where the stacks deploy) and us-east-1.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from fasterpay.metrics import Figure
from fasterpay.pricing import PRICES_EU_WEST_2, PRICES_US_EAST_1, cost_breakdown, per_10k

from .pipeline_bench import FloorResult, RunSummary

__all__ = ["SLO_AUTHORISE_MS", "SLO_INGEST_TO_ACSP_MS", "bench_figures", "bench_report", "costs", "screening_figures",
           "summary_json"]

#: Targets of the modelled latency (p99, ms), without the scheme's own answer time.
SLO_INGEST_TO_ACSP_MS = 150
SLO_AUTHORISE_MS = 75
#: Bytes logged per payment (structured log lines) and per invocation (EMF documents, one per step), as
#: :class:`fasterpay.observability.pipeline.PipelineTelemetry` emits them: measured from the documents of a
#: real run (tests/test_observability_pipeline.py measures ``logged_bytes``: about 400 B of log lines per
#: payment and three 353 B EMF documents per invocation).
LOG_BYTES_PER_PAYMENT = 402
LOG_BYTES_PER_INVOCATION = 1_059


def costs(summary: RunSummary, region: str = "eu-west-2") -> Any:
    """The run's cost by component, all in, from the dated price table of ``region``."""
    prices = PRICES_EU_WEST_2 if region == "eu-west-2" else PRICES_US_EAST_1
    log_bytes = summary.payments * LOG_BYTES_PER_PAYMENT + summary.lambda_invocations * LOG_BYTES_PER_INVOCATION
    return cost_breakdown(summary.snapshot, prices=prices, lambda_invocations=summary.lambda_invocations,
                          lambda_gb_seconds=summary.lambda_gb_seconds, lambda_architecture="arm64",
                          log_bytes=log_bytes)


def _per_10k(value: Decimal, n: int) -> Decimal:
    return per_10k(value, max(n, 1))


def summary_json(summary: RunSummary, extra: dict[str, Any] | None = None) -> str:
    """The JSON summary line (the keys the issue and the article name)."""
    cost = costs(summary)
    data: dict[str, Any] = {
        "payments": summary.payments, "valid": summary.valid, "lost": summary.lost, "doubled": summary.doubled,
        "non_final": summary.non_final, "reconciliation_mismatches": summary.reconciliation_mismatches,
        "cycles_replayed": summary.cycles, "replay_mismatches": summary.replay_mismatches,
        "ledger_sum_by_currency": summary.ledger_sum_by_currency, "dead_letters": list(summary.dead_letters),
        "redriven": summary.redriven, "answers_duplicated": summary.answers_duplicated,
        "answer_conflicts": len(summary.answer_conflicts), "statuses": summary.statuses, "reasons": summary.reasons,
        "api_calls_per_payment": round(summary.api_calls_per_payment, 3),
        "kms_requests_per_10k": round(summary.kms_requests_per_10k, 2),
        "kms_cold_start_requests": summary.kms_cold_start_requests,
        "write_units_per_payment": round(summary.write_units_per_payment, 3),
        "cost_per_10k_usd": str(_per_10k(cost.total, summary.payments).quantize(Decimal("0.0001"))),
        "cost_by_component": {k: str(_per_10k(v, summary.payments).quantize(Decimal("0.00001")))
                              for k, v in cost.by_component.items()},
        "crash_points_hit": summary.crash_points_hit, "injected": summary.injected,
        "scheme_timeouts": summary.scheme_timeouts, "modelled_aws_seconds": round(summary.modelled_aws_seconds, 3),
        "kms_faults": summary.kms_faults,
        "modelled_p99_ms_ingest_to_acsp": round(summary.latency_ms["ingest_to_acsp"]["p99"], 1),
        "modelled_p99_ms_authorise": round(summary.latency_ms["authorise"]["p99"], 1),
        "modelled_p99_ms_scheme_answer": round(summary.latency_ms["scheme_answer"]["p99"], 1),
        "peak_rss_mb": round(summary.peak_rss_mb, 1), "seconds": round(summary.seconds, 1),
        "settings": asdict(summary.settings), "ok": summary.ok,
    }
    data.update(extra or {})
    return json.dumps(data, sort_keys=True, default=str)


def bench_report(summary: RunSummary, floor: FloorResult) -> dict[str, Any]:
    """Printed lines and the floor ratios for the JSON summary."""
    cost, floor_cost = costs(summary), cost_breakdown(floor.snapshot, prices=PRICES_EU_WEST_2,
                                                      lambda_invocations=0)
    ratio_calls = summary.api_calls_per_payment / floor.api_calls_per_payment
    per_payment = cost.total / max(summary.payments, 1)
    floor_per_payment = floor_cost.total / max(floor.payments, 1)
    ratio_cost = float(per_payment / floor_per_payment) if floor_per_payment else 0.0
    # per payment: the floor may run fewer payments than the bench (its calls per payment do not depend on size)
    ratio_wall = ((summary.seconds_in_handlers / max(summary.payments, 1)) / (floor.wall_seconds / floor.payments)
                  if floor.wall_seconds and floor.payments else 0.0)
    lines = [
        f"bench: {summary.payments} payments ({summary.valid} valid) in {summary.seconds:.0f} s; statuses {summary.statuses}",
        f"  AWS calls per payment {summary.api_calls_per_payment:.2f} (floor {floor.api_calls_per_payment:.2f}, "
        f"{ratio_calls:.2f}x); KMS requests per 10k {summary.kms_requests_per_10k:.1f} "
        f"(+{summary.kms_cold_start_requests} at cold start)",
        f"  cost per 10k payments, all in, eu-west-2 USD {_per_10k(cost.total, summary.payments):.4f} "
        f"(floor {_per_10k(floor_cost.total, floor.payments):.4f}); us-east-1 "
        f"{_per_10k(costs(summary, 'us-east-1').total, summary.payments):.4f}",
        "  modelled p99 ms: ingest to ACSP {:.0f}, authorisation {:.0f}; scheme answer p99 {:.0f}".format(
            summary.latency_ms["ingest_to_acsp"]["p99"], summary.latency_ms["authorise"]["p99"],
            summary.latency_ms["scheme_answer"]["p99"]),
        f"  wall time in handlers {summary.seconds_in_handlers:.1f} s vs floor {floor.wall_seconds:.1f} s for "
        f"{floor.payments} payments ({ratio_wall:.2f}x per payment, measured on moto); peak RSS "
        f"{summary.peak_rss_mb:.0f} MB",
    ]
    extra = {"floor_api_calls_per_payment": round(floor.api_calls_per_payment, 3), "floor_payments": floor.payments,
             "floor_ratio_calls": round(ratio_calls, 3), "floor_ratio_cost": round(ratio_cost, 3),
             "floor_ratio_wall": round(ratio_wall, 3),
             "cost_per_10k_usd_us_east_1": str(_per_10k(costs(summary, "us-east-1").total, summary.payments)
                                               .quantize(Decimal("0.0001")))}
    return {"lines": lines, "json": extra}


def bench_figures(summary: RunSummary, floor: FloorResult, *, chaos: RunSummary | None = None) -> list[Figure]:
    """The article's figures (see the pipeline page); every one computed from the runs."""
    n = summary.payments
    cost = costs(summary)
    report = bench_report(summary, floor)["json"]
    out = [
        Figure.of("api_calls_per_payment", "AWS API calls per payment", summary.api_calls_per_payment, "calls",
                  "counted", n, places=2, series="pipeline"),
        Figure.of("api_calls_per_payment", "AWS API calls per payment", floor.api_calls_per_payment, "calls",
                  "counted", floor.payments, places=2, series="honest floor"),
        Figure.of("cost_per_10k_tx", "Cost per 10k payments, all in (eu-west-2)", _per_10k(cost.total, n), "USD",
                  "computed", n, places=4, kpi="cost_per_10k_tx", series="pipeline"),
        Figure.of("kms_per_10k", "KMS requests per 10k payments (warm)", summary.kms_requests_per_10k, "requests",
                  "counted", n, places=1),
        Figure.of("floor_ratio_calls", "Pipeline / floor: calls", report["floor_ratio_calls"], "x", "counted", n),
        Figure.of("floor_ratio_cost", "Pipeline / floor: cost", report["floor_ratio_cost"], "x", "computed", n),
        Figure.of("floor_ratio_wall", "Pipeline / floor: wall time", report["floor_ratio_wall"], "x",
                  "measured on moto", n),
        Figure.of("latency_p99", "Ingest to ACSP p99, without the scheme", summary.latency_ms["ingest_to_acsp"]["p99"],
                  "ms", "modelled", int(summary.latency_ms["ingest_to_acsp"]["n"]), places=0, kpi="latency_p99"),
        Figure.of("tps_sustained", "Throughput: payments over handler time", summary.payments / max(summary.seconds_in_handlers, 1e-9),
                  "payments/s", "measured on moto", n, places=1, kpi="tps_sustained", series="pipeline"),
        Figure.of("tps_sustained", "Throughput: payments over floor time", floor.payments / max(floor.wall_seconds, 1e-9),
                  "payments/s", "measured on moto", floor.payments, places=1, series="honest floor"),
        Figure.of("latency_p95", "Ingest to ACSP p95, without the scheme", summary.latency_ms["ingest_to_acsp"]["p95"],
                  "ms", "modelled", int(summary.latency_ms["ingest_to_acsp"]["n"]), places=0, kpi="latency_p95"),
        Figure.of("error_rate", "Valid payments not settled (refused by rules, the scheme or a timeout)",
                  100 * (1 - summary.statuses.get("ACSC", 0) / max(summary.valid, 1)), "%", "counted", summary.valid,
                  places=2, kpi="error_rate"),
        Figure.of("latency_p50", "Ingest to ACSP p50, without the scheme", summary.latency_ms["ingest_to_acsp"]["p50"],
                  "ms", "modelled", int(summary.latency_ms["ingest_to_acsp"]["n"]), places=0, kpi="latency_p50"),
        *(Figure.of(f"authorise_{p}", f"Authorisation {p}", summary.latency_ms["authorise"][p], "ms", "modelled",
                    int(summary.latency_ms["authorise"]["n"]), places=0, kpi=f"authorise_{p}")
          for p in ("p50", "p95", "p99")),
        Figure.of("tps_peak", "Throughput: payments over handler time, busiest table set",
                  summary.peak_set_tps, "payments/s", "measured on moto", min(summary.settings.set_size, n), places=1,
                  kpi="tps_peak"),
        Figure.of("scheme_p99", "Scheme answer p99 (simulated scheme, shown apart)",
                  summary.latency_ms["scheme_answer"]["p99"], "ms", "modelled",
                  int(summary.latency_ms["scheme_answer"]["n"]), places=0),
        Figure.of("peak_rss_mb", "Peak memory (RSS) of the bench process", summary.peak_rss_mb, "MB", "measured", n,
                  places=0),
    ]
    for component, value in cost.by_component.items():
        out.append(Figure.of(f"cost_{component.replace(' ', '_')}", f"Cost per 10k payments: {component}",
                             _per_10k(value, n), "USD", "computed", n, places=4, kpi="cost_by_component"))
    if chaos is not None:
        m = chaos.payments
        out += [
            Figure.of("chaos_lost", "Chaos: payments lost", chaos.lost, "payments", "counted", m, places=0),
            Figure.of("chaos_doubled", "Chaos: payments doubled", chaos.doubled, "payments", "counted", m, places=0),
            Figure.of("chaos_non_final", "Chaos: payments not final", chaos.non_final, "payments", "counted", m, places=0),
            Figure.of("recon_mismatches_per_10k", "Chaos: reconciliation mismatches per 10k payments",
                      chaos.reconciliation_mismatches * 10_000 / max(m, 1), "per 10k", "counted", m, places=1,
                      kpi="recon_mismatches_per_10k"),
            Figure.of("chaos_crashes", "Chaos: crashes injected", sum(chaos.crash_points_hit.values()), "crashes",
                      "counted", m, places=0),
            Figure.of("chaos_faults", "Chaos: faults injected", sum(chaos.injected.values()), "faults", "counted", m,
                      places=0),
        ]
    return out


_METHOD_LABELS = {"exact_before": "exact (before)", "normalised_exact": "skeleton, exact",
                  "normalised_fuzzy": "skeleton + fuzzy"}


def screening_figures(evaluation: Any) -> list[Figure]:
    """The screening evaluation's figures (``simulations.screening_eval.evaluate_screening``): the share of
    listed-name variants each method misses, the share of control names it hits, and its CPU time per name."""
    out: list[Figure] = []
    for method, label in _METHOD_LABELS.items():
        out += [
            Figure.of("screening_false_negative_rate", "Sanctions screening: listed-name variants missed",
                      100 * evaluation.false_negative_rate[method], "%", "counted", evaluation.variants, places=2,
                      series=label),
            Figure.of("screening_false_positive_rate", "Sanctions screening: control names hit",
                      100 * evaluation.false_positive_rate[method], "%", "counted", evaluation.controls, places=2,
                      series=label),
            Figure.of("screening_us_per_name", "Sanctions screening: CPU time per name",
                      evaluation.microseconds_per_name[method], "µs", "measured",
                      evaluation.variants + evaluation.controls, places=1, series=label),
        ]
    return out

