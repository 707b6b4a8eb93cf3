"""`GRPOLearner`: one rank of the DeepSpeed group that trains the policy with Flow-GRPO's loss.

Rollouts sample with the trained weights themselves (on-policy, `publish` gives the policy), take SDE
steps inside a window of the schedule and record each step's latents and log-probability
(`rollout/sde_window.py`). The learner replays the window's steps in order: the velocity of the
trained weights at z_k (with the rollout's CFG), the SDE step's Gaussian, the log-probability of the
recorded z_{k+1}, the clipped ratio against the recorded one (`learner/grpo_loss.py`). At a batch's
first update the ratio is 1 up to rounding (the check the maintainers ask for); later updates of the
same batch see ratios off 1, which the clip bounds.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from diffusion.flow_model import FlowModel
from diffusion.sampling import SamplerConfig, guided_velocity, sde_log_prob, sde_mean_std
from learner.grpo_loss import GRPOConfig, grpo_loss
from learner.learner import Learner, LearnerSetup, Velocity, on_cpu
from rollout.batch import BatchRefs, RolloutBatch


@dataclass(kw_only=True)
class GRPOSetup(LearnerSetup):
    """sampler: the rollouts' (its schedule and CFG scale are the policy's)."""

    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(num_steps=10))


class GRPOLearner(Learner):
    COPIES = ("ema", "ref")

    def accumulation_steps(self) -> int:
        return 1  # the update boundaries are set by hand (train_step), as NFTLearner does

    def prepare(self, model: FlowModel) -> None:
        s = self.setup_cfg
        C, h, w = model.latent_shape(s.height, s.width)
        self.times = model.schedule(s.sampler.num_steps, h, w)
        self.null = model.null_condition(s.sampler.cfg_scale)
        self.policy = Velocity(self.engine)
        self.reference = Velocity(lambda *args: self._velocity_with(self.ref, *args))

    def publish(self) -> dict[str, torch.Tensor] | None:
        """The trained weights (what on-policy rollouts sample with), on rank 0; called on every rank."""
        return on_cpu(self._trainable()) if self.rank == 0 else None

    def _step_loss(self, z: torch.Tensor, z_next: torch.Tensor, k: int, cond, old_log_prob, advantages):
        """Per-row loss and parts of SDE step k for rows at z (B, C, h, w) that went to z_next."""
        s, device = self.setup_cfg, self.device
        t, t_next = self.times[k : k + 2].tolist()  # one step, replayed: the loop over the schedule ran in the rollout
        t_batch = torch.full((z.shape[0],), t, device=device, dtype=z.dtype)
        null = self.null.index([0] * z.shape[0]).to(device) if self.null is not None else None
        u = guided_velocity(self.policy, z, t_batch, cond, null, s.sampler.cfg_scale)
        mean, std, nu = sde_mean_std(z, u, t, t_next, s.grpo.sde_noise)
        ref_mean = None
        if s.grpo.kl_weight > 0:
            with torch.no_grad():
                u_ref = guided_velocity(self.reference, z, t_batch, cond, null, s.sampler.cfg_scale)
                ref_mean = sde_mean_std(z, u_ref, t, t_next, s.grpo.sde_noise)[0]
        return grpo_loss(sde_log_prob(z_next, mean, std), old_log_prob, advantages, s.grpo, mean, ref_mean, nu)

    def train_step(self, shard: RolloutBatch | BatchRefs, advantages: torch.Tensor, step: int) -> dict[str, float]:
        """grpo.updates_per_batch optimizer steps on this rank's rows (advantages (n,): their group
        advantages), each on a contiguous part of them, its window's steps in order; then the EMA update.
        Returns this rank's mean loss terms (over rows and steps) and the ratio's range at the first update."""
        shard = shard.fetch()
        device, mb = self.device, self.cfg.micro_batch
        if len(shard) * self.world_size != self.setup_cfg.rows_per_step:
            raise ValueError(f"a shard of {len(shard)} rows on {self.world_size} learners; each step takes {self.setup_cfg.rows_per_step}")
        latents, old, start = shard.steps["latents"], shard.steps["log_probs"], shard.steps["start"]
        if not (start == start[0]).all():
            raise ValueError("the rows of one step must share their SDE window")
        k0, W = int(start[0]), old.shape[1]
        cond_all, cond_of = shard.cond.to(device), shard.cond_index()
        stats: dict[str, list[float]] = {}
        for update, part in enumerate(np.array_split(np.arange(len(shard)), self.setup_cfg.grpo.updates_per_batch)):
            passes = [(part[i : i + mb], j) for i in range(0, len(part), mb) for j in range(W)]
            for n, (rows, j) in enumerate(passes):
                rows = torch.as_tensor(rows)
                z, z_next = latents[rows, j].to(device), latents[rows, j + 1].to(device)
                per_row, parts = self._step_loss(z, z_next, k0 + j, cond_all.index(cond_of[rows]), old[rows, j].to(device),
                                                 advantages[rows].to(device))
                loss = per_row.sum() / (len(part) * W)  # the mean over the part's rows and the window's steps
                self.engine.set_gradient_accumulation_boundary(n == len(passes) - 1)
                self.engine.backward(loss, scale_wrt_gas=False)
                self.engine.step()
                for key, value in (("loss", per_row.detach()), *parts.items()):
                    stats.setdefault(key, []).extend(value.tolist())
                if update == 0:  # sampled with these very weights
                    stats.setdefault("first_ratio", []).extend(parts["ratio"].tolist())
        self._update_eval_ema(step)
        first = np.array(stats.pop("first_ratio"))
        out = {k: float(np.mean(v)) for k, v in stats.items()}
        return {**out, "first_update_ratio_dev": float(np.abs(first - 1).max()), "grad_norm": self._grad_norm()}
