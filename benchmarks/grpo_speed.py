"""Flow-GRPO-Fast with full rollouts vs with the value stop right after its SDE window, and DiffusionNFT
(full rollouts, the main job's recipe) as a row: same seeds, prompts, step budget, evaluation, all arms
in this one process, one after the other.

    python benchmarks/grpo_speed.py                         # the tiny world, 120 steps, seed 0, CPU
    python benchmarks/grpo_speed.py --seeds 0,1 --steps 60 -- cluster=in_process

Target: Flow-GRPO-Fast's final verifier score (and eval reward) with full rollouts; time-to-target is
the training seconds (summed step seconds, evaluations left out) until an evaluation first reaches it.
`rollout_cost_ratio`: the value arm's rollout + scoring seconds per step over the full arm's. Per arm,
seconds per step by phase. The last line printed is one JSON object.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import launch.grpo as grpo  # noqa: E402
import launch.nft as nft  # noqa: E402
from launch.horizon_report import time_to  # noqa: E402
from nft_speed import TARGETS, step_split, times_to_target, worst  # noqa: E402
from training_runs import comparison_args, run_training  # noqa: E402

ARMS = {"fast_full": (grpo, "grpo", ["rollout.horizon=full"]),
        "fast_value": (grpo, "grpo", []),  # rollout.horizon: --horizon
        "nft_full": (nft, "nft", ["rollout.horizon=full"])}


def arm(out: Path, name: str, horizon: str, steps: int, seed: int, extra: list[str]) -> dict:
    job, config, overrides = ARMS[name]
    overrides = overrides or [f"rollout.horizon={horizon}"]
    summary, rows = run_training(job, config, out / f"seed{seed}" / name, [*overrides, f"train.steps={steps}", f"seed={seed}", *extra])
    return {"summary": summary, "rows": rows, "split": step_split(rows)}


def compare(arms: dict) -> dict:
    full, value = arms["fast_full"], arms["fast_value"]
    out = times_to_target(full, value)
    for name, metric, _ in TARGETS:
        out[f"train_seconds_to_target{name}_nft"] = time_to(arms["nft_full"]["rows"], out[f"target{name}"], "train_seconds", metric)
    for key, a in arms.items():
        out |= {f"final_prompt_acc_{key}": a["summary"]["final_prompt_acc"], f"final_reward_{key}": a["summary"]["final_reward"],
                f"step_split_{key}": a["split"]}
    rollout = lambda a: a["split"]["rollout"] + a["split"]["scoring"]  # noqa: E731
    out["rollout_cost_ratio"] = rollout(value) / rollout(full)
    out["step_ratio"] = value["split"]["step"] / full["split"]["step"]
    out["base_prompt_acc"] = full["summary"]["base_prompt_acc"]
    return out


def main() -> None:
    args = comparison_args(__doc__, "grpo_speed", "2-5", 120, seeds="0")
    per_seed = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        per_seed[seed] = compare({name: arm(args.out, name, args.horizon, args.steps, seed, args.overrides) for name in ARMS})
    mean = lambda key: float(np.mean([s[key] for s in per_seed.values()]))  # noqa: E731
    result = {
        "speedup_time_to_target": worst([s["speedup_time_to_target"] for s in per_seed.values()]),
        "speedup_time_to_target_reward": worst([s["speedup_time_to_target_reward"] for s in per_seed.values()]),
        "final_prompt_acc_value": mean("final_prompt_acc_fast_value"), "final_prompt_acc_full": mean("final_prompt_acc_fast_full"),
        "final_prompt_acc_nft": mean("final_prompt_acc_nft_full"),
        "final_reward_value": mean("final_reward_fast_value"), "final_reward_full": mean("final_reward_fast_full"),
        "rollout_cost_ratio": mean("rollout_cost_ratio"), "step_ratio": mean("step_ratio"),
        "seeds": per_seed, "horizon": args.horizon, "steps": args.steps, "overrides": args.overrides, "out": str(args.out),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grpo_speed.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
