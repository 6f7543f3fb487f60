"""Tests for sitebuild.threats: loading, validation and rendering of threat models."""

from __future__ import annotations

import re

import copy
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from sitebuild.threats import (
    Asset,
    Threat,
    ThreatModelError,
    load_threat_model,
    render_markdown,
    statement,
)

LINK_BASE = "https://github.com/example/faster-payments-on-aws/blob/abc123/"

VAULT_PY = textwrap.dedent(
    """\
    class Vault:
        def tokenize(self, value):
            return "tok"

        def detokenize(self, token):
            return "clear"


    def rotate_keys():
        pass
    """
)

TEST_VAULT_PY = textwrap.dedent(
    """\
    import pytest


    def test_router_role_cannot_decrypt():
        pass


    @pytest.mark.parametrize("case", ["a", "b"])
    def test_context_is_bound(case):
        pass


    class TestAudit:
        def test_every_detokenize_is_audited(self):
            pass


    def helper():
        pass
    """
)


def valid_model() -> dict[str, Any]:
    return {
        "article": "tokenisation-vault",
        "title": "Tokenisation vault",
        "assets": [
            {"id": "A1", "name": "cardholder and account data (PAN, IBAN, names)"},
            {"id": "A2", "name": "the detokenize audit trail"},
        ],
        "threats": [
            {
                "id": "T1",
                "source": "an internal actor",
                "prerequisites": "with the router role's credentials",
                "action": "call kms:Decrypt on vault ciphertexts",
                "impact": "disclosure of account data",
                "goals": ["confidentiality"],
                "assets": ["A1"],
                "stride": ["I", "E"],
                "priority": "high",
                "status": "mitigated",
                "mitigations": ["M1"],
            },
            {
                "id": "T2",
                "source": "a compromised detokenizer",
                "prerequisites": "with write access to the audit table",
                "action": "delete audit records",
                "impact": "unrecorded detokenize calls",
                "goals": ["accountability", "integrity"],
                "assets": ["A1", "A2"],
                "stride": ["R", "T"],
                "priority": "medium",
                "status": "partially-mitigated",
                "mitigations": ["M1", "M2"],
            },
        ],
        "mitigations": [
            {
                "id": "M1",
                "title": "Least-privilege roles",
                "description": "Only the detokenizer role may call kms:Decrypt.",
                "code": ["reference/fasterpay/vault.py::Vault.detokenize"],
                "tests": ["tests/test_vault.py::test_router_role_cannot_decrypt"],
            },
            {
                "id": "M2",
                "title": "Append-only audit",
                "description": "Audit writes are conditional puts | never updates.",
                "code": ["reference/fasterpay/vault.py::rotate_keys", "infra/vault-policy.json"],
                "tests": [
                    "tests/test_vault.py::test_context_is_bound[a]",
                    "tests/test_vault.py::TestAudit::test_every_detokenize_is_audited",
                ],
            },
        ],
    }


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A fake repository with the code and test files the valid model points at."""
    (tmp_path / "reference/fasterpay").mkdir(parents=True)
    (tmp_path / "reference/fasterpay/vault.py").write_text(VAULT_PY)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_vault.py").write_text(TEST_VAULT_PY)
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra/vault-policy.json").write_text("{}")
    (tmp_path / "compliance/threats").mkdir(parents=True)
    return tmp_path


Write = Callable[..., Path]


@pytest.fixture()
def write(repo: Path) -> Write:
    def _write(data: Any, name: str = "tokenisation-vault.yaml") -> Path:
        path = repo / "compliance/threats" / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return path

    return _write


def problems_for(write: Write, repo: Path, data: dict[str, Any], **kw: Any) -> list[str]:
    with pytest.raises(ThreatModelError) as info:
        load_threat_model(write(data, **kw), repo_root=repo)
    assert str(info.value.path.name) in str(info.value)  # message names the file
    return info.value.problems


# --------------------------------------------------------------------------- loading


def test_valid_model_loads_and_resolves_references(write: Write, repo: Path) -> None:
    model = load_threat_model(write(valid_model()), repo_root=repo)

    assert model.article == "tokenisation-vault"
    assert [t.id for t in model.threats] == ["T1", "T2"]
    t2 = model.threats[1]
    assert [a.name for a in t2.assets] == ["cardholder and account data (PAN, IBAN, names)",
                                           "the detokenize audit trail"]
    assert [m.id for m in t2.mitigations] == ["M1", "M2"]
    m1 = model.mitigations[0]
    assert m1.code[0].path == "reference/fasterpay/vault.py"
    assert m1.code[0].line == 5  # def detokenize
    assert m1.tests[0].line == 4
    m2 = model.mitigations[1]
    assert m2.code[1].line is None  # a non-Python file is referenced whole
    assert [r.line for r in m2.tests] == [9, 14]


def test_prerequisites_may_be_omitted(write: Write, repo: Path) -> None:
    data = valid_model()
    del data["threats"][0]["prerequisites"]
    model = load_threat_model(write(data), repo_root=repo)
    assert statement(model.threats[0]).startswith("An internal actor can call kms:Decrypt")


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation that sets data[a][i][b] = value for a dotted path like 'threats.0.stride'."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(last) if last.isdigit() else last] = value

    return mutate


def _del(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        del target[last]

    return mutate


def _append_mitigation(data: dict[str, Any]) -> None:
    data["mitigations"].append({"id": "M3", "title": "Orphan", "description": "Unused."})


def _duplicate_threat(data: dict[str, Any]) -> None:
    data["threats"].append(copy.deepcopy(data["threats"][0]))


def _duplicate_asset(data: dict[str, Any]) -> None:
    data["assets"][1]["id"] = "A1"


def _duplicate_mitigation(data: dict[str, Any]) -> None:
    data["mitigations"][1]["id"] = "M1"


INVALID: list[tuple[str, Mutation, str]] = [
    ("unknown STRIDE letter", _set("threats.0.stride", ["I", "X"]), "unknown STRIDE letter 'X'"),
    ("lowercase STRIDE letter", _set("threats.0.stride", ["i"]), "unknown STRIDE letter 'i'"),
    ("empty STRIDE", _set("threats.0.stride", []), "'stride' must not be empty"),
    ("unknown goal", _set("threats.0.goals", ["secrecy"]), "unknown goal 'secrecy'"),
    ("unknown priority", _set("threats.0.priority", "urgent"), "unknown priority 'urgent'"),
    ("unknown status", _set("threats.0.status", "done"), "unknown status 'done'"),
    ("duplicate threat id", _duplicate_threat, "duplicate threat id 'T1'"),
    ("duplicate asset id", _duplicate_asset, "duplicate asset id 'A1'"),
    ("duplicate mitigation id", _duplicate_mitigation, "duplicate mitigation id 'M1'"),
    ("unknown asset", _set("threats.0.assets", ["A9"]), "threat T1: unknown asset 'A9'"),
    ("unknown mitigation", _set("threats.0.mitigations", ["M1", "M9"]),
     "threat T1: unknown mitigation 'M9'"),
    ("unused mitigation", _append_mitigation, "mitigation M3 is not used by any threat"),
    ("mitigated without mitigations", _set("threats.0.mitigations", []),
     "status 'mitigated' needs at least one mitigation"),
    ("code file missing", _set("mitigations.0.code", ["reference/fasterpay/nope.py::Vault"]),
     "file 'reference/fasterpay/nope.py' does not exist"),
    ("code symbol missing", _set("mitigations.0.code", ["reference/fasterpay/vault.py::Safe"]),
     "'Safe' is not defined in reference/fasterpay/vault.py"),
    ("code method missing",
     _set("mitigations.0.code", ["reference/fasterpay/vault.py::Vault.decrypt"]),
     "'Vault.decrypt' is not defined"),
    ("code method of a function",
     _set("mitigations.0.code", ["reference/fasterpay/vault.py::rotate_keys.inner"]),
     "'rotate_keys.inner' is not defined"),
    ("python code without symbol", _set("mitigations.0.code", ["reference/fasterpay/vault.py"]),
     "name a symbol in the Python file"),
    ("code path outside repo", _set("mitigations.0.code", ["../outside.py::x"]),
     "points outside the repository"),
    ("absolute code path", _set("mitigations.0.code", ["/etc/passwd"]),
     "must be relative to the repository root"),
    ("test file missing", _set("mitigations.0.tests", ["tests/test_nope.py::test_a"]),
     "file 'tests/test_nope.py' does not exist"),
    ("test function missing", _set("mitigations.0.tests", ["tests/test_vault.py::test_nope"]),
     "test function 'test_nope' is not defined in tests/test_vault.py"),
    ("parametrized test missing",
     _set("mitigations.0.tests", ["tests/test_vault.py::test_nope[a]"]),
     "test function 'test_nope' is not defined"),
    ("test class missing",
     _set("mitigations.0.tests", ["tests/test_vault.py::TestNope::test_every_detokenize_is_audited"]),
     "class 'TestNope' is not defined"),
    ("test method missing",
     _set("mitigations.0.tests", ["tests/test_vault.py::TestAudit::test_nope"]),
     "test function 'test_nope' is not defined in tests/test_vault.py::TestAudit"),
    ("test id without function", _set("mitigations.0.tests", ["tests/test_vault.py"]),
     "expected a pytest node id"),
    ("helper is not a test", _set("mitigations.0.tests", ["tests/test_vault.py::helper"]),
     "pytest does not collect it"),
    ("slug differs from file name", _set("article", "vault"),
     "article 'vault' does not match the file name 'tokenisation-vault.yaml'"),
    ("missing threat field", _del("threats.0.action"), "threat T1: missing 'action'"),
    ("unknown threat field", _set("threats.0.severity", "high"),
     "threat T1: unknown key 'severity'"),
    ("unknown top-level key", _set("version", 2), "the file: unknown key 'version'"),
    ("no threats", _set("threats", []), "'threats' must list at least one entry"),
    ("non-string id", _set("assets.0.id", 1), "asset #1: 'id' must be a non-empty string"),
]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in INVALID],
                         ids=[name for name, _, _ in INVALID])
def test_invalid_model_is_rejected_with_a_clear_problem(
    write: Write, repo: Path, mutate: Mutation, expected: str
) -> None:
    data = valid_model()
    mutate(data)
    problems = problems_for(write, repo, data)
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once(write: Write, repo: Path) -> None:
    data = valid_model()
    data["threats"][0]["stride"] = ["Q"]
    data["threats"][0]["priority"] = "urgent"
    data["threats"][1]["assets"] = ["A7"]
    data["mitigations"][0]["tests"] = ["tests/test_vault.py::test_gone"]
    problems = problems_for(write, repo, data)
    assert len(problems) == 4, problems


def test_error_message_names_the_file_and_says_what_to_do(write: Write, repo: Path) -> None:
    data = valid_model()
    data["threats"][0]["stride"] = ["Q"]
    with pytest.raises(ThreatModelError, match=r"tokenisation-vault\.yaml: 1 problem") as info:
        load_threat_model(write(data), repo_root=repo)
    assert "templates/threat-model.yaml" in str(info.value)


def test_invalid_yaml_is_rejected(write: Write, repo: Path) -> None:
    with pytest.raises(ThreatModelError, match="not valid YAML"):
        load_threat_model(write("article: [unclosed\n"), repo_root=repo)


def test_non_mapping_file_is_rejected(write: Write, repo: Path) -> None:
    with pytest.raises(ThreatModelError, match="must be a mapping"):
        load_threat_model(write("- just\n- a list\n"), repo_root=repo)


def test_missing_file_is_rejected(repo: Path) -> None:
    with pytest.raises(ThreatModelError, match="cannot read the file"):
        load_threat_model(repo / "compliance/threats/absent.yaml", repo_root=repo)


def test_unparsable_python_reference_is_rejected(write: Write, repo: Path) -> None:
    (repo / "reference/fasterpay/broken.py").write_text("def (:\n")
    data = valid_model()
    data["mitigations"][0]["code"] = ["reference/fasterpay/broken.py::x"]
    problems = problems_for(write, repo, data)
    assert any("cannot parse 'reference/fasterpay/broken.py'" in p for p in problems)


# --------------------------------------------------------------------------- statement


def test_statement_follows_the_grammar() -> None:
    threat = Threat(
        id="T1",
        source="an internal actor",
        prerequisites="with the router role's credentials",
        action="call kms:Decrypt on vault ciphertexts",
        impact="disclosure of account data",
        goals=("confidentiality",),
        assets=(Asset("A1", "cardholder and account data (PAN, IBAN, names)"),),
        stride=("I", "E"),
        priority="high",
        status="mitigated",
        mitigations=(),
    )
    assert statement(threat) == (
        "An internal actor with the router role's credentials can call kms:Decrypt on vault "
        "ciphertexts, which leads to disclosure of account data, resulting in reduced "
        "confidentiality of cardholder and account data (PAN, IBAN, names)."
    )


def test_statement_joins_goals_and_assets_with_and(write: Write, repo: Path) -> None:
    data = valid_model()
    data["threats"][1]["goals"] = ["integrity", "availability", "accountability"]
    model = load_threat_model(write(data), repo_root=repo)
    text = statement(model.threats[1])
    assert text.startswith("A compromised detokenizer with write access")
    assert ("resulting in reduced integrity, availability and accountability of cardholder and "
            "account data (PAN, IBAN, names) and the detokenize audit trail.") in text


# --------------------------------------------------------------------------- rendering


@pytest.fixture()
def markdown(write: Write, repo: Path) -> str:
    return render_markdown(load_threat_model(write(valid_model()), repo_root=repo),
                           link_base=LINK_BASE)


def test_render_links_code_and_tests_with_the_link_base_verbatim(markdown: str) -> None:
    assert (f"[`reference/fasterpay/vault.py::Vault.detokenize`]"
            f"({LINK_BASE}reference/fasterpay/vault.py#L5)") in markdown
    assert (f"[`tests/test_vault.py::TestAudit::test_every_detokenize_is_audited`]"
            f"({LINK_BASE}tests/test_vault.py#L14)") in markdown
    assert f"({LINK_BASE}infra/vault-policy.json)" in markdown


def _blocks(markdown: str, kind: str) -> dict[str, str]:
    """The rendered blocks of one kind (fp-threat or fp-mitigation), by anchor id."""
    found = re.findall(rf'<div class="{kind}" id="([^"]+)" markdown>\n(.*?)\n</div>', markdown, re.S)
    return dict(found)


def test_render_gives_each_threat_a_block_with_chips_and_anchored_mitigations(markdown: str) -> None:
    block = _blocks(markdown, "fp-threat")["threat-tokenisation-vault-t2"]
    paragraphs = [p.strip() for p in block.strip().split("\n\n")]
    assert paragraphs[0].startswith("**T2** ")
    chips = re.findall(r'<span class="fp-chip[^"]*"[^>]*>([^<]+)</span>', paragraphs[0])
    assert chips == ["R", "T", "medium", "partially-mitigated"]
    assert paragraphs[1].startswith("A compromised detokenizer") and "\n" not in paragraphs[1]
    assert paragraphs[2] == ("Mitigations: [M1](#threat-tokenisation-vault-m1), "
                             "[M2](#threat-tokenisation-vault-m2)")
    assert "threat-tokenisation-vault-m2" in _blocks(markdown, "fp-mitigation")


def test_render_lists_code_and_tests_one_per_line(markdown: str) -> None:
    block = _blocks(markdown, "fp-mitigation")["threat-tokenisation-vault-m1"]
    code = block[block.index("Code:"):block.index("Tests:")]
    tests = block[block.index("Tests:"):]
    assert [line for line in code.splitlines() if line.startswith("- ")] == [
        f"- [`reference/fasterpay/vault.py::Vault.detokenize`]({LINK_BASE}reference/fasterpay/vault.py#L5)"]
    assert all(line.startswith("- [`") for line in tests.splitlines()[2:] if line.strip())


def test_render_keeps_pipes_as_written(markdown: str) -> None:
    md = pytest.importorskip("markdown")
    html = md.markdown(markdown, extensions=["tables", "md_in_html"])
    assert "conditional puts | never updates" in html


def test_render_stride_summary_counts_each_letter(markdown: str) -> None:
    summary = markdown.splitlines()[0]
    for expected in ("spoofing (S) 0", "tampering (T) 1", "repudiation (R) 1",
                     "information disclosure (I) 1", "denial of service (D) 0",
                     "elevation of privilege (E) 1"):
        assert expected in summary


def test_rendered_blocks_parse_with_python_markdown(markdown: str) -> None:
    md = pytest.importorskip("markdown")
    html = md.markdown(markdown, extensions=["tables", "md_in_html"])
    assert "<table>" not in html
    assert html.count('<div class="fp-threat"') == 2 and html.count('<div class="fp-mitigation"') == 2
    assert "<ul>" in html and "markdown" not in re.findall(r"<div[^>]*>", html)[0]


@pytest.mark.parametrize("link_base", ["..", "docs", "", "https://github.com/o/r/blob/main"])
def test_render_rejects_a_link_base_without_trailing_slash(write: Write, repo: Path, link_base: str) -> None:
    model = load_threat_model(write(valid_model()), repo_root=repo)
    with pytest.raises(ValueError, match="must end with '/'"):
        render_markdown(model, link_base=link_base)


def test_render_links_to_site_source_pages_with_line_anchors(write: Write, repo: Path) -> None:
    model = load_threat_model(write(valid_model()), repo_root=repo)
    md = render_markdown(model, link_base="../generated/source/", link_suffix=".md", line_anchor="#__codelineno-0-{line}")
    assert "](../generated/source/" in md
    assert re.search(r"\]\(\.\./generated/source/[^)#]+\.py\.md#__codelineno-0-\d+\)", md)


def test_rendered_page_builds_with_mkdocs_strict(markdown: str, tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    site = tmp_path / "site-src"
    (site / "docs").mkdir(parents=True)
    (site / "docs/index.md").write_text("# Vault\n\n## Threat model\n\n" + markdown)
    (site / "mkdocs.yml").write_text(
        "site_name: t\nmarkdown_extensions: [tables, attr_list, md_in_html]\n"
        "validation:\n  links:\n    anchors: warn\n    unrecognized_links: warn\n"
    )
    config = load_config(str(site / "mkdocs.yml"), strict=True,
                         site_dir=str(tmp_path / "out"))
    build(config)  # raises Abort on any warning under strict
    html = (tmp_path / "out/index.html").read_text()
    assert 'id="threat-tokenisation-vault-m1"' in html


# --------------------------------------------------------------------------- template


def test_threat_model_template_follows_the_schema(tmp_path: Path) -> None:
    """templates/threat-model.yaml loads once the files it points at exist."""
    template = Path(__file__).resolve().parents[1] / "templates/threat-model.yaml"
    data = yaml.safe_load(template.read_text())
    for mitigation in data["mitigations"]:
        for ref in mitigation.get("code", []):
            path, _, symbol = ref.partition("::")
            target = tmp_path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if symbol:
                cls, _, method = symbol.rpartition(".")
                body = f"class {cls}:\n    def {method}(self):\n        pass\n" if cls else (
                    f"def {symbol}():\n    pass\n")
                target.write_text(body)
            else:
                target.write_text("{}\n")
        for ref in mitigation.get("tests", []):
            path, *names = ref.split("::")
            target = tmp_path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"def {names[-1].split('[')[0]}():\n    pass\n")
    copy_path = tmp_path / f"{data['article']}.yaml"
    copy_path.write_text(template.read_text())

    model = load_threat_model(copy_path, repo_root=tmp_path)
    assert statement(model.threats[0]) == (
        "An internal actor with the router role's credentials can call kms:Decrypt on vault "
        "ciphertexts, which leads to disclosure of account data, resulting in reduced "
        "confidentiality of cardholder and account data (PAN, IBAN, names)."
    )
