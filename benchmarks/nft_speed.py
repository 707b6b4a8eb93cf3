"""DiffusionNFT with partial rollouts scored by the stitched value vs full rollouts scored by the pixel
reward: same seeds, prompts, step budget and learners, both runs in this one process, one after the other.

    python benchmarks/nft_speed.py                                  # the tiny world, 140 steps each, CPU
    python benchmarks/nft_speed.py --horizon 4-6 --steps 60 -- learner.lr=3e-4

Reports time-to-target (wall seconds until the evaluation's verifier score first reaches the score the
full run ends its budget with), their ratio, rollout seconds per sample in each mode and both final
scores. The last line printed is one JSON object.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import launch.nft as nft  # noqa: E402
from launch.nft_report import time_to  # noqa: E402


def run_mode(out: Path, horizon: str, steps: int, extra: list[str]) -> tuple[dict, list[dict]]:
    overrides = [f"run_dir={out / horizon}", f"rollout.horizon={horizon}", f"train.steps={steps}", "logging.wandb=disabled", *extra]
    with initialize_config_dir(config_dir=str(nft.REPO / "configs"), version_base=None):
        summary = nft.run(compose("nft", overrides=overrides), overrides)
    rows = [json.loads(line) for line in (out / horizon / "metrics.jsonl").read_text().splitlines()]
    return summary, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", default="5-7", help="the value run's stop window (steps of the 10-step rollout)")
    parser.add_argument("--steps", type=int, default=140)
    parser.add_argument("--out", default=f"runs/bench_nft_speed/{time.strftime('%Y%m%d-%H%M%S')}")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both runs, after --")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    full, full_rows = run_mode(out, "full", args.steps, args.overrides)
    value, value_rows = run_mode(out, args.horizon, args.steps, args.overrides)
    target = full["final_prompt_acc"]
    t_full, t_value = time_to(full_rows, target), time_to(value_rows, target)
    train = OmegaConf.load(out / "full" / "config.yaml").train
    samples = args.steps * train.prompts_per_step * train.group_size  # the same in both runs
    result = {
        "target_prompt_acc": target,
        "seconds_to_target_full": t_full,
        "seconds_to_target_value": t_value,
        "speedup_time_to_target": (t_full / t_value) if t_value else None,
        "rollout_cost_ratio": value["rollout_seconds"] / full["rollout_seconds"],
        "rollout_seconds_per_sample_full": full["rollout_seconds"] / samples,
        "rollout_seconds_per_sample_value": value["rollout_seconds"] / samples,
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
