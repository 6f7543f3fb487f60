"""CloudFormation templates read as data: short-form intrinsics (``!Ref``, ``!Sub``, ``!GetAtt`` ...) become
their long form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``, ``{"Fn::GetAtt": [resource, attribute]}``), as
CloudFormation itself reads them. The deploy tool, the package builder and the template tests share it.

Examples:
    >>> parse_template("A: !GetAtt Queue.Arn\\nB: !Ref Name\\nC: !Sub '${AWS::Region}'\\n")
    {'A': {'Fn::GetAtt': ['Queue', 'Arn']}, 'B': {'Ref': 'Name'}, 'C': {'Fn::Sub': '${AWS::Region}'}}
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["parse_template"]


class _TemplateLoader(yaml.SafeLoader):
    """A safe loader that also reads CloudFormation's short-form tags."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def parse_template(text: str) -> dict[str, Any]:
    """The template as data, a fresh structure on each call."""
    return yaml.load(text, Loader=_TemplateLoader) or {}  # noqa: S506 - a SafeLoader subclass
