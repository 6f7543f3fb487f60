"""The runbooks under docs/runbooks: every section filled, every command in a file the tests run or check.

Rehearsals run in process through ``simulations.cli.main`` and must exit 0 (each exits 0 only when the
runbook's outcome holds). The AWS CLI checks and remedies cannot run here; each is parsed and checked
against botocore's service model, so a misspelt service, operation or option fails the suite.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = REPO_ROOT / "docs" / "runbooks"
SLUGS = ("dlq-redrive", "scheme-timeout-storm", "settlement-mismatch", "hot-account", "kms-throttling",
         "region-failover", "slo-burn", "detokenize-spike")
SECTIONS = ("Detection signal", "Checks", "Remedy", "Rollback", "Escalate when", "Rehearse", "Evidence")

#: Every CloudWatch alarm a runbook names: the operations template's (``${NamePrefix}-${Stage}-...``, prod
#: stage) and the FinOps template's KMS quota alarm. ``test_every_alarm_name_is_one_of_the_templates`` checks this list.
ALARM_NAMES = (
    "fasterpay-prod-accept-dlq-not-empty",
    "fasterpay-prod-scheme-timeout-storm",
    "fasterpay-prod-settlement-mismatch",
    "fasterpay-prod-ledger-write-throttles",
    "fasterpay-prod-kms-request-quota",
    "fasterpay-prod-kms-throttling",
    "fasterpay-prod-ledger-replication-lag",
    "fasterpay-prod-authorisation-fast-burn",
    "fasterpay-prod-authorisation-medium-burn",
    "fasterpay-prod-authorisation-slow-burn",
    "fasterpay-prod-critical-path-fast-burn",
    "fasterpay-prod-critical-path-medium-burn",
    "fasterpay-prod-critical-path-slow-burn",
    "fasterpay-prod-critical-path-p99",
    "fasterpay-prod-accept-queue-age",
    "fasterpay-prod-clear-queue-age",
    "fasterpay-prod-accept-queue-depth",
    "fasterpay-prod-clear-queue-depth",
    "fasterpay-prod-detokenize-anomaly",
    "fasterpay-prod-detokenize-ceiling",
)
#: Names with the alarms' prefix that are not alarms: the operations dashboard (checked against the template too).
OTHER_NAMES = ("fasterpay-prod-operations",)
TEMPLATES = REPO_ROOT / "reference" / "fasterpay" / "cloudformation"
#: Options the AWS CLI adds to every command (or to every paginated one), beside the operation's parameters.
GLOBAL_OPTIONS = frozenset({
    "--region", "--query", "--output", "--profile", "--endpoint-url", "--no-paginate", "--debug", "--no-verify-ssl",
    "--color", "--no-cli-pager", "--cli-input-json", "--cli-input-yaml", "--generate-cli-skeleton",
    "--max-items", "--starting-token", "--page-size", "--cli-read-timeout", "--cli-connect-timeout",
})


def _logical_lines(path: Path) -> list[str]:
    """The file's commands: comments and blank lines dropped, ``\\`` continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, f"{path}: a continuation line ends the file"
    return lines


def _rehearsals() -> list[tuple[str, str]]:
    return [(slug, line) for slug in SLUGS for line in _logical_lines(RUNBOOKS / "rehearse" / f"{slug}.sh")]


def _command_files() -> list[Path]:
    return sorted((RUNBOOKS / "commands").glob("*.sh"))


def _page(slug: str) -> str:
    return (RUNBOOKS / f"{slug}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("slug", SLUGS)
def test_each_runbook_has_every_section_and_no_placeholder(slug: str) -> None:
    text = _page(slug)
    headings = re.findall(r"^##+ (.+)$", text, flags=re.M)
    for section in SECTIONS:
        assert any(h.startswith(section) for h in headings), f"{slug}: no '{section}' section"
    assert not re.search(r"<[a-z][^<>\n]*>", re.sub(r"<!--.*?-->", "", text, flags=re.S)), \
        f"{slug}: a <placeholder> is left"
    assert not re.search(r"^\s*(aws|python -m) ", text, flags=re.M), f"{slug}: a command typed into the page"


@pytest.mark.parametrize("slug", SLUGS)
def test_each_runbook_includes_its_command_files(slug: str) -> None:
    text = _page(slug)
    included = re.findall(r'--8<-- "([^"]+)"', text)
    for name in (f"docs/runbooks/rehearse/{slug}.sh", f"docs/runbooks/commands/{slug}-checks.sh",
                 f"docs/runbooks/commands/{slug}-remedy.sh"):
        assert name in included, f"{slug}: {name} not included"
    for name in included:
        assert (REPO_ROOT / name).is_file(), name


@pytest.mark.parametrize("slug", SLUGS)
def test_each_runbook_names_only_known_alarms(slug: str) -> None:
    texts = [_page(slug)] + [p.read_text() for p in _command_files() if p.name.startswith(f"{slug}-")]
    named = {name for text in texts for name in re.findall(r"fasterpay-prod-[a-z0-9-]+", text)}
    assert named, f"{slug}: no alarm named"
    assert named <= set(ALARM_NAMES) | set(OTHER_NAMES), named - set(ALARM_NAMES) - set(OTHER_NAMES)


def test_the_index_lists_every_runbook_with_its_alarm_and_rehearsal() -> None:
    index = (RUNBOOKS / "index.md").read_text(encoding="utf-8")
    for slug in SLUGS:
        assert f"({slug}.md)" in index, slug
    for alarm in ALARM_NAMES:
        assert alarm in index, alarm
    assert not re.search(r"`python -m simulations [^`]*`", index) or all(
        cmd in {line for _, line in _rehearsals()}
        for cmd in re.findall(r"`(python -m simulations [^`]*)`", index)), "the index quotes a command no file has"


def test_every_rehearsal_line_is_a_simulations_command() -> None:
    lines = _rehearsals()
    assert {slug for slug, _ in lines} == set(SLUGS)
    for slug, line in lines:
        assert shlex.split(line)[:3] == ["python", "-m", "simulations"], (slug, line)


#: Measured on the build machine (two cores): the rehearsals take about 60 s together, run one after the other
#: (each SLO drill about 12 s: two pipeline runs on moto, then six hours of replayed traffic).
@pytest.mark.xdist_group("runbooks")
@pytest.mark.parametrize(("slug", "line"), _rehearsals(), ids=[f"{slug}-{n}" for n, (slug, _) in enumerate(_rehearsals())])
def test_each_rehearsal_runs_in_process_and_exits_0(slug: str, line: str) -> None:
    from simulations.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(shlex.split(line)[3:])
    last = out.getvalue().strip().splitlines()[-1]
    summary = json.loads(last)
    assert code == 0 and summary["ok"] is True, out.getvalue()[-3000:]
    # each proves what its runbook claims, not only that it ran
    if slug == "scheme-timeout-storm":
        assert summary["scheme_timeouts"] >= 3 and summary["lost"] == summary["doubled"] == summary["non_final"] == 0
        assert summary["reasons"].get("AB05", 0) + summary["reasons"].get("AB06", 0) >= summary["scheme_timeouts"]
    elif slug == "settlement-mismatch":
        injected = summary["injected_mismatch"]
        assert summary["detected"] and summary["named"] and summary["repaired"]
        assert any(injected["cycle"] in f and injected["participant"] in f for f in summary["found"])
        assert summary["reconciliation_mismatches"] == 0
    elif slug == "hot-account":
        one, many = summary["runs"][0], summary["runs"][-1]
        assert one["hottest_balance_item_wcu_per_s"] > 1_000 >= many["hottest_key_wcu_per_s"]
    elif slug == "kms-throttling":
        assert summary["kms_faults"] >= 1
        assert summary["kms_requests_per_payment_cached"] < summary["kms_requests_per_payment_uncached"]
    elif slug == "dlq-redrive":
        assert summary["isolated"] == summary["redriven"] == summary["poison"] and summary["left_in_dlq"] == 0
    elif slug == "slo-burn":
        assert summary["phases_ok"] and summary["paged_before_the_storm"] == summary["pages_firing_at_the_end"] == []
        assert summary["detected_by"] in ALARM_NAMES
        assert 0 <= summary["time_to_detect_min"] <= summary["time_to_remedy_min"] < summary["time_to_restore_min"]
        assert 0 < summary["budget_spent_pct"] < 100
        if "--page-on slo" in line:  # the SLO page alone: a burn-rate composite pages, later than the cause alarm would
            assert summary["detected_by"].endswith(("-fast-burn", "-medium-burn"))
            assert summary["time_to_detect_min"] > 5
        else:  # the cause alarm pages first, within minutes of the storm
            assert summary["detected_by"] == "fasterpay-prod-scheme-timeout-storm"
            assert summary["time_to_detect_min"] <= 5
    elif slug == "detokenize-spike":
        assert summary["caught_windows"] >= 1 and summary["false_alerts"] == 0
        assert 0 < summary["minutes_to_alert"] <= 2


@pytest.mark.xdist_group("runbooks")
@pytest.mark.parametrize(("argv", "why"), [
    (["slo-drill", "--payments", "12", "--seed", "3", "--storm-rate", "0", "--hours", "3", "--json"],
     "no storm: nothing pages, so the runbook's outcome is not shown"),
    (["detokenize-drill", "--seed", "7", "--spike-factor", "1.5", "--json"], "a misuse too small to flag"),
])
def test_a_rehearsal_whose_outcome_does_not_hold_exits_1(argv: list[str], why: str) -> None:
    from simulations.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert code == 1 and summary["ok"] is False, why


@pytest.fixture(scope="module")
def botocore_session():  # type: ignore[no-untyped-def]
    import botocore.session

    return botocore.session.get_session()


def _check_aws_command(session, line: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Problems with one ``aws`` command line: unknown service, operation or option."""
    from botocore import xform_name

    words = shlex.split(line)
    if words[0] != "aws" or len(words) < 3:
        return [f"not an aws <service> <operation> command: {line}"]
    service, operation, rest = words[1], words[2], words[3:]
    if service not in session.get_available_services():
        return [f"unknown service {service!r}"]
    model = session.get_service_model(service)
    by_cli_name = {xform_name(name, "-"): name for name in model.operation_names}
    if operation not in by_cli_name:
        return [f"{service}: unknown operation {operation!r}"]
    shape = model.operation_model(by_cli_name[operation]).input_shape
    members = shape.members if shape is not None else {}
    allowed = set(GLOBAL_OPTIONS)
    for name, member in members.items():
        cli = "--" + xform_name(name, "-")
        allowed.add(cli)
        if member.type_name == "boolean":
            allowed.add("--no-" + xform_name(name, "-"))
    problems = [f"{service} {operation}: unknown option {w!r}" for w in rest if w.startswith("--") and w not in allowed]
    required = {"--" + xform_name(name, "-") for name in (shape.required_members if shape is not None else ())}
    problems += [f"{service} {operation}: required option {r} missing" for r in sorted(required - set(rest))]
    return problems


def test_every_runbook_has_check_and_remedy_files() -> None:
    names = {p.name for p in _command_files()}
    assert names == {f"{slug}-{kind}.sh" for slug in SLUGS for kind in ("checks", "remedy")}


@pytest.mark.parametrize("path", _command_files(), ids=lambda p: p.name)
def test_every_aws_command_exists_in_botocore_with_its_options(botocore_session, path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = _logical_lines(path)
    assert lines, f"{path.name}: no command"
    problems = [f"{path.name}: {p}" for line in lines for p in _check_aws_command(botocore_session, line)]
    assert problems == []


def _file_arguments(line: str) -> list[tuple[str, Path]]:
    """(option, path) for every ``--option file://path`` of one command line (paths from the repository root)."""
    words = shlex.split(line)
    return [(option, REPO_ROOT / value[len("file://"):]) for option, value in zip(words, words[1:])
            if option.startswith("--") and value.startswith("file://")]


@pytest.mark.parametrize("path", _command_files(), ids=lambda p: p.name)
def test_every_file_argument_exists_and_fits_its_parameter(botocore_session, path: Path) -> None:  # type: ignore[no-untyped-def]
    """A ``file://`` argument is read by the CLI as the parameter's value: a list or structure is checked against
    botocore's shape (names, types, required members); a policy document must be an IAM policy."""
    from botocore import xform_name
    from botocore.validate import ParamValidator

    for line in _logical_lines(path):
        words = shlex.split(line)
        model = botocore_session.get_service_model(words[1])
        operation = {xform_name(n, "-"): n for n in model.operation_names}[words[2]]
        members = {"--" + xform_name(name, "-"): shape for name, shape in
                   model.operation_model(operation).input_shape.members.items()}
        for option, file in _file_arguments(line):
            assert file.is_file(), f"{path.name}: {option} names {file}, which does not exist"
            value = json.loads(file.read_text(encoding="utf-8"))
            shape = members[option]
            if shape.type_name in ("list", "structure"):
                report = ParamValidator().validate(value, shape)
                assert not report.has_errors(), f"{file.name}: {report.generate_report()}"
            else:
                assert option == "--policy-document", (path.name, option)
                assert value["Version"] == "2012-10-17" and value["Statement"], file.name
                for statement in value["Statement"]:
                    assert statement["Effect"] in {"Allow", "Deny"} and statement["Action"] and statement["Resource"]


def _template_alarm_names(name: str) -> set[str]:
    from simulations.templates import parameter_values, parse_template, resolve

    template = parse_template((TEMPLATES / name).read_text(encoding="utf-8"))
    values = parameter_values(template)
    return {resolve(template, resource["Properties"]["AlarmName"], values)
            for resource in template["Resources"].values()
            if resource["Type"] in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")}


def test_every_alarm_name_is_one_of_the_templates() -> None:
    """The runbooks name alarms as the operations and FinOps templates create them with their defaults (prod)."""
    from simulations.templates import parameter_values, parse_template, resolve

    known = _template_alarm_names("operations.yaml") | _template_alarm_names("finops.yaml")
    assert set(ALARM_NAMES) <= known, sorted(set(ALARM_NAMES) - known)
    operations = parse_template((TEMPLATES / "operations.yaml").read_text(encoding="utf-8"))
    dashboard = operations["Resources"]["OperationsDashboard"]["Properties"]["DashboardName"]
    assert resolve(operations, dashboard, parameter_values(operations)) in OTHER_NAMES


def test_every_runbook_an_alarm_names_has_its_page() -> None:
    """Each ``Runbook: docs/runbooks/<slug>.md`` of an operations alarm's description is a page, and a runbook here."""
    from simulations.templates import parse_template

    template = parse_template((TEMPLATES / "operations.yaml").read_text(encoding="utf-8"))
    named = set()
    for resource in template["Resources"].values():
        description = str(resource.get("Properties", {}).get("AlarmDescription", ""))
        named |= set(re.findall(r"Runbook: docs/runbooks/([a-z0-9-]+)\.md", description))
    assert named, "no alarm names a runbook"
    for slug in sorted(named):
        assert (RUNBOOKS / f"{slug}.md").is_file(), f"docs/runbooks/{slug}.md is named by an alarm but missing"
    assert named <= set(SLUGS), sorted(named - set(SLUGS))


def test_the_command_checker_catches_typos(botocore_session) -> None:  # type: ignore[no-untyped-def]
    assert _check_aws_command(botocore_session, "aws sqs get-queue-attributes --queue-url u --attribute-names All") == []
    assert _check_aws_command(botocore_session, "aws lambda update-event-source-mapping --uuid u --no-enabled") == []
    assert _check_aws_command(botocore_session, "aws sqs get-queue-attribute --queue-url u")  # operation
    assert _check_aws_command(botocore_session, "aws sqs get-queue-attributes --queue-ur u")  # option
    assert _check_aws_command(botocore_session, "aws sqsx list-queues")  # service
    assert _check_aws_command(botocore_session, "aws sqs start-message-move-task --destination-arn a")  # required


@pytest.mark.parametrize(("args", "message"), [
    (["hot-account", "--shards", "8"], "give 1 then larger shard counts"),
    (["hot-account", "--shards", "1,x"], "not a comma-separated list"),
    (["replay", "--inject-mismatch", "--after-drill", "region-outage"], "does not combine with --after-drill"),
])
def test_the_rehearsal_options_refuse_what_they_cannot_do(args: list[str], message: str, capsys) -> None:  # type: ignore[no-untyped-def]
    from simulations.cli import main

    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2 and message in capsys.readouterr().err
