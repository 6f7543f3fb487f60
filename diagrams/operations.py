"""Operating it: from SLI events to burn-rate alarms, a page, the runbook and its rehearsal.

Usage: ``python diagrams/operations.py [OUT_BASENAME]`` writes ``OUT_BASENAME.png``
(default: ``build/diagrams/operations`` under the repository root).
"""

from __future__ import annotations

import sys
from pathlib import Path

from diagrams.aws.compute import Lambda
from diagrams.aws.database import DynamodbTable
from diagrams.aws.integration import SimpleNotificationServiceSnsTopic, SimpleQueueServiceSqsQueue
from diagrams.aws.management import Cloudwatch, CloudwatchAlarm, CloudwatchLogs, SystemsManagerOpscenter
from diagrams.aws.security import KMS
from diagrams.generic.blank import Blank
from diagrams.onprem.client import User, Users

from _style import CLUSTER_ATTR, EDGE_ATTR, NODE_ATTR, graph_attr, out_basename
from diagrams import Cluster, Diagram, Edge

SLUG = "operations"
PAGE = {"color": "#C0392B", "fontcolor": "#C0392B"}
TICKET = {"color": "#B9770E", "fontcolor": "#B9770E", "style": "dashed"}
DRILL = {"color": "#1E8449", "fontcolor": "#1E8449", "style": "dotted"}


def draw(base: Path) -> None:
    """Draw the diagram to ``base``.png."""
    with Diagram("SLOs and alerting: from each payment's SLI event to a page, the runbook and its rehearsal",
                 filename=str(base), show=False, outformat="png", direction="LR",
                 graph_attr=graph_attr(nodesep=0.6, ranksep=1.2), node_attr=NODE_ATTR, edge_attr=EDGE_ATTR):
        senders = Users("sending PSPs\n(pacs.008)")

        with Cluster("payment path (production account)", graph_attr=CLUSTER_ATTR):
            handlers = Lambda("gateway, accept,\nclear handlers\n(SliPublisher)")
            queues = SimpleQueueServiceSqsQueue("accept, clear,\nanswers + DLQs")
            ledger = DynamodbTable("ledger\n(hot accounts)")
            kms = KMS("KMS\n(request quota)")

        with Cluster("CloudWatch (operations template)", graph_attr=CLUSTER_ATTR):
            emf = CloudwatchLogs("EMF: AuthorisationLatency,\nCriticalPathLatency,\n*Error, SchemeTimeout,\nDetokenize by caller")
            metrics = Cloudwatch("metrics\n(custom, SQS,\nDynamoDB, usage)")
            windows = CloudwatchAlarm("burn-rate windows\n1h, 5m, 6h, 30m, 3d, 6h\n(metric math, PR(:150))")
            rows = CloudwatchAlarm("composites: long AND short\n(page: fast, medium burn;\nticket: slow burn)")
            causes = CloudwatchAlarm("cause alarms\n(queue age, DLQs, scheme,\nthrottles, mismatches,\nlag, detokenize)")
            dashboard = Cloudwatch("dashboard\n(as code)")

        with Cluster("people and rehearsal (no production access)", graph_attr=CLUSTER_ATTR):
            pages = SimpleNotificationServiceSnsTopic("pages topic")
            tickets = SimpleNotificationServiceSnsTopic("tickets topic")
            oncall = User("on-call engineer")
            runbook = SystemsManagerOpscenter("runbook:\ndetect, check,\nremedy, rollback")
            drill = Blank("python -m simulations\nchaos | replay | drill |\nredrive-drill | hot-account\n(moto, CI)")

        senders >> handlers
        handlers >> Edge(label="one datum per event") >> emf >> metrics
        queues >> metrics
        ledger >> metrics
        kms >> metrics
        metrics >> windows >> rows
        metrics >> causes
        metrics >> dashboard
        rows >> Edge(**PAGE) >> pages
        rows >> Edge(**TICKET) >> tickets
        causes >> Edge(label="symptom first", **PAGE) >> pages
        pages >> oncall >> runbook
        tickets >> runbook
        oncall >> Edge(label="reads", style="dashed") >> dashboard
        runbook >> Edge(label="rehearsed by", **DRILL) >> drill


if __name__ == "__main__":
    draw(out_basename(SLUG, sys.argv))
