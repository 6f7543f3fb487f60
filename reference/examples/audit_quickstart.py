"""Quick start for the tamper-evident audit trail and observability, as shown in the article (every block
here is tested).

Run it with ``python reference/examples/audit_quickstart.py``: it uses moto unless FASTERPAY_BACKEND says
otherwise.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import ClientError

# --8<-- [start:setup]
from fasterpay.audit import AuditEntry, AuditTrail, KmsCheckpointSigner, S3AuditStore
from fasterpay.audit.stack import deploy_audit
from fasterpay.aws import Backend, open_environment


def open_trail(s3, kms, bucket: str, key_arn: str) -> AuditTrail:
    return AuditTrail(
        store=S3AuditStore(s3, bucket),  # (1)!
        signer=KmsCheckpointSigner(kms, key_arn),  # (2)!
        origin="bank-a/payments-audit",
        batch_size=100,  # (3)!
    )
# --8<-- [end:setup]


def main() -> dict[str, object]:
    with open_environment() as env:
        s3, kms = env.client("s3"), env.client("kms")
        res = deploy_audit(env.client("cloudformation"), kms, s3, retention_days=1,
                           on_moto=env.backend is not Backend.AWS)
        trail = open_trail(s3, kms, res.bucket, res.signing_key_arn)

        # --8<-- [start:append]
        from fasterpay.audit.vault_adapter import MerkleAuditLog
        from fasterpay.vault import AuditRecord, AuditResult

        vault_audit = MerkleAuditLog(trail)  # (1)!
        vault_audit.append(AuditRecord(
            "5b0e3f1c-1d2e-4f5a-8b9c-0d1e2f3a4b5c", datetime.now(UTC), "detokenize", "scheme-gateway",
            "scheme-submission", "bank-a", "tok_iban_9f2c4e1a7b3d5f60", AuditResult.ALLOWED))
        logged = trail.append(AuditEntry(
            kind="payment.status", actor="svc-clearing", subject="E2E-20261128-000042",  # (2)!
            outcome="ACSP", at=datetime.now(UTC), refs={"uetr": "8a562c67-ca16-48ba-b074-65581be6f011"}))
        first = trail.checkpoint()  # (3)!
        # --8<-- [end:append]

        for i in range(3):
            trail.append(AuditEntry("payment.status", "svc-clearing", f"E2E-20261128-{i:06d}", "ACSC",
                                    datetime.now(UTC)))
        latest = trail.close()

        # --8<-- [start:prove]
        from fasterpay.audit import leaf_hash, verify_checkpoint, verify_consistency, verify_inclusion

        public_pem = KmsCheckpointSigner(kms, res.signing_key_arn).public_key_pem()  # (1)!
        verify_checkpoint(latest, public_pem)
        verify_inclusion(logged.leaf_hash, logged.seq, latest.tree_size,  # (2)!
                         trail.prove_inclusion(logged.seq), latest.root_hash)
        verify_consistency(first.tree_size, latest.tree_size, first.root_hash,  # (3)!
                           latest.root_hash, trail.prove_consistency(first.tree_size))
        # --8<-- [end:prove]
        assert leaf_hash  # imported for readers who verify an entry they hold

        # --8<-- [start:lock]
        key = "segments/000000000000-000000000001.jsonl"  # the detokenize record
        version = s3.head_object(Bucket=res.bucket, Key=key)["VersionId"]
        try:
            s3.delete_object(Bucket=res.bucket, Key=key, VersionId=version)  # (1)!
            deleted = "deleted"
        except ClientError as exc:
            deleted = exc.response["Error"]["Code"]  # "AccessDenied"
        # --8<-- [end:lock]

        with tempfile.TemporaryDirectory() as work:
            # --8<-- [start:verify]
            export = S3AuditStore(s3, res.bucket).export(Path(work) / "export")  # (1)!
            (Path(work) / "audit-key.pem").write_bytes(public_pem)
            result = subprocess.run(
                [sys.executable, "-m", "fasterpay.audit.verify", str(export),
                 "--public-key", str(Path(work) / "audit-key.pem")],
                capture_output=True, text=True)  # (2)!
            # --8<-- [end:verify]
            verdict, status = result.stdout.strip(), result.returncode

        # --8<-- [start:observe]
        from fasterpay.observability import (
            PaymentLogger,
            PaymentMetrics,
            in_memory_tracer,
            instrument_aws_client,
            payment_span,
            stage_span,
        )

        tracer, exporter = in_memory_tracer()  # (1)!
        sqs = instrument_aws_client(env.client("sqs"), tracer)  # (2)!
        out, emf = io.StringIO(), []
        log = PaymentLogger("payments-api", stream=out).bind(
            end_to_end_id="E2E-20261128-000042", uetr="8a562c67-ca16-48ba-b074-65581be6f011")
        metrics = PaymentMetrics(namespace="FasterPay", service="payments-api", sink=emf.append)
        with payment_span(tracer, end_to_end_id="E2E-20261128-000042",
                          uetr="8a562c67-ca16-48ba-b074-65581be6f011"), stage_span(tracer, "clear"):
            sqs.list_queues()
            log.info("submitted to the scheme", stage="clear", status="ACSP")  # (3)!
            metrics.stage("clear", latency_ms=18.0, ok=True)
        metrics.flush()  # (4)!
        # --8<-- [end:observe]

    # --8<-- [start:slo]
    from fasterpay.observability import SRE_WORKBOOK_ALERTS, SliCounts, Slo, evaluate_alerts

    authorisation = Slo("authorisation", objective=0.9999, threshold_ms=150)  # (1)!
    counts = SliCounts(bucket_s=60)
    for second in range(8 * 3600):  # one authorisation a second for eight hours
        failing = 25_200 <= second < 27_000 and second % 50 == 0  # 2% fail for 30 minutes
        counts.record(second, good=not failing)
    alerts = evaluate_alerts(counts, authorisation, SRE_WORKBOOK_ALERTS)  # (2)!
    # --8<-- [end:slo]

    # --8<-- [start:spike]
    from fasterpay.observability import DetokenizeSpikeDetector

    detector = DetokenizeSpikeDetector(window_s=60, min_count=20, warmup_s=600)  # (1)!
    for minute in range(30):
        for i in range(40):
            detector.observe("scheme-gateway", minute * 60 + i)
        detector.observe("support-desk", minute * 60 + 59)
    spikes = [a for i in range(150) for a in detector.observe("support-desk", 1800 + i * 0.4)]
    spikes += detector.close(1900)  # (2)!
    # --8<-- [end:spike]

    return {
        "entries": latest.tree_size, "first_checkpoint": first.tree_size, "delete": deleted,
        "verdict": verdict, "exit_status": status, "spans": [s.name for s in exporter.get_finished_spans()],
        "log": out.getvalue(), "emf": emf, "firings": [(f.alert.name, f.start_s) for f in alerts.firings],
        "spikes": [(s.caller, s.count) for s in spikes],
    }


if __name__ == "__main__":
    print(main())
