"""benchmarks/grpo_speed.py: a shrunken run of its three arms in process, and its last line's keys."""

import json
import sys

from tests.benchmarks import load_benchmark

SMALL = ["cluster=in_process", "train.prompts_per_step=4", "train.group_size=2", "learner.micro_batch=4", "eval.every=1",
         "eval.samples_per_prompt=1", "eval.sampler.num_steps=4", "prompts.eval_per_family=1"]


def test_a_shrunken_run_compares_the_value_stop_with_full_rollouts(monkeypatch, capsys, tmp_path):
    m = load_benchmark("grpo_speed")
    monkeypatch.setattr(sys, "argv", ["grpo_speed.py", "--steps", "2", "--out", str(tmp_path), "--", *SMALL])
    m.main()
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("speedup_time_to_target", "final_prompt_acc_value", "final_prompt_acc_full", "rollout_cost_ratio"):
        assert key in out
    seed = out["seeds"]["0"]
    assert 0 < out["rollout_cost_ratio"] < 1  # the value stop skips the ODE tail, the decode and the pixel reward
    assert seed["train_seconds_to_target_full"] is not None  # the full arm reaches its own final score
    assert (tmp_path / "grpo_speed.json").is_file()
