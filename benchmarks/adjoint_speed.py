"""Adjoint Matching vs Efficient Adjoint Matching on the tiny world: same seeds, prompts, reward multiplier,
step budget and evaluation, every arm in this process one after the other; DRaFT-K and DRaFT + value
(launch/draft.py's recipe, same steps and seed) as further rows unless --no-draft.

    python benchmarks/adjoint_speed.py                                  # 200 steps, seed 0, CPU
    python benchmarks/adjoint_speed.py --seeds 0,1 -- cluster=in_process adjoint.reward_multiplier=300

The overrides after -- go to every arm, except adjoint.* (the AM and EAM arms only). Target: AM's final eval reward; time to target is the training seconds (summed step seconds,
evaluations left out) until an evaluation first reaches it, speed-up = AM's / EAM's. The last line printed
is one JSON object.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import launch.adjoint as adjoint  # noqa: E402
import launch.draft as draft  # noqa: E402
from launch.horizon_report import time_to  # noqa: E402
from learner.adjoint_objective import AdjointConfig, AMConfig, EAMConfig, nfe_per_sample  # noqa: E402
from nft_speed import ratio, worst  # noqa: E402
from training_runs import run_training  # noqa: E402

METHODS = ("am", "eam")
DRAFT_ARMS = ("draft_k", "draft_value")  # draft.horizon=full, and the value's window (--horizon)


def adjoint_config(saved) -> AdjointConfig:
    """The AdjointConfig of a run's saved config.yaml (an OmegaConf node)."""
    saved = OmegaConf.to_container(saved.adjoint)
    return AdjointConfig(**{**saved, "am": AMConfig(**saved["am"]), "eam": EAMConfig(**saved["eam"])})


def run_arm(job, config_name: str, run_dir: Path, overrides: list[str]) -> tuple[dict, list[dict]]:
    """One arm: its final scores with their standard errors, step cost, evaluation curve (and, for AM and EAM,
    transformer passes per sample), and its metric rows."""
    summary, rows = run_training(job, config_name, run_dir, overrides)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    eval_samples = len(summary["final_per_family"]) * cfg.prompts.eval_per_family * cfg.eval.samples_per_prompt
    final = [r for r in rows if "eval/reward" in r][-1]
    train = [r for r in rows if "time/step" in r]
    acc = summary["final_prompt_acc"]
    result = {
        "final_reward": summary["final_reward"], "final_reward_se": final["eval/reward_se"], "final_prompt_acc": acc,
        "final_prompt_acc_se": (acc * (1 - acc) / eval_samples) ** 0.5 if acc is not None else None,
        "base_reward": summary["base_reward"], "base_prompt_acc": summary["base_prompt_acc"],
        "step_seconds": float(np.mean([r["time/step"] for r in train])), "train_seconds": rows[-1]["train_seconds"],
        "curve": [[r["train_seconds"], r["eval/reward"], r.get("eval/prompt_acc")] for r in rows if "eval/reward" in r],
    }
    if "adjoint" in cfg:
        result["nfe"] = nfe_per_sample(adjoint_config(cfg))
    return result, rows


def one_seed(out: Path, seed: int, steps: int, horizon: str, overrides: list[str], with_draft: bool) -> dict:
    arms, runs = {}, {}
    for method in METHODS:
        arms[method], runs[method] = run_arm(adjoint, "adjoint", out / f"seed{seed}" / method,
                                             [f"adjoint.method={method}", f"train.steps={steps}", f"seed={seed}", *overrides])
    if with_draft:
        shared = [o for o in overrides if not o.startswith("adjoint.")]
        for name, window in zip(DRAFT_ARMS, ("full", horizon), strict=True):
            arms[name], runs[name] = run_arm(draft, "draft", out / f"seed{seed}" / name,
                                             [f"draft.horizon={window}", f"train.steps={steps}", f"seed={seed}", *shared])
    target = arms["am"]["final_reward"]
    for name, rows in runs.items():
        arms[name]["train_seconds_to_target"] = time_to(rows, target, "train_seconds", "eval/reward")
    return {"target": target, "speedup_time_to_target": ratio(arms["am"]["train_seconds_to_target"], arms["eam"]["train_seconds_to_target"]),
            "arms": arms}


def passes(nfe: dict) -> int:
    """Transformer passes per sample, with or without a backward."""
    return nfe["forward"] + nfe["forward_backward"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", default="0", help="comma-separated; each seed runs every arm")
    parser.add_argument("--horizon", default="3-7", help="DRaFT + value's stop window")
    parser.add_argument("--no-draft", dest="draft", action="store_false", help="leave out the DRaFT rows")
    parser.add_argument("--out", default=f"runs/bench_adjoint_speed/{time.strftime('%Y%m%d-%H%M%S')}")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every arm (adjoint.*: AM and EAM only), after --")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    per_seed = {seed: one_seed(out, seed, args.steps, args.horizon, args.overrides, args.draft)
                for seed in (int(s) for s in args.seeds.split(","))}
    mean = lambda arm, key: float(np.mean([s["arms"][arm][key] for s in per_seed.values()]))  # noqa: E731
    first = next(iter(per_seed.values()))["arms"]
    result = {
        "speedup_time_to_target": worst([s["speedup_time_to_target"] for s in per_seed.values()]),
        **{f"{key}_{m}": mean(m, key) for m in METHODS for key in ("final_reward", "final_reward_se", "final_prompt_acc",
                                                                   "final_prompt_acc_se", "step_seconds")},
        **{f"nfe_per_sample_{m}": passes(first[m]["nfe"]) for m in METHODS},
        "step_ratio": mean("eam", "step_seconds") / mean("am", "step_seconds"),
        **({f"final_reward_{d}": mean(d, "final_reward") for d in DRAFT_ARMS} if args.draft else {}),
        "seeds": per_seed, "steps": args.steps, "overrides": args.overrides, "out": str(out),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "adjoint_speed.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
