"""Quick start for FinOps, as shown in the article (every block here is tested).

Run it with ``python reference/examples/finops_quickstart.py``: it uses moto unless FASTERPAY_BACKEND says
otherwise. It meters a few payments' worth of calls, prices them per 10k payments by pattern and component,
asks the capacity model which quota binds first at 10,000 payments a second, finds where Fargate beats
Lambda, and shows the guards that keep a retry storm and a client's flood from running up the bill.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fasterpay.aws import open_environment
from fasterpay.finops import (
    AllowanceExceededError,
    CallProfile,
    ClientAllowance,
    PatternUsage,
    SCALING_PRICES,
    RetryBudget,
    first_binding,
    lambda_fargate_break_even_tps,
    split_by_pattern,
    unit_cost,
    unit_cost_metric,
)
from fasterpay.metering import ApiCallMeter
from fasterpay.pricing import PRICES_EU_WEST_2

PAYMENTS = 20


def _tables(ddb: Any) -> None:
    for name in ("bank-payments", "bank-ledger"):
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])


def main() -> dict[str, Any]:
    with open_environment() as env:
        ddb, kms, sqs = env.client("dynamodb"), env.client("kms"), env.client("sqs")
        _tables(ddb)
        key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
        queue = sqs.create_queue(QueueName="bank-accept")["QueueUrl"]
        # --8<-- [start:meter]
        meter = ApiCallMeter()
        for client in (ddb, kms, sqs):
            meter.attach(client)
        kms.generate_mac(KeyId=key, MacAlgorithm="HMAC_SHA_256", Message=b"token key, once per period")
        for n in range(PAYMENTS):
            if n % 10 == 0:  # one batch of ten messages per ten payments
                sqs.send_message_batch(QueueUrl=queue, Entries=[
                    {"Id": str(i), "MessageBody": f'{{"uetr": "{n + i}"}}'} for i in range(10)])
            ddb.put_item(TableName="bank-payments", Item={"pk": {"S": f"pay#{n}"}, "status": {"S": "ACSP"}},
                         ConditionExpression="attribute_not_exists(pk)")  # a conditional write: 1 unit per KB
            ddb.transact_write_items(TransactItems=[  # the ledger's postings: atomic, 2 units per KB per item
                {"Put": {"TableName": "bank-ledger", "Item": {"pk": {"S": f"post#{n}#{side}"}, "amount": {"N": "1050"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}} for side in ("dr", "cr")])
        # --8<-- [end:meter]
        # --8<-- [start:unit-cost]
        parts = split_by_pattern(meter.snapshot())  # DynamoDB units by table, other calls by operation
        usage = {name: PatternUsage(part) for name, part in parts.items()}
        cost = unit_cost(usage, payments=PAYMENTS, prices=PRICES_EU_WEST_2)
        for pattern, usd in cost.by_pattern.items():
            print(f"{pattern:10} ${usd:.4f} per 10k payments")
        print(f"{'all':10} ${cost.total:.4f} per 10k payments (prices as of {cost.prices_as_of}, {cost.region})")
        datum = unit_cost_metric(cost.total, stage="dev")  # what the daily FinOps job publishes
        env.client("cloudwatch").put_metric_data(Namespace="FasterPay/FinOps", MetricData=[datum])
        # --8<-- [end:unit-cost]
    # --8<-- [start:capacity]
    profile = CallProfile(calls_per_payment={("kms", "GenerateMac"): 4, ("dynamodb", "TransactWriteItems"): 1},
                          write_units_per_payment=5, read_units_per_payment=1, kms_requests_per_payment=4,
                          lambda_seconds_per_payment=0.1)
    binding = first_binding(profile, 10_000, region="eu-west-2")
    cached = first_binding(replace(profile, kms_cache_seconds=300.0), 10_000, region="eu-west-2")
    print(f"at 10,000/s, first to bind: {binding.quota.name if binding else 'nothing'}; "
          f"with token keys cached: {cached.quota.name if cached else 'nothing'}")
    # --8<-- [end:capacity]
    # --8<-- [start:break-even]
    even = lambda_fargate_break_even_tps(duration_ms=120, memory_mb=512, prices=SCALING_PRICES["eu-west-2"])
    print(f"an always-on Fargate fleet costs less than Lambda above {even.tps:.1f} payments/s" if even else
          "Lambda is always cheaper here")
    # --8<-- [end:break-even]
    # --8<-- [start:guards]
    budget = RetryBudget(ratio=0.1, minimum=2)  # retries: at most 10% of requests, plus 2
    allowance = ClientAllowance(rate_per_s=5, burst=10, daily=1_000, clock=lambda: 0.0)
    refused = 0
    for _ in range(50):
        try:
            allowance.admit("psp-a")  # before any AWS call: a refused submission costs nothing
        except AllowanceExceededError:
            refused += 1
    # --8<-- [end:guards]
    return {"cost": cost, "binding": binding, "cached": cached, "break_even": even, "refused": refused,
            "retry_budget": budget, "datum": datum, "calls": parts}


if __name__ == "__main__":
    main()
