"""The pipeline at volume: the bench meets its targets against the honest floor, and a chaos run of 1,000+
payments with harsh faults and every crash point hit at least 5 times ends with nothing lost, doubled or
left non-final. Both go through the command line, as a reader would run them."""

from __future__ import annotations

import json
from pathlib import Path
from dataclasses import replace
from typing import Any

import pytest

from fasterpay.metrics import percentile, read_metrics
from simulations.cli import build_parser, main
from simulations.pipeline_bench import CRASH_POINTS

#: Run sizes: the issue's 1,000 payments for both runs in CI (the full profile's 100,000-payment chaos run
#: is recorded in simulations/results). The chaos run takes about two minutes alone on one core (the suite
#: starts it first, so the other worker runs everything else meanwhile); the bench about a minute and a half. p99 needs the 1,000: at a few hundred payments
#: it rests on the top two or three samples.
SIZE = 1000
CHAOS_SIZE = 1000
RESULTS = Path(__file__).resolve().parents[1] / "simulations" / "results"
#: The issue's targets (ISSUE 8), checked on the bench's own counts.
MAX_CALLS_PER_PAYMENT = 4
MAX_COST_PER_10K_USD = 0.10
MAX_KMS_PER_10K = 9
MAX_P99_INGEST_TO_ACSP_MS = 150
MAX_P99_AUTHORISE_MS = 75


def _last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


def test_the_cli_lists_its_subcommands_and_crash_points(capsys: Any) -> None:
    help_text = build_parser().format_help()
    for name in ("generate", "bench", "replay", "chaos"):
        assert name in help_text
    assert main(["chaos", "--list-crash-points"]) == 0
    assert capsys.readouterr().out.split() == list(CRASH_POINTS)


def test_chaos_refuses_rates_that_add_up_to_more_than_one(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["chaos", "--throttle-rate", "0.6", "--timeout-rate", "0.5", "--json"])
    assert exited.value.code == 2


@pytest.fixture(scope="module")
def bench_1000(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One bench through the command line (SIZE payments), shared by the target tests."""
    import contextlib
    import io
    import os

    metrics_dir = tmp_path_factory.mktemp("bench-metrics")
    previous = os.environ.get("FASTERPAY_METRICS_DIR")
    os.environ["FASTERPAY_METRICS_DIR"] = str(metrics_dir)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            # the floor's calls per payment do not depend on its size (1.408 at 250, 1.405 at 1,000): 250 keep
            # the fixture a minute shorter
            code = main(["bench", "--payments", str(SIZE), "--floor-payments", "250", "--seed", "7", "--json"])
    finally:
        if previous is not None:
            os.environ["FASTERPAY_METRICS_DIR"] = previous
    summary = _last_json(out.getvalue())
    assert code == 0, summary
    return summary, metrics_dir


@pytest.mark.volume
@pytest.mark.xdist_group("bench")
def test_bench_is_exact_and_meets_the_call_cost_and_kms_targets(
        bench_1000: tuple[dict[str, Any], Path]) -> None:
    summary, metrics_dir = bench_1000
    assert summary["payments"] == SIZE
    assert (summary["lost"], summary["doubled"], summary["non_final"], summary["reconciliation_mismatches"]) == (0, 0, 0, 0)
    assert summary["api_calls_per_payment"] <= MAX_CALLS_PER_PAYMENT
    assert float(summary["cost_per_10k_usd"]) <= MAX_COST_PER_10K_USD
    assert summary["kms_requests_per_10k"] <= MAX_KMS_PER_10K
    assert 1 < summary["floor_ratio_calls"] < 3 and summary["floor_ratio_cost"] > 1
    assert summary["floor_payments"] == 250 and summary["floor_ratio_wall"] > 0  # the ratios are per payment
    assert set(summary["cost_by_component"]) >= {"dynamodb writes", "sqs", "lambda duration", "logs"}
    metrics = read_metrics(metrics_dir)["payment-pipeline"]
    assert metrics.figure("latency_p99").kind == "modelled"
    assert metrics.figure("cost_per_10k_tx", "pipeline").kind == "computed"


@pytest.mark.volume
@pytest.mark.xdist_group("bench")
def test_bench_meets_the_latency_targets(bench_1000: tuple[dict[str, Any], Path]) -> None:
    summary, _ = bench_1000
    assert summary["modelled_p99_ms_ingest_to_acsp"] <= MAX_P99_INGEST_TO_ACSP_MS
    assert summary["modelled_p99_ms_authorise"] <= MAX_P99_AUTHORISE_MS


@pytest.mark.volume
@pytest.mark.xdist_group("chaos")
@pytest.mark.timeout(1800)  # about two minutes alone on one core; slower while the site builds beside it
def test_chaos_at_volume_loses_and_doubles_nothing_with_every_crash_point_hit(capsys: Any) -> None:
    code = main(["chaos", "--payments", str(CHAOS_SIZE), "--seed", "3", "--duplicate-rate", "0.1", "--throttle-rate", "0.05",
                 "--timeout-rate", "0.01", "--lost-response-rate", "0.01", "--kms-fault-rate", "0.01",
                 "--crash-rate", "0.02", "--min-crashes-per-point", "5", "--json"])
    summary = _last_json(capsys.readouterr().out)
    assert code == 0, summary
    assert summary["payments"] >= CHAOS_SIZE >= 1000
    assert (summary["lost"], summary["doubled"], summary["non_final"], summary["reconciliation_mismatches"]) == (0, 0, 0, 0)
    assert all(v == 0 for v in summary["ledger_sum_by_currency"].values())
    assert {p: n for p, n in summary["crash_points_hit"].items() if n < 5} == {}
    assert set(summary["crash_points_hit"]) == set(CRASH_POINTS)
    for kind in ("throttle", "timeout", "lost_response", "server_error"):
        assert summary["injected"].get(kind, 0) > 0, kind
    assert all(letter["reason"].startswith("poison") for letter in summary["dead_letters"])
    assert summary["answer_conflicts"] == 0


def test_replay_rebuilds_every_cycle_and_matches(capsys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulations.cli as cli

    commits = iter(["c0de" * 10, "after" * 8])  # a commit made while the run runs is not the run's code
    monkeypatch.setattr(cli, "_commit", lambda: next(commits))
    assert main(["replay", "--payments", "60", "--seed", "4", "--json", "--record", str(tmp_path)]) == 0
    summary = _last_json(capsys.readouterr().out)
    assert summary["reconciliation_mismatches"] == 0 and summary["ok"] is True
    record = json.loads((tmp_path / "replay-60-seed4.json").read_text())
    assert record["command"] == f"python -m simulations replay --payments 60 --seed 4 --json --record {tmp_path}"
    assert record["summary"] == summary and record["seconds"] == summary["seconds"]
    assert record["machine"]["cpu_count"] >= 1 and record["date"].startswith("20")
    assert record["commit"] == "c0de" * 10


def test_recorded_runs_are_complete_and_passed() -> None:
    """Every run kept in simulations/results (the site publishes them) passed and says how it was run."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from sitebuild.pages import render_recorded_runs

    records = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    for record in records:
        summary = record["summary"]
        assert record["command"].startswith("python -m simulations "), record["command"]
        assert summary["ok"] is True and (summary["lost"], summary["doubled"], summary["non_final"]) == (0, 0, 0)
        assert all(v == 0 for v in summary["ledger_sum_by_currency"].values())
        assert f"--payments {summary['payments']}" in record["command"]
    table = render_recorded_runs(records)
    assert all(f"`{record['command']}`" in table for record in records)
    assert all(len(line.split(" | ")) <= 1 + len(records) for line in table.splitlines() if line.startswith("| "))


def test_a_run_split_across_processes_submits_the_same_payments_and_adds_up() -> None:
    """Two processes with a table set each end exactly as one process does when nothing is faulted:
    same statuses and reasons (the traffic and the funding depend only on the seed and the set), and the
    merged counts, calls and percentiles are those of the parts together."""
    from fasterpay.aws import open_environment
    from simulations.pipeline_bench import RunSettings, merge_summaries, run_pipeline, run_pipeline_parallel

    settings = RunSettings(payments=40, seed=5, set_size=20, gateway_timeout_rate=0.0)
    with open_environment() as env:
        single = run_pipeline(env, settings)
    split = run_pipeline_parallel(settings, workers=2)
    assert split.payments == single.payments == 40
    assert split.statuses == single.statuses and split.reasons == single.reasons
    assert split.ok and split.valid == single.valid
    assert split.calls_by_operation == single.calls_by_operation  # same work, counted once each

    doubled = merge_summaries([single, single], settings=settings, seconds=1.0)
    assert doubled.payments == 80 and doubled.statuses == {k: 2 * v for k, v in single.statuses.items()}
    assert doubled.snapshot.count() == 2 * single.snapshot.count()
    both = 2 * single.latency_samples["ingest_to_acsp"]
    assert doubled.latency_ms["ingest_to_acsp"]["p99"] == percentile(both, 99)
    assert doubled.latency_ms["ingest_to_acsp"]["n"] == 2 * single.latency_ms["ingest_to_acsp"]["n"]
    lost = merge_summaries([single, replace(single, lost=1)], settings=settings, seconds=1.0)
    assert lost.lost == 1 and not lost.ok


def test_replay_reports_a_cycle_whose_entries_no_longer_match_its_report(
        capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay really rebuilds each cycle: an entry lost after the close is reported, and the run fails."""
    from simulations.pipeline_bench import PipelineHarness

    settle = PipelineHarness.settle
    damaged: list[str] = []

    def settle_then_lose_an_entry(self: PipelineHarness, cycle: str) -> int:
        attempts = settle(self, cycle)
        if not damaged:
            table = self.config.settlement_table
            items = self.admin_ddb.query(TableName=table, KeyConditionExpression="pk = :c AND begins_with(sk, :e)",
                                         ExpressionAttributeValues={":c": {"S": cycle}, ":e": {"S": "ENTRY#"}})["Items"]
            if items:
                self.admin_ddb.delete_item(TableName=table, Key={"pk": items[0]["pk"], "sk": items[0]["sk"]})
                damaged.append(cycle)
        return attempts

    monkeypatch.setattr(PipelineHarness, "settle", settle_then_lose_an_entry)
    assert main(["replay", "--payments", "40", "--seed", "4", "--json", "--quiet"]) != 0
    summary = _last_json(capsys.readouterr().out)
    assert damaged and summary["replay_mismatches"] >= 1 and summary["ok"] is False
    assert summary["reconciliation_mismatches"] >= 1


@pytest.mark.parametrize("real_sleep", [False, True], ids=["virtual", "real-sleep"])
def test_real_sleep_sleeps_each_calls_modelled_latency_in_wall_time(
        real_sleep: bool, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--real-sleep`` threads ``RunSettings.real_sleep`` to the harness's ``FaultInjector(sleep=True)``: every
    modelled second is slept (and the run takes at least that long); without it nothing is slept."""
    import fasterpay.faults as faults
    import time as real_time

    slept: list[float] = []

    class _Clock:  # the injector's ``time`` module, with sleep recorded
        def __getattr__(self, name: str) -> Any:
            return getattr(real_time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            slept.append(seconds)
            real_time.sleep(seconds)

    monkeypatch.setattr(faults, "time", _Clock())
    args = ["bench", "--payments", "3", "--seed", "7", "--no-metrics", "--json", "--quiet"]
    assert main(args + (["--real-sleep"] if real_sleep else [])) == 0
    summary = _last_json(capsys.readouterr().out)
    modelled = summary["modelled_aws_seconds"]
    assert summary["settings"]["real_sleep"] is real_sleep and modelled > 0.05
    if real_sleep:
        assert sum(slept) == pytest.approx(modelled, rel=0.01, abs=0.01)
        assert summary["seconds"] >= 0.5 * modelled  # a lower bound only: moto's own time adds to it
    else:
        assert slept == []
