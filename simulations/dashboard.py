"""A CloudWatch dashboard drawn as a PNG: the operations template's ``DashboardBody``, laid out on its
24-column grid, with the series a caller supplies (an in-memory metric store, a simulation's output).

:func:`dashboard_body` resolves the template's ``DashboardBody`` (its ``!Sub``, variable map included) with
parameter values and returns the JSON as data. :func:`render_dashboard` draws it: metric widgets as line
charts with their horizontal annotations, text widgets as plain wrapped text (Markdown links become their
text), alarm widgets as coloured state boxes, and ``markers`` (incident, page, remedy) as vertical lines on
every chart. The x-axis counts minutes from ``start_s`` (hours when the span is over three hours).

The ``fetch`` contract
----------------------
``fetch(spec, period_s, start_s, end_s)`` is called once for every metric a metric widget needs and
returns that metric's datapoints as ``[(t_s, value_or_None), ...]`` with ``start_s <= t_s <= end_s``; a
point is the statistic over the period (or sliding window) that ends at ``t_s``. ``spec`` is a fresh dict:

``{"namespace": str | None, "metric": str | None, "dimensions": {name: value}, "stat": str | None,
"period": int, "id": str, "expression": str | None, "label": str}``

``period_s`` equals ``spec["period"]`` (the entry's own ``period``, else the widget's, else 300).

* A **metric** entry (``["FasterPay/Payments", "AuthorisationLatency", "Stage", "prod", {...}]``) reaches
  ``fetch`` with ``namespace``, ``metric``, ``dimensions`` and ``stat`` (``Sum``, ``SampleCount``,
  ``Maximum``, ``Average``, ``p99``, ``PR(:150)`` ...) set and ``expression`` None. Hidden entries
  (``"visible": false``) that an expression uses are fetched too, but not drawn.
* A **metric-math** entry whose expression is arithmetic (``+ - * /``, parentheses, numbers, ids of the
  widget's other entries and ``FILL(x, c)``) is *not* passed to ``fetch``: the renderer fetches the entries
  it names and evaluates it point by point with :func:`evaluate_expression` (a missing value propagates,
  ``FILL`` replaces it, a division by zero gives no point, as in CloudWatch).
* **Any other expression** (a Metrics Insights ``SELECT``, ``SEARCH``, ``ANOMALY_DETECTION_BAND``) reaches
  ``fetch`` with ``expression`` set and the metric fields None. ``fetch`` returns one series, or a mapping
  ``{label: series}`` when the expression yields several (``... GROUP BY caller`` gives one per caller).

Examples:
    >>> evaluate_expression("(FILL(n, 0) * (100 - pr) / 100 + FILL(err, 0)) / (FILL(n, 0) + FILL(err, 0))",
    ...                     {"n": 10000.0, "pr": 99.5, "err": None})
    0.005
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from simulations.alarm_emulator import UnsupportedAlarm
from simulations.alarm_emulator import evaluate_expression as _evaluate
from simulations.alarm_emulator import expression_ids as _expression_ids
from simulations.templates import parameter_values, parse_template, resolve

__all__ = ["ALARM_COLOURS", "DashboardError", "Fetch", "Series", "dashboard_body", "evaluate_expression",
           "expression_ids", "metric_specs", "render_dashboard"]

Series = list[tuple[float, Union[float, None]]]
Fetch = Callable[[dict[str, Any], int, float, float], Union[Series, Mapping[str, Series]]]

GRID_COLUMNS = 24
#: Colours of the alarm states, as the CloudWatch console shows them.
ALARM_COLOURS = {"OK": "#2e7d32", "ALARM": "#c62828", "INSUFFICIENT_DATA": "#9e9e9e"}
DPI = 100
COLUMN_INCHES = 0.7  # 24 columns: a 16.8-inch, 1680-pixel-wide picture
ROW_INCHES = 0.42
TITLE_INCHES = 0.5
MARGIN_INCHES = 0.15


class DashboardError(ValueError):
    """The dashboard body cannot be drawn: fix the widget named in the message."""


# -- the template ------------------------------------------------------------------------------------------
def dashboard_body(template_path: Path | str, **parameters: Any) -> dict[str, Any]:
    """The ``DashboardBody`` of the template's (only) ``AWS::CloudWatch::Dashboard``, resolved and parsed.

    ``parameters`` override the template's defaults; ``${Alarm}`` references resolve to the alarms' names.

    Examples:
        >>> body = dashboard_body(Path(__file__).parent.parent / "reference" / "fasterpay" / "cloudformation"
        ...                       / "operations.yaml", Stage="test")
        >>> body["widgets"][1]["properties"]["metrics"][2][3]
        'test'
    """
    template = parse_template(Path(template_path).read_text(encoding="utf-8"))
    values = parameter_values(template, **{k: str(v) for k, v in parameters.items()})
    resources = template.get("Resources", {})
    attributes = {logical: resolve(template, r["Properties"]["AlarmName"], values)
                  for logical, r in resources.items()
                  if r["Type"] in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")}
    dashboards = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    if len(dashboards) != 1:
        raise DashboardError(f"{template_path} has {len(dashboards)} dashboards; dashboard_body reads exactly one")
    return json.loads(resolve(template, dashboards[0]["Properties"]["DashboardBody"], values, attributes))


# -- metric math (the arithmetic subset: the alarm emulator's evaluator) -------------------------------------
def expression_ids(expression: str) -> set[str]:
    """The ids an arithmetic expression reads (a :class:`DashboardError` for anything else).

    Examples:
        >>> sorted(expression_ids("100 * FILL(timeouts, 0) / submissions"))
        ['submissions', 'timeouts']
    """
    try:
        return _expression_ids(expression)
    except UnsupportedAlarm as exc:
        raise DashboardError(str(exc)) from None


def evaluate_expression(expression: str, values: Mapping[str, float | None]) -> float | None:
    """One point of an arithmetic metric-math expression: ``+ - * /``, parentheses, numbers, ids and
    ``FILL(x, c)``; None is a missing value. Anything else raises :class:`DashboardError`.

    Examples:
        >>> evaluate_expression("100 * FILL(timeouts, 0) / submissions", {"timeouts": None, "submissions": 40})
        0.0
        >>> evaluate_expression("a / b", {"a": 1.0, "b": 0.0}) is None
        True
    """
    try:
        return _evaluate(expression, values)
    except UnsupportedAlarm as exc:
        raise DashboardError(str(exc)) from None


def _is_arithmetic(expression: str) -> bool:
    try:
        expression_ids(expression)
    except DashboardError:
        return False
    return True


# -- widgets -------------------------------------------------------------------------------------------
def metric_specs(widget: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every entry of a metric widget as a spec (the ``fetch`` fields plus ``visible`` and ``yAxis``).

    Examples:
        >>> widget = {"type": "metric", "properties": {"stat": "Sum", "period": 60, "metrics": [
        ...     ["NS", "Detokenize", "Stage", "prod", "caller", "support-desk", {"label": "support"}]]}}
        >>> spec = metric_specs(widget)[0]
        >>> spec["dimensions"], spec["stat"], spec["period"], spec["label"]
        ({'Stage': 'prod', 'caller': 'support-desk'}, 'Sum', 60, 'support')
    """
    properties = widget.get("properties", {})
    specs = []
    for index, entry in enumerate(properties.get("metrics", [])):
        if not isinstance(entry, list) or not entry:
            raise DashboardError(f"metric entry {index} of {properties.get('title')!r} is not a non-empty list")
        options = entry[-1] if isinstance(entry[-1], dict) else {}
        names = [part for part in entry if not isinstance(part, dict)]
        period = int(options.get("period", properties.get("period", 300)))
        spec: dict[str, Any] = {"namespace": None, "metric": None, "dimensions": {}, "stat": None,
                                "period": period, "id": options.get("id", f"m{index + 1}"), "expression": None,
                                "label": options.get("label"), "visible": options.get("visible", True),
                                "yAxis": options.get("yAxis", "left")}
        if "expression" in options:
            spec["expression"] = options["expression"]
            spec["label"] = spec["label"] if spec["label"] is not None else spec["id"]
        else:
            if len(names) < 2 or len(names) % 2:
                raise DashboardError(f"metric entry {index} of {properties.get('title')!r} needs namespace, "
                                     "metric name and dimension name/value pairs")
            if "." in names or "..." in names:
                raise DashboardError("the '.' and '...' shorthands are not supported: write entries in full")
            spec["namespace"], spec["metric"] = names[0], names[1]
            spec["dimensions"] = dict(zip(names[2::2], names[3::2]))
            spec["stat"] = options.get("stat", properties.get("stat", "Average"))
            spec["label"] = spec["label"] if spec["label"] is not None else f"{spec['metric']} {spec['stat']}"
        specs.append(spec)
    return specs


_FETCH_KEYS = ("namespace", "metric", "dimensions", "stat", "period", "id", "expression", "label")


def _call(fetch: Fetch, spec: Mapping[str, Any], start_s: float, end_s: float) -> Series | Mapping[str, Series]:
    request = {key: (dict(spec[key]) if key == "dimensions" else spec[key]) for key in _FETCH_KEYS}
    return fetch(request, int(spec["period"]), start_s, end_s)


def _widget_series(widget: Mapping[str, Any], fetch: Fetch, start_s: float,
                   end_s: float) -> list[tuple[str, str, Series]]:
    """(label, axis, series) for every visible line of a metric widget."""
    specs = metric_specs(widget)
    by_id = {spec["id"]: spec for spec in specs}
    fetched: dict[str, Series] = {}

    def plain(spec_id: str) -> Series:
        if spec_id not in fetched:
            spec = by_id.get(spec_id)
            if spec is None or spec["expression"] is not None:
                raise DashboardError(f"an expression reads {spec_id!r}, which is not a metric of the widget")
            result = _call(fetch, spec, start_s, end_s)
            if isinstance(result, Mapping):
                raise DashboardError(f"fetch returned several series for the metric {spec_id!r}")
            fetched[spec_id] = list(result)
        return fetched[spec_id]

    lines: list[tuple[str, str, Series]] = []
    for spec in specs:
        if not spec["visible"]:
            continue
        if spec["expression"] is None:
            lines.append((spec["label"], spec["yAxis"], plain(spec["id"])))
        elif _is_arithmetic(spec["expression"]):
            inputs = {name: dict(plain(name)) for name in sorted(expression_ids(spec["expression"]))}
            times = sorted(set().union(*(series.keys() for series in inputs.values()))) if inputs else []
            lines.append((spec["label"], spec["yAxis"],
                          [(t, evaluate_expression(spec["expression"], {n: s.get(t) for n, s in inputs.items()}))
                           for t in times]))
        else:
            result = _call(fetch, spec, start_s, end_s)
            if isinstance(result, Mapping):
                prefix = f"{spec['label']} " if spec["label"] else ""
                lines.extend((f"{prefix}{name}", spec["yAxis"], list(series)) for name, series in sorted(result.items()))
            else:
                lines.append((spec["label"], spec["yAxis"], list(result)))
    return lines


_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def _plain_text(markdown: str, width: int) -> str:
    lines = []
    for line in markdown.splitlines():
        line = _LINK.sub(r"\1", line)
        line = re.sub(r"^#+\s*", "", line)
        line = re.sub(r"^\s*[*-]\s+", "• ", line)
        line = line.replace("**", "").replace("`", "")
        lines.extend(textwrap.wrap(line, width, subsequent_indent="  " if line.startswith("• ") else "") or [""])
    return "\n".join(lines)


# -- drawing -------------------------------------------------------------------------------------------
def _draw_metric(ax: Any, widget: Mapping[str, Any], lines: list[tuple[str, str, Series]], start_s: float,
                 scale_s: float, span: float, markers: Sequence[tuple[float, str]]) -> None:
    properties = widget.get("properties", {})
    axes = {"left": ax}
    if any(axis == "right" for _, axis, _ in lines):
        axes["right"] = ax.twinx()
    colours = iter(f"C{i}" for i in range(100))
    handles = []
    for label, axis, series in lines:
        xs = [(t - start_s) / scale_s for t, _ in series]
        ys = [float("nan") if v is None else float(v) for _, v in series]
        handle, = axes.get(axis, ax).plot(xs, ys, label=label, color=next(colours), linewidth=1.2)
        handles.append(handle)
    for note in properties.get("annotations", {}).get("horizontal", []):
        value = float(note["value"])
        target = axes.get(note.get("yAxis", "left"), ax)
        target.axhline(value, color="#6a1b9a", linestyle="--", linewidth=0.9)
        target.annotate(f"{note.get('label', '')} {value:g}".strip(), (1.0, value), xycoords=("axes fraction", "data"),
                        xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom", fontsize=6.5,
                        color="#6a1b9a")
    for at, text in markers:
        x = (at - start_s) / scale_s
        ax.axvline(x, color="#424242", linestyle=":", linewidth=1.0)
        ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -2), textcoords="offset points",
                    rotation=90, ha="left", va="top", fontsize=6.5, color="#424242")
    for side, target in axes.items():
        limits = properties.get("yAxis", {}).get(side, {})
        if "label" in limits:
            target.set_ylabel(limits["label"], fontsize=7)
        bottom, top = target.get_ylim()
        target.set_ylim(limits.get("min", bottom), limits.get("max", top))
        target.tick_params(labelsize=6.5)
    ax.set_xlim(0, span)
    ax.set_title(properties.get("title", ""), fontsize=8.5, loc="left")
    ax.grid(True, linewidth=0.3, alpha=0.6)
    if handles:
        ax.legend(handles=handles, fontsize=6.5, loc="upper left", frameon=False)


def _draw_text(ax: Any, widget: Mapping[str, Any]) -> None:
    width = int(widget["width"] * COLUMN_INCHES * 72 / 7.5 * 1.6)  # characters of 7.5 pt that fit the width
    ax.axis("off")
    ax.text(0.0, 1.0, _plain_text(widget.get("properties", {}).get("markdown", ""), width), va="top", ha="left",
            fontsize=7.5, transform=ax.transAxes, linespacing=1.35)


def _draw_alarms(ax: Any, widget: Mapping[str, Any], alarm_states: Mapping[str, str]) -> None:
    properties = widget.get("properties", {})
    names = [alarm.rsplit(":alarm:", 1)[-1] for alarm in properties.get("alarms", [])]
    ax.axis("off")
    ax.set_title(properties.get("title", "Alarms"), fontsize=8.5, loc="left")
    per_row = max(1, int(widget["width"]) // 4)
    rows = max(1, math.ceil(len(names) / per_row))
    for index, name in enumerate(names):
        state = alarm_states.get(name, "INSUFFICIENT_DATA")
        if state not in ALARM_COLOURS:
            raise DashboardError(f"alarm {name!r} has state {state!r}; expected one of {sorted(ALARM_COLOURS)}")
        row, column = divmod(index, per_row)
        x, y = column / per_row, 1 - (row + 1) / rows
        ax.add_patch(_rectangle((x + 0.005, y + 0.04), 1 / per_row - 0.01, 1 / rows - 0.08, ALARM_COLOURS[state]))
        ax.text(x + 0.5 / per_row, y + 0.5 / rows, f"{name}\n{state}", ha="center", va="center", fontsize=6.5,
                color="white", transform=ax.transAxes)


def _rectangle(xy: tuple[float, float], width: float, height: float, colour: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(xy, width, height, facecolor=colour, edgecolor="none")


def render_dashboard(body: Mapping[str, Any], fetch: Fetch, *, start_s: float, end_s: float, out: Path, title: str,
                     alarm_states: Mapping[str, str] | None = None,
                     markers: Sequence[tuple[float, str]] = ()) -> Path:
    """Draw ``body`` (a dashboard's JSON as data) to the PNG ``out`` and return ``out``.

    Every widget sits at its ``x, y, width, height`` on the 24-column grid. ``fetch`` supplies the data (see
    the module's docstring for its contract); ``alarm_states`` maps alarm names to ``OK``, ``ALARM`` or
    ``INSUFFICIENT_DATA`` (an alarm not named is INSUFFICIENT_DATA); ``markers`` are ``(t_s, label)``
    vertical lines on every chart. The same input gives the same bytes.

    Examples:
        >>> import tempfile
        >>> body = {"widgets": [{"type": "text", "x": 0, "y": 0, "width": 6, "height": 2,
        ...                      "properties": {"markdown": "See [the runbook](https://example.com)."}}]}
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = render_dashboard(body, lambda *a: [], start_s=0, end_s=600, out=Path(folder) / "d.png",
        ...                             title="example")
        ...     path.read_bytes()[:4]
        b'\\x89PNG'
    """
    from matplotlib.figure import Figure

    if end_s <= start_s:
        raise DashboardError("end_s must be after start_s")
    widgets = list(body.get("widgets", []))
    for index, widget in enumerate(widgets):
        kind = widget.get("type")
        if kind not in ("metric", "text", "alarm"):
            raise DashboardError(f"widget {index} has type {kind!r}; render_dashboard draws metric, text and "
                                 "alarm widgets")
        x, width = int(widget.get("x", 0)), int(widget.get("width", 6))
        if x < 0 or width < 1 or x + width > GRID_COLUMNS:
            raise DashboardError(f"widget {index} ({widget.get('properties', {}).get('title')!r}) does not fit "
                                 f"the {GRID_COLUMNS}-column grid: x={x}, width={width}")
    rows = max((int(w.get("y", 0)) + int(w.get("height", 6)) for w in widgets), default=1)
    fig_w = GRID_COLUMNS * COLUMN_INCHES + 2 * MARGIN_INCHES
    fig_h = rows * ROW_INCHES + TITLE_INCHES + 2 * MARGIN_INCHES
    figure = Figure(figsize=(fig_w, fig_h), dpi=DPI, layout="none")
    figure.suptitle(title, x=MARGIN_INCHES / fig_w, y=1 - MARGIN_INCHES / fig_h, ha="left", va="top", fontsize=12)
    span_s = end_s - start_s
    scale_s, unit = (60.0, "minutes") if span_s <= 3 * 3600 else (3600.0, "hours")
    pad_left, pad_right, pad_top, pad_bottom = 0.55, 0.2, 0.3, 0.4  # inches for tick labels and titles
    for widget in widgets:
        x, y = int(widget.get("x", 0)), int(widget.get("y", 0))
        width, height = int(widget.get("width", 6)), int(widget.get("height", 6))
        right_axis = widget["type"] == "metric" and any(s["yAxis"] == "right" for s in metric_specs(widget))
        left_in = MARGIN_INCHES + x * COLUMN_INCHES + (pad_left if widget["type"] == "metric" else 0.1)
        width_in = width * COLUMN_INCHES - (pad_left + pad_right + (0.4 if right_axis else 0)
                                            if widget["type"] == "metric" else 0.2)
        top_in = TITLE_INCHES + MARGIN_INCHES + y * ROW_INCHES + pad_top
        height_in = height * ROW_INCHES - pad_top - (pad_bottom if widget["type"] == "metric" else 0.1)
        ax = figure.add_axes((left_in / fig_w, 1 - (top_in + height_in) / fig_h, width_in / fig_w,
                              height_in / fig_h))
        if widget["type"] == "metric":
            lines = _widget_series(widget, fetch, start_s, end_s)
            _draw_metric(ax, widget, lines, start_s, scale_s, span_s / scale_s, markers)
            ax.set_xlabel(f"{unit} from start", fontsize=6.5)
        elif widget["type"] == "text":
            _draw_text(ax, widget)
        else:
            _draw_alarms(ax, widget, alarm_states or {})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out
