"""launch/generate.py end to end on the embedded default, as a user runs it (a subprocess, CPU)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*overrides, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / "launch" / "generate.py"), *overrides],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


def test_writes_the_run_directory_and_ends_with_a_json_summary(tmp_path):
    args = ("samples_per_prompt=2", "sampler.num_steps=3", "prompts=[a red seven,two blue threes]")
    first = _run(f"run_dir={tmp_path / 'a'}", *args, cwd=tmp_path)  # run from elsewhere: no pip install needed
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    run_dir = Path(summary["run_dir"])
    assert run_dir == tmp_path / "a" and summary["num_samples"] == 4
    for name in ("config.yaml", "samples.png", "samples.jsonl", "summary.json"):
        assert (run_dir / name).is_file(), name
    # Same seed, same numbers.
    second = _run(f"run_dir={tmp_path / 'b'}", *args, cwd=tmp_path)
    assert json.loads(second.stdout.strip().splitlines()[-1])["reward_mean"] == summary["reward_mean"]


def test_missing_prompt_file_is_a_clear_error(tmp_path):
    out = _run(f"run_dir={tmp_path}", f"prompt_file={tmp_path / 'nope.txt'}")
    assert out.returncode != 0
    assert "prompt_file=" in out.stderr and "does not exist" in out.stderr
