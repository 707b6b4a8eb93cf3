"""Where a group of rollout workers or learners runs: Ray actors, one per bundle of a placement group
(cluster.mode=ray), or plain objects in the driver's process (cluster.mode=in_process: no Ray, for one
machine and for debugging, RLlib's and verl's local mode).

The groups call both the same way, through the part of Ray's actor API they use:
`handle.method.remote(*args)` (`.options(num_returns=2)` for a method that returns two objects),
`get(refs)`, and `ActorGroup.shutdown()`. In process a call runs at once and returns `Ready` results;
a `Ready` argument is passed as its value, as Ray passes an ObjectRef's. Calls that Ray would run
concurrently run one after another, in the order they are made, so a synchronous run does the same
work in both modes.
"""

from dataclasses import dataclass
from typing import Any

import torch

RAY, IN_PROCESS = "ray", "in_process"
MODES = (RAY, IN_PROCESS)


@dataclass(frozen=True)
class Ready:
    """A result already computed: what an in-process call returns where Ray returns an ObjectRef."""

    value: Any


def get(refs):
    """`ray.get` for ObjectRefs and `Ready` results alike: one, or a list (in its order)."""
    many = isinstance(refs, list)
    items = refs if many else [refs]
    if all(isinstance(r, Ready) for r in items):
        values = [r.value for r in items]
    else:
        import ray

        values = ray.get(items)
    return values if many else values[0]


def _value(arg):
    return arg.value if isinstance(arg, Ready) else arg


class _Call:
    def __init__(self, method, num_returns: int = 1):
        self.method, self.num_returns = method, num_returns

    def options(self, num_returns: int = 1, **_ray_only) -> "_Call":
        return _Call(self.method, num_returns)

    def remote(self, *args, **kwargs):
        out = self.method(*map(_value, args), **{k: _value(v) for k, v in kwargs.items()})
        return Ready(out) if self.num_returns == 1 else tuple(Ready(o) for o in out)


class InProcessActor:
    """An object called as a Ray actor is: `handle.method.remote(*args)` runs `obj.method(*args)` now."""

    def __init__(self, obj):
        self.obj = obj

    def __getattr__(self, name: str) -> _Call:
        return _Call(getattr(self.obj, name))


@dataclass
class ActorGroup:
    """The handles of a group's members, in order, and the placement group that holds them (None in
    process; then `threads` is the process's torch thread count before its members set theirs)."""

    actors: list
    pg: Any = None
    threads: int = 0

    def shutdown(self) -> None:
        if self.pg is None:
            torch.set_num_threads(self.threads)
            return
        import ray

        for actor in self.actors:
            ray.kill(actor)
        ray.util.remove_placement_group(self.pg)


def start_group(what: str, cls: type, args: list[tuple], kwargs: dict, *, mode: str, num_cpus: float, num_gpus: float,
                timeout_s: float, max_restarts: int = 0) -> ActorGroup:
    """One member per entry of `args`, each built as cls(*args[i], **kwargs): Ray actors in a PACK
    placement group of len(args) bundles of (num_cpus, num_gpus), restarted up to max_restarts times
    when their process dies; or, in process, the objects themselves."""
    if mode == IN_PROCESS:
        threads = torch.get_num_threads()
        return ActorGroup([InProcessActor(cls(*a, **kwargs)) for a in args], threads=threads)
    import ray

    from rollout.placement import in_bundle, reserve

    pg = reserve(what, len(args), num_cpus, num_gpus, timeout_s)
    actor = ray.remote(cls)
    actors = [
        actor.options(num_cpus=num_cpus, num_gpus=num_gpus, scheduling_strategy=in_bundle(pg, i),
                      max_restarts=max_restarts).remote(*a, **kwargs)
        for i, a in enumerate(args)
    ]
    return ActorGroup(actors, pg)
