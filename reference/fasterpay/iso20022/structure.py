"""Structural validation of an element tree against the message model (the ``pyiso20022`` bindings).

The bindings are generated from the official ISO 20022 XSDs and keep every constraint of the schema in
their field metadata: element names and namespace, sequence order, required elements, occurrences,
lengths, patterns, digits, enumerations and attributes. This module walks a parsed tree and checks it
against that metadata, so a message is checked like an XSD validator would, without shipping the XSD.
Two XSD rules that the metadata does not spell out are applied from ISO 20022 conventions: a type whose
name ends in ``Choice`` holds exactly one element, and element order follows field order.

A violation is reported as a :class:`~.errors.Rejection` with its path. The reason code is FF01 (format)
unless the element says more: an IBAN that breaks the schema is AC01, a BIC is RC01, the interbank
settlement amount is AM12 (CH20 for more than 5 decimals) and a currency attribute is AM11 (see
:data:`FIELD_REASONS`, :data:`FACET_REASONS`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any
from xml.etree.ElementTree import Element

from xsdata.models.datatype import XmlDate, XmlDateTime, XmlTime

from .codes import ReasonCode
from .errors import Rejection
from .xsdtime import parse_xsd_date, parse_xsd_datetime, parse_xsd_time

__all__ = ["ATTRIBUTE_REASONS", "FACET_REASONS", "FIELD_REASONS", "MAX_PROBLEMS", "check_element"]

#: Most problems reported for one element tree (one transaction, or the group header).
MAX_PROBLEMS = 20
#: Reason code for a schema violation at an element with this local name (FF01 otherwise).
FIELD_REASONS: dict[str, ReasonCode] = {
    "IBAN": ReasonCode.AC01,
    "BICFI": ReasonCode.RC01,
    "IntrBkSttlmAmt": ReasonCode.AM12,
    "IntrBkSttlmDt": ReasonCode.DT01,
}
#: Reason code for breaking one facet at an element, where it says more than :data:`FIELD_REASONS`.
FACET_REASONS: dict[tuple[str, str], ReasonCode] = {("IntrBkSttlmAmt", "fraction_digits"): ReasonCode.CH20}
#: Reason code for a schema violation of an attribute with this name (FF01 otherwise).
ATTRIBUTE_REASONS: dict[str, ReasonCode] = {"Ccy": ReasonCode.AM11}

_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
_IGNORED_ATTRIBUTES = {f"{_XSI}schemaLocation", f"{_XSI}noNamespaceSchemaLocation"}
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_BOOLEAN = {"true", "false", "1", "0"}
_FACETS = {"min_length", "max_length", "pattern", "total_digits", "fraction_digits", "min_inclusive", "max_inclusive"}
#: (facet broken, what is wrong) or None
_Problem = tuple[str, str] | None


@dataclass(frozen=True)
class _Slot:
    """One element, attribute or text slot of a binding class."""

    name: str
    qname: str
    index: int
    kind: Any
    is_list: bool
    min_occurs: int
    max_occurs: int | None
    facets: dict[str, Any]
    # Derived once per binding class (``_meta`` is cached), so the walk does not redo it for every element.
    is_class: bool = field(init=False, repr=False, compare=False)  #: a binding class, walked into
    check: Callable[[str], _Problem] = field(init=False, repr=False, compare=False)  #: the value check, facets bound

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_class", dataclasses.is_dataclass(self.kind))
        object.__setattr__(self, "check", _simple_check(self.kind, self.facets))


@dataclass(frozen=True)
class _Meta:
    elements: dict[str, _Slot]
    ordered: tuple[_Slot, ...]
    attributes: dict[str, _Slot]
    text: _Slot | None
    wildcard: bool
    is_choice: bool
    #: Elements that must occur (none for a choice) and required attributes, in order; derived once.
    required: tuple[_Slot, ...] = field(init=False, repr=False, compare=False)
    required_attributes: tuple[_Slot, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        required = () if self.is_choice else tuple(s for s in self.ordered if s.min_occurs > 0)
        object.__setattr__(self, "required", required)
        object.__setattr__(self, "required_attributes", tuple(s for s in self.attributes.values() if s.min_occurs))


def _unwrap(hint: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _unwrap(args[0])
    if origin in (list, tuple):
        return typing.get_args(hint)[0], True
    return hint, False


@functools.cache
def _meta(cls: type) -> _Meta:
    hints = typing.get_type_hints(cls)
    elements: dict[str, _Slot] = {}
    ordered: list[_Slot] = []
    attributes: dict[str, _Slot] = {}
    text: _Slot | None = None
    wildcard = False
    module = sys.modules[cls.__module__]
    default_ns = getattr(getattr(cls, "Meta", None), "namespace", None) or getattr(module, "__NAMESPACE__", None)
    for index, f in enumerate(dataclasses.fields(cls)):
        md = dict(f.metadata)
        kind, is_list = _unwrap(hints[f.name])
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        required = not has_default or bool(md.get("required"))
        min_occurs = int(md.get("min_occurs", 1 if required else 0))
        max_occurs = md.get("max_occurs") if is_list else 1
        facets = {k: v for k, v in md.items() if k in _FACETS}
        slot_type = md.get("type")
        name = md.get("name", f.name)
        if slot_type == "Wildcard":
            wildcard = True
        elif slot_type == "Attribute":
            attributes[name] = _Slot(name, name, index, kind, False, min_occurs, 1, facets)
        elif slot_type in (None, "Text"):
            text = _Slot(name, name, index, kind, False, min_occurs, 1, facets)
        else:
            namespace = md.get("namespace", default_ns)
            qname = f"{{{namespace}}}{name}" if namespace else name
            slot = _Slot(name, qname, index, kind, is_list, min_occurs, max_occurs, facets)
            elements[qname] = slot
            ordered.append(slot)
    return _Meta(elements, tuple(ordered), attributes, text, wildcard, cls.__name__.endswith("Choice"))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1][:60]


def _reason(name: str, facet: str = "") -> ReasonCode:
    return FACET_REASONS.get((name, facet)) or FIELD_REASONS.get(name, ReasonCode.FF01)


def _digits(value: Decimal) -> tuple[int, int]:
    """(total digits, fraction digits) of a decimal value, as XSD counts them (no insignificant zeros)."""
    _, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    if value == 0:
        return 1, 0
    fraction = max(0, -exponent)
    total = max(len(digits), fraction) if exponent < 0 else len(digits) + exponent
    return total, fraction


def _check_decimal(raw: str, facets: dict[str, Any]) -> _Problem:
    text = raw.strip()
    if not _DECIMAL.fullmatch(text):
        return "lexical", "is not a decimal number (digits, optional sign and decimal point)"
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes this
        return "lexical", "is not a decimal number"
    total, fraction = _digits(value)
    if "total_digits" in facets and total > facets["total_digits"]:
        return "total_digits", f"has more than {facets['total_digits']} digits"
    if "fraction_digits" in facets and fraction > facets["fraction_digits"]:
        return "fraction_digits", f"has more than {facets['fraction_digits']} decimal places"
    if "min_inclusive" in facets and value < Decimal(facets["min_inclusive"]):
        return "min_inclusive", f"is below the minimum {facets['min_inclusive']}"
    if "max_inclusive" in facets and value > Decimal(facets["max_inclusive"]):
        return "max_inclusive", f"is above the maximum {facets['max_inclusive']}"
    return None


def _check_string(raw: str, facets: dict[str, Any]) -> _Problem:
    if "min_length" in facets and len(raw) < facets["min_length"]:
        minimum = facets["min_length"]
        return "min_length", "is empty" if minimum == 1 else f"is shorter than {minimum} characters"
    if "max_length" in facets and len(raw) > facets["max_length"]:
        return "max_length", f"is longer than {facets['max_length']} characters"
    if "pattern" in facets and not _pattern(facets["pattern"]).fullmatch(raw):
        return "pattern", "does not match the format the schema requires"
    return None


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _check_parsed(parse: Callable[[str], Any], label: str) -> Callable[[str, dict[str, Any]], _Problem]:
    def check(raw: str, facets: dict[str, Any]) -> _Problem:
        try:
            parse(raw.strip())
        except (ValueError, TypeError, OverflowError):
            return "lexical", f"is not a valid {label}"
        return None

    return check


_SIMPLE_CHECKS: dict[Any, Callable[[str, dict[str, Any]], _Problem]] = {
    str: _check_string,
    Decimal: _check_decimal,
    XmlDateTime: _check_parsed(parse_xsd_datetime, "ISO date and time"),
    XmlDate: _check_parsed(parse_xsd_date, "ISO date"),
    XmlTime: _check_parsed(parse_xsd_time, "ISO time"),
    bool: lambda raw, facets: None if raw.strip() in _BOOLEAN else ("lexical", "is not true or false"),
}


def _simple_check(kind: Any, facets: dict[str, Any]) -> Callable[[str], _Problem]:
    """The check of a value of simple type ``kind`` against ``facets``, made once per slot."""
    if isinstance(kind, type) and issubclass(kind, Enum):
        allowed = frozenset(m.value for m in kind)
        enumeration: _Problem = ("enumeration", "is not one of the codes the schema allows")
        return lambda raw: None if raw.strip() in allowed else enumeration
    check = _SIMPLE_CHECKS.get(kind)
    if check is None:  # binding classes and wildcards; never called for them
        return lambda raw: ("type", f"has a type ({kind!r}) this validator does not know")
    return lambda raw: check(raw, facets)


def _holds_text(element: Element) -> bool:
    """True when ``element`` has text other than whitespace before or between its child elements."""
    if element.text and element.text.strip():
        return True
    for child in element:  # a plain loop: this runs for every element of every message
        if child.tail and child.tail.strip():
            return True
    return False


def check_element(
    element: Element,
    cls: type,
    path: str,
    *,
    skip: frozenset[str] = frozenset(),
    limit: int = MAX_PROBLEMS,
) -> list[Rejection]:
    """Check ``element`` (and everything below it) against the binding class ``cls``; return the problems.

    ``path`` is the element's own path, used in each :class:`~.errors.Rejection`. Children whose local name
    is in ``skip`` are checked for name, order and occurrence but not descended into (the caller checks
    them separately, e.g. one transaction at a time). At most ``limit`` problems are reported, so a hostile
    message cannot make the answer larger than itself.

    Examples:
        >>> from xml.etree.ElementTree import fromstring
        >>> from pyiso20022.pacs.pacs_008_001_08 import PaymentIdentification7
        >>> ns = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"
        >>> pmt_id = fromstring(f'<PmtId xmlns="{ns}"><TxId>T1</TxId></PmtId>')
        >>> [str(r) for r in check_element(pmt_id, PaymentIdentification7, "/PmtId")]
        ['FF01 at /PmtId/EndToEndId: required element EndToEndId is missing']
    """
    problems: list[Rejection] = []
    with contextlib.suppress(_Enough):
        _walk(element, cls, path, skip, _Bounded(problems, limit))
    return problems


class _Enough(Exception):
    """Raised inside the walk once the problem limit is reached."""


class _Bounded:
    def __init__(self, problems: list[Rejection], limit: int) -> None:
        self.problems, self.limit = problems, limit

    def append(self, problem: Rejection) -> None:
        self.problems.append(problem)
        if len(self.problems) >= self.limit:
            raise _Enough


def _walk(element: Element, cls: type, path: str, skip: frozenset[str], out: _Bounded) -> None:
    meta = _meta(cls)
    name = _local(element.tag)
    for attribute, value in element.attrib.items():
        slot = meta.attributes.get(attribute)
        if slot is None:
            if attribute not in _IGNORED_ATTRIBUTES:
                out.append(Rejection(ReasonCode.FF01, path, f"attribute {_local(attribute)} is not allowed here"))
            continue
        problem = slot.check(value)
        if problem:
            out.append(Rejection(ATTRIBUTE_REASONS.get(attribute, ReasonCode.FF01), f"{path}/@{attribute}",
                                 f"attribute {attribute} {problem[1]}"))
    for slot in meta.required_attributes:
        attribute = slot.name
        if attribute not in element.attrib:
            out.append(Rejection(ATTRIBUTE_REASONS.get(attribute, ReasonCode.FF01), f"{path}/@{attribute}",
                                 f"required attribute {attribute} is missing"))

    if meta.text is not None:
        if len(element):
            out.append(Rejection(_reason(name), path, f"{name} must hold a value, not child elements"))
            return
        problem = meta.text.check(element.text or "")
        if problem:
            out.append(Rejection(_reason(name, problem[0]), path, f"{name} {problem[1]}"))
        return
    if _holds_text(element):
        out.append(Rejection(ReasonCode.FF01, path, f"{name} must not hold text between its elements"))
    if meta.wildcard:
        return

    counts: dict[str, int] = {}
    last_index = -1
    for child in element:
        slot = meta.elements.get(child.tag) if isinstance(child.tag, str) else None
        if slot is None:
            out.append(Rejection(ReasonCode.FF01, f"{path}/{_local(str(child.tag))}",
                                 f"element {_local(str(child.tag))} is not allowed in {name}"))
            continue
        counts[slot.qname] = counts.get(slot.qname, 0) + 1
        occurrence = counts[slot.qname]
        child_path = f"{path}/{slot.name}[{occurrence}]" if slot.is_list else f"{path}/{slot.name}"
        if slot.index < last_index:
            out.append(Rejection(ReasonCode.FF01, child_path, f"element {slot.name} is out of order in {name}"))
        if slot.index > last_index:
            last_index = slot.index
        if slot.max_occurs is not None and occurrence > slot.max_occurs:
            out.append(Rejection(ReasonCode.FF01, child_path,
                                 f"element {slot.name} occurs more than {slot.max_occurs} time(s) in {name}"))
            continue
        if slot.name in skip:
            continue
        if slot.is_class:
            _walk(child, slot.kind, child_path, frozenset(), out)
        elif slot.kind is object:
            continue
        elif len(child):
            out.append(Rejection(_reason(slot.name), child_path, f"{slot.name} must hold a value, not elements"))
        else:
            problem = slot.check(child.text or "")
            if problem:
                out.append(Rejection(_reason(slot.name, problem[0]), child_path, f"{slot.name} {problem[1]}"))

    for slot in meta.required:
        if counts.get(slot.qname, 0) < slot.min_occurs:
            out.append(Rejection(_reason(slot.name), f"{path}/{slot.name}", f"required element {slot.name} is missing"))
    if meta.is_choice and sum(counts.values()) != 1:
        out.append(Rejection(ReasonCode.FF01, path, f"{name} must hold exactly one of its alternatives"))
