"""Quick start for multi-region resilience, as shown in the article (every block here is tested).

Run it with ``python reference/examples/resilience_quickstart.py``: it uses moto unless FASTERPAY_BACKEND says
otherwise. The routing control plane is the in-memory emulation of Route 53 ARC routing controls; pass
``ArcRoutingControls`` with a ``route53-recovery-cluster`` client on AWS. Time is a list you move by hand, so
the lease and the fence interval can be shown without waiting.
"""

from __future__ import annotations

import uuid
from typing import Any

from fasterpay.aws import open_environment
from fasterpay.ledger import Ledger, Transfer, create_ledger_tables
from fasterpay.pipeline.model import Payment, customer_account, inflight_account
from fasterpay.pipeline.store import PaymentStore
from fasterpay.resilience import (
    Deadline,
    FailoverController,
    FencedOutError,
    FenceGuard,
    HealthPolicy,
    HopBudget,
    InMemoryRoutingControls,
    RegionLease,
    RtoModel,
    UnsafeHedgeError,
    botocore_config,
    create_fence_table,
    hedged_read,
)

NOW = [1_800_000_000.0]  # epoch seconds: this example's clock


def clock() -> float:
    return NOW[0]


def _payment(n: int, account: str) -> Payment:
    return Payment(str(uuid.UUID(int=n, version=4)), f"E2E-{n}", f"MSG-{n}", "uk_fps", 1050, "GBP", 2, account,
                   "tok_iban_creditor", "n", "m", "OURBGB2L", "BARCGB22", clock(), rail="uk_fps",
                   submission_id=f"s-{n}")


def _region(env: Any, region: str) -> tuple[Any, Any, str]:
    """One region's payments table, ledger (with a funded customer) and control table."""
    ddb = env.client("dynamodb", region=region)
    ddb.create_table(TableName="payments", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    tables = create_ledger_tables(ddb, None, "bank", queue=False)
    ledger = Ledger(ddb, tables)
    ledger.open_account("funding:GBP", "GBP", allow_negative=True)
    ledger.open_account(inflight_account("uk_fps", "GBP"), "GBP", allow_negative=True)
    ledger.open_account(customer_account("dtk_iban_alice"), "GBP")
    ledger.transfer(Transfer("fund", "funding:GBP", customer_account("dtk_iban_alice"), 100_000, "GBP"))
    return ddb, tables, create_fence_table(ddb, "control")


def main() -> dict[str, Any]:
    with open_environment() as env:
        london_ddb, london_tables, london_control = _region(env, "eu-west-2")
        dublin_ddb, dublin_tables, dublin_control = _region(env, "eu-west-1")

        # --8<-- [start:fence]
        controls = InMemoryRoutingControls({"cell-1": ("eu-west-2", 1, "ON")})  # (1)!
        guard = FenceGuard(london_ddb, london_control, "cell-1", "eu-west-2", clock=clock)
        lease = RegionLease(guard, controls, ttl=10.0)  # (2)!
        store = PaymentStore(london_ddb, "payments", london_tables.ledger, fence=guard)  # (3)!
        assert lease.renew().renewed
        held = store.hold(_payment(1, "dtk_iban_alice"), first_of_message=True, at=clock())
        # --8<-- [end:fence]

        # --8<-- [start:failover]
        model = RtoModel(health=HealthPolicy(interval_s=10.0), lease_ttl_s=10.0, max_clock_skew_s=1.0,
                         max_inflight_write_s=4.0)  # (1)!

        def wait(seconds: float) -> None:  # time.sleep in production
            NOW[0] += seconds

        controller = FailoverController(controls, model, clock=clock, wait=wait)
        timeline = controller.failover("cell-1", "eu-west-1")  # (2)!
        try:
            store.clear(_payment(1, "dtk_iban_alice"), cycle="C1", at=clock())  # (3)!
            old_region_wrote = True
        except FencedOutError:
            old_region_wrote = False
        dublin_guard = FenceGuard(dublin_ddb, dublin_control, "cell-1", "eu-west-1", clock=clock)
        dublin_lease = RegionLease(dublin_guard, controls, ttl=10.0).renew()  # (4)!
        dublin = PaymentStore(dublin_ddb, "payments", dublin_tables.ledger, fence=dublin_guard)
        dublin_held = dublin.hold(_payment(2, "dtk_iban_alice"), first_of_message=True, at=clock())
        # --8<-- [end:failover]

        # --8<-- [start:deadline]
        payment_deadline = Deadline.for_scheme("sepa_inst", clock, received_at=clock())  # (1)!
        budgets = HopBudget.for_scheme("sepa_inst")
        authorise = budgets.deadline("authorise", payment_deadline)  # (2)!
        config = botocore_config(authorise, floor_s=0.05)  # (3)!
        ddb = env.client("dynamodb", region="eu-west-2", config=config)
        header = payment_deadline.to_header()  # (4)!
        # --8<-- [end:deadline]

        # --8<-- [start:hedge]
        key = {"pk": {"S": f"PAY#{_payment(2, 'x').uetr}"}}
        answer = hedged_read(
            lambda: dublin_ddb.get_item(TableName="payments", Key=key),  # (1)!
            lambda: london_ddb.get_item(TableName="payments", Key=key),
            hedge_after_s=0.012, operation="GetItem", params={"TableName": "payments", "Key": key},
            timeout_s=payment_deadline.remaining())
        try:
            hedged_read(lambda: None, lambda: None, hedge_after_s=0.012, operation="PutItem")  # (2)!
            hedged_a_write = True
        except UnsafeHedgeError:
            hedged_a_write = False
        # --8<-- [end:hedge]

        ddb.list_tables()
        return {"held": held.kind, "timeline": timeline, "old_region_wrote": old_region_wrote,
                "dublin_lease": dublin_lease, "dublin_held": dublin_held.kind, "rto_s": model.seconds,
                "fence_interval_s": model.fence_interval_s, "enforced_s": budgets.enforced_s,
                "authorise_left_s": authorise.remaining(), "header": header,
                "config_attempts": config.retries["total_max_attempts"], "hedged_source": answer.source,
                "hedged_found": "Item" in answer.value,
                "hedged_a_write": hedged_a_write}


if __name__ == "__main__":
    result = main()
    for name, value in result.items():
        print(f"{name}: {value}")
