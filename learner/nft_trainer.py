"""`NFTTrainer`: the controller of a DiffusionNFT run.

Per step: rollout workers sample the step's prompts with the published old policy and score them;
rewards become optimality probabilities over the whole batch; the learner group takes one optimizer
step; the learners publish the new old-policy weights and the workers load them (version = step).
With train.max_staleness = k, up to k further batches are sampled while the learners train; the
batches in flight at a checkpoint are then resampled with the restored weights after a resume, so
that run is equivalent in distribution but not bit-identical.
"""

import time
from collections import deque
from pathlib import Path

import numpy as np

from learner.learner import Learner, LearnerSetup
from learner.nft_config import NFTJobConfig
from learner.nft_learner import NFTLearner, NFTSetup
from learner.nft_loss import optimality_probability
from learner.trainer import Trainer, prompts_for_step


class NFTTrainer(Trainer):
    name = "nft"
    learner: type[Learner] = NFTLearner

    def __init__(self, cfg: NFTJobConfig, run_dir: Path, train_prompts: list[str], eval_prompts: list[str], verifier=None):
        super().__init__(cfg, run_dir, train_prompts, eval_prompts, verifier, self.learner, self.learner_setup(cfg))
        self.pending: deque = deque()

    @staticmethod
    def learner_setup(cfg: NFTJobConfig) -> LearnerSetup:
        return NFTSetup(
            model=cfg.model, finetune=cfg.finetune, nft=cfg.nft, learner=cfg.learner, rows_per_step=cfg.train.rows_per_step,
            rollout_steps=cfg.rollout.sampler.num_steps, height=cfg.height, width=cfg.width, seed=cfg.seed, device=cfg.device,
        )

    def _launch_rollout(self, step: int) -> list:
        P, K, R = self.cfg.train.prompts_per_step, self.cfg.train.group_size, self.cfg.train.rows_per_step
        prompts = prompts_for_step(self.train_prompts, step, P, self.cfg.seed)
        rows = [p for p in prompts for _ in range(K)]
        groups = [(step - 1) * P + i // K for i in range(R)]
        return self.workers.sample(rows, groups, self.step_seeds(step), self._stops(step, groups), self._window(step))

    def _window(self, step: int):
        """The SDE window a step's rollouts record (Flow-GRPO); DiffusionNFT's ODE rollouts have none."""
        return None

    def _learner_signal(self, rewards, groups):
        """(group advantages, what the learners weigh each row by: DiffusionNFT's optimality probability r)."""
        return optimality_probability(rewards, groups, self.cfg.nft.adv_clip)

    def _stops(self, step: int, groups: list[int]) -> list[int] | None:
        """Partial rollouts: one stop step per prompt group, uniform over rollout.horizon's window."""
        window = self.cfg.rollout.stop_window
        if window is None:
            return None
        per_group = {g: int(np.random.default_rng([self.cfg.seed, step, g]).integers(window[0], window[1] + 1)) for g in set(groups)}
        return [per_group[g] for g in groups]

    def _sync(self, version: int) -> None:
        self.workers.load_weights(self.learners.publish(), version)

    def start(self) -> None:
        self._sync(self.step)  # rollouts sample with the learners' old policy, also after a resume
        self.pending.clear()
        self.next_rollout = self.step + 1

    def train_step(self, step: int) -> dict[str, float]:
        cfg, tick = self.cfg, time.perf_counter()
        while len(self.pending) <= cfg.train.max_staleness and self.next_rollout <= cfg.train.steps:
            self.pending.append(self._launch_rollout(self.next_rollout))
            self.next_rollout += 1
        batch, rows = self.workers.collect(self.pending.popleft())  # the rows stay in the store, for the learners
        waited = time.perf_counter() - tick
        assert step - 1 - batch.policy_version <= cfg.train.max_staleness, "a batch older than train.max_staleness"
        advantages, r = self._learner_signal(batch.rewards, batch.groups)
        t0 = time.perf_counter()
        stats = self.learners.train_step(rows, r, step=step)
        t1 = time.perf_counter()
        self._sync(step)
        t2 = time.perf_counter()
        row = {
            "policy_version": batch.policy_version, "data/staleness": step - 1 - batch.policy_version,
            "reward": batch.rewards.mean().item(), "reward_std": batch.rewards.std().item(),
            "stop_time": batch.times.mean().item(),
            **{f"reward/{k}": v.mean().item() for k, v in batch.reward_terms.items()},
            "optimality_mean": r.mean().item(), "advantage_abs": advantages.abs().mean().item(), **stats,
            "time/rollout": batch.seconds.get("rollout", 0.0), "time/scoring": batch.seconds.get("scoring", 0.0),
            "data/driver_bytes": batch.nbytes(), "data/batch_bytes": batch.batch_bytes,
            "time/rollout_wait": waited, "time/learner": t1 - t0, "time/sync": t2 - t1, "time/step": t2 - tick,
        }
        # Idle seconds per step. The workers sample one batch a step (at any max_staleness, once the pipeline is
        # full), so a step's seconds less a batch's sampling and scoring are their idle time, on average.
        row["time/learner_idle"] = row["time/step"] - row["time/learner"]
        row["time/rollout_idle"] = max(0.0, row["time/step"] - row["time/rollout"] - row["time/scoring"])
        return row

    def timing_summary(self, train_rows: list[dict]) -> dict[str, float]:
        return {
            "rollout_seconds": sum(r["time/rollout"] + r["time/scoring"] for r in train_rows),
            **super().timing_summary(train_rows),
            "sync_seconds": sum(r["time/sync"] for r in train_rows),
        }
