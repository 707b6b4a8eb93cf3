"""Adjoint Matching (AM) and Efficient Adjoint Matching (EAM) on the DeepSpeed learner group: finetune the
generator toward p_base exp(lambda r) (docs/adjoint.md).

    python launch/adjoint.py                          # EAM on the tiny world, a local Ray, CPU
    python launch/adjoint.py adjoint.method=am        # the baseline: AM (memoryless SDE rollouts, the lean adjoint)
    python launch/adjoint.py resume=runs/adjoint/<run>
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python launch/adjoint.py run_dir=/abs/path

Writes <run_dir>/{config.yaml, metrics.jsonl, summary.json, curves.png, samples/, checkpoints/, wandb/}.
Every input is checked before Ray starts. The last line printed is the summary as one JSON object.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # importable without pip install (ray --working-dir)

from launch import training_job  # noqa: E402
from launch.config_schema import register_schemas  # noqa: E402
from learner.adjoint_config import AdjointJobConfig  # noqa: E402
from learner.adjoint_trainer import AdjointTrainer  # noqa: E402

register_schemas()
run, main = training_job.entry_point("adjoint", AdjointJobConfig, AdjointTrainer)

if __name__ == "__main__":
    main()
