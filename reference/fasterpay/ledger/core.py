"""A double-entry ledger on DynamoDB: every transfer is one ``TransactWriteItems``.

One transaction holds four items (five with an API idempotency key):

1. the debit: ``balance - amount`` on the debit account's balance item, on condition that the account
   exists, has the transfer's currency and (unless it may go negative) holds at least the amount;
2. the credit: ``balance + amount`` on the credit account's balance item (exists, same currency);
3. the transfer record, ``TRANSFER#<id>``: the journal entry and the transfer id's idempotency record,
   put on condition that the id is new; it carries the fingerprint of the transfer's content;
4. the outbox event, in the outbox table, which a relay later sends to SQS FIFO;
5. optionally, the completion of an API idempotency claim, on condition that its fence is current.

DynamoDB commits all of them or none. A retry of a posted transfer is cancelled at item 3, whose stored
content (returned by ``ReturnValuesOnConditionCheckFailure``) says whether it is the same transfer
(answer as before) or a reuse of the id for a different one (refused).

Table layout (partition key ``pk``): ``ACCT#<id>`` account metadata; ``BAL#<id>#<n>`` balance shard
``n``; ``TRANSFER#<id>`` journal. A hot account is opened with several shards: credits are spread over
them by the transfer id's hash, so no single item takes every write.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ..idempotency.fingerprint import fingerprint
from ..idempotency.store import TransactionalCompletion

from .model import (
    Crash,
    CurrencyMismatchError,
    InsufficientFundsError,
    InvalidTransferError,
    LedgerBusyError,
    LedgerError,
    OutboxEvent,
    Transfer,
    TransferIdReuseError,
    TransferResult,
    UnknownAccountError,
    check_currency,
    check_id,
    no_crash,
    shard_of,
)

__all__ = ["Account", "Balance", "Ledger", "LedgerTables", "Reconciliation", "create_ledger_tables"]

_MAX_SHARDS = 64
_DEBIT, _CREDIT, _RECORD, _EVENT, _COMPLETION = range(5)


@dataclass(frozen=True)
class LedgerTables:
    """The tables (and queue) one ledger uses; from the stack's outputs or :func:`create_ledger_tables`."""

    ledger: str
    outbox: str
    idempotency: str
    consumer: str
    queue_url: str = ""
    dead_letter_queue_url: str = ""


@dataclass(frozen=True)
class Account:
    account_id: str
    currency: str
    shards: int
    allow_negative: bool


@dataclass(frozen=True)
class Balance:
    account_id: str
    currency: str
    balance_minor: int
    by_shard: tuple[int, ...]


@dataclass(frozen=True)
class Reconciliation:
    """The ledger checked against its own journal."""

    transfers: int
    total_minor: int  # sum of every balance: 0 in a closed double-entry ledger
    mismatches: tuple[str, ...] = field(default=())  # accounts whose balance differs from the journal

    @property
    def balanced(self) -> bool:
        return self.total_minor == 0 and not self.mismatches


class Ledger:
    """Accounts and transfers; pass the DynamoDB client of the posting role.

    Examples:
        >>> ledger = Ledger(dynamodb, tables)  # doctest: +SKIP
        >>> ledger.open_account("settlement", "GBP", allow_negative=True)  # doctest: +SKIP
        >>> ledger.open_account("alice", "GBP")  # doctest: +SKIP
        >>> ledger.transfer(Transfer("e2e-1", "settlement", "alice", 10_000, "GBP"))  # doctest: +SKIP
    """

    def __init__(
        self,
        dynamodb: Any,
        tables: LedgerTables,
        *,
        outbox_shards: int = 8,
        clock: Callable[[], float] = time.time,
        crash: Crash = no_crash,
    ) -> None:
        if not 1 <= outbox_shards <= _MAX_SHARDS:
            raise ValueError(f"outbox_shards must be 1 to {_MAX_SHARDS}, got {outbox_shards}")
        self._ddb = dynamodb
        self.tables = tables
        self.outbox_shards = outbox_shards
        self.clock = clock
        self.crash = crash
        self._accounts: dict[str, Account] = {}

    # -- accounts -----------------------------------------------------------------------------------
    def open_account(
        self, account_id: str, currency: str, *, shards: int = 1, allow_negative: bool = False
    ) -> Account:
        """Open an account at balance 0 with ``shards`` balance items (all-or-nothing).

        Money enters only by transfer, so the sum of all balances stays 0: open one account that may go
        negative (``allow_negative=True``, for example the scheme settlement account) to fund the others.
        """
        check_id("account_id", account_id)
        check_currency(currency)
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= _MAX_SHARDS:
            raise InvalidTransferError(f"shards must be an int from 1 to {_MAX_SHARDS}, got {shards!r}")
        account = Account(account_id, currency, shards, allow_negative)
        now = self._now_iso()
        items = [{"Put": {
            "TableName": self.tables.ledger,
            "Item": {"pk": {"S": f"ACCT#{account_id}"}, "currency": {"S": currency}, "shards": {"N": str(shards)},
                     "allow_negative": {"BOOL": allow_negative}, "opened_at": {"S": now}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }}]
        items += [{"Put": {
            "TableName": self.tables.ledger,
            "Item": {"pk": {"S": _balance_pk(account_id, n)}, "account": {"S": account_id},
                     "currency": {"S": currency}, "balance": {"N": "0"}, "postings": {"N": "0"}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }} for n in range(shards)]
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _code(exc) == "TransactionCanceledException":
                raise LedgerError(f"account {account_id!r} exists already") from exc
            raise
        self._accounts[account_id] = account
        return account

    def account(self, account_id: str) -> Account:
        """An account's metadata (cached: currency, shards and the negative flag never change)."""
        check_id("account_id", account_id)
        cached = self._accounts.get(account_id)
        if cached is not None:
            return cached
        item = self._ddb.get_item(TableName=self.tables.ledger, Key={"pk": {"S": f"ACCT#{account_id}"}},
                                  ConsistentRead=True).get("Item")
        if item is None:
            raise UnknownAccountError(f"account {account_id!r} was never opened")
        account = Account(account_id, item["currency"]["S"], int(item["shards"]["N"]),
                          bool(item["allow_negative"]["BOOL"]))
        self._accounts[account_id] = account
        return account

    def balance(self, account_id: str) -> Balance:
        """The account's balance, summed over its shards (strongly consistent reads)."""
        account = self.account(account_id)
        keys = [{"pk": {"S": _balance_pk(account_id, n)}} for n in range(account.shards)]
        found: dict[str, int] = {}
        request: dict[str, Any] = {self.tables.ledger: {"Keys": keys, "ConsistentRead": True}}
        while request:
            answer = self._ddb.batch_get_item(RequestItems=request)
            for item in answer["Responses"].get(self.tables.ledger, []):
                found[item["pk"]["S"]] = int(item["balance"]["N"])
            request = answer.get("UnprocessedKeys") or {}
        by_shard = tuple(found[_balance_pk(account_id, n)] for n in range(account.shards))
        return Balance(account_id, account.currency, sum(by_shard), by_shard)

    # -- transfers ----------------------------------------------------------------------------------
    def transfer(
        self,
        transfer: Transfer,
        *,
        completion: TransactionalCompletion | None = None,
    ) -> TransferResult:
        """Post ``transfer`` exactly once; a retry gets the first answer with ``replayed=True``.

        ``completion`` (from ``DynamoDbIdempotencyStore.completion(claim)``) adds a fifth item that
        completes an API idempotency claim with this result, atomically with the postings.

        Raises:
            InsufficientFundsError, UnknownAccountError, CurrencyMismatchError, TransferIdReuseError:
                refused; nothing was posted.
            LeaseLostError: the completion's fence is stale (another attempt took over); nothing was posted.
            LedgerBusyError: contention or throttling; retry with the same transfer id.
        """
        debit = self.account(transfer.debit_account)
        credit = self.account(transfer.credit_account)
        for account in (debit, credit):
            if account.currency != transfer.currency:
                raise CurrencyMismatchError(
                    f"account {account.account_id!r} holds {account.currency}, not {transfer.currency}")
        credit_shard = shard_of(transfer.transfer_id, credit.shards)
        first = shard_of(f"{transfer.transfer_id}/debit", debit.shards)
        for attempt in range(debit.shards):  # a sharded debit tries each shard once
            debit_shard = (first + attempt) % debit.shards
            result = TransferResult(
                transfer_id=transfer.transfer_id, debit_account=debit.account_id,
                credit_account=credit.account_id, amount_minor=transfer.amount_minor,
                currency=transfer.currency, posted_at=self._now_iso(),
                event_id=f"TransferPosted:{transfer.transfer_id}", debit_shard=debit_shard,
                credit_shard=credit_shard,
            )
            items = self._transfer_items(transfer, debit, result)
            if completion is not None:
                items.append(completion.item(result.as_response()))
            try:
                self._ddb.transact_write_items(TransactItems=items)
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    raise
                outcome = self._explain(exc, transfer, debit, completion)
                if outcome is None:
                    continue  # this shard cannot cover the amount: try the next one
                return outcome
            self.crash("posted")
            return result
        raise InsufficientFundsError(
            f"{debit.account_id!r} cannot cover {transfer.amount_minor} {transfer.currency}"
            + (f" from any one of its {debit.shards} shards" if debit.shards > 1 else ""))

    def _transfer_items(self, transfer: Transfer, debit: Account, result: TransferResult) -> list[dict[str, Any]]:
        amount = {"N": str(transfer.amount_minor)}
        currency = {"S": transfer.currency}
        debit_condition = "attribute_exists(pk) AND currency = :ccy"
        if not debit.allow_negative:
            debit_condition += " AND balance >= :amount"
        record = {key: {"S": str(value)} for key, value in result.as_response().items()}
        record.update({
            "pk": {"S": f"TRANSFER#{transfer.transfer_id}"},
            "amount_minor": {"N": str(transfer.amount_minor)},
            "debit_shard": {"N": str(result.debit_shard)},
            "credit_shard": {"N": str(result.credit_shard)},
            "reference": {"S": transfer.reference},
            "fingerprint": {"S": fingerprint(transfer.payload())},
        })
        event = OutboxEvent.transfer_posted(result)
        posted_ms = int(self.clock() * 1000)
        return [
            {"Update": {
                "TableName": self.tables.ledger,
                "Key": {"pk": {"S": _balance_pk(debit.account_id, result.debit_shard)}},
                "UpdateExpression": "SET balance = balance - :amount, postings = postings + :one",
                "ConditionExpression": debit_condition,
                "ExpressionAttributeValues": {":amount": amount, ":ccy": currency, ":one": {"N": "1"}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }},
            {"Update": {
                "TableName": self.tables.ledger,
                "Key": {"pk": {"S": _balance_pk(transfer.credit_account, result.credit_shard)}},
                "UpdateExpression": "SET balance = balance + :amount, postings = postings + :one",
                "ConditionExpression": "attribute_exists(pk) AND currency = :ccy",
                "ExpressionAttributeValues": {":amount": amount, ":ccy": currency, ":one": {"N": "1"}},
            }},
            {"Put": {
                "TableName": self.tables.ledger,
                "Item": record,
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }},
            {"Put": {
                "TableName": self.tables.outbox,
                "Item": {
                    # sharded by message group, so one account's events stay in posting-time order
                    "pk": {"S": f"OUTBOX#{shard_of(event.group, self.outbox_shards)}"},
                    "sk": {"S": f"{posted_ms:015d}#{event.event_id}"},
                    "event_id": {"S": event.event_id}, "type": {"S": event.type},
                    "group": {"S": event.group}, "body": {"S": event.body},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }},
        ]

    def _explain(
        self, exc: ClientError, transfer: Transfer, debit: Account, completion: TransactionalCompletion | None
    ) -> TransferResult | None:
        """Turn a cancelled transaction into an answer, an error, or None (try the next debit shard)."""
        reasons = exc.response.get("CancellationReasons") or []
        codes = [str(r.get("Code", "None")) for r in reasons]
        if not codes:
            raise LedgerError(f"transaction cancelled without reasons: {exc}") from exc
        if any(code in ("TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded")
               for code in codes):
            raise LedgerBusyError(f"transfer {transfer.transfer_id!r} met contention ({codes}): retry") from exc
        if completion is not None and len(codes) > _COMPLETION and codes[_COMPLETION] == "ConditionalCheckFailed":
            raise completion.lost() from exc
        if codes[_RECORD] == "ConditionalCheckFailed":
            stored = reasons[_RECORD].get("Item") or self._journal_item(transfer.transfer_id)
            if stored["fingerprint"]["S"] != fingerprint(transfer.payload()):
                raise TransferIdReuseError(
                    f"transfer id {transfer.transfer_id!r} was posted before with different content") from exc
            return _result_from_item(stored, replayed=True)
        if codes[_DEBIT] == "ConditionalCheckFailed":
            item = reasons[_DEBIT].get("Item")
            if item is None:
                raise UnknownAccountError(f"account {transfer.debit_account!r} has no balance item") from exc
            if item["currency"]["S"] != transfer.currency:
                raise CurrencyMismatchError(
                    f"account {transfer.debit_account!r} is not in {transfer.currency}") from exc
            if debit.shards > 1:
                return None
            raise InsufficientFundsError(
                f"{transfer.debit_account!r} cannot cover {transfer.amount_minor} {transfer.currency}") from exc
        if codes[_CREDIT] == "ConditionalCheckFailed":
            raise UnknownAccountError(f"account {transfer.credit_account!r} cannot take the credit") from exc
        raise LedgerError(f"transfer {transfer.transfer_id!r} was cancelled: {codes}") from exc

    def get_transfer(self, transfer_id: str) -> TransferResult | None:
        """The posted transfer, or None."""
        check_id("transfer_id", transfer_id)
        item = self._journal_item(transfer_id)
        return None if item is None else _result_from_item(item, replayed=False)

    def _journal_item(self, transfer_id: str) -> dict[str, Any] | None:
        return self._ddb.get_item(TableName=self.tables.ledger, Key={"pk": {"S": f"TRANSFER#{transfer_id}"}},
                                  ConsistentRead=True).get("Item")

    # -- reconciliation -----------------------------------------------------------------------------
    def journal(self) -> Iterator[TransferResult]:
        """Every posted transfer (a Scan: an auditor's job, not the posting path's)."""
        for item in _scan(self._ddb, self.tables.ledger):
            if item["pk"]["S"].startswith("TRANSFER#"):
                yield _result_from_item(item, replayed=False)

    def reconcile(self) -> Reconciliation:
        """Check that every balance equals its journal's net postings, and that all balances sum to 0."""
        expected: dict[str, int] = defaultdict(int)
        transfers = 0
        balances: dict[str, int] = defaultdict(int)
        for item in _scan(self._ddb, self.tables.ledger):
            pk = item["pk"]["S"]
            if pk.startswith("TRANSFER#"):
                transfers += 1
                amount = int(item["amount_minor"]["N"])
                expected[item["debit_account"]["S"]] -= amount
                expected[item["credit_account"]["S"]] += amount
            elif pk.startswith("BAL#"):
                balances[item["account"]["S"]] += int(item["balance"]["N"])
        mismatches = tuple(sorted(
            f"{account}: balance {balances.get(account, 0)}, journal {expected.get(account, 0)}"
            for account in set(expected) | set(balances)
            if balances.get(account, 0) != expected.get(account, 0)
        ))
        return Reconciliation(transfers, sum(balances.values()), mismatches)

    def _now_iso(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")


def _balance_pk(account_id: str, shard: int) -> str:
    return f"BAL#{account_id}#{shard}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _result_from_item(item: Mapping[str, Any], *, replayed: bool) -> TransferResult:
    return TransferResult(
        transfer_id=item["transfer_id"]["S"], debit_account=item["debit_account"]["S"],
        credit_account=item["credit_account"]["S"], amount_minor=int(item["amount_minor"]["N"]),
        currency=item["currency"]["S"], posted_at=item["posted_at"]["S"], event_id=item["event_id"]["S"],
        debit_shard=int(item["debit_shard"]["N"]), credit_shard=int(item["credit_shard"]["N"]),
        replayed=replayed,
    )


def _scan(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kwargs)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def create_ledger_tables(dynamodb: Any, sqs: Any | None, prefix: str, *, queue: bool = True) -> LedgerTables:
    """Create the ledger's tables (and FIFO queue, if ``sqs`` is given) as the template does.

    For tests and for benchmarks that rotate tables (moto's transactions slow as tables grow).

    Examples:
        >>> tables = create_ledger_tables(env.client("dynamodb"), env.client("sqs"), "bench-1")  # doctest: +SKIP
    """
    from ..idempotency.store import create_idempotency_table

    def table(name: str, *, sort_key: bool = False, ttl: bool = False) -> str:
        if ttl:
            return create_idempotency_table(dynamodb, name)
        attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
        schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
        if sort_key:
            attributes.append({"AttributeName": "sk", "AttributeType": "S"})
            schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=attributes,
                              KeySchema=schema)
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        return name

    queue_url = dlq_url = ""
    if sqs is not None and queue:
        dlq_url = sqs.create_queue(QueueName=f"{prefix}-ledger-events-dlq.fifo",
                                   Attributes={"FifoQueue": "true"})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(QueueName=f"{prefix}-ledger-events.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "false", "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        })["QueueUrl"]
    return LedgerTables(
        ledger=table(f"{prefix}-ledger"),
        outbox=table(f"{prefix}-ledger-outbox", sort_key=True),
        idempotency=table(f"{prefix}-idempotency", ttl=True),
        consumer=table(f"{prefix}-ledger-consumer", ttl=True),
        queue_url=queue_url,
        dead_letter_queue_url=dlq_url,
    )
