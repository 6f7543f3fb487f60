"""Settlement cycles: cleared payments are booked into a cycle; closing it nets positions, settles each
rail's total on the ledger once, writes the report and marks the cycle SETTLED, which makes every ACSP
payment of the cycle ACSC. :func:`replay_cycle` rebuilds the positions from the booked entries and checks
them against the report, the ledger and the payment records.

Settlement table layout (``pk`` cycle id, ``sk``):

* ``ENTRY#<key>``: the payments one clearing batch cleared into the cycle (``key`` is a hash of their
  UETRs, so a redelivered batch overwrites its own entry); a payment may appear in more than one entry
  (a redelivery in a different batch): the cycle's set of payments is the union *by UETR*;
* ``STATE``: ``CLOSING`` then ``SETTLED``; ``REPORT``: the stored report.

A payment's cycle is fixed once, in the same conditional write that makes it ACSP (see
:meth:`~.store.PaymentStore.clear`), so a redelivery after a cycle boundary books it into its own cycle
again, never into the next one. :func:`close_cycle` is resumable step by step: after a crash or a throttle
the next run reads ``STATE`` and ``REPORT`` and goes on from where the last one stopped; the ledger
transfers are exactly-once by transfer id. Close a cycle only after its clearing handlers have finished
(the cycle's end plus the clearing function's timeout): a batch still running could book into it late,
which :func:`replay_cycle` reports.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..ledger import Ledger, Transfer

from .model import inflight_account, settled_account

__all__ = [
    "OUR_BANK",
    "Entry",
    "Position",
    "ReplayResult",
    "ReportRebuildRefusedError",
    "SettlementBook",
    "SettlementReport",
    "close_cycle",
    "net_positions",
    "position_differences",
    "rebuild_report",
    "replay_cycle",
    "settlement_transfer_id",
]

#: Our participant id in positions (we are the debtor agent of every outgoing payment).
OUR_BANK = "US"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class Entry:
    """One cleared payment as settlement needs it."""

    uetr: str
    amount_minor: int
    currency: str
    rail: str
    creditor_agent: str


@dataclass(frozen=True)
class Position:
    """A participant's net position in one rail and currency: positive receives, negative pays."""

    rail: str
    currency: str
    participant: str
    net_minor: int


@dataclass(frozen=True)
class SettlementReport:
    """A closed cycle: payments, net positions and what was settled per rail and currency."""

    cycle: str
    payments: int
    positions: tuple[Position, ...]
    settled: dict[str, int] = field(default_factory=dict)  # "rail:currency" -> minor units

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


class ReportRebuildRefusedError(Exception):
    """The stored report cannot be rebuilt from the entries: the ledger or the payment records disagree with
    them too, or the report changed while it was being rebuilt. Escalate: reconcile the cycle by hand."""


def settlement_transfer_id(cycle: str, rail: str, currency: str) -> str:
    """The ledger transfer id that settles one rail and currency of a cycle (exactly once).

    Examples:
        >>> settlement_transfer_id("C0001", "uk_fps", "GBP")
        'settle:C0001:uk_fps:GBP'
    """
    return f"settle:{cycle}:{rail}:{currency}"[:64]


def position_differences(reported: Iterable[Position], replayed: Iterable[Position]) -> list[str]:
    """Name each (rail, currency, participant) whose net position differs between a report and a replay.

    Examples:
        >>> position_differences([Position("uk_fps", "GBP", "BARCGB22", 150)], [Position("uk_fps", "GBP", "BARCGB22", 100)])
        ['uk_fps GBP BARCGB22: report 150, entries 100']
    """
    left = {(p.rail, p.currency, p.participant): p.net_minor for p in reported}
    right = {(p.rail, p.currency, p.participant): p.net_minor for p in replayed}
    return [f"{rail} {currency} {who}: report {left.get((rail, currency, who), 0)}, entries {right.get((rail, currency, who), 0)}"
            for rail, currency, who in sorted(left.keys() | right.keys())
            if left.get((rail, currency, who), 0) != right.get((rail, currency, who), 0)]


def net_positions(entries: Iterable[Entry]) -> tuple[Position, ...]:
    """Net positions per (rail, currency, participant) of cleared payments; each rail nets to zero.

    Examples:
        >>> net_positions([Entry("u", 100, "GBP", "uk_fps", "BARCGB22")])[0].net_minor
        100
    """
    nets: dict[tuple[str, str, str], int] = defaultdict(int)
    for e in entries:
        nets[(e.rail, e.currency, OUR_BANK)] -= e.amount_minor
        nets[(e.rail, e.currency, e.creditor_agent)] += e.amount_minor
    return tuple(Position(r, c, who, n) for (r, c, who), n in sorted(nets.items()))


class SettlementBook:
    """Cycle entries, state and reports in the settlement table.

    Examples:
        >>> book = SettlementBook(dynamodb, "fasterpay-settlement")  # doctest: +SKIP
        >>> book.record_batch("C0001", entries)  # doctest: +SKIP
    """

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self.table = table

    def record_batch(self, cycle: str, entries: list[Entry]) -> None:
        """Book the payments one clearing batch cleared into ``cycle`` (one PutItem; idempotent)."""
        if not entries:
            return
        ordered = sorted(entries, key=lambda e: e.uetr)
        key = hashlib.sha256("|".join(e.uetr for e in ordered).encode()).hexdigest()[:24]
        body = json.dumps([[e.uetr, e.amount_minor, e.currency, e.rail, e.creditor_agent] for e in ordered],
                          separators=(",", ":"))
        self._ddb.put_item(TableName=self.table, Item={
            "pk": {"S": cycle}, "sk": {"S": f"ENTRY#{key}"}, "e": {"S": body}})

    def entries(self, cycle: str) -> list[Entry]:
        """The cycle's payments: the union by UETR of every booked entry."""
        found: dict[str, Entry] = {}
        for item in self._query(cycle, "ENTRY#"):
            for uetr, amount, currency, rail, agent in json.loads(item["e"]["S"]):
                found.setdefault(uetr, Entry(uetr, int(amount), currency, rail, agent))
        return sorted(found.values(), key=lambda e: e.uetr)

    def state(self, cycle: str) -> str | None:
        """``CLOSING``, ``SETTLED`` or None (open)."""
        item = self._get(cycle, "STATE")
        return None if item is None else str(item["state"]["S"])

    def begin_close(self, cycle: str, *, at: float) -> str:
        """Mark the cycle CLOSING (once); returns the state it is in now."""
        try:
            self._ddb.put_item(TableName=self.table, Item={
                "pk": {"S": cycle}, "sk": {"S": "STATE"}, "state": {"S": "CLOSING"}, "at": {"N": repr(at)}},
                ConditionExpression="attribute_not_exists(sk)")
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            state = self.state(cycle)
            assert state is not None
            return state
        return "CLOSING"

    def save_report(self, report: SettlementReport) -> SettlementReport:
        """Store the report once; a resumed close gets the first report back."""
        try:
            self._ddb.put_item(TableName=self.table, Item={
                "pk": {"S": report.cycle}, "sk": {"S": "REPORT"}, "report": {"S": report.to_json()}},
                ConditionExpression="attribute_not_exists(sk)")
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            stored = self.report(report.cycle)
            assert stored is not None
            return stored
        return report

    def mark_settled(self, cycle: str, *, at: float) -> None:
        """CLOSING -> SETTLED (a repeat is a no-op)."""
        try:
            self._ddb.update_item(TableName=self.table, Key={"pk": {"S": cycle}, "sk": {"S": "STATE"}},
                                  UpdateExpression="SET #s = :settled, settled_at = :at",
                                  ConditionExpression="#s = :closing",
                                  ExpressionAttributeNames={"#s": "state"},
                                  ExpressionAttributeValues={":settled": {"S": "SETTLED"}, ":closing": {"S": "CLOSING"},
                                                             ":at": {"N": repr(at)}})
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException" or self.state(cycle) != "SETTLED":
                raise

    def report(self, cycle: str) -> SettlementReport | None:
        """The stored report of a closed cycle."""
        item = self._get(cycle, "REPORT")
        return None if item is None else SettlementReport.from_json(item["report"]["S"])

    def _get(self, cycle: str, sk: str) -> dict[str, Any] | None:
        return self._ddb.get_item(TableName=self.table, Key={"pk": {"S": cycle}, "sk": {"S": sk}},
                                  ConsistentRead=True).get("Item")

    def _query(self, cycle: str, prefix: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": "pk = :c AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":c": {"S": cycle}, ":p": {"S": prefix}}, "ConsistentRead": True,
        }
        while True:
            page = self._ddb.query(**kwargs)
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _no_step(name: str) -> None:
    return None


def close_cycle(cycle: str, *, book: SettlementBook, ledger: Ledger, at: float,
                step: Callable[[str], None] = _no_step) -> SettlementReport:
    """Close ``cycle`` step by step; each step is idempotent, so a rerun resumes after a crash or throttle.

    1. mark the cycle CLOSING; 2. read its entries and store the report (once); 3. settle each rail and
    currency on the ledger (exactly once, by transfer id: ``inflight`` -> ``settled``); 4. mark it SETTLED,
    which makes its ACSP payments ACSC. ``step`` is called after each step (tracing, or a chaos run's crash).

    Examples:
        >>> report = close_cycle("C0001", book=book, ledger=ledger, at=now)  # doctest: +SKIP
    """
    if book.begin_close(cycle, at=at) == "SETTLED":
        stored = book.report(cycle)
        assert stored is not None
        return stored
    step("close.closing")
    report = book.report(cycle)
    if report is None:
        entries = book.entries(cycle)
        totals: dict[str, int] = defaultdict(int)
        for e in entries:
            if e.rail != "internal":
                totals[f"{e.rail}:{e.currency}"] += e.amount_minor
        report = book.save_report(SettlementReport(cycle, len(entries), net_positions(entries), dict(totals)))
    step("close.reported")
    for key, amount in sorted(report.settled.items()):
        rail, currency = key.split(":")
        if amount > 0:
            ledger.transfer(Transfer(settlement_transfer_id(cycle, rail, currency), inflight_account(rail, currency),
                                     settled_account(rail, currency), amount, currency))
            step("close.transferred")
    book.mark_settled(cycle, at=at)
    step("close.settled")
    return report


@dataclass(frozen=True)
class ReplayResult:
    """Positions rebuilt from the booked entries, and every difference found."""

    cycle: str
    payments: int
    positions: tuple[Position, ...]
    mismatches: tuple[str, ...]

    @property
    def matches(self) -> bool:
        """True when entries, report, ledger and payment records agree."""
        return not self.mismatches


def replay_cycle(cycle: str, *, book: SettlementBook, ledger: Ledger,
                 payments: Callable[[str], Any] | None = None) -> ReplayResult:
    """Rebuild ``cycle``'s positions from its entries; check the report, the ledger and the payments.

    Checks: the positions equal the stored report's; each rail's total equals the ledger's settlement
    transfer; with ``payments`` (``uetr -> StoredPayment | None``) every entry's payment is ACSP in this
    cycle with the same amount.

    Examples:
        >>> replay_cycle("C0001", book=book, ledger=ledger).matches  # doctest: +SKIP
        True
    """
    entries = book.entries(cycle)
    positions = net_positions(entries)
    problems: list[str] = []
    report = book.report(cycle)
    if report is None:
        problems.append(f"{cycle}: no settlement report")
    else:
        if report.positions != positions:
            named = "; ".join(position_differences(report.positions, positions)) or "same nets, different order"
            problems.append(f"{cycle}: report positions differ from the replayed entries: {named}")
        if report.payments != len(entries):
            problems.append(f"{cycle}: report counts {report.payments} payments, entries {len(entries)}")
    totals: dict[str, int] = defaultdict(int)
    for e in entries:
        if e.rail != "internal":
            totals[f"{e.rail}:{e.currency}"] += e.amount_minor
        if payments is not None:
            stored = payments(e.uetr)
            if stored is None or stored.status != "ACSP" or stored.cycle != cycle or stored.amount_minor != e.amount_minor:
                problems.append(f"{e.uetr}: booked in {cycle} but its record is "
                                f"{'missing' if stored is None else f'{stored.status} in {stored.cycle}'}")
    for key, amount in sorted(totals.items()):
        rail, currency = key.split(":")
        settled = ledger.get_transfer(settlement_transfer_id(cycle, rail, currency))
        if settled is None or settled.amount_minor != amount:
            problems.append(f"{cycle} {key}: ledger settled {settled.amount_minor if settled else 0}, entries {amount}")
    return ReplayResult(cycle, len(entries), positions, tuple(problems))


def rebuild_report(cycle: str, *, book: SettlementBook, ledger: Ledger,
                   payments: Callable[[str], Any] | None = None) -> SettlementReport:
    """Replace a SETTLED cycle's stored report with the one its booked entries give (a damaged report's remedy).

    The report is derived data: the entries are the record, and the ledger's settlement transfers moved the money
    by them. So the rebuild is refused (:class:`ReportRebuildRefusedError`) unless the cycle is SETTLED and every
    difference :func:`replay_cycle` finds is in the report alone (the ledger and, with ``payments``, the payment
    records agree with the entries), and the write is conditional on the stored report being the one read.
    Nothing else is written: no journal entry, no balance.

    Examples:
        >>> rebuild_report("C0001", book=book, ledger=ledger).cycle  # doctest: +SKIP
        'C0001'
    """
    if book.state(cycle) != "SETTLED":
        raise ReportRebuildRefusedError(f"{cycle} is not SETTLED: let close_cycle finish it instead")
    stored = book._get(cycle, "REPORT")  # noqa: SLF001 - the same module; read before the replay judges it
    replayed = replay_cycle(cycle, book=book, ledger=ledger, payments=payments)
    about_report = (f"{cycle}: report ", f"{cycle}: no settlement report")
    others = [m for m in replayed.mismatches if not m.startswith(about_report)]
    if others:
        raise ReportRebuildRefusedError(f"{cycle}: the entries disagree with more than the report: {others[:3]}")
    entries = book.entries(cycle)
    totals: dict[str, int] = defaultdict(int)
    for e in entries:
        if e.rail != "internal":
            totals[f"{e.rail}:{e.currency}"] += e.amount_minor
    rebuilt = SettlementReport(cycle, len(entries), net_positions(entries), dict(totals))
    condition: dict[str, Any] = ({"ConditionExpression": "attribute_not_exists(sk)"} if stored is None else {
        "ConditionExpression": "report = :read", "ExpressionAttributeValues": {":read": stored["report"]}})
    try:
        book._ddb.put_item(TableName=book.table, Item={  # noqa: SLF001
            "pk": {"S": cycle}, "sk": {"S": "REPORT"}, "report": {"S": rebuilt.to_json()}}, **condition)
    except ClientError as exc:
        if _code(exc) == "ConditionalCheckFailedException":
            raise ReportRebuildRefusedError(f"{cycle}: the report changed while it was rebuilt; read it again") from exc
        raise
    return rebuilt
