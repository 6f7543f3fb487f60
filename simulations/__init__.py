"""Runnable scenarios for the guide: ``python -m simulations --help``.

The scenarios are thin command-line wrappers; the work (payload generation, validation, benchmarks)
lives in the :mod:`fasterpay` package so notebooks and tests use the same code.
"""

__all__ = ["main"]

from .cli import main
