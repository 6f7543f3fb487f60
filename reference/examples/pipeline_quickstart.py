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
        from simulations.generator import GeneratorSettings, generate_messages
        from fasterpay.pipeline.benchmark import build_harness

        harness = build_harness(env, seed=7)  # (1)!
        harness.start_cycle("C0001")  # (2)!
        messages = generate_messages(GeneratorSettings(count=12, seed=7, invalid_rate=0.25))
        harness.onboard(messages, underfunded_rate=0.0, rng=__import__("random").Random(7))
        # --8<-- [end:setup]
        # --8<-- [start:run]
        harness.submit(messages)  # (1)!
        report = harness.runner.run_until_idle()  # (2)!
        settlement = harness.close("C0001")  # (3)!
        # --8<-- [end:run]
        # --8<-- [start:handler]
        from fasterpay.pipeline import make_handlers, sqs_event

        handlers = make_handlers(harness.ctx)
        event = sqs_event([{"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": "not a payment",
                            "Attributes": {"ApproximateReceiveCount": "1"}}],
                          queue_arn="arn:aws:sqs:eu-west-2:123456789012:fasterpay-authorise", region=env.region)
        answer = handlers["authorise"](event, None)  # (1)!
        # --8<-- [end:handler]
        # --8<-- [start:reconcile]
        recon = harness.reconcile()  # (1)!
        replay = harness.replay()[0]  # (2)!
        # --8<-- [end:reconcile]
        return {
            "finished": report.finished, "settled": settlement.payments, "positions": settlement.positions,
            "answer": answer, "statuses": recon.statuses, "mismatches": recon.mismatches,
            "balances": recon.currency_totals, "replay_matches": replay.matches,
            "rejected_at_ingest": list(harness.ctx.statuses.rejected_at_ingest()),
        }


if __name__ == "__main__":
    print(main())
