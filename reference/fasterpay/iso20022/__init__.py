"""ISO 20022 messages for an instant payment pipeline: pacs.008.001.08 in, pacs.002.001.10 out.

* :func:`build_pacs008` / :func:`parse_pacs008` and :func:`build_pacs002` / :func:`parse_pacs002` map a
  small typed model (:class:`Pacs008`, :class:`Pacs002`, Decimal amounts) to and from XML through the
  ``pyiso20022`` bindings, which are generated from the official ISO 20022 schemas.
* :func:`parse_xml` is the hardened parser: byte limit first, UTF-8 only, no DTD, entities or external
  references.
* :class:`Pacs008Validator` validates in layers and rejects each message or transaction with an ISO
  reason code (:class:`ReasonCode`); :meth:`ValidationReport.to_pacs002` turns the outcome into the answer.
* :data:`UK_FPS` and :data:`SEPA_INST` are scheme rules as data (:class:`SchemeRules`).
* :class:`DuplicateDetector` is the seam for MsgId / EndToEndId duplicate checks.

Copy the whole ``iso20022/`` folder; it needs ``pyiso20022``, ``xsdata``, ``defusedxml``, ``schwifty``
and ``iso4217``, and nothing from the rest of :mod:`fasterpay`. The seeded test-message generator is not
part of it: it lives in ``simulations/generator.py`` (``python -m simulations generate``).
"""

from .codes import REASON_DESCRIPTIONS, GroupStatus, ReasonCode, TransactionStatus
from .duplicates import DuplicateDetector, InMemoryDuplicateDetector
from .errors import (
    InvalidPaymentError,
    Iso20022Error,
    MessageFormatError,
    MessageTooLargeError,
    Rejection,
    UnsafeXmlError,
)
from .messages import (
    PACS002_NAMESPACE,
    PACS008_NAMESPACE,
    build_pacs002,
    build_pacs008,
    parse_pacs002,
    parse_pacs008,
)
from .model import (
    PACS002_VERSION,
    PACS008_VERSION,
    Account,
    Agent,
    CreditTransfer,
    GroupHeader,
    Pacs002,
    Pacs008,
    Party,
    PaymentType,
    StatusReason,
    TransactionStatusReport,
)
from .schemes import SCHEMES, SEPA_INST, UK_FPS, RequiredField, SchemeRules, UnknownSchemeError, scheme_for
from .validation import NOT_PROVIDED, Pacs008Validator, TransactionOutcome, ValidationReport, currency_exponent
from .xmlsafe import DEFAULT_MAX_MESSAGE_BYTES, parse_xml

#: Folders and modules to copy with this folder, into the same parent package: the copy test copies
#: exactly these and runs the quick start.
__copy_with__: tuple[str, ...] = ()

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES", "NOT_PROVIDED", "PACS002_NAMESPACE", "PACS002_VERSION", "PACS008_NAMESPACE",
    "PACS008_VERSION", "REASON_DESCRIPTIONS", "SCHEMES", "SEPA_INST", "UK_FPS", "Account", "Agent",
    "CreditTransfer", "DuplicateDetector", "GroupHeader", "GroupStatus", "InMemoryDuplicateDetector",
    "InvalidPaymentError", "Iso20022Error", "MessageFormatError", "MessageTooLargeError", "Pacs002", "Pacs008",
    "Pacs008Validator", "Party", "PaymentType", "ReasonCode", "Rejection", "RequiredField", "SchemeRules",
    "StatusReason", "TransactionOutcome", "TransactionStatus", "TransactionStatusReport", "UnknownSchemeError",
    "UnsafeXmlError", "ValidationReport", "build_pacs002", "build_pacs008", "currency_exponent", "parse_pacs002",
    "parse_pacs008", "parse_xml", "scheme_for",
]
