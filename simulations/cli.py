"""The simulations command line: one subcommand per scenario.

Each subcommand is a ``register_*`` function that adds its parser and sets ``handler``; a new scenario
is one more function in :data:`SUBCOMMANDS`.

Examples:
    python -m simulations generate --count 1000 --seed 7 --mix uk_fps=0.6,sepa_inst=0.4 \\
        --invalid-rate 0.05 --duplicate-rate 0.02 --out build/payloads
    python -m simulations bench --payments 400 --seed 7
    python -m simulations replay --payments 100
    python -m simulations chaos --payments 100 --seed 3
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
    parser.add_argument("--seed", type=int, default=0, help="random seed (traffic, faults, modelled latency)")
    parser.add_argument("--cycle-size", type=_positive, default=50,
                        help="payments per settlement cycle (each cycle gets fresh ledger tables on moto)")
    parser.add_argument("--quiet", action="store_true", help="no progress counter on stderr")


def register_bench(subparsers: argparse._SubParsersAction) -> None:
    """``bench``: drive the pipeline on moto, measure against the floor, write the metrics file."""
    parser = subparsers.add_parser(
        "bench", help="drive the payment pipeline and report TPS, latency, errors, reconciliation and cost",
        description=(
            "Deploy the vault and pipeline stacks to moto, submit seeded pacs.008 traffic and let the local runner "
            "drive the stage handlers. Reports sustained and peak TPS (measured on moto), latency p50/p95/p99 "
            "(measured on moto, and modelled with the stated latency model), error rate, reconciliation "
            "mismatches per 10k, API calls per payment and cost per 10k, beside a floor: the same AWS calls "
            "made directly with boto3. Writes payment-pipeline.json to the metrics directory "
            "(FASTERPAY_METRICS_DIR)."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _pipeline_arguments(parser, 200)
    parser.add_argument("--batch-size", type=int, choices=range(1, 11), default=10, metavar="1-10",
                        help="SQS batch size (receive and send)")
    parser.add_argument("--no-metrics", action="store_true", help="print only; do not write the metrics file")
    parser.set_defaults(handler=run_bench_command, parser=parser)


def _print_result(title: str, result: object) -> None:
    r = result
    print(f"{title}: {r.messages} messages, {r.valid} valid; statuses {r.statuses}")  # type: ignore[attr-defined]
    print(f"  throughput (measured on moto): sustained {r.tps_sustained:.1f}/s, peak {r.tps_peak:.1f}/s")  # type: ignore[attr-defined]
    print("  latency p50/p95/p99 ms: measured on moto "
          + "/".join(f"{v:.0f}" for v in r.measured_ms.values())  # type: ignore[attr-defined]
          + ", modelled " + "/".join(f"{v:.0f}" for v in r.modelled_ms.values()))  # type: ignore[attr-defined]
    print(f"  error rate {100 * r.error_rate:.2f}% of valid payments; reasons {r.reasons}")  # type: ignore[attr-defined]
    print(f"  reconciliation: {len(r.reconciliation.mismatches)} mismatches "  # type: ignore[attr-defined]
          f"({r.reconciliation.mismatches_per_10k:.1f} per 10k), balances {r.reconciliation.currency_totals}")  # type: ignore[attr-defined]
    print(f"  API calls per payment {r.api_calls_per_payment:.1f}; cost per 10k USD {r.cost_per_10k:.4f}")  # type: ignore[attr-defined]


def run_bench_command(args: argparse.Namespace) -> int:
    """Run the bench and the floor in one moto environment; write the metrics file."""
    from fasterpay.aws import open_environment
    from fasterpay.metrics import write_metrics
    from fasterpay.pipeline.benchmark import figures, run_bench, run_floor

    with open_environment() as env:
        result = run_bench(env, payments=args.payments, seed=args.seed, cycle_size=args.cycle_size,
                           batch_size=args.batch_size, progress=_Progress("bench", args.quiet))
        floor = run_floor(env, result.calls_by_operation)
        backend = env.backend.value
    _print_result("bench", result)
    print(f"  floor (same {floor.calls} calls, plain boto3): {result.messages / floor.wall_seconds:.1f}/s; "
          f"pipeline/floor wall time {result.wall_seconds / floor.wall_seconds:.2f}x")
    if not args.no_metrics:
        path = write_metrics("payment-pipeline", figures(result, floor), seed=args.seed, backend=backend)
        print(f"metrics: {path}")
    return 0 if not result.reconciliation.mismatches else 1


def register_replay(subparsers: argparse._SubParsersAction) -> None:
    """``replay``: rebuild settlement positions from the event history and reconcile."""
    parser = subparsers.add_parser(
        "replay", help="settlement replay from the event history, with a reconciliation report",
        description=(
            "Run the pipeline on moto to build a history (moto keeps no state between runs), then replay each "
            "settlement cycle from its booked events: positions must equal the stored settlement report and "
            "the ledger's settlement transfers. Prints a reconciliation report; exits 1 on any mismatch."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _pipeline_arguments(parser, 100)
    parser.set_defaults(handler=run_replay_command, parser=parser)


def run_replay_command(args: argparse.Namespace) -> int:
    """Build a history, replay every cycle, reconcile."""
    from fasterpay.aws import open_environment
    from fasterpay.pipeline.benchmark import run_bench

    with open_environment() as env:
        result = run_bench(env, payments=args.payments, seed=args.seed, cycle_size=args.cycle_size,
                           progress=_Progress("history", args.quiet))
    print(f"replay: {len(result.reconciliation.statuses)} statuses, settlement replay "
          f"{'matches' if result.replay_matches else 'DIFFERS'} the reports and the ledger")
    recon = result.reconciliation
    print(f"reconciliation: {recon.payments} payments, statuses {recon.statuses}, {len(recon.mismatches)} "
          f"mismatches ({recon.mismatches_per_10k:.1f} per 10k); balances per currency {recon.currency_totals}")
    for line in recon.mismatches[:20]:
        print("  -", line)
    return 0 if result.replay_matches and not recon.mismatches else 1


def register_chaos(subparsers: argparse._SubParsersAction) -> None:
    """``chaos``: the bench with latency injection, throttling, timeouts and stage crashes."""
    parser = subparsers.add_parser(
        "chaos", help="the bench under throttling, timeouts, latency injection and stage crashes",
        description=(
            "The same bench with 3%% throttling and 1%% timeouts on DynamoDB and SQS, a slower latency model, "
            "5%% simulated scheme timeouts, a stage crashing every few records and poison messages. The run must "
            "end with nothing lost or doubled (exit 1 otherwise); poison stays in its dead-letter queue with its "
            "reason, legitimate dead letters are redriven."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _pipeline_arguments(parser, 100)
    parser.set_defaults(handler=run_chaos_command, parser=parser)


def run_chaos_command(args: argparse.Namespace) -> int:
    """Run the chaos bench and check that nothing was lost or doubled."""
    from fasterpay.aws import open_environment
    from fasterpay.pipeline.benchmark import run_chaos

    with open_environment() as env:
        result = run_chaos(env, payments=args.payments, seed=args.seed, progress=_Progress("chaos", args.quiet))
    _print_result("chaos", result)
    print(f"  faults injected {result.injected}, stage crashes {result.crashes}, dead letters redriven "
          f"{result.redriven}")
    for letter in result.dead_letters:
        print(f"  DLQ {letter.stage}: {letter.body[:30]!r}: {letter.reason}")
    print(f"  lost or doubled: {result.lost_or_doubled}")
    return 0 if result.lost_or_doubled == 0 and not result.reconciliation.mismatches else 1


#: Subcommands in the order ``--help`` lists them.
SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    register_generate, register_bench, register_replay, register_chaos)


def build_parser() -> argparse.ArgumentParser:
    """The ``simulations`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="python -m simulations",
        description=("Simulations for Faster Payments on AWS: payload generation, the payment pipeline's bench, "
                     "settlement replay and chaos."),
    )
    subparsers = parser.add_subparsers(title="subcommands", dest="command", metavar="COMMAND", required=True)
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
