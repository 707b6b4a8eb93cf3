"""`Trainer`: the single controller of a training run (verl's RayPPOTrainer, OpenRLHF's fit), what the
objectives share: the learner group, the rollout workers that evaluate, the step loop, evaluation,
checkpoints, metrics and the summary. Subclasses (`NFTTrainer`, `DraftTrainer`) say what one step does.

Everything random derives from (seed, step), so a checkpoint needs only weights, optimizer state and
the step, and a resumed synchronous run repeats the uninterrupted one exactly (same seed, CPU).
"""

import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from diffusion.checkpoint import read_checkpoint_state, write_checkpoint
from diffusion.image_grid import save_grid
from learner.job_config import JobConfig
from learner.learner import Learner, LearnerSetup
from learner.learner_group import LearnerGroup
from learner.run_log import RunLog, plot_curves
from rollout.worker_group import RolloutWorkerGroup

CHECKPOINTS = "checkpoints"  # under the run directory


def prompts_for_step(prompts: list[str], step: int, per_step: int, seed: int) -> list[str]:
    """Step s (from 1) reads prompts (s-1)P .. sP-1 of a stream that visits the list in a fresh seeded
    order each epoch; the data cursor is a function of the step."""
    n, out = len(prompts), []
    for i in range((step - 1) * per_step, step * per_step):
        order = np.random.default_rng([seed, i // n]).permutation(n)
        out.append(prompts[order[i % n]])
    return out


class Trainer:
    name = "train"  # the progress bar's label

    def __init__(self, cfg: JobConfig, run_dir: Path, train_prompts: list[str], eval_prompts: list[str], verifier,
                 learner: type[Learner], setup: LearnerSetup):
        self.cfg, self.run_dir = cfg, run_dir
        self.train_prompts, self.eval_prompts, self.verifier = train_prompts, eval_prompts, verifier
        timeout = cfg.cluster.timeout_s
        self.learners = LearnerGroup(learner, setup, timeout_s=timeout, mode=cfg.cluster.mode)
        self.workers = RolloutWorkerGroup(
            cfg.rollout,
            dict(model=cfg.model, rewards=cfg.rewards, finetune=cfg.finetune, height=cfg.height, width=cfg.width, device=cfg.device),
            timeout_s=timeout, mode=cfg.cluster.mode,
        )
        self.log = RunLog(run_dir, cfg.logging)
        self.step, self.wall_offset = 0, 0.0

    # ---- what an objective decides ---------------------------------------------------------
    def start(self) -> None:
        """Before the first step of this process (also after a resume)."""

    def train_step(self, step: int) -> dict[str, float]:
        """One optimizer step: its metrics row (without step, wall_seconds and evaluation)."""
        raise NotImplementedError

    def timing_summary(self, train_rows: list[dict]) -> dict[str, float]:
        return {"learner_seconds": sum(r["time/learner"] for r in train_rows)}

    # ---- shared ------------------------------------------------------------------------------
    def step_seeds(self, step: int) -> list[int]:
        """The noise seeds of step `step`'s rows: distinct over steps and runs' seeds."""
        R = self.cfg.train.rows_per_step
        return [self.cfg.seed * 1_000_003 + step * R + i for i in range(R)]

    def evaluate(self) -> dict[str, float]:
        """EMA weights, full ODE sampling of the evaluation prompts; a grid per evaluation."""
        k = self.cfg.eval.samples_per_prompt
        prompts = [p for p in self.eval_prompts for _ in range(k)]
        seeds = [self.cfg.seed + 10_000 + i for i in range(len(prompts))]
        out = self.workers.evaluate(self.learners.eval_weights(), prompts, seeds, self.cfg.eval.sampler)
        row = {"eval/reward": out.rewards.mean().item(), "eval/reward_se": (out.rewards.std() / len(prompts) ** 0.5).item()}
        row.update({f"eval/reward/{k_}": v.mean().item() for k_, v in out.reward_terms.items()})
        if self.verifier is not None:
            row.update({f"eval/{k_}": v for k_, v in self.verifier.report(out.images, prompts).items()})
        save_grid(out.images[: 16 * k], self.run_dir / "samples" / f"eval_step_{self.step:06d}.png", columns=2 * k, scale=3,
                  labels=prompts[: 16 * k])
        return row

    def save_checkpoint(self, wall: float) -> Path:
        state = {"step": self.step, "policy_version": self.step, "wall_seconds": wall,
                 "prompts_consumed": self.step * self.cfg.train.prompts_per_step}
        return write_checkpoint(self.run_dir / CHECKPOINTS, self.step, lambda tmp: self.learners.save(str(tmp)), state)

    def restore(self, checkpoint: Path) -> None:
        state = read_checkpoint_state(checkpoint)
        self.learners.load(str(checkpoint))
        self.step, self.wall_offset = int(state["step"]), float(state["wall_seconds"])
        self.log.truncate_after(self.step)

    def fit(self) -> dict:
        cfg, start = self.cfg, time.perf_counter()
        wall = lambda: self.wall_offset + time.perf_counter() - start  # noqa: E731
        self.start()
        if self.step == 0:
            self.log.truncate_after(-1)  # a fresh start owns its run directory: an earlier attempt's rows go
            self.log.write({"step": 0, "wall_seconds": wall(), **self.evaluate()})
        bar = tqdm(range(self.step + 1, cfg.train.steps + 1), desc=self.name, unit="step", dynamic_ncols=True)
        for step in bar:
            row = {"step": step, **self.train_step(step)}
            self.step = step
            row["wall_seconds"] = wall()
            if (cfg.eval.every and step % cfg.eval.every == 0) or step == cfg.train.steps:
                row.update(self.evaluate())
            self.log.write(row)
            bar.set_postfix(reward=f"{row['reward']:.3f}", acc=f"{row.get('eval/prompt_acc', float('nan')):.3f}")
            if step % cfg.train.checkpoint_every == 0 or step == cfg.train.steps:
                self.save_checkpoint(wall())
        plot_curves(self.log.rows(), self.run_dir / "curves.png")
        return self.summary(wall())

    def summary(self, wall: float) -> dict:
        rows = self.log.rows()
        evals = [r for r in rows if "eval/reward" in r]
        train = [r for r in rows if "time/learner" in r]
        base, final = evals[0], evals[-1]
        out = {
            "base_prompt_acc": base.get("eval/prompt_acc"),
            "final_prompt_acc": final.get("eval/prompt_acc"),
            "base_reward": base["eval/reward"],
            "final_reward": final["eval/reward"],
            "steps": self.step,
            "wall_seconds": wall,
            **self.timing_summary(train),
            "base_per_family": {k.split("/")[-1]: v for k, v in base.items() if k.startswith("eval/prompt_acc/")},
            "final_per_family": {k.split("/")[-1]: v for k, v in final.items() if k.startswith("eval/prompt_acc/")},
            "run_dir": str(self.run_dir),
        }
        (self.run_dir / "summary.json").write_text(json.dumps(out, indent=2))
        return out

    def shutdown(self) -> None:
        self.log.close()
        self.learners.shutdown()
        self.workers.shutdown()
