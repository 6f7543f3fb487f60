"""Queue agents, the status stream and the LLM routing agent: who reads what, and where trust ends.

Usage: ``python diagrams/queue-agents.py [OUT_BASENAME]`` writes ``OUT_BASENAME.png``
(default: ``build/diagrams/queue-agents`` under the repository root).
"""

from __future__ import annotations

import sys
from pathlib import Path

from diagrams.aws.analytics import KinesisDataStreams
from diagrams.aws.compute import Lambda
from diagrams.aws.database import DynamodbTable
from diagrams.aws.integration import SimpleQueueServiceSqsQueue
from diagrams.aws.management import Cloudwatch
from diagrams.aws.ml import Bedrock
from diagrams.aws.security import KMS
from diagrams.aws.storage import SimpleStorageServiceS3Bucket
from diagrams.onprem.client import User

from _style import CLUSTER_ATTR, DENIED, DLQ, EDGE_ATTR, NODE_ATTR, graph_attr, out_basename
from diagrams import Cluster, Diagram, Edge

SLUG = "queue-agents"
SCALING = {"color": "#2E86C1", "fontcolor": "#2E86C1"}


def draw(base: Path) -> None:
    """Draw the diagram to ``base``.png."""
    with Diagram("queue agents, the status stream and the routing agent", filename=str(base), show=False,
                 outformat="png", direction="LR", graph_attr=graph_attr(nodesep=0.55, ranksep=1.0),
                 node_attr=NODE_ATTR, edge_attr=EDGE_ATTR):
        with Cluster("queue agents (scale with the backlog)", graph_attr=CLUSTER_ATTR):
            work = SimpleQueueServiceSqsQueue("payments queue")
            consumers = Lambda("consumers\nReportBatchItemFailures")
            dlq = SimpleQueueServiceSqsQueue("dead-letter queue\n(poison, maxReceiveCount)")
            metrics = Cloudwatch("backlog per consumer\n= visible / consumers")

        with Cluster("status stream (partition key: account token)", graph_attr=CLUSTER_ATTR):
            stream = KinesisDataStreams("payment status\nevents")
            stream_consumer = Lambda("stream consumer\n(KCL-style worker)")
            leases = DynamodbTable("lease table\n(owner, counter,\ncheckpoint)")
            effects = DynamodbTable("downstream effects\n+ processed markers")

        with Cluster("exceptions the rules cannot decide (tokens and codes only)", graph_attr=CLUSTER_ATTR):
            agent = Lambda("routing agent\nschema + allow-list,\nfallback: hold")
            prompts = SimpleStorageServiceS3Bucket("tokenised prompts\n(KMS, EncryptionContext)")
            key = KMS("prompt key")

        with Cluster("model provider boundary", graph_attr=CLUSTER_ATTR):
            model = Bedrock("Bedrock Converse\n+ Guardrail (PII, prompt attack)")

        with Cluster("evidence", graph_attr=CLUSTER_ATTR):
            audit = SimpleStorageServiceS3Bucket("tamper-evident audit log\n(Object Lock)")
            reviewer = User("payments operations\n(human review)")

        work >> Edge(label="batches of 10") >> consumers
        consumers >> Edge(label="failed items only") >> work
        work >> Edge(label="after N receives", **DLQ) >> dlq
        dlq >> Edge(label="redrive (runbook)", style="dashed") >> work
        work >> Edge(label="visible, oldest age", **SCALING) >> metrics
        metrics >> Edge(label="desired consumers\n(Little's law)", **SCALING) >> consumers

        consumers >> Edge(label="status events,\nin order per account") >> stream
        stream >> Edge(label="GetRecords from\ncheckpoint") >> stream_consumer
        stream_consumer >> Edge(label="conditional checkpoint") >> leases
        stream_consumer >> Edge(label="effect + marker,\none transaction") >> effects

        consumers >> Edge(label="unroutable, repair,\nnear miss") >> agent
        agent >> Edge(label="tokenised prompt,\nforced tool 'decide'") >> model
        model >> Edge(label="toolUse (untrusted)") >> agent
        agent >> Edge(label="encrypt prompt") >> key
        agent >> Edge(label="ciphertext") >> prompts
        agent >> Edge(label="decision, prompt hash,\nmodel, latency, fallback") >> audit
        agent >> Edge(label="hold for review") >> reviewer
        agent >> Edge(label="names, IBANs, unscanned\nfree text: never sent", **DENIED) >> model


if __name__ == "__main__":
    draw(out_basename(SLUG, sys.argv))
