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


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain boto3 clients made inside a moto mock get fake credentials, never the developer's."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def postings_env() -> Iterator[AwsEnvironment]:
    """A moto environment with one small DynamoDB table, ``postings``, keyed by ``EndToEndId``."""
    from fasterpay.aws import open_environment

    with open_environment("moto", region="eu-west-2") as environment:
        environment.client("dynamodb").create_table(
            TableName="postings",
            KeySchema=[{"AttributeName": "EndToEndId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "EndToEndId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield environment


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once per test session with ``mkdocs build --strict`` (as ``make build`` does)."""
    from sitecheck import build_site

    out = tmp_path_factory.mktemp("site")
    result = build_site(out)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return out


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
