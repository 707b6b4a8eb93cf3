"""Scenes: a 32x32 canvas of 2x2 cells (16x16 each), each empty or holding one coloured digit.

Digits are real handwriting from scikit-learn's `load_digits` (1,797 images, 8x8), upsampled to 12x12
and placed with up to 4 pixels of jitter inside their cell, on a dark background. The digit images are
split into train / val / test, so test scenes use handwriting no model was trained on. The generator
and the rewards learn from train; the verifier from train+val (more, and other, handwriting than the
models it judges, as GenEval's detector is trained on other data).
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
PLURAL_NAMES = ("zeros", "ones", "twos", "threes", "fours", "fives", "sixes", "sevens", "eights", "nines")
COLOURS = {
    "red": (1.0, 0.15, 0.15),
    "green": (0.15, 0.85, 0.2),
    "blue": (0.2, 0.35, 1.0),
    "yellow": (1.0, 0.9, 0.1),
    "magenta": (0.95, 0.2, 0.95),
    "cyan": (0.1, 0.9, 0.95),
    "white": (0.95, 0.95, 0.95),
    "orange": (1.0, 0.55, 0.05),
}
COLOUR_NAMES = tuple(COLOURS)
BACKGROUND = (0.04, 0.04, 0.07)
CANVAS, CELL, GLYPH, JITTER = 32, 16, 12, 4
SPLITS = ("train", "val", "test", "train+val")  # the verifier reads more handwriting than the models it judges


@dataclass(frozen=True)
class Item:
    digit: int
    colour: int  # index into COLOUR_NAMES


@dataclass(frozen=True)
class Scene:
    """cells[k] for k = 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right; None is an empty cell."""

    cells: tuple[Item | None, Item | None, Item | None, Item | None]

    def __post_init__(self):
        if len(self.cells) != 4:
            raise ValueError(f"a scene has 4 cells, got {len(self.cells)}")


def cell_row_col(k: int) -> tuple[int, int]:
    return divmod(k, 2)


class DigitBank:
    """The handwritten digits, 12x12 in [0, 1], split 60/20/20 by image (deterministic in `seed`)."""

    def __init__(self, seed: int = 0):
        data = load_digits()
        glyphs = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
        glyphs = F.interpolate(glyphs, size=(GLYPH, GLYPH), mode="bilinear", align_corners=False).squeeze(1)
        order = np.random.default_rng(seed).permutation(len(glyphs))
        n_train, n_val = int(0.6 * len(order)), int(0.2 * len(order))
        parts = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
        parts["train+val"] = order[: n_train + n_val]
        self._glyphs = {s: glyphs[idx].clamp(0, 1).numpy() for s, idx in parts.items()}
        self._labels = {s: torch.tensor(data.target[idx]) for s, idx in parts.items()}
        self._by_digit = {s: [torch.nonzero(self._labels[s] == d).flatten() for d in range(10)] for s in SPLITS}

    def glyph(self, digit: int, split: str, rng: np.random.Generator) -> np.ndarray:
        """One random 12x12 image of `digit` from `split`."""
        choices = self._by_digit[split][digit]
        return self._glyphs[split][choices[rng.integers(len(choices))]]

    def size(self, split: str) -> int:
        return len(self._labels[split])


_PALETTE = np.array([COLOURS[name] for name in COLOUR_NAMES], dtype=np.float32)


def render_batch(scenes: list[Scene], bank: DigitBank, split: str, rng: np.random.Generator) -> torch.Tensor:
    """The scenes as images (B, 3, 32, 32) in [0, 1]. Per filled cell, in order: its jitter, its glyph."""
    ink = np.zeros((len(scenes), CANVAS, CANVAS), np.float32)
    colour = np.zeros((len(scenes), CANVAS, CANVAS, 3), np.float32)
    for b, scene in enumerate(scenes):
        for k, item in enumerate(scene.cells):
            if item is None:
                continue
            r, c = cell_row_col(k)
            dy, dx = JITTER * rng.integers(0, 2, size=2)  # whole patches of the reward ViT (patch 4)
            top, left = r * CELL + int(dy), c * CELL + int(dx)
            ink[b, top : top + GLYPH, left : left + GLYPH] = bank.glyph(item.digit, split, rng)
            colour[b, top : top + GLYPH, left : left + GLYPH] = _PALETTE[item.colour]
    ink = ink[..., None]
    image = np.asarray(BACKGROUND, np.float32) * (1 - ink) + colour * ink  # cells never overlap
    return torch.from_numpy(image).permute(0, 3, 1, 2).contiguous()


def render(scene: Scene, bank: DigitBank, split: str, rng: np.random.Generator) -> torch.Tensor:
    """The scene as an image (3, 32, 32) in [0, 1]."""
    return render_batch([scene], bank, split, rng)[0]
