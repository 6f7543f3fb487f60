"""Tamper-evident audit trail and observability: who writes, who signs, who verifies, what telemetry carries.

Usage: ``python diagrams/audit-observability.py [OUT_BASENAME]`` writes ``OUT_BASENAME.png``
(default: ``build/diagrams/audit-observability`` under the repository root).
"""

from __future__ import annotations

import sys
from pathlib import Path

from diagrams.aws.compute import Lambda
from diagrams.aws.devtools import XRay
from diagrams.aws.management import Cloudwatch, CloudwatchAlarm, CloudwatchLogs
from diagrams.aws.security import KMS
from diagrams.aws.storage import SimpleStorageServiceS3Bucket
from diagrams.generic.compute import Rack
from diagrams.onprem.client import User

from _style import CLUSTER_ATTR, DENIED, EDGE_ATTR, NODE_ATTR, graph_attr, out_basename
from diagrams import Cluster, Diagram, Edge

SLUG = "audit-observability"
TELEMETRY = {"color": "#2E86C1", "fontcolor": "#2E86C1"}


def draw(base: Path) -> None:
    """Draw the diagram to ``base``.png."""
    with Diagram("tamper-evident audit trail and observability", filename=str(base), show=False,
                 outformat="png", direction="LR", graph_attr=graph_attr(nodesep=0.6, ranksep=1.1), node_attr=NODE_ATTR,
                 edge_attr=EDGE_ATTR):
        with Cluster("payment services (emit events by reference)", graph_attr=CLUSTER_ATTR):
            detokenizer = Lambda("vault detokenizer")
            pipeline = Lambda("payment pipeline\n(accept, clear)")

        with Cluster("audit writer trust boundary\nrole: audit-writer (PutObject, kms:Sign; no delete)",
                     graph_attr=CLUSTER_ATTR):
            writer = Lambda("merkle log writer\n(RFC 6962 tree)")
            signing_key = KMS("checkpoint key\nECC_NIST_P256")

        with Cluster("S3, Object Lock COMPLIANCE (versions locked for the retention period)",
                     graph_attr=CLUSTER_ATTR):
            segments = SimpleStorageServiceS3Bucket("segments/\nentries, one per line")
            checkpoints = SimpleStorageServiceS3Bucket("checkpoints/\nsigned size + root")

        with Cluster("auditor (outside; role: auditor, read only)", graph_attr=CLUSTER_ATTR):
            auditor = User("auditor")
            verifier = Rack("offline verifier\npublic key only")

        with Cluster("observability (no personal data)", graph_attr=CLUSTER_ATTR):
            traces = XRay("traces\n(OpenTelemetry)")
            logs = CloudwatchLogs("JSON logs\ncorrelation ids")
            metrics = Cloudwatch("EMF metrics")
            alarms = CloudwatchAlarm("burn-rate and\ndetokenize spike alarms")

        detokenizer >> Edge(label="detokenize record\n(token, principal, result, hash)") >> writer
        pipeline >> Edge(label="status change, before its answer\n(UETR, EndToEndId, status)") >> writer
        writer >> Edge(label="put segment\n(If-None-Match)") >> segments
        writer >> Edge(label="Sign(size, root)") >> signing_key
        writer >> Edge(label="put checkpoint") >> checkpoints
        segments >> Edge(label="export") >> verifier
        checkpoints >> Edge(label="export") >> verifier
        signing_key >> Edge(label="GetPublicKey (PEM),\nobtained separately", style="dashed") >> auditor
        auditor >> Edge(label="intact, or the entry\nthat fails and why") >> verifier
        writer >> Edge(label="denied: delete, shorten\nretention, overwrite", **DENIED) >> segments

        pipeline >> Edge(label="span per step\n(its UETRs)", **TELEMETRY) >> traces
        pipeline >> Edge(label="log line per status", **TELEMETRY) >> logs
        detokenizer >> Edge(label="detokenize count\nper caller", **TELEMETRY) >> metrics
        pipeline >> Edge(label="step latency,\noutcome (EMF)", **TELEMETRY) >> metrics
        metrics >> Edge(label="SLO burn rate,\nspikes", **TELEMETRY) >> alarms


if __name__ == "__main__":
    draw(out_basename(SLUG, sys.argv))
