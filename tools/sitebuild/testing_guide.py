"""What the testing and simulation page includes, generated from the code at build time.

* the payload generator's distributions (``simulations.generator``'s constants and the scheme registry);
* each simulations command's options (its argparse parser), the crash points, the bench's settings, the drills;
* the synthetic dataset: ``python -m simulations generate`` run with a fixed seed, zipped deterministically
  (sorted names, fixed timestamps, stored uncompressed so the SHA-256 does not depend on zlib), with its hash;
* one command per figure on the site, from the metrics files the notebooks write.

Every fragment is Markdown written to ``build/generated/testing/`` and included into
``docs/testing-and-simulation.md`` with pymdownx.snippets; the zip goes to ``docs/generated/downloads/`` so
mkdocs publishes it beside the page.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from fasterpay.metrics import Figure, MetricsFile

from sitebuild.pages import number, render_rows, sample

__all__ = [
    "CLI_FIGURES",
    "DATASET_ARGV",
    "DATASET_NAME",
    "Dataset",
    "build_dataset",
    "dataset_command",
    "figure_commands",
    "metrics_notebooks",
    "notebook_command",
    "render_cli_options",
    "render_crash_points",
    "render_dataset",
    "render_drills",
    "render_figure_commands",
    "render_generator",
    "render_run_settings",
    "write_all",
]

#: The published dataset: exactly this ``python -m simulations generate`` command line, plus ``--out``.
DATASET_ARGV: tuple[str, ...] = ("generate", "--count", "1000", "--seed", "20261202")
DATASET_NAME = "synthetic-pacs008-1000-seed20261202.zip"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: no build's clock in the bytes


# -- the payload generator ------------------------------------------------------------------------------
def _money(value: Decimal | None) -> str:
    return "no scheme maximum" if value is None else f"{value:,.2f}"


def render_generator() -> str:
    """The distributions the payload generator draws from, each read from the code."""
    from fasterpay.iso20022.codes import REASON_DESCRIPTIONS
    from fasterpay.iso20022.schemes import SCHEMES
    from fasterpay.iso20022.xmlsafe import DEFAULT_MAX_MESSAGE_BYTES
    from simulations import generator as g

    from fasterpay.iso20022.messages import PACS008_NAMESPACE

    version = PACS008_NAMESPACE.rsplit(":", 1)[-1]
    parts = [f"Every message is one `{version}` credit transfer (namespace `{PACS008_NAMESPACE}`), one "
             "transaction per message as instant payments send them.\n",
             "**Schemes** (`DEFAULT_SCHEME_MIX`, from each scheme's entry in `fasterpay.iso20022.schemes.SCHEMES`)\n",
             render_rows(["Scheme", "Weight", "Currency", "Limit per payment", "Account forms drawn"], [
                 (f"`{name}`", g.DEFAULT_SCHEME_MIX.get(name, 0), ", ".join(sorted(rules.currencies)),
                  _money(rules.max_amount),
                  ", ".join(f"{form} {share:g}" for form, share in rules.generator.get("account_forms", {}).items()))
                 for name, rules in SCHEMES.items()])]
    total = sum(g.DEFAULT_AMOUNT_MIX.values())
    parts += ["\n**Amounts** (`AMOUNT_BANDS`, `DEFAULT_AMOUNT_MIX`): a band by weight, then an amount drawn "
              "log-uniformly in whole minor units inside it, capped at the scheme's limit\n",
              render_rows(["Band", "From", "To", "Weight", "Share"], [
                  (f"`{band}`", _money(low), _money(high), g.DEFAULT_AMOUNT_MIX.get(band, 0),
                   f"{100 * g.DEFAULT_AMOUNT_MIX.get(band, 0) / total:g}%")
                  for band, (low, high) in g.AMOUNT_BANDS.items()])]
    schemes = list(SCHEMES.values())
    parts += ["\n**Invalid messages** (`INVALID_CASES`): each class appears once before any appears twice; the "
              "validator must answer RJCT with exactly this reason code\n",
              render_rows(["Class", "Reason code", "Meaning", "Schemes"], [
                  (f"`{c.name}`", f"`{c.reason.value}`", REASON_DESCRIPTIONS.get(c.reason, ""),
                   ", ".join(r.name for r in schemes if c.applies(r)))
                  for c in g.INVALID_CASES.values()])]
    parts += ["\n**Duplicates** (`DUPLICATE_CASES`): copies of an earlier valid message, the two kinds in turn\n",
              render_rows(["Kind", "Reason code", "Meaning"], [
                  (f"`{name}`", f"`{reason.value}`", REASON_DESCRIPTIONS.get(reason, ""))
                  for name, reason in g.DUPLICATE_CASES.items()])]
    library = {f.name: f for f in dataclasses.fields(g.GeneratorSettings)}
    command = _parser_defaults("generate")

    def default(name: str) -> object:
        f = library[name]
        value = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        return ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, Mapping) else value

    parts += ["\n**Rates and sizes**: shares of the count, rounded (`GeneratorSettings` and the `generate` command)\n",
              render_rows(["Setting", "`GeneratorSettings`", "`python -m simulations generate`"], [
                  (name, default(name), command.get(name, "—"))
                  for name in ("seed", "mix", "amounts", "invalid_rate", "duplicate_rate", "max_message_bytes")])]
    uk = ", ".join(f"`{bic}`" for _, bic in g.UK_BANKS)
    eu = ", ".join(f"`{bic}` ({country})" for country, _, _, bic in g.EU_BANKS)
    parts += ["\n**Names, accounts and dates**\n", render_rows(["Field", "Drawn from"], [
        ("Debtor and creditor names", f"{len(g.GIVEN_NAMES)} given names × {len(g.FAMILY_NAMES)} family names "
                                      f"({len(g.party_names())} people, e.g. {g.party_names()[0]}), fictional"),
        ("UK banks (BIC)", uk),
        ("UK accounts", "a GB IBAN with ISO 13616 check digits, or a sort code and 8-digit account number, by the "
                        "scheme's account forms; random digits"),
        ("SEPA banks (BIC)", eu),
        ("SEPA accounts", "an IBAN of the bank's country with ISO 13616 check digits; random digits"),
        ("Remittance", ", ".join(f"`{t}`" for t in g.REMITTANCE_TEMPLATES)
         + f", n from {g.REMITTANCE_NUMBERS.start:,} to {g.REMITTANCE_NUMBERS.stop - 1:,}"),
        ("Identifiers", "`MSG-`, `E2E-`, `INS-`, `TX-` + seed and sequence; UETR a seeded UUID v4"),
        ("Creation time", f"{g.START_TIME.isoformat()} + {g.MESSAGE_INTERVAL.total_seconds():g} s per message; "
                          "settlement date and acceptance time from it"),
        ("Oversized messages", f"just over the validator's limit (default {DEFAULT_MAX_MESSAGE_BYTES:,} bytes)"),
    ])]
    return "\n".join(parts)


# -- the commands -----------------------------------------------------------------------------------------
def _subparser(command: str) -> argparse.ArgumentParser:
    from simulations.cli import build_parser

    parser = build_parser()
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its subparsers here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action.choices[command]
    raise LookupError(command)


def _parser_defaults(command: str) -> dict[str, object]:
    return {a.dest: a.default for a in _subparser(command)._actions if a.dest != "help"}  # noqa: SLF001


def render_cli_options(command: str) -> str:
    """``python -m simulations <command>``'s options, defaults and help, from its parser."""
    rows = []
    for action in _subparser(command)._actions:  # noqa: SLF001
        if action.dest in ("help",) or action.help == argparse.SUPPRESS:
            continue
        name = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.dest.upper()}`"
        if action.choices and not action.option_strings:
            name += ": " + ", ".join(f"`{c}`" for c in action.choices)
        elif action.choices:
            name += " (" + ", ".join(f"`{c}`" for c in action.choices) + ")"
        flag = action.nargs == 0
        default = "—" if flag or action.default is None or action.default is argparse.SUPPRESS else f"`{action.default}`"
        rows.append((name, default, (action.help or "").replace("%(default)s", str(action.default))))
    return render_rows(["Option", "Default", "What it does"], rows)


def render_crash_points() -> str:
    """The chaos run's crash points, grouped by the component that visits them."""
    from simulations.pipeline_bench import CRASH_POINTS

    groups: dict[str, list[str]] = {}
    for point in CRASH_POINTS:
        groups.setdefault(point.split(".", 1)[0], []).append(point)
    return render_rows(["Component", "Crash points"], [
        (f"`{group}`", ", ".join(f"`{p}`" for p in points)) for group, points in groups.items()])


def _first_paragraph(obj: object) -> str:
    return (inspect.getdoc(obj) or "").split("\n\n", 1)[0].replace("\n", " ")


def render_run_settings() -> str:
    """What a bench or chaos run is made of: ``RunSettings``' fields and defaults, and what the floor does."""
    from simulations.pipeline_bench import RunSettings, run_floor

    rows = [(f"`{f.name}`", "—" if f.default is dataclasses.MISSING else f.default)
            for f in dataclasses.fields(RunSettings)]
    return (render_rows(["`RunSettings` field", "Default"], rows)
            + f"\nThe honest floor (`run_floor`): {_first_paragraph(run_floor)}\n")


def render_drills() -> str:
    """The failover drills ``python -m simulations drill`` runs, and the drills' settings."""
    from simulations.region_drills import DRILLS, DrillSettings

    drills = render_rows(["Drill", "What it rehearses"], [
        (f"`{name}`", _first_paragraph(run)) for name, run in DRILLS.items()])
    settings = render_rows(["`DrillSettings` field", "Default"], [
        (f"`{f.name}`", f.default) for f in dataclasses.fields(DrillSettings)
        if f.default is not dataclasses.MISSING and not dataclasses.is_dataclass(f.default)])
    return drills + "\n" + settings


# -- the synthetic dataset ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    path: Path
    sha256: str
    messages: int
    expected_status: Mapping[str, int]
    size_bytes: int


def dataset_command(out: str = "synthetic-pacs008") -> str:
    """The exact command that writes the dataset's files."""
    return "python -m simulations " + " ".join((*DATASET_ARGV, "--out", out))


def _zip_directory(directory: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            info = zipfile.ZipInfo(path.name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.create_system = 3  # Unix, wherever it is built
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, path.read_bytes())
    partial.replace(out)


def _sources_key(argv: Sequence[str]) -> str:
    """What the dataset depends on: the generator, the ISO 20022 package, the command line and the zip format."""
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256(json.dumps([list(argv), "zip-stored-v1"]).encode())
    for path in sorted([root / "simulations" / "generator.py", root / "simulations" / "cli.py",
                        *(root / "reference" / "fasterpay" / "iso20022").rglob("*.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_dataset(out: Path, *, argv: Sequence[str] = DATASET_ARGV, reuse: bool = True,
                  stamp: Path | None = None) -> Dataset:
    """Run ``python -m simulations generate`` (``argv``) into a temporary folder and zip it into ``out``.

    With ``reuse``, an earlier zip made from the same sources and command line is kept (``stamp``, by default
    beside the zip, holds their hash), so a site rebuild does not generate again."""
    from simulations.cli import main

    stamp = stamp or out.with_name(out.name + ".sources")
    key = _sources_key(argv)
    if not (reuse and out.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == key):
        with tempfile.TemporaryDirectory(prefix="fasterpay-dataset-") as work:
            from contextlib import redirect_stdout
            from io import StringIO

            with redirect_stdout(StringIO()):
                status = main([*argv, "--out", str(Path(work) / "batch")])
            if status != 0:
                raise RuntimeError(f"python -m simulations {' '.join(argv)} exited {status}")
            _zip_directory(Path(work) / "batch", out)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(key, encoding="utf-8")
    data = out.read_bytes()
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    return Dataset(out, hashlib.sha256(data).hexdigest(), manifest["summary"]["messages"],
                   manifest["summary"]["expected_status"], len(data))


def render_dataset(dataset: Dataset, link: str) -> str:
    """The download, its SHA-256 and the commands that make the same bytes again."""
    statuses = ", ".join(f"{status} {count:,}" for status, count in sorted(dataset.expected_status.items()))
    return (f"[Download {dataset.path.name}]({link}){{ .md-button }} "
            f"{dataset.size_bytes / 1e6:.1f} MB, {dataset.messages:,} pacs.008.001.08 messages "
            f"(expected {statuses}) and `manifest.json`\n\n"
            f"SHA-256 `{dataset.sha256}`\n\n"
            "The files, byte for byte (the seed is in the command):\n\n"
            f"```bash\n{dataset_command()}\n```\n\n"
            "The zip itself, with the same SHA-256 (sorted names, fixed timestamps, stored uncompressed):\n\n"
            f"```bash\npython tools/synthetic_dataset.py --out {dataset.path.name}\n"
            f"sha256sum {dataset.path.name}\n```\n")


# -- one command per figure ------------------------------------------------------------------------------
_WRITES = re.compile(r"write_metrics\(\s*[\"']([a-z0-9-]+)[\"']")


def metrics_notebooks(notebooks: Iterable[Path]) -> dict[str, Path]:
    """Which notebook writes each metrics file (``write_metrics("<article>", ...)`` in its cells)."""
    found: dict[str, Path] = {}
    for notebook in sorted(notebooks):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for article in _WRITES.findall(source):
            found[article] = notebook
    return found


def notebook_command(notebook: Path, scale: str, repo: Path) -> str:
    """The command that executes one notebook as the build does and writes its metrics files."""
    path = notebook.resolve().relative_to(repo.resolve()).as_posix()
    return f"python tools/run_notebook.py {path}" + (" --scale full" if scale == "full" else "")


@dataclass(frozen=True)
class CliFigures:
    """Figures a simulations command also reports: which article, which figures, the command's template.

    The template is formatted with ``seed`` and ``payments`` (the sample size of the file's figure named by
    ``payments_from``, or of the figure itself when None)."""

    article: str
    matches: Callable[[Figure], bool]
    template: str
    payments_from: tuple[str, str | None] | None = None


_CHAOS_OR_SCREENING = ("chaos_", "recon_", "screening_")
#: The figures a command line run reports too, with the same seed and size as the notebook's.
CLI_FIGURES: tuple[CliFigures, ...] = (
    CliFigures("payment-pipeline", lambda f: not f.key.startswith(_CHAOS_OR_SCREENING),
               "python -m simulations bench --payments {payments} --seed {seed}",
               payments_from=("api_calls_per_payment", "pipeline")),
    CliFigures("multi-region-resilience",
               lambda f: f.key in {"rpo_payments", "rpo_seconds", "rto_seconds", "lost", "doubled",
                                   "tail_reconciled", "fenced_writes"},
               "python -m simulations drill all --payments {payments} --seed {seed}"),
)


def figure_commands(m: MetricsFile, f: Figure) -> list[str]:
    """The command line runs that report figure ``f`` of metrics file ``m`` as well (none for most)."""
    out = []
    for cli in CLI_FIGURES:
        if cli.article != m.article or not cli.matches(f):
            continue
        size = f.sample_size
        if cli.payments_from is not None:
            key, series = cli.payments_from
            size = next((g.sample_size for g in m.figures if g.key == key and g.series == series), size)
        out.append(cli.template.format(payments=size, seed=m.seed))
    return out


def render_figure_commands(metrics: Mapping[str, MetricsFile], notebooks: Mapping[str, Path], *, repo: Path,
                           article_links: Mapping[str, str]) -> str:
    """Per article, every figure on its page with the command that reproduces it, in a collapsed block."""
    if not metrics:
        return "*No metrics files yet: the notebooks write them when the site builds.*\n"
    parts = []
    for slug, m in sorted(metrics.items()):
        notebook = notebooks.get(m.article)
        if notebook is None:
            raise LookupError(f"no notebook writes {m.article}.json (write_metrics(\"{m.article}\", ...))")
        run = notebook_command(notebook, m.scale, repo)
        page = next((article_links[a] for a in sorted(article_links, key=len, reverse=True)
                     if m.article == a or m.article.startswith(a + "-")), None)
        title = f"{m.article}: {len(m.figures)} figures, seed {m.seed}, run size {m.scale}"
        rows = []
        for f in m.figures:
            also = figure_commands(m, f)
            rows.append((f.label, f.series or "", f"**{number(f.value)}**", f.unit, f.kind, sample(f.sample_size),
                         f"`{run}`" + "".join(f"<br>or `{c}`" for c in also)))
        table = render_rows(["Figure", "Series", "Value", "Unit", "How obtained", "Sample", "Command"], rows)
        where = f"On the page: [{m.article}]({page}). " if page else ""
        body = (f"{where}Reproduce every figure below with `{run}`; it writes `{slug}.json` to `build/metrics/`.\n\n"
                + table)
        parts.append(f'??? example "{title}"\n\n' + "\n".join(f"    {line}" if line else "" for line in body.splitlines()))
    return "\n\n".join(parts) + "\n"


# -- the hook ----------------------------------------------------------------------------------------------
def write_all(*, repo: Path, generated: Path, downloads: Path, download_link: str,
              metrics: Mapping[str, MetricsFile], article_links: Mapping[str, str],
              write: Callable[[Path, str], None]) -> Dataset:
    """Write every fragment the testing and simulation page includes; returns the dataset made for it."""
    out = generated / "testing"
    write(out / "generator.md", render_generator())
    for command in ("generate", "bench", "replay", "chaos", "drill"):
        write(out / f"cli-{command}.md", render_cli_options(command))
    write(out / "crash-points.md", render_crash_points())
    write(out / "run-settings.md", render_run_settings())
    write(out / "drills.md", render_drills())
    dataset = build_dataset(downloads / DATASET_NAME, stamp=out / "dataset.sources")  # the stamp stays off the site
    write(out / "dataset.md", render_dataset(dataset, f"{download_link}/{DATASET_NAME}"))
    write(out / "figure-commands.md", render_figure_commands(
        metrics, metrics_notebooks((repo / "notebooks").glob("*.ipynb")), repo=repo, article_links=article_links))
    return dataset
