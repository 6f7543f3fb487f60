"""SLOs with multi-window, multi-burn-rate alerts, and the per-caller detokenize spike alert."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasterpay.observability import (
    SRE_WORKBOOK_ALERTS,
    BurnRateAlert,
    DetokenizeSpikeDetector,
    SliCounts,
    Slo,
    evaluate_alerts,
)
from simulations.observability_sim import Incident, Misuse, simulate_detokenize_traffic, simulate_long_run

AUTH = Slo("authorisation", objective=0.9999, threshold_ms=150)
CRIT = Slo("critical path", objective=0.99, threshold_ms=300)
FAST, MEDIUM, SLOW = SRE_WORKBOOK_ALERTS
HOUR = 3600


def counts_with(bad_rate_at, *, hours: int, per_s: int = 1) -> SliCounts:
    """One event per second; every n-th event bad where bad_rate_at(t) gives 1/n (0: none)."""
    counts = SliCounts(bucket_s=60)
    for t in range(hours * HOUR):
        for k in range(per_s):
            rate = bad_rate_at(t)
            counts.record(t, good=not (rate and (t * per_s + k) % round(1 / rate) == 0))
    return counts


def test_the_workbook_alerts_and_the_budget_they_spend() -> None:
    assert [(a.long_window_s, a.short_window_s, a.burn_rate, a.severity) for a in SRE_WORKBOOK_ALERTS] == [
        (3600, 300, 14.4, "page"), (21600, 1800, 6.0, "page"), (259200, 21600, 1.0, "ticket")]
    assert [round(a.budget_spent(AUTH), 3) for a in SRE_WORKBOOK_ALERTS] == [0.02, 0.05, 0.1]


def test_a_clean_run_never_alerts() -> None:
    result = evaluate_alerts(counts_with(lambda t: 0, hours=8), AUTH)
    assert result.firings == [] and result.good_ratio == 1.0


def test_a_sharp_outage_pages_within_minutes_and_resolves_soon_after() -> None:
    # 2% of authorisations fail for 30 minutes from hour 3: burn rate 200x.
    counts = counts_with(lambda t: 0.02 if 3 * HOUR <= t < 3.5 * HOUR else 0, hours=8)
    result = evaluate_alerts(counts, AUTH)
    fast = result.first_firing(FAST)
    assert fast is not None and 3 * HOUR < fast.start_s <= 3 * HOUR + 5 * 60
    assert fast.end_s is not None and fast.end_s <= 3.5 * HOUR + 6 * 60  # the 5-minute window lets it go
    medium = result.first_firing(MEDIUM)
    assert medium is not None and fast.start_s <= medium.start_s <= 3 * HOUR + 15 * 60


def test_a_slow_burn_skips_the_fast_page_but_is_caught_by_the_medium_one() -> None:
    # 0.08% failing for 10 hours: burn rate 8x, under 14.4 but over 6.
    counts = counts_with(lambda t: 1 / 1250 if 2 * HOUR <= t < 12 * HOUR else 0, hours=14)
    result = evaluate_alerts(counts, AUTH)
    assert result.first_firing(FAST) is None
    medium = result.first_firing(MEDIUM)
    assert medium is not None and 2 * HOUR + 3 * HOUR < medium.start_s < 2 * HOUR + 6 * HOUR


def test_burn_rate_is_bad_fraction_over_budget() -> None:
    counts = SliCounts(bucket_s=60)
    for minute in range(120):
        for i in range(100):
            counts.record(minute * 60 + i * 0.5, good=not (minute >= 60 and i == 0))  # 1% bad in hour two
    result = evaluate_alerts(counts, AUTH, [BurnRateAlert("x", "page", 3600, 300, 5)])
    assert result.burn[3600][59] == 0 and result.burn[3600][-1] == pytest.approx(100.0)
    assert result.burn[300][64] == pytest.approx(100.0) and result.burn[3600][64] == pytest.approx(100.0 * 5 / 60)


@settings(max_examples=20, deadline=None)
@given(rate=st.sampled_from([0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05]),
       start=st.integers(min_value=1, max_value=5))
def test_no_alert_fires_unless_both_windows_burn(rate: float, start: int) -> None:
    counts = counts_with(lambda t: rate if start * HOUR <= t < (start + 1) * HOUR else 0, hours=7)
    result = evaluate_alerts(counts, AUTH)
    for firing in result.firings:
        i = result.times_s.index(firing.start_s)
        assert result.burn[firing.alert.long_window_s][i] > firing.alert.burn_rate
        assert result.burn[firing.alert.short_window_s][i] > firing.alert.burn_rate


@pytest.mark.parametrize("kwargs", [{"objective": 1.0}, {"objective": 0}, {"threshold_ms": 0}, {"period_days": 0}])
def test_slo_settings_are_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Slo(**{"name": "x", "objective": 0.999, **kwargs})


def test_alert_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        BurnRateAlert("x", "page", 300, 3600, 14.4)
    with pytest.raises(ValueError):
        SliCounts(bucket_s=60).record(-1, good=True)


# -- the long simulated run ------------------------------------------------------------------------------
#: Modelled milliseconds per payment, shaped like a pipeline run's ``RunSummary.latency_samples``.
SAMPLES = {"authorise": [10.0 + i % 20 for i in range(100)], "ingest_to_acsp": [40.0 + i % 30 for i in range(90)]}


def test_the_long_run_is_reproducible_and_its_incidents_fire_alerts() -> None:
    incidents = [Incident("outage", 6 * HOUR, 6.5 * HOUR, failure_rate=0.03),
                 Incident("slow disks", 9 * HOUR, 10 * HOUR, extra_latency_ms=300, affected=0.2)]
    kwargs = dict(duration_s=12 * HOUR, rate_per_s=1, incidents=incidents, authorisation=AUTH,
                  critical_path=CRIT, seed=5)
    auth, crit = simulate_long_run(SAMPLES, **kwargs)
    again, _ = simulate_long_run(SAMPLES, **kwargs)
    assert auth.bad == again.bad and sum(auth.total) == 12 * HOUR
    auth_alerts = evaluate_alerts(auth, AUTH)
    assert auth_alerts.first_firing(FAST).start_s == pytest.approx(6 * HOUR, abs=10 * 60)
    crit_alerts = evaluate_alerts(crit, CRIT)
    # 20% of payments 300 ms slower: burn 20x, so the 1-hour window passes 14.4x after about 43 minutes.
    assert 9 * HOUR + 35 * 60 < crit_alerts.first_firing(FAST).start_s < 9 * HOUR + 55 * 60
    assert all(f.start_s >= 9 * HOUR for f in crit_alerts.firings)  # the outage failed payments, it did not slow them


@pytest.mark.parametrize("samples", [{}, {"authorise": [10.0]}, {"authorise": [10.0], "ingest_to_acsp": []}])
def test_the_long_run_needs_latencies_to_sample(samples: dict) -> None:
    with pytest.raises(ValueError, match="latency samples"):
        simulate_long_run(samples, duration_s=60, rate_per_s=1, incidents=[], authorisation=AUTH, critical_path=CRIT,
                          seed=1)


def test_incidents_name_a_pipeline_step() -> None:
    with pytest.raises(ValueError, match="stage must be one of"):
        Incident("x", 0, 60, stage="payment")
    with pytest.raises(ValueError):
        Incident("x", 60, 0)


def test_early_latency_slows_authorisation_and_late_latency_only_the_path_to_acsp() -> None:
    kwargs = dict(duration_s=600, rate_per_s=1, authorisation=AUTH, critical_path=CRIT, seed=2, base_failure_rate=0)
    for stage, auth_hit in (("route", True), ("settle", False)):
        auth, crit = simulate_long_run(SAMPLES, incidents=[Incident("slow", 0, 600, extra_latency_ms=400, affected=1,
                                                                    stage=stage)], **kwargs)
        assert (auth.ratio_good() == 0.0) is auth_hit and crit.ratio_good() == 0.0


# -- the detokenize spike alert ---------------------------------------------------------------------------
CALLERS = {"scheme-gateway": 40.0, "fraud-desk": 3.0, "support-desk": 1.0}


def test_a_misusing_caller_fires_and_normal_callers_do_not() -> None:
    events = simulate_detokenize_traffic(duration_s=4 * HOUR, callers=CALLERS, seed=3,
                                         misuse=[Misuse("support-desk", 3 * HOUR, 3 * HOUR + 600, 120)])
    detector = DetokenizeSpikeDetector(min_count=20, warmup_s=HOUR)
    alerts = detector.observe_many((c, t) for c, t in events) + detector.close(4 * HOUR)
    assert {a.caller for a in alerts} == {"support-desk"}
    assert min(a.window_start_s for a in alerts) == 3 * HOUR
    assert len(alerts) >= 9  # every minute of the ten, or nearly
    assert detector.baselines["support-desk"] < 3  # the spike did not become its normal


def test_a_legitimate_rise_does_not_fire() -> None:
    events = simulate_detokenize_traffic(duration_s=3 * HOUR, callers={"scheme-gateway": 40.0}, seed=4,
                                         misuse=[Misuse("scheme-gateway", 2 * HOUR, 3 * HOUR, 20.0)])  # 1.5x
    detector = DetokenizeSpikeDetector(min_count=20, warmup_s=HOUR)
    assert detector.observe_many(events) + detector.close(3 * HOUR) == []


def test_a_new_caller_above_the_floor_fires() -> None:
    detector = DetokenizeSpikeDetector(min_count=20, baselines={"scheme-gateway": 40.0})
    for i in range(25):
        detector.observe("unknown-tool", 10 + i)
    alerts = detector.close(60)
    assert [(a.caller, a.count, a.threshold) for a in alerts] == [("unknown-tool", 25, 20.0)]


def test_events_must_come_in_time_order_and_settings_are_checked() -> None:
    detector = DetokenizeSpikeDetector()
    detector.observe("a", 120)
    with pytest.raises(ValueError, match="time order"):
        detector.observe("a", 10)
    with pytest.raises(ValueError):
        DetokenizeSpikeDetector(alpha=0)


def test_pre_aggregated_counts_equal_events_recorded_one_by_one() -> None:
    one_by_one, aggregated = SliCounts(bucket_s=60), SliCounts(bucket_s=60)
    for second in range(180):
        one_by_one.record(second, good=second % 7 != 0)
    for minute in range(3):
        seconds = range(minute * 60, minute * 60 + 60)
        aggregated.record_counts(minute * 60, total=60, bad=sum(1 for s in seconds if s % 7 == 0))
    assert (aggregated.total, aggregated.bad) == (one_by_one.total, one_by_one.bad)
    with pytest.raises(ValueError, match="bad <= total"):
        aggregated.record_counts(0, total=1, bad=2)
