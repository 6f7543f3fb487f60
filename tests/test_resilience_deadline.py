"""Deadlines, per-hop budgets and deadline-bounded botocore configs (fasterpay.resilience.deadline)."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from fasterpay.iso20022.schemes import SCHEMES, SEPA_INST, UK_FPS
from fasterpay.resilience.deadline import (
    DEADLINE_HEADER,
    DEFAULT_FIXED_HOPS_S,
    DEFAULT_MARGIN_S,
    HOPS,
    SCHEME_TIME_LIMITS_S,
    Deadline,
    DeadlineExceededError,
    HopBudget,
    HopBudgetError,
    MalformedDeadlineError,
    botocore_config,
    scheme_time_limit_s,
)

MODULE = Path(__file__).resolve().parents[1] / "reference" / "fasterpay" / "resilience" / "deadline.py"


class FakeClock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- the scheme limits --------------------------------------------------------------------------------
def test_scheme_limits_are_the_registry_limits() -> None:
    assert dict(SCHEME_TIME_LIMITS_S) == {
        name: float(rules.clearing.time_limit_seconds) for name, rules in SCHEMES.items()  # type: ignore[union-attr]
    }
    assert scheme_time_limit_s(UK_FPS) == 15.0 and scheme_time_limit_s(SEPA_INST) == 10.0
    assert scheme_time_limit_s(SEPA_INST.clearing) == 10.0


@pytest.mark.parametrize("bad", ["chaps", 0, -3, math.nan, True, object()])
def test_scheme_time_limit_refuses_what_is_not_a_limit(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        scheme_time_limit_s(bad)


def test_enforced_deadline_is_limit_minus_margin_from_receipt(clock: FakeClock) -> None:
    received = clock.now - 2.0  # received two seconds ago, on another host
    fps = Deadline.for_scheme("uk_fps", clock, received_at=received)
    sepa = Deadline.for_scheme(SEPA_INST, clock, received_at=received)
    assert fps.at == received + 15.0 - DEFAULT_MARGIN_S
    assert sepa.at == received + 10.0 - DEFAULT_MARGIN_S
    assert sepa.remaining() == pytest.approx(7.0)


@pytest.mark.parametrize("margin", [-0.5, 10.0, 11.0, math.inf])
def test_margin_must_leave_time(clock: FakeClock, margin: float) -> None:
    with pytest.raises(ValueError):
        Deadline.for_scheme("sepa_inst", clock, margin_s=margin)


# -- remaining, expired, child, check ------------------------------------------------------------------
def test_remaining_and_expired_follow_the_clock(clock: FakeClock) -> None:
    d = Deadline.after(2.0, clock)
    assert (d.remaining(), d.expired(), d.overrun()) == (2.0, False, 0.0)
    clock.advance(2.0)
    assert (d.remaining(), d.expired()) == (0.0, True)  # at the deadline itself, it has passed
    clock.advance(0.5)
    assert d.remaining() == 0.0 and d.overrun() == pytest.approx(0.5)


def test_child_takes_the_hop_budget_when_it_is_earlier(clock: FakeClock) -> None:
    parent = Deadline.after(9.0, clock)
    assert parent.child(0.25).at == pytest.approx(clock.now + 0.25)


def test_child_never_outlives_its_parent(clock: FakeClock) -> None:
    parent = Deadline.after(9.0, clock)
    clock.advance(8.9)
    child = parent.child(5.0)  # a generous hop budget cannot stretch the payment's deadline
    assert child.at == parent.at
    assert child.remaining() == pytest.approx(0.1)


@pytest.mark.parametrize("budget", [-0.001, -5, math.nan, math.inf, "1"])
def test_child_refuses_bad_budgets(clock: FakeClock, budget: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        Deadline.after(9.0, clock).child(budget)  # type: ignore[arg-type]


def test_check_passes_before_and_raises_after_with_stage_and_overrun(clock: FakeClock) -> None:
    d = Deadline.after(1.0, clock)
    d.check("authorise")
    clock.advance(0.999)
    d.check("authorise")
    clock.now = d.at
    with pytest.raises(DeadlineExceededError):  # at the deadline itself, it has passed
        d.check("route")
    clock.advance(1.5)
    with pytest.raises(DeadlineExceededError) as caught:
        d.check("clear")
    assert caught.value.stage == "clear"
    assert caught.value.overrun_s == pytest.approx(1.5)
    assert "answer it as timed out" in str(caught.value)
    assert isinstance(caught.value, TimeoutError)


def test_a_deadline_is_a_finite_time_with_a_clock() -> None:
    with pytest.raises(ValueError):
        Deadline(math.nan, lambda: 0.0)
    with pytest.raises(TypeError):
        Deadline(1.0, "not a clock")  # type: ignore[arg-type]


# -- across a hop -------------------------------------------------------------------------------------
def test_header_round_trip_keeps_the_absolute_time(clock: FakeClock) -> None:
    d = Deadline.after(9.0, clock)
    header = d.to_header()
    clock.advance(3.0)  # the message waited in a queue: the deadline did not move
    again = Deadline.from_header(header, clock)
    assert again.at == pytest.approx(d.at, abs=1e-6)
    assert again.remaining() == pytest.approx(6.0, abs=1e-6)


def test_message_attribute_round_trip_sqs_and_lambda_shapes(clock: FakeClock) -> None:
    d = Deadline.after(9.0, clock)
    sent = d.to_message_attribute()
    assert sent[DEADLINE_HEADER]["DataType"] == "Number"
    assert Deadline.from_message_attributes(sent, clock) == d  # ReceiveMessage shape
    lambda_shape = {DEADLINE_HEADER: {"stringValue": sent[DEADLINE_HEADER]["StringValue"], "dataType": "Number"}}
    assert Deadline.from_message_attributes(lambda_shape, clock) == d


def test_an_expired_header_is_read_and_then_refused_by_check(clock: FakeClock) -> None:
    old = Deadline.after(1.0, clock).to_header()
    clock.advance(5.0)
    d = Deadline.from_header(old, clock)
    assert d.expired()
    with pytest.raises(DeadlineExceededError):
        d.check("clear")


@pytest.mark.parametrize("value", ["", " ", "soon", "nan", "inf", "-5", "1e9", "1.2.3", "17000000000000", None,
                                   1_700_000_009.0, "1700000009,5"])
def test_malformed_headers_are_refused(clock: FakeClock, value: object) -> None:
    with pytest.raises(MalformedDeadlineError):
        Deadline.from_header(value, clock)


def test_a_header_far_in_the_future_is_refused(clock: FakeClock) -> None:
    with pytest.raises(MalformedDeadlineError, match="ahead"):
        Deadline.from_header(f"{clock.now + 7200:.6f}", clock)


@pytest.mark.parametrize("attributes", [None, {}, {DEADLINE_HEADER: "1700000009"}, {"other": {"StringValue": "1"}}])
def test_missing_message_attribute_is_refused(clock: FakeClock, attributes: object) -> None:
    with pytest.raises(MalformedDeadlineError):
        Deadline.from_message_attributes(attributes, clock)  # type: ignore[arg-type]


# -- botocore timeouts --------------------------------------------------------------------------------
def _worst_case_s(cfg: Config, backoff_base_s: float = 0.05) -> float:
    attempts = cfg.retries["total_max_attempts"]
    return attempts * (cfg.connect_timeout + cfg.read_timeout) + backoff_base_s * (2 ** (attempts - 1) - 1)


@pytest.mark.parametrize(("left", "attempts"), [(5.0, 3), (0.4, 3), (0.3, 3), (0.29, 2), (0.16, 2), (0.12, 1),
                                                (0.05, 1)])
def test_attempts_and_timeouts_fit_the_time_left(clock: FakeClock, left: float, attempts: int) -> None:
    cfg = botocore_config(Deadline.after(left, clock), floor_s=0.05)
    assert cfg.retries == {"mode": "standard", "total_max_attempts": attempts}
    assert cfg.connect_timeout > 0 and cfg.read_timeout > 0
    assert cfg.connect_timeout <= 0.1
    assert _worst_case_s(cfg) <= left + 1e-6


def test_config_fits_after_time_has_passed(clock: FakeClock) -> None:
    d = Deadline.after(1.0, clock)
    clock.advance(0.9)
    cfg = botocore_config(d, floor_s=0.02)
    assert _worst_case_s(cfg) <= 0.1 + 1e-6


def test_no_attempt_fits_raises(clock: FakeClock) -> None:
    with pytest.raises(DeadlineExceededError) as caught:
        botocore_config(Deadline.after(0.03, clock), floor_s=0.05, stage="authorise")
    assert caught.value.stage == "authorise" and caught.value.overrun_s == pytest.approx(0.02, abs=1e-6)
    expired = Deadline.after(1.0, clock)
    clock.advance(2.0)
    with pytest.raises(DeadlineExceededError):
        botocore_config(expired, floor_s=0.01)


@pytest.mark.parametrize("kwargs", [{"floor_s": 0}, {"floor_s": -1}, {"floor_s": 0.01, "max_attempts": 0},
                                    {"floor_s": 0.01, "connect_timeout_s": 0}, {"floor_s": 0.01, "max_attempts": 1.5}])
def test_botocore_config_refuses_bad_arguments(clock: FakeClock, kwargs: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        botocore_config(Deadline.after(5.0, clock), **kwargs)  # type: ignore[arg-type]


def test_config_merges_into_a_base_and_a_client_accepts_it(clock: FakeClock) -> None:
    base = Config(region_name="eu-west-2", user_agent_extra="fasterpay")
    cfg = botocore_config(Deadline.after(0.5, clock), floor_s=0.05, base=base)
    assert cfg.region_name == "eu-west-2" and cfg.user_agent_extra == "fasterpay"
    client = boto3.client("dynamodb", region_name="eu-west-2", config=cfg,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    assert client.meta.config.read_timeout == cfg.read_timeout


# -- per-hop budgets ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("scheme", "enforced"), [("uk_fps", 14.0), ("sepa_inst", 9.0)])
def test_default_budgets_fit_the_enforced_limit(scheme: str, enforced: float) -> None:
    table = HopBudget.for_scheme(SCHEMES[scheme])
    assert table.enforced_s == enforced
    assert tuple(table.budgets_s) == HOPS
    assert table.total_s <= table.enforced_s + 1e-9
    assert table.budget("clear") == pytest.approx(enforced - sum(DEFAULT_FIXED_HOPS_S.values()))
    assert all(table.budget(hop) > 0 for hop in HOPS)
    assert [hop for hop, _ in table.rows()] == list(HOPS)


def test_budgets_over_the_limit_are_refused_with_what_to_shorten() -> None:
    with pytest.raises(HopBudgetError, match=r"shorten 'clear'.*by 0\.5 s"):
        HopBudget(15.0, {"ingest": 0.5, "clear": 14.0})


@pytest.mark.parametrize("budgets", [{"ingest": -0.1, "clear": 1.0}, {"ingest": 0, "clear": 1.0},
                                     {"ingest": math.nan}, {"": 1.0}, {}, {"clear": "5"}])
def test_bad_budgets_are_refused(budgets: dict[str, object]) -> None:
    with pytest.raises(HopBudgetError):
        HopBudget(10.0, budgets)  # type: ignore[arg-type]


def test_margin_that_eats_the_limit_and_fixed_hops_that_leave_nothing_are_refused() -> None:
    with pytest.raises(HopBudgetError):
        HopBudget(10.0, {"clear": 1.0}, margin_s=10.0)
    with pytest.raises(HopBudgetError, match="leaving nothing"):
        HopBudget.for_scheme("sepa_inst", fixed_s={"ingest": 9.0})


def test_unknown_hop_is_refused_with_the_known_ones() -> None:
    with pytest.raises(HopBudgetError, match="ingest"):
        HopBudget.for_scheme("uk_fps").budget("settle")


def test_hop_deadline_is_the_earlier_of_budget_and_payment(clock: FakeClock) -> None:
    table = HopBudget.for_scheme("sepa_inst")
    payment = Deadline.for_scheme("sepa_inst", clock)
    assert table.deadline("authorise", payment).at == pytest.approx(clock.now + 0.20)
    clock.advance(8.9)
    assert table.deadline("clear", payment).at == payment.at


# -- the pattern copies alone -------------------------------------------------------------------------
def test_module_imports_only_the_standard_library_and_botocore() -> None:
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: the module must copy alone"
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top in {"botocore", "boto3"}, name
