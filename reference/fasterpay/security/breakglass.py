"""Break-glass access: ask for the approved admin role with fresh MFA and an incident id, and check a trust
policy's conditions without AWS.

* :func:`assume_break_glass` refuses before any AWS call when the MFA device, the MFA code, the incident id
  or the operator is missing or malformed (:class:`BreakGlassRefusedError` says what to fix), and otherwise
  calls ``sts.assume_role`` with the MFA code and the session tags ``incident-id`` and ``operator``, which
  then appear on every CloudTrail event of the session.
* :func:`evaluate_trust_policy` evaluates the ``Allow``/``Deny`` statements of a role trust policy for one
  request, for the condition operators the security template uses. It exists because moto ignores IAM
  condition keys (DESIGN.md section 6): on moto a role that requires MFA is assumed without it, so the guide
  shows the MFA requirement refusing a session by evaluating the deployed trust policy itself. It is not
  IAM: it covers one policy, the operators listed in :data:`SUPPORTED_OPERATORS`, and raises
  :class:`UnsupportedPolicyError` on anything else rather than guess.
* :func:`request_context` builds the condition keys AWS would present for an ``AssumeRole`` request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "INCIDENT_ID_PATTERN",
    "SUPPORTED_OPERATORS",
    "BreakGlassRefusedError",
    "TrustDecision",
    "UnsupportedPolicyError",
    "assume_break_glass",
    "evaluate_trust_policy",
    "request_context",
]

#: The form of an incident id: the ticket system's key, ``INC-`` and up to ten digits. The trust policy
#: checks the prefix (``StringLike INC-*``); the helper checks the whole form before calling AWS.
INCIDENT_ID_PATTERN = re.compile(r"INC-[0-9]{1,10}")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}")
_MFA_SERIAL = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:(mfa|u2f)/[\w+=,.@/-]{1,512}|[A-Z0-9]{9,256}")
_TOKEN_CODE = re.compile(r"[0-9]{6}")
_OPERATOR = re.compile(r"[\w.@+=-]{1,64}")
_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")
_SESSION_TAGS = ("incident-id", "operator")
_MIN_DURATION_S, _MAX_DURATION_S = 900, 3600  # STS's minimum; the role's MaxSessionDuration


class BreakGlassRefusedError(Exception):
    """The break-glass request was refused before it reached AWS; the message says what to supply."""


class UnsupportedPolicyError(ValueError):
    """The policy uses an element or condition operator the evaluator does not implement.

    The evaluator never guesses: extend :func:`evaluate_trust_policy` (and its tests) for the operator, or
    check the policy with the IAM policy simulator on a real account.
    """


@dataclass(frozen=True)
class TrustDecision:
    """The outcome of :func:`evaluate_trust_policy`: ``allowed``, and one reason per statement considered."""

    allowed: bool
    reasons: tuple[str, ...]

    def __bool__(self) -> bool:
        return self.allowed


def assume_break_glass(sts: Any, role_arn: str, *, mfa_serial: str, token_code: str, incident_id: str,
                       operator: str, duration_s: int = 900) -> dict[str, Any]:
    """Assume the break-glass role with an MFA code and the incident's session tags.

    Everything is checked before the call, so a malformed request never reaches STS (nor CloudTrail as a
    failed attempt that looks like an attack). The session tags are transitive: a role assumed from this
    session carries the same incident id.

    Returns the temporary credentials (``AccessKeyId``, ``SecretAccessKey``, ``SessionToken``,
    ``Expiration``) and ``AssumedRoleArn``, which ends with the session name ``break-glass-<incident id>-
    <operator>``.

    Raises:
        BreakGlassRefusedError: the role ARN, MFA device, MFA code, incident id, operator or duration is
            missing or malformed.

    Examples:
        >>> assume_break_glass(None, "arn:aws:iam::123456789012:role/fasterpay-break-glass",
        ...                    mfa_serial="arn:aws:iam::123456789012:mfa/alice", token_code="",
        ...                    incident_id="INC-4711", operator="alice")
        Traceback (most recent call last):
        ...
        fasterpay.security.breakglass.BreakGlassRefusedError: no valid MFA code: pass the 6-digit code your MFA device shows now
    """
    _refuse_unless(bool(_ROLE_ARN.fullmatch(role_arn or "")),
                   f"{role_arn!r} is not an IAM role ARN: pass the BreakGlassRoleArn output of the security stack")
    _refuse_unless(bool(_MFA_SERIAL.fullmatch(mfa_serial or "")),
                   "no valid MFA device: pass the ARN of your virtual MFA device (arn:aws:iam::<account>:mfa/<name>)"
                   " or your hardware token's serial number")
    _refuse_unless(bool(_TOKEN_CODE.fullmatch(token_code or "")),
                   "no valid MFA code: pass the 6-digit code your MFA device shows now")
    _refuse_unless(bool(INCIDENT_ID_PATTERN.fullmatch(incident_id or "")),
                   f"{incident_id!r} is not an incident id: open an incident first and pass its id (INC-<digits>)")
    _refuse_unless(bool(_OPERATOR.fullmatch(operator or "")),
                   f"{operator!r} is not an operator name: pass your user name (letters, digits, . @ + = - _)")
    _refuse_unless(_MIN_DURATION_S <= duration_s <= _MAX_DURATION_S,
                   f"duration_s={duration_s}: ask for {_MIN_DURATION_S} to {_MAX_DURATION_S} seconds, and again "
                   "with a new MFA code to go on")
    session_name = _SESSION_NAME_UNSAFE.sub("-", f"break-glass-{incident_id}-{operator}")[:64]
    response = sts.assume_role(
        RoleArn=role_arn,
        RoleSessionName=session_name,
        DurationSeconds=duration_s,
        SerialNumber=mfa_serial,
        TokenCode=token_code,
        Tags=[{"Key": "incident-id", "Value": incident_id}, {"Key": "operator", "Value": operator}],
        TransitiveTagKeys=list(_SESSION_TAGS),
    )
    credentials = dict(response["Credentials"])
    credentials["AssumedRoleArn"] = response["AssumedRoleUser"]["Arn"]
    return credentials


def _refuse_unless(valid: bool, message: str) -> None:
    if not valid:
        raise BreakGlassRefusedError(message)


def request_context(*, mfa_age_s: int | None, tags: Mapping[str, str]) -> dict[str, Any]:
    """The condition keys of an ``AssumeRole`` request: MFA presence and age, and the session tags.

    ``mfa_age_s=None`` is a request signed with long-term access keys and no MFA code: AWS then presents
    neither MFA key (a session made without MFA would present ``aws:MultiFactorAuthPresent`` ``false``;
    both fail ``Bool: true``). Without tags, ``aws:TagKeys`` is absent too.

    Examples:
        >>> request_context(mfa_age_s=60, tags={"incident-id": "INC-1", "operator": "alice"})  # doctest: +NORMALIZE_WHITESPACE
        {'aws:MultiFactorAuthPresent': 'true', 'aws:MultiFactorAuthAge': '60',
         'aws:TagKeys': ['incident-id', 'operator'],
         'aws:RequestTag/incident-id': 'INC-1', 'aws:RequestTag/operator': 'alice'}
        >>> request_context(mfa_age_s=None, tags={})
        {}
    """
    context: dict[str, Any] = {}
    if mfa_age_s is not None:
        context["aws:MultiFactorAuthPresent"] = "true"
        context["aws:MultiFactorAuthAge"] = str(mfa_age_s)
    if tags:
        context["aws:TagKeys"] = list(tags)
        context.update({f"aws:RequestTag/{key}": value for key, value in tags.items()})
    return context


# -- the evaluator ---------------------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _single(key: str, values: list[str], operator: str) -> str:
    if len(values) != 1:
        raise UnsupportedPolicyError(f"{operator} on {key}, which has {len(values)} values: use ForAllValues or "
                                     "ForAnyValue for a multivalued key")
    return values[0]


def _number(value: str, where: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation as error:
        raise UnsupportedPolicyError(f"{where}: {value!r} is not a number") from error


def _like(pattern: str, value: str) -> bool:
    """StringLike: ``*`` any run of characters, ``?`` one character, case-sensitive, whole value."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _key_holds(operator: str, key: str, expected: list[str], present: list[str] | None) -> bool:
    """One condition key under one operator: the values of a key are ORed; a missing key fails, except
    under ``Null`` (which tests for it) and ``ForAllValues`` (which holds on an empty set)."""
    if operator == "Null":
        wanted_absent = _single(key, expected, operator).lower()
        if wanted_absent not in ("true", "false"):
            raise UnsupportedPolicyError(f"Null on {key} takes 'true' or 'false', not {wanted_absent!r}")
        return (present is None) == (wanted_absent == "true")
    if operator == "ForAllValues:StringEquals":
        return all(value in expected for value in present or [])
    if present is None:
        return False
    actual = _single(key, present, operator)
    if operator == "Bool":
        return actual.lower() in {value.lower() for value in expected}
    if operator == "StringEquals":
        return actual in expected
    if operator == "StringLike":
        return any(_like(pattern, actual) for pattern in expected)
    if operator == "NumericLessThanEquals":
        number = _number(actual, key)
        return any(number <= _number(value, f"{operator} {key}") for value in expected)
    raise UnsupportedPolicyError(f"condition operator {operator!r}")  # pragma: no cover - checked first


#: The condition operators :func:`evaluate_trust_policy` implements; any other raises.
SUPPORTED_OPERATORS = frozenset({"Bool", "NumericLessThanEquals", "Null", "StringEquals",
                                 "ForAllValues:StringEquals", "StringLike"})


def _check_operators(conditions: Mapping[str, Any]) -> None:
    for operator in conditions:
        if operator not in SUPPORTED_OPERATORS:
            raise UnsupportedPolicyError(f"condition operator {operator!r} is not implemented; supported: "
                                         f"{', '.join(sorted(SUPPORTED_OPERATORS))}")


def _conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, Any]) -> tuple[bool, str]:
    """All operators, and all keys within each, must hold (AND); returns the first that does not."""
    _check_operators(conditions)
    lowered = {key.lower(): value for key, value in context.items()}  # condition key names ignore case
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            raw = lowered.get(key.lower())
            present = None if raw is None else [_text(v) for v in _as_list(raw)]
            if not _key_holds(operator, key, [_text(v) for v in _as_list(expected)], present):
                return False, f"{operator} {key} (expected {expected!r}, request has {raw!r})"
    return True, ""


def _principal_matches(principal: Any, principal_arn: str) -> bool:
    """``"*"``; an exact ARN; or an account (its root ARN or its id), which trusts every principal in it."""
    if principal == "*":
        return True
    if not isinstance(principal, Mapping) or set(principal) - {"AWS"}:
        raise UnsupportedPolicyError(f"principal {principal!r}: only AWS principals are implemented")
    caller_account = principal_arn.split(":")[4] if principal_arn.count(":") >= 5 else ""
    for trusted in _as_list(principal["AWS"]):
        if trusted in ("*", principal_arn):
            return True
        root = re.fullmatch(r"arn:aws[a-z-]*:iam::([0-9]{12}):root|([0-9]{12})", trusted)
        if root and caller_account in root.groups():
            return True
    return False


def _action_matches(actions: Any, action: str) -> bool:
    return any(_like(pattern.lower(), action.lower()) for pattern in _as_list(actions))


def evaluate_trust_policy(policy: Mapping[str, Any], *, principal_arn: str, action: str,
                          context: Mapping[str, Any]) -> TrustDecision:
    """Would this trust policy let ``principal_arn`` perform ``action`` (e.g. ``sts:AssumeRole``) with the
    condition keys in ``context``?

    The rules are IAM's for one policy: a request is denied unless an ``Allow`` statement matches its
    principal, action and every condition; a matching ``Deny`` wins over any ``Allow``. Conditions: all
    operators and all keys must hold, any of a key's values may match; keys are matched ignoring case.
    ``NotAction``, ``NotPrincipal``, non-AWS principals and operators outside :data:`SUPPORTED_OPERATORS`
    (``...IfExists`` and ``ForAnyValue`` included) raise :class:`UnsupportedPolicyError`.

    Why it exists: moto ignores IAM condition keys (DESIGN.md section 6), so on moto a role that requires
    MFA is assumed without it. The guide evaluates the deployed trust policy itself to show the MFA and
    session-tag requirements refusing a session; on AWS, IAM enforces the same policy.

    Examples:
        >>> policy = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
        ...     "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        ...     "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}
        >>> alice = "arn:aws:iam::123456789012:user/alice"
        >>> evaluate_trust_policy(policy, principal_arn=alice, action="sts:AssumeRole",
        ...                       context=request_context(mfa_age_s=None, tags={})).allowed
        False
        >>> decision = evaluate_trust_policy(policy, principal_arn=alice, action="sts:AssumeRole",
        ...                                  context=request_context(mfa_age_s=30, tags={}))
        >>> decision.allowed, decision.reasons
        (True, ('statement 0 (Allow) matches',))
    """
    statements = list(_statements(policy))
    for statement in statements:  # an unknown operator raises even in a statement that would not apply
        _check_operators(statement.get("Condition", {}))
    allowed, denied, reasons = False, False, []
    for index, statement in enumerate(statements):
        label = f"statement {statement.get('Sid', index)} ({statement.get('Effect')})"
        for element in ("NotAction", "NotPrincipal", "NotResource"):
            if element in statement:
                raise UnsupportedPolicyError(f"{label}: {element} is not implemented")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise UnsupportedPolicyError(f"{label}: Effect must be Allow or Deny")
        if not _principal_matches(statement.get("Principal"), principal_arn):
            reasons.append(f"{label} does not apply: principal {principal_arn} is not trusted")
            continue
        if not _action_matches(statement.get("Action", []), action):
            reasons.append(f"{label} does not apply: action {action}")
            continue
        holds, failed = _conditions_hold(statement.get("Condition", {}), context)
        if not holds:
            reasons.append(f"{label} does not apply: condition {failed}")
            continue
        reasons.append(f"{label} matches")
        if statement["Effect"] == "Deny":
            denied = True
        else:
            allowed = True
    if not allowed and not denied:
        reasons.append("no Allow statement matches: denied by default")
    return TrustDecision(allowed=allowed and not denied, reasons=tuple(reasons))


def _statements(policy: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    statements: Sequence[Any] = _as_list(policy.get("Statement", []))
    for statement in statements:
        if not isinstance(statement, Mapping):
            raise UnsupportedPolicyError(f"statement {statement!r} is not an object (is the template resolved?)")
        yield statement
