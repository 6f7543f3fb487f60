"""Figures that notebooks and benchmarks publish, as small JSON files the site reads.

No figure on the site is typed by hand: a notebook calls :func:`write_metrics`, the build renders the
files. Each figure says how it was obtained (``kind``), on how many operations, with which seed.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "Figure", "MetricsFile", "machine_stamp", "metrics_dir", "read_metrics", "scale", "write_metrics"]

#: How a figure was obtained. "measured on moto" is wall time of our code plus the mock; "measured" is
#: CPU time of our code alone (no AWS and no mock involved) on the build machine; "modelled" comes from
#: the stated latency model; "counted" is a count of API calls or events; "computed" is derived from
#: counts (for example cost from a dated price table).
KINDS = ("measured on moto", "measured", "modelled", "counted", "computed")


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: str  # a decimal string: figures are never floats in the files
    unit: str
    kind: str
    sample_size: int
    kpi: str | None = None  # the KPI this figure reports, if any (see the KPI page)
    series: str | None = None  # e.g. "cached data keys" vs "KMS call per item"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        try:
            finite = Decimal(self.value).is_finite()
        except (InvalidOperation, TypeError):
            finite = False
        if not finite:
            raise ValueError(f"{self.key}: value must be a finite decimal string, got {self.value!r}")

    @classmethod
    def of(cls, key: str, label: str, value: Decimal | int | float, unit: str, kind: str, sample_size: int,
           *, places: int = 2, kpi: str | None = None, series: str | None = None) -> Figure:
        """Build a figure, rounding ``value`` to ``places`` decimal places."""
        number = Decimal(str(value)).quantize(Decimal(1).scaleb(-places)) if places >= 0 else Decimal(value)
        return cls(key, label, str(number), unit, kind, sample_size, kpi, series)


@dataclass(frozen=True)
class MetricsFile:
    article: str
    generated_at: str
    seed: int
    backend: str
    scale: str
    machine: dict[str, Any]
    figures: tuple[Figure, ...]

    def figure(self, key: str, series: str | None = None) -> Figure:
        for f in self.figures:
            if f.key == key and f.series == series:
                return f
        raise KeyError(f"{self.article} has no figure {key!r} for series {series!r}")


def scale() -> str:
    """The run size: ``FASTERPAY_SCALE`` is "ci" (default, under a minute) or "full" (published numbers)."""
    value = os.environ.get("FASTERPAY_SCALE", "ci")
    if value not in ("ci", "full"):
        raise ValueError(f"FASTERPAY_SCALE must be 'ci' or 'full', got {value!r}")
    return value


def metrics_dir() -> Path:
    """Where metrics files go: ``FASTERPAY_METRICS_DIR``, else ``~/.cache/fasterpay/metrics``."""
    configured = os.environ.get("FASTERPAY_METRICS_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "fasterpay" / "metrics"


def machine_stamp() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def write_metrics(article: str, figures: Iterable[Figure], *, seed: int, backend: str,
                  directory: Path | None = None) -> Path:
    """Write ``<directory>/<article>.json`` and return its path.

    Examples:
        >>> write_metrics("demo", [Figure.of("ops", "Operations", 10, "ops", "counted", 10)],
        ...               seed=7, backend="moto", directory=tmp)  # doctest: +SKIP
    """
    figures = tuple(figures)
    keys = [(f.key, f.series) for f in figures]
    if len(keys) != len(set(keys)):
        raise ValueError(f"{article}: a figure key is repeated for the same series")
    out_dir = directory or metrics_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "article": article,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "backend": backend,
        "scale": scale(),
        "machine": machine_stamp(),
        "figures": [asdict(f) for f in figures],
    }
    path = out_dir / f"{article}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def read_metrics(directory: Path) -> dict[str, MetricsFile]:
    """Every metrics file in ``directory``, by article slug."""
    out: dict[str, MetricsFile] = {}
    for path in sorted(directory.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        out[raw["article"]] = MetricsFile(
            article=raw["article"], generated_at=raw["generated_at"], seed=raw["seed"], backend=raw["backend"],
            scale=raw["scale"], machine=raw["machine"], figures=tuple(Figure(**f) for f in raw["figures"]),
        )
    return out
