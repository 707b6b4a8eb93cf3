"""Reserving actors' resources: a request larger than the whole cluster fails at once, naming CPUs and GPUs."""

import time

import pytest

from rollout.placement import reserve


def test_a_group_larger_than_the_cluster_fails_at_once_naming_cpus_and_gpus(ray_local):
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"rollout: 100 actors need 100 CPU, but the whole cluster has \d+ CPU, 0 GPU\. "
                                           r"Lower rollout.num_cpus"):
        reserve("rollout", 100, 1.0, 0.0, timeout_s=60)
    with pytest.raises(RuntimeError, match=r"learner: 2 actors need 2 GPU"):
        reserve("learner", 2, 1.0, 1.0, timeout_s=60)
    assert time.perf_counter() - start < 10  # not the bounded wait
    pg = reserve("rollout", 2, 1.0, 0.0, timeout_s=60)  # what fits is still reserved
    ray_local.util.remove_placement_group(pg)
