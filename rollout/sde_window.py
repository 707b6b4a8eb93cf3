"""Flow-GRPO's rollout: SDE steps inside a window of the schedule, ODE steps elsewhere, and each SDE
step's log-probability under the weights that sampled it (what the learner's ratio divides by)."""

from dataclasses import dataclass, replace

import torch

from diffusion.sampling import SamplerConfig, StepHooks, per_sample_normal, sde_log_prob, sde_mean_std


@dataclass(frozen=True)
class SDEWindow:
    """Steps start .. stop - 1 of the schedule are SDE steps with noise level sde_noise (Flow-GRPO's a)."""

    start: int
    stop: int
    sde_noise: float

    def __post_init__(self):
        if not 0 <= self.start < self.stop:
            raise ValueError(f"an SDE window of steps {self.start}..{self.stop - 1} is empty")


class SDEWindowHooks(StepHooks):
    """The window's steps draw from `sde_mean_std`'s Gaussian (row i's noise from generator i) and record
    its log-probability; the other steps are the configured sampler's with its SDE noise off."""

    def __init__(self, window: SDEWindow):
        self.window = window
        self.log_probs: list[torch.Tensor] = []  # (B,) per window step, in order

    def step(self, k: int, z: torch.Tensor, u: torch.Tensor, t: float, t_next: float,
             generators: list[torch.Generator], config: SamplerConfig) -> torch.Tensor:
        if not self.window.start <= k < self.window.stop:
            return super().step(k, z, u, t, t_next, generators, replace(config, sde_noise=0.0))
        mean, std, _ = sde_mean_std(z, u, t, t_next, self.window.sde_noise)
        z_next = mean + std * per_sample_normal(tuple(z.shape[1:]), generators, z.device).to(z.dtype)
        self.log_probs.append(sde_log_prob(z_next, mean, std))
        return z_next
