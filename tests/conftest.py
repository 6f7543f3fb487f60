"""Shared fixtures: an in-process moto environment with fake credentials and an explicit region.

The repository's root ``conftest.py`` removes real AWS credentials before any test runs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fasterpay.aws import AwsEnvironment

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """moto's answers, computed faster: the caches of ``simulations.moto_speedups``, checked against moto's own
    code by tests/test_moto_speedups.py; and botocore's data files parsed once per worker, not once per session
    (``simulations.botocore_data``, checked by tests/test_botocore_data.py)."""
    from simulations import botocore_data, moto_speedups

    botocore_data.install()
    moto_speedups.install_caches()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first (the chaos run, then the site build and its readers), so that with two
    workers they run side by side from the start and the short tests fill in around them."""
    def rank(item: pytest.Item) -> int:
        group = item.get_closest_marker("xdist_group")
        if group is not None and group.args and group.args[0] == "chaos":
            return 0
        if item.get_closest_marker("site"):
            return 1
        if item.get_closest_marker("volume"):
            return 2
        return 3

    items.sort(key=rank)


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


@pytest.fixture(autouse=True)
def _forget_personal_values() -> Iterator[None]:
    """The names a test's payments registered with the personal-data guard do not outlive the test."""
    yield
    from fasterpay.observability.redaction import personal_value_registry

    personal_value_registry().clear()


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
    """The site, built once per test run with ``mkdocs build --strict`` (as ``make build`` does).

    Under pytest-xdist every worker shares one build: the first to ask builds it under a file lock,
    the others wait for it and read the same folder (a build executes the notebooks, so two builds
    would run every notebook twice)."""
    import fcntl

    from sitecheck import build_site

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    out, done = root / "site-shared", root / "site-shared.ok"
    with open(root / "site-shared.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            result = build_site(out)
            assert result.returncode == 0, (
                f"mkdocs build --strict failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
            done.write_text("built\n")
    return out


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
