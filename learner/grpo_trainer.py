"""`GRPOTrainer`: the controller of a Flow-GRPO run: NFT's loop (`NFTTrainer`) with an SDE window drawn
per step, group advantages for the learners instead of optimality probabilities, and on-policy weights."""

import numpy as np

from learner.grpo_config import GRPOJobConfig
from learner.grpo_learner import GRPOLearner, GRPOSetup
from learner.nft_loss import optimality_probability
from learner.nft_trainer import NFTTrainer
from rollout.sde_window import SDEWindow


class GRPOTrainer(NFTTrainer):
    name = "grpo"
    learner = GRPOLearner

    @staticmethod
    def learner_setup(cfg: GRPOJobConfig) -> GRPOSetup:
        return GRPOSetup(
            model=cfg.model, finetune=cfg.finetune, grpo=cfg.grpo, learner=cfg.learner, rows_per_step=cfg.train.rows_per_step,
            sampler=cfg.rollout.sampler, height=cfg.height, width=cfg.width, seed=cfg.seed, device=cfg.device,
        )

    def _window_end(self, step: int) -> int:
        first, last = self.cfg.window_ends()
        return int(np.random.default_rng([self.cfg.seed, step]).integers(first, last + 1))

    def _window(self, step: int) -> SDEWindow:
        end, w = self._window_end(step), self.cfg.grpo.window_size
        return SDEWindow(start=end - w if w else 0, stop=end, sde_noise=self.cfg.grpo.sde_noise)

    def _stops(self, step: int, groups: list[int]) -> list[int] | None:
        """The value stop: every row right after its step's window."""
        return None if self.cfg.rollout.stop_window is None else [self._window_end(step)] * len(groups)

    def _learner_signal(self, rewards, groups):
        """The learners weigh each row by its group advantage (the same tracker as NFT's: group mean, batch std)."""
        advantages, _ = optimality_probability(rewards, groups, self.cfg.grpo.adv_clip)
        return advantages, advantages
