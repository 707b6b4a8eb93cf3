"""The stitcher's image sources: a folder of files (the real setting) and the tiny world, both a
function of the step alone (seeded), with clear errors for a bad path or size."""

import numpy as np
import pytest
import torch
from PIL import Image

from stitching.images import ImageSourceConfig, image_source, score_captions


def test_folder_source_resizes_crops_and_cycles(tmp_path):
    for k, (w, h) in enumerate([(40, 20), (20, 40), (16, 16)]):
        Image.fromarray(np.full((h, w, 3), 60 * k, np.uint8)).save(tmp_path / f"{k}.png")
    source = image_source(ImageSourceConfig(kind="folder", path=str(tmp_path), size=8))
    batch = source(0, 4).images
    assert batch.shape == (4, 3, 8, 8) and 0 <= batch.min() and batch.max() <= 1
    assert torch.equal(batch, source(0, 4).images)
    levels = sorted({round(x.mean().item() * 255) for x in source(0, 3).images})
    assert levels == [0, 60, 120]  # every file once per pass, whatever its aspect ratio
    assert source(0, 3).prompts == ["", "", ""]  # files carry no caption: the null prompt


def test_world_source_is_seeded_and_probe_steps_differ():
    source = image_source(ImageSourceConfig())
    assert torch.equal(source(3, 2).images, source(3, 2).images)
    assert not torch.equal(source(3, 2).images, source(-3, 2).images)
    assert source(0, 5).images.shape == (5, 3, 32, 32)


def test_world_source_prompts_are_what_each_scene_shows():
    from launch.config_schema import world_dir
    from world.verifier import load_verifier

    if not (world_dir() / "verifier").is_dir():
        pytest.skip("the tiny world is not built")
    batch = image_source(ImageSourceConfig())(0, 64)
    correct = load_verifier(world_dir() / "verifier").correct(batch.images, batch.prompts)
    assert correct.float().mean() > 0.9  # a caption paired with another scene would be satisfied far less


def test_bad_sources_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        image_source(ImageSourceConfig(kind="folder", path=str(tmp_path / "nope")))
    with pytest.raises(FileNotFoundError, match="holds no"):
        image_source(ImageSourceConfig(kind="folder", path=str(tmp_path)))
    with pytest.raises(ValueError, match="images.size=64"):
        image_source(ImageSourceConfig(size=64))
    with pytest.raises(ValueError, match="images.kind"):
        ImageSourceConfig(kind="coco")


def test_generator_source_samples_the_backbone_once_per_image_seeded(sd3_model, tmp_path):
    from diffusion.sampling import SamplerConfig, sample

    (tmp_path / "prompts.txt").write_text("a red seven\ntwo blue threes\n")
    cfg = ImageSourceConfig(kind="generator", path=str(tmp_path / "prompts.txt"), size=16, samples=5,
                            cfg_scales=[1.0, 3.0], num_steps=2, seed=1)
    source = image_source(cfg, sd3_model)
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
    with pytest.raises(ValueError, match="samples the backbone"):
        image_source(cfg)


def test_score_captions_are_distinct_training_captions_or_a_files_lines(tmp_path):
    from world.prompts import EVAL_PER_FAMILY, all_held_out

    captions = score_captions(ImageSourceConfig(), 64)
    assert len(captions) == len(set(captions)) == 64
    assert not set(captions) & set(all_held_out(EVAL_PER_FAMILY))  # never an evaluation prompt
    assert captions == score_captions(ImageSourceConfig(), 64)  # seeded
    (tmp_path / "captions.txt").write_text("a red seven\ntwo blue threes\na red seven\n")
    folder = ImageSourceConfig(kind="folder", path=str(tmp_path))
    assert score_captions(folder, 8, str(tmp_path / "captions.txt")) == ["a red seven", "two blue threes"]
    with pytest.raises(ValueError, match="stitch.caption_file"):
        score_captions(folder, 8)
