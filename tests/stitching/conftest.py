import pytest
import torch

from value.clip_score import CLIPScore
from value.image_transform import ImageTransform
from value.tiny import tiny_open_clip, tiny_tokenizer


def tiny_clip_reward(seed: int = 1) -> CLIPScore:
    return CLIPScore.from_open_clip_model(tiny_open_clip(seed), tiny_tokenizer(), ImageTransform(size=32))


@pytest.fixture
def clip_reward():
    return tiny_clip_reward()


@pytest.fixture
def probe_images():
    """Two batches of 16x16 images in [0, 1] (the tiny SD3's resolution), seeded."""
    g = torch.Generator().manual_seed(0)
    return [torch.rand(6, 3, 16, 16, generator=g) for _ in range(2)]
