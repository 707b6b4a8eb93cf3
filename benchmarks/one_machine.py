"""DiffusionNFT on one machine: the in-process mode (`cluster=in_process`: one learner and one rollout
worker in the driver's process, no Ray) against the default Ray mode (2 rollout workers and 2 learners
as Ray actors, a local Ray started by the job), at the official protocol's settings: 8 prompts x 8
images, a 10-step ODE, 9 trained times per image (learner.timestep_fraction=0.99), LoRA r32 on the
attention projections, lr 3e-4, KL weight 1e-4, same seed. The in-process arm runs first, so neither
finds a Ray already running.

    python benchmarks/one_machine.py                     # 30 steps each, CPU
    python benchmarks/one_machine.py --steps 10 -- seed=1

Per arm: seconds per step (mean over the steps after the first, which pays one-off warm-ups), its
split, and `seconds_to_first_update`: from the job's `run` call (imports done) to the end of step 1,
Ray's start, the actors' set-up and the base evaluation included. The last line printed is one JSON
object.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import launch.nft as nft  # noqa: E402
from training_runs import comparison_args, run_training, seconds_to_first_update  # noqa: E402

OFFICIAL_PROTOCOL = [
    "train.prompts_per_step=8", "train.group_size=8", "rollout.sampler.num_steps=10", "learner.timestep_fraction=0.99",
    "finetune.mode=lora", "finetune.lora.rank=32", "learner.lr=3e-4", "nft.kl_weight=1e-4", "eval.every=0",
]
MODES = {"in_process": ["cluster=in_process"], "ray": []}


def arm(out: Path, mode: str, steps: int, extra: list[str]) -> dict:
    start = time.perf_counter()
    summary, rows = run_training(nft, "nft", out / mode, [*MODES[mode], *OFFICIAL_PROTOCOL, f"train.steps={steps}", *extra])
    elapsed = time.perf_counter() - start
    train = [r for r in rows if "time/step" in r][1:]  # step 1 pays the one-off warm-ups
    mean = lambda key: float(np.mean([r[key] for r in train]))  # noqa: E731
    return {
        "step_seconds": mean("time/step"), "rollout_seconds": mean("time/rollout") + mean("time/scoring"),
        "learner_seconds": mean("time/learner"), "sync_seconds": mean("time/sync"),
        "seconds_to_first_update": seconds_to_first_update(elapsed, summary, rows),
        "final_reward": summary["final_reward"], "final_prompt_acc": summary["final_prompt_acc"],
        "times_per_row": mean("times_per_row"),
    }


def main() -> None:
    args = comparison_args(__doc__, "one_machine", "full", 30)
    arms = {mode: arm(args.out, mode, args.steps, [f"rollout.horizon={args.horizon}", *args.overrides]) for mode in MODES}
    local, ray = arms["in_process"], arms["ray"]
    result = {
        "step_seconds_official_protocol": local["step_seconds"], "step_seconds_official_protocol_ray": ray["step_seconds"],
        "step_ratio_in_process_over_ray": local["step_seconds"] / ray["step_seconds"],
        "seconds_to_first_update": local["seconds_to_first_update"],
        "seconds_to_first_update_ray": ray["seconds_to_first_update"],
        "arms": arms, "settings": OFFICIAL_PROTOCOL, "steps": args.steps, "overrides": args.overrides, "out": str(args.out),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "one_machine.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
