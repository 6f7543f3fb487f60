"""The payload generator in code, as shown on the testing and simulation page (run by
``tests/test_testing_guide.py``): generate a seeded batch and check a validator against its expected outcomes."""

from __future__ import annotations

from typing import Any


def main() -> dict[str, Any]:
    # --8<-- [start:generate]
    from fasterpay.iso20022 import Pacs008Validator
    from simulations.generator import GeneratorSettings, generate_messages

    settings = GeneratorSettings(count=200, seed=20261202, invalid_rate=0.1, duplicate_rate=0.02)  # (1)!
    batch = generate_messages(settings)
    validator = Pacs008Validator(max_message_bytes=settings.max_message_bytes)  # (2)!
    wrong = [m.sequence for m in batch if validator.validate(m.xml).reason_codes != m.expected_reasons]  # (3)!
    # --8<-- [end:generate]
    return {"messages": len(batch), "wrong": wrong, "cases": sorted({m.case for m in batch})}


if __name__ == "__main__":
    print(main())
