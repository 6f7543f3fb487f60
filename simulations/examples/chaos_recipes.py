"""Chaos recipes, as shown on the testing and simulation page (every block here is run by
``tests/test_testing_guide.py``).

Each recipe injects one kind of fault into real boto3 clients on moto with :mod:`fasterpay.faults` (or a
crash through the pipeline's telemetry port) and returns what happened, so the test can assert it. Run them
all with ``python -m simulations.examples.chaos_recipes``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["crash_and_redeliver", "lost_response", "real_sleep", "region_partition", "stage_partition",
           "throttle_storm", "pipeline_under_test"]


def real_sleep(env: Any) -> dict[str, tuple[float, float]]:
    """The same seeded latencies, added to virtual time or slept: (modelled seconds, wall seconds) per injector."""
    # --8<-- [start:real-sleep]
    import time

    from fasterpay.faults import FaultInjector, LatencyDistribution, LatencyModel

    model = LatencyModel(default=LatencyDistribution(p50_ms=5, p99_ms=20))  # (1)!
    timings = {}
    for name, sleep in (("modelled", False), ("slept", True)):
        injector = FaultInjector(latency=model, seed=7, sleep=sleep)  # (2)!
        dynamodb = injector.attach(env.client("dynamodb"))
        started = time.perf_counter()
        for _ in range(5):
            dynamodb.list_tables()
        timings[name] = (injector.modelled_seconds, time.perf_counter() - started)  # (3)!
    # --8<-- [end:real-sleep]
    return timings


def throttle_storm(env: Any) -> dict[str, str]:
    """Every attempt throttled: the error code each service's own protocol gives, per service."""
    # --8<-- [start:throttle]
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from fasterpay.faults import FaultInjector, FaultPlan, FaultRates

    storm = FaultRates(throttle_rate=1.0)  # (1)!
    injector = FaultInjector(plan=FaultPlan(per_service={"dynamodb": storm, "sqs": storm, "kms": storm}), seed=7)
    no_retries = Config(retries={"total_max_attempts": 1, "mode": "standard"})  # (2)!
    codes = {}
    for service, call in (("dynamodb", "list_tables"), ("sqs", "list_queues"), ("kms", "list_keys")):
        client = injector.attach(env.client(service, config=no_retries))
        try:
            getattr(client, call)()
        except ClientError as exc:
            codes[service] = exc.response["Error"]["Code"]  # (3)!
    # --8<-- [end:throttle]
    return codes


def lost_response(env: Any) -> dict[str, Any]:
    """A conditional write that committed but whose response was lost, then retried."""
    admin = env.client("dynamodb")
    admin.create_table(TableName="lost-response-demo", BillingMode="PAY_PER_REQUEST",
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                       KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    # --8<-- [start:lost-response]
    from botocore.config import Config
    from botocore.exceptions import ClientError, ReadTimeoutError

    from fasterpay.faults import FaultInjector, FaultPlan

    plan = FaultPlan(lost_response_rate=1.0, operations=frozenset({"PutItem"}))  # (1)!
    writer = FaultInjector(plan=plan, seed=7).attach(
        env.client("dynamodb", config=Config(retries={"total_max_attempts": 1, "mode": "standard"})))
    put = {"TableName": "lost-response-demo", "Item": {"pk": {"S": "E2E-0001"}},
           "ConditionExpression": "attribute_not_exists(pk)"}
    try:
        writer.put_item(**put)
        first = "answered"
    except ReadTimeoutError:
        first = "timed out"  # (2)!
    committed = "Item" in admin.get_item(TableName="lost-response-demo", Key={"pk": {"S": "E2E-0001"}})
    try:
        admin.put_item(**put)  # the caller's retry
        retry = "written again"
    except ClientError as exc:
        retry = exc.response["Error"]["Code"]  # (3)!
    # --8<-- [end:lost-response]
    return {"first": first, "committed": committed, "retry": retry}


def region_partition(env: Any) -> dict[str, str]:
    """One region cut off: its clients cannot connect; the other region's clients answer."""
    # --8<-- [start:region-partition]
    from botocore.config import Config
    from botocore.exceptions import EndpointConnectionError

    from fasterpay.faults import FaultInjector, FaultPlan

    injector = FaultInjector(plan=FaultPlan(partitioned_regions=frozenset({"eu-west-1"})), seed=7)  # (1)!
    no_retries = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    outcome = {}
    for region in ("eu-west-2", "eu-west-1"):
        dynamodb = injector.attach(env.client("dynamodb", region=region, config=no_retries))
        try:
            dynamodb.list_tables()
            outcome[region] = "answered"
        except EndpointConnectionError:
            outcome[region] = "unreachable"  # (2)!
    # --8<-- [end:region-partition]
    return outcome


def pipeline_under_test(env: Any) -> Any:
    """The pipeline's stacks and tables on ``env`` (as the pipeline quick start sets them up)."""
    from simulations.pipeline_bench import PipelineHarness, RunSettings

    infra = PipelineHarness(env, RunSettings(payments=12, seed=7), name_prefix="chaos-recipes")
    infra.open_house_accounts()
    return infra


def _payments(infra: Any, seed: int, count: int) -> list[Any]:
    import random

    from simulations.generator import GeneratorSettings, generate_messages

    messages = generate_messages(GeneratorSettings(count=count, seed=seed))
    infra.onboard(messages, random.Random(seed))
    return messages


def _answers(env: Any, infra: Any) -> list[dict[str, Any]]:
    """Take every answer off the answers queue (as the sender's reader would)."""
    sqs, url, found = env.client("sqs"), infra.res.queues["answers"], []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return found
        for m in got:
            found.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _clients(env: Any, infra: Any, sqs: Any) -> Any:
    from fasterpay.pipeline import Clients

    return Clients(sqs=sqs, dynamodb=env.client("dynamodb"), kms=env.client("kms"),
                   extra={"vault_dynamodb": env.client("dynamodb", region=infra.vault_region)})


def stage_partition(env: Any, infra: Any) -> dict[str, Any]:
    """The clear stage cut off from SQS: it decides but cannot answer; after the partition heals, every payment
    is answered once, with the decision taken during the partition."""
    messages = _payments(infra, seed=11, count=6)
    # --8<-- [start:stage-partition]
    from botocore.config import Config

    from fasterpay.faults import FaultInjector, FaultPlan
    from fasterpay.pipeline import LocalRunner, bootstrap, make_handlers
    from simulations.scheme import SimulatedSchemeGateway

    cut = FaultInjector(seed=7)  # (1)!
    clear_sqs = cut.attach(env.client("sqs", config=Config(retries={"total_max_attempts": 1, "mode": "standard"})))
    scheme = SimulatedSchemeGateway(seed=7)
    accept = bootstrap(infra.config, clients=_clients(env, infra, env.client("sqs")), gateway=scheme,
                       cycle=lambda: "C0001")
    clear = bootstrap(infra.config, clients=_clients(env, infra, clear_sqs), gateway=scheme,
                      cycle=lambda: "C0001")  # (2)!
    runner = LocalRunner(env.client("sqs"), infra.config.queues, {
        "accept": make_handlers(accept)["accept"], "clear": make_handlers(clear)["clear"]}, region=env.region)

    infra.submit(messages)
    runner.poll_once("accept")
    cut.plan = FaultPlan(partitioned_regions=frozenset({env.region}))  # (3)!
    runner.poll_once("clear")
    during = _answers(env, infra)
    decided = {p.uetr: p.status for p in clear.store.payments()}  # decided during the partition
    cut.plan = FaultPlan()  # (4)!
    runner.run_until_idle()
    after = _answers(env, infra)
    # --8<-- [end:stage-partition]
    return {"during": during, "after": after, "decided": decided, "failed": runner.report.failed,
            "submitted": [m.end_to_end_id for m in messages], "unreachable": cut.injected["partition"],
            "scheme_submissions": scheme.submissions}


def crash_and_redeliver(env: Any, infra: Any, point: str = "clear.decided") -> dict[str, Any]:
    """The clear handler crashes at a named crash point once; SQS redelivers the batch; each payment is answered
    once, and the scheme is asked again (it answers the same for the same UETR)."""
    messages = _payments(infra, seed=13, count=6)
    # --8<-- [start:crash]
    from fasterpay.pipeline import LocalRunner, NoTelemetry, SimulatedCrash, bootstrap, make_handlers
    from simulations.scheme import SimulatedSchemeGateway

    class CrashOnce(NoTelemetry):  # (1)!
        def __init__(self, point: str) -> None:
            self.point, self.crashed = point, 0

        def step(self, name: str) -> None:
            if name == self.point and not self.crashed:
                self.crashed += 1
                raise SimulatedCrash(name)

    crash = CrashOnce(point)
    ctx = bootstrap(infra.config, clients=_clients(env, infra, env.client("sqs")),
                    gateway=SimulatedSchemeGateway(seed=7), telemetry=crash, cycle=lambda: "C0001")
    runner = LocalRunner(env.client("sqs"), infra.config.queues, make_handlers(ctx), region=env.region)
    infra.submit(messages)
    report = runner.run_until_idle()  # (2)!
    answers = _answers(env, infra)
    # --8<-- [end:crash]
    return {"crashes": report.crashes, "crashed_at": crash.point if crash.crashed else None, "answers": answers,
            "submitted": [m.end_to_end_id for m in messages]}


def main() -> dict[str, Any]:
    """Run every recipe on one in-process moto."""
    from fasterpay.aws import open_environment

    with open_environment() as env:
        out: dict[str, Any] = {"real_sleep": real_sleep(env), "throttle": throttle_storm(env),
                               "lost_response": lost_response(env), "region_partition": region_partition(env)}
        infra = pipeline_under_test(env)
        out["stage_partition"] = stage_partition(env, infra)
        out["crash"] = crash_and_redeliver(env, infra)
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=1, default=str))
