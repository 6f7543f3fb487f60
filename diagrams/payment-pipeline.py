"""Payment pipeline: five SQS-driven Lambda stages, the vault's trust boundary, the ledger and the scheme.

Usage: ``python diagrams/payment-pipeline.py [OUT_BASENAME]`` writes ``OUT_BASENAME.png``
(default: ``build/diagrams/payment-pipeline`` under the repository root).
"""

from __future__ import annotations

import sys
from pathlib import Path

from _style import CLUSTER_ATTR, DLQ, EDGE_ATTR, NODE_ATTR, graph_attr, out_basename
from diagrams import Cluster, Diagram, Edge
from diagrams.aws.compute import Lambda
from diagrams.aws.database import Dynamodb
from diagrams.aws.integration import SQS
from diagrams.aws.security import KMS
from diagrams.onprem.client import Users
from diagrams.onprem.network import Internet

SLUG = "payment-pipeline"


def draw(base: Path) -> None:
    """Draw the diagram to ``base``.png."""
    with Diagram("payment pipeline", filename=str(base), show=False, outformat="png", direction="LR",
                 graph_attr=graph_attr(nodesep=0.6, ranksep=1.0), node_attr=NODE_ATTR, edge_attr=EDGE_ATTR):
        sender = Users("sending bank /\nchannel")
        with Cluster("pipeline account (stages see tokens only after ingest)", graph_attr=CLUSTER_ATTR):
            queues = {s: SQS(f"{s} queue") for s in ("ingest", "authorise", "route", "clear", "settle")}
            dlq = SQS("dead-letter\nqueues (x5)")
            payments = Dynamodb("payments table\nstatuses, duplicates,\nfailure reasons")
            settlement = Dynamodb("settlement table\ncycles, reports")
            with Cluster("vault trust boundary", graph_attr=CLUSTER_ATTR):
                ingest = Lambda("ingest\nparse, validate,\ntokenise")
                authorise = Lambda("authorise\nscreening (tokens),\nfraud rules, hold")
                kms = KMS("vault keys\n(GenerateMac)")
                vault = Dynamodb("vault table")
            route = Lambda("route\nrules as data")
            clear = Lambda("clear\ntime limit,\ndecision once")
            settle = Lambda("settle\nbook into cycle")
            with Cluster("ledger (own stack)", graph_attr=CLUSTER_ATTR):
                ledger = Dynamodb("ledger\nhold / clear / release")
        scheme = Internet("scheme gateway\n(simulated: FPS 15 s,\nSEPA Inst 10 s)")

        sender >> Edge(label="pacs.008 (raw XML)") >> queues["ingest"] >> ingest
        ingest >> Edge(label="pacs.002 RJCT / ACTC") >> payments
        ingest >> Edge(label="tokenise") >> kms
        ingest >> vault
        ingest >> Edge(label="tokenised payment") >> queues["authorise"] >> authorise
        authorise >> Edge(label="hold (ACCP)") >> ledger
        authorise >> queues["route"] >> route >> queues["clear"] >> clear
        clear >> Edge(label="submit / answer") >> scheme
        clear >> Edge(label="clear or release") >> ledger
        clear >> Edge(label="ACSP") >> queues["settle"] >> settle
        settle >> Edge(label="entries, net report (ACSC)") >> settlement
        queues["ingest"] >> Edge(label="after maxReceiveCount", **DLQ) >> dlq


if __name__ == "__main__":
    draw(out_basename(SLUG, sys.argv))
