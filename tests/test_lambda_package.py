"""Packaged functions: the deployment zip built by ``simulations.package``, deployed to a moto server, unpacked
outside the repository and run by an interpreter that sees nothing but the unpacked folder.

The build here copies the installed distributions (``--from-environment``: no network, this machine's
binaries); ``make package`` builds the same layout with pip for the template's runtime and CPU.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from simulations import package
from test_lambda_deploy import (
    CONNECTOR_MODULE,
    Deployment,
    answers,
    deploy_with_code,
    fund_debtor,
    payments,
    receive_event,
    routable_payment,
    submit,
    write_connector,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.xdist_group("lambda-package")  # one worker builds the package once for the module

#: Run by the clean interpreter: import the handler as the Lambda runtime does (``_HANDLER`` from the task
#: root), check where everything came from, invoke it with the event on stdin, print the result.
DRIVER = r'''
import importlib, importlib.util, json, os, sys, sysconfig
task_root = os.environ["LAMBDA_TASK_ROOT"]
sys.path.insert(0, task_root)
module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
handler = getattr(importlib.import_module(module_name), function_name)
import fasterpay
assert fasterpay.__file__ == os.path.join(task_root, "fasterpay", "__init__.py"), fasterpay.__file__
result = handler(json.loads(sys.stdin.read()), None)
stdlib = (sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"))
outside = sorted({name for name, module in list(sys.modules.items())
                  if getattr(module, "__file__", None) and not module.__file__.startswith((task_root, *stdlib))})
assert not outside, f"imported from outside the package and the standard library: {outside}"
assert importlib.util.find_spec("moto") is None, "moto is a test backend: it must not be importable here"
print(json.dumps({"result": result, "fasterpay": fasterpay.__file__, "modules": len(sys.modules)}))
'''


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> package.PackageReport:
    """The deployment package with the test's scheme connector, built once for the module."""
    folder = tmp_path_factory.mktemp("lambda-package")
    return package.build_package(folder / "fasterpay-lambda.zip", from_environment=True,
                                 include=[write_connector(folder)])


@pytest.fixture
def server_env() -> Iterator[Any]:
    from fasterpay.aws import open_environment

    with open_environment("moto-server", region="eu-west-2") as environment:
        yield environment


def invoke_packaged(task_root: Path, deployment: Deployment, handler: str, event: Mapping[str, Any],
                    endpoint_url: str, region: str) -> dict[str, Any]:
    """Run one cold start and invocation of ``handler`` from ``task_root``, in a clean interpreter, with the
    function's deployed Environment, the variables the Lambda runtime sets, and fake credentials."""
    config = deployment.functions[handler]
    variables = {
        **deployment.environment(handler),
        "_HANDLER": config["Handler"], "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": config["FunctionName"], "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": str(task_root / "no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(task_root / "none"),
        "AWS_ENDPOINT_URL": endpoint_url,
    }
    interpreter = getattr(sys, "_base_executable", sys.executable)  # not the venv's: -I -S sees no site-packages
    run = subprocess.run([interpreter, "-I", "-S", "-c", DRIVER], input=json.dumps(event), env=variables,
                         cwd=task_root, capture_output=True, text=True, timeout=180, check=False)
    if run.returncode != 0:
        pytest.fail(f"{handler} failed in the clean interpreter (exit {run.returncode}):\n{run.stderr[-6000:]}")
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(report["fasterpay"]).is_relative_to(task_root)
    return dict(report["result"])


def test_package_holds_fasterpay_its_data_and_runtime_dependencies_and_not_moto(built: package.PackageReport) -> None:
    with zipfile.ZipFile(built.path) as archive:
        names = set(archive.namelist())
    assert {"fasterpay/pipeline/lambdas.py", "fasterpay/cloudformation/pipeline.yaml",
            "fasterpay/pipeline/routing.yaml",
            "fasterpay/pipeline/sanctions.yaml", "fasterpay/py.typed", f"{CONNECTOR_MODULE}.py"} <= names
    assert not [n for n in names if n.endswith(".pyc") or n.startswith(("moto/", "bin/"))]
    assert {"boto3", "cryptography", "pyiso20022", "xsdata", "schwifty", "aws-lambda-powertools"} <= set(
        built.distributions)
    assert "moto" not in built.distributions
    assert built.zipped_bytes <= package.MAX_ZIPPED_BYTES and built.unzipped_bytes <= package.MAX_UNZIPPED_BYTES


def test_packaged_handlers_run_from_the_unpacked_zip_alone(built: package.PackageReport, server_env: Any,
                                                           tmp_path: Path) -> None:
    code = built.path.read_bytes()
    deployment = deploy_with_code(server_env, code)
    for config in deployment.functions.values():  # the functions run this very zip
        assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    task_root = tmp_path / "task"
    assert not task_root.is_relative_to(REPO_ROOT)
    with zipfile.ZipFile(built.path) as archive:
        archive.extractall(task_root)
    message = routable_payment()
    fund_debtor(server_env, deployment, message)
    submit(server_env, deployment, message)
    endpoint, region = server_env.endpoint_url, server_env.region

    accepted = invoke_packaged(task_root, deployment, "accept", receive_event(server_env, deployment, "accept"),
                               endpoint, region)

    assert accepted == {"batchItemFailures": []}
    assert payments(server_env, deployment)[message.end_to_end_id].status == "ACCP"

    cleared = invoke_packaged(task_root, deployment, "clear", receive_event(server_env, deployment, "clear"),
                              endpoint, region)

    assert cleared == {"batchItemFailures": []}
    stored = payments(server_env, deployment)[message.end_to_end_id]
    assert stored.status == "ACSP" and stored.cycle
    assert [(a.end_to_end_id, a.status) for a in answers(server_env, deployment)] == [(message.end_to_end_id, "ACSP")]


# -- the builder ---------------------------------------------------------------------------------------------
def test_builder_targets_the_templates_runtime_and_cpu_with_pip(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from fasterpay.pipeline.stack import pipeline_template

    target = package.lambda_target(pipeline_template())
    calls: list[list[str]] = []

    def fake_pip(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(package.subprocess, "run", fake_pip)
    package.build_package(tmp_path / "p.zip", wheels=tmp_path / "wheels")
    download, install = calls
    for command in (download, install):
        assert command[command.index("--platform") + 1] == target.pip_platform
        assert command[command.index("--python-version") + 1] == target.runtime.removeprefix("python")
        assert command[command.index("-c") + 1] == str(REPO_ROOT / "constraints.txt")
        assert "--only-binary=:all:" in command
        assert not [arg for arg in command if arg.lower().startswith("moto")]
    assert "--no-index" in install and any(arg.startswith("boto3") for arg in install)


def test_builder_examples_run() -> None:
    import doctest

    result = doctest.testmod(package)
    assert result.attempted and not result.failed


@pytest.mark.parametrize(("zipped", "unzipped", "fits"), [
    (package.MAX_ZIPPED_BYTES, package.MAX_UNZIPPED_BYTES, True),
    (package.MAX_ZIPPED_BYTES + 1, 1, False),
    (1, package.MAX_UNZIPPED_BYTES + 1, False),
])
def test_builder_refuses_a_package_over_lambdas_limits(zipped: int, unzipped: int, fits: bool) -> None:
    if fits:
        package.check_lambda_limits(zipped, unzipped)
    else:
        with pytest.raises(package.PackageTooLargeError, match="over Lambda's limit"):
            package.check_lambda_limits(zipped, unzipped)
