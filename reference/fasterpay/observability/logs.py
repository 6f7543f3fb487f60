"""Structured JSON logs with correlation ids, and no personal data.

Every line is one JSON object: ``timestamp``, ``level``, ``service``, ``message``, the payment's
correlation ids (``end_to_end_id``, ``uetr``), the current trace and span ids (so a log line leads to
its trace), then the caller's fields. Fields go through
:func:`~fasterpay.observability.redaction.refuse_personal_data` first: a personal-data field raises
:class:`~fasterpay.observability.redaction.PersonalDataError` and nothing is written.

Powertools for AWS Lambda's ``Logger`` writes the same shape in Lambda; this class is the few lines
needed to show the contract and test it anywhere.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

from .redaction import refuse_personal_data, refuse_personal_text

__all__ = ["LEVELS", "PaymentLogger"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Tally:
    """Bytes written, shared by a logger and every logger bound from it."""

    def __init__(self) -> None:
        self.bytes = 0


class PaymentLogger:
    """A JSON-lines logger bound to correlation ids.

    :attr:`bytes_written` counts the UTF-8 bytes of every line written (newline included) by this logger
    and every logger bound from it: what CloudWatch Logs ingests, for the cost model.

    Examples:
        >>> import io
        >>> out = io.StringIO()
        >>> log = PaymentLogger("payments-api", stream=out).bind(end_to_end_id="E2E-1", uetr="u-1")
        >>> log.info("authorised", stage="authorise", status="ACTC")
        >>> json.loads(out.getvalue())["end_to_end_id"]
        'E2E-1'
        >>> log.bytes_written == len(out.getvalue())
        True
        >>> log.info("lookup", debtor_iban="GB82WEST12345698765432")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fasterpay.observability.redaction.PersonalDataError: log field 'debtor_iban' is named for personal data; ...
    """

    def __init__(self, service: str, *, stream: TextIO | None = None, level: str = "INFO",
                 clock: Callable[[], datetime] = _utc_now, bound: dict[str, Any] | None = None,
                 _tally: _Tally | None = None) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}")
        self.service = service
        self.stream = stream
        self.level = level
        self._clock = clock
        self._bound = dict(bound or {})
        self._tally = _tally or _Tally()
        refuse_personal_data(self._bound, where="log")

    @property
    def bytes_written(self) -> int:
        """Bytes of every line written by this logger and the loggers bound from it (or it from)."""
        return self._tally.bytes

    def bind(self, **correlation: Any) -> PaymentLogger:
        """A logger that adds ``correlation`` (for example ``end_to_end_id``, ``uetr``) to every line."""
        return PaymentLogger(self.service, stream=self.stream, level=self.level, clock=self._clock,
                             bound={**self._bound, **correlation}, _tally=self._tally)

    def log(self, level: str, message: str, **fields: Any) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}")
        refuse_personal_data(fields, where="log")
        refuse_personal_text(message, where="log message")
        if LEVELS.index(level) < LEVELS.index(self.level):
            return
        record: dict[str, Any] = {
            "timestamp": self._clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level, "service": self.service, "message": message, **self._bound}
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record["trace_id"] = f"{context.trace_id:032x}"
            record["span_id"] = f"{context.span_id:016x}"
        record.update(fields)
        line = json.dumps(record, default=str, separators=(",", ":")) + "\n"
        (self.stream or sys.stdout).write(line)
        self._tally.bytes += len(line.encode("utf-8"))

    def debug(self, message: str, **fields: Any) -> None:
        self.log("DEBUG", message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        self.log("INFO", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("WARNING", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("ERROR", message, **fields)
