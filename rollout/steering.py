"""Inference-time steering behind one sampler interface: `Steerer(model, reward, value, cfg).sample(prompts, seeds)`.

Methods (`SteerConfig.method`):
- "plain": the stochastic sampler, one sample per prompt (DPS at scale 0).
- "best_of_n": fk.particles independent samples, the one with the highest reward kept.
- "dps": gradient guidance with the value (`rollout/guidance.py`).
- "tilt": the tilted velocity u - gamma (t / (1 - t)) grad log h toward p exp(r / beta), log h read as
  value / beta (`rollout/tilt.py`).
- "fk": FK steering with value potentials, and value-ranked local proposals when fk.proposals > 1
  (`rollout/particles.py`).
`value` (a `ValueConfig`, configs/value/) guides or weighs: stitched (StitchVM), tweedie (r(D(z_t - t u))), ...

Particle n of the prompt with seed s draws its noise from seed s + n * PARTICLE_STRIDE, so particle 0 is
the plain sample and DPS at scale 0 reproduces it exactly.
"""

import time
from dataclasses import dataclass, field

import torch

from diffusion.conditioning import Conditioning
from diffusion.sampling import SamplerConfig, per_sample_normal, seeded_generators
from rollout.guidance import GuidanceConfig, dps_sample
from rollout.particles import FKConfig, particle_sample
from rollout.tilt import TiltConfig, tilt_sample, value_log_h
from value.reward_model import RewardModel
from value.value_config import ValueConfig
from value.value_model import ValueModel

METHODS = ("plain", "best_of_n", "dps", "tilt", "fk")
PARTICLE_STRIDE = 1_000_003
RESAMPLE_SEED_OFFSET = 7_777_777


@dataclass(kw_only=True)
class SteerConfig:
    """sampler: the stochastic sampler every method shares (sde_noise > 0: FK needs distinct particles)."""

    method: str = "plain"
    value: ValueConfig = field(default_factory=ValueConfig)
    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(num_steps=20, cfg_scale=4.0, sde_noise=0.7))
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    tilt: TiltConfig = field(default_factory=TiltConfig)
    fk: FKConfig = field(default_factory=FKConfig)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"steer.method={self.method!r} is not one of {METHODS}")
        if self.method == "fk" and self.sampler.sde_noise == 0:
            raise ValueError("steer.method='fk' needs a stochastic sampler: set sampler.sde_noise > 0")

    @property
    def needs_value(self) -> bool:
        steps = self.sampler.num_steps
        return self.method in ("dps", "tilt") or (self.method == "fk" and bool(self.fk.resampling(steps) or self.fk.proposing(steps)))


@dataclass
class SteeredSamples:
    """One sample per prompt: latents (B, C, h, w) clean, images (B, 3, H, W) in [0, 1], rewards (B,)
    from the reward model (scored after sampling for methods that do not select by it).
    seconds: wall time of producing the samples, selection included, evaluation scoring not."""

    prompts: list[str]
    seeds: list[int]
    latents: torch.Tensor
    images: torch.Tensor
    rewards: torch.Tensor
    seconds: float
    value_calls: int = 0
    resamples: int = 0


class Steerer:
    def __init__(self, model, reward: RewardModel, value: ValueModel | None, cfg: SteerConfig, *, height: int, width: int):
        if cfg.needs_value and value is None:
            raise ValueError(f"steer.method={cfg.method!r} needs a value model (steer.value.kind={cfg.value.kind!r})")
        if value is not None and value.reads_velocity and getattr(value, "cfg_scale", None) != cfg.sampler.cfg_scale:
            raise ValueError("the Tweedie value must use the sampler's cfg_scale: it reuses the sampler's velocity")
        self.model, self.reward, self.value, self.cfg = model, reward, value, cfg
        self.latent_shape = model.latent_shape(height, width)

    def _noise(self, seeds: list[int], particles: int):
        """Initial latents (B * particles, C, h, w) and the per-row generators that drew them."""
        generators = seeded_generators([int(s) + n * PARTICLE_STRIDE for s in seeds for n in range(particles)])
        weight = next(self.model.transformer.parameters())
        return per_sample_normal(self.latent_shape, generators, weight.device).to(weight.dtype), generators

    def conditions(self, prompts: list[str]) -> tuple[Conditioning, Conditioning | None]:
        """The prompts' conditioning and, under CFG, the null prompt's (one per row)."""
        return self.model.conditions(prompts, self.cfg.sampler.cfg_scale)

    def sample(self, prompts: list[str], seeds: list[int]) -> SteeredSamples:
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds; give one seed per prompt")
        cfg, model = self.cfg, self.model
        times = model.schedule(cfg.sampler.num_steps, *self.latent_shape[1:])
        tick = time.perf_counter()
        if cfg.method in ("plain", "dps", "tilt"):
            z, generators = self._noise(seeds, 1)
            cond, null = self.conditions(prompts)
            if cfg.method == "tilt":
                z0 = tilt_sample(model, value_log_h(self.value, cfg.tilt.beta), z, cond, prompts, times=times,
                                 generators=generators, sampler=cfg.sampler, tilt=cfg.tilt, null=null)
                guided = len(cfg.tilt.guided_steps(cfg.sampler.num_steps))
            else:
                guidance = cfg.guidance if cfg.method == "dps" else GuidanceConfig(scale=0.0)
                z0 = dps_sample(model, self.value, z, cond, prompts, times=times, generators=generators,
                                sampler=cfg.sampler, guidance=guidance, null=null)
                guided = len(guidance.guided_steps(cfg.sampler.num_steps)) if guidance.scale > 0 else 0
            with torch.no_grad():
                images = model.decode(z0)
            seconds = time.perf_counter() - tick
            with torch.no_grad():
                rewards = self.reward(images, prompts).float()
            return SteeredSamples(list(prompts), list(seeds), z0, images, rewards, seconds, value_calls=guided * len(prompts))
        fk = self._particle_config()
        z, generators = self._noise(seeds, fk.particles)
        rows = [p for p in prompts for _ in range(fk.particles)]
        cond, null = self.conditions(rows)
        resample_generators = seeded_generators([int(s) + RESAMPLE_SEED_OFFSET for s in seeds])
        out = particle_sample(model, self.value, self.reward, z, cond, rows, times=times, generators=generators,
                              resample_generators=resample_generators, sampler=cfg.sampler, fk=fk, null=null)
        seconds = time.perf_counter() - tick
        return SteeredSamples(list(prompts), list(seeds), out.latents, out.images, out.rewards, seconds,
                              out.value_calls, out.resamples)

    def _particle_config(self) -> FKConfig:
        """best-of-N = fk.particles, never resampled or proposed; fk as configured."""
        fk = self.cfg.fk
        if self.cfg.method == "best_of_n":
            return FKConfig(particles=fk.particles, proposals=1, resample_steps="")
        return fk
