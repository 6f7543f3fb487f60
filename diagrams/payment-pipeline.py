"""Payment pipeline: two SQS-driven Lambda handlers over five logical steps, the vault's trust boundary,
the payments, settlement and ledger tables, the scheme gateway port and the settlement job.

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
from diagrams.aws.integration import SQS, Eventbridge
from diagrams.aws.security import KMS
from diagrams.onprem.client import Users
from diagrams.onprem.network import Internet

SLUG = "payment-pipeline"
#: The hold: one TransactWriteItems across the payments and ledger tables.
ONE_TRANSACTION = {"color": "#16a085", "fontcolor": "#16a085", "penwidth": "2"}


def draw(base: Path) -> None:
    """Draw the diagram to ``base``.png."""
    with Diagram("payment pipeline: two handlers, five logical steps", filename=str(base), show=False,
                 outformat="png", direction="LR", graph_attr=graph_attr(nodesep=0.5, ranksep=1.1),
                 node_attr=NODE_ATTR, edge_attr=EDGE_ATTR):
        sender = Users("sending bank /\nchannel")
        with Cluster("pipeline account: tokens only after accept", graph_attr=CLUSTER_ATTR):
            accept_q = SQS("accept queue")
            accept_dlq = SQS("accept DLQ")
            with Cluster("vault trust boundary (clear names and accounts end here)", graph_attr=CLUSTER_ATTR):
                accept = Lambda("accept handler\n1 ingest  2 authorise  3 route\n(validate, tokenise,\nscreen tokens, rules)")
                kms = KMS("vault keys\n(GenerateMac)")
                vault = Dynamodb("vault table\ntoken records")
            payments = Dynamodb("payments table\nPAY# status + hold,\nE2E# / MSG# guards,\nFAIL# reasons")
            clear_q = SQS("clear queue")
            clear_dlq = SQS("clear DLQ")
            clear = Lambda("clear handler\n4 clear  5 settle\n(time limit, first decision,\nbook batch into cycle)")
            settlement = Dynamodb("settlement table\nENTRY# per batch,\nSTATE, REPORT")
            answers_q = SQS("answers queue")
            answers_dlq = SQS("answers DLQ")
            job = Eventbridge("settlement job\n(schedule):\nclose_cycle, resumable")
            with Cluster("ledger (own stack)", graph_attr=CLUSTER_ATTR):
                ledger = Dynamodb("ledger table\ncustomer balances,\nsettlement transfers")
        with Cluster("scheme gateway port", graph_attr=CLUSTER_ATTR):
            scheme = Internet("scheme connector\n(SchemeGateway; simulated here:\nFPS 15 s, SEPA Inst 10 s)")

        sender >> Edge(label="pacs.008 (raw XML)") >> accept_q >> accept
        accept >> Edge(label="tokenise") >> kms
        accept >> Edge(label="records beside the holds") >> vault
        accept >> Edge(label="one transaction: PAY# ACCP\n+ guards (or RJCT)", **ONE_TRANSACTION) >> payments
        accept >> Edge(label="debit (the hold),\nsame transaction", **ONE_TRANSACTION) >> ledger
        accept >> Edge(label="tokenised payment") >> clear_q >> clear
        accept >> Edge(label="RJCT + reason") >> answers_q
        clear >> Edge(label="submit batch;\nwait <= time limit") >> scheme
        clear >> Edge(label="ACCP -> ACSP (cycle),\nor RJCT + release") >> payments
        clear >> Edge(label="release: credit back,\nsame transaction", **ONE_TRANSACTION) >> ledger
        clear >> Edge(label="ACSP / RJCT") >> answers_q
        clear >> Edge(label="entry per batch") >> settlement
        answers_q >> Edge(label="pacs.002 status\n(dedupe uetr + status)", constraint="false") >> sender
        job >> Edge(label="CLOSING, REPORT,\nSETTLED (= ACSC)") >> settlement
        job >> Edge(label="inflight -> settled,\nonce per rail") >> ledger
        accept_q >> Edge(label="after maxReceiveCount", **DLQ) >> accept_dlq
        clear_q >> Edge(label="after maxReceiveCount", **DLQ) >> clear_dlq
        answers_q >> Edge(label="after maxReceiveCount", **DLQ) >> answers_dlq


if __name__ == "__main__":
    draw(out_basename(SLUG, sys.argv))
