"""The stitched value vs the latent reward as the scorer of NFT and DRaFT: same seed, prompts and budgets, every
arm in this one process (in-process mode), one after the other.

    python benchmarks/latent_reward_arms.py                  # the tiny world, the committed values, seed 0, CPU
    python benchmarks/latent_reward_arms.py --seed 1 --latent-reward runs/latent_reward/<run>/latent_reward

Arms: NFT with full rollouts and the pixel reward (the target: its final verifier score); NFT with partial
rollouts (--horizon) scored by each scorer; NFT with whole rollouts scored by the latent reward at t = 0
instead of a decode and the pixel reward (rollout.horizon=10, of 10 steps); DRaFT with each scorer at its
default horizon. Per arm: the final verifier score and evaluation reward (the pixel reward, decoded), the
training seconds (summed step seconds, evaluations left out) until an evaluation first reaches the full NFT
arm's final verifier score, and the mean step's seconds. The last line printed is one JSON object.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import launch.draft as draft  # noqa: E402
import launch.nft as nft  # noqa: E402
from launch.config_schema import REPO_ROOT  # noqa: E402
from launch.horizon_report import time_to  # noqa: E402
from training_runs import run_training  # noqa: E402

COMMITTED = REPO_ROOT / "artifacts" / "values" / "tiny_latent_reward"


def arms(horizon: str, latent_reward: str) -> dict[str, tuple]:
    """name -> (entry point, config name, overrides)."""
    lrm = ["kind=latent_reward", f"path={latent_reward}"]
    return {
        "nft_full_pixel": (nft, "nft", ["rollout.horizon=full"]),
        "nft_partial_stitched": (nft, "nft", [f"rollout.horizon={horizon}"]),
        "nft_partial_latent_reward": (nft, "nft", [f"rollout.horizon={horizon}", *(f"rollout.value.{o}" for o in lrm)]),
        "nft_whole_latent_reward": (nft, "nft", ["rollout.horizon=10", *(f"rollout.value.{o}" for o in lrm)]),
        "draft_stitched": (draft, "draft", []),
        "draft_latent_reward": (draft, "draft", [f"draft.value.{o}" for o in lrm]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--horizon", default="5-7", help="the partial NFT arms' stop window (of the 10-step rollout)")
    parser.add_argument("--latent-reward", default=str(COMMITTED))
    parser.add_argument("--only", default="", help="comma-separated arm names (default: all)")
    parser.add_argument("--out", default=f"runs/bench_latent_reward_arms/{time.strftime('%Y%m%d-%H%M%S')}")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run, after --")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    chosen = arms(args.horizon, args.latent_reward)
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    runs = {}
    for name, (job, config, overrides) in chosen.items():
        runs[name] = run_training(job, config, out / name,
                                  ["cluster=in_process", f"seed={args.seed}", *overrides, *args.overrides])
    target = runs["nft_full_pixel"][0]["final_prompt_acc"] if "nft_full_pixel" in runs else None
    result = {"target_prompt_acc": target, "seed": args.seed, "horizon": args.horizon, "latent_reward": args.latent_reward,
              "overrides": args.overrides, "out": str(out), "arms": {}}
    for name, (summary, rows) in runs.items():
        steps = [r["time/step"] for r in rows if "time/step" in r]
        result["arms"][name] = {
            "final_prompt_acc": summary["final_prompt_acc"], "final_reward": summary["final_reward"],
            "base_prompt_acc": summary["base_prompt_acc"], "steps": summary["steps"],
            "train_seconds": rows[-1]["train_seconds"], "step_seconds": float(np.mean(steps)),
            "train_seconds_to_target": time_to(rows, target, "train_seconds", "eval/prompt_acc") if target is not None else None,
        }
    (out / "latent_reward_arms.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
