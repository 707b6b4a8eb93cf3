"""`DraftTrainer`: the controller of a DRaFT run. Per step the learners sample the step's prompts with
gradients and take one optimizer step (`DraftLearner`); the rollout workers only evaluate the EMA.
Objectives whose learners also sample their own rows (AM and EAM: `AdjointTrainer`) say which learner
and setup in `learner_setup`."""

import time
from pathlib import Path

from learner.draft_config import DraftJobConfig
from learner.draft_learner import DraftLearner, DraftSetup
from learner.learner import Learner, LearnerSetup
from learner.trainer import Trainer, prompts_for_step


class DraftTrainer(Trainer):
    name = "draft"

    def __init__(self, cfg: DraftJobConfig, run_dir: Path, train_prompts: list[str], eval_prompts: list[str], verifier=None):
        super().__init__(cfg, run_dir, train_prompts, eval_prompts, verifier, *self.learner_setup(cfg))

    @staticmethod
    def learner_setup(cfg: DraftJobConfig) -> tuple[type[Learner], LearnerSetup]:
        return DraftLearner, DraftSetup(
            model=cfg.model, finetune=cfg.finetune, rewards=cfg.rewards, draft=cfg.draft, learner=cfg.learner,
            rows_per_step=cfg.train.rows_per_step, height=cfg.height, width=cfg.width, seed=cfg.seed, device=cfg.device,
        )

    def train_step(self, step: int) -> dict[str, float]:
        P, K = self.cfg.train.prompts_per_step, self.cfg.train.group_size
        rows = [p for p in prompts_for_step(self.train_prompts, step, P, self.cfg.seed) for _ in range(K)]
        tick = time.perf_counter()
        stats = self.learners.train_step(rows, self.step_seeds(step), step=step)
        seconds = time.perf_counter() - tick
        # "reward": the score maximised (the pixel reward, or the value of z_tau), as NFT logs its rollouts'; AM and EAM:
        # the reward of their training rollouts
        return {"reward": stats.pop("score"), **stats, "time/learner": seconds, "time/step": seconds}
