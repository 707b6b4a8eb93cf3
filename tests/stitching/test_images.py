"""The stitcher's image sources: a folder of files (the real setting) and the backbone's own samples, both a
function of the step alone (seeded), with clear errors for a bad path. (The tiny world's scenes:
tests/world/test_scene_images.py.)"""

import numpy as np
import pytest
import torch
from PIL import Image

from stitching.images import ImageSourceConfig, folder_source, generator_source


def test_folder_source_resizes_crops_and_cycles(tmp_path):
    for k, (w, h) in enumerate([(40, 20), (20, 40), (16, 16)]):
        Image.fromarray(np.full((h, w, 3), 60 * k, np.uint8)).save(tmp_path / f"{k}.png")
    source = folder_source(ImageSourceConfig(kind="folder", path=str(tmp_path), size=8))
    batch = source(0, 4).images
    assert batch.shape == (4, 3, 8, 8) and 0 <= batch.min() and batch.max() <= 1
    assert torch.equal(batch, source(0, 4).images)
    levels = sorted({round(x.mean().item() * 255) for x in source(0, 3).images})
    assert levels == [0, 60, 120]  # every file once per pass, whatever its aspect ratio
    assert source(0, 3).prompts == ["", "", ""]  # files carry no caption: the null prompt


def test_bad_sources_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        folder_source(ImageSourceConfig(kind="folder", path=str(tmp_path / "nope")))
    with pytest.raises(FileNotFoundError, match="holds no"):
        folder_source(ImageSourceConfig(kind="folder", path=str(tmp_path)))
    with pytest.raises(ValueError, match="images.kind"):
        ImageSourceConfig(kind="coco")


def test_generator_source_samples_the_backbone_once_per_image_seeded(sd3_model, tmp_path):
    from diffusion.sampling import SamplerConfig, sample

    cfg = ImageSourceConfig(kind="generator", size=16, samples=5,
                            cfg_scales=[1.0, 3.0], num_steps=2, seed=1)
    source = generator_source(cfg, sd3_model, ["a red seven", "two blue threes"])
    batch = source(0, 5)  # one pass is the whole pool, shuffled
    pool = batch.images
    assert pool.shape == (5, 3, 16, 16) and torch.equal(source(0, 5).images, pool)
    # Sample 0: the first prompt, seed 1 * 5 + 0, no CFG (the first block of cfg_scales).
    z0 = sample(sd3_model, sd3_model.encode_prompt(["a red seven"]), times=sd3_model.schedule(2, 8, 8), seeds=[5],
                latent_shape=(4, 8, 8), config=SamplerConfig(num_steps=2)).final
    expected = sd3_model.decode(z0)[0]
    matches = [k for k, img in enumerate(pool) if torch.allclose(img, expected, atol=1e-5)]
    assert len(matches) == 1 and batch.prompts[matches[0]] == "a red seven"
    assert sorted(batch.prompts) == ["a red seven"] * 3 + ["two blue threes"] * 2
