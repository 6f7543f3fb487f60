"""CloudFormation templates read as data: short-form intrinsics (``!Ref``, ``!Sub``, ``!GetAtt`` ...) become
their long form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``, ``{"Fn::GetAtt": [resource, attribute]}``), as
CloudFormation itself reads them. The deploy tool, the package builder and the template tests share it.
:func:`resolve` replaces the intrinsics of a part of a template with values (parameter defaults, pseudo
parameters, given resource attributes), so a test or a demo can hand a resource's properties to the API
that moto's CloudFormation does not create (budgets, alarms, trails).

Examples:
    >>> parse_template("A: !GetAtt Queue.Arn\\nB: !Ref Name\\nC: !Sub '${AWS::Region}'\\n")
    {'A': {'Fn::GetAtt': ['Queue', 'Arn']}, 'B': {'Ref': 'Name'}, 'C': {'Fn::Sub': '${AWS::Region}'}}
"""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

__all__ = ["alarm_request", "parameter_values", "parse_template", "resolve"]


class _TemplateLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that also reads CloudFormation's short-form tags (libyaml's parser where PyYAML has it:
    the same data about ten times faster; the test suite parses every template many times)."""


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


PSEUDO = {"AWS::AccountId": "123456789012", "AWS::Region": "eu-west-2", "AWS::Partition": "aws",
          "AWS::URLSuffix": "amazonaws.com"}
"""Pseudo parameters as moto's default account and the guide's region."""


def parameter_values(template: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Every parameter's default (a ``CommaDelimitedList`` split), the pseudo parameters, then ``overrides``."""
    values: dict[str, Any] = dict(PSEUDO)
    for name, parameter in (template.get("Parameters") or {}).items():
        default = str(parameter.get("Default", ""))
        values[name] = default.split(",") if parameter.get("Type") == "CommaDelimitedList" else default
    values.update(overrides)
    return values


def _condition(template: dict[str, Any], condition: Any, values: dict[str, Any], attributes: dict[str, Any]) -> bool:
    if isinstance(condition, str):
        condition = template["Conditions"][condition]
    (function, args), = condition.items()
    if function == "Condition":
        return _condition(template, args, values, attributes)
    if function == "Fn::Equals":
        return bool(resolve(template, args[0], values, attributes) == resolve(template, args[1], values, attributes))
    if function == "Fn::Not":
        return not _condition(template, args[0], values, attributes)
    if function == "Fn::And":
        return all(_condition(template, a, values, attributes) for a in args)
    if function == "Fn::Or":
        return any(_condition(template, a, values, attributes) for a in args)
    raise ValueError(f"condition function {function} is not supported here")


def resolve(template: dict[str, Any], node: Any, values: dict[str, Any] | None = None,
            attributes: dict[str, Any] | None = None) -> Any:
    r"""``node`` (a part of ``template``) with ``Ref``, ``Fn::Sub``, ``Fn::GetAtt``, ``Fn::If``, ``Fn::Select``
    and ``Fn::Join`` replaced: parameters from ``values`` (default :func:`parameter_values`), a resource's
    ``Ref`` and attributes from ``attributes`` (``"Bucket"``, ``"Bucket.Arn"``); a reference to a resource
    not given stays ``<LogicalId>`` so that the caller sees what it did not supply.

    Examples:
        >>> t = parse_template("Parameters: {P: {Type: String, Default: x}}\nResources: {}")
        >>> resolve(t, {"Fn::Sub": "${P}-${AWS::Region}"}), resolve(t, {"Ref": "Topic"}, attributes={})
        ('x-eu-west-2', '<Topic>')
        >>> resolve(t, {"Fn::Sub": ["${P}/${Table}", {"Table": {"Fn::Sub": "${P}-ledger"}}]})
        'x/x-ledger'
    """
    values = parameter_values(template) if values is None else values
    attributes = {} if attributes is None else attributes

    def lookup(name: str) -> Any:
        if name in values:
            return values[name]
        return attributes.get(name, f"<{name}>")

    if isinstance(node, list):
        return [resolve(template, item, values, attributes) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        return lookup(node["Ref"])
    if set(node) == {"Fn::Sub"}:
        if isinstance(node["Fn::Sub"], str):
            text, local = node["Fn::Sub"], {}
        else:  # [text, {name: value}]: the variable map's values resolve first and take precedence
            text, variables = node["Fn::Sub"]
            local = {name: resolve(template, value, values, attributes) for name, value in variables.items()}
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(local[m[1]] if m[1] in local else lookup(m[1])), text)
    if set(node) == {"Fn::GetAtt"}:
        return attributes.get(".".join(node["Fn::GetAtt"]), f"<{'.'.join(node['Fn::GetAtt'])}>")
    if set(node) == {"Fn::If"}:
        name, if_true, if_false = node["Fn::If"]
        chosen = if_true if _condition(template, name, values, attributes) else if_false
        return resolve(template, chosen, values, attributes)
    if set(node) == {"Fn::Select"}:
        index, items = node["Fn::Select"]
        return resolve(template, items, values, attributes)[int(index)]
    if set(node) == {"Fn::Join"}:
        separator, items = node["Fn::Join"]
        return separator.join(str(i) for i in resolve(template, items, values, attributes))
    return {key: resolve(template, value, values, attributes) for key, value in node.items()}


#: Properties of an alarm resource that are not ``PutMetricAlarm`` arguments, or that a test sets itself.
_NOT_REQUEST = ("Type", "Tags", "AlarmActions", "OKActions", "InsufficientDataActions")


def alarm_request(props: dict[str, Any], *, actions: bool = True) -> dict[str, Any]:
    """A resolved ``AWS::CloudWatch::Alarm``'s properties as a ``put_metric_alarm`` request: numbers typed as the
    API types them (a template holds them as text after ``!Ref``), a fresh copy. ``actions=False`` drops the
    tags and actions (an offline evaluation needs neither).

    Examples:
        >>> alarm_request({"AlarmName": "a", "Threshold": "5", "Period": "60", "EvaluationPeriods": 3,
        ...                "Type": "AWS::CloudWatch::Alarm"})
        {'AlarmName': 'a', 'Threshold': 5.0, 'Period': 60, 'EvaluationPeriods': 3}
    """
    dropped = _NOT_REQUEST if not actions else ("Type",)
    request = {k: v for k, v in copy.deepcopy(props).items() if k not in dropped}
    if "Threshold" in request:
        request["Threshold"] = float(request["Threshold"])
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in request:
            request[key] = int(request[key])
    for metric in request.get("Metrics", []):
        if "MetricStat" in metric:
            metric["MetricStat"]["Period"] = int(metric["MetricStat"]["Period"])
        if "Period" in metric:
            metric["Period"] = int(metric["Period"])
    return request
