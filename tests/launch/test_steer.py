"""launch/steer.py end to end on the embedded default (the committed tiny world and its stitched value),
as a user runs it: a subprocess on CPU, a few sampler steps."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import launch.steer as steer

ROOT = Path(__file__).resolve().parents[2]
FAST = ("steer.sampler.num_steps=4", "samples_per_prompt=2", "prompts=[a red one and a magenta eight,four ones]")


def _run(*overrides, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / "launch" / "steer.py"), *overrides],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


def _summary(out) -> dict:
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_value_dps_writes_the_run_directory_and_is_reproducible(tmp_path):
    summary = _summary(_run(f"run_dir={tmp_path / 'a'}", *FAST, cwd=tmp_path))
    assert summary["method"] == "dps" and summary["value"] == "stitched" and summary["num_samples"] == 4
    assert 0 <= summary["prompt_acc"] <= 1 and summary["seconds_per_sample"] > 0
    assert summary["peak_memory_bytes"] > 0 and summary["peak_memory_source"]
    for name in ("config.yaml", "samples.png", "samples.jsonl", "summary.json"):
        assert (tmp_path / "a" / name).is_file(), name
    rows = [json.loads(line) for line in (tmp_path / "a" / "samples.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == [0, 1, 2, 3] and all(isinstance(r["verifier_correct"], bool) for r in rows)
    again = _summary(_run(f"run_dir={tmp_path / 'b'}", *FAST, cwd=tmp_path))
    assert again["reward_mean"] == summary["reward_mean"]  # seeded


def test_fk_with_value_proposals_and_tweedie_dps_run(tmp_path):
    fk = _summary(_run(f"run_dir={tmp_path / 'fk'}", *FAST, "steer.method=fk", "steer.fk.particles=2",
                       "steer.fk.proposals=2", "steer.fk.proposal_steps=0-1", "steer.fk.resample_steps=2"))
    assert fk["value_calls_per_sample"] == 2 * 2 * 2 + 2
    tweedie = _summary(_run(f"run_dir={tmp_path / 'tw'}", *FAST, "steer.value.kind=tweedie", "steer.guidance.scale=0.5"))
    assert tweedie["value"] == "tweedie" and tweedie["reward_mean"] != fk["reward_mean"]


def test_value_dps_and_fk_steer_with_the_committed_latent_reward(tmp_path):
    dps = _summary(_run(f"run_dir={tmp_path / 'dps'}", *FAST, "value@steer.value=tiny_latent_reward"))
    fk = _summary(_run(f"run_dir={tmp_path / 'fk'}", *FAST, "value@steer.value=tiny_latent_reward", "steer.method=fk",
                       "steer.fk.particles=2", "steer.fk.proposals=2", "steer.fk.proposal_steps=0-1", "steer.fk.resample_steps=2"))
    assert dps["value"] == fk["value"] == "latent_reward" and dps["num_samples"] == fk["num_samples"] == 4


def _config(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        return OmegaConf.to_object(compose("steer", overrides=["run_dir=unused", *FAST, *overrides]))


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigCompositionException, match="scael"):
        _config("steer.guidance.scael=2")
    with pytest.raises(ValueError, match="set steer.value.path"):
        _config("steer.value.path=")
    with pytest.raises(FileNotFoundError, match="no stitched value.*launch/stitch.py"):
        steer.run(_config(f"steer.value.path={tmp_path / 'nope'}"), tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        steer.run(_config(f"prompt_file={tmp_path / 'nope.txt'}"), tmp_path)
