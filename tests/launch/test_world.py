"""launch/world.py end to end on a miniature recipe: Hydra config, build, and the JSON gates line."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MINI = [
    "world.verifier_steps=2", "world.vae_steps=2", "world.clip_steps=2", "world.preference_steps=2",
    "world.generator_steps=2", "world.generator_scenes=32", "world.eval_prompts_per_family=1",
    "world.eval_samples_per_prompt=1", "world.sample_steps=2", "world.threads=1",
]


def test_world_script_prints_the_gates_last(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "launch" / "world.py"), f"world.dir={tmp_path / 'w'}", *MINI],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    gates = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("vae_psnr_db", "clip_zero_shot_acc", "pref_pairwise_acc", "verifier_acc", "base_prompt_acc_cfg1",
                "base_prompt_acc_cfg", "per_family_cfg1", "build_seconds", "size_mb"):
        assert key in gates, key
    assert (tmp_path / "w" / "card.json").is_file()
    assert not list(tmp_path.glob("*.log"))  # hydra writes no log files into the working directory
