"""Flow-matching samplers: Euler ODE, an SDE, classifier-free guidance, and sampling that stops at step k
and returns the partial trajectory, all through one loop (`integrate`) whose steps `StepHooks` extend.

Time runs from t = 1 (noise) to t = 0 (clean). Every sample draws its noise from its own generator
seeded with its own seed, so a sample does not depend on which batch it was drawn in, and stopping
at step k gives exactly the prefix of the full trajectory.
"""

import math
from dataclasses import dataclass

import torch

from diffusion.conditioning import Conditioning


# nu_t^2 = 2 t / (1 - t) is g_t^2 of the forward process z_t = (1 - t) z0 + t eps, so this SDE is its
# exact time reversal: rolled out from a fixed z_t it draws z0 from the posterior p(z0 | z_t), which
# is what the value E[r(z0) | z_t] averages over (Monte Carlo values use it).
POSTERIOR_SDE_NOISE = 2**0.5


@dataclass(kw_only=True)
class SamplerConfig:
    """num_steps: Euler steps on the model's schedule. cfg_scale: 1 turns guidance off.
    sde_noise: a in the SDE's noise level nu_t = a sqrt(t / (1 - t)); 0 is the ODE."""

    num_steps: int = 25
    cfg_scale: float = 1.0
    sde_noise: float = 0.0

    def __post_init__(self):
        if self.num_steps < 1:
            raise ValueError(f"sampler.num_steps={self.num_steps} must be at least 1")
        if self.cfg_scale < 0:
            raise ValueError(f"sampler.cfg_scale={self.cfg_scale} must be >= 0 (1 turns guidance off)")
        if self.sde_noise < 0:
            raise ValueError(f"sampler.sde_noise={self.sde_noise} must be >= 0 (0 is the ODE)")


@dataclass
class Trajectory:
    """latents (K+1, B, C, h, w): z at times[0], ..., times[K]; times (K+1,), descending from 1.

    K is the number of steps taken: the full schedule, or the stop index of a partial rollout.
    """

    latents: torch.Tensor
    times: torch.Tensor

    def __post_init__(self):
        if self.latents.shape[0] != self.times.shape[0]:
            raise ValueError(f"{self.latents.shape[0]} latents but {self.times.shape[0]} times")

    @property
    def final(self) -> torch.Tensor:
        """The last latent (B, C, h, w): clean for a full rollout, z_tau for a partial one."""
        return self.latents[-1]

    @property
    def num_steps(self) -> int:
        return self.times.shape[0] - 1


def guided_velocity(
    model, z: torch.Tensor, t: torch.Tensor, cond: Conditioning, null_cond: Conditioning | None, cfg_scale: float
) -> torch.Tensor:
    """u_null + w (u_cond - u_null), both branches in one forward; w = 1 is a single plain pass."""
    if cfg_scale == 1.0:
        return model.velocity(z, t, cond)
    if null_cond is None:
        raise ValueError(f"cfg_scale={cfg_scale} needs null_cond (the encoded empty prompt)")
    both = model.velocity(torch.cat([z, z]), torch.cat([t, t]), Conditioning.concat([cond, null_cond]))
    u_cond, u_null = both.chunk(2)
    return u_null + cfg_scale * (u_cond - u_null)


def euler_step(z: torch.Tensor, u: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """ODE step from t down to t_next: z <- z - (t - t_next) u."""
    return z - (t - t_next) * u


def sde_mean_std(
    z: torch.Tensor, u: torch.Tensor, t: float, t_next: float, sde_noise: float
) -> tuple[torch.Tensor, float, float]:
    """The Euler-Maruyama step of the reverse SDE with the same marginals as the ODE, as a Gaussian:
    (mean (B, C, h, w), its std nu_t sqrt(t - t_next), nu_t).

    dz = [u - (nu^2 / 2) grad log p] dt + nu dW with grad log p = -(z + (1 - t) u) / t (StitchVM eq. 25)
    and nu_t^2 = a^2 t / (1 - t) (Flow-GRPO's schedule and step, `sd3_sde_with_logprob`). 1 - t is
    floored at the step size so the first step from t = 1 stays finite (Flow-GRPO: 1 - sigma_1 there).
    """
    dt = t - t_next
    nu2 = sde_noise**2 * t / max(1 - t, dt)
    drift = u + nu2 / (2 * t) * (z + (1 - t) * u)
    return z - dt * drift, (nu2 * dt) ** 0.5, nu2**0.5


def ddim_mean_std(z: torch.Tensor, u: torch.Tensor, t: float, t_next: float, eta: float) -> tuple[torch.Tensor, float]:
    """DDIM's step from t down to t_next for a flow, as a Gaussian: (mean (B, C, h, w), std).

    With x0 = z - t u and eps = z + (1 - t) u (Tweedie's estimates), mean = (1 - t_next) x0 +
    sqrt(t_next^2 - std^2) eps and std = eta t_next sqrt(v) / t, v = t^2 - a^2 t_next^2, a = (1 - t) / (1 - t_next).
    eta = 1 is the DDPM posterior q(z_{t_next} | z_t, x0): the memoryless SDE's step (Adjoint Matching's
    rollouts), exact given x0 and finite at t = 1; eta = 0 is the Euler step.
    """
    a = (1 - t) / (1 - t_next)
    std = eta * t_next * max(t**2 - a**2 * t_next**2, 0.0) ** 0.5 / t
    x0, eps = z - t * u, z + (1 - t) * u
    return (1 - t_next) * x0 + max(t_next**2 - std**2, 0.0) ** 0.5 * eps, std


def sde_log_prob(z_next: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """(B,) log-density of z_next under N(mean, std^2 I), averaged over its elements (Flow-GRPO's
    per-pixel mean; a ratio of two of them is the per-element geometric mean of the densities' ratio)."""
    log_p = -((z_next.detach() - mean) ** 2) / (2 * std**2) - math.log(std) - 0.5 * math.log(2 * math.pi)
    return log_p.flatten(1).mean(1)


def sde_step(
    z: torch.Tensor, u: torch.Tensor, t: float, t_next: float, noise: torch.Tensor, sde_noise: float
) -> torch.Tensor:
    """A draw of `sde_mean_std`'s Gaussian; noise: (B, C, h, w) standard normal."""
    mean, std, _ = sde_mean_std(z, u, t, t_next, sde_noise)
    return mean + std * noise


def per_sample_normal(shape: tuple[int, ...], generators: list[torch.Generator], device) -> torch.Tensor:
    """(len(generators), *shape) standard normal, row i from generator i (drawn on CPU, then moved)."""
    return torch.stack([torch.randn(shape, generator=g) for g in generators]).to(device)


def sampler_step(
    z: torch.Tensor, u: torch.Tensor, t: float, t_next: float, generators: list[torch.Generator], config: SamplerConfig
) -> torch.Tensor:
    """One step of the configured sampler from t down to t_next; the SDE's noise for row i comes from
    generators[i]. The step to t = 0 stays deterministic: noise injected there would remain in the sample."""
    if config.sde_noise > 0 and t_next > 0:
        noise = per_sample_normal(tuple(z.shape[1:]), generators, z.device).to(z.dtype)
        return sde_step(z, u, t, t_next, noise, config.sde_noise)
    return euler_step(z, u, t, t_next)


def seeded_generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per sample, seeded with its own seed: a sample's noise never depends on its batch."""
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def sample(
    model,
    cond: Conditioning,
    *,
    times: torch.Tensor,
    seeds: list[int],
    latent_shape: tuple[int, int, int],
    config: SamplerConfig,
    null_cond: Conditioning | None = None,
    stop: int | None = None,
    hooks: "StepHooks | None" = None,
) -> Trajectory:
    """Sample B = len(seeds) latents, stopping after `stop` steps (None: all of them).

    cond: B conditionings (one per sample); times (num_steps + 1,) from the model's schedule;
    latent_shape (C, h, w). Gradients flow if the caller enables them (or `hooks` does, per step).
    """
    if len(cond) != len(seeds):
        raise ValueError(f"{len(cond)} conditionings for {len(seeds)} seeds; give one seed per sample")
    generators = seeded_generators(seeds)
    z = per_sample_normal(latent_shape, generators, cond.prompt_embeds.device).to(cond.prompt_embeds.dtype)
    return integrate(model, z, cond, times=times, generators=generators, config=config, null_cond=null_cond,
                     stop=stop, hooks=hooks)


def rollout_from(
    model,
    z: torch.Tensor,
    cond: Conditioning,
    *,
    times: torch.Tensor,
    start: int,
    seeds: list[int],
    config: SamplerConfig,
    null_cond: Conditioning | None = None,
) -> Trajectory:
    """Continue from z (B, C, h, w) at times[start] to t = 0; the SDE's noise comes from `seeds`.

    The returned trajectory starts at z (latents[0]) and its times are times[start:].
    """
    if len(cond) != len(seeds) or z.shape[0] != len(seeds):
        raise ValueError(f"{z.shape[0]} latents, {len(cond)} conditionings, {len(seeds)} seeds: give one of each per sample")
    return integrate(model, z, cond, times=times, generators=seeded_generators(seeds), config=config,
                     null_cond=null_cond, start=start)


class StepHooks:
    """What a sampler adds to the plain loop of `integrate`, step by step (step k runs from times[k] to
    times[k + 1]; t_batch is times[k] per row). The defaults are the plain sampler: DRaFT differentiates
    its last steps (`grad_enabled`), DPS adds a value gradient (`velocity`, `step`), FK steering resamples
    and proposes particles (`step`)."""

    def grad_enabled(self, k: int) -> bool | None:
        """Whether step k builds a graph; None leaves the caller's mode."""
        return None

    def velocity(self, model, k: int, z: torch.Tensor, t_batch: torch.Tensor, cond: Conditioning,
                 null_cond: Conditioning | None, config: SamplerConfig) -> torch.Tensor:
        return guided_velocity(model, z, t_batch, cond, null_cond, config.cfg_scale)

    def step(self, k: int, z: torch.Tensor, u: torch.Tensor, t: float, t_next: float,
             generators: list[torch.Generator], config: SamplerConfig) -> torch.Tensor:
        return sampler_step(z, u, t, t_next, generators, config)


def integrate(
    model, z: torch.Tensor, cond: Conditioning, *, times: torch.Tensor, generators: list[torch.Generator],
    config: SamplerConfig, null_cond: Conditioning | None = None, start: int = 0, stop: int | None = None,
    hooks: StepHooks | None = None,
) -> Trajectory:
    """Steps start..stop-1 of the schedule from z (B, C, h, w) at times[start]: the package's one loop over
    a schedule. Row i's SDE noise comes from generators[i]."""
    num_steps = times.shape[0] - 1
    stop = num_steps if stop is None else stop
    if not 0 <= start <= stop <= num_steps:
        raise ValueError(f"start={start}, stop={stop}: outside 0..{num_steps} (the schedule's number of steps)")
    hooks = hooks or StepHooks()
    latents = [z]
    for k in range(start, stop):
        t, t_next = times[k].item(), times[k + 1].item()
        grad = hooks.grad_enabled(k)
        with torch.set_grad_enabled(torch.is_grad_enabled() if grad is None else grad):
            t_batch = torch.full((z.shape[0],), t, device=z.device, dtype=z.dtype)
            u = hooks.velocity(model, k, z, t_batch, cond, null_cond, config)
            z = hooks.step(k, z, u, t, t_next, generators, config)
        latents.append(z)
    return Trajectory(latents=torch.stack(latents), times=times[start : stop + 1].clone())
