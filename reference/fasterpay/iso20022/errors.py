"""Rejections (a reason code, where, and why) and the exceptions of the ISO 20022 module."""

from __future__ import annotations

from dataclasses import dataclass

from .codes import ReasonCode

__all__ = [
    "InvalidPaymentError",
    "Iso20022Error",
    "MessageFormatError",
    "MessageTooLargeError",
    "Rejection",
    "UnsafeXmlError",
]


@dataclass(frozen=True)
class Rejection:
    """One reason to reject a message or a transaction.

    ``path`` is an XPath-like location in the message (``/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/DbtrAcct``,
    1-based indexes), or ``/`` for the message as a whole. ``message`` says what is wrong without echoing the
    offending value, so it can be logged and returned to the sender.
    """

    reason: ReasonCode
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.reason.value} at {self.path}: {self.message}"


class Iso20022Error(ValueError):
    """Base class of this module's errors."""


class MessageFormatError(Iso20022Error):
    """The bytes are not a well-formed, schema-valid message of the expected type and version.

    ``rejections`` holds each problem with its reason code (FF01 for format problems); answer the sender with a
    pacs.002 that carries them (:func:`fasterpay.iso20022.build_pacs002`) and do not process the message.
    """

    def __init__(self, rejections: tuple[Rejection, ...] | list[Rejection]) -> None:
        self.rejections = tuple(rejections)
        shown = "; ".join(str(r) for r in self.rejections[:3])
        more = f" (and {len(self.rejections) - 3} more)" if len(self.rejections) > 3 else ""
        super().__init__(f"message rejected: {shown}{more}; reply with a pacs.002 carrying these reasons")

    @property
    def reason(self) -> ReasonCode:
        """The reason code of the first rejection."""
        return self.rejections[0].reason


class UnsafeXmlError(MessageFormatError):
    """The document has a DTD, entity declarations or external references; ISO 20022 messages never do.

    Nothing in it was expanded or fetched. Reject the message (FF01) and treat the sender as suspect.
    """


class MessageTooLargeError(MessageFormatError):
    """The message is larger than the configured byte limit and was not parsed; reject it (FF01)."""


class InvalidPaymentError(Iso20022Error):
    """A value given to the message model has the wrong type or shape (for example a float amount).

    Fix the calling code: amounts are :class:`decimal.Decimal`, identifiers are strings, times are datetimes.
    """
