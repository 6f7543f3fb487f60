"""The evidence matrix: controls rendered with the state of their tests from the last run's junit XML; a
failing test shows red, an unknown test id or a control without a source or a test fails the build."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from sitebuild.controls import ControlMappingError, render_controls  # noqa: E402
from sitebuild.evidence import parse_junit, read_junit, status  # noqa: E402

ERASURE_TEST = "tests/test_vault.py::test_erased_value_cannot_be_decrypted_even_with_kms_decrypt"
ROUND_TRIP_TEST = "tests/test_vault.py::test_round_trip_per_data_class"


def _control(**changes: Any) -> dict[str, Any]:
    control = {
        "id": "Art. 17", "title": "Right to erasure", "obligation": "Erase personal data without undue delay.",
        "source": {"citation": "UK GDPR Art. 17(1)", "url": "https://www.legislation.gov.uk/eur/2016/679/article/17",
                   "checked": "2026-12-02"},
        "how": "Crypto-shredding.", "article": "tokenisation-vault",
        "code": ["reference/fasterpay/vault/core.py::Vault.erase_subject"], "tests": [ERASURE_TEST],
        "evidence": "the test report and the erasure's audit entry",
    }
    control.update(changes)
    return control


def _write(tmp_path: Path, *controls: dict[str, Any]) -> Path:
    path = tmp_path / "controls.yaml"
    path.write_text(yaml.safe_dump({"frameworks": [{"id": "uk-gdpr", "name": "UK GDPR / EU GDPR",
                                                    "controls": list(controls)}]}), encoding="utf-8")
    return path


def _render(path: Path, results: Any = None) -> str:
    text, _ = render_controls(path, repo_root=ROOT, link_base="generated/source/", articles={"tokenisation-vault"},
                              results=results)
    return text


def _junit(*cases: tuple[str, str, str]) -> Any:
    body = "".join(
        f'<testcase classname="{cls}" name="{name}">'
        + {"pass": "", "fail": '<failure message="boom"/>', "skip": "<skipped/>", "error": '<error message="e"/>'}[kind]
        + "</testcase>" for cls, name, kind in cases)
    return parse_junit(f'<testsuites><testsuite name="pytest" timestamp="2026-12-02T01:02:03">{body}'
                       "</testsuite></testsuites>")


def test_a_passing_test_shows_its_control_passing(tmp_path: Path) -> None:
    results = _junit(("tests.test_vault", "test_erased_value_cannot_be_decrypted_even_with_kms_decrypt", "pass"))
    text = _render(_write(tmp_path, _control()), results)
    row = next(line for line in text.splitlines() if "**Art. 17**" in line)
    assert row.endswith('<span class="ev ev-pass">pass</span> |')
    assert "2026-12-02T01:02:03" in text and "[UK GDPR Art. 17(1)](https://www.legislation.gov.uk" in row
    assert "| [UK GDPR / EU GDPR](#uk-gdpr-eu-gdpr) | 1 | 0 | 0 | 0 | 1 |" in text


def test_a_failing_test_shows_red_and_its_control_fails(tmp_path: Path) -> None:
    results = _junit(("tests.test_vault", "test_erased_value_cannot_be_decrypted_even_with_kms_decrypt", "pass"),
                     ("tests.test_vault", "test_round_trip_per_data_class[iban]", "pass"),
                     ("tests.test_vault", "test_round_trip_per_data_class[pan]", "fail"))
    text = _render(_write(tmp_path, _control(tests=[ERASURE_TEST, ROUND_TRIP_TEST])), results)
    row = next(line for line in text.splitlines() if "**Art. 17**" in line)
    assert 'ev-fail">fail</span> |' in row  # one failing case of a parametrised test fails the control
    assert row.count('class="ev ev-pass"') == 1 and "| 1 | 1 | 0 | 0 | 0 |" in text


def test_without_a_test_run_every_control_says_not_run(tmp_path: Path) -> None:
    text = _render(_write(tmp_path, _control()), None)
    assert "No test run recorded yet" in text and 'ev-not-run">not run</span> |' in text
    assert read_junit(tmp_path / "missing.xml") is None


def test_a_test_missing_from_the_run_is_not_run_and_a_skip_is_skipped() -> None:
    results = _junit(("tests.test_vault.TestRoles", "test_x", "skip"), ("tests.test_vault", "test_y", "error"))
    assert status("tests/test_vault.py::TestRoles::test_x", results) == "skipped"
    assert status("tests/test_vault.py::test_y", results) == "fail"
    assert status("tests/test_vault.py::test_z", results) == "not run"


@pytest.mark.parametrize(("change", "message"), [
    ({"tests": ["tests/test_vault.py::test_that_does_not_exist"]}, "is not defined"),
    ({"tests": []}, "needs at least one code and one test"),
    ({"source": {"citation": "UK GDPR Art. 17", "url": "https://x.example"}}, "needs source"),
    ({"source": {"citation": "c", "url": "http://x.example", "checked": "2026-12-02"}}, "must be https"),
    ({"obligation": ""}, "needs 'obligation'"),
    ({"article": "no-such-article"}, "unknown article"),
], ids=["unknown test id", "no test", "no date", "not https", "no obligation", "unknown article"])
def test_a_control_that_evidences_nothing_fails_the_build(tmp_path: Path, change: dict[str, Any],
                                                          message: str) -> None:
    with pytest.raises(ControlMappingError, match=message):
        _render(_write(tmp_path, _control(**change)))


def test_the_real_mapping_loads_and_every_control_has_a_test() -> None:
    articles = {p.stem for p in (ROOT / "docs" / "articles").glob("*.md")}
    text, paths = render_controls(ROOT / "compliance" / "controls.yaml", repo_root=ROOT, link_base="x/",
                                  articles=articles, results=None)
    assert paths and text.count("**") >= 2


def test_the_evidence_modules_examples_run() -> None:
    import doctest

    import sitebuild.evidence as evidence

    result = doctest.testmod(evidence)
    assert result.failed == 0 and result.attempted > 0


def test_the_security_checklist_links_every_item_to_tests_and_shows_their_state(tmp_path: Path) -> None:
    from sitebuild.controls import render_checklist

    results = _junit(("tests.test_vault", "test_erased_value_cannot_be_decrypted_even_with_kms_decrypt", "fail"))
    item = {"id": "erasure", "title": "Erasure", "what": "Crypto-shredding.",
            "code": ["reference/fasterpay/vault/core.py::Vault.erase_subject"], "tests": [ERASURE_TEST]}
    path = tmp_path / "checklist.yaml"
    path.write_text(yaml.safe_dump({"items": [item]}), encoding="utf-8")
    text, paths = render_checklist(path, repo_root=ROOT, link_base="x/", results=results)
    assert text.rstrip().endswith('<span class="ev ev-fail">fail</span> |') and "**1 items**: 1 fail." in text
    path.write_text(yaml.safe_dump({"items": [{**item, "tests": []}]}), encoding="utf-8")
    with pytest.raises(ControlMappingError, match="needs at least one test"):
        render_checklist(path, repo_root=ROOT, link_base="x/")
    real, _ = render_checklist(ROOT / "compliance" / "checklist.yaml", repo_root=ROOT, link_base="x/")
    assert real.count("| **") == 9  # the seed's nine items
