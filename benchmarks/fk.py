"""FK steering's cost vs reward: plain FK (Tweedie potentials) over a range of particle counts N, against
FK with the stitched value's potentials and M value-ranked local proposals per particle over an (N, M)
grid, with best-of-N beside them; same prompts and seeds. Reports the cost ratio at matched reward: the
cheapest FK + value setting that reaches plain FK's best reward, over that FK setting's cost.

    python benchmarks/fk.py                                     # the tiny world, CPU (~10 min)
    python benchmarks/fk.py --fk-particles 2,4 --value-particles 2 --proposals 2,4 --per-family 2

Cost is wall seconds per prompt, selection included (all N particles are decoded and scored at the
end, the sample being the best). Writes <out>/fk_cost_reward.{csv,png}; the last line is one JSON object.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from steer_runs import evaluate, job_config  # noqa: E402
from world.prompts import all_eval_prompts  # noqa: E402
from world.verifier import load_verifier  # noqa: E402


def matched_cost_ratio(rows: list[dict]) -> dict:
    """Plain FK's best reward, and the cheapest FK + value setting that reaches it (None if none does)."""
    fk = max((r for r in rows if r["method"] == "fk"), key=lambda r: r["reward"])
    reaching = [r for r in rows if r["method"] == "fk_value" and r["reward"] >= fk["reward"]]
    best = min(reaching, key=lambda r: r["seconds_per_sample"]) if reaching else None
    return {
        "fk_best_reward": fk["reward"], "fk_best_setting": fk["setting"], "fk_best_cost": fk["seconds_per_sample"],
        "fk_value_setting_at_match": best["setting"] if best else None,
        "cost_ratio_at_matched_reward": best["seconds_per_sample"] / fk["seconds_per_sample"] if best else None,
    }


def plot(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, select in [("best-of-N", lambda r: r["method"] == "best_of_n"), ("FK (Tweedie)", lambda r: r["method"] == "fk")]:
        pts = sorted((r["seconds_per_sample"], r["reward"]) for r in rows if select(r))
        ax.plot(*zip(*pts), marker="o", label=label)
    for m in sorted({r["proposals"] for r in rows if r["method"] == "fk_value"}):
        pts = sorted((r["seconds_per_sample"], r["reward"]) for r in rows if r["method"] == "fk_value" and r["proposals"] == m)
        ax.plot(*zip(*pts), marker="s", linestyle="--", label=f"FK + value, M = {m}")
    ax.set_xlabel("seconds per prompt")
    ax.set_ylabel("reward of the returned sample")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=8, help="evaluation prompts per task family")
    parser.add_argument("--samples", type=int, default=1, help="samples per prompt")
    parser.add_argument("--fk-particles", default="2,4,6,8")
    parser.add_argument("--value-particles", default="2,4,6")
    parser.add_argument("--proposals", default="2,4,8")
    parser.add_argument("--out", default="runs/benchmarks/fk")
    parser.add_argument("overrides", nargs="*", help="configs/steer.yaml overrides shared by every run")
    args = parser.parse_args()
    torch.set_num_threads(2)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    verifier = load_verifier(job_config(args.overrides).verifier)
    prompts = [p for p in all_eval_prompts(args.per_family) for _ in range(args.samples)]
    seeds = list(range(len(prompts)))
    settings = []
    for n in [int(x) for x in args.fk_particles.split(",")]:
        settings.append(("best_of_n", n, 1, ["steer.method=best_of_n", f"steer.fk.particles={n}"]))
        settings.append(("fk", n, 1, ["steer.method=fk", "steer.value.kind=tweedie", f"steer.fk.particles={n}", "steer.fk.proposals=1"]))
    for n in [int(x) for x in args.value_particles.split(",")]:
        for m in [int(x) for x in args.proposals.split(",")]:
            settings.append(("fk_value", n, m, ["steer.method=fk", "steer.value.kind=stitched", f"steer.fk.particles={n}",
                                                f"steer.fk.proposals={m}"]))
    rows = []
    for method, n, m, overrides in settings:
        row = {"method": method, "particles": n, "proposals": m, "setting": f"{method} N={n} M={m}",
               **evaluate([*args.overrides, *overrides], prompts, seeds, verifier)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    with open(out_dir / "fk_cost_reward.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out_dir / "fk_cost_reward.png")
    print(json.dumps({**matched_cost_ratio(rows), "samples": len(prompts), "out": str(out_dir), "rows": rows}))


if __name__ == "__main__":
    main()
