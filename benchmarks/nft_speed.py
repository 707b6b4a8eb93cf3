"""DiffusionNFT with partial rollouts scored by the stitched value vs full rollouts scored by the pixel
reward: same seeds, prompts, step budget and learners, both runs in this one process, one after the other.

    python benchmarks/nft_speed.py                                  # the tiny world, 140 steps each, CPU
    python benchmarks/nft_speed.py --horizon 4-6 --steps 60 -- learner.lr=3e-4

Reports time-to-target (wall seconds until the evaluation's verifier score first reaches the score the
full run ends its budget with), their ratio, rollout seconds per sample in each mode and both final
scores, and what the step costs allow: `speedup_at_equal_learning`, the full step's seconds over the
value step's, is the time-to-target ratio the value run would reach if it learned as much per step as
the full run, so a larger speedup needs it to learn faster per step than exact rewards teach. The last
line printed is one JSON object.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omegaconf import OmegaConf  # noqa: E402

import launch.nft as nft  # noqa: E402
from launch.horizon_report import time_to  # noqa: E402
from training_runs import comparison_args, run_training  # noqa: E402


def run_mode(out: Path, horizon: str, steps: int, extra: list[str]) -> tuple[dict, list[dict]]:
    return run_training(nft, "nft", out / horizon, [f"rollout.horizon={horizon}", f"train.steps={steps}", *extra])


def main() -> None:
    args = comparison_args(__doc__, "nft_speed", "5-7", 140)
    out = args.out
    full, full_rows = run_mode(out, "full", args.steps, args.overrides)
    value, value_rows = run_mode(out, args.horizon, args.steps, args.overrides)
    target = full["final_prompt_acc"]
    t_full, t_value = time_to(full_rows, target), time_to(value_rows, target)
    train = OmegaConf.load(out / "full" / "config.yaml").train
    samples = args.steps * train.prompts_per_step * train.group_size  # the same in both runs
    # train_seconds: the summed step seconds (run_training), so the last row's over the steps is the mean step.
    step_full, step_value = full_rows[-1]["train_seconds"] / args.steps, value_rows[-1]["train_seconds"] / args.steps
    result = {
        "target_prompt_acc": target,
        "seconds_to_target_full": t_full,
        "seconds_to_target_value": t_value,
        "speedup_time_to_target": (t_full / t_value) if t_value else None,
        "rollout_cost_ratio": value["rollout_seconds"] / full["rollout_seconds"],
        "rollout_seconds_per_sample_full": full["rollout_seconds"] / samples,
        "rollout_seconds_per_sample_value": value["rollout_seconds"] / samples,
        "step_seconds_full": step_full,
        "step_seconds_value": step_value,
        "learner_seconds_per_step_full": full["learner_seconds"] / args.steps,
        "learner_seconds_per_step_value": value["learner_seconds"] / args.steps,
        "speedup_at_equal_learning": step_full / step_value,
        "wall_seconds_full": full["wall_seconds"],
        "wall_seconds_value": value["wall_seconds"],
        "final_prompt_acc_full": full["final_prompt_acc"],
        "final_prompt_acc_value": value["final_prompt_acc"],
        "base_prompt_acc": full["base_prompt_acc"],
        "horizon": args.horizon,
        "steps": args.steps,
        "out": str(out),
    }
    (out / "nft_speed.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
