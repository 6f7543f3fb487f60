"""Run the personal-data guard over everything a pipeline run writes, and count what it refuses.

A pipeline run with telemetry writes JSON log lines, EMF documents, spans, audit entries and checkpoints,
and the benches write a run summary, recorded results (``simulations/results/*.json``) and metrics files
(``build/**/*.json``). :class:`PersonalDataScan` puts each item through
:func:`~fasterpay.observability.refuse_personal_data` (structures) or
:func:`~fasterpay.observability.refuse_personal_text` (text), with a registry of the names and domestic
account numbers the run's payments carried (:func:`registry_for_run`), and counts items scanned, values
scanned and refusals per kind. The project's telemetry holds no personal data, so every refusal is a leak
or a false positive: refusals / items is the guard's false-positive rate on the project's own output.
Examples name where a refusal happened and why, never the value (the guard's messages never hold it).

EMF's ``_aws`` metadata has keys fixed by the specification (``Name`` is a metric's name), so it is scanned
as text, values only; the documents' own members go through the full guard.

Run it: ``python -m simulations.personal_data_scan --payments 60 --seed 7``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fasterpay.metrics import Figure
from fasterpay.observability import PersonalDataError, refuse_personal_data, refuse_personal_text
from fasterpay.observability.redaction import PersonalValueRegistry

__all__ = [
    "KINDS",
    "PersonalDataScan",
    "ScanReport",
    "default_files",
    "personal_values_of_run",
    "registry_for_run",
    "run_and_scan",
    "scan_capture",
    "scan_notebooks",
]

#: What a run writes, as the scan counts it.
KINDS = ("log line", "emf document", "span", "audit entry", "audit checkpoint", "run summary", "results file",
         "metrics file", "notebook output")
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ScanReport:
    """Items and scalar values scanned, and refusals, per kind; a few refusal messages (never values)."""

    items: dict[str, int]
    values: dict[str, int]
    refused: dict[str, int]
    examples: tuple[str, ...]

    @property
    def items_scanned(self) -> int:
        return sum(self.items.values())

    @property
    def refusals(self) -> int:
        return sum(self.refused.values())

    @property
    def false_positive_rate(self) -> float:
        """Refused items / scanned items (on output that holds no personal data, every refusal is false)."""
        return self.refusals / self.items_scanned if self.items_scanned else 0.0

    def as_json(self) -> dict[str, Any]:
        return {"items": self.items, "values": self.values, "refused": self.refused, "examples": list(self.examples),
                "items_scanned": self.items_scanned, "refusals": self.refusals,
                "false_positive_rate": self.false_positive_rate}

    def figures(self, *, series: str | None = None) -> list[Figure]:
        """The figures the observability article publishes.

        Examples:
            >>> report = ScanReport({"log line": 10}, {"log line": 90}, {}, ())
            >>> [(f.key, f.value) for f in report.figures()]
            [('guard_items_scanned', '10'), ('guard_values_scanned', '90'), ('guard_refusals', '0'), ('guard_false_positive_rate', '0.000')]
        """
        n = self.items_scanned
        return [
            Figure.of("guard_items_scanned", "Telemetry items the personal-data guard scanned (one pipeline run)",
                      n, "items", "counted", n, places=0, series=series),
            Figure.of("guard_values_scanned", "Keys and scalar values in those items", sum(self.values.values()),
                      "values", "counted", n, places=0, series=series),
            Figure.of("guard_refusals", "Items the guard refused", self.refusals, "items", "counted", n, places=0,
                      series=series),
            Figure.of("guard_false_positive_rate", "Guard false positives on the project's own telemetry",
                      100 * self.false_positive_rate, "%", "computed", n, places=3, series=series),
        ]


def _count_values(node: object) -> int:
    """Keys and scalars in a JSON-like structure (what the guard looked at)."""
    if isinstance(node, Mapping):
        return sum(1 + _count_values(v) for v in node.values())
    if isinstance(node, (list, tuple, set, frozenset)):
        return sum(_count_values(v) for v in node)
    return 1


@dataclass
class PersonalDataScan:
    """Scans items one by one and counts; :meth:`report` gives the totals.

    Examples:
        >>> scan = PersonalDataScan(PersonalValueRegistry())
        >>> scan.log_line('{"level":"INFO","message":"payment status","uetr":"8a562c67-ca16-48ba-b074-65581be6f011"}')
        True
        >>> scan.log_line('{"level":"INFO","message":"paid GB82 WEST 1234 5698 7654 32"}', label="line 2")
        False
        >>> report = scan.report()
        >>> report.items, report.refused, report.examples
        ({'log line': 2}, {'log line': 1}, ("log line line 2: log line field 'message' holds an IBAN at characters 5-32; log the vault's token instead",))
    """

    registry: PersonalValueRegistry
    max_examples: int = 10
    items: Counter[str] = field(default_factory=Counter)
    values: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def check(self, kind: str, label: str, guard: Callable[[], None], values: int = 1) -> bool:
        """Run ``guard`` (a call of the guard) for one item; True if it passed."""
        self.items[kind] += 1
        self.values[kind] += values
        try:
            guard()
        except PersonalDataError as exc:
            self.refused[kind] += 1
            if len(self.examples) < self.max_examples:
                self.examples.append(f"{kind} {label}: {exc}")
            return False
        return True

    def data(self, kind: str, label: str, structure: object) -> bool:
        return self.check(kind, label, lambda: refuse_personal_data(structure, where=kind, registry=self.registry),
                          _count_values(structure))

    def text(self, kind: str, label: str, text: str) -> bool:
        return self.check(kind, label, lambda: refuse_personal_text(text, where=kind, registry=self.registry))

    def log_line(self, line: str, *, label: str = "") -> bool:
        """One JSON log line, as its fields (trace and span ids are recognised by name)."""
        try:
            record = json.loads(line)
        except ValueError:
            return self.text("log line", label, line)
        return self.data("log line", label, record)

    def emf_document(self, document: Mapping[str, Any], *, label: str = "") -> bool:
        """One EMF document: its members through the guard, its ``_aws`` metadata as text."""
        members = {k: v for k, v in document.items() if k != "_aws"}
        metadata = json.dumps(document.get("_aws", {}))

        def guard() -> None:
            refuse_personal_data(members, where="emf document", registry=self.registry)
            refuse_personal_text(metadata, where="emf metadata", registry=self.registry)

        return self.check("emf document", label, guard, _count_values(members) + _count_values(document.get("_aws")))

    def span(self, span: Any, *, label: str = "") -> bool:
        """One finished span (``ReadableSpan``): name, attributes, events, status, resource."""
        texts = [span.name, span.status.description or "", *(event.name for event in span.events)]
        structures = [dict(span.attributes or {}), dict(span.resource.attributes),
                      *(dict(event.attributes or {}) for event in span.events)]

        def guard() -> None:
            for text in texts:
                refuse_personal_text(text, where="span", registry=self.registry)
            for structure in structures:
                refuse_personal_data(structure, where="span", registry=self.registry)

        return self.check("span", label or span.name, guard, len(texts) + sum(_count_values(s) for s in structures))

    def audit_objects(self, objects: Mapping[str, bytes]) -> None:
        """An audit store's objects: each entry of each segment, and each checkpoint note."""
        for key in sorted(objects):
            body = objects[key].decode("utf-8", errors="replace")
            if key.startswith("segments/"):
                for n, line in enumerate(body.splitlines()):
                    self.data("audit entry", f"{key}#{n}", json.loads(line))
            else:
                self.text("audit checkpoint", key, body)

    def json_file(self, kind: str, path: Path) -> bool:
        """A JSON file the benches or notebooks wrote (or its text, if it is not JSON)."""
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            return self.data(kind, path.name, json.loads(text))
        except ValueError:
            return self.text(kind, path.name, text)

    def notebook(self, path: Path) -> None:
        """An executed notebook's outputs: each stream, and each plain-text, Markdown or HTML result."""
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        for n, cell in enumerate(cells):
            for output in cell.get("outputs", []):
                texts = [output.get("text", "")]
                data = output.get("data", {})
                texts += [data.get(mime, "") for mime in ("text/plain", "text/markdown", "text/html")]
                text = "\n".join("".join(t) if isinstance(t, list) else str(t) for t in texts if t)
                if text:
                    self.text("notebook output", f"{path.name} cell {n}", text)

    def report(self) -> ScanReport:
        return ScanReport(dict(self.items), dict(self.values), dict(self.refused), tuple(self.examples))


def personal_values_of_run(settings: Any) -> Iterator[tuple[str, str]]:
    """``(value, kind)``: the names, address lines and domestic account numbers (no IBAN pattern) a run's
    payments carry. The run's traffic is regenerated from its seed, set by set, exactly as the bench submits it.

    Examples:
        >>> from simulations.pipeline_bench import RunSettings
        >>> sorted({kind for _, kind in personal_values_of_run(RunSettings(payments=5, seed=7))})
        ['account number', 'name']
    """
    from fasterpay.iso20022 import parse_pacs008
    from fasterpay.pipeline import personal_values
    from simulations.pipeline_bench import _messages  # the bench's own traffic, not a copy of its formula

    for first in range(0, settings.payments, settings.set_size):
        for message in _messages(settings, first, min(settings.set_size, settings.payments - first)):
            try:
                parsed = parse_pacs008(message.xml)
            except Exception:  # noqa: BLE001 - the invalid cases include unparseable messages: nothing to register
                continue
            for tx in parsed.transactions:
                yield from personal_values(tx)  # what the pipeline registers, read by the same function


def registry_for_run(settings: Any) -> PersonalValueRegistry:
    """A registry of :func:`personal_values_of_run`: independent of what the pipeline itself registered.

    Examples:
        >>> from simulations.pipeline_bench import RunSettings
        >>> registry_for_run(RunSettings(payments=5, seed=7)).find("paid Ada Lovelace") in ("name", None)
        True
    """
    registry = PersonalValueRegistry()
    for value, kind in personal_values_of_run(settings):
        registry.register(value, kind=kind)
    return registry


def default_files(root: Path = ROOT) -> list[tuple[str, Path]]:
    """Recorded results and, if present, metrics files under ``build/``: ``(kind, path)`` pairs."""
    files = [("results file", p) for p in sorted((root / "simulations" / "results").glob("*.json"))]
    build = root / "build"
    if build.is_dir():
        files += [("metrics file", p) for p in sorted(build.rglob("*.json"))]
    return files


def scan_capture(capture: Any, audit_objects: Mapping[str, bytes], *, registry: PersonalValueRegistry,
                 summary: str | None = None, files: Iterable[tuple[str, Path]] = ()) -> ScanReport:
    """Scan what a run wrote: a :class:`~simulations.observability_sim.TelemetryCapture` (log lines, EMF
    documents, spans), its audit store's objects, the JSON summary line and ``files``.

    Examples:
        >>> report = scan_capture(capture, payments_store.objects(), registry=registry_for_run(settings),
        ...                       summary=summary_json(summary), files=default_files())  # doctest: +SKIP
    """
    scan = PersonalDataScan(registry)
    for n, line in enumerate(capture.log_lines):
        scan.log_line(line, label=f"#{n}")
    for n, document in enumerate(capture.documents):
        scan.emf_document(document, label=f"#{n}")
    for span in capture.exporter.get_finished_spans():
        scan.span(span)
    scan.audit_objects(audit_objects)
    if summary is not None:
        scan.data("run summary", "summary_json", json.loads(summary))
    for kind, path in files:
        scan.json_file(kind, path)
    return scan.report()


def scan_notebooks(paths: Iterable[Path], *, registry: PersonalValueRegistry) -> ScanReport:
    """Scan the outputs of executed notebooks (what a reader sees on the site).

    Examples:
        >>> from simulations.generator import party_names
        >>> registry = PersonalValueRegistry()
        >>> registry.register_many(party_names())
        144
        >>> scan_notebooks(sorted(Path("docs/generated/notebooks").glob("*.ipynb")), registry=registry)  # doctest: +SKIP
    """
    scan = PersonalDataScan(registry)
    for path in paths:
        scan.notebook(path)
    return scan.report()


def run_and_scan(*, payments: int = 60, seed: int = 7, files: Iterable[tuple[str, Path]] | None = None,
                 registry: PersonalValueRegistry | None = None) -> ScanReport:
    """A seeded pipeline run on moto with telemetry, then :func:`scan_capture` over everything it wrote and
    over ``files`` (default: :func:`default_files`), with the run's names registered.

    Examples:
        >>> report = run_and_scan(payments=60, seed=7)  # doctest: +SKIP
        >>> report.refusals, report.items["log line"] > 0  # doctest: +SKIP
        (0, True)
    """
    from fasterpay.audit import AuditTrail, InMemoryAuditStore, LocalCheckpointSigner
    from fasterpay.aws import open_environment
    from simulations.observability_sim import captured_telemetry
    from simulations.pipeline_bench import RunSettings, run_pipeline
    from simulations.report import summary_json

    settings = RunSettings(payments=payments, seed=seed)
    store = InMemoryAuditStore()
    trail = AuditTrail(store=store, signer=LocalCheckpointSigner.generate(), origin="bank-a/payments",
                       batch_size=None)
    capture = captured_telemetry(trail)
    with open_environment("moto", region="eu-west-2") as env:
        summary = run_pipeline(env, settings, name_prefix="pds", telemetry=capture.telemetry)
    capture.telemetry.flush()
    trail.close()
    return scan_capture(capture, store.objects(),
                        registry=registry if registry is not None else registry_for_run(settings),
                        summary=summary_json(summary), files=default_files() if files is None else files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulations.personal_data_scan",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--payments", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    report = run_and_scan(payments=args.payments, seed=args.seed)
    print(json.dumps(report.as_json(), indent=1, sort_keys=True))
    return 1 if report.refusals else 0


if __name__ == "__main__":
    raise SystemExit(main())
