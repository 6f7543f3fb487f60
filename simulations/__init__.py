"""Runnable scenarios for the guide: ``python -m simulations --help``.

Everything here drives the reference package and is never copied into a service: the seeded pacs.008
generator (:mod:`.generator`), the benches (:mod:`.ledger_bench`, :mod:`.audit_bench`,
:mod:`.powertools_compare`), the audit-export attacker (:mod:`.audit_tamper`) and the command line
(:mod:`.cli`). Notebooks and tests import the same modules. Pattern code lives in :mod:`fasterpay` and
never imports from here (``tests/test_layout.py`` checks it).
"""

__all__ = ["main"]

from .cli import main
