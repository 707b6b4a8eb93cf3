"""launch/draft.py: bad input fails before Ray, and a resumed run repeats an uninterrupted one (the
committed tiny world and value, CPU, seeded)."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import launch.draft as draft
from launch import training_job
from tests.launch.metrics import training_rows

ROOT = Path(__file__).resolve().parents[2]

# A few seconds a step: 4 rows, 4 sampler steps (stops after 2 or 3), 2 learners, 1 evaluation worker.
SMALL = [
    "train.prompts_per_step=4", "train.checkpoint_every=2", "learner.micro_batch=2", "draft.sampler.num_steps=4",
    "draft.horizon=2-3", "rollout.num_workers=1", "eval.every=0", "eval.samples_per_prompt=2",
    "eval.sampler.num_steps=4", "prompts.eval_per_family=1", "logging.wandb=disabled",
]


def _run(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        raw = compose("draft", overrides=list(overrides))
    return draft.run(raw, list(overrides))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("draft.value.path=/nowhere/value", "draft.value.path='/nowhere/value' does not exist"),
        ("rollout.horizon=3-7 rollout.value.path=v", "set draft.horizon"),
        ("draft.grad_steps=4", "draft.grad_steps=4 exceeds the 3 steps"),
        ("draft.horizon=0-4", "stops must lie in 1..10"),
        ("draft.reg_weight=-1", "draft.reg_weight=-1.0 must be >= 0"),
        ("learner.micro_batch=5", "must divide by"),
        ("train.max_staleness=1", "nothing is sampled ahead"),
    ],
)
def test_bad_input_fails_before_any_actor_starts(monkeypatch, tmp_path, override, message):
    monkeypatch.setattr(training_job, "connect", lambda cfg: pytest.fail("Ray was started for a bad config"))
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace("[", r"\[")):
        _run(f"run_dir={tmp_path}", *override.split())


def test_stopped_and_resumed_run_repeats_the_uninterrupted_one(ray_local, tmp_path):
    """Same seed, CPU: identical values, losses and evaluation after resuming DRaFT + value from step 2 of 4."""
    whole = _run(f"run_dir={tmp_path / 'whole'}", "train.steps=4", *SMALL)
    _run(f"run_dir={tmp_path / 'parts'}", "train.steps=2", *SMALL)
    resumed = _run(f"resume={tmp_path / 'parts'}", "train.steps=4")
    rows = training_rows(tmp_path / "whole")
    assert resumed["steps"] == whole["steps"] == 4
    assert training_rows(tmp_path / "parts") == rows
    assert resumed["final_reward"] == whole["final_reward"] and resumed["final_prompt_acc"] == whole["final_prompt_acc"]
    assert resumed["final_reward"] != resumed["base_reward"]  # the steps trained the evaluated weights
    times = [0.602, 0.009]  # the 4-step shifted schedule's times after steps 2 and 3
    assert all(min(times) - 1e-3 <= rows[s]["stop_time"] <= max(times) + 1e-3 for s in range(1, 5))
    assert all(rows[s]["grad_norm"] > 0 for s in range(1, 5))
    with pytest.raises(ValueError, match="only .* may be given"):
        _run(f"resume={tmp_path / 'parts'}", "train.steps=6", "draft.grad_steps=2")


def test_draft_k_trains_on_the_decoded_reward(ray_local, tmp_path):
    summary = _run(f"run_dir={tmp_path}", "train.steps=1", *SMALL, "draft.horizon=full")
    (row,) = [r for s, r in training_rows(tmp_path).items() if s == 1]
    assert row["stop_time"] == 0.0 and summary["final_prompt_acc"] is not None
