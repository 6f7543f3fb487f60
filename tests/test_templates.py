"""Templates stay usable: the article template has the guide's parts, the others their sections."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

REQUIRED = {
    "article.md": ["## Context and problem", "## Solution", "## Threat model", "## Issues and considerations",
                   "## When to use", "## Checklist", "## Notebook", "## How we measured"],
    "runbook.md": ["#"],
    "incident-playbook.md": ["Detection", "Severity", "Containment", "Recovery"],
    "tabletop-exercise.md": ["#"],
}


@pytest.mark.parametrize(("name", "headings"), sorted(REQUIRED.items()))
def test_markdown_templates_have_their_sections(name: str, headings: list[str]) -> None:
    text = (REPO / "templates" / name).read_text(encoding="utf-8")
    missing = [h for h in headings if h.lower() not in text.lower()]
    assert not missing, f"{name} lacks {missing}"
    assert "--8<--" not in text  # an included template must not itself include files


def test_threat_model_template_is_valid_yaml_in_the_schema_shape() -> None:
    data = yaml.safe_load((REPO / "templates" / "threat-model.yaml").read_text(encoding="utf-8"))
    assert {"article", "assets", "threats", "mitigations"} <= set(data)
