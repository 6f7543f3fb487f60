"""Tests for fasterpay.aws: backends, stacks, assumed roles and IAM enforcement."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from fasterpay.aws import (
    DEFAULT_REGION,
    AwsEnvironment,
    Backend,
    Credentials,
    EnvironmentNotOpenError,
    RealAwsNotAllowedError,
    StackDeployError,
    assume_role,
    delete_stack,
    deploy_stack,
    open_environment,
)

REGION = "eu-west-2"

TABLE_TEMPLATE = """
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  TableName: {Type: String}
Resources:
  Postings:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Ref TableName
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: EndToEndId, AttributeType: S}]
      KeySchema: [{AttributeName: EndToEndId, KeyType: HASH}]
Outputs:
  TableName: {Value: !Ref Postings}
  TableArn: {Value: !GetAtt Postings.Arn}
"""


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, no profile, and no fasterpay settings leaking in from the shell."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "FASTERPAY_BACKEND", "FASTERPAY_REGION",
                 "FASTERPAY_ALLOW_REAL_AWS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def env() -> Iterator[AwsEnvironment]:
    with open_environment("moto", region=REGION) as opened:
        yield opened


def _create_table(dynamodb: object, name: str = "postings") -> None:
    dynamodb.create_table(  # type: ignore[attr-defined]
        TableName=name,
        KeySchema=[{"AttributeName": "EndToEndId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "EndToEndId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


# Backends -------------------------------------------------------------------------------------


def test_moto_round_trip_with_kms_and_dynamodb(env: AwsEnvironment) -> None:
    kms = env.client("kms")
    dynamodb = env.client("dynamodb")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    context = {"EndToEndId": "E2E-0001"}
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"GB33BUKB20201555555555",
                       EncryptionContext=context)["CiphertextBlob"]
    _create_table(dynamodb)
    dynamodb.put_item(TableName="postings",
                      Item={"EndToEndId": {"S": "E2E-0001"}, "Token": {"B": blob}})

    stored = dynamodb.get_item(TableName="postings", Key={"EndToEndId": {"S": "E2E-0001"}})
    plaintext = kms.decrypt(CiphertextBlob=stored["Item"]["Token"]["B"],
                            EncryptionContext=context)["Plaintext"]

    assert plaintext == b"GB33BUKB20201555555555"
    assert env.backend is Backend.MOTO and env.endpoint_url is None
    assert dynamodb.meta.region_name == REGION


def test_moto_session_has_explicit_fake_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY00")
    with open_environment("moto", region="eu-west-1") as opened:
        credentials = opened.session.get_credentials()
        assert credentials.access_key == "testing"
        assert credentials.method == "explicit"
        assert opened.session.region_name == "eu-west-1"


def test_state_does_not_leak_between_environments() -> None:
    with open_environment("moto", region=REGION) as first:
        _create_table(first.client("dynamodb"))
    with open_environment("moto", region=REGION) as second:
        assert second.client("dynamodb").list_tables()["TableNames"] == []


def test_moto_server_serves_on_loopback_with_an_endpoint_url() -> None:
    with open_environment("moto-server", region=REGION) as opened:
        endpoint = opened.endpoint_url
        assert endpoint is not None and endpoint.startswith("http://127.0.0.1:")
        assert int(endpoint.rsplit(":", 1)[1]) > 0
        sqs = opened.client("sqs")
        assert sqs.meta.endpoint_url == endpoint
        queue_url = sqs.create_queue(QueueName="payments")["QueueUrl"]
        sqs.send_message(QueueUrl=queue_url, MessageBody="pacs.008")
        received = sqs.receive_message(QueueUrl=queue_url)["Messages"]
        assert [message["Body"] for message in received] == ["pacs.008"]
    assert opened.endpoint_url is None


@pytest.mark.parametrize("flag", [None, "", "0", "true", "yes", " 1"])
def test_aws_backend_is_refused_without_the_exact_opt_in(
    monkeypatch: pytest.MonkeyPatch, flag: str | None
) -> None:
    if flag is not None:
        monkeypatch.setenv("FASTERPAY_ALLOW_REAL_AWS", flag)
    with pytest.raises(RealAwsNotAllowedError, match="FASTERPAY_ALLOW_REAL_AWS=1"):
        open_environment("aws")
    with pytest.raises(RealAwsNotAllowedError):
        AwsEnvironment(Backend.AWS, region=REGION)


def test_aws_backend_from_the_environment_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTERPAY_BACKEND", "aws")
    with pytest.raises(RealAwsNotAllowedError):
        open_environment()


def test_aws_backend_with_opt_in_is_built_but_not_entered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTERPAY_ALLOW_REAL_AWS", "1")
    chosen = open_environment("aws", region="eu-west-1")  # not entered: no call is made
    assert (chosen.backend, chosen.region, chosen.endpoint_url) == (Backend.AWS, "eu-west-1", None)


def test_backend_and_region_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert open_environment().backend is Backend.MOTO
    assert open_environment().region == DEFAULT_REGION
    monkeypatch.setenv("FASTERPAY_BACKEND", "moto-server")
    monkeypatch.setenv("FASTERPAY_REGION", "eu-central-1")
    chosen = open_environment()
    assert (chosen.backend, chosen.region) == (Backend.MOTO_SERVER, "eu-central-1")
    assert open_environment(Backend.MOTO, region="us-east-1").region == "us-east-1"


@pytest.mark.parametrize("name", ["localstack", "MOTO_SERVER", ""])
def test_unknown_backend_names_the_valid_ones(name: str) -> None:
    with pytest.raises(ValueError, match="'moto', 'moto-server', 'aws'"):
        open_environment(name)


def test_session_outside_the_with_block_is_an_error() -> None:
    unopened = open_environment("moto")
    with pytest.raises(EnvironmentNotOpenError, match="with open_environment"):
        unopened.client("kms")


# CloudFormation -------------------------------------------------------------------------------


def test_deploy_stack_returns_outputs_and_delete_stack_removes_it(env: AwsEnvironment) -> None:
    cloudformation = env.client("cloudformation")
    outputs = deploy_stack(cloudformation, stack_name="fp-ledger", template_body=TABLE_TEMPLATE,
                           parameters={"TableName": "fp-ledger-postings"})

    assert outputs == {
        "TableName": "fp-ledger-postings",
        "TableArn": f"arn:aws:dynamodb:{REGION}:123456789012:table/fp-ledger-postings",
    }
    assert env.client("dynamodb").list_tables()["TableNames"] == ["fp-ledger-postings"]
    delete_stack(cloudformation, "fp-ledger")
    assert env.client("dynamodb").list_tables()["TableNames"] == []


def test_deploy_stack_rejected_template_raises_stack_deploy_error(env: AwsEnvironment) -> None:
    cloudformation = env.client("cloudformation")
    with pytest.raises(StackDeployError) as raised:
        deploy_stack(cloudformation, stack_name="fp-broken", template_body=TABLE_TEMPLATE)

    assert raised.value.status == "NOT_CREATED"
    assert raised.value.reason.startswith("ValidationError:")
    assert "delete_stack" in str(raised.value)
    assert isinstance(raised.value.__cause__, ClientError)


def test_deploy_stack_failed_creation_lists_failed_resource_events(env: AwsEnvironment) -> None:
    # moto creates stacks synchronously and never reports CREATE_FAILED: stub AWS's answer.
    cloudformation = env.client("cloudformation")
    stack_id = f"arn:aws:cloudformation:{REGION}:123456789012:stack/fp-broken/1"
    failed_stack = {"Stacks": [{
        "StackName": "fp-broken", "StackId": stack_id, "CreationTime": "2025-11-01T00:00:00Z",
        "StackStatus": "ROLLBACK_COMPLETE",
        "StackStatusReason": "The following resource(s) failed to create: [Key].",
    }]}

    def event(
        n: int, logical_id: str, resource_type: str, status: str, **extra: str
    ) -> dict[str, str]:
        return {"StackId": stack_id, "EventId": str(n), "StackName": "fp-broken",
                "Timestamp": f"2025-11-01T00:00:0{n}Z", "LogicalResourceId": logical_id,
                "ResourceType": resource_type, "ResourceStatus": status, **extra}

    events = {"StackEvents": [  # newest first, as the API lists them
        event(3, "fp-broken", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE"),
        event(2, "Key", "AWS::KMS::Key", "CREATE_FAILED",
              ResourceStatusReason="Invalid key policy"),
        event(1, "Key", "AWS::KMS::Key", "CREATE_IN_PROGRESS"),
    ]}
    with Stubber(cloudformation) as stub:
        stub.add_response("create_stack", {"StackId": stack_id})
        stub.add_response("describe_stacks", failed_stack, {"StackName": stack_id})
        stub.add_response("describe_stacks", failed_stack, {"StackName": stack_id})
        stub.add_response("describe_stack_events", events, {"StackName": stack_id})
        with pytest.raises(StackDeployError) as raised:
            deploy_stack(cloudformation, stack_name="fp-broken", template_body="{}")

    assert raised.value.status == "ROLLBACK_COMPLETE"
    assert raised.value.failed_events == (
        "Key (AWS::KMS::Key): CREATE_FAILED: Invalid key policy",
    )
    assert "Invalid key policy" in str(raised.value)


# Roles and IAM enforcement ----------------------------------------------------------------------


def _role_allowed_to_put_items(opened: AwsEnvironment) -> str:
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "sts:AssumeRole"}]}
    # moto never matches KMS/DynamoDB resource ARNs in policies, so the resource is "*".
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*"}]}
    iam = opened.client("iam")
    role_arn = iam.create_role(RoleName="payments-writer",
                               AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="payments-writer", PolicyName="put-postings",
                        PolicyDocument=json.dumps(policy))
    return str(role_arn)


@pytest.mark.parametrize("backend", ["moto", "moto-server"])
def test_iam_enforced_allows_put_item_and_denies_kms_decrypt(backend: str) -> None:
    with open_environment(backend, region=REGION) as opened:
        role_arn = _role_allowed_to_put_items(opened)
        _create_table(opened.client("dynamodb"))
        kms = opened.client("kms")
        blob = kms.encrypt(KeyId=kms.create_key()["KeyMetadata"]["KeyId"],
                           Plaintext=b"secret")["CiphertextBlob"]
        credentials = assume_role(opened.client("sts"), role_arn, "payments-api")
        assert isinstance(credentials, Credentials)
        assert credentials.session_token

        with opened.iam_enforced():
            dynamodb_as_role = opened.client("dynamodb", credentials=credentials)
            dynamodb_as_role.put_item(TableName="postings", Item={"EndToEndId": {"S": "E2E-1"}})
            with pytest.raises(ClientError) as denied_kms:
                opened.client("kms", credentials=credentials).decrypt(CiphertextBlob=blob)
            with pytest.raises(ClientError) as denied_get:
                dynamodb_as_role.get_item(TableName="postings", Key={"EndToEndId": {"S": "E2E-1"}})
            with pytest.raises(ClientError) as unknown_key:
                opened.client("dynamodb").list_tables()

        assert denied_kms.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "kms:Decrypt" in denied_kms.value.response["Error"]["Message"]
        assert denied_get.value.response["Error"]["Code"] == "AccessDeniedException"
        assert unknown_key.value.response["Error"]["Code"] == "UnrecognizedClientException"
        # Enforcement ends with the block: the session's own fake credentials work again.
        scanned = opened.client("dynamodb").scan(TableName="postings")
        assert scanned["Count"] == 1


def test_fake_session_credentials_are_refused_by_sts_under_enforcement(
    env: AwsEnvironment,
) -> None:
    with env.iam_enforced():
        with pytest.raises(ClientError) as raised:
            assume_role(env.client("sts"), "arn:aws:iam::123456789012:role/nope", "payments-api")
    assert raised.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_moto_sessions_share_botocores_parsed_models_and_keep_their_own_region_and_credentials() -> None:
    """The moto sessions share one botocore data loader (each model file parsed once per process), and
    boto3's per-session search path is not appended again and again; nothing else is shared."""
    with open_environment("moto", region="eu-west-2") as first, open_environment("moto", region="eu-west-1") as second:
        loaders = [env.session._session.get_component("data_loader") for env in (first, second)]
        assert loaders[0] is loaders[1]
        assert len(loaders[0].search_paths) == len(set(loaders[0].search_paths))
        first_ddb, second_ddb = first.client("dynamodb"), second.client("dynamodb")
        assert (first_ddb.meta.region_name, second_ddb.meta.region_name) == ("eu-west-2", "eu-west-1")
        _create_table(first_ddb)
        assert first_ddb.list_tables()["TableNames"] and second_ddb.list_tables()["TableNames"] == []
        assert second.session.get_credentials().access_key == "testing"


def test_a_tagged_kms_key_deploys_through_cloudformation_on_moto() -> None:
    template = {"Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {
        "KeyPolicy": {"Version": "2012-10-17", "Statement": []},
        "Tags": [{"Key": "cost-centre", "Value": "payments"}]}}}}
    with open_environment("moto") as env:
        cloudformation, kms = env.client("cloudformation"), env.client("kms")
        cloudformation.create_stack(StackName="tagged", TemplateBody=json.dumps(template))
        key_id = cloudformation.describe_stack_resource(StackName="tagged",
                                                        LogicalResourceId="Key")["StackResourceDetail"]["PhysicalResourceId"]
        tags = kms.list_resource_tags(KeyId=key_id)["Tags"]
    assert tags == [{"TagKey": "cost-centre", "TagValue": "payments"}]
