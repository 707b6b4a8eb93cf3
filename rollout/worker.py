"""`RolloutWorker`: holds the generator and the training reward, samples groups of images with the
published policy weights, scores them, and hands back a `RolloutBatch` (RLlib's EnvRunner role).

A plain class: `rollout/worker_group.py` makes it a Ray actor, tests use it directly. It knows nothing
of the learners beyond the weights they publish and the version number that comes with them.
"""

import os
import time
from dataclasses import dataclass, field

import torch

from diffusion.conditioning import Conditioning
from diffusion.device import resolve_device
from diffusion.flow_model import FlowModel
from diffusion.model_config import ModelConfig, build_flow_model
from diffusion.sampling import SamplerConfig, sample
from diffusion.schedule import stop_window
from diffusion.trainable import FinetuneConfig, load_trainable_weights, make_trainable, trainable_weights
from rollout.actors import get
from rollout.batch import RolloutBatch, RolloutSummary, distinct, encoding_index
from rollout.sde_window import SDEWindow, SDEWindowHooks
from value.value_config import ValueConfig, build_frozen_value
from value.weighted_reward import RewardTermConfig, WeightedReward


@dataclass(kw_only=True)
class RolloutConfig:
    """num_workers Ray actors, each with num_cpus / num_gpus (a cluster sets num_gpus: 1). sampler: the
    training rollouts' sampler (DiffusionNFT: a deterministic ODE without CFG). batch_size: samples per
    forward pass.

    horizon: "full" (sample to t = 0, decode, score with the pixel reward) | "k" (stop after step k of
    the sampler's schedule) | "a-b" (a stop drawn per prompt group from steps a..b); a partial rollout's
    z_tau is scored by `value` (configs/value/: a stitched value exported by python launch/stitch.py, or
    the Tweedie ablation, the base generator's one-step estimate decoded and scored by the pixel reward).

    max_restarts: how often Ray restarts a worker whose process died; its batch in flight is asked for
    again (same prompts, groups and seeds) with the weights it was asked for.
    """

    num_workers: int = 2
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(num_steps=10))
    batch_size: int = 32
    horizon: str = "full"
    value: ValueConfig = field(default_factory=ValueConfig)
    max_restarts: int = 3

    def __post_init__(self):
        if self.max_restarts < 0:
            raise ValueError(f"rollout.max_restarts={self.max_restarts} must be >= 0")
        if self.num_workers < 1 or self.batch_size < 1:
            raise ValueError(f"rollout.num_workers={self.num_workers} and rollout.batch_size={self.batch_size} must be >= 1")
        if self.num_cpus <= 0 or self.num_gpus < 0:
            raise ValueError(f"rollout.num_cpus={self.num_cpus} must be > 0 and rollout.num_gpus={self.num_gpus} >= 0")
        window = self.stop_window
        if window is not None:
            self.value.check_path("rollout.value", f"rollout.horizon={self.horizon!r} scores partial rollouts")

    @property
    def stop_window(self) -> tuple[int, int] | None:
        return stop_window(self.horizon, self.sampler.num_steps, key="rollout.horizon")


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
        self.device = resolve_device(device)  # "auto": cuda where Ray gave this actor a GPU
        self.model: FlowModel = build_flow_model(model).to(self.device).eval()
        make_trainable(self.model, finetune)
        self.reward = WeightedReward.from_config(rewards).to(self.device).eval()
        self.cfg = rollout
        self.value = None
        if rollout.stop_window is not None:
            self.value = build_frozen_value(rollout.value, model, self.reward, key="rollout.value")
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
    def _latents(self, prompts: list[str], seeds: list[int], sampler: SamplerConfig, stops: list[int] | None = None,
                 window: SDEWindow | None = None):
        """Latents where each row stops (N, C, h, w; clean without `stops`), their times (N,), the
        encoding of each distinct prompt (`distinct(prompts)`: a group's prompt is encoded once) and, with
        an SDE `window` (Flow-GRPO), its latents (N, W + 1, C, h, w), log-probabilities (N, W) and first
        step (N,) as RolloutBatch.steps; rows sharing a stop step are batched together, cfg.batch_size at a time."""
        C, h, w = self.latent_shape
        times = self.model.schedule(sampler.num_steps, h, w)
        stops = stops if stops is not None else [sampler.num_steps] * len(prompts)
        null = self.model.null_condition(sampler.cfg_scale)
        once = distinct(prompts)
        encoded = Conditioning.concat([self.model.encode_prompt(once[s : s + self.cfg.batch_size])
                                       for s in range(0, len(once), self.cfg.batch_size)])
        cond = encoded.index(encoding_index(prompts, once))  # a row's own, for sampling
        latents = torch.empty(len(prompts), C, h, w, device=self.device, dtype=cond.prompt_embeds.dtype)
        steps = {}
        if window is not None:
            if min(stops) < window.stop:
                raise ValueError(f"a row stops at step {min(stops)}, inside the SDE window of steps {window.start}..{window.stop - 1}")
            W = window.stop - window.start
            steps = {"latents": torch.empty(len(prompts), W + 1, C, h, w, dtype=latents.dtype),
                     "log_probs": torch.empty(len(prompts), W), "start": torch.full((len(prompts),), window.start)}
        for stop in sorted(set(stops)):
            rows = [i for i, k in enumerate(stops) if k == stop]
            for start in range(0, len(rows), self.cfg.batch_size):
                idx = rows[start : start + self.cfg.batch_size]
                null_cond = null.index([0] * len(idx)) if null is not None else None
                hooks = SDEWindowHooks(window) if window is not None else None
                traj = sample(self.model, cond.index(idx), times=times, seeds=[seeds[i] for i in idx],
                              latent_shape=(C, h, w), config=sampler, null_cond=null_cond, stop=stop, hooks=hooks)
                latents[idx] = traj.final
                if hooks is not None:
                    steps["latents"][idx] = traj.latents[window.start : window.stop + 1].transpose(0, 1).cpu()
                    steps["log_probs"][idx] = torch.stack(hooks.log_probs, 1).float().cpu()
        return latents, times[torch.tensor(stops)], encoded, steps

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

    @torch.no_grad()
    def _value(self, latents: torch.Tensor, t: torch.Tensor, prompts: list[str]):
        """The value (rollout.value) of partial rollouts, as (total (N,), {"value": (N,)})."""
        values = torch.cat([
            self.value(latents[s : s + self.cfg.batch_size], t[s : s + self.cfg.batch_size].to(latents), prompts[s : s + self.cfg.batch_size])
            for s in range(0, len(prompts), self.cfg.batch_size)
        ]).float()
        if not torch.isfinite(values).all():
            raise FloatingPointError(f"the {self.cfg.value.kind} value returned NaN or inf; check rollout.value and the reward")
        return values, {"value": values}

    def sample(self, prompts: list[str], groups: list[int], seeds: list[int], stops: list[int] | None = None,
               window: SDEWindow | None = None) -> RolloutBatch:
        """One row per (prompt, group id, seed[, stop step]): sample with the loaded weights (SDE steps in
        `window`, recorded in the batch's steps), score (the pixel reward on clean samples, the value on
        partial ones), return CPU tensors."""
        if (stops is None) != (self.value is None):
            raise ValueError("stop steps are given exactly when rollout.horizon is partial")
        tick = time.perf_counter()
        latents, t, cond, steps = self._latents(prompts, seeds, self.cfg.sampler, stops, window)
        tock = time.perf_counter()
        if self.value is None:
            _, total, terms = self._score(latents, prompts)
        else:
            total, terms = self._value(latents, t, prompts)
        return RolloutBatch(
            prompts=list(prompts),
            cond=cond.to("cpu", torch.float32),
            latents=latents.float().cpu(),
            times=t.float().cpu(),
            groups=torch.tensor(groups, dtype=torch.long),
            seeds=torch.tensor(seeds, dtype=torch.long),
            rewards=total.cpu(),
            reward_terms={k: v.cpu() for k, v in terms.items()},
            policy_version=self.version,
            seconds={"rollout": tock - tick, "scoring": time.perf_counter() - tock},
            steps=steps,
        )

    def sample_and_summarise(self, published: tuple[list, int], prompts: list[str], groups: list[int], seeds: list[int],
                             stops: list[int] | None = None, window: SDEWindow | None = None) -> tuple[RolloutSummary, RolloutBatch]:
        """`sample` with the published weights asked for, returned as two objects: what the driver reads, and
        the rows the learners fetch (called with two return references, so the rows stay in the object
        store). published: ([a reference to the weights], their version); a worker that has another
        version (one Ray restarted) loads them first, so a batch asked for again is sampled as asked."""
        (weights,), version = published
        if version != self.version:
            self.load_weights(get(weights), version)
        batch = self.sample(prompts, groups, seeds, stops, window)
        return batch.summary(), batch

    def pid(self) -> int:
        return os.getpid()

    def evaluate(self, weights: dict[str, torch.Tensor], prompts: list[str], seeds: list[int], sampler: SamplerConfig) -> EvalSamples:
        """Sample and score with `weights` (e.g. the EMA), then put the policy weights back."""
        policy = {n: p.detach().clone() for n, p in trainable_weights(self.model).items()}
        load_trainable_weights(self.model, weights)
        try:
            latents, _, _, _ = self._latents(prompts, seeds, sampler)
            images, total, terms = self._score(latents, prompts)
        finally:
            load_trainable_weights(self.model, policy)
        return EvalSamples(list(prompts), images.float().cpu(), total.cpu(), {k: v.cpu() for k, v in terms.items()})

