"""Shared fixtures: an in-process moto environment with fake credentials and an explicit region."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Nothing in the test suite may reach a real account, whatever the developer's shell says.
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)
os.environ["FASTERPAY_BACKEND"] = "moto"
os.environ.pop("FASTERPAY_ALLOW_REAL_AWS", None)

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env() -> Iterator["AwsEnvironment"]:  # noqa: F821
    from fasterpay.aws import open_environment

    with open_environment("moto", region="eu-west-2") as environment:
        yield environment


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
