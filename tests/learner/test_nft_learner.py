"""The learner's per-row randomness, without starting a process group."""

import pytest
import torch

from diffusion.conditioning import Conditioning
from diffusion.model_config import ModelConfig
from learner.learner import LearnerConfig
from learner.nft_learner import NFTLearner, NFTSetup
from rollout.batch import RolloutBatch

TIMES = torch.tensor([1.0, 0.9, 0.7, 0.5, 0.3, 0.1])


def _learner(k: int) -> NFTLearner:
    setup = NFTSetup(model=ModelConfig(family="sd3", init="random_tiny"), learner=LearnerConfig(num_learners=1, micro_batch=2, train_timesteps=k), rows_per_step=4)
    learner = NFTLearner(setup, rank=0, world_size=1)
    learner.train_times = TIMES  # what setup() takes from the rollout schedule
    return learner


def _batch(times, seeds=(1, 2, 3, 4)) -> RolloutBatch:
    n = len(times)
    return RolloutBatch(
        prompts=["p"] * n, cond=Conditioning(torch.zeros(n, 1, 2), torch.zeros(n, 2)), latents=torch.zeros(n, 1, 2, 2),
        times=torch.tensor(times), groups=torch.zeros(n, dtype=torch.long), seeds=torch.tensor(seeds),
        rewards=torch.zeros(n), reward_terms={}, policy_version=0,
    )


def test_training_times_lie_strictly_above_each_rows_stop_and_depend_on_row_seed_and_step():
    learner = _learner(k=3)
    t, eps = learner._noise(_batch([0.0, 0.3, 0.5, 0.6]), step=5)
    assert t.shape == (3, 4) and eps.shape == (3, 4, 1, 2, 2)
    for row, tau in enumerate([0.0, 0.3, 0.5, 0.6]):
        assert (t[:, row] > tau).all() and len(set(t[:, row].tolist())) == 3
    # A row's draws follow its seed, not its position or the other rows: learners may split a batch anyhow.
    t2, eps2 = learner._noise(_batch([0.6, 0.0], seeds=(4, 1)), step=5)
    torch.testing.assert_close(t2[:, 0], t[:, 3])
    torch.testing.assert_close(eps2[:, 1], eps[:, 0])
    assert not torch.equal(learner._noise(_batch([0.0, 0.3, 0.5, 0.6]), step=6)[1], eps)


def test_a_stop_too_close_to_the_noise_end_is_a_clear_error():
    with pytest.raises(ValueError, match="fewer than learner.train_timesteps=3"):
        _learner(k=3)._noise(_batch([0.0, 0.8, 0.0, 0.0]), step=1)
