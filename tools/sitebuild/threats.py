"""Threat models as data: load, validate and render ``compliance/threats/<slug>.yaml``.

Each threat follows the threat-composer grammar: "A [source] [prerequisites] can [action], which
leads to [impact], resulting in reduced [goals] of [assets]". Every mitigation points at the code
(``path::symbol``) and the tests (pytest node ids) that implement it, and loading fails if any of
them does not exist, so the rendered page cannot drift from the code.

Examples:
    >>> model = load_threat_model(Path("compliance/threats/tokenisation-vault.yaml"),
    ...                           repo_root=Path("."))                      # doctest: +SKIP
    >>> print(statement(model.threats[0]))                                 # doctest: +SKIP
    An internal actor with the router role's credentials can call kms:Decrypt ...
"""

from __future__ import annotations

import ast
import functools
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "GOALS",
    "PRIORITIES",
    "STATUSES",
    "STRIDE",
    "Asset",
    "Mitigation",
    "SourceRef",
    "Threat",
    "ThreatModel",
    "ThreatModelError",
    "load_threat_model",
    "render_markdown",
    "statement",
]

STRIDE: dict[str, str] = {
    "S": "spoofing",
    "T": "tampering",
    "R": "repudiation",
    "I": "information disclosure",
    "D": "denial of service",
    "E": "elevation of privilege",
}
GOALS: tuple[str, ...] = ("confidentiality", "integrity", "availability", "accountability", "privacy")
PRIORITIES: tuple[str, ...] = ("high", "medium", "low")
STATUSES: tuple[str, ...] = ("mitigated", "partially-mitigated", "open", "accepted")

_TOP_KEYS = {"article", "title", "assets", "threats", "mitigations"}
_ASSET_KEYS = {"id", "name"}
_THREAT_REQUIRED = {
    "id", "source", "action", "impact", "goals", "assets", "stride", "priority", "status",
}
_THREAT_KEYS = _THREAT_REQUIRED | {"prerequisites", "mitigations"}
_MITIGATION_REQUIRED = {"id", "title", "description"}
_MITIGATION_KEYS = _MITIGATION_REQUIRED | {"code", "tests"}
_NEEDS_MITIGATION = {"mitigated", "partially-mitigated"}


class ThreatModelError(ValueError):
    """A threat model file is malformed; ``problems`` lists every issue found."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{path}: {len(self.problems)} problem(s) in the threat model:\n{lines}\n"
            "Fix the file (the annotated schema is templates/threat-model.yaml) and build again."
        )


@dataclass(frozen=True)
class Asset:
    """Something of value that a threat reduces a goal of."""

    id: str
    name: str


@dataclass(frozen=True)
class SourceRef:
    """A checked reference into the repository: code ``path::symbol`` or a pytest node id."""

    ref: str  # as written in the YAML
    path: str  # relative to the repository root, POSIX separators
    line: int | None  # 1-based line of the symbol, None for a whole file


@dataclass(frozen=True)
class Mitigation:
    """A control, with the code and the tests that implement it."""

    id: str
    title: str
    description: str
    code: tuple[SourceRef, ...]
    tests: tuple[SourceRef, ...]


@dataclass(frozen=True)
class Threat:
    """One threat statement, with its assets and mitigations resolved."""

    id: str
    source: str
    prerequisites: str
    action: str
    impact: str
    goals: tuple[str, ...]
    assets: tuple[Asset, ...]
    stride: tuple[str, ...]
    priority: str
    status: str
    mitigations: tuple[Mitigation, ...]


@dataclass(frozen=True)
class ThreatModel:
    """A validated threat model for one article."""

    article: str
    title: str
    assets: tuple[Asset, ...]
    threats: tuple[Threat, ...]
    mitigations: tuple[Mitigation, ...]
    path: Path


# --------------------------------------------------------------------------- loading


def load_threat_model(path: Path, *, repo_root: Path) -> ThreatModel:
    """Load and validate one threat model file.

    Every problem is collected first, then raised together as one ``ThreatModelError``.

    Examples:
        >>> model = load_threat_model(Path("compliance/threats/tokenisation-vault.yaml"),
        ...                           repo_root=Path("."))                  # doctest: +SKIP
        >>> [t.id for t in model.threats]                                  # doctest: +SKIP
        ['T1', 'T2']
    """
    path = Path(path)
    repo_root = Path(repo_root).resolve()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThreatModelError(path, [f"cannot read the file: {exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ThreatModelError(path, [f"not valid YAML: {exc}"]) from exc

    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ThreatModelError(path, ["the file must be a mapping with keys " + _keys(_TOP_KEYS)])
    _check_keys(raw, _TOP_KEYS, _TOP_KEYS, "the file", problems)

    article = _text(raw, "article", "the file", problems)
    if article and article != path.stem:
        problems.append(f"article {article!r} does not match the file name {path.name!r}; "
                        f"rename one so that the file is {article}.yaml")
    title = _text(raw, "title", "the file", problems)

    assets = _load_assets(raw, problems)
    asset_by_id = {a.id: a for a in assets}
    mitigations = _load_mitigations(raw, repo_root, problems)
    mitigation_by_id = {m.id: m for m in mitigations}
    threats = _load_threats(raw, asset_by_id, mitigation_by_id, problems)

    used = {m.id for t in threats for m in t.mitigations}
    for mitigation in mitigations:
        if mitigation.id not in used:
            problems.append(f"mitigation {mitigation.id} is not used by any threat; "
                            "link it from a threat or remove it")

    if problems:
        raise ThreatModelError(path, problems)
    return ThreatModel(
        article=article,
        title=title,
        assets=tuple(assets),
        threats=tuple(threats),
        mitigations=tuple(mitigations),
        path=path,
    )


def _keys(keys: set[str]) -> str:
    return ", ".join(sorted(keys))


def _check_keys(
    entry: dict[Any, Any], required: set[str], allowed: set[str], where: str, problems: list[str]
) -> None:
    for key in sorted(required - entry.keys()):
        problems.append(f"{where}: missing {key!r}")
    for key in sorted(str(k) for k in entry.keys() - allowed):
        problems.append(f"{where}: unknown key {key!r} (allowed: {_keys(allowed)})")


def _text(entry: dict[Any, Any], key: str, where: str, problems: list[str], *,
          required: bool = True) -> str:
    value = entry.get(key)
    if value is None:
        return ""  # missing keys are reported by _check_keys
    if not isinstance(value, str) or (required and not value.strip()):
        problems.append(f"{where}: {key!r} must be a non-empty string, got {value!r}")
        return ""
    return " ".join(value.split())


def _str_list(entry: dict[Any, Any], key: str, where: str, problems: list[str], *,
              non_empty: bool) -> list[str]:
    value = entry.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{where}: {key!r} must be a list of strings, got {value!r}")
        return []
    if non_empty and not value:
        problems.append(f"{where}: {key!r} must not be empty")
    return value


def _entries(raw: dict[Any, Any], key: str, problems: list[str], *,
             non_empty: bool) -> list[dict[Any, Any]]:
    if key not in raw:
        return []  # reported by _check_keys
    value = raw[key]
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.append(f"{key!r} must be a list of mappings")
        return []
    if non_empty and not value:
        problems.append(f"{key!r} must list at least one entry")
    return value


def _entry_id(entry: dict[Any, Any], kind: str, index: int, seen: set[str],
              problems: list[str]) -> str:
    value = entry.get("id")
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{kind} #{index + 1}: 'id' must be a non-empty string, got {value!r}")
        return f"#{index + 1}"
    if value in seen:
        problems.append(f"duplicate {kind} id {value!r}; ids must be unique within {kind}s")
    seen.add(value)
    return value


def _load_assets(raw: dict[Any, Any], problems: list[str]) -> list[Asset]:
    assets: list[Asset] = []
    seen: set[str] = set()
    for index, entry in enumerate(_entries(raw, "assets", problems, non_empty=True)):
        asset_id = _entry_id(entry, "asset", index, seen, problems)
        where = f"asset {asset_id}"
        _check_keys(entry, _ASSET_KEYS - {"id"}, _ASSET_KEYS, where, problems)
        assets.append(Asset(id=asset_id, name=_text(entry, "name", where, problems)))
    return assets


def _load_mitigations(raw: dict[Any, Any], repo_root: Path, problems: list[str]) -> list[Mitigation]:
    mitigations: list[Mitigation] = []
    seen: set[str] = set()
    for index, entry in enumerate(_entries(raw, "mitigations", problems, non_empty=False)):
        mitigation_id = _entry_id(entry, "mitigation", index, seen, problems)
        where = f"mitigation {mitigation_id}"
        _check_keys(entry, _MITIGATION_REQUIRED - {"id"}, _MITIGATION_KEYS, where, problems)
        code = [_resolve_code(ref, repo_root, where, problems)
                for ref in _str_list(entry, "code", where, problems, non_empty=False)]
        tests = [_resolve_test(ref, repo_root, where, problems)
                 for ref in _str_list(entry, "tests", where, problems, non_empty=False)]
        mitigations.append(Mitigation(
            id=mitigation_id,
            title=_text(entry, "title", where, problems),
            description=_text(entry, "description", where, problems),
            code=tuple(r for r in code if r is not None),
            tests=tuple(r for r in tests if r is not None),
        ))
    return mitigations


def _load_threats(raw: dict[Any, Any], asset_by_id: dict[str, Asset],
                  mitigation_by_id: dict[str, Mitigation], problems: list[str]) -> list[Threat]:
    threats: list[Threat] = []
    seen: set[str] = set()
    for index, entry in enumerate(_entries(raw, "threats", problems, non_empty=True)):
        threat_id = _entry_id(entry, "threat", index, seen, problems)
        where = f"threat {threat_id}"
        _check_keys(entry, _THREAT_REQUIRED - {"id"}, _THREAT_KEYS, where, problems)

        goals = _str_list(entry, "goals", where, problems, non_empty=True)
        for goal in goals:
            if goal not in GOALS:
                problems.append(f"{where}: unknown goal {goal!r} (use one of {', '.join(GOALS)})")
        stride = _str_list(entry, "stride", where, problems, non_empty=True)
        for letter in stride:
            if letter not in STRIDE:
                problems.append(f"{where}: unknown STRIDE letter {letter!r} "
                                f"(use letters from {' '.join(STRIDE)})")
        priority = entry.get("priority")
        if "priority" in entry and priority not in PRIORITIES:
            problems.append(f"{where}: unknown priority {priority!r} "
                            f"(use one of {', '.join(PRIORITIES)})")
        status = entry.get("status")
        if "status" in entry and status not in STATUSES:
            problems.append(f"{where}: unknown status {status!r} "
                            f"(use one of {', '.join(STATUSES)})")

        assets: list[Asset] = []
        for asset_id in _str_list(entry, "assets", where, problems, non_empty=True):
            if asset_id in asset_by_id:
                assets.append(asset_by_id[asset_id])
            else:
                problems.append(f"{where}: unknown asset {asset_id!r}; declare it under 'assets'")
        mitigations: list[Mitigation] = []
        for mitigation_id in _str_list(entry, "mitigations", where, problems, non_empty=False):
            if mitigation_id in mitigation_by_id:
                mitigations.append(mitigation_by_id[mitigation_id])
            else:
                problems.append(f"{where}: unknown mitigation {mitigation_id!r}; "
                                "declare it under 'mitigations'")
        if status in _NEEDS_MITIGATION and not entry.get("mitigations"):
            problems.append(f"{where}: status {status!r} needs at least one mitigation; "
                            "link one or set the status to open or accepted")

        threats.append(Threat(
            id=threat_id,
            source=_text(entry, "source", where, problems),
            prerequisites=_text(entry, "prerequisites", where, problems, required=False),
            action=_text(entry, "action", where, problems),
            impact=_text(entry, "impact", where, problems),
            goals=tuple(goals),
            assets=tuple(assets),
            stride=tuple(stride),
            priority=str(priority),
            status=str(status),
            mitigations=tuple(mitigations),
        ))
    return threats


def _repo_file(raw_path: str, repo_root: Path, what: str, problems: list[str]) -> Path | None:
    if not raw_path or raw_path.startswith("/") or "\\" in raw_path:
        problems.append(f"{what}: path {raw_path!r} must be relative to the repository root, "
                        "with forward slashes")
        return None
    candidate = (repo_root / raw_path).resolve()
    if not candidate.is_relative_to(repo_root):
        problems.append(f"{what}: path {raw_path!r} points outside the repository")
        return None
    if not candidate.is_file():
        problems.append(f"{what}: file {raw_path!r} does not exist (paths are relative to the "
                        "repository root)")
        return None
    return candidate


@dataclass(frozen=True)
class _Def:
    """A top-level ``def`` or ``class`` of a parsed file (a class with its own defs): all references need."""

    lineno: int
    node_type: type[ast.stmt]
    members: dict[str, _Def]


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _index(body: list[ast.stmt], depth: int) -> dict[str, _Def]:
    found: dict[str, _Def] = {}
    for node in body:
        if isinstance(node, _DEFS) and node.name not in found:  # the first of a name, as a lookup in body order
            members = _index(node.body, depth - 1) if depth > 1 and isinstance(node, ast.ClassDef) else {}
            found[node.name] = _Def(node.lineno, type(node), members)
    return found


@functools.lru_cache(maxsize=512)
def _defs_of(text: str, filename: str) -> dict[str, _Def]:
    """The defs of a source text, parsed once per build however many references point into it (a test
    file is named by dozens of mitigations, controls and checklist items). Keyed by the text itself, so an
    edited file is parsed again; a file that does not parse raises each time."""
    return _index(ast.parse(text, filename=filename).body, depth=2)


def _parse(file: Path, raw_path: str, what: str, problems: list[str]) -> dict[str, _Def] | None:
    try:
        return _defs_of(file.read_text(encoding="utf-8"), str(file))
    except (SyntaxError, UnicodeDecodeError) as exc:
        problems.append(f"{what}: cannot parse {raw_path!r} as Python: {exc}")
        return None


def _resolve_code(ref: str, repo_root: Path, where: str, problems: list[str]) -> SourceRef | None:
    """``path::symbol`` (a top-level def or class, or ``Class.method``); bare paths for non-Python."""
    what = f"{where}: code {ref!r}"
    raw_path, sep, symbol = ref.partition("::")
    file = _repo_file(raw_path, repo_root, what, problems)
    if file is None:
        return None
    if not sep:
        if file.suffix == ".py":
            problems.append(f"{what}: name a symbol in the Python file, as path.py::name "
                            "or path.py::Class.method")
            return None
        return SourceRef(ref=ref, path=raw_path, line=None)
    if file.suffix != ".py":
        problems.append(f"{what}: symbols can only be checked in Python files; "
                        "drop the '::' part for other files")
        return None
    defs = _parse(file, raw_path, what, problems)
    if defs is None:
        return None
    parts = symbol.split(".")
    node: _Def | None = None
    if 1 <= len(parts) <= 2 and all(parts):
        node = defs.get(parts[0])
        if node is not None and len(parts) == 2:
            node = node.members.get(parts[1]) if node.node_type is ast.ClassDef else None
    if node is None:
        problems.append(f"{what}: {symbol!r} is not defined in {raw_path} (expected a top-level "
                        "def or class, or Class.method)")
        return None
    return SourceRef(ref=ref, path=raw_path, line=node.lineno)


def _resolve_test(ref: str, repo_root: Path, where: str, problems: list[str]) -> SourceRef | None:
    """A pytest node id: ``path::test_x``, ``path::test_x[case]`` or ``path::TestClass::test_y``."""
    what = f"{where}: test {ref!r}"
    parts = ref.split("::")
    raw_path, names = parts[0], parts[1:]
    if not names or len(names) > 2 or not all(names):
        problems.append(f"{what}: expected a pytest node id, path.py::test_name or "
                        "path.py::TestClass::test_name")
        return None
    names[-1] = re.sub(r"\[.*\]$", "", names[-1])  # test_x[case] names test_x
    file = _repo_file(raw_path, repo_root, what, problems)
    if file is None:
        return None
    if file.suffix != ".py":
        problems.append(f"{what}: {raw_path!r} is not a Python test file")
        return None
    defs = _parse(file, raw_path, what, problems)
    if defs is None:
        return None
    if len(names) == 2:
        cls = defs.get(names[0])
        if cls is None or cls.node_type is not ast.ClassDef:
            problems.append(f"{what}: class {names[0]!r} is not defined in {raw_path}")
            return None
        defs = cls.members
    node = defs.get(names[-1])
    if node is None or node.node_type not in (ast.FunctionDef, ast.AsyncFunctionDef):
        problems.append(f"{what}: test function {names[-1]!r} is not defined in "
                        f"{'::'.join([raw_path, *names[:-1]])}")
        return None
    if not names[-1].startswith("test") or (len(names) == 2 and not names[0].startswith("Test")):
        problems.append(f"{what}: pytest does not collect it; name functions test_* and "
                        "classes Test*")
        return None
    return SourceRef(ref=ref, path=raw_path, line=node.lineno)


# --------------------------------------------------------------------------- rendering


def _join(words: list[str] | tuple[str, ...]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def statement(threat: Threat) -> str:
    """Render a threat as one threat-composer sentence.

    Examples:
        >>> t = Threat("T1", "an internal actor", "with the router role's credentials",
        ...            "call kms:Decrypt on vault ciphertexts", "disclosure of account data",
        ...            ("confidentiality",), (Asset("A1", "account data"),), ("I",), "high",
        ...            "open", ())
        >>> statement(t)
        "An internal actor with the router role's credentials can call kms:Decrypt on vault \
ciphertexts, which leads to disclosure of account data, resulting in reduced confidentiality \
of account data."
    """
    def part(text: str) -> str:
        return text.strip().rstrip(".").strip()

    head = " ".join(p for p in (part(threat.source), part(threat.prerequisites)) if p)
    sentence = (
        f"{head} can {part(threat.action)}, which leads to {part(threat.impact)}, "
        f"resulting in reduced {_join(threat.goals)} of {_join([a.name for a in threat.assets])}."
    )
    return sentence[:1].upper() + sentence[1:]


def _line(text: str) -> str:
    """Text on one line (a threat's sentence sits in one Markdown paragraph)."""
    return " ".join(text.split())


def _anchor(model: ThreatModel, item_id: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", f"{model.article}-{item_id}".lower()).strip("-")
    return f"threat-{slug}"


def _link(ref: SourceRef, link_base: str, link_suffix: str, line_anchor: str) -> str:
    fragment = line_anchor.format(line=ref.line) if ref.line else ""
    return f"[`{ref.ref}`]({link_base}{ref.path}{link_suffix}{fragment})"


def render_markdown(model: ThreatModel, *, link_base: str, heading_level: int = 3, link_suffix: str = "",
                    line_anchor: str = "#L{line}") -> str:
    """Render a threat model as Markdown: STRIDE summary, one block per threat, one per mitigation.

    Each threat is a block (``div.fp-threat``, ``md_in_html``) with its sentence at full width and its
    STRIDE letters, priority and status as chips; each mitigation lists its code and tests one per line.

    ``link_base`` is prefixed verbatim to every repository path: an absolute URL (for example
    ``https://github.com/OWNER/REPO/blob/COMMIT/``) or a relative path to source pages the site
    publishes itself (``mkdocs --strict`` rejects relative links to files outside ``docs/``), in which
    case ``link_suffix`` (".md") and ``line_anchor`` name those pages and their line anchors.

    Examples:
        >>> md = render_markdown(model, link_base="https://github.com/o/r/blob/main/")  # doctest: +SKIP
    """
    if not link_base.endswith("/"):
        raise ValueError(f"link_base must end with '/', got {link_base!r}; pass e.g. "
                         "'https://github.com/OWNER/REPO/blob/COMMIT/' or a relative '../generated/source/'")
    if not 1 <= heading_level <= 5:
        raise ValueError(f"heading_level must be 1 to 5, got {heading_level}")
    hashes = "#" * heading_level

    counts = Counter(letter for threat in model.threats for letter in threat.stride)
    summary = " · ".join(f"{name} ({letter}) {counts[letter]}" for letter, name in STRIDE.items())

    lines = [f"**STRIDE** ({len(model.threats)} threats): {summary}", "", f"{hashes} Threats", ""]
    for threat in model.threats:
        mitigations = ", ".join(f"[{m.id}](#{_anchor(model, m.id)})" for m in threat.mitigations)
        chips = " ".join(f'<span class="fp-chip fp-stride" title="{STRIDE[letter]}">{letter}</span>'
                         for letter in threat.stride)
        lines += [
            f'<div class="fp-threat" id="{_anchor(model, threat.id)}" markdown>',
            "",
            f"**{_line(threat.id)}** {chips} "
            f'<span class="fp-chip fp-priority-{threat.priority}" title="priority">{threat.priority}</span> '
            f'<span class="fp-chip fp-status" title="status">{threat.status}</span>',
            "",
            _line(statement(threat)),
            "",
            f"Mitigations: {mitigations or '—'}",
            "",
            "</div>",
            "",
        ]
    lines += [f"{hashes} Mitigations", ""]
    for mitigation in model.mitigations:
        threats = ", ".join(
            f"[{t.id}](#{_anchor(model, t.id)})" for t in model.threats
            if any(m.id == mitigation.id for m in t.mitigations)
        )
        lines += [
            f'<div class="fp-mitigation" id="{_anchor(model, mitigation.id)}" markdown>',
            "",
            f"**{_line(mitigation.id)} · {_line(mitigation.title)}**: {_line(mitigation.description)}",
            "",
            f"Threats: {threats or '—'}",
            "",
        ]
        for label, refs in (("Code", mitigation.code), ("Tests", mitigation.tests)):
            if not refs:
                lines += [f"{label}: —", ""]
                continue
            lines += [f"{label}:", ""]
            lines += [f"- {_link(r, link_base, link_suffix, line_anchor)}" for r in refs]
            lines.append("")
        lines += ["</div>", ""]
    return "\n".join(lines) + "\n"
