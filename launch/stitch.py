"""Build a stitched value model (StitchVM): stage-1 search, stage-2 distillation, export, reports.

    python launch/stitch.py                                    # the tiny world's generator x its CLIP, CPU
    python launch/stitch.py reward=tiny_pref                   # ... x its preference reward
    python launch/stitch.py +experiment=stitch_tiny_prompted   # prompted, distilled on the one-step estimate
    python launch/stitch.py +experiment=stitch_sd35m_clip model.path=... reward.path=... images.path=...

Writes <run_dir>/{config.yaml, search.{csv,json}, search_heatmap.png, metrics.jsonl, value/, fidelity.png,
calibration.png, calibration_null_prompt.png, summary.json}; resumes distillation from <run_dir>/checkpoints
when run again with the same run_dir. The last line printed is the summary as one JSON object.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # importable without pip install (ray --working-dir)

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from launch.config_schema import StitchJobConfig, register_schemas  # noqa: E402
from launch.models import model_and_reward  # noqa: E402
from launch.prompt_file import read_prompt_file  # noqa: E402
from launch.run_dir import start_run_dir  # noqa: E402
from stitching.images import ImageSourceConfig, folder_source, generator_source  # noqa: E402
from stitching.pipeline import run_stitch  # noqa: E402

register_schemas()


def calibration_prompts(cfg: StitchJobConfig) -> list[str]:
    if cfg.prompt_file:
        return read_prompt_file(cfg.prompt_file)
    from world.prompts import all_eval_prompts

    return all_eval_prompts(8)


def image_prompts(images: ImageSourceConfig) -> list[str]:
    """What the generator kind samples for: the lines of images.path, or the tiny world's training captions."""
    if images.path:
        return read_prompt_file(images.path)
    from world.scene_images import training_captions

    return training_captions(images.samples, images.seed)


def image_source(images: ImageSourceConfig, backbone):
    if images.kind == "folder":
        return folder_source(images)
    if images.kind == "generator":
        return generator_source(images, backbone, image_prompts(images))
    from world.scene_images import scene_source

    return scene_source(images)


def score_captions(cfg: StitchJobConfig) -> list[str]:
    """The distillation score term's caption set: the first n distinct lines of stitch.caption_file, else
    of the prompts the images show (a folder of files has none)."""
    if not cfg.stitch.distill.score_weight:
        return []
    if cfg.stitch.caption_file:
        pool = read_prompt_file(cfg.stitch.caption_file)
    elif cfg.images.kind == "folder":
        raise ValueError("images.kind=folder has no captions for the score term: set stitch.caption_file to a "
                         "prompt file (one caption per line), or stitch.distill.score_weight=0")
    else:
        pool = image_prompts(cfg.images)
    return list(dict.fromkeys(pool))[: cfg.stitch.distill.score_captions]


def fidelity_report(images: ImageSourceConfig):
    """The tiny world's fidelity report where the value was trained in it: on its rendered scenes, or on the
    backbone's samples for its captions (no prompt file); None elsewhere."""
    if images.kind == "tiny_world" or (images.kind == "generator" and not images.path):
        from world.fidelity import fidelity

        return fidelity
    return None


@hydra.main(config_path="../configs", config_name="stitch", version_base=None)
def main(raw: DictConfig) -> None:
    cfg: StitchJobConfig = OmegaConf.to_object(raw)
    run_dir = start_run_dir(cfg.run_dir, raw)
    backbone, reward, _ = model_and_reward(cfg)
    card = {"backbone": OmegaConf.to_container(raw.model), "reward": OmegaConf.to_container(raw.reward)}
    summary = run_stitch(
        backbone, reward, image_source(cfg.images, backbone), stitch=cfg.stitch,
        report=cfg.report, captions=score_captions(cfg), prompts=calibration_prompts(cfg),
        fidelity=fidelity_report(cfg.images), height=cfg.height, width=cfg.width, seed=cfg.seed, run_dir=run_dir,
        card=card,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
