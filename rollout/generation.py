"""Generate images for prompts with a flow model and score them with a reward model.

Sample i of prompt p gets seed `seed + p * samples_per_prompt + i`, so a run is reproducible and a
sample does not depend on the batch it was drawn in.
"""

import time
from dataclasses import dataclass

import torch

from diffusion.flow_model import FlowModel
from diffusion.sampling import SamplerConfig, sample
from value.reward_model import RewardModel


@dataclass
class ScoredSamples:
    """B = len(prompts) samples. images (B, 3, H, W) in [0, 1]; latents (B, C, h, w) clean; rewards (B,)."""

    prompts: list[str]
    seeds: list[int]
    images: torch.Tensor
    latents: torch.Tensor
    rewards: torch.Tensor
    seconds_sampling: float
    seconds_scoring: float

    def __post_init__(self):
        B = len(self.prompts)
        for name in ("images", "latents", "rewards"):
            if getattr(self, name).shape[0] != B:
                raise ValueError(f"{name} has {getattr(self, name).shape[0]} rows for {B} prompts")
        if not torch.isfinite(self.rewards).all():
            raise RuntimeError("the reward model returned NaN or inf; check its weights and the decoded images")


def expand_prompts(prompts: list[str], samples_per_prompt: int, seed: int) -> tuple[list[str], list[int]]:
    """Each prompt repeated `samples_per_prompt` times in a row, with one distinct seed per sample."""
    expanded = [p for p in prompts for _ in range(samples_per_prompt)]
    return expanded, [seed + k for k in range(len(expanded))]


@torch.no_grad()
def generate_and_score(
    model: FlowModel,
    reward: RewardModel,
    prompts: list[str],
    seeds: list[int],
    *,
    sampler: SamplerConfig,
    height: int,
    width: int,
    batch_size: int,
) -> ScoredSamples:
    """Full ODE/SDE rollouts (with CFG if configured), decoded and scored, in batches of `batch_size`."""
    C, h, w = model.latent_shape(height, width)
    times = model.schedule(sampler.num_steps, h, w)
    null = model.null_condition(sampler.cfg_scale)
    images, latents, rewards = [], [], []
    t_sample = t_score = 0.0
    for start in range(0, len(prompts), batch_size):
        chunk, chunk_seeds = prompts[start : start + batch_size], seeds[start : start + batch_size]
        tick = time.perf_counter()
        cond = model.encode_prompt(chunk)
        null_cond = null.index([0] * len(chunk)) if null is not None else None
        z0 = sample(model, cond, times=times, seeds=chunk_seeds, latent_shape=(C, h, w), config=sampler, null_cond=null_cond).final
        x = model.decode(z0)
        tock = time.perf_counter()
        rewards.append(reward(x, chunk).float().cpu())
        t_sample, t_score = t_sample + tock - tick, t_score + time.perf_counter() - tock
        images.append(x.float().cpu())
        latents.append(z0.float().cpu())
    return ScoredSamples(
        prompts=list(prompts),
        seeds=list(seeds),
        images=torch.cat(images),
        latents=torch.cat(latents),
        rewards=torch.cat(rewards),
        seconds_sampling=t_sample,
        seconds_scoring=t_score,
    )
