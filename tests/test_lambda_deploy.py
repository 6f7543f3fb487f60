"""One composition root, tested as deployed: the vault, ledger and pipeline stacks on moto with a code
package set, each function's cold start run with exactly the Environment the stack gave it, and one
payment passed through ``fasterpay.pipeline.lambdas.accept`` and ``.clear``.

The helpers here are shared with ``test_lambda_package.py``, which runs the same handlers from the built
zip in a clean interpreter.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import io
import os
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fasterpay.ledger import Ledger, Transfer
from fasterpay.ledger.stack import LedgerResources, deploy_ledger
from fasterpay.pipeline import (
    Answer,
    ConfigurationError,
    PaymentStore,
    PipelineConfig,
    SettlementBook,
    StoredPayment,
    customer_account,
    default_routing_rules,
    sqs_event,
    submission_body,
    to_minor_units,
)
from fasterpay.pipeline.bootstrap import load_scheme_gateway
from fasterpay.pipeline.stack import PipelineResources, deploy_pipeline
from fasterpay.vault import VaultPolicy
from fasterpay.vault.stack import VaultResources, deploy_vault, vault_as_role
from fasterpay.iso20022 import parse_pacs008
from simulations.generator import GeneratedMessage, GeneratorSettings, generate_messages
from simulations.pipeline_bench import submission_id

PREFIX = "lam"
CODE_BUCKET = "fasterpay-code"
CODE_KEY = "fasterpay-lambda.zip"
FUNCTIONS = ("accept", "clear")
#: The scheme connector the stacks name in FASTERPAY_SCHEME_GATEWAY (written by :func:`write_connector`).
CONNECTOR_MODULE = "deploytest_scheme"
CONNECTOR = f"{CONNECTOR_MODULE}:connector"
CONNECTOR_SOURCE = '''"""A scheme connector for the deployment tests: the scheme accepts every payment at once."""

from fasterpay.pipeline.gateway import SchemeAnswer


class AcceptEveryPayment:
    def submit(self, payments, *, time_limits):
        return [SchemeAnswer(True, 0.0) for _ in payments]


def connector():
    return AcceptEveryPayment()
'''


@dataclass(frozen=True)
class Deployment:
    """The three stacks' resources and each function's configuration as Lambda reports it."""

    vault: VaultResources
    ledger: LedgerResources
    pipeline: PipelineResources
    functions: dict[str, dict[str, Any]]  # GetFunctionConfiguration, by handler name

    def environment(self, handler: str) -> dict[str, str]:
        """The function's Environment variables, as deployed."""
        return dict(self.functions[handler]["Environment"]["Variables"])


def write_connector(folder: Path) -> Path:
    """Write the test's scheme connector module into ``folder``; return its path."""
    path = folder / f"{CONNECTOR_MODULE}.py"
    path.write_text(CONNECTOR_SOURCE, encoding="utf-8")
    return path


def deploy_with_code(env: Any, code: bytes) -> Deployment:
    """Upload ``code`` as the package, deploy vault, ledger and pipeline (functions included), read the functions."""
    s3 = env.client("s3")
    s3.create_bucket(Bucket=CODE_BUCKET, CreateBucketConfiguration={"LocationConstraint": env.region})
    s3.put_object(Bucket=CODE_BUCKET, Key=CODE_KEY, Body=code)
    cloudformation = env.client("cloudformation")
    vault = deploy_vault(cloudformation, env.client("kms"), name_prefix=PREFIX, on_moto=True)
    ledger = deploy_ledger(cloudformation, name_prefix=PREFIX, on_moto=True, dynamodb=env.client("dynamodb"))
    pipeline = deploy_pipeline(cloudformation, name_prefix=PREFIX, on_moto=True, parameters={
        "CodeS3Bucket": CODE_BUCKET, "CodeS3Key": CODE_KEY, "SchemeGateway": CONNECTOR,
        "LedgerTableName": ledger.tables.ledger, "LedgerOutboxTableName": ledger.tables.outbox,
        "VaultTableName": vault.vault_table, "VaultAuditTableName": vault.audit_table,
        "VaultKeyArn": vault.vault_key_arn, "MacKeyArn": vault.token_mac_key_arn})
    lam = env.client("lambda")
    functions = {name: lam.get_function_configuration(FunctionName=f"{PREFIX}-{name}") for name in FUNCTIONS}
    return Deployment(vault, ledger, pipeline, functions)


def routable_payment(seed: int = 5) -> GeneratedMessage:
    """A valid pacs.008 that routes to a scheme rail and stays under the fraud threshold."""
    rules = default_routing_rules()
    for message in generate_messages(GeneratorSettings(count=40, seed=seed)):
        tx = parse_pacs008(message.xml).transactions[0]
        route = rules.route_agent(tx.creditor_agent.bic or f"GBDSC:{tx.creditor_agent.member_id}", tx.currency,
                                  tx.amount)
        if route.rail in ("uk_fps", "sepa_inst") and tx.amount < 400_000:
            return message
    raise AssertionError("the generator gave no routable payment")


def fund_debtor(env: Any, deployment: Deployment, message: GeneratedMessage) -> str:
    """Open the debtor's account and fund it (the bank's onboarding, not the pattern); return its id."""
    tx = parse_pacs008(message.xml).transactions[0]
    default_tenant = next(f.default for f in dataclasses.fields(PipelineConfig) if f.name == "tenant")
    tenant = deployment.environment("accept").get("FASTERPAY_TENANT", default_tenant)  # as the cold start reads it
    vault = vault_as_role(env, deployment.vault, None, policy=VaultPolicy.of(grants=[], erasers=[]))
    value, data_class = ((tx.debtor_account.iban, "iban") if tx.debtor_account.iban
                         else (tx.debtor_account.other_id, "account_number"))
    account = customer_account(vault.deterministic_token(str(value), data_class, tenant=tenant))
    ledger = Ledger(env.client("dynamodb"), deployment.ledger.tables)
    ledger.open_account(f"funding:{tx.currency}", tx.currency, allow_negative=True)
    ledger.open_account(account, tx.currency)
    ledger.transfer(Transfer(f"fund:{message.end_to_end_id}"[:64], f"funding:{tx.currency}", account,
                             2 * to_minor_units(tx.amount, 2), tx.currency))
    return account


def submit(env: Any, deployment: Deployment, message: GeneratedMessage) -> None:
    """The sender's channel puts the submission on the accept queue."""
    env.client("sqs").send_message(QueueUrl=deployment.pipeline.queues["accept"],
                                   MessageBody=submission_body(message.xml, submission_id(message)))


def receive_event(env: Any, deployment: Deployment, queue: str) -> dict[str, Any]:
    """What Lambda's poller would hand the queue's function: the messages on it, as an SQS event."""
    sqs, url = env.client("sqs"), deployment.pipeline.queues[queue]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                   MessageAttributeNames=["All"]).get("Messages", [])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs_event(messages, queue_arn=arn, region=env.region)


def answers(env: Any, deployment: Deployment) -> list[Answer]:
    """The answers the sender finds on the answers queue."""
    got = env.client("sqs").receive_message(QueueUrl=deployment.pipeline.queues["answers"],
                                            MaxNumberOfMessages=10).get("Messages", [])
    return [Answer.from_json(m["Body"]) for m in got]


def payments(env: Any, deployment: Deployment) -> dict[str, StoredPayment]:
    """Every payment on the deployed payments table, by end-to-end id."""
    store = PaymentStore(env.client("dynamodb"), deployment.pipeline.payments_table, deployment.ledger.tables.ledger)
    return {p.end_to_end_id: p for p in store.payments()}


def lambda_credentials(region: str) -> dict[str, str]:
    """The AWS variables the Lambda runtime sets beside the function's own (fake credentials here)."""
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": region, "AWS_DEFAULT_REGION": region}


def cold_start(monkeypatch: pytest.MonkeyPatch, handler: str, variables: Mapping[str, str],
               event: Mapping[str, Any]) -> dict[str, Any]:
    """Invoke ``fasterpay.pipeline.lambdas.<handler>`` in a fresh execution environment: no context yet, and
    no ``FASTERPAY_*`` or ``AWS_*`` variable but the function's and the runtime's."""
    from fasterpay.pipeline import lambdas

    for name in list(os.environ):
        if name.startswith(("FASTERPAY_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lambdas, "_CONTEXT", None)
    result = getattr(lambdas, handler)(event, None)
    warm = lambdas._CONTEXT
    assert warm is not None
    assert getattr(lambdas, handler)({"Records": []}, None) == {"batchItemFailures": []}
    assert lambdas._CONTEXT is warm, "a warm invocation must reuse the context"
    return result


def test_each_handler_cold_starts_from_its_deployed_environment_and_moves_a_payment(
        env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as code:  # this test is about the environment: the zip is run elsewhere
        code.writestr(f"{CONNECTOR_MODULE}.py", CONNECTOR_SOURCE)
    deployment = deploy_with_code(env, buffer.getvalue())
    for name, config in deployment.functions.items():
        assert config["Handler"] == f"fasterpay.pipeline.lambdas.{name}" and config["Runtime"] == "python3.11"
    monkeypatch.syspath_prepend(str(write_connector(tmp_path).parent))  # the connector ships in the package
    monkeypatch.delitem(sys.modules, CONNECTOR_MODULE, raising=False)
    message = routable_payment()
    debtor = fund_debtor(env, deployment, message)
    ledger = Ledger(env.client("dynamodb"), deployment.ledger.tables)
    funded = ledger.balance(debtor).balance_minor
    submit(env, deployment, message)

    accepted = cold_start(monkeypatch, "accept", {**deployment.environment("accept"), **lambda_credentials(env.region)},
                          receive_event(env, deployment, "accept"))

    assert accepted == {"batchItemFailures": []}
    held = payments(env, deployment)[message.end_to_end_id]
    assert (held.status, held.hold) == ("ACCP", "held")
    assert ledger.balance(debtor).balance_minor == funded - held.amount_minor
    assert answers(env, deployment) == []  # a held payment is answered by clear

    cleared = cold_start(monkeypatch, "clear", {**deployment.environment("clear"), **lambda_credentials(env.region)},
                         receive_event(env, deployment, "clear"))

    assert cleared == {"batchItemFailures": []}
    stored = payments(env, deployment)[message.end_to_end_id]
    assert stored.status == "ACSP" and stored.cycle
    assert [(a.end_to_end_id, a.uetr, a.status) for a in answers(env, deployment)] == [
        (message.end_to_end_id, stored.uetr, "ACSP")]
    book = SettlementBook(env.client("dynamodb"), deployment.pipeline.settlement_table)
    assert [e.uetr for e in book.entries(stored.cycle)] == [stored.uetr]


def test_composition_root_examples_run() -> None:
    result = doctest.testmod(importlib.import_module("fasterpay.pipeline.bootstrap"), optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed


@pytest.mark.parametrize(("spec", "message"), [
    ("deploytest_scheme", "must name your scheme connector as module:factory"),
    ("no_such_connector:connector", "cannot be imported"),
    ("deploytest_scheme:no_such_factory", "cannot be imported"),
    ("builtins:object", "must return a SchemeGateway"),
])
def test_a_scheme_connector_that_cannot_be_loaded_is_named_at_cold_start(
        spec: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(write_connector(tmp_path).parent))
    monkeypatch.delitem(sys.modules, CONNECTOR_MODULE, raising=False)
    assert type(load_scheme_gateway(CONNECTOR)).__name__ == "AcceptEveryPayment"
    with pytest.raises(ConfigurationError, match=message):
        load_scheme_gateway(spec)
