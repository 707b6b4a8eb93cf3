"""The tiny world as the stitcher's image source: seeded scenes whose captions say what they show, and
training captions that are never an evaluation prompt."""

import pytest
import torch

from stitching.images import ImageSourceConfig
from world.prompts import EVAL_PER_FAMILY, all_held_out
from world.scene_images import scene_source, training_captions


def test_world_source_is_seeded_and_probe_steps_differ():
    source = scene_source(ImageSourceConfig())
    assert torch.equal(source(3, 2).images, source(3, 2).images)
    assert not torch.equal(source(3, 2).images, source(-3, 2).images)
    assert source(0, 5).images.shape == (5, 3, 32, 32)


def test_world_source_prompts_are_what_each_scene_shows():
    from launch.config_schema import world_dir
    from world.verifier import load_verifier

    if not (world_dir() / "verifier").is_dir():
        pytest.skip("the tiny world is not built")
    batch = scene_source(ImageSourceConfig())(0, 64)
    correct = load_verifier(world_dir() / "verifier").correct(batch.images, batch.prompts)
    assert correct.float().mean() > 0.9  # a caption paired with another scene would be satisfied far less


def test_a_size_other_than_the_scenes_is_refused():
    with pytest.raises(ValueError, match="images.size=64"):
        scene_source(ImageSourceConfig(size=64))


def test_training_captions_are_distinct_seeded_and_never_held_out():
    captions = training_captions(3000, 0)
    assert not set(captions) & set(all_held_out(EVAL_PER_FAMILY))
    assert captions == training_captions(3000, 0) and len(set(captions)) > 64
