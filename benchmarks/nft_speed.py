"""DiffusionNFT with partial rollouts scored by the stitched value vs full rollouts scored by the pixel
reward: same seeds, prompts, step budget and learners, both arms in this one process, one after the
other, for each seed.

    python benchmarks/nft_speed.py                                   # the tiny world, 120 steps, seeds 0 and 1, CPU
    python benchmarks/nft_speed.py --seeds 0 --horizon 4-6 --steps 60 -- learner.lr=3e-4

Per seed, the target is what the full arm ends its budget with (verifier score; eval reward), and
time-to-target is the training seconds (the summed step seconds: rollout, scoring, learner, weight
sync; the evaluations, the same in both arms, left out) until an evaluation first reaches it. Per arm:
seconds per step split into rollout, scoring (the slowest worker's), learner, weight sync and other,
and the learner's (row, time) pairs per step. `speedup_at_equal_learning` (full step / value step) is
the time-to-target ratio the value arm would reach if it learned as much per step as the full arm.
`predicted_step_ratio_sd35m` is the value step's FLOPs over the full step's for SD3.5-M at 512 px
(benchmarks/nft_step_flops.py). The last line printed is one JSON object.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import launch.nft as nft  # noqa: E402
from launch.horizon_report import time_to  # noqa: E402
from nft_step_flops import predicted_step_ratio  # noqa: E402
from world.cost import sd35m_nft_costs  # noqa: E402
from training_runs import comparison_args, run_training  # noqa: E402

PHASES = ("rollout", "scoring", "learner", "sync")


def step_split(rows: list[dict]) -> dict[str, float]:
    """Mean seconds per training step by phase; `other` is the rest of the step (the driver's waits)."""
    train = [r for r in rows if "time/step" in r]
    split = {p: float(np.mean([r[f"time/{p}"] for r in train])) for p in PHASES}
    step = float(np.mean([r["time/step"] for r in train]))
    return {**split, "other": step - sum(split.values()), "step": step}


def arm(out: Path, horizon: str, steps: int, seed: int, extra: list[str]) -> dict:
    summary, rows = run_training(nft, "nft", out / f"seed{seed}" / horizon,
                                 [f"rollout.horizon={horizon}", f"train.steps={steps}", f"seed={seed}", *extra])
    train_cfg = OmegaConf.load(out / f"seed{seed}" / horizon / "config.yaml").train
    rows_per_step = train_cfg.prompts_per_step * train_cfg.group_size
    train = [r for r in rows if "times_per_row" in r]
    return {"summary": summary, "rows": rows, "split": step_split(rows),
            "row_times_per_step": float(np.mean([r["times_per_row"] for r in train])) * rows_per_step}


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


TARGETS = (("", "eval/prompt_acc", "final_prompt_acc"), ("_reward", "eval/reward", "final_reward"))  # suffix, metric, summary key


def times_to_target(full: dict, value: dict) -> dict:
    """Per target (the full arm's final verifier score; its final eval reward): the target, each arm's
    training seconds to it and their ratio."""
    out = {}
    for name, metric, final in TARGETS:
        target = full["summary"][final]
        t_full, t_value = (time_to(a["rows"], target, "train_seconds", metric) for a in (full, value))
        out |= {f"target{name}": target, f"train_seconds_to_target{name}_full": t_full,
                f"train_seconds_to_target{name}_value": t_value, f"speedup_time_to_target{name}": ratio(t_full, t_value)}
    return out


def compare(full: dict, value: dict) -> dict:
    """One seed's comparison of the two arms."""
    out = times_to_target(full, value)
    for key, a in (("full", full), ("value", value)):
        out |= {f"final_prompt_acc_{key}": a["summary"]["final_prompt_acc"], f"final_reward_{key}": a["summary"]["final_reward"],
                f"step_split_{key}": a["split"], f"row_times_per_step_{key}": a["row_times_per_step"],
                f"wall_seconds_{key}": a["summary"]["wall_seconds"]}
    out["learner_seconds_ratio"] = value["split"]["learner"] / full["split"]["learner"]
    out["speedup_at_equal_learning"] = full["split"]["step"] / value["split"]["step"]
    out["base_prompt_acc"], out["base_reward"] = full["summary"]["base_prompt_acc"], full["summary"]["base_reward"]
    return out


def worst(values: list[float | None]) -> float | None:
    """The smaller of the seeds' speed-ups; None (never reached) counts as the smallest."""
    return None if any(v is None for v in values) else min(values)


def main() -> None:
    args = comparison_args(__doc__, "nft_speed", "5-7", 120, seeds="0,1")
    seeds = [int(s) for s in args.seeds.split(",")]
    per_seed = {}
    for seed in seeds:
        full = arm(args.out, "full", args.steps, seed, args.overrides)
        value = arm(args.out, args.horizon, args.steps, seed, args.overrides)
        per_seed[seed] = compare(full, value)
    mean = lambda key: float(np.mean([s[key] for s in per_seed.values()]))  # noqa: E731
    result = {
        "speedup_time_to_target": worst([s["speedup_time_to_target"] for s in per_seed.values()]),
        "speedup_time_to_target_reward": worst([s["speedup_time_to_target_reward"] for s in per_seed.values()]),
        **{k: mean(k) for k in ("final_prompt_acc_value", "final_prompt_acc_full", "final_reward_value", "final_reward_full",
                                "learner_seconds_ratio", "speedup_at_equal_learning")},
        "predicted_step_ratio_sd35m": predicted_step_ratio(sd35m_nft_costs()),
        "horizon": args.horizon, "steps": args.steps, "seeds": per_seed, "overrides": args.overrides, "out": str(args.out),
    }
    (args.out / "nft_speed.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
