"""How well sanctions screening resists altered names: false-negative and false-positive rates, measured.

:func:`evaluate_screening` builds a seeded synthetic set: variants of every listed name, one class of
alteration at a time (:data:`VARIANT_CLASSES`), and control names that are not listed
(:data:`CONTROL_CLASSES`: realistic names from many languages, and near misses that share a word or most
letters with a listed name). It screens each name three ways (:data:`METHODS`):

* ``exact_before``: the screening before issue 9, equality of :func:`~fasterpay.pipeline.screening.screening_form`
  (what deterministic token equality decides; the vault's HMAC adds nothing to the comparison);
* ``normalised_exact``: equality of confusables skeletons (:class:`~fasterpay.pipeline.screening.NameMatcher`
  with ``fuzzy=False``);
* ``normalised_fuzzy``: skeletons, then the fuzzy score at the threshold (what the pipeline runs).

A variant that does not hit is a false negative; a control that hits is a false positive. The look-alikes
used here are written out in this module, not taken from the screening's own table. Fast enough for CI:
about a second at the default size.

    python -m simulations.screening_eval --per-class 1000
"""

from __future__ import annotations

import argparse
import random
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fasterpay.pipeline.screening import DEFAULT_THRESHOLD, NameMatcher, load_sanctions_list, screening_form

__all__ = ["CONTROL_CLASSES", "METHODS", "VARIANT_CLASSES", "ScreeningEvaluation", "control_names",
           "evaluate_screening", "listed_variants", "main"]

#: Look-alikes an attacker may swap in: Cyrillic (first) and Greek (second), "" where a script has none.
_HOMOGLYPHS: dict[str, tuple[str, str]] = {
    "a": ("а", "α"), "c": ("с", "ϲ"), "e": ("е", ""), "i": ("і", "ι"), "o": ("о", "ο"), "p": ("р", "ρ"),
    "x": ("х", "χ"), "y": ("у", "γ"), "s": ("ѕ", ""), "j": ("ј", "ϳ"), "h": ("һ", ""), "d": ("ԁ", ""),
    "w": ("ԝ", ""), "v": ("ѵ", "ν"), "u": ("", "υ"), "n": ("", "η"), "k": ("", "κ"),
    "A": ("А", "Α"), "B": ("В", "Β"), "C": ("С", "Ϲ"), "E": ("Е", "Ε"), "H": ("Н", "Η"), "I": ("І", "Ι"),
    "K": ("К", "Κ"), "M": ("М", "Μ"), "N": ("", "Ν"), "O": ("О", "Ο"), "P": ("Р", "Ρ"), "T": ("Т", "Τ"),
    "X": ("Х", "Χ"), "Y": ("У", "Υ"), "Z": ("", "Ζ"), "S": ("Ѕ", ""), "J": ("Ј", ""),
}
_MARKS = ("\u0300", "\u0301", "\u0302", "\u0303", "\u0308", "\u030a", "\u030c", "\u0327")  # grave ... cedilla
_STROKES = {"o": "ø", "l": "ł", "d": "đ", "O": "Ø", "L": "Ł", "D": "Đ"}
_DIGITS = {"o": "0", "O": "0", "l": "1", "I": "1", "i": "1"}
_INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u00ad", "\u2060", "\ufeff")
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"

#: One alteration of a listed name per class.
VARIANT_CLASSES = ("homoglyph", "diacritics", "fullwidth", "case_punctuation_spacing", "word_order", "typo",
                   "initials", "digits", "invisible", "combined")
#: Names that are not listed.
CONTROL_CLASSES = ("realistic", "near_miss")
#: The screenings compared.
METHODS = ("exact_before", "normalised_exact", "normalised_fuzzy")

_GIVEN = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Tim", "Radia", "Ken", "Sophie",
          "Niklaus", "Zoë", "José", "Łukasz", "Siobhán", "Mohammed", "Aisha", "Wei", "Priya", "Olumide",
          "Ingrid", "Søren", "Chloé", "Mateo", "Yuki", "Fatima", "Dmitri", "Anastasia", "Kwame", "Oliver",
          "Amelia", "Isla", "Jack", "Harry", "Emily", "Thomas", "Charlotte", "Noah", "Mia", "Ivan", "Morgan",
          "Cass", "Octave", "Thad", "Perry", "Zeph", "Balt")
_FAMILY = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Berners-Lee", "Perlman",
           "Thompson", "Wilson", "Wirth", "O'Brien", "Álvarez", "Wójcik", "Ní Bhriain", "Al-Farsi", "Okafor",
           "Nguyễn", "Müller", "Johansson", "Kowalski", "Patel", "Chen", "Mensah", "Smith", "Jones", "Taylor",
           "Brown", "Davies", "Evans", "Shadwell", "Blackwood", "Grimshaw", "Vesey", "Nightingale",
           "Ravenscroft", "Coldwell", "Ironside", "Blackmore", "Vickers")
_BUSINESS = ("Ltd", "Holdings", "Trading", "& Sons", "Partners LLP", "Group plc")
#: Real-looking names close to a listed one (a shared word, or most letters): they must not hit.
_NEAR_MISSES = (
    "Ivor Shadwell", "Ivan Shadowman", "Ivor Meadowmere", "Ivy Shadmore", "Morwenna Blackwood",
    "Morgan Blackvale-Jones", "Marianne Blackwell", "Morwenna Blake", "Cassius Grimshaw", "Cass Grimes",
    "Cassia Grantham", "Casimir Grimthorn", "Octavia Vesey", "Octavian Vexford", "Olivia Vexler",
    "Octavia Bexley", "Thaddeus Nightingale", "Thad Knightley", "Theodore Nightshaw", "Thaddeus Mightshade",
    "Zephyrine Coldwater", "Zephyr Coldhaven", "Josephine Coldharbour-Smith", "Seraphine Coldharbor",
    "Balthazar Ironside Holdings", "Baltasar Ironmaster", "Ironmonger Brothers Ltd", "Perpetua Ravenscroft",
    "Perpetua Ravensthorpe", "Petra Ravensworth-Hughes", "Perdita Rainsworth", "Persephone Ravenswood",
)


def _swap(name: str, rng: random.Random, table: dict[str, str], count: int) -> str:
    """Replace up to ``count`` letters of ``name`` that ``table`` has a look-alike for."""
    chars = list(name)
    spots = [n for n, ch in enumerate(chars) if table.get(ch)]
    for n in rng.sample(spots, min(count, len(spots))):
        chars[n] = table[chars[n]]
    return "".join(chars)


def _homoglyph(name: str, rng: random.Random) -> str:
    script = rng.randrange(2)
    table = {k: v[script] or v[1 - script] for k, v in _HOMOGLYPHS.items()}
    return _swap(name, rng, table, rng.randint(1, 3))


def _diacritics(name: str, rng: random.Random) -> str:
    chars = list(name)
    letters = [n for n, ch in enumerate(chars) if ch.isalpha()]
    for n in rng.sample(letters, min(len(letters), rng.randint(1, 3))):
        if chars[n] in _STROKES and rng.random() < 0.3:
            chars[n] = _STROKES[chars[n]]
        else:
            chars[n] = unicodedata.normalize("NFC", chars[n] + rng.choice(_MARKS))
    return "".join(chars)


def _fullwidth(name: str, rng: random.Random) -> str:
    whole = rng.random() < 0.5
    return "".join(("\u3000" if ch == " " else chr(ord(ch) + 0xFEE0)) if (whole or rng.random() < 0.5)
                   and (ch == " " or "!" <= ch <= "~") else ch for ch in name)


def _case_punctuation_spacing(name: str, rng: random.Random) -> str:
    words = name.split()
    words = [rng.choice((str.upper, str.lower, str.title, lambda w: w))(w) for w in words]
    joiner = rng.choice(("  ", " - ", "-", "", ". ", ", ", " . "))
    spot = rng.randrange(len(words) - 1) if len(words) > 1 else 0
    text = " ".join(words[:spot + 1]) + joiner + " ".join(words[spot + 1:])
    return rng.choice(("", " ", "'")) + text.strip() + rng.choice(("", ".", " ", ",", "  "))


def _word_order(name: str, rng: random.Random) -> str:
    words = name.split()
    if rng.random() < 0.5:
        return f"{words[-1].upper()}, {' '.join(words[:-1])}"
    rotated = words[1:] + words[:1]
    return " ".join(rotated if rotated != words else words[::-1])


def _typo(name: str, rng: random.Random) -> str:
    words = name.split()
    n = rng.randrange(len(words))
    word = words[n]
    at = rng.randrange(1, len(word))  # the first letter kept, as most typos do
    kind = rng.choice(("substitute", "delete", "insert", "transpose"))
    if kind == "substitute":
        word = word[:at] + rng.choice([c for c in _KEYBOARD if c != word[at].lower()]) + word[at + 1:]
    elif kind == "delete":
        word = word[:at] + word[at + 1:]
    elif kind == "insert":
        word = word[:at] + rng.choice(_KEYBOARD) + word[at:]
    elif at < len(word) - 1 and word[at] != word[at + 1]:
        word = word[:at] + word[at + 1] + word[at] + word[at + 2:]
    else:
        word = word[:at] + word[at + 1:]
    words[n] = word
    return " ".join(words)


def _initials(name: str, rng: random.Random) -> str:
    words = name.split()
    n = rng.randrange(len(words) - 1) if len(words) > 1 else 0
    words[n] = words[n][0] + rng.choice((".", "", ". "))
    return " ".join(words).replace(". ", ". ").replace("  ", " ")


def _digits(name: str, rng: random.Random) -> str:
    return _swap(name, rng, _DIGITS, rng.randint(1, 2))


def _invisible(name: str, rng: random.Random) -> str:
    chars = list(name)
    for _ in range(rng.randint(1, 2)):
        chars.insert(rng.randrange(1, len(chars)), rng.choice(_INVISIBLE))
    return "".join(chars)


def _combined(name: str, rng: random.Random) -> str:
    return _homoglyph(_diacritics(_case_punctuation_spacing(name, rng), rng), rng)


_ALTERATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "homoglyph": _homoglyph, "diacritics": _diacritics, "fullwidth": _fullwidth,
    "case_punctuation_spacing": _case_punctuation_spacing, "word_order": _word_order, "typo": _typo,
    "initials": _initials, "digits": _digits, "invisible": _invisible, "combined": _combined,
}


def listed_variants(names: Sequence[str], *, per_class: int, seed: int) -> dict[str, list[str]]:
    """``per_class`` altered copies of the listed names for each of :data:`VARIANT_CLASSES` (seeded).

    Examples:
        >>> variants = listed_variants(["Ivor Shadowmere"], per_class=2, seed=1)
        >>> sorted(variants) == sorted(VARIANT_CLASSES), len(variants["typo"])
        (True, 2)
    """
    rng = random.Random(seed)
    return {cls: [_ALTERATIONS[cls](names[n % len(names)], rng) for n in range(per_class)]
            for cls in VARIANT_CLASSES}


def control_names(*, count: int, seed: int) -> dict[str, list[str]]:
    """``count`` realistic names that are not listed, and the fixed near misses (seeded).

    Examples:
        >>> controls = control_names(count=3, seed=1)
        >>> len(controls["realistic"]), "Octavia Vesey" in controls["near_miss"]
        (3, True)
    """
    rng = random.Random(seed)
    realistic = []
    for _ in range(count):
        words = [rng.choice(_GIVEN)] + ([rng.choice(_GIVEN)] if rng.random() < 0.15 else []) + [rng.choice(_FAMILY)]
        if rng.random() < 0.1:
            words.append(rng.choice(_BUSINESS))
        realistic.append(" ".join(words))
    return {"realistic": realistic, "near_miss": list(_NEAR_MISSES)}


@dataclass(frozen=True)
class ScreeningEvaluation:
    """Rates per screening method (:data:`METHODS`): overall and per class, with the cost per name.

    ``false_negative_rate[method]`` is the share of listed-name variants that did not hit;
    ``false_positive_rate[method]`` the share of control names that hit; ``sweep`` is
    ``(threshold, false_positive_rate, false_negative_rate)`` of the fuzzy screen at other thresholds;
    ``microseconds_per_name`` is CPU time, averaged over variants and controls together.
    """

    seed: int
    threshold: float
    listed: int
    variants: int
    controls: int
    false_negative_rate: dict[str, float]
    false_positive_rate: dict[str, float]
    false_negative_by_class: dict[str, dict[str, float]]
    false_positive_by_class: dict[str, dict[str, float]]
    microseconds_per_name: dict[str, float]
    sweep: tuple[tuple[float, float, float], ...]
    examples: dict[str, str]
    missed: tuple[str, ...]  #: variants the fuzzy screen missed (up to 20), for inspection
    false_hits: tuple[str, ...]  #: controls the fuzzy screen hit (up to 20)

    def rows(self) -> list[dict[str, object]]:
        """One row per method: the table the article shows."""
        return [{"method": m, "false_negative_rate": self.false_negative_rate[m],
                 "false_positive_rate": self.false_positive_rate[m],
                 "microseconds_per_name": self.microseconds_per_name[m]} for m in METHODS]


def _screens(names: Sequence[str], threshold: float) -> dict[str, Callable[[str], bool]]:
    forms = {screening_form(n) for n in names}
    exact = NameMatcher(names, threshold=threshold, fuzzy=False)
    fuzzy = NameMatcher(names, threshold=threshold)
    return {"exact_before": lambda name: screening_form(name) in forms,
            "normalised_exact": lambda name: exact.match(name) is not None,
            "normalised_fuzzy": lambda name: fuzzy.match(name) is not None}


def _rate(hits: Sequence[bool]) -> float:
    return sum(hits) / len(hits) if hits else 0.0


def evaluate_screening(*, per_class: int = 100, controls: int = 1000, seed: int = 7,
                       threshold: float = DEFAULT_THRESHOLD, names: Sequence[str] | None = None,
                       sweep: Sequence[float] = (0.82, 0.85, 0.88, 0.91, 0.94)) -> ScreeningEvaluation:
    """Screen seeded variants and controls with each method; count misses, false hits and time per name.

    Examples:
        >>> result = evaluate_screening(per_class=20, controls=100, seed=1)
        >>> result.false_negative_rate["normalised_fuzzy"] < result.false_negative_rate["exact_before"]
        True
    """
    listed = list(load_sanctions_list() if names is None else names)
    variants = listed_variants(listed, per_class=per_class, seed=seed)
    negatives = control_names(count=controls, seed=seed + 1)
    everything = [n for group in (*variants.values(), *negatives.values()) for n in group]
    fn_by: dict[str, dict[str, float]] = {}
    fp_by: dict[str, dict[str, float]] = {}
    fn: dict[str, float] = {}
    fp: dict[str, float] = {}
    cost: dict[str, float] = {}
    for method, screen in _screens(listed, threshold).items():
        started = time.process_time()  # CPU time: a busy machine does not inflate it
        verdict = {name: screen(name) for name in everything}
        cost[method] = (time.process_time() - started) / len(everything) * 1e6
        fn_by[method] = {cls: _rate([not verdict[v] for v in group]) for cls, group in variants.items()}
        fp_by[method] = {cls: _rate([verdict[c] for c in group]) for cls, group in negatives.items()}
        fn[method] = _rate([not verdict[v] for group in variants.values() for v in group])
        fp[method] = _rate([verdict[c] for group in negatives.values() for c in group])
        if method == "normalised_fuzzy":
            missed = tuple(v for group in variants.values() for v in group if not verdict[v])[:20]
            false_hits = tuple(c for group in negatives.values() for c in group if verdict[c])[:20]
    points = []
    for level in sweep:
        screen = _screens(listed, level)["normalised_fuzzy"]
        points.append((level, _rate([screen(c) for g in negatives.values() for c in g]),
                       _rate([not screen(v) for g in variants.values() for v in g])))
    return ScreeningEvaluation(
        seed=seed, threshold=threshold, listed=len(listed),
        variants=sum(map(len, variants.values())), controls=sum(map(len, negatives.values())),
        false_negative_rate=fn, false_positive_rate=fp, false_negative_by_class=fn_by,
        false_positive_by_class=fp_by, microseconds_per_name=cost, sweep=tuple(points),
        examples={cls: group[0] for cls, group in variants.items()}, missed=missed, false_hits=false_hits,
    )


def main(argv: Sequence[str] | None = None) -> ScreeningEvaluation:
    """Print the rates: ``python -m simulations.screening_eval [--per-class N] [--controls N] [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--controls", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = parser.parse_args(argv)
    result = evaluate_screening(per_class=args.per_class, controls=args.controls, seed=args.seed,
                                threshold=args.threshold)
    print(f"{result.variants} variants of {result.listed} listed names, {result.controls} controls, "
          f"threshold {result.threshold}")
    print(f"{'method':<18} {'FN rate':>8} {'FP rate':>8} {'CPU µs/name':>12}")
    for row in result.rows():
        print(f"{row['method']:<18} {row['false_negative_rate']:>8.4f} {row['false_positive_rate']:>8.4f} "
              f"{row['microseconds_per_name']:>12.1f}")
    print("false-negative rate by class:")
    for cls in VARIANT_CLASSES:
        print(f"  {cls:<26}" + "".join(f" {result.false_negative_by_class[m][cls]:>7.4f}" for m in METHODS))
    print("false-positive rate by class:")
    for cls in CONTROL_CLASSES:
        print(f"  {cls:<26}" + "".join(f" {result.false_positive_by_class[m][cls]:>7.4f}" for m in METHODS))
    print("threshold sweep (fuzzy): " + ", ".join(f"{t}: FP {p:.4f} FN {n:.4f}" for t, p, n in result.sweep))
    if result.missed:
        print("missed:", "; ".join(result.missed))
    if result.false_hits:
        print("false hits:", "; ".join(result.false_hits))
    return result


if __name__ == "__main__":
    main()
