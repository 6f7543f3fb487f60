"""botocore's data files parsed once per process (``simulations.botocore_data``): the same data, fewer parses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from simulations import botocore_data


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    """This test's own cache: uninstalled (and emptied) before and after, reinstalled as the suite had it."""
    was = botocore_data.installed()
    botocore_data.uninstall()
    yield
    botocore_data.uninstall()
    if was:
        botocore_data.install()


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count botocore's json.loads calls (every data file goes through one)."""
    import botocore.loaders

    calls: list[int] = []
    real = botocore.loaders.json.loads

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(botocore.loaders.json, "loads", counting)
    return calls


def test_a_new_session_parses_nothing_a_former_session_parsed(fresh_cache: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    parses = _parses(monkeypatch)
    boto3.Session().get_available_regions("ec2")
    uncached = len(parses)
    assert uncached >= 2  # the EC2 model and endpoints.json, at least
    boto3.Session().get_available_regions("ec2")
    assert len(parses) == 2 * uncached  # botocore alone parses them again for a new session

    botocore_data.install()
    del parses[:]
    first = boto3.Session().get_available_regions("ec2")
    assert len(parses) == uncached
    second = boto3.Session().get_available_regions("ec2", partition_name="aws")
    assert len(parses) == uncached and second == first  # the second session parsed nothing


@pytest.mark.parametrize("service", ["dynamodb", "sqs", "kms", "ec2", "s3", "cloudformation"])
def test_a_model_loaded_by_many_sessions_equals_a_fresh_parse(fresh_cache: None, service: str) -> None:
    """The same model as botocore's own loader, sdk-extras merged once or many times (the merge is idempotent)."""
    import botocore.session

    reference = botocore.session.get_session().get_service_data(service)
    botocore_data.install()
    for _ in range(3):  # each new session merges the extras into the shared model again
        data = botocore.session.get_session().get_service_data(service)
    assert json.dumps(data, sort_keys=True) == json.dumps(reference, sort_keys=True)


def test_clients_of_a_cached_session_answer_as_before(fresh_cache: None) -> None:
    from moto import mock_aws

    import boto3

    botocore_data.install()
    with mock_aws():
        for _ in range(2):
            ddb = boto3.Session(region_name="eu-west-2", aws_access_key_id="k", aws_secret_access_key="s").client("dynamodb")
            ddb.create_table(TableName=f"t{_}", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                             BillingMode="PAY_PER_REQUEST")
        assert sorted(ddb.list_tables()["TableNames"]) == ["t0", "t1"]
        with pytest.raises(ddb.exceptions.ResourceNotFoundException):
            ddb.describe_table(TableName="missing")


def test_uninstall_restores_botocore_and_forgets() -> None:
    from botocore.loaders import JSONFileLoader

    was = botocore_data.installed()
    botocore_data.install()
    patched = JSONFileLoader.load_file
    botocore_data.uninstall()
    assert JSONFileLoader.load_file is not patched and not botocore_data.installed()
    if was:
        botocore_data.install()
