"""What the training benchmarks share: one run of a training entry point (launch/nft.py, launch/draft.py)
in this process, its summary and metric rows, and the command line of a two-arm comparison."""

import argparse
import json
import sys
import time
from itertools import accumulate
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra import compose, initialize_config_dir  # noqa: E402

from launch.config_schema import REPO_ROOT  # noqa: E402


def run_training(job, config_name: str, run_dir: Path, overrides: list[str]) -> tuple[dict, list[dict]]:
    """job: the entry point's module (its run(raw, overrides)). Rows gain "train_seconds": the summed
    step seconds up to them (evaluations left out)."""
    overrides = [f"run_dir={run_dir}", "logging.wandb=disabled", *overrides]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base=None):
        summary = job.run(compose(config_name, overrides=overrides), overrides)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for row, seconds in zip(rows, accumulate(r.get("time/step", 0.0) for r in rows), strict=True):
        row["train_seconds"] = seconds
    return summary, rows


def seconds_to_first_update(elapsed: float, summary: dict, rows: list[dict]) -> float:
    """From a job's `run` call to the end of its step 1, given the call's `elapsed` seconds: the fit loop's
    clock starts after the set-up, so the rest of the elapsed time is set-up and shutdown."""
    first = next(r for r in rows if r.get("step") == 1)
    return elapsed - summary["wall_seconds"] + first["wall_seconds"]


def comparison_args(doc: str, name: str, horizon: str, steps: int, seeds: str | None = None) -> argparse.Namespace:
    """--horizon (the value arm's), --steps, --out, and Hydra overrides for both arms after --; --seeds
    where the benchmark repeats both arms per seed (`seeds` its default)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--horizon", default=horizon, help="the value run's stop window (steps of the 10-step rollout)")
    parser.add_argument("--steps", type=int, default=steps)
    if seeds is not None:
        parser.add_argument("--seeds", default=seeds, help="comma-separated; each seed runs both arms")
    parser.add_argument("--out", default=f"runs/bench_{name}/{time.strftime('%Y%m%d-%H%M%S')}")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both runs, after --")
    args = parser.parse_args()
    args.out = Path(args.out).resolve()
    return args
