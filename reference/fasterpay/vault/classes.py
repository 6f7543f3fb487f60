"""Data classes the vault accepts, and how each is normalised and validated before it is encrypted.

Validation happens before any AWS call, so bad input never leaves anything half-written.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum

__all__ = ["DataClass", "InvalidValueError", "UnknownDataClassError", "normalise", "parse_data_class"]


class InvalidValueError(ValueError):
    """The value is empty, too long or malformed for its data class; fix the input and call again."""


class UnknownDataClassError(ValueError):
    """The data class is not one the vault knows; use one of :class:`DataClass`."""


class DataClass(str, Enum):
    """Kinds of sensitive value, each with its own encryption context and detokenize grants."""

    PAN = "pan"
    IBAN = "iban"
    ACCOUNT_NUMBER = "account_number"
    NAME = "name"


#: Longest accepted value per class, in characters after normalisation (ISO 20022 Max34Text/Max140Text).
MAX_LENGTH = {DataClass.PAN: 19, DataClass.IBAN: 34, DataClass.ACCOUNT_NUMBER: 34, DataClass.NAME: 140}

_ACCOUNT_RE = re.compile(r"[A-Za-z0-9]{1,34}")
_IBAN_RE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")


def parse_data_class(value: DataClass | str) -> DataClass:
    """Return the :class:`DataClass` named by ``value``.

    Examples:
        >>> parse_data_class("iban")
        <DataClass.IBAN: 'iban'>
    """
    if isinstance(value, DataClass):
        return value
    try:
        return DataClass(value)
    except ValueError:
        known = ", ".join(c.value for c in DataClass)
        raise UnknownDataClassError(f"unknown data class {value!r}; use one of: {known}") from None


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(iban: str) -> bool:
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def normalise(value: str, data_class: DataClass) -> str:
    """Validate ``value`` for ``data_class`` and return its canonical form.

    PANs lose spaces and hyphens and must pass the Luhn check; IBANs are upper-cased, lose spaces and
    must pass the ISO 13616 mod-97 check; account numbers are 1-34 letters or digits; names are
    NFC-normalised, trimmed, 1-140 characters, without control characters.

    Examples:
        >>> normalise("gb82 west 1234 5698 7654 32", DataClass.IBAN)
        'GB82WEST12345698765432'
    """
    if not isinstance(value, str):
        raise InvalidValueError(f"{data_class.value}: value must be a string, not {type(value).__name__}")
    if data_class is DataClass.NAME:
        canonical = unicodedata.normalize("NFC", value).strip()
    else:
        canonical = re.sub(r"[\s-]", "", value)
    if not canonical:
        raise InvalidValueError(f"{data_class.value}: value is empty")
    limit = MAX_LENGTH[data_class]
    if len(canonical) > limit:
        raise InvalidValueError(f"{data_class.value}: value has {len(canonical)} characters, the limit is {limit}")
    if data_class is DataClass.PAN:
        if not canonical.isascii() or not canonical.isdigit() or len(canonical) < 12:
            raise InvalidValueError("pan: a PAN is 12 to 19 digits")
        if not _luhn_ok(canonical):
            raise InvalidValueError("pan: the Luhn check digit is wrong")
    elif data_class is DataClass.IBAN:
        canonical = canonical.upper()
        if not _IBAN_RE.fullmatch(canonical):
            raise InvalidValueError("iban: an IBAN is a country code, 2 check digits and 11-30 letters or digits")
        if not _iban_ok(canonical):
            raise InvalidValueError("iban: the mod-97 check digits are wrong")
    elif data_class is DataClass.ACCOUNT_NUMBER:
        if not _ACCOUNT_RE.fullmatch(canonical):
            raise InvalidValueError("account_number: use 1 to 34 letters or digits")
    elif any(unicodedata.category(ch) == "Cc" for ch in canonical):
        raise InvalidValueError("name: control characters are not allowed")
    return canonical
