"""The data-flow map is generated from the templates: region, encryption, retention and readers come from
the resources themselves, every data class of the vault is mapped, and a wrong name fails the build."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from fasterpay.vault.classes import DataClass

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from sitebuild.dataflow import DataFlowError, load_flows, render_flows  # noqa: E402

TEMPLATES = ROOT / "reference" / "fasterpay" / "cloudformation"
FLOWS = ROOT / "compliance" / "dataflows.yaml"
CLASSES = tuple(c.value for c in DataClass)


@pytest.fixture(scope="module")
def flows() -> list:
    return load_flows(FLOWS, templates_dir=TEMPLATES, data_classes=CLASSES)


def _one(flows: list, template: str, resource: str, data_class: str) -> object:
    return next(f for f in flows if (f.template, f.resource, f.data_class) == (template, resource, data_class))


def test_every_data_class_is_mapped_and_clear_values_stay_in_the_ingest_queues(flows: list) -> None:
    assert {f.data_class for f in flows} == set(CLASSES)
    clear = {(f.template, f.resource) for f in flows if f.form == "clear"}
    assert clear == {("pipeline", "AcceptQueue"), ("pipeline", "AcceptDeadLetterQueue")}
    assert {f.form for f in flows if f.template == "vault" and f.resource == "VaultTable"} == {"ciphertext"}


def test_what_the_map_says_comes_from_the_templates(flows: list) -> None:
    accept = _one(flows, "pipeline", "AcceptQueue", "iban")
    assert accept.retention.startswith("4 days") and accept.encryption == "SQS-managed (SSE-SQS)"
    assert accept.readers == ("fasterpay-pipeline",)
    vault = _one(flows, "vault", "VaultTable", "pan")
    assert set(vault.readers) == {"fasterpay-tokenizer", "fasterpay-detokenizer"}  # never the router
    assert "PITR 35 days" in vault.retention and vault.regions.startswith("eu-west-2")
    replicated = _one(flows, "resilience", "PaymentsTable", "iban")
    assert "replica eu-west-1" in replicated.regions
    bucket = _one(flows, "audit", "AuditBucket", "iban")
    assert bucket.form == "reference" and "COMPLIANCE" in bucket.retention and bucket.readers == ("fasterpay-auditor",)


def test_a_changed_template_changes_the_map(tmp_path: Path) -> None:
    for path in TEMPLATES.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8").replace(
            "MessageRetentionPeriod: 345600  # 4 days", "MessageRetentionPeriod: 86400"), encoding="utf-8")
    changed = load_flows(FLOWS, templates_dir=tmp_path, data_classes=CLASSES)
    assert _one(changed, "pipeline", "AcceptQueue", "name").retention.startswith("1 days")


@pytest.mark.parametrize(("store", "message"), [
    ({"template": "vault", "resource": "NoSuchTable", "holds": {"iban": "token"}}, "no table, queue or bucket"),
    ({"template": "nowhere", "resource": "X", "holds": {"iban": "token"}}, "no template"),
    ({"template": "vault", "resource": "VaultTable", "holds": {"passport": "token"}}, "unknown data class"),
    ({"template": "vault", "resource": "VaultTable", "holds": {"iban": "hashed"}}, "unknown form"),
])
def test_a_wrong_name_fails_the_build(tmp_path: Path, store: dict, message: str) -> None:
    raw = yaml.safe_load(FLOWS.read_text(encoding="utf-8"))
    raw["stores"].append(store)
    path = tmp_path / "flows.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(DataFlowError, match=message):
        load_flows(path, templates_dir=TEMPLATES, data_classes=CLASSES)


def test_a_data_class_held_nowhere_fails_the_build(tmp_path: Path) -> None:
    with pytest.raises(DataFlowError, match="held nowhere"):
        load_flows(FLOWS, templates_dir=TEMPLATES, data_classes=(*CLASSES, "passport"))


def test_the_map_renders_a_table_per_class(flows: list) -> None:
    text = render_flows(flows, yaml.safe_load(FLOWS.read_text(encoding="utf-8"))["forms"])
    assert all(f"### `{c}`" in text for c in CLASSES) and "**clear**" in text


def test_a_policy_scoped_to_another_store_does_not_make_a_reader(tmp_path: Path) -> None:
    """``!If [Scoped, <another table>, "*"]`` is read as deployed on AWS: scoped, so not a reader of this one."""
    template = """
Parameters: {AllowedRegions: {Type: CommaDelimitedList, Default: eu-west-2}}
Conditions: {Scoped: !Equals [a, a]}
Resources:
  Kept: {Type: AWS::DynamoDB::Table, Properties: {TableName: kept, SSESpecification: {SSEEnabled: true}}}
  Other: {Type: AWS::DynamoDB::Table, Properties: {TableName: other}}
  Reader: {Type: AWS::IAM::Role, Properties: {RoleName: reader}}
  ReaderPolicy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      Roles: [!Ref Reader]
      PolicyDocument:
        Statement:
          - {Effect: Allow, Action: dynamodb:GetItem, Resource: !If [Scoped, !GetAtt Other.Arn, "*"]}
"""
    (tmp_path / "t.yaml").write_text(template, encoding="utf-8")
    flows = tmp_path / "flows.yaml"
    flows.write_text(yaml.safe_dump({"forms": {"token": "t"}, "stores": [
        {"template": "t", "resource": name, "holds": {"iban": "token"}} for name in ("Kept", "Other")]}),
        encoding="utf-8")
    found = {f.resource: f.readers for f in load_flows(flows, templates_dir=tmp_path, data_classes=("iban",))}
    assert found == {"Kept": (), "Other": ("reader",)}
