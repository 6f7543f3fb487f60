"""Observability for payments: OpenTelemetry traces, CloudWatch EMF metrics, JSON logs, SLO burn-rate
alerts, and a per-caller detokenize spike alert, none of them carrying personal data.

Copy the modules you need: ``redaction.py`` (standard library only) is used by ``tracing.py``
(OpenTelemetry SDK), ``logs.py`` and ``emf.py`` (Powertools for AWS Lambda); ``slo.py`` and
``anomaly.py`` need the standard library only. ``simulation.py`` is this article's simulated payment
flow and needs the rest of :mod:`fasterpay`.
"""

from .anomaly import DetokenizeSpikeDetector, SpikeAlert
from .emf import EmfError, PaymentMetrics, validate_emf
from .logs import PaymentLogger
from .redaction import PERSONAL_FIELD_NAMES, PersonalDataError, refuse_personal_data, refuse_personal_text
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

__all__ = [
    "PERSONAL_FIELD_NAMES", "SRE_WORKBOOK_ALERTS", "AlertEvaluation", "AlertFiring", "BurnRateAlert",
    "DetokenizeSpikeDetector", "EmfError", "PaymentLogger", "PaymentMetrics", "PersonalDataError", "SliCounts",
    "Slo", "SpikeAlert", "StageBreakdown", "StageTiming", "breakdown_by_stage", "evaluate_alerts",
    "in_memory_tracer", "instrument_aws_client", "payment_span", "refuse_personal_data", "refuse_personal_text",
    "stage_span", "stage_timings", "trace_id_hex", "validate_emf",
]
