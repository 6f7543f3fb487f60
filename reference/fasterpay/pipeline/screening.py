"""Authorisation checks that run inside the vault's trust boundary: sanctions screening and fraud rules.

Screening runs in the accept handler, which sees names in clear before it tokenises them. A party name is
screened three ways, cheapest first; any hit rejects the payment (RR04):

1. **token**: the deterministic vault token of the name's :func:`screening_form` (the token the payment
   stores) against the tokenised list. The only check that needs no clear name.
2. **exact**: the name's :func:`screening_key` (a confusables skeleton) against the list's keys, in the
   name's word order or sorted. Homoglyphs, diacritics, fullwidth forms, case, spacing and punctuation
   no longer matter.
3. **fuzzy**: a similarity score of at least ``threshold`` (default :data:`DEFAULT_THRESHOLD`) between
   skeletons, on clear names against the clear list. It catches word order, one-letter typos, initials,
   and split or joined words.

The skeleton follows Unicode TR39 (section 4, "skeleton"), with case and diacritics folded as well:

1. map confusables (:data:`CONFUSABLES`, a documented subset of TR39's ``confusables.txt``: Cyrillic,
   Greek, Armenian and Latin look-alikes of Latin letters), then NFKC, which folds fullwidth,
   mathematical and circled forms;
2. drop format characters (zero-width spaces and joiners, soft hyphens), map confusables again, casefold;
3. NFD, drop combining marks, map confusables once more (``Ё`` has become ``е``), and fold the Latin
   letters that do not decompose (``ø``, ``ł``, ``đ``, ``æ``...);
4. ``0`` becomes ``o``; ``I``, ``1`` and ``|`` become ``l`` as in TR39, and so does ``i``, since case is
   folded (``lvor`` is ``Ivor``); ``rn`` becomes ``m`` and ``vv`` ``w``;
5. apostrophes are dropped; any other character that is not a letter or a digit separates words.

The skeleton is a matching key only: it is never stored or tokenised.

The fuzzy score of a name against a listed name is the larger of:

* *coverage*: for each word of the listed name, its best normalised similarity
  (``1 - distance / longer length``, the distance being Levenshtein's with a swap of two adjacent letters
  as one edit: optimal string alignment) to a word of the name or to two adjacent words joined; a single
  letter that is the listed word's initial counts :data:`INITIAL_CREDIT`; averaged, weighted by the
  listed words' lengths. Extra words in the name ("Mr", a middle name, "Ltd") do not lower it.
* *compact*: the normalised similarity of the two skeletons with their spaces removed.

A score of at least ``threshold`` needs one listed word (or the compact form) within a few edits of the
name, so candidates are found in a deletion index (SymSpell: up to 2 deletions for a word, 1 for joined
words) and only they are scored, with a bit-parallel distance (Myers; Hyyrö for the swaps): the cost
per name hardly grows with the list. What screening does not do: aliases (list them as names),
transliteration between scripts (Арсений is not Arseny), phonetic matching, and review queues: every
hit here rejects.
"""

from __future__ import annotations

import re
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal

import yaml

from .model import Payment

__all__ = [
    "CONFUSABLES",
    "DEFAULT_THRESHOLD",
    "INITIAL_CREDIT",
    "FraudRules",
    "NameMatch",
    "NameMatcher",
    "SanctionsScreen",
    "ScreeningConfigurationError",
    "load_sanctions_list",
    "screening_form",
    "screening_key",
]

_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s-]")
_SEPARATORS = re.compile(r"[\W_]+")  # whatever is not a letter or a digit
SANCTIONS_SUBJECT = "sanctions-list"

#: A fuzzy score at or above this rejects (see the module docstring; measured in simulations/screening_eval.py).
DEFAULT_THRESHOLD = 0.85
#: What a single letter scores against a listed word it is the initial of ("I. Shadowmere").
INITIAL_CREDIT = 0.8

#: Look-alikes of Latin letters (a subset of Unicode TR39 ``confusables.txt``, MA table), mapped to the
#: Latin letter. Applied before case folding (capitals, whose lower case may look different: Greek ``Η``
#: is ``H``, its ``η`` is ``n``) and after it.
CONFUSABLES: Mapping[str, str] = {
    # Cyrillic capitals
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "l", "Ј": "J", "К": "K", "М": "M", "О": "O",
    "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "l", "Ԍ": "G",
    # Cyrillic small letters
    "а": "a", "с": "c", "ԁ": "d", "е": "e", "һ": "h", "і": "l", "ј": "j", "ӏ": "l", "о": "o", "р": "p",
    "ԛ": "q", "ѕ": "s", "ԝ": "w", "х": "x", "у": "y", "ү": "y", "ѵ": "v",
    # Greek capitals
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "l", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
    # Greek small letters
    "α": "a", "γ": "y", "η": "n", "ι": "l", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "υ": "u", "χ": "x",
    "ϲ": "c", "ϳ": "j", "ϱ": "p",
    # Armenian
    "Օ": "O", "Տ": "S", "Ս": "U", "օ": "o", "ս": "u", "հ": "h", "ո": "n", "ց": "g", "զ": "q",
    # Latin look-alikes (IPA and others) and the l/I/1/| class (TR39 maps them all to "l")
    "ɑ": "a", "ɡ": "g", "ɩ": "l", "ı": "l", "ǀ": "l", "|": "l", "1": "l", "I": "l", "i": "l", "ȷ": "j", "ʋ": "u",
    "0": "o",
}
#: Latin letters that NFD does not decompose, folded as a diacritic would be.
_LATIN_FOLDS: Mapping[str, str] = {
    "ø": "o", "ł": "l", "đ": "d", "ð": "d", "ħ": "h", "ŧ": "t", "ƀ": "b", "ɨ": "l", "ŀ": "l", "ĸ": "k",
    "ŋ": "n", "ə": "e", "ɛ": "e", "æ": "ae", "œ": "oe", "þ": "th", "ß": "ss",
}
_APOSTROPHES = "'’‘ʼʻ`"
_MULTI = (("rn", "m"), ("vv", "w"))  # TR39's two-letter look-alikes
_CONFUSE = str.maketrans(dict(CONFUSABLES))
_FOLD = str.maketrans({**_LATIN_FOLDS, **{a: "" for a in _APOSTROPHES}})
_ASCII = bytes.maketrans(b"i1|0", b"lllo")  # CONFUSABLES on lower-case ASCII
_MAX_DEPTH = 2  # deletion-index depth: SymSpell's usual bound


class ScreeningConfigurationError(ValueError):
    """A screening setting is not usable; give a threshold above INITIAL_CREDIT and at most 1."""


def screening_form(name: str) -> str:
    """The normal form names are tokenised in: NFKC, upper case, no punctuation, single spaces.

    The payment's stored name token is the vault token of this form; screening keys never replace it.

    Examples:
        >>> screening_form("  ivor   shadow-mere. ")
        'IVOR SHADOW-MERE'
    """
    text = unicodedata.normalize("NFKC", name).upper()
    return _SPACES.sub(" ", _PUNCTUATION.sub("", text)).strip()


def screening_key(name: str) -> str:
    """The name's confusables skeleton, lower case, words separated by single spaces (see the module docs).

    Examples:
        >>> screening_key("Ivor Shаdowmère")  # a Cyrillic "а" and an "è"
        'lvor shadowmere'
        >>> screening_key("ＩＶＯＲ  O'SHADOW-MERE") == screening_key("lvor oshadow mere")
        True
    """
    if name.isascii():  # the common case: NFKC, NFD and the format and combining characters change nothing
        text = name.lower().encode("ascii").translate(_ASCII, b"'`").decode("ascii")
    else:
        text = unicodedata.normalize("NFKC", name.translate(_CONFUSE))  # NFKC makes a lunate sigma a sigma
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf").translate(_CONFUSE).casefold()
        text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
        text = text.translate(_CONFUSE).translate(_FOLD)
    for pair, single in _MULTI:
        text = text.replace(pair, single)
    return " ".join(_SEPARATORS.sub(" ", text).split())


def load_sanctions_list() -> list[str]:
    """The fictional test list shipped in ``sanctions.yaml``."""
    text = files(__name__.rpartition(".")[0]).joinpath("sanctions.yaml").read_text(encoding="utf-8")
    return [str(n) for n in yaml.safe_load(text)["names"]]


@dataclass(frozen=True)
class NameMatch:
    """Why a name hit: the listed name, how it matched and the score (1.0 for token and exact hits)."""

    listed: str
    method: Literal["token", "exact", "fuzzy"]
    score: float


def _pattern(word: str) -> dict[str, int]:
    """The bit mask of each character's positions in ``word`` (for :func:`_distance`)."""
    masks: dict[str, int] = {}
    for n, ch in enumerate(word):
        masks[ch] = masks.get(ch, 0) | 1 << n
    return masks


def _distance(word: str, masks: Mapping[str, int], other: str) -> int:
    """The optimal string alignment distance of ``word`` (with its :func:`_pattern`) and ``other``:
    Levenshtein's, with a swap of two adjacent letters as one edit. Hyyrö's bit-parallel algorithm (2003),
    one pass over ``other``."""
    if not word:
        return len(other)
    full, top = (1 << len(word)) - 1, 1 << (len(word) - 1)
    plus, minus, distance, diagonal, previous = full, 0, len(word), 0, 0
    for ch in other:
        eq = masks.get(ch, 0)
        swapped = ((~diagonal & eq) << 1) & previous
        diagonal = ((((eq & plus) + plus) ^ plus) | eq | minus | swapped) & full
        hp = minus | (~(diagonal | plus) & full)
        hm = plus & diagonal
        if hp & top:
            distance += 1
        elif hm & top:
            distance -= 1
        hp = ((hp << 1) | 1) & full
        hm = (hm << 1) & full
        plus = hm | (~(diagonal | hp) & full)
        minus = hp & diagonal
        previous = eq
    return distance


@dataclass(frozen=True)
class _Key:
    text: str
    masks: Mapping[str, int]

    @classmethod
    def of(cls, text: str) -> _Key:
        return cls(text, _pattern(text))

    def similarity(self, other: str) -> float:
        """Normalised similarity: 1 - distance / longer length."""
        if other == self.text:
            return 1.0
        return 1.0 - _distance(self.text, self.masks, other) / max(len(self.text), len(other), 1)


@dataclass(frozen=True)
class _Entry:
    listed: str
    words: tuple[_Key, ...]
    compact: _Key
    length: int


def _deletions(text: str, depth: int) -> set[str]:
    """``text`` and every string made by deleting up to ``depth`` of its characters (never all of them)."""
    found, frontier = {text}, {text}
    for _ in range(depth):
        frontier = {t[:n] + t[n + 1:] for t in frontier if len(t) > 1 for n in range(len(t))}
        found |= frontier
    return found


def _keys(words: tuple[str, ...]) -> tuple[set[str], set[str], str]:
    """The words, the adjacent pairs joined (what a split word matches), and the compact form."""
    joins = {"".join(words[n:n + 2]) for n in range(len(words) - 1)} - set(words)
    return set(words), joins, "".join(words)


def _lookups(words: set[str], joins: set[str], compact: str) -> list[tuple[str, bool]]:
    """Each key to look up in the deletion index, and whether it is a word (a deeper search)."""
    return [*((w, True) for w in words), *((j, False) for j in joins - words - {compact}),
            *([] if compact in words else [(compact, False)])]


class NameMatcher:
    """Screens clear names against a clear list: exact on skeletons, then fuzzy at ``threshold``.

    Examples:
        >>> matcher = NameMatcher(["Ivor Shadowmere"])
        >>> matcher.match("SHADOWMERE, Ivоr").method  # a Cyrillic "о", word order changed
        'exact'
        >>> round(matcher.match("Ivor Shadowmore").score, 2)
        0.93
        >>> matcher.match("Ivan Shadwell") is None
        True
    """

    def __init__(self, names: Iterable[str], *, threshold: float = DEFAULT_THRESHOLD, fuzzy: bool = True) -> None:
        if not INITIAL_CREDIT < threshold <= 1.0:
            raise ScreeningConfigurationError(
                f"threshold must be above {INITIAL_CREDIT} (an initial alone must never hit) and at most 1, "
                f"not {threshold}")
        self.threshold = threshold
        self.fuzzy = fuzzy
        self._exact: dict[str, str] = {}
        self._entries: list[_Entry] = []
        self._index: dict[str, tuple[int, ...]] = {}  # a deletion variant -> the entries it leads to
        for listed in names:
            words = tuple(screening_key(listed).split())
            if not words:
                continue
            singles, joins, compact = _keys(words)
            self._exact.setdefault(compact, listed)
            self._exact.setdefault(" ".join(sorted(words)), listed)
            number = len(self._entries)
            self._entries.append(_Entry(listed, tuple(map(_Key.of, words)), _Key.of(compact), len(compact)))
            variants: set[str] = set()
            for key, word in _lookups(singles, joins, compact):
                variants |= _deletions(key, self._depth(key, word=word))
            for variant in variants:
                self._index[variant] = (*self._index.get(variant, ()), number)

    def __len__(self) -> int:
        return len(self._entries)

    def _depth(self, key: str, *, word: bool) -> int:
        """The edits by which a string can differ from ``key`` and still score ``threshold``: at most 2 for a
        word, 1 for joined words (two typos in a name whose words are all joined or split are not found)."""
        return min(_MAX_DEPTH if word else 1, int((1.0 - self.threshold) * len(key) / self.threshold + 1e-9))

    def match(self, name: str | None) -> NameMatch | None:
        """The best hit of ``name`` on the list (exact first, then fuzzy), or None.

        Examples:
            >>> NameMatcher(["Morwenna Blackvale"]).match("M. Blackvale").method
            'fuzzy'
        """
        words = tuple(screening_key(name or "").split())
        if not words:
            return None
        singles, joins, compact = _keys(words)
        listed = self._exact.get(compact) or self._exact.get(" ".join(sorted(words)))
        if listed is not None:
            return NameMatch(listed, "exact", 1.0)
        if not self.fuzzy:
            return None
        candidates: set[int] = set()
        for key, word in _lookups(singles, joins, compact):
            for variant in _deletions(key, self._depth(key, word=word)):
                found = self._index.get(variant)
                if found:
                    candidates.update(found)
        best: NameMatch | None = None
        keys = singles | joins
        for number in sorted(candidates):
            entry = self._entries[number]
            score = self._score(entry, keys, compact)
            if score >= self.threshold and (best is None or score > best.score):
                best = NameMatch(entry.listed, "fuzzy", score)
        return best

    def _score(self, entry: _Entry, keys: set[str], compact: str) -> float:
        """Coverage of the listed words; the compact similarity only when coverage falls short."""
        covered = 0.0
        for listed_word in entry.words:
            size, best = len(listed_word.text), 0.0
            for key in keys:
                if len(key) == 1 and size > 1:
                    similarity = INITIAL_CREDIT if listed_word.text[0] == key else 0.0
                elif 1.0 - abs(size - len(key)) / max(size, len(key)) <= best:
                    continue  # the lengths alone rule out beating the best so far
                else:
                    similarity = listed_word.similarity(key)
                best = max(best, similarity)
                if best == 1.0:
                    break
            covered += size * best
        coverage = covered / sum(len(w.text) for w in entry.words)
        if coverage >= self.threshold:
            return coverage
        if 1.0 - abs(entry.length - len(compact)) / max(entry.length, len(compact)) < self.threshold:
            return coverage
        return max(coverage, entry.compact.similarity(compact))


class SanctionsScreen:
    """Screens a payment's parties: name tokens against the tokenised list, clear names against the clear list.

    Examples:
        >>> screen = SanctionsScreen.from_names(vault, load_sanctions_list(), tenant="bank-a")  # doctest: +SKIP
        >>> screen.hit(payment, names=("Ada Lovelace", "Ivor Shаdowmère"))  # doctest: +SKIP
        True
    """

    def __init__(self, tokens: Iterable[str] | Mapping[str, str], names: Iterable[str] = (), *,
                 threshold: float = DEFAULT_THRESHOLD) -> None:
        """``tokens``: the list's name tokens (or each token with its listed name); ``names``: the clear list."""
        self._listed = dict(tokens) if isinstance(tokens, Mapping) else dict.fromkeys(tokens, "")
        self.tokens = frozenset(self._listed)
        self.matcher = NameMatcher(names, threshold=threshold)

    @classmethod
    def from_names(cls, vault: Any, names: Iterable[str], *, tenant: str,
                   threshold: float = DEFAULT_THRESHOLD) -> SanctionsScreen:
        """Tokenise each listed name with the vault (deterministic tokens, same tenant as the payments),
        and keep the clear list for the skeleton and fuzzy checks.

        One batch call (a cold start's work); the skeletons cost no call.
        """
        names = list(names)
        requests = [(screening_form(n), "name", SANCTIONS_SUBJECT) for n in names]
        tokens = vault.tokenize_batch(requests, tenant=tenant, deterministic=True) if requests else []
        return cls(dict(zip(tokens, names, strict=True)), names, threshold=threshold)

    def match(self, payment: Payment, names: Iterable[str | None] = ()) -> NameMatch | None:
        """The first hit: a name token on the list, else the best hit of a clear party name, or None.

        Pass the debtor's and the creditor's clear names (inside the trust boundary only); without them
        only the token check runs.
        """
        for token in (payment.debtor_name_token, payment.creditor_name_token):
            if token in self.tokens:
                return NameMatch(self._listed[token], "token", 1.0)
        hits = [m for m in map(self.matcher.match, names) if m is not None]
        return max(hits, key=lambda m: m.score) if hits else None

    def hit(self, payment: Payment, names: Iterable[str | None] = ()) -> bool:
        """True when the debtor or the creditor is on the list (see :meth:`match`)."""
        return self.match(payment, names) is not None


@dataclass
class FraudRules:
    """Simple, explainable fraud rules; each hit rejects with ``reason`` (FR01).

    * a single payment above ``max_single_minor`` (per currency) is held back;
    * more than ``max_per_debtor`` payments from one debtor account in one run (a velocity rule; a real
      service keeps the counter in DynamoDB with a time window).

    Examples:
        >>> rules = FraudRules(max_single_minor={"GBP": 50_000_000})
        >>> rules.max_single_minor["GBP"]
        50000000
    """

    max_single_minor: dict[str, int] = field(default_factory=lambda: {"GBP": 50_000_000, "EUR": 50_000_000})
    max_per_debtor: int = 50
    reason: str = "FR01"
    max_debtors: int = 10_000  #: debtors remembered (least recently seen forgotten first): memory stays bounded
    _seen: OrderedDict[str, set[str]] = field(default_factory=OrderedDict, repr=False)

    def check(self, payment: Payment) -> str | None:
        """A narrative of the rule hit, or None."""
        limit = self.max_single_minor.get(payment.currency)
        if limit is not None and payment.amount_minor > limit:
            return "amount above the single-payment fraud threshold"
        seen = self._seen.setdefault(payment.debtor_account_token, set())
        self._seen.move_to_end(payment.debtor_account_token)
        while len(self._seen) > self.max_debtors:
            self._seen.popitem(last=False)
        seen.add(payment.uetr)  # a set, so a redelivered payment is not counted twice
        if len(seen) > self.max_per_debtor:
            return "too many payments from one debtor account (velocity)"
        return None
