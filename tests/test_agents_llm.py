"""The routing agent: tokenised prompts, checked answers, fallbacks with reasons, sealed prompts, audited decisions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from fasterpay.agents.llm import (
    FALLBACK_REASONS,
    DynamoDbPromptStore,
    GuardrailSettings,
    InMemoryPromptStore,
    InvocationBudget,
    KmsPromptStore,
    RoutingAgent,
)
from fasterpay.agents.prompts import (
    REMOVED,
    ExceptionCase,
    PromptRefusedError,
    RuleContext,
    RuleContextError,
    SanctionsNearMiss,
    scrub_remittance,
)
from fasterpay.audit import AuditTrail, InMemoryAuditStore, LocalCheckpointSigner, decode_entry
from fasterpay.observability.redaction import PersonalValueRegistry, refuse_personal_data, refuse_personal_text
from fasterpay.pipeline.routing import default_routing_rules
from simulations.standin_model import NetworkAttemptError, StandInModel, standin_bedrock_client
from simulations.templates import parse_template

REGION = "eu-west-2"
NAME = "Ada Lovelace"
IBAN = "GB82WEST12345698765432"
IBAN_SPACED = "GB82 WEST 1234 5698 7654 32"
CARD = "4111 1111 1111 1111"
ACCOUNT = "31926819"
TEMPLATE = Path(__file__).resolve().parent.parent / "reference" / "fasterpay" / "cloudformation" / "agents.yaml"


def _registry() -> PersonalValueRegistry:
    registry = PersonalValueRegistry(key=b"k" * 32)
    registry.register(NAME)
    registry.register(ACCOUNT, kind="account number")
    return registry


def case(kind: str = "unroutable", **changes: Any) -> ExceptionCase:
    base = ExceptionCase(
        case_id="case-1", kind=kind, end_to_end_id="E2E-1", scheme="uk_fps", currency="GBP", amount_minor=12_500,
        creditor_agent={"unroutable": "CITIGB2L", "repair_agent": "barcgb22"}.get(kind, "BARCGB22"),
        debtor_agent="MIDLGB22", creditor_account_token="tok_iban_abc123", creditor_name_token="tok_name_def456",
        rule_ids=("route.uk_fps",), rules_reason={"unroutable": "AB08", "repair_agent": "RC01"}.get(kind),
        remittance_text="invoice 42",
        sanctions=(SanctionsNearMiss(Decimal("0.80"), Decimal("0.88"), "uk-hmt-2026-11", "tok_name_ghi789")
                   if kind == "sanctions_near_miss" else None))
    return replace(base, **changes)


class Harness:
    def __init__(self, kms: Any, key_id: str, **agent_args: Any) -> None:
        self.model = agent_args.pop("model", None) or StandInModel(seed=1)
        self.audit_store = InMemoryAuditStore()
        self.trail = AuditTrail(store=self.audit_store, signer=LocalCheckpointSigner.generate(),
                                origin="bank-a/agent", batch_size=1)
        self.prompts = KmsPromptStore(kms, key_id, InMemoryPromptStore())
        self.registry = agent_args.pop("registry", None) or _registry()
        self.agent = RoutingAgent(bedrock=standin_bedrock_client(self.model), audit=self.trail, prompts=self.prompts,
                                  rule_context=RuleContext.from_rules(default_routing_rules()),
                                  registry=self.registry, **agent_args)

    def entries(self) -> list[dict[str, Any]]:
        return [decode_entry(line) for key, body in sorted(self.audit_store.objects().items())
                if key.startswith("segments/") for line in body.splitlines() if line]


@pytest.fixture(scope="module")
def kms() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("kms", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        yield client, client.create_key()["KeyMetadata"]["KeyId"]


@pytest.fixture
def harness(kms: tuple[Any, str]) -> Harness:
    return Harness(*kms)


# -- prompts ------------------------------------------------------------------------------------------------
SEEDED = f"rent from {NAME} acct {IBAN_SPACED} card {CARD} mail ada@example.com sort 20-00-00 {ACCOUNT} ok"


def test_prompt_never_carries_names_ibans_or_account_numbers(harness: Harness) -> None:
    harness.agent.decide(case(remittance_text=SEEDED))
    (sent,) = harness.model.requests
    for value in (NAME, "Lovelace", IBAN, IBAN_SPACED, CARD, CARD.replace(" ", ""), ACCOUNT, "ada@example.com"):
        assert value not in sent and value not in json.loads(sent)["messages"][0]["content"][0]["text"]
    refuse_personal_text(sent, registry=harness.registry)


@pytest.mark.parametrize(("text", "kind"), [
    (f"paid {IBAN_SPACED} today", "iban"), (f"paid {IBAN.lower()} today", "iban"), (f"card {CARD} ok", "pan"),
    ("write to ada@example.com", "email"), (f"for {NAME.upper()}'s rent", "name"),
    (f"acct {ACCOUNT} ok", "account_number"), ("Z\u00fcrich \uff27\uff22\uff18\uff12WEST12345698765432", "iban"),
])
def test_remittance_scanning_replaces_or_removes_each_kind(text: str, kind: str) -> None:
    removed = scrub_remittance(text, registry=_registry())
    assert removed.findings.get(kind) == 1 and REMOVED in removed.text
    tokenised = scrub_remittance(text, registry=_registry(), tokenize=lambda value, k: f"tok_{k}_x1")
    assert f"tok_{kind}_x1" in tokenised.text and tokenised.tokenized == 1


def test_long_digit_runs_are_removed_and_invisible_characters_dropped() -> None:
    scrubbed = scrub_remittance("sc 20-00-00 55779911 r\u200bo\u202eute", registry=_registry())
    assert scrubbed.text == f"sc {REMOVED} route" and scrubbed.findings == {"digit run": 1}


def test_a_prompt_that_still_holds_personal_data_is_not_sent(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    import fasterpay.agents.prompts as prompts

    monkeypatch.setattr(prompts, "find_personal_data", lambda text, registry=None: None)  # a scanner that misses
    decision = harness.agent.decide(case(remittance_text=f"from {NAME}"))
    assert (decision.action, decision.fallback_reason) == ("hold", "prompt_refused")
    assert harness.model.calls == 0
    with pytest.raises(PromptRefusedError):
        prompts.scrub_remittance(f"to {NAME}", registry=_registry())


def test_rule_context_is_pinned_by_sha256_and_allow_listed() -> None:
    rules = default_routing_rules()
    context = RuleContext.from_rules(rules)
    assert RuleContext.load(context.to_bytes(), expected_sha256=context.sha256, rules=rules).sha256 == context.sha256
    poisoned = json.loads(context.to_bytes())
    poisoned["rails"].append({"rail": "attacker_rail", "currencies": ["GBP"], "max_amount_major": None})
    data = json.dumps(poisoned, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(RuleContextError, match="pinned"):
        RuleContext.load(data, expected_sha256=context.sha256, rules=rules)
    import hashlib
    with pytest.raises(RuleContextError, match="rail"):
        RuleContext.load(data, expected_sha256=hashlib.sha256(data).hexdigest(), rules=rules)


# -- valid answers --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "changes", "expected"), [
    ("sanctions_near_miss", {}, ("route", "rail=uk_fps")),
    ("sanctions_near_miss", {"sanctions": SanctionsNearMiss(Decimal("0.86"), Decimal("0.88"), "l-1", "tok_name_a1")},
     ("hold", "none")),
    ("unroutable", {}, ("reject", "reason=AB08")),
    ("repair_agent", {}, ("hold", "suggest=BARCGB22")),
    ("repair_agent", {"creditor_agent": "BARCGB2"}, ("reject", "reason=RC01")),
])
def test_valid_answers_are_accepted_for_each_action(harness: Harness, kind: str, changes: dict[str, Any],
                                                   expected: tuple[str, str]) -> None:
    decision = harness.agent.decide(case(kind, **changes))
    assert decision.source == "model" and (decision.action, decision.detail) == expected


# -- fallbacks ---------------------------------------------------------------------------------------------------
FAULTS = {"broken_json": "invalid_json", "text_only": "no_tool_use", "spoofed_tool": "spoofed_tool",
          "two_tools": "spoofed_tool", "outside_allow_list": "not_allowed", "unknown_rail": "not_allowed",
          "throttle": "throttled", "model_error": "model_error", "timeout": "timeout",
          "guardrail_intervened": "guardrail_intervened"}


@pytest.mark.parametrize(("fault", "reason"), sorted(FAULTS.items()))
def test_each_fallback_reason_has_its_cause(kms: tuple[Any, str], fault: str, reason: str) -> None:
    h = Harness(*kms, model=StandInModel(seed=2, faults={fault: 1.0}), guardrail=GuardrailSettings("gr-1", "1"))
    decision = h.agent.decide(case("sanctions_near_miss"))
    assert (decision.action, decision.source, decision.fallback_reason) == ("hold", "fallback", reason)
    if fault == "guardrail_intervened":
        assert decision.guardrail == "intervened"


def test_schema_violation_and_deadline(kms: tuple[Any, str]) -> None:
    h = Harness(*kms, deadline_ms=1)  # every modelled latency is above 1 ms
    assert h.agent.decide(case()).fallback_reason == "timeout"
    h = Harness(*kms)
    h.model.answer = lambda request, input_chars: (type("R", (), {"status_code": 200})(), {  # type: ignore[method-assign]
        "output": {"message": {"content": [{"toolUse": {"name": "decide", "toolUseId": "t",
                                                         "input": {"action": "hold", "rationale_code": "x"}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 1}, "metrics": {"latencyMs": 5}})
    assert h.agent.decide(case()).fallback_reason == "schema_violation"


def test_every_fallback_reason_is_covered_by_a_test() -> None:
    covered = set(FAULTS.values()) | {"schema_violation", "prompt_refused", "over_budget"}
    assert covered == set(FALLBACK_REASONS)


def test_over_budget_falls_back_without_calling_the_model(kms: tuple[Any, str]) -> None:
    budget = InvocationBudget(calls_per_window=2, tokens_per_window=10**6, window_seconds=60, clock=lambda: 0.0)
    h = Harness(*kms, budget=budget)
    decisions = [h.agent.decide(case(case_id=f"case-{i}")) for i in range(4)]
    assert [d.fallback_reason for d in decisions] == [None, None, "over_budget", "over_budget"]
    assert h.model.calls == 2
    tokens = InvocationBudget(calls_per_window=100, tokens_per_window=500, window_seconds=60, clock=lambda: 0.0)
    assert Harness(*kms, budget=tokens).agent.decide(case()).fallback_reason == "over_budget"


# -- audit and the sealed prompt --------------------------------------------------------------------------------
def test_every_decision_is_audited_by_reference_without_personal_data(kms: tuple[Any, str]) -> None:
    h = Harness(*kms, model=StandInModel(seed=3, faults={"throttle": 0.3, "broken_json": 0.2}))
    decisions = [h.agent.decide(case(kind, case_id=f"case-{i}-{kind[:3]}", remittance_text=SEEDED))
                 for i in range(4) for kind in ("unroutable", "repair_agent", "sanctions_near_miss")]
    entries = h.entries()
    assert len(entries) == len(decisions) == 12
    for decision, entry in zip(decisions, entries, strict=True):
        assert entry["kind"] == "agent.decision" and entry["outcome"] == decision.action
        assert set(entry["refs"]) == {"prompt_sha256", "model_id", "model_version", "source", "detail", "latency_ms",
                                      "fallback", "guardrail", "prompt_ref", "rule_context_sha256", "tokens",
                                      "rationale"}
        assert entry["refs"]["prompt_sha256"] == decision.prompt_sha256 and len(decision.prompt_sha256) == 64
        assert entry["refs"]["fallback"] == (decision.fallback_reason or "none")
        refuse_personal_data(entry["refs"], registry=h.registry)
        assert not any(v in json.dumps(entry) for v in (NAME, IBAN, ACCOUNT, CARD))


def test_stored_prompt_opens_only_under_its_encryption_context(harness: Harness) -> None:
    decision = harness.agent.decide(case(remittance_text=SEEDED))
    stored = harness.prompts.open(decision.prompt_ref, case_id="case-1")
    assert json.loads(stored)["modelId"] == harness.agent.model_id and NAME not in stored.decode()
    with pytest.raises(ClientError) as wrong_case:
        harness.prompts.open(decision.prompt_ref, case_id="case-2")
    assert wrong_case.value.response["Error"]["Code"] == "InvalidCiphertextException"
    with pytest.raises(ClientError):
        harness.prompts.open(decision.prompt_ref, case_id="case-1", context={"purpose": "other", "case": "case-1"})


def test_the_stand_in_client_never_reaches_the_network() -> None:
    client = standin_bedrock_client(StandInModel())
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    with pytest.raises(NetworkAttemptError):
        client.apply_guardrail(guardrailIdentifier="g", guardrailVersion="1", source="INPUT",
                               content=[{"text": {"text": "x"}}])


# -- the agent's IAM policy -------------------------------------------------------------------------------------
def test_agent_policy_allows_one_model_only_with_the_guardrail() -> None:
    doc = parse_template(TEMPLATE.read_text(encoding="utf-8"))
    statements = doc["Resources"]["AgentPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow" and "bedrock:InvokeModel" in str(s["Action"])]
    assert len(allow) == 1 and allow[0]["Action"] == "bedrock:InvokeModel"
    assert allow[0]["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/${ModelId}"}
    guardrail = {"Fn::Sub": "${AgentGuardrail.GuardrailArn}:${AgentGuardrailVersion.Version}"}
    assert allow[0]["Condition"] == {"StringEquals": {"bedrock:GuardrailIdentifier": guardrail}}
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"StringNotEquals": {"bedrock:GuardrailIdentifier": guardrail}}
    seal = next(s for s in statements if s["Action"] == "kms:GenerateDataKey")
    assert seal["Condition"]["StringEquals"] == {"kms:EncryptionContext:purpose": "agent-prompt"}


def test_guardrail_blocks_personal_data_and_prompt_attacks() -> None:
    props = parse_template(TEMPLATE.read_text(encoding="utf-8"))["Resources"]["AgentGuardrail"]["Properties"]
    pii = {e["Type"]: e["Action"] for e in props["SensitiveInformationPolicyConfig"]["PiiEntitiesConfig"]}
    assert {pii[t] for t in ("NAME", "EMAIL", "INTERNATIONAL_BANK_ACCOUNT_NUMBER", "CREDIT_DEBIT_CARD_NUMBER",
                             "UK_NATIONAL_INSURANCE_NUMBER")} == {"BLOCK"}
    assert props["ContentPolicyConfig"]["FiltersConfig"][0]["Type"] == "PROMPT_ATTACK"
    import re
    (regex,) = props["SensitiveInformationPolicyConfig"]["RegexesConfig"]
    assert re.search(regex["Pattern"], f"sort 20-00-00 {ACCOUNT}") and not re.search(regex["Pattern"], "inv 42")


def test_a_case_decided_again_after_a_redelivery_keeps_its_first_sealed_prompt(kms: tuple[Any, str]) -> None:
    """A redelivered case seals the same prompt under the same reference: the write-once store keeps the first
    blob and the second decision goes through (it must not fail for ever on its own earlier write)."""
    ddb = boto3.client("dynamodb", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    ddb.create_table(TableName="prompts", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "prompt_ref", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "prompt_ref", "KeyType": "HASH"}])
    client, key_id = kms
    harness = Harness(client, key_id)
    harness.agent.prompts = KmsPromptStore(client, key_id, DynamoDbPromptStore(ddb, "prompts"))
    first = harness.agent.decide(case())
    stored = ddb.get_item(TableName="prompts", Key={"prompt_ref": {"S": first.prompt_ref}})["Item"]["blob"]["B"]
    again = harness.agent.decide(case())
    assert again.prompt_ref == first.prompt_ref and (again.action, again.source) == (first.action, first.source)
    assert ddb.get_item(TableName="prompts", Key={"prompt_ref": {"S": first.prompt_ref}})["Item"]["blob"]["B"] == stored
    assert harness.agent.prompts.open(first.prompt_ref, case_id=case().case_id)
