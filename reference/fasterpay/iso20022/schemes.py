"""Scheme rules as data: which payments a scheme accepts, and the reason code when it does not.

Each :class:`SchemeRules` says how a message names the scheme (its payment type), the currencies it
settles, the per-transaction limit, the account identifiers it accepts and where those accounts may be
(UK Faster Payments: GB IBANs or UK sort code and account number; SEPA Instant: IBANs of SEPA-zone
countries), and the fields it requires on top of the schema. Change a limit with :func:`dataclasses.replace` or load rules from configuration with
:meth:`SchemeRules.from_mapping`; no validator code changes.

Sources (checked late 2025):

* UK Faster Payments: scheme limit £1,000,000 per payment since 8 February 2022 (Pay.UK, "£1 million
  Faster Payments now possible"); each bank sets its own lower limits. FPS does not exchange ISO 20022
  on the wire today, so the payment type that names it here (``LclInstrm/Prtry = FPS``) and the UK
  account form (8-digit account number in ``Othr/Id`` with the sort code as the agent's ``GBDSC``
  clearing member id) are this guide's convention.
* SEPA Instant Credit Transfer: EUR only, IBANs and BICs, ``SvcLvl/Cd = SEPA`` and ``LclInstrm/Cd = INST``
  (EPC SCT Inst implementation guidelines). The 2025 SCT Inst rulebook, in force from 5 October 2025 and
  aligned with the Instant Payments Regulation (EU) 2024/886, has no scheme-wide maximum amount (the
  earlier rulebooks capped a payment at EUR 100,000): ``max_amount`` is None. Payment service users may
  set their own limits; those belong to authorisation, not to message validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .codes import ReasonCode
from .errors import InvalidPaymentError
from .model import PaymentType

__all__ = [
    "ACCOUNT_KINDS",
    "Clearing",
    "SCHEMES",
    "SEPA_INST",
    "UK_FPS",
    "RequiredField",
    "SchemeRules",
    "UnknownSchemeError",
    "scheme_for",
]

#: Account identifier forms: an IBAN, or a UK 8-digit account number (``Othr/Id``) beside a sort code.
ACCOUNT_KINDS = frozenset({"iban", "uk_account"})


class UnknownSchemeError(InvalidPaymentError):
    """No scheme of that name is configured; use one of the names in :data:`SCHEMES` (or pass rules)."""


@dataclass(frozen=True)
class RequiredField:
    """An element a scheme requires although the schema makes it optional.

    ``path`` is relative to ``CdtTrfTxInf`` (``Dbtr/Nm``); alternatives are separated by ``|`` and any one
    of them satisfies the rule. With ``from_group`` the same path in ``GrpHdr`` also satisfies it (ISO 20022
    lets ``IntrBkSttlmDt`` and ``PmtTpInf`` be given once for the whole message).
    """

    path: str
    reason: ReasonCode
    from_group: bool = False

    @property
    def alternatives(self) -> tuple[str, ...]:
        """The paths, any one of which satisfies the rule."""
        return tuple(p.strip() for p in self.path.split("|"))


@dataclass(frozen=True)
class Clearing:
    """How a scheme clears and settles: its rail, as data (the registry's clearing half).

    ``time_limit_seconds`` is the answer time the code enforces: UK FPS, 15 s for the central
    infrastructure's answer to the sending bank; SEPA Instant, the 10 s maximum execution time of the
    2025 SCT Inst rulebook (aligned with Regulation (EU) 2024/886), after which the originator treats the
    payment as timed out and releases the hold. ``answer_ms`` is the simulated gateway's modelled answer
    time (p50, p99): an assumption for the simulation, never a measurement of a real scheme.

    Examples:
        >>> UK_FPS.clearing.time_limit_seconds, UK_FPS.clearing.reaches("GBDSC:912345")
        (15, False)
    """

    rail: str
    time_limit_seconds: int
    timeout_reason: ReasonCode
    settlement: str = "deferred-net"
    bic_prefixes: tuple[str, ...] = ()
    sort_code_prefixes: tuple[str, ...] = ()
    bic_countries: tuple[str, ...] = ()
    answer_ms: tuple[float, float] = (900.0, 6_000.0)

    def reaches(self, agent: str) -> bool:
        """Whether a creditor agent (a BIC, or ``GBDSC:<sort code>``) is reachable on this rail."""
        if agent.startswith("GBDSC:"):
            return bool(self.sort_code_prefixes) and agent[6:].startswith(self.sort_code_prefixes)
        return agent.startswith(self.bic_prefixes) or (len(agent) >= 6 and agent[4:6] in self.bic_countries)


@dataclass(frozen=True)
class SchemeRules:
    """The rules of one payment scheme, as data.

    Examples:
        >>> from dataclasses import replace
        >>> UK_FPS.max_amount
        Decimal('1000000.00')
        >>> replace(SEPA_INST, max_amount=Decimal("100000.00")).max_amount  # the pre-October-2025 cap
        Decimal('100000.00')
    """

    name: str
    payment_type: PaymentType
    currencies: frozenset[str]
    max_amount: Decimal | None
    account_kinds: frozenset[str]
    required: tuple[RequiredField, ...] = ()
    limit_reason: ReasonCode = ReasonCode.AM02
    description: str = ""
    clearing: Clearing | None = None
    #: Countries whose IBANs the scheme moves money between (empty: any); a UK account number is a GB account
    iban_countries: frozenset[str] = frozenset()
    #: Whether both IBANs must be in the SEPA zone (the country list schwifty keeps from the EPC's register)
    iban_sepa_zone: bool = False
    #: What the payload generator draws for this scheme: its weight in the default mix and the account forms.
    generator: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_amount is not None and not isinstance(self.max_amount, Decimal):
            raise InvalidPaymentError(f"{self.name}: max_amount must be a Decimal or None, never a float")
        unknown = set(self.account_kinds) - ACCOUNT_KINDS
        if unknown:
            raise InvalidPaymentError(
                f"{self.name}: unknown account kinds {sorted(unknown)}; use {sorted(ACCOUNT_KINDS)}")
        object.__setattr__(self, "currencies", frozenset(self.currencies))
        object.__setattr__(self, "account_kinds", frozenset(self.account_kinds))
        object.__setattr__(self, "required", tuple(self.required))
        object.__setattr__(self, "iban_countries", frozenset(c.upper() for c in self.iban_countries))

    def identifies(self, payment_type: PaymentType | None) -> bool:
        """True when a transaction with this payment type belongs to the scheme."""
        return payment_type is not None and self.payment_type.covers(payment_type)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SchemeRules:
        """Rules from plain data (a parsed YAML or JSON document); amounts are strings.

        Examples:
            >>> rules = SchemeRules.from_mapping({
            ...     "name": "uk_fps", "payment_type": {"local_instrument_proprietary": "FPS"},
            ...     "currencies": ["GBP"], "max_amount": "1000000.00", "account_kinds": ["iban", "uk_account"],
            ...     "required": [{"path": "Dbtr/Nm", "reason": "RR02"}]})
            >>> rules.required[0].reason
            <ReasonCode.RR02: 'RR02'>
        """
        max_amount = data.get("max_amount")
        if isinstance(max_amount, float):
            raise InvalidPaymentError("max_amount must be written as a string (\"1000000.00\"), never a float")
        return cls(
            name=str(data["name"]),
            payment_type=PaymentType(**dict(data.get("payment_type", {}))),
            currencies=frozenset(data["currencies"]),
            max_amount=None if max_amount is None else Decimal(str(max_amount)),
            account_kinds=frozenset(data["account_kinds"]),
            required=tuple(
                RequiredField(str(r["path"]), ReasonCode(r["reason"]), bool(r.get("from_group", False)))
                for r in data.get("required", ())
            ),
            limit_reason=ReasonCode(data.get("limit_reason", "AM02")),
            description=str(data.get("description", "")),
            iban_countries=frozenset(str(c) for c in data.get("iban_countries", ())),
            iban_sepa_zone=bool(data.get("iban_sepa_zone", False)),
        )


_PARTIES = (
    RequiredField("Dbtr/Nm", ReasonCode.RR02),
    RequiredField("Cdtr/Nm", ReasonCode.RR03),
    RequiredField("DbtrAcct", ReasonCode.RR01),
    RequiredField("CdtrAcct", ReasonCode.AC01),
)

UK_FPS = SchemeRules(
    name="uk_fps",
    payment_type=PaymentType(local_instrument_proprietary="FPS"),
    currencies=frozenset({"GBP"}),
    max_amount=Decimal("1000000.00"),
    account_kinds=frozenset({"iban", "uk_account"}),
    required=(
        *_PARTIES,
        RequiredField("DbtrAgt/FinInstnId/BICFI | DbtrAgt/FinInstnId/ClrSysMmbId/MmbId", ReasonCode.RC01),
        RequiredField("CdtrAgt/FinInstnId/BICFI | CdtrAgt/FinInstnId/ClrSysMmbId/MmbId", ReasonCode.RC01),
    ),
    description="UK Faster Payments: GBP, scheme limit GBP 1,000,000 per payment",
    clearing=Clearing(
        rail="uk_fps", time_limit_seconds=15, timeout_reason=ReasonCode.AB06, settlement="deferred-net",
        bic_prefixes=("NWBK", "BARC", "LOYD", "HBUK"), sort_code_prefixes=("0", "1", "2", "3", "5", "6", "7", "8"),
        answer_ms=(900.0, 6_000.0)),
    iban_countries=frozenset({"GB"}),
    generator={"weight": 0.6, "account_forms": {"uk_account": 0.5, "iban": 0.5}},
)

SEPA_INST = SchemeRules(
    name="sepa_inst",
    payment_type=PaymentType(service_level="SEPA", local_instrument="INST"),
    currencies=frozenset({"EUR"}),
    max_amount=None,
    account_kinds=frozenset({"iban"}),
    required=(
        *_PARTIES,
        RequiredField("DbtrAgt/FinInstnId/BICFI", ReasonCode.RC01),
        RequiredField("CdtrAgt/FinInstnId/BICFI", ReasonCode.RC01),
        RequiredField("PmtId/TxId", ReasonCode.CH21),
        RequiredField("IntrBkSttlmDt", ReasonCode.DT01, from_group=True),
        RequiredField("AccptncDtTm", ReasonCode.CH21),
    ),
    description="SEPA Instant Credit Transfer: EUR, IBAN and BIC, no scheme-wide maximum (2025 rulebook)",
    clearing=Clearing(
        rail="sepa_inst", time_limit_seconds=10, timeout_reason=ReasonCode.AB05, settlement="deferred-net",
        bic_countries=("DE", "NL", "IE", "AT", "FR", "BE", "ES", "IT"), answer_ms=(1_200.0, 7_000.0)),
    iban_sepa_zone=True,
    generator={"weight": 0.4, "account_forms": {"iban": 1.0}},
)

#: The schemes known by name (the names the simulations CLI uses in ``--mix``).
SCHEMES: dict[str, SchemeRules] = {s.name: s for s in (UK_FPS, SEPA_INST)}


def scheme_for(name_or_rules: str | SchemeRules, schemes: Mapping[str, SchemeRules] | None = None) -> SchemeRules:
    """The rules for a scheme name (``"uk_fps"``), or the rules themselves when given.

    Examples:
        >>> scheme_for("sepa_inst").currencies
        frozenset({'EUR'})
    """
    if isinstance(name_or_rules, SchemeRules):
        return name_or_rules
    known = SCHEMES if schemes is None else schemes
    try:
        return known[name_or_rules]
    except KeyError:
        raise UnknownSchemeError(f"unknown scheme {name_or_rules!r}; use one of: {', '.join(known)}") from None

