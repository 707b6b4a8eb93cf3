"""launch/latent_reward.py end to end on the committed tiny world with a few pairs and steps: the summary line,
the run directory, the export loading back, a pair file as the source, and the export as NFT's rollout value."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.launch.test_nft import SMALL as NFT_SMALL
from tests.launch.test_nft import _run as run_nft
from value.preference_pairs import PreferencePairs

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["pairs.hard_negatives=48", "pairs.generated_prompts=6", "pairs.samples_per_prompt=4", "pairs.eval_pairs=24",
         "pairs.sampler.num_steps=4", "train.steps=3", "train.batch_size=8", "eval_ts=[0.5]"]


def _run(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "launch" / "latent_reward.py"), f"run_dir={run_dir}", *overrides],
                          cwd=run_dir.parent, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("lrm") / "run"
    out = _run(run_dir, *SMALL)
    assert out.returncode == 0, out.stderr[-3000:]
    return run_dir


def test_the_job_trains_exports_and_reports(trained):
    summary = json.loads((trained / "summary.json").read_text())
    assert 0 <= summary["pairwise_acc_clean"] <= 1 and 0 <= summary["pref_pairwise_acc_clean"] <= 1
    assert set(summary["pairwise_acc_by_t"]) == {"0", "0.5"}
    assert set(summary["held_out"]) == {"hard_negative", "generated"}
    assert set(summary["held_out"]["generated"]["by_t"]["0.5"]) == {"latent_reward", "compare", "tweedie"}
    assert summary["train_seconds"] > 0 and summary["train_pairs"] > 48  # hard negatives and generated pairs
    assert len(PreferencePairs.load(trained / "pairs.safetensors")) == summary["train_pairs"]
    assert len((trained / "metrics.jsonl").read_text().splitlines()) == 1  # logged at the last step
    card = json.loads((trained / "latent_reward" / "latent_reward.json").read_text())
    assert card["config"]["blocks"] == 2 and card["likelihood"] == "thurstone"


def test_a_pair_file_is_a_source_and_a_bad_one_is_named(trained, tmp_path):
    run_dir = tmp_path / "from_file"
    out = _run(run_dir, f"pairs.path={trained / 'pairs.safetensors'}", "train.steps=2", "train.batch_size=8",
               "eval_ts=[0.5]", "train.likelihood=bt")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(summary["held_out"]) == {"held_out"}
    out = _run(tmp_path / "missing", "pairs.path=/nowhere/pairs.safetensors")
    assert out.returncode != 0 and "pairs.path: '/nowhere/pairs.safetensors': no such pair file" in out.stderr


@pytest.mark.parametrize("horizon", ["2-3", "4"])  # partial rollouts; whole ones (4 of 4 steps) without a decode
def test_nft_scores_rollouts_with_the_latent_reward(trained, tmp_path, horizon):
    summary = run_nft(f"run_dir={tmp_path}", "cluster=in_process", "train.steps=1", f"rollout.horizon={horizon}",
                      "rollout.value.kind=latent_reward", f"rollout.value.path={trained / 'latent_reward'}", *NFT_SMALL)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()][1:]
    assert rows and all("reward/value" in r for r in rows)
    if horizon == "4":
        assert all(r["stop_time"] == 0.0 for r in rows)
    assert summary["steps"] == 1
