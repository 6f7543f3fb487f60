"""`python -m simulations deploy|teardown`: the idle estimate, the real-account guard, and the round trip
over moto server (real HTTP), after which nothing named for the prefix remains but keys pending deletion."""

from __future__ import annotations

import datetime
import io
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

import fasterpay.aws
from fasterpay.aws import AwsEnvironment, open_environment
from fasterpay.pricing import PRICES_EU_WEST_2
from simulations.cli import build_parser, main
from simulations.deploy import (
    IDLE_POLLERS_PER_MAPPING,
    LONG_POLL_SECONDS,
    estimate_idle_cost,
    estimate_markdown,
    name_patterns,
    usd,
)

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "reference" / "examples" / "run_on_aws.sh"
PREFIX = "fp-roundtrip"
SHORTEST_KEY_WINDOW_DAYS = 7  # the shortest waiting period KMS accepts for ScheduleKeyDeletion


class _Borrowed:
    """An open environment lent to the command, which must not close it (one moto server, many commands)."""

    def __init__(self, env: AwsEnvironment) -> None:
        self.env = env
        self.region = env.region
        self.backend = env.backend

    def __enter__(self) -> AwsEnvironment:
        return self.env

    def __exit__(self, *exc: object) -> None:
        return None


@contextmanager
def _server(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsEnvironment]:
    with open_environment("moto-server", region="eu-west-2") as env:
        monkeypatch.setattr(fasterpay.aws, "open_environment", lambda backend=None, region=None: _Borrowed(env))
        yield env


def _remaining(env: AwsEnvironment, prefix: str) -> dict[str, list[str]]:
    """Everything whose name starts with the prefix, found by prefix (not by the module's own name list)."""
    start = f"{prefix}-"
    cfn, iam = env.client("cloudformation"), env.client("iam")
    found = {
        "stacks": [s["StackName"] for s in cfn.describe_stacks()["Stacks"]
                   if s["StackName"].startswith(start) and s["StackStatus"] != "DELETE_COMPLETE"],
        "tables": [t for t in env.client("dynamodb").list_tables()["TableNames"] if t.startswith(start)],
        "queues": env.client("sqs").list_queues(QueueNamePrefix=start).get("QueueUrls", []),
        "buckets": [b["Name"] for b in env.client("s3").list_buckets()["Buckets"] if b["Name"].startswith(start)],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(start)],
        "policies": [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]
                     if p["PolicyName"].startswith(start)],
        "aliases": [a["AliasName"] for a in env.client("kms").list_aliases()["Aliases"]
                    if a["AliasName"].startswith(f"alias/{start}")],
        "functions": [f["FunctionName"] for f in env.client("lambda").list_functions()["Functions"]
                      if f["FunctionName"].startswith(start)],
        "log groups": [g["logGroupName"] for g in env.client("logs").describe_log_groups()["logGroups"]
                       if prefix in g["logGroupName"]],
    }
    return {kind: names for kind, names in found.items() if names}


def _customer_keys(env: AwsEnvironment) -> list[dict[str, Any]]:
    """Every key in the account but AWS managed ones (moto lists aws/dynamodb's key as a customer key)."""
    kms = env.client("kms")
    aws_managed = {a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]
                   if a["AliasName"].startswith("alias/aws/")}
    return [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in kms.list_keys()["Keys"]
            if k["KeyId"] not in aws_managed]


def _outputs(env: AwsEnvironment, stack: str) -> dict[str, str]:
    described = env.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def _workload(env: AwsEnvironment) -> None:
    """Tokenise and detokenise through the vault, and post a ledger transfer."""
    from fasterpay.ledger import Ledger, LedgerTables, Transfer
    from fasterpay.vault import Caller, VaultPolicy
    from fasterpay.vault.stack import VaultResources, vault_as_role

    out = _outputs(env, f"{PREFIX}-vault")
    resources = VaultResources(
        vault_key_arn=out["VaultKeyArn"], token_mac_key_arn=out["TokenMacKeyArn"], vault_table=out["VaultTableName"],
        audit_table=out["AuditTableName"], tokenizer_role_arn=out["TokenizerRoleArn"],
        detokenizer_role_arn=out["DetokenizerRoleArn"], eraser_role_arn=out["EraserRoleArn"],
        router_role_arn=out["RouterRoleArn"])
    vault = vault_as_role(env, resources, None,
                          policy=VaultPolicy.of(grants=[("scheme-gateway", ["iban"], ["scheme-submission"])]))
    tokens = [vault.tokenize(iban, "iban", tenant="bank-a", subject=f"customer-{n}")
              for n, iban in enumerate(["GB82 WEST 1234 5698 7654 32", "GB33 BUKB 2020 1555 5555 55"])]
    gateway = Caller("scheme-gateway", "scheme-submission")
    assert vault.detokenize(tokens[0], tenant="bank-a", caller=gateway) == "GB82WEST12345698765432"

    out = _outputs(env, f"{PREFIX}-ledger")
    tables = LedgerTables(ledger=out["LedgerTableName"], outbox=out["OutboxTableName"],
                          idempotency=out["IdempotencyTableName"], consumer=out["ConsumerTableName"],
                          queue_url=out["EventsQueueUrl"], dead_letter_queue_url=out["EventsDeadLetterQueueUrl"])
    ledger = Ledger(env.client("dynamodb"), tables)
    ledger.open_account("settlement", "GBP", allow_negative=True)
    ledger.open_account("alice", "GBP")
    ledger.transfer(Transfer("fund-alice", "settlement", "alice", 50_00, "GBP"))
    assert ledger.balance("alice").balance_minor == 50_00 and ledger.reconcile().balanced


def _package(tmp_path: Path) -> Path:
    path = tmp_path / "fasterpay-lambda.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fasterpay/__init__.py", "")
    return path


def test_round_trip_over_moto_server_leaves_only_keys_pending_deletion(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with _server(monkeypatch) as env:
        assert env.endpoint_url and env.endpoint_url.startswith("http://127.0.0.1:")
        assert main(["deploy", "--prefix", PREFIX, "--package", str(_package(tmp_path))]) == 0
        out = capsys.readouterr().out
        assert out.index("Idle cost of the deployed stacks") < out.index(f"stack {PREFIX}-vault ...")
        assert f"uploaded to s3://{PREFIX}-code-" in out and "deployed 4 stacks" in out
        assert {"stacks", "tables", "queues", "buckets", "roles", "policies", "aliases", "functions"} <= set(
            _remaining(env, PREFIX))

        assert main(["deploy", "--prefix", PREFIX]) == 1  # the prefix is taken: refused, nothing created
        assert f"prefix {PREFIX!r} is in use" in capsys.readouterr().out

        _workload(env)

        assert main(["teardown", "--prefix", PREFIX]) == 0
        out = capsys.readouterr().out
        assert "3 KMS keys pending deletion until" in out and f"({SHORTEST_KEY_WINDOW_DAYS} days" in out
        assert "problem" not in out and "left behind: S3 bucket" not in out
        assert _remaining(env, PREFIX) == {}

        keys = _customer_keys(env)
        assert len(keys) == 3 and {k["KeyState"] for k in keys} == {"PendingDeletion"}
        for key in keys:
            days = key["DeletionDate"] - datetime.datetime.now(datetime.timezone.utc)
            assert datetime.timedelta(days=SHORTEST_KEY_WINDOW_DAYS - 1) < days <= datetime.timedelta(
                days=SHORTEST_KEY_WINDOW_DAYS)

        assert main(["teardown", "--prefix", PREFIX]) == 0  # idempotent
        out = capsys.readouterr().out
        assert f"teardown {PREFIX}: nothing left to delete." in out and "problem" not in out


def test_object_lock_keeps_the_audit_bucket_until_its_date_and_teardown_says_so(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with _server(monkeypatch) as env:
        s3 = env.client("s3")
        bucket = f"{PREFIX}-audit-eu-west-2"  # the audit bucket as deploy_audit creates it on moto
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True,
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
        s3.put_object(Bucket=bucket, Key="bank-a/segment-000001", Body=b"{}")  # locked for a day by default
        s3.delete_object(Bucket=bucket, Key="bank-a/segment-000001")  # a delete marker: deletable
        assert main(["teardown", "--prefix", PREFIX]) == 0
        out = capsys.readouterr().out
        tomorrow = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        assert (f"left behind: S3 bucket {bucket}: 1 object version under S3 Object Lock (1 others deleted), "
                f"retained until {tomorrow:%Y-%m-%d}") in out
        assert "not even the account root" in out and "Run this teardown again after that date" in out
        assert _remaining(env, PREFIX) == {"buckets": [bucket]}

        assert main(["teardown", "--prefix", PREFIX]) == 0  # before the date: nothing more, and no error
        assert "nothing more can be deleted before the date below" in capsys.readouterr().out


def test_teardown_deletes_the_bucket_once_the_retain_until_date_has_passed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with _server(monkeypatch) as env:
        s3 = env.client("s3")
        bucket = f"{PREFIX}-audit-eu-west-2"
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True,
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        retain_until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        s3.put_object(Bucket=bucket, Key="bank-a/checkpoint-000001", Body=b"{}", ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=retain_until)
        assert main(["teardown", "--prefix", PREFIX]) == 0
        assert f"left behind: S3 bucket {bucket}: 1 object version under S3 Object Lock" in capsys.readouterr().out
        # the retain-until date passes: moto's clock (the server runs in this process) moves past it, no sleep
        import moto.s3.models as s3_models

        later = retain_until.replace(tzinfo=None) + datetime.timedelta(seconds=1)
        monkeypatch.setattr(s3_models, "utcnow", lambda: later)
        assert main(["teardown", "--prefix", PREFIX]) == 0
        out = capsys.readouterr().out
        assert f"deleted bucket {bucket}" in out and "left behind: S3 bucket" not in out
        assert _remaining(env, PREFIX) == {}


def test_teardown_finds_what_stacks_retain_after_the_stacks_are_gone(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """DeletionPolicy: Retain keeps tables and keys when a stack is deleted; tags and names still find them."""
    with _server(monkeypatch) as env:
        assert main(["deploy", "--prefix", PREFIX, "--package", "/nonexistent.zip"]) == 0
        assert "no package at /nonexistent.zip: the pipeline's functions are placeholders" in capsys.readouterr().out
        cfn = env.client("cloudformation")
        for stack in ("pipeline", "audit", "ledger", "vault"):  # deleted outside teardown: what is retained stays
            try:
                cfn.delete_stack(StackName=f"{PREFIX}-{stack}")
            except ClientError:
                pass  # moto drops the stack record even when it stops at an attached IAM policy
        # what outlives a stack on AWS: a log group Lambda wrote, a queue CloudFormation failed to delete
        env.client("logs").create_log_group(logGroupName=f"/aws/lambda/{PREFIX}-accept")
        env.client("sqs").create_queue(QueueName=f"{PREFIX}-accept-dlq")
        left = _remaining(env, PREFIX)
        assert "stacks" not in left and {"tables", "queues", "log groups", "roles"} <= set(left)
        assert main(["teardown", "--prefix", PREFIX]) == 0
        assert _remaining(env, PREFIX) == {}
        keys = _customer_keys(env)
        assert len(keys) == 3 and {key["KeyState"] for key in keys} == {"PendingDeletion"}


def test_names_are_matched_exactly_not_by_prefix() -> None:
    names = name_patterns("fp", account="123456789012", region="eu-west-2")
    assert names.matches("table", "fp-vault") and not names.matches("table", "fp-trial-vault")
    assert names.matches("bucket", "fp-audit-123456789012-eu-west-2")
    assert names.matches("policy", "fp-pipeline-PipelinePolicy-ANOX7T9BXF5V")
    assert names.matches("log group", "/aws/lambda/fp-accept") and not names.matches("log group", "/aws/lambda/fp-x")
    with pytest.raises(ValueError, match="must match"):
        name_patterns("FP_bad", account="1", region="eu-west-2")


# ---- the guard


def _forbid_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_call(self: BaseClient, operation: str, params: dict[str, Any]) -> None:
        raise AssertionError(f"an AWS call was made: {operation}")

    monkeypatch.setattr(BaseClient, "_make_api_call", no_call)


@pytest.mark.parametrize("command", ["deploy", "teardown"])
def test_real_account_is_refused_without_the_opt_in_before_any_call(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str) -> None:
    monkeypatch.setenv("FASTERPAY_BACKEND", "aws")
    monkeypatch.delenv("FASTERPAY_ALLOW_REAL_AWS", raising=False)
    _forbid_calls(monkeypatch)
    assert main([command, "--prefix", "fp-guard", "--yes"]) == 2
    out = capsys.readouterr().out
    assert "refused: The 'aws' backend calls a real AWS account" in out and "FASTERPAY_ALLOW_REAL_AWS=1" in out


class _Stop(Exception):
    pass


def _stub_aws(monkeypatch: pytest.MonkeyPatch, calls: list[str], *, after: str = "refuse") -> None:
    """A real-account backend whose only answer is GetCallerIdentity (and, for teardown, empty read-only lists)."""
    monkeypatch.setenv("FASTERPAY_BACKEND", "aws")
    monkeypatch.setenv("FASTERPAY_ALLOW_REAL_AWS", "1")
    monkeypatch.setenv("FASTERPAY_REGION", "eu-west-2")

    def stub(self: BaseClient, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        calls.append(operation)
        if operation == "GetCallerIdentity":
            return {"Account": "111122223333", "Arn": "arn:aws:iam::111122223333:user/alice", "UserId": "AIDA"}
        if after == "read" and operation == "DescribeStacks":
            raise ClientError({"Error": {"Code": "ValidationError", "Message": "does not exist"}}, operation)
        if after == "read" and operation == "ListTables":
            return {"TableNames": ["fp-guard-vault"]}
        if after == "read" and operation.startswith(("List", "Describe", "Get")):
            return {}
        raise _Stop(operation)

    monkeypatch.setattr(BaseClient, "_make_api_call", stub)


def test_with_the_opt_in_a_no_at_the_prompt_stops_after_get_caller_identity(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    _stub_aws(monkeypatch, calls)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    assert main(["deploy", "--prefix", "fp-guard"]) == 1
    out = capsys.readouterr().out
    assert calls == ["GetCallerIdentity"]
    assert "AWS account 111122223333 (arn:aws:iam::111122223333:user/alice), region eu-west-2." in out
    assert "account 111122223333, region eu-west-2? [y/N]" in out and "stopped: nothing was changed." in out
    assert out.index("Idle cost") < out.index("AWS account")  # the estimate comes first


def test_teardown_shows_the_plan_and_a_no_changes_nothing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    _stub_aws(monkeypatch, calls, after="read")
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    assert main(["teardown", "--prefix", "fp-guard"]) == 1
    out = capsys.readouterr().out
    assert calls[0] == "GetCallerIdentity" and all(c.startswith(("List", "Describe", "Get")) for c in calls)
    assert "teardown fp-guard found: 1 table (fp-guard-vault)." in out and "stopped" in out


def test_yes_skips_the_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    _stub_aws(monkeypatch, calls)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # a prompt would read EOF and stop
    with pytest.raises(_Stop):
        main(["deploy", "--prefix", "fp-guard", "--yes"])
    assert calls[0] == "GetCallerIdentity" and len(calls) > 1


# ---- the estimate


def test_estimate_only_makes_no_call_and_prices_keys_and_idle_polls(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FASTERPAY_BACKEND", "aws")  # no opt-in needed: nothing is called
    monkeypatch.delenv("FASTERPAY_ALLOW_REAL_AWS", raising=False)
    _forbid_calls(monkeypatch)
    assert main(["deploy", "--estimate-only", "--region", "eu-west-2", "--package", "/nonexistent.zip"]) == 0
    out = capsys.readouterr().out

    estimate = estimate_idle_cost("eu-west-2")
    by_item = {line.item: line for line in estimate.lines}
    keys = by_item["KMS customer managed keys"]
    assert keys.quantity == "3 keys"  # vault envelope key, token HMAC key, audit signing key
    assert keys.usd_per_day == 3 * PRICES_EU_WEST_2.kms_key_month * 12 / 365  # a key-month prorated hourly
    polls = by_item["SQS polls by Lambda event source mappings"]
    assert polls.usd_per_day == (2 * IDLE_POLLERS_PER_MAPPING * 86_400 // LONG_POLL_SECONDS
                                 * PRICES_EU_WEST_2.sqs_standard_per_million / 1_000_000)
    assert estimate.usd_per_day == keys.usd_per_day + polls.usd_per_day
    assert all(line.usd_per_day in (Decimal(0), None) for line in estimate.lines if line not in (keys, polls))
    assert f"total" in out and f"{usd(estimate.usd_per_day)} per day" in out
    assert "free tiers not applied" in out
    assert f"| **Total** | | **{usd(estimate.usd_per_day)}** |" in estimate_markdown("eu-west-2")


# ---- the page's commands


def _script_lines() -> list[str]:
    return [line.split("#", 1)[0].strip() for line in SCRIPT.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_pages_commands_parse_and_name_files_that_exist() -> None:
    bash = shutil.which("bash")
    assert bash is not None
    assert subprocess.run([bash, "-n", str(SCRIPT)], capture_output=True, text=True).returncode == 0
    text = SCRIPT.read_text(encoding="utf-8")
    starts = re.findall(r"--8<-- \[start:([a-z-]+)\]", text)
    assert starts == re.findall(r"--8<-- \[end:([a-z-]+)\]", text)
    assert starts == ["estimate", "package", "deploy", "notebook", "teardown"]
    commands = [line.removeprefix("python -m simulations ").split() for line in _script_lines()
                if line.startswith("python -m simulations ")]
    assert [c[0] for c in commands] == ["deploy", "deploy", "teardown", "teardown"]
    for command in commands:
        build_parser().parse_args(command)  # exits (fails the test) on an unknown option
    assert re.search(r"^package:", (REPO / "Makefile").read_text(encoding="utf-8"), re.M), "make package is missing"
    notebook = next(line for line in _script_lines() if line.startswith("jupyter nbconvert"))
    assert (REPO / notebook.split("--execute ")[1].split()[0]).is_file()
    assert shutil.which("jupyter-nbconvert", path=str(Path(sys.executable).parent)) is not None


def test_deploy_takes_the_allowed_regions_and_refuses_the_others_before_creating_anything(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Data residency per deployment: the allowed regions reach every helper; a region outside them is refused."""
    from simulations.cli import build_parser, main

    args = build_parser().parse_args(["deploy", "--allowed-regions", "eu-west-2,eu-west-1"])
    assert args.allowed_regions == ("eu-west-2", "eu-west-1")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["deploy", "--allowed-regions", "not a region"])
    code = main(["deploy", "--region", "us-east-1", "--allowed-regions", "eu-west-2", "--yes", "--package", "none.zip"])
    out = capsys.readouterr().out
    assert code != 0 and "us-east-1 is not in allowed_regions ('eu-west-2',)" in out
