"""Bench, chaos and floor: the run ends reconciled, nothing lost or doubled, figures labelled as they were obtained."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fasterpay.metrics import read_metrics
from fasterpay.pipeline.benchmark import figures, run_bench, run_chaos, run_floor

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_bench_reconciles_replays_and_reports_against_the_floor(env: Any) -> None:
    result = run_bench(env, payments=80, seed=4, cycle_size=40, poison_messages=1)
    assert result.reconciliation.mismatches == () and result.reconciliation.balanced
    assert result.replay_matches and result.lost_or_doubled == 0
    assert result.statuses.get("ACSC", 0) > 0.7 * result.valid
    assert result.reasons.get("RR04") == 1  # one sanctioned name in 80 messages (rate 1 %)
    assert {d.stage for d in result.dead_letters} == {"ingest", "authorise"}
    assert all(d.reason and d.reason.startswith("poison") for d in result.dead_letters)
    assert 0 < result.modelled_ms["p50"] <= result.modelled_ms["p99"]
    floor = run_floor(env, result.calls_by_operation)
    assert floor.calls >= result.snapshot.count() - 20  # the same calls, minus control-plane ones
    kinds = {(f.key, f.series): f.kind for f in figures(result, floor)}
    assert kinds[("tps_sustained", "pipeline")] == "measured on moto"
    assert kinds[("latency_p99", None)] == "modelled" and kinds[("handler_time_p99", None)] == "measured on moto"
    assert kinds[("cost_per_10k_tx", "pipeline")] == "computed"


def test_chaos_ends_with_nothing_lost_or_doubled(env: Any) -> None:
    result = run_chaos(env, payments=80, seed=5)
    assert result.crashes > 0 and sum(result.injected.values()) > 0
    assert result.lost_or_doubled == 0
    assert result.reconciliation.mismatches == () and result.reconciliation.balanced
    assert result.replay_matches


def test_cli_lists_subcommands_and_bench_writes_the_metrics_file(tmp_path: Path, monkeypatch: Any,
                                                                   capsys: Any) -> None:
    sys.path.insert(0, str(REPO_ROOT))
    from simulations.cli import build_parser, main

    help_text = build_parser().format_help()
    for name in ("generate", "bench", "replay", "chaos"):
        assert name in help_text
    monkeypatch.setenv("FASTERPAY_METRICS_DIR", str(tmp_path))
    assert main(["bench", "--payments", "30", "--seed", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "floor (same" in out and "measured on moto" in out
    metrics = read_metrics(tmp_path)["payment-pipeline"]
    assert metrics.figure("recon_mismatches_per_10k").value == "0.0"
    assert main(["replay", "--payments", "20", "--quiet"]) == 0
    assert "settlement replay matches" in capsys.readouterr().out
