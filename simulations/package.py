"""The Lambda deployment package: the reference package ``fasterpay`` and its runtime dependencies, one zip.

``make package`` runs ``python -m simulations.package --out build/lambda/fasterpay-lambda.zip``. The zip is
for the runtime the pipeline template declares (``Runtime`` and ``Architectures`` of its functions,
read from ``fasterpay/cloudformation/pipeline.yaml``): pip installs the wheels built for that Python and
that CPU on Linux, pinned by ``constraints.txt``, whatever machine builds it. The dependencies are
``[project] dependencies`` of ``pyproject.toml`` less the test backends (moto). The wheels are kept in
``build/lambda/wheels``, so a second build needs no network.

``--from-environment`` copies the installed distributions of the running interpreter instead (no pip,
no network): the zip then holds *this machine's* binaries, which is right for a test on the same Python
and CPU and wrong for a deployment elsewhere; the builder refuses a Python version or OS that differs
from the template's, and says so when the CPU does.

``--include FILE`` adds a module of your own at the top of the zip, for example the scheme connector
named by ``FASTERPAY_SCHEME_GATEWAY``.

The zip is reproducible (sorted entries, fixed timestamps, no ``.pyc``): the same inputs give the same
bytes, so the same ``CodeSha256``. It is checked against Lambda's limits: 50 MB zipped (the API's upload
limit) and 250 MB unzipped.

Examples:
    python -m simulations.package --out build/lambda/fasterpay-lambda.zip
    python -m simulations.package --from-environment --include my_connector.py --out /tmp/fp.zip
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from simulations.templates import parse_template

__all__ = [
    "MAX_UNZIPPED_BYTES",
    "MAX_ZIPPED_BYTES",
    "TEST_ONLY_DISTRIBUTIONS",
    "LambdaTarget",
    "PackageReport",
    "PackageTooLargeError",
    "PackagingError",
    "build_package",
    "check_lambda_limits",
    "lambda_target",
    "main",
    "runtime_requirements",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "build/lambda/fasterpay-lambda.zip"
DEFAULT_WHEELS = REPO_ROOT / "build/lambda/wheels"
#: Lambda's quotas: a zip uploaded through the API, and a function's code unpacked (bytes).
MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
#: Dependencies the tests need and a deployed function must not carry.
TEST_ONLY_DISTRIBUTIONS = frozenset({"moto"})
#: pip platform tags per Lambda architecture. manylinux2014 (glibc 2.17) runs on every Lambda Python runtime;
#: python3.11 runs on Amazon Linux 2 (glibc 2.26), so newer manylinux wheels would not load there.
_PIP_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
_MACHINES = {"x86_64": {"x86_64", "amd64"}, "arm64": {"aarch64", "arm64"}}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest date: reproducible archives


class PackagingError(RuntimeError):
    """The package cannot be built as asked; the message says what to change."""


class PackageTooLargeError(PackagingError):
    """The package is over a Lambda size limit: drop a dependency, or ship it as a container image."""


@dataclass(frozen=True)
class LambdaTarget:
    """What the template's functions run on: the runtime, its Python version, the CPU and pip's platform tag."""

    runtime: str
    python_version: str
    architecture: str

    @property
    def pip_platform(self) -> str:
        return _PIP_PLATFORMS[self.architecture]


@dataclass(frozen=True)
class PackageReport:
    """What a build wrote."""

    path: Path
    zipped_bytes: int
    unzipped_bytes: int
    distributions: dict[str, str]  # canonical name: version
    target: LambdaTarget
    source: str  # "pip (cached wheels)", "pip (downloaded)" or "environment"
    seconds: float

    def summary(self) -> str:
        mb = 1024 * 1024
        return (f"wrote {self.path}: {self.zipped_bytes / mb:.1f} MB zipped, {self.unzipped_bytes / mb:.1f} MB "
                f"unzipped (Lambda limits {MAX_ZIPPED_BYTES // mb} MB / {MAX_UNZIPPED_BYTES // mb} MB); "
                f"{len(self.distributions)} distributions from {self.source}; for {self.target.runtime} "
                f"{self.target.architecture}; {self.seconds:.1f} s")


# -- what to build for, and what goes in -----------------------------------------------------------------
def lambda_target(template_text: str) -> LambdaTarget:
    """The runtime and CPU the template's functions declare (they must all agree).

    Examples:
        >>> lambda_target('''
        ... Resources:
        ...   F: {Type: AWS::Lambda::Function, Properties: {Runtime: python3.11, Architectures: [arm64]}}
        ... ''').pip_platform
        'manylinux2014_aarch64'
    """
    resources = parse_template(template_text).get("Resources", {})
    targets = set()
    for resource in resources.values():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        props = resource.get("Properties", {})
        runtime = str(props.get("Runtime", ""))
        architectures = props.get("Architectures") or ["x86_64"]  # Lambda's default
        if not runtime.startswith("python3.") or len(architectures) != 1 or architectures[0] not in _PIP_PLATFORMS:
            raise PackagingError(f"a function declares {runtime!r} on {architectures!r}: expected pythonX.Y on "
                                 f"one of {sorted(_PIP_PLATFORMS)}")
        targets.add(LambdaTarget(runtime, runtime.removeprefix("python"), architectures[0]))
    if len(targets) != 1:
        raise PackagingError(f"the template's functions must share one runtime and CPU to share a package, "
                             f"found {sorted(map(str, targets)) or 'no function'}")
    return targets.pop()


def runtime_requirements(pyproject: Path) -> list[str]:
    """``[project] dependencies`` less :data:`TEST_ONLY_DISTRIBUTIONS` (the extras are for the site and tests)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [spec for spec in project["dependencies"]
            if canonicalize_name(Requirement(spec).name) not in TEST_ONLY_DISTRIBUTIONS]


def _pins(constraints: Path) -> dict[str, str]:
    pins = {}
    for line in constraints.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _package_data(pyproject: Path) -> list[str]:
    """The non-Python files setuptools ships with ``fasterpay`` (``[tool.setuptools.package-data]``)."""
    tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
    return list(tool.get("setuptools", {}).get("package-data", {}).get("fasterpay", []))


def _copy_fasterpay(source: Path, stage: Path, data_patterns: Sequence[str]) -> None:
    for path in sorted(source.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(source).as_posix()
        if path.suffix == ".py" or any(fnmatch(relative, pattern) for pattern in data_patterns):
            target = stage / "fasterpay" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


# -- two ways to get the dependencies ------------------------------------------------------------------------
def _pip_install(stage: Path, requirements: Sequence[str], target: LambdaTarget, constraints: Path,
                 wheels: Path) -> str:
    """Install the wheels for ``target`` into ``stage``, from ``wheels`` (downloaded there first if missing)."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    platform_args = ["--platform", target.pip_platform, "--implementation", "cp",
                     "--python-version", target.python_version, "--only-binary=:all:", "-c", str(constraints)]
    install = [*pip, "install", "--target", str(stage), "--no-compile", "--no-index", "--find-links", str(wheels),
               *platform_args, *requirements]
    wheels.mkdir(parents=True, exist_ok=True)
    if any(wheels.glob("*.whl")) and subprocess.run(install, capture_output=True, check=False).returncode == 0:
        return "pip (cached wheels)"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    download = subprocess.run([*pip, "download", "--dest", str(wheels), *platform_args, *requirements],
                              capture_output=True, text=True, check=False)
    if download.returncode != 0:
        raise PackagingError(f"pip could not download the wheels for {target.runtime} on {target.pip_platform} "
                             f"(network, or a dependency without a wheel for it):\n{download.stderr[-3000:]}")
    installed = subprocess.run(install, capture_output=True, text=True, check=False)
    if installed.returncode != 0:
        raise PackagingError(f"pip could not install the downloaded wheels:\n{installed.stderr[-3000:]}")
    return "pip (downloaded)"


def _closure(requirements: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions ``requirements`` need, transitively (markers evaluated for this Python,
    extras followed)."""
    found: dict[str, metadata.Distribution] = {}
    visited: set[tuple[str, str]] = set()
    pending = [Requirement(spec) for spec in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        extras = {""} | set(requirement.extras)
        if all((name, extra) in visited for extra in extras):
            continue
        visited.update((name, extra) for extra in extras)
        if name not in found:
            try:
                found[name] = metadata.distribution(requirement.name)
            except metadata.PackageNotFoundError:
                raise PackagingError(f"{requirement.name} is not installed here: run `make setup`, or build "
                                     f"without --from-environment") from None
        for spec in found[name].requires or ():
            child = Requirement(spec)
            if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(child)
    return [found[name] for name in sorted(found)]


def _copy_environment(stage: Path, requirements: Sequence[str], target: LambdaTarget, constraints: Path) -> str:
    """Copy the installed distributions (and their ``.dist-info``) as ``pip install --target`` lays them out."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != target.python_version or sys.platform != "linux":
        raise PackagingError(f"--from-environment needs Python {target.python_version} on Linux (the template's "
                             f"{target.runtime}); this is Python {here} on {sys.platform}: build with pip instead")
    machine = platform.machine().lower()
    if machine not in _MACHINES[target.architecture]:
        print(f"note: the template's functions run on {target.architecture}, this machine is {machine}: the "
              f"package holds {machine} binaries (fine for a test here, not for a deployment)", file=sys.stderr)
    pins = _pins(constraints)
    for dist in _closure(requirements):
        name = canonicalize_name(dist.metadata["Name"])
        if name in pins and pins[name] != dist.version:
            raise PackagingError(f"{name} {dist.version} is installed, constraints.txt pins {pins[name]}: "
                                 f"run `make setup`")
        for file in dist.files or ():
            if file.parts[0] in ("..", "") or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue  # scripts in bin/, and byte code
            source = Path(dist.locate_file(file))
            if source.is_file():
                destination = stage / file
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)
    return "environment"


# -- the zip --------------------------------------------------------------------------------------------------
def _installed(stage: Path) -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version
            for d in metadata.distributions(path=[str(stage)])}


def _write_zip(stage: Path, out: Path) -> int:
    """A reproducible zip of ``stage``; returns the unzipped size in bytes."""
    unzipped = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in stage.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(stage).as_posix(), date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = path.stat().st_mode & 0o111
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data)
    partial.replace(out)
    return unzipped


def build_package(out: Path = DEFAULT_OUT, *, from_environment: bool = False, include: Sequence[Path] = (),
                  wheels: Path = DEFAULT_WHEELS, root: Path = REPO_ROOT) -> PackageReport:
    """Build the deployment package at ``out`` and check it against Lambda's size limits.

    Raises:
        PackagingError: pip failed, or the environment does not match the template's runtime.
        PackageTooLargeError: over 50 MB zipped or 250 MB unzipped (the zip is left in place to inspect).

    Examples:
        >>> report = build_package(Path("build/lambda/fasterpay-lambda.zip"))  # doctest: +SKIP
        >>> print(report.summary())  # doctest: +SKIP
        wrote build/lambda/fasterpay-lambda.zip: 34.6 MB zipped, 99.5 MB unzipped (Lambda limits 50 MB / 250 MB); ...
    """
    started = time.perf_counter()
    pyproject, constraints = root / "pyproject.toml", root / "constraints.txt"
    target = lambda_target((root / "reference/fasterpay/cloudformation/pipeline.yaml").read_text(encoding="utf-8"))
    requirements = runtime_requirements(pyproject)
    with tempfile.TemporaryDirectory(prefix="fasterpay-lambda-") as scratch:
        stage = Path(scratch) / "package"
        stage.mkdir()
        if from_environment:
            source = _copy_environment(stage, requirements, target, constraints)
        else:
            source = _pip_install(stage, requirements, target, constraints, wheels)
            shutil.rmtree(stage / "bin", ignore_errors=True)  # console scripts: a function has no use for them
        if any((stage / name).exists() for name in ("fasterpay", *(Path(p).name for p in include))):
            raise PackagingError("a dependency installs a module named like fasterpay or an --include file")
        distributions = _installed(stage)
        carried = TEST_ONLY_DISTRIBUTIONS & set(distributions)
        if carried:
            raise PackagingError(f"{sorted(carried)} must not be in the package: a runtime dependency pulls it in")
        _copy_fasterpay(root / "reference/fasterpay", stage, _package_data(pyproject))
        for module in include:
            shutil.copy2(module, stage / Path(module).name)
        unzipped = _write_zip(stage, out)
    report = PackageReport(out, out.stat().st_size, unzipped, distributions, target, source,
                           time.perf_counter() - started)
    check_lambda_limits(report.zipped_bytes, report.unzipped_bytes)
    return report


def check_lambda_limits(zipped_bytes: int, unzipped_bytes: int) -> None:
    """Refuse a package Lambda would refuse.

    Raises:
        PackageTooLargeError: over 50 MB zipped or 250 MB unzipped.

    Examples:
        >>> check_lambda_limits(35 * 1024 * 1024, 100 * 1024 * 1024)
    """
    mb = 1024 * 1024
    for what, size, limit in (("zipped", zipped_bytes, MAX_ZIPPED_BYTES), ("unzipped", unzipped_bytes,
                                                                          MAX_UNZIPPED_BYTES)):
        if size > limit:
            raise PackageTooLargeError(f"the package is {size / mb:.1f} MB {what}, over Lambda's limit of "
                                       f"{limit // mb} MB: leave a dependency out, or package the functions as "
                                       f"a container image (10 GB)")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulations.package``: build the package, print its size, exit 1 on an error."""
    parser = argparse.ArgumentParser(prog="python -m simulations.package", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="the zip to write (default: build/lambda/fasterpay-lambda.zip in the repository)")
    parser.add_argument("--from-environment", action="store_true",
                        help="copy the installed distributions instead of pip (no network; this machine's binaries)")
    parser.add_argument("--include", type=Path, action="append", default=[], metavar="FILE",
                        help="a module of your own to add at the top of the zip (repeatable)")
    parser.add_argument("--wheels", type=Path, default=DEFAULT_WHEELS,
                        help="where pip keeps the downloaded wheels (default: build/lambda/wheels in the repository)")
    args = parser.parse_args(argv)
    try:
        report = build_package(args.out, from_environment=args.from_environment, include=args.include,
                               wheels=args.wheels)
    except PackagingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
