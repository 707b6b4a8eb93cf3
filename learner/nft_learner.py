"""`NFTLearner`: one rank of the DeepSpeed group that trains the policy with the DiffusionNFT loss.

Besides the copies every learner keeps (`learner/learner.py`: evaluation EMA, reference) it keeps the
old policy: the rollouts' sampler, an EMA of the trained weights on the official schedule, run by
swapping its tensors into the same module. The reference is the starting weights, for the KL term
(with LoRA that is the base model, since adapters start at zero).

Randomness: the timesteps and noise of a row come from (seed, step, the row's rollout seed), so a
step does the same thing whichever learner a row lands on and whether or not the run was resumed.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from diffusion.bridge import bridge
from diffusion.flow_model import FlowModel
from learner.learner import Learner, LearnerSetup, on_cpu, row_generator
from learner.nft_loss import NFTLossConfig, ema_update, nft_loss, old_policy_decay
from rollout.batch import RolloutBatch


@dataclass(kw_only=True)
class NFTSetup(LearnerSetup):
    """rows_per_step: prompts per step x group size; rollout_steps: the rollout sampler's steps (the
    training times are its times with t > 0)."""

    nft: NFTLossConfig = field(default_factory=NFTLossConfig)
    rollout_steps: int = 10


class NFTLearner(Learner):
    COPIES = ("old", "ema", "ref")

    def accumulation_steps(self) -> int:
        return super().accumulation_steps() * self.cfg.train_timesteps

    def prepare(self, model: FlowModel) -> None:
        s = self.setup_cfg
        C, h, w = model.latent_shape(s.height, s.width)
        self.train_times = model.schedule(s.rollout_steps, h, w)[:-1]  # the sampler's times with t > 0
        if self.cfg.train_timesteps > len(self.train_times):
            raise ValueError(
                f"learner.train_timesteps={self.cfg.train_timesteps} exceeds the rollout's {len(self.train_times)} steps"
            )

    def publish(self) -> dict[str, torch.Tensor] | None:
        """The old policy (what rollouts sample with), on rank 0; called on every rank, as eval_weights."""
        return on_cpu(self.old) if self.rank == 0 else None

    # ---- one optimizer step ----------------------------------------------------------------
    def _noise(self, shard: RolloutBatch, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row: train_timesteps distinct times of the schedule strictly above the row's stop time
        (all t > 0 for a clean sample), and their noise. Returns t (K, N) and eps (K, N, C, h, w)."""
        K = self.cfg.train_timesteps
        ts, eps = [], []
        for row_seed, tau in zip(shard.seeds.tolist(), shard.times.tolist(), strict=True):
            g = row_generator(self.setup_cfg.seed, step, row_seed)
            above = self.train_times[self.train_times > tau + 1e-6]
            if len(above) < K:
                raise ValueError(
                    f"a rollout stopped at t={tau:.3f} leaves {len(above)} training times above it, fewer than "
                    f"learner.train_timesteps={K}; stop later in the schedule (rollout.horizon) or train at fewer"
                )
            ts.append(above[torch.randperm(len(above), generator=g)[:K]])
            eps.append(torch.randn((K, *shard.latents.shape[1:]), generator=g))
        return torch.stack(ts, 1), torch.stack(eps, 1)

    def train_step(self, shard: RolloutBatch, r: torch.Tensor, step: int) -> dict[str, float]:
        """One optimizer step on this rank's rows (r: their optimality probabilities), then the old-policy
        and EMA updates. step counts from 1. Returns this rank's mean loss terms."""
        device, mb = self.setup_cfg.device, self.cfg.micro_batch
        if len(shard) * self.world_size != self.setup_cfg.rows_per_step:
            raise ValueError(f"a shard of {len(shard)} rows on {self.world_size} learners; each step takes {self.setup_cfg.rows_per_step}")
        t_all, eps_all = self._noise(shard, step)
        z_all, tau_all, cond_all = shard.latents.to(device), shard.times.to(device), shard.cond.to(device)
        stats: dict[str, list[float]] = {"loss": [], "policy_loss": [], "kl": []}
        for start in range(0, len(shard), mb):
            rows = slice(start, start + mb)
            z, tau, cond, rr = z_all[rows], tau_all[rows], cond_all.index(rows), r[rows].to(device)
            for k in range(self.cfg.train_timesteps):
                t, eps = t_all[k, rows].to(device), eps_all[k, rows].to(device)
                z_t, target = bridge(z, tau, t, eps)  # tau = 0: z_t = (1 - t) x0 + t eps, target eps - x0
                args = (z_t, t, cond.prompt_embeds, cond.pooled)
                with torch.no_grad():
                    v_old = self._velocity_with(self.old, *args)
                    v_ref = self._velocity_with(self.ref, *args) if self.setup_cfg.nft.kl_weight > 0 else None
                v_theta = self.engine(*args)
                loss, parts = nft_loss(v_theta, v_old, target, t, rr, self.setup_cfg.nft, v_ref)
                self.engine.backward(loss)
                self.engine.step()  # steps the optimizer only at the accumulation boundary
                stats["loss"].append(loss.item())
                for key, value in parts.items():
                    stats[key].append(value)
        trained = [p.detach() for p in self._trainable().values()]
        ema_update(list(self.old.values()), trained, old_policy_decay(step, self.cfg.old_decay_rate, self.cfg.old_decay_max))
        self._update_eval_ema(step)
        return {**{k: float(np.mean(v)) for k, v in stats.items()}, "grad_norm": self._grad_norm()}
