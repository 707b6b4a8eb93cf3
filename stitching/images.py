"""Clean images for the stitcher (the stage-1 probe set and stage-2 training data): rendered tiny-world
scenes by default, or a folder of image files for the real models (HPDv2 / AVA in the paper).

`image_source(cfg)` returns batch(step, size) -> (size, 3, S, S) in [0, 1], a function of the step
alone, so a resumed run sees the images an uninterrupted one would have.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(kw_only=True)
class ImageSourceConfig:
    """kind: tiny_world (training scenes of the world's captions) | folder (image files under `path`)."""

    kind: str = "tiny_world"
    path: str = ""
    size: int = 32
    seed: int = 0

    def __post_init__(self):
        if self.kind not in ("tiny_world", "folder"):
            raise ValueError(f"images.kind={self.kind!r} is not one of tiny_world, folder")
        if self.kind == "folder" and not self.path:
            raise ValueError("images.kind=folder needs images.path, a directory of .png/.jpg/.webp files")


def image_source(cfg: ImageSourceConfig):
    return _world_source(cfg) if cfg.kind == "tiny_world" else _folder_source(cfg)


def _world_source(cfg: ImageSourceConfig):
    from world.clip import captioned_scenes
    from world.scenes import CANVAS, DigitBank, render_batch

    if cfg.size != CANVAS:
        raise ValueError(f"images.size={cfg.size} but tiny-world scenes are {CANVAS}x{CANVAS}; set images.size={CANVAS}")
    bank = DigitBank(cfg.seed)

    def batch(step: int, size: int) -> torch.Tensor:
        rng = np.random.default_rng([cfg.seed, int(step < 0), abs(step)])  # probe (step < 0) and training streams
        return render_batch([s for s, _ in captioned_scenes(size, rng)], bank, "train", rng)

    return batch


def _folder_source(cfg: ImageSourceConfig):
    from PIL import Image

    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"images.path={cfg.path!r} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"images.path={cfg.path!r} holds no {', '.join(IMAGE_SUFFIXES)} files")
    order = np.random.default_rng(cfg.seed).permutation(len(files))

    def load(path: Path) -> torch.Tensor:
        image = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
        h, w = image.shape[1:]
        scale = cfg.size / min(h, w)  # shorter side to size, then a centre crop
        image = F.interpolate(image[None], size=(max(cfg.size, round(h * scale)), max(cfg.size, round(w * scale))),
                              mode="bicubic", antialias=True, align_corners=False)[0]
        top, left = (image.shape[1] - cfg.size) // 2, (image.shape[2] - cfg.size) // 2
        return image[:, top : top + cfg.size, left : left + cfg.size].clamp(0, 1)

    def batch(step: int, size: int) -> torch.Tensor:
        return torch.stack([load(files[order[(step * size + k) % len(files)]]) for k in range(size)])

    return batch
