"""benchmarks/latent_reward_arms.py: a shrunken run of three of its arms in process, and its last line's keys."""

import json
import sys

from tests.benchmarks import load_benchmark

SMALL = ["train.steps=2", "train.prompts_per_step=4", "learner.micro_batch=4", "eval.every=1", "eval.samples_per_prompt=1",
         "eval.sampler.num_steps=4", "prompts.eval_per_family=1"]


def test_a_shrunken_run_reports_every_arm_against_the_full_nft_arm(monkeypatch, capsys, tmp_path):
    m = load_benchmark("latent_reward_arms")
    arms = "nft_full_pixel,nft_whole_latent_reward,draft_latent_reward"
    monkeypatch.setattr(sys, "argv", ["latent_reward_arms.py", "--only", arms, "--out", str(tmp_path), "--", *SMALL])
    m.main()
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out["arms"]) == set(arms.split(","))
    full = out["arms"]["nft_full_pixel"]
    assert full["final_prompt_acc"] == out["target_prompt_acc"] and full["train_seconds_to_target"] is not None
    assert all(a["steps"] == 2 and a["step_seconds"] > 0 for a in out["arms"].values())
    assert (tmp_path / "latent_reward_arms.json").is_file()
