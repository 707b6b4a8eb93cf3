"""launch/adjoint.py: bad input fails before Ray, both methods train end to end, and a resumed AM run (its
clip state included) repeats an uninterrupted one (the committed tiny world, CPU, seeded)."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import launch.adjoint as adjoint
from launch import training_job
from tests.launch.metrics import training_rows

ROOT = Path(__file__).resolve().parents[2]

# A second or two a step: 4 rows, 4-step rollouts, 1 learner in this process.
SMALL = [
    "cluster=in_process", "train.prompts_per_step=4", "train.checkpoint_every=2", "learner.micro_batch=2",
    "adjoint.am.num_steps=4", "adjoint.am.train_times=2", "adjoint.eam.num_steps=2", "adjoint.eam.train_times=2",
    "eval.every=0", "eval.samples_per_prompt=2", "eval.sampler.num_steps=4", "prompts.eval_per_family=1",
    "logging.wandb=disabled",
]


def _run(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        raw = compose("adjoint", overrides=list(overrides))
    return adjoint.run(raw, list(overrides))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("adjoint.reward_multiplier=0", "adjoint.reward_multiplier=0.0 must be > 0"),
        ("adjoint.reward_multiplier=-5", "adjoint.reward_multiplier=-5.0 must be > 0"),
        ("adjoint.method=am adjoint.am.eta=0.5", "needs the memoryless schedule"),
        ("adjoint.eam.num_steps=0", "adjoint.eam.num_steps=0: the endpoint's ODE needs at least 1 step"),
        ("adjoint.am.num_steps=1", "adjoint.am.num_steps=1"),
        ("adjoint.am.train_times=20", "adjoint.am.train_times=20 must lie in 1..19"),
        ("adjoint.method=dpo", "adjoint.method='dpo' is not one of"),
        ("adjoint.eam.ref_std=0", "adjoint.eam.ref_std=0.0 must be > 0"),
        ("rollout.horizon=3-7 rollout.value.path=v", "read the reward at the clean endpoint"),
        ("train.max_staleness=1", "nothing is sampled ahead"),
        ("adjoint.lr=1", "Could not override 'adjoint.lr'"),
    ],
)
def test_bad_input_fails_before_any_actor_starts(monkeypatch, tmp_path, override, message):
    monkeypatch.setattr(training_job, "connect", lambda cfg: pytest.fail("Ray was started for a bad config"))
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace("[", r"\[")):
        _run(f"run_dir={tmp_path}", *override.split())


@pytest.mark.parametrize("method", ["am", "eam"])
def test_each_method_trains_and_logs(tmp_path, method):
    summary = _run(f"run_dir={tmp_path}", "train.steps=1", *SMALL, f"adjoint.method={method}")
    (row,) = [r for s, r in training_rows(tmp_path).items() if s == 1]
    assert row["grad_norm"] > 0 and row["loss"] > 0 and -1 < row["reward"] < 1  # the preference reward of the training rollouts
    assert summary["final_reward"] != summary["base_reward"]  # the step trained the evaluated weights
    if method == "am":
        assert 0 < row["kept"] <= 1 and row["clip_threshold"] > 0


def test_stopped_and_resumed_am_run_repeats_the_uninterrupted_one(tmp_path):
    """Same seed, CPU: identical losses (the clip's EMA is part of the checkpoint) and evaluation after resuming
    from step 2 of 4."""
    am = [*SMALL, "adjoint.method=am"]
    whole = _run(f"run_dir={tmp_path / 'whole'}", "train.steps=4", *am)
    _run(f"run_dir={tmp_path / 'parts'}", "train.steps=2", *am)
    resumed = _run(f"resume={tmp_path / 'parts'}", "train.steps=4")
    rows = training_rows(tmp_path / "whole")
    assert training_rows(tmp_path / "parts") == rows
    assert resumed["final_reward"] == whole["final_reward"] and resumed["final_prompt_acc"] == whole["final_prompt_acc"]
    assert rows[3]["clip_threshold"] != rows[2]["clip_threshold"]  # the EMA moved across the checkpoint
