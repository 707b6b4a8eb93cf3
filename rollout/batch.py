"""`RolloutBatch`: what a rollout worker hands the learners, one row per sample; `RolloutSummary`: what the
driver reads of it; `BatchRefs`: the rows left in Ray's object store, passed on by reference.

Samples of one prompt form a group (DiffusionNFT normalises rewards within it), and a batch holds one
encoding per distinct prompt, not per row (under SD3.5 a 333 x 4096 embedding, 24 rows a group). Every
row keeps the seed it was sampled with; the learners derive the row's training noise from it, so how a
batch is split across learners does not change what any row trains on.
"""

from dataclasses import dataclass, field
from typing import Any

import torch

from diffusion.conditioning import Conditioning
from rollout.actors import get


def distinct(prompts: list[str]) -> list[str]:
    """The prompts once each, in order of first appearance: the rows of a batch's `cond`."""
    return list(dict.fromkeys(prompts))


def encoding_index(prompts: list[str], encoded: list[str]) -> list[int]:
    """Each prompt's position in `encoded` (the prompts whose encodings a Conditioning holds, in order; a
    prompt listed twice, by two workers, is read at its first place)."""
    first: dict[str, int] = {}
    for k, p in enumerate(encoded):
        first.setdefault(p, k)
    return [first[p] for p in prompts]


@dataclass
class RolloutBatch:
    """N rows. cond: the encoding of each of `distinct(prompts)` (`cond_index` maps rows to it). latents
    (N, C, h, w): where each rollout stopped, at time `times` (N,): clean samples x0 (t = 0) of full
    rollouts, z_tau of partial ones. groups (N,) long: prompt group ids, unique across
    the whole training batch. seeds (N,) long. rewards (N,): the weighted sum of `reward_terms` (each
    (N,)), or the value of z_tau. policy_version: the published weights the rows were sampled with.
    seconds: wall time per phase ("rollout", "scoring") spent making these rows. steps: per-row tensors an
    objective adds (Flow-GRPO: its SDE window's latents (N, W + 1, C, h, w), their log-probabilities under
    the sampling weights (N, W) and the window's first step (N,))."""

    prompts: list[str]
    cond: Conditioning
    latents: torch.Tensor
    times: torch.Tensor
    groups: torch.Tensor
    seeds: torch.Tensor
    rewards: torch.Tensor
    reward_terms: dict[str, torch.Tensor]
    policy_version: int
    seconds: dict[str, float] = field(default_factory=dict)
    steps: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.prompts)
        if len(self.cond) != len(distinct(self.prompts)):
            raise ValueError(f"a rollout batch of {len(distinct(self.prompts))} distinct prompts has {len(self.cond)} encodings")
        rows = {"latents": self.latents.shape[0], "times": self.times.shape[0], "groups": self.groups.shape[0],
                "seeds": self.seeds.shape[0], "rewards": self.rewards.shape[0]}
        rows.update({f"reward_terms[{k}]": v.shape[0] for k, v in self.reward_terms.items()})
        rows.update({f"steps[{k}]": v.shape[0] for k, v in self.steps.items()})
        if any(r != n for r in rows.values()):
            raise ValueError(f"a rollout batch of {n} prompts has rows {rows}")

    def __len__(self) -> int:
        return len(self.prompts)

    def cond_index(self) -> torch.Tensor:
        """(N,) long: each row's entry of `cond`."""
        return torch.tensor(encoding_index(self.prompts, distinct(self.prompts)), dtype=torch.long)

    def rows(self, idx: slice) -> "RolloutBatch":
        prompts = self.prompts[idx]
        return RolloutBatch(
            prompts=prompts,
            cond=self.cond.index(encoding_index(distinct(prompts), distinct(self.prompts))),
            latents=self.latents[idx],
            times=self.times[idx],
            groups=self.groups[idx],
            seeds=self.seeds[idx],
            rewards=self.rewards[idx],
            reward_terms={k: v[idx] for k, v in self.reward_terms.items()},
            policy_version=self.policy_version,
            seconds=dict(self.seconds),
            steps={k: v[idx] for k, v in self.steps.items()},
        )

    def chunk(self, n: int) -> list["RolloutBatch"]:
        """n contiguous shards of equal size (one per learner); N must divide by n."""
        if len(self) % n:
            raise ValueError(f"{len(self)} rows do not split evenly over {n} learners")
        size = len(self) // n
        return [self.rows(slice(k * size, (k + 1) * size)) for k in range(n)]

    @staticmethod
    def concat(batches: list["RolloutBatch"]) -> "RolloutBatch":
        """Rows of all batches in order; the policy version is the oldest one, seconds are summed."""
        seconds: dict[str, float] = {}
        for b in batches:
            for k, v in b.seconds.items():
                seconds[k] = seconds.get(k, 0.0) + v
        prompts = [p for b in batches for p in b.prompts]
        encoded = [p for b in batches for p in distinct(b.prompts)]  # the rows of the batches' cond, in order
        return RolloutBatch(
            prompts=prompts,
            cond=Conditioning.concat([b.cond for b in batches]).index(encoding_index(distinct(prompts), encoded)),
            latents=torch.cat([b.latents for b in batches]),
            times=torch.cat([b.times for b in batches]),
            groups=torch.cat([b.groups for b in batches]),
            seeds=torch.cat([b.seeds for b in batches]),
            rewards=torch.cat([b.rewards for b in batches]),
            reward_terms={k: torch.cat([b.reward_terms[k] for b in batches]) for k in batches[0].reward_terms},
            policy_version=min(b.policy_version for b in batches),
            seconds=seconds,
            steps={k: torch.cat([b.steps[k] for b in batches]) for k in batches[0].steps},
        )

    def fetch(self) -> "RolloutBatch":
        """The rows themselves (a `BatchRefs` shard fetches them from the object store)."""
        return self

    def summary(self) -> "RolloutSummary":
        return RolloutSummary(rewards=self.rewards, groups=self.groups, times=self.times, reward_terms=self.reward_terms,
                              policy_version=self.policy_version, seconds=dict(self.seconds), batch_bytes=self.nbytes())

    def nbytes(self) -> int:
        tensors = [self.cond.prompt_embeds, self.cond.pooled, self.latents, self.times, self.groups, self.seeds, self.rewards,
                   *self.reward_terms.values(), *self.steps.values()]
        return sum(t.numel() * t.element_size() for t in tensors) + sum(len(p.encode()) for p in self.prompts)


@dataclass
class RolloutSummary:
    """What the driver reads of a RolloutBatch: rewards, group ids and stop times (N,), the reward terms,
    the policy version, the seconds per phase, and the size of the rows it leaves in the store."""

    rewards: torch.Tensor
    groups: torch.Tensor
    times: torch.Tensor
    reward_terms: dict[str, torch.Tensor]
    policy_version: int
    seconds: dict[str, float]
    batch_bytes: int

    def nbytes(self) -> int:
        tensors = [self.rewards, self.groups, self.times, *self.reward_terms.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    @staticmethod
    def concat(parts: list["RolloutSummary"]) -> "RolloutSummary":
        """In order; the oldest policy version; per phase the slowest part's seconds (what a step waits for)."""
        return RolloutSummary(
            rewards=torch.cat([p.rewards for p in parts]), groups=torch.cat([p.groups for p in parts]),
            times=torch.cat([p.times for p in parts]),
            reward_terms={k: torch.cat([p.reward_terms[k] for p in parts]) for k in parts[0].reward_terms},
            policy_version=min(p.policy_version for p in parts),
            seconds={k: max(p.seconds.get(k, 0.0) for p in parts) for k in parts[0].seconds},
            batch_bytes=sum(p.batch_bytes for p in parts),
        )


@dataclass
class BatchRefs:
    """A step's rows left in Ray's object store, in order: per piece, a reference to a worker's
    RolloutBatch and the rows [start, stop) taken from it. The driver passes these on without reading
    them; each learner fetches only its own shard's rows."""

    parts: list[tuple[Any, int, int]]

    def __len__(self) -> int:
        return sum(stop - start for _, start, stop in self.parts)

    def chunk(self, n: int) -> list["BatchRefs"]:
        """n contiguous shards of equal size, as `RolloutBatch.chunk` cuts the rows they refer to."""
        if len(self) % n:
            raise ValueError(f"{len(self)} rows do not split evenly over {n} learners")
        size, shards, current, filled = len(self) // n, [], [], 0
        for ref, start, stop in self.parts:
            while start < stop:
                take = min(stop - start, size - filled)
                current.append((ref, start, start + take))
                start, filled = start + take, filled + take
                if filled == size:
                    shards.append(BatchRefs(current))
                    current, filled = [], 0
        return shards

    def fetch(self) -> RolloutBatch:
        batches = get([ref for ref, _, _ in self.parts])
        return RolloutBatch.concat([b.rows(slice(start, stop)) for b, (_, start, stop) in zip(batches, self.parts, strict=True)])
