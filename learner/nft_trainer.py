"""`NFTTrainer`: the single controller of a DiffusionNFT run (verl's RayPPOTrainer, OpenRLHF's fit).

Per step: rollout workers sample the step's prompts with the published old policy and score them;
rewards become optimality probabilities over the whole batch; the learner group takes one optimizer
step; the learners publish the new old-policy weights and the workers load them (version = step).
With train.max_staleness = k, up to k further batches are sampled while the learners train.

Everything random derives from (seed, step): the prompts of a step, the rollout seeds, and the
learners' timesteps and noise. A checkpoint therefore needs only weights, optimizer state and the
step, and a resumed synchronous run repeats the uninterrupted one exactly (same seed, CPU). With
max_staleness > 0 the batches in flight at the checkpoint are resampled with the restored weights, so
the resumed run is equivalent in distribution but not bit-identical.
"""

import json
import time
from collections import deque
from pathlib import Path

import numpy as np
import ray
from tqdm import tqdm

from diffusion.atomic_folder import read_checkpoint_state, write_checkpoint
from diffusion.image_grid import save_grid
from learner.learner_group import LearnerGroup
from learner.nft_config import NFTJobConfig
from learner.nft_learner import LearnerSetup
from learner.nft_loss import optimality_probability
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


class NFTTrainer:
    def __init__(self, cfg: NFTJobConfig, run_dir: Path, train_prompts: list[str], eval_prompts: list[str], verifier=None):
        self.cfg, self.run_dir = cfg, run_dir
        self.train_prompts, self.eval_prompts, self.verifier = train_prompts, eval_prompts, verifier
        timeout = cfg.cluster.timeout_s
        self.learners = LearnerGroup(
            LearnerSetup(
                model=cfg.model, finetune=cfg.finetune, nft=cfg.nft, learner=cfg.learner, rows_per_step=cfg.train.rows_per_step,
                rollout_steps=cfg.rollout.sampler.num_steps, height=cfg.height, width=cfg.width, seed=cfg.seed, device=cfg.device,
            ),
            timeout_s=timeout,
        )
        self.workers = RolloutWorkerGroup(
            cfg.rollout,
            dict(model=cfg.model, rewards=cfg.rewards, finetune=cfg.finetune, height=cfg.height, width=cfg.width, device=cfg.device),
            timeout_s=timeout,
        )
        self.log = RunLog(run_dir, cfg.logging)
        self.step, self.wall_offset = 0, 0.0

    # ---- one phase each --------------------------------------------------------------------
    def _launch_rollout(self, step: int) -> list:
        P, K, R = self.cfg.train.prompts_per_step, self.cfg.train.group_size, self.cfg.train.rows_per_step
        prompts = prompts_for_step(self.train_prompts, step, P, self.cfg.seed)
        rows = [p for p in prompts for _ in range(K)]
        groups = [(step - 1) * P + i // K for i in range(R)]
        seeds = [self.cfg.seed * 1_000_003 + step * R + i for i in range(R)]
        return self.workers.sample(rows, groups, seeds, self._stops(step, groups))

    def _stops(self, step: int, groups: list[int]) -> list[int] | None:
        """Partial rollouts: one stop step per prompt group, uniform over rollout.horizon's window."""
        window = self.cfg.rollout.stop_window
        if window is None:
            return None
        per_group = {g: int(np.random.default_rng([self.cfg.seed, step, g]).integers(window[0], window[1] + 1)) for g in set(groups)}
        return [per_group[g] for g in groups]

    def _sync(self, version: int) -> None:
        self.workers.load_weights(self.learners.publish(), version)

    def evaluate(self) -> dict[str, float]:
        """EMA weights, full ODE sampling of the evaluation prompts; a grid per evaluation."""
        k = self.cfg.eval.samples_per_prompt
        prompts = [p for p in self.eval_prompts for _ in range(k)]
        seeds = [self.cfg.seed + 10_000 + i for i in range(len(prompts))]
        out = self.workers.evaluate(self.learners.eval_weights(), prompts, seeds, self.cfg.eval.sampler)
        row = {"eval/reward": out.rewards.mean().item()}
        row.update({f"eval/reward/{k_}": v.mean().item() for k_, v in out.reward_terms.items()})
        if self.verifier is not None:
            row.update({f"eval/{k_}": v for k_, v in self.verifier.report(out.images, prompts).items()})
        save_grid(out.images[: 16 * k], self.run_dir / "samples" / f"eval_step_{self.step:06d}.png", columns=2 * k, scale=3)
        return row

    # ---- checkpoints -----------------------------------------------------------------------
    def save_checkpoint(self, wall: float) -> Path:
        state = {"step": self.step, "policy_version": self.step, "wall_seconds": wall,
                 "prompts_consumed": self.step * self.cfg.train.prompts_per_step}
        return write_checkpoint(self.run_dir / CHECKPOINTS, self.step, lambda tmp: self.learners.save(str(tmp)), state)

    def restore(self, checkpoint: Path) -> None:
        state = read_checkpoint_state(checkpoint)
        self.learners.load(str(checkpoint))
        self.step, self.wall_offset = int(state["step"]), float(state["wall_seconds"])
        self.log.truncate_after(self.step)

    # ---- the loop --------------------------------------------------------------------------
    def fit(self) -> dict:
        cfg, start = self.cfg, time.perf_counter()
        wall = lambda: self.wall_offset + time.perf_counter() - start  # noqa: E731
        self._sync(self.step)  # rollouts sample with the learners' old policy, also after a resume
        if self.step == 0:
            self.log.write({"step": 0, "wall_seconds": wall(), **self.evaluate()})
        pending: deque = deque()
        next_rollout = self.step + 1
        bar = tqdm(range(self.step + 1, cfg.train.steps + 1), desc="nft", unit="step", dynamic_ncols=True)
        for step in bar:
            tick = time.perf_counter()
            while len(pending) <= cfg.train.max_staleness and next_rollout <= cfg.train.steps:
                pending.append(self._launch_rollout(next_rollout))
                next_rollout += 1
            batch, worker_seconds = self.workers.collect(pending.popleft())
            waited = time.perf_counter() - tick
            assert step - 1 - batch.policy_version <= cfg.train.max_staleness, "a batch older than train.max_staleness"
            advantages, r = optimality_probability(batch.rewards, batch.groups, cfg.nft.adv_clip)
            t0 = time.perf_counter()
            stats = self.learners.train_step(batch, r, step)
            t1 = time.perf_counter()
            self.step = step
            self._sync(step)
            t2 = time.perf_counter()
            row = {
                "step": step, "wall_seconds": wall(), "policy_version": batch.policy_version,
                "reward": batch.rewards.mean().item(), "reward_std": batch.rewards.std().item(),
                "stop_time": batch.times.mean().item(),
                **{f"reward/{k}": v.mean().item() for k, v in batch.reward_terms.items()},
                "optimality_mean": r.mean().item(), "advantage_abs": advantages.abs().mean().item(), **stats,
                "time/rollout": worker_seconds.get("rollout", 0.0), "time/scoring": worker_seconds.get("scoring", 0.0),
                "time/rollout_wait": waited, "time/learner": t1 - t0, "time/sync": t2 - t1, "time/step": t2 - tick,
            }
            row["time/learner_idle"] = row["time/step"] - row["time/learner"]
            row["time/rollout_idle"] = max(0.0, row["time/step"] - row["time/rollout"] - row["time/scoring"])
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
            "rollout_seconds": sum(r["time/rollout"] + r["time/scoring"] for r in train),
            "learner_seconds": sum(r["time/learner"] for r in train),
            "sync_seconds": sum(r["time/sync"] for r in train),
            "base_per_family": {k.split("/")[-1]: v for k, v in base.items() if k.startswith("eval/prompt_acc/")},
            "final_per_family": {k.split("/")[-1]: v for k, v in final.items() if k.startswith("eval/prompt_acc/")},
            "run_dir": str(self.run_dir),
        }
        (self.run_dir / "summary.json").write_text(json.dumps(out, indent=2))
        return out

    def shutdown(self) -> None:
        self.log.close()
        for actor in self.learners.actors + self.workers.workers:
            ray.kill(actor)
        for pg in (self.learners.pg, self.workers.pg):
            ray.util.remove_placement_group(pg)
