"""DRaFT's objective: sample with the trainable generator, keep gradients through the last K steps
before a stop, and maximise a differentiable score of the latent there (StitchVM eq. 63-64).

- DRaFT-K (draft.horizon=full): roll out to t = 0, decode, maximise the pixel reward r(D(z0)).
- DRaFT + value (draft.horizon=a-b): stop at a step tau drawn from a..b, maximise V(z_tau, t_tau). The
  rest of the rollout and the decoder are never run, so no graph exists past tau.

Both subtract a DRaFT+-style output regulariser toward the reference model: the mean squared difference
of the policy's and the reference's velocities at the K differentiated steps. Plain torch: the learner
(`learner/draft_learner.py`) passes its DeepSpeed engine in as the policy.
"""

from dataclasses import dataclass, field
from typing import Callable

import torch

from diffusion.conditioning import Conditioning
from diffusion.sampling import SamplerConfig, StepHooks, guided_velocity, sample
from diffusion.schedule import stop_window
from value.value_config import ValueConfig

Score = Callable[[torch.Tensor, torch.Tensor, list[str]], torch.Tensor]  # (z (B, C, h, w), t (B,), prompts) -> (B,)


@dataclass(kw_only=True)
class DraftConfig:
    """sampler: the training rollouts' sampler (the paper: 10 steps, CFG 1). horizon: "full" (DRaFT-K on
    the clean reward) | "a-b" (stop at a step drawn from a..b, scored by `value`, configs/value/).
    grad_steps: K, the differentiated steps just before the stop. reg_weight: lambda of the regulariser
    toward the reference (the paper: 0.01)."""

    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(num_steps=10))
    horizon: str = "full"
    grad_steps: int = 1
    reg_weight: float = 0.01
    value: ValueConfig = field(default_factory=ValueConfig)

    def __post_init__(self):
        window = self.stop_window
        if self.grad_steps < 1:
            raise ValueError(f"draft.grad_steps={self.grad_steps} must be at least 1")
        first = window[0] if window is not None else self.sampler.num_steps
        if self.grad_steps > first:
            raise ValueError(
                f"draft.grad_steps={self.grad_steps} exceeds the {first} steps taken before the earliest stop "
                f"(draft.horizon={self.horizon!r}); differentiate fewer steps or stop later"
            )
        if window is not None:
            self.value.check_path("draft.value", f"draft.horizon={self.horizon!r} maximises a value")
        if self.reg_weight < 0:
            raise ValueError(f"draft.reg_weight={self.reg_weight} must be >= 0")

    @property
    def stop_window(self) -> tuple[int, int] | None:
        return stop_window(self.horizon, self.sampler.num_steps, key="draft.horizon")


@dataclass
class GradTail:
    """The rollout's latent at the stop (B, C, h, w), differentiable in the trainable weights through
    the last K steps only; the times (K,) of those steps and the inputs and policy velocities there."""

    z: torch.Tensor
    t: float
    step_inputs: list[tuple[torch.Tensor, torch.Tensor]]  # (z_k detached, t_k (B,)) per differentiated step
    velocities: list[torch.Tensor]  # u_theta(z_k), with graph


class _DifferentiateLastSteps(StepHooks):
    """Steps from `first` on build a graph and keep their inputs and policy velocities."""

    def __init__(self, first: int):
        self.first, self.step_inputs, self.velocities = first, [], []

    def grad_enabled(self, k: int) -> bool:
        return k >= self.first

    def velocity(self, model, k, z, t_batch, cond, null_cond, config):
        u = super().velocity(model, k, z, t_batch, cond, null_cond, config)
        if k >= self.first:
            self.step_inputs.append((z.detach(), t_batch))
            self.velocities.append(u)
        return u


def rollout_with_grad_tail(
    policy, cond: Conditioning, *, times: torch.Tensor, seeds: list[int], latent_shape: tuple[int, int, int],
    sampler: SamplerConfig, stop: int, grad_steps: int, null_cond: Conditioning | None = None,
) -> GradTail:
    """Steps 0..stop-1 of the schedule from seeded noise; only the last `grad_steps` build a graph.
    policy: anything with .velocity(z, t, cond). Row i's noise comes from seeds[i], as in sampling.sample."""
    tail = _DifferentiateLastSteps(stop - grad_steps)
    trajectory = sample(policy, cond, times=times, seeds=seeds, latent_shape=latent_shape, config=sampler,
                        null_cond=null_cond, stop=stop, hooks=tail)
    return GradTail(z=trajectory.final, t=times[stop].item(), step_inputs=tail.step_inputs, velocities=tail.velocities)


def draft_loss(
    policy, reference, score: Score, cond: Conditioning, prompts: list[str], *, times: torch.Tensor, seeds: list[int],
    latent_shape: tuple[int, int, int], cfg: DraftConfig, stop: int, null_cond: Conditioning | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """-mean score(z_stop) + reg_weight * mean_k ||u_theta(z_k) - u_ref(z_k)||^2 (per element), over the
    K differentiated steps. reference: .velocity(z, t, cond), run without gradients."""
    tail = rollout_with_grad_tail(policy, cond, times=times, seeds=seeds, latent_shape=latent_shape, sampler=cfg.sampler,
                                  stop=stop, grad_steps=cfg.grad_steps, null_cond=null_cond)
    scores = score(tail.z, torch.full((len(prompts),), tail.t, device=tail.z.device, dtype=tail.z.dtype), prompts)
    if not torch.isfinite(scores).all():
        raise FloatingPointError("the DRaFT score returned NaN or inf; check the reward or draft.value")
    reg = torch.zeros((), device=tail.z.device)
    for (z_k, t_k), u in zip(tail.step_inputs, tail.velocities, strict=True):
        with torch.no_grad():
            u_ref = guided_velocity(reference, z_k, t_k, cond, null_cond, cfg.sampler.cfg_scale)
        reg = reg + (u - u_ref).pow(2).mean() / len(tail.velocities)
    loss = -scores.mean() + cfg.reg_weight * reg
    return loss, {"loss": loss.item(), "score": scores.mean().item(), "reg": reg.item(), "stop_time": tail.t}


class DecodedReward:
    """DRaFT-K's score: the pixel reward of the decoded clean latent, differentiable through the decoder."""

    def __init__(self, model, reward):
        self.model, self.reward = model, reward

    def __call__(self, z: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        total, _ = self.reward(self.model.decode(z), prompts)
        return total
