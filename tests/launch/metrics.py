"""Reading a training run's metrics in the launch tests."""

import json
from pathlib import Path


def training_rows(run_dir: Path) -> dict[int, dict]:
    """{step: row} without what depends on timing (time/*, wall_seconds) or on evaluation (eval/*)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: {k: v for k, v in r.items() if not k.startswith(("time/", "wall", "eval/"))} for r in rows}
