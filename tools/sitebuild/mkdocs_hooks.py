"""mkdocs hooks: before each build, generate everything the pages include.

* diagrams: ``diagrams/<slug>.py`` → ``docs/generated/diagrams/<slug>.png`` (re-rendered on change);
* notebooks: ``notebooks/*.ipynb`` executed once per content change → ``docs/generated/notebooks/``,
  their metrics → ``build/metrics/``;
* threat models: ``compliance/threats/<slug>.yaml`` → ``build/generated/threats/<slug>.md``, and a source
  page per referenced file under ``docs/generated/source/``;
* metrics: per-article figure tables, the KPI table, the latency model and the price table;
* the deployed stacks' idle cost per day (``simulations.deploy.estimate_markdown``);
* the testing and simulation page's tables, its synthetic dataset (``docs/generated/downloads/``) and one
  command per figure (``sitebuild.testing_guide``).

A failure in any step fails the build (mkdocs ``PluginError``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tools") not in sys.path:  # the hook is loaded by path; make its package importable
    sys.path.insert(0, str(REPO / "tools"))

from sitebuild.controls import ControlMappingError, render_checklist, render_controls  # noqa: E402
from sitebuild.dataflow import DataFlowError, load_flows, render_flows  # noqa: E402
from sitebuild.diagrams import DiagramError, render_all  # noqa: E402
from sitebuild.evidence import read_junit  # noqa: E402
from sitebuild.notebooks import NotebookExecutionError, execute_notebooks  # noqa: E402
from sitebuild.pages import (  # noqa: E402
    render_figures,
    render_kpis,
    render_recorded_runs,
    render_rows,
    source_page,
)
from sitebuild.speedups import install as install_speedups  # noqa: E402
from sitebuild.testing_guide import write_all as write_testing_guide  # noqa: E402
from sitebuild.threats import ThreatModelError, load_threat_model, render_markdown  # noqa: E402

GENERATED = REPO / "build" / "generated"
JUNIT = REPO / "build" / "test-results" / "junit.xml"  # written by `make test`
METRICS = REPO / "build" / "metrics"


def _write(path: Path, text: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return  # unchanged: keep the mtime so `mkdocs serve` does not rebuild in a loop
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _article_links() -> dict[str, str]:
    return {p.stem: f"articles/{p.name}" for p in (REPO / "docs" / "articles").glob("*.md")}


def generate(docs_dir: Path) -> None:
    out = docs_dir / "generated"
    try:
        render_all(REPO / "diagrams", out / "diagrams")
    except DiagramError as exc:
        raise PluginError(str(exc)) from exc
    try:
        execute_notebooks(
            (REPO / "notebooks").glob("*.ipynb"),
            package_dir=REPO / "reference" / "fasterpay",
            cache_dir=REPO / "build" / "notebook-cache",
            executed_dir=out / "notebooks",
            metrics_dir=METRICS,
            figures_dir=out / "figures",
        )
    except NotebookExecutionError as exc:
        raise PluginError(str(exc)) from exc

    sources: set[str] = set()
    for path in sorted((REPO / "compliance" / "threats").glob("*.yaml")):
        try:
            model = load_threat_model(path, repo_root=REPO)
        except ThreatModelError as exc:
            raise PluginError(str(exc)) from exc
        _write(GENERATED / "threats" / f"{path.stem}.md",
               render_markdown(model, link_base="../generated/source/", link_suffix=".md",
                               line_anchor="#__codelineno-0-{line}"))
        for mitigation in model.mitigations:
            sources.update(ref.path for ref in (*mitigation.code, *mitigation.tests))
    results = read_junit(JUNIT)
    try:
        controls, control_sources = render_controls(
            REPO / "compliance" / "controls.yaml", repo_root=REPO, link_base="generated/source/",
            articles=set(_article_links()), results=results,
        )
    except ControlMappingError as exc:
        raise PluginError(str(exc)) from exc
    _write(GENERATED / "controls.md", controls)
    try:
        checklist, checklist_sources = render_checklist(
            REPO / "compliance" / "checklist.yaml", repo_root=REPO, link_base="generated/source/",
            results=results)
    except ControlMappingError as exc:
        raise PluginError(str(exc)) from exc
    _write(GENERATED / "checklist.md", checklist)
    sources |= checklist_sources
    from fasterpay.vault.classes import DataClass

    flows_path = REPO / "compliance" / "dataflows.yaml"
    try:
        flows = load_flows(flows_path, templates_dir=REPO / "reference" / "fasterpay" / "cloudformation",
                           data_classes=tuple(c.value for c in DataClass))
    except DataFlowError as exc:
        raise PluginError(str(exc)) from exc
    import yaml

    _write(GENERATED / "dataflows.md", render_flows(flows, yaml.safe_load(flows_path.read_text(encoding="utf-8"))["forms"]))
    sources |= control_sources
    for src in sorted(sources):
        _write(out / "source" / f"{src}.md", source_page(src))

    from fasterpay.faults import DEFAULT_LATENCY_MODEL
    from fasterpay.metrics import read_metrics
    from fasterpay.pricing import DEFAULT_PRICES

    from fasterpay.metrics import machine_stamp

    _write(GENERATED / "machine.md", render_rows(["Platform", "Machine", "CPUs", "Python"], [
        tuple(machine_stamp()[k] for k in ("platform", "machine", "cpu_count", "python"))]))
    metrics = read_metrics(METRICS) if METRICS.exists() else {}
    for slug, m in metrics.items():
        _write(GENERATED / "metrics" / f"{slug}.md", render_figures(m))
    _write(GENERATED / "kpis.md", render_kpis(metrics, _article_links()))
    try:
        write_testing_guide(repo=REPO, generated=GENERATED, downloads=out / "downloads",
                            download_link="generated/downloads", metrics=metrics, article_links=_article_links(),
                            write=_write)
    except (LookupError, RuntimeError) as exc:
        raise PluginError(f"testing and simulation page: {exc}") from exc
    recorded = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((REPO / "simulations" / "results").glob("*.json"))]
    _write(GENERATED / "recorded-runs.md", render_recorded_runs(recorded))
    _write(GENERATED / "latency-model.md", render_rows(
        ["Service", "Operation", "p50 (ms)", "p99 (ms)"],
        [(r["service"], r["operation"], r["p50_ms"], r["p99_ms"]) for r in DEFAULT_LATENCY_MODEL.describe()],
    ) + f"\nSource: {DEFAULT_LATENCY_MODEL.source}\n")
    from simulations.deploy import estimate_markdown

    _write(GENERATED / "deploy-estimate.md", estimate_markdown())  # the idle stacks' cost per day, no AWS call
    _write(GENERATED / "price-table.md", render_rows(
        ["Item", "USD"],
        [(f.name.replace("_", " "), getattr(DEFAULT_PRICES, f.name)) for f in fields(DEFAULT_PRICES)
         if f.name not in ("as_of", "region", "source_urls")],
    ) + f"\nPrices as of {DEFAULT_PRICES.as_of}, {DEFAULT_PRICES.region}; sources: "
        + ", ".join(f"<{u}>" for u in DEFAULT_PRICES.source_urls) + "\n")


def on_config(config: Any, **_: Any) -> None:
    install_speedups()  # the build's repeated template compiles and style tables, done once (sitebuild.speedups)


def on_pre_build(config: Any, **_: Any) -> None:
    generate(Path(config["docs_dir"]))
