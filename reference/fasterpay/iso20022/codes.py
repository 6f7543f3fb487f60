"""ISO 20022 status codes and the status reason codes this module reports, with what each one means here.

Reason codes come from the ISO 20022 external code set ``ExternalStatusReason1Code``. The set is open:
a pacs.002 from someone else may carry a code that is not listed here, so parsed reports keep codes as
plain strings (a :class:`ReasonCode` *is* a ``str``: ``ReasonCode.AC01 == "AC01"`` and ``str(ReasonCode.AC01)``
is ``"AC01"``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["REASON_DESCRIPTIONS", "GroupStatus", "ReasonCode", "TransactionStatus"]


class TransactionStatus(StrEnum):
    """``TxSts`` of a pacs.002 (``ExternalPaymentTransactionStatus1Code``), in the order a payment moves."""

    ACTC = "ACTC"  #: accepted after technical validation (syntax and semantics)
    ACCP = "ACCP"  #: accepted after customer profile checks
    ACSP = "ACSP"  #: accepted, settlement in process
    ACSC = "ACSC"  #: accepted, settlement completed (debtor side)
    ACCC = "ACCC"  #: accepted, settlement completed on the creditor's account
    PDNG = "PDNG"  #: pending further checks
    RJCT = "RJCT"  #: rejected; the status reason says why


class GroupStatus(StrEnum):
    """``GrpSts`` of a pacs.002 (``ExternalPaymentGroupStatus1Code``): the transaction statuses plus PART."""

    ACTC = "ACTC"
    ACCP = "ACCP"
    ACSP = "ACSP"
    ACSC = "ACSC"
    ACCC = "ACCC"
    PDNG = "PDNG"
    PART = "PART"  #: some transactions accepted, some rejected
    RJCT = "RJCT"


class ReasonCode(StrEnum):
    """The status reason codes the validator and the pipeline report (``ExternalStatusReason1Code``)."""

    FF01 = "FF01"  #: file format incomplete or invalid: not XML, unsafe XML, wrong namespace, schema violation
    FF03 = "FF03"  #: payment type information missing or invalid (no known scheme)
    AC01 = "AC01"  #: account number invalid or missing (IBAN check digits, UK account number)
    AC02 = "AC02"  #: debtor account number invalid for the scheme (an account the scheme does not reach)
    AC03 = "AC03"  #: creditor account number invalid for the scheme (an account the scheme does not reach)
    RC01 = "RC01"  #: bank identifier (BIC) incorrect
    RC08 = "RC08"  #: clearing system member identifier (UK sort code) invalid or missing
    AM01 = "AM01"  #: amount is zero
    AM02 = "AM02"  #: amount greater than the allowed maximum (scheme limit)
    AM03 = "AM03"  #: currency not processable under the scheme
    AM11 = "AM11"  #: transaction currency invalid (not an ISO 4217 currency with minor units)
    AM12 = "AM12"  #: amount invalid (negative, not a decimal, too many digits)
    AM13 = "AM13"  #: amount exceeds the clearing system's limit (an alternative to AM02 for scheme limits)
    AM16 = "AM16"  #: control sum at group level invalid (CtrlSum, TtlIntrBkSttlmAmt)
    AM19 = "AM19"  #: number of transactions at group level invalid (NbOfTxs)
    CH20 = "CH20"  #: number of decimal places not compatible with the currency
    CH21 = "CH21"  #: mandatory element missing (scheme rule)
    DT01 = "DT01"  #: invalid or missing settlement date
    RR01 = "RR01"  #: debtor account or identification missing (regulatory requirement)
    RR02 = "RR02"  #: debtor name or address missing (regulatory requirement)
    RR03 = "RR03"  #: creditor name or address missing (regulatory requirement)
    DU01 = "DU01"  #: duplicate message identification (MsgId)
    DU04 = "DU04"  #: duplicate end-to-end identification (EndToEndId)
    AB05 = "AB05"  #: timeout at the creditor agent
    AB06 = "AB06"  #: timeout at the instructed agent
    AB08 = "AB08"  #: creditor agent not online
    AM04 = "AM04"  #: insufficient funds
    AG01 = "AG01"  #: transaction forbidden on this type of account
    NARR = "NARR"  #: reason given as narrative in the additional information


#: One line per code, from the ISO 20022 external code set, for logs and pages.
REASON_DESCRIPTIONS: dict[ReasonCode, str] = {
    ReasonCode.FF01: "File format incomplete or invalid",
    ReasonCode.FF03: "Payment type information is missing or invalid",
    ReasonCode.AC01: "Account number is invalid or missing",
    ReasonCode.AC02: "Debtor account number invalid or missing",
    ReasonCode.AC03: "Creditor account number invalid or missing",
    ReasonCode.RC01: "Bank identifier code specified in the message has an incorrect format",
    ReasonCode.RC08: "Clearing system member identifier is invalid or missing",
    ReasonCode.AM01: "Specified message amount is equal to zero",
    ReasonCode.AM02: "Specific transaction/message amount is greater than allowed maximum",
    ReasonCode.AM03: "Specified message amount is in a non-processable currency outside of existing agreement",
    ReasonCode.AM11: "Transaction currency is invalid or missing",
    ReasonCode.AM12: "Amount is invalid or missing",
    ReasonCode.AM13: "Transaction amount exceeds limits set by clearing system",
    ReasonCode.AM16: "Control sum at the group level is invalid",
    ReasonCode.AM19: "Number of transactions at the group level is invalid or missing",
    ReasonCode.CH20: "Number of decimal points not compatible with the currency",
    ReasonCode.CH21: "Mandatory element is missing",
    ReasonCode.DT01: "Invalid date (e.g. wrong or missing settlement date)",
    ReasonCode.RR01: "Debtor account or unique identification needed for regulatory requirements is missing",
    ReasonCode.RR02: "Debtor name and/or address needed for regulatory requirements is missing",
    ReasonCode.RR03: "Creditor name and/or address needed for regulatory requirements is missing",
    ReasonCode.DU01: "Message identification is not unique",
    ReasonCode.DU04: "End-to-end identification is not unique",
    ReasonCode.AB05: "Transaction stopped due to timeout at the creditor agent",
    ReasonCode.AB06: "Transaction stopped due to timeout at the instructed agent",
    ReasonCode.AB08: "Creditor agent is not online",
    ReasonCode.AM04: "Amount of funds available to cover specified message amount is insufficient",
    ReasonCode.AG01: "Transaction forbidden on this type of account",
    ReasonCode.NARR: "Reason is provided as narrative information in the additional reason information",
}
