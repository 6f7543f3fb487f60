"""Quick start for the payment pipeline, as shown in the article (every block here is tested).

Run it with ``python reference/examples/pipeline_quickstart.py``: it uses moto unless FASTERPAY_BACKEND says
otherwise.
"""

from __future__ import annotations

from typing import Any


def main() -> dict[str, Any]:
    from fasterpay.aws import open_environment

    with open_environment() as env:
        # --8<-- [start:setup]
        import random

        from simulations.generator import GeneratorSettings, generate_messages
        from simulations.pipeline_bench import PipelineHarness, RunSettings
        from simulations.scheme import SimulatedSchemeGateway

        infra = PipelineHarness(env, RunSettings(payments=12, seed=7), name_prefix="qs")  # (1)!
        infra.open_house_accounts()
        messages = generate_messages(GeneratorSettings(count=12, seed=7, invalid_rate=0.25))
        infra.onboard(messages, random.Random(7))  # (2)!
        # --8<-- [end:setup]
        # --8<-- [start:wire]
        from fasterpay.pipeline import Clients, LocalRunner, bootstrap, make_handlers

        clients = Clients(sqs=env.client("sqs"), dynamodb=env.client("dynamodb"), kms=env.client("kms"),
                          extra={"vault_dynamodb": env.client("dynamodb", region=infra.vault_region)})
        ctx = bootstrap(infra.config, clients=clients, gateway=SimulatedSchemeGateway(seed=7),  # (1)!
                        cycle=lambda: "C0001")
        runner = LocalRunner(ctx.sqs, {"accept": ctx.queues["accept"], "clear": ctx.queues["clear"]},
                             make_handlers(ctx), region=env.region)  # (2)!
        # --8<-- [end:wire]
        # --8<-- [start:run]
        import time

        from fasterpay.pipeline import close_cycle

        infra.submit(messages)  # (1)!
        report = runner.run_until_idle()  # (2)!
        settlement = close_cycle("C0001", book=ctx.book, ledger=infra.ledger(clients.dynamodb), at=time.time())  # (3)!
        # --8<-- [end:run]
        # --8<-- [start:handler]
        from fasterpay.pipeline import sqs_event

        event = sqs_event([{"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": "not a payment",
                            "Attributes": {"ApproximateReceiveCount": "1"}}],
                          queue_arn="arn:aws:sqs:eu-west-2:123456789012:qs-clear", region=env.region)
        answer = make_handlers(ctx)["clear"](event, None)  # (1)!
        # --8<-- [end:handler]
        # --8<-- [start:reconcile]
        from fasterpay.pipeline import reconcile, replay_cycle

        auditor = env.client("dynamodb")
        recon = reconcile(store=ctx.store, book=ctx.book, ledger=infra.ledger(auditor), cycles=["C0001"],
                          admin_dynamodb=auditor)  # (1)!
        replay = replay_cycle("C0001", book=ctx.book, ledger=infra.ledger(auditor), payments=ctx.store.get)  # (2)!
        # --8<-- [end:reconcile]
        return {
            "finished": report.finished, "settled": settlement.payments, "positions": settlement.positions,
            "answer": answer, "statuses": recon.statuses, "mismatches": recon.mismatches,
            "balances": recon.currency_totals, "replay_matches": replay.matches,
            "refused_at_ingest": list(ctx.store.ingest_rejections()),
        }


if __name__ == "__main__":
    print(main())
