"""The learner's per-row randomness, without starting a process group."""

import pytest
import torch

from diffusion.conditioning import Conditioning
from diffusion.model_config import ModelConfig
from learner.learner import LearnerConfig
from learner.nft_learner import NFTLearner, NFTSetup
from rollout.batch import RolloutBatch

TIMES = torch.tensor([1.0, 0.9, 0.7, 0.5, 0.3, 0.1])


def _learner(fraction: float = 0.99) -> NFTLearner:
    setup = NFTSetup(model=ModelConfig(family="sd3", init="random_tiny"),
                     learner=LearnerConfig(num_learners=1, micro_batch=2, timestep_fraction=fraction), rows_per_step=4)
    learner = NFTLearner(setup, rank=0, world_size=1)
    learner.train_times = TIMES  # what setup() takes from the rollout schedule
    return learner


def _batch(times, seeds=(1, 2, 3, 4)) -> RolloutBatch:
    n = len(times)
    return RolloutBatch(
        prompts=["p"] * n, cond=Conditioning(torch.zeros(1, 1, 2), torch.zeros(1, 2)), latents=torch.zeros(n, 1, 2, 2),
        times=torch.tensor(times), groups=torch.zeros(n, dtype=torch.long), seeds=torch.tensor(seeds),
        rewards=torch.zeros(n), reward_terms={}, policy_version=0,
    )


def _times_of(items, row: int) -> list[float]:
    return items.t[items.row == row].tolist()


def test_each_row_trains_at_the_official_share_of_the_distinct_times_above_its_stop():
    """6 schedule times: a clean row trains at int(.99 x 6) = 5 of them, a row stopped at .5 at
    int(.99 x 3) = 2 of {1, .9, .7}, one stopped at .95 at its only one; fraction .5: 3, 1, 1."""
    items = _learner().items(_batch([0.0, 0.5, 0.95, 0.3]), step=5)
    for row, tau, count in [(0, 0.0, 5), (1, 0.5, 2), (2, 0.95, 1), (3, 0.3, 3)]:
        times = _times_of(items, row)
        assert len(times) == count and len(set(times)) == count and all(t > tau for t in times)
    assert items.eps.shape == (11, 1, 2, 2)
    # Weights average over each row's times, then over rows: every row weighs 1/4 whatever its count.
    for row in range(4):
        assert items.weight[items.row == row].sum().item() == pytest.approx(0.25)
    half = _learner(0.5).items(_batch([0.0, 0.5, 0.95, 0.3]), step=5)
    assert [len(_times_of(half, row)) for row in range(4)] == [3, 1, 1, 2]
    assert set(_times_of(_learner(1.0).items(_batch([0.0, 0.5, 0.95, 0.3]), step=5), 0)) == set(TIMES.tolist())


def test_the_draws_follow_the_row_seed_and_step_not_the_position():
    learner = _learner()
    items = learner.items(_batch([0.0, 0.3, 0.5, 0.6]), step=5)
    # A row's draws follow its seed, not its position or the other rows: learners may split a batch anyhow.
    moved = learner.items(_batch([0.6, 0.0], seeds=(4, 1)), step=5)
    assert _times_of(moved, 1) == _times_of(items, 0) and _times_of(moved, 0) == _times_of(items, 3)
    torch.testing.assert_close(moved.eps[moved.row == 1], items.eps[items.row == 0])
    other_step = learner.items(_batch([0.0, 0.3, 0.5, 0.6]), step=6)
    assert _times_of(other_step, 0) != _times_of(items, 0)  # a fresh permutation per step (5 of 6 times)
    assert not torch.equal(other_step.eps, items.eps)


def test_a_fraction_outside_0_1_is_refused_naming_the_setting():
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="learner.timestep_fraction"):
            LearnerConfig(timestep_fraction=bad)
