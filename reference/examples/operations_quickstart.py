"""Quick start for operating the service, as shown in the article (every block here is tested).

Run it with ``python reference/examples/operations_quickstart.py``. It emits the SLI events the operations
alarms watch, then tests the operations template's fast-burn page offline: an hour of healthy traffic, then
a storm in which 20% of payments fail, replayed minute by minute through the template's own alarm
definitions with the alarm emulator (moto stores alarms but never evaluates them).
"""

from __future__ import annotations

from typing import Any


def main() -> dict[str, Any]:
    # --8<-- [start:sli]
    from fasterpay.observability import SliPublisher

    documents: list[dict[str, Any]] = []
    sli = SliPublisher(stage="prod", sink=documents.append)  # (1)!
    sli.authorisation(38.5)  # a decision returned in 38.5 ms
    sli.authorisation(None)  # no decision: a technical failure
    sli.critical_path(112.0)  # at ACSP 112 ms after ingest
    sli.scheme_submission(timed_out=True)  # (2)!
    sli.critical_path(None)  # ... so that payment failed on the way
    sli.reconciliation(0)  # a clean settlement cycle publishes 0
    sli.metrics.flush()
    # --8<-- [end:sli]

    # --8<-- [start:test-alarms]
    from simulations.alarm_emulator import MetricStore, evaluate_timeline
    from simulations.operations_sim import template_alarms

    alarms, composites, not_emulated = template_alarms()  # (1)!
    store = MetricStore(start_s=0, minutes=120)
    for minute in range(120):
        failing = 0.2 if minute >= 60 else 0.0  # a storm from minute 60: 20% of payments fail
        store.put_metric_data(Namespace="FasterPay/Payments", MetricData=[  # (2)!
            {"MetricName": "CriticalPathLatency", "Dimensions": [{"Name": "Stage", "Value": "prod"}],
             "Timestamp": minute * 60, "Values": [95.0, 140.0], "Counts": [600 * (1 - failing), 400 * (1 - failing)]},
            {"MetricName": "CriticalPathError", "Dimensions": [{"Name": "Stage", "Value": "prod"}],
             "Timestamp": minute * 60, "Value": 1000 * failing}])
    history = evaluate_timeline(store, alarms, composites)
    page = history.first("fasterpay-prod-critical-path-fast-burn", "ALARM")  # (3)!
    # --8<-- [end:test-alarms]
    return {"documents": documents, "page_minute": None if page is None else page / 60,
            "not_emulated": sorted(not_emulated), "history": history}


if __name__ == "__main__":
    result = main()
    print(f"{len(result['documents'])} EMF document(s); the fast-burn page fires at minute {result['page_minute']:g}")
