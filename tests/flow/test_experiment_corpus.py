"""The broken-flow corpus has a case for each thing the validator checks in experiments."""

from __future__ import annotations

import re
from pathlib import Path

BROKEN = Path(__file__).parent / "broken"


def test_every_experiment_check_has_a_broken_flow():
    headers = "\n".join(p.read_text(encoding="utf-8") for p in BROKEN.rglob("experiment_*.yaml")) + \
        "\n" + "\n".join(f.read_text(encoding="utf-8") for d in BROKEN.glob("experiment_*") if d.is_dir() for f in d.glob("*.yaml"))
    codes = set(re.findall(r"^# expect: (?:error|warning) \d+:\d+ ([a-z-]+) ", headers, re.MULTILINE))
    assert codes >= {"experiment-node", "missing-prompt", "unknown-flow", "experiment-kinds", "experiment-share",
                     "experiment-arms", "duplicate-arm", "duplicate-experiment", "experiment-dates",
                     "experiment-order", "experiment-interface", "experiment-control", "structure"}
