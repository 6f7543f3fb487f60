"""Tokenisation vault: who may encrypt, who may decrypt, and what each call carries.

Usage: ``python diagrams/tokenisation-vault.py [OUT_BASENAME]`` writes ``OUT_BASENAME.png``
(default: ``build/diagrams/tokenisation-vault`` under the repository root).
"""

from __future__ import annotations

import sys
from pathlib import Path

from _style import CLUSTER_ATTR, DENIED, EDGE_ATTR, NODE_ATTR, graph_attr, out_basename
from diagrams import Cluster, Diagram, Edge
from diagrams.aws.compute import Lambda
from diagrams.aws.database import Dynamodb
from diagrams.aws.security import KMS

SLUG = "tokenisation-vault"


def draw(base: Path) -> None:
    """Draw the diagram to ``base``.png."""
    with Diagram("tokenisation vault", filename=str(base), show=False, outformat="png",
                 direction="LR", graph_attr=graph_attr(nodesep=0.7, ranksep=1.2), node_attr=NODE_ATTR,
                 edge_attr=EDGE_ATTR):
        with Cluster("payment services (untrusted for clear data)", graph_attr=CLUSTER_ATTR):
            payments = Lambda("payment services")
            router = Lambda("router")

        with Cluster("vault trust boundary", graph_attr=CLUSTER_ATTR):
            # The tokenizer role also holds kms:GenerateMac for deterministic tokens
            # (reference/fasterpay/cloudformation/vault.yaml); it never holds kms:Decrypt.
            tokenizer = Lambda("tokenizer\nrole: tokenizer\n(GenerateDataKey, GenerateMac;\n"
                               "no Decrypt)")
            detokenizer = Lambda("detokenizer\nrole: detokenizer\n(kms:Decrypt)")
            vault_table = Dynamodb("vault table\nciphertext +\nencrypted data key,\n"
                                   "subject secret records")
            audit_table = Dynamodb("audit table\nappend-only\ndetokenize records")
            with Cluster("kms", graph_attr=CLUSTER_ATTR):
                vault_cmk = KMS("vault cmk")
                hmac_key = KMS("token hmac key")

        payments >> Edge(label="clear value") >> tokenizer
        tokenizer >> Edge(label="token") >> payments
        tokenizer >> Edge(label="GenerateDataKey\n(ctx: tenant, data class)") >> vault_cmk
        tokenizer >> Edge(label="GenerateMac\n(deterministic tokens)", style="dashed") >> hmac_key
        tokenizer >> Edge(label="put ciphertext (conditional)") >> vault_table

        payments >> Edge(label="token (authorised caller)") >> detokenizer
        detokenizer >> Edge(label="get ciphertext") >> vault_table
        detokenizer >> Edge(label="Decrypt\n(ctx: tenant, data class)") >> vault_cmk
        detokenizer >> Edge(label="audit record") >> audit_table
        detokenizer >> Edge(label="clear value") >> payments

        router >> Edge(label="denied: no kms:Decrypt", **DENIED) >> detokenizer


if __name__ == "__main__":
    draw(out_basename(SLUG, sys.argv))
