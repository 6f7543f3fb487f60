"""Settlement cycles: cleared payments are booked into the open cycle; closing a cycle nets positions per
participant, settles each rail's net amount on the ledger, writes a settlement report and marks every
payment ACSC. :func:`replay_cycle` rebuilds the positions from the event history and checks them against
the report and the ledger.

Table layout (``pk`` cycle id, ``sk``): ``ENTRY#<uetr>`` one cleared payment; ``REPORT`` the cycle's report.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from fasterpay.ledger import Ledger, Transfer

from .model import Payment
from .store import StatusConflictError, StatusStore

__all__ = ["OUR_BANK", "Position", "SettlementBook", "SettlementReport", "close_cycle", "replay_cycle",
           "settled_account", "settlement_account"]

#: Our participant id in positions (we are the debtor agent of every outgoing payment).
OUR_BANK = "US"


def settlement_account(rail: str, currency: str) -> str:
    """What we owe a rail's participants, accumulated by clearing until the cycle settles."""
    return f"settlement:{rail}:{currency}"


def settled_account(rail: str, currency: str) -> str:
    """Money handed over at settlement (the rail's central account, here on our books)."""
    return f"settled:{rail}:{currency}"


@dataclass(frozen=True)
class Position:
    """A participant's net position in one rail and currency: positive receives, negative pays."""

    rail: str
    currency: str
    participant: str
    net_minor: int


@dataclass(frozen=True)
class SettlementReport:
    """A closed cycle: payments, net positions and the ledger transfers that settled them."""

    cycle: str
    payments: int
    positions: tuple[Position, ...]
    settled: dict[str, int] = field(default_factory=dict)  # "rail:currency" -> minor units settled

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps({"cycle": self.cycle, "payments": self.payments, "settled": self.settled,
                           "positions": [p.__dict__ for p in self.positions]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SettlementReport:
        """Parse the stored form."""
        data = json.loads(text)
        return cls(data["cycle"], data["payments"], tuple(Position(**p) for p in data["positions"]),
                   {k: int(v) for k, v in data["settled"].items()})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class SettlementBook:
    """Cleared payments per cycle, one conditional put each (a redelivery books nothing twice).

    Examples:
        >>> book = SettlementBook(dynamodb, "fasterpay-settlement")  # doctest: +SKIP
        >>> book.record("C1", payment)  # doctest: +SKIP
        True
    """

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self.table = table

    def record(self, cycle: str, payment: Payment) -> bool:
        """Book a cleared payment into ``cycle``; False if it was booked before."""
        try:
            self._ddb.put_item(TableName=self.table, Item={
                "pk": {"S": cycle}, "sk": {"S": f"ENTRY#{payment.uetr}"}, "payment": {"S": payment.to_json()},
            }, ConditionExpression="attribute_not_exists(sk)")
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def entries(self, cycle: str) -> Iterator[Payment]:
        """The payments booked into ``cycle``."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": "pk = :c AND begins_with(sk, :e)",
            "ExpressionAttributeValues": {":c": {"S": cycle}, ":e": {"S": "ENTRY#"}}, "ConsistentRead": True,
        }
        while True:
            page = self._ddb.query(**kwargs)
            for item in page["Items"]:
                yield Payment.from_json(item["payment"]["S"])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save_report(self, report: SettlementReport) -> None:
        """Store the report (overwrites: closing again writes the same report)."""
        self._ddb.put_item(TableName=self.table, Item={
            "pk": {"S": report.cycle}, "sk": {"S": "REPORT"}, "report": {"S": report.to_json()}})

    def report(self, cycle: str) -> SettlementReport | None:
        """The stored report of a closed cycle."""
        item = self._ddb.get_item(TableName=self.table, Key={"pk": {"S": cycle}, "sk": {"S": "REPORT"}},
                                  ConsistentRead=True).get("Item")
        return None if item is None else SettlementReport.from_json(item["report"]["S"])


def net_positions(payments: list[Payment]) -> tuple[Position, ...]:
    """Net positions per (rail, currency, participant) from cleared payments.

    Examples:
        >>> net_positions([])
        ()
    """
    nets: dict[tuple[str, str, str], int] = defaultdict(int)
    for p in payments:
        nets[(p.rail, p.currency, OUR_BANK)] -= p.amount_minor
        creditor = OUR_BANK if p.rail == "internal" else p.creditor_agent
        nets[(p.rail, p.currency, creditor)] += p.amount_minor
    return tuple(Position(r, c, who, n) for (r, c, who), n in sorted(nets.items()))


def close_cycle(cycle: str, *, book: SettlementBook, ledger: Ledger, statuses: StatusStore,
                at: float) -> SettlementReport:
    """Close ``cycle``: net, settle each rail on the ledger (once, by transfer id), report, mark ACSC.

    Safe to run again after a crash: the settlement transfers and status changes are exactly-once.

    Examples:
        >>> report = close_cycle("C1", book=book, ledger=ledger, statuses=statuses, at=now)  # doctest: +SKIP
    """
    payments = list(book.entries(cycle))
    totals: dict[str, int] = defaultdict(int)
    for p in payments:
        if p.rail != "internal":
            totals[f"{p.rail}:{p.currency}"] += p.amount_minor
    for key, amount in sorted(totals.items()):
        rail, currency = key.split(":")
        if amount > 0:
            ledger.transfer(Transfer(f"settle:{cycle}:{rail}:{currency}"[:64], settlement_account(rail, currency),
                                     settled_account(rail, currency), amount, currency))
    report = SettlementReport(cycle, len(payments), net_positions(payments), dict(totals))
    book.save_report(report)
    for p in payments:
        try:
            statuses.advance(p.uetr, "ACSC", at=at, cycle=cycle)
        except StatusConflictError:
            pass  # already settled in an earlier run of this close
    return report


@dataclass(frozen=True)
class ReplayResult:
    """Positions rebuilt from the event history, and every difference found."""

    cycle: str
    payments: int
    positions: tuple[Position, ...]
    mismatches: tuple[str, ...]

    @property
    def matches(self) -> bool:
        """True when history, report and ledger agree."""
        return not self.mismatches


def replay_cycle(cycle: str, *, book: SettlementBook, ledger: Ledger) -> ReplayResult:
    """Rebuild ``cycle``'s positions from its booked events and check them against the report and ledger.

    Checks: positions equal the stored report's; each rail's total equals the ledger's settlement
    transfer; every booked payment has exactly one ``:clear`` transfer of the same amount in the journal.

    Examples:
        >>> replay_cycle("C1", book=book, ledger=ledger).matches  # doctest: +SKIP
        True
    """
    payments = list(book.entries(cycle))
    positions = net_positions(payments)
    problems: list[str] = []
    report = book.report(cycle)
    if report is None:
        problems.append(f"{cycle}: no settlement report")
    elif report.positions != positions:
        problems.append(f"{cycle}: report positions differ from the replayed history")
    journal = {t.transfer_id: t for t in ledger.journal()}
    totals: dict[str, int] = defaultdict(int)
    for p in payments:
        cleared = journal.get(f"{p.uetr}:clear")
        if cleared is None or cleared.amount_minor != p.amount_minor:
            problems.append(f"{p.uetr}: booked for settlement but no matching clearing transfer in the ledger")
        if f"{p.uetr}:release" in journal:
            problems.append(f"{p.uetr}: booked for settlement but its hold was also released")
        if p.rail != "internal":
            totals[f"{p.rail}:{p.currency}"] += p.amount_minor
    for key, amount in totals.items():
        rail, currency = key.split(":")
        settled = journal.get(f"settle:{cycle}:{rail}:{currency}"[:64])
        if settled is None or settled.amount_minor != amount:
            problems.append(f"{cycle} {key}: ledger settled {settled.amount_minor if settled else 0}, history {amount}")
    return ReplayResult(cycle, len(payments), positions, tuple(problems))
