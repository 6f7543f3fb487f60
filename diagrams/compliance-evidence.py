"""Compliance as evidence: the data-flow map, drawn from ``compliance/dataflows.yaml`` and the templates.

Every store of the map is a node, grouped by the form in which it holds personal data (clear, ciphertext,
token, reference); each edge from ingest is labelled with the data classes it carries. The same data renders
the tables of the Data-flow map page, so the picture and the tables cannot disagree.

Usage: ``python diagrams/compliance-evidence.py [OUT_BASENAME]`` writes ``OUT_BASENAME.png``
(default: ``build/diagrams/compliance-evidence`` under the repository root).
"""

from __future__ import annotations

import sys
from pathlib import Path

from diagrams.aws.compute import Lambda
from diagrams.aws.database import DynamodbTable
from diagrams.aws.integration import SimpleQueueServiceSqsQueue
from diagrams.aws.storage import S3
from diagrams.onprem.client import Users

from _style import CLUSTER_ATTR, EDGE_ATTR, NODE_ATTR, REPO_ROOT, graph_attr, out_basename
from diagrams import Cluster, Diagram, Edge

sys.path[:0] = [str(REPO_ROOT / "tools"), str(REPO_ROOT / "reference"), str(REPO_ROOT)]
from fasterpay.vault.classes import DataClass  # noqa: E402
from sitebuild.dataflow import load_flows  # noqa: E402

SLUG = "compliance-evidence"
FORMS = {
    "clear": ("clear values (ingest only)", {"color": "#C0392B", "fontcolor": "#C0392B"}),
    "ciphertext": ("ciphertext (crypto-shredding erases)", {"color": "#1F618D", "fontcolor": "#1F618D"}),
    "token": ("tokens only", {"color": "#117A65", "fontcolor": "#117A65"}),
    "reference": ("references only", {"color": "#7D3C98", "fontcolor": "#7D3C98"}),
}
ICONS = {"SQS": SimpleQueueServiceSqsQueue, "DynamoDB": DynamodbTable, "S3": S3}


def draw(base: Path) -> None:
    """Draw the diagram to ``base``.png."""
    flows = load_flows(REPO_ROOT / "compliance" / "dataflows.yaml",
                       templates_dir=REPO_ROOT / "reference" / "fasterpay" / "cloudformation",
                       data_classes=tuple(c.value for c in DataClass))
    stores: dict[tuple[str, str], dict[str, object]] = {}
    for flow in flows:
        entry = stores.setdefault((flow.template, flow.resource), {"flow": flow, "classes": []})
        entry["classes"].append(flow.data_class)  # type: ignore[union-attr]
    with Diagram("data-flow map: where each data class is held, and in what form", filename=str(base), show=False,
                 outformat="png", direction="LR", graph_attr=graph_attr(nodesep=0.35, ranksep=1.3),
                 node_attr=NODE_ATTR, edge_attr=EDGE_ATTR):
        senders = Users("payment senders\n(pacs.008)")
        with Cluster("allowed regions only (eu-west-2; replicas eu-west-1)", graph_attr=CLUSTER_ATTR):
            ingest = Lambda("ingest\n(tokenises)")
            nodes = {}
            for form, (title, _) in FORMS.items():
                members = [(key, entry) for key, entry in stores.items() if entry["flow"].form == form]  # type: ignore[union-attr]
                if not members:
                    continue
                with Cluster(title, graph_attr=CLUSTER_ATTR):
                    for key, entry in members:
                        flow = entry["flow"]
                        label = f"{flow.template}:{flow.resource}\n{flow.retention.split(';')[0].split(' (')[0].split(', then')[0]}"  # type: ignore[union-attr]
                        nodes[key] = ICONS[flow.service](label)  # type: ignore[union-attr]
        for key, entry in stores.items():
            flow = entry["flow"]
            classes = ", ".join(entry["classes"])  # type: ignore[arg-type]
            style = FORMS[flow.form][1]  # type: ignore[union-attr]
            if flow.form == "clear":  # type: ignore[union-attr]
                senders >> Edge(label=classes, **style) >> nodes[key]
            else:
                ingest >> Edge(label=classes, **style) >> nodes[key]
        senders >> Edge(label="pacs.008 read\nonce, then tokenised", style="dashed") >> ingest


if __name__ == "__main__":
    draw(out_basename(SLUG, sys.argv))
