"""The data-flow map: for each data class, where it is held, how it is encrypted, how long it is kept, who
can read it. Generated from ``compliance/dataflows.yaml`` (which store holds which class, in which form)
and the CloudFormation templates themselves (region, encryption at rest, retention, IAM readers).

Readers are the IAM roles of the store's template whose policies allow a read action (DynamoDB reads, S3
``GetObject``, SQS ``ReceiveMessage``) on a resource that names the store: its ``!GetAtt``/``!Ref``, or a
``!Sub`` ARN pattern that matches its name (``table/${NamePrefix}-*``). A ``Scoped`` condition is read as
deployed on AWS (scoped). Roles in other stacks (an auditor's) are not seen: say so where it matters.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DataFlowError", "Flow", "load_flows", "render_flows"]

READ_ACTIONS = {
    "dynamodb": ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "GetRecords", "*"),
    "s3": ("GetObject", "GetObjectVersion", "*"),
    "sqs": ("ReceiveMessage", "*"),
}
_SERVICE = {"AWS::DynamoDB::Table": "dynamodb", "AWS::DynamoDB::GlobalTable": "dynamodb", "AWS::SQS::Queue": "sqs",
            "AWS::S3::Bucket": "s3"}
_SERVICE_NAME = {"dynamodb": "DynamoDB", "sqs": "SQS", "s3": "S3"}


class DataFlowError(ValueError):
    """A store, template or data class named in the data flows does not exist; the message lists each."""


@dataclass(frozen=True)
class Flow:
    """One data class in one store."""

    data_class: str
    form: str
    template: str
    resource: str
    what: str
    service: str
    regions: str
    encryption: str
    retention: str
    readers: tuple[str, ...]


def _template(path: Path) -> dict[str, Any]:
    from simulations.templates import parse_template

    return parse_template(path.read_text(encoding="utf-8"))


def _default(template: Mapping[str, Any], name: str) -> str:
    return str(template.get("Parameters", {}).get(name, {}).get("Default", ""))


def _sub(value: Any, template: Mapping[str, Any]) -> str:
    """A string, a ``!Sub`` (parameters by default, pseudo-parameters left as ``*``) or a ``!Ref``, as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        return re.sub(r"\$\{([^}]+)\}", lambda m: "*" if m.group(1).startswith("AWS::") else
                      (_default(template, m.group(1)) or "*"), text)
    if isinstance(value, dict) and "Ref" in value:
        return _default(template, value["Ref"]) or "*"
    return "*"


def _scoped(value: Any) -> Any:
    """The branch AWS deploys of an ``!If [Scoped, scoped, broad]``; anything else unchanged."""
    if isinstance(value, dict) and "Fn::If" in value:
        return _scoped(value["Fn::If"][1])
    return value


def _names(name: str, resource: Mapping[str, Any], template: Mapping[str, Any]) -> tuple[str, ...]:
    props = resource.get("Properties", {})
    for key in ("TableName", "QueueName", "BucketName"):
        if key in props:
            return (name, _sub(props[key], template))
    return (name,)


def _names_store(value: Any, store: str, physical: str, service: str, template: Mapping[str, Any]) -> bool:
    value = _scoped(value)
    if isinstance(value, list):
        return any(_names_store(v, store, physical, service, template) for v in value)
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0] == store
        if "Ref" in value:
            return value["Ref"] == store
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            if re.search(r"\$\{" + re.escape(store) + r"[.}]", text):  # "${AuditBucket.Arn}/*"
                return True
            pattern = _sub(value, template)
            target = {"dynamodb": f"arn:aws:dynamodb:eu-west-2:123456789012:table/{physical}",
                      "sqs": f"arn:aws:sqs:eu-west-2:123456789012:{physical}",
                      "s3": f"arn:aws:s3:::{physical}/object"}[service]
            return fnmatch.fnmatch(target, pattern)
        return False
    return value == "*"


def _statements(document: Any) -> Iterator[dict[str, Any]]:
    for statement in document.get("Statement", []) if isinstance(document, dict) else []:
        if isinstance(statement, dict) and "Fn::If" in statement:
            statement = statement["Fn::If"][1]
        if isinstance(statement, dict) and statement.get("Effect") == "Allow":
            yield statement


def _reads(statement: Mapping[str, Any], service: str) -> bool:
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    return any(a == "*" or (a.split(":")[0] == service and a.split(":")[1] in READ_ACTIONS[service])
               for a in actions if isinstance(a, str))


def _role_name(role: str, template: Mapping[str, Any]) -> str:
    props = template["Resources"][role].get("Properties", {})
    return _sub(props["RoleName"], template) if "RoleName" in props else role


def _readers(store: str, physical: str, service: str, template: Mapping[str, Any]) -> tuple[str, ...]:
    resources = template["Resources"]
    roles: set[str] = set()
    for name, resource in resources.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        documents: list[tuple[Any, list[str]]] = []
        if kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            attached = [r["Ref"] for r in props.get("Roles", []) if isinstance(r, dict) and "Ref" in r]
            attached += [role for role, res in resources.items() if res["Type"] == "AWS::IAM::Role"
                         and {"Ref": name} in res.get("Properties", {}).get("ManagedPolicyArns", [])]
            documents.append((props.get("PolicyDocument", {}), attached))
        elif kind == "AWS::IAM::Role":
            documents += [(p.get("PolicyDocument", {}), [name]) for p in props.get("Policies", [])]
        for document, attached in documents:
            if any(_reads(s, service) and _names_store(s.get("Resource"), store, physical, service, template)
                   for s in _statements(document)):
                roles.update(_role_name(r, template) for r in attached)
    return tuple(sorted(roles))


def _encryption(resource: Mapping[str, Any]) -> str:
    props = resource.get("Properties", {})
    kind = resource["Type"]
    if kind.startswith("AWS::DynamoDB"):
        sse = props.get("SSESpecification", {})
        if sse.get("SSEType") == "KMS" or sse.get("KMSMasterKeyId"):
            return "KMS key (SSE-KMS)"
        return "AWS owned key" if sse.get("SSEEnabled") is not False else "none stated"
    if kind == "AWS::SQS::Queue":
        if props.get("KmsMasterKeyId"):
            return "KMS key (SSE-KMS)"
        return "SQS-managed (SSE-SQS)" if props.get("SqsManagedSseEnabled") else "none stated"
    rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    algorithm = rules[0].get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") if rules else None
    return {"AES256": "S3-managed (SSE-S3)", "aws:kms": "KMS key (SSE-KMS)"}.get(str(algorithm), "none stated")


def _retention(resource: Mapping[str, Any], template: Mapping[str, Any]) -> str:
    props = resource.get("Properties", {})
    kind = resource["Type"]
    if kind == "AWS::SQS::Queue":
        seconds = int(_sub(props.get("MessageRetentionPeriod", 345600), template) if not isinstance(
            props.get("MessageRetentionPeriod"), int) else props["MessageRetentionPeriod"])
        return f"{seconds / 86400:g} days, then deleted by SQS"
    if kind == "AWS::S3::Bucket":
        rule = props.get("ObjectLockConfiguration", {}).get("Rule", {}).get("DefaultRetention", {})
        days = _sub(rule.get("Days"), template) if rule else ""
        return f"Object Lock {rule.get('Mode', '')} {days} days (default), then by lifecycle" if rule else "not set"
    ttl = props.get("TimeToLiveSpecification", {})
    backup = ("PITR 35 days" if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
              or any(r.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
                     for r in props.get("Replicas", [])) else "no PITR")
    kept = f"TTL on `{ttl['AttributeName']}`" if ttl.get("Enabled") else "until deleted or erased"
    return f"{kept}; {backup}"


def _regions(resource: Mapping[str, Any], template: Mapping[str, Any]) -> str:
    allowed = _default(template, "AllowedRegions") or "any"
    if resource["Type"] == "AWS::DynamoDB::GlobalTable":
        replica = _default(template, "ReplicaRegion")
        return f"{allowed} + replica {replica} (AllowedRegions rule)"
    return f"{allowed} (AllowedRegions rule)"


def load_flows(path: Path, *, templates_dir: Path, data_classes: tuple[str, ...]) -> list[Flow]:
    """Every (data class, store) pair, with what the templates say; raises :class:`DataFlowError`."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems: list[str] = []
    flows: list[Flow] = []
    forms = set(raw.get("forms") or {})
    seen: set[str] = set()
    cache: dict[str, dict[str, Any]] = {}
    for store in raw.get("stores") or []:
        where = f"{store.get('template')}:{store.get('resource')}"
        template_path = templates_dir / f"{store.get('template')}.yaml"
        if not template_path.exists():
            problems.append(f"{where}: no template {template_path.name}")
            continue
        if str(template_path) not in cache:  # each template parsed once (setdefault would parse it every time)
            cache[str(template_path)] = _template(template_path)
        template = cache[str(template_path)]
        resource = template["Resources"].get(store.get("resource"))
        if resource is None or resource["Type"] not in _SERVICE:
            problems.append(f"{where}: no table, queue or bucket of that name in {template_path.name}")
            continue
        service = _SERVICE[resource["Type"]]
        physical = _names(store["resource"], resource, template)[-1]
        readers = _readers(store["resource"], physical, service, template)
        for data_class, form in (store.get("holds") or {}).items():
            if data_class not in data_classes:
                problems.append(f"{where}: unknown data class {data_class!r} (one of {data_classes})")
            if form not in forms:
                problems.append(f"{where}: unknown form {form!r} (one of {sorted(forms)})")
            seen.add(data_class)
            flows.append(Flow(data_class, form, store["template"], store["resource"], store.get("what", ""),
                              _SERVICE_NAME[service], _regions(resource, template), _encryption(resource),
                              _retention(resource, template), readers))
    missing = set(data_classes) - seen
    if missing:
        problems.append(f"data classes held nowhere in the map: {sorted(missing)} (add where each is held)")
    if problems:
        raise DataFlowError(f"{path}:\n  - " + "\n  - ".join(problems))
    return flows


def render_flows(flows: list[Flow], forms: Mapping[str, str]) -> str:
    """Markdown: one table per data class (store, form, region, encryption, retention, readers)."""
    out: list[str] = []
    for data_class in dict.fromkeys(f.data_class for f in flows):
        out += [f"### `{data_class}`", "", "| Held in | Form | Region | Encrypted at rest | Kept | Who can read |",
                "| --- | --- | --- | --- | --- | --- |"]
        for f in (f for f in flows if f.data_class == data_class):
            readers = ", ".join(f"`{r}`" for r in f.readers) or "no role in this template"
            extra = " + the vault's envelope" if f.form == "ciphertext" else ""
            out.append(f"| {f.service} `{f.template}:{f.resource}`<br>{f.what} | **{f.form}** | {f.regions} "
                       f"| {f.encryption}{extra} | {f.retention} | {readers} |")
        out.append("")
    out.append("Forms: " + "; ".join(f"**{k}**: {v}" for k, v in forms.items()) + ".")
    return "\n".join(out) + "\n"
