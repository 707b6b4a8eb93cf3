"""The value tilt's strength against where it guides: a sweep of beta (with log h = V / beta only gamma /
beta matters, so gamma stays 1) over step windows of the steering sampler, on the same prompts and seeds
as benchmarks/dps.py, with plain sampling as the reference row. Writes tilt_sweep.json and tilt_sweep.png
to --out; the last line printed is the JSON.

    python benchmarks/tilt_sweep.py                      # the tiny world, CPU (~4 min)
    python benchmarks/tilt_sweep.py --betas 0.02,0.01 --windows ,10-19
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from steer_runs import evaluate, job_config  # noqa: E402
from world.prompts import all_eval_prompts  # noqa: E402
from world.verifier import load_verifier  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=8)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--betas", default="0.04,0.02,0.01,0.005,0.0025")
    parser.add_argument("--windows", default=",0-9,10-19", help="tilt.steps values ('' guides every step)")
    parser.add_argument("--out", default=f"runs/bench_tilt_sweep/{time.strftime('%Y%m%d-%H%M%S')}")
    parser.add_argument("overrides", nargs="*", help="configs/steer.yaml overrides")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    verifier = load_verifier(job_config(args.overrides).verifier)
    prompts = [p for p in all_eval_prompts(args.per_family) for _ in range(args.samples)]
    seeds = list(range(len(prompts)))
    rows = {"plain": evaluate([*args.overrides, "steer.method=plain"], prompts, seeds, verifier)}
    betas = [float(b) for b in args.betas.split(",")]
    windows = args.windows.split(",")
    for window in windows:
        for beta in betas:
            name = f"tilt@{beta:g}/{window or 'all'}"
            rows[name] = evaluate([*args.overrides, "steer.method=tilt", f"steer.tilt.beta={beta}",
                                   f"steer.tilt.steps='{window}'"], prompts, seeds, verifier)
            print(json.dumps({name: rows[name]}), flush=True)
    summary = {"samples": len(prompts), "betas": betas, "windows": windows, "sweep": rows}
    (out / "tilt_sweep.json").write_text(json.dumps(summary, indent=2))
    plot(summary, out / "tilt_sweep.png")
    print(json.dumps(summary))


def plot(summary: dict, path: Path) -> None:
    """Reward and verifier score against beta, a line per step window, plain sampling dashed."""
    betas, rows = summary["betas"], summary["sweep"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for window in summary["windows"]:
        picked = [rows[f"tilt@{b:g}/{window or 'all'}"] for b in betas]
        for ax, key in zip(axes, ("reward", "prompt_acc"), strict=True):
            ax.plot(betas, [r[key] for r in picked], marker="o", label=f"steps {window or 'all'}")
    for ax, key in zip(axes, ("reward", "prompt_acc"), strict=True):
        ax.axhline(rows["plain"][key], color="gray", ls="--", label="plain")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(betas, [f"{b:g}" for b in betas])
        ax.set_xlabel("beta (log h = V / beta)")
        ax.set_ylabel(key)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
