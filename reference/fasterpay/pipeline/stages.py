"""The pipeline's stages as Lambda handlers: an SQS event in, ``{"batchItemFailures": [...]}`` out.

Each stage reads a batch, handles each record on its own (a bad record never fails the others), sends its
output with ``SendMessageBatch`` (up to 10 per call) and reports the records it could not finish. Every
effect is exactly-once by key (status changes, ledger transfer ids, settlement entries), so a redelivered
record is safe. The same handlers run on AWS (see ``lambdas.py``) and locally under
:class:`~fasterpay.pipeline.runner.LocalRunner`.

Ledger postings per payment: a hold ``<uetr>:hold`` (customer -> suspense) at authorisation, then either
``<uetr>:clear`` (suspense -> the rail's settlement account, or the creditor for a book transfer) or
``<uetr>:release`` (suspense -> customer) when the payment is rejected after the hold.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fasterpay.iso20022 import Pacs008Validator, build_pacs002
from fasterpay.iso20022.validation import currency_exponent
from fasterpay.ledger import (
    InsufficientFundsError,
    Ledger,
    Transfer,
    TransferRefusedError,
    UnknownAccountError,
    no_crash,
)

from .gateway import SimulatedSchemeGateway
from .model import CLEARING_TIME_LIMITS, Payment, PoisonMessageError, customer_account, to_minor_units
from .routing import RoutingRules
from .screening import FraudRules, SanctionsScreen, screening_form
from .settlement import SettlementBook, settlement_account
from .store import DynamoDbDuplicateDetector, StatusConflictError, StatusStore

__all__ = [
    "STAGES",
    "PipelineContext",
    "authorise_handler",
    "clear_handler",
    "ingest_handler",
    "make_handlers",
    "route_handler",
    "settle_handler",
    "submission_body",
]

#: Stages in order; each reads the queue of its own name and writes to the next one's.
STAGES = ("ingest", "authorise", "route", "clear", "settle")
_NEXT = {"ingest": "authorise", "authorise": "route", "route": "clear", "clear": "settle"}


def submission_body(xml: bytes, submission_id: str) -> str:
    """The ingest queue body: the channel's submission id and the raw message (base64: any bytes survive).

    Examples:
        >>> json.loads(submission_body(b"<x/>", "sub-1"))["submission_id"]
        'sub-1'
    """
    return json.dumps({"submission_id": submission_id, "xml": base64.b64encode(xml).decode()})


@dataclass
class PipelineContext:
    """Everything the handlers use, wired in one place (clients, tables, rules, clock, simulated scheme)."""

    sqs: Any
    dynamodb: Any
    vault: Any
    ledger: Ledger
    statuses: StatusStore
    book: SettlementBook
    queues: Mapping[str, str]
    routing: RoutingRules
    screen: SanctionsScreen
    gateway: SimulatedSchemeGateway
    clock: Callable[[], float]
    tenant: str = "bank-a"
    fraud: FraudRules = field(default_factory=FraudRules)
    cycle: Callable[[], str] = lambda: "C0001"
    crash: Callable[[str], None] = no_crash
    max_message_bytes: int = 100_000
    observer: Any = None  # a FaultInjector: its span() measures modelled time per record
    timings: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    hop_rng: random.Random = field(default_factory=lambda: random.Random(0))

    @contextmanager
    def span(self) -> Iterator[Any]:
        """The modelled-time span of one record (a no-op without an observer)."""
        if self.observer is None:
            yield None
        else:
            with self.observer.span() as opened:
                yield opened


class _Batch:
    """One handler invocation: per-record outcomes and batched sends to the next queue."""

    def __init__(self, ctx: PipelineContext, stage: str) -> None:
        self.ctx = ctx
        self.stage = stage
        self.failures: list[str] = []
        self.outgoing: list[tuple[str, str]] = []  # (source message id, body)
        self.spans: dict[str, list[str]] = defaultdict(list)  # source message id -> uetrs it timed

    def fail(self, record: Mapping[str, Any], reason: str) -> None:
        message_id = record["messageId"]
        self.failures.append(message_id)
        count = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            self.ctx.statuses.record_failure(self.stage, message_id, reason, count)
        except Exception:  # noqa: BLE001 - the failure is reported either way
            pass

    def send(self, record: Mapping[str, Any], body: str) -> None:
        self.outgoing.append((record["messageId"], body))

    def flush(self) -> dict[str, Any]:
        target = _NEXT.get(self.stage)
        if target and self.outgoing:
            with self.ctx.span() as flush_span:
                failed_sources = self._send_batches(self.ctx.queues[target])
            if flush_span is not None:  # every record waited for its batch's send
                for source, uetrs in self.spans.items():
                    for uetr in uetrs:
                        stage_times = self.ctx.timings[uetr]
                        stage_times[self.stage] = stage_times.get(self.stage, 0.0) + flush_span.modelled_seconds
            for source in failed_sources:
                if source not in self.failures:
                    self.failures.append(source)
        return {"batchItemFailures": [{"itemIdentifier": m} for m in dict.fromkeys(self.failures)]}

    def _send_batches(self, queue_url: str) -> set[str]:
        failed: set[str] = set()
        for start in range(0, len(self.outgoing), 10):
            chunk = self.outgoing[start:start + 10]
            entries = [{"Id": str(n), "MessageBody": body} for n, (_, body) in enumerate(chunk)]
            try:
                answer = self.ctx.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            except Exception:  # noqa: BLE001 - the whole chunk is retried through its sources
                failed.update(source for source, _ in chunk)
                continue
            for bad in answer.get("Failed", []):
                failed.add(chunk[int(bad["Id"])][0])
        return failed

    def timed(self, record: Mapping[str, Any], uetr: str, seconds: float | None, wall: float) -> None:
        times = self.ctx.timings[uetr]
        times[f"{self.stage}_wall"] = times.get(f"{self.stage}_wall", 0.0) + wall
        if seconds is None or self.ctx.observer is None:
            return
        times[self.stage] = times.get(self.stage, 0.0) + seconds
        if self.stage != "ingest":
            hop = self.ctx.observer.latency.for_call("sqs", "ReceiveMessage").sample(self.ctx.hop_rng)
            self.ctx.timings[uetr][f"{self.stage}_hop"] = hop
        self.spans[record["messageId"]].append(uetr)


def _run(ctx: PipelineContext, stage: str, event: Mapping[str, Any],
         one: Callable[[_Batch, Mapping[str, Any]], list[str]]) -> dict[str, Any]:
    batch = _Batch(ctx, stage)
    for record in event.get("Records", []):
        try:
            started = time.perf_counter()
            with ctx.span() as span:
                uetrs = one(batch, record)
            wall = time.perf_counter() - started
            for uetr in uetrs:
                batch.timed(record, uetr, span.modelled_seconds if span is not None else None, wall)
        except PoisonMessageError as exc:
            batch.fail(record, f"poison: {exc}")
        except TransferRefusedError as exc:
            batch.fail(record, f"ledger refused: {exc}")
        except Exception as exc:  # noqa: BLE001 - throttles, timeouts: retried by redelivery
            batch.fail(record, f"{type(exc).__name__}: {exc}")
    return batch.flush()


# -- ingest ---------------------------------------------------------------------------------------------
def _ingest_one(batch: _Batch, record: Mapping[str, Any]) -> list[str]:
    ctx = batch.ctx
    try:
        envelope = json.loads(record["body"])
        submission_id = str(envelope["submission_id"])
        xml = base64.b64decode(envelope["xml"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise PoisonMessageError(f"not an ingest envelope ({type(exc).__name__})") from None
    validator = Pacs008Validator(
        duplicates=DynamoDbDuplicateDetector(ctx.dynamodb, ctx.statuses.table, owner=submission_id),
        max_message_bytes=ctx.max_message_bytes)
    report = validator.validate(xml)
    now = ctx.clock()
    accepted: list[str] = []
    for outcome in report.transactions:
        tx = outcome.transaction
        if not outcome.accepted or tx is None:
            continue
        uetr = tx.uetr or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{report.msg_id}/{tx.end_to_end_id}"))
        payment = _tokenised(ctx, tx, outcome.scheme or "", report.msg_id or "", uetr, now)
        ctx.statuses.accept(payment, at=now)  # False on a redelivery: send again, downstream is idempotent
        batch.send(record, payment.to_json())
        accepted.append(uetr)
    if report.rejections:
        created = datetime.fromtimestamp(now, UTC)
        answer = build_pacs002(report.to_pacs002(f"STS-{submission_id}"[:35], created))
        ctx.statuses.record_rejection(submission_id, answer, [r.reason.value for r in report.rejections], at=now)
    ctx.crash("ingested")
    return accepted


def _agent_id(agent: Any) -> str:
    if agent.bic:
        return str(agent.bic)
    return f"GBDSC:{agent.member_id}"


def _tokenised(ctx: PipelineContext, tx: Any, scheme: str, msg_id: str, uetr: str, now: float) -> Payment:
    vault, tenant, subject = ctx.vault, ctx.tenant, f"pay:{uetr}"

    def account(acct: Any) -> str:
        value, cls = (acct.iban, "iban") if acct.iban else (acct.other_id, "account_number")
        return str(vault.tokenize(value, cls, tenant=tenant, subject=subject, deterministic=True))

    def name(party: Any) -> str:
        return str(vault.tokenize(screening_form(party.name), "name", tenant=tenant, subject=subject,
                                  deterministic=True))

    exponent = currency_exponent(tx.currency)
    assert exponent is not None  # the validator accepted the currency
    return Payment(
        uetr=uetr, end_to_end_id=tx.end_to_end_id, msg_id=msg_id, scheme=scheme,
        amount_minor=to_minor_units(tx.amount, exponent), currency=tx.currency, exponent=exponent,
        debtor_account_token=account(tx.debtor_account), creditor_account_token=account(tx.creditor_account),
        debtor_name_token=name(tx.debtor), creditor_name_token=name(tx.creditor),
        debtor_agent=_agent_id(tx.debtor_agent), creditor_agent=_agent_id(tx.creditor_agent), accepted_at=now,
    )


# -- authorisation --------------------------------------------------------------------------------------
def _reject(ctx: PipelineContext, payment: Payment, reason: str, *, release: bool) -> None:
    if release:
        ctx.ledger.transfer(Transfer(f"{payment.uetr}:release", payment.suspense_account,
                                     payment.debtor_ledger_account, payment.amount_minor, payment.currency))
    try:
        ctx.statuses.advance(payment.uetr, "RJCT", at=ctx.clock(), reason=reason)
    except StatusConflictError:
        pass  # already rejected (or settled) by an earlier delivery


def _authorise_one(batch: _Batch, record: Mapping[str, Any]) -> list[str]:
    ctx = batch.ctx
    payment = Payment.from_json(record["body"])
    if ctx.screen.hit(payment):
        _reject(ctx, payment, "RR04", release=False)  # regulatory reason: sanctions list hit
        return [payment.uetr]
    fraud = ctx.fraud.check(payment)
    if fraud is not None:
        _reject(ctx, payment, ctx.fraud.reason, release=False)
        return [payment.uetr]
    try:
        ctx.ledger.transfer(Transfer(f"{payment.uetr}:hold", payment.debtor_ledger_account,
                                     payment.suspense_account, payment.amount_minor, payment.currency))
    except InsufficientFundsError:
        _reject(ctx, payment, "AM04", release=False)
        return [payment.uetr]
    except UnknownAccountError:
        _reject(ctx, payment, "AC01", release=False)
        return [payment.uetr]
    ctx.crash("held")
    try:
        ctx.statuses.advance(payment.uetr, "ACCP", at=ctx.clock())
    except StatusConflictError:
        return []  # moved on already (a late redelivery): nothing to send
    batch.send(record, payment.to_json())
    return [payment.uetr]


# -- routing --------------------------------------------------------------------------------------------
def _route_one(batch: _Batch, record: Mapping[str, Any]) -> list[str]:
    ctx = batch.ctx
    payment = Payment.from_json(record["body"])
    route = ctx.routing.route(payment)
    if route.rail is None:
        _reject(ctx, payment, route.reason or ctx.routing.unroutable_reason, release=True)
        return [payment.uetr]
    batch.send(record, payment.routed(route.rail).to_json())
    return [payment.uetr]


# -- clearing -------------------------------------------------------------------------------------------
def _clear_one(batch: _Batch, record: Mapping[str, Any]) -> list[str]:
    ctx = batch.ctx
    payment = Payment.from_json(record["body"])
    if not payment.rail:
        raise PoisonMessageError("a clearing message without a rail: route it first")
    rail = ctx.routing.rails[payment.rail]
    limit = CLEARING_TIME_LIMITS.get(payment.rail, rail.time_limit_seconds)
    if payment.rail == "internal":
        credit = customer_account(payment.creditor_account_token)
        try:
            ctx.ledger.account(credit)
            proposal = "accepted"
        except UnknownAccountError:
            proposal = "rejected:AC01"
    else:
        credit = settlement_account(payment.rail, payment.currency)
        started = ctx.clock()
        answer = ctx.gateway.submit(payment, time_limit=limit)
        answered_at = started + answer.seconds  # modelled: the clock is never slept on
        if answer.accepted and answered_at <= started + limit:
            proposal = "accepted"
        elif answer.reason == "timeout" or answered_at > started + limit:
            proposal = f"timeout:{rail.timeout_reason}"
        else:
            proposal = f"rejected:{answer.reason}"
    decision = ctx.statuses.decide(payment.uetr, proposal)  # the first decision stands, for ever
    ctx.crash("decided")
    if decision != "accepted":
        _reject(ctx, payment, decision.split(":", 1)[1], release=True)
        return [payment.uetr]
    ctx.ledger.transfer(Transfer(f"{payment.uetr}:clear", payment.suspense_account, credit,
                                 payment.amount_minor, payment.currency))
    ctx.crash("cleared")
    try:
        ctx.statuses.advance(payment.uetr, "ACSP", at=ctx.clock(), rail=payment.rail)
    except StatusConflictError:
        return []
    batch.send(record, payment.to_json())
    return [payment.uetr]


# -- settlement -----------------------------------------------------------------------------------------
def _settle_one(batch: _Batch, record: Mapping[str, Any]) -> list[str]:
    ctx = batch.ctx
    payment = Payment.from_json(record["body"])
    ctx.book.record(ctx.cycle(), payment)
    return []


def ingest_handler(ctx: PipelineContext, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Parse, validate, tokenise, record (ACTC) or reject with a pacs.002 (RJCT); send to authorisation.

    Examples:
        >>> ingest_handler(ctx, {"Records": []})  # doctest: +SKIP
        {'batchItemFailures': []}
    """
    return _run(ctx, "ingest", event, _ingest_one)


def authorise_handler(ctx: PipelineContext, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Sanctions screening (tokens), fraud rules, funds hold on the ledger (ACCP); send to routing."""
    return _run(ctx, "authorise", event, _authorise_one)


def route_handler(ctx: PipelineContext, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Choose the rail from the routing rules, or reject and release the hold."""
    return _run(ctx, "route", event, _route_one)


def clear_handler(ctx: PipelineContext, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Submit to the (simulated) scheme within its time limit; post the clearing once (ACSP) or release."""
    return _run(ctx, "clear", event, _clear_one)


def settle_handler(ctx: PipelineContext, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Book each cleared payment into the open settlement cycle."""
    return _run(ctx, "settle", event, _settle_one)


_HANDLERS = {"ingest": ingest_handler, "authorise": authorise_handler, "route": route_handler,
             "clear": clear_handler, "settle": settle_handler}


def make_handlers(ctx: PipelineContext) -> dict[str, Callable[[Mapping[str, Any], Any], dict[str, Any]]]:
    """Handlers bound to ``ctx``, with Lambda's ``(event, context)`` signature, by stage name.

    Examples:
        >>> handlers = make_handlers(ctx)  # doctest: +SKIP
        >>> handlers["ingest"]({"Records": []}, None)  # doctest: +SKIP
        {'batchItemFailures': []}
    """
    return {stage: (lambda event, context=None, _h=handler: _h(ctx, event, context))
            for stage, handler in _HANDLERS.items()}


def amount_of(payment: Payment) -> Decimal:
    """A payment's amount in major units."""
    return Decimal(payment.amount_minor).scaleb(-payment.exponent)
