"""The operations dashboard drawn as a PNG from synthetic series: every metric widget asks ``fetch`` for
its data, the picture has the grid's size, two renders are the same bytes, and a widget the renderer
does not know is refused by name."""

from __future__ import annotations

import copy
import functools
import math
import struct
from pathlib import Path
from typing import Any

import pytest

from simulations.dashboard import DashboardError, dashboard_body, metric_specs, render_dashboard

TEMPLATE = (Path(__file__).resolve().parent.parent / "reference" / "fasterpay" / "cloudformation"
            / "operations.yaml")
START, END = 1_700_000_000.0, 1_700_000_000.0 + 2 * 3600
LEVELS = {"SampleCount": 1200.0, "PR(:150)": 99.99, "PR(:300)": 99.4, "Sum": 2.0, "p50": 42.0, "p99": 130.0,
          "Maximum": 6.0, "Average": 900.0}


class FakeStore:
    """Synthetic series: a level per statistic, a slow wave, and an incident between minutes 30 and 60."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], int]] = []

    def __call__(self, spec: dict[str, Any], period_s: int, start_s: float, end_s: float) -> Any:
        self.calls.append((spec, period_s))
        times = [start_s + s for s in range(60, int(end_s - start_s) + 1, 60)]
        if spec["expression"] is not None:  # the Metrics Insights query, grouped by caller
            return {"support-desk": [(t, 8.0 + (90.0 if 2400 <= t - start_s <= 2700 else 0.0)) for t in times],
                    "clearing": [(t, 30.0) for t in times]}
        level = LEVELS[spec["stat"]]
        if spec["stat"].startswith("PR("):
            return [(t, level - (1.5 if 1800 <= t - start_s <= 3600 else 0.0)) for t in times]
        return [(t, level * (1 + 0.2 * math.sin((t - start_s) / 900))) for t in times]


@functools.lru_cache(maxsize=1)
def _body() -> dict[str, Any]:
    return dashboard_body(TEMPLATE)


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def _render(tmp_path: Path, name: str, store: FakeStore, body: dict[str, Any] | None = None) -> Path:
    return render_dashboard(body or copy.deepcopy(_body()), store, start_s=START, end_s=END, out=tmp_path / name,
                            title="fasterpay prod: an authorisation incident",
                            alarm_states={"fasterpay-prod-authorisation-fast-burn": "ALARM",
                                          "fasterpay-prod-authorisation-medium-burn": "OK"},
                            markers=[(START + 1800, "incident"), (START + 2100, "page"), (START + 3600, "remedy")])


def test_the_operations_dashboard_renders_with_every_metric_widget_fetched(tmp_path: Path) -> None:
    body = copy.deepcopy(_body())
    store = FakeStore()
    out = _render(tmp_path, "dashboard.png", store, body)
    width, height = _png_size(out)
    assert 1500 <= width <= 1900 and 1200 <= height <= 1700
    fetched = {(c["namespace"], c["metric"], c["stat"], c["expression"]) for c, _ in store.calls}
    metric_widgets = [w for w in body["widgets"] if w["type"] == "metric"]
    assert len(metric_widgets) == 12
    for widget in metric_widgets:
        needed = {(s["namespace"], s["metric"], s["stat"], s["expression"]) for s in metric_specs(widget)
                  if s["expression"] is None or s["expression"].startswith("SELECT")}
        assert needed and needed <= fetched, widget["properties"]["title"]
    assert all(period == spec["period"] for spec, period in store.calls)
    assert {"PR(:150)", "SampleCount", "p99", "Maximum", "Average"} <= {c["stat"] for c, _ in store.calls}


def test_two_renders_are_the_same_bytes(tmp_path: Path) -> None:
    first = _render(tmp_path, "first.png", FakeStore()).read_bytes()
    second = _render(tmp_path, "second.png", FakeStore()).read_bytes()
    assert first == second
    assert b"Software" not in first and b"tIME" not in first  # no version or timestamp in the metadata


def test_an_unknown_widget_type_is_refused_by_name(tmp_path: Path) -> None:
    body = {"widgets": [{"type": "log", "x": 0, "y": 0, "width": 6, "height": 6, "properties": {}}]}
    with pytest.raises(DashboardError, match="widget 0 has type 'log'"):
        render_dashboard(body, FakeStore(), start_s=START, end_s=END, out=tmp_path / "x.png", title="x")
    assert not (tmp_path / "x.png").exists()


def test_a_widget_off_the_grid_and_an_unknown_alarm_state_are_refused(tmp_path: Path) -> None:
    wide = {"widgets": [{"type": "text", "x": 20, "y": 0, "width": 6, "height": 2, "properties": {"markdown": "x"}}]}
    with pytest.raises(DashboardError, match="24-column grid"):
        render_dashboard(wide, FakeStore(), start_s=START, end_s=END, out=tmp_path / "w.png", title="w")
    alarms = {"widgets": [{"type": "alarm", "x": 0, "y": 0, "width": 6, "height": 2,
                           "properties": {"alarms": ["arn:aws:cloudwatch:eu-west-2:1:alarm:a"]}}]}
    with pytest.raises(DashboardError, match="state 'RED'"):
        render_dashboard(alarms, FakeStore(), start_s=START, end_s=END, out=tmp_path / "a.png", title="a",
                         alarm_states={"a": "RED"})


def test_metric_math_is_evaluated_from_the_fetched_inputs(tmp_path: Path) -> None:
    body = {"widgets": [{"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6, "properties": {
        "title": "timeouts", "stat": "Sum", "period": 60, "metrics": [
            [{"id": "pct", "label": "timed out (%)", "expression": "100 * FILL(t, 0) / s"}],
            ["FasterPay/Payments", "SchemeSubmission", "Stage", "prod", {"id": "s", "visible": False}],
            ["FasterPay/Payments", "SchemeTimeout", "Stage", "prod", {"id": "t", "visible": False}]]}}]}
    seen: list[dict[str, Any]] = []

    def fetch(spec: dict[str, Any], period_s: int, start_s: float, end_s: float) -> list[tuple[float, Any]]:
        seen.append(spec)
        return [(START + 60, 50.0), (START + 120, 0.0)] if spec["id"] == "s" else [(START + 60, 5.0)]

    render_dashboard(body, fetch, start_s=START, end_s=END, out=tmp_path / "m.png", title="m")
    assert [s["id"] for s in seen] == ["t", "s"] or [s["id"] for s in seen] == ["s", "t"]
    assert all(s["expression"] is None and s["dimensions"] == {"Stage": "prod"} for s in seen)
    assert set(seen[0]) == {"namespace", "metric", "dimensions", "stat", "period", "id", "expression", "label"}
