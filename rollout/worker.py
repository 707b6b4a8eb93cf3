"""`RolloutWorker`: holds the generator and the training reward, samples groups of images with the
published policy weights, scores them, and hands back a `RolloutBatch` (RLlib's EnvRunner role).

A plain class: `rollout/worker_group.py` makes it a Ray actor, tests use it directly. It knows nothing
of the learners beyond the weights they publish and the version number that comes with them.
"""

import time
from dataclasses import dataclass, field

import torch

from diffusion.conditioning import Conditioning
from diffusion.flow_model import FlowModel
from diffusion.model_config import ModelConfig, build_flow_model
from diffusion.sampling import SamplerConfig, sample
from diffusion.trainable import FinetuneConfig, load_trainable_weights, make_trainable, trainable_weights
from rollout.batch import RolloutBatch
from value.weighted_reward import RewardTermConfig, WeightedReward


@dataclass(kw_only=True)
class RolloutConfig:
    """num_workers Ray actors, each with num_cpus / num_gpus (a cluster sets num_gpus: 1). sampler: the
    training rollouts' sampler (DiffusionNFT: a deterministic ODE without CFG). batch_size: samples per
    forward pass."""

    num_workers: int = 2
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(num_steps=10))
    batch_size: int = 32

    def __post_init__(self):
        if self.num_workers < 1 or self.batch_size < 1:
            raise ValueError(f"rollout.num_workers={self.num_workers} and rollout.batch_size={self.batch_size} must be >= 1")
        if self.num_cpus <= 0 or self.num_gpus < 0:
            raise ValueError(f"rollout.num_cpus={self.num_cpus} must be > 0 and rollout.num_gpus={self.num_gpus} >= 0")


@dataclass
class EvalSamples:
    """images (N, 3, H, W) in [0, 1]; rewards (N,) weighted; reward_terms {name: (N,)}."""

    prompts: list[str]
    images: torch.Tensor
    rewards: torch.Tensor
    reward_terms: dict[str, torch.Tensor]


class RolloutWorker:
    def __init__(
        self,
        model: ModelConfig,
        rewards: dict[str, RewardTermConfig],
        finetune: FinetuneConfig,
        rollout: RolloutConfig,
        *,
        height: int,
        width: int,
        device: str = "cpu",
        threads: int = 1,
    ):
        torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.model: FlowModel = build_flow_model(model).to(self.device).eval()
        make_trainable(self.model, finetune)
        self.reward = WeightedReward.from_config(rewards).to(self.device).eval()
        self.cfg = rollout
        self.latent_shape = self.model.latent_shape(height, width)
        self.version = 0

    def load_weights(self, weights: dict[str, torch.Tensor], version: int) -> int:
        """Load published policy weights; every batch sampled afterwards carries `version`."""
        load_trainable_weights(self.model, weights)
        self.version = version
        return version

    def policy_weights(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().cpu().clone() for n, p in trainable_weights(self.model).items()}

    @torch.no_grad()
    def _latents(self, prompts: list[str], seeds: list[int], sampler: SamplerConfig):
        """Clean latents (N, C, h, w) and the conditionings, in batches of cfg.batch_size."""
        C, h, w = self.latent_shape
        times = self.model.schedule(sampler.num_steps, h, w)
        null = self.model.encode_prompt([""]) if sampler.cfg_scale != 1.0 else None
        conds, latents = [], []
        for start in range(0, len(prompts), self.cfg.batch_size):
            chunk = prompts[start : start + self.cfg.batch_size]
            cond = self.model.encode_prompt(chunk)
            null_cond = null.index([0] * len(chunk)) if null is not None else None
            traj = sample(self.model, cond, times=times, seeds=seeds[start : start + len(chunk)],
                          latent_shape=(C, h, w), config=sampler, null_cond=null_cond)
            conds.append(cond)
            latents.append(traj.final)
        return torch.cat(latents), conds

    @torch.no_grad()
    def _score(self, latents: torch.Tensor, prompts: list[str]):
        """Decode and score in batches: (images, total (N,), {name: (N,)})."""
        images, totals, terms = [], [], []
        for start in range(0, len(prompts), self.cfg.batch_size):
            x = self.model.decode(latents[start : start + self.cfg.batch_size])
            total, parts = self.reward(x, prompts[start : start + x.shape[0]])
            images.append(x)
            totals.append(total)
            terms.append(parts)
        return torch.cat(images), torch.cat(totals), {k: torch.cat([t[k] for t in terms]) for k in terms[0]}

    def sample(self, prompts: list[str], groups: list[int], seeds: list[int]) -> RolloutBatch:
        """One row per (prompt, group id, seed): sample with the loaded weights, score, return CPU tensors."""
        tick = time.perf_counter()
        latents, conds = self._latents(prompts, seeds, self.cfg.sampler)
        tock = time.perf_counter()
        _, total, terms = self._score(latents, prompts)
        return RolloutBatch(
            prompts=list(prompts),
            cond=Conditioning.concat(conds).to("cpu", torch.float32),
            latents=latents.float().cpu(),
            groups=torch.tensor(groups, dtype=torch.long),
            seeds=torch.tensor(seeds, dtype=torch.long),
            rewards=total.cpu(),
            reward_terms={k: v.cpu() for k, v in terms.items()},
            policy_version=self.version,
            seconds={"rollout": tock - tick, "scoring": time.perf_counter() - tock},
        )

    def evaluate(self, weights: dict[str, torch.Tensor], prompts: list[str], seeds: list[int], sampler: SamplerConfig) -> EvalSamples:
        """Sample and score with `weights` (e.g. the EMA), then put the policy weights back."""
        policy = {n: p.detach().clone() for n, p in trainable_weights(self.model).items()}
        load_trainable_weights(self.model, weights)
        try:
            latents, _ = self._latents(prompts, seeds, sampler)
            images, total, terms = self._score(latents, prompts)
        finally:
            load_trainable_weights(self.model, policy)
        return EvalSamples(list(prompts), images.float().cpu(), total.cpu(), {k: v.cpu() for k, v in terms.items()})

