import pytest
import torch

from tests.tiny_models import tiny_clip_reward


@pytest.fixture
def clip_reward():
    return tiny_clip_reward()


@pytest.fixture
def probe_images():
    """Two batches of 16x16 images in [0, 1] (the tiny SD3's resolution), seeded."""
    g = torch.Generator().manual_seed(0)
    return [torch.rand(6, 3, 16, 16, generator=g) for _ in range(2)]
