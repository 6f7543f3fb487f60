"""The testing and simulation page: its recipes run and do what the page says, its generated tables come from
the code, its dataset is reproducible, every command it shows is a real command, and every figure on the site
has a notebook that writes it."""

from __future__ import annotations

import hashlib
import json
import re
import runpy
import shlex
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fasterpay.metrics import Figure, MetricsFile
from sitebuild import testing_guide as guide

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "testing-and-simulation.md"
EXAMPLES = REPO / "simulations" / "examples"
COMMANDS = EXAMPLES / "testing_commands.sh"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


# -- the recipes ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recipes() -> dict[str, Any]:
    return runpy.run_path(str(EXAMPLES / "chaos_recipes.py"))


def test_real_sleep_takes_the_modelled_latency_in_wall_time(env: Any, recipes: dict[str, Any]) -> None:
    timings = recipes["real_sleep"](env)
    (modelled, _), (slept_modelled, slept_wall) = timings["modelled"], timings["slept"]
    assert modelled == slept_modelled > 0  # the same seed draws the same latencies
    assert slept_wall >= slept_modelled


def test_a_throttle_storm_answers_in_each_services_own_error_code(env: Any, recipes: dict[str, Any]) -> None:
    assert recipes["throttle_storm"](env) == {
        "dynamodb": "ThrottlingException", "sqs": "RequestThrottled", "kms": "ThrottlingException"}


def test_a_lost_response_commits_and_the_retry_meets_the_write(env: Any, recipes: dict[str, Any]) -> None:
    assert recipes["lost_response"](env) == {
        "first": "timed out", "committed": True, "retry": "ConditionalCheckFailedException"}


def test_a_partitioned_region_is_unreachable_and_the_other_answers(env: Any, recipes: dict[str, Any]) -> None:
    assert recipes["region_partition"](env) == {"eu-west-2": "answered", "eu-west-1": "unreachable"}


@pytest.fixture(scope="module")
def pipeline(recipes: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    from fasterpay.aws import open_environment

    with open_environment("moto", region="eu-west-2") as environment:
        yield environment, recipes["pipeline_under_test"](environment)


def test_the_clear_stage_cut_off_from_sqs_answers_each_payment_once_after_it_heals(
        pipeline: tuple[Any, Any], recipes: dict[str, Any]) -> None:
    env, infra = pipeline
    out = recipes["stage_partition"](env, infra)
    submitted = set(out["submitted"])
    assert out["during"] == [] and out["unreachable"] >= 1  # decided, but no answer got out
    assert out["failed"]["clear"] == len(submitted)  # the whole batch came back
    answered = [a["end_to_end_id"] for a in out["after"]]
    assert sorted(answered) == sorted(submitted)  # every payment answered, none twice
    mine = {a["uetr"]: a["status"] for a in out["after"]}
    assert all(out["decided"][uetr] == status for uetr, status in mine.items())  # the first decision stands


def test_a_crash_at_a_named_point_is_redelivered_and_answered_once(
        pipeline: tuple[Any, Any], recipes: dict[str, Any]) -> None:
    from simulations.pipeline_bench import CRASH_POINTS

    env, infra = pipeline
    out = recipes["crash_and_redeliver"](env, infra)
    assert out["crashes"] == 1 and out["crashed_at"] in CRASH_POINTS
    assert sorted(a["end_to_end_id"] for a in out["answers"]) == sorted(out["submitted"])


def test_the_payload_recipe_meets_every_expected_outcome() -> None:
    out = runpy.run_path(str(EXAMPLES / "payload_recipe.py"))["main"]()
    from simulations.generator import DUPLICATE_CASES, INVALID_CASES

    assert out["messages"] == 200 and out["wrong"] == []
    assert set(out["cases"]) == {"valid", *INVALID_CASES, *DUPLICATE_CASES}


# -- the commands ----------------------------------------------------------------------------------------------
def _commands() -> list[list[str]]:
    return [shlex.split(line) for line in COMMANDS.read_text(encoding="utf-8").splitlines()
            if line.startswith("python ")]


def test_every_command_on_the_page_is_accepted_by_its_own_parser(tools_run_notebook: Any) -> None:
    from simulations.cli import build_parser

    notebook_parser = tools_run_notebook["build_parser"]

    commands = _commands()
    assert len(commands) >= 10
    for argv in commands:
        if argv[:3] == ["python", "-m", "simulations"]:
            build_parser().parse_args(argv[3:])  # exits (SystemExit) on an unknown option or value
        elif argv[:2] == ["python", "-m"]:
            assert (REPO / (argv[2].replace(".", "/") + ".py")).is_file(), argv
        else:
            assert argv[1] == "tools/run_notebook.py", argv
            notebook_parser().parse_args(argv[2:])


def test_the_crash_points_the_page_lists_are_what_the_chaos_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    from simulations.cli import main
    from simulations.pipeline_bench import CRASH_POINTS

    assert main(["chaos", "--list-crash-points"]) == 0
    assert capsys.readouterr().out.split() == list(CRASH_POINTS)
    table = guide.render_crash_points()
    assert all(f"`{point}`" in table for point in CRASH_POINTS)


# -- tools/run_notebook.py ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tools_run_notebook() -> Any:
    return runpy.run_path(str(REPO / "tools" / "run_notebook.py"))


def test_run_notebook_takes_a_notebook_and_a_run_size(tools_run_notebook: Any) -> None:
    parser = tools_run_notebook["build_parser"]()
    args = parser.parse_args(["notebooks/03-payment-pipeline.ipynb", "--scale", "full"])
    assert args.notebook == REPO / "notebooks" / "03-payment-pipeline.ipynb" and args.scale == "full"
    assert args.metrics_dir == REPO / "build" / "metrics"
    for bad in (["notebooks/no-such.ipynb"], ["README.md"], ["notebooks/03-payment-pipeline.ipynb", "--scale", "huge"],
                []):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(bad)
        assert exit_.value.code == 2


def test_run_notebook_executes_in_a_fresh_kernel_with_this_checkout_and_keeps_the_metrics(
        tools_run_notebook: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    monkeypatch.setenv("FASTERPAY_SCALE", "ci")  # main() sets both for its kernel; monkeypatch restores them
    monkeypatch.setenv("PYTHONPATH", "")
    notebook = tmp_path / "99-demo.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(
        "import fasterpay, simulations\n"
        "from fasterpay.metrics import Figure, scale, write_metrics\n"
        "write_metrics('demo', [Figure.of('where', fasterpay.__file__ + '|' + simulations.__file__, 1, 'x', 'counted', 1)],\n"
        "              seed=1, backend=scale())\n")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), notebook)
    metrics, out = tmp_path / "metrics", tmp_path / "executed"
    status = tools_run_notebook["main"]([str(notebook), "--scale", "full", "--metrics-dir", str(metrics),
                                         "--out", str(out)])
    assert status == 0, capsys.readouterr()
    written = json.loads((metrics / "demo.json").read_text(encoding="utf-8"))
    package, sims = written["figures"][0]["label"].split("|")
    assert Path(package).is_relative_to(REPO / "reference") and Path(sims).is_relative_to(REPO)
    assert written["backend"] == "full"  # the run size reached the kernel
    assert (out / notebook.name).is_file()


def test_run_notebook_fails_when_a_cell_fails(tools_run_notebook: Any, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    monkeypatch.setenv("FASTERPAY_SCALE", "ci")
    monkeypatch.setenv("PYTHONPATH", "")
    notebook = tmp_path / "98-broken.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("raise ValueError('broken on purpose')")],
                                metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}}), notebook)
    assert tools_run_notebook["main"]([str(notebook), "--metrics-dir", str(tmp_path / "m"),
                                       "--out", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "m").exists()


# -- the generated tables ----------------------------------------------------------------------------------------
def test_the_generator_table_shows_every_distribution_the_generator_draws_from() -> None:
    from fasterpay.iso20022.schemes import SCHEMES
    from simulations import generator as g

    table = guide.render_generator()
    for band, (low, high) in g.AMOUNT_BANDS.items():
        assert re.search(rf"\| `{band}` \| {low:,.2f} \| {high:,.2f} \| {g.DEFAULT_AMOUNT_MIX[band]} \|", table)
    for case in g.INVALID_CASES.values():
        assert f"| `{case.name}` | `{case.reason.value}` |" in table
    for name, reason in g.DUPLICATE_CASES.items():
        assert f"| `{name}` | `{reason.value}` |" in table
    for name in SCHEMES:
        assert f"| `{name}` | {g.DEFAULT_SCHEME_MIX[name]} |" in table
    assert all(f"`{bic}`" in table for *_, bic in (*g.UK_BANKS, *g.EU_BANKS))
    assert g.START_TIME.isoformat() in table and "pacs.008.001.08" in table


def test_the_default_scheme_mix_is_the_registrys() -> None:
    from fasterpay.iso20022.schemes import SCHEMES
    from simulations.generator import DEFAULT_SCHEME_MIX, GeneratorSettings

    assert DEFAULT_SCHEME_MIX == {name: rules.generator["weight"] for name, rules in SCHEMES.items()}
    assert dict(GeneratorSettings(count=1).mix) == DEFAULT_SCHEME_MIX


def test_the_generator_is_unchanged_by_exposing_its_constants() -> None:
    """The bytes of a seeded batch, as before the constants were exposed (a change here changes every run)."""
    from simulations.generator import GeneratorSettings, generate_messages

    digest = hashlib.sha256()
    for m in generate_messages(GeneratorSettings(count=60, seed=20261202, invalid_rate=0.3, duplicate_rate=0.1)):
        digest.update(m.xml)
    assert digest.hexdigest() == "6e9d67197d833cab4009b3d86ecd380140a4ded09ef0345ece0d7e6e34b9eaa7"


@pytest.mark.parametrize("command", ["generate", "bench", "replay", "chaos", "drill"])
def test_each_commands_options_table_lists_every_option_with_its_default(command: str) -> None:
    table = guide.render_cli_options(command)
    for action in guide._subparser(command)._actions:  # noqa: SLF001
        if action.option_strings and action.dest != "help":
            assert f"`{action.option_strings[0]}`" in table
            if action.default not in (None, False) and action.nargs != 0:
                assert f"`{action.default}`" in table


def test_the_bench_and_drill_tables_come_from_their_settings() -> None:
    from simulations.pipeline_bench import RunSettings
    from simulations.region_drills import DRILLS

    assert all(f"`{name}`" in guide.render_run_settings() for name in RunSettings.__dataclass_fields__)
    assert all(f"`{name}`" in guide.render_drills() for name in DRILLS)


# -- the synthetic dataset ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> guide.Dataset:
    return guide.build_dataset(tmp_path_factory.mktemp("dataset") / guide.DATASET_NAME, reuse=False)


def test_the_dataset_holds_every_message_as_parseable_xml_and_the_manifest(dataset: guide.Dataset) -> None:
    from fasterpay.iso20022.xmlsafe import parse_xml

    with zipfile.ZipFile(dataset.path) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        manifest = json.loads(archive.read("manifest.json"))
        xml = {n: archive.read(n) for n in names if n.endswith(".xml")}
    count = int(guide.DATASET_ARGV[guide.DATASET_ARGV.index("--count") + 1])
    assert names == sorted(names) and len(xml) == count == dataset.messages
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)} and {i.compress_type for i in infos} == {0}
    assert manifest["settings"]["seed"] == int(guide.DATASET_ARGV[guide.DATASET_ARGV.index("--seed") + 1])
    assert [m["file"] for m in manifest["messages"]] == sorted(xml)
    malformed = {m["file"] for m in manifest["messages"] if m["case"] == "malformed_xml"}
    hostile = {m["file"] for m in manifest["messages"] if m["case"] in ("xxe_file_read", "entity_expansion", "oversized")}
    for name, body in xml.items():
        if name not in malformed | hostile:
            parse_xml(body)  # raises on anything that is not well-formed XML


def test_the_dataset_is_the_generate_command_byte_for_byte(dataset: guide.Dataset, tmp_path: Path) -> None:
    from simulations.cli import main

    assert main([*guide.DATASET_ARGV, "--out", str(tmp_path / "batch")]) == 0
    with zipfile.ZipFile(dataset.path) as archive:
        for path in sorted((tmp_path / "batch").iterdir()):
            assert archive.read(path.name) == path.read_bytes(), path.name
    rebuilt = tmp_path / "again.zip"
    guide._zip_directory(tmp_path / "batch", rebuilt)  # noqa: SLF001 - the zip step alone, on the command's files
    assert hashlib.sha256(rebuilt.read_bytes()).hexdigest() == dataset.sha256


def test_the_published_hash_is_the_regenerated_one(dataset: guide.Dataset) -> None:
    text = guide.render_dataset(dataset, "generated/downloads/x.zip")
    assert f"SHA-256 `{dataset.sha256}`" in text and guide.dataset_command() in text
    published = REPO / "build" / "generated" / "testing" / "dataset.md"
    if published.exists():  # after a site build: the page shows the hash this test regenerated
        assert dataset.sha256 in published.read_text(encoding="utf-8")


def test_a_rebuild_reuses_the_zip_only_for_the_same_sources(dataset: guide.Dataset, tmp_path: Path) -> None:
    out = tmp_path / dataset.path.name
    out.write_bytes(dataset.path.read_bytes())
    stamp = out.with_name(out.name + ".sources")
    stamp.write_text(guide._sources_key(guide.DATASET_ARGV), encoding="utf-8")  # noqa: SLF001
    assert guide.build_dataset(out).sha256 == dataset.sha256  # reused: no generation
    stamp.write_text("stale", encoding="utf-8")
    small = guide.build_dataset(out, argv=("generate", "--count", "3", "--seed", "1"))
    assert small.messages == 3 and stamp.read_text(encoding="utf-8") != "stale"


# -- one command per figure ---------------------------------------------------------------------------------------
def test_every_metrics_file_a_notebook_writes_maps_to_that_notebook_and_an_article() -> None:
    writers = guide.metrics_notebooks(NOTEBOOKS)
    assert set(writers.values()) == set(NOTEBOOKS)  # every notebook writes figures
    articles = {p.stem for p in (REPO / "docs" / "articles").glob("*.md")}
    for article, notebook in writers.items():
        assert notebook.stem.split("-", 1)[1] in articles
        assert article == notebook.stem.split("-", 1)[1] or article.startswith(notebook.stem.split("-", 1)[1] + "-")
    built = REPO / "build" / "metrics"
    for path in sorted(built.glob("*.json")) if built.is_dir() else []:
        assert json.loads(path.read_text(encoding="utf-8"))["article"] in writers, path.name


def _metrics(article: str, figures: list[Figure], scale: str = "ci") -> MetricsFile:
    return MetricsFile(article=article, generated_at="2026-12-02T00:00:00+00:00", seed=20261129, backend="moto",
                       scale=scale, machine={}, figures=tuple(figures))


def test_each_figure_gets_the_notebook_command_and_the_cli_command_that_reports_it_too() -> None:
    pipeline = _metrics("payment-pipeline", [
        Figure.of("api_calls_per_payment", "AWS API calls per payment", Decimal("4.7"), "calls", "counted", 40,
                  places=2, series="pipeline"),
        Figure.of("latency_p99", "Ingest to ACSP p99", 120, "ms", "modelled", 36),
        Figure.of("chaos_lost", "Chaos: payments lost", 0, "payments", "counted", 40),
    ], scale="full")
    hot = _metrics("idempotency-ledger-hot-account", [Figure.of("ceiling", "Ceiling", 500, "transfers/s", "modelled", 80)])
    writers = guide.metrics_notebooks(NOTEBOOKS)
    links = {p.stem: f"articles/{p.name}" for p in (REPO / "docs" / "articles").glob("*.md")}
    text = guide.render_figure_commands({"payment-pipeline": pipeline, "idempotency-ledger-hot-account": hot},
                                        writers, repo=REPO, article_links=links)
    assert "`python tools/run_notebook.py notebooks/03-payment-pipeline.ipynb --scale full`" in text
    assert "`python tools/run_notebook.py notebooks/02-idempotency-ledger.ipynb`" in text
    assert "[idempotency-ledger-hot-account](articles/idempotency-ledger.md)" in text
    bench = "python -m simulations bench --payments 40 --seed 20261129"
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.strip().startswith("| ")}
    assert bench in rows["AWS API calls per payment"] and bench in rows["Ingest to ACSP p99"]
    assert "simulations" not in rows["Chaos: payments lost"]
    with pytest.raises(LookupError):
        guide.render_figure_commands({"x": _metrics("no-notebook", [])}, writers, repo=REPO, article_links=links)


def test_every_command_in_the_figure_table_names_a_script_or_module_that_exists() -> None:
    from simulations.cli import build_parser

    for cli in guide.CLI_FIGURES:
        argv = shlex.split(cli.template.format(payments=10, seed=1))
        assert argv[:3] == ["python", "-m", "simulations"]
        build_parser().parse_args(argv[3:])
        assert any(cli.article == n.stem.split("-", 1)[1] for n in NOTEBOOKS)
    for notebook in NOTEBOOKS:
        argv = shlex.split(guide.notebook_command(notebook, "ci", REPO))
        assert (REPO / argv[1]).is_file() and (REPO / argv[2]).is_file()


# -- the page -----------------------------------------------------------------------------------------------------
def test_the_page_types_no_code_and_every_include_resolves() -> None:
    text = PAGE.read_text(encoding="utf-8")
    includes = re.findall(r'--8<-- "([^"]+)"', text)
    assert includes
    for include in includes:
        path, _, section = include.partition(":")
        if path.startswith("build/generated/"):
            assert path.removeprefix("build/generated/testing/").removesuffix(".md") in {
                "generator", "dataset", "crash-points", "run-settings", "drills", "figure-commands",
                *(f"cli-{c}" for c in ("generate", "bench", "replay", "chaos", "drill"))}, path
            continue
        source = (REPO / path).read_text(encoding="utf-8")
        assert f"--8<-- [start:{section}]" in source and f"--8<-- [end:{section}]" in source, include
    fences = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    assert fences and all(body.strip().startswith("--8<--") for body in fences)  # every block is included
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"\[[^\]]*\]\([^)]*\)|`[^`]*`|--8<-- \"[^\"]*\"", "", prose)
    prose = re.sub(r"(?m)^\s*\d+\. ", "", prose)  # the code annotations' list markers
    assert not re.findall(r"\b\d[\d,.]*\b", prose.replace("ISO 20022", "").replace("SHA-256", ""))


def test_the_page_renders_with_its_generated_includes(tmp_path: Path) -> None:
    import markdown

    generated = tmp_path / "build" / "generated"
    written: dict[Path, str] = {}

    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written[path] = text

    small = ("generate", "--count", "5", "--seed", "1")
    original = guide.build_dataset
    try:
        guide.build_dataset = lambda out, **kw: original(out, argv=small, **kw)  # type: ignore[assignment]
        guide.write_all(repo=REPO, generated=generated, downloads=tmp_path / "downloads",
                        download_link="generated/downloads", metrics={}, article_links={}, write=write)
    finally:
        guide.build_dataset = original  # type: ignore[assignment]
    html = markdown.markdown(PAGE.read_text(encoding="utf-8"), extensions=[
        "admonition", "attr_list", "tables", "pymdownx.details", "pymdownx.superfences", "pymdownx.tabbed",
        "pymdownx.snippets"], extension_configs={"pymdownx.snippets": {
            "base_path": [str(tmp_path), str(REPO)], "check_paths": True}})
    assert "<table>" in html and "FaultInjector" in html and "--8<--" not in html
    assert "No metrics files yet" in written[generated / "testing" / "figure-commands.md"]
    assert [p.name for p in (tmp_path / "downloads").iterdir()] == [guide.DATASET_NAME]  # only the zip is published


# -- "How we measured": written once, linked from every article ------------------------------------------------------
@pytest.mark.parametrize("article", sorted((REPO / "docs" / "articles").glob("*.md")), ids=lambda p: p.stem)
def test_every_articles_how_we_measured_links_the_one_page(article: Path) -> None:
    text = article.read_text(encoding="utf-8")
    section = text.split("\n## How we measured\n", 1)[1].split("\n## ", 1)[0]
    assert "](../how-we-measure.md" in section


def test_how_we_measure_links_the_testing_guide() -> None:
    assert "](testing-and-simulation.md" in (REPO / "docs" / "how-we-measure.md").read_text(encoding="utf-8")
