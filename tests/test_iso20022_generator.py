"""The payload generator: seeded, covers every class of bad input, and its expected outcomes are exact."""

from __future__ import annotations

import doctest
from collections import Counter
from decimal import Decimal

import pytest

import simulations.generator
from fasterpay.iso20022 import SCHEMES, Pacs008Validator, ReasonCode, TransactionStatus, parse_pacs008
from simulations.generator import (
    DUPLICATE_CASES,
    INVALID_CASES,
    GeneratorSettings,
    InvalidMixError,
    generate_messages,
    parse_mix,
)

# Enough invalid messages for every class at least twice, and duplicates of both kinds.
SETTINGS = GeneratorSettings(count=160, seed=11, invalid_rate=0.25, duplicate_rate=0.05)


@pytest.fixture(scope="module")
def batch():
    return generate_messages(SETTINGS)


def test_every_generated_message_gets_exactly_its_expected_outcome(batch) -> None:
    validator = Pacs008Validator(max_message_bytes=SETTINGS.max_message_bytes)
    mismatches = []
    for generated in batch:
        report = validator.validate(generated.xml)
        outcome = report.transactions[0].status if report.transactions else TransactionStatus.RJCT
        if report.reason_codes != generated.expected_reasons or outcome is not generated.expected_status:
            mismatches.append((generated.sequence, generated.case, generated.expected_reason, report.reason_codes))
    assert mismatches == []


def test_the_batch_covers_every_bad_input_class_and_both_duplicate_kinds(batch) -> None:
    cases = Counter(m.case for m in batch)
    assert set(INVALID_CASES) | set(DUPLICATE_CASES) <= set(cases)
    assert min(cases[name] for name in INVALID_CASES) >= 2
    assert sum(cases[name] for name in INVALID_CASES) == SETTINGS.invalid_count == 40
    assert sum(cases[name] for name in DUPLICATE_CASES) == SETTINGS.duplicate_count == 8
    assert {m.expected_reason for m in batch if m.case in INVALID_CASES} == {c.reason for c in INVALID_CASES.values()}


def test_valid_messages_parse_and_follow_the_mix_and_the_scheme_limits(batch) -> None:
    valid = [m for m in batch if m.case == "valid"]
    assert batch[0].case == "valid"
    schemes = Counter(m.scheme for m in valid)
    assert schemes["uk_fps"] > schemes["sepa_inst"] > 0  # 0.6 / 0.4
    for generated in valid:
        tx = parse_pacs008(generated.xml).transactions[0]
        rules = SCHEMES[generated.scheme]
        assert tx.amount == generated.amount and tx.currency in rules.currencies
        assert Decimal("0.01") <= tx.amount <= (rules.max_amount or tx.amount)
        assert tx.amount == tx.amount.quantize(Decimal("0.01"))


def test_duplicates_point_back_at_an_earlier_valid_message(batch) -> None:
    by_sequence = {m.sequence: m for m in batch}
    for generated in (m for m in batch if m.case in DUPLICATE_CASES):
        original = by_sequence[generated.duplicate_of]
        assert original.sequence < generated.sequence and original.case == "valid"
        assert generated.end_to_end_id == original.end_to_end_id
        if generated.case == "duplicate_message":
            assert generated.xml == original.xml and generated.expected_reason is ReasonCode.DU01
        else:
            assert generated.msg_id != original.msg_id and generated.expected_reason is ReasonCode.DU04


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    small = GeneratorSettings(count=12, seed=5, invalid_rate=0.25, duplicate_rate=0.1)
    first, again = generate_messages(small), generate_messages(small)
    assert [m.xml for m in first] == [m.xml for m in again]
    other = generate_messages(GeneratorSettings(count=12, seed=6, invalid_rate=0.25, duplicate_rate=0.1))
    assert [m.xml for m in first] != [m.xml for m in other]


def test_a_mix_without_a_capped_scheme_skips_the_over_limit_class() -> None:
    batch = generate_messages(GeneratorSettings(count=60, seed=2, mix={"sepa_inst": 1.0}, invalid_rate=0.5))
    assert {m.scheme for m in batch} == {"sepa_inst"}
    assert "over_limit" not in {m.case for m in batch}
    assert set(INVALID_CASES) - {"over_limit"} <= {m.case for m in batch}


def test_oversized_messages_are_just_over_the_configured_limit() -> None:
    settings = GeneratorSettings(count=40, seed=3, invalid_rate=0.5, max_message_bytes=20_000)
    oversized = [m for m in generate_messages(settings) if m.case == "oversized"]
    assert oversized and all(20_000 < len(m.xml) <= 20_000 + 160 for m in oversized)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: GeneratorSettings(count=0), "count must be a positive integer"),
        (lambda: GeneratorSettings(count=10, mix={"bacs": 1.0}), r"unknown scheme \['bacs'\]; use: uk_fps, sepa_inst"),
        (lambda: GeneratorSettings(count=10, mix={"uk_fps": 0.0}), "add up to more than 0"),
        (lambda: GeneratorSettings(count=10, amounts={"huge": 1.0}), "unknown amount band"),
        (lambda: GeneratorSettings(count=10, invalid_rate=1.5), "between 0 and 1"),
        (lambda: GeneratorSettings(count=10, invalid_rate=0.6, duplicate_rate=0.4), "leave at least the first"),
        (lambda: parse_mix("uk_fps=lots"), "is not name=weight"),
        (lambda: parse_mix(" , "), "the mix is empty"),
    ],
)
def test_bad_settings_say_what_to_fix(make, message: str) -> None:
    with pytest.raises(InvalidMixError, match=message):
        make()


def test_manifest_entries_are_plain_data(batch) -> None:
    entry = batch[0].manifest_entry()
    assert entry["file"] == "000001.xml" and entry["expected_status"] == "ACTC" and entry["expected_reason"] is None
    assert isinstance(entry["amount"], str) and Decimal(entry["amount"]) == batch[0].amount


def test_docstring_examples_run() -> None:
    result = doctest.testmod(simulations.generator, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
