"""benchmarks/adjoint_speed.py: a shrunken run of its four arms in process, and its last line's keys."""

import json
import sys

from tests.benchmarks import load_benchmark

SMALL = ["cluster=in_process", "train.prompts_per_step=4", "learner.micro_batch=2", "eval.every=1", "eval.samples_per_prompt=1",
         "eval.sampler.num_steps=4", "prompts.eval_per_family=1", "adjoint.am.num_steps=4", "adjoint.am.train_times=2",
         "adjoint.eam.num_steps=2", "adjoint.eam.train_times=2"]


def test_a_shrunken_run_compares_eam_with_am_and_the_draft_rows(monkeypatch, capsys, tmp_path):
    m = load_benchmark("adjoint_speed")
    monkeypatch.setattr(sys, "argv", ["adjoint_speed.py", "--steps", "2", "--horizon", "2-3", "--out", str(tmp_path), "--", *SMALL,
                                      "train.checkpoint_every=2"])
    m.main()
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("speedup_time_to_target", "final_reward_eam", "final_reward_am", "final_prompt_acc_eam", "final_prompt_acc_am",
                "nfe_per_sample_eam", "nfe_per_sample_am", "final_reward_draft_k", "final_reward_draft_value"):
        assert key in out
    assert out["nfe_per_sample_am"] == 4 + 4 + 2 and out["nfe_per_sample_eam"] == 2 + 1 + 2
    arms = out["seeds"]["0"]["arms"]
    assert arms["am"]["train_seconds_to_target"] is not None  # AM reaches its own final score
    assert set(arms) == {"am", "eam", "draft_k", "draft_value"} and (tmp_path / "adjoint_speed.json").is_file()
