"""The payment pipeline: ISO 20022 ingest, authorisation, routing, clearing and settlement, as SQS-driven
Lambda handlers with exactly-once effects, settlement cycles, replay and reconciliation.

Copy ``pipeline/`` with ``iso20022/``, ``vault/``, ``ledger/`` and ``idempotency/``; ``stack.py`` and
``benchmark.py`` also use the guide's ``aws``, ``metering``, ``faults`` and ``pricing`` modules.
"""

from .gateway import GatewayAnswer, SimulatedSchemeGateway, VirtualClock
from .model import CLEARING_TIME_LIMITS, Payment, PipelineError, PoisonMessageError, customer_account, to_minor_units
from .reconcile import ReconciliationReport, balances_by_currency, reconcile
from .routing import Rail, Route, RoutingRules, default_routing_rules
from .runner import DeadLetter, LocalRunner, RunnerReport, dead_letters, redrive, sqs_event
from .screening import FraudRules, SanctionsScreen, load_sanctions_list, screening_form
from .settlement import (
    Position,
    ReplayResult,
    SettlementBook,
    SettlementReport,
    close_cycle,
    net_positions,
    replay_cycle,
)
from .stages import (
    STAGES,
    PipelineContext,
    authorise_handler,
    clear_handler,
    ingest_handler,
    make_handlers,
    route_handler,
    settle_handler,
    submission_body,
)
from .store import DynamoDbDuplicateDetector, PaymentStatus, StatusConflictError, StatusStore

__all__ = [
    "CLEARING_TIME_LIMITS", "STAGES", "DeadLetter", "DynamoDbDuplicateDetector", "FraudRules", "GatewayAnswer",
    "LocalRunner", "Payment", "PaymentStatus", "PipelineContext", "PipelineError", "PoisonMessageError",
    "Position", "Rail", "ReconciliationReport", "ReplayResult", "Route", "RoutingRules", "RunnerReport",
    "SanctionsScreen", "SettlementBook", "SettlementReport", "SimulatedSchemeGateway", "StatusConflictError",
    "StatusStore", "VirtualClock", "authorise_handler", "balances_by_currency", "clear_handler", "close_cycle",
    "customer_account", "dead_letters", "default_routing_rules", "ingest_handler", "load_sanctions_list",
    "make_handlers", "net_positions", "reconcile", "redrive", "replay_cycle", "route_handler", "screening_form",
    "settle_handler", "sqs_event", "submission_body", "to_minor_units",
]
