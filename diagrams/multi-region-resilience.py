"""Multi-region resilience: two regions, asynchronous replication, and the failover control plane.

Usage: ``python diagrams/multi-region-resilience.py [OUT_BASENAME]`` writes ``OUT_BASENAME.png``
(default: ``build/diagrams/multi-region-resilience`` under the repository root).
"""

from __future__ import annotations

import sys
from pathlib import Path

from diagrams.aws.compute import Lambda
from diagrams.aws.database import DynamodbStreams, DynamodbTable
from diagrams.aws.integration import SimpleQueueServiceSqsQueue
from diagrams.aws.management import Cloudwatch
from diagrams.aws.network import Route53
from diagrams.onprem.client import Users
from diagrams.onprem.network import Internet

from _style import CLUSTER_ATTR, DENIED, EDGE_ATTR, NODE_ATTR, graph_attr, out_basename
from diagrams import Cluster, Diagram, Edge

SLUG = "multi-region-resilience"
CONTROL = {"color": "#2E86C1", "fontcolor": "#2E86C1"}
REPLICATION = {"style": "dashed", "color": "#7D3C98", "fontcolor": "#7D3C98"}


def draw(base: Path) -> None:
    """Draw the diagram to ``base``.png."""
    with Diagram("two regions, one writer per cell, and the failover control plane", filename=str(base),
                 show=False, outformat="png", direction="LR", graph_attr=graph_attr(nodesep=0.55, ranksep=1.1),
                 node_attr=NODE_ATTR, edge_attr=EDGE_ATTR):
        senders = Users("payment senders\n(retry unanswered,\nsame UETR)")
        scheme = Internet("scheme (FPS, SEPA Inst)\nde-duplicates by UETR")

        with Cluster("failover control plane (outside both regions' data paths)", graph_attr=CLUSTER_ATTR):
            controls = Route53("routing controls\n(ARC; emulated on moto)\ncell -> region, epoch")
            health = Cloudwatch("health checks\n3 vantage points,\nquorum 2")

        with Cluster("eu-west-2 London: active for the cell", graph_attr=CLUSTER_ATTR):
            queue_a = SimpleQueueServiceSqsQueue("accept / clear\nqueues")
            stages_a = Lambda("stages\n(deadline per hop)")
            fence_a = DynamodbTable("fence item\nowner, epoch,\nlease_until")
            tables_a = DynamodbTable("payments, ledger,\nsettlement")
            stream_a = DynamodbStreams("streams\n(new and old images)")

        with Cluster("eu-west-1 Ireland: standby for the cell", graph_attr=CLUSTER_ATTR):
            stages_b = Lambda("stages\n(idle for the cell)")
            fence_b = DynamodbTable("fence item\n(no lease)")
            tables_b = DynamodbTable("replica tables\n(lag = RPO)")

        senders >> Edge(label="pacs.008") >> queue_a >> stages_a
        stages_a >> Edge(label="every transaction:\nConditionCheck on the fence") >> fence_a
        stages_a >> Edge(label="hold, clear, book") >> tables_a
        stages_a >> Edge(label="submit by UETR") >> scheme
        tables_a >> stream_a
        stream_a >> Edge(label="replicate, last writer wins\n(global tables; emulated)", **REPLICATION) >> tables_b
        health >> Edge(label="region unhealthy\n(quorum of probes)", **CONTROL) >> controls
        controls >> Edge(label="lease renewed only\nwhile ON at this epoch", **CONTROL) >> fence_a
        controls >> Edge(label="after the fence interval:\nON at epoch + 1", **CONTROL) >> fence_b
        stages_b >> Edge(label="writes refused\nwithout the lease", **DENIED) >> tables_b
        stages_b >> Edge(label="after failover: resolve\nin-flight by asking the scheme", style="dashed") >> scheme


if __name__ == "__main__":
    draw(out_basename(SLUG, sys.argv))
