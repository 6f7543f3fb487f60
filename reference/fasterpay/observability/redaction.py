"""A guard that keeps personal data out of logs, span attributes and metric dimensions.

Telemetry is copied widely (log groups, trace stores, vendors, support tickets) and kept for months,
so it must carry correlation ids and tokens only. :func:`refuse_personal_data` refuses, by raising
:class:`PersonalDataError` before anything is written:

* a field whose *name* says it holds personal data (``iban``, ``debtor_name``, ``email``, ISO 20022's
  ``Nm``, ``Ustrd`` remittance text, ...);
* a string *value* that is, whole, a valid IBAN, a Luhn-valid card number or an e-mail address, whatever
  the field is called.

It is a guard, not a scrubber: it fails loudly so the bug is fixed, rather than silently masking.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["PERSONAL_FIELD_NAMES", "PersonalDataError", "refuse_personal_data", "refuse_personal_text"]

#: Field names (lower case, separators removed) that hold personal data in payments.
PERSONAL_FIELD_NAMES = frozenset({
    "iban", "bban", "accountnumber", "acctno", "sortcode", "pan", "cardnumber", "cvv", "cvc",
    "name", "nm", "fullname", "firstname", "lastname", "surname", "debtorname", "creditorname",
    "dbtrnm", "cdtrnm", "ultmtdbtr", "ultmtcdtr", "email", "emailaddress", "phone", "phonenumber",
    "mobile", "address", "postaladdress", "pstladr", "adrline", "dateofbirth", "dob", "birthdate",
    "nationalid", "passport", "ustrd", "remittanceinformation", "rmtinf",
})
_SUFFIXES = ("iban", "bban", "accountnumber", "sortcode", "cardnumber", "name", "email", "phone",
             "address", "dateofbirth")
_SAFE_SUFFIXES = ("servicename", "stagename", "tablename", "queuename", "bucketname", "spanname",
                  "operationname", "metricname", "keyname", "hostname", "rolename", "eventname", "filename",
                  "streamname", "functionname", "loggername", "username_token")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


class PersonalDataError(ValueError):
    """Telemetry was about to carry personal data: log a token or a correlation id instead."""


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _looks_personal(value: str) -> str | None:
    compact = re.sub(r"[\s-]", "", value).upper()
    if re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", compact):
        moved = compact[4:] + compact[:4]
        if int("".join(str(int(c, 36)) for c in moved)) % 97 == 1:
            return "an IBAN"
    if compact.isdigit() and 12 <= len(compact) <= 19 and _luhn_ok(compact):
        return "a card number"
    if _EMAIL.fullmatch(value.strip()):
        return "an e-mail address"
    return None


_IBAN_IN_TEXT = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,30}\b")
_CARD_IN_TEXT = re.compile(r"\b\d(?:[ -]?\d){11,18}\b")


def refuse_personal_text(text: str, *, where: str = "telemetry") -> None:
    """Raise :class:`PersonalDataError` if free text (a log message) contains an IBAN, card number or e-mail.

    Examples:
        >>> refuse_personal_text("payment E2E-1 authorised")
        >>> refuse_personal_text("looked up GB82 WEST 1234 5698 7654 32")
        Traceback (most recent call last):
        ...
        fasterpay.observability.redaction.PersonalDataError: telemetry text holds an IBAN; log the vault's token instead
    """
    candidates = [m.group(0) for m in _IBAN_IN_TEXT.finditer(text)] + [m.group(0) for m in _CARD_IN_TEXT.finditer(text)]
    candidates += [word for word in text.split() if "@" in word]
    for candidate in candidates:
        for end in range(len(candidate), 11, -1):  # the longest prefix that is a valid identifier
            kind = _looks_personal(candidate[:end].strip(" -.,;:"))
            if kind is not None:
                raise PersonalDataError(f"{where} text holds {kind}; log the vault's token instead")


def refuse_personal_data(fields: Mapping[str, object], *, where: str = "telemetry") -> None:
    """Raise :class:`PersonalDataError` naming the first field that holds, or is named for, personal data.

    Examples:
        >>> refuse_personal_data({"end_to_end_id": "E2E-1", "debtor": "tok_iban_3f9a"})
        >>> refuse_personal_data({"debtor_iban": "tok_iban_3f9a"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fasterpay.observability.redaction.PersonalDataError: telemetry field 'debtor_iban' is named for ...
    """
    for key, value in fields.items():
        name = _norm(str(key))
        if name in PERSONAL_FIELD_NAMES or (name.endswith(_SUFFIXES) and not name.endswith(_SAFE_SUFFIXES)):
            raise PersonalDataError(f"{where} field {key!r} is named for personal data; "
                                    "log a token or a correlation id instead")
        values = value if isinstance(value, (list, tuple)) else (value,)
        for item in values:
            if isinstance(item, str):
                kind = _looks_personal(item)
                if kind is not None:
                    raise PersonalDataError(f"{where} field {key!r} holds {kind}; log the vault's token instead")
