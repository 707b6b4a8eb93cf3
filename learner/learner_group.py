"""`LearnerGroup`: learners (`NFTLearner`, `DraftLearner`) as Ray actors forming one DeepSpeed process group.

Rank 0 is created first and picks the rendezvous (its node's address and a free port); the other ranks
are created with it, then all join at once (OpenRLHF's pattern). Each call fans out to every rank and
returns when all are done: calls that gather weights are collectives and must run on every rank.
"""

import numpy as np
import ray
import torch

from learner.learner import Learner, LearnerSetup
from rollout.placement import in_bundle, reserve


def shard(rows, n: int) -> list:
    """n contiguous equal parts of a RolloutBatch, a tensor or a list along its rows."""
    if len(rows) % n:
        raise ValueError(f"{len(rows)} rows do not split evenly over {n} learners")
    size = len(rows) // n
    if isinstance(rows, list):
        return [rows[k * size : (k + 1) * size] for k in range(n)]
    return list(rows.chunk(n))


class LearnerGroup:
    def __init__(self, learner: type[Learner], setup: LearnerSetup, *, timeout_s: float):
        cfg = setup.learner
        self.pg = reserve("learner", cfg.num_learners, cfg.num_cpus, cfg.num_gpus, timeout_s)
        actor = ray.remote(learner)
        self.actors = [
            actor.options(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, scheduling_strategy=in_bundle(self.pg, rank)).remote(
                setup, rank, cfg.num_learners
            )
            for rank in range(cfg.num_learners)
        ]
        addr, port = ray.get(self.actors[0].master_address.remote())
        self.num_weights = ray.get([a.setup.remote(addr, port) for a in self.actors])[0]

    def _all(self, method: str, *args) -> list:
        return ray.get([getattr(a, method).remote(*args) for a in self.actors])

    def train_step(self, *rows, step: int) -> dict[str, float]:
        """One optimizer step. Each of `rows` (a RolloutBatch, a tensor or a list, one entry per row) is
        split into equal contiguous shards, rank k getting shard k of each (DeepSpeed averages the ranks'
        gradients). Returns the ranks' mean stats."""
        shards = zip(*(shard(r, len(self.actors)) for r in rows), strict=True)
        stats = ray.get([a.train_step.remote(*s, step) for a, s in zip(self.actors, shards, strict=True)])
        return {k: float(np.mean([s[k] for s in stats])) for k in stats[0]}

    def _from_rank0(self, method: str) -> "ray.ObjectRef":
        """Rank 0's result left in the object store (for the workers to read); every rank takes part."""
        refs = [getattr(a, method).remote() for a in self.actors]
        ray.get(refs[1:])
        return refs[0]

    def publish(self) -> "ray.ObjectRef":
        """The old policy's weights (DiffusionNFT) as one object in the store."""
        return self._from_rank0("publish")

    def eval_weights(self) -> "ray.ObjectRef":
        """The evaluation EMA's weights as one object in the store."""
        return self._from_rank0("eval_weights")

    def policy_weights(self) -> dict[str, torch.Tensor]:
        return ray.get(self.actors[0].policy_weights.remote())

    def save(self, folder: str) -> None:
        self._all("save", folder)

    def load(self, folder: str) -> None:
        self._all("load", folder)
