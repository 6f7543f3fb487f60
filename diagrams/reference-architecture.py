"""Reference architecture: ingest -> authorisation -> routing -> clearing -> settlement on AWS.

Usage: ``python diagrams/reference-architecture.py [OUT_BASENAME]`` writes ``OUT_BASENAME.png``
(default: ``build/diagrams/reference-architecture`` under the repository root).
"""

from __future__ import annotations

import sys
from pathlib import Path

from _style import CLUSTER_ATTR, DLQ, EDGE_ATTR, NODE_ATTR, graph_attr, out_basename
from diagrams import Cluster, Diagram, Edge
from diagrams.aws.compute import Lambda
from diagrams.aws.database import Dynamodb
from diagrams.aws.general import GenericOfficeBuilding
from diagrams.aws.integration import SQS
from diagrams.aws.management import Cloudwatch
from diagrams.aws.network import APIGateway
from diagrams.aws.security import KMS
from diagrams.aws.storage import S3
from diagrams.generic.place import Datacenter

SLUG = "reference-architecture"
MONITOR = {"style": "dashed", "color": "#6C7A89"}


def draw(base: Path) -> None:
    """Draw the diagram to ``base``.png."""
    with Diagram("faster payments: reference architecture", filename=str(base), show=False,
                 outformat="png", direction="LR", graph_attr=graph_attr(nodesep=0.5, ranksep=0.9), node_attr=NODE_ATTR,
                 edge_attr=EDGE_ATTR):
        psp = GenericOfficeBuilding("bank / psp")

        with Cluster("aws account (eu-west-2)", graph_attr=CLUSTER_ATTR):
            api = APIGateway("api gateway\n(mTLS)")
            ingest = Lambda("ingest")
            authorisation = Lambda("authorisation")
            routing = Lambda("routing")
            clearing = Lambda("clearing")
            settlement = Lambda("settlement")

            # One SQS queue between each pair of stages, each with its own dead-letter queue;
            # only the first pair is labelled, the others repeat it.
            stages = [ingest, authorisation, routing, clearing, settlement]
            dlqs = []
            for upstream, downstream in zip(stages, stages[1:]):
                first = upstream is ingest
                queue = SQS(f"{downstream.label} queue")
                dlq = SQS(f"{downstream.label} dlq")
                upstream >> Edge(label="tokenised payment" if first else "") >> queue >> downstream
                queue >> Edge(label="after maxReceiveCount" if first else "", **DLQ) >> dlq
                dlqs.append(dlq)

            idempotency = Dynamodb("idempotency")
            ledger = Dynamodb("ledger")
            audit = S3("audit log\n(object lock)")
            monitoring = Cloudwatch("cloudwatch")

            with Cluster("vault trust boundary", graph_attr=CLUSTER_ATTR):
                vault_api = Lambda("vault")
                vault_table = Dynamodb("vault table")
                vault_key = KMS("vault cmk")
                vault_api >> Edge(label="ciphertext") >> vault_table
                vault_api >> Edge(label="data keys (ctx: tenant)") >> vault_key

        with Cluster("payment schemes (external)", graph_attr=CLUSTER_ATTR):
            fps = Datacenter("uk faster payments")
            sepa = Datacenter("sepa instant")

        psp >> Edge(label="pacs.008 (ISO 20022)") >> api >> ingest
        ingest >> Edge(label="EndToEndId / MsgId\n(conditional put)") >> idempotency
        ingest >> Edge(label="clear PAN / IBAN") >> vault_api
        clearing >> Edge(label="detokenize\n(audited)") >> vault_api
        clearing >> Edge(label="pacs.008") >> [fps, sepa]
        [fps, sepa] >> Edge(label="pacs.002, settlement report", style="dashed") >> settlement
        settlement >> Edge(label="postings\n(transact write)") >> ledger
        [ingest, clearing, settlement] >> Edge(label="audit events", color="#6C7A89") >> audit
        dlqs[0] >> Edge(label="dlq depth, oldest message age", **MONITOR) >> monitoring
        dlqs[1:] >> Edge(**MONITOR) >> monitoring


if __name__ == "__main__":
    draw(out_basename(SLUG, sys.argv))
