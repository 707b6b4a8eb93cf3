"""Reserving Ray resources for a group of actors, with a bounded wait: a request the cluster cannot
meet (GPUs on a CPU machine, more CPUs than it has) fails with the numbers instead of hanging."""

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy


def reserve(what: str, count: int, num_cpus: float, num_gpus: float, timeout_s: float):
    """A PACK placement group of `count` bundles; returns it once ready, or raises naming the shortfall."""
    bundle = {"CPU": num_cpus, **({"GPU": num_gpus} if num_gpus else {})}
    pg = placement_group([bundle] * count, strategy="PACK")
    ready, _ = ray.wait([pg.ready()], timeout=timeout_s)
    if not ready:
        remove_placement_group(pg)
        raise TimeoutError(
            f"{what}: {count} x {bundle} could not be reserved within {timeout_s:.0f} s; the cluster has "
            f"{ray.available_resources()} free. Lower {what}.num_cpus / num_gpus or the number of actors, "
            "or start Ray with more (ray start --num-cpus N)"
        )
    return pg


def in_bundle(pg, index: int) -> PlacementGroupSchedulingStrategy:
    return PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=index)
