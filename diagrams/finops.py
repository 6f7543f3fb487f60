"""FinOps for payments: where a payment's cost arises, how it is measured, and the guard rails on the bill.

Usage: ``python diagrams/finops.py [OUT_BASENAME]`` writes ``OUT_BASENAME.png``
(default: ``build/diagrams/finops`` under the repository root).
"""

from __future__ import annotations

import sys
from pathlib import Path

from diagrams.aws.analytics import KinesisDataStreams
from diagrams.aws.compute import Lambda
from diagrams.aws.cost import Budgets, CostExplorer
from diagrams.aws.database import DynamodbTable
from diagrams.aws.integration import SimpleNotificationServiceSnsTopic, SimpleQueueServiceSqsQueue
from diagrams.aws.management import CloudwatchAlarm, CloudwatchLogs
from diagrams.aws.ml import Bedrock
from diagrams.aws.security import KMS
from diagrams.aws.storage import S3
from diagrams.onprem.client import Users

from _style import CLUSTER_ATTR, DENIED, EDGE_ATTR, NODE_ATTR, graph_attr, out_basename
from diagrams import Cluster, Diagram, Edge

SLUG = "finops"
COST = {"color": "#B9770E", "fontcolor": "#B9770E", "style": "dashed"}
ALERT = {"color": "#C0392B", "fontcolor": "#C0392B"}


def draw(base: Path) -> None:
    """Draw the diagram to ``base``.png."""
    with Diagram("what a payment costs, where it is measured, and the guard rails on the bill", filename=str(base),
                 show=False, outformat="png", direction="LR", graph_attr=graph_attr(nodesep=0.5, ranksep=1.0),
                 node_attr=NODE_ATTR, edge_attr=EDGE_ATTR):
        clients = Users("clients (PSPs, apps)\nrate + daily allowance")

        with Cluster("payment path (tagged cost-centre, fasterpay:pattern)", graph_attr=CLUSTER_ATTR):
            queues = SimpleQueueServiceSqsQueue("queues\n(batches of 10)")
            stages = Lambda("ingest, authorise, route,\nclear, settle\n(retry budget)")
            kms = KMS("KMS\n(keys cached\nper period)")
            tables = DynamodbTable("payments, ledger,\nvault tables")
            trail = S3("audit trail\n(signed checkpoints)")
            logs = CloudwatchLogs("logs + EMF\n(log budget)")
            stream = KinesisDataStreams("status stream")
            agent = Bedrock("exception agent\n(few payments)")

        with Cluster("FinOps guard rails (template)", graph_attr=CLUSTER_ATTR):
            explorer = CostExplorer("cost by tag,\nanomaly monitor")
            budget = Budgets("monthly budget\n80% actual,\n100% forecast")
            slo = CloudwatchAlarm("cost per 10k SLO,\nquota usage,\nlog flood")
            topic = SimpleNotificationServiceSnsTopic("alerts\n(the stack's own key)")

        clients >> Edge(label="pacs.008\n(refused over allowance:\nno AWS call)") >> queues >> stages
        clients >> Edge(label="429", **DENIED) >> clients
        stages >> Edge(label="request units") >> tables
        stages >> Edge(label="requests") >> kms
        stages >> Edge(label="PUTs, Sign") >> trail
        stages >> Edge(label="bytes") >> logs
        stages >> Edge(label="records") >> stream >> agent
        tables >> Edge(label="usage by tag", **COST) >> explorer
        logs >> Edge(label="CostPer10kPayments,\nusage metrics", **COST) >> slo
        explorer >> Edge(**ALERT) >> topic
        budget >> Edge(**ALERT) >> topic
        slo >> Edge(**ALERT) >> topic


if __name__ == "__main__":
    draw(out_basename(SLUG, sys.argv))
