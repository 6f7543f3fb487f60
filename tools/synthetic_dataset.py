"""Make the synthetic dataset the site publishes: the same zip, byte for byte, with the same SHA-256.

    python tools/synthetic_dataset.py --out synthetic-pacs008-1000-seed20261202.zip

It runs ``python -m simulations generate`` with the published command line (``DATASET_ARGV`` in
``sitebuild.testing_guide``: count and seed) into a temporary folder, then zips the XML files and
``manifest.json`` in name order with fixed timestamps, stored uncompressed, and prints the SHA-256.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO / "tools", REPO / "reference", REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def main(argv: Sequence[str] | None = None) -> int:
    from sitebuild.testing_guide import DATASET_NAME, build_dataset, dataset_command

    parser = argparse.ArgumentParser(prog="python tools/synthetic_dataset.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(DATASET_NAME), help="the zip to write")
    args = parser.parse_args(argv)
    dataset = build_dataset(args.out, reuse=False)
    print(f"{dataset.path}: {dataset.messages} messages, {dataset.size_bytes} bytes, made by `{dataset_command()}`")
    print(f"SHA-256 {dataset.sha256}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
