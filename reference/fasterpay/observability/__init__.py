"""Observability for payments: OpenTelemetry traces, CloudWatch EMF metrics, JSON logs, SLO burn-rate
alerts, and a per-caller detokenize spike alert, none of them carrying personal data.

Copy the modules you need: ``redaction.py`` (standard library only) is used by ``tracing.py``
(OpenTelemetry SDK), ``logs.py`` and ``emf.py`` (Powertools for AWS Lambda); ``slo.py`` and
``anomaly.py`` need the standard library only. ``pipeline.py`` wires them, with :mod:`fasterpay.audit`,
into the payment pipeline's telemetry port. The long-run SLO replay and the detokenize traffic generator
the article uses are not part of the pattern: they live in ``simulations/observability_sim.py``.
"""

from .anomaly import DetokenizeSpikeDetector, SpikeAlert
from .emf import EmfError, PaymentMetrics, validate_emf
from .logs import PaymentLogger
from .pipeline import PipelineTelemetry
from .redaction import (
    PERSONAL_FIELD_NAMES,
    PersonalDataError,
    PersonalDataFinding,
    PersonalValueRegistry,
    find_personal_data,
    personal_value_registry,
    refuse_personal_data,
    refuse_personal_text,
    register_personal_values,
)
from .sli import AUTHORISATION_SLO, CRITICAL_PATH_SLO, SLI_NAMESPACE, SliPublisher, count_throttles
from .slo import SRE_WORKBOOK_ALERTS, AlertEvaluation, AlertFiring, BurnRateAlert, SliCounts, Slo, evaluate_alerts
from .tracing import (
    StageBreakdown,
    StageTiming,
    breakdown_by_stage,
    in_memory_tracer,
    instrument_aws_client,
    payment_span,
    stage_span,
    stage_timings,
    trace_id_hex,
)

#: Folders and modules to copy with this folder, into the same parent package: the copy test copies
#: exactly these and runs the quick start.
__copy_with__: tuple[str, ...] = ("audit", "vault")

__all__ = [
    "AUTHORISATION_SLO", "CRITICAL_PATH_SLO", "PERSONAL_FIELD_NAMES", "SLI_NAMESPACE", "SRE_WORKBOOK_ALERTS", "AlertEvaluation", "AlertFiring", "BurnRateAlert",
    "DetokenizeSpikeDetector", "EmfError", "PaymentLogger", "PaymentMetrics", "PersonalDataError",
    "PersonalDataFinding", "PersonalValueRegistry", "PipelineTelemetry", "SliCounts", "SliPublisher", "count_throttles", "Slo", "SpikeAlert", "StageBreakdown", "StageTiming", "breakdown_by_stage", "evaluate_alerts", "find_personal_data",
    "in_memory_tracer", "instrument_aws_client", "payment_span", "personal_value_registry", "refuse_personal_data",
    "refuse_personal_text", "register_personal_values",
    "stage_span", "stage_timings", "trace_id_hex", "validate_emf",
]
