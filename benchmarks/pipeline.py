"""DiffusionNFT synchronous (`train.max_staleness=0`: sample, then train) vs overlapped
(`train.max_staleness=1`: the next batch is sampled while the learners train on this one): the main
job's config, same seeds, both arms of a seed in this one process, one after the other.

    python benchmarks/pipeline.py                              # the tiny world, 120 steps, seeds 0 and 1, CPU
    python benchmarks/pipeline.py --seeds 0 --steps 40 -- rollout.horizon=5-7

Per arm: seconds per step; `step_over_bound`, the summed step seconds over the summed max(rollout +
scoring, learner) (1 would be perfect overlap); `overhead_share`, the part of the step seconds that is
neither the rollout nor the learner's work (weight publishing, the driver's waits, idle time); the
bytes the driver receives per step against the bytes of the batch it passes on by reference; the
seconds from the job's start to its first update (set-up, the base evaluation and step 1). Time to
target: the training seconds until an evaluation first reaches the synchronous arm's final verifier
score. On one machine workers and learners share the cores, so the overlap measured here is a lower
bound of what separate GPUs give; `predicted_async_step_seconds` is max(rollout, learner) per step from
the synchronous arm's own split. The last line printed is one JSON object.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import launch.nft as nft  # noqa: E402
from launch.horizon_report import time_to  # noqa: E402
from nft_speed import ratio, worst  # noqa: E402
from training_runs import comparison_args, run_training, seconds_to_first_update  # noqa: E402


def step_stats(rows: list[dict]) -> dict[str, float]:
    """Means over the training steps of one run's metric rows."""
    train = [r for r in rows if "time/step" in r]
    step = np.array([r["time/step"] for r in train])
    rollout = np.array([r["time/rollout"] + r["time/scoring"] for r in train])
    learner = np.array([r["time/learner"] for r in train])
    bound = np.maximum(rollout, learner)
    return {
        "step_seconds": float(step.mean()), "rollout_seconds": float(rollout.mean()), "learner_seconds": float(learner.mean()),
        "sync_seconds": float(np.mean([r["time/sync"] for r in train])),
        "step_over_bound": float(step.sum() / bound.sum()), "overhead_share": float(1 - bound.sum() / step.sum()),
        "driver_bytes_per_step": float(np.mean([r["data/driver_bytes"] for r in train])),
        "batch_bytes_per_step": float(np.mean([r["data/batch_bytes"] for r in train])),
        "staleness_histogram": {str(k): int(v) for k, v in zip(*np.unique([r["data/staleness"] for r in train], return_counts=True), strict=True)},
    }


def arm(out: Path, staleness: int, steps: int, seed: int, extra: list[str]) -> dict:
    start = time.perf_counter()
    summary, rows = run_training(nft, "nft", out / f"seed{seed}" / f"staleness{staleness}",
                                 [f"train.max_staleness={staleness}", f"train.steps={steps}", f"seed={seed}", *extra])
    return {"summary": summary, "rows": rows, **step_stats(rows),
            "seconds_to_first_update": seconds_to_first_update(time.perf_counter() - start, summary, rows)}


def compare(sync: dict, overlapped: dict) -> dict:
    target = sync["summary"]["final_prompt_acc"]
    t_sync, t_async = (time_to(a["rows"], target, "train_seconds", "eval/prompt_acc") for a in (sync, overlapped))
    out = {"target": target, "train_seconds_to_target_sync": t_sync, "train_seconds_to_target_async": t_async,
           "speedup_time_to_target": ratio(t_sync, t_async),
           "predicted_async_step_seconds": max(sync["rollout_seconds"], sync["learner_seconds"])}
    for key, a in (("sync", sync), ("async", overlapped)):
        out |= {f"final_prompt_acc_{key}": a["summary"]["final_prompt_acc"], f"final_reward_{key}": a["summary"]["final_reward"],
                **{f"{k}_{key}": a[k] for k in ("step_seconds", "rollout_seconds", "learner_seconds", "sync_seconds",
                                                  "step_over_bound", "overhead_share", "driver_bytes_per_step",
                                                  "batch_bytes_per_step", "staleness_histogram", "seconds_to_first_update")}}
    return out


def main() -> None:
    args = comparison_args(__doc__, "pipeline", "full", 120, seeds="0,1")
    per_seed = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        extra = [f"rollout.horizon={args.horizon}", *args.overrides]  # --horizon: both arms'
        per_seed[seed] = compare(*(arm(args.out, k, args.steps, seed, extra) for k in (0, 1)))
    mean = lambda key: float(np.mean([s[key] for s in per_seed.values()]))  # noqa: E731
    result = {
        "step_seconds_sync": mean("step_seconds_sync"), "step_seconds_async": mean("step_seconds_async"),
        "async_step_over_bound": mean("step_over_bound_async"),
        "speedup_time_to_target": worst([s["speedup_time_to_target"] for s in per_seed.values()]),
        "final_prompt_acc_sync": mean("final_prompt_acc_sync"), "final_prompt_acc_async": mean("final_prompt_acc_async"),
        "overhead_share": mean("overhead_share_async"), "driver_bytes_per_step": mean("driver_bytes_per_step_async"),
        "batch_bytes_per_step": mean("batch_bytes_per_step_async"),
        "seconds_to_first_update": mean("seconds_to_first_update_sync"),
        "seeds": per_seed, "steps": args.steps, "overrides": args.overrides, "out": str(args.out),
    }
    (args.out / "pipeline.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
