"""`AdjointMatchingLearner` and `EfficientAdjointMatchingLearner`: ranks of the DeepSpeed group that train the
generator toward p_base exp(lambda r) (`learner/adjoint_objective.py`). Like DRaFT they sample their own
rows inside the step (detached rollouts of the current weights), so no rollout worker is involved.

The reference u_pre is the starting weights run through the same module (`Learner.ref`); the reward is
differentiated through the decoder at each rollout's endpoint. Randomness: rows' noise from their seeds;
AM's trained steps and EAM's re-noising from (seed, step, micro-batch), so a step does the same thing
whichever learner a micro-batch lands on.
"""

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from diffusion.flow_model import FlowModel
from learner.adjoint_objective import (
    AdjointConfig, DDIMSteps, Endpoints, QuantileClip, am_loss, eam_loss, rollout_endpoints, stratified_steps,
)
from learner.draft_objective import DecodedReward
from learner.learner import Learner, LearnerSetup, Velocity, row_generator
from value.weighted_reward import RewardTermConfig, WeightedReward


@dataclass(kw_only=True)
class AdjointSetup(LearnerSetup):
    rewards: dict[str, RewardTermConfig]
    adjoint: AdjointConfig = field(default_factory=AdjointConfig)


class _AdjointLearner(Learner):
    """What AM and EAM share: the detached rollout of each micro-batch, its reward gradient, one optimizer step."""

    hooks = None  # the rollout's StepHooks (None: Euler ODE)

    def prepare(self, model: FlowModel) -> None:
        s = self.setup_cfg
        self.latent_shape = model.latent_shape(s.height, s.width)
        _, h, w = self.latent_shape
        self.times = model.schedule(s.adjoint.num_steps, h, w)
        with torch.no_grad():
            self.null = model.null_condition(s.adjoint.cfg_scale)
        reward = WeightedReward.from_config(s.rewards).to(self.device).eval().requires_grad_(False)
        self.score = DecodedReward(model, reward)
        self.policy = Velocity(self.engine)
        self.reference = Velocity(lambda *args: self._velocity_with(self.ref, *args))

    def loss(self, ends: Endpoints, cond, step: int, micro_batch: int) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def train_step(self, prompts: list[str], seeds: list[int], step: int) -> dict[str, float]:
        """One optimizer step on this rank's rows (a prompt and a noise seed each); step counts from 1."""
        s = self.setup_cfg

        def loss_of(rows, row_seeds, cond, null, micro_batch):
            ends = rollout_endpoints(self.policy, self.score, cond, rows, times=self.times, seeds=row_seeds,
                                     latent_shape=self.latent_shape, cfg=s.adjoint, null_cond=null, hooks=self.hooks)
            return self.loss(ends, cond, step, micro_batch)

        return self._step_on_own_rows(prompts, seeds, step, loss_of)


class AdjointMatchingLearner(_AdjointLearner):
    """AM: memoryless DDIM rollouts (adjoint.am.num_steps), the lean adjoint, the regression at
    adjoint.am.train_times stratified steps, AM's quantile clip (its EMA state is checkpointed per rank)."""

    def prepare(self, model: FlowModel) -> None:
        super().prepare(model)
        self.hooks = DDIMSteps(self.setup_cfg.adjoint.am.eta)
        self.clip = QuantileClip(self.setup_cfg.adjoint.am.clip_quantile)

    def loss(self, ends, cond, step, micro_batch):
        s = self.setup_cfg
        rng = np.random.default_rng([s.seed, step, micro_batch])
        steps = stratified_steps(s.adjoint.am.num_steps, s.adjoint.am.train_times, rng)
        return am_loss(self.policy, self.reference, ends, cond, times=self.times, steps=steps,
                       lam=s.adjoint.reward_multiplier, clip=self.clip)

    def save(self, folder: str) -> None:
        super().save(folder)
        state = torch.tensor([self.clip.value, float(self.clip.updates)], dtype=torch.float64)
        save_file({"clip": state}, os.path.join(folder, f"adjoint_clip_rank{self.rank}.safetensors"))

    @torch.no_grad()
    def load(self, folder: str) -> None:
        super().load(folder)
        value, updates = load_file(os.path.join(folder, f"adjoint_clip_rank{self.rank}.safetensors"))["clip"].tolist()
        self.clip.value, self.clip.updates = value, int(updates)


class EfficientAdjointMatchingLearner(_AdjointLearner):
    """EAM: Euler ODE endpoints (adjoint.eam.num_steps), the Tweedie terminal score, the closed-form target at
    adjoint.eam.train_times re-noised times per endpoint."""

    def loss(self, ends, cond, step, micro_batch):
        s = self.setup_cfg
        return eam_loss(self.policy, self.reference, ends, cond, lam=s.adjoint.reward_multiplier, cfg=s.adjoint.eam,
                        generator=row_generator(s.seed, step, micro_batch))


LEARNERS = {"am": AdjointMatchingLearner, "eam": EfficientAdjointMatchingLearner}
