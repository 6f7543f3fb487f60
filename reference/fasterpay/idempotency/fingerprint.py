"""Fingerprints of a request's canonical payload, so a reused idempotency key can be told apart.

Two payloads that mean the same thing get the same fingerprint: keys in any order, text in any Unicode
normal form, ``Decimal("10.50")`` and ``Decimal("10.5")``. Floats are refused, because money is never
float and a float's text is not canonical. Volatile fields (a timestamp, a trace id) are left out with
``ignore``.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Collection, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

__all__ = ["FINGERPRINT_VERSION", "NonCanonicalValueError", "canonical_json", "fingerprint"]

#: Part of every fingerprint: change it when the canonical form changes, so old and new never collide.
FINGERPRINT_VERSION = "v1"


class NonCanonicalValueError(TypeError):
    """A payload holds a value with no canonical form (a float, NaN, a set, an object): pass integer
    minor units or ``Decimal`` for money, and plain str/int/bool/None/list/dict otherwise."""


def _canonical(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Enum):
        return _canonical(value.value, path)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise NonCanonicalValueError(f"{path}: {value} is not a finite Decimal")
        text = format(value.normalize(), "f")
        return {"$decimal": text if text != "-0" else "0"}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise NonCanonicalValueError(f"{path}: datetime {value!r} has no time zone; use an aware datetime")
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NonCanonicalValueError(f"{path}: key {key!r} is not a string")
            out[unicodedata.normalize("NFC", key)] = _canonical(item, f"{path}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_canonical(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, float):
        raise NonCanonicalValueError(
            f"{path}: float {value!r} has no canonical form; use integer minor units or Decimal for money"
        )
    raise NonCanonicalValueError(f"{path}: {type(value).__name__} has no canonical form")


def canonical_json(payload: Mapping[str, Any], *, ignore: Collection[str] = ()) -> bytes:
    """The canonical bytes of ``payload``: sorted keys, no spaces, NFC text, normalised decimals.

    ``ignore`` names top-level fields left out (volatile ones, such as a request timestamp).

    Examples:
        >>> canonical_json({"b": 1, "a": "x"})
        b'{"a":"x","b":1}'
    """
    if not isinstance(payload, Mapping):
        raise NonCanonicalValueError(f"the payload must be a mapping, not {type(payload).__name__}")
    kept = {key: value for key, value in payload.items() if key not in ignore}
    text = json.dumps(_canonical(kept, "$"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def fingerprint(payload: Mapping[str, Any], *, ignore: Collection[str] = ()) -> str:
    """``"v1:" + SHA-256`` of the canonical payload.

    Examples:
        >>> fingerprint({"amount_minor": 1050, "currency": "GBP"}) == fingerprint(
        ...     {"currency": "GBP", "amount_minor": 1050})
        True
        >>> fingerprint({"amount": Decimal("10.50")}) == fingerprint({"amount": Decimal("10.5")})
        True
    """
    digest = hashlib.sha256(canonical_json(payload, ignore=ignore)).hexdigest()
    return f"{FINGERPRINT_VERSION}:{digest}"
