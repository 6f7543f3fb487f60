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

__all__ = ["KINDS", "PERCENTILE_METHOD", "Figure", "MetricsFile", "machine_stamp", "metrics_dir", "percentile",
           "percentiles", "read_metrics", "scale", "write_metrics"]

#: The one percentile definition the guide uses everywhere: ``statistics.quantiles(values, n=100,
#: method="inclusive")``, which interpolates linearly between order statistics (numpy's default,
#: "linear", gives the same numbers). Stated on the How we measure page.
PERCENTILE_METHOD = "statistics.quantiles(n=100, method='inclusive'): linear interpolation between order statistics"

#: How a figure was obtained. "measured on moto" is wall time of our code plus the mock; "measured" is
#: CPU time of our code alone (no AWS and no mock involved) on the build machine; "modelled" comes from
#: the stated latency model; "counted" is a count of API calls or events; "computed" is derived from
#: counts (for example cost from a dated price table).
KINDS = ("measured on moto", "measured", "modelled", "counted", "computed")


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (0 < q < 100), by :data:`PERCENTILE_METHOD`.

    One value is its own percentile; no values give 0.0 (a figure of an empty run).

    Examples:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
        2.5
        >>> percentile([10.0], 99)
        10.0
    """
    data = sorted(float(v) for v in values)
    if not 0 < q < 100:
        raise ValueError(f"q must be strictly between 0 and 100, got {q}")
    if not data:
        return 0.0
    if len(data) == 1:
        return data[0]
    # position (q/100)*(n-1) in the sorted data, linearly interpolated: exactly what statistics.quantiles
    # with method="inclusive" returns at the cut point q, also for q that is not a whole number
    position = (len(data) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)


def percentiles(values: Iterable[float], qs: Iterable[float] = (50, 95, 99)) -> dict[str, float]:
    """Several percentiles at once, keyed ``"p50"``, ``"p95"``, ...

    Examples:
        >>> percentiles([1.0, 2.0, 3.0], (50,))
        {'p50': 2.0}
    """
    data = sorted(float(v) for v in values)
    return {f"p{q:g}": percentile(data, q) for q in qs}


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
