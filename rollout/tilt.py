"""Sampling from the reward-tilted distribution p(x0) exp(r(x0) / beta) by velocity guidance (seed 003).

With h_t(z) = E[exp(r(x0) / beta) | z_t = z], the tilted marginals have the score grad log p_t + grad log
h_t. In our convention (z_t = (1 - t) x0 + t eps) the velocity is u = -(z + t grad log p_t) / (1 - t), so
the tilted velocity is

    u* = u - gamma (t / (1 - t)) grad_z log h_t(z),

exact for gamma = 1 (tests/rollout/test_tilt.py checks it against a Gaussian base where h_t is known).
`log_h` is any differentiable estimate of log h_t: from a value V(z, t) ~ E[r | z_t], V / beta is its
first order in 1 / beta (`value_log_h`), the limit beta -> infinity in which the tilt and value-DPS meet.
At t = 1 the factor t / (1 - t) is floored at the step size, as the SDE's noise level is, and
grad log h_1 is 0 there anyway (z_1 says nothing of x0).
"""

from dataclasses import dataclass
from typing import Callable

import torch

from diffusion.conditioning import Conditioning
from diffusion.sampling import SamplerConfig, StepHooks, guided_velocity, integrate
from rollout.guidance import step_set
from value.value_model import ValueModel

LogH = Callable[[torch.Tensor, torch.Tensor, list[str]], torch.Tensor]  # (z (B, C, h, w), t (B,), prompts) -> (B,)


@dataclass(kw_only=True)
class TiltConfig:
    """beta: the temperature of the tilt p exp(r / beta). gamma: its strength (1: the exact tilt).
    max_norm: a clip on each sample's guidance term (t / (1 - t)) gamma grad log h, per element RMS; 0
    leaves it unclipped. steps: the guided step indices "a-b" (0-based, inclusive); "" guides every step."""

    beta: float = 0.05
    gamma: float = 1.0
    max_norm: float = 0.0
    steps: str = ""

    def __post_init__(self):
        if self.beta <= 0 or self.gamma < 0 or self.max_norm < 0:
            raise ValueError(f"tilt.beta={self.beta} must be > 0, tilt.gamma={self.gamma} and tilt.max_norm="
                             f"{self.max_norm} >= 0")
        step_set(self.steps, 1)

    def guided_steps(self, num_steps: int) -> set[int]:
        return step_set(self.steps, num_steps) if self.steps else set(range(num_steps))


def value_log_h(value: ValueModel, beta: float) -> LogH:
    """log h_t ~ V(z, t) / beta: a value of the plain reward read as the tilt's log h, to first order in 1 / beta."""
    return lambda z, t, prompts: value(z, t, prompts) / beta


def tilted_velocity(u: torch.Tensor, grad_log_h: torch.Tensor, t: float, dt: float, cfg: TiltConfig) -> torch.Tensor:
    """u - gamma (t / (1 - t)) grad log h, with 1 - t floored at the step size dt and each row's term clipped
    to an RMS of cfg.max_norm (0: no clip)."""
    term = cfg.gamma * t / max(1.0 - t, dt) * grad_log_h
    if cfg.max_norm > 0:
        rms = term.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12)
        term = term * (cfg.max_norm / rms).clamp(max=1.0).view(-1, *[1] * (term.dim() - 1))
    return u - term


class _Tilt(StepHooks):
    """On guided steps the velocity is the tilted one; grad log h by autograd through `log_h` alone (the
    denoiser's pass stays without a graph)."""

    def __init__(self, log_h: LogH, prompts: list[str], cfg: TiltConfig, times: torch.Tensor):
        self.log_h, self.prompts, self.cfg = log_h, prompts, cfg
        self.guided = cfg.guided_steps(len(times) - 1)
        ts = times.tolist()
        self.t, self.dt = ts[:-1], [t - t_next for t, t_next in zip(ts, ts[1:])]

    def velocity(self, model, k, z, t_batch, cond, null_cond, config):
        with torch.no_grad():
            u = guided_velocity(model, z, t_batch, cond, null_cond, config.cfg_scale)
        if k not in self.guided:
            return u
        with torch.enable_grad():
            x = z.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.log_h(x, t_batch, self.prompts).sum(), x)
        return tilted_velocity(u, grad, self.t[k], self.dt[k], self.cfg)


@torch.no_grad()
def tilt_sample(
    model, log_h: LogH, z: torch.Tensor, cond: Conditioning | None, prompts: list[str], *, times: torch.Tensor,
    generators: list[torch.Generator], sampler: SamplerConfig, tilt: TiltConfig, null: Conditioning | None = None,
) -> torch.Tensor:
    """Tilted sampling from the noise z (B, C, h, w) at times[0] to t = 0; returns the clean latents. Row i's
    SDE noise comes from generators[i]; with gamma = 0 this is plain sampling, draw for draw."""
    hooks = _Tilt(log_h, prompts, tilt, times)
    return integrate(model, z, cond, times=times, generators=generators, config=sampler, null_cond=null, hooks=hooks).final
