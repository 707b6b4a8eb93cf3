"""A run's metrics: one JSON object per line in `metrics.jsonl` (always), mirrored to wandb (offline
unless configured otherwise), and the curves drawn from them."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class RunLog:
    def __init__(self, run_dir: Path, cfg):
        self.path = run_dir / "metrics.jsonl"
        self.path.touch()
        self.wandb = None
        if cfg.wandb != "disabled":
            import wandb

            self.wandb = wandb.init(
                project=cfg.project, dir=str(run_dir), mode=cfg.wandb, id=run_dir.name.replace("/", "-"), resume="allow",
                settings=wandb.Settings(silent=True),
            )

    def rows(self) -> list[dict]:
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def write(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.wandb is not None:
            self.wandb.log(row, step=row["step"])

    def truncate_after(self, step: int) -> None:
        """Drop rows past `step` (written after the checkpoint a run resumes from)."""
        kept = [r for r in self.rows() if r["step"] <= step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def close(self) -> None:
        if self.wandb is not None:
            self.wandb.finish()


def plot_curves(rows: list[dict], out: Path) -> None:
    """Training reward and evaluation reward / verifier score, against step and against wall time."""
    train = [r for r in rows if "time/learner" in r]
    evals = [r for r in rows if "eval/reward" in r]
    panels = [("reward", "eval/reward")] + ([("eval/prompt_acc", None)] if evals and "eval/prompt_acc" in evals[0] else [])
    fig, axes = plt.subplots(len(panels), 2, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for row_axes, (key, eval_key) in zip(axes, panels, strict=True):
        for ax, x in zip(row_axes, ("step", "wall_seconds"), strict=True):
            source = train if key == "reward" else evals
            ax.plot([r[x] for r in source], [r[key] for r in source], "-" if key == "reward" else "o-", label=key, lw=1)
            if eval_key:
                ax.plot([r[x] for r in evals], [r[eval_key] for r in evals], "o-", label=eval_key)
            ax.set_xlabel(x)
            ax.set_ylabel(key)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_runs(runs: dict[str, list[dict]], out: Path) -> None:
    """One curve per run (e.g. per rollout horizon): evaluation verifier score and reward vs wall time."""
    keys = ["eval/prompt_acc", "eval/reward"]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for name, rows in runs.items():
            evals = [r for r in rows if key in r]
            ax.plot([r["wall_seconds"] for r in evals], [r[key] for r in evals], "o-", label=name, lw=1)
        ax.set_xlabel("wall_seconds")
        ax.set_ylabel(key)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
