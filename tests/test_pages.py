"""Fragments the build renders from metrics files: KPI table and per-article figure tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from fasterpay.metrics import Figure, read_metrics, write_metrics
from sitebuild.pages import KPIS, render_figures, render_kpis, render_rows, source_page


@pytest.fixture
def metrics(tmp_path: Path) -> Path:
    figures = [
        Figure.of("ops", "Throughput", 123.456, "ops/s", "measured on moto", 100, places=0, series="fast"),
        Figure.of("ops", "Throughput", 45.6, "ops/s", "measured on moto", 100, places=0, series="slow"),
        Figure.of("audited", "Audited events", 42, "events", "counted", 42, places=0, kpi="audited_detokenize_events"),
    ]
    write_metrics("demo", figures, seed=7, backend="moto", directory=tmp_path)
    return tmp_path


def test_figures_render_series_side_by_side_and_singles_apart(metrics: Path) -> None:
    md = render_figures(read_metrics(metrics)["demo"])
    compared, single, stamp = md.strip().split("\n\n")
    assert compared.splitlines()[0] == "| Figure | fast | slow | Unit | How obtained | Sample |"
    assert "| Throughput | 123 | 46 | ops/s | measured on moto | 100 (small) |" in compared
    assert "| Audited events | 42 | events | counted | 42 (small) |" in single
    assert "seed 7" in stamp and "backend moto" in stamp


def test_kpi_table_shows_produced_kpis_and_names_what_is_missing(metrics: Path) -> None:
    md = render_kpis(read_metrics(metrics), {"demo": "articles/demo.md"})
    assert "| Audited detokenize events | **42** | events | counted | 42 (small) | [demo](articles/demo.md) |" in md
    assert all(f"- **{k.name}** ({k.unit}): {k.meaning}" in md for k in KPIS)  # one definition each
    missing = [k for k in KPIS if k.id != "audited_detokenize_events"]
    assert md.count("*not produced yet*") == len(missing)


def test_figures_reject_floats_as_text_and_unknown_kinds() -> None:
    for bad in ("not a number", "NaN", "Infinity"):
        with pytest.raises(ValueError, match="finite decimal"):
            Figure("x", "X", bad, "u", "counted", 1)
    with pytest.raises(ValueError):
        Figure.of("x", "X", 1, "u", "guessed", 1)


def test_repeated_figure_key_is_refused(tmp_path: Path) -> None:
    f = Figure.of("x", "X", 1, "u", "counted", 1)
    with pytest.raises(ValueError, match="repeated"):
        write_metrics("demo", [f, f], seed=1, backend="moto", directory=tmp_path)


def test_rows_escape_pipes_and_source_pages_include_the_file() -> None:
    assert "a \\| b" in render_rows(["H"], [["a | b"]])
    page = source_page("reference/fasterpay/vault/core.py")
    assert '```python linenums="1"' in page and '--8<-- "reference/fasterpay/vault/core.py"' in page
    assert page.startswith("---\nsearch:\n  exclude: true\n---\n")  # raw listings stay out of search


def test_values_get_thousands_separators_and_keep_their_decimals(tmp_path: Path) -> None:
    figures = [Figure.of("n", "Payments", 10_000, "payments", "counted", 10_000, places=1),
               Figure.of("c", "Cost", 0.0931, "USD", "computed", 1_500, places=4)]
    write_metrics("demo", figures, seed=1, backend="moto", directory=tmp_path)
    md = render_figures(read_metrics(tmp_path)["demo"])
    assert "| Payments | 10,000.0 | payments | counted | 10,000 |" in md
    assert "| Cost | 0.0931 | USD | computed | 1,500 |" in md


def test_every_kpi_has_one_definition() -> None:
    assert len({k.id for k in KPIS}) == len(KPIS) and all(k.meaning.strip() for k in KPIS)
    assert {"tps_sustained", "tps_peak", "latency_p50", "latency_p95", "latency_p99", "authorise_p50", "authorise_p95",
            "authorise_p99", "error_rate", "recon_mismatches_per_10k", "cost_per_10k_tx", "cost_by_component",
            "audited_detokenize_events", "unauthorised_attempts"} <= {k.id for k in KPIS}


def test_series_compared_in_different_sets_get_tables_of_their_own(tmp_path: Path) -> None:
    figures = [Figure.of("calls", "Calls", 4, "calls", "counted", 1_000, series="pipeline"),
               Figure.of("calls", "Calls", 1, "calls", "counted", 1_000, series="floor"),
               Figure.of("missed", "Missed", 1, "%", "counted", 1_000, series="exact"),
               Figure.of("missed", "Missed", 2, "%", "counted", 1_000, series="fuzzy")]
    write_metrics("demo", figures, seed=1, backend="moto", directory=tmp_path)
    first, second, _ = render_figures(read_metrics(tmp_path)["demo"]).strip().split("\n\n")
    assert first.splitlines()[0] == "| Figure | pipeline | floor | Unit | How obtained | Sample |"
    assert second.splitlines()[0] == "| Figure | exact | fuzzy | Unit | How obtained | Sample |"
