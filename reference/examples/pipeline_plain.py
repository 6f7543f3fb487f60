"""The payment pipeline wired by hand, as a service that copied the pattern folders would wire it.

No bench helper: the stacks come from the deploy helpers, the accounts from the ledger and the vault,
the message from the ISO 20022 builder, and the scheme connector is your own (here one that accepts
everything). Tested as is by tests/test_pipeline_examples.py, and from a copy of the folders, with
``fasterpay`` blocked, by tests/test_copy_patterns.py.

Run it with ``python reference/examples/pipeline_plain.py``: it uses moto unless FASTERPAY_BACKEND says
otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fasterpay.aws import Backend, open_environment
from fasterpay.iso20022 import UK_FPS, Account, Agent, CreditTransfer, GroupHeader, Pacs008, Party, build_pacs008
from fasterpay.ledger import Ledger, Transfer
from fasterpay.ledger.stack import deploy_ledger
from fasterpay.pipeline import (
    Clients,
    LocalRunner,
    Payment,
    PipelineConfig,
    bootstrap,
    customer_account,
    inflight_account,
    make_handlers,
    settled_account,
    submission_body,
)
from fasterpay.pipeline.gateway import SchemeAnswer
from fasterpay.pipeline.stack import deploy_pipeline
from fasterpay.vault.stack import deploy_vault


# --8<-- [start:gateway]
class AcceptingScheme:
    """Your scheme connector implements ``submit``; this one accepts every payment at once."""

    def submit(self, payments: Sequence[Payment], *, time_limits: Sequence[float]) -> list[SchemeAnswer]:
        return [SchemeAnswer(accepted=True, seconds=0.05) for _ in payments]
# --8<-- [end:gateway]


def payment_message(debtor_iban: str) -> bytes:
    """One UK Faster Payment, built with the ISO 20022 builder (a channel sends such messages)."""
    tx = CreditTransfer(
        end_to_end_id="E2E-PLAIN-1", amount=Decimal("25.00"), currency="GBP",
        debtor=Party(name="Ada Lovelace", country="GB"), debtor_agent=Agent(bic="WESTGB2L"),
        creditor_agent=Agent(clearing_system="GBDSC", member_id="601613"), creditor=Party(name="Alan Turing"),
        debtor_account=Account(iban=debtor_iban), creditor_account=Account(other_id="31926819"),
        instruction_id="INS-PLAIN-1", transaction_id="TX-PLAIN-1", uetr=str(uuid.uuid4()),
        payment_type=UK_FPS.payment_type)
    return build_pacs008(Pacs008(GroupHeader(msg_id="MSG-PLAIN-1", created_at=datetime.now(UTC)), (tx,)))


def main() -> dict[str, Any]:
    with open_environment() as env:
        # --8<-- [start:deploy]
        on_moto = env.backend is not Backend.AWS  # (1)!
        cfn, ddb = env.client("cloudformation"), env.client("dynamodb")
        vault = deploy_vault(cfn, env.client("kms"), name_prefix="bank", on_moto=on_moto)
        ledger_tables = deploy_ledger(cfn, name_prefix="bank", on_moto=on_moto, dynamodb=ddb).tables
        stack = deploy_pipeline(cfn, name_prefix="bank", on_moto=on_moto,
                                parameters={"DeployFunctions": "false"})  # (2)!
        config = PipelineConfig(
            payments_table=stack.payments_table, settlement_table=stack.settlement_table,
            ledger_table=ledger_tables.ledger, ledger_outbox_table=ledger_tables.outbox,
            vault_table=vault.vault_table, vault_audit_table=vault.audit_table, vault_key=vault.vault_key_arn,
            mac_key=vault.token_mac_key_arn, accept_queue_url=stack.queues["accept"],
            clear_queue_url=stack.queues["clear"], answers_queue_url=stack.queues["answers"])
        # --8<-- [end:deploy]
        # --8<-- [start:wire]
        clients = Clients(sqs=env.client("sqs"), dynamodb=ddb, kms=env.client("kms"))
        ctx = bootstrap(config, clients=clients, gateway=AcceptingScheme())  # (1)!
        runner = LocalRunner(ctx.sqs, {"accept": config.accept_queue_url, "clear": config.clear_queue_url},
                             make_handlers(ctx), region=env.region)  # (2)!
        # --8<-- [end:wire]
        # --8<-- [start:accounts]
        ledger = Ledger(ddb, ledger_tables)
        ledger.open_account("funding:GBP", "GBP", allow_negative=True)
        ledger.open_account(inflight_account("uk_fps", "GBP"), "GBP", allow_negative=True)  # (1)!
        ledger.open_account(settled_account("uk_fps", "GBP"), "GBP")
        debtor_iban = "GB82WEST12345698765432"
        token = ctx.vault.deterministic_token(debtor_iban, "iban", tenant=config.tenant)  # (2)!
        ledger.open_account(customer_account(token), "GBP")
        ledger.transfer(Transfer("fund-ada", "funding:GBP", customer_account(token), 100_00, "GBP"))
        # --8<-- [end:accounts]
        # --8<-- [start:run]
        ctx.sqs.send_message(QueueUrl=config.accept_queue_url,
                             MessageBody=submission_body(payment_message(debtor_iban), "channel-sub-1"))
        report = runner.run_until_idle()
        payment = next(iter(ctx.store.payments()))
        balance = ledger.balance(customer_account(token)).balance_minor  # (1)!
        # --8<-- [end:run]
        return {"finished": report.finished, "status": payment.status, "balance_minor": balance,
                "debtor_account": payment.debtor_account}


if __name__ == "__main__":
    print(main())
