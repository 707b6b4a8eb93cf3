"""launch/stitch.py end to end on a miniature world with a few steps of everything: the run directory's
artefacts, the JSON summary line, the exported value loading back, and a second call resuming."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from diffusion.model_config import ModelConfig, build_flow_model
from value.latent_reward import LatentRewardConfig, LatentRewardModel
from value.latent_reward_checkpoint import save_latent_reward
from value.reward_config import RewardConfig, build_reward_model
from value.stitched import load_stitched
from world.prompts import EVAL_PER_FAMILY, all_held_out

ROOT = Path(__file__).resolve().parents[2]
SMALL = [
    "stitch.probe_images=8", "stitch.probe_batch=4", "stitch.distill.steps=3", "stitch.distill.batch=4",
    "stitch.distill.checkpoint_every=2", "stitch.vae_stitch_steps=2", "report.ts=[0.25,0.75]",
    "report.fidelity_scenes=8", "report.calibration_latents=6", "report.calibration_per_prompt=3",
    "report.calibration_rollouts=2", "report.num_steps=4",
]


def _run(run_dir: Path, world: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STITCHRL_WORLD": str(world), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "launch" / "stitch.py"), f"run_dir={run_dir}", *SMALL, *overrides],
        cwd=run_dir.parent, capture_output=True, text=True, timeout=600, env=env,
    )


def test_stitch_script_builds_exports_reports_and_resumes(tmp_path, mini_world):
    run_dir = tmp_path / "run"
    generator = build_flow_model(ModelConfig(family="sd3", path=str(mini_world / "generator"), max_sequence_length=1))
    save_latent_reward(LatentRewardModel(generator, LatentRewardConfig(blocks=1, image_taps=[1], text_taps=[1])),
                       tmp_path / "latent_reward", {"backbone": "mini world"})
    out = _run(run_dir, mini_world, f"report.latent_reward={tmp_path / 'latent_reward'}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(summary["stitch_point"]) == 2 and 0 <= summary["search_mse"] <= 1
    assert set(summary["fidelity"]) == {"clean", "0.25", "0.75"}
    assert set(summary["fidelity"]["clean"]["vae_round_trip"]) == {"zero_shot_acc", "pairwise_acc"}
    assert set(summary["fidelity"]["0.25"]["tweedie"]) == {"zero_shot_acc", "pairwise_acc", "spearman_vs_clean"}
    assert set(summary["fidelity"]["0.25"]["latent_reward"]) == {"zero_shot_acc", "pairwise_acc", "spearman_vs_clean"}
    assert set(summary["fidelity"]["clean"]["latent_reward"]) == {"zero_shot_acc", "pairwise_acc"}
    assert set(summary["calibration_null_prompt"]) == set(summary["calibration"])
    for row in [*summary["calibration"].values(), *summary["calibration_null_prompt"].values()]:
        for name in ("stitched", "vae_stitch", "tweedie", "tweedie_null", "mc1", "latent_reward"):
            assert set(row[name]) == {"spearman", "pearson", "mse", "spearman_within"}, name
            assert -1 <= row[name]["spearman_within"] <= 1  # two prompts of three latents each
    for name in ("search.csv", "search_heatmap.png", "fidelity.png", "calibration.png", "calibration_null_prompt.png",
                 "metrics.jsonl", "summary.json"):
        assert (run_dir / name).is_file(), name
    backbone = build_flow_model(ModelConfig(family="sd3", path=str(mini_world / "generator"), max_sequence_length=1))
    reward = build_reward_model(RewardConfig(kind="open_clip", path=str(mini_world / "clip")))
    value = load_stitched(summary["value_path"], backbone, reward)
    assert [value.i, value.j] == summary["stitch_point"]
    z = torch.randn(2, *backbone.latent_shape(32, 32))
    with torch.no_grad():
        assert value(z, torch.tensor([0.3, 0.7]), ["a red seven", "two blue threes"]).shape == (2,)

    again = _run(run_dir, mini_world)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["distill"]["resumed_from"].endswith("step_000003")


def test_a_prompted_value_on_the_one_step_target_builds_and_loads_prompted(tmp_path, mini_world):
    run_dir = tmp_path / "run"
    out = _run(run_dir, mini_world, "stitch.prompted=true", "stitch.distill.teacher=tweedie", "images.kind=generator",
               "images.samples=8", "images.num_steps=2", "stitch.vae_stitch_steps=0", "report.null_prompt_truth=false")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert json.loads((Path(summary["value_path"]) / "value.json").read_text())["prompted"] is True
    backbone = build_flow_model(ModelConfig(family="sd3", path=str(mini_world / "generator"), max_sequence_length=1))
    reward = build_reward_model(RewardConfig(kind="open_clip", path=str(mini_world / "clip")))
    assert load_stitched(summary["value_path"], backbone, reward).features.prompted
    assert all(row["stitched"]["spearman_within"] is not None for row in summary["calibration"].values())


def test_prompted_features_on_captionless_files_are_refused(tmp_path, mini_world):
    out = _run(tmp_path / "run", mini_world, "stitch.prompted=true", "images.kind=folder", f"images.path={tmp_path}")
    assert out.returncode != 0 and "images.kind=folder has none" in out.stderr


def _config(*overrides):
    import launch.stitch  # noqa: F401  (registers the schemas)

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        return OmegaConf.to_object(compose("stitch", overrides=["run_dir=unused", *overrides]))


def test_score_captions_are_distinct_training_captions_or_a_files_lines(tmp_path):
    from launch.stitch import score_captions

    captions = score_captions(_config("images.kind=tiny_world", "stitch.distill.score_captions=64"))
    assert len(captions) == len(set(captions)) == 64
    assert not set(captions) & set(all_held_out(EVAL_PER_FAMILY))  # never an evaluation prompt
    (tmp_path / "captions.txt").write_text("a red seven\ntwo blue threes\na red seven\n")
    folder = ["images.kind=folder", f"images.path={tmp_path}"]
    assert score_captions(_config(*folder, f"stitch.caption_file={tmp_path / 'captions.txt'}")) == ["a red seven", "two blue threes"]
    with pytest.raises(ValueError, match="stitch.caption_file"):
        score_captions(_config(*folder))
    assert score_captions(_config(*folder, "stitch.distill.score_weight=0")) == []
