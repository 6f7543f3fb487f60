"""The simulations command line: one subcommand per scenario.

Each subcommand is a ``register_*`` function that adds its parser and sets ``handler``; a new scenario
is one more function in :data:`SUBCOMMANDS`.

Examples:
    python -m simulations generate --count 1000 --seed 7 --mix uk_fps=0.6,sepa_inst=0.4 \\
        --invalid-rate 0.05 --duplicate-rate 0.02 --out build/payloads
    python -m simulations bench --payments 1000 --json
    python -m simulations bench --payments 20 --real-sleep --no-metrics --json
    python -m simulations replay --payments 100
    python -m simulations replay --payments 50 --seed 7 --inject-mismatch --json
    python -m simulations replay --after-drill region-outage --payments 30 --seed 7 --json
    python -m simulations chaos --payments 1000 --seed 3 --duplicate-rate 0.1 --throttle-rate 0.05 --json
    python -m simulations chaos --payments 30 --seed 3 --gateway-timeout-rate 0.5 --min-scheme-timeouts 5 --json
    python -m simulations chaos --payments 20 --seed 3 --kms-fault-rate 0.3 --min-kms-faults 5 --compare-kms-cache --json
    python -m simulations hot-account --transfers 200 --shards 1,8 --seed 7 --json
    python -m simulations deploy --estimate-only
    python -m simulations deploy --prefix fp-trial
    python -m simulations teardown --prefix fp-trial
    python -m simulations redrive-drill --messages 50 --poison 3 --seed 7
    python -m simulations drill all --payments 50 --seed 7 --json
    python -m simulations drill region-outage --payments 30 --seed 7 --json
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def register_generate(subparsers: argparse._SubParsersAction) -> None:
    """``generate``: seeded pacs.008 messages plus a manifest of expected outcomes."""
    from simulations.generator import AMOUNT_BANDS, DEFAULT_AMOUNT_MIX, INVALID_CASES
    from fasterpay.iso20022.schemes import SCHEMES
    from fasterpay.iso20022.xmlsafe import DEFAULT_MAX_MESSAGE_BYTES

    parser = subparsers.add_parser(
        "generate",
        help="write N seeded pacs.008 messages and a manifest of expected outcomes",
        description=(
            "Write one pacs.008.001.08 XML file per message and manifest.json, which records per message "
            "the expected outcome (ACTC, or RJCT with its ISO reason code). Validate the files in sequence "
            "with one validator: duplicates refer to earlier messages. Invalid classes: "
            + ", ".join(INVALID_CASES) + "."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--count", type=_positive, default=100, help="number of messages")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    parser.add_argument("--mix", default="uk_fps=0.6,sepa_inst=0.4",
                        help=f"scheme weights, name=weight,... (schemes: {', '.join(SCHEMES)})")
    parser.add_argument("--amounts", default=",".join(f"{k}={v}" for k, v in DEFAULT_AMOUNT_MIX.items()),
                        help=f"amount band weights (bands: {', '.join(AMOUNT_BANDS)})")
    parser.add_argument("--invalid-rate", type=_rate, default=0.05, help="share of invalid messages")
    parser.add_argument("--duplicate-rate", type=_rate, default=0.02, help="share of duplicate messages")
    parser.add_argument("--max-message-bytes", type=_positive, default=DEFAULT_MAX_MESSAGE_BYTES,
                        help="the validator's size limit; oversized messages are made just over it")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--force", action="store_true",
                        help="replace the XML files and manifest of an earlier run in --out")
    parser.set_defaults(handler=run_generate, parser=parser)


def run_generate(args: argparse.Namespace) -> int:
    """Generate the batch the arguments describe into ``args.out``."""
    from simulations.generator import GeneratorSettings, InvalidMixError, parse_mix, write_batch

    out: Path = args.out
    if out.exists() and not out.is_dir():
        args.parser.error(f"{out} is a file; --out takes a directory")
    earlier = sorted(out.glob("[0-9]*.xml")) + sorted(out.glob("manifest.json")) if out.is_dir() else []
    if earlier and not args.force:
        args.parser.error(f"{out} already holds a generated batch; pass --force to replace it or choose another --out")
    try:
        settings = GeneratorSettings(
            count=args.count, seed=args.seed, mix=parse_mix(args.mix), amounts=parse_mix(args.amounts),
            invalid_rate=args.invalid_rate, duplicate_rate=args.duplicate_rate,
            max_message_bytes=args.max_message_bytes,
        )
    except InvalidMixError as exc:
        args.parser.error(str(exc))
    for path in earlier:
        path.unlink()
    manifest = write_batch(settings, out)
    statuses = manifest["summary"]["expected_status"]
    print(f"wrote {manifest['summary']['messages']} messages to {out} "
          f"(expected ACTC {statuses.get('ACTC', 0)}, RJCT {statuses.get('RJCT', 0)}); "
          f"manifest: {out / 'manifest.json'}")
    return 0


class _Progress:
    """A small stderr counter: ``bench  120/400 payments (30%)``; silent when stderr is not wanted."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label = label
        self.quiet = quiet

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{self.label} {done}/{total} payments ({100 * done // max(total, 1)}%)" + end)
        sys.stderr.flush()


def _pipeline_arguments(parser: argparse.ArgumentParser, default_payments: int) -> None:
    parser.add_argument("--payments", type=_positive, default=default_payments, help="messages to submit")
    parser.add_argument("--seed", type=int, default=7, help="random seed (traffic, faults, crashes, modelled latency)")
    parser.add_argument("--set-size", type=_positive, default=200,
                        help="payments per table set (each set gets fresh tables on moto, then is reconciled and dropped)")
    parser.add_argument("--cycle-size", type=_positive, default=25, help="payments submitted per settlement cycle")
    parser.add_argument("--duplicate-rate", type=_rate, default=0.02, help="share of duplicate submissions")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line of output")
    parser.add_argument("--quiet", action="store_true", help="no progress counter on stderr")
    parser.add_argument("--record", type=Path, metavar="DIR", default=None,
                        help="also keep the run in DIR/<command>-<payments>-seed<seed>.json with its command line, "
                             "date, machine and duration (the site publishes simulations/results/)")


def _real_sleep_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--real-sleep", action="store_true",
                        help="sleep each AWS call's modelled latency in wall time instead of only counting it "
                             "(an injected timeout then sleeps the client's 60 s read timeout; the scheme's "
                             "answer times stay virtual)")


def _summary_json(summary: object, extra: dict[str, object] | None = None) -> str:
    from simulations.report import summary_json

    return summary_json(summary, extra)


def _finish(args: argparse.Namespace, summary: Any, extra: dict[str, object] | None = None) -> int:
    """The JSON summary: kept with ``--record``, printed last with ``--json``; the exit status from ``ok``."""
    line = _summary_json(summary, extra)
    _record(args, line)
    if args.json:
        print(line)
    return 0 if summary.ok else 1


def _commit() -> str | None:
    """The git commit the run's code came from (None outside a checkout)."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, check=True,
                              capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _record(args: argparse.Namespace, summary_line: str) -> None:
    """Keep a recorded run: the JSON summary, the exact command, the date, the machine and the duration."""
    if args.record is None:
        return
    import datetime
    import json

    from fasterpay.metrics import machine_stamp, scale

    summary = json.loads(summary_line)
    record = {
        "command": "python -m simulations " + " ".join(args.argv), "commit": args.commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_stamp(), "scale": scale(), "seconds": summary["seconds"], "summary": summary,
    }
    args.record.mkdir(parents=True, exist_ok=True)
    path = args.record / f"{args.command}-{summary['payments']}-seed{summary['settings']['seed']}.json"
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"recorded: {path}")


def register_bench(subparsers: argparse._SubParsersAction) -> None:
    """``bench``: drive the pipeline on moto without faults, against the honest floor."""
    parser = subparsers.add_parser(
        "bench", help="drive the payment pipeline; report calls, cost, latency and the floor ratios",
        description=(
            "Deploy the vault and pipeline stacks to moto, submit seeded pacs.008 traffic and let the local runner "
            "drive the two handlers. Reports AWS API calls and cost per payment (by component, dated prices), the "
            "modelled latency of every hop, and the ratios to the honest floor (the fewest calls the guarantees "
            "need, made with plain boto3 in the same run). Writes payment-pipeline.json to FASTERPAY_METRICS_DIR "
            "unless --no-metrics."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _pipeline_arguments(parser, 1000)
    _real_sleep_argument(parser)
    parser.add_argument("--floor-payments", type=_positive, default=None,
                        help="payments for the honest floor (default: --payments); its ratios are per payment")
    parser.add_argument("--no-metrics", action="store_true", help="print only; do not write the metrics file")
    parser.set_defaults(handler=run_bench_command, parser=parser)


def run_bench_command(args: argparse.Namespace) -> int:
    """Run the bench and the floor in one moto environment."""
    from fasterpay.aws import open_environment
    from simulations.pipeline_bench import RunSettings, run_floor, run_pipeline
    from simulations.report import bench_figures, bench_report

    settings = RunSettings(payments=args.payments, seed=args.seed, set_size=args.set_size, cycle_size=args.cycle_size,
                           duplicate_rate=args.duplicate_rate, real_sleep=args.real_sleep)
    with open_environment() as env:
        summary = run_pipeline(env, settings, progress=_Progress("bench", args.quiet or args.json))
        floor = run_floor(env, payments=args.floor_payments or args.payments, set_size=args.set_size)
        backend = env.backend.value
    report = bench_report(summary, floor)
    for line in report["lines"]:
        print(line)
    if not args.no_metrics:
        from fasterpay.metrics import write_metrics

        path = write_metrics("payment-pipeline", bench_figures(summary, floor), seed=args.seed, backend=backend)
        print(f"metrics: {path}")
    return _finish(args, summary, report["json"])


def register_replay(subparsers: argparse._SubParsersAction) -> None:
    """``replay``: rebuild settlement positions from the booked entries and reconcile."""
    parser = subparsers.add_parser(
        "replay", help="settlement replay from the booked history, with a reconciliation report",
        description=(
            "Run the pipeline on moto to build a history (moto keeps no state between runs), then replay each "
            "settlement cycle from its booked entries: positions must equal the stored report, the ledger's "
            "settlement transfers and the payment records. Exits 1 on any mismatch."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _pipeline_arguments(parser, 100)
    parser.add_argument("--after-drill", choices=("region-outage", "partition", "paused-replication", "failback"),
                        default=None,
                        help="build the history with this failover drill instead (see `drill`), and replay every "
                             "cycle of the region that survived it")
    parser.add_argument("--inject-mismatch", action="store_true",
                        help="the settlement-mismatch rehearsal: after the first cycles close, overwrite one stored "
                             "settlement report with a wrong net position (as a bad deploy or a manual edit would), "
                             "replay to find it (exit 1 unless the cycle and the position are named), rebuild the "
                             "report from the booked entries, and replay and reconcile clean")
    parser.set_defaults(handler=run_replay_command, parser=parser)


def _replay_after_drill(args: argparse.Namespace) -> int:
    """The DR replay: a failover drill builds the history, then every cycle of the surviving region is replayed."""
    import json

    from simulations.region_drills import DrillSettings, run_all

    (result,) = run_all(DrillSettings(payments=args.payments, seed=args.seed), (args.after_drill,))
    print(f"replay after the {result.name} drill (EMULATED replication): {result.replayed_cycles} cycles replayed "
          f"from their entries in the surviving region; {len(result.replay_mismatches)} differ; reconciliation "
          f"mismatches {len(result.mismatches)}; ledgers sum {result.ledger_sums}")
    for line in (result.replay_mismatches + result.mismatches)[:10]:
        print("  -", line)
    ok = (result.replayed_cycles > 0 and not result.replay_mismatches and not result.mismatches
          and not any(result.ledger_sums.values()))
    if args.json:
        print(json.dumps({"drill": result.name, "cycles": result.replayed_cycles,
                          "replay_mismatches": len(result.replay_mismatches),
                          "reconciliation_mismatches": len(result.mismatches), "ledger_sums": result.ledger_sums,
                          "payments": args.payments, "seed": args.seed, "backend": "moto", "ok": ok}, sort_keys=True))
    return 0 if ok else 1


def run_replay_command(args: argparse.Namespace) -> int:
    """Build a history, replay every cycle, reconcile."""
    if args.after_drill:
        if args.inject_mismatch:
            args.parser.error("--inject-mismatch builds its own history; it does not combine with --after-drill")
        return _replay_after_drill(args)
    if args.inject_mismatch:
        return _replay_with_injected_mismatch(args)
    from fasterpay.aws import open_environment
    from simulations.pipeline_bench import RunSettings, run_pipeline

    settings = RunSettings(payments=args.payments, seed=args.seed, set_size=args.set_size, cycle_size=args.cycle_size,
                           duplicate_rate=args.duplicate_rate)
    with open_environment() as env:
        summary = run_pipeline(env, settings, progress=_Progress("history", args.quiet or args.json))
    print(f"replay: {summary.cycles} cycles replayed from their entries; {summary.reconciliation_mismatches} "
          f"mismatches; statuses {summary.statuses}; ledgers sum {summary.ledger_sum_by_currency}")
    for line in summary.mismatch_examples:
        print("  -", line)
    return _finish(args, summary)


#: What the settlement-mismatch rehearsal adds to one creditor position of the damaged report (minor units).
INJECTED_MISMATCH_MINOR = 10_000


def _replay_with_injected_mismatch(args: argparse.Namespace) -> int:
    """Damage one stored settlement report, find it by replay (cycle and position named), rebuild it, replay clean."""
    import json as _json

    from fasterpay.aws import open_environment
    from fasterpay.pipeline import PaymentStore, SettlementBook, rebuild_report, replay_cycle
    from fasterpay.pipeline.settlement import OUR_BANK, SettlementReport
    from simulations.pipeline_bench import RunSettings, run_pipeline

    drill: dict[str, Any] = {}

    def damage_find_repair(h: Any, cycles: list[str]) -> None:
        if drill:
            return  # one damaged report per run
        book = SettlementBook(h.admin_ddb, h.config.settlement_table)
        ledger = h.ledger(h.admin_ddb)
        stored = {p.uetr: p for p in PaymentStore(h.admin_ddb, h.config.payments_table, h.config.ledger_table).payments()}
        for cycle in cycles:
            report = book.report(cycle)
            target = next((p for p in report.positions if p.participant != OUR_BANK), None) if report else None
            if target is None:
                continue
            # the damage: the stored REPORT item overwritten, one creditor's net position changed (a manual edit)
            positions = tuple(p if p != target else type(p)(p.rail, p.currency, p.participant,
                                                            p.net_minor + INJECTED_MISMATCH_MINOR)
                              for p in report.positions)
            damaged = SettlementReport(report.cycle, report.payments, positions, report.settled)
            h.admin_ddb.put_item(TableName=h.config.settlement_table, Item={
                "pk": {"S": cycle}, "sk": {"S": "REPORT"}, "report": {"S": damaged.to_json()}})
            drill["injected"] = {"cycle": cycle, "rail": target.rail, "currency": target.currency,
                                 "participant": target.participant, "reported": target.net_minor + INJECTED_MISMATCH_MINOR,
                                 "booked": target.net_minor}
            break
        if not drill:
            drill["injected"] = None
            return
        found = [line for c in cycles for line in replay_cycle(c, book=book, ledger=ledger, payments=stored.get).mismatches]
        inj = drill["injected"]
        drill["found"] = found
        drill["named"] = any(inj["cycle"] in line and inj["participant"] in line and f"report {inj['reported']}" in line
                             for line in found)
        rebuild_report(inj["cycle"], book=book, ledger=ledger, payments=stored.get)  # the runbook's remedy
        drill["after_rebuild"] = [line for c in cycles
                                  for line in replay_cycle(c, book=book, ledger=ledger, payments=stored.get).mismatches]

    settings = RunSettings(payments=args.payments, seed=args.seed, set_size=args.set_size, cycle_size=args.cycle_size,
                           duplicate_rate=args.duplicate_rate)
    with open_environment() as env:
        summary = run_pipeline(env, settings, progress=_Progress("history", args.quiet or args.json),
                               after_settle=damage_find_repair)
    inj = drill.get("injected")
    if inj is None:
        print("replay --inject-mismatch: no closed cycle had a creditor position to damage; run more --payments")
        found: list[str] = []
    else:
        found = drill["found"]
        print(f"injected: {inj['cycle']} report says {inj['rail']} {inj['currency']} {inj['participant']} "
              f"{inj['reported']}, the booked entries {inj['booked']} (minor units)")
        print(f"replay found {len(found)} mismatch(es); cycle and position named: {drill['named']}")
        for line in found[:5]:
            print("  -", line)
        print(f"remedy: report of {inj['cycle']} rebuilt from its booked entries; replay after the rebuild: "
              f"{len(drill['after_rebuild'])} mismatches")
    print(f"replay: {summary.cycles} cycles replayed from their entries; {summary.reconciliation_mismatches} "
          f"mismatches after the remedy; ledgers sum {summary.ledger_sum_by_currency}")
    for line in summary.mismatch_examples:
        print("  -", line)
    detected = bool(found)
    named = bool(drill.get("named"))
    repaired = inj is not None and not drill["after_rebuild"]
    extra = {"injected_mismatch": inj, "detected": detected, "named": named, "found": found[:5],
             "repaired": repaired, "ok": bool(summary.ok and detected and named and repaired)}
    line = _summary_json(summary, extra)
    _record(args, line)
    if args.json:
        print(line)
    return 0 if _json.loads(line)["ok"] else 1


def register_chaos(subparsers: argparse._SubParsersAction) -> None:
    """``chaos``: the pipeline under throttles, 5xx, timeouts, lost responses, KMS faults and crashes."""
    from fasterpay.pipeline.stages import STEP_NAMES  # noqa: F401 - the list is printed by --list-crash-points

    parser = subparsers.add_parser(
        "chaos", help="the pipeline under injected faults and crashes at every named crash point",
        description=(
            "The pipeline with faults injected per HTTP attempt (throttles, 5xx, timeouts before the request, "
            "lost responses after it committed, KMS faults) and crashes at each named crash point (the handlers' "
            "steps, the settlement job's, the ledger's outbox relay and consumer, the sender's answer reader). "
            "Exits 1 if anything is lost, doubled or left non-final, or if a ledger does not sum to zero."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _pipeline_arguments(parser, 1000)
    parser.add_argument("--throttle-rate", type=_rate, default=0.05, help="throttles per DynamoDB/SQS attempt")
    parser.add_argument("--server-error-rate", type=_rate, default=0.01, help="5xx per DynamoDB/SQS attempt")
    parser.add_argument("--timeout-rate", type=_rate, default=0.01, help="timeouts before the request is sent")
    parser.add_argument("--lost-response-rate", type=_rate, default=0.01,
                        help="the call succeeded but the client sees a timeout")
    parser.add_argument("--kms-fault-rate", type=_rate, default=0.01, help="KMS throttles and 5xx per attempt")
    parser.add_argument("--crash-rate", type=_rate, default=0.02, help="probability of a crash at each visit of a crash point")
    parser.add_argument("--min-crashes-per-point", type=int, default=5,
                        help="also crash each point until it has crashed this often (every point exercised)")
    parser.add_argument("--gateway-timeout-rate", type=_rate, default=0.02, help="simulated scheme timeouts")
    parser.add_argument("--poison", type=int, default=1, help="poison messages to send (they stay in the DLQs)")
    parser.add_argument("--workers", type=_positive, default=1,
                        help="processes to split the table sets across (each with its own moto); one summary")
    parser.add_argument("--list-crash-points", action="store_true", help="print the crash points and exit")
    parser.add_argument("--min-scheme-timeouts", type=int, default=0,
                        help="exit 1 unless at least this many payments timed out at the scheme (proves a rehearsal "
                             "exercised timeouts)")
    parser.add_argument("--min-kms-faults", type=int, default=0,
                        help="exit 1 unless at least this many KMS attempts were throttled or failed")
    parser.add_argument("--compare-kms-cache", action="store_true",
                        help="also meter KMS requests per payment without the token-key cache (the vault bench, "
                             "GenerateMac per field, same number of payments) beside the run's own, cached")
    _real_sleep_argument(parser)
    parser.set_defaults(handler=run_chaos_command, parser=parser)


def run_chaos_command(args: argparse.Namespace) -> int:
    """Run the chaos bench and check that nothing was lost, doubled or left non-final."""
    from simulations.pipeline_bench import CRASH_POINTS, RunSettings, run_pipeline, run_pipeline_parallel

    if args.list_crash_points:
        for point in CRASH_POINTS:
            print(point)
        return 0
    if args.throttle_rate + args.server_error_rate + args.timeout_rate + args.lost_response_rate > 1:
        args.parser.error("the fault rates add up to more than 1")
    from fasterpay.aws import open_environment

    settings = RunSettings(
        payments=args.payments, seed=args.seed, set_size=args.set_size, cycle_size=args.cycle_size,
        duplicate_rate=args.duplicate_rate, throttle_rate=args.throttle_rate, server_error_rate=args.server_error_rate,
        timeout_rate=args.timeout_rate, lost_response_rate=args.lost_response_rate, kms_fault_rate=args.kms_fault_rate,
        crash_rate=args.crash_rate, min_crashes_per_point=args.min_crashes_per_point,
        gateway_timeout_rate=args.gateway_timeout_rate, poison_messages=args.poison, real_sleep=args.real_sleep)
    progress = _Progress("chaos", args.quiet or args.json)
    if args.workers > 1:
        summary = run_pipeline_parallel(settings, workers=args.workers, progress=progress)
    else:
        with open_environment() as env:
            summary = run_pipeline(env, settings, progress=progress)
    print(f"chaos: {summary.payments} payments in {summary.seconds:.0f} s; lost {summary.lost}, doubled "
          f"{summary.doubled}, non-final {summary.non_final}, mismatches {summary.reconciliation_mismatches}; "
          f"ledgers sum {summary.ledger_sum_by_currency}")
    print(f"  faults injected {summary.injected} ({summary.kms_faults} on KMS); crashes "
          f"{sum(summary.crash_points_hit.values())} at {len(summary.crash_points_hit)} points; dead letters "
          f"redriven {summary.redriven}")
    timeouts_resolved = summary.reasons.get("AB05", 0) + summary.reasons.get("AB06", 0)
    print(f"  scheme timeouts {summary.scheme_timeouts}, each resolved RJCT AB05/AB06 with its hold released "
          f"(AB05/AB06 refusals {timeouts_resolved})")
    for letter in summary.dead_letters:
        print(f"  DLQ {letter['queue']}: {letter['body'][:30]!r}: {letter['reason']}")
    for line in summary.mismatch_examples:
        print("  -", line)
    extra: dict[str, object] = {"workers": args.workers}
    exercised = summary.scheme_timeouts >= args.min_scheme_timeouts and summary.kms_faults >= args.min_kms_faults
    if not exercised:
        print(f"  not exercised: {summary.scheme_timeouts} scheme timeouts (at least {args.min_scheme_timeouts} "
              f"wanted), {summary.kms_faults} KMS faults (at least {args.min_kms_faults} wanted)")
    if args.compare_kms_cache:
        from decimal import Decimal

        from simulations.finops_bench import uncached_kms_per_payment

        cached = Decimal(str(summary.kms_requests_per_10k)) / 10_000
        with open_environment() as env:
            uncached = uncached_kms_per_payment(env, payments=args.payments, seed=args.seed)
        print(f"  KMS requests per payment: {cached:.4f} with the pipeline's data-key and token-key caches (this "
              f"run, faulted attempts included), {uncached:.2f} without the token-key cache (vault bench, "
              f"{args.payments} payments, no faults)")
        extra.update({"kms_requests_per_payment_cached": round(float(cached), 4),
                      "kms_requests_per_payment_uncached": round(float(uncached), 4)})
        exercised = exercised and cached < uncached
    if not exercised:
        extra["ok"] = False
    line = _summary_json(summary, extra)
    _record(args, line)
    if args.json:
        print(line)
    return 0 if summary.ok and exercised else 1


def register_deploy(subparsers: argparse._SubParsersAction) -> None:
    """``deploy``: every stack under one name prefix, after the idle cost per day; guarded on real AWS."""
    from simulations.deploy import add_arguments

    parser = subparsers.add_parser(
        "deploy", help="create the vault, ledger, audit and pipeline stacks under one name prefix",
        description=(
            "Print what the stacks cost per day when idle (computed from the templates and the dated price table), "
            "then create the vault, ledger, audit and pipeline stacks under --prefix on the backend FASTERPAY_BACKEND "
            "chooses, uploading build/lambda/fasterpay-lambda.zip (make package) when it exists. A real account "
            "(FASTERPAY_BACKEND=aws) is refused unless FASTERPAY_ALLOW_REAL_AWS=1; the account and region are then "
            "shown and confirmed unless --yes."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser, deploy=True)
    parser.set_defaults(handler=run_deploy_command, parser=parser)


def run_deploy_command(args: argparse.Namespace) -> int:
    """Estimate, check the account, deploy."""
    from simulations.deploy import run_deploy

    return run_deploy(args)


def register_teardown(subparsers: argparse._SubParsersAction) -> None:
    """``teardown``: delete everything ``deploy`` created under a prefix, retained resources included."""
    from simulations.deploy import add_arguments

    parser = subparsers.add_parser(
        "teardown", help="delete everything deploy created under a name prefix",
        description=(
            "Delete the stacks under --prefix, then what they retain or deploy created beside them: tables, queues, "
            "buckets (emptied as far as Object Lock allows), functions, log groups, alarms, IAM roles and policies, "
            "KMS aliases; KMS keys are scheduled for deletion in 7 days. Says what Object Lock leaves behind and "
            "until when. A second run finds nothing and succeeds. Guarded like deploy."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser, deploy=False)
    parser.set_defaults(handler=run_teardown_command, parser=parser)


def run_teardown_command(args: argparse.Namespace) -> int:
    """Check the account, show the plan, delete."""
    from simulations.deploy import run_teardown

    return run_teardown(args)


def register_redrive_drill(subparsers: argparse._SubParsersAction) -> None:
    """``redrive-drill``: the runbook's rehearsal of poison isolation and DLQ redrive, on moto."""
    parser = subparsers.add_parser(
        "redrive-drill", help="rehearse poison-message isolation and dead-letter redrive on moto",
        description=(
            "Create a queue with a dead-letter queue (maxReceiveCount 3), send messages of which some are poison, "
            "consume them with fasterpay.agents.batch.process_batch until idle: the poison messages end in the DLQ "
            "and every good message is processed once. Then 'deploy the fix' (the consumer accepts them), redrive "
            "the DLQ to the source queue (SQS StartMessageMoveTask where the backend has it, else "
            "fasterpay.pipeline.runner.redrive) and process them. Prints a JSON summary; exits 1 unless every "
            "message was processed exactly once and the DLQ is empty."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--messages", type=_positive, default=50, help="messages to send, poison included")
    parser.add_argument("--poison", type=int, default=3, help="how many of them are poison")
    parser.add_argument("--seed", type=int, default=7, help="random seed (which messages are poison)")
    parser.add_argument("--max-receive-count", type=_positive, default=3, help="the queue's redrive policy")
    parser.set_defaults(handler=run_redrive_drill_command, parser=parser)


def _move_task(sqs: Any, dlq_arn: str, source_arn: str, dlq_url: str, source_url: str) -> tuple[int, str]:
    """Redrive with ``StartMessageMoveTask`` and wait for it; fall back to a receive/send/delete loop where the
    backend does not implement it (moto 5.2 does not). Returns (messages moved, method)."""
    import time

    from fasterpay.pipeline.runner import redrive

    try:
        handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn)["TaskHandle"]
    except Exception:  # noqa: BLE001 - not implemented here: the portable loop
        return redrive(sqs, dlq_url, source_url), "receive-send-delete"
    for _ in range(600):
        tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10).get("Results", [])
        task = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else {})
        if task.get("Status") in ("COMPLETED", "FAILED", "CANCELLED"):
            if task["Status"] != "COMPLETED":
                raise RuntimeError(f"message move task ended {task['Status']}: {task.get('FailureReason')}")
            return int(task.get("ApproximateNumberOfMessagesMoved", 0)), "StartMessageMoveTask"
        time.sleep(1)
    raise RuntimeError("message move task still running after 10 minutes")


def run_redrive_drill_command(args: argparse.Namespace) -> int:
    """Isolate the poison, fix the consumer, redrive, and check that nothing was lost or doubled."""
    import json
    import random
    import time
    import uuid

    from fasterpay.agents.batch import PoisonRecordError, process_batch
    from fasterpay.aws import open_environment
    from fasterpay.pipeline.runner import LocalRunner

    if not 0 <= args.poison <= args.messages:
        args.parser.error(f"--poison must be between 0 and --messages ({args.messages})")
    started = time.perf_counter()
    poison_ids = set(random.Random(args.seed).sample(range(args.messages), args.poison))
    processed: dict[int, int] = {}
    fixed = {"deployed": False}

    def handle(record: Any) -> None:
        body = json.loads(record["body"])
        if body["poison"] and not fixed["deployed"]:
            raise PoisonRecordError(f"payment {body['n']} cannot be parsed by this consumer version")
        processed[body["n"]] = processed.get(body["n"], 0) + 1

    def handler(event: Any, context: Any) -> Any:
        return process_batch(event, handle, max_receive_count=args.max_receive_count)

    with open_environment() as env:
        sqs = env.client("sqs")
        name = f"redrive-drill-{uuid.uuid4().hex[:8]}"
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        source_url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(args.max_receive_count)})})["QueueUrl"]
        source_arn = sqs.get_queue_attributes(QueueUrl=source_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        try:
            for start in range(0, args.messages, 10):
                sqs.send_message_batch(QueueUrl=source_url, Entries=[
                    {"Id": str(n), "MessageBody": json.dumps({"n": n, "poison": n in poison_ids})}
                    for n in range(start, min(start + 10, args.messages))])
            LocalRunner(sqs, {"drill": source_url}, {"drill": handler}, region=env.region).run_until_idle()
            good_once = all(processed.get(n) == 1 for n in range(args.messages) if n not in poison_ids)
            dlq_bodies = [json.loads(m["Body"])["n"] for m in _peek(sqs, dlq_url)]
            isolated = sorted(dlq_bodies)
            fixed["deployed"] = True  # the consumer's fix is deployed: the poison is now readable
            redriven, method = _move_task(sqs, dlq_arn, source_arn, dlq_url, source_url)
            LocalRunner(sqs, {"drill": source_url}, {"drill": handler}, region=env.region).run_until_idle()
            left = int(sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
                       ["Attributes"]["ApproximateNumberOfMessages"])
        finally:
            for url in (source_url, dlq_url):
                try:
                    sqs.delete_queue(QueueUrl=url)
                except Exception:  # noqa: BLE001 - best effort on a real account; moto forgets it anyway
                    pass
        backend = env.backend.value
    summary = {
        "messages": args.messages, "poison": args.poison, "seed": args.seed, "backend": backend,
        "max_receive_count": args.max_receive_count,
        "processed": sum(1 for n in range(args.messages) if processed.get(n)),
        "good_processed_once_before_redrive": good_once,
        "isolated": len(isolated), "isolated_are_the_poison": isolated == sorted(poison_ids),
        "redriven": redriven, "redrive_method": method, "left_in_dlq": left,
        "duplicates": sum(count - 1 for count in processed.values()),
        "seconds": round(time.perf_counter() - started, 3),
    }
    summary["ok"] = (summary["processed"] == args.messages and summary["duplicates"] == 0 and left == 0
                     and good_once and summary["isolated_are_the_poison"] and redriven == args.poison)
    print(f"redrive drill: {args.poison} poison of {args.messages} isolated in the DLQ after "
          f"{args.max_receive_count} receives; good messages processed once: {good_once}; "
          f"{redriven} redriven ({method}); left in DLQ {left}; duplicates {summary['duplicates']}")
    print(json.dumps(summary, sort_keys=True))
    return 0 if summary["ok"] else 1


def _peek(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Read every message of a queue without keeping it (visible again at once)."""
    found: dict[str, dict[str, Any]] = {}
    for _ in range(100):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                       WaitTimeSeconds=0).get("Messages", [])
        new = [m for m in messages if m["MessageId"] not in found]
        if not new:
            break
        found.update((m["MessageId"], m) for m in new)
    return list(found.values())


def register_drill(subparsers: argparse._SubParsersAction) -> None:
    """``drill``: multi-region failover drills (outage, partition, paused replication, failback) on moto."""
    parser = subparsers.add_parser(
        "drill", help="rehearse a region outage, a partition, paused replication or a failback on moto",
        description=(
            "Two regions of in-process moto (eu-west-2 primary, eu-west-1 secondary), replication EMULATED from "
            "DynamoDB Streams (moto has no global tables), an EMULATED routing control plane, a simulated scheme "
            "that de-duplicates by UETR, on a virtual clock. Fails the primary, detects it by a quorum of vantage "
            "points, fences and fails over, resolves in-flight payments by asking the scheme, then fails back "
            "after reconciling the old primary's tail. Exits 1 if anything is lost, doubled, non-final or "
            "mismatched, if a ledger does not sum to zero or if two epochs wrote at once."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("which", choices=("region-outage", "partition", "paused-replication", "failback", "all"),
                        help="the drill to run")
    parser.add_argument("--payments", type=_positive, default=None,
                        help="payments per drill (default: 50, or 5000 with FASTERPAY_SCALE=full)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (traffic, lag, failure moment, answers)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line of output")
    parser.set_defaults(handler=run_drill_command, parser=parser)


def run_drill_command(args: argparse.Namespace) -> int:
    """Run the drills and check that nothing was lost, doubled or left non-final."""
    import json
    import time

    from simulations.region_drills import DRILLS, DrillSettings, default_payments, run_all

    names = tuple(DRILLS) if args.which == "all" else (args.which,)
    settings = DrillSettings(payments=args.payments or default_payments(), seed=args.seed)
    started = time.perf_counter()
    results = run_all(settings, names)
    for r in results:
        print(f"drill {r.name} (EMULATED replication, modelled times): {r.payments} payments, RPO {r.rpo_payments} "
              f"payments / {r.rpo_seconds:g} s, RTO modelled {r.rto_modelled_seconds:g} s; lost {len(r.lost)}, "
              f"doubled {len(r.doubled)}, non-final {len(r.non_final)}, mismatches {len(r.mismatches)}, "
              f"replayed cycles {r.replayed_cycles} ({len(r.replay_mismatches)} differ), ledgers {r.ledger_sums}, "
              f"fenced writes {r.fenced_writes}, split brain {len(r.split_brain)}; {r.seconds:.1f} s")
        for line in (r.lost + r.doubled + r.non_final + r.mismatches + r.replay_mismatches + r.split_brain)[:5]:
            print("  -", line)
    ok = all(r.ok for r in results)
    if args.json:
        print(json.dumps({"drills": [r.summary() for r in results], "payments": settings.payments,
                          "seed": settings.seed, "backend": "moto", "ok": ok,
                          "seconds": round(time.perf_counter() - started, 3)}, sort_keys=True))
    return 0 if ok else 1


def _shard_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None
    if len(counts) < 2 or counts[0] != 1 or any(not 1 <= n <= 100 for n in counts) or list(counts) != sorted(set(counts)):
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 then larger shard counts, e.g. 1,8 (each 1 to 100)")
    return counts


def register_hot_account(subparsers: argparse._SubParsersAction) -> None:
    """``hot-account``: write units per partition key of a hot merchant account, one shard against N."""
    from simulations.ledger_bench import PARTITION_KEY_WRITE_UNITS_PER_SECOND

    parser = subparsers.add_parser(
        "hot-account", help="rehearse a hot account: write units per balance item with 1 shard against N",
        description=(
            "Credit one merchant account --transfers times from many payers through fasterpay.ledger on moto, once "
            "per shard count, and count the write units each partition key receives (a ledger transaction writes "
            "2 units per item). At the modelled --rate of credits per second, the hottest key gets rate x units "
            "per transfer; DynamoDB documents about "
            f"{PARTITION_KEY_WRITE_UNITS_PER_SECOND:,} write units per second per partition key. moto has no such "
            "limit and no transaction conflicts: the units are counted, the throttling is computed. Exits 0 only if "
            "one shard puts the merchant's balance item over the budget and the largest shard count keeps every "
            "key of the ledger under it."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--transfers", type=_positive, default=200, help="credits to the hot account per shard count")
    parser.add_argument("--shards", type=_shard_counts, default=(1, 8), help="shard counts to compare, 1 first")
    parser.add_argument("--rate", type=_positive, default=1_500, help="modelled credits per second to the hot account")
    parser.add_argument("--payers", type=_positive, default=20, help="distinct payers")
    parser.add_argument("--seed", type=int, default=7, help="random seed (payers and amounts)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line of output")
    parser.set_defaults(handler=run_hot_account_command, parser=parser)


def run_hot_account_command(args: argparse.Namespace) -> int:
    """One ledger per shard count; units per key counted; the budget check computed from the counts."""
    import json
    import time
    from decimal import Decimal

    from fasterpay.aws import open_environment
    from simulations.ledger_bench import PARTITION_KEY_WRITE_UNITS_PER_SECOND, benchmark_hot_account

    started = time.perf_counter()
    budget = PARTITION_KEY_WRITE_UNITS_PER_SECOND
    runs = []
    for shards in args.shards:
        with open_environment() as env:
            run = benchmark_hot_account(env, shards=shards, transfers=args.transfers, seed=args.seed,
                                        payers=args.payers, rotate_every=args.transfers)
        balance = max(run.account_key_units)
        row = {"shards": shards, "transfers": run.transfers,
               "merchant_units_per_shard": list(run.account_key_units),
               "hottest_balance_item_wcu_per_s": round(float(Decimal(balance) / run.transfers * args.rate), 1),
               "hottest_key": run.hottest_key,
               "hottest_key_wcu_per_s": round(float(run.hottest_units_per_transfer * args.rate), 1),
               "ceiling_credits_per_s": round(float(run.modelled_ceiling_per_second), 1)}
        runs.append(row)
        print(f"hot account, {shards} shard(s): {run.transfers} credits; merchant balance items got "
              f"{list(run.account_key_units)} write units; at {args.rate:,} credits/s the hottest balance item takes "
              f"{row['hottest_balance_item_wcu_per_s']:,} WCU/s and the hottest key ({run.hottest_key}) "
              f"{row['hottest_key_wcu_per_s']:,} WCU/s (budget {budget:,}); ceiling "
              f"{row['ceiling_credits_per_s']:,} credits/s")
    problem_shown = runs[0]["hottest_balance_item_wcu_per_s"] > budget
    fixed = runs[-1]["hottest_key_wcu_per_s"] <= budget
    ok = problem_shown and fixed
    print(f"one shard over the per-key budget: {problem_shown}; {runs[-1]['shards']} shards keep every key under it: "
          f"{fixed}")
    if args.json:
        print(json.dumps({"runs": runs, "rate_per_s": args.rate, "budget_wcu_per_key_per_s": budget,
                          "one_shard_over_budget": problem_shown, "sharded_under_budget": fixed,
                          "seed": args.seed, "backend": "moto", "ok": ok,
                          "seconds": round(time.perf_counter() - started, 3)}, sort_keys=True))
    return 0 if ok else 1


def register_slo_drill(subparsers: argparse._SubParsersAction) -> None:
    """``slo-drill``: a scheme timeout storm burns the error budget; the operations alarms page; the remedy restores."""
    parser = subparsers.add_parser(
        "slo-drill", help="rehearse an SLO burn: a scheme timeout storm, the operations alarms, the runbook's remedy",
        description=(
            "Run the pipeline on moto twice (healthy, and with the scheme connection timing out), then replay hours of "
            "traffic drawn from those runs minute by minute into an in-memory metric store, and evaluate the alarms of "
            "cloudformation/operations.yaml (EMULATED evaluation: moto stores alarms but never evaluates them). When a "
            "paging alarm fires, the on-call applies the runbook's remedy --respond-minutes later (the standby scheme "
            "connection). Exits 1 unless: nothing pages before the storm, a page fires during it, the critical-path "
            "burn falls back under 1x after the remedy, and no page is still firing at the end."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--payments", type=_positive, default=40, help="payments per pipeline run (two runs)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (runs and traffic)")
    parser.add_argument("--storm-rate", type=_rate, default=0.3, help="share of scheme submissions that time out in the storm")
    parser.add_argument("--rate", type=float, default=20.0, help="payments per second in the replayed traffic")
    parser.add_argument("--hours", type=float, default=6.0, help="hours of replayed traffic")
    parser.add_argument("--incident-at", type=_positive, default=120, help="minute the storm starts")
    parser.add_argument("--respond-minutes", type=int, default=10, help="minutes from the page to the remedy")
    parser.add_argument("--page-on", choices=("cause", "slo"), default="cause",
                        help="cause: the scheme-timeout alarm and the SLO pages page; slo: only the SLO burn pages")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line of output")
    parser.set_defaults(handler=run_slo_drill_command, parser=parser)


@functools.lru_cache(maxsize=4)
def _slo_drill_phases(payments: int, seed: int, storm_rate: float) -> tuple[Any, Any]:
    """The two pipeline runs on moto (their own environment); a second drill in the same process with the same
    runs (another --page-on) reuses them: the profiles are plain data."""
    from fasterpay.aws import open_environment
    from simulations.operations_sim import measure_phase
    from simulations.pipeline_bench import RunSettings

    with open_environment() as env:
        # provisioned concurrency on the payment path: no cold starts (on-demand cold starts alone would burn the
        # authorisation budget, 99.99% within 150 ms, at about 20x: see the operations article)
        healthy = measure_phase(env, "healthy", RunSettings(payments=payments, seed=seed, set_size=payments,
                                                            gateway_timeout_rate=0.0, cold_start_share=0.0),
                                name_prefix="slo-healthy")
        storm = measure_phase(env, "storm", RunSettings(payments=payments, seed=seed + 1, set_size=payments,
                                                        gateway_timeout_rate=storm_rate, cold_start_share=0.0),
                              name_prefix="slo-storm")
    return healthy, storm


def run_slo_drill_command(args: argparse.Namespace) -> int:
    """Measure the two phases, replay the traffic, evaluate the alarms, apply the remedy, check the outcome."""
    import json
    import time

    from fasterpay.observability import CRITICAL_PATH_SLO
    from simulations.operations_sim import (
        ScenarioSettings,
        paging_alarms,
        scheme_storm,
        simulate,
        summary_numbers,
        template_alarms,
    )

    if args.rate <= 0 or args.hours <= 0:
        args.parser.error("--rate and --hours must be positive")
    if args.incident_at >= args.hours * 60 - 30:
        args.parser.error("--incident-at must leave at least 30 minutes of the run after it")
    started = time.perf_counter()
    alarms, composites, skipped = template_alarms()
    pages = paging_alarms(composites, cause="fasterpay-prod-scheme-timeout-storm" if args.page_on == "cause" else None)
    healthy, storm = _slo_drill_phases(args.payments, args.seed, args.storm_rate)
    settings = ScenarioSettings(seed=args.seed, rate_per_s=args.rate, hours=args.hours,
                                incident_at_minute=args.incident_at, respond_minutes=args.respond_minutes,
                                paging_alarms=pages)
    result = simulate(settings, healthy, scheme_storm(healthy, storm), alarms=alarms, composites=composites)
    numbers = summary_numbers(result, CRITICAL_PATH_SLO)
    early = [t.alarm for t in result.history.transitions
             if t.alarm in pages and t.state == "ALARM" and t.at_s <= args.incident_at * 60]
    still = [name for name in pages if result.history.states[name][-1] == "ALARM"]
    summary = {
        "payments": args.payments, "seed": args.seed, "backend": "moto", "storm_rate": args.storm_rate,
        "phases_ok": healthy.ok and storm.ok,
        "storm_technical_failure_share": round(storm.technical_failure_share, 4),
        "paged_before_the_storm": early, "detected_by": result.detected_by, **numbers,
        "pages_firing_at_the_end": still, "not_emulated": sorted(skipped),
        "seconds": round(time.perf_counter() - started, 3),
    }
    summary["ok"] = (summary["phases_ok"] and not early and result.detected_minute is not None
                     and numbers["time_to_restore_min"] is not None and not still)
    print(f"slo drill (alarms EMULATED, latencies modelled): storm at minute {args.incident_at}, "
          f"{100 * storm.technical_failure_share:.0f}% of authorised payments timed out at the scheme; "
          f"paged by {result.detected_by} after {numbers['time_to_detect_min']} min; remedy after "
          f"{numbers['time_to_remedy_min']} min; burn under 1x again after {numbers['time_to_restore_min']} min; "
          f"{numbers['budget_spent_pct']:.2f}% of the 30-day critical-path budget spent")
    print(json.dumps(summary, sort_keys=True))
    return 0 if summary["ok"] else 1


def register_detokenize_drill(subparsers: argparse._SubParsersAction) -> None:
    """``detokenize-drill``: a caller's detokenize spike is caught, the steady callers are not."""
    parser = subparsers.add_parser(
        "detokenize-drill", help="rehearse a detokenize spike: the spike detector flags the misusing caller only",
        description=(
            "Poisson detokenize traffic per caller (the scheme gateway and the support desk), with the support desk "
            "misusing its access from --spike-at for --spike-minutes at --spike-factor times its rate; the guide's "
            "DetokenizeSpikeDetector watches every caller. Exits 1 unless the misuse is flagged within 2 minutes and "
            "no other caller or minute is flagged."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--minutes", type=_positive, default=180, help="minutes of traffic")
    parser.add_argument("--spike-at", type=_positive, default=120, help="minute the misuse starts")
    parser.add_argument("--spike-minutes", type=_positive, default=5, help="how long the misuse lasts")
    parser.add_argument("--spike-factor", type=float, default=20.0, help="misuse rate as a multiple of the caller's")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line of output")
    parser.set_defaults(handler=run_detokenize_drill_command, parser=parser)


def run_detokenize_drill_command(args: argparse.Namespace) -> int:
    """Generate the traffic, run the detector, check who was flagged and when."""
    import json

    from fasterpay.observability import DetokenizeSpikeDetector
    from simulations.observability_sim import Misuse, simulate_detokenize_traffic

    if args.spike_at + args.spike_minutes > args.minutes:
        args.parser.error("the spike must end inside --minutes")
    if args.spike_at < 30:
        args.parser.error("--spike-at must leave the detector its 30 minutes to learn each caller")
    if args.spike_factor <= 1:
        args.parser.error("--spike-factor must be above 1")
    callers = {"scheme-gateway": 40.0, "support-desk": 2.0}
    start, end = args.spike_at * 60.0, (args.spike_at + args.spike_minutes) * 60.0
    misuse = [Misuse("support-desk", start, end, callers["support-desk"] * args.spike_factor)]
    events = simulate_detokenize_traffic(duration_s=args.minutes * 60.0, callers=callers, misuse=misuse, seed=args.seed)
    detector = DetokenizeSpikeDetector(window_s=60, min_count=20, warmup_s=1800)  # 30 minutes to learn each caller
    alerts = [alert for caller, at in events for alert in detector.observe(caller, at)]
    alerts += detector.close(args.minutes * 60.0)
    caught = [a for a in alerts if a.caller == "support-desk" and start <= a.window_start_s < end]
    false = [a for a in alerts if a not in caught]
    first = min((a.window_start_s + detector.window_s for a in caught), default=None)
    summary = {"seed": args.seed, "events": len(events), "callers": callers, "spike_factor": args.spike_factor,
               "caught_windows": len(caught), "false_alerts": len(false),
               "minutes_to_alert": None if first is None else round((first - start) / 60, 2)}
    summary["ok"] = bool(caught) and not false and summary["minutes_to_alert"] is not None \
        and summary["minutes_to_alert"] <= 2
    print(f"detokenize drill: {len(events)} detokenize calls; support-desk at {args.spike_factor:g}x its rate from "
          f"minute {args.spike_at}: flagged after {summary['minutes_to_alert']} min in {len(caught)} windows; "
          f"false alerts {len(false)}")
    print(json.dumps(summary, sort_keys=True))
    return 0 if summary["ok"] else 1


#: Subcommands in the order ``--help`` lists them.
SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    register_generate, register_bench, register_replay, register_chaos, register_deploy, register_teardown,
    register_redrive_drill, register_drill, register_hot_account, register_slo_drill, register_detokenize_drill)


def build_parser() -> argparse.ArgumentParser:
    """The ``simulations`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="python -m simulations",
        description=("Simulations for Faster Payments on AWS: payload generation, the payment pipeline's bench, "
                     "settlement replay and chaos; deploy and teardown of every stack on an account; runbook "
                     "rehearsals (redrive-drill, drill, hot-account)."),
    )
    subparsers = parser.add_subparsers(title="subcommands", dest="command", metavar="COMMAND", required=True)
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.commit = _commit() if getattr(args, "record", None) is not None else None  # the code that runs: read before, not after
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
