"""Flow-GRPO and Flow-GRPO-Fast with Ray rollout workers and a DeepSpeed learner group.

    python launch/grpo.py                                   # the tiny world, a local Ray, CPU
    python launch/grpo.py rewards=tiny_clip train.steps=50  # another reward, a shorter run
    python launch/grpo.py resume=runs/grpo/<run>             # continue a run from its latest checkpoint
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python launch/grpo.py run_dir=/abs/path

Writes <run_dir>/{config.yaml, metrics.jsonl, summary.json, curves.png, samples/, checkpoints/, wandb/}.
Every input is checked before Ray starts. The last line printed is the summary as one JSON object.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # importable without pip install (ray --working-dir)

from launch import training_job  # noqa: E402
from launch.config_schema import register_schemas  # noqa: E402
from learner.grpo_config import GRPOJobConfig  # noqa: E402
from learner.grpo_trainer import GRPOTrainer  # noqa: E402

register_schemas()
run, main = training_job.entry_point("grpo", GRPOJobConfig, GRPOTrainer)

if __name__ == "__main__":
    main()
