"""The DRaFT learner's stop steps, without starting a process group."""

from diffusion.model_config import ModelConfig
from learner.draft_learner import DraftLearner, DraftSetup
from learner.draft_objective import DraftConfig
from learner.learner import LearnerConfig
from value.value_config import ValueConfig


def _learner(horizon: str, seed: int = 0) -> DraftLearner:
    setup = DraftSetup(model=ModelConfig(family="sd3", init="random_tiny"), rewards={}, seed=seed, rows_per_step=4,
                       draft=DraftConfig(horizon=horizon, value=ValueConfig(path="v")), learner=LearnerConfig(num_learners=1, micro_batch=2))
    return DraftLearner(setup, rank=0, world_size=1)


def test_stops_are_drawn_per_micro_batch_from_the_window_and_follow_seed_and_step():
    learner = _learner("3-7")
    stops = [learner.stop_for(step, j) for step in range(1, 41) for j in range(4)]
    assert set(stops) == {3, 4, 5, 6, 7}  # every stop of the window, none outside it
    assert stops == [_learner("3-7").stop_for(step, j) for step in range(1, 41) for j in range(4)]  # resumable
    assert stops != [_learner("3-7", seed=1).stop_for(step, j) for step in range(1, 41) for j in range(4)]


def test_draft_k_runs_the_whole_schedule():
    assert {_learner("full").stop_for(step, 0) for step in range(1, 20)} == {10}
