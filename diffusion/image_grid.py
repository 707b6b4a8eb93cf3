"""Saving a batch of images as one PNG grid (what every run directory shows a person)."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def save_grid(images: torch.Tensor, path: str | Path, *, columns: int, scale: int = 1) -> Path:
    """images (B, 3, H, W) in [0, 1] -> a PNG of ceil(B / columns) rows; `scale` enlarges small images."""
    B, C, H, W = images.shape
    rows = -(-B // columns)
    canvas = torch.zeros(3, rows * H, columns * W)
    for k in range(B):
        r, c = divmod(k, columns)
        canvas[:, r * H : (r + 1) * H, c * W : (c + 1) * W] = images[k].detach().float().cpu().clamp(0, 1)
    array = (canvas.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
