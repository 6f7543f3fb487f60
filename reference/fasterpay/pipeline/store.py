"""The pipeline's durable state: one payment item per payment, written by conditional transitions only.

Tables (both from the templates):

* the **payments table** (partition key ``pk``): ``PAY#<uetr>`` the payment, its status and its hold (the
  payment item is the journal entry of its own hold: see :func:`~.model.inflight_account`);
  ``MSG#<MsgId>`` and ``E2E#<EndToEndId>`` duplicate guards; ``REJ#<submission>#<n>`` a transaction
  refused at ingest; ``FAIL#<queue>#<messageId>`` why a queue message failed; and the settlement items
  of :mod:`.settlement`;
* the **ledger table** of :mod:`fasterpay.ledger` (``ACCT#``, ``BAL#``, ``TRANSFER#``): customer balances.

Every status change is a conditional write from an expected prior state, so a redelivered message can
never move a status backwards or apply an effect twice:

=========================  ===============================================================  =========
transition                 the write (one call)                                            condition
=========================  ===============================================================  =========
(new) -> ACCP, hold        TransactWriteItems: put PAY, debit the customer, put E2E (+MSG)  all new
(new) -> RJCT              PutItem PAY                                                     new
ACCP -> ACSP (cycle C)     UpdateItem PAY                                                  ACCP
ACCP -> ACSC (book)        TransactWriteItems: PAY, credit creditor, debit inflight         ACCP
ACCP -> RJCT, release      TransactWriteItems: PAY, credit the customer back                ACCP
=========================  ===============================================================  =========

A write whose condition fails returns the stored item (``ReturnValuesOnConditionCheckFailure``), so the
caller learns in the same call whether it met its own earlier write (a redelivery: answer as before) or
another outcome (the first outcome stands). ACSC of a cleared payment is not a write per payment: its
settlement cycle's record says so (see :mod:`.settlement`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from .model import Payment, inflight_account

__all__ = [
    "FINAL_STATUSES",
    "HoldOutcome",
    "PaymentStore",
    "StoredPayment",
    "TransitionConflictError",
    "WriteFence",
]

#: Statuses a payment can rest in. ACSP is final for the sender's answer; ACSC follows at settlement.
FINAL_STATUSES = frozenset({"ACSC", "RJCT"})
_CCF = "ConditionalCheckFailed"


class WriteFence(Protocol):
    """A write fence (for example :class:`fasterpay.resilience.fencing.FenceGuard`): with one, every write of
    the store is a transaction that also carries ``condition_check()``; when that check cancels it,
    ``fenced_out(reason)`` returns the error to raise (the store raises nothing else then).

    Declared here so ``pipeline/`` copies without ``resilience/``.
    """

    def condition_check(self) -> dict[str, Any]: ...

    def fenced_out(self, reason: Mapping[str, Any]) -> Exception | None: ...


class _ItemConditionFailed(Exception):
    """Inside the store: a one-item write whose own condition failed; ``item`` is the item as it was."""

    def __init__(self, item: Mapping[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


class TransitionConflictError(Exception):
    """The payment is not in the status this transition starts from; nothing was written.

    ``current`` is the stored payment: a redelivery finds its own earlier outcome there.
    """

    def __init__(self, message: str, current: StoredPayment | None) -> None:
        super().__init__(message)
        self.current = current


@dataclass(frozen=True)
class StoredPayment:
    """A payment item as stored: enough to answer, settle and reconcile without the queue message."""

    uetr: str
    status: str
    submission_id: str
    msg_id: str
    end_to_end_id: str
    scheme: str
    rail: str
    amount_minor: int
    currency: str
    debtor_account: str
    creditor_account: str
    creditor_agent: str
    hold: str  # "held", "released", "credited" (a book transfer's creditor was paid) or "none"
    reason: str | None = None
    cycle: str | None = None
    accepted_at: float = 0.0
    decided_at: float | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StoredPayment:
        """Parse a ``PAY#`` item."""
        return cls(
            uetr=item["pk"]["S"][4:], status=item["st"]["S"], submission_id=item["sub"]["S"],
            msg_id=item["msg"]["S"], end_to_end_id=item["e2e"]["S"], scheme=item["sch"]["S"],
            rail=item.get("rail", {}).get("S", ""), amount_minor=int(item["amt"]["N"]), currency=item["ccy"]["S"],
            debtor_account=item["dacct"]["S"],
            creditor_account=item["cacct"]["S"], creditor_agent=item["cagt"]["S"], hold=item["hld"]["S"],
            reason=item.get("rsn", {}).get("S"), cycle=item.get("cyc", {}).get("S"),
            accepted_at=float(item["at"]["N"]),
            decided_at=float(item["dat"]["N"]) if "dat" in item else None,
        )


@dataclass(frozen=True)
class HoldOutcome:
    """What the hold transaction did.

    ``kind`` is one of:

    * ``"held"``: recorded ACCP and debited the customer, just now;
    * ``"redelivery"``: this submission recorded the payment before; ``stored`` is that record;
    * ``"duplicate"``: another submission owns the message, the UETR or the end-to-end id (``reason``
      DU01, DU03 or DU04); nothing was written;
    * ``"refused"``: the debit was refused (``reason`` AM04 insufficient funds, AC01 unknown account,
      AM03 account in another currency); nothing was written.
    """

    kind: str
    reason: str | None = None
    stored: StoredPayment | None = None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class PaymentStore:
    """Payment items and their conditional transitions (the pipeline's only writes per payment).

    Pass the DynamoDB client of the pipeline role, the payments table and the ledger table. With a
    ``fence`` (a :class:`WriteFence`), every transition is one transaction that also carries the fence's
    ``ConditionCheck`` (``clear`` and ``reject``, single-item writes without one, become two-item
    transactions; ``clear`` then reads the item back), and a write the fence cancels raises its error.

    Examples:
        >>> store = PaymentStore(dynamodb, "fasterpay-payments", "fasterpay-ledger")  # doctest: +SKIP
        >>> store.hold(payment, first_of_message=True, at=now).kind  # doctest: +SKIP
        'held'
    """

    def __init__(self, dynamodb: Any, table: str, ledger_table: str, fence: WriteFence | None = None) -> None:
        self._ddb = dynamodb
        self.table = table
        self.ledger_table = ledger_table
        self.fence = fence

    def _fenced(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``items`` with the fence's ConditionCheck appended (last, so the other indexes do not move)."""
        return items if self.fence is None else [*items, self.fence.condition_check()]

    def _raise_if_fenced(self, exc: ClientError) -> None:
        """Raise the fence's error when the fence's check (the last item) cancelled the transaction."""
        if self.fence is None:
            return
        reasons = exc.response.get("CancellationReasons") or []
        if reasons:
            error = self.fence.fenced_out(reasons[-1])
            if error is not None:
                raise error from exc

    def _write_one(self, action: str, request: dict[str, Any]) -> Mapping[str, Any] | None:
        """One conditional ``Put`` or ``Update`` of one item: a plain ``PutItem``/``UpdateItem`` (an update
        returns the new item), or with a fence one transaction that also carries its check (returns None).

        Raises:
            _ItemConditionFailed: the item's own condition failed (``item``: the item as it was, if any).
            Exception: the fence's error when the fence cancelled the write; any other error as it came.
        """
        if self.fence is None:
            try:
                if action == "Put":
                    self._ddb.put_item(**request)
                    return None
                return self._ddb.update_item(**request, ReturnValues="ALL_NEW")["Attributes"]
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                raise _ItemConditionFailed(exc.response.get("Item")) from exc
        try:
            self._ddb.transact_write_items(TransactItems=self._fenced([{action: request}]))
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            self._raise_if_fenced(exc)
            reasons = exc.response.get("CancellationReasons") or []
            if not reasons or reasons[0].get("Code") != _CCF:
                raise
            raise _ItemConditionFailed(reasons[0].get("Item")) from exc
        return None

    # -- writes ----------------------------------------------------------------------------------
    def hold(self, payment: Payment, *, first_of_message: bool, at: float) -> HoldOutcome:
        """Record ``payment`` as ACCP and hold its amount on the debtor's account, in one transaction.

        The transaction also claims the end-to-end id and (for the first transaction of a message) the
        MsgId for this submission, so a duplicate submission is refused by the same call.
        """
        sub = {"S": payment.submission_id}
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": self._item(payment, "ACCP", "held", at),
                     "ConditionExpression": "attribute_not_exists(pk)",
                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Update": {"TableName": self.ledger_table,
                        "Key": {"pk": {"S": f"BAL#{payment.debtor_ledger_account}#0"}},
                        "UpdateExpression": "SET balance = balance - :a, postings = postings + :one",
                        "ConditionExpression": "attribute_exists(pk) AND currency = :ccy AND balance >= :a",
                        "ExpressionAttributeValues": {":a": {"N": str(payment.amount_minor)},
                                                      ":ccy": {"S": payment.currency}, ":one": {"N": "1"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Put": {"TableName": self.table,
                     "Item": {"pk": {"S": f"E2E#{payment.end_to_end_id}"}, "sub": sub, "uetr": {"S": payment.uetr}},
                     "ConditionExpression": "attribute_not_exists(pk) OR #sub = :sub",
                     "ExpressionAttributeNames": {"#sub": "sub"}, "ExpressionAttributeValues": {":sub": sub},
                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        ]
        if first_of_message:
            items.append({"Put": {
                "TableName": self.table, "Item": {"pk": {"S": f"MSG#{payment.msg_id}"}, "sub": sub},
                "ConditionExpression": "attribute_not_exists(pk) OR #sub = :sub",
                "ExpressionAttributeNames": {"#sub": "sub"}, "ExpressionAttributeValues": {":sub": sub},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}})
        try:
            self._ddb.transact_write_items(TransactItems=self._fenced(items))
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            self._raise_if_fenced(exc)
            return self._explain_hold(exc, payment)
        return HoldOutcome("held")

    def _explain_hold(self, exc: ClientError, payment: Payment) -> HoldOutcome:
        reasons = exc.response.get("CancellationReasons") or []
        codes = [str(r.get("Code", "None")) for r in reasons]
        if not codes or any(c not in (_CCF, "None") for c in codes):
            raise exc  # throttling, conflict or validation: the message is retried by redelivery
        pay, debit, e2e = reasons[0], reasons[1], reasons[2]
        if pay.get("Code") == _CCF:
            stored = self._stored(pay.get("Item")) or self.get(payment.uetr)
            if stored is not None and stored.submission_id == payment.submission_id:
                return HoldOutcome("redelivery", stored=stored)
            if len(reasons) > 3 and reasons[3].get("Code") == _CCF:
                return HoldOutcome("duplicate", "DU01")
            return HoldOutcome("duplicate", "DU03", stored)
        if len(reasons) > 3 and reasons[3].get("Code") == _CCF:
            return HoldOutcome("duplicate", "DU01")
        if e2e.get("Code") == _CCF:
            return HoldOutcome("duplicate", "DU04")
        if debit.get("Code") == _CCF:
            account = debit.get("Item")
            if account is None:
                return HoldOutcome("refused", "AC01")
            if account.get("currency", {}).get("S") != payment.currency:
                return HoldOutcome("refused", "AM03")
            return HoldOutcome("refused", "AM04")
        raise exc

    def reject(self, payment: Payment, reason: str, *, at: float) -> StoredPayment:
        """Record ``payment`` as RJCT before any hold; on a redelivery, return the first record.

        Raises:
            TransitionConflictError: another submission recorded this UETR (not this one's to answer).
        """
        try:
            self._write_one("Put", {"TableName": self.table, "Item": self._item(payment, "RJCT", "none", at, reason=reason),
                                    "ConditionExpression": "attribute_not_exists(pk)",
                                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})
        except _ItemConditionFailed as failed:
            stored = self._stored(failed.item) or self.get(payment.uetr)
            if stored is None or stored.submission_id != payment.submission_id:
                raise TransitionConflictError(f"{payment.uetr} belongs to another submission", stored) from failed.__cause__
            return stored
        return self._parsed(payment, "RJCT", "none", at, reason=reason)

    def clear(self, payment: Payment, *, cycle: str, at: float) -> StoredPayment:
        """ACCP -> ACSP: cleared by the scheme, to settle in ``cycle``.

        Raises:
            TransitionConflictError: the payment is not ACCP; ``current`` is its record (ACSP from an
                earlier delivery, whose cycle stands; or RJCT, whose decision stands).
        """
        try:
            written = self._write_one("Update", {
                "TableName": self.table, "Key": {"pk": {"S": f"PAY#{payment.uetr}"}},
                "UpdateExpression": "SET st = :new, cyc = :c, rail = :r, dat = :at", "ConditionExpression": "st = :from",
                "ExpressionAttributeValues": {":new": {"S": "ACSP"}, ":from": {"S": "ACCP"}, ":c": {"S": cycle},
                                              ":r": {"S": payment.rail}, ":at": {"N": repr(at)}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})
        except _ItemConditionFailed as failed:
            current = self._stored(failed.item) or self.get(payment.uetr)
            raise TransitionConflictError(f"{payment.uetr} is not ACCP", current) from failed.__cause__
        stored = StoredPayment.from_item(written) if written is not None else self.get(payment.uetr)
        assert stored is not None
        return stored

    def book_transfer(self, payment: Payment, *, at: float) -> StoredPayment:
        """ACCP -> ACSC for a book transfer: credit the creditor, debit the in-flight account, at once.

        Raises:
            TransitionConflictError: the payment is not ACCP (see :meth:`clear`).
            LookupError: the creditor's account does not exist here (or is in another currency).
        """
        amount = {"N": str(payment.amount_minor)}
        ccy = {"S": payment.currency}
        items = [
            self._transition(payment.uetr, "ACSC", at, hold="credited", rail=payment.rail),
            {"Update": {"TableName": self.ledger_table, "Key": {"pk": {"S": f"BAL#{payment.creditor_ledger_account}#0"}},
                        "UpdateExpression": "SET balance = balance + :a, postings = postings + :one",
                        "ConditionExpression": "attribute_exists(pk) AND currency = :ccy",
                        "ExpressionAttributeValues": {":a": amount, ":ccy": ccy, ":one": {"N": "1"}}}},
            {"Update": {"TableName": self.ledger_table,
                        "Key": {"pk": {"S": f"BAL#{inflight_account(payment.rail, payment.currency)}#0"}},
                        "UpdateExpression": "SET balance = balance - :a, postings = postings + :one",
                        "ConditionExpression": "attribute_exists(pk) AND currency = :ccy",
                        "ExpressionAttributeValues": {":a": amount, ":ccy": ccy, ":one": {"N": "1"}}}},
        ]
        self._transact_transition(payment.uetr, items, what="book transfer")
        stored = self.get(payment.uetr)
        assert stored is not None
        return stored

    def release(self, payment: Payment, reason: str, *, at: float) -> StoredPayment:
        """ACCP -> RJCT: the scheme refused (or timed out); credit the hold back, atomically.

        Raises:
            TransitionConflictError: the payment is not ACCP (see :meth:`clear`).
        """
        items = [
            self._transition(payment.uetr, "RJCT", at, hold="released", reason=reason, rail=payment.rail),
            {"Update": {"TableName": self.ledger_table,
                        "Key": {"pk": {"S": f"BAL#{payment.debtor_ledger_account}#0"}},
                        "UpdateExpression": "SET balance = balance + :a, postings = postings + :one",
                        "ConditionExpression": "attribute_exists(pk) AND currency = :ccy",
                        "ExpressionAttributeValues": {":a": {"N": str(payment.amount_minor)},
                                                      ":ccy": {"S": payment.currency}, ":one": {"N": "1"}}}},
        ]
        self._transact_transition(payment.uetr, items, what="release")
        return self._parsed(payment, "RJCT", "released", at, reason=reason)

    def _transition(self, uetr: str, status: str, at: float, *, hold: str, reason: str | None = None,
                    rail: str = "") -> dict[str, Any]:
        values: dict[str, Any] = {":new": {"S": status}, ":from": {"S": "ACCP"}, ":h": {"S": hold},
                                  ":at": {"N": repr(at)}, ":r": {"S": rail}}
        update = "SET st = :new, hld = :h, dat = :at, rail = :r"
        if reason is not None:
            update += ", rsn = :rsn"
            values[":rsn"] = {"S": reason}
        return {"Update": {"TableName": self.table, "Key": {"pk": {"S": f"PAY#{uetr}"}},
                           "UpdateExpression": update, "ConditionExpression": "st = :from",
                           "ExpressionAttributeValues": values, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}

    def _transact_transition(self, uetr: str, items: list[dict[str, Any]], *, what: str) -> None:
        try:
            self._ddb.transact_write_items(TransactItems=self._fenced(items))
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            self._raise_if_fenced(exc)
            reasons = exc.response.get("CancellationReasons") or []
            codes = [str(r.get("Code", "None")) for r in reasons]
            if not codes or any(c not in (_CCF, "None") for c in codes):
                raise
            if codes[0] == _CCF:
                current = self._stored(reasons[0].get("Item")) or self.get(uetr)
                raise TransitionConflictError(f"{uetr} is not ACCP ({what})", current) from exc
            raise LookupError(f"{uetr}: {what} refused by the ledger ({codes[1:]}): unknown account") from exc

    # -- failure log and ingest rejections ---------------------------------------------------------
    def record_ingest_rejection(self, submission_id: str, index: int, reasons: list[str], *,
                                end_to_end_id: str | None, at: float) -> None:
        """Keep why transaction ``index`` of a submission was refused at ingest (idempotent overwrite)."""
        item: dict[str, Any] = {"pk": {"S": f"REJ#{submission_id}#{index}"}, "rsn": {"S": ",".join(reasons)},
                                "at": {"N": repr(at)}}
        if end_to_end_id:
            item["e2e"] = {"S": end_to_end_id[:35]}
        self._ddb.put_item(TableName=self.table, Item=item)

    def record_failure(self, queue: str, message_id: str, reason: str, receive_count: int) -> None:
        """Why a queue message failed (read beside the dead-letter queue)."""
        self._ddb.put_item(TableName=self.table, Item={
            "pk": {"S": f"FAIL#{queue}#{message_id}"}, "rsn": {"S": reason[:500]},
            "n": {"N": str(receive_count)},
        })

    def failure(self, queue: str, message_id: str) -> str | None:
        """The last recorded failure reason of a queue message."""
        item = self._ddb.get_item(TableName=self.table, Key={"pk": {"S": f"FAIL#{queue}#{message_id}"}},
                                  ConsistentRead=True).get("Item")
        return None if item is None else str(item["rsn"]["S"])

    # -- reads ------------------------------------------------------------------------------------
    def get(self, uetr: str) -> StoredPayment | None:
        """The payment's record, or None (a strongly consistent read)."""
        item = self._ddb.get_item(TableName=self.table, Key={"pk": {"S": f"PAY#{uetr}"}},
                                  ConsistentRead=True).get("Item")
        return self._stored(item)

    def payments(self) -> Iterator[StoredPayment]:
        """Every payment (a Scan: for reconciliation, never the posting path)."""
        for item in self.scan():
            if item["pk"]["S"].startswith("PAY#"):
                yield StoredPayment.from_item(item)

    def ingest_rejections(self) -> Iterator[dict[str, Any]]:
        """Every transaction refused at ingest: submission key and reasons."""
        for item in self.scan():
            if item["pk"]["S"].startswith("REJ#"):
                yield {"key": item["pk"]["S"][4:], "reasons": item["rsn"]["S"].split(","),
                       "end_to_end_id": item.get("e2e", {}).get("S")}

    def scan(self) -> Iterator[dict[str, Any]]:
        """Every item of the payments table (consistent, paginated)."""
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self._ddb.scan(**kwargs)
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- item shapes ------------------------------------------------------------------------------
    @staticmethod
    def _item(payment: Payment, status: str, hold: str, at: float, *, reason: str | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": {"S": f"PAY#{payment.uetr}"}, "st": {"S": status}, "sub": {"S": payment.submission_id},
            "msg": {"S": payment.msg_id}, "e2e": {"S": payment.end_to_end_id}, "sch": {"S": payment.scheme},
            "amt": {"N": str(payment.amount_minor)}, "ccy": {"S": payment.currency},
            "dacct": {"S": payment.debtor_ledger_account},
            "cacct": {"S": payment.creditor_ledger_account}, "cagt": {"S": payment.creditor_agent},
            "hld": {"S": hold}, "at": {"N": repr(at)},
        }
        if payment.rail:
            item["rail"] = {"S": payment.rail}
        if reason is not None:
            item["rsn"] = {"S": reason}
        return item

    def _parsed(self, payment: Payment, status: str, hold: str, at: float, *, reason: str | None = None) -> StoredPayment:
        return StoredPayment.from_item(self._item(payment, status, hold, at, reason=reason))

    @staticmethod
    def _stored(item: Mapping[str, Any] | None) -> StoredPayment | None:
        return None if not item or "st" not in item else StoredPayment.from_item(item)
