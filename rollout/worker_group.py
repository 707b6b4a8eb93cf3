"""`RolloutWorkerGroup`: the rollout workers as Ray actors, with one call per phase (load weights,
sample, evaluate) that fans out over the workers and returns when all are done."""

import numpy as np
import ray
import torch

from diffusion.sampling import SamplerConfig
from rollout.batch import BatchRefs, RolloutSummary
from rollout.placement import in_bundle, reserve
from rollout.worker import EvalSamples, RolloutConfig, RolloutWorker


def _split(n: int, parts: int) -> list[slice]:
    bounds = np.linspace(0, n, parts + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


class RolloutWorkerGroup:
    def __init__(self, cfg: RolloutConfig, worker_kwargs: dict, *, timeout_s: float):
        self.pg = reserve("rollout", cfg.num_workers, cfg.num_cpus, cfg.num_gpus, timeout_s)
        actor = ray.remote(RolloutWorker)
        threads = max(1, int(cfg.num_cpus))
        self.workers = [
            actor.options(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, scheduling_strategy=in_bundle(self.pg, i)).remote(
                rollout=cfg, threads=threads, **worker_kwargs
            )
            for i in range(cfg.num_workers)
        ]
        self.loading: list["ray.ObjectRef"] = []

    def load_weights(self, weights: "ray.ObjectRef", version: int) -> None:
        """Every worker loads the same published weights (one object in the store, read by all). Returns at
        once: an actor runs one caller's calls in order, so a worker loads them after the batch it is
        sampling and before any batch asked for later, and the driver need not wait. A failed load is
        raised at the next call (the previous loads are long done by then)."""
        ray.get(self.loading)
        self.loading = [w.load_weights.remote(weights, version) for w in self.workers]

    def sample(self, prompts: list[str], groups: list[int], seeds: list[int], stops: list[int] | None = None) -> list[tuple]:
        """Start sampling, rows split contiguously over the workers; `collect` the pending references."""
        return [
            (w.sample_and_summarise.options(num_returns=2).remote(prompts[s], groups[s], seeds[s], stops[s] if stops is not None else None),
             s.stop - s.start)
            for w, s in zip(self.workers, _split(len(prompts), len(self.workers)), strict=True)
        ]

    @staticmethod
    def collect(pending: list[tuple]) -> tuple[RolloutSummary, BatchRefs]:
        """What the driver reads of the batch (per phase, the slowest worker's seconds: what the step
        waited for), and the references to its rows, which stay in the object store for the learners."""
        summaries: list[RolloutSummary] = ray.get([refs[0] for refs, _ in pending])
        return RolloutSummary.concat(summaries), BatchRefs([(refs[1], 0, rows) for refs, rows in pending])

    def evaluate(self, weights: "ray.ObjectRef", prompts: list[str], seeds: list[int], sampler: SamplerConfig) -> EvalSamples:
        parts: list[EvalSamples] = ray.get([
            w.evaluate.remote(weights, prompts[s], seeds[s], sampler)
            for w, s in zip(self.workers, _split(len(prompts), len(self.workers)), strict=True)
        ])
        return EvalSamples(
            prompts=[p for part in parts for p in part.prompts],
            images=torch.cat([p.images for p in parts]),
            rewards=torch.cat([p.rewards for p in parts]),
            reward_terms={k: torch.cat([p.reward_terms[k] for p in parts]) for k in parts[0].reward_terms},
        )
