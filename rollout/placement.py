"""Reserving Ray resources for a group of actors, with a bounded wait: a request the cluster cannot
meet (GPUs on a CPU machine, more CPUs than it has) fails with the numbers instead of hanging."""

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy


def reserve(what: str, count: int, num_cpus: float, num_gpus: float, timeout_s: float):
    """A PACK placement group of `count` bundles; returns it once ready, or raises naming the shortfall."""
    bundle = {"CPU": num_cpus, **({"GPU": num_gpus} if num_gpus else {})}
    total = ray.cluster_resources()
    short = {k: v * count for k, v in bundle.items() if v * count > total.get(k, 0.0)}
    if short:  # no wait can help: the whole cluster has less than this group alone asks for
        want = ", ".join(f"{v:g} {k}" for k, v in short.items())
        raise RuntimeError(
            f"{what}: {count} actors need {want}, but the whole cluster has {_cpus_and_gpus(total)}. Lower "
            f"{what}.num_cpus / num_gpus or the number of actors, or start Ray with more (ray start --num-cpus N)"
        )
    pg = placement_group([bundle] * count, strategy="PACK")
    ready, _ = ray.wait([pg.ready()], timeout=timeout_s)
    if not ready:
        remove_placement_group(pg)
        raise TimeoutError(
            f"{what}: {count} x {bundle} could not be reserved within {timeout_s:.0f} s; the cluster has "
            f"{_cpus_and_gpus(ray.available_resources())} free. Lower {what}.num_cpus / num_gpus or the number of "
            "actors, or start Ray with more (ray start --num-cpus N)"
        )
    return pg


def in_bundle(pg, index: int) -> PlacementGroupSchedulingStrategy:
    return PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=index)


def _cpus_and_gpus(resources: dict) -> str:
    """CPUs and GPUs only: Ray's per-bundle resources would bury them."""
    return ", ".join(f"{resources.get(k, 0.0):g} {k}" for k in ("CPU", "GPU"))
