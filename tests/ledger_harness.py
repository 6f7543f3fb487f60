"""Test harness for threads against moto in process.

DynamoDB makes each call atomic and isolated; moto does not. Two threads inside moto at once can lose
writes (a cancelled transaction restores a copy of the table taken when it started, undoing what another
thread committed meanwhile) or fail with "dictionary changed size during iteration". So the concurrency
tests hold one lock per AWS call, which gives each call the isolation DynamoDB gives it. The threads
still interleave between calls (claim, read, transaction), which is what the code under test controls.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["SerialisedClient"]

_PASS_THROUGH = frozenset({"meta", "exceptions", "get_waiter", "get_paginator", "can_paginate"})


class SerialisedClient:
    """A boto3 client whose API calls run one at a time (see the module docstring)."""

    def __init__(self, client: Any, lock: threading.Lock | None = None) -> None:
        self._client = client
        self._lock = lock or threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name in _PASS_THROUGH or name.startswith("_") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def race(threads: int, attempt: Any) -> list[str]:
    """Run ``attempt()`` on ``threads`` threads released together by a barrier; return their outcomes."""
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run() -> None:
        start.wait()
        outcome = attempt()
        with lock:
            outcomes.append(outcome)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return outcomes
