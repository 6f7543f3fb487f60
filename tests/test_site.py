"""The site: a strict build, each article's four parts, no broken links, anchors or images, no figure
typed by hand, and no code typed into a page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from sitebuild.pages import number, render_kpis
from sitecheck import REPO, fenced_blocks, parse, resolve, snippet_includes

pytestmark = [pytest.mark.site, pytest.mark.xdist_group("site"),
              pytest.mark.timeout(1800)]  # the first test waits for the site build (the notebooks), slow on a busy machine

ARTICLES = sorted(p.stem for p in (REPO / "docs" / "articles").glob("*.md"))


def test_there_is_at_least_one_article() -> None:
    assert "tokenisation-vault" in ARTICLES


@pytest.mark.parametrize("slug", ARTICLES)
def test_each_article_has_its_sources(slug: str) -> None:
    assert (REPO / "diagrams" / f"{slug}.py").is_file(), "diagram as code"
    assert (REPO / "compliance" / "threats" / f"{slug}.yaml").is_file(), "threat model as data"
    assert list((REPO / "notebooks").glob(f"[0-9][0-9]-{slug}.ipynb")), "notebook NN-<slug>.ipynb"


@pytest.mark.parametrize("slug", ARTICLES)
def test_each_article_page_shows_its_four_parts(site: Path, slug: str) -> None:
    html_path = site / "articles" / slug / "index.html"
    page = parse(html_path)
    html = html_path.read_text(encoding="utf-8")
    assert any(src.endswith(f"generated/diagrams/{slug}.png") for src in page.images), "diagram"
    assert f"threat-{slug}-t1" in page.ids and f"threat-{slug}-m1" in page.ids, "threat model table"
    assert re.search(r'<h2 id="checklist"', html) and html.count('type="checkbox"') >= 5, "checklist"
    assert any(url.startswith("../../generated/notebooks/") for _, url in page.links), "link to its notebook"
    notebook_page = next((site / "generated" / "notebooks").glob(f"*-{slug}/index.html"))
    assert "jp-OutputArea" in notebook_page.read_text(encoding="utf-8"), "executed notebook with outputs"


def test_no_broken_internal_links_anchors_or_images(site: Path) -> None:
    pages = {p.resolve(): parse(p) for p in site.rglob("*.html")}
    broken = []
    for path, page in pages.items():
        for kind, url in page.links:
            if url.startswith(("mailto:", "javascript:", "data:")) or url == "#":
                continue
            target, fragment = resolve(site, path, url)
            if target is None:
                continue
            where = f"{path.relative_to(site.resolve())}: {kind}={url}"
            if not target.exists():
                broken.append(f"{where} (missing file)")
            elif fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse(target).ids
                if fragment not in ids:
                    broken.append(f"{where} (missing anchor)")
    assert not broken, "\n".join(broken)


def test_every_image_is_a_real_png(site: Path) -> None:
    for html in site.rglob("*.html"):
        for src in parse(html).images:
            target, _ = resolve(site, html.resolve(), src)
            if target is not None and target.suffix == ".png":
                assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000, src


def test_every_figure_on_the_kpi_page_comes_from_a_metrics_file(site: Path) -> None:
    metrics = {p.stem: json.loads(p.read_text()) for p in (REPO / "build" / "metrics").glob("*.json")}
    assert "tokenisation-vault" in metrics
    html = (site / "kpis" / "index.html").read_text(encoding="utf-8")
    published = [f for m in metrics.values() for f in m["figures"] if f["kpi"]]
    assert published
    for figure in published:
        assert f"<strong>{number(figure['value'])}</strong>" in html, figure
    shown = re.findall(r"<strong>([0-9.,]+)</strong>", html)
    assert sorted(shown) == sorted(number(f["value"]) for f in published), "a number on the KPI page has no metrics file"
    from sitebuild.pages import KPIS

    produced = {f["kpi"] for f in published}
    missing = [k for k in KPIS if k.id not in produced]
    assert html.count("not produced yet") == len(missing)  # a KPI no article produces yet says so
    assert render_kpis({}, {}).count("not produced yet") == len(KPIS)  # with no metrics, every KPI says so


def test_vault_evidence_meets_the_caching_goal(site: Path) -> None:
    metrics = json.loads((REPO / "build" / "metrics" / "tokenisation-vault.json").read_text())
    by = {(f["key"], f["series"]): f for f in metrics["figures"]}
    cached = by[("kms_per_10k_tokenize", "cached data keys")]
    assert float(cached["value"]) < 10 and cached["kind"] == "counted" and cached["sample_size"] >= 1112
    assert float(by[("kms_per_10k_tokenize", "KMS call per item")]["value"]) == 10_000
    assert {f["kind"] for f in metrics["figures"]} >= {"measured on moto", "modelled", "counted", "computed"}


def _pages() -> list[Path]:
    """The hand-written pages (``docs/generated`` holds the build's view-source pages of tested files)."""
    docs = REPO / "docs"
    return sorted(p for p in docs.rglob("*.md") if "generated" not in p.relative_to(docs).parts)


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_code_is_typed_into_a_page(page: Path) -> None:
    for block in fenced_blocks(page):
        body = [line for line in block if line.strip()]
        assert body and all(line.strip().startswith('--8<-- "') for line in body), (
            f"{page.name}: a code block must only include files:\n" + "\n".join(block))


TESTED_INCLUDES = {
    # path prefix: what executes or checks it
    "reference/examples/": "tests/test_examples.py runs every example",
    "reference/fasterpay/cloudformation/": "tests deploy every template to moto",
    "templates/": "tests/test_templates.py checks every template",
    "build/generated/": "generated by the build from data the tests validate",
    "simulations/examples/": "tests/test_testing_guide.py runs every recipe and parses every command",
    "docs/runbooks/": "tests/test_runbooks.py runs every rehearsal and checks every AWS command and JSON file",
}


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_included_file_is_exercised_by_the_tests(page: Path) -> None:
    for include in snippet_includes(page):
        path = include.split(":")[0]
        assert any(path.startswith(prefix) for prefix in TESTED_INCLUDES), f"{page.name} includes untested {path}"
        if not path.startswith("build/"):
            assert (REPO / path).is_file(), path


def test_threat_model_mitigations_render_with_working_source_links(site: Path) -> None:
    model = yaml.safe_load((REPO / "compliance" / "threats" / "tokenisation-vault.yaml").read_text())
    html = (site / "articles" / "tokenisation-vault" / "index.html").read_text(encoding="utf-8")
    for threat in model["threats"]:
        assert f'id="threat-tokenisation-vault-{threat["id"].lower()}"' in html
    assert "generated/source/tests/test_vault.py/#__codelineno-0-" in html


def test_the_pipeline_notebooks_outputs_hold_no_personal_data(site: Path) -> None:
    """What a reader sees of the pipeline runs: no IBAN, card number, e-mail or generated customer name.

    (The vault notebook shows detokenized values on purpose: that is its pattern, so it is not scanned.)"""
    from fasterpay.observability.redaction import PersonalValueRegistry
    from simulations.generator import party_names
    from simulations.personal_data_scan import scan_notebooks

    registry = PersonalValueRegistry()
    assert registry.register_many(party_names()) == len(party_names())
    executed = REPO / "docs" / "generated" / "notebooks"
    paths = [executed / "03-payment-pipeline.ipynb", executed / "04-audit-observability.ipynb"]
    report = scan_notebooks(paths, registry=registry)
    assert report.items_scanned >= 20, report.items  # 37 text outputs at CI size
    assert report.refusals == 0, report.examples


def _png_dpi_and_width(png: bytes) -> tuple[float, int]:
    """(dots per inch from the pHYs chunk, pixel width) of a PNG; dpi 0 when it states none."""
    import struct

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = struct.unpack(">I", png[16:20])[0]
    at = 8
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        if kind == b"pHYs":
            per_metre, _, unit = struct.unpack(">IIB", png[at + 8:at + 17])
            return (per_metre * 0.0254 if unit == 1 else 0.0), width
        at += 12 + length
    return 0.0, width


def test_every_notebook_plot_is_150_dpi_and_sized_to_the_column(site: Path) -> None:
    """Plots are drawn at 150 dpi or more and at most 7.2 inches wide, so the site shows them near their
    drawn size: labels stay legible in the column, and sharp when opened full size."""
    import base64

    import nbformat

    plots = 0
    for path in sorted((REPO / "docs" / "generated" / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {}).get("image/png")
                if not data:
                    continue
                plots += 1
                dpi, width = _png_dpi_and_width(base64.b64decode(data))
                assert dpi >= 149.9, f"{path.name}: a plot at {dpi:.0f} dpi"
                assert width / dpi <= 7.2 + 1e-6, f"{path.name}: a plot {width / dpi:.1f} in wide"
    assert plots >= 10


API_PACKAGES = ["agents", "audit", "finops", "idempotency", "iso20022", "ledger", "observability", "pipeline",
                "resilience", "security", "vault"]


@pytest.mark.parametrize("package", API_PACKAGES)
def test_the_api_reference_documents_every_public_name_of_a_pattern(site: Path, package: str) -> None:
    """One page per pattern package, generated from the docstrings: every name in ``__all__`` has an entry."""
    import importlib

    module = importlib.import_module(f"fasterpay.{package}")
    html = (site / "api" / package / "index.html").read_text(encoding="utf-8")
    ids = set(re.findall(r'id="(fasterpay\.[\w.]+)"', html))
    missing = [name for name in module.__all__  # the package's own entry, or its defining module's
               if not any(i == f"fasterpay.{package}.{name}" or (i.startswith(f"fasterpay.{package}.")
                                                                  and i.endswith(f".{name}")) for i in ids)]
    assert missing == [], missing
