"""Build the tiny world (the embedded default): verifier, VAE, CLIP reward, preference reward and the
generator, trained on 2 CPU cores from scikit-learn's bundled digits, then its quality gates.

    python launch/world.py                       # build into artifacts/world, or reuse what is there
    python launch/world.py world.generator_steps=2000 world.dir=/tmp/world

Reuses every component that is complete, uncorrupted and built from the same recipe; rebuilds the
rest. The last line printed is the gates as one JSON object.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # importable without pip install (ray --working-dir)

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from launch.config_schema import WorldJobConfig, register_schemas  # noqa: E402
from world.build import build_world, summary_line  # noqa: E402

register_schemas()


@hydra.main(config_path="../configs", config_name="world", version_base=None)
def main(raw: DictConfig) -> None:
    cfg: WorldJobConfig = OmegaConf.to_object(raw)
    cfg.world.dir = str(Path(cfg.world.dir).resolve())
    card = build_world(cfg.world)
    print(json.dumps(summary_line(card)))


if __name__ == "__main__":
    main()
