"""Clean images for the stitcher (the stage-1 probe set and stage-2 training data), each with the prompt
it shows: rendered tiny-world scenes by default, a folder of image files for the real models (HPDv2 /
AVA in the paper; no prompts), or samples of the backbone itself.

Why the backbone's own samples: a value is asked about latents on the base model's trajectories, and the
student only learns E[r(x0) | z_t] where its training x0 come from that model. Measured on the tiny world
(generator x preference, (i, j) = (4, 1), 800 steps): Spearman against the Monte Carlo truth at t = .89 /
.73 / .52 / .27 / .15 is .31 / .48 / .66 / .68 / .62 on 3,000 samples against .27 / .47 / .63 / .65 / .62
on rendered scenes (docs/results/2026-12-01-stitch.md).

A source is batch(step, size) -> an `ImageBatch` of `size` images and their prompts, a function of the
step alone, so a resumed run sees the images an uninterrupted one would have. The launch script picks
it (`folder_source`, `generator_source`, or the tiny world's `world.scene_images.scene_source`) and
passes it down with the prompts: nothing here reads a prompt file or the world.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from diffusion.sampling import SamplerConfig, sample

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
IMAGE_KINDS = ("tiny_world", "folder", "generator")


@dataclass
class ImageBatch:
    """images (B, 3, S, S) in [0, 1]; prompts: the caption each image was rendered or sampled for (the
    null prompt "" for a folder of files, which has none)."""

    images: torch.Tensor
    prompts: list[str]


@dataclass(kw_only=True)
class ImageSourceConfig:
    """kind: tiny_world (training scenes of the world's captions) | folder (image files under `path`) |
    generator (a pool of `samples` images of the backbone itself, `num_steps` Euler steps, spread evenly
    over `cfg_scales`, for the tiny world's training captions or, when `path` is set, the prompts of
    that file, one per line). The tiny world's scenes are `size` 32."""

    kind: str = "tiny_world"
    path: str = ""
    size: int = 32
    seed: int = 0
    samples: int = 3000
    cfg_scales: list[float] = field(default_factory=lambda: [1.0, 4.0])
    num_steps: int = 20

    def __post_init__(self):
        if self.kind not in IMAGE_KINDS:
            raise ValueError(f"images.kind={self.kind!r} is not one of {', '.join(IMAGE_KINDS)}")
        if self.kind == "folder" and not self.path:
            raise ValueError("images.kind=folder needs images.path, a directory of .png/.jpg/.webp files")
        if self.kind == "generator" and (self.samples < len(self.cfg_scales) or not self.cfg_scales):
            raise ValueError(f"images.samples={self.samples} must be at least one per images.cfg_scales={self.cfg_scales}")


def _cycle(get, prompt, n: int, seed: int):
    """batch(step, size) over a pool of n images (get(i), prompt(i)) in a fixed shuffled order (negative
    steps: the probe set)."""
    order = np.random.default_rng(seed).permutation(n)

    def batch(step: int, size: int) -> ImageBatch:
        picked = [int(order[(step * size + k) % n]) for k in range(size)]
        return ImageBatch(torch.stack([get(i) for i in picked]), [prompt(i) for i in picked])

    return batch


def folder_source(cfg: ImageSourceConfig):
    """The image files under `cfg.path`, shorter side resized to `cfg.size` and centre-cropped; no prompts."""
    from PIL import Image

    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"images.path={cfg.path!r} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"images.path={cfg.path!r} holds no {', '.join(IMAGE_SUFFIXES)} files")

    def load(path: Path) -> torch.Tensor:
        image = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
        h, w = image.shape[1:]
        scale = cfg.size / min(h, w)  # shorter side to size, then a centre crop
        image = F.interpolate(image[None], size=(max(cfg.size, round(h * scale)), max(cfg.size, round(w * scale))),
                              mode="bicubic", antialias=True, align_corners=False)[0]
        top, left = (image.shape[1] - cfg.size) // 2, (image.shape[2] - cfg.size) // 2
        return image[:, top : top + cfg.size, left : left + cfg.size].clamp(0, 1)

    return _cycle(lambda i: load(files[i]), lambda i: "", len(files), cfg.seed)


@torch.no_grad()
def generator_source(cfg: ImageSourceConfig, backbone, prompts: list[str]):
    """A pool of the backbone's samples. Sample i: prompt i (cycled), seed seed * samples + i, the cfg scale
    of its contiguous block."""
    C, h, w = backbone.latent_shape(cfg.size, cfg.size)
    times = backbone.schedule(cfg.num_steps, h, w)
    images = []
    for scale, block in zip(cfg.cfg_scales, np.array_split(np.arange(cfg.samples), len(cfg.cfg_scales)), strict=True):
        sampler = SamplerConfig(num_steps=cfg.num_steps, cfg_scale=scale)
        for chunk in np.array_split(block, -(-len(block) // 64)):
            idx = chunk.tolist()
            cond, null = backbone.conditions([prompts[i % len(prompts)] for i in idx], scale)
            z0 = sample(backbone, cond, times=times,
                        seeds=[cfg.seed * cfg.samples + i for i in idx], latent_shape=(C, h, w), config=sampler,
                        null_cond=null).final
            images.append(backbone.decode(z0).float().cpu())
    pool = torch.cat(images)
    return _cycle(lambda i: pool[i], lambda i: prompts[i % len(prompts)], len(pool), cfg.seed)
