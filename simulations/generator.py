"""Seeded pacs.008 test traffic: valid payments, every class of bad input, and duplicates, each with the
outcome a correct validator must report.

Messages carry one transaction each (as instant payments do) and are meant to be validated in sequence
by one :class:`~fasterpay.iso20022.validation.Pacs008Validator`, since duplicates refer to earlier messages. The same
settings and seed always give the same bytes.

Examples:
    >>> from fasterpay.iso20022 import Pacs008Validator
    >>> batch = generate_messages(GeneratorSettings(count=20, seed=7, invalid_rate=0.25, duplicate_rate=0.1))
    >>> validator = Pacs008Validator(max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES)
    >>> all(validator.validate(m.xml).reason_codes == m.expected_reasons for m in batch)
    True
"""

from __future__ import annotations

import json
import math
import random
import re
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fasterpay.iso20022.codes import ReasonCode, TransactionStatus
from fasterpay.iso20022.messages import PACS008_NAMESPACE, build_pacs008
from fasterpay.iso20022.model import Account, Agent, CreditTransfer, GroupHeader, Pacs008, Party
from fasterpay.iso20022.schemes import SCHEMES, SchemeRules
from fasterpay.iso20022.validation import currency_exponent
from fasterpay.iso20022.xmlsafe import DEFAULT_MAX_MESSAGE_BYTES

__all__ = [
    "AMOUNT_BANDS",
    "DEFAULT_AMOUNT_MIX",
    "DEFAULT_SCHEME_MIX",
    "DUPLICATE_CASES",
    "EU_BANKS",
    "FAMILY_NAMES",
    "GIVEN_NAMES",
    "INVALID_CASES",
    "MESSAGE_INTERVAL",
    "REMITTANCE_NUMBERS",
    "REMITTANCE_TEMPLATES",
    "START_TIME",
    "UK_BANKS",
    "GeneratedMessage",
    "GeneratorSettings",
    "InvalidCase",
    "InvalidMixError",
    "generate_messages",
    "party_names",
    "parse_mix",
    "write_batch",
]

#: Amount bands in major units, drawn log-uniformly and capped at the scheme limit.
AMOUNT_BANDS: dict[str, tuple[Decimal, Decimal]] = {
    "micro": (Decimal("0.01"), Decimal("10.00")),
    "retail": (Decimal("10.00"), Decimal("1000.00")),
    "corporate": (Decimal("1000.00"), Decimal("250000.00")),
    "large": (Decimal("250000.00"), Decimal("1000000.00")),
}
#: The default weights of :data:`AMOUNT_BANDS`.
DEFAULT_AMOUNT_MIX = {"micro": 0.1, "retail": 0.7, "corporate": 0.15, "large": 0.05}
#: The default scheme weights: each scheme's ``generator["weight"]`` in the registry (:data:`SCHEMES`).
DEFAULT_SCHEME_MIX: dict[str, float] = {name: rules.generator["weight"] for name, rules in SCHEMES.items()
                                        if "weight" in rules.generator}
#: Creation time of message 0; message ``n`` is created ``n`` intervals later, and settles that day.
START_TIME = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
MESSAGE_INTERVAL = timedelta(seconds=1)
_START = START_TIME


class InvalidMixError(ValueError):
    """A mix or rate is not usable; give ``name=weight`` pairs with known names and rates that fit the count."""


@dataclass(frozen=True)
class GeneratorSettings:
    """What to generate. ``mix`` weighs schemes, ``amounts`` weighs :data:`AMOUNT_BANDS`; the rates are
    shares of ``count`` (rounded) that are invalid or duplicates. ``max_message_bytes`` is the limit the
    validator will apply, so oversized messages are made just over it.
    """

    count: int
    seed: int = 0
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SCHEME_MIX))
    amounts: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_AMOUNT_MIX))
    invalid_rate: float = 0.0
    duplicate_rate: float = 0.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or self.count < 1:
            raise InvalidMixError("count must be a positive integer")
        _check_weights(self.mix, SCHEMES, "scheme")
        _check_weights(self.amounts, AMOUNT_BANDS, "amount band")
        for name in ("invalid_rate", "duplicate_rate"):
            rate = getattr(self, name)
            if not 0 <= rate <= 1:
                raise InvalidMixError(f"{name} must be between 0 and 1, not {rate}")
        if self.invalid_count + self.duplicate_count > max(self.count - 1, 0):
            raise InvalidMixError("invalid and duplicate messages must leave at least the first message valid; "
                                  "lower the rates or raise the count")

    @property
    def invalid_count(self) -> int:
        """How many messages are invalid."""
        return round(self.count * self.invalid_rate)

    @property
    def duplicate_count(self) -> int:
        """How many messages are duplicates of an earlier valid one."""
        return round(self.count * self.duplicate_rate)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data, for the manifest."""
        return {
            "count": self.count, "seed": self.seed, "mix": dict(self.mix), "amounts": dict(self.amounts),
            "invalid_rate": self.invalid_rate, "duplicate_rate": self.duplicate_rate,
            "max_message_bytes": self.max_message_bytes,
        }


def _check_weights(weights: Mapping[str, float], known: Mapping[str, object], label: str) -> None:
    unknown = set(weights) - set(known)
    if unknown:
        raise InvalidMixError(f"unknown {label} {sorted(unknown)}; use: {', '.join(known)}")
    if any(w < 0 for w in weights.values()) or not sum(weights.values()) > 0:
        raise InvalidMixError(f"{label} weights must be >= 0 and add up to more than 0")


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``"uk_fps=0.6,sepa_inst=0.4"`` into weights.

    Examples:
        >>> parse_mix("uk_fps=0.6, sepa_inst=0.4")
        {'uk_fps': 0.6, 'sepa_inst': 0.4}
    """
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            weights[name.strip()] = float(value) if sep else 1.0
        except ValueError:
            raise InvalidMixError(f"{part!r} is not name=weight (for example uk_fps=0.6)") from None
    if not weights:
        raise InvalidMixError("the mix is empty; give name=weight pairs such as uk_fps=0.6,sepa_inst=0.4")
    return weights


@dataclass(frozen=True)
class GeneratedMessage:
    """One generated message and the outcome a correct validator reports for it."""

    sequence: int
    xml: bytes
    scheme: str
    case: str
    expected_status: TransactionStatus
    expected_reason: ReasonCode | None
    msg_id: str
    end_to_end_id: str
    amount: Decimal
    currency: str
    duplicate_of: int | None = None

    @property
    def filename(self) -> str:
        """The file name in a written batch."""
        return f"{self.sequence:06d}.xml"

    @property
    def expected_reasons(self) -> tuple[ReasonCode, ...]:
        """The reason codes the validator must report: none, or exactly one."""
        return () if self.expected_reason is None else (self.expected_reason,)

    def manifest_entry(self) -> dict[str, Any]:
        """This message's line in ``manifest.json``."""
        return {
            "file": self.filename, "sequence": self.sequence, "scheme": self.scheme, "case": self.case,
            "expected_status": self.expected_status.value,
            "expected_reason": self.expected_reason.value if self.expected_reason else None,
            "msg_id": self.msg_id, "end_to_end_id": self.end_to_end_id,
            "amount": str(self.amount), "currency": self.currency, "duplicate_of": self.duplicate_of,
            "bytes": len(self.xml),
        }


# -- valid payments -----------------------------------------------------------------------------------
#: UK banks: (IBAN bank code, BIC); a UK account is an IBAN or a sort code and account number (see
#: :func:`_iban_share`), with random digits.
UK_BANKS = (("NWBK", "NWBKGB2L"), ("BARC", "BARCGB22"), ("LOYD", "LOYDGB2L"), ("HBUK", "HBUKGB4B"),
             ("MIDL", "MIDLGB22"))
#: SEPA banks: (country, bank code, random account digits, BIC); accounts are IBANs.
EU_BANKS = (("DE", "37040044", 10, "COBADEFF"), ("DE", "50070010", 10, "DEUTDEFF"),
             ("NL", "INGB", 10, "INGBNL2A"), ("NL", "RABO", 10, "RABONL2U"),
             ("IE", "AIBK931152", 8, "AIBKIE2D"), ("AT", "12000", 11, "BKAUATWW"))
#: Debtor and creditor names are a given name and a family name drawn from these (:func:`party_names`).
GIVEN_NAMES = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Tim", "Radia", "Ken", "Sophie", "Niklaus")
FAMILY_NAMES = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Berners-Lee", "Perlman",
           "Thompson", "Wilson", "Wirth")
#: The unstructured remittance line: a template with ``{n}`` drawn from :data:`REMITTANCE_NUMBERS`.
REMITTANCE_TEMPLATES = ("Invoice {n}", "Rent {n}", "Order {n}", "Salary {n}", "Refund {n}")
REMITTANCE_NUMBERS = range(10_000, 99_999)
_UK_BANKS, _EU_BANKS, _GIVEN, _FAMILY, _REMITTANCE = UK_BANKS, EU_BANKS, GIVEN_NAMES, FAMILY_NAMES, REMITTANCE_TEMPLATES


def _iban(country: str, bban: str) -> str:
    """An IBAN with correct ISO 13616 mod-97 check digits."""
    number = int("".join(str(int(ch, 36)) for ch in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)}"


def party_names() -> list[str]:
    """Every name the generator can give a debtor or creditor (for a personal-data scan of any run).

    Examples:
        >>> len(party_names()), party_names()[0]
        (144, 'Ada Lovelace')
    """
    return [f"{given} {family}" for given in _GIVEN for family in _FAMILY]


def _iban_share(rules: SchemeRules) -> float:
    """The share of a UK-account scheme's accounts given as IBANs (the rest: sort code and account number):
    the registry's ``generator["account_forms"]["iban"]``, else one half.

    Examples:
        >>> _iban_share(SCHEMES["uk_fps"])
        0.5
    """
    return float(rules.generator.get("account_forms", {}).get("iban", 0.5))


def _uk_side(rng: random.Random, force_iban: bool = False, iban_share: float = 0.5) -> tuple[Account, Agent]:
    bank, bic = rng.choice(_UK_BANKS)
    sort_code, number = _digits(rng, 6), _digits(rng, 8)
    if force_iban or rng.random() < iban_share:
        return Account(iban=_iban("GB", f"{bank}{sort_code}{number}")), Agent(bic=bic)
    return Account(other_id=number), Agent(clearing_system="GBDSC", member_id=sort_code)


def _eu_side(rng: random.Random) -> tuple[Account, Agent, str]:
    country, bank, length, bic = rng.choice(_EU_BANKS)
    return Account(iban=_iban(country, bank + _digits(rng, length))), Agent(bic=bic), country


def _amount(rng: random.Random, bands: Mapping[str, float], cap: Decimal | None) -> Decimal:
    """A log-uniform amount in a weighted band, as whole minor units (the float only draws the number)."""
    band = rng.choices(list(bands), weights=list(bands.values()))[0]
    low, high = AMOUNT_BANDS[band]
    if cap is not None:
        high = min(high, cap)
        low = min(low, high)
    low_minor, high_minor = int(low * 100), int(high * 100)
    minor = int(math.exp(rng.uniform(math.log(low_minor), math.log(high_minor))))
    minor = min(max(minor, low_minor), high_minor)
    return Decimal(minor).scaleb(-2)


def _payment(rng: random.Random, rules: SchemeRules, sequence: int, settings: GeneratorSettings,
             force_iban: bool = False) -> Pacs008:
    created = _START + sequence * MESSAGE_INTERVAL
    prefix = f"S{settings.seed}-{sequence:07d}"
    uetr = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    amount = _amount(rng, settings.amounts, rules.max_amount)
    reference = rng.choice(_REMITTANCE).format(n=rng.randrange(REMITTANCE_NUMBERS.start, REMITTANCE_NUMBERS.stop))
    if "uk_account" in rules.account_kinds:
        (debtor_account, debtor_agent), (creditor_account, creditor_agent) = (
            _uk_side(rng, force_iban, _iban_share(rules)), _uk_side(rng, force_iban, _iban_share(rules)))
        debtor_country = creditor_country = "GB"
        currency = "GBP"
    else:
        debtor_account, debtor_agent, debtor_country = _eu_side(rng)
        creditor_account, creditor_agent, creditor_country = _eu_side(rng)
        currency = "EUR"
    tx = CreditTransfer(
        end_to_end_id=f"E2E-{prefix}",
        amount=amount,
        currency=currency,
        debtor=Party(name=_name(rng), country=debtor_country),
        debtor_agent=debtor_agent,
        creditor_agent=creditor_agent,
        creditor=Party(name=_name(rng), country=creditor_country),
        debtor_account=debtor_account,
        creditor_account=creditor_account,
        instruction_id=f"INS-{prefix}",
        transaction_id=f"TX-{prefix}",
        uetr=uetr,
        settlement_date=created.date(),
        acceptance_time=created,
        payment_type=rules.payment_type,
        remittance=(reference,),
    )
    return Pacs008(GroupHeader(msg_id=f"MSG-{prefix}", created_at=created), (tx,))


# -- invalid messages ----------------------------------------------------------------------------------
Mutation = Callable[[random.Random, Pacs008, SchemeRules, GeneratorSettings], bytes]


@dataclass(frozen=True)
class InvalidCase:
    """One class of bad input: the reason code it must get, and how to make it from a valid message."""

    name: str
    reason: ReasonCode
    mutate: Mutation
    applies: Callable[[SchemeRules], bool] = lambda rules: True
    needs_iban: bool = False


def _tx(message: Pacs008, **changes: Any) -> Pacs008:
    return replace(message, transactions=(replace(message.transactions[0], **changes),))


def _built(message: Pacs008) -> bytes:
    return build_pacs008(message, check=False)


def _with_doctype(xml: bytes, doctype: str, reference: str) -> bytes:
    head, _, rest = xml.partition(b"?>")
    body = re.sub(rb"<Nm>[^<]*</Nm>", f"<Nm>{reference}</Nm>".encode(), rest, count=1)
    return head + b"?>" + doctype.encode() + body


_LAUGHS = "".join(
    f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
)


def _bad_check_digits(iban: str) -> str:
    check = int(iban[2:4])
    return f"{iban[:2]}{check + 1 if check < 98 else check - 1:02d}{iban[4:]}"


def _over_limit(rng: random.Random, message: Pacs008, rules: SchemeRules, settings: GeneratorSettings) -> bytes:
    assert rules.max_amount is not None
    return _built(_tx(message, amount=rules.max_amount + Decimal(rng.randrange(1, 10_000_000)).scaleb(-2)))


def _wrong_currency(rng: random.Random, message: Pacs008, rules: SchemeRules, settings: GeneratorSettings) -> bytes:
    currency = rng.choice(sorted({"GBP", "EUR", "USD", "CHF"} - rules.currencies))
    return _built(_tx(message, currency=currency))


def _unknown_currency(rng: random.Random, message: Pacs008, rules: SchemeRules, settings: GeneratorSettings) -> bytes:
    candidates = [c for c in ("ZZZ", "QQQ", "ABC", "XYZ", "AAA") if currency_exponent(c) is None]
    return _built(_tx(message, currency=rng.choice(candidates)))


def _too_many_decimals(rng: random.Random, message: Pacs008, rules: SchemeRules, settings: GeneratorSettings) -> bytes:
    tx = message.transactions[0]
    exponent = currency_exponent(tx.currency) or 0
    extra = Decimal(rng.randrange(1, 10)).scaleb(-(exponent + 1))
    return _built(_tx(message, amount=tx.amount + extra))


def _oversized(rng: random.Random, message: Pacs008, rules: SchemeRules, settings: GeneratorSettings) -> bytes:
    """Schema-valid but one remittance line over the size limit (``Ustrd`` may repeat without bound)."""
    line = "Remittance detail " + "x" * 120
    one_line = len(_built(_tx(message, remittance=(line,))))
    per_line = len(f"<Ustrd>{line}</Ustrd>")
    lines = 1 + max(0, -(-(settings.max_message_bytes + 1 - one_line) // per_line))
    return _built(_tx(message, remittance=(line,) * lines))


def _mutate_text(pattern: bytes, replacement: bytes) -> Mutation:
    def mutate(rng: random.Random, message: Pacs008, rules: SchemeRules, settings: GeneratorSettings) -> bytes:
        xml, replaced = re.subn(pattern, replacement, _built(message), count=1)
        assert replaced == 1, pattern
        return xml
    return mutate


def _model(**changes: Callable[[Pacs008], Any]) -> Mutation:
    def mutate(rng: random.Random, message: Pacs008, rules: SchemeRules, settings: GeneratorSettings) -> bytes:
        return _built(_tx(message, **{k: f(message) for k, f in changes.items()}))
    return mutate


def _first(message: Pacs008) -> CreditTransfer:
    return message.transactions[0]


def _case(name: str, reason: ReasonCode, mutate: Mutation, **kwargs: Any) -> InvalidCase:
    return InvalidCase(name, reason, mutate, **kwargs)


#: Every class of bad input the validator must reject, each with its one expected reason code.
INVALID_CASES: dict[str, InvalidCase] = {c.name: c for c in (
    _case("malformed_xml", ReasonCode.FF01, lambda rng, m, r, s: _built(m)[: len(_built(m)) // 2]),
    _case("xxe_file_read", ReasonCode.FF01, lambda rng, m, r, s: _with_doctype(
        _built(m), '<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;")),
    _case("entity_expansion", ReasonCode.FF01, lambda rng, m, r, s: _with_doctype(
        _built(m), f'<!DOCTYPE Document [<!ENTITY lol0 "lol">{_LAUGHS}]>', "&lol9;")),
    _case("wrong_namespace", ReasonCode.FF01,
          _mutate_text(PACS008_NAMESPACE.encode(), b"urn:example:payments:credit-transfer")),
    _case("wrong_version", ReasonCode.FF01, _mutate_text(b"pacs.008.001.08", b"pacs.008.001.09")),
    _case("oversized", ReasonCode.FF01, _oversized),
    _case("missing_schema_field", ReasonCode.FF01, _mutate_text(rb"<EndToEndId>[^<]*</EndToEndId>", b"")),
    _case("unknown_scheme", ReasonCode.FF03, _model(payment_type=lambda m: None)),
    _case("missing_debtor_name", ReasonCode.RR02, _model(debtor=lambda m: replace(_first(m).debtor, name=None))),
    _case("unknown_currency", ReasonCode.AM11, _unknown_currency),
    _case("currency_not_allowed", ReasonCode.AM03, _wrong_currency),
    _case("too_many_decimals", ReasonCode.CH20, _too_many_decimals),
    _case("negative_amount", ReasonCode.AM12, _model(amount=lambda m: -_first(m).amount)),
    _case("zero_amount", ReasonCode.AM01, _model(amount=lambda m: Decimal("0.00"))),
    _case("over_limit", ReasonCode.AM02, _over_limit, applies=lambda rules: rules.max_amount is not None),
    _case("bad_iban", ReasonCode.AC01, _model(debtor_account=lambda m: Account(
        iban=_bad_check_digits(_first(m).debtor_account.iban))), needs_iban=True),  # type: ignore[union-attr]
    _case("bad_bic", ReasonCode.RC01, _model(debtor_agent=lambda m: replace(
        _first(m).debtor_agent, bic=f"{_first(m).debtor_agent.bic[:4]}XX{_first(m).debtor_agent.bic[6:]}")),
        needs_iban=True),  # type: ignore[index]
    _case("nb_of_txs_mismatch", ReasonCode.AM19, _mutate_text(b"<NbOfTxs>1</NbOfTxs>", b"<NbOfTxs>2</NbOfTxs>")),
)}

#: Duplicates of an earlier valid message: the same message again, or a new message reusing its EndToEndId.
DUPLICATE_CASES: dict[str, ReasonCode] = {"duplicate_message": ReasonCode.DU01,
                                          "duplicate_end_to_end": ReasonCode.DU04}


# -- the batch ------------------------------------------------------------------------------------------
def _plan(settings: GeneratorSettings, rng: random.Random) -> list[str]:
    plan = ["valid"] * settings.count
    special = rng.sample(range(1, settings.count), settings.invalid_count + settings.duplicate_count)
    available = [c for c in INVALID_CASES.values()
                 if any(c.applies(SCHEMES[s]) for s, w in settings.mix.items() if w > 0)]
    order: list[str] = []
    for position in special[: settings.invalid_count]:
        if not order:
            order = [c.name for c in available]
            rng.shuffle(order)
        plan[position] = order.pop()
    duplicates = list(DUPLICATE_CASES)
    for n, position in enumerate(sorted(special[settings.invalid_count:])):
        plan[position] = duplicates[n % len(duplicates)]
    return plan


def _pick_scheme(rng: random.Random, settings: GeneratorSettings, case: InvalidCase | None) -> SchemeRules:
    names = [s for s, w in settings.mix.items() if w > 0 and (case is None or case.applies(SCHEMES[s]))]
    return SCHEMES[rng.choices(names, weights=[settings.mix[s] for s in names])[0]]


def generate_messages(settings: GeneratorSettings) -> list[GeneratedMessage]:
    """Generate the batch described by ``settings``; deterministic for a given seed.

    Every invalid class in :data:`INVALID_CASES` that applies to a scheme in the mix appears once before
    any appears twice, so ``invalid_count >= len(INVALID_CASES)`` covers them all.
    """
    rng = random.Random(settings.seed)
    messages: list[GeneratedMessage] = []
    valid: list[tuple[GeneratedMessage, Pacs008]] = []
    for sequence, case_name in enumerate(_plan(settings, rng), start=1):
        case = INVALID_CASES.get(case_name)
        rules = _pick_scheme(rng, settings, case)
        message = _payment(rng, rules, sequence, settings, force_iban=bool(case and case.needs_iban))
        tx = message.transactions[0]
        duplicate_of = None
        if case is not None:
            xml = case.mutate(rng, message, rules, settings)
            status, reason = TransactionStatus.RJCT, case.reason
        elif case_name in DUPLICATE_CASES:
            original, original_message = rng.choice(valid)
            duplicate_of, rules = original.sequence, SCHEMES[original.scheme]
            status, reason = TransactionStatus.RJCT, DUPLICATE_CASES[case_name]
            if case_name == "duplicate_message":
                xml, message = original.xml, original_message
            else:
                message = _tx(original_message, uetr=tx.uetr, transaction_id=tx.transaction_id,
                              instruction_id=tx.instruction_id)
                message = replace(message, header=replace(message.header, msg_id=f"MSG-S{settings.seed}-{sequence:07d}",
                                                          created_at=_START + sequence * MESSAGE_INTERVAL))
                xml = build_pacs008(message)
            tx = message.transactions[0]
        else:
            xml = build_pacs008(message)
            status, reason = TransactionStatus.ACTC, None
        generated = GeneratedMessage(
            sequence=sequence, xml=xml, scheme=rules.name, case=case_name, expected_status=status,
            expected_reason=reason, msg_id=message.header.msg_id, end_to_end_id=tx.end_to_end_id,
            amount=tx.amount, currency=tx.currency, duplicate_of=duplicate_of,
        )
        messages.append(generated)
        if case_name == "valid":
            valid.append((generated, message))
    return messages


def write_batch(settings: GeneratorSettings, out_dir: str | Path) -> dict[str, Any]:
    """Generate the batch into ``out_dir``: one XML file per message and ``manifest.json``; return the manifest.

    The manifest records the settings, how to validate (in order, one validator, the byte limit) and, per
    message, the expected status (ACTC or RJCT) and reason code.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    messages = generate_messages(settings)
    for message in messages:
        (directory / message.filename).write_bytes(message.xml)
    counts = Counter(m.case for m in messages)
    manifest = {
        "generator": "simulations.generator",
        "message_type": "pacs.008.001.08",
        "settings": settings.to_dict(),
        "validation": {
            "order": "by sequence, one validator with one duplicate detector for the whole batch",
            "max_message_bytes": settings.max_message_bytes,
        },
        "summary": {
            "messages": len(messages),
            "expected_status": dict(Counter(m.expected_status.value for m in messages)),
            "cases": dict(sorted(counts.items())),
        },
        "messages": [m.manifest_entry() for m in messages],
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest

