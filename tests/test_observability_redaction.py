"""The personal-data guard: IBANs and card numbers in any format, anywhere in nested structures and free
text; fields named for personal data at any depth; registered names; never the project's own vocabulary."""

from __future__ import annotations

import base64
import json
import re
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import product
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from schwifty.registry import get_iban_spec

from fasterpay.iso20022 import ReasonCode, TransactionStatus
from fasterpay.observability.redaction import (
    PersonalDataError,
    PersonalValueRegistry,
    personal_value_registry,
    refuse_personal_data,
    refuse_personal_text,
    register_personal_values,
)
from fasterpay.pipeline import LOGICAL_STEPS, STEP_NAMES

IBAN_GB = "GB82WEST12345698765432"
IBAN_DE = "DE89370400440532013000"
PAN = "4111111111111111"
#: The generator's names (simulations/generator.py): what a run's debtors and creditors are called.
NAMES = [f"{g} {f}" for g, f in product(
    ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Tim", "Radia", "Ken", "Sophie", "Niklaus"),
    ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Berners-Lee", "Perlman", "Thompson",
     "Wilson", "Wirth"))]


def _refused(check: Any, value: Any, **kwargs: Any) -> PersonalDataError | None:
    try:
        check(value, **kwargs)
    except PersonalDataError as exc:
        return exc
    return None


@pytest.fixture
def registry() -> PersonalValueRegistry:
    registry = PersonalValueRegistry()
    registry.register_many(NAMES)
    registry.register("12345678", kind="account number")
    return registry


# -- the holes of issue 9, item 7: each of these passed the old guard ----------------------------------------
@pytest.mark.parametrize("text", [
    "refund to GB82-WEST-1234-5698-7654-32 today",
    "refund to DE89.3704.0044.0532.0130.00",
    "refund to gb82 west 1234 5698 7654 32",
])
def test_an_iban_with_hyphens_dots_or_spaces_in_text_is_refused(text: str) -> None:
    with pytest.raises(PersonalDataError, match="an IBAN"):
        refuse_personal_text(text)


@pytest.mark.parametrize("value", [
    "GB82.WEST.1234.5698.7654.32", f"paid {IBAN_GB} today", "to GB82 WEST 1234 5698 7654 32 ok",
    f"iban={IBAN_DE};ref=E2E-1", f"{IBAN_DE}/2026-11",
])
def test_an_iban_inside_a_longer_value_is_refused(value: str) -> None:
    with pytest.raises(PersonalDataError, match="'note' holds an IBAN"):
        refuse_personal_data({"note": value})


@pytest.mark.parametrize("fields, path", [
    ({"payment": {"account": IBAN_GB}}, "payment/account"),
    ({"refs": ({"creditor": IBAN_DE},)}, "refs/0/creditor"),
    ({"refs": [["E2E-1", IBAN_DE]]}, "refs/0/1"),
    ({"batch": [{"ok": 1}, {"accounts": {"to": f"to {IBAN_GB}"}}]}, "batch/1/accounts/to"),
    ({"refs": {"E2E-1", IBAN_GB}}, None),
])
def test_an_iban_nested_in_mappings_lists_tuples_or_sets_is_refused(fields: dict, path: str | None) -> None:
    exc = _refused(refuse_personal_data, fields)
    assert exc is not None and "holds an IBAN" in str(exc)
    if path is not None:
        assert f"field {path!r}" in str(exc)


@pytest.mark.parametrize("fields, path", [
    ({"payment": {"debtor": {"iban": "tok_iban_1"}}}, "payment/debtor/iban"),
    ({"parties": [{"Debtor-Name": "tok_name_1"}]}, "parties/0/Debtor-Name"),
    ({"doc": {"CdtTrfTxInf": {"Dbtr": {"Nm": "tok"}}}}, "doc/CdtTrfTxInf/Dbtr/Nm"),
    ({"payment": {"EMAIL_ADDRESS": "tok"}}, "payment/EMAIL_ADDRESS"),
])
def test_a_field_named_for_personal_data_is_refused_at_any_depth(fields: dict, path: str) -> None:
    with pytest.raises(PersonalDataError, match=re.escape(f"field {path!r} is named for personal data")):
        refuse_personal_data(fields)


@pytest.mark.parametrize("value", [
    int(PAN), Decimal(PAN), -int(PAN), "4111.1111.1111.1111", "card 4111.1111.1111.1111 declined",
    "5500 0000 0000 0004", "3782 822463 10005", "card no. 4012-8888-8888-1881.", float(PAN),
])
def test_a_card_number_as_an_int_or_with_dots_or_spaces_is_refused(value: object) -> None:
    with pytest.raises(PersonalDataError, match="'card' holds a card number"):
        refuse_personal_data({"card": value})
    with pytest.raises(PersonalDataError, match="holds a card number"):
        refuse_personal_data({"cards": [{"pans": (value,)}]})


def test_a_dict_keyed_by_personal_data_is_refused_without_echoing_the_key() -> None:
    for fields, parent in (({"balances": {IBAN_GB: 100}}, "balances"), ({"seen": {int(PAN): True}}, "seen")):
        exc = _refused(refuse_personal_data, fields)
        assert exc is not None and f"field {parent!r} has a key that holds" in str(exc)
        assert IBAN_GB not in str(exc) and PAN not in str(exc)


@pytest.mark.parametrize("text", [
    "invoice for Ada Lovelace", "ADA LOVELACE", "paid ada lovelace's rent", "Tim Berners-Lee",
    "from: Tim BernersLee", "to Tim  berners lee.", "account 12345678 closed",
])
def test_a_registered_name_in_free_text_or_a_field_value_is_refused(text: str, registry: PersonalValueRegistry) -> None:
    with pytest.raises(PersonalDataError, match="text holds a registered (name|account number) at words"):
        refuse_personal_text(text, registry=registry)
    with pytest.raises(PersonalDataError, match="field 'payment/notes/0' holds a registered"):
        refuse_personal_data({"payment": {"notes": [text]}}, registry=registry)


@pytest.mark.parametrize("text", [
    "Adam Lovelaces", "Ada", "Lovelace", "adalovelace", "Tim Berners of Lee", "account 123456789",
    "payment E2E-S7-0000001 authorised", "Grace period of 5 days",
])
def test_partial_words_and_single_words_of_a_registered_name_pass(text: str, registry: PersonalValueRegistry) -> None:
    refuse_personal_text(text, registry=registry)


def test_the_registry_holds_no_clear_name_and_uses_a_key_of_its_own() -> None:
    one, two = PersonalValueRegistry(), PersonalValueRegistry()
    one.register("Zoë O'Brien")
    two.register("Zoë O'Brien")
    state = repr({k: v for k, v in vars(one).items() if k != "_digests"}).casefold()
    assert "zoe" not in state and "brien" not in state
    assert all(len(d) == 16 and b"brien" not in d for d in one._digests)  # 128-bit keyed hashes only
    assert set(one._digests).isdisjoint(two._digests)  # keyed: the same name hashes differently
    assert one.find("ZOE O'BRIEN paid") == "name" and two.find("zoe o brien") == "name"
    assert repr(one) == "PersonalValueRegistry(entries=2)"  # two normal forms: obrien, o brien


def test_the_registry_is_bounded_and_refuses_values_too_short_to_be_names() -> None:
    registry = PersonalValueRegistry(max_entries=3)
    assert not registry.register("Li") and not registry.register("A.B")
    registry.register_many(["Ada Lovelace", "Alan Turing", "Grace Hopper", "Ken Thompson"])
    assert len(registry) == 3
    assert registry.find("Ada Lovelace") is None and registry.find("Ken Thompson") == "name"  # the oldest forgotten
    registry.clear()
    assert len(registry) == 0 and registry.find("Ken Thompson") is None


def test_the_process_registry_is_what_the_guard_uses_by_default() -> None:
    default = personal_value_registry()
    try:
        assert register_personal_values(["Perpetua Ravensworth"]) == 1
        with pytest.raises(PersonalDataError, match="registered name"):
            refuse_personal_text("screened PERPETUA RAVENSWORTH")
    finally:
        default.clear()
    refuse_personal_text("screened PERPETUA RAVENSWORTH")


# -- refusals say where and what kind, never the value ------------------------------------------------------
@pytest.mark.parametrize("value, kind", [
    (f"paid {IBAN_GB}", "an IBAN"), ("4111 1111 1111 1111", "a card number"),
    ("write to ada@example.com", "an e-mail address"), ("to Ada Lovelace", "a registered name"),
])
def test_the_error_names_the_place_and_kind_and_never_echoes_the_value(value: str, kind: str,
                                                                       registry: PersonalValueRegistry) -> None:
    exc = _refused(refuse_personal_data, {"payment": {"remark": value}}, where="log", registry=registry)
    assert exc is not None
    message = str(exc)
    assert message.startswith(f"log field 'payment/remark' holds {kind} at ")
    compact = re.sub(r"[^a-z0-9]", "", value.casefold())
    for word in re.findall(r"[A-Za-z0-9@.]{4,}", value):
        if word not in ("paid", "write"):
            assert word.casefold() not in message.casefold()
    assert compact not in re.sub(r"[^a-z0-9]", "", message.casefold())
    text_exc = _refused(refuse_personal_text, value, where="log message", registry=registry)
    assert text_exc is not None and str(text_exc).startswith(f"log message text holds {kind} at ")


def test_the_offsets_point_at_the_value() -> None:
    text = "refund to GB82-WEST-1234-5698-7654-32 today"
    message = str(_refused(refuse_personal_text, text))
    start, end = map(int, re.search(r"characters (\d+)-(\d+)", message).groups())
    assert text[start:end] == "GB82-WEST-1234-5698-7654-32"


# -- what must pass ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    "GB82WEST12345698765433",  # check digits wrong
    "GB00WEST12345698765432", "XX82WEST12345698765432",  # no such check digits, no such country
    "AB12CDEFGHIJKLMNOPQRST", "tok_iban_3f9aqa12bcdefghijklmnopqrstuvwxy",
    "xGB82WEST12345698765432", f"{IBAN_GB}9",  # glued to other characters: another identifier
    "4111111111111112", "1764322200000", "1764322200000123", "1764322200000123456",  # Luhn fails; epoch ms/us/ns
    "0000000000000000", 1764322200000, 1_764_322_200_000_000_000, 256.9724665142986, "0.30000000000000004",
    "12345678-1234-4123-8123-123456789012",  # a UUID of digits: groups of 8 and 12 are no card's
    "2026-11-28T09:30:00.000Z", "4bf92f3577b34da6a3ce929d0e0e4736", "sha256:" + "0123456789" * 3 + "ab",
])
def test_lookalikes_pass(value: object) -> None:
    refuse_personal_data({"ref": value, "refs": [value]})


def test_a_span_id_of_decimal_digits_is_an_id_only_under_its_own_name_and_form() -> None:
    refuse_personal_data({"span_id": "4111111111111111", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"})
    for fields in ({"trace_id": "4111111111111111"}, {"span_id": "4111 1111 1111 1111"}, {"spanid_x": PAN},
                   {"span_id": [PAN]}, {"span": {"id": PAN}}):
        assert _refused(refuse_personal_data, fields) is not None, fields


def test_cycles_are_visited_once_and_deep_nesting_does_not_overflow() -> None:
    looped: dict[str, Any] = {"uetr": str(uuid.uuid4())}
    looped["self"] = looped
    refuse_personal_data(looped)
    deep: Any = IBAN_GB
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(PersonalDataError, match="holds an IBAN"):
        refuse_personal_data({"deep": deep})


@dataclass(frozen=True)
class _Party:
    token: str
    agent: str = "NWBKGB2L"


@dataclass(frozen=True)
class _NamedParty:
    token: str
    debtor_name: str


def test_dataclasses_are_walked_by_field_name() -> None:
    refuse_personal_data({"party": _Party("tok_name_1")})
    with pytest.raises(PersonalDataError, match="'party/debtor_name' is named for personal data"):
        refuse_personal_data({"party": _NamedParty("tok_name_1", "tok")})
    with pytest.raises(PersonalDataError, match="'party/token' holds an IBAN"):
        refuse_personal_data({"party": _Party(IBAN_GB)})


@pytest.mark.parametrize("value", ["line\n" + PAN, "tab\t" + IBAN_GB, "to Zo\u00eb O'Brien\n"])
def test_a_serialised_log_line_is_scanned_like_its_values(value: str) -> None:
    registry = PersonalValueRegistry()
    registry.register("Zoë O'Brien")
    line = json.dumps({"message": value})  # ensure_ascii: escapes glue letters to the value
    assert "\\" in line
    with pytest.raises(PersonalDataError):
        refuse_personal_text(line, registry=registry)


# -- property tests ----------------------------------------------------------------------------------------
def _spec(country: str) -> Any:
    try:
        return get_iban_spec(country)
    except SchwiftyException:
        return None


IBAN_COUNTRIES = sorted(c for c in ("".join(p) for p in product(string.ascii_uppercase, repeat=2)) if _spec(c))
_ALPHABETS = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}
BOUNDARIES = st.sampled_from(list(" \t\n,;:=()[]{}<>\"'/|!?*&%$#_") + ["", ". ", " - "])
SEPARATOR = st.sampled_from([" ", "-", "."])


@st.composite
def ibans(draw: st.DrawFn) -> str:
    """A valid IBAN of any registered country: BBAN drawn from its structure, check digits computed."""
    country = draw(st.sampled_from(IBAN_COUNTRIES))
    bban = ""
    for count, _, cls in re.findall(r"(\d+)(!)?([nac])", _spec(country).bban_spec):
        bban += draw(st.text(alphabet=_ALPHABETS[cls], min_size=int(count), max_size=int(count)))
    number = int("".join(str(int(ch, 36)) for ch in bban + country + "00"))
    iban = f"{country}{98 - number % 97:02d}{bban}"
    IBAN(iban)  # schwifty's own validator agrees: length, structure and check digits
    return iban


def formatted(value: str, separator: str, size: int) -> str:
    return separator.join(value[i:i + size] for i in range(0, len(value), size))


@st.composite
def iban_in_any_format(draw: st.DrawFn) -> str:
    iban = draw(ibans())
    style = draw(st.sampled_from(["compact", "lower", "grouped"]))
    if style == "lower":
        return iban.lower()
    if style == "grouped":
        return formatted(iban, draw(SEPARATOR), 4)
    return iban


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (1 if i % 2 else 2)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


@st.composite
def pans(draw: st.DrawFn) -> str:
    """A Luhn-valid card number: any network's first digit and length (Visa, Amex, Mastercard 2-series, UATP)."""
    prefix, lengths = draw(st.sampled_from([
        ("3", (14, 19)), ("4", (13, 19)), ("5", (16, 19)), ("6", (16, 19)), ("7", (13, 19)), ("8", (13, 19)),
        ("9", (13, 19)), ("2221", (16, 16)), ("2720", (16, 16)), ("2200", (16, 19)), ("1", (15, 15))]))
    length = draw(st.integers(*lengths))
    body = prefix + draw(st.text(alphabet=string.digits, min_size=length - len(prefix) - 1,
                                 max_size=length - len(prefix) - 1))
    return body + _luhn_digit(body)


@st.composite
def pan_in_any_format(draw: st.DrawFn) -> object:
    pan = draw(pans())
    style = draw(st.sampled_from(["compact", "int", "decimal", "grouped", "amex"]))
    if style == "int":
        return int(pan)
    if style == "decimal":
        return Decimal(pan)
    if style == "grouped":
        return formatted(pan, draw(SEPARATOR), 4)
    if style == "amex" and len(pan) == 15:
        separator = draw(SEPARATOR)
        return f"{pan[:4]}{separator}{pan[4:10]}{separator}{pan[10:]}"
    return pan


@st.composite
def embedded(draw: st.DrawFn, values: st.SearchStrategy[object]) -> object:
    """The value alone, or as a word in arbitrary text."""
    value = draw(values)
    if not isinstance(value, str) or draw(st.booleans()):
        return value
    before, after = draw(st.text(max_size=30)), draw(st.text(max_size=30))
    left, right = draw(BOUNDARIES), draw(BOUNDARIES)
    return f"{before}{left or ' '}{value}{right or ' '}{after}"


#: The project's own vocabulary: what its logs, spans, metrics and audit entries carry.
UETRS = st.uuids(version=4).map(str)
REASONS = st.sampled_from([r.value for r in ReasonCode])
STATUSES = st.sampled_from([s.value for s in TransactionStatus])
AMOUNTS = st.one_of(st.integers(0, 10**12 - 1), st.decimals(0, 10**10, places=2, allow_nan=False))
TIMESTAMPS = st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2060, 12, 31), timezones=st.just(UTC)).map(
    lambda t: t.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
EPOCH = st.one_of(st.integers(1_420_070_400_000, 2_871_763_200_000),  # ms, 2015-2060
                  st.integers(1_420_070_400_000_000_000, 1_999_999_999_999_999_999))  # ns, to 2033
QUEUES = st.sampled_from(["fp-accept", "fp-clear", "fp-answers", "fp-accept-dlq", "fp-ledger-events"]).flatmap(
    lambda q: st.sampled_from([q, f"https://sqs.eu-west-2.amazonaws.com/123456789012/{q}"]))
METRICS = st.sampled_from(["StageLatency", "StageSuccess", "StageFailure", "Detokenize", "FasterPay/Pipeline"])
STEPS = st.sampled_from([*STEP_NAMES, *LOGICAL_STEPS, *(f"stage {s}" for s in LOGICAL_STEPS)])
HEX_IDS = st.one_of(st.integers(0, 2**128 - 1).map(lambda i: f"{i:032x}"),
                    st.integers(0, 2**64 - 1).map(lambda i: f"{i:016x}"))
REFERENCES = st.integers(0, 9_999_999).flatmap(lambda n: st.sampled_from(
    [f"E2E-S7-{n:07d}", f"MSG-S7-{n:07d}", f"sub-{n}-MSG-S7-{n:07d}", f"C{n % 10**6:06d}", f"GBDSC:{n % 10**6:06d}"]))
TOKENS = st.binary(min_size=20, max_size=20).map(
    lambda b: "tok_iban_" + base64.b32encode(b).decode().lower().rstrip("="))
SCALARS = st.one_of(UETRS, REASONS, STATUSES, AMOUNTS, TIMESTAMPS, EPOCH, QUEUES, METRICS, STEPS, HEX_IDS, REFERENCES,
                    TOKENS, st.sampled_from(["GBP", "EUR", "uk_fps", "sepa_inst", "INFO", "payment status", "ok"]),
                    st.booleans(), st.none(), st.floats(0, 10_000, allow_nan=False))
KEYS = st.sampled_from(["uetr", "end_to_end_id", "msg_id", "submission_id", "status", "reason", "amount_minor",
                        "currency", "queue", "stage", "metric", "timestamp", "at", "trace_id", "span_id", "service",
                        "level", "message", "payment.uetrs", "payment.count", "payment.stage", "rpc.service",
                        "cloud.region", "aws.request_id", "StageLatency", "_aws", "Timestamp", "refs", "subject",
                        "outcome", "actor", "kind", "debtor_account_token", "cycle", "scheme", "caller"])
VOCABULARY = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25)


#: Keys a card number may sit under: not ``span_id``, whose 16 hex digits may be all decimal (see below).
NESTING_KEYS = KEYS.filter(lambda k: k not in ("span_id", "trace_id"))


@st.composite
def nested(draw: st.DrawFn, leaf: object) -> object:
    """``leaf`` buried at a random depth in dicts, lists and tuples beside non-personal siblings."""
    value = leaf
    for _ in range(draw(st.integers(0, 4))):
        siblings = draw(st.lists(SCALARS, max_size=3))
        at = draw(st.integers(0, len(siblings)))
        container = draw(st.sampled_from(["dict", "list", "tuple"]))
        items = [*siblings[:at], value, *siblings[at:]]
        if container == "dict":
            keys = draw(st.lists(NESTING_KEYS, min_size=len(items), max_size=len(items), unique=True))
            value = dict(zip(keys, items))
        else:
            value = items if container == "list" else tuple(items)
    return {"payload": value}


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.data())
def test_property_any_valid_iban_in_any_format_text_or_nesting_is_refused(data: st.DataObject) -> None:
    value = data.draw(embedded(iban_in_any_format()))
    structure = data.draw(nested(value))
    assert _refused(refuse_personal_data, structure, registry=PersonalValueRegistry()) is not None
    if isinstance(value, str):
        assert _refused(refuse_personal_text, value, registry=PersonalValueRegistry()) is not None
    assert _refused(refuse_personal_text, json.dumps(structure, default=str), registry=PersonalValueRegistry())


@PROPERTY
@given(st.data())
def test_property_any_luhn_valid_card_number_in_any_format_text_or_nesting_is_refused(data: st.DataObject) -> None:
    value = data.draw(embedded(pan_in_any_format()))
    structure = data.draw(nested(value))
    assert _refused(refuse_personal_data, structure, registry=PersonalValueRegistry()) is not None
    assert _refused(refuse_personal_text, json.dumps(structure, default=str), registry=PersonalValueRegistry())


REGISTERED = PersonalValueRegistry()
REGISTERED.register_many(NAMES)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VOCABULARY)
def test_property_the_projects_own_vocabulary_is_never_refused(structure: object) -> None:
    refuse_personal_data({"payload": structure}, registry=REGISTERED)
    refuse_personal_text(json.dumps(structure, default=str), registry=REGISTERED)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NAMES), st.text(max_size=20), st.text(max_size=20), BOUNDARIES, BOUNDARIES,
       st.sampled_from([str.upper, str.lower, str.title, lambda s: s]))
def test_property_a_registered_name_as_words_in_any_text_is_refused(name: str, before: str, after: str, left: str,
                                                                    right: str, case: Any) -> None:
    text = f"{before}{left or ' '}{case(name)}{right or ' '}{after}"
    assert REGISTERED.find(text) is not None
    assert _refused(refuse_personal_data, {"payload": [{"note": text}]}, registry=REGISTERED) is not None


# -- the scan of a pipeline run's output (simulations/personal_data_scan.py) --------------------------------
@pytest.fixture(scope="module")
def run_scan() -> Any:
    from simulations.personal_data_scan import run_and_scan

    return run_and_scan(payments=60, seed=7)


def test_a_pipeline_runs_output_holds_no_personal_data_and_every_kind_is_scanned(run_scan: Any) -> None:
    from simulations.personal_data_scan import KINDS, ROOT

    assert run_scan.refusals == 0, run_scan.examples
    expected = [k for k in KINDS if k != "notebook output"  # scanned apart, once the notebooks have run
                and (k != "metrics file" or any((ROOT / "build").rglob("*.json")))]
    assert all(run_scan.items.get(kind, 0) > 0 for kind in expected), run_scan.items
    assert run_scan.items["log line"] >= 60 and run_scan.items["audit entry"] >= 60 and run_scan.items["span"] >= 60
    assert sum(run_scan.values.values()) > 10 * run_scan.items_scanned
    assert run_scan.false_positive_rate == 0.0
    assert {f.key for f in run_scan.figures()} == {"guard_items_scanned", "guard_values_scanned", "guard_refusals",
                                                   "guard_false_positive_rate"}


def test_the_runs_registry_holds_the_names_its_payments_carry() -> None:
    from fasterpay.iso20022 import parse_pacs008
    from simulations.personal_data_scan import registry_for_run
    from simulations.pipeline_bench import RunSettings, _messages

    settings = RunSettings(payments=20, seed=7)
    registry = registry_for_run(settings)
    parties = [p for m in _messages(settings, 0, 20) if m.case == "valid"
               for tx in parse_pacs008(m.xml).transactions for p in (tx.debtor, tx.creditor)]
    assert len(parties) >= 30
    for party in parties:
        assert registry.find(f"screened {party.name.upper()} today") == "name"


def test_the_scan_counts_a_leak_and_reports_where_without_the_value() -> None:
    from simulations.personal_data_scan import PersonalDataScan

    registry = PersonalValueRegistry()
    registry.register("Ada Lovelace")
    scan = PersonalDataScan(registry)
    assert scan.log_line(json.dumps({"message": "payment status", "uetr": str(uuid.uuid4())}), label="#0")
    assert not scan.log_line(json.dumps({"message": "screened", "note": {"who": "ADA LOVELACE"}}), label="#1")
    assert not scan.emf_document({"_aws": {"Timestamp": 1764322200000, "CloudWatchMetrics": []},
                                  "caller": "ada@example.com", "Detokenize": [1.0]}, label="#0")
    assert scan.emf_document({"_aws": {"Timestamp": 1764322200000, "CloudWatchMetrics": [
        {"Namespace": "FasterPay", "Dimensions": [["stage"]], "Metrics": [{"Name": "StageLatency"}]}]},
        "stage": "clear", "StageLatency": [12.5]}, label="#1")  # EMF's own "Name" key is the spec's, not a person's
    report = scan.report()
    assert report.items == {"log line": 2, "emf document": 2} and report.refusals == 2
    assert report.false_positive_rate == 0.5
    assert report.examples[0].startswith("log line #1: log line field 'note/who' holds a registered name")
    assert not any(word in " ".join(report.examples).casefold() for word in ("ada", "lovelace", "example.com"))


def test_a_notebook_output_holding_a_generated_name_or_an_iban_is_counted_as_a_refusal(tmp_path: Path) -> None:
    from simulations.generator import party_names
    from simulations.personal_data_scan import scan_notebooks

    registry = PersonalValueRegistry()
    registry.register_many(party_names())
    cells = [{"cell_type": "code", "outputs": [{"output_type": "stream", "text": ["payments: 60\n", "ok\n"]}]},
             {"cell_type": "code", "outputs": [{"output_type": "stream", "text": "paid " + party_names()[7]}]},
             {"cell_type": "code", "outputs": [{"output_type": "execute_result",
                                                "data": {"text/plain": "'GB82 WEST 1234 5698 7654 32'"}}]}]
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    report = scan_notebooks([path], registry=registry)
    assert report.items == {"notebook output": 3} and report.refusals == 2
    assert all("n.ipynb cell" in e for e in report.examples)
