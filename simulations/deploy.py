"""Deploy every stack of the guide under one name prefix, estimate what it costs idle, and tear it down.

* :func:`estimate_idle_cost`: what the deployed stacks cost per day with no traffic, computed from the
  templates (which resources they declare) and the dated price table in :mod:`fasterpay.pricing`. It
  makes no AWS call.
* :func:`deploy_all`: the vault, ledger, audit and pipeline stacks under ``<prefix>-``, wired as the
  pipeline bench wires them. The packaged functions (``make package``) are uploaded to a code bucket
  of the same prefix when the zip exists; otherwise the pipeline's functions are placeholders. Every
  KMS key is tagged and given an alias, so that teardown can find it after its stack is gone.
* :func:`teardown_all`: deletes the stacks, then everything they retain (``DeletionPolicy: Retain``)
  or that deploy created outside them: tables, queues, buckets (emptied as far as Object Lock allows),
  functions, log groups, alarms, IAM roles and policies, aliases; KMS keys are scheduled for deletion
  with the shortest waiting period. Running it again finds nothing left to delete and succeeds.

Names are matched exactly against the names the templates give for the prefix (plus the buckets
deploy creates itself), never by prefix alone: ``teardown --prefix fp`` leaves ``fp-trial-vault``
alone. The command line is ``python -m simulations deploy|teardown`` (:mod:`simulations.cli`).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from fasterpay.aws import AwsEnvironment, Backend, StackDeployError
from fasterpay.pricing import DEFAULT_PRICES, FREE_SERVICES, PRICE_PROVENANCE, PRICE_TABLES, PriceTable
from simulations.templates import parse_template

__all__ = [
    "DEFAULT_PACKAGE",
    "DEFAULT_PREFIX",
    "IDLE_POLLERS_PER_MAPPING",
    "KEY_DELETION_WINDOW_DAYS",
    "STACKS",
    "CostLine",
    "Deployment",
    "IdleEstimate",
    "Inventory",
    "LeftBehind",
    "PrefixInUseError",
    "TeardownReport",
    "deploy_all",
    "estimate_idle_cost",
    "estimate_markdown",
    "inventory",
    "teardown_all",
]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PREFIX = "fp-trial"
DEFAULT_PACKAGE = REPO / "build" / "lambda" / "fasterpay-lambda.zip"
STACKS = ("vault", "ledger", "audit", "pipeline")
"""The stacks, in the order deploy creates them (``<prefix>-<name>``); teardown deletes them in reverse."""
KEY_DELETION_WINDOW_DAYS = 7
"""The shortest waiting period KMS allows before it deletes a key."""
PREFIX_TAG = "fasterpay:name-prefix"
KEY_ALIASES = ("vault-key", "token-mac-key", "audit-signing-key")
"""Aliases deploy gives the keys: ``alias/<prefix>-<name>``."""
IDLE_POLLERS_PER_MAPPING = 5
"""Assumed: long-polling ReceiveMessage connections Lambda keeps open per SQS event source mapping when
the queue is empty. AWS does not publish the idle number; five is the batch concurrency Lambda starts
with when messages arrive."""
LONG_POLL_SECONDS = 20
"""Assumed: each idle poll waits the longest SQS allows (20 s) before it returns empty."""
_PENDING = ("PendingDeletion", "PendingReplicaDeletion")
_PREFIX_RE = re.compile(r"[a-z][a-z0-9-]{1,20}")
_NAME_PROPERTY = {
    "AWS::DynamoDB::Table": ("table", "TableName"),
    "AWS::SQS::Queue": ("queue", "QueueName"),
    "AWS::IAM::Role": ("role", "RoleName"),
    "AWS::IAM::ManagedPolicy": ("policy", "ManagedPolicyName"),
    "AWS::S3::Bucket": ("bucket", "BucketName"),
    "AWS::Lambda::Function": ("function", "FunctionName"),
    "AWS::Logs::LogGroup": ("log group", "LogGroupName"),
    "AWS::CloudWatch::Alarm": ("alarm", "AlarmName"),
    "AWS::KMS::Alias": ("alias", "AliasName"),
}
KINDS = ("function", "log group", "alarm", "table", "queue", "role", "policy", "alias", "bucket")
"""The kinds :func:`teardown_all` deletes after the stacks, in this order (roles before their policies)."""


class PrefixInUseError(RuntimeError):
    """Something named for this prefix already exists: tear it down first, or choose another prefix."""


def check_prefix(prefix: str) -> str:
    """The prefix, if the templates accept it (``[a-z][a-z0-9-]{1,20}``); ``ValueError`` otherwise."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"prefix {prefix!r} must match [a-z][a-z0-9-]{{1,20}} (the templates' NamePrefix), "
                         f"e.g. {DEFAULT_PREFIX!r}")
    return prefix


# ----------------------------------------------------------------------------------------------------
# The templates, read as data


def templates() -> dict[str, dict[str, Any]]:
    """Each stack's template, parsed (``{"vault": {...}, ...}``)."""
    from fasterpay.audit.stack import audit_template
    from fasterpay.ledger.stack import ledger_template
    from fasterpay.pipeline.stack import pipeline_template
    from fasterpay.vault.stack import vault_template

    texts = {"vault": vault_template(), "ledger": ledger_template(), "audit": audit_template(),
             "pipeline": pipeline_template()}
    return {name: _parse(text) for name, text in texts.items()}


@functools.lru_cache(maxsize=16)
def _parse(text: str) -> dict[str, Any]:
    return parse_template(text)  # cached: the templates do not change while the process runs


def _resources(parsed: Mapping[str, Mapping[str, Any]]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for stack, template in parsed.items():
        for logical_id, resource in (template.get("Resources") or {}).items():
            yield stack, logical_id, resource


def _name_pattern(value: Any, substitutions: Mapping[str, str]) -> str | None:
    """A regex for a resource's name property: literal, or ``!Sub`` with the known variables filled in."""
    if isinstance(value, str):
        return re.escape(value)
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        if isinstance(text, list):
            text = text[0]
        if not isinstance(text, str):
            return None
        parts = re.split(r"(\$\{[^}]+\})", text)
        out = []
        for part in parts:
            if part.startswith("${") and part.endswith("}"):
                known = substitutions.get(part[2:-1])
                out.append(re.escape(known) if known is not None else r"[^/\s]+")
            else:
                out.append(re.escape(part))
        return "".join(out)
    return None


@dataclass(frozen=True)
class NamePatterns:
    """The names a deployment under one prefix uses, by kind, as anchored regular expressions."""

    prefix: str
    stacks: tuple[str, ...]
    patterns: Mapping[str, tuple[re.Pattern[str], ...]]

    def matches(self, kind: str, name: str) -> bool:
        return any(p.fullmatch(name) for p in self.patterns.get(kind, ()))


def code_bucket_name(prefix: str, account: str, region: str) -> str:
    """The bucket deploy creates for the packaged functions."""
    return f"{prefix}-code-{account}-{region}"


def name_patterns(prefix: str, *, account: str, region: str, partition: str = "aws") -> NamePatterns:
    """Every name the templates give for ``prefix`` in this account and region, plus deploy's own buckets.

    A resource without a name property gets CloudFormation's generated name ``<stack>-<LogicalId>-<suffix>``.
    """
    check_prefix(prefix)
    stacks = tuple(f"{prefix}-{name}" for name in STACKS)
    found: dict[str, list[str]] = {}
    for stack, logical_id, resource in _resources(templates()):
        kind_property = _NAME_PROPERTY.get(resource.get("Type", ""))
        if kind_property is None:
            continue
        kind, prop = kind_property
        stack_name = f"{prefix}-{stack}"
        value = (resource.get("Properties") or {}).get(prop)
        substitutions = {"NamePrefix": prefix, "AWS::AccountId": account, "AWS::Region": region,
                         "AWS::Partition": partition, "AWS::StackName": stack_name}
        pattern = _name_pattern(value, substitutions) if value is not None else None
        if pattern is None:  # CloudFormation names it <stack>-<LogicalId>-<random>; buckets in lower case
            generated = f"{stack_name}-{logical_id}-"
            pattern = re.escape(generated.lower() if kind == "bucket" else generated) + r"[A-Za-z0-9]+(\.fifo)?"
        found.setdefault(kind, []).append(pattern)
        if kind == "function":  # Lambda writes to /aws/lambda/<function name> once the function runs
            found.setdefault("log group", []).append(re.escape("/aws/lambda/") + pattern)
    found.setdefault("bucket", []).extend([
        re.escape(code_bucket_name(prefix, account, region)),
        re.escape(f"{prefix}-audit-{region}"),  # deploy_audit creates it through the S3 API on moto
    ])
    found.setdefault("alias", []).extend(re.escape(f"alias/{prefix}-{alias}") for alias in KEY_ALIASES)
    return NamePatterns(prefix, stacks, {k: tuple(re.compile(p) for p in v) for k, v in found.items()})


# ----------------------------------------------------------------------------------------------------
# What the idle stacks cost per day


@dataclass(frozen=True)
class CostLine:
    """One line of the estimate: ``usd_per_day`` is ``None`` when the price table has no price for it."""

    item: str
    quantity: str
    usd_per_day: Decimal | None
    basis: str


@dataclass(frozen=True)
class IdleEstimate:
    """What the deployed stacks cost per day with no traffic, line by line."""

    region: str
    prices: PriceTable
    lines: tuple[CostLine, ...]

    @property
    def usd_per_day(self) -> Decimal:
        return sum((line.usd_per_day for line in self.lines if line.usd_per_day is not None), Decimal(0))

    @property
    def unpriced(self) -> tuple[str, ...]:
        return tuple(line.item for line in self.lines if line.usd_per_day is None)


def usd(amount: Decimal, places: int = 4) -> str:
    """``$0.0986``: a USD amount rounded half up for display (the arithmetic stays exact); ``$0`` when zero."""
    if amount == 0:
        return "$0"
    return f"${amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)}"


def estimate_idle_cost(region: str, *, package_bytes: int | None = None) -> IdleEstimate:
    """What the four stacks cost per day once deployed on AWS and left idle, from the dated price table.

    The resources are counted from the templates as deployed on AWS (every condition true: the stacks
    create their own keys and bucket, the functions and their event source mappings). Free tiers are not
    applied. No AWS call is made.

    Examples:
        >>> estimate = estimate_idle_cost("eu-west-2")
        >>> estimate.lines[0].item, estimate.lines[0].quantity
        ('KMS customer managed keys', '3 keys')
    """
    prices = PRICE_TABLES.get(region, DEFAULT_PRICES)
    priced_region = prices.region
    provenance = PRICE_PROVENANCE.get(priced_region, {})
    counts: dict[str, int] = {}
    pitr = fifo_mapped = standard_mapped = 0
    parsed = templates()
    queues = {(stack, logical): res for stack, logical, res in _resources(parsed)
              if res.get("Type") == "AWS::SQS::Queue"}
    for stack, _logical, resource in _resources(parsed):
        kind = resource.get("Type", "")
        counts[kind] = counts.get(kind, 0) + 1
        props = resource.get("Properties") or {}
        if kind == "AWS::DynamoDB::Table":
            spec = props.get("PointInTimeRecoverySpecification") or {}
            pitr += 1 if spec.get("PointInTimeRecoveryEnabled") in (True, "true") else 0
        if kind == "AWS::Lambda::EventSourceMapping":
            source = props.get("EventSourceArn")
            logical = source.get("Fn::GetAtt", [""])[0] if isinstance(source, dict) else ""
            queue = queues.get((stack, logical))
            if queue is not None and (queue.get("Properties") or {}).get("FifoQueue") in (True, "true"):
                fifo_mapped += 1
            else:
                standard_mapped += 1
    n = counts.get
    as_of = f"price table of {prices.as_of}, {priced_region}"
    if priced_region != region:
        as_of += f" (no table for {region})"
    keys = n("AWS::KMS::Key", 0)
    polls_per_day = IDLE_POLLERS_PER_MAPPING * 86_400 // LONG_POLL_SECONDS
    poll_cost = (standard_mapped * prices.sqs_standard_per_million + fifo_mapped * prices.sqs_fifo_per_million) \
        * polls_per_day / 1_000_000
    lines = [
        CostLine("KMS customer managed keys", f"{keys} keys", keys * prices.kms_key_month * 12 / 365,
                 f"{usd(prices.kms_key_month, 2)} per key-month, prorated hourly ({as_of}; "
                 f"{provenance.get('kms_key_month', 'unlabelled')}); rotated key material adds a key-month each "
                 f"rotation, from the first rotation a year on"),
        CostLine("SQS polls by Lambda event source mappings", f"{standard_mapped + fifo_mapped} mappings, "
                 f"{(standard_mapped + fifo_mapped) * polls_per_day:,} requests",
                 poll_cost,
                 f"assumed {IDLE_POLLERS_PER_MAPPING} idle long polls per mapping, one ReceiveMessage each "
                 f"{LONG_POLL_SECONDS} s; {usd(prices.sqs_standard_per_million, 2)} per million requests "
                 f"({as_of}; {provenance.get('sqs_standard_per_million', 'unlabelled')})"),
        CostLine("DynamoDB tables, on demand", f"{n('AWS::DynamoDB::Table', 0)} tables, PITR on {pitr}", Decimal(0),
                 "requests only when used; storage and point-in-time recovery are billed per GB-month stored, "
                 "and an empty deployment stores nothing"),
        CostLine("SQS queues", f"{n('AWS::SQS::Queue', 0)} queues", Decimal(0),
                 "billed per request only (the polls above are the idle requests)"),
        CostLine("Lambda functions", f"{n('AWS::Lambda::Function', 0)} functions", Decimal(0),
                 "billed per invocation and GB-second only; an idle function is not invoked"),
        CostLine("S3 buckets", f"{n('AWS::S3::Bucket', 0)} in the templates, and the code bucket", Decimal(0),
                 "billed per GB-month stored and per request; an empty bucket stores nothing"),
        CostLine("CloudWatch Logs", "log groups created on first invocation", Decimal(0),
                 "billed per GB ingested and stored; nothing is logged without traffic"),
    ]
    alarms = n("AWS::CloudWatch::Alarm", 0)
    lines.append(CostLine("CloudWatch alarms", f"{alarms} alarms", Decimal(0) if alarms == 0 else None,
                          "none in the templates" if alarms == 0
                          else "not priced: the price table has no alarm price"))
    if package_bytes is not None:
        lines.append(CostLine("S3 storage of the function package", f"{package_bytes / 2**20:.1f} MiB", None,
                              "not priced: the price table has no S3 storage price"))
    free = sorted({"iam", "cloudformation"} & FREE_SERVICES)
    lines.append(CostLine("IAM roles and policies, CloudFormation stacks",
                          f"{n('AWS::IAM::Role', 0)} roles, {n('AWS::IAM::ManagedPolicy', 0)} policies, "
                          f"{len(STACKS)} stacks", Decimal(0), f"no charge ({', '.join(free)})"))
    return IdleEstimate(region=region, prices=prices, lines=tuple(lines))


def estimate_lines(estimate: IdleEstimate) -> list[str]:
    """The estimate as plain text, for the terminal."""
    out = [f"Idle cost of the deployed stacks in {estimate.region}, per day (computed, before deploying):"]
    for line in estimate.lines:
        amount = usd(line.usd_per_day) if line.usd_per_day is not None else "not priced"
        out.append(f"  {line.item:46} {line.quantity:40} {amount:>10}")
    total = estimate.usd_per_day
    out.append(f"  {'total':87} {usd(total):>10} per day, {usd(total * 30, 2)} per 30 days")
    table = f"{estimate.prices.region}, as of {estimate.prices.as_of}"
    if estimate.prices.region != estimate.region:
        table += f"; no table for {estimate.region}"
    out.append(f"  On-demand list prices ({table}); free tiers not applied; traffic costs extra.")
    return out


def estimate_markdown(region: str | None = None) -> str:
    """The estimate as a Markdown table, for the site (``build/generated/deploy-estimate.md``)."""
    from fasterpay.aws import DEFAULT_REGION

    estimate = estimate_idle_cost(region or DEFAULT_REGION)
    rows = ["| Item | Quantity | USD per day | Basis |", "| --- | --- | ---: | --- |"]
    for line in estimate.lines:
        amount = usd(line.usd_per_day) if line.usd_per_day is not None else "not priced"
        rows.append(f"| {line.item} | {line.quantity} | {amount} | {line.basis} |")
    total = estimate.usd_per_day
    rows.append(f"| **Total** | | **{usd(total)}** | {usd(total * 30, 2)} per 30 days |")
    return "\n".join(rows) + (
        f"\n\nComputed by `python -m simulations deploy --estimate-only --region {estimate.region}` "
        f"from the price table of {estimate.prices.as_of} ({estimate.prices.region}) and the templates.\n")


# ----------------------------------------------------------------------------------------------------
# Deploy


@dataclass(frozen=True)
class Deployment:
    """What :func:`deploy_all` created."""

    prefix: str
    region: str
    account: str
    stacks: tuple[str, ...]
    vault: Any
    ledger: Any
    audit: Any
    pipeline: Any
    code: str | None  # s3://bucket/key of the packaged functions, None for placeholders
    key_arns: tuple[str, ...]


def _identity(env: AwsEnvironment) -> dict[str, str]:
    return env.client("sts").get_caller_identity()


def _upload_package(s3: Any, bucket: str, region: str, package: Path) -> str:
    create: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**create)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    body = package.read_bytes()
    key = f"fasterpay-lambda-{hashlib.sha256(body).hexdigest()[:16]}.zip"  # new code, new key
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return key


def deploy_all(env: AwsEnvironment, *, prefix: str = DEFAULT_PREFIX, package: Path | None = DEFAULT_PACKAGE,
               retention_days: int = 1, allowed_regions: tuple[str, ...] = ("eu-west-2",),
               log: Callable[[str], None] = print) -> Deployment:
    """Create the vault, ledger, audit and pipeline stacks under ``prefix`` and return what they hold.

    Refuses with :class:`PrefixInUseError` if anything named for the prefix exists already. IAM is scoped
    to the resources except on moto (``on_moto`` is true only for the moto backends).

    Examples:
        >>> with open_environment("moto") as env:  # doctest: +SKIP
        ...     deployment = deploy_all(env, prefix="fp-trial", package=None)
    """
    from fasterpay.audit.stack import deploy_audit
    from fasterpay.ledger.stack import deploy_ledger
    from fasterpay.pipeline.stack import deploy_pipeline
    from fasterpay.vault.stack import deploy_vault

    check_prefix(prefix)
    on_moto = env.backend is not Backend.AWS
    account = _identity(env)["Account"]
    existing = inventory(env, prefix, account=account)
    if not existing.empty:  # keys pending deletion do not count; a locked audit bucket does
        raise PrefixInUseError(
            f"prefix {prefix!r} is in use in account {account}, {env.region}: "
            + "; ".join(existing.describe()) + ". Run `python -m simulations teardown --prefix "
            f"{prefix}` first, or choose another prefix.")
    cfn, kms, s3, dynamodb = (env.client(s) for s in ("cloudformation", "kms", "s3", "dynamodb"))
    stacks: list[str] = []

    def label(name: str, arn: str) -> str:
        kms.tag_resource(KeyId=arn, Tags=[{"TagKey": PREFIX_TAG, "TagValue": prefix}])
        kms.create_alias(AliasName=f"alias/{prefix}-{name}", TargetKeyId=arn)
        return arn

    log(f"stack {prefix}-vault ...")
    vault = deploy_vault(cfn, kms, name_prefix=prefix, on_moto=on_moto, allowed_regions=allowed_regions)
    stacks.append(f"{prefix}-vault")
    keys = [label("vault-key", vault.vault_key_arn), label("token-mac-key", vault.token_mac_key_arn)]
    log(f"stack {prefix}-ledger ...")
    ledger = deploy_ledger(cfn, name_prefix=prefix, on_moto=on_moto, dynamodb=dynamodb,
                           allowed_regions=allowed_regions)
    stacks.append(f"{prefix}-ledger")
    log(f"stack {prefix}-audit ...")
    audit = deploy_audit(cfn, kms, s3, name_prefix=prefix, retention_days=retention_days, on_moto=on_moto,
                         allowed_regions=allowed_regions)
    stacks.append(f"{prefix}-audit")
    keys.append(label("audit-signing-key", audit.signing_key_arn))
    parameters = {
        "LedgerTableName": ledger.tables.ledger, "LedgerOutboxTableName": ledger.tables.outbox,
        "VaultTableName": vault.vault_table, "VaultAuditTableName": vault.audit_table,
        "VaultKeyArn": vault.vault_key_arn, "MacKeyArn": vault.token_mac_key_arn,
    }
    code = None
    if package is not None and package.is_file():
        bucket = code_bucket_name(prefix, account, env.region)
        key = _upload_package(s3, bucket, env.region, package)
        code = f"s3://{bucket}/{key}"
        parameters.update(CodeS3Bucket=bucket, CodeS3Key=key)
        log(f"package {package} ({package.stat().st_size:,} bytes) uploaded to {code}")
    else:
        log(f"no package at {package}: the pipeline's functions are placeholders that refuse every event. "
            "Run `make package` and deploy again (after teardown) to deploy the real handlers.")
    log(f"stack {prefix}-pipeline ...")
    pipeline = deploy_pipeline(cfn, name_prefix=prefix, on_moto=on_moto, parameters=parameters,
                               allowed_regions=allowed_regions)
    stacks.append(f"{prefix}-pipeline")
    return Deployment(prefix=prefix, region=env.region, account=account, stacks=tuple(stacks), vault=vault,
                      ledger=ledger, audit=audit, pipeline=pipeline, code=code, key_arns=tuple(keys))


# ----------------------------------------------------------------------------------------------------
# Inventory and teardown


@dataclass
class Inventory:
    """What exists under a prefix: stacks and resources by kind; keys with their state."""

    prefix: str
    stacks: list[str] = field(default_factory=list)
    resources: dict[str, list[str]] = field(default_factory=dict)  # kind -> names (queues: URLs)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # key id -> KeyMetadata

    def live_keys(self) -> list[str]:
        return [k for k, meta in self.keys.items() if meta.get("KeyState") not in _PENDING]

    def pending_keys(self) -> dict[str, dict[str, Any]]:
        return {k: meta for k, meta in self.keys.items() if k not in self.live_keys()}

    @property
    def empty(self) -> bool:
        """Nothing left to delete (keys already pending deletion do not count)."""
        return not self.stacks and not any(self.resources.values()) and not self.live_keys()

    def describe(self) -> list[str]:
        out = [f"{_plural(len(self.stacks), 'stack')} ({', '.join(self.stacks)})"] if self.stacks else []
        for kind in KINDS:
            names = self.resources.get(kind) or []
            if names:
                shown = [n.rsplit("/", 1)[-1] if kind in ("queue", "policy") else n for n in names]
                out.append(f"{_plural(len(names), kind)} ({', '.join(sorted(shown))})")
        if self.live_keys():
            out.append(f"{_plural(len(self.live_keys()), 'KMS key')} ({', '.join(sorted(self.live_keys()))})")
        return out


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    return f"{count} " + {"policy": "policies", "alias": "aliases"}.get(noun, noun + "s")


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    if client.can_paginate(operation):
        for page in client.get_paginator(operation).paginate(**kwargs):
            yield from page.get(key, [])
    else:
        yield from getattr(client, operation)(**kwargs).get(key, [])


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _stack_keys(cfn: Any, stack: str) -> Iterator[str]:
    """KMS keys a stack created or was given (its outputs ending in ``KeyArn``)."""
    for resource in _pages(cfn, "list_stack_resources", "StackResourceSummaries", StackName=stack):
        if resource.get("ResourceType") == "AWS::KMS::Key" and resource.get("PhysicalResourceId"):
            yield resource["PhysicalResourceId"]
    for described in cfn.describe_stacks(StackName=stack)["Stacks"]:
        for output in described.get("Outputs", []):
            if output["OutputKey"].endswith("KeyArn") and output.get("OutputValue"):
                yield output["OutputValue"]


def inventory(env: AwsEnvironment, prefix: str, *, account: str | None = None) -> Inventory:
    """List what exists under ``prefix`` in this account and region (read-only calls only)."""
    account = account or _identity(env)["Account"]
    names = name_patterns(prefix, account=account, region=env.region)
    found = Inventory(prefix)
    cfn = env.client("cloudformation")
    key_ids: set[str] = set()
    for stack in names.stacks:
        try:
            status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        except ClientError as error:
            if _code(error) == "ValidationError":  # does not exist
                continue
            raise
        if status != "DELETE_COMPLETE":
            found.stacks.append(stack)
            key_ids.update(_stack_keys(cfn, stack))

    def keep(kind: str, candidates: Iterable[str]) -> None:
        found.resources[kind] = sorted({c for c in candidates if names.matches(kind, c)})

    keep("table", _pages(env.client("dynamodb"), "list_tables", "TableNames"))
    sqs = env.client("sqs")
    urls = {url.rsplit("/", 1)[-1]: url
            for url in _pages(sqs, "list_queues", "QueueUrls", QueueNamePrefix=f"{prefix}-")}
    found.resources["queue"] = sorted(url for name, url in urls.items() if names.matches("queue", name))
    keep("bucket", (b["Name"] for b in env.client("s3").list_buckets().get("Buckets", [])))
    iam = env.client("iam")
    keep("role", (r["RoleName"] for r in _pages(iam, "list_roles", "Roles")))
    policies = {p["PolicyName"]: p["Arn"] for p in _pages(iam, "list_policies", "Policies", Scope="Local")}
    found.resources["policy"] = sorted(arn for name, arn in policies.items() if names.matches("policy", name))
    keep("function", (f["FunctionName"] for f in _pages(env.client("lambda"), "list_functions", "Functions")))
    keep("log group", (g["logGroupName"] for g in _pages(env.client("logs"), "describe_log_groups", "logGroups",
                                                          logGroupNamePrefix=f"/aws/lambda/{prefix}-")))
    keep("alarm", (a["AlarmName"] for a in _pages(env.client("cloudwatch"), "describe_alarms", "MetricAlarms",
                                                 AlarmNamePrefix=f"{prefix}-")))
    kms = env.client("kms")
    aliases = [a for a in _pages(kms, "list_aliases", "Aliases") if names.matches("alias", a["AliasName"])]
    found.resources["alias"] = sorted(a["AliasName"] for a in aliases)
    key_ids.update(a["TargetKeyId"] for a in aliases if a.get("TargetKeyId"))
    for key in _pages(kms, "list_keys", "Keys"):  # keys deploy tagged, found even after their stack is gone
        try:
            tags = list(_pages(kms, "list_resource_tags", "Tags", KeyId=key["KeyId"]))
        except ClientError:
            continue  # not ours to read (for example an AWS managed key's policy)
        if any(t.get("TagKey") == PREFIX_TAG and t.get("TagValue") == prefix for t in tags):
            key_ids.add(key["KeyId"])
    for key_id in key_ids:
        try:
            meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        except ClientError as error:
            if _code(error) == "NotFoundException":
                continue
            raise
        if meta.get("KeyManager", "CUSTOMER") == "CUSTOMER":
            found.keys.setdefault(meta["KeyId"], meta)
    return found


@dataclass(frozen=True)
class LeftBehind:
    """A resource teardown could not delete yet, why, and until when."""

    kind: str
    name: str
    why: str
    until: datetime.datetime | None = None


@dataclass
class TeardownReport:
    """What teardown deleted, by kind, and what it had to leave behind."""

    prefix: str
    deleted: dict[str, list[str]] = field(default_factory=dict)
    left_behind: list[LeftBehind] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str) -> None:
        self.deleted.setdefault(kind, []).append(name)

    @property
    def nothing_deleted(self) -> bool:
        return not any(self.deleted.values())


def _delete_stacks(env: AwsEnvironment, stacks: list[str], report: TeardownReport, log: Callable[[str], None]) -> None:
    cfn = env.client("cloudformation")
    started = []
    for stack in sorted(stacks, key=lambda s: -STACKS.index(s.rsplit("-", 1)[-1])):
        try:
            cfn.delete_stack(StackName=stack)
            started.append(stack)
        except ClientError as error:  # moto deletes in the request, and may stop at an attached policy
            log(f"  CloudFormation did not delete stack {stack} ({_code(error)}: "
                f"{error.response['Error'].get('Message')}): its resources are deleted one by one")
    for stack in started:
        try:
            cfn.get_waiter("stack_delete_complete").wait(
                StackName=stack, WaiterConfig={"Delay": 10, "MaxAttempts": 180})
            report.add("stack", stack)
            log(f"  deleted stack {stack}")
        except WaiterError as error:  # DELETE_FAILED: deleted one by one below, then the stack again
            log(f"  CloudFormation did not delete stack {stack} ({error}): its resources are deleted one by one")


def _empty_bucket(s3: Any, bucket: str) -> tuple[int, list[datetime.datetime | None]]:
    """Delete every object version and delete marker that may be deleted.

    Returns how many were deleted, and for each version Object Lock kept, its retain-until date
    (``datetime.max`` under a legal hold, ``None`` if S3 did not say).
    """
    deleted = 0
    locked: list[dict[str, str]] = []
    batch: list[dict[str, str]] = []

    def flush() -> None:
        nonlocal deleted
        if not batch:
            return
        result = s3.delete_objects(Bucket=bucket, Delete={"Objects": list(batch), "Quiet": True})
        failed = {(e["Key"], e.get("VersionId")): e for e in result.get("Errors", [])}
        deleted += len(batch) - len(failed)
        locked.extend({"Key": k, **({"VersionId": v} if v else {})} for (k, v), e in failed.items()
                      if e.get("Code") == "AccessDenied")
        others = [e for e in failed.values() if e.get("Code") != "AccessDenied"]
        if others:
            raise RuntimeError(f"bucket {bucket}: could not delete {len(others)} objects: {others[0]}")
        batch.clear()

    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            version = entry.get("VersionId")
            batch.append({"Key": entry["Key"], **({"VersionId": version} if version else {})})
            if len(batch) == 1000:
                flush()
    flush()
    until: list[datetime.datetime | None] = []
    for obj in locked:
        head = s3.head_object(Bucket=bucket, **obj)
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            until.append(datetime.datetime.max.replace(tzinfo=datetime.timezone.utc))
        else:
            until.append(head.get("ObjectLockRetainUntilDate"))
    return deleted, until


def _delete_role(iam: Any, role: str) -> None:
    for policy in _pages(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=role):
        iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
    for name in _pages(iam, "list_role_policies", "PolicyNames", RoleName=role):
        iam.delete_role_policy(RoleName=role, PolicyName=name)
    for profile in _pages(iam, "list_instance_profiles_for_role", "InstanceProfiles", RoleName=role):
        iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=role)
    iam.delete_role(RoleName=role)


def _delete_policy(iam: Any, arn: str) -> None:
    entities = iam.list_entities_for_policy(PolicyArn=arn)
    for role in entities.get("PolicyRoles", []):
        iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)
    for user in entities.get("PolicyUsers", []):
        iam.detach_user_policy(UserName=user["UserName"], PolicyArn=arn)
    for group in entities.get("PolicyGroups", []):
        iam.detach_group_policy(GroupName=group["GroupName"], PolicyArn=arn)
    for version in _pages(iam, "list_policy_versions", "Versions", PolicyArn=arn):
        if not version.get("IsDefaultVersion"):
            iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
    iam.delete_policy(PolicyArn=arn)


def _delete(env: AwsEnvironment, kind: str, name: str, report: TeardownReport) -> bool:
    """Delete one resource; ``False`` (with a left-behind entry) if it must stay for now."""
    if kind == "function":
        env.client("lambda").delete_function(FunctionName=name)
    elif kind == "log group":
        env.client("logs").delete_log_group(logGroupName=name)
    elif kind == "alarm":
        env.client("cloudwatch").delete_alarms(AlarmNames=[name])
    elif kind == "table":
        dynamodb = env.client("dynamodb")
        table = dynamodb.describe_table(TableName=name)["Table"]
        if table.get("DeletionProtectionEnabled"):
            dynamodb.update_table(TableName=name, DeletionProtectionEnabled=False)
        dynamodb.delete_table(TableName=name)
        dynamodb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 5, "MaxAttempts": 120})
    elif kind == "queue":
        env.client("sqs").delete_queue(QueueUrl=name)
    elif kind == "role":
        _delete_role(env.client("iam"), name)
    elif kind == "policy":
        _delete_policy(env.client("iam"), name)
    elif kind == "alias":
        env.client("kms").delete_alias(AliasName=name)
    elif kind == "bucket":
        s3 = env.client("s3")
        deleted, until = _empty_bucket(s3, name)
        if until:
            versions = f"{len(until)} object version{'s' if len(until) != 1 else ''}"
            report.left_behind.append(LeftBehind(
                "bucket", name,
                f"{versions} under S3 Object Lock" + (f" ({deleted} others deleted)" if deleted else ""),
                max((u for u in until if u is not None), default=None)))
            return False
        s3.delete_bucket(Bucket=name)
    else:  # pragma: no cover - KINDS is closed
        raise ValueError(kind)
    return True


def teardown_all(env: AwsEnvironment, prefix: str, *, found: Inventory | None = None,
                 log: Callable[[str], None] = print) -> TeardownReport:
    """Delete everything under ``prefix``: stacks, then what they retained or deploy created beside them.

    KMS keys are scheduled for deletion after :data:`KEY_DELETION_WINDOW_DAYS`. Object versions under
    Object Lock cannot be deleted before their retain-until date, so their bucket stays too; both are
    reported in :attr:`TeardownReport.left_behind`. A second run deletes nothing and succeeds.

    Examples:
        >>> report = teardown_all(env, "fp-trial")  # doctest: +SKIP
        >>> [(left.kind, left.until) for left in report.left_behind]  # doctest: +SKIP
    """
    check_prefix(prefix)
    found = found if found is not None else inventory(env, prefix)
    report = TeardownReport(prefix)
    if found.stacks:
        _delete_stacks(env, found.stacks, report, log)
    after = inventory(env, prefix)  # what the stacks retained, or could not delete
    for kind in KINDS:
        for name in after.resources.get(kind, []):
            try:
                if _delete(env, kind, name, report):
                    report.add(kind, name)
                    log(f"  deleted {kind} {name}")
            except ClientError as error:
                report.problems.append(f"{kind} {name}: {_code(error)}: {error.response['Error'].get('Message')}")
    kms = env.client("kms")
    for key_id in {**found.keys, **after.keys}:
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        if meta["KeyState"] not in _PENDING:
            kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=KEY_DELETION_WINDOW_DAYS)
            report.add("KMS key", key_id)
            log(f"  scheduled KMS key {key_id} for deletion in {KEY_DELETION_WINDOW_DAYS} days")
    final = inventory(env, prefix)
    if final.stacks:  # CloudFormation failed earlier (e.g. IAM order); its resources are gone now
        _delete_stacks(env, final.stacks, report, log)
        final = inventory(env, prefix)
    for key_id, meta in final.pending_keys().items():
        report.left_behind.append(LeftBehind(
            "KMS key", key_id, "pending deletion (no charge while pending; cancel with kms cancel-key-deletion)",
            meta.get("DeletionDate")))
    locked = {left.name for left in report.left_behind if left.kind == "bucket"}
    unexpected = Inventory(prefix, stacks=final.stacks, keys={k: final.keys[k] for k in final.live_keys()},
                           resources={kind: [n for n in names if n not in locked]
                                      for kind, names in final.resources.items()})
    if not unexpected.empty:
        report.problems.append("still present after teardown: " + "; ".join(unexpected.describe()))
    return report


def _when(moment: datetime.datetime | None) -> str:
    if moment is None:
        return "an unknown date"
    if moment.year == datetime.MAXYEAR:
        return "a legal hold is removed"
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def report_lines(report: TeardownReport) -> list[str]:
    """The teardown's outcome as text: counts, what stays behind and why, and any problem."""
    if report.nothing_deleted:
        locked = any(left.kind == "bucket" for left in report.left_behind)
        out = [f"teardown {report.prefix}: " + ("nothing more can be deleted before the date below." if locked
                                                 else "nothing left to delete.")]
    else:
        counts = ", ".join(_plural(len(v), k) + (" (scheduled for deletion)" if k == "KMS key" else "")
                           for k, v in report.deleted.items())
        out = [f"teardown {report.prefix}: deleted {counts}."]
    keys = [left for left in report.left_behind if left.kind == "KMS key"]
    if keys:
        latest = max((k.until for k in keys if k.until is not None), default=None)
        out.append(f"left behind: {len(keys)} KMS keys pending deletion until {_when(latest)} "
                   f"({KEY_DELETION_WINDOW_DAYS} days, the shortest waiting period KMS allows). They cannot be used, "
                   "and AWS does not charge for a key pending deletion.")
    for left in report.left_behind:
        if left.kind == "bucket":
            out.append(
                f"left behind: S3 bucket {left.name}: {left.why}, retained until {_when(left.until)}. COMPLIANCE mode "
                "lets no one delete a locked version before that date, not even the account root, and a bucket "
                "with versions cannot be deleted; their storage is billed until then. Run this teardown again "
                "after that date to delete them and the bucket.")
    out.extend(f"problem: {problem}" for problem in report.problems)
    return out


# ----------------------------------------------------------------------------------------------------
# The command line (registered in simulations.cli)


def _confirm(question: str, ask: Callable[[str], str]) -> bool:
    try:
        return ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _region_for_estimate(region: str | None) -> str:
    import os

    import boto3

    from fasterpay.aws import BACKEND_ENV, DEFAULT_REGION, REGION_ENV

    if region or os.environ.get(REGION_ENV):
        return region or os.environ[REGION_ENV]
    if os.environ.get(BACKEND_ENV, "moto").strip().lower() == "aws":
        return boto3.Session().region_name or DEFAULT_REGION  # reads the AWS settings; calls nothing
    return DEFAULT_REGION


def _open(region: str | None, out: Callable[[str], None]) -> AwsEnvironment | None:
    """The environment ``FASTERPAY_BACKEND`` chooses, or ``None`` after saying why it is refused."""
    from fasterpay.aws import RealAwsNotAllowedError, open_environment

    try:
        return open_environment(region=region)
    except (RealAwsNotAllowedError, ValueError) as error:
        out(f"refused: {error}")
        return None


def _check_account(env: AwsEnvironment, action: str, *, yes: bool, ask: Callable[[str], str],
                   out: Callable[[str], None]) -> bool:
    """On a real account: name it and the region, and ask before going on (unless ``yes``)."""
    if env.backend is not Backend.AWS:
        out(f"backend {env.backend.value}: a rehearsal on a mock in this process; nothing reaches AWS, and "
            "everything it creates is gone when the command ends.")
        return True
    identity = _identity(env)
    out(f"AWS account {identity['Account']} ({identity['Arn']}), region {env.region}.")
    if yes:
        return True
    if _confirm(f"{action} in account {identity['Account']}, region {env.region}?", ask):
        return True
    out("stopped: nothing was changed.")
    return False


def run_deploy(args: Any, *, ask: Callable[[str], str] = input, out: Callable[[str], None] = print) -> int:
    """``deploy``: the estimate, the guard, the account check, then the four stacks."""
    try:
        check_prefix(args.prefix)
    except ValueError as error:
        out(f"refused: {error}")
        return 2
    package = args.package if args.package is not None else DEFAULT_PACKAGE
    size = package.stat().st_size if package.is_file() else None
    if args.estimate_only:
        for line in estimate_lines(estimate_idle_cost(_region_for_estimate(args.region), package_bytes=size)):
            out(line)
        return 0
    environment = _open(args.region, out)
    if environment is None:
        return 2
    for line in estimate_lines(estimate_idle_cost(environment.region, package_bytes=size)):
        out(line)
    with environment as env:
        if not _check_account(env, f"Deploy the stacks of prefix {args.prefix!r}", yes=args.yes, ask=ask, out=out):
            return 1
        try:
            deployment = deploy_all(env, prefix=args.prefix, package=package, retention_days=args.retention_days,
                                    allowed_regions=args.allowed_regions, log=out)
        except PrefixInUseError as error:
            out(f"refused: {error}")
            return 1
        except (StackDeployError, ClientError, ValueError) as error:  # ValueError: e.g. a region not allowed
            out(f"failed: {error}")
            out(f"Remove what was created with `python -m simulations teardown --prefix {args.prefix}`.")
            return 1
        out(f"deployed {len(deployment.stacks)} stacks in {deployment.region}: {', '.join(deployment.stacks)}; "
            f"{len(deployment.key_arns)} KMS keys (aliases alias/{args.prefix}-*); audit bucket "
            f"{deployment.audit.bucket} (COMPLIANCE retention {deployment.audit.retention_days} day(s)); "
            f"functions: {deployment.code or 'placeholders'}.")
        out(f"Tear it all down with `python -m simulations teardown --prefix {args.prefix}`.")
    return 0


def run_teardown(args: Any, *, ask: Callable[[str], str] = input, out: Callable[[str], None] = print) -> int:
    """``teardown``: the guard, the account check, the plan, then delete everything under the prefix."""
    try:
        check_prefix(args.prefix)
    except ValueError as error:
        out(f"refused: {error}")
        return 2
    environment = _open(args.region, out)
    if environment is None:
        return 2
    with environment as env:
        if env.backend is Backend.AWS:
            identity = _identity(env)
            out(f"AWS account {identity['Account']} ({identity['Arn']}), region {env.region}.")
        found = inventory(env, args.prefix)
        plan = found.describe()
        pending = found.pending_keys()
        if plan:
            out(f"teardown {args.prefix} found: " + "; ".join(plan) + ".")
        if pending:
            out(f"already pending deletion: {len(pending)} KMS keys.")
        if plan and env.backend is Backend.AWS and not args.yes:
            if not _confirm(f"Delete these from account {identity['Account']}, region {env.region}?", ask):
                out("stopped: nothing was changed.")
                return 1
        report = teardown_all(env, args.prefix, found=found, log=out)
        for line in report_lines(report):
            out(line)
    return 1 if report.problems else 0


def _days(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days >= 1")
    return int(text)


def _regions(text: str) -> tuple[str, ...]:
    import argparse

    regions = tuple(r.strip() for r in text.split(",") if r.strip())
    if not regions or any(not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", r) for r in regions):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of AWS regions")
    return regions


def add_arguments(parser: Any, *, deploy: bool) -> None:
    """The options ``deploy`` and ``teardown`` share, and deploy's own."""
    parser.add_argument("--prefix", default=DEFAULT_PREFIX,
                        help="name prefix of every stack and resource ([a-z][a-z0-9-]{1,20})")
    parser.add_argument("--region", default=None,
                        help="AWS region (default: FASTERPAY_REGION, else the AWS settings, else eu-west-2)")
    parser.add_argument("--yes", action="store_true", help="on a real account, do not ask for confirmation")
    if deploy:
        parser.add_argument("--estimate-only", action="store_true",
                            help="print the idle cost per day and exit; no AWS call")
        parser.add_argument("--package", type=Path, default=None,
                            help=f"zip of the Lambda code (default: {DEFAULT_PACKAGE.relative_to(REPO)}, "
                                 "written by `make package`)")
        parser.add_argument("--allowed-regions", type=_regions, default=("eu-west-2",),
                            help="comma-separated regions the stacks may hold data in (data residency; "
                                 "default eu-west-2): deploy refuses any other region")
        parser.add_argument("--retention-days", type=_days, default=1,
                            help="COMPLIANCE-mode Object Lock retention of the audit bucket, in days: "
                                 "nothing written there can be deleted sooner")

