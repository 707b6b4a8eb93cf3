"""Collect the runs of a rollout-horizon sweep (DiffusionNFT's rollout.horizon or DRaFT's draft.horizon)
into one table and one plot.

    python launch/nft.py -m rollout.horizon=full,4-5,5-7,7-9  # a Hydra multirun: runs/nft_sweep/<time>/<overrides>/
    python launch/draft.py -m draft.horizon=full,2-4,3-7,5-9  # or DRaFT's: runs/draft_sweep/<time>/<overrides>/
    python launch/horizon_report.py runs/nft_sweep/<time>     # -> horizons.md, horizons.json, horizons.png there

A run's folder is named by its overrides (Hydra's override_dirname), so a sweep over more than the
horizon (`rollout.value.kind=stitched,tweedie`) keeps one row per run. Per run: its folder, horizon, final
and base verifier score and reward, wall seconds, seconds per training step, the wall seconds at
which its evaluation first reached the full-rollout run's final score, and every evaluation's score.
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


def time_to(rows: list[dict], target: float, clock: str = "wall_seconds", metric: str = "eval/prompt_acc") -> float | None:
    """`clock` (a key of the rows) at the first evaluation whose `metric` (the verifier score unless
    told) reaches `target` (None: never)."""
    hits = [r[clock] for r in rows if r.get(metric, float("-inf")) >= target]
    return hits[0] if hits else None


def report(sweep: Path) -> list[dict]:
    # A path among the overrides (rollout.value.path=/x/y) nests the run's folder: search every depth.
    runs = {f.parent.relative_to(sweep).as_posix(): load_run(f.parent) for f in sorted(sweep.rglob("summary.json"))}
    if not runs:
        raise FileNotFoundError(f"no finished runs (a summary.json) under {sweep}")
    # Full rollouts never read the value, so a sweep over it repeats the full run: those agree.
    finals = {summary["final_prompt_acc"] for horizon, summary, _ in runs.values() if horizon == "full"}
    if len(finals) > 1:
        raise ValueError(f"the full-rollout runs under {sweep} end at different scores {sorted(finals)}, so the target is "
                         "ambiguous; report each setting's sweep from its own directory")
    target = finals.pop() if finals else None
    table = []
    for run, (horizon, summary, rows) in runs.items():
        table.append({
            "run": run,
            "horizon": horizon,
            "base_prompt_acc": summary["base_prompt_acc"],
            "final_prompt_acc": summary["final_prompt_acc"],
            "final_reward": summary["final_reward"],
            "steps": summary["steps"],
            "wall_seconds": summary["wall_seconds"],
            "seconds_per_step": sum(r.get("time/step", 0.0) for r in rows) / summary["steps"],
            "seconds_to_full_final": time_to(rows, target) if target is not None else None,
            "verifier_at_evaluations": " ".join(f"{r['eval/prompt_acc']:.3f}" for r in rows if "eval/prompt_acc" in r),
        })
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()) + " |" for row in table]
    (sweep / "horizons.md").write_text("\n".join(lines) + "\n")
    (sweep / "horizons.json").write_text(json.dumps(table, indent=2))
    plot_runs({run: rows for run, (_, _, rows) in runs.items()}, sweep / "horizons.png")
    return table


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python launch/horizon_report.py <sweep directory of python launch/nft.py -m or launch/draft.py -m>")
    print(json.dumps(report(Path(sys.argv[1]))))
