"""`RolloutWorkerGroup`: the rollout workers as Ray actors (or objects in the driver's process:
cluster.mode=in_process, `rollout/actors.py`), with one call per phase (load weights, sample, evaluate)
that fans out over the workers and returns when all are done. A worker whose process dies is restarted
by Ray (`rollout.max_restarts`) and its batch in flight asked for again."""

import logging
import time
from dataclasses import dataclass

import numpy as np
import ray
import torch

from diffusion.sampling import SamplerConfig
from rollout.actors import RAY, get, start_group
from rollout.batch import BatchRefs, RolloutSummary
from rollout.sde_window import SDEWindow
from rollout.worker import EvalSamples, RolloutConfig, RolloutWorker


log = logging.getLogger(__name__)


@dataclass
class SampleRequest:
    """A batch in flight: the worker asked, what it was asked for (to ask again), its two references
    (the summary, the rows)."""

    worker: int
    args: tuple
    refs: tuple

    @property
    def rows(self) -> int:
        return len(self.args[1])


def _split(n: int, parts: int) -> list[slice]:
    bounds = np.linspace(0, n, parts + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


class RolloutWorkerGroup:
    def __init__(self, cfg: RolloutConfig, worker_kwargs: dict, *, timeout_s: float, mode: str = RAY):
        kwargs = dict(rollout=cfg, threads=max(1, int(cfg.num_cpus)), **worker_kwargs)
        self.group = start_group("rollout", RolloutWorker, [()] * cfg.num_workers, kwargs, mode=mode, num_cpus=cfg.num_cpus,
                                 num_gpus=cfg.num_gpus, timeout_s=timeout_s, max_restarts=cfg.max_restarts)
        self.workers = self.group.actors
        self.max_restarts, self.timeout_s = cfg.max_restarts, timeout_s
        self.loading: list["ray.ObjectRef"] = []
        self.published: tuple[list, int] | None = None

    def load_weights(self, weights, version: int) -> None:
        """Every worker loads the same published weights (one object in the store, read by all). Returns at
        once: an actor runs one caller's calls in order, so a worker loads them after the batch it is
        sampling and before any batch asked for later, and the driver need not wait. A failed load is
        raised at the next call (the previous loads are long done by then)."""
        self._wait(self.loading)
        self.published = ([weights], version)  # in a list, so that only a worker that needs them fetches them
        self.loading = [w.load_weights.remote(weights, version) for w in self.workers]

    @staticmethod
    def _wait(refs: list) -> None:
        """Raise a failed call's error, except a dead worker's: Ray restarts it and a request it is
        sent from then on brings the weights it needs."""
        for ref in refs:
            try:
                get(ref)
            except ray.exceptions.RayActorError:
                pass

    def sample(self, prompts: list[str], groups: list[int], seeds: list[int], stops: list[int] | None = None,
               window: SDEWindow | None = None) -> list[SampleRequest]:
        """Start sampling with the last published weights (SDE steps in `window`: Flow-GRPO), rows split
        contiguously over the workers; `collect` the requests."""
        assert self.published is not None, "sample before any load_weights"
        requests = []
        for i, s in enumerate(_split(len(prompts), len(self.workers))):
            args = (self.published, prompts[s], groups[s], seeds[s], stops[s] if stops is not None else None, window)
            requests.append(SampleRequest(i, args, self._ask(i, args)))
        return requests

    def _ask(self, worker: int, args: tuple) -> tuple:
        return self.workers[worker].sample_and_summarise.options(num_returns=2).remote(*args)

    def collect(self, requests: list[SampleRequest]) -> tuple[RolloutSummary, BatchRefs]:
        """What the driver reads of the batch (per phase, the slowest worker's seconds: what the step
        waited for), and the references to its rows, which stay in the object store for the learners."""
        summaries = [self._summary(r) for r in requests]
        return RolloutSummary.concat(summaries), BatchRefs([(r.refs[1], 0, r.rows) for r in requests])

    def _summary(self, request: SampleRequest) -> RolloutSummary:
        """The request's summary; a worker that died meanwhile is asked again once Ray has restarted it
        (the same rows: every row is a function of its prompt, seed and the weights asked for)."""
        for attempt in range(self.max_restarts + 1):
            try:
                return get(request.refs[0])
            except ray.exceptions.RayActorError as err:
                if attempt == self.max_restarts:
                    raise RuntimeError(
                        f"rollout worker {request.worker} died {attempt + 1} times in one step ({type(err).__name__}); "
                        "see its log under /tmp/ray/session_latest/logs, or raise rollout.max_restarts"
                    ) from err
                log.warning("rollout worker %d died (%s); Ray restarts it and its %d rows are sampled again",
                            request.worker, type(err).__name__, request.rows)
                self._await_restart(request.worker)
                request.refs = self._ask(request.worker, request.args)
        raise AssertionError("unreachable")

    def _await_restart(self, worker: int) -> None:
        """Until the worker answers again: a call made while Ray restarts it fails at once rather than wait."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                ray.get(self.workers[worker].pid.remote())
                return
            except ray.exceptions.ActorUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def evaluate(self, weights, prompts: list[str], seeds: list[int], sampler: SamplerConfig) -> EvalSamples:
        parts: list[EvalSamples] = get([
            w.evaluate.remote(weights, prompts[s], seeds[s], sampler)
            for w, s in zip(self.workers, _split(len(prompts), len(self.workers)), strict=True)
        ])
        return EvalSamples(
            prompts=[p for part in parts for p in part.prompts],
            images=torch.cat([p.images for p in parts]),
            rewards=torch.cat([p.rewards for p in parts]),
            reward_terms={k: torch.cat([p.reward_terms[k] for p in parts]) for k in parts[0].reward_terms},
        )

    def shutdown(self) -> None:
        self.group.shutdown()
