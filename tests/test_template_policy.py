"""Every CloudFormation template passes cfn-lint and the guide's policy checks.

The checks read the templates themselves, because moto's CloudFormation ignores several of the
properties they are about (point-in-time recovery, ``Rules``, queue policies): point-in-time recovery
and retention on every data store, no wildcard actions in an Allow, encryption everywhere, TLS-only
buckets and queues, SQS event sources set as AWS advises, resources only in allowed regions, and every
SNS topic that a service notifies (alarms, budgets, cost anomaly detection) usable by that service.
The deploy helpers are checked too: scoped IAM unless told they run on moto, and no stack outside the
allowed regions.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

import fasterpay.audit.stack as audit_stack
import fasterpay.ledger.stack as ledger_stack
import fasterpay.pipeline.stack as pipeline_stack
import fasterpay.vault.stack as vault_stack
from fasterpay.aws import AwsEnvironment, open_environment
from simulations.templates import PSEUDO, parse_template, resolve

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "reference" / "fasterpay" / "cloudformation"
TEMPLATES = sorted(TEMPLATE_DIR.glob("*.yaml"))
LINT_REGIONS = ["eu-west-2", "us-east-1"]
DATA_STORES = ("AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::S3::Bucket")
NO_VALUE = {"Ref": "AWS::NoValue"}


def load(path: Path) -> dict[str, Any]:
    return parse_template(path.read_text(encoding="utf-8"))


def _resources(*types: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(template, logical id, resource) for every resource of ``types`` in every template."""
    return [(path.stem, name, resource) for path in TEMPLATES
            for name, resource in load(path)["Resources"].items() if resource["Type"] in types]


def _ids(rows: list[tuple[Any, ...]]) -> list[str]:
    return [f"{row[0]}:{row[1]}" for row in rows]


def _defaults(template: dict[str, Any]) -> dict[str, Any]:
    return {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}


def _value(expr: Any, params: dict[str, Any]) -> Any:
    if isinstance(expr, dict) and set(expr) == {"Ref"}:
        return params[expr["Ref"]]
    return expr


def _holds(condition: Any, template: dict[str, Any], params: dict[str, Any]) -> bool:
    """Evaluate a condition (by name or expression) with the given parameter values."""
    if isinstance(condition, str):
        condition = template["Conditions"][condition]
    (fn, args), = condition.items()
    if fn == "Condition":
        return _holds(args, template, params)
    if fn == "Fn::Equals":
        return _value(args[0], params) == _value(args[1], params)
    if fn == "Fn::Not":
        return not _holds(args[0], template, params)
    if fn == "Fn::And":
        return all(_holds(a, template, params) for a in args)
    if fn == "Fn::Or":
        return any(_holds(a, template, params) for a in args)
    raise AssertionError(f"unknown condition function {fn}")


def _deployed_by_default(template: dict[str, Any], resource: dict[str, Any]) -> bool:
    return "Condition" not in resource or _holds(resource["Condition"], template, _defaults(template))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(document: Any) -> Iterator[dict[str, Any]]:
    """Every statement of a policy document, both branches of an ``!If`` included."""
    pending = list(_as_list(document.get("Statement", [])))  # a copy: popping must not empty the template
    while pending:
        statement = pending.pop()
        if statement == NO_VALUE:
            continue
        if set(statement) == {"Fn::If"}:
            pending.extend(statement["Fn::If"][1:])
            continue
        yield statement


def _documents(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every policy document a resource carries: IAM, bucket, queue and key policies."""
    props = resource.get("Properties", {})
    for key in ("PolicyDocument", "AssumeRolePolicyDocument"):
        if key in props:
            yield props[key]
    for inline in props.get("Policies", []):
        yield inline["PolicyDocument"]
    if "KeyPolicy" in props:
        policy = props["KeyPolicy"]
        if set(policy) == {"Fn::Sub"}:  # a JSON string; ${...} placeholders sit inside JSON strings
            text = policy["Fn::Sub"] if isinstance(policy["Fn::Sub"], str) else policy["Fn::Sub"][0]
            policy = json.loads(text)
        yield policy


def _tls_only(statement: dict[str, Any], service: str) -> bool:
    """A Deny, for everybody, of every action of ``service``, on requests not made over TLS."""
    secure = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
    return (statement.get("Effect") == "Deny" and statement.get("Principal") in ("*", {"AWS": "*"})
            and bool(set(_as_list(statement.get("Action"))) & {"*", f"{service}:*"})
            and str(secure).lower() == "false")


# -- cfn-lint ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_cfn_lint_reports_no_error_and_no_warning(path: Path) -> None:
    matches = lint_file(path, ManualArgs(regions=LINT_REGIONS))
    found = [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches if m.rule.id[0] in "EW"]
    assert found == []


def test_every_template_is_checked() -> None:
    assert {p.stem for p in TEMPLATES} >= {"audit", "ledger", "pipeline", "vault"}


# -- point-in-time recovery, retention, encryption -----------------------------------------------------
TABLES = _resources("AWS::DynamoDB::Table")
STORES = _resources(*DATA_STORES)
QUEUES = _resources("AWS::SQS::Queue")
BUCKETS = _resources("AWS::S3::Bucket")


@pytest.mark.parametrize(("template", "name", "table"), TABLES, ids=_ids(TABLES))
def test_every_table_has_point_in_time_recovery(template: str, name: str, table: dict[str, Any]) -> None:
    # each table holds payments, tokens, audit records, ledger entries or idempotency state
    pitr = table["Properties"].get("PointInTimeRecoverySpecification", {})
    assert pitr.get("PointInTimeRecoveryEnabled") is True


@pytest.mark.parametrize(("template", "name", "store"), STORES, ids=_ids(STORES))
def test_every_key_table_and_bucket_is_retained(template: str, name: str, store: dict[str, Any]) -> None:
    assert (store.get("DeletionPolicy"), store.get("UpdateReplacePolicy")) == ("Retain", "Retain")


@pytest.mark.parametrize(("template", "name", "table"), TABLES, ids=_ids(TABLES))
def test_every_table_is_encrypted(template: str, name: str, table: dict[str, Any]) -> None:
    sse = table["Properties"].get("SSESpecification", {})
    assert sse.get("SSEEnabled") is True or "KMSMasterKeyId" in sse


@pytest.mark.parametrize(("template", "name", "queue"), QUEUES, ids=_ids(QUEUES))
def test_every_queue_is_encrypted(template: str, name: str, queue: dict[str, Any]) -> None:
    props = queue["Properties"]
    assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props


@pytest.mark.parametrize(("template", "name", "bucket"), BUCKETS, ids=_ids(BUCKETS))
def test_every_bucket_is_encrypted(template: str, name: str, bucket: dict[str, Any]) -> None:
    rules = bucket["Properties"].get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    algorithms = {r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules}
    assert rules and algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}


# -- IAM: no wildcard actions --------------------------------------------------------------------------
@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_no_allow_statement_grants_a_wildcard_action(path: Path) -> None:
    """No ``"*"``, ``dynamodb:*``, ``kms:*``, ``s3:*``, ``sqs:*`` or ``kms:Get*`` in an Allow; Deny may use them."""
    allows, wildcards = 0, []
    for name, resource in load(path)["Resources"].items():
        for document in _documents(resource):
            for statement in _statements(document):
                if statement.get("Effect") != "Allow":
                    continue
                allows += 1
                assert "NotAction" not in statement, f"{name}: an Allow with NotAction grants everything else"
                actions = statement["Action"]
                actions = actions["Fn::If"][1:] if isinstance(actions, dict) else _as_list(actions)
                wildcards += [f"{name}: {a}" for a in actions if not isinstance(a, str) or "*" in a]
    assert allows > 0
    assert wildcards == []


# -- TLS only ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("template", "name", "bucket"), BUCKETS, ids=_ids(BUCKETS))
def test_every_bucket_refuses_requests_without_tls(template: str, name: str, bucket: dict[str, Any]) -> None:
    doc = load(TEMPLATE_DIR / f"{template}.yaml")
    assert _deployed_by_default(doc, bucket)
    policies = [r for r in doc["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"
                and r["Properties"]["Bucket"] == {"Ref": name} and _deployed_by_default(doc, r)]
    objects = {"Fn::Sub": f"${{{name}.Arn}}/*"}
    assert any(_tls_only(s, "s3") and {"Fn::GetAtt": [name, "Arn"]} in _as_list(s["Resource"])
               and objects in _as_list(s["Resource"])
               for p in policies for s in _statements(p["Properties"]["PolicyDocument"]))


@pytest.mark.parametrize(("template", "name", "queue"), QUEUES, ids=_ids(QUEUES))
def test_every_queue_refuses_requests_without_tls(template: str, name: str, queue: dict[str, Any]) -> None:
    doc = load(TEMPLATE_DIR / f"{template}.yaml")
    policies = [r for r in doc["Resources"].values() if r["Type"] == "AWS::SQS::QueuePolicy"
                and {"Ref": name} in r["Properties"]["Queues"] and _deployed_by_default(doc, r)]
    assert any(_tls_only(s, "sqs") and {"Fn::GetAtt": [name, "Arn"]} in _as_list(s["Resource"])
               for p in policies for s in _statements(p["Properties"]["PolicyDocument"]))


# -- SQS: event sources, redrive, retention ------------------------------------------------------------
def _number(value: Any, template: dict[str, Any], *, floor: bool = False) -> int:
    """A literal number, or a parameter's default (its MinValue when ``floor``: the least it can be)."""
    if isinstance(value, dict):
        parameter = template["Parameters"][value["Ref"]]
        return int(parameter["MinValue"] if floor else parameter["Default"])
    return int(value)


MAPPINGS = _resources("AWS::Lambda::EventSourceMapping")


@pytest.mark.parametrize(("template", "name", "mapping"), MAPPINGS, ids=_ids(MAPPINGS))
def test_event_source_queues_hide_a_message_six_times_the_function_timeout(
        template: str, name: str, mapping: dict[str, Any]) -> None:
    resources = load(TEMPLATE_DIR / f"{template}.yaml")["Resources"]
    queue, attribute = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"]
    function = resources[mapping["Properties"]["FunctionName"]["Ref"]]
    assert attribute == "Arn" and resources[queue]["Type"] == "AWS::SQS::Queue"
    timeout = int(function["Properties"].get("Timeout", 3))
    assert int(resources[queue]["Properties"]["VisibilityTimeout"]) >= 6 * timeout


def test_the_pipeline_has_event_sources_to_check() -> None:
    assert {n for t, n, _ in MAPPINGS if t == "pipeline"} == {"AcceptEventSourceMapping", "ClearEventSourceMapping"}


@pytest.mark.parametrize(("template", "name", "queue"), QUEUES, ids=_ids(QUEUES))
def test_every_queue_sets_retention_and_redrives_after_five_receives(
        template: str, name: str, queue: dict[str, Any]) -> None:
    doc = load(TEMPLATE_DIR / f"{template}.yaml")
    props = queue["Properties"]
    assert "MessageRetentionPeriod" in props
    redrive = props.get("RedrivePolicy")
    if redrive is None:  # then it is a dead-letter queue itself
        target = {"Fn::GetAtt": [name, "Arn"]}
        sources = [r for r in doc["Resources"].values() if r["Type"] == "AWS::SQS::Queue"
                   and r["Properties"].get("RedrivePolicy", {}).get("deadLetterTargetArn") == target]
        assert sources, f"{name} has no dead-letter queue and is none"
        return
    assert _number(redrive["maxReceiveCount"], doc, floor=True) >= 5
    assert _number(redrive["maxReceiveCount"], doc) >= 5
    dead_letter = doc["Resources"][redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
    # a standard queue's message keeps its age in the dead-letter queue: that one must keep it longer
    assert int(dead_letter["MessageRetentionPeriod"]) >= int(props["MessageRetentionPeriod"])


# -- data residency ------------------------------------------------------------------------------------
REGION = re.compile(r"\b(?:af|ap|ca|cn|eu|il|me|mx|sa|us)-(?:gov-)?[a-z]+-\d\b")


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_stacks_deploy_only_in_allowed_regions(path: Path) -> None:
    doc = load(path)
    allowed = doc["Parameters"]["AllowedRegions"]
    assert allowed["Type"] == "CommaDelimitedList" and allowed["Default"] == "eu-west-2"
    asserts = [a["Assert"] for rule in doc.get("Rules", {}).values() if "Condition" not in rule
               for a in rule["Assertions"]]
    assert {"Fn::Contains": [{"Ref": "AllowedRegions"}, {"Ref": "AWS::Region"}]} in asserts
    # and no resource names a region of its own (an ARN or endpoint elsewhere)
    assert [s for s in _strings(doc["Resources"]) if REGION.search(s)] == []


# -- the deploy helpers --------------------------------------------------------------------------------
HELPERS: dict[str, Callable[..., Any]] = {
    "pipeline": lambda cfn, **kw: pipeline_stack.deploy_pipeline(cfn, **kw),
    "ledger": lambda cfn, **kw: ledger_stack.deploy_ledger(cfn, **kw),
    "vault": lambda cfn, **kw: vault_stack.deploy_vault(cfn, None, **kw),
    "audit": lambda cfn, **kw: audit_stack.deploy_audit(cfn, None, None, **kw),
}
MODULES = {"pipeline": pipeline_stack, "ledger": ledger_stack, "vault": vault_stack, "audit": audit_stack}


class _Captured(Exception):
    """Raised by the stand-in ``deploy_stack`` once it has seen the parameters."""


@pytest.mark.parametrize("stack", sorted(HELPERS))
def test_on_moto_is_keyword_only_and_off_by_default(stack: str) -> None:
    helper = getattr(MODULES[stack], f"deploy_{stack}")
    parameter = inspect.signature(helper).parameters["on_moto"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is False


@pytest.mark.parametrize("stack", sorted(HELPERS))
def test_a_helper_called_without_the_flag_deploys_scoped_iam_and_every_policy(
        stack: str, env: AwsEnvironment, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str] = {}

    def capture(_cfn: Any, *, parameters: dict[str, str], **_: Any) -> dict[str, str]:
        seen.update(parameters)
        raise _Captured

    monkeypatch.setattr(MODULES[stack], "deploy_stack", capture)
    with pytest.raises(_Captured):  # no KMS or S3 call comes first: those are moto's workarounds
        HELPERS[stack](env.client("cloudformation"))
    doc = load(TEMPLATE_DIR / f"{stack}.yaml")
    for switch, production in {"ScopeToResources": "true", "EventSourceMappings": "enabled",
                               "QueuePolicies": "enabled"}.items():
        if switch in doc["Parameters"]:
            assert seen.get(switch, doc["Parameters"][switch]["Default"]) == production, switch
    assert seen["AllowedRegions"] == "eu-west-2"
    assert not {"TokenMacKeyArn", "SigningKeyArn", "AuditBucketName"} & set(seen)


@pytest.mark.parametrize("stack", sorted(HELPERS))
def test_a_region_outside_the_allowed_ones_is_refused_before_anything_is_created(stack: str) -> None:
    with open_environment("moto", region="us-east-1") as env:
        cloudformation, kms = env.client("cloudformation"), env.client("kms")
        with pytest.raises(ValueError, match="allowed_regions"):
            HELPERS[stack](cloudformation, on_moto=True)
        assert cloudformation.list_stacks()["StackSummaries"] == []
        assert kms.list_keys()["Keys"] == []


def test_allowed_regions_are_set_per_deployment_and_reach_the_template() -> None:
    with open_environment("moto", region="us-east-1") as env:
        cloudformation = env.client("cloudformation")
        ledger_stack.deploy_ledger(cloudformation, name_prefix="dr", on_moto=True,
                                   allowed_regions=("eu-west-2", "us-east-1"))
        stack = cloudformation.describe_stacks(StackName="dr-ledger")["Stacks"][0]
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
        # AWS shows a list parameter as "a,b"; moto as "['a', 'b']"
        assert REGION.findall(parameters["AllowedRegions"]) == ["eu-west-2", "us-east-1"]


# -- cost allocation ------------------------------------------------------------------------------------
#: Resource types that take tags in CloudFormation and are billed (or hold what is billed); a global table's
#: tags sit on each replica.
TAGGABLE = ("AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::IAM::Role", "AWS::Lambda::Function", "AWS::SQS::Queue",
            "AWS::S3::Bucket", "AWS::SNS::Topic", "AWS::Bedrock::Guardrail", "AWS::CloudWatch::Alarm",
            "AWS::Lambda::EventSourceMapping", "AWS::CE::AnomalyMonitor")
COST_TAGS = {"cost-centre": {"Ref": "CostCentre"}}


def _tags(resource: dict[str, Any]) -> list[list[dict[str, Any]]]:
    props = resource.get("Properties", {})
    if resource["Type"] == "AWS::DynamoDB::GlobalTable":
        return [replica.get("Tags", []) for replica in props["Replicas"]]
    if resource["Type"] == "AWS::CE::AnomalyMonitor":
        return [props.get("ResourceTags", [])]
    return [props.get("Tags", [])]


@pytest.mark.parametrize(("template", "name", "resource"), _resources(*TAGGABLE, "AWS::DynamoDB::GlobalTable"),
                         ids=_ids(_resources(*TAGGABLE, "AWS::DynamoDB::GlobalTable")))
def test_every_billed_resource_carries_the_cost_allocation_tags(template: str, name: str,
                                                                resource: dict[str, Any]) -> None:
    doc = load(TEMPLATE_DIR / f"{template}.yaml")
    assert "CostCentre" in doc["Parameters"]
    for tags in _tags(resource):
        found = {tag["Key"]: tag["Value"] for tag in tags}
        assert found.get("cost-centre") == COST_TAGS["cost-centre"], f"{name}: no cost-centre tag"
        assert found.get("fasterpay:pattern") == template, f"{name}: fasterpay:pattern must name {template}"


def test_every_template_has_resources_to_tag() -> None:
    tagged = {row[0] for row in _resources(*TAGGABLE, "AWS::DynamoDB::GlobalTable")}
    assert tagged == {path.stem for path in TEMPLATES}


# -- SNS: every service that notifies a topic can publish to it ------------------------------------------
ALARM_ARN = "arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


def _alarm_addresses(props: dict[str, Any]) -> list[Any]:
    return [a for key in ("AlarmActions", "OKActions", "InsufficientDataActions") for a in props.get(key, [])]


NOTIFIERS: dict[str, tuple[str, str, Callable[[dict[str, Any]], Any], Callable[[dict[str, Any]], list[Any]]]] = {
    "AWS::CloudWatch::Alarm": ("cloudwatch.amazonaws.com", ALARM_ARN, lambda p: p["AlarmName"], _alarm_addresses),
    "AWS::CloudWatch::CompositeAlarm": ("cloudwatch.amazonaws.com", ALARM_ARN, lambda p: p["AlarmName"],
                                        _alarm_addresses),
    "AWS::Budgets::Budget": (
        "budgets.amazonaws.com", "arn:aws:budgets::{account}:budget/{name}", lambda p: p["Budget"]["BudgetName"],
        lambda p: [s["Address"] for n in p.get("NotificationsWithSubscribers", []) for s in n["Subscribers"]
                   if s["SubscriptionType"] == "SNS"]),
    "AWS::CE::AnomalySubscription": (  # AWS assigns the subscription's id: any id stands in for it
        "costalerts.amazonaws.com", "arn:aws:ce::{account}:anomalysubscription/{name}", lambda p: "example",
        lambda p: [s["Address"] for s in p.get("Subscribers", []) if s["Type"] == "SNS"]),
}
"""Resource types that notify SNS topics: the service principal that publishes for them, their ``aws:SourceArn``
(a format), where their name is, and their SNS addresses."""

SOURCE_KEYS_ON_KMS = {"cloudwatch.amazonaws.com"}
"""Services whose KMS requests for an encrypted topic carry ``aws:SourceAccount`` and ``aws:SourceArn``, as
CloudWatch documents. For the others the guide relies only on the encryption context that SNS itself sets
(``aws:sns:topicArn``), which every call carries."""


def _notified_topics() -> list[tuple[str, str, str, str]]:
    """(template, topic, notifying resource, its service) for every topic notified, by ``Ref``, in its own
    template."""
    rows = []
    for path in TEMPLATES:
        resources = load(path)["Resources"]
        for name, resource in resources.items():
            if resource["Type"] not in NOTIFIERS:
                continue
            service, _, _, addresses = NOTIFIERS[resource["Type"]]
            topics = {a["Ref"] for a in addresses(resource["Properties"]) if isinstance(a, dict) and set(a) == {"Ref"}}
            rows += [(path.stem, topic, name, service) for topic in sorted(topics)
                     if resources.get(topic, {}).get("Type") == "AWS::SNS::Topic"]
    return rows


NOTIFIED = _notified_topics()


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    """IAM condition evaluation for the operators the templates use; a key the request lacks fails the test."""
    for operator, tests in condition.items():
        for key, expected in tests.items():
            if key not in context:
                return False
            value, patterns = context[key], [str(e) for e in _as_list(expected)]
            if operator in ("StringEquals", "ArnEquals"):
                ok = value in patterns
            elif operator in ("StringLike", "ArnLike"):
                ok = any(re.fullmatch(re.escape(p).replace(r"\*", ".*").replace(r"\?", "."), value) for p in patterns)
            elif operator == "Bool":
                ok = value.lower() in [p.lower() for p in patterns]
            else:
                raise AssertionError(f"condition operator {operator} is not evaluated here")
            if not ok:
                return False
    return True


def _applies(statement: dict[str, Any], service: str, action: str, resource: str | None,
             context: dict[str, str]) -> bool:
    """Whether a (resolved) statement matches a request by ``service`` for ``action`` on ``resource``."""
    principal = statement.get("Principal")
    if principal not in ("*", {"AWS": "*"}) and service not in _as_list(principal.get("Service", [])):
        return False
    actions = {str(a).lower() for a in _as_list(statement.get("Action", []))}
    if not actions & {action.lower(), f"{action.split(':')[0].lower()}:*", "*"}:
        return False
    if resource is not None and not {resource, "*"} & set(_as_list(statement.get("Resource"))):
        return False
    return _condition_holds(statement.get("Condition", {}), context)


def _allowed(statements: list[dict[str, Any]], service: str, action: str, resource: str | None,
             context: dict[str, str]) -> bool:
    """An Allow matches and no Deny does (the request is made over TLS)."""
    context = context | {"aws:SecureTransport": "true"}
    matching = [s for s in statements if _applies(s, service, action, resource, context)]
    return any(s["Effect"] == "Allow" for s in matching) and not any(s["Effect"] == "Deny" for s in matching)


def test_the_notified_topics_are_found() -> None:
    found = {(template, topic, service) for template, topic, _, service in NOTIFIED}
    assert {("finops", "AlertTopic", "budgets.amazonaws.com"), ("finops", "AlertTopic", "costalerts.amazonaws.com"),
            ("finops", "AlertTopic", "cloudwatch.amazonaws.com"), ("operations", "PageTopic", "cloudwatch.amazonaws.com"),
            ("operations", "TicketTopic", "cloudwatch.amazonaws.com")} <= found


def _notification_problems(doc: dict[str, Any], topic: str, source: str, service: str) -> list[str]:
    """Why ``service`` could not deliver ``source``'s notifications to ``topic`` (nothing when it can): the
    topic's key is not a key of the template (an AWS managed key such as ``alias/aws/sns`` cannot grant a
    service), its key policy does not let the service use it for this topic, or the topic policy does not let
    the service publish for this very resource (its ``aws:SourceArn``), or lets another account publish."""
    resources = doc["Resources"]
    account, region = PSEUDO["AWS::AccountId"], PSEUDO["AWS::Region"]
    topic_arn = f"arn:aws:sns:{region}:{account}:{resolve(doc, resources[topic]['Properties']['TopicName'])}"
    _, arn_format, name_of, _ = NOTIFIERS[resources[source]["Type"]]
    name = resolve(doc, name_of(resources[source]["Properties"]))
    source_arn = arn_format.format(region=region, account=account, name=name)

    key = resources[topic]["Properties"].get("KmsMasterKeyId")
    if not (isinstance(key, dict) and set(key) == {"Ref"} and resources[key["Ref"]]["Type"] == "AWS::KMS::Key"):
        return [f"{topic}: {key!r} is not a key of this template"]
    key_policy = resolve(doc, resources[key["Ref"]]["Properties"]["KeyPolicy"])
    key_policy = json.loads(key_policy) if isinstance(key_policy, str) else key_policy
    kms_context = {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}
    if service in SOURCE_KEYS_ON_KMS:
        kms_context |= {"aws:SourceAccount": account, "aws:SourceArn": source_arn}
    statements = list(_statements(key_policy))
    problems = [f"{service} may not {action} with {key['Ref']}" for action in ("kms:GenerateDataKey", "kms:Decrypt")
                if not _allowed(statements, service, action, None, kms_context)]

    policies = [resolve(doc, r["Properties"]["PolicyDocument"], attributes={topic: topic_arn})
                for r in resources.values()
                if r["Type"] == "AWS::SNS::TopicPolicy" and {"Ref": topic} in r["Properties"]["Topics"]]
    statements = [s for policy in policies for s in _statements(policy)]
    sns_context = {"aws:SourceAccount": account, "aws:SourceArn": source_arn}
    if not _allowed(statements, service, "sns:Publish", topic_arn, sns_context):
        problems.append(f"{service} may not publish to {topic}")
    other_account = sns_context | {"aws:SourceAccount": "210987654321",
                                   "aws:SourceArn": source_arn.replace(account, "210987654321")}
    if _allowed(statements, service, "sns:Publish", topic_arn, other_account):
        problems.append(f"another account's {service} may publish to {topic}")
    return problems


@pytest.mark.parametrize(("template", "topic", "source", "service"), NOTIFIED,
                         ids=[f"{t}:{s}->{n}" for t, n, s, _ in NOTIFIED])
def test_every_service_that_notifies_a_topic_may_use_its_key_and_publish_to_it(
        template: str, topic: str, source: str, service: str) -> None:
    """An alarm, budget or anomaly subscription whose topic it cannot use fails without an error in AWS: the
    notification is dropped."""
    assert _notification_problems(load(TEMPLATE_DIR / f"{template}.yaml"), topic, source, service) == []


def test_a_key_grant_on_a_condition_the_service_does_not_send_is_refused() -> None:
    """Budgets' KMS requests are not documented to carry ``aws:SourceAccount``: a grant conditioned on it would
    never match, and the check must say so rather than assume the key is there."""
    text = (TEMPLATE_DIR / "finops.yaml").read_text(encoding="utf-8")
    context = '"kms:EncryptionContext:aws:sns:topicArn": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:' \
              '${NamePrefix}-finops-alerts"'
    assert context in text
    doc = parse_template(text.replace(context, '"aws:SourceAccount": "${AWS::AccountId}"'))
    assert _notification_problems(doc, "AlertTopic", "MonthlyBudget", "budgets.amazonaws.com") == [
        "budgets.amazonaws.com may not kms:GenerateDataKey with AlertKey",
        "budgets.amazonaws.com may not kms:Decrypt with AlertKey"]
    assert _notification_problems(doc, "AlertTopic", "CostPerTransactionAlarm", "cloudwatch.amazonaws.com") == []
