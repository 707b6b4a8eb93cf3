"""`DraftLearner`: one rank of the DeepSpeed group that trains the generator by DRaFT: it samples its
own rows with gradients (`learner/draft_objective.py`) inside the step, so no rollout worker is involved.

The score is the training reward of the decoded clean sample (draft.horizon=full, DRaFT-K) or the
stitched value of z_tau (DRaFT + value). The value's backbone is a separate frozen copy of the base
generator, never the trained module: with full finetuning the trained weights are the backbone's own,
and with LoRA a switch that turns the adapters off for the value's pass would tie the value's input to
the policy module's state mid-graph. The copy costs one backbone of memory (the value runs only its
first i blocks); reward and value weights are frozen, so gradients reach only the trainable weights.

Randomness: the rows' noise comes from their seeds; the stop step of micro-batch j of a step from
(seed, step, j), so a step does the same thing whichever learner a micro-batch lands on.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from diffusion.flow_model import FlowModel
from learner.draft_objective import DecodedReward, DraftConfig, draft_loss
from learner.learner import Learner, LearnerSetup, Velocity
from value.value_config import build_frozen_value
from value.weighted_reward import RewardTermConfig, WeightedReward


@dataclass(kw_only=True)
class DraftSetup(LearnerSetup):
    """rows_per_step: the prompts (x group size) sampled and differentiated per step, over all ranks."""

    rewards: dict[str, RewardTermConfig]
    draft: DraftConfig = field(default_factory=DraftConfig)


class DraftLearner(Learner):
    def prepare(self, model: FlowModel) -> None:
        s, device = self.setup_cfg, self.device
        self.latent_shape = model.latent_shape(s.height, s.width)
        _, h, w = self.latent_shape
        self.times = model.schedule(s.draft.sampler.num_steps, h, w)
        with torch.no_grad():
            self.null = model.null_condition(s.draft.sampler.cfg_scale)
        reward = WeightedReward.from_config(s.rewards).to(device).eval().requires_grad_(False)
        if s.draft.stop_window is None:
            self.score = DecodedReward(model, reward)
        else:
            self.score = build_frozen_value(s.draft.value, s.model, reward, key="draft.value").eval().requires_grad_(False)
        self.policy = Velocity(self.engine)
        self.reference = Velocity(lambda *args: self._velocity_with(self.ref, *args))

    def stop_for(self, step: int, micro_batch: int) -> int:
        """The step micro-batch `micro_batch` (counted over all ranks) stops after: the schedule's end
        for DRaFT-K, else uniform over draft.horizon's window."""
        window = self.setup_cfg.draft.stop_window
        if window is None:
            return self.setup_cfg.draft.sampler.num_steps
        return int(np.random.default_rng([self.setup_cfg.seed, step, micro_batch]).integers(window[0], window[1] + 1))

    def train_step(self, prompts: list[str], seeds: list[int], step: int) -> dict[str, float]:
        """One optimizer step on this rank's rows (a prompt and a noise seed each); step counts from 1.
        Returns this rank's mean loss terms."""
        s = self.setup_cfg

        def loss_of(rows, row_seeds, cond, null, micro_batch):
            return draft_loss(self.policy, self.reference, self.score, cond, rows, times=self.times, seeds=row_seeds,
                              latent_shape=self.latent_shape, cfg=s.draft, stop=self.stop_for(step, micro_batch), null_cond=null)

        return self._step_on_own_rows(prompts, seeds, step, loss_of)
