"""Pipeline pieces without AWS: routing rules, screening form, gateway, money, netting, event shape."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fasterpay.iso20022.schemes import SCHEMES
from fasterpay.ledger import SimulatedCrash
from fasterpay.metrics import percentile
from fasterpay.pipeline import (
    Entry,
    Payment,
    PoisonMessageError,
    RoutingRules,
    default_routing_rules,
    net_positions,
    screening_form,
    sqs_event,
    to_minor_units,
)
from simulations.pipeline_bench import CrashInjector
from simulations.scheme import SimulatedSchemeGateway, VirtualClock, scheme_latency


def _payment(**changes: object) -> Payment:
    base = dict(uetr="u-1", end_to_end_id="E1", msg_id="M1", scheme="uk_fps", amount_minor=1050, currency="GBP",
                exponent=2, debtor_account_token="dtk_iban_a", creditor_account_token="dtk_iban_b",
                debtor_name_token="dtk_name_c", creditor_name_token="dtk_name_d", debtor_agent="BARCGB22",
                creditor_agent="NWBKGB2L", accepted_at=1.0)
    base.update(changes)
    return Payment(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("agent", "currency", "amount", "rail", "reason"), [
    ("BARCGB22", "GBP", "25.00", "uk_fps", None),
    ("GBDSC:123456", "GBP", "25.00", "uk_fps", None),
    ("MIDLGB22", "GBP", "25.00", "internal", None),
    ("GBDSC:401234", "GBP", "25.00", "internal", None),
    ("GBDSC:912345", "GBP", "25.00", None, "AB08"),
    ("BARCGB22", "GBP", "1000000.01", None, "AM02"),
    ("DEUTDEFF", "EUR", "5000000.00", "sepa_inst", None),
    ("DEUTDEFF", "GBP", "1.00", None, "AB08"),
    ("BARCGB22", "EUR", "1.00", None, "AB08"),
])
def test_routing_rules_as_data(agent: str, currency: str, amount: str, rail: str | None, reason: str | None) -> None:
    route = default_routing_rules().route_agent(agent, currency, Decimal(amount))
    assert (route.rail, route.reason) == (rail, reason)


def test_routing_rules_refuse_unknown_rails_and_rails_outside_the_registry() -> None:
    with pytest.raises(ValueError, match="unknown rail"):
        RoutingRules.from_mapping({"rules": [{"rail": "nope"}]})
    with pytest.raises(ValueError, match="scheme registry"):
        RoutingRules.from_mapping({"rails": {"x": {"max_amount": "1.5"}}, "rules": []})


def test_screening_form_normalises_case_spacing_and_punctuation() -> None:
    assert screening_form("  ivor   shadowmere. ") == screening_form("IVOR SHADOWMERE") == "IVOR SHADOWMERE"
    assert screening_form("Ivor Shadowmere") != screening_form("Ivor Shadowmore")  # exact match only


def test_gateway_answers_are_deterministic_per_uetr_and_time_out_past_the_limit() -> None:
    gateway = SimulatedSchemeGateway(seed=3)
    first = [gateway.answer(f"u-{n}", "uk_fps", time_limit=15) for n in range(50)]
    again = [gateway.answer(f"u-{n}", "uk_fps", time_limit=15) for n in range(50)]
    assert first == again
    assert all(not a.accepted for a in (gateway.answer(f"u-{n}", "uk_fps", time_limit=0.0001) for n in range(5)))
    assert SimulatedSchemeGateway(seed=3, timeout_rate=1.0).answer("u", "sepa_inst", time_limit=10).reason == "timeout"


def test_one_scheme_registry_feeds_routing_time_limits_and_the_gateway() -> None:
    rules = default_routing_rules()
    for scheme in SCHEMES.values():
        assert scheme.clearing is not None
        rail = rules.rails[scheme.clearing.rail]
        assert rail.time_limit_seconds == scheme.clearing.time_limit_seconds
        assert rail.currencies == scheme.currencies and rail.max_amount == scheme.max_amount
        assert scheme_latency()[scheme.clearing.rail].p50_ms == scheme.clearing.answer_ms[0]
    assert (rules.rails["uk_fps"].time_limit_seconds, rules.rails["sepa_inst"].time_limit_seconds) == (15, 10)
    with pytest.raises(ValueError, match="scheme registry"):
        RoutingRules.from_mapping({"rails": {}, "rules": []})


def test_virtual_clock_never_goes_backwards() -> None:
    clock = VirtualClock(10.0)
    clock.advance(5)
    assert clock() == 15.0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_money_is_integer_minor_units_never_float() -> None:
    assert to_minor_units(Decimal("10.50"), 2) == 1050
    assert to_minor_units(Decimal("7"), 0) == 7
    with pytest.raises(ValueError, match="more decimals"):
        to_minor_units(Decimal("1.005"), 2)
    with pytest.raises(TypeError, match="never float"):
        to_minor_units(10.5, 2)  # type: ignore[arg-type]
    with pytest.raises(PoisonMessageError):
        _payment(amount_minor=10.5)


def test_payment_json_round_trips_and_garbage_is_poison() -> None:
    payment = _payment(rail="uk_fps")
    assert Payment.from_json(payment.to_json()) == payment
    for body in ("not json", "{}", '{"uetr": 1}', "[]"):
        with pytest.raises(PoisonMessageError):
            Payment.from_json(body)


@given(st.lists(st.tuples(st.sampled_from(["uk_fps", "sepa_inst", "internal"]), st.integers(1, 10**9),
                          st.sampled_from(["BARCGB22", "NWBKGB2L", "GBDSC:123456"])), max_size=40))
def test_net_positions_sum_to_zero_per_rail_and_currency(rows: list[tuple[str, int, str]]) -> None:
    payments = [Entry(f"u{n}", amount, "GBP", rail, agent) for n, (rail, amount, agent) in enumerate(rows)]
    totals: dict[tuple[str, str], int] = {}
    for position in net_positions(payments):
        totals[(position.rail, position.currency)] = totals.get((position.rail, position.currency), 0) + position.net_minor
    assert set(totals.values()) <= {0}


def test_sqs_event_has_the_lambda_shape() -> None:
    event = sqs_event([{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "b",
                        "Attributes": {"ApproximateReceiveCount": "2"}}],
                      queue_arn="arn:aws:sqs:eu-west-2:123456789012:q", region="eu-west-2")
    record = event["Records"][0]
    assert set(record) == {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                           "eventSource", "eventSourceARN", "awsRegion"}
    assert record["attributes"]["ApproximateReceiveCount"] == "2" and len(record["md5OfBody"]) == 32


def test_the_crash_injector_forces_each_point_to_its_minimum_and_counts_visits() -> None:
    crash = CrashInjector(rate=0.0, minimum=2, seed=1, injector=None)
    crashes = 0
    for _ in range(12):
        try:
            crash.step("accept.recorded")
        except SimulatedCrash as exc:
            assert exc.step == "accept.recorded"
            crashes += 1
    assert (crashes, crash.crashes["accept.recorded"], crash.visits["accept.recorded"]) == (2, 2, 12)


def test_one_percentile_definition() -> None:
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0 and percentile([], 50) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 99) == pytest.approx(3.97)


def test_the_thread_pool_carries_the_callers_trace_into_its_tasks() -> None:
    """A span started in a pool task is a child of the span that was current when the batch was handed over."""
    from fasterpay.observability import in_memory_tracer
    from fasterpay.pipeline.bootstrap import thread_pool

    tracer, exporter = in_memory_tracer("pool-test")
    run = thread_pool(4)

    def per_payment(n: int) -> int:
        with tracer.start_as_current_span(f"payment-{n}"):
            return n

    with tracer.start_as_current_span("handler") as handler:
        assert run(per_payment, list(range(8))) == list(range(8))
    spans = {s.name: s for s in exporter.get_finished_spans()}
    parent = handler.get_span_context()
    for n in range(8):
        child = spans[f"payment-{n}"]
        assert child.parent is not None and child.parent.span_id == parent.span_id
        assert child.context.trace_id == parent.trace_id
