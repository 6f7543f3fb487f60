"""Idempotency and the double-entry ledger: one transaction per transfer, then at-least-once delivery
to a consumer that applies each event once.

Usage: ``python diagrams/idempotency-ledger.py [OUT_BASENAME]`` writes ``OUT_BASENAME.png``
(default: ``build/diagrams/idempotency-ledger`` under the repository root).
"""

from __future__ import annotations

import sys
from pathlib import Path

from _style import CLUSTER_ATTR, EDGE_ATTR, NODE_ATTR, graph_attr, out_basename
from diagrams import Cluster, Diagram, Edge
from diagrams.aws.compute import Lambda
from diagrams.aws.database import Dynamodb
from diagrams.aws.integration import SimpleQueueServiceSqsQueue
from diagrams.onprem.client import Client

SLUG = "idempotency-ledger"
RETRY = {"style": "dashed", "color": "#C0392B", "fontcolor": "#C0392B"}
ONE_TRANSACTION = {"color": "#16a085", "fontcolor": "#16a085", "penwidth": "2"}


def draw(base: Path) -> None:
    """Draw the diagram to ``base``.png."""
    with Diagram("idempotency and the double-entry ledger", filename=str(base), show=False, outformat="png",
                 direction="LR", graph_attr=graph_attr(nodesep=0.6, ranksep=1.1), node_attr=NODE_ATTR, edge_attr=EDGE_ATTR):
        with Cluster("callers (retry at will; untrusted)", graph_attr=CLUSTER_ATTR):
            client = Client("bank / PSP client")

        with Cluster("posting boundary: role ledger-poster", graph_attr=CLUSTER_ATTR):
            api = Lambda("payment api\n(TransferService)")
            idempotency = Dynamodb("idempotency table\nclaims: lease, fence,\nfingerprint (TTL)")
            ledger = Dynamodb("ledger table\nbalances (sharded),\ntransfer records")
            outbox = Dynamodb("outbox table\nevents by shard")

        with Cluster("delivery: role ledger-relay", graph_attr=CLUSTER_ATTR):
            relay = Lambda("outbox relay")
            queue = SimpleQueueServiceSqsQueue("events.fifo\n(dedupe id = event id)")
            dlq = SimpleQueueServiceSqsQueue("events-dlq.fifo")

        with Cluster("consumers: role ledger-consumer", graph_attr=CLUSTER_ATTR):
            consumer = Lambda("deduplicating\nconsumer")
            consumer_table = Dynamodb("consumer table\nprocessed markers (TTL)\n+ statement projection")

        client >> Edge(label="transfer + idempotency key") >> api
        client >> Edge(label="retry (same key)", **RETRY) >> api
        api >> Edge(label="1. claim (conditional put)") >> idempotency
        api >> Edge(label="2. TransactWriteItems:\ndebit, credit, transfer record", **ONE_TRANSACTION) >> ledger
        api >> Edge(label="2. outbox event", **ONE_TRANSACTION) >> outbox
        api >> Edge(label="2. complete claim (fence)", **ONE_TRANSACTION) >> idempotency
        relay >> Edge(label="query, then delete sent") >> outbox
        relay >> Edge(label="SendMessageBatch") >> queue
        queue >> Edge(label="after 5 receives", style="dashed") >> dlq
        queue >> Edge(label="at least once") >> consumer
        consumer >> Edge(label="marker + effect,\none transaction") >> consumer_table


if __name__ == "__main__":
    draw(out_basename(SLUG, sys.argv))
