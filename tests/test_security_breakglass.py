"""Break-glass access: the template's own trust policy refuses a session without fresh MFA or without the
incident's session tags, and the helper refuses a bad request before any AWS call.

moto ignores IAM condition keys (DESIGN.md section 6): it would let a role that requires MFA be assumed
without it. So the trust policy deployed by ``security.yaml`` is read from the template (defaults resolved)
and evaluated by :func:`fasterpay.security.evaluate_trust_policy`; on AWS, IAM enforces the same document.
What moto does show: ``sts.assume_role`` accepts the MFA serial, code and session tags the helper sends, and
the assumed-role ARN carries the session name with the incident id. moto does not check the MFA code.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_security_template import ACCOUNT, REGION, parameters, props, resolve

from fasterpay.aws import AwsEnvironment, open_environment
from fasterpay.metering import ApiCallMeter
from fasterpay.security import (
    BreakGlassRefusedError,
    UnsupportedPolicyError,
    assume_break_glass,
    evaluate_trust_policy,
    request_context,
)

RESPONDER = f"arn:aws:iam::{ACCOUNT}:user/alice"
#: The deployed trust policy, with the responder named (BreakGlassPrincipalArn) ...
TRUST = resolve(props("BreakGlassRole")["AssumeRolePolicyDocument"], parameters(BreakGlassPrincipalArn=RESPONDER))
#: ... and with the parameter left empty (this account's root).
TRUST_ACCOUNT = resolve(props("BreakGlassRole")["AssumeRolePolicyDocument"])
GOOD_TAGS = {"incident-id": "INC-4711", "operator": "alice"}
GOOD = request_context(mfa_age_s=120, tags=GOOD_TAGS)


def decide(policy: dict[str, Any], context: dict[str, Any], *, principal: str = RESPONDER,
           action: str = "sts:AssumeRole") -> Any:
    return evaluate_trust_policy(policy, principal_arn=principal, action=action, context=context)


# -- the template's trust policy -------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["sts:AssumeRole", "sts:TagSession"])
def test_the_trust_policy_allows_the_responder_with_fresh_mfa_and_the_incident_tags(action: str) -> None:
    decision = decide(TRUST, GOOD, action=action)
    assert decision.allowed, decision.reasons
    assert decision.reasons == ("statement FreshMfaAndAnIncidentId (Allow) matches",)


NO_MFA_SESSION = {**GOOD, "aws:MultiFactorAuthPresent": "false"}
del NO_MFA_SESSION["aws:MultiFactorAuthAge"]


@pytest.mark.parametrize(("context", "principal", "why"), [
    (request_context(mfa_age_s=None, tags=GOOD_TAGS), RESPONDER, "aws:MultiFactorAuthPresent"),  # access keys
    (NO_MFA_SESSION, RESPONDER, "aws:MultiFactorAuthPresent"),  # a session made without MFA
    (request_context(mfa_age_s=901, tags=GOOD_TAGS), RESPONDER, "aws:MultiFactorAuthAge"),
    (request_context(mfa_age_s=86_400, tags=GOOD_TAGS), RESPONDER, "aws:MultiFactorAuthAge"),
    (request_context(mfa_age_s=60, tags={"operator": "alice"}), RESPONDER, "aws:RequestTag/incident-id"),
    (request_context(mfa_age_s=60, tags={"incident-id": "INC-4711"}), RESPONDER, "aws:RequestTag/operator"),
    (request_context(mfa_age_s=60, tags={}), RESPONDER, "aws:RequestTag/incident-id"),  # ForAllValues alone: true
    (request_context(mfa_age_s=60, tags={"incident-id": "hotfix", "operator": "alice"}), RESPONDER, "incident-id"),
    (request_context(mfa_age_s=60, tags={**GOOD_TAGS, "team": "payments"}), RESPONDER, "aws:TagKeys"),
    (GOOD, f"arn:aws:iam::{ACCOUNT}:user/mallory", "principal"),
    (GOOD, f"arn:aws:iam::{ACCOUNT}:role/fasterpay-router", "principal"),
], ids=["no-mfa-access-keys", "no-mfa-session", "mfa-901s-old", "mfa-a-day-old", "no-incident-id",
        "no-operator", "no-tags", "malformed-incident-id", "extra-tag-key", "another-user", "another-role"])
def test_the_trust_policy_refuses(context: dict[str, Any], principal: str, why: str) -> None:
    decision = decide(TRUST, context, principal=principal)
    assert not decision.allowed
    assert decision.reasons[-1] == "no Allow statement matches: denied by default"
    assert why in decision.reasons[0], decision.reasons


def test_mfa_exactly_900_seconds_old_is_still_fresh() -> None:
    assert decide(TRUST, request_context(mfa_age_s=900, tags=GOOD_TAGS)).allowed


@settings(max_examples=60, deadline=None)
@given(age=st.integers(min_value=0, max_value=10_000))
def test_a_session_is_allowed_exactly_when_the_mfa_is_at_most_900_seconds_old(age: int) -> None:
    assert decide(TRUST, request_context(mfa_age_s=age, tags=GOOD_TAGS)).allowed is (age <= 900)


def test_trusting_the_account_admits_its_principals_and_no_other_accounts() -> None:
    assert decide(TRUST_ACCOUNT, GOOD, principal=f"arn:aws:iam::{ACCOUNT}:role/incident-responders").allowed
    assert not decide(TRUST_ACCOUNT, GOOD, principal="arn:aws:iam::210987654321:user/alice").allowed
    assert not decide(TRUST_ACCOUNT, request_context(mfa_age_s=None, tags=GOOD_TAGS)).allowed  # MFA still needed


def test_only_assume_role_and_tag_session_are_trusted() -> None:
    assert not decide(TRUST, GOOD, action="sts:AssumeRoleWithWebIdentity").allowed
    assert not decide(TRUST, GOOD, action="sts:SetSourceIdentity").allowed


# -- the evaluator's own rules ---------------------------------------------------------------------------
def test_an_explicit_deny_wins_over_the_allow() -> None:
    policy = copy.deepcopy(TRUST)
    policy["Statement"].append({"Sid": "NotDuringTheFreeze", "Effect": "Deny", "Principal": {"AWS": "*"},
                                "Action": "sts:*", "Condition": {"StringLike": {"aws:RequestTag/operator": "mal*"}}})
    assert decide(policy, GOOD).allowed
    denied = decide(policy, request_context(mfa_age_s=60, tags={**GOOD_TAGS, "operator": "mallory"}))
    assert not denied.allowed
    assert "statement FreshMfaAndAnIncidentId (Allow) matches" in denied.reasons
    assert "statement NotDuringTheFreeze (Deny) matches" in denied.reasons


def test_nothing_is_allowed_by_default() -> None:
    decision = decide({"Version": "2012-10-17", "Statement": []}, GOOD)
    assert not decision.allowed and decision.reasons == ("no Allow statement matches: denied by default",)


@pytest.mark.parametrize("operator", ["BoolIfExists", "DateLessThan", "ForAnyValue:StringEquals", "StringEqualsX"])
def test_an_unknown_operator_raises_and_never_allows(operator: str) -> None:
    policy = copy.deepcopy(TRUST)
    policy["Statement"][0]["Condition"][operator] = {"aws:MultiFactorAuthPresent": "true"}
    with pytest.raises(UnsupportedPolicyError, match=operator):
        decide(policy, GOOD)
    with pytest.raises(UnsupportedPolicyError):  # even where the statement would not apply to the caller
        decide(policy, GOOD, principal="arn:aws:iam::210987654321:user/eve")


@pytest.mark.parametrize("element", ["NotAction", "NotPrincipal"])
def test_elements_the_evaluator_does_not_implement_raise(element: str) -> None:
    policy = copy.deepcopy(TRUST)
    policy["Statement"][0][element] = "sts:GetCallerIdentity"
    with pytest.raises(UnsupportedPolicyError, match=element):
        decide(policy, GOOD)


@pytest.mark.parametrize(("condition", "context", "holds"), [
    ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, {"aws:multifactorauthpresent": True}, True),  # keys: any case
    ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, {"aws:MultiFactorAuthPresent": "false"}, False),
    ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, {}, False),
    ({"Null": {"aws:RequestTag/incident-id": "true"}}, {}, True),
    ({"Null": {"aws:RequestTag/incident-id": "false"}}, {}, False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {}, True),  # the empty set: vacuously true
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["b"]}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["b", "c"]}, False),
    ({"StringEquals": {"aws:RequestTag/operator": ["alice", "bob"]}}, {"aws:RequestTag/operator": "bob"}, True),
    ({"StringEquals": {"aws:RequestTag/operator": "alice"}}, {"aws:RequestTag/operator": "Alice"}, False),
    ({"StringLike": {"aws:RequestTag/incident-id": "INC-?"}}, {"aws:RequestTag/incident-id": "INC-7"}, True),
    ({"StringLike": {"aws:RequestTag/incident-id": "INC-?"}}, {"aws:RequestTag/incident-id": "INC-77"}, False),
    ({"StringLike": {"aws:RequestTag/incident-id": "INC-[0-9]"}}, {"aws:RequestTag/incident-id": "INC-7"}, False),
    ({"NumericLessThanEquals": {"aws:MultiFactorAuthAge": "900"}}, {"aws:MultiFactorAuthAge": "899.5"}, True),
    ({"NumericLessThanEquals": {"aws:MultiFactorAuthAge": "900"}}, {}, False),
])
def test_each_operator_holds_as_iam_defines_it(condition: dict[str, Any], context: dict[str, Any],
                                               holds: bool) -> None:
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": RESPONDER}, "Action": "sts:AssumeRole",
                             "Condition": condition}]}
    assert decide(policy, context).allowed is holds


# -- assume_break_glass ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_sts() -> Iterator[tuple[AwsEnvironment, str]]:
    with open_environment("moto", region=REGION) as env:
        role = env.client("iam").create_role(
            RoleName="fasterpay-break-glass", AssumeRolePolicyDocument=json.dumps(TRUST),
            MaxSessionDuration=3600)["Role"]
        yield env, role["Arn"]


GOOD_REQUEST = {"mfa_serial": f"arn:aws:iam::{ACCOUNT}:mfa/alice", "token_code": "123456",
                "incident_id": "INC-4711", "operator": "alice"}


@pytest.mark.parametrize(("change", "advice"), [
    ({"mfa_serial": ""}, "MFA device"),
    ({"mfa_serial": "alice"}, "MFA device"),
    ({"token_code": ""}, "6-digit code"),
    ({"token_code": "12345"}, "6-digit code"),
    ({"token_code": "12345a"}, "6-digit code"),
    ({"incident_id": ""}, "open an incident first"),
    ({"incident_id": "hotfix"}, "open an incident first"),
    ({"incident_id": "INC-"}, "open an incident first"),
    ({"incident_id": "INC-1 OR 1=1"}, "open an incident first"),
    ({"operator": ""}, "your user name"),
    ({"operator": "alice smith"}, "your user name"),
    ({"duration_s": 899}, "900 to 3600 seconds"),
    ({"duration_s": 3601}, "900 to 3600 seconds"),
    ({"role_arn": "fasterpay-break-glass"}, "BreakGlassRoleArn"),
])
def test_a_bad_request_is_refused_before_any_aws_call(change: dict[str, Any], advice: str,
                                                      moto_sts: tuple[AwsEnvironment, str]) -> None:
    env, role_arn = moto_sts
    meter = ApiCallMeter()
    sts = meter.attach(env.client("sts"))
    request = {"role_arn": role_arn, **GOOD_REQUEST, **change}
    with pytest.raises(BreakGlassRefusedError, match=advice):
        assume_break_glass(sts, request.pop("role_arn"), **request)
    assert meter.count() == 0


def test_on_moto_a_good_request_returns_credentials_and_the_session_names_the_incident(
        moto_sts: tuple[AwsEnvironment, str]) -> None:
    env, role_arn = moto_sts
    meter = ApiCallMeter()
    sts = meter.attach(env.client("sts"))
    sent: dict[str, Any] = {}
    sts.meta.events.register("provide-client-params.sts.AssumeRole", lambda params, **_: sent.update(params))
    credentials = assume_break_glass(sts, role_arn, **GOOD_REQUEST)
    assert meter.count(service="sts", operation="AssumeRole") == 1 and meter.count() == 1
    assert {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"} <= set(credentials)
    assert credentials["AssumedRoleArn"] == (f"arn:aws:sts::{ACCOUNT}:assumed-role/fasterpay-break-glass/"
                                             "break-glass-INC-4711-alice")
    assert credentials["Expiration"] - datetime.now(timezone.utc) <= timedelta(seconds=900)
    assert (sent["SerialNumber"], sent["TokenCode"], sent["DurationSeconds"]) == (
        GOOD_REQUEST["mfa_serial"], "123456", 900)
    assert sent["Tags"] == [{"Key": "incident-id", "Value": "INC-4711"}, {"Key": "operator", "Value": "alice"}]
    assert sent["TransitiveTagKeys"] == ["incident-id", "operator"]
    # what the helper sends is what the trust policy asks for (MFA age: the code was just used)
    sent_tags = {tag["Key"]: tag["Value"] for tag in sent["Tags"]}
    assert decide(TRUST, request_context(mfa_age_s=0, tags=sent_tags)).allowed


def test_the_modules_examples_run() -> None:
    import doctest

    import fasterpay.security.breakglass as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 5
