"""`LearnerGroup`: learners (`NFTLearner`, `DraftLearner`) as Ray actors forming one DeepSpeed process group,
or one learner in the driver's process (cluster.mode=in_process, `rollout/actors.py`).

Rank 0 is created first and picks the rendezvous (its node's address and a free port); the other ranks
are created with it, then all join at once (OpenRLHF's pattern). Each call fans out to every rank and
returns when all are done: calls that gather weights are collectives and must run on every rank.
"""

import numpy as np
import torch

from learner.learner import Learner, LearnerSetup
from rollout.actors import RAY, get, start_group


def shard(rows, n: int) -> list:
    """n contiguous equal parts of a RolloutBatch, a tensor or a list along its rows."""
    if len(rows) % n:
        raise ValueError(f"{len(rows)} rows do not split evenly over {n} learners")
    size = len(rows) // n
    if isinstance(rows, list):
        return [rows[k * size : (k + 1) * size] for k in range(n)]
    return list(rows.chunk(n))


class LearnerGroup:
    def __init__(self, learner: type[Learner], setup: LearnerSetup, *, timeout_s: float, mode: str = RAY):
        cfg = setup.learner
        self.group = start_group("learner", learner, [(setup, rank, cfg.num_learners) for rank in range(cfg.num_learners)], {},
                                 mode=mode, num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, timeout_s=timeout_s)
        self.actors = self.group.actors
        addr, port = get(self.actors[0].master_address.remote())
        self.num_weights = get([a.setup.remote(addr, port) for a in self.actors])[0]

    def _all(self, method: str, *args) -> list:
        return get([getattr(a, method).remote(*args) for a in self.actors])

    def train_step(self, *rows, step: int) -> dict[str, float]:
        """One optimizer step. Each of `rows` (a RolloutBatch, a tensor or a list, one entry per row) is
        split into equal contiguous shards, rank k getting shard k of each (DeepSpeed averages the ranks'
        gradients). Returns the ranks' mean stats."""
        shards = zip(*(shard(r, len(self.actors)) for r in rows), strict=True)
        stats = get([a.train_step.remote(*s, step) for a, s in zip(self.actors, shards, strict=True)])
        return {k: float(np.mean([s[k] for s in stats])) for k in stats[0]}

    def _from_rank0(self, method: str):
        """Rank 0's result left in the object store (for the workers to read); every rank takes part."""
        refs = [getattr(a, method).remote() for a in self.actors]
        get(refs[1:])
        return refs[0]

    def publish(self):
        """The old policy's weights (DiffusionNFT) as one object in the store."""
        return self._from_rank0("publish")

    def eval_weights(self):
        """The evaluation EMA's weights as one object in the store."""
        return self._from_rank0("eval_weights")

    def policy_weights(self) -> dict[str, torch.Tensor]:
        return get(self.actors[0].policy_weights.remote())

    def save(self, folder: str) -> None:
        self._all("save", folder)

    def load(self, folder: str) -> None:
        self._all("load", folder)

    def shutdown(self) -> None:
        self.group.shutdown()
