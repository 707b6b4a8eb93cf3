"""Collect the runs of a rollout-horizon sweep (DiffusionNFT's rollout.horizon or DRaFT's draft.horizon)
into one table and one plot.

    python launch/nft.py -m rollout.horizon=full,4-5,5-7,7-9  # a Hydra multirun: runs/nft_sweep/<time>/<horizon>/
    python launch/draft.py -m draft.horizon=full,2-4,3-7,5-9  # or DRaFT's: runs/draft_sweep/<time>/<horizon>/
    python launch/horizon_report.py runs/nft_sweep/<time>     # -> horizons.md, horizons.json, horizons.png there

Per run: horizon, final and base verifier score and reward, wall seconds, seconds per training step,
and the wall seconds at which its evaluation first reached the full-rollout run's final score.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omegaconf import OmegaConf  # noqa: E402

from learner.run_log import plot_runs  # noqa: E402


def load_run(run_dir: Path) -> tuple[str, dict, list[dict]]:
    cfg = OmegaConf.load(run_dir / "config.yaml")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    horizon = cfg.draft.horizon if "draft" in cfg else cfg.rollout.horizon
    return str(horizon), json.loads((run_dir / "summary.json").read_text()), rows


def time_to(rows: list[dict], target: float, clock: str = "wall_seconds") -> float | None:
    """`clock` (a key of the rows) at the first evaluation whose verifier score reaches `target` (None: never)."""
    hits = [r[clock] for r in rows if r.get("eval/prompt_acc", -1.0) >= target]
    return hits[0] if hits else None


def report(sweep: Path) -> list[dict]:
    runs = {}
    for summary_file in sorted(sweep.glob("*/summary.json")):
        horizon, summary, rows = load_run(summary_file.parent)
        runs[horizon] = (summary, rows)
    if not runs:
        raise FileNotFoundError(f"no finished runs (*/summary.json) under {sweep}")
    target = runs["full"][0]["final_prompt_acc"] if "full" in runs else None
    table = []
    for horizon, (summary, rows) in runs.items():
        table.append({
            "horizon": horizon,
            "base_prompt_acc": summary["base_prompt_acc"],
            "final_prompt_acc": summary["final_prompt_acc"],
            "final_reward": summary["final_reward"],
            "steps": summary["steps"],
            "wall_seconds": summary["wall_seconds"],
            "seconds_per_step": sum(r.get("time/step", 0.0) for r in rows) / summary["steps"],
            "seconds_to_full_final": time_to(rows, target) if target is not None else None,
        })
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()) + " |" for row in table]
    (sweep / "horizons.md").write_text("\n".join(lines) + "\n")
    (sweep / "horizons.json").write_text(json.dumps(table, indent=2))
    plot_runs({h: rows for h, (_, rows) in runs.items()}, sweep / "horizons.png")
    return table


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python launch/horizon_report.py <sweep directory of python launch/nft.py -m or launch/draft.py -m>")
    print(json.dumps(report(Path(sys.argv[1]))))
