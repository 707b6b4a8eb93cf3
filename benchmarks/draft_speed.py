"""DRaFT + value (stop at tau, maximise the stitched value) vs DRaFT-K (full rollout, decoded reward):
same seeds, prompts, step budget, learners and evaluation, both runs in this one process, one after the other.

    python benchmarks/draft_speed.py                                  # the tiny world, 200 steps each, CPU
    python benchmarks/draft_speed.py --horizon 4-6 --steps 100 -- learner.lr=3e-4

Reports time-to-target: the seconds until the evaluation's verifier score first reaches the score
DRaFT-K ends its budget with. Two clocks: training seconds (the learner steps: sampling with gradients,
scoring, backward, optimizer; the evaluations, the same in both runs, left out) and wall seconds (all
of it, evaluations included). Also seconds per step and both final scores and rewards. The last line
printed is one JSON object.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import launch.draft as draft  # noqa: E402
from launch.horizon_report import time_to  # noqa: E402
from training_runs import comparison_args, run_training  # noqa: E402


def run_mode(out: Path, horizon: str, steps: int, extra: list[str]) -> tuple[dict, list[dict]]:
    return run_training(draft, "draft", out / horizon, [f"draft.horizon={horizon}", f"train.steps={steps}", *extra])


def main() -> None:
    args = comparison_args(__doc__, "draft_speed", "3-7", 200)
    out = args.out
    base, base_rows = run_mode(out, "full", args.steps, args.overrides)
    value, value_rows = run_mode(out, args.horizon, args.steps, args.overrides)
    target = base["final_prompt_acc"]
    t_base, t_value = time_to(base_rows, target, "train_seconds"), time_to(value_rows, target, "train_seconds")
    w_base, w_value = time_to(base_rows, target), time_to(value_rows, target)
    result = {
        "target_prompt_acc": target,
        "train_seconds_to_target_baseline": t_base,
        "train_seconds_to_target_value": t_value,
        "speedup_time_to_target": (t_base / t_value) if t_value else None,
        "wall_seconds_to_target_baseline": w_base,
        "wall_seconds_to_target_value": w_value,
        "speedup_wall_to_target": (w_base / w_value) if w_value else None,
        "seconds_per_step_baseline": base["learner_seconds"] / args.steps,
        "seconds_per_step_value": value["learner_seconds"] / args.steps,
        "final_prompt_acc_baseline": base["final_prompt_acc"],
        "final_prompt_acc_value": value["final_prompt_acc"],
        "final_reward_baseline": base["final_reward"],
        "final_reward_value": value["final_reward"],
        "base_prompt_acc": base["base_prompt_acc"],
        "base_reward": base["base_reward"],
        "horizon": args.horizon,
        "steps": args.steps,
        "out": str(out),
    }
    (out / "draft_speed.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
