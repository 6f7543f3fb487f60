"""A guard that keeps personal data out of logs, span attributes, metric dimensions and audit references.

Telemetry is copied widely (log groups, trace stores, vendors, support tickets) and kept for months,
so it must carry correlation ids and tokens only. :func:`refuse_personal_data` (for structures) and
:func:`refuse_personal_text` (for free text) raise :class:`PersonalDataError` before anything is written.
The method, stated so its limits are known:

* **Field names.** A key, at any depth of nested mappings, sequences and dataclasses, whose name says it
  holds personal data (:data:`PERSONAL_FIELD_NAMES`, or ending in ``iban``, ``name``, ``email``, ...),
  compared case- and separator-insensitively: ``debtorName``, ``DEBTOR-NAME``, ``Dbtr.Nm``.
* **IBANs** anywhere in a string, standing as their own word (not glued to other letters or digits),
  in any case, compact or grouped by single spaces, hyphens or dots: the country's length and BBAN
  structure from schwifty's registry, then the ISO 7064 mod-97-10 check (check digits 02 to 98).
  Random upper-case strings fail the structure or the check.
* **Card numbers (PANs)** standing as their own word: 13 to 19 digits, compact or in groups of 4 to 6
  digits (the last group 1 to 6) joined by one repeated space, hyphen or dot, passing the Luhn check,
  and starting as a card number can (3 to 9; 2 for Mastercard's and Mir's ranges; 1 for 15-digit UATP
  cards), so that epoch timestamps in milliseconds, microseconds or nanoseconds are not taken for cards.
  Integers and decimals are checked as their digits; the fraction of a decimal number is not a card.
* **E-mail addresses** anywhere in a string.
* **Registered personal values**: names (and other values with no pattern, such as domestic account
  numbers) that the process has seen, kept in a :class:`PersonalValueRegistry` as keyed hashes of their
  normalised words, so the registry holds no clear values. Text holding a registered value as whole
  words, in any case, with or without accents or punctuation, is refused. The pipeline registers the
  names it tokenises; a name it never saw cannot be recognised in free text, and no pattern could do so
  without refusing ordinary words.

Refusals name where (the field path, the character or word offsets) and what kind, never the value.
It is a guard, not a scrubber: it fails loudly so the bug is fixed, rather than silently masking.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import fields as dataclass_fields, is_dataclass
from functools import lru_cache
from typing import NamedTuple

from schwifty.exceptions import SchwiftyException
from schwifty.registry import get_iban_spec

__all__ = [
    "PERSONAL_FIELD_NAMES",
    "PersonalDataError",
    "PersonalDataFinding",
    "PersonalValueRegistry",
    "find_personal_data",
    "personal_value_registry",
    "refuse_personal_data",
    "refuse_personal_text",
    "register_personal_values",
]

#: Field names (lower case, separators removed) that hold personal data in payments.
PERSONAL_FIELD_NAMES = frozenset({
    "iban", "bban", "accountnumber", "acctno", "sortcode", "pan", "cardnumber", "cvv", "cvc",
    "name", "nm", "fullname", "firstname", "lastname", "surname", "debtorname", "creditorname",
    "dbtrnm", "cdtrnm", "ultmtdbtr", "ultmtcdtr", "email", "emailaddress", "phone", "phonenumber",
    "mobile", "address", "postaladdress", "pstladr", "adrline", "dateofbirth", "dob", "birthdate",
    "nationalid", "passport", "ustrd", "remittanceinformation", "rmtinf",
})
_SUFFIXES = ("iban", "bban", "accountnumber", "sortcode", "cardnumber", "name", "email", "phone",
             "address", "dateofbirth")
#: Names ending like a personal field that name things, not people (OpenTelemetry's ``*.name`` included).
_SAFE_SUFFIXES = ("servicename", "stagename", "tablename", "queuename", "bucketname", "spanname",
                  "operationname", "metricname", "keyname", "hostname", "rolename", "eventname", "filename",
                  "streamname", "functionname", "loggername", "destinationname", "topicname", "stepname",
                  "schemename", "railname", "regionname", "methodname", "dbname", "podname", "containername",
                  "clustername", "namespacename", "scopename", "tracername", "metername", "sdkname",
                  "libraryname", "osname", "classname", "modulename", "jobname", "taskname", "statename",
                  "devicename", "imagename", "projectname", "domainname")
_TOKEN_REMINDER = "log the vault's token instead"


class PersonalDataError(ValueError):
    """Telemetry was about to carry personal data: log a token or a correlation id instead."""


# -- patterns ---------------------------------------------------------------------------------------------
def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


_SEPARATORS = frozenset(" -.\u00a0")
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}")
_DIGIT_RUN = re.compile(r"(?<![A-Za-z0-9])[0-9]+(?:[ .\-\u00a0][0-9]+)*")
_GROUP = re.compile(r"[0-9]+")
_ANY_DIGIT = re.compile(r"[0-9]")
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|[bfnrt\"\\/])")
#: W3C trace-context ids under their own names (a span id's 16 hex digits are all decimal digits, start like a
#: card and pass Luhn about once in 26,000): key (normalised) -> the id's exact form.
_TRACE_IDS = {"traceid": re.compile(r"[0-9a-f]{32}"), "spanid": re.compile(r"[0-9a-f]{16}"),
              "parentid": re.compile(r"[0-9a-f]{16}"), "parentspanid": re.compile(r"[0-9a-f]{16}")}
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


@lru_cache(maxsize=512)
def _iban_spec(country: str) -> tuple[int, re.Pattern[str]] | None:
    """The IBAN length and BBAN pattern of ``country``, or None when it issues no IBANs."""
    try:
        spec = get_iban_spec(country)
    except SchwiftyException:
        return None
    return spec.iban_length, spec.regex


def _iban_ok(compact: str) -> bool:
    """``compact`` (upper case, no separators) is a valid IBAN: length, BBAN structure, mod-97-10."""
    spec = _iban_spec(compact[:2])
    if spec is None or len(compact) != spec[0] or not spec[1].match(compact[4:]):
        return False
    if not 2 <= int(compact[2:4]) <= 98:  # ISO 7064 never yields 00, 01 or 99
        return False
    return int("".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])) % 97 == 1


def _iban_at(text: str, start: int) -> int | None:
    """The end of a valid IBAN starting at ``start`` (single separators allowed between characters), or None."""
    spec = _iban_spec(text[start:start + 2].upper())
    if spec is None:
        return None
    length, n = spec[0], len(text)
    chars: list[str] = []
    i = start
    while len(chars) < length and i < n:
        ch = text[i]
        if _is_word_char(ch):
            chars.append(ch)
            i += 1
        elif ch in _SEPARATORS and i + 1 < n and _is_word_char(text[i + 1]):
            i += 1
        else:
            break
    if len(chars) < length or (i < n and _is_word_char(text[i])):
        return None  # too short, or glued to more letters or digits: another identifier
    return i if _iban_ok("".join(chars).upper()) else None


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _pan_ok(digits: str) -> bool:
    """13 to 19 digits, Luhn-valid, starting as a card can (ISO/IEC 7812 and the networks' ranges).

    3 to 9: any length. 2: Mastercard (2221-2720) and Mir (2200-2204), 16 to 19 digits. 1: UATP, 15
    digits only. 0: never. So epoch timestamps are not taken for card numbers: milliseconds (13 digits)
    until 2065, microseconds and nanoseconds (16 and 19 digits) until 2039.
    """
    if not 13 <= len(digits) <= 19:
        return False
    first = digits[0]
    if first == "0" or (first == "1" and len(digits) != 15):
        return False
    if first == "2" and not (len(digits) >= 16 and ("2200" <= digits[:4] <= "2204" or "2221" <= digits[:4] <= "2720")):
        return False
    return _luhn_ok(digits)


def _pan_in(run: str) -> tuple[int, int] | None:
    """Offsets of a card number in a run of digit groups, or None: one compact group (not the fraction of a
    decimal such as ``256.9724665142986``), or groups of 4-6 digits (the last 1-6) joined by one repeated
    separator."""
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(run)]
    for first, (start, end) in enumerate(groups):
        if (start == 0 or run[start - 1] != ".") and _pan_ok(run[start:end]):  # not a decimal's fraction
            return start, end
        if not 4 <= end - start <= 6:
            continue
        separator = run[end] if end < len(run) else ""  # every later group must follow the same one
        digits = run[start:end]
        for g_start, g_end in groups[first + 1:]:
            if run[g_start - 1] != separator or len(digits) + g_end - g_start > 19:
                break
            digits += run[g_start:g_end]
            if 1 <= g_end - g_start <= 6 and _pan_ok(digits):
                return start, g_end
            if not 4 <= g_end - g_start <= 6:
                break
    return None


class PersonalDataFinding(NamedTuple):
    """A personal value found in text: its kind ("an IBAN", "a registered name") and where, never what."""

    kind: str
    at: str  # "characters 4-26", "words 3-4": where, never what


_Finding = PersonalDataFinding


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group(0))


def _unescape(match: re.Match[str]) -> str:
    escape = match.group(0)
    return chr(int(escape[2:], 16)) if escape[1] == "u" else " "


def _find(text: str, registry: PersonalValueRegistry) -> _Finding | None:
    """The first personal value in ``text``: an IBAN, a card number, an e-mail address, a registered value.

    JSON and C escapes (``\\n``, ``\\u00e9``) are read as what they stand for, so a serialised log line is
    scanned like the values in it.
    """
    words_text = text
    if "\\" in text:
        words_text = _ESCAPE.sub(_unescape, text)
        text = _ESCAPE.sub(_blank, text)  # same length: offsets still point into the original
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)  # full-width digits and letters become ASCII
    if _ANY_DIGIT.search(text) is not None:  # IBANs and card numbers have digits: most text has few
        for match in _IBAN_START.finditer(text):
            end = _iban_at(text, match.start())
            if end is not None:
                return _Finding("an IBAN", f"characters {match.start()}-{end}")
        for match in _DIGIT_RUN.finditer(text):
            run = match.group(0)
            if len(run) < 13:
                continue
            if match.end() < len(text) and _is_word_char(text[match.end()]):  # the last group runs into a word
                run = run[:max(0, *(run.rfind(sep) for sep in _SEPARATORS))]
            found = _pan_in(run) if len(run) >= 13 else None
            if found is not None:
                return _Finding("a card number", f"characters {match.start() + found[0]}-{match.start() + found[1]}")
    if "@" in text:
        email = _EMAIL.search(text)
        if email is not None:
            return _Finding("an e-mail address", f"characters {email.start()}-{email.end()}")
    return registry._find(words_text)


def find_personal_data(text: str, *, registry: PersonalValueRegistry | None = None) -> PersonalDataFinding | None:
    """The first personal value in ``text`` and where it is, or None: for code that removes it (a prompt builder).

    The same scan as :func:`refuse_personal_text`, without the field names: IBANs, card numbers, e-mail
    addresses, and the values registered with ``registry`` (the process-wide one by default). The finding says
    where the value is (``"characters 4-26"`` or ``"words 3-4"``), never what it is.

    Examples:
        >>> find_personal_data("refund to GB82 WEST 1234 5698 7654 32 please")
        PersonalDataFinding(kind='an IBAN', at='characters 10-37')
        >>> find_personal_data("invoice 2026-118") is None
        True
    """
    return _find(text, registry if registry is not None else personal_value_registry())


# -- registered personal values ---------------------------------------------------------------------------
_APOSTROPHES = str.maketrans("", "", "'\u2019\u02bc`\u00b4")
_POSSESSIVE = re.compile("['\u2019\u02bc]s\\b")
_WORD = re.compile(r"[^\W_]+")
_JOINERS = str.maketrans("", "", ".-\u2010\u2011")
_APOSTROPHES_SPLIT = str.maketrans("'\u2019\u02bc`\u00b4", "     ")


def _words(value: str, *, split_apostrophes: bool = False) -> list[str]:
    """Normal form for matching: accents dropped, case folded, possessive 's removed, apostrophes removed
    (``O'Brien`` is ``obrien``) or read as spaces (``d'Ada`` is ``d ada``), split on anything else."""
    if not value.isascii():
        value = "".join(ch for ch in unicodedata.normalize("NFKD", value) if not unicodedata.combining(ch))
    value = _POSSESSIVE.sub("", value.casefold())
    return _WORD.findall(value.translate(_APOSTROPHES_SPLIT if split_apostrophes else _APOSTROPHES))


def _has_apostrophe(value: str) -> bool:
    return any(ch in value for ch in "'\u2019\u02bc`\u00b4")


class PersonalValueRegistry:
    """Keyed hashes of personal values the process has seen, so the guard can refuse text holding them.

    Each value is stored as a BLAKE2b hash, keyed with a secret made for this registry, of its normalised
    words (accents dropped, case folded, apostrophes removed or read as spaces; also with dots and hyphens
    removed, so ``J.R.R.`` matches ``JRR``). Matches are on whole words only: ``Ann Smith`` is found in
    ``paid ANN SMITH's invoice`` but not in ``Annsmithfield``. A lookup hashes each word of the text once
    with Python's string hash and a secret salt, and computes keyed hashes only where a 32-bit tag of a
    registered value's first word matches. Values with fewer than ``min_chars`` letters and digits are
    not registered (they would match ordinary words); beyond ``max_entries`` the oldest are forgotten,
    so memory stays bounded in a long-lived process. Thread-safe.

    Examples:
        >>> registry = PersonalValueRegistry()
        >>> registry.register("Zoë O'Brien")
        True
        >>> registry.find("invoice for ZOE OBRIEN, paid"), registry.find("payment E2E-1 authorised")
        ('name', None)
        >>> "obrien" in repr(registry.__dict__).lower()
        False
    """

    def __init__(self, *, key: bytes | None = None, min_chars: int = 4, max_entries: int = 100_000) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        if not 16 <= len(self._key) <= 64:
            raise ValueError("key must be 16 to 64 bytes (a BLAKE2b key)")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.min_chars = min_chars
        self.max_entries = max_entries
        self._salt = secrets.token_hex(16)
        self._digests: dict[bytes, tuple[str, int, int]] = {}  # digest -> (kind, words, first-word tag), oldest first
        self._first: dict[int, dict[int, int]] = {}  # first-word tag -> {word count: entries}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"PersonalValueRegistry(entries={len(self._digests)})"

    def _digest(self, words: Sequence[str]) -> bytes:
        return hashlib.blake2b(" ".join(words).encode("utf-8"), key=self._key, digest_size=16).digest()

    def _tag(self, word: str) -> int:
        return hash(self._salt + word) & 0xFFFFFFFF

    def register(self, value: str, *, kind: str = "name") -> bool:
        """Remember ``value`` (as keyed hashes); returns False if it is too short to register.

        ``kind`` says what the value is (``name``, ``account number``): refusals name the kind, not the value.
        """
        forms = {tuple(_words(value)), tuple(_words(value.translate(_JOINERS)))}
        if _has_apostrophe(value):
            forms.add(tuple(_words(value, split_apostrophes=True)))
        forms = {f for f in forms if sum(len(w) for w in f) >= self.min_chars}
        if not forms:
            return False
        with self._lock:
            for form in forms:
                digest = self._digest(form)
                if digest in self._digests:
                    continue
                if len(self._digests) >= self.max_entries:
                    self._forget_oldest()
                tag = self._tag(form[0])
                self._digests[digest] = (kind, len(form), tag)
                counts = self._first.setdefault(tag, {})
                counts[len(form)] = counts.get(len(form), 0) + 1
        return True

    def register_many(self, values: Iterable[str], *, kind: str = "name") -> int:
        """Register each of ``values``; returns how many were registered."""
        return sum(self.register(value, kind=kind) for value in values)

    def _forget_oldest(self) -> None:
        _, n, tag = self._digests.pop(next(iter(self._digests)))
        counts = self._first[tag]
        counts[n] -= 1
        if not counts[n]:
            del counts[n]
            if not counts:
                del self._first[tag]

    def clear(self) -> None:
        """Forget every registered value."""
        with self._lock:
            self._digests.clear()
            self._first.clear()

    def find(self, text: str) -> str | None:
        """The kind of a registered value that ``text`` holds as whole words, or None."""
        finding = self._find(text)
        return None if finding is None else finding.kind.removeprefix("a registered ")

    def _find(self, text: str) -> _Finding | None:
        if not self._first:
            return None
        found = self._find_words(_words(text))
        if found is None and _has_apostrophe(text):
            found = self._find_words(_words(text, split_apostrophes=True))
        return found

    def _find_words(self, words: list[str]) -> _Finding | None:
        first, salt = self._first, self._salt
        for i, word in enumerate(words):
            counts = first.get(hash(salt + word) & 0xFFFFFFFF)
            if not counts:
                continue
            for n in tuple(counts):
                if i + n <= len(words):
                    entry = self._digests.get(self._digest(words[i:i + n]))
                    if entry is not None:
                        return _Finding(f"a registered {entry[0]}", f"words {i + 1}-{i + n}")
        return None


_DEFAULT_REGISTRY = PersonalValueRegistry()


def personal_value_registry() -> PersonalValueRegistry:
    """The process's registry: the one the guard consults when no registry is passed.

    Examples:
        >>> isinstance(personal_value_registry(), PersonalValueRegistry)
        True
    """
    return _DEFAULT_REGISTRY


def register_personal_values(values: Iterable[str], *, kind: str = "name") -> int:
    """Register ``values`` (names the pipeline tokenised, say) in the process's registry; returns how many.

    Call it where the values are tokenised, before any telemetry about the payment is written.

    Examples:
        >>> register_personal_values(["Ada Lovelace"])  # doctest: +SKIP
        1
    """
    return _DEFAULT_REGISTRY.register_many(values, kind=kind)


# -- the guard ----------------------------------------------------------------------------------------------
def _norm(name: str) -> str:
    if not name.isascii():
        name = "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]", "", name.casefold())


@lru_cache(maxsize=4096)
def _named_personal(key: str) -> bool:
    name = _norm(key)
    return name in PERSONAL_FIELD_NAMES or (name.endswith(_SUFFIXES) and not name.endswith(_SAFE_SUFFIXES))


def refuse_personal_text(text: str, *, where: str = "telemetry", registry: PersonalValueRegistry | None = None) -> None:
    """Raise :class:`PersonalDataError` if free text (a log message) holds personal data.

    Personal data is an IBAN, a card number, an e-mail address, or a value registered in ``registry``
    (default: :func:`personal_value_registry`); see the module's documentation for the method.

    Examples:
        >>> refuse_personal_text("payment E2E-1 authorised at 2026-11-28T09:30:00.000Z")
        >>> refuse_personal_text("looked up GB82-WEST-1234-5698-7654-32 for a refund")
        Traceback (most recent call last):
        ...
        fasterpay.observability.redaction.PersonalDataError: telemetry text holds an IBAN at characters 10-37; log the vault's token instead
    """
    finding = _find(text, _DEFAULT_REGISTRY if registry is None else registry)
    if finding is not None:
        raise PersonalDataError(f"{where} text holds {finding.kind} at {finding.at}; {_TOKEN_REMINDER}")


def _children(node: object) -> tuple[bool, list[tuple[object, object]]] | None:
    """Whether ``node`` is keyed, and its ``(key or index, child)`` pairs; None for a scalar."""
    if isinstance(node, Mapping):
        return True, list(node.items())
    if is_dataclass(node) and not isinstance(node, type):
        return True, [(f.name, getattr(node, f.name)) for f in dataclass_fields(node)]
    if isinstance(node, (Sequence, Set)) and not isinstance(node, (str, bytes, bytearray, memoryview)):
        return False, list(enumerate(node))
    return None


def _as_text(node: object) -> str | None:
    if node is None or isinstance(node, bool):
        return None
    if isinstance(node, str):
        return node
    if isinstance(node, (bytes, bytearray, memoryview)):
        return bytes(node).decode("utf-8", errors="replace")
    return str(node)  # numbers (a PAN as an int or Decimal), dates, UUIDs, enums: as they would be logged


def refuse_personal_data(fields: object, *, where: str = "telemetry",
                         registry: PersonalValueRegistry | None = None) -> None:
    """Raise :class:`PersonalDataError` naming the first field that holds, or is named for, personal data.

    ``fields`` is usually a mapping (log fields, span attributes, dimensions); nested mappings, lists,
    tuples, sets and dataclasses are walked to any depth (cycles are visited once), and every key and
    value is checked. The error names the field's path (``refs/debtor/0``), never its value. A trace id (32
    lower-case hex digits under ``trace_id``) or span id (16 under ``span_id``, ``parent_id``) is an id,
    not a card number.

    Examples:
        >>> refuse_personal_data({"end_to_end_id": "E2E-1", "debtor": "tok_iban_3f9a", "amount_minor": 1250})
        >>> refuse_personal_data({"payment": {"parties": [{"Debtor-Name": "tok_name_1"}]}})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fasterpay.observability.redaction.PersonalDataError: telemetry field 'payment/parties/0/Debtor-Name' is named for ...
        >>> refuse_personal_data({"card": 4111111111111111})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fasterpay.observability.redaction.PersonalDataError: telemetry field 'card' holds a card number at ...
    """
    registry = _DEFAULT_REGISTRY if registry is None else registry
    stack: list[tuple[bool, str, object]] = [(False, "", fields)]  # (is a key, path, key or value)
    seen: set[int] = set()
    while stack:
        is_key, path, node = stack.pop()
        if type(node) is str:  # the common case first
            if is_key:
                _refuse_key(node, path, where, registry)
            else:
                _refuse_value(node, path, where, registry)
            continue
        if is_key:
            _refuse_key(str(node), path, where, registry)
            continue
        container = _children(node)
        if container is None:
            text = _as_text(node)
            if text is not None:
                _refuse_value(text, path, where, registry)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        keyed, children = container
        for key, child in reversed(children):  # popped in order: each key, then its value
            if not (keyed and isinstance(child, str) and _is_trace_id(str(key), child)):
                stack.append((False, f"{path}/{key}" if path else str(key), child))
            if keyed:
                stack.append((True, path, key))


def _is_trace_id(key: str, value: str) -> bool:
    form = _TRACE_IDS.get(_norm(key)) if len(value) in (16, 32) else None
    return form is not None and form.fullmatch(value) is not None


def _refuse_value(text: str, path: str, where: str, registry: PersonalValueRegistry) -> None:
    finding = _find(text, registry)
    if finding is not None:
        subject = f"field {path!r}" if path else "value"
        raise PersonalDataError(f"{where} {subject} holds {finding.kind} at {finding.at}; {_TOKEN_REMINDER}")


def _refuse_key(key: str, parent: str, where: str, registry: PersonalValueRegistry) -> None:
    finding = _find(key, registry)
    if finding is not None:  # a key that is itself personal (a dict keyed by IBAN): never echo it
        subject = f"field {parent!r} has a key that" if parent else "a field name"
        raise PersonalDataError(f"{where} {subject} holds {finding.kind}; {_TOKEN_REMINDER}")
    if _named_personal(key):
        path = f"{parent}/{key}" if parent else key
        raise PersonalDataError(f"{where} field {path!r} is named for personal data; "
                                "log a token or a correlation id instead")
