"""DRaFT on the DeepSpeed learner group: DRaFT-K on the clean reward, or DRaFT + value (draft.horizon=a-b).

    python launch/draft.py                           # DRaFT + value on the tiny world, a local Ray, CPU
    python launch/draft.py draft.horizon=full        # the baseline: DRaFT-K on the decoded clean reward
    python launch/draft.py resume=runs/draft/<run>   # continue a run from its latest checkpoint
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python launch/draft.py run_dir=/abs/path

Writes <run_dir>/{config.yaml, metrics.jsonl, summary.json, curves.png, samples/, checkpoints/, wandb/}.
Every input is checked before Ray starts. The last line printed is the summary as one JSON object.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # importable without pip install (ray --working-dir)

from launch import training_job  # noqa: E402
from launch.config_schema import register_schemas  # noqa: E402
from learner.draft_config import DraftJobConfig  # noqa: E402
from learner.draft_trainer import DraftTrainer  # noqa: E402

register_schemas()
run, main = training_job.entry_point("draft", DraftJobConfig, DraftTrainer)

if __name__ == "__main__":
    main()
