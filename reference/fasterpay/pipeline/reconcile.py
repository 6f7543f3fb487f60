"""Reconciliation: ledger, settlement reports and statuses must tell the same story for every payment.

For each payment the expected ledger postings follow from its status:

* ACSC / ACSP: ``:hold`` and ``:clear``, no ``:release``; ACSC also booked in a closed cycle's report;
* RJCT after a hold: ``:hold`` and ``:release``, no ``:clear``; RJCT before a hold: nothing;
* ACTC / ACCP at the end of a run: a payment left in flight, which is a mismatch.

Any journal transfer of a payment with no status is a mismatch too, and so is any currency whose
balances do not sum to zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fasterpay.ledger import Ledger

from .settlement import SettlementBook
from .store import StatusStore

__all__ = ["ReconciliationReport", "balances_by_currency", "reconcile"]


@dataclass(frozen=True)
class ReconciliationReport:
    """Payments checked, statuses counted, mismatches found."""

    payments: int
    statuses: dict[str, int]
    mismatches: tuple[str, ...]
    currency_totals: dict[str, int]

    @property
    def mismatches_per_10k(self) -> float:
        """Mismatches per 10,000 payments."""
        return 0.0 if not self.payments else len(self.mismatches) * 10_000 / self.payments

    @property
    def balanced(self) -> bool:
        """Every currency's balances sum to zero."""
        return all(total == 0 for total in self.currency_totals.values())


def balances_by_currency(sources: Iterable[tuple[Any, str]]) -> dict[str, int]:
    """Sum of every balance item per currency over ``(dynamodb client, ledger table)`` pairs (0 when closed).

    Examples:
        >>> balances_by_currency([(dynamodb, "fasterpay-ledger")])  # doctest: +SKIP
        {'EUR': 0, 'GBP': 0}
    """
    totals: dict[str, int] = defaultdict(int)
    for dynamodb, table in sources:
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = dynamodb.scan(**kwargs)
            for item in page["Items"]:
                if item["pk"]["S"].startswith("BAL#"):
                    totals[item["currency"]["S"]] += int(item["balance"]["N"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return dict(sorted(totals.items()))


def reconcile(*, statuses: StatusStore, ledgers: Iterable[tuple[Any, Ledger]], book: SettlementBook,
              cycles: Iterable[str]) -> ReconciliationReport:
    """Compare statuses, ledger journals and settlement reports; list every mismatch.

    Examples:
        >>> report = reconcile(statuses=s, ledgers=[(ddb, ledger)], book=book, cycles=["C1"])  # doctest: +SKIP
        >>> report.mismatches_per_10k  # doctest: +SKIP
        0.0
    """
    ledgers = list(ledgers)
    journal: dict[str, list[Any]] = defaultdict(list)
    for _, ledger in ledgers:
        for transfer in ledger.journal():
            journal[transfer.transfer_id].append(transfer)
    reported: dict[str, str] = {}
    for cycle in cycles:
        for payment in book.entries(cycle):
            reported[payment.uetr] = cycle
        if book.report(cycle) is None:
            pass  # an open cycle: its payments are ACSP, not ACSC
    problems: list[str] = []
    counts: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    for status in statuses.payments():
        uetr = status.uetr
        seen.add(uetr)
        counts[status.status] += 1
        hold, clear, release = (len(journal.get(f"{uetr}:{k}", [])) for k in ("hold", "clear", "release"))
        if max(hold, clear, release) > 1:
            problems.append(f"{uetr}: a transfer posted more than once")
        if status.status in ("ACSC", "ACSP"):
            if (hold, clear, release) != (1, 1, 0):
                problems.append(f"{uetr}: {status.status} but postings hold={hold} clear={clear} release={release}")
            if status.status == "ACSC" and uetr not in reported:
                problems.append(f"{uetr}: ACSC but in no settlement report")
        elif status.status == "RJCT":
            if clear or release != hold:
                problems.append(f"{uetr}: RJCT but postings hold={hold} clear={clear} release={release}")
            if uetr in reported:
                problems.append(f"{uetr}: RJCT but booked for settlement")
        else:
            problems.append(f"{uetr}: still {status.status} at the end of the run (in flight or lost)")
    for transfer_id in journal:
        uetr, _, kind = transfer_id.rpartition(":")
        if kind in ("hold", "clear", "release") and uetr not in seen:
            problems.append(f"{transfer_id}: posted for a payment with no status")
    totals = balances_by_currency((client, ledger.tables.ledger) for client, ledger in ledgers)
    for currency, total in totals.items():
        if total != 0:
            problems.append(f"{currency}: balances sum to {total}, not 0")
    return ReconciliationReport(len(seen), dict(sorted(counts.items())), tuple(problems), totals)
