"""Authorisation checks that run inside the vault's trust boundary: sanctions screening and fraud rules.

Screening never sees a name in clear. The sanctions list is tokenised once, with the vault's deterministic
tokens (a keyed HMAC held in KMS), and a payment's debtor and creditor name tokens are compared with that set.
This is **exact matching** of normalised names only: no fuzzy matching, transliteration or aliases, which a
production screening engine must add (inside the same boundary, on clear names).
"""

from __future__ import annotations

import re
from collections import OrderedDict
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import yaml

from .model import Payment

__all__ = ["FraudRules", "SanctionsScreen", "load_sanctions_list", "screening_form"]

_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s-]")
SANCTIONS_SUBJECT = "sanctions-list"


def screening_form(name: str) -> str:
    """The normal form names are tokenised in: NFKC, upper case, no punctuation, single spaces.

    Examples:
        >>> screening_form("  ivor   shadow-mere. ")
        'IVOR SHADOW-MERE'
    """
    text = unicodedata.normalize("NFKC", name).upper()
    return _SPACES.sub(" ", _PUNCTUATION.sub("", text)).strip()


def load_sanctions_list() -> list[str]:
    """The fictional test list shipped in ``sanctions.yaml``."""
    text = files("fasterpay.pipeline").joinpath("sanctions.yaml").read_text(encoding="utf-8")
    return [str(n) for n in yaml.safe_load(text)["names"]]


class SanctionsScreen:
    """Screens name tokens against the tokenised sanctions list.

    Examples:
        >>> screen = SanctionsScreen.from_names(vault, load_sanctions_list(), tenant="bank-a")  # doctest: +SKIP
        >>> screen.hit(payment)  # doctest: +SKIP
        False
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens = frozenset(tokens)

    @classmethod
    def from_names(cls, vault: Any, names: Iterable[str], *, tenant: str) -> SanctionsScreen:
        """Tokenise each listed name with the vault (deterministic tokens, same tenant as the payments).

        One batch call (a cold start's work): the tokens are what screening compares.
        """
        requests = [(screening_form(n), "name", SANCTIONS_SUBJECT) for n in names]
        return cls(vault.tokenize_batch(requests, tenant=tenant, deterministic=True) if requests else ())

    def hit(self, payment: Payment) -> bool:
        """True when the debtor's or the creditor's name token is on the list."""
        return payment.debtor_name_token in self.tokens or payment.creditor_name_token in self.tokens


@dataclass
class FraudRules:
    """Simple, explainable fraud rules; each hit rejects with ``reason`` (FR01).

    * a single payment above ``max_single_minor`` (per currency) is held back;
    * more than ``max_per_debtor`` payments from one debtor account in one run (a velocity rule; a real
      service keeps the counter in DynamoDB with a time window).

    Examples:
        >>> rules = FraudRules(max_single_minor={"GBP": 50_000_000})
        >>> rules.max_single_minor["GBP"]
        50000000
    """

    max_single_minor: dict[str, int] = field(default_factory=lambda: {"GBP": 50_000_000, "EUR": 50_000_000})
    max_per_debtor: int = 50
    reason: str = "FR01"
    max_debtors: int = 10_000  #: debtors remembered (least recently seen forgotten first): memory stays bounded
    _seen: OrderedDict[str, set[str]] = field(default_factory=OrderedDict, repr=False)

    def check(self, payment: Payment) -> str | None:
        """A narrative of the rule hit, or None."""
        limit = self.max_single_minor.get(payment.currency)
        if limit is not None and payment.amount_minor > limit:
            return "amount above the single-payment fraud threshold"
        seen = self._seen.setdefault(payment.debtor_account_token, set())
        self._seen.move_to_end(payment.debtor_account_token)
        while len(self._seen) > self.max_debtors:
            self._seen.popitem(last=False)
        seen.add(payment.uetr)  # a set, so a redelivered payment is not counted twice
        if len(seen) > self.max_per_debtor:
            return "too many payments from one debtor account (velocity)"
        return None
