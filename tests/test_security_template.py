"""The security template and the example SCP: the evidence behind the security checklist.

Read from the template: the DynamoDB gateway endpoint allows only the data-plane actions the stages use, on
this account's tables named ``<NamePrefix>-*``; the KMS interface endpoint (private DNS) allows only the
cryptographic operations, on this account's keys, for this account's principals; its security group admits
TLS (443) from the VPC only. The trail is single-region, validates its log files, encrypts them with the
template's rotating key (which CloudTrail may use only for this trail) and selects management events (KMS
calls included) and DynamoDB data events on the guide's tables; its bucket locks every version in
COMPLIANCE mode for ``LogRetentionDays``, is retained, and refuses plain HTTP and TLS older than 1.2. The
break-glass role needs fresh MFA and the incident's session tags, lasts an hour at most, and sits under a
boundary that denies deleting trails, disabling keys and changing the bucket's Object Lock. (cfn-lint, tags,
encryption and the other rules every template shares are in tests/test_template_policy.py; the trust policy
refusing sessions is in tests/test_security_breakglass.py.)

Deployed on moto (5.2.5): the VPC, subnets, route table, security group, both VPC endpoints with their
policies, the KMS key (rotation on), the bucket, the role with its boundary and permissions. What moto could
not show, and how the tests stand in:

* moto's CloudFormation has no ``AWS::CloudTrail::Trail`` and no ``AWS::S3::BucketPolicy``: the trail is made
  through the CloudTrail API from the template's own properties (``get_event_selectors`` returns them), and
  the bucket policy is put through the S3 API. Whether CloudTrail really delivers and signs files is not
  shown (moto delivers no logs).
* moto's CloudFormation ignores the bucket's ``ObjectLockConfiguration``, ``VersioningConfiguration`` and
  public access block, and the security group's egress rule: Object Lock and versioning are applied through
  the S3 API from the template's properties, and a locked log version then refuses deletion. moto lets
  COMPLIANCE retention be weakened (DESIGN.md section 6), so "nobody can shorten it" is not shown.
* moto ignores IAM condition keys and KMS key policies: the MFA, session-tag, endpoint-policy and key-policy
  conditions are checked as data here and by the evaluator, not enforced by moto. VPC endpoint policies are
  never enforced by moto either (no traffic goes through a VPC).
* moto does not split a ``CommaDelimitedList`` default, so ``SubnetCidrs`` is passed explicitly.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from fasterpay.aws import AwsEnvironment, open_environment
from simulations.templates import parse_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "reference" / "fasterpay" / "cloudformation" / "security.yaml"
TEMPLATE_TEXT = TEMPLATE_PATH.read_text(encoding="utf-8")
DOC = parse_template(TEMPLATE_TEXT)
RESOURCES = DOC["Resources"]
SCP_PATH = ROOT / "compliance" / "scp-allowed-regions.json"

ACCOUNT, REGION, PARTITION = "123456789012", "eu-west-2", "aws"  # moto's account; the guide's region
PREFIX = DOC["Parameters"]["NamePrefix"]["Default"]
BUCKET = f"{PREFIX}-trail-{ACCOUNT}-{REGION}"
TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{PREFIX}-audit"
#: What resource references resolve to when the template is read without deploying it.
ATTRIBUTES = {
    "TrailBucket": BUCKET,
    "TrailBucket.Arn": f"arn:aws:s3:::{BUCKET}",
    "TrailKey": "trail-key-id",
    "TrailKey.Arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/trail-key-id",
    "BreakGlassBoundary": f"arn:aws:iam::{ACCOUNT}:policy/{PREFIX}-break-glass-boundary",
    "BreakGlassRole": f"{PREFIX}-break-glass",
}


# -- resolving the template with its defaults -------------------------------------------------------------
def parameters(**overrides: Any) -> dict[str, Any]:
    """Every parameter's default (lists split), the pseudo parameters, and ``overrides``."""
    values: dict[str, Any] = {}
    for name, parameter in DOC["Parameters"].items():
        default = str(parameter.get("Default", ""))
        values[name] = default.split(",") if parameter["Type"] == "CommaDelimitedList" else default
    values.update({"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION})
    values.update(overrides)
    return values


def _lookup(name: str, values: dict[str, Any], attributes: dict[str, str]) -> Any:
    if name in values:
        return values[name]
    if name in attributes or name not in RESOURCES:
        return attributes[name]  # a KeyError names what the test forgot to supply
    return f"<{name}>"  # a resource id no test looks at (Vpc, subnets ...)


def _condition(name: str, values: dict[str, Any]) -> bool:
    (function, (left, right)), = DOC["Conditions"][name].items()
    assert function == "Fn::Equals"
    return bool(resolve(left, values) == resolve(right, values))


def resolve(node: Any, values: dict[str, Any] | None = None, attributes: dict[str, str] | None = None) -> Any:
    """``node`` with ``Ref``, ``Fn::Sub``, ``Fn::GetAtt``, ``Fn::If`` and ``Fn::Select`` replaced by values."""
    values = parameters() if values is None else values
    attributes = ATTRIBUTES if attributes is None else attributes
    if isinstance(node, list):
        return [resolve(item, values, attributes) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        return _lookup(node["Ref"], values, attributes)
    if set(node) == {"Fn::Sub"}:
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(_lookup(m[1], values, attributes)), node["Fn::Sub"])
    if set(node) == {"Fn::GetAtt"}:
        return attributes[".".join(node["Fn::GetAtt"])]
    if set(node) == {"Fn::If"}:
        name, if_true, if_false = node["Fn::If"]
        return resolve(if_true if _condition(name, values) else if_false, values, attributes)
    if set(node) == {"Fn::Select"}:
        index, items = node["Fn::Select"]
        return resolve(items, values, attributes)[int(index)]
    return {key: resolve(value, values, attributes) for key, value in node.items()}


def props(name: str) -> dict[str, Any]:
    return RESOURCES[name]["Properties"]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def key_policy() -> dict[str, Any]:
    return json.loads(resolve(props("TrailKey")["KeyPolicy"]))


# -- snippets --------------------------------------------------------------------------------------------
PARTS = ["network", "dynamodb-endpoint", "kms-endpoint", "trail-key", "trail-bucket", "trail", "break-glass-role",
         "break-glass-boundary", "break-glass-permissions"]


@pytest.mark.parametrize("part", PARTS)
def test_every_part_has_snippet_markers_in_order(part: str) -> None:
    start, end = f"# --8<-- [start:{part}]", f"# --8<-- [end:{part}]"
    assert TEMPLATE_TEXT.count(start) == 1 and TEMPLATE_TEXT.count(end) == 1
    assert TEMPLATE_TEXT.index(start) < TEMPLATE_TEXT.index(end)


# -- the endpoints ---------------------------------------------------------------------------------------
DYNAMODB_DATA_PLANE = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
                       "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                       "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"}
KMS_ADMINISTRATION = {"kms:CreateKey", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey",
                      "kms:CreateGrant", "kms:Encrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo"}


def _allowed(document: dict[str, Any], arn: str) -> set[str]:
    """The actions the Allow statements of an endpoint policy grant on ``arn``."""
    return {action for s in statements(document) if s["Effect"] == "Allow"
            and any(fnmatch.fnmatchcase(arn, pattern) for pattern in as_list(s["Resource"]))
            for action in as_list(s["Action"])}


def test_the_dynamodb_endpoint_allows_only_the_guides_tables_and_their_data_plane() -> None:
    endpoint = resolve(props("DynamoDbEndpoint"))
    assert (endpoint["VpcEndpointType"], endpoint["ServiceName"]) == ("Gateway", f"com.amazonaws.{REGION}.dynamodb")
    policy = endpoint["PolicyDocument"]
    assert all(s["Effect"] == "Allow" and "*" not in str(s["Action"]) for s in statements(policy))
    assert _allowed(policy, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{PREFIX}-payments") == DYNAMODB_DATA_PLANE
    assert _allowed(policy, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{PREFIX}-ledger") == DYNAMODB_DATA_PLANE
    for elsewhere in (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/other-payments",  # another team's table
                      f"arn:aws:dynamodb:{REGION}:210987654321:table/{PREFIX}-payments",  # another account
                      f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/{PREFIX}-payments"):  # another region
        assert _allowed(policy, elsewhere) == set(), elsewhere
    # no table is created, deleted, scanned or exported from inside the VPC
    assert not {"dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:Scan",
                "dynamodb:ExportTableToPointInTime"} & DYNAMODB_DATA_PLANE


def test_the_kms_endpoint_allows_only_this_accounts_keys_for_this_accounts_principals() -> None:
    endpoint = resolve(props("KmsEndpoint"))
    assert (endpoint["VpcEndpointType"], endpoint["PrivateDnsEnabled"]) == ("Interface", True)
    assert endpoint["ServiceName"] == f"com.amazonaws.{REGION}.kms"
    assert len(endpoint["SubnetIds"]) == 2 and props("KmsEndpoint")["SecurityGroupIds"] == [
        {"Ref": "EndpointSecurityGroup"}]
    policy = endpoint["PolicyDocument"]
    (statement,) = statements(policy)
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}
    granted = _allowed(policy, f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert {"kms:GenerateDataKey", "kms:Decrypt", "kms:GenerateMac", "kms:Sign"} <= granted
    assert not granted & KMS_ADMINISTRATION and all("*" not in action for action in granted)
    assert _allowed(policy, f"arn:aws:kms:{REGION}:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab") == set()


def test_the_endpoint_security_group_admits_only_tls_from_the_vpc() -> None:
    (ingress,) = props("EndpointSecurityGroup")["SecurityGroupIngress"]
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 443, 443)
    assert ingress["CidrIp"] == {"Ref": "VpcCidr"}
    vpc = props("Vpc")
    assert vpc["EnableDnsSupport"] is True and vpc["EnableDnsHostnames"] is True  # private DNS needs both
    # no internet gateway or NAT: the endpoints are the only ways out
    assert not {r["Type"] for r in RESOURCES.values()} & {"AWS::EC2::InternetGateway", "AWS::EC2::NatGateway"}


# -- the trail -------------------------------------------------------------------------------------------
def test_the_trail_is_single_region_validated_and_encrypted_with_the_templates_key() -> None:
    trail = props("Trail")
    assert trail["IsMultiRegionTrail"] is False and trail["IncludeGlobalServiceEvents"] is False
    assert trail["EnableLogFileValidation"] is True and trail["IsLogging"] is True
    assert trail["KMSKeyId"] == {"Fn::GetAtt": ["TrailKey", "Arn"]}
    assert trail["S3BucketName"] == {"Ref": "TrailBucket"}
    assert TRAIL_ARN == f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{resolve(trail['TrailName'])}"


def test_the_trail_selects_management_events_and_dynamodb_data_events_on_the_guides_tables() -> None:
    selectors = resolve(props("Trail")["AdvancedEventSelectors"])
    fields = [{s["Field"]: s for s in selector["FieldSelectors"]} for selector in selectors]
    management = [f for f in fields if f["eventCategory"]["Equals"] == ["Management"]]
    assert management == [{"eventCategory": {"Field": "eventCategory", "Equals": ["Management"]}}]  # KMS included
    (data,) = [f for f in fields if f["eventCategory"]["Equals"] == ["Data"]]
    assert data["resources.type"]["Equals"] == ["AWS::DynamoDB::Table"]
    assert data["resources.ARN"]["StartsWith"] == [f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{PREFIX}-"]


def test_the_trail_key_rotates_and_lets_cloudtrail_encrypt_only_for_this_trail() -> None:
    assert props("TrailKey")["EnableKeyRotation"] is True
    policy = key_policy()
    cloudtrail = [s for s in policy["Statement"] if s["Principal"] == {"Service": "cloudtrail.amazonaws.com"}]
    (encrypt,) = [s for s in cloudtrail if s["Action"] == "kms:GenerateDataKey"]
    assert encrypt["Condition"]["StringEquals"] == {"kms:EncryptionContext:aws:cloudtrail:arn": TRAIL_ARN,
                                                    "aws:SourceArn": TRAIL_ARN}
    assert {s["Action"] for s in cloudtrail} == {"kms:GenerateDataKey", "kms:DescribeKey"}  # never Decrypt
    # nobody may disable the key or schedule its deletion without first changing the key policy (logged)
    granted = {a for s in policy["Statement"] if s["Effect"] == "Allow" for a in as_list(s["Action"])}
    assert not granted & {"kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:DisableKeyRotation", "kms:*"}


# -- the bucket ------------------------------------------------------------------------------------------
def test_the_bucket_locks_every_log_in_compliance_mode_for_the_retention_parameter() -> None:
    bucket = RESOURCES["TrailBucket"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    lock = bucket["Properties"]["ObjectLockConfiguration"]
    assert bucket["Properties"]["ObjectLockEnabled"] is True and lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"] == {"Mode": "COMPLIANCE", "Days": {"Ref": "LogRetentionDays"}}
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "LogRetentionDays"}  # kept as long as the policy says, no longer
    assert DOC["Parameters"]["LogRetentionDays"]["Type"] == "Number"
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())


def test_the_bucket_refuses_plain_http_and_tls_before_1_2_and_only_this_trail_writes() -> None:
    policy = resolve(props("TrailBucketPolicy")["PolicyDocument"])
    by_sid = {s["Sid"]: s for s in statements(policy)}
    everything = [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]
    for sid, condition in (("DenyRequestsWithoutTls", {"Bool": {"aws:SecureTransport": "false"}}),
                           ("DenyTlsOlderThan12", {"NumericLessThan": {"s3:TlsVersion": "1.2"}})):
        statement = by_sid[sid]
        assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "s3:*")
        assert statement["Resource"] == everything and statement["Condition"] == condition
    write = by_sid["CloudTrailWritesThisAccountsLogs"]
    assert write["Action"] == "s3:PutObject" and write["Resource"] == f"arn:aws:s3:::{BUCKET}/AWSLogs/{ACCOUNT}/*"
    assert write["Condition"]["StringEquals"]["aws:SourceArn"] == TRAIL_ARN
    allows = [s for s in statements(policy) if s["Effect"] == "Allow"]
    assert {json.dumps(s["Principal"]) for s in allows} == {'{"Service": "cloudtrail.amazonaws.com"}'}


# -- the break-glass role --------------------------------------------------------------------------------
def test_the_break_glass_trust_policy_requires_fresh_mfa_and_the_incident_session_tags() -> None:
    role = props("BreakGlassRole")
    (statement,) = statements(role["AssumeRolePolicyDocument"])
    assert statement["Effect"] == "Allow" and statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    condition = statement["Condition"]
    assert condition["Bool"] == {"aws:MultiFactorAuthPresent": "true"}
    assert condition["NumericLessThanEquals"] == {"aws:MultiFactorAuthAge": "900"}
    assert condition["Null"]["aws:RequestTag/incident-id"] == "false"
    assert condition["ForAllValues:StringEquals"] == {"aws:TagKeys": ["incident-id", "operator"]}
    # one principal: the parameter, or this account's root when it is left empty
    assert resolve(statement["Principal"]) == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    responder = f"arn:aws:iam::{ACCOUNT}:role/incident-responders"
    assert resolve(statement["Principal"], parameters(BreakGlassPrincipalArn=responder)) == {"AWS": responder}


def test_a_session_lasts_an_hour_at_most_under_the_boundary() -> None:
    role = props("BreakGlassRole")
    assert role["MaxSessionDuration"] == 3600
    assert role["PermissionsBoundary"] == {"Ref": "BreakGlassBoundary"}


def _boundary() -> list[dict[str, Any]]:
    return statements(resolve(props("BreakGlassBoundary")["PolicyDocument"]))


def _denied(action: str, resource: str) -> bool:
    return any(s["Effect"] == "Deny" and action in as_list(s["Action"])
               and any(fnmatch.fnmatchcase(resource, r) for r in as_list(s["Resource"])) for s in _boundary())


@pytest.mark.parametrize(("action", "resource"), [
    ("cloudtrail:DeleteTrail", TRAIL_ARN),
    ("cloudtrail:StopLogging", TRAIL_ARN),
    ("kms:DisableKey", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/trail-key-id"),
    ("kms:ScheduleKeyDeletion", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/any-key"),
    ("s3:PutBucketObjectLockConfiguration", f"arn:aws:s3:::{BUCKET}"),
    ("s3:PutObjectRetention", f"arn:aws:s3:::{BUCKET}/AWSLogs/{ACCOUNT}/x.json.gz"),
    ("s3:DeleteObjectVersion", f"arn:aws:s3:::{BUCKET}/AWSLogs/{ACCOUNT}/x.json.gz"),
    ("iam:DeleteRolePermissionsBoundary", f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-break-glass"),
])
def test_the_boundary_denies_deleting_trails_disabling_keys_and_changing_object_lock(action: str,
                                                                                    resource: str) -> None:
    assert _denied(action, resource)


def test_the_role_is_given_only_what_its_boundary_allows_and_only_in_an_incident_session() -> None:
    ceiling = {a for s in _boundary() if s["Effect"] == "Allow" for a in as_list(s["Action"])}
    document = resolve(props("BreakGlassPermissions")["PolicyDocument"])
    granted = {a for s in statements(document) for a in as_list(s["Action"])}
    assert granted <= ceiling, granted - ceiling  # a grant beyond the boundary would silently do nothing
    for statement in statements(document):
        assert statement["Condition"]["Null"]["aws:PrincipalTag/incident-id"] == "false"
    (tasks,) = [s for s in statements(document) if s["Sid"] == "IncidentTasksOnTheGuidesResources"]
    assert tasks["Condition"]["Null"]["aws:ResourceTag/fasterpay:pattern"] == "false"
    assert props("BreakGlassPermissions")["Roles"] == [{"Ref": "BreakGlassRole"}]


# -- the SCP ---------------------------------------------------------------------------------------------
SCP_TEXT = SCP_PATH.read_text(encoding="utf-8")
SCP = json.loads(SCP_TEXT)


def test_the_scp_fits_the_size_limit() -> None:
    assert len(SCP_TEXT) <= 5120 and len(json.dumps(SCP, separators=(",", ":"))) <= 5120


def test_the_scp_denies_every_region_but_the_allowed_ones_except_global_services() -> None:
    (statement,) = SCP["Statement"]
    assert (statement["Effect"], statement["Resource"]) == ("Deny", "*") and "Action" not in statement
    assert statement["Condition"] == {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-2", "eu-west-1"]}}
    exempt = set(statement["NotAction"])
    assert {"iam:*", "sts:*", "cloudfront:*", "route53:*", "organizations:*", "support:*", "budgets:*", "ce:*",
            "pricing:*", "route53-recovery-control-config:*"} <= exempt


@pytest.mark.parametrize("action", ["dynamodb:PutItem", "kms:Decrypt", "kms:CreateKey", "s3:PutObject",
                                    "sqs:SendMessage", "lambda:CreateFunction", "kinesis:PutRecord",
                                    "logs:PutLogEvents", "cloudtrail:CreateTrail", "bedrock:InvokeModel"])
def test_the_scp_exempts_no_service_that_holds_payment_data(action: str) -> None:
    (statement,) = SCP["Statement"]
    assert not any(fnmatch.fnmatchcase(action, pattern) for pattern in statement["NotAction"]), action


# -- on moto ---------------------------------------------------------------------------------------------
def _moto_template() -> str:
    """The template without what moto's CloudFormation cannot create (the trail; its output names it)."""
    doc = parse_template(TEMPLATE_TEXT)
    del doc["Resources"]["Trail"]
    del doc["Outputs"]["TrailArn"]
    return json.dumps(doc)


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[AwsEnvironment, dict[str, str]]]:
    with pytest.MonkeyPatch.context() as patch, open_environment("moto", region=REGION) as env:
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # the VPC needs no AMIs; loading them takes seconds
        cloudformation = env.client("cloudformation")
        with warnings.catch_warnings():  # moto's "no CloudFormation support for AWS::S3::BucketPolicy": known
            warnings.filterwarnings("ignore", message="Tried to parse AWS::S3::BucketPolicy")
            cloudformation.create_stack(
                StackName="security", TemplateBody=_moto_template(), Capabilities=["CAPABILITY_NAMED_IAM"],
                Parameters=[{"ParameterKey": "SubnetCidrs", "ParameterValue": "10.20.0.0/24,10.20.1.0/24"}])
        stack = cloudformation.describe_stacks(StackName="security")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        yield env, {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def _attributes(outputs: dict[str, str]) -> dict[str, str]:
    bucket = outputs["TrailBucketName"]
    return {**ATTRIBUTES, "TrailBucket": bucket, "TrailBucket.Arn": f"arn:aws:s3:::{bucket}",
            "TrailKey.Arn": outputs["TrailKeyArn"], "TrailKey": outputs["TrailKeyArn"].rsplit("/", 1)[1]}


def _document(text: str) -> Any:
    """moto answers an endpoint policy set by CloudFormation as a Python repr (AWS: JSON)."""
    return json.loads(text) if text.lstrip().startswith('{"') else ast.literal_eval(text)


def test_on_moto_the_endpoints_deploy_with_the_templates_policies(
        deployed: tuple[AwsEnvironment, dict[str, str]]) -> None:
    env, outputs = deployed
    ec2 = env.client("ec2")
    found = {e["VpcEndpointId"]: e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]}
    dynamodb, kms = found[outputs["DynamoDbEndpointId"]], found[outputs["KmsEndpointId"]]
    assert dynamodb["ServiceName"] == f"com.amazonaws.{REGION}.dynamodb" and dynamodb["VpcEndpointType"] == "Gateway"
    assert _document(dynamodb["PolicyDocument"]) == resolve(props("DynamoDbEndpoint")["PolicyDocument"])
    assert kms["VpcEndpointType"] == "Interface" and kms["PrivateDnsEnabled"] is True
    assert len(kms["SubnetIds"]) == 2 and kms["VpcId"] == outputs["VpcId"]
    assert _document(kms["PolicyDocument"]) == resolve(props("KmsEndpoint")["PolicyDocument"])
    (group,) = ec2.describe_security_groups(GroupIds=[kms["Groups"][0]["GroupId"]])["SecurityGroups"]
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"], p["IpRanges"]) for p in group["IpPermissions"]] == [
        ("tcp", 443, 443, [{"CidrIp": "10.20.0.0/16"}])]


def test_on_moto_the_key_rotates_and_the_role_sits_under_its_boundary(
        deployed: tuple[AwsEnvironment, dict[str, str]]) -> None:
    env, outputs = deployed
    kms, iam = env.client("kms"), env.client("iam")
    assert kms.get_key_rotation_status(KeyId=outputs["TrailKeyArn"])["KeyRotationEnabled"] is True
    role = iam.get_role(RoleName=f"{PREFIX}-break-glass")["Role"]
    assert role["Arn"] == outputs["BreakGlassRoleArn"] and role["MaxSessionDuration"] == 3600
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == ATTRIBUTES["BreakGlassBoundary"]
    assert role["AssumeRolePolicyDocument"] == resolve(props("BreakGlassRole")["AssumeRolePolicyDocument"])
    attached = iam.list_attached_role_policies(RoleName=f"{PREFIX}-break-glass")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == [f"{PREFIX}-break-glass-tasks"]


def test_on_moto_the_trail_made_from_the_templates_properties_keeps_its_selectors(
        deployed: tuple[AwsEnvironment, dict[str, str]]) -> None:
    env, outputs = deployed
    trail = resolve(props("Trail"), attributes=_attributes(outputs))
    cloudtrail = env.client("cloudtrail")
    made = cloudtrail.create_trail(
        Name=trail["TrailName"], S3BucketName=trail["S3BucketName"], KmsKeyId=trail["KMSKeyId"],
        IsMultiRegionTrail=trail["IsMultiRegionTrail"], EnableLogFileValidation=trail["EnableLogFileValidation"],
        IncludeGlobalServiceEvents=trail["IncludeGlobalServiceEvents"], TagsList=trail["Tags"])
    cloudtrail.put_event_selectors(TrailName=made["TrailARN"], AdvancedEventSelectors=trail["AdvancedEventSelectors"])
    if trail["IsLogging"]:
        cloudtrail.start_logging(Name=made["TrailARN"])
    assert made["TrailARN"] == TRAIL_ARN
    (described,) = cloudtrail.describe_trails(trailNameList=[TRAIL_ARN])["trailList"]
    assert described["IsMultiRegionTrail"] is False and described["LogFileValidationEnabled"] is True
    assert outputs["TrailKeyArn"].endswith(described["KmsKeyId"])
    selectors = cloudtrail.get_event_selectors(TrailName=TRAIL_ARN)
    assert selectors["AdvancedEventSelectors"] == resolve(props("Trail")["AdvancedEventSelectors"])
    assert cloudtrail.get_trail_status(Name=TRAIL_ARN)["IsLogging"] is True


def test_on_moto_a_log_file_cannot_be_deleted_before_its_retention(
        deployed: tuple[AwsEnvironment, dict[str, str]]) -> None:
    env, outputs = deployed
    s3, bucket = env.client("s3"), outputs["TrailBucketName"]
    properties = resolve(props("TrailBucket"), attributes=_attributes(outputs))
    # moto's CloudFormation ignores these two properties and the bucket policy: apply them as written
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=properties["VersioningConfiguration"])
    lock = properties["ObjectLockConfiguration"]
    days = int(lock["Rule"]["DefaultRetention"]["Days"])
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": days}}})
    key = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/12/01/{ACCOUNT}_CloudTrail_{REGION}_0000Z_x.json.gz"
    version = s3.put_object(Bucket=bucket, Key=key, Body=b"{}")["VersionId"]
    head = s3.head_object(Bucket=bucket, Key=key)  # moto: no get_object_retention
    assert head["ObjectLockMode"] == "COMPLIANCE"
    expected = datetime.now(timezone.utc) + timedelta(days=days)
    assert abs(head["ObjectLockRetainUntilDate"] - expected) < timedelta(minutes=5)
    with pytest.raises(s3.exceptions.ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.head_object(Bucket=bucket, Key=key, VersionId=version)["ObjectLockMode"] == "COMPLIANCE"
    # last: moto evaluates a bucket policy without its conditions, so the TLS-only Deny then denies everything
    policy = resolve(props("TrailBucketPolicy")["PolicyDocument"], attributes=_attributes(outputs))
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
