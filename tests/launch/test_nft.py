"""launch/nft.py: bad input fails before Ray, a resumed run repeats an uninterrupted one, and
`ray job submit` against a local head runs the job (all on the committed tiny world, CPU)."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import launch.nft as nft
from launch import training_job
from tests.launch.metrics import training_rows

ROOT = Path(__file__).resolve().parents[2]

# A few seconds a step: 8 rows, 4 sampler steps, 2 learners, 1 rollout worker, a 12-image evaluation.
SMALL = [
    "train.prompts_per_step=4", "train.group_size=2", "train.checkpoint_every=2", "learner.micro_batch=2",
    "rollout.num_workers=1", "rollout.sampler.num_steps=4", "eval.every=0",
    "eval.samples_per_prompt=2", "eval.sampler.num_steps=4", "prompts.eval_per_family=1", "logging.wandb=disabled",
]


def _compose(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        return compose("nft", overrides=list(overrides))


def _run(*overrides):
    return nft.run(_compose(*overrides), list(overrides))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rewards.pref.model.kind=imagereward", "reward.kind='imagereward' is not one of"),
        ("rewards.pref.model.path=/nowhere/pref", "rewards.pref.model.path='/nowhere/pref' does not exist"),
        ("model.path=/nowhere/generator", "model.path='/nowhere/generator' does not exist"),
        ("prompts.train_file=/nowhere/prompts.txt", "prompt_file='/nowhere/prompts.txt' does not exist"),
        ("train.max_staleness=-1", "train.max_staleness=-1 must be >= 0"),
        ("device=tpu", "device='tpu' is not one of auto, cpu, cuda"),
        ("learner.zero_stage=3", "Stage 3 partitions the parameters"),
        ("learner.micro_batch=24", "must divide by"),
        ("learner.timestep_fraction=1.5", "learner.timestep_fraction=1.5 must lie in (0, 1]"),
        ("rollout.horizon=0-3", "rollout.horizon='0-3': stops must lie in 1..10"),
        ("train.group_size=1", "train.group_size=1: a DiffusionNFT group needs at least 2 images"),
    ],
)
def test_bad_input_fails_before_any_actor_starts(monkeypatch, tmp_path, override, message):
    monkeypatch.setattr(training_job, "connect", lambda cfg: pytest.fail("Ray was started for a bad config"))
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace("[", r"\[")):
        _run(f"run_dir={tmp_path}", override)


def test_a_value_built_for_another_reward_or_backbone_is_refused_before_any_actor_starts(monkeypatch, tmp_path):
    monkeypatch.setattr(training_job, "connect", lambda cfg: pytest.fail("Ray was started for a bad config"))
    # The committed value reads the preference reward; this job trains on the CLIP.
    with pytest.raises(ValueError, match="rollout.value.path=.* was built for another reward: path=.*preference"):
        _run(f"run_dir={tmp_path / 'a'}", "rollout.horizon=5-7", "rewards=tiny_clip")
    value = tmp_path / "value"
    shutil.copytree(ROOT / "artifacts" / "values" / "tiny_pref", value)
    card = json.loads((value / "value.json").read_text())
    card["backbone"]["family"] = "flux"
    (value / "value.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="built for another backbone: family='flux' \\(this job: 'sd3'\\)"):
        _run(f"run_dir={tmp_path / 'b'}", "rollout.horizon=5-7", f"rollout.value.path={value}")


def test_a_damaged_weights_file_fails_before_the_run_directory_or_ray(monkeypatch, tmp_path):
    monkeypatch.setattr(training_job, "connect", lambda cfg: pytest.fail("Ray was started for a damaged file"))
    reward = tmp_path / "preference"
    shutil.copytree(ROOT / "artifacts" / "world" / "preference", reward)
    weights = reward / "open_clip_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="rewards.pref.model.path: .*open_clip_model.safetensors.*truncated"):
        _run(f"run_dir={tmp_path / 'a'}", f"rewards.pref.model.path={reward}")
    model = tmp_path / "generator"
    shutil.copytree(ROOT / "artifacts" / "world" / "generator", model)
    config = json.loads((model / "transformer" / "config.json").read_text())
    (model / "transformer" / "config.json").write_text(json.dumps({**config, "pooled_projection_dim": 96}))
    with pytest.raises(ValueError, match="model.path: .*transformer.*config.json does not match the weights"):
        _run(f"run_dir={tmp_path / 'b'}", f"model.path={model}")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_unknown_reward_preset_is_refused_when_composing():
    with pytest.raises(Exception, match="rewards.*nope|nope.*rewards"):
        _compose("rewards=nope")


def test_stopped_and_resumed_run_repeats_the_uninterrupted_one(ray_local, tmp_path):
    """Same seed, CPU: identical rewards, losses and evaluation after resuming from step 2 of 4."""
    whole = _run(f"run_dir={tmp_path / 'whole'}", "train.steps=4", *SMALL)
    _run(f"run_dir={tmp_path / 'parts'}", "train.steps=2", *SMALL)
    resumed = _run(f"resume={tmp_path / 'parts'}", "train.steps=4")
    assert resumed["steps"] == whole["steps"] == 4
    assert training_rows(tmp_path / "parts") == training_rows(tmp_path / "whole")
    assert resumed["final_reward"] == whole["final_reward"]
    assert resumed["final_prompt_acc"] == whole["final_prompt_acc"]
    assert (tmp_path / "whole" / "curves.png").is_file() and (tmp_path / "whole" / "summary.json").is_file()
    kept = sorted(p.name for p in (tmp_path / "parts" / "checkpoints").iterdir())
    assert kept == ["step_000002", "step_000004"]
    with pytest.raises(ValueError, match="only .* may be given"):
        _run(f"resume={tmp_path / 'parts'}", "train.steps=6", "learner.lr=1.0")


def test_resume_auto_starts_a_run_then_continues_it_with_the_same_command(tmp_path):
    """In process, same seed, CPU: the command run twice (stopped after 2 steps, then to 4) writes the
    metrics of one uninterrupted run; a command with other settings is refused."""
    same = ["cluster=in_process", *SMALL, "learner.micro_batch=2"]
    whole = _run(f"run_dir={tmp_path / 'whole'}", "train.steps=4", *same)
    command = [f"run_dir={tmp_path / 'auto'}", "resume=auto", *same]
    _run(*command, "train.steps=2")
    assert sorted(p.name for p in (tmp_path / "auto" / "checkpoints").iterdir()) == ["step_000002"]
    again = _run(*command, "train.steps=4")
    assert training_rows(tmp_path / "auto") == training_rows(tmp_path / "whole")
    assert again["final_reward"] == whole["final_reward"]
    with pytest.raises(ValueError, match="holds a run started with other settings .*learner.lr=0.001 there, 0.01 here"):
        _run(*command, "learner.lr=0.01")
    with pytest.raises(ValueError, match="resume=auto continues the run in run_dir; give it"):
        _run("resume=auto", *same)


def test_the_in_process_mode_repeats_the_ray_run(ray_local, tmp_path):
    """Same seed, CPU, one learner and one worker with one thread each: the same rows, losses and evaluation
    whether they run as Ray actors or in this process."""
    same = ["train.steps=2", *SMALL, "learner.num_learners=1", "learner.num_cpus=1", "rollout.num_cpus=1"]
    on_ray = _run(f"run_dir={tmp_path / 'ray'}", *same)
    in_process = _run(f"run_dir={tmp_path / 'local'}", "cluster=in_process", *same)
    assert training_rows(tmp_path / "local") == training_rows(tmp_path / "ray")
    assert in_process["final_reward"] == on_ray["final_reward"]
    assert in_process["final_prompt_acc"] == on_ray["final_prompt_acc"]
    with pytest.raises(ValueError, match="cluster.mode=in_process runs one learner in this process, not learner.num_learners=2"):
        _run(f"run_dir={tmp_path / 'two'}", "cluster=in_process", "learner.num_learners=2")


def _kill_a_learner_after(checkpoint: Path) -> threading.Thread:
    """A thread that waits for `checkpoint`, then SIGKILLs one learner's process (found by its Ray
    process title)."""

    def kill():
        while not checkpoint.is_dir():
            time.sleep(0.2)
        for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
            try:
                if b"ray::NFTLearner" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
                    return
            except OSError:
                continue

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_killed_learner_ends_the_run_with_how_to_continue_and_continuing_repeats_the_whole_run(ray_local, tmp_path):
    """Same seed, CPU: the run continued from its last checkpoint writes what an undisturbed run writes."""
    whole = _run(f"run_dir={tmp_path / 'whole'}", "train.steps=6", *SMALL)
    killer = _kill_a_learner_after(tmp_path / "cut" / "checkpoints" / "step_000002")
    with pytest.raises(RuntimeError, match="a process of the run died") as err:
        _run(f"run_dir={tmp_path / 'cut'}", "train.steps=6", *SMALL)
    killer.join(timeout=1)
    assert f"Continue with: python launch/nft.py resume={tmp_path / 'cut'}" in str(err.value)
    assert "checkpoints/step_00000" in str(err.value)
    resumed = _run(f"resume={tmp_path / 'cut'}", "train.steps=6")
    assert training_rows(tmp_path / "cut") == training_rows(tmp_path / "whole")
    assert resumed["final_reward"] == whole["final_reward"]


def test_bounded_staleness_samples_ahead_with_the_previous_weights(ray_local, tmp_path):
    _run(f"run_dir={tmp_path}", "train.steps=3", "train.max_staleness=1", *SMALL)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()][1:]
    # Step 2's batch was sampled while step 1 trained: one version behind, never more.
    assert [r["policy_version"] for r in rows] == [0, 0, 1]


def test_value_mode_scores_partial_rollouts_with_the_committed_value(ray_local, tmp_path):
    # device=auto: resolved in each actor (cpu here), as the stitcher and steering resolve it.
    summary = _run(f"run_dir={tmp_path}", "train.steps=2", "rollout.horizon=2-3", "device=auto", *SMALL)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()][1:]
    times = [0.602, 0.009]  # the 4-step shifted schedule's times after steps 2 and 3
    assert all(min(times) - 1e-3 <= r["stop_time"] <= max(times) + 1e-3 for r in rows)
    assert all("reward/value" in r for r in rows)
    assert summary["final_prompt_acc"] is not None  # evaluation still samples fully and uses the verifier


def test_ray_job_submit_against_a_local_head(tmp_path):
    """ray start --head on 127.0.0.1 (own ports and temp dir), then ray job submit --working-dir ."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    env.pop("RAY_ADDRESS", None)
    ports = ["--port", "6391", "--dashboard-port", "8276", "--dashboard-agent-listen-port", "52391",
             "--ray-client-server-port", "10391", "--min-worker-port", "20000", "--max-worker-port", "20999"]
    temp = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    head = subprocess.Popen(
        ["ray", "start", "--head", "--block", "--num-cpus", "4", "--dashboard-host", "127.0.0.1",
         "--node-ip-address", "127.0.0.1", "--temp-dir", temp, *ports],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    run_dir = tmp_path / "job_run"
    try:
        address = "http://127.0.0.1:8276"
        for _ in range(90):  # the dashboard takes a while to come up
            if subprocess.run(["ray", "job", "list", "--address", address], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(1)
        job = subprocess.run(
            ["ray", "job", "submit", "--address", address, "--working-dir", str(ROOT), "--",
             "python", "launch/nft.py", f"run_dir={run_dir}", "train.steps=2", *SMALL],
            env=env, capture_output=True, text=True, timeout=600,
        )
        assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
        assert "succeeded" in (job.stdout + job.stderr).lower()
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["steps"] == 2 and summary["run_dir"] == str(run_dir)
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)
