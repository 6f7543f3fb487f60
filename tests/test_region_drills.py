"""Region drills on two moto regions: nothing lost, doubled or left non-final; no split brain."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from simulations.region_drills import (
    CANCEL_REASON,
    DRILLS,
    DedupingScheme,
    DrillResult,
    DrillSettings,
    figures,
    partition,
    run_all,
    split_brain,
)
from simulations.scheme import SimulatedSchemeGateway

SMALL = DrillSettings(payments=60, seed=11)


@pytest.fixture(autouse=True)
def _streams_on_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's DynamoDB Streams need this with current botocore; scoped to the test (restored after)."""
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")


@pytest.fixture
def moto_env() -> Iterator[Any]:
    from fasterpay.aws import open_environment
    from simulations import moto_speedups
    from simulations.replication import enable_streams_on_moto

    enable_streams_on_moto()
    with open_environment("moto", region="eu-west-2") as env:
        moto_speedups.install_on_moto(env)
        yield env


@pytest.fixture(scope="module")
def small_drill() -> Callable[[str], DrillResult]:
    """Each drill at ``SMALL``, run once per worker in its own fresh moto (as ``run_all`` runs it) and shared
    by the tests that read that same run's result (a drill's result depends only on its name and settings);
    whichever test asks first runs it, so each test still passes or fails on its own."""
    runs: dict[str, DrillResult] = {}

    def get(name: str) -> DrillResult:
        if name not in runs:
            [runs[name]] = run_all(SMALL, (name,))
        return runs[name]

    return get


#: The tests that read a shared ``SMALL`` run: kept on one worker, so each drill runs once in the suite.
SHARED_SMALL = pytest.mark.xdist_group("region-drills-small")


def _assert_clean(r: DrillResult) -> None:
    assert r.lost == [], r.lost[:3]
    assert r.doubled == [], r.doubled[:3]
    assert r.non_final == [], r.non_final[:3]
    assert r.mismatches == [], r.mismatches[:3]
    assert r.replay_mismatches == [] and r.replayed_cycles > 0
    assert r.ledger_sums and all(total == 0 for total in r.ledger_sums.values()), r.ledger_sums
    assert r.split_brain == [], r.split_brain[:3]
    assert r.acknowledged == r.payments
    assert r.ok


@SHARED_SMALL
@pytest.mark.parametrize("name", list(DRILLS))
def test_each_drill_ends_clean(small_drill: Callable[[str], DrillResult], name: str) -> None:
    r = small_drill(name)
    _assert_clean(r)
    events = " | ".join(e for _, e in r.timeline)
    assert "eu-west-1 ON at epoch 2" in events and "eu-west-2 ON at epoch 3" in events  # failover, then failback
    assert r.rto_modelled_seconds == SMALL.rto.seconds == 110.0


@SHARED_SMALL
def test_partition_fences_the_old_primary(small_drill: Callable[[str], DrillResult]) -> None:
    r = small_drill("partition")
    _assert_clean(r)
    assert r.fenced_writes > 0  # the primary kept taking traffic; every write after its lease lapsed was refused
    assert r.tail_payments > 0 and r.rpo_payments > 0


def test_false_failover_of_a_healthy_primary_has_no_split_brain(moto_env: Any) -> None:
    """The primary still reaches the control plane and holds a valid lease when it is turned OFF: only the
    fence interval keeps the new region from writing while the old one still may."""
    r = partition(moto_env, replace(SMALL, primary_reaches_control=True, fail_at=0.2, rate_per_s=0.5))
    assert r.split_brain == []
    _assert_clean(r)
    assert r.fenced_writes > 0


@SHARED_SMALL
def test_paused_replication_fires_the_lag_alarm_and_loses_nothing(small_drill: Callable[[str], DrillResult]) -> None:
    r = small_drill("paused-replication")
    _assert_clean(r)
    assert r.lag_alarm_at is not None
    assert r.rpo_seconds > SMALL.lag_alarm_s and r.rpo_payments > 0
    assert r.resolved_by_rule.get("scheme report: accepted", 0) > 0


@SHARED_SMALL
def test_in_flight_rule_cancels_what_the_scheme_never_received(small_drill: Callable[[str], DrillResult]) -> None:
    r = small_drill("region-outage")
    assert r.cancelled > 0
    assert any(k.endswith(": unknown") for k in r.resolved_by_rule)
    assert CANCEL_REASON == "AB02"


def test_scheme_deduplicates_by_uetr() -> None:
    from simulations.region_drills import _Drill  # noqa: F401 - the drill engine uses this wrapper

    scheme = DedupingScheme(SimulatedSchemeGateway(seed=3))
    from fasterpay.pipeline.model import Payment

    p = Payment("00000000-0000-4000-8000-000000000001", "E", "M", "uk_fps", 100, "GBP", 2, "dtk_iban_a", "tok_iban_b",
                "n", "m", "OURBGB2L", "BARCGB22", 0.0, rail="uk_fps", submission_id="s")
    first = scheme.submit(p, now=0.0)
    again = scheme.submit(p, now=50.0)
    assert again is first and scheme.duplicates_refused == 1
    assert scheme.query(p.uetr, now=first.answer_at - 0.001)[0] == "pending"
    assert scheme.query(p.uetr, now=first.answer_at)[0] in ("accepted", "rejected")


def test_split_brain_detector() -> None:
    assert split_brain([(1.0, "a", 1), (2.0, "a", 1), (3.0, "b", 2)]) == []
    assert len(split_brain([(1.0, "a", 1), (2.0, "b", 2), (2.5, "a", 1)])) == 1


def test_recovery_exposure_is_booked_not_refused(moto_env: Any) -> None:
    """A payment the scheme accepted, whose hold never reached the new region, where the customer's
    replicated balance no longer covers it: booked with an advance from recovery:<ccy>, and counted."""
    from fasterpay.ledger import Transfer
    from simulations.region_drills import _Drill

    drill = _Drill(moto_env, "exposure", SMALL)
    b = drill.b
    drill.controls.set("cell-1", "eu-west-1", "ON", expected_epoch=1, new_epoch=2)
    drill._renew(b)
    payment = drill._payment(1, drill.truth())
    drill.payments[payment.uetr] = payment
    balance = b.ledger.balance(payment.debtor_ledger_account).balance_minor
    b.ledger.transfer(Transfer("drain", payment.debtor_ledger_account, f"funding:{payment.currency}", balance,
                               payment.currency))
    drill.scheme.submit(payment, drill.truth())
    drill.truth.advance(20.0)
    drill._renew(b)
    drill._resolve(b, payment, "scheme report")
    assert b.store.get(payment.uetr).status == "ACSP"
    assert drill.exposures == [(payment.uetr, payment.currency, payment.amount_minor)]
    assert b.ledger.balance(f"recovery:{payment.currency}").balance_minor == -payment.amount_minor


@SHARED_SMALL
def test_figures_label_measured_and_modelled(small_drill: Callable[[str], DrillResult]) -> None:
    r = small_drill("region-outage")
    rows = {(f.key, f.series): f for f in figures([r])}
    assert rows[("rpo_payments", "outage")].kind == "counted" and rows[("lost", "outage")].kind == "counted"
    assert rows[("rpo_payments", "outage")].kpi == "rpo_payments" and rows[("doubled", "outage")].kpi == "drill_doubled"
    assert rows[("rto_seconds", "outage")].kind == "modelled"
    assert rows[("lost", "outage")].value == "0" and rows[("doubled", "outage")].value == "0"


def test_cli_drill_exits_zero_and_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    from simulations.cli import main

    assert main(["drill", "region-outage", "--payments", "40", "--seed", "5", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary["ok"] is True and summary["drills"][0]["lost"]["count"] == 0
    assert summary["drills"][0]["name"] == "region_outage"


@pytest.mark.volume
def test_failure_moment_swept_hits_every_in_flight_state() -> None:
    """1,000 payments across drills, the failure moment swept across the traffic window: every in-flight
    state (held-not-sent, sent-not-answered, answered-not-recorded) is hit many times; all end clean."""
    states: Counter[str] = Counter()
    total = 0
    for n in range(8):  # the failure at 10%, 20%, ... 80% of the traffic window; every fourth run a partition
        settings = DrillSettings(payments=125, seed=100 + n, fail_at=0.1 + 0.1 * n)
        for r in run_all(settings, ("partition" if n % 4 == 3 else "region-outage",)):
            _assert_clean(r)
            states.update(r.states_at_failure)
            total += r.payments
    assert total >= 1_000
    for state in ("held-not-sent", "sent-not-answered", "answered-not-recorded"):
        assert states[state] >= 5, states


def test_replay_after_a_drill_replays_the_surviving_regions_cycles(capsys: pytest.CaptureFixture[str]) -> None:
    """The DR replay of the runbook: ``python -m simulations replay --after-drill failback``."""
    import json

    from simulations.cli import main

    assert main(["replay", "--after-drill", "failback", "--payments", "30", "--seed", "5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["ok"] and summary["cycles"] > 0 and summary["replay_mismatches"] == 0
    assert summary["ledger_sums"] == {"EUR": 0, "GBP": 0}
