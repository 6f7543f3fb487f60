"""Lambda entry points: ``fasterpay.pipeline.lambdas.<stage>`` (the template's ``Handler`` values).

The context is built once per execution environment (cold start) from environment variables, with
boto3 clients created inside the function, never at import time. Ledger and vault configuration come
from their own stacks' outputs, passed as environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["authorise", "clear", "ingest", "route", "settle"]

_CONTEXT: Any = None


def _context() -> Any:  # pragma: no cover - runs on AWS only
    global _CONTEXT
    if _CONTEXT is None:
        import boto3

        from fasterpay.ledger import Ledger, LedgerTables
        from fasterpay.vault import DynamoDbAuditLog, Vault, VaultPolicy

        from .gateway import SimulatedSchemeGateway
        from .routing import default_routing_rules
        from .screening import SanctionsScreen, load_sanctions_list
        from .settlement import SettlementBook
        from .stages import STAGES, PipelineContext
        from .store import StatusStore

        prefix = os.environ["FASTERPAY_NAME_PREFIX"]
        sqs, ddb, kms = boto3.client("sqs"), boto3.client("dynamodb"), boto3.client("kms")
        vault = Vault(kms=kms, dynamodb=ddb, table_name=os.environ["FASTERPAY_VAULT_TABLE"],
                      key_id=os.environ["FASTERPAY_VAULT_KEY"], mac_key_id=os.environ["FASTERPAY_MAC_KEY"],
                      audit=DynamoDbAuditLog(ddb, os.environ["FASTERPAY_VAULT_AUDIT_TABLE"]),
                      policy=VaultPolicy.of(grants=[], erasers=[]))
        tables = LedgerTables(ledger=os.environ["FASTERPAY_LEDGER_TABLE"], outbox=os.environ["FASTERPAY_OUTBOX_TABLE"],
                              idempotency="", consumer="")
        queues = {s: sqs.get_queue_url(QueueName=f"{prefix}-{s}")["QueueUrl"] for s in STAGES}
        _CONTEXT = PipelineContext(
            sqs=sqs, dynamodb=ddb, vault=vault, ledger=Ledger(ddb, tables),
            statuses=StatusStore(ddb, f"{prefix}-payments"), book=SettlementBook(ddb, f"{prefix}-settlement"),
            queues=queues, routing=default_routing_rules(),
            screen=SanctionsScreen.from_names(vault, load_sanctions_list(), tenant=os.environ.get("FASTERPAY_TENANT", "bank-a")),
            gateway=SimulatedSchemeGateway(seed=0),  # replace with your scheme connector
            clock=__import__("time").time,
        )
    return _CONTEXT


def _handler(stage: str) -> Any:
    def handle(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        from .stages import make_handlers

        return make_handlers(_context())[stage](event, context)
    handle.__name__ = stage
    return handle


ingest = _handler("ingest")
authorise = _handler("authorise")
route = _handler("route")
clear = _handler("clear")
settle = _handler("settle")
