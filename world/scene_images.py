"""The tiny world as the stitcher's image source: rendered training scenes with their captions, and the
training captions the generator kind samples for (never a held-out evaluation prompt)."""

import numpy as np

from stitching.images import ImageBatch, ImageSourceConfig
from world.clip import captioned_scenes
from world.prompts import EVAL_PER_FAMILY, all_held_out
from world.scenes import CANVAS, DigitBank, render_batch


def scene_source(cfg: ImageSourceConfig):
    """batch(step, size) of rendered training scenes and their captions; negative steps are the probe set."""
    if cfg.size != CANVAS:
        raise ValueError(f"images.size={cfg.size} but tiny-world scenes are {CANVAS}x{CANVAS}; set images.size={CANVAS}")
    bank = DigitBank(cfg.seed)

    def batch(step: int, size: int) -> ImageBatch:
        rng = np.random.default_rng([cfg.seed, int(step < 0), abs(step)])  # probe (step < 0) and training streams
        scenes = captioned_scenes(size, rng)
        return ImageBatch(render_batch([s for s, _ in scenes], bank, "train", rng), [c.text() for _, c in scenes])

    return batch


def training_captions(n: int, seed: int) -> list[str]:
    """n seeded captions of training scenes, none of them a held-out evaluation prompt."""
    held_out = all_held_out(EVAL_PER_FAMILY)
    return [spec.text() for _, spec in captioned_scenes(n, np.random.default_rng(seed), exclude=held_out)]
