"""Who may detokenize which data class, for which purpose, and who may erase a data subject."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .classes import DataClass

__all__ = ["Caller", "DetokenizeGrant", "VaultPolicy"]


@dataclass(frozen=True)
class Caller:
    """The principal a caller states and its purpose: what grants are matched on.

    Neither is authenticated by the vault. Audit records name the identity the vault's AWS clients
    authenticate as, and keep ``principal`` beside it as the claim.
    """

    principal: str
    purpose: str

    def __post_init__(self) -> None:
        if not self.principal or not self.purpose:
            raise ValueError("a caller needs a principal and a purpose")


@dataclass(frozen=True)
class DetokenizeGrant:
    principal: str
    data_classes: frozenset[DataClass]
    purposes: frozenset[str]


@dataclass(frozen=True)
class VaultPolicy:
    """Grants for detokenize, and the principals allowed to erase a data subject.

    Examples:
        >>> policy = VaultPolicy.of(
        ...     grants=[("scheme-gateway", ["iban", "name"], ["scheme-submission"])],
        ...     erasers=["dpo"],
        ... )
        >>> policy.may_detokenize(Caller("scheme-gateway", "scheme-submission"), DataClass.IBAN)
        True
        >>> policy.may_detokenize(Caller("scheme-gateway", "marketing"), DataClass.IBAN)
        False
    """

    grants: tuple[DetokenizeGrant, ...] = ()
    erasers: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls, *, grants: Iterable[tuple[str, Iterable[str], Iterable[str]]] = (), erasers: Iterable[str] = ()
    ) -> VaultPolicy:
        return cls(
            grants=tuple(
                DetokenizeGrant(p, frozenset(DataClass(c) for c in classes), frozenset(purposes))
                for p, classes, purposes in grants
            ),
            erasers=frozenset(erasers),
        )

    def may_detokenize(self, caller: Caller, data_class: DataClass) -> bool:
        return any(
            g.principal == caller.principal and data_class in g.data_classes and caller.purpose in g.purposes
            for g in self.grants
        )

    def may_erase(self, caller: Caller) -> bool:
        return caller.principal in self.erasers
