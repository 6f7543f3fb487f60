"""Shared fixtures: an in-process moto environment with fake credentials and an explicit region.

The repository's root ``conftest.py`` removes real AWS credentials before any test runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fasterpay.aws import AwsEnvironment

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env() -> Iterator[AwsEnvironment]:
    from fasterpay.aws import open_environment

    with open_environment("moto", region="eu-west-2") as environment:
        yield environment


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
