"""The modelled cross-region latency, hedging and deadline-budget tables (simulations.region_latency)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from fasterpay.iso20022.schemes import SCHEMES
from fasterpay.metrics import read_metrics, write_metrics
from fasterpay.resilience.deadline import DEFAULT_MARGIN_S, HOPS
from simulations.region_latency import (
    INTER_REGION_RTT,
    NETWORK_SOURCES,
    STALL_ASSUMPTION,
    critical_path_table,
    deadline_budget_table,
    figures,
    markdown_tables,
    simulate_hedging,
)

N = 4_000  # enough for a stable p99 of a seeded run, fast enough for CI


@pytest.fixture(scope="module")
def rows() -> dict[str, object]:
    return {r.strategy: r for r in simulate_hedging(N, seed=11)}


def test_same_seed_same_table_other_seed_other_draws() -> None:
    assert simulate_hedging(N, seed=5) == simulate_hedging(N, seed=5)
    assert simulate_hedging(N, seed=5) != simulate_hedging(N, seed=6)


def test_every_row_is_labelled_modelled(rows: dict[str, object]) -> None:
    assert {r.kind for r in rows.values()} == {"modelled"}  # type: ignore[attr-defined]
    assert {r.kind for r in critical_path_table(500)} == {"modelled"}
    assert {r.kind for r in deadline_budget_table(500)} == {"modelled"}


@pytest.mark.parametrize("q", [90, 95])
def test_hedging_only_touches_the_tail_and_costs_the_share_above_the_threshold(rows: dict[str, object], q: int) -> None:
    plain, hedged = rows["plain"], rows[f"hedged after p{q} (same-region)"]
    assert hedged.p50_ms == plain.p50_ms  # type: ignore[attr-defined]  # the median read is never hedged
    assert hedged.p99_ms < plain.p99_ms  # type: ignore[attr-defined]
    assert hedged.extra_request_share == pytest.approx(1 - q / 100, abs=0.015)  # type: ignore[attr-defined]
    assert plain.extra_request_share == 0.0  # type: ignore[attr-defined]


def test_a_replica_backup_pays_the_round_trip(rows: dict[str, object]) -> None:
    for q in (90, 95):
        same, replica = rows[f"hedged after p{q} (same-region)"], rows[f"hedged after p{q} (replica)"]
        assert replica.p99_ms >= same.p99_ms  # type: ignore[attr-defined]


def test_hedging_pays_when_attempts_stall() -> None:
    stalled = {r.strategy: r for r in simulate_hedging(N, seed=11, quantiles=(95,), stall=STALL_ASSUMPTION)}
    plain, hedged = stalled["plain"], stalled["hedged after p95 (same-region)"]
    assert plain.p99_ms > 50  # the stall shows at the p99 of plain reads
    assert hedged.p99_ms < plain.p99_ms / 2


@pytest.mark.parametrize("kwargs", [{"n": 1}, {"backups": ("other-cloud",)}, {"stall": (1.5, 10.0)},
                                    {"stall": (0.1, -1.0)}])
def test_bad_simulation_inputs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        simulate_hedging(**{"n": 100, **kwargs})  # type: ignore[arg-type]


def test_the_cross_region_round_trip_is_the_cited_one() -> None:
    assert 10.0 <= INTER_REGION_RTT.p50_ms <= 12.0
    assert "11.327" in NETWORK_SOURCES["eu-west-2 <-> eu-west-1"]
    assert "Assumption" in NETWORK_SOURCES["same AZ"]


def test_a_synchronous_cross_region_call_adds_about_one_round_trip() -> None:
    table = {r.path: r for r in critical_path_table(N, seed=3)}
    for path in ("GetItem, from eu-west-2 to eu-west-1", "TransactWriteItems + synchronous copy to eu-west-1"):
        assert 9.0 < table[path].added_p99_ms < 16.0
    same_az, cross_az = table["network only: same-AZ RTT"], table["network only: cross-AZ RTT"]
    assert same_az.p99_ms < cross_az.p99_ms < table["network only: eu-west-2 <-> eu-west-1 RTT"].p50_ms


def test_budget_table_covers_every_hop_with_headroom() -> None:
    table = deadline_budget_table(N, seed=3)
    for scheme in ("uk_fps", "sepa_inst"):
        mine = [r for r in table if r.scheme == scheme]
        assert [r.hop for r in mine] == [*HOPS, "end to end"]
        limit = SCHEMES[scheme].clearing.time_limit_seconds  # type: ignore[union-attr]
        assert mine[-1].budget_ms == (limit - DEFAULT_MARGIN_S) * 1000
        assert sum(r.budget_ms for r in mine[:-1]) <= mine[-1].budget_ms + 1e-6
        assert all(r.headroom_ms > 0 for r in mine), [r for r in mine if r.headroom_ms <= 0]
        assert all(r.headroom_ms == pytest.approx(r.budget_ms - r.modelled_p99_ms) for r in mine)


def test_figures_are_modelled_and_publishable(tmp_path: Path) -> None:
    figs = figures(N, seed=3)
    assert {f.kind for f in figs} == {"modelled"}
    by_key = {(f.key, f.series): f for f in figs}
    assert by_key[("enforced_deadline_s", "uk_fps")].value == "14.00"
    assert by_key[("enforced_deadline_s", "sepa_inst")].value == "9.00"
    assert by_key[("cross_region_rtt_ms", None)].value == "11.30"
    assert Decimal(by_key[("getitem_p99_ms", "hedged p95")].value) < Decimal(by_key[("getitem_p99_ms", "plain")].value)
    share = Decimal(by_key[("hedge_extra_request_share", None)].value)
    assert Decimal(3) < share < Decimal(7)
    write_metrics("region-latency-test", figs, seed=3, backend="model", directory=tmp_path)
    assert len(read_metrics(tmp_path)["region-latency-test"].figures) == len(figs)


def test_markdown_tables_say_modelled() -> None:
    text = markdown_tables(500, seed=1)
    assert text.count("(modelled)") == 3
    assert "| uk_fps | clear |" in text and "| sepa_inst | end to end |" in text
