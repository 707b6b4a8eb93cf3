"""Sample grids: tiles where they belong, and each prompt written under its images."""

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion.image_grid import save_grid


def test_tiles_sit_in_rows_with_their_prompt_written_beneath(tmp_path):
    images = torch.stack([torch.full((3, 8, 8), k / 5) for k in range(6)])
    plain = np.asarray(Image.open(save_grid(images, tmp_path / "plain.png", columns=3, scale=4)))
    assert plain.shape == (2 * 32, 3 * 32, 3)
    labels = ["a red seven"] * 2 + ["two blue threes"] * 4
    labelled = np.asarray(Image.open(save_grid(images, tmp_path / "labelled.png", columns=3, scale=4, labels=labels)))
    band = labelled.shape[0] // 2 - 32
    assert labelled.shape[1] == 96 and band > 0
    for row in range(2):
        top = row * (32 + band)
        assert np.array_equal(labelled[top : top + 32], plain[row * 32 : (row + 1) * 32])  # the tiles, untouched
        text = labelled[top + 32 : top + 32 + band]
        assert (text < 128).any() and (text == 255).any()  # dark writing on white
    # Row 0 holds two runs (two prompts), so text starts under its first and its third tile.
    first_row_text = (labelled[32 : 32 + band] < 128).any(axis=(0, 2))
    assert first_row_text[:8].any() and first_row_text[64:72].any()


def test_one_label_per_image():
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        save_grid(torch.zeros(2, 3, 4, 4), "unused.png", columns=2, labels=["x"])
