"""Saving a batch of images as one PNG grid (what every run directory shows a person), each prompt written
under its images so a reader can judge them."""

import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def save_grid(images: torch.Tensor, path: str | Path, *, columns: int, scale: int = 1, labels: list[str] | None = None) -> Path:
    """images (B, 3, H, W) in [0, 1] -> a PNG of ceil(B / columns) rows; `scale` enlarges small images.

    labels: one per image (its prompt); written once under each run of equal labels in a row, wrapped to
    the run's width."""
    B, C, H, W = images.shape
    if labels is not None and len(labels) != B:
        raise ValueError(f"{B} images but {len(labels)} labels; give one label per image")
    rows = -(-B // columns)
    canvas = torch.zeros(3, rows * H, columns * W)
    for k in range(B):
        r, c = divmod(k, columns)
        canvas[:, r * H : (r + 1) * H, c * W : (c + 1) * W] = images[k].detach().float().cpu().clamp(0, 1)
    array = (canvas.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    if labels is not None:
        image = _with_labels(image, labels, columns=columns, tile=(H * scale, W * scale))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def _runs(labels: list[str], columns: int) -> list[tuple[int, int, int, str]]:
    """(row, first column, length, label) of each run of equal consecutive labels within a row."""
    runs = []
    for k, label in enumerate(labels):
        r, c = divmod(k, columns)
        if runs and runs[-1][0] == r and runs[-1][3] == label:
            runs[-1] = (r, runs[-1][1], runs[-1][2] + 1, label)
        else:
            runs.append((r, c, 1, label))
    return runs


def _with_labels(image: Image.Image, labels: list[str], *, columns: int, tile: tuple[int, int]) -> Image.Image:
    font = ImageFont.load_default()
    char_w, line_h = max(1, int(font.getlength("x"))), font.getbbox("Ag")[3] + 2
    runs = [(r, c, n, textwrap.wrap(label, max(4, (n * tile[1] - 4) // char_w)) or [""]) for r, c, n, label in _runs(labels, columns)]
    band = line_h * max(len(lines) for *_, lines in runs) + 4
    rows = image.height // tile[0]
    out = Image.new("RGB", (image.width, rows * (tile[0] + band)), "white")
    draw = ImageDraw.Draw(out)
    for r in range(rows):
        out.paste(image.crop((0, r * tile[0], image.width, (r + 1) * tile[0])), (0, r * (tile[0] + band)))
    for r, c, n, lines in runs:
        for i, line in enumerate(lines):
            draw.text((c * tile[1] + 2, r * (tile[0] + band) + tile[0] + 2 + i * line_h), line, fill="black", font=font)
    return out
