"""The simulations command line: one subcommand per scenario.

Each subcommand is a ``register_*`` function that adds its parser and sets ``handler``; a new scenario
(bench, replay, chaos) is one more function in :data:`SUBCOMMANDS`.

Examples:
    python -m simulations generate --count 1000 --seed 7 --mix uk_fps=0.6,sepa_inst=0.4 \\
        --invalid-rate 0.05 --duplicate-rate 0.02 --out build/payloads
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
    from fasterpay.iso20022.generator import AMOUNT_BANDS, DEFAULT_AMOUNT_MIX, INVALID_CASES
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
    from fasterpay.iso20022.generator import GeneratorSettings, InvalidMixError, parse_mix, write_batch

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


#: Subcommands in the order ``--help`` lists them; add bench, replay, chaos here.
SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (register_generate,)


def build_parser() -> argparse.ArgumentParser:
    """The ``simulations`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="python -m simulations",
        description="Simulations for Faster Payments on AWS: payload generation (more scenarios to come).",
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
