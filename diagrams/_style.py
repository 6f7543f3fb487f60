"""The guide's diagram style, shared by every ``diagrams/<slug>.py`` (not a diagram itself).

Each script does ``from _style import ...``; Python finds this module beside the script it runs.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

NODE_ATTR = {"fontsize": "14"}
EDGE_ATTR = {"fontsize": "12"}
CLUSTER_ATTR = {"fontsize": "16"}
#: A call that is refused (IAM deny, a blocked action): dashed red.
DENIED = {"style": "dashed", "color": "#C0392B", "fontcolor": "#C0392B"}
#: A message moved to a dead-letter queue: dotted red.
DLQ = {"style": "dotted", "color": "#B03A2E", "fontcolor": "#B03A2E"}


def graph_attr(*, nodesep: float = 0.6, ranksep: float = 1.1) -> dict[str, str]:
    """Graph attributes: readable title, padding, spline edges, and the spacing a diagram needs."""
    return {"fontsize": "20", "pad": "0.5", "splines": "spline", "nodesep": str(nodesep), "ranksep": str(ranksep)}


def out_basename(slug: str, argv: list[str]) -> Path:
    """The output base name from argv, or ``build/diagrams/<slug>`` under the repository root."""
    base = Path(argv[1]) if len(argv) > 1 else REPO_ROOT / "build" / "diagrams" / slug
    base.parent.mkdir(parents=True, exist_ok=True)
    return base
