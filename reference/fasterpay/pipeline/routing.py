"""Routing: choose the rail (internal book transfer, UK Faster Payments, SEPA Instant) from rules as data.

The rules live in ``routing.yaml`` beside this module; pass your own mapping to :meth:`RoutingRules.from_mapping`
to change them without code. A payment no rule can route is rejected with the configured reason code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib.resources import files
from typing import Any

import yaml

from ..iso20022.schemes import SCHEMES, SchemeRules

from .model import Payment

__all__ = ["Rail", "Route", "RoutingRules", "default_routing_rules"]


@dataclass(frozen=True)
class Rail:
    """One rail: currencies, reachable agents, limit and time limit, built from the scheme registry."""

    name: str
    currencies: frozenset[str] = frozenset()
    max_amount: Decimal | None = None
    time_limit_seconds: int = 5
    timeout_reason: str = "AB06"
    settlement: str = "none"
    bic_prefixes: tuple[str, ...] = ()
    sort_code_prefixes: tuple[str, ...] = ()
    bic_countries: tuple[str, ...] = ()
    reach_all: bool = False

    @classmethod
    def of_scheme(cls, rules: SchemeRules) -> Rail:
        """The rail of a registry entry (its clearing half, currencies and limit)."""
        clearing = rules.clearing
        if clearing is None:
            raise ValueError(f"scheme {rules.name!r} has no clearing entry in the registry")
        return cls(name=clearing.rail, currencies=rules.currencies, max_amount=rules.max_amount,
                   time_limit_seconds=clearing.time_limit_seconds, timeout_reason=str(clearing.timeout_reason),
                   settlement=clearing.settlement, bic_prefixes=clearing.bic_prefixes,
                   sort_code_prefixes=clearing.sort_code_prefixes, bic_countries=clearing.bic_countries)

    def reaches(self, agent: str) -> bool:
        """Whether the creditor agent (a BIC, or ``GBDSC:<sort code>``) is reachable on this rail."""
        if self.reach_all:
            return True
        if agent.startswith("GBDSC:"):
            return agent[6:].startswith(self.sort_code_prefixes) if self.sort_code_prefixes else False
        return agent.startswith(self.bic_prefixes) or (len(agent) >= 6 and agent[4:6] in self.bic_countries)


@dataclass(frozen=True)
class Route:
    """The routing outcome: a rail, or a rejection reason."""

    rail: str | None
    reason: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class RoutingRules:
    """Ordered rules; the first that matches picks the rail.

    Examples:
        >>> rules = default_routing_rules()
        >>> rules.route_agent("BARCGB22", "GBP", Decimal("25.00")).rail
        'uk_fps'
        >>> rules.route_agent("GBDSC:912345", "GBP", Decimal("25.00")).reason
        'AB08'
    """

    rails: Mapping[str, Rail]
    rules: tuple[Mapping[str, Any], ...]
    our_bank: Rail
    unroutable_reason: str = "AB08"
    limit_reason: str = "AM02"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], schemes: Mapping[str, SchemeRules] | None = None) -> RoutingRules:
        """Rules from plain data (the parsed YAML); the scheme rails come from the registry.

        Raises:
            ValueError: a rule names a rail that is neither ``internal`` nor a registry scheme.
        """
        registry = SCHEMES if schemes is None else schemes
        rails: dict[str, Rail] = {"internal": Rail("internal", currencies=frozenset({"GBP", "EUR"}),
                                                    time_limit_seconds=5, settlement="none")}
        for scheme in registry.values():
            if scheme.clearing is not None:
                rails[scheme.clearing.rail] = Rail.of_scheme(scheme)
        if "rails" in data:
            raise ValueError("rails are not configured here any more: they come from the scheme registry "
                             "(fasterpay.iso20022.schemes); change a scheme there")
        ours = data.get("our_bank", {})
        our_bank = Rail("our_bank", bic_prefixes=tuple(ours.get("bic_prefixes", ())),
                        sort_code_prefixes=tuple(ours.get("sort_code_prefixes", ())))
        for rule in data["rules"]:
            if rule["rail"] not in rails:
                raise ValueError(f"rule names unknown rail {rule['rail']!r}; add the scheme to the registry")
        return cls(rails=rails, rules=tuple(data["rules"]), our_bank=our_bank,
                   unroutable_reason=str(data.get("unroutable_reason", "AB08")),
                   limit_reason=str(data.get("limit_reason", "AM02")))

    def route_agent(self, creditor_agent: str, currency: str, amount: Decimal) -> Route:
        """Route by creditor agent, currency and amount (major units)."""
        is_us = self.our_bank.reaches(creditor_agent)
        over_limit: str | None = None
        for rule in self.rules:
            rail = self.rails[rule["rail"]]
            if currency not in rule.get("currencies", ()):
                continue
            if rule.get("creditor_agent_is_us") and not is_us:
                continue
            if not rule.get("creditor_agent_is_us") and not rail.reaches(creditor_agent):
                continue
            if rail.max_amount is not None and amount > rail.max_amount:
                over_limit = rail.name
                continue
            return Route(rail.name)
        if over_limit is not None:
            return Route(None, self.limit_reason, f"amount above the {over_limit} limit")
        return Route(None, self.unroutable_reason, "creditor agent not reachable on any rail for this currency")

    def route(self, payment: Payment) -> Route:
        """Route a tokenised payment.

        Examples:
            >>> default_routing_rules().route(payment).rail  # doctest: +SKIP
            'uk_fps'
        """
        return self.route_agent(payment.creditor_agent, payment.currency, payment.amount)


def default_routing_rules() -> RoutingRules:
    """The rules shipped in ``routing.yaml``."""
    text = files(__name__.rpartition(".")[0]).joinpath("routing.yaml").read_text(encoding="utf-8")
    return RoutingRules.from_mapping(yaml.safe_load(text))
