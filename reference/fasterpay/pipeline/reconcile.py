"""Reconciliation: payment records, ledger balances, journal and settlement must tell one story.

Checks, for one set of tables (a deployment, or one of a bench's table sets):

* every payment is final: RJCT, or ACSC (ACSP in a cycle that is SETTLED, or a book transfer); ACCP or
  ACSP in an unsettled cycle at the end of a run is *non-final*;
* holds: a payment whose hold is ``held`` debited its customer once; ``released`` was credited back once;
  so each customer balance equals its journal (funding transfers in, minus held amounts, plus book
  transfers received); any difference is a lost or doubled effect;
* settlement: each ACSP payment is in its cycle's entries exactly once, no payment is in two cycles, and
  each rail's settlement transfer equals its cycle's total (via :func:`~.settlement.replay_cycle`);
* every currency sums to zero: stored balances plus the derived in-flight holds.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..ledger import Ledger

from .settlement import SettlementBook, replay_cycle
from .store import PaymentStore, StoredPayment

__all__ = ["ReconciliationReport", "effective_status", "reconcile"]


@dataclass(frozen=True)
class ReconciliationReport:
    """Payments checked, final statuses counted, problems found."""

    payments: int
    statuses: dict[str, int]
    mismatches: tuple[str, ...]
    currency_totals: dict[str, int]
    non_final: tuple[str, ...] = ()
    doubled: tuple[str, ...] = ()
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def mismatches_per_10k(self) -> float:
        """Mismatches per 10,000 payments."""
        return 0.0 if not self.payments else len(self.mismatches) * 10_000 / self.payments

    @property
    def balanced(self) -> bool:
        """Every currency sums to zero."""
        return all(total == 0 for total in self.currency_totals.values())


def effective_status(payment: StoredPayment, settled_cycles: set[str]) -> str:
    """ACSC for an ACSP payment whose cycle settled; the stored status otherwise.

    Examples:
        >>> from fasterpay.pipeline.store import StoredPayment
        >>> p = StoredPayment("u", "ACSP", "s", "m", "e", "uk_fps", "uk_fps", 1, "GBP", "cust:a", "cust:b", "B",
        ...                   "held", cycle="C1")
        >>> effective_status(p, {"C1"}), effective_status(p, set())
        ('ACSC', 'ACSP')
    """
    if payment.status == "ACSP" and payment.cycle in settled_cycles:
        return "ACSC"
    return payment.status


def reconcile(*, store: PaymentStore, book: SettlementBook, ledger: Ledger, cycles: list[str],
              admin_dynamodb: Any, payments: Mapping[str, StoredPayment] | None = None) -> ReconciliationReport:
    """Compare payment records, ledger balances and journal, and settlement; list every mismatch.

    ``admin_dynamodb`` reads the ledger table (an auditor's role, never the posting path). ``payments``
    (by UETR) are the store's records when the caller has just read them; by default they are read here.

    Examples:
        >>> report = reconcile(store=store, book=book, ledger=ledger, cycles=["C0001"],
        ...                    admin_dynamodb=ddb)  # doctest: +SKIP
        >>> report.mismatches  # doctest: +SKIP
        ()
    """
    settled = {c for c in cycles if book.state(c) == "SETTLED"}
    payments = {p.uetr: p for p in store.payments()} if payments is None else dict(payments)
    problems: list[str] = []
    non_final: list[str] = []
    doubled: list[str] = []
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    expected: dict[str, int] = defaultdict(int)  # account -> balance its journal implies
    derived_holds: dict[str, int] = defaultdict(int)  # currency -> held on payment items
    for p in payments.values():
        status = effective_status(p, settled)
        counts[status] += 1
        if status == "RJCT":
            reasons[p.reason or "?"] += 1
        if status not in ("ACSC", "RJCT"):
            non_final.append(f"{p.uetr}: still {status} at the end of the run")
        if p.hold in ("held", "credited"):
            expected[p.debtor_account] -= p.amount_minor
            derived_holds[p.currency] += p.amount_minor
        if p.status == "RJCT" and p.hold == "held":
            problems.append(f"{p.uetr}: RJCT but its hold was never released")
        if p.status in ("ACSP", "ACSC", "ACCP") and p.hold != ("credited" if p.status == "ACSC" else "held"):
            problems.append(f"{p.uetr}: {p.status} with hold {p.hold}")
    balances, totals, journal = _ledger_state(admin_dynamodb, ledger.tables.ledger)  # one scan of the ledger
    for debit, credit, amount in journal:
        expected[debit] -= amount
        expected[credit] += amount
    # book transfers credited the creditor and debited the in-flight account, outside the journal
    for p in payments.values():
        if p.hold == "credited":
            expected[f"inflight:{p.rail}:{p.currency}"] -= p.amount_minor
    book_credits = _book_credits(payments.values())
    for account, balance in sorted(balances.items()):
        implied = expected.get(account, 0) + book_credits.get(account, 0)
        if balance != implied:
            line = f"{account}: balance {balance}, journal and payments imply {implied}"
            problems.append(line)
            if balance < implied:
                doubled.append(line)  # debited more than once (a doubled hold), or a credit lost
    for currency, held in derived_holds.items():
        totals[currency] = totals.get(currency, 0) + held
    for currency, total in sorted(totals.items()):
        if total != 0:
            problems.append(f"{currency}: balances and in-flight holds sum to {total}, not 0")
    seen_in: dict[str, str] = {}
    for cycle in cycles:
        result = replay_cycle(cycle, book=book, ledger=ledger, payments=payments.get)
        problems.extend(result.mismatches)
        for e in book.entries(cycle):
            if e.uetr in seen_in:
                doubled.append(f"{e.uetr}: booked in {seen_in[e.uetr]} and {cycle}")
            seen_in[e.uetr] = cycle
    for p in payments.values():
        if p.status == "ACSP" and p.uetr not in seen_in:
            problems.append(f"{p.uetr}: ACSP in {p.cycle} but booked in no cycle")
    problems.extend(doubled)
    problems.extend(non_final)
    return ReconciliationReport(len(payments), dict(sorted(counts.items())), tuple(dict.fromkeys(problems)),
                                dict(sorted(totals.items())), tuple(non_final), tuple(dict.fromkeys(doubled)),
                                dict(sorted(reasons.items())))


def _book_credits(payments: Any) -> dict[str, int]:
    credits: dict[str, int] = defaultdict(int)
    for p in payments:
        if p.hold == "credited":
            credits[p.creditor_account] += p.amount_minor
    return credits


def _ledger_state(dynamodb: Any, table: str) -> tuple[dict[str, int], dict[str, int], list[tuple[str, str, int]]]:
    """Balances by account, balances by currency, and every journal entry (debit, credit, amount), from one
    consistent scan of the ledger table (its balance items and its transfer items)."""
    balances: dict[str, int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    journal: list[tuple[str, str, int]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page["Items"]:
            pk = item["pk"]["S"]
            if pk.startswith("BAL#"):
                amount = int(item["balance"]["N"])
                balances[item["account"]["S"]] += amount
                totals[item["currency"]["S"]] += amount
            elif pk.startswith("TRANSFER#"):
                journal.append((item["debit_account"]["S"], item["credit_account"]["S"], int(item["amount_minor"]["N"])))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return dict(balances), dict(totals), journal
