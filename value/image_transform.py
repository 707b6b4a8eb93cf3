"""A reward model's image preprocessing, in torch so gradients reach the pixels.

Matches the PIL pipelines of the real checkpoints up to resampling differences: OpenAI CLIP resizes
the shortest side and centre-crops, HPSv2 resizes the longest side and zero-pads, DFN squashes.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
RESIZE_MODES = ("shortest", "longest", "squash")


@dataclass(frozen=True)
class ImageTransform:
    size: int
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    resize_mode: str = "shortest"

    def __post_init__(self):
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode={self.resize_mode!r} is not one of {RESIZE_MODES}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1] -> normalised pixels (B, 3, size, size)."""
        B, C, H, W = images.shape
        if C != 3:
            raise ValueError(f"expected RGB images (B, 3, H, W), got {tuple(images.shape)}")
        x = self._resize(images, H, W)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std

    def _resize(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        s = self.size
        if self.resize_mode == "squash" or (H == W and self.resize_mode == "shortest"):
            return _bicubic(x, s, s)
        if self.resize_mode == "shortest":
            scale = s / min(H, W)
            h, w = max(s, round(H * scale)), max(s, round(W * scale))
            x = _bicubic(x, h, w)
            top, left = (h - s) // 2, (w - s) // 2
            return x[..., top : top + s, left : left + s]
        scale = s / max(H, W)  # longest: fit inside, pad with black (0 before normalisation) to a square
        h, w = min(s, round(H * scale)), min(s, round(W * scale))
        x = _bicubic(x, h, w)
        top, left = (s - h) // 2, (s - w) // 2
        return F.pad(x, (left, s - w - left, top, s - h - top), value=0.0)


def _bicubic(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if x.shape[-2:] == (h, w):
        return x
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
