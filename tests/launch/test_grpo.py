"""launch/grpo.py: bad window settings fail before Ray; Flow-GRPO, Flow-GRPO-Fast and the value stop run
end to end in process on the committed tiny world (CPU)."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import launch.grpo as grpo
from launch import training_job
from tests.launch.metrics import training_rows

ROOT = Path(__file__).resolve().parents[2]
SMALL = [
    "cluster=in_process", "train.prompts_per_step=4", "train.group_size=2", "learner.micro_batch=4", "eval.every=0",
    "eval.samples_per_prompt=2", "eval.sampler.num_steps=4", "prompts.eval_per_family=1", "logging.wandb=disabled",
]


def _run(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        raw = compose("grpo", overrides=list(overrides))
    return grpo.run(raw, list(overrides))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["grpo.window_end=4-7"], "grpo.window_end lets the 2-step SDE window end at steps 4..7, outside the first half"),
        (["grpo.window_size=6"], "grpo.window_size=6 is longer than the first half of the 10-step schedule"),
        (["rollout.horizon=1-3"], "rollout.horizon lets the 2-step SDE window end at steps 1..3, outside the first half"),
        (["rollout.horizon=3-5", "grpo.window_size=0"], "stops after the SDE window, which needs grpo.window_size > 0"),
        (["rollout.horizon=3-5", "grpo.window_end=3-4"], "with a value stop the window ends where the rollout stops"),
        (["grpo.clip_range=0"], "grpo.clip_range=0.0 must be > 0"),
        (["train.max_staleness=1"], "Flow-GRPO samples with the weights it trains"),
        (["rollout.horizon=2-5", "rewards=tiny_pref_clip"], "rollout.horizon='2-5' scores with one value: give one reward term"),
    ],
)
def test_bad_window_settings_fail_before_any_actor_starts(monkeypatch, tmp_path, overrides, message):
    monkeypatch.setattr(training_job, "connect", lambda cfg: pytest.fail("Ray was started for a bad config"))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _run(f"run_dir={tmp_path}", *overrides)


@pytest.mark.parametrize("variant", [["grpo.window_size=0"], [], ["rollout.horizon=2-5"]], ids=["grpo", "fast", "fast_value_stop"])
def test_each_variant_trains_and_logs_its_ratio_check(tmp_path, variant):
    summary = _run(f"run_dir={tmp_path}", "train.steps=2", *SMALL, *variant)
    rows = training_rows(tmp_path)
    assert summary["steps"] == 2 and rows[1]["first_update_ratio_dev"] < 1e-5
    stopped = "rollout.horizon=2-5" in variant
    assert (rows[1]["stop_time"] > 0.4) == stopped  # the value stop scores z right after the window, t > .4 here
    assert ("reward/value" in rows[1]) == stopped
