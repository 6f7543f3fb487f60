"""A routing agent for the exceptions the rules cannot decide: Bedrock Converse, a schema, an allow-list, an audit.

When routing finds no rail, a creditor agent is malformed, or a sanctions score lands just under the
threshold, :class:`RoutingAgent` asks a model for a proposal and then trusts nothing it says:

1. **Prompt** (:mod:`.prompts`): tokens, codes, minor units and the scanned remittance text only; a
   prompt in which the guard still finds personal data is never sent (``prompt_refused``).
2. **Budget**: :class:`InvocationBudget`, token buckets on calls and on tokens per window, so a flood of
   exceptions (or an attacker who can cause them) cannot run up the bill (``over_budget``).
3. **Call**: ``bedrock-runtime`` ``Converse`` with one tool, ``decide``, forced by ``toolChoice``,
   ``temperature`` 0, a small ``maxTokens``, optionally a guardrail (``guardrailConfig`` with trace). The
   client is passed in; its botocore ``Config`` sets ``read_timeout`` and the agent also checks the
   elapsed time against its own deadline.
4. **Validation**: exactly one ``toolUse`` named ``decide``; its input against :data:`~.prompts.DECISION_SCHEMA`
   (JSON Schema Draft 2020-12, no additional properties); then the allow-list: ``route`` only to a rail
   that a rule of the routing table would use for this creditor agent, currency and amount; ``reject``
   only with a reason code allowed for the case's kind; ``hold`` always. A corrected BIC is only ever a
   *suggestion* on a ``hold``: a human applies it (a model that could apply it could send money to a bank
   an attacker named in the remittance text).
5. **Fallback**: anything else is the rules engine's safe default, ``hold`` for review, with one reason
   from :data:`FALLBACK_REASONS`. Whatever the model returns, the decision is in the allow-list.
6. **Audit**: every decision, model or fallback, is appended to the tamper-evident
   :class:`~fasterpay.audit.AuditTrail` as ``agent.decision``, by reference: the prompt's SHA-256, model id
   and version, action and rail or reason, latency, fallback reason, guardrail result, tokens, the rule
   context's SHA-256 and where the encrypted prompt is stored (:class:`KmsPromptStore`: one
   ``kms:GenerateDataKey`` under the encryption context ``{"purpose": "agent-prompt", "case": <case id>}``,
   AES-256-GCM, the item in DynamoDB). Decrypting under another context fails.

AWS mapping: Amazon Bedrock Runtime (Converse, with an Amazon Bedrock Guardrail), AWS KMS, Amazon DynamoDB,
the audit trail's S3 bucket. IAM for the agent's role: ``cloudformation/agents.yaml``. Amazon Bedrock
Guardrails do not evaluate tool definitions or the ``toolUse`` input the model generates
(https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-use-converse-api.html): the guardrail
screens the prompt, our validation screens the answer.

Reject codes (:mod:`fasterpay.iso20022.codes`): ``AB08`` (creditor agent not reachable, what the rules
report for an unroutable payment), ``AC01`` (account identifier invalid), ``AG01`` (transaction forbidden
on this account), ``RC01`` (BIC incorrect, for a malformed creditor agent). A sanctions near-miss is never
rejected by a model: that is a compliance decision, so the model may only release it on the rail the
rules chose, or hold it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jsonschema import Draft202012Validator

from ..audit import AuditEntry, AuditTrail
from ..observability.redaction import PersonalValueRegistry, personal_value_registry
from .prompts import (
    _BIC_RE,
    DECISION_SCHEMA,
    ExceptionCase,
    PromptRefusedError,
    RuleContext,
    build_converse_request,
    prompt_bytes,
    prompt_sha256,
)

__all__ = [
    "ALLOWED_ACTIONS",
    "ALLOWED_REASON_CODES",
    "DEFAULT_MODEL_ID",
    "FALLBACK_REASONS",
    "AgentDecision",
    "AgentError",
    "AnswerRejectedError",
    "DynamoDbPromptStore",
    "GuardrailSettings",
    "InMemoryPromptStore",
    "InvocationBudget",
    "KmsPromptStore",
    "PromptStore",
    "RoutingAgent",
    "validate_tool_answer",
]

logger = logging.getLogger(__name__)

#: A small, fast model (Amazon Nova Micro, in-Region model id). Pass another with ``model_id``.
DEFAULT_MODEL_ID = "amazon.nova-micro-v1:0"
#: Why a decision fell back to ``hold``: a fixed set, audited and counted.
FALLBACK_REASONS = ("invalid_json", "schema_violation", "not_allowed", "spoofed_tool", "no_tool_use", "timeout",
                    "throttled", "model_error", "guardrail_intervened", "prompt_refused", "over_budget")
#: Actions the model may propose, per case kind.
ALLOWED_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "unroutable": ("route", "hold", "reject"),
    "repair_agent": ("route", "hold", "reject"),
    "sanctions_near_miss": ("route", "hold"),
}
#: ISO 20022 reason codes a ``reject`` may carry, per case kind (see the module docstring).
ALLOWED_REASON_CODES: Mapping[str, tuple[str, ...]] = {
    "unroutable": ("AB08", "AC01", "AG01"),
    "repair_agent": ("RC01", "AC01"),
    "sanctions_near_miss": (),
}
_VALIDATOR = Draft202012Validator(DECISION_SCHEMA)
_PROMPT_PURPOSE = "agent-prompt"


class AgentError(RuntimeError):
    """The agent could not record a decision (the audit append or the prompt store failed): retry the case."""


@dataclass(frozen=True)
class GuardrailSettings:
    """The guardrail every call carries (the agent role's IAM policy refuses calls without it)."""

    identifier: str
    version: str
    trace: str = "enabled"

    def as_config(self) -> dict[str, str]:
        """The Converse ``guardrailConfig``."""
        return {"guardrailIdentifier": self.identifier, "guardrailVersion": self.version, "trace": self.trace}


@dataclass(frozen=True)
class AgentDecision:
    """What the agent decided for a case, and where it came from; always in the allow-list.

    ``source`` is ``model`` or ``fallback``; a fallback is always ``hold`` with a ``fallback_reason``.
    """

    case_id: str
    action: str
    source: str
    rail: str | None = None
    reason_code: str | None = None
    suggested_creditor_agent: str | None = None
    rationale_code: str = "insufficient_information"
    fallback_reason: str | None = None
    guardrail: str = "none"
    prompt_sha256: str = "none"
    prompt_ref: str = "none"
    model_id: str = DEFAULT_MODEL_ID
    latency_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    audit_seq: int = -1

    @property
    def detail(self) -> str:
        """``rail=…``, ``reason=…``, ``suggest=…`` or ``none``: the audit's one-word detail."""
        if self.rail:
            return f"rail={self.rail}"
        if self.reason_code:
            return f"reason={self.reason_code}"
        if self.suggested_creditor_agent:
            return f"suggest={self.suggested_creditor_agent}"
        return "none"


# -- budget ------------------------------------------------------------------------------------------------
class InvocationBudget:
    """Token buckets on model calls and on model tokens per window: denial-of-wallet protection.

    Each bucket holds at most its per-window allowance and refills continuously. :meth:`try_acquire` takes
    one call and the estimated tokens (prompt estimate plus ``maxTokens``) before a call, or refuses;
    :meth:`settle` returns or takes the difference once the response's ``usage`` is known. Thread-safe.

    Examples:
        >>> budget = InvocationBudget(calls_per_window=2, tokens_per_window=10_000, window_seconds=60,
        ...                           clock=lambda: 0.0)
        >>> [budget.try_acquire(100) for _ in range(3)]
        [True, True, False]
    """

    def __init__(self, *, calls_per_window: int, tokens_per_window: int, window_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if calls_per_window < 1 or tokens_per_window < 1 or window_seconds <= 0:
            raise ValueError("budgets must be positive: at least one call and one token per window")
        self.calls_per_window = calls_per_window
        self.tokens_per_window = tokens_per_window
        self.window_seconds = window_seconds
        self._clock = clock
        self._calls = float(calls_per_window)
        self._tokens = float(tokens_per_window)
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed, self._at = max(0.0, now - self._at), now
        self._calls = min(self.calls_per_window, self._calls + elapsed * self.calls_per_window / self.window_seconds)
        self._tokens = min(self.tokens_per_window,
                           self._tokens + elapsed * self.tokens_per_window / self.window_seconds)

    def try_acquire(self, estimated_tokens: int) -> bool:
        """Take one call and ``estimated_tokens``; False (and nothing taken) if either bucket is short."""
        with self._lock:
            self._refill()
            if self._calls < 1 or self._tokens < estimated_tokens:
                return False
            self._calls -= 1
            self._tokens -= estimated_tokens
            return True

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the token bucket by what the call really used."""
        with self._lock:
            self._tokens = min(self.tokens_per_window, self._tokens + estimated_tokens - actual_tokens)


# -- the encrypted prompt store ----------------------------------------------------------------------------
class PromptStore(Protocol):
    """Where encrypted prompts go: ``put`` stores bytes under a key once, ``get`` reads them back.

    A key names its prompt's SHA-256, so a second ``put`` of a key (a case decided again after a crash or a
    redelivery) carries the same prompt: it must leave the first blob in place and succeed.
    """

    def put(self, key: str, blob: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...


class InMemoryPromptStore:
    """A dict, for tests and the notebook."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def put(self, key: str, blob: bytes) -> None:
        self.items.setdefault(key, bytes(blob))  # written once: the first blob stands

    def get(self, key: str) -> bytes:
        return self.items[key]


class DynamoDbPromptStore:
    """One item per prompt (``prompt_ref`` key, ``blob`` binary) in a table keyed on ``prompt_ref``.

    DynamoDB rather than S3: a tokenised prompt is 1-4 KB, written once and read only in an
    investigation; one ``PutItem`` is the cheapest durable write for that size, and TTL can expire them.
    """

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = dynamodb
        self.table_name = table_name

    def put(self, key: str, blob: bytes) -> None:
        try:
            self._ddb.put_item(TableName=self.table_name, Item={"prompt_ref": {"S": key}, "blob": {"B": blob}},
                               ConditionExpression="attribute_not_exists(prompt_ref)")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # written before under this key, which names the prompt's SHA-256: the same prompt, kept as it was

    def get(self, key: str) -> bytes:
        item = self._ddb.get_item(TableName=self.table_name, Key={"prompt_ref": {"S": key}},
                                  ConsistentRead=True).get("Item")
        if item is None:
            raise KeyError(key)
        return bytes(item["blob"]["B"])


class KmsPromptStore:
    """Tokenised prompts sealed with a KMS data key under ``{"purpose": "agent-prompt", "case": <case id>}``.

    One ``GenerateDataKey`` per prompt (a prompt may exceed ``kms:Encrypt``'s 4 KB); AES-256-GCM with the
    encryption context as associated data; the encrypted data key is stored beside the ciphertext. To read
    a prompt back, KMS must be given the same context: a prompt copied to another case does not open.

    Examples:
        >>> store = KmsPromptStore(kms, key_id, InMemoryPromptStore())  # doctest: +SKIP
        >>> ref = store.seal(b'{"messages": []}', case_id="case-1", digest="ab" * 32)  # doctest: +SKIP
        >>> store.open(ref, case_id="case-1")  # doctest: +SKIP
        b'{"messages": []}'
    """

    def __init__(self, kms: Any, key_id: str, store: PromptStore) -> None:
        self._kms = kms
        self.key_id = key_id
        self.store = store

    @staticmethod
    def encryption_context(case_id: str) -> dict[str, str]:
        """The KMS encryption context of a case's prompt."""
        return {"purpose": _PROMPT_PURPOSE, "case": case_id}

    def seal(self, plaintext: bytes, *, case_id: str, digest: str) -> str:
        """Encrypt and store ``plaintext``; returns its reference ``agent-prompts/<case>/<sha256>``."""
        context = self.encryption_context(case_id)
        key = self._kms.generate_data_key(KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=context)
        nonce = os.urandom(12)
        aad = json.dumps(context, sort_keys=True).encode()
        sealed = AESGCM(key["Plaintext"]).encrypt(nonce, plaintext, aad)
        blob = json.dumps({"v": 1, "edk": base64.b64encode(key["CiphertextBlob"]).decode(),
                           "nonce": base64.b64encode(nonce).decode(), "ct": base64.b64encode(sealed).decode()},
                          sort_keys=True).encode()
        ref = f"agent-prompts/{case_id}/{digest}"
        self.store.put(ref, blob)
        return ref

    def open(self, ref: str, *, case_id: str, context: Mapping[str, str] | None = None) -> bytes:
        """Decrypt a stored prompt; KMS refuses (``InvalidCiphertextException``) under any other context."""
        context = dict(context) if context is not None else self.encryption_context(case_id)
        blob = json.loads(self.store.get(ref))
        key = self._kms.decrypt(CiphertextBlob=base64.b64decode(blob["edk"]), EncryptionContext=context)
        aad = json.dumps(context, sort_keys=True).encode()
        return AESGCM(key["Plaintext"]).decrypt(base64.b64decode(blob["nonce"]), base64.b64decode(blob["ct"]), aad)


# -- validation --------------------------------------------------------------------------------------------
class AnswerRejectedError(ValueError):
    """A model answer is not usable; ``reason`` is one of :data:`FALLBACK_REASONS`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def validate_tool_answer(response: Mapping[str, Any], case: ExceptionCase, context: RuleContext) -> dict[str, Any]:
    """The decision in a Converse response, checked; raises :class:`AnswerRejectedError` naming why not.

    Checks, in order: stop reason (``guardrail_intervened``), exactly one ``toolUse`` named ``decide``
    (none: ``no_tool_use``; another name or two: ``spoofed_tool``), its input is a JSON object
    (``invalid_json``), it matches the schema (``schema_violation``), and the allow-list for the case
    (``not_allowed``).
    """
    if response.get("stopReason") == "guardrail_intervened":
        raise AnswerRejectedError("guardrail_intervened")
    content = (((response.get("output") or {}).get("message") or {}).get("content")) or []
    if not isinstance(content, list):
        raise AnswerRejectedError("no_tool_use")
    uses = [block["toolUse"] for block in content if isinstance(block, Mapping) and "toolUse" in block]
    if not uses:
        raise AnswerRejectedError("invalid_json" if response.get("stopReason") in ("malformed_tool_use", "max_tokens")
                        else "no_tool_use")
    if len(uses) != 1 or not isinstance(uses[0], Mapping) or uses[0].get("name") != "decide":
        raise AnswerRejectedError("spoofed_tool")
    if response.get("stopReason") in ("malformed_tool_use", "max_tokens", "malformed_model_output"):
        raise AnswerRejectedError("invalid_json")
    answer = uses[0].get("input")
    if isinstance(answer, (str, bytes)):
        try:
            answer = json.loads(answer)
        except (ValueError, RecursionError):
            raise AnswerRejectedError("invalid_json") from None
    if not isinstance(answer, dict):
        raise AnswerRejectedError("invalid_json" if answer is None else "schema_violation")
    if not _VALIDATOR.is_valid(answer):
        raise AnswerRejectedError("schema_violation")
    _check_allowed(answer, case, context)
    return answer


def _check_allowed(answer: Mapping[str, Any], case: ExceptionCase, context: RuleContext) -> None:
    action = answer["action"]
    if action not in ALLOWED_ACTIONS[case.kind]:
        raise AnswerRejectedError("not_allowed")
    if action == "route":
        reachable = context.reachable_rails(case.creditor_agent, case.currency, case.amount_minor)
        if answer["rail"] not in reachable:
            raise AnswerRejectedError("not_allowed")
    elif action == "reject":
        if answer["reason_code"] not in ALLOWED_REASON_CODES[case.kind]:
            raise AnswerRejectedError("not_allowed")
    else:
        suggestion = answer.get("suggested_creditor_agent")
        if suggestion is not None and (case.kind != "repair_agent" or not _BIC_RE.fullmatch(suggestion)
                                       or suggestion == case.creditor_agent):
            raise AnswerRejectedError("not_allowed")


# -- the agent ---------------------------------------------------------------------------------------------
def _model_version(model_id: str) -> str:
    tail = model_id.rsplit("-", 1)[-1]
    return tail if tail.startswith("v") else "unversioned"


def _estimate_tokens(text_bytes: int) -> int:
    """Approximation: about 4 bytes of prompt per token (used only to reserve budget before a call)."""
    return text_bytes // 4 + 1


class RoutingAgent:
    """Ask a model about an :class:`~.prompts.ExceptionCase`; return a checked, audited :class:`AgentDecision`.

    ``bedrock`` is a ``bedrock-runtime`` client made by the caller (its botocore ``Config`` sets
    ``read_timeout`` and retries; on a real account only through :mod:`fasterpay.aws`'s opt-in). ``prompts``
    seals each prompt; ``audit`` records each decision; ``tokenize(value, kind)`` turns personal values found
    in remittance text into vault tokens (without it they are removed).

    Examples:
        >>> agent = RoutingAgent(bedrock=client, rule_context=RuleContext.from_rules(rules),  # doctest: +SKIP
        ...                      prompts=KmsPromptStore(kms, key_id, InMemoryPromptStore()), audit=trail)
        >>> agent.decide(case).action  # doctest: +SKIP
        'hold'
    """

    def __init__(
        self,
        *,
        bedrock: Any,
        rule_context: RuleContext,
        prompts: KmsPromptStore,
        audit: AuditTrail,
        model_id: str = DEFAULT_MODEL_ID,
        guardrail: GuardrailSettings | None = None,
        budget: InvocationBudget | None = None,
        registry: PersonalValueRegistry | None = None,
        tokenize: Callable[[str, str], str] | None = None,
        deadline_ms: int = 2_000,
        max_tokens: int = 200,
        actor: str = "svc-routing-agent",
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._bedrock = bedrock
        self.rule_context = rule_context
        self.prompts = prompts
        self.audit = audit
        self.model_id = model_id
        self.guardrail = guardrail
        self.budget = budget
        self.registry = registry if registry is not None else personal_value_registry()
        self._tokenize = tokenize
        self.deadline_ms = deadline_ms
        self.max_tokens = max_tokens
        self.actor = actor
        self._clock = clock
        self._now = now

    def decide(self, case: ExceptionCase) -> AgentDecision:
        """Propose, validate, fall back if need be, seal the prompt and audit; never leaves the allow-list.

        Raises:
            AgentError: the prompt could not be stored or the decision could not be audited (nothing
                unaudited is returned; retry the case).
        """
        try:
            request, _ = build_converse_request(
                case, self.rule_context, model_id=self.model_id, allowed_actions=ALLOWED_ACTIONS[case.kind],
                allowed_reason_codes=ALLOWED_REASON_CODES[case.kind], registry=self.registry,
                tokenize=self._tokenize, max_tokens=self.max_tokens)
        except PromptRefusedError:
            return self._record(case, self._fallback(case, "prompt_refused"))
        plain = prompt_bytes(request)
        digest = prompt_sha256(request)
        try:
            ref = self.prompts.seal(plain, case_id=case.case_id, digest=digest)
        except Exception as exc:  # noqa: BLE001 (KMS or store failure: nothing is decided unrecorded)
            raise AgentError(f"could not seal the prompt of {case.case_id}: {type(exc).__name__}") from exc
        common = {"prompt_sha256": digest, "prompt_ref": ref}
        estimate = _estimate_tokens(len(plain)) + self.max_tokens
        if self.budget is not None and not self.budget.try_acquire(estimate):
            return self._record(case, self._fallback(case, "over_budget", **common))
        if self.guardrail is not None:
            request["guardrailConfig"] = self.guardrail.as_config()
        guardrail = "none" if self.guardrail is None else "passed"
        started = self._clock()
        try:
            response = self._bedrock.converse(**request)
        except (ReadTimeoutError, ConnectTimeoutError):
            return self._record(case, self._fallback(case, "timeout", latency_ms=self._elapsed(started), **common))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            reason = ("throttled" if code in ("ThrottlingException", "ServiceQuotaExceededException")
                      else "timeout" if code == "ModelTimeoutException" else "model_error")
            return self._record(case, self._fallback(case, reason, latency_ms=self._elapsed(started), **common))
        except Exception:  # noqa: BLE001 (a transport fault: the safe default, never a crash in the pipeline)
            return self._record(case, self._fallback(case, "model_error", latency_ms=self._elapsed(started),
                                                     **common))
        usage = response.get("usage") if isinstance(response, Mapping) else None
        tokens_in = int(usage.get("inputTokens", 0)) if isinstance(usage, Mapping) else 0
        tokens_out = int(usage.get("outputTokens", 0)) if isinstance(usage, Mapping) else 0
        if self.budget is not None:
            self.budget.settle(estimate, tokens_in + tokens_out)
        reported = ((response.get("metrics") or {}).get("latencyMs", 0) if isinstance(response, Mapping) else 0)
        latency = max(self._elapsed(started), int(reported) if isinstance(reported, int) else 0)
        common.update(latency_ms=latency, input_tokens=tokens_in, output_tokens=tokens_out)
        if isinstance(response, Mapping) and response.get("stopReason") == "guardrail_intervened":
            guardrail = "intervened"
        common["guardrail"] = guardrail
        if latency > self.deadline_ms:
            return self._record(case, self._fallback(case, "timeout", **common))
        try:
            answer = validate_tool_answer(response, case, self.rule_context)
        except AnswerRejectedError as fallback:
            return self._record(case, self._fallback(case, fallback.reason, **common))
        except Exception:  # noqa: BLE001 (an answer shaped so oddly that checking it failed: not usable)
            return self._record(case, self._fallback(case, "model_error", **common))
        decision = AgentDecision(
            case_id=case.case_id, action=answer["action"], source="model", rail=answer.get("rail"),
            reason_code=answer.get("reason_code"), suggested_creditor_agent=answer.get("suggested_creditor_agent"),
            rationale_code=answer["rationale_code"], model_id=self.model_id, **common)
        return self._record(case, decision)

    def _elapsed(self, started: float) -> int:
        return max(0, int((self._clock() - started) * 1000))

    def _fallback(self, case: ExceptionCase, reason: str, **fields: Any) -> AgentDecision:
        return AgentDecision(case_id=case.case_id, action="hold", source="fallback", fallback_reason=reason,
                             model_id=self.model_id, **fields)

    def _record(self, case: ExceptionCase, decision: AgentDecision) -> AgentDecision:
        refs = {
            "prompt_sha256": decision.prompt_sha256,
            "model_id": decision.model_id,
            "model_version": _model_version(decision.model_id),
            "source": decision.source,
            "detail": decision.detail,
            "latency_ms": str(decision.latency_ms),
            "fallback": decision.fallback_reason or "none",
            "guardrail": decision.guardrail,
            "prompt_ref": decision.prompt_ref,
            "rule_context_sha256": self.rule_context.sha256,
            "tokens": f"{decision.input_tokens}/{decision.output_tokens}",
            "rationale": decision.rationale_code,
        }
        try:
            logged = self.audit.append(AuditEntry(kind="agent.decision", actor=self.actor, subject=case.case_id,
                                                  outcome=decision.action, at=self._now(), refs=refs))
        except Exception as exc:  # noqa: BLE001
            raise AgentError(f"could not audit the decision on {case.case_id}: {type(exc).__name__}: {exc}") from exc
        logger.info("agent decision", extra={"agent_decision": {"case_id": case.case_id, "action": decision.action,
                                                                **refs}})
        return replace(decision, audit_seq=logged.seq)
