"""Each pattern folder copies alone, or with the siblings its ``__copy_with__`` names, and works there.

For each pattern the test copies the folder and its siblings into a package of another name
(``bankco``) in a temporary directory outside the repository, shadows ``fasterpay`` and
``simulations`` so that any import of either fails, and runs the pattern's quick start (its
``fasterpay`` imports renamed to ``bankco``) against moto in a fresh interpreter.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "reference" / "fasterpay"
EXAMPLES = ROOT / "reference" / "examples"

IDEMPOTENCY_ALONE = textwrap.dedent('''
    import boto3
    from moto import mock_aws

    from bankco.idempotency import DynamoDbIdempotencyStore, Replay, create_idempotency_table, fingerprint

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-west-2")
        store = DynamoDbIdempotencyStore(ddb, create_idempotency_table(ddb, "idem"))
        body = fingerprint({"amount": "10.00", "currency": "GBP"})
        claim = store.begin("bank-a", "req-1", body)
        store.complete(claim, {"status": "ACSP"})
        again = store.begin("bank-a", "req-1", body)
        assert isinstance(again, Replay) and again.value == {"status": "ACSP"}, again
    print("idempotency ok")
''')

IMPORTS_ONLY = "import bankco.{name}\nprint('{name} imports')\n"

#: pattern -> the program run against the copy
PROGRAMS = {
    "idempotency": IDEMPOTENCY_ALONE,
    "ledger": "ledger_quickstart.py",
    "vault": "vault_quickstart.py",
    "audit": "audit_quickstart.py",
    "iso20022": IMPORTS_ONLY.format(name="iso20022"),
    "observability": IMPORTS_ONLY.format(name="observability"),
    "pipeline": "pipeline_plain.py",
    "agents": "agents_quickstart.py",
    "resilience": "resilience_quickstart.py",
    "finops": "finops_quickstart.py",
    "security": IMPORTS_ONLY.format(name="security"),
}


def copy_with(pattern: str) -> tuple[str, ...]:
    """The pattern's ``__copy_with__``, read from its source (nothing is imported)."""
    tree = ast.parse((PACKAGE / pattern / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "__copy_with__":
            return tuple(ast.literal_eval(node.value))  # type: ignore[arg-type]
    raise AssertionError(f"{pattern}/__init__.py declares no __copy_with__")


def _copy(pattern: str, into: Path) -> Path:
    package = into / "bankco"
    package.mkdir()
    (package / "__init__.py").write_text('"""A bank\'s service, with pattern folders copied in."""\n')
    for name in (pattern, *copy_with(pattern)):
        source = PACKAGE / name
        if source.is_dir():
            shutil.copytree(source, package / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, package / name)
    for blocked in ("fasterpay", "simulations"):
        (into / f"{blocked}.py").write_text(f"raise ImportError('{blocked} is not part of the copy')\n")
    return package


def _run(program: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if program.endswith(".py"):
        program = (EXAMPLES / program).read_text(encoding="utf-8").replace("fasterpay", "bankco")
    script = cwd / "quickstart.py"
    script.write_text(program, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FASTERPAY_"))}
    env.update(PYTHONPATH=str(cwd), FASTERPAY_BACKEND="moto", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize("pattern", sorted(PROGRAMS))
def test_a_pattern_folder_copied_with_its_siblings_runs_its_quick_start(pattern: str, tmp_path: Path) -> None:
    assert ROOT not in tmp_path.parents
    _copy(pattern, tmp_path)
    result = _run(PROGRAMS[pattern], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


def test_the_shadows_block_fasterpay(tmp_path: Path) -> None:
    """The check above means something only if an import of fasterpay really fails in the copy."""
    _copy("idempotency", tmp_path)
    result = _run("import fasterpay.idempotency\n", tmp_path)
    assert result.returncode != 0 and "not part of the copy" in result.stderr


def test_every_pattern_declares_what_it_is_copied_with() -> None:
    patterns = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert sorted(PROGRAMS) == [p for p in patterns if p != "cloudformation"]
    for pattern in patterns:
        for name in copy_with(pattern):
            assert (PACKAGE / name).exists(), f"{pattern} names {name}, which does not exist"


@pytest.mark.parametrize(("article", "pattern"), [("tokenisation-vault", "vault"), ("idempotency-ledger", "ledger"),
                                                  ("payment-pipeline", "pipeline"), ("audit-observability", "audit"),
                                                  ("queue-agents", "agents"),
                                                  ("multi-region-resilience", "resilience"),
                                                  ("finops", "finops"), ("compliance-evidence", "security")])
def test_each_article_says_what_to_copy(article: str, pattern: str) -> None:
    text = (ROOT / "docs" / "articles" / f"{article}.md").read_text(encoding="utf-8")
    for name in (pattern, *copy_with(pattern)):
        shown = f"`{name}/`" if (PACKAGE / name).is_dir() else f"`{name}`"
        assert shown in text, f"{article}.md does not say to copy {shown}"


def test_the_queue_and_stream_modules_copy_as_single_files(tmp_path: Path) -> None:
    """The article says scaling.py, batch.py and stream.py need only boto3: copied alone, they import and work."""
    package = tmp_path / "bankco"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("scaling.py", "batch.py", "stream.py"):
        shutil.copy2(PACKAGE / "agents" / name, package / name)
    for blocked in ("fasterpay", "simulations"):
        (tmp_path / f"{blocked}.py").write_text(f"raise ImportError('{blocked} is not part of the copy')\n")
    program = textwrap.dedent('''
        from bankco.batch import process_batch
        from bankco.scaling import BacklogScalingPolicy
        from bankco.stream import StatusEvent

        assert BacklogScalingPolicy(5, 0.2).desired(visible_messages=100, in_flight=0, current=1, now_s=0) == 4
        assert process_batch({"Records": [{"messageId": "m1", "body": "x"}]}, lambda r: None) == {"batchItemFailures": []}
        assert StatusEvent.from_json(StatusEvent("5b0e3f1c-1d2e-4f5a-8b9c-0d1e2f3a4b5c", "E2E-1", "ACSP", "dtk_iban_abcdefghijklmnop",
                                                 1050, "GBP", 1).to_json()).status == "ACSP"
        print("single files ok")
    ''')
    result = _run(program, tmp_path)
    assert result.returncode == 0 and "single files ok" in result.stdout, result.stderr[-3000:]
