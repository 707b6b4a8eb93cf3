"""DRaFT on the DeepSpeed learner group: DRaFT-K on the clean reward, or DRaFT + value (draft.horizon=a-b).

    python launch/draft.py                           # DRaFT + value on the tiny world, a local Ray, CPU
    python launch/draft.py draft.horizon=full        # the baseline: DRaFT-K on the decoded clean reward
    python launch/draft.py resume=runs/draft/<run>   # continue a run from its latest checkpoint
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python launch/draft.py run_dir=/abs/path

Writes <run_dir>/{config.yaml, metrics.jsonl, summary.json, curves.png, samples/, checkpoints/, wandb/}.
Every input is checked before Ray starts. The last line printed is the summary as one JSON object.
"""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # importable without pip install (ray --working-dir)

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from launch import training_job  # noqa: E402
from launch.config_schema import register_schemas  # noqa: E402
from learner.draft_config import DraftJobConfig  # noqa: E402
from learner.draft_trainer import DraftTrainer  # noqa: E402

register_schemas()


def run(raw: DictConfig, overrides: list[str]) -> dict:
    return training_job.run(raw, overrides, DraftJobConfig, DraftTrainer)


@hydra.main(config_path="../configs", config_name="draft", version_base=None)
def main(raw: DictConfig) -> None:
    print(json.dumps(run(raw, list(HydraConfig.get().overrides.task))))


if __name__ == "__main__":
    main()
