"""Sanctions screening against altered names (issue 9, item 3): homoglyphs, diacritics, fullwidth forms,
case, punctuation and spacing, word order, typos and initials hit; control names do not; the stored name
token and the vault calls per payment are unchanged. One class of alteration per test."""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fasterpay.iso20022 import build_pacs008, parse_pacs008
from fasterpay.pipeline import Payment, default_routing_rules, load_sanctions_list, screening_form
from fasterpay.pipeline.screening import (
    DEFAULT_THRESHOLD,
    NameMatcher,
    SanctionsScreen,
    ScreeningConfigurationError,
    screening_key,
)
from simulations.generator import GeneratedMessage, GeneratorSettings, generate_messages
from simulations.pipeline_bench import PipelineHarness, RunSettings
from simulations.screening_eval import evaluate_screening

LISTED = load_sanctions_list()


class FakeVault:
    """Deterministic name tokens as the vault makes them (an HMAC of tenant, class and value), counting calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @staticmethod
    def _token(value: str, data_class: str, tenant: str) -> str:
        digest = hmac.new(b"test-key", f"{tenant}|{data_class}|{value}".encode(), hashlib.sha256).hexdigest()
        return f"dtk_{data_class}_{digest[:26]}"

    def deterministic_token(self, value: str, data_class: str, *, tenant: str) -> str:
        self.calls.append("deterministic_token")
        return self._token(value, data_class, tenant)

    def tokenize_batch(self, requests: Sequence[tuple[str, str, str]], *, tenant: str,
                       deterministic: bool) -> list[str]:
        self.calls.append("tokenize_batch")
        assert deterministic
        return [self._token(v, c, tenant) for v, c, _ in requests]


@pytest.fixture(scope="module")
def screen() -> SanctionsScreen:
    return SanctionsScreen.from_names(FakeVault(), LISTED, tenant="bank-a")


def _payment(debtor: str, creditor: str) -> Payment:
    """A payment as the accept handler builds it: name tokens of the screening form."""
    vault = FakeVault()
    return Payment(uetr="u-1", end_to_end_id="E1", msg_id="M1", scheme="uk_fps", amount_minor=1050,
                   currency="GBP", exponent=2, debtor_account_token="dtk_iban_a", creditor_account_token="dtk_iban_b",
                   debtor_name_token=vault.deterministic_token(screening_form(debtor), "name", tenant="bank-a"),
                   creditor_name_token=vault.deterministic_token(screening_form(creditor), "name", tenant="bank-a"),
                   debtor_agent="BARCGB22", creditor_agent="NWBKGB2L", accepted_at=1.0)


def _screened(screen: SanctionsScreen, creditor: str) -> str | None:
    """The listed name the creditor hit, as the accept handler screens it (tokens, then clear names)."""
    payment = _payment("Ada Lovelace", creditor)
    match = screen.match(payment, names=("Ada Lovelace", creditor))
    assert screen.hit(payment, names=("Ada Lovelace", creditor)) is (match is not None)
    return None if match is None else match.listed


@pytest.mark.parametrize(("variant", "listed"), [
    ("Ivor Shadowmеre", "Ivor Shadowmere"),  # Cyrillic е
    ("Ivоr Shаdоwmere", "Ivor Shadowmere"),  # Cyrillic о, а
    ("МОRWЕNNА BLАСKVАLЕ", "Morwenna Blackvale"),  # Cyrillic capitals
    ("ΙVΟR SΗΑDΟWΜΕRΕ", "Ivor Shadowmere"),  # Greek capitals
    ("Οctaνia Vexley", "Octavia Vexley"),  # Greek Ο, ν
    ("Ϲassius Grimthοrpe", "Cassius Grimthorpe"),  # Greek lunate sigma (NFKC would make it σ), ο
    ("Zephyrine Cօldharbօur", "Zephyrine Coldharbour"),  # Armenian օ
    ("Thaddeus Νіghtѕhade", "Thaddeus Nightshade"),  # Greek Ν, Cyrillic і, ѕ
])
def test_a_cyrillic_or_greek_homoglyph_of_a_listed_name_hits(screen: SanctionsScreen, variant: str,
                                                              listed: str) -> None:
    assert screening_form(variant) != screening_form(listed)  # the token alone would miss it
    assert _screened(screen, variant) == listed
    assert NameMatcher(LISTED, fuzzy=False).match(variant) is not None  # exact on skeletons, not fuzzy


@pytest.mark.parametrize(("variant", "listed"), [
    ("Ivor Shadowmère", "Ivor Shadowmere"),
    ("Ivor Shadowme\u0300re", "Ivor Shadowmere"),  # decomposed: e + combining grave
    ("Mörwénna Blâckvåle", "Morwenna Blackvale"),
    ("Perpetua Ravenswørth", "Perpetua Ravensworth"),
    ("Cassius Grimthorpę", "Cassius Grimthorpe"),
    ("Balthazar Ironmonger Hołdings", "Balthazar Ironmonger Holdings"),
])
def test_diacritics_are_folded(screen: SanctionsScreen, variant: str, listed: str) -> None:
    assert _screened(screen, variant) == listed
    assert NameMatcher(LISTED, fuzzy=False).match(variant) is not None


@pytest.mark.parametrize(("variant", "listed"), [
    ("ＩＶＯＲ　ＳＨＡＤＯＷＭＥＲＥ", "Ivor Shadowmere"),  # fullwidth letters and ideographic space
    ("Ｏｃｔａｖｉａ Vexley", "Octavia Vexley"),
    ("𝐓𝐡𝐚𝐝𝐝𝐞𝐮𝐬 Nightshade", "Thaddeus Nightshade"),  # mathematical bold
])
def test_fullwidth_and_compatibility_forms_are_folded(screen: SanctionsScreen, variant: str, listed: str) -> None:
    assert _screened(screen, variant) == listed


@pytest.mark.parametrize(("variant", "listed"), [
    ("ivor shadowmere", "Ivor Shadowmere"),
    ("Ivor Shadow-mere", "Ivor Shadowmere"),
    ("Ivor Shadow Mere", "Ivor Shadowmere"),
    ("IvorShadowmere", "Ivor Shadowmere"),
    ("  Octavia,   Vexley. ", "Octavia Vexley"),
    ("O'Ctavia Vexley", "Octavia Vexley"),
    ("Morwenna\tBlack-Vale", "Morwenna Blackvale"),
    ("Ivor Shad\u200bow\u00admere", "Ivor Shadowmere"),  # zero-width space, soft hyphen
])
def test_case_punctuation_and_spacing_do_not_matter(screen: SanctionsScreen, variant: str, listed: str) -> None:
    assert _screened(screen, variant) == listed


@pytest.mark.parametrize(("variant", "listed"), [
    ("Shadowmere Ivor", "Ivor Shadowmere"),
    ("SHADOWMERE, Ivor", "Ivor Shadowmere"),
    ("Holdings Balthazar Ironmonger", "Balthazar Ironmonger Holdings"),
    ("Vexley Octavia", "Octavia Vexley"),
])
def test_word_order_does_not_matter(screen: SanctionsScreen, variant: str, listed: str) -> None:
    assert _screened(screen, variant) == listed


@pytest.mark.parametrize(("variant", "listed"), [
    ("1vor Shad0wmere", "Ivor Shadowmere"),
    ("lvor Shadowmere", "Ivor Shadowmere"),  # lower-case L for capital i
    ("Octavia Vex|ey", "Octavia Vexley"),
    ("Morwenna B1ackva1e", "Morwenna Blackvale"),
    ("Thaddeus N1ghtshade", "Thaddeus Nightshade"),
])
def test_digit_and_letter_confusables_hit(screen: SanctionsScreen, variant: str, listed: str) -> None:
    assert _screened(screen, variant) == listed
    assert NameMatcher(LISTED, fuzzy=False).match(variant) is not None  # by the skeleton, not by luck


@pytest.mark.parametrize(("variant", "listed"), [
    ("Ivor Shadowmore", "Ivor Shadowmere"),  # substitution
    ("Ivor Shadowmre", "Ivor Shadowmere"),  # deletion
    ("Ivor Shadowmeere", "Ivor Shadowmere"),  # insertion
    ("Ivor Sahdowmere", "Ivor Shadowmere"),  # transposition (one edit)
    ("Ocatvia Vexley", "Octavia Vexley"),  # transposition in the shorter word
    ("Ivar Shadowmere", "Ivor Shadowmere"),  # a typo in a four-letter word
    ("Perpetua Ravensworht", "Perpetua Ravensworth"),
    ("Balthazar Ironmonegr Holdings", "Balthazar Ironmonger Holdings"),
    ("Shadowmere Ivar", "Ivor Shadowmere"),  # a typo and the word order
])
def test_a_one_letter_typo_within_the_threshold_hits(screen: SanctionsScreen, variant: str, listed: str) -> None:
    assert _screened(screen, variant) == listed
    match = NameMatcher(LISTED).match(variant)
    assert match is not None and match.method == "fuzzy" and DEFAULT_THRESHOLD <= match.score < 1.0


@pytest.mark.parametrize(("variant", "listed"), [
    ("I. Shadowmere", "Ivor Shadowmere"),
    ("M Blackvale", "Morwenna Blackvale"),
    ("B. Ironmonger Holdings", "Balthazar Ironmonger Holdings"),
    ("Mr Ivor J Shadowmere", "Ivor Shadowmere"),  # extra words do not lower the score
    ("Perpetua Ravensworth Trading Ltd", "Perpetua Ravensworth"),
])
def test_initials_and_extra_words_hit(screen: SanctionsScreen, variant: str, listed: str) -> None:
    assert _screened(screen, variant) == listed


@pytest.mark.parametrize("control", [
    "Ada Lovelace", "Tim Berners-Lee", "Zoë O'Brien", "Łukasz Wójcik", "Nguyễn Văn An", "王伟", "Ирина Петрова",
    "Ivan Shadwell", "Ivor Thompson", "Ada Shadowmere", "Morwenna Blackwood", "Marianne Blackwell",
    "Octavia Vesey", "Cassius Grimshaw", "Thaddeus Nightingale", "Zephyrine Coldwater",
    "Ironmonger Brothers Ltd", "Balthazar Ironside Holdings", "Perpetua Ravenscroft", "I. Smith", "J Shadowmere",
])
def test_a_control_name_does_not_hit(screen: SanctionsScreen, control: str) -> None:
    assert _screened(screen, control) is None


def test_a_different_person_one_letter_from_a_listed_name_hits_too(screen: SanctionsScreen) -> None:
    """The price of catching typos: one edit from a listed name cannot be told from a typo of it."""
    assert _screened(screen, "Octavia Bexley") == "Octavia Vexley"
    assert NameMatcher(LISTED, threshold=0.95).match("Octavia Bexley") is None


def test_the_token_check_still_works_alone_and_names_its_listed_name(screen: SanctionsScreen) -> None:
    payment = _payment("Ada Lovelace", "IVOR   shadowmere.")
    match = screen.match(payment)  # no clear names: tokens only, as outside the trust boundary
    assert match is not None and (match.listed, match.method) == ("Ivor Shadowmere", "token")
    assert screen.match(_payment("Ada Lovelace", "Ivor Shadowmère")) is None  # what the skeleton is for


def test_the_stored_name_token_is_the_screening_forms_never_the_skeletons() -> None:
    """The name token a payment stores must still detokenise to the (screening form of the) real name."""
    assert screening_form("Ivor Shadowmère") == "IVOR SHADOWMÈRE"
    assert screening_form("Ivor Shadowmere") != screening_form("Ivor Shadowmore")
    assert screening_key("Ivor Shadowmère") == "lvor shadowmere"


def test_screening_makes_no_vault_call_per_payment() -> None:
    vault = FakeVault()
    screen = SanctionsScreen.from_names(vault, LISTED, tenant="bank-a")
    assert vault.calls == ["tokenize_batch"]  # the cold start's one batch call
    payment = _payment("Ada Lovelace", "Ivor Shadowmere")
    vault.calls.clear()
    assert screen.hit(payment, names=("Ada Lovelace", "Ivоr Shadowmere"))
    assert not screen.hit(payment.__class__(**{**payment.__dict__, "creditor_name_token": "dtk_name_x"}),
                          names=("Ada Lovelace", "Grace Hopper"))
    assert vault.calls == []


@pytest.mark.parametrize("threshold", [0.8, 0.5, 1.01])
def test_a_threshold_an_initial_alone_could_reach_is_refused(threshold: float) -> None:
    with pytest.raises(ScreeningConfigurationError, match="threshold must be above 0.8"):
        NameMatcher(LISTED, threshold=threshold)


_LATIN = "abcdefghijklmnopqrstuvwxyzàáâäãåçèéêëìíîïñòóôöõùúûüýÿøłđæœß -'."


@given(st.text(alphabet=_LATIN, max_size=30))
def test_the_skeleton_ignores_case_and_is_stable(name: str) -> None:
    key = screening_key(name)
    assert screening_key(name.upper()) == key == screening_key(name.title())
    assert screening_key(key) == key


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=30))
def test_the_ascii_fast_path_agrees_with_the_unicode_path(name: str) -> None:
    assert screening_key(name) == screening_key(name + "\u200b")  # a zero-width space forces the Unicode path


@given(st.text(max_size=25))
def test_any_text_screens_without_error(name: str) -> None:
    key = screening_key(name)
    assert key == " ".join(key.split())
    NameMatcher(LISTED).match(name)


def test_the_evaluation_shows_what_each_screening_catches() -> None:
    result = evaluate_screening(per_class=40, controls=300, seed=3)
    fn, fp = result.false_negative_rate, result.false_positive_rate
    assert fn["exact_before"] > 0.5 > fn["normalised_exact"] > fn["normalised_fuzzy"]
    assert fn["normalised_fuzzy"] <= 0.01
    assert result.false_negative_by_class["exact_before"]["homoglyph"] == 1.0
    assert result.false_negative_by_class["normalised_exact"]["homoglyph"] == 0.0
    assert result.false_positive_by_class["normalised_fuzzy"]["realistic"] == 0.0
    assert fp["exact_before"] == fp["normalised_exact"] == 0.0
    assert [t for t, _, _ in result.sweep] == sorted(t for t, _, _ in result.sweep)


# -- in the pipeline, on moto -----------------------------------------------------------------------
@pytest.fixture
def harness(env: Any) -> Iterator[PipelineHarness]:
    built = PipelineHarness(env, RunSettings(payments=10, seed=11, gateway_timeout_rate=0.0), name_prefix="s")
    built.open_house_accounts()
    yield built


def _valid(count: int) -> list[GeneratedMessage]:
    rules, out = default_routing_rules(), []
    for m in generate_messages(GeneratorSettings(count=count * 4, seed=5)):
        tx = parse_pacs008(m.xml).transactions[0]
        route = rules.route_agent(tx.creditor_agent.bic or f"GBDSC:{tx.creditor_agent.member_id}", tx.currency,
                                  tx.amount)
        if route.rail in ("uk_fps", "sepa_inst") and tx.amount < 400_000:
            out.append(m)
    return out[:count]


def _with_creditor(m: GeneratedMessage, name: str) -> GeneratedMessage:
    parsed = parse_pacs008(m.xml)
    tx = parsed.transactions[0]
    tx = replace(tx, creditor=replace(tx.creditor, name=name))
    return replace(m, xml=build_pacs008(replace(parsed, transactions=(tx,))))


def test_the_pipeline_rejects_an_altered_listed_name_rr04_with_the_same_vault_calls(
        harness: PipelineHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second, third = _valid(3)
    messages = [_with_creditor(first, "Іvor Shadowmère"), _with_creditor(second, "Shadowmere, Ivar"),
                _with_creditor(third, "Ivan Shadwell")]
    batches: list[list[tuple[str, str, str]]] = []
    tokenize_batch = harness.ctx.vault.tokenize_batch

    def spy(requests: Sequence[tuple[str, str, str]], **kwargs: Any) -> list[str]:
        batches.append(list(requests))
        return tokenize_batch(requests, **kwargs)

    harness.onboard(messages, random.Random(1))
    monkeypatch.setattr(harness.ctx.vault, "tokenize_batch", spy)
    harness.submit(messages)
    harness.runner.run_until_idle()
    payments = {p.end_to_end_id: p for p in harness.ctx.store.payments()}
    assert [(payments[m.end_to_end_id].status, payments[m.end_to_end_id].reason) for m in messages[:2]] == [
        ("RJCT", "RR04"), ("RJCT", "RR04")]
    assert payments[messages[2].end_to_end_id].reason != "RR04"
    # one batched vault call per accept batch, four tokens per payment, as before: the names stored are
    # the screening forms of the real names, never skeletons
    assert sum(len(b) for b in batches) == 4 * len(messages)
    names = [value for batch in batches for value, cls, _ in batch if cls == "name"]
    assert screening_form("Іvor Shadowmère") in names and screening_key("Іvor Shadowmère") not in names
