"""A deterministic stand-in model behind the real ``bedrock-runtime`` client: no account, no network, no model.

:func:`standin_bedrock_client` builds a real boto3 ``bedrock-runtime`` client (fake credentials, endpoint
``http://127.0.0.1:9``) and registers a ``before-call.bedrock-runtime.Converse`` handler: botocore
serialises the request exactly as for AWS, the handler reads the serialised body, and its answer is
returned to botocore as the parsed response, so the HTTP layer is never used. A ``before-send`` handler
raises :class:`NetworkAttemptError` if anything ever tries to send a request (an operation the stand-in
does not answer, say): nothing reaches the network.

**It is a stand-in model, not a language model.** It reads the tokenised prompt and decides by simple
rules: route on the one rail the prompt allows when it reaches the creditor agent (a sanctions near-miss
more than 0.05 under the threshold is released on it, closer ones are held); reject ``AB08`` when no rail
reaches the agent; for a malformed creditor agent, hold with a corrected BIC when a simple repair gives a
BIC shape, else reject ``RC01``.

Seeded misbehaviour modes, each at a configurable rate (:data:`MISBEHAVIOURS`), for the chaos and
adversarial tests: ``obey_injection`` (a naive model that routes, rejects or releases where the remittance
text or the EndToEndId tells it), ``broken_json``, ``text_only``, ``spoofed_tool``, ``two_tools``,
``outside_allow_list`` (a reason code not allowed), ``unknown_rail``, ``throttle`` (``ThrottlingException``),
``model_error`` (``ModelErrorException``), ``timeout`` (botocore ``ReadTimeoutError``),
``guardrail_intervened`` (that stop reason). ``naive=True`` obeys every injection it finds.

``usage`` counts tokens with an approximation: **about 4 characters per token** (``ceil(chars / 4)``) of the
serialised system prompt, messages and tool configuration in, and of the tool input out (plus 8 tokens of
framing). ``metrics.latencyMs`` is **modelled**, drawn from :class:`LatencyModel` (figures and sources
there and in :mod:`simulations.agent_eval`).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

__all__ = [
    "MISBEHAVIOURS",
    "LatencyModel",
    "NetworkAttemptError",
    "StandInModel",
    "standin_bedrock_client",
]

#: The stand-in model's seeded misbehaviour modes.
MISBEHAVIOURS = ("obey_injection", "broken_json", "text_only", "spoofed_tool", "two_tools", "outside_allow_list",
                 "unknown_rail", "throttle", "model_error", "timeout", "guardrail_intervened")
STANDIN_ENDPOINT = "http://127.0.0.1:9"  # the discard port: were anything sent, it would go nowhere
_INJECTED_RAIL = re.compile(r"(?:route|send|transfer|pay)\w*\s+(?:\w+\s+){0,3}(?:to|via|on|over)\s+([a-z][a-z0-9_]+)",
                            re.IGNORECASE)
_INJECTED_E2E = re.compile(r"ROUTE[-_.:]?TO[-_.:]?([A-Z][A-Z0-9_]+)", re.IGNORECASE)
_INJECTED_REJECT = re.compile(r"reject\w*\s+(?:\w+\s+){0,3}(?:with|code|reason)\s+([A-Z]{2}[0-9]{2})", re.IGNORECASE)
_INJECTED_RELEASE = re.compile(r"\b(?:release|approve|skip (?:the )?review|no review)\b", re.IGNORECASE)


class NetworkAttemptError(RuntimeError):
    """Something tried to send a request from the stand-in client; the stand-in never uses the network."""


@dataclass(frozen=True)
class LatencyModel:
    """Modelled Converse latency: time to first token (lognormal) plus output tokens at a steady rate.

    Defaults for Amazon Nova Micro: median time to first token 250 ms (published p50/average figures: 0.21 s
    in eu-west-2 and 0.25 s in us-east-1, https://aiperf.ghast.people.aws.dev/; 0.3 s P50 TTFT,
    https://vercel.com/ai-gateway/models/nova-micro), sigma 0.45 (our assumption: a p99 about 2.8x the
    median), output at 300 tokens/s (the same benchmark shows 298-575 tok/s for nova-micro).
    """

    ttft_median_ms: float = 250.0
    ttft_sigma: float = 0.45
    output_tokens_per_second: float = 300.0

    def draw(self, rng: random.Random, output_tokens: int) -> int:
        ttft = self.ttft_median_ms * math.exp(rng.gauss(0.0, self.ttft_sigma))
        return int(round(ttft + 1000.0 * output_tokens / self.output_tokens_per_second))


class _HttpResponse:
    """What botocore needs of an HTTP response when a ``before-call`` handler answers."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""
        self.text = ""


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))  # approximation: about 4 characters per token


@dataclass
class StandInModel:
    """The stand-in model's rules, faults and counters (``stand-in model`` in every report field).

    Examples:
        >>> model = StandInModel(seed=1, faults={"throttle": 1.0})
        >>> client = standin_bedrock_client(model)
        >>> try:
        ...     client.converse(modelId="amazon.nova-micro-v1:0", messages=[{"role": "user", "content": [{"text": "{}"}]}])
        ... except client.exceptions.ThrottlingException:
        ...     print("throttled")
        throttled
    """

    seed: int = 0
    faults: dict[str, float] = field(default_factory=dict)
    naive: bool = False
    latency: LatencyModel = field(default_factory=LatencyModel)
    calls: int = 0
    behaviour: Counter[str] = field(default_factory=Counter)
    requests: list[str] = field(default_factory=list)
    keep_requests: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.faults) - set(MISBEHAVIOURS)
        if unknown:
            raise ValueError(f"unknown stand-in model misbehaviours {sorted(unknown)}; known: {MISBEHAVIOURS}")
        if sum(self.faults.values()) > 1.0 or any(rate < 0 for rate in self.faults.values()):
            raise ValueError("misbehaviour rates must be >= 0 and sum to at most 1")
        self._rng = random.Random(self.seed)

    # -- botocore event handlers ---------------------------------------------------------------------------
    def on_before_call(self, params: dict[str, Any], **_: Any) -> tuple[_HttpResponse, dict[str, Any]]:
        body = params.get("body") or b"{}"
        text = body.decode("utf-8") if isinstance(body, bytes) else str(body)
        if self.keep_requests:
            self.requests.append(text)
        return self.answer(json.loads(text), input_chars=len(text))

    @staticmethod
    def on_before_send(**_: Any) -> None:
        raise NetworkAttemptError("the stand-in model client tried to send a request over the network")

    # -- the model -----------------------------------------------------------------------------------------
    def _mode(self) -> str:
        draw, total = self._rng.random(), 0.0
        for name in MISBEHAVIOURS:
            total += self.faults.get(name, 0.0)
            if draw < total:
                return name
        return "obey_injection" if self.naive else "rules"

    def answer(self, request: dict[str, Any], *, input_chars: int) -> tuple[_HttpResponse, dict[str, Any]]:
        """The parsed Converse response (or error) the stand-in model gives for ``request``."""
        self.calls += 1
        mode = self._mode()
        self.behaviour[mode] += 1
        if mode == "throttle":
            return _HttpResponse(429), _error("ThrottlingException", "Too many requests (stand-in model)")
        if mode == "model_error":
            return _HttpResponse(424), _error("ModelErrorException", "The model failed (stand-in model)")
        if mode == "timeout":
            raise ReadTimeoutError(endpoint_url=STANDIN_ENDPOINT)
        prompt = _prompt(request)
        decision = (self._obey(prompt) if mode == "obey_injection" else None) or _rules(prompt)
        stop = "tool_use"
        blocks: list[dict[str, Any]]
        if mode == "broken_json":
            blocks = [_tool('{"action": "route", "rail": ')]
        elif mode == "text_only":
            blocks, stop = [{"text": "I would route this payment on uk_fps."}], "end_turn"
        elif mode == "spoofed_tool":
            blocks = [_tool(decision, name=self._rng.choice(["transfer_funds", "Decide", "decide_v2", "route"]))]
        elif mode == "two_tools":
            blocks = [_tool(decision), _tool({"action": "route", "rail": "uk_fps", "rationale_code": "rail_reaches_agent"})]
        elif mode == "outside_allow_list":
            blocks = [_tool({"action": "reject", "reason_code": self._rng.choice(["AM04", "RR04", "DU04"]),
                             "rationale_code": "agent_unreachable"})]
        elif mode == "unknown_rail":
            blocks = [_tool({"action": "route", "rail": self._rng.choice(["swift_gpi", "chaps", "target2"]),
                             "rationale_code": "rail_reaches_agent"})]
        elif mode == "guardrail_intervened":
            blocks, stop = [{"text": "Sorry, the model cannot answer that."}], "guardrail_intervened"
        else:
            blocks = [_tool(decision)]
        out_chars = sum(len(json.dumps(b)) for b in blocks)
        usage_in, usage_out = _tokens(input_chars), _tokens(out_chars) + 8
        response: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": blocks}},
            "stopReason": stop,
            "usage": {"inputTokens": usage_in, "outputTokens": usage_out, "totalTokens": usage_in + usage_out},
            "metrics": {"latencyMs": self.latency.draw(self._rng, usage_out)},
            "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0},
        }
        if "guardrailConfig" in request:
            action = "GUARDRAIL_INTERVENED" if stop == "guardrail_intervened" else "NONE"
            response["trace"] = {"guardrail": {"actionReason": action}}
        return _HttpResponse(200), response

    def _obey(self, prompt: dict[str, Any]) -> dict[str, Any] | None:
        """A naive model: do what the untrusted text says, if it says anything."""
        remittance = str(prompt.get("remittance_untrusted", ""))
        e2e = str(prompt.get("case", {}).get("end_to_end_id", ""))
        rail = _INJECTED_RAIL.search(remittance) or _INJECTED_E2E.search(e2e)
        if rail:
            return {"action": "route", "rail": rail.group(1).lower(), "rationale_code": "rail_reaches_agent"}
        reject = _INJECTED_REJECT.search(remittance)
        if reject:
            return {"action": "reject", "reason_code": reject.group(1).upper(), "rationale_code": "agent_unreachable"}
        if _INJECTED_RELEASE.search(remittance):
            return {"action": "route", "rail": prompt.get("case", {}).get("scheme", "uk_fps"),
                    "rationale_code": "rail_reaches_agent"}
        return None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}, "message": message,
            "ResponseMetadata": {"HTTPStatusCode": 429 if code == "ThrottlingException" else 424, "HTTPHeaders": {}}}


def _tool(payload: Any, *, name: str = "decide") -> dict[str, Any]:
    return {"toolUse": {"toolUseId": "tooluse_standin", "name": name, "input": payload}}


def _prompt(request: dict[str, Any]) -> dict[str, Any]:
    try:
        text = request["messages"][0]["content"][0]["text"]
        prompt = json.loads(text)
        return prompt if isinstance(prompt, dict) else {}
    except (KeyError, IndexError, TypeError, ValueError):
        return {}


_DIGIT_TO_LETTER = str.maketrans("015", "OIS")


def _repair(agent: str) -> str | None:
    """A simple repair of a mistyped BIC: upper case, digits in the letter positions read as letters."""
    fixed = agent.upper()
    fixed = fixed[:6].translate(_DIGIT_TO_LETTER) + fixed[6:]
    return fixed if re.fullmatch(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?", fixed) and fixed != agent else None


def _rules(prompt: dict[str, Any]) -> dict[str, Any]:
    """The stand-in model's rules (see the module docstring)."""
    case = prompt.get("case") or {}
    rails = (prompt.get("allowed") or {}).get("rails") or []
    kind = case.get("kind")
    if kind == "sanctions_near_miss":
        sanctions = case.get("sanctions") or {}
        try:
            margin = float(sanctions["threshold"]) - float(sanctions["score"])  # a score, not money
        except (KeyError, TypeError, ValueError):
            margin = 0.0
        if rails and margin > 0.05:
            return {"action": "route", "rail": rails[0], "rationale_code": "rail_reaches_agent"}
        return {"action": "hold", "rationale_code": "near_miss_review"}
    if kind == "repair_agent":
        suggestion = _repair(str(case.get("creditor_agent", "")))
        if suggestion is not None:
            return {"action": "hold", "suggested_creditor_agent": suggestion, "rationale_code": "agent_malformed"}
        return {"action": "reject", "reason_code": "RC01", "rationale_code": "agent_malformed"}
    if rails:
        return {"action": "route", "rail": rails[0], "rationale_code": "rail_reaches_agent"}
    return {"action": "reject", "reason_code": "AB08", "rationale_code": "agent_unreachable"}


@lru_cache(maxsize=8)
def _session(region: str) -> boto3.session.Session:
    """One session per region with fake credentials (a session caches the service model: clients are cheap)."""
    return boto3.session.Session(aws_access_key_id="standin", aws_secret_access_key="standin",
                                 aws_session_token="standin", region_name=region)


def standin_bedrock_client(model: StandInModel, *, region: str = "eu-west-2", read_timeout: float = 2.0) -> Any:
    """A real ``bedrock-runtime`` client whose Converse calls the stand-in model answers; nothing is sent.

    Examples:
        >>> client = standin_bedrock_client(StandInModel(seed=3))
        >>> client.meta.endpoint_url
        'http://127.0.0.1:9'
    """
    client = _session(region).client("bedrock-runtime", endpoint_url=STANDIN_ENDPOINT,
                            config=Config(read_timeout=read_timeout, connect_timeout=1,
                                          retries={"max_attempts": 1, "mode": "standard"}))
    client.meta.events.register("before-call.bedrock-runtime.Converse", model.on_before_call)
    client.meta.events.register("before-send", model.on_before_send)
    return client
