"""The pipeline on moto: stages as Lambda handlers, exactly-once effects, bad input, DLQ and redrive."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

import pytest

from fasterpay.iso20022 import build_pacs008, parse_pacs002, parse_pacs008
from fasterpay.pipeline import SimulatedSchemeGateway, default_routing_rules, dead_letters, load_sanctions_list, redrive, submission_body
from fasterpay.pipeline.benchmark import PipelineHarness, build_harness, submission_id
from fasterpay.pipeline.stack import deploy_pipeline
from simulations.generator import INVALID_CASES, GeneratedMessage, GeneratorSettings, generate_messages


@pytest.fixture
def harness(env: Any) -> PipelineHarness:
    built = build_harness(env, seed=11)
    built.start_cycle("C0001")
    return built


def _valid(count: int, seed: int = 5) -> list[GeneratedMessage]:
    """Valid messages that route to a rail and stay under the fraud threshold (so only the case under test varies)."""
    rules, out = default_routing_rules(), []
    for m in generate_messages(GeneratorSettings(count=count * 4, seed=seed)):
        tx = parse_pacs008(m.xml).transactions[0]
        agent = tx.creditor_agent.bic or f"GBDSC:{tx.creditor_agent.member_id}"
        if rules.route_agent(agent, tx.currency, tx.amount).rail and tx.amount < 400_000:
            out.append(m)
    return out[:count]


def _run(harness: PipelineHarness, messages: list[GeneratedMessage], *, fund: bool = True) -> dict[str, Any]:
    if fund:
        harness.onboard(messages, underfunded_rate=0.0, rng=random.Random(1))
    harness.submit(messages)
    harness.runner.run_until_idle()
    return {s.payment.end_to_end_id: s for s in harness.ctx.statuses.payments()}


def test_template_declares_every_stage_with_a_dlq_and_no_mappings_on_moto(env: Any) -> None:
    res = deploy_pipeline(env.client("cloudformation"), name_prefix="tpl")
    sqs = env.client("sqs")
    for stage, url in res.queues.items():
        policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
                            ["Attributes"]["RedrivePolicy"])
        assert policy["deadLetterTargetArn"].endswith(f"tpl-{stage}-dlq") and int(policy["maxReceiveCount"]) == 3
    functions = {f["FunctionName"] for f in env.client("lambda").list_functions()["Functions"]}
    assert {f"tpl-{s}" for s in res.queues} <= functions
    assert env.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []


def test_moto_honours_redrive_policy_max_receive_count(env: Any) -> None:
    res = deploy_pipeline(env.client("cloudformation"), name_prefix="rdp", max_receive_count=2)
    sqs = env.client("sqs")
    sqs.send_message(QueueUrl=res.queues["route"], MessageBody="x")
    counts = []
    for _ in range(3):
        for m in sqs.receive_message(QueueUrl=res.queues["route"], AttributeNames=["All"]).get("Messages", []):
            counts.append(m["Attributes"]["ApproximateReceiveCount"])
            sqs.change_message_visibility(QueueUrl=res.queues["route"], ReceiptHandle=m["ReceiptHandle"],
                                          VisibilityTimeout=0)
    assert counts == ["1", "2"]
    assert sqs.receive_message(QueueUrl=res.dead_letter_queues["route"]).get("Messages")


def test_valid_payments_settle_with_hold_and_clear_posted_once(harness: PipelineHarness) -> None:
    messages = _valid(6)
    statuses = _run(harness, messages)
    assert len(statuses) == 6
    report = harness.close("C0001")
    journal = {t.transfer_id for t in harness.ctx.ledger.journal()}
    for status in harness.ctx.statuses.payments():
        assert status.status == "ACSC", (status.status, status.reason)
        assert [h["status"] for h in status.history] == ["ACTC", "ACCP", "ACSP", "ACSC"]
        assert {f"{status.uetr}:hold", f"{status.uetr}:clear"} <= journal and f"{status.uetr}:release" not in journal
    assert report.payments == 6 and sum(p.net_minor for p in report.positions) == 0
    recon = harness.reconcile()
    assert recon.mismatches == () and recon.balanced
    assert all(r.matches for r in harness.replay())


def test_no_clear_personal_data_leaves_ingest(harness: PipelineHarness) -> None:
    messages = _valid(2)
    _run(harness, messages)
    tx = parse_pacs008(messages[0].xml).transactions[0]
    item = harness.admin_dynamodb.scan(TableName=harness.resources.payments_table)["Items"]
    stored = json.dumps(item)
    assert tx.debtor.name not in stored and tx.creditor.name not in stored
    account = tx.debtor_account.iban or tx.debtor_account.other_id  # type: ignore[union-attr]
    assert account not in stored


@pytest.mark.parametrize("case", sorted(INVALID_CASES))
def test_bad_input_is_rejected_with_its_reason_and_a_pacs002_and_the_batch_goes_on(
        harness: PipelineHarness, case: str) -> None:
    messages = generate_messages(GeneratorSettings(count=60, seed=3, invalid_rate=0.5))
    bad = next(m for m in messages if m.case == case)
    good = _valid(3, seed=4)
    statuses = _run(harness, [good[0], bad, good[1], good[2]])
    assert {statuses[m.end_to_end_id].status for m in good} == {"ACSP"}
    rejected = list(harness.ctx.statuses.rejected_at_ingest())
    assert [r["reasons"] for r in rejected] == [[bad.expected_reason.value]]  # type: ignore[union-attr]
    item = harness.admin_dynamodb.get_item(TableName=harness.resources.payments_table,
                                           Key={"pk": {"S": f"REJ#{submission_id(bad)}"}})["Item"]
    answer = parse_pacs002(item["pacs002"]["B"])
    codes = [r.code for r in answer.group_reasons] + [r.code for t in answer.transactions for r in t.reasons]
    assert answer.group_status.value == "RJCT" and bad.expected_reason.value in codes  # type: ignore[union-attr]
    assert harness.runner.report.failed.get("ingest", 0) == 0  # rejected, not retried: nothing lost


def test_a_duplicate_submission_is_du01_but_a_redelivery_is_not(harness: PipelineHarness) -> None:
    message = _valid(1)[0]
    _run(harness, [message])
    url = harness.resources.queues["ingest"]
    harness.ctx.sqs.send_message(QueueUrl=url, MessageBody=submission_body(message.xml, submission_id(message)))  # redelivery
    harness.ctx.sqs.send_message(QueueUrl=url, MessageBody=submission_body(message.xml, "sub-other"))  # duplicate
    harness.runner.run_until_idle()
    assert [r["reasons"] for r in harness.ctx.statuses.rejected_at_ingest()] == [["DU01"]]
    assert [s.status for s in harness.ctx.statuses.payments()] == ["ACSP"]
    assert sum(1 for t in harness.ctx.ledger.journal() if t.transfer_id.endswith(":hold")) == 1


def test_insufficient_funds_is_am04_and_posts_nothing(harness: PipelineHarness) -> None:
    message = _valid(1)[0]
    statuses = _run(harness, [message], fund=False)
    harness.onboard([], underfunded_rate=0.0, rng=random.Random(1))
    status = statuses[message.end_to_end_id]
    assert (status.status, status.reason) == ("RJCT", "AC01")  # not our customer: no account at all
    message2 = _valid(1, seed=9)[0]
    harness.onboard([message2], underfunded_rate=1.0, rng=random.Random(1))
    harness.submit([message2])
    harness.runner.run_until_idle()
    status = harness.ctx.statuses.get(next(s.uetr for s in harness.ctx.statuses.payments()
                                           if s.payment.end_to_end_id == message2.end_to_end_id))
    assert (status.status, status.reason) == ("RJCT", "AM04")  # type: ignore[union-attr]
    assert not [t for t in harness.ctx.ledger.journal() if not t.transfer_id.startswith("fund:")]


def test_a_sanctioned_creditor_is_rejected_rr04_by_token_match(harness: PipelineHarness) -> None:
    message = _valid(1)[0]
    parsed = parse_pacs008(message.xml)
    tx = parsed.transactions[0]
    tx = replace(tx, creditor=replace(tx.creditor, name="  " + load_sanctions_list()[0].upper() + " "))
    message = replace(message, xml=build_pacs008(replace(parsed, transactions=(tx,))))
    status = _run(harness, [message])[message.end_to_end_id]
    assert (status.status, status.reason) == ("RJCT", "RR04")
    assert status.payment.creditor_name_token in harness.ctx.screen.tokens


@pytest.mark.parametrize(("scheme", "reason"), [("uk_fps", "AB06"), ("sepa_inst", "AB05")])
def test_scheme_timeout_rejects_with_the_rail_code_and_releases_the_hold(env: Any, scheme: str, reason: str) -> None:
    harness = build_harness(env, seed=11, gateway=SimulatedSchemeGateway(seed=1, timeout_rate=1.0))
    harness.start_cycle("C0001")
    messages = generate_messages(GeneratorSettings(count=12, seed=5, mix={scheme: 1.0}))
    statuses = _run(harness, messages)
    timed_out = [s for s in statuses.values() if s.reason == reason]
    assert timed_out and all(s.status == "RJCT" and s.decision == f"timeout:{reason}" for s in timed_out)
    journal = {t.transfer_id for t in harness.ctx.ledger.journal()}
    for s in timed_out:
        assert f"{s.uetr}:release" in journal and f"{s.uetr}:clear" not in journal
    assert harness.reconcile().mismatches == ()


def test_redelivered_clearing_is_answered_from_the_first_decision(harness: PipelineHarness) -> None:
    message = _valid(1)[0]
    status = _run(harness, [message])[message.end_to_end_id]
    harness.ctx.gateway.timeout_rate = 1.0  # the scheme would now say otherwise: the first decision stands
    body = status.payment.to_json()
    harness.ctx.sqs.send_message(QueueUrl=harness.resources.queues["clear"], MessageBody=body)
    harness.ctx.sqs.send_message(QueueUrl=harness.resources.queues["authorise"], MessageBody=body)
    harness.runner.run_until_idle()
    assert harness.ctx.statuses.get(status.uetr).status == "ACSP"  # type: ignore[union-attr]
    ids = [t.transfer_id for t in harness.ctx.ledger.journal() if t.transfer_id.startswith(status.uetr)]
    assert sorted(ids) == [f"{status.uetr}:clear", f"{status.uetr}:hold"]


def test_poison_lands_in_the_dlq_with_its_reason_never_blocks_the_rest_and_can_be_redriven(
        harness: PipelineHarness) -> None:
    url = harness.resources.queues["ingest"]
    harness.ctx.sqs.send_message(QueueUrl=url, MessageBody="<Document>not an envelope")
    statuses = _run(harness, _valid(4))
    assert {s.status for s in statuses.values()} == {"ACSP"}
    dlq = harness.resources.dead_letter_queues["ingest"]
    letters = dead_letters(harness.ctx.sqs, dlq, stage="ingest", reason_of=harness.ctx.statuses.failure)
    assert [(d.body, d.reason) for d in letters] == [
        ("<Document>not an envelope", "poison: not an ingest envelope (JSONDecodeError)")]
    fixed = _valid(1, seed=77)[0]
    harness.onboard([fixed], underfunded_rate=0.0, rng=random.Random(1))
    moved = redrive(harness.ctx.sqs, dlq, url, transform=lambda body: submission_body(fixed.xml, "sub-fixed"))
    harness.runner.run_until_idle()
    assert moved == 1 and len(list(harness.ctx.statuses.payments())) == 5


def test_handlers_report_partial_batch_failures_and_the_runner_deletes_only_successes(
        harness: PipelineHarness) -> None:
    good = _valid(2)
    harness.onboard(good, underfunded_rate=0.0, rng=random.Random(1))
    sqs, url = harness.ctx.sqs, harness.resources.queues["ingest"]
    sqs.send_message(QueueUrl=url, MessageBody=submission_body(good[0].xml, "s0"))
    sqs.send_message(QueueUrl=url, MessageBody="{bad")
    sqs.send_message(QueueUrl=url, MessageBody=submission_body(good[1].xml, "s1"))
    harness.runner.poll_once("ingest")
    assert harness.runner.report.finished["ingest"] == 2 and harness.runner.report.failed["ingest"] == 1
    left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in left] == ["{bad"]
