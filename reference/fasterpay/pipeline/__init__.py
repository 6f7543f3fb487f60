"""The payment pipeline: ISO 20022 ingest, authorisation, routing, clearing and settlement, as two
SQS-driven Lambda handlers with exactly-once effects, settlement cycles, replay and reconciliation.

Copy ``pipeline/`` with ``iso20022/``, ``vault/``, ``ledger/`` and ``idempotency/``; ``stack.py`` also uses
the guide's :mod:`fasterpay.aws`. Benches, the simulated scheme and the chaos harness are in
``simulations/``: nothing here depends on them.
"""

from .bootstrap import Clients, ConfigurationError, PipelineConfig, bootstrap, cycle_clock, thread_pool
from .gateway import SchemeAnswer, SchemeGateway
from .model import (
    Payment,
    PipelineError,
    PoisonMessageError,
    SimulatedCrash,
    customer_account,
    inflight_account,
    settled_account,
    to_minor_units,
)
from .reconcile import ReconciliationReport, effective_status, reconcile
from .routing import Rail, Route, RoutingRules, default_routing_rules
from .runner import DeadLetter, LocalRunner, RunnerReport, dead_letters, redrive, sqs_event
from .screening import (
    FraudRules,
    NameMatch,
    NameMatcher,
    SanctionsScreen,
    ScreeningConfigurationError,
    load_sanctions_list,
    screening_form,
    screening_key,
)
from .settlement import (
    Entry,
    Position,
    ReplayResult,
    ReportRebuildRefusedError,
    SettlementBook,
    SettlementReport,
    close_cycle,
    net_positions,
    position_differences,
    rebuild_report,
    replay_cycle,
    settlement_transfer_id,
)
from .stages import (
    HANDLERS,
    LOGICAL_STEPS,
    STEP_NAMES,
    Answer,
    FanOut,
    NoTelemetry,
    PipelineContext,
    Telemetry,
    accept_handler,
    clear_handler,
    make_handlers,
    personal_values,
    submission_body,
)
from .store import FINAL_STATUSES, HoldOutcome, PaymentStore, StoredPayment, TransitionConflictError

#: Folders and modules to copy with this folder, into the same parent package: the copy test copies
#: exactly these and runs the quick start.
__copy_with__: tuple[str, ...] = ("iso20022", "vault", "ledger", "idempotency", "aws.py", "cloudformation")

__all__ = [
    "FINAL_STATUSES", "HANDLERS", "LOGICAL_STEPS", "STEP_NAMES", "Answer", "Clients", "ConfigurationError",
    "DeadLetter", "Entry", "FanOut", "FraudRules", "HoldOutcome", "LocalRunner", "NameMatch", "NameMatcher", "NoTelemetry", "Payment", "PaymentStore",
    "PipelineConfig", "PipelineContext", "PipelineError", "PoisonMessageError", "Position", "Rail",
    "ReconciliationReport", "ReplayResult", "ReportRebuildRefusedError", "Route", "RoutingRules", "RunnerReport", "SanctionsScreen",
    "SchemeAnswer", "SchemeGateway", "ScreeningConfigurationError", "SettlementBook", "SettlementReport", "SimulatedCrash", "StoredPayment",
    "Telemetry", "TransitionConflictError", "accept_handler", "bootstrap", "clear_handler", "close_cycle",
    "customer_account", "cycle_clock", "dead_letters", "default_routing_rules", "effective_status",
    "inflight_account", "load_sanctions_list", "make_handlers", "net_positions", "personal_values", "position_differences", "reconcile",
    "rebuild_report", "redrive", "replay_cycle", "screening_form", "screening_key", "settled_account", "settlement_transfer_id", "sqs_event", "submission_body",
    "thread_pool", "to_minor_units",
]
