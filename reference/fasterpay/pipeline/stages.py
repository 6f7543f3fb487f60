"""The pipeline's two handlers: five logical steps, two queue hops, exactly-once effects.

=============  =========================================================  ==========================
handler        steps (in this order, per SQS batch of up to 10 messages)  durable work per payment
=============  =========================================================  ==========================
``accept``     **ingest** (parse, validate, tokenise; records stored with the holds),  one TransactWriteItems
               **authorise** (sanctions, look-alike names, fraud rules),  (ACCP + hold + duplicate
               **route** (the rail), then the hold                        guards), or one PutItem (RJCT)
``clear``      **clear** (the scheme, within its time limit),             one UpdateItem (ACSP), or one
               **settle** (book the batch into its settlement cycle)      TransactWriteItems (release)
=============  =========================================================  ==========================

Authorise and route decide in memory and their outcome is written in the same transaction as the hold,
so there is no window in which a payment is held but not recorded, or recorded but not held. Each
handler sends its output with ``SendMessageBatch`` (10 per call): accepted payments to the ``clear``
queue, pacs.002-style answers (ACSP or RJCT, with the reason) to the ``answers`` queue for the sender.

Exactly-once, step by step: every write is conditional on the prior status (see :mod:`.store`), so a
redelivered record meets its own earlier write and answers as before; the answer itself is at least
once (a crash after the write and before the send sends it again), and carries ``uetr`` and ``status``
for the receiver to deduplicate. Handlers return ``{"batchItemFailures": [...]}``: one bad record never
fails the others (Lambda's ``ReportBatchItemFailures``).

Ports (all passed in, see :class:`PipelineContext`): the SQS and DynamoDB clients, the payment store, the
settlement book, the vault, the scheme gateway, the routing and screening rules, a clock, the settlement
cycle, and :class:`Telemetry`, through which tracing, metrics and (in the chaos runs only) crashes plug
in at named steps (:data:`STEP_NAMES`).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..iso20022 import Pacs008Validator
from ..iso20022.validation import currency_exponent

from .gateway import SchemeAnswer, SchemeGateway
from .model import Payment, PoisonMessageError, SimulatedCrash, to_minor_units
from .routing import RoutingRules
from .screening import FraudRules, SanctionsScreen, screening_form
from .settlement import Entry, SettlementBook
from .store import PaymentStore, StoredPayment, TransitionConflictError

__all__ = [
    "HANDLERS",
    "LOGICAL_STEPS",
    "STEP_NAMES",
    "Answer",
    "FanOut",
    "NoTelemetry",
    "PipelineContext",
    "Telemetry",
    "accept_handler",
    "clear_handler",
    "make_handlers",
    "submission_body",
]

#: The five logical steps, as the diagram and the traces name them.
LOGICAL_STEPS = ("ingest", "authorise", "route", "clear", "settle")
#: The handlers, each reading the queue of its own name.
HANDLERS = ("accept", "clear")
#: Every named step boundary the handlers report to :meth:`Telemetry.step` (and chaos runs crash at).
STEP_NAMES = (
    "accept.validated",   # parsed, validated and tokenised; nothing written yet
    "accept.recorded",    # every hold/reject of the batch written; nothing sent yet
    "accept.forwarded",   # accepted payments sent to the clear queue; answers not sent yet
    "accept.answered",    # answers sent; the invocation is about to return
    "clear.submitted",    # the scheme answered; no decision written yet
    "clear.decided",      # every decision (ACSP, ACSC, RJCT + release) written; nothing sent or booked
    "clear.answered",     # answers sent; the batch not booked into its settlement cycle yet
    "clear.booked",       # booked; the invocation is about to return
)


class Telemetry(Protocol):
    """Where the handlers report steps: tracing and metrics in production; crash injection in chaos runs."""

    def step(self, name: str) -> None:
        """A named step boundary was reached (see :data:`STEP_NAMES`)."""
        ...

    def span(self, name: str, uetrs: Sequence[str]) -> Any:
        """A context manager around a logical step's work for these payments."""
        ...

    def status(self, answer: Answer) -> None:
        """A payment's status was written (or found written by an earlier delivery) and will be answered."""
        ...

    def personal_values(self, values: Sequence[tuple[str, str]]) -> None:
        """``(value, kind)`` pairs a batch carries that telemetry must never hold: names, domestic account
        numbers, address lines. Called as the values are tokenised, before any telemetry about them."""
        ...


class NoTelemetry:
    """Telemetry that records nothing."""

    def step(self, name: str) -> None:
        """Nothing."""

    def status(self, answer: Answer) -> None:
        """Nothing."""

    def personal_values(self, values: Sequence[tuple[str, str]]) -> None:
        """Nothing."""

    @contextmanager
    def span(self, name: str, uetrs: Sequence[str]) -> Iterator[None]:
        """Nothing."""
        yield None


class FanOut:
    """Several telemetries as one (tracing and metrics, and in a chaos run the crash injector last).

    Examples:
        >>> FanOut(NoTelemetry(), NoTelemetry()).step("accept.recorded")
    """

    def __init__(self, *telemetries: Telemetry) -> None:
        self.telemetries = telemetries

    def step(self, name: str) -> None:
        for t in self.telemetries:
            t.step(name)

    def status(self, answer: Answer) -> None:
        for t in self.telemetries:
            t.status(answer)

    def personal_values(self, values: Sequence[tuple[str, str]]) -> None:
        for t in self.telemetries:
            t.personal_values(values)

    @contextmanager
    def span(self, name: str, uetrs: Sequence[str]) -> Iterator[None]:
        with ExitStack() as stack:
            for t in self.telemetries:
                stack.enter_context(t.span(name, uetrs))
            yield None


def personal_values(tx: Any) -> Iterator[tuple[str, str]]:
    """``(value, kind)``: what a parsed transaction carries that no pattern finds but telemetry must never
    hold: the parties' names and address lines, and domestic account numbers (IBANs have a pattern).

    Examples:
        >>> from types import SimpleNamespace as N
        >>> party, account = N(name="Ada Lovelace", address_lines=("1 Analytical Row",)), N(other_id="31926819")
        >>> list(personal_values(N(debtor=party, creditor=N(name=None, address_lines=()),
        ...                        debtor_account=account, creditor_account=None)))
        [('Ada Lovelace', 'name'), ('1 Analytical Row', 'address'), ('31926819', 'account number')]
    """
    for party in (tx.debtor, tx.creditor):
        if party.name:
            yield party.name, "name"
        yield from ((line, "address") for line in party.address_lines)
    for account in (tx.debtor_account, tx.creditor_account):
        if account is not None and account.other_id:
            yield str(account.other_id), "account number"


def submission_body(xml: bytes, submission_id: str) -> str:
    """The accept queue body: the channel's submission id and the raw message (base64: any bytes survive).

    Examples:
        >>> json.loads(submission_body(b"<x/>", "sub-1"))["submission_id"]
        'sub-1'
    """
    return json.dumps({"submission_id": submission_id, "xml": base64.b64encode(xml).decode()})


@dataclass(frozen=True)
class Answer:
    """The status report for one transaction, as the sender reads it from the answers queue.

    The fields are those of a pacs.002 ``TxInfAndSts``: ``OrgnlUETR``, ``OrgnlEndToEndId``, ``OrgnlMsgId``,
    ``TxSts`` (ACSP, ACSC or RJCT) and ``StsRsnInf/Rsn/Cd``. A redelivery may send the same answer twice;
    the receiver deduplicates on (``uetr``, ``status``), and a payment never gets two different final answers.
    """

    submission_id: str
    msg_id: str
    end_to_end_id: str
    uetr: str
    status: str
    reason: str | None = None

    def to_json(self) -> str:
        """The queue body."""
        return json.dumps(self.__dict__, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str) -> Answer:
        """Parse a queue body."""
        return cls(**json.loads(body))


class _NoDuplicateCheck:
    """Duplicates are refused by the hold transaction itself, not by a read before it."""

    def seen_message(self, msg_id: str) -> bool:
        return False

    def seen_end_to_end(self, end_to_end_id: str) -> bool:
        return False


def _sequential(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    return [fn(item) for item in items]


@dataclass
class PipelineContext:
    """The production ports, wired once by :func:`fasterpay.pipeline.bootstrap.bootstrap`."""

    sqs: Any
    store: PaymentStore
    book: SettlementBook
    vault: Any  # fasterpay.vault.Vault: tokenize_batch
    gateway: SchemeGateway
    queues: Mapping[str, str]  # "accept", "clear", "answers" -> queue URL
    routing: RoutingRules
    screen: SanctionsScreen
    clock: Callable[[], float]
    cycle: Callable[[], str]
    telemetry: Telemetry = field(default_factory=NoTelemetry)
    fraud: FraudRules = field(default_factory=FraudRules)
    tenant: str = "bank-a"
    max_message_bytes: int = 100_000
    #: How the per-payment writes of a batch run: one after another (the default, and on moto), or
    #: concurrently on a thread pool (``fasterpay.pipeline.bootstrap.thread_pool``) on AWS.
    parallel: Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]] = _sequential


class _Batch:
    """One handler invocation: per-record outcomes, and batched sends."""

    def __init__(self, ctx: PipelineContext, records: Sequence[Mapping[str, Any]]) -> None:
        self.ctx = ctx
        self.records = list(records)
        self.failed: dict[str, str] = {}  # message id -> reason
        self.forward: list[tuple[str, str]] = []  # (source message id, body)
        self.answers: list[tuple[str, str]] = []
        self.recorded: set[str] = set()  # message ids whose failure reason is already kept

    def fail(self, record: Mapping[str, Any], reason: str) -> None:
        self.failed.setdefault(record["messageId"], reason)

    def poison(self, queue: str, record: Mapping[str, Any], exc: Exception) -> None:
        """Fail an unreadable record and keep its reason at once: a later crash in the same invocation
        must not leave the dead-letter queue with a message nobody can explain."""
        reason = f"poison: {exc}"
        self.fail(record, reason)
        _record_failure(self.ctx, queue, record, reason)
        self.recorded.add(record["messageId"])

    def answer(self, record: Mapping[str, Any], answer: Answer) -> None:
        self.answers.append((record["messageId"], answer.to_json()))
        self.ctx.telemetry.status(answer)

    def send(self, queue: str, outgoing: list[tuple[str, str]]) -> None:
        """SendMessageBatch, 10 per call; a record whose message did not go out fails (and comes back)."""
        sendable = [(source, body) for source, body in outgoing if source not in self.failed]
        for start in range(0, len(sendable), 10):
            chunk = sendable[start:start + 10]
            entries = [{"Id": str(n), "MessageBody": body} for n, (_, body) in enumerate(chunk)]
            try:
                answer = self.ctx.sqs.send_message_batch(QueueUrl=self.ctx.queues[queue], Entries=entries)
            except Exception as exc:  # noqa: BLE001 - the sources are redelivered and send again
                for source, _ in chunk:
                    self.failed.setdefault(source, f"send to {queue}: {type(exc).__name__}")
                continue
            for bad in answer.get("Failed", []):
                self.failed.setdefault(chunk[int(bad["Id"])][0], f"send to {queue}: {bad.get('Code')}")

    def result(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": m} for m in self.failed]}


def _record_failure(ctx: PipelineContext, queue: str, record: Mapping[str, Any], reason: str) -> None:
    count = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    try:
        ctx.store.record_failure(queue, record["messageId"], reason, count)
    except Exception:  # noqa: BLE001 - the failure is reported to Lambda either way
        pass


# -- accept: ingest, authorise, route, hold -------------------------------------------------------------
@dataclass
class _Candidate:
    record: Mapping[str, Any]
    submission_id: str
    msg_id: str
    index: int
    first_of_message: bool
    tx: Any
    scheme: str
    uetr: str
    payment: Payment | None = None
    decision: str | None = None  # None: hold; else the RJCT reason decided in memory


def _envelope(record: Mapping[str, Any]) -> tuple[str, bytes]:
    try:
        envelope = json.loads(record["body"])
        submission_id = str(envelope["submission_id"])
        xml = base64.b64decode(envelope["xml"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise PoisonMessageError(f"not an accept envelope ({type(exc).__name__})") from None
    if not submission_id or len(submission_id) > 200:
        raise PoisonMessageError("submission_id must be 1 to 200 characters")
    return submission_id, xml


def _ingest(batch: _Batch) -> list[_Candidate]:
    """Parse and validate every message; refuse bad ones with their reason; return the candidates."""
    ctx = batch.ctx
    validator = Pacs008Validator(duplicates=_NoDuplicateCheck(), max_message_bytes=ctx.max_message_bytes)
    candidates: list[_Candidate] = []
    now = ctx.clock()
    for record in batch.records:
        try:
            submission_id, xml = _envelope(record)
        except PoisonMessageError as exc:
            batch.poison("accept", record, exc)
            continue
        try:
            report = validator.validate(xml)
        except Exception:  # noqa: BLE001 - a validator bug must not send a payment to the DLQ: refused FF01
            report = None
        msg_id = (report.msg_id or "") if report is not None else ""
        first = True
        for outcome in report.transactions if report is not None else ():
            tx = outcome.transaction
            if not outcome.accepted or tx is None:
                reason = str(outcome.reason or "FF01")
                try:
                    ctx.store.record_ingest_rejection(submission_id, outcome.index, [reason],
                                                      end_to_end_id=outcome.end_to_end_id, at=now)
                except Exception as exc:  # noqa: BLE001 - retried by redelivery
                    batch.fail(record, f"{type(exc).__name__}: {exc}")
                batch.answer(record, Answer(submission_id, msg_id, outcome.end_to_end_id or "",
                                            outcome.uetr or "", "RJCT", reason))
                continue
            uetr = tx.uetr or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{msg_id}/{tx.end_to_end_id}"))
            candidates.append(_Candidate(record, submission_id, msg_id, outcome.index, first, tx,
                                         outcome.scheme or "", uetr))
            first = False
        if report is None or not report.transactions:  # the whole message was refused (group level)
            reason = str(report.reason_codes[0]) if report is not None and report.reason_codes else "FF01"
            try:
                ctx.store.record_ingest_rejection(submission_id, 0, [reason], end_to_end_id=None, at=now)
            except Exception as exc:  # noqa: BLE001 - retried by redelivery
                batch.fail(record, f"{type(exc).__name__}: {exc}")
            batch.answer(record, Answer(submission_id, msg_id, "", "", "RJCT", reason))
    return [c for c in candidates if c.record["messageId"] not in batch.failed]


def _tokenise(batch: _Batch, candidates: list[_Candidate]) -> list[tuple[str, str, str]]:
    """Compute every token of the batch (deterministic: no I/O once the token key is cached), build the
    payments, and return the vault requests that store the records (written beside the holds)."""
    ctx = batch.ctx
    requests: list[tuple[str, str, str]] = []
    # the guard knows them before any telemetry about these payments
    ctx.telemetry.personal_values([pair for c in candidates for pair in personal_values(c.tx)])
    for c in candidates:
        accounts = [(acct.iban, "iban") if acct.iban else (acct.other_id, "account_number")
                    for acct in (c.tx.debtor_account, c.tx.creditor_account)]
        # the data subject is the debtor, our customer: erasing them shreds what their payments carry
        subject = "cust:" + ctx.vault.deterministic_token(str(accounts[0][0]), accounts[0][1], tenant=ctx.tenant)
        for value, cls in accounts:
            requests.append((str(value), cls, subject))
        requests.append((screening_form(c.tx.debtor.name), "name", subject))
        requests.append((screening_form(c.tx.creditor.name), "name", subject))
    tokens = [ctx.vault.deterministic_token(value, cls, tenant=ctx.tenant) for value, cls, _ in requests]
    now = ctx.clock()
    for n, c in enumerate(candidates):
        dacct, cacct, dname, cname = tokens[4 * n:4 * n + 4]
        exponent = currency_exponent(c.tx.currency)
        if exponent is None:  # the validator accepted it, so this is a bug: fail loudly, never guess
            raise PoisonMessageError(f"no ISO 4217 exponent for {c.tx.currency}")
        c.payment = Payment(
            uetr=c.uetr, end_to_end_id=c.tx.end_to_end_id, msg_id=c.msg_id, scheme=c.scheme,
            amount_minor=to_minor_units(c.tx.amount, exponent), currency=c.tx.currency, exponent=exponent,
            debtor_account_token=dacct, creditor_account_token=cacct, debtor_name_token=dname,
            creditor_name_token=cname, debtor_agent=_agent_id(c.tx.debtor_agent),
            creditor_agent=_agent_id(c.tx.creditor_agent), accepted_at=now, submission_id=c.submission_id,
        )
    return requests


def _agent_id(agent: Any) -> str:
    return str(agent.bic) if agent.bic else f"GBDSC:{agent.member_id}"


def _authorise_and_route(batch: _Batch, candidates: list[_Candidate]) -> None:
    """Sanctions (tokens, then clear-name skeletons and a fuzzy score) and fraud, then the rail: decided in
    memory, written with the hold."""
    ctx = batch.ctx
    for c in candidates:
        payment = c.payment
        assert payment is not None
        if ctx.screen.hit(payment, names=(c.tx.debtor.name, c.tx.creditor.name)):  # clear names: in the boundary
            c.decision = "RR04"  # regulatory reason: sanctions list hit
        elif ctx.fraud.check(payment) is not None:
            c.decision = ctx.fraud.reason
        else:
            route = ctx.routing.route(payment)
            if route.rail is None:
                c.decision = route.reason or ctx.routing.unroutable_reason
            else:
                c.payment = Payment(**{**payment.__dict__, "rail": route.rail})


def _answer_stored(batch: _Batch, c: _Candidate, stored: StoredPayment) -> None:
    payment = c.payment
    assert payment is not None
    status = stored.status
    if status == "ACCP":  # held by an earlier delivery whose send did not go out: forward again
        batch.forward.append((c.record["messageId"], Payment(**{**payment.__dict__, "rail": stored.rail}).to_json()))
        return
    batch.answer(c.record, Answer(payment.submission_id, payment.msg_id, payment.end_to_end_id, payment.uetr,
                                  status, stored.reason))


def _write_one(batch: _Batch, c: _Candidate) -> None:
    ctx, payment, now = batch.ctx, c.payment, batch.ctx.clock()
    assert payment is not None
    with ctx.telemetry.span("authorise", [payment.uetr]):
        if c.decision is not None:
            try:
                stored = ctx.store.reject(payment, c.decision, at=now)
            except TransitionConflictError:  # another submission owns this UETR: a duplicate, refused
                _refuse_duplicate(batch, c, "DU03", now)
                return
            _answer_stored(batch, c, stored)
            return
        outcome = ctx.store.hold(payment, first_of_message=c.first_of_message, at=now)
    if outcome.kind == "held":
        batch.forward.append((c.record["messageId"], payment.to_json()))
        ctx.telemetry.status(Answer(payment.submission_id, payment.msg_id, payment.end_to_end_id, payment.uetr, "ACCP"))
    elif outcome.kind == "redelivery":
        assert outcome.stored is not None
        _answer_stored(batch, c, outcome.stored)
    elif outcome.kind == "duplicate":
        _refuse_duplicate(batch, c, str(outcome.reason), now)
    else:  # refused by the ledger: AM04, AC01, AM03
        try:
            stored = ctx.store.reject(payment, str(outcome.reason), at=now)
        except TransitionConflictError:
            _refuse_duplicate(batch, c, "DU03", now)
            return
        _answer_stored(batch, c, stored)


def _refuse_duplicate(batch: _Batch, c: _Candidate, reason: str, now: float) -> None:
    payment = c.payment
    assert payment is not None
    batch.ctx.store.record_ingest_rejection(payment.submission_id, c.index, [reason],
                                            end_to_end_id=payment.end_to_end_id, at=now)
    batch.answer(c.record, Answer(payment.submission_id, payment.msg_id, payment.end_to_end_id, "", "RJCT", reason))


def accept_handler(ctx: PipelineContext, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Ingest, authorise and route a batch of submissions; hold or refuse each payment; forward or answer.

    Examples:
        >>> accept_handler(ctx, {"Records": []})  # doctest: +SKIP
        {'batchItemFailures': []}
    """
    batch = _Batch(ctx, event.get("Records", []))
    uetrs: list[str] = []
    requests: list[tuple[str, str, str]] = []
    try:
        with ctx.telemetry.span("ingest", uetrs):
            candidates = _ingest(batch)
            uetrs.extend(c.uetr for c in candidates)
            if candidates:
                requests = _tokenise(batch, candidates)
    except SimulatedCrash:
        raise
    except Exception as exc:  # noqa: BLE001 - the vault is down or throttled: the whole batch comes back
        for record in batch.records:
            batch.fail(record, f"ingest: {type(exc).__name__}: {exc}")
        candidates = []
    with ctx.telemetry.span("route", uetrs):
        _authorise_and_route(batch, candidates)
    ctx.telemetry.step("accept.validated")

    def store_tokens() -> None:
        """The vault records of the batch's tokens, written beside the holds (both before any send)."""
        try:
            with ctx.telemetry.span("vault", uetrs):
                ctx.vault.tokenize_batch(requests, tenant=ctx.tenant, deterministic=True)
        except SimulatedCrash:
            raise
        except Exception as exc:  # noqa: BLE001 - nothing may be forwarded with its records unwritten
            for c in candidates:
                batch.fail(c.record, f"vault: {type(exc).__name__}: {exc}")

    def write(c: _Candidate | None) -> None:
        if c is None:
            store_tokens()
            return
        try:
            _write_one(batch, c)
        except (PoisonMessageError, TransitionConflictError) as exc:
            batch.fail(c.record, f"{type(exc).__name__}: {exc}")
        except SimulatedCrash:
            raise
        except Exception as exc:  # noqa: BLE001 - throttles, timeouts: retried by redelivery
            batch.fail(c.record, f"{type(exc).__name__}: {exc}")

    if candidates:
        ctx.parallel(write, [None, *candidates])
    ctx.telemetry.step("accept.recorded")
    batch.send("clear", batch.forward)
    ctx.telemetry.step("accept.forwarded")
    batch.send("answers", batch.answers)
    ctx.telemetry.step("accept.answered")
    for record in batch.records:
        if record["messageId"] in batch.failed and record["messageId"] not in batch.recorded:
            _record_failure(ctx, "accept", record, batch.failed[record["messageId"]])
    return batch.result()


# -- clear: the scheme, the decision, the settlement booking ----------------------------------------------
def _clear_one(batch: _Batch, record: Mapping[str, Any], payment: Payment, answer: SchemeAnswer | None,
               limit: float, booked: dict[str, list[Entry]]) -> None:
    ctx, now = batch.ctx, batch.ctx.clock()
    rail = ctx.routing.rails.get(payment.rail)
    with ctx.telemetry.span("clear", [payment.uetr]):
        try:
            if payment.rail == "internal":
                try:
                    stored = ctx.store.book_transfer(payment, at=now)
                except LookupError:
                    stored = ctx.store.release(payment, "AC01", at=now)  # creditor account unknown here
            elif answer is not None and answer.accepted and answer.seconds <= limit:
                stored = ctx.store.clear(payment, cycle=ctx.cycle(), at=now)
            else:
                timed_out = answer is None or answer.reason == "timeout" or answer.seconds > limit
                reason = (rail.timeout_reason if rail else "AB06") if timed_out else str(answer.reason)
                stored = ctx.store.release(payment, reason, at=now)
        except TransitionConflictError as exc:
            if exc.current is None:
                raise
            stored = exc.current  # decided by an earlier delivery: the first decision stands
    if stored.status == "ACSP" and stored.cycle:
        booked.setdefault(stored.cycle, []).append(
            Entry(stored.uetr, stored.amount_minor, stored.currency, stored.rail, stored.creditor_agent))
    batch.answer(record, Answer(payment.submission_id, payment.msg_id, payment.end_to_end_id, payment.uetr,
                                stored.status, stored.reason))


def clear_handler(ctx: PipelineContext, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Submit a batch to the scheme; decide each payment once (ACSP, ACSC or RJCT + release); book; answer.

    Examples:
        >>> clear_handler(ctx, {"Records": []})  # doctest: +SKIP
        {'batchItemFailures': []}
    """
    batch = _Batch(ctx, event.get("Records", []))
    work: list[tuple[Mapping[str, Any], Payment]] = []
    for record in batch.records:
        try:
            payment = Payment.from_json(record["body"])
            if not payment.rail or payment.rail not in ctx.routing.rails:
                raise PoisonMessageError(f"unknown rail {payment.rail!r}: route it first")
            work.append((record, payment))
        except PoisonMessageError as exc:
            batch.poison("clear", record, exc)
    external = [(r, p) for r, p in work if p.rail != "internal"]
    limits = {p.uetr: float(ctx.routing.rails[p.rail].time_limit_seconds) for _, p in work}
    answers: dict[str, SchemeAnswer] = {}
    if external:
        try:
            with ctx.telemetry.span("scheme", [p.uetr for _, p in external]):
                got = ctx.gateway.submit([p for _, p in external], time_limits=[limits[p.uetr] for _, p in external])
            answers = {p.uetr: a for (_, p), a in zip(external, got, strict=True)}
        except SimulatedCrash:
            raise
        except Exception as exc:  # noqa: BLE001 - the gateway itself failed: retry the batch later
            for record, _ in external:
                batch.fail(record, f"scheme gateway: {type(exc).__name__}: {exc}")
            work = [(r, p) for r, p in work if p.rail == "internal"]
    ctx.telemetry.step("clear.submitted")
    booked: dict[str, list[Entry]] = {}

    def decide(item: tuple[Mapping[str, Any], Payment]) -> None:
        record, payment = item
        try:
            _clear_one(batch, record, payment, answers.get(payment.uetr), limits[payment.uetr], booked)
        except SimulatedCrash:
            raise
        except Exception as exc:  # noqa: BLE001 - throttles, timeouts: retried by redelivery
            batch.fail(record, f"{type(exc).__name__}: {exc}")

    ctx.parallel(decide, work)
    ctx.telemetry.step("clear.decided")
    batch.send("answers", batch.answers)  # the sender's answer first: booking is off its path
    ctx.telemetry.step("clear.answered")
    with ctx.telemetry.span("settle", [e.uetr for entries in booked.values() for e in entries]):
        for cycle, entries in sorted(booked.items()):
            try:
                ctx.book.record_batch(cycle, entries)
            except Exception as exc:  # noqa: BLE001 - unbooked payments must come back: fail them
                uetrs = {e.uetr for e in entries}
                for record, payment in work:
                    if payment.uetr in uetrs:
                        batch.fail(record, f"settlement booking: {type(exc).__name__}")
    ctx.telemetry.step("clear.booked")
    for record in batch.records:
        if record["messageId"] in batch.failed and record["messageId"] not in batch.recorded:
            _record_failure(ctx, "clear", record, batch.failed[record["messageId"]])
    return batch.result()


_HANDLERS = {"accept": accept_handler, "clear": clear_handler}


def make_handlers(ctx: PipelineContext) -> dict[str, Callable[[Mapping[str, Any], Any], dict[str, Any]]]:
    """Handlers bound to ``ctx``, with Lambda's ``(event, context)`` signature, by queue name.

    Examples:
        >>> handlers = make_handlers(ctx)  # doctest: +SKIP
        >>> handlers["accept"]({"Records": []}, None)  # doctest: +SKIP
        {'batchItemFailures': []}
    """
    return {name: (lambda event, context=None, _h=handler: _h(ctx, event, context))
            for name, handler in _HANDLERS.items()}
