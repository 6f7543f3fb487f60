"""The operations scenario: healthy traffic never pages, a storm pages when the template's alarms say it should,
the remedy stops the burn, and the numbers the KPI page shows follow from the inputs.

Phase profiles are built by hand here (the pipeline runs that measure them are exercised by the slo-drill
rehearsal in tests/test_runbooks.py), so each expectation can be computed from the alarm definitions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fasterpay.observability import AUTHORISATION_SLO, CRITICAL_PATH_SLO
from simulations.operations_sim import (
    PhaseProfile,
    ScenarioSettings,
    paging_alarms,
    scheme_storm,
    simulate,
    summary_numbers,
    template_alarms,
)

ALARMS, COMPOSITES, NOT_EMULATED = template_alarms()
CAUSE = "fasterpay-prod-scheme-timeout-storm"
RATE = 10.0


def _profile(name: str, *, technical: int, authorise_ms: tuple[float, ...] = (30.0, 45.0, 60.0)) -> PhaseProfile:
    critical = (90.0, 120.0, 140.0)
    return PhaseProfile(name=name, payments=100, decided=100, authorise_ms=authorise_ms, authorised=100,
                        critical_ms=critical, technical_failures=technical, ok=True)


HEALTHY = _profile("healthy", technical=0)
STORM = _profile("storm", technical=30)  # 30% of authorised payments time out at the scheme


def _settings(**changes: object) -> ScenarioSettings:
    base = dict(seed=5, rate_per_s=RATE, hours=5.0, incident_at_minute=120, respond_minutes=10,
                paging_alarms=paging_alarms(COMPOSITES, cause=CAUSE))
    base.update(changes)
    return ScenarioSettings(**base)  # type: ignore[arg-type]


def test_only_the_anomaly_and_metrics_insights_alarms_are_left_to_aws() -> None:
    assert NOT_EMULATED == {"fasterpay-prod-detokenize-anomaly": "anomaly-detection band (AWS's model)",
                            "fasterpay-prod-detokenize-ceiling": "SELECT in its metric math"}
    assert len(ALARMS) >= 20 and len(COMPOSITES) == 6


def test_healthy_traffic_pages_nobody_for_a_day() -> None:
    result = simulate(_settings(hours=24.0, incident_at_minute=0, remedy=False), HEALTHY, HEALTHY,
                      alarms=ALARMS, composites=COMPOSITES)
    assert result.detected_minute is None
    fired = {t.alarm for t in result.history.transitions if t.state == "ALARM"}
    assert fired == set()  # the settlement job publishes 0 each cycle, so its missing-data rule stays quiet


def test_the_cause_alarm_pages_on_its_third_breaching_minute_and_the_remedy_restores() -> None:
    result = simulate(_settings(), HEALTHY, STORM, alarms=ALARMS, composites=COMPOSITES)
    numbers = summary_numbers(result, CRITICAL_PATH_SLO)
    assert result.detected_by == CAUSE
    assert numbers["time_to_detect_min"] == 3  # 3 of 5 one-minute datapoints above 5%
    assert numbers["time_to_remedy_min"] == 3 + 10
    # the 5-minute burn falls under 1x once the last storm minute leaves its window
    assert numbers["time_to_restore_min"] == 13 + 5
    assert all(states[-1] == "OK" for name, states in result.history.states.items() if name in
               paging_alarms(COMPOSITES, cause=CAUSE))
    storm_minutes = 13
    expected = storm_minutes * 60 * RATE * 0.3 / (RATE * 86_400 * 30 * CRITICAL_PATH_SLO.error_budget)
    assert numbers["budget_spent_pct"] == pytest.approx(100 * expected, rel=0.1)  # Poisson and binomial draws


def test_without_the_cause_alarm_the_fast_burn_pages_when_the_hour_has_burnt_two_per_cent() -> None:
    result = simulate(_settings(paging_alarms=paging_alarms(COMPOSITES)), HEALTHY, STORM, alarms=ALARMS,
                      composites=COMPOSITES)
    assert result.detected_by == "fasterpay-prod-critical-path-fast-burn"
    # the 1 h window's burn passes 14.4x when minutes × 30% / 60 > 14.4 × 1%: after 29 storm minutes
    assert result.detected_minute - 120 == pytest.approx(math.ceil(60 * 14.4 * 0.01 / 0.3), abs=1)
    assert summary_numbers(result, AUTHORISATION_SLO)["budget_spent_pct"] == 0  # the storm cannot touch it


def test_the_remedy_changes_nothing_before_it_is_applied() -> None:
    with_remedy = simulate(_settings(), HEALTHY, STORM, alarms=ALARMS, composites=COMPOSITES)
    without = simulate(_settings(remedy=False), HEALTHY, STORM, alarms=ALARMS, composites=COMPOSITES)
    cut = with_remedy.remedy_minute
    for key, series in with_remedy.events.items():
        assert np.array_equal(series[:cut], without.events[key][:cut]), key
        assert series[cut:].sum() <= without.events[key][cut:].sum() or key.endswith("total")
    assert with_remedy.detected_minute == without.detected_minute
    assert without.remedy_minute is None
    assert summary_numbers(without, CRITICAL_PATH_SLO)["budget_spent_pct"] > 5 * \
        summary_numbers(with_remedy, CRITICAL_PATH_SLO)["budget_spent_pct"]


def test_the_storm_keeps_the_healthy_authorisation_path() -> None:
    storm = scheme_storm(HEALTHY, _profile("storm", technical=30, authorise_ms=(30.0, 900.0)))
    assert storm.authorise_ms == HEALTHY.authorise_ms and storm.technical_failures == 30


@pytest.mark.parametrize(("changes", "message"), [
    ({"rate_per_s": 0.0}, "positive"), ({"hours": -1.0}, "positive"),
    ({"incident_at_minute": 10_000}, "inside the run"), ({"respond_minutes": -1}, "negative")])
def test_bad_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _settings(**changes)


def test_a_paging_alarm_that_is_not_evaluated_is_refused() -> None:
    from simulations.alarm_emulator import UnsupportedAlarm

    with pytest.raises(UnsupportedAlarm, match="not among the alarms"):
        simulate(_settings(paging_alarms=("fasterpay-prod-detokenize-anomaly",)), HEALTHY, STORM, alarms=ALARMS,
                 composites=COMPOSITES)
