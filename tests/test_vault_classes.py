"""Normalisation and validation of the values the vault accepts (no AWS needed)."""

from __future__ import annotations

import pytest

from fasterpay.vault import DataClass, InvalidValueError, UnknownDataClassError, normalise
from fasterpay.vault.classes import parse_data_class


@pytest.mark.parametrize(
    ("raw", "data_class", "expected"),
    [
        ("4111 1111 1111 1111", DataClass.PAN, "4111111111111111"),
        ("5555-5555-5555-4444", DataClass.PAN, "5555555555554444"),
        ("gb82 west 1234 5698 7654 32", DataClass.IBAN, "GB82WEST12345698765432"),
        ("DE89370400440532013000", DataClass.IBAN, "DE89370400440532013000"),
        ("12345678", DataClass.ACCOUNT_NUMBER, "12345678"),
        ("  Zoë  O’Brien ", DataClass.NAME, "Zoë  O’Brien"),
    ],
)
def test_normalise_accepts_valid_values(raw: str, data_class: DataClass, expected: str) -> None:
    assert normalise(raw, data_class) == expected


@pytest.mark.parametrize(
    ("raw", "data_class", "message"),
    [
        ("", DataClass.NAME, "empty"),
        ("   ", DataClass.PAN, "empty"),
        ("4111111111111112", DataClass.PAN, "Luhn"),
        ("41111111111", DataClass.PAN, "12 to 19 digits"),
        ("4111x11111111111", DataClass.PAN, "12 to 19 digits"),
        ("41111111111111111111", DataClass.PAN, "limit is 19"),
        ("GB82WEST12345698765433", DataClass.IBAN, "mod-97"),
        ("GB82", DataClass.IBAN, "country code"),
        ("1234WEST12345698765432", DataClass.IBAN, "country code"),
        ("GB82WEST1234569876543212345678901234", DataClass.IBAN, "limit is 34"),
        ("12-34_56", DataClass.ACCOUNT_NUMBER, "letters or digits"),
        ("x" * 141, DataClass.NAME, "limit is 140"),
        ("Eve\x00Mallory", DataClass.NAME, "control characters"),
    ],
)
def test_normalise_rejects_bad_values_with_a_clear_message(raw: str, data_class: DataClass, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        normalise(raw, data_class)


def test_normalise_rejects_non_strings() -> None:
    with pytest.raises(InvalidValueError, match="must be a string"):
        normalise(4111111111111111, DataClass.PAN)  # type: ignore[arg-type]


def test_unknown_data_class_names_the_known_ones() -> None:
    with pytest.raises(UnknownDataClassError, match="pan, iban, account_number, name"):
        parse_data_class("ssn")
    assert parse_data_class("name") is DataClass.NAME
